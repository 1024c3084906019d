/* KVCENTER-MIB from vpxd's database (see snmp_provider.h).
 *
 * The subagent asks for a snapshot when a request comes in and its copy is
 * older than refresh_ms; three read-only queries build it (VMs with their
 * host's name and NICs, hosts with their cluster and VM count, clusters with
 * HA/DRS settings and counts).  A timer every two seconds takes a snapshot
 * too and sends the notifications its differences from the previous one
 * imply (power, guest heartbeat, host connection), so traps follow the
 * inventory whichever module changed it. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

#include "log.h"
#include "vpxd/db.h"
#include "vpxd/snmp/snmp_agent.h"
#include "vpxd/snmp_provider.h"
#include "vpxd/vpxd.h"

KVC_LOG_MODULE(snmpdb);

#define DIFF_MS 2000

struct vpxd_snmp {
    struct vpxd *vx;
    struct kvc_snmp_agent *agent;
    struct event *tick;
    struct kvc_snmp_snapshot last;
    bool have_last;
};

static void
cpy(char *dst, size_t size, const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    snprintf(dst, size, "%s", s ? s : "");
}

static uint32_t
num(const json_t *o, const char *key)
{
    json_int_t v = json_integer_value(json_object_get(o, key));
    return v < 0 ? 0 : v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

static const char *
power_text(const char *db)
{
    if (!db)
        return "poweredOff";
    if (!strcmp(db, "POWERED_ON"))
        return "poweredOn";
    if (!strcmp(db, "SUSPENDED"))
        return "suspended";
    return "poweredOff";
}

static const char *
guest_text(const char *tools)
{
    if (!tools)
        return "unknown";
    if (!strcmp(tools, "RUNNING"))
        return "running";
    if (!strcmp(tools, "NOT_RUNNING"))
        return "notRunning";
    return "unknown";
}

static bool
is_connected(const json_t *nic)
{
    const char *st = json_string_value(json_object_get(nic, "state"));
    return st && !strcmp(st, "CONNECTED");
}

static void
parse_mac(const char *s, uint8_t mac[6])
{
    unsigned int b[6];
    if (s && sscanf(s, "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) == 6)
        for (int k = 0; k < 6; k++)
            mac[k] = (uint8_t)b[k];
}

static int
snapshot(void *ctx, struct kvc_snmp_snapshot *s)
{
    struct vpxd_snmp *p = ctx;
    struct vdb *db = p->vx->db;
    json_t *vms = NULL, *hosts = NULL, *clusters = NULL;
    size_t i, nnic = 0;
    json_t *r;
    int rc;

    memset(s, 0, sizeof *s);
    if ((rc = vdb_query_json(db, &vms,
            "SELECT v.id, e.name, v.config_path, v.guest_os, v.memory_mib, v.power_state,"
            " v.tools_run_state, v.cpu_count, v.instance_uuid, he.name AS host_name,"
            " v.hardware AS hardware_json"
            " FROM vm v JOIN entity e ON e.id = v.id LEFT JOIN entity he ON he.id = v.host",
            "")) < 0)
        goto out;
    if ((rc = vdb_query_json(db, &hosts,
            "SELECT h.id, e.name, h.connection_state, h.cpu_count, h.cpu_mhz, h.memory_bytes,"
            " ce.name AS cluster_name,"
            " (SELECT count(*) FROM vm WHERE vm.host = h.id) AS vm_count"
            " FROM host h JOIN entity e ON e.id = h.id LEFT JOIN entity ce ON ce.id = h.cluster",
            "")) < 0)
        goto out;
    /* DRS's automation level lives in drs_config (migration 0005); a
     * database without it reports fullyAutomated. */
    if (vdb_query_json(db, &clusters,
            "SELECT c.id, e.name, c.ha_enabled, c.drs_enabled,"
            " (SELECT automation FROM drs_config d WHERE d.cluster = c.id) AS automation,"
            " (SELECT count(*) FROM host WHERE host.cluster = c.id) AS host_count,"
            " (SELECT count(*) FROM vm WHERE vm.cluster = c.id) AS vm_count"
            " FROM cluster c JOIN entity e ON e.id = c.id", "") < 0 &&
        (rc = vdb_query_json(db, &clusters,
            "SELECT c.id, e.name, c.ha_enabled, c.drs_enabled,"
            " (SELECT count(*) FROM host WHERE host.cluster = c.id) AS host_count,"
            " (SELECT count(*) FROM vm WHERE vm.cluster = c.id) AS vm_count"
            " FROM cluster c JOIN entity e ON e.id = c.id", "")) < 0)
        goto out;
    json_array_foreach(vms, i, r) {
        json_t *nics = json_object_get(json_object_get(r, "hardware"), "nics");
        nnic += json_is_object(nics) ? json_object_size(nics)
                                     : json_is_array(nics) ? json_array_size(nics) : 0;
    }
    s->vms = calloc(json_array_size(vms) + 1, sizeof *s->vms);
    s->nics = calloc(nnic + 1, sizeof *s->nics);
    s->hosts = calloc(json_array_size(hosts) + 1, sizeof *s->hosts);
    s->clusters = calloc(json_array_size(clusters) + 1, sizeof *s->clusters);
    if (!s->vms || !s->nics || !s->hosts || !s->clusters) {
        rc = -ENOMEM;
        goto out;
    }
    json_array_foreach(vms, i, r) {
        struct kvc_snmp_vm *m = &s->vms[s->nvms];
        cpy(m->id, sizeof m->id, r, "id");
        if (!(m->index = kvc_snmp_index_of(m->id)))
            continue;
        s->nvms++;
        cpy(m->name, sizeof m->name, r, "name");
        cpy(m->config_file, sizeof m->config_file, r, "config_path");
        cpy(m->guest_os, sizeof m->guest_os, r, "guest_os");
        snprintf(m->power_state, sizeof m->power_state, "%s",
                 power_text(json_string_value(json_object_get(r, "power_state"))));
        snprintf(m->guest_state, sizeof m->guest_state, "%s",
                 guest_text(json_string_value(json_object_get(r, "tools_run_state"))));
        cpy(m->uuid, sizeof m->uuid, r, "instance_uuid");
        cpy(m->host, sizeof m->host, r, "host_name");
        m->memory_mb = num(r, "memory_mib");
        m->vcpus = num(r, "cpu_count");
        /* NICs: an object keyed by device id, or an array. */
        json_t *nics = json_object_get(json_object_get(r, "hardware"), "nics");
        json_t *n;
        const char *key;
        size_t j = 0;
        void *tmp;
        if (json_is_array(nics)) {
            size_t k;
            json_array_foreach(nics, k, n) {
                struct kvc_snmp_nic *c = &s->nics[s->nnics++];
                c->vm_index = m->index;
                c->nic_index = (uint32_t)++j;
                snprintf(c->label, sizeof c->label, "Network adapter %u", (unsigned)j);
                cpy(c->portgroup, sizeof c->portgroup, n, "network_name");
                c->connected = is_connected(n);
                parse_mac(json_string_value(json_object_get(n, "mac_address")), c->mac);
            }
        } else if (json_is_object(nics)) {
            json_object_foreach_safe(nics, tmp, key, n) {
                struct kvc_snmp_nic *c = &s->nics[s->nnics++];
                c->vm_index = m->index;
                c->nic_index = (uint32_t)++j;
                const char *label = json_string_value(json_object_get(n, "label"));
                if (label)
                    snprintf(c->label, sizeof c->label, "%s", label);
                else
                    snprintf(c->label, sizeof c->label, "Network adapter %u", (unsigned)j);
                cpy(c->portgroup, sizeof c->portgroup, n, "network_name");
                c->connected = is_connected(n);
                parse_mac(json_string_value(json_object_get(n, "mac_address")), c->mac);
            }
        }
    }
    json_array_foreach(hosts, i, r) {
        struct kvc_snmp_host *h = &s->hosts[s->nhosts];
        cpy(h->id, sizeof h->id, r, "id");
        if (!(h->index = kvc_snmp_index_of(h->id)))
            continue;
        s->nhosts++;
        cpy(h->name, sizeof h->name, r, "name");
        const char *st = json_string_value(json_object_get(r, "connection_state"));
        h->state = st && !strcmp(st, "CONNECTED") ? KVC_SNMP_HOST_CONNECTED
                 : st && !strcmp(st, "NOT_RESPONDING") ? KVC_SNMP_HOST_NOT_RESPONDING
                 : KVC_SNMP_HOST_DISCONNECTED;
        uint64_t cap = (uint64_t)num(r, "cpu_count") * num(r, "cpu_mhz");
        h->cpu_capacity_mhz = cap > UINT32_MAX ? UINT32_MAX : (uint32_t)cap;
        json_int_t mem = json_integer_value(json_object_get(r, "memory_bytes"));
        h->mem_capacity_mb = mem > 0 ? (uint32_t)(mem >> 20) : 0;
        h->vm_count = num(r, "vm_count");
        cpy(h->cluster, sizeof h->cluster, r, "cluster_name");
    }
    json_array_foreach(clusters, i, r) {
        struct kvc_snmp_cluster *c = &s->clusters[s->nclusters];
        cpy(c->id, sizeof c->id, r, "id");
        if (!(c->index = kvc_snmp_index_of(c->id)))
            continue;
        s->nclusters++;
        cpy(c->name, sizeof c->name, r, "name");
        c->ha_enabled = num(r, "ha_enabled") != 0;
        c->ha_status = c->ha_enabled ? KVC_SNMP_HA_GREEN : KVC_SNMP_HA_DISABLED;
        c->drs_enabled = num(r, "drs_enabled") != 0;
        const char *a = json_string_value(json_object_get(r, "automation"));
        c->drs_behavior = a && !strcmp(a, "manual") ? KVC_SNMP_DRS_MANUAL
                        : a && !strcmp(a, "partiallyAutomated") ? KVC_SNMP_DRS_PARTIAL
                        : KVC_SNMP_DRS_FULL;
        c->host_count = num(r, "host_count");
        c->vm_count = num(r, "vm_count");
    }
    rc = 0;
out:
    if (rc) {
        kvc_warn("inventory snapshot: %s", strerror(-rc));
        kvc_snmp_snapshot_clear(s);
    }
    json_decref(vms);
    json_decref(hosts);
    json_decref(clusters);
    return rc;
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct vpxd_snmp *p = arg;
    struct kvc_snmp_snapshot cur;
    (void)fd;
    (void)what;

    if (snapshot(p, &cur))
        return;
    if (p->have_last)
        kvc_snmp_agent_notify_diff(p->agent, &p->last, &cur);
    kvc_snmp_snapshot_clear(&p->last);
    p->last = cur;
    p->have_last = true;
}

int
vpxd_snmp_start(struct vpxd *vx, const char *agentx, int ping_s, struct vpxd_snmp **out)
{
    struct vpxd_snmp *p = calloc(1, sizeof *p);
    int rc;

    if (!p)
        return -ENOMEM;
    p->vx = vx;
    struct kvc_snmp_config cfg = {
        .agentx_socket = agentx,
        .ping_interval = ping_s,
        .prod_name = "kvcenter",
        .prod_version = PACKAGE_VERSION,
        .prod_build = PACKAGE_VERSION,
    };
    struct kvc_snmp_provider pv = { .ctx = p, .snapshot = snapshot };
    if ((rc = kvc_snmp_agent_start(vx->base, &cfg, &pv, &p->agent))) {
        free(p);
        return rc;
    }
    struct timeval tv = { DIFF_MS / 1000, (DIFF_MS % 1000) * 1000 };
    p->tick = event_new(vx->base, -1, EV_PERSIST, on_tick, p);
    if (!p->tick || event_add(p->tick, &tv)) {
        vpxd_snmp_stop(p);
        return -ENOMEM;
    }
    on_tick(-1, 0, p);          /* the baseline for the first diff */
    kvc_info("SNMP subagent started (AgentX master %s)", agentx);
    *out = p;
    return 0;
}

void
vpxd_snmp_stop(struct vpxd_snmp *p)
{
    if (!p)
        return;
    if (p->tick)
        event_free(p->tick);
    kvc_snmp_agent_stop(p->agent);
    kvc_snmp_snapshot_clear(&p->last);
    free(p);
}
