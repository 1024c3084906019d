/* Inventory writes: every create and delete keeps `entity` and the type's
 * own table together in one transaction. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "vpxd/db.h"
#include "vpxd/db_internal.h"

KVC_LOG_MODULE(db);

static int entity_insert(struct vdb *db, const char *id, const char *type,
                         const char *name, const char *parent)
{
    char now[32];

    vdb_now(now, sizeof(now));
    return vdb_exec(db, "INSERT INTO entity (id, type, name, parent, created)"
                    " VALUES (?, ?, ?, ?, ?)", "sssss", id, type, name, parent, now);
}

static int entity_delete(struct vdb *db, const char *id)
{
    int rc = vdb_exec(db, "DELETE FROM permission WHERE entity = ?", "s", id);
    if (rc < 0)
        return rc;
    rc = vdb_exec(db, "DELETE FROM alarm_state WHERE object = ?", "s", id);
    if (rc < 0)
        return rc;
    rc = vdb_exec(db, "DELETE FROM entity WHERE id = ?", "s", id);
    return rc < 0 ? rc : rc == 0 ? -ENOENT : 0;
}

int vdb_entity_type(struct vdb *db, const char *id, char *buf, size_t len)
{
    return vdb_query_str(db, buf, len, "SELECT type FROM entity WHERE id = ?", "s", id);
}

int vdb_entity_parent(struct vdb *db, const char *id, char *buf, size_t len)
{
    return vdb_query_str(db, buf, len,
                         "SELECT coalesce(parent, '') FROM entity WHERE id = ?", "s", id);
}

bool vdb_entity_exists(struct vdb *db, const char *id, const char *type)
{
    int64_t n = 0;

    if (!id)
        return false;
    if (type)
        vdb_query_int(db, &n, "SELECT count(*) FROM entity WHERE id = ? AND type = ?",
                      "ss", id, type);
    else
        vdb_query_int(db, &n, "SELECT count(*) FROM entity WHERE id = ?", "s", id);
    return n > 0;
}

static int folder_type(struct vdb *db, const char *id, char *buf, size_t len)
{
    return vdb_query_str(db, buf, len, "SELECT folder_type FROM folder WHERE id = ?",
                         "s", id);
}

/* The root folder exists from the first start on. */
static int ensure_root(struct vdb *db)
{
    int rc;

    if (vdb_entity_exists(db, VDB_ROOT_FOLDER, "folder"))
        return 0;
    rc = entity_insert(db, VDB_ROOT_FOLDER, "folder", "Datacenters", NULL);
    if (rc >= 0)
        rc = vdb_exec(db, "INSERT INTO folder (id, folder_type) VALUES (?, 'DATACENTER')",
                      "s", VDB_ROOT_FOLDER);
    return rc < 0 ? rc : 0;
}

static int folder_insert(struct vdb *db, const char *prefix, const char *name,
                         const char *parent, const char *ftype, const char *dc,
                         char out[VDB_ID_MAX])
{
    int rc = vdb_new_id(db, prefix, out);

    if (rc >= 0)
        rc = entity_insert(db, out, "folder", name, parent);
    if (rc >= 0)
        rc = vdb_exec(db, "INSERT INTO folder (id, folder_type, datacenter) VALUES (?, ?, ?)",
                      "sss", out, ftype, dc);
    return rc < 0 ? rc : 0;
}

int vdb_datacenter_create(struct vdb *db, const char *name, const char *folder,
                          char out_id[VDB_ID_MAX])
{
    char f[4][VDB_ID_MAX], ft[32];
    int rc;

    if (!name || !*name)
        return -EINVAL;
    if ((rc = vdb_begin(db)) < 0)
        return rc;
    rc = ensure_root(db);
    if (rc >= 0 && !folder)
        folder = VDB_ROOT_FOLDER;
    if (rc >= 0) {
        rc = folder_type(db, folder, ft, sizeof(ft));
        if (rc >= 0 && strcmp(ft, "DATACENTER"))
            rc = -EINVAL;
    }
    if (rc >= 0)
        rc = vdb_new_id(db, "datacenter", out_id);
    if (rc >= 0)
        rc = entity_insert(db, out_id, "datacenter", name, folder);
    if (rc >= 0)
        rc = folder_insert(db, "group-v", "vm", out_id, "VIRTUAL_MACHINE", out_id, f[0]);
    if (rc >= 0)
        rc = folder_insert(db, "group-h", "host", out_id, "HOST", out_id, f[1]);
    if (rc >= 0)
        rc = folder_insert(db, "group-s", "datastore", out_id, "DATASTORE", out_id, f[2]);
    if (rc >= 0)
        rc = folder_insert(db, "group-n", "network", out_id, "NETWORK", out_id, f[3]);
    if (rc >= 0)
        rc = vdb_exec(db, "INSERT INTO datacenter (id, vm_folder, host_folder,"
                      " datastore_folder, network_folder) VALUES (?, ?, ?, ?, ?)",
                      "sssss", out_id, f[0], f[1], f[2], f[3]);
    if (rc >= 0) {
        char msg[300];
        snprintf(msg, sizeof(msg), "Created datacenter %s", name);
        rc = (int)vdb_event_add_locked(db, "DatacenterCreatedEvent", "info", out_id, NULL, msg);
    }
    return vdb_finish(db, rc < 0 ? rc : 0);
}

/* Deletes ID and everything below it, children first. */
static int delete_subtree(struct vdb *db, const char *id)
{
    json_t *kids = NULL;
    size_t i;
    json_t *k;
    int rc = vdb_query_json(db, &kids, "SELECT id FROM entity WHERE parent = ?", "s", id);

    if (rc < 0)
        return rc;
    json_array_foreach(kids, i, k) {
        rc = delete_subtree(db, json_string_value(json_object_get(k, "id")));
        if (rc < 0)
            break;
    }
    json_decref(kids);
    if (rc < 0)
        return rc;
    /* Objects owned by a datacenter but parented elsewhere. */
    vdb_exec(db, "DELETE FROM host_datastore WHERE host = ? OR datastore = ?", "ss", id, id);
    vdb_exec(db, "DELETE FROM host_network WHERE host = ? OR network = ?", "ss", id, id);
    return entity_delete(db, id);
}

int vdb_datacenter_delete(struct vdb *db, const char *id, bool force)
{
    int64_t n = 0;
    int rc;

    if (!vdb_entity_exists(db, id, "datacenter"))
        return -ENOENT;
    if ((rc = vdb_begin(db)) < 0)
        return rc;
    rc = vdb_query_int(db, &n, "SELECT (SELECT count(*) FROM host WHERE datacenter = ?)"
                       " + (SELECT count(*) FROM vm WHERE datacenter = ?)", "ss", id, id);
    if (rc >= 0 && n > 0 && !force)
        rc = -ENOTEMPTY;
    if (rc >= 0)
        rc = delete_subtree(db, id);
    return vdb_finish(db, rc < 0 ? rc : 0);
}

int vdb_folder_create(struct vdb *db, const char *name, const char *parent,
                      char out_id[VDB_ID_MAX])
{
    char ft[32], dc[VDB_ID_MAX] = "";
    const char *prefix;
    int rc;

    if (!name || !*name || !parent)
        return -EINVAL;
    if ((rc = vdb_begin(db)) < 0)
        return rc;
    rc = ensure_root(db);
    if (rc >= 0)
        rc = folder_type(db, parent, ft, sizeof(ft));
    if (rc >= 0)
        vdb_query_str(db, dc, sizeof(dc), "SELECT coalesce(datacenter, '') FROM folder"
                      " WHERE id = ?", "s", parent);
    if (rc >= 0) {
        prefix = !strcmp(ft, "VIRTUAL_MACHINE") ? "group-v" : !strcmp(ft, "HOST") ? "group-h"
               : !strcmp(ft, "DATASTORE") ? "group-s" : !strcmp(ft, "NETWORK") ? "group-n"
               : "group-d";
        rc = folder_insert(db, prefix, name, parent, ft, *dc ? dc : NULL, out_id);
    }
    return vdb_finish(db, rc < 0 ? rc : 0);
}

int vdb_folder_delete(struct vdb *db, const char *id)
{
    int64_t n = 0;
    int rc;

    if (!vdb_entity_exists(db, id, "folder"))
        return -ENOENT;
    if (!strcmp(id, VDB_ROOT_FOLDER))
        return -EPERM;
    /* A datacenter's own four folders go only with the datacenter. */
    if (vdb_query_int(db, &n, "SELECT count(*) FROM datacenter WHERE ? IN"
                      " (vm_folder, host_folder, datastore_folder, network_folder)",
                      "s", id) == 0 && n > 0)
        return -EPERM;
    if ((rc = vdb_begin(db)) < 0)
        return rc;
    rc = vdb_query_int(db, &n, "SELECT count(*) FROM entity WHERE parent = ?", "s", id);
    if (rc >= 0 && n > 0)
        rc = -ENOTEMPTY;
    if (rc >= 0)
        rc = entity_delete(db, id);
    return vdb_finish(db, rc < 0 ? rc : 0);
}

/* The datacenter an entity lives in (walking up), or -ENOENT. */
static int datacenter_of(struct vdb *db, const char *id, char out[VDB_ID_MAX])
{
    return vdb_query_str(db, out, VDB_ID_MAX,
        "WITH RECURSIVE up(id, type, parent) AS ("
        "  SELECT id, type, parent FROM entity WHERE id = ?"
        "  UNION ALL SELECT e.id, e.type, e.parent FROM entity e JOIN up ON e.id = up.parent)"
        " SELECT id FROM up WHERE type = 'datacenter' LIMIT 1", "s", id);
}

/* Host folder for PARENT: a datacenter means its host folder. */
static int host_parent(struct vdb *db, const char *parent, char out[VDB_ID_MAX])
{
    char type[32], ft[32];
    int rc = vdb_entity_type(db, parent, type, sizeof(type));

    if (rc < 0)
        return rc;
    if (!strcmp(type, "datacenter"))
        return vdb_query_str(db, out, VDB_ID_MAX,
                             "SELECT host_folder FROM datacenter WHERE id = ?", "s", parent);
    if (!strcmp(type, "folder")) {
        rc = folder_type(db, parent, ft, sizeof(ft));
        if (rc < 0)
            return rc;
        if (strcmp(ft, "HOST"))
            return -EINVAL;
        snprintf(out, VDB_ID_MAX, "%s", parent);
        return 0;
    }
    return -EINVAL;
}

static int rp_insert(struct vdb *db, const char *name, const char *parent,
                     const char *dc, const char *owner, const struct vdb_alloc *cpu,
                     const struct vdb_alloc *mem, char out[VDB_ID_MAX])
{
    static const struct vdb_alloc cpu_def = { 0, -1, true, "NORMAL", 4000 };
    static const struct vdb_alloc mem_def = { 0, -1, true, "NORMAL", 163840 };
    int rc;

    if (!cpu)
        cpu = &cpu_def;
    if (!mem)
        mem = &mem_def;
    rc = vdb_new_id(db, "resgroup", out);
    if (rc >= 0)
        rc = entity_insert(db, out, "resource_pool", name, parent);
    if (rc >= 0)
        rc = vdb_exec(db, "INSERT INTO resource_pool (id, datacenter, owner,"
                      " cpu_reservation, cpu_limit, cpu_expandable, cpu_shares_level, cpu_shares,"
                      " mem_reservation, mem_limit, mem_expandable, mem_shares_level, mem_shares)"
                      " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", "sssIIisIIIisI",
                      out, dc, owner, cpu->reservation, cpu->limit, cpu->expandable ? 1 : 0,
                      cpu->shares_level ? cpu->shares_level : "NORMAL", cpu->shares,
                      mem->reservation, mem->limit, mem->expandable ? 1 : 0,
                      mem->shares_level ? mem->shares_level : "NORMAL", mem->shares);
    return rc < 0 ? rc : 0;
}

int vdb_cluster_create(struct vdb *db, const char *name, const char *parent,
                       bool ha, bool drs, char out_id[VDB_ID_MAX])
{
    char folder[VDB_ID_MAX], dc[VDB_ID_MAX], rp[VDB_ID_MAX];
    int rc;

    if (!name || !*name || !parent)
        return -EINVAL;
    if ((rc = vdb_begin(db)) < 0)
        return rc;
    rc = host_parent(db, parent, folder);
    if (rc >= 0)
        rc = datacenter_of(db, folder, dc);
    if (rc >= 0)
        rc = vdb_new_id(db, "domain-c", out_id);
    if (rc >= 0)
        rc = entity_insert(db, out_id, "cluster", name, folder);
    if (rc >= 0)
        rc = rp_insert(db, "Resources", out_id, dc, out_id, NULL, NULL, rp);
    if (rc >= 0)
        rc = vdb_exec(db, "INSERT INTO cluster (id, datacenter, resource_pool, ha_enabled,"
                      " drs_enabled) VALUES (?, ?, ?, ?, ?)", "sssii", out_id, dc, rp,
                      ha ? 1 : 0, drs ? 1 : 0);
    return vdb_finish(db, rc < 0 ? rc : 0);
}

int vdb_cluster_delete(struct vdb *db, const char *id)
{
    int64_t n = 0;
    int rc;

    if (!vdb_entity_exists(db, id, "cluster"))
        return -ENOENT;
    if ((rc = vdb_begin(db)) < 0)
        return rc;
    rc = vdb_query_int(db, &n, "SELECT (SELECT count(*) FROM host WHERE cluster = ?)"
                       " + (SELECT count(*) FROM vm WHERE cluster = ?)", "ss", id, id);
    if (rc >= 0 && n > 0)
        rc = -ENOTEMPTY;
    if (rc >= 0)
        rc = delete_subtree(db, id);
    return vdb_finish(db, rc < 0 ? rc : 0);
}

int vdb_host_add(struct vdb *db, const struct vdb_host_spec *s, char out_id[VDB_ID_MAX])
{
    char type[32], parent[VDB_ID_MAX], dc[VDB_ID_MAX], rp[VDB_ID_MAX];
    const char *cluster = NULL;
    int rc;

    if (!s->hostname || !*s->hostname || !s->parent || s->port <= 0 || s->port > 65535)
        return -EINVAL;
    if ((rc = vdb_begin(db)) < 0)
        return rc;
    rc = vdb_entity_type(db, s->parent, type, sizeof(type));
    if (rc >= 0 && !strcmp(type, "cluster")) {
        cluster = s->parent;
        snprintf(parent, sizeof(parent), "%s", s->parent);
        rc = vdb_query_str(db, rp, sizeof(rp),
                           "SELECT resource_pool FROM cluster WHERE id = ?", "s", cluster);
    } else if (rc >= 0) {
        rc = host_parent(db, s->parent, parent);
    }
    if (rc >= 0)
        rc = datacenter_of(db, parent, dc);
    if (rc >= 0)
        rc = vdb_new_id(db, "host", out_id);
    if (rc >= 0)
        rc = entity_insert(db, out_id, "host", s->name ? s->name : s->hostname, parent);
    if (rc >= 0 && !cluster)    /* a standalone host has its own root pool */
        rc = rp_insert(db, "Resources", out_id, dc, out_id, NULL, NULL, rp);
    if (rc >= 0)
        rc = vdb_exec(db, "INSERT INTO host (id, datacenter, cluster, resource_pool,"
                      " hostname, port, user_name, thumbprint) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                      "sssssiss", out_id, dc, cluster, rp, s->hostname, s->port,
                      s->user_name ? s->user_name : "", s->thumbprint ? s->thumbprint : "");
    if (rc >= 0) {
        char msg[300];
        snprintf(msg, sizeof(msg), "Added host %s", s->hostname);
        rc = (int)vdb_event_add_locked(db, "HostAddedEvent", "info", out_id, NULL, msg);
    }
    return vdb_finish(db, rc < 0 ? rc : 0);
}

int vdb_host_remove(struct vdb *db, const char *id)
{
    int rc;

    if (!vdb_entity_exists(db, id, "host"))
        return -ENOENT;
    if ((rc = vdb_begin(db)) < 0)
        return rc;
    /* Its VMs leave the inventory with it, as in vCenter. */
    rc = vdb_exec(db, "DELETE FROM entity WHERE id IN (SELECT id FROM vm WHERE host = ?)",
                  "s", id);
    if (rc >= 0)
        rc = delete_subtree(db, id);
    if (rc >= 0)
        rc = (int)vdb_event_add_locked(db, "HostRemovedEvent", "info", id, NULL,
                                       "Removed host");
    return vdb_finish(db, rc < 0 ? rc : 0);
}

int vdb_host_set_state(struct vdb *db, const char *id, const char *state)
{
    char now[32], msg[128];
    int rc;

    if (strcmp(state, "CONNECTED") && strcmp(state, "DISCONNECTED")
        && strcmp(state, "NOT_RESPONDING"))
        return -EINVAL;
    vdb_now(now, sizeof(now));
    if ((rc = vdb_begin(db)) < 0)
        return rc;
    rc = vdb_exec(db, "UPDATE host SET connection_state = ?, last_seen = ?"
                  " WHERE id = ? AND connection_state != ?", "ssss", state, now, id, state);
    if (rc == 0 && !vdb_entity_exists(db, id, "host"))
        rc = -ENOENT;
    if (rc > 0) {
        const char *type = !strcmp(state, "CONNECTED") ? "HostConnectedEvent"
                         : !strcmp(state, "DISCONNECTED") ? "HostDisconnectedEvent"
                         : "HostNotRespondingEvent";
        snprintf(msg, sizeof(msg), "Host connection state is now %s", state);
        int64_t seq = vdb_event_add_locked(db, type, !strcmp(state, "NOT_RESPONDING")
                                           ? "error" : "info", id, NULL, msg);
        if (seq < 0)
            rc = (int)seq;
        else if (!strcmp(state, "CONNECTED"))
            rc = vdb_exec(db, "DELETE FROM alarm_state WHERE alarm = 'alarm-1' AND object = ?",
                          "s", id) < 0 ? -EIO : 1;
    }
    return vdb_finish(db, rc);
}

int vdb_host_set_hw(struct vdb *db, const char *id, const struct vdb_host_hw *hw)
{
    int rc = vdb_exec(db, "UPDATE host SET cpu_count = ?, cpu_mhz = ?, memory_bytes = ?,"
                      " product_version = ? WHERE id = ?", "iiIss", hw->cpu_count,
                      hw->cpu_mhz, hw->memory_bytes,
                      hw->product_version ? hw->product_version : "", id);
    return rc < 0 ? rc : rc == 0 ? -ENOENT : 0;
}

int vdb_host_set_maintenance(struct vdb *db, const char *id, bool on)
{
    int rc;

    if ((rc = vdb_begin(db)) < 0)
        return rc;
    rc = vdb_exec(db, "UPDATE host SET maintenance = ? WHERE id = ?", "is", on ? 1 : 0, id);
    if (rc == 0)
        rc = -ENOENT;
    if (rc > 0)
        rc = (int)vdb_event_add_locked(db, on ? "EnteredMaintenanceModeEvent"
                                       : "ExitMaintenanceModeEvent", "info", id, NULL,
                                       on ? "Host entered maintenance mode"
                                          : "Host exited maintenance mode");
    return vdb_finish(db, rc < 0 ? rc : 0);
}

int vdb_datastore_report(struct vdb *db, const char *host,
                         const struct vdb_datastore_info *ds, char out_id[VDB_ID_MAX])
{
    char dc[VDB_ID_MAX], folder[VDB_ID_MAX];
    int rc;

    if (!ds->name || !*ds->name)
        return -EINVAL;
    if ((rc = vdb_begin(db)) < 0)
        return rc;
    rc = vdb_query_str(db, dc, sizeof(dc), "SELECT datacenter FROM host WHERE id = ?",
                       "s", host);
    if (rc >= 0)
        rc = vdb_query_str(db, folder, sizeof(folder),
                           "SELECT datastore_folder FROM datacenter WHERE id = ?", "s", dc);
    if (rc >= 0) {
        rc = vdb_query_str(db, out_id, VDB_ID_MAX, "SELECT d.id FROM datastore d JOIN entity e"
                           " ON e.id = d.id WHERE d.datacenter = ? AND e.name = ?", "ss",
                           dc, ds->name);
        if (rc == -ENOENT) {
            rc = vdb_new_id(db, "datastore", out_id);
            if (rc >= 0)
                rc = entity_insert(db, out_id, "datastore", ds->name, folder);
            if (rc >= 0)
                rc = vdb_exec(db, "INSERT INTO datastore (id, datacenter) VALUES (?, ?)",
                              "ss", out_id, dc);
        }
    }
    if (rc >= 0)
        rc = vdb_exec(db, "UPDATE datastore SET ds_type = ?, url = ?, capacity = ?,"
                      " free_space = ?, accessible = ? WHERE id = ?", "ssIIis",
                      ds->type ? ds->type : "VMFS", ds->url ? ds->url : "", ds->capacity,
                      ds->free_space, ds->accessible ? 1 : 0, out_id);
    if (rc >= 0)
        rc = vdb_exec(db, "INSERT OR IGNORE INTO host_datastore (host, datastore) VALUES (?, ?)",
                      "ss", host, out_id);
    /* The datastore usage alarm follows each report. */
    if (rc >= 0 && ds->capacity > 0) {
        double used = 100.0 * (double)(ds->capacity - ds->free_space) / (double)ds->capacity;
        double thr = 0;
        int64_t enabled = 0;
        json_t *a = NULL;

        if (vdb_query_row(db, &a, "SELECT threshold, enabled FROM alarm WHERE id = 'alarm-3'",
                          NULL) == 0) {
            thr = json_number_value(json_object_get(a, "threshold"));
            enabled = json_integer_value(json_object_get(a, "enabled"));
            json_decref(a);
        }
        if (enabled && used > thr) {
            char msg[160];
            int64_t have = 0;
            vdb_query_int(db, &have, "SELECT count(*) FROM alarm_state WHERE alarm = 'alarm-3'"
                          " AND object = ?", "s", out_id);
            snprintf(msg, sizeof(msg), "Datastore %s is %.1f%% full (threshold %.0f%%)",
                     ds->name, used, thr);
            rc = vdb_exec(db, "INSERT INTO alarm_state (alarm, object, status, time, message)"
                          " VALUES ('alarm-3', ?, 'yellow', strftime('%Y-%m-%dT%H:%M:%fZ','now'), ?)"
                          " ON CONFLICT (alarm, object) DO UPDATE SET message = excluded.message",
                          "ss", out_id, msg);
            if (rc >= 0 && !have)
                rc = (int)vdb_event_add_locked(db, "AlarmStatusChangedEvent", "warning",
                                               out_id, NULL, msg);
        } else if (rc >= 0) {
            rc = vdb_exec(db, "DELETE FROM alarm_state WHERE alarm = 'alarm-3' AND object = ?",
                          "s", out_id);
        }
    }
    return vdb_finish(db, rc < 0 ? rc : 0);
}

int vdb_network_report(struct vdb *db, const char *host, const char *name,
                       const char *type, int vlan, char out_id[VDB_ID_MAX])
{
    char dc[VDB_ID_MAX], folder[VDB_ID_MAX];
    int rc;

    if (!name || !*name)
        return -EINVAL;
    if ((rc = vdb_begin(db)) < 0)
        return rc;
    rc = vdb_query_str(db, dc, sizeof(dc), "SELECT datacenter FROM host WHERE id = ?",
                       "s", host);
    if (rc >= 0)
        rc = vdb_query_str(db, folder, sizeof(folder),
                           "SELECT network_folder FROM datacenter WHERE id = ?", "s", dc);
    if (rc >= 0) {
        rc = vdb_query_str(db, out_id, VDB_ID_MAX, "SELECT n.id FROM network n JOIN entity e"
                           " ON e.id = n.id WHERE n.datacenter = ? AND e.name = ?", "ss",
                           dc, name);
        if (rc == -ENOENT) {
            rc = vdb_new_id(db, "network", out_id);
            if (rc >= 0)
                rc = entity_insert(db, out_id, "network", name, folder);
            if (rc >= 0)
                rc = vdb_exec(db, "INSERT INTO network (id, datacenter) VALUES (?, ?)",
                              "ss", out_id, dc);
        }
    }
    if (rc >= 0)
        rc = vdb_exec(db, "UPDATE network SET net_type = ?, vlan = ? WHERE id = ?", "sis",
                      type ? type : "STANDARD_PORTGROUP", vlan, out_id);
    if (rc >= 0)
        rc = vdb_exec(db, "INSERT OR IGNORE INTO host_network (host, network) VALUES (?, ?)",
                      "ss", host, out_id);
    return vdb_finish(db, rc < 0 ? rc : 0);
}

/* The host no longer has the port groups not named in NAMES_JSON (a JSON
 * array of names): drop its links to them, and the networks no host has any
 * more (a port group removed from the last host that had it). */
int vdb_network_prune(struct vdb *db, const char *host, const char *names_json)
{
    json_t *gone = NULL;
    size_t i;
    json_t *g;
    int rc;

    if ((rc = vdb_begin(db)) < 0)
        return rc;
    rc = vdb_exec(db, "DELETE FROM host_network WHERE host = ? AND network NOT IN"
                  " (SELECT e.id FROM entity e WHERE e.type = 'network' AND e.name IN"
                  " (SELECT value FROM json_each(?)))", "ss", host, names_json);
    if (rc >= 0)
        rc = vdb_query_json(db, &gone, "SELECT n.id FROM network n WHERE n.id NOT IN"
                            " (SELECT network FROM host_network)", "");
    json_array_foreach(gone, i, g) {
        if (rc < 0)
            break;
        rc = entity_delete(db, json_string_value(json_object_get(g, "id")));
    }
    json_decref(gone);
    return vdb_finish(db, rc < 0 ? rc : 0);
}

static bool alloc_ok(const struct vdb_alloc *a)
{
    static const char *const levels[] = { "LOW", "NORMAL", "HIGH", "CUSTOM", NULL };
    bool lvl = !a->shares_level;

    for (int i = 0; levels[i] && !lvl; i++)
        lvl = !strcmp(levels[i], a->shares_level);
    return a->reservation >= 0 && a->limit >= -1 && a->shares >= 0 && lvl
        && (a->limit == -1 || a->limit >= a->reservation);
}

int vdb_rp_create(struct vdb *db, const char *name, const char *parent,
                  const struct vdb_alloc *cpu, const struct vdb_alloc *mem,
                  char out_id[VDB_ID_MAX])
{
    char dc[VDB_ID_MAX], owner[VDB_ID_MAX];
    int rc;

    if (!name || !*name || !parent || (cpu && !alloc_ok(cpu)) || (mem && !alloc_ok(mem)))
        return -EINVAL;
    if (!vdb_entity_exists(db, parent, "resource_pool"))
        return -ENOENT;
    if ((rc = vdb_begin(db)) < 0)
        return rc;
    rc = vdb_query_str(db, dc, sizeof(dc), "SELECT datacenter FROM resource_pool WHERE id = ?",
                       "s", parent);
    if (rc >= 0)
        rc = vdb_query_str(db, owner, sizeof(owner),
                           "SELECT owner FROM resource_pool WHERE id = ?", "s", parent);
    if (rc >= 0)
        rc = rp_insert(db, name, parent, dc, owner, cpu, mem, out_id);
    return vdb_finish(db, rc < 0 ? rc : 0);
}

int vdb_rp_update(struct vdb *db, const char *id, const char *name,
                  const struct vdb_alloc *cpu, const struct vdb_alloc *mem)
{
    int rc;

    if ((cpu && !alloc_ok(cpu)) || (mem && !alloc_ok(mem)) || (name && !*name))
        return -EINVAL;
    if (!vdb_entity_exists(db, id, "resource_pool"))
        return -ENOENT;
    if ((rc = vdb_begin(db)) < 0)
        return rc;
    rc = 0;
    if (name)
        rc = vdb_exec(db, "UPDATE entity SET name = ? WHERE id = ?", "ss", name, id);
    if (rc >= 0 && cpu)
        rc = vdb_exec(db, "UPDATE resource_pool SET cpu_reservation = ?, cpu_limit = ?,"
                      " cpu_expandable = ?, cpu_shares_level = ?, cpu_shares = ? WHERE id = ?",
                      "IIisIs", cpu->reservation, cpu->limit, cpu->expandable ? 1 : 0,
                      cpu->shares_level ? cpu->shares_level : "NORMAL", cpu->shares, id);
    if (rc >= 0 && mem)
        rc = vdb_exec(db, "UPDATE resource_pool SET mem_reservation = ?, mem_limit = ?,"
                      " mem_expandable = ?, mem_shares_level = ?, mem_shares = ? WHERE id = ?",
                      "IIisIs", mem->reservation, mem->limit, mem->expandable ? 1 : 0,
                      mem->shares_level ? mem->shares_level : "NORMAL", mem->shares, id);
    return vdb_finish(db, rc < 0 ? rc : 0);
}

int vdb_rp_delete(struct vdb *db, const char *id)
{
    char owner[VDB_ID_MAX], parent_type[32] = "";
    int64_t n = 0;
    int rc;

    if (!vdb_entity_exists(db, id, "resource_pool"))
        return -ENOENT;
    /* A cluster's or host's root pool goes only with its owner. */
    if (vdb_query_str(db, parent_type, sizeof(parent_type), "SELECT p.type FROM entity e"
                      " JOIN entity p ON p.id = e.parent WHERE e.id = ?", "s", id) == 0
        && strcmp(parent_type, "resource_pool"))
        return -EPERM;
    if ((rc = vdb_begin(db)) < 0)
        return rc;
    rc = vdb_query_int(db, &n, "SELECT (SELECT count(*) FROM vm WHERE resource_pool = ?)"
                       " + (SELECT count(*) FROM entity WHERE parent = ?)", "ss", id, id);
    if (rc >= 0 && n > 0)
        rc = -ENOTEMPTY;
    (void)owner;
    if (rc >= 0)
        rc = entity_delete(db, id);
    return vdb_finish(db, rc < 0 ? rc : 0);
}

/* A random RFC 4122 version 4 UUID. */
static int make_uuid(char out[37])
{
    unsigned char b[16];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0)
        return -errno;
    n = read(fd, b, sizeof(b));
    close(fd);
    if (n != (ssize_t)sizeof(b))
        return -EIO;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
             b[12], b[13], b[14], b[15]);
    return 0;
}

int vdb_vm_create(struct vdb *db, const struct vdb_vm_spec *s, char out_id[VDB_ID_MAX])
{
    char dc[VDB_ID_MAX], iu[37], bu[37], cluster[VDB_ID_MAX] = "", ft[32];
    int rc;

    if (!s->name || !*s->name || !s->folder || s->cpu_count < 1 || s->memory_mib < 1
        || s->cores_per_socket < 1)
        return -EINVAL;
    if ((rc = make_uuid(iu)) < 0 || (rc = make_uuid(bu)) < 0)
        return rc;
    if ((rc = vdb_begin(db)) < 0)
        return rc;
    rc = folder_type(db, s->folder, ft, sizeof(ft));
    if (rc >= 0 && strcmp(ft, "VIRTUAL_MACHINE"))
        rc = -EINVAL;
    if (rc >= 0)
        rc = datacenter_of(db, s->folder, dc);
    if (rc >= 0 && s->host)
        vdb_query_str(db, cluster, sizeof(cluster),
                      "SELECT coalesce(cluster, '') FROM host WHERE id = ?", "s", s->host);
    if (rc >= 0)
        rc = vdb_new_id(db, "vm", out_id);
    if (rc >= 0)
        rc = entity_insert(db, out_id, "vm", s->name, s->folder);
    if (rc >= 0)
        rc = vdb_exec(db, "INSERT INTO vm (id, datacenter, host, cluster, resource_pool,"
                      " datastore, guest_os, hw_version, power_state, cpu_count,"
                      " cores_per_socket, memory_mib, bios_uuid, instance_uuid, config_path,"
                      " hardware) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      "sssssssssiiIssss", out_id, dc, s->host, *cluster ? cluster : NULL,
                      s->resource_pool, s->datastore,
                      s->guest_os ? s->guest_os : "OTHER_LINUX_64",
                      s->hw_version ? s->hw_version : "VMX_19",
                      s->power_state ? s->power_state : "POWERED_OFF", s->cpu_count,
                      s->cores_per_socket, s->memory_mib,
                      s->bios_uuid ? s->bios_uuid : bu,
                      s->instance_uuid ? s->instance_uuid : iu,
                      s->config_path ? s->config_path : "",
                      s->hardware_json ? s->hardware_json : "{}");
    if (rc >= 0) {
        char msg[320];
        snprintf(msg, sizeof(msg), "Created virtual machine %s", s->name);
        rc = (int)vdb_event_add_locked(db, "VmCreatedEvent", "info", out_id, NULL, msg);
    }
    return vdb_finish(db, rc < 0 ? rc : 0);
}

int vdb_vm_delete(struct vdb *db, const char *id)
{
    char name[256] = "";
    int rc;

    if (!vdb_entity_exists(db, id, "vm"))
        return -ENOENT;
    if ((rc = vdb_begin(db)) < 0)
        return rc;
    vdb_query_str(db, name, sizeof(name), "SELECT name FROM entity WHERE id = ?", "s", id);
    rc = entity_delete(db, id);
    if (rc >= 0) {
        char msg[320];
        snprintf(msg, sizeof(msg), "Removed virtual machine %s", name);
        rc = (int)vdb_event_add_locked(db, "VmRemovedEvent", "info", id, NULL, msg);
    }
    return vdb_finish(db, rc < 0 ? rc : 0);
}

int vdb_vm_set_power(struct vdb *db, const char *id, const char *state, const char *user)
{
    char msg[160];
    int rc;

    if (strcmp(state, "POWERED_ON") && strcmp(state, "POWERED_OFF")
        && strcmp(state, "SUSPENDED"))
        return -EINVAL;
    if ((rc = vdb_begin(db)) < 0)
        return rc;
    rc = vdb_exec(db, "UPDATE vm SET power_state = ? WHERE id = ? AND power_state != ?",
                  "sss", state, id, state);
    if (rc == 0 && !vdb_entity_exists(db, id, "vm"))
        rc = -ENOENT;
    if (rc > 0) {
        if (strcmp(state, "POWERED_ON"))
            vdb_exec(db, "UPDATE vm SET tools_run_state = 'NOT_RUNNING',"
                     " guest_state = 'NOT_RUNNING' WHERE id = ?", "s", id);
        snprintf(msg, sizeof(msg), "Virtual machine power state is now %s", state);
        int64_t seq = vdb_event_add_locked(db, "VmPowerStateChangedEvent", "info", id,
                                           user, msg);
        if (seq < 0)
            rc = (int)seq;
    }
    return vdb_finish(db, rc);
}

int vdb_vm_set_files(struct vdb *db, const char *id, const char *datastore,
                     const char *config_path)
{
    int rc = vdb_exec(db, "UPDATE vm SET datastore = coalesce(nullif(?, ''), datastore),"
                      " config_path = coalesce(nullif(?, ''), config_path) WHERE id = ?", "sss",
                      datastore, config_path, id);
    return rc < 0 ? rc : 0;
}

int vdb_vm_set_host(struct vdb *db, const char *id, const char *host)
{
    char cluster[VDB_ID_MAX] = "", rp[VDB_ID_MAX] = "";
    int rc;

    if (host && vdb_query_str(db, cluster, sizeof(cluster),
                              "SELECT coalesce(cluster, '') FROM host WHERE id = ?", "s",
                              host) < 0)
        return -ENOENT;
    if (host)
        vdb_query_str(db, rp, sizeof(rp), "SELECT resource_pool FROM host WHERE id = ?",
                      "s", host);
    rc = vdb_exec(db, "UPDATE vm SET host = ?, cluster = ?, resource_pool ="
                  " CASE WHEN ? = '' THEN resource_pool"
                  "      WHEN resource_pool IN (SELECT id FROM resource_pool WHERE owner ="
                  "        coalesce(?, '')) THEN resource_pool ELSE ? END WHERE id = ?",
                  "ssssss", host, *cluster ? cluster : NULL, rp, *cluster ? cluster : host,
                  rp, id);
    return rc < 0 ? rc : rc == 0 ? -ENOENT : 0;
}

int vdb_vm_set_hardware(struct vdb *db, const char *id, int cpu_count,
                        int cores_per_socket, int64_t memory_mib)
{
    int rc;

    if (cpu_count < 1 || cores_per_socket < 1 || memory_mib < 1)
        return -EINVAL;
    rc = vdb_exec(db, "UPDATE vm SET cpu_count = ?, cores_per_socket = ?, memory_mib = ?"
                  " WHERE id = ?", "iiIs", cpu_count, cores_per_socket, memory_mib, id);
    return rc < 0 ? rc : rc == 0 ? -ENOENT : 0;
}

int vdb_vm_set_guest(struct vdb *db, const char *id, const char *tools_run_state,
                     const char *guest_state, const char *host_name, const char *ip)
{
    int rc = vdb_exec(db, "UPDATE vm SET tools_run_state = coalesce(?, tools_run_state),"
                      " guest_state = coalesce(?, guest_state),"
                      " guest_host_name = coalesce(?, guest_host_name),"
                      " guest_ip = coalesce(?, guest_ip) WHERE id = ?", "sssss",
                      tools_run_state, guest_state, host_name, ip, id);
    return rc < 0 ? rc : rc == 0 ? -ENOENT : 0;
}

int vdb_vm_by_uuid(struct vdb *db, const char *instance_uuid, char out_id[VDB_ID_MAX])
{
    return vdb_query_str(db, out_id, VDB_ID_MAX,
                         "SELECT id FROM vm WHERE instance_uuid = ?", "s", instance_uuid);
}

int vdb_bootstrap_admin(struct vdb *db, const char *admin, const char *hash)
{
    char now[32];
    int rc;

    vdb_now(now, sizeof(now));
    if ((rc = vdb_begin(db)) < 0)
        return rc;
    rc = ensure_root(db);
    if (rc >= 0)
        rc = vdb_exec(db, "INSERT INTO users (name, hash, builtin, created) VALUES (?, ?, 1, ?)",
                      "sss", admin, hash, now);
    if (rc >= 0)
        rc = vdb_exec(db, "INSERT INTO permission (entity, principal, role, propagate)"
                      " VALUES (?, ?, -1, 1)", "ss", VDB_ROOT_FOLDER, admin);
    return vdb_finish(db, rc < 0 ? rc : 0);
}

int vdb_vm_place(struct vdb *db, const char *id, const struct vdb_vm_spec *s)
{
    int rc;

    if ((rc = vdb_begin(db)) < 0)
        return rc;
    rc = vdb_exec(db, "UPDATE entity SET parent = coalesce(?, parent), name = coalesce(?, name)"
                  " WHERE id = ? AND type = 'vm'", "sss", s->folder, s->name, id);
    if (rc == 0)
        rc = -ENOENT;
    if (rc >= 0)
        rc = vdb_exec(db, "UPDATE vm SET resource_pool = coalesce(?, resource_pool),"
                      " guest_os = coalesce(?, guest_os), hw_version = coalesce(?, hw_version),"
                      " cores_per_socket = ?, hardware = coalesce(?, hardware),"
                      " datastore = coalesce(?, datastore) WHERE id = ?", "sssisss",
                      s->resource_pool, s->guest_os, s->hw_version,
                      s->cores_per_socket > 0 ? s->cores_per_socket : 1, s->hardware_json,
                      s->datastore, id);
    return vdb_finish(db, rc < 0 ? rc : 0);
}
