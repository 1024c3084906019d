/* /api/kvc/stats: a host's or VM's performance samples at one of vCenter's
 * levels, all read from the database (vpxd/stats.c records each sample
 * there with its rollups, docs/statistics.md): realtime as the host
 * reported it, or the 5min, 30min, 2h and 1day averages. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vpxd/api/api.h"
#include "vpxd/db_stats.h"

static json_t *iso_time(int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char buf[40];

    gmtime_r(&t, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    return json_sprintf("%s.%03dZ", buf, (int)(ms % 1000));
}

/* One element per sample (realtime) or interval, with its start, its
 * length and how many samples its averages cover. */
static void samples_get(struct api_req *r, const char *entity, const char *type, int level)
{
    json_t *rows = NULL, *row;
    size_t i;
    int rc = vdb_stats_query(api_db(r), entity, level, 0, 0, &rows);

    if (rc < 0)
        return api_error(r, 500, "ERROR", "statistics: %s", strerror(-rc));
    json_array_foreach(rows, i, row) {
        json_int_t t = json_integer_value(json_object_get(row, "time_ms"));
        json_object_set_new(row, "time", iso_time(t));
        json_object_set_new(row, "interval_s", json_integer(
            (level ? vdb_stats_levels[level].interval_ms : api_vpxd(r)->opt.stats_interval_ms)
            / 1000));
    }
    api_reply(r, 200, json_pack("{s:s, s:s, s:s, s:o}", "entity", entity, "type", type,
                                "interval", vdb_stats_levels[level].name, "samples", rows));
}

void api_stats_get(struct api_req *r)
{
    const char *entity = api_query(r, "entity");
    const char *interval = api_query(r, "interval");
    char type[32];

    if (!entity || !*entity)
        return api_error(r, 400, "INVALID_ARGUMENT", "query parameter 'entity' is required");
    int level = interval ? vdb_stats_level_by_name(interval) : 0;
    if (level < 0)
        return api_error(r, 400, "INVALID_ARGUMENT", "interval '%.32s' is not one of "
                         "realtime, 5min, 30min, 2h, 1day", interval);
    if (vdb_entity_type(api_db(r), entity, type, sizeof(type)) < 0)
        return api_error(r, 404, "NOT_FOUND", "%.64s not found", entity);
    if (strcmp(type, "host") && strcmp(type, "vm"))
        return api_error(r, 400, "INVALID_ARGUMENT", "%.64s is a %s: statistics are kept "
                         "for hosts and VMs", entity, type);
    if (api_require(r, "System.Read", entity) < 0)
        return;
    api_set_object(r, entity);
    samples_get(r, entity, type, level);
}
