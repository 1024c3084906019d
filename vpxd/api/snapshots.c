/* /api/kvc/vm/{vm}/snapshots: a VM's snapshots, kept by its host
 * (VM_SNAPSHOT_* of the host protocol; hostd/snapshots.c keeps the index in
 * the VM's folder, the backend the state).
 *
 *   GET                                   -> [{snapshot, name, description,
 *                                              created, power_state, memory,
 *                                              current}]
 *   POST {name, description?, memory?}    -> 201 {the new snapshot}
 *   POST /{snapshot}?action=revert        -> {the snapshot}
 *   DELETE /{snapshot}                    -> 204 (the disk delta is consolidated)
 *
 * vpxd keeps no copy: the host's index is the truth, so a snapshot moves
 * with the VM's folder. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host.pb-c.h"
#include "vpxd/api/api.h"
#include "vpxd/api/internal.h"
#include "vpxd/hostmgr.h"

#define SNAP_NAME_MAX 80
#define SNAP_DESC_MAX 512

struct snap_req {
    struct api_req *r;
    uint32_t method;
};

/* The VM's host and instance uuid, or answered with an error. */
static int vm_where(struct api_req *r, char *host, size_t hl, char *uuid, size_t ul)
{
    const char *id = api_param(r, "vm");
    json_t *row = NULL;
    int rc = vdb_query_row(api_db(r), &row, "SELECT host, instance_uuid FROM vm WHERE id = ?",
                           "s", id);
    const char *h, *u;

    if (rc == -ENOENT) {
        api_error(r, 404, "NOT_FOUND", "virtual machine %s not found", id);
        return -1;
    }
    if (rc < 0) {
        api_error_errno(r, rc, "virtual machine");
        return -1;
    }
    h = json_string_value(json_object_get(row, "host"));
    u = json_string_value(json_object_get(row, "instance_uuid"));
    snprintf(host, hl, "%s", h ? h : "");
    snprintf(uuid, ul, "%s", u ? u : "");
    json_decref(row);
    if (!*host) {
        api_error(r, 400, "NOT_ALLOWED_IN_CURRENT_STATE",
                  "virtual machine %s is on no host", id);
        return -1;
    }
    return api_need_host(r, host) < 0 ? -1 : 0;
}

static const char *power_name(Kvc__Host__PowerState p)
{
    return p == KVC__HOST__POWER_STATE__POWERED_ON ? "POWERED_ON"
         : p == KVC__HOST__POWER_STATE__SUSPENDED ? "SUSPENDED" : "POWERED_OFF";
}

static json_t *snap_json(const Kvc__Host__SnapshotInfo *s)
{
    char id[16], when[32];
    time_t t = (time_t)s->created;
    struct tm tm;

    snprintf(id, sizeof id, "%u", s->id);
    if (!gmtime_r(&t, &tm) || !strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(when, sizeof when, "1970-01-01T00:00:00Z");
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:b}", "snapshot", id,
                     "name", s->name ? s->name : "", "description",
                     s->description ? s->description : "", "created", when,
                     "power_state", power_name(s->power_state), "memory", (int)s->memory,
                     "current", (int)s->current);
}

static void on_reply(void *arg, int err, const char *msg, const ProtobufCMessage *resp)
{
    struct snap_req *c = arg;

    if (err) {
        api_host_error(c->r, err, msg);
    } else if (c->method == KVC__HOST__METHOD__VM_SNAPSHOT_LIST) {
        const Kvc__Host__SnapshotList *l = (const Kvc__Host__SnapshotList *)resp;
        json_t *a = json_array();
        for (size_t i = 0; i < l->n_snapshots; i++)
            json_array_append_new(a, snap_json(l->snapshots[i]));
        api_reply(c->r, 200, a);
    } else if (c->method == KVC__HOST__METHOD__VM_SNAPSHOT_CREATE) {
        api_reply(c->r, 201, snap_json((const Kvc__Host__SnapshotInfo *)resp));
    } else if (c->method == KVC__HOST__METHOD__VM_SNAPSHOT_REVERT) {
        api_reply(c->r, 200, snap_json((const Kvc__Host__SnapshotInfo *)resp));
    } else {
        api_reply(c->r, 204, NULL);
    }
    free(c);
}

static void call_host(struct api_req *r, const char *host, uint32_t method,
                      Kvc__Host__SnapshotRequest *m)
{
    const ProtobufCMessageDescriptor *d =
        method == KVC__HOST__METHOD__VM_SNAPSHOT_LIST ? &kvc__host__snapshot_list__descriptor
        : method == KVC__HOST__METHOD__VM_SNAPSHOT_DELETE ? &kvc__host__status__descriptor
        : &kvc__host__snapshot_info__descriptor;
    struct snap_req *c = calloc(1, sizeof *c);
    int rc;

    if (!c)
        return api_error(r, 500, "ERROR", "out of memory");
    c->r = r;
    c->method = method;
    api_hold(r);
    rc = hostmgr_host_call(api_vpxd(r)->hm, host, method, &m->base, d, on_reply, c);
    if (rc < 0) {
        api_host_error(r, rc, NULL);
        free(c);
    }
}

/* NAME of at most MAX bytes, no control characters; or answered. */
static int check_text(struct api_req *r, const char *field, const char *s, size_t max,
                      bool nonempty)
{
    size_t n = strlen(s);

    if ((nonempty && !n) || n > max) {
        api_error(r, 400, "INVALID_ARGUMENT", "%s: %s%zu bytes, at most %zu", field,
                  n ? "" : "empty, or ", n, max);
        return -1;
    }
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            api_error(r, 400, "INVALID_ARGUMENT", "%s: no control characters", field);
            return -1;
        }
    return 0;
}

/* The {snapshot} id, or answered. */
static int snap_id(struct api_req *r, uint32_t *out)
{
    const char *s = api_param(r, "snapshot");
    char *end;
    unsigned long v;

    if (!s || !*s || *s < '0' || *s > '9' ||
        (errno = 0, v = strtoul(s, &end, 10), errno || *end || !v || v > UINT32_MAX)) {
        api_error(r, 400, "INVALID_ARGUMENT", "snapshot '%.32s' is not a snapshot id",
                  s ? s : "");
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

void api_vm_snapshot_list(struct api_req *r)
{
    Kvc__Host__SnapshotRequest m = KVC__HOST__SNAPSHOT_REQUEST__INIT;
    char host[VDB_ID_MAX], uuid[64];

    if (vm_where(r, host, sizeof host, uuid, sizeof uuid) < 0)
        return;
    m.vm_uuid = uuid;
    call_host(r, host, KVC__HOST__METHOD__VM_SNAPSHOT_LIST, &m);
}

void api_vm_snapshot_create(struct api_req *r)
{
    static const char *const fields[] = { "name", "description", "memory", NULL };
    Kvc__Host__SnapshotRequest m = KVC__HOST__SNAPSHOT_REQUEST__INIT;
    char host[VDB_ID_MAX], uuid[64];
    const char *name, *desc = NULL;
    bool memory = false;

    if (api_body_object(r, fields) < 0 ||
        api_field_str(r, api_body(r), "name", true, &name) < 0 ||
        api_field_str(r, api_body(r), "description", false, &desc) < 0 ||
        api_field_bool(r, api_body(r), "memory", false, &memory) < 0 ||
        check_text(r, "name", name, SNAP_NAME_MAX, true) < 0 ||
        (desc && check_text(r, "description", desc, SNAP_DESC_MAX, false) < 0))
        return;
    if (vm_where(r, host, sizeof host, uuid, sizeof uuid) < 0)
        return;
    m.vm_uuid = uuid;
    m.name = (char *)name;
    m.description = (char *)(desc ? desc : "");
    m.memory = memory;
    api_set_object(r, api_param(r, "vm"));
    call_host(r, host, KVC__HOST__METHOD__VM_SNAPSHOT_CREATE, &m);
}

static void by_id(struct api_req *r, uint32_t method)
{
    Kvc__Host__SnapshotRequest m = KVC__HOST__SNAPSHOT_REQUEST__INIT;
    char host[VDB_ID_MAX], uuid[64];
    uint32_t id;

    if (snap_id(r, &id) < 0 || vm_where(r, host, sizeof host, uuid, sizeof uuid) < 0)
        return;
    m.vm_uuid = uuid;
    m.snapshot = id;
    api_set_object(r, api_param(r, "vm"));
    call_host(r, host, method, &m);
}

void api_vm_snapshot_revert(struct api_req *r)
{
    by_id(r, KVC__HOST__METHOD__VM_SNAPSHOT_REVERT);
}

void api_vm_snapshot_delete(struct api_req *r)
{
    by_id(r, KVC__HOST__METHOD__VM_SNAPSHOT_DELETE);
}
