/* kvcli `host` namespace: the hosts vpxd manages (GET/POST/DELETE
 * /api/vcenter/host). */
#include "commands.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct kvc_field host_fields[] = {
    { "Name", KVC_F_STRING },
    { "Host ID", KVC_F_STRING },
    { "Connection State", KVC_F_STRING },
    { "Power State", KVC_F_STRING },
    { NULL },
};
const struct kvc_shape kvc_shape_host_list = { "Host", host_fields, KVC_LIST_TABLE, NULL };

static const struct kvc_field added_fields[] = {
    { "Host ID", KVC_F_STRING },
    { NULL },
};
const struct kvc_shape kvc_shape_host_add = { "HostAdd", added_fields, KVC_LIST_TABLE, NULL };

/* An inventory id as the API names them ("host-28", "domain-c7"): only
 * these characters ever go into a request path. */
bool
kvc_ns_valid_id(const char *s)
{
    if (!s || !*s || strlen(s) > 64)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')
              || *s == '-' || *s == '_' || *s == '.'))
            return false;
    return true;
}

int
kvc_run_host_list(struct kvc_ctx *ctx, const struct kvc_args *a, json_t **res, char *err,
                  size_t errlen)
{
    json_t *r = NULL;
    size_t i;
    json_t *h;
    (void)a;
    int rc = kvc_ctx_request(ctx, "GET", "/api/vcenter/host", NULL, &r, err, errlen);
    if (rc)
        return rc;
    if (!json_is_array(r)) {
        json_decref(r);
        snprintf(err, errlen, "the server's host list is not an array");
        return -EPROTO;
    }
    json_t *out = json_array();
    json_array_foreach(r, i, h) {
        json_array_append_new(out, json_pack("{s:O?, s:O?, s:O?, s:O?}",
            "Name", json_object_get(h, "name"), "HostID", json_object_get(h, "host"),
            "ConnectionState", json_object_get(h, "connection_state"),
            "PowerState", json_object_get(h, "power_state")));
    }
    json_decref(r);
    *res = out;
    return 0;
}

/* POST /api/vcenter/host with thumbprint verification: without
 * --thumbprint vpxd answers with the host's thumbprint, which is printed
 * for the user to check and pass. */
int
kvc_run_host_add(struct kvc_ctx *ctx, const struct kvc_args *a, json_t **res, char *err,
                 size_t errlen)
{
    const char *folder = kvc_arg_str(a, "folder");
    if (folder && !kvc_ns_valid_id(folder)) {
        snprintf(err, errlen, "While processing '--folder'. '%s' is not a folder or "
                 "cluster id (group-h4, domain-c7).", folder);
        return -EINVAL;
    }
    json_t *body = json_pack("{s:s, s:I, s:s, s:s, s:s}",
        "hostname", kvc_arg_str(a, "hostname"),
        "port", (json_int_t)kvc_arg_int(a, "port", 902),
        "user_name", kvc_arg_str(a, "username") ? kvc_arg_str(a, "username") : "root",
        "password", kvc_arg_str(a, "password") ? kvc_arg_str(a, "password") : "",
        "thumbprint_verification", "THUMBPRINT");
    if (folder)
        json_object_set_new(body, "folder", json_string(folder));
    if (kvc_arg_str(a, "thumbprint"))
        json_object_set_new(body, "thumbprint", json_string(kvc_arg_str(a, "thumbprint")));
    json_t *r = NULL;
    int rc = kvc_ctx_request(ctx, "POST", "/api/vcenter/host", body, &r, err, errlen);
    json_decref(body);
    if (rc)
        return rc;
    if (!json_is_string(r)) {
        json_decref(r);
        snprintf(err, errlen, "the server's reply to host add is not a host id");
        return -EPROTO;
    }
    *res = json_pack("{s:o}", "HostID", r);
    return 0;
}

int
kvc_run_host_remove(struct kvc_ctx *ctx, const struct kvc_args *a, json_t **res, char *err,
                    size_t errlen)
{
    const char *id = kvc_arg_str(a, "host");
    char path[128];
    json_t *r = NULL;
    if (!kvc_ns_valid_id(id)) {
        snprintf(err, errlen, "While processing '--host'. '%s' is not a host id (host-28).", id);
        return -EINVAL;
    }
    snprintf(path, sizeof path, "/api/vcenter/host/%s", id);
    int rc = kvc_ctx_request(ctx, "DELETE", path, NULL, &r, err, errlen);
    json_decref(r);
    *res = NULL;
    return rc;
}
