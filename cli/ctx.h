/* What a command's run() gets: a way to reach the API.  kvcli fills it with
 * its REST session; hostd's SSH shell with its own transport. */
#ifndef KVC_CLI_CTX_H
#define KVC_CLI_CTX_H

#include <jansson.h>
#include <stddef.h>

struct kvc_ctx {
    /* METHOD PATH [BODY] -> HTTP status and decoded reply (NULL if empty).
     * 0, or -errno with ERR set for transport errors. */
    int (*call)(struct kvc_ctx *, const char *method, const char *path,
                const json_t *body, long *status, json_t **reply,
                char *err, size_t errlen);
    void *priv;
};

/* CALL, treating any status but 2xx as an error whose message is the API
 * error's default_message (or "HTTP 404").  Unwraps {"value": ...} replies
 * of /rest-style servers.  0 with *REPLY (may be NULL), or -errno. */
int kvc_ctx_request(struct kvc_ctx *, const char *method, const char *path,
                    const json_t *body, json_t **reply, char *err, size_t errlen);

#endif
