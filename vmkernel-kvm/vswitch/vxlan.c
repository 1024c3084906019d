/* VXLAN uplink (RFC 7348): Ethernet frames of distributed port groups in
 * UDP datagrams between the vSwitches of different hosts.
 *
 *   outer IPv4 / UDP (dst port 4789 by default)
 *   VXLAN header: flags(8) = 0x08 (I: VNI valid), reserved(24),
 *                 VNI(24), reserved(8)
 *   inner Ethernet frame, untagged, no FCS
 *
 * Received datagrams are batched with recvmmsg and sent ones with
 * sendmmsg.  The outer source port is the socket's bound port: RFC 7348
 * recommends (does not require) a per-flow hash there for ECMP. */
#include "port.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

KVC_LOG_MODULE(vxlan);

#define VX_TXQ 64

struct vxlan_port {
    struct vs_port up;
    uint8_t rx_hdr[VS_BATCH][VS_VXLAN_HLEN];
    struct mmsghdr rx_msg[VS_BATCH];
    struct iovec rx_iov[VS_BATCH][2];
    struct sockaddr_in rx_from[VS_BATCH];

    unsigned ntx;
    struct mmsghdr tx_msg[VX_TXQ];
    struct iovec tx_iov[VX_TXQ];
    struct sockaddr_in tx_to[VX_TXQ];
    uint8_t *tx_buf;            /* VX_TXQ * (HLEN + VS_FRAME_MAX) */
};

static const struct vs_port_class vxlan_class;

int
vs_vxlan_decap(const uint8_t *d, size_t len, uint32_t *vni)
{
    if (len < VS_VXLAN_HLEN)
        return -EINVAL;
    /* I flag must be set; other flag bits and reserved fields are ignored
     * on receipt, as the RFC says. */
    if (!(d[0] & 0x08))
        return -EINVAL;
    *vni = (uint32_t)d[4] << 16 | (uint32_t)d[5] << 8 | d[6];
    return 0;
}

static int
vx_recv(struct vs_port *p, struct vs_pkt *pkts, int max)
{
    struct vxlan_port *x = (struct vxlan_port *)p;
    if (max > VS_BATCH)
        max = VS_BATCH;
    for (int i = 0; i < max; i++) {
        x->rx_iov[i][0].iov_base = x->rx_hdr[i];
        x->rx_iov[i][0].iov_len = VS_VXLAN_HLEN;
        x->rx_iov[i][1].iov_base = pkts[i].data;
        x->rx_iov[i][1].iov_len = VS_FRAME_MAX;
        struct msghdr *h = &x->rx_msg[i].msg_hdr;
        memset(h, 0, sizeof *h);
        h->msg_iov = x->rx_iov[i];
        h->msg_iovlen = 2;
        h->msg_name = &x->rx_from[i];
        h->msg_namelen = sizeof x->rx_from[i];
    }
    int n = recvmmsg(p->fd, x->rx_msg, (unsigned)max, MSG_DONTWAIT, NULL);
    if (n <= 0)
        return 0;
    int k = 0;
    for (int i = 0; i < n; i++) {
        struct msghdr *h = &x->rx_msg[i].msg_hdr;
        uint32_t len = x->rx_msg[i].msg_len;
        uint32_t vni;
        if (h->msg_flags & MSG_TRUNC) {
            vs_port_drop(p, VS_DROP_OVERSIZE, len);
            continue;
        }
        if (vs_vxlan_decap(x->rx_hdr[i], len, &vni) || h->msg_namelen != sizeof(struct sockaddr_in)) {
            vs_port_drop(p, VS_DROP_MALFORMED, len);
            continue;
        }
        if (k != i)
            memcpy(pkts[k].data, pkts[i].data, len - VS_VXLAN_HLEN);
        pkts[k].len = len - VS_VXLAN_HLEN;
        pkts[k].vni = vni;
        pkts[k].vtep = x->rx_from[i];
        k++;
    }
    return k;
}

static void
vx_flush(struct vs_port *p)
{
    struct vxlan_port *x = (struct vxlan_port *)p;
    unsigned done = 0;
    while (done < x->ntx) {
        int n = sendmmsg(p->fd, x->tx_msg + done, x->ntx - done, MSG_DONTWAIT);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            /* Socket buffer full or the peer unreachable: drop the rest. */
            for (unsigned i = done; i < x->ntx; i++)
                vs_port_drop(p, VS_DROP_NOSPACE, 0);
            break;
        }
        done += (unsigned)n;
    }
    x->ntx = 0;
}

static int
vx_send(struct vs_port *p, const uint8_t *frame, uint32_t len,
        const struct vs_tx_meta *m)
{
    struct vxlan_port *x = (struct vxlan_port *)p;
    if (!m->vtep || len > VS_FRAME_MAX)
        return VS_DROP_MALFORMED;
    if (x->ntx == VX_TXQ)
        vx_flush(p);
    unsigned i = x->ntx++;
    uint8_t *b = x->tx_buf + (size_t)i * (VS_VXLAN_HLEN + VS_FRAME_MAX);
    memset(b, 0, VS_VXLAN_HLEN);
    b[0] = 0x08;
    b[4] = (uint8_t)(m->vni >> 16);
    b[5] = (uint8_t)(m->vni >> 8);
    b[6] = (uint8_t)m->vni;
    memcpy(b + VS_VXLAN_HLEN, frame, len);
    x->tx_iov[i].iov_base = b;
    x->tx_iov[i].iov_len = VS_VXLAN_HLEN + len;
    x->tx_to[i] = *m->vtep;
    struct msghdr *h = &x->tx_msg[i].msg_hdr;
    memset(h, 0, sizeof *h);
    h->msg_iov = &x->tx_iov[i];
    h->msg_iovlen = 1;
    h->msg_name = &x->tx_to[i];
    h->msg_namelen = sizeof x->tx_to[i];
    return 0;
}

static bool
vx_prepare_wait(struct vs_port *p)
{
    return false;               /* level-triggered socket readiness */
}

static void
vx_destroy(struct vs_port *p)
{
    struct vxlan_port *x = (struct vxlan_port *)p;
    if (!x)
        return;
    if (p->fd >= 0)
        close(p->fd);
    free(x->tx_buf);
    free(x);
}

static const struct vs_port_class vxlan_class = {
    .type = "vxlan",
    .is_uplink = true,
    .recv = vx_recv,
    .send = vx_send,
    .flush = vx_flush,
    .prepare_wait = vx_prepare_wait,
    .destroy = vx_destroy,
};

int
vs_vxlan_create(struct vs_switch *sw, const char *name, const char *ip,
                uint16_t port, struct vs_port **out)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
    if (!ip || inet_pton(AF_INET, ip, &a.sin_addr) != 1)
        return -EINVAL;
    struct vxlan_port *x = calloc(1, sizeof *x);
    if (!x)
        return -ENOMEM;
    vs_port_init(&x->up, &vxlan_class, sw, name, NULL);
    int rc;
    x->tx_buf = malloc((size_t)VX_TXQ * (VS_VXLAN_HLEN + VS_FRAME_MAX));
    if (!x->tx_buf) {
        rc = -ENOMEM;
        goto fail;
    }
    x->up.fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (x->up.fd < 0) {
        rc = -errno;
        goto fail;
    }
    int sz = 4 << 20;
    setsockopt(x->up.fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    setsockopt(x->up.fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    if (bind(x->up.fd, (struct sockaddr *)&a, sizeof a) < 0) {
        rc = -errno;
        kvc_err("bind %s:%u: %s", ip, port, strerror(errno));
        goto fail;
    }
    *out = &x->up;
    return 0;
fail:
    vx_destroy(&x->up);
    return rc;
}
