/* vSphere-style HA in vpxd (docs/ha.md).
 *
 * A timer on vpxd's loop judges every host of an HA cluster: a host whose
 * network heartbeats stop for the cluster's detection time is checked
 * against its datastore heartbeat files (<datastore>/.kvc-hb/<uuid>, which
 * hostd writes and vpxd only reads):
 *   - no network and no datastore heartbeat: FAILED, its protected VMs are
 *     queued for restart on the surviving hosts;
 *   - datastore heartbeat still beating: ISOLATED (the host says so in its
 *     power-on file) or PARTITIONED.  Nothing is restarted blindly: only
 *     the VMs the host itself has stopped (isolation response) and dropped
 *     from its power-on file are.
 * The failover queue lives in SQLite (ha_restart), so a vpxd restarted in
 * the middle of a failover finishes it.  Restarts go by priority; each VM
 * is registered on a survivor from its config on the shared datastore and
 * powered on there; the survivor refuses a VM that a live host still runs.
 * VM monitoring resets guests whose tools heartbeat stops (at most M resets
 * in a window) and powers crashed guests on again.
 *
 * Single-threaded: vpxd's loop.  Functions accept a vpxd without HA
 * started (they do nothing).  Errors: 0 or -errno. */
#ifndef VPXD_HA_H
#define VPXD_HA_H

#include <stdbool.h>
#include <stddef.h>

#include "vpxd/db.h"

struct vpxd;
struct hostmgr_host_info;
struct hostmgr_vm_info;

int ha_start(struct vpxd *);
void ha_stop(struct vpxd *);

/* From vpxd's host listener (hosts.c). */
void ha_host_info(struct vpxd *, const char *host_id, const struct hostmgr_host_info *);
void ha_inventory(struct vpxd *, const char *host_id, const struct hostmgr_vm_info *vms,
                  size_t n);

/* The cluster's settings changed: push them to its hosts now. */
void ha_settings_changed(struct vpxd *, const char *cluster);

/* Admission control for powering VM on: 0, or -ENOSPC with WHY when the
 * cluster could no longer restart its VMs after the failures its policy
 * tolerates (also records InsufficientFailoverResourcesEvent). */
int ha_admission_check(struct vpxd *, const char *vm, char *why, size_t whylen);

/* Placement for a restart: the host of CLUSTER that fits VM best, not in
 * EXCLUDE (NULL-terminated, may be NULL).  One function, so DRS's
 * drs_place_vm() can take its place.  -ENOSPC: none fits. */
int ha_place(struct vpxd *, const char *cluster, const char *vm,
             const char *const *exclude, char out_host[VDB_ID_MAX]);

/* A user powers VM on (ON) or off/suspends/shuts it down: HA protects it,
 * or leaves it alone until the next power-on. */
void ha_vm_user_power(struct vpxd *, const char *vm, bool on);

/* Restart priority rank: highest 5 .. lowest 1, disabled 0, unknown -1. */
int ha_priority_rank(const char *priority);

#endif
