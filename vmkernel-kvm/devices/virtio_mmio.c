/* virtio-mmio transport (see virtio_mmio.h). */
#include <errno.h>
#include <string.h>

#include "lib/log.h"
#include "vmkernel-kvm/devices/virtio_mmio.h"

KVC_LOG_MODULE(virtio);

enum {
    R_MAGIC = 0x000, R_VERSION = 0x004, R_DEVICE_ID = 0x008, R_VENDOR = 0x00c,
    R_DEV_FEAT = 0x010, R_DEV_FEAT_SEL = 0x014, R_DRV_FEAT = 0x020,
    R_DRV_FEAT_SEL = 0x024, R_QUEUE_SEL = 0x030, R_QUEUE_NUM_MAX = 0x034,
    R_QUEUE_NUM = 0x038, R_QUEUE_READY = 0x044, R_QUEUE_NOTIFY = 0x050,
    R_INT_STATUS = 0x060, R_INT_ACK = 0x064, R_STATUS = 0x070,
    R_QUEUE_DESC_LO = 0x080, R_QUEUE_DESC_HI = 0x084,
    R_QUEUE_AVAIL_LO = 0x090, R_QUEUE_AVAIL_HI = 0x094,
    R_QUEUE_USED_LO = 0x0a0, R_QUEUE_USED_HI = 0x0a4,
    R_CONFIG_GEN = 0x0fc, R_CONFIG = 0x100,
};

#define VENDOR_ID 0x4356564bu   /* "KVVC" */

static struct kvc_ratelimit rl = KVC_RATELIMIT_INIT(5, 10);

static uint64_t dev_features(const struct virtio_mmio *d)
{
    return d->ops->features | (1ull << VIRTIO_F_VERSION_1);
}

static struct virtq *cur_queue(struct virtio_mmio *d)
{
    return d->queue_sel < d->ops->num_queues ? &d->q[d->queue_sel] : NULL;
}

static void update_irq(struct virtio_mmio *d)
{
    irq_set(&d->irq, d->int_status ? 1 : 0);
}

static void do_reset(struct virtio_mmio *d)
{
    d->status = 0;
    d->dev_feat_sel = d->drv_feat_sel = d->queue_sel = 0;
    d->drv_features = 0;
    d->int_status = 0;
    for (unsigned i = 0; i < VIRTIO_MMIO_MAX_QUEUES; i++) {
        d->q[i].mem = d->mem;
        virtq_reset(&d->q[i]);
    }
    if (d->ops->reset)
        d->ops->reset(d->opaque);
    update_irq(d);
}

void virtio_mmio_init(struct virtio_mmio *d, const struct virtio_dev_ops *ops, void *opaque,
                      struct guest_mem *mem, const struct irq_line *irq)
{
    memset(d, 0, sizeof(*d));
    d->ops = ops;
    d->opaque = opaque;
    d->mem = mem;
    if (irq)
        d->irq = *irq;
    do_reset(d);
}

int virtio_mmio_attach(struct virtio_mmio *d, struct bus *b, uint64_t base)
{
    struct bus_dev bd = {
        .name = d->ops->name, .base = base, .len = 0x1000, .opaque = d,
        .read = virtio_mmio_read, .write = virtio_mmio_write,
    };
    d->base = base;
    return bus_register(b, &bd);
}

void virtio_mmio_read(void *opaque, uint64_t off, uint8_t *data, unsigned len)
{
    struct virtio_mmio *d = opaque;
    struct virtq *q = cur_queue(d);
    uint32_t v = 0;

    if (off >= R_CONFIG) {
        memset(data, 0, len);
        if (d->ops->config_read)
            d->ops->config_read(d->opaque, off - R_CONFIG, data, len);
        return;
    }
    if (len != 4 || (off & 3)) {
        memset(data, 0xff, len);
        return;
    }
    switch (off) {
    case R_MAGIC: v = VIRTIO_MMIO_MAGIC; break;
    case R_VERSION: v = 2; break;
    case R_DEVICE_ID: v = d->ops->device_id; break;
    case R_VENDOR: v = VENDOR_ID; break;
    case R_DEV_FEAT:
        v = d->dev_feat_sel < 2 ? (uint32_t)(dev_features(d) >> (32 * d->dev_feat_sel)) : 0;
        break;
    case R_QUEUE_NUM_MAX: v = q ? d->ops->queue_max : 0; break;
    case R_QUEUE_READY: v = q ? q->ready : 0; break;
    case R_INT_STATUS: v = d->int_status; break;
    case R_STATUS: v = d->status; break;
    case R_CONFIG_GEN: v = d->config_gen; break;
    default: v = 0; break;
    }
    le_put(data, 4, v);
}

static void set_addr(uint64_t *a, bool hi, uint32_t v)
{
    *a = hi ? (*a & 0xffffffffull) | (uint64_t)v << 32 : (*a & ~0xffffffffull) | v;
}

void virtio_mmio_write(void *opaque, uint64_t off, const uint8_t *data, unsigned len)
{
    struct virtio_mmio *d = opaque;
    struct virtq *q = cur_queue(d);

    if (off >= R_CONFIG) {
        if (d->ops->config_write)
            d->ops->config_write(d->opaque, off - R_CONFIG, data, len);
        return;
    }
    if (len != 4 || (off & 3)) {
        kvc_dbg_rl(&rl, "%s: ignored %u-byte write at 0x%llx", d->ops->name, len,
                   (unsigned long long)off);
        return;
    }
    uint32_t v = (uint32_t)le_get(data, 4);
    /* Queue configuration may only change while the queue is not ready. */
    bool qcfg = q && !q->ready;
    switch (off) {
    case R_DEV_FEAT_SEL: d->dev_feat_sel = v; break;
    case R_DRV_FEAT_SEL: d->drv_feat_sel = v; break;
    case R_DRV_FEAT:
        if (d->drv_feat_sel < 2 && !(d->status & VIRTIO_STATUS_FEATURES_OK)) {
            uint64_t mask = 0xffffffffull << (32 * d->drv_feat_sel);
            d->drv_features = (d->drv_features & ~mask)
                | (((uint64_t)v << (32 * d->drv_feat_sel)) & mask & dev_features(d));
        }
        break;
    case R_QUEUE_SEL: d->queue_sel = v; break;
    case R_QUEUE_NUM:
        if (qcfg)
            q->size = v <= d->ops->queue_max ? (uint16_t)v : 0;
        break;
    case R_QUEUE_DESC_LO: case R_QUEUE_DESC_HI:
        if (qcfg) set_addr(&q->desc, off == R_QUEUE_DESC_HI, v);
        break;
    case R_QUEUE_AVAIL_LO: case R_QUEUE_AVAIL_HI:
        if (qcfg) set_addr(&q->avail, off == R_QUEUE_AVAIL_HI, v);
        break;
    case R_QUEUE_USED_LO: case R_QUEUE_USED_HI:
        if (qcfg) set_addr(&q->used, off == R_QUEUE_USED_HI, v);
        break;
    case R_QUEUE_READY:
        if (!q)
            break;
        if (v && !q->ready) {
            q->features = d->drv_features;
            if (virtq_enable(q) < 0) {
                kvc_warn_rl(&rl, "%s: queue %u: bad configuration from driver",
                            d->ops->name, d->queue_sel);
                d->status |= VIRTIO_STATUS_NEEDS_RESET;
            }
        } else if (!v) {
            q->ready = false;
        }
        break;
    case R_QUEUE_NOTIFY:
        if (v < d->ops->num_queues && d->q[v].ready && (d->status & VIRTIO_STATUS_DRIVER_OK)
            && d->ops->notify)
            d->ops->notify(d->opaque, d, v);
        break;
    case R_INT_ACK:
        d->int_status &= ~v;
        update_irq(d);
        break;
    case R_STATUS:
        if (v == 0) {
            do_reset(d);
        } else {
            if ((v & VIRTIO_STATUS_FEATURES_OK) && !(d->status & VIRTIO_STATUS_FEATURES_OK)
                && !(d->drv_features & (1ull << VIRTIO_F_VERSION_1)) && d->ops->num_queues)
                v &= ~VIRTIO_STATUS_FEATURES_OK;    /* legacy drivers are refused */
            d->status = (d->status & VIRTIO_STATUS_NEEDS_RESET) | (v & 0xff & ~VIRTIO_STATUS_NEEDS_RESET);
        }
        break;
    default:
        break;
    }
}

void virtio_mmio_notify_used(struct virtio_mmio *d, unsigned q)
{
    if (q >= d->ops->num_queues || !virtq_need_interrupt(&d->q[q]))
        return;
    d->int_status |= 1;
    update_irq(d);
}

void virtio_mmio_config_changed(struct virtio_mmio *d)
{
    d->config_gen++;
    if (d->status & VIRTIO_STATUS_DRIVER_OK) {
        d->int_status |= 2;
        update_irq(d);
    }
}

void virtio_mmio_queue_broken(struct virtio_mmio *d, unsigned q)
{
    (void)q;
    d->status |= VIRTIO_STATUS_NEEDS_RESET;
    virtio_mmio_config_changed(d);
}

void virtio_mmio_save(const struct virtio_mmio *d, struct sbuf *b)
{
    sbuf_u32(b, d->ops->device_id);
    sbuf_u32(b, d->status);
    sbuf_u32(b, d->dev_feat_sel);
    sbuf_u32(b, d->drv_feat_sel);
    sbuf_u32(b, d->queue_sel);
    sbuf_u32(b, d->int_status);
    sbuf_u32(b, d->config_gen);
    sbuf_u64(b, d->drv_features);
    sbuf_u32(b, d->ops->num_queues);
    for (unsigned i = 0; i < d->ops->num_queues; i++)
        virtq_save(&d->q[i], b);
    struct sbuf dev;
    sbuf_init(&dev);
    if (d->ops->save)
        d->ops->save(d->opaque, &dev);
    if (dev.err)
        b->err = dev.err;
    sbuf_blob(b, dev.p, dev.len);
    sbuf_free(&dev);
}

int virtio_mmio_load(struct virtio_mmio *d, struct sreader *r)
{
    if (sreader_u32(r) != d->ops->device_id)
        return -EINVAL;
    d->status = sreader_u32(r);
    d->dev_feat_sel = sreader_u32(r);
    d->drv_feat_sel = sreader_u32(r);
    d->queue_sel = sreader_u32(r);
    d->int_status = sreader_u32(r);
    d->config_gen = sreader_u32(r);
    d->drv_features = sreader_u64(r) & dev_features(d);
    if (sreader_u32(r) != d->ops->num_queues || r->err)
        return -EINVAL;
    for (unsigned i = 0; i < d->ops->num_queues; i++) {
        d->q[i].mem = d->mem;
        if (virtq_load(&d->q[i], r) < 0)
            return -EINVAL;
    }
    uint32_t n = sreader_u32(r);
    if (r->err || n > r->len - r->off)
        return -EINVAL;
    struct sreader sub;
    sreader_init(&sub, r->p + r->off, n);
    r->off += n;
    if (d->ops->load) {
        int e = d->ops->load(d->opaque, &sub);
        if (e < 0)
            return e;
    }
    update_irq(d);
    return 0;
}
