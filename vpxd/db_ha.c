/* HA's writes (sql/0004-ha.sql): part of the db module, for vpxd/ha.c and
 * vpxd/api/ha.c. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vpxd/db.h"
#include "vpxd/db_ha.h"
#include "vpxd/db_internal.h"

static bool one_of(const char *s, const char *const *words)
{
    for (; s && *words; words++)
        if (!strcmp(s, *words))
            return true;
    return false;
}

static const char *const priorities[] = { "disabled", "lowest", "low", "medium", "high",
                                          "highest", NULL };

int vdb_ha_cluster_set(struct vdb *db, const char *cluster, const struct vdb_ha_settings *s)
{
    static const char *const policies[] = { "disabled", "host_failures", "percentage",
                                            "failover_hosts", NULL };
    static const char *const responses[] = { "none", "power_off", "shutdown", NULL };
    json_t *fh;
    int rc;

    if (!s || !one_of(s->admission_policy, policies) || !one_of(s->restart_priority, priorities)
        || !one_of(s->isolation_response, responses) || !s->isolation_address
        || strlen(s->isolation_address) > 127 || s->detection_ms < 100
        || s->detection_ms > 600000 || s->host_failures < 1 || s->host_failures > 63
        || s->cpu_percent < 0 || s->cpu_percent > 100 || s->mem_percent < 0
        || s->mem_percent > 100 || s->vm_failure_interval_s < 1
        || s->vm_failure_interval_s > 86400 || s->vm_min_uptime_s < 0
        || s->vm_min_uptime_s > 86400 || s->vm_max_resets < 0 || s->vm_max_resets > 1000
        || s->vm_max_resets_window_s < 1 || s->vm_max_resets_window_s > 604800
        || !s->failover_hosts_json)
        return -EINVAL;
    fh = json_loads(s->failover_hosts_json, 0, NULL);
    rc = json_is_array(fh) ? 0 : -EINVAL;
    json_decref(fh);
    if (rc < 0)
        return rc;
    if (!vdb_entity_exists(db, cluster, "cluster"))
        return -ENOENT;
    if ((rc = vdb_begin(db)) < 0)
        return rc;
    rc = vdb_exec(db, "UPDATE cluster SET ha_enabled = ? WHERE id = ?", "is",
                  s->enabled ? 1 : 0, cluster);
    if (rc >= 0)
        rc = vdb_exec(db, "INSERT OR IGNORE INTO ha_cluster (cluster) VALUES (?)", "s", cluster);
    if (rc >= 0)
        rc = vdb_exec(db, "UPDATE ha_cluster SET host_monitoring = ?, detection_ms = ?,"
                      " admission_policy = ?, host_failures = ?, cpu_percent = ?,"
                      " mem_percent = ?, failover_hosts = ?, restart_priority = ?,"
                      " isolation_response = ?, isolation_address = ?, vm_monitoring = ?,"
                      " vm_failure_interval_s = ?, vm_min_uptime_s = ?, vm_max_resets = ?,"
                      " vm_max_resets_window_s = ?, generation = generation + 1"
                      " WHERE cluster = ?", "iIsIIIssssiIIIIs",
                      s->host_monitoring ? 1 : 0, s->detection_ms, s->admission_policy,
                      s->host_failures, s->cpu_percent, s->mem_percent,
                      s->failover_hosts_json, s->restart_priority, s->isolation_response,
                      s->isolation_address, s->vm_monitoring ? 1 : 0,
                      s->vm_failure_interval_s, s->vm_min_uptime_s, s->vm_max_resets,
                      s->vm_max_resets_window_s, cluster);
    if (rc >= 0) {
        char msg[256];
        snprintf(msg, sizeof(msg), "vSphere HA %s: admission control %s, restart priority %s,"
                 " isolation response %s, detection %lld ms", s->enabled ? "enabled" : "disabled",
                 s->admission_policy, s->restart_priority, s->isolation_response,
                 (long long)s->detection_ms);
        int64_t seq = vdb_event_add_locked(db, "com.vmware.vc.HA.ClusterConfigChangedEvent",
                                           "info", cluster, NULL, msg);
        rc = seq < 0 ? (int)seq : 0;
    }
    return vdb_finish(db, rc);
}

int vdb_ha_vm_set_priority(struct vdb *db, const char *vm, const char *priority)
{
    int rc;

    if (priority && !one_of(priority, priorities))
        return -EINVAL;
    if (!vdb_entity_exists(db, vm, "vm"))
        return -ENOENT;
    if ((rc = vdb_begin(db)) < 0)
        return rc;
    rc = vdb_exec(db, "INSERT INTO ha_vm (vm, restart_priority) VALUES (?, ?)"
                  " ON CONFLICT (vm) DO UPDATE SET restart_priority = excluded.restart_priority",
                  "ss", vm, priority);
    return vdb_finish(db, rc < 0 ? rc : 0);
}

int vdb_ha_vm_set_protected(struct vdb *db, const char *vm, bool on)
{
    int rc;

    if (!vdb_entity_exists(db, vm, "vm"))
        return -ENOENT;
    if ((rc = vdb_begin(db)) < 0)
        return rc;
    rc = vdb_exec(db, "INSERT INTO ha_vm (vm, protected) VALUES (?, ?)"
                  " ON CONFLICT (vm) DO UPDATE SET protected = excluded.protected",
                  "si", vm, on ? 1 : 0);
    return vdb_finish(db, rc < 0 ? rc : 0);
}

int vdb_ha_vm_set_running_host(struct vdb *db, const char *vm, const char *host)
{
    int rc;

    if (!vdb_entity_exists(db, vm, "vm"))
        return -ENOENT;
    if ((rc = vdb_begin(db)) < 0)
        return rc;
    rc = vdb_exec(db, "INSERT INTO ha_vm (vm, running_host) VALUES (?, ?)"
                  " ON CONFLICT (vm) DO UPDATE SET running_host = excluded.running_host",
                  "ss", vm, host);
    return vdb_finish(db, rc < 0 ? rc : 0);
}

int vdb_ha_host_set(struct vdb *db, const char *host, const char *uuid, const char *state,
                    const char *why)
{
    static const char *const states[] = { "unknown", "healthy", "unreachable", "isolated",
                                          "partitioned", "failed", NULL };
    char now[32], old[32] = "";
    int rc, changed = 0;

    if (state && !one_of(state, states))
        return -EINVAL;
    if (!vdb_entity_exists(db, host, "host"))
        return -ENOENT;
    vdb_now(now, sizeof(now));
    if ((rc = vdb_begin(db)) < 0)
        return rc;
    rc = vdb_exec(db, "INSERT OR IGNORE INTO ha_host (host, since) VALUES (?, ?)", "ss",
                  host, now);
    if (rc >= 0 && uuid)
        rc = vdb_exec(db, "UPDATE ha_host SET uuid = ? WHERE host = ?", "ss", uuid, host);
    if (rc >= 0 && state) {
        vdb_query_str(db, old, sizeof(old), "SELECT state FROM ha_host WHERE host = ?", "s",
                      host);
        if (strcmp(old, state)) {
            char msg[512];
            rc = vdb_exec(db, "UPDATE ha_host SET state = ?, since = ? WHERE host = ?", "sss",
                          state, now, host);
            snprintf(msg, sizeof(msg), "vSphere HA availability state of the host changed"
                     " from %s to %s%s%s", old, state, why ? ": " : "", why ? why : "");
            int64_t seq = rc < 0 ? rc : vdb_event_add_locked(db,
                "com.vmware.vc.HA.HostStateChangedEvent",
                !strcmp(state, "failed") ? "error"
                : !strcmp(state, "healthy") || !strcmp(state, "unknown") ? "info" : "warning",
                host, NULL, msg);
            if (seq >= 0 && !strcmp(state, "failed"))
                seq = vdb_event_add_locked(db, "com.vmware.vc.HA.DasHostFailedEvent", "error",
                                           host, NULL, why ? why : "host failed");
            else if (seq >= 0 && !strcmp(state, "isolated"))
                seq = vdb_event_add_locked(db, "com.vmware.vc.HA.DasHostIsolatedEvent",
                                           "warning", host, NULL, why ? why : "host isolated");
            rc = seq < 0 ? (int)seq : 0;
            changed = 1;
        }
    }
    rc = vdb_finish(db, rc < 0 ? rc : 0);
    return rc < 0 ? rc : changed;
}

int vdb_ha_restart_add(struct vdb *db, const char *vm, const char *cluster,
                       const char *from_host, int rank, const char *reason)
{
    char now[32];
    int rc;

    if (!vm || !cluster || !from_host || !reason)
        return -EINVAL;
    vdb_now(now, sizeof(now));
    if ((rc = vdb_begin(db)) < 0)
        return rc;
    rc = vdb_exec(db, "INSERT OR IGNORE INTO ha_restart (vm, cluster, from_host, rank, reason,"
                  " created) VALUES (?, ?, ?, ?, ?, ?)", "sssiss", vm, cluster, from_host,
                  rank, reason, now);
    return vdb_finish(db, rc);
}

int vdb_ha_restart_update(struct vdb *db, const char *vm, const char *state,
                          const char *target, bool bump)
{
    static const char *const states[] = { "pending", "registering", "powering_on", NULL };
    int rc;

    if (!one_of(state, states))
        return -EINVAL;
    if ((rc = vdb_begin(db)) < 0)
        return rc;
    rc = vdb_exec(db, "UPDATE ha_restart SET state = ?, target = coalesce(?, target),"
                  " attempts = attempts + ? WHERE vm = ?", "ssis", state, target, bump ? 1 : 0,
                  vm);
    return vdb_finish(db, rc);
}

int vdb_ha_restart_delete(struct vdb *db, const char *vm)
{
    int rc;

    if ((rc = vdb_begin(db)) < 0)
        return rc;
    rc = vdb_exec(db, "DELETE FROM ha_restart WHERE vm = ?", "s", vm);
    return vdb_finish(db, rc);
}
