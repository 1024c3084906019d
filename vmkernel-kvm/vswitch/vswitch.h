/* The vSwitch: standard switches with port groups, hosted by vmkd.
 *
 * A switch forwards Ethernet frames between ports.  Ports sit behind a
 * vtable (port.h), like Open vSwitch's netdev providers: shared-memory ring
 * ports for VMs (ring.h is the ABI the vmx side maps), dummy ports for
 * tests, and a VXLAN uplink that stretches port groups with a VNI across
 * hosts.  See docs/vswitch.md for behaviour and the decisions behind it.
 *
 * Threads: every function here is callable from any thread (control plane).
 * The data path runs either in the switch's own thread (vs_start) or, in
 * tests, synchronously in vs_run_once.  Configuration is versioned: a
 * change builds a new immutable snapshot, publishes it with one atomic
 * store and frees the old one after the data path has passed a quiescent
 * point (RCU-like), so other ports' traffic never stops for a change.
 *
 * Errors: functions return 0 (or a count) on success, a negative errno
 * value on failure, and change nothing when they fail.  Destroy functions
 * accept NULL.
 */
#ifndef KVC_VSWITCH_H
#define KVC_VSWITCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VS_NAME_MAX 64
#define VS_VLAN_MAX 4094        /* highest VLAN ID a port group may use */
#define VS_VLAN_TRUNK 4095      /* port group that carries 802.1Q tags */
#define VS_MTU_MIN 68
#define VS_MTU_MAX 9000
#define VS_MTU_DEFAULT 1500
#define VS_VNI_MAX 0xffffffu
#define VS_VXLAN_PORT 4789      /* IANA port for VXLAN (RFC 7348) */
/* Largest frame any port can carry: MTU 9000 + Ethernet header + one tag. */
#define VS_FRAME_MAX (VS_MTU_MAX + 14 + 4)

struct vs_switch;
struct vs_port;

/* Layer 2 security policy of a port group.  ESXi's defaults for a standard
 * switch: promiscuous reject, MAC changes accept, forged transmits accept;
 * for a distributed port group all three reject (vs_pg_config_default). */
struct vs_security {
    bool allow_promiscuous;
    bool allow_mac_changes;
    bool allow_forged_transmits;
};

/* Traffic shaping of frames a port sends into the switch (ESXi's standard
 * switch shapes this direction only).  ESXi's units are Kbit/s and KB;
 * here bits per second and bytes. */
struct vs_shaping {
    bool enabled;
    uint64_t average_bps;
    uint64_t peak_bps;
    uint64_t burst_bytes;
};

struct vs_pg_config {
    uint16_t vlan;              /* 0 (untagged), 1-4094, or 4095 (trunk) */
    uint32_t vni;               /* 0: this host only; else distributed (VXLAN) */
    struct vs_security security;
    struct vs_shaping shaping;
};

/* ESXi's defaults: distributed=false for a standard port group. */
void vs_pg_config_default(struct vs_pg_config *, bool distributed);

struct vs_switch_opts {
    const char *name;
    unsigned mtu;               /* 0: 1500 */
    unsigned mac_age_sec;       /* 0: 300 (ESXi and Linux bridge default) */
    unsigned mac_table_max;     /* 0: 8192 entries */
};

/* Why a frame was dropped.  Counted per port and per port group. */
enum vs_drop {
    VS_DROP_RUNT,               /* shorter than an Ethernet header */
    VS_DROP_OVERSIZE,           /* longer than the MTU allows (or a slot) */
    VS_DROP_MALFORMED,          /* bad slot length, bad VXLAN header */
    VS_DROP_RING_ERROR,         /* impossible ring indexes from the peer */
    VS_DROP_VLAN,               /* tag not allowed on this port, bad VID */
    VS_DROP_FORGED,             /* source MAC not the port's (policy) */
    VS_DROP_MAC_CHANGE,         /* port's MAC changed, policy rejects */
    VS_DROP_SHAPED,             /* over the traffic shaping budget */
    VS_DROP_NOSPACE,            /* receiver's ring or queue full */
    VS_DROP_BAD_SRC,            /* multicast or zero source MAC */
    VS_DROP_UNKNOWN_VNI,        /* VXLAN frame for a VNI not configured */
    VS_DROP_UNKNOWN_VTEP,       /* VXLAN frame from a VTEP not configured */
    VS_DROP_LINK_DOWN,          /* port link is down */
    VS_DROP__N
};
const char *vs_drop_name(enum vs_drop);

/* rx: frames the switch received from the port; tx: frames the switch
 * delivered to the port (switch's point of view). */
struct vs_stats {
    uint64_t rx_packets, rx_bytes;
    uint64_t tx_packets, tx_bytes;
    uint64_t drops[VS_DROP__N];
};
uint64_t vs_stats_drops_total(const struct vs_stats *);

/* --- Switch ------------------------------------------------------------ */
int vs_create(const struct vs_switch_opts *, struct vs_switch **out);
/* Stops the data path, destroys every port. */
void vs_destroy(struct vs_switch *);
const char *vs_name(const struct vs_switch *);
/* Start/stop the data path thread.  Without it, vs_run_once drives it. */
int vs_start(struct vs_switch *);
void vs_stop(struct vs_switch *);
/* One pass over every port: receive, switch, flush.  Returns the number of
 * frames received, or -EBUSY while the data path thread runs. */
int vs_run_once(struct vs_switch *);
/* 68..9000; live. */
int vs_set_mtu(struct vs_switch *, unsigned mtu);
unsigned vs_get_mtu(struct vs_switch *);
/* Clock used for MAC aging and shaping (default CLOCK_MONOTONIC, ns). */
void vs_set_clock(struct vs_switch *, uint64_t (*now_ns)(void *ctx), void *ctx);

/* --- Port groups --------------------------------------------------------- */
int vs_pg_add(struct vs_switch *, const char *name, const struct vs_pg_config *);
int vs_pg_update(struct vs_switch *, const char *name, const struct vs_pg_config *);
/* -EBUSY while ports are connected to it (as ESXi refuses). */
int vs_pg_remove(struct vs_switch *, const char *name);
int vs_pg_get(struct vs_switch *, const char *name, struct vs_pg_config *);
int vs_pg_stats(struct vs_switch *, const char *name, struct vs_stats *);

/* --- Ports ------------------------------------------------------------- */
/* mac: the adapter's MAC from the VM's configuration, or NULL for a port
 * without one (it then receives flooded unicast like a bridge port, and
 * the forged-transmit check has nothing to compare with). */
int vs_port_add_dummy(struct vs_switch *, const char *name, const char *pg,
                      const uint8_t mac[6], struct vs_port **out);

struct vs_ring_opts {
    unsigned nslots;            /* power of two, 0: 256 */
    unsigned slot_size;         /* 0: fits the switch's MTU at creation */
};
int vs_port_add_ring(struct vs_switch *, const char *name, const char *pg,
                     const uint8_t mac[6], const struct vs_ring_opts *,
                     struct vs_port **out);

/* TAP port: creates (or attaches to) kernel interface ifname and connects
 * it to a port group, like an ESXi VMkernel adapter.  Needs CAP_NET_ADMIN;
 * the interface is gone when the port is removed (unless persistent). */
int vs_port_add_tap(struct vs_switch *, const char *name, const char *pg,
                    const char *ifname, const uint8_t mac[6], struct vs_port **out);

/* VXLAN uplink bound to local_ip:udp_port (udp_port 0: 4789).  One per
 * switch. */
int vs_uplink_add_vxlan(struct vs_switch *, const char *name,
                        const char *local_ip, uint16_t udp_port,
                        struct vs_port **out);
/* Remote VTEPs of a VNI (static head-end replication list); frames from
 * other addresses are dropped. */
int vs_vtep_add(struct vs_switch *, uint32_t vni, const char *ip, uint16_t udp_port);
int vs_vtep_remove(struct vs_switch *, uint32_t vni, const char *ip, uint16_t udp_port);

struct vs_port *vs_port_find(struct vs_switch *, const char *name);
/* Disconnect and destroy the port (after the data path let go of it). */
int vs_port_remove(struct vs_switch *, struct vs_port *);
int vs_port_set_pg(struct vs_switch *, struct vs_port *, const char *pg);
/* The MAC the guest now uses (virtio-net can change it); policy
 * "MAC address changes" compares it with the configured one. */
int vs_port_set_mac(struct vs_port *, const uint8_t mac[6]);
void vs_port_set_link(struct vs_port *, bool up);
const char *vs_port_name(const struct vs_port *);
const char *vs_port_type(const struct vs_port *);
int vs_port_stats(struct vs_port *, struct vs_stats *);

/* Ring port: the fds the vmx side needs (the switch keeps ownership). */
int vs_port_ring_fds(struct vs_port *, int *memfd, int *kick_fd, int *call_fd);

/* Dummy port: what the far end of a cable would do. */
int vs_dummy_inject(struct vs_port *, const void *frame, size_t len);
/* Next frame the switch delivered: its length, or -EAGAIN; -EMSGSIZE if
 * it does not fit (the frame is kept). */
int vs_dummy_recv(struct vs_port *, void *buf, size_t cap);
size_t vs_dummy_pending(struct vs_port *);

/* --- Introspection ------------------------------------------------------- */
/* Port name that MAC was learned on in a VLAN; -ENOENT if none (or aged). */
int vs_mac_lookup(struct vs_switch *, uint16_t vlan, const uint8_t mac[6],
                  char *port_name, size_t cap);
size_t vs_mac_count(struct vs_switch *);

int vs_parse_mac(const char *s, uint8_t mac[6]);

#endif
