/* kvc_ctx_request: API calls with errors turned into messages. */
#include "ctx.h"

#include <errno.h>
#include <stdio.h>

#include "jsonutil.h"

int
kvc_ctx_request(struct kvc_ctx *ctx, const char *method, const char *path,
                const json_t *body, json_t **reply, char *err, size_t errlen)
{
    long status = 0;
    json_t *r = NULL;
    *reply = NULL;
    int rc = ctx->call(ctx, method, path, body, &status, &r, err, errlen);
    if (rc)
        return rc;
    if (status < 200 || status > 299) {
        const char *m = kvc_json_api_error_message(r);
        if (m)
            snprintf(err, errlen, "%s", m);
        else
            snprintf(err, errlen, "%s %s: HTTP %ld", method, path, status);
        json_decref(r);
        return status == 404 ? -ENOENT : status == 401 || status == 403 ? -EACCES
                                                                         : -EIO;
    }
    if (json_is_object(r) && json_object_size(r) == 1 && json_object_get(r, "value")) {
        json_t *v = json_incref(json_object_get(r, "value"));
        json_decref(r);
        r = v;
    }
    *reply = r;
    return 0;
}
