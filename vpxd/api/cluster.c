/* /api/vcenter/cluster, and /api/kvc/cluster to create and delete. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vpxd/api/api.h"
#include "vpxd/api/filters.h"
#include "vpxd/api/internal.h"

void api_cluster_list(struct api_req *r)
{
    char *ids = api_filter_json(r, "clusters");
    char *names = api_filter_json(r, "names");
    char *folders = api_filter_json(r, "folders");
    char *dcs = api_filter_json(r, "datacenters");
    json_t *rows = NULL;
    int rc = vdb_query_json(api_db(r), &rows,
        "SELECT e.id AS cluster, e.name, json(CASE c.ha_enabled WHEN 1 THEN 'true'"
        " ELSE 'false' END) AS ha_enabled_json, json(CASE c.drs_enabled WHEN 1 THEN 'true'"
        " ELSE 'false' END) AS drs_enabled_json FROM cluster c JOIN entity e ON e.id = c.id"
        " WHERE 1" IN_FILTER("e.id", 1) IN_FILTER("e.name", 2) IN_FILTER("e.parent", 3)
        IN_FILTER("c.datacenter", 4) " ORDER BY e.rowid", "ssss", ids, names, folders, dcs);

    free(ids);
    free(names);
    free(folders);
    free(dcs);
    if (rc < 0)
        return api_error_errno(r, rc, "clusters");
    api_reply(r, 200, api_filter_visible(r, rows, "cluster"));
}

void api_cluster_get(struct api_req *r)
{
    json_t *row = NULL;
    int rc = vdb_query_row(api_db(r), &row, "SELECT e.name, c.resource_pool FROM cluster c"
                           " JOIN entity e ON e.id = c.id WHERE c.id = ?", "s",
                           api_param(r, "cluster"));

    if (rc == -ENOENT)
        return api_error(r, 404, "NOT_FOUND", "cluster %s not found", api_param(r, "cluster"));
    if (rc < 0)
        return api_error_errno(r, rc, "cluster");
    api_reply(r, 200, row);
}

void api_cluster_create(struct api_req *r)
{
    static const char *const fields[] = { "name", "folder", "ha_enabled", "drs_enabled", NULL };
    const char *name, *folder;
    bool ha = false, drs = false;
    char id[VDB_ID_MAX];
    int rc;

    if (api_body_object(r, fields) < 0 || api_field_str(r, api_body(r), "name", true, &name) < 0
        || api_field_str(r, api_body(r), "folder", true, &folder) < 0
        || api_field_bool(r, api_body(r), "ha_enabled", false, &ha) < 0
        || api_field_bool(r, api_body(r), "drs_enabled", false, &drs) < 0)
        return;
    if (!*name)
        return api_error(r, 400, "INVALID_ARGUMENT", "field 'name' must not be empty");
    if (!vdb_entity_exists(api_db(r), folder, NULL))
        return api_error(r, 404, "NOT_FOUND", "folder %s not found", folder);
    if (api_require(r, "Host.Inventory.CreateCluster", folder) < 0)
        return;
    rc = vdb_cluster_create(api_db(r), name, folder, ha, drs, id);
    if (rc == -EINVAL)
        return api_error(r, 400, "INVALID_ARGUMENT",
                         "%s is neither a datacenter nor a host folder", folder);
    if (rc < 0)
        return api_error_errno(r, rc, "cluster");
    api_set_object(r, id);
    api_reply(r, 201, json_string(id));
}

void api_cluster_delete(struct api_req *r)
{
    int rc = vdb_cluster_delete(api_db(r), api_param(r, "cluster"));

    if (rc == -ENOENT)
        return api_error(r, 404, "NOT_FOUND", "cluster %s not found", api_param(r, "cluster"));
    if (rc == -ENOTEMPTY)
        return api_error(r, 400, "RESOURCE_IN_USE", "cluster %s still holds hosts or VMs",
                         api_param(r, "cluster"));
    if (rc < 0)
        return api_error_errno(r, rc, "cluster");
    api_reply(r, 204, NULL);
}
