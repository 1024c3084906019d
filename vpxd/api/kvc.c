/* kvcenter's own resources: events (and their stream), alarms, users,
 * roles, permissions and the audit log. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "vpxd/api/api.h"
#include "vpxd/api/internal.h"
#include "vpxd/auth.h"

static int query_int(struct api_req *r, const char *name, int64_t def, int64_t min,
                     int64_t max, int64_t *out)
{
    const char *v = api_query(r, name);
    char *end;

    *out = def;
    if (!v)
        return 0;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (!*v || *end || errno || n < min || n > max) {
        api_error(r, 400, "INVALID_ARGUMENT", "%s must be an integer from %lld to %lld",
                  name, (long long)min, (long long)max);
        return -1;
    }
    *out = n;
    return 0;
}

void api_events_list(struct api_req *r)
{
    int64_t since, limit;
    json_t *rows = NULL;
    int rc;

    if (query_int(r, "since", 0, 0, INT64_MAX, &since) < 0
        || query_int(r, "limit", 1000, 1, 10000, &limit) < 0)
        return;
    rc = vdb_query_json(api_db(r), &rows, "SELECT seq, time, type, severity, object,"
                        " user_name AS user, message FROM event WHERE seq > ?1"
                        " AND (?3 IS NULL OR object = ?3) AND (?4 IS NULL OR type = ?4)"
                        " ORDER BY seq LIMIT ?2", "IIss", since, limit, api_query(r, "object"),
                        api_query(r, "type"));
    if (rc < 0)
        return api_error_errno(r, rc, "events");
    api_reply(r, 200, rows);
}

void api_events_stream(struct api_req *r)
{
    int64_t since;
    const char *last = NULL;

    if (query_int(r, "since", -1, -1, INT64_MAX, &since) < 0)
        return;
    if (since < 0) {
        /* A reconnecting EventSource says where it stopped; a new one
         * starts from now. */
        last = api_header_in(r, "Last-Event-ID");
        if (last)
            since = strtoll(last, NULL, 10);
        else if (vdb_query_int(api_db(r), &since, "SELECT coalesce(max(seq), 0) FROM event",
                               NULL) < 0)
            since = 0;
    }
    api_stream_events(r, since);
}

void api_alarms_list(struct api_req *r)
{
    json_t *defs = NULL, *states = NULL;

    if (vdb_query_json(api_db(r), &defs, "SELECT id AS alarm, name, description, object_type,"
                       " event_type, metric, threshold, severity,"
                       " json(CASE enabled WHEN 1 THEN 'true' ELSE 'false' END) AS enabled_json"
                       " FROM alarm ORDER BY id", NULL) < 0
        || vdb_query_json(api_db(r), &states, "SELECT s.alarm, a.name, s.object, s.status,"
                          " s.time, s.message, json(CASE s.acknowledged WHEN 1 THEN 'true'"
                          " ELSE 'false' END) AS acknowledged_json FROM alarm_state s"
                          " JOIN alarm a ON a.id = s.alarm ORDER BY s.time", NULL) < 0) {
        json_decref(defs);
        return api_error(r, 500, "ERROR", "cannot read alarms");
    }
    api_reply(r, 200, json_pack("{s:o, s:o}", "definitions", defs,
                                "triggered", api_filter_visible(r, states, "object")));
}

void api_alarm_ack(struct api_req *r)
{
    static const char *const fields[] = { "object", NULL };
    const char *obj;
    int rc;

    if (api_body_object(r, fields) < 0 || api_field_str(r, api_body(r), "object", true, &obj) < 0)
        return;
    if (api_require(r, "Alarm.Acknowledge", obj) < 0)
        return;
    rc = vdb_alarm_ack(api_db(r), api_param(r, "alarm"), obj);
    if (rc == -ENOENT)
        return api_error(r, 404, "NOT_FOUND", "alarm %s is not triggered on %s",
                         api_param(r, "alarm"), obj);
    if (rc < 0)
        return api_error_errno(r, rc, "alarm");
    api_set_object(r, obj);
    api_reply(r, 204, NULL);
}

void api_users_list(struct api_req *r)
{
    json_t *rows = NULL;
    int rc = vdb_query_json(api_db(r), &rows, "SELECT name, json(CASE builtin WHEN 1 THEN"
                            " 'true' ELSE 'false' END) AS builtin_json, created FROM users"
                            " ORDER BY name", NULL);

    if (rc < 0)
        return api_error_errno(r, rc, "users");
    api_reply(r, 200, rows);
}

static int check_password(struct api_req *r, const char *pw)
{
    size_t n = strlen(pw);

    if (n < 8 || n > 256) {
        api_error(r, 400, "INVALID_ARGUMENT", "the password must be 8 to 256 characters");
        return -1;
    }
    return 0;
}

static bool valid_name(const char *s)
{
    size_t n = strlen(s);

    if (!n || n > 64)
        return false;
    for (; *s; s++)
        if (!(*s == '.' || *s == '-' || *s == '_' || *s == '@' || (*s >= '0' && *s <= '9')
              || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
            return false;
    return true;
}

void api_user_create(struct api_req *r)
{
    static const char *const fields[] = { "name", "password", NULL };
    const char *name, *pw;
    char hash[256];
    int rc;

    if (api_body_object(r, fields) < 0 || api_field_str(r, api_body(r), "name", true, &name) < 0
        || api_field_str(r, api_body(r), "password", true, &pw) < 0)
        return;
    if (!valid_name(name))
        return api_error(r, 400, "INVALID_ARGUMENT",
                         "a user name is 1 to 64 of: letters, digits, . - _ @");
    if (check_password(r, pw) < 0)
        return;
    if (auth_hash_password(pw, hash, sizeof(hash)) < 0)
        return api_error(r, 500, "ERROR", "cannot hash the password");
    rc = vdb_user_create(api_db(r), name, hash, false);
    if (rc == -EEXIST)
        return api_error(r, 400, "ALREADY_EXISTS", "user %s already exists", name);
    if (rc < 0)
        return api_error_errno(r, rc, "user");
    api_set_object(r, name);
    api_reply(r, 201, json_string(name));
}

void api_user_patch(struct api_req *r)
{
    static const char *const fields[] = { "password", NULL };
    const char *user = api_param(r, "user"), *pw;
    char hash[256];
    int rc;

    api_set_object(r, user);
    if (strcmp(user, api_user(r))
        && api_require(r, "Authorization.ModifyPermissions", NULL) < 0)
        return;
    if (api_body_object(r, fields) < 0 || api_field_str(r, api_body(r), "password", true, &pw) < 0
        || check_password(r, pw) < 0)
        return;
    if (auth_hash_password(pw, hash, sizeof(hash)) < 0)
        return api_error(r, 500, "ERROR", "cannot hash the password");
    rc = vdb_user_set_hash(api_db(r), user, hash);
    if (rc == -ENOENT)
        return api_error(r, 404, "NOT_FOUND", "user %s not found", user);
    if (rc < 0)
        return api_error_errno(r, rc, "user");
    api_reply(r, 204, NULL);
}

void api_user_delete(struct api_req *r)
{
    const char *user = api_param(r, "user");
    int rc = vdb_user_delete(api_db(r), user);

    if (rc == -ENOENT)
        return api_error(r, 404, "NOT_FOUND", "user %s not found", user);
    if (rc == -EPERM)
        return api_error(r, 400, "NOT_ALLOWED_IN_CURRENT_STATE",
                         "user %s is built in and cannot be deleted", user);
    if (rc < 0)
        return api_error_errno(r, rc, "user");
    api_reply(r, 204, NULL);
}

void api_roles_list(struct api_req *r)
{
    json_t *rows = NULL;
    int rc = vdb_query_json(api_db(r), &rows,
        "SELECT r.id AS role, r.name, json(CASE r.builtin WHEN 1 THEN 'true' ELSE 'false' END)"
        " AS builtin_json, (SELECT json_group_array(privilege) FROM (SELECT privilege FROM"
        " role_privilege p WHERE p.role = r.id ORDER BY privilege)) AS privileges_json"
        " FROM role r ORDER BY r.id", NULL);

    if (rc < 0)
        return api_error_errno(r, rc, "roles");
    api_reply(r, 200, rows);
}

void api_role_create(struct api_req *r)
{
    static const char *const fields[] = { "name", "privileges", NULL };
    json_t *privs;
    const char *name;
    const char **list = NULL;
    int64_t id;
    size_t i;
    json_t *p;
    int rc;

    if (api_body_object(r, fields) < 0 || api_field_str(r, api_body(r), "name", true, &name) < 0)
        return;
    if (!valid_name(name))
        return api_error(r, 400, "INVALID_ARGUMENT",
                         "a role name is 1 to 64 of: letters, digits, . - _ @");
    privs = json_object_get(api_body(r), "privileges");
    if (!json_is_array(privs) || json_array_size(privs) > 512)
        return api_error(r, 400, "INVALID_ARGUMENT",
                         "field 'privileges' must be an array of at most 512 privilege ids");
    list = calloc(json_array_size(privs) + 1, sizeof(*list));
    json_array_foreach(privs, i, p) {
        const char *s = json_string_value(p);
        if (!s || !*s || strlen(s) > 128 || !strchr(s, '.')) {
            free(list);
            return api_error(r, 400, "INVALID_ARGUMENT",
                             "privileges[%zu] must be a privilege id like"
                             " \"VirtualMachine.Interact.PowerOn\"", i);
        }
        list[i] = s;
    }
    rc = vdb_role_create(api_db(r), name, list, &id);
    free(list);
    if (rc == -EEXIST)
        return api_error(r, 400, "ALREADY_EXISTS", "role %s already exists", name);
    if (rc < 0)
        return api_error_errno(r, rc, "role");
    api_reply(r, 201, json_integer(id));
}

void api_role_delete(struct api_req *r)
{
    const char *s = api_param(r, "role");
    char *end;
    long long id = strtoll(s, &end, 10);
    int rc;

    if (*end || !*s)
        return api_error(r, 404, "NOT_FOUND", "role %s not found", s);
    rc = vdb_role_delete(api_db(r), id);
    if (rc == -ENOENT)
        return api_error(r, 404, "NOT_FOUND", "role %s not found", s);
    if (rc == -EPERM)
        return api_error(r, 400, "NOT_ALLOWED_IN_CURRENT_STATE", "role %s is built in", s);
    if (rc == -ENOTEMPTY)
        return api_error(r, 400, "RESOURCE_IN_USE", "role %s is used by permissions", s);
    if (rc < 0)
        return api_error_errno(r, rc, "role");
    api_reply(r, 204, NULL);
}

void api_permissions_list(struct api_req *r)
{
    json_t *rows = NULL;
    int rc = vdb_query_json(api_db(r), &rows,
        "SELECT p.entity, p.principal, p.role, r.name AS role_name,"
        " json(CASE p.propagate WHEN 1 THEN 'true' ELSE 'false' END) AS propagate_json"
        " FROM permission p JOIN role r ON r.id = p.role"
        " WHERE (?1 IS NULL OR p.entity = ?1) AND (?2 IS NULL OR p.principal = ?2)"
        " ORDER BY p.entity, p.principal", "ss", api_query(r, "entity"),
        api_query(r, "principal"));

    if (rc < 0)
        return api_error_errno(r, rc, "permissions");
    api_reply(r, 200, api_filter_visible(r, rows, "entity"));
}

void api_permission_set(struct api_req *r)
{
    static const char *const fields[] = { "entity", "principal", "role", "propagate", NULL };
    json_t *b = api_body(r);
    const char *entity, *principal;
    int64_t role, n = 0;
    bool propagate = true;
    int rc;

    if (api_body_object(r, fields) < 0 || api_field_str(r, b, "entity", true, &entity) < 0
        || api_field_str(r, b, "principal", true, &principal) < 0
        || api_field_int(r, b, "role", true, INT32_MIN, INT32_MAX, &role) < 0
        || api_field_bool(r, b, "propagate", false, &propagate) < 0)
        return;
    api_set_object(r, entity);
    if (!vdb_entity_exists(api_db(r), entity, NULL))
        return api_error(r, 404, "NOT_FOUND", "object %s not found", entity);
    if (api_require(r, "Authorization.ModifyPermissions", entity) < 0)
        return;
    vdb_query_int(api_db(r), &n, "SELECT count(*) FROM role WHERE id = ?", "I", role);
    if (!n)
        return api_error(r, 404, "NOT_FOUND", "role %lld not found", (long long)role);
    vdb_query_int(api_db(r), &n, "SELECT count(*) FROM users WHERE name = ?", "s", principal);
    if (!n)
        return api_error(r, 404, "NOT_FOUND", "user %s not found", principal);
    rc = vdb_permission_set(api_db(r), entity, principal, role, propagate);
    if (rc < 0)
        return api_error_errno(r, rc, "permission");
    api_reply(r, 204, NULL);
}

void api_permission_delete(struct api_req *r)
{
    const char *entity = api_param(r, "entity"), *principal = api_param(r, "principal");
    int rc;

    api_set_object(r, entity);
    if (api_require(r, "Authorization.ModifyPermissions", entity) < 0)
        return;
    rc = vdb_permission_delete(api_db(r), entity, principal);
    if (rc == -ENOENT)
        return api_error(r, 404, "NOT_FOUND", "no permission for %s on %s", principal, entity);
    if (rc < 0)
        return api_error_errno(r, rc, "permission");
    api_reply(r, 204, NULL);
}

void api_audit_list(struct api_req *r)
{
    int64_t since, limit;
    json_t *rows = NULL;
    int rc;

    if (query_int(r, "since", 0, 0, INT64_MAX, &since) < 0
        || query_int(r, "limit", 1000, 1, 10000, &limit) < 0)
        return;
    rc = vdb_query_json(api_db(r), &rows, "SELECT seq, time, user_name AS user, remote, action,"
                        " object, result, status FROM audit_log WHERE seq > ? ORDER BY seq"
                        " LIMIT ?", "II", since, limit);
    if (rc < 0)
        return api_error_errno(r, rc, "audit log");
    api_reply(r, 200, rows);
}
