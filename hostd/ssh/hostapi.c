/* The host's API, REST-shaped (see ssh.h): the same METHOD PATH -> status
 * and JSON that the HTTPS endpoint (rest.c) sends kvcli, answered from the
 * host's own state on the loop thread.  The SSH shell calls it directly, so
 * the command table's commands run unchanged over either transport.
 *
 *   GET /api/appliance/system/version            {"product","version","build",...}
 *   GET /api/appliance/networking/dns/hostname   "esx-1"
 *   GET /api/kvc/host/vm-processes               running VMs (esxcli vm process list)
 *
 * Errors are the Automation API's ({"error_type", "messages"}). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonutil.h"
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
                                           "process_id", (json_int_t)0,
                                           "vmx_cartel_id", (json_int_t)(w - 1),
                                           "uuid", vm->uuid, "display_name", vm->name,
                                           "config_file", vm->config));
    }
    return a;
}

void
hostd_api_call(struct hostd_host *h, const char *method, const char *path,
               const json_t *body, long *status, json_t **reply)
{
    char route[256];
    size_t n = strcspn(path, "?#");

    (void)body;
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
    if (!strcmp(route, "/api/appliance/system/version") && get) {
        *status = 200;
        *reply = version();
    } else if (!strcmp(route, "/api/appliance/networking/dns/hostname") && get) {
        *status = 200;
        *reply = json_string(h->name);
    } else if (!strcmp(route, "/api/kvc/host/vm-processes") && get) {
        *status = 200;
        *reply = vm_processes(h);
    } else {
        char msg[400];
        snprintf(msg, sizeof msg, "%s %s: no such resource on this host", method, route);
        error(status, reply, 404, "NOT_FOUND", msg);
        return;
    }
    if (!*reply)
        error(status, reply, 500, "ERROR", "out of memory");
}
