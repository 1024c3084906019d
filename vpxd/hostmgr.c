/* vpxd's host manager (see hostmgr.h).
 *
 * Until the RPC transport lands, every host operation fails with -ENOSYS and
 * says so: nothing here pretends to reach a host. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "vpxd/hostmgr.h"

KVC_LOG_MODULE(hostmgr);

struct hostmgr {
    struct event_base *base;
    struct hostmgr_config cfg;
    struct hostmgr_ops ops;
    void *ops_arg;
};

const char *
hostmgr_conn_state_name(enum hostmgr_conn_state s)
{
    switch (s) {
    case HOSTMGR_DISCONNECTED: return "disconnected";
    case HOSTMGR_CONNECTING: return "connecting";
    case HOSTMGR_CONNECTED: return "connected";
    case HOSTMGR_NOT_RESPONDING: return "not_responding";
    }
    return "unknown";
}

const char *
hostmgr_power_state_name(enum hostmgr_power_state s)
{
    switch (s) {
    case HOSTMGR_POWERED_OFF: return "POWERED_OFF";
    case HOSTMGR_POWERED_ON: return "POWERED_ON";
    case HOSTMGR_SUSPENDED: return "SUSPENDED";
    }
    return "UNKNOWN";
}

int
hostmgr_new(struct event_base *base, const struct hostmgr_config *cfg,
            const struct hostmgr_ops *ops, void *ops_arg, struct hostmgr **out)
{
    struct hostmgr *hm;

    if (!base || !cfg || !out)
        return -EINVAL;
    hm = calloc(1, sizeof *hm);
    if (!hm)
        return -ENOMEM;
    hm->base = base;
    hm->cfg = *cfg;
    hm->cfg.cert_file = hm->cfg.key_file = NULL;
    if (ops)
        hm->ops = *ops;
    hm->ops_arg = ops_arg;
    *out = hm;
    return 0;
}

void
hostmgr_free(struct hostmgr *hm)
{
    free(hm);
}

const char *
hostmgr_thumbprint(const struct hostmgr *hm)
{
    return NULL;
}

static int
not_yet(const char *what)
{
    kvc_warn("%s: host connections are not implemented yet", what);
    return -ENOSYS;
}

int
hostmgr_probe(struct hostmgr *hm, const char *address, uint16_t port,
              hostmgr_probe_cb cb, void *arg)
{
    return not_yet(__func__);
}

int
hostmgr_host_attach(struct hostmgr *hm, const char *host_id,
                    const char *address, uint16_t port, const char *thumbprint,
                    const char *user, const char *password,
                    hostmgr_done_cb cb, void *arg)
{
    return not_yet(__func__);
}

int
hostmgr_host_detach(struct hostmgr *hm, const char *host_id, bool forget)
{
    return -ENOENT;
}

int
hostmgr_host_status(const struct hostmgr *hm, const char *host_id,
                    struct hostmgr_host_status *out)
{
    return -ENOENT;
}

int
hostmgr_host_maintenance(struct hostmgr *hm, const char *host_id, bool enter,
                         hostmgr_done_cb cb, void *arg)
{
    return not_yet(__func__);
}

int
hostmgr_vm_create(struct hostmgr *hm, const char *host_id,
                  const struct hostmgr_vm_spec *spec, hostmgr_vm_cb cb, void *arg)
{
    return not_yet(__func__);
}

int
hostmgr_vm_reconfigure(struct hostmgr *hm, const char *host_id,
                       const char *vm_uuid, uint32_t cpu_count,
                       uint64_t memory_mib, hostmgr_vm_cb cb, void *arg)
{
    return not_yet(__func__);
}

int
hostmgr_vm_power(struct hostmgr *hm, const char *host_id, const char *vm_uuid,
                 enum hostmgr_power_op op, hostmgr_vm_cb cb, void *arg)
{
    return not_yet(__func__);
}

int
hostmgr_vm_delete(struct hostmgr *hm, const char *host_id, const char *vm_uuid,
                  hostmgr_done_cb cb, void *arg)
{
    return not_yet(__func__);
}
