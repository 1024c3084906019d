/* Shared-memory ring regions: creation, mapping and validation (ring.h). */
#include "ring.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static bool
is_pow2(uint32_t x)
{
    return x && !(x & (x - 1));
}

static int
check_geometry(uint32_t nslots, uint32_t slot_size)
{
    if (!is_pow2(nslots) || nslots < KVC_RING_MIN_SLOTS || nslots > KVC_RING_MAX_SLOTS)
        return -EINVAL;
    if (slot_size < KVC_RING_MIN_SLOT_SIZE || slot_size > KVC_RING_MAX_SLOT_SIZE
        || slot_size % 64)
        return -EINVAL;
    return 0;
}

static void
layout(struct kvc_ring_shm *h, uint32_t nslots, uint32_t slot_size)
{
    uint64_t off = 4096;        /* header page */
    h->tx_ctl_off = off;
    h->rx_ctl_off = off + sizeof(struct kvc_ring_ctl);
    off += 4096;
    h->tx_slots_off = off;
    off += (uint64_t)nslots * slot_size;
    off = (off + 4095) & ~(uint64_t)4095;
    h->rx_slots_off = off;
    off += (uint64_t)nslots * slot_size;
    h->total_size = (off + 4095) & ~(uint64_t)4095;
}

static void
fill_view(struct kvc_ring_region *rg, const struct kvc_ring_shm *h)
{
    uint8_t *b = rg->base;
    rg->tx.ctl = (struct kvc_ring_ctl *)(b + h->tx_ctl_off);
    rg->tx.slots = b + h->tx_slots_off;
    rg->rx.ctl = (struct kvc_ring_ctl *)(b + h->rx_ctl_off);
    rg->rx.slots = b + h->rx_slots_off;
    rg->tx.nslots = rg->rx.nslots = h->nslots;
    rg->tx.mask = rg->rx.mask = h->nslots - 1;
    rg->tx.slot_size = rg->rx.slot_size = h->slot_size;
    rg->tx.shadow = rg->rx.shadow = 0;
}

int
kvc_ring_region_create(uint32_t nslots, uint32_t slot_size, const uint8_t *mac,
                       uint16_t mtu, int *memfd, struct kvc_ring_region *rg)
{
    int rc = check_geometry(nslots, slot_size);
    if (rc)
        return rc;
    struct kvc_ring_shm h = {
        .magic = KVC_RING_MAGIC, .version = KVC_RING_VERSION,
        .nslots = nslots, .slot_size = slot_size, .mtu = mtu,
    };
    layout(&h, nslots, slot_size);
    if (mac)
        memcpy(h.mac, mac, 6);
    int fd = memfd_create("kvc-vswitch-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -errno;
    if (ftruncate(fd, (off_t)h.total_size) < 0) {
        rc = -errno;
        goto fail;
    }
    /* The size can never change under a mapping: no SIGBUS from a peer. */
    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW);
    void *base = mmap(NULL, h.total_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        rc = -errno;
        goto fail;
    }
    memcpy(base, &h, sizeof h);
    rg->base = base;
    rg->size = h.total_size;
    fill_view(rg, &h);
    *memfd = fd;
    return 0;
fail:
    close(fd);
    return rc;
}

int
kvc_ring_region_map(int memfd, struct kvc_ring_region *rg)
{
    struct kvc_ring_shm h;
    struct stat st;
    if (fstat(memfd, &st) < 0)
        return -errno;
    if (pread(memfd, &h, sizeof h, 0) != (ssize_t)sizeof h)
        return -EPROTO;
    if (h.magic != KVC_RING_MAGIC || h.version != KVC_RING_VERSION)
        return -EPROTO;
    int rc = check_geometry(h.nslots, h.slot_size);
    if (rc)
        return -EPROTO;
    /* Recompute the layout ourselves rather than trusting the offsets. */
    struct kvc_ring_shm want = h;
    layout(&want, h.nslots, h.slot_size);
    if (memcmp(&want, &h, offsetof(struct kvc_ring_shm, mac))
        || (uint64_t)st.st_size < want.total_size)
        return -EPROTO;
    void *base = mmap(NULL, want.total_size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    if (base == MAP_FAILED)
        return -errno;
    rg->base = base;
    rg->size = want.total_size;
    fill_view(rg, &want);
    return 0;
}

void
kvc_ring_region_unmap(struct kvc_ring_region *rg)
{
    if (rg && rg->base) {
        munmap(rg->base, rg->size);
        rg->base = NULL;
    }
}

void
kvc_ring_attach_producer(struct kvc_ring *r)
{
    r->shadow = __atomic_load_n(&r->ctl->prod, __ATOMIC_ACQUIRE);
}

void
kvc_ring_attach_consumer(struct kvc_ring *r)
{
    r->shadow = __atomic_load_n(&r->ctl->cons, __ATOMIC_ACQUIRE);
}

void
kvc_ring_kick(int efd)
{
    uint64_t one = 1;
    ssize_t n = write(efd, &one, sizeof one);
    (void)n;                    /* EAGAIN: counter saturated, peer will look anyway */
}

void
kvc_ring_drain(int efd)
{
    uint64_t v;
    ssize_t n = read(efd, &v, sizeof v);
    (void)n;
}
