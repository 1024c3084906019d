/* /api/vcenter/resource-pool */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vpxd/api/api.h"
#include "vpxd/api/filters.h"
#include "vpxd/api/internal.h"

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
    rc = vdb_rp_create(api_db(r), name, parent, &cpu, &mem, id);
    if (rc < 0)
        return api_error_errno(r, rc, "resource pool");
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
    rc = vdb_rp_update(api_db(r), id, name, cs ? &cpu : NULL, ms ? &mem : NULL);
    json_decref(row);
    if (rc < 0)
        return api_error_errno(r, rc, "resource pool");
    api_reply(r, 204, NULL);
}

void api_rp_delete(struct api_req *r)
{
    const char *id = api_param(r, "resource_pool");
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
    api_reply(r, 204, NULL);
}
