/* kvcli `vm` namespace. */
#include "commands.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const struct kvc_field process_fields[] = {
    { "World ID", KVC_F_INT },
    { "Process ID", KVC_F_INT },
    { "VMX Cartel ID", KVC_F_INT },
    { "UUID", KVC_F_STRING },
    { "Display Name", KVC_F_STRING },
    { "Config File", KVC_F_STRING },
    { NULL },
};
/* esxcli: one block per running VM, headed by its name. */
const struct kvc_shape kvc_shape_vm_process_list = {
    "VirtualMachine", process_fields, KVC_LIST_BLOCKS, "Display Name",
};

/* GET /api/kvc/vm-processes[?host=H]: on a host the VMs it runs, on vpxd
 * the running VMs of its inventory (--host: of one host):
 * [{"world_id", "process_id", "vmx_cartel_id", "uuid", "display_name",
 *   "config_file"}]. */
int
kvc_run_vm_process_list(struct kvc_ctx *ctx, const struct kvc_args *a, json_t **res,
                        char *err, size_t errlen)
{
    static const char *const map[][2] = {
        { "WorldID", "world_id" }, { "ProcessID", "process_id" },
        { "VMXCartelID", "vmx_cartel_id" }, { "UUID", "uuid" },
        { "DisplayName", "display_name" }, { "ConfigFile", "config_file" },
    };
    json_t *r = NULL;
    char path[128];
    const char *host = kvc_arg_str(a, "host");
    if (host && !kvc_ns_valid_id(host)) {
        snprintf(err, errlen, "While processing '--host'. '%s' is not a host id (host-28).", host);
        return -EINVAL;
    }
    snprintf(path, sizeof path, "/api/kvc/vm-processes%s%s", host ? "?host=" : "",
             host ? host : "");
    int rc = kvc_ctx_request(ctx, "GET", path, NULL, &r, err, errlen);
    if (rc)
        return rc;
    if (!json_is_array(r)) {
        json_decref(r);
        snprintf(err, errlen, "the server's VM process list is not an array");
        return -EPROTO;
    }
    json_t *out = json_array();
    size_t i;
    json_t *vm;
    json_array_foreach(r, i, vm) {
        json_t *o = json_object();
        for (size_t k = 0; k < sizeof map / sizeof map[0]; k++) {
            json_t *v = json_object_get(vm, map[k][1]);
            if (v)
                json_object_set(o, map[k][0], v);
        }
        json_array_append_new(out, o);
    }
    json_decref(r);
    *res = out;
    return 0;
}

/* POST /api/kvc/vm-processes/{world}?action=kill {"type"}: prints nothing,
 * as esxcli. */
int
kvc_run_vm_process_kill(struct kvc_ctx *ctx, const struct kvc_args *a, json_t **res, char *err,
                        size_t errlen)
{
    static const char *const types[] = { "soft", "hard", "force" };
    char path[96];
    json_t *r = NULL;
    int64_t t = kvc_arg_int(a, "type", 0);
    json_t *body = json_pack("{s:s}", "type", types[t >= 0 && t < 3 ? t : 0]);
    snprintf(path, sizeof path, "/api/kvc/vm-processes/%lld?action=kill",
             (long long)kvc_arg_int(a, "world-id", 0));
    int rc = kvc_ctx_request(ctx, "POST", path, body, &r, err, errlen);
    json_decref(body);
    json_decref(r);
    *res = NULL;
    return rc;
}

/* ---- vCenter-level VM commands (vpxd: /api/vcenter/vm) ---- */

static const struct kvc_field vm_create_fields[] = {
    { "VM ID", KVC_F_STRING },
    { NULL },
};
const struct kvc_shape kvc_shape_vm_create = { "VmCreate", vm_create_fields, KVC_LIST_TABLE,
                                               NULL };

static const struct kvc_field vm_power_fields[] = {
    { "Power State", KVC_F_STRING },
    { NULL },
};
const struct kvc_shape kvc_shape_vm_power_get = { "VmPowerGet", vm_power_fields,
                                                  KVC_LIST_TABLE, NULL };

/* POST /api/vcenter/vm {name, guest_OS, placement{host|cluster, datastore},
 * cpu{count}, memory{size_MiB}} -> "vm-42". */
int
kvc_run_vm_create(struct kvc_ctx *ctx, const struct kvc_args *a, json_t **res, char *err,
                  size_t errlen)
{
    static const char *const where[][2] = {
        { "host", "host" }, { "cluster", "cluster" }, { "datastore", "datastore" },
    };
    json_t *placement = json_object();
    for (size_t i = 0; i < sizeof where / sizeof where[0]; i++) {
        const char *v = kvc_arg_str(a, where[i][0]);
        if (!v)
            continue;
        if (!kvc_ns_valid_id(v)) {
            json_decref(placement);
            snprintf(err, errlen, "While processing '--%s'. '%s' is not an inventory id.",
                     where[i][0], v);
            return -EINVAL;
        }
        json_object_set_new(placement, where[i][1], json_string(v));
    }
    json_t *body = json_pack("{s:s, s:s, s:o, s:{s:I}, s:{s:I}}",
        "name", kvc_arg_str(a, "name"),
        "guest_OS", kvc_arg_str(a, "guest-os") ? kvc_arg_str(a, "guest-os") : "OTHER_LINUX_64",
        "placement", placement,
        "cpu", "count", (json_int_t)kvc_arg_int(a, "cpus", 1),
        "memory", "size_MiB", (json_int_t)kvc_arg_int(a, "memory", 64));
    json_t *r = NULL;
    int rc = kvc_ctx_request(ctx, "POST", "/api/vcenter/vm", body, &r, err, errlen);
    json_decref(body);
    if (rc)
        return rc;
    if (!json_is_string(r)) {
        json_decref(r);
        snprintf(err, errlen, "the server's reply to VM create is not a VM id");
        return -EPROTO;
    }
    *res = json_pack("{s:o}", "VMID", r);
    return 0;
}

static int
vm_path(const struct kvc_args *a, const char *suffix, char *path, size_t len, char *err,
        size_t errlen)
{
    const char *id = kvc_arg_str(a, "vm");
    if (!kvc_ns_valid_id(id)) {
        snprintf(err, errlen, "While processing '--vm'. '%s' is not a VM id (vm-42).", id);
        return -EINVAL;
    }
    snprintf(path, len, "/api/vcenter/vm/%s%s", id, suffix);
    return 0;
}

/* vm power on|off|reset|suspend: waits for the host, prints nothing. */
static int
vm_power(struct kvc_ctx *ctx, const struct kvc_args *a, const char *action, json_t **res,
         char *err, size_t errlen)
{
    char path[160], suffix[40];
    json_t *r = NULL;
    snprintf(suffix, sizeof suffix, "/power?action=%s", action);
    int rc = vm_path(a, suffix, path, sizeof path, err, errlen);
    if (rc)
        return rc;
    rc = kvc_ctx_request(ctx, "POST", path, NULL, &r, err, errlen);
    json_decref(r);
    *res = NULL;
    return rc;
}

int
kvc_run_vm_power_on(struct kvc_ctx *c, const struct kvc_args *a, json_t **res, char *e, size_t n)
{
    return vm_power(c, a, "start", res, e, n);
}

int
kvc_run_vm_power_off(struct kvc_ctx *c, const struct kvc_args *a, json_t **res, char *e, size_t n)
{
    return vm_power(c, a, "stop", res, e, n);
}

int
kvc_run_vm_power_reset(struct kvc_ctx *c, const struct kvc_args *a, json_t **res, char *e,
                       size_t n)
{
    return vm_power(c, a, "reset", res, e, n);
}

int
kvc_run_vm_power_suspend(struct kvc_ctx *c, const struct kvc_args *a, json_t **res, char *e,
                         size_t n)
{
    return vm_power(c, a, "suspend", res, e, n);
}

/* GET /api/vcenter/vm/{vm}/power -> {"state": "POWERED_ON"}. */
int
kvc_run_vm_power_get(struct kvc_ctx *ctx, const struct kvc_args *a, json_t **res, char *err,
                     size_t errlen)
{
    char path[160];
    json_t *r = NULL;
    int rc = vm_path(a, "/power", path, sizeof path, err, errlen);
    if (rc)
        return rc;
    rc = kvc_ctx_request(ctx, "GET", path, NULL, &r, err, errlen);
    if (rc)
        return rc;
    if (!json_is_string(json_object_get(r, "state"))) {
        json_decref(r);
        snprintf(err, errlen, "the server's power state reply has no state");
        return -EPROTO;
    }
    *res = json_pack("{s:O}", "PowerState", json_object_get(r, "state"));
    json_decref(r);
    return 0;
}
