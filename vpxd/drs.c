/* DRS in vpxd (drs.h, docs/drs.md): snapshots of a cluster from the
 * database and the hosts' latest stats, the pass timer and its event
 * triggers, recommendations recorded and applied, placement. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "lib/log.h"
#include "vpxd/db.h"
#include "vpxd/drs.h"
#include "vpxd/hostmgr.h"
#include "vpxd/migration.h"
#include "vpxd/vpxd.h"

KVC_LOG_MODULE(drs);

#define MAX_CLUSTERS 256
#define MAX_LEAVING 256
#define STATS_BUCKETS 1024

/* ---- the latest demand of each VM (from hosts' stats) ------------------- */

struct vstat {
    struct vstat *next;
    char uuid[40];
    double cpu_mhz, mem_active_mb, mem_consumed_mb;
};
static struct vstat *stats[STATS_BUCKETS];

static unsigned hash(const char *s)
{
    unsigned h = 5381;

    for (; *s; s++)
        h = h * 33 + (unsigned char)(*s | 0x20);
    return h % STATS_BUCKETS;
}

static struct vstat *stat_find(const char *uuid, bool add)
{
    unsigned b = hash(uuid);
    struct vstat *v;

    for (v = stats[b]; v; v = v->next)
        if (!strcasecmp(v->uuid, uuid))
            return v;
    if (!add || strlen(uuid) >= sizeof(v->uuid) || !(v = calloc(1, sizeof(*v))))
        return NULL;
    snprintf(v->uuid, sizeof(v->uuid), "%s", uuid);
    v->next = stats[b];
    stats[b] = v;
    return v;
}

void drs_stats(struct vpxd *vx, const char *host_id, const struct hostmgr_stats_sample *s,
               size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct vstat *v;
        if (!s[i].vm_uuid || !(v = stat_find(s[i].vm_uuid, true)))
            continue;
        v->cpu_mhz = s[i].cpu_usage_mhz;
        v->mem_active_mb = (double)s[i].mem_active_bytes / 1048576.0;
        v->mem_consumed_mb = (double)s[i].mem_consumed_bytes / 1048576.0;
    }
}

/* ---- module state ------------------------------------------------------- */

struct cl_state {
    char id[VDB_ID_MAX];
    int64_t next_ms;
    int64_t sig;
    bool kicked;
    int inflight;               /* DRS migrations still running */
    double imbalance, target;
    char last_pass[32];
};

static struct vpxd *dvx;
static struct event *tick_ev;
static struct cl_state cls[MAX_CLUSTERS];
static size_t n_cls;
static char leaving[MAX_LEAVING][VDB_ID_MAX];

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct cl_state *cl_get(const char *id, bool add)
{
    for (size_t i = 0; i < n_cls; i++)
        if (!strcmp(cls[i].id, id))
            return &cls[i];
    if (!add || n_cls == MAX_CLUSTERS)
        return NULL;
    memset(&cls[n_cls], 0, sizeof(cls[n_cls]));
    snprintf(cls[n_cls].id, VDB_ID_MAX, "%s", id);
    cls[n_cls].sig = -1;
    return &cls[n_cls++];
}

void drs_host_leaving(struct vpxd *vx, const char *host, bool on)
{
    int free_slot = -1;

    for (int i = 0; i < MAX_LEAVING; i++) {
        if (!strcmp(leaving[i], host)) {
            if (!on)
                leaving[i][0] = '\0';
            return;
        }
        if (!leaving[i][0] && free_slot < 0)
            free_slot = i;
    }
    if (on && free_slot >= 0)
        snprintf(leaving[free_slot], VDB_ID_MAX, "%s", host);
    if (on && vx && vx->db) {
        /* Its cluster's next pass sees it leaving (evacuation moves). */
        char cl[VDB_ID_MAX] = "";
        vdb_query_str(vx->db, cl, sizeof(cl), "SELECT coalesce(cluster, '') FROM host"
                      " WHERE id = ?", "s", host);
        if (cl[0])
            drs_kick(vx, cl);
    }
}

bool drs_host_is_leaving(const struct vpxd *vx, const char *host)
{
    for (int i = 0; i < MAX_LEAVING; i++)
        if (leaving[i][0] && !strcmp(leaving[i], host))
            return true;
    return false;
}

/* ---- snapshots ---------------------------------------------------------- */

struct snap {
    struct drs_cluster c;
    char (*hid)[VDB_ID_MAX];
    char (*vid)[VDB_ID_MAX];
    struct drs_rule *rules;
    int *members;               /* storage for rule members */
    char (*rid)[VDB_ID_MAX];
};

static void snap_free(struct snap *s)
{
    free(s->c.hosts);
    free(s->c.vms);
    free(s->hid);
    free(s->vid);
    free(s->rules);
    free(s->members);
    free(s->rid);
    memset(s, 0, sizeof(*s));
}

static int idx_of(char (*ids)[VDB_ID_MAX], size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(ids[i], id))
            return (int)i;
    return -1;
}

static int rule_kind(const char *k)
{
    static const char *const names[] = { "VM_AFFINITY", "VM_ANTI_AFFINITY", "VM_HOST_MUST",
        "VM_HOST_SHOULD", "VM_HOST_MUST_NOT", "VM_HOST_SHOULD_NOT" };
    for (int i = 0; i < 6; i++)
        if (k && !strcmp(k, names[i]))
            return i;
    return -1;
}

/* The cluster's hosts and powered-on VMs (plus EXTRA, whatever its state),
 * the enabled rules, and demand from the latest stats. */
static int snap_build(struct vpxd *vx, const char *cluster, const char *extra, struct snap *s)
{
    json_t *hosts = NULL, *vms = NULL, *rules = NULL, *row;
    size_t i, nm = 0;
    int rc;

    memset(s, 0, sizeof(*s));
    rc = vdb_query_json(vx->db, &hosts, "SELECT id, cpu_count, cpu_mhz, memory_bytes,"
                        " connection_state, maintenance FROM host WHERE cluster = ?"
                        " ORDER BY id", "s", cluster);
    if (rc >= 0)
        rc = vdb_query_json(vx->db, &vms, "SELECT v.id, v.host, v.instance_uuid, v.cpu_count,"
                            " v.memory_mib FROM vm v JOIN host h ON h.id = v.host WHERE"
                            " h.cluster = ?1 AND (v.power_state = 'POWERED_ON' OR v.id = ?2)"
                            " ORDER BY v.id", "ss", cluster, extra);
    if (rc >= 0)
        rc = vdb_query_json(vx->db, &rules, "SELECT id, kind, vms AS vms_json,"
                            " hosts AS hosts_json FROM drs_rule WHERE cluster = ? AND enabled"
                            " ORDER BY id", "s", cluster);
    if (rc < 0)
        goto out;
    if (extra && !vdb_entity_exists(vx->db, extra, "vm")) {
        rc = -ENOENT;
        goto out;
    }
    s->c.n_hosts = json_array_size(hosts);
    s->c.n_vms = json_array_size(vms);
    s->c.n_rules = json_array_size(rules);
    s->c.hosts = calloc(s->c.n_hosts + 1, sizeof(*s->c.hosts));
    s->hid = calloc(s->c.n_hosts + 1, sizeof(*s->hid));
    s->c.vms = calloc(s->c.n_vms + 2, sizeof(*s->c.vms));
    s->vid = calloc(s->c.n_vms + 2, sizeof(*s->vid));
    s->rules = calloc(s->c.n_rules + 1, sizeof(*s->rules));
    s->rid = calloc(s->c.n_rules + 1, sizeof(*s->rid));
    json_array_foreach(rules, i, row)
        nm += json_array_size(json_object_get(row, "vms")) +
              json_array_size(json_object_get(row, "hosts"));
    s->members = calloc(nm + 1, sizeof(int));
    if (!s->c.hosts || !s->hid || !s->c.vms || !s->vid || !s->rules || !s->rid || !s->members) {
        rc = -ENOMEM;
        goto out;
    }
    json_array_foreach(hosts, i, row) {
        struct drs_host *h = &s->c.hosts[i];
        int64_t cores = json_integer_value(json_object_get(row, "cpu_count"));
        snprintf(s->hid[i], VDB_ID_MAX, "%s", json_string_value(json_object_get(row, "id")));
        h->id = s->hid[i];
        h->cpu_mhz = (double)cores * (double)json_integer_value(json_object_get(row, "cpu_mhz"));
        h->mem_mb = (double)json_integer_value(json_object_get(row, "memory_bytes")) / 1048576.0;
        h->cpu_threads = (int)cores * 2;
        h->usable = !strcmp(json_string_value(json_object_get(row, "connection_state")),
                            "CONNECTED") && !json_integer_value(json_object_get(row,
                            "maintenance")) && !drs_host_is_leaving(vx, s->hid[i]);
    }
    json_array_foreach(vms, i, row) {
        struct drs_vm *v = &s->c.vms[i];
        const char *uuid = json_string_value(json_object_get(row, "instance_uuid"));
        struct vstat *st = uuid ? stat_find(uuid, false) : NULL;
        snprintf(s->vid[i], VDB_ID_MAX, "%s", json_string_value(json_object_get(row, "id")));
        v->id = s->vid[i];
        v->host = idx_of(s->hid, s->c.n_hosts, json_string_value(json_object_get(row, "host")));
        v->cpu_count = (int)json_integer_value(json_object_get(row, "cpu_count"));
        v->mem_mb = (double)json_integer_value(json_object_get(row, "memory_mib"));
        if (st) {
            double idle = st->mem_consumed_mb > st->mem_active_mb
                        ? st->mem_consumed_mb - st->mem_active_mb : 0;
            v->cpu_mhz = st->cpu_mhz;
            v->mem_demand_mb = st->mem_active_mb + 0.25 * idle;
            v->dirty_mbps = st->mem_active_mb * 0.01;
        } else {
            /* No stats yet: a quarter of its memory and a tenth of a vCPU. */
            double mhz = v->host >= 0 && s->c.hosts[v->host].cpu_threads
                       ? s->c.hosts[v->host].cpu_mhz * 2 / s->c.hosts[v->host].cpu_threads : 2000;
            v->cpu_mhz = 0.1 * v->cpu_count * mhz;
            v->mem_demand_mb = 0.25 * v->mem_mb;
            v->dirty_mbps = v->mem_mb * 0.001;
        }
        v->movable = !vpxd_migrating(v->id);
    }
    nm = 0;
    json_array_foreach(rules, i, row) {
        struct drs_rule *r = &s->rules[i];
        size_t j;
        json_t *x;
        snprintf(s->rid[i], VDB_ID_MAX, "%s", json_string_value(json_object_get(row, "id")));
        r->id = s->rid[i];
        r->kind = (enum drs_rule_kind)(rule_kind(json_string_value(json_object_get(row, "kind")))
                                       < 0 ? 0 : rule_kind(json_string_value(
                                           json_object_get(row, "kind"))));
        r->vms = &s->members[nm];
        json_array_foreach(json_object_get(row, "vms"), j, x) {
            int v = json_is_string(x) ? idx_of(s->vid, s->c.n_vms, json_string_value(x)) : -1;
            if (v >= 0)
                s->members[nm++] = v, r->n_vms++;
        }
        r->hosts = &s->members[nm];
        json_array_foreach(json_object_get(row, "hosts"), j, x) {
            int h = json_is_string(x) ? idx_of(s->hid, s->c.n_hosts, json_string_value(x)) : -1;
            if (h >= 0)
                s->members[nm++] = h, r->n_hosts++;
        }
    }
    s->c.rules = s->rules;
out:
    json_decref(hosts);
    json_decref(vms);
    json_decref(rules);
    if (rc < 0)
        snap_free(s);
    return rc < 0 ? rc : 0;
}

static void params_for(struct vpxd *vx, int threshold, struct drs_params *p)
{
    struct vpxd_migration_config mc;

    vpxd_migration_get_config(&mc);
    memset(p, 0, sizeof(*p));
    p->threshold = threshold;
    p->bandwidth_mbps = mc.link_gbps * 125000000.0 / 1048576.0;
    p->downtime_ms = mc.downtime_ms;
}

/* ---- placement ---------------------------------------------------------- */

int drs_place_vm(struct vpxd *vx, const struct drs_place_req *q, char out[VDB_ID_MAX],
                 char *why, size_t wl)
{
    struct snap s;
    struct drs_params p;
    json_t *vm = NULL, *nics;
    const char *ds = q->datastore, *k;
    json_t *nic;
    int rc, vi, at;

    if (!q || !q->cluster || !vdb_entity_exists(vx->db, q->cluster, "cluster")) {
        snprintf(why, wl, "cluster %s not found", q && q->cluster ? q->cluster : "(none)");
        return -ENOENT;
    }
    if ((rc = snap_build(vx, q->cluster, q->vm, &s)) < 0) {
        snprintf(why, wl, rc == -ENOENT ? "virtual machine %s not found" : "cannot read the"
                 " cluster (%s)", rc == -ENOENT ? q->vm : strerror(-rc));
        return rc;
    }
    if (q->vm) {
        vdb_query_row(vx->db, &vm, "SELECT datastore, cpu_count, memory_mib, hardware AS"
                      " hardware_json FROM vm WHERE id = ?", "s", q->vm);
        if (!ds)
            ds = json_string_value(json_object_get(vm, "datastore"));
        vi = idx_of(s.vid, s.c.n_vms, q->vm);
        if (vi < 0) {
            /* Registered outside the cluster (or nowhere): place it as new. */
            vi = (int)s.c.n_vms++;
            snprintf(s.vid[vi], VDB_ID_MAX, "%s", q->vm);
            s.c.vms[vi] = (struct drs_vm){ .id = s.vid[vi], .host = -1, .movable = true,
                .cpu_count = (int)json_integer_value(json_object_get(vm, "cpu_count")),
                .mem_mb = (double)json_integer_value(json_object_get(vm, "memory_mib")) };
            s.c.vms[vi].mem_demand_mb = 0.25 * s.c.vms[vi].mem_mb;
            s.c.vms[vi].cpu_mhz = 200.0 * s.c.vms[vi].cpu_count;
        }
    } else {
        vi = (int)s.c.n_vms++;
        snprintf(s.vid[vi], VDB_ID_MAX, "(new)");
        s.c.vms[vi].id = s.vid[vi];
    }
    struct drs_vm *v = &s.c.vms[vi];
    if (q->memory_mib)
        v->mem_mb = (double)q->memory_mib;
    if (q->cpu_count)
        v->cpu_count = q->cpu_count;
    if (!v->mem_mb)
        v->mem_mb = 256;
    if (!v->cpu_count)
        v->cpu_count = 1;
    if (!q->vm) {
        /* A VM that never ran: a quarter of its memory, a tenth of a vCPU. */
        v->mem_demand_mb = 0.25 * v->mem_mb;
        v->cpu_mhz = 200.0 * v->cpu_count;
    }
    /* Hosts that cannot take it at all: excluded, no datastore, no network,
     * memory on its way from migrations. */
    for (size_t h = 0; h < s.c.n_hosts; h++) {
        int64_t n = 1;
        for (size_t e = 0; q->exclude && q->exclude[e]; e++)
            if (!strcmp(q->exclude[e], s.hid[h]))
                s.c.hosts[h].usable = false;
        if (ds) {
            vdb_query_int(vx->db, &n, "SELECT count(*) FROM host_datastore WHERE host = ? AND"
                          " datastore = ?", "ss", s.hid[h], ds);
            if (!n)
                s.c.hosts[h].usable = false;
        }
        nics = json_object_get(json_object_get(vm, "hardware"), "nics");
        json_object_foreach(nics, k, nic) {
            const char *net = json_string_value(json_object_get(json_object_get(nic,
                                                                "backing"), "network"));
            n = 1;
            if (net)
                vdb_query_int(vx->db, &n, "SELECT count(*) FROM host_network WHERE host = ?"
                              " AND network = ?", "ss", s.hid[h], net);
            if (!n)
                s.c.hosts[h].usable = false;
        }
        s.c.hosts[h].mem_mb -= (double)vpxd_migrating_to_mib(s.hid[h]);
    }
    params_for(vx, 3, &p);
    at = drs_place(&s.c, &p, (size_t)vi);
    if (at < 0) {
        snprintf(why, wl, "no connected host of cluster %s outside maintenance has the"
                 " datastore, networks, %lld MiB of free memory and the rules allow",
                 q->cluster, (long long)v->mem_mb);
        rc = -ENOSPC;
    } else {
        snprintf(out, VDB_ID_MAX, "%s", s.hid[at]);
        rc = 0;
    }
    json_decref(vm);
    snap_free(&s);
    return rc;
}

/* ---- passes ------------------------------------------------------------- */

struct applying {
    char rec[VDB_ID_MAX], cluster[VDB_ID_MAX];
};

static void on_applied(void *arg, int err, const char *msg, const char *task)
{
    struct applying *a = arg;
    struct cl_state *c = cl_get(a->cluster, false);

    if (dvx)
        vdb_drs_rec_set_state(dvx->db, a->rec, err ? "failed" : "applied",
                              err ? msg : task);
    if (c && c->inflight > 0)
        c->inflight--;
    free(a);
}

static int apply_rec(struct vpxd *vx, const char *cluster, const char *rec, const char *vm,
                     const char *to, const char *user, char task[VDB_ID_MAX], char *why,
                     size_t wl)
{
    struct vpxd_migrate_req q = { .vm = vm, .host = to, .cluster = cluster,
                                  .user = user ? user : "DRS", .reason = "drs" };
    struct applying *a = calloc(1, sizeof(*a));
    struct cl_state *c = cl_get(cluster, true);
    int rc;

    if (!a)
        return -ENOMEM;
    snprintf(a->rec, sizeof(a->rec), "%s", rec);
    snprintf(a->cluster, sizeof(a->cluster), "%s", cluster);
    vdb_drs_rec_set_state(vx->db, rec, "applying", NULL);
    if (c)
        c->inflight++;
    rc = vpxd_migrate_vm(vx, &q, on_applied, a, task, why, wl);
    if (rc) {
        vdb_drs_rec_set_state(vx->db, rec, "failed", why);
        if (c && c->inflight > 0)
            c->inflight--;
        free(a);
    }
    return rc;
}

/* One pass over CLUSTER: returns the number of recommendations, and in
 * *OUT (if not NULL) their ids. */
static int pass(struct vpxd *vx, const char *cluster, json_t **out)
{
    json_t *cfg = NULL, *ids = json_array();
    struct snap s;
    struct drs_params p;
    struct drs_move *moves = NULL;
    struct cl_state *cs = cl_get(cluster, true);
    const char *automation;
    int threshold, n, rc;

    if (vdb_query_row(vx->db, &cfg, "SELECT c.drs_enabled, coalesce(d.automation,"
                      " 'fullyAutomated') AS automation, coalesce(d.threshold, 3) AS threshold"
                      " FROM cluster c LEFT JOIN drs_config d ON d.cluster = c.id WHERE"
                      " c.id = ?", "s", cluster) < 0) {
        json_decref(ids);
        return -ENOENT;
    }
    automation = json_string_value(json_object_get(cfg, "automation"));
    threshold = (int)json_integer_value(json_object_get(cfg, "threshold"));
    if ((rc = snap_build(vx, cluster, NULL, &s)) < 0)
        goto out;
    params_for(vx, threshold, &p);
    if (!(moves = calloc(p.max_moves ? p.max_moves : 64, sizeof(*moves)))) {
        rc = -ENOMEM;
        goto out_snap;
    }
    double before = drs_imbalance(&s.c, &p);
    n = drs_recommend(&s.c, &p, moves, 64);
    if (cs) {
        cs->imbalance = drs_imbalance(&s.c, &p);
        cs->target = drs_target_imbalance(threshold);
        vdb_now(cs->last_pass, sizeof(cs->last_pass));
    }
    if (n < 0) {
        rc = n;
        goto out_snap;
    }
    kvc_info("cluster %s: pass: imbalance %.4f -> %.4f (target %.2f), %d moves (%s)", cluster,
             before, cs ? cs->imbalance : 0, drs_target_imbalance(threshold), n, automation);
    /* A pending recommendation the pass makes again keeps its id (so one
     * being looked at in manual mode stays valid); the others go. */
    json_t *pending = NULL, *keep = json_array();
    vdb_query_json(vx->db, &pending, "SELECT id, vm, source, target FROM drs_recommendation"
                   " WHERE cluster = ? AND state = 'pending'", "s", cluster);
    for (int i = 0; i < n; i++) {
        char rec[VDB_ID_MAX] = "", task[VDB_ID_MAX], why[512];
        const char *vm = s.vid[moves[i].vm], *src = s.hid[moves[i].from],
                   *dst = s.hid[moves[i].to];
        size_t j;
        json_t *pr;
        json_array_foreach(pending, j, pr) {
            if (!strcmp(json_string_value(json_object_get(pr, "vm")), vm) &&
                !strcmp(json_string_value(json_object_get(pr, "source")), src) &&
                !strcmp(json_string_value(json_object_get(pr, "target")), dst)) {
                snprintf(rec, sizeof(rec), "%s", json_string_value(json_object_get(pr, "id")));
                break;
            }
        }
        if (!rec[0] && vdb_drs_rec_add(vx->db, cluster, vm, src, dst,
                                       drs_reason_name(moves[i].reason), moves[i].gain,
                                       moves[i].cost, moves[i].migration_ms, rec) < 0)
            continue;
        json_array_append_new(ids, json_string(rec));
        json_array_append_new(keep, json_string(rec));
        if (!strcmp(automation, "fullyAutomated") &&
            apply_rec(vx, cluster, rec, vm, dst, NULL, task, why, sizeof(why)) < 0)
            kvc_warn("cluster %s: cannot apply %s (%s to %s): %s", cluster, rec, vm, dst, why);
    }
    vdb_drs_rec_supersede(vx->db, cluster, keep);
    json_decref(keep);
    json_decref(pending);
    rc = n;
out_snap:
    snap_free(&s);
out:
    free(moves);
    json_decref(cfg);
    if (out && rc >= 0)
        *out = ids;
    else
        json_decref(ids);
    return rc;
}

static int64_t signature(struct vpxd *vx, const char *cluster)
{
    int64_t sig = -1;

    vdb_query_int(vx->db, &sig, "SELECT (SELECT count(*) FROM vm v JOIN host h ON h.id = v.host"
                  " WHERE h.cluster = ?1 AND v.power_state = 'POWERED_ON') * 100000 +"
                  " (SELECT count(*) FROM host WHERE cluster = ?1 AND connection_state ="
                  " 'CONNECTED' AND NOT maintenance)", "s", cluster);
    return sig;
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
    struct vpxd *vx = arg;
    json_t *rows = NULL, *r;
    int64_t now = mono_ms();
    size_t i;

    if (vdb_query_json(vx->db, &rows, "SELECT c.id, coalesce(d.interval_s, 60) AS interval_s"
                       " FROM cluster c LEFT JOIN drs_config d ON d.cluster = c.id WHERE"
                       " c.drs_enabled ORDER BY c.id", NULL) < 0)
        return;
    json_array_foreach(rows, i, r) {
        const char *id = json_string_value(json_object_get(r, "id"));
        struct cl_state *c = cl_get(id, true);
        int64_t sig;
        if (!c)
            continue;
        sig = signature(vx, id);
        if (c->sig >= 0 && sig != c->sig)
            c->kicked = true;           /* power-on, host added or leaving */
        c->sig = sig;
        if (c->inflight)
            continue;                   /* let the last pass's moves land first */
        if (c->kicked || now >= c->next_ms) {
            c->kicked = false;
            c->next_ms = now + json_integer_value(json_object_get(r, "interval_s")) * 1000;
            pass(vx, id, NULL);
        }
    }
    json_decref(rows);
}

void drs_kick(struct vpxd *vx, const char *cluster)
{
    if (!dvx)
        return;
    if (!cluster) {
        for (size_t i = 0; i < n_cls; i++)
            cls[i].kicked = true;
        return;
    }
    struct cl_state *c = cl_get(cluster, true);
    if (c)
        c->kicked = true;
}

int drs_start(struct vpxd *vx)
{
    struct timeval tv = { 1, 0 };

    dvx = vx;
    if (!(tick_ev = event_new(vx->base, -1, EV_PERSIST, tick, vx)))
        return -ENOMEM;
    event_add(tick_ev, &tv);
    /* The first pass of each cluster waits one interval after start-up, so
     * hosts can report their VMs and stats first. */
    return 0;
}

void drs_stop(struct vpxd *vx)
{
    if (tick_ev)
        event_free(tick_ev);
    tick_ev = NULL;
    dvx = NULL;
    for (size_t b = 0; b < STATS_BUCKETS; b++)
        while (stats[b]) {
            struct vstat *v = stats[b];
            stats[b] = v->next;
            free(v);
        }
}

/* ---- for the REST resource (api/drs.c) ---------------------------------- */

int drs_cluster_status(struct vpxd *vx, const char *cluster, json_t **out)
{
    struct cl_state *c = cl_get(cluster, false);
    json_t *cfg = NULL;
    struct snap s;
    struct drs_params p;
    int rc;

    rc = vdb_query_row(vx->db, &cfg, "SELECT c.drs_enabled AS enabled, coalesce(d.automation,"
                       " 'fullyAutomated') AS automation_level, coalesce(d.threshold, 3) AS"
                       " migration_threshold, coalesce(d.interval_s, 60) AS pass_interval_s"
                       " FROM cluster c LEFT JOIN drs_config d ON d.cluster = c.id WHERE"
                       " c.id = ?", "s", cluster);
    if (rc < 0)
        return rc;
    json_object_set_new(cfg, "enabled", json_boolean(json_integer_value(json_object_get(cfg,
                                                                                "enabled"))));
    if (snap_build(vx, cluster, NULL, &s) == 0) {
        params_for(vx, (int)json_integer_value(json_object_get(cfg, "migration_threshold")), &p);
        json_object_set_new(cfg, "imbalance", json_real(drs_imbalance(&s.c, &p)));
        json_t *loads = json_object();
        for (size_t h = 0; h < s.c.n_hosts; h++)
            json_object_set_new(loads, s.hid[h], json_real(drs_host_load(&s.c, &p, h)));
        json_object_set_new(cfg, "host_loads", loads);
        json_object_set_new(cfg, "hard_rule_violations",
                            json_integer((json_int_t)drs_hard_violations(&s.c)));
        snap_free(&s);
    }
    double t = drs_target_imbalance((int)json_integer_value(json_object_get(cfg,
                                                                "migration_threshold")));
    json_object_set_new(cfg, "target_imbalance", isfinite(t) ? json_real(t) : json_null());
    if (c && c->last_pass[0])
        json_object_set_new(cfg, "last_pass", json_string(c->last_pass));
    *out = cfg;
    return 0;
}

int drs_run_pass(struct vpxd *vx, const char *cluster, json_t **ids)
{
    struct cl_state *c = cl_get(cluster, true);

    if (c) {
        int64_t iv = 60;
        vdb_query_int(vx->db, &iv, "SELECT interval_s FROM drs_config WHERE cluster = ?", "s",
                      cluster);
        c->next_ms = mono_ms() + iv * 1000;     /* the timer starts over */
        c->kicked = false;
    }
    return pass(vx, cluster, ids);
}

int drs_apply(struct vpxd *vx, const char *cluster, const json_t *ids, const char *user,
              json_t **out, char *why, size_t wl)
{
    json_t *recs = NULL, *r, *res = json_object();
    char *list = ids ? json_dumps(ids, JSON_COMPACT) : NULL;
    size_t i;
    int rc;

    rc = vdb_query_json(vx->db, &recs, "SELECT id, vm, target FROM drs_recommendation WHERE"
                        " cluster = ?1 AND state = 'pending' AND (?2 IS NULL OR id IN (SELECT"
                        " value FROM json_each(?2))) ORDER BY rowid", "ss", cluster, list);
    free(list);
    if (rc < 0) {
        json_decref(res);
        return rc;
    }
    if (ids && json_array_size(recs) != json_array_size(ids)) {
        snprintf(why, wl, "only pending recommendations of cluster %s can be applied", cluster);
        json_decref(recs);
        json_decref(res);
        return -EINVAL;
    }
    json_array_foreach(recs, i, r) {
        char task[VDB_ID_MAX] = "", w[512];
        const char *id = json_string_value(json_object_get(r, "id"));
        if (apply_rec(vx, cluster, id, json_string_value(json_object_get(r, "vm")),
                      json_string_value(json_object_get(r, "target")), user, task, w,
                      sizeof(w)) == 0)
            json_object_set_new(res, id, json_pack("{s:s}", "task", task));
        else
            json_object_set_new(res, id, json_pack("{s:s}", "error", w));
    }
    json_decref(recs);
    *out = res;
    return 0;
}
