/* Records what hosts report in vpxd's database: the listener vpxd gives to
 * hostmgr_new() (hostmgr_db_ops, with the struct vdb * as its argument).
 *
 * Reconciliation (docs/hosts.md): a host's complete inventory is the truth
 * for which VMs that host holds.  Each listed VM is matched by instance
 * uuid: an unknown one is added, a known one is updated (power, tools,
 * hardware, host); a VM the database places on this host that the list
 * lacks is removed.  A listed VM the database places on ANOTHER host that is
 * connected is left where it is and logged: it was restarted there (HA)
 * while this host was away, and the lease decides who runs it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "vpxd/db.h"
#include "vpxd/hostmgr.h"
#include "vpxd/hostmgr_db.h"

KVC_LOG_MODULE(hostmgr_db);

static const char *
power_name(enum hostmgr_power_state p)
{
    return hostmgr_power_state_name(p);
}

static void
on_host_state(void *arg, const char *host_id, enum hostmgr_conn_state st,
              const char *reason)
{
    struct vdb *db = arg;
    const char *s = st == HOSTMGR_CONNECTED ? "CONNECTED"
                  : st == HOSTMGR_NOT_RESPONDING ? "NOT_RESPONDING"
                  : st == HOSTMGR_DISCONNECTED ? "DISCONNECTED" : NULL;
    int rc;

    if (!s)
        return;
    if ((rc = vdb_host_set_state(db, host_id, s)) < 0 && rc != -ENOENT)
        kvc_err("host %s: record state %s: %s", host_id, s, strerror(-rc));
}

static void
on_host_info(void *arg, const char *host_id, const struct hostmgr_host_info *hi)
{
    struct vdb *db = arg;
    struct vdb_host_hw hw = {
        .cpu_count = (int)hi->cpu_cores,
        .cpu_mhz = (int)hi->cpu_mhz,
        .memory_bytes = (int64_t)hi->memory_bytes,
        .product_version = hi->version,
    };
    int rc;

    if ((rc = vdb_host_set_hw(db, host_id, &hw)) < 0 && rc != -ENOENT)
        kvc_err("host %s: record hardware: %s", host_id, strerror(-rc));
}

static int
datastore_id(struct vdb *db, const char *host_id, const char *name, char id[VDB_ID_MAX])
{
    return vdb_query_str(db, id, VDB_ID_MAX,
                         "SELECT d.id FROM datastore d JOIN entity e ON e.id = d.id"
                         " JOIN host h ON h.datacenter = d.datacenter"
                         " WHERE h.id = ? AND e.name = ?", "ss", host_id, name);
}

/* Adds or updates one VM reported by HOST_ID.  Returns 0 or -errno. */
static int
upsert_vm(struct vdb *db, const char *host_id, const struct hostmgr_vm_info *vm)
{
    char id[VDB_ID_MAX], cur_host[VDB_ID_MAX] = "", state[32] = "", ds[VDB_ID_MAX] = "";
    const char *tools = vm->tools == HOSTMGR_TOOLS_RUNNING ? "RUNNING" : "NOT_RUNNING";
    int rc;

    if (!vm->uuid || !vm->uuid[0])
        return -EINVAL;
    if (vm->datastore && vm->datastore[0])
        datastore_id(db, host_id, vm->datastore, ds);
    rc = vdb_vm_by_uuid(db, vm->uuid, id);
    if (rc == -ENOENT) {
        char folder[VDB_ID_MAX];
        struct vdb_vm_spec s = {
            .name = vm->name,
            .host = host_id,
            .datastore = ds[0] ? ds : NULL,
            .cpu_count = vm->cpu_count ? (int)vm->cpu_count : 1,
            .cores_per_socket = 1,
            .memory_mib = vm->memory_mib ? (int64_t)vm->memory_mib : 1,
            .power_state = power_name(vm->power),
            .instance_uuid = vm->uuid,
            .config_path = vm->config_path,
        };
        rc = vdb_query_str(db, folder, sizeof folder,
                           "SELECT d.vm_folder FROM datacenter d JOIN host h"
                           " ON h.datacenter = d.id WHERE h.id = ?", "s", host_id);
        if (rc < 0)
            return rc;
        s.folder = folder;
        if ((rc = vdb_vm_create(db, &s, id)) < 0)
            return rc;
        kvc_info("host %s reports VM %s (%s) vpxd did not know: added as %s",
                 host_id, vm->name, vm->uuid, id);
        vdb_vm_set_host(db, id, host_id);
        return vdb_vm_set_guest(db, id, tools, tools, NULL, NULL);
    }
    if (rc < 0)
        return rc;
    vdb_query_str(db, cur_host, sizeof cur_host,
                  "SELECT coalesce(host, '') FROM vm WHERE id = ?", "s", id);
    if (cur_host[0] && strcmp(cur_host, host_id)) {
        vdb_query_str(db, state, sizeof state,
                      "SELECT connection_state FROM host WHERE id = ?", "s", cur_host);
        if (!strcmp(state, "CONNECTED")) {
            kvc_warn("host %s reports VM %s (%s) that runs on connected host %s: left there",
                     host_id, id, vm->uuid, cur_host);
            return 0;
        }
    }
    if (strcmp(cur_host, host_id) && (rc = vdb_vm_set_host(db, id, host_id)) < 0)
        return rc;
    /* The files may have moved (storage migration): the host's word. */
    if (ds[0] && (rc = vdb_vm_set_files(db, id, ds, vm->config_path)) < 0)
        return rc;
    if ((rc = vdb_vm_set_power(db, id, power_name(vm->power), NULL)) < 0)
        return rc;
    if (vm->cpu_count && vm->memory_mib &&
        (rc = vdb_vm_set_hardware(db, id, (int)vm->cpu_count, 1, (int64_t)vm->memory_mib)) < 0)
        return rc;
    return vdb_vm_set_guest(db, id, tools, vm->power == HOSTMGR_POWERED_ON ? tools : "NOT_RUNNING",
                            NULL, NULL);
}

static void
on_inventory(void *arg, const char *host_id, uint64_t generation,
             const struct hostmgr_datastore_info *ds, size_t n_ds,
             const struct hostmgr_network_info *nets, size_t n_nets,
             const struct hostmgr_vm_info *vms, size_t n_vms)
{
    struct vdb *db = arg;
    char id[VDB_ID_MAX];
    json_t *rows = NULL;
    int rc;

    if ((rc = vdb_begin(db)) < 0)
        goto fail;
    for (size_t i = 0; i < n_ds && rc >= 0; i++) {
        struct vdb_datastore_info d = {
            .name = ds[i].name,
            .type = ds[i].type && !strcmp(ds[i].type, "NFS") ? "NFS" : "VMFS",
            .url = ds[i].url,
            .capacity = (int64_t)ds[i].capacity_bytes,
            .free_space = (int64_t)ds[i].free_bytes,
            .accessible = true,
        };
        rc = vdb_datastore_report(db, host_id, &d, id);
    }
    for (size_t i = 0; i < n_nets && rc >= 0; i++)
        rc = vdb_network_report(db, host_id, nets[i].name, "STANDARD_PORTGROUP",
                                (int)nets[i].vlan, id);
    if (rc >= 0) {
        /* Port groups the host no longer has (network vswitch standard
         * portgroup remove) leave the inventory. */
        json_t *names = json_array();
        for (size_t i = 0; names && i < n_nets; i++)
            json_array_append_new(names, json_string(nets[i].name));
        char *text = names ? json_dumps(names, JSON_COMPACT) : NULL;
        rc = text ? vdb_network_prune(db, host_id, text) : -ENOMEM;
        free(text);
        json_decref(names);
    }
    for (size_t i = 0; i < n_vms && rc >= 0; i++)
        rc = upsert_vm(db, host_id, &vms[i]);
    if (rc >= 0)
        rc = vdb_query_json(db, &rows, "SELECT id, instance_uuid FROM vm WHERE host = ?",
                            "s", host_id);
    for (size_t i = 0; rc >= 0 && i < json_array_size(rows); i++) {
        json_t *r = json_array_get(rows, i);
        const char *uuid = json_string_value(json_object_get(r, "instance_uuid"));
        bool listed = false;
        for (size_t j = 0; uuid && j < n_vms && !listed; j++)
            listed = !strcasecmp(vms[j].uuid, uuid);
        if (!listed) {
            const char *vid = json_string_value(json_object_get(r, "id"));
            kvc_info("host %s no longer holds VM %s (%s): removed", host_id, vid, uuid);
            rc = vdb_vm_delete(db, vid);
        }
    }
    json_decref(rows);
    rc = vdb_finish(db, rc);
    if (rc >= 0) {
        kvc_info("host %s: inventory generation %llu recorded (%zu VMs)", host_id,
                 (unsigned long long)generation, n_vms);
        return;
    }
fail:
    kvc_err("host %s: record inventory: %s", host_id, strerror(-rc));
}

static void
on_vm_changed(void *arg, const char *host_id, const struct hostmgr_vm_info *vm)
{
    struct vdb *db = arg;
    int rc;

    if ((rc = vdb_begin(db)) >= 0)
        rc = vdb_finish(db, upsert_vm(db, host_id, vm));
    if (rc < 0)
        kvc_err("host %s: record VM %s: %s", host_id, vm->uuid, strerror(-rc));
}

static void
on_vm_removed(void *arg, const char *host_id, const char *uuid)
{
    struct vdb *db = arg;
    char id[VDB_ID_MAX], host[VDB_ID_MAX] = "";
    int rc;

    if (vdb_vm_by_uuid(db, uuid, id) < 0)
        return;
    vdb_query_str(db, host, sizeof host, "SELECT coalesce(host, '') FROM vm WHERE id = ?",
                  "s", id);
    if (host[0] && strcmp(host, host_id))
        return;                         /* it lives elsewhere now */
    if ((rc = vdb_vm_delete(db, id)) < 0)
        kvc_err("host %s: remove VM %s: %s", host_id, id, strerror(-rc));
}

const struct hostmgr_ops hostmgr_db_ops = {
    .host_state = on_host_state,
    .host_info = on_host_info,
    .inventory = on_inventory,
    .vm_changed = on_vm_changed,
    .vm_removed = on_vm_removed,
    /* Stats are not stored yet: vpxd's stats module will take them. */
};
