/* vmkd's control socket: the kvc.vmkd RPC methods (proto/vmkd.proto) on a
 * unix socket.  Every request is checked against the peer's SO_PEERCRED uid:
 * only root and the configured hostd uid are served, everyone else gets a
 * PERMISSION error (deny by default, like vmd's control.c). */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "rpc.h"
#include "vmkd.pb-c.h"
#include "vmkd_ctl.h"
#include "vmkd_net.h"

KVC_LOG_MODULE(vmkdctl);

struct sub {
    struct kvc_rpc_conn *conn;
    struct sub *next;
};

struct vmkd_ctl {
    struct vmkd *d;
    struct kvc_rpc_server *srv;
    long hostd_uid;
    struct sub *subs;
};

static bool allowed(struct vmkd_ctl *c, struct kvc_rpc_call *call)
{
    uid_t uid;
    pid_t pid;
    int rc = kvc_rpc_call_peer_cred(call, &uid, &pid, NULL);
    if (rc < 0) {
        kvc_rpc_reply_error(call, KVC_RPC_E_PERMISSION, "peer credentials unavailable: %s",
                            strerror(-rc));
        return false;
    }
    if (uid == 0 || (c->hostd_uid >= 0 && uid == (uid_t)c->hostd_uid))
        return true;
    static struct kvc_ratelimit rl = KVC_RATELIMIT_INIT(5, 10);
    kvc_warn_rl(&rl, "denied method 0x%04x to pid %d uid %u", kvc_rpc_call_method(call),
                (int)pid, (unsigned)uid);
    if (kvc_rpc_call_is_oneway(call))
        kvc_rpc_reply(call, NULL);      /* frees it; one-way messages get no answer */
    else
        kvc_rpc_reply_error(call, KVC_RPC_E_PERMISSION,
                            "uid %u may not use vmkd (only root and the hostd uid)", (unsigned)uid);
    return false;
}

bool vmkd_ctl_allowed(struct vmkd_ctl *c, struct kvc_rpc_call *call)
{
    return allowed(c, call);
}

struct vmkd *vmkd_ctl_vmkd(struct vmkd_ctl *c)
{
    return c->d;
}

static int status_of(int rc)
{
    switch (rc) {
    case -EINVAL: return KVC_RPC_E_INVALID_ARGUMENT;
    case -ENOENT: return KVC_RPC_E_NOT_FOUND;
    case -EEXIST: return KVC_RPC_E_CONFLICT;
    case -ENOSPC: return KVC__VMKD__ERROR_CODE__E_INSUFFICIENT_RESOURCES;
    default: return KVC_RPC_E_INTERNAL;
    }
}

static void alloc_from_pb(const Kvc__Vmkd__ResourceAlloc *p, struct kvc_res_alloc *a)
{
    kvc_res_alloc_default(a);
    if (!p)
        return;
    a->cpu_shares = p->cpu_shares;
    if (p->cpu_limit_mhz)
        a->cpu_limit_mhz = p->cpu_limit_mhz > INT64_MAX ? INT64_MAX : (int64_t)p->cpu_limit_mhz;
    if (p->cpu_limit_pct)
        a->cpu_limit_pct = p->cpu_limit_pct > INT32_MAX ? INT32_MAX : (int32_t)p->cpu_limit_pct;
    a->cpu_reservation_mhz = p->cpu_reservation_mhz;
    if (p->mem_limit_mb)
        a->mem_limit_mb = p->mem_limit_mb > INT64_MAX ? INT64_MAX : (int64_t)p->mem_limit_mb;
    a->mem_reservation_mb = p->mem_reservation_mb;
}

static void alloc_to_pb(const struct kvc_res_alloc *a, Kvc__Vmkd__ResourceAlloc *p)
{
    p->cpu_shares = a->cpu_shares;
    p->cpu_limit_mhz = a->cpu_limit_mhz > 0 ? (uint64_t)a->cpu_limit_mhz : 0;
    p->cpu_limit_pct = a->cpu_limit_pct > 0 ? (uint32_t)a->cpu_limit_pct : 0;
    p->cpu_reservation_mhz = a->cpu_reservation_mhz;
    p->mem_limit_mb = a->mem_limit_mb > 0 ? (uint64_t)a->mem_limit_mb : 0;
    p->mem_reservation_mb = a->mem_reservation_mb;
}

static Kvc__Vmkd__VmState state_to_pb(enum vmkd_vm_state s)
{
    switch (s) {
    case VMKD_VM_STARTING: return KVC__VMKD__VM_STATE__VM_STARTING;
    case VMKD_VM_RUNNING: return KVC__VMKD__VM_STATE__VM_RUNNING;
    case VMKD_VM_STOPPING: return KVC__VMKD__VM_STATE__VM_STOPPING;
    }
    return KVC__VMKD__VM_STATE__VM_STATE_NONE;
}

/* Fills p (and its alloc) from info; strings point into info. */
static void info_to_pb(const struct vmkd_vm_info *i, Kvc__Vmkd__VmInfo *p,
                       Kvc__Vmkd__ResourceAlloc *pa)
{
    kvc__vmkd__vm_info__init(p);
    kvc__vmkd__resource_alloc__init(pa);
    p->vm_id = (char *)i->vm_id;
    p->pid = i->pid;
    p->state = state_to_pb(i->state);
    p->control_socket = (char *)(i->control_socket ? i->control_socket : "");
    p->incoming_listen = (char *)(i->incoming_listen ? i->incoming_listen : "");
    p->config_path = (char *)(i->config_path ? i->config_path : "");
    alloc_to_pb(&i->alloc, pa);
    p->alloc = pa;
    p->cgroup = (char *)(i->cgroup_path ? i->cgroup_path : "");
    p->adopted = i->adopted;
    p->vcpus = i->vcpus;
    p->cgroup_weight = i->weight;
    p->cfs_quota_us = i->quota_us;
}

static Kvc__Vmkd__ExitReason reason_to_pb(enum vmkd_exit_reason r)
{
    switch (r) {
    case VMKD_EXIT_POWERED_OFF: return KVC__VMKD__EXIT_REASON__EXIT_POWERED_OFF;
    case VMKD_EXIT_CRASHED: return KVC__VMKD__EXIT_REASON__EXIT_CRASHED;
    case VMKD_EXIT_FAILED_TO_START: return KVC__VMKD__EXIT_REASON__EXIT_FAILED_TO_START;
    case VMKD_EXIT_UNKNOWN: return KVC__VMKD__EXIT_REASON__EXIT_UNKNOWN;
    case VMKD_EXIT_MIGRATED: return KVC__VMKD__EXIT_REASON__EXIT_MIGRATED;
    }
    return KVC__VMKD__EXIT_REASON__EXIT_NONE;
}

static void exit_to_pb(const struct vmkd_exit *ex, Kvc__Vmkd__VmExit *p)
{
    kvc__vmkd__vm_exit__init(p);
    p->vm_id = (char *)ex->vm_id;
    p->pid = ex->pid;
    p->reason = reason_to_pb(ex->reason);
    p->exit_code = ex->exit_code;
    p->signal = ex->signal;
    p->forced = ex->forced;
    p->message = (char *)ex->message;
}

/* ---- methods ---- */

static void on_host_info(struct kvc_rpc_call *call, const ProtobufCMessage *m, void *arg)
{
    struct vmkd_ctl *c = arg;
    if (!allowed(c, call))
        return;
    const struct kvc_host_capacity *cap = vmkd_capacity(c->d);
    const struct kvc_admission *ad = vmkd_admission(c->d);
    Kvc__Vmkd__HostInfo r = KVC__VMKD__HOST_INFO__INIT;
    r.ncpus = cap->ncpus;
    r.cpu_mhz = cap->cpu_mhz;
    r.mem_bytes = cap->mem_bytes;
    r.reserve_cpu_mhz = ad->reserve_cpu_mhz;
    r.reserve_mem_mb = ad->reserve_mem_mb;
    r.reserved_cpu_mhz = ad->used_cpu_mhz;
    r.reserved_mem_mb = ad->used_mem_mb;
    r.avail_cpu_mhz = kvc_admission_cpu_avail(ad);
    r.avail_mem_mb = kvc_admission_mem_avail(ad);
    r.cgroup_version = (uint32_t)vmkd_cgroup_version(c->d);
    r.cgroup = (char *)vmkd_cgroup_describe(c->d);
    r.vm_count = (uint32_t)vmkd_vm_count(c->d);
    r.vmkd_pid = (int32_t)getpid();
    r.version = (char *)PACKAGE_VERSION;
    kvc_rpc_reply(call, &r.base);
}

static void power_on_done(void *ctx, int rc, const char *why, const struct vmkd_vm_info *info)
{
    struct kvc_rpc_call *call = ctx;
    if (rc < 0) {
        kvc_rpc_reply_error(call, KVC__VMKD__ERROR_CODE__E_START_FAILED, "%s", why ? why : strerror(-rc));
        return;
    }
    Kvc__Vmkd__VmInfo r;
    Kvc__Vmkd__ResourceAlloc ra;
    info_to_pb(info, &r, &ra);
    kvc_rpc_reply(call, &r.base);
}

static void on_power_on(struct kvc_rpc_call *call, const ProtobufCMessage *m, void *arg)
{
    struct vmkd_ctl *c = arg;
    if (!allowed(c, call))
        return;
    const Kvc__Vmkd__PowerOnRequest *req = (const void *)m;
    struct vmkd_power_on po = {
        .vm_id = req->vm_id,
        .config_path = req->config_path,
        .log_path = req->log_path,
        .restore_path = req->restore_path,
        .incoming = req->incoming,
        .incoming_tls_dir = req->incoming_tls_dir,
        .incoming_peer = req->incoming_peer,
        .incoming_disk = req->incoming_disk,
        .incoming_own_lease = req->incoming_own_lease,
        .vcpus = req->vcpus,
    };
    alloc_from_pb(req->alloc, &po.alloc);
    if (req->n_nics > 1) {
        kvc_rpc_reply_error(call, KVC_RPC_E_INVALID_ARGUMENT,
                            "nics: one adapter per VM is supported, %zu given", req->n_nics);
        return;
    }
    if (req->n_nics == 1) {
        po.nic_portgroup = req->nics[0]->portgroup;
        po.nic_mac = req->nics[0]->mac;
    }
    for (size_t i = 0; i < req->n_cpu_affinity; i++) {
        if (req->cpu_affinity[i] >= 64) {
            kvc_rpc_reply_error(call, KVC_RPC_E_INVALID_ARGUMENT,
                                "cpu_affinity: CPU %u out of range (0..63)", req->cpu_affinity[i]);
            return;
        }
        po.cpu_affinity |= UINT64_C(1) << req->cpu_affinity[i];
    }
    char why[VMKD_WHY_MAX] = "";
    int rc = vmkd_power_on(c->d, &po, power_on_done, call, why);
    if (rc < 0)
        kvc_rpc_reply_error(call, status_of(rc), "%s", why[0] ? why : strerror(-rc));
}

static void power_off_done(void *ctx, int rc, const struct vmkd_exit *ex)
{
    struct kvc_rpc_call *call = ctx;
    if (rc < 0) {
        kvc_rpc_reply_error(call, KVC_RPC_E_CANCELLED, "vmkd is shutting down");
        return;
    }
    Kvc__Vmkd__VmExit r;
    exit_to_pb(ex, &r);
    kvc_rpc_reply(call, &r.base);
}

static void on_power_off(struct kvc_rpc_call *call, const ProtobufCMessage *m, void *arg)
{
    struct vmkd_ctl *c = arg;
    if (!allowed(c, call))
        return;
    const Kvc__Vmkd__PowerOffRequest *req = (const void *)m;
    char why[VMKD_WHY_MAX] = "";
    int rc = vmkd_power_off(c->d, req->vm_id, req->force, req->timeout_ms, power_off_done, call,
                            why);
    if (rc < 0)
        kvc_rpc_reply_error(call, status_of(rc), "%s", why[0] ? why : strerror(-rc));
}

static void on_reconfigure(struct kvc_rpc_call *call, const ProtobufCMessage *m, void *arg)
{
    struct vmkd_ctl *c = arg;
    if (!allowed(c, call))
        return;
    const Kvc__Vmkd__ReconfigureRequest *req = (const void *)m;
    struct kvc_res_alloc a;
    alloc_from_pb(req->alloc, &a);
    char why[VMKD_WHY_MAX] = "";
    int rc = vmkd_reconfigure(c->d, req->vm_id, &a, why);
    if (rc < 0) {
        kvc_rpc_reply_error(call, status_of(rc), "%s", why[0] ? why : strerror(-rc));
        return;
    }
    struct vmkd_vm_info info;
    vmkd_vm_get(c->d, req->vm_id, &info);
    Kvc__Vmkd__VmInfo r;
    Kvc__Vmkd__ResourceAlloc ra;
    info_to_pb(&info, &r, &ra);
    kvc_rpc_reply(call, &r.base);
}

static void on_list(struct kvc_rpc_call *call, const ProtobufCMessage *m, void *arg)
{
    struct vmkd_ctl *c = arg;
    if (!allowed(c, call))
        return;
    size_t n = vmkd_vm_count(c->d);
    struct vmkd_vm_info *infos = calloc(n ? n : 1, sizeof(*infos));
    Kvc__Vmkd__VmInfo *pbs = calloc(n ? n : 1, sizeof(*pbs));
    Kvc__Vmkd__ResourceAlloc *pas = calloc(n ? n : 1, sizeof(*pas));
    Kvc__Vmkd__VmInfo **ptrs = calloc(n ? n : 1, sizeof(*ptrs));
    if (!infos || !pbs || !pas || !ptrs) {
        kvc_rpc_reply_error(call, KVC_RPC_E_INTERNAL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        vmkd_vm_nth(c->d, i, &infos[i]);
        info_to_pb(&infos[i], &pbs[i], &pas[i]);
        ptrs[i] = &pbs[i];
    }
    Kvc__Vmkd__VmList r = KVC__VMKD__VM_LIST__INIT;
    r.n_vms = n;
    r.vms = ptrs;
    kvc_rpc_reply(call, &r.base);
out:
    free(infos);
    free(pbs);
    free(pas);
    free(ptrs);
}

static void on_usage(struct kvc_rpc_call *call, const ProtobufCMessage *m, void *arg)
{
    struct vmkd_ctl *c = arg;
    if (!allowed(c, call))
        return;
    const Kvc__Vmkd__UsageRequest *req = (const void *)m;
    size_t n = vmkd_vm_count(c->d);
    struct vmkd_vm_info *infos = calloc(n ? n : 1, sizeof(*infos));
    Kvc__Vmkd__Usage *us = calloc(n ? n : 1, sizeof(*us));
    Kvc__Vmkd__Usage **ptrs = calloc(n ? n : 1, sizeof(*ptrs));
    if (!infos || !us || !ptrs) {
        kvc_rpc_reply_error(call, KVC_RPC_E_INTERNAL, "out of memory");
        goto out;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        vmkd_vm_nth(c->d, i, &infos[i]);
        if (req->vm_id[0] && strcmp(req->vm_id, infos[i].vm_id) != 0)
            continue;
        struct kvc_cg_usage u;
        if (vmkd_vm_usage(c->d, infos[i].vm_id, &u) < 0)
            memset(&u, 0, sizeof(u));
        kvc__vmkd__usage__init(&us[k]);
        us[k].vm_id = infos[i].vm_id;
        us[k].cpu_ns = u.cpu_ns;
        us[k].mem_bytes = u.mem_bytes;
        us[k].nr_periods = u.nr_periods;
        us[k].nr_throttled = u.nr_throttled;
        us[k].throttled_ns = u.throttled_ns;
        ptrs[k] = &us[k];
        k++;
    }
    if (req->vm_id[0] && k == 0) {
        kvc_rpc_reply_error(call, KVC_RPC_E_NOT_FOUND, "VM %s is not powered on", req->vm_id);
        goto out;
    }
    Kvc__Vmkd__VmUsage r = KVC__VMKD__VM_USAGE__INIT;
    r.n_vms = k;
    r.vms = ptrs;
    kvc_rpc_reply(call, &r.base);
out:
    free(infos);
    free(us);
    free(ptrs);
}

static void on_subscribe(struct kvc_rpc_call *call, const ProtobufCMessage *m, void *arg)
{
    struct vmkd_ctl *c = arg;
    if (!allowed(c, call))
        return;
    struct kvc_rpc_conn *conn = kvc_rpc_call_conn(call);
    if (!conn) {
        kvc_rpc_reply(call, NULL);
        return;
    }
    bool have = false;
    for (struct sub *s = c->subs; s; s = s->next)
        have |= s->conn == conn;
    if (!have) {
        struct sub *s = calloc(1, sizeof(*s));
        if (!s) {
            kvc_rpc_reply_error(call, KVC_RPC_E_INTERNAL, "out of memory");
            return;
        }
        s->conn = conn;
        s->next = c->subs;
        c->subs = s;
        kvc_info("subscriber %s", kvc_rpc_conn_peer_name(conn));
    }
    Kvc__Vmkd__SubscribeReply r = KVC__VMKD__SUBSCRIBE_REPLY__INIT;
    kvc_rpc_reply(call, &r.base);
}

static void on_net_port_stats(struct kvc_rpc_call *call, const ProtobufCMessage *m, void *arg)
{
    struct vmkd_ctl *c = arg;
    if (!allowed(c, call))
        return;
    const Kvc__Vmkd__NetPortStatsRequest *req = (const void *)m;
    struct vs_stats st;
    char pg[VS_NAME_MAX];
    if (vmkd_net_port_stats(vmkd_net_ctx(c->d), req->vm_id, &st, pg, sizeof(pg)) < 0) {
        kvc_rpc_reply_error(call, KVC_RPC_E_NOT_FOUND, "VM %s has no vSwitch port", req->vm_id);
        return;
    }
    Kvc__Vmkd__NetPortStats r = KVC__VMKD__NET_PORT_STATS__INIT;
    Kvc__Vmkd__DropCount dc[VS_DROP__N], *dcp[VS_DROP__N];
    r.vm_id = req->vm_id;
    r.portgroup = pg;
    r.rx_packets = st.rx_packets;
    r.rx_bytes = st.rx_bytes;
    r.tx_packets = st.tx_packets;
    r.tx_bytes = st.tx_bytes;
    for (int i = 0; i < VS_DROP__N; i++) {
        if (!st.drops[i])
            continue;
        kvc__vmkd__drop_count__init(&dc[r.n_drops]);
        dc[r.n_drops].reason = (char *)vs_drop_name((enum vs_drop)i);
        dc[r.n_drops].count = st.drops[i];
        dcp[r.n_drops] = &dc[r.n_drops];
        r.n_drops++;
    }
    r.drops = dcp;
    kvc_rpc_reply(call, &r.base);
}

#define VSW(ID, NAME, FN, REQ) \
    { .id = KVC__VMKD__METHOD__##ID, .name = NAME, .handler = FN, \
      .request = &kvc__vmkd__##REQ##__descriptor, \
      .response = &kvc__vmkd__vswitch_list__descriptor }

static const struct kvc_rpc_method methods[] = {
    VSW(VMKD_VSWITCH_LIST, "VswitchList", vmkd_vswitch_on_list, vswitch_list_request),
    VSW(VMKD_VSWITCH_ADD, "VswitchAdd", vmkd_vswitch_on_add, vswitch_spec),
    VSW(VMKD_VSWITCH_REMOVE, "VswitchRemove", vmkd_vswitch_on_remove, vswitch_spec),
    VSW(VMKD_PORTGROUP_ADD, "PortgroupAdd", vmkd_portgroup_on_add, portgroup_spec),
    VSW(VMKD_PORTGROUP_REMOVE, "PortgroupRemove", vmkd_portgroup_on_remove, portgroup_spec),
    VSW(VMKD_PORTGROUP_SET, "PortgroupSet", vmkd_portgroup_on_set, portgroup_spec),
    { .id = KVC__VMKD__METHOD__VMKD_NET_PORT_STATS, .name = "NetPortStats",
      .handler = on_net_port_stats, .request = &kvc__vmkd__net_port_stats_request__descriptor,
      .response = &kvc__vmkd__net_port_stats__descriptor },
    { .id = KVC__VMKD__METHOD__VMKD_POOLS_SET, .name = "PoolsSet", .handler = vmkd_pools_on_set,
      .request = &kvc__vmkd__pool_tree__descriptor,
      .response = &kvc__vmkd__pool_tree__descriptor },
    { .id = KVC__VMKD__METHOD__VMKD_POOLS_GET, .name = "PoolsGet", .handler = vmkd_pools_on_get,
      .request = &kvc__vmkd__pools_get_request__descriptor,
      .response = &kvc__vmkd__pool_tree__descriptor },
    { .id = KVC__VMKD__METHOD__VMKD_HOST_INFO, .name = "HostInfo", .handler = on_host_info,
      .request = &kvc__vmkd__host_info_request__descriptor,
      .response = &kvc__vmkd__host_info__descriptor },
    { .id = KVC__VMKD__METHOD__VMKD_POWER_ON, .name = "PowerOn", .handler = on_power_on,
      .request = &kvc__vmkd__power_on_request__descriptor,
      .response = &kvc__vmkd__vm_info__descriptor },
    { .id = KVC__VMKD__METHOD__VMKD_POWER_OFF, .name = "PowerOff", .handler = on_power_off,
      .request = &kvc__vmkd__power_off_request__descriptor,
      .response = &kvc__vmkd__vm_exit__descriptor },
    { .id = KVC__VMKD__METHOD__VMKD_RECONFIGURE, .name = "Reconfigure", .handler = on_reconfigure,
      .request = &kvc__vmkd__reconfigure_request__descriptor,
      .response = &kvc__vmkd__vm_info__descriptor },
    { .id = KVC__VMKD__METHOD__VMKD_LIST, .name = "List", .handler = on_list,
      .request = &kvc__vmkd__list_request__descriptor,
      .response = &kvc__vmkd__vm_list__descriptor },
    { .id = KVC__VMKD__METHOD__VMKD_USAGE, .name = "Usage", .handler = on_usage,
      .request = &kvc__vmkd__usage_request__descriptor,
      .response = &kvc__vmkd__vm_usage__descriptor },
    { .id = KVC__VMKD__METHOD__VMKD_SUBSCRIBE, .name = "Subscribe", .handler = on_subscribe,
      .request = &kvc__vmkd__subscribe_request__descriptor,
      .response = &kvc__vmkd__subscribe_reply__descriptor },
};

/* ---- events ---- */

static void broadcast(struct vmkd_ctl *c, const Kvc__Vmkd__VmEvent *ev)
{
    for (struct sub *s = c->subs; s; s = s->next) {
        int rc = kvc_rpc_conn_send(s->conn, KVC__VMKD__METHOD__VMKD_EVENT, &ev->base);
        if (rc < 0)
            kvc_warn("event to %s: %s", kvc_rpc_conn_peer_name(s->conn), strerror(-rc));
    }
}

static void ev_started(void *ctx, const struct vmkd_vm_info *info)
{
    Kvc__Vmkd__VmEvent ev = KVC__VMKD__VM_EVENT__INIT;
    ev.kind = KVC__VMKD__EVENT_KIND__EVENT_VM_STARTED;
    ev.vm_id = (char *)info->vm_id;
    ev.pid = info->pid;
    broadcast(ctx, &ev);
}

static void ev_exited(void *ctx, const struct vmkd_exit *ex)
{
    Kvc__Vmkd__VmEvent ev = KVC__VMKD__VM_EVENT__INIT;
    Kvc__Vmkd__VmExit x;
    exit_to_pb(ex, &x);
    ev.kind = KVC__VMKD__EVENT_KIND__EVENT_VM_EXITED;
    ev.vm_id = (char *)ex->vm_id;
    ev.pid = ex->pid;
    ev.exit = &x;
    broadcast(ctx, &ev);
}

static void on_disconnect(struct kvc_rpc_conn *conn, const char *reason, void *arg)
{
    struct vmkd_ctl *c = arg;
    for (struct sub **pp = &c->subs; *pp; ) {
        if ((*pp)->conn == conn) {
            struct sub *s = *pp;
            *pp = s->next;
            free(s);
        } else {
            pp = &(*pp)->next;
        }
    }
}

int vmkd_ctl_new(struct event_base *base, struct vmkd *d, const char *path, mode_t mode,
                 long hostd_uid, struct vmkd_ctl **out)
{
    *out = NULL;
    struct vmkd_ctl *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->d = d;
    c->hostd_uid = hostd_uid;
    vmkd_set_pools_cleanup(d, vmkd_pools_free);
    struct kvc_rpc_opts o = {
        .methods = methods,
        .n_methods = KVC_ARRAY_SIZE(methods),
        .handler_arg = c,
        .max_frame = 1u << 20,
        .on_disconnect = on_disconnect,
        .cb_arg = c,
    };
    int rc = kvc_rpc_server_new(base, &o, &c->srv);
    if (rc < 0)
        goto err;
    rc = kvc_rpc_server_listen_unix(c->srv, path);
    if (rc < 0) {
        kvc_err("listen on %s: %s", path, strerror(-rc));
        goto err;
    }
    if (chmod(path, mode) < 0) {
        rc = -errno;
        kvc_err("chmod %s: %s", path, strerror(-rc));
        goto err;
    }
    if (hostd_uid > 0 && chown(path, (uid_t)hostd_uid, (gid_t)-1) < 0)
        kvc_warn("chown %s to hostd uid %ld: %s", path, hostd_uid, strerror(errno));
    struct vmkd_listener l = { .vm_started = ev_started, .vm_exited = ev_exited, .ctx = c };
    vmkd_set_listener(d, &l);
    *out = c;
    return 0;
err:
    vmkd_ctl_free(c);
    return rc;
}

void vmkd_ctl_free(struct vmkd_ctl *c)
{
    if (!c)
        return;
    kvc_rpc_server_free(c->srv);
    for (struct sub *s = c->subs, *n; s; s = n) {
        n = s->next;
        free(s);
    }
    free(c);
}
