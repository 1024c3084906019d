/* vmx: one process per running VM (see docs/vmx.md).
 *
 * Threads: the main thread runs the libevent loop (control socket, timers,
 * signals); each vCPU has a thread that loops in KVM_RUN and handles port
 * I/O and MMIO exits by calling the devices with dev_lock held.  The main
 * thread takes dev_lock too whenever it touches device state.
 *
 * Errors: functions return 0 or -errno unless said otherwise. */
#ifndef KVC_VMX_H
#define KVC_VMX_H

#include <limits.h>
#include <stddef.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <linux/kvm.h>

#include "vmkernel-kvm/devices/balloon.h"
#include "vmkernel-kvm/devices/device.h"
#include "vmkernel-kvm/devices/serial.h"
#include "vmkernel-kvm/devices/tools.h"
#include "vmkernel-kvm/devices/virtio_blk.h"
#include "vmkernel-kvm/devices/virtio_net.h"
#include "vmkernel-kvm/guest/kvc_guest_abi.h"
#include "vmkernel-kvm/memory.h"

#define VMX_MAX_VCPUS 8
#define VMX_EXIT_REASONS 64     /* KVM_EXIT_* counted by index, rest in the last */

/* ---- configuration (vmx_config.c) ---- */
struct vmx_config {
    char path[PATH_MAX];
    char dir[PATH_MAX];         /* folder of the config file */
    char name[128];
    char uuid[64];
    uint64_t memory_mb;
    unsigned vcpus;
    char image[PATH_MAX];       /* guest.image: test guest ELF */
    char kernel[PATH_MAX];      /* guest.kernel: Linux bzImage (instead of image) */
    char initrd[PATH_MAX];
    char cmdline[1024];
    enum kvc_workload workload;
    unsigned duty_percent;
    unsigned dirty_mb_per_s;
    unsigned working_set_mb;
    char serial_log[PATH_MAX];
    unsigned heartbeat_timeout_ms;
    bool balloon;
    /* The VM's lease (lib/lease.h), when lease.path is set: taken before the
     * guest runs, renewed by the event loop, released at exit. */
    char lease_path[PATH_MAX];
    char lease_owner[64];       /* host uuid */
    char lease_owner_name[128];
    unsigned lease_duration_ms;
    /* virtio-net (net.*) and the test guest's network workload (guest.net_*) */
    bool net;
    uint8_t net_mac[6];
    char net_portgroup[64];
    unsigned net_mtu;
    char guest_ip[16], guest_peer[16];
    unsigned guest_net_mode;    /* index in vmx_net_mode_names */
    unsigned guest_net_count, guest_net_size;
    bool guest_net_forge;
    unsigned guest_net_vlan;
    /* virtio-blk (disk.*) and the test guest's disk test (guest.disk_*) */
    char disk_path[PATH_MAX];
    bool disk_readonly;
    unsigned guest_disk_test;   /* index in vmx_disk_test_names */
    unsigned guest_disk_seed, guest_disk_mb;
};

/* Parse PATH.  On -EINVAL, ERR holds "file:line: message". */
int vmx_config_load(const char *path, struct vmx_config *, char *err, size_t errlen);
/* Same for text in memory (NAME is used in messages and to resolve paths). */
int vmx_config_parse(const char *name, const char *text, struct vmx_config *,
                     char *err, size_t errlen);
const char *vmx_workload_name(enum kvc_workload);
struct kvc_cfg_schema;
extern const struct kvc_cfg_schema vmx_config_schema;

struct kvc_lease;

/* ---- the VM ---- */
enum vmx_run_state {
    VMX_RUNNING = 0,
    VMX_PAUSED,
    VMX_POWERED_OFF,
    VMX_CRASHED,
    VMX_MIGRATED,               /* source after a committed live migration */
    VMX_INCOMING,               /* destination: guest not running until the migration lands */
};

enum vmx_stop_reason {
    VMX_STOP_NONE = 0,
    VMX_STOP_POWEROFF,          /* end the VM: powered off */
    VMX_STOP_RESET,             /* restart the VM in place */
    VMX_STOP_CRASH,             /* end the VM: crashed */
    VMX_STOP_MIGRATED,          /* end the VM here: it runs on the destination (migrate.c) */
};

struct vcpu {
    struct vmx *vm;
    unsigned index;
    int fd;
    struct kvm_run *run;
    size_t run_size;
    pthread_t thread;
    bool thread_started;
    bool paused;                /* parked (dev_lock's cond) */
    uint64_t exits[VMX_EXIT_REASONS];
    uint64_t kvm_runs;
};

struct vmx {
    struct vmx_config cfg;
    int kvm_fd, vm_fd;
    struct guest_mem mem;
    unsigned nvcpus;
    struct vcpu vcpus[VMX_MAX_VCPUS];

    pthread_mutex_t dev_lock;
    pthread_cond_t cond;        /* state changes: pause, park, stop */
    struct bus pio, mmio;
    struct serial serial;
    struct tools tools;
    struct balloon balloon;
    bool balloon_on;
    struct virtio_net net;
    bool net_on;
    int net_fds[3];             /* --net-fds: ring memfd, kick, call; -1: none */
    struct virtio_blk blk;
    bool blk_on;

    /* Requests to the vCPU threads, under dev_lock. */
    bool pause_req;
    unsigned parked;            /* vCPUs parked for pause_req */
    enum vmx_stop_reason stop;
    char stop_detail[512];
    int notify_fd;              /* eventfd: main loop wakes on stop */

    enum vmx_run_state state;
    uint64_t start_ns;          /* CLOCK_MONOTONIC when the VM was built */
    bool hb_lost_logged;
    unsigned resets;
    bool restored;              /* started from a snapshot */
    /* Held lease or NULL (main thread only).  Live migration hands it over
     * with kvc_lease_transfer() at switch-over; the renewal timer then
     * stops and exit does not release it. */
    struct kvc_lease *lease;
    bool lease_adopt;           /* incoming migration: the lease comes by
                                 * kvc_lease_adopt, vmx does not acquire it */

    /* Live migration (migrate.c): its state, and the auto-converge throttle
     * the vCPU threads obey (each time throttle_gen changes, a vCPU sleeps
     * throttle_sleep_ns before re-entering the guest). */
    struct vmx_migrate *mig;
    unsigned throttle_gen;
    uint64_t throttle_sleep_ns;
    /* Storage migration (disk_mirror.c): NULL until the first move. */
    struct disk_mirror *mirror;
    char log_path[PATH_MAX];    /* -l LOGFILE, "" : stderr (VMX_FOLDER_MOVE moves it) */
};

/* kvm.c: build and run the VM. */
int vmx_kvm_open(struct vmx *);
/* Create the VM (irqchip, memory slot, vCPUs).  Devices are attached by
 * vmx_devices_init before the vCPUs start. */
int vmx_vm_create(struct vmx *);
void vmx_vm_destroy(struct vmx *);
int vmx_vcpus_start(struct vmx *);
/* Ask all vCPU threads to leave KVM_RUN and wait for them (under no lock). */
void vmx_vcpus_join(struct vmx *);
/* Pause/resume all vCPUs; pause returns when every vCPU is parked. */
void vmx_pause(struct vmx *);
void vmx_resume(struct vmx *);
/* Ask the VM to stop for REASON (the first reason wins); kicks vCPUs. */
void vmx_request_stop(struct vmx *, enum vmx_stop_reason, const char *detail);
void vmx_kick_vcpus(struct vmx *);
/* Same, with dev_lock already held (device callbacks). */
void vmx_request_stop_locked(struct vmx *, enum vmx_stop_reason, const char *detail);
/* irq_line callback: OPAQUE is the struct vmx. */
void vmx_irq_set(void *opaque, unsigned gsi, int level);
/* Thread CPU time of vCPU I in ns. */
uint64_t vmx_vcpu_runtime_ns(struct vmx *, unsigned i);
const char *vmx_exit_reason_name(unsigned reason);

/* vmx_devices.c */
int vmx_devices_init(struct vmx *);
void vmx_devices_destroy(struct vmx *);
/* After the KVM VM was (re)created: route the NIC's QueueNotify to its
 * thread through an ioeventfd.  vmx_vm.c. */
int vmx_net_bind_kvm(struct vmx *);
/* The NIC's link to its vSwitch port (vmx_net_ctl.c, docs/vmx.md "Network"):
 * LINK_FD (-1: none) is the link vmkd passed with the port; when it closes
 * (vmkd went away) the adapter's link goes down and, with SOCK (vmkd's port
 * socket) and ID (the VM's id there), vmx asks there for a new port until a
 * vmkd answers.  Takes LINK_FD.  Main thread; call before seccomp. */
struct event_base;
int vmx_net_link_start(struct vmx *, struct event_base *, int link_fd, const char *sock,
                       const char *id);
void vmx_net_link_stop(void);
/* Control methods of the NIC (vmx_net_ctl.c), served beside vmx_ctl_methods. */
struct vmx_ctl_method;
const struct vmx_ctl_method *vmx_net_ctl_table(size_t *n);
extern const char *const vmx_net_mode_names[];
/* Control methods of the disk (vmx_disk_ctl.c), served beside them too. */
const struct vmx_ctl_method *vmx_disk_ctl_table(size_t *n);
extern const char *const vmx_disk_test_names[];

/* boot.c: load the guest and set the boot vCPU state (see boot.h). */
int vmx_boot(struct vmx *);

/* snapshot.c: the VM must be paused (save) or built but not started
 * (restore).  Save writes PATH atomically (PATH.tmp, then rename). */
struct vmx_snapshot_info {
    uint64_t bytes, memory_pages, duration_us;
};
int vmx_snapshot_save(struct vmx *, const char *path, struct vmx_snapshot_info *);
int vmx_snapshot_restore(struct vmx *, const char *path, char *err, size_t errlen);
/* The same state as sections in an sbuf (everything but memory), for live
 * migration: vCPUs, irqchip, clock, devices. */
struct sbuf;
struct sreader;
int vmx_state_save_devices(struct vmx *, struct sbuf *);
int vmx_state_load_section(struct vmx *, uint32_t type, uint32_t instance,
                           const uint8_t *data, uint64_t len, char *err, size_t errlen);

uint64_t vmx_now_ns(void);

/* kvm.c: KVM dirty logging on guest RAM's memslot, for live migration.
 * Switching it on or off works on a running VM.  vmx_dirty_log_get fills
 * BITMAP (one bit per 4 KiB page, (pages + 63) / 64 words) with the pages
 * written since the last call and clears KVM's copy. */
int vmx_dirty_log_enable(struct vmx *, bool on);
int vmx_dirty_log_get(struct vmx *, uint64_t *bitmap);

#endif
