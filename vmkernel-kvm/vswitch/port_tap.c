/* TAP port: a kernel network interface on a port group, like an ESXi
 * VMkernel adapter (vmk): the host's own stack, or a bridge to the host's
 * kernel network.  One read/write per frame: the kernel's TAP device has no
 * batched interface without vhost, and this port is for management traffic,
 * not the VM fast path. */
#include "port.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "log.h"

KVC_LOG_MODULE(vswitch_tap);

struct tap_port {
    struct vs_port up;
    char ifname[IFNAMSIZ];
};

static const struct vs_port_class tap_class;

static int
tap_recv(struct vs_port *p, struct vs_pkt *pkts, int max)
{
    int n = 0;
    while (n < max) {
        /* One byte more than any frame the switch takes, so a giant is
         * seen (and counted) as one instead of silently cut. */
        ssize_t r = read(p->fd, pkts[n].data, VS_FRAME_MAX + 1);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            break;              /* EAGAIN, or the interface went away */
        }
        pkts[n].len = (uint32_t)r;
        n++;
    }
    return n;
}

static int
tap_send(struct vs_port *p, const uint8_t *frame, uint32_t len,
         const struct vs_tx_meta *m)
{
    struct iovec iov[3];
    int n = 0;
    uint8_t tag[4];
    if (m->vlan_tag) {
        tag[0] = 0x81;
        tag[1] = 0x00;
        tag[2] = (uint8_t)(m->vlan_tag >> 8);
        tag[3] = (uint8_t)m->vlan_tag;
        iov[n++] = (struct iovec){ (void *)frame, 12 };
        iov[n++] = (struct iovec){ tag, 4 };
        iov[n++] = (struct iovec){ (void *)(frame + 12), len - 12 };
    } else {
        iov[n++] = (struct iovec){ (void *)frame, len };
    }
    if (writev(p->fd, iov, n) < 0)
        return errno == EIO ? VS_DROP_LINK_DOWN : VS_DROP_NOSPACE;
    return 0;
}

static void
tap_flush(struct vs_port *p)
{
}

static void
tap_destroy(struct vs_port *p)
{
    if (!p)
        return;
    if (p->fd >= 0)
        close(p->fd);
    free(p);
}

static const struct vs_port_class tap_class = {
    .type = "tap",
    .recv = tap_recv,
    .send = tap_send,
    .flush = tap_flush,
    .destroy = tap_destroy,
};

int
vs_tap_create(struct vs_switch *sw, const char *name, const char *ifname,
              const uint8_t *mac, struct vs_port **out)
{
    if (!ifname || !*ifname || strlen(ifname) >= IFNAMSIZ)
        return -EINVAL;
    struct tap_port *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    vs_port_init(&t->up, &tap_class, sw, name, mac);
    int rc;
    t->up.fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (t->up.fd < 0) {
        rc = -errno;
        goto fail;
    }
    struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI };
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
    if (ioctl(t->up.fd, TUNSETIFF, &ifr) < 0) {
        rc = -errno;
        kvc_err("TUNSETIFF %s: %s", ifname, strerror(errno));
        goto fail;
    }
    snprintf(t->ifname, sizeof t->ifname, "%s", ifr.ifr_name);
    *out = &t->up;
    return 0;
fail:
    tap_destroy(&t->up);
    return rc;
}
