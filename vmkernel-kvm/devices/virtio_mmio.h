/* virtio-mmio transport (virtio 1.x, "version 2" register layout).
 *
 * A device is one file that fills a struct virtio_dev_ops and calls
 * virtio_mmio_init() + virtio_mmio_attach(); the transport owns the
 * registers, feature negotiation, queue configuration (checked by
 * virtq_enable), interrupts and reset.  See devices/tools.c (no queues) and
 * devices/balloon.c (two queues) for small examples.
 *
 *     static const struct virtio_dev_ops mydev_ops = {
 *         .name = "mydev", .device_id = 1, .features = 0,
 *         .num_queues = 2, .queue_max = 256,
 *         .notify = mydev_notify,          // driver kicked queue q
 *         .config_read = ..., .config_write = ..., .reset = ...,
 *         .save = ..., .load = ...,
 *     };
 *
 * In notify(), pop with virtq_pop(&dev->q[q], ...), push with virtq_push(),
 * then call virtio_mmio_notify_used(dev, q).  A queue that virtq_pop reports
 * broken makes the transport set DEVICE_NEEDS_RESET (call
 * virtio_mmio_queue_broken()).
 *
 * Errors: 0 or -errno. */
#ifndef KVC_VMX_VIRTIO_MMIO_H
#define KVC_VMX_VIRTIO_MMIO_H

#include <stdint.h>

#include "vmkernel-kvm/devices/device.h"
#include "vmkernel-kvm/devices/virtq.h"
#include "vmkernel-kvm/memory.h"
#include "vmkernel-kvm/vmx_state.h"

#define VIRTIO_MMIO_MAX_QUEUES 8
#define VIRTIO_MMIO_MAGIC 0x74726976u

#define VIRTIO_STATUS_ACKNOWLEDGE 1u
#define VIRTIO_STATUS_DRIVER      2u
#define VIRTIO_STATUS_DRIVER_OK   4u
#define VIRTIO_STATUS_FEATURES_OK 8u
#define VIRTIO_STATUS_NEEDS_RESET 64u
#define VIRTIO_STATUS_FAILED      128u

struct virtio_mmio;

struct virtio_dev_ops {
    const char *name;
    uint32_t device_id;
    uint64_t features;          /* device feature bits (VERSION_1 is added) */
    unsigned num_queues;        /* <= VIRTIO_MMIO_MAX_QUEUES */
    uint16_t queue_max;         /* <= VIRTQ_MAX_SIZE */
    /* Device-specific config space (offset from 0x100). */
    void (*config_read)(void *opaque, uint64_t off, uint8_t *data, unsigned len);
    void (*config_write)(void *opaque, uint64_t off, const uint8_t *data, unsigned len);
    void (*notify)(void *opaque, struct virtio_mmio *, unsigned q);
    void (*reset)(void *opaque);
    void (*save)(void *opaque, struct sbuf *);
    int (*load)(void *opaque, struct sreader *);
};

struct virtio_mmio {
    const struct virtio_dev_ops *ops;
    void *opaque;
    struct guest_mem *mem;
    struct irq_line irq;
    uint64_t base;
    uint32_t status;
    uint32_t dev_feat_sel, drv_feat_sel, queue_sel;
    uint32_t int_status;
    uint32_t config_gen;
    uint64_t drv_features;
    struct virtq q[VIRTIO_MMIO_MAX_QUEUES];
};

void virtio_mmio_init(struct virtio_mmio *, const struct virtio_dev_ops *, void *opaque,
                      struct guest_mem *, const struct irq_line *);
int virtio_mmio_attach(struct virtio_mmio *, struct bus *, uint64_t base);
/* Used buffers were pushed on queue Q: interrupt the driver if it wants. */
void virtio_mmio_notify_used(struct virtio_mmio *, unsigned q);
/* Device config changed (e.g. a new balloon target). */
void virtio_mmio_config_changed(struct virtio_mmio *);
/* The driver broke a queue: flag DEVICE_NEEDS_RESET. */
void virtio_mmio_queue_broken(struct virtio_mmio *, unsigned q);

/* MMIO register handlers (exposed for tests and the fuzzer). */
void virtio_mmio_read(void *opaque, uint64_t off, uint8_t *data, unsigned len);
void virtio_mmio_write(void *opaque, uint64_t off, const uint8_t *data, unsigned len);

void virtio_mmio_save(const struct virtio_mmio *, struct sbuf *);
int virtio_mmio_load(struct virtio_mmio *, struct sreader *);

#endif
