/* Port providers: the vtable behind every vSwitch port (like OVS's
 * netdev-provider.h) and the switch internals they share.  Not for users
 * of the switch: they include vswitch.h. */
#ifndef KVC_VSWITCH_PORT_H
#define KVC_VSWITCH_PORT_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>

#include "vswitch.h"

#define VS_BATCH 32
/* Room in front of a frame so a tag can be pushed without a copy. */
#define VS_HEADROOM 64

/* One received frame in the switch's own memory (never shared memory). */
struct vs_pkt {
    uint8_t *data;
    uint32_t len;
    uint32_t vni;               /* VXLAN: VNI it arrived on */
    struct sockaddr_in vtep;    /* VXLAN: outer source */
    uint8_t *buf;               /* start of the buffer (data - headroom) */
};

/* How to deliver one frame. */
struct vs_tx_meta {
    uint16_t vlan_tag;          /* nonzero: insert an 802.1Q tag with this VID */
    uint32_t vni;               /* VXLAN: VNI */
    const struct sockaddr_in *vtep;     /* VXLAN: destination VTEP */
};

struct vs_port_class {
    const char *type;
    bool is_uplink;             /* no port group, no security policy */
    /* Receive up to max frames into pkts[i].data (capacity VS_FRAME_MAX).
     * Returns the number received; bad input is counted with vs_port_drop
     * and skipped. */
    int (*recv)(struct vs_port *, struct vs_pkt *pkts, int max);
    /* Queue one frame for the port; 0, or a drop reason to count. */
    int (*send)(struct vs_port *, const uint8_t *frame, uint32_t len,
                const struct vs_tx_meta *);
    /* Make queued frames visible to the peer and notify it if asleep. */
    void (*flush)(struct vs_port *);
    /* About to sleep: arm notifications; true if work is already there. */
    bool (*prepare_wait)(struct vs_port *);
    /* Woken by fd: reset the notification. */
    void (*ack)(struct vs_port *);
    void (*destroy)(struct vs_port *);
};

struct vs_shaper_state {
    uint64_t last_ns;
    uint64_t avg_tokens, peak_tokens;   /* bytes */
    bool primed;
};

struct vs_atomic_stats {
    _Atomic uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes;
    _Atomic uint64_t drops[VS_DROP__N];
};

struct vs_port {
    const struct vs_port_class *cls;
    struct vs_switch *sw;
    char name[VS_NAME_MAX];
    unsigned slot;              /* index in every config snapshot */
    int fd;                     /* polled by the data path, or -1 */
    struct vs_pg *_Atomic pg;   /* current group (for counting), or NULL */
    _Atomic uint64_t cfg_mac;   /* configured MAC, 0 if none */
    _Atomic uint64_t eff_mac;   /* MAC the guest uses now */
    _Atomic bool link_up;
    bool dirty;                 /* data path: needs flush */
    struct vs_shaper_state shaper;      /* data path only */
    struct vs_atomic_stats stats;
    struct vs_port *next;       /* switch's list (control plane) */
};

struct vs_pg {
    char name[VS_NAME_MAX];
    struct vs_pg_config cfg;
    unsigned nports;
    struct vs_atomic_stats stats;
    struct vs_pg *next;
};

/* Data path only writes counters: a plain load+store, no locked op. */
static inline void
vs_ctr_add(_Atomic uint64_t *c, uint64_t v)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
                          memory_order_relaxed);
}

static inline uint64_t
vs_mac_to_u64(const uint8_t *m)
{
    return (uint64_t)m[0] << 40 | (uint64_t)m[1] << 32 | (uint64_t)m[2] << 24
        | (uint64_t)m[3] << 16 | (uint64_t)m[4] << 8 | m[5];
}

/* Count a drop on a port (and its group, if the port is in one now). */
void vs_port_drop(struct vs_port *, enum vs_drop, uint32_t bytes);
/* Initialise the common part; the class's constructor calls it. */
void vs_port_init(struct vs_port *, const struct vs_port_class *,
                  struct vs_switch *, const char *name, const uint8_t *mac);
/* Connect a constructed port (takes ownership, whether it succeeds or not). */
int vs_port_attach(struct vs_switch *, struct vs_port *, const char *pg);

/* Data path clock. */
uint64_t vs_now_ns(struct vs_switch *);

/* Providers. */
int vs_dummy_create(struct vs_switch *, const char *name, const uint8_t *mac,
                    struct vs_port **);
int vs_ring_port_create(struct vs_switch *, const char *name, const uint8_t *mac,
                        const struct vs_ring_opts *, unsigned mtu, struct vs_port **);
int vs_tap_create(struct vs_switch *, const char *name, const char *ifname,
                  const uint8_t *mac, struct vs_port **);
int vs_vxlan_create(struct vs_switch *, const char *name, const char *ip,
                    uint16_t port, struct vs_port **);
/* VXLAN parse/encap helpers, shared with the fuzz target. */
#define VS_VXLAN_HLEN 8
int vs_vxlan_decap(const uint8_t *dgram, size_t len, uint32_t *vni);

#endif
