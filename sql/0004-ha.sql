-- vSphere-style HA (docs/ha.md): the settings of each cluster, per-VM
-- overrides, each host's HA state, and the failover queue, which is what
-- lets a vpxd restarted in the middle of a failover finish it.
-- cluster.ha_enabled (0001) stays the switch; the rest lives here.
-- Admission control starts disabled: clusters made before HA had settings
-- (ha_enabled was a flag with no effect) keep powering VMs on as before.
CREATE TABLE ha_cluster (
    cluster            TEXT PRIMARY KEY REFERENCES entity(id) ON DELETE CASCADE,
    host_monitoring    INTEGER NOT NULL DEFAULT 1,
    detection_ms       INTEGER NOT NULL DEFAULT 3000 CHECK (detection_ms BETWEEN 100 AND 600000),
    admission_policy   TEXT NOT NULL DEFAULT 'disabled' CHECK (admission_policy IN
                           ('disabled', 'host_failures', 'percentage', 'failover_hosts')),
    host_failures      INTEGER NOT NULL DEFAULT 1 CHECK (host_failures BETWEEN 1 AND 63),
    cpu_percent        INTEGER NOT NULL DEFAULT 25 CHECK (cpu_percent BETWEEN 0 AND 100),
    mem_percent        INTEGER NOT NULL DEFAULT 25 CHECK (mem_percent BETWEEN 0 AND 100),
    failover_hosts     TEXT NOT NULL DEFAULT '[]',          -- JSON array of host ids
    restart_priority   TEXT NOT NULL DEFAULT 'medium' CHECK (restart_priority IN
                           ('disabled', 'lowest', 'low', 'medium', 'high', 'highest')),
    isolation_response TEXT NOT NULL DEFAULT 'none' CHECK (isolation_response IN
                           ('none', 'power_off', 'shutdown')),
    isolation_address  TEXT NOT NULL DEFAULT '',            -- "IP:PORT" hosts connect to
    vm_monitoring      INTEGER NOT NULL DEFAULT 0,
    vm_failure_interval_s INTEGER NOT NULL DEFAULT 30 CHECK (vm_failure_interval_s BETWEEN 1 AND 86400),
    vm_min_uptime_s    INTEGER NOT NULL DEFAULT 120 CHECK (vm_min_uptime_s BETWEEN 0 AND 86400),
    vm_max_resets      INTEGER NOT NULL DEFAULT 3 CHECK (vm_max_resets BETWEEN 0 AND 1000),
    vm_max_resets_window_s INTEGER NOT NULL DEFAULT 3600 CHECK (vm_max_resets_window_s BETWEEN 1 AND 604800),
    generation         INTEGER NOT NULL DEFAULT 1              -- bumped by every change
);
INSERT INTO ha_cluster (cluster) SELECT id FROM cluster;
CREATE TRIGGER ha_cluster_new AFTER INSERT ON cluster BEGIN
    INSERT INTO ha_cluster (cluster) VALUES (NEW.id);
END;

-- Per VM: its restart priority (NULL: the cluster's) and whether HA
-- protects it (powered on; cleared when a user powers it off).
CREATE TABLE ha_vm (
    vm               TEXT PRIMARY KEY REFERENCES entity(id) ON DELETE CASCADE,
    restart_priority TEXT CHECK (restart_priority IS NULL OR restart_priority IN
                         ('disabled', 'lowest', 'low', 'medium', 'high', 'highest')),
    protected        INTEGER NOT NULL DEFAULT 0,
    running_host     TEXT              -- the host HA last saw running it
);

-- HA state of each host as vpxd judges it.
CREATE TABLE ha_host (
    host  TEXT PRIMARY KEY REFERENCES entity(id) ON DELETE CASCADE,
    uuid  TEXT NOT NULL DEFAULT '',        -- hostd's uuid: names its heartbeat files
    state TEXT NOT NULL DEFAULT 'unknown' CHECK (state IN ('unknown', 'healthy',
              'unreachable', 'isolated', 'partitioned', 'failed')),
    since TEXT NOT NULL DEFAULT ''
);

-- The failover queue: one row per VM HA must restart.
CREATE TABLE ha_restart (
    vm        TEXT PRIMARY KEY REFERENCES entity(id) ON DELETE CASCADE,
    cluster   TEXT NOT NULL,
    from_host TEXT NOT NULL,
    rank      INTEGER NOT NULL,            -- 5 highest .. 1 lowest
    state     TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending',
                  'registering', 'powering_on')),
    target    TEXT NOT NULL DEFAULT '',    -- host chosen, kept across a vpxd restart
    attempts  INTEGER NOT NULL DEFAULT 0,
    reason    TEXT NOT NULL DEFAULT '',    -- host_failed, isolated, partitioned, vm_crashed, host_failed_moved
    created   TEXT NOT NULL
);
