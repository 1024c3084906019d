/* The "tools" device: a virtio-mmio device without queues through which the
 * guest reports heartbeats, its OS name and IP, and its workload's state, and
 * receives graceful shutdown/reboot requests.  Register layout:
 * vmkernel-kvm/guest/kvc_guest_abi.h (KVC_TOOLS_*). */
#ifndef KVC_VMX_TOOLS_H
#define KVC_VMX_TOOLS_H

#include <stdint.h>

#include "vmkernel-kvm/devices/virtio_mmio.h"
#include "vmkernel-kvm/guest/kvc_guest_abi.h"

struct tools {
    struct virtio_mmio dev;
    uint64_t heartbeats;
    uint64_t last_heartbeat_ns;     /* CLOCK_MONOTONIC, 0: never */
    uint32_t host_request;          /* KVC_TOOLS_REQ_* */
    uint32_t wl_kind;
    uint64_t wl_counter, wl_sum;
    uint32_t pend_lo_counter, pend_hi_counter, pend_lo_sum;
    uint32_t str_sel, str_len;
    char os_name[KVC_TOOLS_STR_MAX + 1];
    char ip[KVC_TOOLS_STR_MAX + 1];
    uint64_t state_updates;
    /* Called (device lock held) when the guest asks to power off or reboot. */
    void (*on_action)(void *opaque, uint32_t action);
    void *on_action_opaque;
};

void tools_init(struct tools *, struct guest_mem *, const struct irq_line *);
/* Milliseconds since the last heartbeat, -1 if none yet. */
int64_t tools_heartbeat_age_ms(const struct tools *, uint64_t now_ns);
void tools_request(struct tools *, uint32_t req);

#endif
