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
    if (mutating && !h->be->snapshot_take) {
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

void hostd_snapshot_on_create(struct kvc_rpc_call *call, const ProtobufCMessage *req,
                              void *arg)
{
    struct hostd_host *h = arg;
    const Kvc__Host__SnapshotRequest *m = (const Kvc__Host__SnapshotRequest *)req;
    struct hostd_vm *vm;
    struct index *ix;
    struct snap *s;
    Kvc__Host__SnapshotInfo info;
    char path[PATH_MAX + 32], err[256] = "";
    bool memory;
    int rc;

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
    if (!(vm = vm_for(h, call, m->vm_uuid, true)))
        return;
    if (!(ix = calloc(1, sizeof *ix))) {
        kvc_rpc_reply_error(call, KVC_RPC_E_INTERNAL, "out of memory");
        return;
    }
    if (!load_or_fail(call, vm, ix))
        goto out;
    if (ix->n == HOSTD_SNAPSHOTS_MAX) {
        kvc_rpc_reply_error(call, KVC_RPC_E_CONFLICT, "the VM has %u snapshots, the most it "
                            "may have: delete one first", HOSTD_SNAPSHOTS_MAX);
        goto out;
    }
    for (size_t i = 0; i < ix->n; i++)
        if (!strcmp(ix->s[i].name, m->name)) {
            kvc_rpc_reply_error(call, KVC_RPC_E_CONFLICT,
                                "the VM has a snapshot named '%s' already", m->name);
            goto out;
        }
    /* Memory is kept only of a running VM; a powered-off one has none. */
    memory = m->memory && vm->power == VM_ON;
    snap_path(vm, ix->next, path, sizeof path);
    if ((rc = h->be->snapshot_take(h, vm, path, memory, err, sizeof err))) {
        kvc_rpc_reply_error(call, rc == -ENOTSUP ? KVC_RPC_E_NOT_IMPLEMENTED
                            : rc == -EBUSY ? KVC_RPC_E_CONFLICT : KVC_RPC_E_UNAVAILABLE,
                            "taking the snapshot failed: %s", *err ? err : strerror(-rc));
        goto out;
    }
    s = &ix->s[ix->n++];
    s->id = ix->next++;
    s->created = (int64_t)time(NULL);
    s->power = memory ? (int)vm->power : VM_OFF;
    s->memory = memory;
    snprintf(s->name, sizeof s->name, "%s", m->name);
    snprintf(s->desc, sizeof s->desc, "%s", m->description ? m->description : "");
    ix->current = s->id;
    if ((rc = index_save(vm, ix))) {
        char e2[64];
        h->be->snapshot_delete(h, vm, path, e2, sizeof e2);
        kvc_rpc_reply_error(call, KVC_RPC_E_INTERNAL, "cannot write the snapshot index: %s",
                            strerror(-rc));
        goto out;
    }
    kvc_info("vm %s: snapshot %u '%s' taken (%s)", vm->uuid, s->id, s->name,
             memory ? "with memory" : "disk only");
    info_of(ix, s, &info);
    kvc_rpc_reply(call, &info.base);
out:
    free(ix);
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

void hostd_snapshot_on_revert(struct kvc_rpc_call *call, const ProtobufCMessage *req,
                              void *arg)
{
    struct hostd_host *h = arg;
    const Kvc__Host__SnapshotRequest *m = (const Kvc__Host__SnapshotRequest *)req;
    Kvc__Host__SnapshotInfo info;
    struct hostd_vm *vm;
    struct index *ix;
    struct snap *s;
    char path[PATH_MAX + 32], err[256] = "";
    int rc;

    if (!(vm = vm_for(h, call, m->vm_uuid, true)))
        return;
    if (!(ix = calloc(1, sizeof *ix))) {
        kvc_rpc_reply_error(call, KVC_RPC_E_INTERNAL, "out of memory");
        return;
    }
    if (!load_or_fail(call, vm, ix))
        goto out;
    if (!(s = index_find(ix, m->snapshot))) {
        kvc_rpc_reply_error(call, KVC_RPC_E_NOT_FOUND, "the VM has no snapshot %u",
                            m->snapshot);
        goto out;
    }
    snap_path(vm, s->id, path, sizeof path);
    if ((rc = h->be->snapshot_revert(h, vm, path, (enum vm_power)s->power, s->memory, err,
                                     sizeof err))) {
        kvc_rpc_reply_error(call, rc == -EBUSY ? KVC_RPC_E_CONFLICT : KVC_RPC_E_UNAVAILABLE,
                            "reverting to the snapshot failed: %s",
                            *err ? err : strerror(-rc));
        goto out;
    }
    ix->current = s->id;
    if ((rc = index_save(vm, ix)))
        kvc_warn("vm %s: reverted, but the index was not updated: %s", vm->uuid,
                 strerror(-rc));
    kvc_info("vm %s: reverted to snapshot %u '%s'", vm->uuid, s->id, s->name);
    hostd_vm_changed(h, vm, false);
    info_of(ix, s, &info);
    kvc_rpc_reply(call, &info.base);
out:
    free(ix);
}

void hostd_snapshot_on_delete(struct kvc_rpc_call *call, const ProtobufCMessage *req,
                              void *arg)
{
    struct hostd_host *h = arg;
    const Kvc__Host__SnapshotRequest *m = (const Kvc__Host__SnapshotRequest *)req;
    Kvc__Host__Status st = KVC__HOST__STATUS__INIT;
    struct hostd_vm *vm;
    struct index *ix;
    struct snap *s;
    char path[PATH_MAX + 32], err[256] = "";
    int rc;

    if (!(vm = vm_for(h, call, m->vm_uuid, true)))
        return;
    if (!(ix = calloc(1, sizeof *ix))) {
        kvc_rpc_reply_error(call, KVC_RPC_E_INTERNAL, "out of memory");
        return;
    }
    if (!load_or_fail(call, vm, ix))
        goto out;
    if (!(s = index_find(ix, m->snapshot))) {
        kvc_rpc_reply_error(call, KVC_RPC_E_NOT_FOUND, "the VM has no snapshot %u",
                            m->snapshot);
        goto out;
    }
    snap_path(vm, s->id, path, sizeof path);
    if ((rc = h->be->snapshot_delete(h, vm, path, err, sizeof err))) {
        kvc_rpc_reply_error(call, rc == -EBUSY ? KVC_RPC_E_CONFLICT : KVC_RPC_E_UNAVAILABLE,
                            "deleting the snapshot failed: %s", *err ? err : strerror(-rc));
        goto out;
    }
    if (ix->current == s->id)
        ix->current = 0;
    kvc_info("vm %s: snapshot %u '%s' deleted", vm->uuid, s->id, s->name);
    memmove(s, s + 1, (size_t)(&ix->s[ix->n] - (s + 1)) * sizeof *s);
    ix->n--;
    if ((rc = index_save(vm, ix))) {
        kvc_rpc_reply_error(call, KVC_RPC_E_INTERNAL, "cannot write the snapshot index: %s",
                            strerror(-rc));
        goto out;
    }
    kvc_rpc_reply(call, &st.base);
out:
    free(ix);
}
