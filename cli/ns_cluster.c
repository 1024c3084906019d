/* kvcli `cluster` namespace (GET /api/vcenter/cluster). */
#include "commands.h"

#include <errno.h>
#include <stdio.h>

static const struct kvc_field cluster_fields[] = {
    { "Name", KVC_F_STRING },
    { "Cluster ID", KVC_F_STRING },
    { "HA Enabled", KVC_F_BOOL },
    { "DRS Enabled", KVC_F_BOOL },
    { NULL },
};
const struct kvc_shape kvc_shape_cluster_list = {
    "Cluster", cluster_fields, KVC_LIST_TABLE, NULL,
};

int
kvc_run_cluster_list(struct kvc_ctx *ctx, const struct kvc_args *a, json_t **res, char *err,
                     size_t errlen)
{
    json_t *r = NULL;
    size_t i;
    json_t *c;
    (void)a;
    int rc = kvc_ctx_request(ctx, "GET", "/api/vcenter/cluster", NULL, &r, err, errlen);
    if (rc)
        return rc;
    if (!json_is_array(r)) {
        json_decref(r);
        snprintf(err, errlen, "the server's cluster list is not an array");
        return -EPROTO;
    }
    json_t *out = json_array();
    json_array_foreach(r, i, c) {
        json_array_append_new(out, json_pack("{s:O?, s:O?, s:b, s:b}",
            "Name", json_object_get(c, "name"), "ClusterID", json_object_get(c, "cluster"),
            "HAEnabled", json_is_true(json_object_get(c, "ha_enabled")),
            "DRSEnabled", json_is_true(json_object_get(c, "drs_enabled"))));
    }
    json_decref(r);
    *res = out;
    return 0;
}
