/* The host's HA agent (docs/ha.md), the small part of vSphere's FDM that
 * has to live on the host:
 *
 *  - VM_REGISTER / VM_UNREGISTER: vpxd restarts a failed host's VM by
 *    registering its config from the shared datastore here (and later drops
 *    the stale registration from the host that comes back), never touching
 *    the VM's files.
 *  - HA_CONFIG: the cluster's HA settings for this host, kept in
 *    STATE_DIR/ha.conf, because the isolation response is needed exactly
 *    when vpxd cannot be asked.
 *  - The power-on file <datastore>/.kvc-hb/<host-uuid>.poweron, rewritten
 *    with every heartbeat and every power change: the VMs this host runs and
 *    whether it considers itself isolated.  vpxd reads it for a host it
 *    cannot reach but whose datastore heartbeat still beats; a host asked to
 *    register a VM reads it to refuse a VM another live host still runs.
 *  - Isolation: with no vpxd session for the detection time, the host
 *    probes its peers and its isolation address (TCP connects, async).  If
 *    none answers it is isolated and applies the response (power off or
 *    guest shutdown); stopping a VM releases its lease (sim: the .sim
 *    record) and drops it from the power-on file, which is what lets vpxd
 *    restart it elsewhere.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "rpc.h"
#include "hostd/backend.h"
#include "hostd/hostd.h"

KVC_LOG_MODULE(ha);

#define HA_DEFAULT_DETECTION_MS 3000
#define HA_MAX_PEERS 64
#define HA_SHUTDOWN_GRACE_MS 5000

struct probe {
    struct probe *next;
    struct hostd_ha *ha;
    int fd;
    struct event *ev;
};

struct hostd_ha {
    struct hostd_host *h;
    bool enabled;
    uint32_t detection_ms;
    int response;                       /* Kvc__Host__IsolationResponse */
    char address[128];
    char *peers[HA_MAX_PEERS];
    size_t n_peers;

    int64_t vpxd_seen_ms;               /* last tick with a vpxd session */
    bool isolated, responded;
    int64_t shutdown_deadline;          /* power off what the guests left on */
    struct probe *probes;               /* the probe round in flight */
    bool reached;
    int64_t next_round_ms;              /* partitioned: probe again from then */
};

static const char *
response_name(int r)
{
    return r == KVC__HOST__ISOLATION_RESPONSE__ISOLATION_POWER_OFF ? "power_off"
         : r == KVC__HOST__ISOLATION_RESPONSE__ISOLATION_SHUTDOWN ? "shutdown" : "none";
}

/* ---- settings ----------------------------------------------------------- */

static void
clear_peers(struct hostd_ha *ha)
{
    for (size_t i = 0; i < ha->n_peers; i++)
        free(ha->peers[i]);
    ha->n_peers = 0;
}

static void
config_save(struct hostd_ha *ha)
{
    char buf[8192];
    int n = snprintf(buf, sizeof buf, "enabled=%d\ndetection_ms=%u\nresponse=%s\naddress=%s\n",
                     ha->enabled, ha->detection_ms, response_name(ha->response), ha->address);

    for (size_t i = 0; i < ha->n_peers && n > 0 && (size_t)n < sizeof buf; i++)
        n += snprintf(buf + n, sizeof buf - (size_t)n, "peer=%s\n", ha->peers[i]);
    hostd_state_write(ha->h->state_dir, "ha.conf", buf);
}

static void
config_load(struct hostd_ha *ha)
{
    char buf[8192], *save = NULL;

    if (hostd_state_read(ha->h->state_dir, "ha.conf", buf, sizeof buf))
        return;
    for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(l, '=');
        if (!eq)
            continue;
        *eq++ = 0;
        if (!strcmp(l, "enabled"))
            ha->enabled = atoi(eq) != 0;
        else if (!strcmp(l, "detection_ms") && atoi(eq) >= 100)
            ha->detection_ms = (uint32_t)atoi(eq);
        else if (!strcmp(l, "response"))
            ha->response = !strcmp(eq, "power_off") ? KVC__HOST__ISOLATION_RESPONSE__ISOLATION_POWER_OFF
                         : !strcmp(eq, "shutdown") ? KVC__HOST__ISOLATION_RESPONSE__ISOLATION_SHUTDOWN
                         : KVC__HOST__ISOLATION_RESPONSE__ISOLATION_NONE;
        else if (!strcmp(l, "address"))
            snprintf(ha->address, sizeof ha->address, "%s", eq);
        else if (!strcmp(l, "peer") && ha->n_peers < HA_MAX_PEERS && (ha->peers[ha->n_peers] = strdup(eq)))
            ha->n_peers++;
    }
}

int
hostd_ha_new(struct hostd_host *h)
{
    struct hostd_ha *ha = calloc(1, sizeof *ha);

    if (!ha)
        return -ENOMEM;
    ha->h = h;
    ha->detection_ms = HA_DEFAULT_DETECTION_MS;
    ha->vpxd_seen_ms = hostd_now_ms();
    config_load(ha);
    h->ha = ha;
    if (ha->enabled)
        kvc_info("%s: HA on: detection %u ms, isolation response %s, address '%s', %zu peers",
                 h->name, ha->detection_ms, response_name(ha->response), ha->address,
                 ha->n_peers);
    return 0;
}

static void
probe_free(struct probe *p)
{
    if (p->ev)
        event_free(p->ev);
    if (p->fd >= 0)
        close(p->fd);
    free(p);
}

void
hostd_ha_free(struct hostd_host *h)
{
    struct hostd_ha *ha = h ? h->ha : NULL;

    if (!ha)
        return;
    while (ha->probes) {
        struct probe *p = ha->probes;
        ha->probes = p->next;
        probe_free(p);
    }
    clear_peers(ha);
    free(ha);
    h->ha = NULL;
}

/* ---- datastore files ---------------------------------------------------- */

/* The time_ms of host UUID's heartbeat on DS_PATH, or -1. */
static int64_t
hb_time(const char *ds_path, const char *uuid)
{
    char path[PATH_MAX + 64], line[256];
    const char *t;
    FILE *f;

    snprintf(path, sizeof path, "%s/.kvc-hb/%s", ds_path, uuid);
    if (!(f = fopen(path, "r")))
        return -1;
    line[0] = 0;
    if (!fgets(line, sizeof line, f))
        line[0] = 0;
    fclose(f);
    t = strstr(line, "time_ms=");
    return t ? strtoll(t + 8, NULL, 10) : -1;
}

static uint32_t
detection_ms(const struct hostd_host *h)
{
    return h->ha ? h->ha->detection_ms : HA_DEFAULT_DETECTION_MS;
}

bool
hostd_ha_host_alive(struct hostd_host *h, const char *ds_path, const char *uuid)
{
    int64_t t = hb_time(ds_path, uuid);

    return t >= 0 && hostd_now_ms() - t < (int64_t)detection_ms(h);
}

/* Whether a live host other than H lists VM as powered on in its power-on
 * file on the VM's datastore; its uuid in WHO. */
static bool
held_elsewhere(struct hostd_host *h, const struct hostd_vm *vm, char *who, size_t wlen)
{
    struct hostd_datastore *ds = vmstore_datastore(h, vm->datastore);
    char dir[PATH_MAX + 16], path[PATH_MAX + 400], line[256], want[64];
    struct dirent *e;
    bool held = false;
    DIR *d;

    if (!ds)
        return false;
    snprintf(dir, sizeof dir, "%s/.kvc-hb", ds->path);
    if (!(d = opendir(dir)))
        return false;
    snprintf(want, sizeof want, "vm=%s", vm->uuid);
    while (!held && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        char owner[HOSTD_UUID_LEN];
        FILE *f;
        if (n != HOSTD_UUID_LEN - 1 + 8 || strcmp(e->d_name + n - 8, ".poweron"))
            continue;
        snprintf(owner, sizeof owner, "%.*s", (int)(n - 8), e->d_name);
        if (!strcmp(owner, h->uuid) || !hostd_ha_host_alive(h, ds->path, owner))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (!(f = fopen(path, "r")))
            continue;
        while (fgets(line, sizeof line, f)) {
            line[strcspn(line, "\n")] = 0;
            if (!strcasecmp(line, want)) {
                held = true;
                snprintf(who, wlen, "%s", owner);
                break;
            }
        }
        fclose(f);
    }
    closedir(d);
    return held;
}

static void
poweron_write_at(struct hostd_host *h, int64_t now)
{
    char dir[PATH_MAX + 16], path[PATH_MAX + 80], tmp[PATH_MAX + 80];
    size_t n_on = 0;

    if (h->crashed || h->fail_ds_hb)
        return;
    for (struct hostd_vm *vm = h->vms; vm; vm = vm->next)
        n_on += vm->power == VM_ON;
    for (size_t i = 0; i < h->n_ds; i++) {
        FILE *f;
        if (!h->ds[i].shared)
            continue;
        snprintf(dir, sizeof dir, "%s/.kvc-hb", h->ds[i].path);
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
            continue;
        snprintf(path, sizeof path, "%s/%s.poweron", dir, h->uuid);
        snprintf(tmp, sizeof tmp, "%s/.%s.poweron.tmp", dir, h->uuid);
        if (!(f = fopen(tmp, "w")))
            continue;
        fprintf(f, "uuid=%s time_ms=%lld isolated=%d vms=%zu\n", h->uuid, (long long)now,
                h->ha && h->ha->isolated, n_on);
        for (struct hostd_vm *vm = h->vms; vm; vm = vm->next)
            if (vm->power == VM_ON)
                fprintf(f, "vm=%s\n", vm->uuid);
        if (fclose(f) == 0)
            rename(tmp, path);          /* readers see a whole file */
        else
            unlink(tmp);
    }
}

void
hostd_ha_poweron_write(struct hostd_host *h)
{
    poweron_write_at(h, hostd_now_ms());
}

/* ---- isolation ---------------------------------------------------------- */

static void
round_done(struct hostd_ha *ha)
{
    struct hostd_host *h = ha->h;

    if (ha->probes || ha->isolated)
        return;
    if (ha->reached) {
        kvc_dbg("%s: no vpxd, but a peer or the isolation address answers: partitioned", h->name);
        return;
    }
    if (h->vpxd && !h->fail_net)
        return;                         /* vpxd came back meanwhile */
    ha->isolated = true;
    ha->responded = false;
    kvc_warn("%s: host isolated: no vpxd for %lld ms, no peer and no isolation address"
             " answers; isolation response %s", h->name,
             (long long)(hostd_now_ms() - ha->vpxd_seen_ms), response_name(ha->response));
}

static void
probe_cb(evutil_socket_t fd, short what, void *arg)
{
    struct probe *p = arg, **pp;
    struct hostd_ha *ha = p->ha;
    int err = 0;
    socklen_t len = sizeof err;

    if ((what & EV_WRITE) && getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && !err &&
        !ha->h->fail_net)
        ha->reached = true;
    for (pp = &ha->probes; *pp && *pp != p; pp = &(*pp)->next)
        ;
    if (*pp)
        *pp = p->next;
    probe_free(p);
    round_done(ha);
}

/* Starts a TCP connect to "IP:PORT"; 0 or -errno. */
static int
probe_start(struct hostd_ha *ha, const char *target, uint32_t timeout_ms)
{
    struct sockaddr_in sin = { .sin_family = AF_INET };
    char ip[64];
    const char *colon = strrchr(target, ':');
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
    struct probe *p;
    long port;

    if (!colon || colon == target || (size_t)(colon - target) >= sizeof ip)
        return -EINVAL;
    snprintf(ip, sizeof ip, "%.*s", (int)(colon - target), target);
    port = strtol(colon + 1, NULL, 10);
    if (port <= 0 || port > 65535 || inet_pton(AF_INET, ip, &sin.sin_addr) != 1)
        return -EINVAL;
    sin.sin_port = htons((uint16_t)port);
    if (!(p = calloc(1, sizeof *p)))
        return -ENOMEM;
    p->ha = ha;
    p->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (p->fd < 0 || (connect(p->fd, (struct sockaddr *)&sin, sizeof sin) < 0 &&
                      errno != EINPROGRESS) ||
        !(p->ev = event_new(ha->h->d->base, p->fd, EV_WRITE, probe_cb, p)) ||
        event_add(p->ev, &tv) < 0) {
        int rc = errno ? -errno : -EIO;
        probe_free(p);
        return rc;                      /* refused at once: not an answer */
    }
    p->next = ha->probes;
    ha->probes = p;
    return 0;
}

static void
probe_round(struct hostd_ha *ha)
{
    uint32_t timeout = ha->detection_ms / 2 < 1000 ? ha->detection_ms / 2 : 1000;

    ha->reached = false;
    if (!ha->h->fail_net) {
        if (ha->address[0] && probe_start(ha, ha->address, timeout))
            kvc_dbg("%s: isolation address %s: no answer", ha->h->name, ha->address);
        for (size_t i = 0; i < ha->n_peers; i++)
            probe_start(ha, ha->peers[i], timeout);
    }
    round_done(ha);                     /* nothing started: decided now */
}

static void
stop_done(struct hostd_host *h, struct hostd_vm *vm, int err, const char *msg, void *ctx)
{
    vm->busy = false;
    if (err)
        kvc_warn("%s: isolation response: power off %s: %s", h->name, vm->name,
                 msg ? msg : strerror(-err));
    else
        hostd_vm_changed(h, vm, false);
}

static void
vm_power_off(struct hostd_host *h, struct hostd_vm *vm)
{
    if (vm->busy)
        return;
    if (h->be->power_async) {
        vm->busy = true;
        h->be->power_async(h, vm, KVC__HOST__POWER_OP__POWER_OFF, stop_done, NULL);
    } else if (h->be->power_off(h, vm) == 0) {
        hostd_vm_changed(h, vm, false);
    }
}

static void
apply_response(struct hostd_ha *ha, int64_t now)
{
    struct hostd_host *h = ha->h;
    int n = 0;

    ha->responded = true;
    for (struct hostd_vm *vm = h->vms; vm; vm = vm->next) {
        if (vm->power != VM_ON || vm->busy)
            continue;
        switch (ha->response) {
        case KVC__HOST__ISOLATION_RESPONSE__ISOLATION_POWER_OFF:
            kvc_warn("%s: isolation response: powering off VM %s (%s)", h->name, vm->name, vm->uuid);
            vm_power_off(h, vm);
            n++;
            break;
        case KVC__HOST__ISOLATION_RESPONSE__ISOLATION_SHUTDOWN:
            kvc_warn("%s: isolation response: shutting down VM %s (%s)", h->name, vm->name,
                     vm->uuid);
            if (vm->tools_running && h->be->guest_shutdown && !h->be->power_async &&
                h->be->guest_shutdown(h, vm) == 0)
                ha->shutdown_deadline = now + HA_SHUTDOWN_GRACE_MS;
            else
                vm_power_off(h, vm);
            n++;
            break;
        default:
            break;
        }
    }
    kvc_info("%s: isolation response %s applied to %d VM(s)", h->name,
             response_name(ha->response), n);
}

void
hostd_ha_tick(struct hostd_host *h, int64_t now)
{
    struct hostd_ha *ha = h->ha;

    if (!ha || h->crashed)
        return;
    if (h->vpxd && !h->fail_net) {
        ha->vpxd_seen_ms = now;
        if (ha->isolated)
            kvc_info("%s: vpxd is back: isolation over", h->name);
        ha->isolated = false;
    } else if (ha->enabled && !ha->isolated && !ha->probes && now >= ha->next_round_ms &&
               now - ha->vpxd_seen_ms >= (int64_t)ha->detection_ms) {
        /* One round per detection time: peers answer a connect with a TLS
         * handshake that fails, and each costs them a log line. */
        ha->next_round_ms = now + ha->detection_ms;
        probe_round(ha);
    }
    if (ha->isolated && !ha->responded)
        apply_response(ha, now);
    if (ha->shutdown_deadline && now >= ha->shutdown_deadline) {
        ha->shutdown_deadline = 0;
        for (struct hostd_vm *vm = h->vms; vm; vm = vm->next)
            if (vm->power == VM_ON && ha->isolated) {
                kvc_warn("%s: VM %s did not shut down: powering it off", h->name, vm->name);
                vm_power_off(h, vm);
            }
    }
    poweron_write_at(h, now);
}

int
hostd_ha_control(struct hostd_host *h, int argc, char **argv, char *out, size_t len)
{
    if (argc == 1 && !strcmp(argv[0], "vms")) {
        /* The host's own view: every VM it holds and its power state. */
        size_t n = (size_t)snprintf(out, len, "OK");
        for (struct hostd_vm *vm = h->vms; vm && n < len; vm = vm->next)
            n += (size_t)snprintf(out + n, len - n, " %s=%s", vm->uuid,
                                  vm->power == VM_ON ? "on" : vm->power == VM_SUSPENDED
                                  ? "suspended" : "off");
        return 0;
    }
    if (argc < 1 || strcmp(argv[0], "net"))
        return -ENOENT;
    if (argc != 2 || (strcmp(argv[1], "cut") && strcmp(argv[1], "restore"))) {
        snprintf(out, len, "ERR net cut|restore");
        return -EINVAL;
    }
    h->fail_net = !strcmp(argv[1], "cut");
    if (h->fail_net && h->vpxd) {
        struct kvc_rpc_conn *c = h->vpxd;
        h->vpxd = NULL;
        kvc_rpc_conn_close(c);
    }
    kvc_warn("%s: management network %s by control (datastore heartbeats go on)", h->name,
             h->fail_net ? "cut" : "restored");
    snprintf(out, len, "OK");
    return 0;
}

/* ---- RPC handlers ------------------------------------------------------- */

static void
reply(struct kvc_rpc_call *call, struct hostd_host *h, int err, const char *msg,
      struct hostd_vm *vm)
{
    Kvc__Host__VmReply r = KVC__HOST__VM_REPLY__INIT;
    Kvc__Host__Status st = KVC__HOST__STATUS__INIT;
    Kvc__Host__VmInfo info;

    st.error = err < 0 ? -err : err;
    st.message = (char *)(msg ? msg : "");
    r.status = &st;
    if (vm) {
        hostd_vm_to_info(h, vm, &info);
        r.vm = &info;
    }
    kvc_rpc_reply(call, &r.base);
    if (vm && info.config_path != protobuf_c_empty_string)
        free(info.config_path);
}

static void
reply_status(struct kvc_rpc_call *call, int err, const char *msg)
{
    Kvc__Host__Status st = KVC__HOST__STATUS__INIT;

    st.error = err < 0 ? -err : err;
    st.message = (char *)(msg ? msg : "");
    kvc_rpc_reply(call, &st.base);
}

/* "[ds] dir/name.vmx" -> the absolute path on this host; 0 or -errno. */
static int
resolve(struct hostd_host *h, const char *cp, char *out, size_t len)
{
    const char *close = cp[0] == '[' ? strchr(cp, ']') : NULL;
    char dsname[256];
    struct hostd_datastore *ds;
    const char *rel;

    if (!close || close == cp + 1 || (size_t)(close - cp - 1) >= sizeof dsname)
        return -EINVAL;
    snprintf(dsname, sizeof dsname, "%.*s", (int)(close - cp - 1), cp + 1);
    rel = close + 1;
    while (*rel == ' ')
        rel++;
    if (!*rel || rel[0] == '/' || strstr(rel, "..") || strlen(rel) < 5 ||
        strcmp(rel + strlen(rel) - 4, ".vmx"))
        return -EINVAL;
    if (!(ds = vmstore_datastore(h, dsname)))
        return -ENOENT;
    if (snprintf(out, len, "%s/%s", ds->path, rel) >= (int)len)
        return -ENAMETOOLONG;
    return 0;
}

void
hostd_ha_on_register(struct kvc_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
    struct hostd_host *h = arg;
    const Kvc__Host__VmRegister *m = (const Kvc__Host__VmRegister *)req;
    struct hostd_vm *vm = NULL, **tail;
    char path[PATH_MAX], msg[PATH_MAX + 128], who[HOSTD_UUID_LEN] = "";
    int rc;

    if (!hostd_is_session(h, call)) {
        kvc_rpc_reply_error(call, KVC_RPC_E_PERMISSION, "say hello first");
        return;
    }
    if ((rc = resolve(h, m->config_path, path, sizeof path))) {
        snprintf(msg, sizeof msg, rc == -ENOENT ? "no such datastore on this host: '%s'"
                 : "config path '%s' is not \"[datastore] folder/name.vmx\"", m->config_path);
        reply(call, h, rc, msg, NULL);
        return;
    }
    if (m->expect_uuid[0] && (vm = hostd_vm_find(h, m->expect_uuid))) {
        reply(call, h, EEXIST, "the VM is registered on this host", vm);
        return;
    }
    if ((rc = vmstore_load_config(h, path, &vm))) {
        snprintf(msg, sizeof msg, "cannot load %s: %s", path, strerror(-rc));
        reply(call, h, rc == -EINVAL ? EINVAL : -rc, msg, NULL);
        return;
    }
    if (m->expect_uuid[0] && strcasecmp(vm->uuid, m->expect_uuid)) {
        snprintf(msg, sizeof msg, "%s holds VM %s, not %s", path, vm->uuid, m->expect_uuid);
        vmstore_vm_free(vm);
        reply(call, h, EINVAL, msg, NULL);
        return;
    }
    if (hostd_vm_find(h, vm->uuid)) {
        struct hostd_vm *have = hostd_vm_find(h, vm->uuid);
        vmstore_vm_free(vm);
        reply(call, h, EEXIST, "the VM is registered on this host", have);
        return;
    }
    for (struct hostd_vm *v = h->vms; v; v = v->next)
        if (!strcmp(v->config, vm->config)) {
            vmstore_vm_free(vm);
            reply(call, h, EEXIST, "another VM of this host uses that folder", NULL);
            return;
        }
    if (held_elsewhere(h, vm, who, sizeof who)) {
        snprintf(msg, sizeof msg, "VM %s still runs on host %s, which writes its datastore"
                 " heartbeat", vm->uuid, who);
        vmstore_vm_free(vm);
        reply(call, h, EBUSY, msg, NULL);
        return;
    }
    if ((rc = h->be->vm_attach(h, vm))) {
        vmstore_vm_free(vm);
        reply(call, h, rc, "backend refused the VM", NULL);
        return;
    }
    for (tail = &h->vms; *tail; tail = &(*tail)->next)
        ;
    *tail = vm;
    vmstore_save_registry(h);
    kvc_info("%s: registered VM %s (%s) from %s", h->name, vm->name, vm->uuid, path);
    hostd_vm_changed(h, vm, false);
    reply(call, h, 0, NULL, vm);
}

void
hostd_ha_on_unregister(struct kvc_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
    struct hostd_host *h = arg;
    const Kvc__Host__VmRef *m = (const Kvc__Host__VmRef *)req;
    struct hostd_vm *vm, **pp;

    if (!hostd_is_session(h, call)) {
        kvc_rpc_reply_error(call, KVC_RPC_E_PERMISSION, "say hello first");
        return;
    }
    if (!(vm = hostd_vm_find(h, m->uuid))) {
        reply_status(call, ENOENT, "no such VM on this host");
        return;
    }
    if (vm->power != VM_OFF || vm->busy) {
        reply_status(call, EBUSY, "the VM runs here: power it off before unregistering it");
        return;
    }
    h->be->vm_detach(h, vm);
    for (pp = &h->vms; *pp != vm; pp = &(*pp)->next)
        ;
    *pp = vm->next;
    vmstore_save_registry(h);
    kvc_info("%s: unregistered VM %s (%s); its files stay", h->name, vm->name, vm->uuid);
    hostd_vm_changed(h, vm, true);
    vmstore_vm_free(vm);
    reply_status(call, 0, NULL);
}

void
hostd_ha_on_config(struct kvc_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
    struct hostd_host *h = arg;
    const Kvc__Host__HaConfig *m = (const Kvc__Host__HaConfig *)req;
    struct hostd_ha *ha = h->ha;

    if (!hostd_is_session(h, call)) {
        kvc_rpc_reply_error(call, KVC_RPC_E_PERMISSION, "say hello first");
        return;
    }
    if (!ha) {
        reply_status(call, ENOSYS, "no HA agent");
        return;
    }
    if ((m->detection_ms && (m->detection_ms < 100 || m->detection_ms > 600000)) ||
        strlen(m->isolation_address) >= sizeof ha->address || m->n_peers > HA_MAX_PEERS ||
        (unsigned)m->isolation_response > KVC__HOST__ISOLATION_RESPONSE__ISOLATION_SHUTDOWN) {
        reply_status(call, EINVAL, "detection_ms 100..600000, isolation address < 128 bytes,"
                     " at most 64 peers");
        return;
    }
    ha->enabled = m->enabled;
    ha->detection_ms = m->detection_ms ? m->detection_ms : HA_DEFAULT_DETECTION_MS;
    ha->response = m->isolation_response;
    snprintf(ha->address, sizeof ha->address, "%s", m->isolation_address);
    clear_peers(ha);
    for (size_t i = 0; i < m->n_peers; i++)
        if ((ha->peers[ha->n_peers] = strdup(m->peers[i])))
            ha->n_peers++;
    config_save(ha);
    kvc_info("%s: HA settings: %s, detection %u ms, isolation response %s, address '%s',"
             " %zu peers", h->name, ha->enabled ? "on" : "off", ha->detection_ms,
             response_name(ha->response), ha->address, ha->n_peers);
    reply_status(call, 0, NULL);
}
