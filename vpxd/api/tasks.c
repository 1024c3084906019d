/* /api/cis/tasks: what vmw-task=true started. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vpxd/api/api.h"
#include "vpxd/api/internal.h"

#define TASK_COLUMNS \
    "SELECT id, service, operation, target_type, target_id, user_name, status, cancelable," \
    " total, completed, message, result AS result_json, error AS error_json, start_time," \
    " end_time FROM task"

/* The spec's task info from a row. */
static json_t *task_info(json_t *row)
{
    json_t *o = json_pack("{s:{s:O, s:O, s:{s:s, s:O, s:[]}}, s:{s:s, s:s, s:[]},"
                          " s:O, s:O, s:O, s:b}",
        "progress", "total", json_object_get(row, "total"), "completed",
        json_object_get(row, "completed"), "message", "id", "kvc.task.progress",
        "default_message", json_object_get(row, "message"), "args",
        "description", "id", "kvc.task", "default_message", "", "args",
        "service", json_object_get(row, "service"),
        "operation", json_object_get(row, "operation"),
        "status", json_object_get(row, "status"),
        "cancelable", json_integer_value(json_object_get(row, "cancelable")) != 0);
    const char *tid = json_string_value(json_object_get(row, "target_id"));
    json_t *res = json_object_get(row, "result"), *err = json_object_get(row, "error");

    if (tid) {
        const char *dash = strchr(tid, '-');
        char type[32];
        snprintf(type, sizeof(type), "%.*s", dash ? (int)(dash - tid) : (int)strlen(tid), tid);
        json_object_set_new(o, "target", json_pack("{s:s, s:s}", "type", type, "id", tid));
    }
    /* The spec's TaskInfo: result is an object (a bare value such as a new
     * VM's id comes as {"value": ...}); error is the description of the
     * failure, and the whole error body goes in result. */
    if (res && !json_is_null(res)) {
        if (json_is_object(res))
            json_object_set(o, "result", res);
        else
            json_object_set_new(o, "result", json_pack("{s:O}", "value", res));
    }
    if (err && !json_is_null(err)) {
        if (json_is_object(err)) {
            json_t *m = json_array_get(json_object_get(err, "messages"), 0);
            const char *d = json_string_value(json_object_get(m, "default_message"));
            const char *t = json_string_value(json_object_get(err, "error_type"));
            json_object_set_new(o, "error", json_string(d ? d : t ? t : "failed"));
            if (!json_object_get(o, "result"))
                json_object_set(o, "result", err);
        } else if (json_is_string(err)) {
            json_object_set(o, "error", err);
        } else {
            json_object_set_new(o, "error", json_string("failed"));
        }
    }
    if (json_is_string(json_object_get(row, "start_time")))
        json_object_set(o, "start_time", json_object_get(row, "start_time"));
    if (json_is_string(json_object_get(row, "end_time")))
        json_object_set(o, "end_time", json_object_get(row, "end_time"));
    if (json_is_string(json_object_get(row, "user_name")))
        json_object_set(o, "user", json_object_get(row, "user_name"));
    return o;
}

/* Own tasks, or tasks on objects the user may read. */
static bool visible(struct api_req *r, json_t *row)
{
    const char *user = json_string_value(json_object_get(row, "user_name"));
    const char *tid = json_string_value(json_object_get(row, "target_id"));

    return (user && !strcmp(user, api_user(r))) || api_can(r, "System.Read", tid);
}

void api_task_get(struct api_req *r)
{
    json_t *row = NULL;
    int rc = vdb_query_row(api_db(r), &row, TASK_COLUMNS " WHERE id = ?", "s",
                           api_param(r, "task"));

    if (rc == -ENOENT)
        return api_error(r, 404, "NOT_FOUND", "task %s not found", api_param(r, "task"));
    if (rc < 0)
        return api_error_errno(r, rc, "task");
    if (!visible(r, row)) {
        json_decref(row);
        return api_error(r, 403, "UNAUTHORIZED", "task %s is not visible to %s",
                         api_param(r, "task"), api_user(r));
    }
    api_reply(r, 200, task_info(row));
    json_decref(row);
}

void api_task_list(struct api_req *r)
{
    json_t *rows = NULL, *out = json_object();
    size_t i;
    json_t *row;
    int rc = vdb_query_json(api_db(r), &rows, TASK_COLUMNS " ORDER BY rowid DESC LIMIT 1000",
                            NULL);

    if (rc < 0) {
        json_decref(out);
        return api_error_errno(r, rc, "tasks");
    }
    json_array_foreach(rows, i, row)
        if (visible(r, row))
            json_object_set_new(out, json_string_value(json_object_get(row, "id")),
                                task_info(row));
    json_decref(rows);
    api_reply(r, 200, out);
}
