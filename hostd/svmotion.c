/* Storage migration on the host: VM_STORAGE_MOVE* (proto/host.proto; docs
 * storage-migration.md).  The VM's folder <ds>/<name> moves to another
 * datastore of this host, <ds2>/<name>; the VM may be powered on.
 *
 * The copy takes the time it would take: its allocated bytes (at least
 * the provisioned disk size the sim reports) at the request's bandwidth
 * (default SVM_DEFAULT_BW); progress and cancel act during that time.
 * When it has passed, hostd copies the folder's files (sparse), writes the
 * config in the new folder, lets the backend re-point what it holds open
 * (the sim's lease), saves the registry (the commit: from here the new
 * folder is the VM), announces the change (the VM's datastore in vpxd's
 * inventory) and removes the old folder.  Before the registry is saved
 * every failure removes the partial copy and leaves the VM as it was.
 *
 * A powered-on VM of the kvm backend moves with its guest running: vmx
 * copies the disk (VMX_DISK_MOVE, the request's bandwidth; its progress is
 * the move's), then re-points its lease, serial log and log at the new
 * folder (VMX_FOLDER_MOVE); hostd copies the rest (config, snapshot files:
 * each to a temporary name, then renamed, so a file of its name in the
 * target is whole), writes the config there and saves the registry (the
 * commit).  A cancel stops vmx's copy; the VM stays where it was.  Crash
 * safety: a journal <name>.svmotion in both folders names them; at start
 * (hostd_svmotion_recover) a move whose registry entry still names the old
 * folder rolls forward if vmx's copy committed (the disk is in the target,
 * no <disk>.moving marker), else back (the target goes); one that committed
 * only loses its old folder. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "lease.h"
#include "log.h"
#include "rpc.h"
#include "hostd/backend.h"
#include "hostd/hostd.h"

KVC_LOG_MODULE(svmotion);

#define SVM_DEFAULT_BW 1000000000.0     /* bytes/s: datastore to datastore */
#define SVM_MIN_MS 200                  /* so that progress and cancel are seen */
#define SVM_TICK_MS 100
#define SVM_KEEP_DONE 64                /* finished records kept for STATUS */
#define COPY_BUF (1024u * 1024)
#define SVM_RETRY_MS 1000               /* a failed step after vmx's commit is retried */
#define JOURNAL_EXT ".svmotion"
#define PART_EXT ".svmpart"             /* a file being copied into the target */

#define FAIL(...) do { kvc_rpc_reply_error(call, __VA_ARGS__); return; } while (0)

struct svm_move {
    struct svm_move *next;
    struct hostd_host *h;
    char uuid[HOSTD_UUID_LEN];
    char from_ds[256], to_ds[256];
    char old_dir[PATH_MAX], new_dir[PATH_MAX], new_config[PATH_MAX];
    Kvc__Host__StorageMovePhase phase;
    int err;
    char msg[512];
    int64_t start_ms, total_ms;
    uint64_t total_bytes;
    bool cancel;
    struct event *ev;
    /* A powered-on VM whose backend moves the disk (kvm: vmx). */
    const struct hostd_svm_ops *be;
    enum { SVM_DISK, SVM_FOLDER, SVM_FILES } stage;
    unsigned id;                        /* tells a callback its move */
    bool out, cancel_sent;
    uint32_t percent;
    uint64_t copied;
    int64_t next_try_ms;
    unsigned errors;                    /* progress polls in a row without an answer */
};

static struct svm_move *moves;
static unsigned next_id;

/* Bytes/s of vmx's copy when the request names none: KVC_HOSTD_SVM_BANDWIDTH
 * if set (an operator's cap; tests slow the copy down with it), else DFLT
 * (0: no limit).  The modelled copy (sim, powered-off VMs) keeps its own. */
static uint64_t
default_bw(uint64_t dflt)
{
    const char *e = getenv("KVC_HOSTD_SVM_BANDWIDTH");
    char *end;
    unsigned long long v;

    if (!e || !*e)
        return dflt;
    v = strtoull(e, &end, 10);
    return *end || !v ? dflt : (uint64_t)v;
}

static struct svm_move *
find(struct hostd_host *h, const char *uuid)
{
    for (struct svm_move *m = moves; m; m = m->next)
        if (m->h == h && !strcasecmp(m->uuid, uuid))
            return m;
    return NULL;
}

static void
unlink_move(struct svm_move *m)
{
    struct svm_move **pp;

    for (pp = &moves; *pp && *pp != m; pp = &(*pp)->next)
        ;
    if (*pp)
        *pp = m->next;
    if (m->ev)
        event_free(m->ev);
    free(m);
}

/* Drop the oldest finished records beyond SVM_KEEP_DONE. */
static void
trim(const struct svm_move *keep)
{
    unsigned n = 0;
    struct svm_move *last = NULL;

    for (struct svm_move *m = moves; m; m = m->next)
        if (m != keep && m->phase != KVC__HOST__STORAGE_MOVE_PHASE__STORAGE_MOVE_RUNNING) {
            n++;
            last = m;
        }
    if (n > SVM_KEEP_DONE && last)
        unlink_move(last);      /* newest first: the last is the oldest */
}

static void
reply_status(struct kvc_rpc_call *call, const struct svm_move *m)
{
    Kvc__Host__StorageMoveStatus r = KVC__HOST__STORAGE_MOVE_STATUS__INIT;
    int64_t el;

    if (m) {
        r.phase = m->phase;
        r.from_datastore = (char *)m->from_ds;
        r.to_datastore = (char *)m->to_ds;
        r.total_bytes = m->total_bytes;
        if (m->phase == KVC__HOST__STORAGE_MOVE_PHASE__STORAGE_MOVE_COMPLETED) {
            r.percent = 100;
            r.copied_bytes = m->total_bytes;
        } else if (m->phase == KVC__HOST__STORAGE_MOVE_PHASE__STORAGE_MOVE_RUNNING && m->be) {
            r.percent = m->percent > 99 ? 99 : m->percent;
            r.copied_bytes = m->copied;
        } else if (m->phase == KVC__HOST__STORAGE_MOVE_PHASE__STORAGE_MOVE_RUNNING) {
            el = hostd_now_ms() - m->start_ms;
            r.percent = m->total_ms > 0 ? (uint32_t)(el * 100 / m->total_ms) : 0;
            if (r.percent > 99)
                r.percent = 99;
            r.copied_bytes = m->total_bytes / 100 * r.percent;
        }
        r.error = m->err < 0 ? -m->err : m->err;
        r.message = (char *)m->msg;
    }
    kvc_rpc_reply(call, &r.base);
}

/* ---- the folder copy ---- */

static int
fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;

    if (fd < 0)
        return -errno;
    rc = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

static int
copy_file(const char *from, const char *to, mode_t mode, char *buf)
{
    int s = -1, d = -1, rc = 0;
    struct stat st;
    off_t off = 0;

    if ((s = open(from, O_RDONLY | O_CLOEXEC)) < 0 || fstat(s, &st) < 0) {
        rc = -errno;
        goto out;
    }
    if ((d = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode & 0777)) < 0 ||
        ftruncate(d, st.st_size) < 0) {
        rc = -errno;
        goto out;
    }
    while (off < st.st_size) {          /* data extents only: holes stay holes */
        off_t data = lseek(s, off, SEEK_DATA), hole;
        if (data < 0) {
            if (errno != ENXIO)
                rc = -errno;
            break;
        }
        hole = lseek(s, data, SEEK_HOLE);
        if (hole < 0 || hole > st.st_size)
            hole = st.st_size;
        while (data < hole) {
            size_t n = (size_t)(hole - data) < COPY_BUF ? (size_t)(hole - data) : COPY_BUF;
            ssize_t r = pread(s, buf, n, data);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                rc = r < 0 ? -errno : -EIO;
                goto out;
            }
            for (ssize_t w = 0; w < r;) {
                ssize_t k = pwrite(d, buf + w, (size_t)(r - w), data + w);
                if (k < 0 && errno == EINTR)
                    continue;
                if (k <= 0) {
                    rc = k < 0 ? -errno : -EIO;
                    goto out;
                }
                w += k;
            }
            data += r;
        }
        off = hole;
    }
    if (!rc && fsync(d) < 0)
        rc = -errno;
out:
    if (s >= 0)
        close(s);
    if (d >= 0)
        close(d);
    return rc;
}

/* Remove the regular files of DIR, then DIR. */
static void
remove_folder(const char *dir)
{
    DIR *dp = opendir(dir);
    struct dirent *e;
    char p[PATH_MAX];

    if (!dp)
        return;
    while ((e = readdir(dp))) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
            continue;
        if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, e->d_name) < sizeof p)
            unlink(p);
    }
    closedir(dp);
    if (rmdir(dir) < 0)
        kvc_warn("storage move: %s not removed: %s", dir, strerror(errno));
}

/* Bytes the folder's files take (allocated, not apparent). */
static uint64_t
folder_bytes(const char *dir)
{
    DIR *dp = opendir(dir);
    struct dirent *e;
    struct stat st;
    char p[PATH_MAX];
    uint64_t n = 0;

    if (!dp)
        return 0;
    while ((e = readdir(dp)))
        if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, e->d_name) < sizeof p &&
            stat(p, &st) == 0 && S_ISREG(st.st_mode))
            n += (uint64_t)st.st_blocks * 512;
    closedir(dp);
    return n;
}

static int copy_rest(const char *from, const char *to, const char *name, char *why, size_t wl);

/* A new folder TO with FROM's regular files (each whole under its name
 * only once complete, as copy_rest does). */
static int
copy_folder(const char *from, const char *to, char *why, size_t wl)
{
    int rc;

    if (mkdir(to, 0755) < 0) {
        rc = -errno;
        snprintf(why, wl, "%s: %s", to, strerror(errno));
        return rc;
    }
    return copy_rest(from, to, NULL, why, wl);
}

static void
finish(struct svm_move *m, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void
finish(struct svm_move *m, int err, const char *fmt, ...)
{
    struct hostd_vm *vm = hostd_vm_find(m->h, m->uuid);
    va_list ap;

    if (m->ev)
        event_del(m->ev);
    if (vm)
        vm->busy = false;
    m->err = err;
    if (fmt) {
        va_start(ap, fmt);
        vsnprintf(m->msg, sizeof m->msg, fmt, ap);
        va_end(ap);
    }
    m->phase = !err ? KVC__HOST__STORAGE_MOVE_PHASE__STORAGE_MOVE_COMPLETED
             : err == -ECANCELED ? KVC__HOST__STORAGE_MOVE_PHASE__STORAGE_MOVE_CANCELLED
             : KVC__HOST__STORAGE_MOVE_PHASE__STORAGE_MOVE_FAILED;
    if (err)
        kvc_warn("%s: STORAGE-MOVE vm=%s from=%s to=%s %s: %s", m->h->name, m->uuid, m->from_ds,
                 m->to_ds, err == -ECANCELED ? "cancelled" : "failed", m->msg);
    else
        kvc_info("%s: STORAGE-MOVE vm=%s from=%s to=%s completed bytes=%llu ms=%lld", m->h->name,
                 m->uuid, m->from_ds, m->to_ds, (unsigned long long)m->total_bytes,
                 (long long)(hostd_now_ms() - m->start_ms));
    trim(m);
}

/* The modelled copy time has passed: move the files and switch. */
static void
switch_over(struct svm_move *m, struct hostd_vm *vm)
{
    struct hostd_host *h = m->h;
    char why[3 * PATH_MAX + 256] = "", old_config[PATH_MAX];
    char *old_ds = vm->datastore, *new_ds = strdup(m->to_ds);
    int rc;

    if (!new_ds)
        return finish(m, -ENOMEM, "out of memory");
    if ((rc = copy_folder(m->old_dir, m->new_dir, why, sizeof why)) < 0) {
        free(new_ds);
        if (rc != -EEXIST)
            remove_folder(m->new_dir);
        return finish(m, rc, "%s", why);
    }
    snprintf(old_config, sizeof old_config, "%s", vm->config);
    vm->datastore = new_ds;
    snprintf(vm->dir, sizeof vm->dir, "%s", m->new_dir);
    snprintf(vm->config, sizeof vm->config, "%s", m->new_config);
    rc = vmstore_write_config(h, vm);
    if (!rc && h->be->storage_moved)
        rc = h->be->storage_moved(h, vm, m->old_dir, why, sizeof why);
    else if (rc)
        snprintf(why, sizeof why, "writing the config in %s: %s", m->new_dir, strerror(-rc));
    if (!rc && (rc = vmstore_save_registry(h)) < 0)
        snprintf(why, sizeof why, "saving the registry: %s", strerror(-rc));
    if (rc) {
        /* Back to the old folder, untouched; the copy goes. */
        vm->datastore = old_ds;
        free(new_ds);
        snprintf(vm->dir, sizeof vm->dir, "%s", m->old_dir);
        snprintf(vm->config, sizeof vm->config, "%s", old_config);
        if (h->be->storage_moved)
            h->be->storage_moved(h, vm, m->new_dir, NULL, 0);
        vmstore_save_registry(h);
        remove_folder(m->new_dir);
        return finish(m, rc, "%s", why);
    }
    free(old_ds);
    remove_folder(m->old_dir);
    finish(m, 0, NULL);
    hostd_vm_changed(h, vm, false);     /* vpxd: the VM's datastore */
}

/* ---- a running VM whose backend moves the disk (kvm) ---- */

/* <dir>/<name>.svmotion: "kvc-svmotion 1", source=, target=, datastore=. */
static int
journal_path(char *buf, size_t len, const char *dir, const char *name)
{
    return (size_t)snprintf(buf, len, "%s/%s" JOURNAL_EXT, dir, name) >= len ? -ENAMETOOLONG : 0;
}

static int
journal_write(const char *dir, const struct svm_move *m, const char *name)
{
    char p[PATH_MAX + 96], tmp[PATH_MAX + 104];
    FILE *f;
    int rc = 0;

    if (journal_path(p, sizeof p, dir, name) ||
        (size_t)snprintf(tmp, sizeof tmp, "%s.tmp", p) >= sizeof tmp)
        return -ENAMETOOLONG;
    if (!(f = fopen(tmp, "w")))
        return -errno;
    fprintf(f, "kvc-svmotion 1\nsource=%s\ntarget=%s\ndatastore=%s\n", m->old_dir, m->new_dir,
            m->to_ds);
    if (fflush(f) || fsync(fileno(f)))
        rc = -errno;
    if (fclose(f) && !rc)
        rc = -errno;
    if (!rc && rename(tmp, p) < 0)
        rc = -errno;
    if (rc)
        unlink(tmp);
    return rc ? rc : fsync_dir(dir);
}

static void
take(char *dst, const char *v)
{
    size_t n = strlen(v);

    if (n >= PATH_MAX)
        n = 0;                  /* too long: read as missing */
    memcpy(dst, v, n);
    dst[n] = 0;
}

/* 0 with SOURCE, TARGET and DS (each PATH_MAX) filled; -ENOENT: none. */
static int
journal_read(const char *dir, const char *name, char *source, char *target, char *ds)
{
    char p[PATH_MAX + 96], line[PATH_MAX + 16];
    FILE *f;
    bool magic = false;

    source[0] = target[0] = ds[0] = 0;
    if (journal_path(p, sizeof p, dir, name))
        return -ENAMETOOLONG;
    if (!(f = fopen(p, "r")))
        return -errno;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (!strcmp(line, "kvc-svmotion 1"))
            magic = true;
        else if (!strncmp(line, "source=", 7))
            take(source, line + 7);
        else if (!strncmp(line, "target=", 7))
            take(target, line + 7);
        else if (!strncmp(line, "datastore=", 10))
            take(ds, line + 10);
    }
    fclose(f);
    return magic && source[0] == '/' && target[0] == '/' && ds[0] ? 0 : -EBADMSG;
}

static void
journal_drop(const char *dir, const char *name)
{
    char p[PATH_MAX + 96];

    if (!journal_path(p, sizeof p, dir, name) && unlink(p) == 0)
        fsync_dir(dir);
}

/* Copy the regular files of FROM that TO does not hold yet (vmx moved the
 * disk, its lease and logs there already), each to a temporary name and
 * renamed once whole: after a crash a file of its name in TO is complete,
 * and a second run copies only what is missing.  The journal of NAME's
 * move stays (NAME NULL: no journal). */
static int
copy_rest(const char *from, const char *to, const char *name, char *why, size_t wl)
{
    DIR *dp;
    struct dirent *e;
    struct stat st;
    char sp[PATH_MAX], dp2[PATH_MAX], part[PATH_MAX + 16], jn[256];
    char *buf = malloc(COPY_BUF);
    int rc = 0;

    if (!buf)
        return -ENOMEM;
    snprintf(jn, sizeof jn, "%s" JOURNAL_EXT, name ? name : "");
    if (!(dp = opendir(from))) {
        rc = -errno;
        snprintf(why, wl, "%s: %s", from, strerror(errno));
        free(buf);
        return rc;
    }
    while (!rc && (e = readdir(dp))) {
        size_t n = strlen(e->d_name);
        if (!strcmp(e->d_name, jn) ||
            (n > strlen(PART_EXT) && !strcmp(e->d_name + n - strlen(PART_EXT), PART_EXT)))
            continue;
        if ((size_t)snprintf(sp, sizeof sp, "%s/%s", from, e->d_name) >= sizeof sp ||
            (size_t)snprintf(dp2, sizeof dp2, "%s/%s", to, e->d_name) >= sizeof dp2) {
            rc = -ENAMETOOLONG;
            snprintf(why, wl, "%s/%s: path too long", from, e->d_name);
            break;
        }
        if (lstat(sp, &st) < 0 || !S_ISREG(st.st_mode) || lstat(dp2, &st) == 0)
            continue;
        if (lstat(sp, &st) < 0)
            continue;
        snprintf(part, sizeof part, "%s" PART_EXT, dp2);
        unlink(part);                   /* left by a crash */
        if ((rc = copy_file(sp, part, st.st_mode, buf)) < 0 ||
            (rename(part, dp2) < 0 && (rc = -errno) < 0)) {
            unlink(part);
            snprintf(why, wl, "copying %s to %s: %s", sp, to, strerror(-rc));
        }
    }
    closedir(dp);
    free(buf);
    if (!rc && (rc = fsync_dir(to)) < 0)
        snprintf(why, wl, "%s: fsync: %s", to, strerror(-rc));
    return rc;
}

/* The disk and what vmx keeps open are in NEW_DIR: copy the rest, write
 * the config there, save the registry (the commit), drop the old folder.
 * Before the commit a failure puts the VM's paths back (the move can be
 * tried again: nothing in the old folder changed). */
static int
commit_files(struct hostd_host *h, struct hostd_vm *vm, const char *old_dir,
             const char *new_dir, const char *to_ds, char *why, size_t wl)
{
    char old_config[PATH_MAX], new_config[PATH_MAX];
    char *old_ds = vm->datastore, *new_ds;
    int rc;

    if ((size_t)snprintf(new_config, sizeof new_config, "%s/%s.vmx", new_dir, vm->name)
        >= sizeof new_config) {
        snprintf(why, wl, "path too long");
        return -ENAMETOOLONG;
    }
    if ((rc = copy_rest(old_dir, new_dir, vm->name, why, wl)) < 0)
        return rc;
    if (!(new_ds = strdup(to_ds))) {
        snprintf(why, wl, "out of memory");
        return -ENOMEM;
    }
    snprintf(old_config, sizeof old_config, "%s", vm->config);
    vm->datastore = new_ds;
    snprintf(vm->dir, sizeof vm->dir, "%s", new_dir);
    snprintf(vm->config, sizeof vm->config, "%s", new_config);
    if ((rc = vmstore_write_config(h, vm)) < 0)
        snprintf(why, wl, "writing the config in %s: %s", new_dir, strerror(-rc));
    else if ((rc = vmstore_save_registry(h)) < 0)
        snprintf(why, wl, "saving the registry: %s", strerror(-rc));
    if (rc) {
        vm->datastore = old_ds;
        free(new_ds);
        snprintf(vm->dir, sizeof vm->dir, "%s", old_dir);
        snprintf(vm->config, sizeof vm->config, "%s", old_config);
        vmstore_save_registry(h);
        return rc;
    }
    free(old_ds);
    remove_folder(old_dir);
    journal_drop(new_dir, vm->name);
    return 0;
}

/* Before vmx's commit: the VM stays where it was; the target goes. */
static void
roll_back(const char *old_dir, const char *new_dir, const char *name)
{
    remove_folder(new_dir);
    journal_drop(old_dir, name);
}

struct svm_ref {
    struct hostd_host *h;
    char uuid[HOSTD_UUID_LEN];
    unsigned id;
};

static struct svm_ref *
ref_new(struct svm_move *m)
{
    struct svm_ref *r = calloc(1, sizeof *r);

    if (r) {
        r->h = m->h;
        r->id = m->id;
        snprintf(r->uuid, sizeof r->uuid, "%s", m->uuid);
    }
    return r;
}

/* The move REF stands for, if it still runs; frees REF. */
static struct svm_move *
ref_take(struct svm_ref *r)
{
    struct svm_move *m = NULL;

    for (struct svm_move *x = moves; x; x = x->next)
        if (x->h == r->h && x->id == r->id && !strcasecmp(x->uuid, r->uuid))
            m = x;
    free(r);
    if (m && m->phase != KVC__HOST__STORAGE_MOVE_PHASE__STORAGE_MOVE_RUNNING)
        return NULL;
    if (m)
        m->out = false;
    return m;
}

static void
arm(struct svm_move *m, int ms)
{
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

    event_add(m->ev, &tv);
}

/* The target holds the whole disk: vmx's commit happened (its base is
 * there, its <base>.moving marker is not).  A VM without a disk: vmx's
 * lease is there. */
static bool
disk_committed(const struct hostd_vm *vm, const char *dir)
{
    char p[PATH_MAX + 96];
    struct stat st;
    struct kvc_lease_record lr;

    if (vm->disk_bytes < 512) {
        snprintf(p, sizeof p, "%s/%s.lck", dir, vm->name);
        return kvc_lease_read(p, &lr, NULL, 0) == 0 && lr.held;
    }
    snprintf(p, sizeof p, "%s/%s.img.moving", dir, vm->name);
    if (lstat(p, &st) == 0)
        return false;
    snprintf(p, sizeof p, "%s/%s.img", dir, vm->name);
    return lstat(p, &st) == 0;
}

#define SVM_MAX_ERRORS 50       /* progress polls vmx did not answer: it is gone */

static void
apply_progress(struct svm_move *m, const struct hostd_svm_progress *p)
{
    struct hostd_vm *vm = hostd_vm_find(m->h, m->uuid);

    m->errors = 0;
    m->total_bytes = p->total ? p->total : m->total_bytes;
    m->copied = p->copied;
    switch (p->phase) {
    case HOSTD_SVM_COPYING:
        m->percent = p->percent * 90 / 100;
        return;
    case HOSTD_SVM_COMPLETED:
        /* vmx switched to the copy: from here the move only goes forward. */
        m->percent = 90;
        m->stage = SVM_FOLDER;
        kvc_info("%s: STORAGE-MOVE vm=%s disk in %s", m->h->name, m->uuid, m->new_dir);
        return;
    default:
        roll_back(m->old_dir, m->new_dir, vm ? vm->name : "");
        finish(m, m->cancel || p->phase == HOSTD_SVM_CANCELLED ? -ECANCELED : -EIO,
               "%s", p->error);
        return;
    }
}

static void
on_be_progress(int err, const char *msg, const struct hostd_svm_progress *p, void *ctx)
{
    struct svm_move *m = ref_take(ctx);
    struct hostd_vm *vm;

    if (!m)
        return;
    if (!err)
        return apply_progress(m, p);
    /* vmx did not answer: ask again; if it is gone, the files tell whether
     * its copy committed before it went. */
    snprintf(m->msg, sizeof m->msg, "%s", msg ? msg : strerror(-err));
    if (++m->errors < SVM_MAX_ERRORS || !(vm = hostd_vm_find(m->h, m->uuid)))
        return;
    if (disk_committed(vm, m->new_dir)) {
        m->stage = SVM_FILES;
        kvc_warn("%s: STORAGE-MOVE vm=%s: vmx is gone, its disk copy had committed",
                 m->h->name, m->uuid);
        return;
    }
    roll_back(m->old_dir, m->new_dir, vm->name);
    finish(m, -EIO, "vmx is gone: %s", m->msg);
}

static void
on_be_started(int err, const char *msg, const struct hostd_svm_progress *p, void *ctx)
{
    struct svm_move *m = ref_take(ctx);
    struct hostd_vm *vm;

    if (!m)
        return;
    if (err) {
        vm = hostd_vm_find(m->h, m->uuid);
        roll_back(m->old_dir, m->new_dir, vm ? vm->name : "");
        finish(m, err, "moving the disk: %s", msg ? msg : strerror(-err));
        return;
    }
    apply_progress(m, p);
    if (m->phase == KVC__HOST__STORAGE_MOVE_PHASE__STORAGE_MOVE_RUNNING)
        arm(m, SVM_TICK_MS);
}

/* Fault injection for the crash tests: KVC_HOSTD_FAULT=svmotion-kill-after-folder
 * kills hostd (SIGKILL) once vmx moved its folder, before hostd's copy. */
static void
fault_point(const char *name)
{
    const char *f = getenv("KVC_HOSTD_FAULT");

    if (f && !strcmp(f, name)) {
        kvc_warn("fault %s: killing hostd", name);
        raise(SIGKILL);
    }
}

static void
on_be_folder(int err, const char *msg, const struct hostd_svm_progress *p, void *ctx)
{
    struct svm_move *m = ref_take(ctx);

    (void)p;
    if (!m)
        return;
    if (err) {
        kvc_warn("%s: STORAGE-MOVE vm=%s: vmx did not move its folder (retrying): %s",
                 m->h->name, m->uuid, msg ? msg : strerror(-err));
        snprintf(m->msg, sizeof m->msg, "vmx did not move its folder: %s", msg ? msg : "?");
        m->next_try_ms = hostd_now_ms() + SVM_RETRY_MS;
        return;
    }
    m->percent = 95;
    m->stage = SVM_FILES;
    fault_point("svmotion-kill-after-folder");
}

static void
be_tick(struct svm_move *m, struct hostd_vm *vm)
{
    char why[3 * PATH_MAX + 256] = "";
    struct svm_ref *r;
    int rc;

    if (m->out || hostd_now_ms() < m->next_try_ms)
        return arm(m, SVM_TICK_MS);
    if (vm->power != VM_ON && m->stage == SVM_DISK) {
        /* vmx went (powered off, crashed): its copy went with it. */
        roll_back(m->old_dir, m->new_dir, vm->name);
        return finish(m, -EIO, "the VM stopped during the move");
    }
    switch (m->stage) {
    case SVM_DISK:
        if (m->cancel && !m->cancel_sent) {
            m->be->cancel(m->h, vm);
            m->cancel_sent = true;
        }
        if (!(r = ref_new(m)))
            break;
        m->out = true;
        m->be->progress(m->h, vm, on_be_progress, r);
        break;
    case SVM_FOLDER:
        if (vm->power != VM_ON) {
            m->stage = SVM_FILES;       /* nothing runs: nothing to re-point */
            break;
        }
        if (!(r = ref_new(m)))
            break;
        m->out = true;
        m->be->folder(m->h, vm, m->new_dir, on_be_folder, r);
        break;
    case SVM_FILES:
        if ((rc = commit_files(m->h, vm, m->old_dir, m->new_dir, m->to_ds, why, sizeof why)) < 0) {
            static struct kvc_ratelimit rl = KVC_RATELIMIT_INIT(3, 60);
            kvc_warn_rl(&rl, "%s: STORAGE-MOVE vm=%s: %s (retrying)", m->h->name, m->uuid, why);
            snprintf(m->msg, sizeof m->msg, "%s", why);
            m->next_try_ms = hostd_now_ms() + SVM_RETRY_MS;
            break;
        }
        m->msg[0] = 0;
        finish(m, 0, NULL);
        hostd_vm_changed(m->h, vm, false);      /* vpxd: the VM's datastore */
        return;
    }
    if (m->phase == KVC__HOST__STORAGE_MOVE_PHASE__STORAGE_MOVE_RUNNING)
        arm(m, SVM_TICK_MS);
}

/* Start-up: finish or undo what a journal says was under way. */
void
hostd_svmotion_recover(struct hostd_host *h)
{
    const struct hostd_svm_ops *be = h->be->svm;
    char src[PATH_MAX], dst[PATH_MAX], ds[PATH_MAX];
    char why[3 * PATH_MAX + 256];
    struct stat st;
    int rc;

    for (struct hostd_vm *vm = h->vms; vm; vm = vm->next) {
        if (journal_read(vm->dir, vm->name, src, dst, ds) < 0)
            continue;
        if (!strcmp(vm->dir, dst)) {
            /* Committed: only the old folder's removal was left. */
            bool used = false;
            for (struct hostd_vm *o = h->vms; o; o = o->next)
                used |= o != vm && !strcmp(o->dir, src);
            if (!used && lstat(src, &st) == 0)
                remove_folder(src);
            journal_drop(vm->dir, vm->name);
            kvc_info("%s: STORAGE-MOVE-RECOVER vm=%s committed: old folder %s removed", h->name,
                     vm->uuid, src);
            continue;
        }
        if (strcmp(vm->dir, src)) {
            kvc_warn("%s: VM %s: journal %s/%s" JOURNAL_EXT " names neither its folder (%s -> %s):"
                     " left alone", h->name, vm->name, vm->dir, vm->name, src, dst);
            continue;
        }
        if (lstat(dst, &st) < 0) {
            journal_drop(src, vm->name);       /* stopped before the target was made */
            kvc_info("%s: STORAGE-MOVE-RECOVER vm=%s rolled back (no target)", h->name, vm->uuid);
            continue;
        }
        /* A disk move vmx still runs stops first: then the files tell. */
        if (be && (rc = be->recover(h, vm, dst, false, why, sizeof why)) < 0) {
            kvc_err("%s: STORAGE-MOVE-RECOVER vm=%s: %s; the move stays as it is until the"
                    " next start", h->name, vm->uuid, why);
            continue;
        }
        if (!disk_committed(vm, dst)) {
            roll_back(src, dst, vm->name);
            kvc_info("%s: STORAGE-MOVE-RECOVER vm=%s rolled back: %s removed, the VM stays in %s",
                     h->name, vm->uuid, dst, src);
            continue;
        }
        if (be && (rc = be->recover(h, vm, dst, true, why, sizeof why)) < 0) {
            kvc_err("%s: STORAGE-MOVE-RECOVER vm=%s: vmx did not move its folder: %s; the move"
                    " stays as it is until the next start", h->name, vm->uuid, why);
            continue;
        }
        if ((rc = commit_files(h, vm, src, dst, ds, why, sizeof why)) < 0) {
            kvc_err("%s: STORAGE-MOVE-RECOVER vm=%s: %s; the move stays as it is until the"
                    " next start", h->name, vm->uuid, why);
            continue;
        }
        kvc_info("%s: STORAGE-MOVE-RECOVER vm=%s rolled forward: the VM is in %s", h->name,
                 vm->uuid, dst);
    }
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct svm_move *m = arg;
    struct hostd_vm *vm = hostd_vm_find(m->h, m->uuid);
    struct timeval tv = { 0, SVM_TICK_MS * 1000 };

    (void)fd;
    (void)what;
    if (!vm)
        return finish(m, -ENOENT, "the VM is gone");
    if (m->cancel && !m->be)
        return finish(m, -ECANCELED, "cancelled");
    if (m->be)
        return be_tick(m, vm);
    if (m->h->crashed)
        return finish(m, -EIO, "the host went down");
    if (hostd_now_ms() - m->start_ms < m->total_ms) {
        event_add(m->ev, &tv);
        return;
    }
    switch_over(m, vm);
}

/* ---- RPC ---- */

void
hostd_svmotion_start(struct kvc_rpc_call *call, const ProtobufCMessage *msg, void *arg)
{
    struct hostd_host *h = arg;
    const Kvc__Host__StorageMoveRequest *q = (const void *)msg;
    struct hostd_vm *vm;
    struct hostd_datastore *to;
    struct svm_move *m;
    struct stat st;
    char new_dir[PATH_MAX];
    struct timeval tv = { 0, SVM_TICK_MS * 1000 };
    double bw;
    uint64_t bytes;
    const struct hostd_svm_ops *be;
    int rc;

    if (!hostd_session_ok(h, call))
        return;
    if (!q->vm_uuid || !(vm = hostd_vm_find(h, q->vm_uuid)))
        FAIL(KVC_RPC_E_NOT_FOUND, "VM %s is not on this host",
                                   q->vm_uuid ? q->vm_uuid : "");
    if (!q->datastore || !q->datastore[0] || !(to = vmstore_datastore(h, q->datastore)))
        FAIL(KVC_RPC_E_NOT_FOUND, "datastore %s is not mounted on"
                                   " host %s", q->datastore ? q->datastore : "", h->name);
    if (vm->datastore && !strcmp(vm->datastore, q->datastore))
        FAIL(KVC_RPC_E_INVALID_ARGUMENT, "VM %s is on datastore %s"
                                   " already", vm->name, q->datastore);
    if (vm->busy || ((m = find(h, vm->uuid)) &&
                     m->phase == KVC__HOST__STORAGE_MOVE_PHASE__STORAGE_MOVE_RUNNING))
        FAIL(KVC_RPC_E_CONFLICT, "VM %s is busy with another"
                                   " operation", vm->name);
    be = vm->power == VM_ON ? h->be->svm : NULL;
    if (vm->power != VM_OFF && !be && h->be == &hostd_backend_kvm)
        FAIL(KVC_RPC_E_NOT_IMPLEMENTED, "moving the files of a"
                                   " suspended VM is not available on the kvm backend:"
                                   " power it on or off first");
    if ((size_t)snprintf(new_dir, sizeof new_dir, "%s/%s", to->path, vm->name) >= sizeof new_dir
        || strlen(new_dir) + strlen(vm->name) + 6 >= PATH_MAX)
        FAIL(KVC_RPC_E_INVALID_ARGUMENT, "path too long");
    if (lstat(new_dir, &st) == 0)
        FAIL(KVC_RPC_E_CONFLICT, "%s exists already on datastore"
                                   " %s", new_dir, q->datastore);
    if (m)
        unlink_move(m);
    if (!(m = calloc(1, sizeof *m)) ||
        !(m->ev = event_new(h->d->base, -1, 0, on_tick, m))) {
        free(m);
        FAIL(KVC_RPC_E_INTERNAL, "out of memory");
    }
    m->h = h;
    snprintf(m->uuid, sizeof m->uuid, "%s", vm->uuid);
    snprintf(m->from_ds, sizeof m->from_ds, "%s", vm->datastore ? vm->datastore : "");
    snprintf(m->to_ds, sizeof m->to_ds, "%s", q->datastore);
    snprintf(m->old_dir, sizeof m->old_dir, "%s", vm->dir);
    snprintf(m->new_dir, sizeof m->new_dir, "%s", new_dir);
    strcpy(m->new_config, new_dir);     /* lengths checked above */
    strcat(m->new_config, "/");
    strcat(m->new_config, vm->name);
    strcat(m->new_config, ".vmx");
    bytes = folder_bytes(vm->dir);
    if (vm->disk_bytes > bytes)
        bytes = vm->disk_bytes;         /* the sim's disks are thin files */
    bw = q->bandwidth ? (double)q->bandwidth : SVM_DEFAULT_BW;
    m->total_bytes = bytes;
    m->total_ms = (int64_t)((double)bytes * 1000.0 / bw);
    if (m->total_ms < SVM_MIN_MS)
        m->total_ms = SVM_MIN_MS;
    m->start_ms = hostd_now_ms();
    m->phase = KVC__HOST__STORAGE_MOVE_PHASE__STORAGE_MOVE_RUNNING;
    m->id = ++next_id;
    if (be) {
        uint64_t kbw = q->bandwidth ? q->bandwidth : default_bw(0);
        struct svm_ref *r;
        /* The journal first (crash safety), then the target folder (with
         * the journal too: it names both), then vmx copies the disk. */
        m->be = be;
        m->stage = SVM_DISK;
        if ((rc = journal_write(m->old_dir, m, vm->name)) < 0 ||
            (mkdir(new_dir, 0755) < 0 && (rc = -errno) < 0) ||
            (rc = journal_write(new_dir, m, vm->name)) < 0 || (rc = fsync_dir(to->path)) < 0 ||
            !(r = ref_new(m))) {
            roll_back(m->old_dir, new_dir, vm->name);
            event_free(m->ev);
            free(m);
            FAIL(KVC_RPC_E_INTERNAL, "starting the move into %s: %s", new_dir,
                 strerror(rc < 0 ? -rc : ENOMEM));
        }
        m->next = moves;
        moves = m;
        vm->busy = true;
        m->out = true;
        kvc_info("%s: STORAGE-MOVE vm=%s from=%s to=%s started: vmx moves the disk to %s"
                 " bandwidth=%llu", h->name, vm->uuid, m->from_ds, m->to_ds, new_dir,
                 (unsigned long long)kbw);
        reply_status(call, m);
        be->start(h, vm, new_dir, kbw, on_be_started, r);
        return;
    }
    m->next = moves;
    moves = m;
    vm->busy = true;
    event_add(m->ev, &tv);
    kvc_info("%s: STORAGE-MOVE vm=%s from=%s to=%s started bytes=%llu expect_ms=%lld", h->name,
             vm->uuid, m->from_ds, m->to_ds, (unsigned long long)bytes, (long long)m->total_ms);
    reply_status(call, m);
}

void
hostd_svmotion_status(struct kvc_rpc_call *call, const ProtobufCMessage *msg, void *arg)
{
    struct hostd_host *h = arg;
    const Kvc__Host__StorageMoveQuery *q = (const void *)msg;
    struct svm_move *m;

    if (!hostd_session_ok(h, call))
        return;
    if (!q->vm_uuid || !(m = find(h, q->vm_uuid)))
        FAIL(KVC_RPC_E_NOT_FOUND, "no storage move of VM %s",
                                   q->vm_uuid ? q->vm_uuid : "");
    reply_status(call, m);
}

void
hostd_svmotion_cancel(struct kvc_rpc_call *call, const ProtobufCMessage *msg, void *arg)
{
    struct hostd_host *h = arg;
    const Kvc__Host__StorageMoveQuery *q = (const void *)msg;
    struct svm_move *m;

    if (!hostd_session_ok(h, call))
        return;
    if (!q->vm_uuid || !(m = find(h, q->vm_uuid)) ||
        m->phase != KVC__HOST__STORAGE_MOVE_PHASE__STORAGE_MOVE_RUNNING)
        FAIL(KVC_RPC_E_CONFLICT, "no storage move of VM %s is"
                                   " running", q->vm_uuid ? q->vm_uuid : "");
    if (m->be) {
        /* vmx stops its copy; the next progress poll ends the move. */
        if (m->stage != SVM_DISK)
            FAIL(KVC_RPC_E_CONFLICT, "the VM's disk is in the new folder already:"
                                       " the move can no longer be cancelled");
        m->cancel = true;
        reply_status(call, m);
        return;
    }
    m->cancel = true;           /* the switch runs on the loop: not under way now */
    finish(m, -ECANCELED, "cancelled");
    reply_status(call, m);
}
