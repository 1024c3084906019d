/* Migration orchestration (see migration.h and docs/drs.md).
 *
 * One struct mig per migration, a small state machine driven by hostmgr
 * completions and one timer (progress polls, the deadline):
 *   QUEUED -> PREPARE (destination) -> SEND (source) -> POLL (source, until
 *   SWITCHOVER) -> FINISH_DST -> [inventory: the VM is on the destination]
 *   -> FINISH_SRC -> done.
 * Before FINISH_DST answers, every failure aborts on both hosts and the VM
 * keeps running on the source.
 *
 * With the disk (a datastore of the destination that the source does not
 * see): PREPARE names it (the destination makes the VM's folder there),
 * SEND carries with_disk, the progress covers disk then memory, and after
 * FINISH_DST the inventory takes the new datastore and config path; the
 * source's FINISH removes the old folder.  An abort removes the
 * destination's folder; the source's files are untouched until its FINISH.  At most one host call per migration is in
 * flight; a cancel or a failure seen while one is out is acted on when it
 * answers. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
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

KVC_LOG_MODULE(migration);

enum phase { P_QUEUED, P_PREPARE, P_SEND, P_POLL, P_FINISH_DST, P_FINISH_SRC };

struct mig {
    struct mig *next;
    struct vpxd *vx;
    char id[48];
    char vm[VDB_ID_MAX], src[VDB_ID_MAX], dst[VDB_ID_MAX];
    char uuid[40], name[256], dsname[256], network[256], user[128], reason[32];
    char move_ds[VDB_ID_MAX], move_dsname[256];  /* with the disk: where it goes */
    char guest_os[64];
    uint64_t disk_bytes;
    char listen[256];           /* the destination's stream address (prepare) */
    char src_thumb[128], dst_thumb[128];
    char task[VDB_ID_MAX];
    bool own_task;
    int cpu;
    int64_t mem_mib;
    bool powered_on;
    enum phase phase;
    bool in_call;               /* a host call is out */
    bool cancel, failed;        /* act when the call answers */
    bool prepared, sent;
    int err;
    char msg[1024];
    int last_progress;
    int64_t start_ms, deadline_ms;
    struct event *timer;
    vpxd_migrate_cb cb;
    void *arg;
};

static struct mig *migs;
static uint64_t mig_seq;
static bool stopping;           /* vpxd_migration_stop(): no new host calls */
static struct vpxd_migration_config cfg;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void fill_defaults(struct vpxd_migration_config *c)
{
    if (c->link_gbps <= 0)
        c->link_gbps = 1;
    if (c->max_per_host <= 0)
        c->max_per_host = c->link_gbps < 10 ? 2 : 8;
    if (!c->downtime_ms)
        c->downtime_ms = 500;
    if (!c->poll_ms)
        c->poll_ms = 250;
    if (c->timeout_ms <= 0)
        c->timeout_ms = 60000;
}

void vpxd_migration_configure(const struct vpxd_migration_config *c)
{
    cfg = *c;
    fill_defaults(&cfg);
}

void vpxd_migration_get_config(struct vpxd_migration_config *out)
{
    fill_defaults(&cfg);
    *out = cfg;
}

bool vpxd_migrating(const char *vm)
{
    for (struct mig *m = migs; m; m = m->next)
        if (!strcmp(m->vm, vm))
            return true;
    return false;
}

int64_t vpxd_migrating_to_mib(const char *host)
{
    int64_t n = 0;

    for (struct mig *m = migs; m; m = m->next)
        if (!strcmp(m->dst, host) && m->powered_on)
            n += m->mem_mib;
    return n;
}

static int active_on(const char *host)
{
    int n = 0;

    for (struct mig *m = migs; m; m = m->next)
        if (m->phase != P_QUEUED && (!strcmp(m->src, host) || !strcmp(m->dst, host)))
            n++;
    return n;
}

static int set_why(char *why, size_t len, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int set_why(char *why, size_t len, int err, const char *fmt, ...)
{
    va_list ap;

    if (why && len) {
        va_start(ap, fmt);
        vsnprintf(why, len, fmt, ap);
        va_end(ap);
    }
    return err;
}

/* ---- checks ------------------------------------------------------------- */

static bool host_connected(struct vpxd *vx, const char *host)
{
    struct hostmgr_host_status st;

    return vx->hm && hostmgr_host_status(vx->hm, host, &st) == 0 &&
           st.state == HOSTMGR_CONNECTED;
}

int vpxd_migrate_check(struct vpxd *vx, const struct vpxd_migrate_req *q, char *why,
                       size_t wl)
{
    json_t *vm = NULL, *dst = NULL, *nics;
    const char *src, *ds, *power, *k;
    char cl[VDB_ID_MAX] = "";
    int64_t n = 0, used = 0;
    json_t *nic;
    bool disk_move = false;
    int rc = 0;

    if (!q || !q->vm || !q->host)
        return set_why(why, wl, -EINVAL, "a VM and a destination host are required");
    if (vdb_query_row(vx->db, &vm, "SELECT v.*, v.hardware AS hardware_json, e.name FROM vm v"
                      " JOIN entity e ON e.id = v.id WHERE v.id = ?", "s", q->vm) < 0)
        return set_why(why, wl, -ENOENT, "virtual machine %s not found", q->vm);
    if (vdb_query_row(vx->db, &dst, "SELECT h.*, e.name FROM host h JOIN entity e ON"
                      " e.id = h.id WHERE h.id = ?", "s", q->host) < 0) {
        rc = set_why(why, wl, -ENOENT, "host %s not found", q->host);
        goto out;
    }
    src = json_string_value(json_object_get(vm, "host"));
    power = json_string_value(json_object_get(vm, "power_state"));
    ds = json_string_value(json_object_get(vm, "datastore"));
    if (!vx->hm) {
        rc = set_why(why, wl, -ENOTCONN, "%s", vx->hm_error ? vx->hm_error
                                                            : "host connections are not available");
        goto out;
    }
    if (!src || !*src) {
        rc = set_why(why, wl, -ENOTCONN, "virtual machine %s is not registered on any host",
                     q->vm);
        goto out;
    }
    if (!strcmp(src, q->host)) {
        rc = set_why(why, wl, -EALREADY, "virtual machine %s already runs on host %s", q->vm,
                     q->host);
        goto out;
    }
    if (q->cluster) {
        if (!vdb_entity_exists(vx->db, q->cluster, "cluster")) {
            rc = set_why(why, wl, -ENOENT, "cluster %s not found", q->cluster);
            goto out;
        }
        vdb_query_str(vx->db, cl, sizeof(cl), "SELECT coalesce(cluster, '') FROM host"
                      " WHERE id = ?", "s", q->host);
        if (strcmp(cl, q->cluster)) {
            rc = set_why(why, wl, -EINVAL, "host %s is not a member of cluster %s", q->host,
                         q->cluster);
            goto out;
        }
    }
    if (q->datastore) {
        if (!vdb_entity_exists(vx->db, q->datastore, "datastore")) {
            rc = set_why(why, wl, -ENOENT, "datastore %s not found", q->datastore);
            goto out;
        }
        if (!ds || strcmp(ds, q->datastore)) {
            vdb_query_int(vx->db, &n, "SELECT count(*) FROM host_datastore WHERE host = ? AND"
                          " datastore = ?", "ss", src, q->datastore);
            if (n) {
                rc = set_why(why, wl, -EINVAL, "moving the VM's files to datastore %s (storage"
                             " migration) is not done by a migration: give the VM's datastore"
                             " %s or none", q->datastore, ds ? ds : "(none)");
                goto out;
            }
            /* Its host does not see it: the disk goes over the stream. */
            if (!power || strcmp(power, "POWERED_ON")) {
                rc = set_why(why, wl, -ENOTSUP, "host %s does not see datastore %s: the disk"
                             " moves over the stream of a live migration, and virtual machine"
                             " %s is not powered on", src, q->datastore, q->vm);
                goto out;
            }
            disk_move = true;
        }
    }
    if (power && !strcmp(power, "SUSPENDED")) {
        rc = set_why(why, wl, -EBUSY, "virtual machine %s is suspended: power it on or off"
                     " first", q->vm);
        goto out;
    }
    if (vpxd_migrating(q->vm)) {
        rc = set_why(why, wl, -EBUSY, "virtual machine %s is already being migrated", q->vm);
        goto out;
    }
    if (!host_connected(vx, src)) {
        rc = set_why(why, wl, -ENOTCONN, "source host %s is not connected", src);
        goto out;
    }
    if (!host_connected(vx, q->host)) {
        rc = set_why(why, wl, -ENOTCONN, "destination host %s is not connected", q->host);
        goto out;
    }
    if (json_integer_value(json_object_get(dst, "maintenance")) ||
        drs_host_is_leaving(vx, q->host)) {
        rc = set_why(why, wl, -EBUSY, "destination host %s is in (or entering) maintenance"
                     " mode", q->host);
        goto out;
    }
    if (disk_move) {
        n = 0;
        vdb_query_int(vx->db, &n, "SELECT count(*) FROM host_datastore WHERE host = ? AND"
                      " datastore = ?", "ss", q->host, q->datastore);
        if (!n) {
            rc = set_why(why, wl, -EINVAL, "destination host %s does not see datastore %s",
                         q->host, q->datastore);
            goto out;
        }
    } else if (ds) {
        vdb_query_int(vx->db, &n, "SELECT count(*) FROM host_datastore WHERE host = ? AND"
                      " datastore = ?", "ss", q->host, ds);
        if (!n) {
            char dsn[256] = "";
            vdb_query_str(vx->db, dsn, sizeof(dsn), "SELECT name FROM entity WHERE id = ?",
                          "s", ds);
            rc = set_why(why, wl, -EINVAL, "destination host %s does not see the VM's"
                         " datastore %s (%s)", q->host, dsn, ds);
            goto out;
        }
    }
    nics = json_object_get(json_object_get(vm, "hardware"), "nics");
    json_object_foreach(nics, k, nic) {
        const char *net = json_string_value(json_object_get(json_object_get(nic, "backing"),
                                                            "network"));
        if (!net)
            continue;
        n = 0;
        vdb_query_int(vx->db, &n, "SELECT count(*) FROM host_network WHERE host = ? AND"
                      " network = ?", "ss", q->host, net);
        if (!n) {
            rc = set_why(why, wl, -EINVAL, "destination host %s does not have the VM's"
                         " network %s", q->host, net);
            goto out;
        }
    }
    if (power && !strcmp(power, "POWERED_ON")) {
        int64_t mem = json_integer_value(json_object_get(vm, "memory_mib"));
        int64_t cap = json_integer_value(json_object_get(dst, "memory_bytes")) / 1048576;
        int64_t cpus = json_integer_value(json_object_get(dst, "cpu_count"));
        vdb_query_int(vx->db, &used, "SELECT coalesce(sum(memory_mib), 0) FROM vm WHERE"
                      " host = ? AND power_state = 'POWERED_ON'", "s", q->host);
        used += vpxd_migrating_to_mib(q->host);
        if (used + mem > cap) {
            rc = set_why(why, wl, -ENOSPC, "destination host %s has %lld MiB of memory free,"
                         " the VM needs %lld MiB", q->host, (long long)(cap - used),
                         (long long)mem);
            goto out;
        }
        if (cpus && json_integer_value(json_object_get(vm, "cpu_count")) > cpus * 2) {
            rc = set_why(why, wl, -ENOSPC, "destination host %s has too few CPUs for the VM",
                         q->host);
            goto out;
        }
    }
    /* A must rule never gets broken, whoever asks. */
    {
        json_t *rules = NULL, *r;
        size_t i;
        vdb_query_json(vx->db, &rules, "SELECT name, kind, hosts AS hosts_json FROM drs_rule"
                       " WHERE enabled AND kind IN ('VM_HOST_MUST', 'VM_HOST_MUST_NOT') AND"
                       " EXISTS (SELECT 1 FROM json_each(drs_rule.vms) WHERE value = ?)",
                       "s", q->vm);
        json_array_foreach(rules, i, r) {
            bool listed = false, must = !strcmp(json_string_value(json_object_get(r, "kind")),
                                                "VM_HOST_MUST");
            size_t j;
            json_t *hh;
            json_array_foreach(json_object_get(r, "hosts"), j, hh)
                listed |= json_is_string(hh) && !strcmp(json_string_value(hh), q->host);
            if (listed != must) {
                rc = set_why(why, wl, -EPERM, "rule %s forbids host %s for virtual machine %s",
                             json_string_value(json_object_get(r, "name")), q->host, q->vm);
                break;
            }
        }
        json_decref(rules);
    }
out:
    json_decref(vm);
    json_decref(dst);
    return rc;
}

/* ---- the state machine -------------------------------------------------- */

static void step(struct mig *m);
static void schedule(void);

static void mig_free(struct mig *m)
{
    struct mig **pp;

    for (pp = &migs; *pp && *pp != m; pp = &(*pp)->next)
        ;
    if (*pp)
        *pp = m->next;
    if (m->timer)
        event_free(m->timer);
    free(m);
}

static void arm(struct mig *m, uint32_t ms)
{
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

    event_add(m->timer, &tv);
}

static void task_progress(struct mig *m, const char *status, int pct, const char *msg)
{
    if (m->task[0])
        vdb_task_progress(m->vx->db, m->task, status, pct, msg);
}

static void end(struct mig *m)
{
    vpxd_migrate_cb cb = m->cb;
    void *arg = m->arg;
    char task[VDB_ID_MAX], msg[sizeof(m->msg)];
    int err = m->err;

    snprintf(task, sizeof(task), "%s", m->task);
    snprintf(msg, sizeof(msg), "%s", m->msg);
    if (m->own_task && m->task[0]) {
        if (err) {
            json_t *e = json_pack("{s:s, s:[{s:s, s:s, s:[]}]}", "error_type",
                                  err == -ECANCELED ? "CANCELED" : "ERROR", "messages", "id",
                                  "kvc.migration.failed", "default_message", msg, "args");
            vdb_task_finish(m->vx->db, m->task, NULL, e);
            json_decref(e);
        } else {
            vdb_task_finish(m->vx->db, m->task, NULL, NULL);
        }
    } else if (m->task[0]) {
        vdb_task_set_cancelable(m->vx->db, m->task, false);
    }
    mig_free(m);
    if (cb)
        cb(arg, err, err ? msg : NULL, task);
    schedule();
}

/* Failure before the switch-over: undo on both hosts, the VM stays. */
static void fail(struct mig *m, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(struct mig *m, int err, const char *fmt, ...)
{
    va_list ap;
    char why[400];

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    if (m->in_call) {
        /* Acted on when the call answers. */
        if (!m->failed) {
            m->failed = true;
            m->err = err;
            snprintf(m->msg, sizeof(m->msg), "%s", why);
        }
        return;
    }
    m->err = err;
    snprintf(m->msg, sizeof(m->msg), "migration of %s from %s to %s failed: %s", m->vm,
             m->src, m->dst, why);
    if (m->sent && m->vx->hm)
        hostmgr_migrate_abort(m->vx->hm, m->src, m->id, NULL, NULL);
    if (m->prepared && m->vx->hm)
        hostmgr_migrate_abort(m->vx->hm, m->dst, m->id, NULL, NULL);
    kvc_warn("%s: %s", m->id, m->msg);
    vdb_event_add(m->vx->db, "VmFailedMigrateEvent", "error", m->vm, m->user,
                  "Cannot migrate %s from %s to %s: %s (it keeps running on %s)", m->name,
                  m->src, m->dst, why, m->src);
    end(m);
}

/* The common checks when a host call answers: returns true if the
 * migration must stop now (and stopped it). */
static bool stop_now(struct mig *m)
{
    if (!stopping)
        return false;
    m->in_call = false;
    m->err = -ECANCELED;
    snprintf(m->msg, sizeof(m->msg), "vpxd is stopping");
    end(m);
    return true;
}

static bool answered(struct mig *m)
{
    m->in_call = false;
    if (stop_now(m))
        return true;
    if (m->failed) {
        m->failed = false;
        char why[sizeof(m->msg)];
        snprintf(why, sizeof(why), "%s", m->msg);
        fail(m, m->err, "%s", why);
        return true;
    }
    if (m->cancel && m->phase <= P_POLL) {
        fail(m, -ECANCELED, "canceled by %s", m->user);
        return true;
    }
    return false;
}

static void on_prepared(void *arg, int err, const char *msg, const char *listen)
{
    struct mig *m = arg;

    if (!err) {
        m->prepared = true;
        snprintf(m->listen, sizeof(m->listen), "%s", listen ? listen : "");
    }
    if (answered(m))
        return;
    if (err)
        return fail(m, err, "destination %s refused: %s", m->dst, msg ? msg : strerror(-err));
    m->phase = P_SEND;
    step(m);
}

static void on_sent(void *arg, int err, const char *msg)
{
    struct mig *m = arg;

    if (!err)
        m->sent = true;
    if (answered(m))
        return;
    if (err)
        return fail(m, err, "source %s refused: %s", m->src, msg ? msg : strerror(-err));
    m->phase = P_POLL;
    task_progress(m, "RUNNING", 10, m->powered_on ? "copying memory" : "moving registration");
    arm(m, cfg.poll_ms);
}

static void on_status(void *arg, int err, const char *msg, const struct hostmgr_migrate_status *st)
{
    struct mig *m = arg;
    char line[128];

    if (answered(m))
        return;
    if (err || !st)
        return fail(m, err ? err : -EIO, "source %s: %s", m->src, msg ? msg : "no status");
    if (st->state == HOSTMGR_MIGRATE_SWITCHOVER || st->state == HOSTMGR_MIGRATE_DONE) {
        m->phase = P_FINISH_DST;
        task_progress(m, "RUNNING", 92, "switching over");
        return step(m);
    }
    if (st->state != HOSTMGR_MIGRATE_PRECOPY)
        return fail(m, -EIO, "source %s lost the migration", m->src);
    int pct = 10 + (int)st->progress * 80 / 100;
    if (pct != m->last_progress) {
        m->last_progress = pct;
        if (st->disk_total && st->disk_sent < st->disk_total)
            snprintf(line, sizeof(line), "copying the disk: %llu of %llu MiB sent",
                     (unsigned long long)(st->disk_sent >> 20),
                     (unsigned long long)(st->disk_total >> 20));
        else
            snprintf(line, sizeof(line), "pre-copy: %llu of %llu MiB sent",
                     (unsigned long long)(st->bytes_sent >> 20),
                     (unsigned long long)(st->bytes_total >> 20));
        task_progress(m, "RUNNING", pct, line);
    }
    arm(m, cfg.poll_ms);
}

static void on_src_finished(void *arg, int err, const char *msg, const struct hostmgr_vm_info *vi)
{
    struct mig *m = arg;

    if (stop_now(m))
        return;
    m->in_call = false;
    if (err)
        kvc_warn("%s: source %s did not confirm releasing %s (%s); its next inventory will",
                 m->id, m->src, m->vm, msg ? msg : strerror(-err));
    kvc_info("%s: %s now runs on %s (%lld ms)", m->id, m->vm, m->dst,
             (long long)(now_ms() - m->start_ms));
    vdb_event_add(m->vx->db, "VmMigratedEvent", "info", m->vm, m->user,
                  "Migration of %s from %s to %s%s%s completed (%s)", m->name, m->src, m->dst,
                  m->move_ds[0] ? ", its disk to datastore " : "", m->move_dsname, m->reason);
    m->err = 0;
    end(m);
}

static void on_dst_finished(void *arg, int err, const char *msg, const struct hostmgr_vm_info *vi)
{
    struct mig *m = arg;
    int rc;

    if (err && stop_now(m))
        return;
    m->in_call = false;
    if (err) {
        m->failed = false;
        return fail(m, err, "destination %s could not take the VM over: %s", m->dst,
                    msg ? msg : strerror(-err));
    }
    /* The point of no return: the VM runs on the destination now. */
    if ((rc = vdb_vm_set_host(m->vx->db, m->vm, m->dst)) < 0)
        kvc_err("%s: record %s on %s: %s", m->id, m->vm, m->dst, strerror(-rc));
    /* Its disk came along: its files are on the new datastore now. */
    if (m->move_ds[0] && (rc = vdb_vm_set_files(m->vx->db, m->vm, m->move_ds,
                                                vi && vi->config_path ? vi->config_path
                                                                      : "")) < 0)
        kvc_err("%s: record %s on datastore %s: %s", m->id, m->vm, m->move_ds, strerror(-rc));
    if (vi)
        vdb_vm_set_guest(m->vx->db, m->vm, vi->tools == HOSTMGR_TOOLS_RUNNING ? "RUNNING"
                         : "NOT_RUNNING", vi->tools == HOSTMGR_TOOLS_RUNNING ? "RUNNING"
                         : "NOT_RUNNING", NULL, NULL);
    m->phase = P_FINISH_SRC;
    task_progress(m, "RUNNING", 97, "releasing the source");
    step(m);
}

static void step(struct mig *m)
{
    struct hostmgr *hm = m->vx->hm;
    int rc = 0;

    if (stop_now(m))
        return;
    if (!hm)
        return fail(m, -ENOTCONN, "host connections are not available");
    m->in_call = true;
    switch (m->phase) {
    case P_PREPARE: {
        struct hostmgr_migrate_vm v = { .uuid = m->uuid, .name = m->name,
                                        .datastore = m->dsname,
                                        .network = m->network[0] ? m->network : NULL,
                                        .cpu_count = (uint32_t)m->cpu,
                                        .memory_mib = (uint64_t)m->mem_mib,
                                        .powered_on = m->powered_on,
                                        .move_datastore = m->move_ds[0] ? m->move_dsname
                                                                        : NULL,
                                        .guest_os = m->guest_os,
                                        .disk_bytes = m->disk_bytes };
        rc = hostmgr_migrate_prepare(hm, m->dst, m->id, &v, m->src, m->src_thumb, on_prepared,
                                     m);
        break;
    }
    case P_SEND: {
        /* Migrations on the same source share its vMotion link. */
        int n = active_on(m->src);
        uint64_t bw = (uint64_t)(cfg.link_gbps * 125000000.0 / (n > 0 ? n : 1));
        rc = hostmgr_migrate_send(hm, m->src, m->id, m->uuid, m->dst, bw, cfg.downtime_ms,
                                  m->listen, m->dst_thumb, m->move_ds[0] != 0, on_sent, m);
        break;
    }
    case P_POLL:
        rc = hostmgr_migrate_status(hm, m->src, m->id, on_status, m);
        break;
    case P_FINISH_DST:
        rc = hostmgr_migrate_finish(hm, m->dst, m->id, on_dst_finished, m);
        break;
    case P_FINISH_SRC:
        rc = hostmgr_migrate_finish(hm, m->src, m->id, on_src_finished, m);
        if (rc) {
            m->in_call = false;
            on_src_finished(m, rc, NULL, NULL);
        }
        return;
    default:
        m->in_call = false;
        return;
    }
    if (rc) {
        m->in_call = false;
        fail(m, rc, "%s %s: %s", m->phase == P_PREPARE || m->phase == P_FINISH_DST
                                 ? "destination" : "source",
             m->phase == P_PREPARE || m->phase == P_FINISH_DST ? m->dst : m->src,
             rc == -ENOTCONN ? "host not connected" : strerror(-rc));
    }
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct mig *m = arg;

    if (m->phase != P_POLL || m->in_call)
        return;
    if (m->cancel)
        return fail(m, -ECANCELED, "canceled by %s", m->user);
    if (!host_connected(m->vx, m->dst))
        return fail(m, -ENOTCONN, "destination host %s stopped responding", m->dst);
    if (now_ms() > m->deadline_ms)
        return fail(m, -ETIMEDOUT, "timed out after %lld ms",
                    (long long)(now_ms() - m->start_ms));
    step(m);
}

static void start(struct mig *m)
{
    m->phase = P_PREPARE;
    m->start_ms = now_ms();
    /* The model's time at the shared link plus a margin. */
    int64_t est = m->powered_on ? (int64_t)((double)m->mem_mib * 1048576.0 * 3 /
                                            (cfg.link_gbps * 125000000.0) * 1000) : 0;
    /* The disk goes once, plus what the guest writes meanwhile. */
    est += (int64_t)((double)m->disk_bytes * 2 / (cfg.link_gbps * 125000000.0) * 1000);
    m->deadline_ms = m->start_ms + est * cfg.max_per_host + cfg.timeout_ms;
    kvc_info("%s: %s (%s, %lld MiB) from %s to %s (%s)", m->id, m->vm, m->name,
             (long long)m->mem_mib, m->src, m->dst, m->reason);
    vdb_event_add(m->vx->db, m->powered_on ? "VmBeingHotMigratedEvent" : "VmBeingMigratedEvent",
                  "info", m->vm, m->user, "Migrating %s from %s to %s%s%s (%s)", m->name, m->src,
                  m->dst, m->move_ds[0] ? ", its disk to datastore " : "", m->move_dsname,
                  m->reason);
    task_progress(m, "RUNNING", 2, "preparing the destination");
    step(m);
}

static void schedule(void)
{
    static bool running, again;

    /* Starting one can end others (or itself) at once: never iterate over
     * a list a start may change; rescan after each. */
    if (running) {
        again = true;
        return;
    }
    running = true;
    do {
        struct mig *pick = NULL;
        again = false;
        for (struct mig *m = migs; m; m = m->next)      /* newest first: keep the last */
            if (m->phase == P_QUEUED && active_on(m->src) < cfg.max_per_host &&
                active_on(m->dst) < cfg.max_per_host)
                pick = m;
        if (pick) {
            start(pick);
            again = true;
        }
    } while (again);
    running = false;
}

int vpxd_migrate_vm(struct vpxd *vx, const struct vpxd_migrate_req *q, vpxd_migrate_cb cb,
                    void *arg, char out_task[VDB_ID_MAX], char *why, size_t wl)
{
    json_t *row = NULL, *nics, *nic;
    const char *k;
    struct mig *m;
    int rc;

    fill_defaults(&cfg);
    if ((rc = vpxd_migrate_check(vx, q, why, wl)))
        return rc;
    if (vdb_query_row(vx->db, &row, "SELECT v.host, v.instance_uuid, v.cpu_count, v.memory_mib,"
                      " v.power_state, v.hardware AS hardware_json, e.name, v.guest_os,"
                      " coalesce(v.datastore, '') AS ds,"
                      " (SELECT name FROM entity WHERE id = v.datastore) AS dsname FROM vm v"
                      " JOIN entity e ON e.id = v.id WHERE v.id = ?", "s", q->vm) < 0)
        return set_why(why, wl, -ENOENT, "virtual machine %s not found", q->vm);
    if (!(m = calloc(1, sizeof(*m)))) {
        json_decref(row);
        return set_why(why, wl, -ENOMEM, "out of memory");
    }
    m->vx = vx;
    snprintf(m->id, sizeof(m->id), "mig-%llu-%s", (unsigned long long)++mig_seq, q->vm);
    snprintf(m->vm, sizeof(m->vm), "%s", q->vm);
    snprintf(m->dst, sizeof(m->dst), "%s", q->host);
    snprintf(m->src, sizeof(m->src), "%s", json_string_value(json_object_get(row, "host")));
    snprintf(m->uuid, sizeof(m->uuid), "%s",
             json_string_value(json_object_get(row, "instance_uuid")));
    snprintf(m->name, sizeof(m->name), "%s", json_string_value(json_object_get(row, "name")));
    snprintf(m->dsname, sizeof(m->dsname), "%s",
             json_is_string(json_object_get(row, "dsname"))
             ? json_string_value(json_object_get(row, "dsname")) : "");
    snprintf(m->user, sizeof(m->user), "%s", q->user ? q->user : "vpxd");
    snprintf(m->reason, sizeof(m->reason), "%s", q->reason ? q->reason : "user");
    /* Each end of the stream pins the other's certificate. */
    vdb_query_str(vx->db, m->src_thumb, sizeof(m->src_thumb), "SELECT thumbprint FROM host"
                  " WHERE id = ?", "s", m->src);
    vdb_query_str(vx->db, m->dst_thumb, sizeof(m->dst_thumb), "SELECT thumbprint FROM host"
                  " WHERE id = ?", "s", m->dst);
    m->cpu = (int)json_integer_value(json_object_get(row, "cpu_count"));
    m->mem_mib = json_integer_value(json_object_get(row, "memory_mib"));
    m->powered_on = !strcmp(json_string_value(json_object_get(row, "power_state")),
                            "POWERED_ON");
    nics = json_object_get(json_object_get(row, "hardware"), "nics");
    json_object_foreach(nics, k, nic) {
        const char *nn = json_string_value(json_object_get(json_object_get(nic, "backing"),
                                                           "network_name"));
        if (nn && !m->network[0])
            snprintf(m->network, sizeof(m->network), "%s", nn);
    }
    if (q->datastore && strcmp(q->datastore, json_string_value(json_object_get(row, "ds")))) {
        /* vpxd_migrate_check said: the disk goes over the stream. */
        json_t *disks = json_object_get(json_object_get(row, "hardware"), "disks"), *d;
        snprintf(m->move_ds, sizeof(m->move_ds), "%s", q->datastore);
        vdb_query_str(vx->db, m->move_dsname, sizeof(m->move_dsname), "SELECT name FROM entity"
                      " WHERE id = ?", "s", q->datastore);
        snprintf(m->guest_os, sizeof(m->guest_os), "%s",
                 json_is_string(json_object_get(row, "guest_os"))
                 ? json_string_value(json_object_get(row, "guest_os")) : "");
        json_object_foreach(disks, k, d)
            m->disk_bytes += (uint64_t)json_integer_value(json_object_get(d, "capacity"));
    }
    json_decref(row);
    if (!m->dsname[0]) {
        free(m);
        return set_why(why, wl, -EINVAL, "virtual machine %s has no datastore on record", q->vm);
    }
    if (!(m->timer = event_new(vx->base, -1, 0, on_timer, m))) {
        free(m);
        return set_why(why, wl, -ENOMEM, "out of memory");
    }
    if (q->task) {
        snprintf(m->task, sizeof(m->task), "%s", q->task);
    } else if (vdb_task_create(vx->db, "com.vmware.vcenter.vm", "relocate", "vm", q->vm,
                               m->user, m->task) == 0) {
        m->own_task = true;
    }
    if (m->task[0])
        vdb_task_set_cancelable(vx->db, m->task, true);
    m->cb = cb;
    m->arg = arg;
    m->phase = P_QUEUED;
    m->next = migs;
    migs = m;
    if (out_task)
        snprintf(out_task, VDB_ID_MAX, "%s", m->task);
    task_progress(m, "PENDING", 0, "queued");
    schedule();
    return 0;
}

int vpxd_migrate_cancel(struct vpxd *vx, const char *task)
{
    for (struct mig *m = migs; m; m = m->next) {
        if (strcmp(m->task, task))
            continue;
        if (m->phase > P_POLL)
            return -EBUSY;
        m->cancel = true;
        if (m->phase == P_QUEUED || (m->phase == P_POLL && !m->in_call)) {
            event_del(m->timer);
            fail(m, -ECANCELED, "canceled by %s", m->user);
        }
        return 0;
    }
    return -ENOENT;
}

void vpxd_migration_stop(struct vpxd *vx)
{
    struct mig *m;

    /* Those waiting for a host end now; those with a call out end when it
     * completes (hostmgr_free() cancels it). */
    stopping = true;
    do {
        for (m = migs; m && m->in_call; m = m->next)
            ;
        if (m)
            stop_now(m);
    } while (m);
}

/* ---- maintenance mode --------------------------------------------------- */

struct maint {
    struct vpxd *vx;
    char host[VDB_ID_MAX], cluster[VDB_ID_MAX], user[128], task[VDB_ID_MAX];
    bool own_task;
    int total, done;
    json_t *failed;             /* names of VMs that could not move */
    vpxd_migrate_cb cb;
    void *arg;
};

static void maint_end(struct maint *mt, int err, const char *msg)
{
    if (mt->own_task && mt->task[0]) {
        if (err) {
            json_t *e = json_pack("{s:s, s:[{s:s, s:s, s:O}]}", "error_type", "ERROR",
                                  "messages", "id", "kvc.maintenance.failed",
                                  "default_message", msg, "args", mt->failed);
            vdb_task_finish(mt->vx->db, mt->task, NULL, e);
            json_decref(e);
        } else {
            vdb_task_finish(mt->vx->db, mt->task, NULL, NULL);
        }
    }
    if (mt->cb)
        mt->cb(mt->arg, err, msg, mt->task);
    json_decref(mt->failed);
    free(mt);
}

static void on_flag_set(void *arg, int err, const char *msg)
{
    struct maint *mt = arg;
    char m[512];

    if (err) {
        drs_host_leaving(mt->vx, mt->host, false);
        snprintf(m, sizeof(m), "host %s could not enter maintenance mode: %s", mt->host,
                 msg ? msg : strerror(-err));
        return maint_end(mt, err, m);
    }
    vdb_host_set_maintenance(mt->vx->db, mt->host, true);
    vdb_event_add(mt->vx->db, "EnteredMaintenanceModeEvent", "info", mt->host, mt->user,
                  "Host %s is in maintenance mode (%d VMs moved)", mt->host, mt->done);
    drs_host_leaving(mt->vx, mt->host, false);
    maint_end(mt, 0, NULL);
}

static void maint_evacuated(struct maint *mt)
{
    char m[1024];
    int rc;

    if (stopping) {
        drs_host_leaving(mt->vx, mt->host, false);
        return maint_end(mt, -ECANCELED, "vpxd is stopping");
    }
    if (json_array_size(mt->failed)) {
        char *list = json_dumps(mt->failed, JSON_COMPACT);
        drs_host_leaving(mt->vx, mt->host, false);
        snprintf(m, sizeof(m), "host %s cannot enter maintenance mode: %zu powered-on VMs could"
                 " not be moved: %s", mt->host, json_array_size(mt->failed), list ? list : "");
        free(list);
        vdb_event_add(mt->vx->db, "EnterMaintenanceModeFailedEvent", "error", mt->host,
                      mt->user, "%s", m);
        drs_kick(mt->vx, mt->cluster[0] ? mt->cluster : NULL);
        return maint_end(mt, -EBUSY, m);
    }
    if (mt->task[0])
        vdb_task_progress(mt->vx->db, mt->task, "RUNNING", 95, "setting the host's flag");
    rc = mt->vx->hm ? hostmgr_host_maintenance(mt->vx->hm, mt->host, true, on_flag_set, mt)
                    : -ENOTCONN;
    if (rc)
        on_flag_set(mt, rc, NULL);
}

struct maint_vm {
    struct maint *mt;
    char vm[VDB_ID_MAX], name[256];
};

static void on_vm_moved(void *arg, int err, const char *msg, const char *task)
{
    struct maint_vm *mv = arg;
    struct maint *mt = mv->mt;

    mt->done++;
    if (err)
        json_array_append_new(mt->failed, json_sprintf("%s (%s): %s", mv->name, mv->vm,
                                                       msg ? msg : strerror(-err)));
    free(mv);
    if (mt->task[0] && mt->total > 1)
        vdb_task_progress(mt->vx->db, mt->task, "RUNNING",
                          5 + 85 * mt->done / mt->total, "moving powered-on VMs");
    if (mt->done == mt->total)
        maint_evacuated(mt);
}

static void on_flag_cleared(void *arg, int err, const char *msg)
{
    struct maint *mt = arg;
    char m[512];

    if (err) {
        snprintf(m, sizeof(m), "host %s could not exit maintenance mode: %s", mt->host,
                 msg ? msg : strerror(-err));
        return maint_end(mt, err, m);
    }
    vdb_host_set_maintenance(mt->vx->db, mt->host, false);
    vdb_event_add(mt->vx->db, "ExitMaintenanceModeEvent", "info", mt->host, mt->user,
                  "Host %s left maintenance mode", mt->host);
    drs_kick(mt->vx, mt->cluster[0] ? mt->cluster : NULL);
    maint_end(mt, 0, NULL);
}

int vpxd_host_maintenance(struct vpxd *vx, const char *host, bool enter, const char *user,
                          const char *task, vpxd_migrate_cb cb, void *arg, char *why, size_t wl)
{
    json_t *vms = NULL, *v;
    struct maint *mt;
    int64_t inm = 0;
    size_t i;
    int rc;

    if (!vdb_entity_exists(vx->db, host, "host"))
        return set_why(why, wl, -ENOENT, "host %s not found", host);
    if (!host_connected(vx, host))
        return set_why(why, wl, -ENOTCONN, "host %s is not connected", host);
    vdb_query_int(vx->db, &inm, "SELECT maintenance FROM host WHERE id = ?", "s", host);
    if (enter && (inm || drs_host_is_leaving(vx, host)))
        return set_why(why, wl, -EALREADY, "host %s is already %s maintenance mode", host,
                       inm ? "in" : "entering");
    if (!enter && !inm)
        return set_why(why, wl, -EALREADY, "host %s is not in maintenance mode", host);
    if (!(mt = calloc(1, sizeof(*mt))))
        return set_why(why, wl, -ENOMEM, "out of memory");
    mt->vx = vx;
    mt->cb = cb;
    mt->arg = arg;
    mt->failed = json_array();
    snprintf(mt->host, sizeof(mt->host), "%s", host);
    snprintf(mt->user, sizeof(mt->user), "%s", user ? user : "vpxd");
    vdb_query_str(vx->db, mt->cluster, sizeof(mt->cluster), "SELECT coalesce(cluster, '')"
                  " FROM host WHERE id = ?", "s", host);
    if (task) {
        snprintf(mt->task, sizeof(mt->task), "%s", task);
    } else if (vdb_task_create(vx->db, "com.vmware.vcenter.host", enter ? "enter_maintenance"
                               : "exit_maintenance", "host", host, mt->user, mt->task) == 0) {
        mt->own_task = true;
        vdb_task_progress(vx->db, mt->task, "RUNNING", 0, "started");
    }
    if (!enter) {
        rc = hostmgr_host_maintenance(vx->hm, host, false, on_flag_cleared, mt);
        if (rc)
            on_flag_cleared(mt, rc, NULL);
        return 0;
    }
    drs_host_leaving(vx, host, true);
    vdb_event_add(vx->db, "EnteringMaintenanceModeEvent", "info", host, mt->user,
                  "Host %s is entering maintenance mode", host);
    vdb_query_json(vx->db, &vms, "SELECT v.id, e.name FROM vm v JOIN entity e ON e.id = v.id"
                   " WHERE v.host = ? AND v.power_state = 'POWERED_ON' ORDER BY v.memory_mib"
                   " DESC, v.id", "s", host);
    /* One more than the VMs: the loop itself, so a migration that ends at
     * once cannot finish the whole operation under it. */
    mt->total = (int)json_array_size(vms) + 1;
    /* Place them one after another, so each choice sees the previous ones
     * (vpxd_migrating_to_mib counts memory already on its way). */
    json_array_foreach(vms, i, v) {
        const char *id = json_string_value(json_object_get(v, "id"));
        const char *name = json_string_value(json_object_get(v, "name"));
        const char *excl[] = { host, NULL };
        char dst[VDB_ID_MAX], pw[400];
        struct maint_vm *mv = calloc(1, sizeof(*mv));
        struct drs_place_req pr = { .cluster = mt->cluster, .vm = id, .exclude = excl };
        struct vpxd_migrate_req q = { .vm = id, .user = mt->user, .reason = "maintenance" };

        if (!mv)
            continue;
        mv->mt = mt;
        snprintf(mv->vm, sizeof(mv->vm), "%s", id);
        snprintf(mv->name, sizeof(mv->name), "%s", name ? name : id);
        if (!mt->cluster[0]) {
            snprintf(pw, sizeof(pw), "the host is in no cluster");
            rc = -ENOENT;
        } else {
            rc = drs_place_vm(vx, &pr, dst, pw, sizeof(pw));
        }
        if (!rc) {
            q.host = dst;
            rc = vpxd_migrate_vm(vx, &q, on_vm_moved, mv, NULL, pw, sizeof(pw));
        }
        if (rc) {
            mt->done++;
            json_array_append_new(mt->failed, json_sprintf("%s (%s): %s", mv->name, id, pw));
            free(mv);
        }
    }
    json_decref(vms);
    if (mt->task[0])
        vdb_task_progress(vx->db, mt->task, "RUNNING", 5, "moving powered-on VMs");
    if (++mt->done == mt->total)
        maint_evacuated(mt);
    return 0;
}
