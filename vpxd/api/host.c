/* /api/vcenter/host: list, add (thumbprint flow), remove, connect,
 * disconnect. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "vpxd/api/api.h"
#include "vpxd/api/filters.h"
#include "vpxd/api/internal.h"
#include "vpxd/hostmgr.h"
#include "vpxd/migration.h"

KVC_LOG_MODULE(api_host);

static const char *const conn_states[] = { "CONNECTED", "DISCONNECTED", "NOT_RESPONDING",
                                           NULL };

void api_host_list(struct api_req *r)
{
    const char *standalone = api_query(r, "standalone");
    char *ids, *names, *folders, *dcs, *clusters, *states;
    json_t *rows = NULL;
    int sa = -1, rc;

    if (standalone) {
        if (strcmp(standalone, "true") && strcmp(standalone, "false"))
            return api_error(r, 400, "INVALID_ARGUMENT", "standalone must be true or false");
        sa = !strcmp(standalone, "true");
    }
    if (api_filter_words(r, "connection_states", conn_states) < 0)
        return;
    ids = api_filter_json(r, "hosts");
    names = api_filter_json(r, "names");
    folders = api_filter_json(r, "folders");
    dcs = api_filter_json(r, "datacenters");
    clusters = api_filter_json(r, "clusters");
    states = api_filter_json(r, "connection_states");
    rc = vdb_query_json(api_db(r), &rows,
        "SELECT e.id AS host, e.name, h.connection_state, h.power_state FROM host h"
        " JOIN entity e ON e.id = h.id WHERE (?1 < 0 OR (h.cluster IS NULL) = ?1)"
        IN_FILTER("e.id", 2) IN_FILTER("e.name", 3) IN_FILTER("e.parent", 4)
        IN_FILTER("h.datacenter", 5) IN_FILTER("h.cluster", 6)
        IN_FILTER("h.connection_state", 7) " ORDER BY e.rowid", "issssss", sa, ids, names,
        folders, dcs, clusters, states);
    free(ids);
    free(names);
    free(folders);
    free(dcs);
    free(clusters);
    free(states);
    if (rc < 0)
        return api_error_errno(r, rc, "hosts");
    api_reply(r, 200, api_filter_visible(r, rows, "host"));
}

/* An add in flight: probe, then attach. */
struct add {
    struct api_req *r;
    struct vpxd *vx;
    char *hostname, *user, *password, *parent, *thumbprint;
    int port;
    bool verify;
    char id[VDB_ID_MAX];
};

static void add_free(struct add *a)
{
    if (!a)
        return;
    free(a->hostname);
    free(a->user);
    if (a->password) {
        explicit_bzero(a->password, strlen(a->password));
        free(a->password);
    }
    free(a->parent);
    free(a->thumbprint);
    free(a);
}

static void on_attached(void *arg, int err, const char *msg)
{
    struct add *a = arg;

    if (err) {
        /* Nothing of a failed add stays. */
        vdb_host_remove(a->vx->db, a->id);
        api_host_error(a->r, err, msg);
    } else {
        api_set_object(a->r, a->id);
        api_reply(a->r, 201, json_string(a->id));
    }
    add_free(a);
}

static void on_probed(void *arg, int err, const char *msg, const char *thumbprint,
                      const struct hostmgr_host_info *info)
{
    struct add *a = arg;
    struct vdb_host_spec hs;
    int rc;

    if (err) {
        api_host_error(a->r, err, msg);
        goto fail;
    }
    if (a->verify && (!a->thumbprint || !api_thumbprint_equal(a->thumbprint, thumbprint))) {
        json_t *args = json_pack("[s]", thumbprint);
        api_error_args(a->r, 400, "INVALID_ARGUMENT", args,
                       a->thumbprint ? "the host's certificate thumbprint is %s, not the one"
                                       " given: verify it and retry with that thumbprint"
                                     : "the host's certificate thumbprint is %s: verify it and"
                                       " retry with that thumbprint", thumbprint);
        goto fail;
    }
    hs = (struct vdb_host_spec){ .name = info && info->name && *info->name ? info->name
                                                                           : a->hostname,
                                 .hostname = a->hostname, .port = a->port,
                                 .user_name = a->user, .thumbprint = thumbprint,
                                 .parent = a->parent };
    rc = vdb_host_add(a->vx->db, &hs, a->id);
    if (rc == -EEXIST && hs.name != a->hostname) {
        hs.name = a->hostname;
        rc = vdb_host_add(a->vx->db, &hs, a->id);
    }
    if (rc == -EEXIST) {
        api_error(a->r, 400, "ALREADY_EXISTS", "host %s:%d is already in the inventory",
                  a->hostname, a->port);
        goto fail;
    }
    if (rc < 0) {
        api_error_errno(a->r, rc, "host");
        goto fail;
    }
    if (info) {
        struct vdb_host_hw hw = { .cpu_count = (int)info->cpu_cores,
                                  .cpu_mhz = (int)info->cpu_mhz,
                                  .memory_bytes = (int64_t)info->memory_bytes,
                                  .product_version = info->version };
        vdb_host_set_hw(a->vx->db, a->id, &hw);
    }
    rc = hostmgr_host_attach(a->vx->hm, a->id, a->hostname, (uint16_t)a->port, thumbprint,
                             a->user, a->password, on_attached, a);
    if (rc < 0) {
        vdb_host_remove(a->vx->db, a->id);
        api_host_error(a->r, rc, NULL);
        goto fail;
    }
    return;
fail:
    add_free(a);
}

void api_host_create(struct api_req *r)
{
    static const char *const fields[] = { "hostname", "port", "user_name", "password", "folder",
                                          "thumbprint_verification", "thumbprint", "force_add",
                                          NULL };
    static const char *const verif[] = { "NONE", "THUMBPRINT", NULL };
    const char *hostname, *user, *password, *folder, *tv, *thumb;
    char type[32] = "";
    int64_t port = 443;
    bool force = false;
    struct vpxd *vx = api_vpxd(r);
    json_t *b = api_body(r);
    struct add *a;
    int rc;

    if (api_body_object(r, fields) < 0 || api_field_str(r, b, "hostname", true, &hostname) < 0
        || api_field_int(r, b, "port", false, 1, 65535, &port) < 0
        || api_field_str(r, b, "user_name", true, &user) < 0
        || api_field_str(r, b, "password", true, &password) < 0
        || api_field_str(r, b, "folder", false, &folder) < 0
        || api_field_enum(r, b, "thumbprint_verification", true, verif, &tv) < 0
        || api_field_str(r, b, "thumbprint", false, &thumb) < 0
        || api_field_bool(r, b, "force_add", false, &force) < 0)
        return;
    if (!*hostname)
        return api_error(r, 400, "INVALID_ARGUMENT", "field 'hostname' must not be empty");
    if (!folder) {
        /* vCenter needs a folder when there is more than one datacenter. */
        json_t *rows = NULL;
        vdb_query_json(api_db(r), &rows, "SELECT host_folder FROM datacenter LIMIT 2", NULL);
        if (json_array_size(rows) != 1) {
            json_decref(rows);
            return api_error(r, 400, "INVALID_ARGUMENT",
                             "field 'folder' is required (a host folder or a cluster)");
        }
        static char hf[VDB_ID_MAX];
        snprintf(hf, sizeof(hf), "%s",
                 json_string_value(json_object_get(json_array_get(rows, 0), "host_folder")));
        json_decref(rows);
        folder = hf;
    }
    if (vdb_entity_type(api_db(r), folder, type, sizeof(type)) < 0)
        return api_error(r, 404, "NOT_FOUND", "folder %s not found", folder);
    if (strcmp(type, "cluster") && strcmp(type, "folder") && strcmp(type, "datacenter"))
        return api_error(r, 400, "INVALID_ARGUMENT", "%s cannot hold hosts", folder);
    if (api_require(r, !strcmp(type, "cluster") ? "Host.Inventory.AddHostToCluster"
                                                : "Host.Inventory.AddStandaloneHost",
                    folder) < 0)
        return;
    if (!vx->hm)
        return api_error(r, 503, "SERVICE_UNAVAILABLE", "%s",
                         vx->hm_error ? vx->hm_error : "host connections are not available");
    a = calloc(1, sizeof(*a));
    if (!a)
        return api_error(r, 500, "ERROR", "out of memory");
    a->r = r;
    a->vx = vx;
    a->hostname = strdup(hostname);
    a->user = strdup(user);
    a->password = strdup(password);
    a->parent = strdup(folder);
    a->thumbprint = thumb ? strdup(thumb) : NULL;
    a->port = (int)port;
    a->verify = !strcmp(tv, "THUMBPRINT");
    api_hold(r);
    rc = hostmgr_probe(vx->hm, hostname, (uint16_t)port, on_probed, a);
    if (rc < 0) {
        api_host_error(r, rc, NULL);
        add_free(a);
    }
}

void api_host_delete(struct api_req *r)
{
    const char *id = api_param(r, "host");
    int rc;

    if (!vdb_entity_exists(api_db(r), id, "host"))
        return api_error(r, 404, "NOT_FOUND", "host %s not found", id);
    if (api_vpxd(r)->hm)
        hostmgr_host_detach(api_vpxd(r)->hm, id, true);
    rc = vdb_host_remove(api_db(r), id);
    if (rc < 0)
        return api_error_errno(r, rc, "host");
    api_reply(r, 204, NULL);
}

struct conn_op {
    struct api_req *r;
    struct vpxd *vx;
    char id[VDB_ID_MAX];
};

static void on_connected(void *arg, int err, const char *msg)
{
    struct conn_op *c = arg;

    if (err)
        api_host_error(c->r, err, msg);
    else
        api_reply(c->r, 204, NULL);
    free(c);
}

void api_host_connect(struct api_req *r)
{
    const char *id = api_param(r, "host");
    struct vpxd *vx = api_vpxd(r);
    json_t *row = NULL;
    struct conn_op *c;
    int rc = vdb_query_row(api_db(r), &row, "SELECT hostname, port, thumbprint,"
                           " connection_state FROM host WHERE id = ?", "s", id);

    if (rc == -ENOENT)
        return api_error(r, 404, "NOT_FOUND", "host %s not found", id);
    if (rc < 0)
        return api_error_errno(r, rc, "host");
    if (!strcmp(json_string_value(json_object_get(row, "connection_state")), "CONNECTED")) {
        json_decref(row);
        return api_error(r, 400, "ALREADY_IN_DESIRED_STATE", "host %s is already connected", id);
    }
    if (!vx->hm) {
        json_decref(row);
        return api_error(r, 503, "SERVICE_UNAVAILABLE", "%s",
                         vx->hm_error ? vx->hm_error : "host connections are not available");
    }
    c = calloc(1, sizeof(*c));
    c->r = r;
    c->vx = vx;
    snprintf(c->id, sizeof(c->id), "%s", id);
    api_hold(r);
    hostmgr_host_detach(vx->hm, id, false);
    rc = hostmgr_host_attach(vx->hm, id, json_string_value(json_object_get(row, "hostname")),
                             (uint16_t)json_integer_value(json_object_get(row, "port")),
                             json_string_value(json_object_get(row, "thumbprint")), NULL, NULL,
                             on_connected, c);
    json_decref(row);
    if (rc < 0) {
        api_host_error(r, rc, NULL);
        free(c);
    }
}

void api_host_disconnect(struct api_req *r)
{
    const char *id = api_param(r, "host");
    char state[32];
    int rc = vdb_query_str(api_db(r), state, sizeof(state),
                           "SELECT connection_state FROM host WHERE id = ?", "s", id);

    if (rc == -ENOENT)
        return api_error(r, 404, "NOT_FOUND", "host %s not found", id);
    if (rc < 0)
        return api_error_errno(r, rc, "host");
    if (!strcmp(state, "DISCONNECTED"))
        return api_error(r, 400, "ALREADY_IN_DESIRED_STATE", "host %s is already disconnected",
                         id);
    if (api_vpxd(r)->hm)
        hostmgr_host_detach(api_vpxd(r)->hm, id, false);
    rc = vdb_host_set_state(api_db(r), id, "DISCONNECTED");
    if (rc < 0)
        return api_error_errno(r, rc, "host");
    api_reply(r, 204, NULL);
}

/* ---- maintenance mode (vpxd/migration.c does the evacuation) ---- */

static void on_maintenance_done(void *arg, int err, const char *msg, const char *task)
{
    struct api_req *r = arg;

    if (!err)
        api_reply(r, 204, NULL);
    else if (err == -EBUSY)
        api_error(r, 400, "NOT_ALLOWED_IN_CURRENT_STATE", "%s", msg ? msg : "busy");
    else
        api_host_error(r, err, msg);
}

static void maintenance(struct api_req *r, bool enter)
{
    const char *id = api_param(r, "host");
    char why[512] = "";
    int rc;

    if (!vdb_entity_exists(api_db(r), id, "host"))
        return api_error(r, 404, "NOT_FOUND", "host %s not found", id);
    if (api_need_host(r, id) < 0)
        return;
    api_hold(r);
    rc = vpxd_host_maintenance(api_vpxd(r), id, enter, api_user(r), api_task_id(r),
                               on_maintenance_done, r, why, sizeof(why));
    if (rc == -EALREADY)
        api_error(r, 400, "ALREADY_IN_DESIRED_STATE", "%s", why);
    else if (rc < 0)
        api_host_error(r, rc, why);
}

void api_host_enter_maintenance(struct api_req *r)
{
    maintenance(r, true);
}

void api_host_exit_maintenance(struct api_req *r)
{
    maintenance(r, false);
}
