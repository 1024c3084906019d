/* Inside the kvm backend: what kvm.c exports to its other files
 * (kvm_snapshot.c), and their ops for kvm.c's table. */
#ifndef KVC_HOSTD_BACKENDS_KVM_H
#define KVC_HOSTD_BACKENDS_KVM_H

#include "rpc.h"
#include "hostd/backend.h"

/* kvm.c: the VM's vmx control connection while it is up, else NULL. */
struct kvc_rpc_client *hostd_kvm_vmx(struct hostd_vm *);
/* kvm.c: power the (powered-off) VM on from the vmx state file RESTORE
 * (vmx --restore through vmkd's PowerOn, lease and runtime config as for
 * any power-on); DONE once, after vm->power is set. */
void hostd_kvm_power_on_restore(struct hostd_host *, struct hostd_vm *, const char *restore,
                                hostd_be_done_fn done, void *ctx);

/* kvm_snapshot.c: backend.h snapshot_*_async. */
void hostd_kvm_snapshot_take(struct hostd_host *, struct hostd_vm *, const char *path,
                             bool memory, hostd_be_done_fn done, void *ctx);
void hostd_kvm_snapshot_revert(struct hostd_host *, struct hostd_vm *, const char *path,
                               enum vm_power power, bool memory, hostd_be_done_fn done,
                               void *ctx);
void hostd_kvm_snapshot_delete(struct hostd_host *, struct hostd_vm *, const char *path,
                               hostd_be_done_fn done, void *ctx);

#endif
