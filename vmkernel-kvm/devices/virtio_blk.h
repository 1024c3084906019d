/* virtio-blk (device id 2) on the virtio-mmio transport, backed by a raw
 * sparse file and its snapshot deltas (vmkernel-kvm/disk.h).
 *
 * One request queue.  Requests: IN, OUT, FLUSH (fdatasync of data, then the
 * delta maps), GET_ID.  The I/O runs in the notify path on the vCPU thread
 * that kicked the queue (preadv/pwritev straight into guest RAM), with the
 * device lock held.  A request the driver got wrong (out-of-range sector,
 * length not a multiple of 512 or above BLK_REQ_MAX, data on the wrong
 * side, a header shorter than 16 bytes, a write to a read-only disk) ends
 * with VIRTIO_BLK_S_IOERR, an unknown type with VIRTIO_BLK_S_UNSUPP; only
 * a queue the driver breaks (virtq.h rules) stops working.
 *
 * Errors: 0 or -errno. */
#ifndef KVC_VMX_VIRTIO_BLK_H
#define KVC_VMX_VIRTIO_BLK_H

#include <stdbool.h>
#include <stdint.h>

#include "vmkernel-kvm/devices/virtio_mmio.h"
#include "vmkernel-kvm/disk.h"

#define VIRTIO_ID_BLOCK 2

#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX  2
#define VIRTIO_BLK_F_RO       5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH    9

#define VIRTIO_BLK_T_IN     0u
#define VIRTIO_BLK_T_OUT    1u
#define VIRTIO_BLK_T_FLUSH  4u
#define VIRTIO_BLK_T_GET_ID 8u

#define VIRTIO_BLK_S_OK     0u
#define VIRTIO_BLK_S_IOERR  1u
#define VIRTIO_BLK_S_UNSUPP 2u

#define VIRTIO_BLK_ID_BYTES 20u
#define BLK_SIZE_MAX  (1u << 20)        /* per segment (config size_max) */
#define BLK_SEG_MAX   (VIRTQ_MAX_SEGS - 2)
#define BLK_REQ_MAX   (4u << 20)        /* data bytes per request */
#define BLK_QUEUE_MAX 256u

struct virtio_blk {
    struct virtio_mmio dev;
    struct disk disk;
    bool readonly;
    char id[VIRTIO_BLK_ID_BYTES + 1];   /* GET_ID answer */
    uint64_t requests, errors, unsupported;
    uint64_t read_reqs, write_reqs, flush_reqs;
};

/* Open the disk at PATH (a full path) and set up the device.  ERR gets the
 * reason on failure (bad file, corrupt delta map or chain). */
int virtio_blk_init(struct virtio_blk *, struct guest_mem *, const struct irq_line *,
                    const char *path, bool readonly, const char *id, char *err, size_t errlen);
/* Flush and close the disk; accepts a device never initialised (zeroed). */
void virtio_blk_destroy(struct virtio_blk *);
/* Sectors of the disk. */
uint64_t virtio_blk_capacity(const struct virtio_blk *);

#endif
