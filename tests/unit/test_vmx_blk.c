/* virtio-blk and its disk layers (vmkernel-kvm/devices/virtio_blk.c,
 * vmkernel-kvm/disk.c): requests from a driver on a fake guest RAM,
 * hostile descriptor layouts, snapshots as deltas, revert, consolidation,
 * and corrupt metadata refused with a clear reason. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/log.h"
#include "vmkernel-kvm/devices/virtio_blk.h"
#include "vmkernel-kvm/disk.h"
#include "vmkernel-kvm/vmx_state.h"

#define RAM (8u << 20)
#define QSZ 16
#define DESC 0x1000
#define AVAIL 0x2000
#define USED 0x3000
#define IND 0x4000
#define HDR 0x10000
#define DATA 0x100000
#define STATUS 0x20000
#define DISK_BYTES (1u << 20)

static struct guest_mem mem;
static char dir[256], base[300];
static struct virtio_blk blk;
static uint16_t avail_idx;

/* ---- files ---- */

static void make_base(uint64_t size)
{
    int fd = open(base, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)size), 0);
    close(fd);
}

static int setup(void **st)
{
    (void)st;
    kvc_log_set_default_level(KVC_LOG_OFF);
    mem.fd = -1;
    mem.size = RAM;
    mem.hva = calloc(1, RAM);
    snprintf(dir, sizeof(dir), "/tmp/test_vmx_blk.XXXXXX");
    if (!mem.hva || !mkdtemp(dir))
        return -1;
    snprintf(base, sizeof(base), "%s/t.img", dir);
    make_base(DISK_BYTES);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        return -1;
    free(mem.hva);
    return 0;
}

/* Before each test: a fresh 1 MiB base, no chain. */
static int fresh(void **st)
{
    (void)st;
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -f '%s'/*", dir);
    if (system(cmd) != 0)
        return -1;
    make_base(DISK_BYTES);
    memset(mem.hva, 0, RAM);
    return 0;
}

static bool exists(const char *name)
{
    char p[600];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

static void pattern(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 9));
}

static int dwrite(struct disk *d, uint64_t off, const void *p, size_t n)
{
    struct iovec v = { .iov_base = (void *)p, .iov_len = n };
    return disk_write(d, off, &v, 1, n);
}

static int dread(struct disk *d, uint64_t off, void *p, size_t n)
{
    struct iovec v = { .iov_base = p, .iov_len = n };
    return disk_read(d, off, &v, 1, n);
}

static void base_read(uint64_t off, void *p, size_t n)
{
    int fd = open(base, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, p, n, (off_t)off), (ssize_t)n);
    close(fd);
}

/* ---- the disk layer ---- */

static void test_disk_raw_io(void **st)
{
    (void)st;
    struct disk d;
    char err[256];
    uint8_t w[8192], r[8192];
    assert_int_equal(disk_open(&d, base, false, err, sizeof(err)), 0);
    assert_int_equal(d.size, DISK_BYTES);
    assert_int_equal(d.n, 1);
    pattern(w, sizeof(w), 1);
    assert_int_equal(dwrite(&d, 512, w, sizeof(w)), 0);
    assert_int_equal(dread(&d, 512, r, sizeof(r)), 0);
    assert_memory_equal(w, r, sizeof(w));
    /* range and alignment */
    assert_int_equal(dread(&d, DISK_BYTES, r, 512), -EINVAL);
    assert_int_equal(dread(&d, DISK_BYTES - 512, r, 1024), -EINVAL);
    assert_int_equal(dread(&d, 100, r, 512), -EINVAL);
    assert_int_equal(dwrite(&d, 0, w, 100), -EINVAL);
    assert_int_equal(dread(&d, UINT64_MAX - 511, r, 512), -EINVAL);
    /* scattered iovecs */
    struct iovec v[3] = { { r, 100 }, { r + 100, 900 }, { r + 1000, 24 } };
    memset(r, 0, sizeof(r));
    assert_int_equal(disk_read(&d, 512, v, 3, 1024), 0);
    assert_memory_equal(w, r, 1024);
    assert_int_equal(disk_flush(&d), 0);
    disk_close(&d);
    disk_close(&d);     /* twice is fine */
    /* read-only */
    assert_int_equal(disk_open(&d, base, true, err, sizeof(err)), 0);
    assert_int_equal(dwrite(&d, 0, w, 512), -EROFS);
    char fz[DISK_NAME_MAX];
    uint64_t id;
    assert_int_equal(disk_snapshot(&d, fz, &id, err, sizeof(err)), -EROFS);
    disk_close(&d);
    /* missing file and odd paths */
    char p[400];
    snprintf(p, sizeof(p), "%s/none.img", dir);
    assert_int_not_equal(disk_open(&d, p, false, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "none.img"));
    assert_int_equal(disk_open(&d, "relative.img", false, err, sizeof(err)), -EINVAL);
}

static void test_disk_snapshot_layers(void **st)
{
    (void)st;
    struct disk d;
    char err[256], fz[DISK_NAME_MAX];
    uint64_t id;
    static uint8_t a[16384], b[16384], r[16384], zero[4096];
    pattern(a, sizeof(a), 1);
    pattern(b, sizeof(b), 2);
    assert_int_equal(disk_open(&d, base, false, err, sizeof(err)), 0);
    assert_int_equal(dwrite(&d, 0, a, sizeof(a)), 0);
    assert_int_equal(disk_snapshot(&d, fz, &id, err, sizeof(err)), 0);
    assert_string_equal(fz, DISK_BASE);
    assert_int_equal(d.n, 2);
    assert_string_equal(d.layers[1].name, "t-000001-delta");
    assert_true(exists("t-000001-delta.img") && exists("t-000001-delta.map") && exists("t.img.chain"));
    /* A partial-cluster write copies the rest of the cluster from below. */
    assert_int_equal(dwrite(&d, 4096 + 512, b, 512), 0);
    assert_int_equal(d.cow_clusters, 1);
    assert_int_equal(d.layers[1].allocated, 1);
    assert_int_equal(dread(&d, 0, r, sizeof(r)), 0);
    assert_memory_equal(r, a, 4096 + 512);
    assert_memory_equal(r + 4096 + 512, b, 512);
    assert_memory_equal(r + 5120, a + 5120, sizeof(a) - 5120);
    /* A whole-cluster write across two clusters, and the base untouched. */
    assert_int_equal(dwrite(&d, 8192, b, 8192), 0);
    assert_int_equal(d.cow_clusters, 1);
    base_read(0, r, sizeof(r));
    assert_memory_equal(r, a, sizeof(a));
    /* A read across layers beyond the written area: zeros from the base. */
    assert_int_equal(dread(&d, 65536, r, 4096), 0);
    assert_memory_equal(r, zero, 4096);
    /* Survives close (flush) and open. */
    disk_close(&d);
    assert_int_equal(disk_open(&d, base, false, err, sizeof(err)), 0);
    assert_int_equal(d.n, 2);
    assert_int_equal(d.layers[1].allocated, 3);
    assert_int_equal(dread(&d, 8192, r, 8192), 0);
    assert_memory_equal(r, b, 8192);

    /* Revert to the snapshot: the writes since are gone, a new delta. */
    assert_int_equal(disk_revert(&d, fz, id, err, sizeof(err)), 0);
    assert_string_equal(d.layers[d.n - 1].name, "t-000002-delta");
    assert_false(exists("t-000001-delta.map"));
    assert_int_equal(dread(&d, 0, r, sizeof(r)), 0);
    assert_memory_equal(r, a, sizeof(a));
    /* A stale id is refused. */
    assert_int_equal(disk_revert(&d, fz, id ^ 1, err, sizeof(err)), -ESTALE);
    assert_non_null(strstr(err, "id differs"));

    /* Write after the revert, then delete the snapshot: merged into the base. */
    assert_int_equal(dwrite(&d, 4096, b, 4096), 0);
    struct disk_merge_info mi;
    assert_int_equal(disk_delete_check(&d, fz, id, err, sizeof(err)), 0);
    assert_int_equal(disk_delete_snapshot(&d, fz, id, &mi, err, sizeof(err)), 0);
    assert_string_equal(mi.merged, "t-000002-delta");
    assert_string_equal(mi.into, DISK_BASE);
    assert_int_equal(mi.clusters, 1);
    assert_int_equal(d.n, 1);
    assert_false(exists("t-000002-delta.img"));
    base_read(4096, r, 4096);
    assert_memory_equal(r, b, 4096);
    base_read(0, r, 4096);
    assert_memory_equal(r, a, 4096);
    /* The merged layer's name now resolves to the base (an alias). */
    disk_close(&d);
    assert_int_equal(disk_open(&d, base, false, err, sizeof(err)), 0);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.chain.naliases, 1);
    disk_close(&d);
}

static void test_disk_chain_of_snapshots(void **st)
{
    (void)st;
    struct disk d;
    char err[256], s1[DISK_NAME_MAX], s2[DISK_NAME_MAX];
    uint64_t i1, i2;
    static uint8_t a[4096], b[4096], c[4096], r[4096];
    pattern(a, 4096, 1);
    pattern(b, 4096, 2);
    pattern(c, 4096, 3);
    assert_int_equal(disk_open(&d, base, false, err, sizeof(err)), 0);
    assert_int_equal(dwrite(&d, 0, a, 4096), 0);
    assert_int_equal(disk_snapshot(&d, s1, &i1, err, sizeof(err)), 0);     /* S1: a */
    assert_int_equal(dwrite(&d, 0, b, 4096), 0);
    assert_int_equal(disk_snapshot(&d, s2, &i2, err, sizeof(err)), 0);     /* S2: b */
    assert_string_equal(s2, "t-000001-delta");
    assert_int_equal(dwrite(&d, 0, c, 4096), 0);
    assert_int_equal(d.n, 3);
    /* Delete the older snapshot: its child merges into the base, S2's
     * layer then resolves to the base, which now holds S2's state. */
    struct disk_merge_info mi;
    assert_int_equal(disk_delete_snapshot(&d, s1, i1, &mi, err, sizeof(err)), 0);
    assert_string_equal(mi.merged, "t-000001-delta");
    assert_int_equal(d.n, 2);
    assert_int_equal(dread(&d, 0, r, 4096), 0);
    assert_memory_equal(r, c, 4096);
    assert_int_equal(disk_revert(&d, s2, i2, err, sizeof(err)), 0);
    assert_int_equal(dread(&d, 0, r, 4096), 0);
    assert_memory_equal(r, b, 4096);
    /* Revert twice to S2 from the new top: the branch rule holds. */
    assert_int_equal(dwrite(&d, 0, c, 4096), 0);
    char s3[DISK_NAME_MAX];
    uint64_t i3;
    assert_int_equal(disk_snapshot(&d, s3, &i3, err, sizeof(err)), 0);     /* S3 on the new top */
    assert_int_equal(disk_revert(&d, s2, i2, err, sizeof(err)), 0);        /* back to b: base gets 2 children */
    assert_int_equal(disk_delete_check(&d, s2, i2, err, sizeof(err)), -EBUSY);
    assert_non_null(strstr(err, "branch"));
    /* Delete S3 (off the current branch, nothing built on it): dropped. */
    assert_int_equal(disk_delete_snapshot(&d, s3, i3, &mi, err, sizeof(err)), 0);
    assert_true(mi.removed);
    assert_int_equal(disk_delete_snapshot(&d, s2, i2, &mi, err, sizeof(err)), 0);
    assert_int_equal(d.n, 1);
    assert_int_equal(dread(&d, 0, r, 4096), 0);
    assert_memory_equal(r, b, 4096);
    disk_close(&d);
}

static void test_disk_merge_into_delta(void **st)
{
    (void)st;
    struct disk d;
    char err[256], s1[DISK_NAME_MAX], s2[DISK_NAME_MAX];
    uint64_t i1, i2;
    static uint8_t a[8192], b[8192], c[4096], r[8192];
    pattern(a, sizeof(a), 1);
    pattern(b, sizeof(b), 2);
    pattern(c, sizeof(c), 3);
    assert_int_equal(disk_open(&d, base, false, err, sizeof(err)), 0);
    assert_int_equal(dwrite(&d, 0, a, 8192), 0);
    assert_int_equal(disk_snapshot(&d, s1, &i1, err, sizeof(err)), 0);     /* S1: a */
    assert_int_equal(dwrite(&d, 0, b, 8192), 0);                          /* d1: b b */
    assert_int_equal(disk_snapshot(&d, s2, &i2, err, sizeof(err)), 0);     /* S2 froze d1 */
    assert_int_equal(dwrite(&d, 4096, c, 4096), 0);                       /* d2: . c */
    /* Deleting the newest snapshot merges the top into the delta below. */
    struct disk_merge_info mi;
    assert_int_equal(disk_delete_snapshot(&d, s2, i2, &mi, err, sizeof(err)), 0);
    assert_string_equal(mi.merged, "t-000002-delta");
    assert_string_equal(mi.into, "t-000001-delta");
    assert_int_equal(mi.clusters, 1);
    assert_int_equal(d.n, 2);
    assert_string_equal(d.layers[1].name, "t-000001-delta");
    assert_int_equal(d.layers[1].allocated, 2);
    assert_int_equal(dread(&d, 0, r, 8192), 0);
    assert_memory_equal(r, b, 4096);
    assert_memory_equal(r + 4096, c, 4096);
    /* the merged map reached the file: same view after close and open */
    disk_close(&d);
    assert_int_equal(disk_open(&d, base, false, err, sizeof(err)), 0);
    assert_int_equal(d.layers[1].allocated, 2);
    assert_int_equal(dread(&d, 4096, r, 4096), 0);
    assert_memory_equal(r, c, 4096);
    /* and S1 still goes back to a */
    assert_int_equal(disk_revert(&d, s1, i1, err, sizeof(err)), 0);
    assert_int_equal(dread(&d, 0, r, 8192), 0);
    assert_memory_equal(r, a, 8192);
    disk_close(&d);
}

static void test_disk_snapshot_abort(void **st)
{
    (void)st;
    struct disk d;
    char err[256], fz[DISK_NAME_MAX];
    uint64_t id;
    uint8_t a[4096];
    pattern(a, sizeof(a), 4);
    assert_int_equal(disk_open(&d, base, false, err, sizeof(err)), 0);
    /* the VM snapshot file could not be written: the empty delta goes */
    assert_int_equal(disk_snapshot(&d, fz, &id, err, sizeof(err)), 0);
    assert_int_equal(d.n, 2);
    disk_snapshot_abort(&d, fz);
    assert_int_equal(d.n, 1);
    assert_string_equal(d.chain.top, DISK_BASE);
    assert_false(exists("t-000001-delta.img"));
    assert_false(exists("t-000001-delta.map"));
    /* but not once the guest wrote into it, nor for another layer */
    assert_int_equal(disk_snapshot(&d, fz, &id, err, sizeof(err)), 0);
    assert_int_equal(dwrite(&d, 0, a, 4096), 0);
    disk_snapshot_abort(&d, fz);
    assert_int_equal(d.n, 2);
    disk_snapshot_abort(&d, "t-000009-delta");
    assert_int_equal(d.n, 2);
    disk_close(&d);
}

static void test_disk_interrupted_merge(void **st)
{
    (void)st;
    struct disk d;
    char err[256], s1[DISK_NAME_MAX], path[600];
    uint64_t i1;
    static uint8_t a[8192], b[4096], r[8192];
    pattern(a, sizeof(a), 1);
    pattern(b, sizeof(b), 2);
    assert_int_equal(disk_open(&d, base, false, err, sizeof(err)), 0);
    assert_int_equal(dwrite(&d, 0, a, 8192), 0);
    assert_int_equal(disk_snapshot(&d, s1, &i1, err, sizeof(err)), 0);
    assert_int_equal(dwrite(&d, 0, b, 4096), 0);
    disk_close(&d);
    /* vmx died after writing the merge intent: the chain says so */
    snprintf(path, sizeof(path), "%s/t.img.chain", dir);
    FILE *f = fopen(path, "a");
    assert_non_null(f);
    fputs("merge t-000001-delta\n", f);
    fclose(f);
    /* read-only: the same view, nothing changed */
    assert_int_equal(disk_open(&d, base, true, err, sizeof(err)), 0);
    assert_int_equal(d.n, 2);
    assert_int_equal(dread(&d, 0, r, 8192), 0);
    assert_memory_equal(r, b, 4096);
    assert_memory_equal(r + 4096, a + 4096, 4096);
    disk_close(&d);
    /* read-write: the merge is finished first */
    assert_int_equal(disk_open(&d, base, false, err, sizeof(err)), 0);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.chain.merge[0], 0);
    assert_false(exists("t-000001-delta.img"));
    base_read(0, r, 8192);
    assert_memory_equal(r, b, 4096);
    assert_memory_equal(r + 4096, a + 4096, 4096);
    disk_close(&d);
    assert_int_equal(disk_open(&d, base, false, err, sizeof(err)), 0);
    assert_int_equal(d.n, 1);
    disk_close(&d);
}

static void write_file(const char *name, const void *p, size_t n)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    close(fd);
}

static void poke(const char *name, off_t off, uint8_t x)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t v;
    assert_int_equal(pread(fd, &v, 1, off), 1);
    v ^= x;
    assert_int_equal(pwrite(fd, &v, 1, off), 1);
    close(fd);
}

static void test_disk_corrupt_metadata(void **st)
{
    (void)st;
    struct disk d;
    char err[256], fz[DISK_NAME_MAX];
    uint64_t id;
    assert_int_equal(disk_open(&d, base, false, err, sizeof(err)), 0);
    assert_int_equal(disk_snapshot(&d, fz, &id, err, sizeof(err)), 0);
    disk_close(&d);
    /* header checksum */
    poke("t-000001-delta.map", 20, 0x40);
    assert_int_equal(disk_open(&d, base, false, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "checksum"));
    poke("t-000001-delta.map", 20, 0x40);
    assert_int_equal(disk_open(&d, base, false, err, sizeof(err)), 0);
    disk_close(&d);
    /* layers that fail to load again (a reload after the files changed)
     * leave the disk refusing I/O, not reading stale state */
    assert_int_equal(disk_open(&d, base, false, err, sizeof(err)), 0);
    poke("t-000001-delta.map", 20, 0x40);
    assert_int_equal(disk_reopen(&d, err, sizeof(err)), -EINVAL);
    uint8_t buf[512];
    assert_int_equal(dread(&d, 0, buf, 512), -EINVAL);
    assert_int_equal(dwrite(&d, 0, buf, 512), -EINVAL);
    assert_int_equal(disk_flush(&d), 0);
    disk_close(&d);
    poke("t-000001-delta.map", 20, 0x40);
    /* a bit past the end of the disk: 256 clusters, bitmap byte 32 */
    poke("t-000001-delta.map", DISK_MAP_HDR + 32, 1);
    assert_int_equal(disk_open(&d, base, false, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "past the end"));
    poke("t-000001-delta.map", DISK_MAP_HDR + 32, 1);
    /* truncated map */
    char path[600];
    snprintf(path, sizeof(path), "%s/t-000001-delta.map", dir);
    assert_int_equal(truncate(path, 100), 0);
    assert_int_equal(disk_open(&d, base, false, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "size"));
    /* chain files */
    static const char *const bad[] = {
        "garbage\n",
        "kvc-disk-chain 1\nbase 0000000000000001\ntop x\n",                           /* no layer x */
        "kvc-disk-chain 1\nbase 0000000000000001\nlayer a 0000000000000002 b\n"
        "layer b 0000000000000003 a\ntop a\n",                                          /* loop */
        "kvc-disk-chain 1\nbase 0000000000000001\nlayer ../x 0000000000000002 -\ntop -\n", /* path */
        "kvc-disk-chain 1\nbase 00000000000001\ntop -\n",                               /* short id */
        "kvc-disk-chain 1\nbase 0000000000000001\nlayer a 0000000000000002 -\ntop -\n", /* top has a child */
        "kvc-disk-chain 1\nbase 0000000000000001\nwhat is this\ntop -\n",
        "kvc-disk-chain 1\ntop -\n",                                                    /* no base */
        "kvc-disk-chain 1\nbase 0000000000000001\nmerge a\ntop -\n",                     /* merge of nothing */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct disk_chain c;
        err[0] = 0;
        assert_int_equal(disk_chain_parse(bad[i], strlen(bad[i]), &c, err, sizeof(err)), -EINVAL);
        assert_true(err[0] != 0);
        write_file("t.img.chain", bad[i], strlen(bad[i]));
        assert_int_equal(disk_open(&d, base, false, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "t.img.chain"));
    }
    char nul[] = "kvc-disk-chain 1\nbase 0000000000000001\n\0top -\n";
    struct disk_chain c;
    assert_int_equal(disk_chain_parse(nul, sizeof(nul) - 1, &c, err, sizeof(err)), -EINVAL);
    static char big[80000];
    memset(big, '#', sizeof(big));
    assert_int_equal(disk_chain_parse(big, sizeof(big), &c, err, sizeof(err)), -EINVAL);
    const char *good = "kvc-disk-chain 1\nbase 0000000000000001\nnext 3\n"
        "layer a 0000000000000002 -\nalias z 0000000000000009 a\ntop a\n";
    assert_int_equal(disk_chain_parse(good, strlen(good), &c, err, sizeof(err)), 0);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.next, 3);
    assert_string_equal(c.top, "a");
}

/* ---- the device ---- */

static void reg_w(unsigned off, uint32_t v)
{
    uint8_t d[4];
    le_put(d, 4, v);
    virtio_mmio_write(&blk.dev, off, d, 4);
}

static uint32_t reg_r(unsigned off)
{
    uint8_t d[4];
    virtio_mmio_read(&blk.dev, off, d, 4);
    return (uint32_t)le_get(d, 4);
}

static void driver_up(uint64_t feat_lo)
{
    reg_w(0x70, 0);
    reg_w(0x70, 3);
    reg_w(0x24, 0);
    reg_w(0x20, (uint32_t)feat_lo);
    reg_w(0x24, 1);
    reg_w(0x20, 1);
    reg_w(0x70, 11);
    assert_true(reg_r(0x70) & 8);
    reg_w(0x30, 0);
    assert_int_equal(reg_r(0x34), BLK_QUEUE_MAX);
    reg_w(0x38, QSZ);
    reg_w(0x80, DESC);
    reg_w(0x84, 0);
    reg_w(0x90, AVAIL);
    reg_w(0x94, 0);
    reg_w(0xa0, USED);
    reg_w(0xa4, 0);
    reg_w(0x44, 1);
    reg_w(0x70, 15);
    assert_int_equal(reg_r(0x44), 1);
    avail_idx = 0;
}

static int dev_setup(void **st)
{
    fresh(st);
    char err[256];
    struct irq_line none = { 0 };
    if (virtio_blk_init(&blk, &mem, &none, base, false, "disk-serial-0123456789", err, sizeof(err)))
        return -1;
    driver_up(1u << VIRTIO_BLK_F_FLUSH | 1u << 28);     /* FLUSH, INDIRECT_DESC */
    return 0;
}

static int dev_teardown(void **st)
{
    (void)st;
    virtio_blk_destroy(&blk);
    return 0;
}

static void desc(uint64_t table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    uint8_t *d = mem.hva + table + 16 * i;
    memcpy(d, &addr, 8);
    memcpy(d + 8, &len, 4);
    memcpy(d + 12, &flags, 2);
    memcpy(d + 14, &next, 2);
}

static void hdr(uint64_t at, uint32_t type, uint64_t sector)
{
    memset(mem.hva + at, 0, 16);
    memcpy(mem.hva + at, &type, 4);
    memcpy(mem.hva + at + 8, &sector, 8);
}

static uint16_t used_idx(void)
{
    uint16_t v;
    memcpy(&v, mem.hva + USED + 2, 2);
    return v;
}

static uint32_t used_len(uint16_t i)
{
    uint32_t v;
    memcpy(&v, mem.hva + USED + 4 + 8 * (i % QSZ) + 4, 4);
    return v;
}

/* Kick with head 0 queued; returns the used length. */
static uint32_t kick(void)
{
    uint16_t head = 0, before = used_idx();
    memcpy(mem.hva + AVAIL + 4 + 2 * (avail_idx % QSZ), &head, 2);
    avail_idx++;
    memcpy(mem.hva + AVAIL + 2, &avail_idx, 2);
    reg_w(0x50, 0);
    if (used_idx() == before)
        return UINT32_MAX;
    return used_len(before);
}

/* header / data / status in three descriptors */
static uint8_t simple(uint32_t type, uint64_t sector, uint32_t len, bool dev_writes, uint32_t *ulen)
{
    hdr(HDR, type, sector);
    mem.hva[STATUS] = 0xee;
    desc(DESC, 0, HDR, 16, VIRTQ_DESC_F_NEXT, 1);
    if (len) {
        desc(DESC, 1, DATA, len, VIRTQ_DESC_F_NEXT | (dev_writes ? VIRTQ_DESC_F_WRITE : 0), 2);
        desc(DESC, 2, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
    } else {
        desc(DESC, 1, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
    }
    uint32_t l = kick();
    if (ulen)
        *ulen = l;
    return mem.hva[STATUS];
}

static void test_blk_requests(void **st)
{
    (void)st;
    uint32_t ul;
    uint8_t cfg[8];
    virtio_mmio_read(&blk.dev, 0x100, cfg, 4);
    virtio_mmio_read(&blk.dev, 0x104, cfg + 4, 4);
    assert_int_equal(le_get(cfg, 8), DISK_BYTES / 512);
    assert_int_equal(reg_r(0x008), VIRTIO_ID_BLOCK);
    reg_w(0x14, 0);
    assert_true(reg_r(0x10) & (1u << VIRTIO_BLK_F_FLUSH));
    assert_false(reg_r(0x10) & (1u << VIRTIO_BLK_F_RO));

    pattern(mem.hva + DATA, 8192, 5);
    assert_int_equal(simple(VIRTIO_BLK_T_OUT, 8, 8192, false, &ul), VIRTIO_BLK_S_OK);
    assert_int_equal(ul, 1);
    memset(mem.hva + DATA, 0, 8192);
    assert_int_equal(simple(VIRTIO_BLK_T_IN, 8, 8192, true, &ul), VIRTIO_BLK_S_OK);
    assert_int_equal(ul, 8193);
    uint8_t want[8192];
    pattern(want, sizeof(want), 5);
    assert_memory_equal(mem.hva + DATA, want, 8192);
    uint8_t r[8192];
    base_read(8 * 512, r, 8192);
    assert_memory_equal(r, want, 8192);
    assert_int_equal(simple(VIRTIO_BLK_T_FLUSH, 0, 0, false, &ul), VIRTIO_BLK_S_OK);
    assert_int_equal(blk.flush_reqs, 1);
    assert_int_equal(simple(VIRTIO_BLK_T_GET_ID, 0, 20, true, &ul), VIRTIO_BLK_S_OK);
    assert_int_equal(ul, 21);
    assert_memory_equal(mem.hva + DATA, "disk-serial-01234567", 20);
    /* GET_ID into a short buffer */
    assert_int_equal(simple(VIRTIO_BLK_T_GET_ID, 0, 4, true, &ul), VIRTIO_BLK_S_OK);
    assert_int_equal(ul, 5);
    assert_int_equal(blk.errors, 0);
}

static void test_blk_bad_requests(void **st)
{
    (void)st;
    uint32_t ul;
    uint64_t cap = DISK_BYTES / 512;
    /* past the end, straddling it, offsets that overflow */
    assert_int_equal(simple(VIRTIO_BLK_T_IN, cap, 512, true, NULL), VIRTIO_BLK_S_IOERR);
    assert_int_equal(simple(VIRTIO_BLK_T_IN, cap - 1, 1024, true, NULL), VIRTIO_BLK_S_IOERR);
    assert_int_equal(simple(VIRTIO_BLK_T_OUT, cap - 1, 1024, false, NULL), VIRTIO_BLK_S_IOERR);
    assert_int_equal(simple(VIRTIO_BLK_T_IN, UINT64_MAX, 512, true, NULL), VIRTIO_BLK_S_IOERR);
    assert_int_equal(simple(VIRTIO_BLK_T_IN, UINT64_MAX / 512 + 1, 512, true, NULL), VIRTIO_BLK_S_IOERR);
    /* lengths: not a multiple of 512, above the request limit */
    assert_int_equal(simple(VIRTIO_BLK_T_IN, 0, 100, true, NULL), VIRTIO_BLK_S_IOERR);
    assert_int_equal(simple(VIRTIO_BLK_T_OUT, 0, 513, false, NULL), VIRTIO_BLK_S_IOERR);
    assert_int_equal(simple(VIRTIO_BLK_T_IN, 0, BLK_REQ_MAX + 512, true, NULL), VIRTIO_BLK_S_IOERR);
    /* data on the wrong side: a read with a readable data buffer */
    assert_int_equal(simple(VIRTIO_BLK_T_IN, 0, 512, false, &ul), VIRTIO_BLK_S_IOERR);
    assert_int_equal(ul, 1);
    /* a write whose data is device-writable */
    assert_int_equal(simple(VIRTIO_BLK_T_OUT, 0, 512, true, NULL), VIRTIO_BLK_S_IOERR);
    /* unknown type */
    assert_int_equal(simple(99, 0, 512, true, NULL), VIRTIO_BLK_S_UNSUPP);
    assert_int_equal(blk.unsupported, 1);
    /* header too short (8 bytes) */
    hdr(HDR, VIRTIO_BLK_T_IN, 0);
    desc(DESC, 0, HDR, 8, VIRTQ_DESC_F_NEXT, 1);
    desc(DESC, 1, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
    mem.hva[STATUS] = 0xee;
    assert_int_equal(kick(), 1);
    assert_int_equal(mem.hva[STATUS], VIRTIO_BLK_S_IOERR);
    /* no device-writable byte at all: completed with length 0 */
    desc(DESC, 0, HDR, 16, 0, 0);
    assert_int_equal(kick(), 0);
    /* header split over two descriptors, data over three, then status */
    hdr(HDR, VIRTIO_BLK_T_OUT, 2);
    pattern(mem.hva + DATA, 1024, 9);
    desc(DESC, 0, HDR, 5, VIRTQ_DESC_F_NEXT, 1);
    desc(DESC, 1, HDR + 5, 11, VIRTQ_DESC_F_NEXT, 2);
    desc(DESC, 2, DATA, 300, VIRTQ_DESC_F_NEXT, 3);
    desc(DESC, 3, DATA + 300, 0, VIRTQ_DESC_F_NEXT, 4);
    desc(DESC, 4, DATA + 300, 724, VIRTQ_DESC_F_NEXT, 5);
    desc(DESC, 5, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
    mem.hva[STATUS] = 0xee;
    assert_int_equal(kick(), 1);
    assert_int_equal(mem.hva[STATUS], VIRTIO_BLK_S_OK);
    uint8_t r[1024], want[1024];
    pattern(want, sizeof(want), 9);
    base_read(1024, r, 1024);
    assert_memory_equal(r, want, 1024);
    /* a read through an indirect table, status in a bigger last buffer */
    hdr(HDR, VIRTIO_BLK_T_IN, 2);
    desc(IND, 0, HDR, 16, VIRTQ_DESC_F_NEXT, 1);
    desc(IND, 1, DATA + 8192, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
    desc(IND, 2, DATA + 16384, 513, VIRTQ_DESC_F_WRITE, 0);
    desc(DESC, 0, IND, 48, VIRTQ_DESC_F_INDIRECT, 0);
    mem.hva[DATA + 16384 + 512] = 0xee;
    assert_int_equal(kick(), 1025);
    assert_int_equal(mem.hva[DATA + 16384 + 512], VIRTIO_BLK_S_OK);
    assert_memory_equal(mem.hva + DATA + 8192, want, 512);
    assert_memory_equal(mem.hva + DATA + 16384, want + 512, 512);
    /* The queue still works after all this; nothing asked for a reset. */
    assert_int_equal(simple(VIRTIO_BLK_T_FLUSH, 0, 0, false, NULL), VIRTIO_BLK_S_OK);
    assert_false(reg_r(0x70) & VIRTIO_STATUS_NEEDS_RESET);

    /* A descriptor loop breaks the queue (and only that): NEEDS_RESET, no
     * completion; after a reset the device serves again. */
    desc(DESC, 0, HDR, 16, VIRTQ_DESC_F_NEXT, 1);
    desc(DESC, 1, STATUS, 1, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 0);
    assert_int_equal(kick(), UINT32_MAX);
    assert_true(reg_r(0x70) & VIRTIO_STATUS_NEEDS_RESET);
    /* a buffer outside RAM breaks it too */
    driver_up(1u << VIRTIO_BLK_F_FLUSH);
    memset(mem.hva + USED, 0, 4096);
    memset(mem.hva + AVAIL, 0, 4096);
    desc(DESC, 0, HDR, 16, VIRTQ_DESC_F_NEXT, 1);
    desc(DESC, 1, RAM - 256, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
    desc(DESC, 2, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
    assert_int_equal(kick(), UINT32_MAX);
    assert_true(reg_r(0x70) & VIRTIO_STATUS_NEEDS_RESET);
    driver_up(1u << VIRTIO_BLK_F_FLUSH);
    memset(mem.hva + USED, 0, 4096);
    memset(mem.hva + AVAIL, 0, 4096);
    assert_int_equal(simple(VIRTIO_BLK_T_IN, 2, 1024, true, NULL), VIRTIO_BLK_S_OK);
    assert_memory_equal(mem.hva + DATA, want, 1024);
}

static void test_blk_write_through_without_flush(void **st)
{
    (void)st;
    driver_up(0);      /* no FLUSH negotiated: every write is flushed */
    memset(mem.hva + USED, 0, 4096);
    memset(mem.hva + AVAIL, 0, 4096);
    uint64_t f = blk.disk.flushes;
    assert_int_equal(simple(VIRTIO_BLK_T_OUT, 0, 512, false, NULL), VIRTIO_BLK_S_OK);
    assert_int_equal(blk.disk.flushes, f + 1);
}

static void test_blk_readonly_and_state(void **st)
{
    (void)st;
    char err[256];
    struct irq_line none = { 0 };
    /* state round trip on the read-write device */
    struct sbuf b;
    sbuf_init(&b);
    virtio_mmio_save(&blk.dev, &b);
    assert_int_equal(b.err, 0);
    struct sreader r;
    sreader_init(&r, b.p, b.len);
    assert_int_equal(virtio_mmio_load(&blk.dev, &r), 0);
    assert_int_equal(simple(VIRTIO_BLK_T_FLUSH, 0, 0, false, NULL), VIRTIO_BLK_S_OK);
    /* truncated state is refused */
    for (size_t n = 0; n < b.len; n += 7) {
        sreader_init(&r, b.p, n);
        assert_int_not_equal(virtio_mmio_load(&blk.dev, &r), 0);
    }
    virtio_blk_destroy(&blk);

    /* read-only: RO offered, writes fail, reads work; a saved read-write
     * state does not load into it */
    assert_int_equal(virtio_blk_init(&blk, &mem, &none, base, true, "ro", err, sizeof(err)), 0);
    reg_w(0x14, 0);
    assert_true(reg_r(0x10) & (1u << VIRTIO_BLK_F_RO));
    sreader_init(&r, b.p, b.len);
    assert_int_equal(virtio_mmio_load(&blk.dev, &r), -EINVAL);
    sbuf_free(&b);
    driver_up(1u << VIRTIO_BLK_F_FLUSH | 1u << VIRTIO_BLK_F_RO);
    memset(mem.hva + USED, 0, 4096);
    memset(mem.hva + AVAIL, 0, 4096);
    assert_int_equal(simple(VIRTIO_BLK_T_OUT, 0, 512, false, NULL), VIRTIO_BLK_S_IOERR);
    assert_int_equal(simple(VIRTIO_BLK_T_IN, 0, 512, true, NULL), VIRTIO_BLK_S_OK);
    assert_int_equal(simple(VIRTIO_BLK_T_FLUSH, 0, 0, false, NULL), VIRTIO_BLK_S_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_disk_raw_io, fresh),
        cmocka_unit_test_setup(test_disk_snapshot_layers, fresh),
        cmocka_unit_test_setup(test_disk_chain_of_snapshots, fresh),
        cmocka_unit_test_setup(test_disk_merge_into_delta, fresh),
        cmocka_unit_test_setup(test_disk_snapshot_abort, fresh),
        cmocka_unit_test_setup(test_disk_interrupted_merge, fresh),
        cmocka_unit_test_setup(test_disk_corrupt_metadata, fresh),
        cmocka_unit_test_setup_teardown(test_blk_requests, dev_setup, dev_teardown),
        cmocka_unit_test_setup_teardown(test_blk_bad_requests, dev_setup, dev_teardown),
        cmocka_unit_test_setup_teardown(test_blk_write_through_without_flush, dev_setup, dev_teardown),
        cmocka_unit_test_setup_teardown(test_blk_readonly_and_state, dev_setup, dev_teardown),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
