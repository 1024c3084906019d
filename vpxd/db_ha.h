/* HA's writes (sql/0004-ha.sql), part of the db module (db.h rules: every
 * function runs in one transaction, returns 0 / a count or -errno). */
#ifndef VPXD_DB_HA_H
#define VPXD_DB_HA_H

#include <stdbool.h>
#include <stdint.h>

#include "vpxd/db.h"

struct vdb_ha_settings {
    bool enabled;               /* cluster.ha_enabled */
    bool host_monitoring;
    int64_t detection_ms;       /* 100..600000 */
    const char *admission_policy;   /* disabled host_failures percentage failover_hosts */
    int64_t host_failures;      /* 1..63 */
    int64_t cpu_percent, mem_percent;   /* 0..100 */
    const char *failover_hosts_json;    /* JSON array of host ids */
    const char *restart_priority;       /* disabled lowest low medium high highest */
    const char *isolation_response;     /* none power_off shutdown */
    const char *isolation_address;      /* "" or "IP:PORT" */
    bool vm_monitoring;
    int64_t vm_failure_interval_s, vm_min_uptime_s, vm_max_resets, vm_max_resets_window_s;
};

/* Replaces CLUSTER's settings (bumps their generation) and records
 * com.vmware.vc.HA.ClusterConfigChangedEvent.  -EINVAL on a value out of
 * range (nothing changes), -ENOENT: no such cluster. */
int vdb_ha_cluster_set(struct vdb *, const char *cluster, const struct vdb_ha_settings *);

/* A VM's restart priority; NULL: the cluster's default. */
int vdb_ha_vm_set_priority(struct vdb *, const char *vm, const char *priority);
int vdb_ha_vm_set_protected(struct vdb *, const char *vm, bool protected_);
/* The host HA last saw running VM (kept when a stale copy elsewhere makes
 * the inventory move it while that host is away). */
int vdb_ha_vm_set_running_host(struct vdb *, const char *vm, const char *host);

/* Host HA state (healthy, unreachable, isolated, partitioned, failed) and
 * its hostd uuid (NULL: unchanged).  A state change records
 * com.vmware.vc.HA.HostStateChangedEvent with WHY, plus
 * com.vmware.vc.HA.DasHostFailedEvent / DasHostIsolatedEvent for those
 * states.  Returns 1 if the state changed, 0 if not. */
int vdb_ha_host_set(struct vdb *, const char *host, const char *uuid, const char *state,
                    const char *why);

/* Failover queue.  Add: 1 if queued, 0 if the VM was queued already. */
int vdb_ha_restart_add(struct vdb *, const char *vm, const char *cluster,
                       const char *from_host, int rank, const char *reason);
/* STATE pending/registering/powering_on, TARGET (NULL: unchanged); BUMP
 * counts one more attempt. */
int vdb_ha_restart_update(struct vdb *, const char *vm, const char *state,
                          const char *target, bool bump);
int vdb_ha_restart_delete(struct vdb *, const char *vm);

#endif
