/* virtqueue, virtio-mmio transport, balloon, tools and serial devices, and
 * the state stream: driven with a fake guest RAM (a malloc'd buffer). */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "vmkernel-kvm/devices/balloon.h"
#include "vmkernel-kvm/devices/serial.h"
#include "vmkernel-kvm/devices/tools.h"
#include "vmkernel-kvm/devices/virtio_mmio.h"
#include "vmkernel-kvm/devices/virtq.h"
#include "vmkernel-kvm/vmx_state.h"

#define RAM (1u << 20)
#define QSZ 8
#define DESC 0x1000
#define AVAIL 0x2000
#define USED 0x3000

static struct guest_mem mem;

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

static void desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    uint8_t *d = mem.hva + DESC + 16 * i;
    memcpy(d, &addr, 8);
    memcpy(d + 8, &len, 4);
    memcpy(d + 12, &flags, 2);
    memcpy(d + 14, &next, 2);
}

static void avail_push(uint16_t head)
{
    uint16_t idx;
    memcpy(&idx, mem.hva + AVAIL + 2, 2);
    memcpy(mem.hva + AVAIL + 4 + 2 * (idx % QSZ), &head, 2);
    idx++;
    memcpy(mem.hva + AVAIL + 2, &idx, 2);
}

static void set_avail_idx(uint16_t idx)
{
    memcpy(mem.hva + AVAIL + 2, &idx, 2);
}

static uint16_t used_idx(void)
{
    uint16_t v;
    memcpy(&v, mem.hva + USED + 2, 2);
    return v;
}

static void queue(struct virtq *q)
{
    memset(mem.hva, 0, RAM);
    memset(q, 0, sizeof(*q));
    q->mem = &mem;
    q->size = QSZ;
    q->desc = DESC;
    q->avail = AVAIL;
    q->used = USED;
    assert_int_equal(virtq_enable(q), 0);
}

static void test_pop_push_chain(void **st)
{
    (void)st;
    struct virtq q;
    struct virtq_elem e;
    queue(&q);
    assert_int_equal(virtq_pop(&q, &e), 0);         /* empty */
    desc(0, 0x10000, 100, VIRTQ_DESC_F_NEXT, 3);
    desc(3, 0x20000, 200, VIRTQ_DESC_F_WRITE, 0);
    avail_push(0);
    assert_int_equal(virtq_pop(&q, &e), 1);
    assert_int_equal(e.head, 0);
    assert_int_equal(e.n_out, 1);
    assert_int_equal(e.n_in, 1);
    assert_ptr_equal(e.out[0].iov_base, mem.hva + 0x10000);
    assert_int_equal(e.in[0].iov_len, 200);
    assert_int_equal(virtq_push(&q, &e, 5000), 0);   /* clamped to in_len */
    assert_int_equal(used_idx(), 1);
    uint32_t id, len;
    memcpy(&id, mem.hva + USED + 4, 4);
    memcpy(&len, mem.hva + USED + 8, 4);
    assert_int_equal(id, 0);
    assert_int_equal(len, 200);
    assert_true(virtq_need_interrupt(&q));
    assert_int_equal(virtq_pop(&q, &e), 0);
}

static void test_enable_rejects(void **st)
{
    (void)st;
    struct virtq q;
    queue(&q);
    q.size = 6;                         /* not a power of two */
    assert_int_equal(virtq_enable(&q), -EINVAL);
    q.size = QSZ;
    q.desc = RAM - 8;                   /* ring past the end of RAM */
    assert_int_equal(virtq_enable(&q), -EINVAL);
    q.desc = DESC + 8;                  /* misaligned */
    assert_int_equal(virtq_enable(&q), -EINVAL);
    q.desc = DESC;
    q.used = UINT64_MAX - 3;            /* wraps */
    assert_int_equal(virtq_enable(&q), -EINVAL);
    struct virtq_elem e;
    assert_int_equal(virtq_pop(&q, &e), -EAGAIN);
}

static void test_hostile_loop(void **st)
{
    (void)st;
    struct virtq q;
    struct virtq_elem e;
    queue(&q);
    desc(0, 0x10000, 1, VIRTQ_DESC_F_NEXT, 1);
    desc(1, 0x10000, 1, VIRTQ_DESC_F_NEXT, 0);     /* 0 -> 1 -> 0 ... */
    avail_push(0);
    assert_int_equal(virtq_pop(&q, &e), -EINVAL);
    assert_true(q.broken);
    assert_int_equal(virtq_pop(&q, &e), -EINVAL);   /* stays broken */
    assert_int_equal(virtq_push(&q, &e, 0), -EINVAL);
}

static void test_hostile_ranges(void **st)
{
    (void)st;
    struct virtq q;
    struct virtq_elem e;
    /* buffer past RAM */
    queue(&q);
    desc(0, RAM - 10, 11, 0, 0);
    avail_push(0);
    assert_int_equal(virtq_pop(&q, &e), -EINVAL);
    /* address + length wrapping around 2^64 */
    queue(&q);
    desc(0, UINT64_MAX - 5, 100, 0, 0);
    avail_push(0);
    assert_int_equal(virtq_pop(&q, &e), -EINVAL);
    /* next index out of range */
    queue(&q);
    desc(0, 0x10000, 1, VIRTQ_DESC_F_NEXT, QSZ);
    avail_push(0);
    assert_int_equal(virtq_pop(&q, &e), -EINVAL);
    /* head out of range */
    queue(&q);
    avail_push(QSZ + 1);
    assert_int_equal(virtq_pop(&q, &e), -EINVAL);
    /* avail index runs more than a ring ahead */
    queue(&q);
    set_avail_idx(QSZ + 1);
    assert_int_equal(virtq_pop(&q, &e), -EINVAL);
    /* readable after writable */
    queue(&q);
    desc(0, 0x10000, 1, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
    desc(1, 0x10000, 1, 0, 0);
    avail_push(0);
    assert_int_equal(virtq_pop(&q, &e), -EINVAL);
}

static void test_avail_wraps(void **st)
{
    (void)st;
    struct virtq q;
    struct virtq_elem e;
    queue(&q);
    desc(0, 0x10000, 8, 0, 0);
    /* indexes near 65535 wrap like the spec's free-running counters */
    q.last_avail = 65534;
    q.used_idx = 65534;
    set_avail_idx(65534);
    for (int i = 0; i < 4; i++) {
        avail_push(0);
        assert_int_equal(virtq_pop(&q, &e), 1);
        assert_int_equal(virtq_push(&q, &e, 0), 0);
    }
    assert_int_equal(q.last_avail, 2);
    assert_int_equal(used_idx(), 2);
}

static void test_indirect(void **st)
{
    (void)st;
    struct virtq q;
    struct virtq_elem e;
    queue(&q);
    uint8_t *t = mem.hva + 0x40000;
    uint64_t a = 0x50000;
    uint32_t l = 64;
    uint16_t f = VIRTQ_DESC_F_NEXT, n = 1;
    memcpy(t, &a, 8); memcpy(t + 8, &l, 4); memcpy(t + 12, &f, 2); memcpy(t + 14, &n, 2);
    f = VIRTQ_DESC_F_WRITE;
    n = 0;
    memcpy(t + 16, &a, 8); memcpy(t + 24, &l, 4); memcpy(t + 28, &f, 2); memcpy(t + 30, &n, 2);
    desc(0, 0x40000, 32, VIRTQ_DESC_F_INDIRECT, 0);
    avail_push(0);
    /* not negotiated: refused */
    assert_int_equal(virtq_pop(&q, &e), -EINVAL);
    queue(&q);
    memcpy(t, &a, 8); l = 64; memcpy(t + 8, &l, 4); f = VIRTQ_DESC_F_NEXT; n = 1;
    memcpy(t + 12, &f, 2); memcpy(t + 14, &n, 2);
    f = VIRTQ_DESC_F_WRITE; n = 0;
    memcpy(t + 16, &a, 8); memcpy(t + 24, &l, 4); memcpy(t + 28, &f, 2); memcpy(t + 30, &n, 2);
    q.features = 1ull << VIRTIO_RING_F_INDIRECT_DESC;
    desc(0, 0x40000, 32, VIRTQ_DESC_F_INDIRECT, 0);
    avail_push(0);
    assert_int_equal(virtq_pop(&q, &e), 1);
    assert_int_equal(e.n_out, 1);
    assert_int_equal(e.n_in, 1);
    /* a table of odd length is refused */
    desc(0, 0x40000, 20, VIRTQ_DESC_F_INDIRECT, 0);
    avail_push(0);
    assert_int_equal(virtq_pop(&q, &e), -EINVAL);
}

/* ---- virtio-mmio ---- */
static int irq_level;
static void irq_cb(void *o, unsigned gsi, int level)
{
    (void)o; (void)gsi;
    irq_level = level;
}

static uint32_t rd(struct virtio_mmio *d, uint64_t off)
{
    uint8_t b[4];
    virtio_mmio_read(d, off, b, 4);
    return (uint32_t)le_get(b, 4);
}

static void wr(struct virtio_mmio *d, uint64_t off, uint32_t v)
{
    uint8_t b[4];
    le_put(b, 4, v);
    virtio_mmio_write(d, off, b, 4);
}

static void test_mmio_balloon(void **st)
{
    (void)st;
    struct balloon b;
    struct irq_line irq = { .set = irq_cb, .gsi = 6 };
    memset(mem.hva, 0, RAM);
    balloon_init(&b, &mem, &irq);
    struct virtio_mmio *d = &b.dev;
    assert_int_equal(rd(d, 0x000), VIRTIO_MMIO_MAGIC);
    assert_int_equal(rd(d, 0x004), 2);
    assert_int_equal(rd(d, 0x008), 5);
    wr(d, 0x070, 1 | 2);
    wr(d, 0x014, 1);
    assert_int_equal(rd(d, 0x010), 1);               /* VERSION_1 */
    wr(d, 0x024, 1);
    wr(d, 0x020, 1);
    wr(d, 0x070, 1 | 2 | 8);
    assert_int_equal(rd(d, 0x070) & 8, 8);
    wr(d, 0x030, 0);
    assert_int_equal(rd(d, 0x034), 256);
    wr(d, 0x038, QSZ);
    wr(d, 0x080, DESC);
    wr(d, 0x090, AVAIL);
    wr(d, 0x0a0, USED);
    wr(d, 0x044, 1);
    assert_int_equal(rd(d, 0x044), 1);
    wr(d, 0x070, 1 | 2 | 8 | 4);
    /* inflate: two pfns in RAM, one outside */
    uint32_t pfns[3] = { 0x10, 0x11, 0xfffff };
    memcpy(mem.hva + 0x30000, pfns, sizeof(pfns));
    desc(0, 0x30000, sizeof(pfns), 0, 0);
    avail_push(0);
    wr(d, 0x050, 0);
    assert_int_equal(used_idx(), 1);
    assert_int_equal(b.inflated, 3);
    assert_int_equal(b.rejected, 1);
    assert_int_equal(rd(d, 0x060) & 1, 1);
    assert_int_equal(irq_level, 1);
    wr(d, 0x064, 1);
    assert_int_equal(irq_level, 0);
    /* config: target set by the host, actual by the guest */
    balloon_set_target(&b, 1234);
    uint8_t c[4];
    virtio_mmio_read(d, 0x100, c, 4);
    assert_int_equal(le_get(c, 4), 1234);
    wr(d, 0x104, 1000);
    assert_int_equal(b.actual_pages, 1000);
    /* a queue register for a queue that does not exist */
    wr(d, 0x030, 7);
    assert_int_equal(rd(d, 0x034), 0);
    wr(d, 0x050, 7);                /* notify of a missing queue: ignored */
    /* save and load round trip */
    struct sbuf s;
    sbuf_init(&s);
    virtio_mmio_save(d, &s);
    assert_int_equal(s.err, 0);
    struct balloon b2;
    balloon_init(&b2, &mem, &irq);
    struct sreader r;
    sreader_init(&r, s.p, s.len);
    assert_int_equal(virtio_mmio_load(&b2.dev, &r), 0);
    assert_int_equal(b2.target_pages, 1234);
    assert_int_equal(b2.dev.q[0].last_avail, 1);
    assert_true(b2.dev.q[0].ready);
    /* truncated state is refused */
    for (size_t cut = 0; cut < s.len; cut += 7) {
        struct balloon b3;
        balloon_init(&b3, &mem, &irq);
        sreader_init(&r, s.p, cut);
        assert_int_not_equal(virtio_mmio_load(&b3.dev, &r), 0);
    }
    sbuf_free(&s);
    /* reset */
    wr(d, 0x070, 0);
    assert_false(d->q[0].ready);
    assert_int_equal(rd(d, 0x070), 0);
}

static void test_mmio_bad_queue_config(void **st)
{
    (void)st;
    struct balloon b;
    balloon_init(&b, &mem, NULL);
    struct virtio_mmio *d = &b.dev;
    wr(d, 0x030, 0);
    wr(d, 0x038, QSZ);
    wr(d, 0x080, RAM - 16);          /* descriptor table past the end */
    wr(d, 0x090, AVAIL);
    wr(d, 0x0a0, USED);
    wr(d, 0x044, 1);
    assert_int_equal(rd(d, 0x044), 0);
    assert_int_equal(rd(d, 0x070) & VIRTIO_STATUS_NEEDS_RESET, VIRTIO_STATUS_NEEDS_RESET);
    wr(d, 0x038, 4096);              /* above queue_max */
    assert_int_equal(d->q[0].size, 0);
}

static uint32_t last_action;
static void action_cb(void *o, uint32_t a)
{
    (void)o;
    last_action = a;
}

static void test_tools(void **st)
{
    (void)st;
    struct tools t;
    tools_init(&t, &mem, NULL);
    t.on_action = action_cb;
    struct virtio_mmio *d = &t.dev;
    assert_int_equal(rd(d, 0x008), KVC_VIRTIO_ID_TOOLS);
    assert_int_equal(tools_heartbeat_age_ms(&t, 1), -1);
    wr(d, KVC_TOOLS_HEARTBEAT, 1);
    wr(d, KVC_TOOLS_HEARTBEAT, 2);
    assert_int_equal(t.heartbeats, 2);
    assert_true(tools_heartbeat_age_ms(&t, t.last_heartbeat_ns + 5000000) == 5);
    wr(d, KVC_TOOLS_STR_SEL, 1);
    wr(d, KVC_TOOLS_STR_DATA, 0x6c6c6548);   /* "Hell" */
    wr(d, KVC_TOOLS_STR_DATA, 0x0a006f);     /* "o", NUL stops */
    assert_string_equal(t.os_name, "Hello");
    wr(d, KVC_TOOLS_STR_SEL, 2);
    for (int i = 0; i < 40; i++)
        wr(d, KVC_TOOLS_STR_DATA, 0x01414141);   /* control chars become '?' */
    assert_int_equal(strlen(t.ip), KVC_TOOLS_STR_MAX);
    assert_int_equal(t.ip[3], '?');
    wr(d, KVC_TOOLS_WL_COUNTER_LO, 5);
    wr(d, KVC_TOOLS_WL_COUNTER_HI, 1);
    wr(d, KVC_TOOLS_WL_SUM_LO, 7);
    wr(d, KVC_TOOLS_WL_SUM_HI, 0);
    assert_true(t.wl_counter == ((1ull << 32) | 5));
    assert_int_equal(t.wl_sum, 7);
    tools_request(&t, KVC_TOOLS_REQ_SHUTDOWN);
    assert_int_equal(rd(d, KVC_TOOLS_HOST_REQUEST), KVC_TOOLS_REQ_SHUTDOWN);
    wr(d, KVC_TOOLS_GUEST_ACTION, KVC_TOOLS_ACT_ACK);
    assert_int_equal(rd(d, KVC_TOOLS_HOST_REQUEST), 0);
    wr(d, KVC_TOOLS_GUEST_ACTION, KVC_TOOLS_ACT_POWEROFF);
    assert_int_equal(last_action, KVC_TOOLS_ACT_POWEROFF);
    last_action = 0;
    wr(d, KVC_TOOLS_GUEST_ACTION, 99);
    assert_int_equal(last_action, 0);
    /* odd sizes and offsets are ignored */
    uint8_t b[8] = { 0 };
    virtio_mmio_write(d, 0x100, b, 2);
    virtio_mmio_write(d, 0x0ffe, b, 8);
    virtio_mmio_read(d, 0x0fff, b, 1);
    assert_int_equal(t.heartbeats, 2);
}

static void test_serial(void **st)
{
    (void)st;
    struct serial s;
    struct irq_line irq = { .set = irq_cb, .gsi = 4 };
    assert_int_equal(serial_init(&s, NULL, &irq), 0);
    uint8_t c;
    struct bus b = { .n = 0 };
    assert_int_equal(serial_attach(&s, &b, 0x3f8), 0);
    assert_int_equal(serial_attach(&s, &b, 0x3f8), -EEXIST);
    for (int i = 0; i < 70000; i++) {
        c = (uint8_t)('a' + i % 26);
        assert_true(bus_write(&b, 0x3f8, &c, 1));
    }
    uint8_t out[16];
    uint64_t next;
    size_t n = serial_output(&s, 0, out, sizeof(out), &next);
    assert_int_equal(n, 16);
    assert_true(next == 70000 - SERIAL_RING_SIZE + 16);     /* oldest data dropped */
    n = serial_output(&s, 1ull << 40, out, sizeof(out), &next);
    assert_int_equal(n, 0);
    /* input with the receive interrupt enabled */
    c = 1;
    bus_write(&b, 0x3f9, &c, 1);
    irq_level = -1;
    assert_int_equal(serial_input(&s, (const uint8_t *)"hi", 2), 2);
    assert_int_equal(irq_level, 0);   /* pulsed: raised then lowered */
    bus_read(&b, 0x3fd, &c, 1);
    assert_int_equal(c & 1, 1);
    bus_read(&b, 0x3f8, &c, 1);
    assert_int_equal(c, 'h');
    bus_read(&b, 0x3f8, &c, 1);
    bus_read(&b, 0x3fd, &c, 1);
    assert_int_equal(c & 1, 0);
    /* a full FIFO takes what fits */
    uint8_t big[5000];
    memset(big, 'x', sizeof(big));
    assert_int_equal(serial_input(&s, big, sizeof(big)), SERIAL_RX_SIZE);
    /* unclaimed port */
    assert_false(bus_read(&b, 0x2f8, &c, 1));
    assert_int_equal(c, 0xff);
    struct sbuf sb;
    sbuf_init(&sb);
    serial_save(&s, &sb);
    struct serial s2;
    serial_init(&s2, NULL, NULL);
    struct sreader r;
    sreader_init(&r, sb.p, sb.len);
    assert_int_equal(serial_load(&s2, &r), 0);
    assert_int_equal(s2.rx_len, SERIAL_RX_SIZE);
    sreader_init(&r, sb.p, 20);
    assert_int_not_equal(serial_load(&s2, &r), 0);
    sbuf_free(&sb);
    serial_destroy(&s);
    serial_destroy(&s2);
}

static void test_state_stream(void **st)
{
    (void)st;
    struct sbuf b;
    sbuf_init(&b);
    sbuf_u8(&b, 0xab);
    sbuf_u16(&b, 0x1234);
    sbuf_u32(&b, 0xdeadbeef);
    sbuf_u64(&b, 0x0123456789abcdefull);
    sbuf_blob(&b, "xyz", 3);
    assert_int_equal(b.err, 0);
    struct sreader r;
    sreader_init(&r, b.p, b.len);
    assert_int_equal(sreader_u8(&r), 0xab);
    assert_int_equal(sreader_u16(&r), 0x1234);
    assert_int_equal(sreader_u32(&r), 0xdeadbeef);
    assert_true(sreader_u64(&r) == 0x0123456789abcdefull);
    char buf[2];
    assert_int_equal(sreader_blob(&r, buf, sizeof(buf)), 0);    /* too big for buf */
    assert_int_equal(r.err, -EINVAL);
    assert_int_equal(sreader_u32(&r), 0);                      /* stays failed, yields 0 */
    sbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pop_push_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enable_rejects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_ranges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_avail_wraps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_indirect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mmio_balloon, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mmio_bad_queue_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tools, setup, teardown),
        cmocka_unit_test(test_serial),
        cmocka_unit_test(test_state_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
