/* Helpers shared by the resource files (see internal.h). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vpxd/api/api.h"
#include "vpxd/api/internal.h"
#include "vpxd/db.h"

void api_host_error(struct api_req *r, int err, const char *msg)
{
    const char *m = msg ? msg : strerror(-err);

    switch (err) {
    case -ENOENT:
        api_error(r, 404, "NOT_FOUND", "%s", m);
        break;
    case -ENOTCONN:
        api_error(r, 503, "SERVICE_UNAVAILABLE", "host not connected: %s", m);
        break;
    case -EEXIST:
        api_error(r, 400, "ALREADY_EXISTS", "%s", m);
        break;
    case -EALREADY:
        api_error(r, 400, "ALREADY_IN_DESIRED_STATE", "%s", m);
        break;
    case -EBUSY:
        api_error(r, 400, "NOT_ALLOWED_IN_CURRENT_STATE", "%s", m);
        break;
    case -EPERM:
        api_error(r, 400, "INVALID_ARGUMENT", "%s", m);
        break;
    case -EINVAL:
        api_error(r, 400, "INVALID_ARGUMENT", "%s", m);
        break;
    case -ENOSPC:
        api_error(r, 500, "UNABLE_TO_ALLOCATE_RESOURCE", "%s", m);
        break;
    case -ETIMEDOUT:
        api_error(r, 500, "TIMED_OUT", "the host did not answer in time: %s", m);
        break;
    case -ECONNREFUSED:
    case -EHOSTUNREACH:
    case -ENETUNREACH:
        api_error(r, 503, "SERVICE_UNAVAILABLE", "cannot reach the host: %s", m);
        break;
    case -ENOSYS:
        api_error(r, 503, "SERVICE_UNAVAILABLE", "host operations are not available: %s", m);
        break;
    case -ECANCELED:
        api_error(r, 503, "SERVICE_UNAVAILABLE", "vpxd is stopping: %s", m);
        break;
    default:
        api_error(r, 500, "ERROR", "host operation failed: %s", m);
    }
}

int api_need_host(struct api_req *r, const char *host)
{
    struct vpxd *vx = api_vpxd(r);
    char state[32] = "";

    if (!vx->hm) {
        api_error(r, 503, "SERVICE_UNAVAILABLE", "%s",
                  vx->hm_error ? vx->hm_error : "host connections are not available");
        return -1;
    }
    if (!host || !*host) {
        api_error(r, 503, "SERVICE_UNAVAILABLE", "the VM is not registered on any host");
        return -1;
    }
    vdb_query_str(api_db(r), state, sizeof(state),
                  "SELECT connection_state FROM host WHERE id = ?", "s", host);
    if (strcmp(state, "CONNECTED")) {
        json_t *args = json_pack("[s]", host);
        api_error_args(r, 503, "SERVICE_UNAVAILABLE", args, "host %s is not connected (%s)",
                       host, *state ? state : "unknown");
        return -1;
    }
    return 0;
}

char *api_filter_json(struct api_req *r, const char *name)
{
    json_t *l = api_query_list(r, name);

    if (!json_array_size(l))
        return NULL;
    return json_dumps(l, JSON_COMPACT);
}

int api_filter_words(struct api_req *r, const char *name, const char *const *words)
{
    json_t *l = api_query_list(r, name);
    size_t i;
    json_t *v;

    json_array_foreach(l, i, v) {
        bool ok = false;
        for (size_t k = 0; words[k] && !ok; k++)
            ok = !strcmp(words[k], json_string_value(v));
        if (!ok) {
            json_t *args = json_pack("[s,s]", name, json_string_value(v));
            api_error_args(r, 400, "INVALID_ARGUMENT", args, "bad value '%.64s' for filter %s",
                           json_string_value(v), name);
            return -1;
        }
    }
    return 0;
}

static size_t norm_thumb(const char *s, char out[65])
{
    size_t n = 0;

    for (; *s && n < 64; s++) {
        if (*s == ':')
            continue;
        out[n++] = (char)(*s >= 'a' && *s <= 'f' ? *s - 'a' + 'A' : *s);
    }
    out[n] = '\0';
    return *s ? 65 : n;
}

bool api_thumbprint_equal(const char *a, const char *b)
{
    char x[65], y[65];

    if (!a || !b || norm_thumb(a, x) != 64 || norm_thumb(b, y) != 64)
        return false;
    return !strcmp(x, y);
}
