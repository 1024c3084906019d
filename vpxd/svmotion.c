/* Storage migration orchestration (svmotion.h; docs/storage-migration.md).
 *
 * One struct svm per move: VM_STORAGE_MOVE on the VM's host, then
 * VM_STORAGE_MOVE_STATUS every POLL_MS until the host says it ended; the
 * host's VM event carries the new datastore into the inventory (we wait
 * for it to land, at most SETTLE_MS); with another destination host the
 * live migration (migration.c) follows, the VM's datastore now shared by
 * both.  The REST request is answered when all of it ends (or, with
 * vmw-task, its task). */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "lib/log.h"
#include "vpxd/api/api.h"
#include "vpxd/db.h"
#include "vpxd/hostmgr.h"
#include "vpxd/migration.h"
#include "vpxd/svmotion.h"
#include "vpxd/vpxd.h"
#include "host.pb-c.h"

KVC_LOG_MODULE(svmotion);

#define POLL_MS 100
#define SETTLE_MS 5000
#define MAX_POLLS 36000             /* one hour of polls, then it is given up */

struct svm {
    struct svm *next;
    struct vpxd *vx;
    struct api_req *r;
    char vm[VDB_ID_MAX], uuid[40], src[VDB_ID_MAX], dst[VDB_ID_MAX], cluster[VDB_ID_MAX];
    char ds[VDB_ID_MAX], dsname[256], user[128], task[VDB_ID_MAX];
    struct event *timer;
    bool migrating;             /* files moved, migration.c runs the rest */
    unsigned polls;
    int64_t settle_left;
    bool done_on_host;
    bool in_call;               /* a STATUS call is out (hostmgr answers it) */
};

static struct svm *svms;
static bool stopping;           /* vpxd_svmotion_stop() ran: calls end as cancelled */

static bool moving(const char *vm)
{
    for (struct svm *s = svms; s; s = s->next)
        if (!strcmp(s->vm, vm))
            return true;
    return false;
}

static void svm_free(struct svm *s)
{
    struct svm **pp;

    for (pp = &svms; *pp && *pp != s; pp = &(*pp)->next)
        ;
    if (*pp)
        *pp = s->next;
    if (s->timer)
        event_free(s->timer);
    free(s);
}

static void reply_err(struct api_req *r, int err, const char *msg)
{
    switch (err) {
    case -ENOENT:
        api_error(r, 404, "NOT_FOUND", "%s", msg);
        break;
    case -EINVAL:
        api_error(r, 400, "INVALID_ARGUMENT", "%s", msg);
        break;
    case -EBUSY:
    case -EEXIST:
        api_error(r, 400, "NOT_ALLOWED_IN_CURRENT_STATE", "%s", msg);
        break;
    case -ENOTSUP:
    case -ENOSYS:               /* the host: NOT_IMPLEMENTED */
        api_error(r, 400, "UNSUPPORTED", "%s", msg);
        break;
    case -ENOTCONN:
        api_error(r, 503, "SERVICE_UNAVAILABLE", "%s", msg);
        break;
    case -ENOSPC:
        api_error(r, 500, "UNABLE_TO_ALLOCATE_RESOURCE", "%s", msg);
        break;
    case -ECANCELED:
        api_error(r, 500, "CANCELED", "%s", msg);
        break;
    default:
        api_error(r, 500, "ERROR", "%s", msg);
    }
}

static void end(struct svm *s, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void end(struct svm *s, int err, const char *fmt, ...)
{
    char msg[1024] = "";
    va_list ap;

    if (fmt) {
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
    }
    if (err) {
        kvc_warn("SVMOTION vm=%s to=%s failed: %s", s->vm, s->dsname, msg);
        reply_err(s->r, err, msg);
    } else {
        kvc_info("SVMOTION vm=%s to=%s host=%s completed", s->vm, s->dsname, s->dst);
        api_reply(s->r, 204, NULL);
    }
    svm_free(s);
}

static void arm(struct svm *s)
{
    struct timeval tv = { 0, POLL_MS * 1000 };

    event_add(s->timer, &tv);
}

static void on_migrated(void *arg, int err, const char *msg, const char *task)
{
    struct svm *s = arg;

    (void)task;
    if (err)
        end(s, err, "the files are on %s; the live migration to %s failed: %s", s->dsname,
            s->dst, msg ? msg : strerror(-err));
    else
        end(s, 0, NULL);
}

/* The files are on the new datastore, as the inventory says. */
static void files_moved(struct svm *s)
{
    char why[512] = "";
    int rc;

    if (!strcmp(s->dst, s->src))
        return end(s, 0, NULL);
    struct vpxd_migrate_req q = { .vm = s->vm, .host = s->dst,
                                  .cluster = s->cluster[0] ? s->cluster : NULL,
                                  .datastore = s->ds, .user = s->user,
                                  .task = api_task_id(s->r), .reason = "user" };
    api_task_progress(s->r, 50, "files moved; migrating the VM");
    s->migrating = true;
    if ((rc = vpxd_migrate_vm(s->vx, &q, on_migrated, s, NULL, why, sizeof why)) < 0)
        end(s, rc, "the files are on %s; the live migration to %s could not start: %s",
            s->dsname, s->dst, why);
}

static void on_status(void *arg, int err, const char *msg, const ProtobufCMessage *resp)
{
    struct svm *s = arg;
    const Kvc__Host__StorageMoveStatus *st = (const void *)resp;
    bool two = strcmp(s->dst, s->src) != 0;

    s->in_call = false;
    if (err && stopping)
        return end(s, -ECANCELED, "vpxd is stopping: the storage move goes on on host %s; its"
                   " outcome shows in the inventory", s->src);
    if (err)
        return end(s, err, "storage move on host %s: %s", s->src, msg ? msg : strerror(-err));
    switch (st->phase) {
    case KVC__HOST__STORAGE_MOVE_PHASE__STORAGE_MOVE_RUNNING:
        api_task_progress(s->r, (int)(two ? st->percent / 2 : st->percent), "copying the VM's files");
        if (++s->polls > MAX_POLLS)
            return end(s, -ETIMEDOUT, "storage move on host %s did not end", s->src);
        return arm(s);
    case KVC__HOST__STORAGE_MOVE_PHASE__STORAGE_MOVE_COMPLETED:
        s->done_on_host = true;
        s->settle_left = SETTLE_MS;
        return arm(s);
    case KVC__HOST__STORAGE_MOVE_PHASE__STORAGE_MOVE_CANCELLED:
        return end(s, -ECANCELED, "storage move on host %s cancelled: %s", s->src, st->message);
    default:
        return end(s, st->error ? -st->error : -EIO, "storage move on host %s failed: %s",
                   s->src, st->message);
    }
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct svm *s = arg;
    char cur[VDB_ID_MAX] = "";
    int rc;

    (void)fd;
    (void)what;
    if (s->done_on_host) {
        /* The host's VM event (sent before its COMPLETED) sets the datastore. */
        vdb_query_str(s->vx->db, cur, sizeof cur, "SELECT coalesce(datastore, '') FROM vm"
                      " WHERE id = ?", "s", s->vm);
        if (!strcmp(cur, s->ds))
            return files_moved(s);
        if ((s->settle_left -= POLL_MS) <= 0)
            return end(s, -EIO, "host %s moved the files but the inventory does not show"
                       " datastore %s", s->src, s->dsname);
        return arm(s);
    }
    Kvc__Host__StorageMoveQuery q = KVC__HOST__STORAGE_MOVE_QUERY__INIT;
    q.vm_uuid = s->uuid;
    s->in_call = true;
    if (!s->vx->hm || (rc = hostmgr_host_call(s->vx->hm, s->src,
                                             KVC__HOST__METHOD__VM_STORAGE_MOVE_STATUS, &q.base,
                                             &kvc__host__storage_move_status__descriptor,
                                             on_status, s)) < 0) {
        s->in_call = false;
        end(s, -ENOTCONN, "host %s: no connection to poll the storage move", s->src);
    }
}

void vpxd_svmotion_stop(struct vpxd *vx)
{
    struct svm *s;

    (void)vx;
    stopping = true;
    /* Moves waiting on their timer end now (the host goes on with the copy;
     * its next report tells the inventory); one with a call out ends when
     * hostmgr cancels it, one migrating when migration.c stops it. */
    do {
        for (s = svms; s && (s->in_call || s->migrating); s = s->next)
            ;
        if (s)
            end(s, -ECANCELED, "vpxd is stopping: the storage move goes on on host %s; its"
                " outcome shows in the inventory", s->src);
    } while (s);
}

static void on_cancel_sent(void *arg, int err, const char *msg, const ProtobufCMessage *resp)
{
    (void)arg;
    (void)resp;
    if (err)        /* it ended meanwhile: the next poll tells how */
        kvc_info("SVMOTION cancel: %s", msg ? msg : strerror(-err));
}

int vpxd_svmotion_cancel(struct vpxd *vx, const char *task)
{
    for (struct svm *s = svms; s; s = s->next) {
        if (!s->task[0] || strcmp(s->task, task))
            continue;
        if (s->migrating)
            return -ENOENT;
        if (s->done_on_host)
            return -EBUSY;
        Kvc__Host__StorageMoveQuery q = KVC__HOST__STORAGE_MOVE_QUERY__INIT;
        q.vm_uuid = s->uuid;
        if (!vx->hm || hostmgr_host_call(vx->hm, s->src, KVC__HOST__METHOD__VM_STORAGE_MOVE_CANCEL,
                                         &q.base, &kvc__host__storage_move_status__descriptor,
                                         on_cancel_sent, NULL) < 0)
            return -EBUSY;          /* no connection: it cannot be stopped now */
        kvc_info("SVMOTION vm=%s: cancel asked", s->vm);
        return 0;
    }
    return -ENOENT;
}

static void on_started(void *arg, int err, const char *msg, const ProtobufCMessage *resp)
{
    struct svm *s = arg;

    (void)resp;
    s->in_call = false;
    if (err && stopping)
        return end(s, -ECANCELED, "vpxd is stopping: the storage move goes on on host %s; its"
                   " outcome shows in the inventory", s->src);
    if (err)
        return end(s, err, "storage move on host %s: %s", s->src, msg ? msg : strerror(-err));
    kvc_info("SVMOTION vm=%s from host=%s to datastore=%s (%s) host=%s started", s->vm, s->src,
             s->dsname, s->ds, s->dst);
    arm(s);
}

static bool sees(struct vpxd *vx, const char *host, const char *ds)
{
    int64_t n = 0;

    vdb_query_int(vx->db, &n, "SELECT count(*) FROM host_datastore WHERE host = ? AND"
                  " datastore = ?", "ss", host, ds);
    return n > 0;
}

static bool connected(struct vpxd *vx, const char *host)
{
    struct hostmgr_host_status st;

    return vx->hm && hostmgr_host_status(vx->hm, host, &st) == 0 &&
           st.state == HOSTMGR_CONNECTED;
}

bool vpxd_svmotion_relocate(struct api_req *r, const char *host, const char *cluster,
                            const char *ds)
{
    struct vpxd *vx = api_vpxd(r);
    const char *vm = api_param(r, "vm");
    json_t *row = NULL;
    const char *cur, *src, *uuid;
    struct svm *s;
    int rc;

    if (!ds || !vm || vdb_query_row(vx->db, &row, "SELECT host, datastore, instance_uuid"
                                    " FROM vm WHERE id = ?", "s", vm) < 0)
        return false;
    cur = json_string_value(json_object_get(row, "datastore"));
    src = json_string_value(json_object_get(row, "host"));
    uuid = json_string_value(json_object_get(row, "instance_uuid"));
    if (cur && !strcmp(cur, ds)) {
        json_decref(row);
        return false;           /* its own datastore: a plain vMotion (or nothing) */
    }
    if (!vdb_entity_exists(vx->db, ds, "datastore")) {
        api_error(r, 404, "NOT_FOUND", "datastore %s not found", ds);
        goto out;
    }
    if (!src || !*src || !uuid) {
        api_error(r, 503, "SERVICE_UNAVAILABLE", "virtual machine %s is not registered on any"
                  " host", vm);
        goto out;
    }
    if (!host)
        host = src;
    if (strcmp(host, src) && !vdb_entity_exists(vx->db, host, "host")) {
        api_error(r, 404, "NOT_FOUND", "host %s not found", host);
        goto out;
    }
    if (api_require(r, "Resource.HotMigrate", host) < 0)
        goto out;
    if (strcmp(host, src) && !sees(vx, host, ds)) {
        api_error(r, 400, "INVALID_ARGUMENT", "destination host %s does not see datastore %s",
                  host, ds);
        goto out;
    }
    if (!sees(vx, src, ds)) {
        if (!strcmp(host, src)) {
            api_error(r, 400, "INVALID_ARGUMENT", "datastore %s is not mounted on host %s",
                      ds, src);
            goto out;
        }
        if (moving(vm)) {
            api_error(r, 400, "NOT_ALLOWED_IN_CURRENT_STATE", "virtual machine %s is already"
                      " being migrated", vm);
            goto out;
        }
        /* Another host that mounts it: a live migration that carries the
         * disk over its stream (relocate goes on; migration.c). */
        json_decref(row);
        return false;
    }
    if (moving(vm) || vpxd_migrating(vm)) {
        api_error(r, 400, "NOT_ALLOWED_IN_CURRENT_STATE", "virtual machine %s is already being"
                  " migrated", vm);
        goto out;
    }
    if (!connected(vx, src)) {
        api_error(r, 503, "SERVICE_UNAVAILABLE", "host %s is not connected", src);
        goto out;
    }
    if (!(s = calloc(1, sizeof *s)) || !(s->timer = event_new(vx->base, -1, 0, on_timer, s))) {
        free(s);
        api_error(r, 500, "ERROR", "out of memory");
        goto out;
    }
    s->vx = vx;
    s->r = r;
    snprintf(s->vm, sizeof s->vm, "%s", vm);
    snprintf(s->uuid, sizeof s->uuid, "%s", uuid);
    snprintf(s->src, sizeof s->src, "%s", src);
    snprintf(s->dst, sizeof s->dst, "%s", host);
    snprintf(s->cluster, sizeof s->cluster, "%s", cluster ? cluster : "");
    snprintf(s->ds, sizeof s->ds, "%s", ds);
    snprintf(s->user, sizeof s->user, "%s", api_user(r) ? api_user(r) : "vpxd");
    vdb_query_str(vx->db, s->dsname, sizeof s->dsname, "SELECT name FROM entity WHERE id = ?",
                  "s", ds);
    s->next = svms;
    svms = s;
    api_set_object(r, vm);
    api_hold(r);
    if (api_task_id(r)) {
        snprintf(s->task, sizeof s->task, "%s", api_task_id(r));
        vdb_task_set_cancelable(vx->db, s->task, true);
    }
    Kvc__Host__StorageMoveRequest q = KVC__HOST__STORAGE_MOVE_REQUEST__INIT;
    q.vm_uuid = s->uuid;
    q.datastore = s->dsname;
    s->in_call = true;
    if ((rc = hostmgr_host_call(vx->hm, src, KVC__HOST__METHOD__VM_STORAGE_MOVE, &q.base,
                                &kvc__host__storage_move_status__descriptor, on_started, s)) < 0) {
        s->in_call = false;
        end(s, rc, "host %s: %s", src, strerror(-rc));
    }
out:
    json_decref(row);
    return true;
}
