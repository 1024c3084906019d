/* /api/vcenter/datastore and /api/vcenter/network: what hosts report. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vpxd/api/api.h"
#include "vpxd/api/filters.h"
#include "vpxd/api/internal.h"

static const char *const ds_types[] = { "VMFS", "NFS", "NFS41", "CIFS", "VSAN", "VFFS",
                                        "VVOL", NULL };
static const char *const net_types[] = { "STANDARD_PORTGROUP", "DISTRIBUTED_PORTGROUP",
                                         "OPAQUE_NETWORK", NULL };

void api_datastore_list(struct api_req *r)
{
    char *ids, *names, *types, *folders, *dcs;
    json_t *rows = NULL;
    int rc;

    if (api_filter_words(r, "types", ds_types) < 0)
        return;
    ids = api_filter_json(r, "datastores");
    names = api_filter_json(r, "names");
    types = api_filter_json(r, "types");
    folders = api_filter_json(r, "folders");
    dcs = api_filter_json(r, "datacenters");
    rc = vdb_query_json(api_db(r), &rows,
        "SELECT e.id AS datastore, e.name, d.ds_type AS type, d.free_space, d.capacity"
        " FROM datastore d JOIN entity e ON e.id = d.id WHERE 1"
        IN_FILTER("e.id", 1) IN_FILTER("e.name", 2) IN_FILTER("d.ds_type", 3)
        IN_FILTER("e.parent", 4) IN_FILTER("d.datacenter", 5) " ORDER BY e.rowid",
        "sssss", ids, names, types, folders, dcs);
    free(ids);
    free(names);
    free(types);
    free(folders);
    free(dcs);
    if (rc < 0)
        return api_error_errno(r, rc, "datastores");
    api_reply(r, 200, api_filter_visible(r, rows, "datastore"));
}

void api_datastore_get(struct api_req *r)
{
    json_t *row = NULL;
    int rc = vdb_query_row(api_db(r), &row,
        "SELECT e.name, d.ds_type AS type, json(CASE d.accessible WHEN 1 THEN 'true'"
        " ELSE 'false' END) AS accessible_json, d.free_space,"
        " json(CASE WHEN (SELECT count(*) FROM host_datastore hd WHERE hd.datastore = d.id) > 1"
        " THEN 'true' ELSE 'false' END) AS multiple_host_access_json,"
        " json(CASE d.thin_provisioning WHEN 1 THEN 'true' ELSE 'false' END)"
        " AS thin_provisioning_supported_json"
        " FROM datastore d JOIN entity e ON e.id = d.id WHERE d.id = ?", "s",
        api_param(r, "datastore"));

    if (rc == -ENOENT)
        return api_error(r, 404, "NOT_FOUND", "datastore %s not found",
                         api_param(r, "datastore"));
    if (rc < 0)
        return api_error_errno(r, rc, "datastore");
    api_reply(r, 200, row);
}

void api_network_list(struct api_req *r)
{
    char *ids, *names, *types, *folders, *dcs;
    json_t *rows = NULL;
    int rc;

    if (api_filter_words(r, "types", net_types) < 0)
        return;
    ids = api_filter_json(r, "networks");
    names = api_filter_json(r, "names");
    types = api_filter_json(r, "types");
    folders = api_filter_json(r, "folders");
    dcs = api_filter_json(r, "datacenters");
    rc = vdb_query_json(api_db(r), &rows,
        "SELECT e.id AS network, e.name, n.net_type AS type FROM network n"
        " JOIN entity e ON e.id = n.id WHERE 1"
        IN_FILTER("e.id", 1) IN_FILTER("e.name", 2) IN_FILTER("n.net_type", 3)
        IN_FILTER("e.parent", 4) IN_FILTER("n.datacenter", 5) " ORDER BY e.rowid",
        "sssss", ids, names, types, folders, dcs);
    free(ids);
    free(names);
    free(types);
    free(folders);
    free(dcs);
    if (rc < 0)
        return api_error_errno(r, rc, "networks");
    api_reply(r, 200, api_filter_visible(r, rows, "network"));
}
