/* One host: its identity, its RPC endpoint for vpxd, its heartbeats and its
 * VM registry.  A sim process runs many of these on one event loop. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "rpc.h"
#include "tls.h"
#include "rpc.pb-c.h"
#include "hostd/console.h"
#include "hostd/snapshots.h"
#include "hostd/backend.h"
#include "hostd/hostd.h"

KVC_LOG_MODULE(host);

#define CALL_ERR(call, st, ...) kvc_rpc_reply_error((call), (st), __VA_ARGS__)

static void host_tick(evutil_socket_t fd, short what, void *arg);
static void host_stats_tick(evutil_socket_t fd, short what, void *arg);

/* ---- helpers ------------------------------------------------------------ */

struct hostd_vm *
hostd_vm_find(struct hostd_host *h, const char *uuid)
{
    for (struct hostd_vm *vm = h->vms; vm; vm = vm->next)
        if (!strcasecmp(vm->uuid, uuid))
            return vm;
    return NULL;
}

static struct hostd_vm *
vm_find_name_ds(struct hostd_host *h, const char *name, const char *ds)
{
    for (struct hostd_vm *vm = h->vms; vm; vm = vm->next)
        if (!strcmp(vm->name, name) && !strcmp(vm->datastore, ds))
            return vm;
    return NULL;
}

void
hostd_vm_to_info(const struct hostd_host *h, const struct hostd_vm *vm,
                 Kvc__Host__VmInfo *o)
{
    static char path[PATH_MAX + 300];   /* valid until the next call */

    kvc__host__vm_info__init(o);
    o->uuid = (char *)vm->uuid;
    o->name = vm->name;
    o->datastore = vm->datastore;
    snprintf(path, sizeof path, "[%s] %s/%s.vmx", vm->datastore, vm->name, vm->name);
    o->config_path = strdup(path);      /* freed by free_vm_info() */
    o->guest_os = vm->guest_os;
    o->cpu_count = vm->cpu_count;
    o->memory_mib = vm->memory_mib;
    o->disk_bytes = vm->disk_bytes;
    o->power = vm->power == VM_ON ? KVC__HOST__POWER_STATE__POWERED_ON
             : vm->power == VM_SUSPENDED ? KVC__HOST__POWER_STATE__SUSPENDED
             : KVC__HOST__POWER_STATE__POWERED_OFF;
    o->tools = vm->tools_running ? KVC__HOST__TOOLS_STATE__TOOLS_RUNNING
                                 : KVC__HOST__TOOLS_STATE__TOOLS_NOT_RUNNING;
    o->generation = vm->generation;
    o->network = vm->network;
    o->workload = vm->workload;
}

static void
free_vm_info(Kvc__Host__VmInfo *o)
{
    if (o && o->config_path != protobuf_c_empty_string)
        free(o->config_path);
}

static void
host_info_fill(const struct hostd_host *h, Kvc__Host__HostInfo *hi)
{
    kvc__host__host_info__init(hi);
    hi->uuid = (char *)h->uuid;
    hi->name = h->name;
    hi->thumbprint = (char *)kvc_tls_identity_thumbprint(h->id);
    hi->version = HOSTD_VERSION;
    hi->backend = (char *)h->be->name;
    hi->cpu_model = (char *)h->hw.cpu_model;
    hi->cpu_sockets = h->hw.sockets;
    hi->cpu_cores = h->hw.cores;
    hi->cpu_threads = h->hw.threads;
    hi->cpu_mhz = h->hw.mhz;
    hi->memory_bytes = h->hw.memory_bytes;
    hi->in_maintenance = h->maintenance;
}

static void
send_inventory(struct hostd_host *h)
{
    Kvc__Host__Inventory inv = KVC__HOST__INVENTORY__INIT;
    Kvc__Host__Datastore *ds = NULL, **dsp = NULL;
    Kvc__Host__Network *net = NULL, **netp = NULL;
    Kvc__Host__VmInfo *vms = NULL, **vmp = NULL;
    char (*urls)[PATH_MAX + 16] = NULL;
    size_t n_vms = 0, i;
    int rc;

    if (!h->vpxd)
        return;
    for (struct hostd_vm *vm = h->vms; vm; vm = vm->next)
        n_vms++;
    ds = calloc(h->n_ds + 1, sizeof *ds);
    dsp = calloc(h->n_ds + 1, sizeof *dsp);
    urls = calloc(h->n_ds + 1, sizeof *urls);
    net = calloc(h->n_nets + 1, sizeof *net);
    netp = calloc(h->n_nets + 1, sizeof *netp);
    vms = calloc(n_vms + 1, sizeof *vms);
    vmp = calloc(n_vms + 1, sizeof *vmp);
    if (!ds || !dsp || !urls || !net || !netp || !vms || !vmp) {
        kvc_err("out of memory building the inventory");
        goto out;
    }
    for (i = 0; i < h->n_ds; i++) {
        struct statvfs sv;
        kvc__host__datastore__init(&ds[i]);
        ds[i].name = h->ds[i].name;
        snprintf(urls[i], sizeof urls[i], "ds://%s/", h->ds[i].path);
        ds[i].url = urls[i];
        ds[i].type = h->ds[i].shared ? "NFS" : "DIR";
        ds[i].shared = h->ds[i].shared;
        if (statvfs(h->ds[i].path, &sv) == 0) {
            ds[i].capacity_bytes = (uint64_t)sv.f_blocks * sv.f_frsize;
            ds[i].free_bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
        }
        dsp[i] = &ds[i];
    }
    for (i = 0; i < h->n_nets; i++) {
        kvc__host__network__init(&net[i]);
        net[i].name = h->nets[i].name;
        net[i].vswitch = h->nets[i].vswitch;
        net[i].vlan = h->nets[i].vlan;
        netp[i] = &net[i];
    }
    i = 0;
    for (struct hostd_vm *vm = h->vms; vm; vm = vm->next, i++) {
        hostd_vm_to_info(h, vm, &vms[i]);
        vmp[i] = &vms[i];
    }
    inv.generation = h->generation;
    inv.n_datastores = h->n_ds;
    inv.datastores = dsp;
    inv.n_networks = h->n_nets;
    inv.networks = netp;
    inv.n_vms = n_vms;
    inv.vms = vmp;
    if ((rc = kvc_rpc_conn_send(h->vpxd, KVC__HOST__METHOD__INVENTORY, &inv.base)))
        kvc_warn("%s: send inventory: %s", h->name, strerror(-rc));
out:
    for (i = 0; vms && i < n_vms; i++)
        free_vm_info(&vms[i]);
    free(ds);
    free(dsp);
    free(urls);
    free(net);
    free(netp);
    free(vms);
    free(vmp);
}

static void
persist_generation(struct hostd_host *h)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%llu\n", (unsigned long long)h->generation);
    hostd_state_write(h->state_dir, "generation", buf);
}

void
hostd_inventory_changed(struct hostd_host *h)
{
    h->generation++;
    persist_generation(h);
    send_inventory(h);
}

void
hostd_vm_changed(struct hostd_host *h, struct hostd_vm *vm, bool removed)
{
    Kvc__Host__VmEvent ev = KVC__HOST__VM_EVENT__INIT;
    Kvc__Host__VmInfo info;

    h->generation++;
    persist_generation(h);
    if (!removed) {
        vm->generation++;
        vmstore_write_config(h, vm);
    }
    kvc_info("%s: vm %s (%s) %s power=%s tools=%s gen=%llu", h->name, vm->name,
             vm->uuid, removed ? "removed" : "changed",
             vm->power == VM_ON ? "on" : vm->power == VM_SUSPENDED ? "suspended" : "off",
             vm->tools_running ? "running" : "not-running",
             (unsigned long long)h->generation);
    hostd_ha_poweron_write(h);
    if (!h->vpxd)
        return;
    hostd_vm_to_info(h, vm, &info);
    ev.generation = h->generation;
    ev.removed = removed;
    ev.vm = &info;
    kvc_rpc_conn_send(h->vpxd, KVC__HOST__METHOD__VM_EVENT, &ev.base);
    free_vm_info(&info);
}

/* ---- session with vpxd -------------------------------------------------- */

bool
hostd_is_session(const struct hostd_host *h, struct kvc_rpc_call *call)
{
    return h->vpxd && kvc_rpc_call_conn(call) == h->vpxd;
}

bool
hostd_session_ok(struct hostd_host *h, struct kvc_rpc_call *call)
{
    if (hostd_is_session(h, call))
        return true;
    kvc_rpc_reply_error(call, KVC_RPC_E_PERMISSION, "say hello first");
    return false;
}

static void
session_stop_timers(struct hostd_host *h)
{
    if (h->stats_ev)
        event_del(h->stats_ev);
}

static void
set_hb_period(struct hostd_host *h, uint32_t ms)
{
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

    h->hb_ms = ms;
    event_del(h->hb_ev);
    event_add(h->hb_ev, &tv);
}

static void
on_hello(struct kvc_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
    struct hostd_host *h = arg;
    const Kvc__Host__Hello *m = (const Kvc__Host__Hello *)req;
    struct kvc_rpc_conn *conn = kvc_rpc_call_conn(call);
    Kvc__Host__HelloReply r = KVC__HOST__HELLO_REPLY__INIT;
    Kvc__Host__Status st = KVC__HOST__STATUS__INIT;
    Kvc__Host__HostInfo hi;
    const char *peer = conn ? kvc_rpc_conn_peer_thumbprint(conn) : NULL;
    char msg[256] = "";

    host_info_fill(h, &hi);
    r.status = &st;
    r.host = &hi;
    if (h->fail_net) {
        kvc_rpc_reply_error(call, KVC_RPC_E_UNAVAILABLE, "management network cut (failure injection)");
        return;
    }
    if (!conn || !peer) {
        kvc_rpc_reply_error(call, KVC_RPC_E_PERMISSION, "hello needs a TLS peer");
        return;
    }
    if (m->probe) {
        kvc_info("%s: probed by %s", h->name, kvc_rpc_conn_peer_name(conn));
        kvc_rpc_reply(call, &r.base);
        return;
    }
    if (m->heartbeat_ms && (m->heartbeat_ms < 100 || m->heartbeat_ms > 60000)) {
        st.error = EINVAL;
        snprintf(msg, sizeof msg, "heartbeat_ms %u out of range (100..60000)", m->heartbeat_ms);
        goto reply;
    }
    if (h->vpxd_thumbprint[0]) {
        if (!kvc_tls_thumbprint_equal(h->vpxd_thumbprint, peer)) {
            st.error = EPERM;
            snprintf(msg, sizeof msg, "host is managed by another vpxd (thumbprint %s)",
                     h->vpxd_thumbprint);
            goto reply;
        }
    } else {
        const char *u = h->d->opt.admin_user, *p = h->d->opt.admin_password;
        if (p && p[0] && (strcmp(m->user, u ? u : "root") || strcmp(m->password, p))) {
            st.error = EPERM;
            snprintf(msg, sizeof msg, "bad host credentials for user '%s'", m->user);
            kvc_warn("%s: hello from %s with bad credentials", h->name,
                     kvc_rpc_conn_peer_name(conn));
            goto reply;
        }
        snprintf(h->vpxd_thumbprint, sizeof h->vpxd_thumbprint, "%s", peer);
        char line[128];
        snprintf(line, sizeof line, "%s\n", peer);
        hostd_state_write(h->state_dir, "vpxd.thumbprint", line);
        kvc_info("%s: pinned vpxd certificate %s", h->name, peer);
    }
    if (h->vpxd && h->vpxd != conn) {
        kvc_info("%s: a new vpxd session replaces the old one", h->name);
        struct kvc_rpc_conn *old = h->vpxd;
        h->vpxd = NULL;
        kvc_rpc_conn_close(old);
    }
    h->vpxd = conn;
    h->ping_out = false;
    h->stats_ms = m->stats_interval_ms ? m->stats_interval_ms : 20000;
    if (h->stats_ms < 100)
        h->stats_ms = 100;
    set_hb_period(h, m->heartbeat_ms ? m->heartbeat_ms : h->d->opt.heartbeat_ms);
    {
        struct timeval tv = { h->stats_ms / 1000, (h->stats_ms % 1000) * 1000 };
        event_del(h->stats_ev);
        event_add(h->stats_ev, &tv);
    }
    kvc_info("%s: vpxd session up (host_id=%s heartbeat=%ums)", h->name,
             m->host_id, h->hb_ms);
reply:
    st.message = msg;
    kvc_rpc_reply(call, &r.base);
    if (!st.error) {
        send_inventory(h);
        host_tick(-1, 0, h);            /* a first heartbeat right away */
    }
}

static void
on_get_inventory(struct kvc_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
    struct hostd_host *h = arg;

    if (!hostd_is_session(h, call)) {
        CALL_ERR(call, KVC_RPC_E_PERMISSION, "say hello first");
        return;
    }
    kvc_rpc_reply(call, NULL);
    send_inventory(h);
}

static void
reply_vm(struct kvc_rpc_call *call, struct hostd_host *h, int err,
         const char *msg, struct hostd_vm *vm)
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
    if (vm)
        free_vm_info(&info);
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
on_vm_create(struct kvc_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
    struct hostd_host *h = arg;
    const Kvc__Host__VmCreate *m = (const Kvc__Host__VmCreate *)req;
    struct hostd_vm *vm, **tail;
    char err[512] = "";
    int rc;

    if (!hostd_is_session(h, call)) {
        CALL_ERR(call, KVC_RPC_E_PERMISSION, "say hello first");
        return;
    }
    if (!m->spec) {
        reply_vm(call, h, EINVAL, "no spec", NULL);
        return;
    }
    if (m->spec->uuid && (vm = hostd_vm_find(h, m->spec->uuid))) {
        /* A create retried after a lost reply: same VM, no second copy. */
        reply_vm(call, h, EEXIST, "a VM with this uuid exists on the host", vm);
        return;
    }
    if (m->spec->name && m->spec->datastore &&
        vm_find_name_ds(h, m->spec->name, m->spec->datastore)) {
        snprintf(err, sizeof err, "a VM named '%s' exists on datastore '%s'",
                 m->spec->name, m->spec->datastore);
        reply_vm(call, h, EEXIST, err, NULL);
        return;
    }
    if ((rc = vmstore_create(h, m->spec, &vm, err, sizeof err))) {
        reply_vm(call, h, rc, err, NULL);
        return;
    }
    if ((rc = h->be->vm_attach(h, vm))) {
        vmstore_delete(h, vm);
        vmstore_vm_free(vm);
        reply_vm(call, h, rc, "backend refused the VM", NULL);
        return;
    }
    for (tail = &h->vms; *tail; tail = &(*tail)->next)
        ;
    *tail = vm;
    vmstore_save_registry(h);
    hostd_vm_changed(h, vm, false);
    reply_vm(call, h, 0, NULL, vm);
}

static void
on_vm_reconfigure(struct kvc_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
    struct hostd_host *h = arg;
    const Kvc__Host__VmReconfigure *m = (const Kvc__Host__VmReconfigure *)req;
    struct hostd_vm *vm;

    if (!hostd_is_session(h, call)) {
        CALL_ERR(call, KVC_RPC_E_PERMISSION, "say hello first");
        return;
    }
    if (!(vm = hostd_vm_find(h, m->uuid))) {
        reply_vm(call, h, ENOENT, "no such VM on this host", NULL);
        return;
    }
    if (vm->power != VM_OFF || vm->busy) {
        reply_vm(call, h, EBUSY, "CPU and memory change only while powered off", vm);
        return;
    }
    if (m->cpu_count > 128 || (m->memory_mib && (m->memory_mib < 4 || m->memory_mib > 1048576))) {
        reply_vm(call, h, EINVAL, "cpu_count 1..128, memory_mib 4..1048576", vm);
        return;
    }
    if (m->cpu_count)
        vm->cpu_count = m->cpu_count;
    if (m->memory_mib)
        vm->memory_mib = m->memory_mib;
    hostd_vm_changed(h, vm, false);
    reply_vm(call, h, 0, NULL, vm);
}

/* Memory of the powered-on VMs must fit the host (no overcommit in 0.1). */
static bool
fits(struct hostd_host *h, struct hostd_vm *want)
{
    uint64_t used = 0;
    for (struct hostd_vm *vm = h->vms; vm; vm = vm->next)
        if (vm->power != VM_OFF && vm != want)
            used += vm->memory_mib << 20;
    return used + (want->memory_mib << 20) <= h->hw.memory_bytes;
}

/* Whether OP may run on VM now: 0, or -errno with *WHY. */
static int
power_check(struct hostd_host *h, struct hostd_vm *vm, Kvc__Host__PowerOp op,
            const char **why)
{
    *why = NULL;
    if (vm->busy) {
        *why = "another operation on this VM is in progress";
        return -EBUSY;
    }
    switch (op) {
    case KVC__HOST__POWER_OP__POWER_ON:
        if (vm->power == VM_ON)
            return -EALREADY;
        if (h->maintenance) {
            *why = "host is in maintenance mode";
            return -EBUSY;
        }
        if (vm->power == VM_OFF) {
            /* The VM's lease: not while another host runs it. */
            static char lease_why[PATH_MAX + 512];
            int lrc = vmstore_lease_check(h, vm, lease_why, sizeof lease_why);
            if (lrc) {
                *why = lease_why;
                return lrc;
            }
        }
        if (vm->power == VM_OFF && !fits(h, vm)) {
            *why = "not enough memory on the host";
            return -ENOSPC;
        }
        return 0;
    case KVC__HOST__POWER_OP__POWER_OFF:
        return vm->power == VM_OFF ? -EALREADY : 0;
    case KVC__HOST__POWER_OP__POWER_RESET:
        if (vm->power != VM_ON) {
            *why = "reset needs a powered-on VM";
            return -EBUSY;
        }
        return 0;
    case KVC__HOST__POWER_OP__POWER_SUSPEND:
        if (vm->power == VM_SUSPENDED)
            return -EALREADY;
        if (vm->power != VM_ON) {
            *why = "suspend needs a powered-on VM";
            return -EBUSY;
        }
        return 0;
    case KVC__HOST__POWER_OP__POWER_RESUME:
        if (vm->power == VM_ON)
            return -EALREADY;
        if (vm->power != VM_SUSPENDED) {
            *why = "resume needs a suspended VM";
            return -EBUSY;
        }
        if (h->maintenance) {
            *why = "host is in maintenance mode";
            return -EBUSY;
        }
        return 0;
    case KVC__HOST__POWER_OP__GUEST_SHUTDOWN:
    case KVC__HOST__POWER_OP__GUEST_REBOOT:
        if (vm->power != VM_ON) {
            *why = "the guest is not running";
            return -EBUSY;
        }
        if (!vm->tools_running) {
            *why = "VMware Tools are not running in the guest";
            return -EBUSY;
        }
        return 0;
    default:
        *why = "unknown power operation";
        return -EINVAL;
    }
}

/* Runs a checked OP on a backend with synchronous ops. */
static int
power_sync(struct hostd_host *h, struct hostd_vm *vm, Kvc__Host__PowerOp op)
{
    const struct hostd_backend_ops *be = h->be;

    switch (op) {
    case KVC__HOST__POWER_OP__POWER_ON:
        return vm->power == VM_SUSPENDED ? be->resume(h, vm) : be->power_on(h, vm);
    case KVC__HOST__POWER_OP__POWER_OFF: return be->power_off(h, vm);
    case KVC__HOST__POWER_OP__POWER_RESET: return be->reset(h, vm);
    case KVC__HOST__POWER_OP__POWER_SUSPEND: return be->suspend(h, vm);
    case KVC__HOST__POWER_OP__POWER_RESUME: return be->resume(h, vm);
    case KVC__HOST__POWER_OP__GUEST_SHUTDOWN: return be->guest_shutdown(h, vm);
    case KVC__HOST__POWER_OP__GUEST_REBOOT: return be->guest_reboot(h, vm);
    default: return -EINVAL;
    }
}

struct power_ctx {
    struct kvc_rpc_call *call;
    Kvc__Host__PowerOp op;
    enum vm_power before;
    bool tools_before;
};

/* Announce what an operation changed (a reset changes nothing visible but
 * is still news: the guest restarted). */
static void
power_finish(struct hostd_host *h, struct hostd_vm *vm, struct power_ctx *c,
             int rc, const char *why)
{
    if (!rc && (vm->power != c->before || vm->tools_running != c->tools_before ||
                c->op == KVC__HOST__POWER_OP__POWER_RESET ||
                c->op == KVC__HOST__POWER_OP__GUEST_REBOOT))
        hostd_vm_changed(h, vm, false);
    if (rc && !why)
        why = strerror(-rc);
    if (c->call)
        reply_vm(c->call, h, rc, why, vm);
}

static void
power_async_done(struct hostd_host *h, struct hostd_vm *vm, int rc,
                 const char *why, void *arg)
{
    struct power_ctx *c = arg;

    vm->busy = false;
    power_finish(h, vm, c, rc, why);
    free(c);
}

int
hostd_vm_power_start(struct hostd_host *h, struct hostd_vm *vm, Kvc__Host__PowerOp op,
                     const char **why)
{
    struct power_ctx c0 = { .op = op, .before = vm->power, .tools_before = vm->tools_running };
    struct power_ctx *c;
    int rc;

    if ((rc = power_check(h, vm, op, why)))
        return rc;
    if (!h->be->power_async) {
        rc = power_sync(h, vm, op);
        power_finish(h, vm, &c0, rc, NULL);
        return rc;
    }
    if (!(c = malloc(sizeof *c)))
        return -ENOMEM;
    *c = c0;
    vm->busy = true;
    h->be->power_async(h, vm, op, power_async_done, c);
    return 0;
}

static void
on_vm_power(struct kvc_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
    struct hostd_host *h = arg;
    const Kvc__Host__VmPower *m = (const Kvc__Host__VmPower *)req;
    struct power_ctx c0 = { .call = call, .op = m->op }, *c;
    struct hostd_vm *vm;
    const char *why;
    int rc;

    if (!hostd_is_session(h, call)) {
        CALL_ERR(call, KVC_RPC_E_PERMISSION, "say hello first");
        return;
    }
    if (!(vm = hostd_vm_find(h, m->uuid))) {
        reply_vm(call, h, ENOENT, "no such VM on this host", NULL);
        return;
    }
    if ((rc = power_check(h, vm, m->op, &why))) {
        reply_vm(call, h, rc, why ? why : rc == -EALREADY
                 ? "the VM is already in that state" : NULL, vm);
        return;
    }
    c0.before = vm->power;
    c0.tools_before = vm->tools_running;
    if (!h->be->power_async) {
        power_finish(h, vm, &c0, power_sync(h, vm, m->op), NULL);
        return;
    }
    /* The backend answers later (a vmx takes time to start or stop). */
    if (!(c = malloc(sizeof *c))) {
        reply_vm(call, h, ENOMEM, NULL, vm);
        return;
    }
    *c = c0;
    vm->busy = true;
    h->be->power_async(h, vm, m->op, power_async_done, c);
}

static void
on_vm_delete(struct kvc_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
    struct hostd_host *h = arg;
    const Kvc__Host__VmRef *m = (const Kvc__Host__VmRef *)req;
    struct hostd_vm *vm, **pp;
    char msg[300];
    int rc;

    if (!hostd_is_session(h, call)) {
        CALL_ERR(call, KVC_RPC_E_PERMISSION, "say hello first");
        return;
    }
    if (!(vm = hostd_vm_find(h, m->uuid))) {
        reply_status(call, ENOENT, "no such VM on this host");
        return;
    }
    if (vm->power != VM_OFF || vm->busy) {
        reply_status(call, EBUSY, "power the VM off before deleting it");
        return;
    }
    h->be->vm_detach(h, vm);
    rc = vmstore_delete(h, vm);
    for (pp = &h->vms; *pp != vm; pp = &(*pp)->next)
        ;
    *pp = vm->next;
    vmstore_save_registry(h);
    hostd_vm_changed(h, vm, true);
    vmstore_vm_free(vm);
    if (rc) {
        snprintf(msg, sizeof msg, "VM unregistered but its folder could not be fully removed: %s",
                 strerror(-rc));
        reply_status(call, 0, msg);
        return;
    }
    reply_status(call, 0, NULL);
}

static void
on_maintenance(struct kvc_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
    struct hostd_host *h = arg;
    const Kvc__Host__Maintenance *m = (const Kvc__Host__Maintenance *)req;

    if (!hostd_is_session(h, call)) {
        CALL_ERR(call, KVC_RPC_E_PERMISSION, "say hello first");
        return;
    }
    h->maintenance = m->enter;
    hostd_state_write(h->state_dir, "maintenance", m->enter ? "1\n" : "0\n");
    kvc_info("%s: maintenance mode %s", h->name, m->enter ? "entered" : "exited");
    reply_status(call, 0, NULL);
}

static void
on_forget(struct kvc_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
    struct hostd_host *h = arg;
    char path[PATH_MAX + 32];

    if (!hostd_is_session(h, call)) {
        CALL_ERR(call, KVC_RPC_E_PERMISSION, "say hello first");
        return;
    }
    h->vpxd_thumbprint[0] = 0;
    snprintf(path, sizeof path, "%s/vpxd.thumbprint", h->state_dir);
    unlink(path);
    kvc_info("%s: vpxd removed this host; trust dropped", h->name);
    reply_status(call, 0, NULL);
}

static const struct kvc_rpc_method host_methods[] = {
    { KVC__HOST__METHOD__HELLO, "Hello", &kvc__host__hello__descriptor,
      &kvc__host__hello_reply__descriptor, on_hello },
    { KVC__HOST__METHOD__GET_INVENTORY, "GetInventory", NULL, NULL, on_get_inventory },
    { KVC__HOST__METHOD__VM_CREATE, "VmCreate", &kvc__host__vm_create__descriptor,
      &kvc__host__vm_reply__descriptor, on_vm_create },
    { KVC__HOST__METHOD__VM_RECONFIGURE, "VmReconfigure",
      &kvc__host__vm_reconfigure__descriptor, &kvc__host__vm_reply__descriptor,
      on_vm_reconfigure },
    { KVC__HOST__METHOD__VM_POWER, "VmPower", &kvc__host__vm_power__descriptor,
      &kvc__host__vm_reply__descriptor, on_vm_power },
    { KVC__HOST__METHOD__VM_DELETE, "VmDelete", &kvc__host__vm_ref__descriptor,
      &kvc__host__status__descriptor, on_vm_delete },
    { KVC__HOST__METHOD__MAINTENANCE, "Maintenance", &kvc__host__maintenance__descriptor,
      &kvc__host__status__descriptor, on_maintenance },
    { KVC__HOST__METHOD__FORGET, "Forget", NULL, &kvc__host__status__descriptor, on_forget },
    { KVC__HOST__METHOD__VM_REGISTER, "VmRegister", &kvc__host__vm_register__descriptor,
      &kvc__host__vm_reply__descriptor, hostd_ha_on_register },
    { KVC__HOST__METHOD__VM_UNREGISTER, "VmUnregister", &kvc__host__vm_ref__descriptor,
      &kvc__host__status__descriptor, hostd_ha_on_unregister },
    { KVC__HOST__METHOD__HA_CONFIG, "HaConfig", &kvc__host__ha_config__descriptor,
      &kvc__host__status__descriptor, hostd_ha_on_config },
    { KVC__HOST__METHOD__MIGRATE_PREPARE, "MigratePrepare",
      &kvc__host__migrate_prepare__descriptor, &kvc__host__migrate_prepare_reply__descriptor,
      hostd_migrate_prepare },
    { KVC__HOST__METHOD__MIGRATE_SEND, "MigrateSend", &kvc__host__migrate_send__descriptor,
      &kvc__host__status__descriptor, hostd_migrate_send },
    { KVC__HOST__METHOD__MIGRATE_STATUS, "MigrateStatus", &kvc__host__migrate_ref__descriptor,
      &kvc__host__migrate_status__descriptor, hostd_migrate_status },
    { KVC__HOST__METHOD__MIGRATE_ABORT, "MigrateAbort", &kvc__host__migrate_ref__descriptor,
      &kvc__host__status__descriptor, hostd_migrate_abort },
    { KVC__HOST__METHOD__MIGRATE_FINISH, "MigrateFinish", &kvc__host__migrate_ref__descriptor,
      &kvc__host__vm_reply__descriptor, hostd_migrate_finish },
    /* Storage migration (svmotion.c). */
    { KVC__HOST__METHOD__VM_STORAGE_MOVE, "VmStorageMove",
      &kvc__host__storage_move_request__descriptor, &kvc__host__storage_move_status__descriptor,
      hostd_svmotion_start },
    { KVC__HOST__METHOD__VM_STORAGE_MOVE_STATUS, "VmStorageMoveStatus",
      &kvc__host__storage_move_query__descriptor, &kvc__host__storage_move_status__descriptor,
      hostd_svmotion_status },
    { KVC__HOST__METHOD__VM_STORAGE_MOVE_CANCEL, "VmStorageMoveCancel",
      &kvc__host__storage_move_query__descriptor, &kvc__host__storage_move_status__descriptor,
      hostd_svmotion_cancel },
    /* Standard vSwitches and port groups (vswitch.c). */
    { KVC__HOST__METHOD__VSWITCH_LIST, "VswitchList", &kvc__host__empty__descriptor,
      &kvc__host__vswitch_list__descriptor,
      hostd_vswitch_on_list },
    { KVC__HOST__METHOD__VSWITCH_ADD, "VswitchAdd", &kvc__host__vswitch_spec__descriptor,
      &kvc__host__status__descriptor, hostd_vswitch_on_change },
    { KVC__HOST__METHOD__VSWITCH_REMOVE, "VswitchRemove", &kvc__host__vswitch_spec__descriptor,
      &kvc__host__status__descriptor, hostd_vswitch_on_change },
    { KVC__HOST__METHOD__PORTGROUP_ADD, "PortgroupAdd", &kvc__host__portgroup_spec__descriptor,
      &kvc__host__status__descriptor, hostd_vswitch_on_change },
    { KVC__HOST__METHOD__PORTGROUP_REMOVE, "PortgroupRemove",
      &kvc__host__portgroup_spec__descriptor, &kvc__host__status__descriptor,
      hostd_vswitch_on_change },
    { KVC__HOST__METHOD__PORTGROUP_SET, "PortgroupSet", &kvc__host__portgroup_spec__descriptor,
      &kvc__host__status__descriptor, hostd_vswitch_on_change },
    /* Resource pools (pools.c). */
    { KVC__HOST__METHOD__POOLS_SET, "PoolsSet", &kvc__host__pool_tree__descriptor,
      &kvc__host__status__descriptor, hostd_pools_on_set },
    { KVC__HOST__METHOD__POOLS_GET, "PoolsGet", &kvc__host__empty__descriptor,
      &kvc__host__pool_tree__descriptor, hostd_pools_on_get },
    { KVC__HOST__METHOD__VM_CONSOLE_READ, "VmConsoleRead", &kvc__host__console_read__descriptor,
      &kvc__host__console_data__descriptor, hostd_console_on_read },
    { KVC__HOST__METHOD__VM_CONSOLE_WRITE, "VmConsoleWrite",
      &kvc__host__console_write__descriptor, &kvc__host__console_written__descriptor,
      hostd_console_on_write },
    /* VM snapshots (snapshots.c). */
    { KVC__HOST__METHOD__VM_SNAPSHOT_CREATE, "VmSnapshotCreate",
      &kvc__host__snapshot_request__descriptor, &kvc__host__snapshot_info__descriptor,
      hostd_snapshot_on_create },
    { KVC__HOST__METHOD__VM_SNAPSHOT_LIST, "VmSnapshotList",
      &kvc__host__snapshot_request__descriptor, &kvc__host__snapshot_list__descriptor,
      hostd_snapshot_on_list },
    { KVC__HOST__METHOD__VM_SNAPSHOT_REVERT, "VmSnapshotRevert",
      &kvc__host__snapshot_request__descriptor, &kvc__host__snapshot_info__descriptor,
      hostd_snapshot_on_revert },
    { KVC__HOST__METHOD__VM_SNAPSHOT_DELETE, "VmSnapshotDelete",
      &kvc__host__snapshot_request__descriptor, &kvc__host__status__descriptor,
      hostd_snapshot_on_delete },
};

static bool
accept_any_peer(const char *thumbprint, void *arg)
{
    /* Anyone may say Hello (probes answer with the host's public identity);
     * only the pinned vpxd gets a session, checked in on_hello. */
    return true;
}

static void
on_connect(struct kvc_rpc_conn *conn, void *arg)
{
    struct hostd_host *h = arg;
    kvc_dbg("%s: connection from %s", h->name, kvc_rpc_conn_peer_name(conn));
}

static void
on_disconnect(struct kvc_rpc_conn *conn, const char *reason, void *arg)
{
    struct hostd_host *h = arg;

    if (conn != h->vpxd)
        return;
    h->vpxd = NULL;
    session_stop_timers(h);
    kvc_info("%s: vpxd session down (%s); VMs keep running", h->name, reason);
}

/* ---- timers ------------------------------------------------------------- */

/* vpxd's liveness, from this side.  Heartbeats are one-way, so a network
 * that dies silently (a pulled cable, a cut link) would leave the session
 * looking alive until TCP keepalive gives up, a minute later; HA's
 * isolation detection needs to know in about the detection time.  So each
 * heartbeat period hostd pings vpxd on the session (the transport's
 * built-in Ping, answered by every endpoint), and a ping unanswered for
 * PING_PERIODS periods ends the session. */
#define PING_PERIODS 5

struct ping_ctx {
    struct hostd_host *h;
    struct kvc_rpc_conn *conn;
};

static void
on_vpxd_pong(int status, const char *error, const ProtobufCMessage *resp, void *arg)
{
    struct ping_ctx *c = arg;
    struct hostd_host *h = c->h;

    if (h->vpxd == c->conn)
        h->ping_out = false;
    if (status == KVC_RPC_E_TIMEOUT && h->vpxd == c->conn) {
        kvc_warn("%s: vpxd did not answer for %u ms: the session is gone", h->name,
                 PING_PERIODS * (h->hb_ms ? h->hb_ms : 1000));
        kvc_rpc_conn_close(c->conn);
    }
    free(c);
}

static void
ping_vpxd(struct hostd_host *h)
{
    Kvc__Rpc__Ping p = KVC__RPC__PING__INIT;
    struct ping_ctx *c;

    if (h->ping_out || !(c = calloc(1, sizeof *c)))
        return;
    c->h = h;
    c->conn = h->vpxd;
    p.seq = h->hb_seq;
    if (kvc_rpc_conn_call(h->vpxd, KVC_RPC_METHOD_PING, &p.base, &kvc__rpc__ping__descriptor,
                          PING_PERIODS * (h->hb_ms ? h->hb_ms : 1000), on_vpxd_pong, c)) {
        free(c);
        return;
    }
    h->ping_out = true;
}

static void
host_tick(evutil_socket_t fd, short what, void *arg)
{
    struct hostd_host *h = arg;
    Kvc__Host__Heartbeat hb = KVC__HOST__HEARTBEAT__INIT;
    int64_t now = hostd_now_ms();
    static struct kvc_ratelimit rl = KVC_RATELIMIT_INIT(3, 60);
    int rc;

    if (h->crashed)
        return;
    h->hb_seq++;
    if (!h->fail_ds_hb && (rc = vmstore_write_ds_heartbeat(h, now)))
        kvc_warn_rl(&rl, "%s: datastore heartbeat: %s", h->name, strerror(-rc));
    hostd_ha_tick(h, now);
    if (!h->vpxd || h->fail_net_hb)
        return;
    hb.seq = h->hb_seq;
    hb.time_ms = now;
    hb.inventory_generation = h->generation;
    kvc_rpc_conn_send(h->vpxd, KVC__HOST__METHOD__HEARTBEAT, &hb.base);
    ping_vpxd(h);
}

static void
host_stats_tick(evutil_socket_t fd, short what, void *arg)
{
    struct hostd_host *h = arg;
    Kvc__Host__StatsBatch b = KVC__HOST__STATS_BATCH__INIT;
    Kvc__Host__StatsSample *s, **sp;
    size_t n = 1, i = 1;
    int64_t now = hostd_now_ms();
    uint64_t host_mhz = 0, host_mem = 0;

    if (!h->vpxd || h->crashed)
        return;
    for (struct hostd_vm *vm = h->vms; vm; vm = vm->next)
        n++;
    s = calloc(n, sizeof *s);
    sp = calloc(n, sizeof *sp);
    if (!s || !sp)
        goto out;
    for (struct hostd_vm *vm = h->vms; vm; vm = vm->next, i++) {
        struct hostd_vm_stats vs = { 0 };
        kvc__host__stats_sample__init(&s[i]);
        if (vm->power == VM_ON)
            h->be->vm_stats(h, vm, &vs);
        s[i].vm_uuid = vm->uuid;
        s[i].time_ms = now;
        s[i].cpu_usage_mhz = vs.cpu_usage_mhz;
        s[i].cpu_usage_permille = vs.cpu_usage_permille;
        s[i].mem_active_bytes = vs.mem_active_bytes;
        s[i].mem_consumed_bytes = vs.mem_consumed_bytes;
        s[i].net_rx_bytes = vs.net_rx_bytes;
        s[i].net_tx_bytes = vs.net_tx_bytes;
        s[i].disk_read_bytes = vs.disk_read_bytes;
        s[i].disk_write_bytes = vs.disk_write_bytes;
        host_mhz += vs.cpu_usage_mhz;
        host_mem += vs.mem_consumed_bytes;
        sp[i] = &s[i];
    }
    kvc__host__stats_sample__init(&s[0]);
    s[0].time_ms = now;
    s[0].cpu_usage_mhz = (uint32_t)host_mhz;
    if (h->hw.cores && h->hw.mhz)
        s[0].cpu_usage_permille = (uint32_t)(host_mhz * 1000 / ((uint64_t)h->hw.cores * h->hw.mhz));
    s[0].mem_consumed_bytes = host_mem;
    sp[0] = &s[0];
    b.n_samples = n;
    b.samples = sp;
    kvc_rpc_conn_send(h->vpxd, KVC__HOST__METHOD__STATS, &b.base);
out:
    free(s);
    free(sp);
    {
        struct timeval tv = { h->stats_ms / 1000, (h->stats_ms % 1000) * 1000 };
        event_add(h->stats_ev, &tv);
    }
}

/* ---- life cycle --------------------------------------------------------- */

static int
parse_ds_spec(const char *spec, struct hostd_datastore *ds)
{
    /* name=path[:shared] */
    const char *eq = strchr(spec, '=');
    char *p;
    size_t n;

    if (!eq || eq == spec || !eq[1])
        return -EINVAL;
    ds->name = strndup(spec, (size_t)(eq - spec));
    ds->path = strdup(eq + 1);
    if (!ds->name || !ds->path)
        return -ENOMEM;
    n = strlen(ds->path);
    if (n > 7 && !strcmp(ds->path + n - 7, ":shared")) {
        ds->path[n - 7] = 0;
        ds->shared = true;
    }
    while ((p = strrchr(ds->path, '/')) && p != ds->path && !p[1])
        *p = 0;
    return ds->path[0] == '/' ? 0 : -EINVAL;
}

static int
parse_net_spec(const char *spec, struct hostd_network *net)
{
    /* name[@vswitch][:vlan] */
    char *s = strdup(spec), *at, *colon;

    if (!s)
        return -ENOMEM;
    colon = strrchr(s, ':');
    if (colon) {
        *colon = 0;
        net->vlan = (uint32_t)strtoul(colon + 1, NULL, 10);
        if (net->vlan > 4095) {
            free(s);
            return -EINVAL;
        }
    }
    at = strchr(s, '@');
    if (at)
        *at = 0;
    net->name = strdup(s);
    net->vswitch = strdup(at ? at + 1 : "vSwitch0");
    free(s);
    return net->name && net->vswitch && net->name[0] ? 0 : -EINVAL;
}

int
hostd_host_new(struct hostd *d, unsigned index, struct hostd_host **out)
{
    const struct hostd_options *o = &d->opt;
    struct hostd_host *h = calloc(1, sizeof *h);
    char buf[128];
    int rc = -ENOMEM;

    if (!h)
        return -ENOMEM;
    h->d = d;
    h->index = index;
    h->be = !strcmp(o->backend, "sim") ? &hostd_backend_sim : &hostd_backend_kvm;
    h->hb_ms = o->heartbeat_ms;
    if (o->sim_hosts > 1)
        snprintf(h->state_dir, sizeof h->state_dir, "%s/host-%u", o->state_dir, index);
    else
        snprintf(h->state_dir, sizeof h->state_dir, "%s", o->state_dir);
    if ((rc = hostd_mkdirs(h->state_dir, 0700))) {
        kvc_err("state dir %s: %s", h->state_dir, strerror(-rc));
        goto fail;
    }
    if (o->sim_hosts > 1)
        snprintf(buf, sizeof buf, "%s-%u", o->name, index);
    else
        snprintf(buf, sizeof buf, "%s", o->name);
    if (!(h->name = strdup(buf)))
        goto fail;
    /* A host's uuid is made once and kept: it is how vpxd knows the host. */
    if (hostd_state_read(h->state_dir, "uuid", h->uuid, sizeof h->uuid) ||
        !hostd_uuid_valid(h->uuid)) {
        char line[HOSTD_UUID_LEN + 1];
        hostd_uuid_generate(h->uuid);
        snprintf(line, sizeof line, "%s\n", h->uuid);
        if ((rc = hostd_state_write(h->state_dir, "uuid", line)))
            goto fail;
    }
    if (hostd_state_read(h->state_dir, "generation", buf, sizeof buf) == 0)
        h->generation = strtoull(buf, NULL, 10);
    if (hostd_state_read(h->state_dir, "maintenance", buf, sizeof buf) == 0)
        h->maintenance = buf[0] == '1';
    if (hostd_state_read(h->state_dir, "vpxd.thumbprint", h->vpxd_thumbprint,
                         sizeof h->vpxd_thumbprint))
        h->vpxd_thumbprint[0] = 0;
    if ((rc = kvc_tls_ensure_identity(h->state_dir, h->name, &h->id))) {
        kvc_err("%s: TLS identity in %s: %s", h->name, h->state_dir, strerror(-rc));
        goto fail;
    }
    h->ds = calloc(o->n_ds_specs + 1, sizeof *h->ds);
    h->nets = calloc(o->n_net_specs + 1, sizeof *h->nets);
    if (!h->ds || !h->nets)
        goto fail;
    for (size_t i = 0; i < o->n_ds_specs; i++) {
        if ((rc = parse_ds_spec(o->ds_specs[i], &h->ds[h->n_ds]))) {
            kvc_err("datastore '%s': want name=/abs/path[:shared]", o->ds_specs[i]);
            h->n_ds++;
            goto fail;
        }
        h->n_ds++;
        if ((rc = hostd_mkdirs(h->ds[h->n_ds - 1].path, 0755))) {
            kvc_err("datastore %s: %s", h->ds[h->n_ds - 1].path, strerror(-rc));
            goto fail;
        }
    }
    for (size_t i = 0; i < o->n_net_specs; i++) {
        if ((rc = parse_net_spec(o->net_specs[i], &h->nets[h->n_nets++]))) {
            kvc_err("network '%s': want name[@vswitch][:vlan]", o->net_specs[i]);
            goto fail;
        }
    }
    if ((rc = hostd_vswitch_init(h)))
        goto fail;
    if (hwinfo_read(&h->hw))
        kvc_warn("could not read hardware info");
    if ((rc = vmstore_load(h)))
        goto fail;
    if ((rc = hostd_ha_new(h)))
        goto fail;
    if (!(h->hb_ev = event_new(d->base, -1, EV_PERSIST, host_tick, h)) ||
        !(h->stats_ev = event_new(d->base, -1, 0, host_stats_tick, h))) {
        rc = -ENOMEM;
        goto fail;
    }
    if ((rc = h->be->init(h, &h->be_priv))) {
        kvc_err("%s: %s backend: %s", h->name, h->be->name, strerror(-rc));
        goto fail;
    }
    *out = h;
    return 0;
fail:
    hostd_host_free(h);
    return rc;
}

static int
host_listen(struct hostd_host *h)
{
    const struct hostd_options *o = &h->d->opt;
    struct kvc_rpc_opts ro = {
        .methods = host_methods,
        .n_methods = KVC_ARRAY_SIZE(host_methods),
        .handler_arg = h,
        .on_connect = on_connect,
        .on_disconnect = on_disconnect,
        .cb_arg = h,
    };
    struct kvc_rpc_tls tls = {
        .identity = h->id,
        .verify = accept_any_peer,
        .verify_arg = h,
    };
    uint16_t port = o->port > 0 ? (uint16_t)(o->port + (int)h->index) : (uint16_t)0;
    int rc;

    if (h->port)
        port = h->port;                 /* recovering: keep the same port */
    if ((rc = kvc_rpc_server_new(h->d->base, &ro, &h->srv)))
        return rc;
    if ((rc = kvc_rpc_server_listen_tcp(h->srv, o->listen, port, &tls))) {
        kvc_err("%s: listen on %s:%u: %s", h->name, o->listen, port, strerror(-rc));
        kvc_rpc_server_free(h->srv);
        h->srv = NULL;
        return rc;
    }
    h->port = kvc_rpc_server_port(h->srv);
    return 0;
}

int
hostd_host_start(struct hostd_host *h)
{
    char buf[32];
    int rc;

    if ((rc = host_listen(h)))
        return rc;
    snprintf(buf, sizeof buf, "%u\n", h->port);
    hostd_state_write(h->state_dir, "port", buf);
    set_hb_period(h, h->hb_ms);
    host_tick(-1, 0, h);
    /* Tests and kvcenter-up read this line. */
    kvc_info("host ready index=%u name=%s uuid=%s port=%u thumbprint=%s backend=%s vms=%zu",
             h->index, h->name, h->uuid, h->port,
             kvc_tls_identity_thumbprint(h->id), h->be->name,
             (size_t)({ size_t n = 0; for (struct hostd_vm *v = h->vms; v; v = v->next) n++; n; }));
    return 0;
}

void
hostd_host_crash(struct hostd_host *h)
{
    if (h->crashed)
        return;
    kvc_warn("%s: simulated crash: VMs stop, network and datastore go silent", h->name);
    h->crashed = true;
    h->vpxd = NULL;
    session_stop_timers(h);
    kvc_rpc_server_free(h->srv);
    h->srv = NULL;
    hostd_migrate_drop_all(h);
    if (h->be->crash)
        h->be->crash(h);
}

void
hostd_host_recover(struct hostd_host *h)
{
    if (!h->crashed)
        return;
    h->crashed = false;
    if (host_listen(h) == 0)
        kvc_info("%s: back up after simulated crash on port %u", h->name, h->port);
}

void
hostd_host_free(struct hostd_host *h)
{
    if (!h)
        return;
    kvc_rpc_server_free(h->srv);
    hostd_pools_free(h);
    hostd_ha_free(h);
    hostd_migrate_drop_all(h);
    if (h->mig_ev)
        event_free(h->mig_ev);
    if (h->be && h->be_priv)
        h->be->fini(h, h->be_priv);
    if (h->hb_ev)
        event_free(h->hb_ev);
    if (h->stats_ev)
        event_free(h->stats_ev);
    while (h->vms) {
        struct hostd_vm *vm = h->vms;
        h->vms = vm->next;
        vmstore_vm_free(vm);
    }
    for (size_t i = 0; i < h->n_ds; i++) {
        free(h->ds[i].name);
        free(h->ds[i].path);
    }
    for (size_t i = 0; i < h->n_nets; i++) {
        free(h->nets[i].name);
        free(h->nets[i].vswitch);
    }
    free(h->ds);
    free(h->nets);
    hostd_vswitch_fini(h);
    kvc_tls_identity_free(h->id);
    free(h->name);
    free(h);
}
