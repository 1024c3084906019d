/* /api/kvc/host/{host}/vswitches and /api/kvc/host/{host}/portgroups: a
 * host's standard vSwitches and port groups, read from and changed on the
 * host itself (VSWITCH_* and PORTGROUP_* of the host protocol; hostd
 * applies a change to its model and, with the kvm backend, to vmkd's data
 * plane).  A port group change comes back as the host's inventory, so
 * /api/vcenter/network follows.
 *
 *   GET    .../vswitches                 [{name, class, num_ports, used_ports,
 *                                          configured_ports, mtu, uplinks[], portgroups[]}]
 *   POST   .../vswitches {name, ports?, mtu?}              201 "name"
 *   DELETE .../vswitches/{vswitch}                         204
 *   GET    .../portgroups                [{name, vswitch, active_clients, vlan}]
 *   POST   .../portgroups {name, vswitch, vlan?}           201 "name"
 *   PATCH  .../portgroups/{portgroup} {vlan}               204
 *   DELETE .../portgroups/{portgroup}                      204
 *
 * The same shapes as the host's own API (hostd/vswitch.c), so kvcli's
 * commands read both.  Bad input is refused here, before anything is sent;
 * the host checks again (it is the truth for what exists). */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "host.pb-c.h"
#include "vpxd/api/api.h"
#include "vpxd/api/internal.h"
#include "vpxd/hostmgr.h"

#define NAME_MAX_LEN 63

struct vsw_req {
    struct api_req *r;
    bool list_vswitches;        /* GET: which list */
    int created;                /* 201 with this name, else 204 */
    char name[NAME_MAX_LEN + 1];
};

static bool valid_name(const char *s)
{
    size_t len = s ? strlen(s) : 0;

    if (!len || len > NAME_MAX_LEN)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f || *s == '/' || *s == '\\')
            return false;
    return true;
}

/* The host must exist and be connected; answers and returns -1 if not. */
static int host_ok(struct api_req *r, const char *host)
{
    if (!vdb_entity_exists(api_db(r), host, "host")) {
        api_error(r, 404, "NOT_FOUND", "host %s not found", host);
        return -1;
    }
    return api_need_host(r, host);
}

static json_t *strings(char **v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static void on_list(void *arg, int err, const char *msg, const ProtobufCMessage *resp)
{
    struct vsw_req *c = arg;
    const Kvc__Host__VswitchList *l = (const Kvc__Host__VswitchList *)resp;
    json_t *a;

    if (err) {
        api_host_error(c->r, err, msg);
        free(c);
        return;
    }
    a = json_array();
    if (c->list_vswitches) {
        for (size_t i = 0; a && i < l->n_vswitches; i++) {
            const Kvc__Host__VswitchInfo *s = l->vswitches[i];
            json_array_append_new(a, json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:[], s:o}",
                "name", s->name, "class", "cswitch", "num_ports", (json_int_t)s->ports,
                "used_ports", (json_int_t)s->used_ports,
                "configured_ports", (json_int_t)s->ports, "mtu", (json_int_t)s->mtu,
                "uplinks", "portgroups", strings(s->portgroups, s->n_portgroups)));
        }
    } else {
        for (size_t i = 0; a && i < l->n_portgroups; i++) {
            const Kvc__Host__PortgroupInfo *p = l->portgroups[i];
            json_array_append_new(a, json_pack("{s:s, s:s, s:I, s:I}", "name", p->name,
                "vswitch", p->vswitch, "active_clients", (json_int_t)p->active_clients,
                "vlan", (json_int_t)p->vlan));
        }
    }
    api_reply(c->r, 200, a);
    free(c);
}

static void list(struct api_req *r, bool vswitches)
{
    Kvc__Host__Empty m = KVC__HOST__EMPTY__INIT;
    const char *host = api_param(r, "host");
    struct vsw_req *c;
    int rc;

    if (host_ok(r, host) < 0)
        return;
    if (!(c = calloc(1, sizeof *c)))
        return api_error(r, 500, "ERROR", "out of memory");
    c->r = r;
    c->list_vswitches = vswitches;
    api_hold(r);
    rc = hostmgr_host_call(api_vpxd(r)->hm, host, KVC__HOST__METHOD__VSWITCH_LIST, &m.base,
                           &kvc__host__vswitch_list__descriptor, on_list, c);
    if (rc < 0) {
        api_host_error(r, rc, NULL);
        free(c);
    }
}

static void on_status(void *arg, int err, const char *msg, const ProtobufCMessage *resp)
{
    struct vsw_req *c = arg;
    const Kvc__Host__Status *st = (const Kvc__Host__Status *)resp;

    if (!err && st->error) {
        err = -st->error;
        msg = st->message && st->message[0] ? st->message : NULL;
    }
    if (err == -EBUSY)
        api_error(c->r, 400, "RESOURCE_IN_USE", "%s", msg ? msg : "in use");
    else if (err)
        api_host_error(c->r, err, msg);
    else if (c->created)
        api_reply(c->r, 201, json_string(c->name));
    else
        api_reply(c->r, 204, NULL);
    free(c);
}

static void change(struct api_req *r, uint32_t method, const ProtobufCMessage *m,
                   const char *name, bool created)
{
    const char *host = api_param(r, "host");
    struct vsw_req *c;
    int rc;

    if (!(c = calloc(1, sizeof *c)))
        return api_error(r, 500, "ERROR", "out of memory");
    c->r = r;
    c->created = created;
    snprintf(c->name, sizeof c->name, "%s", name);
    api_set_object(r, host);
    api_hold(r);
    rc = hostmgr_host_call(api_vpxd(r)->hm, host, method, m, &kvc__host__status__descriptor,
                           on_status, c);
    if (rc < 0) {
        api_host_error(r, rc, NULL);
        free(c);
    }
}

/* An optional integer field in [lo, hi]; 0 when absent.  -1: answered. */
static int opt_uint(struct api_req *r, const char *key, int64_t lo, int64_t hi, uint32_t *out)
{
    json_t *v = json_object_get(api_body(r), key);
    int64_t x;

    *out = 0;
    if (!v || json_is_null(v))
        return 0;
    if (api_field_int(r, api_body(r), key, true, lo, hi, &x) < 0)
        return -1;
    *out = (uint32_t)x;
    return 0;
}

static int name_field(struct api_req *r, const char *key, const char **out)
{
    if (api_field_str(r, api_body(r), key, true, out) < 0)
        return -1;
    if (!valid_name(*out)) {
        api_error(r, 400, "INVALID_ARGUMENT", "%s: '%.80s' is not a valid name (1-%d"
                  " characters, no '/', '\\' or control characters)", key, *out, NAME_MAX_LEN);
        return -1;
    }
    return 0;
}

/* The routes with a name last in the path check the host's privilege here
 * (the router checks the last path parameter, which is no inventory object
 * for these), before anything else. */
static int path_name(struct api_req *r, const char *param, const char **out)
{
    if (api_require(r, "Host.Config.Network", api_param(r, "host")) < 0)
        return -1;
    *out = api_param(r, param);
    if (!valid_name(*out)) {
        api_error(r, 400, "INVALID_ARGUMENT", "'%.80s' is not a valid name", *out ? *out : "");
        return -1;
    }
    return 0;
}

void api_vswitch_list(struct api_req *r)
{
    list(r, true);
}

void api_vswitch_create(struct api_req *r)
{
    static const char *const fields[] = { "name", "ports", "mtu", NULL };
    Kvc__Host__VswitchSpec m = KVC__HOST__VSWITCH_SPEC__INIT;
    const char *name;

    if (api_body_object(r, fields) < 0 || name_field(r, "name", &name) < 0 ||
        opt_uint(r, "ports", 8, 4096, &m.ports) < 0 || opt_uint(r, "mtu", 68, 9000, &m.mtu) < 0 ||
        host_ok(r, api_param(r, "host")) < 0)
        return;
    m.name = (char *)name;
    change(r, KVC__HOST__METHOD__VSWITCH_ADD, &m.base, name, true);
}

void api_vswitch_delete(struct api_req *r)
{
    Kvc__Host__VswitchSpec m = KVC__HOST__VSWITCH_SPEC__INIT;
    const char *name;

    if (path_name(r, "vswitch", &name) < 0 || host_ok(r, api_param(r, "host")) < 0)
        return;
    m.name = (char *)name;
    change(r, KVC__HOST__METHOD__VSWITCH_REMOVE, &m.base, name, false);
}

void api_portgroup_list(struct api_req *r)
{
    list(r, false);
}

void api_portgroup_create(struct api_req *r)
{
    static const char *const fields[] = { "name", "vswitch", "vlan", NULL };
    Kvc__Host__PortgroupSpec m = KVC__HOST__PORTGROUP_SPEC__INIT;
    const char *name, *sw;

    if (api_body_object(r, fields) < 0 || name_field(r, "name", &name) < 0 ||
        name_field(r, "vswitch", &sw) < 0 || opt_uint(r, "vlan", 0, 4095, &m.vlan) < 0 ||
        host_ok(r, api_param(r, "host")) < 0)
        return;
    m.name = (char *)name;
    m.vswitch = (char *)sw;
    change(r, KVC__HOST__METHOD__PORTGROUP_ADD, &m.base, name, true);
}

void api_portgroup_patch(struct api_req *r)
{
    static const char *const fields[] = { "vlan", NULL };
    Kvc__Host__PortgroupSpec m = KVC__HOST__PORTGROUP_SPEC__INIT;
    const char *name;

    if (path_name(r, "portgroup", &name) < 0 || api_body_object(r, fields) < 0)
        return;
    if (!json_object_get(api_body(r), "vlan"))
        return api_error(r, 400, "INVALID_ARGUMENT", "vlan is required");
    if (opt_uint(r, "vlan", 0, 4095, &m.vlan) < 0 || host_ok(r, api_param(r, "host")) < 0)
        return;
    m.name = (char *)name;
    change(r, KVC__HOST__METHOD__PORTGROUP_SET, &m.base, name, false);
}

void api_portgroup_delete(struct api_req *r)
{
    Kvc__Host__PortgroupSpec m = KVC__HOST__PORTGROUP_SPEC__INIT;
    const char *name;

    if (path_name(r, "portgroup", &name) < 0 || host_ok(r, api_param(r, "host")) < 0)
        return;
    m.name = (char *)name;
    change(r, KVC__HOST__METHOD__PORTGROUP_REMOVE, &m.base, name, false);
}
