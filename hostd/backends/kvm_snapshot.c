/* VM snapshots on the kvm backend (backend.h snapshot_*_async; the index is
 * snapshots.c's).  docs/hosts.md "Snapshots".
 *
 * A snapshot is a vmx state file, <dir>/<name>-snap-N.vmsn (docs/vmx.md
 * "Snapshots, suspend, resume"), whose DISK section names the disk layer it
 * froze.
 *
 * A running VM (its vmx is up):
 *   take    VMX_SNAPSHOT: vmx pauses, freezes the disk's top layer behind a
 *           new delta, writes memory and devices and runs on.  A snapshot
 *           without memory is the same file; the index says disk only and
 *           a revert never loads its memory.
 *   delete  VMX_SNAPSHOT_DELETE: the file goes, then vmx consolidates the
 *           delta while the guest runs.
 * A powered-off or suspended VM (no vmx runs): the same disk operations,
 * done here with vmx's own disk code (vmkernel-kvm/disk.c) in a worker
 * thread, so that a long merge never holds up hostd's loop:
 *   take    disk_snapshot, then a state file of HEADER (RAM size 0: no
 *           memory, which vmx --restore refuses), DISK and END;
 *   delete  disk_delete_check, the file removed, disk_delete_snapshot
 *           (what VMX_SNAPSHOT_DELETE does).
 * Revert: a running or suspended VM is powered off first (a suspended VM's
 * suspend file is discarded).  With memory, the VM is then started from the
 * file (vmkd PowerOn restore_path = vmx --restore: memory, devices, and the
 * disk reverted onto the frozen layer); without, the disk is reverted here
 * (disk_revert) and the VM stays powered off.
 *
 * hostd keeps the VM busy while an operation runs (no power-on can open the
 * disk under the worker thread).  Failures change nothing: vmx and disk.c
 * undo a half-taken snapshot themselves, a delete checks before it removes
 * the file, and a revert checks the file against the VM before it powers
 * anything off; only a restore that fails after that leaves the VM off (the
 * error says so). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "rpc.h"
#include "vmx.pb-c.h"
#include "hostd/backend.h"
#include "hostd/backends/kvm.h"
#include "hostd/hostd.h"
#include "vmkernel-kvm/disk.h"
#include "vmkernel-kvm/vmx_state.h"

KVC_LOG_MODULE(kvm_snapshot);

#define SNAP_CALL_MS 120000         /* vmx writes all of the guest's memory */
#define SNAP_MAX_SECTIONS 4096u
#define SNAP_HEADER_LEN 24u         /* magic, version, RAM bytes, vCPUs */

/* ---- the state file: its HEADER and DISK sections ---------------------- */

struct snapfile {
    uint64_t ram;                   /* bytes of memory state (0: none) */
    uint32_t vcpus;
    bool disk;                      /* it has a DISK section: */
    char layer[DISK_NAME_MAX];      /* the layer it froze */
    uint64_t layer_id;
};

static uint64_t
get_le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    while (n--)
        v = v << 8 | p[n];
    return v;
}

static size_t
put_le(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    return n;
}

/* Reads the section headers of the state file PATH through END, the HEADER
 * and the DISK section; with DISK_ONLY only up to the DISK section (as
 * VMX_SNAPSHOT_DELETE does: a damaged snapshot can still be deleted). */
static int
snapfile_read(const char *path, bool disk_only, struct snapfile *sf, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    off_t off = 0;
    int rc = -EINVAL;

    memset(sf, 0, sizeof *sf);
    if (fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return rc;
    }
    for (unsigned n = 0; n < SNAP_MAX_SECTIONS; n++) {
        uint8_t h[16], b[DISK_NAME_MAX + 16];
        uint64_t type, len, nl;

        if (pread(fd, h, sizeof h, off) != (ssize_t)sizeof h) {
            snprintf(err, errlen, "%s: truncated (no END section)", path);
            goto out;
        }
        type = get_le(h, 4);
        len = get_le(h + 8, 8);
        if (n == 0) {
            if (type != VMX_ST_HEADER || len < SNAP_HEADER_LEN ||
                pread(fd, b, SNAP_HEADER_LEN, off + 16) != (ssize_t)SNAP_HEADER_LEN ||
                get_le(b, 8) != VMX_STATE_MAGIC) {
                snprintf(err, errlen, "%s: not a vmx snapshot", path);
                goto out;
            }
            sf->ram = get_le(b + 12, 8);
            sf->vcpus = (uint32_t)get_le(b + 20, 4);
        } else if (type == VMX_ST_END) {
            rc = 0;
            goto out;
        } else if (type == VMX_ST_DISK) {
            if (len < 12 || len > sizeof b || pread(fd, b, len, off + 16) != (ssize_t)len ||
                !(nl = get_le(b, 4)) || nl >= DISK_NAME_MAX || 4 + nl + 8 > len) {
                snprintf(err, errlen, "%s: bad disk section", path);
                goto out;
            }
            memcpy(sf->layer, b + 4, nl);
            sf->layer[nl] = '\0';
            sf->layer_id = get_le(b + 4 + nl, 8);
            sf->disk = true;
            if (disk_only) {
                rc = 0;
                goto out;
            }
        }
        if (len > (uint64_t)INT64_MAX - (uint64_t)off - 16) {
            snprintf(err, errlen, "%s: bad section length", path);
            goto out;
        }
        off += 16 + (off_t)len;
    }
    snprintf(err, errlen, "%s: too many sections", path);
out:
    close(fd);
    return rc;
}

static int
fsync_dir_of(const char *path)
{
    char dir[PATH_MAX];
    char *slash;
    int fd, rc = 0;

    snprintf(dir, sizeof dir, "%s", path);
    if (!(slash = strrchr(dir, '/')))
        return 0;
    *slash = '\0';
    if ((fd = open(*dir ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return -errno;
    if (fsync(fd) < 0)
        rc = -errno;
    close(fd);
    return rc;
}

static size_t
section(uint8_t *p, uint32_t type, uint64_t len)
{
    size_t n = put_le(p, type, 4);
    n += put_le(p + n, 0, 4);
    return n + put_le(p + n, len, 8);
}

/* A state file without memory (a powered-off VM's snapshot): HEADER with
 * RAM size 0, the frozen LAYER (NULL: the VM has no disk), END.  Written to
 * PATH.tmp, synced, renamed. */
static int
snapfile_write(const char *path, uint32_t vcpus, const char *layer, uint64_t id, char *err,
               size_t errlen)
{
    uint8_t b[3 * 16 + SNAP_HEADER_LEN + 4 + DISK_NAME_MAX + 8];
    char tmp[PATH_MAX + 8];
    size_t n = 0, nl = layer ? strlen(layer) : 0;
    int fd, rc = 0;

    n += section(b + n, VMX_ST_HEADER, SNAP_HEADER_LEN);
    n += put_le(b + n, VMX_STATE_MAGIC, 8);
    n += put_le(b + n, VMX_STATE_VERSION, 4);
    n += put_le(b + n, 0, 8);
    n += put_le(b + n, vcpus, 4);
    if (layer) {
        n += section(b + n, VMX_ST_DISK, 4 + nl + 8);
        n += put_le(b + n, nl, 4);
        memcpy(b + n, layer, nl);
        n += nl;
        n += put_le(b + n, id, 8);
    }
    n += section(b + n, VMX_ST_END, 0);
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        snprintf(err, errlen, "%s: path too long", path);
        return -ENAMETOOLONG;
    }
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        return rc;
    }
    errno = 0;
    if (write(fd, b, n) != (ssize_t)n || fsync(fd) < 0)
        rc = errno ? -errno : -EIO;
    if (close(fd) < 0 && !rc)
        rc = -errno;
    if (!rc && rename(tmp, path) < 0)
        rc = -errno;
    if (!rc)
        rc = fsync_dir_of(path);
    if (rc) {
        snprintf(err, errlen, "%s: %s", path, strerror(-rc));
        unlink(tmp);
        unlink(path);
    }
    return rc;
}

/* ---- VM facts --------------------------------------------------------- */

/* The VM's disk as write_run_config gives it to vmx ("": none). */
static int
disk_path(const struct hostd_vm *vm, char *buf, size_t len)
{
    buf[0] = '\0';
    if (vm->disk_bytes >= 512 && snprintf(buf, len, "%s/%s.img", vm->dir, vm->name) >= (int)len)
        return -ENAMETOOLONG;
    return 0;
}

/* RAM bytes and vCPUs vmx runs the VM with (write_run_config's clamps). */
static uint64_t
run_ram(const struct hostd_vm *vm)
{
    uint64_t m = vm->memory_mib > 3072 ? 3072 : vm->memory_mib;

    m &= ~1ull;
    return (m < 2 ? 2 : m) << 20;
}

static uint32_t
run_vcpus(const struct hostd_vm *vm)
{
    return vm->cpu_count > 64 ? 64 : vm->cpu_count;
}

static int
vmx_err(int status)
{
    switch (status) {
    case KVC_RPC_E_CONFLICT: return -EBUSY;
    case KVC_RPC_E_NOT_FOUND: return -ENOENT;
    case KVC_RPC_E_INVALID_ARGUMENT: return -EINVAL;
    case KVC_RPC_E_TIMEOUT: return -ETIMEDOUT;
    case KVC_RPC_E_UNAVAILABLE:
    case KVC_RPC_E_DISCONNECTED:
    case KVC_RPC_E_CANCELLED: return -ENOTCONN;
    default: return -EIO;
    }
}

/* ---- offline disk work, in a worker thread ----------------------------- */

enum job_kind { JOB_TAKE, JOB_REVERT, JOB_DELETE };

struct job {
    enum job_kind kind;
    struct hostd_host *h;
    struct hostd_vm *vm;
    hostd_be_done_fn done;
    void *ctx;
    /* The thread reads these and writes rc, err, msg only. */
    char path[PATH_MAX];            /* the state file */
    char disk[PATH_MAX];            /* the VM's base disk ("": none) */
    uint32_t vcpus;
    int rc;
    char err[PATH_MAX + 256];
    char msg[DISK_NAME_MAX * 2 + 64];
    int fds[2];
    struct event *ev;
    pthread_t thread;
};

static int
job_open(struct job *j, struct disk **d)
{
    int rc;

    if (!(*d = calloc(1, sizeof **d)))
        return -ENOMEM;
    if ((rc = disk_open(*d, j->disk, false, j->err, sizeof j->err)) < 0) {
        free(*d);
        *d = NULL;
    }
    return rc < 0 ? rc : 0;
}

static void
job_close(struct disk *d)
{
    if (d) {
        disk_close(d);
        free(d);
    }
}

static int
job_take(struct job *j)
{
    struct disk *d = NULL;
    char frozen[DISK_NAME_MAX] = "";
    uint64_t id = 0;
    int rc;

    if (j->disk[0] && ((rc = job_open(j, &d)) ||
                       (rc = disk_snapshot(d, frozen, &id, j->err, sizeof j->err)) < 0))
        goto out;
    rc = snapfile_write(j->path, j->vcpus, frozen[0] ? frozen : NULL, id, j->err, sizeof j->err);
    if (rc && frozen[0])
        disk_snapshot_abort(d, frozen);
    else if (frozen[0])
        snprintf(j->msg, sizeof j->msg, "froze disk layer %s", frozen);
out:
    job_close(d);
    return rc;
}

static int
job_revert(struct job *j)
{
    struct snapfile sf;
    struct disk *d = NULL;
    int rc;

    if ((rc = snapfile_read(j->path, false, &sf, j->err, sizeof j->err)) || !sf.disk)
        return rc;              /* no disk state: nothing to revert */
    if (!j->disk[0]) {
        snprintf(j->err, sizeof j->err, "the snapshot has disk state, the VM has no disk");
        return -EINVAL;
    }
    if (!(rc = job_open(j, &d)) &&
        !(rc = disk_revert(d, sf.layer, sf.layer_id, j->err, sizeof j->err)))
        snprintf(j->msg, sizeof j->msg, "disk back on layer %s", sf.layer);
    job_close(d);
    return rc;
}

static int
job_delete(struct job *j)
{
    struct snapfile sf;
    struct disk_merge_info mi;
    struct disk *d = NULL;
    int rc;

    memset(&mi, 0, sizeof mi);
    if ((rc = snapfile_read(j->path, true, &sf, j->err, sizeof j->err)))
        return rc;
    if (sf.disk && !j->disk[0]) {
        snprintf(j->err, sizeof j->err, "the snapshot has disk state, the VM has no disk");
        return -EINVAL;
    }
    /* As VMX_SNAPSHOT_DELETE: refused before anything changes, then the
     * file goes first (nothing can restore the layer the merge changes). */
    if (sf.disk && ((rc = job_open(j, &d)) ||
                    (rc = disk_delete_check(d, sf.layer, sf.layer_id, j->err, sizeof j->err))))
        goto out;
    if (unlink(j->path) < 0 || (rc = fsync_dir_of(j->path)) < 0) {
        rc = rc ? rc : -errno;
        snprintf(j->err, sizeof j->err, "%s: %s", j->path, strerror(-rc));
        goto out;
    }
    if (sf.disk) {
        char why[PATH_MAX + 128];
        if ((rc = disk_delete_snapshot(d, sf.layer, sf.layer_id, &mi, why, sizeof why))) {
            snprintf(j->err, sizeof j->err, "snapshot file removed, but the disk merge failed: %s",
                     why);
            goto out;
        }
        snprintf(j->msg, sizeof j->msg, "merged %s into %s%s", mi.merged[0] ? mi.merged : "none",
                 mi.into[0] ? mi.into : "none", mi.removed ? ", dropped its layer" : "");
    }
out:
    job_close(d);
    return rc;
}

static void *
job_main(void *arg)
{
    struct job *j = arg;
    ssize_t n;

    j->rc = j->kind == JOB_TAKE ? job_take(j) : j->kind == JOB_REVERT ? job_revert(j)
          : job_delete(j);
    n = write(j->fds[1], "", 1);        /* the loop finishes the job */
    (void)n;
    return NULL;
}

static void
on_job_done(evutil_socket_t fd, short what, void *arg)
{
    static const char *const kinds[] = { "taken", "reverted", "deleted" };
    struct job *j = arg;
    char c;
    ssize_t n = read(fd, &c, 1);

    (void)n;
    pthread_join(j->thread, NULL);
    event_free(j->ev);
    close(j->fds[0]);
    close(j->fds[1]);
    if (j->rc)
        kvc_warn("%s: VM %s: snapshot %s: %s", j->h->name, j->vm->name, j->path,
                 j->err[0] ? j->err : strerror(-j->rc));
    else
        kvc_info("%s: VM %s: snapshot %s %s offline%s%s", j->h->name, j->vm->name, j->path,
                 kinds[j->kind], j->msg[0] ? ": " : "", j->msg);
    j->done(j->h, j->vm, j->rc, j->rc && j->err[0] ? j->err : NULL, j->ctx);
    free(j);
}

/* Runs KIND on the powered-off VM's disk and file; DONE from the loop. */
static void
job_start(struct hostd_host *h, struct hostd_vm *vm, enum job_kind kind, const char *path,
          hostd_be_done_fn done, void *ctx)
{
    struct job *j;
    char why[PATH_MAX + 512];
    int rc;

    /* No other host may be running it (a shared datastore). */
    if ((rc = vmstore_lease_check(h, vm, why, sizeof why))) {
        done(h, vm, rc, why, ctx);
        return;
    }
    if (!(j = calloc(1, sizeof *j))) {
        done(h, vm, -ENOMEM, NULL, ctx);
        return;
    }
    *j = (struct job){ .kind = kind, .h = h, .vm = vm, .done = done, .ctx = ctx,
                       .vcpus = run_vcpus(vm), .fds = { -1, -1 } };
    if (snprintf(j->path, sizeof j->path, "%s", path) >= (int)sizeof j->path ||
        disk_path(vm, j->disk, sizeof j->disk)) {
        free(j);
        done(h, vm, -ENAMETOOLONG, "the VM's folder path is too long", ctx);
        return;
    }
    if (pipe2(j->fds, O_CLOEXEC) < 0) {
        rc = -errno;
        goto fail;
    }
    if (!(j->ev = event_new(h->d->base, j->fds[0], EV_READ, on_job_done, j)) ||
        event_add(j->ev, NULL) < 0) {
        rc = -ENOMEM;
        goto fail;
    }
    if ((rc = pthread_create(&j->thread, NULL, job_main, j))) {
        rc = -rc;
        goto fail;
    }
    return;
fail:
    if (j->ev)
        event_free(j->ev);
    if (j->fds[0] >= 0) {
        close(j->fds[0]);
        close(j->fds[1]);
    }
    free(j);
    done(h, vm, rc, "cannot start the disk work", ctx);
}

/* ---- calls to the running VM's vmx ------------------------------------- */

struct vcall {
    struct hostd_host *h;
    struct hostd_vm *vm;
    hostd_be_done_fn done;
    void *ctx;
    char path[PATH_MAX];
    bool memory;                    /* revert */
};

static struct vcall *
vcall_new(struct hostd_host *h, struct hostd_vm *vm, const char *path, hostd_be_done_fn done,
          void *ctx)
{
    struct vcall *c = calloc(1, sizeof *c);

    if (!c) {
        done(h, vm, -ENOMEM, NULL, ctx);
        return NULL;
    }
    *c = (struct vcall){ .h = h, .vm = vm, .done = done, .ctx = ctx };
    snprintf(c->path, sizeof c->path, "%s", path);
    return c;
}

static void
vcall_finish(struct vcall *c, int rc, const char *msg)
{
    c->done(c->h, c->vm, rc, msg, c->ctx);
    free(c);
}

static void
on_vmx_snapshot(int status, const char *error, const ProtobufCMessage *resp, void *arg)
{
    struct vcall *c = arg;
    const Kvc__Vmx__SnapshotReply *r = (const Kvc__Vmx__SnapshotReply *)resp;

    if (status) {
        vcall_finish(c, vmx_err(status), error);
        return;
    }
    kvc_info("%s: VM %s: snapshot %s taken by vmx (%llu bytes, %llu memory pages, %llu us)",
             c->h->name, c->vm->name, r->path, (unsigned long long)r->bytes,
             (unsigned long long)r->memory_pages, (unsigned long long)r->duration_us);
    vcall_finish(c, 0, NULL);
}

static void
on_vmx_snapshot_delete(int status, const char *error, const ProtobufCMessage *resp, void *arg)
{
    struct vcall *c = arg;
    const Kvc__Vmx__SnapshotDeleteReply *r = (const Kvc__Vmx__SnapshotDeleteReply *)resp;

    if (status) {
        vcall_finish(c, vmx_err(status), error);
        return;
    }
    kvc_info("%s: VM %s: snapshot %s deleted by vmx (merged %s into %s, %llu clusters%s, %llu us)",
             c->h->name, c->vm->name, r->path, r->merged_layer && *r->merged_layer
             ? r->merged_layer : "none", r->into_layer && *r->into_layer ? r->into_layer : "none",
             (unsigned long long)r->clusters, r->dropped_layer ? ", dropped its layer" : "",
             (unsigned long long)r->duration_us);
    vcall_finish(c, 0, NULL);
}

/* One call to the VM's vmx, or DONE with the reason it cannot go out. */
static void
vmx_call(struct vcall *c, uint32_t method, const ProtobufCMessage *req,
         const ProtobufCMessageDescriptor *rt, kvc_rpc_reply_fn fn)
{
    struct kvc_rpc_client *cl = hostd_kvm_vmx(c->vm);

    if (!cl || kvc_rpc_client_call(cl, method, req, rt, SNAP_CALL_MS, fn, c))
        vcall_finish(c, -ENOTCONN, "the VM's vmx is not reachable on its control socket");
}

/* ---- the ops ----------------------------------------------------------- */

void
hostd_kvm_snapshot_take(struct hostd_host *h, struct hostd_vm *vm, const char *path,
                        bool memory, hostd_be_done_fn done, void *ctx)
{
    Kvc__Vmx__SnapshotRequest r = KVC__VMX__SNAPSHOT_REQUEST__INIT;
    struct vcall *c;

    (void)memory;               /* vmx keeps memory anyway; the index decides */
    if (vm->power != VM_ON) {
        job_start(h, vm, JOB_TAKE, path, done, ctx);
        return;
    }
    if (!(c = vcall_new(h, vm, path, done, ctx)))
        return;
    r.path = c->path;
    r.power_off = false;
    vmx_call(c, KVC__VMX__METHOD__VMX_SNAPSHOT, &r.base, &kvc__vmx__snapshot_reply__descriptor,
             on_vmx_snapshot);
}

void
hostd_kvm_snapshot_delete(struct hostd_host *h, struct hostd_vm *vm, const char *path,
                          hostd_be_done_fn done, void *ctx)
{
    Kvc__Vmx__SnapshotDeleteRequest r = KVC__VMX__SNAPSHOT_DELETE_REQUEST__INIT;
    struct vcall *c;

    if (access(path, F_OK) < 0 && errno == ENOENT) {
        /* Nothing can restore it any more: the index entry just goes. */
        kvc_warn("%s: VM %s: snapshot file %s is gone already; the disk layer it froze "
                 "stays in the chain", h->name, vm->name, path);
        done(h, vm, 0, NULL, ctx);
        return;
    }
    if (vm->power != VM_ON) {
        job_start(h, vm, JOB_DELETE, path, done, ctx);
        return;
    }
    if (!(c = vcall_new(h, vm, path, done, ctx)))
        return;
    r.path = c->path;
    vmx_call(c, KVC__VMX__METHOD__VMX_SNAPSHOT_DELETE, &r.base,
             &kvc__vmx__snapshot_delete_reply__descriptor, on_vmx_snapshot_delete);
}

static void
on_restored(struct hostd_host *h, struct hostd_vm *vm, int rc, const char *msg, void *arg)
{
    struct vcall *c = arg;
    char why[512];

    if (rc) {
        snprintf(why, sizeof why, "the VM is powered off: starting it from the snapshot failed: "
                 "%s", msg ? msg : strerror(-rc));
        vcall_finish(c, rc, why);
        return;
    }
    kvc_info("%s: VM %s runs from snapshot %s", h->name, vm->name, c->path);
    vcall_finish(c, 0, NULL);
}

/* The VM is off now: start it from the file, or revert its disk. */
static void
revert_off(struct vcall *c)
{
    if (c->memory) {
        hostd_kvm_power_on_restore(c->h, c->vm, c->path, on_restored, c);
        return;
    }
    job_start(c->h, c->vm, JOB_REVERT, c->path, c->done, c->ctx);
    free(c);
}

static void
on_revert_powered_off(struct hostd_host *h, struct hostd_vm *vm, int rc, const char *msg,
                      void *arg)
{
    struct vcall *c = arg;
    char why[512];

    if (rc) {
        snprintf(why, sizeof why, "powering the VM off failed: %s", msg ? msg : strerror(-rc));
        vcall_finish(c, rc, why);
        return;
    }
    revert_off(c);
}

void
hostd_kvm_snapshot_revert(struct hostd_host *h, struct hostd_vm *vm, const char *path,
                          enum vm_power power, bool memory, hostd_be_done_fn done, void *ctx)
{
    struct snapfile sf;
    struct vcall *c;
    char err[PATH_MAX + 64], disk[PATH_MAX];
    int rc;

    (void)power;
    /* Everything that can be checked before the VM is touched. */
    if ((rc = snapfile_read(path, false, &sf, err, sizeof err))) {
        done(h, vm, rc, err, ctx);
        return;
    }
    if (disk_path(vm, disk, sizeof disk)) {
        done(h, vm, -ENAMETOOLONG, "the VM's folder path is too long", ctx);
        return;
    }
    if (sf.disk && !disk[0]) {
        done(h, vm, -EINVAL, "the snapshot has disk state, the VM has no disk", ctx);
        return;
    }
    if (memory && !sf.ram) {
        done(h, vm, -EINVAL, "the snapshot file holds no memory state", ctx);
        return;
    }
    if (memory && (sf.ram != run_ram(vm) || sf.vcpus != run_vcpus(vm))) {
        snprintf(err, sizeof err, "the snapshot has %llu MiB and %u vCPUs, the VM now %llu MiB "
                 "and %u", (unsigned long long)(sf.ram >> 20), sf.vcpus,
                 (unsigned long long)(run_ram(vm) >> 20), run_vcpus(vm));
        done(h, vm, -EINVAL, err, ctx);
        return;
    }
    if (memory && h->maintenance) {
        done(h, vm, -EBUSY, "host is in maintenance mode", ctx);
        return;
    }
    if (!(c = vcall_new(h, vm, path, done, ctx)))
        return;
    c->memory = memory;
    if (vm->power == VM_OFF) {
        revert_off(c);
        return;
    }
    /* Running, or suspended (its suspend file is discarded). */
    hostd_backend_kvm.power_async(h, vm, KVC__HOST__POWER_OP__POWER_OFF, on_revert_powered_off,
                                  c);
}
