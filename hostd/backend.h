/* hostd's VM backends, behind one vtable (like OVS's dpif-provider):
 * `kvm` drives real VMs through vmkd; `sim` models them in-process.
 *
 * A backend runs the VMs hostd's registry holds: hostd owns the registry,
 * the config files and the vpxd session; the backend owns what runs.  It
 * reports changes it sees on its own (a guest that stops heartbeating, a
 * guest that shuts itself down, a vmx that dies) with hostd_vm_changed().
 *
 * Every op returns 0 or -errno; an op that fails changes nothing. */
#ifndef KVC_HOSTD_BACKEND_H
#define KVC_HOSTD_BACKEND_H

#include "hostd/hostd.h"

struct hostd_vm_stats {
    uint32_t cpu_usage_mhz;
    uint32_t cpu_usage_permille;        /* of the VM's vCPUs */
    uint64_t mem_active_bytes, mem_consumed_bytes;
    uint64_t net_rx_bytes, net_tx_bytes, disk_read_bytes, disk_write_bytes;
};

typedef void (*hostd_be_done_fn)(struct hostd_host *, struct hostd_vm *, int err,
                                 const char *msg, void *ctx);
/* Streaming live migration (kvm): the listen address of an incoming VM;
 * the progress of an outgoing one. */
typedef void (*hostd_mig_listen_fn)(int err, const char *msg, const char *listen, void *ctx);
enum hostd_mig_phase { HOSTD_MIG_COPYING, HOSTD_MIG_STOPPED, HOSTD_MIG_COMPLETED,
                       HOSTD_MIG_FAILED };
struct hostd_mig_progress {
    enum hostd_mig_phase phase;
    uint32_t percent, round;
    uint64_t sent, total;
    int64_t downtime_ms, total_ms;
    uint64_t disk_sent, disk_total;     /* with the disk: its bytes (sent first) */
    char error[256];            /* HOSTD_MIG_FAILED: why */
};
typedef void (*hostd_mig_progress_fn)(const struct hostd_mig_progress *, void *ctx);
/* Console reads and writes: DATA/LEN valid only during the call. */
typedef void (*hostd_console_fn)(int err, const char *msg, const void *data, size_t len,
                                 uint64_t next, uint64_t total, void *ctx);

struct hostd_svm_ops;

struct hostd_backend_ops {
    const char *name;
    /* Called once per host after its registry is loaded: adopt VMs that are
     * still running (hostd restarted under them), and set hw if the backend
     * defines the hardware (sim). */
    int (*init)(struct hostd_host *, void **priv);
    void (*fini)(struct hostd_host *, void *priv);
    /* A VM was created / is being deleted (free its runtime state). */
    int (*vm_attach)(struct hostd_host *, struct hostd_vm *);
    void (*vm_detach)(struct hostd_host *, struct hostd_vm *);
    /* Power: each sets vm->power / vm->tools_running on success. */
    int (*power_on)(struct hostd_host *, struct hostd_vm *);
    int (*power_off)(struct hostd_host *, struct hostd_vm *);
    int (*reset)(struct hostd_host *, struct hostd_vm *);
    int (*suspend)(struct hostd_host *, struct hostd_vm *);
    int (*resume)(struct hostd_host *, struct hostd_vm *);
    int (*guest_shutdown)(struct hostd_host *, struct hostd_vm *);
    int (*guest_reboot)(struct hostd_host *, struct hostd_vm *);
    /* Backends whose VMs take time to start or stop (kvm) implement this
     * instead of the synchronous power ops: run the (already checked) OP and
     * call DONE exactly once, now or later, after setting vm->power and
     * vm->tools_running.  hostd refuses other operations on the VM until
     * then. */
    void (*power_async)(struct hostd_host *, struct hostd_vm *,
                        Kvc__Host__PowerOp op, hostd_be_done_fn done, void *ctx);
    int (*vm_stats)(struct hostd_host *, struct hostd_vm *,
                    struct hostd_vm_stats *);
    /* Live migration (NULL: not supported; hostd answers ENOTSUP for a
     * powered-on VM).  migrate_estimate: total and stop-and-copy time of
     * sending the running VM at BW bytes/s (-EAGAIN: cannot converge).
     * migrate_in: the VM now runs here (switch-over), it takes the lease.
     * migrate_out: the VM now runs elsewhere: drop its runtime state and
     * leave the lease alone.  migrate_abort: the VM keeps running here:
     * take the lease back. */
    int (*migrate_estimate)(struct hostd_host *, struct hostd_vm *, double bw,
                            int64_t downtime_target_ms, int64_t *total_ms,
                            int64_t *downtime_ms);
    int (*migrate_in)(struct hostd_host *, struct hostd_vm *);
    void (*migrate_out)(struct hostd_host *, struct hostd_vm *);
    void (*migrate_abort)(struct hostd_host *, struct hostd_vm *);
    /* Storage migration (svmotion.c): the VM's folder was copied from
     * OLD_DIR to vm->dir (the old one is removed next); re-point what the
     * backend holds open there (the sim's lease).  NULL: nothing to do.
     * On failure the move is undone (the op is called again with the
     * folders swapped, ERR NULL). */
    int (*storage_moved)(struct hostd_host *, struct hostd_vm *, const char *old_dir,
                         char *err, size_t errlen);
    /* Streaming live migration (kvm: vmx to vmx, docs/vmx.md; NULL: the
     * model above moves the VM).  migrate_listen (destination): start VM
     * (attached, not in the registry yet) waiting for the stream, the source
     * authenticated by PEER_THUMBPRINT (NULL: plain TCP); DONE once with the
     * address the source sends to, or an error.  migrate_send (source):
     * start sending to LISTEN (pinning DEST_THUMBPRINT); the VM runs on.
     * WITH_DISK (listen: the VM's folder here holds an empty placeholder disk
     * the stream replaces; send: the disk files go first) moves the disk too,
     * to a destination that shares no datastore with the source.
     * OWN_FOLDER (listen): the VM's folder here is not the source's (made
     * for this migration on another datastore): the VMM takes a lease of
     * its own instead of adopting the source's.
     * migrate_progress (source): DONE once with where it stands; COMPLETED
     * means the VM now runs at the destination (it switched over by itself).
     * migrate_cancel: the source stops sending and runs on; an incoming VM
     * is powered off.  migrate_in then takes over the running incoming VM;
     * migrate_out drops the source's runtime state. */
    void (*migrate_listen)(struct hostd_host *, struct hostd_vm *, const char *peer_thumbprint,
                           bool with_disk, bool own_folder, hostd_mig_listen_fn done, void *ctx);
    int (*migrate_send)(struct hostd_host *, struct hostd_vm *, const char *listen,
                        const char *dest_thumbprint, uint32_t downtime_ms, uint64_t bw,
                        bool with_disk, char *err, size_t errlen);
    void (*migrate_progress)(struct hostd_host *, struct hostd_vm *,
                             hostd_mig_progress_fn done, void *ctx);
    void (*migrate_cancel)(struct hostd_host *, struct hostd_vm *, bool incoming);
    /* The serial console of a powered-on VM (NULL: hostd answers
     * UNAVAILABLE).  Call DONE exactly once, now or later: ERR 0 with the
     * bytes from OFFSET on (at most MAX), the next offset and the total the
     * guest wrote; or -errno and a message.  console_write: DONE with the
     * bytes accepted in NEXT. */
    void (*console_read)(struct hostd_host *, struct hostd_vm *, uint64_t offset,
                         uint32_t max, hostd_console_fn done, void *ctx);
    void (*console_write)(struct hostd_host *, struct hostd_vm *, const void *data,
                          size_t len, hostd_console_fn done, void *ctx);
    /* Snapshots (snapshots.c keeps the index; NULL: hostd answers
     * NOT_IMPLEMENTED).  snapshot_take: keep the VM's state in PATH (its
     * memory too if MEMORY, the VM running on) and freeze its disk behind a
     * delta.  snapshot_revert: bring the VM back to the state in PATH, taken
     * at power state POWER (a snapshot without memory reverts to powered
     * off).  snapshot_delete: consolidate the delta and remove PATH.  Each
     * returns 0 or -errno with ERR set; a failure changes nothing. */
    int (*snapshot_take)(struct hostd_host *, struct hostd_vm *, const char *path, bool memory,
                         char *err, size_t errlen);
    int (*snapshot_revert)(struct hostd_host *, struct hostd_vm *, const char *path,
                           enum vm_power power, bool memory, char *err, size_t errlen);
    int (*snapshot_delete)(struct hostd_host *, struct hostd_vm *, const char *path,
                           char *err, size_t errlen);
    /* The same for backends whose snapshots take time (kvm: vmx writes the
     * memory, a revert stops and starts vmx, disk work runs off the loop);
     * a backend has these or the synchronous ones.  Each calls DONE exactly
     * once, now or later (PATH is copied); hostd keeps the VM busy and its
     * index as it was until then, and changes the index only on success. */
    void (*snapshot_take_async)(struct hostd_host *, struct hostd_vm *, const char *path,
                                bool memory, hostd_be_done_fn done, void *ctx);
    void (*snapshot_revert_async)(struct hostd_host *, struct hostd_vm *, const char *path,
                                  enum vm_power power, bool memory, hostd_be_done_fn done,
                                  void *ctx);
    void (*snapshot_delete_async)(struct hostd_host *, struct hostd_vm *, const char *path,
                                  hostd_be_done_fn done, void *ctx);
    /* Host crash (failure injection): every VM stops at once. */
    void (*crash)(struct hostd_host *);
    /* The process that runs a powered-on VM (kvm: its vmx), 0 if none or
     * not known (sim: the VM is modelled inside hostd).  NULL: 0. */
    int (*vm_pid)(struct hostd_host *, const struct hostd_vm *);
    /* Moving a running VM's files (svmotion.c; NULL: only the modelled
     * copy, for a VM that runs in hostd or is powered off). */
    const struct hostd_svm_ops *svm;
    /* Control commands the backend understands ("vm UUID hang", ...);
     * writes a one-line answer.  -ENOENT: not its command. */
    int (*control)(struct hostd_host *, int argc, char **argv,
                   char *out, size_t outlen);
};

/* Storage migration of a powered-on VM run by the backend itself (kvm: vmx
 * moves the running disk, then its folder; docs/storage-migration.md).
 * Without these ops svmotion.c models the copy and calls storage_moved. */
enum hostd_svm_phase { HOSTD_SVM_COPYING, HOSTD_SVM_COMPLETED, HOSTD_SVM_FAILED,
                       HOSTD_SVM_CANCELLED };
struct hostd_svm_progress {
    enum hostd_svm_phase phase;
    uint32_t percent;
    uint64_t copied, total;
    char error[256];            /* FAILED, CANCELLED: why */
};
/* ERR 0: P says where the copy stands (NULL for svm_folder); else -errno
 * and MSG (the call failed; the move's state is unknown to the caller). */
typedef void (*hostd_svm_fn)(int err, const char *msg, const struct hostd_svm_progress *p,
                             void *ctx);
struct hostd_svm_ops {
    /* Start moving the VM's disk into NEW_DIR (made by hostd, holding only
     * its journal) at BW bytes/s (0: no limit); DONE once, with the
     * refusal or the first progress. */
    void (*start)(struct hostd_host *, struct hostd_vm *, const char *new_dir, uint64_t bw,
                  hostd_svm_fn done, void *ctx);
    void (*progress)(struct hostd_host *, struct hostd_vm *, hostd_svm_fn done, void *ctx);
    /* Stop the copy; progress then says CANCELLED (or COMPLETED if the
     * disk had switched already). */
    void (*cancel)(struct hostd_host *, struct hostd_vm *);
    /* The disk is in NEW_DIR: move what the backend keeps open in the
     * VM's folder there (vmx's lease, serial log, log); DONE once. */
    void (*folder)(struct hostd_host *, struct hostd_vm *, const char *new_dir,
                   hostd_svm_fn done, void *ctx);
    /* Crash recovery at start-up (before the event loop; blocks): stop a
     * disk move the VM's vmx still runs and wait until it ended; with
     * FOLDER, then move the folder to NEW_DIR unless it is there already.
     * 0 when nothing runs.  -errno with ERR: leave the move as it is. */
    int (*recover)(struct hostd_host *, struct hostd_vm *, const char *new_dir, bool folder,
                   char *err, size_t errlen);
};

extern const struct hostd_backend_ops hostd_backend_sim;
extern const struct hostd_backend_ops hostd_backend_kvm;

#endif
