/* The shared-memory ring ABI (ring.h) and ring ports, including a hostile
 * peer writing impossible indexes and lengths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "ring.h"
#include "vswitch.h"

static const uint8_t MAC_A[6] = { 0x00, 0x50, 0x56, 0x00, 0x00, 0x0a };
static const uint8_t MAC_B[6] = { 0x00, 0x50, 0x56, 0x00, 0x00, 0x0b };
static const uint8_t BCAST[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

/* The VM side of a ring port, as vmx's virtio-net backend will hold it. */
struct guest {
    struct kvc_ring_region rg;
    int kick_fd, call_fd;
};

static void
guest_attach(struct vs_port *p, struct guest *g)
{
    int memfd;
    assert_int_equal(vs_port_ring_fds(p, &memfd, &g->kick_fd, &g->call_fd), 0);
    assert_int_equal(kvc_ring_region_map(memfd, &g->rg), 0);
    kvc_ring_attach_producer(&g->rg.tx);
    kvc_ring_attach_consumer(&g->rg.rx);
}

static int
guest_send(struct guest *g, const uint8_t *f, uint32_t len)
{
    int space = kvc_ring_prod_space(&g->rg.tx);
    if (space <= 0)
        return -ENOBUFS;
    struct kvc_ring_slot *s = kvc_ring_slot(&g->rg.tx, g->rg.tx.shadow);
    memcpy(s->data, f, len);
    s->len = len;
    g->rg.tx.shadow++;
    return 0;
}

static int
guest_recv(struct guest *g, uint8_t *buf, uint32_t *len)
{
    int n = kvc_ring_cons_avail(&g->rg.rx);
    if (n <= 0)
        return n < 0 ? n : -EAGAIN;
    struct kvc_ring_slot *s = kvc_ring_slot(&g->rg.rx, g->rg.rx.shadow);
    *len = s->len;
    memcpy(buf, s->data, s->len);
    g->rg.rx.shadow++;
    kvc_ring_cons_release(&g->rg.rx);
    return 0;
}

static size_t
mkframe(uint8_t *b, const uint8_t *dst, const uint8_t *src, size_t payload, uint8_t fill)
{
    memcpy(b, dst, 6);
    memcpy(b + 6, src, 6);
    b[12] = 0x88;
    b[13] = 0xb5;
    memset(b + 14, fill, payload);
    return 14 + payload;
}

static struct vs_switch *
mksw(unsigned mtu)
{
    struct vs_switch_opts o = { .mtu = mtu };
    struct vs_switch *sw;
    assert_int_equal(vs_create(&o, &sw), 0);
    struct vs_pg_config c;
    vs_pg_config_default(&c, false);
    assert_int_equal(vs_pg_add(sw, "pg", &c), 0);
    c.vlan = VS_VLAN_TRUNK;
    assert_int_equal(vs_pg_add(sw, "trunk", &c), 0);
    return sw;
}

static void
test_region_create_and_map(void **state)
{
    struct kvc_ring_region a, b;
    int fd;
    assert_int_equal(kvc_ring_region_create(3, 2048, NULL, 1500, &fd, &a), -EINVAL);
    assert_int_equal(kvc_ring_region_create(8, 100, NULL, 1500, &fd, &a), -EINVAL);
    assert_int_equal(kvc_ring_region_create(8192, 2048, NULL, 1500, &fd, &a), -EINVAL);
    assert_int_equal(kvc_ring_region_create(64, 2048, MAC_A, 1500, &fd, &a), 0);
    assert_int_equal(kvc_ring_region_map(fd, &b), 0);
    assert_int_equal(b.tx.nslots, 64);
    assert_int_equal(b.rx.slot_size, 2048);
    assert_int_equal(memcmp(((struct kvc_ring_shm *)b.base)->mac, MAC_A, 6), 0);
    /* Shared: a frame written through one mapping shows in the other. */
    kvc_ring_slot(&a.tx, 5)->len = 77;
    assert_int_equal(kvc_ring_slot(&b.tx, 5)->len, 77);
    kvc_ring_region_unmap(&b);
    /* A peer that scribbles on the header is refused at map time. */
    struct kvc_ring_shm *h = a.base;
    h->tx_slots_off = 1u << 30;
    assert_int_equal(kvc_ring_region_map(fd, &b), -EPROTO);
    h->tx_slots_off = a.tx.slots - (uint8_t *)a.base;
    h->magic = 0;
    assert_int_equal(kvc_ring_region_map(fd, &b), -EPROTO);
    h->magic = KVC_RING_MAGIC;
    h->nslots = 1u << 20;
    assert_int_equal(kvc_ring_region_map(fd, &b), -EPROTO);
    kvc_ring_region_unmap(&a);
    close(fd);
    /* Too small a file. */
    int mfd = memfd_create("t", 0);
    assert_int_equal(kvc_ring_region_map(mfd, &b), -EPROTO);
    close(mfd);
}

static void
test_ring_ports_forward(void **state)
{
    struct vs_switch *sw = mksw(0);
    struct vs_port *pa, *pb;
    assert_int_equal(vs_port_add_ring(sw, "a", "pg", MAC_A, NULL, &pa), 0);
    assert_int_equal(vs_port_add_ring(sw, "b", "pg", MAC_B, NULL, &pb), 0);
    struct guest ga, gb;
    guest_attach(pa, &ga);
    guest_attach(pb, &gb);
    assert_int_equal(ga.rg.tx.slot_size, 2048);
    uint8_t f[2048], r[2048];
    uint32_t l;
    for (int i = 0; i < 3; i++)
        assert_int_equal(guest_send(&ga, f, (uint32_t)mkframe(f, MAC_B, MAC_A, 100, (uint8_t)i)), 0);
    kvc_ring_prod_publish(&ga.rg.tx);
    assert_int_equal(vs_run_once(sw), 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(guest_recv(&gb, r, &l), 0);
        assert_int_equal(l, 114);
        assert_int_equal(r[20], i);
    }
    assert_int_equal(guest_recv(&gb, r, &l), -EAGAIN);
    struct vs_stats s;
    vs_port_stats(pa, &s);
    assert_int_equal(s.rx_packets, 3);
    vs_port_stats(pb, &s);
    assert_int_equal(s.tx_bytes, 342);
    assert_int_equal(vs_port_ring_fds(NULL, NULL, NULL, NULL), -EINVAL);
    kvc_ring_region_unmap(&ga.rg);
    kvc_ring_region_unmap(&gb.rg);
    vs_destroy(sw);
}

static void
test_rx_ring_full_drops(void **state)
{
    struct vs_switch *sw = mksw(0);
    struct vs_port *pa, *pb;
    struct vs_ring_opts o = { .nslots = 16 };
    assert_int_equal(vs_port_add_ring(sw, "a", "pg", MAC_A, &o, &pa), 0);
    assert_int_equal(vs_port_add_ring(sw, "b", "pg", MAC_B, &o, &pb), 0);
    struct guest ga, gb;
    guest_attach(pa, &ga);
    guest_attach(pb, &gb);
    uint8_t f[2048];
    int sent = 0;
    for (int round = 0; round < 3; round++) {
        while (guest_send(&ga, f, (uint32_t)mkframe(f, MAC_B, MAC_A, 46, 0)) == 0)
            sent++;
        kvc_ring_prod_publish(&ga.rg.tx);
        while (vs_run_once(sw) > 0)
            ;
    }
    assert_int_equal(sent, 48);
    struct vs_stats s;
    vs_port_stats(pb, &s);
    assert_int_equal(s.tx_packets, 16);
    assert_int_equal(s.drops[VS_DROP_NOSPACE], 32);
    kvc_ring_region_unmap(&ga.rg);
    kvc_ring_region_unmap(&gb.rg);
    vs_destroy(sw);
}

static void
test_hostile_peer(void **state)
{
    struct vs_switch *sw = mksw(0);
    struct vs_port *pa, *pb;
    assert_int_equal(vs_port_add_ring(sw, "a", "pg", MAC_A, NULL, &pa), 0);
    assert_int_equal(vs_port_add_ring(sw, "b", "pg", MAC_B, NULL, &pb), 0);
    struct guest ga, gb;
    guest_attach(pa, &ga);
    guest_attach(pb, &gb);
    struct vs_stats s;
    uint8_t f[2048], r[2048];
    uint32_t l;
    /* prod far beyond cons. */
    __atomic_store_n(&ga.rg.tx.ctl->prod, 100000u, __ATOMIC_RELEASE);
    assert_int_equal(vs_run_once(sw), 0);
    vs_port_stats(pa, &s);
    assert_int_equal(s.drops[VS_DROP_RING_ERROR], 1);
    /* The switch skipped to prod; a sane frame after that works. */
    ga.rg.tx.shadow = 100000u;
    guest_send(&ga, f, (uint32_t)mkframe(f, MAC_B, MAC_A, 46, 1));
    kvc_ring_prod_publish(&ga.rg.tx);
    assert_int_equal(vs_run_once(sw), 1);
    assert_int_equal(guest_recv(&gb, r, &l), 0);
    /* Slot lengths: huge, just over the slot, zero, short. */
    uint32_t lens[] = { 0xffffffffu, 2041, 0, 3, 13, 9019 };
    for (unsigned i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        guest_send(&ga, f, 60);
        kvc_ring_slot(&ga.rg.tx, ga.rg.tx.shadow - 1)->len = lens[i];
    }
    kvc_ring_prod_publish(&ga.rg.tx);
    while (vs_run_once(sw) > 0)
        ;
    vs_port_stats(pa, &s);
    assert_int_equal(s.drops[VS_DROP_MALFORMED], 3);
    assert_int_equal(s.drops[VS_DROP_RUNT], 3);
    /* prod moving backwards is just as impossible. */
    __atomic_store_n(&ga.rg.tx.ctl->prod, 5u, __ATOMIC_RELEASE);
    vs_run_once(sw);
    vs_port_stats(pa, &s);
    assert_int_equal(s.drops[VS_DROP_RING_ERROR], 2);
    /* A receiver that writes a wild cons: the switch will not overwrite
     * slots it does not own. */
    __atomic_store_n(&gb.rg.rx.ctl->cons, 0x80000000u, __ATOMIC_RELEASE);
    ga.rg.tx.shadow = 5;
    guest_send(&ga, f, (uint32_t)mkframe(f, MAC_B, MAC_A, 46, 1));
    kvc_ring_prod_publish(&ga.rg.tx);
    vs_run_once(sw);
    vs_port_stats(pb, &s);
    assert_int_equal(s.drops[VS_DROP_RING_ERROR], 1);
    /* Scribbling on the header changes nothing for the switch. */
    memset(ga.rg.base, 0xff, sizeof(struct kvc_ring_shm));
    __atomic_store_n(&gb.rg.rx.ctl->cons, 1u, __ATOMIC_RELEASE);
    gb.rg.rx.shadow = 1;
    guest_send(&ga, f, (uint32_t)mkframe(f, MAC_B, MAC_A, 46, 1));
    kvc_ring_prod_publish(&ga.rg.tx);
    assert_int_equal(vs_run_once(sw), 1);
    assert_int_equal(guest_recv(&gb, r, &l), 0);
    kvc_ring_region_unmap(&ga.rg);
    kvc_ring_region_unmap(&gb.rg);
    vs_destroy(sw);
}

static void
test_trunk_and_slot_size(void **state)
{
    struct vs_switch *sw = mksw(9000);
    struct vs_port *pa, *pt, *ps;
    assert_int_equal(vs_port_add_ring(sw, "a", "pg", MAC_A, NULL, &pa), 0);
    assert_int_equal(vs_port_add_ring(sw, "t", "trunk", NULL, NULL, &pt), 0);
    struct vs_ring_opts small = { .nslots = 8, .slot_size = 2048 };
    assert_int_equal(vs_port_add_ring(sw, "s", "pg", NULL, &small, &ps), 0);
    struct vs_ring_opts bad = { .nslots = 7 };
    assert_int_equal(vs_port_add_ring(sw, "x", "pg", NULL, &bad, NULL), -EINVAL);
    struct guest ga, gt, gs;
    guest_attach(pa, &ga);
    guest_attach(pt, &gt);
    guest_attach(ps, &gs);
    assert_true(ga.rg.tx.slot_size >= 9000 + 18 + 8);
    static uint8_t f[9100], r[9100];
    uint32_t l;
    guest_send(&ga, f, (uint32_t)mkframe(f, BCAST, MAC_A, 46, 3));
    guest_send(&ga, f, (uint32_t)mkframe(f, BCAST, MAC_A, 5000, 3));
    kvc_ring_prod_publish(&ga.rg.tx);
    assert_int_equal(vs_run_once(sw), 2);
    assert_int_equal(guest_recv(&gt, r, &l), 0);
    assert_int_equal(l, 60);                    /* VLAN 0 goes untagged */
    assert_int_equal(guest_recv(&gt, r, &l), 0);
    assert_int_equal(l, 5014);
    assert_int_equal(guest_recv(&gs, r, &l), 0);
    assert_int_equal(l, 60);
    assert_int_equal(guest_recv(&gs, r, &l), -EAGAIN);      /* did not fit */
    struct vs_stats s;
    vs_port_stats(ps, &s);
    assert_int_equal(s.drops[VS_DROP_OVERSIZE], 1);
    kvc_ring_region_unmap(&ga.rg);
    kvc_ring_region_unmap(&gt.rg);
    kvc_ring_region_unmap(&gs.rg);
    vs_destroy(sw);
}

static bool
readable(int fd, int ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    return poll(&p, 1, ms) == 1;
}

/* Event suppression with the data path thread: kicks only to a sleeper. */
static void
test_event_suppression_threaded(void **state)
{
    struct vs_switch *sw = mksw(0);
    struct vs_port *pa, *pb;
    assert_int_equal(vs_port_add_ring(sw, "a", "pg", MAC_A, NULL, &pa), 0);
    assert_int_equal(vs_port_add_ring(sw, "b", "pg", MAC_B, NULL, &pb), 0);
    struct guest ga, gb;
    guest_attach(pa, &ga);
    guest_attach(pb, &gb);
    /* Not asleep yet (never started): publishing asks for no kick. */
    uint8_t f[2048], r[2048];
    uint32_t l;
    assert_false(kvc_ring_prod_publish(&ga.rg.tx));
    assert_int_equal(vs_start(sw), 0);
    /* The data path goes to sleep and says so in cons_wait. */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!__atomic_load_n(&ga.rg.tx.ctl->cons_wait, __ATOMIC_ACQUIRE)) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        assert_true(t1.tv_sec - t0.tv_sec < 10);
        usleep(1000);
    }
    /* Guest B goes idle too, waiting for frames. */
    assert_false(kvc_ring_cons_prepare_wait(&gb.rg.rx));
    int total = 0;
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < 10; i++)
            guest_send(&ga, f, (uint32_t)mkframe(f, MAC_B, MAC_A, 46, (uint8_t)i));
        if (kvc_ring_prod_publish(&ga.rg.tx))
            kvc_ring_kick(ga.kick_fd);
        /* B sleeps on call_fd until the switch kicks it. */
        int got = 0;
        while (got < 10) {
            if (guest_recv(&gb, r, &l) == 0) {
                got++;
                continue;
            }
            if (kvc_ring_cons_prepare_wait(&gb.rg.rx))
                continue;
            assert_true(readable(gb.call_fd, 10000));
            kvc_ring_drain(gb.call_fd);
        }
        total += got;
    }
    assert_int_equal(total, 500);
    vs_stop(sw);
    struct vs_stats s;
    vs_port_stats(pb, &s);
    assert_int_equal(s.tx_packets, 500);
    assert_int_equal(vs_stats_drops_total(&s), 0);
    kvc_ring_region_unmap(&ga.rg);
    kvc_ring_region_unmap(&gb.rg);
    vs_destroy(sw);
}

int
main(void)
{
    kvc_log_init("test_vswitch_ring");
    kvc_log_set_default_level(KVC_LOG_ERR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_region_create_and_map),
        cmocka_unit_test(test_ring_ports_forward),
        cmocka_unit_test(test_rx_ring_full_drops),
        cmocka_unit_test(test_hostile_peer),
        cmocka_unit_test(test_trunk_and_slot_size),
        cmocka_unit_test(test_event_suppression_threaded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
