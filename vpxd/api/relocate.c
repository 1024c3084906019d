/* POST /api/vcenter/vm/{vm}?action=relocate (vMotion) and
 * POST /api/cis/tasks/{task}?action=cancel (docs/drs.md "Migration"). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vpxd/api/api.h"
#include "vpxd/api/internal.h"
#include "vpxd/migration.h"
#include "vpxd/svmotion.h"

/* -errno of migration.h -> the spec's error types. */
static void migrate_error(struct api_req *r, int err, const char *why)
{
    switch (err) {
    case -ENOENT:
        api_error(r, 404, "NOT_FOUND", "%s", why);
        break;
    case -EALREADY:
        api_error(r, 400, "ALREADY_IN_DESIRED_STATE", "%s", why);
        break;
    case -EINVAL:
        api_error(r, 400, "INVALID_ARGUMENT", "%s", why);
        break;
    case -EBUSY:
    case -EPERM:
        api_error(r, 400, "NOT_ALLOWED_IN_CURRENT_STATE", "%s", why);
        break;
    case -ENOTCONN:
        api_error(r, 503, "SERVICE_UNAVAILABLE", "%s", why);
        break;
    case -ENOSPC:
        api_error(r, 500, "UNABLE_TO_ALLOCATE_RESOURCE", "%s", why);
        break;
    case -ECANCELED:
        api_error(r, 500, "CANCELED", "%s", why);
        break;
    case -ETIMEDOUT:
        api_error(r, 500, "TIMED_OUT", "%s", why);
        break;
    case -ENOTSUP:
        api_error(r, 400, "UNSUPPORTED", "%s", why);
        break;
    default:
        api_error(r, 500, "ERROR", "%s", why);
    }
}

static void on_relocated(void *arg, int err, const char *msg, const char *task)
{
    struct api_req *r = arg;

    if (err)
        migrate_error(r, err, msg ? msg : strerror(-err));
    else
        api_reply(r, 204, NULL);
}

void api_vm_relocate(struct api_req *r)
{
    static const char *const fields[] = { "placement", "disks", NULL };
    static const char *const pfields[] = { "folder", "resource_pool", "host", "cluster",
                                           "datastore", NULL };
    json_t *b = api_body(r), *pl, *disks;
    const char *host = NULL, *cluster = NULL, *ds = NULL, *folder = NULL, *rp = NULL, *k;
    struct vpxd *vx = api_vpxd(r);
    char why[512] = "";
    json_t *v;
    int rc;

    if (api_body_object(r, fields) < 0 || api_field_obj(r, b, "placement", &pl) < 0)
        return;
    disks = json_object_get(b, "disks");
    if (disks && !json_is_null(disks) && !(json_is_object(disks) && !json_object_size(disks)))
        return api_error(r, 400, "UNSUPPORTED", "per-disk relocation (storage migration) is not"
                         " supported by kvcenter");
    if (!pl)
        return api_error(r, 400, "INVALID_ARGUMENT", "field 'placement' is required");
    json_object_foreach(pl, k, v) {
        bool known = false;
        for (int i = 0; pfields[i] && !known; i++)
            known = !strcmp(pfields[i], k);
        if (!known)
            return api_error(r, 400, "INVALID_ARGUMENT", "unknown field 'placement.%.32s'", k);
    }
    if (api_field_str(r, pl, "host", false, &host) < 0
        || api_field_str(r, pl, "cluster", false, &cluster) < 0
        || api_field_str(r, pl, "datastore", false, &ds) < 0
        || api_field_str(r, pl, "folder", false, &folder) < 0
        || api_field_str(r, pl, "resource_pool", false, &rp) < 0)
        return;
    if (folder || rp)
        return api_error(r, 400, "UNSUPPORTED", "moving a VM to another folder or resource pool"
                         " with relocate is not supported yet: give placement.host");
    /* Another datastore: storage migration (vpxd/svmotion.c). */
    if (ds && vpxd_svmotion_relocate(r, host, cluster, ds))
        return;
    if (!host)
        return api_error(r, 400, "INVALID_ARGUMENT", "field 'placement.host' is required"
                         " (DRS placement inside a cluster: see /api/kvc/cluster/{cluster}/drs)");
    if (api_require(r, "Resource.HotMigrate", host) < 0)
        return;
    struct vpxd_migrate_req q = { .vm = api_param(r, "vm"), .host = host, .cluster = cluster,
                                  .datastore = ds, .user = api_user(r), .reason = "user" };
    if ((rc = vpxd_migrate_check(vx, &q, why, sizeof(why))) < 0)
        return migrate_error(r, rc, why);
    api_set_object(r, api_param(r, "vm"));
    api_hold(r);
    q.task = api_task_id(r);
    if ((rc = vpxd_migrate_vm(vx, &q, on_relocated, r, NULL, why, sizeof(why))) < 0)
        migrate_error(r, rc, why);
}

void api_task_cancel(struct api_req *r)
{
    const char *id = api_param(r, "task");
    json_t *row = NULL;
    const char *owner, *target;
    int rc;

    rc = vdb_query_row(api_db(r), &row, "SELECT user_name, target_id, status, cancelable FROM"
                       " task WHERE id = ?", "s", id);
    if (rc == -ENOENT) {
        /* Privilege before existence, as for every other object: only a
         * user who could cancel tasks learns that this one does not exist. */
        if (!api_can(r, "Resource.HotMigrate", VDB_ROOT_FOLDER))
            return api_error(r, 403, "UNAUTHORIZED", "%s may not cancel task %s",
                             api_user(r), id);
        return api_error(r, 404, "NOT_FOUND", "task %s not found", id);
    }
    if (rc < 0)
        return api_error_errno(r, rc, "task");
    owner = json_string_value(json_object_get(row, "user_name"));
    target = json_string_value(json_object_get(row, "target_id"));
    if (!(owner && !strcmp(owner, api_user(r))) && !api_can(r, "Resource.HotMigrate", target)) {
        json_decref(row);
        return api_error(r, 403, "UNAUTHORIZED", "%s may not cancel task %s", api_user(r), id);
    }
    rc = vpxd_svmotion_cancel(api_vpxd(r), id);      /* a storage move's task? */
    if (rc == -ENOENT)
        rc = vpxd_migrate_cancel(api_vpxd(r), id);
    json_decref(row);
    if (rc == -ENOENT)
        return api_error(r, 400, "NOT_ALLOWED_IN_CURRENT_STATE",
                         "task %s is not a running task that can be canceled", id);
    if (rc == -EBUSY)
        return api_error(r, 400, "NOT_ALLOWED_IN_CURRENT_STATE",
                         "task %s is past its switch-over and completes", id);
    api_reply(r, 204, NULL);
}
