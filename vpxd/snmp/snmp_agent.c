/* The AgentX subagent: KVCENTER-MIB's tables on net-snmp's tdata helper,
 * driven from a libevent loop.
 *
 * Event loop: net-snmp wants to own select().  Instead, after every piece
 * of net-snmp work we ask it (snmp_select_info2) which sockets it reads and
 * when its next timer is due, and mirror that as libevent events: one
 * persistent read event per socket, one timer.  The socket callback runs
 * snmp_read2, the timer snmp_timeout; both then run due alarms (AgentX
 * pings and reconnects are alarms, with SIGALRM disabled) and re-mirror.
 * No thread, no lock: the agent lives in vpxd's loop thread.
 */
#include "vpxd/snmp/snmp_agent.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include <event2/event.h>

#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>
#include <net-snmp/agent/net-snmp-agent-includes.h>
#include <net-snmp/library/large_fd_set.h>

#include "log.h"
#include "vpxd/snmp/snmp_oids.h"

KVC_LOG_MODULE(snmp);

/* The AgentX session to the master; NULL while detached (subagent.c). */
extern netsnmp_session *main_session;

struct table;
typedef void (*index_fn)(const void *entry, oid idx[2]);
typedef int (*value_fn)(const void *entry, unsigned int col, netsnmp_variable_list *vb);

struct table {
    const char *name;
    const oid *oid;
    size_t oid_len;
    int nidx;
    unsigned int min_col, max_col;
    size_t entry_size;
    index_fn index;
    value_fn value;
    netsnmp_tdata *td;
    netsnmp_handler_registration *reg;
    netsnmp_table_registration_info *ti;        /* ours to free at stop */
};

struct fdev {
    int fd;
    struct event *ev;
};

struct kvc_snmp_agent {
    struct event_base *base;
    struct kvc_snmp_provider pv;
    unsigned int refresh_ms;
    char *prod[3];              /* name, version, build */
    struct event *timer;
    struct fdev *fds;
    size_t nfds;
    bool stale, have;
    uint64_t gen;
    uint64_t last_ms;
    bool was_connected;
};

static struct kvc_snmp_agent *agent;    /* net-snmp is global: one per process */

static uint64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint32_t
kvc_snmp_index_of(const char *id)
{
    size_t len = id ? strlen(id) : 0, start = len;
    while (start > 0 && isdigit((unsigned char)id[start - 1]))
        start--;
    if (start == len || len - start > 10)
        return 0;
    unsigned long long v = strtoull(id + start, NULL, 10);
    return v > 0 && v <= 2147483647ull ? (uint32_t)v : 0;
}

void
kvc_snmp_snapshot_clear(struct kvc_snmp_snapshot *s)
{
    if (!s)
        return;
    free(s->vms);
    free(s->nics);
    free(s->hosts);
    free(s->clusters);
    memset(s, 0, sizeof *s);
}

/* ---- net-snmp's log into ours ---- */

static int
log_cb(int major, int minor, void *serverarg, void *clientarg)
{
    static struct kvc_ratelimit rl = KVC_RATELIMIT_INIT(20, 10);
    const struct snmp_log_message *m = serverarg;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", m->msg ? m->msg : "");
    buf[strcspn(buf, "\n")] = 0;
    if (!*buf)
        return 0;
    if (m->priority <= LOG_WARNING)
        kvc_warn_rl(&rl, "net-snmp: %s", buf);
    else if (m->priority <= LOG_INFO)
        kvc_info_rl(&rl, "net-snmp: %s", buf);
    else
        kvc_dbg("net-snmp: %s", buf);
    return 0;
}

/* ---- value helpers ---- */

static int
set_str(netsnmp_variable_list *vb, const char *s)
{
    return snmp_set_var_typed_value(vb, ASN_OCTET_STR, s, strlen(s));
}

static int
set_int(netsnmp_variable_list *vb, long v)
{
    return snmp_set_var_typed_value(vb, ASN_INTEGER, &v, sizeof v);
}

/* VMware writes power states as text in vmwVmState. */
static const char *
state_text(const char *power_state)
{
    if (!strcmp(power_state, "poweredOn"))
        return "powered on";
    if (!strcmp(power_state, "suspended"))
        return "suspended";
    if (!strcmp(power_state, "poweredOff"))
        return "powered off";
    return power_state;
}

/* ---- the tables ---- */

static void
vm_index(const void *e, oid idx[2])
{
    idx[0] = ((const struct kvc_snmp_vm *)e)->index;
}

static int
vm_value(const void *e, unsigned int col, netsnmp_variable_list *vb)
{
    const struct kvc_snmp_vm *v = e;
    switch (col) {
    case 2: return set_str(vb, v->name);
    case 3: return set_str(vb, v->config_file);
    case 4: return set_str(vb, v->guest_os);
    case 5: return set_int(vb, v->memory_mb > INT32_MAX ? INT32_MAX : v->memory_mb);
    case 6: return set_str(vb, state_text(v->power_state));
    case 7: return set_str(vb, v->id);
    case 8: return set_str(vb, v->guest_state);
    case 9: return set_int(vb, v->vcpus > INT32_MAX ? INT32_MAX : v->vcpus);
    case 10: return set_str(vb, v->uuid);
    case 11: return set_str(vb, v->host);
    }
    return -1;
}

static void
nic_index(const void *e, oid idx[2])
{
    const struct kvc_snmp_nic *n = e;
    idx[0] = n->vm_index;
    idx[1] = n->nic_index;
}

static int
nic_value(const void *e, unsigned int col, netsnmp_variable_list *vb)
{
    const struct kvc_snmp_nic *n = e;
    switch (col) {
    case 3: return set_str(vb, n->label);
    case 4: return set_str(vb, n->portgroup);
    case 5: return set_int(vb, n->connected ? 1 : 2);
    case 6: return snmp_set_var_typed_value(vb, ASN_OCTET_STR, n->mac, 6);
    }
    return -1;
}

static void
host_index(const void *e, oid idx[2])
{
    idx[0] = ((const struct kvc_snmp_host *)e)->index;
}

static long
clamp(uint32_t v)
{
    return v > INT32_MAX ? INT32_MAX : (long)v;
}

static int
host_value(const void *e, unsigned int col, netsnmp_variable_list *vb)
{
    const struct kvc_snmp_host *h = e;
    switch (col) {
    case 2: return set_str(vb, h->name);
    case 3: return set_int(vb, h->state >= 1 && h->state <= 3 ? h->state : 2);
    case 4: return set_int(vb, clamp(h->cpu_capacity_mhz));
    case 5: return set_int(vb, clamp(h->cpu_usage_mhz));
    case 6: return set_int(vb, clamp(h->mem_capacity_mb));
    case 7: return set_int(vb, clamp(h->mem_usage_mb));
    case 8: return set_int(vb, clamp(h->vm_count));
    case 9: return set_str(vb, h->id);
    case 10: return set_str(vb, h->cluster);
    }
    return -1;
}

static void
cluster_index(const void *e, oid idx[2])
{
    idx[0] = ((const struct kvc_snmp_cluster *)e)->index;
}

static int
cluster_value(const void *e, unsigned int col, netsnmp_variable_list *vb)
{
    const struct kvc_snmp_cluster *c = e;
    switch (col) {
    case 2: return set_str(vb, c->name);
    case 3: return set_int(vb, c->ha_enabled ? 1 : 2);
    case 4: return set_int(vb, c->ha_status >= 1 && c->ha_status <= 4 ? c->ha_status
                               : c->ha_enabled ? KVC_SNMP_HA_GREEN : KVC_SNMP_HA_DISABLED);
    case 5: return set_int(vb, c->drs_enabled ? 1 : 2);
    case 6: return set_int(vb, c->drs_behavior >= 1 && c->drs_behavior <= 3 ? c->drs_behavior
                               : KVC_SNMP_DRS_MANUAL);
    case 7: return set_int(vb, clamp(c->host_count));
    case 8: return set_int(vb, clamp(c->vm_count));
    case 9: return set_str(vb, c->id);
    }
    return -1;
}

static const oid vm_table_oid[] = { KVC_OID_VM_TABLE };
static const oid nic_table_oid[] = { KVC_OID_VMNET_TABLE };
static const oid host_table_oid[] = { KVC_OID_HOST_TABLE };
static const oid cluster_table_oid[] = { KVC_OID_CLUSTER_TABLE };

static struct table tables[] = {
    { "kvcVmTable", vm_table_oid, OID_LENGTH(vm_table_oid), 1, 2, 11,
      sizeof(struct kvc_snmp_vm), vm_index, vm_value, NULL, NULL, NULL },
    { "kvcVmNetTable", nic_table_oid, OID_LENGTH(nic_table_oid), 2, 3, 6,
      sizeof(struct kvc_snmp_nic), nic_index, nic_value, NULL, NULL, NULL },
    { "kvcHostTable", host_table_oid, OID_LENGTH(host_table_oid), 1, 2, 10,
      sizeof(struct kvc_snmp_host), host_index, host_value, NULL, NULL, NULL },
    { "kvcClusterTable", cluster_table_oid, OID_LENGTH(cluster_table_oid), 1, 2, 9,
      sizeof(struct kvc_snmp_cluster), cluster_index, cluster_value, NULL, NULL, NULL },
};
#define NTABLES (sizeof tables / sizeof *tables)

static void refresh(struct kvc_snmp_agent *a);

static int
table_handler(netsnmp_mib_handler *h, netsnmp_handler_registration *reg,
              netsnmp_agent_request_info *reqinfo, netsnmp_request_info *requests)
{
    struct table *t = h->myvoid;
    if (reqinfo->mode != MODE_GET)
        return SNMP_ERR_NOERROR;
    for (netsnmp_request_info *r = requests; r; r = r->next) {
        if (r->processed)
            continue;
        const void *e = netsnmp_tdata_extract_entry(r);
        netsnmp_table_request_info *ti = netsnmp_extract_table_info(r);
        if (!e || !ti || t->value(e, ti->colnum, r->requestvb) != 0)
            netsnmp_set_request_error(reqinfo, r, SNMP_NOSUCHINSTANCE);
    }
    return SNMP_ERR_NOERROR;
}

/* First in each table's handler chain: bring the rows up to date before the
 * table helper looks for the requested row. */
static int
refresh_handler(netsnmp_mib_handler *h, netsnmp_handler_registration *reg,
                netsnmp_agent_request_info *reqinfo, netsnmp_request_info *requests)
{
    if (agent)
        refresh(agent);
    return netsnmp_call_next_handler(h, reg, reqinfo, requests);
}

static int
table_register(struct table *t)
{
    netsnmp_mib_handler *h = netsnmp_create_handler(t->name, table_handler);
    if (!h)
        return -ENOMEM;
    h->myvoid = t;
    t->reg = netsnmp_handler_registration_create(t->name, h, t->oid, t->oid_len,
                                                 HANDLER_CAN_RONLY);
    t->td = netsnmp_tdata_create_table(t->name, 0);
    netsnmp_table_registration_info *ti = SNMP_MALLOC_TYPEDEF(netsnmp_table_registration_info);
    if (!t->reg || !t->td || !ti) {
        free(ti);
        return -ENOMEM;
    }
    t->ti = ti;
    for (int k = 0; k < t->nidx; k++)
        netsnmp_table_helper_add_indexes(ti, ASN_INTEGER, 0);
    ti->min_column = t->min_col;
    ti->max_column = t->max_col;
    if (netsnmp_tdata_register(t->reg, t->td, ti) != MIB_REGISTERED_OK) {
        kvc_err("cannot register %s", t->name);
        return -EIO;
    }
    netsnmp_mib_handler *rh = netsnmp_create_handler("kvcRefresh", refresh_handler);
    if (!rh)
        return -ENOMEM;
    netsnmp_inject_handler(t->reg, rh);
    return 0;
}

static void
table_clear(struct table *t)
{
    if (!t->td)
        return;
    netsnmp_tdata_row *row;
    while ((row = netsnmp_tdata_row_first(t->td)))
        free(netsnmp_tdata_remove_and_delete_row(t->td, row));
}

static struct table *sort_table;

static int
entry_cmp(const void *a, const void *b)
{
    oid ia[2] = { 0, 0 }, ib[2] = { 0, 0 };
    sort_table->index(a, ia);
    sort_table->index(b, ib);
    return snmp_oid_compare(ia, sort_table->nidx, ib, sort_table->nidx);
}

/* Make the table's rows equal to ENTRIES (N of them, reordered here):
 * rows are matched by index and changed in place, added or removed, so
 * that a walk in progress continues in order. */
static int
table_sync(struct table *t, void *entries, size_t n)
{
    char *v = entries;
    sort_table = t;
    if (n > 1)
        qsort(v, n, t->entry_size, entry_cmp);
    netsnmp_tdata_row *row = netsnmp_tdata_row_first(t->td);
    size_t k = 0;
    int err = 0;
    while (row || k < n) {
        oid idx[2] = { 0, 0 };
        if (k < n) {
            t->index(v + k * t->entry_size, idx);
            bool bad = idx[0] == 0 || (t->nidx == 2 && idx[1] == 0);
            bool dup = k > 0 && entry_cmp(v + (k - 1) * t->entry_size, v + k * t->entry_size) == 0;
            if (bad || dup) {
                k++;            /* no index, or the same index twice: skip */
                continue;
            }
        }
        int cmp = !row ? 1 : k >= n ? -1
                  : snmp_oid_compare(row->oid_index.oids, row->oid_index.len, idx, t->nidx);
        if (cmp < 0) {
            netsnmp_tdata_row *next = netsnmp_tdata_row_next(t->td, row);
            free(netsnmp_tdata_remove_and_delete_row(t->td, row));
            row = next;
        } else if (cmp > 0) {
            void *data = malloc(t->entry_size);
            netsnmp_tdata_row *nr = data ? netsnmp_tdata_create_row() : NULL;
            if (!nr) {
                free(data);
                err = -ENOMEM;
                break;
            }
            memcpy(data, v + k * t->entry_size, t->entry_size);
            nr->data = data;
            for (int j = 0; j < t->nidx; j++) {
                long val = idx[j];
                netsnmp_tdata_row_add_index(nr, ASN_INTEGER, &val, sizeof val);
            }
            if (netsnmp_tdata_add_row(t->td, nr) != SNMPERR_SUCCESS) {
                free(netsnmp_tdata_delete_row(nr));
                err = -ENOMEM;
                break;
            }
            k++;
        } else {
            memcpy(row->data, v + k * t->entry_size, t->entry_size);
            row = netsnmp_tdata_row_next(t->td, row);
            k++;
        }
    }
    return err;
}

static void
refresh(struct kvc_snmp_agent *a)
{
    static struct kvc_ratelimit rl = KVC_RATELIMIT_INIT(3, 30);
    uint64_t now = now_ms(), gen = 0;
    if (a->pv.generation) {
        gen = a->pv.generation(a->pv.ctx);
        if (a->have && !a->stale && gen == a->gen)
            return;
    } else if (a->have && !a->stale && now - a->last_ms < a->refresh_ms) {
        return;
    }
    struct kvc_snmp_snapshot s = { 0 };
    int r = a->pv.snapshot ? a->pv.snapshot(a->pv.ctx, &s) : 0;
    a->last_ms = now;
    if (r < 0) {
        kvc_warn_rl(&rl, "inventory snapshot failed: %s; serving the previous one",
                    strerror(-r));
        kvc_snmp_snapshot_clear(&s);
        return;
    }
    r = table_sync(&tables[0], s.vms, s.nvms);
    if (!r)
        r = table_sync(&tables[1], s.nics, s.nnics);
    if (!r)
        r = table_sync(&tables[2], s.hosts, s.nhosts);
    if (!r)
        r = table_sync(&tables[3], s.clusters, s.nclusters);
    kvc_snmp_snapshot_clear(&s);
    if (r < 0) {
        kvc_warn_rl(&rl, "table update failed: %s", strerror(-r));
        return;
    }
    a->gen = gen;
    a->have = true;
    a->stale = false;
}

/* ---- product scalars ---- */

static int
product_handler(netsnmp_mib_handler *h, netsnmp_handler_registration *reg,
                netsnmp_agent_request_info *reqinfo, netsnmp_request_info *requests)
{
    int which = (int)(intptr_t)h->myvoid;
    if (reqinfo->mode != MODE_GET)
        return SNMP_ERR_NOERROR;
    for (netsnmp_request_info *r = requests; r; r = r->next) {
        const char *s = agent && agent->prod[which] ? agent->prod[which] : "";
        set_str(r->requestvb, s);
    }
    return SNMP_ERR_NOERROR;
}

static int
product_register(void)
{
    static const oid name_oid[] = { KVC_OID_PROD_NAME };
    static const oid ver_oid[] = { KVC_OID_PROD_VERSION };
    static const oid build_oid[] = { KVC_OID_PROD_BUILD };
    static const struct { const char *n; const oid *o; size_t len; } s[] = {
        { "kvcProdName", name_oid, OID_LENGTH(name_oid) },
        { "kvcProdVersion", ver_oid, OID_LENGTH(ver_oid) },
        { "kvcProdBuild", build_oid, OID_LENGTH(build_oid) },
    };
    for (int k = 0; k < 3; k++) {
        netsnmp_mib_handler *h = netsnmp_create_handler(s[k].n, product_handler);
        if (!h)
            return -ENOMEM;
        h->myvoid = (void *)(intptr_t)k;
        netsnmp_handler_registration *reg = netsnmp_handler_registration_create(
            s[k].n, h, s[k].o, s[k].len, HANDLER_CAN_RONLY);
        if (!reg || netsnmp_register_scalar(reg) != MIB_REGISTERED_OK)
            return -EIO;
    }
    return 0;
}

/* ---- libevent glue ---- */

static void sync_events(struct kvc_snmp_agent *a);

static void
after_io(struct kvc_snmp_agent *a)
{
    run_alarms();
    netsnmp_check_outstanding_agent_requests();
    bool c = main_session != NULL;
    if (c != a->was_connected) {
        if (c)
            kvc_info("attached to the SNMP master agent");
        else
            kvc_warn("detached from the SNMP master agent; retrying");
        a->was_connected = c;
    }
    sync_events(a);
}

static void
on_read(evutil_socket_t fd, short what, void *arg)
{
    struct kvc_snmp_agent *a = arg;
    netsnmp_large_fd_set set;
    netsnmp_large_fd_set_init(&set, fd + 1);
    NETSNMP_LARGE_FD_SET(fd, &set);
    snmp_read2(&set);
    netsnmp_large_fd_set_cleanup(&set);
    after_io(a);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct kvc_snmp_agent *a = arg;
    snmp_timeout();
    after_io(a);
}

/* Mirror net-snmp's sockets and next timeout as libevent events. */
static void
sync_events(struct kvc_snmp_agent *a)
{
    netsnmp_large_fd_set set;
    int numfds = 0, block = 1;
    struct timeval tv = { 0, 0 };
    netsnmp_large_fd_set_init(&set, FD_SETSIZE);
    snmp_select_info2(&numfds, &set, &tv, &block);

    /* drop events of sockets net-snmp no longer reads */
    size_t keep = 0;
    for (size_t k = 0; k < a->nfds; k++) {
        if (a->fds[k].fd < numfds && NETSNMP_LARGE_FD_ISSET(a->fds[k].fd, &set)) {
            a->fds[keep++] = a->fds[k];
        } else {
            event_free(a->fds[k].ev);
        }
    }
    a->nfds = keep;
    /* add the new ones */
    for (int fd = 0; fd < numfds; fd++) {
        if (!NETSNMP_LARGE_FD_ISSET(fd, &set))
            continue;
        bool known = false;
        for (size_t k = 0; k < a->nfds && !known; k++)
            known = a->fds[k].fd == fd;
        if (known)
            continue;
        struct fdev *v = realloc(a->fds, (a->nfds + 1) * sizeof *v);
        if (!v)
            break;
        a->fds = v;
        struct event *ev = event_new(a->base, fd, EV_READ | EV_PERSIST, on_read, a);
        if (!ev || event_add(ev, NULL) < 0) {
            if (ev)
                event_free(ev);
            kvc_warn("cannot watch SNMP socket %d", fd);
            continue;
        }
        a->fds[a->nfds].fd = fd;
        a->fds[a->nfds].ev = ev;
        a->nfds++;
    }
    netsnmp_large_fd_set_cleanup(&set);

    if (block) {
        evtimer_del(a->timer);
    } else {
        if (tv.tv_sec < 0)
            tv.tv_sec = 0, tv.tv_usec = 0;
        evtimer_add(a->timer, &tv);
    }
}

/* ---- start, stop ---- */

int
kvc_snmp_agent_start(struct event_base *base, const struct kvc_snmp_config *cfg,
                     const struct kvc_snmp_provider *pv, struct kvc_snmp_agent **out)
{
    if (agent)
        return -EBUSY;
    struct kvc_snmp_agent *a = calloc(1, sizeof *a);
    if (!a)
        return -ENOMEM;
    a->base = base;
    a->pv = *pv;
    a->refresh_ms = cfg->refresh_ms ? cfg->refresh_ms : 1000;
    a->stale = true;
    const char *prod[3] = { cfg->prod_name ? cfg->prod_name : "kvcenter",
                            cfg->prod_version ? cfg->prod_version : "",
                            cfg->prod_build ? cfg->prod_build : "" };
    for (int k = 0; k < 3; k++)
        if (!(a->prod[k] = strdup(prod[k]))) {
            kvc_snmp_agent_stop(a);
            return -ENOMEM;
        }
    a->timer = evtimer_new(base, on_timer, a);
    if (!a->timer) {
        kvc_snmp_agent_stop(a);
        return -ENOMEM;
    }
    agent = a;

    /* net-snmp: a subagent, no config files, no persistent state, no
     * SIGALRM (our loop runs its alarms), log through ours. */
    netsnmp_ds_set_boolean(NETSNMP_DS_APPLICATION_ID, NETSNMP_DS_AGENT_ROLE, 1);
    if (cfg->agentx_socket)
        netsnmp_ds_set_string(NETSNMP_DS_APPLICATION_ID, NETSNMP_DS_AGENT_X_SOCKET,
                              cfg->agentx_socket);
    netsnmp_ds_set_int(NETSNMP_DS_APPLICATION_ID, NETSNMP_DS_AGENT_AGENTX_PING_INTERVAL,
                       cfg->ping_interval > 0 ? cfg->ping_interval : 5);
    /* net-snmp would warn on every failed reconnect; after_io logs the
     * transitions once instead. */
    netsnmp_ds_set_boolean(NETSNMP_DS_APPLICATION_ID, NETSNMP_DS_AGENT_NO_CONNECTION_WARNINGS, 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_ALARM_DONT_USE_SIG, 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_READ_CONFIGS, 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_PERSIST_STATE, 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_LOAD, 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_SAVE, 1);
    snmp_disable_log();
    netsnmp_register_loghandler(NETSNMP_LOGHANDLER_CALLBACK, LOG_DEBUG);
    snmp_register_callback(SNMP_CALLBACK_LIBRARY, SNMP_CALLBACK_LOGGING, log_cb, NULL);
    /* No MIB files are needed: everything is numeric. */
    setenv("MIBS", "", 0);
    setenv("MIBDIRS", "/nonexistent", 0);

    if (init_agent("kvcenter") != 0) {
        kvc_err("net-snmp init_agent failed");
        kvc_snmp_agent_stop(a);
        return -EIO;
    }
    /* init_agent installs the documented 15 s default: set ours again. */
    netsnmp_ds_set_int(NETSNMP_DS_APPLICATION_ID, NETSNMP_DS_AGENT_AGENTX_PING_INTERVAL,
                       cfg->ping_interval > 0 ? cfg->ping_interval : 5);
    int r = product_register();
    for (size_t k = 0; r == 0 && k < NTABLES; k++)
        r = table_register(&tables[k]);
    if (r < 0) {
        kvc_snmp_agent_stop(a);
        return r;
    }
    init_snmp("kvcenter");
    a->was_connected = main_session != NULL;
    if (a->was_connected)
        kvc_info("attached to the SNMP master agent at %s",
                 cfg->agentx_socket ? cfg->agentx_socket : "(default socket)");
    else
        kvc_warn("no SNMP master agent at %s yet; retrying every %d s",
                 cfg->agentx_socket ? cfg->agentx_socket : "(default socket)",
                 cfg->ping_interval > 0 ? cfg->ping_interval : 5);
    sync_events(a);
    *out = a;
    return 0;
}

bool
kvc_snmp_agent_connected(const struct kvc_snmp_agent *a)
{
    return a && main_session != NULL;
}

void
kvc_snmp_agent_invalidate(struct kvc_snmp_agent *a)
{
    if (a)
        a->stale = true;
}

void
kvc_snmp_agent_stop(struct kvc_snmp_agent *a)
{
    if (!a)
        return;
    if (agent == a) {
        netsnmp_tdata *td[NTABLES];
        snmp_shutdown("kvcenter");
        for (size_t k = 0; k < NTABLES; k++) {
            table_clear(&tables[k]);
            if (tables[k].ti) {
                snmp_free_varbind(tables[k].ti->indexes);
                free(tables[k].ti);
                tables[k].ti = NULL;
            }
            td[k] = tables[k].td;
            tables[k].td = NULL;
            tables[k].reg = NULL;
        }
        shutdown_agent();
        /* The tdata handler does not own its table: free it once the
         * handlers that point at it are gone. */
        for (size_t k = 0; k < NTABLES; k++)
            if (td[k])
                netsnmp_tdata_delete_table(td[k]);
        agent = NULL;
    }
    for (size_t k = 0; k < a->nfds; k++)
        event_free(a->fds[k].ev);
    free(a->fds);
    if (a->timer)
        event_free(a->timer);
    for (int k = 0; k < 3; k++)
        free(a->prod[k]);
    free(a);
}

/* ---- notifications ---- */

static void
add_str(netsnmp_variable_list **vars, unsigned int obj, const char *s)
{
    oid o[] = { KVC_OID_NOTIFY_OBJECTS, obj, 0 };
    s = s ? s : "";
    snmp_varlist_add_variable(vars, o, OID_LENGTH(o), ASN_OCTET_STR, s, strlen(s));
}

int
kvc_snmp_agent_notify(struct kvc_snmp_agent *a, const struct kvc_snmp_event *e)
{
    static struct kvc_ratelimit rl = KVC_RATELIMIT_INIT(5, 30);
    if (e->trap < KVC_TRAP_VM_POWERED_ON || e->trap > KVC_TRAP_ALARM_RAISED)
        return -EINVAL;
    if (!a || !main_session) {
        kvc_info_rl(&rl, "no SNMP master attached: notification %d for %s dropped",
                    e->trap, e->entity_id ? e->entity_id : "");
        return -ENOTCONN;
    }
    static const oid trap_oid_oid[] = { 1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0 };
    oid notif[] = { KVC_OID_NOTIFICATIONS, (oid)e->trap };
    netsnmp_variable_list *vars = NULL;
    snmp_varlist_add_variable(&vars, trap_oid_oid, OID_LENGTH(trap_oid_oid), ASN_OBJECT_ID,
                              notif, sizeof notif);
    if (e->trap == KVC_TRAP_ALARM_RAISED) {
        add_str(&vars, KVC_NOTIFY_ALARM_NAME, e->alarm_name);
        long sev = e->alarm_severity >= 1 && e->alarm_severity <= 4 ? e->alarm_severity : 1;
        oid o[] = { KVC_OID_NOTIFY_OBJECTS, KVC_NOTIFY_ALARM_SEVERITY, 0 };
        snmp_varlist_add_variable(&vars, o, OID_LENGTH(o), ASN_INTEGER, &sev, sizeof sev);
    }
    add_str(&vars, KVC_NOTIFY_ENTITY_NAME, e->entity_name);
    add_str(&vars, KVC_NOTIFY_ENTITY_ID, e->entity_id);
    if (e->trap != KVC_TRAP_HOST_NOT_RESPONDING && e->trap != KVC_TRAP_HOST_CONNECTED
        && e->trap != KVC_TRAP_ALARM_RAISED)
        add_str(&vars, KVC_NOTIFY_HOST_NAME, e->host_name);
    if (e->trap == KVC_TRAP_HA_VM_RESTARTED || e->trap == KVC_TRAP_ALARM_RAISED)
        add_str(&vars, KVC_NOTIFY_MESSAGE, e->message);
    if (!vars)
        return -ENOMEM;
    send_v2trap(vars);
    snmp_free_varbind(vars);
    kvc_dbg("notification %d for %s sent", e->trap, e->entity_id ? e->entity_id : "");
    /* The notify PDU is queued on the AgentX socket: flush it now. */
    sync_events(a);
    return 0;
}

static int
vm_cmp_idx(const void *a, const void *b)
{
    uint32_t x = ((const struct kvc_snmp_vm *)a)->index, y = ((const struct kvc_snmp_vm *)b)->index;
    return x < y ? -1 : x > y;
}

void
kvc_snmp_agent_notify_diff(struct kvc_snmp_agent *a, const struct kvc_snmp_snapshot *old,
                           const struct kvc_snmp_snapshot *cur)
{
    struct kvc_snmp_vm *sorted = NULL;
    if (old->nvms) {
        sorted = malloc(old->nvms * sizeof *sorted);
        if (!sorted)
            return;
        memcpy(sorted, old->vms, old->nvms * sizeof *sorted);
        qsort(sorted, old->nvms, sizeof *sorted, vm_cmp_idx);
    }
    for (size_t k = 0; k < cur->nvms; k++) {
        const struct kvc_snmp_vm *v = &cur->vms[k];
        const struct kvc_snmp_vm *o = sorted ? bsearch(v, sorted, old->nvms, sizeof *sorted,
                                                       vm_cmp_idx) : NULL;
        if (!o)
            continue;
        struct kvc_snmp_event e = { .entity_name = v->name, .entity_id = v->id,
                                    .host_name = v->host };
        if (strcmp(o->power_state, v->power_state)) {
            e.trap = !strcmp(v->power_state, "poweredOn") ? KVC_TRAP_VM_POWERED_ON
                     : !strcmp(v->power_state, "suspended") ? KVC_TRAP_VM_SUSPENDED
                     : KVC_TRAP_VM_POWERED_OFF;
            kvc_snmp_agent_notify(a, &e);
        }
        bool was_run = !strcmp(o->guest_state, "running");
        bool is_run = !strcmp(v->guest_state, "running");
        if (was_run && !is_run && !strcmp(v->power_state, "poweredOn")) {
            e.trap = KVC_TRAP_VM_HEARTBEAT_LOST;
            kvc_snmp_agent_notify(a, &e);
        } else if (!was_run && is_run) {
            e.trap = KVC_TRAP_VM_HEARTBEAT_RESTORED;
            kvc_snmp_agent_notify(a, &e);
        }
    }
    free(sorted);
    for (size_t k = 0; k < cur->nhosts; k++) {
        const struct kvc_snmp_host *h = &cur->hosts[k];
        for (size_t j = 0; j < old->nhosts; j++) {
            const struct kvc_snmp_host *o = &old->hosts[j];
            if (o->index != h->index || o->state == h->state)
                continue;
            struct kvc_snmp_event e = { .entity_name = h->name, .entity_id = h->id };
            if (h->state == KVC_SNMP_HOST_NOT_RESPONDING)
                e.trap = KVC_TRAP_HOST_NOT_RESPONDING;
            else if (h->state == KVC_SNMP_HOST_CONNECTED)
                e.trap = KVC_TRAP_HOST_CONNECTED;
            else
                break;
            kvc_snmp_agent_notify(a, &e);
            break;
        }
    }
}
