/* virtio-net (device id 1) on the virtio-mmio transport, with its backend on
 * a vSwitch port in vmkd through the shared-memory rings of
 * vmkernel-kvm/vswitch/ring.h (docs/vmx.md, docs/vswitch.md).
 *
 * Features offered: VERSION_1, MAC, STATUS, MTU (no offloads, no mergeable
 * rx buffers, no control queue): queue 0 receives, queue 1 transmits, each
 * buffer carries the 12-byte virtio_net_hdr_v1 and one whole frame.
 *
 * Data path: a thread of the device (virtio_net_start) sleeps in epoll on
 * the guest's kick eventfd (vmx registers it as a KVM ioeventfd on the
 * QueueNotify register, so a guest kick never leaves the kernel) and the
 * ring's call eventfd from the switch.  Each pass moves up to a batch of
 * frames each way under the device lock, publishes each ring index once
 * and kicks the peer only if it asked for it (ring.h event suppression): no
 * syscall per frame.  Without a thread (unit tests, a driver that kicks
 * through a plain MMIO exit) the same pass runs in the notify callback.
 *
 * Trust: everything from the guest goes through virtq.c's checks; frames
 * shorter than an Ethernet header, longer than MTU + 18 (header plus one
 * 802.1Q tag) or with a GSO type the driver never negotiated are dropped
 * and counted on that queue; a broken queue sets DEVICE_NEEDS_RESET.  Frames
 * from the switch are checked against the slot size before they are copied.
 * Nothing a guest does makes vmx touch memory outside guest RAM and the
 * ring region.
 *
 * Locking: LOCK (vmx's dev_lock) guards all device state; MMIO handlers run
 * with it held, the data path thread takes it for each pass.  Errors: 0 or
 * -errno. */
#ifndef KVC_VMX_VIRTIO_NET_H
#define KVC_VMX_VIRTIO_NET_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmkernel-kvm/devices/virtio_mmio.h"
#include "vmkernel-kvm/vswitch/ring.h"

#define VIRTIO_ID_NET 1
#define VIRTIO_NET_F_MTU    3
#define VIRTIO_NET_F_MAC    5
#define VIRTIO_NET_F_STATUS 16
#define VIRTIO_NET_S_LINK_UP 1
#define VIRTIO_NET_HDR_LEN 12u          /* struct virtio_net_hdr_v1 */
#define VIRTIO_NET_QUEUE_MAX 256
#define VIRTIO_NET_Q_RX 0
#define VIRTIO_NET_Q_TX 1
#define VIRTIO_NET_BATCH 64             /* frames per direction per pass */

struct virtio_net_stats {
    uint64_t tx_packets, tx_bytes;      /* guest -> switch */
    uint64_t rx_packets, rx_bytes;      /* switch -> guest */
    uint64_t tx_runt;                   /* shorter than header + 14 bytes */
    uint64_t tx_oversize;               /* frame above MTU + 18 */
    uint64_t tx_bad_hdr;                /* GSO type or flags not negotiated */
    uint64_t tx_link_down;              /* link down or no backend */
    uint64_t tx_ring_error;             /* switch's tx cons index impossible */
    uint64_t rx_small_buf;              /* guest buffer cannot hold the frame */
    uint64_t rx_link_down;
    uint64_t rx_ring_error;             /* bad rx index or slot length from the switch */
    uint64_t queue_broken;              /* the driver broke a queue */
    uint64_t kicks_out;                 /* eventfd writes to the switch */
    uint64_t passes;                    /* data path passes that moved frames */
};

struct virtio_net {
    struct virtio_mmio dev;
    pthread_mutex_t *lock;
    uint8_t mac[6];
    uint16_t mtu;
    bool link_up;                       /* host's setting (control method) */
    /* Backend: the vSwitch port's ring region and eventfds. */
    bool backend;
    struct kvc_ring_region rg;
    int memfd, kick_fd, call_fd;
    bool tx_full;                       /* switch's tx ring full: wait for space */
    bool rx_stalled;                    /* frames wait for guest rx buffers */
    /* Data path thread. */
    int notify_fd;                      /* guest kicks (ioeventfd) */
    int stop_fd, ep_fd;
    pthread_t thread;
    bool thread_on;
    struct virtio_net_stats st;
};

/* LOCK is held around every call below except init/start/stop/destroy. */
void virtio_net_init(struct virtio_net *, struct guest_mem *, const struct irq_line *,
                     const uint8_t mac[6], unsigned mtu, pthread_mutex_t *lock);
/* Connects the switch port's ring region.  Takes ownership of the three fds,
 * whether successful or not.  -EPROTO: the region is not a valid ring or its
 * slots cannot hold an MTU-sized frame. */
int virtio_net_attach_backend(struct virtio_net *, int memfd, int kick_fd, int call_fd);
/* The switch port went away (vmkd stopped): unmaps the ring, closes its
 * fds; the guest sees the link down (config interrupt) until a new port
 * comes.  No-op without a backend. */
void virtio_net_detach_backend(struct virtio_net *);
/* A new switch port for a running adapter (vmkd restarted): detaches the
 * old one, attaches the new (ownership of the fds as for attach; on error
 * they are closed and the adapter stays without backend), registers the
 * call eventfd with the running thread and tells the guest the link is up. */
int virtio_net_replace_backend(struct virtio_net *, int memfd, int kick_fd, int call_fd);
/* The eventfd to register as the ioeventfd of QueueNotify (KVM_IOEVENTFD). */
int virtio_net_notify_fd(const struct virtio_net *);
/* Starts the data path thread (call before seccomp: it creates an epoll fd). */
int virtio_net_start(struct virtio_net *);
void virtio_net_stop(struct virtio_net *);
/* Stops the thread, unmaps the ring, closes fds.  Accepts a never-initialised
 * (zeroed) device. */
void virtio_net_destroy(struct virtio_net *);
/* One pass of the data path (LOCK held).  Returns frames moved. */
int virtio_net_poll(struct virtio_net *);
/* Link up/down as the guest sees it (config status, config interrupt). */
void virtio_net_set_link(struct virtio_net *, bool up);
bool virtio_net_link_up(const struct virtio_net *);

#endif
