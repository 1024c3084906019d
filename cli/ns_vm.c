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

/* GET /api/kvc/host/vm-processes (a host's API: the VMs it runs):
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
    (void)a;
    int rc = kvc_ctx_request(ctx, "GET", "/api/kvc/host/vm-processes", NULL, &r, err, errlen);
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
