/* Statistics: counters to rates, recording with rollups, pruning (stats.h). */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <event2/event.h>

#include "lib/log.h"
#include "vpxd/db.h"
#include "vpxd/hostmgr.h"
#include "vpxd/stats.h"
#include "vpxd/vpxd.h"

KVC_LOG_MODULE(stats);

#define MAX_TRACKED 65536       /* objects whose last counters are kept */

/* The last counters seen of one object, to turn the next into rates. */
struct last {
    char id[VDB_ID_MAX];
    int64_t time_ms;
    uint64_t net_rx, net_tx, disk_read, disk_write;
};

struct vpxd_stats {
    struct vpxd *vx;
    struct event *prune_ev;
    int64_t retention_ms[VDB_STATS_LEVELS];
    struct last *tab;           /* open addressing, power-of-two size */
    size_t cap, used;
};

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;        /* FNV-1a */
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

static int grow(struct vpxd_stats *st)
{
    size_t ncap = st->cap ? st->cap * 2 : 256;
    struct last *nt = calloc(ncap, sizeof(*nt));

    if (!nt)
        return -ENOMEM;
    for (size_t i = 0; i < st->cap; i++) {
        if (!st->tab[i].id[0])
            continue;
        size_t j = hash(st->tab[i].id) & (ncap - 1);
        while (nt[j].id[0])
            j = (j + 1) & (ncap - 1);
        nt[j] = st->tab[i];
    }
    free(st->tab);
    st->tab = nt;
    st->cap = ncap;
    return 0;
}

static struct last *last_for(struct vpxd_stats *st, const char *id)
{
    size_t j;

    /* At most half full, so a probe always ends at a free slot. */
    if ((st->used + 1) * 2 > st->cap && st->used < MAX_TRACKED)
        grow(st);
    if (!st->cap)
        return NULL;
    j = hash(id) & (st->cap - 1);
    while (st->tab[j].id[0]) {
        if (!strcmp(st->tab[j].id, id))
            return &st->tab[j];
        j = (j + 1) & (st->cap - 1);
    }
    if ((st->used + 1) * 2 > st->cap)
        return NULL;            /* full: this object gets no rates */
    snprintf(st->tab[j].id, sizeof(st->tab[j].id), "%s", id);
    st->used++;
    return &st->tab[j];
}

/* Bytes per second from counter A (at TA) to B (at TB); 0 across a counter
 * reset (a VM restarted) or without a previous reading. */
static double rate(uint64_t a, uint64_t b, int64_t dt_ms)
{
    return b >= a && dt_ms > 0 ? (double)(b - a) * 1000.0 / (double)dt_ms : 0.0;
}

void vpxd_stats_record(struct vpxd_stats *st, const char *host_id,
                       const struct hostmgr_stats_sample *in, size_t n)
{
    struct vdb_perf_sample *out;
    char (*ids)[VDB_ID_MAX];
    size_t k = 0;
    int rc;

    if (!st || !n)
        return;
    out = calloc(n, sizeof(*out));
    ids = calloc(n, sizeof(*ids));
    if (!out || !ids)
        goto done;
    for (size_t i = 0; i < n; i++) {
        const struct hostmgr_stats_sample *x = &in[i];
        struct last *l;

        if (x->vm_uuid && *x->vm_uuid) {
            if (vdb_vm_by_uuid(st->vx->db, x->vm_uuid, ids[k]) < 0)
                continue;
        } else {
            snprintf(ids[k], sizeof(ids[k]), "%s", host_id);
        }
        out[k] = (struct vdb_perf_sample){
            .entity = ids[k], .time_ms = x->time_ms,
            .cpu_mhz = x->cpu_usage_mhz, .cpu_percent = x->cpu_usage_permille / 10.0,
            .mem_consumed_mib = (double)x->mem_consumed_bytes / 1048576.0,
            .mem_active_mib = (double)x->mem_active_bytes / 1048576.0,
        };
        if ((l = last_for(st, ids[k]))) {
            if (l->time_ms && x->time_ms <= l->time_ms)
                continue;       /* repeated or out of order */
            int64_t dt = l->time_ms ? x->time_ms - l->time_ms : 0;
            out[k].net_rx_bps = rate(l->net_rx, x->net_rx_bytes, dt);
            out[k].net_tx_bps = rate(l->net_tx, x->net_tx_bytes, dt);
            out[k].disk_read_bps = rate(l->disk_read, x->disk_read_bytes, dt);
            out[k].disk_write_bps = rate(l->disk_write, x->disk_write_bytes, dt);
            *l = (struct last){ .time_ms = x->time_ms, .net_rx = x->net_rx_bytes,
                                .net_tx = x->net_tx_bytes, .disk_read = x->disk_read_bytes,
                                .disk_write = x->disk_write_bytes };
            snprintf(l->id, sizeof(l->id), "%s", ids[k]);
        }
        k++;
    }
    if (k && (rc = vdb_stats_record(st->vx->db, out, k)) < 0) {
        static struct kvc_ratelimit rl = KVC_RATELIMIT_INIT(1, 60);
        kvc_warn_rl(&rl, "host %s: %zu samples not recorded: %s", host_id, k, strerror(-rc));
    }
done:
    free(out);
    free(ids);
}

static int64_t now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

int vpxd_stats_prune(struct vpxd_stats *st)
{
    int rc = vdb_stats_prune(st->vx->db, now_ms(), st->retention_ms);

    if (rc > 0)
        kvc_dbg("pruned %d statistics rows", rc);
    else if (rc < 0)
        kvc_warn("pruning statistics: %s", strerror(-rc));
    return rc;
}

static void on_prune(evutil_socket_t fd, short what, void *arg)
{
    vpxd_stats_prune(arg);
}

int vpxd_stats_new(struct vpxd *vx, const struct vpxd_stats_config *cfg,
                   struct vpxd_stats **out)
{
    struct vpxd_stats *st = calloc(1, sizeof(*st));
    int64_t every = cfg && cfg->prune_interval_ms > 0 ? cfg->prune_interval_ms : 60000;
    struct timeval tv = { every / 1000, (every % 1000) * 1000 };

    *out = NULL;
    if (!st)
        return -ENOMEM;
    st->vx = vx;
    for (int l = 0; l < VDB_STATS_LEVELS; l++)
        st->retention_ms[l] = cfg && cfg->retention_ms[l] > 0
            ? cfg->retention_ms[l] : vdb_stats_levels[l].retention_ms;
    if (vx->base) {
        if (!(st->prune_ev = event_new(vx->base, -1, EV_PERSIST, on_prune, st))) {
            free(st);
            return -ENOMEM;
        }
        event_add(st->prune_ev, &tv);
    }
    *out = st;
    return 0;
}

void vpxd_stats_free(struct vpxd_stats *st)
{
    if (!st)
        return;
    if (st->prune_ev)
        event_free(st->prune_ev);
    free(st->tab);
    free(st);
}
