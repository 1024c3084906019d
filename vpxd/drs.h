/* DRS: placement and load balancing of a cluster's VMs (docs/drs.md).
 *
 * Two layers:
 *   - the algorithm (drs_model_*, drs_recommend, drs_place): pure functions
 *     over a snapshot of one cluster (hosts, VMs, rules), no database, no
 *     clock, no randomness, so unit tests and benchmarks drive it directly
 *     and the same input always gives the same answer;
 *   - vpxd's glue (drs_start, drs_place_vm, ...): builds the snapshot from
 *     the database and the latest host stats, runs a pass per cluster on a
 *     timer and on events, records recommendations and applies them
 *     through vpxd_migrate_vm() in fully automated mode.
 *
 * Errors: functions return 0 or -errno.  Single-threaded: vpxd's loop.
 */
#ifndef VPXD_DRS_H
#define VPXD_DRS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "vpxd/db.h"

struct vpxd;

/* ---- the algorithm ------------------------------------------------------ */

struct drs_host {
    const char *id;
    double cpu_mhz;             /* capacity: cores x MHz */
    double mem_mb;              /* capacity: memory in MiB */
    int cpu_threads;            /* a VM needs cpu_count <= this */
    bool usable;                /* connected, not in (or entering) maintenance */
};

struct drs_vm {
    const char *id;
    int host;                   /* index into hosts[] */
    double cpu_mhz;             /* CPU demand */
    double mem_mb;              /* configured memory (admission: no overcommit) */
    double mem_demand_mb;       /* active + 25% of idle consumed */
    double dirty_mbps;          /* memory dirty rate, MiB/s (migration cost) */
    int cpu_count;
    bool movable;               /* false: pinned (migrating, not powered on, ...) */
};

enum drs_rule_kind {
    DRS_VM_AFFINITY = 0,        /* keep together (must) */
    DRS_VM_ANTI_AFFINITY,       /* keep apart (must) */
    DRS_VM_HOST_MUST,           /* VMs must run on one of hosts */
    DRS_VM_HOST_SHOULD,         /* VMs should run on one of hosts */
    DRS_VM_HOST_MUST_NOT,       /* VMs must not run on any of hosts */
    DRS_VM_HOST_SHOULD_NOT,
};

struct drs_rule {
    const char *id;
    enum drs_rule_kind kind;
    const int *vms;             /* indexes into vms[] */
    size_t n_vms;
    const int *hosts;           /* indexes into hosts[] (VM-host rules) */
    size_t n_hosts;
};

struct drs_cluster {
    struct drs_host *hosts;
    size_t n_hosts;
    struct drs_vm *vms;
    size_t n_vms;
    const struct drs_rule *rules;
    size_t n_rules;
};

struct drs_params {
    int threshold;              /* 1 (conservative) .. 5 (aggressive); 0: 3 */
    double cpu_weight;          /* weights of the two load terms; 0,0: 0.5,0.5 */
    double mem_weight;
    double bandwidth_mbps;      /* vMotion bandwidth, MiB/s; 0: 119 (1 GbE) */
    int64_t downtime_ms;        /* stop-and-copy target; 0: 500 */
    double horizon_s;           /* how long a gain is expected to last; 0: 300 */
    size_t max_moves;           /* per pass; 0: 64 */
    bool no_cost;               /* ignore the migration cost (benchmarks only) */
    double target_override;     /* > 0: aim under this instead of the threshold's
                                 * target; < 0: as low as moves can get it */
};

/* Why a move is recommended. */
enum drs_reason {
    DRS_REASON_BALANCE = 0,     /* lowers the load imbalance */
    DRS_REASON_RULE,            /* fixes a rule violation (must or should) */
    DRS_REASON_EVACUATE,        /* its host is not usable (maintenance) */
};
const char *drs_reason_name(enum drs_reason);   /* "balance", "rule", "evacuate" */

struct drs_move {
    int vm, from, to;           /* indexes */
    enum drs_reason reason;
    double gain;                /* imbalance (std dev of host load) removed */
    double cost;                /* the migration's cost in the same unit */
    int64_t migration_ms;       /* estimated migration time */
};

/* Load of host I: w_cpu * cpu demand / capacity + w_mem * memory demand /
 * capacity, over the VMs the cluster places there. */
double drs_host_load(const struct drs_cluster *, const struct drs_params *, size_t host);
/* The imbalance: population standard deviation of the usable hosts' loads. */
double drs_imbalance(const struct drs_cluster *, const struct drs_params *);
/* The imbalance a pass aims under, from the threshold (docs/drs.md). */
double drs_target_imbalance(int threshold);
/* Whether VM may run on HOST given the hard rules and capacity, with the
 * cluster as it is (the VM itself not counted on HOST). */
bool drs_vm_fits(const struct drs_cluster *, size_t vm, size_t host);
/* Number of violated hard rules (must, affinity, anti-affinity). */
size_t drs_hard_violations(const struct drs_cluster *);

/* One pass: greedy best moves (then VM swaps when no single move helps),
 * applied one after another to the cluster snapshot (the caller's VMs'
 * `host` fields change), at most MAX moves written to OUT (two per swap).
 * Rule fixes and evacuations come first and skip the cost-benefit check;
 * balance moves need gain * horizon > cost.  Never creates a hard-rule
 * violation or exceeds a host's memory.  Deterministic.  Returns the
 * number of moves (>= 0) or -errno. */
int drs_recommend(struct drs_cluster *, const struct drs_params *,
                  struct drs_move *out, size_t max);

/* Initial placement: the usable host for VM (its `host` is ignored) that
 * satisfies the rules and capacity and leaves the lowest imbalance.
 * Returns the host index, or -ENOSPC if none fits. */
int drs_place(const struct drs_cluster *, const struct drs_params *, size_t vm);

/* The sim backend's live-migration time model (hostd/backends/sim.h) for
 * a VM of MEM_MB with DIRTY_MBPS; -1 if it cannot converge. */
int64_t drs_migration_ms(double mem_mb, double dirty_mbps, double bandwidth_mbps,
                         int64_t downtime_ms);

/* ---- vpxd glue ---------------------------------------------------------- */

/* Starts the DRS timer (per-cluster pass interval) and loads the settings.
 * Call after the database and the host manager are up. */
int drs_start(struct vpxd *);
void drs_stop(struct vpxd *);

/* Something changed in CLUSTER (VM power-on, host added, host leaving):
 * run a pass soon (coalesced).  CLUSTER NULL: every cluster.  Accepts a
 * vpxd without DRS started (does nothing). */
void drs_kick(struct vpxd *, const char *cluster);

/* Host stats (from hostmgr's stats listener): the demand DRS balances. */
struct hostmgr_stats_sample;
void drs_stats(struct vpxd *, const char *host_id,
               const struct hostmgr_stats_sample *, size_t n);

/* Placement for power-on, VM create, HA restart and maintenance
 * evacuation.  Picks a host of REQ->cluster. */
struct drs_place_req {
    const char *cluster;        /* required */
    const char *vm;             /* existing VM id (its rules, datastore and
                                 * networks apply), or NULL for a new VM */
    int64_t memory_mib;         /* new VM (or 0: the VM's) */
    int cpu_count;              /* new VM (or 0: the VM's) */
    const char *datastore;      /* must be mounted on the host; NULL: the VM's, or any */
    const char *const *exclude; /* hosts not to use (NULL-terminated), or NULL */
};
/* Returns 0 and the host id, or -ENOENT (no such cluster or VM) or -ENOSPC
 * (no connected host outside maintenance fits; WHY says what was missing). */
int drs_place_vm(struct vpxd *, const struct drs_place_req *,
                 char out_host[VDB_ID_MAX], char *why, size_t whylen);

/* Maintenance: hosts being evacuated count as unusable for placement. */
void drs_host_leaving(struct vpxd *, const char *host_id, bool leaving);
bool drs_host_is_leaving(const struct vpxd *, const char *host_id);

/* For the REST resource: settings, imbalance and host loads now. */
int drs_cluster_status(struct vpxd *, const char *cluster, json_t **out);
/* A pass now (recorded, applied when fully automated); *IDS: the new
 * recommendations. */
int drs_run_pass(struct vpxd *, const char *cluster, json_t **ids);
/* Applies pending recommendations IDS (NULL: all of the cluster's); *OUT:
 * {rec: {task} | {error}}.  -EINVAL (WHY) if an id is not pending there. */
int drs_apply(struct vpxd *, const char *cluster, const json_t *ids, const char *user,
              json_t **out, char *why, size_t whylen);

#endif
