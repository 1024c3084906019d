/* Live migration between two vmx processes (docs/vmx.md "Live migration").
 *
 * The destination is a vmx started with `--incoming ADDR`: it builds the VM
 * from its config but does not boot it, waits for one source on ADDR, loads
 * what the stream carries and runs the guest only once the source has
 * handed over.  The source is a running vmx asked by VMX_MIGRATE_SEND: a
 * thread copies RAM while the guest runs (pre-copy rounds from KVM's dirty
 * log, plus the pages vmx's own devices wrote), throttles the vCPUs when the
 * guest dirties faster than the link carries (auto-converge), then stops the
 * vCPUs, sends the last dirty pages and the vCPU/device state (the snapshot
 * encoders, vmx_state_save_devices), and waits for the destination's READY.
 * Only then does it send GO and exit as migrated.  Until GO is sent every
 * failure (peer gone, socket cut, stall, cancel, a FAIL from the
 * destination) puts the source back as it was: vCPUs resumed, dirty logging
 * off, throttle off.
 *
 * The stream (both directions) is a sequence of records in the snapshot
 * section format of vmx_state.h:
 *     u32 type | u32 arg | u64 length | length bytes      (little-endian)
 *
 *   source -> destination
 *     HELLO    magic u64 "KVCMIGR1", version u32, RAM bytes u64, vCPUs u32,
 *              page size u32, flags u32 (bit 0: verify), timeout_ms u32
 *     PAGES    arg = n (1..MIG_MAX_RUN): u64 gpa, then n * 4096 bytes
 *     ZERO     u64 gpa, u32 n: n pages that are all zero now (a marker, no data)
 *     ROUND    u32 round, u32 percent, u64 remaining bytes (progress only)
 *     DISK_BEGIN, DISK_FILE, DISK_DATA, DISK_END   the disk's files, when the
 *              migration carries the disk (with_disk; formats in
 *              migrate_disk.h): after ACCEPT, before the first PAGES; more
 *              DISK_DATA during the memory rounds; the last ones and
 *              DISK_END in stop-and-copy, before SWITCH
 *     SWITCH   u64 stop CLOCK_REALTIME ns, u64 stop CLOCK_MONOTONIC ns,
 *              u32 was_running, u32 has_hash, 32 bytes SHA-256 of RAM
 *     VCPU, IRQCHIP, CLOCK, SERIAL, TOOLS, VIRTIO   the snapshot sections
 *     END      (VMX_ST_END) end of the state
 *     GO       u64 lease generation (0: no lease): commit, the destination
 *              adopts the lease and runs the guest from now on
 *     CANCEL   u8[] reason: the source aborted (the destination exits)
 *   destination -> source
 *     ACCEPT   after HELLO: this VM can take the stream; u32 flags (bit 0:
 *              it has a lease configured; bit 1: it expects the disk,
 *              --incoming-disk; bit 2: it holds a lease of its own, in a
 *              folder that is not the source's), blob lease owner, blob
 *              owner name
 *     READY    after END: everything loaded (and the hash matched)
 *     RUNNING  u64 CLOCK_REALTIME ns, u64 CLOCK_MONOTONIC ns when its vCPUs ran
 *     FAIL     u8[] reason: the destination refuses (the source resumes)
 *
 * The destination checks every record before it acts on it: the order
 * (HELLO first, state after SWITCH, nothing after END but GO/CANCEL), each
 * length against its type (a fixed size, or 8 + n * 4096 for PAGES, at most
 * 16 MiB for a device section) before reading or allocating, and every page
 * range against guest RAM (guest_mem_ptr).  Anything else ends the
 * migration with a message; the destination then exits 1 without running.
 *
 * Transport: a connected stream socket (unix, TCP, or an fd handed over)
 * used through struct mig_chan, whose send/recv are the only I/O calls;
 * across hosts a TLS session (GnuTLS record layer, host identities of
 * lib/tls.h pinned by thumbprint both ways) runs under the same records.
 *
 * Errors: 0 or -errno; messages go to ERR buffers and the log. */
#ifndef KVC_VMX_MIGRATE_H
#define KVC_VMX_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct vmx;

#define MIG_MAGIC           0x315247494d43564bull   /* "KVCMIGR1" little-endian */
#define MIG_VERSION         1u
#define MIG_MAX_RUN         256u                    /* pages per PAGES record (1 MiB) */
#define MIG_MAX_SECTION     (16u << 20)             /* device section */

enum mig_record {
    MIG_HELLO = 0x100,
    MIG_PAGES = 0x101,
    MIG_ZERO = 0x102,
    MIG_ROUND = 0x103,
    MIG_SWITCH = 0x104,
    MIG_DISK_BEGIN = 0x130,
    MIG_DISK_FILE = 0x131,
    MIG_DISK_DATA = 0x132,
    MIG_DISK_END = 0x133,
    MIG_GO = 0x110,
    MIG_CANCEL = 0x111,
    MIG_ACCEPT = 0x120,
    MIG_READY = 0x121,
    MIG_RUNNING = 0x122,
    MIG_FAIL = 0x123,
};

/* Same numbers as kvc.vmx.MigratePhase. */
enum vmx_mig_phase {
    VMX_MIG_NONE = 0,
    VMX_MIG_SETUP,
    VMX_MIG_PRECOPY,
    VMX_MIG_STOPCOPY,
    VMX_MIG_COMMIT,
    VMX_MIG_COMPLETED,
    VMX_MIG_FAILED,
    VMX_MIG_CANCELLED,
    VMX_MIG_INCOMING,
};

struct vmx_migrate_params {
    char to[256];               /* unix:PATH or tcp:HOST:PORT */
    uint32_t downtime_ms;       /* 0: 100 */
    uint64_t max_bandwidth;     /* bytes/s, 0: unlimited */
    uint32_t timeout_ms;        /* peer stall timeout, 0: 10000 */
    bool verify;                /* compare SHA-256 of RAM at switch-over */
    uint32_t max_rounds;        /* 0: 100 */
    /* TLS (tcp only): this host's identity directory (lib/tls.h rpc.crt,
     * rpc.key) and the destination's pinned certificate thumbprint. */
    char tls_dir[256];
    char peer_thumbprint[128];
    /* The disk's files go over the stream too (the destination runs with
     * --incoming-disk); this side's files are only read. */
    bool with_disk;
};

struct vmx_migrate_status {
    enum vmx_mig_phase phase;
    bool source;
    char peer[256];
    uint32_t round, percent, throttle_percent, downtime_target_ms;
    uint64_t ram_bytes, transferred_bytes, remaining_bytes;
    uint64_t dirty_rate_bps, bandwidth_bps, expected_downtime_ms;
    uint64_t downtime_ms, total_ms, zero_pages, data_pages;
    uint64_t disk_total_bytes, disk_sent_bytes;     /* with_disk */
    char error[256];
};

/* Called on the main loop when a migration ends.  Source: ok = committed
 * (the caller stops the VM as migrated); otherwise the source runs on.
 * Destination: ok = the guest runs here; otherwise the caller exits 1. */
typedef void (*vmx_migrate_done_fn)(struct vmx *, bool ok, void *arg);
/* Set up (once, at start-up, on the main thread): completions arrive on
 * BASE's loop through FN. */
int vmx_migrate_init(struct vmx *, struct event_base *, vmx_migrate_done_fn fn, void *arg);

/* Source: start migrating to P->to (returns at once; a thread does the
 * work).  -EBUSY if one runs, -EINVAL (ERR says why) for a bad address or
 * a VM that is not running or paused. */
int vmx_migrate_start(struct vmx *, const struct vmx_migrate_params *, char *err, size_t errlen);
/* Source: abort a running migration (the source resumes). -ESRCH if none
 * runs, -EBUSY once GO was sent (too late: the destination owns the VM). */
int vmx_migrate_cancel(struct vmx *);
/* Either side; phase VMX_MIG_NONE if no migration ever ran. */
void vmx_migrate_get_status(struct vmx *, struct vmx_migrate_status *);
/* A migration thread is running (state-changing control methods wait). */
bool vmx_migrate_active(struct vmx *);

/* Destination: listen on (or take over) ADDR -- unix:PATH, tcp:HOST:PORT
 * (port 0 picks one), fd:N (a connected or listening stream socket) --
 * before the seccomp filter goes on.  BOUND gets the address actually
 * listened on (tcp port filled in). */
int vmx_migrate_incoming(struct vmx *, const char *addr, char *bound, size_t boundlen,
                         char *err, size_t errlen);
/* Destination: require TLS, presenting the identity in DIR and accepting
 * only a source whose certificate has thumbprint PEER. */
int vmx_migrate_incoming_tls(struct vmx *, const char *dir, const char *peer, char *err, size_t errlen);
/* Destination: the disk comes over the stream (vmx --incoming-disk): the
 * VM's disk.path is a new, empty base the stream replaces; a stream
 * without the disk is refused, as is one with a disk without this. */
void vmx_migrate_expect_disk(struct vmx *);
/* Destination: its folder is not the source's (another datastore), so it
 * holds a lease of its own (taken at start); the source keeps and releases
 * its own instead of handing it over (ACCEPT flag bit 2). */
void vmx_migrate_own_lease(struct vmx *);
/* Destination: start receiving (after the seccomp filter is on, so the
 * receiving thread runs under it). */
int vmx_migrate_incoming_run(struct vmx *, char *err, size_t errlen);

/* Cancel and join whatever runs and free the state (accepts no migration). */
void vmx_migrate_stop(struct vmx *);
void vmx_migrate_free(struct vmx *);

#endif
