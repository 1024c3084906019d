/* vmkd's network: one vSwitch (vmkernel-kvm/vswitch/) hosted in vmkd, its
 * port groups and VXLAN uplink from vmkd.conf, and a ring port per powered-on
 * VM's adapter whose memfd and eventfds vmx inherits.  See docs/vmkd.md
 * ("Network") and docs/vswitch.md.
 *
 * Functions return 0 or -errno; messages go to a `why` buffer.  Destroy
 * functions accept NULL. */
#ifndef KVC_VMKD_NET_H
#define KVC_VMKD_NET_H

#include <stdbool.h>
#include <stddef.h>

#include "configfile.h"
#include "vmkd.h"
#include "vswitch/vswitch.h"

struct event_base;
struct kvc_config;
struct vmkd_net;

/* The [vswitch] and [portgroup "NAME"] sections (add them to the schema). */
extern const struct kvc_cfg_key vmkd_net_vswitch_keys[];
extern const struct kvc_cfg_key vmkd_net_portgroup_keys[];

/* Values the schema cannot check (bad VTEP address, peak below average...):
 * 0, or -EINVAL with the message in WHY. */
int vmkd_net_check(const struct kvc_config *, char *why, size_t len);
/* Builds the switch and its port groups and starts its data path. */
int vmkd_net_new(const struct kvc_config *, struct vmkd_net **out, char *why, size_t len);
void vmkd_net_free(struct vmkd_net *);
/* The hooks vmkd_vm.c calls at power-on and when a VM goes away. */
void vmkd_net_hooks(struct vmkd_net *, struct vmkd_net_hooks *);
/* Counters of VM_ID's port and its port group name. */
int vmkd_net_port_stats(struct vmkd_net *, const char *vm_id, struct vs_stats *,
                        char *pg, size_t pglen);

/* Re-attach (docs/vmkd.md "A running VM gets its port back"): the ring
 * fds of VM_ID's port (still owned by the switch) and its port group, or
 * -ENOENT; and the connection that is now the port's link to the vmx
 * (taken over, the previous link closed). */
int vmkd_net_port_fds(struct vmkd_net *, const char *vm_id, int fds[3], char *pg, size_t pglen);
int vmkd_net_port_set_link(struct vmkd_net *, const char *vm_id, int fd);
/* The port socket (vmkd_port.c) where a running vmx asks for its port:
 * STATE-DIR/port.sock, served on BASE.  Errors: -errno, WHY says which. */
struct vmkd_port_srv;
int vmkd_port_srv_new(struct event_base *, struct vmkd *, struct vmkd_net *, const char *path,
                      struct vmkd_port_srv **out, char *why, size_t len);
void vmkd_port_srv_free(struct vmkd_port_srv *);

/* ---- live configuration (docs/vswitch.md "Live configuration") ----
 * Switches and port groups added, removed or changed while VMs run; every
 * change is written to STATE-DIR/vswitch.state, which vmkd_net_new applies
 * over vmkd.conf at start.  Port group names are unique on the host.
 * -EINVAL bad name/VLAN/ports/MTU, -EEXIST, -ENOENT, -EBUSY (a switch with
 * port groups or ports, a port group with ports); WHY says which. */
#define VMKD_NET_PORTS_DEFAULT 128
#define VMKD_NET_MAX_SWITCHES 64        /* -ENOSPC beyond (ESXi: 127 per host) */
#define VMKD_NET_MAX_PORTGROUPS 512     /* -ENOSPC beyond (ESXi: 512 per host) */
struct vmkd_net_sw_info {
    const char *name;
    unsigned ports, used, mtu;
};
struct vmkd_net_pg_info {
    const char *name, *vswitch;
    unsigned vlan, vni, ports;
};
struct net_pg;
bool vmkd_net_valid_name(const char *);
size_t vmkd_net_sw_count(const struct vmkd_net *);
size_t vmkd_net_pg_count(const struct vmkd_net *);
void vmkd_net_sw_nth(struct vmkd_net *, size_t i, struct vmkd_net_sw_info *);
void vmkd_net_pg_nth(struct vmkd_net *, size_t i, struct vmkd_net_pg_info *);
int vmkd_net_sw_add(struct vmkd_net *, const char *name, unsigned ports, unsigned mtu,
                    char *why, size_t len);
int vmkd_net_sw_remove(struct vmkd_net *, const char *name, char *why, size_t len);
int vmkd_net_pg_add(struct vmkd_net *, const char *name, const char *vswitch, unsigned vlan,
                    char *why, size_t len);
int vmkd_net_pg_remove(struct vmkd_net *, const char *name, char *why, size_t len);
int vmkd_net_pg_set_vlan(struct vmkd_net *, const char *name, unsigned vlan, char *why,
                         size_t len);
/* Internal to vmkd_net.c. */
struct net_pg *vmkd_net_pg_find(struct vmkd_net *, const char *name);
unsigned vmkd_net_sw_used(struct vmkd_net *, size_t sw);
int vmkd_net_state_load(struct vmkd_net *, char *why, size_t len);

#endif
