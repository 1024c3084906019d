/* vmkdctl: talk to vmkd's control socket from a shell (operators, tests).
 *
 *     vmkdctl -s SOCKET COMMAND [ARGS]
 *
 *   host-info
 *   list
 *   usage [VM]
 *   power-on VM CONFIG [--vcpus N] [--log FILE] [--affinity 0,1] [ALLOC]
 *   power-off VM [--force] [--timeout-ms N]
 *   reconfigure VM [ALLOC]
 *   watch                 subscribe and print events until killed
 *   vswitch-list | vswitch-add NAME [--ports N] [--mtu N] | vswitch-remove NAME
 *   portgroup-add NAME VSWITCH [--vlan N] | portgroup-remove NAME
 *   portgroup-set NAME --vlan N
 *                         the live vSwitch configuration (each prints it after)
 *
 * ALLOC: --shares N --limit-mhz N --limit-pct N --reserve-mhz N
 *        --mem-limit-mb N --reserve-mem-mb N
 *
 * Output is one line per object, `key=value` pairs separated by spaces; an
 * error goes to stderr as `error: STATUS_NAME (code): message`, exit 1.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "log.h"
#include "rpc.h"
#include "vmkd.pb-c.h"

#define TIMEOUT_MS 120000

static const char *state_name(Kvc__Vmkd__VmState s)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
        &kvc__vmkd__vm_state__descriptor, (int)s);
    return v ? v->name : "?";
}

static const char *reason_name(Kvc__Vmkd__ExitReason r)
{
    switch (r) {
    case KVC__VMKD__EXIT_REASON__EXIT_POWERED_OFF: return "powered-off";
    case KVC__VMKD__EXIT_REASON__EXIT_CRASHED: return "crashed";
    case KVC__VMKD__EXIT_REASON__EXIT_FAILED_TO_START: return "failed-to-start";
    case KVC__VMKD__EXIT_REASON__EXIT_UNKNOWN: return "exited-unknown";
    case KVC__VMKD__EXIT_REASON__EXIT_MIGRATED: return "migrated";
    default: return "?";
    }
}

static void print_alloc(const Kvc__Vmkd__ResourceAlloc *a)
{
    if (!a)
        return;
    printf(" shares=%" PRIu32 " limit_mhz=%" PRIu64 " limit_pct=%" PRIu32 " reserve_mhz=%" PRIu64
           " mem_limit_mb=%" PRIu64 " reserve_mem_mb=%" PRIu64, a->cpu_shares, a->cpu_limit_mhz,
           a->cpu_limit_pct, a->cpu_reservation_mhz, a->mem_limit_mb, a->mem_reservation_mb);
}

static void print_vm(const Kvc__Vmkd__VmInfo *v)
{
    printf("vm id=%s pid=%d state=%s adopted=%d vcpus=%" PRIu32 " weight=%" PRIu64
           " quota_us=%" PRId64, v->vm_id, v->pid, state_name(v->state), v->adopted, v->vcpus,
           v->cgroup_weight, v->cfs_quota_us);
    print_alloc(v->alloc);
    printf(" cgroup=%s socket=%s config=%s", v->cgroup, v->control_socket, v->config_path);
    if (v->incoming_listen && v->incoming_listen[0])
        printf(" listen=%s", v->incoming_listen);
    printf("\n");
}

static void print_exit(const char *prefix, const Kvc__Vmkd__VmExit *x)
{
    printf("%s id=%s pid=%d reason=%s exit_code=%d signal=%d forced=%d message=\"%s\"\n", prefix,
           x->vm_id, x->pid, reason_name(x->reason), x->exit_code, x->signal, x->forced,
           x->message);
}

static int fail(int status, const char *err)
{
    fprintf(stderr, "error: %s (%d): %s\n", kvc_rpc_status_name(status), status, err ? err : "");
    return 1;
}

static void on_event(struct kvc_rpc_call *call, const ProtobufCMessage *m, void *arg)
{
    const Kvc__Vmkd__VmEvent *ev = (const void *)m;
    if (ev->kind == KVC__VMKD__EVENT_KIND__EVENT_VM_STARTED)
        printf("event started id=%s pid=%d\n", ev->vm_id, ev->pid);
    else if (ev->kind == KVC__VMKD__EVENT_KIND__EVENT_VM_EXITED && ev->exit)
        print_exit("event exited", ev->exit);
    fflush(stdout);
    kvc_rpc_reply(call, NULL);
}

static const struct kvc_rpc_method client_methods[] = {
    { .id = KVC__VMKD__METHOD__VMKD_EVENT, .name = "Event", .handler = on_event,
      .request = &kvc__vmkd__vm_event__descriptor },
};

static bool watching;

static void on_disconnect(struct kvc_rpc_conn *c, const char *reason, void *arg)
{
    if (watching)
        fprintf(stderr, "vmkdctl: connection closed: %s\n", reason);
    event_base_loopbreak(arg);
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || !*s || s[0] == '-')
        return -EINVAL;
    *out = v;
    return 0;
}

/* pools | pools-set POOL... [--vm VM=POOL]...: POOL is
 * ID:PARENT:CPU_SHARES:CPU_LIMIT_MHZ:MEM_LIMIT_MB:CPU_RES_MHZ:MEM_RES_MB
 * (empty PARENT: the root; -1 or empty limits: none). */
static void print_pools(const Kvc__Vmkd__PoolTree *t)
{
    for (size_t k = 0; k < t->n_pools; k++) {
        const Kvc__Vmkd__Pool *p = t->pools[k];
        printf("pool id=%s parent=%s cpu_shares=%" PRId64 " cpu_limit_mhz=%" PRId64
               " mem_limit_mb=%" PRId64 " weight=%" PRIu64 " quota_us=%" PRId64
               " cpu_ns=%" PRIu64 " mem_bytes=%" PRIu64 " cgroup=%s\n", p->id, p->parent,
               p->cpu_shares, p->cpu_limit_mhz, p->mem_limit_mb, p->weight, p->quota_us,
               p->cpu_ns, p->mem_bytes, p->cgroup);
    }
    for (size_t k = 0; k < t->n_vms; k++)
        printf("poolvm vm=%s pool=%s\n", t->vms[k]->vm_id, t->vms[k]->pool);
}

static int64_t field_i64(char **s)
{
    char *f = strsep(s, ":");
    return f && *f ? strtoll(f, NULL, 10) : -1;
}

static int pools_main(const char *sock, const char *cmd, int argc, char **argv)
{
    Kvc__Vmkd__PoolTree t = KVC__VMKD__POOL_TREE__INIT;
    Kvc__Vmkd__Pool pb[64], *pp[64];
    Kvc__Vmkd__PoolVm vb[64], *vp[64];
    char *dups[128];
    size_t nd = 0;
    int ret = 0;

    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--vm") && i + 1 < argc && t.n_vms < 64) {
            char *d = dups[nd++] = strdup(argv[++i]), *eq = strchr(d, '=');
            kvc__vmkd__pool_vm__init(&vb[t.n_vms]);
            if (eq)
                *eq++ = '\0';
            vb[t.n_vms].vm_id = d;
            vb[t.n_vms].pool = eq ? eq : (char *)"";
            vp[t.n_vms] = &vb[t.n_vms];
            t.n_vms++;
        } else if (t.n_pools < 64 && nd < 128) {
            char *d = dups[nd++] = strdup(argv[i]), *s = d;
            Kvc__Vmkd__Pool *p = &pb[t.n_pools];
            kvc__vmkd__pool__init(p);
            p->id = strsep(&s, ":");
            char *parent = strsep(&s, ":");
            p->parent = parent ? parent : (char *)"";
            char *sh = strsep(&s, ":");
            p->cpu_shares = sh && *sh ? strtoll(sh, NULL, 10) : 0;
            p->cpu_limit_mhz = field_i64(&s);
            p->mem_limit_mb = field_i64(&s);
            p->cpu_reservation_mhz = field_i64(&s);
            p->mem_reservation_mb = field_i64(&s);
            if (p->cpu_reservation_mhz < 0)
                p->cpu_reservation_mhz = 0;
            if (p->mem_reservation_mb < 0)
                p->mem_reservation_mb = 0;
            pp[t.n_pools++] = p;
        }
    }
    t.pools = pp;
    t.vms = vp;
    struct event_base *base = event_base_new();
    struct kvc_rpc_client *cl = NULL;
    struct kvc_rpc_opts o = {
        .methods = client_methods,
        .n_methods = KVC_ARRAY_SIZE(client_methods),
        .on_disconnect = on_disconnect,
        .cb_arg = base,
        .connect_timeout_ms = 5000,
    };
    ProtobufCMessage *resp = NULL;
    char *err = NULL;
    if (!base || kvc_rpc_client_new_unix(base, sock, &o, &cl) < 0) {
        fprintf(stderr, "vmkdctl: cannot create a client for %s\n", sock);
        ret = 1;
    } else {
        Kvc__Vmkd__PoolsGetRequest g = KVC__VMKD__POOLS_GET_REQUEST__INIT;
        bool set = !strcmp(cmd, "pools-set");
        int st = kvc_rpc_call_sync(cl, set ? KVC__VMKD__METHOD__VMKD_POOLS_SET
                                           : KVC__VMKD__METHOD__VMKD_POOLS_GET,
                                   set ? &t.base : &g.base, &kvc__vmkd__pool_tree__descriptor,
                                   TIMEOUT_MS, &resp, &err);
        if (st != KVC_RPC_OK)
            ret = fail(st, err);
        else
            print_pools((const void *)resp);
    }
    if (resp)
        protobuf_c_message_free_unpacked(resp, NULL);
    free(err);
    kvc_rpc_client_free(cl);
    if (base)
        event_base_free(base);
    for (size_t k = 0; k < nd; k++)
        free(dups[k]);
    return ret;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: vmkdctl -s SOCKET COMMAND [ARGS]\n"
            "  host-info | list | usage [VM] | watch\n"
            "  power-on VM CONFIG [--vcpus N] [--log FILE] [--affinity CPU,...] [--nic PG,MAC]\n"
            "           [--incoming tcp:IP:PORT|unix:PATH [--incoming-disk]] [--restore FILE] [ALLOC]\n"
            "  net-stats VM\n"
            "  power-off VM [--force] [--timeout-ms N]\n"
            "  reconfigure VM [ALLOC]\n"
            "  vswitch-list | vswitch-add NAME [--ports N] [--mtu N] | vswitch-remove NAME\n"
            "  portgroup-add NAME VSWITCH [--vlan N] | portgroup-remove NAME\n"
            "  portgroup-set NAME --vlan N\n"
            "  pools | pools-set ID:PARENT:SHARES:LIMIT_MHZ:MEM_LIMIT_MB... [--vm VM=POOL]\n"
            "ALLOC: --shares N --limit-mhz N --limit-pct N --reserve-mhz N\n"
            "       --mem-limit-mb N --reserve-mem-mb N\n");
}

int main(int argc, char **argv)
{
    const char *sock = NULL;
    int i = 1;
    if (argc > 2 && strcmp(argv[1], "-s") == 0) {
        sock = argv[2];
        i = 3;
    }
    if (!sock || i >= argc) {
        usage();
        return 2;
    }
    const char *cmd = argv[i++];
    kvc_log_init("vmkdctl");
    kvc_log_set_default_level(KVC_LOG_WARN);
    signal(SIGPIPE, SIG_IGN);
    if (!strcmp(cmd, "pools") || !strcmp(cmd, "pools-set"))
        return pools_main(sock, cmd, argc - i, argv + i);

    /* Positional arguments, then options. */
    const char *pos[2] = { NULL, NULL };
    int npos = 0;
    while (i < argc && argv[i][0] != '-' && npos < 2)
        pos[npos++] = argv[i++];
    Kvc__Vmkd__ResourceAlloc alloc = KVC__VMKD__RESOURCE_ALLOC__INIT;
    uint64_t vcpus = 0, timeout_ms = 0, ports = 0, mtu = 0, vlan = 0;
    const char *logp = "";
    bool force = false, incoming_disk = false;
    uint32_t affinity[64];
    size_t naff = 0;
    Kvc__Vmkd__Nic nic = KVC__VMKD__NIC__INIT, *nicp = NULL;
    const char *incoming = NULL, *restore = NULL;
    char nic_pg[128], nic_mac[32];
    for (; i < argc; i++) {
        const char *o = argv[i];
        uint64_t v = 0;
        if (strcmp(o, "--force") == 0) {
            force = true;
            continue;
        }
        if (strcmp(o, "--incoming-disk") == 0) {
            incoming_disk = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "vmkdctl: %s needs a value\n", o);
            return 2;
        }
        const char *val = argv[++i];
        if (strcmp(o, "--log") == 0) {
            logp = val;
            continue;
        }
        if (strcmp(o, "--incoming") == 0) {
            incoming = val;
            continue;
        }
        if (strcmp(o, "--restore") == 0) {
            restore = val;
            continue;
        }
        if (strcmp(o, "--nic") == 0) {
            /* PORTGROUP,MAC (the port group name may hold spaces, not commas) */
            const char *comma = strrchr(val, ',');
            if (!comma) {
                fprintf(stderr, "vmkdctl: --nic: expected PORTGROUP,MAC\n");
                return 2;
            }
            snprintf(nic_pg, sizeof(nic_pg), "%.*s", (int)(comma - val), val);
            snprintf(nic_mac, sizeof(nic_mac), "%s", comma + 1);
            nic.portgroup = nic_pg;
            nic.mac = nic_mac;
            nicp = &nic;
            continue;
        }
        if (strcmp(o, "--affinity") == 0) {
            char *dup = strdup(val), *save = NULL;
            for (char *t = strtok_r(dup, ",", &save); t && naff < 64; t = strtok_r(NULL, ",", &save)) {
                if (parse_u64(t, &v) < 0 || v >= 64) {
                    fprintf(stderr, "vmkdctl: --affinity: bad CPU '%s'\n", t);
                    free(dup);
                    return 2;
                }
                affinity[naff++] = (uint32_t)v;
            }
            free(dup);
            continue;
        }
        if (parse_u64(val, &v) < 0) {
            fprintf(stderr, "vmkdctl: %s: '%s' is not a number\n", o, val);
            return 2;
        }
        if (strcmp(o, "--vcpus") == 0) vcpus = v;
        else if (strcmp(o, "--timeout-ms") == 0) timeout_ms = v;
        else if (strcmp(o, "--ports") == 0) ports = v;
        else if (strcmp(o, "--mtu") == 0) mtu = v;
        else if (strcmp(o, "--vlan") == 0) vlan = v;
        else if (strcmp(o, "--shares") == 0) alloc.cpu_shares = (uint32_t)v;
        else if (strcmp(o, "--limit-mhz") == 0) alloc.cpu_limit_mhz = v;
        else if (strcmp(o, "--limit-pct") == 0) alloc.cpu_limit_pct = (uint32_t)v;
        else if (strcmp(o, "--reserve-mhz") == 0) alloc.cpu_reservation_mhz = v;
        else if (strcmp(o, "--mem-limit-mb") == 0) alloc.mem_limit_mb = v;
        else if (strcmp(o, "--reserve-mem-mb") == 0) alloc.mem_reservation_mb = v;
        else {
            fprintf(stderr, "vmkdctl: unknown option %s\n", o);
            return 2;
        }
    }

    struct event_base *base = event_base_new();
    struct kvc_rpc_client *cl = NULL;
    struct kvc_rpc_opts o = {
        .methods = client_methods,
        .n_methods = KVC_ARRAY_SIZE(client_methods),
        .on_disconnect = on_disconnect,
        .cb_arg = base,
        .connect_timeout_ms = 5000,
    };
    if (!base || kvc_rpc_client_new_unix(base, sock, &o, &cl) < 0) {
        fprintf(stderr, "vmkdctl: cannot create a client for %s\n", sock);
        return 1;
    }
    ProtobufCMessage *resp = NULL;
    char *err = NULL;
    int st, ret = 0;

    if (strcmp(cmd, "host-info") == 0) {
        Kvc__Vmkd__HostInfoRequest rq = KVC__VMKD__HOST_INFO_REQUEST__INIT;
        st = kvc_rpc_call_sync(cl, KVC__VMKD__METHOD__VMKD_HOST_INFO, &rq.base,
                               &kvc__vmkd__host_info__descriptor, TIMEOUT_MS, &resp, &err);
        if (st != KVC_RPC_OK) {
            ret = fail(st, err);
        } else {
            const Kvc__Vmkd__HostInfo *h = (const void *)resp;
            printf("host ncpus=%" PRIu32 " cpu_mhz=%" PRIu32 " mem_bytes=%" PRIu64
                   " reserve_cpu_mhz=%" PRIu64 " reserve_mem_mb=%" PRIu64 " reserved_cpu_mhz=%"
                   PRIu64 " reserved_mem_mb=%" PRIu64 " avail_cpu_mhz=%" PRIu64 " avail_mem_mb=%"
                   PRIu64 " cgroup_version=%" PRIu32 " vm_count=%" PRIu32 " vmkd_pid=%d"
                   " version=%s cgroup=\"%s\"\n", h->ncpus, h->cpu_mhz, h->mem_bytes,
                   h->reserve_cpu_mhz, h->reserve_mem_mb, h->reserved_cpu_mhz, h->reserved_mem_mb,
                   h->avail_cpu_mhz, h->avail_mem_mb, h->cgroup_version, h->vm_count, h->vmkd_pid,
                   h->version, h->cgroup);
        }
    } else if (strcmp(cmd, "list") == 0) {
        Kvc__Vmkd__ListRequest rq = KVC__VMKD__LIST_REQUEST__INIT;
        st = kvc_rpc_call_sync(cl, KVC__VMKD__METHOD__VMKD_LIST, &rq.base,
                               &kvc__vmkd__vm_list__descriptor, TIMEOUT_MS, &resp, &err);
        if (st != KVC_RPC_OK) {
            ret = fail(st, err);
        } else {
            const Kvc__Vmkd__VmList *l = (const void *)resp;
            for (size_t k = 0; k < l->n_vms; k++)
                print_vm(l->vms[k]);
        }
    } else if (strcmp(cmd, "usage") == 0) {
        Kvc__Vmkd__UsageRequest rq = KVC__VMKD__USAGE_REQUEST__INIT;
        rq.vm_id = (char *)(pos[0] ? pos[0] : "");
        st = kvc_rpc_call_sync(cl, KVC__VMKD__METHOD__VMKD_USAGE, &rq.base,
                               &kvc__vmkd__vm_usage__descriptor, TIMEOUT_MS, &resp, &err);
        if (st != KVC_RPC_OK) {
            ret = fail(st, err);
        } else {
            const Kvc__Vmkd__VmUsage *u = (const void *)resp;
            for (size_t k = 0; k < u->n_vms; k++)
                printf("usage id=%s cpu_ns=%" PRIu64 " mem_bytes=%" PRIu64 " nr_periods=%" PRIu64
                       " nr_throttled=%" PRIu64 " throttled_ns=%" PRIu64 "\n", u->vms[k]->vm_id,
                       u->vms[k]->cpu_ns, u->vms[k]->mem_bytes, u->vms[k]->nr_periods,
                       u->vms[k]->nr_throttled, u->vms[k]->throttled_ns);
        }
    } else if (strcmp(cmd, "power-on") == 0 && pos[0] && pos[1]) {
        Kvc__Vmkd__PowerOnRequest rq = KVC__VMKD__POWER_ON_REQUEST__INIT;
        rq.vm_id = (char *)pos[0];
        rq.config_path = (char *)pos[1];
        rq.log_path = (char *)logp;
        rq.vcpus = (uint32_t)vcpus;
        rq.alloc = &alloc;
        rq.n_cpu_affinity = naff;
        rq.cpu_affinity = affinity;
        rq.n_nics = nicp ? 1 : 0;
        rq.nics = nicp ? &nicp : NULL;
        rq.incoming = (char *)(incoming ? incoming : "");
        rq.incoming_disk = incoming_disk;
        rq.restore_path = (char *)(restore ? restore : "");
        st = kvc_rpc_call_sync(cl, KVC__VMKD__METHOD__VMKD_POWER_ON, &rq.base,
                               &kvc__vmkd__vm_info__descriptor, TIMEOUT_MS, &resp, &err);
        if (st != KVC_RPC_OK)
            ret = fail(st, err);
        else
            print_vm((const void *)resp);
    } else if (strcmp(cmd, "net-stats") == 0 && pos[0]) {
        Kvc__Vmkd__NetPortStatsRequest rq = KVC__VMKD__NET_PORT_STATS_REQUEST__INIT;
        rq.vm_id = (char *)pos[0];
        st = kvc_rpc_call_sync(cl, KVC__VMKD__METHOD__VMKD_NET_PORT_STATS, &rq.base,
                               &kvc__vmkd__net_port_stats__descriptor, TIMEOUT_MS, &resp, &err);
        if (st != KVC_RPC_OK) {
            ret = fail(st, err);
        } else {
            const Kvc__Vmkd__NetPortStats *n = (const void *)resp;
            printf("port id=%s portgroup=\"%s\" rx_packets=%" PRIu64 " rx_bytes=%" PRIu64
                   " tx_packets=%" PRIu64 " tx_bytes=%" PRIu64, n->vm_id, n->portgroup,
                   n->rx_packets, n->rx_bytes, n->tx_packets, n->tx_bytes);
            for (size_t k = 0; k < n->n_drops; k++)
                printf(" drop_%s=%" PRIu64, n->drops[k]->reason, n->drops[k]->count);
            printf("\n");
        }
    } else if (strcmp(cmd, "power-off") == 0 && pos[0]) {
        Kvc__Vmkd__PowerOffRequest rq = KVC__VMKD__POWER_OFF_REQUEST__INIT;
        rq.vm_id = (char *)pos[0];
        rq.force = force;
        rq.timeout_ms = (uint32_t)timeout_ms;
        st = kvc_rpc_call_sync(cl, KVC__VMKD__METHOD__VMKD_POWER_OFF, &rq.base,
                               &kvc__vmkd__vm_exit__descriptor, TIMEOUT_MS, &resp, &err);
        if (st != KVC_RPC_OK)
            ret = fail(st, err);
        else
            print_exit("exit", (const void *)resp);
    } else if (strcmp(cmd, "reconfigure") == 0 && pos[0]) {
        Kvc__Vmkd__ReconfigureRequest rq = KVC__VMKD__RECONFIGURE_REQUEST__INIT;
        rq.vm_id = (char *)pos[0];
        rq.alloc = &alloc;
        st = kvc_rpc_call_sync(cl, KVC__VMKD__METHOD__VMKD_RECONFIGURE, &rq.base,
                               &kvc__vmkd__vm_info__descriptor, TIMEOUT_MS, &resp, &err);
        if (st != KVC_RPC_OK)
            ret = fail(st, err);
        else
            print_vm((const void *)resp);
    } else if (!strncmp(cmd, "vswitch-", 8) || !strncmp(cmd, "portgroup-", 10)) {
        Kvc__Vmkd__VswitchListRequest lr = KVC__VMKD__VSWITCH_LIST_REQUEST__INIT;
        Kvc__Vmkd__VswitchSpec vs = KVC__VMKD__VSWITCH_SPEC__INIT;
        Kvc__Vmkd__PortgroupSpec pg = KVC__VMKD__PORTGROUP_SPEC__INIT;
        const ProtobufCMessage *rq = &pg.base;
        uint32_t m = 0;
        vs.name = pg.name = (char *)(pos[0] ? pos[0] : "");
        vs.ports = (uint32_t)ports;
        vs.mtu = (uint32_t)mtu;
        pg.vswitch = (char *)(pos[1] ? pos[1] : "");
        pg.vlan = (uint32_t)vlan;
        if (!strcmp(cmd, "vswitch-list")) {
            m = KVC__VMKD__METHOD__VMKD_VSWITCH_LIST;
            rq = &lr.base;
        } else if (!strcmp(cmd, "vswitch-add") && pos[0]) {
            m = KVC__VMKD__METHOD__VMKD_VSWITCH_ADD;
            rq = &vs.base;
        } else if (!strcmp(cmd, "vswitch-remove") && pos[0]) {
            m = KVC__VMKD__METHOD__VMKD_VSWITCH_REMOVE;
            rq = &vs.base;
        } else if (!strcmp(cmd, "portgroup-add") && pos[1]) {
            m = KVC__VMKD__METHOD__VMKD_PORTGROUP_ADD;
        } else if (!strcmp(cmd, "portgroup-remove") && pos[0]) {
            m = KVC__VMKD__METHOD__VMKD_PORTGROUP_REMOVE;
        } else if (!strcmp(cmd, "portgroup-set") && pos[0]) {
            m = KVC__VMKD__METHOD__VMKD_PORTGROUP_SET;
        }
        if (!m) {
            usage();
            ret = 2;
        } else if ((st = kvc_rpc_call_sync(cl, m, rq, &kvc__vmkd__vswitch_list__descriptor,
                                           TIMEOUT_MS, &resp, &err)) != KVC_RPC_OK) {
            ret = fail(st, err);
        } else {
            const Kvc__Vmkd__VswitchList *l = (const void *)resp;
            for (size_t k = 0; k < l->n_vswitches; k++)
                printf("vswitch name=\"%s\" ports=%u used_ports=%u mtu=%u\n",
                       l->vswitches[k]->name, l->vswitches[k]->ports,
                       l->vswitches[k]->used_ports, l->vswitches[k]->mtu);
            for (size_t k = 0; k < l->n_portgroups; k++)
                printf("portgroup name=\"%s\" vswitch=\"%s\" vlan=%u vni=%u ports=%u\n",
                       l->portgroups[k]->name, l->portgroups[k]->vswitch,
                       l->portgroups[k]->vlan, l->portgroups[k]->vni, l->portgroups[k]->ports);
        }
    } else if (strcmp(cmd, "watch") == 0) {
        Kvc__Vmkd__SubscribeRequest rq = KVC__VMKD__SUBSCRIBE_REQUEST__INIT;
        st = kvc_rpc_call_sync(cl, KVC__VMKD__METHOD__VMKD_SUBSCRIBE, &rq.base,
                               &kvc__vmkd__subscribe_reply__descriptor, TIMEOUT_MS, &resp, &err);
        if (st != KVC_RPC_OK) {
            ret = fail(st, err);
        } else {
            printf("subscribed\n");
            fflush(stdout);
            watching = true;
            event_base_dispatch(base);
        }
    } else {
        usage();
        ret = 2;
    }
    watching = false;
    if (resp)
        protobuf_c_message_free_unpacked(resp, NULL);
    free(err);
    kvc_rpc_client_free(cl);
    event_base_free(base);
    return ret;
}
