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
};

/* Create SIZE bytes (a multiple of 2 MiB) of guest RAM.  PREFAULT populates
 * it (MADV_POPULATE_WRITE) so the guest never takes first-touch faults. */
int guest_mem_init(struct guest_mem *, uint64_t size, bool prefault);
void guest_mem_destroy(struct guest_mem *);
/* Zero all RAM (reset); keeps it populated if PREFAULT. */
int guest_mem_clear(struct guest_mem *, bool prefault);

/* Host pointer to [gpa, gpa+len) if it lies wholly in RAM, else NULL.
 * len 0 is allowed (checks gpa <= size). */
static inline void *guest_mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
    if (gpa > m->size || len > m->size - gpa)
        return NULL;
    return m->hva + gpa;
}

/* Copy to/from guest RAM; -EFAULT if the range is not wholly in RAM. */
int guest_mem_read(const struct guest_mem *, uint64_t gpa, void *buf, uint64_t len);
int guest_mem_write(struct guest_mem *, uint64_t gpa, const void *buf, uint64_t len);

/* Bytes of guest RAM resident in this process (mincore over the mapping). */
uint64_t guest_mem_resident(const struct guest_mem *);

#endif
