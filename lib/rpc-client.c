/* RPC clients: dialing, the queue of calls waiting for a connection,
 * reconnecting with exponential backoff, and the synchronous call. */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "rpc-int.h"

KVC_LOG_MODULE(rpc);

#define DEFAULT_BACKOFF_INITIAL_MS 100
#define DEFAULT_BACKOFF_MAX_MS     10000

struct kvc_rpc_client {
    struct kvc_rpc_ep ep;               /* first */
    char *host;                         /* TCP */
    uint16_t port;
    char *path;                         /* unix */
    char target[128];                   /* for messages */
    struct kvc_rpc_tlsctx *tls;
    struct kvc_rpc_conn *conn;          /* attempt or connection; we hold a ref */
    bool up;
    bool failed;                        /* gave up: no reconnect */
    struct event *retry;
    unsigned backoff_ms;
    struct kvc_rpc_out_call *qhead, *qtail;
    char last_error[512];
};

static void client_connect(struct kvc_rpc_client *);

static void
queue_add(struct kvc_rpc_client *cl, struct kvc_rpc_out_call *oc)
{
    oc->client = cl;
    oc->next = NULL;
    oc->prev = cl->qtail;
    if (cl->qtail)
        cl->qtail->next = oc;
    else
        cl->qhead = oc;
    cl->qtail = oc;
}

static void
queue_remove(struct kvc_rpc_client *cl, struct kvc_rpc_out_call *oc)
{
    if (oc->prev)
        oc->prev->next = oc->next;
    else
        cl->qhead = oc->next;
    if (oc->next)
        oc->next->prev = oc->prev;
    else
        cl->qtail = oc->prev;
    oc->next = oc->prev = NULL;
    oc->client = NULL;
}

/* Fails every waiting call (callbacks may change the queue). */
static void
fail_queue(struct kvc_rpc_client *cl, int status, const char *msg)
{
    struct kvc_rpc_out_call *oc;

    while ((oc = cl->qhead)) {
        queue_remove(cl, oc);
        kvc_rpc_out_call_finish(oc, status, msg, NULL);
    }
}

void
kvc_rpc_client__timeout(struct kvc_rpc_client *cl, struct kvc_rpc_out_call *oc)
{
    char msg[700];

    queue_remove(cl, oc);
    snprintf(msg, sizeof msg, "not connected to %s within %u ms%s%s", cl->target,
             oc->timeout_ms, cl->last_error[0] ? ": " : "", cl->last_error);
    kvc_rpc_out_call_finish(oc, KVC_RPC_E_TIMEOUT, msg, NULL);
}

static void
schedule_retry(struct kvc_rpc_client *cl)
{
    unsigned max = cl->ep.opts.backoff_max_ms ? cl->ep.opts.backoff_max_ms
                                              : DEFAULT_BACKOFF_MAX_MS;
    unsigned ms = cl->backoff_ms;
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

    kvc_dbg("reconnecting to %s in %u ms", cl->target, ms);
    evtimer_add(cl->retry, &tv);
    cl->backoff_ms = ms >= max / 2 ? max : ms * 2;
}

static void
attempt_failed(struct kvc_rpc_client *cl, const char *reason)
{
    static struct kvc_ratelimit rl = KVC_RATELIMIT_INIT(5, 10);
    char msg[700];

    snprintf(cl->last_error, sizeof cl->last_error, "%s", reason);
    if (cl->ep.dead)
        return;
    if (cl->ep.opts.reconnect) {
        kvc_info_rl(&rl, "%s: %s", cl->target, reason);
        schedule_retry(cl);
        return;
    }
    kvc_warn("%s: %s", cl->target, reason);
    cl->failed = true;
    snprintf(msg, sizeof msg, "cannot connect to %s: %s", cl->target, reason);
    fail_queue(cl, KVC_RPC_E_UNAVAILABLE, msg);
}

static void
client_conn_closed(struct kvc_rpc_ep *ep, struct kvc_rpc_conn *c, const char *reason,
                   bool was_up)
{
    struct kvc_rpc_client *cl = (struct kvc_rpc_client *)ep;

    if (c != cl->conn)
        return;
    cl->conn = NULL;
    cl->up = false;
    kvc_rpc_conn_unref(c);              /* the caller holds its own reference */
    attempt_failed(cl, reason);
}

static void
client_conn_up(struct kvc_rpc_ep *ep, struct kvc_rpc_conn *c)
{
    struct kvc_rpc_client *cl = (struct kvc_rpc_client *)ep;
    struct kvc_rpc_out_call *oc;
    int r;

    cl->up = true;
    cl->last_error[0] = 0;
    cl->backoff_ms = cl->ep.opts.backoff_initial_ms ? cl->ep.opts.backoff_initial_ms
                                                    : DEFAULT_BACKOFF_INITIAL_MS;
    kvc_info("connected to %s", cl->target);
    while ((oc = cl->qhead) && cl->conn == c && cl->up) {
        queue_remove(cl, oc);
        if ((r = kvc_rpc_conn_start_call(c, oc)) < 0)
            kvc_rpc_out_call_finish(oc, KVC_RPC_E_INTERNAL, strerror(-r), NULL);
    }
}

static void
on_retry(evutil_socket_t fd, short what, void *arg)
{
    client_connect(arg);
}

static void
client_destroy(struct kvc_rpc_ep *ep)
{
    struct kvc_rpc_client *cl = (struct kvc_rpc_client *)ep;

    if (cl->retry)
        event_free(cl->retry);
    kvc_rpc_tlsctx_free(cl->tls);
    free(cl->host);
    free(cl->path);
    free(cl);
}

static void
client_connect(struct kvc_rpc_client *cl)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    char reason[300];
    int fd, r;

    if (cl->ep.dead || cl->conn)
        return;
    if (cl->path) {
        struct sockaddr_un *un = (struct sockaddr_un *)&ss;
        memset(un, 0, sizeof *un);
        un->sun_family = AF_UNIX;
        strcpy(un->sun_path, cl->path);     /* length checked at creation */
        sl = sizeof *un;
    } else {
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
        struct addrinfo *ai;
        char portstr[8];
        snprintf(portstr, sizeof portstr, "%u", cl->port);
        if ((r = getaddrinfo(cl->host, portstr, &hints, &ai)) != 0) {
            snprintf(reason, sizeof reason, "resolve %s: %s", cl->host, gai_strerror(r));
            attempt_failed(cl, reason);
            return;
        }
        memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
        sl = ai->ai_addrlen;
        freeaddrinfo(ai);
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(reason, sizeof reason, "socket: %s", strerror(errno));
        attempt_failed(cl, reason);
        return;
    }
    if (connect(fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS) {
        snprintf(reason, sizeof reason, "connect: %s", strerror(errno));
        close(fd);
        attempt_failed(cl, reason);
        return;
    }
    cl->conn = kvc_rpc_conn_new(&cl->ep, fd, true, cl->tls, (struct sockaddr *)&ss, sl);
    if (!cl->conn) {
        attempt_failed(cl, "out of memory");
        return;
    }
    kvc_rpc_conn_start(cl->conn);
}

static int
client_new(struct event_base *base, const struct kvc_rpc_opts *opts,
           struct kvc_rpc_client **out)
{
    struct kvc_rpc_client *cl = calloc(1, sizeof *cl);
    int r;

    if (!cl)
        return -ENOMEM;
    cl->ep.destroy = client_destroy;
    cl->ep.conn_closed = client_conn_closed;
    cl->ep.conn_up = client_conn_up;
    cl->ep.is_client = true;
    if ((r = kvc_rpc_ep_init(&cl->ep, base, opts)) < 0) {
        free(cl);
        return r;
    }
    if (!(cl->retry = evtimer_new(base, on_retry, cl))) {
        kvc_rpc_ep_unref(&cl->ep);
        return -ENOMEM;
    }
    cl->backoff_ms = cl->ep.opts.backoff_initial_ms ? cl->ep.opts.backoff_initial_ms
                                                    : DEFAULT_BACKOFF_INITIAL_MS;
    *out = cl;
    return 0;
}

int
kvc_rpc_client_new_tcp(struct event_base *base, const char *host, uint16_t port,
                       const struct kvc_rpc_tls *tls, const struct kvc_rpc_opts *opts,
                       struct kvc_rpc_client **out)
{
    struct kvc_rpc_client *cl;
    int r;

    *out = NULL;
    if (!host || !port)
        return -EINVAL;
    if ((r = client_new(base, opts, &cl)) < 0)
        return r;
    if ((r = kvc_rpc_tlsctx_new(tls, &cl->tls)) < 0 || !(cl->host = strdup(host))) {
        kvc_rpc_ep_unref(&cl->ep);
        return r < 0 ? r : -ENOMEM;
    }
    cl->port = port;
    snprintf(cl->target, sizeof cl->target, "%s:%u", host, port);
    client_connect(cl);
    *out = cl;
    return 0;
}

int
kvc_rpc_client_new_unix(struct event_base *base, const char *path,
                        const struct kvc_rpc_opts *opts, struct kvc_rpc_client **out)
{
    struct sockaddr_un sa;
    struct kvc_rpc_client *cl;
    int r;

    *out = NULL;
    if (!path || strlen(path) >= sizeof sa.sun_path)
        return -ENAMETOOLONG;
    if ((r = client_new(base, opts, &cl)) < 0)
        return r;
    if (!(cl->path = strdup(path))) {
        kvc_rpc_ep_unref(&cl->ep);
        return -ENOMEM;
    }
    snprintf(cl->target, sizeof cl->target, "unix:%.100s", path);
    client_connect(cl);
    *out = cl;
    return 0;
}

static int
client_submit(struct kvc_rpc_client *cl, struct kvc_rpc_out_call *oc)
{
    int r;

    if (cl->up && cl->conn) {
        r = kvc_rpc_conn_start_call(cl->conn, oc);
        if (r == -ENOTCONN) {
            /* Closing (e.g. after a protocol error): wait for the next
             * connection like any call made while down. */
            queue_add(cl, oc);
            return 0;
        }
        if (r < 0) {
            event_free(oc->timer);
            free(oc->payload);
            free(oc);
        }
        return r;
    }
    if (cl->failed) {
        /* Report it from the loop, never from inside the call. */
        char msg[700];
        struct timeval now = { 0, 0 };
        snprintf(msg, sizeof msg, "cannot connect to %s: %s", cl->target, cl->last_error);
        oc->fail_status = KVC_RPC_E_UNAVAILABLE;
        oc->fail_msg = strdup(msg);
        evtimer_add(oc->timer, &now);
        return 0;
    }
    queue_add(cl, oc);
    return 0;
}

int
kvc_rpc_client_call(struct kvc_rpc_client *cl, uint32_t method, const ProtobufCMessage *req,
                    const ProtobufCMessageDescriptor *rtype, unsigned timeout_ms,
                    kvc_rpc_reply_fn cb, void *arg)
{
    struct kvc_rpc_out_call *oc;
    int r;

    if (!cl || cl->ep.dead)
        return -ENOTCONN;
    if (!(oc = kvc_rpc_out_call_new(cl->ep.base, method, req, rtype, timeout_ms, cb, arg,
                                    cl->ep.max_frame, &r)))
        return r;
    return client_submit(cl, oc);
}

int
kvc_rpc_client_send(struct kvc_rpc_client *cl, uint32_t method, const ProtobufCMessage *msg)
{
    if (!cl || !cl->up)
        return -ENOTCONN;
    return kvc_rpc_conn_send(cl->conn, method, msg);
}

struct kvc_rpc_conn *
kvc_rpc_client_conn(const struct kvc_rpc_client *cl)
{
    return cl && cl->up ? cl->conn : NULL;
}

const char *
kvc_rpc_client_last_error(const struct kvc_rpc_client *cl)
{
    return cl->last_error;
}

void
kvc_rpc_client_free(struct kvc_rpc_client *cl)
{
    if (!cl || cl->ep.dead)
        return;
    cl->ep.dead = true;
    evtimer_del(cl->retry);
    if (cl->conn)
        kvc_rpc_conn_abort(cl->conn, "client shut down");
    fail_queue(cl, KVC_RPC_E_CANCELLED, "client shut down");
    kvc_rpc_ep_unref(&cl->ep);
}

struct sync_state {
    bool done;
    int status;
    char *error;
};

static void
sync_done(int status, const char *error, const ProtobufCMessage *resp, void *arg)
{
    struct sync_state *s = arg;

    s->done = true;
    s->status = status;
    if (status != KVC_RPC_OK)
        s->error = strdup(error);
}

int
kvc_rpc_call_sync(struct kvc_rpc_client *cl, uint32_t method, const ProtobufCMessage *req,
                  const ProtobufCMessageDescriptor *rtype, unsigned timeout_ms,
                  ProtobufCMessage **resp, char **error)
{
    struct sync_state s = { false, 0, NULL };
    ProtobufCMessage *kept = NULL;
    struct kvc_rpc_out_call *oc;
    int r;

    if (resp)
        *resp = NULL;
    if (error)
        *error = NULL;
    if (!cl || cl->ep.dead) {
        s.status = KVC_RPC_E_CANCELLED;
        s.error = strdup("client shut down");
        goto out;
    }
    /* libevent refuses to run a loop inside itself; find out now rather
     * than wait forever (this runs whatever is ready, as the wait would). */
    if (event_base_loop(cl->ep.base, EVLOOP_NONBLOCK) < 0) {
        kvc_err("kvc_rpc_call_sync called from inside the event loop");
        s.status = KVC_RPC_E_INTERNAL;
        s.error = strdup("synchronous call from inside the event loop");
        goto out;
    }
    oc = kvc_rpc_out_call_new(cl->ep.base, method, req, rtype, timeout_ms, sync_done, &s,
                              cl->ep.max_frame, &r);
    if (!oc || (oc->keep = &kept, r = client_submit(cl, oc)) < 0) {
        s.status = r == -EMSGSIZE ? KVC_RPC_E_TOO_LARGE : KVC_RPC_E_INTERNAL;
        s.error = strdup(strerror(-r));
        goto out;
    }
    while (!s.done)
        event_base_loop(cl->ep.base, EVLOOP_ONCE);
out:
    if (resp)
        *resp = kept;
    else if (kept)
        protobuf_c_message_free_unpacked(kept, NULL);
    if (error)
        *error = s.error;
    else
        free(s.error);
    return s.status;
}
