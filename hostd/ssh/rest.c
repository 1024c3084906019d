/* The host's HTTPS endpoint for kvcli (libmicrohttpd; see ssh.h).
 *
 * It serves the same host API as the SSH shell (hostapi.c), so kvcli and
 * the shell run a command through the same code and print the same bytes.
 * TLS uses the host's identity (STATE_DIR/rpc.crt, rpc.key): the thumbprint
 * kvcli pins is the one the host announces and vpxd pins.  Login is the
 * Automation API's: POST /api/session with HTTP Basic -> 201 and a bare JSON
 * string token, then "vmware-api-session-id: TOKEN"; DELETE /api/session
 * ends it.  Sessions end after 30 minutes unused; at most 64 at once (the
 * oldest goes).  libmicrohttpd runs a thread per connection (a password
 * check takes tens of milliseconds and a failed one is delayed), and the API
 * itself runs on the loop thread through the bridge. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>

#include "log.h"
#include "tls.h"
#include "jsonutil.h"
#include "hostd/hostd.h"
#include "hostd/ssh/ssh.h"

KVC_LOG_MODULE(hostapi);

#define MAX_SESSIONS 64
#define SESSION_IDLE_MS (30 * 60 * 1000)
#define MAX_BODY (64 * 1024)

struct token {
    char id[33];
    int64_t last_ms;
};

struct hostd_rest {
    struct hostd_host *h;
    struct hostd_bridge *br;
    struct hostd_auth *auth;
    struct MHD_Daemon *d;
    char *cert, *key;
    uint16_t port;
    pthread_mutex_t mu;
    struct token tokens[MAX_SESSIONS];
};

struct req {
    size_t body_len;
    bool too_big;
    char *body;                 /* up to MAX_BODY bytes, NUL-terminated */
};

static enum MHD_Result
send_json(struct MHD_Connection *conn, unsigned status, const json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    size_t len = text ? strlen(text) : 0;
    struct MHD_Response *r = MHD_create_response_from_buffer(len, text ? text : (char *)"",
                                                             text ? MHD_RESPMEM_MUST_FREE
                                                                  : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    if (text)
        MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result
send_error(struct MHD_Connection *conn, unsigned status, const char *type, const char *msg)
{
    json_t *e = kvc_json_api_error(type, NULL, "%s", msg);
    enum MHD_Result ret = send_json(conn, status, e);
    json_decref(e);
    return ret;
}

static bool
token_valid(struct hostd_rest *r, const char *id)
{
    bool ok = false;
    int64_t now = hostd_now_ms();
    if (!id || strlen(id) != 32)
        return false;
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < MAX_SESSIONS; i++) {
        struct token *t = &r->tokens[i];
        if (t->id[0] && now - t->last_ms > SESSION_IDLE_MS)
            t->id[0] = 0;
        if (t->id[0] && !strcmp(t->id, id)) {
            t->last_ms = now;
            ok = true;
        }
    }
    pthread_mutex_unlock(&r->mu);
    return ok;
}

static int
token_new(struct hostd_rest *r, char out[33])
{
    unsigned char raw[16];
    if (gnutls_rnd(GNUTLS_RND_KEY, raw, sizeof raw) < 0)
        return -EIO;
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
    pthread_mutex_lock(&r->mu);
    int slot = 0;
    for (int i = 0; i < MAX_SESSIONS; i++) {
        if (!r->tokens[i].id[0]) {
            slot = i;
            break;
        }
        if (r->tokens[i].last_ms < r->tokens[slot].last_ms)
            slot = i;
    }
    memcpy(r->tokens[slot].id, out, 33);
    r->tokens[slot].last_ms = hostd_now_ms();
    pthread_mutex_unlock(&r->mu);
    return 0;
}

static void
token_drop(struct hostd_rest *r, const char *id)
{
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < MAX_SESSIONS; i++)
        if (id && !strcmp(r->tokens[i].id, id))
            r->tokens[i].id[0] = 0;
    pthread_mutex_unlock(&r->mu);
}

static void
peer_name(struct MHD_Connection *conn, char *buf, size_t len)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(buf, len, "?");
    if (ci && ci->client_addr)
        getnameinfo(ci->client_addr, ci->client_addr->sa_family == AF_INET6
                    ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in),
                    buf, (socklen_t)len, NULL, 0, NI_NUMERICHOST);
}

static enum MHD_Result
login(struct hostd_rest *r, struct MHD_Connection *conn)
{
    char *pass = NULL, peer[64];
    char *user = MHD_basic_auth_get_username_password(conn, &pass);
    char tok[33];
    bool ok;

    peer_name(conn, peer, sizeof peer);
    ok = user && hostd_auth_password(r->auth, user, pass ? pass : "", peer);
    if (pass) {
        explicit_bzero(pass, strlen(pass));
        MHD_free(pass);
    }
    if (user)
        MHD_free(user);
    if (!ok)
        return send_error(conn, MHD_HTTP_UNAUTHORIZED, "UNAUTHENTICATED",
                          "Cannot complete login due to an incorrect user name or password.");
    if (token_new(r, tok))
        return send_error(conn, 500, "ERROR", "no session could be made");
    json_t *t = json_string(tok);
    enum MHD_Result ret = send_json(conn, MHD_HTTP_CREATED, t);
    json_decref(t);
    return ret;
}

struct api_job {
    struct hostd_host *h;
    const char *method, *path;
    const json_t *body;
    long status;
    json_t *reply;
};

static void
api_on_loop(void *arg)
{
    struct api_job *j = arg;
    hostd_api_call(j->h, j->method, j->path, j->body, &j->status, &j->reply);
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
           const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    struct hostd_rest *r = cls;
    struct req *q = *con_cls;
    (void)version;

    if (!q) {
        if (!(q = calloc(1, sizeof *q)))
            return MHD_NO;
        *con_cls = q;
        return MHD_YES;
    }
    if (*upload_size) {
        /* Bodies (JSON) of the vSwitch and port group calls; refused past
         * MAX_BODY without keeping more. */
        if (!q->too_big && q->body_len + *upload_size <= MAX_BODY) {
            char *b = realloc(q->body, q->body_len + *upload_size + 1);
            if (b) {
                memcpy(b + q->body_len, upload, *upload_size);
                b[q->body_len + *upload_size] = 0;
                q->body = b;
            } else {
                q->too_big = true;
            }
        } else {
            q->too_big = true;
        }
        q->body_len += *upload_size;
        *upload_size = 0;
        return MHD_YES;
    }
    if (q->too_big)
        return send_error(conn, 413, "INVALID_ARGUMENT", "request body too large");
    if (!strcmp(url, "/api/session") && !strcmp(method, "POST"))
        return login(r, conn);
    const char *tok = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "vmware-api-session-id");
    if (!token_valid(r, tok))
        return send_error(conn, MHD_HTTP_UNAUTHORIZED, "UNAUTHENTICATED",
                          "This method requires authentication.");
    if (!strcmp(url, "/api/session") && !strcmp(method, "DELETE")) {
        token_drop(r, tok);
        return send_json(conn, MHD_HTTP_NO_CONTENT, NULL);
    }
    char path[1024];
    json_t *body = NULL;
    if (q->body_len) {
        json_error_t je;
        if (!(body = json_loadb(q->body, q->body_len, JSON_DECODE_ANY, &je)))
            return send_error(conn, 400, "INVALID_ARGUMENT", "the request body is not JSON");
    }
    /* libmicrohttpd hands over the path without its query; the one query
     * argument the host's API reads is ?action=. */
    const char *action = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "action");
    snprintf(path, sizeof path, "%s%s%s", url, action ? "?action=" : "", action ? action : "");
    struct api_job j = { .h = r->h, .method = method, .path = path, .body = body };
    int brc = hostd_bridge_run(r->br, api_on_loop, &j);
    json_decref(body);
    if (brc)
        return send_error(conn, 503, "SERVICE_UNAVAILABLE", "hostd is shutting down");
    enum MHD_Result ret = send_json(conn, (unsigned)j.status, j.reply);
    json_decref(j.reply);
    return ret;
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
             enum MHD_RequestTerminationCode why)
{
    (void)cls;
    (void)conn;
    (void)why;
    struct req *q = *con_cls;
    if (q)
        free(q->body);
    free(q);
    *con_cls = NULL;
}

static char *
slurp(const char *path)
{
    FILE *f = fopen(path, "re");
    char *buf = NULL;
    size_t len = 0;
    if (!f)
        return NULL;
    FILE *m = open_memstream(&buf, &len);
    if (m) {
        char tmp[4096];
        size_t n;
        while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
            fwrite(tmp, 1, n, m);
        fclose(m);
    }
    fclose(f);
    return buf;
}

int
hostd_rest_start(struct hostd_host *h, struct hostd_bridge *br, struct hostd_auth *auth,
                 const char *listen, uint16_t port, struct hostd_rest **out)
{
    struct hostd_rest *r = calloc(1, sizeof *r);
    char path[PATH_MAX + 32];
    struct sockaddr_storage ss = { 0 };
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_TLS;
    int rc = -ENOMEM;

    if (!r)
        return -ENOMEM;
    r->h = h;
    r->br = br;
    r->auth = auth;
    pthread_mutex_init(&r->mu, NULL);
    snprintf(path, sizeof path, "%s/%s", h->state_dir, KVC_TLS_CERT_FILE);
    r->cert = slurp(path);
    snprintf(path, sizeof path, "%s/%s", h->state_dir, KVC_TLS_KEY_FILE);
    r->key = slurp(path);
    if (!r->cert || !r->key) {
        kvc_err("%s: cannot read the host's TLS identity in %s", h->name, h->state_dir);
        rc = -ENOENT;
        goto fail;
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, listen, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
    } else if (inet_pton(AF_INET6, listen, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        flags |= MHD_USE_IPv6;
    } else {
        kvc_err("%s: api listen address '%s' is not an IP address", h->name, listen);
        rc = -EINVAL;
        goto fail;
    }
    r->d = MHD_start_daemon(flags, port, NULL, NULL, on_request, r,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                            MHD_OPTION_HTTPS_MEM_CERT, r->cert,
                            MHD_OPTION_HTTPS_MEM_KEY, r->key,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)16,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, r,
                            MHD_OPTION_END);
    if (!r->d) {
        kvc_err("%s: api listen on %s:%u failed", h->name, listen, port);
        rc = -EADDRINUSE;
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(r->d, MHD_DAEMON_INFO_BIND_PORT);
    r->port = di ? di->port : port;
    kvc_info("api ready index=%u name=%s port=%u thumbprint=%s", h->index, h->name, r->port,
             kvc_tls_identity_thumbprint(h->id));
    *out = r;
    return 0;
fail:
    hostd_rest_stop(r);
    return rc;
}

uint16_t
hostd_rest_port(const struct hostd_rest *r)
{
    return r->port;
}

void
hostd_rest_stop(struct hostd_rest *r)
{
    if (!r)
        return;
    if (r->d)
        MHD_stop_daemon(r->d);
    if (r->key) {
        explicit_bzero(r->key, strlen(r->key));
        free(r->key);
    }
    free(r->cert);
    pthread_mutex_destroy(&r->mu);
    free(r);
}
