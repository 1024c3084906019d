/* kvcli `event` namespace (GET /api/kvc/events: oldest first after a
 * sequence number). */
#include "commands.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const struct kvc_field event_fields[] = {
    { "Seq", KVC_F_INT },
    { "Time", KVC_F_STRING },
    { "Severity", KVC_F_STRING },
    { "Type", KVC_F_STRING },
    { "Object", KVC_F_STRING },
    { "User", KVC_F_STRING },
    { "Message", KVC_F_STRING },
    { NULL },
};
const struct kvc_shape kvc_shape_event_list = { "Event", event_fields, KVC_LIST_TABLE, NULL };

int
kvc_run_event_list(struct kvc_ctx *ctx, const struct kvc_args *a, json_t **res, char *err,
                   size_t errlen)
{
    char path[512];
    const char *obj = kvc_arg_str(a, "object"), *type = kvc_arg_str(a, "type");
    if (obj && !kvc_ns_valid_id(obj)) {
        snprintf(err, errlen, "While processing '--object'. '%s' is not an inventory id "
                 "(vm-42, host-28).", obj);
        return -EINVAL;
    }
    if (type && !kvc_ns_valid_id(type)) {
        snprintf(err, errlen, "While processing '--type'. '%s' is not an event type "
                 "(VmCreatedEvent).", type);
        return -EINVAL;
    }
    snprintf(path, sizeof path, "/api/kvc/events?since=%lld&limit=%lld%s%s%s%s",
             (long long)kvc_arg_int(a, "since", 0), (long long)kvc_arg_int(a, "limit", 1000),
             obj ? "&object=" : "", obj ? obj : "", type ? "&type=" : "", type ? type : "");
    json_t *r = NULL;
    int rc = kvc_ctx_request(ctx, "GET", path, NULL, &r, err, errlen);
    if (rc)
        return rc;
    if (!json_is_array(r)) {
        json_decref(r);
        snprintf(err, errlen, "the server's event list is not an array");
        return -EPROTO;
    }
    static const char *const map[][2] = {
        { "Seq", "seq" }, { "Time", "time" }, { "Severity", "severity" }, { "Type", "type" },
        { "Object", "object" }, { "User", "user" }, { "Message", "message" },
    };
    json_t *out = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(r, i, e) {
        json_t *o = json_object();
        for (size_t k = 0; k < sizeof map / sizeof map[0]; k++) {
            json_t *v = json_object_get(e, map[k][1]);
            if (v && !json_is_null(v))
                json_object_set(o, map[k][0], v);
        }
        json_array_append_new(out, o);
    }
    json_decref(r);
    *res = out;
    return 0;
}
