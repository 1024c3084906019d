/* GET /api/kvc/host/{host}: one host's details as vpxd records them (the
 * Automation API has no single-host GET): connection, power, maintenance
 * mode, hardware and version from the host's last Hello. */
#include "config.h"

#include <errno.h>

#include "vpxd/api/api.h"

void api_kvc_host_get(struct api_req *r)
{
    const char *id = api_param(r, "host");
    json_t *row = NULL;
    int rc = vdb_query_row(api_db(r), &row,
        "SELECT h.id AS host, e.name, h.hostname, h.port, h.connection_state, h.power_state,"
        " json(CASE h.maintenance WHEN 0 THEN 'false' ELSE 'true' END) AS in_maintenance_json,"
        " h.cpu_count AS cpu_cores, h.cpu_mhz, h.memory_bytes, h.product_version,"
        " h.thumbprint, h.datacenter, h.cluster, h.last_seen"
        " FROM host h JOIN entity e ON e.id = h.id WHERE h.id = ?", "s", id);

    if (rc == -ENOENT)
        return api_error(r, 404, "NOT_FOUND", "host %s not found", id);
    if (rc < 0)
        return api_error_errno(r, rc, "host");
    api_reply(r, 200, row);
}
