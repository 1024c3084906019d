/* Migration orchestration in vpxd (docs/drs.md "Migration"): live
 * migration of a powered-on VM (and cold migration of a powered-off one)
 * between two hosts that see its datastore, run by vpxd through both
 * hostds (hostmgr_migrate_*).  Used by REST relocate, maintenance mode and
 * DRS.
 *
 * Guarantees: the source runs the VM until the destination confirms the
 * switch-over; any failure before that (destination killed or not
 * responding, timeout, cancel, a refusal) aborts on both hosts and leaves
 * the VM running on the source, and the inventory shows it once.
 *
 * Concurrency: at most `max_per_host` migrations touch a host at a time
 * (source or destination), like vSphere's vMotion limits (2 at 1 GbE, 8 at
 * 10 GbE); more wait in a FIFO queue (task status PENDING, "queued").
 *
 * Errors: -errno plus a message; callbacks run once, on vpxd's loop. */
#ifndef VPXD_MIGRATION_H
#define VPXD_MIGRATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vpxd/db.h"

struct vpxd;

struct vpxd_migration_config {
    double link_gbps;           /* vMotion network speed; 0: 1 */
    int max_per_host;           /* 0: from the link (2 below 10 Gb/s, else 8) */
    uint32_t downtime_ms;       /* stop-and-copy target; 0: 500 */
    uint32_t poll_ms;           /* progress poll period; 0: 250 */
    int64_t timeout_ms;         /* whole migration, beyond the estimate; 0: 60000 */
};
/* Takes effect for migrations started afterwards. */
void vpxd_migration_configure(const struct vpxd_migration_config *);
/* The effective values (defaults filled in). */
void vpxd_migration_get_config(struct vpxd_migration_config *);

struct vpxd_migrate_req {
    const char *vm;             /* "vm-12" */
    const char *host;           /* destination "host-3" */
    const char *cluster;        /* optional: the host must be in it */
    const char *datastore;      /* optional: the VM's (shared storage), or one its host
                                 * does not see: the disk goes over the migration
                                 * stream to this datastore of the destination
                                 * (powered-on VMs; docs/storage-migration.md) */
    const char *user;           /* for events and the task */
    const char *task;           /* report into this task (REST vmw-task), or NULL:
                                 * the migration makes its own task */
    const char *reason;         /* for the events: "user", "drs", "maintenance" */
};

typedef void (*vpxd_migrate_cb)(void *arg, int err, const char *msg, const char *task);

/* Checks without starting anything: 0, or -errno with WHY:
 *   -ENOENT  no such VM, host, cluster or datastore
 *   -EALREADY the VM is already on that host
 *   -EINVAL  host not in the cluster, a datastore other than the VM's that
 *            its host sees (a storage migration's), destination without the
 *            VM's datastore (or the one the disk goes to) or port groups
 *   -ENOTSUP the disk over the stream for a powered-off VM
 *   -EBUSY   VM suspended or already migrating, destination in maintenance
 *            or entering it
 *   -ENOTCONN a host is not connected
 *   -ENOSPC  destination lacks memory or CPUs
 *   -EPERM   a DRS must rule forbids the destination */
int vpxd_migrate_check(struct vpxd *, const struct vpxd_migrate_req *, char *why,
                       size_t whylen);

/* Starts (or queues) a migration.  Returns 0 and calls CB exactly once
 * when it ends (CB may be NULL), or -errno with WHY and never calls CB.
 * OUT_TASK (may be NULL) receives the task that tracks it. */
int vpxd_migrate_vm(struct vpxd *, const struct vpxd_migrate_req *, vpxd_migrate_cb cb,
                    void *arg, char out_task[VDB_ID_MAX], char *why, size_t whylen);

/* Cancels the migration tracked by TASK: 0 (it ends FAILED with
 * "canceled", the VM stays on the source), -ENOENT (no running migration
 * has that task), -EBUSY (past the switch-over: it completes). */
int vpxd_migrate_cancel(struct vpxd *, const char *task);

/* Whether VM is being migrated. */
bool vpxd_migrating(const char *vm);
/* Memory (MiB) of VMs being migrated onto HOST (admission for placement). */
int64_t vpxd_migrating_to_mib(const char *host);

/* Maintenance mode.  Enter: live-migrates the powered-on VMs of HOST to
 * other hosts of its cluster (placement by drs_place_vm), then sets the
 * host's flag; VMs that cannot move fail it (the message lists them) and
 * the host stays out of maintenance.  Exit clears the flag.  Progress goes
 * to TASK (REST vmw-task) or a task of its own.  Returns 0 and calls CB
 * once, or -errno with WHY. */
int vpxd_host_maintenance(struct vpxd *, const char *host, bool enter, const char *user,
                          const char *task, vpxd_migrate_cb cb, void *arg, char *why,
                          size_t whylen);

/* Aborts every migration (vpxd stopping): each ends -ECANCELED. */
void vpxd_migration_stop(struct vpxd *);

#endif
