-- Performance statistics in vCenter's collection levels.  One row per
-- object, level and interval: level 0 keeps each sample as the host sent it
-- ("realtime"); levels 1-4 are the 5-minute, 30-minute, 2-hour and 1-day
-- rollups, averages over the samples that fell in the interval (n of them),
-- kept up to date as samples arrive.  Old rows are pruned per level.
CREATE TABLE perf_sample (
    entity           TEXT NOT NULL,
    level            INTEGER NOT NULL CHECK (level BETWEEN 0 AND 4),
    t                INTEGER NOT NULL,   -- interval start (level 0: sample time), unix ms
    n                INTEGER NOT NULL DEFAULT 1,
    cpu_mhz          REAL NOT NULL,
    cpu_percent      REAL NOT NULL,
    mem_consumed_mib REAL NOT NULL,
    mem_active_mib   REAL NOT NULL,
    net_rx_bps       REAL NOT NULL,      -- bytes per second
    net_tx_bps       REAL NOT NULL,
    disk_read_bps    REAL NOT NULL,
    disk_write_bps   REAL NOT NULL,
    PRIMARY KEY (entity, level, t)
) WITHOUT ROWID;
CREATE INDEX perf_sample_age ON perf_sample(level, t);
