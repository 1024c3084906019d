/* Handlers of vmx's control methods (proto/vmx.proto).  They run on the main
 * thread's event loop. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/rpc.h"
#include "vmkernel-kvm/migrate.h"
#include "vmkernel-kvm/vmx.h"
#include "vmkernel-kvm/vmx_ctl.h"
#include "vmx.pb-c.h"

KVC_LOG_MODULE(ctl);

static Kvc__Vmx__RunState run_state(const struct vmx *vm)
{
    switch (vm->state) {
    case VMX_RUNNING: return KVC__VMX__RUN_STATE__RUNNING;
    case VMX_PAUSED: return KVC__VMX__RUN_STATE__PAUSED;
    case VMX_POWERED_OFF: return KVC__VMX__RUN_STATE__POWERED_OFF;
    case VMX_CRASHED: return KVC__VMX__RUN_STATE__CRASHED;
    case VMX_MIGRATED: return KVC__VMX__RUN_STATE__MIGRATED;
    case VMX_INCOMING: return KVC__VMX__RUN_STATE__INCOMING;
    }
    return KVC__VMX__RUN_STATE__RUN_STATE_NONE;
}

static void reply_state(struct vmx_ctl_call *call, struct vmx *vm, Kvc__Vmx__RunState st,
                        const char *detail)
{
    Kvc__Vmx__StateReply r = KVC__VMX__STATE_REPLY__INIT;
    r.state = st ? st : run_state(vm);
    r.detail = (char *)(detail ? detail : "");
    vmx_ctl_reply(call, &r.base);
}

static bool live(struct vmx_ctl_call *call, struct vmx *vm)
{
    if (vm->stop != VMX_STOP_NONE || vm->state == VMX_POWERED_OFF || vm->state == VMX_CRASHED
        || vm->state == VMX_MIGRATED) {
        vmx_ctl_reply_error(call, KVC_RPC_E_CONFLICT, "VM is stopping");
        return false;
    }
    if (vm->state == VMX_INCOMING) {
        vmx_ctl_reply_error(call, KVC_RPC_E_CONFLICT, "VM is waiting for an incoming migration");
        return false;
    }
    return true;
}

/* Methods that change the run state wait until a migration ends (power off
 * does not: it aborts the migration and powers off). */
static bool settled(struct vmx_ctl_call *call, struct vmx *vm)
{
    if (!live(call, vm))
        return false;
    if (vmx_migrate_active(vm)) {
        vmx_ctl_reply_error(call, KVC_RPC_E_CONFLICT, "a migration is in progress");
        return false;
    }
    return true;
}

static void on_info(struct vmx_ctl_call *call, const ProtobufCMessage *req, void *arg)
{
    struct vmx *vm = arg;
    (void)req;
    Kvc__Vmx__Info r = KVC__VMX__INFO__INIT;
    r.name = vm->cfg.name;
    r.uuid = vm->cfg.uuid;
    r.pid = (int32_t)getpid();
    r.state = run_state(vm);
    r.memory_bytes = vm->mem.size;
    r.vcpus = vm->nvcpus;
    r.workload = (char *)(vm->cfg.kernel[0] ? "linux" : vmx_workload_name(vm->cfg.workload));
    r.config_path = vm->cfg.path;
    r.restored = vm->restored;
    r.resets = vm->resets;
    vmx_ctl_reply(call, &r.base);
}

static void on_power_off(struct vmx_ctl_call *call, const ProtobufCMessage *req, void *arg)
{
    struct vmx *vm = arg;
    (void)req;
    if (!live(call, vm))
        return;
    kvc_info("power off requested");
    vmx_request_stop(vm, VMX_STOP_POWEROFF, "powered off by request");
    reply_state(call, vm, KVC__VMX__RUN_STATE__POWERED_OFF, "powering off");
}

static void on_reset(struct vmx_ctl_call *call, const ProtobufCMessage *req, void *arg)
{
    struct vmx *vm = arg;
    (void)req;
    if (!settled(call, vm))
        return;
    kvc_info("reset requested");
    vmx_request_stop(vm, VMX_STOP_RESET, "reset by request");
    reply_state(call, vm, KVC__VMX__RUN_STATE__RUNNING, "resetting");
}

static void on_pause(struct vmx_ctl_call *call, const ProtobufCMessage *req, void *arg)
{
    struct vmx *vm = arg;
    (void)req;
    if (!settled(call, vm))
        return;
    vmx_pause(vm);
    kvc_info("paused");
    reply_state(call, vm, 0, NULL);
}

static void on_resume(struct vmx_ctl_call *call, const ProtobufCMessage *req, void *arg)
{
    struct vmx *vm = arg;
    (void)req;
    if (!settled(call, vm))
        return;
    vmx_resume(vm);
    kvc_info("resumed");
    reply_state(call, vm, 0, NULL);
}

static void guest_request(struct vmx_ctl_call *call, struct vmx *vm, uint32_t what)
{
    if (!live(call, vm))
        return;
    pthread_mutex_lock(&vm->dev_lock);
    bool tools = vm->tools.heartbeats > 0;
    if (tools)
        tools_request(&vm->tools, what);
    pthread_mutex_unlock(&vm->dev_lock);
    if (!tools) {
        vmx_ctl_reply_error(call, KVC_RPC_E_CONFLICT, "guest tools are not running");
        return;
    }
    kvc_info("asked the guest to %s", what == KVC_TOOLS_REQ_SHUTDOWN ? "shut down" : "reboot");
    reply_state(call, vm, 0, what == KVC_TOOLS_REQ_SHUTDOWN ? "shutdown requested" : "reboot requested");
}

static void on_guest_shutdown(struct vmx_ctl_call *call, const ProtobufCMessage *req, void *arg)
{
    (void)req;
    guest_request(call, arg, KVC_TOOLS_REQ_SHUTDOWN);
}

static void on_guest_reboot(struct vmx_ctl_call *call, const ProtobufCMessage *req, void *arg)
{
    (void)req;
    guest_request(call, arg, KVC_TOOLS_REQ_REBOOT);
}

static void on_console_read(struct vmx_ctl_call *call, const ProtobufCMessage *m, void *arg)
{
    struct vmx *vm = arg;
    const Kvc__Vmx__ConsoleReadRequest *req = (const void *)m;
    size_t cap = req->max_bytes && req->max_bytes < SERIAL_RING_SIZE ? req->max_bytes : SERIAL_RING_SIZE;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        vmx_ctl_reply_error(call, KVC_RPC_E_INTERNAL, "out of memory");
        return;
    }
    Kvc__Vmx__ConsoleData r = KVC__VMX__CONSOLE_DATA__INIT;
    pthread_mutex_lock(&vm->dev_lock);
    size_t n = serial_output(&vm->serial, req->offset, buf, cap, &r.next_offset);
    r.total = vm->serial.ring_total;
    pthread_mutex_unlock(&vm->dev_lock);
    r.data.data = buf;
    r.data.len = n;
    vmx_ctl_reply(call, &r.base);
    free(buf);
}

static void on_console_write(struct vmx_ctl_call *call, const ProtobufCMessage *m, void *arg)
{
    struct vmx *vm = arg;
    const Kvc__Vmx__ConsoleWriteRequest *req = (const void *)m;
    Kvc__Vmx__ConsoleWriteReply r = KVC__VMX__CONSOLE_WRITE_REPLY__INIT;
    pthread_mutex_lock(&vm->dev_lock);
    r.accepted = (uint32_t)serial_input(&vm->serial, req->data.data, req->data.len);
    pthread_mutex_unlock(&vm->dev_lock);
    vmx_ctl_reply(call, &r.base);
}

static void on_stats(struct vmx_ctl_call *call, const ProtobufCMessage *m, void *arg)
{
    struct vmx *vm = arg;
    (void)m;
    Kvc__Vmx__Stats r = KVC__VMX__STATS__INIT;
    Kvc__Vmx__ToolsState t = KVC__VMX__TOOLS_STATE__INIT;
    Kvc__Vmx__VcpuStats vs[VMX_MAX_VCPUS], *vsp[VMX_MAX_VCPUS];
    Kvc__Vmx__ExitCount ec[VMX_MAX_VCPUS][VMX_EXIT_REASONS], *ecp[VMX_MAX_VCPUS][VMX_EXIT_REASONS];
    uint64_t now = vmx_now_ns();

    r.state = run_state(vm);
    r.uptime_ms = (now - vm->start_ns) / 1000000;
    r.memory_bytes = vm->mem.size;
    r.memory_resident_bytes = guest_mem_resident(&vm->mem);
    for (unsigned i = 0; i < vm->nvcpus; i++) {
        struct vcpu *c = &vm->vcpus[i];
        kvc__vmx__vcpu_stats__init(&vs[i]);
        vs[i].index = i;
        vs[i].run_time_ns = vmx_vcpu_runtime_ns(vm, i);
        vs[i].kvm_runs = c->kvm_runs;
        size_t n = 0;
        for (unsigned k = 0; k < VMX_EXIT_REASONS; k++) {
            if (!c->exits[k])
                continue;
            kvc__vmx__exit_count__init(&ec[i][n]);
            ec[i][n].reason = (char *)vmx_exit_reason_name(k);
            ec[i][n].count = c->exits[k];
            ecp[i][n] = &ec[i][n];
            n++;
        }
        vs[i].n_exits = n;
        vs[i].exits = ecp[i];
        vsp[i] = &vs[i];
    }
    r.n_vcpus = vm->nvcpus;
    r.vcpus = vsp;

    char os[KVC_TOOLS_STR_MAX + 1], ip[KVC_TOOLS_STR_MAX + 1];
    pthread_mutex_lock(&vm->dev_lock);
    t.heartbeats = vm->tools.heartbeats;
    t.heartbeat_age_ms = tools_heartbeat_age_ms(&vm->tools, now);
    t.heartbeat_lost = vm->hb_lost_logged;
    snprintf(os, sizeof(os), "%s", vm->tools.os_name);
    snprintf(ip, sizeof(ip), "%s", vm->tools.ip);
    t.workload = (char *)(vm->tools.wl_kind < KVC_WL_COUNT_ ? vmx_workload_name(vm->tools.wl_kind) : "");
    if (!vm->tools.heartbeats)
        t.workload = "";
    t.counter = vm->tools.wl_counter;
    t.checksum = vm->tools.wl_sum;
    t.state_updates = vm->tools.state_updates;
    r.console_bytes = vm->serial.ring_total;
    if (vm->balloon_on) {
        r.balloon_target_pages = vm->balloon.target_pages;
        r.balloon_actual_pages = vm->balloon.actual_pages;
    }
    pthread_mutex_unlock(&vm->dev_lock);
    t.os_name = os;
    t.ip = ip;
    r.tools = &t;
    vmx_ctl_reply(call, &r.base);
}

static void on_snapshot(struct vmx_ctl_call *call, const ProtobufCMessage *m, void *arg)
{
    struct vmx *vm = arg;
    const Kvc__Vmx__SnapshotRequest *req = (const void *)m;
    if (!settled(call, vm))
        return;
    char path[PATH_MAX];
    if (!req->path[0]) {
        vmx_ctl_reply_error(call, KVC_RPC_E_INVALID_ARGUMENT, "empty path");
        return;
    }
    if ((size_t)snprintf(path, sizeof(path), "%s%s%s", req->path[0] == '/' ? "" : vm->cfg.dir,
                         req->path[0] == '/' ? "" : "/", req->path) >= sizeof(path)) {
        vmx_ctl_reply_error(call, KVC_RPC_E_INVALID_ARGUMENT, "path too long");
        return;
    }
    bool was_running = vm->state == VMX_RUNNING;
    vmx_pause(vm);
    if (vm->stop != VMX_STOP_NONE) {
        vmx_ctl_reply_error(call, KVC_RPC_E_CONFLICT, "VM stopped during the snapshot");
        return;
    }
    struct vmx_snapshot_info info;
    int rc = vmx_snapshot_save(vm, path, &info);
    if (rc < 0) {
        kvc_err("snapshot %s: %s", path, strerror(-rc));
        if (was_running)
            vmx_resume(vm);
        vmx_ctl_reply_error(call, KVC_RPC_E_INTERNAL, "snapshot %s: %s", path, strerror(-rc));
        return;
    }
    kvc_info("VMX-SNAPSHOT path=%s bytes=%llu pages=%llu us=%llu%s", path,
             (unsigned long long)info.bytes, (unsigned long long)info.memory_pages,
             (unsigned long long)info.duration_us, req->power_off ? " suspend" : "");
    Kvc__Vmx__SnapshotReply r = KVC__VMX__SNAPSHOT_REPLY__INIT;
    r.path = path;
    r.bytes = info.bytes;
    r.memory_pages = info.memory_pages;
    r.duration_us = info.duration_us;
    if (req->power_off) {
        vmx_request_stop(vm, VMX_STOP_POWEROFF, "suspended");
        r.state = KVC__VMX__RUN_STATE__POWERED_OFF;
    } else {
        if (was_running)
            vmx_resume(vm);
        r.state = run_state(vm);
    }
    vmx_ctl_reply(call, &r.base);
}

static void on_balloon(struct vmx_ctl_call *call, const ProtobufCMessage *m, void *arg)
{
    struct vmx *vm = arg;
    const Kvc__Vmx__BalloonRequest *req = (const void *)m;
    if (!vm->balloon_on) {
        vmx_ctl_reply_error(call, KVC_RPC_E_CONFLICT, "this VM has no balloon device");
        return;
    }
    if (req->target_mb > vm->mem.size >> 20) {
        vmx_ctl_reply_error(call, KVC_RPC_E_INVALID_ARGUMENT, "target %llu MiB exceeds guest RAM",
                            (unsigned long long)req->target_mb);
        return;
    }
    pthread_mutex_lock(&vm->dev_lock);
    balloon_set_target(&vm->balloon, (uint32_t)(req->target_mb * 256));
    pthread_mutex_unlock(&vm->dev_lock);
    reply_state(call, vm, 0, "balloon target set");
}

/* ---- live migration (migrate.c) ---- */

static struct vmx_ctl_call *g_mig_waiter;   /* MigrateSend with wait, answered at the end */

static void fill_status(Kvc__Vmx__MigrateStatus *r, const struct vmx_migrate_status *s)
{
    r->phase = (Kvc__Vmx__MigratePhase)s->phase;
    r->source = s->source;
    r->peer = (char *)s->peer;
    r->round = s->round;
    r->percent = s->percent;
    r->ram_bytes = s->ram_bytes;
    r->transferred_bytes = s->transferred_bytes;
    r->remaining_bytes = s->remaining_bytes;
    r->dirty_rate_bps = s->dirty_rate_bps;
    r->bandwidth_bps = s->bandwidth_bps;
    r->expected_downtime_ms = s->expected_downtime_ms;
    r->throttle_percent = s->throttle_percent;
    r->downtime_ms = s->downtime_ms;
    r->total_ms = s->total_ms;
    r->zero_pages = s->zero_pages;
    r->data_pages = s->data_pages;
    r->disk_total_bytes = s->disk_total_bytes;
    r->disk_sent_bytes = s->disk_sent_bytes;
    r->error = (char *)s->error;
    r->downtime_target_ms = s->downtime_target_ms;
}

static void reply_mig_status(struct vmx_ctl_call *call, struct vmx *vm)
{
    struct vmx_migrate_status s;
    Kvc__Vmx__MigrateStatus r = KVC__VMX__MIGRATE_STATUS__INIT;
    vmx_migrate_get_status(vm, &s);
    fill_status(&r, &s);
    vmx_ctl_reply(call, &r.base);
}

void vmx_ctl_migrate_finished(struct vmx *vm)
{
    if (g_mig_waiter) {
        struct vmx_ctl_call *c = g_mig_waiter;
        g_mig_waiter = NULL;
        reply_mig_status(c, vm);
    }
}

static void on_migrate_send(struct vmx_ctl_call *call, const ProtobufCMessage *m, void *arg)
{
    struct vmx *vm = arg;
    const Kvc__Vmx__MigrateSendRequest *req = (const void *)m;
    if (!settled(call, vm))
        return;
    struct vmx_migrate_params p;
    memset(&p, 0, sizeof(p));
    if (!req->to[0] || strlen(req->to) >= sizeof(p.to)) {
        vmx_ctl_reply_error(call, KVC_RPC_E_INVALID_ARGUMENT, "bad destination address");
        return;
    }
    snprintf(p.to, sizeof(p.to), "%s", req->to);
    p.downtime_ms = req->downtime_ms;
    p.max_bandwidth = req->max_bandwidth;
    p.timeout_ms = req->timeout_ms;
    p.verify = req->verify;
    p.max_rounds = req->max_rounds;
    p.with_disk = req->with_disk;
    if (strlen(req->tls_dir) >= sizeof(p.tls_dir) || strlen(req->peer_thumbprint) >= sizeof(p.peer_thumbprint)
        || !req->tls_dir[0] != !req->peer_thumbprint[0]) {
        vmx_ctl_reply_error(call, KVC_RPC_E_INVALID_ARGUMENT, "TLS needs both tls_dir and peer_thumbprint");
        return;
    }
    snprintf(p.tls_dir, sizeof(p.tls_dir), "%s", req->tls_dir);
    snprintf(p.peer_thumbprint, sizeof(p.peer_thumbprint), "%s", req->peer_thumbprint);
    if (p.downtime_ms > 60000 || (p.timeout_ms && p.timeout_ms < 100) || p.timeout_ms > 600000
        || p.max_rounds > 100000) {
        vmx_ctl_reply_error(call, KVC_RPC_E_INVALID_ARGUMENT,
                            "downtime_ms <= 60000, timeout_ms 100..600000, max_rounds <= 100000");
        return;
    }
    char err[256] = "";
    int rc = vmx_migrate_start(vm, &p, err, sizeof(err));
    if (rc < 0) {
        vmx_ctl_reply_error(call, rc == -EBUSY ? KVC_RPC_E_CONFLICT : KVC_RPC_E_INVALID_ARGUMENT,
                            "%s", err);
        return;
    }
    if (req->wait && !g_mig_waiter) {
        g_mig_waiter = call;    /* answered by vmx_ctl_migrate_finished */
        return;
    }
    reply_mig_status(call, vm);
}

static void on_migrate_status(struct vmx_ctl_call *call, const ProtobufCMessage *m, void *arg)
{
    (void)m;
    reply_mig_status(call, arg);
}

static void on_migrate_cancel(struct vmx_ctl_call *call, const ProtobufCMessage *m, void *arg)
{
    struct vmx *vm = arg;
    (void)m;
    int rc = vmx_migrate_cancel(vm);
    if (rc == -ESRCH) {
        vmx_ctl_reply_error(call, KVC_RPC_E_CONFLICT, "no outgoing migration is running");
        return;
    }
    if (rc == -EBUSY) {
        vmx_ctl_reply_error(call, KVC_RPC_E_CONFLICT, "too late: the destination owns the VM now");
        return;
    }
    kvc_info("migration cancel requested");
    reply_mig_status(call, vm);
}

#define M(ID, NAME, REQ, RESP, FN) \
    { .id = KVC__VMX__METHOD__##ID, .name = NAME, .request = &kvc__vmx__##REQ##__descriptor, \
      .response = &kvc__vmx__##RESP##__descriptor, .handler = FN }

const struct vmx_ctl_method vmx_ctl_methods[] = {
    M(VMX_INFO, "Info", info_request, info, on_info),
    M(VMX_POWER_OFF, "PowerOff", power_request, state_reply, on_power_off),
    M(VMX_RESET, "Reset", power_request, state_reply, on_reset),
    M(VMX_PAUSE, "Pause", power_request, state_reply, on_pause),
    M(VMX_RESUME, "Resume", power_request, state_reply, on_resume),
    M(VMX_GUEST_SHUTDOWN, "GuestShutdown", power_request, state_reply, on_guest_shutdown),
    M(VMX_GUEST_REBOOT, "GuestReboot", power_request, state_reply, on_guest_reboot),
    M(VMX_CONSOLE_READ, "ConsoleRead", console_read_request, console_data, on_console_read),
    M(VMX_CONSOLE_WRITE, "ConsoleWrite", console_write_request, console_write_reply, on_console_write),
    M(VMX_STATS, "Stats", stats_request, stats, on_stats),
    M(VMX_SNAPSHOT, "Snapshot", snapshot_request, snapshot_reply, on_snapshot),
    M(VMX_BALLOON, "Balloon", balloon_request, state_reply, on_balloon),
    M(VMX_MIGRATE_SEND, "MigrateSend", migrate_send_request, migrate_status, on_migrate_send),
    M(VMX_MIGRATE_STATUS, "MigrateStatus", migrate_status_request, migrate_status, on_migrate_status),
    M(VMX_MIGRATE_CANCEL, "MigrateCancel", migrate_status_request, migrate_status, on_migrate_cancel),
};
const size_t vmx_ctl_n_methods = sizeof(vmx_ctl_methods) / sizeof(vmx_ctl_methods[0]);
