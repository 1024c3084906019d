/* kvcli `system` namespace. */
#include "commands.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const struct kvc_field version_fields[] = {
    { "Product", KVC_F_STRING },
    { "Version", KVC_F_STRING },
    { "Build", KVC_F_STRING },
    { "Update", KVC_F_STRING },
    { "Patch", KVC_F_STRING },
    { NULL },
};
const struct kvc_shape kvc_shape_version_get = { "VersionGet", version_fields };

/* GET /api/appliance/system/version (the Automation API's version
 * resource): {"product", "version", "build", ...}. */
int
kvc_run_system_version_get(struct kvc_ctx *ctx, const struct kvc_args *a,
                           json_t **res, char *err, size_t errlen)
{
    json_t *r = NULL;
    int rc = kvc_ctx_request(ctx, "GET", "/api/appliance/system/version", NULL,
                             &r, err, errlen);
    if (rc)
        return rc;
    if (!json_is_object(r)) {
        json_decref(r);
        snprintf(err, errlen, "the server's version reply is not an object");
        return -EPROTO;
    }
    static const char *const map[][2] = {
        { "Product", "product" }, { "Version", "version" }, { "Build", "build" },
        { "Update", "update" }, { "Patch", "patch" },
    };
    json_t *out = json_object();
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        json_t *v = json_object_get(r, map[i][1]);
        if (json_is_integer(v))
            json_object_set_new(out, map[i][0],
                                json_sprintf("%lld", (long long)json_integer_value(v)));
        else if (json_is_string(v))
            json_object_set(out, map[i][0], v);
    }
    json_decref(r);
    *res = out;
    return 0;
}

static const struct kvc_field hostname_fields[] = {
    { "Host Name", KVC_F_STRING },
    { NULL },
};
const struct kvc_shape kvc_shape_hostname_get = { "HostnameGet", hostname_fields };

/* GET /api/appliance/networking/dns/hostname: the name as a JSON string. */
int
kvc_run_system_hostname_get(struct kvc_ctx *ctx, const struct kvc_args *a,
                            json_t **res, char *err, size_t errlen)
{
    json_t *r = NULL;
    (void)a;
    int rc = kvc_ctx_request(ctx, "GET", "/api/appliance/networking/dns/hostname", NULL,
                             &r, err, errlen);
    if (rc)
        return rc;
    if (!json_is_string(r)) {
        json_decref(r);
        snprintf(err, errlen, "the server's host name reply is not a string");
        return -EPROTO;
    }
    *res = json_pack("{s:O}", "HostName", r);
    json_decref(r);
    return 0;
}
