/* hostd: the host management agent (see docs/hosts.md).
 *
 *   hostd [-c FILE] [-n] [--backend kvm|sim] [--sim-hosts N] [--state-dir DIR]
 *         [--listen ADDR] [--port P] [--name NAME] [--heartbeat MS]
 *         [--datastore NAME=/PATH[:shared]]... [--network NAME[@VSWITCH][:VLAN]]...
 *         [--admin-password PW] [--ssh-port P] [--api-port P]
 *         [--authorized-keys FILE] [--log FILE] [--debug]
 *
 * Command-line options override the config file. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <gnutls/gnutls.h>

#include "lib/configfile.h"
#include "log.h"
#include "hostd/backend.h"
#include "hostd/hostd.h"
#include "hostd/ssh/ssh.h"

KVC_LOG_MODULE(hostd);

static const struct kvc_cfg_key hostd_keys[] = {
    KVC_CFG_KEY_STRING("name", "localhost", "host name shown in vpxd"),
    KVC_CFG_KEY_STRING("state_dir", KVC_LOCALSTATEDIR "/hostd", "identity, registry, pinned vpxd"),
    KVC_CFG_KEY_STRING("listen", "127.0.0.1", "address vpxd dials"),
    KVC_CFG_KEY_INT("port", "8902", 0, 65535, "port vpxd dials (0: any free one)"),
    KVC_CFG_KEY_ENUM("backend", "kvm", "how VMs run", "kvm", "sim"),
    KVC_CFG_KEY_DURATION("heartbeat", "1s", 100, 60000, "heartbeat period until vpxd sets one"),
    KVC_CFG_KEY_STRING("admin_user", "root", "user vpxd presents on first contact"),
    KVC_CFG_KEY_STRING("admin_password", NULL, "its password (unset: trust the first vpxd)"),
    KVC_CFG_KEY_STRING("vmkd_socket", "/run/kvcenter/vmkd.sock", "vmkd control socket (kvm)"),
    KVC_CFG_KEY_STRING("guest_image", KVC_PKGDATADIR "/guest/kvc-guest.elf",
                       "test guest the kvm backend's VMs boot"),
    KVC_CFG_KEY_DURATION("lease", "10s", 100, 600000,
                         "VM lease duration (renewed every fifth; lib/lease.h)"),
    KVC_CFG_KEY_STRING("log_file", NULL, "log here instead of stderr"),
    KVC_CFG_KEY_END,
};
static const struct kvc_cfg_key sim_keys[] = {
    KVC_CFG_KEY_INT("hosts", "1", 1, 4096, "simulated hosts in this process"),
    KVC_CFG_KEY_INT("cores", "16", 1, 1024, "cores per simulated host"),
    KVC_CFG_KEY_INT("mhz", "2400", 100, 10000, "core speed"),
    KVC_CFG_KEY_SIZE("memory", "64G", 1 << 28, (int64_t)1 << 50, "memory per host"),
    KVC_CFG_KEY_END,
};
static const struct kvc_cfg_key ds_keys[] = {
    { .name = "path", .type = KVC_CFG_STRING, .required = true, .help = "directory" },
    KVC_CFG_KEY_BOOL("shared", "false", "seen by other hosts (gets heartbeat files)"),
    KVC_CFG_KEY_END,
};
static const struct kvc_cfg_key net_keys[] = {
    KVC_CFG_KEY_STRING("vswitch", "vSwitch0", "virtual switch"),
    KVC_CFG_KEY_INT("vlan", "0", 0, 4095, "VLAN id"),
    KVC_CFG_KEY_END,
};
/* The host's shell (hostd/ssh/): SSH and the HTTPS endpoint kvcli uses. */
static const struct kvc_cfg_key ssh_keys[] = {
    KVC_CFG_KEY_INT("port", "0", 0, 65535, "SSH shell port (0: off); host i of a sim "
                    "process gets port+i"),
    KVC_CFG_KEY_STRING("listen", NULL, "SSH address (default: [hostd] listen)"),
    KVC_CFG_KEY_STRING("authorized_keys", NULL,
                       "public keys that may log in as admin_user (default: "
                       "STATE_DIR/authorized_keys)"),
    KVC_CFG_KEY_INT("max_sessions", "16", 1, 1024, "SSH sessions at once, per host"),
    KVC_CFG_KEY_END,
};
static const struct kvc_cfg_key api_keys[] = {
    KVC_CFG_KEY_INT("port", "0", 0, 65535, "HTTPS port of the host's API for kvcli "
                    "(0: off); host i of a sim process gets port+i"),
    KVC_CFG_KEY_END,
};
static const struct kvc_cfg_section_def hostd_sections[] = {
    { .name = "hostd", .keys = hostd_keys },
    { .name = "ssh", .keys = ssh_keys },
    { .name = "api", .keys = api_keys },
    { .name = "sim", .keys = sim_keys },
    { .name = "datastore", .named = true, .keys = ds_keys },
    { .name = "network", .named = true, .keys = net_keys },
    { NULL },
};
static const struct kvc_cfg_schema hostd_schema = { "hostd", hostd_sections };

static void
usage(FILE *f)
{
    fprintf(f,
"usage: hostd [-c FILE] [-n] [--backend kvm|sim] [--sim-hosts N]\n"
"             [--state-dir DIR] [--listen ADDR] [--port P] [--name NAME]\n"
"             [--heartbeat MS] [--datastore NAME=/PATH[:shared]]...\n"
"             [--network NAME[@VSWITCH][:VLAN]]... [--admin-password PW]\n"
"             [--vmkd-socket PATH] [--guest-image FILE]\n"
"             [--lease-ms MS]\n"
"             [--ssh-port P|any] [--api-port P|any] [--authorized-keys FILE]\n"
"             [--log FILE] [--debug] [--check-start]\n"
"  -n             check the config file (-c) and print it normalised\n"
"  --check-start  start every host, then exit (0 if they all came up)\n");
}

static int
add_spec(char ***v, size_t *n, const char *s)
{
    char **nv = realloc(*v, (*n + 1) * sizeof **v);
    if (!nv || !(nv[*n] = strdup(s)))
        return -ENOMEM;
    *v = nv;
    (*n)++;
    return 0;
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct hostd *d = arg;
    kvc_info("signal %d: stopping (VMs keep running)", (int)sig);
    event_base_loopexit(d->base, NULL);
}

/* The shell's settings ([ssh], [api]; the command line wins). */
#define PORT_ANY (-2)                   /* --ssh-port any: a free port per host */
struct shell_opts {
    int ssh_port, api_port;             /* -1: not given; PORT_ANY */
    const char *ssh_listen, *authorized_keys;
    unsigned max_sessions;
};

/* Per host: its SSH server and HTTPS endpoint; shared: the bridge to this
 * loop and the users. */
struct shell {
    struct hostd_bridge *br;
    struct hostd_auth *auth;
    struct hostd_ssh **ssh;
    struct hostd_rest **rest;
    size_t n;
};

static int
shell_start(struct hostd *d, const struct shell_opts *so, struct shell *sh)
{
    int rc;

    if (so->ssh_port == 0 && so->api_port == 0)
        return 0;
    if (so->ssh_port > 0 && so->ssh_port + (int)d->n_hosts - 1 > 65535) {
        kvc_err("ssh ports %d.. for %zu hosts run past 65535", so->ssh_port, d->n_hosts);
        return -ERANGE;
    }
    if (so->api_port > 0 && so->api_port + (int)d->n_hosts - 1 > 65535) {
        kvc_err("api ports %d.. for %zu hosts run past 65535", so->api_port, d->n_hosts);
        return -ERANGE;
    }
    if ((rc = hostd_bridge_new(d->base, &sh->br)) ||
        (rc = hostd_auth_new(d->opt.admin_user, d->opt.admin_password, &sh->auth)))
        return rc;
    sh->ssh = calloc(d->n_hosts, sizeof *sh->ssh);
    sh->rest = calloc(d->n_hosts, sizeof *sh->rest);
    if (!sh->ssh || !sh->rest)
        return -ENOMEM;
    sh->n = d->n_hosts;
    for (size_t i = 0; i < d->n_hosts; i++) {
        struct hostd_host *h = d->hosts[i];
        if (so->ssh_port != 0) {
            struct hostd_ssh_opts o = {
                .listen = so->ssh_listen && so->ssh_listen[0] ? so->ssh_listen : d->opt.listen,
                .port = so->ssh_port == PORT_ANY ? 0 : (uint16_t)(so->ssh_port + (int)i),
                .authorized_keys = so->authorized_keys,
                .max_sessions = so->max_sessions,
            };
            if ((rc = hostd_ssh_start(h, sh->br, sh->auth, &o, &sh->ssh[i])))
                return rc;
        }
        if (so->api_port != 0 &&
            (rc = hostd_rest_start(h, sh->br, sh->auth, d->opt.listen,
                                   so->api_port == PORT_ANY ? 0
                                   : (uint16_t)(so->api_port + (int)i), &sh->rest[i])))
            return rc;
    }
    return 0;
}

static void
shell_stop(struct shell *sh)
{
    /* Waiters on the loop first, so that every server thread can finish. */
    hostd_bridge_shutdown(sh->br);
    for (size_t i = 0; i < sh->n; i++) {
        hostd_rest_stop(sh->rest[i]);
        hostd_ssh_stop(sh->ssh[i]);
    }
    free(sh->ssh);
    free(sh->rest);
    hostd_bridge_free(sh->br);
    hostd_auth_free(sh->auth);
}

static int
apply_config(struct hostd *d, const struct kvc_config *c, char **strs, size_t *nstr)
{
    struct hostd_options *o = &d->opt;
    const struct kvc_cfg_section *s = kvc_config_section(c, "hostd"), *sim;
    char spec[PATH_MAX + 300];

    o->name = kvc_cfg_string(s, "name");
    o->state_dir = kvc_cfg_string(s, "state_dir");
    o->listen = kvc_cfg_string(s, "listen");
    o->port = (int)kvc_cfg_int(s, "port");
    o->backend = kvc_cfg_enum(s, "backend");
    o->heartbeat_ms = (unsigned)kvc_cfg_duration_ms(s, "heartbeat");
    o->admin_user = kvc_cfg_string(s, "admin_user");
    o->admin_password = kvc_cfg_string(s, "admin_password");
    o->vmkd_socket = kvc_cfg_string(s, "vmkd_socket");
    o->guest_image = kvc_cfg_string(s, "guest_image");
    o->lease_ms = (unsigned)kvc_cfg_duration_ms(s, "lease");
    sim = kvc_config_section(c, "sim");
    o->sim_hosts = (unsigned)kvc_cfg_int(sim, "hosts");
    o->sim_cores = (unsigned)kvc_cfg_int(sim, "cores");
    o->sim_mhz = (unsigned)kvc_cfg_int(sim, "mhz");
    o->sim_memory = kvc_cfg_size(sim, "memory");
    for (size_t i = 0; i < kvc_config_count(c, "datastore"); i++) {
        const struct kvc_cfg_section *ds = kvc_config_nth(c, "datastore", i);
        snprintf(spec, sizeof spec, "%s=%s%s", kvc_cfg_instance(ds),
                 kvc_cfg_string(ds, "path"), kvc_cfg_bool(ds, "shared") ? ":shared" : "");
        if (add_spec(&o->ds_specs, &o->n_ds_specs, spec))
            return -ENOMEM;
    }
    for (size_t i = 0; i < kvc_config_count(c, "network"); i++) {
        const struct kvc_cfg_section *n = kvc_config_nth(c, "network", i);
        snprintf(spec, sizeof spec, "%s@%s:%lld", kvc_cfg_instance(n),
                 kvc_cfg_string(n, "vswitch"), (long long)kvc_cfg_int(n, "vlan"));
        if (add_spec(&o->net_specs, &o->n_net_specs, spec))
            return -ENOMEM;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    enum { O_BACKEND = 256, O_SIM_HOSTS, O_STATE, O_LISTEN, O_PORT, O_NAME,
           O_HB, O_DS, O_NET, O_PW, O_LOG, O_DEBUG, O_CHECK_START, O_VMKD, O_GUEST, O_LEASE,
           O_SSH_PORT, O_API_PORT, O_AUTH_KEYS };
    static const struct option longopts[] = {
        { "config", required_argument, NULL, 'c' },
        { "check", no_argument, NULL, 'n' },
        { "backend", required_argument, NULL, O_BACKEND },
        { "sim-hosts", required_argument, NULL, O_SIM_HOSTS },
        { "state-dir", required_argument, NULL, O_STATE },
        { "listen", required_argument, NULL, O_LISTEN },
        { "port", required_argument, NULL, O_PORT },
        { "name", required_argument, NULL, O_NAME },
        { "heartbeat", required_argument, NULL, O_HB },
        { "datastore", required_argument, NULL, O_DS },
        { "network", required_argument, NULL, O_NET },
        { "admin-password", required_argument, NULL, O_PW },
        { "log", required_argument, NULL, O_LOG },
        { "debug", no_argument, NULL, O_DEBUG },
        { "check-start", no_argument, NULL, O_CHECK_START },
        { "vmkd-socket", required_argument, NULL, O_VMKD },
        { "guest-image", required_argument, NULL, O_GUEST },
        { "lease-ms", required_argument, NULL, O_LEASE },
        { "ssh-port", required_argument, NULL, O_SSH_PORT },
        { "api-port", required_argument, NULL, O_API_PORT },
        { "authorized-keys", required_argument, NULL, O_AUTH_KEYS },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct hostd d = { 0 };
    struct hostd_options cli = { .port = -1 };
    struct shell_opts cli_sh = { .ssh_port = -1, .api_port = -1 }, so = { 0 };
    struct shell sh = { 0 };
    struct kvc_config *cfg = NULL;
    char **cli_ds = NULL, **cli_net = NULL, *errs = NULL;
    size_t n_cli_ds = 0, n_cli_net = 0;
    const char *config_path = NULL, *log_path = NULL;
    bool check = false, debug = false, check_start = false;
    char ctl_path[PATH_MAX];
    int opt, rc, status = 1;
    long v;
    char *end;

    kvc_log_init("hostd");
    while ((opt = getopt_long(argc, argv, "c:nh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': config_path = optarg; break;
        case 'n': check = true; break;
        case O_BACKEND:
            if (strcmp(optarg, "kvm") && strcmp(optarg, "sim")) {
                fprintf(stderr, "hostd: --backend: kvm or sim\n");
                return 2;
            }
            cli.backend = optarg;
            break;
        case O_SIM_HOSTS:
            v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 4096) {
                fprintf(stderr, "hostd: --sim-hosts: 1..4096\n");
                return 2;
            }
            cli.sim_hosts = (unsigned)v;
            break;
        case O_STATE: cli.state_dir = optarg; break;
        case O_LISTEN: cli.listen = optarg; break;
        case O_PORT:
            v = strtol(optarg, &end, 10);
            if (*end || v < 0 || v > 65535) {
                fprintf(stderr, "hostd: --port: 0..65535\n");
                return 2;
            }
            cli.port = (int)v;
            break;
        case O_NAME: cli.name = optarg; break;
        case O_HB:
            v = strtol(optarg, &end, 10);
            if (*end || v < 100 || v > 60000) {
                fprintf(stderr, "hostd: --heartbeat: 100..60000 (ms)\n");
                return 2;
            }
            cli.heartbeat_ms = (unsigned)v;
            break;
        case O_DS:
            if (add_spec(&cli_ds, &n_cli_ds, optarg))
                return 1;
            break;
        case O_NET:
            if (add_spec(&cli_net, &n_cli_net, optarg))
                return 1;
            break;
        case O_PW: cli.admin_password = optarg; break;
        case O_LOG: log_path = optarg; break;
        case O_DEBUG: debug = true; break;
        case O_CHECK_START: check_start = true; break;
        case O_VMKD: cli.vmkd_socket = optarg; break;
        case O_GUEST: cli.guest_image = optarg; break;
        case O_LEASE:
            v = strtol(optarg, &end, 10);
            if (*end || v < 100 || v > 600000) {
                fprintf(stderr, "hostd: --lease-ms: 100..600000\n");
                return 2;
            }
            cli.lease_ms = (unsigned)v;
            break;
        case O_SSH_PORT:
        case O_API_PORT:
            v = strtol(optarg, &end, 10);
            if (!strcmp(optarg, "any")) {
                v = PORT_ANY;
            } else if (*end || v < 0 || v > 65535) {
                fprintf(stderr, "hostd: --%s-port: 0..65535 (0: off) or 'any'\n",
                        opt == O_SSH_PORT ? "ssh" : "api");
                return 2;
            }
            *(opt == O_SSH_PORT ? &cli_sh.ssh_port : &cli_sh.api_port) = (int)v;
            break;
        case O_AUTH_KEYS: cli_sh.authorized_keys = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    if (check) {
        if (!config_path) {
            fprintf(stderr, "hostd: -n needs -c FILE\n");
            return 2;
        }
        return kvc_config_check(&hostd_schema, config_path, stdout, stderr);
    }
    rc = config_path ? kvc_config_load(&hostd_schema, config_path, &cfg, &errs)
                     : kvc_config_new(&hostd_schema, &cfg, &errs);
    if (rc) {
        fprintf(stderr, "%s", errs ? errs : strerror(-rc));
        if (errs && errs[strlen(errs) - 1] != '\n')
            fputc('\n', stderr);
        free(errs);
        return 1;
    }
    if (apply_config(&d, cfg, NULL, NULL))
        goto out;
    {
        const struct kvc_cfg_section *ss = kvc_config_section(cfg, "ssh");
        so.ssh_port = cli_sh.ssh_port != -1 ? cli_sh.ssh_port : (int)kvc_cfg_int(ss, "port");
        so.api_port = cli_sh.api_port != -1 ? cli_sh.api_port
                      : (int)kvc_cfg_int(kvc_config_section(cfg, "api"), "port");
        so.ssh_listen = kvc_cfg_string(ss, "listen");
        so.authorized_keys = cli_sh.authorized_keys ? cli_sh.authorized_keys
                             : kvc_cfg_string(ss, "authorized_keys");
        so.max_sessions = (unsigned)kvc_cfg_int(ss, "max_sessions");
    }
    if (!log_path) {
        const char *lf = kvc_cfg_string(kvc_config_section(cfg, "hostd"), "log_file");
        if (lf && lf[0])
            log_path = lf;
    }
    if (log_path && (rc = kvc_log_open(log_path))) {
        fprintf(stderr, "hostd: log %s: %s\n", log_path, strerror(-rc));
        goto out;
    }
    if (debug)
        kvc_log_set_level("*", KVC_LOG_DBG);
    /* The command line wins over the file. */
#define OVR(F) do { if (cli.F) d.opt.F = cli.F; } while (0)
    OVR(backend); OVR(sim_hosts); OVR(state_dir); OVR(listen); OVR(name);
    OVR(heartbeat_ms); OVR(admin_password); OVR(vmkd_socket); OVR(guest_image);
    OVR(lease_ms);
#undef OVR
    if (cli.port >= 0)
        d.opt.port = cli.port;
    for (size_t i = 0; i < n_cli_ds; i++)
        if (add_spec(&d.opt.ds_specs, &d.opt.n_ds_specs, cli_ds[i]))
            goto out;
    for (size_t i = 0; i < n_cli_net; i++)
        if (add_spec(&d.opt.net_specs, &d.opt.n_net_specs, cli_net[i]))
            goto out;
    if (d.opt.n_net_specs == 0 && add_spec(&d.opt.net_specs, &d.opt.n_net_specs,
                                           "VM Network@vSwitch0:0"))
        goto out;
    if (strcmp(d.opt.backend, "sim") && d.opt.sim_hosts > 1) {
        kvc_err("--sim-hosts needs --backend sim");
        goto out;
    }
    if (d.opt.port > 0 && d.opt.port + (int)d.opt.sim_hosts - 1 > 65535) {
        kvc_err("ports %d.. for %u hosts run past 65535", d.opt.port, d.opt.sim_hosts);
        goto out;
    }

    signal(SIGPIPE, SIG_IGN);
    gnutls_global_init();
    if (!(d.base = event_base_new()))
        goto out;
    if ((rc = hostd_mkdirs(d.opt.state_dir, 0700))) {
        kvc_err("state dir %s: %s", d.opt.state_dir, strerror(-rc));
        goto out;
    }
    d.hosts = calloc(d.opt.sim_hosts, sizeof *d.hosts);
    if (!d.hosts)
        goto out;
    for (unsigned i = 0; i < d.opt.sim_hosts; i++) {
        if (hostd_host_new(&d, i, &d.hosts[i]))
            goto out;
        d.n_hosts++;
        if (hostd_host_start(d.hosts[i]))
            goto out;
    }
    if (check_start) {
        /* Start every host (identity, listener) and stop again. */
        kvc_info("start check OK: %zu host(s)", d.n_hosts);
        status = 0;
        goto out;
    }
    if ((rc = shell_start(&d, &so, &sh))) {
        kvc_err("shell: %s", strerror(-rc));
        goto out;
    }
    snprintf(ctl_path, sizeof ctl_path, "%s/control.sock", d.opt.state_dir);
    if ((rc = control_new(&d, ctl_path, &d.ctl)))
        kvc_warn("control socket %s: %s", ctl_path, strerror(-rc));
    d.sig_term = evsignal_new(d.base, SIGTERM, on_signal, &d);
    d.sig_int = evsignal_new(d.base, SIGINT, on_signal, &d);
    if (!d.sig_term || !d.sig_int)
        goto out;
    event_add(d.sig_term, NULL);
    event_add(d.sig_int, NULL);
    kvc_info("hostd ready: %zu host(s), backend %s", d.n_hosts, d.opt.backend);
    event_base_dispatch(d.base);
    status = 0;
out:
    shell_stop(&sh);
    control_free(d.ctl);
    for (size_t i = 0; i < d.n_hosts; i++)
        hostd_host_free(d.hosts[i]);
    free(d.hosts);
    if (d.sig_term)
        event_free(d.sig_term);
    if (d.sig_int)
        event_free(d.sig_int);
    if (d.base)
        event_base_free(d.base);
    for (size_t i = 0; i < d.opt.n_ds_specs; i++)
        free(d.opt.ds_specs[i]);
    for (size_t i = 0; i < d.opt.n_net_specs; i++)
        free(d.opt.net_specs[i]);
    free(d.opt.ds_specs);
    free(d.opt.net_specs);
    for (size_t i = 0; i < n_cli_ds; i++)
        free(cli_ds[i]);
    for (size_t i = 0; i < n_cli_net; i++)
        free(cli_net[i]);
    free(cli_ds);
    free(cli_net);
    kvc_config_free(cfg);
    if (status)
        kvc_err("hostd failed to start");
    return status;
}
