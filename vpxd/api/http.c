/* The HTTPS server: libmicrohttpd driven by vpxd's libevent loop (MHD's
 * epoll fd is one libevent event; no extra threads), request bodies bounded
 * before they are buffered, routing by the one route table, session
 * authentication, privilege checks, audit records, vmw-task=true, and
 * server-sent event streams. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/event.h>
#include <microhttpd.h>

#include "lib/log.h"
#include "vpxd/api/api.h"
#include "vpxd/api/internal.h"
#include "vpxd/auth.h"
#include "vpxd/db.h"

KVC_LOG_MODULE(http);

#define MAX_PARAMS 4
#define MAX_HDRS 4
#define SSE_KEEPALIVE_S 15

struct api_server {
    struct vpxd *vx;
    struct MHD_Daemon *d;
    struct event *ev, *timer, *housekeeping;
    struct api_metrics m;
    struct api_req *streams;    /* event-stream requests */
    struct api_req *held;       /* requests waiting for a host or a task */
    int64_t last_event;
    bool stopping;
};

struct api_req {
    struct api_server *srv;
    struct MHD_Connection *conn;    /* NULL once MHD is done with it */
    int refs;
    char method[16];
    char *url;
    char remote[64];
    char *body;
    size_t len, cap;
    bool too_large, dispatched, suspended, held, answered, queued;
    bool in_txn, mutating, rest;
    const struct api_route *route;
    int nparams;
    char pname[MAX_PARAMS][32];
    char *pval[MAX_PARAMS];
    json_t *json, *lists;
    char user[128];
    char token_hash[AUTH_HASH_HEX];
    char object[2 * VDB_ID_MAX];
    char task[VDB_ID_MAX];
    bool want_task;
    /* The answer. */
    int status;
    char *resp;
    size_t resp_len;
    const char *ctype;
    char *hname[MAX_HDRS], *hval[MAX_HDRS];
    int nhdrs;
    char result[48];            /* "ok" or the error type, for the audit */
    struct api_req *next_held;  /* api_server.held */
    /* Event stream. */
    bool stream;
    int64_t sse_seq;
    char *sse_buf;
    size_t sse_len, sse_off;
    time_t sse_last;
    struct api_req *next_stream;
};

static void req_unref(struct api_req *r)
{
    if (--r->refs > 0)
        return;
    free(r->url);
    free(r->body);
    for (int i = 0; i < r->nparams; i++)
        free(r->pval[i]);
    json_decref(r->json);
    json_decref(r->lists);
    free(r->resp);
    for (int i = 0; i < r->nhdrs; i++) {
        free(r->hname[i]);
        free(r->hval[i]);
    }
    free(r->sse_buf);
    free(r);
}

/* ---- accessors ---- */

struct vpxd *api_vpxd(const struct api_req *r) { return r->srv->vx; }
struct vdb *api_db(const struct api_req *r) { return r->srv->vx->db; }
const char *api_user(const struct api_req *r) { return r->user; }
const char *api_method(const struct api_req *r) { return r->method; }
const char *api_url(const struct api_req *r) { return r->url; }
json_t *api_body(const struct api_req *r) { return r->json; }
bool api_is_rest(const struct api_req *r) { return r->rest; }
const char *api_remote(const struct api_req *r) { return r->remote; }
const char *api_session_token_hash(const struct api_req *r) { return r->token_hash; }
const char *api_task_id(const struct api_req *r) { return r->task[0] ? r->task : NULL; }

const char *api_param(const struct api_req *r, const char *name)
{
    for (int i = 0; i < r->nparams; i++)
        if (!strcmp(r->pname[i], name))
            return r->pval[i];
    return NULL;
}

const char *api_query(const struct api_req *r, const char *name)
{
    return r->conn ? MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name)
                   : NULL;
}

struct qlist { const char *name; json_t *arr; };

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind,
                                   const char *key, const char *value)
{
    struct qlist *q = cls;

    if (!key || strcmp(key, q->name) || !value)
        return MHD_YES;
    /* "names=a,b" as well as "names=a&names=b". */
    const char *p = value;
    while (*p) {
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        if (n)
            json_array_append_new(q->arr, json_stringn(p, n));
        p += n + (c ? 1 : 0);
    }
    return MHD_YES;
}

json_t *api_query_list(struct api_req *r, const char *name)
{
    struct qlist q = { name, json_array() };

    if (r->conn)
        MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, collect_arg, &q);
    if (!r->lists)
        r->lists = json_array();
    json_array_append_new(r->lists, q.arr);   /* owned by the request */
    return q.arr;
}

void api_set_object(struct api_req *r, const char *id)
{
    snprintf(r->object, sizeof(r->object), "%s", id ? id : "");
}

void api_header(struct api_req *r, const char *name, const char *value)
{
    if (r->nhdrs >= MAX_HDRS)
        return;
    r->hname[r->nhdrs] = strdup(name);
    r->hval[r->nhdrs] = strdup(value);
    r->nhdrs++;
}

/* ---- answers ---- */

static void finish(struct api_req *r);

void api_reply_raw(struct api_req *r, int status, const char *content_type,
                   char *body, size_t len)
{
    if (r->answered) {
        kvc_err("%s %s answered twice", r->method, r->url);
        free(body);
        return;
    }
    r->answered = true;
    r->status = status;
    r->resp = body;
    r->resp_len = len;
    r->ctype = content_type;
    if (status < 400)
        snprintf(r->result, sizeof(r->result), "ok");
    finish(r);
}

void api_reply(struct api_req *r, int status, json_t *body)
{
    char *s = NULL;

    if (r->rest && body) {
        json_t *w = json_object();
        json_object_set_new(w, "value", body);
        body = w;
    }
    if (body) {
        s = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
        json_decref(body);
    }
    api_reply_raw(r, status, "application/json", s, s ? strlen(s) : 0);
}

static json_t *error_body(const char *type, json_t *args, const char *msg)
{
    char id[80];
    size_t i;

    snprintf(id, sizeof(id), "com.vmware.vapi.std.errors.%s", type);
    for (i = strlen("com.vmware.vapi.std.errors."); id[i]; i++)
        id[i] = (char)(id[i] >= 'A' && id[i] <= 'Z' ? id[i] - 'A' + 'a' : id[i]);
    return json_pack("{s:s, s:[{s:o, s:s, s:s}]}", "error_type", type, "messages",
                     "args", args ? args : json_array(), "default_message", msg,
                     "id", id);
}

static void verror(struct api_req *r, int status, const char *type, json_t *args,
                   const char *fmt, va_list ap)
{
    char msg[1024];
    json_t *body;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    body = error_body(type, args, msg);
    snprintf(r->result, sizeof(r->result), "%s", type);
    if (r->rest) {
        /* The /rest shape: {"type": "com.vmware.vapi.std.errors.x", "value": {...}}. */
        json_t *w = json_object();
        json_object_set(w, "type", json_object_get(json_array_get(
            json_object_get(body, "messages"), 0), "id"));
        json_object_set_new(w, "value", body);
        body = w;
        r->rest = false;        /* already wrapped */
    }
    api_reply(r, status, body);
}

void api_error(struct api_req *r, int status, const char *type, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    verror(r, status, type, NULL, fmt, ap);
    va_end(ap);
}

void api_error_args(struct api_req *r, int status, const char *type, json_t *args,
                    const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    verror(r, status, type, args, fmt, ap);
    va_end(ap);
}

void api_error_errno(struct api_req *r, int err, const char *what)
{
    switch (err) {
    case -ENOENT:
        api_error(r, 404, "NOT_FOUND", "%s: not found", what);
        break;
    case -EEXIST:
        api_error(r, 400, "ALREADY_EXISTS", "%s: an object with that name already exists", what);
        break;
    case -ENOTEMPTY:
        api_error(r, 400, "RESOURCE_IN_USE", "%s: the object still holds other objects", what);
        break;
    case -EINVAL:
        api_error(r, 400, "INVALID_ARGUMENT", "%s: invalid argument", what);
        break;
    case -EPERM:
        api_error(r, 400, "NOT_ALLOWED_IN_CURRENT_STATE", "%s: not allowed for this object", what);
        break;
    case -EBUSY:
        api_error(r, 503, "SERVICE_UNAVAILABLE", "%s: the database is busy, retry", what);
        break;
    default:
        api_error(r, 500, "ERROR", "%s: internal error (%s)", what, strerror(-err));
    }
}

/* ---- field access ---- */

static int bad_field(struct api_req *r, const char *key, const char *want)
{
    json_t *args = json_pack("[s]", key);
    api_error_args(r, 400, "INVALID_ARGUMENT", args, "field '%s' %s", key, want);
    return -1;
}

int api_body_object(struct api_req *r, const char *const *fields)
{
    const char *key;
    json_t *v;

    if (!json_is_object(r->json)) {
        api_error(r, 400, "INVALID_ARGUMENT", "the request body must be a JSON object");
        return -1;
    }
    json_object_foreach(r->json, key, v) {
        bool known = false;
        for (size_t i = 0; fields && fields[i] && !known; i++)
            known = !strcmp(fields[i], key);
        if (!known) {
            json_t *args = json_pack("[s]", key);
            api_error_args(r, 400, "INVALID_ARGUMENT", args,
                           "unknown field '%s' in the request body", key);
            return -1;
        }
    }
    return 0;
}

int api_field_str(struct api_req *r, json_t *obj, const char *key, bool required,
                  const char **out)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL;

    *out = NULL;
    if (!v || json_is_null(v))
        return required ? bad_field(r, key, "is required") : 0;
    if (!json_is_string(v))
        return bad_field(r, key, "must be a string");
    if (json_string_length(v) > 1024 || strlen(json_string_value(v)) != json_string_length(v))
        return bad_field(r, key, "must be a string of at most 1024 characters without NUL");
    *out = json_string_value(v);
    return 0;
}

int api_field_int(struct api_req *r, json_t *obj, const char *key, bool required,
                  int64_t min, int64_t max, int64_t *out)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    char want[96];

    if (!v || json_is_null(v))
        return required ? bad_field(r, key, "is required") : 0;
    if (!json_is_integer(v))
        return bad_field(r, key, "must be an integer");
    if (json_integer_value(v) < min || json_integer_value(v) > max) {
        snprintf(want, sizeof(want), "must be between %lld and %lld",
                 (long long)min, (long long)max);
        return bad_field(r, key, want);
    }
    *out = json_integer_value(v);
    return 0;
}

int api_field_bool(struct api_req *r, json_t *obj, const char *key, bool required,
                   bool *out)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL;

    if (!v || json_is_null(v))
        return required ? bad_field(r, key, "is required") : 0;
    if (!json_is_boolean(v))
        return bad_field(r, key, "must be true or false");
    *out = json_is_true(v);
    return 0;
}

int api_field_obj(struct api_req *r, json_t *obj, const char *key, json_t **out)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL;

    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_object(v))
        return bad_field(r, key, "must be an object");
    *out = v;
    return 0;
}

int api_field_enum(struct api_req *r, json_t *obj, const char *key, bool required,
                   const char *const *words, const char **out)
{
    char want[512];
    size_t n = 0;

    if (api_field_str(r, obj, key, required, out) < 0)
        return -1;
    if (!*out)
        return 0;
    for (size_t i = 0; words[i]; i++)
        if (!strcmp(words[i], *out))
            return 0;
    n = (size_t)snprintf(want, sizeof(want), "must be one of");
    for (size_t i = 0; words[i] && n < sizeof(want); i++)
        n += (size_t)snprintf(want + n, sizeof(want) - n, "%s %s", i ? "," : "", words[i]);
    *out = NULL;
    return bad_field(r, key, want);
}

/* ---- privileges ---- */

bool api_can(struct api_req *r, const char *priv, const char *entity)
{
    return auth_check(r->srv->vx->auth, r->user, priv, entity);
}

int api_require(struct api_req *r, const char *priv, const char *entity)
{
    if (api_can(r, priv, entity))
        return 0;
    json_t *args = json_pack("[s,s]", priv, entity ? entity : VDB_ROOT_FOLDER);
    api_error_args(r, 403, "UNAUTHORIZED", args,
                   "user %s lacks privilege %s on %s", r->user, priv,
                   entity ? entity : VDB_ROOT_FOLDER);
    return -1;
}

json_t *api_filter_visible(struct api_req *r, json_t *arr, const char *key)
{
    json_t *out = json_array();
    size_t i;
    json_t *v;

    json_array_foreach(arr, i, v) {
        const char *id = json_string_value(json_object_get(v, key));
        if (id && api_can(r, "System.View", id))
            json_array_append(out, v);
    }
    json_decref(arr);
    return out;
}

/* ---- holding, tasks, completion ---- */

void api_hold(struct api_req *r)
{
    if (!r->held) {
        r->next_held = r->srv->held;
        r->srv->held = r;
    }
    r->held = true;
    r->refs++;
    if (r->want_task && !r->task[0]) {
        const char *op = r->route->action ? r->route->action
                       : !strcmp(r->method, "POST") ? "create"
                       : !strcmp(r->method, "DELETE") ? "delete" : "update";
        char service[128];
        const char *p = r->route->path + strlen("/api/");
        size_t n = 0;

        /* "/api/vcenter/vm/{vm}/power" -> "com.vmware.vcenter.vm.power" */
        n = (size_t)snprintf(service, sizeof(service), "com.vmware.");
        for (; *p && n + 1 < sizeof(service); p++) {
            if (*p == '{') {
                while (*p && *p != '}')
                    p++;
                if (p[1] == '/')
                    p++;
                continue;
            }
            service[n++] = *p == '/' ? '.' : *p == '-' ? '_' : *p;
        }
        while (n && service[n - 1] == '.')
            n--;
        service[n] = '\0';
        const char *target = r->object[0] ? r->object : NULL;
        if (vdb_task_create(r->srv->vx->db, service, op, target ? "" : NULL, target,
                            r->user, r->task) == 0)
            vdb_task_progress(r->srv->vx->db, r->task, "RUNNING", 0, "started");
        else
            r->task[0] = '\0';
    }
}

void api_task_progress(struct api_req *r, int completed, const char *message)
{
    if (r->task[0])
        vdb_task_progress(r->srv->vx->db, r->task, "RUNNING", completed, message);
}

static void audit(struct api_req *r)
{
    char action[300];
    const char *act = r->route ? r->route->action : NULL;

    snprintf(action, sizeof(action), "%s %s%s%s", r->method, r->url,
             act ? "?action=" : "", act ? act : "");
    vdb_audit(r->srv->vx->db, r->user, r->remote, action,
              r->object[0] ? r->object : NULL, r->result[0] ? r->result : "ok", r->status);
}

static void queue_answer(struct api_req *r)
{
    struct MHD_Response *resp;

    if (!r->conn || r->queued)
        return;
    r->queued = true;
    resp = MHD_create_response_from_buffer(r->resp_len, r->resp ? r->resp : (char *)"",
                                           MHD_RESPMEM_MUST_COPY);
    if (r->ctype && r->resp_len)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->ctype);
    for (int i = 0; i < r->nhdrs; i++)
        MHD_add_response_header(resp, r->hname[i], r->hval[i]);
    if (r->too_large)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    MHD_queue_response(r->conn, (unsigned int)r->status, resp);
    MHD_destroy_response(resp);
    r->srv->m.requests++;
    r->srv->m.by_class[r->status / 100 < 6 ? r->status / 100 : 5]++;
}

static void kick(struct api_server *s)
{
    event_active(s->timer, EV_TIMEOUT, 0);
}

/* Called once per request when the answer is known. */
static void finish(struct api_req *r)
{
    struct vdb *db = r->srv->vx->db;

    if (r->mutating)
        audit(r);
    if (r->in_txn) {
        r->in_txn = false;
        vdb_finish(db, 0);
    }
    if (r->held && r->task[0]) {
        /* The client already has the task id: the answer goes to the task. */
        json_t *body = r->resp ? json_loads(r->resp, JSON_DECODE_ANY, NULL) : NULL;
        if (r->status < 400)
            vdb_task_finish(db, r->task, body, NULL);
        else
            vdb_task_finish(db, r->task, NULL, body ? body : json_string("failed"));
        json_decref(body);
    } else if (r->held && r->suspended && r->conn) {
        r->suspended = false;
        MHD_resume_connection(r->conn);
        kick(r->srv);
    }
    if (r->held) {
        r->held = false;
        for (struct api_req **pp = &r->srv->held; *pp; pp = &(*pp)->next_held)
            if (*pp == r) {
                *pp = r->next_held;
                break;
            }
        req_unref(r);
    }
}

/* ---- event streams ---- */

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct api_req *r = cls;
    struct vdb *db = r->srv->vx->db;

    if (r->srv->stopping)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (r->sse_off >= r->sse_len) {
        json_t *rows = NULL;
        size_t i;
        json_t *e;

        free(r->sse_buf);
        r->sse_buf = NULL;
        r->sse_len = r->sse_off = 0;
        vdb_query_json(db, &rows, "SELECT seq, time, type, severity, object, user_name AS user,"
                       " message FROM event WHERE seq > ? ORDER BY seq LIMIT 50", "I",
                       r->sse_seq);
        size_t cap = 0;
        json_array_foreach(rows, i, e) {
            char *js = json_dumps(e, JSON_COMPACT);
            int64_t seq = json_integer_value(json_object_get(e, "seq"));
            size_t need = strlen(js) + 128;
            if (r->sse_len + need > cap) {
                cap = (r->sse_len + need) * 2;
                r->sse_buf = realloc(r->sse_buf, cap);
            }
            r->sse_len += (size_t)snprintf(r->sse_buf + r->sse_len, cap - r->sse_len,
                                           "id: %lld\nevent: %s\ndata: %s\n\n",
                                           (long long)seq,
                                           json_string_value(json_object_get(e, "type")), js);
            r->sse_seq = seq;
            free(js);
        }
        json_decref(rows);
        if (!r->sse_len && time(NULL) - r->sse_last >= SSE_KEEPALIVE_S) {
            r->sse_buf = strdup(": keepalive\n\n");
            r->sse_len = strlen(r->sse_buf);
        }
        if (!r->sse_len) {
            /* Nothing to send: sleep until an event or the keepalive. */
            r->suspended = true;
            MHD_suspend_connection(r->conn);
            return 0;
        }
    }
    size_t n = r->sse_len - r->sse_off;
    if (n > max)
        n = max;
    memcpy(buf, r->sse_buf + r->sse_off, n);
    r->sse_off += n;
    r->sse_last = time(NULL);
    (void)pos;
    return (ssize_t)n;
}

void api_stream_events(struct api_req *r, int64_t from)
{
    struct MHD_Response *resp;

    r->answered = true;
    r->stream = true;
    r->queued = true;
    r->sse_seq = from;
    r->sse_last = time(NULL);
    r->next_stream = r->srv->streams;
    r->srv->streams = r;
    r->srv->m.sse_clients++;
    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_read, r, NULL);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_queue_response(r->conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
}

static void wake_streams(struct api_server *s)
{
    bool any = false;

    for (struct api_req *r = s->streams; r; r = r->next_stream) {
        if (r->suspended && r->conn) {
            r->suspended = false;
            MHD_resume_connection(r->conn);
            any = true;
        }
    }
    if (any)
        kick(s);
}

void api_events_notify(struct api_server *s, int64_t seq)
{
    if (seq > s->last_event)
        s->last_event = seq;
    wake_streams(s);
}

static void on_db_event(void *arg, int64_t seq)
{
    api_events_notify(arg, seq);
}

/* ---- routing ---- */

/* Matches PATH against PATTERN; fills the request's parameters. */
static bool match_path(const char *pattern, const char *path, struct api_req *r)
{
    int np = 0;
    char names[MAX_PARAMS][32];
    const char *vals[MAX_PARAMS];
    size_t lens[MAX_PARAMS];

    while (*pattern && *path) {
        if (*pattern == '{') {
            const char *end = strchr(pattern, '}');
            const char *seg = path;
            size_t n = strcspn(path, "/");
            if (!end || np >= MAX_PARAMS || n == 0 || n > 200)
                return false;
            snprintf(names[np], sizeof(names[np]), "%.*s", (int)(end - pattern - 1),
                     pattern + 1);
            vals[np] = seg;
            lens[np] = n;
            np++;
            pattern = end + 1;
            path += n;
            continue;
        }
        if (*pattern != *path)
            return false;
        pattern++;
        path++;
    }
    if (*pattern || *path)
        return false;
    if (r) {
        for (int i = 0; i < r->nparams; i++)
            free(r->pval[i]);
        r->nparams = np;
        for (int i = 0; i < np; i++) {
            memcpy(r->pname[i], names[i], sizeof(names[i]));
            r->pval[i] = strndup(vals[i], lens[i]);
        }
    }
    return true;
}

static const char *session_token(struct api_req *r)
{
    const char *t = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                "vmware-api-session-id");
    if (!t)
        t = MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, "vmware-api-session-id");
    return t;
}

static void dispatch(struct api_req *r)
{
    struct vpxd *vx = r->srv->vx;
    const char *action;
    const struct api_route *path_match = NULL, *method_match = NULL, *rt = NULL;
    char allow[64] = "";

    r->rest = !strncmp(r->url, "/rest/", 6);
    if (!strcmp(r->method, "GET") && !strncmp(r->url, "/ui/", 4) && r->url[4]) {
        api_ui_file(r);         /* the dashboard's files (api/ui.c) */
        return;
    }
    action = api_query(r, r->rest ? "~action" : "action");
    for (size_t i = 0; i < api_n_routes; i++) {
        const struct api_route *c = &api_routes[i];
        if (!match_path(c->path, r->url, NULL))
            continue;
        path_match = c;
        if (strcmp(c->method, r->method)) {
            if (!strstr(allow, c->method))
                snprintf(allow + strlen(allow), sizeof(allow) - strlen(allow), "%s%s",
                         allow[0] ? ", " : "", c->method);
            continue;
        }
        method_match = c;
        if ((c->action == NULL) != (action == NULL)
            || (action && strcmp(action, c->action)))
            continue;
        rt = c;
        break;
    }
    if (!path_match) {
        api_error(r, 404, "NOT_FOUND", "no resource at %s", r->url);
        return;
    }
    if (!method_match) {
        api_header(r, MHD_HTTP_HEADER_ALLOW, allow);
        api_error(r, 405, "OPERATION_NOT_FOUND", "%s is not allowed on %s (allowed: %s)",
                  r->method, r->url, allow);
        return;
    }
    if (!rt) {
        if (action)
            api_error(r, 400, "INVALID_ARGUMENT", "unknown action '%.64s' for %s %s",
                      action, r->method, r->url);
        else
            api_error(r, 400, "INVALID_ARGUMENT", "%s %s needs an action= parameter",
                      r->method, r->url);
        return;
    }
    r->route = rt;
    match_path(rt->path, r->url, r);
    r->mutating = strcmp(r->method, "GET") != 0;

    if (rt->auth == API_AUTH_SESSION) {
        const char *tok = session_token(r);
        if (!tok || auth_session(vx->auth, tok, r->user, sizeof(r->user), r->token_hash) < 0) {
            r->mutating = false;
            api_error(r, 401, "UNAUTHENTICATED", tok ? "the session is not valid or has expired"
                      : "this operation requires a session (vmware-api-session-id)");
            return;
        }
    }
    if (r->len) {
        json_error_t jerr;
        r->json = json_loadb(r->body, r->len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
        if (!r->json) {
            r->srv->m.bad_json++;
            api_error(r, 400, "INVALID_ARGUMENT",
                      "malformed JSON in the request body at line %d column %d: %s",
                      jerr.line, jerr.column, jerr.text);
            return;
        }
    }
    if (r->mutating && rt->auth == API_AUTH_SESSION) {
        if (vdb_begin(vx->db) == 0)
            r->in_txn = true;
    }
    if (rt->privilege) {
        const char *obj = r->nparams ? r->pval[r->nparams - 1] : NULL;
        if (obj)
            api_set_object(r, obj);
        if (api_require(r, rt->privilege, obj) < 0)
            return;
    }
    const char *wt = api_query(r, "vmw-task");
    if (wt && !strcmp(wt, "true")) {
        if (!rt->task) {
            api_error(r, 400, "INVALID_ARGUMENT", "%s %s cannot run as a task", r->method,
                      r->url);
            return;
        }
        r->want_task = true;
    }
    rt->handler(r);
    if (r->in_txn) {
        /* Held: the change so far commits now; the answer audits later. */
        r->in_txn = false;
        vdb_finish(vx->db, 0);
    }
    if (!r->answered && !r->held) {
        kvc_err("%s %s: handler gave no answer", r->method, r->url);
        api_error(r, 500, "ERROR", "internal error: no answer");
    }
}

/* ---- MHD callbacks ---- */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size,
                                  void **con_cls)
{
    struct api_server *s = cls;
    struct api_req *r = *con_cls;

    if (!r) {
        const union MHD_ConnectionInfo *ci;
        const char *cl;

        r = calloc(1, sizeof(*r));
        if (!r)
            return MHD_NO;
        r->srv = s;
        r->conn = conn;
        r->refs = 1;
        snprintf(r->method, sizeof(r->method), "%s", method);
        r->url = strdup(url);
        ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)ci->client_addr)->sin_addr,
                      r->remote, sizeof(r->remote));
        *con_cls = r;
        /* The limit is checked before anything of the body is buffered. */
        cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > (unsigned long long)s->vx->opt.max_body) {
            r->too_large = true;
            s->m.too_large++;
            api_error(r, 413, "INVALID_ARGUMENT",
                      "request body of %s bytes exceeds the limit of %lld bytes", cl,
                      (long long)s->vx->opt.max_body);
            queue_answer(r);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (!r->too_large) {
            if (r->len + *upload_size > (size_t)s->vx->opt.max_body) {
                r->too_large = true;
                s->m.too_large++;
                free(r->body);
                r->body = NULL;
                r->len = 0;
            } else {
                if (r->len + *upload_size + 1 > r->cap) {
                    size_t cap = (r->len + *upload_size + 1) * 2;
                    if (cap > (size_t)s->vx->opt.max_body + 1)
                        cap = (size_t)s->vx->opt.max_body + 1;
                    char *nb = realloc(r->body, cap);
                    if (!nb)
                        return MHD_NO;
                    r->body = nb;
                    r->cap = cap;
                }
                memcpy(r->body + r->len, upload_data, *upload_size);
                r->len += *upload_size;
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->queued)
        return MHD_YES;
    if (!r->dispatched) {
        r->dispatched = true;
        if (r->too_large) {
            api_error(r, 413, "INVALID_ARGUMENT",
                      "request body exceeds the limit of %lld bytes",
                      (long long)s->vx->opt.max_body);
        } else {
            dispatch(r);
        }
    }
    if (r->answered) {
        if (!r->stream)
            queue_answer(r);
        return MHD_YES;
    }
    if (r->held && r->task[0]) {
        /* vmw-task=true: answer with the task id now. */
        char *body = NULL;
        json_t *j = json_string(r->task);
        body = json_dumps(j, JSON_ENCODE_ANY);
        json_decref(j);
        int status = 202;
        struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(body), body,
                                                                    MHD_RESPMEM_MUST_FREE);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        MHD_queue_response(conn, (unsigned int)status, resp);
        MHD_destroy_response(resp);
        r->queued = true;
        s->m.requests++;
        s->m.by_class[2]++;
        return MHD_YES;
    }
    /* Waiting for a host: sleep until the answer resumes us. */
    r->suspended = true;
    MHD_suspend_connection(conn);
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct api_server *s = cls;
    struct api_req *r = *con_cls;

    if (!r)
        return;
    if (toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED)
        s->m.timeouts++;
    if (r->stream) {
        for (struct api_req **pp = &s->streams; *pp; pp = &(*pp)->next_stream) {
            if (*pp == r) {
                *pp = r->next_stream;
                break;
            }
        }
        if (s->m.sse_clients)
            s->m.sse_clients--;
    }
    r->conn = NULL;
    *con_cls = NULL;
    req_unref(r);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    static struct kvc_ratelimit rl = KVC_RATELIMIT_INIT(10, 10);
    char buf[512];

    vsnprintf(buf, sizeof(buf), fmt, ap);
    buf[strcspn(buf, "\n")] = '\0';
    kvc_warn_rl(&rl, "%s", buf);
}

static void run_mhd(struct api_server *s)
{
    MHD_UNSIGNED_LONG_LONG to;

    MHD_run(s->d);
    if (MHD_get_timeout(s->d, &to) == MHD_YES) {
        struct timeval tv = { (time_t)(to / 1000), (suseconds_t)((to % 1000) * 1000) };
        evtimer_add(s->timer, &tv);
    } else {
        evtimer_del(s->timer);
    }
}

static void on_mhd_event(evutil_socket_t fd, short what, void *arg)
{
    run_mhd(arg);
}

static void on_housekeeping(evutil_socket_t fd, short what, void *arg)
{
    struct api_server *s = arg;

    auth_expire(s->vx->auth);
    wake_streams(s);            /* keepalives */
}

int api_server_start(struct vpxd *vx, struct api_server **out)
{
    struct api_server *s = calloc(1, sizeof(*s));
    struct sockaddr_in sa = { .sin_family = AF_INET };
    const union MHD_DaemonInfo *di;
    struct timeval hk = { SSE_KEEPALIVE_S, 0 };

    if (!s)
        return -ENOMEM;
    s->vx = vx;
    sa.sin_port = htons((uint16_t)vx->opt.port);
    if (inet_pton(AF_INET, vx->opt.listen_addr, &sa.sin_addr) != 1) {
        kvc_err("bad listen address %s", vx->opt.listen_addr);
        free(s);
        return -EINVAL;
    }
    s->d = MHD_start_daemon(MHD_USE_TLS | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME
                            | MHD_USE_ERROR_LOG,
                            0, NULL, NULL, on_request, s,
                            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_HTTPS_MEM_KEY, vx->key_pem,
                            MHD_OPTION_HTTPS_MEM_CERT, vx->cert_pem,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)vx->opt.conn_timeout_s,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned int)vx->opt.max_connections,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_END);
    if (!s->d) {
        kvc_err("cannot start the HTTPS server on %s:%d", vx->opt.listen_addr, vx->opt.port);
        free(s);
        return -EADDRINUSE;
    }
    di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_EPOLL_FD);
    s->ev = event_new(vx->base, di->epoll_fd, EV_READ | EV_PERSIST, on_mhd_event, s);
    s->timer = evtimer_new(vx->base, on_mhd_event, s);
    s->housekeeping = event_new(vx->base, -1, EV_PERSIST, on_housekeeping, s);
    event_add(s->ev, NULL);
    event_add(s->housekeeping, &hk);
    vdb_set_event_listener(vx->db, on_db_event, s);
    run_mhd(s);
    *out = s;
    return 0;
}

void api_server_stop(struct api_server *s)
{
    if (!s)
        return;
    s->stopping = true;
    vdb_set_event_listener(s->vx->db, NULL, NULL);
    wake_streams(s);
    /* What still waits gets its answer now (the hosts and tasks it waited
     * for are stopped): MHD must not stop with a connection suspended. */
    while (s->held) {
        struct api_req *r = s->held;
        if (r->answered) {
            s->held = r->next_held;     /* answered, not finished: drop it */
            r->held = false;
            continue;
        }
        api_error(r, 503, "SERVICE_UNAVAILABLE", "vpxd is stopping: the operation's outcome is "
                  "not known");
    }
    MHD_run(s->d);
    event_free(s->ev);
    event_free(s->timer);
    event_free(s->housekeeping);
    MHD_stop_daemon(s->d);
    free(s);
}

void api_get_metrics(const struct api_server *s, struct api_metrics *m)
{
    *m = s->m;
    m->waiting = 0;
    for (const struct api_req *r = s->held; r; r = r->next_held)
        m->waiting++;
}

void api_count_login_failure(struct api_req *r, bool throttled)
{
    r->srv->m.login_failures++;
    if (throttled)
        r->srv->m.throttled++;
}

const char *api_header_in(struct api_req *r, const char *name)
{
    return r->conn ? MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name) : NULL;
}

void api_set_user(struct api_req *r, const char *user)
{
    snprintf(r->user, sizeof(r->user), "%s", user);
}

char *api_basic_auth(struct api_req *r, char **pass)
{
    *pass = NULL;
    return r->conn ? MHD_basic_auth_get_username_password(r->conn, pass) : NULL;
}
