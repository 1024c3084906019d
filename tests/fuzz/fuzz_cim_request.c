/* Fuzz target: one CIM-XML request body through the whole request handler
 * (parse, dispatch, reply), against the real /proc and a fixed VM list. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>

#include "hostd/cim/cim.h"

static bool
auth_never(void *ctx, const char *u, const char *p)
{
    return false;
}

static int
two_vms(void *ctx, struct kvc_cim_vm **out, size_t *n)
{
    struct kvc_cim_vm *v = calloc(2, sizeof *v);
    if (!v)
        return -12;
    strcpy(v[0].name, "web01");
    strcpy(v[0].uuid, "564d0000-0000-0000-0000-000000000001");
    strcpy(v[0].power_state, "poweredOn");
    v[0].memory_mb = 2048;
    v[0].vcpus = 2;
    strcpy(v[1].name, "db<&>01");
    strcpy(v[1].power_state, "poweredOff");
    *out = v;
    *n = 2;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct kvc_cim_provider pv = {
        .check_auth = auth_never, .list_vms = two_vms, .hostname = "fuzzhost",
    };
    static bool init;
    if (!init) {
        xmlInitParser();
        init = true;
    }
    struct kvc_cim_reply rep;
    /* The first byte picks the CIMMethod header, so header checks are
     * covered too. */
    static const char *const methods[] = { NULL, "EnumerateInstances", "GetInstance",
                                           "EnumerateClassNames", "EnumerateInstanceNames" };
    const char *m = size ? methods[data[0] % 5] : NULL;
    kvc_cim_handle(&pv, m, "root%2Fcimv2", (const char *)data, size, &rep);
    free(rep.body);
    return 0;
}
