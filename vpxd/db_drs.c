/* DRS settings, rules and recommendations (sql/0005-drs.sql): the db
 * module's writes for vpxd/drs.c and vpxd/api/drs.c. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vpxd/db.h"
#include "vpxd/db_internal.h"

int vdb_task_set_cancelable(struct vdb *db, const char *id, bool cancelable)
{
    int rc = vdb_exec(db, "UPDATE task SET cancelable = ? WHERE id = ?", "is",
                      cancelable ? 1 : 0, id);
    return rc < 0 ? rc : rc == 0 ? -ENOENT : 0;
}

static bool one_of(const char *s, const char *const *words)
{
    for (; s && *words; words++)
        if (!strcmp(s, *words))
            return true;
    return false;
}

int vdb_drs_config_set(struct vdb *db, const char *cluster, bool enabled,
                       const char *automation, int threshold, int interval_s)
{
    static const char *const levels[] = { "manual", "partiallyAutomated", "fullyAutomated",
                                          NULL };
    int rc;

    if (!one_of(automation, levels) || threshold < 1 || threshold > 5 || interval_s < 1 ||
        interval_s > 86400)
        return -EINVAL;
    if (!vdb_entity_exists(db, cluster, "cluster"))
        return -ENOENT;
    if ((rc = vdb_begin(db)) < 0)
        return rc;
    rc = vdb_exec(db, "UPDATE cluster SET drs_enabled = ? WHERE id = ?", "is", enabled ? 1 : 0,
                  cluster);
    if (rc >= 0)
        rc = vdb_exec(db, "INSERT INTO drs_config (cluster, automation, threshold, interval_s)"
                      " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (cluster) DO UPDATE SET"
                      " automation = ?2, threshold = ?3, interval_s = ?4", "ssii", cluster,
                      automation, threshold, interval_s);
    if (rc >= 0)
        vdb_event_add(db, "ClusterReconfiguredEvent", "info", cluster, NULL,
                      "DRS %s: %s, migration threshold %d, every %d s",
                      enabled ? "enabled" : "disabled", automation, threshold, interval_s);
    return vdb_finish(db, rc < 0 ? rc : 0);
}

int vdb_drs_rule_create(struct vdb *db, const char *cluster, const char *name,
                        const char *kind, bool enabled, const json_t *vms,
                        const json_t *hosts, char out_id[VDB_ID_MAX])
{
    static const char *const kinds[] = { "VM_AFFINITY", "VM_ANTI_AFFINITY", "VM_HOST_MUST",
        "VM_HOST_SHOULD", "VM_HOST_MUST_NOT", "VM_HOST_SHOULD_NOT", NULL };
    char now[32], *v = NULL, *h = NULL;
    int rc;

    if (!name || !*name || strlen(name) > 80 || !one_of(kind, kinds) || !json_is_array(vms) ||
        (hosts && !json_is_array(hosts)))
        return -EINVAL;
    if (!vdb_entity_exists(db, cluster, "cluster"))
        return -ENOENT;
    v = json_dumps(vms, JSON_COMPACT);
    h = hosts ? json_dumps(hosts, JSON_COMPACT) : strdup("[]");
    vdb_now(now, sizeof(now));
    if (!v || !h) {
        rc = -ENOMEM;
        goto out;
    }
    if ((rc = vdb_begin(db)) < 0)
        goto out;
    rc = vdb_new_id(db, "drsrule", out_id);
    if (rc >= 0)
        rc = vdb_exec(db, "INSERT INTO drs_rule (id, cluster, name, kind, enabled, vms, hosts,"
                      " created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", "ssssisss", out_id, cluster,
                      name, kind, enabled ? 1 : 0, v, h, now);
    if (rc >= 0)
        vdb_event_add(db, "ClusterRuleAddedEvent", "info", cluster, NULL,
                      "rule %s (%s) added", name, kind);
    rc = vdb_finish(db, rc < 0 ? rc : 0);
out:
    free(v);
    free(h);
    return rc;
}

int vdb_drs_rule_delete(struct vdb *db, const char *cluster, const char *id)
{
    int rc = vdb_exec(db, "DELETE FROM drs_rule WHERE cluster = ? AND id = ?", "ss", cluster,
                      id);
    return rc < 0 ? rc : rc == 0 ? -ENOENT : 0;
}

int vdb_drs_rec_add(struct vdb *db, const char *cluster, const char *vm, const char *source,
                    const char *target, const char *reason, double gain, double cost,
                    int64_t migration_ms, char out_id[VDB_ID_MAX])
{
    char now[32];
    int rc;

    vdb_now(now, sizeof(now));
    if ((rc = vdb_begin(db)) < 0)
        return rc;
    rc = vdb_new_id(db, "drsrec", out_id);
    if (rc >= 0)
        rc = vdb_exec(db, "INSERT INTO drs_recommendation (id, cluster, vm, source, target,"
                      " reason, gain, cost, migration_ms, created, updated) VALUES (?, ?, ?, ?,"
                      " ?, ?, ?, ?, ?, ?, ?)", "ssssssddIss", out_id, cluster, vm, source,
                      target, reason, gain, cost, migration_ms, now, now);
    if (rc >= 0)
        vdb_event_add(db, "DrsRecommendationEvent", "info", vm, NULL,
                      "DRS recommends moving %s from %s to %s (%s, gain %.4f, cost %.4f)", vm,
                      source, target, reason, gain, cost);
    return vdb_finish(db, rc < 0 ? rc : 0);
}

int vdb_drs_rec_set_state(struct vdb *db, const char *id, const char *state,
                          const char *message)
{
    static const char *const states[] = { "pending", "applying", "applied", "failed",
                                          "superseded", NULL };
    char now[32];
    int rc;

    if (!one_of(state, states))
        return -EINVAL;
    vdb_now(now, sizeof(now));
    rc = vdb_exec(db, "UPDATE drs_recommendation SET state = ?, message = ?, updated = ?"
                  " WHERE id = ?", "ssss", state, message ? message : "", now, id);
    return rc < 0 ? rc : rc == 0 ? -ENOENT : 0;
}

int vdb_drs_rec_supersede(struct vdb *db, const char *cluster, const json_t *keep)
{
    char now[32], *k = keep ? json_dumps(keep, JSON_COMPACT) : NULL;
    int rc;

    vdb_now(now, sizeof(now));
    rc = vdb_exec(db, "UPDATE drs_recommendation SET state = 'superseded', updated = ?"
                  " WHERE cluster = ? AND state = 'pending' AND (? IS NULL OR id NOT IN"
                  " (SELECT value FROM json_each(?)))", "ssss", now, cluster, k, k);
    free(k);
    return rc;
}
