/* vmkd: the per-host VMkernel shim.  Starts, watches and reaps vmx, places
 * each VM in a cgroup (shares, limits, reservations), reports host capacity
 * and VM usage, and serves all that to hostd on a unix control socket.
 * See docs/vmkd.md.
 *
 *     vmkd [-f FILE] [-n] [-d]
 *
 * -f FILE   configuration file (default KVC_SYSCONFDIR/vmkd.conf)
 * -n        check the configuration, print it in normal form, and exit
 * -d        debug logging
 *
 * SIGTERM/SIGINT stop vmkd; running VMs keep running (like ESXi) unless
 * [vmkd] stop-vms-on-exit is set, and a restarted vmkd re-adopts them.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "configfile.h"
#include "log.h"
#include "vmkd.h"
#include "vmkd_ctl.h"
#include "vmkd_net.h"

KVC_LOG_MODULE(main);

#define DEFAULT_CONF KVC_SYSCONFDIR "/vmkd.conf"

static const struct kvc_cfg_key vmkd_keys[] = {
    KVC_CFG_KEY_STRING("state-dir", "\"" KVC_LOCALSTATEDIR "/vmkd\"",
                       "directory for the control socket and per-VM state (pid files, vmx sockets)"),
    KVC_CFG_KEY_STRING("socket", NULL, "control socket path (default: STATE-DIR/vmkd.sock)"),
    KVC_CFG_KEY_STRING("socket-mode", "\"0660\"", "file mode of the control socket (octal)"),
    KVC_CFG_KEY_INT("hostd-uid", "-1", -1, 2147483647,
                    "uid allowed besides root on the control socket (-1: root only)"),
    KVC_CFG_KEY_STRING("vmx", "\"" KVC_LIBEXECDIR "/vmx\"", "path of the vmx program"),
    KVC_CFG_KEY_DURATION("ready-timeout", "30s", 100, 600000,
                         "how long a vmx may take to print VMX-READY"),
    KVC_CFG_KEY_DURATION("stop-timeout", "10s", 10, 600000,
                         "graceful power-off: SIGTERM, then SIGKILL after this"),
    KVC_CFG_KEY_BOOL("stop-vms-on-exit", "false",
                     "kill running VMs when vmkd stops (default: they keep running)"),
    KVC_CFG_KEY_STRING("log-file", NULL, "log file (default: stderr)"),
    KVC_CFG_KEY_ENUM("log-level", "info", "log level", "err", "warn", "info", "dbg"),
    KVC_CFG_KEY_END,
};

static const struct kvc_cfg_key cgroup_keys[] = {
    KVC_CFG_KEY_ENUM("version", "auto", "cgroup layout: detect, v1 or v2", "auto", "v1", "v2"),
    KVC_CFG_KEY_STRING("root", "\"/sys/fs/cgroup\"", "where cgroup hierarchies are mounted"),
    KVC_CFG_KEY_STRING("parent", "kvcenter", "parent cgroup of all VM cgroups"),
    KVC_CFG_KEY_BOOL("remove-parent-on-exit", "false",
                     "remove the parent cgroup when vmkd exits with no VM left"),
    KVC_CFG_KEY_DURATION("cfs-period", "100ms", 1, 1000, "CFS bandwidth period for CPU limits"),
    KVC_CFG_KEY_END,
};

static const struct kvc_cfg_key host_keys[] = {
    KVC_CFG_KEY_INT("reserve-cpu-mhz", "0", 0, 100000000,
                    "CPU kept for the host, not available to VM reservations"),
    KVC_CFG_KEY_SIZE("reserve-memory", "512M", 0, INT64_C(1) << 50,
                     "memory kept for the host, not available to VM reservations"),
    KVC_CFG_KEY_END,
};

static const struct kvc_cfg_section_def vmkd_sections[] = {
    { .name = "vmkd", .keys = vmkd_keys },
    { .name = "cgroup", .keys = cgroup_keys },
    { .name = "host", .keys = host_keys },
    { .name = "vswitch", .keys = vmkd_net_vswitch_keys },
    { .name = "portgroup", .named = true, .keys = vmkd_net_portgroup_keys },
    { .name = NULL },
};

static const struct kvc_cfg_schema vmkd_schema = { .name = "vmkd", .sections = vmkd_sections };

struct main_ctx {
    struct event_base *base;
    bool stopping;
};

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct main_ctx *m = arg;
    kvc_info("signal %d: stopping", (int)sig);
    m->stopping = true;
    event_base_loopbreak(m->base);
}

/* Values the schema cannot check: returns 0 or -EINVAL (message on stderr). */
static int check_values(const struct kvc_config *cfg, const char *conf, long *mode)
{
    const struct kvc_cfg_section *sv = kvc_config_section(cfg, "vmkd");
    const char *mode_s = kvc_cfg_string(sv, "socket-mode");
    char *end;
    *mode = strtol(mode_s, &end, 8);
    if (!*mode_s || *end || *mode < 0 || *mode > 0777) {
        fprintf(stderr, "%s: [vmkd] socket-mode: '%s' is not an octal file mode\n", conf, mode_s);
        return -EINVAL;
    }
    static const char *const abs_keys[] = { "state-dir", "socket", "vmx", "log-file" };
    for (size_t i = 0; i < sizeof(abs_keys) / sizeof(abs_keys[0]); i++) {
        const char *v = kvc_cfg_string(sv, abs_keys[i]);
        if (v && *v && v[0] != '/') {
            fprintf(stderr, "%s: [vmkd] %s: '%s' must be an absolute path\n", conf, abs_keys[i], v);
            return -EINVAL;
        }
    }
    /* Per-VM sockets (STATE-DIR/vms/ID/vmx.sock) are checked at power-on:
     * a long state dir only shortens the VM ids it can take. */
    const char *sock = kvc_cfg_string(sv, "socket");
    const char *sd = kvc_cfg_string(sv, "state-dir");
    size_t socklen = sock && *sock ? strlen(sock) : strlen(sd) + strlen("/vmkd.sock");
    if (socklen >= 108) {
        fprintf(stderr, "%s: [vmkd] %s is too long for unix socket paths (108 bytes)\n", conf,
                sock && *sock ? "socket" : "state-dir");
        return -EINVAL;
    }
    const struct kvc_cfg_section *sc = kvc_config_section(cfg, "cgroup");
    const char *parent = kvc_cfg_string(sc, "parent");
    if (!parent || !*parent || parent[0] == '/' || strstr(parent, "..")) {
        fprintf(stderr, "%s: [cgroup] parent: '%s' must be a relative cgroup path\n", conf,
                parent ? parent : "");
        return -EINVAL;
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: vmkd [-f CONFIG] [-n] [-d]\n"
               "  -f FILE  configuration file (default %s)\n"
               "  -n       check the configuration and exit\n"
               "  -d       debug logging\n", DEFAULT_CONF);
}

int main(int argc, char **argv)
{
    const char *conf = DEFAULT_CONF;
    bool check = false, debug = false;
    int opt;
    while ((opt = getopt(argc, argv, "f:ndh")) != -1) {
        switch (opt) {
        case 'f': conf = optarg; break;
        case 'n': check = true; break;
        case 'd': debug = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    kvc_log_init("vmkd");
    if (check) {
        /* First what the schema cannot express, then the schema's own check
         * (which prints the normal form and "configuration OK"). */
        struct kvc_config *c = NULL;
        long m;
        if (kvc_config_load(&vmkd_schema, conf, &c, NULL) == 0) {
            char nwhy[256];
            int bad = check_values(c, conf, &m) < 0;
            if (!bad && vmkd_net_check(c, nwhy, sizeof(nwhy)) < 0) {
                fprintf(stderr, "%s: %s\n", conf, nwhy);
                bad = 1;
            }
            kvc_config_free(c);
            if (bad)
                return 1;
        }
        return kvc_config_check(&vmkd_schema, conf, stdout, stderr);
    }

    struct kvc_config *cfg = NULL;
    char *errs = NULL;
    if (kvc_config_load(&vmkd_schema, conf, &cfg, &errs) < 0) {
        fprintf(stderr, "%s", errs ? errs : "cannot load configuration\n");
        if (errs && errs[0] && errs[strlen(errs) - 1] != '\n')
            fputc('\n', stderr);
        free(errs);
        return 1;
    }
    const struct kvc_cfg_section *sv = kvc_config_section(cfg, "vmkd");
    const struct kvc_cfg_section *sc = kvc_config_section(cfg, "cgroup");
    const struct kvc_cfg_section *sh = kvc_config_section(cfg, "host");

    const char *logfile = kvc_cfg_string(sv, "log-file");
    if (logfile && *logfile && kvc_log_open(logfile) < 0) {
        fprintf(stderr, "vmkd: cannot open log file %s: %s\n", logfile, strerror(errno));
        kvc_config_free(cfg);
        return 1;
    }
    kvc_log_set_default_level(debug ? KVC_LOG_DBG
                              : kvc_log_level_from_string(kvc_cfg_enum(sv, "log-level")));

    int status = 1;
    struct event_base *base = NULL;
    struct vmkd *d = NULL;
    struct vmkd_ctl *ctl = NULL;
    struct vmkd_net *net = NULL;
    struct vmkd_port_srv *psrv = NULL;
    char *psock = NULL;
    struct event *evs[3] = { NULL, NULL, NULL };
    char *sock = NULL;
    struct main_ctx m = { 0 };

    long mode;
    if (check_values(cfg, conf, &mode) < 0)
        goto out;
    struct vmkd_config vc = {
        .state_dir = (char *)kvc_cfg_string(sv, "state-dir"),
        .vmx_path = (char *)kvc_cfg_string(sv, "vmx"),
        .hostd_uid = (long)kvc_cfg_int(sv, "hostd-uid"),
        .ready_timeout_ms = kvc_cfg_duration_ms(sv, "ready-timeout"),
        .stop_timeout_ms = kvc_cfg_duration_ms(sv, "stop-timeout"),
        .cg = {
            .fsroot = kvc_cfg_string(sc, "root"),
            .parent = kvc_cfg_string(sc, "parent"),
            .version = (enum kvc_cg_version)kvc_cfg_enum_index(sc, "version"),
        },
        .reserve_cpu_mhz = (uint64_t)kvc_cfg_int(sh, "reserve-cpu-mhz"),
        .reserve_mem_mb = kvc_cfg_size(sh, "reserve-memory") >> 20,
        .cfs_period_us = (uint64_t)kvc_cfg_duration_ms(sc, "cfs-period") * 1000,
        .rmdir_cgroup_parent = kvc_cfg_bool(sc, "remove-parent-on-exit"),
    };
    const char *s = kvc_cfg_string(sv, "socket");
    sock = s && *s ? strdup(s) : NULL;
    if (!sock && asprintf(&sock, "%s/vmkd.sock", vc.state_dir) < 0)
        sock = NULL;
    if (!sock)
        goto out;
    if (access(vc.vmx_path, X_OK) < 0)
        kvc_warn("vmx program %s: %s (power-on will fail)", vc.vmx_path, strerror(errno));

    char nwhy[256];
    if (vmkd_net_new(cfg, &net, nwhy, sizeof(nwhy)) < 0) {
        kvc_err("network: %s", nwhy);
        goto out;
    }
    vmkd_net_hooks(net, &vc.net);
    signal(SIGPIPE, SIG_IGN);
    base = event_base_new();
    if (!base)
        goto out;
    m.base = base;
    char why[VMKD_WHY_MAX] = "";
    int rc = vmkd_new(base, &vc, &d, why);
    if (rc < 0) {
        kvc_err("%s", why);
        goto out;
    }
    vmkd_adopt_all(d);
    /* Running vmx whose port this vmkd made anew (re-adopted) come here
     * for it; without the socket they would stay off the network. */
    if (asprintf(&psock, "%s/%s", vc.state_dir, VMKD_PORT_SOCK) < 0) {
        psock = NULL;
        goto out;
    }
    if ((rc = vmkd_port_srv_new(base, d, net, psock, &psrv, why, sizeof(why))) < 0) {
        kvc_err("%s", why);
        goto out;
    }
    rc = vmkd_ctl_new(base, d, sock, (mode_t)mode, vc.hostd_uid, &ctl);
    if (rc < 0) {
        kvc_err("control socket %s: %s", sock, strerror(-rc));
        goto out;
    }
    evs[0] = evsignal_new(base, SIGTERM, on_signal, &m);
    evs[1] = evsignal_new(base, SIGINT, on_signal, &m);
    evs[2] = evsignal_new(base, SIGHUP, on_signal, &m);
    for (int i = 0; i < 3; i++)
        if (!evs[i] || event_add(evs[i], NULL) < 0)
            goto out;
    kvc_info("vmkd ready: socket %s, state %s, %zu VM(s) re-adopted, cgroups %s", sock,
             vc.state_dir, vmkd_vm_count(d), vmkd_cgroup_describe(d));
    event_base_dispatch(base);
    status = m.stopping ? 0 : 1;
out:
    /* Pending calls are answered (cancelled) before the socket closes. */
    vmkd_port_srv_free(psrv);
    free(psock);
    vmkd_free(d, kvc_cfg_bool(sv, "stop-vms-on-exit"));
    vmkd_ctl_free(ctl);
    vmkd_net_free(net);
    for (int i = 0; i < 3; i++)
        if (evs[i])
            event_free(evs[i]);
    if (base)
        event_base_free(base);
    free(sock);
    kvc_config_free(cfg);
    if (status == 0)
        kvc_info("vmkd stopped");
    return status;
}
