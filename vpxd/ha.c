/* vSphere-style HA (ha.h, docs/ha.md). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>

#include "lib/lease.h"
#include "lib/log.h"
#include "vpxd/db.h"
#include "vpxd/db_ha.h"
#include "vpxd/ha.h"
#include "vpxd/hostmgr.h"
#include "vpxd/vpxd.h"

KVC_LOG_MODULE(ha);

#define HA_TICK_MS 100
#define HA_RETRY_MS 500             /* a failed restart attempt waits this long */
#define HA_MAX_RESET_LOG 64
#define HA_MAX_EXCLUDE 8

struct ha_host {
    struct ha_host *next;
    char id[VDB_ID_MAX];
    char uuid[40];
    char backend[16];
    char pushed[1024];          /* signature of the settings last pushed */
    bool pushing;
    bool was_connected;
    char state[16];             /* HA state as last recorded */
    /* datastore heartbeat change tracking, per host (all its datastores) */
    char hb_sig[256];
    int64_t hb_changed_ms;
};

struct ha_vm {
    struct ha_vm *next;
    char id[VDB_ID_MAX];
    bool seen;
    bool on;
    int64_t on_since;
    bool tools_seen;
    int64_t tools_lost_since;
    int64_t resets[HA_MAX_RESET_LOG];
    int n_resets;
    bool busy;                  /* a reset or restart call is out */
    bool max_reported;
    bool user_stopped;          /* a user powered it off: never restart it */
    char host[VDB_ID_MAX];      /* where the inventory had it last tick */
    int64_t settle_until;       /* just powered on by HA: ignore a stale "off" */
};

struct ha_restart {
    struct ha_restart *next;
    char vm[VDB_ID_MAX];
    bool in_flight;
    int64_t not_before;
    char exclude[HA_MAX_EXCLUDE][VDB_ID_MAX];
    int n_exclude;
    bool no_room_reported;
    struct kvc_lease_watch watch;   /* the VM's lease as last seen */
    bool lease_logged;
};

struct ha {
    struct vpxd *vx;
    struct event *tick;
    int64_t started_ms;
    struct ha_host *hosts;
    struct ha_vm *vms;
    struct ha_restart *restarts;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *js(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static int64_t ji(json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

int ha_priority_rank(const char *p)
{
    static const char *const names[] = { "disabled", "lowest", "low", "medium", "high",
                                         "highest" };
    for (int i = 0; p && i < 6; i++)
        if (!strcmp(p, names[i]))
            return i;
    return -1;
}

static struct ha_host *host_get(struct ha *ha, const char *id)
{
    struct ha_host *h;

    for (h = ha->hosts; h; h = h->next)
        if (!strcmp(h->id, id))
            return h;
    if (!(h = calloc(1, sizeof(*h))))
        return NULL;
    snprintf(h->id, sizeof(h->id), "%s", id);
    vdb_query_str(ha->vx->db, h->uuid, sizeof(h->uuid),
                  "SELECT uuid FROM ha_host WHERE host = ?", "s", id);
    vdb_query_str(ha->vx->db, h->state, sizeof(h->state),
                  "SELECT state FROM ha_host WHERE host = ?", "s", id);
    h->next = ha->hosts;
    ha->hosts = h;
    return h;
}

static struct ha_vm *vm_get(struct ha *ha, const char *id)
{
    struct ha_vm *v;

    for (v = ha->vms; v; v = v->next)
        if (!strcmp(v->id, id))
            return v;
    if (!(v = calloc(1, sizeof(*v))))
        return NULL;
    snprintf(v->id, sizeof(v->id), "%s", id);
    v->next = ha->vms;
    ha->vms = v;
    return v;
}

static struct ha_restart *restart_get(struct ha *ha, const char *vm)
{
    struct ha_restart *r;

    for (r = ha->restarts; r; r = r->next)
        if (!strcmp(r->vm, vm))
            return r;
    if (!(r = calloc(1, sizeof(*r))))
        return NULL;
    snprintf(r->vm, sizeof(r->vm), "%s", vm);
    r->next = ha->restarts;
    ha->restarts = r;
    return r;
}

static void restart_forget(struct ha *ha, const char *vm)
{
    for (struct ha_restart **pp = &ha->restarts; *pp; pp = &(*pp)->next)
        if (!strcmp((*pp)->vm, vm)) {
            struct ha_restart *r = *pp;
            *pp = r->next;
            free(r);
            return;
        }
}

static void set_host_state(struct ha *ha, struct ha_host *h, const char *state, const char *why)
{
    if (!strcmp(h->state, state))
        return;
    kvc_info("host %s: HA state %s -> %s (%s)", h->id, h->state[0] ? h->state : "unknown",
             state, why ? why : "");
    snprintf(h->state, sizeof(h->state), "%s", state);
    if (vdb_ha_host_set(ha->vx->db, h->id, NULL, state, why) < 0)
        kvc_warn("host %s: cannot record HA state %s", h->id, state);
}

/* ---- datastore heartbeat files (written by hostd, read here) ------------ */

/* "ds:///path/" -> "/path". */
static void url_path(const char *url, char *out, size_t len)
{
    size_t n;

    if (!strncmp(url, "ds://", 5))
        url += 5;
    snprintf(out, len, "%s", url);
    n = strlen(out);
    while (n > 1 && out[n - 1] == '/')
        out[--n] = '\0';
}

static json_t *shared_datastores(struct ha *ha, const char *host)
{
    json_t *rows = NULL;

    vdb_query_json(ha->vx->db, &rows, "SELECT d.id, d.url FROM host_datastore hd"
                   " JOIN datastore d ON d.id = hd.datastore WHERE hd.host = ?"
                   " AND d.ds_type = 'NFS'", "s", host);
    return rows;
}

/* One line of a heartbeat or power-on file: time_ms and seq (-1: none). */
static int read_line(const char *path, int64_t *time_ms, int64_t *seq, int *isolated)
{
    char line[256];
    const char *p;
    FILE *f = fopen(path, "r");

    *time_ms = *seq = -1;
    if (isolated)
        *isolated = 0;
    if (!f)
        return -errno;
    line[0] = '\0';
    if (!fgets(line, sizeof(line), f))
        line[0] = '\0';
    fclose(f);
    if ((p = strstr(line, "time_ms=")))
        *time_ms = strtoll(p + 8, NULL, 10);
    if ((p = strstr(line, "seq=")))
        *seq = strtoll(p + 4, NULL, 10);
    if (isolated && (p = strstr(line, "isolated=")))
        *isolated = atoi(p + 9);
    return *time_ms >= 0 ? 0 : -EBADMSG;
}

/* Whether the host's datastore heartbeat still beats: a heartbeat younger
 * than the detection time, or one whose sequence moved within it (on our
 * own clock, so a host with a skewed clock is not declared dead). */
static bool ds_heartbeat_alive(struct ha *ha, struct ha_host *h, json_t *dss, int64_t det,
                               int64_t now, char *why, size_t wlen)
{
    char sig[256] = "", path[4096 + 64], dir[4096];
    bool alive = false, any = false;
    size_t i;
    json_t *d;

    json_array_foreach(dss, i, d) {
        int64_t t, seq;
        url_path(js(d, "url"), dir, sizeof(dir));
        snprintf(path, sizeof(path), "%s/.kvc-hb/%s", dir, h->uuid);
        if (read_line(path, &t, &seq, NULL) < 0)
            continue;
        any = true;
        size_t n = strlen(sig);
        snprintf(sig + n, sizeof(sig) - n, "%lld:%lld;", (long long)t, (long long)seq);
        if (now - t < det) {
            alive = true;
            snprintf(why, wlen, "datastore heartbeat on %s is %lld ms old", js(d, "id"),
                     (long long)(now - t));
        }
    }
    if (strcmp(sig, h->hb_sig)) {
        if (h->hb_sig[0] && any)
            h->hb_changed_ms = now;
        snprintf(h->hb_sig, sizeof(h->hb_sig), "%s", sig);
    }
    if (!alive && h->hb_changed_ms && now - h->hb_changed_ms < det) {
        alive = true;
        snprintf(why, wlen, "datastore heartbeat moved %lld ms ago",
                 (long long)(now - h->hb_changed_ms));
    }
    if (!alive)
        snprintf(why, wlen, any ? "no network heartbeat and no datastore heartbeat for %lld ms"
                 : "no network heartbeat for %lld ms and no datastore heartbeat file",
                 (long long)det);
    return alive;
}

/* The power-on file of a host whose datastore heartbeat beats: its fresh
 * contents (isolated flag, listed VM uuids as a JSON array), or NULL. */
static json_t *read_poweron(struct ha_host *h, json_t *dss, int64_t det, int64_t now,
                            int *isolated)
{
    char path[4096 + 64], dir[4096], line[256];
    size_t i;
    json_t *d;

    json_array_foreach(dss, i, d) {
        int64_t t, seq;
        FILE *f;
        url_path(js(d, "url"), dir, sizeof(dir));
        snprintf(path, sizeof(path), "%s/.kvc-hb/%s.poweron", dir, h->uuid);
        if (read_line(path, &t, &seq, isolated) < 0 || now - t >= det)
            continue;
        if (!(f = fopen(path, "r")))
            continue;
        json_t *list = json_array();
        if (fgets(line, sizeof(line), f))
            while (fgets(line, sizeof(line), f)) {
                line[strcspn(line, "\n")] = '\0';
                if (!strncmp(line, "vm=", 3))
                    json_array_append_new(list, json_string(line + 3));
            }
        fclose(f);
        return list;
    }
    return NULL;
}

static bool listed(json_t *list, const char *uuid)
{
    size_t i;
    json_t *v;

    json_array_foreach(list, i, v)
        if (!strcasecmp(json_string_value(v), uuid))
            return true;
    return false;
}

/* ---- failover queue ------------------------------------------------------ */

/* Queue HOST's powered-on VMs (all, or only those missing from LIST) for a
 * restart.  Returns how many were queued. */
static int queue_vms(struct ha *ha, json_t *cl, const char *host, json_t *only_missing_from,
                     const char *reason)
{
    json_t *rows = NULL, *v;
    size_t i;
    int n = 0;

    /* Also what HA last saw running there that the inventory has since
     * moved to a stale, powered-off copy on another host. */
    vdb_query_json(ha->vx->db, &rows, "SELECT v.id, v.instance_uuid, v.config_path,"
                   " coalesce(hv.restart_priority, ?1) AS prio FROM vm v LEFT JOIN ha_vm hv"
                   " ON hv.vm = v.id WHERE (v.host = ?2 AND v.power_state = 'POWERED_ON')"
                   " OR (hv.running_host = ?2 AND hv.protected AND coalesce(v.host, '') != ?2"
                   " AND v.power_state != 'POWERED_ON')",
                   "ss", js(cl, "restart_priority"), host);
    json_array_foreach(rows, i, v) {
        int rank = ha_priority_rank(js(v, "prio"));
        if (only_missing_from && listed(only_missing_from, js(v, "instance_uuid")))
            continue;
        if (rank <= 0) {
            kvc_info("VM %s on %s: restart priority disabled: not restarted", js(v, "id"), host);
            continue;
        }
        if (!*js(v, "config_path")) {
            kvc_warn("VM %s on %s: no config path known: cannot restart it", js(v, "id"), host);
            continue;
        }
        if (vdb_ha_restart_add(ha->vx->db, js(v, "id"), js(cl, "cluster"), host, rank,
                               reason) > 0) {
            kvc_info("VM %s: queued for restart (%s on %s, priority %s)", js(v, "id"), reason,
                     host, js(v, "prio"));
            n++;
        }
    }
    json_decref(rows);
    return n;
}

/* ---- host judgement ------------------------------------------------------ */

static void judge_host(struct ha *ha, json_t *cl, json_t *hrow, int64_t now)
{
    struct vpxd *vx = ha->vx;
    const char *id = js(hrow, "id");
    struct ha_host *h = host_get(ha, id);
    struct hostmgr_host_status st;
    int64_t det = ji(cl, "detection_ms"), last;
    char why[256] = "";

    if (!h || !vx->hm || hostmgr_host_status(vx->hm, id, &st) < 0)
        return;
    last = st.last_heartbeat_ms ? st.last_heartbeat_ms : ha->started_ms;
    if (st.state == HOSTMGR_CONNECTED && now - last < det) {
        if (!h->was_connected)
            h->pushed[0] = '\0';        /* (re)connected: settings again */
        h->was_connected = true;
        h->hb_sig[0] = '\0';            /* judge its datastore heartbeat afresh next time */
        h->hb_changed_ms = 0;
        set_host_state(ha, h, "healthy", "network heartbeats arrive");
        return;
    }
    h->was_connected = false;
    if (now - last < det || now - ha->started_ms < (det > 2000 ? det : 2000)) {
        if (strcmp(h->state, "failed") && strcmp(h->state, "isolated") &&
            strcmp(h->state, "partitioned"))
            set_host_state(ha, h, "unreachable", "network heartbeats missed");
        return;
    }
    json_t *dss = h->uuid[0] ? shared_datastores(ha, id) : NULL;
    if (json_array_size(dss) && ds_heartbeat_alive(ha, h, dss, det, now, why, sizeof(why))) {
        int isolated = 0;
        json_t *on = read_poweron(h, dss, det, now, &isolated);
        set_host_state(ha, h, isolated ? "isolated" : "partitioned", why);
        /* Only what the host itself stopped and dropped from its list. */
        if (on && queue_vms(ha, cl, id, on, isolated ? "isolated" : "partitioned") > 0)
            vdb_event_add(vx->db, "com.vmware.vc.HA.ClusterFailoverActionInitiatedEvent",
                          "warning", js(cl, "cluster"), NULL,
                          "vSphere HA restarts the VMs that %s host %s powered off",
                          isolated ? "isolated" : "partitioned", id);
        json_decref(on);
    } else {
        if (!json_array_size(dss))
            snprintf(why, sizeof(why), "no network heartbeat for %lld ms (no heartbeat"
                     " datastore to tell isolation from failure)", (long long)det);
        bool was = !strcmp(h->state, "failed");
        set_host_state(ha, h, "failed", why);
        int n = queue_vms(ha, cl, id, NULL, "host_failed");
        if (!was || n > 0)
            vdb_event_add(vx->db, "com.vmware.vc.HA.ClusterFailoverActionInitiatedEvent",
                          "warning", js(cl, "cluster"), NULL,
                          "vSphere HA initiated a failover action for %d VM(s) of failed host %s",
                          n, id);
    }
    json_decref(dss);
}

/* ---- settings pushed to hosts -------------------------------------------- */

struct push_ctx {
    struct ha *ha;
    char host[VDB_ID_MAX];
    char sig[1024];
};

static void on_pushed(void *arg, int err, const char *msg)
{
    struct push_ctx *p = arg;
    struct ha_host *h;

    for (h = p->ha->hosts; h && strcmp(h->id, p->host); h = h->next)
        ;
    if (h) {
        h->pushing = false;
        if (!err)
            snprintf(h->pushed, sizeof(h->pushed), "%s", p->sig);
        else
            kvc_warn("host %s: HA settings not taken: %s", p->host, msg ? msg : strerror(-err));
    }
    free(p);
}

static void push_settings(struct ha *ha, json_t *cl, json_t *hosts)
{
    const char *peers[64];
    char peerbuf[64][300];
    size_t i, np = 0;
    json_t *hrow;
    const char *resp = js(cl, "isolation_response");

    json_array_foreach(hosts, i, hrow) {
        const char *id = js(hrow, "id");
        struct ha_host *h = host_get(ha, id);
        struct hostmgr_host_status st;
        char sig[1024];
        size_t k;
        json_t *o;

        if (!h || h->pushing || !ha->vx->hm || hostmgr_host_status(ha->vx->hm, id, &st) < 0 ||
            st.state != HOSTMGR_CONNECTED)
            continue;
        np = 0;
        json_array_foreach(hosts, k, o)
            if (strcmp(js(o, "id"), id) && np < 64) {
                snprintf(peerbuf[np], sizeof(peerbuf[np]), "%s:%lld", js(o, "hostname"),
                         (long long)ji(o, "port"));
                peers[np] = peerbuf[np];
                np++;
            }
        snprintf(sig, sizeof(sig), "%d/%lld/%lld/%zu", (int)ji(cl, "ha_enabled"),
                 (long long)ji(cl, "generation"), (long long)ji(cl, "detection_ms"), np);
        for (k = 0; k < np && strlen(sig) + strlen(peers[k]) + 2 < sizeof(sig); k++)
            strcat(strcat(sig, ","), peers[k]);
        if (!strcmp(sig, h->pushed))
            continue;
        struct hostmgr_ha_config c = {
            .enabled = ji(cl, "ha_enabled") != 0,
            .detection_ms = (uint32_t)ji(cl, "detection_ms"),
            .isolation_response = !strcmp(resp, "power_off") ? 1 : !strcmp(resp, "shutdown") ? 2 : 0,
            .isolation_address = js(cl, "isolation_address"),
            .peers = peers, .n_peers = np,
        };
        struct push_ctx *p = calloc(1, sizeof(*p));
        if (!p)
            continue;
        p->ha = ha;
        snprintf(p->host, sizeof(p->host), "%s", id);
        snprintf(p->sig, sizeof(p->sig), "%s", sig);
        h->pushing = true;
        if (hostmgr_host_ha_config(ha->vx->hm, id, &c, on_pushed, p) < 0) {
            h->pushing = false;
            free(p);
        }
    }
}

void ha_settings_changed(struct vpxd *vx, const char *cluster)
{
    struct ha *ha = vx ? vx->ha : NULL;

    if (!ha)
        return;
    (void)cluster;
    for (struct ha_host *h = ha->hosts; h; h = h->next)
        h->pushed[0] = '\0';            /* next tick pushes again */
}

/* ---- placement ------------------------------------------------------------ */

int ha_place(struct vpxd *vx, const char *cluster, const char *vm,
             const char *const *exclude, char out[VDB_ID_MAX])
{
    struct ha *ha = vx ? vx->ha : NULL;
    json_t *rows = NULL, *r, *fo = NULL;
    int64_t need = 0, best_left = -1;
    size_t i;
    int rc;

    if (!ha)
        return -ENOENT;
    if (vdb_query_int(vx->db, &need, "SELECT memory_mib FROM vm WHERE id = ?", "s", vm) < 0)
        return -ENOENT;
    vdb_query_row(vx->db, &fo, "SELECT admission_policy, failover_hosts AS fh_json FROM"
                  " ha_cluster WHERE cluster = ?", "s", cluster);
    /* Free memory per candidate host: capacity minus powered-on VMs minus
     * restarts already headed there. */
    rc = vdb_query_json(vx->db, &rows,
        "SELECT h.id, h.memory_bytes / 1048576 - coalesce((SELECT sum(v.memory_mib) FROM vm v"
        " WHERE v.host = h.id AND v.power_state = 'POWERED_ON'), 0)"
        " - coalesce((SELECT sum(v.memory_mib) FROM ha_restart r JOIN vm v ON v.id = r.vm"
        " WHERE r.target = h.id AND r.state != 'pending' AND r.vm != ?2"
        " AND NOT (coalesce(v.host, '') = h.id AND v.power_state = 'POWERED_ON')), 0)"
        " AS free_mib"
        " FROM host h LEFT JOIN ha_host hh ON hh.host = h.id"
        " WHERE h.cluster = ?1 AND h.connection_state = 'CONNECTED' AND NOT h.maintenance"
        " AND coalesce(hh.state, 'healthy') = 'healthy'"
        " AND EXISTS (SELECT 1 FROM host_datastore hd JOIN vm v ON v.datastore = hd.datastore"
        " WHERE v.id = ?2 AND hd.host = h.id)", "ss", cluster, vm);
    if (rc < 0) {
        json_decref(fo);
        return rc;
    }
    out[0] = '\0';
    for (int pass = 0; pass < 2 && !out[0]; pass++) {
        /* Dedicated failover hosts first: that is what they are for. */
        json_array_foreach(rows, i, r) {
            const char *id = js(r, "id");
            bool skip = false, is_fo = false;
            int64_t left = ji(r, "free_mib") - need;
            size_t k;
            json_t *x;
            for (int e = 0; exclude && exclude[e] && !skip; e++)
                skip = !strcmp(exclude[e], id);
            if (fo && !strcmp(js(fo, "admission_policy"), "failover_hosts"))
                json_array_foreach(json_object_get(fo, "fh"), k, x)
                    if (!strcmp(json_string_value(x) ? json_string_value(x) : "", id))
                        is_fo = true;
            if (skip || left < 0 || (pass == 0 && !is_fo))
                continue;
            if (best_left < 0 || left < best_left) {   /* best fit */
                best_left = left;
                snprintf(out, VDB_ID_MAX, "%s", id);
            }
        }
    }
    json_decref(rows);
    json_decref(fo);
    return out[0] ? 0 : -ENOSPC;
}

/* ---- restarts -------------------------------------------------------------- */

struct rs_ctx {
    struct ha *ha;
    char vm[VDB_ID_MAX], uuid[40], target[VDB_ID_MAX];
};

static void restart_failed(struct ha *ha, const char *vm, const char *target, int err,
                           const char *msg, bool exclude)
{
    struct ha_restart *r = restart_get(ha, vm);

    kvc_warn("VM %s: restart on %s failed: %s; retrying", vm, target,
             msg ? msg : strerror(-err));
    vdb_ha_restart_update(ha->vx->db, vm, "pending", "", true);
    if (r) {
        r->in_flight = false;
        r->not_before = now_ms() + HA_RETRY_MS;
        if (exclude && r->n_exclude < HA_MAX_EXCLUDE)
            snprintf(r->exclude[r->n_exclude++], VDB_ID_MAX, "%s", target);
    }
}

static void on_powered(void *arg, int err, const char *msg, const struct hostmgr_vm_info *vm)
{
    struct rs_ctx *c = arg;
    struct ha *ha = c->ha;

    if (err && err != -EALREADY) {
        bool room = err == -ENOSPC;
        if (room)       /* leave no stale registration where it cannot run */
            hostmgr_vm_unregister(ha->vx->hm, c->target, c->uuid, NULL, NULL);
        restart_failed(ha, c->vm, c->target, err, msg, room);
    } else {
        kvc_info("VM %s restarted by HA on %s", c->vm, c->target);
        vdb_ha_restart_delete(ha->vx->db, c->vm);
        vdb_ha_vm_set_protected(ha->vx->db, c->vm, true);
        vdb_ha_vm_set_running_host(ha->vx->db, c->vm, c->target);
        vdb_event_add(ha->vx->db, "com.vmware.vc.ha.VmRestartedByHAEvent", "warning", c->vm,
                      NULL, "vSphere HA restarted virtual machine %s on host %s", c->vm,
                      c->target);
        restart_forget(ha, c->vm);
    }
    free(c);
}

static void power_on(struct rs_ctx *c)
{
    int rc;

    vdb_ha_restart_update(c->ha->vx->db, c->vm, "powering_on", c->target, false);
    rc = hostmgr_vm_power(c->ha->vx->hm, c->target, c->uuid, HOSTMGR_POWER_ON, on_powered, c);
    if (rc < 0) {
        restart_failed(c->ha, c->vm, c->target, rc, NULL, false);
        free(c);
    }
}

static void on_registered(void *arg, int err, const char *msg, const struct hostmgr_vm_info *vm)
{
    struct rs_ctx *c = arg;

    if (err && err != -EEXIST) {
        restart_failed(c->ha, c->vm, c->target, err, msg, err != -EBUSY);
        free(c);
        return;
    }
    power_on(c);
}

/* One queued VM: still needed?  Then register on a survivor and power on. */
static void restart_one(struct ha *ha, json_t *row, int64_t now)
{
    struct vpxd *vx = ha->vx;
    const char *vm = js(row, "vm"), *cur = js(row, "cur_host");
    struct ha_restart *r = restart_get(ha, vm);
    char target[VDB_ID_MAX] = "";
    const char *excl[HA_MAX_EXCLUDE + 2];
    int n = 0, rc;

    if (!r || r->in_flight || now < r->not_before)
        return;
    /* Wait for the VM's lease (lib/lease.h) to be free or expired: the
     * host that held it may still run the VM.  The host we register it on
     * checks again before its power-on; this only saves useless tries. */
    if (*js(row, "ds_url") && *js(row, "config_path")) {
        char dir[4096], path[4096 + 300], err[256];
        const char *rel = strchr(js(row, "config_path"), ']');
        struct kvc_lease_record rec;
        int64_t wait = 0;
        /* Powered on where it is registered (it stopped there, or a stale
         * copy there is what is left): that host's own lease is no bar. */
        bool same_host = strcmp(cur, js(row, "from_host")) ||
                         !strcmp(js(row, "reason"), "vm_crashed");
        url_path(js(row, "ds_url"), dir, sizeof(dir));
        rel = rel ? rel + 1 : "";
        while (*rel == ' ')
            rel++;
        size_t rl = strlen(rel);
        if (rl > 4 && !strcmp(rel + rl - 4, ".vmx")) {
            snprintf(path, sizeof(path), "%s/%.*s.lck", dir, (int)(rl - 4), rel);
            int lrc = kvc_lease_read(path, &rec, err, sizeof(err));
            if ((lrc == 0 || lrc == -ENOENT) &&
                kvc_lease_judge(lrc ? NULL : &rec, "", &r->watch, kvc_lease_wall_ms(),
                                kvc_lease_mono_ms(), &wait) == KVC_LEASE_LIVE &&
                strcmp(rec.owner, js(row, "target_uuid")) &&
                !(same_host && !strcmp(rec.owner, js(row, "cur_uuid")))) {
                if (!r->lease_logged)
                    kvc_info("VM %s: waiting for its lease (held by %s, %lld ms to expiry)",
                             vm, rec.owner_name, (long long)wait);
                r->lease_logged = true;
                r->not_before = now + (wait < HA_RETRY_MS ? (wait > 50 ? wait : 50) : HA_RETRY_MS);
                return;
            }
        }
    }
    /* Someone runs it already (the host came back with it, or it was
     * restarted elsewhere): nothing to do. */
    if (!strcmp(js(row, "power_state"), "POWERED_ON") && *cur &&
        (strcmp(cur, js(row, "from_host")) || !strcmp(js(row, "cur_conn"), "CONNECTED"))) {
        kvc_info("VM %s runs on %s: restart not needed", vm, cur);
        vdb_ha_restart_delete(vx->db, vm);
        restart_forget(ha, vm);
        return;
    }
    if (*cur && !strcmp(js(row, "cur_conn"), "CONNECTED") &&
        (strcmp(cur, js(row, "from_host")) || !strcmp(js(row, "reason"), "vm_crashed") ||
         !strcmp(js(row, "reason"), "host_failed_moved"))) {
        /* Registered there already (or it stopped where it runs). */
        snprintf(target, sizeof(target), "%s", cur);
    } else if (*js(row, "target")) {
        json_t *t = NULL;
        if (vdb_query_row(vx->db, &t, "SELECT h.connection_state FROM host h WHERE h.id = ?",
                          "s", js(row, "target")) == 0 &&
            !strcmp(js(t, "connection_state"), "CONNECTED"))
            snprintf(target, sizeof(target), "%s", js(row, "target"));
        json_decref(t);
    }
    if (!target[0]) {
        excl[n++] = js(row, "from_host");
        for (int i = 0; i < r->n_exclude; i++)
            excl[n++] = r->exclude[i];
        excl[n] = NULL;
        rc = ha_place(vx, js(row, "cluster"), vm, excl, target);
        if (rc < 0 && r->n_exclude) {
            r->n_exclude = 0;           /* try the excluded ones again later */
        }
        if (rc < 0) {
            if (!r->no_room_reported) {
                r->no_room_reported = true;
                vdb_event_add(vx->db, "com.vmware.vc.HA.VmRestartFailedEvent", "error", vm,
                              NULL, "vSphere HA cannot restart %s yet: no surviving host"
                              " has room for it; it keeps trying", vm);
            }
            r->not_before = now + HA_RETRY_MS;
            return;
        }
    }
    struct rs_ctx *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->ha = ha;
    snprintf(c->vm, sizeof(c->vm), "%s", vm);
    snprintf(c->uuid, sizeof(c->uuid), "%s", js(row, "instance_uuid"));
    snprintf(c->target, sizeof(c->target), "%s", target);
    r->in_flight = true;
    kvc_info("VM %s: restarting on %s (%s from %s, attempt %lld)", vm, target,
             js(row, "reason"), js(row, "from_host"), (long long)ji(row, "attempts") + 1);
    if (!strcmp(cur, target)) {
        power_on(c);
        return;
    }
    vdb_ha_restart_update(vx->db, vm, "registering", target, true);
    rc = hostmgr_vm_register(vx->hm, target, js(row, "config_path"), c->uuid, on_registered, c);
    if (rc < 0) {
        restart_failed(ha, vm, target, rc, NULL, false);
        free(c);
    }
}

static void run_restarts(struct ha *ha, int64_t now)
{
    json_t *rows = NULL, *row;
    size_t i;
    json_t *top = json_object();        /* cluster -> highest rank still queued */

    vdb_query_json(ha->vx->db, &rows,
        "SELECT r.vm, r.cluster, r.from_host, r.rank, r.state, r.target, r.attempts, r.reason,"
        " v.instance_uuid, v.config_path, coalesce(v.host, '') AS cur_host, v.power_state,"
        " coalesce((SELECT connection_state FROM host WHERE id = v.host), '') AS cur_conn,"
        " coalesce((SELECT url FROM datastore WHERE id = v.datastore), '') AS ds_url,"
        " coalesce((SELECT uuid FROM ha_host WHERE host = r.target), '') AS target_uuid,"
        " coalesce((SELECT uuid FROM ha_host WHERE host = v.host), '') AS cur_uuid"
        " FROM ha_restart r JOIN vm v ON v.id = r.vm ORDER BY r.rank DESC, r.created", NULL);
    json_array_foreach(rows, i, row) {
        const char *cl = js(row, "cluster");
        json_t *t = json_object_get(top, cl);
        if (!t)
            json_object_set_new(top, cl, json_integer(ji(row, "rank")));
        else if (json_integer_value(t) > ji(row, "rank"))
            continue;                   /* higher priorities first */
        restart_one(ha, row, now);
    }
    json_decref(rows);
    json_decref(top);
}

/* ---- VM monitoring -------------------------------------------------------- */

struct vmop_ctx {
    struct ha *ha;
    char vm[VDB_ID_MAX];
};

static void on_vm_op(void *arg, int err, const char *msg, const struct hostmgr_vm_info *vm)
{
    struct vmop_ctx *c = arg;
    struct ha_vm *v = vm_get(c->ha, c->vm);

    if (v)
        v->busy = false;
    if (err)
        kvc_warn("VM %s: VM monitoring action failed: %s", c->vm, msg ? msg : strerror(-err));
    free(c);
}

static bool reset_allowed(struct ha_vm *v, json_t *cl, int64_t now)
{
    int64_t window = ji(cl, "vm_max_resets_window_s") * 1000, n = 0;

    for (int i = 0; i < v->n_resets; i++)
        n += now - v->resets[i] < window;
    return n < ji(cl, "vm_max_resets");
}

static void note_reset(struct ha_vm *v, int64_t now)
{
    if (v->n_resets == HA_MAX_RESET_LOG) {
        memmove(v->resets, v->resets + 1, sizeof(v->resets[0]) * (HA_MAX_RESET_LOG - 1));
        v->n_resets--;
    }
    v->resets[v->n_resets++] = now;
}

static void monitor_vms(struct ha *ha, json_t *cl, int64_t now)
{
    json_t *rows = NULL, *row;
    size_t i;
    int64_t fail_ms = ji(cl, "vm_failure_interval_s") * 1000;
    int64_t up_ms = ji(cl, "vm_min_uptime_s") * 1000;

    vdb_query_json(ha->vx->db, &rows,
        "SELECT v.id, v.instance_uuid, v.host, v.power_state, v.tools_run_state,"
        " coalesce(hv.protected, 0) AS protected, coalesce(hv.restart_priority, ?) AS prio,"
        " coalesce(hv.running_host, '') AS running_host,"
        " (SELECT count(*) FROM ha_restart r WHERE r.vm = v.id) AS queued"
        " FROM vm v JOIN host h ON h.id = v.host LEFT JOIN ha_vm hv ON hv.vm = v.id"
        " WHERE h.cluster = ? AND h.connection_state = 'CONNECTED'", "ss",
        js(cl, "restart_priority"), js(cl, "cluster"));
    json_array_foreach(rows, i, row) {
        const char *id = js(row, "id");
        struct ha_vm *v = vm_get(ha, id);
        bool on = !strcmp(js(row, "power_state"), "POWERED_ON");
        bool tools = !strcmp(js(row, "tools_run_state"), "RUNNING");
        struct ha_host *h = host_get(ha, js(row, "host"));

        if (!v || !h || v->busy || ji(row, "queued"))
            continue;
        if (on && strcmp(js(row, "running_host"), js(row, "host")))
            vdb_ha_vm_set_running_host(ha->vx->db, id, js(row, "host"));
        if (on && (!v->seen || !v->on)) {
            v->on_since = now;
            v->tools_seen = false;
            v->tools_lost_since = 0;
            v->max_reported = false;
            if (!ji(row, "protected"))
                vdb_ha_vm_set_protected(ha->vx->db, id, true);
        }
        if (!on && v->seen && v->on && ji(row, "protected") && !v->user_stopped &&
            now >= v->settle_until && ha_priority_rank(js(row, "prio")) > 0) {
            /* It stopped by itself (nobody powered it off through vpxd).
             * Either its guest died where it ran (a crash: counted against
             * the reset limit), or the inventory moved it: a host came back
             * with a stale copy while the host that ran it went away.  Both
             * go through the failover queue, which powers it on where it is
             * registered once its lease is free. */
            bool moved = strcmp(v->host, js(row, "host")) != 0;
            v->on = false;
            snprintf(v->host, sizeof(v->host), "%s", js(row, "host"));
            if (moved || reset_allowed(v, cl, now)) {
                if (!moved)
                    note_reset(v, now);
                v->settle_until = now + 1000;
                kvc_warn("VM %s: %s: restarting it", id, moved ? "its host went away"
                         : "guest stopped on its own");
                vdb_ha_restart_add(ha->vx->db, id, js(cl, "cluster"), js(row, "host"),
                                   ha_priority_rank(js(row, "prio")),
                                   moved ? "host_failed_moved" : "vm_crashed");
            }
            continue;
        }
        snprintf(v->host, sizeof(v->host), "%s", js(row, "host"));
        v->seen = true;
        v->on = on;
        if (!on || !ji(cl, "vm_monitoring"))
            continue;
        if (tools) {
            v->tools_seen = true;
            v->tools_lost_since = 0;
            continue;
        }
        if (!v->tools_lost_since)
            v->tools_lost_since = now;
        /* Heartbeats that stopped, or (where hosts report guest heartbeats)
         * never started within the minimum uptime. */
        bool lost = v->tools_seen ? now - v->tools_lost_since >= fail_ms
                                  : strcmp(h->backend, "kvm") && now - v->on_since >= up_ms + fail_ms;
        if (!lost || now - v->on_since < up_ms)
            continue;
        if (!reset_allowed(v, cl, now)) {
            if (!v->max_reported) {
                v->max_reported = true;
                vdb_event_add(ha->vx->db, "com.vmware.vc.HA.VmMonitoringMaxResetsEvent",
                              "error", id, NULL, "vSphere HA stopped resetting %s: %lld resets"
                              " within %lld s", id, (long long)ji(cl, "vm_max_resets"),
                              (long long)ji(cl, "vm_max_resets_window_s"));
            }
            continue;
        }
        struct vmop_ctx *c = calloc(1, sizeof(*c));
        if (!c)
            continue;
        c->ha = ha;
        snprintf(c->vm, sizeof(c->vm), "%s", id);
        note_reset(v, now);
        v->busy = true;
        v->on_since = now;
        v->tools_seen = false;
        v->tools_lost_since = 0;
        kvc_warn("VM %s: no guest heartbeat: resetting it", id);
        vdb_event_add(ha->vx->db, "VmDasBeingResetEvent", "warning", id, NULL,
                      "vSphere HA is resetting %s: its guest heartbeat stopped", id);
        if (hostmgr_vm_power(ha->vx->hm, js(row, "host"), js(row, "instance_uuid"),
                             HOSTMGR_POWER_RESET, on_vm_op, c) < 0) {
            v->busy = false;
            free(c);
        }
    }
    json_decref(rows);
}

void ha_vm_user_power(struct vpxd *vx, const char *vm, bool on)
{
    struct ha *ha = vx ? vx->ha : NULL;
    struct ha_vm *v;

    if (vx && vx->db)
        vdb_ha_vm_set_protected(vx->db, vm, on);
    if (ha && (v = vm_get(ha, vm)))
        v->user_stopped = !on;
}

/* ---- the tick ----------------------------------------------------------- */

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct ha *ha = arg;
    struct vdb *db = ha->vx->db;
    json_t *cls = NULL, *cl;
    int64_t now = now_ms();
    size_t i;

    if (!ha->vx->hm)
        return;
    vdb_query_json(db, &cls, "SELECT c.id AS cluster, c.ha_enabled, hc.* FROM cluster c"
                   " JOIN ha_cluster hc ON hc.cluster = c.id", NULL);
    json_array_foreach(cls, i, cl) {
        json_t *hosts = NULL, *h;
        size_t k;
        vdb_query_json(db, &hosts, "SELECT id, hostname, port FROM host WHERE cluster = ?"
                       " ORDER BY id", "s", js(cl, "cluster"));
        push_settings(ha, cl, hosts);
        if (ji(cl, "ha_enabled") && ji(cl, "host_monitoring"))
            json_array_foreach(hosts, k, h)
                judge_host(ha, cl, h, now);
        if (ji(cl, "ha_enabled"))
            monitor_vms(ha, cl, now);   /* guest heartbeats only with vm_monitoring */
        json_decref(hosts);
    }
    json_decref(cls);
    run_restarts(ha, now);
}

/* ---- hooks from the host listener --------------------------------------- */

void ha_host_info(struct vpxd *vx, const char *host_id, const struct hostmgr_host_info *in)
{
    struct ha *ha = vx ? vx->ha : NULL;
    struct ha_host *h;

    if (!ha || !in || !(h = host_get(ha, host_id)))
        return;
    snprintf(h->backend, sizeof(h->backend), "%s", in->backend ? in->backend : "");
    h->pushed[0] = '\0';
    if (in->uuid && strcmp(in->uuid, h->uuid)) {
        snprintf(h->uuid, sizeof(h->uuid), "%s", in->uuid);
        vdb_ha_host_set(vx->db, host_id, in->uuid, NULL, NULL);
    }
}

static void on_unregistered(void *arg, int err, const char *msg)
{
    char *what = arg;

    if (err)
        kvc_warn("%s: %s", what, msg ? msg : strerror(-err));
    free(what);
}

/* A host that comes back lists VMs HA restarted elsewhere meanwhile: drop
 * its stale registrations (the files stay; the VM runs from them). */
void ha_inventory(struct vpxd *vx, const char *host_id, const struct hostmgr_vm_info *vms,
                  size_t n)
{
    struct ha *ha = vx ? vx->ha : NULL;

    if (!ha || !vx->hm)
        return;
    for (size_t i = 0; i < n; i++) {
        json_t *row = NULL;
        if (vdb_query_row(vx->db, &row, "SELECT v.id, v.host, v.power_state,"
                          " h.connection_state FROM vm v JOIN host h ON h.id = v.host"
                          " WHERE v.instance_uuid = ? AND v.host != ?", "ss", vms[i].uuid,
                          host_id) < 0)
            continue;
        if (!strcmp(js(row, "connection_state"), "CONNECTED") &&
            !strcmp(js(row, "power_state"), "POWERED_ON")) {
            if (vms[i].power == HOSTMGR_POWERED_OFF) {
                char *what = NULL;
                kvc_info("host %s came back with VM %s, which runs on %s now: unregistering"
                         " the stale copy", host_id, js(row, "id"), js(row, "host"));
                if (asprintf(&what, "host %s: unregister stale VM %s", host_id,
                             js(row, "id")) < 0)
                    what = NULL;
                if (hostmgr_vm_unregister(vx->hm, host_id, vms[i].uuid, on_unregistered,
                                          what) < 0)
                    free(what);
            } else {
                kvc_err("VM %s reported running on %s and on %s", js(row, "id"), host_id,
                        js(row, "host"));
                vdb_event_add(vx->db, "com.vmware.vc.HA.VmDuplicateRunEvent", "error",
                              js(row, "id"), NULL, "VM %s is reported running on %s and %s",
                              js(row, "id"), host_id, js(row, "host"));
            }
        }
        json_decref(row);
    }
}

/* ---- admission control --------------------------------------------------- */

static int cmp_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

int ha_admission_check(struct vpxd *vx, const char *vm, char *why, size_t wlen)
{
    json_t *cl = NULL, *hosts = NULL, *h;
    int64_t need = 0, used = 0, total = 0, cap, *caps = NULL;
    size_t i, n;
    int rc = 0;

    if (why && wlen)
        why[0] = '\0';
    if (!vx || !vx->db || !why || wlen < 2)
        return 0;
    if (vdb_query_row(vx->db, &cl, "SELECT c.id AS cluster, c.ha_enabled, hc.admission_policy,"
                      " hc.host_failures, hc.mem_percent, hc.failover_hosts AS fh_json,"
                      " v.memory_mib, v.host FROM vm v JOIN host hh ON hh.id = v.host"
                      " JOIN cluster c ON c.id = hh.cluster JOIN ha_cluster hc"
                      " ON hc.cluster = c.id WHERE v.id = ?", "s", vm) < 0)
        return 0;                       /* not in a cluster */
    if (!ji(cl, "ha_enabled") || !strcmp(js(cl, "admission_policy"), "disabled"))
        goto out;
    need = ji(cl, "memory_mib");
    vdb_query_json(vx->db, &hosts, "SELECT h.id, h.memory_bytes / 1048576 AS mib,"
                   " coalesce((SELECT sum(v.memory_mib) FROM vm v WHERE v.host = h.id AND"
                   " v.power_state = 'POWERED_ON'), 0) AS used FROM host h WHERE h.cluster = ?"
                   " AND h.connection_state = 'CONNECTED' AND NOT h.maintenance", "s",
                   js(cl, "cluster"));
    n = json_array_size(hosts);
    caps = calloc(n + 1, sizeof(*caps));
    if (!caps)
        goto out;
    json_array_foreach(hosts, i, h) {
        bool fo = false;
        size_t k;
        json_t *x;
        json_array_foreach(json_object_get(cl, "fh"), k, x)
            fo |= !strcmp(json_string_value(x) ? json_string_value(x) : "", js(h, "id"));
        used += ji(h, "used");
        if (!strcmp(js(cl, "admission_policy"), "failover_hosts") && fo) {
            if (!strcmp(js(h, "id"), js(cl, "host"))) {
                snprintf(why, wlen, "host %s is a dedicated vSphere HA failover host:"
                         " VMs do not run there until a failover", js(h, "id"));
                rc = -ENOSPC;
                goto out;
            }
            continue;                   /* held back for failover */
        }
        caps[i] = ji(h, "mib");
        total += caps[i];
    }
    if (!strcmp(js(cl, "admission_policy"), "host_failures")) {
        int64_t tol = ji(cl, "host_failures");
        qsort(caps, n, sizeof(*caps), cmp_desc);
        cap = total;
        for (i = 0; i < n && (int64_t)i < tol; i++)
            cap -= caps[i];
        if (used + need > cap)
            snprintf(why, wlen, "powering on %s (%lld MiB) would leave the cluster unable to"
                     " restart its VMs after %lld host failure(s): %lld MiB powered on, %lld MiB"
                     " left after losing the largest host(s)", vm, (long long)need,
                     (long long)tol, (long long)used, (long long)cap);
    } else if (!strcmp(js(cl, "admission_policy"), "percentage")) {
        cap = total * (100 - ji(cl, "mem_percent")) / 100;
        if (used + need > cap)
            snprintf(why, wlen, "powering on %s (%lld MiB) would use more than %lld%% of the"
                     " cluster's memory (%lld of %lld MiB); %lld%% is reserved for failover",
                     vm, (long long)need, 100 - (long long)ji(cl, "mem_percent"),
                     (long long)(used + need), (long long)total,
                     (long long)ji(cl, "mem_percent"));
    } else {
        cap = total;
        if (used + need > cap)
            snprintf(why, wlen, "powering on %s (%lld MiB) does not fit the hosts that are not"
                     " failover hosts (%lld of %lld MiB used)", vm, (long long)need,
                     (long long)used, (long long)cap);
    }
    if (why[0])
        rc = -ENOSPC;
out:
    if (rc == -ENOSPC)
        vdb_event_add(vx->db, "InsufficientFailoverResourcesEvent", "warning",
                      js(cl, "cluster"), NULL, "%s", why);
    free(caps);
    json_decref(hosts);
    json_decref(cl);
    return rc;
}

/* ---- lifetime ------------------------------------------------------------ */

int ha_start(struct vpxd *vx)
{
    struct ha *ha = calloc(1, sizeof(*ha));
    struct timeval tv = { 0, HA_TICK_MS * 1000 };
    json_t *rows = NULL;

    if (!ha)
        return -ENOMEM;
    ha->vx = vx;
    ha->started_ms = now_ms();
    if (!(ha->tick = event_new(vx->base, -1, EV_PERSIST, tick_cb, ha))) {
        free(ha);
        return -ENOMEM;
    }
    /* A failover the last run left half done goes on: each VM from the
     * start, on the host chosen before if that host can still take it
     * (registering twice on it is answered EEXIST). */
    vdb_query_json(vx->db, &rows, "SELECT vm FROM ha_restart WHERE state != 'pending'", NULL);
    for (size_t i = 0; i < json_array_size(rows); i++)
        vdb_ha_restart_update(vx->db, js(json_array_get(rows, i), "vm"), "pending", NULL,
                              false);
    if (json_array_size(rows))
        kvc_info("resuming an interrupted failover: %zu VM(s) in flight when vpxd stopped",
                 json_array_size(rows));
    json_decref(rows);
    event_add(ha->tick, &tv);
    vx->ha = ha;
    return 0;
}

void ha_stop(struct vpxd *vx)
{
    struct ha *ha = vx ? vx->ha : NULL;

    if (!ha)
        return;
    event_free(ha->tick);
    while (ha->hosts) {
        struct ha_host *h = ha->hosts;
        ha->hosts = h->next;
        free(h);
    }
    while (ha->vms) {
        struct ha_vm *v = ha->vms;
        ha->vms = v->next;
        free(v);
    }
    while (ha->restarts) {
        struct ha_restart *r = ha->restarts;
        ha->restarts = r->next;
        free(r);
    }
    free(ha);
    vx->ha = NULL;
}
