/* virtio-blk (see virtio_blk.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lib/log.h"
#include "vmkernel-kvm/devices/virtio_blk.h"

KVC_LOG_MODULE(vblk);

static struct kvc_ratelimit rl = KVC_RATELIMIT_INIT(5, 10);

uint64_t virtio_blk_capacity(const struct virtio_blk *b)
{
    return b->disk.size / DISK_SECTOR;
}

static void cfg_read(void *opaque, uint64_t off, uint8_t *data, unsigned len)
{
    struct virtio_blk *b = opaque;
    uint8_t cfg[24];
    memset(cfg, 0, sizeof(cfg));
    le_put(cfg, 8, virtio_blk_capacity(b));
    le_put(cfg + 8, 4, BLK_SIZE_MAX);
    le_put(cfg + 12, 4, BLK_SEG_MAX);
    le_put(cfg + 20, 4, DISK_SECTOR);
    if (off < sizeof(cfg) && len <= sizeof(cfg) - off)
        memcpy(data, cfg + off, len);
}

/* The device-writable byte at the very end of the chain: the status. */
static uint8_t *status_byte(const struct virtq_elem *e)
{
    for (unsigned i = e->n_in; i > 0; i--)
        if (e->in[i - 1].iov_len)
            return (uint8_t *)e->in[i - 1].iov_base + e->in[i - 1].iov_len - 1;
    return NULL;
}

static bool negotiated(const struct virtio_blk *b, unsigned bit)
{
    return b->dev.drv_features >> bit & 1;
}

/* Checks the request's sector range: LEN bytes from SECTOR. */
static bool in_range(const struct virtio_blk *b, uint64_t sector, uint64_t len)
{
    uint64_t cap = virtio_blk_capacity(b);
    return len % DISK_SECTOR == 0 && len <= BLK_REQ_MAX && sector <= cap
        && len / DISK_SECTOR <= cap - sector;
}

static uint8_t do_request(struct virtio_blk *b, const struct virtq_elem *e, uint32_t *written)
{
    uint8_t hdr[16];
    struct iovec data[VIRTQ_MAX_SEGS];
    *written = 1;
    if (e->out_len < sizeof(hdr)) {
        kvc_dbg_rl(&rl, "request header %llu bytes", (unsigned long long)e->out_len);
        return VIRTIO_BLK_S_IOERR;
    }
    /* The header is copied once; the guest may rewrite its buffer. */
    struct iovec h = { .iov_base = hdr, .iov_len = sizeof(hdr) };
    struct iovec src[VIRTQ_MAX_SEGS];
    unsigned k = disk_iov_sub(e->out, e->n_out, 0, sizeof(hdr), src, VIRTQ_MAX_SEGS);
    size_t got = 0;
    for (unsigned i = 0; i < k; i++) {
        memcpy((uint8_t *)h.iov_base + got, src[i].iov_base, src[i].iov_len);
        got += src[i].iov_len;
    }
    uint32_t type = (uint32_t)le_get(hdr, 4);
    uint64_t sector = le_get(hdr + 8, 8);
    uint64_t in_data = e->in_len - 1, out_data = e->out_len - sizeof(hdr);

    switch (type) {
    case VIRTIO_BLK_T_IN: {
        b->read_reqs++;
        if (out_data || !in_range(b, sector, in_data))
            return VIRTIO_BLK_S_IOERR;
        unsigned n = in_data ? disk_iov_sub(e->in, e->n_in, 0, in_data, data, VIRTQ_MAX_SEGS) : 0;
        if (in_data && (!n || disk_read(&b->disk, sector * DISK_SECTOR, data, n, in_data) < 0))
            return VIRTIO_BLK_S_IOERR;
        *written = (uint32_t)in_data + 1;
        return VIRTIO_BLK_S_OK;
    }
    case VIRTIO_BLK_T_OUT: {
        b->write_reqs++;
        if (in_data || b->readonly || !in_range(b, sector, out_data))
            return VIRTIO_BLK_S_IOERR;
        unsigned n = out_data ? disk_iov_sub(e->out, e->n_out, sizeof(hdr), out_data, data,
                                             VIRTQ_MAX_SEGS) : 0;
        if (out_data && (!n || disk_write(&b->disk, sector * DISK_SECTOR, data, n, out_data) < 0))
            return VIRTIO_BLK_S_IOERR;
        /* Without FLUSH negotiated the driver expects a write-through disk. */
        if (!negotiated(b, VIRTIO_BLK_F_FLUSH) && disk_flush(&b->disk) < 0)
            return VIRTIO_BLK_S_IOERR;
        return VIRTIO_BLK_S_OK;
    }
    case VIRTIO_BLK_T_FLUSH:
        b->flush_reqs++;
        if (b->readonly)
            return VIRTIO_BLK_S_OK;
        return disk_flush(&b->disk) < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
    case VIRTIO_BLK_T_GET_ID: {
        uint64_t n = in_data < VIRTIO_BLK_ID_BYTES ? in_data : VIRTIO_BLK_ID_BYTES;
        uint8_t id[VIRTIO_BLK_ID_BYTES];
        memset(id, 0, sizeof(id));
        memcpy(id, b->id, strlen(b->id));
        uint64_t done = 0;
        for (unsigned i = 0; i < e->n_in && done < n; i++) {
            uint64_t c = e->in[i].iov_len < n - done ? e->in[i].iov_len : n - done;
            memcpy(e->in[i].iov_base, id + done, c);
            done += c;
        }
        *written = (uint32_t)n + 1;
        return VIRTIO_BLK_S_OK;
    }
    default:
        b->unsupported++;
        return VIRTIO_BLK_S_UNSUPP;
    }
}

static void notify(void *opaque, struct virtio_mmio *dev, unsigned qi)
{
    struct virtio_blk *b = opaque;
    struct virtq *q = &dev->q[qi];
    struct virtq_elem e;
    int r;
    while ((r = virtq_pop(q, &e)) > 0) {
        b->requests++;
        uint8_t *st = status_byte(&e);
        uint32_t written = 0;
        if (!st) {
            /* No byte to report a status in: complete it empty. */
            b->errors++;
            kvc_warn_rl(&rl, "request without a status byte");
        } else {
            uint8_t s = do_request(b, &e, &written);
            if (s != VIRTIO_BLK_S_OK)
                b->errors++;
            *st = s;
        }
        virtq_push(q, &e, written);
    }
    if (r < 0)
        virtio_mmio_queue_broken(dev, qi);
    virtio_mmio_notify_used(dev, qi);
}

static void save(void *opaque, struct sbuf *s)
{
    struct virtio_blk *b = opaque;
    sbuf_u64(s, virtio_blk_capacity(b));
    sbuf_u8(s, b->readonly);
    /* The disk files are the disk's state: make them complete for whoever
     * opens them next (a restore, or a migration destination). */
    if (b->disk.is_open && disk_flush(&b->disk) < 0)
        s->err = -EIO;
}

static int load(void *opaque, struct sreader *r)
{
    struct virtio_blk *b = opaque;
    uint64_t cap = sreader_u64(r);
    bool ro = sreader_u8(r);
    if (r->err)
        return r->err;
    if (cap != virtio_blk_capacity(b) || ro != b->readonly) {
        kvc_err("saved disk has %llu sectors%s, this one %llu%s", (unsigned long long)cap,
                ro ? " (read-only)" : "", (unsigned long long)virtio_blk_capacity(b),
                b->readonly ? " (read-only)" : "");
        return -EINVAL;
    }
    /* The source may have written the chain and maps since we opened them. */
    char err[256] = "";
    int rc = disk_reopen(&b->disk, err, sizeof(err));
    if (rc)
        kvc_err("disk: %s", err[0] ? err : strerror(-rc));
    return rc;
}

static const struct virtio_dev_ops blk_ops = {
    .name = "virtio-blk",
    .device_id = VIRTIO_ID_BLOCK,
    .features = 1ull << VIRTIO_BLK_F_SIZE_MAX | 1ull << VIRTIO_BLK_F_SEG_MAX
              | 1ull << VIRTIO_BLK_F_BLK_SIZE | 1ull << VIRTIO_BLK_F_FLUSH
              | 1ull << VIRTIO_RING_F_INDIRECT_DESC | 1ull << VIRTIO_RING_F_EVENT_IDX,
    .num_queues = 1,
    .queue_max = BLK_QUEUE_MAX,
    .config_read = cfg_read,
    .notify = notify,
    .save = save,
    .load = load,
};

static const struct virtio_dev_ops blk_ro_ops = {
    .name = "virtio-blk",
    .device_id = VIRTIO_ID_BLOCK,
    .features = 1ull << VIRTIO_BLK_F_SIZE_MAX | 1ull << VIRTIO_BLK_F_SEG_MAX
              | 1ull << VIRTIO_BLK_F_BLK_SIZE | 1ull << VIRTIO_BLK_F_FLUSH
              | 1ull << VIRTIO_BLK_F_RO
              | 1ull << VIRTIO_RING_F_INDIRECT_DESC | 1ull << VIRTIO_RING_F_EVENT_IDX,
    .num_queues = 1,
    .queue_max = BLK_QUEUE_MAX,
    .config_read = cfg_read,
    .notify = notify,
    .save = save,
    .load = load,
};

int virtio_blk_init(struct virtio_blk *b, struct guest_mem *mem, const struct irq_line *irq,
                    const char *path, bool readonly, const char *id, char *err, size_t errlen)
{
    memset(b, 0, sizeof(*b));
    b->readonly = readonly;
    int rc = disk_open(&b->disk, path, readonly, err, errlen);
    if (rc)
        return rc;
    snprintf(b->id, sizeof(b->id), "%.20s", id ? id : "");
    virtio_mmio_init(&b->dev, readonly ? &blk_ro_ops : &blk_ops, b, mem, irq);
    return 0;
}

void virtio_blk_destroy(struct virtio_blk *b)
{
    if (b)
        disk_close(&b->disk);
}
