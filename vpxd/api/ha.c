/* /api/kvc/cluster/{cluster}/ha and /api/kvc/vm/{vm}/ha: vSphere HA
 * settings (docs/ha.md); and the power routes HA needs to see: admission
 * control before a power-on, protection dropped by a user's power-off. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vpxd/api/api.h"
#include "vpxd/api/internal.h"
#include "vpxd/db_ha.h"
#include "vpxd/ha.h"

static const char *const priorities[] = { "disabled", "lowest", "low", "medium", "high",
                                          "highest", NULL };

static json_t *settings_json(json_t *row)
{
    return json_pack("{s:b, s:b, s:I, s:{s:s, s:I, s:I, s:I, s:O}, s:s, s:s, s:s,"
                     " s:{s:b, s:I, s:I, s:I, s:I}, s:I}",
        "enabled", (int)json_integer_value(json_object_get(row, "ha_enabled")),
        "host_monitoring", (int)json_integer_value(json_object_get(row, "host_monitoring")),
        "failure_detection_time_ms", json_integer_value(json_object_get(row, "detection_ms")),
        "admission_control",
        "policy", json_string_value(json_object_get(row, "admission_policy")),
        "host_failures_tolerated", json_integer_value(json_object_get(row, "host_failures")),
        "cpu_percent", json_integer_value(json_object_get(row, "cpu_percent")),
        "memory_percent", json_integer_value(json_object_get(row, "mem_percent")),
        "failover_hosts", json_object_get(row, "failover_hosts"),
        "restart_priority", json_string_value(json_object_get(row, "restart_priority")),
        "isolation_response", json_string_value(json_object_get(row, "isolation_response")),
        "isolation_address", json_string_value(json_object_get(row, "isolation_address")),
        "vm_monitoring",
        "enabled", (int)json_integer_value(json_object_get(row, "vm_monitoring")),
        "failure_interval_s", json_integer_value(json_object_get(row, "vm_failure_interval_s")),
        "min_uptime_s", json_integer_value(json_object_get(row, "vm_min_uptime_s")),
        "max_resets", json_integer_value(json_object_get(row, "vm_max_resets")),
        "max_resets_window_s",
        json_integer_value(json_object_get(row, "vm_max_resets_window_s")),
        "generation", json_integer_value(json_object_get(row, "generation")));
}

static int settings_row(struct api_req *r, const char *cluster, json_t **row)
{
    int rc = vdb_query_row(api_db(r), row, "SELECT c.ha_enabled, hc.*, hc.failover_hosts"
                           " AS failover_hosts_json FROM cluster c JOIN ha_cluster hc"
                           " ON hc.cluster = c.id WHERE c.id = ?", "s", cluster);

    if (rc == -ENOENT)
        api_error(r, 404, "NOT_FOUND", "cluster %s not found", cluster);
    else if (rc < 0)
        api_error_errno(r, rc, "cluster");
    return rc;
}

void api_ha_cluster_get(struct api_req *r)
{
    const char *cluster = api_param(r, "cluster");
    json_t *row = NULL, *hosts = NULL, *queue = NULL, *out;

    if (settings_row(r, cluster, &row) < 0)
        return;
    out = settings_json(row);
    vdb_query_json(api_db(r), &hosts, "SELECT h.id AS host, coalesce(hh.state, 'unknown')"
                   " AS state, coalesce(hh.since, '') AS since FROM host h LEFT JOIN ha_host hh"
                   " ON hh.host = h.id WHERE h.cluster = ? ORDER BY h.id", "s", cluster);
    vdb_query_json(api_db(r), &queue, "SELECT vm, from_host, state, target, rank, attempts,"
                   " reason FROM ha_restart WHERE cluster = ? ORDER BY rank DESC, created",
                   "s", cluster);
    json_object_set_new(out, "hosts", hosts ? hosts : json_array());
    json_object_set_new(out, "failover", queue ? queue : json_array());
    json_decref(row);
    api_reply(r, 200, out);
}

/* Unknown keys of a nested object: 400 naming them; -1 then. */
static int known_keys(struct api_req *r, json_t *obj, const char *where,
                      const char *const *fields)
{
    const char *key;
    json_t *v;

    if (!obj)
        return 0;
    json_object_foreach(obj, key, v) {
        bool ok = false;
        for (size_t i = 0; fields[i] && !ok; i++)
            ok = !strcmp(fields[i], key);
        if (!ok) {
            api_error_args(r, 400, "INVALID_ARGUMENT", json_pack("[s]", key),
                           "unknown field '%s' in '%s'", key, where);
            return -1;
        }
    }
    return 0;
}

void api_ha_cluster_patch(struct api_req *r)
{
    static const char *const fields[] = { "enabled", "host_monitoring",
        "failure_detection_time_ms", "admission_control", "restart_priority",
        "isolation_response", "isolation_address", "vm_monitoring", NULL };
    static const char *const ac_fields[] = { "policy", "host_failures_tolerated", "cpu_percent",
                                             "memory_percent", "failover_hosts", NULL };
    static const char *const vm_fields[] = { "enabled", "failure_interval_s", "min_uptime_s",
                                             "max_resets", "max_resets_window_s", NULL };
    static const char *const policies[] = { "disabled", "host_failures", "percentage",
                                            "failover_hosts", NULL };
    static const char *const responses[] = { "none", "power_off", "shutdown", NULL };
    const char *cluster = api_param(r, "cluster");
    json_t *b = api_body(r), *row = NULL, *ac = NULL, *vmm = NULL, *fh;
    struct vdb_ha_settings s;
    const char *prio = NULL, *resp = NULL, *addr = NULL, *policy = NULL;
    char *fh_text = NULL;
    int rc;

    if (api_body_object(r, fields) < 0 || api_field_obj(r, b, "admission_control", &ac) < 0 ||
        api_field_obj(r, b, "vm_monitoring", &vmm) < 0 ||
        known_keys(r, ac, "admission_control", ac_fields) < 0 ||
        known_keys(r, vmm, "vm_monitoring", vm_fields) < 0)
        return;
    if (settings_row(r, cluster, &row) < 0)
        return;
#define I(K) json_integer_value(json_object_get(row, K))
#define S(K) json_string_value(json_object_get(row, K))
    s = (struct vdb_ha_settings){
        .enabled = I("ha_enabled"), .host_monitoring = I("host_monitoring"),
        .detection_ms = I("detection_ms"), .admission_policy = S("admission_policy"),
        .host_failures = I("host_failures"), .cpu_percent = I("cpu_percent"),
        .mem_percent = I("mem_percent"), .restart_priority = S("restart_priority"),
        .isolation_response = S("isolation_response"),
        .isolation_address = S("isolation_address"), .vm_monitoring = I("vm_monitoring"),
        .vm_failure_interval_s = I("vm_failure_interval_s"),
        .vm_min_uptime_s = I("vm_min_uptime_s"), .vm_max_resets = I("vm_max_resets"),
        .vm_max_resets_window_s = I("vm_max_resets_window_s"),
    };
#undef I
#undef S
    fh = json_object_get(row, "failover_hosts");
    if (api_field_bool(r, b, "enabled", false, &s.enabled) < 0 ||
        api_field_bool(r, b, "host_monitoring", false, &s.host_monitoring) < 0 ||
        api_field_int(r, b, "failure_detection_time_ms", false, 100, 600000,
                      &s.detection_ms) < 0 ||
        api_field_enum(r, b, "restart_priority", false, priorities, &prio) < 0 ||
        api_field_enum(r, b, "isolation_response", false, responses, &resp) < 0 ||
        api_field_str(r, b, "isolation_address", false, &addr) < 0 ||
        api_field_enum(r, ac, "policy", false, policies, &policy) < 0 ||
        api_field_int(r, ac, "host_failures_tolerated", false, 1, 63, &s.host_failures) < 0 ||
        api_field_int(r, ac, "cpu_percent", false, 0, 100, &s.cpu_percent) < 0 ||
        api_field_int(r, ac, "memory_percent", false, 0, 100, &s.mem_percent) < 0 ||
        api_field_bool(r, vmm, "enabled", false, &s.vm_monitoring) < 0 ||
        api_field_int(r, vmm, "failure_interval_s", false, 1, 86400,
                      &s.vm_failure_interval_s) < 0 ||
        api_field_int(r, vmm, "min_uptime_s", false, 0, 86400, &s.vm_min_uptime_s) < 0 ||
        api_field_int(r, vmm, "max_resets", false, 0, 1000, &s.vm_max_resets) < 0 ||
        api_field_int(r, vmm, "max_resets_window_s", false, 1, 604800,
                      &s.vm_max_resets_window_s) < 0)
        goto out;
    /* Absent fields keep their value. */
    s.restart_priority = prio ? prio : s.restart_priority;
    s.isolation_response = resp ? resp : s.isolation_response;
    s.isolation_address = addr ? addr : s.isolation_address;
    s.admission_policy = policy ? policy : s.admission_policy;
    if (!s.restart_priority || !s.isolation_response || !s.isolation_address ||
        !s.admission_policy) {
        api_error(r, 500, "ERROR", "cannot read the current HA settings");
        goto out;
    }
    if (strlen(s.isolation_address) > 127) {
        api_error(r, 400, "INVALID_ARGUMENT", "field 'isolation_address' is too long");
        goto out;
    }
    if (s.isolation_address[0]) {
        unsigned a, b2, c, d, port;
        char extra;
        if (sscanf(s.isolation_address, "%u.%u.%u.%u:%u%c", &a, &b2, &c, &d, &port, &extra) != 5
            || a > 255 || b2 > 255 || c > 255 || d > 255 || !port || port > 65535) {
            api_error(r, 400, "INVALID_ARGUMENT", "field 'isolation_address' must be"
                      " \"IPv4:PORT\" (hosts connect to it to tell isolation), got '%s'",
                      s.isolation_address);
            goto out;
        }
    }
    if (ac && json_object_get(ac, "failover_hosts")) {
        json_t *list = json_object_get(ac, "failover_hosts"), *x;
        size_t i;
        if (!json_is_array(list)) {
            api_error(r, 400, "INVALID_ARGUMENT", "field 'failover_hosts' must be a list of"
                      " host ids");
            goto out;
        }
        json_array_foreach(list, i, x) {
            int64_t n = 0;
            if (!json_is_string(x) || vdb_query_int(api_db(r), &n, "SELECT count(*) FROM host"
                                                    " WHERE id = ? AND cluster = ?", "ss",
                                                    json_string_value(x), cluster) < 0 || !n) {
                api_error(r, 400, "INVALID_ARGUMENT", "failover host %s is not a host of"
                          " cluster %s", json_is_string(x) ? json_string_value(x) : "?",
                          cluster);
                goto out;
            }
        }
        fh = list;
    }
    fh_text = json_dumps(fh ? fh : json_array(), JSON_COMPACT);
    s.failover_hosts_json = fh_text ? fh_text : "[]";
    api_set_object(r, cluster);
    rc = vdb_ha_cluster_set(api_db(r), cluster, &s);
    if (rc < 0) {
        api_error_errno(r, rc, "HA settings");
        goto out;
    }
    ha_settings_changed(api_vpxd(r), cluster);
    api_reply(r, 204, NULL);
out:
    free(fh_text);
    json_decref(row);
}

void api_ha_vm_get(struct api_req *r)
{
    json_t *row = NULL;
    int rc = vdb_query_row(api_db(r), &row,
        "SELECT v.id AS vm, hv.restart_priority AS override,"
        " coalesce(hv.restart_priority, hc.restart_priority, 'medium') AS restart_priority,"
        " json(CASE coalesce(hv.protected, 0) WHEN 1 THEN 'true' ELSE 'false' END)"
        " AS protected_json, (SELECT state FROM ha_restart WHERE vm = v.id) AS failover"
        " FROM vm v LEFT JOIN ha_vm hv ON hv.vm = v.id LEFT JOIN host h ON h.id = v.host"
        " LEFT JOIN ha_cluster hc ON hc.cluster = h.cluster WHERE v.id = ?", "s",
        api_param(r, "vm"));

    if (rc == -ENOENT)
        return api_error(r, 404, "NOT_FOUND", "virtual machine %s not found", api_param(r, "vm"));
    if (rc < 0)
        return api_error_errno(r, rc, "virtual machine");
    api_reply(r, 200, row);
}

void api_ha_vm_patch(struct api_req *r)
{
    static const char *const fields[] = { "restart_priority", NULL };
    json_t *v;
    const char *p = NULL;
    int rc;

    if (api_body_object(r, fields) < 0)
        return;
    v = json_object_get(api_body(r), "restart_priority");
    if (!v)
        return api_error(r, 400, "INVALID_ARGUMENT", "field 'restart_priority' is required"
                         " (a priority, or null for the cluster's)");
    if (!json_is_null(v) && api_field_enum(r, api_body(r), "restart_priority", true,
                                           priorities, &p) < 0)
        return;
    api_set_object(r, api_param(r, "vm"));
    rc = vdb_ha_vm_set_priority(api_db(r), api_param(r, "vm"), p);
    if (rc == -ENOENT)
        return api_error(r, 404, "NOT_FOUND", "virtual machine %s not found", api_param(r, "vm"));
    if (rc < 0)
        return api_error_errno(r, rc, "virtual machine");
    api_reply(r, 204, NULL);
}

/* Admission control, then the ordinary power-on. */
void api_ha_vm_power_start(struct api_req *r)
{
    char why[512] = "";

    if (vdb_entity_exists(api_db(r), api_param(r, "vm"), "vm") &&
        ha_admission_check(api_vpxd(r), api_param(r, "vm"), why, sizeof(why)) == -ENOSPC)
        return api_error(r, 500, "UNABLE_TO_ALLOCATE_RESOURCE",
                         "insufficient resources to satisfy the vSphere HA failover level: %s",
                         why);
    if (vdb_entity_exists(api_db(r), api_param(r, "vm"), "vm"))
        ha_vm_user_power(api_vpxd(r), api_param(r, "vm"), true);
    api_vm_power_start(r);
}

/* A VM the user stops is not restarted by HA. */
static void unprotect(struct api_req *r)
{
    if (vdb_entity_exists(api_db(r), api_param(r, "vm"), "vm"))
        ha_vm_user_power(api_vpxd(r), api_param(r, "vm"), false);
}

void api_ha_vm_power_stop(struct api_req *r)
{
    unprotect(r);
    api_vm_power_stop(r);
}

void api_ha_vm_power_suspend(struct api_req *r)
{
    unprotect(r);
    api_vm_power_suspend(r);
}

void api_ha_vm_guest_shutdown(struct api_req *r)
{
    unprotect(r);
    api_vm_guest_shutdown(r);
}
