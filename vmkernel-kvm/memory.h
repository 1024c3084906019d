/* Guest RAM: one memfd, mapped once in vmx, with every guest-physical access
 * bounds-checked here.  Device code never forms a host pointer from a guest
 * address any other way, so nothing a guest writes can make vmx touch memory
 * outside its RAM.
 *
 * Errors: functions return 0 or -errno. */
#ifndef KVC_VMX_MEMORY_H
#define KVC_VMX_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct guest_mem {
    int fd;                 /* memfd, -1 if none */
    uint8_t *hva;           /* mapping of the whole RAM */
    uint64_t size;          /* bytes, from GPA 0 */
    /* Writes by vmx itself (devices) are invisible to KVM's dirty log, so
     * during a live migration every range handed out by guest_mem_ptr is
     * marked here too (reads included: over-marking only resends a page).
     * Device code touches guest RAM under dev_lock, and migrate.c collects
     * these bits under dev_lock, so a write is never between its mark and
     * the collection.  Allocated on first use, kept until destroy. */
    uint64_t *vmx_dirty;
    bool vmx_dirty_on;
};

/* Create SIZE bytes (a multiple of 2 MiB) of guest RAM.  PREFAULT populates
 * it (MADV_POPULATE_WRITE) so the guest never takes first-touch faults. */
int guest_mem_init(struct guest_mem *, uint64_t size, bool prefault);
void guest_mem_destroy(struct guest_mem *);
/* Zero all RAM (reset); keeps it populated if PREFAULT. */
int guest_mem_clear(struct guest_mem *, bool prefault);

/* Host pointer to [gpa, gpa+len) if it lies wholly in RAM, else NULL.
 * len 0 is allowed (checks gpa <= size). */
void guest_mem_mark_dirty(const struct guest_mem *, uint64_t gpa, uint64_t len);
static inline void *guest_mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
    if (gpa > m->size || len > m->size - gpa)
        return NULL;
    if (__atomic_load_n(&m->vmx_dirty_on, __ATOMIC_ACQUIRE))
        guest_mem_mark_dirty(m, gpa, len);
    return m->hva + gpa;
}

/* Start (allocating the bitmap) or stop marking; returns 0 or -ENOMEM. */
int guest_mem_track_writes(struct guest_mem *, bool on);
/* OR the marked pages into BITMAP ((size/4096 + 63)/64 words) and clear them. */
void guest_mem_collect_dirty(struct guest_mem *, uint64_t *bitmap);

/* Copy to/from guest RAM; -EFAULT if the range is not wholly in RAM. */
int guest_mem_read(const struct guest_mem *, uint64_t gpa, void *buf, uint64_t len);
int guest_mem_write(struct guest_mem *, uint64_t gpa, const void *buf, uint64_t len);

/* Bytes of guest RAM resident in this process (mincore over the mapping). */
uint64_t guest_mem_resident(const struct guest_mem *);

#endif
