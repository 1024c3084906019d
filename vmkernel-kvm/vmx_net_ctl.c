/* Control methods of vmx's virtio-net adapter (proto/vmx.proto VMX_NET_*),
 * served next to vmx_ctl_methods on the same socket.  They run on the main
 * thread's event loop and take the device lock. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "lib/log.h"
#include "lib/rpc.h"
#include "vmkernel-kvm/vmx.h"
#include "vmkernel-kvm/vmx_ctl.h"
#include "vmx.pb-c.h"

KVC_LOG_MODULE(vmx_net);

static void fill(struct vmx *vm, Kvc__Vmx__NetStats *r, char *mac, size_t maclen)
{
    pthread_mutex_lock(&vm->dev_lock);
    const struct virtio_net *n = &vm->net;
    const struct virtio_net_stats *s = &n->st;
    r->present = vm->net_on;
    if (vm->net_on) {
        r->backend = n->backend;
        r->link_up = virtio_net_link_up(n);
        snprintf(mac, maclen, "%02x:%02x:%02x:%02x:%02x:%02x", n->mac[0], n->mac[1], n->mac[2],
                 n->mac[3], n->mac[4], n->mac[5]);
        r->mac = mac;
        r->mtu = n->mtu;
        r->status = n->dev.status;
        r->tx_packets = s->tx_packets;
        r->tx_bytes = s->tx_bytes;
        r->rx_packets = s->rx_packets;
        r->rx_bytes = s->rx_bytes;
        r->tx_runt = s->tx_runt;
        r->tx_oversize = s->tx_oversize;
        r->tx_bad_hdr = s->tx_bad_hdr;
        r->tx_link_down = s->tx_link_down;
        r->tx_ring_error = s->tx_ring_error;
        r->rx_small_buf = s->rx_small_buf;
        r->rx_link_down = s->rx_link_down;
        r->rx_ring_error = s->rx_ring_error;
        r->queue_broken = s->queue_broken;
        r->kicks_out = s->kicks_out;
        r->passes = s->passes;
    }
    pthread_mutex_unlock(&vm->dev_lock);
}

static void on_net_stats(struct vmx_ctl_call *call, const ProtobufCMessage *m, void *arg)
{
    (void)m;
    Kvc__Vmx__NetStats r = KVC__VMX__NET_STATS__INIT;
    char mac[18];
    fill(arg, &r, mac, sizeof(mac));
    vmx_ctl_reply(call, &r.base);
}

static void on_net_set_link(struct vmx_ctl_call *call, const ProtobufCMessage *m, void *arg)
{
    struct vmx *vm = arg;
    const Kvc__Vmx__NetLinkRequest *req = (const void *)m;
    if (!vm->net_on) {
        vmx_ctl_reply_error(call, KVC_RPC_E_NOT_FOUND, "this VM has no network adapter");
        return;
    }
    pthread_mutex_lock(&vm->dev_lock);
    virtio_net_set_link(&vm->net, req->up);
    pthread_mutex_unlock(&vm->dev_lock);
    on_net_stats(call, NULL, arg);
}

#define M(ID, NAME, REQ, RESP, FN) \
    { .id = KVC__VMX__METHOD__##ID, .name = NAME, .request = &kvc__vmx__##REQ##__descriptor, \
      .response = &kvc__vmx__##RESP##__descriptor, .handler = FN }

static const struct vmx_ctl_method net_methods[] = {
    M(VMX_NET_SET_LINK, "NetSetLink", net_link_request, net_stats, on_net_set_link),
    M(VMX_NET_STATS, "NetStats", net_stats_request, net_stats, on_net_stats),
};

const struct vmx_ctl_method *vmx_net_ctl_table(size_t *n)
{
    *n = sizeof(net_methods) / sizeof(net_methods[0]);
    return net_methods;
}

/* ---- the port's link (docs/vmkd.md "A running VM gets its port back") ----
 * vmkd passes a unix socket with the port; nothing is ever sent on it, and
 * its closing means the port is gone (vmkd stopped or was killed).  The
 * adapter's link then goes down and vmx asks vmkd's port socket for a new
 * port: "KVC-PORT 1 <id>\n", answered "OK <port group>\n" with the ring
 * memfd, kick and call eventfds (SCM_RIGHTS), or "ERR <reason>\n".  The
 * OK connection is the new link.  Retries back off from 100 ms to 1 s and
 * never stop: the VM gets its network back whenever a vmkd comes. */

#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 1000
#define REPLY_TIMEOUT_S 5

static struct {
    struct vmx *vm;
    struct event_base *base;
    int fd;                     /* the link, -1 */
    struct event *ev;
    int cfd;                    /* a request waiting for vmkd's answer, -1 */
    struct event *ev_c;
    struct event *ev_retry;
    char sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char id[72];
    unsigned backoff_ms, attempts;
    char last_err[160];
} g_link = { .fd = -1, .cfd = -1 };

static void link_retry_later(void);

static void link_watch(int fd);

static void req_close(void)
{
    if (g_link.ev_c)
        event_free(g_link.ev_c);
    g_link.ev_c = NULL;
    if (g_link.cfd >= 0)
        close(g_link.cfd);
    g_link.cfd = -1;
}

static void req_failed(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void req_failed(const char *fmt, ...)
{
    char why[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    req_close();
    /* Said once per new reason (vmkd may stay away for long). */
    if (strcmp(why, g_link.last_err)) {
        kvc_warn("virtio-net: no port yet from %s: %s (retrying)", g_link.sock, why);
        snprintf(g_link.last_err, sizeof(g_link.last_err), "%s", why);
    } else {
        kvc_dbg("virtio-net: no port yet: %s", why);
    }
    link_retry_later();
}

static void on_reply(evutil_socket_t fd, short what, void *arg)
{
    (void)arg;
    if (what & EV_TIMEOUT) {
        req_failed("no answer within %d s", REPLY_TIMEOUT_S);
        return;
    }
    char buf[160];
    union {
        struct cmsghdr h;
        char b[CMSG_SPACE(4 * sizeof(int))];
    } u;
    struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) - 1 };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
                         .msg_controllen = sizeof(u.b) };
    ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    int fds[4], nfd = 0;
    for (struct cmsghdr *cm = n >= 0 ? CMSG_FIRSTHDR(&mh) : NULL; cm; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int f;
            memcpy(&f, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
            if (nfd < 4)
                fds[nfd++] = f;
            else
                close(f);
        }
    }
    if (n <= 0) {
        for (int i = 0; i < nfd; i++)
            close(fds[i]);
        req_failed("vmkd closed the connection%s%s", n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
        return;
    }
    buf[n] = 0;
    buf[strcspn(buf, "\n")] = 0;
    for (char *p = buf; *p; p++)        /* it goes to the log */
        if (*p < 0x20 || *p > 0x7e)
            *p = '?';
    bool ok = !strncmp(buf, "OK", 2) && (buf[2] == 0 || buf[2] == ' ');
    if (!ok || nfd != 3 || (mh.msg_flags & MSG_CTRUNC)) {
        for (int i = 0; i < nfd; i++)
            close(fds[i]);
        if (!strncmp(buf, "ERR ", 4))
            req_failed("vmkd refused: %s", buf + 4);
        else
            req_failed("bad answer from vmkd (%d fds): '%.60s'", nfd, buf);
        return;
    }
    struct vmx *vm = g_link.vm;
    pthread_mutex_lock(&vm->dev_lock);
    int rc = virtio_net_replace_backend(&vm->net, fds[0], fds[1], fds[2]);
    pthread_mutex_unlock(&vm->dev_lock);
    if (rc < 0) {
        req_failed("the new port's ring: %s", strerror(-rc));
        return;
    }
    int link = g_link.cfd;
    g_link.cfd = -1;
    req_close();
    kvc_info("VMX-EVENT net-port-attached portgroup=%s attempts=%u", buf[2] ? buf + 3 : "?",
             g_link.attempts);
    g_link.attempts = 0;
    g_link.last_err[0] = 0;
    link_watch(link);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd; (void)what; (void)arg;
    g_link.attempts++;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", g_link.sock);
    g_link.cfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (g_link.cfd < 0) {
        req_failed("socket: %s", strerror(errno));
        return;
    }
    if (connect(g_link.cfd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        req_failed("connect: %s", strerror(errno));
        return;
    }
    /* Only vmkd (root or vmx's own uid) may hand vmx a port. */
    struct ucred cr;
    socklen_t cl = sizeof(cr);
    if (getsockopt(g_link.cfd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0 ||
        (cr.uid != 0 && cr.uid != getuid())) {
        req_failed("the port socket's owner is neither root nor vmx's uid");
        return;
    }
    char line[128];
    int n = snprintf(line, sizeof(line), "KVC-PORT 1 %s\n", g_link.id);
    if (send(g_link.cfd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n) {
        req_failed("send: %s", strerror(errno));
        return;
    }
    struct timeval tv = { REPLY_TIMEOUT_S, 0 };
    g_link.ev_c = event_new(g_link.base, g_link.cfd, EV_READ | EV_PERSIST, on_reply, NULL);
    if (!g_link.ev_c || event_add(g_link.ev_c, &tv) < 0)
        req_failed("out of memory");
}

static void link_retry_later(void)
{
    if (!g_link.sock[0] || !g_link.ev_retry)
        return;
    unsigned ms = g_link.backoff_ms;
    g_link.backoff_ms = ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : ms * 2;
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    event_add(g_link.ev_retry, &tv);
}

static void link_lost(void)
{
    if (g_link.ev)
        event_free(g_link.ev);
    g_link.ev = NULL;
    if (g_link.fd >= 0)
        close(g_link.fd);
    g_link.fd = -1;
    struct vmx *vm = g_link.vm;
    pthread_mutex_lock(&vm->dev_lock);
    virtio_net_detach_backend(&vm->net);
    pthread_mutex_unlock(&vm->dev_lock);
    kvc_warn("VMX-EVENT net-port-lost%s", g_link.sock[0] ? ": asking vmkd for a new port" : "");
    g_link.backoff_ms = RETRY_MIN_MS;
    link_retry_later();
}

static void on_link(evutil_socket_t fd, short what, void *arg)
{
    (void)what; (void)arg;
    char buf[64];
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0) {
        static struct kvc_ratelimit rl = KVC_RATELIMIT_INIT(2, 60);
        kvc_warn_rl(&rl, "virtio-net: %zd unexpected bytes on the port link, ignored", n);
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    link_lost();
}

static void link_watch(int fd)
{
    g_link.fd = fd;
    g_link.ev = event_new(g_link.base, fd, EV_READ | EV_PERSIST, on_link, NULL);
    if (!g_link.ev || event_add(g_link.ev, NULL) < 0)
        kvc_err("virtio-net: cannot watch the port link: a vmkd restart will leave the link down");
}

int vmx_net_link_start(struct vmx *vm, struct event_base *base, int link_fd, const char *sock,
                       const char *id)
{
    g_link.vm = vm;
    g_link.base = base;
    if (sock && (strlen(sock) >= sizeof(g_link.sock) || !id || strlen(id) >= sizeof(g_link.id)
                 || strpbrk(id, " \n"))) {
        if (link_fd >= 0)
            close(link_fd);
        kvc_err("--net-socket %s / --net-id %s: path too long or bad id", sock, id ? id : "");
        return -EINVAL;
    }
    if (sock && id) {
        snprintf(g_link.sock, sizeof(g_link.sock), "%s", sock);
        snprintf(g_link.id, sizeof(g_link.id), "%s", id);
        g_link.ev_retry = evtimer_new(base, on_retry, NULL);
        if (!g_link.ev_retry) {
            if (link_fd >= 0)
                close(link_fd);
            return -ENOMEM;
        }
    }
    if (link_fd >= 0) {
        link_watch(link_fd);
    } else if (g_link.sock[0] && !vm->net.backend) {
        /* Started without a port but told where to ask: ask. */
        g_link.backoff_ms = RETRY_MIN_MS;
        link_retry_later();
    }
    return 0;
}

void vmx_net_link_stop(void)
{
    req_close();
    if (g_link.ev_retry)
        event_free(g_link.ev_retry);
    g_link.ev_retry = NULL;
    if (g_link.ev)
        event_free(g_link.ev);
    g_link.ev = NULL;
    if (g_link.fd >= 0)
        close(g_link.fd);
    g_link.fd = -1;
}
