/* vmkd internals: the host's VM table, vmx supervision and the hooks the
 * control socket (vmkd_ctl.c) calls.  See docs/vmkd.md.
 *
 * Functions return 0 or -errno; messages for the caller go to a `why`
 * buffer.  Destroy functions accept NULL.
 */
#ifndef KVC_VMKD_H
#define KVC_VMKD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup.h"
#include "sched.h"

struct event_base;
struct event;
struct vmkd;
struct vmkd_vm;

#define VMKD_ID_MAX 64
/* STATE-DIR/port.sock: where a running vmx asks for its port (vmkd_port.c). */
#define VMKD_PORT_SOCK "port.sock"
#define VMKD_WHY_MAX 512

enum vmkd_vm_state {
    VMKD_VM_STARTING = 1,       /* vmx spawned, VMX-READY not seen yet */
    VMKD_VM_RUNNING,
    VMKD_VM_STOPPING,           /* power-off requested */
};

/* Why a vmx ended (reported to subscribers). */
enum vmkd_exit_reason {
    VMKD_EXIT_POWERED_OFF = 1,  /* exit status 0, or killed because a power-off was requested */
    VMKD_EXIT_CRASHED,          /* non-zero status or a signal nobody asked for */
    VMKD_EXIT_FAILED_TO_START,  /* exited or timed out before VMX-READY */
    VMKD_EXIT_UNKNOWN,          /* re-adopted vmx: its status went to its old parent */
    VMKD_EXIT_MIGRATED,         /* exit status 3: live-migrated away (docs/vmx.md) */
};

struct vmkd_exit {
    char vm_id[VMKD_ID_MAX + 1];
    pid_t pid;
    enum vmkd_exit_reason reason;
    int exit_code;              /* -1 if killed by a signal or unknown */
    int signal;                 /* 0 if none */
    bool forced;                /* vmkd had to SIGKILL it */
    char message[256];
};

/* A VM adapter's switch port (vmkd_net.c provides them; NULL: no network).
 * port_add creates VM_ID's port on port group PG with MAC (text) and fills
 * FDS[0..2] with the ring memfd, kick and call eventfds, which the switch
 * keeps owning (vmx gets copies at spawn), and FDS[3] with the vmx's end of
 * the port's link (a unix socket; the caller owns it and closes it after
 * the spawn; -1 if there is none). */
struct vmkd_net_hooks {
    int (*port_add)(void *ctx, const char *vm_id, const char *pg, const char *mac, int fds[4],
                    char *why, size_t len);
    void (*port_remove)(void *ctx, const char *vm_id);
    void *ctx;
};

struct vmkd_config {
    char *state_dir;
    char *socket_path;
    char *vmx_path;
    long hostd_uid;             /* -1: only root may connect */
    int64_t ready_timeout_ms;
    int64_t stop_timeout_ms;
    struct kvc_cg_root_opts cg;
    char *cg_fsroot, *cg_parent;
    uint64_t reserve_cpu_mhz;
    uint64_t reserve_mem_mb;
    uint64_t cfs_period_us;
    bool rmdir_cgroup_parent;   /* remove the parent cgroup on exit if empty */
    struct vmkd_net_hooks net;  /* zeroed: VMs get no network */
};

struct vmkd_power_on {
    const char *vm_id;
    const char *config_path;
    const char *log_path;       /* NULL: vmx's default */
    const char *restore_path;   /* NULL: boot; else resume from this suspend file */
    const char *incoming;       /* NULL: boot; else a migration destination (vmx --incoming) */
    const char *incoming_tls_dir, *incoming_peer;   /* optional, with incoming */
    bool incoming_disk;         /* with incoming: the stream carries the disk (--incoming-disk) */
    bool incoming_own_lease;    /* with incoming: a lease of its own (--incoming-own-lease) */
    uint32_t vcpus;
    struct kvc_res_alloc alloc;
    uint64_t cpu_affinity;      /* bit n: host CPU n allowed; 0: any CPU */
    const char *nic_portgroup;  /* NULL: no adapter backend */
    const char *nic_mac;
};

struct vmkd_vm_info {
    char vm_id[VMKD_ID_MAX + 1];
    pid_t pid;
    enum vmkd_vm_state state;
    bool adopted;
    uint32_t vcpus;
    struct kvc_res_alloc alloc;
    const char *config_path;
    const char *control_socket;
    const char *cgroup_path;
    int64_t quota_us;           /* -1: unlimited */
    uint64_t weight;            /* native cgroup weight */
    const char *incoming_listen;    /* an incoming vmx's listen address, else "" */
};

/* Called when a power-on finishes: ok (vm running, rc 0) or failed. */
typedef void (*vmkd_start_cb)(void *ctx, int rc, const char *why, const struct vmkd_vm_info *);
/* Called when a power-off finishes: rc 0 and the exit (the vmx was reaped),
 * or rc -ECANCELED (ex NULL) when vmkd shuts down first. */
typedef void (*vmkd_stop_cb)(void *ctx, int rc, const struct vmkd_exit *ex);
/* Event sink: a vmx became ready or exited. */
struct vmkd_listener {
    void (*vm_started)(void *ctx, const struct vmkd_vm_info *);
    void (*vm_exited)(void *ctx, const struct vmkd_exit *);
    void *ctx;
};

int vmkd_new(struct event_base *, const struct vmkd_config *, struct vmkd **out, char *why);
/* Frees vmkd; running vmx keep running (their state stays in the state dir).
 * If stop_vms, kills and reaps them first.  Pending start and stop callbacks
 * are called with -ECANCELED. */
void vmkd_free(struct vmkd *, bool stop_vms);
void vmkd_set_listener(struct vmkd *, const struct vmkd_listener *);

/* Re-adopts vmx still running from an earlier vmkd (scans the state dir). */
int vmkd_adopt_all(struct vmkd *);

const struct kvc_host_capacity *vmkd_capacity(const struct vmkd *);
const struct kvc_admission *vmkd_admission(const struct vmkd *);
const char *vmkd_cgroup_describe(const struct vmkd *);
/* Resource pools (vmkd_pool.c): the cgroup root, the CFS period, and where
 * VM_ID's cgroup goes: DIR below the parent (a pool's cgroup), or NULL for
 * the top level.  A running VM is moved at once. */
struct kvc_cg_root *vmkd_cgroot(struct vmkd *);
uint64_t vmkd_cfs_period_us(const struct vmkd *);
int vmkd_vm_place(struct vmkd *, const char *vm_id, const char *dir);
/* The whole table at once: VM IDS[i] goes in DIRS[i] (not NULL); VMs not
 * listed go to the top level.  Running VMs whose place changed move. */
int vmkd_vm_place_all(struct vmkd *, char *const *ids, char *const *dirs, size_t n);
/* Called by vmkd_free once the VMs are gone, before the parent cgroup is
 * closed: the pools' cgroups are removed (RMDIR_THEM) or just forgotten. */
void vmkd_set_pools_cleanup(struct vmkd *, void (*fn)(bool rmdir_them));
int vmkd_cgroup_version(const struct vmkd *);

/* Spawns a vmx.  -ENOSPC: reservation does not fit; -EEXIST: already on;
 * -EINVAL: bad request.  On 0 the callback fires later (once). */
int vmkd_power_on(struct vmkd *, const struct vmkd_power_on *, vmkd_start_cb, void *ctx,
                  char *why);
/* Graceful (SIGTERM, then SIGKILL after the stop timeout) or forced power off.
 * On 0 the callback fires when the vmx has been reaped. -ENOENT: no such VM. */
int vmkd_power_off(struct vmkd *, const char *vm_id, bool force, int64_t timeout_ms,
                   vmkd_stop_cb, void *ctx, char *why);
/* Cancels pending callbacks that point at ctx (a client went away). */
void vmkd_cancel_callbacks(struct vmkd *, void *ctx);
/* Changes shares, limits and reservations of a running VM live. */
int vmkd_reconfigure(struct vmkd *, const char *vm_id, const struct kvc_res_alloc *, char *why);

size_t vmkd_vm_count(const struct vmkd *);
/* Iterates VMs in power-on order; returns false at the end. */
bool vmkd_vm_nth(const struct vmkd *, size_t i, struct vmkd_vm_info *);
int vmkd_vm_get(const struct vmkd *, const char *vm_id, struct vmkd_vm_info *);
int vmkd_vm_usage(struct vmkd *, const char *vm_id, struct kvc_cg_usage *);

/* cfg.net.ctx (vmkd_net's object), NULL without a vSwitch. */
void *vmkd_net_ctx(const struct vmkd *);
bool vmkd_valid_id(const char *);
const char *vmkd_exit_reason_str(enum vmkd_exit_reason);
const char *vmkd_state_str(enum vmkd_vm_state);

#endif
