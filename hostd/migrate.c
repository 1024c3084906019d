/* Live migration on the host: both ends of the MIGRATE_* calls
 * (proto/host.proto).  vpxd orchestrates: PREPARE on the destination, SEND
 * on the source, STATUS on the source until SWITCHOVER, FINISH on the
 * destination (the VM is registered here from the shared datastore and
 * runs here, owning its lease), then FINISH on the source (the VM leaves
 * its registry).  Until the destination's FINISH the source runs the VM;
 * any ABORT leaves it there.
 *
 * The time the memory takes to move comes from the backend
 * (migrate_estimate: the sim backend's pre-copy model in sim.h); a backend
 * without the migration ops answers ENOTSUP for powered-on VMs.  A
 * powered-off VM moves "cold": only its registration changes hands.
 *
 * A streaming backend (kvm: vmx to vmx) moves the memory itself: PREPARE
 * loads the VM here and starts it waiting for the stream (migrate_listen)
 * and answers where it listens; SEND starts the source's vmx sending there;
 * STATUS asks it (migrate_progress) and says SWITCHOVER once the VM runs at
 * the destination (vmx switches over by itself when the copy converges);
 * FINISH registers the running VM here and unregisters it there.
 *
 * With the disk (docs/storage-migration.md): PREPARE names a datastore of
 * the destination's own (it need not see the VM's); the destination makes
 * the VM's folder there (config, an empty disk of the VM's size: the
 * placeholder the stream replaces) and starts the VM waiting for memory and
 * disk.  SEND with_disk sends the disk files first.  An incoming migration
 * that is dropped removes the folder it made; FINISH registers the VM on the
 * new datastore here, and the source's FINISH removes the VM's old folder
 * (its files are stale then; a shared-storage migration keeps them).
 *
 * Safety nets: a source whose migration is not polled for STALE_MS aborts
 * it (the vpxd that ran it is gone; the VM stays), and a destination drops
 * an incoming migration not finished within INCOMING_MS. */
#include <errno.h>
#include <ftw.h>
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

KVC_LOG_MODULE(migrate);

#define STALE_MS 30000
#define INCOMING_MS 600000
#define DONE_KEEP_MS 60000
#define DEFAULT_BW 125000000.0          /* 1 GbE */
#define DEFAULT_DOWNTIME_MS 500
#define RMDIR_RETRY_MS 500
#define RMDIR_TRIES 120

enum mig_state { M_PRECOPY = 1, M_SWITCHOVER, M_DONE };

struct hostd_migration {
    struct hostd_migration *next;
    char id[64];
    char uuid[HOSTD_UUID_LEN];
    bool incoming;
    enum mig_state state;
    int64_t start_ms, last_ms;
    /* outgoing */
    int64_t total_ms, downtime_ms;
    uint64_t bytes_total;
    double bw;
    /* incoming */
    char path[PATH_MAX];
    uint64_t memory_mib;
    bool powered_on;
    /* streaming backends */
    bool stream;
    struct hostd_vm *vm;        /* incoming: loaded and attached, not registered yet */
    char error[256];            /* outgoing: why the stream failed */
    /* with the disk */
    bool with_disk;             /* outgoing: FINISH removes the VM's folder here */
    bool made_dir;              /* incoming: this prepare made vm->dir (dropped: removed) */
};

/* The VM's disk as vmx sees it (hostd/backends/kvm.c writes disk.path). */
static bool
has_disk(const struct hostd_vm *vm)
{
    return vm->disk_bytes >= 512;
}

/* ---- removing a VM folder ----------------------------------------------- */

/* A folder to remove: at once if it can be, else again every RMDIR_RETRY_MS
 * (an incoming vmx being stopped may still write its log there). */
struct rm_dir {
    struct rm_dir *next;
    struct hostd_host *h;
    struct event *ev;
    int tries;
    char path[PATH_MAX];
};

static struct rm_dir *rm_dirs;

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    if (remove(path) < 0 && errno != ENOENT)
        kvc_warn("remove %s: %s", path, strerror(errno));
    return 0;
}

/* 0 once PATH is gone. */
static int
rm_tree(const char *path)
{
    struct stat st;

    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -errno;
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return lstat(path, &st) == 0 ? -ENOTEMPTY : 0;
}

static void
rm_dir_free(struct rm_dir *r)
{
    struct rm_dir **pp;

    for (pp = &rm_dirs; *pp && *pp != r; pp = &(*pp)->next)
        ;
    if (*pp)
        *pp = r->next;
    if (r->ev)
        event_free(r->ev);
    free(r);
}

static void
rm_dir_tick(evutil_socket_t fd, short what, void *arg)
{
    struct rm_dir *r = arg;
    struct timeval tv = { 0, RMDIR_RETRY_MS * 1000 };

    (void)fd;
    (void)what;
    if (!rm_tree(r->path)) {
        kvc_info("%s: removed %s", r->h->name, r->path);
        rm_dir_free(r);
    } else if (++r->tries >= RMDIR_TRIES) {
        kvc_err("%s: cannot remove %s: remove it by hand", r->h->name, r->path);
        rm_dir_free(r);
    } else {
        event_add(r->ev, &tv);
    }
}

static void
folder_remove(struct hostd_host *h, const char *path, const char *why)
{
    struct rm_dir *r;
    struct timeval tv = { 0, RMDIR_RETRY_MS * 1000 };

    kvc_info("%s: removing %s (%s)", h->name, path, why);
    if (!rm_tree(path))
        return;
    if (!(r = calloc(1, sizeof *r)) ||
        !(r->ev = event_new(h->d->base, -1, 0, rm_dir_tick, r))) {
        kvc_err("%s: cannot remove %s: remove it by hand", h->name, path);
        free(r);
        return;
    }
    r->h = h;
    snprintf(r->path, sizeof r->path, "%s", path);
    r->next = rm_dirs;
    rm_dirs = r;
    event_add(r->ev, &tv);
}

/* An incoming VM of a streaming migration (not in the registry yet). */
struct hostd_vm *
hostd_migrate_incoming_vm(struct hostd_host *h, const char *uuid)
{
    for (struct hostd_migration *m = h->migs; m; m = m->next)
        if (m->incoming && m->vm && !strcasecmp(m->uuid, uuid))
            return m->vm;
    return NULL;
}

static void
reply_status(struct kvc_rpc_call *call, int err, const char *msg)
{
    Kvc__Host__Status st = KVC__HOST__STATUS__INIT;

    st.error = err < 0 ? -err : err;
    st.message = (char *)(msg ? msg : "");
    kvc_rpc_reply(call, &st.base);
}

static void
reply_vm(struct kvc_rpc_call *call, struct hostd_host *h, int err, const char *msg,
         struct hostd_vm *vm)
{
    Kvc__Host__VmReply r = KVC__HOST__VM_REPLY__INIT;
    Kvc__Host__Status st = KVC__HOST__STATUS__INIT;
    Kvc__Host__VmInfo info;

    st.error = err < 0 ? -err : err;
    st.message = (char *)(msg ? msg : "");
    r.status = &st;
    if (vm) {
        hostd_vm_to_info(h, vm, &info);
        r.vm = &info;
    }
    kvc_rpc_reply(call, &r.base);
    if (vm && info.config_path != protobuf_c_empty_string)
        free(info.config_path);
}

static struct hostd_migration *
mig_find(struct hostd_host *h, const char *id)
{
    for (struct hostd_migration *m = h->migs; m; m = m->next)
        if (!strcmp(m->id, id))
            return m;
    return NULL;
}

static struct hostd_migration *
mig_find_vm(struct hostd_host *h, const char *uuid)
{
    for (struct hostd_migration *m = h->migs; m; m = m->next)
        if (!strcasecmp(m->uuid, uuid) && m->state != M_DONE)
            return m;
    return NULL;
}

static void
mig_unlink_free(struct hostd_host *h, struct hostd_migration *m)
{
    struct hostd_migration **pp;

    for (pp = &h->migs; *pp && *pp != m; pp = &(*pp)->next)
        ;
    if (*pp)
        *pp = m->next;
    if (m->vm) {
        /* An incoming VM that never switched over here: its VMM goes. */
        if (h->be->migrate_cancel)
            h->be->migrate_cancel(h, m->vm, true);
        if (m->vm->be)
            h->be->vm_detach(h, m->vm);
        /* And the folder this migration made for it, with what the stream
         * brought so far. */
        if (m->made_dir)
            folder_remove(h, m->vm->dir, "the incoming migration was dropped");
        vmstore_vm_free(m->vm);
    }
    free(m);
}

/* The source gives up: the VM keeps running here and takes its lease back. */
static void
out_abort(struct hostd_host *h, struct hostd_migration *m, const char *why)
{
    struct hostd_vm *vm = hostd_vm_find(h, m->uuid);

    if (vm) {
        vm->busy = false;
        if (vm->power == VM_ON && h->be->migrate_abort)
            h->be->migrate_abort(h, vm);
    }
    kvc_info("%s: migration %s of %s aborted (%s): the VM stays here", h->name, m->id,
             vm ? vm->name : m->uuid, why);
    mig_unlink_free(h, m);
}

static void
vm_unregister(struct hostd_host *h, struct hostd_vm *vm)
{
    struct hostd_vm **pp;

    if (vm->power == VM_ON && h->be->migrate_out)
        h->be->migrate_out(h, vm);
    else {
        /* Off: nothing runs; the runtime state only needs freeing. */
        free(vm->be);
        vm->be = NULL;
    }
    for (pp = &h->vms; *pp && *pp != vm; pp = &(*pp)->next)
        ;
    if (*pp)
        *pp = vm->next;
    vmstore_save_registry(h);
    hostd_vm_changed(h, vm, true);
    vmstore_vm_free(vm);
}

static void
mig_tick(evutil_socket_t fd, short what, void *arg)
{
    struct hostd_host *h = arg;
    int64_t now = hostd_now_ms();
    struct hostd_migration *m = h->migs, *next;

    for (; m; m = next) {
        next = m->next;
        if (m->state == M_DONE) {
            if (now - m->last_ms > DONE_KEEP_MS)
                mig_unlink_free(h, m);
        } else if (!m->incoming && now - m->last_ms > STALE_MS) {
            out_abort(h, m, "nobody asked for its progress for 30 s");
        } else if (m->incoming && now - m->start_ms > INCOMING_MS) {
            kvc_warn("%s: incoming migration %s never finished: dropped", h->name, m->id);
            mig_unlink_free(h, m);
        }
    }
    if (!h->migs && h->mig_ev)
        event_del(h->mig_ev);
}

static int
mig_add(struct hostd_host *h, struct hostd_migration *m)
{
    struct timeval tv = { 1, 0 };

    if (!h->mig_ev && !(h->mig_ev = event_new(h->d->base, -1, EV_PERSIST, mig_tick, h)))
        return -ENOMEM;
    m->next = h->migs;
    h->migs = m;
    if (!event_pending(h->mig_ev, EV_TIMEOUT, NULL))
        event_add(h->mig_ev, &tv);
    return 0;
}

void
hostd_migrate_drop_all(struct hostd_host *h)
{
    while (h->migs) {
        struct hostd_migration *m = h->migs;
        struct hostd_vm *vm = m->incoming ? NULL : hostd_vm_find(h, m->uuid);
        if (vm && m->state != M_DONE)
            vm->busy = false;
        mig_unlink_free(h, m);
    }
    if (h->mig_ev)
        event_del(h->mig_ev);
    /* Folders still to remove: one last try, then they are left. */
    for (struct rm_dir *r = rm_dirs, *next; r; r = next) {
        next = r->next;
        if (r->h != h)
            continue;
        if (rm_tree(r->path))
            kvc_err("%s: cannot remove %s: remove it by hand", h->name, r->path);
        rm_dir_free(r);
    }
}

static uint64_t
memory_in_use(struct hostd_host *h)
{
    uint64_t used = 0;

    for (struct hostd_vm *vm = h->vms; vm; vm = vm->next)
        if (vm->power != VM_OFF)
            used += vm->memory_mib << 20;
    for (struct hostd_migration *m = h->migs; m; m = m->next)
        if (m->incoming && m->state != M_DONE && m->powered_on)
            used += m->memory_mib << 20;
    return used;
}

/* ---- destination -------------------------------------------------------- */

/* The sim backend needs no stream: the listen address stays empty (a
 * backend that streams, kvm, will answer where its incoming vmx listens). */
static void
reply_prepare_listen(struct kvc_rpc_call *call, int err, const char *msg, const char *listen)
{
    Kvc__Host__MigratePrepareReply r = KVC__HOST__MIGRATE_PREPARE_REPLY__INIT;
    Kvc__Host__Status st = KVC__HOST__STATUS__INIT;

    st.error = err < 0 ? -err : err;
    st.message = (char *)(msg ? msg : "");
    r.status = &st;
    if (listen)
        r.listen = (char *)listen;
    kvc_rpc_reply(call, &r.base);
}

static void
reply_prepare(struct kvc_rpc_call *call, int err, const char *msg)
{
    reply_prepare_listen(call, err, msg, NULL);
}

struct listen_ctx {
    struct hostd_host *h;
    struct kvc_rpc_call *call;
    char id[64];
};

/* The incoming VMM listens (or could not start): PREPARE's answer. */
static void
on_listening(int err, const char *msg, const char *listen, void *arg)
{
    struct listen_ctx *c = arg;
    struct hostd_migration *m = mig_find(c->h, c->id);

    if (!m) {
        reply_prepare(c->call, ECANCELED, "the migration was aborted meanwhile");
    } else if (err) {
        kvc_warn("%s: migration %s: cannot receive here: %s", c->h->name, c->id,
                 msg ? msg : strerror(-err));
        reply_prepare(c->call, err, msg);
        mig_unlink_free(c->h, m);
    } else {
        kvc_info("%s: migration %s: ready to receive %s, stream at %s", c->h->name, m->id,
                 m->vm->name, listen);
        reply_prepare_listen(c->call, 0, NULL, listen);
    }
    free(c);
}

void
hostd_migrate_prepare(struct kvc_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
    struct hostd_host *h = arg;
    const Kvc__Host__MigratePrepare *p = (const Kvc__Host__MigratePrepare *)req;
    const Kvc__Host__VmInfo *vi = p->vm;
    struct hostd_datastore *ds;
    struct hostd_migration *m;
    char msg[512];
    bool on, disk_in = p->datastore && p->datastore[0];

    if (!hostd_session_ok(h, call))
        return;
    if (!p->id[0] || strlen(p->id) >= sizeof m->id || !vi || !hostd_uuid_valid(vi->uuid) ||
        !vi->name[0] || strchr(vi->name, '/') || vi->name[0] == '.' || !vi->datastore[0]) {
        reply_prepare(call, EINVAL, "migration id, VM uuid, name and datastore are required");
        return;
    }
    if (mig_find(h, p->id)) {
        reply_prepare(call, EEXIST, "a migration with this id is already here");
        return;
    }
    if (hostd_vm_find(h, vi->uuid) || mig_find_vm(h, vi->uuid)) {
        reply_prepare(call, EEXIST, "the VM is already registered on this host");
        return;
    }
    if (h->maintenance) {
        reply_prepare(call, EBUSY, "host is in maintenance mode");
        return;
    }
    on = vi->power == KVC__HOST__POWER_STATE__POWERED_ON;
    if (vi->power == KVC__HOST__POWER_STATE__SUSPENDED) {
        reply_prepare(call, EBUSY, "a suspended VM cannot be migrated");
        return;
    }
    if (on && !h->be->migrate_in) {
        snprintf(msg, sizeof msg, "live migration is not available on the %s backend yet",
                 h->be->name);
        reply_prepare(call, ENOTSUP, msg);
        return;
    }
    if (disk_in) {
        /* The VM's folder is made here, on a datastore of this host. */
        if (!on) {
            reply_prepare(call, ENOTSUP, "the disk moves over the stream of a live migration:"
                          " the VM must be powered on");
            return;
        }
        if (!h->be->migrate_listen) {
            snprintf(msg, sizeof msg, "moving the disk over the migration stream needs the kvm"
                     " backend (this host runs %s)", h->be->name);
            reply_prepare(call, ENOTSUP, msg);
            return;
        }
        if (!(ds = vmstore_datastore(h, p->datastore))) {
            snprintf(msg, sizeof msg, "datastore %s is not mounted on this host", p->datastore);
            reply_prepare(call, ENOENT, msg);
            return;
        }
        struct stat st;
        char dir[PATH_MAX];
        if (snprintf(dir, sizeof dir, "%s/%s", ds->path, vi->name) >= (int)sizeof dir) {
            reply_prepare(call, ENAMETOOLONG, "the VM's folder path is too long");
            return;
        }
        if (lstat(dir, &st) == 0 || errno != ENOENT) {
            snprintf(msg, sizeof msg, "a folder %s already exists on datastore %s", vi->name,
                     p->datastore);
            reply_prepare(call, EEXIST, msg);
            return;
        }
    } else if (!(ds = vmstore_datastore(h, vi->datastore))) {
        snprintf(msg, sizeof msg, "datastore %s is not mounted on this host", vi->datastore);
        reply_prepare(call, ENOENT, msg);
        return;
    }
    if (!(m = calloc(1, sizeof *m))) {
        reply_prepare(call, ENOMEM, NULL);
        return;
    }
    if (snprintf(m->path, sizeof m->path, "%s/%s/%s.vmx", ds->path, vi->name, vi->name) >=
        (int)sizeof m->path || (!disk_in && access(m->path, R_OK) < 0)) {
        snprintf(msg, sizeof msg, "the VM's files are not visible from this host (%s on"
                 " datastore %s)", vi->name, vi->datastore);
        free(m);
        reply_prepare(call, ENOENT, msg);
        return;
    }
    if (vi->network[0]) {
        bool found = false;
        for (size_t i = 0; i < h->n_nets; i++)
            found |= !strcmp(h->nets[i].name, vi->network);
        if (!found) {
            snprintf(msg, sizeof msg, "no port group %s on this host", vi->network);
            free(m);
            reply_prepare(call, ENOENT, msg);
            return;
        }
    }
    if (on && (memory_in_use(h) + (vi->memory_mib << 20) > h->hw.memory_bytes ||
               (h->hw.threads && vi->cpu_count > h->hw.threads))) {
        free(m);
        reply_prepare(call, ENOSPC, "not enough memory or CPUs on this host for the VM");
        return;
    }
    snprintf(m->id, sizeof m->id, "%s", p->id);
    snprintf(m->uuid, sizeof m->uuid, "%s", vi->uuid);
    m->incoming = true;
    m->state = M_PRECOPY;
    m->start_ms = m->last_ms = hostd_now_ms();
    m->memory_mib = vi->memory_mib;
    m->powered_on = on;
    if (disk_in) {
        /* The VM's folder, config and placeholder disk, made the way a
         * create makes them; the stream replaces the disk. */
        Kvc__Host__VmSpec spec = KVC__HOST__VM_SPEC__INIT;
        int rc;
        spec.uuid = vi->uuid;
        spec.name = vi->name;
        spec.datastore = p->datastore;
        spec.guest_os = vi->guest_os;
        spec.cpu_count = vi->cpu_count;
        spec.memory_mib = vi->memory_mib;
        spec.disk_bytes = vi->disk_bytes;
        spec.network = vi->network;
        spec.workload = vi->workload;
        if ((rc = vmstore_create(h, &spec, &m->vm, msg, sizeof msg))) {
            free(m);
            reply_prepare(call, rc, msg);
            return;
        }
        m->made_dir = true;
        m->with_disk = has_disk(m->vm);
        if (vi->generation > 1) {
            m->vm->generation = vi->generation;
            vmstore_write_config(h, m->vm);
        }
        kvc_info("%s: migration %s: made %s for %s (disk %llu bytes over the stream)", h->name,
                 p->id, m->vm->dir, vi->name, (unsigned long long)vi->disk_bytes);
    }
    if (on && h->be->migrate_listen) {
        /* Streaming: the VM is loaded here now and its VMM waits for the
         * memory; it joins the registry only at FINISH. */
        struct listen_ctx *c;
        int rc;
        if (disk_in) {
            rc = 0;                     /* made above */
        } else if ((rc = vmstore_load_vm(h, m->path, &m->vm)) ||
                   strcasecmp(m->vm->uuid, vi->uuid)) {
            snprintf(msg, sizeof msg, "cannot load %.200s: %s", m->path,
                     rc ? strerror(-rc) : "it holds another VM");
            vmstore_vm_free(m->vm);
            free(m);
            reply_prepare(call, rc ? rc : EINVAL, msg);
            return;
        }
        if ((rc = h->be->vm_attach(h, m->vm)) || !(c = calloc(1, sizeof *c))) {
            if (m->vm->be)
                h->be->vm_detach(h, m->vm);
            if (m->made_dir)
                folder_remove(h, m->vm->dir, "the backend refused the VM");
            vmstore_vm_free(m->vm);
            free(m);
            reply_prepare(call, rc ? rc : -ENOMEM, "the backend refused the VM");
            return;
        }
        if (mig_add(h, m)) {
            free(c);
            if (m->vm->be)
                h->be->vm_detach(h, m->vm);
            if (m->made_dir)
                folder_remove(h, m->vm->dir, "out of memory");
            vmstore_vm_free(m->vm);
            free(m);
            reply_prepare(call, ENOMEM, NULL);
            return;
        }
        m->stream = true;
        c->h = h;
        c->call = call;
        snprintf(c->id, sizeof c->id, "%s", m->id);
        kvc_info("%s: migration %s: starting %s to receive it%s from %s", h->name, m->id,
                 vi->name, m->with_disk ? " with its disk" : "", p->source_uuid);
        h->be->migrate_listen(h, m->vm, p->source_thumbprint, m->with_disk, m->made_dir,
                              on_listening, c);
        return;
    }
    if (mig_add(h, m)) {
        free(m);
        reply_prepare(call, ENOMEM, NULL);
        return;
    }
    kvc_info("%s: migration %s: ready to receive %s (%s) from %s", h->name, m->id, vi->name,
             vi->uuid, p->source_uuid);
    reply_prepare(call, 0, NULL);
}

static void
in_finish(struct kvc_rpc_call *call, struct hostd_host *h, struct hostd_migration *m)
{
    struct hostd_vm *vm = NULL, **tail;
    char msg[300];
    int rc;

    if (m->state == M_DONE) {
        reply_vm(call, h, 0, NULL, hostd_vm_find(h, m->uuid));
        return;
    }
    if (m->stream && m->vm) {
        /* The guest runs here already (vmx switched over): register it. */
        if ((rc = h->be->migrate_in(h, m->vm))) {
            /* Its VMM went (or never ran the guest): nothing to register;
             * the migration is dropped (with the folder it made). */
            snprintf(msg, sizeof msg, "the VM does not run here: its incoming VMM is gone");
            mig_unlink_free(h, m);
            reply_vm(call, h, rc, msg, NULL);
            return;
        }
        vm = m->vm;
        m->vm = NULL;
        for (tail = &h->vms; *tail; tail = &(*tail)->next)
            ;
        *tail = vm;
        vmstore_save_registry(h);
        hostd_vm_changed(h, vm, false);
        m->state = M_DONE;
        m->last_ms = hostd_now_ms();
        kvc_info("%s: migration %s: %s now runs here", h->name, m->id, vm->name);
        reply_vm(call, h, 0, NULL, vm);
        return;
    }
    if ((rc = vmstore_load_vm(h, m->path, &vm)) || strcasecmp(vm->uuid, m->uuid)) {
        snprintf(msg, sizeof msg, "cannot register %.200s: %s", m->path,
                 rc ? strerror(-rc) : "it holds another VM");
        vmstore_vm_free(vm);
        mig_unlink_free(h, m);
        reply_vm(call, h, rc ? rc : EINVAL, msg, NULL);
        return;
    }
    if ((rc = h->be->vm_attach(h, vm)) ||
        (m->powered_on && (rc = h->be->migrate_in(h, vm)))) {
        if (vm->be)
            h->be->vm_detach(h, vm);
        vmstore_vm_free(vm);
        mig_unlink_free(h, m);
        reply_vm(call, h, rc, "the backend refused the VM", NULL);
        return;
    }
    for (tail = &h->vms; *tail; tail = &(*tail)->next)
        ;
    *tail = vm;
    vmstore_save_registry(h);
    hostd_vm_changed(h, vm, false);
    m->state = M_DONE;
    m->last_ms = hostd_now_ms();
    kvc_info("%s: migration %s: %s now runs here", h->name, m->id, vm->name);
    reply_vm(call, h, 0, NULL, vm);
}

/* ---- source ------------------------------------------------------------- */

void
hostd_migrate_send(struct kvc_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
    struct hostd_host *h = arg;
    const Kvc__Host__MigrateSend *s = (const Kvc__Host__MigrateSend *)req;
    struct hostd_migration *m;
    struct hostd_vm *vm;
    int64_t total = 0, down = 0;
    char msg[300];
    int rc;

    if (!hostd_session_ok(h, call))
        return;
    if (!s->id[0] || strlen(s->id) >= sizeof m->id) {
        reply_status(call, EINVAL, "a migration id is required");
        return;
    }
    if (mig_find(h, s->id)) {
        reply_status(call, EEXIST, "a migration with this id is already here");
        return;
    }
    if (!(vm = hostd_vm_find(h, s->uuid))) {
        reply_status(call, ENOENT, "no such VM on this host");
        return;
    }
    if (vm->busy) {
        reply_status(call, EBUSY, "another operation on this VM is in progress");
        return;
    }
    if (vm->power == VM_SUSPENDED) {
        reply_status(call, EBUSY, "a suspended VM cannot be migrated");
        return;
    }
    if (s->with_disk && (vm->power != VM_ON || !h->be->migrate_send)) {
        snprintf(msg, sizeof msg, vm->power != VM_ON
                 ? "the disk moves over the stream of a live migration: the VM must be powered on"
                 : "moving the disk over the migration stream needs the kvm backend (this host"
                   " runs %s)", h->be->name);
        reply_status(call, ENOTSUP, msg);
        return;
    }
    if (!(m = calloc(1, sizeof *m))) {
        reply_status(call, ENOMEM, NULL);
        return;
    }
    m->bw = s->bandwidth_bps ? (double)s->bandwidth_bps : DEFAULT_BW;
    m->bytes_total = vm->memory_mib << 20;
    if (vm->power == VM_ON && h->be->migrate_send) {
        /* Streaming: the VMM sends the memory to the destination's. */
        rc = h->be->migrate_send(h, vm, s->dest_listen, s->dest_thumbprint,
                                 s->downtime_ms ? s->downtime_ms : DEFAULT_DOWNTIME_MS,
                                 s->bandwidth_bps, s->with_disk && has_disk(vm), msg,
                                 sizeof msg);
        if (rc) {
            free(m);
            reply_status(call, rc, msg);
            return;
        }
        m->stream = true;
        m->with_disk = s->with_disk;
        snprintf(m->id, sizeof m->id, "%s", s->id);
        snprintf(m->uuid, sizeof m->uuid, "%s", vm->uuid);
        m->state = M_PRECOPY;
        m->start_ms = m->last_ms = hostd_now_ms();
        if (mig_add(h, m)) {
            h->be->migrate_cancel(h, vm, false);
            free(m);
            reply_status(call, ENOMEM, NULL);
            return;
        }
        vm->busy = true;
        kvc_info("%s: migration %s: %s streams%s to %s at %s", h->name, m->id, vm->name,
                 m->with_disk ? " with its disk" : "", s->dest_uuid, s->dest_listen);
        reply_status(call, 0, NULL);
        return;
    }
    if (vm->power == VM_ON) {
        if (!h->be->migrate_estimate) {
            snprintf(msg, sizeof msg, "live migration is not available on the %s backend yet",
                     h->be->name);
            free(m);
            reply_status(call, ENOTSUP, msg);
            return;
        }
        rc = h->be->migrate_estimate(h, vm, m->bw, s->downtime_ms ? s->downtime_ms
                                                                  : DEFAULT_DOWNTIME_MS,
                                     &total, &down);
        if (rc) {
            free(m);
            reply_status(call, rc, rc == -EAGAIN ? "pre-copy cannot converge: the guest"
                         " dirties memory faster than the link sends it" : NULL);
            return;
        }
    }
    snprintf(m->id, sizeof m->id, "%s", s->id);
    snprintf(m->uuid, sizeof m->uuid, "%s", vm->uuid);
    m->state = total ? M_PRECOPY : M_SWITCHOVER;
    m->start_ms = m->last_ms = hostd_now_ms();
    m->total_ms = total;
    m->downtime_ms = down;
    if (mig_add(h, m)) {
        free(m);
        reply_status(call, ENOMEM, NULL);
        return;
    }
    vm->busy = true;
    kvc_info("%s: migration %s: sending %s to %s (%llu MiB, estimated %lld ms, downtime %lld ms)",
             h->name, m->id, vm->name, s->dest_uuid, (unsigned long long)vm->memory_mib,
             (long long)total, (long long)down);
    reply_status(call, 0, NULL);
}

static void
out_update(struct hostd_migration *m, int64_t now)
{
    if (m->state == M_PRECOPY && now - m->start_ms >= m->total_ms - m->downtime_ms)
        m->state = M_SWITCHOVER;
}

struct status_ctx {
    struct hostd_host *h;
    struct kvc_rpc_call *call;
    char id[64];
};

/* A streaming source's answer: COMPLETED (the VM runs at the destination)
 * is SWITCHOVER for vpxd, which then finishes both ends; FAILED leaves the
 * VM running here. */
static void
on_progress(const struct hostd_mig_progress *p, void *arg)
{
    struct status_ctx *c = arg;
    struct hostd_migration *m = mig_find(c->h, c->id);
    Kvc__Host__MigrateStatus st = KVC__HOST__MIGRATE_STATUS__INIT;
    Kvc__Host__Status s = KVC__HOST__STATUS__INIT;

    st.status = &s;
    if (!m) {
        s.error = ENOENT;
        s.message = "no such migration on this host";
        kvc_rpc_reply(c->call, &st.base);
        free(c);
        return;
    }
    st.bytes_total = p->total;
    st.bytes_sent = p->sent;
    st.round = p->round;
    st.downtime_ms = p->downtime_ms;
    st.estimated_ms = p->total_ms;
    st.disk_bytes_total = p->disk_total;
    st.disk_bytes_sent = p->disk_sent;
    switch (p->phase) {
    case HOSTD_MIG_COMPLETED:
        if (m->state == M_PRECOPY) {
            m->state = M_SWITCHOVER;
            kvc_info("%s: migration %s: the VM runs at the destination now", c->h->name, m->id);
        }
        st.state = m->state == M_DONE ? KVC__HOST__MIGRATE_STATE__MIGRATE_DONE
                                      : KVC__HOST__MIGRATE_STATE__MIGRATE_SWITCHOVER;
        st.progress = 100;
        break;
    case HOSTD_MIG_FAILED:
        snprintf(m->error, sizeof m->error, "%s", p->error);
        s.error = EIO;
        s.message = m->error;
        st.state = KVC__HOST__MIGRATE_STATE__MIGRATE_FAILED;
        kvc_rpc_reply(c->call, &st.base);
        out_abort(c->h, m, p->error);
        free(c);
        return;
    default:
        st.state = KVC__HOST__MIGRATE_STATE__MIGRATE_PRECOPY;
        st.progress = p->percent;
        if (p->disk_total) {
            /* The disk goes first, then the memory: one scale by bytes. */
            double ram = p->total ? (double)p->total : 1.0;
            double disk = (double)(p->disk_sent < p->disk_total ? p->disk_sent : p->disk_total);
            st.progress = (uint32_t)((disk + ram * p->percent / 100.0) * 100.0 /
                                     ((double)p->disk_total + ram));
        }
        if (p->phase == HOSTD_MIG_STOPPED || st.progress > 99)
            st.progress = 99;
        break;
    }
    kvc_rpc_reply(c->call, &st.base);
    free(c);
}

void
hostd_migrate_status(struct kvc_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
    struct hostd_host *h = arg;
    const Kvc__Host__MigrateRef *r = (const Kvc__Host__MigrateRef *)req;
    Kvc__Host__MigrateStatus st = KVC__HOST__MIGRATE_STATUS__INIT;
    Kvc__Host__Status s = KVC__HOST__STATUS__INIT;
    struct hostd_migration *m;
    int64_t now = hostd_now_ms(), el;

    if (!hostd_session_ok(h, call))
        return;
    st.status = &s;
    if (!(m = mig_find(h, r->id))) {
        s.error = ENOENT;
        s.message = "no such migration on this host";
        st.state = KVC__HOST__MIGRATE_STATE__MIGRATE_NONE;
        kvc_rpc_reply(call, &st.base);
        return;
    }
    m->last_ms = now;
    if (!m->incoming && m->stream && m->state == M_PRECOPY) {
        struct hostd_vm *vm = hostd_vm_find(h, m->uuid);
        struct status_ctx *c = vm ? calloc(1, sizeof *c) : NULL;
        if (c) {
            c->h = h;
            c->call = call;
            snprintf(c->id, sizeof c->id, "%s", m->id);
            h->be->migrate_progress(h, vm, on_progress, c);
            return;
        }
    }
    if (!m->incoming && !m->stream)
        out_update(m, now);
    el = now - m->start_ms;
    st.state = m->state == M_PRECOPY ? KVC__HOST__MIGRATE_STATE__MIGRATE_PRECOPY
             : m->state == M_SWITCHOVER ? KVC__HOST__MIGRATE_STATE__MIGRATE_SWITCHOVER
             : KVC__HOST__MIGRATE_STATE__MIGRATE_DONE;
    st.bytes_total = m->bytes_total;
    st.estimated_ms = m->total_ms;
    st.downtime_ms = m->downtime_ms;
    if (m->state == M_PRECOPY && m->total_ms > 0) {
        st.progress = (uint32_t)(el * 100 / m->total_ms);
        if (st.progress > 99)
            st.progress = 99;
        double sent = m->bw * (double)el / 1000.0;
        st.bytes_sent = sent > (double)m->bytes_total ? m->bytes_total : (uint64_t)sent;
        st.round = m->bytes_total ? (uint32_t)(sent / (double)m->bytes_total) + 1 : 1;
    } else {
        st.progress = 100;
        st.bytes_sent = m->bytes_total;
    }
    kvc_rpc_reply(call, &st.base);
}

void
hostd_migrate_abort(struct kvc_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
    struct hostd_host *h = arg;
    const Kvc__Host__MigrateRef *r = (const Kvc__Host__MigrateRef *)req;
    struct hostd_migration *m;
    struct hostd_vm *vm;

    if (!hostd_session_ok(h, call))
        return;
    if (!(m = mig_find(h, r->id))) {
        reply_status(call, ENOENT, "no such migration on this host");
        return;
    }
    if (!m->incoming) {
        if (m->state == M_DONE) {
            reply_status(call, EALREADY, "the VM already left this host");
            return;
        }
        out_abort(h, m, "asked by vpxd");
        reply_status(call, 0, NULL);
        return;
    }
    /* Destination: an abort after the switch-over (vpxd never heard the
     * FINISH reply) unregisters the VM again, so it runs on one host. */
    if (m->state == M_DONE && m->made_dir && (vm = hostd_vm_find(h, m->uuid))) {
        /* Its disk came with it: the source's files are stale, it stays. */
        kvc_warn("%s: migration %s aborted after switch-over: %s runs here with its disk and"
                 " stays", h->name, m->id, vm->name);
        reply_status(call, EALREADY, "the VM runs here now, with its disk: it cannot go back");
        return;
    } else if (m->state == M_DONE && (vm = hostd_vm_find(h, m->uuid))) {
        kvc_warn("%s: migration %s aborted after switch-over: %s goes back", h->name, m->id,
                 vm->name);
        vm_unregister(h, vm);
    } else {
        kvc_info("%s: incoming migration %s aborted", h->name, m->id);
    }
    mig_unlink_free(h, m);
    reply_status(call, 0, NULL);
}

void
hostd_migrate_finish(struct kvc_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
    struct hostd_host *h = arg;
    const Kvc__Host__MigrateRef *r = (const Kvc__Host__MigrateRef *)req;
    struct hostd_migration *m;
    struct hostd_vm *vm;

    if (!hostd_session_ok(h, call))
        return;
    if (!(m = mig_find(h, r->id))) {
        reply_vm(call, h, ENOENT, "no such migration on this host", NULL);
        return;
    }
    if (m->incoming) {
        in_finish(call, h, m);
        return;
    }
    if (!m->stream)
        out_update(m, hostd_now_ms());
    if (m->state == M_DONE) {
        reply_vm(call, h, 0, NULL, NULL);
        return;
    }
    if (m->state != M_SWITCHOVER) {
        reply_vm(call, h, EBUSY, "pre-copy has not converged yet", NULL);
        return;
    }
    if ((vm = hostd_vm_find(h, m->uuid))) {
        char dir[PATH_MAX];
        kvc_info("%s: migration %s: %s left for its destination", h->name, m->id, vm->name);
        snprintf(dir, sizeof dir, "%s", vm->dir);
        vm->busy = false;
        vm_unregister(h, vm);
        /* Its disk went with it: what is left here is stale. */
        if (m->with_disk)
            folder_remove(h, dir, "the VM's disk moved with it");
    }
    m->state = M_DONE;
    m->last_ms = hostd_now_ms();
    reply_vm(call, h, 0, NULL, NULL);
}
