/* Unix-socket server for vmx's control messages, speaking the RPC framing of
 * lib/rpc.h (see vmx_ctl.h for why it lives here for now). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "lib/log.h"
#include "lib/rpc.h"
#include "rpc.pb-c.h"
#include "vmkernel-kvm/vmx_ctl.h"

KVC_LOG_MODULE(ctl);

#define CTL_MAX_FRAME (1u << 20)
#define CTL_MAX_CONNS 16

struct conn {
    struct vmx_ctl *srv;
    struct bufferevent *bev;
    struct conn *next;
    uid_t uid;
    pid_t pid;
    unsigned calls;             /* calls not yet answered (deferred replies) */
    bool dead;                  /* peer gone; freed once calls reaches 0 */
};

struct vmx_ctl {
    struct event_base *base;
    struct evconnlistener *lis;
    const struct vmx_ctl_method *methods;
    size_t n;
    void *arg;
    struct conn *conns;
    unsigned nconns;
    char path[108];
};

struct vmx_ctl_call {
    struct conn *c;
    uint32_t method;
    uint64_t id;
    const struct vmx_ctl_method *m;
};

static void conn_free(struct conn *c)
{
    struct vmx_ctl *s = c->srv;
    if (c->calls) {
        /* A handler still holds a call on it (a deferred reply): keep the
         * struct until that reply, which is then dropped. */
        if (!c->dead) {
            c->dead = true;
            bufferevent_disable(c->bev, EV_READ | EV_WRITE);
        }
        return;
    }
    for (struct conn **pp = &s->conns; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    s->nconns--;
    bufferevent_free(c->bev);
    free(c);
}

static void send_frame(struct conn *c, uint8_t flags, uint32_t method, uint64_t id,
                       const ProtobufCMessage *msg)
{
    size_t len = msg ? protobuf_c_message_get_packed_size(msg) : 0;
    uint8_t hdr[KVC_RPC_HEADER_SIZE];
    struct kvc_rpc_header h = { .flags = flags, .method = method, .request_id = id,
                                .length = (uint32_t)len };
    kvc_rpc_header_encode(&h, hdr);
    uint8_t *buf = len ? malloc(len) : NULL;
    if (len && !buf)
        return;
    if (len)
        protobuf_c_message_pack(msg, buf);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evbuffer_add(out, hdr, sizeof(hdr));
    if (len)
        evbuffer_add(out, buf, len);
    free(buf);
}

static void send_error(struct conn *c, uint32_t method, uint64_t id, int status, const char *msg)
{
    Kvc__Rpc__Error e = KVC__RPC__ERROR__INIT;
    e.code = (uint32_t)status;
    e.message = (char *)msg;
    send_frame(c, KVC_RPC_FLAG_RESPONSE | KVC_RPC_FLAG_ERROR, method, id, &e.base);
}

static void call_done(struct vmx_ctl_call *call)
{
    struct conn *c = call->c;
    free(call);
    if (--c->calls == 0 && c->dead)
        conn_free(c);
}

int vmx_ctl_reply(struct vmx_ctl_call *call, const ProtobufCMessage *resp)
{
    if (!call->c->dead)
        send_frame(call->c, KVC_RPC_FLAG_RESPONSE, call->method, call->id, resp);
    call_done(call);
    return 0;
}

int vmx_ctl_reply_error(struct vmx_ctl_call *call, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (!call->c->dead)
        send_error(call->c, call->method, call->id, status, msg);
    call_done(call);
    return 0;
}

static void dispatch(struct conn *c, const struct kvc_rpc_header *h, const uint8_t *payload)
{
    struct vmx_ctl *s = c->srv;
    if (h->flags & (KVC_RPC_FLAG_RESPONSE | KVC_RPC_FLAG_ONEWAY))
        return;     /* vmx calls nobody and takes no one-way messages */
    if (h->method == KVC_RPC_METHOD_PING) {
        Kvc__Rpc__Ping *p = kvc__rpc__ping__unpack(NULL, h->length, payload);
        if (!p) {
            send_error(c, h->method, h->request_id, KVC_RPC_E_BAD_REQUEST, "undecodable Ping");
            return;
        }
        send_frame(c, KVC_RPC_FLAG_RESPONSE, h->method, h->request_id, &p->base);
        kvc__rpc__ping__free_unpacked(p, NULL);
        return;
    }
    const struct vmx_ctl_method *m = NULL;
    for (size_t i = 0; i < s->n; i++)
        if (s->methods[i].id == h->method)
            m = &s->methods[i];
    if (!m) {
        char msg[64];
        snprintf(msg, sizeof(msg), "unknown method 0x%x", h->method);
        kvc_warn("%s", msg);
        send_error(c, h->method, h->request_id, KVC_RPC_E_UNKNOWN_METHOD, msg);
        return;
    }
    ProtobufCMessage *req = NULL;
    if (m->request) {
        req = protobuf_c_message_unpack(m->request, NULL, h->length, payload);
        if (!req) {
            send_error(c, h->method, h->request_id, KVC_RPC_E_BAD_REQUEST, "undecodable request");
            return;
        }
    }
    struct vmx_ctl_call *call = calloc(1, sizeof(*call));
    if (!call) {
        send_error(c, h->method, h->request_id, KVC_RPC_E_INTERNAL, "out of memory");
    } else {
        call->c = c;
        call->method = h->method;
        call->id = h->request_id;
        call->m = m;
        c->calls++;
        kvc_dbg("%s from pid %d", m->name, (int)c->pid);
        m->handler(call, req, s->arg);
    }
    if (req)
        protobuf_c_message_free_unpacked(req, NULL);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        uint8_t hdr[KVC_RPC_HEADER_SIZE];
        if (evbuffer_copyout(in, hdr, sizeof(hdr)) < (ssize_t)sizeof(hdr))
            return;
        struct kvc_rpc_header h;
        int rc = kvc_rpc_header_decode(hdr, sizeof(hdr), CTL_MAX_FRAME, &h);
        if (rc == -EMSGSIZE) {
            send_error(c, h.method, h.request_id, KVC_RPC_E_TOO_LARGE, "frame too large");
            kvc_warn("frame of %u bytes from pid %d: closing", h.length, (int)c->pid);
            bufferevent_disable(bev, EV_READ);
            return;
        }
        if (rc < 0) {
            kvc_warn("malformed frame header from pid %d: closing", (int)c->pid);
            conn_free(c);
            return;
        }
        if (evbuffer_get_length(in) < sizeof(hdr) + h.length)
            return;
        evbuffer_drain(in, sizeof(hdr));
        uint8_t *payload = h.length ? malloc(h.length) : NULL;
        if (h.length && !payload) {
            conn_free(c);
            return;
        }
        evbuffer_remove(in, payload, h.length);
        dispatch(c, &h, payload);
        free(payload);
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        conn_free(arg);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    struct vmx_ctl *s = arg;
    (void)l; (void)sa; (void)salen;
    struct ucred cr;
    socklen_t crl = sizeof(cr);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crl) < 0
        || (cr.uid != 0 && cr.uid != getuid()) || s->nconns >= CTL_MAX_CONNS) {
        kvc_warn("refused control connection (uid %d, %u open)", (int)cr.uid, s->nconns);
        close(fd);
        return;
    }
    struct conn *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return;
    }
    c->srv = s;
    c->uid = cr.uid;
    c->pid = cr.pid;
    c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) {
        close(fd);
        free(c);
        return;
    }
    bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    c->next = s->conns;
    s->conns = c;
    s->nconns++;
    /* The transport's handshake (lib/rpc.h): an empty one-way HELLO says
     * the peer was accepted, so lib/rpc clients count the connection up. */
    send_frame(c, KVC_RPC_FLAG_ONEWAY, 0x0002, 0, NULL);
}

int vmx_ctl_listen(struct event_base *base, const char *path, const struct vmx_ctl_method *methods,
                   size_t n, void *arg, struct vmx_ctl **out)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(sun.sun_path))
        return -ENAMETOOLONG;
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    struct vmx_ctl *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->base = base;
    s->methods = methods;
    s->n = n;
    s->arg = arg;
    snprintf(s->path, sizeof(s->path), "%s", path);
    unlink(path);
    s->lis = evconnlistener_new_bind(base, on_accept, s,
                                     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16,
                                     (struct sockaddr *)&sun, sizeof(sun));
    if (!s->lis) {
        int e = errno ? -errno : -EIO;
        free(s);
        return e;
    }
    chmod(path, 0600);
    *out = s;
    return 0;
}

void vmx_ctl_flush(struct vmx_ctl *s)
{
    if (!s)
        return;
    for (struct conn *c = s->conns; c; c = c->next) {
        int fd = bufferevent_getfd(c->bev);
        struct evbuffer *out = bufferevent_get_output(c->bev);
        int fl = fcntl(fd, F_GETFL);
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
        while (evbuffer_get_length(out) > 0)
            if (evbuffer_write(out, fd) <= 0)
                break;
    }
}

void vmx_ctl_free(struct vmx_ctl *s)
{
    if (!s)
        return;
    while (s->conns) {
        s->conns->calls = 0;    /* deferred replies were answered or dropped by now */
        conn_free(s->conns);
    }
    if (s->lis)
        evconnlistener_free(s->lis);
    unlink(s->path);
    free(s);
}
