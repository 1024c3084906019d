/* VM leases (lib/lease.h has the rules; docs/hosts.md the design). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/lease.h"
#include "lib/log.h"

KVC_LOG_MODULE(lease);

#define LEASE_MAGIC "kvc-lease 1"
/* The lock file serialising contenders is held for a few milliseconds; one
 * left behind by a contender that died is broken after this long. */
#define LOCK_STALE_MS 5000

struct kvc_lease {
    char path[PATH_MAX];
    struct kvc_lease_record rec;    /* what is on disk if we still hold it */
    bool pending;                   /* the last write may or may not have landed */
    bool lost, transferred;
    int64_t last_ok_mono;           /* start of the last successful renewal */
};

/* ---- clocks ------------------------------------------------------------- */

static int64_t real_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t real_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t (*wall_ms)(void) = real_wall;
static int64_t (*mono_ms)(void) = real_mono;

int64_t kvc_lease_wall_ms(void)
{
    return wall_ms();
}

int64_t kvc_lease_mono_ms(void)
{
    return mono_ms();
}

void kvc_lease_set_clocks(int64_t (*w)(void), int64_t (*m)(void))
{
    wall_ms = w ? w : real_wall;
    mono_ms = m ? m : real_mono;
}

/* ---- helpers ------------------------------------------------------------ */

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || !errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static bool owner_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n >= KVC_LEASE_OWNER_MAX)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')
              || *s == '-' || *s == '_' || *s == '.'))
            return false;
    return true;
}

static bool text_ok(const char *s)
{
    if (strlen(s) >= KVC_LEASE_NAME_MAX)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

/* Names are only for messages: keep them printable and short. */
static void copy_text(char *dst, const char *src)
{
    size_t i = 0;
    for (; src && src[i] && i < KVC_LEASE_NAME_MAX - 1; i++)
        dst[i] = ((unsigned char)src[i] < 0x20 || src[i] == 0x7f) ? '?' : src[i];
    dst[i] = 0;
}

const char *kvc_lease_state_name(enum kvc_lease_state s)
{
    switch (s) {
    case KVC_LEASE_NONE: return "none";
    case KVC_LEASE_FREE: return "free";
    case KVC_LEASE_MINE: return "mine";
    case KVC_LEASE_EXPIRED: return "expired";
    case KVC_LEASE_LIVE: return "live";
    }
    return "?";
}

/* ---- the file format ---------------------------------------------------- */

int kvc_lease_format(const struct kvc_lease_record *r, char *buf, size_t len)
{
    if (!owner_ok(r->owner) || !text_ok(r->owner_name) || !text_ok(r->vm) || r->time_ms < 0
        || r->duration_ms < KVC_LEASE_MIN_MS || r->duration_ms > KVC_LEASE_MAX_MS)
        return -EINVAL;
    int n = snprintf(buf, len,
                     LEASE_MAGIC "\nowner=%s\nowner_name=%s\nvm=%s\nstate=%s\n"
                     "generation=%" PRIu64 "\nheartbeat=%" PRIu64 "\ntime_ms=%" PRId64
                     "\nduration_ms=%" PRIu32 "\nend\n",
                     r->owner, r->owner_name, r->vm, r->held ? "held" : "free",
                     r->generation, r->heartbeat, r->time_ms, r->duration_ms);
    if (n < 0 || (size_t)n >= len)
        return -ENOSPC;
    return n;
}

static bool parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (!*s || (s[0] == '0' && s[1]))
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        unsigned d = (unsigned)(*s - '0');
        if (v > (max - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

enum { K_OWNER, K_OWNER_NAME, K_VM, K_STATE, K_GEN, K_HB, K_TIME, K_DUR, K_COUNT };
static const char *const key_names[K_COUNT] = {
    "owner", "owner_name", "vm", "state", "generation", "heartbeat", "time_ms", "duration_ms",
};

int kvc_lease_parse(const char *buf, size_t len, struct kvc_lease_record *r,
                    char *err, size_t errlen)
{
    bool seen[K_COUNT] = { false };
    bool ended = false;
    unsigned line = 0;
    size_t pos = 0;
    char l[KVC_LEASE_FILE_MAX + 1];

    memset(r, 0, sizeof(*r));
    if (len == 0) {
        seterr(err, errlen, "empty file");
        return -EBADMSG;
    }
    if (len > KVC_LEASE_FILE_MAX) {
        seterr(err, errlen, "longer than %d bytes", KVC_LEASE_FILE_MAX);
        return -EBADMSG;
    }
    if (memchr(buf, 0, len)) {
        seterr(err, errlen, "contains NUL bytes");
        return -EBADMSG;
    }
    while (pos < len) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        line++;
        if (ended) {
            seterr(err, errlen, "line %u: data after 'end'", line);
            return -EBADMSG;
        }
        if (!nl) {
            seterr(err, errlen, "line %u: truncated (no end of line)", line);
            return -EBADMSG;
        }
        size_t n = (size_t)(nl - (buf + pos));
        memcpy(l, buf + pos, n);
        l[n] = 0;
        pos += n + 1;
        if (line == 1) {
            if (strcmp(l, LEASE_MAGIC)) {
                if (!strncmp(l, "kvc-lease ", 10))
                    seterr(err, errlen, "line 1: unsupported version '%.20s'", l + 10);
                else
                    seterr(err, errlen, "line 1: not a lease file (no '" LEASE_MAGIC "')");
                return -EBADMSG;
            }
            continue;
        }
        if (!strcmp(l, "end")) {
            ended = true;
            continue;
        }
        char *eq = strchr(l, '=');
        if (!eq) {
            seterr(err, errlen, "line %u: expected key=value", line);
            return -EBADMSG;
        }
        *eq = 0;
        const char *v = eq + 1;
        int k;
        for (k = 0; k < K_COUNT && strcmp(l, key_names[k]); k++)
            ;
        if (k == K_COUNT) {
            seterr(err, errlen, "line %u: unknown key '%.40s'", line, l);
            return -EBADMSG;
        }
        if (seen[k]) {
            seterr(err, errlen, "line %u: key '%s' repeated", line, key_names[k]);
            return -EBADMSG;
        }
        seen[k] = true;
        uint64_t u = 0;
        bool ok = true;
        switch (k) {
        case K_OWNER:
            ok = owner_ok(v);
            if (ok)
                snprintf(r->owner, sizeof(r->owner), "%s", v);
            break;
        case K_OWNER_NAME:
        case K_VM:
            ok = text_ok(v);
            if (ok)
                snprintf(k == K_VM ? r->vm : r->owner_name, KVC_LEASE_NAME_MAX, "%s", v);
            break;
        case K_STATE:
            ok = !strcmp(v, "held") || !strcmp(v, "free");
            r->held = !strcmp(v, "held");
            break;
        case K_GEN:
            ok = parse_u64(v, UINT64_MAX, &r->generation);
            break;
        case K_HB:
            ok = parse_u64(v, UINT64_MAX, &r->heartbeat);
            break;
        case K_TIME:
            ok = parse_u64(v, INT64_MAX, &u);
            r->time_ms = (int64_t)u;
            break;
        case K_DUR:
            ok = parse_u64(v, KVC_LEASE_MAX_MS, &u) && u >= KVC_LEASE_MIN_MS;
            r->duration_ms = (uint32_t)u;
            break;
        }
        if (!ok) {
            seterr(err, errlen, "line %u: bad value for '%s'", line, key_names[k]);
            return -EBADMSG;
        }
    }
    if (!ended) {
        seterr(err, errlen, "truncated: no 'end' line");
        return -EBADMSG;
    }
    for (int k = 0; k < K_COUNT; k++) {
        if (!seen[k]) {
            seterr(err, errlen, "key '%s' missing", key_names[k]);
            return -EBADMSG;
        }
    }
    return 0;
}

int kvc_lease_read(const char *path, struct kvc_lease_record *r, char *err, size_t errlen)
{
    char buf[KVC_LEASE_FILE_MAX + 1];
    size_t len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        int e = errno;
        seterr(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    while (len < sizeof(buf)) {
        ssize_t n = read(fd, buf + len, sizeof(buf) - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            seterr(err, errlen, "%s: read: %s", path, strerror(e));
            return -e;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    char why[256];
    int rc = kvc_lease_parse(buf, len, r, why, sizeof(why));
    if (rc)
        seterr(err, errlen, "lease file %s is corrupt: %s", path, why);
    return rc;
}

/* Whole-file write: temporary file in the same folder, fsync, rename over
 * PATH, fsync the folder.  Readers see the old record or the new one. */
static int write_record(const char *path, const struct kvc_lease_record *r,
                        char *err, size_t errlen)
{
    char buf[KVC_LEASE_FILE_MAX], tmp[PATH_MAX + 96], dir[PATH_MAX];
    int n = kvc_lease_format(r, buf, sizeof(buf));
    if (n < 0) {
        seterr(err, errlen, "%s: cannot format the lease record", path);
        return n;
    }
    const char *slash = strrchr(path, '/');
    if (slash) {
        size_t dl = (size_t)(slash - path);
        if (dl >= sizeof(dir))
            return -ENAMETOOLONG;
        memcpy(dir, path, dl ? dl : 1);
        dir[dl ? dl : 1] = 0;
    } else {
        snprintf(dir, sizeof(dir), ".");
    }
    /* Unique per host (owner) and process: hosts share the folder. */
    if (snprintf(tmp, sizeof(tmp), "%s/.%s.%s.%d.tmp", dir, slash ? slash + 1 : path,
                 r->owner, (int)getpid()) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    int rc = 0;
    if (fd < 0) {
        rc = -errno;
        seterr(err, errlen, "%s: %s", tmp, strerror(-rc));
        return rc;
    }
    for (size_t off = 0; off < (size_t)n;) {
        ssize_t w = write(fd, buf + off, (size_t)n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = w < 0 ? -errno : -EIO;
            break;
        }
        off += (size_t)w;
    }
    if (!rc && fsync(fd) < 0)
        rc = -errno;
    if (close(fd) < 0 && !rc)
        rc = -errno;
    if (!rc && rename(tmp, path) < 0)
        rc = -errno;
    if (rc) {
        unlink(tmp);
        seterr(err, errlen, "write %s: %s", path, strerror(-rc));
        return rc;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

/* ---- the contender's judgement ----------------------------------------- */

enum kvc_lease_state kvc_lease_judge(const struct kvc_lease_record *rec, const char *me,
                                     struct kvc_lease_watch *w, int64_t now_wall,
                                     int64_t now_mono, int64_t *wait_ms)
{
    if (wait_ms)
        *wait_ms = 0;
    if (!rec) {
        if (w)
            w->valid = false;
        return KVC_LEASE_NONE;
    }
    if (!rec->held)
        return KVC_LEASE_FREE;
    if (me && !strcmp(rec->owner, me))
        return KVC_LEASE_MINE;
    int64_t d = rec->duration_ms;
    /* Wall clock: the last write is more than two durations old (one
     * duration of slack for clocks that disagree). */
    int64_t wall_left = rec->time_ms + 2 * d - now_wall;
    if (wall_left <= 0)
        return KVC_LEASE_EXPIRED;
    int64_t left = wall_left;
    if (w) {
        bool same = w->valid && !strcmp(w->owner, rec->owner) && w->generation == rec->generation
                    && w->heartbeat == rec->heartbeat && w->time_ms == rec->time_ms;
        if (!same) {
            w->valid = true;
            snprintf(w->owner, sizeof(w->owner), "%s", rec->owner);
            w->generation = rec->generation;
            w->heartbeat = rec->heartbeat;
            w->time_ms = rec->time_ms;
            w->since_mono_ms = now_mono;
        }
        /* Our own clock: the same record for longer than its duration. */
        int64_t mono_left = w->since_mono_ms + d + 1 - now_mono;
        if (mono_left <= 0)
            return KVC_LEASE_EXPIRED;
        if (mono_left < left)
            left = mono_left;
    }
    if (wait_ms)
        *wait_ms = left;
    return KVC_LEASE_LIVE;
}

/* ---- the contenders' lock file ------------------------------------------ */

static int lock_take(const char *path, const char *owner, char *err, size_t errlen)
{
    char lock[PATH_MAX + 8], tmp[PATH_MAX + 96], buf[128];
    if (snprintf(lock, sizeof(lock), "%s.lock", path) >= (int)sizeof(lock)
        || snprintf(tmp, sizeof(tmp), "%s.%s.%d", lock, owner, (int)getpid()) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    for (int attempt = 0; attempt < 3; attempt++) {
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
            int e = errno;
            seterr(err, errlen, "%s: %s", tmp, strerror(e));
            return -e;
        }
        int n = snprintf(buf, sizeof(buf), "%s %d %" PRId64 "\n", owner, (int)getpid(), wall_ms());
        bool wrote = write(fd, buf, (size_t)n) == n;
        close(fd);
        if (!wrote) {
            unlink(tmp);
            seterr(err, errlen, "%s: short write", tmp);
            return -EIO;
        }
        /* link(2) is atomic on NFS too; if its reply was lost, the link
         * count of our file tells whether it happened. */
        int rc = link(tmp, lock), e = errno;
        struct stat st;
        if (rc < 0 && stat(tmp, &st) == 0 && st.st_nlink == 2)
            rc = 0;
        unlink(tmp);
        if (rc == 0)
            return 0;
        if (e != EEXIST) {
            seterr(err, errlen, "%s: %s", lock, strerror(e));
            return -e;
        }
        /* Someone holds it: a contender mid-change, or one that died. */
        int64_t t = -1;
        fd = open(lock, O_RDONLY | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT)
            continue;               /* just released */
        if (fd >= 0) {
            ssize_t r = read(fd, buf, sizeof(buf) - 1);
            close(fd);
            if (r > 0) {
                buf[r] = 0;
                const char *sp = strrchr(buf, ' ');
                if (sp)
                    t = strtoll(sp + 1, NULL, 10);
            }
        }
        if (t < 0 && stat(lock, &st) == 0)
            t = (int64_t)st.st_mtime * 1000;
        if (t >= 0 && wall_ms() - t > LOCK_STALE_MS) {
            char stale[PATH_MAX + 96];
            snprintf(stale, sizeof(stale), "%s.stale.%s.%d", lock, owner, (int)getpid());
            if (rename(lock, stale) == 0) {
                kvc_warn("%s: broke a lock file left behind %" PRId64 " ms ago", lock, wall_ms() - t);
                unlink(stale);
            }
            continue;
        }
        seterr(err, errlen, "%s: another host is changing the lease right now", path);
        return -EAGAIN;
    }
    seterr(err, errlen, "%s: could not take the lease lock", path);
    return -EAGAIN;
}

static void lock_release(const char *path)
{
    char lock[PATH_MAX + 8];
    snprintf(lock, sizeof(lock), "%s.lock", path);
    if (unlink(lock) < 0 && errno != ENOENT)
        kvc_warn("%s: %s", lock, strerror(errno));
}

/* ---- acquire ------------------------------------------------------------ */

static int check_opts(const struct kvc_lease_opts *o, char *err, size_t errlen)
{
    if (!o || !o->path || !o->path[0] || strlen(o->path) >= PATH_MAX - 64) {
        seterr(err, errlen, "lease: no or too long path");
        return -EINVAL;
    }
    if (!owner_ok(o->owner)) {
        seterr(err, errlen, "lease: owner id '%.70s' must be 1..%d of [A-Za-z0-9._-]",
               o->owner ? o->owner : "", KVC_LEASE_OWNER_MAX - 1);
        return -EINVAL;
    }
    if (o->duration_ms && (o->duration_ms < KVC_LEASE_MIN_MS || o->duration_ms > KVC_LEASE_MAX_MS)) {
        seterr(err, errlen, "lease: duration %u ms out of range (%u..%u)", o->duration_ms,
               KVC_LEASE_MIN_MS, KVC_LEASE_MAX_MS);
        return -EINVAL;
    }
    return 0;
}

static void busy_message(const struct kvc_lease_record *r, const char *path, int64_t wait,
                         char *err, size_t errlen)
{
    int64_t age = wall_ms() - r->time_ms;
    seterr(err, errlen, "VM %s is running on host %s (%s): its lease %s is live "
           "(generation %" PRIu64 ", renewed %" PRId64 " ms ago, duration %u ms; "
           "it expires if not renewed within %" PRId64 " ms)",
           r->vm[0] ? r->vm : "?", r->owner_name[0] ? r->owner_name : r->owner, r->owner, path,
           r->generation, age < 0 ? 0 : age, r->duration_ms, wait);
}

int kvc_lease_acquire(const struct kvc_lease_opts *o, struct kvc_lease **out,
                      struct kvc_lease_record *holder, char *err, size_t errlen)
{
    struct kvc_lease_record cur;
    char why[PATH_MAX + 256];
    int rc;

    *out = NULL;
    if ((rc = check_opts(o, err, errlen)))
        return rc;
    struct kvc_lease *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    snprintf(l->path, sizeof(l->path), "%s", o->path);
    if ((rc = lock_take(o->path, o->owner, err, errlen))) {
        free(l);
        return rc;
    }
    rc = kvc_lease_read(o->path, &cur, why, sizeof(why));
    if (rc && rc != -ENOENT) {
        if (rc == -EBADMSG)
            seterr(err, errlen, "%s (if no host runs this VM, remove the file)", why);
        else
            seterr(err, errlen, "%s", why);
        goto out;
    }
    bool exists = rc == 0;
    int64_t wait = 0;
    enum kvc_lease_state st = kvc_lease_judge(exists ? &cur : NULL, o->owner, o->watch,
                                              wall_ms(), mono_ms(), &wait);
    if (st == KVC_LEASE_LIVE && o->force) {
        kvc_warn("%s: taking over the live lease of host %s (%s), generation %" PRIu64
                 " (forced hand-over)", o->path, cur.owner_name, cur.owner, cur.generation);
    } else if (st == KVC_LEASE_LIVE) {
        if (holder)
            *holder = cur;
        busy_message(&cur, o->path, wait, err, errlen);
        rc = -EBUSY;
        goto out;
    }
    if (st == KVC_LEASE_EXPIRED)
        kvc_warn("%s: taking over the expired lease of host %s (%s), generation %" PRIu64,
                 o->path, cur.owner_name, cur.owner, cur.generation);
    struct kvc_lease_record *r = &l->rec;
    snprintf(r->owner, sizeof(r->owner), "%s", o->owner);
    copy_text(r->owner_name, o->owner_name);
    copy_text(r->vm, o->vm);
    r->held = true;
    r->generation = exists ? cur.generation + 1 : 1;
    r->heartbeat = 0;
    r->duration_ms = o->duration_ms ? o->duration_ms : KVC_LEASE_DEFAULT_MS;
    int64_t start = mono_ms();
    r->time_ms = wall_ms();
    if ((rc = write_record(o->path, r, err, errlen)))
        goto out;
    l->last_ok_mono = start;
    if (o->watch)
        o->watch->valid = false;
    *out = l;
    l = NULL;
out:
    lock_release(o->path);
    free(l);
    return rc;
}

int kvc_lease_acquire_wait(const struct kvc_lease_opts *o, uint32_t max_wait_ms,
                           struct kvc_lease **out, struct kvc_lease_record *holder,
                           char *err, size_t errlen)
{
    struct kvc_lease_watch local = { 0 };
    struct kvc_lease_opts oo = *o;
    int64_t end = mono_ms() + max_wait_ms;
    if (!oo.watch)
        oo.watch = &local;
    for (;;) {
        int rc = kvc_lease_acquire(&oo, out, holder, err, errlen);
        if (rc != -EBUSY && rc != -EAGAIN)
            return rc;
        int64_t left = end - mono_ms();
        if (left <= 0)
            return rc;
        int64_t step = rc == -EAGAIN ? 20 : (o->duration_ms ? o->duration_ms : KVC_LEASE_DEFAULT_MS) / 5;
        if (step > left)
            step = left;
        struct timespec ts = { (time_t)(step / 1000), (long)(step % 1000) * 1000000 };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
    }
}

/* ---- the holder --------------------------------------------------------- */

uint32_t kvc_lease_renew_interval_ms(const struct kvc_lease *l)
{
    return l->rec.duration_ms / 5;
}

uint64_t kvc_lease_generation(const struct kvc_lease *l)
{
    return l->rec.generation;
}

const char *kvc_lease_path(const struct kvc_lease *l)
{
    return l->path;
}

bool kvc_lease_lost(const struct kvc_lease *l)
{
    return l->lost || l->transferred;
}

bool kvc_lease_transferred(const struct kvc_lease *l)
{
    return l->transferred;
}

/* The holder's fence: read the file back and make sure it is still ours.
 * 0: ours (l->rec is what is on disk); -ESTALE: lost (l->lost set);
 * another error: could not tell. */
static int verify(struct kvc_lease *l, int64_t now, struct kvc_lease_record *holder,
                  char *err, size_t errlen)
{
    struct kvc_lease_record cur;
    char why[PATH_MAX + 256];

    if (l->transferred) {
        seterr(err, errlen, "%s: the lease was handed over", l->path);
        return -ESTALE;
    }
    if (l->lost) {
        seterr(err, errlen, "%s: the lease was lost", l->path);
        return -ESTALE;
    }
    int64_t age = now - l->last_ok_mono;
    if (age > (int64_t)l->rec.duration_ms * 3 / 5) {
        l->lost = true;
        seterr(err, errlen, "%s: not renewed for %" PRId64 " ms (more than 3/5 of the %u ms "
               "duration): another host may take it over, giving it up",
               l->path, age, l->rec.duration_ms);
        return -ESTALE;
    }
    int rc = kvc_lease_read(l->path, &cur, why, sizeof(why));
    if (rc == -ENOENT) {
        l->lost = true;
        seterr(err, errlen, "%s: the lease file was removed", l->path);
        return -ESTALE;
    }
    if (rc) {
        /* Unreadable or corrupt: we cannot prove it is ours, so do not
         * write over it; the age check above ends this. */
        seterr(err, errlen, "%s", why);
        return rc;
    }
    const struct kvc_lease_record *m = &l->rec;
    bool same = cur.held && !strcmp(cur.owner, m->owner) && cur.generation == m->generation
                && (cur.heartbeat == m->heartbeat || (l->pending && cur.heartbeat == m->heartbeat + 1));
    if (!same) {
        l->lost = true;
        if (holder)
            *holder = cur;
        if (!cur.held)
            seterr(err, errlen, "%s: the lease was released by someone else (generation %"
                   PRIu64 ")", l->path, cur.generation);
        else
            seterr(err, errlen, "%s: the lease is now held by host %s (%s), generation %" PRIu64
                   " (ours was %" PRIu64 ")", l->path, cur.owner_name, cur.owner,
                   cur.generation, m->generation);
        return -ESTALE;
    }
    l->rec.heartbeat = cur.heartbeat;
    l->pending = false;
    return 0;
}

/* The holder's read-check-write goes under the contenders' lock too: a
 * takeover written between our check and our write would otherwise be
 * overwritten by our renewal, and both hosts would believe they hold it.
 * A lock held by someone else is a renewal that did not happen this time
 * (the next one checks again, and sees the takeover if there was one). */
int kvc_lease_renew(struct kvc_lease *l, struct kvc_lease_record *holder, char *err, size_t errlen)
{
    int64_t now = mono_ms();
    int rc = lock_take(l->path, l->rec.owner, err, errlen);
    if (rc) {
        l->pending = true;
        return rc;
    }
    rc = verify(l, now, holder, err, errlen);
    if (rc) {
        lock_release(l->path);
        return rc;
    }
    struct kvc_lease_record next = l->rec;
    next.heartbeat++;
    next.time_ms = wall_ms();
    rc = write_record(l->path, &next, err, errlen);
    lock_release(l->path);
    if (rc) {
        l->pending = true;
        return rc;
    }
    l->rec = next;
    l->last_ok_mono = now;
    return 0;
}

void kvc_lease_free(struct kvc_lease *l)
{
    free(l);
}

int kvc_lease_release(struct kvc_lease *l)
{
    char err[PATH_MAX + 256];
    if (!l)
        return 0;
    int rc = lock_take(l->path, l->rec.owner, err, sizeof(err));
    if (!rc) {
        rc = verify(l, mono_ms(), NULL, err, sizeof(err));
        if (!rc) {
            struct kvc_lease_record next = l->rec;
            next.held = false;
            next.generation++;
            next.heartbeat = 0;
            next.time_ms = wall_ms();
            rc = write_record(l->path, &next, err, sizeof(err));
        }
        lock_release(l->path);
    }
    if (rc && rc != -ESTALE)
        kvc_warn("release: %s", err);
    free(l);
    return rc;
}

int kvc_lease_transfer(struct kvc_lease *l, const char *new_owner, const char *new_owner_name,
                       uint64_t *new_generation, char *err, size_t errlen)
{
    if (!owner_ok(new_owner)) {
        seterr(err, errlen, "lease: owner id '%.70s' must be 1..%d of [A-Za-z0-9._-]",
               new_owner ? new_owner : "", KVC_LEASE_OWNER_MAX - 1);
        return -EINVAL;
    }
    int rc = lock_take(l->path, l->rec.owner, err, errlen);
    if (rc)
        return rc;
    rc = verify(l, mono_ms(), NULL, err, errlen);
    if (rc) {
        lock_release(l->path);
        return rc;
    }
    struct kvc_lease_record next = l->rec;
    snprintf(next.owner, sizeof(next.owner), "%s", new_owner);
    copy_text(next.owner_name, new_owner_name);
    next.generation++;
    next.heartbeat = 0;
    next.time_ms = wall_ms();
    rc = write_record(l->path, &next, err, errlen);
    lock_release(l->path);
    if (rc) {
        /* Unknown whether it landed: stop renewing either way would strand
         * the VM; keep holding, the next renewal's check tells. */
        l->pending = false;
        return rc;
    }
    l->transferred = true;
    kvc_info("%s: handed over to host %s (%s), generation %" PRIu64, l->path,
             next.owner_name, next.owner, next.generation);
    if (new_generation)
        *new_generation = next.generation;
    return 0;
}

int kvc_lease_adopt(const struct kvc_lease_opts *o, uint64_t generation,
                    struct kvc_lease **out, char *err, size_t errlen)
{
    struct kvc_lease_record cur;
    char why[PATH_MAX + 256];
    int rc;

    *out = NULL;
    if ((rc = check_opts(o, err, errlen)))
        return rc;
    int64_t now = mono_ms(), wall = wall_ms();
    if ((rc = kvc_lease_read(o->path, &cur, why, sizeof(why)))) {
        seterr(err, errlen, "%s", why);
        return rc;
    }
    if (!cur.held || strcmp(cur.owner, o->owner) || cur.generation != generation) {
        seterr(err, errlen, "%s: not handed to us: %s by %s (%s), generation %" PRIu64
               " (expected %s, generation %" PRIu64 ")", o->path, cur.held ? "held" : "free",
               cur.owner_name, cur.owner, cur.generation, o->owner, generation);
        return -ESTALE;
    }
    struct kvc_lease *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    snprintf(l->path, sizeof(l->path), "%s", o->path);
    l->rec = cur;
    /* Count from the hand-over's write, not from now. */
    int64_t age = wall - cur.time_ms;
    if (age < 0)
        age = 0;
    if (age > cur.duration_ms)
        age = cur.duration_ms;
    l->last_ok_mono = now - age;
    *out = l;
    return 0;
}

int kvc_lease_release_owned(const char *path, const char *owner, char *err, size_t errlen)
{
    struct kvc_lease_record cur;
    int rc;

    if (!owner_ok(owner)) {
        seterr(err, errlen, "lease: bad owner id");
        return -EINVAL;
    }
    if ((rc = lock_take(path, owner, err, errlen)))
        return rc;
    rc = kvc_lease_read(path, &cur, err, errlen);
    if (rc == -ENOENT) {
        rc = 0;
    } else if (rc == 0 && cur.held && !strcmp(cur.owner, owner)) {
        cur.held = false;
        cur.generation++;
        cur.heartbeat = 0;
        cur.time_ms = wall_ms();
        rc = write_record(path, &cur, err, errlen);
    }
    lock_release(path);
    return rc;
}
