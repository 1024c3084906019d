/* /api/kvc/vm-processes: esxcli's `vm process list|kill` against vpxd.
 *
 *   GET  /api/kvc/vm-processes[?host=host-28]   the running VMs, from the
 *        inventory: [{world_id, process_id, vmx_cartel_id, uuid, display_name,
 *        config_file, host}]
 *   POST /api/kvc/vm-processes/{world}?action=kill {"type": "soft|hard|force"}
 *        soft: guest shutdown through tools; hard and force: power off (on the
 *        kvm backend both end the vmx at once, SIGKILL through vmkd; ESXi's
 *        force also skips the vmx's own clean-up, which kvcenter's vmx has no
 *        separate path for).  204 once the host has done it.
 *
 * A world id is derived from the VM's instance uuid exactly as hosts derive
 * it (hostd/ssh/hostapi.c), so the ids vpxd shows are the ones `esxcli vm
 * process list` prints on the host itself.  vpxd does not know the vmx's
 * process id: process_id is 0 here. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vpxd/api/api.h"
#include "vpxd/api/internal.h"
#include "vpxd/ha.h"
#include "vpxd/hostmgr.h"

/* As hostd's world_id(): the uuid's first 8 hex digits, seven digits. */
static long long world_id(const char *uuid)
{
    char hex[9];
    size_t n = 0;

    for (const char *p = uuid; p && *p && n < 8; p++)
        if (*p != '-')
            hex[n++] = *p;
    hex[n] = 0;
    return (long long)(strtoull(hex, NULL, 16) % 8999999ULL) + 1000001LL;
}

static int running(struct api_req *r, const char *host, json_t **rows)
{
    return vdb_query_json(api_db(r), rows,
        "SELECT v.id AS vm, e.name, v.instance_uuid, v.config_path, v.host FROM vm v"
        " JOIN entity e ON e.id = v.id WHERE v.power_state = 'POWERED_ON'"
        " AND (? IS NULL OR v.host = ?) ORDER BY e.rowid", "ss", host, host);
}

void api_vm_process_list(struct api_req *r)
{
    const char *host = api_query(r, "host");
    json_t *rows = NULL, *row, *out;
    size_t i;
    int rc;

    if (host && !vdb_entity_exists(api_db(r), host, "host"))
        return api_error(r, 404, "NOT_FOUND", "host %s not found", host);
    if ((rc = running(r, host, &rows)) < 0)
        return api_error_errno(r, rc, "virtual machines");
    rows = api_filter_visible(r, rows, "vm");
    out = json_array();
    json_array_foreach(rows, i, row) {
        const char *uuid = json_string_value(json_object_get(row, "instance_uuid"));
        long long w = world_id(uuid);
        json_array_append_new(out, json_pack("{s:I, s:I, s:I, s:s?, s:O?, s:O?, s:O?, s:O?}",
            "world_id", (json_int_t)w, "process_id", (json_int_t)0,
            "vmx_cartel_id", (json_int_t)(w - 1), "uuid", uuid,
            "display_name", json_object_get(row, "name"),
            "config_file", json_object_get(row, "config_path"),
            "host", json_object_get(row, "host"), "vm", json_object_get(row, "vm")));
    }
    json_decref(rows);
    api_reply(r, 200, out);
}

static void on_done(void *arg, int err, const char *msg, const struct hostmgr_vm_info *vm)
{
    struct api_req *r = arg;

    (void)vm;
    if (err == -EALREADY)
        err = 0;                        /* it stopped meanwhile: what was asked */
    if (err)
        api_host_error(r, err, msg);
    else
        api_reply(r, 204, NULL);
}

void api_vm_process_kill(struct api_req *r)
{
    static const char *const fields[] = { "type", NULL };
    static const char *const types[] = { "soft", "hard", "force", NULL };
    const char *ws = api_param(r, "world"), *type = NULL;
    json_t *rows = NULL, *row, *hit = NULL;
    char *end = NULL;
    long long w = ws ? strtoll(ws, &end, 10) : 0;
    size_t i;
    int rc, k = -1;

    if (!ws || !*ws || *end || w <= 0)
        return api_error(r, 400, "INVALID_ARGUMENT", "'%.32s' is not a world id",
                         ws ? ws : "");
    if ((rc = running(r, NULL, &rows)) < 0)
        return api_error_errno(r, rc, "virtual machines");
    json_array_foreach(rows, i, row)
        if (!hit && world_id(json_string_value(json_object_get(row, "instance_uuid"))) == w)
            hit = row;
    if (!hit) {
        json_decref(rows);
        /* A user who may power nothing off learns nothing about world ids. */
        if (api_require(r, "VirtualMachine.Interact.PowerOff", NULL) < 0)
            return;
        return api_error(r, 404, "NOT_FOUND", "no running virtual machine has world id %lld", w);
    }
    char vm[VDB_ID_MAX], host[VDB_ID_MAX], uuid[64];
    snprintf(vm, sizeof vm, "%s", json_string_value(json_object_get(hit, "vm")));
    snprintf(host, sizeof host, "%s", json_string_value(json_object_get(hit, "host")));
    snprintf(uuid, sizeof uuid, "%s", json_string_value(json_object_get(hit, "instance_uuid")));
    json_decref(rows);
    if (api_require(r, "VirtualMachine.Interact.PowerOff", vm) < 0)
        return;
    if (api_body_object(r, fields) < 0)
        return;
    if (api_field_str(r, api_body(r), "type", true, &type) < 0)
        return;
    for (int t = 0; types[t]; t++)
        if (!strcmp(types[t], type))
            k = t;
    if (k < 0)
        return api_error(r, 400, "INVALID_ARGUMENT", "type: '%.32s' is not soft, hard or force",
                         type);
    if (api_need_host(r, host) < 0)
        return;
    api_set_object(r, vm);
    /* Stopped by a user: HA must not restart it. */
    ha_vm_user_power(api_vpxd(r), vm, false);
    api_hold(r);
    rc = hostmgr_vm_power(api_vpxd(r)->hm, host, uuid,
                          k == 0 ? HOSTMGR_GUEST_SHUTDOWN : HOSTMGR_POWER_OFF, on_done, r);
    if (rc < 0)
        api_host_error(r, rc, NULL);
}
