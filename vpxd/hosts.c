/* vpxd's side of the host connections (see hosts.h). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "vpxd/db.h"
#include "vpxd/hostmgr.h"
#include "vpxd/hosts.h"
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

static const char *power_name(enum hostmgr_power_state p)
{
    return p == HOSTMGR_POWERED_ON ? "POWERED_ON"
         : p == HOSTMGR_SUSPENDED ? "SUSPENDED" : "POWERED_OFF";
}

static void on_host_state(void *arg, const char *host_id, enum hostmgr_conn_state st,
                          const char *reason)
{
    struct vpxd *vx = arg;
    const char *s = st == HOSTMGR_CONNECTED ? "CONNECTED"
                  : st == HOSTMGR_NOT_RESPONDING ? "NOT_RESPONDING" : "DISCONNECTED";

    if (st == HOSTMGR_CONNECTING)
        return;
    if (vdb_host_set_state(vx->db, host_id, s) > 0)
        kvc_info("host %s is %s%s%s", host_id, s, reason ? ": " : "", reason ? reason : "");
}

static void on_host_info(void *arg, const char *host_id, const struct hostmgr_host_info *in)
{
    struct vpxd *vx = arg;
    struct vdb_host_hw hw = {
        .cpu_count = (int)(in->cpu_cores ? in->cpu_cores : in->cpu_threads),
        .cpu_mhz = (int)in->cpu_mhz,
        .memory_bytes = (int64_t)in->memory_bytes,
        .product_version = in->version,
    };

    vdb_host_set_hw(vx->db, host_id, &hw);
}

static void vm_report(struct vpxd *vx, const char *host_id, const struct hostmgr_vm_info *v)
{
    struct vdb_vm_report r = {
        .uuid = v->uuid, .name = v->name, .guest_os = v->guest_os,
        .config_path = v->config_path, .datastore = v->datastore,
        .power_state = power_name(v->power),
        .tools_run_state = v->tools == HOSTMGR_TOOLS_RUNNING ? "RUNNING" : "NOT_RUNNING",
        .cpu_count = (int)v->cpu_count, .memory_mib = (int64_t)v->memory_mib,
    };
    int rc;

    if (is_pending(v->uuid))
        return;
    rc = vdb_vm_report(vx->db, host_id, &r, NULL);
    if (rc < 0)
        kvc_warn("host %s: cannot record VM %s: %s", host_id, v->uuid, strerror(-rc));
}

static void on_inventory(void *arg, const char *host_id, uint64_t generation,
                         const struct hostmgr_datastore_info *ds, size_t n_ds,
                         const struct hostmgr_network_info *nets, size_t n_nets,
                         const struct hostmgr_vm_info *vms, size_t n_vms)
{
    struct vpxd *vx = arg;
    char id[VDB_ID_MAX];
    const char **uuids = calloc(n_vms + MAX_PENDING + 1, sizeof(*uuids));

    for (size_t i = 0; i < n_ds; i++) {
        struct vdb_datastore_info d = {
            .name = ds[i].name, .url = ds[i].url,
            .type = ds[i].type && !strcmp(ds[i].type, "NFS") ? "NFS" : "VMFS",
            .capacity = (int64_t)ds[i].capacity_bytes,
            .free_space = (int64_t)ds[i].free_bytes, .accessible = true,
        };
        vdb_datastore_report(vx->db, host_id, &d, id);
    }
    for (size_t i = 0; i < n_nets; i++)
        vdb_network_report(vx->db, host_id, nets[i].name, "STANDARD_PORTGROUP",
                           (int)nets[i].vlan, id);
    for (size_t i = 0; i < n_vms; i++) {
        vm_report(vx, host_id, &vms[i]);
        if (uuids)
            uuids[i] = vms[i].uuid;
    }
    if (uuids) {
        /* VMs being created are not listed yet, but must not leave. */
        size_t n = n_vms;
        for (int i = 0; i < MAX_PENDING; i++)
            if (pending[i][0])
                uuids[n++] = pending[i];
        vdb_host_reconcile(vx->db, host_id, uuids, n);
    }
    free(uuids);
    (void)generation;
}

static void on_vm_changed(void *arg, const char *host_id, const struct hostmgr_vm_info *vm)
{
    vm_report(arg, host_id, vm);
}

static void on_vm_removed(void *arg, const char *host_id, const char *uuid)
{
    struct vpxd *vx = arg;

    vdb_vm_report_gone(vx->db, host_id, uuid);
}

static const struct hostmgr_ops ops = {
    .host_state = on_host_state,
    .host_info = on_host_info,
    .inventory = on_inventory,
    .vm_changed = on_vm_changed,
    .vm_removed = on_vm_removed,
};

static void on_reattach(void *arg, int err, const char *msg)
{
    char *id = arg;

    if (err)
        kvc_warn("host %s: cannot reconnect: %s", id, msg ? msg : strerror(-err));
    free(id);
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
        char *id = strdup(json_string_value(json_object_get(h, "id")));
        rc = hostmgr_host_attach(vx->hm, id,
                                 json_string_value(json_object_get(h, "hostname")),
                                 (uint16_t)json_integer_value(json_object_get(h, "port")),
                                 json_string_value(json_object_get(h, "thumbprint")),
                                 NULL, NULL, on_reattach, id);
        if (rc < 0) {
            kvc_warn("host %s: cannot reconnect: %s", id, strerror(-rc));
            free(id);
        }
    }
    json_decref(rows);
}

void vpxd_hosts_stop(struct vpxd *vx)
{
    hostmgr_free(vx->hm);
    vx->hm = NULL;
}
