/* Fuzz target: virtio-blk requests from a hostile driver, and the disk's
 * metadata parsers.  The device must never touch memory outside the guest
 * RAM image (ASan checks), must answer or refuse every request, and must
 * keep its disk within bounds; the parsers must refuse bad chain files and
 * map headers without reading past their input.
 *
 * Input: [0] selects the target:
 *   0: chain file text = the rest;
 *   1: delta map header = the rest (zero-padded to a page);
 *   else: the device.  [1] log2 queue size, [2] feature bits (INDIRECT,
 *     EVENT_IDX, FLUSH), [3..14] desc/avail/used offsets (u32 each, may
 *     point outside RAM), [15] number of register writes N, then N *
 *     (u16 offset, u32 value), then the RAM image.
 * The disk is a 64 KiB file with one snapshot delta on it (so reads and
 * writes cross layers), made once per process in $TMPDIR. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "vmkernel-kvm/devices/virtio_blk.h"
#include "vmkernel-kvm/disk.h"

#define RAM (64 * 1024)
#define DISK (64 * 1024)

static char base[512];
static bool ready;

static void cleanup(void)
{
    char p[600];
    unlink(base);
    snprintf(p, sizeof(p), "%s.chain", base);
    unlink(p);
    const char *slash = strrchr(base, '/');
    int dl = (int)(slash - base);
    for (int i = 1; i <= 2; i++) {
        snprintf(p, sizeof(p), "%.*s/%s-%06d-delta.img", dl, base, slash + 1, i);
        unlink(p);
        snprintf(p, sizeof(p), "%.*s/%s-%06d-delta.map", dl, base, slash + 1, i);
        unlink(p);
    }
}

static int make_disk(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(base, sizeof(base), "%s/fuzz-blk-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    int fd = mkstemp(base);
    if (fd < 0)
        return -1;
    if (ftruncate(fd, DISK) < 0) {
        close(fd);
        return -1;
    }
    close(fd);
    atexit(cleanup);
    /* One snapshot: the device then runs on base + delta. */
    struct disk d;
    char err[256], fz[DISK_NAME_MAX];
    uint64_t id;
    if (disk_open(&d, base, false, err, sizeof(err)) || disk_snapshot(&d, fz, &id, err, sizeof(err)))
        return -1;
    disk_close(&d);
    return 0;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr(struct virtio_blk *b, unsigned off, uint32_t v)
{
    uint8_t d[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
    virtio_mmio_write(&b->dev, off, d, 4);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ready) {
        kvc_log_set_default_level(KVC_LOG_OFF);
        if (make_disk() < 0)
            abort();
        ready = true;
    }
    if (size < 1)
        return 0;
    char err[256];
    if (data[0] == 0) {
        /* An exactly sized copy, so ASan sees a read past the end. */
        char *t = malloc(size - 1 ? size - 1 : 1);
        if (!t)
            return 0;
        memcpy(t, data + 1, size - 1);
        struct disk_chain *c = malloc(sizeof(*c));
        if (c)
            disk_chain_parse(t, size - 1, c, err, sizeof(err));
        free(c);
        free(t);
        return 0;
    }
    if (data[0] == 1) {
        uint8_t *h = calloc(1, DISK_MAP_HDR);
        if (!h)
            return 0;
        memcpy(h, data + 1, size - 1 < DISK_MAP_HDR ? size - 1 : DISK_MAP_HDR);
        uint64_t id;
        char parent[DISK_NAME_MAX];
        disk_map_header_check(h, DISK_MAP_HDR, DISK, &id, parent, err, sizeof(err));
        free(h);
        return 0;
    }
    if (size < 16)
        return 0;
    struct guest_mem mem = { .fd = -1, .size = RAM };
    mem.hva = calloc(1, RAM);
    if (!mem.hva)
        return 0;
    size_t nw = data[15] % 32;
    size_t regs = 16 + nw * 6;
    if (regs < size)
        memcpy(mem.hva, data + regs, size - regs < RAM ? size - regs : RAM);

    static struct virtio_blk b;
    struct irq_line none = { 0 };
    if (virtio_blk_init(&b, &mem, &none, base, false, "fuzz", err, sizeof(err)) < 0) {
        free(mem.hva);
        return 0;
    }
    uint32_t feat = (data[2] & 1 ? 1u << VIRTIO_RING_F_INDIRECT_DESC : 0)
                  | (data[2] & 2 ? 1u << VIRTIO_RING_F_EVENT_IDX : 0)
                  | (data[2] & 4 ? 1u << VIRTIO_BLK_F_FLUSH : 0);
    wr(&b, 0x70, 0);
    wr(&b, 0x70, 3);
    wr(&b, 0x24, 0);
    wr(&b, 0x20, feat);
    wr(&b, 0x24, 1);
    wr(&b, 0x20, 1);
    wr(&b, 0x70, 11);
    wr(&b, 0x30, 0);
    wr(&b, 0x38, 1u << (data[1] % 10));
    wr(&b, 0x80, get32(data + 3) % (2 * RAM));
    wr(&b, 0x84, 0);
    wr(&b, 0x90, get32(data + 7) % (2 * RAM));
    wr(&b, 0x94, 0);
    wr(&b, 0xa0, get32(data + 11) % (2 * RAM));
    wr(&b, 0xa4, 0);
    wr(&b, 0x44, 1);
    wr(&b, 0x70, 15);
    wr(&b, 0x50, 0);
    /* Then registers in any order, and more kicks. */
    for (size_t i = 0; i < nw && 16 + i * 6 + 6 <= size; i++) {
        const uint8_t *w = data + 16 + i * 6;
        uint16_t off = (uint16_t)((w[0] | w[1] << 8) % 0x1000);
        uint8_t v[4];
        memcpy(v, w + 2, 4);
        if (off & 1)
            virtio_mmio_read(&b.dev, off & ~3u, v, 4);
        else
            virtio_mmio_write(&b.dev, off & ~3u, v, 4);
    }
    wr(&b, 0x50, 0);
    wr(&b, 0x50, 1);
    virtio_blk_destroy(&b);
    free(mem.hva);
    return 0;
}
