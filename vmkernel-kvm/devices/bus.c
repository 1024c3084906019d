/* Port-I/O and MMIO dispatch (see device.h). */
#include <errno.h>
#include <string.h>

#include "vmkernel-kvm/devices/device.h"

int bus_register(struct bus *b, const struct bus_dev *d)
{
    if (b->n >= BUS_MAX_DEVS)
        return -ENOSPC;
    if (d->len == 0 || d->base + d->len < d->base)
        return -EINVAL;
    for (unsigned i = 0; i < b->n; i++) {
        const struct bus_dev *o = &b->devs[i];
        if (d->base < o->base + o->len && o->base < d->base + d->len)
            return -EEXIST;
    }
    b->devs[b->n++] = *d;
    return 0;
}

static struct bus_dev *find(struct bus *b, uint64_t addr, unsigned len)
{
    for (unsigned i = 0; i < b->n; i++) {
        struct bus_dev *d = &b->devs[i];
        if (addr >= d->base && addr - d->base < d->len && len <= d->len - (addr - d->base))
            return d;
    }
    return NULL;
}

bool bus_read(struct bus *b, uint64_t addr, uint8_t *data, unsigned len)
{
    struct bus_dev *d = find(b, addr, len);
    if (!d || !d->read) {
        memset(data, 0xff, len);
        return d != NULL;
    }
    d->read(d->opaque, addr - d->base, data, len);
    return true;
}

bool bus_write(struct bus *b, uint64_t addr, const uint8_t *data, unsigned len)
{
    struct bus_dev *d = find(b, addr, len);
    if (!d)
        return false;
    if (d->write)
        d->write(d->opaque, addr - d->base, data, len);
    return true;
}
