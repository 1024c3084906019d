/* vpxd's side of the host connections (see hosts.h). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "lib/log.h"
#include "vpxd/api/api.h"
#include "vpxd/db.h"
#include "vpxd/drs.h"
#include "vpxd/ha.h"
#include "vpxd/hostmgr.h"
#include "vpxd/hostmgr_db.h"
#include "vpxd/hosts.h"
#include "vpxd/rp.h"
#include "vpxd/stats.h"
#include "vpxd/vpxd.h"

KVC_LOG_MODULE(hosts);

#define MAX_PENDING 256
static char pending[MAX_PENDING][40];

void vpxd_hosts_pending_add(const char *uuid)
{
    for (int i = 0; i < MAX_PENDING; i++) {
        if (!pending[i][0]) {
            snprintf(pending[i], sizeof(pending[i]), "%s", uuid);
            return;
        }
    }
}

void vpxd_hosts_pending_del(const char *uuid)
{
    for (int i = 0; i < MAX_PENDING; i++)
        if (!strcmp(pending[i], uuid))
            pending[i][0] = '\0';
}

static bool is_pending(const char *uuid)
{
    for (int i = 0; i < MAX_PENDING; i++)
        if (pending[i][0] && !strcmp(pending[i], uuid))
            return true;
    return false;
}

/* What hosts report goes to the database through hostmgr_db_ops; vpxd
 * only keeps a VM it is creating out of it until the create completes, so
 * the completion records it in the folder and pool the caller chose. */
static void on_host_state(void *arg, const char *host_id, enum hostmgr_conn_state st,
                          const char *reason)
{
    struct vpxd *vx = arg;

    hostmgr_db_ops.host_state(vx->db, host_id, st, reason);
}

static void on_host_info(void *arg, const char *host_id, const struct hostmgr_host_info *in)
{
    struct vpxd *vx = arg;

    hostmgr_db_ops.host_info(vx->db, host_id, in);
    ha_host_info(vx, host_id, in);
}

static void on_inventory(void *arg, const char *host_id, uint64_t generation,
                         const struct hostmgr_datastore_info *ds, size_t n_ds,
                         const struct hostmgr_network_info *nets, size_t n_nets,
                         const struct hostmgr_vm_info *vms, size_t n_vms)
{
    struct vpxd *vx = arg;
    struct hostmgr_vm_info *keep = calloc(n_vms + 1, sizeof(*keep));
    size_t n = 0;

    if (!keep)
        return;
    for (size_t i = 0; i < n_vms; i++)
        if (!is_pending(vms[i].uuid))
            keep[n++] = vms[i];
    hostmgr_db_ops.inventory(vx->db, host_id, generation, ds, n_ds, nets, n_nets, keep, n);
    ha_inventory(vx, host_id, keep, n);
    free(keep);
    rp_push(vx->hm, vx->db, host_id);   /* (re)connected: its cluster's pool tree */
}

static void on_vm_changed(void *arg, const char *host_id, const struct hostmgr_vm_info *vm)
{
    struct vpxd *vx = arg;

    if (!is_pending(vm->uuid))
        hostmgr_db_ops.vm_changed(vx->db, host_id, vm);
}

static void on_vm_removed(void *arg, const char *host_id, const char *uuid)
{
    struct vpxd *vx = arg;

    hostmgr_db_ops.vm_removed(vx->db, host_id, uuid);
}

static void on_stats(void *arg, const char *host_id, const struct hostmgr_stats_sample *s,
                     size_t n)
{
    struct vpxd *vx = arg;

    if (hostmgr_db_ops.stats)
        hostmgr_db_ops.stats(vx->db, host_id, s, n);
    drs_stats(vx, host_id, s, n);               /* the demand DRS balances */
    vpxd_stats_record(vx->stats, host_id, s, n);    /* stored, with rollups */
}

static const struct hostmgr_ops ops = {
    .host_state = on_host_state,
    .host_info = on_host_info,
    .inventory = on_inventory,
    .vm_changed = on_vm_changed,
    .vm_removed = on_vm_removed,
    .stats = on_stats,
};

/* A host that cannot be reached when vpxd starts (it is down, or its
 * network is) is tried again every second until it answers or leaves the
 * database: HA must judge it, and it must be managed again when it
 * returns. */
struct reattach {
    struct reattach *next;
    struct vpxd *vx;
    char id[VDB_ID_MAX];
    struct event *ev;
    bool warned;
};
static struct reattach *retries;

static int attach_from_db(struct vpxd *vx, struct reattach *ra);

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
    struct reattach *ra = arg, **pp;
    int rc;

    for (pp = &retries; *pp && *pp != ra; pp = &(*pp)->next)
        ;
    if (*pp)
        *pp = ra->next;
    event_free(ra->ev);
    ra->ev = NULL;
    if (!ra->vx->hm || (rc = attach_from_db(ra->vx, ra)) < 0)
        free(ra);                       /* gone from the database, or managed already */
}

static void on_reattach(void *arg, int err, const char *msg)
{
    struct reattach *ra = arg;
    struct timeval tv = { 1, 0 };

    if (!err || err == -ECANCELED || !(ra->ev = evtimer_new(ra->vx->base, retry_cb, ra))) {
        free(ra);
        return;
    }
    if (!ra->warned)
        kvc_warn("host %s: cannot reconnect: %s; retrying every second", ra->id,
                 msg ? msg : strerror(-err));
    ra->warned = true;
    ra->next = retries;
    retries = ra;
    event_add(ra->ev, &tv);
}

/* Returns 0 (the callback owns RA) or -errno. */
static int attach_from_db(struct vpxd *vx, struct reattach *ra)
{
    json_t *h = NULL;
    int rc = vdb_query_row(vx->db, &h, "SELECT hostname, port, thumbprint FROM host"
                           " WHERE id = ?", "s", ra->id);

    if (rc < 0)
        return rc;
    rc = hostmgr_host_attach(vx->hm, ra->id, json_string_value(json_object_get(h, "hostname")),
                             (uint16_t)json_integer_value(json_object_get(h, "port")),
                             json_string_value(json_object_get(h, "thumbprint")),
                             NULL, NULL, on_reattach, ra);
    json_decref(h);
    return rc;
}

void vpxd_hosts_start(struct vpxd *vx)
{
    struct hostmgr_config cfg = {
        .cert_file = vx->cert_file, .key_file = vx->key_file,
        .heartbeat_ms = (uint32_t)vx->opt.heartbeat_ms,
        .stats_interval_ms = (uint32_t)vx->opt.stats_interval_ms,
    };
    json_t *rows = NULL;
    size_t i;
    json_t *h;
    int rc = hostmgr_new(vx->base, &cfg, &ops, vx, &vx->hm);

    if (rc < 0) {
        vx->hm = NULL;
        if (asprintf(&vx->hm_error, "the host manager is not available (%s)",
                     strerror(-rc)) < 0)
            vx->hm_error = NULL;
        kvc_warn("%s: host operations will fail with 503",
                 vx->hm_error ? vx->hm_error : "no host manager");
        return;
    }
    /* Hosts of the database come back; their VMs' states follow. */
    vdb_query_json(vx->db, &rows, "SELECT id, hostname, port, thumbprint FROM host", NULL);
    json_array_foreach(rows, i, h) {
        struct reattach *ra = calloc(1, sizeof(*ra));
        if (!ra)
            continue;
        ra->vx = vx;
        snprintf(ra->id, sizeof(ra->id), "%s", json_string_value(json_object_get(h, "id")));
        if ((rc = attach_from_db(vx, ra)) < 0) {
            kvc_warn("host %s: cannot reconnect: %s", ra->id, strerror(-rc));
            free(ra);
        }
    }
    json_decref(rows);
}

void vpxd_hosts_stop(struct vpxd *vx)
{
    hostmgr_free(vx->hm);
    vx->hm = NULL;
    while (retries) {
        struct reattach *ra = retries;
        retries = ra->next;
        event_free(ra->ev);
        free(ra);
    }
}
