/* kvcli `hardware` namespace: a host's CPU and memory as vpxd recorded them
 * from the host (GET /api/kvc/host/{host}). */
#include "commands.h"

#include <errno.h>
#include <stdio.h>

static const struct kvc_field cpu_fields[] = {
    { "CPU Cores", KVC_F_INT },
    { "CPU MHz", KVC_F_INT },
    { NULL },
};
const struct kvc_shape kvc_shape_hardware_cpu_global_get = {
    "CpuGlobalGet", cpu_fields, KVC_LIST_TABLE, NULL,
};

static const struct kvc_field mem_fields[] = {
    { "Physical Memory", KVC_F_STRING },
    { NULL },
};
const struct kvc_shape kvc_shape_hardware_memory_get = {
    "MemoryGet", mem_fields, KVC_LIST_TABLE, NULL,
};

/* The host's record, for --host (shared with `system maintenanceMode`). */
int
kvc_ns_host_get(struct kvc_ctx *ctx, const struct kvc_args *a, json_t **host, char *err,
                size_t errlen)
{
    const char *id = kvc_arg_str(a, "host");
    char path[128];
    if (!kvc_ns_valid_id(id)) {
        snprintf(err, errlen, "While processing '--host'. '%s' is not a host id (host-28).", id);
        return -EINVAL;
    }
    snprintf(path, sizeof path, "/api/kvc/host/%s", id);
    int rc = kvc_ctx_request(ctx, "GET", path, NULL, host, err, errlen);
    if (rc)
        return rc;
    if (!json_is_object(*host)) {
        json_decref(*host);
        *host = NULL;
        snprintf(err, errlen, "the server's host record is not an object");
        return -EPROTO;
    }
    return 0;
}

int
kvc_run_hardware_cpu_global_get(struct kvc_ctx *ctx, const struct kvc_args *a, json_t **res,
                                char *err, size_t errlen)
{
    json_t *h = NULL;
    int rc = kvc_ns_host_get(ctx, a, &h, err, errlen);
    if (rc)
        return rc;
    *res = json_pack("{s:I, s:I}",
                     "CPUCores", (json_int_t)json_integer_value(json_object_get(h, "cpu_cores")),
                     "CPUMHz", (json_int_t)json_integer_value(json_object_get(h, "cpu_mhz")));
    json_decref(h);
    return 0;
}

/* esxcli: "Physical Memory: 17179869184 Bytes". */
int
kvc_run_hardware_memory_get(struct kvc_ctx *ctx, const struct kvc_args *a, json_t **res,
                            char *err, size_t errlen)
{
    json_t *h = NULL;
    int rc = kvc_ns_host_get(ctx, a, &h, err, errlen);
    if (rc)
        return rc;
    *res = json_pack("{s:o}", "PhysicalMemory",
                     json_sprintf("%lld Bytes",
                                  (long long)json_integer_value(json_object_get(h, "memory_bytes"))));
    json_decref(h);
    return 0;
}
