/* /api/appliance/system/version: what vCenter's appliance API answers
 * (kvcli `system version get` reads it, from vpxd or a host). */
#include "config.h"

#include "vpxd/api/api.h"
#include "vpxd/vpxd.h"

void api_appliance_version(struct api_req *r)
{
    char when[32];
    struct tm tm;
    time_t t = api_vpxd(r)->started;

    gmtime_r(&t, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    api_reply(r, 200, json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:s}",
                                "product", "kvcenter", "version", PACKAGE_VERSION,
                                "build", PACKAGE_VERSION, "type", "vCenter Server",
                                "summary", "kvcenter vpxd " PACKAGE_VERSION,
                                "update", 0, "patch", 0, "install_time", when));
}
