/* The contract between vmx and the test guest: guest-physical layout, the
 * boot-info page vmx fills, and the register layout of the "tools" device.
 * Included by the freestanding guest and by vmx, so it uses only fixed-width
 * types and no library headers beyond <stdint.h>. */
#ifndef KVC_GUEST_ABI_H
#define KVC_GUEST_ABI_H

#include <stdint.h>

/* Guest-physical layout written by vmx for the direct long-mode entry. */
#define KVC_GPA_GDT         0x0500u     /* flat GDT used at entry */
#define KVC_GPA_PML4        0x1000u
#define KVC_GPA_PDPT        0x2000u
#define KVC_GPA_PD          0x3000u     /* 4 pages: identity map of 4 GiB, 2 MiB pages */
#define KVC_GPA_BOOTINFO    0x7000u     /* struct kvc_bootinfo */
#define KVC_GPA_IMAGE_MIN   0x100000u   /* the guest ELF loads at or above 1 MiB */
#define KVC_GPA_MMIO_BASE   0xd0000000u /* virtio-mmio slots, 4 KiB each */
#define KVC_MMIO_SLOT_SIZE  0x1000u
#define KVC_MMIO_SLOTS      16u
#define KVC_MMIO_IRQ_BASE   5u          /* GSI of slot 0; slot i uses base+i */
/* Slots taken: 0 tools, 1 balloon (vmx_vm.c); 2 virtio-blk; 3 virtio-net. */
#define KVC_MMIO_SLOT_BLK   2u
#define KVC_MMIO_SLOT_NET   3u
#define KVC_GPA_IOAPIC      0xfec00000u
#define KVC_GPA_LAPIC       0xfee00000u
/* Guest RAM ends below the MMIO hole. */
#define KVC_RAM_MAX         KVC_GPA_MMIO_BASE

/* Workloads' scratch memory (dirty workload working set) starts here. */
#define KVC_GPA_WORKSET     0x1000000u  /* 16 MiB */

#define KVC_BOOTINFO_MAGIC  0x4243564bu /* "KVCB" */
#define KVC_BOOTINFO_CMDLINE_MAX 1024u

/* At KVC_GPA_BOOTINFO; the 64-bit entry gets its address in RSI and the
 * vCPU index in RDI.  cmdline holds the workload and its parameters as
 * space-separated key=value words (the PVH path passes the same words as the
 * kernel command line): workload=counter duty=50 dirty_mb=50 ws_mb=64 */
struct kvc_bootinfo {
    uint32_t magic;
    uint32_t version;           /* 1 */
    uint64_t mem_bytes;         /* guest RAM size */
    uint64_t tools_base;        /* GPA of the tools device, 0 if none */
    uint64_t balloon_base;      /* GPA of the virtio-balloon device, 0 if none */
    uint32_t ncpus;
    uint32_t tsc_khz;
    char cmdline[KVC_BOOTINFO_CMDLINE_MAX];
};

/* ---- tools device (a virtio-mmio device with no queues) ----
 * Device-specific registers start at 0x100 in the virtio-mmio window.  The
 * guest writes them with plain 32-bit stores (from CPL3 too). */
#define KVC_VIRTIO_ID_TOOLS 0x4b56u     /* private virtio device id "KV" */

#define KVC_TOOLS_HEARTBEAT     0x100   /* W: any value, counts a heartbeat */
#define KVC_TOOLS_HOST_REQUEST  0x104   /* R: 0 none, 1 shutdown, 2 reboot */
#define KVC_TOOLS_GUEST_ACTION  0x108   /* W: 1 power off now, 2 reboot now, 3 request seen */
#define KVC_TOOLS_WL_KIND       0x10c   /* W: workload id (enum kvc_workload) */
#define KVC_TOOLS_WL_COUNTER_LO 0x110   /* W: low then high; HI commits the pair */
#define KVC_TOOLS_WL_COUNTER_HI 0x114
#define KVC_TOOLS_WL_SUM_LO     0x118
#define KVC_TOOLS_WL_SUM_HI     0x11c   /* commits counter and checksum */
#define KVC_TOOLS_STR_SEL       0x120   /* W: 1 os name, 2 ip address; resets offset */
#define KVC_TOOLS_STR_DATA      0x124   /* W: 4 bytes, little-endian, appended */
#define KVC_TOOLS_STR_MAX       64u

#define KVC_TOOLS_REQ_NONE      0u
#define KVC_TOOLS_REQ_SHUTDOWN  1u
#define KVC_TOOLS_REQ_REBOOT    2u
#define KVC_TOOLS_ACT_POWEROFF  1u
#define KVC_TOOLS_ACT_REBOOT    2u
#define KVC_TOOLS_ACT_ACK       3u

enum kvc_workload {
    KVC_WL_IDLE = 0,
    KVC_WL_CPU,
    KVC_WL_DIRTY,
    KVC_WL_COUNTER,
    KVC_WL_HANG,
    KVC_WL_CRASH,
    KVC_WL_COUNT_
};

/* The counter workload's checksum chain, shared so that vmx and tests can
 * verify a reported (counter, sum) pair: sum(0) = KVC_COUNTER_SEED,
 * sum(n) = kvc_counter_step(sum(n-1), n). */
#define KVC_COUNTER_SEED 0xcbf29ce484222325ull
static inline uint64_t kvc_counter_step(uint64_t sum, uint64_t n)
{
    sum ^= n;
    sum *= 0x100000001b3ull;
    sum ^= sum >> 29;
    return sum;
}

/* Timer: the guest programs its LAPIC timer at this rate. */
#define KVC_GUEST_HZ 100u

#endif
