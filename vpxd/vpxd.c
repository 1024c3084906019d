/* vpxd: the cluster manager.  One libevent loop runs the HTTPS API, the
 * host connections and the database; SIGTERM/SIGINT stop it cleanly.
 *
 *   vpxd [-f FILE] [-n] [--dir DIR] [--listen ADDR] [--port N] [--log FILE]
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
#include <gnutls/gnutls.h>

#include "lib/configfile.h"
#include "lib/log.h"
#include "vpxd/api/api.h"
#include "vpxd/auth.h"
#include "vpxd/cert.h"
#include "vpxd/db.h"
#include "vpxd/drs.h"
#include "vpxd/migration.h"
#include "vpxd/ha.h"
#include "vpxd/hosts.h"
#include "vpxd/stats.h"
#include "vpxd/svmotion.h"
#include "vpxd/snmp_provider.h"
#include "vpxd/vpxd.h"

KVC_LOG_MODULE(vpxd);

static const struct kvc_cfg_key server_keys[] = {
    KVC_CFG_KEY_STRING("dir", KVC_LOCALSTATEDIR "/vpxd",
                       "state directory: database, certificate, key"),
    KVC_CFG_KEY_STRING("listen", "0.0.0.0", "IPv4 address the HTTPS API listens on"),
    KVC_CFG_KEY_INT("port", "443", 0, 65535, "HTTPS port (0: any free port)"),
    KVC_CFG_KEY_SIZE("max-body", "1M", 1024, 64 << 20, "largest request body accepted"),
    KVC_CFG_KEY_DURATION("connection-timeout", "30s", 1000, 3600000,
                         "idle time after which a client connection is closed"),
    KVC_CFG_KEY_INT("max-connections", "256", 4, 65536, "simultaneous client connections"),
    KVC_CFG_KEY_BOOL("metrics-anonymous", "true", "serve /metrics without a session"),
    KVC_CFG_KEY_STRING("log", NULL, "log file (default: stderr)"),
    KVC_CFG_KEY_ENUM("log-level", "info", "log level", "err", "warn", "info", "debug"),
    KVC_CFG_KEY_END,
};

static const struct kvc_cfg_key auth_keys[] = {
    KVC_CFG_KEY_STRING("admin-user", "administrator@vsphere.local",
                       "the administrator created on first start"),
    KVC_CFG_KEY_STRING("admin-password", NULL,
                       "its password on first start (unset: generate and print one)"),
    KVC_CFG_KEY_DURATION("session-idle", "30m", 1000, 86400000,
                         "sessions unused this long expire"),
    KVC_CFG_KEY_INT("login-fail-limit", "5", 1, 1000,
                    "failed logins for one user before each try is delayed"),
    KVC_CFG_KEY_END,
};

static const struct kvc_cfg_key hosts_keys[] = {
    KVC_CFG_KEY_DURATION("heartbeat", "1s", 100, 60000, "heartbeat period asked of hosts"),
    KVC_CFG_KEY_DURATION("stats-interval", "20s", 100, 3600000,
                         "statistics sampling period asked of hosts"),
    KVC_CFG_KEY_END,
};

/* Statistics levels and their retention (docs/statistics.md). */
static const struct kvc_cfg_key stats_keys[] = {
    KVC_CFG_KEY_DURATION("retention-realtime", "1h", 1000, 366LL * 86400000,
                         "how long realtime samples are kept"),
    KVC_CFG_KEY_DURATION("retention-5min", "1d", 1000, 366LL * 86400000,
                         "how long 5-minute rollups are kept"),
    KVC_CFG_KEY_DURATION("retention-30min", "7d", 1000, 366LL * 86400000,
                         "how long 30-minute rollups are kept"),
    KVC_CFG_KEY_DURATION("retention-2h", "30d", 1000, 3660LL * 86400000,
                         "how long 2-hour rollups are kept"),
    KVC_CFG_KEY_DURATION("retention-1day", "365d", 1000, 3660LL * 86400000,
                         "how long 1-day rollups are kept"),
    KVC_CFG_KEY_DURATION("prune-interval", "1m", 100, 86400000,
                         "how often rows past their retention are deleted"),
    KVC_CFG_KEY_END,
};

/* The SNMP subagent (docs/monitoring.md): off unless an AgentX master is named. */
static const struct kvc_cfg_key snmp_keys[] = {
    KVC_CFG_KEY_STRING("agentx", NULL, "snmpd's AgentX socket (unix:/path or "
                       "tcp:host:port); unset: no SNMP"),
    KVC_CFG_KEY_INT("ping-interval", "5", 1, 3600, "seconds between AgentX pings and "
                    "reconnects while snmpd is away"),
    KVC_CFG_KEY_END,
};

/* Live migration and DRS (docs/drs.md). */
static const struct kvc_cfg_key migration_keys[] = {
    KVC_CFG_KEY_INT("link-speed", "1", 1, 400, "vMotion network speed in Gb/s (bandwidth"
                    " of each host's migrations)"),
    KVC_CFG_KEY_INT("max-per-host", "0", 0, 64, "concurrent migrations per host (0: 2 below"
                    " 10 Gb/s, else 8)"),
    KVC_CFG_KEY_DURATION("downtime", "500ms", 10, 10000, "stop-and-copy target"),
    KVC_CFG_KEY_DURATION("poll", "250ms", 50, 10000, "progress poll period"),
    KVC_CFG_KEY_DURATION("timeout", "60s", 1000, 3600000, "margin over the estimated time"
                         " before a migration is aborted"),
    KVC_CFG_KEY_END,
};

static const struct kvc_cfg_section_def sections[] = {
    { .name = "server", .keys = server_keys },
    { .name = "auth", .keys = auth_keys },
    { .name = "hosts", .keys = hosts_keys },
    { .name = "migration", .keys = migration_keys },
    { .name = "stats", .keys = stats_keys },
    { .name = "snmp", .keys = snmp_keys },
    { .name = NULL },
};

static const struct kvc_cfg_schema vpxd_schema = { "vpxd", sections };

static void usage(FILE *f)
{
    fprintf(f, "usage: vpxd [-f FILE] [-n] [--dir DIR] [--listen ADDR] [--port N]"
               " [--log FILE]\n"
               "  -f FILE   configuration file (default %s/vpxd.conf)\n"
               "  -n        check the configuration, print it in normal form, exit\n",
            KVC_SYSCONFDIR);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct vpxd *vx = arg;

    kvc_info("signal %d: stopping", (int)sig);
    event_base_loopbreak(vx->base);
}

static int mkdir_p(const char *dir)
{
    char buf[4096];

    snprintf(buf, sizeof(buf), "%s", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(buf, 0700) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "dir", required_argument, NULL, 'd' },
        { "listen", required_argument, NULL, 'l' },
        { "port", required_argument, NULL, 'p' },
        { "log", required_argument, NULL, 'L' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *cfg_path = NULL, *dir = NULL, *listen_addr = NULL, *log_path = NULL;
    int port = -1, c, rc, status = 1;
    bool check = false;
    struct kvc_config *cfg = NULL;
    char *errs = NULL, path[4096];
    struct vpxd vx = { 0 };
    struct event *sigterm = NULL, *sigint = NULL;
    struct vpxd_snmp *snmp = NULL;

    kvc_log_init("vpxd");
    while ((c = getopt_long(argc, argv, "f:nh", longopts, NULL)) != -1) {
        switch (c) {
        case 'f': cfg_path = optarg; break;
        case 'n': check = true; break;
        case 'd': dir = optarg; break;
        case 'l': listen_addr = optarg; break;
        case 'p': {
            int64_t v;
            if (kvc_parse_int64(optarg, &v) < 0 || v < 0 || v > 65535) {
                fprintf(stderr, "vpxd: bad port '%s'\n", optarg);
                return 2;
            }
            port = (int)v;
            break;
        }
        case 'L': log_path = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    if (check) {
        snprintf(path, sizeof(path), "%s", cfg_path ? cfg_path : KVC_SYSCONFDIR "/vpxd.conf");
        return kvc_config_check(&vpxd_schema, path, stdout, stderr);
    }
    if (cfg_path || access(KVC_SYSCONFDIR "/vpxd.conf", R_OK) == 0)
        rc = kvc_config_load(&vpxd_schema, cfg_path ? cfg_path : KVC_SYSCONFDIR "/vpxd.conf",
                             &cfg, &errs);
    else
        rc = kvc_config_new(&vpxd_schema, &cfg, &errs);
    if (rc < 0) {
        fprintf(stderr, "%s", errs ? errs : "vpxd: cannot load the configuration\n");
        free(errs);
        return 1;
    }

    const struct kvc_cfg_section *srv = kvc_config_section(cfg, "server");
    const struct kvc_cfg_section *au = kvc_config_section(cfg, "auth");
    const struct kvc_cfg_section *ho = kvc_config_section(cfg, "hosts");
    const struct kvc_cfg_section *sto = kvc_config_section(cfg, "stats");

    if (!log_path)
        log_path = kvc_cfg_string(srv, "log");
    if (log_path && kvc_log_open(log_path) < 0) {
        fprintf(stderr, "vpxd: cannot open log %s\n", log_path);
        goto out;
    }
    kvc_log_set_default_level(kvc_log_level_from_string(kvc_cfg_enum(srv, "log-level")));

    vx.opt.dir = xstrdup(dir ? dir : kvc_cfg_string(srv, "dir"));
    vx.opt.listen_addr = xstrdup(listen_addr ? listen_addr : kvc_cfg_string(srv, "listen"));
    vx.opt.port = port >= 0 ? port : (int)kvc_cfg_int(srv, "port");
    vx.opt.max_body = (int64_t)kvc_cfg_size(srv, "max-body");
    vx.opt.conn_timeout_s = (kvc_cfg_duration_ms(srv, "connection-timeout") + 999) / 1000;
    vx.opt.max_connections = kvc_cfg_int(srv, "max-connections");
    vx.opt.metrics_anonymous = kvc_cfg_bool(srv, "metrics-anonymous");
    vx.opt.admin_user = xstrdup(kvc_cfg_string(au, "admin-user"));
    vx.opt.admin_password = xstrdup(kvc_cfg_string(au, "admin-password"));
    vx.opt.session_idle_s = (kvc_cfg_duration_ms(au, "session-idle") + 999) / 1000;
    vx.opt.login_fail_limit = kvc_cfg_int(au, "login-fail-limit");
    vx.opt.heartbeat_ms = kvc_cfg_duration_ms(ho, "heartbeat");
    vx.opt.stats_interval_ms = kvc_cfg_duration_ms(ho, "stats-interval");
    vx.started = time(NULL);

    signal(SIGPIPE, SIG_IGN);
    gnutls_global_init();
    if ((rc = mkdir_p(vx.opt.dir)) < 0) {
        kvc_err("cannot create state directory %s: %s", vx.opt.dir, strerror(-rc));
        goto out;
    }
    if (vpxd_cert_ensure(vx.opt.dir, "vpxd", &vx.cert_pem, &vx.key_pem, vx.thumbprint) < 0)
        goto out;
    snprintf(path, sizeof(path), "%s/rpc.crt", vx.opt.dir);
    vx.cert_file = strdup(path);
    snprintf(path, sizeof(path), "%s/rpc.key", vx.opt.dir);
    vx.key_file = strdup(path);
    snprintf(path, sizeof(path), "%s/vpxd.db", vx.opt.dir);
    if ((rc = vdb_open(path, &vx.db)) < 0) {
        kvc_err("cannot open the database %s: %s", path, strerror(-rc));
        goto out;
    }
    kvc_info("database %s at schema version %d", path, vdb_schema_version(vx.db));
    if (vdb_interrupted_tasks(vx.db) > 0)
        kvc_warn("%d task(s) interrupted by the last stop were marked failed",
                 vdb_interrupted_tasks(vx.db));

    struct auth_config ac = { .session_idle_s = vx.opt.session_idle_s,
                              .fail_limit = vx.opt.login_fail_limit };
    if (auth_new(vx.db, &ac, &vx.auth) < 0)
        goto out;
    {
        char *generated = NULL;
        if ((rc = auth_bootstrap(vx.auth, vx.opt.admin_user, vx.opt.admin_password,
                                 &generated)) < 0) {
            kvc_err("cannot create the administrator: %s", strerror(-rc));
            goto out;
        }
        if (generated) {
            /* Shown once; only its hash is kept. */
            printf("ADMIN %s %s\n", vx.opt.admin_user, generated);
            fflush(stdout);
            kvc_info("generated the administrator's password (printed once on stdout)");
            free(generated);
        }
    }

    vx.base = event_base_new();
    if (!vx.base)
        goto out;
    {
        static const char *const keys[VDB_STATS_LEVELS] = {
            "retention-realtime", "retention-5min", "retention-30min", "retention-2h",
            "retention-1day",
        };
        struct vpxd_stats_config sc = {
            .prune_interval_ms = kvc_cfg_duration_ms(sto, "prune-interval") };
        for (int l = 0; l < VDB_STATS_LEVELS; l++)
            sc.retention_ms[l] = kvc_cfg_duration_ms(sto, keys[l]);
        if ((rc = vpxd_stats_new(&vx, &sc, &vx.stats)) < 0)
            kvc_warn("statistics are not stored: %s", strerror(-rc));
    }
    vpxd_hosts_start(&vx);
    {
        const struct kvc_cfg_section *mi = kvc_config_section(cfg, "migration");
        struct vpxd_migration_config mc = {
            .link_gbps = (double)kvc_cfg_int(mi, "link-speed"),
            .max_per_host = (int)kvc_cfg_int(mi, "max-per-host"),
            .downtime_ms = (uint32_t)kvc_cfg_duration_ms(mi, "downtime"),
            .poll_ms = (uint32_t)kvc_cfg_duration_ms(mi, "poll"),
            .timeout_ms = kvc_cfg_duration_ms(mi, "timeout"),
        };
        vpxd_migration_configure(&mc);
        if ((rc = drs_start(&vx)) < 0)
            kvc_warn("DRS not started: %s", strerror(-rc));
    }
    if ((rc = ha_start(&vx)) < 0)
        kvc_warn("HA not started: %s", strerror(-rc));
    if (api_server_start(&vx, &vx.api) < 0)
        goto out;
    {
        const struct kvc_cfg_section *sn = kvc_config_section(cfg, "snmp");
        const char *ax = kvc_cfg_string(sn, "agentx");
        if (ax && ax[0] && (rc = vpxd_snmp_start(&vx, ax, (int)kvc_cfg_int(sn, "ping-interval"),
                                                 &snmp)) < 0) {
            kvc_err("SNMP subagent: %s", strerror(-rc));
            goto out;
        }
    }
    sigterm = evsignal_new(vx.base, SIGTERM, on_signal, &vx);
    sigint = evsignal_new(vx.base, SIGINT, on_signal, &vx);
    event_add(sigterm, NULL);
    event_add(sigint, NULL);
    kvc_info("listening on https://%s:%d thumbprint %s", vx.opt.listen_addr,
             vx.opt.port, vx.thumbprint);
    event_base_dispatch(vx.base);
    status = 0;
out:
    vpxd_snmp_stop(snmp);
    drs_stop(&vx);
    vpxd_svmotion_stop(&vx);
    vpxd_migration_stop(&vx);
    vpxd_hosts_stop(&vx);
    ha_stop(&vx);                       /* after the host calls are cancelled */
    api_server_stop(vx.api);
    if (sigterm)
        event_free(sigterm);
    if (sigint)
        event_free(sigint);
    vpxd_stats_free(vx.stats);
    auth_free(vx.auth);
    vdb_close(vx.db);
    if (vx.base)
        event_base_free(vx.base);
    kvc_config_free(cfg);
    free(vx.opt.dir);
    free(vx.opt.listen_addr);
    free(vx.opt.admin_user);
    free(vx.opt.admin_password);
    free(vx.cert_pem);
    free(vx.key_pem);
    free(vx.cert_file);
    free(vx.key_file);
    free(vx.hm_error);
    gnutls_global_deinit();
    kvc_info("stopped (status %d)", status);
    return status;
}
