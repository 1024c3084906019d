/* The host's standard vSwitches and port groups: the model hostd reports
 * (its inventory's networks are the port groups), the host API and RPC
 * calls that change it (`network vswitch standard ...`), and how each
 * backend applies a change.
 *
 * sim: this model is the host's switch configuration; it is kept in
 *   STATE_DIR/vswitches.json (written on every change) and, when that file
 *   does not exist yet, built from the --network options.
 * kvm: vmkd hosts the data plane (docs/vswitch.md) and is the truth.  At
 *   start-up (before the loop runs) hostd adds to vmkd the switches and port
 *   groups of its own model that vmkd lacks, then takes vmkd's list as the
 *   model.  Afterwards a change is checked here against the model (same
 *   rules as vmkd), applied to it and sent to vmkd, which applies it live;
 *   should vmkd refuse it anyway, hostd logs why and re-reads vmkd's list.
 *   The host API answers from the model at once: the shell's commands run
 *   on the loop thread and cannot wait for vmkd (docs/vswitch.md).
 *
 * Rules (as ESXi): names 1-63 characters, no '/', '\' or control
 * characters; a port group name is unique on the host; a vSwitch with port
 * groups cannot be removed, nor a port group with powered-on VMs (EBUSY);
 * VLAN 0-4095 (4095: all VLANs, a trunk); ports 8-4096 (128 by default);
 * MTU 68-9000 (1500); at most 64 vSwitches and 512 port groups (-ENOSPC). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "jsonutil.h"
#include "log.h"
#include "rpc.h"
#include "hostd/backend.h"
#include "hostd/hostd.h"
#include "vmkd.pb-c.h"

KVC_LOG_MODULE(vswitch);

#define VSW_FILE "vswitches.json"
#define VSW_PORTS_DEFAULT 128
#define VSW_MTU_DEFAULT 1500
#define VSW_NAME_MAX 64
#define VMKD_CALL_MS 10000
#define VSW_MAX_SWITCHES 64             /* vmkd's limits (vmkd_net.h) */
#define VSW_MAX_PORTGROUPS 512

bool
hostd_vswitch_valid_name(const char *s)
{
    size_t len = s ? strlen(s) : 0;

    if (!len || len >= VSW_NAME_MAX)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f || *s == '/' || *s == '\\')
            return false;
    return true;
}

static struct hostd_vswitch *
sw_find(struct hostd_host *h, const char *name)
{
    for (size_t i = 0; i < h->n_vsw; i++)
        if (!strcmp(h->vsw[i].name, name))
            return &h->vsw[i];
    return NULL;
}

static struct hostd_network *
pg_find(struct hostd_host *h, const char *name)
{
    for (size_t i = 0; i < h->n_nets; i++)
        if (!strcmp(h->nets[i].name, name))
            return &h->nets[i];
    return NULL;
}

/* Powered-on VMs on port group NAME: esxcli's "Active Clients". */
static unsigned
pg_clients(const struct hostd_host *h, const char *name)
{
    unsigned n = 0;
    for (const struct hostd_vm *vm = h->vms; vm; vm = vm->next)
        if (vm->power == VM_ON && vm->network && !strcmp(vm->network, name))
            n++;
    return n;
}

static unsigned
sw_used(const struct hostd_host *h, const char *sw)
{
    unsigned n = 0;
    for (size_t i = 0; i < h->n_nets; i++)
        if (!strcmp(h->nets[i].vswitch, sw))
            n += pg_clients(h, h->nets[i].name);
    return n;
}

/* ---- the model ---------------------------------------------------------- */

static void
model_clear(struct hostd_host *h)
{
    for (size_t i = 0; i < h->n_vsw; i++)
        free(h->vsw[i].name);
    free(h->vsw);
    h->vsw = NULL;
    h->n_vsw = 0;
    for (size_t i = 0; i < h->n_nets; i++) {
        free(h->nets[i].name);
        free(h->nets[i].vswitch);
    }
    free(h->nets);
    h->nets = NULL;
    h->n_nets = 0;
}

static int
model_add_sw(struct hostd_host *h, const char *name, uint32_t ports, uint32_t mtu)
{
    struct hostd_vswitch *a = realloc(h->vsw, (h->n_vsw + 1) * sizeof *a);
    if (!a)
        return -ENOMEM;
    h->vsw = a;
    a[h->n_vsw].name = strdup(name);
    a[h->n_vsw].ports = ports ? ports : VSW_PORTS_DEFAULT;
    a[h->n_vsw].mtu = mtu ? mtu : VSW_MTU_DEFAULT;
    if (!a[h->n_vsw].name)
        return -ENOMEM;
    h->n_vsw++;
    return 0;
}

static int
model_add_pg(struct hostd_host *h, const char *name, const char *sw, uint32_t vlan)
{
    struct hostd_network *a = realloc(h->nets, (h->n_nets + 1) * sizeof *a);
    if (!a)
        return -ENOMEM;
    h->nets = a;
    a[h->n_nets].name = strdup(name);
    a[h->n_nets].vswitch = strdup(sw);
    a[h->n_nets].vlan = vlan;
    if (!a[h->n_nets].name || !a[h->n_nets].vswitch) {
        free(a[h->n_nets].name);
        free(a[h->n_nets].vswitch);
        return -ENOMEM;
    }
    h->n_nets++;
    return 0;
}

static int
save(struct hostd_host *h)
{
    json_t *o = json_pack("{s:[], s:[]}", "vswitches", "portgroups");
    int rc = -ENOMEM;
    char *text;

    if (!o)
        return -ENOMEM;
    for (size_t i = 0; i < h->n_vsw; i++)
        json_array_append_new(json_object_get(o, "vswitches"),
                              json_pack("{s:s, s:I, s:I}", "name", h->vsw[i].name,
                                        "ports", (json_int_t)h->vsw[i].ports,
                                        "mtu", (json_int_t)h->vsw[i].mtu));
    for (size_t i = 0; i < h->n_nets; i++)
        json_array_append_new(json_object_get(o, "portgroups"),
                              json_pack("{s:s, s:s, s:I}", "name", h->nets[i].name,
                                        "vswitch", h->nets[i].vswitch,
                                        "vlan", (json_int_t)h->nets[i].vlan));
    if ((text = json_dumps(o, JSON_INDENT(1)))) {
        size_t n = strlen(text);
        char *line = realloc(text, n + 2);
        if (line) {
            text = line;
            memcpy(text + n, "\n", 2);
            rc = hostd_state_write(h->state_dir, VSW_FILE, text);
        }
        free(text);
    }
    json_decref(o);
    if (rc)
        kvc_err("%s: %s/%s: %s", h->name, h->state_dir, VSW_FILE, strerror(-rc));
    return rc;
}

/* The model from STATE_DIR/vswitches.json.  -ENOENT: no file yet. */
static int
load(struct hostd_host *h)
{
    char path[PATH_MAX + 32];
    json_error_t je;
    json_t *o, *a, *v;
    size_t i;
    int rc = 0;

    snprintf(path, sizeof path, "%s/%s", h->state_dir, VSW_FILE);
    if (!(o = json_load_file(path, 0, &je)))
        return access(path, F_OK) ? -ENOENT : -EINVAL;
    model_clear(h);
    a = json_object_get(o, "vswitches");
    json_array_foreach(a, i, v) {
        const char *name = json_string_value(json_object_get(v, "name"));
        if (rc == 0 && hostd_vswitch_valid_name(name) && !sw_find(h, name))
            rc = model_add_sw(h, name,
                              (uint32_t)json_integer_value(json_object_get(v, "ports")),
                              (uint32_t)json_integer_value(json_object_get(v, "mtu")));
    }
    a = json_object_get(o, "portgroups");
    json_array_foreach(a, i, v) {
        const char *name = json_string_value(json_object_get(v, "name"));
        const char *sw = json_string_value(json_object_get(v, "vswitch"));
        json_int_t vlan = json_integer_value(json_object_get(v, "vlan"));
        if (rc == 0 && hostd_vswitch_valid_name(name) && sw && sw_find(h, sw) &&
            !pg_find(h, name) && vlan >= 0 && vlan <= 4095)
            rc = model_add_pg(h, name, sw, (uint32_t)vlan);
    }
    json_decref(o);
    return rc;
}

int
hostd_vswitch_init(struct hostd_host *h)
{
    int rc = load(h);

    if (rc == 0) {
        kvc_info("%s: %zu vSwitch(es), %zu port group(s) from %s", h->name, h->n_vsw,
                 h->n_nets, VSW_FILE);
        return 0;
    }
    if (rc != -ENOENT) {
        kvc_err("%s: %s/%s: %s", h->name, h->state_dir, VSW_FILE, strerror(-rc));
        return rc;
    }
    /* First start: the switches the --network options name, vSwitch0 always. */
    if ((rc = model_add_sw(h, "vSwitch0", 0, 0)))
        return rc;
    for (size_t i = 0; i < h->n_nets; i++)
        if (!sw_find(h, h->nets[i].vswitch) &&
            (rc = model_add_sw(h, h->nets[i].vswitch, 0, 0)))
            return rc;
    return 0;
}

void
hostd_vswitch_fini(struct hostd_host *h)
{
    for (size_t i = 0; i < h->n_vsw; i++)
        free(h->vsw[i].name);
    free(h->vsw);
    h->vsw = NULL;
    h->n_vsw = 0;
}

/* ---- kvm: vmkd ---------------------------------------------------------- */

static int
model_from_vmkd(struct hostd_host *h, const Kvc__Vmkd__VswitchList *l)
{
    int rc = 0;

    model_clear(h);
    for (size_t i = 0; rc == 0 && i < l->n_vswitches; i++)
        rc = model_add_sw(h, l->vswitches[i]->name, l->vswitches[i]->ports,
                          l->vswitches[i]->mtu);
    for (size_t i = 0; rc == 0 && i < l->n_portgroups; i++)
        rc = model_add_pg(h, l->portgroups[i]->name, l->portgroups[i]->vswitch,
                          l->portgroups[i]->vlan);
    return rc;
}

static bool
vmkd_has_pg(const Kvc__Vmkd__VswitchList *l, const char *name)
{
    for (size_t i = 0; i < l->n_portgroups; i++)
        if (!strcmp(l->portgroups[i]->name, name))
            return true;
    return false;
}

static bool
vmkd_has_sw(const Kvc__Vmkd__VswitchList *l, const char *name)
{
    for (size_t i = 0; i < l->n_vswitches; i++)
        if (!strcmp(l->vswitches[i]->name, name))
            return true;
    return false;
}

int
hostd_vswitch_kvm_sync(struct hostd_host *h, struct kvc_rpc_client *cl)
{
    Kvc__Vmkd__VswitchListRequest lr = KVC__VMKD__VSWITCH_LIST_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    char *err = NULL;
    int st, rc;

    st = kvc_rpc_call_sync(cl, KVC__VMKD__METHOD__VMKD_VSWITCH_LIST, &lr.base,
                           &kvc__vmkd__vswitch_list__descriptor, VMKD_CALL_MS, &resp, &err);
    if (st) {
        /* An older vmkd, or one without a vSwitch: keep hostd's model. */
        kvc_warn("%s: vmkd has no vSwitch configuration to offer (%s); using hostd's",
                 h->name, err ? err : "no answer");
        free(err);
        return 0;
    }
    for (size_t i = 0; i < h->n_vsw; i++) {
        const Kvc__Vmkd__VswitchList *l = (const void *)resp;
        if (vmkd_has_sw(l, h->vsw[i].name))
            continue;
        Kvc__Vmkd__VswitchSpec s = KVC__VMKD__VSWITCH_SPEC__INIT;
        ProtobufCMessage *r2 = NULL;
        s.name = h->vsw[i].name;
        s.ports = h->vsw[i].ports;
        s.mtu = h->vsw[i].mtu;
        st = kvc_rpc_call_sync(cl, KVC__VMKD__METHOD__VMKD_VSWITCH_ADD, &s.base,
                               &kvc__vmkd__vswitch_list__descriptor, VMKD_CALL_MS, &r2, &err);
        if (st) {
            kvc_warn("%s: vmkd refused vSwitch %s: %s", h->name, s.name, err ? err : "");
            free(err);
            err = NULL;
            continue;
        }
        protobuf_c_message_free_unpacked(resp, NULL);
        resp = r2;
    }
    for (size_t i = 0; i < h->n_nets; i++) {
        const Kvc__Vmkd__VswitchList *l = (const void *)resp;
        if (vmkd_has_pg(l, h->nets[i].name))
            continue;
        Kvc__Vmkd__PortgroupSpec s = KVC__VMKD__PORTGROUP_SPEC__INIT;
        ProtobufCMessage *r2 = NULL;
        s.name = h->nets[i].name;
        s.vswitch = h->nets[i].vswitch;
        s.vlan = h->nets[i].vlan;
        st = kvc_rpc_call_sync(cl, KVC__VMKD__METHOD__VMKD_PORTGROUP_ADD, &s.base,
                               &kvc__vmkd__vswitch_list__descriptor, VMKD_CALL_MS, &r2, &err);
        if (st) {
            kvc_warn("%s: vmkd refused port group %s: %s", h->name, s.name, err ? err : "");
            free(err);
            err = NULL;
            continue;
        }
        protobuf_c_message_free_unpacked(resp, NULL);
        resp = r2;
    }
    rc = model_from_vmkd(h, (const void *)resp);
    protobuf_c_message_free_unpacked(resp, NULL);
    if (rc == 0) {
        save(h);
        kvc_info("%s: vSwitch configuration from vmkd: %zu vSwitch(es), %zu port group(s)",
                 h->name, h->n_vsw, h->n_nets);
    }
    return rc;
}

static void
on_resync(int status, const char *error, const ProtobufCMessage *resp, void *arg)
{
    struct hostd_host *h = arg;

    if (status == KVC_RPC_E_CANCELLED)
        return;                         /* the host is going away */
    if (status) {
        kvc_warn("%s: re-reading vmkd's vSwitch configuration: %s", h->name, error);
        return;
    }
    if (model_from_vmkd(h, (const void *)resp) == 0) {
        save(h);
        hostd_inventory_changed(h);
    }
}

static void
on_push(int status, const char *error, const ProtobufCMessage *resp, void *arg)
{
    struct hostd_host *h = arg;
    Kvc__Vmkd__VswitchListRequest lr = KVC__VMKD__VSWITCH_LIST_REQUEST__INIT;
    struct kvc_rpc_client *cl;

    (void)resp;
    if (status == KVC_RPC_E_CANCELLED || status == 0)
        return;
    kvc_warn("%s: vmkd refused a vSwitch change: %s; re-reading its configuration",
             h->name, error);
    if ((cl = hostd_kvm_vmkd(h)))
        kvc_rpc_client_call(cl, KVC__VMKD__METHOD__VMKD_VSWITCH_LIST, &lr.base,
                            &kvc__vmkd__vswitch_list__descriptor, VMKD_CALL_MS, on_resync, h);
}

/* kvm: send the (already applied) change to vmkd. */
static void
push(struct hostd_host *h, const struct hostd_vsw_op *op)
{
    Kvc__Vmkd__VswitchSpec s = KVC__VMKD__VSWITCH_SPEC__INIT;
    Kvc__Vmkd__PortgroupSpec p = KVC__VMKD__PORTGROUP_SPEC__INIT;
    const ProtobufCMessage *req = &p.base;
    struct kvc_rpc_client *cl = hostd_kvm_vmkd(h);
    uint32_t m = 0;
    int rc;

    if (!cl)
        return;
    s.name = p.name = (char *)op->name;
    s.ports = op->ports;
    s.mtu = op->mtu;
    p.vswitch = (char *)(op->vswitch ? op->vswitch : "");
    p.vlan = op->vlan;
    switch (op->kind) {
    case HOSTD_VSW_ADD: m = KVC__VMKD__METHOD__VMKD_VSWITCH_ADD; req = &s.base; break;
    case HOSTD_VSW_REMOVE: m = KVC__VMKD__METHOD__VMKD_VSWITCH_REMOVE; req = &s.base; break;
    case HOSTD_PG_ADD: m = KVC__VMKD__METHOD__VMKD_PORTGROUP_ADD; break;
    case HOSTD_PG_REMOVE: m = KVC__VMKD__METHOD__VMKD_PORTGROUP_REMOVE; break;
    case HOSTD_PG_SET: m = KVC__VMKD__METHOD__VMKD_PORTGROUP_SET; break;
    }
    if ((rc = kvc_rpc_client_call(cl, m, req, &kvc__vmkd__vswitch_list__descriptor,
                                  VMKD_CALL_MS, on_push, h)))
        kvc_warn("%s: vSwitch change not sent to vmkd: %s", h->name, strerror(-rc));
}

/* ---- changes ------------------------------------------------------------ */

int
hostd_vswitch_apply(struct hostd_host *h, const struct hostd_vsw_op *op, char *err,
                    size_t len)
{
    const char *name = op->name ? op->name : "";
    struct hostd_vswitch *sw;
    struct hostd_network *pg;
    int rc;

    if (!hostd_vswitch_valid_name(name)) {
        snprintf(err, len, "'%s' is not a valid %s name (1-63 characters, no '/' or '\\')",
                 name, op->kind <= HOSTD_VSW_REMOVE ? "vSwitch" : "port group");
        return -EINVAL;
    }
    switch (op->kind) {
    case HOSTD_VSW_ADD:
        if (op->ports && (op->ports < 8 || op->ports > 4096)) {
            snprintf(err, len, "ports %u: want 8-4096", op->ports);
            return -EINVAL;
        }
        if (op->mtu && (op->mtu < 68 || op->mtu > 9000)) {
            snprintf(err, len, "MTU %u: want 68-9000", op->mtu);
            return -EINVAL;
        }
        if (sw_find(h, name)) {
            snprintf(err, len, "A vSwitch named %s already exists", name);
            return -EEXIST;
        }
        if (h->n_vsw >= VSW_MAX_SWITCHES) {
            snprintf(err, len, "This host has %d vSwitches, the most it takes",
                     VSW_MAX_SWITCHES);
            return -ENOSPC;
        }
        if ((rc = model_add_sw(h, name, op->ports, op->mtu)))
            return rc;
        break;
    case HOSTD_VSW_REMOVE:
        if (!(sw = sw_find(h, name))) {
            snprintf(err, len, "Unable to find vswitch %s", name);
            return -ENOENT;
        }
        for (size_t i = 0; i < h->n_nets; i++)
            if (!strcmp(h->nets[i].vswitch, name)) {
                snprintf(err, len, "vSwitch %s still has port group %s; remove it first",
                         name, h->nets[i].name);
                return -EBUSY;
            }
        free(sw->name);
        memmove(sw, sw + 1, (size_t)(h->vsw + h->n_vsw - sw - 1) * sizeof *sw);
        h->n_vsw--;
        break;
    case HOSTD_PG_ADD:
        if (op->vlan > 4095) {
            snprintf(err, len, "VLAN ID %u: want 0-4095", op->vlan);
            return -EINVAL;
        }
        if (!op->vswitch || !sw_find(h, op->vswitch)) {
            snprintf(err, len, "Unable to find vswitch %s", op->vswitch ? op->vswitch : "");
            return -ENOENT;
        }
        if (pg_find(h, name)) {
            snprintf(err, len, "A portgroup with the name %s already exists", name);
            return -EEXIST;
        }
        if (h->n_nets >= VSW_MAX_PORTGROUPS) {
            snprintf(err, len, "This host has %d port groups, the most it takes",
                     VSW_MAX_PORTGROUPS);
            return -ENOSPC;
        }
        if ((rc = model_add_pg(h, name, op->vswitch, op->vlan)))
            return rc;
        break;
    case HOSTD_PG_REMOVE:
        if (!(pg = pg_find(h, name)) || (op->vswitch && strcmp(pg->vswitch, op->vswitch))) {
            snprintf(err, len, "Unable to find portgroup %s%s%s", name,
                     op->vswitch ? " on vswitch " : "", op->vswitch ? op->vswitch : "");
            return -ENOENT;
        }
        if (pg_clients(h, name)) {
            snprintf(err, len, "The portgroup %s has %u active client(s) (powered-on VMs)",
                     name, pg_clients(h, name));
            return -EBUSY;
        }
        free(pg->name);
        free(pg->vswitch);
        memmove(pg, pg + 1, (size_t)(h->nets + h->n_nets - pg - 1) * sizeof *pg);
        h->n_nets--;
        break;
    case HOSTD_PG_SET:
        if (op->vlan > 4095) {
            snprintf(err, len, "VLAN ID %u: want 0-4095", op->vlan);
            return -EINVAL;
        }
        if (!(pg = pg_find(h, name))) {
            snprintf(err, len, "Unable to find portgroup %s", name);
            return -ENOENT;
        }
        pg->vlan = op->vlan;
        break;
    default:
        snprintf(err, len, "unknown vSwitch operation");
        return -EINVAL;
    }
    kvc_info("%s: %s %s%s%s (VLAN %u)", h->name,
             op->kind == HOSTD_VSW_ADD ? "vSwitch added" :
             op->kind == HOSTD_VSW_REMOVE ? "vSwitch removed" :
             op->kind == HOSTD_PG_ADD ? "port group added" :
             op->kind == HOSTD_PG_REMOVE ? "port group removed" : "port group set",
             name, op->vswitch ? " on " : "", op->vswitch ? op->vswitch : "", op->vlan);
    save(h);
    push(h, op);
    if (op->kind >= HOSTD_PG_ADD)
        hostd_inventory_changed(h);
    return 0;
}

/* ---- views -------------------------------------------------------------- */

json_t *
hostd_vswitch_list_json(struct hostd_host *h)
{
    json_t *a = json_array();

    for (size_t i = 0; a && i < h->n_vsw; i++) {
        json_t *pgs = json_array();
        for (size_t k = 0; pgs && k < h->n_nets; k++)
            if (!strcmp(h->nets[k].vswitch, h->vsw[i].name))
                json_array_append_new(pgs, json_string(h->nets[k].name));
        json_array_append_new(a, json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:[], s:o}",
            "name", h->vsw[i].name, "class", "cswitch",
            "num_ports", (json_int_t)h->vsw[i].ports,
            "used_ports", (json_int_t)sw_used(h, h->vsw[i].name),
            "configured_ports", (json_int_t)h->vsw[i].ports,
            "mtu", (json_int_t)h->vsw[i].mtu, "uplinks", "portgroups", pgs));
    }
    return a;
}

json_t *
hostd_portgroup_list_json(struct hostd_host *h)
{
    json_t *a = json_array();

    for (size_t i = 0; a && i < h->n_nets; i++)
        json_array_append_new(a, json_pack("{s:s, s:s, s:I, s:I}", "name", h->nets[i].name,
            "vswitch", h->nets[i].vswitch,
            "active_clients", (json_int_t)pg_clients(h, h->nets[i].name),
            "vlan", (json_int_t)h->nets[i].vlan));
    return a;
}

/* ---- the host API: /api/kvc/host/vswitches, /api/kvc/host/portgroups ----
 * GET lists; POST {name, ports?, mtu?} / {name, vswitch, vlan?} adds (201,
 * the name); DELETE .../NAME removes (204); PATCH portgroups/NAME {vlan}
 * (204).  The same bodies vpxd takes under /api/kvc/host/{host}/... */

static void
api_err(long *status, json_t **reply, int rc, const char *msg)
{
    static const struct { int rc; long st; const char *type; } map[] = {
        { -EINVAL, 400, "INVALID_ARGUMENT" }, { -EEXIST, 400, "ALREADY_EXISTS" },
        { -ENOENT, 404, "NOT_FOUND" }, { -EBUSY, 400, "RESOURCE_IN_USE" },
        { -ENOSPC, 500, "UNABLE_TO_ALLOCATE_RESOURCE" },
    };
    *status = 500;
    const char *type = "ERROR";
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (map[i].rc == rc) {
            *status = map[i].st;
            type = map[i].type;
        }
    *reply = kvc_json_api_error(type, NULL, "%s", msg);
}

/* A field of BODY: an integer in [lo, hi] (0 if absent), else -1 with the
 * error reply set. */
static int
body_uint(const json_t *body, const char *key, json_int_t lo, json_int_t hi, uint32_t *out,
          long *status, json_t **reply)
{
    json_t *v = json_object_get(body, key);
    char msg[160];

    *out = 0;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        snprintf(msg, sizeof msg, "%s: want an integer %lld-%lld", key, (long long)lo,
                 (long long)hi);
        api_err(status, reply, -EINVAL, msg);
        return -1;
    }
    *out = (uint32_t)json_integer_value(v);
    return 0;
}

static bool
body_ok(const json_t *body, const char *const *fields, long *status, json_t **reply)
{
    struct kvc_json_err e = { 0 };

    if (!json_is_object(body)) {
        api_err(status, reply, -EINVAL, "the request body must be a JSON object");
        return false;
    }
    if (kvc_json_check_fields(body, fields, &e)) {
        api_err(status, reply, -EINVAL, e.msg);
        return false;
    }
    return true;
}

int
hostd_vswitch_api(struct hostd_host *h, const char *method, const char *route,
                  const json_t *body, long *status, json_t **reply)
{
    static const char *const sw_fields[] = { "name", "ports", "mtu", NULL };
    static const char *const pg_fields[] = { "name", "vswitch", "vlan", NULL };
    static const char *const set_fields[] = { "vlan", NULL };
    static const char sw_base[] = "/api/kvc/host/vswitches";
    static const char pg_base[] = "/api/kvc/host/portgroups";
    struct hostd_vsw_op op = { 0 };
    const char *item = NULL;
    bool is_sw;
    char err[256];
    int rc;

    if (!strncmp(route, sw_base, sizeof sw_base - 1))
        is_sw = true;
    else if (!strncmp(route, pg_base, sizeof pg_base - 1))
        is_sw = false;
    else
        return 0;
    item = route + (is_sw ? sizeof sw_base : sizeof pg_base) - 1;
    if (*item == '/')
        item++;
    else if (*item)
        return 0;
    if (!*item && !strcmp(method, "GET")) {
        *status = 200;
        *reply = is_sw ? hostd_vswitch_list_json(h) : hostd_portgroup_list_json(h);
        return 1;
    }
    if (!*item && !strcmp(method, "POST")) {
        if (!body_ok(body, is_sw ? sw_fields : pg_fields, status, reply))
            return 1;
        op.kind = is_sw ? HOSTD_VSW_ADD : HOSTD_PG_ADD;
        op.name = json_string_value(json_object_get(body, "name"));
        op.vswitch = json_string_value(json_object_get(body, "vswitch"));
        if (!op.name || (!is_sw && !op.vswitch)) {
            api_err(status, reply, -EINVAL, is_sw ? "name is required"
                                                  : "name and vswitch are required");
            return 1;
        }
        if (is_sw ? body_uint(body, "ports", 8, 4096, &op.ports, status, reply) ||
                    body_uint(body, "mtu", 68, 9000, &op.mtu, status, reply)
                  : body_uint(body, "vlan", 0, 4095, &op.vlan, status, reply))
            return 1;
    } else if (*item && !strcmp(method, "DELETE")) {
        op.kind = is_sw ? HOSTD_VSW_REMOVE : HOSTD_PG_REMOVE;
        op.name = item;
    } else if (*item && !is_sw && !strcmp(method, "PATCH")) {
        if (!body_ok(body, set_fields, status, reply))
            return 1;
        if (!json_object_get(body, "vlan")) {
            api_err(status, reply, -EINVAL, "vlan is required");
            return 1;
        }
        if (body_uint(body, "vlan", 0, 4095, &op.vlan, status, reply))
            return 1;
        op.kind = HOSTD_PG_SET;
        op.name = item;
    } else {
        return 0;
    }
    if ((rc = hostd_vswitch_apply(h, &op, err, sizeof err))) {
        api_err(status, reply, rc, err);
        return 1;
    }
    *status = op.kind == HOSTD_VSW_ADD || op.kind == HOSTD_PG_ADD ? 201 : 204;
    *reply = *status == 201 ? json_string(op.name) : NULL;
    return 1;
}

/* ---- RPC from vpxd (VSWITCH_*, PORTGROUP_*) ------------------------------ */

static bool
from_vpxd(struct hostd_host *h, struct kvc_rpc_call *call)
{
    if (h->vpxd && kvc_rpc_call_conn(call) == h->vpxd && !h->crashed)
        return true;
    kvc_rpc_reply_error(call, KVC_RPC_E_PERMISSION, "say hello first");
    return false;
}

void
hostd_vswitch_on_list(struct kvc_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
    struct hostd_host *h = arg;
    Kvc__Host__VswitchList l = KVC__HOST__VSWITCH_LIST__INIT;
    Kvc__Host__VswitchInfo *sw = NULL, **swp = NULL;
    Kvc__Host__PortgroupInfo *pg = NULL, **pgp = NULL;
    char ***names = NULL;

    (void)req;
    if (!from_vpxd(h, call))
        return;
    sw = calloc(h->n_vsw + 1, sizeof *sw);
    swp = calloc(h->n_vsw + 1, sizeof *swp);
    names = calloc(h->n_vsw + 1, sizeof *names);
    pg = calloc(h->n_nets + 1, sizeof *pg);
    pgp = calloc(h->n_nets + 1, sizeof *pgp);
    if (!sw || !swp || !names || !pg || !pgp) {
        kvc_rpc_reply_error(call, KVC_RPC_E_INTERNAL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < h->n_vsw; i++) {
        kvc__host__vswitch_info__init(&sw[i]);
        sw[i].name = h->vsw[i].name;
        sw[i].ports = h->vsw[i].ports;
        sw[i].mtu = h->vsw[i].mtu;
        sw[i].used_ports = sw_used(h, h->vsw[i].name);
        names[i] = calloc(h->n_nets + 1, sizeof **names);
        for (size_t k = 0; names[i] && k < h->n_nets; k++)
            if (!strcmp(h->nets[k].vswitch, h->vsw[i].name))
                names[i][sw[i].n_portgroups++] = h->nets[k].name;
        sw[i].portgroups = names[i];
        swp[i] = &sw[i];
    }
    for (size_t i = 0; i < h->n_nets; i++) {
        kvc__host__portgroup_info__init(&pg[i]);
        pg[i].name = h->nets[i].name;
        pg[i].vswitch = h->nets[i].vswitch;
        pg[i].vlan = h->nets[i].vlan;
        pg[i].active_clients = pg_clients(h, h->nets[i].name);
        pgp[i] = &pg[i];
    }
    l.n_vswitches = h->n_vsw;
    l.vswitches = swp;
    l.n_portgroups = h->n_nets;
    l.portgroups = pgp;
    kvc_rpc_reply(call, &l.base);
out:
    for (size_t i = 0; names && i < h->n_vsw; i++)
        free(names[i]);
    free(names);
    free(sw);
    free(swp);
    free(pg);
    free(pgp);
}

static void
rpc_apply(struct kvc_rpc_call *call, struct hostd_host *h, const struct hostd_vsw_op *op)
{
    Kvc__Host__Status st = KVC__HOST__STATUS__INIT;
    char err[256] = "";
    int rc = hostd_vswitch_apply(h, op, err, sizeof err);

    st.error = -rc;
    st.message = err;
    kvc_rpc_reply(call, &st.base);
}

void
hostd_vswitch_on_change(struct kvc_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
    struct hostd_host *h = arg;
    struct hostd_vsw_op op = { 0 };

    if (!from_vpxd(h, call))
        return;
    switch (kvc_rpc_call_method(call)) {
    case KVC__HOST__METHOD__VSWITCH_ADD:
    case KVC__HOST__METHOD__VSWITCH_REMOVE: {
        const Kvc__Host__VswitchSpec *s = (const void *)req;
        op.kind = kvc_rpc_call_method(call) == KVC__HOST__METHOD__VSWITCH_ADD
                  ? HOSTD_VSW_ADD : HOSTD_VSW_REMOVE;
        op.name = s->name;
        op.ports = s->ports;
        op.mtu = s->mtu;
        break;
    }
    default: {
        const Kvc__Host__PortgroupSpec *s = (const void *)req;
        uint32_t m = kvc_rpc_call_method(call);
        op.kind = m == KVC__HOST__METHOD__PORTGROUP_ADD ? HOSTD_PG_ADD
                  : m == KVC__HOST__METHOD__PORTGROUP_REMOVE ? HOSTD_PG_REMOVE : HOSTD_PG_SET;
        op.name = s->name;
        op.vswitch = s->vswitch && s->vswitch[0] ? s->vswitch : NULL;
        op.vlan = s->vlan;
        break;
    }
    }
    rpc_apply(call, h, &op);
}
