/* Control methods of the VM's disk (proto/vmx.proto, ids 0x4020..): delete
 * a snapshot (which consolidates its delta) and the disk's state.  Served
 * beside vmx_ctl_methods (vmx_main.c); they run on the main loop. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/rpc.h"
#include "vmkernel-kvm/disk_mirror.h"
#include "vmkernel-kvm/migrate.h"
#include "vmkernel-kvm/vmx.h"
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
};

const struct vmx_ctl_method *vmx_disk_ctl_table(size_t *n)
{
    *n = sizeof(disk_methods) / sizeof(disk_methods[0]);
    return disk_methods;
}
