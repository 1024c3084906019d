/* RPC connections: socket and TLS I/O, framing, dispatch, outgoing calls.
 * Servers (rpc-server.c) and clients (rpc-client.c) own connections. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "rpc-int.h"
#include "rpc.pb-c.h"

KVC_LOG_MODULE(rpc);

enum conn_state {
    CS_CONNECTING,          /* dialing: waiting for connect() to finish */
    CS_HANDSHAKE,           /* TLS handshake */
    CS_HELLO,               /* dialing: waiting for the peer's HELLO */
    CS_UP,
    CS_CLOSING,             /* flushing a last error reply, then close */
    CS_CLOSED,
};

struct kvc_rpc_call {
    struct kvc_rpc_conn *conn;          /* NULL once the connection closed */
    const struct kvc_rpc_method *m;
    uint64_t id;
    uint32_t method;
    bool oneway;
    ProtobufCMessage *request;
    struct kvc_rpc_call *next, *prev;
};

struct kvc_rpc_conn {
    int refs;
    struct kvc_rpc_ep *ep;
    enum conn_state state;
    bool dialing;
    bool announced;                     /* on_connect ran */
    bool test;                          /* no socket (test hook) */
    int fd;
    struct event *ev_read, *ev_write, *ev_timer;
    bool write_armed, read_paused;
    gnutls_session_t tls;
    struct kvc_rpc_tlsctx *tlsctx;
    size_t tls_send_len;                /* record_send returned AGAIN for this */
    struct evbuffer *in, *out;
    uint64_t next_id;
    struct kvc_rpc_out_call **buckets;
    size_t nbuckets, ncalls;
    struct kvc_rpc_call *calls;         /* incoming, not yet answered */
    bool has_cred;
    struct ucred cred;
    bool has_thumbprint;
    char peer_thumbprint[KVC_TLS_THUMBPRINT_SIZE];
    char peer_name[96];
    char fail_reason[320];
    void *data;
};

#define HANDSHAKE_TIMEOUT_MS 10000
#define CLOSING_TIMEOUT_MS   2000
#define READ_CHUNK           65536
#define OUT_HIGH_WATER(c)    ((c)->ep->max_frame > (4u << 20) ? (c)->ep->max_frame : (4u << 20))

static struct kvc_ratelimit rl_bad = KVC_RATELIMIT_INIT(10, 10);
static struct kvc_ratelimit rl_late = KVC_RATELIMIT_INIT(10, 10);

static void conn_process_input(struct kvc_rpc_conn *);
static void conn_kick_write(struct kvc_rpc_conn *);
static void conn_established(struct kvc_rpc_conn *);

/* ---- endpoints ---------------------------------------------------------*/

static int
method_cmp(const void *a, const void *b)
{
    const struct kvc_rpc_method *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

int
kvc_rpc_ep_init(struct kvc_rpc_ep *ep, struct event_base *base,
                const struct kvc_rpc_opts *opts)
{
    static const struct kvc_rpc_opts none;
    size_t i;

    if (!base)
        return -EINVAL;
    if (!opts)
        opts = &none;
    if (opts->n_methods && !opts->methods)
        return -EINVAL;
    ep->refs = 1;
    ep->base = base;
    ep->opts = *opts;
    ep->max_frame = opts->max_frame ? opts->max_frame : KVC_RPC_DEFAULT_MAX_FRAME;
    ep->n_methods = opts->n_methods;
    if (ep->n_methods) {
        ep->methods = calloc(ep->n_methods, sizeof *ep->methods);
        if (!ep->methods)
            return -ENOMEM;
        memcpy(ep->methods, opts->methods, ep->n_methods * sizeof *ep->methods);
        qsort(ep->methods, ep->n_methods, sizeof *ep->methods, method_cmp);
        for (i = 0; i < ep->n_methods; i++) {
            if (!ep->methods[i].handler
                || (i > 0 && ep->methods[i].id == ep->methods[i - 1].id)
                || ep->methods[i].id == KVC_RPC_METHOD_HELLO) {
                kvc_err("method table: id 0x%" PRIx32 " has no handler, is a duplicate or reserved",
                        ep->methods[i].id);
                free(ep->methods);
                ep->methods = NULL;
                return -EINVAL;
            }
        }
    }
    return 0;
}

void
kvc_rpc_ep_ref(struct kvc_rpc_ep *ep)
{
    ep->refs++;
}

void
kvc_rpc_ep_unref(struct kvc_rpc_ep *ep)
{
    if (!ep || --ep->refs > 0)
        return;
    free(ep->methods);
    ep->destroy(ep);
}

static const struct kvc_rpc_method *
find_method(const struct kvc_rpc_ep *ep, uint32_t id)
{
    size_t lo = 0, hi = ep->n_methods;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ep->methods[mid].id == id)
            return &ep->methods[mid];
        if (ep->methods[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* ---- TLS contexts ------------------------------------------------------*/

static int
verify_peer(gnutls_session_t s)
{
    struct kvc_rpc_conn *c = gnutls_session_get_ptr(s);
    const struct kvc_rpc_tlsctx *t = c->tlsctx;
    const gnutls_datum_t *certs;
    unsigned int n = 0;
    bool ok;

    certs = gnutls_certificate_get_peers(s, &n);
    if (!certs || n == 0) {
        snprintf(c->fail_reason, sizeof c->fail_reason,
                 "peer presented no certificate");
        return GNUTLS_E_CERTIFICATE_ERROR;
    }
    kvc_tls_thumbprint_der(certs[0].data, certs[0].size, c->peer_thumbprint);
    c->has_thumbprint = true;
    if (t->verify)
        ok = t->verify(c->peer_thumbprint, t->verify_arg);
    else
        ok = kvc_tls_thumbprint_equal(c->peer_thumbprint, t->peer_thumbprint);
    if (!ok) {
        snprintf(c->fail_reason, sizeof c->fail_reason,
                 "certificate thumbprint mismatch: expected %s, peer presented %s",
                 t->verify ? "one accepted by policy"
                 : t->peer_thumbprint ? t->peer_thumbprint : "none (nothing pinned)",
                 c->peer_thumbprint);
        return GNUTLS_E_CERTIFICATE_ERROR;
    }
    return 0;
}

int
kvc_rpc_tlsctx_new(const struct kvc_rpc_tls *tls, struct kvc_rpc_tlsctx **out)
{
    struct kvc_rpc_tlsctx *t;
    int r;

    *out = NULL;
    if (!tls || !tls->identity)
        return -EINVAL;
    if (tls->peer_thumbprint && !tls->verify
        && !kvc_tls_thumbprint_equal(tls->peer_thumbprint, tls->peer_thumbprint)) {
        kvc_err("not a SHA-256 thumbprint: '%s'", tls->peer_thumbprint);
        return -EINVAL;
    }
    if (!(t = calloc(1, sizeof *t)))
        return -ENOMEM;
    if (gnutls_certificate_allocate_credentials(&t->cred) < 0) {
        free(t);
        return -ENOMEM;
    }
    if ((r = kvc_tls__set_credentials(tls->identity, t->cred)) < 0)
        goto fail;
    if (tls->peer_thumbprint && !(t->peer_thumbprint = strdup(tls->peer_thumbprint))) {
        r = -ENOMEM;
        goto fail;
    }
    t->verify = tls->verify;
    t->verify_arg = tls->verify_arg;
    snprintf(t->thumbprint, sizeof t->thumbprint, "%s",
             kvc_tls_identity_thumbprint(tls->identity));
    gnutls_certificate_set_verify_function(t->cred, verify_peer);
    *out = t;
    return 0;
fail:
    kvc_rpc_tlsctx_free(t);
    return r;
}

void
kvc_rpc_tlsctx_free(struct kvc_rpc_tlsctx *t)
{
    if (!t)
        return;
    gnutls_certificate_free_credentials(t->cred);
    free(t->peer_thumbprint);
    free(t);
}

/* ---- outgoing call table ---------------------------------------------*/

static size_t
bucket_of(const struct kvc_rpc_conn *c, uint64_t id)
{
    return (size_t)(id * 0x9E3779B97F4A7C15ull >> 32) & (c->nbuckets - 1);
}

static int
table_insert(struct kvc_rpc_conn *c, struct kvc_rpc_out_call *oc)
{
    if (c->ncalls >= c->nbuckets * 2) {
        size_t i, n = c->nbuckets ? c->nbuckets * 4 : 64;
        struct kvc_rpc_out_call **nb = calloc(n, sizeof *nb), **old = c->buckets;
        size_t oldn = c->nbuckets;
        if (!nb)
            return -ENOMEM;
        c->buckets = nb;
        c->nbuckets = n;
        for (i = 0; i < oldn; i++) {
            struct kvc_rpc_out_call *p = old[i], *next;
            for (; p; p = next) {
                size_t b = bucket_of(c, p->id);
                next = p->next;
                p->next = nb[b];
                nb[b] = p;
            }
        }
        free(old);
    }
    size_t b = bucket_of(c, oc->id);
    oc->next = c->buckets[b];
    c->buckets[b] = oc;
    oc->conn = c;
    c->ncalls++;
    return 0;
}

static struct kvc_rpc_out_call *
table_remove(struct kvc_rpc_conn *c, uint64_t id)
{
    struct kvc_rpc_out_call **pp;

    if (!c->nbuckets)
        return NULL;
    for (pp = &c->buckets[bucket_of(c, id)]; *pp; pp = &(*pp)->next) {
        struct kvc_rpc_out_call *oc = *pp;
        if (oc->id == id) {
            *pp = oc->next;
            oc->next = NULL;
            oc->conn = NULL;
            c->ncalls--;
            return oc;
        }
    }
    return NULL;
}

static void
out_call_timer(evutil_socket_t fd, short what, void *arg)
{
    struct kvc_rpc_out_call *oc = arg;
    char msg[160];

    if (oc->fail_status) {
        kvc_rpc_out_call_finish(oc, oc->fail_status, oc->fail_msg ? oc->fail_msg : "", NULL);
        return;
    }
    if (oc->client) {
        kvc_rpc_client__timeout(oc->client, oc);
        return;
    }
    if (oc->conn)
        table_remove(oc->conn, oc->id);
    snprintf(msg, sizeof msg, "no reply to method 0x%" PRIx32 " within %u ms",
             oc->method, oc->timeout_ms);
    kvc_rpc_out_call_finish(oc, KVC_RPC_E_TIMEOUT, msg, NULL);
}

struct kvc_rpc_out_call *
kvc_rpc_out_call_new(struct event_base *base, uint32_t method,
                     const ProtobufCMessage *req, const ProtobufCMessageDescriptor *rtype,
                     unsigned timeout_ms, kvc_rpc_reply_fn cb, void *arg,
                     uint32_t max_frame, int *err)
{
    struct kvc_rpc_out_call *oc;
    size_t len = req ? protobuf_c_message_get_packed_size(req) : 0;

    *err = 0;
    if (!cb) {
        *err = -EINVAL;
        return NULL;
    }
    if (len > max_frame) {
        *err = -EMSGSIZE;
        return NULL;
    }
    if (!(oc = calloc(1, sizeof *oc))
        || !(oc->timer = evtimer_new(base, out_call_timer, oc))
        || (len && !(oc->payload = malloc(len)))) {
        if (oc)
            event_free(oc->timer);
        free(oc);
        *err = -ENOMEM;
        return NULL;
    }
    if (len)
        protobuf_c_message_pack(req, oc->payload);
    oc->len = len;
    oc->method = method;
    oc->rtype = rtype;
    oc->cb = cb;
    oc->arg = arg;
    oc->timeout_ms = timeout_ms;
    if (timeout_ms) {
        struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
        evtimer_add(oc->timer, &tv);
    }
    return oc;
}

void
kvc_rpc_out_call_finish(struct kvc_rpc_out_call *oc, int status, const char *msg,
                        ProtobufCMessage *resp)
{
    event_free(oc->timer);
    oc->cb(status, msg ? msg : "", status == KVC_RPC_OK ? resp : NULL, oc->arg);
    if (resp) {
        if (oc->keep && status == KVC_RPC_OK)
            *oc->keep = resp;
        else
            protobuf_c_message_free_unpacked(resp, NULL);
    }
    free(oc->payload);
    free(oc->fail_msg);
    free(oc);
}

/* ---- writing frames --------------------------------------------------*/

static bool
conn_writable(const struct kvc_rpc_conn *c)
{
    return c->state == CS_UP || c->state == CS_HELLO;
}

static int
write_frame(struct kvc_rpc_conn *c, uint8_t flags, uint32_t method, uint64_t id,
            const ProtobufCMessage *msg, const uint8_t *raw, size_t rawlen)
{
    struct kvc_rpc_header h = { .flags = flags, .method = method, .request_id = id };
    size_t len = msg ? protobuf_c_message_get_packed_size(msg) : rawlen;
    struct evbuffer_iovec v;

    if (len > c->ep->max_frame)
        return -EMSGSIZE;
    h.length = (uint32_t)len;
    if (evbuffer_reserve_space(c->out, KVC_RPC_HEADER_SIZE + len, &v, 1) < 1)
        return -ENOMEM;
    kvc_rpc_header_encode(&h, v.iov_base);
    if (msg)
        protobuf_c_message_pack(msg, (uint8_t *)v.iov_base + KVC_RPC_HEADER_SIZE);
    else if (rawlen)
        memcpy((uint8_t *)v.iov_base + KVC_RPC_HEADER_SIZE, raw, rawlen);
    v.iov_len = KVC_RPC_HEADER_SIZE + len;
    if (evbuffer_commit_space(c->out, &v, 1) < 0)
        return -ENOMEM;
    conn_kick_write(c);
    return 0;
}

static void
send_error(struct kvc_rpc_conn *c, uint64_t id, uint32_t method, int status,
           const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void
send_error(struct kvc_rpc_conn *c, uint64_t id, uint32_t method, int status,
           const char *fmt, ...)
{
    Kvc__Rpc__Error e = KVC__RPC__ERROR__INIT;
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    e.code = (uint32_t)status;
    e.message = msg;
    write_frame(c, KVC_RPC_FLAG_RESPONSE | KVC_RPC_FLAG_ERROR, method, id, &e.base, NULL, 0);
}

int
kvc_rpc_conn_start_call(struct kvc_rpc_conn *c, struct kvc_rpc_out_call *oc)
{
    int r;

    if (!conn_writable(c))
        return -ENOTCONN;
    if (++c->next_id == 0)
        c->next_id = 1;
    oc->id = c->next_id;
    if ((r = write_frame(c, 0, oc->method, oc->id, NULL, oc->payload, oc->len)) < 0)
        return r;
    free(oc->payload);
    oc->payload = NULL;
    if ((r = table_insert(c, oc)) < 0)
        return r;           /* the request went out; its reply will be dropped */
    return 0;
}

int
kvc_rpc_conn_call(struct kvc_rpc_conn *c, uint32_t method, const ProtobufCMessage *req,
                  const ProtobufCMessageDescriptor *rtype, unsigned timeout_ms,
                  kvc_rpc_reply_fn cb, void *arg)
{
    struct kvc_rpc_out_call *oc;
    int r;

    if (!c || c->state != CS_UP)
        return -ENOTCONN;
    if (!(oc = kvc_rpc_out_call_new(c->ep->base, method, req, rtype, timeout_ms, cb, arg,
                                    c->ep->max_frame, &r)))
        return r;
    if ((r = kvc_rpc_conn_start_call(c, oc)) < 0) {
        event_free(oc->timer);
        free(oc->payload);
        free(oc);
    }
    return r;
}

int
kvc_rpc_conn_send(struct kvc_rpc_conn *c, uint32_t method, const ProtobufCMessage *msg)
{
    if (!c || c->state != CS_UP)
        return -ENOTCONN;
    return write_frame(c, KVC_RPC_FLAG_ONEWAY, method, 0, msg, NULL, 0);
}

/* ---- incoming calls ----------------------------------------------------*/

static void
call_free(struct kvc_rpc_call *call)
{
    struct kvc_rpc_conn *c = call->conn;

    if (c) {
        if (call->prev)
            call->prev->next = call->next;
        else
            c->calls = call->next;
        if (call->next)
            call->next->prev = call->prev;
    }
    if (call->request)
        protobuf_c_message_free_unpacked(call->request, NULL);
    free(call);
}

int
kvc_rpc_reply(struct kvc_rpc_call *call, const ProtobufCMessage *resp)
{
    struct kvc_rpc_conn *c = call->conn;
    int r = 0;

    if (!c || !conn_writable(c)) {
        r = -ENOTCONN;
    } else if (call->oneway) {
        r = 0;
    } else if (resp && call->m && call->m->response && resp->descriptor != call->m->response) {
        kvc_err("handler of %s replied with %s", call->m->name ? call->m->name : "?",
                resp->descriptor->name);
        send_error(c, call->id, call->method, KVC_RPC_E_INTERNAL,
                   "server replied with the wrong message type");
        r = -EINVAL;
    } else if ((r = write_frame(c, KVC_RPC_FLAG_RESPONSE, call->method, call->id,
                                resp, NULL, 0)) == -EMSGSIZE) {
        send_error(c, call->id, call->method, KVC_RPC_E_TOO_LARGE,
                   "reply larger than %" PRIu32 " bytes", c->ep->max_frame);
    }
    call_free(call);
    return r;
}

int
kvc_rpc_reply_error(struct kvc_rpc_call *call, int status, const char *fmt, ...)
{
    struct kvc_rpc_conn *c = call->conn;
    char msg[1024];
    va_list ap;
    int r = 0;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (status == KVC_RPC_OK)
        status = KVC_RPC_E_INTERNAL;
    if (!c || !conn_writable(c))
        r = -ENOTCONN;
    else if (!call->oneway)
        send_error(c, call->id, call->method, status, "%s", msg);
    call_free(call);
    return r;
}

uint32_t
kvc_rpc_call_method(const struct kvc_rpc_call *call)
{
    return call->method;
}

bool
kvc_rpc_call_is_oneway(const struct kvc_rpc_call *call)
{
    return call->oneway;
}

struct kvc_rpc_conn *
kvc_rpc_call_conn(const struct kvc_rpc_call *call)
{
    return call->conn;
}

int
kvc_rpc_call_peer_cred(const struct kvc_rpc_call *call, uid_t *uid, pid_t *pid, gid_t *gid)
{
    if (!call->conn)
        return -ENOTCONN;
    return kvc_rpc_conn_peer_cred(call->conn, uid, pid, gid);
}

static void
ping_handler(struct kvc_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
    kvc_rpc_reply(call, req);
}

static const struct kvc_rpc_method builtin_ping = {
    .id = KVC_RPC_METHOD_PING, .name = "Ping", .handler = ping_handler,
    .request = &kvc__rpc__ping__descriptor, .response = &kvc__rpc__ping__descriptor,
};

static void
handle_request(struct kvc_rpc_conn *c, const struct kvc_rpc_header *h, const uint8_t *p)
{
    bool oneway = h->flags & KVC_RPC_FLAG_ONEWAY;
    const struct kvc_rpc_method *m;
    struct kvc_rpc_call *call;
    ProtobufCMessage *req = NULL;

    if (h->method == KVC_RPC_METHOD_HELLO) {
        if (c->state == CS_HELLO && oneway && h->length == 0) {
            c->state = CS_UP;
            conn_established(c);
        } else {
            kvc_dbg("stray HELLO from %s ignored", c->peer_name);
        }
        return;
    }
    if (c->state != CS_UP) {
        kvc_warn_rl(&rl_bad, "%s sent method 0x%" PRIx32 " before HELLO", c->peer_name, h->method);
        kvc_rpc_conn_abort(c, "protocol error: frame before HELLO");
        return;
    }
    m = find_method(c->ep, h->method);
    if (!m && h->method == KVC_RPC_METHOD_PING)
        m = &builtin_ping;
    if (!m) {
        kvc_warn_rl(&rl_bad, "unknown method 0x%" PRIx32 " from %s", h->method, c->peer_name);
        if (!oneway)
            send_error(c, h->request_id, h->method, KVC_RPC_E_UNKNOWN_METHOD,
                       "unknown method 0x%" PRIx32, h->method);
        return;
    }
    if (m->request) {
        req = protobuf_c_message_unpack(m->request, NULL, h->length, p);
        if (!req) {
            kvc_warn_rl(&rl_bad, "undecodable %s request (%" PRIu32 " bytes) from %s",
                        m->name ? m->name : "?", h->length, c->peer_name);
            if (!oneway)
                send_error(c, h->request_id, h->method, KVC_RPC_E_BAD_REQUEST,
                           "cannot decode %s request as %s", m->name ? m->name : "?",
                           m->request->name);
            return;
        }
    }
    if (!(call = calloc(1, sizeof *call))) {
        if (req)
            protobuf_c_message_free_unpacked(req, NULL);
        if (!oneway)
            send_error(c, h->request_id, h->method, KVC_RPC_E_INTERNAL, "out of memory");
        return;
    }
    call->conn = c;
    call->m = m;
    call->id = h->request_id;
    call->method = h->method;
    call->oneway = oneway;
    call->request = req;
    call->next = c->calls;
    if (c->calls)
        c->calls->prev = call;
    c->calls = call;
    m->handler(call, req, m == &builtin_ping ? NULL : c->ep->opts.handler_arg);
}

static void
handle_response(struct kvc_rpc_conn *c, const struct kvc_rpc_header *h, const uint8_t *p)
{
    struct kvc_rpc_out_call *oc = table_remove(c, h->request_id);
    char msg[160];

    if (!oc) {
        kvc_dbg_rl(&rl_late, "reply to unknown request %" PRIu64 " from %s (timed out?)",
                   h->request_id, c->peer_name);
        return;
    }
    if (h->flags & KVC_RPC_FLAG_ERROR) {
        Kvc__Rpc__Error *e = kvc__rpc__error__unpack(NULL, h->length, p);
        if (!e) {
            kvc_rpc_out_call_finish(oc, KVC_RPC_E_BAD_REQUEST, "undecodable error reply", NULL);
            return;
        }
        int st = e->code == 0 || e->code > INT32_MAX ? KVC_RPC_E_INTERNAL : (int)e->code;
        kvc_rpc_out_call_finish(oc, st, e->message, NULL);
        kvc__rpc__error__free_unpacked(e, NULL);
        return;
    }
    ProtobufCMessage *resp = NULL;
    if (oc->rtype) {
        resp = protobuf_c_message_unpack(oc->rtype, NULL, h->length, p);
        if (!resp) {
            snprintf(msg, sizeof msg, "cannot decode reply to method 0x%" PRIx32 " as %s",
                     oc->method, oc->rtype->name);
            kvc_rpc_out_call_finish(oc, KVC_RPC_E_BAD_REQUEST, msg, NULL);
            return;
        }
    }
    kvc_rpc_out_call_finish(oc, KVC_RPC_OK, "", resp);
}

/* ---- reading frames ----------------------------------------------------*/

static void
conn_close_after_flush(struct kvc_rpc_conn *c, const char *reason)
{
    struct timeval tv = { CLOSING_TIMEOUT_MS / 1000, 0 };

    if (c->test || evbuffer_get_length(c->out) == 0) {
        kvc_rpc_conn_abort(c, reason);
        return;
    }
    snprintf(c->fail_reason, sizeof c->fail_reason, "%s", reason);
    c->state = CS_CLOSING;
    if (c->ev_read)
        event_del(c->ev_read);
    evtimer_add(c->ev_timer, &tv);
    conn_kick_write(c);
}

static void
conn_process_input(struct kvc_rpc_conn *c)
{
    while (c->state == CS_UP || c->state == CS_HELLO) {
        size_t avail = evbuffer_get_length(c->in);
        uint8_t hb[KVC_RPC_HEADER_SIZE];
        struct kvc_rpc_header h;
        const uint8_t *p = NULL;
        int r;

        if (avail < KVC_RPC_HEADER_SIZE)
            return;
        evbuffer_copyout(c->in, hb, sizeof hb);
        r = kvc_rpc_header_decode(hb, sizeof hb, c->ep->max_frame, &h);
        if (r == -EMSGSIZE) {
            kvc_warn_rl(&rl_bad, "frame of %" PRIu32 " bytes from %s exceeds the limit of %" PRIu32,
                        h.length, c->peer_name, c->ep->max_frame);
            if (!(h.flags & (KVC_RPC_FLAG_RESPONSE | KVC_RPC_FLAG_ONEWAY)) && c->state == CS_UP)
                send_error(c, h.request_id, h.method, KVC_RPC_E_TOO_LARGE,
                           "frame of %" PRIu32 " bytes exceeds the limit of %" PRIu32,
                           h.length, c->ep->max_frame);
            conn_close_after_flush(c, "frame too large");
            return;
        }
        if (r < 0) {
            kvc_warn_rl(&rl_bad, "malformed frame header from %s", c->peer_name);
            kvc_rpc_conn_abort(c, "malformed frame header");
            return;
        }
        if (avail - KVC_RPC_HEADER_SIZE < h.length)
            return;
        evbuffer_drain(c->in, KVC_RPC_HEADER_SIZE);
        if (h.length && !(p = evbuffer_pullup(c->in, h.length))) {
            kvc_rpc_conn_abort(c, "out of memory");
            return;
        }
        if (h.flags & KVC_RPC_FLAG_RESPONSE) {
            if (c->state != CS_UP) {
                kvc_rpc_conn_abort(c, "protocol error: frame before HELLO");
                return;
            }
            handle_response(c, &h, p);
        } else {
            handle_request(c, &h, p);
        }
        if (c->state == CS_CLOSED)
            return;
        evbuffer_drain(c->in, h.length);
    }
}

/* ---- socket and TLS I/O -------------------------------------------------*/

static ssize_t
push_vec(gnutls_transport_ptr_t ptr, const giovec_t *iov, int n)
{
    struct msghdr mh = { .msg_iov = (struct iovec *)iov, .msg_iovlen = n };
    return sendmsg((int)(intptr_t)ptr, &mh, MSG_NOSIGNAL);
}

static void
conn_kick_write(struct kvc_rpc_conn *c)
{
    if (c->test || c->write_armed || !c->ev_write || c->state == CS_CLOSED)
        return;
    event_add(c->ev_write, NULL);
    c->write_armed = true;
}

static void
conn_unkick_write(struct kvc_rpc_conn *c)
{
    if (c->write_armed) {
        event_del(c->ev_write);
        c->write_armed = false;
    }
}

/* Returns 0 when everything is written or the socket is full, -1 on error
 * (FAIL_REASON set). */
static int
conn_flush(struct kvc_rpc_conn *c)
{
    while (evbuffer_get_length(c->out)) {
        if (c->tls) {
            size_t len = c->tls_send_len;
            if (!len) {
                len = evbuffer_get_length(c->out);
                if (len > 16384)
                    len = 16384;
            }
            const uint8_t *p = evbuffer_pullup(c->out, len);
            ssize_t n = gnutls_record_send(c->tls, p, len);
            if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
                c->tls_send_len = len;
                return 0;
            }
            c->tls_send_len = 0;
            if (n < 0) {
                snprintf(c->fail_reason, sizeof c->fail_reason, "TLS send: %s",
                         gnutls_strerror((int)n));
                return -1;
            }
            evbuffer_drain(c->out, (size_t)n);
        } else {
            struct evbuffer_iovec v[16];
            struct iovec iov[16];
            int i, nv = evbuffer_peek(c->out, -1, NULL, v, 16);
            struct msghdr mh = { .msg_iov = iov, .msg_iovlen = nv > 16 ? 16 : nv };
            for (i = 0; i < (int)mh.msg_iovlen; i++) {
                iov[i].iov_base = v[i].iov_base;
                iov[i].iov_len = v[i].iov_len;
            }
            ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR)
                    return 0;
                snprintf(c->fail_reason, sizeof c->fail_reason, "send: %s", strerror(errno));
                return -1;
            }
            evbuffer_drain(c->out, (size_t)n);
        }
    }
    return 0;
}

static void
conn_resume_read(struct kvc_rpc_conn *c)
{
    if (c->read_paused && c->state != CS_CLOSING && c->state != CS_CLOSED) {
        c->read_paused = false;
        event_add(c->ev_read, NULL);
        event_active(c->ev_read, EV_READ, 0);     /* TLS may hold decrypted bytes */
    }
}

static void
do_handshake(struct kvc_rpc_conn *c)
{
    char reason[sizeof c->fail_reason + 64];
    int r = gnutls_handshake(c->tls);

    if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
        if (gnutls_record_get_direction(c->tls))
            conn_kick_write(c);
        else
            conn_unkick_write(c);
        return;
    }
    if (r < 0) {
        if (c->fail_reason[0]) {
            snprintf(reason, sizeof reason, "%s", c->fail_reason);
        } else if (r == GNUTLS_E_FATAL_ALERT_RECEIVED || r == GNUTLS_E_WARNING_ALERT_RECEIVED) {
            snprintf(reason, sizeof reason,
                     "TLS handshake refused by peer (alert: %s); our certificate thumbprint is %s",
                     gnutls_alert_get_name(gnutls_alert_get(c->tls)), c->tlsctx->thumbprint);
        } else {
            snprintf(reason, sizeof reason,
                     "TLS handshake failed: %s (if the peer refused us: our certificate thumbprint is %s)",
                     gnutls_strerror(r), c->tlsctx->thumbprint);
        }
        gnutls_alert_send_appropriate(c->tls, r);
        if (!c->dialing)        /* a dialing client reports it to its caller */
            kvc_warn("refused %s: %s", c->peer_name, reason);
        kvc_rpc_conn_abort(c, reason);
        return;
    }
    conn_unkick_write(c);
    if (evbuffer_get_length(c->out))
        conn_kick_write(c);
    conn_established(c);
}

/* Reads what the socket has.  Returns 1 if data arrived, 0 if none yet,
 * -1 on EOF or error (FAIL_REASON set). */
static int
conn_read(struct kvc_rpc_conn *c)
{
    int got = 0;

    for (;;) {
        struct evbuffer_iovec v;
        ssize_t n;

        if (evbuffer_reserve_space(c->in, READ_CHUNK, &v, 1) < 1) {
            snprintf(c->fail_reason, sizeof c->fail_reason, "out of memory");
            return -1;
        }
        if (c->tls) {
            n = gnutls_record_recv(c->tls, v.iov_base, v.iov_len);
            if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
                return got;
            if (n == GNUTLS_E_PREMATURE_TERMINATION)
                n = 0;
            if (n < 0) {
                if (n == GNUTLS_E_FATAL_ALERT_RECEIVED)
                    snprintf(c->fail_reason, sizeof c->fail_reason,
                             "connection refused by peer (TLS alert: %s); our certificate thumbprint is %s",
                             gnutls_alert_get_name(gnutls_alert_get(c->tls)), c->tlsctx->thumbprint);
                else
                    snprintf(c->fail_reason, sizeof c->fail_reason, "TLS receive: %s",
                             gnutls_strerror((int)n));
                return -1;
            }
        } else {
            n = read(c->fd, v.iov_base, v.iov_len);
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return got;
            if (n < 0) {
                snprintf(c->fail_reason, sizeof c->fail_reason, "receive: %s", strerror(errno));
                return -1;
            }
        }
        if (n == 0) {
            size_t left = evbuffer_get_length(c->in);
            if (left)
                snprintf(c->fail_reason, sizeof c->fail_reason,
                         "peer closed mid-frame (%zu bytes of an incomplete frame)", left);
            else
                snprintf(c->fail_reason, sizeof c->fail_reason, "peer closed the connection");
            return -1;
        }
        v.iov_len = (size_t)n;
        evbuffer_commit_space(c->in, &v, 1);
        got = 1;
        /* Plain sockets: one read per event keeps connections fair.  TLS:
         * gnutls may hold a decrypted record the fd does not announce. */
        if (!c->tls)
            return got;
        if (evbuffer_get_length(c->in) >= 4 * READ_CHUNK) {
            if (gnutls_record_check_pending(c->tls))
                event_active(c->ev_read, EV_READ, 0);
            return got;
        }
    }
}

static void
on_read(evutil_socket_t fd, short what, void *arg)
{
    struct kvc_rpc_conn *c = arg;

    c->refs++;
    if (c->state == CS_HANDSHAKE) {
        do_handshake(c);
    } else if (c->state == CS_UP || c->state == CS_HELLO) {
        int r = conn_read(c);
        if (r > 0)
            conn_process_input(c);
        if (r < 0 && c->state != CS_CLOSED) {
            char reason[sizeof c->fail_reason];
            memcpy(reason, c->fail_reason, sizeof reason);
            if (c->state == CS_UP && evbuffer_get_length(c->in))
                kvc_warn_rl(&rl_bad, "%s: %s", c->peer_name, reason);
            kvc_rpc_conn_abort(c, reason);
        }
        if (c->state != CS_CLOSED && !c->read_paused
            && evbuffer_get_length(c->out) > OUT_HIGH_WATER(c)) {
            /* The peer does not read its replies: stop reading its requests. */
            c->read_paused = true;
            event_del(c->ev_read);
        }
    }
    kvc_rpc_conn_unref(c);
}

static void
on_write(evutil_socket_t fd, short what, void *arg)
{
    struct kvc_rpc_conn *c = arg;

    c->refs++;
    if (c->state == CS_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err) {
            char reason[160];
            snprintf(reason, sizeof reason, "connect: %s", strerror(err));
            kvc_rpc_conn_abort(c, reason);
        } else {
            conn_unkick_write(c);
            if (c->tls) {
                c->state = CS_HANDSHAKE;
                do_handshake(c);
            } else {
                conn_established(c);
            }
        }
    } else if (c->state == CS_HANDSHAKE) {
        do_handshake(c);
    } else if (c->state != CS_CLOSED) {
        if (conn_flush(c) < 0) {
            /* The peer is gone; what it sent before going (a last request,
             * half a frame) is still worth reading and tells why. */
            char reason[sizeof c->fail_reason];
            memcpy(reason, c->fail_reason, sizeof reason);
            c->fail_reason[0] = 0;
            while (c->state == CS_UP && conn_read(c) > 0)
                conn_process_input(c);
            if (c->state != CS_CLOSED) {
                if (c->fail_reason[0])
                    memcpy(reason, c->fail_reason, sizeof reason);
                kvc_rpc_conn_abort(c, reason);
            }
        } else if (evbuffer_get_length(c->out) == 0) {
            conn_unkick_write(c);
            if (c->state == CS_CLOSING) {
                char reason[sizeof c->fail_reason];
                memcpy(reason, c->fail_reason, sizeof reason);
                kvc_rpc_conn_abort(c, reason);
            } else {
                conn_resume_read(c);
            }
        }
    }
    kvc_rpc_conn_unref(c);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct kvc_rpc_conn *c = arg;
    char reason[sizeof c->fail_reason + 64];

    c->refs++;
    if (c->state == CS_CLOSING)
        snprintf(reason, sizeof reason, "%s", c->fail_reason);
    else
        snprintf(reason, sizeof reason, "%s timed out",
                 c->state == CS_CONNECTING ? "connect"
                 : c->state == CS_HANDSHAKE ? "TLS handshake" : "waiting for HELLO");
    if (c->state != CS_UP && c->state != CS_CLOSED)
        kvc_rpc_conn_abort(c, reason);
    kvc_rpc_conn_unref(c);
}

/* ---- connection life cycle ---------------------------------------------*/

static void
conn_established(struct kvc_rpc_conn *c)
{
    if (c->dialing && c->state != CS_UP) {
        /* Wait for the peer's HELLO: it proves the peer accepted us. */
        c->state = CS_HELLO;
        return;
    }
    if (c->ev_timer)
        evtimer_del(c->ev_timer);
    if (!c->dialing) {
        c->state = CS_UP;
        if (write_frame(c, KVC_RPC_FLAG_ONEWAY, KVC_RPC_METHOD_HELLO, 0, NULL, NULL, 0) < 0) {
            kvc_rpc_conn_abort(c, "out of memory");
            return;
        }
    }
    c->state = CS_UP;
    kvc_dbg("connection %s %s is up", c->dialing ? "to" : "from", c->peer_name);
    if (c->ep->conn_up)
        c->ep->conn_up(c->ep, c);
    if (c->state != CS_UP)
        return;
    c->announced = true;
    if (c->ep->opts.on_connect)
        c->ep->opts.on_connect(c, c->ep->opts.cb_arg);
    /* TLS may already hold application data that arrived with the last
     * handshake flight; the socket will not announce it again. */
    if (c->state == CS_UP && c->ev_read)
        event_active(c->ev_read, EV_READ, 0);
}

static void
format_peer(struct kvc_rpc_conn *c, const struct sockaddr *sa, socklen_t len)
{
    char host[INET6_ADDRSTRLEN] = "?";

    if (c->has_cred) {
        snprintf(c->peer_name, sizeof c->peer_name, "unix:pid=%d,uid=%u",
                 (int)c->cred.pid, (unsigned)c->cred.uid);
    } else if (sa && sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        snprintf(c->peer_name, sizeof c->peer_name, "%s:%u", host, ntohs(in->sin_port));
    } else if (sa && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        snprintf(c->peer_name, sizeof c->peer_name, "[%s]:%u", host, ntohs(in6->sin6_port));
    } else if (sa && sa->sa_family == AF_UNIX) {
        const struct sockaddr_un *un = (const void *)sa;
        snprintf(c->peer_name, sizeof c->peer_name, "unix:%.80s", un->sun_path);
    } else {
        snprintf(c->peer_name, sizeof c->peer_name, "%s", c->test ? "test" : "?");
    }
}

static struct kvc_rpc_conn *
conn_alloc(struct kvc_rpc_ep *ep)
{
    struct kvc_rpc_conn *c = calloc(1, sizeof *c);

    if (!c)
        return NULL;
    c->refs = 1;
    c->fd = -1;
    c->ep = ep;
    if (!(c->in = evbuffer_new()) || !(c->out = evbuffer_new())) {
        if (c->in)
            evbuffer_free(c->in);
        free(c);
        return NULL;
    }
    kvc_rpc_ep_ref(ep);
    return c;
}

struct kvc_rpc_conn *
kvc_rpc_conn_new(struct kvc_rpc_ep *ep, int fd, bool dialing, struct kvc_rpc_tlsctx *tls,
                 const struct sockaddr *peer, socklen_t peerlen)
{
    struct kvc_rpc_conn *c = conn_alloc(ep);

    if (!c) {
        close(fd);
        return NULL;
    }
    c->fd = fd;
    c->dialing = dialing;
    c->tlsctx = tls;
    c->state = dialing ? CS_CONNECTING : tls ? CS_HANDSHAKE : CS_UP;
    if (peer && (peer->sa_family == AF_INET || peer->sa_family == AF_INET6)) {
        /* Small request/response frames must not wait for Nagle; a peer
         * that vanishes without a FIN (host down, cable cut) is found by
         * keepalive after about a minute even if no call is out. */
        int one = 1, idle = 30, intvl = 10, cnt = 3;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
    }
    if (!tls) {
        socklen_t len = sizeof c->cred;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->cred, &len) == 0 && c->cred.pid > 0)
            c->has_cred = true;
    }
    format_peer(c, peer, peerlen);
    if (!(c->ev_read = event_new(ep->base, fd, EV_READ | EV_PERSIST, on_read, c))
        || !(c->ev_write = event_new(ep->base, fd, EV_WRITE | EV_PERSIST, on_write, c))
        || !(c->ev_timer = evtimer_new(ep->base, on_timer, c)))
        goto fail;
    if (tls) {
        if (gnutls_init(&c->tls, (dialing ? GNUTLS_CLIENT : GNUTLS_SERVER) | GNUTLS_NONBLOCK) < 0) {
            c->tls = NULL;
            goto fail;
        }
        if (gnutls_set_default_priority(c->tls) < 0
            || gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, tls->cred) < 0)
            goto fail;
        if (!dialing)
            gnutls_certificate_server_set_request(c->tls, GNUTLS_CERT_REQUIRE);
        gnutls_session_set_ptr(c->tls, c);
        gnutls_transport_set_int(c->tls, fd);
        gnutls_transport_set_vec_push_function(c->tls, push_vec);
    }
    return c;
fail:
    kvc_rpc_conn_abort(c, "out of memory");
    kvc_rpc_conn_unref(c);
    return NULL;
}

void
kvc_rpc_conn_start(struct kvc_rpc_conn *c)
{
    unsigned ms = c->dialing && c->ep->opts.connect_timeout_ms
                  ? c->ep->opts.connect_timeout_ms : HANDSHAKE_TIMEOUT_MS;
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

    event_add(c->ev_read, NULL);
    if (c->dialing) {
        evtimer_add(c->ev_timer, &tv);
        conn_kick_write(c);
    } else if (c->tls) {
        evtimer_add(c->ev_timer, &tv);
    } else {
        c->refs++;
        conn_established(c);
        kvc_rpc_conn_unref(c);
    }
}

void
kvc_rpc_conn_abort(struct kvc_rpc_conn *c, const char *reason)
{
    struct kvc_rpc_out_call *list = NULL, *oc;
    struct kvc_rpc_call *call;
    bool was_up = c->announced;
    char msg[512];
    size_t i;

    if (c->state == CS_CLOSED)
        return;
    c->state = CS_CLOSED;
    c->refs++;
    if (c->ev_read)
        event_del(c->ev_read);
    if (c->ev_write)
        event_del(c->ev_write);
    if (c->ev_timer)
        event_del(c->ev_timer);
    c->write_armed = false;
    if (c->fd >= 0) {
        if (c->tls && was_up)
            gnutls_bye(c->tls, GNUTLS_SHUT_WR);   /* best effort, non-blocking */
        close(c->fd);
        c->fd = -1;
    }
    for (call = c->calls; call; call = call->next)
        call->conn = NULL;
    c->calls = NULL;
    for (i = 0; i < c->nbuckets; i++) {
        while ((oc = c->buckets[i])) {
            c->buckets[i] = oc->next;
            oc->next = list;
            oc->conn = NULL;
            list = oc;
        }
    }
    c->ncalls = 0;
    if (was_up)
        kvc_info("connection %s %s closed: %s", c->dialing ? "to" : "from", c->peer_name, reason);
    else
        kvc_dbg("connection %s %s failed: %s", c->dialing ? "to" : "from", c->peer_name, reason);
    if (c->ep->conn_closed)
        c->ep->conn_closed(c->ep, c, reason, was_up);
    snprintf(msg, sizeof msg, "connection to %s lost: %s", c->peer_name, reason);
    while ((oc = list)) {
        list = oc->next;
        oc->next = NULL;
        kvc_rpc_out_call_finish(oc, c->ep->dead ? KVC_RPC_E_CANCELLED : KVC_RPC_E_DISCONNECTED,
                                c->ep->dead ? "endpoint shut down" : msg, NULL);
    }
    if (was_up && c->ep->opts.on_disconnect)
        c->ep->opts.on_disconnect(c, reason, c->ep->opts.cb_arg);
    kvc_rpc_conn_unref(c);
}

void
kvc_rpc_conn_unref(struct kvc_rpc_conn *c)
{
    if (!c || --c->refs > 0)
        return;
    if (c->ev_read)
        event_free(c->ev_read);
    if (c->ev_write)
        event_free(c->ev_write);
    if (c->ev_timer)
        event_free(c->ev_timer);
    if (c->tls)
        gnutls_deinit(c->tls);
    if (c->fd >= 0)
        close(c->fd);
    evbuffer_free(c->in);
    evbuffer_free(c->out);
    free(c->buckets);
    kvc_rpc_ep_unref(c->ep);
    free(c);
}

void
kvc_rpc_conn_close(struct kvc_rpc_conn *c)
{
    if (c)
        kvc_rpc_conn_abort(c, "closed locally");
}

int
kvc_rpc_conn_peer_cred(const struct kvc_rpc_conn *c, uid_t *uid, pid_t *pid, gid_t *gid)
{
    if (!c || c->state == CS_CLOSED)
        return -ENOTCONN;
    if (!c->has_cred)
        return -ENOTSUP;
    if (uid)
        *uid = c->cred.uid;
    if (pid)
        *pid = c->cred.pid;
    if (gid)
        *gid = c->cred.gid;
    return 0;
}

const char *
kvc_rpc_conn_peer_thumbprint(const struct kvc_rpc_conn *c)
{
    return c && c->has_thumbprint ? c->peer_thumbprint : NULL;
}

const char *
kvc_rpc_conn_peer_name(const struct kvc_rpc_conn *c)
{
    return c ? c->peer_name : "?";
}

void
kvc_rpc_conn_set_data(struct kvc_rpc_conn *c, void *data)
{
    c->data = data;
}

void *
kvc_rpc_conn_get_data(const struct kvc_rpc_conn *c)
{
    return c->data;
}

/* ---- test hooks ------------------------------------------------------*/

struct test_ep {
    struct kvc_rpc_ep ep;
};

static void
test_ep_destroy(struct kvc_rpc_ep *ep)
{
    free(ep);
}

int
kvc_rpc_test_conn_new(struct event_base *base, const struct kvc_rpc_opts *opts,
                      struct kvc_rpc_conn **out)
{
    struct test_ep *t = calloc(1, sizeof *t);
    struct kvc_rpc_conn *c;
    int r;

    *out = NULL;
    if (!t)
        return -ENOMEM;
    t->ep.destroy = test_ep_destroy;
    if ((r = kvc_rpc_ep_init(&t->ep, base, opts)) < 0) {
        free(t);
        return r;
    }
    c = conn_alloc(&t->ep);
    kvc_rpc_ep_unref(&t->ep);           /* the connection holds it now */
    if (!c)
        return -ENOMEM;
    c->test = true;
    snprintf(c->peer_name, sizeof c->peer_name, "test");
    c->state = CS_UP;
    c->announced = true;
    *out = c;
    return 0;
}

bool
kvc_rpc_test_conn_feed(struct kvc_rpc_conn *c, const void *data, size_t len)
{
    if (c->state == CS_CLOSED)
        return false;
    evbuffer_add(c->in, data, len);
    c->refs++;
    conn_process_input(c);
    bool alive = c->state != CS_CLOSED;
    kvc_rpc_conn_unref(c);
    return alive;
}

struct evbuffer *
kvc_rpc_test_conn_output(struct kvc_rpc_conn *c)
{
    return c->out;
}

void
kvc_rpc_test_conn_free(struct kvc_rpc_conn *c)
{
    if (!c)
        return;
    kvc_rpc_conn_abort(c, "test done");
    kvc_rpc_conn_unref(c);
}
