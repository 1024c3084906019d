/* vm console read|send: a VM's serial console through vpxd
 * (/api/kvc/vm/{vm}/console). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"

static const struct kvc_field console_fields[] = {
    { "Output", KVC_F_STRING },
    { "Next Offset", KVC_F_INT },
    { "Total", KVC_F_INT },
    { NULL },
};
const struct kvc_shape kvc_shape_vm_console_read = { "VmConsoleOutput", console_fields,
                                                     KVC_LIST_BLOCKS, NULL };

static const struct kvc_field sent_fields[] = {
    { "Accepted", KVC_F_INT },
    { NULL },
};
const struct kvc_shape kvc_shape_vm_console_send = { "VmConsoleInput", sent_fields,
                                                     KVC_LIST_BLOCKS, NULL };

static int
console_path(const struct kvc_args *a, char *path, size_t len, char *err, size_t errlen)
{
    const char *id = kvc_arg_str(a, "vm");
    if (!kvc_ns_valid_id(id)) {
        snprintf(err, errlen, "While processing '--vm'. '%s' is not a VM id (vm-42).", id);
        return -EINVAL;
    }
    snprintf(path, len, "/api/kvc/vm/%s/console", id);
    return 0;
}

/* GET .../console?offset=N -> Output (what the guest printed from N on),
 * Next Offset (pass it as --offset to read on), Total. */
int
kvc_run_vm_console_read(struct kvc_ctx *ctx, const struct kvc_args *a, json_t **res, char *err,
                        size_t errlen)
{
    char path[160], q[200];
    json_t *r = NULL;
    int rc = console_path(a, path, sizeof path, err, errlen);

    if (rc)
        return rc;
    snprintf(q, sizeof q, "%s?offset=%lld", path, (long long)kvc_arg_int(a, "offset", 0));
    if ((rc = kvc_ctx_request(ctx, "GET", q, NULL, &r, err, errlen)))
        return rc;
    json_t *data = json_object_get(r, "data");
    if (!json_is_string(data)) {
        json_decref(r);
        snprintf(err, errlen, "the server's console reply has no output");
        return -EPROTO;
    }
    *res = json_pack("{s:O, s:O, s:O}", "Output", data, "NextOffset",
                     json_object_get(r, "offset"), "Total", json_object_get(r, "total"));
    json_decref(r);
    return *res ? 0 : -ENOMEM;
}

/* POST .../console {data}: the text and a newline (unless --no-newline). */
int
kvc_run_vm_console_send(struct kvc_ctx *ctx, const struct kvc_args *a, json_t **res, char *err,
                        size_t errlen)
{
    char path[160], buf[4100];
    const char *text = kvc_arg_str(a, "data");
    json_t *r = NULL;
    int rc = console_path(a, path, sizeof path, err, errlen);

    if (rc)
        return rc;
    if (!text || strlen(text) > 4000) {
        snprintf(err, errlen, "While processing '--data'. The text must be 1 to 4000 bytes.");
        return -EINVAL;
    }
    snprintf(buf, sizeof buf, "%s%s", text, kvc_arg_bool(a, "no-newline", false) ? "" : "\n");
    json_t *body = json_pack("{s:s}", "data", buf);
    rc = kvc_ctx_request(ctx, "POST", path, body, &r, err, errlen);
    json_decref(body);
    if (rc)
        return rc;
    *res = json_pack("{s:O}", "Accepted", json_object_get(r, "accepted"));
    json_decref(r);
    return *res ? 0 : -ENOMEM;
}
