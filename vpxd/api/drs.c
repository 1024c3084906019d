/* /api/kvc/cluster/{cluster}/drs: DRS settings, passes, recommendations
 * and the cluster's rules (docs/drs.md). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vpxd/api/api.h"
#include "vpxd/api/internal.h"
#include "vpxd/drs.h"

static const char *const levels[] = { "manual", "partiallyAutomated", "fullyAutomated", NULL };
static const char *const kinds[] = { "VM_AFFINITY", "VM_ANTI_AFFINITY", "VM_HOST_MUST",
    "VM_HOST_SHOULD", "VM_HOST_MUST_NOT", "VM_HOST_SHOULD_NOT", NULL };

static int need_cluster(struct api_req *r)
{
    if (!vdb_entity_exists(api_db(r), api_param(r, "cluster"), "cluster")) {
        api_error(r, 404, "NOT_FOUND", "cluster %s not found", api_param(r, "cluster"));
        return -1;
    }
    return 0;
}

void api_drs_get(struct api_req *r)
{
    json_t *out = NULL;
    int rc;

    if (need_cluster(r) < 0)
        return;
    if ((rc = drs_cluster_status(api_vpxd(r), api_param(r, "cluster"), &out)) < 0)
        return api_error_errno(r, rc, "cluster");
    api_reply(r, 200, out);
}

void api_drs_patch(struct api_req *r)
{
    static const char *const fields[] = { "enabled", "automation_level", "migration_threshold",
                                          "pass_interval_s", NULL };
    json_t *b = api_body(r), *cur = NULL;
    const char *cl = api_param(r, "cluster"), *level = NULL;
    int64_t thr, iv;
    bool en;
    int rc;

    if (need_cluster(r) < 0 || api_body_object(r, fields) < 0)
        return;
    if ((rc = drs_cluster_status(api_vpxd(r), cl, &cur)) < 0)
        return api_error_errno(r, rc, "cluster");
    en = json_is_true(json_object_get(cur, "enabled"));
    thr = json_integer_value(json_object_get(cur, "migration_threshold"));
    iv = json_integer_value(json_object_get(cur, "pass_interval_s"));
    if (api_field_bool(r, b, "enabled", false, &en) < 0
        || api_field_enum(r, b, "automation_level", false, levels, &level) < 0
        || api_field_int(r, b, "migration_threshold", false, 1, 5, &thr) < 0
        || api_field_int(r, b, "pass_interval_s", false, 1, 86400, &iv) < 0)
        goto out;
    if (!level)
        level = json_string_value(json_object_get(cur, "automation_level"));
    rc = vdb_drs_config_set(api_db(r), cl, en, level, (int)thr, (int)iv);
    if (rc < 0) {
        api_error_errno(r, rc, "DRS settings");
        goto out;
    }
    drs_kick(api_vpxd(r), cl);
    api_reply(r, 204, NULL);
out:
    json_decref(cur);
}

void api_drs_run(struct api_req *r)
{
    json_t *ids = NULL;
    int rc;

    if (need_cluster(r) < 0)
        return;
    if ((rc = drs_run_pass(api_vpxd(r), api_param(r, "cluster"), &ids)) < 0)
        return api_error_errno(r, rc, "DRS pass");
    api_reply(r, 200, json_pack("{s:o}", "recommendations", ids));
}

void api_drs_recs_list(struct api_req *r)
{
    static const char *const states[] = { "pending", "applying", "applied", "failed",
                                          "superseded", NULL };
    const char *st = api_query(r, "state");
    json_t *rows = NULL;
    int rc;

    if (need_cluster(r) < 0)
        return;
    if (st) {
        bool ok = false;
        for (int i = 0; states[i]; i++)
            ok |= !strcmp(states[i], st);
        if (!ok)
            return api_error(r, 400, "INVALID_ARGUMENT", "state must be one of pending,"
                             " applying, applied, failed, superseded");
    }
    rc = vdb_query_json(api_db(r), &rows, "SELECT id, vm, source, target, reason, gain, cost,"
                        " migration_ms, state, message, created, updated FROM"
                        " drs_recommendation WHERE cluster = ?1 AND (?2 IS NULL OR state = ?2)"
                        " ORDER BY rowid DESC LIMIT 1000", "ss", api_param(r, "cluster"), st);
    if (rc < 0)
        return api_error_errno(r, rc, "recommendations");
    api_reply(r, 200, rows);
}

void api_drs_recs_apply(struct api_req *r)
{
    static const char *const fields[] = { "recommendations", NULL };
    json_t *b = api_body(r), *ids = NULL, *out = NULL, *v;
    char why[256] = "";
    size_t i;
    int rc;

    if (need_cluster(r) < 0)
        return;
    if (b && !json_is_null(b)) {
        if (api_body_object(r, fields) < 0)
            return;
        ids = json_object_get(b, "recommendations");
        if (ids && !json_is_array(ids))
            return api_error(r, 400, "INVALID_ARGUMENT",
                             "field 'recommendations' must be an array of ids");
        json_array_foreach(ids, i, v)
            if (!json_is_string(v))
                return api_error(r, 400, "INVALID_ARGUMENT",
                                 "recommendations[%zu] must be a string", i);
    }
    rc = drs_apply(api_vpxd(r), api_param(r, "cluster"), ids, api_user(r), &out, why,
                   sizeof(why));
    if (rc == -EINVAL)
        return api_error(r, 400, "INVALID_ARGUMENT", "%s", why);
    if (rc < 0)
        return api_error_errno(r, rc, "recommendations");
    api_reply(r, 200, out);
}

void api_drs_rules_list(struct api_req *r)
{
    json_t *rows = NULL;
    int rc;

    if (need_cluster(r) < 0)
        return;
    rc = vdb_query_json(api_db(r), &rows, "SELECT id AS rule, name, kind,"
                        " json(CASE enabled WHEN 1 THEN 'true' ELSE 'false' END) AS"
                        " enabled_json, vms AS vms_json, hosts AS hosts_json, created FROM"
                        " drs_rule WHERE cluster = ? ORDER BY rowid", "s",
                        api_param(r, "cluster"));
    if (rc < 0)
        return api_error_errno(r, rc, "rules");
    api_reply(r, 200, rows);
}

/* Every id of ARR must be a TYPE in the cluster. */
static int check_members(struct api_req *r, json_t *arr, const char *key, const char *type)
{
    const char *cl = api_param(r, "cluster");
    size_t i;
    json_t *v;

    if (!json_is_array(arr) || json_array_size(arr) > 1000) {
        api_error(r, 400, "INVALID_ARGUMENT", "field '%s' must be an array of at most 1000 ids",
                  key);
        return -1;
    }
    json_array_foreach(arr, i, v) {
        int64_t n = 0;
        if (!json_is_string(v)) {
            api_error(r, 400, "INVALID_ARGUMENT", "%s[%zu] must be a string", key, i);
            return -1;
        }
        if (!strcmp(type, "host"))
            vdb_query_int(api_db(r), &n, "SELECT count(*) FROM host WHERE id = ? AND cluster = ?",
                          "ss", json_string_value(v), cl);
        else
            vdb_query_int(api_db(r), &n, "SELECT count(*) FROM vm WHERE id = ?", "s",
                          json_string_value(v));
        if (!n) {
            api_error_args(r, 400, "INVALID_ARGUMENT", json_pack("[s]", json_string_value(v)),
                           "%s[%zu]: %s is not a %s%s", key, i, json_string_value(v), type,
                           strcmp(type, "host") ? "" : " of the cluster");
            return -1;
        }
    }
    return 0;
}

void api_drs_rule_create(struct api_req *r)
{
    static const char *const fields[] = { "name", "kind", "enabled", "vms", "hosts", NULL };
    json_t *b = api_body(r), *vms, *hosts;
    const char *name, *kind;
    bool en = true, vmhost;
    char id[VDB_ID_MAX];
    int rc;

    if (need_cluster(r) < 0 || api_body_object(r, fields) < 0
        || api_field_str(r, b, "name", true, &name) < 0
        || api_field_enum(r, b, "kind", true, kinds, &kind) < 0
        || api_field_bool(r, b, "enabled", false, &en) < 0)
        return;
    vms = json_object_get(b, "vms");
    hosts = json_object_get(b, "hosts");
    vmhost = !strncmp(kind, "VM_HOST_", 8);
    if (!*name || strlen(name) > 80)
        return api_error(r, 400, "INVALID_ARGUMENT", "field 'name' must be 1 to 80 characters");
    if (check_members(r, vms, "vms", "vm") < 0)
        return;
    if (json_array_size(vms) < (vmhost ? 1u : 2u))
        return api_error(r, 400, "INVALID_ARGUMENT", "a %s rule needs at least %d VMs", kind,
                         vmhost ? 1 : 2);
    if (vmhost) {
        if (check_members(r, hosts, "hosts", "host") < 0)
            return;
        if (!json_array_size(hosts))
            return api_error(r, 400, "INVALID_ARGUMENT", "a %s rule needs at least one host",
                             kind);
    } else if (hosts && json_array_size(hosts)) {
        return api_error(r, 400, "INVALID_ARGUMENT", "a %s rule takes no hosts", kind);
    }
    rc = vdb_drs_rule_create(api_db(r), api_param(r, "cluster"), name, kind, en, vms,
                             vmhost ? hosts : NULL, id);
    if (rc == -EEXIST)
        return api_error(r, 400, "ALREADY_EXISTS", "cluster %s already has a rule named '%s'",
                         api_param(r, "cluster"), name);
    if (rc < 0)
        return api_error_errno(r, rc, "rule");
    drs_kick(api_vpxd(r), api_param(r, "cluster"));
    api_reply(r, 201, json_string(id));
}

void api_drs_rule_delete(struct api_req *r)
{
    int rc;

    if (need_cluster(r) < 0)
        return;
    rc = vdb_drs_rule_delete(api_db(r), api_param(r, "cluster"), api_param(r, "rule"));
    if (rc == -ENOENT)
        return api_error(r, 404, "NOT_FOUND", "rule %s not found in cluster %s",
                         api_param(r, "rule"), api_param(r, "cluster"));
    if (rc < 0)
        return api_error_errno(r, rc, "rule");
    api_reply(r, 204, NULL);
}
