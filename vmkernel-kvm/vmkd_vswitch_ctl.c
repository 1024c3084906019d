/* vmkd's live vSwitch methods (VMKD_VSWITCH_*, VMKD_PORTGROUP_*;
 * proto/vmkd.proto): hostd's `network vswitch standard ...` reaches the data
 * plane here.  The work is vmkd_net.c's; this file maps RPC to it.  Every
 * call answers with the whole configuration after the change, so hostd's
 * model never has to guess. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rpc.h"
#include "vmkd.pb-c.h"
#include "vmkd_ctl.h"
#include "vmkd_net.h"

KVC_LOG_MODULE(vswctl);

static int status_of(int rc)
{
    switch (rc) {
    case -EINVAL: return KVC_RPC_E_INVALID_ARGUMENT;
    case -ENOENT: return KVC_RPC_E_NOT_FOUND;
    case -EEXIST: return KVC_RPC_E_CONFLICT;
    case -EBUSY: return KVC__VMKD__ERROR_CODE__E_BUSY;
    case -ENOSPC: return KVC__VMKD__ERROR_CODE__E_INSUFFICIENT_RESOURCES;
    default: return KVC_RPC_E_INTERNAL;
    }
}

static void reply_list(struct kvc_rpc_call *call, struct vmkd_net *n)
{
    Kvc__Vmkd__VswitchList r = KVC__VMKD__VSWITCH_LIST__INIT;
    size_t nsw = vmkd_net_sw_count(n), npg = vmkd_net_pg_count(n);
    Kvc__Vmkd__VswitchInfo *sw = calloc(nsw + 1, sizeof(*sw)), **swp = calloc(nsw + 1, sizeof(*swp));
    Kvc__Vmkd__PortgroupInfo *pg = calloc(npg + 1, sizeof(*pg)), **pgp = calloc(npg + 1, sizeof(*pgp));
    if (!sw || !swp || !pg || !pgp) {
        kvc_rpc_reply_error(call, KVC_RPC_E_INTERNAL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nsw; i++) {
        struct vmkd_net_sw_info in;
        vmkd_net_sw_nth(n, i, &in);
        kvc__vmkd__vswitch_info__init(&sw[i]);
        sw[i].name = (char *)in.name;
        sw[i].ports = in.ports;
        sw[i].mtu = in.mtu;
        sw[i].used_ports = in.used;
        swp[i] = &sw[i];
    }
    for (size_t i = 0; i < npg; i++) {
        struct vmkd_net_pg_info in;
        vmkd_net_pg_nth(n, i, &in);
        kvc__vmkd__portgroup_info__init(&pg[i]);
        pg[i].name = (char *)in.name;
        pg[i].vswitch = (char *)in.vswitch;
        pg[i].vlan = in.vlan;
        pg[i].vni = in.vni;
        pg[i].ports = in.ports;
        pgp[i] = &pg[i];
    }
    r.n_vswitches = nsw;
    r.vswitches = swp;
    r.n_portgroups = npg;
    r.portgroups = pgp;
    kvc_rpc_reply(call, &r.base);
out:
    free(sw);
    free(swp);
    free(pg);
    free(pgp);
}

static struct vmkd_net *net_of(struct kvc_rpc_call *call, void *arg)
{
    if (!vmkd_ctl_allowed(arg, call))
        return NULL;
    struct vmkd_net *n = vmkd_net_ctx(vmkd_ctl_vmkd(arg));
    if (!n)
        kvc_rpc_reply_error(call, KVC_RPC_E_NOT_IMPLEMENTED, "this vmkd runs no vSwitch");
    return n;
}

static void finish(struct kvc_rpc_call *call, struct vmkd_net *n, int rc, const char *why)
{
    if (rc < 0)
        kvc_rpc_reply_error(call, status_of(rc), "%s", why);
    else
        reply_list(call, n);
}

void vmkd_vswitch_on_list(struct kvc_rpc_call *call, const ProtobufCMessage *m, void *arg)
{
    (void)m;
    struct vmkd_net *n = net_of(call, arg);
    if (n)
        reply_list(call, n);
}

void vmkd_vswitch_on_add(struct kvc_rpc_call *call, const ProtobufCMessage *m, void *arg)
{
    const Kvc__Vmkd__VswitchSpec *req = (const void *)m;
    char why[256] = "";
    struct vmkd_net *n = net_of(call, arg);
    if (n)
        finish(call, n, vmkd_net_sw_add(n, req->name, req->ports, req->mtu, why, sizeof(why)), why);
}

void vmkd_vswitch_on_remove(struct kvc_rpc_call *call, const ProtobufCMessage *m, void *arg)
{
    const Kvc__Vmkd__VswitchSpec *req = (const void *)m;
    char why[256] = "";
    struct vmkd_net *n = net_of(call, arg);
    if (n)
        finish(call, n, vmkd_net_sw_remove(n, req->name, why, sizeof(why)), why);
}

void vmkd_portgroup_on_add(struct kvc_rpc_call *call, const ProtobufCMessage *m, void *arg)
{
    const Kvc__Vmkd__PortgroupSpec *req = (const void *)m;
    char why[256] = "";
    struct vmkd_net *n = net_of(call, arg);
    if (n)
        finish(call, n, vmkd_net_pg_add(n, req->name, req->vswitch, req->vlan, why, sizeof(why)),
               why);
}

void vmkd_portgroup_on_remove(struct kvc_rpc_call *call, const ProtobufCMessage *m, void *arg)
{
    const Kvc__Vmkd__PortgroupSpec *req = (const void *)m;
    char why[256] = "";
    struct vmkd_net *n = net_of(call, arg);
    if (n)
        finish(call, n, vmkd_net_pg_remove(n, req->name, why, sizeof(why)), why);
}

void vmkd_portgroup_on_set(struct kvc_rpc_call *call, const ProtobufCMessage *m, void *arg)
{
    const Kvc__Vmkd__PortgroupSpec *req = (const void *)m;
    char why[256] = "";
    struct vmkd_net *n = net_of(call, arg);
    if (n)
        finish(call, n, vmkd_net_pg_set_vlan(n, req->name, req->vlan, why, sizeof(why)), why);
}
