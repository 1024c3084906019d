/* vmkd's vSwitch: configuration, VM ports (see vmkd_net.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

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
    struct vs_switch *sw;
    struct vs_port *port;
    int link_fd;                /* vmkd's end of the vmx's port link, -1 (docs/vmkd.md) */
};

/* A standard switch and the port groups on it.  The vSwitch library has no
 * enumeration, so vmkd keeps the list (the library stays the truth for what
 * the data path does). */
struct net_sw {
    char name[VS_NAME_MAX];
    unsigned ports;             /* configured port count (ESXi's numPorts) */
    struct vs_switch *sw;
};

struct net_pg {
    char name[VS_NAME_MAX];
    size_t sw;                  /* index in sws */
    uint16_t vlan;
    uint32_t vni;
};

struct vmkd_net {
    struct net_sw *sws;
    size_t nsw;
    struct net_pg *pgs;
    size_t npg;
    struct vm_port *ports;
    size_t nports, cap;
    char state_path[4096];      /* STATE-DIR/vswitch.state: live changes */
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

static int sw_append(struct vmkd_net *n, const char *name, unsigned ports, unsigned mtu,
                     bool start, char *why, size_t len)
{
    struct net_sw *a = realloc(n->sws, (n->nsw + 1) * sizeof(*a));
    if (!a)
        return -ENOMEM;
    n->sws = a;
    struct net_sw *w = &a[n->nsw];
    memset(w, 0, sizeof(*w));
    snprintf(w->name, sizeof(w->name), "%s", name);
    w->ports = ports ? ports : VMKD_NET_PORTS_DEFAULT;
    struct vs_switch_opts so = { .name = name, .mtu = mtu };
    int rc = vs_create(&so, &w->sw);
    if (rc < 0) {
        snprintf(why, len, "vSwitch %s: %s", name, strerror(-rc));
        return rc;
    }
    if (start && (rc = vs_start(w->sw)) < 0) {
        snprintf(why, len, "vSwitch %s data path: %s", name, strerror(-rc));
        vs_destroy(w->sw);
        return rc;
    }
    n->nsw++;
    return 0;
}

static int pg_append(struct vmkd_net *n, const char *name, size_t sw, const struct vs_pg_config *pc)
{
    struct net_pg *a = realloc(n->pgs, (n->npg + 1) * sizeof(*a));
    if (!a)
        return -ENOMEM;
    n->pgs = a;
    memset(&a[n->npg], 0, sizeof(a[n->npg]));
    snprintf(a[n->npg].name, sizeof(a[n->npg].name), "%s", name);
    a[n->npg].sw = sw;
    a[n->npg].vlan = pc->vlan;
    a[n->npg].vni = pc->vni;
    n->npg++;
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
    const char *swname = kvc_cfg_string(sv, "name");
    if ((rc = sw_append(n, swname, 0, (unsigned)kvc_cfg_int(sv, "mtu"), false, why, len)) < 0)
        goto err;
    struct vs_switch *sw0 = n->sws[0].sw;
    size_t npg = kvc_config_count(cfg, "portgroup");
    for (size_t i = 0; i < npg; i++) {
        const struct kvc_cfg_section *s = kvc_config_nth(cfg, "portgroup", i);
        struct vs_pg_config pc;
        pg_config(s, &pc, why, len);
        if ((rc = vs_pg_add(sw0, kvc_cfg_instance(s), &pc)) < 0 ||
            (rc = pg_append(n, kvc_cfg_instance(s), 0, &pc)) < 0) {
            snprintf(why, len, "port group %s: %s", kvc_cfg_instance(s), strerror(-rc));
            goto err;
        }
        for (size_t k = 0; k < kvc_cfg_list_len(s, "vteps"); k++) {
            char ip[64];
            uint16_t port;
            vtep_parse(kvc_cfg_list_item(s, "vteps", k), ip, sizeof(ip), &port);
            if ((rc = vs_vtep_add(sw0, pc.vni, ip, port)) < 0) {
                snprintf(why, len, "port group %s: VTEP %s: %s", kvc_cfg_instance(s), ip,
                         strerror(-rc));
                goto err;
            }
        }
    }
    const char *local = kvc_cfg_string(sv, "vxlan-local");
    if (local && *local) {
        struct vs_port *up;
        if ((rc = vs_uplink_add_vxlan(sw0, "vxlan0", local, (uint16_t)kvc_cfg_int(sv, "vxlan-port"),
                                      &up)) < 0) {
            snprintf(why, len, "VXLAN uplink on %s:%d: %s", local, (int)kvc_cfg_int(sv, "vxlan-port"),
                     strerror(-rc));
            goto err;
        }
    }
    if ((rc = vs_start(sw0)) < 0) {
        snprintf(why, len, "vSwitch data path: %s", strerror(-rc));
        goto err;
    }
    kvc_info("vSwitch %s: MTU %u, %zu port group(s)%s%s", swname, vs_get_mtu(sw0), npg,
             local && *local ? ", VXLAN uplink on " : "", local && *local ? local : "");
    const struct kvc_cfg_section *sd = kvc_config_section(cfg, "vmkd");
    const char *dir = sd ? kvc_cfg_string(sd, "state-dir") : NULL;
    if (dir && *dir) {
        snprintf(n->state_path, sizeof(n->state_path), "%s/vswitch.state", dir);
        if ((rc = vmkd_net_state_load(n, why, len)) < 0)
            goto err;
    }
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
    for (size_t i = 0; i < n->nports; i++)
        if (n->ports[i].link_fd >= 0)
            close(n->ports[i].link_fd);
    for (size_t i = 0; i < n->nsw; i++)
        vs_destroy(n->sws[i].sw);
    free(n->sws);
    free(n->pgs);
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

static int port_add(void *ctx, const char *vm_id, const char *pg, const char *mac_s, int fds[4],
                    char *why, size_t len)
{
    struct vmkd_net *n = ctx;
    fds[3] = -1;
    uint8_t mac[6];
    if (!mac_s || vs_parse_mac(mac_s, mac) < 0 || (mac[0] & 1)) {
        snprintf(why, len, "NIC MAC '%s' is not a unicast MAC", mac_s ? mac_s : "");
        return -EINVAL;
    }
    struct vs_pg_config pc;
    struct net_pg *np = vmkd_net_pg_find(n, pg);
    if (!np || vs_pg_get(n->sws[np->sw].sw, pg, &pc) < 0) {
        snprintf(why, len, "port group '%s' does not exist on this host", pg);
        return -ENOENT;
    }
    struct net_sw *w = &n->sws[np->sw];
    if (vmkd_net_sw_used(n, np->sw) >= w->ports) {
        snprintf(why, len, "vSwitch %s has no free port (%u)", w->name, w->ports);
        return -ENOSPC;
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
    vp->sw = w->sw;
    int rc = vs_port_add_ring(w->sw, vm_id, pg, mac, NULL, &vp->port);
    if (rc < 0) {
        snprintf(why, len, "cannot add a port for VM %s on %s: %s", vm_id, pg, strerror(-rc));
        return rc;
    }
    vs_port_ring_fds(vp->port, &fds[0], &fds[1], &fds[2]);
    /* The port's link: vmx holds one end, the port the other; vmx sees its
     * end close when this vmkd goes away and comes back for a new port. */
    int sp[2];
    vp->link_fd = -1;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0) {
        vp->link_fd = sp[0];
        fds[3] = sp[1];
    } else {
        kvc_warn("VM %s: no port link (%s): its vmx will not notice a vmkd restart", vm_id,
                 strerror(errno));
    }
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
    vs_port_remove(vp->sw, vp->port);
    if (vp->link_fd >= 0)
        close(vp->link_fd);
    *vp = n->ports[--n->nports];
}

int vmkd_net_port_fds(struct vmkd_net *n, const char *vm_id, int fds[3], char *pg, size_t pglen)
{
    struct vm_port *vp = n && vm_id ? find(n, vm_id) : NULL;
    if (!vp)
        return -ENOENT;
    vs_port_ring_fds(vp->port, &fds[0], &fds[1], &fds[2]);
    snprintf(pg, pglen, "%s", vp->pg);
    return 0;
}

int vmkd_net_port_set_link(struct vmkd_net *n, const char *vm_id, int fd)
{
    struct vm_port *vp = n && vm_id ? find(n, vm_id) : NULL;
    if (!vp)
        return -ENOENT;
    if (vp->link_fd >= 0)
        close(vp->link_fd);
    vp->link_fd = fd;
    return 0;
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

/* ---- live configuration (VMKD_VSWITCH_*, VMKD_PORTGROUP_*) ---------------
 * Each change goes through the vSwitch library's snapshot exchange, so the
 * other ports keep forwarding while it happens (docs/vswitch.md "Live
 * configuration"), and is then written to STATE-DIR/vswitch.state so a
 * restarted vmkd comes back with it. */

struct net_pg *vmkd_net_pg_find(struct vmkd_net *n, const char *name)
{
    for (size_t i = 0; i < n->npg; i++)
        if (!strcmp(n->pgs[i].name, name))
            return &n->pgs[i];
    return NULL;
}

static ssize_t sw_find(struct vmkd_net *n, const char *name)
{
    for (size_t i = 0; i < n->nsw; i++)
        if (!strcmp(n->sws[i].name, name))
            return (ssize_t)i;
    return -1;
}

unsigned vmkd_net_sw_used(struct vmkd_net *n, size_t sw)
{
    unsigned used = 0;
    for (size_t i = 0; i < n->nports; i++)
        if (n->ports[i].sw == n->sws[sw].sw)
            used++;
    return used;
}

static unsigned pg_ports(struct vmkd_net *n, const char *pg)
{
    unsigned k = 0;
    for (size_t i = 0; i < n->nports; i++)
        if (!strcmp(n->ports[i].pg, pg))
            k++;
    return k;
}

bool vmkd_net_valid_name(const char *s)
{
    size_t len = s ? strlen(s) : 0;
    if (!len || len >= VS_NAME_MAX)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f || *s == '/' || *s == '\\')
            return false;
    return true;
}

size_t vmkd_net_sw_count(const struct vmkd_net *n)
{
    return n ? n->nsw : 0;
}

size_t vmkd_net_pg_count(const struct vmkd_net *n)
{
    return n ? n->npg : 0;
}

void vmkd_net_sw_nth(struct vmkd_net *n, size_t i, struct vmkd_net_sw_info *o)
{
    o->name = n->sws[i].name;
    o->ports = n->sws[i].ports;
    o->used = vmkd_net_sw_used(n, i);
    o->mtu = vs_get_mtu(n->sws[i].sw);
}

void vmkd_net_pg_nth(struct vmkd_net *n, size_t i, struct vmkd_net_pg_info *o)
{
    o->name = n->pgs[i].name;
    o->vswitch = n->sws[n->pgs[i].sw].name;
    o->vlan = n->pgs[i].vlan;
    o->vni = n->pgs[i].vni;
    o->ports = pg_ports(n, n->pgs[i].name);
}

static int state_save(struct vmkd_net *n)
{
    if (!n->state_path[0])
        return 0;
    char tmp[sizeof(n->state_path) + 8];
    snprintf(tmp, sizeof(tmp), "%s.tmp", n->state_path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -errno;
    fprintf(f, "# vmkd's live vSwitch configuration; written by vmkd\n");
    for (size_t i = 0; i < n->nsw; i++)
        fprintf(f, "vswitch\t%s\t%u\t%u\n", n->sws[i].name, n->sws[i].ports,
                vs_get_mtu(n->sws[i].sw));
    for (size_t i = 0; i < n->npg; i++)
        fprintf(f, "portgroup\t%s\t%s\t%u\n", n->pgs[i].name, n->sws[n->pgs[i].sw].name,
                n->pgs[i].vlan);
    int rc = 0;
    if (fflush(f) || fsync(fileno(f)))
        rc = -errno;
    if (fclose(f) && !rc)
        rc = -errno;
    if (!rc && rename(tmp, n->state_path) < 0)
        rc = -errno;
    if (rc) {
        unlink(tmp);
        kvc_err("%s: %s", n->state_path, strerror(-rc));
    }
    return rc;
}

int vmkd_net_sw_add(struct vmkd_net *n, const char *name, unsigned ports, unsigned mtu,
                    char *why, size_t len)
{
    if (!vmkd_net_valid_name(name)) {
        snprintf(why, len, "'%s' is not a valid vSwitch name", name ? name : "");
        return -EINVAL;
    }
    if (ports && (ports < 8 || ports > 4096)) {
        snprintf(why, len, "ports %u: want 8-4096", ports);
        return -EINVAL;
    }
    if (mtu && (mtu < VS_MTU_MIN || mtu > VS_MTU_MAX)) {
        snprintf(why, len, "MTU %u: want %d-%d", mtu, VS_MTU_MIN, VS_MTU_MAX);
        return -EINVAL;
    }
    if (sw_find(n, name) >= 0) {
        snprintf(why, len, "vSwitch %s already exists", name);
        return -EEXIST;
    }
    if (n->nsw >= VMKD_NET_MAX_SWITCHES) {
        snprintf(why, len, "this host has %d vSwitches, the most it takes", VMKD_NET_MAX_SWITCHES);
        return -ENOSPC;
    }
    int rc = sw_append(n, name, ports, mtu, true, why, len);
    if (rc < 0)
        return rc;
    kvc_info("vSwitch %s added (%u ports, MTU %u)", name, n->sws[n->nsw - 1].ports,
             vs_get_mtu(n->sws[n->nsw - 1].sw));
    state_save(n);
    return 0;
}

int vmkd_net_sw_remove(struct vmkd_net *n, const char *name, char *why, size_t len)
{
    ssize_t k = sw_find(n, name ? name : "");
    if (k < 0) {
        snprintf(why, len, "no vSwitch %s", name ? name : "");
        return -ENOENT;
    }
    for (size_t i = 0; i < n->npg; i++)
        if (n->pgs[i].sw == (size_t)k) {
            snprintf(why, len, "vSwitch %s still has port group %s", name, n->pgs[i].name);
            return -EBUSY;
        }
    if (vmkd_net_sw_used(n, (size_t)k)) {
        snprintf(why, len, "vSwitch %s still has ports", name);
        return -EBUSY;
    }
    vs_destroy(n->sws[k].sw);
    memmove(&n->sws[k], &n->sws[k + 1], (n->nsw - (size_t)k - 1) * sizeof(*n->sws));
    n->nsw--;
    for (size_t i = 0; i < n->npg; i++)
        if (n->pgs[i].sw > (size_t)k)
            n->pgs[i].sw--;
    kvc_info("vSwitch %s removed", name);
    state_save(n);
    return 0;
}

int vmkd_net_pg_add(struct vmkd_net *n, const char *name, const char *vswitch, unsigned vlan,
                    char *why, size_t len)
{
    if (!vmkd_net_valid_name(name)) {
        snprintf(why, len, "'%s' is not a valid port group name", name ? name : "");
        return -EINVAL;
    }
    if (vlan > VS_VLAN_TRUNK) {
        snprintf(why, len, "VLAN %u: want 0-4095", vlan);
        return -EINVAL;
    }
    ssize_t k = sw_find(n, vswitch ? vswitch : "");
    if (k < 0) {
        snprintf(why, len, "no vSwitch %s", vswitch ? vswitch : "");
        return -ENOENT;
    }
    if (vmkd_net_pg_find(n, name)) {
        snprintf(why, len, "port group %s already exists", name);
        return -EEXIST;
    }
    if (n->npg >= VMKD_NET_MAX_PORTGROUPS) {
        snprintf(why, len, "this host has %d port groups, the most it takes",
                 VMKD_NET_MAX_PORTGROUPS);
        return -ENOSPC;
    }
    struct vs_pg_config pc;
    vs_pg_config_default(&pc, false);
    pc.vlan = (uint16_t)vlan;
    int rc = vs_pg_add(n->sws[k].sw, name, &pc);
    if (rc < 0) {
        snprintf(why, len, "port group %s: %s", name, strerror(-rc));
        return rc;
    }
    if ((rc = pg_append(n, name, (size_t)k, &pc)) < 0) {
        vs_pg_remove(n->sws[k].sw, name);
        return rc;
    }
    kvc_info("port group %s added on %s (VLAN %u)", name, vswitch, vlan);
    state_save(n);
    return 0;
}

int vmkd_net_pg_remove(struct vmkd_net *n, const char *name, char *why, size_t len)
{
    struct net_pg *p = vmkd_net_pg_find(n, name ? name : "");
    if (!p) {
        snprintf(why, len, "no port group %s", name ? name : "");
        return -ENOENT;
    }
    unsigned busy = pg_ports(n, name);
    if (busy) {
        snprintf(why, len, "port group %s has %u active port(s)", name, busy);
        return -EBUSY;
    }
    int rc = vs_pg_remove(n->sws[p->sw].sw, name);
    if (rc < 0) {
        snprintf(why, len, "port group %s: %s", name, strerror(-rc));
        return rc;
    }
    kvc_info("port group %s removed from %s", name, n->sws[p->sw].name);
    size_t i = (size_t)(p - n->pgs);
    memmove(&n->pgs[i], &n->pgs[i + 1], (n->npg - i - 1) * sizeof(*n->pgs));
    n->npg--;
    state_save(n);
    return 0;
}

int vmkd_net_pg_set_vlan(struct vmkd_net *n, const char *name, unsigned vlan, char *why,
                         size_t len)
{
    struct net_pg *p = vmkd_net_pg_find(n, name ? name : "");
    if (!p) {
        snprintf(why, len, "no port group %s", name ? name : "");
        return -ENOENT;
    }
    if (vlan > VS_VLAN_TRUNK) {
        snprintf(why, len, "VLAN %u: want 0-4095", vlan);
        return -EINVAL;
    }
    struct vs_pg_config pc;
    int rc = vs_pg_get(n->sws[p->sw].sw, name, &pc);
    if (rc == 0) {
        pc.vlan = (uint16_t)vlan;
        rc = vs_pg_update(n->sws[p->sw].sw, name, &pc);
    }
    if (rc < 0) {
        snprintf(why, len, "port group %s: %s", name, strerror(-rc));
        return rc;
    }
    kvc_info("port group %s: VLAN %u -> %u", name, p->vlan, vlan);
    p->vlan = (uint16_t)vlan;
    state_save(n);
    return 0;
}

/* Applies STATE-DIR/vswitch.state over what vmkd.conf built: switches and
 * port groups the file lists are created (or their VLAN updated), those it
 * does not list are removed.  Policies, VNIs and VTEPs stay vmkd.conf's. */
int vmkd_net_state_load(struct vmkd_net *n, char *why, size_t len)
{
    why[0] = 0;
    FILE *f = fopen(n->state_path, "r");
    if (!f)
        return errno == ENOENT ? 0 : -errno;
    char line[512];
    char (*keep_pg)[VS_NAME_MAX] = calloc(VMKD_NET_MAX_PORTGROUPS, VS_NAME_MAX);
    char (*keep_sw)[VS_NAME_MAX] = calloc(VMKD_NET_MAX_SWITCHES, VS_NAME_MAX);
    size_t nkeep_pg = 0, nkeep_sw = 0, lineno = 0;
    int rc = keep_pg && keep_sw ? 0 : -ENOMEM;
    while (rc == 0 && fgets(line, sizeof(line), f)) {
        lineno++;
        line[strcspn(line, "\n")] = 0;
        if (!line[0] || line[0] == '#')
            continue;
        char *f0 = strtok(line, "\t"), *f1 = strtok(NULL, "\t"), *f2 = strtok(NULL, "\t"),
             *f3 = strtok(NULL, "\t");
        if (!f0 || !f1 || !f2 || !f3) {
            rc = -EINVAL;
            break;
        }
        if (!strcmp(f0, "vswitch") && nkeep_sw < VMKD_NET_MAX_SWITCHES) {
            snprintf(keep_sw[nkeep_sw++], VS_NAME_MAX, "%s", f1);
            ssize_t k = sw_find(n, f1);
            if (k < 0)
                rc = sw_append(n, f1, (unsigned)atoi(f2), (unsigned)atoi(f3), true, why, len);
            else {
                n->sws[k].ports = (unsigned)atoi(f2) ? (unsigned)atoi(f2) : n->sws[k].ports;
                vs_set_mtu(n->sws[k].sw, (unsigned)atoi(f3));
            }
        } else if (!strcmp(f0, "portgroup") && nkeep_pg < VMKD_NET_MAX_PORTGROUPS) {
            snprintf(keep_pg[nkeep_pg++], VS_NAME_MAX, "%s", f1);
            if (vmkd_net_pg_find(n, f1))
                rc = vmkd_net_pg_set_vlan(n, f1, (unsigned)atoi(f3), why, len);
            else
                rc = vmkd_net_pg_add(n, f1, f2, (unsigned)atoi(f3), why, len);
        } else {
            rc = -EINVAL;
        }
    }
    fclose(f);
    if (rc == -EINVAL && !why[0])
        snprintf(why, len, "%s:%zu: not a vswitch or portgroup line", n->state_path, lineno);
    for (size_t i = n->npg; rc >= 0 && i-- > 0;) {
        bool keep = false;
        for (size_t j = 0; j < nkeep_pg && !keep; j++)
            keep = !strcmp(keep_pg[j], n->pgs[i].name);
        if (!keep)
            rc = vmkd_net_pg_remove(n, n->pgs[i].name, why, len);
    }
    for (size_t i = n->nsw; rc >= 0 && i-- > 0;) {
        bool keep = false;
        for (size_t j = 0; j < nkeep_sw && !keep; j++)
            keep = !strcmp(keep_sw[j], n->sws[i].name);
        if (!keep)
            rc = vmkd_net_sw_remove(n, n->sws[i].name, why, len);
    }
    free(keep_pg);
    free(keep_sw);
    if (rc < 0)
        return rc;
    kvc_info("vSwitch state from %s: %zu switch(es), %zu port group(s)", n->state_path,
             n->nsw, n->npg);
    return 0;
}
