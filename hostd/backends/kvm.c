/* The kvm backend: real VMs through vmkd (vmkernel-kvm/), which spawns and
 * supervises one vmx per VM and outlives hostd.
 *
 * Not implemented yet: vmkd's control protocol (proto/vmkd.proto) is not in
 * the tree.  Until it is, a host started with --backend kvm refuses to start
 * and says why, rather than pretend to run VMs. */
#include <errno.h>

#include "log.h"
#include "hostd/backend.h"

KVC_LOG_MODULE(kvm);

static int
kvm_init(struct hostd_host *h, void **priv)
{
    kvc_err("%s: the kvm backend needs vmkd's control protocol, which this "
            "build does not have yet; use --backend sim", h->name);
    return -ENOSYS;
}

static void
kvm_fini(struct hostd_host *h, void *priv)
{
}

const struct hostd_backend_ops hostd_backend_kvm = {
    .name = "kvm",
    .init = kvm_init,
    .fini = kvm_fini,
};
