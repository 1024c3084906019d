/* The host's API, REST-shaped (see ssh.h): the same METHOD PATH -> status
 * and JSON that the HTTPS endpoint (rest.c) sends kvcli, answered from the
 * host's own state on the loop thread.  The SSH shell calls it directly, so
 * the command table's commands run unchanged over either transport.
 *
 *   GET /api/appliance/system/version            {"product","version","build",...}
 *   GET /api/appliance/networking/dns/hostname   "esx-1"
 *   GET /api/kvc/host/vm-processes               running VMs (esxcli vm process list;
 *                                                also /api/kvc/vm-processes, vpxd's path)
 *   POST /api/kvc/vm-processes/WORLD?action=kill {"type": "soft|hard|force"}
 *                                                soft: guest shutdown; hard, force:
 *                                                power off (esxcli vm process kill)
 *   GET /api/vcenter/datastore[/NAME]            the host's datastores, named by
 *                                                their name (the Automation API's
 *                                                list and detail shapes)
 *   GET|POST /api/kvc/host/vswitches, DELETE .../NAME
 *   GET|POST /api/kvc/host/portgroups, DELETE|PATCH .../NAME
 *                                                standard vSwitches and port
 *                                                groups (hostd/vswitch.c)
 *
 * Errors are the Automation API's ({"error_type", "messages"}). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "jsonutil.h"
#include "hostd/backend.h"
#include "hostd/hostd.h"
#include "hostd/ssh/ssh.h"

static void
error(long *status, json_t **reply, long st, const char *type, const char *msg)
{
    *status = st;
    *reply = kvc_json_api_error(type, NULL, "%s", msg);
}

static json_t *
version(void)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:i, s:i}", "product", "kvcenter host",
                     "version", HOSTD_VERSION, "build", PACKAGE_VERSION,
                     "type", "host", "update", 0, "patch", 0);
}

/* hostd/vswitch.c and host.c; weak because this file is also linked into a unit test
 * without the rest of hostd (tests/unit/test_hostd_shell.c). */
extern int hostd_vswitch_api(struct hostd_host *, const char *, const char *, const json_t *,
                             long *, json_t **) __attribute__((weak));
extern int hostd_vm_power_start(struct hostd_host *, struct hostd_vm *, Kvc__Host__PowerOp,
                                const char **) __attribute__((weak));

/* A VM's world id: stable for its whole life (from its uuid), seven digits
 * like ESXi's. */
static long long
world_id(const struct hostd_vm *vm)
{
    char hex[9];
    size_t n = 0;
    for (const char *p = vm->uuid; *p && n < 8; p++)
        if (*p != '-')
            hex[n++] = *p;
    hex[n] = 0;
    return (long long)(strtoull(hex, NULL, 16) % 8999999ULL) + 1000001LL;
}

static json_t *
vm_processes(struct hostd_host *h)
{
    json_t *a = json_array();
    for (struct hostd_vm *vm = h->vms; a && vm; vm = vm->next) {
        if (vm->power != VM_ON)
            continue;
        long long w = world_id(vm);
        json_array_append_new(a, json_pack("{s:I, s:I, s:I, s:s, s:s, s:s}",
                                           "world_id", (json_int_t)w,
                                           "process_id",
                                           (json_int_t)(h->be && h->be->vm_pid ? h->be->vm_pid(h, vm) : 0),
                                           "vmx_cartel_id", (json_int_t)(w - 1),
                                           "uuid", vm->uuid, "display_name", vm->name,
                                           "config_file", vm->config));
    }
    return a;
}

/* esxcli vm process kill: 204 once started (a kvm VM stops shortly after). */
static void
vm_kill(struct hostd_host *h, const char *world, const char *query, const json_t *body,
        long *status, json_t **reply)
{
    static const char *const types[] = { "soft", "hard", "force", NULL };
    const char *type = json_string_value(json_object_get(body, "type"));
    char *end = NULL;
    long long w = strtoll(world, &end, 10);
    struct hostd_vm *vm;
    const char *why = NULL;
    int k = -1, rc;

    if (!query || strcmp(query, "action=kill")) {
        error(status, reply, 400, "INVALID_ARGUMENT", "want ?action=kill");
        return;
    }
    if (!*world || *end || w <= 0) {
        error(status, reply, 400, "INVALID_ARGUMENT", "not a world id");
        return;
    }
    for (int t = 0; type && types[t]; t++)
        if (!strcmp(type, types[t]))
            k = t;
    if (k < 0 || !json_is_object(body) || json_object_size(body) != 1) {
        error(status, reply, 400, "INVALID_ARGUMENT", "want {\"type\": \"soft|hard|force\"}");
        return;
    }
    for (vm = h->vms; vm; vm = vm->next)
        if (vm->power == VM_ON && world_id(vm) == w)
            break;
    if (!vm) {
        error(status, reply, 404, "NOT_FOUND", "no running virtual machine has that world id");
        return;
    }
    if (!hostd_vm_power_start) {
        error(status, reply, 501, "UNSUPPORTED", "no power operations in this build");
        return;
    }
    rc = hostd_vm_power_start(h, vm, k == 0 ? KVC__HOST__POWER_OP__GUEST_SHUTDOWN
                                            : KVC__HOST__POWER_OP__POWER_OFF, &why);
    if (rc == -EALREADY)
        rc = 0;
    if (rc) {
        error(status, reply, rc == -EBUSY ? 400 : 500,
              rc == -EBUSY ? "NOT_ALLOWED_IN_CURRENT_STATE" : "ERROR",
              why ? why : strerror(-rc));
        return;
    }
    *status = 204;
    *reply = NULL;
}

static json_t *
datastore(const struct hostd_datastore *ds, bool detail)
{
    struct statvfs sv;
    json_int_t cap = 0, free_b = 0;
    bool ok = statvfs(ds->path, &sv) == 0;
    if (ok) {
        cap = (json_int_t)((uint64_t)sv.f_blocks * sv.f_frsize);
        free_b = (json_int_t)((uint64_t)sv.f_bavail * sv.f_frsize);
    }
    json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:I}", "datastore", ds->name, "name", ds->name,
                          "type", ds->shared ? "NFS" : "DIR", "capacity", cap,
                          "free_space", free_b);
    if (o && detail)
        json_object_set_new(o, "accessible", json_boolean(ok));
    return o;
}

void
hostd_api_call(struct hostd_host *h, const char *method, const char *path,
               const json_t *body, long *status, json_t **reply)
{
    char route[256];
    size_t n = strcspn(path, "?#");

    *reply = NULL;
    if (n >= sizeof route) {
        error(status, reply, 404, "NOT_FOUND", "no such resource");
        return;
    }
    memcpy(route, path, n);
    route[n] = 0;
    while (n > 1 && route[n - 1] == '/')
        route[--n] = 0;
    if (h->crashed) {
        error(status, reply, 503, "SERVICE_UNAVAILABLE", "the host is down");
        return;
    }
    bool get = !strcmp(method, "GET");
    if (hostd_vswitch_api && hostd_vswitch_api(h, method, route, body, status, reply))
        return;
    if (!strcmp(route, "/api/appliance/system/version") && get) {
        *status = 200;
        *reply = version();
    } else if (!strcmp(route, "/api/appliance/networking/dns/hostname") && get) {
        *status = 200;
        *reply = json_string(h->name);
    } else if ((!strcmp(route, "/api/kvc/host/vm-processes") ||
                !strcmp(route, "/api/kvc/vm-processes")) && get) {
        *status = 200;
        *reply = vm_processes(h);
    } else if (!strncmp(route, "/api/kvc/vm-processes/", 22) && !strcmp(method, "POST")) {
        vm_kill(h, route + 22, path[n] == '?' ? path + n + 1 : NULL, body, status, reply);
        return;
    } else if (!strcmp(route, "/api/vcenter/datastore") && get) {
        *status = 200;
        *reply = json_array();
        for (size_t i = 0; *reply && i < h->n_ds; i++)
            json_array_append_new(*reply, datastore(&h->ds[i], false));
    } else if (!strncmp(route, "/api/vcenter/datastore/", 23) && get) {
        for (size_t i = 0; i < h->n_ds && !*reply; i++)
            if (!strcmp(route + 23, h->ds[i].name))
                *reply = datastore(&h->ds[i], true);
        if (!*reply) {
            error(status, reply, 404, "NOT_FOUND", "no such datastore on this host");
            return;
        }
        *status = 200;
    } else {
        char msg[400];
        snprintf(msg, sizeof msg, "%s %s: no such resource on this host", method, route);
        error(status, reply, 404, "NOT_FOUND", msg);
        return;
    }
    if (!*reply)
        error(status, reply, 500, "ERROR", "out of memory");
}
