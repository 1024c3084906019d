/* vpxd's database: one SQLite file in WAL mode, the source of truth for the
 * inventory, tasks, events, alarms, access control and the audit log.
 *
 * This module owns every write.  Other modules read through
 * vdb_query_json()/vdb_query_*() (read-only statements only: a write
 * statement there is refused) and change state only through the functions
 * below, each of which runs in one transaction, so a kill -9 at any moment
 * leaves either all of a change or none of it.
 *
 * Durability: synchronous=FULL, so a committed change survives a power
 * loss as well as a crash of vpxd.  Busy timeout 5 s (the sqlite3 CLI or a
 * backup may hold a lock briefly).
 *
 * Single-threaded: call from vpxd's event loop thread only.
 *
 * Errors: functions return 0 (or a row count) on success, otherwise -errno:
 * -ENOENT no such object, -EEXIST name or key taken, -EBUSY locked,
 * -EINVAL bad argument, -ENOTEMPTY object still has children, -EIO other
 * SQLite errors (logged).
 */
#ifndef VPXD_DB_H
#define VPXD_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

struct vdb;

#define VDB_ID_MAX 64           /* "datacenter-123456789" fits with room */
#define VDB_ROOT_FOLDER "group-d1"

/* Opens (creating if needed) the database at PATH and applies every
 * migration not yet recorded in schema_version, in order, each in its own
 * transaction.  Then marks tasks left PENDING/RUNNING by a previous run as
 * FAILED (they were interrupted). */
int vdb_open(const char *path, struct vdb **out);
void vdb_close(struct vdb *);

/* Number of migrations applied (the schema version). */
int vdb_schema_version(struct vdb *);
/* Tasks marked failed by vdb_open because a previous run was interrupted. */
int vdb_interrupted_tasks(const struct vdb *);

/* Group several changes (e.g. a REST request and its audit record) into one
 * transaction.  Transactions nest (inner ones are savepoints).  vdb_finish
 * commits if RC >= 0, else rolls back, and returns RC or the commit error. */
int vdb_begin(struct vdb *);
int vdb_finish(struct vdb *, int rc);

/* Current UTC time as "2026-11-22T07:30:00.123Z" into BUF (>= 32 bytes). */
void vdb_now(char *buf, size_t len);

/* ---- reads (read-only statements; binding format below) ----
 * FMT has one letter per '?' in SQL: 's' const char * (NULL binds NULL),
 * 'i' int, 'I' int64_t, 'd' double. */
/* All rows as a JSON array of objects keyed by column name; integer columns
 * become JSON integers, NULL becomes null.  Columns named "*_json" are
 * parsed as JSON and keep the name without the suffix. */
int vdb_query_json(struct vdb *, json_t **out, const char *sql,
                   const char *fmt, ...);
/* First row as an object, or -ENOENT. */
int vdb_query_row(struct vdb *, json_t **out, const char *sql,
                  const char *fmt, ...);
/* First column of the first row as int64, or -ENOENT. */
int vdb_query_int(struct vdb *, int64_t *out, const char *sql,
                  const char *fmt, ...);
/* First column of the first row copied into BUF, or -ENOENT. */
int vdb_query_str(struct vdb *, char *buf, size_t len, const char *sql,
                  const char *fmt, ...);

/* ---- entities ---- */
/* Type of entity ID ("vm", "host", ...) into BUF, or -ENOENT. */
int vdb_entity_type(struct vdb *, const char *id, char *buf, size_t len);
int vdb_entity_parent(struct vdb *, const char *id, char *buf, size_t len);
bool vdb_entity_exists(struct vdb *, const char *id, const char *type);

/* Datacenter NAME in FOLDER (NULL: root folder), with its four folders. */
int vdb_datacenter_create(struct vdb *, const char *name, const char *folder,
                          char out_id[VDB_ID_MAX]);
/* -ENOTEMPTY if it holds hosts or VMs and FORCE is false. */
int vdb_datacenter_delete(struct vdb *, const char *id, bool force);
/* Folder NAME under PARENT folder (same type as the parent). */
int vdb_folder_create(struct vdb *, const char *name, const char *parent,
                      char out_id[VDB_ID_MAX]);
int vdb_folder_delete(struct vdb *, const char *id);
/* Cluster NAME in host folder or datacenter PARENT, with its root pool. */
int vdb_cluster_create(struct vdb *, const char *name, const char *parent,
                       bool ha, bool drs, char out_id[VDB_ID_MAX]);
int vdb_cluster_delete(struct vdb *, const char *id);

struct vdb_host_spec {
    const char *name;           /* usually the hostname */
    const char *hostname;
    int port;
    const char *user_name;
    const char *thumbprint;     /* pinned SHA-256, "AA:BB:..." */
    const char *parent;         /* host folder or cluster */
};
int vdb_host_add(struct vdb *, const struct vdb_host_spec *,
                 char out_id[VDB_ID_MAX]);
/* -ENOTEMPTY if VMs are still registered on the host and it is connected. */
int vdb_host_remove(struct vdb *, const char *id);
/* "CONNECTED", "DISCONNECTED", "NOT_RESPONDING"; records an event when the
 * state changes.  Returns 1 if it changed, 0 if not. */
int vdb_host_set_state(struct vdb *, const char *id, const char *state);
struct vdb_host_hw {
    int cpu_count;
    int cpu_mhz;
    int64_t memory_bytes;
    const char *product_version;
};
int vdb_host_set_hw(struct vdb *, const char *id, const struct vdb_host_hw *);
int vdb_host_set_maintenance(struct vdb *, const char *id, bool on);

/* What a host reports it sees.  A datastore or network is one object per
 * datacenter, found by name, shared by the hosts that report it. */
struct vdb_datastore_info {
    const char *name;
    const char *type;           /* "VMFS", "NFS", ... */
    const char *url;
    int64_t capacity, free_space;
    bool accessible;
};
int vdb_datastore_report(struct vdb *, const char *host,
                         const struct vdb_datastore_info *,
                         char out_id[VDB_ID_MAX]);
int vdb_network_report(struct vdb *, const char *host, const char *name,
                       const char *type, int vlan, char out_id[VDB_ID_MAX]);
/* Drops HOST's links to the networks not named in NAMES_JSON (a JSON array
 * of port group names) and the networks no host links to any more. */
int vdb_network_prune(struct vdb *, const char *host, const char *names_json);

/* Resource pools. */
struct vdb_alloc {
    int64_t reservation, limit;
    bool expandable;
    const char *shares_level;   /* LOW NORMAL HIGH CUSTOM */
    int64_t shares;
};
int vdb_rp_create(struct vdb *, const char *name, const char *parent,
                  const struct vdb_alloc *cpu, const struct vdb_alloc *mem,
                  char out_id[VDB_ID_MAX]);
/* NULL arguments leave that part unchanged. */
int vdb_rp_update(struct vdb *, const char *id, const char *name,
                  const struct vdb_alloc *cpu, const struct vdb_alloc *mem);
int vdb_rp_delete(struct vdb *, const char *id);

/* VMs. */
struct vdb_vm_spec {
    const char *name;
    const char *guest_os;
    const char *hw_version;
    const char *folder;         /* VM folder */
    const char *host;           /* may be NULL while unplaced */
    const char *resource_pool;
    const char *datastore;
    int cpu_count, cores_per_socket;
    int64_t memory_mib;
    const char *power_state;    /* NULL: POWERED_OFF */
    const char *instance_uuid;  /* NULL: generated */
    const char *bios_uuid;      /* NULL: generated */
    const char *config_path;
    const char *hardware_json;  /* disks, nics, cdroms; NULL: "{}" */
};
int vdb_vm_create(struct vdb *, const struct vdb_vm_spec *,
                  char out_id[VDB_ID_MAX]);
int vdb_vm_delete(struct vdb *, const char *id);
/* Records an event (and the power-state alarm) when the state changes.
 * Returns 1 if it changed, 0 if not. */
int vdb_vm_set_power(struct vdb *, const char *id, const char *state,
                     const char *user);
int vdb_vm_set_host(struct vdb *, const char *id, const char *host);
/* The VM's datastore and config path as its host reports them (they change
 * with a storage migration); NULL or "" leaves one as it is. */
int vdb_vm_set_files(struct vdb *, const char *id, const char *datastore,
                     const char *config_path);
int vdb_vm_set_hardware(struct vdb *, const char *id, int cpu_count,
                        int cores_per_socket, int64_t memory_mib);
int vdb_vm_set_guest(struct vdb *, const char *id, const char *tools_run_state,
                     const char *guest_state, const char *host_name,
                     const char *ip);
/* Moves VM ID to FOLDER and resource pool RP and sets what only vpxd
 * knows of it (name, guest OS, hardware version, cores per socket,
 * devices), e.g. when the host reported the VM before its create completed. */
int vdb_vm_place(struct vdb *, const char *id, const struct vdb_vm_spec *);
/* VM id by instance UUID, or -ENOENT. */
int vdb_vm_by_uuid(struct vdb *, const char *instance_uuid,
                   char out_id[VDB_ID_MAX]);

/* ---- tasks ---- */
int vdb_task_create(struct vdb *, const char *service, const char *operation,
                    const char *target_type, const char *target_id,
                    const char *user, char out_id[VDB_ID_MAX]);
/* STATUS RUNNING/BLOCKED with progress COMPLETED (of 100) and MESSAGE. */
int vdb_task_progress(struct vdb *, const char *id, const char *status,
                      int completed, const char *message);
/* SUCCEEDED with RESULT (may be NULL; not stolen) or FAILED with ERROR
 * (an /api error body; not stolen). */
int vdb_task_finish(struct vdb *, const char *id, const json_t *result,
                    const json_t *error);

/* Whether the task can be cancelled now (/api/cis/tasks/{task}?action=cancel). */
int vdb_task_set_cancelable(struct vdb *, const char *id, bool cancelable);

/* ---- DRS (db_drs.c, sql/0005-drs.sql, docs/drs.md) ---- */
/* AUTOMATION "manual" | "partiallyAutomated" | "fullyAutomated"; THRESHOLD
 * 1..5; INTERVAL_S 1..86400.  Also sets cluster.drs_enabled. */
int vdb_drs_config_set(struct vdb *, const char *cluster, bool enabled,
                       const char *automation, int threshold, int interval_s);
/* KIND as in drs_rule.kind; VMS and HOSTS JSON arrays of ids (not stolen). */
int vdb_drs_rule_create(struct vdb *, const char *cluster, const char *name,
                        const char *kind, bool enabled, const json_t *vms,
                        const json_t *hosts, char out_id[VDB_ID_MAX]);
int vdb_drs_rule_delete(struct vdb *, const char *cluster, const char *id);
int vdb_drs_rec_add(struct vdb *, const char *cluster, const char *vm,
                    const char *source, const char *target, const char *reason,
                    double gain, double cost, int64_t migration_ms,
                    char out_id[VDB_ID_MAX]);
/* STATE pending|applying|applied|failed|superseded. */
int vdb_drs_rec_set_state(struct vdb *, const char *id, const char *state,
                          const char *message);
/* Marks the cluster's pending recommendations superseded (a new pass),
 * except those in KEEP (a JSON array of ids, or NULL). */
int vdb_drs_rec_supersede(struct vdb *, const char *cluster, const json_t *keep);

/* ---- events and alarms ---- */
/* Appends an event; fires any alarm bound to TYPE on OBJECT.  Returns the
 * event's sequence number (> 0) or -errno.  A listener (the SSE stream)
 * is told of every event. */
int64_t vdb_event_add(struct vdb *, const char *type, const char *severity,
                      const char *object, const char *user,
                      const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
typedef void (*vdb_event_cb)(void *arg, int64_t seq);
void vdb_set_event_listener(struct vdb *, vdb_event_cb, void *arg);
/* Set or clear (STATUS "green") an alarm on OBJECT. */
int vdb_alarm_set(struct vdb *, const char *alarm, const char *object,
                  const char *status, const char *message);
int vdb_alarm_ack(struct vdb *, const char *alarm, const char *object);

/* ---- access control ---- */
/* First start: the root folder, user ADMIN with HASH, and the Admin role
 * for it on the root folder, in one transaction. */
int vdb_bootstrap_admin(struct vdb *, const char *admin, const char *hash);
int vdb_user_create(struct vdb *, const char *name, const char *hash,
                    bool builtin);
int vdb_user_set_hash(struct vdb *, const char *name, const char *hash);
int vdb_user_delete(struct vdb *, const char *name);
/* PRIVS: NULL-terminated. */
int vdb_role_create(struct vdb *, const char *name, const char *const *privs,
                    int64_t *out_id);
int vdb_role_delete(struct vdb *, int64_t id);
int vdb_permission_set(struct vdb *, const char *entity, const char *principal,
                       int64_t role, bool propagate);
int vdb_permission_delete(struct vdb *, const char *entity,
                          const char *principal);

int vdb_session_create(struct vdb *, const char *token_hash, const char *user);
int vdb_session_touch(struct vdb *, const char *token_hash);
int vdb_session_delete(struct vdb *, const char *token_hash);
/* Deletes sessions idle for more than IDLE_S seconds; returns how many. */
int vdb_session_expire(struct vdb *, int64_t idle_s);

int vdb_audit(struct vdb *, const char *user, const char *remote,
              const char *action, const char *object, const char *result,
              int status);

/* Counters for /metrics. */
struct vdb_stats {
    uint64_t commits, rollbacks, busy;
};
void vdb_get_stats(const struct vdb *, struct vdb_stats *);

#endif
