/* Ring port: a VM's vNIC backend through shared-memory rings (ring.h).
 *
 * The switch consumes the tx ring (frames the VM sends) and produces into
 * the rx ring (frames for the VM).  Everything read from shared memory is
 * read once and validated; frames are copied into the switch's own buffers
 * before they are parsed, so a guest rewriting a slot meanwhile cannot slip
 * a frame past the checks. */
#include "port.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "ring.h"

KVC_LOG_MODULE(vswitch_ring);

struct ring_port {
    struct vs_port up;
    int memfd, kick_fd, call_fd;
    struct kvc_ring_region rg;
    uint32_t published;         /* rx prod last published */
    bool need_call;
};

static const struct vs_port_class ring_class;

static void
ring_error(struct ring_port *r, const char *what)
{
    static struct kvc_ratelimit rl = KVC_RATELIMIT_INIT(5, 10);
    kvc_warn_rl(&rl, "port %s: %s", r->up.name, what);
}

static int
ring_recv(struct vs_port *p, struct vs_pkt *pkts, int max)
{
    struct ring_port *r = (struct ring_port *)p;
    struct kvc_ring *tx = &r->rg.tx;
    int avail = kvc_ring_cons_avail(tx);
    if (avail < 0) {
        /* The peer's prod is impossible: skip to it rather than follow it
         * into slots it never filled; if even that is out of range, the
         * next pass will say so again. */
        ring_error(r, "tx prod index out of range, resynchronising");
        vs_port_drop(p, VS_DROP_RING_ERROR, 0);
        tx->shadow = __atomic_load_n(&tx->ctl->prod, __ATOMIC_ACQUIRE);
        if (kvc_ring_cons_release(tx))
            r->need_call = true;
        p->dirty = true;
        return 0;
    }
    if (avail == 0)
        return 0;
    if (avail > max)
        avail = max;
    uint32_t cap = kvc_ring_slot_cap(tx);
    int n = 0;
    for (int i = 0; i < avail; i++) {
        struct kvc_ring_slot *s = kvc_ring_slot(tx, tx->shadow + (uint32_t)i);
        uint32_t len = __atomic_load_n(&s->len, __ATOMIC_RELAXED);
        if (len > cap || len > VS_FRAME_MAX) {
            vs_port_drop(p, VS_DROP_MALFORMED, len);
            continue;
        }
        memcpy(pkts[n].data, s->data, len);
        pkts[n].len = len;
        n++;
    }
    tx->shadow += (uint32_t)avail;
    if (kvc_ring_cons_release(tx)) {
        r->need_call = true;
        p->dirty = true;
    }
    return n;
}

static int
ring_send(struct vs_port *p, const uint8_t *frame, uint32_t len,
          const struct vs_tx_meta *m)
{
    struct ring_port *r = (struct ring_port *)p;
    struct kvc_ring *rx = &r->rg.rx;
    uint32_t tlen = len + (m->vlan_tag ? 4 : 0);
    if (tlen > kvc_ring_slot_cap(rx))
        return VS_DROP_OVERSIZE;
    int space = kvc_ring_prod_space(rx);
    if (space < 0) {
        ring_error(r, "rx cons index out of range");
        return VS_DROP_RING_ERROR;
    }
    if (space == 0)
        return VS_DROP_NOSPACE;
    struct kvc_ring_slot *s = kvc_ring_slot(rx, rx->shadow);
    if (m->vlan_tag) {
        memcpy(s->data, frame, 12);
        s->data[12] = 0x81;
        s->data[13] = 0x00;
        s->data[14] = (uint8_t)(m->vlan_tag >> 8);
        s->data[15] = (uint8_t)m->vlan_tag;
        memcpy(s->data + 16, frame + 12, len - 12);
    } else {
        memcpy(s->data, frame, len);
    }
    s->len = tlen;
    s->flags = 0;
    rx->shadow++;
    return 0;
}

static void
ring_flush(struct vs_port *p)
{
    struct ring_port *r = (struct ring_port *)p;
    if (r->rg.rx.shadow != r->published) {
        r->published = r->rg.rx.shadow;
        if (kvc_ring_prod_publish(&r->rg.rx))
            r->need_call = true;
    }
    if (r->need_call) {
        r->need_call = false;
        kvc_ring_kick(r->call_fd);
    }
}

static bool
ring_prepare_wait(struct vs_port *p)
{
    return kvc_ring_cons_prepare_wait(&((struct ring_port *)p)->rg.tx);
}

static void
ring_ack(struct vs_port *p)
{
    kvc_ring_drain(((struct ring_port *)p)->kick_fd);
}

static void
ring_destroy(struct vs_port *p)
{
    struct ring_port *r = (struct ring_port *)p;
    if (!r)
        return;
    kvc_ring_region_unmap(&r->rg);
    if (r->memfd >= 0)
        close(r->memfd);
    if (r->kick_fd >= 0)
        close(r->kick_fd);
    if (r->call_fd >= 0)
        close(r->call_fd);
    free(r);
}

static const struct vs_port_class ring_class = {
    .type = "ring",
    .recv = ring_recv,
    .send = ring_send,
    .flush = ring_flush,
    .prepare_wait = ring_prepare_wait,
    .ack = ring_ack,
    .destroy = ring_destroy,
};

int
vs_ring_port_create(struct vs_switch *sw, const char *name, const uint8_t *mac,
                    const struct vs_ring_opts *o, unsigned mtu, struct vs_port **out)
{
    unsigned nslots = o && o->nslots ? o->nslots : 256;
    unsigned slot = o && o->slot_size ? o->slot_size : 0;
    if (!slot) {
        /* Room for an MTU-sized frame, a tag and the slot header. */
        slot = (mtu + 18 + 4 + KVC_RING_SLOT_HDR + 63) & ~63u;
        if (slot < 2048)
            slot = 2048;
    }
    struct ring_port *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    vs_port_init(&r->up, &ring_class, sw, name, mac);
    r->memfd = r->kick_fd = r->call_fd = -1;
    int rc = kvc_ring_region_create(nslots, slot, mac, (uint16_t)mtu, &r->memfd, &r->rg);
    if (rc)
        goto fail;
    r->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    r->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (r->kick_fd < 0 || r->call_fd < 0) {
        rc = -errno;
        goto fail;
    }
    r->up.fd = r->kick_fd;
    *out = &r->up;
    return 0;
fail:
    ring_destroy(&r->up);
    return rc;
}

int
vs_port_ring_fds(struct vs_port *p, int *memfd, int *kick_fd, int *call_fd)
{
    if (!p || p->cls != &ring_class)
        return -EINVAL;
    struct ring_port *r = (struct ring_port *)p;
    if (memfd)
        *memfd = r->memfd;
    if (kick_fd)
        *kick_fd = r->kick_fd;
    if (call_fd)
        *call_fd = r->call_fd;
    return 0;
}
