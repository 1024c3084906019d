/* virtio-net with a vSwitch ring port as its backend (see virtio_net.h). */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "lib/log.h"
#include "vmkernel-kvm/devices/virtio_net.h"

KVC_LOG_MODULE(virtio_net);

#define ETH_HLEN 14u
#define VLAN_HLEN 4u
#define VIRTIO_NET_HDR_GSO_NONE 0

static struct kvc_ratelimit rl = KVC_RATELIMIT_INIT(5, 10);

static uint32_t frame_max(const struct virtio_net *n)
{
    return n->mtu + ETH_HLEN + VLAN_HLEN;
}

/* ---- config space: mac[6], status u16, max_virtqueue_pairs u16, mtu u16 ---- */

static void cfg_read(void *opaque, uint64_t off, uint8_t *data, unsigned len)
{
    struct virtio_net *n = opaque;
    uint8_t cfg[12];
    memcpy(cfg, n->mac, 6);
    le_put(cfg + 6, 2, virtio_net_link_up(n) ? VIRTIO_NET_S_LINK_UP : 0);
    le_put(cfg + 8, 2, 1);
    le_put(cfg + 10, 2, n->mtu);
    if (off < sizeof(cfg) && len <= sizeof(cfg) - off)
        memcpy(data, cfg + off, len);
}

/* The MAC is read-only for a virtio 1.x driver without CTRL_MAC_ADDR:
 * config writes are ignored. */
static void cfg_write(void *opaque, uint64_t off, const uint8_t *data, unsigned len)
{
    (void)opaque; (void)data;
    kvc_dbg_rl(&rl, "ignored %u-byte config write at 0x%llx", len, (unsigned long long)off);
}

bool virtio_net_link_up(const struct virtio_net *n)
{
    return n->link_up && n->backend;
}

void virtio_net_set_link(struct virtio_net *n, bool up)
{
    if (n->link_up == up)
        return;
    n->link_up = up;
    kvc_info("link %s", up ? "up" : "down");
    virtio_mmio_config_changed(&n->dev);
}

/* ---- data path ---- */

/* A queue the driver broke stops alone: the other one keeps working until
 * the driver resets the device (DEVICE_NEEDS_RESET tells it to). */
static bool queue_live(struct virtio_net *n, unsigned q)
{
    return (n->dev.status & VIRTIO_STATUS_DRIVER_OK) && n->dev.q[q].ready && !n->dev.q[q].broken;
}

static void broken(struct virtio_net *n, unsigned q)
{
    n->st.queue_broken++;
    kvc_warn_rl(&rl, "queue %u: driver broke the virtqueue rules; device needs reset", q);
    virtio_mmio_queue_broken(&n->dev, q);
}

/* Gather OUT iovecs from byte OFF into DST (at most CAP bytes). */
static uint32_t gather(const struct virtq_elem *e, uint64_t off, uint8_t *dst, uint32_t cap)
{
    uint32_t got = 0;
    for (unsigned i = 0; i < e->n_out && got < cap; i++) {
        uint64_t l = e->out[i].iov_len;
        if (off >= l) {
            off -= l;
            continue;
        }
        uint64_t take = l - off;
        if (take > cap - got)
            take = cap - got;
        memcpy(dst + got, (const uint8_t *)e->out[i].iov_base + off, take);
        got += (uint32_t)take;
        off = 0;
    }
    return got;
}

/* Scatter LEN bytes of SRC into IN iovecs from byte OFF. */
static void scatter(const struct virtq_elem *e, uint64_t off, const uint8_t *src, uint32_t len)
{
    for (unsigned i = 0; i < e->n_in && len; i++) {
        uint64_t l = e->in[i].iov_len;
        if (off >= l) {
            off -= l;
            continue;
        }
        uint64_t take = l - off;
        if (take > len)
            take = len;
        memcpy((uint8_t *)e->in[i].iov_base + off, src, take);
        src += take;
        len -= (uint32_t)take;
        off = 0;
    }
}

/* Guest -> switch.  Returns frames taken from the guest. */
static int do_tx(struct virtio_net *n, bool *kick)
{
    struct virtq *q = &n->dev.q[VIRTIO_NET_Q_TX];
    struct kvc_ring *tx = &n->rg.tx;
    int moved = 0, r = 0;
    bool pushed = false;
    n->tx_full = false;
    if (!queue_live(n, VIRTIO_NET_Q_TX))
        return 0;
    while (moved < VIRTIO_NET_BATCH) {
        /* Check for room before taking the guest's buffer: a full ring
         * leaves the frame with the guest (back-pressure, no drop). */
        if (n->backend && n->link_up) {
            int space = kvc_ring_prod_space(tx);
            if (space < 0) {
                n->st.tx_ring_error++;
                kvc_warn_rl(&rl, "switch's tx cons index out of range");
                break;
            }
            if (space == 0) {
                n->tx_full = true;
                break;
            }
        }
        struct virtq_elem e;
        if ((r = virtq_pop(q, &e)) <= 0)
            break;
        moved++;
        pushed = true;
        uint64_t flen = e.out_len >= VIRTIO_NET_HDR_LEN ? e.out_len - VIRTIO_NET_HDR_LEN : 0;
        uint8_t hdr[VIRTIO_NET_HDR_LEN];
        if (e.out_len < VIRTIO_NET_HDR_LEN + ETH_HLEN) {
            n->st.tx_runt++;
        } else if (flen > frame_max(n)) {
            n->st.tx_oversize++;
        } else if (gather(&e, 0, hdr, sizeof(hdr)), hdr[0] != 0 || hdr[1] != VIRTIO_NET_HDR_GSO_NONE) {
            /* Neither CSUM nor GSO was offered. */
            n->st.tx_bad_hdr++;
        } else if (!n->backend || !n->link_up) {
            n->st.tx_link_down++;
        } else {
            struct kvc_ring_slot *s = kvc_ring_slot(tx, tx->shadow);
            uint32_t cap = kvc_ring_slot_cap(tx);
            uint32_t len = gather(&e, VIRTIO_NET_HDR_LEN, s->data, cap < flen ? cap : (uint32_t)flen);
            s->len = len;
            s->flags = 0;
            tx->shadow++;
            n->st.tx_packets++;
            n->st.tx_bytes += len;
            *kick = true;
        }
        virtq_push(q, &e, 0);
    }
    if (r < 0)
        broken(n, VIRTIO_NET_Q_TX);
    if (pushed)
        virtio_mmio_notify_used(&n->dev, VIRTIO_NET_Q_TX);
    return moved;
}

/* Switch -> guest.  Returns frames taken from the switch. */
static int do_rx(struct virtio_net *n, bool *release)
{
    if (!n->backend)
        return 0;
    struct kvc_ring *rx = &n->rg.rx;
    struct virtq *q = &n->dev.q[VIRTIO_NET_Q_RX];
    int avail = kvc_ring_cons_avail(rx);
    if (avail < 0) {
        n->st.rx_ring_error++;
        kvc_warn_rl(&rl, "switch's rx prod index out of range, resynchronising");
        rx->shadow = __atomic_load_n(&rx->ctl->prod, __ATOMIC_ACQUIRE);
        *release = true;
        return 0;
    }
    if (avail > VIRTIO_NET_BATCH)
        avail = VIRTIO_NET_BATCH;
    bool live = queue_live(n, VIRTIO_NET_Q_RX);
    int moved = 0;
    n->rx_stalled = false;
    bool pushed = false;
    for (int i = 0; i < avail; i++) {
        struct kvc_ring_slot *s = kvc_ring_slot(rx, rx->shadow);
        uint32_t len = __atomic_load_n(&s->len, __ATOMIC_RELAXED);
        if (len > kvc_ring_slot_cap(rx) || len < ETH_HLEN) {
            n->st.rx_ring_error++;
        } else if (!live || !n->link_up) {
            /* A guest without a driver (or a link down) drops what arrives,
             * as a NIC without buffers would. */
            n->st.rx_link_down++;
        } else {
            struct virtq_elem e;
            int r = virtq_pop(q, &e);
            if (r < 0) {
                broken(n, VIRTIO_NET_Q_RX);
                live = false;
                continue;       /* the frame stays; dropped on the next turn */
            }
            if (r == 0) {
                n->rx_stalled = true;
                break;          /* no guest buffer: leave it in the ring */
            }
            if (e.in_len < VIRTIO_NET_HDR_LEN + (uint64_t)len) {
                n->st.rx_small_buf++;
                virtq_push(q, &e, 0);
            } else {
                uint8_t hdr[VIRTIO_NET_HDR_LEN] = { 0 };
                hdr[10] = 1;    /* num_buffers */
                scatter(&e, 0, hdr, sizeof(hdr));
                scatter(&e, VIRTIO_NET_HDR_LEN, s->data, len);
                virtq_push(q, &e, VIRTIO_NET_HDR_LEN + len);
                n->st.rx_packets++;
                n->st.rx_bytes += len;
            }
            pushed = true;
        }
        rx->shadow++;
        moved++;
        *release = true;
    }
    if (pushed)
        virtio_mmio_notify_used(&n->dev, VIRTIO_NET_Q_RX);
    return moved;
}

int virtio_net_poll(struct virtio_net *n)
{
    bool kick = false, release = false;
    int moved = do_tx(n, &kick) + do_rx(n, &release);
    if (kick && kvc_ring_prod_publish(&n->rg.tx)) {
        kvc_ring_kick(n->kick_fd);
        n->st.kicks_out++;
    }
    if (release && kvc_ring_cons_release(&n->rg.rx)) {
        kvc_ring_kick(n->kick_fd);
        n->st.kicks_out++;
    }
    if (moved)
        n->st.passes++;
    return moved;
}

static void notify(void *opaque, struct virtio_mmio *dev, unsigned q)
{
    struct virtio_net *n = opaque;
    (void)dev; (void)q;
    /* A kick that came through an MMIO exit (no ioeventfd): do the work on
     * this vCPU thread, we hold the lock already. */
    while (virtio_net_poll(n) > 0)
        ;
}

static void reset(void *opaque)
{
    struct virtio_net *n = opaque;
    n->tx_full = false;
    n->rx_stalled = false;
}

static void save(void *opaque, struct sbuf *s)
{
    struct virtio_net *n = opaque;
    sbuf_put(s, n->mac, 6);
    sbuf_u16(s, n->mtu);
    sbuf_u8(s, n->link_up);
}

static int load(void *opaque, struct sreader *r)
{
    struct virtio_net *n = opaque;
    uint8_t mac[6];
    sreader_get(r, mac, 6);
    uint16_t mtu = sreader_u16(r);
    uint8_t up = sreader_u8(r);
    if (r->err)
        return -EINVAL;
    if (memcmp(mac, n->mac, 6) || mtu != n->mtu || up > 1) {
        kvc_err("saved NIC state (MAC, MTU %u, link) does not match the configured NIC "
                "(MTU %u) or is corrupt", mtu, n->mtu);
        return -EINVAL;
    }
    n->link_up = up;
    n->tx_full = false;
    return 0;
}

static const struct virtio_dev_ops net_ops = {
    .name = "virtio-net",
    .device_id = VIRTIO_ID_NET,
    .features = (1ull << VIRTIO_NET_F_MAC) | (1ull << VIRTIO_NET_F_STATUS)
              | (1ull << VIRTIO_NET_F_MTU) | (1ull << VIRTIO_RING_F_INDIRECT_DESC),
    .num_queues = 2,
    .queue_max = VIRTIO_NET_QUEUE_MAX,
    .config_read = cfg_read,
    .config_write = cfg_write,
    .notify = notify,
    .reset = reset,
    .save = save,
    .load = load,
};

void virtio_net_init(struct virtio_net *n, struct guest_mem *mem, const struct irq_line *irq,
                     const uint8_t mac[6], unsigned mtu, pthread_mutex_t *lock)
{
    memset(n, 0, sizeof(*n));
    n->memfd = n->kick_fd = n->call_fd = n->notify_fd = n->stop_fd = n->ep_fd = -1;
    n->lock = lock;
    memcpy(n->mac, mac, 6);
    n->mtu = (uint16_t)(mtu < 68 ? 68 : mtu > 9000 ? 9000 : mtu);
    n->link_up = true;
    virtio_mmio_init(&n->dev, &net_ops, n, mem, irq);
}

int virtio_net_attach_backend(struct virtio_net *n, int memfd, int kick_fd, int call_fd)
{
    int rc;
    n->memfd = memfd;
    n->kick_fd = kick_fd;
    n->call_fd = call_fd;
    if (memfd < 0 || kick_fd < 0 || call_fd < 0)
        return -EBADF;
    if ((rc = kvc_ring_region_map(memfd, &n->rg)) < 0)
        return rc;
    if (kvc_ring_slot_cap(&n->rg.tx) < frame_max(n) || kvc_ring_slot_cap(&n->rg.rx) < frame_max(n)) {
        kvc_err("ring slots (%u bytes) cannot hold a frame of MTU %u", n->rg.tx.slot_size, n->mtu);
        kvc_ring_region_unmap(&n->rg);
        return -EPROTO;
    }
    const struct kvc_ring_shm *h = n->rg.base;
    if (memcmp(h->mac, n->mac, 6))
        kvc_warn("the switch port's MAC differs from net.mac; the port group's policy decides");
    kvc_ring_attach_producer(&n->rg.tx);
    kvc_ring_attach_consumer(&n->rg.rx);
    n->backend = true;
    return 0;
}

int virtio_net_notify_fd(const struct virtio_net *n)
{
    return n->notify_fd;
}

/* epoll tags of the data path thread's fds: tags rather than fd numbers,
 * because the call eventfd changes when the port is replaced (an event
 * already returned for the old one must not drain whatever reused its
 * number). */
enum { EV_NOTIFY = 1, EV_STOP, EV_CALL };

void virtio_net_detach_backend(struct virtio_net *n)
{
    if (!n->backend)
        return;
    bool was_up = virtio_net_link_up(n);
    if (n->ep_fd >= 0 && n->call_fd >= 0)
        epoll_ctl(n->ep_fd, EPOLL_CTL_DEL, n->call_fd, NULL);
    kvc_ring_region_unmap(&n->rg);
    int *fds[] = { &n->memfd, &n->kick_fd, &n->call_fd };
    for (size_t i = 0; i < 3; i++) {
        if (*fds[i] >= 0)
            close(*fds[i]);
        *fds[i] = -1;
    }
    n->backend = false;
    n->tx_full = false;
    n->rx_stalled = false;
    if (was_up) {
        kvc_info("link down: the switch port is gone");
        virtio_mmio_config_changed(&n->dev);
    }
}

int virtio_net_replace_backend(struct virtio_net *n, int memfd, int kick_fd, int call_fd)
{
    virtio_net_detach_backend(n);
    int rc = virtio_net_attach_backend(n, memfd, kick_fd, call_fd);
    if (rc == 0 && n->ep_fd >= 0) {
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = EV_CALL };
        if (epoll_ctl(n->ep_fd, EPOLL_CTL_ADD, n->call_fd, &ev) < 0) {
            rc = -errno;
            kvc_ring_region_unmap(&n->rg);
            n->backend = false;
        }
    }
    if (rc < 0) {
        int *fds[] = { &n->memfd, &n->kick_fd, &n->call_fd };
        for (size_t i = 0; i < 3; i++) {
            if (*fds[i] >= 0)
                close(*fds[i]);
            *fds[i] = -1;
        }
        return rc;
    }
    if (virtio_net_link_up(n)) {
        kvc_info("link up: on a new switch port");
        virtio_mmio_config_changed(&n->dev);
    }
    /* A pass now: the guest may have frames waiting since the link went. */
    if (n->notify_fd >= 0)
        kvc_ring_kick(n->notify_fd);
    return 0;
}

/* No empty passes with sched_yield before sleeping (the switch's data path
 * does a few): this thread shares the VM's cgroup with vCPUs that may spin
 * (a polling guest driver), and a yield to them costs a whole time slice,
 * where a wakeup from epoll preempts them at once.  Measured with
 * bench_vmx_net.py: 16 yielding passes took the median round trip from 186
 * to 2,000 us on a loaded 2-core machine. */
static void *net_thread(void *arg)
{
    struct virtio_net *n = arg;
    bool drain_call = false;
    for (;;) {
        /* Work first (also at start: the notifications are armed only by
         * a pass), then sleep. */
        for (;;) {
            /* One pass per lock hold, so vCPUs' MMIO exits are not held up
             * by a long stream. */
            pthread_mutex_lock(n->lock);
            /* The call eventfd is read under the lock: the port (and so
             * the fd) may be replaced between epoll_wait and here. */
            if (drain_call && n->backend)
                kvc_ring_drain(n->call_fd);
            drain_call = false;
            bool again = virtio_net_poll(n) > 0;
            if (!again && n->backend) {
                /* Ask the switch for a kick before sleeping; if frames (or
                 * space) arrived meanwhile, go round once more.  Frames
                 * waiting for guest buffers wait for the guest's kick. */
                again = kvc_ring_cons_prepare_wait(&n->rg.rx) && !n->rx_stalled;
                if (n->tx_full && kvc_ring_prod_prepare_wait(&n->rg.tx)) {
                    n->tx_full = false;
                    again = true;
                }
            }
            pthread_mutex_unlock(n->lock);
            if (!again)
                break;
        }
        struct epoll_event ev[4];
        int k = epoll_wait(n->ep_fd, ev, 4, -1);
        if (k < 0 && errno != EINTR)
            break;
        for (int i = 0; i < k; i++) {
            if (ev[i].data.u32 == EV_STOP)
                return NULL;
            if (ev[i].data.u32 == EV_CALL)
                drain_call = true;
            else
                kvc_ring_drain(n->notify_fd);
        }
    }
    return NULL;
}

int virtio_net_start(struct virtio_net *n)
{
    int rc;
    n->notify_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    n->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    n->ep_fd = epoll_create1(EPOLL_CLOEXEC);
    if (n->notify_fd < 0 || n->stop_fd < 0 || n->ep_fd < 0)
        return -errno;
    int fds[3] = { n->notify_fd, n->stop_fd, n->backend ? n->call_fd : -1 };
    static const uint32_t tags[3] = { EV_NOTIFY, EV_STOP, EV_CALL };
    for (int i = 0; i < 3; i++) {
        if (fds[i] < 0)
            continue;
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = tags[i] };
        if (epoll_ctl(n->ep_fd, EPOLL_CTL_ADD, fds[i], &ev) < 0)
            return -errno;
    }
    if ((rc = pthread_create(&n->thread, NULL, net_thread, n)) != 0)
        return -rc;
    n->thread_on = true;
    return 0;
}

void virtio_net_stop(struct virtio_net *n)
{
    if (!n->thread_on)
        return;
    kvc_ring_kick(n->stop_fd);
    pthread_join(n->thread, NULL);
    n->thread_on = false;
}

void virtio_net_destroy(struct virtio_net *n)
{
    if (!n || !n->dev.ops)
        return;
    virtio_net_stop(n);
    kvc_ring_region_unmap(&n->rg);
    int *fds[] = { &n->memfd, &n->kick_fd, &n->call_fd, &n->notify_fd, &n->stop_fd, &n->ep_fd };
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
        if (*fds[i] >= 0)
            close(*fds[i]);
        *fds[i] = -1;
    }
    n->backend = false;
}
