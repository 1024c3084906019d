/* Performance statistics in the database (part of the db module, which owns
 * every write; see vpxd/db.h for the error convention).
 *
 * vCenter keeps realtime samples for an hour and rolls them up into
 * 5-minute, 30-minute, 2-hour and 1-day averages kept for a day, a week, a
 * month and a year.  Here each recorded sample is stored at level 0 and
 * folded into the running average of its interval at every rollup level in
 * the same transaction, so a rollup is always exact for the samples seen
 * and nothing is lost to a crash between a sample and its rollup. */
#ifndef VPXD_DB_STATS_H
#define VPXD_DB_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

struct vdb;

#define VDB_STATS_LEVELS 5

/* Level L: its name in the API ("realtime", "5min", "30min", "2h", "1day"),
 * its interval in ms (0 for realtime: as sampled) and its default
 * retention in ms. */
struct vdb_stats_level {
    const char *name;
    int64_t interval_ms;
    int64_t retention_ms;
};
extern const struct vdb_stats_level vdb_stats_levels[VDB_STATS_LEVELS];
/* Level named NAME, or -EINVAL. */
int vdb_stats_level_by_name(const char *name);

struct vdb_perf_sample {
    const char *entity;         /* "host-3", "vm-12" */
    int64_t time_ms;
    double cpu_mhz, cpu_percent;
    double mem_consumed_mib, mem_active_mib;
    double net_rx_bps, net_tx_bps, disk_read_bps, disk_write_bps;
};

/* Records N samples (one transaction): level 0 rows, and each folded into
 * its interval's average at levels 1-4.  A sample already recorded for the
 * same entity and time is ignored (hosts resend after a reconnect). */
int vdb_stats_record(struct vdb *, const struct vdb_perf_sample *s, size_t n);

/* Deletes rows older than NOW_MS - RETENTION_MS[level] at every level;
 * returns the number of rows deleted. */
int vdb_stats_prune(struct vdb *, int64_t now_ms, const int64_t retention_ms[VDB_STATS_LEVELS]);

/* The samples of ENTITY at LEVEL from SINCE_MS on (0: all kept), oldest
 * first, at most LIMIT (0: no limit; the newest are kept), as a JSON array
 * of objects {time_ms, samples, cpu_MHz, cpu_percent, mem_MiB,
 * mem_active_MiB, net_rx_Bps, net_tx_Bps, disk_read_Bps, disk_write_Bps}. */
int vdb_stats_query(struct vdb *, const char *entity, int level, int64_t since_ms,
                    int limit, json_t **out);

#endif
