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
 * A powered-on VM of the kvm backend is refused (ENOTSUP): vmx moves a
 * running disk itself (VMX_DISK_MOVE), but its config, lease and log stay
 * open in the old folder and hostd does not drive that yet. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

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
};

static struct svm_move *moves;

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

static int
copy_folder(const char *from, const char *to, char *why, size_t wl)
{
    DIR *dp;
    struct dirent *e;
    struct stat st;
    char sp[PATH_MAX], dp2[PATH_MAX];
    char *buf = malloc(COPY_BUF);
    int rc = 0;

    if (!buf)
        return -ENOMEM;
    if (mkdir(to, 0755) < 0) {
        rc = -errno;
        snprintf(why, wl, "%s: %s", to, strerror(errno));
        free(buf);
        return rc;
    }
    if (!(dp = opendir(from))) {
        rc = -errno;
        snprintf(why, wl, "%s: %s", from, strerror(errno));
        free(buf);
        return rc;
    }
    while (!rc && (e = readdir(dp))) {
        if ((size_t)snprintf(sp, sizeof sp, "%s/%s", from, e->d_name) >= sizeof sp ||
            (size_t)snprintf(dp2, sizeof dp2, "%s/%s", to, e->d_name) >= sizeof dp2) {
            rc = -ENAMETOOLONG;
            snprintf(why, wl, "%s/%s: path too long", from, e->d_name);
            break;
        }
        if (lstat(sp, &st) < 0 || !S_ISREG(st.st_mode))
            continue;           /* ".", "..", and nothing else lives there */
        if ((rc = copy_file(sp, dp2, st.st_mode, buf)) < 0)
            snprintf(why, wl, "copying %s to %s: %s", sp, to, strerror(-rc));
    }
    closedir(dp);
    free(buf);
    if (!rc && (rc = fsync_dir(to)) < 0)
        snprintf(why, wl, "%s: fsync: %s", to, strerror(-rc));
    return rc;
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
    if (m->cancel)
        return finish(m, -ECANCELED, "cancelled");
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
    if (vm->power != VM_OFF && h->be == &hostd_backend_kvm)
        FAIL(KVC_RPC_E_NOT_IMPLEMENTED, "moving the files of a"
                                   " powered-on VM is not available on the kvm backend yet:"
                                   " power it off first");
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
    m->cancel = true;           /* the switch runs on the loop: not under way now */
    finish(m, -ECANCELED, "cancelled");
    reply_status(call, m);
}
