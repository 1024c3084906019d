/* The vSwitch core: configuration snapshots, MAC learning, forwarding,
 * security policy, shaping, counters and the data path thread. */
#include "port.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "ring.h"

KVC_LOG_MODULE(vswitch);

#define VS_MAX_PORTS 1024
#define ETH_P_8021Q 0x8100

/* --- Configuration snapshots ---------------------------------------------
 * Everything the data path reads about the configuration lives in one
 * immutable struct vs_cfg.  A change builds a new one under sw->lock,
 * publishes it with an atomic exchange and waits until the data path has
 * finished a pass that started with the new one (a quiescent point); then
 * nothing can still point into the old snapshot, or into a removed port or
 * port group, and they are freed.  The data path never takes sw->lock, so a
 * change costs other ports nothing but one pointer load per pass. */
struct vs_cfg_port {
    struct vs_port *port;       /* NULL: free slot */
    struct vs_pg *pg;           /* NULL for uplinks */
    struct vs_pg_config pgc;
};

struct vs_cfg_vni {
    uint32_t vni;
    uint16_t vlan;
    unsigned nvteps;
    struct sockaddr_in *vteps;
};

struct vs_cfg {
    uint64_t gen;
    unsigned mtu;
    unsigned nslots;
    struct vs_cfg_port *ports;
    struct vs_port *uplink;
    unsigned nvnis;
    struct vs_cfg_vni *vnis;
    int16_t vlan_vni[VS_VLAN_MAX + 1];  /* index into vnis, or -1 */
};

struct vtep {
    uint32_t vni;
    struct sockaddr_in addr;
    struct vtep *next;
};

/* MAC table: chained hash over a fixed pool; data path writes it, the
 * control plane reads it for introspection, both under mac_lock (taken once
 * per data path pass, so uncontended in practice). */
struct mac_entry {
    uint64_t key;               /* vlan << 48 | mac */
    struct vs_port *port;
    struct sockaddr_in vtep;    /* learned behind the VXLAN uplink */
    uint64_t seen_ns;
    int32_t next;
};

struct mac_table {
    uint32_t bits;
    int32_t *buckets;
    struct mac_entry *e;
    uint32_t max, count;
    int32_t free_head;
};

struct vs_switch {
    char name[VS_NAME_MAX];
    pthread_mutex_t lock;       /* control plane */
    struct vs_pg *pgs;
    struct vs_port *ports;
    struct vs_port *slots[VS_MAX_PORTS];
    struct vtep *vteps;
    unsigned mtu;
    uint64_t gen;
    struct vs_cfg *_Atomic cfg;

    pthread_t thread;
    bool running;
    atomic_bool stop;
    int epfd, ctl_efd;
    _Atomic uint64_t dp_seen_gen;
    atomic_int sync_waiters;
    pthread_mutex_t sync_lock;
    pthread_cond_t sync_cond;

    pthread_mutex_t mac_lock;
    struct mac_table mac;
    uint64_t age_ns;

    uint64_t (*now)(void *);
    void *now_ctx;

    struct vs_pkt pkts[VS_BATCH];
    uint8_t *pktmem;
};

static const char *const drop_names[VS_DROP__N] = {
    [VS_DROP_RUNT] = "runt", [VS_DROP_OVERSIZE] = "oversize",
    [VS_DROP_MALFORMED] = "malformed", [VS_DROP_RING_ERROR] = "ring_error",
    [VS_DROP_VLAN] = "vlan", [VS_DROP_FORGED] = "forged",
    [VS_DROP_MAC_CHANGE] = "mac_change", [VS_DROP_SHAPED] = "shaped",
    [VS_DROP_NOSPACE] = "nospace", [VS_DROP_BAD_SRC] = "bad_src",
    [VS_DROP_UNKNOWN_VNI] = "unknown_vni", [VS_DROP_UNKNOWN_VTEP] = "unknown_vtep",
    [VS_DROP_LINK_DOWN] = "link_down",
};

const char *
vs_drop_name(enum vs_drop d)
{
    return (unsigned)d < VS_DROP__N ? drop_names[d] : "?";
}

uint64_t
vs_stats_drops_total(const struct vs_stats *s)
{
    uint64_t t = 0;
    for (int i = 0; i < VS_DROP__N; i++)
        t += s->drops[i];
    return t;
}

void
vs_pg_config_default(struct vs_pg_config *c, bool distributed)
{
    memset(c, 0, sizeof *c);
    /* ESXi: a standard port group rejects promiscuous mode and accepts MAC
     * changes and forged transmits; a distributed one rejects all three. */
    c->security.allow_promiscuous = false;
    c->security.allow_mac_changes = !distributed;
    c->security.allow_forged_transmits = !distributed;
}

int
vs_parse_mac(const char *s, uint8_t mac[6])
{
    unsigned v[6];
    char tail;
    if (!s || sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3],
                     &v[4], &v[5], &tail) != 6)
        return -EINVAL;
    for (int i = 0; i < 6; i++)
        mac[i] = (uint8_t)v[i];
    return 0;
}

static uint64_t
mono_now(void *ctx)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t
vs_now_ns(struct vs_switch *sw)
{
    return sw->now(sw->now_ctx);
}

void
vs_set_clock(struct vs_switch *sw, uint64_t (*now_ns)(void *), void *ctx)
{
    pthread_mutex_lock(&sw->lock);
    sw->now_ctx = ctx;
    sw->now = now_ns ? now_ns : mono_now;
    pthread_mutex_unlock(&sw->lock);
}

/* --- Counters -------------------------------------------------------------- */
static void
stats_read(const struct vs_atomic_stats *a, struct vs_stats *s)
{
    s->rx_packets = atomic_load_explicit(&a->rx_packets, memory_order_relaxed);
    s->rx_bytes = atomic_load_explicit(&a->rx_bytes, memory_order_relaxed);
    s->tx_packets = atomic_load_explicit(&a->tx_packets, memory_order_relaxed);
    s->tx_bytes = atomic_load_explicit(&a->tx_bytes, memory_order_relaxed);
    for (int i = 0; i < VS_DROP__N; i++)
        s->drops[i] = atomic_load_explicit(&a->drops[i], memory_order_relaxed);
}

void
vs_port_drop(struct vs_port *p, enum vs_drop why, uint32_t bytes)
{
    (void)bytes;
    vs_ctr_add(&p->stats.drops[why], 1);
    struct vs_pg *pg = atomic_load_explicit(&p->pg, memory_order_relaxed);
    if (pg)
        vs_ctr_add(&pg->stats.drops[why], 1);
}

static void
count_rx(struct vs_port *p, struct vs_pg *pg, uint32_t len)
{
    vs_ctr_add(&p->stats.rx_packets, 1);
    vs_ctr_add(&p->stats.rx_bytes, len);
    if (pg) {
        vs_ctr_add(&pg->stats.rx_packets, 1);
        vs_ctr_add(&pg->stats.rx_bytes, len);
    }
}

static void
count_tx(struct vs_port *p, struct vs_pg *pg, uint32_t len)
{
    vs_ctr_add(&p->stats.tx_packets, 1);
    vs_ctr_add(&p->stats.tx_bytes, len);
    if (pg) {
        vs_ctr_add(&pg->stats.tx_packets, 1);
        vs_ctr_add(&pg->stats.tx_bytes, len);
    }
}

/* --- MAC table ------------------------------------------------------------- */
static int
mac_init(struct mac_table *t, uint32_t max)
{
    t->bits = 4;
    while ((1u << t->bits) < max && t->bits < 20)
        t->bits++;
    t->buckets = malloc(sizeof(int32_t) << t->bits);
    t->e = calloc(max, sizeof *t->e);
    if (!t->buckets || !t->e)
        return -ENOMEM;
    for (uint32_t i = 0; i < (1u << t->bits); i++)
        t->buckets[i] = -1;
    for (uint32_t i = 0; i < max; i++)
        t->e[i].next = i + 1 < max ? (int32_t)(i + 1) : -1;
    t->free_head = 0;
    t->max = max;
    t->count = 0;
    return 0;
}

static uint32_t
mac_hash(const struct mac_table *t, uint64_t key)
{
    return (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> (64 - t->bits));
}

static void
mac_unlink(struct mac_table *t, int32_t *link)
{
    int32_t i = *link;
    *link = t->e[i].next;
    t->e[i].port = NULL;
    t->e[i].next = t->free_head;
    t->free_head = i;
    t->count--;
}

static struct mac_entry *
mac_find(struct mac_table *t, uint64_t key, uint64_t now, uint64_t age)
{
    int32_t *link = &t->buckets[mac_hash(t, key)];
    while (*link >= 0) {
        struct mac_entry *e = &t->e[*link];
        if (e->key == key) {
            if (now - e->seen_ns > age) {
                mac_unlink(t, link);
                return NULL;
            }
            return e;
        }
        link = &e->next;
    }
    return NULL;
}

/* Remove entries matching pred (port == p, or aged when p is NULL). */
static void
mac_sweep(struct mac_table *t, struct vs_port *p, uint64_t now, uint64_t age)
{
    for (uint32_t b = 0; b < (1u << t->bits); b++) {
        int32_t *link = &t->buckets[b];
        while (*link >= 0) {
            struct mac_entry *e = &t->e[*link];
            if (p ? e->port == p : now - e->seen_ns > age)
                mac_unlink(t, link);
            else
                link = &e->next;
        }
    }
}

static void
mac_learn(struct vs_switch *sw, uint64_t key, struct vs_port *port,
          const struct sockaddr_in *vtep, uint64_t now)
{
    struct mac_table *t = &sw->mac;
    struct mac_entry *e = mac_find(t, key, now, sw->age_ns);
    if (!e) {
        if (t->free_head < 0)
            mac_sweep(t, NULL, now, sw->age_ns);
        if (t->free_head < 0) {
            static struct kvc_ratelimit rl = KVC_RATELIMIT_INIT(2, 60);
            kvc_warn_rl(&rl, "%s: MAC table full (%u entries), not learning",
                        sw->name, t->max);
            return;
        }
        int32_t i = t->free_head;
        e = &t->e[i];
        t->free_head = e->next;
        uint32_t h = mac_hash(t, key);
        e->key = key;
        e->next = t->buckets[h];
        t->buckets[h] = i;
        t->count++;
        e->port = NULL;
    }
    if (e->port != port || (vtep && (e->vtep.sin_addr.s_addr != vtep->sin_addr.s_addr
                                     || e->vtep.sin_port != vtep->sin_port))) {
        e->port = port;
        if (vtep)
            e->vtep = *vtep;
        else
            memset(&e->vtep, 0, sizeof e->vtep);
    }
    e->seen_ns = now;
}

/* --- Shaping ----------------------------------------------------------------
 * Two token buckets per port, in units of 1e-9 bit so that every
 * nanosecond adds an exact integer amount: the average bucket (rate
 * average_bps, depth burst_bytes) and the peak bucket (rate peak_bps, depth
 * one millisecond at peak rate, at least one full frame).  A frame passes
 * only if both hold its size; otherwise it is dropped and counted. */
#define NB_PER_BYTE 8000000000ull

static uint64_t
bucket_fill(uint64_t tokens, uint64_t rate_bps, uint64_t dt, uint64_t depth)
{
    unsigned __int128 t = (unsigned __int128)rate_bps * dt + tokens;
    return t > depth ? depth : (uint64_t)t;
}

static bool
shaper_admit(struct vs_shaper_state *s, const struct vs_shaping *p, unsigned mtu,
             uint32_t len, uint64_t now)
{
    uint64_t frame_max = (uint64_t)mtu + 18;
    uint64_t burst = p->burst_bytes > frame_max ? p->burst_bytes : frame_max;
    uint64_t peak_bytes = p->peak_bps / 8 / 1000;
    if (peak_bytes < frame_max)
        peak_bytes = frame_max;
    /* Depths capped so that they fit the units (2 GB of burst). */
    if (burst > UINT64_MAX / NB_PER_BYTE)
        burst = UINT64_MAX / NB_PER_BYTE;
    if (peak_bytes > UINT64_MAX / NB_PER_BYTE)
        peak_bytes = UINT64_MAX / NB_PER_BYTE;
    uint64_t avg_depth = burst * NB_PER_BYTE, peak_depth = peak_bytes * NB_PER_BYTE;
    if (!s->primed) {
        s->avg_tokens = avg_depth;
        s->peak_tokens = peak_depth;
        s->last_ns = now;
        s->primed = true;
    }
    uint64_t dt = now > s->last_ns ? now - s->last_ns : 0;
    s->last_ns = now > s->last_ns ? now : s->last_ns;
    s->avg_tokens = bucket_fill(s->avg_tokens, p->average_bps, dt, avg_depth);
    s->peak_tokens = bucket_fill(s->peak_tokens, p->peak_bps, dt, peak_depth);
    uint64_t cost = (uint64_t)len * NB_PER_BYTE;
    if (s->avg_tokens < cost || s->peak_tokens < cost)
        return false;
    s->avg_tokens -= cost;
    s->peak_tokens -= cost;
    return true;
}

/* --- Forwarding ------------------------------------------------------------ */
static inline bool
is_mcast(const uint8_t *mac)
{
    return mac[0] & 1;
}

static const struct vs_cfg_vni *
vni_by_vlan(const struct vs_cfg *c, uint16_t vlan)
{
    int16_t i = vlan <= VS_VLAN_MAX ? c->vlan_vni[vlan] : -1;
    return i >= 0 ? &c->vnis[i] : NULL;
}

static const struct vs_cfg_vni *
vni_by_id(const struct vs_cfg *c, uint32_t vni)
{
    for (unsigned i = 0; i < c->nvnis; i++)
        if (c->vnis[i].vni == vni)
            return &c->vnis[i];
    return NULL;
}

static bool
vtep_known(const struct vs_cfg_vni *v, const struct sockaddr_in *a)
{
    for (unsigned i = 0; i < v->nvteps; i++)
        if (v->vteps[i].sin_addr.s_addr == a->sin_addr.s_addr
            && v->vteps[i].sin_port == a->sin_port)
            return true;
    return false;
}

/* Is this (VM) port in broadcast domain vlan? */
static inline bool
in_domain(const struct vs_cfg_port *cp, uint16_t vlan)
{
    return cp->port && cp->pg && (cp->pgc.vlan == vlan || cp->pgc.vlan == VS_VLAN_TRUNK);
}

static void
deliver(struct vs_cfg_port *op, const uint8_t *f, uint32_t len, uint16_t vlan,
        uint32_t vni, const struct sockaddr_in *vtep)
{
    struct vs_port *p = op->port;
    struct vs_tx_meta m = { 0 };
    if (!atomic_load_explicit(&p->link_up, memory_order_relaxed)) {
        vs_port_drop(p, VS_DROP_LINK_DOWN, len);
        return;
    }
    if (op->pg) {
        /* MAC address changes = reject: a guest that changed its MAC gets
         * nothing until it changes it back. */
        if (!op->pgc.security.allow_mac_changes
            && atomic_load_explicit(&p->eff_mac, memory_order_relaxed)
               != atomic_load_explicit(&p->cfg_mac, memory_order_relaxed)) {
            vs_port_drop(p, VS_DROP_MAC_CHANGE, len);
            return;
        }
        if (op->pgc.vlan == VS_VLAN_TRUNK && vlan != 0)
            m.vlan_tag = vlan;
    } else {
        m.vni = vni;
        m.vtep = vtep;
    }
    int why = p->cls->send(p, f, len, &m);
    if (why) {
        vs_port_drop(p, (enum vs_drop)why, len);
        return;
    }
    p->dirty = true;
    count_tx(p, op->pg, len + (m.vlan_tag ? 4 : 0));
}

/* May a non-target VM port see a frame for dst? */
static inline bool
accepts(const struct vs_cfg_port *cp, const uint8_t *dst, bool flood_unicast)
{
    if (is_mcast(dst) || cp->pgc.security.allow_promiscuous)
        return true;
    if (!flood_unicast)
        return false;
    uint64_t eff = atomic_load_explicit(&cp->port->eff_mac, memory_order_relaxed);
    return eff == 0 || eff == vs_mac_to_u64(dst);
}

static void
flood_uplink(struct vs_cfg *c, const struct vs_cfg_vni *v, const uint8_t *f,
             uint32_t len, uint16_t vlan)
{
    if (!v || !c->uplink)
        return;
    struct vs_cfg_port *up = &c->ports[c->uplink->slot];
    for (unsigned i = 0; i < v->nvteps; i++)
        deliver(up, f, len, vlan, v->vni, &v->vteps[i]);
}

static void
process(struct vs_switch *sw, struct vs_cfg *c, struct vs_cfg_port *ip,
        struct vs_pkt *pkt, uint64_t now)
{
    struct vs_port *in = ip->port;
    bool from_uplink = in->cls->is_uplink;
    uint8_t *f = pkt->data;
    uint32_t len = pkt->len;
    uint16_t vlan;
    const struct vs_cfg_vni *v = NULL;

    if (len < 14) {
        vs_port_drop(in, VS_DROP_RUNT, len);
        return;
    }
    bool tagged = ((uint16_t)f[12] << 8 | f[13]) == ETH_P_8021Q;
    if (tagged && len < 18) {
        vs_port_drop(in, VS_DROP_RUNT, len);
        return;
    }
    if (len > c->mtu + 14u + (tagged ? 4u : 0u)) {
        vs_port_drop(in, VS_DROP_OVERSIZE, len);
        return;
    }
    if (from_uplink) {
        if (tagged) {
            vs_port_drop(in, VS_DROP_VLAN, len);
            return;
        }
        v = vni_by_id(c, pkt->vni);
        if (!v) {
            vs_port_drop(in, VS_DROP_UNKNOWN_VNI, len);
            return;
        }
        if (!vtep_known(v, &pkt->vtep)) {
            vs_port_drop(in, VS_DROP_UNKNOWN_VTEP, len);
            return;
        }
        vlan = v->vlan;
    } else if (ip->pgc.vlan == VS_VLAN_TRUNK) {
        /* Virtual guest tagging: the tag picks the VLAN; untagged and
         * priority-tagged frames belong to VLAN 0. */
        vlan = 0;
        if (tagged) {
            uint16_t vid = ((uint16_t)f[14] << 8 | f[15]) & 0xfff;
            if (vid == VS_VLAN_TRUNK) {
                vs_port_drop(in, VS_DROP_VLAN, len);
                return;
            }
            vlan = vid;
        }
    } else {
        /* Access port: the guest may not tag (ESXi's VST mode). */
        if (tagged) {
            vs_port_drop(in, VS_DROP_VLAN, len);
            return;
        }
        vlan = ip->pgc.vlan;
    }
    if (tagged) {
        memmove(f + 4, f, 12);
        f += 4;
        len -= 4;
    }
    const uint8_t *dst = f, *src = f + 6;
    uint64_t srcu = vs_mac_to_u64(src);
    if (is_mcast(src) || srcu == 0) {
        vs_port_drop(in, VS_DROP_BAD_SRC, len);
        return;
    }
    if (!from_uplink) {
        if (!atomic_load_explicit(&in->link_up, memory_order_relaxed)) {
            vs_port_drop(in, VS_DROP_LINK_DOWN, len);
            return;
        }
        uint64_t eff = atomic_load_explicit(&in->eff_mac, memory_order_relaxed);
        if (!ip->pgc.security.allow_forged_transmits && eff && srcu != eff) {
            vs_port_drop(in, VS_DROP_FORGED, len);
            return;
        }
        if (ip->pgc.shaping.enabled
            && !shaper_admit(&in->shaper, &ip->pgc.shaping, c->mtu, len, now)) {
            vs_port_drop(in, VS_DROP_SHAPED, len);
            return;
        }
        v = vni_by_vlan(c, vlan);
    }
    count_rx(in, ip->pg, pkt->len);
    mac_learn(sw, (uint64_t)vlan << 48 | srcu, in, from_uplink ? &pkt->vtep : NULL, now);

    struct vs_cfg_port *target = NULL;
    struct sockaddr_in tvtep;
    if (!is_mcast(dst)) {
        struct mac_entry *e = mac_find(&sw->mac, (uint64_t)vlan << 48 | vs_mac_to_u64(dst),
                                       now, sw->age_ns);
        if (e) {
            struct vs_cfg_port *tp = e->port->slot < c->nslots ? &c->ports[e->port->slot] : NULL;
            if (tp && tp->port == e->port) {
                if (tp->port == in)
                    return;             /* stays on its own segment */
                if (tp->port->cls->is_uplink ? v != NULL : in_domain(tp, vlan)) {
                    target = tp;
                    tvtep = e->vtep;
                }
            }
        }
    }
    if (target && target->port->cls->is_uplink) {
        if (!from_uplink)
            deliver(target, f, len, vlan, v->vni, &tvtep);
    } else if (target) {
        if (accepts(target, dst, true))
            deliver(target, f, len, vlan, 0, NULL);
    } else if (!from_uplink) {
        flood_uplink(c, v, f, len, vlan);
    }
    /* Everyone else in the domain that may see it: everybody for broadcast,
     * multicast and unknown unicast (non-promiscuous ports with a MAC only
     * their own), promiscuous ports for known unicast. */
    for (unsigned i = 0; i < c->nslots; i++) {
        struct vs_cfg_port *cp = &c->ports[i];
        if (cp == ip || cp == target || !in_domain(cp, vlan))
            continue;
        if (accepts(cp, dst, target == NULL))
            deliver(cp, f, len, vlan, 0, NULL);
    }
}

/* One pass: receive a batch from every port, switch it, flush. */
static int
dp_pass(struct vs_switch *sw, uint64_t *gen)
{
    struct vs_cfg *c = atomic_load_explicit(&sw->cfg, memory_order_acquire);
    int total = 0;
    uint64_t now = vs_now_ns(sw);
    *gen = c->gen;
    pthread_mutex_lock(&sw->mac_lock);
    for (unsigned i = 0; i < c->nslots; i++) {
        struct vs_cfg_port *cp = &c->ports[i];
        if (!cp->port)
            continue;
        for (int k = 0; k < VS_BATCH; k++) {
            sw->pkts[k].data = sw->pkts[k].buf + VS_HEADROOM;
            sw->pkts[k].len = 0;
        }
        int n = cp->port->cls->recv(cp->port, sw->pkts, VS_BATCH);
        for (int k = 0; k < n; k++)
            process(sw, c, cp, &sw->pkts[k], now);
        total += n;
    }
    pthread_mutex_unlock(&sw->mac_lock);
    for (unsigned i = 0; i < c->nslots; i++) {
        struct vs_port *p = c->ports[i].port;
        if (p && p->dirty) {
            p->dirty = false;
            p->cls->flush(p);
        }
    }
    return total;
}

static void
quiescent(struct vs_switch *sw, uint64_t gen)
{
    atomic_store(&sw->dp_seen_gen, gen);
    if (atomic_load(&sw->sync_waiters)) {
        pthread_mutex_lock(&sw->sync_lock);
        pthread_cond_broadcast(&sw->sync_cond);
        pthread_mutex_unlock(&sw->sync_lock);
    }
}

static void *
dp_thread(void *arg)
{
    struct vs_switch *sw = arg;
    struct epoll_event ev[64];
    int idle = 0;
    while (!atomic_load(&sw->stop)) {
        uint64_t gen;
        int n = dp_pass(sw, &gen);
        quiescent(sw, gen);
        if (n > 0) {
            idle = 0;
            continue;
        }
        /* A few empty passes before sleeping keep a busy peer from having
         * to kick us; the machine is shared, so not many. */
        if (++idle < 16) {
            sched_yield();
            continue;
        }
        struct vs_cfg *c = atomic_load_explicit(&sw->cfg, memory_order_acquire);
        bool pending = false;
        for (unsigned i = 0; i < c->nslots; i++) {
            struct vs_port *p = c->ports[i].port;
            if (p && p->cls->prepare_wait && p->cls->prepare_wait(p))
                pending = true;
        }
        if (pending || gen != c->gen)
            continue;
        int k = epoll_wait(sw->epfd, ev, 64, 1000);
        for (int j = 0; j < k; j++) {
            struct vs_port *p = ev[j].data.ptr;
            if (!p)
                kvc_ring_drain(sw->ctl_efd);
            else if (p->cls->ack)
                p->cls->ack(p);
        }
        idle = 0;
    }
    return NULL;
}

/* Wait until the data path has passed a quiescent point after gen. */
static void
synchronize(struct vs_switch *sw, uint64_t gen)
{
    if (!sw->running || pthread_equal(pthread_self(), sw->thread))
        return;
    atomic_fetch_add(&sw->sync_waiters, 1);
    pthread_mutex_lock(&sw->sync_lock);
    while (atomic_load(&sw->dp_seen_gen) < gen) {
        uint64_t one = 1;
        ssize_t w = write(sw->ctl_efd, &one, sizeof one);
        (void)w;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&sw->sync_cond, &sw->sync_lock, &ts);
    }
    pthread_mutex_unlock(&sw->sync_lock);
    atomic_fetch_sub(&sw->sync_waiters, 1);
}

static void
cfg_free(struct vs_cfg *c)
{
    if (!c)
        return;
    for (unsigned i = 0; i < c->nvnis; i++)
        free(c->vnis[i].vteps);
    free(c->vnis);
    free(c->ports);
    free(c);
}

/* Build a snapshot of the current configuration; -EINVAL if the port
 * groups' VNIs and VLANs do not map one to one. */
static int
cfg_build(struct vs_switch *sw, struct vs_cfg **out)
{
    struct vs_cfg *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    int rc = -ENOMEM;
    c->mtu = sw->mtu;
    for (struct vs_port *p = sw->ports; p; p = p->next)
        if (p->slot + 1 > c->nslots)
            c->nslots = p->slot + 1;
    c->ports = calloc(c->nslots ? c->nslots : 1, sizeof *c->ports);
    if (!c->ports)
        goto fail;
    for (struct vs_port *p = sw->ports; p; p = p->next) {
        struct vs_cfg_port *cp = &c->ports[p->slot];
        cp->port = p;
        cp->pg = atomic_load(&p->pg);
        if (cp->pg)
            cp->pgc = cp->pg->cfg;
        if (p->cls->is_uplink)
            c->uplink = p;
    }
    for (int i = 0; i <= VS_VLAN_MAX; i++)
        c->vlan_vni[i] = -1;
    unsigned npg = 0;
    for (struct vs_pg *g = sw->pgs; g; g = g->next)
        npg++;
    c->vnis = calloc(npg ? npg : 1, sizeof *c->vnis);
    if (!c->vnis)
        goto fail;
    rc = -EINVAL;
    for (struct vs_pg *g = sw->pgs; g; g = g->next) {
        if (!g->cfg.vni)
            continue;
        int16_t vi = c->vlan_vni[g->cfg.vlan];
        const struct vs_cfg_vni *same = vni_by_id(c, g->cfg.vni);
        if (vi >= 0 && c->vnis[vi].vni != g->cfg.vni)
            goto fail;          /* one VLAN, two VNIs */
        if (same && same->vlan != g->cfg.vlan)
            goto fail;          /* one VNI, two VLANs */
        if (same)
            continue;
        struct vs_cfg_vni *v = &c->vnis[c->nvnis];
        v->vni = g->cfg.vni;
        v->vlan = g->cfg.vlan;
        c->vlan_vni[g->cfg.vlan] = (int16_t)c->nvnis++;
        unsigned n = 0;
        for (struct vtep *t = sw->vteps; t; t = t->next)
            n += t->vni == v->vni;
        v->vteps = calloc(n ? n : 1, sizeof *v->vteps);
        if (!v->vteps) {
            rc = -ENOMEM;
            goto fail;
        }
        for (struct vtep *t = sw->vteps; t; t = t->next)
            if (t->vni == v->vni)
                v->vteps[v->nvteps++] = t->addr;
    }
    *out = c;
    return 0;
fail:
    cfg_free(c);
    return rc;
}

/* Build and publish; on error nothing changes.  Called with sw->lock. */
static int
publish(struct vs_switch *sw)
{
    struct vs_cfg *c;
    int rc = cfg_build(sw, &c);
    if (rc)
        return rc;
    c->gen = ++sw->gen;
    struct vs_cfg *old = atomic_exchange_explicit(&sw->cfg, c, memory_order_acq_rel);
    synchronize(sw, c->gen);
    cfg_free(old);
    return 0;
}

/* --- Switch lifecycle ---------------------------------------------------- */
int
vs_create(const struct vs_switch_opts *o, struct vs_switch **out)
{
    struct vs_switch_opts d = { 0 };
    if (!o)
        o = &d;
    if (o->mtu && (o->mtu < VS_MTU_MIN || o->mtu > VS_MTU_MAX))
        return -EINVAL;
    if (o->name && strlen(o->name) >= VS_NAME_MAX)
        return -ENAMETOOLONG;
    struct vs_switch *sw = calloc(1, sizeof *sw);
    if (!sw)
        return -ENOMEM;
    int rc = -ENOMEM;
    snprintf(sw->name, sizeof sw->name, "%s", o->name ? o->name : "vSwitch0");
    pthread_mutex_init(&sw->lock, NULL);
    pthread_mutex_init(&sw->mac_lock, NULL);
    pthread_mutex_init(&sw->sync_lock, NULL);
    pthread_cond_init(&sw->sync_cond, NULL);
    sw->mtu = o->mtu ? o->mtu : VS_MTU_DEFAULT;
    sw->age_ns = (uint64_t)(o->mac_age_sec ? o->mac_age_sec : 300) * 1000000000ull;
    sw->now = mono_now;
    sw->epfd = epoll_create1(EPOLL_CLOEXEC);
    sw->ctl_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (sw->epfd < 0 || sw->ctl_efd < 0) {
        rc = -errno;
        goto fail;
    }
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
    if (epoll_ctl(sw->epfd, EPOLL_CTL_ADD, sw->ctl_efd, &ev) < 0) {
        rc = -errno;
        goto fail;
    }
    size_t stride = VS_HEADROOM + VS_FRAME_MAX + 64;
    sw->pktmem = malloc(stride * VS_BATCH);
    if (!sw->pktmem)
        goto fail;
    for (int i = 0; i < VS_BATCH; i++)
        sw->pkts[i].buf = sw->pktmem + stride * i;
    if ((rc = mac_init(&sw->mac, o->mac_table_max ? o->mac_table_max : 8192)))
        goto fail;
    pthread_mutex_lock(&sw->lock);
    rc = publish(sw);
    pthread_mutex_unlock(&sw->lock);
    if (rc)
        goto fail;
    *out = sw;
    return 0;
fail:
    vs_destroy(sw);
    return rc;
}

void
vs_destroy(struct vs_switch *sw)
{
    if (!sw)
        return;
    vs_stop(sw);
    while (sw->ports) {
        struct vs_port *p = sw->ports;
        sw->ports = p->next;
        p->cls->destroy(p);
    }
    while (sw->pgs) {
        struct vs_pg *g = sw->pgs;
        sw->pgs = g->next;
        free(g);
    }
    while (sw->vteps) {
        struct vtep *t = sw->vteps;
        sw->vteps = t->next;
        free(t);
    }
    cfg_free(atomic_load(&sw->cfg));
    free(sw->mac.buckets);
    free(sw->mac.e);
    free(sw->pktmem);
    if (sw->epfd >= 0)
        close(sw->epfd);
    if (sw->ctl_efd >= 0)
        close(sw->ctl_efd);
    pthread_mutex_destroy(&sw->lock);
    pthread_mutex_destroy(&sw->mac_lock);
    pthread_mutex_destroy(&sw->sync_lock);
    pthread_cond_destroy(&sw->sync_cond);
    free(sw);
}

const char *
vs_name(const struct vs_switch *sw)
{
    return sw->name;
}

int
vs_start(struct vs_switch *sw)
{
    pthread_mutex_lock(&sw->lock);
    int rc = 0;
    if (!sw->running) {
        atomic_store(&sw->stop, false);
        rc = -pthread_create(&sw->thread, NULL, dp_thread, sw);
        if (!rc) {
            sw->running = true;
            pthread_setname_np(sw->thread, "vswitch-dp");
        }
    }
    pthread_mutex_unlock(&sw->lock);
    return rc;
}

void
vs_stop(struct vs_switch *sw)
{
    if (!sw)
        return;
    pthread_mutex_lock(&sw->lock);
    if (sw->running) {
        atomic_store(&sw->stop, true);
        uint64_t one = 1;
        ssize_t w = write(sw->ctl_efd, &one, sizeof one);
        (void)w;
        pthread_join(sw->thread, NULL);
        sw->running = false;
    }
    pthread_mutex_unlock(&sw->lock);
}

int
vs_run_once(struct vs_switch *sw)
{
    if (sw->running)
        return -EBUSY;
    uint64_t gen;
    return dp_pass(sw, &gen);
}

int
vs_set_mtu(struct vs_switch *sw, unsigned mtu)
{
    if (mtu < VS_MTU_MIN || mtu > VS_MTU_MAX)
        return -EINVAL;
    pthread_mutex_lock(&sw->lock);
    unsigned old = sw->mtu;
    sw->mtu = mtu;
    int rc = publish(sw);
    if (rc)
        sw->mtu = old;
    pthread_mutex_unlock(&sw->lock);
    return rc;
}

unsigned
vs_get_mtu(struct vs_switch *sw)
{
    pthread_mutex_lock(&sw->lock);
    unsigned m = sw->mtu;
    pthread_mutex_unlock(&sw->lock);
    return m;
}

/* --- Port groups ----------------------------------------------------------- */
static struct vs_pg *
pg_find(struct vs_switch *sw, const char *name)
{
    for (struct vs_pg *g = sw->pgs; g; g = g->next)
        if (!strcmp(g->name, name))
            return g;
    return NULL;
}

static int
pg_check(const struct vs_pg_config *c)
{
    if (c->vlan > VS_VLAN_TRUNK || c->vni > VS_VNI_MAX)
        return -EINVAL;
    if (c->vni && c->vlan == VS_VLAN_TRUNK)
        return -EINVAL;         /* a VNI carries one VLAN's frames, untagged */
    const struct vs_shaping *s = &c->shaping;
    if (s->enabled && (!s->average_bps || !s->burst_bytes || s->peak_bps < s->average_bps))
        return -EINVAL;
    return 0;
}

int
vs_pg_add(struct vs_switch *sw, const char *name, const struct vs_pg_config *cfg)
{
    if (!name || !*name || !cfg)
        return -EINVAL;
    if (strlen(name) >= VS_NAME_MAX)
        return -ENAMETOOLONG;
    int rc = pg_check(cfg);
    if (rc)
        return rc;
    pthread_mutex_lock(&sw->lock);
    if (pg_find(sw, name)) {
        rc = -EEXIST;
        goto out;
    }
    struct vs_pg *g = calloc(1, sizeof *g);
    if (!g) {
        rc = -ENOMEM;
        goto out;
    }
    snprintf(g->name, sizeof g->name, "%s", name);
    g->cfg = *cfg;
    g->next = sw->pgs;
    sw->pgs = g;
    rc = publish(sw);
    if (rc) {
        sw->pgs = g->next;
        free(g);
    } else {
        kvc_info("%s: port group %s added (vlan %u vni %u)", sw->name, name,
                 cfg->vlan, cfg->vni);
    }
out:
    pthread_mutex_unlock(&sw->lock);
    return rc;
}

int
vs_pg_update(struct vs_switch *sw, const char *name, const struct vs_pg_config *cfg)
{
    if (!name || !cfg)
        return -EINVAL;
    int rc = pg_check(cfg);
    if (rc)
        return rc;
    pthread_mutex_lock(&sw->lock);
    struct vs_pg *g = pg_find(sw, name);
    if (!g) {
        rc = -ENOENT;
        goto out;
    }
    struct vs_pg_config old = g->cfg;
    g->cfg = *cfg;
    rc = publish(sw);
    if (rc)
        g->cfg = old;
out:
    pthread_mutex_unlock(&sw->lock);
    return rc;
}

int
vs_pg_remove(struct vs_switch *sw, const char *name)
{
    if (!name)
        return -EINVAL;
    pthread_mutex_lock(&sw->lock);
    int rc = -ENOENT;
    for (struct vs_pg **pp = &sw->pgs; *pp; pp = &(*pp)->next) {
        struct vs_pg *g = *pp;
        if (strcmp(g->name, name))
            continue;
        if (g->nports) {
            rc = -EBUSY;
            break;
        }
        *pp = g->next;
        rc = publish(sw);
        if (rc) {
            *pp = g;
            break;
        }
        free(g);
        kvc_info("%s: port group %s removed", sw->name, name);
        break;
    }
    pthread_mutex_unlock(&sw->lock);
    return rc;
}

int
vs_pg_get(struct vs_switch *sw, const char *name, struct vs_pg_config *cfg)
{
    pthread_mutex_lock(&sw->lock);
    struct vs_pg *g = name ? pg_find(sw, name) : NULL;
    if (g)
        *cfg = g->cfg;
    pthread_mutex_unlock(&sw->lock);
    return g ? 0 : -ENOENT;
}

int
vs_pg_stats(struct vs_switch *sw, const char *name, struct vs_stats *s)
{
    pthread_mutex_lock(&sw->lock);
    struct vs_pg *g = name ? pg_find(sw, name) : NULL;
    if (g)
        stats_read(&g->stats, s);
    pthread_mutex_unlock(&sw->lock);
    return g ? 0 : -ENOENT;
}

/* --- Ports ----------------------------------------------------------------- */
void
vs_port_init(struct vs_port *p, const struct vs_port_class *cls,
             struct vs_switch *sw, const char *name, const uint8_t *mac)
{
    p->cls = cls;
    p->sw = sw;
    p->fd = -1;
    snprintf(p->name, sizeof p->name, "%s", name);
    uint64_t m = mac ? vs_mac_to_u64(mac) : 0;
    atomic_store(&p->cfg_mac, m);
    atomic_store(&p->eff_mac, m);
    atomic_store(&p->link_up, true);
}

static struct vs_port *
port_find_locked(struct vs_switch *sw, const char *name)
{
    for (struct vs_port *p = sw->ports; p; p = p->next)
        if (!strcmp(p->name, name))
            return p;
    return NULL;
}

int
vs_port_attach(struct vs_switch *sw, struct vs_port *p, const char *pgname)
{
    int rc = 0;
    pthread_mutex_lock(&sw->lock);
    struct vs_pg *g = NULL;
    if (port_find_locked(sw, p->name)) {
        rc = -EEXIST;
        goto fail;
    }
    if (p->cls->is_uplink) {
        for (struct vs_port *q = sw->ports; q; q = q->next)
            if (q->cls->is_uplink) {
                rc = -EEXIST;
                goto fail;
            }
    } else if (!pgname || !(g = pg_find(sw, pgname))) {
        rc = -ENOENT;
        goto fail;
    }
    unsigned slot = 0;
    while (slot < VS_MAX_PORTS && sw->slots[slot])
        slot++;
    if (slot == VS_MAX_PORTS) {
        rc = -ENOSPC;
        goto fail;
    }
    p->slot = slot;
    atomic_store(&p->pg, g);
    if (p->fd >= 0) {
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = p };
        if (epoll_ctl(sw->epfd, EPOLL_CTL_ADD, p->fd, &ev) < 0) {
            rc = -errno;
            goto fail;
        }
    }
    sw->slots[slot] = p;
    p->next = sw->ports;
    sw->ports = p;
    if (g)
        g->nports++;
    rc = publish(sw);
    if (rc) {
        sw->ports = p->next;
        sw->slots[slot] = NULL;
        if (g)
            g->nports--;
        if (p->fd >= 0)
            epoll_ctl(sw->epfd, EPOLL_CTL_DEL, p->fd, NULL);
        goto fail;
    }
    kvc_info("%s: port %s (%s) connected to %s", sw->name, p->name, p->cls->type,
             g ? g->name : "uplink");
    pthread_mutex_unlock(&sw->lock);
    return 0;
fail:
    pthread_mutex_unlock(&sw->lock);
    p->cls->destroy(p);
    return rc;
}

static int
check_name(const char *name)
{
    if (!name || !*name)
        return -EINVAL;
    return strlen(name) < VS_NAME_MAX ? 0 : -ENAMETOOLONG;
}

int
vs_port_add_dummy(struct vs_switch *sw, const char *name, const char *pg,
                  const uint8_t mac[6], struct vs_port **out)
{
    struct vs_port *p;
    int rc = check_name(name);
    if (rc || (rc = vs_dummy_create(sw, name, mac, &p)))
        return rc;
    rc = vs_port_attach(sw, p, pg);
    if (!rc && out)
        *out = p;
    return rc;
}

int
vs_port_add_ring(struct vs_switch *sw, const char *name, const char *pg,
                 const uint8_t mac[6], const struct vs_ring_opts *o,
                 struct vs_port **out)
{
    struct vs_port *p;
    int rc = check_name(name);
    if (rc || (rc = vs_ring_port_create(sw, name, mac, o, vs_get_mtu(sw), &p)))
        return rc;
    rc = vs_port_attach(sw, p, pg);
    if (!rc && out)
        *out = p;
    return rc;
}

int
vs_port_add_tap(struct vs_switch *sw, const char *name, const char *pg,
                const char *ifname, const uint8_t mac[6], struct vs_port **out)
{
    struct vs_port *p;
    int rc = check_name(name);
    if (rc || (rc = vs_tap_create(sw, name, ifname, mac, &p)))
        return rc;
    rc = vs_port_attach(sw, p, pg);
    if (!rc && out)
        *out = p;
    return rc;
}

int
vs_uplink_add_vxlan(struct vs_switch *sw, const char *name, const char *ip,
                    uint16_t udp_port, struct vs_port **out)
{
    struct vs_port *p;
    int rc = check_name(name);
    if (rc || (rc = vs_vxlan_create(sw, name, ip, udp_port ? udp_port : VS_VXLAN_PORT, &p)))
        return rc;
    rc = vs_port_attach(sw, p, NULL);
    if (!rc && out)
        *out = p;
    return rc;
}

static int
vtep_addr(const char *ip, uint16_t port, struct sockaddr_in *a)
{
    memset(a, 0, sizeof *a);
    a->sin_family = AF_INET;
    a->sin_port = htons(port ? port : VS_VXLAN_PORT);
    return ip && inet_pton(AF_INET, ip, &a->sin_addr) == 1 ? 0 : -EINVAL;
}

int
vs_vtep_add(struct vs_switch *sw, uint32_t vni, const char *ip, uint16_t port)
{
    struct sockaddr_in a;
    if (!vni || vni > VS_VNI_MAX || vtep_addr(ip, port, &a))
        return -EINVAL;
    pthread_mutex_lock(&sw->lock);
    int rc = 0;
    for (struct vtep *t = sw->vteps; t; t = t->next)
        if (t->vni == vni && t->addr.sin_addr.s_addr == a.sin_addr.s_addr
            && t->addr.sin_port == a.sin_port) {
            rc = -EEXIST;
            goto out;
        }
    struct vtep *t = calloc(1, sizeof *t);
    if (!t) {
        rc = -ENOMEM;
        goto out;
    }
    t->vni = vni;
    t->addr = a;
    t->next = sw->vteps;
    sw->vteps = t;
    rc = publish(sw);
    if (rc) {
        sw->vteps = t->next;
        free(t);
    }
out:
    pthread_mutex_unlock(&sw->lock);
    return rc;
}

int
vs_vtep_remove(struct vs_switch *sw, uint32_t vni, const char *ip, uint16_t port)
{
    struct sockaddr_in a;
    if (vtep_addr(ip, port, &a))
        return -EINVAL;
    pthread_mutex_lock(&sw->lock);
    int rc = -ENOENT;
    for (struct vtep **tp = &sw->vteps; *tp; tp = &(*tp)->next) {
        struct vtep *t = *tp;
        if (t->vni == vni && t->addr.sin_addr.s_addr == a.sin_addr.s_addr
            && t->addr.sin_port == a.sin_port) {
            *tp = t->next;
            rc = publish(sw);
            if (rc) {
                *tp = t;
                break;
            }
            free(t);
            break;
        }
    }
    pthread_mutex_unlock(&sw->lock);
    return rc;
}

struct vs_port *
vs_port_find(struct vs_switch *sw, const char *name)
{
    pthread_mutex_lock(&sw->lock);
    struct vs_port *p = name ? port_find_locked(sw, name) : NULL;
    pthread_mutex_unlock(&sw->lock);
    return p;
}

int
vs_port_remove(struct vs_switch *sw, struct vs_port *p)
{
    if (!p)
        return -EINVAL;
    pthread_mutex_lock(&sw->lock);
    struct vs_port **pp = &sw->ports;
    while (*pp && *pp != p)
        pp = &(*pp)->next;
    if (!*pp) {
        pthread_mutex_unlock(&sw->lock);
        return -ENOENT;
    }
    *pp = p->next;
    sw->slots[p->slot] = NULL;
    if (p->fd >= 0)
        epoll_ctl(sw->epfd, EPOLL_CTL_DEL, p->fd, NULL);
    int rc = publish(sw);
    if (rc) {
        /* Out of memory for the new snapshot: keep the port. */
        p->next = sw->ports;
        sw->ports = p;
        sw->slots[p->slot] = p;
        if (p->fd >= 0) {
            struct epoll_event ev = { .events = EPOLLIN, .data.ptr = p };
            epoll_ctl(sw->epfd, EPOLL_CTL_ADD, p->fd, &ev);
        }
        pthread_mutex_unlock(&sw->lock);
        return rc;
    }
    struct vs_pg *g = atomic_load(&p->pg);
    if (g)
        g->nports--;
    pthread_mutex_lock(&sw->mac_lock);
    mac_sweep(&sw->mac, p, 0, 0);
    pthread_mutex_unlock(&sw->mac_lock);
    kvc_info("%s: port %s removed", sw->name, p->name);
    p->cls->destroy(p);
    pthread_mutex_unlock(&sw->lock);
    return 0;
}

int
vs_port_set_pg(struct vs_switch *sw, struct vs_port *p, const char *pgname)
{
    if (!p || !pgname || p->cls->is_uplink)
        return -EINVAL;
    pthread_mutex_lock(&sw->lock);
    int rc = 0;
    struct vs_pg *g = pg_find(sw, pgname), *old = atomic_load(&p->pg);
    if (!g) {
        rc = -ENOENT;
        goto out;
    }
    if (g == old)
        goto out;
    atomic_store(&p->pg, g);
    rc = publish(sw);
    if (rc) {
        atomic_store(&p->pg, old);
        goto out;
    }
    old->nports--;
    g->nports++;
out:
    pthread_mutex_unlock(&sw->lock);
    return rc;
}

int
vs_port_set_mac(struct vs_port *p, const uint8_t mac[6])
{
    if (!p || !mac || (mac[0] & 1))
        return -EINVAL;
    atomic_store(&p->eff_mac, vs_mac_to_u64(mac));
    return 0;
}

void
vs_port_set_link(struct vs_port *p, bool up)
{
    atomic_store(&p->link_up, up);
}

const char *
vs_port_name(const struct vs_port *p)
{
    return p->name;
}

const char *
vs_port_type(const struct vs_port *p)
{
    return p->cls->type;
}

int
vs_port_stats(struct vs_port *p, struct vs_stats *s)
{
    if (!p || !s)
        return -EINVAL;
    stats_read(&p->stats, s);
    return 0;
}

int
vs_mac_lookup(struct vs_switch *sw, uint16_t vlan, const uint8_t mac[6],
              char *port_name, size_t cap)
{
    int rc = -ENOENT;
    uint64_t now = vs_now_ns(sw);
    pthread_mutex_lock(&sw->mac_lock);
    struct mac_entry *e = mac_find(&sw->mac, (uint64_t)vlan << 48 | vs_mac_to_u64(mac),
                                   now, sw->age_ns);
    if (e) {
        snprintf(port_name, cap, "%s", e->port->name);
        rc = 0;
    }
    pthread_mutex_unlock(&sw->mac_lock);
    return rc;
}

size_t
vs_mac_count(struct vs_switch *sw)
{
    pthread_mutex_lock(&sw->mac_lock);
    size_t n = sw->mac.count;
    pthread_mutex_unlock(&sw->mac_lock);
    return n;
}
