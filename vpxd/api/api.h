/* vpxd's REST layer: one route table (api/routes.c) that the server
 * dispatches with and that /api/openapi.json is generated from, and the
 * helpers every resource file (api/<resource>.c) uses.
 *
 * A handler runs on the loop thread with the request authenticated, the
 * route's privilege checked on the object named in the path, and the body
 * (if any) parsed as JSON.  It answers with exactly one api_reply*() or
 * api_error*() call, now or later: a handler that waits for a host calls
 * api_hold() and answers from the completion callback.  Mutating requests
 * answered before the handler returns run in one database transaction
 * together with their audit record.
 */
#ifndef VPXD_API_H
#define VPXD_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "vpxd/db.h"
#include "vpxd/vpxd.h"

struct api_req;

typedef void (*api_handler_fn)(struct api_req *);

enum api_auth {
    API_AUTH_SESSION = 0,       /* a session token (header or cookie) */
    API_AUTH_NONE,              /* anyone */
    API_AUTH_BASIC,             /* HTTP Basic (session creation) */
};

struct api_route {
    const char *method;         /* "GET", "POST", "PATCH", "DELETE" */
    const char *path;           /* "/api/vcenter/vm/{vm}/power" */
    const char *action;         /* value of ?action=, or NULL */
    api_handler_fn handler;
    enum api_auth auth;
    /* Privilege needed on the object named by the path's last {param}
     * (or on the root folder when the path names none).  NULL: checked by
     * the handler itself (creates check the parent they are given). */
    const char *privilege;
    bool task;                  /* accepts vmw-task=true */
    int status;                 /* success status, for the OpenAPI document */
    const char *summary;
    const char *body_schema;    /* "#/components/schemas/X" or NULL */
    const char *query;          /* comma-separated query parameters */
};

extern const struct api_route api_routes[];
extern const size_t api_n_routes;

/* ---- request ---- */
struct vpxd *api_vpxd(const struct api_req *);
struct vdb *api_db(const struct api_req *);
const char *api_user(const struct api_req *);
const char *api_method(const struct api_req *);
const char *api_url(const struct api_req *);     /* the path, without the query */
/* Path parameter by name ("vm"), NULL if absent. */
const char *api_param(const struct api_req *, const char *name);
/* Query argument (first value), NULL if absent. */
const char *api_query(const struct api_req *, const char *name);
/* All values of a repeatable query argument ("names=a&names=b", also
 * "names=a,b"), as a JSON array of strings (owned by the request). */
json_t *api_query_list(struct api_req *, const char *name);
/* The parsed body; the handler may call api_body_object() to require an
 * object and reject unknown fields (FIELDS: NULL-terminated). */
json_t *api_body(const struct api_req *);
int api_body_object(struct api_req *, const char *const *fields);
bool api_is_rest(const struct api_req *);      /* /rest: wrap in {"value":} */
const char *api_remote(const struct api_req *);
const char *api_session_token_hash(const struct api_req *);

/* ---- typed field access: on a bad value these answer 400
 * INVALID_ARGUMENT naming the field, and return -1 ---- */
int api_field_str(struct api_req *, json_t *obj, const char *key, bool required,
                  const char **out);
int api_field_int(struct api_req *, json_t *obj, const char *key, bool required,
                  int64_t min, int64_t max, int64_t *out);
int api_field_bool(struct api_req *, json_t *obj, const char *key, bool required,
                   bool *out);
/* Object or absent (NULL). */
int api_field_obj(struct api_req *, json_t *obj, const char *key, json_t **out);
/* One of WORDS (NULL-terminated). */
int api_field_enum(struct api_req *, json_t *obj, const char *key, bool required,
                   const char *const *words, const char **out);

/* ---- privileges ---- */
/* True if the user holds PRIV on ENTITY (or its ancestors, propagating). */
bool api_can(struct api_req *, const char *priv, const char *entity);
/* Same, answering 403 UNAUTHORIZED when not. Returns 0 or -1. */
int api_require(struct api_req *, const char *priv, const char *entity);

/* ---- answers ---- */
/* Steals BODY (NULL: no body).  /rest requests get {"value": BODY}. */
void api_reply(struct api_req *, int status, json_t *body);
void api_reply_raw(struct api_req *, int status, const char *content_type,
                   char *body /* malloc'd, stolen */, size_t len);
void api_error(struct api_req *, int status, const char *type,
               const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* With ARGS (stolen JSON array of strings) for the message. */
void api_error_args(struct api_req *, int status, const char *type, json_t *args,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Maps a -errno from the db module: ENOENT 404, EEXIST 400 ALREADY_EXISTS,
 * ENOTEMPTY 400 RESOURCE_IN_USE, EINVAL 400, EPERM 400 NOT_ALLOWED_IN_CURRENT_STATE,
 * EBUSY 503, others 500. */
void api_error_errno(struct api_req *, int err, const char *what);
/* Extra response header (e.g. Set-Cookie). */
void api_header(struct api_req *, const char *name, const char *value);
/* The object the request touched, for the audit log. */
void api_set_object(struct api_req *, const char *id);

/* The handler will answer later (from a callback).  Until it does, the
 * request stays alive even if the client goes away. */
void api_hold(struct api_req *);
/* Whether vmw-task=true asked for a task; its id. */
const char *api_task_id(const struct api_req *);
void api_task_progress(struct api_req *, int completed, const char *message);

/* Server-sent events: turn this request into an event stream starting
 * after event sequence number FROM. */
void api_stream_events(struct api_req *, int64_t from);

/* ---- the server (http.c) ---- */
struct api_server;
int api_server_start(struct vpxd *, struct api_server **out);
void api_server_stop(struct api_server *);
/* Counters for /metrics. */
struct api_metrics {
    uint64_t requests, by_class[6], login_failures, throttled, sse_clients;
    uint64_t too_large, bad_json, timeouts;
    uint64_t waiting;           /* requests held for a host (gauge) */
};
void api_get_metrics(const struct api_server *, struct api_metrics *);
/* Wakes event streams: new events up to SEQ. */
void api_events_notify(struct api_server *, int64_t seq);

/* Lists: keep rows of ARR whose column KEY the user may read. */
json_t *api_filter_visible(struct api_req *, json_t *arr, const char *key);

/* Handlers, one resource a file. */
#define API_HANDLER(NAME) void NAME(struct api_req *)
API_HANDLER(api_session_create);
API_HANDLER(api_session_get);
API_HANDLER(api_session_delete);
API_HANDLER(api_rest_session_create);
API_HANDLER(api_rest_session_delete);
API_HANDLER(api_rest_session_get);

API_HANDLER(api_vm_list);
API_HANDLER(api_vm_get);
API_HANDLER(api_vm_create);
API_HANDLER(api_vm_delete);
API_HANDLER(api_vm_power_get);
API_HANDLER(api_vm_power_start);
API_HANDLER(api_vm_power_stop);
API_HANDLER(api_vm_power_suspend);
API_HANDLER(api_vm_power_reset);
API_HANDLER(api_vm_guest_power_get);
API_HANDLER(api_vm_guest_shutdown);
API_HANDLER(api_vm_guest_reboot);
API_HANDLER(api_vm_guest_identity);
API_HANDLER(api_vm_tools_get);
API_HANDLER(api_vm_console_read);
API_HANDLER(api_vm_console_write);
/* api/snapshots.c */
API_HANDLER(api_vm_snapshot_list);
API_HANDLER(api_vm_snapshot_create);
API_HANDLER(api_vm_snapshot_revert);
API_HANDLER(api_vm_snapshot_delete);
/* api/vswitch.c */
API_HANDLER(api_vswitch_list);
API_HANDLER(api_vswitch_create);
API_HANDLER(api_vswitch_delete);
API_HANDLER(api_portgroup_list);
API_HANDLER(api_portgroup_create);
API_HANDLER(api_portgroup_patch);
API_HANDLER(api_portgroup_delete);
/* api/vmprocess.c */
API_HANDLER(api_vm_process_list);
API_HANDLER(api_vm_process_kill);
API_HANDLER(api_vm_hardware_get);
API_HANDLER(api_vm_hardware_patch);
/* api/resource_pool.c */
API_HANDLER(api_rp_vm_alloc_get);
API_HANDLER(api_rp_vm_alloc_patch);
API_HANDLER(api_rp_host_pools);

API_HANDLER(api_host_list);
API_HANDLER(api_host_create);
API_HANDLER(api_host_delete);
API_HANDLER(api_host_connect);
API_HANDLER(api_host_disconnect);

API_HANDLER(api_datacenter_list);
API_HANDLER(api_datacenter_get);
API_HANDLER(api_datacenter_create);
API_HANDLER(api_datacenter_delete);
API_HANDLER(api_cluster_list);
API_HANDLER(api_cluster_get);
API_HANDLER(api_cluster_create);
API_HANDLER(api_cluster_delete);
API_HANDLER(api_ha_cluster_get);
API_HANDLER(api_ha_cluster_patch);
API_HANDLER(api_ha_vm_get);
API_HANDLER(api_ha_vm_patch);
API_HANDLER(api_ha_vm_power_start);
API_HANDLER(api_ha_vm_power_stop);
API_HANDLER(api_ha_vm_power_suspend);
API_HANDLER(api_ha_vm_guest_shutdown);
API_HANDLER(api_folder_list);
API_HANDLER(api_folder_create);
API_HANDLER(api_folder_delete);
API_HANDLER(api_datastore_list);
API_HANDLER(api_datastore_get);
API_HANDLER(api_network_list);
API_HANDLER(api_rp_list);
API_HANDLER(api_rp_get);
API_HANDLER(api_rp_create);
API_HANDLER(api_rp_patch);
API_HANDLER(api_rp_delete);

API_HANDLER(api_vm_relocate);
API_HANDLER(api_task_cancel);
API_HANDLER(api_host_enter_maintenance);
API_HANDLER(api_host_exit_maintenance);
API_HANDLER(api_drs_get);
API_HANDLER(api_drs_patch);
API_HANDLER(api_drs_run);
API_HANDLER(api_drs_recs_list);
API_HANDLER(api_drs_recs_apply);
API_HANDLER(api_drs_rules_list);
API_HANDLER(api_drs_rule_create);
API_HANDLER(api_drs_rule_delete);

API_HANDLER(api_task_get);
API_HANDLER(api_task_list);

API_HANDLER(api_events_list);
API_HANDLER(api_events_stream);
API_HANDLER(api_alarms_list);
API_HANDLER(api_alarm_ack);
API_HANDLER(api_users_list);
API_HANDLER(api_user_create);
API_HANDLER(api_user_patch);
API_HANDLER(api_user_delete);
API_HANDLER(api_roles_list);
API_HANDLER(api_role_create);
API_HANDLER(api_role_delete);
API_HANDLER(api_permissions_list);
API_HANDLER(api_permission_set);
API_HANDLER(api_permission_delete);
API_HANDLER(api_audit_list);

API_HANDLER(api_openapi);
API_HANDLER(api_ui_file);
API_HANDLER(api_stats_get);
API_HANDLER(api_appliance_version);
API_HANDLER(api_kvc_host_get);

API_HANDLER(api_metrics);

#endif
