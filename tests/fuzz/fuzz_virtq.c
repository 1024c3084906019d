/* Fuzz target: hostile virtqueues.  The input is a small guest RAM image plus
 * queue parameters; the queue code must never read or write outside that
 * RAM (ASan checks) and must end every walk (loops, wrapping indexes,
 * oversized lengths, nested or broken indirect tables).  The tail of the
 * input also drives the virtio-mmio registers of a balloon device.
 *
 * Layout: [0] log2 queue size, [1] feature bits, [2..3] last_avail,
 * [4..5] used_idx, [6..17] desc/avail/used offsets (u32 each, may point
 * outside RAM), [18..19] number of register writes N, then N * (u16 offset,
 * u32 value) register writes, then the RAM image. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "vmkernel-kvm/devices/balloon.h"
#include "vmkernel-kvm/devices/virtq.h"

#define RAM (64 * 1024)

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void touch(struct virtq_elem *e)
{
    volatile uint8_t sink = 0;
    for (unsigned i = 0; i < e->n_out; i++)
        if (e->out[i].iov_len) {
            sink ^= ((uint8_t *)e->out[i].iov_base)[0];
            sink ^= ((uint8_t *)e->out[i].iov_base)[e->out[i].iov_len - 1];
        }
    for (unsigned i = 0; i < e->n_in; i++)
        if (e->in[i].iov_len) {
            ((uint8_t *)e->in[i].iov_base)[0] = sink;
            ((uint8_t *)e->in[i].iov_base)[e->in[i].iov_len - 1] = sink;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool quiet;
    if (!quiet) {
        kvc_log_set_default_level(KVC_LOG_OFF);
        quiet = true;
    }
    if (size < 20)
        return 0;
    /* Exactly sized RAM on the heap, so ASan sees any step outside it. */
    struct guest_mem mem = { .fd = -1, .size = RAM };
    mem.hva = calloc(1, RAM);
    if (!mem.hva)
        return 0;
    size_t nw = (size_t)(data[18] | data[19] << 8) % 64;
    size_t regs = 20 + nw * 6;
    if (regs < size)
        memcpy(mem.hva, data + regs, size - regs < RAM ? size - regs : RAM);

    struct virtq q;
    memset(&q, 0, sizeof(q));
    q.mem = &mem;
    q.size = (uint16_t)(1u << (data[0] % 12));      /* up to 2048: above the max too */
    q.features = (data[1] & 1 ? 1ull << VIRTIO_RING_F_INDIRECT_DESC : 0)
               | (data[1] & 2 ? 1ull << VIRTIO_RING_F_EVENT_IDX : 0);
    q.desc = get32(data + 6) % (2 * RAM);
    q.avail = get32(data + 10) % (2 * RAM);
    q.used = get32(data + 14) % (2 * RAM);
    if (virtq_enable(&q) == 0) {
        q.last_avail = (uint16_t)(data[2] | data[3] << 8);
        q.used_idx = (uint16_t)(data[4] | data[5] << 8);
        struct virtq_elem e;
        for (int i = 0; i < 64; i++) {
            int r = virtq_pop(&q, &e);
            if (r <= 0)
                break;
            touch(&e);
            virtq_push(&q, &e, (uint32_t)(e.in_len + (uint32_t)i));
            virtq_need_interrupt(&q);
        }
    }

    /* The transport: register writes in any order, then kicks. */
    struct balloon b;
    balloon_init(&b, &mem, NULL);
    for (size_t i = 0; i < nw && 20 + i * 6 + 6 <= size; i++) {
        const uint8_t *w = data + 20 + i * 6;
        uint16_t off = (uint16_t)((w[0] | w[1] << 8) % 0x1000);
        uint8_t v[4];
        memcpy(v, w + 2, 4);
        if (off & 1)
            virtio_mmio_read(&b.dev, off & ~3u, v, 4);
        else
            virtio_mmio_write(&b.dev, off & ~3u, v, 4);
    }
    for (unsigned qi = 0; qi < 3; qi++) {
        uint8_t v[4] = { (uint8_t)qi, 0, 0, 0 };
        virtio_mmio_write(&b.dev, 0x050, v, 4);
    }
    free(mem.hva);
    return 0;
}
