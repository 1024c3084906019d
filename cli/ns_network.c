/* kvcli `network vswitch standard` namespace: a host's standard vSwitches
 * and port groups, in esxcli's names and shapes.
 *
 * With --host (vpxd) the commands use /api/kvc/host/{host}/vswitches and
 * .../portgroups; without it (kvcli --server on a host, or the host's SSH
 * shell) the host's own /api/kvc/host/vswitches and .../portgroups.  The
 * bodies and replies are the same (hostd/vswitch.c, vpxd/api/vswitch.c). */
#include "commands.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const struct kvc_field vswitch_fields[] = {
    { "Name", KVC_F_STRING },
    { "Class", KVC_F_STRING },
    { "Num Ports", KVC_F_INT },
    { "Used Ports", KVC_F_INT },
    { "Configured Ports", KVC_F_INT },
    { "MTU", KVC_F_INT },
    { "Uplinks", KVC_F_STRLIST },
    { "Portgroups", KVC_F_STRLIST },
    { NULL },
};
/* esxcli: one block per vSwitch, headed by its name. */
const struct kvc_shape kvc_shape_vswitch_list = {
    "VirtualSwitch", vswitch_fields, KVC_LIST_BLOCKS, "Name",
};

static const struct kvc_field pg_fields[] = {
    { "Name", KVC_F_STRING },
    { "Virtual Switch", KVC_F_STRING },
    { "Active Clients", KVC_F_INT },
    { "VLAN ID", KVC_F_INT },
    { NULL },
};
/* esxcli: a table under a dashed rule. */
const struct kvc_shape kvc_shape_portgroup_list = {
    "PortGroup", pg_fields, KVC_LIST_TABLE, NULL,
};

/* Percent-encodes NAME for a path segment (port group names hold spaces). */
static int
encode(const char *name, char *out, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                     (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' ||
                     *p == '~';
        if (o + (plain ? 1 : 3) >= len)
            return -ENAMETOOLONG;
        if (plain) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = 0;
    return 0;
}

/* /api/kvc/host[/{host}]/WHAT[/NAME]. */
static int
net_path(const struct kvc_args *a, const char *what, const char *name, char *path, size_t len,
         char *err, size_t errlen)
{
    const char *host = kvc_arg_str(a, "host");
    char enc[3 * 64 + 1] = "";

    if (host && !kvc_ns_valid_id(host)) {
        snprintf(err, errlen, "While processing '--host'. '%s' is not a host id (host-28).",
                 host);
        return -EINVAL;
    }
    if (name && encode(name, enc, sizeof enc)) {
        snprintf(err, errlen, "The name '%s' is too long.", name);
        return -EINVAL;
    }
    snprintf(path, len, "/api/kvc/host%s%s/%s%s%s", host ? "/" : "", host ? host : "", what,
             name ? "/" : "", enc);
    return 0;
}

static const char *
str_or_empty(const json_t *v)
{
    return json_is_string(v) ? json_string_value(v) : "";
}

static json_t *
strlist(json_t *v)
{
    return json_is_array(v) ? json_incref(v) : json_array();
}

/* GET a list.  vpxd has no host-less list: a 404 there without --host
 * gets a hint. */
static int
list_request(struct kvc_ctx *ctx, const struct kvc_args *a, const char *path, json_t **r,
             char *err, size_t errlen)
{
    int rc = kvc_ctx_request(ctx, "GET", path, NULL, r, err, errlen);

    if (rc == -ENOENT && !kvc_arg_str(a, "host")) {
        size_t n = strnlen(err, errlen);
        if (n + 1 < errlen)
            snprintf(err + n, errlen - n, " (on vpxd, name the host with --host)");
    }
    return rc;
}

int
kvc_run_vswitch_list(struct kvc_ctx *ctx, const struct kvc_args *a, json_t **res, char *err,
                     size_t errlen)
{
    char path[256];
    json_t *r = NULL, *sw;
    size_t i;
    const char *only = kvc_arg_str(a, "vswitch-name");
    int rc = net_path(a, "vswitches", NULL, path, sizeof path, err, errlen);

    if (rc || (rc = list_request(ctx, a, path, &r, err, errlen)))
        return rc;
    if (!json_is_array(r)) {
        json_decref(r);
        snprintf(err, errlen, "the server's vSwitch list is not an array");
        return -EPROTO;
    }
    json_t *out = json_array();
    json_array_foreach(r, i, sw) {
        const char *name = json_string_value(json_object_get(sw, "name"));
        if (only && (!name || strcmp(name, only)))
            continue;
        json_array_append_new(out, json_pack("{s:O?, s:O?, s:O?, s:O?, s:O?, s:O?, s:o, s:o}",
            "Name", json_object_get(sw, "name"), "Class", json_object_get(sw, "class"),
            "NumPorts", json_object_get(sw, "num_ports"),
            "UsedPorts", json_object_get(sw, "used_ports"),
            "ConfiguredPorts", json_object_get(sw, "configured_ports"),
            "MTU", json_object_get(sw, "mtu"),
            "Uplinks", strlist(json_object_get(sw, "uplinks")),
            "Portgroups", strlist(json_object_get(sw, "portgroups"))));
    }
    json_decref(r);
    *res = out;
    return 0;
}

/* POST or DELETE: prints nothing on success, like esxcli. */
static int
change(struct kvc_ctx *ctx, const struct kvc_args *a, const char *method, const char *what,
       const char *name, json_t *body, json_t **res, char *err, size_t errlen)
{
    char path[512];
    json_t *r = NULL;
    int rc = net_path(a, what, name, path, sizeof path, err, errlen);

    if (!rc)
        rc = kvc_ctx_request(ctx, method, path, body, &r, err, errlen);
    json_decref(body);
    json_decref(r);
    *res = NULL;
    return rc;
}

int
kvc_run_vswitch_add(struct kvc_ctx *ctx, const struct kvc_args *a, json_t **res, char *err,
                    size_t errlen)
{
    json_t *body = json_pack("{s:s}", "name", kvc_arg_str(a, "vswitch-name"));
    if (kvc_arg_isset(a, "ports"))
        json_object_set_new(body, "ports", json_integer(kvc_arg_int(a, "ports", 128)));
    return change(ctx, a, "POST", "vswitches", NULL, body, res, err, errlen);
}

int
kvc_run_vswitch_remove(struct kvc_ctx *ctx, const struct kvc_args *a, json_t **res, char *err,
                       size_t errlen)
{
    return change(ctx, a, "DELETE", "vswitches", kvc_arg_str(a, "vswitch-name"), NULL, res,
                  err, errlen);
}

int
kvc_run_portgroup_list(struct kvc_ctx *ctx, const struct kvc_args *a, json_t **res, char *err,
                       size_t errlen)
{
    char path[256];
    json_t *r = NULL, *pg;
    size_t i;
    int rc = net_path(a, "portgroups", NULL, path, sizeof path, err, errlen);

    if (rc || (rc = list_request(ctx, a, path, &r, err, errlen)))
        return rc;
    if (!json_is_array(r)) {
        json_decref(r);
        snprintf(err, errlen, "the server's port group list is not an array");
        return -EPROTO;
    }
    json_t *out = json_array();
    json_array_foreach(r, i, pg)
        json_array_append_new(out, json_pack("{s:O?, s:O?, s:O?, s:O?}",
            "Name", json_object_get(pg, "name"),
            "VirtualSwitch", json_object_get(pg, "vswitch"),
            "ActiveClients", json_object_get(pg, "active_clients"),
            "VLANID", json_object_get(pg, "vlan")));
    json_decref(r);
    *res = out;
    return 0;
}

int
kvc_run_portgroup_add(struct kvc_ctx *ctx, const struct kvc_args *a, json_t **res, char *err,
                      size_t errlen)
{
    json_t *body = json_pack("{s:s, s:s}", "name", kvc_arg_str(a, "portgroup-name"),
                             "vswitch", kvc_arg_str(a, "vswitch-name"));
    return change(ctx, a, "POST", "portgroups", NULL, body, res, err, errlen);
}

int
kvc_run_portgroup_remove(struct kvc_ctx *ctx, const struct kvc_args *a, json_t **res,
                         char *err, size_t errlen)
{
    /* esxcli names the switch too: the port group must be on it. */
    json_t *pgs = NULL;
    int rc = kvc_run_portgroup_list(ctx, a, &pgs, err, errlen);
    size_t i;
    json_t *pg;
    bool found = false;

    if (rc)
        return rc;
    json_array_foreach(pgs, i, pg)
        found |= !strcmp(str_or_empty(json_object_get(pg, "Name")),
                         kvc_arg_str(a, "portgroup-name")) &&
                 !strcmp(str_or_empty(json_object_get(pg, "VirtualSwitch")),
                         kvc_arg_str(a, "vswitch-name"));
    json_decref(pgs);
    if (!found) {
        snprintf(err, errlen, "Unable to find portgroup %s on vswitch %s",
                 kvc_arg_str(a, "portgroup-name"), kvc_arg_str(a, "vswitch-name"));
        return -ENOENT;
    }
    return change(ctx, a, "DELETE", "portgroups", kvc_arg_str(a, "portgroup-name"), NULL, res,
                  err, errlen);
}

int
kvc_run_portgroup_set(struct kvc_ctx *ctx, const struct kvc_args *a, json_t **res, char *err,
                      size_t errlen)
{
    json_t *body = json_pack("{s:I}", "vlan", (json_int_t)kvc_arg_int(a, "vlan-id", 0));
    return change(ctx, a, "PATCH", "portgroups", kvc_arg_str(a, "portgroup-name"), body, res,
                  err, errlen);
}
