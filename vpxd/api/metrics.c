/* /metrics: Prometheus text format. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vpxd/api/api.h"
#include "vpxd/api/internal.h"
#include "vpxd/auth.h"

static void counts(struct api_req *r, FILE *f, const char *name, const char *help,
                   const char *label, const char *sql)
{
    json_t *rows = NULL;
    size_t i;
    json_t *row;

    fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
    if (vdb_query_json(api_db(r), &rows, sql, NULL) < 0)
        return;
    json_array_foreach(rows, i, row)
        fprintf(f, "%s{%s=\"%s\"} %lld\n", name, label,
                json_string_value(json_object_get(row, "k")),
                (long long)json_integer_value(json_object_get(row, "n")));
    json_decref(rows);
}

void api_metrics(struct api_req *r)
{
    struct vpxd *vx = api_vpxd(r);
    struct api_metrics m;
    struct vdb_stats ds;
    char *buf = NULL;
    size_t len = 0;
    FILE *f;

    if (!vx->opt.metrics_anonymous) {
        const char *tok = api_header_in(r, "vmware-api-session-id");
        char user[128], hash[AUTH_HASH_HEX];
        if (!tok || auth_session(vx->auth, tok, user, sizeof(user), hash) < 0)
            return api_error(r, 401, "UNAUTHENTICATED", "/metrics needs a session here");
    }
    api_get_metrics(vx->api, &m);
    vdb_get_stats(vx->db, &ds);
    f = open_memstream(&buf, &len);
    if (!f)
        return api_error(r, 500, "ERROR", "out of memory");
    fprintf(f, "# HELP kvc_vpxd_up vpxd is serving\n# TYPE kvc_vpxd_up gauge\nkvc_vpxd_up 1\n");
    fprintf(f, "# HELP kvc_vpxd_uptime_seconds Seconds since vpxd started\n"
               "# TYPE kvc_vpxd_uptime_seconds gauge\nkvc_vpxd_uptime_seconds %lld\n",
            (long long)(time(NULL) - vx->started));
    fprintf(f, "# HELP kvc_vpxd_http_requests_total HTTP requests answered, by status class\n"
               "# TYPE kvc_vpxd_http_requests_total counter\n");
    for (int c = 1; c <= 5; c++)
        fprintf(f, "kvc_vpxd_http_requests_total{code=\"%dxx\"} %llu\n", c,
                (unsigned long long)m.by_class[c]);
#define COUNTER(N, H, V) fprintf(f, "# HELP " N " " H "\n# TYPE " N " counter\n" N " %llu\n", \
                                 (unsigned long long)(V))
    COUNTER("kvc_vpxd_login_failures_total", "Failed logins", m.login_failures);
    COUNTER("kvc_vpxd_login_throttled_total", "Logins refused by the throttle", m.throttled);
    COUNTER("kvc_vpxd_http_body_too_large_total", "Requests refused for their body size",
            m.too_large);
    COUNTER("kvc_vpxd_http_bad_json_total", "Requests with malformed JSON", m.bad_json);
    COUNTER("kvc_vpxd_http_timeouts_total", "Client connections closed for idling", m.timeouts);
    COUNTER("kvc_vpxd_db_commits_total", "Database transactions committed", ds.commits);
    COUNTER("kvc_vpxd_db_rollbacks_total", "Database transactions rolled back", ds.rollbacks);
    COUNTER("kvc_vpxd_db_busy_total", "Database busy errors", ds.busy);
#undef COUNTER
    fprintf(f, "# HELP kvc_vpxd_http_requests_waiting Requests waiting for a host or a task\n"
               "# TYPE kvc_vpxd_http_requests_waiting gauge\nkvc_vpxd_http_requests_waiting %llu\n",
            (unsigned long long)m.waiting);
    fprintf(f, "# HELP kvc_vpxd_event_streams Open event streams\n"
               "# TYPE kvc_vpxd_event_streams gauge\nkvc_vpxd_event_streams %llu\n",
            (unsigned long long)m.sse_clients);
    counts(r, f, "kvc_vpxd_inventory_objects", "Inventory objects by type", "type",
           "SELECT type AS k, count(*) AS n FROM entity GROUP BY type ORDER BY type");
    counts(r, f, "kvc_vpxd_hosts", "Hosts by connection state", "state",
           "SELECT connection_state AS k, count(*) AS n FROM host GROUP BY 1 ORDER BY 1");
    counts(r, f, "kvc_vpxd_vms", "VMs by power state", "state",
           "SELECT power_state AS k, count(*) AS n FROM vm GROUP BY 1 ORDER BY 1");
    counts(r, f, "kvc_vpxd_tasks", "Tasks by status", "status",
           "SELECT status AS k, count(*) AS n FROM task GROUP BY 1 ORDER BY 1");
    counts(r, f, "kvc_vpxd_alarms_triggered", "Triggered alarms by status", "status",
           "SELECT status AS k, count(*) AS n FROM alarm_state GROUP BY 1 ORDER BY 1");
    counts(r, f, "kvc_vpxd_sessions", "Open sessions", "kind",
           "SELECT 'all' AS k, count(*) AS n FROM session");
    fclose(f);
    api_reply_raw(r, 200, "text/plain; version=0.0.4", buf, len);
}
