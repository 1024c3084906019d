/* Split virtqueues (virtio 1.x) for device code, with every guest-supplied
 * index, address and length checked before use.
 *
 * Using a queue from a device:
 *
 *     struct virtq_elem e;
 *     int r;
 *     while ((r = virtq_pop(q, &e)) > 0) {
 *         // e.out[0..n_out): buffers the driver wrote (device reads them)
 *         // e.in[0..n_in):   buffers the device may write
 *         size_t written = handle(&e);
 *         virtq_push(q, &e, written);
 *     }
 *     if (r < 0)  // the driver broke the queue: stop using it (the
 *         ...     // transport sets DEVICE_NEEDS_RESET)
 *     if (virtq_need_interrupt(q)) virtio_mmio_notify_used(dev, qidx);
 *
 * The iovecs point into guest RAM and are valid only until the element is
 * pushed (and, for a guest that keeps writing, their contents may change
 * under the device at any time: copy what must be checked, then check the
 * copy).  Descriptors are read once into a local copy, so a guest changing
 * a descriptor while it is parsed cannot make a checked range unchecked.
 *
 * Rules enforced (a violation makes virtq_pop return -EINVAL and marks the
 * queue broken, nothing else happens):
 *   - size is a power of two <= VIRTQ_MAX_SIZE; rings lie wholly in RAM and
 *     are aligned as the spec requires (checked by virtq_enable)
 *   - avail->idx never runs more than size ahead of what was consumed
 *   - head and every next index < size; a chain visits at most size
 *     descriptors (so loops end); at most VIRTQ_MAX_SEGS segments
 *   - every buffer [addr, addr+len) lies wholly in RAM; total chain length
 *     fits in 32 bits
 *   - device-writable segments follow device-readable ones
 *   - indirect tables (if VIRTIO_RING_F_INDIRECT_DESC was negotiated): in
 *     RAM, length a non-zero multiple of 16, no nesting, NEXT inside the
 *     table.
 *
 * Threading: one thread at a time per queue (vmx calls devices with its
 * device lock held).  Returns: 0 or -errno unless said otherwise. */
#ifndef KVC_VMX_VIRTQ_H
#define KVC_VMX_VIRTQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vmkernel-kvm/memory.h"
#include "vmkernel-kvm/vmx_state.h"

#define VIRTQ_MAX_SIZE 1024u
#define VIRTQ_MAX_SEGS 64u

#define VIRTQ_DESC_F_NEXT     1u
#define VIRTQ_DESC_F_WRITE    2u
#define VIRTQ_DESC_F_INDIRECT 4u
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1u

#define VIRTIO_RING_F_INDIRECT_DESC 28
#define VIRTIO_RING_F_EVENT_IDX     29
#define VIRTIO_F_VERSION_1          32

struct virtq {
    struct guest_mem *mem;
    uint16_t size;          /* set by the driver (QueueNum) */
    bool ready;             /* virtq_enable succeeded */
    bool broken;            /* driver violated a rule; pop/push refuse */
    uint64_t desc, avail, used;     /* guest-physical addresses */
    uint16_t last_avail;    /* next avail ring slot to consume */
    uint16_t used_idx;      /* our copy of used->idx */
    uint16_t signalled_used;        /* used idx at the last interrupt (EVENT_IDX) */
    bool signalled_valid;
    uint64_t features;      /* negotiated feature bits */
};

struct virtq_elem {
    uint16_t head;
    unsigned n_out, n_in;
    struct iovec out[VIRTQ_MAX_SEGS];
    struct iovec in[VIRTQ_MAX_SEGS];
    uint64_t out_len, in_len;   /* bytes in each direction */
};

/* Reset to "not configured" (keeps MEM). */
void virtq_reset(struct virtq *);
/* Check the configuration the driver wrote and mark the queue ready. */
int virtq_enable(struct virtq *);
/* 1: an element was popped into *E; 0: queue empty; -EINVAL: broken queue;
 * -EAGAIN: queue not ready. */
int virtq_pop(struct virtq *, struct virtq_elem *);
/* Return E to the driver with WRITTEN bytes written into its in-buffers
 * (clamped to in_len). */
int virtq_push(struct virtq *, const struct virtq_elem *, uint32_t written);
/* Whether the driver wants an interrupt for what was pushed since the last
 * call that returned true. */
bool virtq_need_interrupt(struct virtq *);

void virtq_save(const struct virtq *, struct sbuf *);
int virtq_load(struct virtq *, struct sreader *);

#endif
