/* vpxd's host manager: the vpxd side of the vpxd<->hostd protocol
 * (proto/host.proto; design and trust model in docs/hosts.md).
 *
 * vpxd dials each host (TLS over TCP), pins the host certificate's SHA-256
 * thumbprint given at host-add time, and keeps the connection up: it
 * reconnects on its own after a drop.  The host sends a heartbeat every
 * period; a host that misses `miss_limit` periods is NOT_RESPONDING until it
 * heartbeats again or the connection comes back.
 *
 * Everything runs on the caller's libevent loop, on one thread: the calls
 * below must be made from that loop's thread, and every callback (the
 * listener's and each call's completion) runs on it.  Nothing blocks.
 *
 * Errors: functions return 0 or -errno.  An asynchronous call that returns
 * non-zero never calls its callback; one that returns 0 calls it exactly
 * once, with 0 or -errno and, on error, a human-readable message (never NULL
 * on error; may be NULL on success).  The VM and maintenance calls accept a
 * NULL callback (fire and forget: a failure is only logged); probe and
 * attach need one.  Strings passed to callbacks are valid
 * only during the callback: copy what you keep.
 *   -ENOENT        unknown host id or VM uuid
 *   -ENOTCONN      host not connected (state is not HOSTMGR_CONNECTED)
 *   -EEXIST        VM uuid already on that host (create)
 *   -EALREADY      VM already in the requested power state
 *   -EBUSY         VM state does not allow it (e.g. reconfigure while on)
 *   -EPERM         thumbprint mismatch, or the host trusts another vpxd
 *   -ETIMEDOUT     no reply within the call timeout
 *   -ENOSPC        not enough memory/CPU/datastore space on the host
 *   -EINVAL        bad argument (reported before anything is sent)
 *   -ENOSYS        not implemented yet (said in the message)
 *
 * Identity: vpxd names hosts by its own id ("host-28"); hosts name VMs by a
 * uuid.  vpxd chooses the uuid when it creates a VM (so a create retried
 * after a lost reply is recognised and never makes a second VM) and keeps
 * the uuid <-> "vm-58" mapping in its database.  VMs a host reports that
 * vpxd never created come with the host's uuid for them.
 */
#ifndef KVC_VPXD_HOSTMGR_H
#define KVC_VPXD_HOSTMGR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

struct event_base;
struct hostmgr;

/* ---- what hosts report -------------------------------------------------- */

enum hostmgr_conn_state {
    HOSTMGR_DISCONNECTED = 0,   /* not managed, or vpxd has no connection and is not retrying */
    HOSTMGR_CONNECTING,         /* dialing / handshake in progress (first time) */
    HOSTMGR_CONNECTED,          /* handshake done, heartbeats arriving */
    HOSTMGR_NOT_RESPONDING,     /* heartbeats missed or connection lost; retrying */
};
const char *hostmgr_conn_state_name(enum hostmgr_conn_state);  /* "connected", ... */

enum hostmgr_power_state {
    HOSTMGR_POWERED_OFF = 0,
    HOSTMGR_POWERED_ON,
    HOSTMGR_SUSPENDED,
};
const char *hostmgr_power_state_name(enum hostmgr_power_state); /* "POWERED_ON", ... */

enum hostmgr_tools_state {
    HOSTMGR_TOOLS_NOT_RUNNING = 0,
    HOSTMGR_TOOLS_RUNNING,      /* the guest heartbeats */
};

struct hostmgr_host_info {
    const char *uuid;           /* the host's own stable uuid */
    const char *name;           /* host name (hostd config `name`) */
    const char *thumbprint;     /* "AB:CD:..." SHA-256 of the host certificate */
    const char *version;        /* hostd version */
    const char *backend;        /* "kvm" or "sim" */
    const char *cpu_model;
    uint32_t cpu_sockets, cpu_cores, cpu_threads;
    uint32_t cpu_mhz;           /* per core */
    uint64_t memory_bytes;
};

struct hostmgr_datastore_info {
    const char *name;           /* datastore name, unique per host; same name = same datastore */
    const char *url;            /* "ds:///path/" */
    const char *type;           /* "DIR" (local directory) or "NFS" */
    bool shared;
    uint64_t capacity_bytes, free_bytes;
};

struct hostmgr_network_info {
    const char *name;           /* port group name */
    const char *vswitch;
    uint32_t vlan;
};

struct hostmgr_vm_info {
    const char *uuid;
    const char *name;
    const char *datastore;      /* datastore holding the VM folder */
    const char *config_path;    /* "[ds1] vm1/vm1.vmx" */
    const char *guest_os;
    uint32_t cpu_count;
    uint64_t memory_mib;
    uint64_t disk_bytes;        /* provisioned size of its disks */
    enum hostmgr_power_state power;
    enum hostmgr_tools_state tools;
    uint64_t generation;        /* per-VM change counter, bumps on every change */
};

struct hostmgr_stats_sample {
    const char *vm_uuid;        /* NULL: the host itself */
    int64_t time_ms;            /* unix time in ms */
    uint32_t cpu_usage_mhz;
    uint32_t cpu_usage_permille;   /* of capacity (host) or of configured vCPUs (VM) */
    uint64_t mem_active_bytes, mem_consumed_bytes;
    uint64_t net_rx_bytes, net_tx_bytes;       /* counters */
    uint64_t disk_read_bytes, disk_write_bytes; /* counters */
};

/* The listener: how hostmgr tells vpxd what hosts report.  vpxd records it
 * in its database.  Every member may be NULL.  Strings and arrays are valid
 * only during the call. */
struct hostmgr_ops {
    /* Connection state changed (with a reason for the events log). */
    void (*host_state)(void *arg, const char *host_id,
                       enum hostmgr_conn_state state, const char *reason);
    /* Identity, hardware and capacity: on every (re)connect. */
    void (*host_info)(void *arg, const char *host_id,
                      const struct hostmgr_host_info *info);
    /* The host's COMPLETE inventory, on every (re)connect and whenever the
     * host says its incremental updates cannot be trusted (a gap in its
     * generation).  Reconciliation rule: the host is the truth for which VMs
     * it holds; vpxd upserts every VM listed (matched by uuid) and marks as
     * gone from this host every VM it had for this host that is not listed.
     * A VM listed here that vpxd has on ANOTHER host (restarted there while
     * this host was away) is not moved back: see docs/hosts.md. */
    void (*inventory)(void *arg, const char *host_id, uint64_t generation,
                      const struct hostmgr_datastore_info *ds, size_t n_ds,
                      const struct hostmgr_network_info *nets, size_t n_nets,
                      const struct hostmgr_vm_info *vms, size_t n_vms);
    /* One VM changed (created, reconfigured, power or tools state changed). */
    void (*vm_changed)(void *arg, const char *host_id,
                       const struct hostmgr_vm_info *vm);
    /* One VM left the host (deleted, or unregistered). */
    void (*vm_removed)(void *arg, const char *host_id, const char *vm_uuid);
    /* A batch of stats samples (host and its VMs). */
    void (*stats)(void *arg, const char *host_id,
                  const struct hostmgr_stats_sample *s, size_t n);
};

/* ---- lifetime ----------------------------------------------------------- */

struct hostmgr_config {
    const char *cert_file;      /* vpxd's certificate (PEM), shown to hosts */
    const char *key_file;       /* its private key (PEM) */
    uint32_t heartbeat_ms;      /* period asked of hosts; 0: 1000; min 100 */
    uint32_t miss_limit;        /* missed periods before NOT_RESPONDING; 0: 3 */
    uint32_t reconnect_ms;      /* retry period for lost hosts; 0: 1000 */
    uint32_t call_timeout_ms;   /* per call; 0: 30000 */
    uint32_t stats_interval_ms; /* asked of hosts; 0: 20000 */
};

/* Creates the manager on `base`.  Takes nothing over; copies the config
 * strings.  Returns 0 or -errno (e.g. -ENOENT: cert/key file missing). */
int hostmgr_new(struct event_base *base, const struct hostmgr_config *cfg,
                const struct hostmgr_ops *ops, void *ops_arg,
                struct hostmgr **out);
/* Closes every host connection; pending calls complete with -ECANCELED
 * before it returns.  Accepts NULL. */
void hostmgr_free(struct hostmgr *);

/* vpxd's own certificate thumbprint ("AB:CD:..."), as hosts pin it. */
const char *hostmgr_thumbprint(const struct hostmgr *);

/* ---- hosts -------------------------------------------------------------- */

typedef void (*hostmgr_done_cb)(void *arg, int err, const char *msg);

/* Host add, step 1: dial address:port, do the TLS handshake without trusting
 * anything, and report the host's certificate thumbprint and identity.
 * Changes nothing anywhere.  `info` is NULL on error. */
typedef void (*hostmgr_probe_cb)(void *arg, int err, const char *msg,
                                 const char *thumbprint,
                                 const struct hostmgr_host_info *info);
int hostmgr_probe(struct hostmgr *, const char *address, uint16_t port,
                  hostmgr_probe_cb cb, void *arg);

/* Host add, step 2 (and on every vpxd start, for each host in the database
 * that is not administratively disconnected): manage `host_id` at
 * address:port, accepting only a certificate with `thumbprint`.  `user` and
 * `password` are the host's administrator credentials; the host checks them
 * the first time a vpxd contacts it (then pins vpxd's certificate) and
 * ignores them afterwards; they may be NULL when re-attaching a known host.
 * `cb` is called once the first connect succeeds or fails for good
 * (-EPERM: thumbprint mismatch, the message holds the real one, or the host
 * already trusts another vpxd / bad credentials; -ECONNREFUSED, -ETIMEDOUT).
 * After a success the host stays managed and hostmgr reconnects on its own
 * until hostmgr_host_detach().  After a failure the host is not managed. */
int hostmgr_host_attach(struct hostmgr *, const char *host_id,
                        const char *address, uint16_t port,
                        const char *thumbprint, const char *user,
                        const char *password, hostmgr_done_cb cb, void *arg);

/* Stop managing the host (host disconnect or remove).  With `forget`, the
 * host is also told to drop its trust in this vpxd (host remove), so another
 * vpxd may add it later.  The host keeps running its VMs either way.
 * Synchronous; returns 0 or -ENOENT. */
int hostmgr_host_detach(struct hostmgr *, const char *host_id, bool forget);

struct hostmgr_host_status {
    enum hostmgr_conn_state state;
    int64_t last_heartbeat_ms;  /* unix ms of the last heartbeat, 0: none yet */
    uint64_t heartbeats;        /* received since attach */
    uint64_t inventory_generation;
};
/* Returns 0 or -ENOENT. */
int hostmgr_host_status(const struct hostmgr *, const char *host_id,
                        struct hostmgr_host_status *out);

/* Maintenance mode flag on the host (hostd refuses power-on while set). */
int hostmgr_host_maintenance(struct hostmgr *, const char *host_id, bool enter,
                             hostmgr_done_cb cb, void *arg);

/* HA (docs/ha.md).  What the host applies while vpxd is away: */
struct hostmgr_ha_config {
    bool enabled;
    uint32_t detection_ms;          /* 100..600000 */
    int isolation_response;         /* 0 leave powered on, 1 power off, 2 shut down */
    const char *isolation_address;  /* "IP:PORT" or NULL */
    const char *const *peers;       /* the cluster's other hosts, "IP:PORT" */
    size_t n_peers;
};
int hostmgr_host_ha_config(struct hostmgr *, const char *host_id,
                           const struct hostmgr_ha_config *, hostmgr_done_cb cb, void *arg);

/* ---- VMs ---------------------------------------------------------------- */

struct hostmgr_vm_spec {
    const char *uuid;           /* chosen by vpxd; required */
    const char *name;           /* required; becomes the folder name */
    const char *datastore;      /* datastore name on that host; required */
    const char *guest_os;       /* NULL: "other" */
    uint32_t cpu_count;         /* 0: 1 */
    uint64_t memory_mib;        /* 0: 256 */
    uint64_t disk_bytes;        /* 0: no disk */
    const char *network;        /* port group of its one vNIC; NULL: none */
    const char *workload;       /* test-guest workload / sim profile; NULL: idle */
};

/* Creates the VM folder and config on the datastore (powered off).  The
 * callback's VM info is NULL on error. */
typedef void (*hostmgr_vm_cb)(void *arg, int err, const char *msg,
                              const struct hostmgr_vm_info *vm);
int hostmgr_vm_create(struct hostmgr *, const char *host_id,
                      const struct hostmgr_vm_spec *spec,
                      hostmgr_vm_cb cb, void *arg);

/* CPU count and/or memory while powered off (-EBUSY otherwise).  A zero
 * field is left unchanged. */
int hostmgr_vm_reconfigure(struct hostmgr *, const char *host_id,
                           const char *vm_uuid, uint32_t cpu_count,
                           uint64_t memory_mib, hostmgr_vm_cb cb, void *arg);

enum hostmgr_power_op {
    HOSTMGR_POWER_ON = 0,
    HOSTMGR_POWER_OFF,          /* hard power off */
    HOSTMGR_POWER_RESET,
    HOSTMGR_POWER_SUSPEND,
    HOSTMGR_POWER_RESUME,       /* from suspended (POWER_ON also resumes) */
    HOSTMGR_GUEST_SHUTDOWN,     /* asks the guest (needs tools running) */
    HOSTMGR_GUEST_REBOOT,
};
int hostmgr_vm_power(struct hostmgr *, const char *host_id,
                     const char *vm_uuid, enum hostmgr_power_op op,
                     hostmgr_vm_cb cb, void *arg);

/* Register the VM whose config is CONFIG_PATH ("[ds] name/name.vmx", on a
 * datastore of that host) for an HA restart; VM_UUID: what the config must
 * hold.  -EEXIST (with the VM's info) if the host holds it already, -EBUSY
 * while another live host runs it.  Unregister drops a powered-off VM from
 * the host's registry and leaves its files alone (-EBUSY if it runs). */
int hostmgr_vm_register(struct hostmgr *, const char *host_id, const char *config_path,
                        const char *vm_uuid, hostmgr_vm_cb cb, void *arg);
int hostmgr_vm_unregister(struct hostmgr *, const char *host_id, const char *vm_uuid,
                          hostmgr_done_cb cb, void *arg);

/* Deletes the VM and its folder (config, disks, log).  -EBUSY if powered on. */
int hostmgr_vm_delete(struct hostmgr *, const char *host_id,
                      const char *vm_uuid, hostmgr_done_cb cb, void *arg);

/* ---- live migration (docs/drs.md) ----------------------------------------
 * vpxd_migrate_vm() (vpxd/migration.h) runs these in order: prepare on the
 * destination, send on the source, status on the source until it says
 * SWITCHOVER, finish on the destination (the VM now runs there), finish on
 * the source (it unregisters the VM).  Abort on both undoes everything
 * before the destination's finish; the VM keeps running on the source. */

struct hostmgr_migrate_vm {
    const char *uuid;
    const char *name;           /* folder name on the datastore */
    const char *datastore;      /* datastore name */
    const char *network;        /* port group of its vNIC, or NULL */
    uint32_t cpu_count;
    uint64_t memory_mib;
    bool powered_on;            /* false: cold (only the registration moves) */
    /* With the disk: the destination makes the VM's folder on this datastore
     * of its own (name) and the disk comes over the stream; NULL: shared
     * storage.  Then guest_os and disk_bytes (its disk's size) say what the
     * destination writes in the VM's config. */
    const char *move_datastore;
    const char *guest_os;
    uint64_t disk_bytes;
};
/* LISTEN: where the destination takes the stream ("tcp:IP:PORT"), "" if
 * its backend needs none (sim); pass it to hostmgr_migrate_send(). */
typedef void (*hostmgr_migrate_prepare_cb)(void *arg, int err, const char *msg,
                                           const char *listen);
/* SOURCE_THUMBPRINT: the source host's certificate, the stream's TLS peer. */
int hostmgr_migrate_prepare(struct hostmgr *, const char *dest_host, const char *mig_id,
                            const struct hostmgr_migrate_vm *vm, const char *source_host,
                            const char *source_thumbprint,
                            hostmgr_migrate_prepare_cb cb, void *arg);
/* BANDWIDTH_BPS 0: the host's default (1 GbE); DOWNTIME_MS 0: 500.
 * DEST_LISTEN and DEST_THUMBPRINT (may be NULL): from the prepare, and the
 * destination host's certificate.  WITH_DISK: the disk goes over the stream
 * (the destination was prepared with move_datastore). */
int hostmgr_migrate_send(struct hostmgr *, const char *src_host, const char *mig_id,
                         const char *vm_uuid, const char *dest_host,
                         uint64_t bandwidth_bps, uint32_t downtime_ms,
                         const char *dest_listen, const char *dest_thumbprint,
                         bool with_disk, hostmgr_done_cb cb, void *arg);

enum hostmgr_migrate_state {
    HOSTMGR_MIGRATE_NONE = 0,   /* the host does not know the migration */
    HOSTMGR_MIGRATE_PRECOPY,
    HOSTMGR_MIGRATE_SWITCHOVER,
    HOSTMGR_MIGRATE_DONE,
    HOSTMGR_MIGRATE_FAILED,
};
struct hostmgr_migrate_status {
    enum hostmgr_migrate_state state;
    uint32_t progress;          /* 0..100 */
    uint64_t bytes_sent, bytes_total;
    int64_t estimated_ms, downtime_ms;
    uint64_t disk_sent, disk_total;     /* with the disk (sent before the memory) */
};
/* ST is NULL on a transport error. */
typedef void (*hostmgr_migrate_status_cb)(void *arg, int err, const char *msg,
                                          const struct hostmgr_migrate_status *st);
int hostmgr_migrate_status(struct hostmgr *, const char *host, const char *mig_id,
                           hostmgr_migrate_status_cb cb, void *arg);
/* CB may be NULL. */
int hostmgr_migrate_abort(struct hostmgr *, const char *host, const char *mig_id,
                          hostmgr_done_cb cb, void *arg);
/* Destination: the VM info as it now runs there; source: VM info NULL. */
int hostmgr_migrate_finish(struct hostmgr *, const char *host, const char *mig_id,
                           hostmgr_vm_cb cb, void *arg);

/* A call of METHOD with REQ to a connected host, answered with a message of
 * type RESP: for areas whose messages hostmgr does not wrap (the VM serial
 * console).  CB gets 0 and the reply (valid during the call), or -errno
 * (as the other calls: -ENOENT, -EBUSY for CONFLICT, -ENOTCONN, ...) and
 * the host's message. */
typedef void (*hostmgr_raw_cb)(void *arg, int err, const char *msg,
                               const ProtobufCMessage *resp);
int hostmgr_host_call(struct hostmgr *, const char *host_id, uint32_t method,
                      const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp,
                      hostmgr_raw_cb cb, void *arg);

#endif
