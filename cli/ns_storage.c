/* kvcli `storage` namespace: the datastores vpxd knows
 * (GET /api/vcenter/datastore), in esxcli's `storage filesystem list`
 * shape. */
#include "commands.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const struct kvc_field fs_fields[] = {
    { "Mount Point", KVC_F_STRING },
    { "Volume Name", KVC_F_STRING },
    { "UUID", KVC_F_STRING },
    { "Mounted", KVC_F_BOOL },
    { "Type", KVC_F_STRING },
    { "Size", KVC_F_INT },
    { "Free", KVC_F_INT },
    { NULL },
};
const struct kvc_shape kvc_shape_storage_filesystem_list = {
    "FilesystemVolume", fs_fields, KVC_LIST_TABLE, NULL,
};

/* Mounted is the datastore's "accessible".  Mount Point is where ESXi mounts volumes (/vmfs/volumes/<UUID>); the
 * UUID is the datastore's id, the one thing every host names it by. */
int
kvc_run_storage_filesystem_list(struct kvc_ctx *ctx, const struct kvc_args *a, json_t **res,
                                char *err, size_t errlen)
{
    json_t *r = NULL;
    size_t i;
    json_t *d;
    (void)a;
    int rc = kvc_ctx_request(ctx, "GET", "/api/vcenter/datastore", NULL, &r, err, errlen);
    if (rc)
        return rc;
    if (!json_is_array(r)) {
        json_decref(r);
        snprintf(err, errlen, "the server's datastore list is not an array");
        return -EPROTO;
    }
    json_t *out = json_array();
    json_array_foreach(r, i, d) {
        const char *id = json_string_value(json_object_get(d, "datastore"));
        bool mounted = true;
        if (id && kvc_ns_valid_id(id)) {
            char path[128];
            json_t *det = NULL;
            char e2[256];
            snprintf(path, sizeof path, "/api/vcenter/datastore/%s", id);
            if (kvc_ctx_request(ctx, "GET", path, NULL, &det, e2, sizeof e2) == 0
                && json_is_boolean(json_object_get(det, "accessible")))
                mounted = json_is_true(json_object_get(det, "accessible"));
            json_decref(det);
        }
        json_array_append_new(out, json_pack("{s:s+, s:O?, s:s, s:b, s:O?, s:I, s:I}",
            "MountPoint", "/vmfs/volumes/", id ? id : "",
            "VolumeName", json_object_get(d, "name"), "UUID", id ? id : "",
            "Mounted", mounted, "Type", json_object_get(d, "type"),
            "Size", (json_int_t)json_integer_value(json_object_get(d, "capacity")),
            "Free", (json_int_t)json_integer_value(json_object_get(d, "free_space"))));
    }
    json_decref(r);
    *res = out;
    return 0;
}
