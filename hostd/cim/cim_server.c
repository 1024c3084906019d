/* The HTTP side of the CIM server: libmicrohttpd in its own thread, Basic
 * authentication through the host's callback, POST /cimom bodies collected
 * up to a limit and handed to kvc_cim_handle().
 */
#include "hostd/cim/cim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <libxml/parser.h>
#include <microhttpd.h>

#include "log.h"

KVC_LOG_MODULE(cim);

struct kvc_cim_server {
    struct MHD_Daemon *mhd;
    struct kvc_cim_provider pv;
    size_t max_body;
    uint16_t port;
    char *cert, *key;
};

struct conn {
    char *body;
    size_t len;
    bool too_big;
};

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
    static struct kvc_ratelimit rl = KVC_RATELIMIT_INIT(10, 10);
    char buf[256];
    vsnprintf(buf, sizeof buf, fmt, ap);
    buf[strcspn(buf, "\n")] = 0;
    kvc_warn_rl(&rl, "http: %s", buf);
}

static enum MHD_Result
respond(struct MHD_Connection *mc, unsigned int status, const char *body, size_t len,
        bool copy, const char *cim_error)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, (void *)body, copy ? MHD_RESPMEM_MUST_COPY : MHD_RESPMEM_MUST_FREE);
    if (!r)
        return MHD_NO;
    if (len)
        MHD_add_response_header(r, "Content-Type", "application/xml; charset=\"utf-8\"");
    if (status == 200)
        MHD_add_response_header(r, "CIMOperation", "MethodResponse");
    if (cim_error)
        MHD_add_response_header(r, "CIMError", cim_error);
    enum MHD_Result ret = MHD_queue_response(mc, status, r);
    MHD_destroy_response(r);
    return ret;
}

static bool
authorized(struct kvc_cim_server *s, struct MHD_Connection *mc)
{
    char *pass = NULL;
    char *user = MHD_basic_auth_get_username_password(mc, &pass);
    bool ok = user && pass && s->pv.check_auth && s->pv.check_auth(s->pv.ctx, user, pass);
    if (user && !ok) {
        static struct kvc_ratelimit rl = KVC_RATELIMIT_INIT(5, 10);
        kvc_warn_rl(&rl, "authentication failed for user '%.64s'", user);
    }
    if (pass) {
        explicit_bzero(pass, strlen(pass));
        MHD_free(pass);
    }
    if (user)
        MHD_free(user);
    return ok;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *mc, const char *url, const char *method,
           const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    struct kvc_cim_server *s = cls;
    struct conn *c = *con_cls;

    if (!c) {
        /* First call: headers only.  Refuse early what will never work. */
        if (strcmp(method, "POST") && strcmp(method, "M-POST")) {
            static const char msg[] = "only POST is supported\n";
            struct MHD_Response *r = MHD_create_response_from_buffer(
                sizeof msg - 1, (void *)msg, MHD_RESPMEM_PERSISTENT);
            if (!r)
                return MHD_NO;
            MHD_add_response_header(r, "Allow", "POST, M-POST");
            enum MHD_Result ret = MHD_queue_response(mc, MHD_HTTP_METHOD_NOT_ALLOWED, r);
            MHD_destroy_response(r);
            return ret;
        }
        if (strcmp(url, "/cimom") && strcmp(url, "/"))
            return respond(mc, MHD_HTTP_NOT_FOUND, "", 0, true, NULL);
        if (!authorized(s, mc)) {
            static const char msg[] = "authentication required\n";
            struct MHD_Response *r = MHD_create_response_from_buffer(
                sizeof msg - 1, (void *)msg, MHD_RESPMEM_PERSISTENT);
            if (!r)
                return MHD_NO;
            enum MHD_Result ret = MHD_queue_basic_auth_fail_response(mc, "kvcenter", r);
            MHD_destroy_response(r);
            return ret;
        }
        const char *op = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "CIMOperation");
        if (!op || strcasecmp(op, "MethodCall"))
            return respond(mc, MHD_HTTP_BAD_REQUEST, "", 0, true, "header-mismatch");
        if (!(c = calloc(1, sizeof *c)))
            return MHD_NO;
        *con_cls = c;
        return MHD_YES;
    }

    if (*upload_size) {
        if (!c->too_big && c->len + *upload_size > s->max_body) {
            c->too_big = true;
            free(c->body);
            c->body = NULL;
            c->len = 0;
        }
        if (!c->too_big) {
            char *b = realloc(c->body, c->len + *upload_size + 1);
            if (!b)
                return MHD_NO;
            memcpy(b + c->len, upload, *upload_size);
            c->body = b;
            c->len += *upload_size;
            c->body[c->len] = 0;
        }
        *upload_size = 0;
        return MHD_YES;
    }

    if (c->too_big)
        return respond(mc, MHD_HTTP_CONTENT_TOO_LARGE, "", 0, true, NULL);

    const char *cm = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "CIMMethod");
    const char *co = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "CIMObject");
    struct kvc_cim_reply rep;
    kvc_cim_handle(&s->pv, cm, co, c->body ? c->body : "", c->len, &rep);
    if (rep.http_status != 200) {
        static struct kvc_ratelimit rl = KVC_RATELIMIT_INIT(5, 10);
        kvc_info_rl(&rl, "rejected request: HTTP %d %s", rep.http_status,
                    rep.cim_error ? rep.cim_error : "");
    }
    if (rep.body)
        return respond(mc, rep.http_status, rep.body, rep.len, false, rep.cim_error);
    return respond(mc, rep.http_status, "", 0, true, rep.cim_error);
}

static void
on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
    struct conn *c = *con_cls;
    if (c) {
        free(c->body);
        free(c);
        *con_cls = NULL;
    }
}

int
kvc_cim_server_start(const struct kvc_cim_config *cfg, const struct kvc_cim_provider *pv,
                     struct kvc_cim_server **out)
{
    struct kvc_cim_server *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->pv = *pv;
    s->max_body = cfg->max_body ? cfg->max_body : 1 << 20;

    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(cfg->port) };
    const char *addr = cfg->address ? cfg->address : "127.0.0.1";
    if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1) {
        kvc_err("bad listen address '%s' (IPv4 expected)", addr);
        free(s);
        return -EINVAL;
    }

    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    bool tls = cfg->tls_cert_pem && cfg->tls_key_pem;
    if (tls) {
        flags |= MHD_USE_TLS;
        s->cert = strdup(cfg->tls_cert_pem);
        s->key = strdup(cfg->tls_key_pem);
        if (!s->cert || !s->key) {
            kvc_cim_server_stop(s);
            return -ENOMEM;
        }
    }
    xmlInitParser();
    s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
                              MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
                              MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                              MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
                              MHD_OPTION_CONNECTION_LIMIT, 64u,
                              MHD_OPTION_CONNECTION_TIMEOUT, 30u,
                              tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, s->cert,
                              MHD_OPTION_HTTPS_MEM_KEY, s->key,
                              MHD_OPTION_END);
    if (!s->mhd) {
        int err = errno ? -errno : -EADDRINUSE;
        kvc_err("cannot listen on %s:%u%s", addr, cfg->port, tls ? " (TLS)" : "");
        kvc_cim_server_stop(s);
        return err;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : cfg->port;
    kvc_info("CIM server listening on %s:%u (%s)", addr, s->port, tls ? "https" : "http");
    *out = s;
    return 0;
}

uint16_t
kvc_cim_server_port(const struct kvc_cim_server *s)
{
    return s->port;
}

void
kvc_cim_server_stop(struct kvc_cim_server *s)
{
    if (!s)
        return;
    if (s->mhd)
        MHD_stop_daemon(s->mhd);
    if (s->key)
        explicit_bzero(s->key, strlen(s->key));
    free(s->cert);
    free(s->key);
    free(s);
}
