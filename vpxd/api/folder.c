/* /api/vcenter/folder, and /api/kvc/folder to create and delete. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vpxd/api/api.h"
#include "vpxd/api/filters.h"
#include "vpxd/api/internal.h"

static const char *const folder_types[] = { "DATACENTER", "DATASTORE", "HOST", "NETWORK",
                                            "VIRTUAL_MACHINE", NULL };

void api_folder_list(struct api_req *r)
{
    const char *type = api_query(r, "type");
    char *ids, *names, *parents, *dcs;
    json_t *rows = NULL;
    int rc;

    if (type) {
        bool ok = false;
        for (int i = 0; folder_types[i] && !ok; i++)
            ok = !strcmp(folder_types[i], type);
        if (!ok)
            return api_error(r, 400, "INVALID_ARGUMENT", "bad folder type '%.32s'", type);
    }
    ids = api_filter_json(r, "folders");
    names = api_filter_json(r, "names");
    parents = api_filter_json(r, "parent_folders");
    dcs = api_filter_json(r, "datacenters");
    rc = vdb_query_json(api_db(r), &rows,
        "SELECT e.id AS folder, e.name, f.folder_type AS type FROM folder f"
        " JOIN entity e ON e.id = f.id WHERE (?1 IS NULL OR f.folder_type = ?1)"
        IN_FILTER("e.id", 2) IN_FILTER("e.name", 3) IN_FILTER("e.parent", 4)
        IN_FILTER("f.datacenter", 5) " ORDER BY e.rowid", "sssss", type, ids, names,
        parents, dcs);
    free(ids);
    free(names);
    free(parents);
    free(dcs);
    if (rc < 0)
        return api_error_errno(r, rc, "folders");
    api_reply(r, 200, api_filter_visible(r, rows, "folder"));
}

void api_folder_create(struct api_req *r)
{
    static const char *const fields[] = { "name", "parent_folder", NULL };
    const char *name, *parent;
    char id[VDB_ID_MAX];
    int rc;

    if (api_body_object(r, fields) < 0 || api_field_str(r, api_body(r), "name", true, &name) < 0
        || api_field_str(r, api_body(r), "parent_folder", true, &parent) < 0)
        return;
    if (!*name)
        return api_error(r, 400, "INVALID_ARGUMENT", "field 'name' must not be empty");
    if (!vdb_entity_exists(api_db(r), parent, "folder"))
        return api_error(r, 404, "NOT_FOUND", "folder %s not found", parent);
    if (api_require(r, "Folder.Create", parent) < 0)
        return;
    rc = vdb_folder_create(api_db(r), name, parent, id);
    if (rc < 0)
        return api_error_errno(r, rc, "folder");
    api_set_object(r, id);
    api_reply(r, 201, json_string(id));
}

void api_folder_delete(struct api_req *r)
{
    int rc = vdb_folder_delete(api_db(r), api_param(r, "folder"));

    if (rc == -ENOENT)
        return api_error(r, 404, "NOT_FOUND", "folder %s not found", api_param(r, "folder"));
    if (rc == -ENOTEMPTY)
        return api_error(r, 400, "RESOURCE_IN_USE", "folder %s is not empty",
                         api_param(r, "folder"));
    if (rc == -EPERM)
        return api_error(r, 400, "NOT_ALLOWED_IN_CURRENT_STATE",
                         "folder %s belongs to its datacenter and cannot be deleted",
                         api_param(r, "folder"));
    if (rc < 0)
        return api_error_errno(r, rc, "folder");
    api_reply(r, 204, NULL);
}
