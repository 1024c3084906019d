/* hostd internals: one process runs one host (kvm) or many simulated hosts
 * (sim); each host has its own identity, port, state directory, datastores,
 * VM registry and vpxd session.  See docs/hosts.md.
 *
 * Errors: functions return 0 or -errno. */
#ifndef KVC_HOSTD_H
#define KVC_HOSTD_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include <jansson.h>

#include "host.pb-c.h"

struct event_base;
struct event;
struct kvc_rpc_server;
struct kvc_rpc_conn;
struct kvc_tls_identity;
struct hostd_backend_ops;

#define HOSTD_VERSION "0.1.0"
#define HOSTD_UUID_LEN 37

enum vm_power { VM_OFF = 0, VM_ON, VM_SUSPENDED };

struct hostd_vm {
    struct hostd_vm *next;
    char uuid[HOSTD_UUID_LEN];
    char *name, *datastore, *guest_os, *network, *workload;
    uint32_t cpu_count;
    uint64_t memory_mib, disk_bytes;
    enum vm_power power;
    bool tools_running;
    uint64_t generation;
    bool busy;                  /* an asynchronous backend operation is out */
    char dir[PATH_MAX];         /* <datastore path>/<name> */
    char config[PATH_MAX];      /* dir/<name>.vmx */
    void *be;                   /* backend's runtime state */
    struct kvc_lease_watch *lease_watch;  /* vmstore.c: its lease as we last saw it */
};

struct hostd_datastore {
    char *name, *path;
    bool shared;
};

struct hostd_network {
    char *name, *vswitch;
    uint32_t vlan;
};

/* A standard vSwitch (hostd/vswitch.c); its port groups are the host's
 * networks (hostd_network.vswitch names it). */
struct hostd_vswitch {
    char *name;
    uint32_t ports, mtu;
};

/* Hardware as reported (real for kvm, configured for sim). */
struct hostd_hw {
    char cpu_model[128];
    uint32_t sockets, cores, threads, mhz;
    uint64_t memory_bytes;
};

struct hostd;

struct hostd_host {
    struct hostd *d;
    unsigned index;
    char *name;
    char uuid[HOSTD_UUID_LEN];
    char state_dir[PATH_MAX];
    struct kvc_tls_identity *id;
    struct kvc_rpc_server *srv;
    uint16_t port;
    struct hostd_hw hw;

    /* The trusted vpxd (pinned thumbprint, "" until the first Hello). */
    char vpxd_thumbprint[96];
    struct kvc_rpc_conn *vpxd;          /* the live session, NULL if none */
    bool ping_out;                      /* a liveness Ping to vpxd is out (host.c) */
    uint32_t hb_ms, stats_ms;
    uint64_t hb_seq;
    struct event *hb_ev, *stats_ev;

    uint64_t generation;                /* inventory generation, persisted */
    bool maintenance;

    struct hostd_datastore *ds;
    size_t n_ds;
    struct hostd_network *nets;         /* port groups (vswitch.c keeps them) */
    size_t n_nets;
    struct hostd_vswitch *vsw;
    size_t n_vsw;
    struct hostd_vm *vms;
    Kvc__Host__PoolTree *pools;         /* resource pools (pools.c), NULL until vpxd sends */
    struct hostd_migration *migs;       /* live migrations in and out (migrate.c) */
    struct event *mig_ev;

    const struct hostd_backend_ops *be;
    void *be_priv;

    /* Failure injection (control socket): */
    bool fail_net_hb;                   /* stop sending network heartbeats */
    bool fail_ds_hb;                    /* stop writing datastore heartbeats */
    bool crashed;                       /* the whole host is "down" */
    bool fail_net;                      /* management network cut (HA tests) */

    struct hostd_ha *ha;                /* HA agent (ha.c) */
};

struct hostd_options {
    const char *config_path;
    const char *backend;                /* "kvm" | "sim" */
    const char *state_dir;
    const char *listen;
    int port;                           /* -1: from config; 0: ephemeral */
    const char *name;
    unsigned sim_hosts;
    unsigned heartbeat_ms;              /* default until vpxd says */
    const char *admin_user, *admin_password;
    const char *vmkd_socket;
    const char *guest_image;            /* kvm: the test guest vmx boots */
    unsigned lease_ms;                  /* VM lease duration (lib/lease.h); 0: default */
    /* Datastores and networks given on the command line (name=path[:shared]). */
    char **ds_specs;
    size_t n_ds_specs;
    char **net_specs;
    size_t n_net_specs;
    /* sim hardware */
    unsigned sim_cores, sim_mhz;
    uint64_t sim_memory;
};

struct hostd {
    struct event_base *base;
    struct hostd_options opt;
    struct hostd_host **hosts;
    size_t n_hosts;
    struct event *sig_term, *sig_int;
    struct control *ctl;
};

/* host.c */
int hostd_host_new(struct hostd *, unsigned index, struct hostd_host **out);
void hostd_host_free(struct hostd_host *);
int hostd_host_start(struct hostd_host *);
/* Persist and announce a VM change (bumps generations, writes config,
 * sends a VmEvent).  REMOVED: the VM is gone (caller frees it after). */
void hostd_vm_changed(struct hostd_host *, struct hostd_vm *, bool removed);
struct hostd_vm *hostd_vm_find(struct hostd_host *, const char *uuid);
/* By uuid, else by name (control-socket commands take either). */
static inline struct hostd_vm *
hostd_vm_find_key(struct hostd_host *h, const char *key)
{
    struct hostd_vm *vm = hostd_vm_find(h, key);

    for (struct hostd_vm *v = h->vms; !vm && v; v = v->next)
        if (!strcmp(v->name, key))
            vm = v;
    return vm;
}
struct kvc_rpc_call;
/* CALL came on the host's vpxd session (after its Hello); hostd_session_ok
 * answers PERMISSION ("say hello first") when not. */
bool hostd_is_session(const struct hostd_host *, struct kvc_rpc_call *call);
bool hostd_session_ok(struct hostd_host *, struct kvc_rpc_call *call);
void hostd_vm_to_info(const struct hostd_host *, const struct hostd_vm *,
                      Kvc__Host__VmInfo *out);
/* Failure injection: "crash" powers off every VM and goes silent;
 * "recover" brings the host back with its VMs off. */
void hostd_host_crash(struct hostd_host *);
void hostd_host_recover(struct hostd_host *);

/* vmstore.c: VM folders and config files on datastores, the registry. */
int vmstore_load(struct hostd_host *);
int vmstore_save_registry(struct hostd_host *);
int vmstore_create(struct hostd_host *, const Kvc__Host__VmSpec *,
                   struct hostd_vm **out, char *err, size_t errlen);
int vmstore_write_config(struct hostd_host *, struct hostd_vm *);
int vmstore_delete(struct hostd_host *, struct hostd_vm *);
void vmstore_vm_free(struct hostd_vm *);
/* The VM's lease <dir>/<name>.lck (lib/lease.h; docs/hosts.md "Leases").
 * check: may this host start the VM now?  0, or -EBUSY (live on another
 * host) / -EBADMSG (corrupt) with WHY.  acquire: take it for this host.
 * release_owned: free it if this host holds it (its vmx died). */
struct kvc_lease;
struct kvc_lease_opts;
void vmstore_lease_opts(struct hostd_host *, struct hostd_vm *, struct kvc_lease_opts *,
                        char *path, size_t len);
int vmstore_lease_check(struct hostd_host *, struct hostd_vm *, char *why, size_t len);
int vmstore_lease_acquire(struct hostd_host *, struct hostd_vm *, bool force,
                          struct kvc_lease **out, char *why, size_t len);
void vmstore_lease_release_owned(struct hostd_host *, struct hostd_vm *);
struct hostd_datastore *vmstore_datastore(struct hostd_host *, const char *name);
/* Datastore heartbeat file DS/.kvc-hb/<host uuid> (shared datastores). */
int vmstore_write_ds_heartbeat(struct hostd_host *, int64_t now_ms);
/* Persisted per-host counters. */
int hostd_state_write(const char *dir, const char *file, const char *value);
int hostd_state_read(const char *dir, const char *file, char *buf, size_t len);

/* Loads one VM from its config file PATH (on one of the host's datastores)
 * without registering it: live migration brings a VM in this way. */
int vmstore_load_vm(struct hostd_host *, const char *path, struct hostd_vm **out);

/* migrate.c: live migration, both ends (the RPC methods MIGRATE_*). */
struct hostd_migration;
struct kvc_rpc_call;
void hostd_migrate_prepare(struct kvc_rpc_call *, const ProtobufCMessage *, void *host);
void hostd_migrate_send(struct kvc_rpc_call *, const ProtobufCMessage *, void *host);
void hostd_migrate_status(struct kvc_rpc_call *, const ProtobufCMessage *, void *host);
void hostd_migrate_abort(struct kvc_rpc_call *, const ProtobufCMessage *, void *host);
void hostd_migrate_finish(struct kvc_rpc_call *, const ProtobufCMessage *, void *host);
/* Drops every migration (host crash, shutdown); outgoing VMs stay here. */
void hostd_migrate_drop_all(struct hostd_host *);
/* svmotion.c: storage migration (VM_STORAGE_MOVE*), the VM's folder to
 * another datastore of the host. */
void hostd_svmotion_start(struct kvc_rpc_call *, const ProtobufCMessage *, void *host);
void hostd_svmotion_status(struct kvc_rpc_call *, const ProtobufCMessage *, void *host);
void hostd_svmotion_cancel(struct kvc_rpc_call *, const ProtobufCMessage *, void *host);
/* At start-up (the kvm backend's init, VMs adopted): resolve the journal of
 * a storage move hostd did not finish (roll forward or back). */
void hostd_svmotion_recover(struct hostd_host *);
/* The VM of an incoming streaming migration (loaded, not registered), or NULL. */
struct hostd_vm *hostd_migrate_incoming_vm(struct hostd_host *, const char *uuid);

/* ha.c: the host's HA agent (docs/ha.md): VM register/unregister for
 * restarts, the HA settings vpxd pushes (kept in STATE_DIR/ha.conf, since
 * they matter most while vpxd is away), the power-on file beside the
 * datastore heartbeat, and isolation detection and response. */
struct hostd_ha;
int hostd_ha_new(struct hostd_host *);
void hostd_ha_free(struct hostd_host *);
/* Every heartbeat period, crashed or not connected too. */
void hostd_ha_tick(struct hostd_host *, int64_t now_ms);
/* A VM's power changed: rewrite the power-on files now. */
void hostd_ha_poweron_write(struct hostd_host *);
/* Whether host UUID still writes its heartbeat on datastore DS_PATH (its
 * heartbeat is younger than the detection time). */
bool hostd_ha_host_alive(struct hostd_host *, const char *ds_path, const char *uuid);
/* "net cut|restore" (failure injection); -ENOENT: not an HA command. */
int hostd_ha_control(struct hostd_host *, int argc, char **argv, char *out, size_t len);
struct kvc_rpc_call;
void hostd_ha_on_register(struct kvc_rpc_call *, const ProtobufCMessage *, void *);
void hostd_ha_on_unregister(struct kvc_rpc_call *, const ProtobufCMessage *, void *);
void hostd_ha_on_config(struct kvc_rpc_call *, const ProtobufCMessage *, void *);
/* vmstore.c: read one VM config (the VM is not registered). */
int vmstore_load_config(struct hostd_host *, const char *path, struct hostd_vm **out);

/* host.c: start power operation OP on VM as vpxd's VM_POWER would (checks
 * first: -EALREADY, -EBUSY with WHY, ...); a backend with asynchronous
 * power ops finishes later and announces the change then. */
int hostd_vm_power_start(struct hostd_host *, struct hostd_vm *, Kvc__Host__PowerOp op,
                         const char **why);
/* host.c: the networks changed: bump the generation, send the inventory. */
void hostd_inventory_changed(struct hostd_host *);

/* vswitch.c: standard vSwitches and port groups (docs/vswitch.md "Live
 * configuration").  init: the model from STATE_DIR/vswitches.json, or from
 * the --network options on a first start.  kvm_sync (kvm backend, before
 * the loop runs): reconcile with vmkd and take its list.  apply: check and
 * make one change (0, or -EINVAL/-EEXIST/-ENOENT/-EBUSY with ERR). */
enum hostd_vsw_kind { HOSTD_VSW_ADD = 1, HOSTD_VSW_REMOVE, HOSTD_PG_ADD, HOSTD_PG_REMOVE,
                      HOSTD_PG_SET };
struct hostd_vsw_op {
    enum hostd_vsw_kind kind;
    const char *name;           /* the vSwitch or port group */
    const char *vswitch;        /* PG_ADD: required; PG_REMOVE: optional */
    uint32_t ports, mtu, vlan;
};
struct kvc_rpc_client;
bool hostd_vswitch_valid_name(const char *);
int hostd_vswitch_init(struct hostd_host *);
void hostd_vswitch_fini(struct hostd_host *);
int hostd_vswitch_kvm_sync(struct hostd_host *, struct kvc_rpc_client *vmkd);
int hostd_vswitch_apply(struct hostd_host *, const struct hostd_vsw_op *, char *err,
                        size_t len);
/* The host API (hostd/ssh/hostapi.c): 1 if ROUTE was one of its routes
 * (STATUS and REPLY set), else 0. */
int hostd_vswitch_api(struct hostd_host *, const char *method, const char *route,
                      const json_t *body, long *status, json_t **reply);
json_t *hostd_vswitch_list_json(struct hostd_host *);
json_t *hostd_portgroup_list_json(struct hostd_host *);
/* RPC: VSWITCH_LIST, and the five changes (VSWITCH_ADD ... PORTGROUP_SET). */
void hostd_vswitch_on_list(struct kvc_rpc_call *, const ProtobufCMessage *, void *host);
void hostd_vswitch_on_change(struct kvc_rpc_call *, const ProtobufCMessage *, void *host);
/* pools.c: POOLS_SET / POOLS_GET (docs/resource-pools.md); pools_free at
 * host teardown. */
void hostd_pools_on_set(struct kvc_rpc_call *, const ProtobufCMessage *, void *host);
void hostd_pools_on_get(struct kvc_rpc_call *, const ProtobufCMessage *, void *host);
void hostd_pools_free(struct hostd_host *);
/* kvm: (re)sends the kept tree to vmkd (after vmkd reconnected). */
void hostd_pools_kvm_resync(struct hostd_host *);
/* backends/kvm.c: the vmkd client of a kvm host, NULL for others. */
struct kvc_rpc_client *hostd_kvm_vmkd(struct hostd_host *);

/* hwinfo.c */
int hwinfo_read(struct hostd_hw *);

/* control.c: the local control socket (failure injection, status). */
struct control;
int control_new(struct hostd *, const char *path, struct control **out);
void control_free(struct control *);

/* util */
int64_t hostd_now_ms(void);
void hostd_uuid_generate(char out[HOSTD_UUID_LEN]);
bool hostd_uuid_valid(const char *);
int hostd_mkdirs(const char *path, mode_t mode);

#endif
