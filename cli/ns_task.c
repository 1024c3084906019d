/* kvcli `task` namespace: what vmw-task=true started
 * (POST /api/cis/tasks?action=list, GET /api/cis/tasks/{task}). */
#include "commands.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct kvc_field task_fields[] = {
    { "Task ID", KVC_F_STRING },
    { "Operation", KVC_F_STRING },
    { "Target", KVC_F_STRING },
    { "Status", KVC_F_STRING },
    { "Progress", KVC_F_INT },
    { "User", KVC_F_STRING },
    { "Start Time", KVC_F_STRING },
    { "End Time", KVC_F_STRING },
    { NULL },
};
const struct kvc_shape kvc_shape_task_list = { "Task", task_fields, KVC_LIST_TABLE, NULL };

static const struct kvc_field task_get_fields[] = {
    { "Task ID", KVC_F_STRING },
    { "Service", KVC_F_STRING },
    { "Operation", KVC_F_STRING },
    { "Target", KVC_F_STRING },
    { "Status", KVC_F_STRING },
    { "Progress", KVC_F_INT },
    { "Message", KVC_F_STRING },
    { "Error", KVC_F_STRING },
    { "User", KVC_F_STRING },
    { "Start Time", KVC_F_STRING },
    { "End Time", KVC_F_STRING },
    { NULL },
};
const struct kvc_shape kvc_shape_task_get = { "TaskGet", task_get_fields, KVC_LIST_TABLE, NULL };

/* The spec's task info -> our row (percent done from progress). */
static json_t *
task_row(const char *id, const json_t *t, bool full)
{
    const json_t *p = json_object_get(t, "progress");
    json_int_t total = json_integer_value(json_object_get(p, "total"));
    json_int_t done = json_integer_value(json_object_get(p, "completed"));
    const char *st = json_string_value(json_object_get(t, "status"));
    json_int_t pct = st && !strcmp(st, "SUCCEEDED") ? 100 : total > 0 ? done * 100 / total : 0;
    json_t *o = json_pack("{s:s, s:O?, s:O?, s:O?, s:I, s:O?, s:O?, s:O?}",
        "TaskID", id, "Operation", json_object_get(t, "operation"),
        "Target", json_object_get(json_object_get(t, "target"), "id"),
        "Status", json_object_get(t, "status"), "Progress", pct,
        "User", json_object_get(t, "user"), "StartTime", json_object_get(t, "start_time"),
        "EndTime", json_object_get(t, "end_time"));
    if (full) {
        json_object_set(o, "Service", json_object_get(t, "service"));
        json_object_set(o, "Message",
                        json_object_get(json_object_get(p, "message"), "default_message"));
        const json_t *e = json_object_get(t, "error");
        const char *m = json_string_value(json_object_get(
            json_array_get(json_object_get(e, "messages"), 0), "default_message"));
        if (m)
            json_object_set_new(o, "Error", json_string(m));
        else if (json_is_string(e))
            json_object_set(o, "Error", (json_t *)e);
    }
    /* Absent values print as empty, not "null". */
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(o, tmp, k, v)
        if (json_is_null(v))
            json_object_del(o, k);
    return o;
}

static int
by_start(const void *a, const void *b)
{
    const char *x = json_string_value(json_object_get(*(json_t *const *)a, "StartTime"));
    const char *y = json_string_value(json_object_get(*(json_t *const *)b, "StartTime"));
    return strcmp(x ? x : "", y ? y : "");
}

int
kvc_run_task_list(struct kvc_ctx *ctx, const struct kvc_args *a, json_t **res, char *err,
                  size_t errlen)
{
    json_t *r = NULL;
    (void)a;
    int rc = kvc_ctx_request(ctx, "POST", "/api/cis/tasks?action=list", NULL, &r, err, errlen);
    if (rc)
        return rc;
    if (!json_is_object(r)) {
        json_decref(r);
        snprintf(err, errlen, "the server's task list is not an object keyed by id");
        return -EPROTO;
    }
    size_t n = json_object_size(r), i = 0;
    json_t **rows = calloc(n ? n : 1, sizeof *rows);
    const char *id;
    json_t *t;
    if (!rows) {
        json_decref(r);
        return -ENOMEM;
    }
    json_object_foreach(r, id, t)
        rows[i++] = task_row(id, t, false);
    qsort(rows, n, sizeof *rows, by_start);     /* oldest first, like the event list */
    json_t *out = json_array();
    for (i = 0; i < n; i++)
        json_array_append_new(out, rows[i]);
    free(rows);
    json_decref(r);
    *res = out;
    return 0;
}

int
kvc_run_task_get(struct kvc_ctx *ctx, const struct kvc_args *a, json_t **res, char *err,
                 size_t errlen)
{
    const char *id = kvc_arg_str(a, "task");
    char path[128];
    json_t *r = NULL;
    if (!kvc_ns_valid_id(id)) {
        snprintf(err, errlen, "While processing '--task'. '%s' is not a task id (task-42).", id);
        return -EINVAL;
    }
    snprintf(path, sizeof path, "/api/cis/tasks/%s", id);
    int rc = kvc_ctx_request(ctx, "GET", path, NULL, &r, err, errlen);
    if (rc)
        return rc;
    if (!json_is_object(r)) {
        json_decref(r);
        snprintf(err, errlen, "the server's task is not an object");
        return -EPROTO;
    }
    *res = task_row(id, r, true);
    json_decref(r);
    return 0;
}
