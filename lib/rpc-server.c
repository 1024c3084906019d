/* RPC servers: listeners (unix and TLS-on-TCP) and their connections. */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/listener.h>

#include "log.h"
#include "rpc-int.h"

KVC_LOG_MODULE(rpc);

struct listener {
    struct kvc_rpc_server *srv;
    struct evconnlistener *l;
    struct kvc_rpc_tlsctx *tls;         /* NULL: unix socket */
    char *unix_path;
    struct listener *next;
};

struct conn_node {
    struct kvc_rpc_conn *conn;
    struct conn_node *next, *prev;
};

struct kvc_rpc_server {
    struct kvc_rpc_ep ep;               /* first */
    struct listener *listeners;
    struct conn_node *conns;
    uint16_t port;
};

static void
server_destroy(struct kvc_rpc_ep *ep)
{
    struct kvc_rpc_server *srv = (struct kvc_rpc_server *)ep;
    struct listener *l;

    while ((l = srv->listeners)) {
        srv->listeners = l->next;
        if (l->l)
            evconnlistener_free(l->l);
        kvc_rpc_tlsctx_free(l->tls);
        free(l->unix_path);
        free(l);
    }
    free(srv);
}

static void
server_conn_closed(struct kvc_rpc_ep *ep, struct kvc_rpc_conn *c, const char *reason,
                   bool was_up)
{
    struct kvc_rpc_server *srv = (struct kvc_rpc_server *)ep;
    struct conn_node *n;

    for (n = srv->conns; n; n = n->next) {
        if (n->conn != c)
            continue;
        if (n->prev)
            n->prev->next = n->next;
        else
            srv->conns = n->next;
        if (n->next)
            n->next->prev = n->prev;
        free(n);
        kvc_rpc_conn_unref(c);          /* the server's reference */
        return;
    }
}

int
kvc_rpc_server_new(struct event_base *base, const struct kvc_rpc_opts *opts,
                   struct kvc_rpc_server **out)
{
    struct kvc_rpc_server *srv = calloc(1, sizeof *srv);
    int r;

    *out = NULL;
    if (!srv)
        return -ENOMEM;
    srv->ep.destroy = server_destroy;
    srv->ep.conn_closed = server_conn_closed;
    if ((r = kvc_rpc_ep_init(&srv->ep, base, opts)) < 0) {
        free(srv);
        return r;
    }
    *out = srv;
    return 0;
}

static void
on_accept(struct evconnlistener *el, evutil_socket_t fd, struct sockaddr *sa,
          int salen, void *arg)
{
    struct listener *l = arg;
    struct kvc_rpc_server *srv = l->srv;
    struct conn_node *n = calloc(1, sizeof *n);
    struct kvc_rpc_conn *c;

    if (!n) {
        close(fd);
        return;
    }
    if (!(c = kvc_rpc_conn_new(&srv->ep, fd, false, l->tls, sa, (socklen_t)salen))) {
        free(n);
        return;
    }
    n->conn = c;
    n->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = n;
    srv->conns = n;
    kvc_rpc_conn_start(c);
}

static void
on_accept_error(struct evconnlistener *el, void *arg)
{
    static struct kvc_ratelimit rl = KVC_RATELIMIT_INIT(5, 10);
    kvc_warn_rl(&rl, "accept: %s", strerror(errno));
}

static int
add_listener(struct kvc_rpc_server *srv, int fd, struct kvc_rpc_tlsctx *tls,
             const char *unix_path)
{
    struct listener *l = calloc(1, sizeof *l);

    if (!l || (unix_path && !(l->unix_path = strdup(unix_path)))) {
        free(l);
        close(fd);
        return -ENOMEM;
    }
    l->srv = srv;
    l->tls = tls;
    l->l = evconnlistener_new(srv->ep.base, on_accept, l,
                              LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
    if (!l->l) {
        free(l->unix_path);
        free(l);
        close(fd);
        return -ENOMEM;
    }
    evconnlistener_set_error_cb(l->l, on_accept_error);
    l->next = srv->listeners;
    srv->listeners = l;
    return 0;
}

int
kvc_rpc_server_listen_unix(struct kvc_rpc_server *srv, const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct stat st;
    int fd, r;

    if (!path || strlen(path) >= sizeof sa.sun_path)
        return -ENAMETOOLONG;
    strcpy(sa.sun_path, path);
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            kvc_err("%s exists and is not a socket", path);
            return -EEXIST;
        }
        unlink(path);                   /* stale socket of a previous run */
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 128) < 0) {
        r = -errno;
        kvc_err("listen on %s: %s", path, strerror(-r));
        close(fd);
        return r;
    }
    if ((r = add_listener(srv, fd, NULL, path)) < 0) {
        unlink(path);
        return r;
    }
    kvc_info("listening on unix:%s", path);
    return 0;
}

int
kvc_rpc_server_listen_tcp(struct kvc_rpc_server *srv, const char *addr, uint16_t port,
                          const struct kvc_rpc_tls *tls)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
    struct addrinfo *ai = NULL;
    struct kvc_rpc_tlsctx *t = NULL;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char portstr[8];
    int fd = -1, r, one = 1;

    if ((r = kvc_rpc_tlsctx_new(tls, &t)) < 0)
        return r;
    snprintf(portstr, sizeof portstr, "%u", port);
    if ((r = getaddrinfo(addr, portstr, &hints, &ai)) != 0) {
        kvc_err("listen address %s: %s", addr ? addr : "*", gai_strerror(r));
        r = -EINVAL;
        goto fail;
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        r = -errno;
        goto fail;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 128) < 0
        || getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
        r = -errno;
        kvc_err("listen on %s:%u: %s", addr ? addr : "*", port, strerror(-r));
        goto fail;
    }
    srv->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
    freeaddrinfo(ai);
    ai = NULL;
    r = add_listener(srv, fd, t, NULL);
    fd = -1;
    if (r < 0)
        goto fail;
    kvc_info("listening on %s:%u (TLS, thumbprint %s)", addr ? addr : "*", srv->port,
             t->thumbprint);
    return 0;
fail:
    if (ai)
        freeaddrinfo(ai);
    if (fd >= 0)
        close(fd);
    kvc_rpc_tlsctx_free(t);
    return r;
}

uint16_t
kvc_rpc_server_port(const struct kvc_rpc_server *srv)
{
    return srv->port;
}

void
kvc_rpc_server_free(struct kvc_rpc_server *srv)
{
    struct listener *l;

    if (!srv || srv->ep.dead)
        return;
    srv->ep.dead = true;
    /* Stop accepting now; the listeners' TLS contexts stay until the last
     * connection using them is gone (server_destroy). */
    for (l = srv->listeners; l; l = l->next) {
        evconnlistener_free(l->l);
        l->l = NULL;
        if (l->unix_path)
            unlink(l->unix_path);
    }
    while (srv->conns)
        kvc_rpc_conn_abort(srv->conns->conn, "server shut down");
    kvc_rpc_ep_unref(&srv->ep);
}
