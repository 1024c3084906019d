/* vmkd's vSwitch: configuration, VM ports (see vmkd_net.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "configfile.h"
#include "log.h"
#include "vmkd_net.h"

KVC_LOG_MODULE(net);

const struct kvc_cfg_key vmkd_net_vswitch_keys[] = {
    KVC_CFG_KEY_STRING("name", "vSwitch0", "the standard switch's name"),
    KVC_CFG_KEY_INT("mtu", "1500", 68, 9000, "MTU of the switch"),
    KVC_CFG_KEY_STRING("vxlan-local", NULL,
                       "IPv4 address the VXLAN uplink binds to (unset: no uplink)"),
    KVC_CFG_KEY_INT("vxlan-port", "4789", 1, 65535, "UDP port of the VXLAN uplink"),
    KVC_CFG_KEY_END,
};

#define POLICY_WORDS "default", "accept", "reject"

const struct kvc_cfg_key vmkd_net_portgroup_keys[] = {
    KVC_CFG_KEY_INT("vlan", "0", 0, 4095, "VLAN ID: 0 untagged, 1-4094, 4095 trunk"),
    KVC_CFG_KEY_INT("vni", "0", 0, 16777215, "VXLAN VNI: 0 this host only, else distributed"),
    KVC_CFG_KEY_ENUM("promiscuous", "default", "promiscuous mode", POLICY_WORDS),
    KVC_CFG_KEY_ENUM("mac-changes", "default", "MAC address changes", POLICY_WORDS),
    KVC_CFG_KEY_ENUM("forged-transmits", "default", "forged transmits", POLICY_WORDS),
    KVC_CFG_KEY_INT("shaping-average", "0", 0, INT64_C(100000000000),
                    "traffic shaping average bandwidth, bit/s (0: no shaping)"),
    KVC_CFG_KEY_INT("shaping-peak", "0", 0, INT64_C(100000000000),
                    "peak bandwidth, bit/s (0: the average)"),
    KVC_CFG_KEY_SIZE("shaping-burst", "0", 0, INT64_C(1) << 40, "burst size, bytes (0: 100 ms of average)"),
    KVC_CFG_KEY_LIST("vteps", NULL, "remote VTEPs of the VNI, \"IP\" or \"IP:PORT\""),
    KVC_CFG_KEY_END,
};

struct vm_port {
    char vm_id[VMKD_ID_MAX + 1];
    char pg[VS_NAME_MAX];
    struct vs_port *port;
};

struct vmkd_net {
    struct vs_switch *sw;
    struct vm_port *ports;
    size_t nports, cap;
};

static void policy(const struct kvc_cfg_section *s, const char *key, bool *v)
{
    int i = kvc_cfg_enum_index(s, key);
    if (i == 1)
        *v = true;
    else if (i == 2)
        *v = false;
}

static int vtep_parse(const char *item, char *ip, size_t iplen, uint16_t *port)
{
    char buf[64];
    snprintf(buf, sizeof(buf), "%s", item);
    char *colon = strchr(buf, ':');
    *port = VS_VXLAN_PORT;
    if (colon) {
        *colon = 0;
        char *end;
        long p = strtol(colon + 1, &end, 10);
        if (*end || p < 1 || p > 65535)
            return -EINVAL;
        *port = (uint16_t)p;
    }
    struct in_addr a;
    if (inet_pton(AF_INET, buf, &a) != 1)
        return -EINVAL;
    snprintf(ip, iplen, "%s", buf);
    return 0;
}

static int pg_config(const struct kvc_cfg_section *s, struct vs_pg_config *pc, char *why, size_t len)
{
    uint32_t vni = (uint32_t)kvc_cfg_int(s, "vni");
    vs_pg_config_default(pc, vni != 0);
    pc->vlan = (uint16_t)kvc_cfg_int(s, "vlan");
    pc->vni = vni;
    policy(s, "promiscuous", &pc->security.allow_promiscuous);
    policy(s, "mac-changes", &pc->security.allow_mac_changes);
    policy(s, "forged-transmits", &pc->security.allow_forged_transmits);
    uint64_t avg = (uint64_t)kvc_cfg_int(s, "shaping-average");
    if (avg) {
        pc->shaping.enabled = true;
        pc->shaping.average_bps = avg;
        pc->shaping.peak_bps = kvc_cfg_int(s, "shaping-peak") ? (uint64_t)kvc_cfg_int(s, "shaping-peak") : avg;
        pc->shaping.burst_bytes = kvc_cfg_size(s, "shaping-burst") ? kvc_cfg_size(s, "shaping-burst")
                                                                   : avg / 80;
        if (pc->shaping.peak_bps < avg) {
            snprintf(why, len, "[portgroup \"%s\"] shaping-peak is below shaping-average",
                     kvc_cfg_instance(s));
            return -EINVAL;
        }
    }
    for (size_t i = 0; i < kvc_cfg_list_len(s, "vteps"); i++) {
        char ip[64];
        uint16_t port;
        if (vtep_parse(kvc_cfg_list_item(s, "vteps", i), ip, sizeof(ip), &port) < 0) {
            snprintf(why, len, "[portgroup \"%s\"] vteps: '%s' is not IP or IP:PORT",
                     kvc_cfg_instance(s), kvc_cfg_list_item(s, "vteps", i));
            return -EINVAL;
        }
        if (!vni) {
            snprintf(why, len, "[portgroup \"%s\"] vteps need a vni", kvc_cfg_instance(s));
            return -EINVAL;
        }
    }
    if (strlen(kvc_cfg_instance(s)) >= VS_NAME_MAX) {
        snprintf(why, len, "[portgroup \"%s\"]: name too long", kvc_cfg_instance(s));
        return -EINVAL;
    }
    return 0;
}

int vmkd_net_check(const struct kvc_config *cfg, char *why, size_t len)
{
    const struct kvc_cfg_section *sv = kvc_config_section(cfg, "vswitch");
    const char *local = kvc_cfg_string(sv, "vxlan-local");
    struct in_addr a;
    if (local && *local && inet_pton(AF_INET, local, &a) != 1) {
        snprintf(why, len, "[vswitch] vxlan-local: '%s' is not an IPv4 address", local);
        return -EINVAL;
    }
    for (size_t i = 0; i < kvc_config_count(cfg, "portgroup"); i++) {
        struct vs_pg_config pc;
        int rc = pg_config(kvc_config_nth(cfg, "portgroup", i), &pc, why, len);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int vmkd_net_new(const struct kvc_config *cfg, struct vmkd_net **out, char *why, size_t len)
{
    *out = NULL;
    int rc = vmkd_net_check(cfg, why, len);
    if (rc < 0)
        return rc;
    struct vmkd_net *n = calloc(1, sizeof(*n));
    if (!n)
        return -ENOMEM;
    const struct kvc_cfg_section *sv = kvc_config_section(cfg, "vswitch");
    struct vs_switch_opts so = {
        .name = kvc_cfg_string(sv, "name"),
        .mtu = (unsigned)kvc_cfg_int(sv, "mtu"),
    };
    if ((rc = vs_create(&so, &n->sw)) < 0) {
        snprintf(why, len, "vSwitch %s: %s", so.name, strerror(-rc));
        goto err;
    }
    size_t npg = kvc_config_count(cfg, "portgroup");
    for (size_t i = 0; i < npg; i++) {
        const struct kvc_cfg_section *s = kvc_config_nth(cfg, "portgroup", i);
        struct vs_pg_config pc;
        pg_config(s, &pc, why, len);
        if ((rc = vs_pg_add(n->sw, kvc_cfg_instance(s), &pc)) < 0) {
            snprintf(why, len, "port group %s: %s", kvc_cfg_instance(s), strerror(-rc));
            goto err;
        }
        for (size_t k = 0; k < kvc_cfg_list_len(s, "vteps"); k++) {
            char ip[64];
            uint16_t port;
            vtep_parse(kvc_cfg_list_item(s, "vteps", k), ip, sizeof(ip), &port);
            if ((rc = vs_vtep_add(n->sw, pc.vni, ip, port)) < 0) {
                snprintf(why, len, "port group %s: VTEP %s: %s", kvc_cfg_instance(s), ip,
                         strerror(-rc));
                goto err;
            }
        }
    }
    const char *local = kvc_cfg_string(sv, "vxlan-local");
    if (local && *local) {
        struct vs_port *up;
        if ((rc = vs_uplink_add_vxlan(n->sw, "vxlan0", local, (uint16_t)kvc_cfg_int(sv, "vxlan-port"),
                                      &up)) < 0) {
            snprintf(why, len, "VXLAN uplink on %s:%d: %s", local, (int)kvc_cfg_int(sv, "vxlan-port"),
                     strerror(-rc));
            goto err;
        }
    }
    if ((rc = vs_start(n->sw)) < 0) {
        snprintf(why, len, "vSwitch data path: %s", strerror(-rc));
        goto err;
    }
    kvc_info("vSwitch %s: MTU %u, %zu port group(s)%s%s", so.name, vs_get_mtu(n->sw), npg,
             local && *local ? ", VXLAN uplink on " : "", local && *local ? local : "");
    *out = n;
    return 0;
err:
    vmkd_net_free(n);
    return rc;
}

void vmkd_net_free(struct vmkd_net *n)
{
    if (!n)
        return;
    vs_destroy(n->sw);
    free(n->ports);
    free(n);
}

static struct vm_port *find(struct vmkd_net *n, const char *vm_id)
{
    for (size_t i = 0; i < n->nports; i++)
        if (!strcmp(n->ports[i].vm_id, vm_id))
            return &n->ports[i];
    return NULL;
}

static int port_add(void *ctx, const char *vm_id, const char *pg, const char *mac_s, int fds[3],
                    char *why, size_t len)
{
    struct vmkd_net *n = ctx;
    uint8_t mac[6];
    if (!mac_s || vs_parse_mac(mac_s, mac) < 0 || (mac[0] & 1)) {
        snprintf(why, len, "NIC MAC '%s' is not a unicast MAC", mac_s ? mac_s : "");
        return -EINVAL;
    }
    struct vs_pg_config pc;
    if (vs_pg_get(n->sw, pg, &pc) < 0) {
        snprintf(why, len, "port group '%s' does not exist on this host", pg);
        return -ENOENT;
    }
    if (find(n, vm_id)) {
        snprintf(why, len, "VM %s already has a port", vm_id);
        return -EEXIST;
    }
    if (n->nports == n->cap) {
        size_t c = n->cap ? n->cap * 2 : 8;
        struct vm_port *p = realloc(n->ports, c * sizeof(*p));
        if (!p)
            return -ENOMEM;
        n->ports = p;
        n->cap = c;
    }
    struct vm_port *vp = &n->ports[n->nports];
    memset(vp, 0, sizeof(*vp));
    snprintf(vp->vm_id, sizeof(vp->vm_id), "%s", vm_id);
    snprintf(vp->pg, sizeof(vp->pg), "%s", pg);
    int rc = vs_port_add_ring(n->sw, vm_id, pg, mac, NULL, &vp->port);
    if (rc < 0) {
        snprintf(why, len, "cannot add a port for VM %s on %s: %s", vm_id, pg, strerror(-rc));
        return rc;
    }
    vs_port_ring_fds(vp->port, &fds[0], &fds[1], &fds[2]);
    n->nports++;
    kvc_info("VM %s: port on port group %s (VLAN %u), MAC %s", vm_id, pg, pc.vlan, mac_s);
    return 0;
}

static void port_remove(void *ctx, const char *vm_id)
{
    struct vmkd_net *n = ctx;
    struct vm_port *vp = find(n, vm_id);
    if (!vp)
        return;
    struct vs_stats st;
    if (vs_port_stats(vp->port, &st) == 0)
        kvc_info("VM %s: port removed (rx %llu tx %llu drops %llu)", vm_id,
                 (unsigned long long)st.rx_packets, (unsigned long long)st.tx_packets,
                 (unsigned long long)vs_stats_drops_total(&st));
    vs_port_remove(n->sw, vp->port);
    *vp = n->ports[--n->nports];
}

void vmkd_net_hooks(struct vmkd_net *n, struct vmkd_net_hooks *h)
{
    h->port_add = port_add;
    h->port_remove = port_remove;
    h->ctx = n;
}

int vmkd_net_port_stats(struct vmkd_net *n, const char *vm_id, struct vs_stats *st, char *pg,
                        size_t pglen)
{
    struct vm_port *vp = n && vm_id ? find(n, vm_id) : NULL;
    if (!vp)
        return -ENOENT;
    snprintf(pg, pglen, "%s", vp->pg);
    return vs_port_stats(vp->port, st);
}
