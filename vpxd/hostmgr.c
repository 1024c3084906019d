/* vpxd's host manager (see hostmgr.h and docs/hosts.md).
 *
 * One RPC client per managed host.  Each connection attempt is one client
 * without the transport's own reconnect: hostmgr runs the reconnect loop
 * itself, so that every attempt ends in a Hello reply or a clear error and
 * the attach callback can say why (thumbprint mismatch, refused, bad
 * credentials).  A heartbeat watchdog per host turns silence into
 * NOT_RESPONDING. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "host.pb-c.h"
#include "log.h"
#include "rpc.h"
#include "tls.h"
#include "vpxd/hostmgr.h"

KVC_LOG_MODULE(hostmgr);

/* One connection attempt: the client and the host it serves.  Callbacks of
 * the client only reach the host through the link, and a host that goes
 * away clears link->h, so no callback can touch freed memory; the client
 * itself is freed later from the loop (never inside its own callbacks). */
struct hm_link {
    struct hm_link *next;
    struct hostmgr *hm;
    struct hm_host *h;                  /* NULL once abandoned */
    struct kvc_rpc_client *cl;
    struct event *reap;
};

struct hm_host {
    struct hm_host *next;
    struct hostmgr *hm;
    char *id, *addr, *thumbprint, *user, *password;
    uint16_t port;
    struct hm_link *link;               /* current attempt or session */
    struct kvc_rpc_client *cl;          /* link->cl, for calls */
    bool session;                       /* Hello succeeded on cl */
    enum hostmgr_conn_state state;
    int64_t last_hb_ms;
    uint64_t heartbeats;
    uint64_t inv_gen;
    struct event *watchdog, *retry;
    hostmgr_done_cb attach_cb;          /* pending first attach */
    void *attach_arg;
};

struct hostmgr {
    struct event_base *base;
    struct hostmgr_config cfg;
    struct hostmgr_ops ops;
    void *ops_arg;
    struct kvc_tls_identity *id;
    struct hm_host *hosts;
    struct hm_link *links;
};

static int64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *
hostmgr_conn_state_name(enum hostmgr_conn_state s)
{
    switch (s) {
    case HOSTMGR_DISCONNECTED: return "disconnected";
    case HOSTMGR_CONNECTING: return "connecting";
    case HOSTMGR_CONNECTED: return "connected";
    case HOSTMGR_NOT_RESPONDING: return "not_responding";
    }
    return "unknown";
}

const char *
hostmgr_power_state_name(enum hostmgr_power_state s)
{
    switch (s) {
    case HOSTMGR_POWERED_OFF: return "POWERED_OFF";
    case HOSTMGR_POWERED_ON: return "POWERED_ON";
    case HOSTMGR_SUSPENDED: return "SUSPENDED";
    }
    return "UNKNOWN";
}

/* Transport status -> errno, for callers that only know errno. */
static int
rpc_errno(int status, const char *msg)
{
    switch (status) {
    case KVC_RPC_OK: return 0;
    case KVC_RPC_E_TIMEOUT: return -ETIMEDOUT;
    case KVC_RPC_E_DISCONNECTED: return -ENOTCONN;
    case KVC_RPC_E_UNAVAILABLE:
        return msg && strstr(msg, "thumbprint") ? -EPERM : -ECONNREFUSED;
    case KVC_RPC_E_PERMISSION: return -EPERM;
    case KVC_RPC_E_NOT_FOUND: return -ENOENT;
    case KVC_RPC_E_INVALID_ARGUMENT: return -EINVAL;
    case KVC_RPC_E_CONFLICT: return -EBUSY;
    case KVC_RPC_E_NOT_IMPLEMENTED: return -ENOSYS;
    case KVC_RPC_E_CANCELLED: return -ECANCELED;
    default: return -EIO;
    }
}

static struct hm_host *
find_host(const struct hostmgr *hm, const char *id)
{
    for (struct hm_host *h = hm->hosts; h; h = h->next)
        if (!strcmp(h->id, id))
            return h;
    return NULL;
}

static void
link_reap_cb(evutil_socket_t fd, short what, void *arg)
{
    struct hm_link *l = arg, **pp;

    for (pp = &l->hm->links; *pp && *pp != l; pp = &(*pp)->next)
        ;
    if (*pp)
        *pp = l->next;
    l->h = NULL;
    kvc_rpc_client_free(l->cl);         /* its callbacks see l->h == NULL */
    event_free(l->reap);
    free(l);
}

/* Abandon a link: its client is freed on the next loop pass. */
static void
link_drop(struct hm_link *l, bool reap)
{
    static const struct timeval zero = { 0, 0 };

    if (!l)
        return;
    if (l->h && l->h->link == l) {
        l->h->link = NULL;
        l->h->cl = NULL;
        l->h->session = false;
    }
    l->h = NULL;
    if (reap)
        event_add(l->reap, &zero);
}

static void
set_state(struct hm_host *h, enum hostmgr_conn_state st, const char *reason)
{
    if (h->state == st)
        return;
    kvc_info("host %s (%s:%u): %s -> %s (%s)", h->id, h->addr, h->port,
             hostmgr_conn_state_name(h->state), hostmgr_conn_state_name(st), reason);
    h->state = st;
    if (h->hm->ops.host_state)
        h->hm->ops.host_state(h->hm->ops_arg, h->id, st, reason);
}

/* ---- conversions -------------------------------------------------------- */

static void
host_info_from(const Kvc__Host__HostInfo *m, struct hostmgr_host_info *o)
{
    memset(o, 0, sizeof *o);
    if (!m)
        return;
    o->uuid = m->uuid;
    o->name = m->name;
    o->thumbprint = m->thumbprint;
    o->version = m->version;
    o->backend = m->backend;
    o->cpu_model = m->cpu_model;
    o->cpu_sockets = m->cpu_sockets;
    o->cpu_cores = m->cpu_cores;
    o->cpu_threads = m->cpu_threads;
    o->cpu_mhz = m->cpu_mhz;
    o->memory_bytes = m->memory_bytes;
}

static void
vm_info_from(const Kvc__Host__VmInfo *m, struct hostmgr_vm_info *o)
{
    memset(o, 0, sizeof *o);
    o->uuid = m->uuid;
    o->name = m->name;
    o->datastore = m->datastore;
    o->config_path = m->config_path;
    o->guest_os = m->guest_os;
    o->cpu_count = m->cpu_count;
    o->memory_mib = m->memory_mib;
    o->disk_bytes = m->disk_bytes;
    o->power = m->power == KVC__HOST__POWER_STATE__POWERED_ON ? HOSTMGR_POWERED_ON
             : m->power == KVC__HOST__POWER_STATE__SUSPENDED ? HOSTMGR_SUSPENDED
             : HOSTMGR_POWERED_OFF;
    o->tools = m->tools == KVC__HOST__TOOLS_STATE__TOOLS_RUNNING
             ? HOSTMGR_TOOLS_RUNNING : HOSTMGR_TOOLS_NOT_RUNNING;
    o->generation = m->generation;
}

/* ---- what hosts send (one-way messages) --------------------------------- */

static struct hm_host *
msg_host(struct kvc_rpc_call *call, void *arg)
{
    struct hm_link *l = arg;
    /* Messages only count once the host said Hello on this connection. */
    return l->h && l->h->session ? l->h : NULL;
}

static void
on_heartbeat(struct kvc_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
    struct hm_host *h = msg_host(call, arg);
    const Kvc__Host__Heartbeat *m = (const Kvc__Host__Heartbeat *)req;

    if (h) {
        h->last_hb_ms = now_ms();
        h->heartbeats++;
        if (h->state != HOSTMGR_CONNECTED)
            set_state(h, HOSTMGR_CONNECTED, "heartbeats resumed");
        if (m->inventory_generation != h->inv_gen)
            kvc_dbg("host %s: generation %llu, have %llu", h->id,
                    (unsigned long long)m->inventory_generation,
                    (unsigned long long)h->inv_gen);
    }
    kvc_rpc_reply(call, NULL);
}

static void
on_inventory(struct kvc_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
    struct hm_host *h = msg_host(call, arg);
    const Kvc__Host__Inventory *m = (const Kvc__Host__Inventory *)req;
    struct hostmgr_datastore_info *ds = NULL;
    struct hostmgr_network_info *nets = NULL;
    struct hostmgr_vm_info *vms = NULL;

    if (!h)
        goto out;
    ds = calloc(m->n_datastores + 1, sizeof *ds);
    nets = calloc(m->n_networks + 1, sizeof *nets);
    vms = calloc(m->n_vms + 1, sizeof *vms);
    if (!ds || !nets || !vms) {
        kvc_err("host %s: out of memory for its inventory", h->id);
        goto out;
    }
    for (size_t i = 0; i < m->n_datastores; i++) {
        ds[i].name = m->datastores[i]->name;
        ds[i].url = m->datastores[i]->url;
        ds[i].type = m->datastores[i]->type;
        ds[i].shared = m->datastores[i]->shared;
        ds[i].capacity_bytes = m->datastores[i]->capacity_bytes;
        ds[i].free_bytes = m->datastores[i]->free_bytes;
    }
    for (size_t i = 0; i < m->n_networks; i++) {
        nets[i].name = m->networks[i]->name;
        nets[i].vswitch = m->networks[i]->vswitch;
        nets[i].vlan = m->networks[i]->vlan;
    }
    for (size_t i = 0; i < m->n_vms; i++)
        vm_info_from(m->vms[i], &vms[i]);
    h->inv_gen = m->generation;
    kvc_info("host %s: inventory generation %llu: %zu VMs, %zu datastores",
             h->id, (unsigned long long)m->generation, m->n_vms, m->n_datastores);
    if (h->hm->ops.inventory)
        h->hm->ops.inventory(h->hm->ops_arg, h->id, m->generation, ds,
                             m->n_datastores, nets, m->n_networks, vms, m->n_vms);
out:
    free(ds);
    free(nets);
    free(vms);
    kvc_rpc_reply(call, NULL);
}

static void
on_inventory_ack(int status, const char *error, const ProtobufCMessage *resp, void *arg)
{
    if (status)
        kvc_warn("inventory request failed: %s", error);
}

static void
on_vm_event(struct kvc_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
    struct hm_host *h = msg_host(call, arg);
    const Kvc__Host__VmEvent *m = (const Kvc__Host__VmEvent *)req;
    struct hostmgr_vm_info vi;

    if (!h || !m->vm)
        goto out;
    if (m->generation != h->inv_gen + 1 && h->cl) {
        /* A lost or reordered update: only the full list can be trusted. */
        kvc_warn("host %s: event generation %llu after %llu; asking for the inventory",
                 h->id, (unsigned long long)m->generation, (unsigned long long)h->inv_gen);
        kvc_rpc_client_call(h->cl, KVC__HOST__METHOD__GET_INVENTORY, NULL, NULL,
                            h->hm->cfg.call_timeout_ms, on_inventory_ack, NULL);
        goto out;
    }
    h->inv_gen = m->generation;
    if (m->removed) {
        if (h->hm->ops.vm_removed)
            h->hm->ops.vm_removed(h->hm->ops_arg, h->id, m->vm->uuid);
    } else {
        vm_info_from(m->vm, &vi);
        if (h->hm->ops.vm_changed)
            h->hm->ops.vm_changed(h->hm->ops_arg, h->id, &vi);
    }
out:
    kvc_rpc_reply(call, NULL);
}

static void
on_stats(struct kvc_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
    struct hm_host *h = msg_host(call, arg);
    const Kvc__Host__StatsBatch *m = (const Kvc__Host__StatsBatch *)req;
    struct hostmgr_stats_sample *s;

    if (!h || !h->hm->ops.stats || !m->n_samples)
        goto out;
    if (!(s = calloc(m->n_samples, sizeof *s)))
        goto out;
    for (size_t i = 0; i < m->n_samples; i++) {
        const Kvc__Host__StatsSample *x = m->samples[i];
        s[i].vm_uuid = x->vm_uuid[0] ? x->vm_uuid : NULL;
        s[i].time_ms = x->time_ms;
        s[i].cpu_usage_mhz = x->cpu_usage_mhz;
        s[i].cpu_usage_permille = x->cpu_usage_permille;
        s[i].mem_active_bytes = x->mem_active_bytes;
        s[i].mem_consumed_bytes = x->mem_consumed_bytes;
        s[i].net_rx_bytes = x->net_rx_bytes;
        s[i].net_tx_bytes = x->net_tx_bytes;
        s[i].disk_read_bytes = x->disk_read_bytes;
        s[i].disk_write_bytes = x->disk_write_bytes;
    }
    h->hm->ops.stats(h->hm->ops_arg, h->id, s, m->n_samples);
    free(s);
out:
    kvc_rpc_reply(call, NULL);
}

static const struct kvc_rpc_method vpxd_methods[] = {
    { KVC__HOST__METHOD__HEARTBEAT, "Heartbeat", &kvc__host__heartbeat__descriptor,
      NULL, on_heartbeat },
    { KVC__HOST__METHOD__INVENTORY, "Inventory", &kvc__host__inventory__descriptor,
      NULL, on_inventory },
    { KVC__HOST__METHOD__VM_EVENT, "VmEvent", &kvc__host__vm_event__descriptor,
      NULL, on_vm_event },
    { KVC__HOST__METHOD__STATS, "Stats", &kvc__host__stats_batch__descriptor,
      NULL, on_stats },
};

/* ---- connection life ---------------------------------------------------- */

static int start_attempt(struct hm_host *h);

static void
schedule_retry(struct hm_host *h)
{
    struct timeval tv = { h->hm->cfg.reconnect_ms / 1000,
                          (h->hm->cfg.reconnect_ms % 1000) * 1000 };
    event_add(h->retry, &tv);
}

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
    int rc = start_attempt(arg);

    if (rc) {
        kvc_warn("host %s: reconnect: %s", ((struct hm_host *)arg)->id, strerror(-rc));
        schedule_retry(arg);
    }
}

static void
watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
    struct hm_host *h = arg;
    int64_t limit = (int64_t)h->hm->cfg.heartbeat_ms * h->hm->cfg.miss_limit;

    if (h->state == HOSTMGR_CONNECTED && now_ms() - h->last_hb_ms > limit) {
        char why[96];
        snprintf(why, sizeof why, "no heartbeat for %lld ms",
                 (long long)(now_ms() - h->last_hb_ms));
        set_state(h, HOSTMGR_NOT_RESPONDING, why);
    }
}

static void
on_disconnect(struct kvc_rpc_conn *conn, const char *reason, void *arg)
{
    struct hm_link *l = arg;
    struct hm_host *h = l->h;

    if (!h || !h->session)
        return;
    link_drop(l, true);
    set_state(h, HOSTMGR_NOT_RESPONDING, reason && *reason ? reason : "connection lost");
    schedule_retry(h);
}

static void
finish_attach(struct hm_host *h, int err, const char *msg)
{
    hostmgr_done_cb cb = h->attach_cb;

    h->attach_cb = NULL;
    if (cb)
        cb(h->attach_arg, err, msg);
}

static void
host_unlink_free(struct hm_host *h);

static void
on_hello_reply(int status, const char *error, const ProtobufCMessage *resp, void *arg)
{
    struct hm_link *l = arg;
    struct hm_host *h = l->h;
    const Kvc__Host__HelloReply *r = (const Kvc__Host__HelloReply *)resp;
    struct hostmgr_host_info hi;
    char msg[512];
    int err;

    if (!h)
        return;                         /* abandoned (detach, shutdown) */
    if (status) {
        err = rpc_errno(status, error);
        snprintf(msg, sizeof msg, "cannot connect to %s:%u: %s", h->addr, h->port, error);
    } else if (r->status && r->status->error) {
        err = -r->status->error;
        snprintf(msg, sizeof msg, "host %s:%u refused: %s", h->addr, h->port, r->status->message);
    } else {
        err = 0;
    }
    if (err) {
        link_drop(l, true);
        if (h->attach_cb) {
            /* First attach failed: the host is not managed. */
            kvc_warn("host %s: attach failed: %s", h->id, msg);
            finish_attach(h, err, msg);
            host_unlink_free(h);
            return;
        }
        kvc_dbg("host %s: reconnect failed: %s", h->id, msg);
        if (h->state == HOSTMGR_CONNECTED || h->state == HOSTMGR_CONNECTING)
            set_state(h, HOSTMGR_NOT_RESPONDING, msg);
        schedule_retry(h);
        return;
    }
    h->session = true;
    h->last_hb_ms = now_ms();
    host_info_from(r->host, &hi);
    if (h->hm->ops.host_info)
        h->hm->ops.host_info(h->hm->ops_arg, h->id, &hi);
    set_state(h, HOSTMGR_CONNECTED, "hello");
    {
        struct timeval tv = { h->hm->cfg.heartbeat_ms / 1000,
                              (h->hm->cfg.heartbeat_ms % 1000) * 1000 };
        event_add(h->watchdog, &tv);
    }
    finish_attach(h, 0, NULL);
}

/* Returns 0 (the Hello reply will tell) or -errno (nothing started). */
static int
start_attempt(struct hm_host *h)
{
    struct hostmgr *hm = h->hm;
    Kvc__Host__Hello hello = KVC__HOST__HELLO__INIT;
    struct kvc_rpc_tls tls = { .identity = hm->id, .peer_thumbprint = h->thumbprint };
    struct kvc_rpc_opts o = {
        .methods = vpxd_methods,
        .n_methods = KVC_ARRAY_SIZE(vpxd_methods),
        .on_disconnect = on_disconnect,
        .reconnect = false,
        .connect_timeout_ms = hm->cfg.call_timeout_ms < 10000 ? hm->cfg.call_timeout_ms : 10000,
    };
    struct hm_link *l;
    int rc;

    if (h->link)
        return 0;
    if (!(l = calloc(1, sizeof *l)) || !(l->reap = event_new(hm->base, -1, 0, link_reap_cb, l))) {
        free(l);
        return -ENOMEM;
    }
    l->hm = hm;
    l->h = h;
    o.handler_arg = o.cb_arg = l;
    rc = kvc_rpc_client_new_tcp(hm->base, h->addr, h->port, &tls, &o, &l->cl);
    if (rc) {
        event_free(l->reap);
        free(l);
        return rc;
    }
    l->next = hm->links;
    hm->links = l;
    h->link = l;
    h->cl = l->cl;
    hello.host_id = h->id;
    hello.user = h->user ? h->user : "";
    hello.password = h->password ? h->password : "";
    hello.heartbeat_ms = hm->cfg.heartbeat_ms;
    hello.stats_interval_ms = hm->cfg.stats_interval_ms;
    rc = kvc_rpc_client_call(h->cl, KVC__HOST__METHOD__HELLO, &hello.base,
                             &kvc__host__hello_reply__descriptor,
                             hm->cfg.call_timeout_ms, on_hello_reply, l);
    if (rc) {
        kvc_err("host %s: hello: %s", h->id, strerror(-rc));
        link_drop(l, true);
    }
    return rc;
}

/* ---- lifetime ----------------------------------------------------------- */

int
hostmgr_new(struct event_base *base, const struct hostmgr_config *cfg,
            const struct hostmgr_ops *ops, void *ops_arg, struct hostmgr **out)
{
    struct hostmgr *hm;
    int rc;

    if (!base || !cfg || !out || !cfg->cert_file || !cfg->key_file)
        return -EINVAL;
    if (cfg->heartbeat_ms && (cfg->heartbeat_ms < 100 || cfg->heartbeat_ms > 60000))
        return -EINVAL;
    if (!(hm = calloc(1, sizeof *hm)))
        return -ENOMEM;
    hm->base = base;
    hm->cfg = *cfg;
    hm->cfg.cert_file = hm->cfg.key_file = NULL;
    if (!hm->cfg.heartbeat_ms)
        hm->cfg.heartbeat_ms = 1000;
    if (!hm->cfg.miss_limit)
        hm->cfg.miss_limit = 3;
    if (!hm->cfg.reconnect_ms)
        hm->cfg.reconnect_ms = 1000;
    if (!hm->cfg.call_timeout_ms)
        hm->cfg.call_timeout_ms = 30000;
    if (!hm->cfg.stats_interval_ms)
        hm->cfg.stats_interval_ms = 20000;
    if (ops)
        hm->ops = *ops;
    hm->ops_arg = ops_arg;
    if ((rc = kvc_tls_identity_load(cfg->cert_file, cfg->key_file, &hm->id))) {
        kvc_err("vpxd identity %s: %s", cfg->cert_file, strerror(-rc));
        free(hm);
        return rc;
    }
    *out = hm;
    return 0;
}

static void
host_free(struct hm_host *h)
{
    if (!h)
        return;
    link_drop(h->link, true);
    if (h->watchdog)
        event_free(h->watchdog);
    if (h->retry)
        event_free(h->retry);
    free(h->id);
    free(h->addr);
    free(h->thumbprint);
    free(h->user);
    free(h->password);
    free(h);
}

static void
host_unlink_free(struct hm_host *h)
{
    struct hm_host **pp;

    for (pp = &h->hm->hosts; *pp && *pp != h; pp = &(*pp)->next)
        ;
    if (*pp)
        *pp = h->next;
    host_free(h);
}

void
hostmgr_free(struct hostmgr *hm)
{
    if (!hm)
        return;
    while (hm->hosts) {
        struct hm_host *h = hm->hosts;
        hm->hosts = h->next;
        if (h->attach_cb)
            finish_attach(h, -ECANCELED, "vpxd is shutting down");
        host_free(h);
    }
    while (hm->links) {
        struct hm_link *l = hm->links;
        hm->links = l->next;
        l->h = NULL;
        kvc_rpc_client_free(l->cl);
        event_free(l->reap);
        free(l);
    }
    kvc_tls_identity_free(hm->id);
    free(hm);
}

const char *
hostmgr_thumbprint(const struct hostmgr *hm)
{
    return hm && hm->id ? kvc_tls_identity_thumbprint(hm->id) : NULL;
}

/* ---- probe -------------------------------------------------------------- */

struct probe {
    struct hostmgr *hm;
    struct kvc_rpc_client *cl;
    char thumb[KVC_TLS_THUMBPRINT_SIZE];
    hostmgr_probe_cb cb;
    void *arg;
    char addr[256];
    uint16_t port;
};

static bool
probe_verify(const char *thumbprint, void *arg)
{
    struct probe *p = arg;
    snprintf(p->thumb, sizeof p->thumb, "%s", thumbprint);
    return true;                        /* look, do not trust: nothing is sent but a probe */
}

static void
free_probe_client(evutil_socket_t fd, short what, void *arg)
{
    kvc_rpc_client_free(arg);
}

static void
on_probe_reply(int status, const char *error, const ProtobufCMessage *resp, void *arg)
{
    struct probe *p = arg;
    const Kvc__Host__HelloReply *r = (const Kvc__Host__HelloReply *)resp;
    struct hostmgr_host_info hi;
    char msg[512];

    if (status) {
        snprintf(msg, sizeof msg, "cannot reach host %s:%u: %s", p->addr, p->port, error);
        p->cb(p->arg, rpc_errno(status, error), msg, p->thumb[0] ? p->thumb : NULL, NULL);
    } else {
        host_info_from(r->host, &hi);
        p->cb(p->arg, 0, NULL, p->thumb, &hi);
    }
    {
        static const struct timeval zero = { 0, 0 };
        if (event_base_once(p->hm->base, -1, EV_TIMEOUT, free_probe_client, p->cl, &zero) < 0)
            kvc_err("cannot schedule the probe client's release; leaking it");
    }
    free(p);
}

int
hostmgr_probe(struct hostmgr *hm, const char *address, uint16_t port,
              hostmgr_probe_cb cb, void *arg)
{
    Kvc__Host__Hello hello = KVC__HOST__HELLO__INIT;
    struct probe *p;
    int rc;

    if (!hm || !address || !port || !cb || strlen(address) >= 256)
        return -EINVAL;
    if (!(p = calloc(1, sizeof *p)))
        return -ENOMEM;
    p->hm = hm;
    p->cb = cb;
    p->arg = arg;
    p->port = port;
    strcpy(p->addr, address);
    struct kvc_rpc_tls tls = { .identity = hm->id, .verify = probe_verify, .verify_arg = p };
    struct kvc_rpc_opts o = { .reconnect = false,
                              .connect_timeout_ms = hm->cfg.call_timeout_ms < 10000
                                                  ? hm->cfg.call_timeout_ms : 10000 };
    if ((rc = kvc_rpc_client_new_tcp(hm->base, address, port, &tls, &o, &p->cl))) {
        free(p);
        return rc;
    }
    hello.probe = true;
    rc = kvc_rpc_client_call(p->cl, KVC__HOST__METHOD__HELLO, &hello.base,
                             &kvc__host__hello_reply__descriptor,
                             hm->cfg.call_timeout_ms, on_probe_reply, p);
    if (rc) {
        kvc_rpc_client_free(p->cl);
        free(p);
    }
    return rc;
}

/* ---- hosts -------------------------------------------------------------- */

int
hostmgr_host_attach(struct hostmgr *hm, const char *host_id,
                    const char *address, uint16_t port, const char *thumbprint,
                    const char *user, const char *password,
                    hostmgr_done_cb cb, void *arg)
{
    struct hm_host *h;

    if (!hm || !host_id || !address || !port || !thumbprint || !cb)
        return -EINVAL;
    if (find_host(hm, host_id))
        return -EEXIST;
    if (!(h = calloc(1, sizeof *h)))
        return -ENOMEM;
    h->hm = hm;
    h->port = port;
    h->id = strdup(host_id);
    h->addr = strdup(address);
    h->thumbprint = strdup(thumbprint);
    h->user = user ? strdup(user) : NULL;
    h->password = password ? strdup(password) : NULL;
    h->watchdog = event_new(hm->base, -1, EV_PERSIST, watchdog_cb, h);
    h->retry = event_new(hm->base, -1, 0, retry_cb, h);
    if (!h->id || !h->addr || !h->thumbprint || (user && !h->user) ||
        (password && !h->password) || !h->watchdog || !h->retry) {
        host_free(h);
        return -ENOMEM;
    }
    h->attach_cb = cb;
    h->attach_arg = arg;
    h->state = HOSTMGR_CONNECTING;
    h->next = hm->hosts;
    hm->hosts = h;
    kvc_info("host %s: attaching %s:%u", host_id, address, port);
    int rc = start_attempt(h);
    if (rc) {
        h->attach_cb = NULL;
        host_unlink_free(h);
    }
    return rc;
}

static void
on_forget_reply(int status, const char *error, const ProtobufCMessage *resp, void *arg)
{
    struct hm_link *l = arg;
    static const struct timeval zero = { 0, 0 };

    if (status == KVC_RPC_E_CANCELLED)
        return;                         /* hostmgr_free() is reaping it */
    if (status)
        kvc_warn("host did not confirm forgetting this vpxd: %s", error);
    event_add(l->reap, &zero);
}

int
hostmgr_host_detach(struct hostmgr *hm, const char *host_id, bool forget)
{
    struct hm_host *h, **pp;
    struct hm_link *l;

    if (!hm || !host_id || !(h = find_host(hm, host_id)))
        return -ENOENT;
    for (pp = &hm->hosts; *pp != h; pp = &(*pp)->next)
        ;
    *pp = h->next;
    if (h->attach_cb)
        finish_attach(h, -ECANCELED, "host detached before it connected");
    if (h->state != HOSTMGR_DISCONNECTED && hm->ops.host_state)
        hm->ops.host_state(hm->ops_arg, h->id, HOSTMGR_DISCONNECTED, "detached");
    /* Forget: tell the host to drop its pin; the link (already detached from
     * the host) is reaped when the reply comes. */
    l = h->link;
    if (forget && l && h->session &&
        kvc_rpc_client_call(l->cl, KVC__HOST__METHOD__FORGET, NULL,
                            &kvc__host__status__descriptor, 5000,
                            on_forget_reply, l) == 0)
        link_drop(l, false);
    host_free(h);
    return 0;
}

int
hostmgr_host_status(const struct hostmgr *hm, const char *host_id,
                    struct hostmgr_host_status *out)
{
    struct hm_host *h;

    if (!hm || !host_id || !out || !(h = find_host(hm, host_id)))
        return -ENOENT;
    out->state = h->state;
    out->last_heartbeat_ms = h->last_hb_ms;
    out->heartbeats = h->heartbeats;
    out->inventory_generation = h->inv_gen;
    return 0;
}

/* ---- calls -------------------------------------------------------------- */

struct call_ctx {
    hostmgr_vm_cb vm_cb;
    hostmgr_done_cb done_cb;
    hostmgr_migrate_status_cb mig_cb;
    hostmgr_migrate_prepare_cb prep_cb;
    void *arg;
};

static int
ready_host(struct hostmgr *hm, const char *host_id, struct hm_host **out)
{
    struct hm_host *h;

    if (!hm || !host_id || !(h = find_host(hm, host_id)))
        return -ENOENT;
    if (h->state != HOSTMGR_CONNECTED || !h->cl || !h->session)
        return -ENOTCONN;
    *out = h;
    return 0;
}

static void
on_vm_reply(int status, const char *error, const ProtobufCMessage *resp, void *arg)
{
    struct call_ctx *c = arg;
    const Kvc__Host__VmReply *r = (const Kvc__Host__VmReply *)resp;
    struct hostmgr_vm_info vi;
    int err;

    if (!c->vm_cb) {
        if (status || (r->status && r->status->error))
            kvc_warn("call without a callback failed: %s",
                     status ? error : r->status->message);
    } else if (status) {
        c->vm_cb(c->arg, rpc_errno(status, error), error, NULL);
    } else {
        err = r->status ? -r->status->error : 0;
        if (r->vm)
            vm_info_from(r->vm, &vi);
        c->vm_cb(c->arg, err,
                 err ? (r->status->message[0] ? r->status->message : strerror(-err)) : NULL,
                 r->vm ? &vi : NULL);
    }
    free(c);
}

static void
on_status_reply(int status, const char *error, const ProtobufCMessage *resp, void *arg)
{
    struct call_ctx *c = arg;
    const Kvc__Host__Status *r = (const Kvc__Host__Status *)resp;

    if (!c->done_cb) {
        if (status || r->error)
            kvc_warn("call without a callback failed: %s", status ? error : r->message);
    } else if (status)
        c->done_cb(c->arg, rpc_errno(status, error), error);
    else
        c->done_cb(c->arg, -r->error,
                   r->error ? (r->message[0] ? r->message : strerror(r->error))
                            : (r->message[0] ? r->message : NULL));
    free(c);
}

static void
on_migrate_status_reply(int status, const char *error, const ProtobufCMessage *resp, void *arg)
{
    struct call_ctx *c = arg;
    const Kvc__Host__MigrateStatus *r = (const Kvc__Host__MigrateStatus *)resp;
    struct hostmgr_migrate_status st = { 0 };
    int err;

    if (status) {
        c->mig_cb(c->arg, rpc_errno(status, error), error, NULL);
    } else {
        err = r->status ? -r->status->error : 0;
        switch (r->state) {
        case KVC__HOST__MIGRATE_STATE__MIGRATE_PRECOPY: st.state = HOSTMGR_MIGRATE_PRECOPY; break;
        case KVC__HOST__MIGRATE_STATE__MIGRATE_SWITCHOVER:
            st.state = HOSTMGR_MIGRATE_SWITCHOVER;
            break;
        case KVC__HOST__MIGRATE_STATE__MIGRATE_DONE: st.state = HOSTMGR_MIGRATE_DONE; break;
        case KVC__HOST__MIGRATE_STATE__MIGRATE_FAILED: st.state = HOSTMGR_MIGRATE_FAILED; break;
        default: st.state = HOSTMGR_MIGRATE_NONE;
        }
        st.progress = r->progress > 100 ? 100 : r->progress;
        st.bytes_sent = r->bytes_sent;
        st.disk_sent = r->disk_bytes_sent;
        st.disk_total = r->disk_bytes_total;
        st.bytes_total = r->bytes_total;
        st.estimated_ms = r->estimated_ms;
        st.downtime_ms = r->downtime_ms;
        c->mig_cb(c->arg, err,
                  err ? (r->status->message[0] ? r->status->message : strerror(-err)) : NULL,
                  &st);
    }
    free(c);
}

static int
do_call(struct hm_host *h, uint32_t method, const ProtobufCMessage *req,
        const ProtobufCMessageDescriptor *resp, hostmgr_vm_cb vcb,
        hostmgr_done_cb dcb, void *arg)
{
    struct call_ctx *c = calloc(1, sizeof *c);
    int rc;

    if (!c)
        return -ENOMEM;
    c->vm_cb = vcb;
    c->done_cb = dcb;
    c->arg = arg;
    rc = kvc_rpc_client_call(h->cl, method, req, resp, h->hm->cfg.call_timeout_ms,
                             resp == &kvc__host__vm_reply__descriptor ? on_vm_reply
                             : resp == &kvc__host__migrate_status__descriptor
                               ? on_migrate_status_reply : on_status_reply, c);
    if (rc)
        free(c);
    return rc;
}

int
hostmgr_host_maintenance(struct hostmgr *hm, const char *host_id, bool enter,
                         hostmgr_done_cb cb, void *arg)
{
    Kvc__Host__Maintenance m = KVC__HOST__MAINTENANCE__INIT;
    struct hm_host *h;
    int rc;

    if (!cb)
        return -EINVAL;
    if ((rc = ready_host(hm, host_id, &h)))
        return rc;
    m.enter = enter;
    return do_call(h, KVC__HOST__METHOD__MAINTENANCE, &m.base,
                   &kvc__host__status__descriptor, NULL, cb, arg);
}

/* ---- HA (vpxd/ha.c, docs/ha.md) ----------------------------------------- */

int
hostmgr_vm_register(struct hostmgr *hm, const char *host_id, const char *config_path,
                    const char *vm_uuid, hostmgr_vm_cb cb, void *arg)
{
    Kvc__Host__VmRegister m = KVC__HOST__VM_REGISTER__INIT;
    struct hm_host *h;
    int rc;

    if (!config_path || !config_path[0])
        return -EINVAL;
    if ((rc = ready_host(hm, host_id, &h)))
        return rc;
    m.config_path = (char *)config_path;
    m.expect_uuid = (char *)(vm_uuid ? vm_uuid : "");
    return do_call(h, KVC__HOST__METHOD__VM_REGISTER, &m.base,
                   &kvc__host__vm_reply__descriptor, cb, NULL, arg);
}

int
hostmgr_vm_unregister(struct hostmgr *hm, const char *host_id, const char *vm_uuid,
                      hostmgr_done_cb cb, void *arg)
{
    Kvc__Host__VmRef m = KVC__HOST__VM_REF__INIT;
    struct hm_host *h;
    int rc;

    if (!vm_uuid)
        return -EINVAL;
    if ((rc = ready_host(hm, host_id, &h)))
        return rc;
    m.uuid = (char *)vm_uuid;
    return do_call(h, KVC__HOST__METHOD__VM_UNREGISTER, &m.base,
                   &kvc__host__status__descriptor, NULL, cb, arg);
}

int
hostmgr_host_ha_config(struct hostmgr *hm, const char *host_id,
                       const struct hostmgr_ha_config *cfg, hostmgr_done_cb cb, void *arg)
{
    Kvc__Host__HaConfig m = KVC__HOST__HA_CONFIG__INIT;
    struct hm_host *h;
    int rc;

    if (!cfg || cfg->isolation_response < 0 || cfg->isolation_response > 2)
        return -EINVAL;
    if ((rc = ready_host(hm, host_id, &h)))
        return rc;
    m.enabled = cfg->enabled;
    m.detection_ms = cfg->detection_ms;
    m.isolation_response = (Kvc__Host__IsolationResponse)cfg->isolation_response;
    m.isolation_address = (char *)(cfg->isolation_address ? cfg->isolation_address : "");
    m.n_peers = cfg->n_peers;
    m.peers = (char **)cfg->peers;
    return do_call(h, KVC__HOST__METHOD__HA_CONFIG, &m.base,
                   &kvc__host__status__descriptor, NULL, cb, arg);
}

int
hostmgr_vm_create(struct hostmgr *hm, const char *host_id,
                  const struct hostmgr_vm_spec *spec, hostmgr_vm_cb cb, void *arg)
{
    Kvc__Host__VmCreate m = KVC__HOST__VM_CREATE__INIT;
    Kvc__Host__VmSpec s = KVC__HOST__VM_SPEC__INIT;
    struct hm_host *h;
    int rc;

    if (!spec || !spec->uuid || !spec->name || !spec->datastore)
        return -EINVAL;
    if ((rc = ready_host(hm, host_id, &h)))
        return rc;
    s.uuid = (char *)spec->uuid;
    s.name = (char *)spec->name;
    s.datastore = (char *)spec->datastore;
    s.guest_os = (char *)(spec->guest_os ? spec->guest_os : "");
    s.cpu_count = spec->cpu_count;
    s.memory_mib = spec->memory_mib;
    s.disk_bytes = spec->disk_bytes;
    s.network = (char *)(spec->network ? spec->network : "");
    s.workload = (char *)(spec->workload ? spec->workload : "");
    m.spec = &s;
    return do_call(h, KVC__HOST__METHOD__VM_CREATE, &m.base,
                   &kvc__host__vm_reply__descriptor, cb, NULL, arg);
}

int
hostmgr_vm_reconfigure(struct hostmgr *hm, const char *host_id,
                       const char *vm_uuid, uint32_t cpu_count,
                       uint64_t memory_mib, hostmgr_vm_cb cb, void *arg)
{
    Kvc__Host__VmReconfigure m = KVC__HOST__VM_RECONFIGURE__INIT;
    struct hm_host *h;
    int rc;

    if (!vm_uuid)
        return -EINVAL;
    if ((rc = ready_host(hm, host_id, &h)))
        return rc;
    m.uuid = (char *)vm_uuid;
    m.cpu_count = cpu_count;
    m.memory_mib = memory_mib;
    return do_call(h, KVC__HOST__METHOD__VM_RECONFIGURE, &m.base,
                   &kvc__host__vm_reply__descriptor, cb, NULL, arg);
}

int
hostmgr_vm_power(struct hostmgr *hm, const char *host_id, const char *vm_uuid,
                 enum hostmgr_power_op op, hostmgr_vm_cb cb, void *arg)
{
    Kvc__Host__VmPower m = KVC__HOST__VM_POWER__INIT;
    struct hm_host *h;
    int rc;

    if (!vm_uuid || (unsigned)op > HOSTMGR_GUEST_REBOOT)
        return -EINVAL;
    if ((rc = ready_host(hm, host_id, &h)))
        return rc;
    m.uuid = (char *)vm_uuid;
    /* hostmgr_power_op and PowerOp share their numbering. */
    m.op = (Kvc__Host__PowerOp)op;
    return do_call(h, KVC__HOST__METHOD__VM_POWER, &m.base,
                   &kvc__host__vm_reply__descriptor, cb, NULL, arg);
}

int
hostmgr_vm_delete(struct hostmgr *hm, const char *host_id, const char *vm_uuid,
                  hostmgr_done_cb cb, void *arg)
{
    Kvc__Host__VmRef m = KVC__HOST__VM_REF__INIT;
    struct hm_host *h;
    int rc;

    if (!vm_uuid)
        return -EINVAL;
    if ((rc = ready_host(hm, host_id, &h)))
        return rc;
    m.uuid = (char *)vm_uuid;
    return do_call(h, KVC__HOST__METHOD__VM_DELETE, &m.base,
                   &kvc__host__status__descriptor, NULL, cb, arg);
}

/* ---- live migration ------------------------------------------------------ */

static void
on_migrate_prepare_reply(int status, const char *error, const ProtobufCMessage *resp, void *arg)
{
    struct call_ctx *c = arg;
    const Kvc__Host__MigratePrepareReply *r = (const Kvc__Host__MigratePrepareReply *)resp;
    int err;

    if (status) {
        c->prep_cb(c->arg, rpc_errno(status, error), error, NULL);
    } else {
        err = r->status ? -r->status->error : 0;
        c->prep_cb(c->arg, err,
                   err ? (r->status->message[0] ? r->status->message : strerror(-err)) : NULL,
                   r->listen);
    }
    free(c);
}

int
hostmgr_migrate_prepare(struct hostmgr *hm, const char *dest_host, const char *mig_id,
                        const struct hostmgr_migrate_vm *vm, const char *source_host,
                        const char *source_thumbprint,
                        hostmgr_migrate_prepare_cb cb, void *arg)
{
    Kvc__Host__MigratePrepare m = KVC__HOST__MIGRATE_PREPARE__INIT;
    Kvc__Host__VmInfo vi = KVC__HOST__VM_INFO__INIT;
    struct call_ctx *c;
    struct hm_host *h;
    int rc;

    if (!mig_id || !vm || !vm->uuid || !vm->name || !vm->datastore)
        return -EINVAL;
    if ((rc = ready_host(hm, dest_host, &h)))
        return rc;
    vi.uuid = (char *)vm->uuid;
    vi.name = (char *)vm->name;
    vi.datastore = (char *)vm->datastore;
    vi.network = (char *)(vm->network ? vm->network : "");
    vi.cpu_count = vm->cpu_count;
    vi.memory_mib = vm->memory_mib;
    vi.power = vm->powered_on ? KVC__HOST__POWER_STATE__POWERED_ON
                              : KVC__HOST__POWER_STATE__POWERED_OFF;
    vi.guest_os = (char *)(vm->guest_os ? vm->guest_os : "");
    vi.disk_bytes = vm->disk_bytes;
    m.datastore = (char *)(vm->move_datastore ? vm->move_datastore : "");
    m.id = (char *)mig_id;
    m.vm = &vi;
    m.source_uuid = (char *)(source_host ? source_host : "");
    m.source_thumbprint = (char *)(source_thumbprint ? source_thumbprint : "");
    if (!cb)
        return -EINVAL;
    if (!(c = calloc(1, sizeof *c)))
        return -ENOMEM;
    c->prep_cb = cb;
    c->arg = arg;
    rc = kvc_rpc_client_call(h->cl, KVC__HOST__METHOD__MIGRATE_PREPARE, &m.base,
                             &kvc__host__migrate_prepare_reply__descriptor,
                             h->hm->cfg.call_timeout_ms, on_migrate_prepare_reply, c);
    if (rc)
        free(c);
    return rc;
}

int
hostmgr_migrate_send(struct hostmgr *hm, const char *src_host, const char *mig_id,
                     const char *vm_uuid, const char *dest_host, uint64_t bandwidth_bps,
                     uint32_t downtime_ms, const char *dest_listen,
                     const char *dest_thumbprint, bool with_disk, hostmgr_done_cb cb, void *arg)
{
    Kvc__Host__MigrateSend m = KVC__HOST__MIGRATE_SEND__INIT;
    struct hm_host *h, *d;
    int rc;

    if (!mig_id || !vm_uuid || !dest_host)
        return -EINVAL;
    if ((rc = ready_host(hm, src_host, &h)))
        return rc;
    if (!(d = find_host(hm, dest_host)))
        return -ENOENT;
    m.id = (char *)mig_id;
    m.uuid = (char *)vm_uuid;
    m.dest_uuid = d->id;
    m.dest_address = d->addr;
    m.dest_port = d->port;
    m.bandwidth_bps = bandwidth_bps;
    m.downtime_ms = downtime_ms;
    m.dest_listen = (char *)(dest_listen ? dest_listen : "");
    m.dest_thumbprint = (char *)(dest_thumbprint ? dest_thumbprint : "");
    m.with_disk = with_disk;
    return do_call(h, KVC__HOST__METHOD__MIGRATE_SEND, &m.base,
                   &kvc__host__status__descriptor, NULL, cb, arg);
}

int
hostmgr_migrate_status(struct hostmgr *hm, const char *host, const char *mig_id,
                       hostmgr_migrate_status_cb cb, void *arg)
{
    Kvc__Host__MigrateRef m = KVC__HOST__MIGRATE_REF__INIT;
    struct call_ctx *c;
    struct hm_host *h;
    int rc;

    if (!mig_id || !cb)
        return -EINVAL;
    if ((rc = ready_host(hm, host, &h)))
        return rc;
    if (!(c = calloc(1, sizeof *c)))
        return -ENOMEM;
    c->mig_cb = cb;
    c->arg = arg;
    m.id = (char *)mig_id;
    rc = kvc_rpc_client_call(h->cl, KVC__HOST__METHOD__MIGRATE_STATUS, &m.base,
                             &kvc__host__migrate_status__descriptor,
                             h->hm->cfg.call_timeout_ms, on_migrate_status_reply, c);
    if (rc)
        free(c);
    return rc;
}

int
hostmgr_migrate_abort(struct hostmgr *hm, const char *host, const char *mig_id,
                      hostmgr_done_cb cb, void *arg)
{
    Kvc__Host__MigrateRef m = KVC__HOST__MIGRATE_REF__INIT;
    struct hm_host *h;
    int rc;

    if (!mig_id)
        return -EINVAL;
    if ((rc = ready_host(hm, host, &h)))
        return rc;
    m.id = (char *)mig_id;
    return do_call(h, KVC__HOST__METHOD__MIGRATE_ABORT, &m.base,
                   &kvc__host__status__descriptor, NULL, cb, arg);
}

int
hostmgr_migrate_finish(struct hostmgr *hm, const char *host, const char *mig_id,
                       hostmgr_vm_cb cb, void *arg)
{
    Kvc__Host__MigrateRef m = KVC__HOST__MIGRATE_REF__INIT;
    struct hm_host *h;
    int rc;

    if (!mig_id)
        return -EINVAL;
    if ((rc = ready_host(hm, host, &h)))
        return rc;
    m.id = (char *)mig_id;
    return do_call(h, KVC__HOST__METHOD__MIGRATE_FINISH, &m.base,
                   &kvc__host__vm_reply__descriptor, cb, NULL, arg);
}

/* ---- raw calls (areas with their own messages: the VM console) -------- */

struct raw_ctx {
    hostmgr_raw_cb cb;
    void *arg;
};

static void
on_raw_reply(int status, const char *error, const ProtobufCMessage *resp, void *arg)
{
    struct raw_ctx *c = arg;

    c->cb(c->arg, rpc_errno(status, error), status ? error : NULL, status ? NULL : resp);
    free(c);
}

int
hostmgr_host_call(struct hostmgr *hm, const char *host_id, uint32_t method,
                  const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp,
                  hostmgr_raw_cb cb, void *arg)
{
    struct hm_host *h;
    struct raw_ctx *c;
    int rc;

    if (!cb || !req || !resp)
        return -EINVAL;
    if ((rc = ready_host(hm, host_id, &h)))
        return rc;
    if (!(c = calloc(1, sizeof *c)))
        return -ENOMEM;
    c->cb = cb;
    c->arg = arg;
    rc = kvc_rpc_client_call(h->cl, method, req, resp, h->hm->cfg.call_timeout_ms,
                             on_raw_reply, c);
    if (rc)
        free(c);
    return rc;
}
