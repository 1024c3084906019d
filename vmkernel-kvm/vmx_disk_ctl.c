/* Control methods of the VM's disk (proto/vmx.proto, ids 0x4020..): delete
 * a snapshot (which consolidates its delta), the disk's state, moving the
 * running disk (0x4040..) and then the VM's folder (VMX_FOLDER_MOVE).
 * Served beside vmx_ctl_methods (vmx_main.c); they run on the main loop. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/lease.h"
#include "lib/log.h"
#include "lib/rpc.h"
#include "vmkernel-kvm/disk_mirror.h"
#include "vmkernel-kvm/migrate.h"
#include "vmkernel-kvm/vmx.h"
#include "vmkernel-kvm/vmx_fs.h"
#include "vmkernel-kvm/vmx_ctl.h"
#include "vmkernel-kvm/vmx_state.h"
#include "vmx.pb-c.h"

KVC_LOG_MODULE(ctl);

#define MAX_SECTIONS 4096u

/* The VMX_ST_DISK section of a snapshot file: 1 found, 0 none, <0 error
 * (ERR says why).  Reads only section headers and that one section. */
static int read_disk_section(const char *path, char *name, uint64_t *id, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -errno;
    }
    int rc = 0;
    off_t off = 0;
    for (unsigned n = 0; n < MAX_SECTIONS; n++) {
        uint8_t h[16];
        if (pread(fd, h, sizeof(h), off) != (ssize_t)sizeof(h)) {
            snprintf(err, errlen, "%s: truncated (no END section)", path);
            rc = -EINVAL;
            goto out;
        }
        struct sreader r;
        sreader_init(&r, h, sizeof(h));
        uint32_t type = sreader_u32(&r);
        sreader_u32(&r);
        uint64_t len = sreader_u64(&r);
        if (n == 0 && (type != VMX_ST_HEADER || len < 8)) {
            snprintf(err, errlen, "%s: not a vmx snapshot", path);
            rc = -EINVAL;
            goto out;
        }
        if (n == 0) {
            uint8_t m[8];
            if (pread(fd, m, 8, off + 16) != 8 || le_get(m, 8) != VMX_STATE_MAGIC) {
                snprintf(err, errlen, "%s: not a vmx snapshot", path);
                rc = -EINVAL;
                goto out;
            }
        }
        if (type == VMX_ST_END)
            goto out;
        if (len > (uint64_t)INT64_MAX - (uint64_t)off - 16) {
            snprintf(err, errlen, "%s: bad section length", path);
            rc = -EINVAL;
            goto out;
        }
        if (type == VMX_ST_DISK) {
            uint8_t body[DISK_NAME_MAX + 16];
            if (len > sizeof(body) || pread(fd, body, len, off + 16) != (ssize_t)len) {
                snprintf(err, errlen, "%s: bad disk section", path);
                rc = -EINVAL;
                goto out;
            }
            sreader_init(&r, body, len);
            memset(name, 0, DISK_NAME_MAX);
            sreader_blob(&r, name, DISK_NAME_MAX - 1);
            *id = sreader_u64(&r);
            if (r.err || !name[0]) {
                snprintf(err, errlen, "%s: bad disk section", path);
                rc = -EINVAL;
            } else {
                rc = 1;
            }
            goto out;
        }
        off += 16 + (off_t)len;
    }
    snprintf(err, errlen, "%s: too many sections", path);
    rc = -EINVAL;
out:
    close(fd);
    return rc;
}

static int fsync_parent(const char *path)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == dir)
        dir[1] = 0;
    else
        *slash = 0;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

static void on_snapshot_delete(struct vmx_ctl_call *call, const ProtobufCMessage *m, void *arg)
{
    struct vmx *vm = arg;
    const Kvc__Vmx__SnapshotDeleteRequest *req = (const void *)m;
    char path[PATH_MAX], err[PATH_MAX + 512] = "", name[DISK_NAME_MAX];
    uint64_t id = 0, t0 = vmx_now_ns();
    /* Not while stopping, nor on either side of a live migration (the
     * destination loads the disk state; the source handed it over). */
    if (vm->stop != VMX_STOP_NONE || (vm->state != VMX_RUNNING && vm->state != VMX_PAUSED)) {
        vmx_ctl_reply_error(call, KVC_RPC_E_CONFLICT, "VM is not running");
        return;
    }
    if (vmx_migrate_active(vm)) {
        vmx_ctl_reply_error(call, KVC_RPC_E_CONFLICT, "a migration is in progress");
        return;
    }
    if (!req->path[0]) {
        vmx_ctl_reply_error(call, KVC_RPC_E_INVALID_ARGUMENT, "empty path");
        return;
    }
    if ((size_t)snprintf(path, sizeof(path), "%s%s%s", req->path[0] == '/' ? "" : vm->cfg.dir,
                         req->path[0] == '/' ? "" : "/", req->path) >= sizeof(path)) {
        vmx_ctl_reply_error(call, KVC_RPC_E_INVALID_ARGUMENT, "path too long");
        return;
    }
    int has = read_disk_section(path, name, &id, err, sizeof(err));
    if (has < 0) {
        vmx_ctl_reply_error(call, has == -ENOENT ? KVC_RPC_E_NOT_FOUND : KVC_RPC_E_INVALID_ARGUMENT,
                            "%s", err);
        return;
    }
    if (has && (!vm->blk_on || vm->blk.readonly)) {
        vmx_ctl_reply_error(call, KVC_RPC_E_CONFLICT, "the snapshot has disk state, this VM has "
                            "no writable disk");
        return;
    }
    Kvc__Vmx__SnapshotDeleteReply r = KVC__VMX__SNAPSHOT_DELETE_REPLY__INIT;
    struct disk_merge_info mi;
    memset(&mi, 0, sizeof(mi));
    bool was_running = vm->state == VMX_RUNNING;
    int rc = 0;
    if (has) {
        pthread_mutex_lock(&vm->dev_lock);
        rc = disk_delete_check(&vm->blk.disk, name, id, err, sizeof(err));
        pthread_mutex_unlock(&vm->dev_lock);
        if (rc) {
            vmx_ctl_reply_error(call, rc == -EBUSY ? KVC_RPC_E_CONFLICT : KVC_RPC_E_CONFLICT,
                                "%s", err);
            return;
        }
        /* Merging changes the layer under the guest: no I/O meanwhile. */
        vmx_pause(vm);
    }
    /* The snapshot file goes first: once it is gone nothing can restore the
     * layer the merge is about to change. */
    if (unlink(path) < 0 || fsync_parent(path) < 0) {
        rc = -errno;
        if (has && was_running)
            vmx_resume(vm);
        vmx_ctl_reply_error(call, KVC_RPC_E_INTERNAL, "%s: %s", path, strerror(-rc));
        return;
    }
    if (has) {
        pthread_mutex_lock(&vm->dev_lock);
        rc = disk_delete_snapshot(&vm->blk.disk, name, id, &mi, err, sizeof(err));
        pthread_mutex_unlock(&vm->dev_lock);
        if (was_running)
            vmx_resume(vm);
        if (rc) {
            kvc_err("snapshot delete %s: disk: %s", path, err);
            vmx_ctl_reply_error(call, KVC_RPC_E_INTERNAL, "snapshot file removed, but the disk "
                                "merge failed: %s", err);
            return;
        }
    }
    r.path = path;
    r.merged_layer = mi.merged;
    r.into_layer = mi.into;
    r.clusters = mi.clusters;
    r.dropped_layer = mi.removed;
    r.duration_us = (vmx_now_ns() - t0) / 1000;
    kvc_info("VMX-SNAPSHOT-DELETE path=%s merged=%s into=%s clusters=%llu us=%llu", path,
             mi.merged[0] ? mi.merged : "none", mi.into[0] ? mi.into : "none",
             (unsigned long long)mi.clusters, (unsigned long long)r.duration_us);
    vmx_ctl_reply(call, &r.base);
}

static void on_disk_info(struct vmx_ctl_call *call, const ProtobufCMessage *m, void *arg)
{
    struct vmx *vm = arg;
    (void)m;
    Kvc__Vmx__DiskInfo r = KVC__VMX__DISK_INFO__INIT;
    Kvc__Vmx__DiskLayer l[DISK_MAX_LAYERS], *lp[DISK_MAX_LAYERS];
    char names[DISK_MAX_LAYERS][DISK_NAME_MAX];
    if (!vm->blk_on) {
        vmx_ctl_reply(call, &r.base);
        return;
    }
    pthread_mutex_lock(&vm->dev_lock);
    const struct virtio_blk *b = &vm->blk;
    r.present = true;
    r.path = vm->cfg.disk_path;
    r.readonly = b->readonly;
    r.capacity_sectors = virtio_blk_capacity(b);
    for (unsigned i = 0; i < b->disk.n; i++) {
        kvc__vmx__disk_layer__init(&l[i]);
        snprintf(names[i], sizeof(names[i]), "%s", b->disk.layers[i].name);
        l[i].name = names[i];
        l[i].allocated_clusters = b->disk.layers[i].allocated;
        lp[i] = &l[i];
    }
    r.n_layers = b->disk.n;
    r.layers = lp;
    r.requests = b->requests;
    r.errors = b->errors;
    r.unsupported = b->unsupported;
    r.read_bytes = b->disk.read_bytes;
    r.write_bytes = b->disk.write_bytes;
    r.flushes = b->disk.flushes;
    r.cow_clusters = b->disk.cow_clusters;
    r.status = b->dev.status;
    r.read_requests = b->read_reqs;
    r.write_requests = b->write_reqs;
    r.flush_requests = b->flush_reqs;
    pthread_mutex_unlock(&vm->dev_lock);
    vmx_ctl_reply(call, &r.base);
}

/* ---- storage migration (disk_mirror.c) ---- */

static void reply_move_status(struct vmx_ctl_call *call, struct vmx *vm)
{
    struct disk_move_status s;
    disk_move_get_status(vm, &s);
    Kvc__Vmx__DiskMoveStatus r = KVC__VMX__DISK_MOVE_STATUS__INIT;
    r.phase = (Kvc__Vmx__DiskMovePhase)s.phase;
    r.from_path = s.from;
    r.to_path = s.to;
    r.percent = s.percent;
    r.total_bytes = s.total_bytes;
    r.copied_bytes = s.copied_bytes;
    r.dirty_clusters = s.dirty_clusters;
    r.recopied_clusters = s.recopied_clusters;
    r.rounds = s.rounds;
    r.files = s.files;
    r.pause_us = s.pause_us;
    r.total_ms = s.total_ms;
    r.error = s.error;
    vmx_ctl_reply(call, &r.base);
}

static void on_disk_move(struct vmx_ctl_call *call, const ProtobufCMessage *m, void *arg)
{
    struct vmx *vm = arg;
    const Kvc__Vmx__DiskMoveRequest *req = (const void *)m;
    char err[PATH_MAX + 256] = "";
    int rc = disk_move_start(vm, req->dest_dir ? req->dest_dir : "", req->max_bandwidth, err, sizeof(err));
    if (rc) {
        int code = rc == -EBUSY ? KVC_RPC_E_CONFLICT
                 : rc == -ENOENT ? KVC_RPC_E_NOT_FOUND
                 : rc == -ENODEV ? KVC_RPC_E_CONFLICT
                 : rc == -EINVAL || rc == -ENOTDIR || rc == -EEXIST || rc == -ENOSPC
                   || rc == -ENAMETOOLONG ? KVC_RPC_E_INVALID_ARGUMENT : KVC_RPC_E_INTERNAL;
        vmx_ctl_reply_error(call, code, "%s (%s)", err[0] ? err : strerror(-rc), strerror(-rc));
        return;
    }
    reply_move_status(call, vm);
}

static void on_disk_move_status(struct vmx_ctl_call *call, const ProtobufCMessage *m, void *arg)
{
    (void)m;
    reply_move_status(call, arg);
}

static void on_disk_move_cancel(struct vmx_ctl_call *call, const ProtobufCMessage *m, void *arg)
{
    (void)m;
    if (disk_move_cancel(arg) < 0) {
        vmx_ctl_reply_error(call, KVC_RPC_E_CONFLICT, "no disk move is running");
        return;
    }
    reply_move_status(call, arg);
}

/* ---- the VM's folder (VMX_FOLDER_MOVE, docs/vmx.md "Moving the VM's folder") ----
 *
 * After VMX_DISK_MOVE put the disk in another folder, the rest of what vmx
 * keeps open in the old one follows: the lease (taken in the new folder,
 * same owner, before the old one is released: it never lapses), the serial
 * log (carried over byte for byte, see serial_log_move), vmx's own log and
 * the paths later operations resolve against (config folder, snapshot
 * paths).  Only what lives in the old folder moves; a path elsewhere stays.
 * vmx does not copy other files (the config, snapshot files, nvram): the
 * caller does, as it wrote them. */

/* PATH's folder is DIR (compared by device and inode). */
static bool in_folder(const char *path, const char *dir)
{
    char d[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!path[0] || !slash || (size_t)(slash - path) >= sizeof(d))
        return false;
    memcpy(d, path, (size_t)(slash - path));
    d[slash - path] = 0;
    return vmx_same_file(d[0] ? d : "/", dir);
}

/* DIR/<basename of PATH> into OUT; -ENAMETOOLONG. */
static int rebase(char *out, size_t cap, const char *dir, const char *path)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    return (size_t)snprintf(out, cap, "%s/%s", dir, b) >= cap ? -ENAMETOOLONG : 0;
}

/* vmx's own log into NEW: the bulk first, then the switch, then whatever
 * was written meanwhile (lines written during the switch may land a few
 * lines late; none is lost).  0, or -errno with ERR: *SWITCHED says
 * whether vmx logs to NEW now (if not, NEW was removed). */
static int move_own_log(const char *old, const char *new, bool *switched, char *err, size_t errlen)
{
    int in = -1, out = -1, rc;
    uint64_t off = 0;
    *switched = false;
    if ((in = open(old, O_RDONLY | O_CLOEXEC)) < 0
        || (out = open(new, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0640)) < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", in < 0 ? old : new, strerror(errno));
        if (in >= 0)
            close(in);
        return rc;
    }
    if ((rc = vmx_copy_tail(in, out, &off)) == 0 && (rc = kvc_log_open(new)) == 0) {
        *switched = true;
        rc = vmx_copy_tail(in, out, &off);
    }
    if (!rc && fsync(out) < 0)
        rc = -errno;
    if (rc)
        snprintf(err, errlen, "copying %s to %s: %s", old, new, strerror(-rc));
    close(in);
    close(out);
    if (!*switched)
        unlink(new);
    return rc;
}

#define FM_FAIL(CODE, ...) do { vmx_ctl_reply_error(call, CODE, __VA_ARGS__); return; } while (0)

static void on_folder_move(struct vmx_ctl_call *call, const ProtobufCMessage *m, void *arg)
{
    struct vmx *vm = arg;
    struct vmx_config *c = &vm->cfg;
    const Kvc__Vmx__FolderMoveRequest *req = (const void *)m;
    char dir[PATH_MAX], cfg_path[PATH_MAX], lease[PATH_MAX], serial[PATH_MAX], log[PATH_MAX];
    char err[2 * PATH_MAX + 256] = "", old_dir[PATH_MAX];
    char image[PATH_MAX] = "", kernel[PATH_MAX] = "", initrd[PATH_MAX] = "";
    struct stat st;
    uint64_t t0 = vmx_now_ns(), copied = 0;

    if (vm->stop != VMX_STOP_NONE || (vm->state != VMX_RUNNING && vm->state != VMX_PAUSED))
        FM_FAIL(KVC_RPC_E_CONFLICT, "VM is not running");
    if (vmx_migrate_active(vm))
        FM_FAIL(KVC_RPC_E_CONFLICT, "a migration is in progress");
    if (disk_move_active(vm))
        FM_FAIL(KVC_RPC_E_CONFLICT, "a disk move is in progress: the folder follows once it "
                "completed");
    const char *d = req->dest_dir ? req->dest_dir : "";
    size_t n = strlen(d);
    while (n > 1 && d[n - 1] == '/')
        n--;
    if (d[0] != '/')
        FM_FAIL(KVC_RPC_E_INVALID_ARGUMENT, "the target folder must be an absolute path");
    if (n >= sizeof(dir) - 130)
        FM_FAIL(KVC_RPC_E_INVALID_ARGUMENT, "target folder path too long");
    memcpy(dir, d, n);
    dir[n] = 0;
    if (stat(dir, &st) < 0)
        FM_FAIL(errno == ENOENT ? KVC_RPC_E_NOT_FOUND : KVC_RPC_E_INVALID_ARGUMENT, "%s: %s",
                dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        FM_FAIL(KVC_RPC_E_INVALID_ARGUMENT, "%s: not a folder", dir);
    if (vmx_same_file(dir, c->dir))
        FM_FAIL(KVC_RPC_E_INVALID_ARGUMENT, "%s is the VM's folder already", dir);
    if (vm->blk_on && !in_folder(c->disk_path, dir))
        FM_FAIL(KVC_RPC_E_CONFLICT, "the disk (%s) is not in %s: move it there first "
                "(VMX_DISK_MOVE)", c->disk_path, dir);
    if (c->lease_path[0] && (!vm->lease || kvc_lease_lost(vm->lease)))
        FM_FAIL(KVC_RPC_E_CONFLICT, "vmx does not hold the VM's lease %s", c->lease_path);

    /* What moves: what lives in the old folder. */
    bool mv_lease = c->lease_path[0] && in_folder(c->lease_path, c->dir);
    bool mv_serial = c->serial_log[0] && vm->serial.log_fd >= 0 && in_folder(c->serial_log, c->dir);
    bool mv_log = vm->log_path[0] && in_folder(vm->log_path, c->dir);
    if (rebase(cfg_path, sizeof(cfg_path), dir, c->path)
        || (mv_lease && rebase(lease, sizeof(lease), dir, c->lease_path))
        || (mv_serial && rebase(serial, sizeof(serial), dir, c->serial_log))
        || (mv_log && rebase(log, sizeof(log), dir, vm->log_path))
        || (c->image[0] && in_folder(c->image, c->dir) && rebase(image, sizeof(image), dir, c->image))
        || (c->kernel[0] && in_folder(c->kernel, c->dir) && rebase(kernel, sizeof(kernel), dir, c->kernel))
        || (c->initrd[0] && in_folder(c->initrd, c->dir) && rebase(initrd, sizeof(initrd), dir, c->initrd)))
        FM_FAIL(KVC_RPC_E_INVALID_ARGUMENT, "a path in %s would be too long", dir);
    if (mv_serial && lstat(serial, &st) == 0)
        FM_FAIL(KVC_RPC_E_INVALID_ARGUMENT, "%s exists already (the serial log goes there)", serial);
    if (mv_log && lstat(log, &st) == 0)
        FM_FAIL(KVC_RPC_E_INVALID_ARGUMENT, "%s exists already (vmx's log goes there)", log);
    /* Still ours?  A lease taken meanwhile must not be carried over: the
     * renewal timer stops the VM on its own at its next tick. */
    if (mv_lease && kvc_lease_renew(vm->lease, NULL, err, sizeof(err)) == -ESTALE)
        FM_FAIL(KVC_RPC_E_CONFLICT, "the lease was lost: %s", err);

    /* 1. The lease in the new folder, while the old one is held. */
    struct kvc_lease *nl = NULL;
    if (mv_lease) {
        struct kvc_lease_opts o = {
            .path = lease, .owner = c->lease_owner,
            .owner_name = c->lease_owner_name[0] ? c->lease_owner_name : c->lease_owner,
            .vm = c->name, .duration_ms = c->lease_duration_ms,
        };
        int rc = kvc_lease_acquire_wait(&o, 200, &nl, NULL, err, sizeof(err));
        if (rc)
            FM_FAIL(rc == -EBUSY ? KVC_RPC_E_CONFLICT : KVC_RPC_E_INTERNAL,
                    "taking the lease %s: %s", lease, err);
    }
    /* 2. The serial log, whole. */
    if (mv_serial) {
        int rc = serial_log_move(&vm->serial, c->serial_log, serial, &vm->dev_lock, &copied,
                                 err, sizeof(err));
        if (rc) {
            if (nl) {
                kvc_lease_release(nl);
                unlink(lease);
            }
            FM_FAIL(KVC_RPC_E_INTERNAL, "moving the serial log: %s", err);
        }
    }
    /* 3. The switch: from here the new folder is the VM's. */
    snprintf(old_dir, sizeof(old_dir), "%s", c->dir);
    if (nl) {
        struct kvc_lease *ol = vm->lease;
        vm->lease = nl;
        int rc = kvc_lease_release(ol);
        if (rc)
            kvc_warn("folder move: releasing the old lease %s: %s", c->lease_path, strerror(-rc));
        snprintf(c->lease_path, sizeof(c->lease_path), "%s", lease);
    }
    if (mv_serial)
        snprintf(c->serial_log, sizeof(c->serial_log), "%s", serial);
    snprintf(c->path, sizeof(c->path), "%s", cfg_path);
    snprintf(c->dir, sizeof(c->dir), "%s", dir);
    if (image[0])
        snprintf(c->image, sizeof(c->image), "%s", image);
    if (kernel[0])
        snprintf(c->kernel, sizeof(c->kernel), "%s", kernel);
    if (initrd[0])
        snprintf(c->initrd, sizeof(c->initrd), "%s", initrd);
    /* 4. vmx's log, best effort (the VM is moved whatever happens here). */
    if (mv_log) {
        bool sw;
        int rc = move_own_log(vm->log_path, log, &sw, err, sizeof(err));
        if (sw)
            snprintf(vm->log_path, sizeof(vm->log_path), "%s", log);
        if (rc)
            kvc_warn("folder move: vmx's log (now %s): %s", vm->log_path, err);
        mv_log = sw;
    }
    fsync_parent(cfg_path);

    Kvc__Vmx__FolderMoveReply r = KVC__VMX__FOLDER_MOVE_REPLY__INIT;
    r.from_dir = old_dir;
    r.to_dir = c->dir;
    r.config_path = c->path;
    r.lease_path = c->lease_path;
    r.lease_generation = vm->lease ? kvc_lease_generation(vm->lease) : 0;
    r.serial_log = c->serial_log;
    r.serial_bytes = copied;
    r.log_path = mv_log ? vm->log_path : (char *)"";
    r.duration_us = (vmx_now_ns() - t0) / 1000;
    kvc_info("VMX-FOLDER-MOVE from=%s to=%s lease=%s generation=%llu serial_bytes=%llu us=%llu",
             old_dir, c->dir, c->lease_path[0] ? c->lease_path : "none",
             (unsigned long long)r.lease_generation, (unsigned long long)copied,
             (unsigned long long)r.duration_us);
    vmx_ctl_reply(call, &r.base);
}

#define M(ID, NAME, REQ, RESP, FN) \
    { .id = KVC__VMX__METHOD__##ID, .name = NAME, .request = &kvc__vmx__##REQ##__descriptor, \
      .response = &kvc__vmx__##RESP##__descriptor, .handler = FN }

static const struct vmx_ctl_method disk_methods[] = {
    M(VMX_SNAPSHOT_DELETE, "SnapshotDelete", snapshot_delete_request, snapshot_delete_reply,
      on_snapshot_delete),
    M(VMX_DISK_INFO, "DiskInfo", disk_info_request, disk_info, on_disk_info),
    M(VMX_DISK_MOVE, "DiskMove", disk_move_request, disk_move_status, on_disk_move),
    M(VMX_DISK_MOVE_STATUS, "DiskMoveStatus", disk_move_status_request, disk_move_status,
      on_disk_move_status),
    M(VMX_DISK_MOVE_CANCEL, "DiskMoveCancel", disk_move_status_request, disk_move_status,
      on_disk_move_cancel),
    M(VMX_FOLDER_MOVE, "FolderMove", folder_move_request, folder_move_reply, on_folder_move),
};

const struct vmx_ctl_method *vmx_disk_ctl_table(size_t *n)
{
    *n = sizeof(disk_methods) / sizeof(disk_methods[0]);
    return disk_methods;
}
