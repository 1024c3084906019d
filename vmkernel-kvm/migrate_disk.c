/* Live migration that carries the disk: the destination's side (see
 * migrate_disk.h and docs/storage-migration.md "Disk over the migration
 * stream").  The source's side is disk_mirror.c's stream mode, driven by
 * migrate.c. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "vmkernel-kvm/disk_mirror.h"
#include "vmkernel-kvm/migrate_disk.h"
#include "vmkernel-kvm/vmx.h"
#include "vmkernel-kvm/vmx_state.h"

KVC_LOG_MODULE(migrate);

#define MAX_FILES (2u * DISK_MAX_LAYERS + 2u)
#define FNAME_MAX (DISK_NAME_MAX + 16u)
#define CHAIN_MAX (1024u * 1024)

struct rfile {
    char name[FNAME_MAX];
    uint64_t size;
    int fd;
    bool created;               /* ours: removed if the migration fails */
};

struct disk_recv {
    struct vmx *vm;
    char dir[PATH_MAX];
    unsigned nfiles, declared;
    struct rfile f[MAX_FILES];
    uint64_t bytes;
    bool ended;
};

#define ERR(...) do { snprintf(err, errlen, __VA_ARGS__); } while (0)

static bool ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* A name the source may write in this VM's folder: the base, its chain
 * file, or a delta's data or map -- nothing else (not the config, the
 * lease, the log), nothing outside the folder. */
static bool name_ok(const struct disk_recv *r, const char *n)
{
    const char *base = r->vm->blk.disk.base;
    if (!n[0] || n[0] == '.' || strchr(n, '/'))
        return false;
    for (const unsigned char *p = (const unsigned char *)n; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    char chain[FNAME_MAX];
    snprintf(chain, sizeof(chain), "%s.chain", base);
    return !strcmp(n, base) || !strcmp(n, chain) || ends_with(n, "-delta.img") || ends_with(n, "-delta.map");
}

static uint64_t max_size(const struct disk_recv *r, const char *n)
{
    const struct disk *d = &r->vm->blk.disk;
    if (ends_with(n, "-delta.map"))
        return DISK_MAP_HDR + (d->clusters + 7) / 8 + 4096;
    if (ends_with(n, ".chain") && strcmp(n, d->base))
        return CHAIN_MAX;
    return d->size;
}

int disk_recv_begin(struct vmx *vm, struct disk_recv **out, const uint8_t *body, size_t len,
                    char *err, size_t errlen)
{
    struct disk *d = &vm->blk.disk;
    *out = NULL;
    if (!vm->blk_on || !d->is_open) {
        ERR("this VM has no disk to receive into");
        return -ENODEV;
    }
    if (len < 16 || len > 16 + DISK_NAME_MAX) {
        ERR("bad DISK_BEGIN record (%zu bytes)", len);
        return -EPROTO;
    }
    struct sreader rd;
    sreader_init(&rd, body, len);
    uint32_t n = sreader_u32(&rd);
    uint64_t cap = sreader_u64(&rd);
    uint32_t bl = sreader_u32(&rd);
    char base[DISK_NAME_MAX] = "";
    if (rd.err || bl == 0 || bl >= DISK_NAME_MAX || 16 + (size_t)bl != len) {
        ERR("bad DISK_BEGIN record");
        return -EPROTO;
    }
    memcpy(base, body + 16, bl);
    if (memchr(base, 0, bl)) {
        ERR("bad disk name in DISK_BEGIN");
        return -EPROTO;
    }
    if (n == 0 || n > MAX_FILES) {
        ERR("the source's disk has %u files (1..%u)", n, MAX_FILES);
        return -EPROTO;
    }
    if (strcmp(base, d->base) || cap != d->size) {
        ERR("the source's disk is %s, %llu bytes; this VM's is %s, %llu bytes", base,
            (unsigned long long)cap, d->base, (unsigned long long)d->size);
        return -EINVAL;
    }
    /* Only a new, empty disk is replaced: never a disk with data of its own. */
    char p[PATH_MAX + FNAME_MAX];
    struct stat st;
    snprintf(p, sizeof(p), "%s/%s.chain", d->dir, d->base);
    if (d->n != 1 || lstat(p, &st) == 0) {
        ERR("this VM's disk %s/%s has layers: an incoming disk must be a new, empty base", d->dir,
            d->base);
        return -EEXIST;
    }
    struct disk_recv *r = calloc(1, sizeof(*r));
    if (!r) {
        ERR("out of memory");
        return -ENOMEM;
    }
    r->vm = vm;
    r->declared = n;
    snprintf(r->dir, sizeof(r->dir), "%s", d->dir);
    for (unsigned i = 0; i < MAX_FILES; i++)
        r->f[i].fd = -1;
    *out = r;
    kvc_info("VMX-MIGRATE disk incoming base=%s/%s files=%u capacity=%llu", r->dir, base, n,
             (unsigned long long)cap);
    return 0;
}

int disk_recv_file(struct disk_recv *r, uint32_t idx, const uint8_t *body, size_t len,
                   char *err, size_t errlen)
{
    if (r->ended || idx != r->nfiles || idx >= r->declared) {
        ERR("DISK_FILE %u out of order (%u of %u received)", idx, r->nfiles, r->declared);
        return -EPROTO;
    }
    if (len <= 8 || len - 8 >= FNAME_MAX) {
        ERR("bad DISK_FILE record (%zu bytes)", len);
        return -EPROTO;
    }
    struct rfile *f = &r->f[idx];
    struct sreader rd;
    sreader_init(&rd, body, 8);
    f->size = sreader_u64(&rd);
    memcpy(f->name, body + 8, len - 8);
    f->name[len - 8] = 0;
    if (strlen(f->name) != len - 8 || !name_ok(r, f->name)) {
        ERR("the source sent a file name that is not a disk layer's: \"%.*s\"", (int)(len - 8),
            (const char *)body + 8);
        return -EPROTO;
    }
    const char *base = r->vm->blk.disk.base;
    if ((idx == 0) != !strcmp(f->name, base)) {
        ERR("the disk's base must come first (file %u is %s)", idx, f->name);
        return -EPROTO;
    }
    if (f->size > max_size(r, f->name) || (idx == 0 && f->size != r->vm->blk.disk.size)) {
        ERR("%s: %llu bytes is too large for this disk", f->name, (unsigned long long)f->size);
        return -EPROTO;
    }
    char p[PATH_MAX + FNAME_MAX];
    snprintf(p, sizeof(p), "%s/%s", r->dir, f->name);
    /* The base replaces the placeholder (emptied: holes stay holes); every
     * other file is new. */
    f->fd = idx == 0 ? open(p, O_RDWR | O_NOFOLLOW | O_CLOEXEC)
                     : open(p, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (f->fd < 0) {
        int e = errno;
        ERR("%s: %s", p, strerror(e));
        return -e;
    }
    f->created = idx != 0;
    if ((idx == 0 && ftruncate(f->fd, 0) < 0) || ftruncate(f->fd, (off_t)f->size) < 0) {
        int e = errno;
        ERR("%s: %s", p, strerror(e));
        return -e;
    }
    r->nfiles++;
    return 0;
}

int disk_recv_data(struct disk_recv *r, uint32_t idx, uint64_t off, const void *buf, size_t len,
                   char *err, size_t errlen)
{
    if (r->ended || idx >= r->nfiles) {
        ERR("DISK_DATA for file %u, which was not announced", idx);
        return -EPROTO;
    }
    struct rfile *f = &r->f[idx];
    /* Map and chain files may grow in stop-and-copy; data files never. */
    uint64_t lim = max_size(r, f->name);
    if (!ends_with(f->name, "-delta.map") && !ends_with(f->name, ".chain"))
        lim = f->size;
    if (!len || off > lim || len > lim - off) {
        ERR("DISK_DATA outside %s (%llu bytes at %llu)", f->name, (unsigned long long)len,
            (unsigned long long)off);
        return -EPROTO;
    }
    const uint8_t *p = buf;
    size_t done = 0;
    while (done < len) {
        ssize_t w = pwrite(f->fd, p + done, len - done, (off_t)(off + done));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = w < 0 ? errno : EIO;
            ERR("%s/%s: write: %s", r->dir, f->name, strerror(e));
            return -e;
        }
        done += (size_t)w;
    }
    /* Start the writeback now, so that little is left for the fsync in
     * stop-and-copy (the guest's downtime). */
    sync_file_range(f->fd, (off_t)off, (off_t)len, SYNC_FILE_RANGE_WRITE);
    r->bytes += len;
    return 0;
}

int disk_recv_flush(struct disk_recv *r, char *err, size_t errlen)
{
    for (unsigned i = 0; i < r->nfiles; i++)
        if (fdatasync(r->f[i].fd) < 0) {
            int e = errno;
            ERR("%s/%s: fdatasync: %s", r->dir, r->f[i].name, strerror(e));
            return -e;
        }
    return 0;
}

int disk_recv_end(struct disk_recv *r, char *err, size_t errlen)
{
    if (r->ended || r->nfiles != r->declared) {
        ERR("DISK_END after %u of %u files", r->nfiles, r->declared);
        return -EPROTO;
    }
    for (unsigned i = 0; i < r->nfiles; i++)
        if (fsync(r->f[i].fd) < 0) {
            int e = errno;
            ERR("%s/%s: fsync: %s", r->dir, r->f[i].name, strerror(e));
            return -e;
        }
    int dfd = open(r->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) < 0) {
        int e = errno;
        if (dfd >= 0)
            close(dfd);
        ERR("%s: fsync: %s", r->dir, strerror(e));
        return -e;
    }
    close(dfd);
    /* The disk as the source left it: every layer, checked as at start. */
    struct vmx *vm = r->vm;
    char e2[512] = "";
    pthread_mutex_lock(&vm->dev_lock);
    int rc = disk_reopen(&vm->blk.disk, e2, sizeof(e2));
    unsigned layers = vm->blk.disk.n;
    pthread_mutex_unlock(&vm->dev_lock);
    if (rc < 0) {
        ERR("the received disk does not open: %s", e2[0] ? e2 : strerror(-rc));
        return rc;
    }
    r->ended = true;
    kvc_info("VMX-MIGRATE disk received files=%u bytes=%llu layers=%u", r->nfiles,
             (unsigned long long)r->bytes, layers);
    return 0;
}

uint64_t disk_recv_bytes(const struct disk_recv *r)
{
    return r ? r->bytes : 0;
}

bool disk_recv_complete(const struct disk_recv *r)
{
    return r && r->ended;
}

void disk_recv_free(struct disk_recv *r, bool failed)
{
    if (!r)
        return;
    for (unsigned i = 0; i < r->nfiles; i++) {
        if (r->f[i].fd >= 0)
            close(r->f[i].fd);
        if (failed && r->f[i].created) {
            char p[PATH_MAX + FNAME_MAX];
            snprintf(p, sizeof(p), "%s/%s", r->dir, r->f[i].name);
            unlink(p);
        }
    }
    free(r);
}
