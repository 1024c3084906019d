/* The port socket: where a running vmx asks vmkd for its vSwitch port
 * (docs/vmkd.md, "A running VM gets its port back").
 *
 * A vmx gets its port at spawn (--net-fds) with a link, a unix socket whose
 * other end the port holds.  When vmkd goes away the link closes; vmx takes
 * its adapter's link down and connects here (STATE-DIR/port.sock) until a
 * vmkd answers.  A restarted vmkd has made a port with the same port group
 * and MAC for every VM it re-adopted, and hands it over:
 *
 *   vmx  -> vmkd   "KVC-PORT 1 <vm-id>\n"             one line, at most 127 bytes
 *   vmkd -> vmx    "OK <port group>\n" + SCM_RIGHTS [ring memfd, kick, call]
 *              or  "ERR <reason>\n", no fds, and vmkd closes
 *
 * After OK the connection stays open and silent: it is the port's new link.
 * vmkd serves a request only if the peer (SO_PEERCRED, taken at connect) is
 * the very process it supervises for that VM, running as root or as vmkd's
 * own uid; anything else is refused and changes nothing.  A connection that
 * sends nothing usable within REQ_TIMEOUT_S is closed. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "vmkd.h"
#include "vmkd_net.h"

KVC_LOG_MODULE(vmkdport);

#define REQ_MAX 128
#define REQ_TIMEOUT_S 5
#define MAGIC "KVC-PORT 1 "

struct conn {
    struct vmkd_port_srv *s;
    int fd;
    struct ucred cr;            /* the peer, at connect */
    struct event *ev;
    char buf[REQ_MAX];
    size_t len;
    struct conn *prev, *next;
};

struct vmkd_port_srv {
    struct event_base *base;
    struct vmkd *d;
    struct vmkd_net *net;
    int fd;
    struct event *ev;
    struct conn *conns;         /* connections that have not asked yet */
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

static struct kvc_ratelimit rl = KVC_RATELIMIT_INIT(5, 10);

static void conn_free(struct conn *c, bool close_fd)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        c->s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->ev)
        event_free(c->ev);
    if (close_fd && c->fd >= 0)
        close(c->fd);
    free(c);
}

static void refuse(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void refuse(struct conn *c, const char *fmt, ...)
{
    pid_t pid = c->cr.pid;
    char msg[200], line[220];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    kvc_warn_rl(&rl, "port socket: refused pid %d: %s", (int)pid, msg);
    int n = snprintf(line, sizeof(line), "ERR %s\n", msg);
    if (send(c->fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
        kvc_dbg("port socket: answer to pid %d: %s", (int)pid, strerror(errno));
    conn_free(c, true);
}

/* One whole request line in c->buf (NUL-terminated, no newline). */
static void serve(struct conn *c)
{
    struct vmkd_port_srv *s = c->s;
    struct ucred cr = c->cr;
    if (cr.uid != 0 && cr.uid != geteuid()) {
        refuse(c, "uid %u may not use the port socket", (unsigned)cr.uid);
        return;
    }
    if (strncmp(c->buf, MAGIC, strlen(MAGIC)) != 0) {
        refuse(c, "bad request (want \"KVC-PORT 1 <vm-id>\")");
        return;
    }
    const char *id = c->buf + strlen(MAGIC);
    if (!vmkd_valid_id(id)) {
        refuse(c, "invalid VM id");
        return;
    }
    struct vmkd_vm_info vi;
    if (vmkd_vm_get(s->d, id, &vi) < 0) {
        refuse(c, "VM %s does not run on this host", id);
        return;
    }
    if (vi.pid != cr.pid) {
        refuse(c, "pid %d is not the vmx of VM %s", (int)cr.pid, id);
        return;
    }
    int fds[3];
    char pg[64];
    if (vmkd_net_port_fds(s->net, id, fds, pg, sizeof(pg)) < 0) {
        refuse(c, "VM %s has no port on this host's vSwitch", id);
        return;
    }
    char line[REQ_MAX];
    int n = snprintf(line, sizeof(line), "OK %s\n", pg);
    union {
        struct cmsghdr h;
        char b[CMSG_SPACE(sizeof(fds))];
    } u;
    memset(&u, 0, sizeof(u));
    struct iovec iov = { .iov_base = line, .iov_len = (size_t)n };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
                         .msg_controllen = sizeof(u.b) };
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(fds));
    memcpy(CMSG_DATA(cm), fds, sizeof(fds));
    if (sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) != n) {
        kvc_warn("VM %s: cannot hand its port to vmx pid %d: %s", id, (int)cr.pid,
                 strerror(errno));
        conn_free(c, true);
        return;
    }
    /* The connection is the port's link now. */
    vmkd_net_port_set_link(s->net, id, c->fd);
    kvc_info("VM %s: port on port group %s handed to its running vmx pid %d", id, pg,
             (int)cr.pid);
    conn_free(c, false);
}

static void on_conn(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    (void)fd;
    if (what & EV_TIMEOUT) {
        refuse(c, "no request within %d s", REQ_TIMEOUT_S);
        return;
    }
    ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        conn_free(c, true);     /* gone before asking */
        return;
    }
    c->len += (size_t)n;
    c->buf[c->len] = 0;
    char *nl = memchr(c->buf, '\n', c->len);
    if (nl) {
        if ((size_t)(nl - c->buf) != c->len - 1) {
            refuse(c, "bytes after the request line");
            return;
        }
        *nl = 0;
        if (memchr(c->buf, 0, (size_t)(nl - c->buf))) {
            refuse(c, "NUL in the request");
            return;
        }
        serve(c);
        return;
    }
    if (c->len >= sizeof(c->buf) - 1)
        refuse(c, "request longer than %d bytes", REQ_MAX - 1);
}

static void on_accept(evutil_socket_t fd, short what, void *arg)
{
    struct vmkd_port_srv *s = arg;
    (void)what;
    int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (cfd < 0) {
        if (errno != EAGAIN && errno != EINTR)
            kvc_warn_rl(&rl, "port socket: accept: %s", strerror(errno));
        return;
    }
    struct conn *c = calloc(1, sizeof(*c));
    if (!c) {
        close(cfd);
        return;
    }
    c->s = s;
    c->fd = cfd;
    socklen_t cl = sizeof(c->cr);
    if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &c->cr, &cl) < 0) {
        kvc_warn_rl(&rl, "port socket: peer credentials unavailable: %s", strerror(errno));
        close(cfd);
        free(c);
        return;
    }
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    c->ev = event_new(s->base, cfd, EV_READ | EV_PERSIST, on_conn, c);
    struct timeval tv = { REQ_TIMEOUT_S, 0 };
    if (!c->ev || event_add(c->ev, &tv) < 0)
        conn_free(c, true);
}

int vmkd_port_srv_new(struct event_base *base, struct vmkd *d, struct vmkd_net *net,
                      const char *path, struct vmkd_port_srv **out, char *why, size_t len)
{
    *out = NULL;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (!path || strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(why, len, "port socket path %s is too long", path ? path : "");
        return -ENAMETOOLONG;
    }
    struct vmkd_port_srv *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->base = base;
    s->d = d;
    s->net = net;
    snprintf(s->path, sizeof(s->path), "%s", path);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    int rc = 0;
    s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0) {
        rc = -errno;
        goto err;
    }
    unlink(path);               /* a previous vmkd's */
    mode_t old = umask(077);
    if (bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        rc = -errno;
    umask(old);
    if (rc == 0 && listen(s->fd, 64) < 0)
        rc = -errno;
    if (rc < 0)
        goto err;
    s->ev = event_new(base, s->fd, EV_READ | EV_PERSIST, on_accept, s);
    if (!s->ev || event_add(s->ev, NULL) < 0) {
        rc = -ENOMEM;
        goto err;
    }
    *out = s;
    return 0;
err:
    snprintf(why, len, "port socket %s: %s", path, strerror(-rc));
    vmkd_port_srv_free(s);
    return rc;
}

void vmkd_port_srv_free(struct vmkd_port_srv *s)
{
    if (!s)
        return;
    while (s->conns)
        conn_free(s->conns, true);
    if (s->ev)
        event_free(s->ev);
    if (s->fd >= 0) {
        close(s->fd);
        unlink(s->path);
    }
    free(s);
}
