/* Resource pools: the allocation model and admission control
 * (docs/resource-pools.md).
 *
 * A pool tree is loaded per owner (a cluster or a standalone host).  Its
 * root's reservation is the owner's capacity (the sum of its connected hosts'
 * CPU MHz and memory MiB) and is fixed.  A pool's "used" reservation is the
 * sum of what its children take: a powered-on VM its own reservation, a
 * child pool its reservation, or, for an expandable child that reserved more
 * than that, all it reserved (it borrowed the difference from this pool).
 * A new demand fits where used + demand <= reservation; else an expandable
 * pool asks its parent for the excess, and so on up to the first fixed pool
 * or the root.  A pool's limit (when not -1) caps what it may reserve.
 *
 * Functions return 0, -ENOSPC (with a reason in WHY) when the demand does
 * not fit, or another -errno.  Units: CPU in MHz, memory in MiB. */
#ifndef VPXD_RP_H
#define VPXD_RP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vpxd/db.h"

enum rp_kind { RP_CPU = 0, RP_MEM = 1 };

struct rp_node {
    char id[VDB_ID_MAX];
    int parent;                 /* index in the tree, -1 for the root */
    int64_t reservation[2];
    int64_t limit[2];           /* -1: none */
    bool expandable[2];
    int64_t vms[2];             /* reservations of the powered-on VMs in it */
};

struct rp_tree {
    struct rp_node *n;
    size_t count;
};

/* vSphere's share values for a level (LOW NORMAL HIGH; CUSTOM returns
 * CUSTOM_SHARES).  A pool: CPU 2000/4000/8000, memory 81920/163840/327680.
 * A VM: CPU 500/1000/2000 per vCPU (UNITS), memory 5/10/20 per MiB. */
int64_t rp_pool_shares(const char *level, enum rp_kind, int64_t custom_shares);
int64_t rp_vm_shares(const char *level, enum rp_kind, int64_t units, int64_t custom_shares);

/* What node I's children reserve, and what I takes from its parent. */
int64_t rp_used(const struct rp_tree *, int i, enum rp_kind);
int64_t rp_demand(const struct rp_tree *, int i, enum rp_kind);
/* Whether AMOUNT more can be reserved in pool I (walking up expandable
 * pools).  Changes nothing. */
int rp_admit(const struct rp_tree *, int i, enum rp_kind, int64_t amount,
             char *why, size_t len);
/* Whether pool I may take the reservation, expandability and limit given
 * (its children must still fit; its parent must cover any growth). */
int rp_check_change(const struct rp_tree *, int i, enum rp_kind, int64_t reservation,
                    bool expandable, int64_t limit, char *why, size_t len);
/* Index of pool ID, or -1. */
int rp_find(const struct rp_tree *, const char *id);
/* A node appended under PARENT (reservations 0, fixed): the index, -1 on
 * no memory. */
int rp_add(struct rp_tree *, const char *id, int parent);
void rp_tree_free(struct rp_tree *);

/* ---- from the database ---- */
/* The tree POOL belongs to (every pool of its owner, VM reservations and
 * the root's capacity). */
int rp_tree_load(struct vdb *, const char *pool, struct rp_tree *);
/* Whether VM, if powered on in POOL (NULL: its own pool), fits. */
int rp_admit_vm(struct vdb *, const char *vm, const char *pool, char *why, size_t len);
/* The same with the VM's reservations CPU_RES and MEM_RES (-1: its own). */
int rp_admit_vm_with(struct vdb *, const char *vm, const char *pool, int64_t cpu_res,
                     int64_t mem_res, char *why, size_t len);
/* Whether pool POOL may take CPU and MEM (NULL: unchanged). */
int rp_admit_pool_update(struct vdb *, const char *pool, const struct vdb_alloc *cpu,
                         const struct vdb_alloc *mem, char *why, size_t len);
/* Whether a new pool with CPU and MEM fits under PARENT. */
int rp_admit_pool_create(struct vdb *, const char *parent, const struct vdb_alloc *cpu,
                         const struct vdb_alloc *mem, char *why, size_t len);

/* Power-ons admitted but not confirmed by the host yet: they count as on
 * in every tree loaded until dropped (the host answered, either way) or for
 * at most two minutes. */
int rp_pending_add(const char *vm);
void rp_pending_drop(const char *vm);

/* A VM's own allocation (sql/0007-resource-pools.sql). */
struct rp_vm_alloc {
    int64_t reservation, limit;
    const char *shares_level;
    int64_t shares;             /* CUSTOM only */
};
int rp_vm_alloc_get(struct vdb *, const char *vm, struct rp_vm_alloc *cpu,
                    struct rp_vm_alloc *mem, char levels[2][16]);
/* NULL leaves that part unchanged. */
int rp_vm_alloc_set(struct vdb *, const char *vm, const struct rp_vm_alloc *cpu,
                    const struct rp_vm_alloc *mem);
/* Moves VM into POOL (of the VM's own cluster or host, else -EXDEV). */
int rp_vm_move(struct vdb *, const char *vm, const char *pool);

/* ---- in the daemon (vpxd/api/resource_pool.c) ---- */
struct hostmgr;
struct api_req;
/* Sends the pool tree of OWNER (a cluster or standalone host; any pool of
 * it; or a host, meaning its cluster) to the owner's connected hosts
 * (POOLS_SET); errors are logged. */
void rp_push(struct hostmgr *, struct vdb *, const char *owner_or_pool);
/* Power-on admission: true if the request was answered (refused). */
bool api_rp_power_on_refused(struct api_req *);

#endif
