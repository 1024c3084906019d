/* Fuzz target: virtio-net with a hostile driver and a hostile switch.  The
 * input is a program of operations on one device whose backend is a ring
 * region this target owns: register writes and reads, writes into guest
 * RAM (descriptors, rings, buffers: anything), frames and raw indexes
 * pushed by the "switch", link changes, data path passes and a state
 * save/load round trip.  The device must never touch memory outside guest
 * RAM and the ring region (ASan), never loop forever, and never crash.
 *
 * Each operation: one opcode byte, then its operands (little-endian):
 *   0 mmio write    u16 off, u32 value
 *   1 mmio read     u16 off
 *   2 ram write     u16 gpa/16, u8 len, len bytes
 *   3 poll          (one data path pass)
 *   4 switch frame  u16 len, u16 slot_len, u8 fill (into the VM's rx ring)
 *   5 switch drain  (consume everything on the tx ring)
 *   6 wild index    u8 which (0 rx prod, 1 tx cons, 2 rx cons_wait, 3 tx prod_wait), u32 value
 *   7 link          u8 up
 *   8 save + load   (into a second device; must not crash)
 *   9 driver up     (a well-behaved init: both queues at fixed places)
 * Unknown opcodes end the program. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "lib/log.h"
#include "vmkernel-kvm/devices/virtio_net.h"

#define RAM (64 * 1024)

static const uint8_t MAC[6] = { 0x00, 0x50, 0x56, 0x00, 0x00, 0x01 };

struct in {
    const uint8_t *p;
    size_t n;
};

static int take(struct in *in, void *dst, size_t len)
{
    if (in->n < len)
        return -1;
    memcpy(dst, in->p, len);
    in->p += len;
    in->n -= len;
    return 0;
}

static void w32(struct virtio_net *n, uint64_t off, uint32_t v)
{
    uint8_t d[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
    virtio_mmio_write(&n->dev, off, d, 4);
}

static void driver_up(struct virtio_net *n)
{
    w32(n, 0x70, 0);
    w32(n, 0x70, 3);
    w32(n, 0x24, 0);
    w32(n, 0x20, (1u << 5) | (1u << 16) | (1u << 3));
    w32(n, 0x24, 1);
    w32(n, 0x20, 1);
    w32(n, 0x70, 11);
    for (unsigned q = 0; q < 2; q++) {
        w32(n, 0x30, q);
        w32(n, 0x38, 16);
        w32(n, 0x80, 0x1000 + q * 0x3000);
        w32(n, 0x90, 0x2000 + q * 0x3000);
        w32(n, 0xa0, 0x3000 + q * 0x3000);
        w32(n, 0x44, 1);
    }
    w32(n, 0x70, 15);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool quiet;
    if (!quiet) {
        kvc_log_set_default_level(KVC_LOG_OFF);
        quiet = true;
    }
    struct guest_mem mem = { .fd = -1, .size = RAM };
    mem.hva = calloc(1, RAM);
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    struct kvc_ring_region rg;
    int memfd;
    if (!mem.hva || kvc_ring_region_create(8, 2048, MAC, 1500, &memfd, &rg) < 0) {
        free(mem.hva);
        return 0;
    }
    static struct virtio_net n, n2;
    virtio_net_init(&n, &mem, NULL, MAC, 1500, &lock);
    int kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (virtio_net_attach_backend(&n, dup(memfd), kick, call) < 0)
        goto out;
    struct in in = { data, size };
    uint8_t op;
    for (int steps = 0; steps < 4096 && take(&in, &op, 1) == 0; steps++) {
        switch (op) {
        case 0: {
            uint16_t off;
            uint32_t v;
            if (take(&in, &off, 2) || take(&in, &v, 4))
                goto out;
            w32(&n, off & 0xfff, v);
            break;
        }
        case 1: {
            uint16_t off;
            uint8_t d[4];
            if (take(&in, &off, 2))
                goto out;
            virtio_mmio_read(&n.dev, off & 0xfff, d, 1 + (off >> 14));
            break;
        }
        case 2: {
            uint16_t at;
            uint8_t len;
            if (take(&in, &at, 2) || take(&in, &len, 1) || in.n < len)
                goto out;
            uint32_t gpa = (uint32_t)(at % (RAM / 16)) * 16;
            uint32_t l = gpa + len > RAM ? RAM - gpa : len;
            memcpy(mem.hva + gpa, in.p, l);
            in.p += len;
            in.n -= len;
            break;
        }
        case 3:
            virtio_net_poll(&n);
            break;
        case 4: {
            uint16_t len, slot_len;
            uint8_t fill;
            if (take(&in, &len, 2) || take(&in, &slot_len, 2) || take(&in, &fill, 1))
                goto out;
            struct kvc_ring *rx = &rg.rx;
            struct kvc_ring_slot *s = kvc_ring_slot(rx, rx->shadow);
            uint32_t l = len % (kvc_ring_slot_cap(rx) + 1);
            memset(s->data, fill, l);
            if (l >= 6)
                memcpy(s->data, MAC, 6);
            s->len = slot_len;
            rx->shadow++;
            kvc_ring_prod_publish(rx);
            break;
        }
        case 5: {
            struct kvc_ring *tx = &rg.tx;
            int k = kvc_ring_cons_avail(tx);
            if (k > 0) {
                tx->shadow += (uint32_t)k;
                kvc_ring_cons_release(tx);
            }
            break;
        }
        case 6: {
            uint8_t which;
            uint32_t v;
            if (take(&in, &which, 1) || take(&in, &v, 4))
                goto out;
            uint32_t *f[4] = { &rg.rx.ctl->prod, &rg.tx.ctl->cons, &rg.rx.ctl->cons_wait,
                               &rg.tx.ctl->prod_wait };
            __atomic_store_n(f[which & 3], v, __ATOMIC_RELEASE);
            if ((which & 3) == 0)
                rg.rx.shadow = v;
            break;
        }
        case 7: {
            uint8_t up;
            if (take(&in, &up, 1))
                goto out;
            virtio_net_set_link(&n, up & 1);
            break;
        }
        case 8: {
            struct sbuf b;
            sbuf_init(&b);
            virtio_mmio_save(&n.dev, &b);
            virtio_net_init(&n2, &mem, NULL, MAC, 1500, &lock);
            struct sreader r;
            sreader_init(&r, b.p, b.len);
            virtio_mmio_load(&n2.dev, &r);
            /* And a stream cut short, as a hostile snapshot would be. */
            sreader_init(&r, b.p, b.len / 2);
            virtio_mmio_load(&n2.dev, &r);
            sbuf_free(&b);
            virtio_net_destroy(&n2);
            break;
        }
        case 9:
            driver_up(&n);
            break;
        default:
            goto out;
        }
    }
out:
    virtio_net_destroy(&n);
    kvc_ring_region_unmap(&rg);
    close(memfd);
    free(mem.hva);
    return 0;
}
