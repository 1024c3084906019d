/* vpxd's process-wide context, shared by its modules.  Everything runs on
 * the one libevent loop thread. */
#ifndef VPXD_VPXD_H
#define VPXD_VPXD_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct event_base;
struct vdb;
struct hostmgr;
struct api_server;
struct auth;
struct ha;
struct vpxd_stats;

struct vpxd_options {
    char *dir;                  /* state directory */
    char *listen_addr;          /* "127.0.0.1" */
    int port;                   /* HTTPS port */
    char *admin_user;           /* "administrator@vsphere.local" */
    char *admin_password;       /* first start only; NULL: generate one */
    int64_t session_idle_s;     /* session idle timeout */
    int64_t max_body;           /* request body limit, bytes */
    int64_t conn_timeout_s;     /* idle connection timeout (slow clients) */
    int64_t max_connections;
    int64_t login_fail_limit;   /* failures before throttling */
    int64_t heartbeat_ms;       /* asked of hosts */
    int64_t stats_interval_ms;
    bool metrics_anonymous;     /* /metrics without a session */
};

struct vpxd {
    struct event_base *base;
    struct vpxd_options opt;
    struct vdb *db;
    struct hostmgr *hm;         /* NULL if host connections are unavailable */
    char *hm_error;             /* why hm is NULL */
    struct api_server *api;
    struct auth *auth;
    struct ha *ha;              /* vSphere-style HA (ha.h); NULL: not started */
    struct vpxd_stats *stats;   /* NULL: statistics are not stored */
    char thumbprint[96];        /* SHA-256 of vpxd's certificate */
    char *cert_pem, *key_pem;
    char *cert_file, *key_file;
    time_t started;
};

#endif
