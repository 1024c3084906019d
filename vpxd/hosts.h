/* vpxd's side of the host connections: starts the host manager (hostmgr.h)
 * and records what hosts report in the database; re-attaches the hosts of
 * the database at start-up. */
#ifndef VPXD_HOSTS_H
#define VPXD_HOSTS_H

#include <stdbool.h>

struct vpxd;

/* Never fails: without a host manager, vx->hm stays NULL and vx->hm_error
 * says why; REST calls that need a host then answer 503. */
void vpxd_hosts_start(struct vpxd *);
void vpxd_hosts_stop(struct vpxd *);

/* Whether a VM create for UUID is in flight (its report is then left to
 * the create's completion). */
void vpxd_hosts_pending_add(const char *uuid);
void vpxd_hosts_pending_del(const char *uuid);

#endif
