/* virtio-net (vmkernel-kvm/devices/virtio_net.c) on a fake guest RAM: the
 * driver side is written here register by register, the backend is either a
 * real vSwitch ring port (frames go through the switch to a dummy port) or a
 * ring region this test creates and then abuses as a hostile switch would.
 * Bad guest input and bad ring input are dropped and counted, never
 * followed. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "vmkernel-kvm/devices/virtio_net.h"
#include "vmkernel-kvm/vswitch/ring.h"
#include "vmkernel-kvm/vswitch/vswitch.h"

#define RAM (1u << 20)
#define QSZ 16
#define RXQ_BASE 0x1000         /* desc, avail +0x1000, used +0x2000 */
#define TXQ_BASE 0x4000
#define RXBUF 0x10000
#define TXBUF 0x40000
#define BUFSZ 2048

static struct guest_mem mem;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int irq_level;
static const uint8_t MAC[6] = { 0x00, 0x50, 0x56, 0x00, 0x00, 0x01 };
static const uint8_t PEER[6] = { 0x00, 0x50, 0x56, 0x00, 0x00, 0x02 };

static void irq_set_cb(void *o, unsigned gsi, int level)
{
    (void)o; (void)gsi;
    irq_level = level;
}

static const struct irq_line irq = { .set = irq_set_cb, .gsi = 8 };

static int setup(void **st)
{
    (void)st;
    mem.fd = -1;
    mem.size = RAM;
    mem.hva = calloc(1, RAM);
    return mem.hva ? 0 : -1;
}

static int teardown(void **st)
{
    (void)st;
    free(mem.hva);
    mem.hva = NULL;
    return 0;
}

/* ---- the driver side ---- */

static void w32(struct virtio_net *n, uint64_t off, uint32_t v)
{
    uint8_t d[4];
    le_put(d, 4, v);
    virtio_mmio_write(&n->dev, off, d, 4);
}

static uint32_t r32(struct virtio_net *n, uint64_t off)
{
    uint8_t d[4];
    virtio_mmio_read(&n->dev, off, d, 4);
    return (uint32_t)le_get(d, 4);
}

static uint64_t qbase(unsigned q)
{
    return q == VIRTIO_NET_Q_RX ? RXQ_BASE : TXQ_BASE;
}

static void desc(unsigned q, unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    uint8_t *d = mem.hva + qbase(q) + 16 * i;
    memcpy(d, &addr, 8);
    memcpy(d + 8, &len, 4);
    memcpy(d + 12, &flags, 2);
    memcpy(d + 14, &next, 2);
}

static void avail_push(unsigned q, uint16_t head)
{
    uint8_t *a = mem.hva + qbase(q) + 0x1000;
    uint16_t idx;
    memcpy(&idx, a + 2, 2);
    memcpy(a + 4 + 2 * (idx % QSZ), &head, 2);
    idx++;
    memcpy(a + 2, &idx, 2);
}

static uint16_t used_idx(unsigned q)
{
    uint16_t v;
    memcpy(&v, mem.hva + qbase(q) + 0x2000 + 2, 2);
    return v;
}

static void used_elem(unsigned q, unsigned i, uint32_t *id, uint32_t *len)
{
    uint8_t *u = mem.hva + qbase(q) + 0x2000 + 4 + 8 * (i % QSZ);
    memcpy(id, u, 4);
    memcpy(len, u + 4, 4);
}

/* Reset, negotiate VERSION_1 | MAC | STATUS | MTU, both queues, DRIVER_OK. */
static void driver_up(struct virtio_net *n)
{
    memset(mem.hva, 0, RAM);
    w32(n, 0x70, 0);
    w32(n, 0x70, 1 | 2);
    w32(n, 0x24, 0);
    w32(n, 0x20, (1u << VIRTIO_NET_F_MAC) | (1u << VIRTIO_NET_F_STATUS) | (1u << VIRTIO_NET_F_MTU));
    w32(n, 0x24, 1);
    w32(n, 0x20, 1);
    w32(n, 0x70, 1 | 2 | 8);
    assert_true(r32(n, 0x70) & 8);
    for (unsigned q = 0; q < 2; q++) {
        w32(n, 0x30, q);
        w32(n, 0x38, QSZ);
        w32(n, 0x80, (uint32_t)qbase(q));
        w32(n, 0x90, (uint32_t)qbase(q) + 0x1000);
        w32(n, 0xa0, (uint32_t)qbase(q) + 0x2000);
        w32(n, 0x44, 1);
        assert_int_equal(r32(n, 0x44), 1);
    }
    w32(n, 0x70, 1 | 2 | 4 | 8);
}

static void post_rx(unsigned i, uint32_t len)
{
    desc(VIRTIO_NET_Q_RX, i, RXBUF + i * BUFSZ, len, VIRTQ_DESC_F_WRITE, 0);
    avail_push(VIRTIO_NET_Q_RX, (uint16_t)i);
}

/* A frame from MAC to DST of LEN bytes (header included), with the 12-byte
 * virtio-net header in front, in tx buffer I. */
static void post_tx(unsigned i, const uint8_t *dst, uint32_t len, uint8_t fill)
{
    uint8_t *b = mem.hva + TXBUF + i * BUFSZ;
    memset(b, 0, VIRTIO_NET_HDR_LEN);
    uint8_t *f = b + VIRTIO_NET_HDR_LEN;
    memcpy(f, dst, 6);
    memcpy(f + 6, MAC, 6);
    f[12] = 0x08;
    f[13] = 0x00;
    for (uint32_t k = 14; k < len; k++)
        f[k] = fill;
    desc(VIRTIO_NET_Q_TX, i, TXBUF + i * BUFSZ, VIRTIO_NET_HDR_LEN + len, 0, 0);
    avail_push(VIRTIO_NET_Q_TX, (uint16_t)i);
}

static void make_frame(uint8_t *f, const uint8_t *dst, const uint8_t *src, uint32_t len, uint8_t fill)
{
    memcpy(f, dst, 6);
    memcpy(f + 6, src, 6);
    f[12] = 0x08;
    f[13] = 0x00;
    memset(f + 14, fill, len - 14);
}

/* ---- a ring region this test owns (a hostile or simple "switch") ---- */

struct fake_switch {
    struct kvc_ring_region rg;
    int memfd, kick, call;
};

static void fake_switch(struct fake_switch *s, uint32_t nslots, uint32_t slot, struct virtio_net *n)
{
    assert_int_equal(kvc_ring_region_create(nslots, slot, MAC, 1500, &s->memfd, &s->rg), 0);
    s->kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    s->call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    assert_true(s->kick >= 0 && s->call >= 0);
    assert_int_equal(virtio_net_attach_backend(n, dup(s->memfd), dup(s->kick), dup(s->call)), 0);
}

static void fake_switch_free(struct fake_switch *s)
{
    kvc_ring_region_unmap(&s->rg);
    close(s->memfd);
    close(s->kick);
    close(s->call);
}

/* The switch puts a frame of LEN bytes into the VM's rx ring. */
static void fs_send(struct fake_switch *s, const uint8_t *frame, uint32_t len, uint32_t slot_len)
{
    struct kvc_ring *rx = &s->rg.rx;
    struct kvc_ring_slot *sl = kvc_ring_slot(rx, rx->shadow);
    memcpy(sl->data, frame, len);
    sl->len = slot_len;
    rx->shadow++;
    kvc_ring_prod_publish(rx);
}

/* ---- tests ---- */

static void test_identity_and_config(void **st)
{
    (void)st;
    struct virtio_net n;
    virtio_net_init(&n, &mem, &irq, MAC, 1500, &lock);
    assert_int_equal(r32(&n, 0x000), VIRTIO_MMIO_MAGIC);
    assert_int_equal(r32(&n, 0x008), VIRTIO_ID_NET);
    w32(&n, 0x14, 0);
    uint32_t lo = r32(&n, 0x10);
    w32(&n, 0x14, 1);
    uint32_t hi = r32(&n, 0x10);
    assert_true(lo & (1u << VIRTIO_NET_F_MAC));
    assert_true(lo & (1u << VIRTIO_NET_F_STATUS));
    assert_true(lo & (1u << VIRTIO_NET_F_MTU));
    assert_true(hi & 1);                        /* VERSION_1 */
    uint8_t cfg[12];
    for (unsigned i = 0; i < sizeof(cfg); i++)
        virtio_mmio_read(&n.dev, 0x100 + i, &cfg[i], 1);
    assert_memory_equal(cfg, MAC, 6);
    assert_int_equal(cfg[6] | cfg[7] << 8, 0);  /* no backend: link down */
    assert_int_equal(cfg[10] | cfg[11] << 8, 1500);
    /* The MAC is read-only; reads past the config are zeros, not a crash. */
    uint8_t bad[6] = { 1, 2, 3, 4, 5, 6 };
    virtio_mmio_write(&n.dev, 0x100, bad, 6);
    uint8_t m2[4];
    virtio_mmio_read(&n.dev, 0x100, m2, 4);
    assert_memory_equal(m2, MAC, 4);
    virtio_mmio_read(&n.dev, 0x100 + 0xe00, m2, 4);
    assert_int_equal(m2[0] | m2[1] | m2[2] | m2[3], 0);
    /* A legacy driver (no VERSION_1) is refused at FEATURES_OK. */
    w32(&n, 0x70, 1 | 2);
    w32(&n, 0x24, 0);
    w32(&n, 0x20, 1u << VIRTIO_NET_F_MAC);
    w32(&n, 0x70, 1 | 2 | 8);
    assert_false(r32(&n, 0x70) & 8);
    virtio_net_destroy(&n);
}

/* Guest -> real vSwitch -> dummy port and back, synchronously. */
static void test_through_switch(void **st)
{
    (void)st;
    struct vs_switch *sw;
    struct vs_switch_opts so = { .name = "vs0" };
    struct vs_pg_config pc;
    struct vs_port *vp, *dp;
    assert_int_equal(vs_create(&so, &sw), 0);
    vs_pg_config_default(&pc, false);
    assert_int_equal(vs_pg_add(sw, "VM Network", &pc), 0);
    assert_int_equal(vs_port_add_ring(sw, "vm", "VM Network", MAC, NULL, &vp), 0);
    assert_int_equal(vs_port_add_dummy(sw, "peer", "VM Network", PEER, &dp), 0);
    int memfd, kick, call;
    assert_int_equal(vs_port_ring_fds(vp, &memfd, &kick, &call), 0);

    struct virtio_net n;
    virtio_net_init(&n, &mem, &irq, MAC, 1500, &lock);
    assert_int_equal(virtio_net_attach_backend(&n, dup(memfd), dup(kick), dup(call)), 0);
    assert_true(virtio_net_link_up(&n));
    driver_up(&n);
    for (unsigned i = 0; i < 4; i++)
        post_rx(i, BUFSZ);
    post_tx(0, PEER, 100, 0xab);
    post_tx(1, PEER, 1514, 0xcd);               /* a full-MTU frame */
    assert_int_equal(virtio_net_poll(&n), 2);
    assert_int_equal(used_idx(VIRTIO_NET_Q_TX), 2);
    assert_true(vs_run_once(sw) >= 2);
    uint8_t buf[2048];
    assert_int_equal(vs_dummy_recv(dp, buf, sizeof(buf)), 100);
    assert_memory_equal(buf, PEER, 6);
    assert_memory_equal(buf + 6, MAC, 6);
    assert_int_equal(buf[50], 0xab);
    assert_int_equal(vs_dummy_recv(dp, buf, sizeof(buf)), 1514);
    assert_int_equal(buf[1513], 0xcd);

    uint8_t f[200];
    make_frame(f, MAC, PEER, sizeof(f), 0x5a);
    assert_int_equal(vs_dummy_inject(dp, f, sizeof(f)), 0);
    assert_true(vs_run_once(sw) >= 1);
    assert_int_equal(virtio_net_poll(&n), 1);
    assert_int_equal(used_idx(VIRTIO_NET_Q_RX), 1);
    uint32_t id, len;
    used_elem(VIRTIO_NET_Q_RX, 0, &id, &len);
    assert_int_equal(id, 0);
    assert_int_equal(len, VIRTIO_NET_HDR_LEN + sizeof(f));
    const uint8_t *rb = mem.hva + RXBUF;
    assert_int_equal(rb[10], 1);                /* num_buffers */
    assert_int_equal(rb[0] | rb[1], 0);         /* no flags, no GSO */
    assert_memory_equal(rb + VIRTIO_NET_HDR_LEN, f, sizeof(f));
    assert_int_equal(n.st.tx_packets, 2);
    assert_int_equal(n.st.rx_packets, 1);
    assert_true(irq_level);                     /* the driver did not suppress interrupts */
    /* A kick through the QueueNotify register (an MMIO exit, no ioeventfd)
     * does the work on the spot. */
    post_tx(2, PEER, 80, 0xee);
    w32(&n, 0x50, VIRTIO_NET_Q_TX);
    assert_int_equal(used_idx(VIRTIO_NET_Q_TX), 3);
    assert_true(vs_run_once(sw) >= 1);
    assert_int_equal(vs_dummy_recv(dp, buf, sizeof(buf)), 80);
    assert_int_equal(buf[79], 0xee);

    virtio_net_destroy(&n);
    vs_destroy(sw);
}

static void test_bad_tx_frames(void **st)
{
    (void)st;
    struct virtio_net n;
    struct fake_switch s;
    virtio_net_init(&n, &mem, &irq, MAC, 1500, &lock);
    fake_switch(&s, 16, 2048, &n);
    driver_up(&n);
    kvc_ring_attach_consumer(&s.rg.tx);
    post_tx(0, PEER, 10, 0);                    /* runt: shorter than an Ethernet header */
    post_tx(1, PEER, 1500 + 18 + 1, 0);         /* above MTU + header + tag */
    post_tx(2, PEER, 60, 0);
    mem.hva[TXBUF + 2 * BUFSZ + 1] = 4;         /* GSO type nobody negotiated */
    post_tx(3, PEER, 60, 0x11);                 /* a good one after all that */
    /* Header split over two descriptors is fine too. */
    desc(VIRTIO_NET_Q_TX, 4, TXBUF + 4 * BUFSZ, 5, VIRTQ_DESC_F_NEXT, 5);
    desc(VIRTIO_NET_Q_TX, 5, TXBUF + 4 * BUFSZ + 5, VIRTIO_NET_HDR_LEN - 5 + 64, 0, 0);
    memset(mem.hva + TXBUF + 4 * BUFSZ, 0, VIRTIO_NET_HDR_LEN);
    memcpy(mem.hva + TXBUF + 4 * BUFSZ + VIRTIO_NET_HDR_LEN, PEER, 6);
    avail_push(VIRTIO_NET_Q_TX, 4);
    assert_int_equal(virtio_net_poll(&n), 5);
    assert_int_equal(used_idx(VIRTIO_NET_Q_TX), 5);     /* every buffer is returned */
    assert_int_equal(n.st.tx_runt, 1);
    assert_int_equal(n.st.tx_oversize, 1);
    assert_int_equal(n.st.tx_bad_hdr, 1);
    assert_int_equal(n.st.tx_packets, 2);
    assert_int_equal(kvc_ring_cons_avail(&s.rg.tx), 2);
    struct kvc_ring_slot *sl = kvc_ring_slot(&s.rg.tx, s.rg.tx.shadow);
    assert_int_equal(sl->len, 60);
    assert_int_equal(sl->data[20], 0x11);
    sl = kvc_ring_slot(&s.rg.tx, s.rg.tx.shadow + 1);
    assert_int_equal(sl->len, 64);
    assert_memory_equal(sl->data, PEER, 6);
    /* The switch was not waiting (cons_wait 0): no kick. */
    assert_int_equal(n.st.kicks_out, 0);

    /* A descriptor loop breaks the tx queue only: NEEDS_RESET, counted;
     * the rx queue still delivers. */
    desc(VIRTIO_NET_Q_TX, 6, TXBUF, 40, VIRTQ_DESC_F_NEXT, 7);
    desc(VIRTIO_NET_Q_TX, 7, TXBUF, 40, VIRTQ_DESC_F_NEXT, 6);
    avail_push(VIRTIO_NET_Q_TX, 6);
    virtio_net_poll(&n);
    assert_int_equal(n.st.queue_broken, 1);
    assert_true(r32(&n, 0x70) & VIRTIO_STATUS_NEEDS_RESET);
    assert_int_equal(used_idx(VIRTIO_NET_Q_TX), 5);
    post_rx(0, BUFSZ);
    uint8_t f[64];
    make_frame(f, MAC, PEER, sizeof(f), 1);
    kvc_ring_attach_producer(&s.rg.rx);
    fs_send(&s, f, sizeof(f), sizeof(f));
    assert_int_equal(virtio_net_poll(&n), 1);
    assert_int_equal(used_idx(VIRTIO_NET_Q_RX), 1);
    /* The broken queue moves nothing more; a reset brings it back. */
    post_tx(8, PEER, 60, 0x22);
    virtio_net_poll(&n);
    assert_int_equal(n.st.tx_packets, 2);
    driver_up(&n);
    post_tx(0, PEER, 60, 0x33);
    assert_int_equal(virtio_net_poll(&n), 1);
    assert_int_equal(n.st.tx_packets, 3);
    virtio_net_destroy(&n);
    fake_switch_free(&s);
}

static void test_hostile_rx_ring(void **st)
{
    (void)st;
    struct virtio_net n;
    struct fake_switch s;
    virtio_net_init(&n, &mem, &irq, MAC, 1500, &lock);
    fake_switch(&s, 8, 2048, &n);
    driver_up(&n);
    kvc_ring_attach_producer(&s.rg.rx);
    uint8_t f[100];
    make_frame(f, MAC, PEER, sizeof(f), 7);
    /* Frames but no guest buffers: they wait in the ring. */
    fs_send(&s, f, sizeof(f), sizeof(f));
    assert_int_equal(virtio_net_poll(&n), 0);
    assert_true(n.rx_stalled);
    assert_int_equal(kvc_ring_cons_avail(&n.rg.rx), 1);
    post_rx(0, BUFSZ);
    assert_int_equal(virtio_net_poll(&n), 1);
    assert_false(n.rx_stalled);
    /* A slot length beyond the slot, one below an Ethernet header, then a
     * frame larger than the guest's buffer: all dropped and counted. */
    fs_send(&s, f, sizeof(f), 5000);
    fs_send(&s, f, sizeof(f), 3);
    post_rx(1, 60);
    fs_send(&s, f, sizeof(f), sizeof(f));
    post_rx(2, BUFSZ);
    fs_send(&s, f, sizeof(f), sizeof(f));
    assert_int_equal(virtio_net_poll(&n), 4);
    assert_int_equal(n.st.rx_ring_error, 2);
    assert_int_equal(n.st.rx_small_buf, 1);
    assert_int_equal(n.st.rx_packets, 2);
    assert_int_equal(used_idx(VIRTIO_NET_Q_RX), 3);
    uint32_t id, len;
    used_elem(VIRTIO_NET_Q_RX, 1, &id, &len);
    assert_int_equal(id, 1);
    assert_int_equal(len, 0);                   /* the small buffer came back empty */
    /* A wild prod index: counted, the device skips to it, nothing is read
     * from slots the switch never filled. */
    __atomic_store_n(&s.rg.rx.ctl->prod, s.rg.rx.shadow + 1000, __ATOMIC_RELEASE);
    assert_int_equal(virtio_net_poll(&n), 0);
    assert_int_equal(n.st.rx_ring_error, 3);
    assert_int_equal(n.st.rx_packets, 2);
    /* A wild cons index on the tx ring: the device refuses to write. */
    post_tx(0, PEER, 60, 0);
    __atomic_store_n(&s.rg.tx.ctl->cons, 12345, __ATOMIC_RELEASE);
    virtio_net_poll(&n);
    assert_int_equal(n.st.tx_ring_error, 1);
    assert_int_equal(n.st.tx_packets, 0);
    /* The header is never re-read: scribbling it changes nothing. */
    memset(s.rg.base, 0xff, 64);
    __atomic_store_n(&s.rg.tx.ctl->cons, 0, __ATOMIC_RELEASE);
    s.rg.rx.shadow = __atomic_load_n(&s.rg.rx.ctl->prod, __ATOMIC_ACQUIRE);
    post_rx(3, BUFSZ);
    fs_send(&s, f, sizeof(f), sizeof(f));
    assert_true(virtio_net_poll(&n) >= 1);
    assert_int_equal(n.st.rx_packets, 3);
    assert_int_equal(n.st.tx_packets, 1);
    virtio_net_destroy(&n);
    fake_switch_free(&s);
}

static void test_tx_backpressure_and_kicks(void **st)
{
    (void)st;
    struct virtio_net n;
    struct fake_switch s;
    virtio_net_init(&n, &mem, &irq, MAC, 1500, &lock);
    fake_switch(&s, 2, 2048, &n);
    driver_up(&n);
    kvc_ring_attach_consumer(&s.rg.tx);
    /* The switch sleeps: it asks for a kick. */
    assert_false(kvc_ring_cons_prepare_wait(&s.rg.tx));
    for (unsigned i = 0; i < 5; i++)
        post_tx(i, PEER, 60, (uint8_t)i);
    assert_int_equal(virtio_net_poll(&n), 2);
    assert_true(n.tx_full);
    assert_int_equal(used_idx(VIRTIO_NET_Q_TX), 2);     /* the rest stays with the guest */
    assert_int_equal(n.st.kicks_out, 1);                /* one kick for the batch */
    uint64_t v;
    assert_int_equal(read(s.kick, &v, sizeof(v)), sizeof(v));
    assert_int_equal(v, 1);
    /* The switch consumes; the device sends the rest, in order. */
    for (unsigned round = 0; round < 3; round++) {
        int k = kvc_ring_cons_avail(&s.rg.tx);
        for (int j = 0; j < k; j++) {
            struct kvc_ring_slot *sl = kvc_ring_slot(&s.rg.tx, s.rg.tx.shadow);
            assert_int_equal(sl->data[20], (uint8_t)(s.rg.tx.shadow));
            s.rg.tx.shadow++;
        }
        kvc_ring_cons_release(&s.rg.tx);
        virtio_net_poll(&n);
    }
    assert_int_equal(used_idx(VIRTIO_NET_Q_TX), 5);
    assert_int_equal(n.st.tx_packets, 5);
    virtio_net_destroy(&n);
    fake_switch_free(&s);
}

static void test_link_down(void **st)
{
    (void)st;
    struct virtio_net n;
    struct fake_switch s;
    virtio_net_init(&n, &mem, &irq, MAC, 1500, &lock);
    fake_switch(&s, 8, 2048, &n);
    driver_up(&n);
    kvc_ring_attach_producer(&s.rg.rx);
    uint32_t gen = r32(&n, 0xfc);
    irq_level = 0;
    virtio_net_set_link(&n, false);
    assert_int_equal(r32(&n, 0xfc), gen + 1);           /* config generation */
    assert_true(r32(&n, 0x60) & 2);                     /* config-change interrupt */
    assert_true(irq_level);
    uint8_t c[2];
    virtio_mmio_read(&n.dev, 0x106, c, 2);
    assert_int_equal(c[0], 0);
    post_tx(0, PEER, 60, 0);
    post_rx(0, BUFSZ);
    uint8_t f[64];
    make_frame(f, MAC, PEER, sizeof(f), 1);
    fs_send(&s, f, sizeof(f), sizeof(f));
    virtio_net_poll(&n);
    assert_int_equal(n.st.tx_link_down, 1);
    assert_int_equal(n.st.rx_link_down, 1);
    assert_int_equal(used_idx(VIRTIO_NET_Q_TX), 1);
    assert_int_equal(used_idx(VIRTIO_NET_Q_RX), 0);
    virtio_net_set_link(&n, true);
    virtio_mmio_read(&n.dev, 0x106, c, 2);
    assert_int_equal(c[0], VIRTIO_NET_S_LINK_UP);
    fs_send(&s, f, sizeof(f), sizeof(f));
    assert_int_equal(virtio_net_poll(&n), 1);
    assert_int_equal(n.st.rx_packets, 1);
    virtio_net_destroy(&n);
    fake_switch_free(&s);
}

static void test_bad_backend(void **st)
{
    (void)st;
    struct virtio_net n;
    virtio_net_init(&n, &mem, &irq, MAC, 1500, &lock);
    int junk = memfd_create("junk", MFD_CLOEXEC);
    assert_true(junk >= 0);
    assert_int_equal(ftruncate(junk, 65536), 0);
    assert_int_equal(virtio_net_attach_backend(&n, junk, eventfd(0, 0), eventfd(0, 0)), -EPROTO);
    assert_false(n.backend);
    virtio_net_destroy(&n);
    /* Slots too small for the adapter's MTU. */
    virtio_net_init(&n, &mem, &irq, MAC, 9000, &lock);
    struct kvc_ring_region rg;
    int fd;
    assert_int_equal(kvc_ring_region_create(8, 2048, MAC, 1500, &fd, &rg), 0);
    assert_int_equal(virtio_net_attach_backend(&n, fd, eventfd(0, 0), eventfd(0, 0)), -EPROTO);
    kvc_ring_region_unmap(&rg);
    virtio_net_destroy(&n);
    virtio_net_init(&n, &mem, &irq, MAC, 1500, &lock);
    assert_int_equal(virtio_net_attach_backend(&n, -1, -1, -1), -EBADF);
    virtio_net_destroy(&n);
}

static void test_state(void **st)
{
    (void)st;
    struct virtio_net a, b;
    struct fake_switch s;
    virtio_net_init(&a, &mem, &irq, MAC, 1500, &lock);
    fake_switch(&s, 8, 2048, &a);
    driver_up(&a);
    virtio_net_set_link(&a, false);
    struct sbuf buf;
    sbuf_init(&buf);
    virtio_mmio_save(&a.dev, &buf);
    assert_int_equal(buf.err, 0);
    virtio_net_init(&b, &mem, &irq, MAC, 1500, &lock);
    struct sreader r;
    sreader_init(&r, buf.p, buf.len);
    assert_int_equal(virtio_mmio_load(&b.dev, &r), 0);
    assert_false(b.link_up);
    assert_int_equal(b.dev.status, a.dev.status);
    assert_true(b.dev.q[VIRTIO_NET_Q_TX].ready);
    /* Another MAC, or a truncated stream, is refused. */
    struct virtio_net c;
    virtio_net_init(&c, &mem, &irq, PEER, 1500, &lock);
    sreader_init(&r, buf.p, buf.len);
    assert_true(virtio_mmio_load(&c.dev, &r) < 0);
    for (size_t cut = 0; cut < buf.len; cut += 7) {
        virtio_net_init(&c, &mem, &irq, MAC, 1500, &lock);
        sreader_init(&r, buf.p, cut);
        assert_true(virtio_mmio_load(&c.dev, &r) < 0);
    }
    sbuf_free(&buf);
    virtio_net_destroy(&a);
    virtio_net_destroy(&b);
    fake_switch_free(&s);
}

/* The data path thread with the switch's own thread: guest kicks through
 * the notify eventfd, frames reach the dummy port, and back. */
static void test_threads(void **st)
{
    (void)st;
    struct vs_switch *sw;
    struct vs_switch_opts so = { .name = "vs0" };
    struct vs_pg_config pc;
    struct vs_port *vp, *dp;
    assert_int_equal(vs_create(&so, &sw), 0);
    vs_pg_config_default(&pc, false);
    assert_int_equal(vs_pg_add(sw, "pg", &pc), 0);
    assert_int_equal(vs_port_add_ring(sw, "vm", "pg", MAC, NULL, &vp), 0);
    assert_int_equal(vs_port_add_dummy(sw, "peer", "pg", PEER, &dp), 0);
    int memfd, kick, call;
    assert_int_equal(vs_port_ring_fds(vp, &memfd, &kick, &call), 0);
    struct virtio_net n;
    virtio_net_init(&n, &mem, &irq, MAC, 1500, &lock);
    assert_int_equal(virtio_net_attach_backend(&n, dup(memfd), dup(kick), dup(call)), 0);
    pthread_mutex_lock(&lock);
    driver_up(&n);
    for (unsigned i = 0; i < QSZ; i++)
        post_rx(i, BUFSZ);
    pthread_mutex_unlock(&lock);
    assert_int_equal(virtio_net_start(&n), 0);
    assert_int_equal(vs_start(sw), 0);
    const int N = 200;
    int sent = 0, got = 0, back = 0;
    uint8_t buf[2048];
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        pthread_mutex_lock(&lock);
        uint16_t done = used_idx(VIRTIO_NET_Q_TX);
        while (sent < N && (uint16_t)(sent - done) < QSZ) {
            post_tx((unsigned)sent % QSZ, PEER, 64 + (uint32_t)(sent % 100), (uint8_t)sent);
            sent++;
        }
        /* Recycle rx buffers the device used. */
        while (back < (int)used_idx(VIRTIO_NET_Q_RX)) {
            uint32_t id, len;
            used_elem(VIRTIO_NET_Q_RX, (unsigned)back, &id, &len);
            assert_int_equal(len, VIRTIO_NET_HDR_LEN + 100);
            post_rx(id, BUFSZ);
            back++;
        }
        pthread_mutex_unlock(&lock);
        kvc_ring_kick(virtio_net_notify_fd(&n));
        int r;
        while ((r = vs_dummy_recv(dp, buf, sizeof(buf))) > 0) {
            assert_int_equal(r, 64 + got % 100);
            assert_int_equal(buf[20], (uint8_t)got);
            got++;
            uint8_t f[100];
            make_frame(f, MAC, PEER, sizeof(f), 3);
            assert_int_equal(vs_dummy_inject(dp, f, sizeof(f)), 0);
        }
        if (got == N && back == N)
            break;
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        assert_true(t.tv_sec - t0.tv_sec < 20);        /* deadline, not a timing check */
        usleep(200);
    }
    vs_stop(sw);
    virtio_net_stop(&n);
    assert_int_equal(n.st.tx_packets, N);
    assert_int_equal(n.st.rx_packets, N);
    virtio_net_destroy(&n);
    vs_destroy(sw);
}

/* Waits (deadline 20 s) for the dummy peer to get one frame; its length. */
static int peer_recv(struct vs_port *dp, uint8_t *buf, size_t cap)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        int r = vs_dummy_recv(dp, buf, cap);
        if (r > 0)
            return r;
        clock_gettime(CLOCK_MONOTONIC, &t);
        assert_true(t.tv_sec - t0.tv_sec < 20);
        usleep(500);
    }
}

/* vmkd restarted: the port goes (link down for the guest, frames dropped
 * and counted), a new port on another switch replaces it while the data
 * path thread runs, and frames flow again. */
static void test_port_replaced(void **st)
{
    (void)st;
    struct vs_switch *sw[2];
    struct vs_port *vp[2], *dp[2];
    int fds[2][3];
    for (int k = 0; k < 2; k++) {
        struct vs_switch_opts so = { .name = k ? "vs1" : "vs0" };
        struct vs_pg_config pc;
        assert_int_equal(vs_create(&so, &sw[k]), 0);
        vs_pg_config_default(&pc, false);
        assert_int_equal(vs_pg_add(sw[k], "pg", &pc), 0);
        assert_int_equal(vs_port_add_ring(sw[k], "vm", "pg", MAC, NULL, &vp[k]), 0);
        assert_int_equal(vs_port_add_dummy(sw[k], "peer", "pg", PEER, &dp[k]), 0);
        assert_int_equal(vs_port_ring_fds(vp[k], &fds[k][0], &fds[k][1], &fds[k][2]), 0);
        assert_int_equal(vs_start(sw[k]), 0);
    }
    struct virtio_net n;
    virtio_net_init(&n, &mem, &irq, MAC, 1500, &lock);
    assert_int_equal(virtio_net_attach_backend(&n, dup(fds[0][0]), dup(fds[0][1]),
                                               dup(fds[0][2])), 0);
    pthread_mutex_lock(&lock);
    driver_up(&n);
    pthread_mutex_unlock(&lock);
    assert_int_equal(virtio_net_start(&n), 0);
    uint8_t buf[2048];

    pthread_mutex_lock(&lock);
    post_tx(0, PEER, 80, 1);
    pthread_mutex_unlock(&lock);
    kvc_ring_kick(virtio_net_notify_fd(&n));
    assert_int_equal(peer_recv(dp[0], buf, sizeof(buf)), 80);

    pthread_mutex_lock(&lock);
    uint32_t gen = n.dev.config_gen;
    virtio_net_detach_backend(&n);
    assert_false(virtio_net_link_up(&n));
    assert_int_equal(n.dev.config_gen, gen + 1);        /* the guest is told */
    assert_int_equal(n.memfd, -1);
    post_tx(1, PEER, 80, 2);
    pthread_mutex_unlock(&lock);
    kvc_ring_kick(virtio_net_notify_fd(&n));
    for (int i = 0; i < 20000; i++) {
        pthread_mutex_lock(&lock);
        bool done = n.st.tx_link_down == 1;
        pthread_mutex_unlock(&lock);
        if (done)
            break;
        usleep(1000);
    }
    assert_int_equal(n.st.tx_link_down, 1);

    pthread_mutex_lock(&lock);
    gen = n.dev.config_gen;
    assert_int_equal(virtio_net_replace_backend(&n, dup(fds[1][0]), dup(fds[1][1]),
                                                dup(fds[1][2])), 0);
    assert_true(virtio_net_link_up(&n));
    assert_int_equal(n.dev.config_gen, gen + 1);
    post_tx(2, PEER, 90, 3);
    pthread_mutex_unlock(&lock);
    kvc_ring_kick(virtio_net_notify_fd(&n));
    assert_int_equal(peer_recv(dp[1], buf, sizeof(buf)), 90);
    assert_int_equal(vs_dummy_recv(dp[0], buf, sizeof(buf)), -EAGAIN); /* not the old switch */
    /* A region that is not a ring is refused; the adapter stays without
     * a backend and keeps no fd. */
    pthread_mutex_lock(&lock);
    int bad = eventfd(0, EFD_CLOEXEC);
    assert_true(virtio_net_replace_backend(&n, bad, dup(fds[1][1]), dup(fds[1][2])) < 0);
    assert_false(n.backend);
    assert_int_equal(n.memfd, -1);
    assert_int_equal(n.call_fd, -1);
    pthread_mutex_unlock(&lock);
    virtio_net_destroy(&n);
    for (int k = 0; k < 2; k++) {
        vs_stop(sw[k]);
        vs_destroy(sw[k]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_identity_and_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_through_switch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_tx_frames, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_rx_ring, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_backpressure_and_kicks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_link_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_backend, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_port_replaced, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
