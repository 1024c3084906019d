/* /api/kvc/stats: the recent ("realtime") performance samples hosts report
 * (StatsBatch, every stats-interval), kept in memory per host and VM for the
 * dashboard's charts.  Rollups into longer intervals and persistence are
 * for vpxd's stats module; this keeps only the last STATS_KEEP samples of
 * each object, and forgets them at restart. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vpxd/api/api.h"
#include "vpxd/db_stats.h"
#include "vpxd/hostmgr.h"

#define STATS_KEEP 180          /* an hour at the default 20 s */
#define STATS_MAX_OBJECTS 4096

struct sample {
    int64_t time_ms;
    uint32_t cpu_mhz, cpu_permille;
    uint64_t mem_active, mem_consumed;
    uint64_t net_rx, net_tx, disk_read, disk_write;     /* counters */
};

struct series {
    char id[VDB_ID_MAX];
    unsigned head, count;
    struct sample s[STATS_KEEP];
};

static struct series **all;
static size_t n_all;

static struct series *series_for(const char *id, bool create)
{
    for (size_t i = 0; i < n_all; i++)
        if (!strcmp(all[i]->id, id))
            return all[i];
    if (!create || n_all >= STATS_MAX_OBJECTS)
        return NULL;
    struct series **na = realloc(all, (n_all + 1) * sizeof(*all));
    if (!na)
        return NULL;
    all = na;
    struct series *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    snprintf(s->id, sizeof(s->id), "%s", id);
    all[n_all++] = s;
    return s;
}

void api_stats_record(struct vpxd *vx, const char *host_id,
                      const struct hostmgr_stats_sample *in, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct hostmgr_stats_sample *x = &in[i];
        char id[VDB_ID_MAX];
        struct series *s;

        if (x->vm_uuid && *x->vm_uuid) {
            if (vdb_vm_by_uuid(vx->db, x->vm_uuid, id) < 0)
                continue;       /* not (yet) in the inventory */
        } else {
            snprintf(id, sizeof(id), "%s", host_id);
        }
        if (!(s = series_for(id, true)))
            continue;
        if (s->count && s->s[(s->head + STATS_KEEP - 1) % STATS_KEEP].time_ms >= x->time_ms)
            continue;           /* out of order or repeated */
        s->s[s->head] = (struct sample){
            .time_ms = x->time_ms, .cpu_mhz = x->cpu_usage_mhz,
            .cpu_permille = x->cpu_usage_permille, .mem_active = x->mem_active_bytes,
            .mem_consumed = x->mem_consumed_bytes, .net_rx = x->net_rx_bytes,
            .net_tx = x->net_tx_bytes, .disk_read = x->disk_read_bytes,
            .disk_write = x->disk_write_bytes,
        };
        s->head = (s->head + 1) % STATS_KEEP;
        if (s->count < STATS_KEEP)
            s->count++;
    }
}

static json_t *iso_time(int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char buf[40];

    gmtime_r(&t, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    return json_sprintf("%s.%03dZ", buf, (int)(ms % 1000));
}

/* Bytes per second between two counter readings (0 across a reset). */
static double rate(uint64_t a, uint64_t b, int64_t dt_ms)
{
    return b >= a && dt_ms > 0 ? (double)(b - a) * 1000.0 / (double)dt_ms : 0.0;
}

/* A rollup level from the database: one element per interval, with the
 * interval's start, its length and how many samples its averages cover. */
static void rollups_get(struct api_req *r, const char *entity, const char *type, int level)
{
    json_t *rows = NULL, *row;
    size_t i;
    int rc = vdb_stats_query(api_db(r), entity, level, 0, 0, &rows);

    if (rc < 0)
        return api_error(r, 500, "ERROR", "statistics: %s", strerror(-rc));
    json_array_foreach(rows, i, row) {
        json_int_t t = json_integer_value(json_object_get(row, "time_ms"));
        json_object_set_new(row, "time", iso_time(t));
        json_object_set_new(row, "interval_s",
                            json_integer(vdb_stats_levels[level].interval_ms / 1000));
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
    if (level > 0)
        return rollups_get(r, entity, type, level);

    json_t *arr = json_array();
    struct series *s = series_for(entity, false);
    for (unsigned i = 0; s && i < s->count; i++) {
        const struct sample *x = &s->s[(s->head + STATS_KEEP - s->count + i) % STATS_KEEP];
        const struct sample *p = i ? &s->s[(s->head + STATS_KEEP - s->count + i - 1)
                                           % STATS_KEEP] : NULL;
        int64_t dt = p ? x->time_ms - p->time_ms : 0;
        json_array_append_new(arr, json_pack(
            "{s:o, s:f, s:i, s:f, s:f, s:f, s:f, s:f, s:f}",
            "time", iso_time(x->time_ms),
            "cpu_percent", x->cpu_permille / 10.0,
            "cpu_MHz", (json_int_t)x->cpu_mhz,
            "mem_MiB", (double)x->mem_consumed / 1048576.0,
            "mem_active_MiB", (double)x->mem_active / 1048576.0,
            "net_rx_Bps", p ? rate(p->net_rx, x->net_rx, dt) : 0.0,
            "net_tx_Bps", p ? rate(p->net_tx, x->net_tx, dt) : 0.0,
            "disk_read_Bps", p ? rate(p->disk_read, x->disk_read, dt) : 0.0,
            "disk_write_Bps", p ? rate(p->disk_write, x->disk_write, dt) : 0.0));
    }
    api_reply(r, 200, json_pack("{s:s, s:s, s:s, s:o}", "entity", entity, "type", type,
                                "interval", "realtime", "samples", arr));
}
