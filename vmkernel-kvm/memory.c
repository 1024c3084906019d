/* Guest RAM in a memfd (see memory.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib/log.h"
#include "vmkernel-kvm/memory.h"

KVC_LOG_MODULE(memory);

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static void advise(struct guest_mem *m, bool prefault)
{
    if (madvise(m->hva, m->size, MADV_HUGEPAGE) < 0)
        kvc_dbg("MADV_HUGEPAGE: %s", strerror(errno));
    if (prefault && madvise(m->hva, m->size, MADV_POPULATE_WRITE) < 0)
        kvc_warn("MADV_POPULATE_WRITE: %s (guest RAM faults in on demand)", strerror(errno));
}

int guest_mem_init(struct guest_mem *m, uint64_t size, bool prefault)
{
    memset(m, 0, sizeof(*m));
    m->fd = -1;
    if (size == 0 || size % (2u << 20))
        return -EINVAL;
    int fd = memfd_create("vmx-guest-ram", MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (ftruncate(fd, (off_t)size) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
    if (p == MAP_FAILED) {
        int e = -errno;
        close(fd);
        return e;
    }
    m->fd = fd;
    m->hva = p;
    m->size = size;
    advise(m, prefault);
    return 0;
}

void guest_mem_destroy(struct guest_mem *m)
{
    if (!m)
        return;
    if (m->hva)
        munmap(m->hva, m->size);
    if (m->fd >= 0)
        close(m->fd);
    free(m->vmx_dirty);
    m->vmx_dirty = NULL;
    m->vmx_dirty_on = false;
    m->hva = NULL;
    m->fd = -1;
    m->size = 0;
}

int guest_mem_clear(struct guest_mem *m, bool prefault)
{
    if (fallocate(m->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t)m->size) < 0) {
        kvc_warn("punch hole: %s; zeroing by hand", strerror(errno));
        memset(m->hva, 0, m->size);
        return 0;
    }
    advise(m, prefault);
    return 0;
}

int guest_mem_read(const struct guest_mem *m, uint64_t gpa, void *buf, uint64_t len)
{
    const void *p = guest_mem_ptr(m, gpa, len);
    if (!p)
        return -EFAULT;
    memcpy(buf, p, len);
    return 0;
}

int guest_mem_write(struct guest_mem *m, uint64_t gpa, const void *buf, uint64_t len)
{
    void *p = guest_mem_ptr(m, gpa, len);
    if (!p)
        return -EFAULT;
    memcpy(p, buf, len);
    return 0;
}

uint64_t guest_mem_resident(const struct guest_mem *m)
{
    long pg = sysconf(_SC_PAGESIZE);
    uint64_t total = 0;
    const uint64_t chunk = 64ull << 20;
    unsigned char *vec = malloc(chunk / (uint64_t)pg);
    if (!vec || !m->hva)
        goto out;
    for (uint64_t off = 0; off < m->size; off += chunk) {
        uint64_t len = m->size - off < chunk ? m->size - off : chunk;
        if (mincore(m->hva + off, len, vec) < 0)
            break;
        for (uint64_t i = 0; i < len / (uint64_t)pg; i++)
            if (vec[i] & 1)
                total += (uint64_t)pg;
    }
out:
    free(vec);
    return total;
}

/* ---- writes by vmx during live migration (see memory.h) ---- */

void guest_mem_mark_dirty(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
    uint64_t *bm = m->vmx_dirty;
    if (!bm)
        return;
    uint64_t first = gpa >> 12, last = (gpa + (len ? len - 1 : 0)) >> 12;
    for (uint64_t p = first; p <= last && p < m->size >> 12; p++)
        __atomic_fetch_or(&bm[p / 64], 1ull << (p % 64), __ATOMIC_RELAXED);
}

int guest_mem_track_writes(struct guest_mem *m, bool on)
{
    if (on && !m->vmx_dirty) {
        m->vmx_dirty = calloc(((m->size >> 12) + 63) / 64, sizeof(uint64_t));
        if (!m->vmx_dirty)
            return -ENOMEM;
    }
    __atomic_store_n(&m->vmx_dirty_on, on, __ATOMIC_RELEASE);
    return 0;
}

void guest_mem_collect_dirty(struct guest_mem *m, uint64_t *bitmap)
{
    if (!m->vmx_dirty)
        return;
    uint64_t words = ((m->size >> 12) + 63) / 64;
    for (uint64_t i = 0; i < words; i++)
        bitmap[i] |= __atomic_exchange_n(&m->vmx_dirty[i], 0, __ATOMIC_RELAXED);
}
