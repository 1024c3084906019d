/* Performance statistics: level 0 samples and their rollups (db_stats.h). */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "lib/log.h"
#include "vpxd/db_internal.h"
#include "vpxd/db_stats.h"

KVC_LOG_MODULE(db);

#define MIN_MS (60 * 1000LL)
#define HOUR_MS (60 * MIN_MS)
#define DAY_MS (24 * HOUR_MS)

const struct vdb_stats_level vdb_stats_levels[VDB_STATS_LEVELS] = {
    { "realtime", 0, HOUR_MS },
    { "5min", 5 * MIN_MS, DAY_MS },
    { "30min", 30 * MIN_MS, 7 * DAY_MS },
    { "2h", 2 * HOUR_MS, 30 * DAY_MS },
    { "1day", DAY_MS, 365 * DAY_MS },
};

int vdb_stats_level_by_name(const char *name)
{
    for (int i = 0; name && i < VDB_STATS_LEVELS; i++)
        if (!strcmp(vdb_stats_levels[i].name, name))
            return i;
    return -EINVAL;
}

static const char insert_sql[] =
    "INSERT OR IGNORE INTO perf_sample (entity, level, t, n, cpu_mhz, cpu_percent,"
    " mem_consumed_mib, mem_active_mib, net_rx_bps, net_tx_bps, disk_read_bps,"
    " disk_write_bps) VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?)";

/* The interval's running average absorbs one more sample: every right-hand
 * side sees the row as it was, so n is the old count throughout. */
static const char rollup_sql[] =
    "INSERT INTO perf_sample (entity, level, t, n, cpu_mhz, cpu_percent,"
    " mem_consumed_mib, mem_active_mib, net_rx_bps, net_tx_bps, disk_read_bps,"
    " disk_write_bps) VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (entity, level, t) DO UPDATE SET"
    " cpu_mhz = (cpu_mhz * n + excluded.cpu_mhz) / (n + 1),"
    " cpu_percent = (cpu_percent * n + excluded.cpu_percent) / (n + 1),"
    " mem_consumed_mib = (mem_consumed_mib * n + excluded.mem_consumed_mib) / (n + 1),"
    " mem_active_mib = (mem_active_mib * n + excluded.mem_active_mib) / (n + 1),"
    " net_rx_bps = (net_rx_bps * n + excluded.net_rx_bps) / (n + 1),"
    " net_tx_bps = (net_tx_bps * n + excluded.net_tx_bps) / (n + 1),"
    " disk_read_bps = (disk_read_bps * n + excluded.disk_read_bps) / (n + 1),"
    " disk_write_bps = (disk_write_bps * n + excluded.disk_write_bps) / (n + 1),"
    " n = n + 1";

static int put(struct vdb *db, const char *sql, const struct vdb_perf_sample *s, int level,
               int64_t t)
{
    return vdb_exec(db, sql, "siIdddddddd", s->entity, level, t, s->cpu_mhz, s->cpu_percent,
                    s->mem_consumed_mib, s->mem_active_mib, s->net_rx_bps, s->net_tx_bps,
                    s->disk_read_bps, s->disk_write_bps);
}

int vdb_stats_record(struct vdb *db, const struct vdb_perf_sample *s, size_t n)
{
    int rc = vdb_begin(db);

    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n && rc >= 0; i++) {
        if (!s[i].entity || !*s[i].entity || s[i].time_ms <= 0) {
            rc = -EINVAL;
            break;
        }
        /* A sample seen before (same entity and time) changes nothing:
         * its level-0 row is ignored, and so are its rollups. */
        if ((rc = put(db, insert_sql, &s[i], 0, s[i].time_ms)) <= 0)
            continue;
        for (int l = 1; l < VDB_STATS_LEVELS && rc >= 0; l++) {
            int64_t iv = vdb_stats_levels[l].interval_ms;
            rc = put(db, rollup_sql, &s[i], l, s[i].time_ms / iv * iv);
        }
    }
    return vdb_finish(db, rc < 0 ? rc : 0);
}

int vdb_stats_prune(struct vdb *db, int64_t now_ms, const int64_t retention_ms[VDB_STATS_LEVELS])
{
    int rc = vdb_begin(db), total = 0;

    if (rc < 0)
        return rc;
    for (int l = 0; l < VDB_STATS_LEVELS && rc >= 0; l++) {
        /* A rollup interval goes once its end is past the retention. */
        rc = vdb_exec(db, "DELETE FROM perf_sample WHERE level = ? AND t + ? < ?", "iII", l,
                      vdb_stats_levels[l].interval_ms, now_ms - retention_ms[l]);
        if (rc > 0)
            total += rc;
    }
    rc = vdb_finish(db, rc < 0 ? rc : 0);
    return rc < 0 ? rc : total;
}

int vdb_stats_query(struct vdb *db, const char *entity, int level, int64_t since_ms,
                    int limit, json_t **out)
{
    if (level < 0 || level >= VDB_STATS_LEVELS || limit < 0)
        return -EINVAL;
    return vdb_query_json(db, out,
        "SELECT * FROM (SELECT t AS time_ms, n AS samples, cpu_mhz AS cpu_MHz, cpu_percent,"
        " mem_consumed_mib AS mem_MiB, mem_active_mib AS mem_active_MiB,"
        " net_rx_bps AS net_rx_Bps, net_tx_bps AS net_tx_Bps,"
        " disk_read_bps AS disk_read_Bps, disk_write_bps AS disk_write_Bps"
        " FROM perf_sample WHERE entity = ? AND level = ? AND t >= ?"
        " ORDER BY t DESC LIMIT ?) ORDER BY time_ms",
        "siIi", entity, level, since_ms, limit ? limit : -1);
}
