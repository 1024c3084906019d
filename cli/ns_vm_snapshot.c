/* vm snapshot list|create|revert|remove: a VM's snapshots through vpxd
 * (/api/kvc/vm/{vm}/snapshots). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"

static const struct kvc_field snapshot_fields[] = {
    { "Snapshot", KVC_F_STRING },
    { "Name", KVC_F_STRING },
    { "Description", KVC_F_STRING },
    { "Created", KVC_F_STRING },
    { "Power State", KVC_F_STRING },
    { "Memory", KVC_F_BOOL },
    { "Current", KVC_F_BOOL },
    { NULL },
};
const struct kvc_shape kvc_shape_vm_snapshot_list = { "VmSnapshot", snapshot_fields,
                                                      KVC_LIST_TABLE, NULL };
const struct kvc_shape kvc_shape_vm_snapshot_create = { "VmSnapshot", snapshot_fields,
                                                        KVC_LIST_BLOCKS, NULL };

static int
snapshot_path(const struct kvc_args *a, bool one, char *path, size_t len, char *err,
              size_t errlen)
{
    const char *id = kvc_arg_str(a, "vm"), *snap = one ? kvc_arg_str(a, "snapshot") : NULL;

    if (!kvc_ns_valid_id(id)) {
        snprintf(err, errlen, "While processing '--vm'. '%s' is not a VM id (vm-42).", id);
        return -EINVAL;
    }
    if (one && (!snap || !*snap || strspn(snap, "0123456789") != strlen(snap) ||
                strlen(snap) > 10)) {
        snprintf(err, errlen, "While processing '--snapshot'. '%s' is not a snapshot id "
                 "(a number, as 'vm snapshot list' shows).", snap ? snap : "");
        return -EINVAL;
    }
    if (one)
        snprintf(path, len, "/api/kvc/vm/%s/snapshots/%s", id, snap);
    else
        snprintf(path, len, "/api/kvc/vm/%s/snapshots", id);
    return 0;
}

/* One REST snapshot as the shape's keys, or NULL. */
static json_t *
row(json_t *s)
{
    return json_pack("{s:O, s:O, s:O, s:O, s:O, s:O, s:O}",
                     "Snapshot", json_object_get(s, "snapshot"),
                     "Name", json_object_get(s, "name"),
                     "Description", json_object_get(s, "description"),
                     "Created", json_object_get(s, "created"),
                     "PowerState", json_object_get(s, "power_state"),
                     "Memory", json_object_get(s, "memory"),
                     "Current", json_object_get(s, "current"));
}

int
kvc_run_vm_snapshot_list(struct kvc_ctx *ctx, const struct kvc_args *a, json_t **res,
                         char *err, size_t errlen)
{
    char path[160];
    json_t *r = NULL, *out, *s;
    size_t i;
    int rc = snapshot_path(a, false, path, sizeof path, err, errlen);

    if (rc || (rc = kvc_ctx_request(ctx, "GET", path, NULL, &r, err, errlen)))
        return rc;
    if (!json_is_array(r) || !(out = json_array())) {
        json_decref(r);
        snprintf(err, errlen, "the server's snapshot list is not a list");
        return -EPROTO;
    }
    json_array_foreach(r, i, s) {
        json_t *o = row(s);
        if (!o) {
            json_decref(out);
            json_decref(r);
            snprintf(err, errlen, "the server's snapshot list has a malformed entry");
            return -EPROTO;
        }
        json_array_append_new(out, o);
    }
    json_decref(r);
    *res = out;
    return 0;
}

int
kvc_run_vm_snapshot_create(struct kvc_ctx *ctx, const struct kvc_args *a, json_t **res,
                           char *err, size_t errlen)
{
    char path[160];
    const char *name = kvc_arg_str(a, "name"), *desc = kvc_arg_str(a, "description");
    json_t *r = NULL, *body;
    int rc = snapshot_path(a, false, path, sizeof path, err, errlen);

    if (rc)
        return rc;
    if (!name || !*name || strlen(name) > 80) {
        snprintf(err, errlen, "While processing '--name'. The name must be 1 to 80 bytes.");
        return -EINVAL;
    }
    body = json_pack("{s:s, s:s, s:b}", "name", name, "description", desc ? desc : "",
                     "memory", kvc_arg_bool(a, "memory", false));
    rc = kvc_ctx_request(ctx, "POST", path, body, &r, err, errlen);
    json_decref(body);
    if (rc)
        return rc;
    *res = row(r);
    json_decref(r);
    if (!*res) {
        snprintf(err, errlen, "the server's snapshot reply is malformed");
        return -EPROTO;
    }
    return 0;
}

static int
by_id(struct kvc_ctx *ctx, const struct kvc_args *a, const char *method, const char *suffix,
      json_t **res, char *err, size_t errlen)
{
    char path[200], full[220];
    json_t *r = NULL;
    int rc = snapshot_path(a, true, path, sizeof path, err, errlen);

    if (rc)
        return rc;
    snprintf(full, sizeof full, "%s%s", path, suffix);
    rc = kvc_ctx_request(ctx, method, full, NULL, &r, err, errlen);
    json_decref(r);
    *res = NULL;
    return rc;
}

/* vm snapshot revert: the VM is back at the snapshot; prints nothing. */
int
kvc_run_vm_snapshot_revert(struct kvc_ctx *ctx, const struct kvc_args *a, json_t **res,
                           char *err, size_t errlen)
{
    return by_id(ctx, a, "POST", "?action=revert", res, err, errlen);
}

/* vm snapshot remove: deleted, its disk delta consolidated; prints nothing. */
int
kvc_run_vm_snapshot_remove(struct kvc_ctx *ctx, const struct kvc_args *a, json_t **res,
                           char *err, size_t errlen)
{
    return by_id(ctx, a, "DELETE", "", res, err, errlen);
}
