/* A small vpxd stand-in for hostd's integration tests: vpxd's real host
 * manager (vpxd/hostmgr.c) and its database listener (vpxd/hostmgr_db.c) on
 * a real database, driven by commands on stdin.
 *
 *   test_hostd_driver DBPATH STATEDIR [HEARTBEAT_MS]
 *
 * Each command line is "TAG CMD ARGS..."; its answer is "TAG OK ..." or
 * "TAG ERR <errno> <message>", possibly later (asynchronous calls).  What
 * hosts report is printed as "EVENT ..." lines. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <gnutls/gnutls.h>
#include <jansson.h>

#include "log.h"
#include "tls.h"
#include "vpxd/db.h"
#include "vpxd/hostmgr.h"
#include "vpxd/hostmgr_db.h"

static struct event_base *base;
static struct vdb *db;
static struct hostmgr *hm;
static char cluster[VDB_ID_MAX];

static void
out(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

/* ---- listener: record in the db, then tell the test ---------------------- */

static void
ev_state(void *arg, const char *host, enum hostmgr_conn_state st, const char *why)
{
    hostmgr_db_ops.host_state(db, host, st, why);
    out("EVENT state %s %s", host, hostmgr_conn_state_name(st));
}

static void
ev_info(void *arg, const char *host, const struct hostmgr_host_info *hi)
{
    hostmgr_db_ops.host_info(db, host, hi);
    out("EVENT info %s uuid=%s name=%s backend=%s cores=%u mem=%llu", host, hi->uuid,
        hi->name, hi->backend, hi->cpu_cores, (unsigned long long)hi->memory_bytes);
}

static void
ev_inventory(void *arg, const char *host, uint64_t gen,
             const struct hostmgr_datastore_info *ds, size_t n_ds,
             const struct hostmgr_network_info *nets, size_t n_nets,
             const struct hostmgr_vm_info *vms, size_t n_vms)
{
    hostmgr_db_ops.inventory(db, host, gen, ds, n_ds, nets, n_nets, vms, n_vms);
    out("EVENT inventory %s gen=%llu vms=%zu ds=%zu nets=%zu", host,
        (unsigned long long)gen, n_vms, n_ds, n_nets);
}

static void
ev_vm(void *arg, const char *host, const struct hostmgr_vm_info *vm)
{
    hostmgr_db_ops.vm_changed(db, host, vm);
    out("EVENT vm %s %s %s tools=%s", host, vm->uuid, hostmgr_power_state_name(vm->power),
        vm->tools == HOSTMGR_TOOLS_RUNNING ? "RUNNING" : "NOT_RUNNING");
}

static void
ev_removed(void *arg, const char *host, const char *uuid)
{
    hostmgr_db_ops.vm_removed(db, host, uuid);
    out("EVENT removed %s %s", host, uuid);
}

static void
ev_stats(void *arg, const char *host, const struct hostmgr_stats_sample *s, size_t n)
{
    out("EVENT stats %s n=%zu host_mhz=%u", host, n, n ? s[0].cpu_usage_mhz : 0);
}

static const struct hostmgr_ops ops = {
    .host_state = ev_state, .host_info = ev_info, .inventory = ev_inventory,
    .vm_changed = ev_vm, .vm_removed = ev_removed, .stats = ev_stats,
};

/* ---- command completions ------------------------------------------------ */

static void
done(void *arg, int err, const char *msg)
{
    char *tag = arg;
    if (err)
        out("%s ERR %d %s", tag, -err, msg ? msg : "");
    else
        out("%s OK%s%s", tag, msg ? " " : "", msg ? msg : "");
    free(tag);
}

/* A host whose first attach fails is not added (vpxd's host add does the
 * same: the row only stays if the host accepted us). */
static void
add_done(void *arg, int err, const char *msg)
{
    char *tag = arg, *sp = strchr(tag, ' ');
    if (err && sp)
        vdb_host_remove(db, sp + 1);
    done(arg, err, msg);
}

static void
vm_done(void *arg, int err, const char *msg, const struct hostmgr_vm_info *vm)
{
    char *tag = arg;
    if (err)
        out("%s ERR %d %s%s%s", tag, -err, msg ? msg : "", vm ? " power=" : "",
            vm ? hostmgr_power_state_name(vm->power) : "");
    else
        out("%s OK %s power=%s tools=%s cpu=%u mem=%llu path=%s", tag, vm->uuid,
            hostmgr_power_state_name(vm->power),
            vm->tools == HOSTMGR_TOOLS_RUNNING ? "RUNNING" : "NOT_RUNNING",
            vm->cpu_count, (unsigned long long)vm->memory_mib, vm->config_path);
    free(tag);
}

static void
probe_done(void *arg, int err, const char *msg, const char *thumb,
           const struct hostmgr_host_info *hi)
{
    char *tag = arg;
    if (err)
        out("%s ERR %d %s", tag, -err, msg ? msg : "");
    else
        out("%s OK %s uuid=%s name=%s", tag, thumb, hi->uuid, hi->name);
    free(tag);
}

static int
power_op(const char *s)
{
    static const char *const names[] = { "on", "off", "reset", "suspend", "resume",
                                         "shutdown", "reboot" };
    for (int i = 0; i < 7; i++)
        if (!strcmp(s, names[i]))
            return i;
    return -1;
}

static void
run(char *line)
{
    char *argv[12], *save = NULL, *tag;
    int argc = 0, rc = -EINVAL;

    for (char *t = strtok_r(line, " ", &save); t && argc < 12; t = strtok_r(NULL, " ", &save))
        argv[argc++] = t;
    if (argc < 2)
        return;
    tag = strdup(argv[0]);
    const char *cmd = argv[1];
    if (!strcmp(cmd, "thumb")) {
        out("%s OK %s", tag, hostmgr_thumbprint(hm));
        free(tag);
        return;
    } else if (!strcmp(cmd, "probe") && argc == 4) {
        rc = hostmgr_probe(hm, argv[2], (uint16_t)atoi(argv[3]), probe_done, tag);
    } else if (!strcmp(cmd, "add") && argc >= 5) {
        /* add ADDR PORT THUMB [USER PASS]: a host row, then attach. */
        char id[VDB_ID_MAX];
        struct vdb_host_spec s = { .name = argv[2], .hostname = argv[2],
                                   .port = atoi(argv[3]), .user_name = "root",
                                   .thumbprint = argv[4], .parent = cluster };
        char name[64];
        snprintf(name, sizeof name, "%s:%s", argv[2], argv[3]);
        s.name = name;
        if ((rc = vdb_host_add(db, &s, id)) < 0) {
            out("%s ERR %d vdb_host_add failed", tag, -rc);
            free(tag);
            return;
        }
        size_t n = strlen(tag);
        char *t2 = realloc(tag, n + VDB_ID_MAX + 2);
        if (!t2)
            abort();
        tag = t2;
        snprintf(tag + n, VDB_ID_MAX + 2, " %s", id);
        rc = hostmgr_host_attach(hm, id, argv[2], (uint16_t)atoi(argv[3]), argv[4],
                                 argc > 5 ? argv[5] : NULL, argc > 6 ? argv[6] : NULL,
                                 add_done, tag);
        if (rc)
            vdb_host_remove(db, id);
    } else if (!strcmp(cmd, "status") && argc == 3) {
        struct hostmgr_host_status st;
        if ((rc = hostmgr_host_status(hm, argv[2], &st)) == 0) {
            out("%s OK %s hb=%llu gen=%llu", tag, hostmgr_conn_state_name(st.state),
                (unsigned long long)st.heartbeats, (unsigned long long)st.inventory_generation);
            free(tag);
            return;
        }
    } else if (!strcmp(cmd, "create") && argc >= 6) {
        struct hostmgr_vm_spec s = { .uuid = argv[3], .name = argv[4], .datastore = argv[5],
                                     .workload = argc > 6 ? argv[6] : NULL,
                                     .memory_mib = 128, .cpu_count = 1,
                                     .network = "VM Network" };
        rc = hostmgr_vm_create(hm, argv[2], &s, vm_done, tag);
    } else if (!strcmp(cmd, "power") && argc == 5 && power_op(argv[4]) >= 0) {
        rc = hostmgr_vm_power(hm, argv[2], argv[3], (enum hostmgr_power_op)power_op(argv[4]),
                              vm_done, tag);
    } else if (!strcmp(cmd, "reconfig") && argc == 6) {
        rc = hostmgr_vm_reconfigure(hm, argv[2], argv[3], (uint32_t)atoi(argv[4]),
                                    (uint64_t)atoll(argv[5]), vm_done, tag);
    } else if (!strcmp(cmd, "delete") && argc == 4) {
        rc = hostmgr_vm_delete(hm, argv[2], argv[3], done, tag);
    } else if (!strcmp(cmd, "maint") && argc == 4) {
        rc = hostmgr_host_maintenance(hm, argv[2], !strcmp(argv[3], "on"), done, tag);
    } else if (!strcmp(cmd, "detach") && argc >= 3) {
        rc = hostmgr_host_detach(hm, argv[2], argc > 3 && !strcmp(argv[3], "forget"));
        if (!rc) {
            out("%s OK", tag);
            free(tag);
            return;
        }
    } else if (!strcmp(cmd, "dbvms") && argc == 3) {
        /* The database's view: uuid:power:tools per VM of the host. */
        json_t *rows = NULL;
        if ((rc = vdb_query_json(db, &rows, "SELECT instance_uuid, power_state,"
                                 " tools_run_state FROM vm WHERE host = ?"
                                 " ORDER BY instance_uuid", "s", argv[2])) >= 0) {
            char buf[8192] = "";
            size_t len = 0;
            for (size_t i = 0; i < json_array_size(rows); i++) {
                json_t *r = json_array_get(rows, i);
                len += (size_t)snprintf(buf + len, sizeof buf - len > 0 ? sizeof buf - len : 0,
                    " %s:%s:%s", json_string_value(json_object_get(r, "instance_uuid")),
                    json_string_value(json_object_get(r, "power_state")),
                    json_string_value(json_object_get(r, "tools_run_state")));
                if (len >= sizeof buf)
                    break;
            }
            out("%s OK n=%zu%s", tag, json_array_size(rows), buf);
            json_decref(rows);
            free(tag);
            return;
        }
    } else if (!strcmp(cmd, "dbhost") && argc == 3) {
        char st[64] = "";
        if ((rc = vdb_query_str(db, st, sizeof st, "SELECT connection_state FROM host"
                                " WHERE id = ?", "s", argv[2])) >= 0) {
            out("%s OK %s", tag, st);
            free(tag);
            return;
        }
    }
    if (rc) {
        out("%s ERR %d %s", tag, rc < 0 ? -rc : rc, rc == -EINVAL ? "bad command" : strerror(-rc));
        free(tag);
    }
}

static void
on_stdin(struct bufferevent *bev, void *arg)
{
    char *line;
    size_t n;
    while ((line = evbuffer_readln(bufferevent_get_input(bev), &n, EVBUFFER_EOL_LF))) {
        run(line);
        free(line);
    }
}

static void
on_stdin_event(struct bufferevent *bev, short what, void *arg)
{
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        event_base_loopexit(base, NULL);
}

static void
on_term(evutil_socket_t s, short w, void *arg)
{
    event_base_loopexit(base, NULL);
}

int
main(int argc, char **argv)
{
    struct kvc_tls_identity *id = NULL;
    struct bufferevent *in;
    struct event *term;
    char dc[VDB_ID_MAX], cert[4200], key[4200];
    int rc;

    if (argc < 3) {
        fprintf(stderr, "usage: %s DBPATH STATEDIR [HEARTBEAT_MS]\n", argv[0]);
        return 2;
    }
    kvc_log_init("vpxd-test");
    signal(SIGPIPE, SIG_IGN);
    gnutls_global_init();
    base = event_base_new();
    if ((rc = vdb_open(argv[1], &db)) < 0) {
        fprintf(stderr, "db: %s\n", strerror(-rc));
        return 1;
    }
    if ((rc = vdb_datacenter_create(db, "dc1", NULL, dc)) < 0 ||
        (rc = vdb_cluster_create(db, "cl1", dc, false, false, cluster)) < 0) {
        fprintf(stderr, "inventory: %s\n", strerror(-rc));
        return 1;
    }
    if ((rc = kvc_tls_ensure_identity(argv[2], "vpxd-test", &id))) {
        fprintf(stderr, "identity: %s\n", strerror(-rc));
        return 1;
    }
    kvc_tls_identity_free(id);
    snprintf(cert, sizeof cert, "%s/%s", argv[2], KVC_TLS_CERT_FILE);
    snprintf(key, sizeof key, "%s/%s", argv[2], KVC_TLS_KEY_FILE);
    struct hostmgr_config cfg = {
        .cert_file = cert, .key_file = key,
        .heartbeat_ms = argc > 3 ? (uint32_t)atoi(argv[3]) : 200,
        .miss_limit = 3, .reconnect_ms = 200, .call_timeout_ms = 10000,
        .stats_interval_ms = 500,
    };
    if ((rc = hostmgr_new(base, &cfg, &ops, NULL, &hm))) {
        fprintf(stderr, "hostmgr: %s\n", strerror(-rc));
        return 1;
    }
    in = bufferevent_socket_new(base, 0, 0);
    bufferevent_setcb(in, on_stdin, NULL, on_stdin_event, NULL);
    bufferevent_enable(in, EV_READ);
    term = evsignal_new(base, SIGTERM, on_term, NULL);
    event_add(term, NULL);
    out("READY %s", hostmgr_thumbprint(hm));
    event_base_dispatch(base);
    hostmgr_free(hm);
    bufferevent_free(in);
    event_free(term);
    vdb_close(db);
    event_base_free(base);
    gnutls_global_deinit();
    return 0;
}
