/* VM snapshots over the host protocol (snapshots.h).
 *
 * hostd owns the index (<dir>/<name>.vmsd, one line per snapshot, written
 * to a temporary file and renamed over the old one); the backend takes,
 * reverts to and deletes the state itself (backend.h snapshot_*): the sim
 * models power state, kvm's vmx writes the memory file and the disk delta.
 * Index lines:
 *   next <id>
 *   current <id>
 *   snap <id> <created> <power 0|1|2> <memory 0|1> <name>\t<description>
 * Names and descriptions carry no tab, newline or control character (the
 * REST layer and this file both refuse them). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "host.pb-c.h"
#include "hostd/backend.h"
#include "hostd/hostd.h"
#include "hostd/snapshots.h"

KVC_LOG_MODULE(snapshots);

struct snap {
    uint32_t id;
    int64_t created;
    int power;
    bool memory;
    char name[HOSTD_SNAPSHOT_NAME_MAX + 1];
    char desc[HOSTD_SNAPSHOT_DESC_MAX + 1];
};

struct index {
    uint32_t next, current;
    size_t n;
    struct snap s[HOSTD_SNAPSHOTS_MAX];
};

static void index_path(const struct hostd_vm *vm, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s.vmsd", vm->dir, vm->name);
}

static void snap_path(const struct hostd_vm *vm, uint32_t id, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s-snap-%u.vmsn", vm->dir, vm->name, id);
}

static bool clean_text(const char *s, size_t max)
{
    size_t n = strlen(s);

    if (n > max)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

/* 0, or -errno for an index that cannot be read (absent: empty). */
static int index_load(const struct hostd_vm *vm, struct index *ix)
{
    char path[PATH_MAX + 16], line[1024];
    FILE *f;

    memset(ix, 0, sizeof *ix);
    ix->next = 1;
    index_path(vm, path, sizeof path);
    if (!(f = fopen(path, "r")))
        return errno == ENOENT ? 0 : -errno;
    while (fgets(line, sizeof line, f)) {
        struct snap *s;
        unsigned id, power, mem;
        long long created;
        int off = 0;
        char *tab, *nl;

        if ((nl = strchr(line, '\n')))
            *nl = '\0';
        if (sscanf(line, "next %u", &id) == 1) {
            ix->next = id;
            continue;
        }
        if (sscanf(line, "current %u", &id) == 1) {
            ix->current = id;
            continue;
        }
        if (ix->n == HOSTD_SNAPSHOTS_MAX ||
            sscanf(line, "snap %u %lld %u %u%n", &id, &created, &power, &mem, &off) != 4 ||
            line[off] != ' ' || power > 2 || !(tab = strchr(line + off + 1, '\t'))) {
            kvc_warn("%s: skipping a bad index line", path);
            continue;
        }
        *tab = '\0';
        off++;                  /* the one space before the name */
        s = &ix->s[ix->n++];
        s->id = id;
        s->created = created;
        s->power = (int)power;
        s->memory = mem != 0;
        snprintf(s->name, sizeof s->name, "%s", line + off);
        snprintf(s->desc, sizeof s->desc, "%s", tab + 1);
        if (id >= ix->next)
            ix->next = id + 1;
    }
    fclose(f);
    return 0;
}

static int index_save(const struct hostd_vm *vm, const struct index *ix)
{
    char path[PATH_MAX + 16], tmp[PATH_MAX + 32];
    FILE *f;
    int rc = 0;

    index_path(vm, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (!(f = fopen(tmp, "w")))
        return -errno;
    fprintf(f, "next %u\ncurrent %u\n", ix->next, ix->current);
    for (size_t i = 0; i < ix->n; i++)
        fprintf(f, "snap %u %lld %d %d %s\t%s\n", ix->s[i].id, (long long)ix->s[i].created,
                ix->s[i].power, ix->s[i].memory, ix->s[i].name, ix->s[i].desc);
    if (fflush(f) || fsync(fileno(f)))
        rc = -errno;
    if (fclose(f) && !rc)
        rc = -errno;
    if (!rc && rename(tmp, path) < 0)
        rc = -errno;
    if (rc)
        unlink(tmp);
    return rc;
}

static struct snap *index_find(struct index *ix, uint32_t id)
{
    for (size_t i = 0; i < ix->n; i++)
        if (ix->s[i].id == id)
            return &ix->s[i];
    return NULL;
}

static void info_of(const struct index *ix, const struct snap *s, Kvc__Host__SnapshotInfo *i)
{
    kvc__host__snapshot_info__init(i);
    i->id = s->id;
    i->name = (char *)s->name;
    i->description = (char *)s->desc;
    i->created = s->created;
    i->power_state = s->power == VM_ON ? KVC__HOST__POWER_STATE__POWERED_ON
                   : s->power == VM_SUSPENDED ? KVC__HOST__POWER_STATE__SUSPENDED
                   : KVC__HOST__POWER_STATE__POWERED_OFF;
    i->memory = s->memory;
    i->current = ix->current == s->id;
}

/* The VM a snapshot call is for, or NULL after answering the call. */
static struct hostd_vm *vm_for(struct hostd_host *h, struct kvc_rpc_call *call,
                               const char *uuid, bool mutating)
{
    struct hostd_vm *vm;

    if (!h->vpxd || kvc_rpc_call_conn(call) != h->vpxd) {
        kvc_rpc_reply_error(call, KVC_RPC_E_PERMISSION, "say hello first");
        return NULL;
    }
    if (!uuid || !*uuid || !(vm = hostd_vm_find(h, uuid))) {
        kvc_rpc_reply_error(call, KVC_RPC_E_NOT_FOUND, "no such VM on this host");
        return NULL;
    }
    if (mutating && vm->busy) {
        kvc_rpc_reply_error(call, KVC_RPC_E_CONFLICT,
                            "another operation on the VM is still running");
        return NULL;
    }
    if (mutating && !h->be->snapshot_take && !h->be->snapshot_take_async) {
        kvc_rpc_reply_error(call, KVC_RPC_E_NOT_IMPLEMENTED,
                            "the %s backend does not take snapshots", h->be->name);
        return NULL;
    }
    return vm;
}

static bool load_or_fail(struct kvc_rpc_call *call, struct hostd_vm *vm, struct index *ix)
{
    int rc = index_load(vm, ix);

    if (rc)
        kvc_rpc_reply_error(call, KVC_RPC_E_INTERNAL, "cannot read the snapshot index: %s",
                            strerror(-rc));
    return rc == 0;
}

/* One mutating call while the backend works: the VM is busy from the start
 * until the reply, and the index is written only once the backend is done. */
struct snap_op {
    struct hostd_host *h;
    struct hostd_vm *vm;
    struct kvc_rpc_call *call;
    struct index ix;
    uint32_t id;                    /* the snapshot */
    enum vm_power power;            /* the VM's, when the call came */
    bool memory;
    bool announce;                  /* the VM changed (a revert) */
    char name[HOSTD_SNAPSHOT_NAME_MAX + 1];
    char desc[HOSTD_SNAPSHOT_DESC_MAX + 1];
    char path[PATH_MAX + 32];
    char err[256];                  /* take: why its index write failed */
};

/* The op for CALL on VM with its index loaded, or NULL after answering the
 * call.  The VM turns busy once the backend is called (be_*). */
static struct snap_op *op_new(struct hostd_host *h, struct kvc_rpc_call *call,
                              struct hostd_vm *vm)
{
    struct snap_op *o = calloc(1, sizeof *o);

    if (!o) {
        kvc_rpc_reply_error(call, KVC_RPC_E_INTERNAL, "out of memory");
        return NULL;
    }
    if (!load_or_fail(call, vm, &o->ix)) {
        free(o);
        return NULL;
    }
    o->h = h;
    o->vm = vm;
    o->call = call;
    o->power = vm->power;
    return o;
}

/* Ends the op: the VM is free again; announces a power state the backend
 * changed (a revert, or a failed one that got as far as a power-off). */
static void op_end(struct snap_op *o)
{
    o->vm->busy = false;
    if (o->announce || o->vm->power != o->power)
        hostd_vm_changed(o->h, o->vm, false);
    free(o);
}

static int be_code(int rc)
{
    /* EINVAL: the snapshot does not fit the VM as it is now (kvm). */
    return rc == -ENOTSUP ? KVC_RPC_E_NOT_IMPLEMENTED
         : rc == -EBUSY || rc == -EINVAL ? KVC_RPC_E_CONFLICT : KVC_RPC_E_UNAVAILABLE;
}

/* The backend's op, through its asynchronous form or its synchronous one;
 * DONE exactly once. */
static void be_take(struct snap_op *o, hostd_be_done_fn done)
{
    const struct hostd_backend_ops *be = o->h->be;
    char err[256] = "";
    int rc;

    o->vm->busy = true;
    if (be->snapshot_take_async) {
        be->snapshot_take_async(o->h, o->vm, o->path, o->memory, done, o);
        return;
    }
    rc = be->snapshot_take(o->h, o->vm, o->path, o->memory, err, sizeof err);
    done(o->h, o->vm, rc, *err ? err : NULL, o);
}

static void be_revert(struct snap_op *o, const struct snap *s, hostd_be_done_fn done)
{
    const struct hostd_backend_ops *be = o->h->be;
    char err[256] = "";
    int rc;

    o->vm->busy = true;
    if (be->snapshot_revert_async) {
        be->snapshot_revert_async(o->h, o->vm, o->path, (enum vm_power)s->power, s->memory,
                                  done, o);
        return;
    }
    rc = be->snapshot_revert(o->h, o->vm, o->path, (enum vm_power)s->power, s->memory, err,
                             sizeof err);
    done(o->h, o->vm, rc, *err ? err : NULL, o);
}

static void be_delete(struct snap_op *o, hostd_be_done_fn done)
{
    const struct hostd_backend_ops *be = o->h->be;
    char err[256] = "";
    int rc;

    o->vm->busy = true;
    if (be->snapshot_delete_async) {
        be->snapshot_delete_async(o->h, o->vm, o->path, done, o);
        return;
    }
    rc = be->snapshot_delete(o->h, o->vm, o->path, err, sizeof err);
    done(o->h, o->vm, rc, *err ? err : NULL, o);
}

/* The index could not be written after a take: the snapshot was undone. */
static void on_take_undone(struct hostd_host *h, struct hostd_vm *vm, int rc, const char *msg,
                           void *arg)
{
    struct snap_op *o = arg;

    if (rc)
        kvc_warn("vm %s: undoing snapshot %s failed: %s", vm->uuid, o->path,
                 msg ? msg : strerror(-rc));
    kvc_rpc_reply_error(o->call, KVC_RPC_E_INTERNAL, "cannot write the snapshot index: %s",
                        o->err);
    op_end(o);
}

static void on_taken(struct hostd_host *h, struct hostd_vm *vm, int rc, const char *msg,
                     void *arg)
{
    struct snap_op *o = arg;
    struct index *ix = &o->ix;
    struct snap *s;
    Kvc__Host__SnapshotInfo info;

    if (rc) {
        kvc_rpc_reply_error(o->call, be_code(rc), "taking the snapshot failed: %s",
                            msg ? msg : strerror(-rc));
        op_end(o);
        return;
    }
    s = &ix->s[ix->n++];
    s->id = ix->next++;
    s->created = (int64_t)time(NULL);
    s->power = o->memory ? (int)o->power : VM_OFF;
    s->memory = o->memory;
    snprintf(s->name, sizeof s->name, "%s", o->name);
    snprintf(s->desc, sizeof s->desc, "%s", o->desc);
    ix->current = s->id;
    if ((rc = index_save(vm, ix))) {
        snprintf(o->err, sizeof o->err, "%s", strerror(-rc));
        be_delete(o, on_take_undone);
        return;
    }
    kvc_info("vm %s: snapshot %u '%s' taken (%s)", vm->uuid, s->id, s->name,
             o->memory ? "with memory" : "disk only");
    info_of(ix, s, &info);
    kvc_rpc_reply(o->call, &info.base);
    op_end(o);
}

void hostd_snapshot_on_create(struct kvc_rpc_call *call, const ProtobufCMessage *req,
                              void *arg)
{
    struct hostd_host *h = arg;
    const Kvc__Host__SnapshotRequest *m = (const Kvc__Host__SnapshotRequest *)req;
    struct hostd_vm *vm;
    struct snap_op *o;

    if (!m->name || !*m->name || !clean_text(m->name, HOSTD_SNAPSHOT_NAME_MAX)) {
        kvc_rpc_reply_error(call, KVC_RPC_E_INVALID_ARGUMENT,
                            "a snapshot name is 1..%u printable characters",
                            HOSTD_SNAPSHOT_NAME_MAX);
        return;
    }
    if (m->description && !clean_text(m->description, HOSTD_SNAPSHOT_DESC_MAX)) {
        kvc_rpc_reply_error(call, KVC_RPC_E_INVALID_ARGUMENT,
                            "a snapshot description is at most %u printable characters",
                            HOSTD_SNAPSHOT_DESC_MAX);
        return;
    }
    if (!(vm = vm_for(h, call, m->vm_uuid, true)) || !(o = op_new(h, call, vm)))
        return;
    if (o->ix.n == HOSTD_SNAPSHOTS_MAX) {
        kvc_rpc_reply_error(call, KVC_RPC_E_CONFLICT, "the VM has %u snapshots, the most it "
                            "may have: delete one first", HOSTD_SNAPSHOTS_MAX);
        free(o);
        return;
    }
    for (size_t i = 0; i < o->ix.n; i++)
        if (!strcmp(o->ix.s[i].name, m->name)) {
            kvc_rpc_reply_error(call, KVC_RPC_E_CONFLICT,
                                "the VM has a snapshot named '%s' already", m->name);
            free(o);
            return;
        }
    /* Memory is kept only of a running VM; a powered-off one has none. */
    o->memory = m->memory && vm->power == VM_ON;
    snprintf(o->name, sizeof o->name, "%s", m->name);
    snprintf(o->desc, sizeof o->desc, "%s", m->description ? m->description : "");
    snap_path(vm, o->ix.next, o->path, sizeof o->path);
    be_take(o, on_taken);
}

void hostd_snapshot_on_list(struct kvc_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
    struct hostd_host *h = arg;
    const Kvc__Host__SnapshotRequest *m = (const Kvc__Host__SnapshotRequest *)req;
    Kvc__Host__SnapshotList l = KVC__HOST__SNAPSHOT_LIST__INIT;
    Kvc__Host__SnapshotInfo infos[HOSTD_SNAPSHOTS_MAX], *ptrs[HOSTD_SNAPSHOTS_MAX];
    struct hostd_vm *vm;
    struct index *ix;

    if (!(vm = vm_for(h, call, m->vm_uuid, false)))
        return;
    if (!(ix = calloc(1, sizeof *ix))) {
        kvc_rpc_reply_error(call, KVC_RPC_E_INTERNAL, "out of memory");
        return;
    }
    if (load_or_fail(call, vm, ix)) {
        for (size_t i = 0; i < ix->n; i++) {
            info_of(ix, &ix->s[i], &infos[i]);
            ptrs[i] = &infos[i];
        }
        l.n_snapshots = ix->n;
        l.snapshots = ptrs;
        kvc_rpc_reply(call, &l.base);
    }
    free(ix);
}

static void on_reverted(struct hostd_host *h, struct hostd_vm *vm, int rc, const char *msg,
                        void *arg)
{
    struct snap_op *o = arg;
    struct snap *s = index_find(&o->ix, o->id);
    Kvc__Host__SnapshotInfo info;

    if (rc) {
        kvc_rpc_reply_error(o->call, be_code(rc), "reverting to the snapshot failed: %s",
                            msg ? msg : strerror(-rc));
        op_end(o);
        return;
    }
    o->ix.current = s->id;
    if ((rc = index_save(vm, &o->ix)))
        kvc_warn("vm %s: reverted, but the index was not updated: %s", vm->uuid,
                 strerror(-rc));
    kvc_info("vm %s: reverted to snapshot %u '%s'", vm->uuid, s->id, s->name);
    info_of(&o->ix, s, &info);
    kvc_rpc_reply(o->call, &info.base);
    o->announce = true;
    op_end(o);
}

/* An operation on snapshot M->snapshot of M's VM (revert, delete): the
 * VM, the index and the snapshot's file; NULL once the call is answered. */
static struct snap_op *op_for_snapshot(struct hostd_host *h, struct kvc_rpc_call *call,
                                       const Kvc__Host__SnapshotRequest *m, struct snap **sp)
{
    struct hostd_vm *vm;
    struct snap_op *o;
    struct snap *s;

    if (!(vm = vm_for(h, call, m->vm_uuid, true)) || !(o = op_new(h, call, vm)))
        return NULL;
    if (!(s = index_find(&o->ix, m->snapshot))) {
        kvc_rpc_reply_error(call, KVC_RPC_E_NOT_FOUND, "the VM has no snapshot %u",
                            m->snapshot);
        free(o);
        return NULL;
    }
    o->id = s->id;
    snap_path(vm, s->id, o->path, sizeof o->path);
    *sp = s;
    return o;
}

void hostd_snapshot_on_revert(struct kvc_rpc_call *call, const ProtobufCMessage *req,
                              void *arg)
{
    struct snap_op *o;
    struct snap *s;

    if (!(o = op_for_snapshot(arg, call, (const Kvc__Host__SnapshotRequest *)req, &s)))
        return;
    be_revert(o, s, on_reverted);
}

static void on_deleted(struct hostd_host *h, struct hostd_vm *vm, int rc, const char *msg,
                       void *arg)
{
    struct snap_op *o = arg;
    struct index *ix = &o->ix;
    struct snap *s = index_find(ix, o->id);
    Kvc__Host__Status st = KVC__HOST__STATUS__INIT;

    if (rc) {
        kvc_rpc_reply_error(o->call, be_code(rc), "deleting the snapshot failed: %s",
                            msg ? msg : strerror(-rc));
        op_end(o);
        return;
    }
    if (ix->current == s->id)
        ix->current = 0;
    kvc_info("vm %s: snapshot %u '%s' deleted", vm->uuid, s->id, s->name);
    memmove(s, s + 1, (size_t)(&ix->s[ix->n] - (s + 1)) * sizeof *s);
    ix->n--;
    if ((rc = index_save(vm, ix)))
        kvc_rpc_reply_error(o->call, KVC_RPC_E_INTERNAL, "cannot write the snapshot index: %s",
                            strerror(-rc));
    else
        kvc_rpc_reply(o->call, &st.base);
    op_end(o);
}

void hostd_snapshot_on_delete(struct kvc_rpc_call *call, const ProtobufCMessage *req,
                              void *arg)
{
    struct snap_op *o;
    struct snap *s;

    if (!(o = op_for_snapshot(arg, call, (const Kvc__Host__SnapshotRequest *)req, &s)))
        return;
    be_delete(o, on_deleted);
}
