/* Control methods of vmx's virtio-net adapter (proto/vmx.proto VMX_NET_*),
 * served next to vmx_ctl_methods on the same socket.  They run on the main
 * thread's event loop and take the device lock. */
#include <stdio.h>

#include "lib/rpc.h"
#include "vmkernel-kvm/vmx.h"
#include "vmkernel-kvm/vmx_ctl.h"
#include "vmx.pb-c.h"

static void fill(struct vmx *vm, Kvc__Vmx__NetStats *r, char *mac, size_t maclen)
{
    pthread_mutex_lock(&vm->dev_lock);
    const struct virtio_net *n = &vm->net;
    const struct virtio_net_stats *s = &n->st;
    r->present = vm->net_on;
    if (vm->net_on) {
        r->backend = n->backend;
        r->link_up = virtio_net_link_up(n);
        snprintf(mac, maclen, "%02x:%02x:%02x:%02x:%02x:%02x", n->mac[0], n->mac[1], n->mac[2],
                 n->mac[3], n->mac[4], n->mac[5]);
        r->mac = mac;
        r->mtu = n->mtu;
        r->status = n->dev.status;
        r->tx_packets = s->tx_packets;
        r->tx_bytes = s->tx_bytes;
        r->rx_packets = s->rx_packets;
        r->rx_bytes = s->rx_bytes;
        r->tx_runt = s->tx_runt;
        r->tx_oversize = s->tx_oversize;
        r->tx_bad_hdr = s->tx_bad_hdr;
        r->tx_link_down = s->tx_link_down;
        r->tx_ring_error = s->tx_ring_error;
        r->rx_small_buf = s->rx_small_buf;
        r->rx_link_down = s->rx_link_down;
        r->rx_ring_error = s->rx_ring_error;
        r->queue_broken = s->queue_broken;
        r->kicks_out = s->kicks_out;
        r->passes = s->passes;
    }
    pthread_mutex_unlock(&vm->dev_lock);
}

static void on_net_stats(struct vmx_ctl_call *call, const ProtobufCMessage *m, void *arg)
{
    (void)m;
    Kvc__Vmx__NetStats r = KVC__VMX__NET_STATS__INIT;
    char mac[18];
    fill(arg, &r, mac, sizeof(mac));
    vmx_ctl_reply(call, &r.base);
}

static void on_net_set_link(struct vmx_ctl_call *call, const ProtobufCMessage *m, void *arg)
{
    struct vmx *vm = arg;
    const Kvc__Vmx__NetLinkRequest *req = (const void *)m;
    if (!vm->net_on) {
        vmx_ctl_reply_error(call, KVC_RPC_E_NOT_FOUND, "this VM has no network adapter");
        return;
    }
    pthread_mutex_lock(&vm->dev_lock);
    virtio_net_set_link(&vm->net, req->up);
    pthread_mutex_unlock(&vm->dev_lock);
    on_net_stats(call, NULL, arg);
}

#define M(ID, NAME, REQ, RESP, FN) \
    { .id = KVC__VMX__METHOD__##ID, .name = NAME, .request = &kvc__vmx__##REQ##__descriptor, \
      .response = &kvc__vmx__##RESP##__descriptor, .handler = FN }

static const struct vmx_ctl_method net_methods[] = {
    M(VMX_NET_SET_LINK, "NetSetLink", net_link_request, net_stats, on_net_set_link),
    M(VMX_NET_STATS, "NetStats", net_stats_request, net_stats, on_net_stats),
};

const struct vmx_ctl_method *vmx_net_ctl_table(size_t *n)
{
    *n = sizeof(net_methods) / sizeof(net_methods[0]);
    return net_methods;
}
