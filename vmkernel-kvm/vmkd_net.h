/* vmkd's network: one vSwitch (vmkernel-kvm/vswitch/) hosted in vmkd, its
 * port groups and VXLAN uplink from vmkd.conf, and a ring port per powered-on
 * VM's adapter whose memfd and eventfds vmx inherits.  See docs/vmkd.md
 * ("Network") and docs/vswitch.md.
 *
 * Functions return 0 or -errno; messages go to a `why` buffer.  Destroy
 * functions accept NULL. */
#ifndef KVC_VMKD_NET_H
#define KVC_VMKD_NET_H

#include <stddef.h>

#include "configfile.h"
#include "vmkd.h"
#include "vswitch/vswitch.h"

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

#endif
