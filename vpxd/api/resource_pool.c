/* /api/vcenter/resource-pool */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vpxd/api/api.h"
#include "vpxd/api/filters.h"
#include "vpxd/api/internal.h"
#include "host.pb-c.h"
#include "lib/log.h"
#include "vpxd/hostmgr.h"
#include "vpxd/rp.h"
#include "vpxd/vpxd.h"

KVC_LOG_MODULE(api_rp);

static void api_rp_push(struct api_req *r, const char *pool)
{
    rp_push(api_vpxd(r)->hm, api_db(r), pool);
}

void api_rp_list(struct api_req *r)
{
    char *ids = api_filter_json(r, "resource_pools");
    char *names = api_filter_json(r, "names");
    char *parents = api_filter_json(r, "parent_resource_pools");
    char *dcs = api_filter_json(r, "datacenters");
    char *hosts = api_filter_json(r, "hosts");
    char *clusters = api_filter_json(r, "clusters");
    json_t *rows = NULL;
    int rc = vdb_query_json(api_db(r), &rows,
        "SELECT e.id AS resource_pool, e.name FROM resource_pool p"
        " JOIN entity e ON e.id = p.id WHERE 1"
        IN_FILTER("e.id", 1) IN_FILTER("e.name", 2) IN_FILTER("e.parent", 3)
        IN_FILTER("p.datacenter", 4) IN_FILTER("p.owner", 5) IN_FILTER("p.owner", 6)
        " ORDER BY e.rowid", "ssssss", ids, names, parents, dcs, hosts, clusters);

    free(ids);
    free(names);
    free(parents);
    free(dcs);
    free(hosts);
    free(clusters);
    if (rc < 0)
        return api_error_errno(r, rc, "resource pools");
    api_reply(r, 200, api_filter_visible(r, rows, "resource_pool"));
}

void api_rp_get(struct api_req *r)
{
    const char *id = api_param(r, "resource_pool");
    json_t *row = NULL, *kids = NULL, *out;
    int rc = vdb_query_row(api_db(r), &row, "SELECT e.name, p.* FROM resource_pool p"
                           " JOIN entity e ON e.id = p.id WHERE p.id = ?", "s", id);

    if (rc == -ENOENT)
        return api_error(r, 404, "NOT_FOUND", "resource pool %s not found", id);
    if (rc < 0)
        return api_error_errno(r, rc, "resource pool");
    vdb_query_json(api_db(r), &kids, "SELECT id FROM entity WHERE parent = ?"
                   " AND type = 'resource_pool' ORDER BY rowid", "s", id);
    json_t *ids = json_array();
    size_t i;
    json_t *k;
    json_array_foreach(kids, i, k)
        json_array_append(ids, json_object_get(k, "id"));
    json_decref(kids);
#define ALLOC(P) json_pack("{s:O, s:b, s:O, s:{s:O, s:O}}", \
        "reservation", json_object_get(row, P "_reservation"), \
        "expandable_reservation", (int)json_integer_value(json_object_get(row, P "_expandable")), \
        "limit", json_object_get(row, P "_limit"), "shares", \
        "level", json_object_get(row, P "_shares_level"), \
        "shares", json_object_get(row, P "_shares"))
    out = json_pack("{s:O, s:o, s:o, s:o}", "name", json_object_get(row, "name"),
                    "resource_pools", ids, "cpu_allocation", ALLOC("cpu"),
                    "memory_allocation", ALLOC("mem"));
#undef ALLOC
    /* A root pool holds what its cluster or host has, as in vCenter: a
     * fixed reservation and a limit of the capacity. */
    struct rp_tree t;
    int ri;
    if (rp_tree_load(api_db(r), id, &t) == 0) {
        if ((ri = rp_find(&t, id)) >= 0 && t.n[ri].parent < 0) {
            static const char *const keys[2] = { "cpu_allocation", "memory_allocation" };
            for (int kind = 0; kind < 2; kind++) {
                json_t *a = json_object_get(out, keys[kind]);
                json_object_set_new(a, "reservation", json_integer(t.n[ri].reservation[kind]));
                json_object_set_new(a, "limit", json_integer(t.n[ri].reservation[kind]));
                json_object_set_new(a, "expandable_reservation", json_false());
            }
        }
        rp_tree_free(&t);
    }
    json_decref(row);
    api_reply(r, 200, out);
}

/* Reads an allocation spec; -1 (answered) on a bad one. */
static int read_alloc(struct api_req *r, const char *key, struct vdb_alloc *a, bool *set)
{
    static const char *const fields[] = { "reservation", "expandable_reservation", "limit",
                                          "shares", NULL };
    static const char *const levels[] = { "LOW", "NORMAL", "HIGH", "CUSTOM", NULL };
    json_t *o, *sh;
    const char *k;
    json_t *v;

    *set = false;
    if (api_field_obj(r, api_body(r), key, &o) < 0)
        return -1;
    if (!o)
        return 0;
    json_object_foreach(o, k, v) {
        bool known = false;
        for (int i = 0; fields[i] && !known; i++)
            known = !strcmp(fields[i], k);
        if (!known) {
            api_error(r, 400, "INVALID_ARGUMENT", "unknown field '%s' in %s", k, key);
            return -1;
        }
    }
    *set = true;
    if (api_field_int(r, o, "reservation", false, 0, INT64_C(1) << 50, &a->reservation) < 0
        || api_field_bool(r, o, "expandable_reservation", false, &a->expandable) < 0
        || api_field_int(r, o, "limit", false, -1, INT64_C(1) << 50, &a->limit) < 0
        || api_field_obj(r, o, "shares", &sh) < 0)
        return -1;
    if (sh && (api_field_enum(r, sh, "level", true, levels, &a->shares_level) < 0
               || api_field_int(r, sh, "shares", !strcmp(a->shares_level, "CUSTOM"), 0,
                                1000000, &a->shares) < 0))
        return -1;
    /* A level other than CUSTOM means vSphere's value for it. */
    if (strcmp(a->shares_level, "CUSTOM"))
        a->shares = rp_pool_shares(a->shares_level, strcmp(key, "cpu_allocation") ? RP_MEM
                                                                                 : RP_CPU, 0);
    if (a->limit != -1 && a->limit < a->reservation) {
        api_error(r, 400, "INVALID_ARGUMENT", "%s: limit %lld is below the reservation %lld",
                  key, (long long)a->limit, (long long)a->reservation);
        return -1;
    }
    return 0;
}

void api_rp_create(struct api_req *r)
{
    static const char *const fields[] = { "name", "parent", "cpu_allocation",
                                          "memory_allocation", NULL };
    struct vdb_alloc cpu = { 0, -1, true, "NORMAL", 4000 };
    struct vdb_alloc mem = { 0, -1, true, "NORMAL", 163840 };
    const char *name, *parent;
    bool cs, ms;
    char id[VDB_ID_MAX];
    int rc;

    if (api_body_object(r, fields) < 0 || api_field_str(r, api_body(r), "name", true, &name) < 0
        || api_field_str(r, api_body(r), "parent", true, &parent) < 0
        || read_alloc(r, "cpu_allocation", &cpu, &cs) < 0
        || read_alloc(r, "memory_allocation", &mem, &ms) < 0)
        return;
    if (!*name)
        return api_error(r, 400, "INVALID_ARGUMENT", "field 'name' must not be empty");
    if (!vdb_entity_exists(api_db(r), parent, "resource_pool"))
        return api_error(r, 404, "NOT_FOUND", "resource pool %s not found", parent);
    if (api_require(r, "Resource.CreatePool", parent) < 0)
        return;
    char why[512] = "";
    rc = rp_admit_pool_create(api_db(r), parent, &cpu, &mem, why, sizeof(why));
    if (rc == -ENOSPC)
        return api_error(r, 500, "UNABLE_TO_ALLOCATE_RESOURCE",
                         "the parent resource pool cannot cover the reservation: %s", why);
    if (rc < 0)
        return api_error_errno(r, rc, "resource pool");
    rc = vdb_rp_create(api_db(r), name, parent, &cpu, &mem, id);
    if (rc < 0)
        return api_error_errno(r, rc, "resource pool");
    api_rp_push(r, id);
    api_set_object(r, id);
    api_reply(r, 201, json_string(id));
}

void api_rp_patch(struct api_req *r)
{
    static const char *const fields[] = { "name", "cpu_allocation", "memory_allocation", NULL };
    const char *id = api_param(r, "resource_pool");
    struct vdb_alloc cpu = { 0 }, mem = { 0 };
    json_t *row = NULL;
    const char *name;
    bool cs, ms;
    int rc;

    if (api_body_object(r, fields) < 0 || api_field_str(r, api_body(r), "name", false, &name) < 0)
        return;
    rc = vdb_query_row(api_db(r), &row, "SELECT * FROM resource_pool WHERE id = ?", "s", id);
    if (rc == -ENOENT)
        return api_error(r, 404, "NOT_FOUND", "resource pool %s not found", id);
    if (rc < 0)
        return api_error_errno(r, rc, "resource pool");
    /* Unset fields keep their values. */
#define CUR(A, P) do { \
        A.reservation = json_integer_value(json_object_get(row, P "_reservation")); \
        A.limit = json_integer_value(json_object_get(row, P "_limit")); \
        A.expandable = json_integer_value(json_object_get(row, P "_expandable")); \
        A.shares_level = json_string_value(json_object_get(row, P "_shares_level")); \
        A.shares = json_integer_value(json_object_get(row, P "_shares")); } while (0)
    CUR(cpu, "cpu");
    CUR(mem, "mem");
#undef CUR
    if (read_alloc(r, "cpu_allocation", &cpu, &cs) < 0
        || read_alloc(r, "memory_allocation", &mem, &ms) < 0) {
        json_decref(row);
        return;
    }
    if (name && !*name) {
        json_decref(row);
        return api_error(r, 400, "INVALID_ARGUMENT", "field 'name' must not be empty");
    }
    char why[512] = "";
    rc = cs || ms ? rp_admit_pool_update(api_db(r), id, cs ? &cpu : NULL, ms ? &mem : NULL,
                                         why, sizeof(why)) : 0;
    if (rc == -ENOSPC || rc == -EPERM || rc == -EINVAL) {
        json_decref(row);
        if (rc == -EPERM)
            return api_error(r, 400, "UNSUPPORTED", "%s", why);
        if (rc == -EINVAL)
            return api_error(r, 400, "INVALID_ARGUMENT", "%s", why);
        return api_error(r, 500, "UNABLE_TO_ALLOCATE_RESOURCE",
                         "the resource pool's parent cannot cover the change: %s", why);
    }
    if (rc >= 0)
        rc = vdb_rp_update(api_db(r), id, name, cs ? &cpu : NULL, ms ? &mem : NULL);
    json_decref(row);
    if (rc < 0)
        return api_error_errno(r, rc, "resource pool");
    api_rp_push(r, id);
    api_reply(r, 204, NULL);
}

void api_rp_delete(struct api_req *r)
{
    const char *id = api_param(r, "resource_pool");
    char owner[VDB_ID_MAX] = "";
    vdb_query_str(api_db(r), owner, sizeof(owner), "SELECT owner FROM resource_pool WHERE"
                  " id = ?", "s", id);
    int rc = vdb_rp_delete(api_db(r), id);

    if (rc == -ENOENT)
        return api_error(r, 404, "NOT_FOUND", "resource pool %s not found", id);
    if (rc == -EPERM)
        return api_error(r, 400, "UNSUPPORTED",
                         "%s is the root resource pool of its cluster or host", id);
    if (rc == -ENOTEMPTY)
        return api_error(r, 400, "RESOURCE_IN_USE", "resource pool %s still holds VMs or pools",
                         id);
    if (rc < 0)
        return api_error_errno(r, rc, "resource pool");
    rp_push(api_vpxd(r)->hm, api_db(r), owner);
    api_reply(r, 204, NULL);
}

/* ---- the pool tree to the hosts ---- */

static void on_pushed(void *arg, int err, const char *msg, const ProtobufCMessage *resp)
{
    char *host = arg;

    (void)resp;
    if (err < 0)
        kvc_warn("resource pools to %s: %s", host, msg && *msg ? msg : strerror(-err));
    free(host);
}

void rp_push(struct hostmgr *hm, struct vdb *db, const char *which)
{
    char owner[VDB_ID_MAX] = "";
    json_t *pools = NULL, *vms = NULL, *hosts = NULL, *o;
    Kvc__Host__PoolTree t = KVC__HOST__POOL_TREE__INIT;
    Kvc__Host__Pool *pb = NULL, **pp = NULL;
    Kvc__Host__PoolVm *vb = NULL, **vp = NULL;
    size_t i;

    if (!hm || !which || !*which)
        return;
    if (vdb_query_str(db, owner, sizeof(owner), "SELECT owner FROM resource_pool WHERE id = ?",
                      "s", which) < 0
        && vdb_query_str(db, owner, sizeof(owner), "SELECT coalesce(cluster, id) FROM host"
                         " WHERE id = ?", "s", which) < 0)
        snprintf(owner, sizeof(owner), "%s", which);
    if (vdb_query_json(db, &pools, "SELECT p.*, CASE WHEN pe.type = 'resource_pool' THEN"
                       " e.parent ELSE '' END AS parent FROM resource_pool p JOIN entity e ON"
                       " e.id = p.id LEFT JOIN entity pe ON pe.id = e.parent WHERE p.owner = ?"
                       " ORDER BY e.rowid", "s", owner) < 0
        || vdb_query_json(db, &vms, "SELECT v.instance_uuid AS uuid, v.resource_pool AS rp"
                          " FROM vm v JOIN resource_pool p ON p.id = v.resource_pool WHERE"
                          " p.owner = ? AND v.host IS NOT NULL", "s", owner) < 0
        || vdb_query_json(db, &hosts, "SELECT id FROM host WHERE (id = ? OR cluster = ?) AND"
                          " connection_state = 'CONNECTED'", "ss", owner, owner) < 0)
        goto out;
    if (json_array_size(pools) == 0 || json_array_size(hosts) == 0)
        goto out;
    pb = calloc(json_array_size(pools), sizeof(*pb));
    pp = calloc(json_array_size(pools), sizeof(*pp));
    vb = calloc(json_array_size(vms) + 1, sizeof(*vb));
    vp = calloc(json_array_size(vms) + 1, sizeof(*vp));
    if (!pb || !pp || !vb || !vp)
        goto out;
#define I(K) json_integer_value(json_object_get(o, K))
#define S(K) (char *)(json_string_value(json_object_get(o, K)) ?: "")
    json_array_foreach(pools, i, o) {
        kvc__host__pool__init(&pb[i]);
        pb[i].id = S("id");
        pb[i].parent = S("parent");
        pb[i].cpu_shares = I("cpu_shares");
        pb[i].cpu_reservation_mhz = I("cpu_reservation");
        pb[i].cpu_limit_mhz = I("cpu_limit");
        pb[i].mem_shares = I("mem_shares");
        pb[i].mem_reservation_mb = I("mem_reservation");
        pb[i].mem_limit_mb = I("mem_limit");
        pp[i] = &pb[i];
    }
    json_array_foreach(vms, i, o) {
        kvc__host__pool_vm__init(&vb[i]);
        vb[i].uuid = S("uuid");
        vb[i].pool = S("rp");
        vp[i] = &vb[i];
    }
#undef I
#undef S
    t.pools = pp;
    t.n_pools = json_array_size(pools);
    t.vms = vp;
    t.n_vms = json_array_size(vms);
    json_array_foreach(hosts, i, o) {
        const char *h = json_string_value(json_object_get(o, "id"));
        char *arg = h ? strdup(h) : NULL;
        if (arg && hostmgr_host_call(hm, h, KVC__HOST__METHOD__POOLS_SET, &t.base,
                                     &kvc__host__status__descriptor, on_pushed, arg) < 0) {
            kvc_warn("resource pools to %s: host not reachable", h);
            free(arg);
        }
    }
out:
    free(pb);
    free(pp);
    free(vb);
    free(vp);
    json_decref(pools);
    json_decref(vms);
    json_decref(hosts);
}

/* ---- power-on admission (called by api_vm_power_start) ---- */

bool api_rp_power_on_refused(struct api_req *r)
{
    const char *vm = api_param(r, "vm");
    char why[512] = "", pool[VDB_ID_MAX] = "";
    int rc;

    if (!vdb_entity_exists(api_db(r), vm, "vm"))
        return false;           /* the power-on answers 404 */
    if (vdb_query_str(api_db(r), pool, sizeof(pool), "SELECT coalesce(resource_pool, '')"
                      " FROM vm WHERE id = ? AND power_state != 'POWERED_ON'", "s", vm) < 0
        || !*pool)
        return false;           /* on already (the power-on answers), or in no pool */
    rc = rp_admit_vm(api_db(r), vm, NULL, why, sizeof(why));
    if (rc == -ENOSPC) {
        api_error(r, 500, "UNABLE_TO_ALLOCATE_RESOURCE",
                  "cannot power on %s: insufficient resources in its resource pool: %s", vm,
                  why);
        return true;
    }
    if (rc < 0)
        kvc_warn("power-on admission of %s: %s", vm, strerror(-rc));
    else
        rp_pending_add(vm);     /* dropped when the host answers (vm.c) */
    /* The host learns the VM's pool before it powers it on (one connection,
     * in order). */
    rp_push(api_vpxd(r)->hm, api_db(r), pool);
    return false;
}

/* ---- /api/kvc/vm/{vm}/resource-allocation ---- */

void api_rp_vm_alloc_get(struct api_req *r)
{
    const char *vm = api_param(r, "vm");
    struct rp_vm_alloc a[2];
    char levels[2][16], pool[VDB_ID_MAX] = "";
    int64_t units[2] = { 1, 1 };
    json_t *row = NULL, *out;
    int rc = rp_vm_alloc_get(api_db(r), vm, &a[0], &a[1], levels);

    if (rc == -ENOENT)
        return api_error(r, 404, "NOT_FOUND", "virtual machine %s not found", vm);
    if (rc < 0)
        return api_error_errno(r, rc, "virtual machine");
    if (vdb_query_row(api_db(r), &row, "SELECT coalesce(resource_pool, '') AS rp, cpu_count,"
                      " memory_mib FROM vm WHERE id = ?", "s", vm) == 0) {
        snprintf(pool, sizeof(pool), "%s", json_string_value(json_object_get(row, "rp")));
        units[0] = json_integer_value(json_object_get(row, "cpu_count"));
        units[1] = json_integer_value(json_object_get(row, "memory_mib"));
    }
    json_decref(row);
#define ALLOC(K) json_pack("{s:I, s:I, s:{s:s, s:I}}", "reservation", (json_int_t)a[K].reservation, \
        "limit", (json_int_t)a[K].limit, "shares", "level", a[K].shares_level, "shares", \
        (json_int_t)rp_vm_shares(a[K].shares_level, K, units[K], a[K].shares))
    out = json_pack("{s:s?, s:o, s:o}", "resource_pool", *pool ? pool : NULL,
                    "cpu_allocation", ALLOC(RP_CPU), "memory_allocation", ALLOC(RP_MEM));
#undef ALLOC
    api_reply(r, 200, out);
}

static int read_vm_alloc(struct api_req *r, const char *key, struct rp_vm_alloc *a, bool *set)
{
    static const char *const fields[] = { "reservation", "limit", "shares", NULL };
    static const char *const levels[] = { "LOW", "NORMAL", "HIGH", "CUSTOM", NULL };
    json_t *o, *sh, *v;
    const char *k;

    *set = false;
    if (api_field_obj(r, api_body(r), key, &o) < 0)
        return -1;
    if (!o)
        return 0;
    json_object_foreach(o, k, v) {
        bool known = false;
        for (int i = 0; fields[i] && !known; i++)
            known = !strcmp(fields[i], k);
        if (!known) {
            api_error(r, 400, "INVALID_ARGUMENT", "unknown field '%s' in %s", k, key);
            return -1;
        }
    }
    *set = true;
    if (api_field_int(r, o, "reservation", false, 0, INT64_C(1) << 50, &a->reservation) < 0
        || api_field_int(r, o, "limit", false, -1, INT64_C(1) << 50, &a->limit) < 0
        || api_field_obj(r, o, "shares", &sh) < 0)
        return -1;
    if (sh && (api_field_enum(r, sh, "level", true, levels, &a->shares_level) < 0
               || api_field_int(r, sh, "shares", !strcmp(a->shares_level, "CUSTOM"), 0,
                                1000000, &a->shares) < 0))
        return -1;
    if (a->limit != -1 && a->limit < a->reservation) {
        api_error(r, 400, "INVALID_ARGUMENT", "%s: limit %lld is below the reservation %lld",
                  key, (long long)a->limit, (long long)a->reservation);
        return -1;
    }
    return 0;
}

void api_rp_vm_alloc_patch(struct api_req *r)
{
    static const char *const fields[] = { "resource_pool", "cpu_allocation",
                                          "memory_allocation", NULL };
    const char *vm = api_param(r, "vm"), *pool = NULL;
    struct rp_vm_alloc a[2];
    char levels[2][16], why[512] = "", cur[VDB_ID_MAX] = "", state[32] = "";
    bool cs, ms;
    int rc;

    if (api_body_object(r, fields) < 0
        || api_field_str(r, api_body(r), "resource_pool", false, &pool) < 0)
        return;
    rc = rp_vm_alloc_get(api_db(r), vm, &a[0], &a[1], levels);
    if (rc == -ENOENT)
        return api_error(r, 404, "NOT_FOUND", "virtual machine %s not found", vm);
    if (rc < 0)
        return api_error_errno(r, rc, "virtual machine");
    if (read_vm_alloc(r, "cpu_allocation", &a[0], &cs) < 0
        || read_vm_alloc(r, "memory_allocation", &a[1], &ms) < 0)
        return;
    int64_t mib = 0;
    vdb_query_int(api_db(r), &mib, "SELECT memory_mib FROM vm WHERE id = ?", "s", vm);
    if (ms && a[1].reservation > mib)
        return api_error(r, 400, "INVALID_ARGUMENT", "memory_allocation: reservation %lld MB"
                         " is more than the VM's memory (%lld MB)",
                         (long long)a[1].reservation, (long long)mib);
    if (pool && !vdb_entity_exists(api_db(r), pool, "resource_pool"))
        return api_error(r, 404, "NOT_FOUND", "resource pool %s not found", pool);
    if (pool && api_require(r, "Resource.AssignVMToPool", pool) < 0)
        return;
    vdb_query_str(api_db(r), cur, sizeof(cur), "SELECT coalesce(resource_pool, '') FROM vm"
                  " WHERE id = ?", "s", vm);
    vdb_query_str(api_db(r), state, sizeof(state), "SELECT power_state FROM vm WHERE id = ?",
                  "s", vm);
    /* A running VM's new reservation or pool must fit where it will be. */
    if (!strcmp(state, "POWERED_ON")) {
        rc = rp_admit_vm_with(api_db(r), vm, pool, a[0].reservation, a[1].reservation, why,
                              sizeof(why));
        if (rc == -ENOSPC)
            return api_error(r, 500, "UNABLE_TO_ALLOCATE_RESOURCE",
                             "insufficient resources in the resource pool: %s", why);
        if (rc < 0 && rc != -ENOENT)
            return api_error_errno(r, rc, "resource pool");
    }
    api_set_object(r, vm);
    if (pool && strcmp(pool, cur)) {
        rc = rp_vm_move(api_db(r), vm, pool);
        if (rc == -EXDEV)
            return api_error(r, 400, "INVALID_ARGUMENT", "resource pool %s is not in the"
                             " cluster or host of %s", pool, vm);
        if (rc < 0)
            return api_error_errno(r, rc, "virtual machine");
    }
    if (cs || ms) {
        rc = rp_vm_alloc_set(api_db(r), vm, cs ? &a[0] : NULL, ms ? &a[1] : NULL);
        if (rc < 0)
            return api_error_errno(r, rc, "virtual machine");
    }
    if (pool || *cur)
        rp_push(api_vpxd(r)->hm, api_db(r), pool ? pool : cur);
    api_reply(r, 204, NULL);
}

/* ---- /api/kvc/host/{host}/resource-pools: the tree as the host applied it ---- */

static void on_host_pools(void *arg, int err, const char *msg, const ProtobufCMessage *resp)
{
    struct api_req *r = arg;
    const Kvc__Host__PoolTree *t = (const void *)resp;
    json_t *pools, *vms;

    if (err)
        return api_host_error(r, err, msg);
    pools = json_array();
    vms = json_array();
    for (size_t i = 0; i < t->n_pools; i++) {
        const Kvc__Host__Pool *p = t->pools[i];
        json_array_append_new(pools, json_pack(
            "{s:s, s:s?, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:I, s:I, s:I, s:I}",
            "resource_pool", p->id, "parent", *p->parent ? p->parent : NULL,
            "cpu_shares", (json_int_t)p->cpu_shares,
            "cpu_reservation", (json_int_t)p->cpu_reservation_mhz,
            "cpu_limit", (json_int_t)p->cpu_limit_mhz, "memory_shares", (json_int_t)p->mem_shares,
            "memory_reservation", (json_int_t)p->mem_reservation_mb,
            "memory_limit", (json_int_t)p->mem_limit_mb, "cgroup", p->cgroup,
            "cpu_weight", (json_int_t)p->weight, "cpu_quota_us", (json_int_t)p->quota_us,
            "cpu_ns", (json_int_t)p->cpu_ns, "memory_bytes", (json_int_t)p->mem_bytes));
    }
    for (size_t i = 0; i < t->n_vms; i++)
        json_array_append_new(vms, json_pack("{s:s, s:s}", "instance_uuid", t->vms[i]->uuid,
                                             "resource_pool", t->vms[i]->pool));
    api_reply(r, 200, json_pack("{s:o, s:o}", "resource_pools", pools, "vms", vms));
}

void api_rp_host_pools(struct api_req *r)
{
    const char *host = api_param(r, "host");
    Kvc__Host__Empty e = KVC__HOST__EMPTY__INIT;
    int rc;

    if (!vdb_entity_exists(api_db(r), host, "host"))
        return api_error(r, 404, "NOT_FOUND", "host %s not found", host);
    if (api_need_host(r, host) < 0)
        return;
    api_hold(r);
    rc = hostmgr_host_call(api_vpxd(r)->hm, host, KVC__HOST__METHOD__POOLS_GET, &e.base,
                           &kvc__host__pool_tree__descriptor, on_host_pools, r);
    if (rc < 0)
        api_host_error(r, rc, NULL);
}
