/* Split virtqueue with checked guest accesses (see virtq.h). */
#include <errno.h>
#include <string.h>

#include "lib/log.h"
#include "vmkernel-kvm/devices/virtq.h"

KVC_LOG_MODULE(virtq);

struct vdesc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags, next;
};

static struct kvc_ratelimit rl = KVC_RATELIMIT_INIT(5, 10);

static int broken(struct virtq *q, const char *why, uint64_t a, uint64_t b)
{
    kvc_warn_rl(&rl, "queue broken by driver: %s (%llu, %llu)", why,
                (unsigned long long)a, (unsigned long long)b);
    q->broken = true;
    return -EINVAL;
}

static uint16_t load16(const void *p)
{
    return __atomic_load_n((const uint16_t *)p, __ATOMIC_ACQUIRE);
}

void virtq_reset(struct virtq *q)
{
    struct guest_mem *m = q->mem;
    memset(q, 0, sizeof(*q));
    q->mem = m;
}

int virtq_enable(struct virtq *q)
{
    uint64_t sz = q->size;
    q->ready = false;
    if (!q->mem || sz == 0 || sz > VIRTQ_MAX_SIZE || (sz & (sz - 1)))
        return -EINVAL;
    if ((q->desc & 15) || (q->avail & 1) || (q->used & 3))
        return -EINVAL;
    if (!guest_mem_ptr(q->mem, q->desc, 16 * sz)
        || !guest_mem_ptr(q->mem, q->avail, 6 + 2 * sz)
        || !guest_mem_ptr(q->mem, q->used, 6 + 8 * sz))
        return -EINVAL;
    q->ready = true;
    q->broken = false;
    return 0;
}

static void read_desc(const void *table, uint32_t i, struct vdesc *d)
{
    const uint8_t *p = (const uint8_t *)table + 16 * (uint64_t)i;
    /* One copy, then every check and use on the copy. */
    memcpy(&d->addr, p, 8);
    memcpy(&d->len, p + 8, 4);
    memcpy(&d->flags, p + 12, 2);
    memcpy(&d->next, p + 14, 2);
}

static int add_seg(struct virtq *q, struct virtq_elem *e, const struct vdesc *d)
{
    void *p = guest_mem_ptr(q->mem, d->addr, d->len);
    if (!p)
        return broken(q, "buffer outside RAM", d->addr, d->len);
    if (e->n_in + e->n_out >= VIRTQ_MAX_SEGS)
        return broken(q, "too many segments", e->n_in + e->n_out, VIRTQ_MAX_SEGS);
    if (e->out_len + e->in_len + d->len > UINT32_MAX)
        return broken(q, "chain too long", e->out_len + e->in_len, d->len);
    if (d->flags & VIRTQ_DESC_F_WRITE) {
        e->in[e->n_in].iov_base = p;
        e->in[e->n_in++].iov_len = d->len;
        e->in_len += d->len;
    } else {
        if (e->n_in)
            return broken(q, "readable segment after writable one", e->n_in, 0);
        e->out[e->n_out].iov_base = p;
        e->out[e->n_out++].iov_len = d->len;
        e->out_len += d->len;
    }
    return 0;
}

static int walk_indirect(struct virtq *q, struct virtq_elem *e, const struct vdesc *id)
{
    if (!(q->features & (1ull << VIRTIO_RING_F_INDIRECT_DESC)))
        return broken(q, "indirect descriptor not negotiated", id->addr, id->len);
    if (id->len == 0 || id->len % 16 || id->len / 16 > VIRTQ_MAX_SIZE)
        return broken(q, "bad indirect table length", id->len, 0);
    const void *table = guest_mem_ptr(q->mem, id->addr, id->len);
    if (!table)
        return broken(q, "indirect table outside RAM", id->addr, id->len);
    uint32_t n = id->len / 16, i = 0;
    for (uint32_t seen = 0;; seen++) {
        struct vdesc d;
        if (seen >= n)
            return broken(q, "loop in indirect table", seen, n);
        read_desc(table, i, &d);
        if (d.flags & VIRTQ_DESC_F_INDIRECT)
            return broken(q, "nested indirect table", i, 0);
        int r = add_seg(q, e, &d);
        if (r < 0)
            return r;
        if (!(d.flags & VIRTQ_DESC_F_NEXT))
            return 0;
        if (d.next >= n)
            return broken(q, "indirect next out of range", d.next, n);
        i = d.next;
    }
}

int virtq_pop(struct virtq *q, struct virtq_elem *e)
{
    if (!q->ready)
        return -EAGAIN;
    if (q->broken)
        return -EINVAL;
    const uint8_t *avail = guest_mem_ptr(q->mem, q->avail, 6 + 2 * (uint64_t)q->size);
    const void *table = guest_mem_ptr(q->mem, q->desc, 16 * (uint64_t)q->size);
    if (!avail || !table)
        return broken(q, "rings outside RAM", q->avail, q->desc);
    uint16_t aidx = load16(avail + 2);
    uint16_t pending = (uint16_t)(aidx - q->last_avail);
    if (pending == 0)
        return 0;
    if (pending > q->size)
        return broken(q, "avail index ran ahead", aidx, q->last_avail);
    uint16_t head;
    memcpy(&head, avail + 4 + 2 * (q->last_avail % q->size), 2);
    if (head >= q->size)
        return broken(q, "head out of range", head, q->size);

    e->n_in = e->n_out = 0;
    e->in_len = e->out_len = 0;
    e->head = head;
    uint16_t i = head;
    for (uint32_t seen = 0;; seen++) {
        struct vdesc d;
        if (seen >= q->size)
            return broken(q, "descriptor loop", head, seen);
        read_desc(table, i, &d);
        int r;
        if (d.flags & VIRTQ_DESC_F_INDIRECT) {
            if (d.flags & VIRTQ_DESC_F_NEXT)
                return broken(q, "indirect with NEXT", i, 0);
            r = walk_indirect(q, e, &d);
        } else {
            r = add_seg(q, e, &d);
        }
        if (r < 0)
            return r;
        if (!(d.flags & VIRTQ_DESC_F_NEXT) || (d.flags & VIRTQ_DESC_F_INDIRECT))
            break;
        if (d.next >= q->size)
            return broken(q, "next out of range", d.next, q->size);
        i = d.next;
    }
    q->last_avail++;
    return 1;
}

int virtq_push(struct virtq *q, const struct virtq_elem *e, uint32_t written)
{
    if (!q->ready || q->broken)
        return -EINVAL;
    uint8_t *used = guest_mem_ptr(q->mem, q->used, 6 + 8 * (uint64_t)q->size);
    if (!used)
        return broken(q, "used ring outside RAM", q->used, q->size);
    if (written > e->in_len)
        written = (uint32_t)e->in_len;
    uint8_t *slot = used + 4 + 8 * (q->used_idx % q->size);
    uint32_t id = e->head;
    memcpy(slot, &id, 4);
    memcpy(slot + 4, &written, 4);
    q->used_idx++;
    __atomic_store_n((uint16_t *)(used + 2), q->used_idx, __ATOMIC_RELEASE);
    return 0;
}

bool virtq_need_interrupt(struct virtq *q)
{
    if (!q->ready || q->broken)
        return false;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    const uint8_t *avail = guest_mem_ptr(q->mem, q->avail, 6 + 2 * (uint64_t)q->size);
    if (!avail)
        return false;
    if (q->features & (1ull << VIRTIO_RING_F_EVENT_IDX)) {
        uint16_t ev = load16(avail + 4 + 2 * q->size);
        uint16_t old = q->signalled_used, cur = q->used_idx;
        bool valid = q->signalled_valid;
        q->signalled_used = cur;
        q->signalled_valid = true;
        /* vring_need_event(): did we just pass the driver's event index? */
        return !valid || (uint16_t)(cur - ev - 1) < (uint16_t)(cur - old);
    }
    return !(load16(avail) & VIRTQ_AVAIL_F_NO_INTERRUPT);
}

void virtq_save(const struct virtq *q, struct sbuf *b)
{
    sbuf_u16(b, q->size);
    sbuf_u8(b, q->ready);
    sbuf_u8(b, q->broken);
    sbuf_u64(b, q->desc);
    sbuf_u64(b, q->avail);
    sbuf_u64(b, q->used);
    sbuf_u16(b, q->last_avail);
    sbuf_u16(b, q->used_idx);
    sbuf_u64(b, q->features);
}

int virtq_load(struct virtq *q, struct sreader *r)
{
    virtq_reset(q);
    q->size = sreader_u16(r);
    bool ready = sreader_u8(r);
    bool brk = sreader_u8(r);
    q->desc = sreader_u64(r);
    q->avail = sreader_u64(r);
    q->used = sreader_u64(r);
    q->last_avail = sreader_u16(r);
    q->used_idx = sreader_u16(r);
    q->features = sreader_u64(r);
    if (r->err)
        return r->err;
    if (ready && virtq_enable(q) < 0)
        return -EINVAL;
    q->broken = brk;
    return 0;
}
