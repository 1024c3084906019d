/* virtio-balloon (device id 5): the host sets a target in pages, the driver
 * gives pages back on the inflate queue (vmx frees them from the memfd) and
 * takes them back on the deflate queue (they fault in again, zeroed). */
#ifndef KVC_VMX_BALLOON_H
#define KVC_VMX_BALLOON_H

#include <stdint.h>

#include "vmkernel-kvm/devices/virtio_mmio.h"

struct balloon {
    struct virtio_mmio dev;
    uint32_t target_pages;      /* host's wish (config num_pages) */
    uint32_t actual_pages;      /* driver's report (config actual) */
    uint64_t inflated, deflated;        /* pages seen on each queue */
    uint64_t rejected;          /* PFNs outside RAM */
};

void balloon_init(struct balloon *, struct guest_mem *, const struct irq_line *);
void balloon_set_target(struct balloon *, uint32_t pages);

#endif
