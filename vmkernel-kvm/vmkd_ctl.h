/* vmkd's control socket (kvc.vmkd methods, proto/vmkd.proto).
 * Returns 0 or -errno; vmkd_ctl_free accepts NULL. */
#ifndef KVC_VMKD_CTL_H
#define KVC_VMKD_CTL_H

#include <stdbool.h>
#include <sys/types.h>

#include "vmkd.h"

struct event_base;
struct vmkd_ctl;

/* Listens on PATH (file mode MODE; chowned to HOSTD_UID if > 0).  Requests
 * are served for uid 0 and HOSTD_UID (-1: root only). */
int vmkd_ctl_new(struct event_base *, struct vmkd *, const char *path, mode_t mode,
                 long hostd_uid, struct vmkd_ctl **out);
void vmkd_ctl_free(struct vmkd_ctl *);

/* For method files beside vmkd_ctl.c (vmkd_vswitch_ctl.c): whether the
 * caller may use vmkd (else the call is answered PERMISSION), and vmkd. */
struct kvc_rpc_call;
bool vmkd_ctl_allowed(struct vmkd_ctl *, struct kvc_rpc_call *);
struct vmkd *vmkd_ctl_vmkd(struct vmkd_ctl *);

/* vmkd_vswitch_ctl.c: the VMKD_VSWITCH_* and VMKD_PORTGROUP_* handlers
 * (handler arg: the vmkd_ctl). */
struct ProtobufCMessage;
void vmkd_vswitch_on_list(struct kvc_rpc_call *, const struct ProtobufCMessage *, void *);
void vmkd_vswitch_on_add(struct kvc_rpc_call *, const struct ProtobufCMessage *, void *);
void vmkd_vswitch_on_remove(struct kvc_rpc_call *, const struct ProtobufCMessage *, void *);
void vmkd_portgroup_on_add(struct kvc_rpc_call *, const struct ProtobufCMessage *, void *);
void vmkd_portgroup_on_remove(struct kvc_rpc_call *, const struct ProtobufCMessage *, void *);
void vmkd_portgroup_on_set(struct kvc_rpc_call *, const struct ProtobufCMessage *, void *);

/* vmkd_pool.c: VMKD_POOLS_SET and VMKD_POOLS_GET (handler arg: the
 * vmkd_ctl); vmkd_pools_free drops the applied tree, removing the pools'
 * cgroups if RMDIR_THEM (they must be empty). */
void vmkd_pools_on_set(struct kvc_rpc_call *, const struct ProtobufCMessage *, void *);
void vmkd_pools_on_get(struct kvc_rpc_call *, const struct ProtobufCMessage *, void *);
void vmkd_pools_free(bool rmdir_them);

#endif
