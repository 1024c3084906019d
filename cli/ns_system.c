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

/* ---- system maintenanceMode (vpxd: a host's maintenance mode) ---- */

static const struct kvc_field maint_fields[] = {
    { "Maintenance Mode", KVC_F_STRING },
    { NULL },
};
const struct kvc_shape kvc_shape_maintenance_get = { "MaintenanceModeGet", maint_fields };

/* GET /api/kvc/host/{host} -> in_maintenance; esxcli says Enabled/Disabled. */
int
kvc_run_system_maintenance_get(struct kvc_ctx *ctx, const struct kvc_args *a, json_t **res,
                               char *err, size_t errlen)
{
    json_t *h = NULL;
    int rc = kvc_ns_host_get(ctx, a, &h, err, errlen);
    if (rc)
        return rc;
    *res = json_pack("{s:s}", "MaintenanceMode",
                     json_is_true(json_object_get(h, "in_maintenance")) ? "Enabled" : "Disabled");
    json_decref(h);
    return 0;
}

/* POST /api/kvc/host/{host}?action=enter-maintenance|exit-maintenance: waits
 * until the host's running VMs moved away (enter) and prints nothing. */
int
kvc_run_system_maintenance_set(struct kvc_ctx *ctx, const struct kvc_args *a, json_t **res,
                               char *err, size_t errlen)
{
    const char *id = kvc_arg_str(a, "host");
    char path[160];
    json_t *r = NULL;
    if (!kvc_ns_valid_id(id)) {
        snprintf(err, errlen, "While processing '--host'. '%s' is not a host id (host-28).", id);
        return -EINVAL;
    }
    snprintf(path, sizeof path, "/api/kvc/host/%s?action=%s", id,
             kvc_arg_bool(a, "enable", false) ? "enter-maintenance" : "exit-maintenance");
    int rc = kvc_ctx_request(ctx, "POST", path, NULL, &r, err, errlen);
    json_decref(r);
    *res = NULL;
    return rc;
}
