/* kvc-snmp-harness: the SNMP subagent on a libevent loop, fed from a JSON
 * inventory file instead of vpxd's database.  Tests use it to drive the
 * tables and notifications; operators can use it to try an NMS against
 * KVCENTER-MIB without a cluster.
 *
 *   kvc-snmp-harness --agentx SOCKET [--data FILE.json] [--synthetic-vms N]
 *                    [--ping SECONDS] [--log FILE]
 *
 * SIGHUP re-reads FILE: VM power and heartbeat changes and host state
 * changes become notifications, and each entry of its "events" array is
 * sent once.  SIGTERM stops.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

#include "log.h"
#include "vpxd/snmp/snmp_agent.h"

KVC_LOG_MODULE(snmph);

struct harness {
    const char *path;
    unsigned int synthetic;
    struct kvc_snmp_snapshot cur;
    uint64_t gen;
    struct kvc_snmp_agent *agent;
    struct event_base *base;
    json_t *events;
};

static void
cpy(char *dst, size_t size, json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    snprintf(dst, size, "%s", s ? s : "");
}

static uint32_t
num(json_t *o, const char *key)
{
    json_int_t v = json_integer_value(json_object_get(o, key));
    return v < 0 ? 0 : v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

static int
host_state(const char *s)
{
    if (!strcmp(s, "CONNECTED"))
        return KVC_SNMP_HOST_CONNECTED;
    if (!strcmp(s, "NOT_RESPONDING"))
        return KVC_SNMP_HOST_NOT_RESPONDING;
    return KVC_SNMP_HOST_DISCONNECTED;
}

static int
parse_mac(const char *s, uint8_t mac[6])
{
    unsigned int b[6];
    if (!s || sscanf(s, "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) != 6)
        return -EINVAL;
    for (int k = 0; k < 6; k++)
        mac[k] = b[k];
    return 0;
}

static int
load(struct harness *h, struct kvc_snmp_snapshot *s)
{
    json_error_t jerr;
    json_t *root = NULL;
    size_t nvm = 0, nnic = 0;
    memset(s, 0, sizeof *s);
    if (h->path) {
        root = json_load_file(h->path, 0, &jerr);
        if (!root) {
            kvc_err("%s:%d: %s", h->path, jerr.line, jerr.text);
            return -EINVAL;
        }
    }
    json_t *vms = json_object_get(root, "vms");
    json_t *hosts = json_object_get(root, "hosts");
    json_t *clusters = json_object_get(root, "clusters");
    size_t want_vms = json_array_size(vms) + h->synthetic;
    size_t want_nics = h->synthetic;
    size_t i;
    json_t *v;
    json_array_foreach(vms, i, v)
        want_nics += json_array_size(json_object_get(v, "nics"));
    s->vms = calloc(want_vms ? want_vms : 1, sizeof *s->vms);
    s->nics = calloc(want_nics ? want_nics : 1, sizeof *s->nics);
    s->hosts = calloc(json_array_size(hosts) + 1, sizeof *s->hosts);
    s->clusters = calloc(json_array_size(clusters) + 1, sizeof *s->clusters);
    if (!s->vms || !s->nics || !s->hosts || !s->clusters) {
        json_decref(root);
        kvc_snmp_snapshot_clear(s);
        return -ENOMEM;
    }
    json_array_foreach(vms, i, v) {
        struct kvc_snmp_vm *m = &s->vms[nvm++];
        cpy(m->id, sizeof m->id, v, "id");
        m->index = kvc_snmp_index_of(m->id);
        cpy(m->name, sizeof m->name, v, "name");
        cpy(m->config_file, sizeof m->config_file, v, "config_file");
        cpy(m->guest_os, sizeof m->guest_os, v, "guest_os");
        cpy(m->power_state, sizeof m->power_state, v, "power_state");
        cpy(m->guest_state, sizeof m->guest_state, v, "guest_state");
        cpy(m->uuid, sizeof m->uuid, v, "uuid");
        cpy(m->host, sizeof m->host, v, "host");
        m->memory_mb = num(v, "memory_mb");
        m->vcpus = num(v, "vcpus");
        size_t j;
        json_t *n;
        json_array_foreach(json_object_get(v, "nics"), j, n) {
            struct kvc_snmp_nic *c = &s->nics[nnic++];
            c->vm_index = m->index;
            c->nic_index = j + 1;
            snprintf(c->label, sizeof c->label, "Network adapter %u", (unsigned)(j + 1));
            cpy(c->portgroup, sizeof c->portgroup, n, "portgroup");
            c->connected = json_is_true(json_object_get(n, "connected"));
            parse_mac(json_string_value(json_object_get(n, "mac")), c->mac);
        }
    }
    for (unsigned int k = 0; k < h->synthetic; k++) {
        struct kvc_snmp_vm *m = &s->vms[nvm++];
        snprintf(m->id, sizeof m->id, "vm-%u", 100000 + k);
        m->index = 100000 + k;
        snprintf(m->name, sizeof m->name, "synthetic-%05u", k);
        snprintf(m->config_file, sizeof m->config_file, "[ds1] synthetic-%05u/synthetic-%05u.vmx", k, k);
        snprintf(m->guest_os, sizeof m->guest_os, "otherLinux64Guest");
        snprintf(m->power_state, sizeof m->power_state, k % 3 ? "poweredOn" : "poweredOff");
        snprintf(m->guest_state, sizeof m->guest_state, k % 3 ? "running" : "notRunning");
        snprintf(m->uuid, sizeof m->uuid, "564d0000-0000-4000-8000-%012u", k);
        snprintf(m->host, sizeof m->host, "esx%u.example", k % 16);
        m->memory_mb = 512 + (k % 8) * 256;
        m->vcpus = 1 + k % 4;
        struct kvc_snmp_nic *c = &s->nics[nnic++];
        c->vm_index = m->index;
        c->nic_index = 1;
        snprintf(c->label, sizeof c->label, "Network adapter 1");
        snprintf(c->portgroup, sizeof c->portgroup, "VM Network");
        c->connected = true;
        uint8_t mac[6] = { 0x52, 0x54, 0x00, (uint8_t)(k >> 16), (uint8_t)(k >> 8), (uint8_t)k };
        memcpy(c->mac, mac, 6);
    }
    s->nvms = nvm;
    s->nnics = nnic;
    json_array_foreach(hosts, i, v) {
        struct kvc_snmp_host *m = &s->hosts[s->nhosts++];
        cpy(m->id, sizeof m->id, v, "id");
        m->index = kvc_snmp_index_of(m->id);
        cpy(m->name, sizeof m->name, v, "name");
        char st[32];
        cpy(st, sizeof st, v, "state");
        m->state = host_state(st);
        m->cpu_capacity_mhz = num(v, "cpu_capacity_mhz");
        m->cpu_usage_mhz = num(v, "cpu_usage_mhz");
        m->mem_capacity_mb = num(v, "mem_capacity_mb");
        m->mem_usage_mb = num(v, "mem_usage_mb");
        m->vm_count = num(v, "vm_count");
        cpy(m->cluster, sizeof m->cluster, v, "cluster");
    }
    json_array_foreach(clusters, i, v) {
        struct kvc_snmp_cluster *m = &s->clusters[s->nclusters++];
        cpy(m->id, sizeof m->id, v, "id");
        m->index = kvc_snmp_index_of(m->id);
        cpy(m->name, sizeof m->name, v, "name");
        m->ha_enabled = json_is_true(json_object_get(v, "ha_enabled"));
        m->drs_enabled = json_is_true(json_object_get(v, "drs_enabled"));
        char st[32];
        cpy(st, sizeof st, v, "ha_status");
        m->ha_status = !strcmp(st, "green") ? KVC_SNMP_HA_GREEN
                       : !strcmp(st, "yellow") ? KVC_SNMP_HA_YELLOW
                       : !strcmp(st, "red") ? KVC_SNMP_HA_RED : KVC_SNMP_HA_DISABLED;
        cpy(st, sizeof st, v, "drs_behavior");
        m->drs_behavior = !strcmp(st, "fullyAutomated") ? KVC_SNMP_DRS_FULL
                          : !strcmp(st, "partiallyAutomated") ? KVC_SNMP_DRS_PARTIAL
                          : KVC_SNMP_DRS_MANUAL;
        m->host_count = num(v, "host_count");
        m->vm_count = num(v, "vm_count");
    }
    json_decref(h->events);
    h->events = json_incref(json_object_get(root, "events"));
    json_decref(root);
    return 0;
}

static int
copy_snapshot(const struct kvc_snmp_snapshot *src, struct kvc_snmp_snapshot *dst)
{
    memset(dst, 0, sizeof *dst);
#define DUP(f, n)                                                             \
    if (src->n) {                                                             \
        dst->f = malloc(src->n * sizeof *src->f);                             \
        if (!dst->f)                                                          \
            goto fail;                                                        \
        memcpy(dst->f, src->f, src->n * sizeof *src->f);                      \
        dst->n = src->n;                                                      \
    }
    DUP(vms, nvms);
    DUP(nics, nnics);
    DUP(hosts, nhosts);
    DUP(clusters, nclusters);
#undef DUP
    return 0;
fail:
    kvc_snmp_snapshot_clear(dst);
    return -ENOMEM;
}

static int
provide(void *ctx, struct kvc_snmp_snapshot *out)
{
    struct harness *h = ctx;
    return copy_snapshot(&h->cur, out);
}

static uint64_t
generation(void *ctx)
{
    return ((struct harness *)ctx)->gen;
}

static void
send_events(struct harness *h)
{
    static const char *const names[] = {
        [KVC_TRAP_VM_POWERED_ON] = "vm_powered_on", [KVC_TRAP_VM_POWERED_OFF] = "vm_powered_off",
        [KVC_TRAP_VM_HEARTBEAT_LOST] = "vm_heartbeat_lost",
        [KVC_TRAP_VM_HEARTBEAT_RESTORED] = "vm_heartbeat_restored",
        [KVC_TRAP_VM_SUSPENDED] = "vm_suspended",
        [KVC_TRAP_HOST_NOT_RESPONDING] = "host_not_responding",
        [KVC_TRAP_HOST_CONNECTED] = "host_connected",
        [KVC_TRAP_HA_VM_RESTARTED] = "ha_vm_restarted", [KVC_TRAP_ALARM_RAISED] = "alarm_raised",
    };
    size_t i;
    json_t *ev;
    json_array_foreach(h->events, i, ev) {
        const char *t = json_string_value(json_object_get(ev, "trap"));
        struct kvc_snmp_event e = {
            .entity_name = json_string_value(json_object_get(ev, "entity_name")),
            .entity_id = json_string_value(json_object_get(ev, "entity_id")),
            .host_name = json_string_value(json_object_get(ev, "host_name")),
            .alarm_name = json_string_value(json_object_get(ev, "alarm_name")),
            .alarm_severity = (int)json_integer_value(json_object_get(ev, "alarm_severity")),
            .message = json_string_value(json_object_get(ev, "message")),
        };
        for (int k = 1; k < (int)(sizeof names / sizeof *names); k++)
            if (t && !strcmp(t, names[k]))
                e.trap = k;
        int r = kvc_snmp_agent_notify(h->agent, &e);
        if (r < 0)
            kvc_warn("event %s: %s", t ? t : "?", strerror(-r));
    }
}

static void
on_hup(evutil_socket_t sig, short what, void *arg)
{
    struct harness *h = arg;
    struct kvc_snmp_snapshot next;
    if (load(h, &next) < 0) {
        kvc_warn("reload failed; keeping the previous inventory");
        return;
    }
    kvc_snmp_agent_notify_diff(h->agent, &h->cur, &next);
    kvc_snmp_snapshot_clear(&h->cur);
    h->cur = next;
    h->gen++;
    send_events(h);
    kvc_info("reloaded: generation %llu, %zu VMs, %zu hosts",
             (unsigned long long)h->gen, h->cur.nvms, h->cur.nhosts);
}

static void
on_term(evutil_socket_t sig, short what, void *arg)
{
    event_base_loopbreak(arg);
}

static void
on_status(evutil_socket_t fd, short what, void *arg)
{
    struct harness *h = arg;
    static int last = -1;
    int c = kvc_snmp_agent_connected(h->agent);
    if (c != last)
        kvc_info("master %s", c ? "attached" : "detached");
    last = c;
}

/* net-snmp keeps some allocations for the life of the process. */
const char *__lsan_default_suppressions(void);
const char *
__lsan_default_suppressions(void)
{
    return "leak:libnetsnmp\n";
}

const char *__lsan_default_options(void);
const char *
__lsan_default_options(void)
{
    return "print_suppressions=0";
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "agentx", required_argument, NULL, 'a' },
        { "data", required_argument, NULL, 'd' },
        { "synthetic-vms", required_argument, NULL, 'n' },
        { "ping", required_argument, NULL, 'p' },
        { "log", required_argument, NULL, 'L' },
        { NULL, 0, NULL, 0 },
    };
    struct harness h = { 0 };
    struct kvc_snmp_config cfg = { .prod_name = "kvcenter", .prod_version = PACKAGE_VERSION,
                                   .prod_build = "harness", .ping_interval = 5 };
    int opt;
    kvc_log_init("kvc-snmp-harness");
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'a': cfg.agentx_socket = optarg; break;
        case 'd': h.path = optarg; break;
        case 'n': h.synthetic = strtoul(optarg, NULL, 10); break;
        case 'p': cfg.ping_interval = atoi(optarg); break;
        case 'L':
            if (kvc_log_open(optarg) < 0)
                return 1;
            break;
        default:
            fprintf(stderr, "usage: kvc-snmp-harness --agentx SOCKET [--data FILE.json] "
                            "[--synthetic-vms N] [--ping SECONDS] [--log FILE]\n");
            return 2;
        }
    }
    if (load(&h, &h.cur) < 0)
        return 1;
    h.gen = 1;
    signal(SIGPIPE, SIG_IGN);
    h.base = event_base_new();
    if (!h.base)
        return 1;
    struct kvc_snmp_provider pv = { .ctx = &h, .snapshot = provide, .generation = generation };
    int r = kvc_snmp_agent_start(h.base, &cfg, &pv, &h.agent);
    if (r < 0) {
        kvc_err("cannot start the subagent: %s", strerror(-r));
        return 1;
    }
    struct event *hup = evsignal_new(h.base, SIGHUP, on_hup, &h);
    struct event *term = evsignal_new(h.base, SIGTERM, on_term, h.base);
    struct event *intr = evsignal_new(h.base, SIGINT, on_term, h.base);
    struct event *status = event_new(h.base, -1, EV_PERSIST, on_status, &h);
    struct timeval tick = { 0, 100000 };
    event_add(hup, NULL);
    event_add(term, NULL);
    event_add(intr, NULL);
    event_add(status, &tick);
    kvc_info("ready: %zu VMs, %zu hosts", h.cur.nvms, h.cur.nhosts);
    on_status(-1, 0, &h);
    event_base_dispatch(h.base);
    kvc_info("stopping");
    event_free(hup);
    event_free(term);
    event_free(intr);
    event_free(status);
    kvc_snmp_agent_stop(h.agent);
    event_base_free(h.base);
    kvc_snmp_snapshot_clear(&h.cur);
    json_decref(h.events);
    return 0;
}
