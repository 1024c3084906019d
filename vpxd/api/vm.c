/* /api/vcenter/vm: list, get, create (placement on a host or a cluster),
 * delete, power, guest power and identity, tools, hardware. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gnutls/crypto.h>

#include "lib/log.h"
#include "vpxd/api/api.h"
#include "vpxd/api/filters.h"
#include "vpxd/api/internal.h"
#include "vpxd/drs.h"
#include "vpxd/hostmgr.h"
#include "vpxd/hosts.h"
#include "vpxd/migration.h"
#include "vpxd/rp.h"

KVC_LOG_MODULE(api_vm);

#define VM_CPU_MAX 128
#define VM_MEM_MIN 4
#define VM_MEM_MAX (1024 * 1024)          /* 1 TiB in MiB */
#define VM_DISK_MAX (INT64_C(64) << 40)   /* 64 TiB */

static const char *const power_states[] = { "POWERED_OFF", "POWERED_ON", "SUSPENDED", NULL };

void api_vm_list(struct api_req *r)
{
    char *vms, *names, *folders, *dcs, *hosts, *clusters, *rps, *states;
    json_t *rows = NULL;
    int rc;

    if (api_filter_words(r, "power_states", power_states) < 0)
        return;
    vms = api_filter_json(r, "vms");
    names = api_filter_json(r, "names");
    folders = api_filter_json(r, "folders");
    dcs = api_filter_json(r, "datacenters");
    hosts = api_filter_json(r, "hosts");
    clusters = api_filter_json(r, "clusters");
    rps = api_filter_json(r, "resource_pools");
    states = api_filter_json(r, "power_states");
    rc = vdb_query_json(api_db(r), &rows,
        "SELECT e.id AS vm, e.name, v.power_state, v.cpu_count, v.memory_mib AS memory_size_MiB"
        " FROM vm v JOIN entity e ON e.id = v.id WHERE 1"
        IN_FILTER("e.id", 1) IN_FILTER("e.name", 2) IN_FILTER("e.parent", 3)
        IN_FILTER("v.datacenter", 4) IN_FILTER("v.host", 5) IN_FILTER("v.cluster", 6)
        IN_FILTER("v.resource_pool", 7) IN_FILTER("v.power_state", 8)
        " ORDER BY e.rowid LIMIT 4001", "ssssssss", vms, names, folders, dcs, hosts,
        clusters, rps, states);
    free(vms);
    free(names);
    free(folders);
    free(dcs);
    free(hosts);
    free(clusters);
    free(rps);
    free(states);
    if (rc < 0)
        return api_error_errno(r, rc, "vms");
    if (json_array_size(rows) > API_LIST_MAX) {
        json_decref(rows);
        return api_error(r, 500, "UNABLE_TO_ALLOCATE_RESOURCE",
                         "more than %d VMs match: narrow the filter", API_LIST_MAX);
    }
    api_reply(r, 200, api_filter_visible(r, rows, "vm"));
}

/* The VM's row, or answers 404 and returns NULL. */
static json_t *vm_row(struct api_req *r)
{
    const char *id = api_param(r, "vm");
    json_t *row = NULL;
    int rc = vdb_query_row(api_db(r), &row, "SELECT e.name, v.* , v.hardware AS hardware_json"
                           " FROM vm v JOIN entity e ON e.id = v.id WHERE v.id = ?", "s", id);

    if (rc == -ENOENT)
        api_error(r, 404, "NOT_FOUND", "virtual machine %s not found", id);
    else if (rc < 0)
        api_error_errno(r, rc, "virtual machine");
    return rc < 0 ? NULL : row;
}

static const char *str(json_t *row, const char *k)
{
    const char *s = json_string_value(json_object_get(row, k));
    return s ? s : "";
}

static json_t *hw_part(json_t *row, const char *k)
{
    json_t *h = json_object_get(json_object_get(row, "hardware"), k);
    return h ? json_deep_copy(h) : json_object();
}

void api_vm_get(struct api_req *r)
{
    json_t *row = vm_row(r), *out;

    if (!row)
        return;
    out = json_pack("{s:s, s:s, s:{s:s, s:s, s:s}, s:s, s:b,"
                    " s:{s:s, s:s, s:s}, s:{s:s, s:i, s:b, s:i, s:b}, s:[],"
                    " s:{s:O, s:O, s:b, s:b}, s:{s:O, s:b}}",
                    "guest_OS", str(row, "guest_os"), "name", str(row, "name"),
                    "identity", "name", str(row, "name"), "bios_uuid", str(row, "bios_uuid"),
                    "instance_uuid", str(row, "instance_uuid"),
                    "power_state", str(row, "power_state"), "instant_clone_frozen", 0,
                    "hardware", "version", str(row, "hw_version"), "upgrade_policy", "NEVER",
                    "upgrade_status", "NONE",
                    "boot", "type", "BIOS", "delay", 0, "retry", 0, "retry_delay", 10000,
                    "enter_setup_mode", 0,
                    "boot_devices",
                    "cpu", "count", json_object_get(row, "cpu_count"), "cores_per_socket",
                    json_object_get(row, "cores_per_socket"), "hot_add_enabled", 0,
                    "hot_remove_enabled", 0,
                    "memory", "size_MiB", json_object_get(row, "memory_mib"),
                    "hot_add_enabled", 0);
    json_object_set_new(out, "disks", hw_part(row, "disks"));
    json_object_set_new(out, "nics", hw_part(row, "nics"));
    json_object_set_new(out, "cdroms", json_object());
    json_object_set_new(out, "floppies", json_object());
    json_object_set_new(out, "parallel_ports", json_object());
    json_object_set_new(out, "serial_ports", json_object());
    json_object_set_new(out, "sata_adapters", json_object());
    json_object_set_new(out, "scsi_adapters", hw_part(row, "scsi_adapters"));
    json_decref(row);
    api_reply(r, 200, out);
}

/* ---- create ---- */

struct create {
    struct api_req *r;
    struct vpxd *vx;
    struct vdb_vm_spec s;
    char uuid[37], name[256], guest_os[64], hw_version[16];
    char folder[VDB_ID_MAX], host[VDB_ID_MAX], rp[VDB_ID_MAX], ds[VDB_ID_MAX];
    char *hardware_json;
};

static void create_free(struct create *c)
{
    vpxd_hosts_pending_del(c->uuid);
    free(c->hardware_json);
    free(c);
}

static void on_vm_created(void *arg, int err, const char *msg, const struct hostmgr_vm_info *vm)
{
    struct create *c = arg;
    char id[VDB_ID_MAX];
    int rc;

    if (err) {
        api_host_error(c->r, err, msg);
        return create_free(c);
    }
    c->s.config_path = vm ? vm->config_path : NULL;
    if (vm)
        c->s.power_state = hostmgr_power_state_name(vm->power);
    rc = vdb_vm_create(c->vx->db, &c->s, id);
    if (rc == -EEXIST && vdb_vm_by_uuid(c->vx->db, c->uuid, id) == 0)
        rc = vdb_vm_place(c->vx->db, id, &c->s);     /* the host's report came first */
    if (rc < 0) {
        /* The host made it but the inventory could not take it: undo on the
         * host, so nothing is left that vpxd does not know of. */
        kvc_err("VM %s created on %s but not recorded (%s): deleting it", c->uuid, c->host,
                strerror(-rc));
        hostmgr_vm_delete(c->vx->hm, c->host, c->uuid, NULL, NULL);
        api_error_errno(c->r, rc, "virtual machine");
        return create_free(c);
    }
    api_set_object(c->r, id);
    api_reply(c->r, 201, json_string(id));
    create_free(c);
}

static int make_uuid(char out[37])
{
    unsigned char b[16];

    if (gnutls_rnd(GNUTLS_RND_NONCE, b, sizeof(b)) < 0)
        return -EIO;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
             b[12], b[13], b[14], b[15]);
    return 0;
}

/* The host of CLUSTER DRS places a new VM on (vpxd/drs.h: rules, capacity,
 * the datastore if one was given, lowest resulting imbalance), or -errno. */
static int pick_host(struct api_req *r, const char *cluster, int64_t mem_mib, char out[VDB_ID_MAX])
{
    struct drs_place_req q = { .cluster = cluster, .memory_mib = mem_mib, .cpu_count = 1 };
    char why[256];

    return drs_place_vm(api_vpxd(r), &q, out, why, sizeof(why)) == 0 ? 0 : -ENOENT;
}

static bool valid_guest_os(const char *s)
{
    size_t n = strlen(s);

    if (!n || n > 64)
        return false;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return false;
    return true;
}

/* Reads disks[] and nics[] into the hardware JSON; -1 (answered) if bad. */
static int read_devices(struct api_req *r, struct create *c, int64_t *disk_bytes,
                        char *network_name, size_t nlen)
{
    json_t *b = api_body(r), *disks = json_object_get(b, "disks"),
           *nics = json_object_get(b, "nics");
    json_t *hw = json_object(), *dmap = json_object(), *nmap = json_object();
    size_t i;
    json_t *d;
    int rc = -1;

    if (disks && !json_is_array(disks)) {
        api_error(r, 400, "INVALID_ARGUMENT", "field 'disks' must be an array");
        goto out;
    }
    if (nics && !json_is_array(nics)) {
        api_error(r, 400, "INVALID_ARGUMENT", "field 'nics' must be an array");
        goto out;
    }
    if (json_array_size(disks) > 16 || json_array_size(nics) > 10) {
        api_error(r, 400, "INVALID_ARGUMENT", "at most 16 disks and 10 nics");
        goto out;
    }
    json_array_foreach(disks, i, d) {
        json_t *nv;
        int64_t cap = 0;
        char key[24], label[40];

        if (!json_is_object(d)) {
            api_error(r, 400, "INVALID_ARGUMENT", "disks[%zu] must be an object", i);
            goto out;
        }
        if (api_field_obj(r, d, "new_vmdk", &nv) < 0)
            goto out;
        if (!nv) {
            api_error(r, 400, "UNSUPPORTED", "disks[%zu]: only new_vmdk disks are supported", i);
            goto out;
        }
        if (api_field_int(r, nv, "capacity", true, 1 << 20, VM_DISK_MAX, &cap) < 0)
            goto out;
        *disk_bytes += cap;
        snprintf(key, sizeof(key), "%zu", 2000 + i);
        snprintf(label, sizeof(label), "Hard disk %zu", i + 1);
        json_object_set_new(dmap, key, json_pack("{s:s, s:s, s:{s:i, s:i}, s:{s:s, s:s}, s:I}",
            "label", label, "type", "SCSI", "scsi", "bus", 0, "unit", (int)i, "backing",
            "type", "VMDK_FILE", "vmdk_file", "", "capacity", (json_int_t)cap));
    }
    json_array_foreach(nics, i, d) {
        json_t *bk;
        const char *net = NULL;
        char key[24], label[48], netname[256] = "";

        if (!json_is_object(d)) {
            api_error(r, 400, "INVALID_ARGUMENT", "nics[%zu] must be an object", i);
            goto out;
        }
        if (api_field_obj(r, d, "backing", &bk) < 0 || api_field_str(r, bk, "network", true,
                                                                      &net) < 0)
            goto out;
        if (vdb_query_str(api_db(r), netname, sizeof(netname),
                          "SELECT e.name FROM network n JOIN entity e ON e.id = n.id"
                          " WHERE n.id = ?", "s", net) < 0) {
            api_error(r, 404, "NOT_FOUND", "network %s not found", net);
            goto out;
        }
        if (i == 0)
            snprintf(network_name, nlen, "%s", netname);
        snprintf(key, sizeof(key), "%zu", 4000 + i);
        snprintf(label, sizeof(label), "Network adapter %zu", i + 1);
        json_object_set_new(nmap, key, json_pack("{s:s, s:s, s:s, s:b, s:{s:s, s:s, s:s},"
            " s:s, s:b, s:b}", "label", label, "type", "VMXNET3", "mac_type", "GENERATED",
            "wake_on_lan_enabled", 0, "backing", "type", "STANDARD_PORTGROUP", "network", net,
            "network_name", netname, "state", "NOT_CONNECTED", "start_connected", 1,
            "allow_guest_control", 0));
    }
    json_object_set(hw, "disks", dmap);
    json_object_set(hw, "nics", nmap);
    c->hardware_json = json_dumps(hw, JSON_COMPACT);
    rc = 0;
out:
    json_decref(dmap);
    json_decref(nmap);
    json_decref(hw);
    return rc;
}

void api_vm_create(struct api_req *r)
{
    static const char *const fields[] = { "guest_OS", "name", "placement", "hardware_version",
        "boot", "boot_devices", "cpu", "memory", "disks", "nics", "cdroms", "floppies",
        "parallel_ports", "serial_ports", "sata_adapters", "scsi_adapters", "storage_policy",
        NULL };
    static const char *const unsupported[] = { "cdroms", "floppies", "parallel_ports",
        "serial_ports", "sata_adapters", "scsi_adapters", "storage_policy", "boot_devices",
        NULL };
    static const char *const pfields[] = { "folder", "resource_pool", "host", "cluster",
                                           "datastore", NULL };
    struct vpxd *vx = api_vpxd(r);
    json_t *b = api_body(r), *pl, *cpu, *mem;
    const char *guest, *name, *folder = NULL, *rp = NULL, *host = NULL, *cluster = NULL,
               *ds = NULL, *hwv = NULL;
    int64_t count = 1, cps = 1, mib = 256, disk_bytes = 0, n = 0;
    char netname[256] = "", owner_type[32], dsname[256];
    struct create *c;
    int rc;

    if (api_body_object(r, fields) < 0
        || api_field_str(r, b, "guest_OS", true, &guest) < 0
        || api_field_str(r, b, "name", true, &name) < 0
        || api_field_str(r, b, "hardware_version", false, &hwv) < 0
        || api_field_obj(r, b, "placement", &pl) < 0
        || api_field_obj(r, b, "cpu", &cpu) < 0 || api_field_obj(r, b, "memory", &mem) < 0
        || api_field_int(r, cpu, "count", false, 1, VM_CPU_MAX, &count) < 0
        || api_field_int(r, cpu, "cores_per_socket", false, 1, VM_CPU_MAX, &cps) < 0
        || api_field_int(r, mem, "size_MiB", false, VM_MEM_MIN, VM_MEM_MAX, &mib) < 0)
        return;
    for (int i = 0; unsupported[i]; i++) {
        json_t *v = json_object_get(b, unsupported[i]);
        if (v && !json_is_null(v) && !(json_is_array(v) && !json_array_size(v)))
            return api_error(r, 400, "UNSUPPORTED", "field '%s' is not supported by kvcenter",
                             unsupported[i]);
    }
    if (!valid_guest_os(guest))
        return api_error(r, 400, "INVALID_ARGUMENT", "bad guest_OS '%.64s'", guest);
    if (hwv && (strncmp(hwv, "VMX_", 4) || strlen(hwv) > 8))
        return api_error(r, 400, "INVALID_ARGUMENT", "bad hardware_version '%.16s'", hwv);
    if (!*name || strlen(name) > 80 || strchr(name, '/'))
        return api_error(r, 400, "INVALID_ARGUMENT",
                         "field 'name' must be 1 to 80 characters without '/'");
    if (count % cps)
        return api_error(r, 400, "INVALID_ARGUMENT",
                         "cpu.count %lld is not a multiple of cpu.cores_per_socket %lld",
                         (long long)count, (long long)cps);
    if (!pl)
        return api_error(r, 400, "INVALID_ARGUMENT",
                         "field 'placement' is required (folder and host, cluster or"
                         " resource_pool)");
    {
        const char *k;
        json_t *v;
        json_object_foreach(pl, k, v) {
            bool known = false;
            for (int i = 0; pfields[i] && !known; i++)
                known = !strcmp(pfields[i], k);
            if (!known)
                return api_error(r, 400, "INVALID_ARGUMENT", "unknown field 'placement.%.32s'",
                                 k);
        }
    }
    if (api_field_str(r, pl, "folder", false, &folder) < 0
        || api_field_str(r, pl, "resource_pool", false, &rp) < 0
        || api_field_str(r, pl, "host", false, &host) < 0
        || api_field_str(r, pl, "cluster", false, &cluster) < 0
        || api_field_str(r, pl, "datastore", false, &ds) < 0)
        return;
    /* The caller's right to create in the folder is checked before anything
     * about the placement is revealed. */
    if (folder) {
        if (!vdb_entity_exists(api_db(r), folder, "folder"))
            return api_error(r, 404, "NOT_FOUND", "folder %s not found", folder);
        if (api_require(r, "VirtualMachine.Inventory.Create", folder) < 0)
            return;
    }
    c = calloc(1, sizeof(*c));
    if (!c)
        return api_error(r, 500, "ERROR", "out of memory");
    c->r = r;
    c->vx = vx;
    if (read_devices(r, c, &disk_bytes, netname, sizeof(netname)) < 0)
        goto fail;
    /* Placement: host > resource pool > cluster. */
    if (host) {
        if (!vdb_entity_exists(api_db(r), host, "host")) {
            api_error(r, 404, "NOT_FOUND", "host %s not found", host);
            goto fail;
        }
        snprintf(c->host, sizeof(c->host), "%s", host);
    }
    if (rp) {
        if (vdb_query_str(api_db(r), c->rp, sizeof(c->rp), "SELECT id FROM resource_pool"
                          " WHERE id = ?", "s", rp) < 0) {
            api_error(r, 404, "NOT_FOUND", "resource pool %s not found", rp);
            goto fail;
        }
        char owner[VDB_ID_MAX];
        vdb_query_str(api_db(r), owner, sizeof(owner),
                      "SELECT owner FROM resource_pool WHERE id = ?", "s", rp);
        vdb_entity_type(api_db(r), owner, owner_type, sizeof(owner_type));
        if (!strcmp(owner_type, "host")) {
            if (*c->host && strcmp(c->host, owner)) {
                api_error(r, 400, "INVALID_ARGUMENT", "resource pool %s is not on host %s",
                          rp, c->host);
                goto fail;
            }
            snprintf(c->host, sizeof(c->host), "%s", owner);
        } else if (!cluster) {
            cluster = json_string_value(json_object_get(pl, "resource_pool"));
            static char cl[VDB_ID_MAX];
            snprintf(cl, sizeof(cl), "%s", owner);
            cluster = cl;
        }
    }
    if (cluster && !vdb_entity_exists(api_db(r), cluster, "cluster")) {
        api_error(r, 404, "NOT_FOUND", "cluster %s not found", cluster);
        goto fail;
    }
    if (!*c->host && cluster && pick_host(r, cluster, mib, c->host) < 0) {
        api_error(r, 500, "UNABLE_TO_ALLOCATE_RESOURCE",
                  "no connected host in cluster %s has %lld MiB of memory free", cluster,
                  (long long)mib);
        goto fail;
    }
    if (!*c->host) {
        api_error(r, 400, "INVALID_ARGUMENT",
                  "placement needs a host, a cluster or a resource_pool");
        goto fail;
    }
    if (!*c->rp)
        vdb_query_str(api_db(r), c->rp, sizeof(c->rp),
                      "SELECT resource_pool FROM host WHERE id = ?", "s", c->host);
    if (folder) {
        char ft[32] = "";
        if (vdb_query_str(api_db(r), ft, sizeof(ft), "SELECT folder_type FROM folder"
                          " WHERE id = ?", "s", folder) < 0) {
            api_error(r, 404, "NOT_FOUND", "folder %s not found", folder);
            goto fail;
        }
        if (strcmp(ft, "VIRTUAL_MACHINE")) {
            api_error(r, 400, "INVALID_ARGUMENT", "folder %s is not a VM folder", folder);
            goto fail;
        }
        snprintf(c->folder, sizeof(c->folder), "%s", folder);
    } else {
        vdb_query_str(api_db(r), c->folder, sizeof(c->folder), "SELECT d.vm_folder FROM"
                      " datacenter d JOIN host h ON h.datacenter = d.id WHERE h.id = ?", "s",
                      c->host);
    }
    if (ds) {
        if (!vdb_entity_exists(api_db(r), ds, "datastore")) {
            api_error(r, 404, "NOT_FOUND", "datastore %s not found", ds);
            goto fail;
        }
        vdb_query_int(api_db(r), &n, "SELECT count(*) FROM host_datastore WHERE host = ?"
                      " AND datastore = ?", "ss", c->host, ds);
        if (!n) {
            api_error(r, 400, "INVALID_ARGUMENT", "datastore %s is not mounted on host %s",
                      ds, c->host);
            goto fail;
        }
        snprintf(c->ds, sizeof(c->ds), "%s", ds);
    } else if (vdb_query_str(api_db(r), c->ds, sizeof(c->ds), "SELECT d.id FROM datastore d"
                             " JOIN host_datastore hd ON hd.datastore = d.id WHERE hd.host = ?"
                             " ORDER BY d.free_space DESC LIMIT 1", "s", c->host) < 0) {
        c->ds[0] = '\0';
    }
    if (api_require(r, "VirtualMachine.Inventory.Create", c->folder) < 0)
        goto fail;
    vdb_query_int(api_db(r), &n, "SELECT count(*) FROM entity WHERE parent = ? AND type = 'vm'"
                  " AND name = ?", "ss", c->folder, name);
    if (n) {
        json_t *args = json_pack("[s]", name);
        api_error_args(r, 400, "ALREADY_EXISTS", args,
                       "a virtual machine named '%s' already exists in folder %s", name,
                       c->folder);
        goto fail;
    }
    if (api_need_host(r, c->host) < 0)
        goto fail;
    if (!*c->ds) {
        api_error(r, 400, "INVALID_ARGUMENT", "host %s has no datastore", c->host);
        goto fail;
    }
    vdb_query_str(api_db(r), dsname, sizeof(dsname), "SELECT name FROM entity WHERE id = ?",
                  "s", c->ds);
    if (make_uuid(c->uuid) < 0) {
        api_error(r, 500, "ERROR", "cannot make a uuid");
        goto fail;
    }
    snprintf(c->name, sizeof(c->name), "%s", name);
    snprintf(c->guest_os, sizeof(c->guest_os), "%s", guest);
    snprintf(c->hw_version, sizeof(c->hw_version), "%s", hwv ? hwv : "VMX_19");
    c->s = (struct vdb_vm_spec){ .name = c->name, .guest_os = c->guest_os,
                                 .hw_version = c->hw_version, .folder = c->folder,
                                 .host = c->host, .resource_pool = c->rp, .datastore = c->ds,
                                 .cpu_count = (int)count, .cores_per_socket = (int)cps,
                                 .memory_mib = mib, .instance_uuid = c->uuid,
                                 .hardware_json = c->hardware_json };
    struct hostmgr_vm_spec hs = { .uuid = c->uuid, .name = c->name, .datastore = dsname,
                                  .guest_os = c->guest_os, .cpu_count = (uint32_t)count,
                                  .memory_mib = (uint64_t)mib,
                                  .disk_bytes = (uint64_t)disk_bytes,
                                  .network = *netname ? netname : NULL };
    api_set_object(r, c->folder);
    vpxd_hosts_pending_add(c->uuid);
    api_hold(r);
    rc = hostmgr_vm_create(vx->hm, c->host, &hs, on_vm_created, c);
    if (rc < 0) {
        api_host_error(r, rc, NULL);
        create_free(c);
    }
    return;
fail:
    free(c->hardware_json);
    free(c);
}

/* ---- delete ---- */

struct vm_op {
    struct api_req *r;
    struct vpxd *vx;
    char id[VDB_ID_MAX];
    char user[128];
};

static void on_vm_deleted(void *arg, int err, const char *msg)
{
    struct vm_op *o = arg;
    int rc;

    if (err && err != -ENOENT) {
        api_host_error(o->r, err, msg);
    } else if ((rc = vdb_vm_delete(o->vx->db, o->id)) < 0 && rc != -ENOENT) {
        api_error_errno(o->r, rc, "virtual machine");
    } else {
        api_reply(o->r, 204, NULL);
    }
    free(o);
}

static struct vm_op *op_new(struct api_req *r)
{
    struct vm_op *o = calloc(1, sizeof(*o));

    if (!o)
        return NULL;
    o->r = r;
    o->vx = api_vpxd(r);
    snprintf(o->id, sizeof(o->id), "%s", api_param(r, "vm"));
    snprintf(o->user, sizeof(o->user), "%s", api_user(r));
    return o;
}

void api_vm_delete(struct api_req *r)
{
    json_t *row = vm_row(r);
    struct vm_op *o;
    int rc;

    if (!row)
        return;
    if (strcmp(str(row, "power_state"), "POWERED_OFF")) {
        api_error(r, 400, "NOT_ALLOWED_IN_CURRENT_STATE",
                  "virtual machine %s is %s: power it off first", api_param(r, "vm"),
                  str(row, "power_state"));
        goto out;
    }
    if (!*str(row, "host")) {
        /* Known to no host: only the inventory holds it. */
        rc = vdb_vm_delete(api_db(r), api_param(r, "vm"));
        if (rc < 0)
            api_error_errno(r, rc, "virtual machine");
        else
            api_reply(r, 204, NULL);
        goto out;
    }
    if (api_need_host(r, str(row, "host")) < 0)
        goto out;
    o = op_new(r);
    api_hold(r);
    rc = hostmgr_vm_delete(api_vpxd(r)->hm, str(row, "host"), str(row, "instance_uuid"),
                           on_vm_deleted, o);
    if (rc < 0) {
        api_host_error(r, rc, NULL);
        free(o);
    }
out:
    json_decref(row);
}

/* ---- power ---- */

void api_vm_power_get(struct api_req *r)
{
    json_t *row = vm_row(r);

    if (!row)
        return;
    json_t *out = json_pack("{s:s}", "state", str(row, "power_state"));
    if (!strcmp(str(row, "power_state"), "POWERED_OFF"))
        json_object_set_new(out, "clean_power_off", json_true());
    json_decref(row);
    api_reply(r, 200, out);
}

static void on_vm_powered(void *arg, int err, const char *msg, const struct hostmgr_vm_info *vm)
{
    struct vm_op *o = arg;

    rp_pending_drop(o->id);     /* admitted power-on answered (vpxd/rp.h) */
    if (err) {
        api_host_error(o->r, err, msg);
    } else {
        if (vm)
            vdb_vm_set_power(o->vx->db, o->id, hostmgr_power_state_name(vm->power), o->user);
        api_reply(o->r, 204, NULL);
    }
    free(o);
}

/* WANT_FROM: states the operation starts from; DONE: the state that means
 * there is nothing to do. */
static void power_op(struct api_req *r, enum hostmgr_power_op op, const char *const *from,
                     const char *done, const char *what)
{
    json_t *row = vm_row(r);
    const char *st;
    bool ok = false;
    struct vm_op *o;
    int rc;

    if (!row)
        return;
    st = str(row, "power_state");
    if (done && !strcmp(st, done)) {
        api_error(r, 400, "ALREADY_IN_DESIRED_STATE", "virtual machine %s is already %s",
                  api_param(r, "vm"), st);
        goto out;
    }
    for (int i = 0; from[i] && !ok; i++)
        ok = !strcmp(from[i], st);
    if (!ok) {
        api_error(r, 400, "NOT_ALLOWED_IN_CURRENT_STATE", "cannot %s virtual machine %s: it is %s",
                  what, api_param(r, "vm"), st);
        goto out;
    }
    if (api_need_host(r, str(row, "host")) < 0)
        goto out;
    o = op_new(r);
    api_hold(r);
    rc = hostmgr_vm_power(api_vpxd(r)->hm, str(row, "host"), str(row, "instance_uuid"), op,
                          on_vm_powered, o);
    if (rc < 0) {
        api_host_error(r, rc, NULL);
        free(o);
    } else {
        json_decref(row);
        return;                 /* on_vm_powered drops the pending reservation */
    }
out:
    rp_pending_drop(api_param(r, "vm"));    /* answered here: nothing is on its way */
    json_decref(row);
}

/* DRS initial placement at power-on: a powered-off VM of a DRS cluster
 * that is not in manual mode first moves (cold) to the host DRS places it
 * on, then powers on there.  If the move fails it powers on where it is. */
static void on_placed(void *arg, int err, const char *msg, const char *task)
{
    struct vm_op *o = arg;
    char host[VDB_ID_MAX] = "", uuid[64] = "";
    int rc;

    if (err)
        kvc_warn("VM %s: initial placement failed (%s); powering it on where it is", o->id,
                 msg ? msg : strerror(-err));
    vdb_query_str(o->vx->db, host, sizeof(host), "SELECT coalesce(host, '') FROM vm WHERE"
                  " id = ?", "s", o->id);
    vdb_query_str(o->vx->db, uuid, sizeof(uuid), "SELECT instance_uuid FROM vm WHERE id = ?",
                  "s", o->id);
    rc = o->vx->hm ? hostmgr_vm_power(o->vx->hm, host, uuid, HOSTMGR_POWER_ON, on_vm_powered, o)
                   : -ENOTCONN;
    if (rc < 0) {
        rp_pending_drop(o->id);
        api_host_error(o->r, rc, NULL);
        free(o);
    }
}

/* Returns true if it took the request over. */
static bool drs_power_on_place(struct api_req *r)
{
    json_t *row = NULL;
    char dst[VDB_ID_MAX], why[256];
    const char *host, *cluster;
    bool taken = false;

    if (vdb_query_row(api_db(r), &row, "SELECT v.host, v.cluster FROM vm v JOIN cluster c ON"
                      " c.id = v.cluster LEFT JOIN drs_config d ON d.cluster = c.id WHERE"
                      " v.id = ? AND v.power_state = 'POWERED_OFF' AND c.drs_enabled AND"
                      " coalesce(d.automation, 'fullyAutomated') != 'manual'", "s",
                      api_param(r, "vm")) < 0)
        return false;
    host = json_string_value(json_object_get(row, "host"));
    cluster = json_string_value(json_object_get(row, "cluster"));
    struct drs_place_req q = { .cluster = cluster, .vm = api_param(r, "vm") };
    if (host && cluster && drs_place_vm(api_vpxd(r), &q, dst, why, sizeof(why)) == 0 &&
        strcmp(dst, host)) {
        struct vpxd_migrate_req m = { .vm = api_param(r, "vm"), .host = dst,
                                      .user = api_user(r), .reason = "drs initial placement" };
        struct vm_op *o = op_new(r);
        if (o && vpxd_migrate_check(api_vpxd(r), &m, why, sizeof(why)) == 0) {
            api_hold(r);
            taken = true;
            if (vpxd_migrate_vm(api_vpxd(r), &m, on_placed, o, NULL, why, sizeof(why)) < 0)
                on_placed(o, -EIO, why, NULL);
        } else {
            free(o);
        }
    }
    json_decref(row);
    return taken;
}

void api_vm_power_start(struct api_req *r)
{
    static const char *const from[] = { "POWERED_OFF", "SUSPENDED", NULL };

    /* Resource pool admission (vpxd/rp.h), after HA's (api_ha_vm_power_start). */
    if (api_rp_power_on_refused(r))
        return;
    if (drs_power_on_place(r))
        return;
    power_op(r, HOSTMGR_POWER_ON, from, "POWERED_ON", "power on");
}

void api_vm_power_stop(struct api_req *r)
{
    static const char *const from[] = { "POWERED_ON", "SUSPENDED", NULL };
    power_op(r, HOSTMGR_POWER_OFF, from, "POWERED_OFF", "power off");
}

void api_vm_power_suspend(struct api_req *r)
{
    static const char *const from[] = { "POWERED_ON", NULL };
    power_op(r, HOSTMGR_POWER_SUSPEND, from, "SUSPENDED", "suspend");
}

void api_vm_power_reset(struct api_req *r)
{
    static const char *const from[] = { "POWERED_ON", NULL };
    power_op(r, HOSTMGR_POWER_RESET, from, NULL, "reset");
}

/* ---- guest ---- */

static bool tools_running(json_t *row)
{
    return !strcmp(str(row, "power_state"), "POWERED_ON")
        && !strcmp(str(row, "tools_run_state"), "RUNNING");
}

void api_vm_guest_power_get(struct api_req *r)
{
    json_t *row = vm_row(r), *out;

    if (!row)
        return;
    out = json_pack("{s:s, s:b}", "state", tools_running(row) ? "RUNNING" : "NOT_RUNNING",
                    "operations_ready", tools_running(row));
    json_decref(row);
    api_reply(r, 200, out);
}

static void guest_op(struct api_req *r, enum hostmgr_power_op op, const char *what)
{
    json_t *row = vm_row(r);
    struct vm_op *o;
    int rc;

    if (!row)
        return;
    if (strcmp(str(row, "power_state"), "POWERED_ON")) {
        api_error(r, 400, "NOT_ALLOWED_IN_CURRENT_STATE", "cannot %s: virtual machine %s is %s",
                  what, api_param(r, "vm"), str(row, "power_state"));
        goto out;
    }
    if (!tools_running(row)) {
        api_error(r, 503, "SERVICE_UNAVAILABLE", "cannot %s: tools are not running in %s",
                  what, api_param(r, "vm"));
        goto out;
    }
    if (api_need_host(r, str(row, "host")) < 0)
        goto out;
    o = op_new(r);
    api_hold(r);
    rc = hostmgr_vm_power(api_vpxd(r)->hm, str(row, "host"), str(row, "instance_uuid"), op,
                          on_vm_powered, o);
    if (rc < 0) {
        api_host_error(r, rc, NULL);
        free(o);
    }
out:
    json_decref(row);
}

void api_vm_guest_shutdown(struct api_req *r)
{
    guest_op(r, HOSTMGR_GUEST_SHUTDOWN, "shut the guest down");
}

void api_vm_guest_reboot(struct api_req *r)
{
    guest_op(r, HOSTMGR_GUEST_REBOOT, "reboot the guest");
}

void api_vm_guest_identity(struct api_req *r)
{
    json_t *row = vm_row(r), *out;
    const char *os;

    if (!row)
        return;
    if (!tools_running(row)) {
        api_error(r, 503, "SERVICE_UNAVAILABLE",
                  "guest information is not available: tools are not running in %s",
                  api_param(r, "vm"));
        json_decref(row);
        return;
    }
    os = str(row, "guest_os");
    out = json_pack("{s:s, s:s, s:{s:s, s:s, s:[]}, s:s}", "name", os, "family",
                    strstr(os, "WIN") == os ? "WINDOWS" : strstr(os, "DARWIN") == os ? "DARWIN"
                    : strstr(os, "LINUX") || strstr(os, "UBUNTU") || strstr(os, "DEBIAN")
                      || strstr(os, "RHEL") || strstr(os, "CENTOS") ? "LINUX" : "OTHER",
                    "full_name", "id", "kvc.guest.os", "default_message", os, "args",
                    "host_name", str(row, "guest_host_name"));
    if (*str(row, "guest_ip"))
        json_object_set_new(out, "ip_address", json_string(str(row, "guest_ip")));
    json_decref(row);
    api_reply(r, 200, out);
}

void api_vm_tools_get(struct api_req *r)
{
    json_t *row = vm_row(r), *out;

    if (!row)
        return;
    out = json_pack("{s:b, s:s, s:s, s:s}", "auto_update_supported", 0, "upgrade_policy",
                    "MANUAL", "run_state", tools_running(row) ? "RUNNING" : "NOT_RUNNING",
                    "install_type", "OPEN_VM_TOOLS");
    if (*str(row, "tools_version"))
        json_object_set_new(out, "version", json_string(str(row, "tools_version")));
    json_decref(row);
    api_reply(r, 200, out);
}

void api_vm_hardware_get(struct api_req *r)
{
    json_t *row = vm_row(r), *out;

    if (!row)
        return;
    out = json_pack("{s:s, s:s, s:s}", "version", str(row, "hw_version"), "upgrade_policy",
                    "NEVER", "upgrade_status", "NONE");
    json_decref(row);
    api_reply(r, 200, out);
}

struct reconf {
    struct vm_op op;
    int cpu, cps;
    int64_t mib;
};

static void on_reconfigured(void *arg, int err, const char *msg,
                            const struct hostmgr_vm_info *vm)
{
    struct reconf *c = arg;
    int rc;

    if (err) {
        api_host_error(c->op.r, err, msg);
    } else if ((rc = vdb_vm_set_hardware(c->op.vx->db, c->op.id, c->cpu, c->cps, c->mib)) < 0) {
        api_error_errno(c->op.r, rc, "virtual machine");
    } else {
        api_reply(c->op.r, 204, NULL);
    }
    free(c);
}

void api_vm_hardware_patch(struct api_req *r)
{
    static const char *const fields[] = { "cpu", "memory", NULL };
    json_t *b = api_body(r), *cpu, *mem, *row;
    int64_t count, cps, mib;
    struct reconf *c;
    int rc;

    if (api_body_object(r, fields) < 0 || api_field_obj(r, b, "cpu", &cpu) < 0
        || api_field_obj(r, b, "memory", &mem) < 0)
        return;
    if (!(row = vm_row(r)))
        return;
    count = json_integer_value(json_object_get(row, "cpu_count"));
    cps = json_integer_value(json_object_get(row, "cores_per_socket"));
    mib = json_integer_value(json_object_get(row, "memory_mib"));
    if (api_field_int(r, cpu, "count", false, 1, VM_CPU_MAX, &count) < 0
        || api_field_int(r, cpu, "cores_per_socket", false, 1, VM_CPU_MAX, &cps) < 0
        || api_field_int(r, mem, "size_MiB", false, VM_MEM_MIN, VM_MEM_MAX, &mib) < 0)
        goto out;
    if (count % cps) {
        api_error(r, 400, "INVALID_ARGUMENT",
                  "cpu.count %lld is not a multiple of cpu.cores_per_socket %lld",
                  (long long)count, (long long)cps);
        goto out;
    }
    if (strcmp(str(row, "power_state"), "POWERED_OFF")) {
        api_error(r, 400, "NOT_ALLOWED_IN_CURRENT_STATE",
                  "virtual machine %s must be powered off to change CPU or memory",
                  api_param(r, "vm"));
        goto out;
    }
    if (mem && api_require(r, "VirtualMachine.Config.Memory", api_param(r, "vm")) < 0)
        goto out;
    if (api_need_host(r, str(row, "host")) < 0)
        goto out;
    c = calloc(1, sizeof(*c));
    c->op.r = r;
    c->op.vx = api_vpxd(r);
    snprintf(c->op.id, sizeof(c->op.id), "%s", api_param(r, "vm"));
    c->cpu = (int)count;
    c->cps = (int)cps;
    c->mib = mib;
    api_hold(r);
    rc = hostmgr_vm_reconfigure(api_vpxd(r)->hm, str(row, "host"), str(row, "instance_uuid"),
                                (uint32_t)count, (uint64_t)mib, on_reconfigured, c);
    if (rc < 0) {
        api_host_error(r, rc, NULL);
        free(c);
    }
out:
    json_decref(row);
}
