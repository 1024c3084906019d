/* /api/vcenter/datacenter */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vpxd/api/api.h"
#include "vpxd/api/filters.h"
#include "vpxd/api/internal.h"

void api_datacenter_list(struct api_req *r)
{
    char *ids = api_filter_json(r, "datacenters");
    char *names = api_filter_json(r, "names");
    char *folders = api_filter_json(r, "folders");
    json_t *rows = NULL;
    int rc = vdb_query_json(api_db(r), &rows,
        "SELECT e.id AS datacenter, e.name FROM entity e WHERE e.type = 'datacenter'"
        IN_FILTER("e.id", 1) IN_FILTER("e.name", 2) IN_FILTER("e.parent", 3)
        " ORDER BY e.rowid", "sss", ids, names, folders);

    free(ids);
    free(names);
    free(folders);
    if (rc < 0)
        return api_error_errno(r, rc, "datacenters");
    api_reply(r, 200, api_filter_visible(r, rows, "datacenter"));
}

void api_datacenter_get(struct api_req *r)
{
    json_t *row = NULL;
    int rc = vdb_query_row(api_db(r), &row,
        "SELECT e.name, d.datastore_folder, d.host_folder, d.network_folder, d.vm_folder"
        " FROM datacenter d JOIN entity e ON e.id = d.id WHERE d.id = ?", "s",
        api_param(r, "datacenter"));

    if (rc == -ENOENT)
        return api_error(r, 404, "NOT_FOUND", "datacenter %s not found",
                         api_param(r, "datacenter"));
    if (rc < 0)
        return api_error_errno(r, rc, "datacenter");
    api_reply(r, 200, row);
}

void api_datacenter_create(struct api_req *r)
{
    static const char *const fields[] = { "name", "folder", NULL };
    const char *name, *folder;
    char id[VDB_ID_MAX];
    int rc;

    if (api_body_object(r, fields) < 0 || api_field_str(r, api_body(r), "name", true, &name) < 0
        || api_field_str(r, api_body(r), "folder", false, &folder) < 0)
        return;
    if (!*name)
        return api_error(r, 400, "INVALID_ARGUMENT", "field 'name' must not be empty");
    if (folder && !vdb_entity_exists(api_db(r), folder, "folder"))
        return api_error(r, 404, "NOT_FOUND", "folder %s not found", folder);
    if (api_require(r, "Datacenter.Create", folder ? folder : VDB_ROOT_FOLDER) < 0)
        return;
    rc = vdb_datacenter_create(api_db(r), name, folder, id);
    if (rc == -EINVAL)
        return api_error(r, 400, "INVALID_ARGUMENT", "folder %s cannot hold datacenters",
                         folder);
    if (rc < 0)
        return api_error_errno(r, rc, "datacenter");
    api_set_object(r, id);
    api_reply(r, 201, json_string(id));
}

void api_datacenter_delete(struct api_req *r)
{
    const char *f = api_query(r, "force");
    int rc = vdb_datacenter_delete(api_db(r), api_param(r, "datacenter"),
                                   f && !strcmp(f, "true"));

    if (rc == -ENOENT)
        return api_error(r, 404, "NOT_FOUND", "datacenter %s not found",
                         api_param(r, "datacenter"));
    if (rc == -ENOTEMPTY)
        return api_error(r, 400, "RESOURCE_IN_USE",
                         "datacenter %s still holds hosts or VMs (use force=true)",
                         api_param(r, "datacenter"));
    if (rc < 0)
        return api_error_errno(r, rc, "datacenter");
    api_reply(r, 204, NULL);
}
