/* The kvm backend: real VMs through vmkd (docs/vmkd.md), which spawns and
 * supervises one vmx per running VM and outlives hostd.
 *
 * vmkd is the truth for what runs: at start-up hostd asks it for the list
 * of running VMs (vm_id = the VM's uuid) and adopts them, so restarting
 * hostd never stops a VM.  It subscribes to vmkd's events to learn about
 * VMs that stop on their own (guest power-off, vmx crash).
 *
 * vmx reads its own config format (vmx -c), so each power-on writes the VM's
 * runtime config <dir>/<name>.vmx-run from the VM's .vmx.
 *
 * The guest's tools state lives in vmx: hostd keeps a connection to each
 * running VM's vmx control socket (the path vmkd reports) and polls
 * VMX_STATS every KVM_TOOLS_MS; tools count as running while the guest's
 * heartbeat is fresh.  Guest shutdown and reboot go to vmx the same way
 * (VMX_GUEST_SHUTDOWN / VMX_GUEST_REBOOT, through the guest's tools).
 *
 * Suspend asks vmx for a snapshot that powers the VM off once written
 * (<dir>/<name>.vmss, VMX_SNAPSHOT with power_off); resume (a power-on of a
 * suspended VM) starts vmx through vmkd with --restore of that file, which
 * is removed once the VM runs again.  A VM whose suspend file exists and
 * that does not run is suspended, also across hostd restarts. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "rpc.h"
#include "vmkd.pb-c.h"
#include "vmx.pb-c.h"
#include "lib/lease.h"
#include "hostd/backend.h"
#include "hostd/backends/kvm.h"
#include "hostd/backends/sim.h"

KVC_LOG_MODULE(kvm);

#define KVM_CALL_MS 60000
#define KVM_USAGE_MS 2000
#define KVM_TOOLS_MS 1000

struct kvm_host {
    struct hostd_host *h;
    struct kvc_rpc_client *cl;
    struct event *usage_ev;
    struct event *tools_ev;
    int64_t usage_ms;
};

struct kvm_vm {
    uint64_t cpu_ns, mem_bytes;
    uint32_t cpu_mhz;
    uint32_t cpu_permille;
    char *vmx_socket;               /* vmx's control socket, while it runs */
    struct kvc_rpc_client *vmx;     /* connection to it */
    bool stats_out;                 /* a VMX_STATS call is out */
    /* live migration, source side */
    bool migrated;                  /* vmx exited "migrated": the VM runs elsewhere */
    char mig_error[256];            /* the send failed (or vmx went) before completing */
    /* vmx exited while the VM was busy (a storage move, a snapshot): once
     * the operation is over and no new vmx runs it, the VM is off. */
    char exited_busy[128];
    int pid;                        /* vmx's process id (vmkd's VmInfo), 0: none */
};

static void vmx_link(struct hostd_host *, struct hostd_vm *, const char *sock);
static void vmx_link_info(struct hostd_host *, struct hostd_vm *, const Kvc__Vmkd__VmInfo *);

/* The VM's suspend file (its memory and device state while suspended). */
static int
suspend_path(const struct hostd_vm *vm, char *buf, size_t len)
{
    return snprintf(buf, len, "%s/%s.vmss", vm->dir, vm->name) >= (int)len ? -ENAMETOOLONG : 0;
}

static bool
has_suspend_file(const struct hostd_vm *vm)
{
    char p[PATH_MAX + 16];
    return !suspend_path(vm, p, sizeof p) && access(p, R_OK) == 0;
}
static void vmx_unlink(struct hostd_vm *);

/* ---- runtime config for vmx ---------------------------------------------*/

/* The VM's adapter: its MAC in VMware's range for generated addresses
 * (00:50:56:00-3f:..) and a test-guest IPv4 address, both from the VM's
 * uuid, so every host that runs it (after a migration or an HA restart)
 * gives it the same ones. */
static uint64_t
uuid_hash(const char *uuid)
{
    uint64_t x = 1469598103934665603ull;
    for (; *uuid; uuid++)
        x = (x ^ (unsigned char)*uuid) * 1099511628211ull;
    return x;
}

static void
vm_mac(const struct hostd_vm *vm, char *buf, size_t len)
{
    uint64_t x = uuid_hash(vm->uuid);
    snprintf(buf, len, "00:50:56:%02x:%02x:%02x", (unsigned)(x >> 16) & 0x3f,
             (unsigned)(x >> 8) & 0xff, (unsigned)x & 0xff);
}

static bool
has_nic(const struct hostd_vm *vm)
{
    return vm->network && *vm->network;
}
/* A config-file string: quoted, with its quotes and backslashes escaped. */
static void
put_quoted(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        fputc(*s, f);
    }
    fputc('"', f);
}


static int
write_run_config(struct hostd_host *h, struct hostd_vm *vm, char *path, size_t len)
{
    struct sim_workload w;
    const char *wl = "idle";
    char extra[96] = "";
    FILE *f;
    uint64_t mem = vm->memory_mib;
    bool plain = !strpbrk(vm->name, "\"\\");

    if (snprintf(path, len, "%s/%s.vmx-run", vm->dir, vm->name) >= (int)len)
        return -ENAMETOOLONG;
    /* vmx's test guest takes 2..3072 MiB, even. */
    if (mem > 3072)
        mem = 3072;
    mem &= ~1ull;
    if (mem < 2)
        mem = 2;
    if (!strcmp(vm->workload, "disk-loop")) {
        /* The test guest writes and verifies its disk pattern pass after
         * pass (guest.disk_test = loop), with the disk vmstore made. */
        if (vm->disk_bytes >= 512)
            snprintf(extra, sizeof extra, "guest.disk_test = loop\n");
    } else if (sim_workload_parse(vm->workload, &w) == 0) {
        switch (w.kind) {
        case SIM_CPU:
            wl = "cpu";
            snprintf(extra, sizeof extra, "guest.duty_percent = %d\n", (int)w.arg);
            break;
        case SIM_SINE:
            wl = "cpu";
            break;
        case SIM_MEM:
            wl = "dirty";
            snprintf(extra, sizeof extra, "guest.dirty_mb_per_s = %d\n", (int)w.arg);
            break;
        case SIM_HANG: wl = "hang"; break;
        case SIM_CRASH: wl = "crash"; break;
        default: break;
        }
    }
    if (!(f = fopen(path, "w")))
        return -errno;
    fprintf(f, "# written by hostd at each power-on from %s.vmx\n"
               "name = \"%s\"\nuuid = \"%s\"\nmemory_mb = %llu\nvcpus = %u\n"
               "guest.image = \"%s\"\nguest.workload = %s\n%s"
               "serial.log = \"serial.log\"\n",
            vm->name, plain ? vm->name : vm->uuid, vm->uuid, (unsigned long long)mem,
            vm->cpu_count > 64 ? 64 : vm->cpu_count, h->d->opt.guest_image, wl, extra);
    /* The lease: this host holds it; vmx takes it over and renews it. */
    char lname[PATH_MAX];
    snprintf(lname, sizeof lname, "%s.lck", vm->name);
    fprintf(f, "lease.path = ");
    put_quoted(f, lname);
    fprintf(f, "\nlease.owner = \"%s\"\nlease.owner_name = ", h->uuid);
    put_quoted(f, h->name);
    fprintf(f, "\nlease.duration_ms = %u\n",
            h->d->opt.lease_ms ? h->d->opt.lease_ms : KVC_LEASE_DEFAULT_MS);
    /* Its adapter on the VM's port group (vmkd gives it the port). */
    if (has_nic(vm)) {
        char mac[24];
        uint64_t x = uuid_hash(vm->uuid) >> 24;
        vm_mac(vm, mac, sizeof mac);
        fprintf(f, "net.enabled = true\nnet.mac = \"%s\"\nnet.portgroup = ", mac);
        put_quoted(f, vm->network);
        fprintf(f, "\nguest.net_mode = listen\nguest.ip = \"10.%u.%u.%u\"\n",
                (unsigned)(x >> 16) & 0xff, (unsigned)(x >> 8) & 0xff,
                1 + (unsigned)(x % 254));
    }
    /* The disk vmstore made (sparse) at create: vmx's virtio-blk. */
    if (vm->disk_bytes >= 512) {
        char dname[PATH_MAX];
        snprintf(dname, sizeof dname, "%s.img", vm->name);
        fprintf(f, "disk.path = ");
        put_quoted(f, dname);
        fputc('\n', f);
    }
    if (fclose(f))
        return -errno;
    return 0;
}

/* ---- vmkd replies and events -------------------------------------------*/

static int
vmkd_errno(int status)
{
    switch (status) {
    case 1001: return -ENOSPC;              /* E_INSUFFICIENT_RESOURCES */
    case 1002: return -EIO;                 /* E_START_FAILED */
    case KVC_RPC_E_CONFLICT: return -EALREADY;
    case KVC_RPC_E_NOT_FOUND: return -ENOENT;
    case KVC_RPC_E_INVALID_ARGUMENT: return -EINVAL;
    case KVC_RPC_E_UNAVAILABLE:
    case KVC_RPC_E_DISCONNECTED: return -ENOTCONN;
    case KVC_RPC_E_TIMEOUT: return -ETIMEDOUT;
    default: return -EIO;
    }
}

static void
set_off(struct hostd_host *h, struct hostd_vm *vm, const char *why)
{
    if (vm->power == VM_OFF)
        return;
    if (vm->power == VM_SUSPENDED) {
        vmx_unlink(vm);         /* vmx exits after writing its suspend file */
        return;
    }
    kvc_info("%s: VM %s stopped: %s", h->name, vm->name, why);
    vm->power = VM_OFF;
    vm->tools_running = false;
    vmx_unlink(vm);
    hostd_vm_changed(h, vm, false);
}

static void
on_vmkd_event(struct kvc_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
    struct hostd_host *h = arg;
    const Kvc__Vmkd__VmEvent *e = (const Kvc__Vmkd__VmEvent *)req;
    struct hostd_vm *vm = hostd_vm_find(h, e->vm_id);
    struct hostd_vm *in = vm ? NULL : hostd_migrate_incoming_vm(h, e->vm_id);

    if (in && in->be && e->kind == KVC__VMKD__EVENT_KIND__EVENT_VM_EXITED) {
        /* An incoming vmx that went: FINISH must not take over a VM that
         * does not run (kvm_migrate_in refuses). */
        struct kvm_vm *kv = in->be;
        snprintf(kv->mig_error, sizeof kv->mig_error, "the incoming vmx exited: %s",
                 e->exit && e->exit->message ? e->exit->message : "?");
        vmx_unlink(in);
    }
    if (vm && vm->busy && vm->be && e->kind == KVC__VMKD__EVENT_KIND__EVENT_VM_EXITED) {
        /* A migration is out: its progress tells what this exit means. */
        struct kvm_vm *kv = vm->be;
        if (e->exit && e->exit->reason == KVC__VMKD__EXIT_REASON__EXIT_MIGRATED)
            kv->migrated = true;
        else if (!kv->mig_error[0])
            snprintf(kv->mig_error, sizeof kv->mig_error, "vmx exited during the migration: %s",
                     e->exit && e->exit->message ? e->exit->message : "?");
        if (!kv->migrated)
            snprintf(kv->exited_busy, sizeof kv->exited_busy, "vmx exited during an operation: %s",
                     e->exit && e->exit->message ? e->exit->message : "?");
        vmx_unlink(vm);
    }
    if (vm && !vm->busy && e->kind == KVC__VMKD__EVENT_KIND__EVENT_VM_EXITED) {
        const char *why = "vmx exited";
        if (e->exit) {
            switch (e->exit->reason) {
            case KVC__VMKD__EXIT_REASON__EXIT_POWERED_OFF: why = "powered off"; break;
            case KVC__VMKD__EXIT_REASON__EXIT_CRASHED: why = "vmx crashed"; break;
            case KVC__VMKD__EXIT_REASON__EXIT_FAILED_TO_START: why = "failed to start"; break;
            case KVC__VMKD__EXIT_REASON__EXIT_MIGRATED: why = "migrated to another host"; break;
            default: break;
            }
        }
        char lp[PATH_MAX + 16];
        struct kvc_lease_record lr;
        snprintf(lp, sizeof lp, "%s/%s.lck", vm->dir, vm->name);
        if (kvc_lease_read(lp, &lr, NULL, 0) == 0 && lr.held && strcmp(lr.owner, h->uuid))
            why = "its lease was taken over by another host";
        /* A vmx that crashed or was killed could not release its lease. */
        vmstore_lease_release_owned(h, vm);
        set_off(h, vm, why);
    }
    kvc_rpc_reply(call, NULL);
}

static const struct kvc_rpc_method kvm_methods[] = {
    { KVC__VMKD__METHOD__VMKD_EVENT, "VmkdEvent", &kvc__vmkd__vm_event__descriptor,
      NULL, on_vmkd_event },
};

/* What runs according to vmkd, applied to the registry. */
static void
apply_list(struct hostd_host *h, const Kvc__Vmkd__VmList *l, bool announce)
{
    for (struct hostd_vm *vm = h->vms; vm; vm = vm->next) {
        bool running = false;
        if (vm->busy)
            continue;
        for (size_t i = 0; l && i < l->n_vms; i++)
            if (!strcasecmp(l->vms[i]->vm_id, vm->uuid)) {
                running = true;
                vmx_link_info(h, vm, l->vms[i]);
            }
        if (running && vm->power != VM_ON) {
            vm->power = VM_ON;
            kvc_info("%s: VM %s is running under vmkd", h->name, vm->name);
            if (announce)
                hostd_vm_changed(h, vm, false);
        } else if (!running && has_suspend_file(vm)) {
            if (vm->power != VM_SUSPENDED) {
                vm->power = VM_SUSPENDED;
                vm->tools_running = false;
                vmx_unlink(vm);
                if (announce)
                    hostd_vm_changed(h, vm, false);
            }
        } else if (!running && vm->power != VM_OFF) {
            if (announce)
                set_off(h, vm, "not running under vmkd");
            else
                vm->power = VM_OFF;
        }
    }
}

static void
on_list_reply(int status, const char *error, const ProtobufCMessage *resp, void *arg)
{
    if (status == KVC_RPC_OK)
        apply_list(arg, (const Kvc__Vmkd__VmList *)resp, true);
}

static void
on_subscribed(int status, const char *error, const ProtobufCMessage *resp, void *arg)
{
    struct hostd_host *h = arg;
    struct kvm_host *k = h->be_priv;
    Kvc__Vmkd__ListRequest lr = KVC__VMKD__LIST_REQUEST__INIT;

    if (status) {
        kvc_warn("%s: vmkd subscribe: %s", h->name, error);
        return;
    }
    /* Events flow now; a List closes the gap before the subscription. */
    kvc_rpc_client_call(k->cl, KVC__VMKD__METHOD__VMKD_LIST, &lr.base,
                        &kvc__vmkd__vm_list__descriptor, KVM_CALL_MS, on_list_reply, h);
}

static void
on_connect(struct kvc_rpc_conn *conn, void *arg)
{
    struct hostd_host *h = arg;
    struct kvm_host *k = h->be_priv;
    Kvc__Vmkd__SubscribeRequest sr = KVC__VMKD__SUBSCRIBE_REQUEST__INIT;

    if (!k)
        return;                 /* the first connect, during init: init subscribes */
    kvc_info("%s: connected to vmkd", h->name);
    kvc_rpc_conn_call(conn, KVC__VMKD__METHOD__VMKD_SUBSCRIBE, &sr.base,
                      &kvc__vmkd__subscribe_reply__descriptor, KVM_CALL_MS, on_subscribed, h);
    hostd_pools_kvm_resync(h);  /* a restarted vmkd gets the pool tree again */
}

static void
on_disconnect(struct kvc_rpc_conn *conn, const char *reason, void *arg)
{
    struct hostd_host *h = arg;
    kvc_warn("%s: lost vmkd (%s); its VMs keep running, reconnecting", h->name, reason);
}

/* ---- usage (stats) ------------------------------------------------------*/

static void
on_usage(int status, const char *error, const ProtobufCMessage *resp, void *arg)
{
    struct hostd_host *h = arg;
    struct kvm_host *k = h->be_priv;
    const Kvc__Vmkd__VmUsage *u = (const Kvc__Vmkd__VmUsage *)resp;
    int64_t now = hostd_now_ms(), dt = now - k->usage_ms;

    if (status)
        return;
    for (size_t i = 0; i < u->n_vms; i++) {
        struct hostd_vm *vm = hostd_vm_find(h, u->vms[i]->vm_id);
        struct kvm_vm *kv = vm ? vm->be : NULL;
        if (!kv)
            continue;
        if (k->usage_ms && dt > 0 && u->vms[i]->cpu_ns >= kv->cpu_ns) {
            /* ns of CPU per ms of wall time = millionths of one CPU. */
            double cpus = (double)(u->vms[i]->cpu_ns - kv->cpu_ns) / 1e6 / (double)dt;
            kv->cpu_mhz = (uint32_t)(cpus * h->hw.mhz);
            kv->cpu_permille = vm->cpu_count
                ? (uint32_t)(cpus * 1000 / vm->cpu_count) : 0;
        }
        kv->cpu_ns = u->vms[i]->cpu_ns;
        kv->mem_bytes = u->vms[i]->mem_bytes;
    }
    k->usage_ms = now;
}

static void
usage_tick(evutil_socket_t fd, short what, void *arg)
{
    struct hostd_host *h = arg;
    struct kvm_host *k = h->be_priv;
    Kvc__Vmkd__UsageRequest ur = KVC__VMKD__USAGE_REQUEST__INIT;

    kvc_rpc_client_call(k->cl, KVC__VMKD__METHOD__VMKD_USAGE, &ur.base,
                        &kvc__vmkd__vm_usage__descriptor, KVM_USAGE_MS, on_usage, h);
}

/* ---- vmx: tools state ---------------------------------------------------*/

struct vmx_ctx {
    struct hostd_host *h;
    char uuid[HOSTD_UUID_LEN];
};

/* Connects VM to its vmx control socket SOCK (NULL or "" : nothing to do);
 * a different socket than before (vmx restarted) replaces the connection. */
static void
vmx_link(struct hostd_host *h, struct hostd_vm *vm, const char *sock)
{
    struct kvm_vm *kv = vm->be;
    struct kvc_rpc_opts ro = { .reconnect = true, .backoff_max_ms = 1000 };

    if (!kv || !sock || !*sock)
        return;
    if (kv->vmx && kv->vmx_socket && !strcmp(kv->vmx_socket, sock))
        return;
    vmx_unlink(vm);
    kv->exited_busy[0] = '\0';         /* a new vmx runs it */
    if (!(kv->vmx_socket = strdup(sock)))
        return;
    if (kvc_rpc_client_new_unix(h->d->base, sock, &ro, &kv->vmx)) {
        kvc_warn("%s: VM %s: cannot reach vmx at %s", h->name, vm->name, sock);
        kv->vmx = NULL;
    }
}

/* Connected to vmx now: calls that need it fail at once otherwise, rather
 * than waiting out a call timeout while the VM is busy. */
static bool
vmx_up(const struct kvm_vm *kv)
{
    return kv && kv->vmx && kvc_rpc_client_conn(kv->vmx);
}

static void
vmx_unlink(struct hostd_vm *vm)
{
    struct kvm_vm *kv = vm->be;
    struct kvc_rpc_client *cl;

    if (!kv)
        return;
    cl = kv->vmx;
    kv->vmx = NULL;
    kvc_rpc_client_free(cl);            /* calls out complete now, with an error */
    kv->stats_out = false;
    kv->pid = 0;
    free(kv->vmx_socket);
    kv->vmx_socket = NULL;
}

/* vmx_link with what vmkd says of the vmx (its pid too). */
static void
vmx_link_info(struct hostd_host *h, struct hostd_vm *vm, const Kvc__Vmkd__VmInfo *vi)
{
    struct kvm_vm *kv = vm->be;

    vmx_link(h, vm, vi->control_socket);
    if (kv && kv->vmx)
        kv->pid = vi->pid;
}

static int
kvm_vm_pid(struct hostd_host *h, const struct hostd_vm *vm)
{
    const struct kvm_vm *kv = vm->be;

    (void)h;
    return kv && kv->vmx ? kv->pid : 0;
}

static void
on_vmx_stats(int status, const char *error, const ProtobufCMessage *resp, void *arg)
{
    struct vmx_ctx *c = arg;
    struct hostd_vm *vm = hostd_vm_find(c->h, c->uuid);
    struct kvm_vm *kv = vm ? vm->be : NULL;
    const Kvc__Vmx__Stats *st = (const Kvc__Vmx__Stats *)resp;
    bool tools;

    if (kv)
        kv->stats_out = false;
    if (!kv || status || vm->power != VM_ON || vm->busy) {
        free(c);
        return;
    }
    tools = st->tools && st->tools->heartbeats > 0 && !st->tools->heartbeat_lost &&
            st->state == KVC__VMX__RUN_STATE__RUNNING;
    if (tools != vm->tools_running) {
        kvc_info("%s: VM %s: tools %s (heartbeat age %lld ms)", c->h->name, vm->name,
                 tools ? "running" : "not running",
                 st->tools ? (long long)st->tools->heartbeat_age_ms : -1LL);
        vm->tools_running = tools;
        hostd_vm_changed(c->h, vm, false);
    }
    free(c);
}

static void
tools_tick(evutil_socket_t fd, short what, void *arg)
{
    struct hostd_host *h = arg;
    Kvc__Vmx__StatsRequest sr = KVC__VMX__STATS_REQUEST__INIT;

    for (struct hostd_vm *vm = h->vms; vm; vm = vm->next) {
        struct kvm_vm *kv = vm->be;
        struct vmx_ctx *c;
        if (kv && kv->exited_busy[0] && !vm->busy && !kv->vmx && !kv->migrated) {
            char why[sizeof kv->exited_busy];
            snprintf(why, sizeof why, "%s", kv->exited_busy);
            kv->exited_busy[0] = '\0';
            if (vm->power == VM_ON) {
                vmstore_lease_release_owned(h, vm);
                set_off(h, vm, why);
            }
            continue;
        }
        if (!kv || !kv->vmx || kv->stats_out || vm->power != VM_ON)
            continue;
        if (!(c = calloc(1, sizeof *c)))
            return;
        c->h = h;
        snprintf(c->uuid, sizeof c->uuid, "%s", vm->uuid);
        kv->stats_out = true;
        if (kvc_rpc_client_call(kv->vmx, KVC__VMX__METHOD__VMX_STATS, &sr.base,
                                &kvc__vmx__stats__descriptor, KVM_TOOLS_MS * 3,
                                on_vmx_stats, c)) {
            kv->stats_out = false;
            free(c);
        }
    }
}

/* ---- ops ----------------------------------------------------------------*/

static int
kvm_vm_attach(struct hostd_host *h, struct hostd_vm *vm)
{
    return (vm->be = calloc(1, sizeof(struct kvm_vm))) ? 0 : -ENOMEM;
}

static void
kvm_vm_detach(struct hostd_host *h, struct hostd_vm *vm)
{
    char path[PATH_MAX + 16];

    snprintf(path, sizeof path, "%s/%s.vmx-run", vm->dir, vm->name);
    unlink(path);
    vmx_unlink(vm);
    free(vm->be);
    vm->be = NULL;
}

static int
kvm_init(struct hostd_host *h, void **priv)
{
    const struct hostd_options *o = &h->d->opt;
    struct kvm_host *k = calloc(1, sizeof *k);
    struct kvc_rpc_opts ro = {
        .methods = kvm_methods,
        .n_methods = KVC_ARRAY_SIZE(kvm_methods),
        .handler_arg = h,
        .on_connect = on_connect,
        .on_disconnect = on_disconnect,
        .cb_arg = h,
        .reconnect = true,
        .backoff_max_ms = 2000,
    };
    Kvc__Vmkd__ListRequest lr = KVC__VMKD__LIST_REQUEST__INIT;
    Kvc__Vmkd__SubscribeRequest sr = KVC__VMKD__SUBSCRIBE_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    char *err = NULL;
    struct timeval tv = { KVM_USAGE_MS / 1000, (KVM_USAGE_MS % 1000) * 1000 };
    int rc, st;

    if (!k)
        return -ENOMEM;
    k->h = h;
    if (access(o->guest_image, R_OK) < 0)
        kvc_warn("%s: guest image %s: %s (power-on will fail)", h->name,
                 o->guest_image, strerror(errno));
    if ((rc = kvc_rpc_client_new_unix(h->d->base, o->vmkd_socket, &ro, &k->cl))) {
        free(k);
        return rc;
    }
    /* Before the loop runs: learn what is already running, synchronously,
     * so the first inventory vpxd sees is right. */
    st = kvc_rpc_call_sync(k->cl, KVC__VMKD__METHOD__VMKD_LIST, &lr.base,
                           &kvc__vmkd__vm_list__descriptor, 10000, &resp, &err);
    if (st) {
        kvc_err("%s: vmkd at %s: %s", h->name, o->vmkd_socket, err ? err : "no answer");
        free(err);
        kvc_rpc_client_free(k->cl);
        free(k);
        return -ECONNREFUSED;
    }
    for (struct hostd_vm *vm = h->vms; vm; vm = vm->next)
        if ((rc = kvm_vm_attach(h, vm)))
            goto fail;
    apply_list(h, (const Kvc__Vmkd__VmList *)resp, false);
    protobuf_c_message_free_unpacked(resp, NULL);
    resp = NULL;
    st = kvc_rpc_call_sync(k->cl, KVC__VMKD__METHOD__VMKD_SUBSCRIBE, &sr.base,
                           &kvc__vmkd__subscribe_reply__descriptor, 10000, &resp, &err);
    if (st) {
        kvc_err("%s: vmkd subscribe: %s", h->name, err ? err : "no answer");
        free(err);
        rc = -EIO;
        goto fail;
    }
    protobuf_c_message_free_unpacked(resp, NULL);
    /* The host's vSwitches live in vmkd (hostd/vswitch.c). */
    if ((rc = hostd_vswitch_kvm_sync(h, k->cl)))
        goto fail;
    if (!(k->usage_ev = event_new(h->d->base, -1, EV_PERSIST, usage_tick, h))) {
        rc = -ENOMEM;
        goto fail;
    }
    event_add(k->usage_ev, &tv);
    if (!(k->tools_ev = event_new(h->d->base, -1, EV_PERSIST, tools_tick, h))) {
        rc = -ENOMEM;
        goto fail;
    }
    tv = (struct timeval){ KVM_TOOLS_MS / 1000, (KVM_TOOLS_MS % 1000) * 1000 };
    event_add(k->tools_ev, &tv);
    kvc_info("%s: kvm backend on vmkd %s", h->name, o->vmkd_socket);
    *priv = k;
    /* A storage move hostd was running when it stopped is finished or
     * undone now, before anyone sees the VM (svmotion.c). */
    hostd_svmotion_recover(h);
    return 0;
fail:
    for (struct hostd_vm *vm = h->vms; vm; vm = vm->next) {
        vmx_unlink(vm);
        free(vm->be);
        vm->be = NULL;
    }
    if (k->usage_ev)
        event_free(k->usage_ev);
    kvc_rpc_client_free(k->cl);
    free(k);
    return rc;
}

struct kvc_rpc_client *
hostd_kvm_vmkd(struct hostd_host *h)
{
    struct kvm_host *k = h->be == &hostd_backend_kvm ? h->be_priv : NULL;
    return k ? k->cl : NULL;
}

static void
kvm_fini(struct hostd_host *h, void *priv)
{
    struct kvm_host *k = priv;

    /* Calls still out are cancelled (their callbacks run now); the VMs keep
     * running under vmkd. */
    kvc_rpc_client_free(k->cl);
    if (k->usage_ev)
        event_free(k->usage_ev);
    if (k->tools_ev)
        event_free(k->tools_ev);
    for (struct hostd_vm *vm = h->vms; vm; vm = vm->next) {
        vmx_unlink(vm);
        free(vm->be);
        vm->be = NULL;
    }
    free(k);
}

struct op {
    struct hostd_host *h;
    struct hostd_vm *vm;
    Kvc__Host__PowerOp op;
    hostd_be_done_fn done;
    void *ctx;
    bool resume;                /* power-on from the suspend file */
    char *restore;              /* power-on from this state file (a snapshot) */
};

static void power_on_step(struct op *o);

static void
finish(struct op *o, int err, const char *msg)
{
    o->done(o->h, o->vm, err, msg, o->ctx);
    free(o->restore);
    free(o);
}

static void
on_power_on(int status, const char *error, const ProtobufCMessage *resp, void *arg)
{
    struct op *o = arg;

    if (status) {
        /* A vmx that did not start leaves the lease free again; one that
         * refused it (live on another host) says so. */
        vmstore_lease_release_owned(o->h, o->vm);
        finish(o, error && strstr(error, "its lease") ? -EBUSY : vmkd_errno(status), error);
        return;
    }
    o->vm->power = VM_ON;
    o->vm->tools_running = false;
    vmx_link_info(o->h, o->vm, (const Kvc__Vmkd__VmInfo *)resp);
    if (o->resume) {
        char p[PATH_MAX + 16];
        /* Running from it now: a later power-on boots afresh. */
        if (!suspend_path(o->vm, p, sizeof p) && unlink(p) < 0)
            kvc_warn("%s: VM %s: remove %s: %s", o->h->name, o->vm->name, p, strerror(errno));
        kvc_info("%s: VM %s resumed", o->h->name, o->vm->name);
    }
    finish(o, 0, NULL);
}

static void
on_power_off(int status, const char *error, const ProtobufCMessage *resp, void *arg)
{
    struct op *o = arg;

    /* Not found: it was not running after all; either way it is off now. */
    if (status && status != KVC_RPC_E_NOT_FOUND) {
        finish(o, vmkd_errno(status), error);
        return;
    }
    if (o->vm->power == VM_SUSPENDED) {
        char p[PATH_MAX + 16];
        /* Powering off a suspended VM discards its suspended state. */
        if (!suspend_path(o->vm, p, sizeof p) && unlink(p) < 0 && errno != ENOENT)
            kvc_warn("%s: VM %s: remove %s: %s", o->h->name, o->vm->name, p, strerror(errno));
    }
    o->vm->power = VM_OFF;
    o->vm->tools_running = false;
    vmx_unlink(o->vm);
    vmstore_lease_release_owned(o->h, o->vm);     /* a killed vmx could not */
    if (o->op == KVC__HOST__POWER_OP__POWER_RESET ||
        o->op == KVC__HOST__POWER_OP__GUEST_REBOOT) {
        power_on_step(o);
        return;
    }
    finish(o, 0, NULL);
}

static void
power_on_step(struct op *o)
{
    struct kvm_host *k = o->h->be_priv;
    Kvc__Vmkd__PowerOnRequest r = KVC__VMKD__POWER_ON_REQUEST__INIT;
    char cfg[PATH_MAX + 32], logp[PATH_MAX + 16], vmss[PATH_MAX + 16];
    int rc;

    /* This host takes the lease first (with its memory of what the lease
     * looked like, so an expired one can be taken over); vmx, the same
     * owner, then takes it from us and renews it. */
    struct kvc_lease *lease = NULL;
    char why[PATH_MAX + 512];
    if ((rc = vmstore_lease_acquire(o->h, o->vm, false, &lease, why, sizeof why))) {
        finish(o, rc, why);
        return;
    }
    kvc_lease_free(lease);
    if ((rc = write_run_config(o->h, o->vm, cfg, sizeof cfg))) {
        finish(o, rc, "cannot write the VM's runtime config");
        return;
    }
    snprintf(logp, sizeof logp, "%s/vmware.log", o->vm->dir);
    r.vm_id = o->vm->uuid;
    r.config_path = cfg;
    r.log_path = logp;
    if (o->restore) {
        r.restore_path = o->restore;
    } else if (o->resume) {
        if ((rc = suspend_path(o->vm, vmss, sizeof vmss))) {
            finish(o, rc, "suspend file path too long");
            return;
        }
        r.restore_path = vmss;
    }
    r.vcpus = o->vm->cpu_count;
    Kvc__Vmkd__Nic nic = KVC__VMKD__NIC__INIT, *nicp = &nic;
    char mac[24];
    if (has_nic(o->vm)) {
        vm_mac(o->vm, mac, sizeof mac);
        nic.portgroup = o->vm->network;
        nic.mac = mac;
        r.n_nics = 1;
        r.nics = &nicp;
    }
    rc = kvc_rpc_client_call(k->cl, KVC__VMKD__METHOD__VMKD_POWER_ON, &r.base,
                             &kvc__vmkd__vm_info__descriptor, KVM_CALL_MS, on_power_on, o);
    if (rc)
        finish(o, rc, "vmkd is not reachable");
}

/* Suspend: vmx wrote the suspend file and powers off (vmkd reports its exit,
 * which leaves the VM suspended). */
static void
on_suspended(int status, const char *error, const ProtobufCMessage *resp, void *arg)
{
    struct op *o = arg;

    if (status) {
        finish(o, vmkd_errno(status), error);
        return;
    }
    o->vm->power = VM_SUSPENDED;
    o->vm->tools_running = false;
    kvc_info("%s: VM %s suspended to %s", o->h->name, o->vm->name,
             ((const Kvc__Vmx__SnapshotReply *)resp)->path);
    finish(o, 0, NULL);
}

/* A guest shutdown or reboot asked of the guest through vmx: the guest
 * answers by powering off (vmkd then reports the exit) or rebooting in
 * place. */
static void
on_guest_op(int status, const char *error, const ProtobufCMessage *resp, void *arg)
{
    struct op *o = arg;

    if (status) {
        finish(o, status == KVC_RPC_E_CONFLICT ? -EBUSY : vmkd_errno(status), error);
        return;
    }
    if (o->op == KVC__HOST__POWER_OP__GUEST_REBOOT)
        o->vm->tools_running = false;       /* until the rebooted guest beats */
    finish(o, 0, NULL);
}

static void
kvm_power_async(struct hostd_host *h, struct hostd_vm *vm, Kvc__Host__PowerOp op,
                hostd_be_done_fn done, void *ctx)
{
    struct kvm_host *k = h->be_priv;
    Kvc__Vmkd__PowerOffRequest off = KVC__VMKD__POWER_OFF_REQUEST__INIT;
    struct op *o = calloc(1, sizeof *o);
    int rc;

    if (!o) {
        done(h, vm, -ENOMEM, NULL, ctx);
        return;
    }
    *o = (struct op){ h, vm, op, done, ctx };
    switch (op) {
    case KVC__HOST__POWER_OP__POWER_ON:
    case KVC__HOST__POWER_OP__POWER_RESUME:
        o->resume = vm->power == VM_SUSPENDED;
        if (o->resume && !has_suspend_file(vm)) {
            finish(o, -ENOENT, "the VM's suspend file is missing");
            return;
        }
        power_on_step(o);
        return;
    case KVC__HOST__POWER_OP__POWER_SUSPEND: {
        struct kvm_vm *kv = vm->be;
        Kvc__Vmx__SnapshotRequest sr = KVC__VMX__SNAPSHOT_REQUEST__INIT;
        char vmss[PATH_MAX + 16];
        if (!vmx_up(kv)) {
            finish(o, -ENOTCONN, "the VM's vmx is not reachable on its control socket");
            return;
        }
        if ((rc = suspend_path(vm, vmss, sizeof vmss))) {
            finish(o, rc, "suspend file path too long");
            return;
        }
        sr.path = vmss;
        sr.power_off = true;
        rc = kvc_rpc_client_call(kv->vmx, KVC__VMX__METHOD__VMX_SNAPSHOT, &sr.base,
                                 &kvc__vmx__snapshot_reply__descriptor, KVM_CALL_MS,
                                 on_suspended, o);
        if (rc)
            finish(o, rc, "vmx is not reachable");
        return;
    }
    case KVC__HOST__POWER_OP__GUEST_SHUTDOWN:
    case KVC__HOST__POWER_OP__GUEST_REBOOT: {
        struct kvm_vm *kv = vm->be;
        Kvc__Vmx__PowerRequest pr = KVC__VMX__POWER_REQUEST__INIT;
        if (vmx_up(kv)) {
            rc = kvc_rpc_client_call(kv->vmx, op == KVC__HOST__POWER_OP__GUEST_SHUTDOWN
                                     ? KVC__VMX__METHOD__VMX_GUEST_SHUTDOWN
                                     : KVC__VMX__METHOD__VMX_GUEST_REBOOT, &pr.base,
                                     &kvc__vmx__state_reply__descriptor, KVM_CALL_MS,
                                     on_guest_op, o);
            if (!rc)
                return;
        }
        /* No vmx connection: let vmkd stop vmx (SIGTERM first). */
    }
        /* fall through */
    case KVC__HOST__POWER_OP__POWER_OFF:
    case KVC__HOST__POWER_OP__POWER_RESET:
        off.vm_id = vm->uuid;
        /* Hard power-off and reset kill at once; the guest ops let vmx stop
         * the guest (SIGTERM first). */
        off.force = op == KVC__HOST__POWER_OP__POWER_OFF ||
                    op == KVC__HOST__POWER_OP__POWER_RESET;
        rc = kvc_rpc_client_call(k->cl, KVC__VMKD__METHOD__VMKD_POWER_OFF, &off.base,
                                 &kvc__vmkd__vm_exit__descriptor, KVM_CALL_MS,
                                 on_power_off, o);
        if (rc)
            finish(o, rc, "vmkd is not reachable");
        return;
    default:
        finish(o, -ENOTSUP, "unknown power operation");
        return;
    }
}

/* kvm.h: for kvm_snapshot.c (a revert to a snapshot with memory). */
void
hostd_kvm_power_on_restore(struct hostd_host *h, struct hostd_vm *vm, const char *restore,
                           hostd_be_done_fn done, void *ctx)
{
    struct op *o = calloc(1, sizeof *o);

    if (!o || !(o->restore = strdup(restore))) {
        free(o);
        done(h, vm, -ENOMEM, NULL, ctx);
        return;
    }
    o->h = h;
    o->vm = vm;
    o->op = KVC__HOST__POWER_OP__POWER_ON;
    o->done = done;
    o->ctx = ctx;
    power_on_step(o);
}

struct kvc_rpc_client *
hostd_kvm_vmx(struct hostd_vm *vm)
{
    return vmx_up(vm->be) ? ((struct kvm_vm *)vm->be)->vmx : NULL;
}

/* ---- serial console: vmx's ring and UART, through its control socket ----*/

struct con_op {
    hostd_console_fn done;
    void *ctx;
};

static void
on_console_read(int status, const char *error, const ProtobufCMessage *resp, void *arg)
{
    struct con_op *c = arg;
    const Kvc__Vmx__ConsoleData *d = (const Kvc__Vmx__ConsoleData *)resp;

    if (status)
        c->done(status == KVC_RPC_E_CONFLICT ? -EBUSY : -ENOTCONN, error, NULL, 0, 0, 0, c->ctx);
    else
        c->done(0, NULL, d->data.data, d->data.len, d->next_offset, d->total, c->ctx);
    free(c);
}

static void
on_console_write(int status, const char *error, const ProtobufCMessage *resp, void *arg)
{
    struct con_op *c = arg;
    const Kvc__Vmx__ConsoleWriteReply *w = (const Kvc__Vmx__ConsoleWriteReply *)resp;

    if (status)
        c->done(status == KVC_RPC_E_CONFLICT ? -EBUSY : -ENOTCONN, error, NULL, 0, 0, 0, c->ctx);
    else
        c->done(0, NULL, NULL, 0, w->accepted, 0, c->ctx);
    free(c);
}

static struct con_op *
console_op(struct hostd_vm *vm, hostd_console_fn done, void *ctx)
{
    struct kvm_vm *kv = vm->be;
    struct con_op *c;

    if (!vmx_up(kv)) {
        done(-ENOTCONN, "the VM's vmx is not reachable", NULL, 0, 0, 0, ctx);
        return NULL;
    }
    if (!(c = calloc(1, sizeof *c))) {
        done(-ENOMEM, "out of memory", NULL, 0, 0, 0, ctx);
        return NULL;
    }
    c->done = done;
    c->ctx = ctx;
    return c;
}

static void
kvm_console_read(struct hostd_host *h, struct hostd_vm *vm, uint64_t offset, uint32_t max,
                 hostd_console_fn done, void *ctx)
{
    Kvc__Vmx__ConsoleReadRequest r = KVC__VMX__CONSOLE_READ_REQUEST__INIT;
    struct con_op *c = console_op(vm, done, ctx);

    if (!c)
        return;
    r.offset = offset;
    r.max_bytes = max;
    if (kvc_rpc_client_call(((struct kvm_vm *)vm->be)->vmx, KVC__VMX__METHOD__VMX_CONSOLE_READ,
                            &r.base, &kvc__vmx__console_data__descriptor, KVM_CALL_MS,
                            on_console_read, c)) {
        free(c);
        done(-ENOTCONN, "the VM's vmx is not reachable", NULL, 0, 0, 0, ctx);
    }
}

static void
kvm_console_write(struct hostd_host *h, struct hostd_vm *vm, const void *data, size_t len,
                  hostd_console_fn done, void *ctx)
{
    Kvc__Vmx__ConsoleWriteRequest r = KVC__VMX__CONSOLE_WRITE_REQUEST__INIT;
    struct con_op *c = console_op(vm, done, ctx);

    if (!c)
        return;
    r.data.data = (uint8_t *)data;
    r.data.len = len;
    if (kvc_rpc_client_call(((struct kvm_vm *)vm->be)->vmx, KVC__VMX__METHOD__VMX_CONSOLE_WRITE,
                            &r.base, &kvc__vmx__console_write_reply__descriptor, KVM_CALL_MS,
                            on_console_write, c)) {
        free(c);
        done(-ENOTCONN, "the VM's vmx is not reachable", NULL, 0, 0, 0, ctx);
    }
}

/* ---- live migration: vmx to vmx (docs/vmx.md "Live migration") ---------- */

struct mig_listen {
    struct hostd_host *h;
    char uuid[HOSTD_UUID_LEN];
    hostd_mig_listen_fn done;
    void *ctx;
};

static void
on_incoming(int status, const char *error, const ProtobufCMessage *resp, void *arg)
{
    struct mig_listen *c = arg;
    const Kvc__Vmkd__VmInfo *vi = (const Kvc__Vmkd__VmInfo *)resp;
    /* The VM is not in the registry yet: the migration holds it, and its
     * uuid is the vmkd id; the control socket is linked at migrate_in. */
    if (status)
        c->done(vmkd_errno(status), error, NULL, c->ctx);
    else if (!vi->incoming_listen || !vi->incoming_listen[0])
        c->done(-EPROTO, "vmkd did not say where the incoming vmx listens", NULL, c->ctx);
    else {
        struct hostd_vm *vm = hostd_migrate_incoming_vm(c->h, c->uuid);
        if (vm)
            vmx_link_info(c->h, vm, vi);
        c->done(0, NULL, vi->incoming_listen, c->ctx);
    }
    free(c);
}

static void
kvm_migrate_listen(struct hostd_host *h, struct hostd_vm *vm, const char *peer, bool with_disk,
                   bool own_folder, hostd_mig_listen_fn done, void *ctx)
{
    struct kvm_host *k = h->be_priv;
    Kvc__Vmkd__PowerOnRequest r = KVC__VMKD__POWER_ON_REQUEST__INIT;
    char cfg[PATH_MAX + 32], logp[PATH_MAX + 16], in[160];
    struct mig_listen *c;
    const char *addr = h->d->opt.listen && *h->d->opt.listen ? h->d->opt.listen : "127.0.0.1";
    int rc;

    if ((rc = write_run_config(h, vm, cfg, sizeof cfg))) {
        done(rc, "cannot write the VM's runtime config", NULL, ctx);
        return;
    }
    if (!(c = calloc(1, sizeof *c))) {
        done(-ENOMEM, NULL, NULL, ctx);
        return;
    }
    *c = (struct mig_listen){ .h = h, .done = done, .ctx = ctx };
    snprintf(c->uuid, sizeof c->uuid, "%s", vm->uuid);
    snprintf(logp, sizeof logp, "%s/vmware.log", vm->dir);
    snprintf(in, sizeof in, "tcp:%s:0", addr);
    r.vm_id = vm->uuid;
    r.config_path = cfg;
    r.log_path = logp;
    r.vcpus = vm->cpu_count;
    r.incoming = in;
    r.incoming_disk = with_disk;        /* vmx --incoming-disk: the stream brings the disk */
    r.incoming_own_lease = own_folder;  /* --incoming-own-lease: not the source's folder */
    /* The same adapter as on the source: its port is made here. */
    Kvc__Vmkd__Nic nic = KVC__VMKD__NIC__INIT, *nicp = &nic;
    char mac[24];
    if (has_nic(vm)) {
        vm_mac(vm, mac, sizeof mac);
        nic.portgroup = vm->network;
        nic.mac = mac;
        r.n_nics = 1;
        r.nics = &nicp;
    }
    if (peer && *peer) {
        /* The stream is TLS, this host's identity, the source's pinned. */
        r.incoming_tls_dir = h->state_dir;
        r.incoming_peer = (char *)peer;
    }
    rc = kvc_rpc_client_call(k->cl, KVC__VMKD__METHOD__VMKD_POWER_ON, &r.base,
                             &kvc__vmkd__vm_info__descriptor, KVM_CALL_MS, on_incoming, c);
    if (rc) {
        free(c);
        done(rc, "vmkd is not reachable", NULL, ctx);
    }
}

static void
on_mig_sent(int status, const char *error, const ProtobufCMessage *resp, void *arg)
{
    struct vmx_ctx *c = arg;
    struct hostd_vm *vm = hostd_vm_find(c->h, c->uuid);
    struct kvm_vm *kv = vm ? vm->be : NULL;

    if (status && kv && !kv->mig_error[0] && !kv->migrated)
        snprintf(kv->mig_error, sizeof kv->mig_error, "vmx refused the migration: %s",
                 error ? error : "?");
    free(c);
}

static int
kvm_migrate_send(struct hostd_host *h, struct hostd_vm *vm, const char *listen,
                 const char *dest_thumbprint, uint32_t downtime_ms, uint64_t bw,
                 bool with_disk, char *err, size_t errlen)
{
    struct kvm_vm *kv = vm->be;
    Kvc__Vmx__MigrateSendRequest r = KVC__VMX__MIGRATE_SEND_REQUEST__INIT;
    struct vmx_ctx *c;

    if (!listen || !*listen) {
        snprintf(err, errlen, "the destination gave no stream address");
        return -EINVAL;
    }
    if (!vmx_up(kv)) {
        snprintf(err, errlen, "the VM's vmx is not reachable on its control socket");
        return -ENOTCONN;
    }
    if (!(c = calloc(1, sizeof *c)))
        return -ENOMEM;
    c->h = h;
    snprintf(c->uuid, sizeof c->uuid, "%s", vm->uuid);
    kv->migrated = false;
    kv->mig_error[0] = '\0';
    r.to = (char *)listen;
    r.downtime_ms = downtime_ms;
    r.max_bandwidth = bw;
    r.with_disk = with_disk;
    if (dest_thumbprint && *dest_thumbprint) {
        r.tls_dir = h->state_dir;
        r.peer_thumbprint = (char *)dest_thumbprint;
    }
    if (kvc_rpc_client_call(kv->vmx, KVC__VMX__METHOD__VMX_MIGRATE_SEND, &r.base,
                            &kvc__vmx__migrate_status__descriptor, KVM_CALL_MS, on_mig_sent, c)) {
        free(c);
        snprintf(err, errlen, "the VM's vmx is not reachable on its control socket");
        return -ENOTCONN;
    }
    return 0;
}

struct mig_poll {
    struct hostd_host *h;
    char uuid[HOSTD_UUID_LEN];
    hostd_mig_progress_fn done;
    void *ctx;
};

static void
progress_from(struct hostd_vm *vm, const Kvc__Vmx__MigrateStatus *s,
              struct hostd_mig_progress *p)
{
    struct kvm_vm *kv = vm ? vm->be : NULL;

    memset(p, 0, sizeof *p);
    p->total = vm ? vm->memory_mib << 20 : 0;
    if (kv && kv->migrated) {
        p->phase = HOSTD_MIG_COMPLETED;
        p->percent = 100;
        p->sent = p->total;
        return;
    }
    if (kv && kv->mig_error[0]) {
        p->phase = HOSTD_MIG_FAILED;
        snprintf(p->error, sizeof p->error, "%s", kv->mig_error);
        return;
    }
    p->phase = HOSTD_MIG_COPYING;
    if (!s)
        return;
    switch (s->phase) {
    case KVC__VMX__MIGRATE_PHASE__MIGRATE_STOPCOPY:
    case KVC__VMX__MIGRATE_PHASE__MIGRATE_COMMIT:
        p->phase = HOSTD_MIG_STOPPED;
        break;
    case KVC__VMX__MIGRATE_PHASE__MIGRATE_COMPLETED:
        p->phase = HOSTD_MIG_COMPLETED;
        break;
    case KVC__VMX__MIGRATE_PHASE__MIGRATE_FAILED:
    case KVC__VMX__MIGRATE_PHASE__MIGRATE_CANCELLED:
        p->phase = HOSTD_MIG_FAILED;
        snprintf(p->error, sizeof p->error, "%s", s->error && *s->error ? s->error
                 : "the migration was aborted");
        break;
    default:
        break;
    }
    p->percent = s->percent > 100 ? 100 : s->percent;
    p->round = s->round;
    p->sent = s->transferred_bytes;
    if (s->ram_bytes)
        p->total = s->ram_bytes;
    p->downtime_ms = (int64_t)(s->downtime_ms ? s->downtime_ms : s->expected_downtime_ms);
    p->total_ms = (int64_t)s->total_ms;
    p->disk_total = s->disk_total_bytes;
    p->disk_sent = s->disk_sent_bytes;
}

static void
on_mig_status(int status, const char *error, const ProtobufCMessage *resp, void *arg)
{
    struct mig_poll *c = arg;
    struct hostd_vm *vm = hostd_vm_find(c->h, c->uuid);
    struct hostd_mig_progress p;

    /* An error here is vmx gone: its exit (vmkd's event) says how. */
    progress_from(vm, status ? NULL : (const Kvc__Vmx__MigrateStatus *)resp, &p);
    c->done(&p, c->ctx);
    free(c);
}

static void
kvm_migrate_progress(struct hostd_host *h, struct hostd_vm *vm, hostd_mig_progress_fn done,
                     void *ctx)
{
    struct kvm_vm *kv = vm->be;
    Kvc__Vmx__MigrateStatusRequest r = KVC__VMX__MIGRATE_STATUS_REQUEST__INIT;
    struct mig_poll *c;
    struct hostd_mig_progress p;

    if (!vmx_up(kv) || !(c = calloc(1, sizeof *c))) {
        progress_from(vm, NULL, &p);
        done(&p, ctx);
        return;
    }
    *c = (struct mig_poll){ .h = h, .done = done, .ctx = ctx };
    snprintf(c->uuid, sizeof c->uuid, "%s", vm->uuid);
    if (kvc_rpc_client_call(kv->vmx, KVC__VMX__METHOD__VMX_MIGRATE_STATUS, &r.base,
                            &kvc__vmx__migrate_status__descriptor, 5000, on_mig_status, c)) {
        free(c);
        progress_from(vm, NULL, &p);
        done(&p, ctx);
    }
}

static void
on_ignored(int status, const char *error, const ProtobufCMessage *resp, void *arg)
{
    if (status && arg)
        kvc_warn("%s: %s", (const char *)arg, error ? error : "failed");
}

static void
kvm_migrate_cancel(struct hostd_host *h, struct hostd_vm *vm, bool incoming)
{
    struct kvm_host *k = h->be_priv;
    struct kvm_vm *kv = vm->be;

    if (incoming) {
        /* The guest never ran here: its incoming vmx just goes. */
        Kvc__Vmkd__PowerOffRequest off = KVC__VMKD__POWER_OFF_REQUEST__INIT;
        off.vm_id = vm->uuid;
        off.force = true;
        vmx_unlink(vm);
        kvc_rpc_client_call(k->cl, KVC__VMKD__METHOD__VMKD_POWER_OFF, &off.base,
                            &kvc__vmkd__vm_exit__descriptor, KVM_CALL_MS, on_ignored,
                            "powering off an incoming vmx");
    } else if (vmx_up(kv)) {
        Kvc__Vmx__MigrateStatusRequest r = KVC__VMX__MIGRATE_STATUS_REQUEST__INIT;
        kvc_rpc_client_call(kv->vmx, KVC__VMX__METHOD__VMX_MIGRATE_CANCEL, &r.base,
                            &kvc__vmx__migrate_status__descriptor, KVM_CALL_MS, on_ignored,
                            NULL);
    }
}

static int
kvm_migrate_in(struct hostd_host *h, struct hostd_vm *vm)
{
    struct kvm_vm *kv = vm->be;

    if (kv && kv->mig_error[0]) {
        kvc_warn("%s: VM %s cannot be taken over: %s", h->name, vm->name, kv->mig_error);
        return -EIO;
    }
    vm->power = VM_ON;
    vm->tools_running = false;          /* until the tools poll hears the guest */
    return 0;
}

static void
kvm_migrate_out(struct hostd_host *h, struct hostd_vm *vm)
{
    /* vmx has gone (migrated); its lease went with the VM. */
    vmx_unlink(vm);
    free(vm->be);
    vm->be = NULL;
}

static void
kvm_migrate_abort(struct hostd_host *h, struct hostd_vm *vm)
{
    struct kvm_vm *kv = vm->be;

    if (kv && kv->migrated) {
        /* Its vmx handed the VM over and exited, and the destination did
         * not take it: nothing runs it here. */
        set_off(h, vm, "it left for its destination, which did not take it over");
        return;
    }
    kvm_migrate_cancel(h, vm, false);
}

/* Control commands (hostd/control.c): "vm UUID|NAME workload W" sets the
 * guest workload of a powered-off VM for its next power-on (idle, cpu:N,
 * mem:R, sine:P, hang, crash, or disk-loop: the test guest's disk write and
 * verify loop on the VM's disk); kept in its config. */
static int
kvm_control(struct hostd_host *h, int argc, char **argv, char *out, size_t len)
{
    struct hostd_vm *vm;
    struct sim_workload w;
    char *nw, *old;
    int rc;

    if (argc != 4 || strcmp(argv[0], "vm") || strcmp(argv[2], "workload"))
        return -ENOENT;
    vm = hostd_vm_find_key(h, argv[1]);
    if (!vm) {
        snprintf(out, len, "ERR no VM %s on %s", argv[1], h->name);
        return -EINVAL;
    }
    if (strcmp(argv[3], "disk-loop") && sim_workload_parse(argv[3], &w)) {
        snprintf(out, len, "ERR vm NAME workload idle|cpu:N|mem:R|sine:P|hang|crash|disk-loop");
        return -EINVAL;
    }
    if (!strcmp(argv[3], "disk-loop") && vm->disk_bytes < 512) {
        snprintf(out, len, "ERR VM %s has no disk", vm->name);
        return -EINVAL;
    }
    if (vm->power != VM_OFF || vm->busy) {
        snprintf(out, len, "ERR VM %s must be powered off (the workload starts at boot)",
                 vm->name);
        return -EBUSY;
    }
    if (!(nw = strdup(argv[3]))) {
        snprintf(out, len, "ERR out of memory");
        return -ENOMEM;
    }
    old = vm->workload;
    vm->workload = nw;
    if ((rc = vmstore_write_config(h, vm))) {
        vm->workload = old;
        free(nw);
        snprintf(out, len, "ERR cannot write %s: %s", vm->config, strerror(-rc));
        return rc;
    }
    free(old);
    hostd_vm_changed(h, vm, false);
    snprintf(out, len, "OK");
    return 0;
}

static int
kvm_vm_stats(struct hostd_host *h, struct hostd_vm *vm, struct hostd_vm_stats *s)
{
    struct kvm_vm *kv = vm->be;

    if (!kv)
        return -ENOENT;
    s->cpu_usage_mhz = kv->cpu_mhz;
    s->cpu_usage_permille = kv->cpu_permille;
    s->mem_consumed_bytes = kv->mem_bytes;
    s->mem_active_bytes = kv->mem_bytes;
    return 0;
}

/* ---- storage migration of a running VM: vmx moves its disk, then its
 * folder (svmotion.c drives it; docs/storage-migration.md) --------------- */

struct svm_call {
    hostd_svm_fn done;
    void *ctx;
};

static bool
has_disk(const struct hostd_vm *vm)
{
    return vm->disk_bytes >= 512;       /* as write_run_config */
}

static int
vmx_errno(int status)
{
    switch (status) {
    case KVC_RPC_E_CONFLICT: return -EBUSY;
    case KVC_RPC_E_INVALID_ARGUMENT: return -EINVAL;
    case KVC_RPC_E_NOT_FOUND: return -ENOENT;
    case KVC_RPC_E_TIMEOUT: return -ETIMEDOUT;
    case KVC_RPC_E_UNAVAILABLE:
    case KVC_RPC_E_DISCONNECTED:
    case KVC_RPC_E_CANCELLED: return -ENOTCONN;
    default: return -EIO;
    }
}

static void
svm_from(const Kvc__Vmx__DiskMoveStatus *s, struct hostd_svm_progress *p)
{
    memset(p, 0, sizeof *p);
    p->percent = s->percent > 100 ? 100 : s->percent;
    p->copied = s->copied_bytes;
    p->total = s->total_bytes;
    switch (s->phase) {
    case KVC__VMX__DISK_MOVE_PHASE__DISK_MOVE_COPYING:
    case KVC__VMX__DISK_MOVE_PHASE__DISK_MOVE_DIRTY:
    case KVC__VMX__DISK_MOVE_PHASE__DISK_MOVE_SWITCHING:
        p->phase = HOSTD_SVM_COPYING;
        break;
    case KVC__VMX__DISK_MOVE_PHASE__DISK_MOVE_COMPLETED:
        p->phase = HOSTD_SVM_COMPLETED;
        break;
    case KVC__VMX__DISK_MOVE_PHASE__DISK_MOVE_CANCELLED:
        p->phase = HOSTD_SVM_CANCELLED;
        snprintf(p->error, sizeof p->error, "%s", s->error && *s->error ? s->error : "cancelled");
        break;
    case KVC__VMX__DISK_MOVE_PHASE__DISK_MOVE_FAILED:
        p->phase = HOSTD_SVM_FAILED;
        snprintf(p->error, sizeof p->error, "%s", s->error && *s->error ? s->error : "failed");
        break;
    default:
        p->phase = HOSTD_SVM_FAILED;
        snprintf(p->error, sizeof p->error, "vmx is not moving the disk (restarted?)");
        break;
    }
}

static void
on_svm_status(int status, const char *error, const ProtobufCMessage *resp, void *arg)
{
    struct svm_call *c = arg;
    struct hostd_svm_progress p;

    if (status) {
        c->done(vmx_errno(status), error ? error : "vmx did not answer", NULL, c->ctx);
    } else {
        svm_from((const Kvc__Vmx__DiskMoveStatus *)resp, &p);
        c->done(0, NULL, &p, c->ctx);
    }
    free(c);
}

static void
on_svm_folder(int status, const char *error, const ProtobufCMessage *resp, void *arg)
{
    struct svm_call *c = arg;
    const Kvc__Vmx__FolderMoveReply *r = (const void *)resp;

    if (!status)
        kvc_info("vmx moved the VM's folder to %s (lease %s, generation %llu)", r->to_dir,
                 r->lease_path, (unsigned long long)r->lease_generation);
    c->done(status ? vmx_errno(status) : 0, status ? (error ? error : "vmx did not answer") : NULL,
            NULL, c->ctx);
    free(c);
}

/* One call to the VM's vmx; DONE at once if it cannot go out. */
static void
svm_call(struct hostd_vm *vm, uint32_t method, const ProtobufCMessage *req,
         const ProtobufCMessageDescriptor *rt, kvc_rpc_reply_fn fn, hostd_svm_fn done, void *ctx)
{
    struct kvm_vm *kv = vm->be;
    struct svm_call *c;

    if (!vmx_up(kv)) {
        done(-ENOTCONN, "the VM's vmx is not reachable on its control socket", NULL, ctx);
        return;
    }
    if (!(c = calloc(1, sizeof *c))) {
        done(-ENOMEM, "out of memory", NULL, ctx);
        return;
    }
    c->done = done;
    c->ctx = ctx;
    if (kvc_rpc_client_call(kv->vmx, method, req, rt, KVM_CALL_MS, fn, c)) {
        free(c);
        done(-ENOTCONN, "the VM's vmx is not reachable on its control socket", NULL, ctx);
    }
}

static void
svm_no_disk(hostd_svm_fn done, void *ctx)
{
    struct hostd_svm_progress p = { .phase = HOSTD_SVM_COMPLETED, .percent = 100 };
    done(0, NULL, &p, ctx);
}

static void
kvm_svm_start(struct hostd_host *h, struct hostd_vm *vm, const char *new_dir, uint64_t bw,
              hostd_svm_fn done, void *ctx)
{
    Kvc__Vmx__DiskMoveRequest r = KVC__VMX__DISK_MOVE_REQUEST__INIT;

    if (!has_disk(vm))
        return svm_no_disk(done, ctx);
    r.dest_dir = (char *)new_dir;
    r.max_bandwidth = bw;
    svm_call(vm, KVC__VMX__METHOD__VMX_DISK_MOVE, &r.base, &kvc__vmx__disk_move_status__descriptor,
             on_svm_status, done, ctx);
}

static void
kvm_svm_progress(struct hostd_host *h, struct hostd_vm *vm, hostd_svm_fn done, void *ctx)
{
    Kvc__Vmx__DiskMoveStatusRequest r = KVC__VMX__DISK_MOVE_STATUS_REQUEST__INIT;

    if (!has_disk(vm))
        return svm_no_disk(done, ctx);
    svm_call(vm, KVC__VMX__METHOD__VMX_DISK_MOVE_STATUS, &r.base,
             &kvc__vmx__disk_move_status__descriptor, on_svm_status, done, ctx);
}

static void
kvm_svm_cancel(struct hostd_host *h, struct hostd_vm *vm)
{
    struct kvm_vm *kv = vm->be;
    Kvc__Vmx__DiskMoveStatusRequest r = KVC__VMX__DISK_MOVE_STATUS_REQUEST__INIT;

    if (has_disk(vm) && vmx_up(kv))
        kvc_rpc_client_call(kv->vmx, KVC__VMX__METHOD__VMX_DISK_MOVE_CANCEL, &r.base,
                            &kvc__vmx__disk_move_status__descriptor, KVM_CALL_MS, on_ignored,
                            NULL);
}

static void
kvm_svm_folder(struct hostd_host *h, struct hostd_vm *vm, const char *new_dir,
               hostd_svm_fn done, void *ctx)
{
    Kvc__Vmx__FolderMoveRequest r = KVC__VMX__FOLDER_MOVE_REQUEST__INIT;

    r.dest_dir = (char *)new_dir;
    svm_call(vm, KVC__VMX__METHOD__VMX_FOLDER_MOVE, &r.base,
             &kvc__vmx__folder_move_reply__descriptor, on_svm_folder, done, ctx);
}

/* A blocking call to vmx (start-up only): the status, *OUT to free. */
static int
svm_sync(struct kvm_vm *kv, uint32_t method, const ProtobufCMessage *req,
         const ProtobufCMessageDescriptor *rt, ProtobufCMessage **out, char *err, size_t errlen)
{
    char *e = NULL;
    int st = kvc_rpc_call_sync(kv->vmx, method, req, rt, 10000, out, &e);

    if (st)
        snprintf(err, errlen, "%s", e ? e : "vmx did not answer");
    free(e);
    return st;
}

static int
kvm_svm_recover(struct hostd_host *h, struct hostd_vm *vm, const char *new_dir, bool folder,
                char *err, size_t errlen)
{
    struct kvm_vm *kv = vm->be;
    Kvc__Vmx__DiskMoveStatusRequest sr = KVC__VMX__DISK_MOVE_STATUS_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    int64_t deadline = hostd_now_ms() + 60000;
    int st;

    if (!kv || !kv->vmx || vm->power != VM_ON)
        return 0;
    /* A move vmx still runs: stopped, and waited for (a switch under way
     * completes: the files then tell). */
    for (bool asked = false; has_disk(vm);) {
        const Kvc__Vmx__DiskMoveStatus *s;
        if ((st = svm_sync(kv, KVC__VMX__METHOD__VMX_DISK_MOVE_STATUS, &sr.base,
                           &kvc__vmx__disk_move_status__descriptor, &resp, err, errlen)))
            return vmx_errno(st);
        s = (const void *)resp;
        bool active = s->phase >= KVC__VMX__DISK_MOVE_PHASE__DISK_MOVE_COPYING &&
                      s->phase <= KVC__VMX__DISK_MOVE_PHASE__DISK_MOVE_SWITCHING;
        protobuf_c_message_free_unpacked(resp, NULL);
        resp = NULL;
        if (!active)
            break;
        if (hostd_now_ms() > deadline) {
            snprintf(err, errlen, "vmx's disk move did not stop within 60 s");
            return -ETIMEDOUT;
        }
        if (!asked) {
            kvc_info("%s: VM %s: stopping the disk move vmx still runs", h->name, vm->name);
            if ((st = svm_sync(kv, KVC__VMX__METHOD__VMX_DISK_MOVE_CANCEL, &sr.base,
                               &kvc__vmx__disk_move_status__descriptor, &resp, err, errlen)) &&
                st != KVC_RPC_E_CONFLICT)
                return vmx_errno(st);
            if (resp)
                protobuf_c_message_free_unpacked(resp, NULL);
            resp = NULL;
            asked = true;
        }
        usleep(50000);
    }
    if (!folder)
        return 0;
    /* Where vmx says its config is tells whether the folder moved already. */
    Kvc__Vmx__InfoRequest ir = KVC__VMX__INFO_REQUEST__INIT;
    if ((st = svm_sync(kv, KVC__VMX__METHOD__VMX_INFO, &ir.base, &kvc__vmx__info__descriptor,
                       &resp, err, errlen)))
        return vmx_errno(st);
    const char *cp = ((const Kvc__Vmx__Info *)resp)->config_path;
    size_t n = strlen(new_dir);
    bool there = !strncmp(cp, new_dir, n) && cp[n] == '/' && !strchr(cp + n + 1, '/');
    protobuf_c_message_free_unpacked(resp, NULL);
    resp = NULL;
    if (there)
        return 0;
    Kvc__Vmx__FolderMoveRequest fr = KVC__VMX__FOLDER_MOVE_REQUEST__INIT;
    fr.dest_dir = (char *)new_dir;
    if ((st = svm_sync(kv, KVC__VMX__METHOD__VMX_FOLDER_MOVE, &fr.base,
                       &kvc__vmx__folder_move_reply__descriptor, &resp, err, errlen)))
        return vmx_errno(st);
    protobuf_c_message_free_unpacked(resp, NULL);
    kvc_info("%s: VM %s: vmx moved its folder to %s", h->name, vm->name, new_dir);
    return 0;
}

static const struct hostd_svm_ops kvm_svm_ops = {
    .start = kvm_svm_start,
    .progress = kvm_svm_progress,
    .cancel = kvm_svm_cancel,
    .folder = kvm_svm_folder,
    .recover = kvm_svm_recover,
};

const struct hostd_backend_ops hostd_backend_kvm = {
    .name = "kvm",
    .init = kvm_init,
    .fini = kvm_fini,
    .vm_attach = kvm_vm_attach,
    .vm_detach = kvm_vm_detach,
    .power_async = kvm_power_async,
    .console_read = kvm_console_read,
    .console_write = kvm_console_write,
    .migrate_in = kvm_migrate_in,
    .vm_pid = kvm_vm_pid,
    .svm = &kvm_svm_ops,
    .migrate_out = kvm_migrate_out,
    .migrate_abort = kvm_migrate_abort,
    .migrate_listen = kvm_migrate_listen,
    .migrate_send = kvm_migrate_send,
    .migrate_progress = kvm_migrate_progress,
    .migrate_cancel = kvm_migrate_cancel,
    .vm_stats = kvm_vm_stats,
    .control = kvm_control,
    .snapshot_take_async = hostd_kvm_snapshot_take,
    .snapshot_revert_async = hostd_kvm_snapshot_revert,
    .snapshot_delete_async = hostd_kvm_snapshot_delete,
};

