/* Storage migration: move a running VM's disk to another folder (see
 * disk_mirror.h and docs/vmx.md "Storage migration"). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "vmkernel-kvm/disk_mirror.h"
#include "vmkernel-kvm/migrate.h"
#include "vmkernel-kvm/vmx.h"
#include "vmkernel-kvm/vmx_fs.h"

KVC_LOG_MODULE(diskmove);

#define MAX_FILES (2u * DISK_MAX_LAYERS + 2u)
#define FNAME_MAX (DISK_NAME_MAX + 16u)
#define MARKER_EXT ".moving"
#define SPACE_MARGIN (1024u * 1024)

enum file_kind { F_FROZEN, F_LIVE, F_AT_SWITCH };

struct mfile {
    char name[FNAME_MAX];
    enum file_kind kind;
    int sfd, dfd;               /* source (read-only), target; -1: not open */
    bool created;               /* the target file exists: remove it on failure */
    uint64_t size, blocks;      /* source size, allocated bytes */
};

struct disk_mirror {
    struct vmx *vm;
    pthread_t thread;
    bool thread_started;
    bool running;               /* under lock */
    int cancel;                 /* atomic */
    pthread_mutex_t lock;       /* st */
    struct disk_move_status st;
    char src_dir[PATH_MAX], dst_dir[PATH_MAX], base[DISK_NAME_MAX];
    struct mfile f[MAX_FILES];
    unsigned nf;
    bool marker_created;
    uint8_t *dirty;             /* handed to disk.move_dirty */
    uint64_t clusters, size;
    uint64_t max_bps, t0, first_copied;
    uint64_t throttle_t0, throttle_bytes;
    uint8_t *buf;               /* DISK_MOVE_CHUNK, also DISK_MOVE_BATCH clusters */
    uint64_t batch[DISK_MOVE_BATCH];
    bool fault_eio;
    /* Stream mode (disk_stream_*: a live migration carries the disk): no
     * target folder; what would be written there goes to SINK, and the
     * caller's CANCEL flag stops the passes too. */
    disk_sink_fn sink;
    void *sink_arg;
    const int *ext_cancel;
};

#define ERR(...) do { if (err) snprintf(err, errlen, __VA_ARGS__); } while (0)

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int full_pio(int fd, bool wr, void *buf, size_t len, uint64_t off, size_t *got)
{
    uint8_t *p = buf;
    size_t done = 0;
    while (done < len) {
        ssize_t n = wr ? pwrite(fd, p + done, len - done, (off_t)(off + done))
                       : pread(fd, p + done, len - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0) {
            if (wr)
                return -EIO;
            break;
        }
        done += (size_t)n;
    }
    if (got)
        *got = done;
    return 0;
}

static int fsync_path(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

static int join_path(char *out, size_t cap, const char *dir, const char *name, const char *ext)
{
    size_t a = strlen(dir), b = strlen(name), c = strlen(ext);
    if (!cap || a + 1 + b + c >= cap) {
        if (cap)
            out[0] = 0;
        return -ENAMETOOLONG;
    }
    memcpy(out, dir, a);
    out[a] = '/';
    memcpy(out + a + 1, name, b);
    memcpy(out + a + 1 + b, ext, c + 1);
    return 0;
}

static void set_error(struct disk_mirror *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(struct disk_mirror *m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&m->lock);
    if (!m->st.error[0])
        vsnprintf(m->st.error, sizeof(m->st.error), fmt, ap);
    pthread_mutex_unlock(&m->lock);
    va_end(ap);
}

static void set_phase(struct disk_mirror *m, enum disk_move_phase p)
{
    pthread_mutex_lock(&m->lock);
    m->st.phase = p;
    pthread_mutex_unlock(&m->lock);
}

static bool cancelled(struct disk_mirror *m)
{
    return __atomic_load_n(&m->cancel, __ATOMIC_ACQUIRE) != 0
        || (m->ext_cancel && __atomic_load_n(m->ext_cancel, __ATOMIC_ACQUIRE) != 0);
}

/* Count BYTES as copied; with a limit, sleep (in slices, so a cancel is
 * seen) until the rate is back under it. */
static void account(struct disk_mirror *m, uint64_t bytes, bool first_pass, bool throttle)
{
    pthread_mutex_lock(&m->lock);
    m->st.copied_bytes += bytes;
    if (first_pass) {
        m->first_copied += bytes;
        uint64_t t = m->st.total_bytes ? m->first_copied * 100 / m->st.total_bytes : 100;
        m->st.percent = t > 99 ? 99 : (unsigned)t;
    }
    pthread_mutex_unlock(&m->lock);
    if (!throttle || !m->max_bps)
        return;
    m->throttle_bytes += bytes;
    for (;;) {
        uint64_t want_ns = m->throttle_bytes * 1000000000ull / m->max_bps;
        uint64_t el = now_ns() - m->throttle_t0;
        if (el >= want_ns || cancelled(m))
            return;
        uint64_t s = want_ns - el;
        if (s > 50000000ull)
            s = 50000000ull;
        struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)s };
        nanosleep(&ts, NULL);
    }
}

static int target_write(struct disk_mirror *m, struct mfile *f, const void *buf, size_t len, uint64_t off)
{
    if (m->fault_eio && m->st.copied_bytes >= DISK_MOVE_CHUNK)
        return -EIO;        /* KVC_VMX_FAULT=disk-move-eio */
    if (m->sink)
        return m->sink(m->sink_arg, (unsigned)(f - m->f), off, buf, len);
    return full_pio(f->dfd, true, (void *)buf, len, off, NULL);
}

/* ---- the file list ---- */

static int add_file(struct disk_mirror *m, const char *name, const char *ext, enum file_kind kind,
                    bool optional, char *err, size_t errlen)
{
    if (m->nf >= MAX_FILES) {
        ERR("too many files in the disk");
        return -E2BIG;
    }
    struct mfile *f = &m->f[m->nf];
    memset(f, 0, sizeof(*f));
    f->sfd = f->dfd = -1;
    f->kind = kind;
    if ((size_t)snprintf(f->name, sizeof(f->name), "%s%s", name, ext) >= sizeof(f->name)) {
        ERR("file name %s%s too long", name, ext);
        return -ENAMETOOLONG;
    }
    char sp[PATH_MAX], dp[PATH_MAX];
    if (join_path(sp, sizeof(sp), m->src_dir, f->name, "")
        || (!m->sink && join_path(dp, sizeof(dp), m->dst_dir, f->name, ""))) {
        ERR("path of %s too long", f->name);
        return -ENAMETOOLONG;
    }
    struct stat st;
    if (stat(sp, &st) < 0) {
        if (errno == ENOENT && optional)
            return 0;
        ERR("%s: %s", sp, strerror(errno));
        return -errno;
    }
    if (!S_ISREG(st.st_mode)) {
        ERR("%s: not a regular file", sp);
        return -EINVAL;
    }
    if (!m->sink && (lstat(dp, &st) == 0 || errno != ENOENT)) {
        ERR("%s exists already", dp);
        return -EEXIST;
    }
    m->nf++;
    return 0;
}

static int build_list(struct disk_mirror *m, const struct disk *d, char *err, size_t errlen)
{
    const char *top = d->layers[d->n - 1].name;
    bool top_is_base = !strcmp(top, DISK_BASE);
    int rc;
    /* Frozen first, the live top layer after them, the files the switch
     * copies last.  Every layer of the tree moves, also branches a revert
     * left off the open path (snapshots still refer to them). */
    if ((rc = add_file(m, d->base, "", top_is_base ? F_LIVE : F_FROZEN, false, err, errlen)))
        return rc;
    for (unsigned i = 0; i < d->chain.n; i++) {
        bool is_top = !top_is_base && !strcmp(d->chain.l[i].name, top);
        if ((rc = add_file(m, d->chain.l[i].name, ".img", is_top ? F_LIVE : F_FROZEN, false, err, errlen))
            || (rc = add_file(m, d->chain.l[i].name, ".map", is_top ? F_AT_SWITCH : F_FROZEN, false,
                              err, errlen)))
            return rc;
    }
    return add_file(m, d->base, ".chain", F_AT_SWITCH, true, err, errlen);
}

static int open_files(struct disk_mirror *m, char *err, size_t errlen)
{
    for (unsigned i = 0; i < m->nf; i++) {
        struct mfile *f = &m->f[i];
        char sp[PATH_MAX], dp[PATH_MAX];
        join_path(sp, sizeof(sp), m->src_dir, f->name, "");
        join_path(dp, sizeof(dp), m->dst_dir, f->name, "");
        struct stat st;
        if ((f->sfd = open(sp, O_RDONLY | O_CLOEXEC)) < 0 || fstat(f->sfd, &st) < 0) {
            ERR("%s: %s", sp, strerror(errno));
            return -errno;
        }
        f->size = (uint64_t)st.st_size;
        f->blocks = (uint64_t)st.st_blocks * 512;
        if (m->sink)
            continue;
        f->dfd = open(dp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, st.st_mode & 0777);
        if (f->dfd < 0) {
            int e = errno;
            ERR("%s: %s", dp, strerror(e));
            return e == EEXIST ? -EEXIST : -e;
        }
        f->created = true;
        if (ftruncate(f->dfd, (off_t)f->size) < 0) {
            int e = errno;
            ERR("%s: %s", dp, strerror(e));
            return -e;
        }
    }
    return 0;
}

static void close_files(struct disk_mirror *m)
{
    for (unsigned i = 0; i < m->nf; i++) {
        if (m->f[i].sfd >= 0)
            close(m->f[i].sfd);
        if (m->f[i].dfd >= 0)
            close(m->f[i].dfd);
        m->f[i].sfd = m->f[i].dfd = -1;
    }
}

/* Remove what the move created in the target (failure, cancel). */
static void remove_copy(struct disk_mirror *m)
{
    char p[PATH_MAX];
    for (unsigned i = 0; i < m->nf; i++)
        if (m->f[i].created && !join_path(p, sizeof(p), m->dst_dir, m->f[i].name, ""))
            unlink(p);
    /* The marker last: until it is gone the leftovers say what they are. */
    if (m->marker_created && !join_path(p, sizeof(p), m->dst_dir, m->base, MARKER_EXT))
        unlink(p);
    fsync_path(m->dst_dir);
}

/* ---- copying ---- */

static struct vmx *VM(struct disk_mirror *m) { return m->vm; }

/* First pass over one file: data extents only (holes stay holes); a live
 * file is read under the device lock, chunk by chunk. */
static int copy_sparse(struct disk_mirror *m, struct mfile *f)
{
    bool live = f->kind == F_LIVE;
    uint64_t off = 0;
    while (off < f->size) {
        if (cancelled(m))
            return -ECANCELED;
        if (live)
            pthread_mutex_lock(&VM(m)->dev_lock);
        off_t data = lseek(f->sfd, (off_t)off, SEEK_DATA);
        if (data < 0) {
            int e = errno;
            if (live)
                pthread_mutex_unlock(&VM(m)->dev_lock);
            if (e == ENXIO)
                return 0;       /* only a hole is left */
            set_error(m, "%s/%s: seek: %s", m->src_dir, f->name, strerror(e));
            return -e;
        }
        off_t hole = lseek(f->sfd, data, SEEK_HOLE);
        uint64_t end = hole < 0 ? f->size : (uint64_t)hole;
        if (end > f->size)
            end = f->size;
        uint64_t n = end - (uint64_t)data;
        if (n > DISK_MOVE_CHUNK)
            n = DISK_MOVE_CHUNK;
        size_t got = 0;
        int rc = n ? full_pio(f->sfd, false, m->buf, n, (uint64_t)data, &got) : 0;
        if (live)
            pthread_mutex_unlock(&VM(m)->dev_lock);
        if (rc) {
            set_error(m, "%s/%s: read: %s", m->src_dir, f->name, strerror(-rc));
            return rc;
        }
        if (!got)
            return 0;
        if ((rc = target_write(m, f, m->buf, got, (uint64_t)data)) < 0) {
            set_error(m, "%s/%s: write: %s", m->dst_dir, f->name, strerror(-rc));
            return rc;
        }
        account(m, got, true, true);
        off = (uint64_t)data + got;
    }
    return 0;
}

static struct mfile *live_file(struct disk_mirror *m)
{
    for (unsigned i = 0; i < m->nf; i++)
        if (m->f[i].kind == F_LIVE)
            return &m->f[i];
    return NULL;
}

static uint64_t count_dirty(const struct disk_mirror *m)
{
    uint64_t n = 0, bytes = (m->clusters + 7) / 8;
    for (uint64_t i = 0; i < bytes; i++)
        n += (uint64_t)__builtin_popcount(m->dirty[i]);
    return n;
}

/* One pass over the dirty clusters of the live file.  Not LOCKED: each
 * batch is taken and read under the device lock, written without it.
 * LOCKED: the caller holds the lock (the switch).  Returns the clusters
 * copied or -errno. */
static int64_t copy_dirty(struct disk_mirror *m, bool locked)
{
    struct mfile *f = live_file(m);
    uint64_t bytes = (m->clusters + 7) / 8, pos = 0, total = 0;
    while (pos < bytes) {
        if (!locked && cancelled(m))
            return -ECANCELED;
        unsigned k = 0;
        if (!locked)
            pthread_mutex_lock(&VM(m)->dev_lock);
        for (; pos < bytes && k < DISK_MOVE_BATCH; pos++) {
            uint8_t b = m->dirty[pos];
            if (!b)
                continue;
            /* A byte at a time: all of its bits go in this batch. */
            if (k + 8 > DISK_MOVE_BATCH)
                break;
            for (unsigned bit = 0; bit < 8; bit++)
                if (b >> bit & 1)
                    m->batch[k++] = pos * 8 + bit;
            m->dirty[pos] = 0;
        }
        int rc = 0;
        size_t got[DISK_MOVE_BATCH];
        for (unsigned i = 0; i < k && !rc; i++)
            rc = full_pio(f->sfd, false, m->buf + (size_t)i * DISK_CLUSTER, DISK_CLUSTER,
                          m->batch[i] * DISK_CLUSTER, &got[i]);
        if (!locked)
            pthread_mutex_unlock(&VM(m)->dev_lock);
        if (rc) {
            set_error(m, "%s/%s: read: %s", m->src_dir, f->name, strerror(-rc));
            return rc;
        }
        for (unsigned i = 0; i < k; i++) {
            if (!got[i])
                continue;
            if ((rc = target_write(m, f, m->buf + (size_t)i * DISK_CLUSTER, got[i],
                                   m->batch[i] * DISK_CLUSTER)) < 0) {
                set_error(m, "%s/%s: write: %s", m->dst_dir, f->name, strerror(-rc));
                return rc;
            }
            account(m, got[i], false, false);
        }
        total += k;
        pthread_mutex_lock(&m->lock);
        m->st.recopied_clusters += k;
        pthread_mutex_unlock(&m->lock);
    }
    return (int64_t)total;
}

/* A whole small file (top map, chain) with the device lock held. */
static int copy_whole(struct disk_mirror *m, struct mfile *f)
{
    struct stat st;
    if (fstat(f->sfd, &st) < 0)
        return -errno;
    uint64_t size = (uint64_t)st.st_size, off = 0;
    if (!m->sink && ftruncate(f->dfd, (off_t)size) < 0)
        return -errno;
    while (off < size) {
        uint64_t n = size - off < DISK_MOVE_CHUNK ? size - off : DISK_MOVE_CHUNK;
        size_t got = 0;
        int rc = full_pio(f->sfd, false, m->buf, n, off, &got);
        if (rc)
            return rc;
        if (!got)
            break;
        if ((rc = target_write(m, f, m->buf, got, off)) < 0)
            return rc;
        account(m, got, false, false);
        off += got;
    }
    return 0;
}

/* Step 5 (disk_mirror.h), device lock held.  0: the VM runs on the target. */
static int do_switch(struct disk_mirror *m)
{
    struct vmx *vm = VM(m);
    struct disk *d = &vm->blk.disk;
    char p[PATH_MAX], err[PATH_MAX + 256] = "";
    int rc;
    if (!d->readonly && (rc = disk_flush(d)) < 0) {
        set_error(m, "flush of the source: %s", strerror(-rc));
        return rc;
    }
    int64_t n = copy_dirty(m, true);
    if (n < 0)
        return (int)n;
    for (unsigned i = 0; i < m->nf; i++) {
        struct mfile *f = &m->f[i];
        if (f->kind == F_AT_SWITCH && (rc = copy_whole(m, f)) < 0) {
            set_error(m, "%s: %s", f->name, strerror(-rc));
            return rc;
        }
    }
    for (unsigned i = 0; i < m->nf; i++) {
        if (fsync(m->f[i].dfd) < 0) {
            rc = -errno;
            set_error(m, "%s/%s: fsync: %s", m->dst_dir, m->f[i].name, strerror(-rc));
            return rc;
        }
    }
    if ((rc = fsync_path(m->dst_dir)) < 0) {
        set_error(m, "%s: fsync: %s", m->dst_dir, strerror(-rc));
        return rc;
    }
    /* The commit: without the marker the target is a complete disk. */
    join_path(p, sizeof(p), m->dst_dir, m->base, MARKER_EXT);
    rc = unlink(p) < 0 ? -errno : fsync_path(m->dst_dir);
    if (rc < 0) {
        set_error(m, "%s: %s", p, strerror(-rc));
        return rc;
    }
    m->marker_created = false;
    char old_dir[PATH_MAX];
    snprintf(old_dir, sizeof(old_dir), "%s", d->dir);
    snprintf(d->dir, sizeof(d->dir), "%s", m->dst_dir);
    if ((rc = disk_reopen(d, err, sizeof(err))) < 0) {
        set_error(m, "opening the copy: %s", err[0] ? err : strerror(-rc));
        snprintf(d->dir, sizeof(d->dir), "%s", old_dir);
        char e2[PATH_MAX + 256] = "";
        int r2 = disk_reopen(d, e2, sizeof(e2));
        if (r2 < 0)
            kvc_err("disk move: reopening the source failed too: %s", e2);
        return rc;
    }
    d->move_dirty = NULL;
    join_path(vm->cfg.disk_path, sizeof(vm->cfg.disk_path), m->dst_dir, m->base, "");
    return 0;
}

static void remove_source(struct disk_mirror *m)
{
    char p[PATH_MAX];
    /* The chain file first: a half-removed source is then at least not a
     * disk with deltas missing, and the base goes last. */
    for (unsigned i = m->nf; i-- > 0;) {
        if (join_path(p, sizeof(p), m->src_dir, m->f[i].name, ""))
            continue;
        if (unlink(p) < 0 && errno != ENOENT) {
            kvc_warn("disk move: %s not removed: %s", p, strerror(errno));
            set_error(m, "%s not removed: %s", p, strerror(errno));
        }
    }
    fsync_path(m->src_dir);
}

/* Steps 3 and 4: the first pass over every file, then dirty passes until
 * few clusters are left.  ROUNDS gets the dirty passes made. */
static int run_passes(struct disk_mirror *m, unsigned *rounds_out)
{
    struct vmx *vm = VM(m);
    int rc = 0;
    m->throttle_t0 = now_ns();
    for (unsigned i = 0; i < m->nf && !rc; i++)
        if (m->f[i].kind != F_AT_SWITCH)
            rc = copy_sparse(m, &m->f[i]);
    unsigned rounds = 0, stuck = 0;
    uint64_t best = UINT64_MAX;
    bool have_live = live_file(m) != NULL;
    if (!rc && have_live) {
        set_phase(m, DISK_MOVE_DIRTY);
        for (;;) {
            pthread_mutex_lock(&vm->dev_lock);
            uint64_t left = count_dirty(m);
            pthread_mutex_unlock(&vm->dev_lock);
            pthread_mutex_lock(&m->lock);
            m->st.dirty_clusters = left;
            m->st.rounds = rounds;
            pthread_mutex_unlock(&m->lock);
            if (left <= DISK_MOVE_SWITCH_LEFT)
                break;
            /* Not getting smaller (the guest rewrites as fast as we copy):
             * more rounds would not help. */
            if (left < best) {
                best = left;
                stuck = 0;
            } else {
                stuck++;
            }
            if (rounds >= DISK_MOVE_MAX_ROUNDS || stuck >= DISK_MOVE_STUCK_ROUNDS) {
                if (left > DISK_MOVE_SWITCH_MAX) {
                    set_error(m, "the guest writes faster than the copy: %llu clusters still dirty "
                              "after %u rounds", (unsigned long long)left, rounds);
                    rc = -EAGAIN;
                }
                break;
            }
            int64_t n = copy_dirty(m, false);
            if (n < 0) {
                rc = (int)n;
                break;
            }
            rounds++;
        }
    }
    *rounds_out = rounds;
    return rc;
}

static void *move_thread(void *arg)
{
    struct disk_mirror *m = arg;
    struct vmx *vm = VM(m);
    unsigned rounds = 0;
    int rc = run_passes(m, &rounds);
    if (!rc && cancelled(m))
        rc = -ECANCELED;
    uint64_t pause_us = 0;
    if (!rc) {
        set_phase(m, DISK_MOVE_SWITCHING);
        uint64_t t = now_ns();
        pthread_mutex_lock(&vm->dev_lock);
        rc = do_switch(m);
        if (rc)
            vm->blk.disk.move_dirty = NULL;
        pthread_mutex_unlock(&vm->dev_lock);
        pause_us = (now_ns() - t) / 1000;
    } else {
        pthread_mutex_lock(&vm->dev_lock);
        vm->blk.disk.move_dirty = NULL;
        pthread_mutex_unlock(&vm->dev_lock);
    }
    close_files(m);
    enum disk_move_phase ph;
    if (rc) {
        remove_copy(m);
        ph = rc == -ECANCELED ? DISK_MOVE_CANCELLED : DISK_MOVE_FAILED;
        if (rc == -ECANCELED)
            set_error(m, "cancelled");
        else
            set_error(m, "%s", strerror(-rc));
    } else {
        remove_source(m);
        ph = DISK_MOVE_COMPLETED;
    }
    pthread_mutex_lock(&m->lock);
    m->st.phase = ph;
    m->st.pause_us = pause_us;
    m->st.rounds = rounds;
    if (ph == DISK_MOVE_COMPLETED) {
        m->st.percent = 100;
        m->st.dirty_clusters = 0;
    }
    m->st.total_ms = (now_ns() - m->t0) / 1000000;
    m->running = false;
    struct disk_move_status s = m->st;
    pthread_mutex_unlock(&m->lock);
    if (ph == DISK_MOVE_COMPLETED)
        kvc_info("VMX-DISK-MOVE phase=completed from=%s to=%s files=%u bytes=%llu rounds=%u "
                 "recopied=%llu pause_us=%llu ms=%llu", s.from, s.to, s.files,
                 (unsigned long long)s.copied_bytes, s.rounds, (unsigned long long)s.recopied_clusters,
                 (unsigned long long)s.pause_us, (unsigned long long)s.total_ms);
    else
        kvc_warn("VMX-DISK-MOVE phase=%s from=%s to=%s error=%s", ph == DISK_MOVE_CANCELLED ?
                 "cancelled" : "failed", s.from, s.to, s.error);
    return NULL;
}

/* ---- control ---- */

static void mirror_reset(struct disk_mirror *m)
{
    if (m->thread_started)
        pthread_join(m->thread, NULL);
    m->thread_started = false;
    free(m->dirty);
    m->dirty = NULL;
    free(m->buf);
    m->buf = NULL;
}

int disk_move_start(struct vmx *vm, const char *dest_dir, uint64_t max_bps, char *err, size_t errlen)
{
    struct disk_mirror *m = vm->mirror;
    if (!vm->blk_on || !vm->blk.disk.is_open) {
        ERR("the VM has no disk");
        return -ENODEV;
    }
    if (vm->stop != VMX_STOP_NONE || (vm->state != VMX_RUNNING && vm->state != VMX_PAUSED)) {
        ERR("the VM is not running");
        return -EBUSY;
    }
    if (vmx_migrate_active(vm)) {
        ERR("a migration is in progress");
        return -EBUSY;
    }
    if (m && m->running) {
        ERR("a disk move is in progress");
        return -EBUSY;
    }
    size_t dl = strlen(dest_dir);
    if (!dl || dest_dir[0] != '/' || dl >= PATH_MAX - FNAME_MAX - 2) {
        ERR("target folder must be an absolute path (and not too long)");
        return -EINVAL;
    }
    struct stat st;
    if (stat(dest_dir, &st) < 0) {
        ERR("%s: %s", dest_dir, strerror(errno));
        return -errno;
    }
    if (!S_ISDIR(st.st_mode)) {
        ERR("%s is not a folder", dest_dir);
        return -ENOTDIR;
    }
    struct disk *d = &vm->blk.disk;
    if (vmx_same_file(dest_dir, d->dir)) {
        ERR("%s is the disk's folder already", dest_dir);
        return -EINVAL;
    }
    if (!m) {
        if (!(m = calloc(1, sizeof(*m))))
            return -ENOMEM;
        pthread_mutex_init(&m->lock, NULL);
        m->vm = vm;
        vm->mirror = m;
    }
    mirror_reset(m);
    pthread_mutex_lock(&m->lock);
    memset(&m->st, 0, sizeof(m->st));
    pthread_mutex_unlock(&m->lock);
    m->nf = 0;
    m->marker_created = false;
    m->cancel = 0;
    m->first_copied = m->throttle_bytes = 0;
    m->max_bps = max_bps;
    m->t0 = now_ns();
    const char *fault = getenv("KVC_VMX_FAULT");
    m->fault_eio = fault && !strcmp(fault, "disk-move-eio");
    snprintf(m->dst_dir, sizeof(m->dst_dir), "%s", dest_dir);
    while (strlen(m->dst_dir) > 1 && m->dst_dir[strlen(m->dst_dir) - 1] == '/')
        m->dst_dir[strlen(m->dst_dir) - 1] = 0;

    int rc = 0;
    char p[PATH_MAX];
    /* The list and the sizes under the lock: nothing changes the tree then
     * (and snapshots are refused from the moment move_dirty is set). */
    pthread_mutex_lock(&vm->dev_lock);
    snprintf(m->src_dir, sizeof(m->src_dir), "%s", d->dir);
    snprintf(m->base, sizeof(m->base), "%s", d->base);
    m->size = d->size;
    m->clusters = d->clusters;
    pthread_mutex_unlock(&vm->dev_lock);
    /* A marker first: its message says more than "t.img exists". */
    if ((rc = join_path(p, sizeof(p), m->dst_dir, m->base, MARKER_EXT)) < 0) {
        ERR("target path too long");
        return rc;
    }
    if (lstat(p, &st) == 0) {
        ERR("%s exists: a move into this folder is under way or was interrupted", p);
        return -EEXIST;
    }
    pthread_mutex_lock(&vm->dev_lock);
    rc = build_list(m, d, err, errlen);
    pthread_mutex_unlock(&vm->dev_lock);
    if (rc)
        return rc;
    /* Room for every file's allocated bytes (the copy keeps holes). */
    uint64_t need = SPACE_MARGIN;
    for (unsigned i = 0; i < m->nf; i++) {
        char sp[PATH_MAX];
        join_path(sp, sizeof(sp), m->src_dir, m->f[i].name, "");
        if (stat(sp, &st) == 0)
            need += (uint64_t)st.st_blocks * 512;
    }
    struct statvfs vs;
    if (statvfs(m->dst_dir, &vs) == 0 && (uint64_t)vs.f_bavail * vs.f_frsize < need) {
        ERR("no space in %s: %llu bytes free, the disk needs %llu", m->dst_dir,
            (unsigned long long)vs.f_bavail * vs.f_frsize, (unsigned long long)need);
        return -ENOSPC;
    }
    m->buf = malloc(DISK_MOVE_CHUNK > DISK_MOVE_BATCH * DISK_CLUSTER ? DISK_MOVE_CHUNK
                                                                      : DISK_MOVE_BATCH * DISK_CLUSTER);
    m->dirty = calloc(1, (size_t)((m->clusters + 7) / 8) + 1);
    if (!m->buf || !m->dirty) {
        mirror_reset(m);
        ERR("out of memory");
        return -ENOMEM;
    }
    int mfd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (mfd < 0) {
        rc = -errno;
        ERR("%s: %s", p, strerror(errno));
        mirror_reset(m);
        return rc;
    }
    m->marker_created = true;
    char line[PATH_MAX + 32];
    int ll = snprintf(line, sizeof(line), "moving from %s/%s\n", m->src_dir, m->base);
    if (ll < 0 || (size_t)ll >= sizeof(line))
        ll = 0;
    rc = full_pio(mfd, true, line, (size_t)ll, 0, NULL);
    if (!rc && fsync(mfd) < 0)
        rc = -errno;
    close(mfd);
    if (!rc)
        rc = fsync_path(m->dst_dir);
    if (!rc)
        rc = open_files(m, err, errlen);
    else
        ERR("%s: %s", p, strerror(-rc));
    if (rc) {
        close_files(m);
        remove_copy(m);
        mirror_reset(m);
        return rc;
    }
    uint64_t total = 0;
    for (unsigned i = 0; i < m->nf; i++)
        total += m->f[i].blocks < m->f[i].size ? m->f[i].blocks : m->f[i].size;
    pthread_mutex_lock(&m->lock);
    m->st.phase = DISK_MOVE_COPYING;
    join_path(m->st.from, sizeof(m->st.from), m->src_dir, m->base, "");
    join_path(m->st.to, sizeof(m->st.to), m->dst_dir, m->base, "");
    m->st.files = m->nf;
    m->st.total_bytes = total;
    m->running = true;
    pthread_mutex_unlock(&m->lock);
    /* From here every write is marked for the dirty passes. */
    pthread_mutex_lock(&vm->dev_lock);
    d->move_dirty = m->dirty;
    pthread_mutex_unlock(&vm->dev_lock);
    if ((rc = pthread_create(&m->thread, NULL, move_thread, m)) != 0) {
        pthread_mutex_lock(&vm->dev_lock);
        d->move_dirty = NULL;
        pthread_mutex_unlock(&vm->dev_lock);
        close_files(m);
        remove_copy(m);
        pthread_mutex_lock(&m->lock);
        m->running = false;
        m->st.phase = DISK_MOVE_FAILED;
        snprintf(m->st.error, sizeof(m->st.error), "thread: %s", strerror(rc));
        pthread_mutex_unlock(&m->lock);
        mirror_reset(m);
        ERR("thread: %s", strerror(rc));
        return -rc;
    }
    m->thread_started = true;
    kvc_info("VMX-DISK-MOVE phase=started from=%s to=%s files=%u bytes=%llu max_bps=%llu",
             m->st.from, m->st.to, m->nf, (unsigned long long)total, (unsigned long long)max_bps);
    return 0;
}

void disk_move_get_status(struct vmx *vm, struct disk_move_status *out)
{
    struct disk_mirror *m = vm->mirror;
    memset(out, 0, sizeof(*out));
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    *out = m->st;
    if (m->running)
        out->total_ms = (now_ns() - m->t0) / 1000000;
    pthread_mutex_unlock(&m->lock);
}

bool disk_move_active(struct vmx *vm)
{
    struct disk_mirror *m = vm->mirror;
    if (!m)
        return false;
    pthread_mutex_lock(&m->lock);
    bool r = m->running;
    pthread_mutex_unlock(&m->lock);
    return r;
}

int disk_move_cancel(struct vmx *vm)
{
    if (!disk_move_active(vm))
        return -ESRCH;
    __atomic_store_n(&vm->mirror->cancel, 1, __ATOMIC_RELEASE);
    return 0;
}

void disk_move_free(struct vmx *vm)
{
    struct disk_mirror *m = vm->mirror;
    if (!m)
        return;
    __atomic_store_n(&m->cancel, 1, __ATOMIC_RELEASE);
    mirror_reset(m);
    pthread_mutex_destroy(&m->lock);
    free(m);
    vm->mirror = NULL;
}

/* ---- stream mode: a live migration carries the disk (migrate_disk.c) ----
 *
 * The same file list, passes and dirty tracking as a move, with SINK in
 * place of the target folder; the caller's thread runs the passes (no
 * thread of our own) and no file of the source is changed or removed. */

int disk_stream_begin(struct vmx *vm, struct disk_mirror **out, disk_sink_fn sink, void *arg,
                      const int *cancel, char *err, size_t errlen)
{
    *out = NULL;
    if (!vm->blk_on || !vm->blk.disk.is_open) {
        ERR("the VM has no disk");
        return -ENODEV;
    }
    if (disk_move_active(vm)) {
        ERR("a disk move is in progress");
        return -EBUSY;
    }
    struct disk_mirror *m = calloc(1, sizeof(*m));
    if (!m) {
        ERR("out of memory");
        return -ENOMEM;
    }
    pthread_mutex_init(&m->lock, NULL);
    m->vm = vm;
    m->sink = sink;
    m->sink_arg = arg;
    m->ext_cancel = cancel;
    m->t0 = now_ns();
    struct disk *d = &vm->blk.disk;
    int rc;
    pthread_mutex_lock(&vm->dev_lock);
    snprintf(m->src_dir, sizeof(m->src_dir), "%s", d->dir);
    snprintf(m->base, sizeof(m->base), "%s", d->base);
    m->size = d->size;
    m->clusters = d->clusters;
    rc = d->move_dirty ? -EBUSY : build_list(m, d, err, errlen);
    if (rc == -EBUSY)
        ERR("the disk is being copied already");
    pthread_mutex_unlock(&vm->dev_lock);
    if (!rc) {
        m->buf = malloc(DISK_MOVE_CHUNK > DISK_MOVE_BATCH * DISK_CLUSTER ? DISK_MOVE_CHUNK
                                                                          : DISK_MOVE_BATCH * DISK_CLUSTER);
        m->dirty = calloc(1, (size_t)((m->clusters + 7) / 8) + 1);
        if (!m->buf || !m->dirty) {
            ERR("out of memory");
            rc = -ENOMEM;
        }
    }
    if (!rc)
        rc = open_files(m, err, errlen);
    if (rc) {
        disk_stream_end(m);
        return rc;
    }
    uint64_t total = 0;
    for (unsigned i = 0; i < m->nf; i++)
        total += m->f[i].blocks < m->f[i].size ? m->f[i].blocks : m->f[i].size;
    m->st.phase = DISK_MOVE_COPYING;
    m->st.files = m->nf;
    m->st.total_bytes = total;
    /* From here every write is marked (and snapshots are refused). */
    pthread_mutex_lock(&vm->dev_lock);
    if (d->move_dirty)
        rc = -EBUSY;
    else
        d->move_dirty = m->dirty;
    pthread_mutex_unlock(&vm->dev_lock);
    if (rc) {
        ERR("the disk is being copied already");
        disk_stream_end(m);
        return rc;
    }
    *out = m;
    return 0;
}

unsigned disk_stream_nfiles(const struct disk_mirror *m) { return m->nf; }

const char *disk_stream_file(const struct disk_mirror *m, unsigned i, uint64_t *size)
{
    if (i >= m->nf)
        return NULL;
    *size = m->f[i].size;
    return m->f[i].name;
}

const char *disk_stream_base(const struct disk_mirror *m, uint64_t *capacity)
{
    *capacity = m->size;
    return m->base;
}

int disk_stream_passes(struct disk_mirror *m)
{
    unsigned rounds = 0;
    int rc = run_passes(m, &rounds);
    return !rc && cancelled(m) ? -ECANCELED : rc;
}

int disk_stream_dirty_pass(struct disk_mirror *m)
{
    int64_t n = copy_dirty(m, false);
    return n < 0 ? (int)n : 0;
}

int disk_stream_final(struct disk_mirror *m)
{
    struct vmx *vm = VM(m);
    struct disk *d = &vm->blk.disk;
    int rc = 0;
    pthread_mutex_lock(&vm->dev_lock);
    if (!d->readonly && (rc = disk_flush(d)) < 0)
        set_error(m, "flush of the disk: %s", strerror(-rc));
    if (!rc) {
        int64_t n = copy_dirty(m, true);
        rc = n < 0 ? (int)n : 0;
    }
    for (unsigned i = 0; i < m->nf && !rc; i++)
        if (m->f[i].kind == F_AT_SWITCH && (rc = copy_whole(m, &m->f[i])) < 0)
            set_error(m, "%s: %s", m->f[i].name, strerror(-rc));
    pthread_mutex_unlock(&vm->dev_lock);
    return rc;
}

void disk_stream_progress(struct disk_mirror *m, uint64_t *total, uint64_t *sent)
{
    pthread_mutex_lock(&m->lock);
    *total = m->st.total_bytes;
    *sent = m->st.copied_bytes;
    pthread_mutex_unlock(&m->lock);
}

void disk_stream_error(struct disk_mirror *m, char *buf, size_t len)
{
    pthread_mutex_lock(&m->lock);
    snprintf(buf, len, "%s", m->st.error);
    pthread_mutex_unlock(&m->lock);
}

void disk_stream_end(struct disk_mirror *m)
{
    if (!m)
        return;
    struct vmx *vm = VM(m);
    pthread_mutex_lock(&vm->dev_lock);
    if (vm->blk.disk.move_dirty == m->dirty)
        vm->blk.disk.move_dirty = NULL;
    pthread_mutex_unlock(&vm->dev_lock);
    close_files(m);
    free(m->dirty);
    free(m->buf);
    pthread_mutex_destroy(&m->lock);
    free(m);
}
