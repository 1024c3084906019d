/* virtio-balloon (see balloon.h). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>

#include "lib/log.h"
#include "vmkernel-kvm/devices/balloon.h"

KVC_LOG_MODULE(balloon);

#define VIRTIO_ID_BALLOON 5
#define Q_INFLATE 0
#define Q_DEFLATE 1
#define BALLOON_PAGE 4096ull

static struct kvc_ratelimit rl = KVC_RATELIMIT_INIT(5, 10);

static void cfg_read(void *opaque, uint64_t off, uint8_t *data, unsigned len)
{
    struct balloon *b = opaque;
    uint8_t cfg[8];
    le_put(cfg, 4, b->target_pages);
    le_put(cfg + 4, 4, b->actual_pages);
    if (off < sizeof(cfg) && len <= sizeof(cfg) - off)
        memcpy(data, cfg + off, len);
}

static void cfg_write(void *opaque, uint64_t off, const uint8_t *data, unsigned len)
{
    struct balloon *b = opaque;
    if (off == 4 && len == 4)
        b->actual_pages = (uint32_t)le_get(data, 4);
}

static void release(struct balloon *b, uint32_t pfn)
{
    struct guest_mem *m = b->dev.mem;
    uint64_t gpa = (uint64_t)pfn * BALLOON_PAGE;
    if (!guest_mem_ptr(m, gpa, BALLOON_PAGE)) {
        b->rejected++;
        kvc_warn_rl(&rl, "inflate: pfn 0x%x outside guest RAM", pfn);
        return;
    }
    if (m->fd >= 0 && fallocate(m->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                (off_t)gpa, (off_t)BALLOON_PAGE) < 0)
        kvc_dbg_rl(&rl, "punch pfn 0x%x: %s", pfn, strerror(errno));
}

static void notify(void *opaque, struct virtio_mmio *dev, unsigned qi)
{
    struct balloon *b = opaque;
    struct virtq *q = &dev->q[qi];
    struct virtq_elem e;
    int r;
    while ((r = virtq_pop(q, &e)) > 0) {
        for (unsigned s = 0; s < e.n_out; s++) {
            const uint8_t *p = e.out[s].iov_base;
            for (size_t i = 0; i + 4 <= e.out[s].iov_len; i += 4) {
                uint32_t pfn;
                memcpy(&pfn, p + i, 4);
                if (qi == Q_INFLATE) {
                    release(b, pfn);
                    b->inflated++;
                } else {
                    b->deflated++;
                }
            }
        }
        virtq_push(q, &e, 0);
    }
    if (r < 0)
        virtio_mmio_queue_broken(dev, qi);
    virtio_mmio_notify_used(dev, qi);
}

static void save(void *opaque, struct sbuf *s)
{
    struct balloon *b = opaque;
    sbuf_u32(s, b->target_pages);
    sbuf_u32(s, b->actual_pages);
}

static int load(void *opaque, struct sreader *r)
{
    struct balloon *b = opaque;
    b->target_pages = sreader_u32(r);
    b->actual_pages = sreader_u32(r);
    return r->err;
}

static const struct virtio_dev_ops balloon_ops = {
    .name = "balloon",
    .device_id = VIRTIO_ID_BALLOON,
    .features = 0,
    .num_queues = 2,
    .queue_max = 256,
    .config_read = cfg_read,
    .config_write = cfg_write,
    .notify = notify,
    .save = save,
    .load = load,
};

void balloon_init(struct balloon *b, struct guest_mem *mem, const struct irq_line *irq)
{
    memset(b, 0, sizeof(*b));
    virtio_mmio_init(&b->dev, &balloon_ops, b, mem, irq);
}

void balloon_set_target(struct balloon *b, uint32_t pages)
{
    b->target_pages = pages;
    virtio_mmio_config_changed(&b->dev);
}
