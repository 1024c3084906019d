/* Devices of vmx: each device is one file with an ops table, registered on
 * the port-I/O or MMIO bus at start-up and torn down in reverse order.
 *
 * Handlers run on the vCPU thread that exited, with the VM's device lock
 * held (struct vmx.dev_lock), so a device needs no lock of its own unless it
 * has threads.  Every access a guest can make ends in a handler that checks
 * offsets and sizes: an access nobody claims reads as all ones and is
 * ignored on write. */
#ifndef KVC_VMX_DEVICE_H
#define KVC_VMX_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bus_dev {
    const char *name;
    uint64_t base, len;
    void *opaque;
    /* DATA holds LEN (1, 2, 4 or 8) bytes, little-endian. */
    void (*read)(void *opaque, uint64_t off, uint8_t *data, unsigned len);
    void (*write)(void *opaque, uint64_t off, const uint8_t *data, unsigned len);
};

#define BUS_MAX_DEVS 32

struct bus {
    struct bus_dev devs[BUS_MAX_DEVS];
    unsigned n;
};

/* Returns 0, -EEXIST for an overlapping range, -ENOSPC when full. */
int bus_register(struct bus *, const struct bus_dev *);
/* Dispatch one access; returns false if no device claims ADDR. */
bool bus_read(struct bus *, uint64_t addr, uint8_t *data, unsigned len);
bool bus_write(struct bus *, uint64_t addr, const uint8_t *data, unsigned len);

/* Raise or lower a GSI of the in-kernel irqchip (vmx provides it). */
struct irq_line {
    void *opaque;
    void (*set)(void *opaque, unsigned gsi, int level);
    unsigned gsi;
};

static inline void irq_set(const struct irq_line *l, int level)
{
    if (l && l->set)
        l->set(l->opaque, l->gsi, level);
}

static inline uint64_t le_get(const uint8_t *d, unsigned len)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < len && i < 8; i++)
        v |= (uint64_t)d[i] << (8 * i);
    return v;
}

static inline void le_put(uint8_t *d, unsigned len, uint64_t v)
{
    for (unsigned i = 0; i < len && i < 8; i++)
        d[i] = (uint8_t)(v >> (8 * i));
}

#endif
