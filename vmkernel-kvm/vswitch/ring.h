/* Shared-memory frame rings between a VM's vmx (virtio-net backend) and a
 * vSwitch port in vmkd.  This header is the ABI; docs/vswitch.md explains
 * it with a picture.
 *
 * One memfd holds, at offset 0:
 *
 *   struct kvc_ring_shm   header (magic, version, geometry, offsets)
 *   tx ring control       VM -> switch ("the VM transmits")
 *   rx ring control       switch -> VM ("the VM receives")
 *   tx slots, rx slots    nslots slots of slot_size bytes each
 *
 * A slot is struct kvc_ring_slot: a 32-bit length, 32 bits of flags (0)
 * and the Ethernet frame (no virtio-net header, no FCS).  nslots is a power
 * of two; prod and cons are free-running 32-bit counters, the slot of
 * counter c is c & (nslots - 1).  The consumer owns slots [cons, prod),
 * the producer all the others.
 *
 * Ordering: the producer writes slots, then stores prod with release; the
 * consumer loads prod with acquire, reads slots, then stores cons with
 * release.
 *
 * Notifications (two eventfds, handed over with the memfd):
 *   kick_fd  VM -> switch: "look at my rings"
 *   call_fd  switch -> VM: "look at your rings"
 * Event suppression as in virtio: a consumer about to sleep sets cons_wait
 * to 1, then re-reads prod (both sequentially consistent) and only sleeps if
 * still empty.  A producer, after publishing, atomically exchanges cons_wait
 * with 0 and kicks only if it was 1.  prod_wait works the same way for a
 * producer that found the ring full.  While both sides are busy no syscall
 * is made at all.
 *
 * Trust: each side keeps its own copy of the geometry (it never re-reads
 * the header) and validates every index and length it reads from shared
 * memory: prod - cons > nslots or a slot length above slot_size - 8 is
 * the peer's fault and is counted and dropped, never followed.
 */
#ifndef KVC_RING_H
#define KVC_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KVC_RING_MAGIC 0x4e52564bu      /* "KVRN" little-endian */
#define KVC_RING_VERSION 1u
#define KVC_RING_SLOT_HDR 8u
#define KVC_RING_MIN_SLOTS 2u
#define KVC_RING_MAX_SLOTS 4096u
#define KVC_RING_MIN_SLOT_SIZE 64u
#define KVC_RING_MAX_SLOT_SIZE 16384u

struct kvc_ring_shm {
    uint32_t magic;
    uint32_t version;
    uint32_t nslots;            /* per ring, power of two */
    uint32_t slot_size;         /* bytes, multiple of 64, incl. 8-byte slot header */
    uint64_t tx_ctl_off, rx_ctl_off;
    uint64_t tx_slots_off, rx_slots_off;
    uint64_t total_size;
    uint8_t mac[6];             /* the port's configured MAC (informational) */
    uint16_t mtu;
    uint32_t reserved[9];
};

/* prod fields and cons fields sit on separate cache lines. */
struct kvc_ring_ctl {
    uint32_t prod;              /* written by the producer */
    uint32_t prod_wait;         /* producer asks for a kick when space frees */
    uint8_t pad0[56];
    uint32_t cons;              /* written by the consumer */
    uint32_t cons_wait;         /* consumer asks for a kick when prod moves */
    uint8_t pad1[56];
};

struct kvc_ring_slot {
    uint32_t len;
    uint32_t flags;
    uint8_t data[];
};

/* Private view of one direction, kept by each side. */
struct kvc_ring {
    struct kvc_ring_ctl *ctl;
    uint8_t *slots;
    uint32_t nslots, mask, slot_size;
    uint32_t shadow;            /* producer: next prod; consumer: next cons */
};

/* A mapped region. */
struct kvc_ring_region {
    void *base;
    size_t size;
    struct kvc_ring tx;         /* VM -> switch */
    struct kvc_ring rx;         /* switch -> VM */
};

/* Functions return 0 or -errno. */
/* Create a memfd of the right size with the header written and map it.
 * mac may be NULL. */
int kvc_ring_region_create(uint32_t nslots, uint32_t slot_size,
                           const uint8_t *mac, uint16_t mtu,
                           int *memfd, struct kvc_ring_region *);
/* Map a region someone else created; validates the header and the fd's
 * size before trusting anything. */
int kvc_ring_region_map(int memfd, struct kvc_ring_region *);
void kvc_ring_region_unmap(struct kvc_ring_region *);
/* Set the shadow index from shared memory (after mapping). */
void kvc_ring_attach_producer(struct kvc_ring *);
void kvc_ring_attach_consumer(struct kvc_ring *);

static inline struct kvc_ring_slot *
kvc_ring_slot(const struct kvc_ring *r, uint32_t idx)
{
    return (struct kvc_ring_slot *)(r->slots + (size_t)(idx & r->mask) * r->slot_size);
}

static inline uint32_t
kvc_ring_slot_cap(const struct kvc_ring *r)
{
    return r->slot_size - KVC_RING_SLOT_HDR;
}

/* Producer: free slots, or -EPROTO if the consumer's index is impossible. */
static inline int
kvc_ring_prod_space(struct kvc_ring *r)
{
    uint32_t cons = __atomic_load_n(&r->ctl->cons, __ATOMIC_ACQUIRE);
    uint32_t used = r->shadow - cons;
    if (used > r->nslots)
        return -71; /* -EPROTO */
    return (int)(r->nslots - used);
}

/* Producer: make slots up to the shadow index visible.  Returns true if the
 * consumer is asleep and must be kicked. */
static inline bool
kvc_ring_prod_publish(struct kvc_ring *r)
{
    __atomic_store_n(&r->ctl->prod, r->shadow, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__atomic_load_n(&r->ctl->cons_wait, __ATOMIC_RELAXED))
        return __atomic_exchange_n(&r->ctl->cons_wait, 0, __ATOMIC_SEQ_CST) != 0;
    return false;
}

/* Consumer: filled slots, or -EPROTO if the producer's index is impossible. */
static inline int
kvc_ring_cons_avail(struct kvc_ring *r)
{
    uint32_t prod = __atomic_load_n(&r->ctl->prod, __ATOMIC_ACQUIRE);
    uint32_t n = prod - r->shadow;
    if (n > r->nslots)
        return -71;
    return (int)n;
}

/* Consumer: hand slots up to the shadow index back.  Returns true if the
 * producer waits for space and must be kicked. */
static inline bool
kvc_ring_cons_release(struct kvc_ring *r)
{
    __atomic_store_n(&r->ctl->cons, r->shadow, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__atomic_load_n(&r->ctl->prod_wait, __ATOMIC_RELAXED))
        return __atomic_exchange_n(&r->ctl->prod_wait, 0, __ATOMIC_SEQ_CST) != 0;
    return false;
}

/* Consumer about to sleep: returns true if work arrived meanwhile (then do
 * not sleep).  A bad index also returns true so the caller sees the error. */
static inline bool
kvc_ring_cons_prepare_wait(struct kvc_ring *r)
{
    __atomic_store_n(&r->ctl->cons_wait, 1, __ATOMIC_SEQ_CST);
    uint32_t prod = __atomic_load_n(&r->ctl->prod, __ATOMIC_SEQ_CST);
    if (prod != r->shadow) {
        __atomic_store_n(&r->ctl->cons_wait, 0, __ATOMIC_RELAXED);
        return true;
    }
    return false;
}

/* Producer that found the ring full, about to sleep: true if space freed. */
static inline bool
kvc_ring_prod_prepare_wait(struct kvc_ring *r)
{
    __atomic_store_n(&r->ctl->prod_wait, 1, __ATOMIC_SEQ_CST);
    uint32_t cons = __atomic_load_n(&r->ctl->cons, __ATOMIC_SEQ_CST);
    if (r->shadow - cons < r->nslots) {
        __atomic_store_n(&r->ctl->prod_wait, 0, __ATOMIC_RELAXED);
        return true;
    }
    return false;
}

/* eventfd helpers: kick adds 1; drain reads the counter (non-blocking fd). */
void kvc_ring_kick(int efd);
void kvc_ring_drain(int efd);

#endif
