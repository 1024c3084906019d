/* vmkd: resource pools as nested cgroups (docs/resource-pools.md).
 *
 * hostd sends the whole pool tree of its cluster (VMKD_POOLS_SET); each
 * pool but the root becomes a cgroup below vmkd's parent, nested as the
 * pools are ("kvcenter/resgroup-5/resgroup-7"), the root pool being the
 * parent itself.  A pool's shares become the cgroup's CPU weight (on the
 * same scale as VMs': 1000 shares = v1 cpu.shares 1024 = v2 cpu.weight 100,
 * so a NORMAL pool of 4000 weighs as four normal vCPUs, as in vSphere), its
 * CPU limit a CFS quota, its memory limit and reservation the memory
 * controller's limit and protection.  A VM's cgroup sits inside its pool's:
 * vmkd_vm_place() records where, moving a running VM at once.
 *
 * One vmkd per process, so the applied tree is kept here (a static): the
 * next tree replaces it, and pools no longer listed are removed once empty.
 * The tree is not persisted: hostd sends it again after reconnecting. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup.h"
#include "log.h"
#include "rpc.h"
#include "sched.h"
#include "vmkd.h"
#include "vmkd.pb-c.h"
#include "vmkd_ctl.h"

KVC_LOG_MODULE(vmkdpool);

#define POOL_MAX 256
#define POOL_VM_MAX 16384          /* vSphere 7: 10,000 VMs a cluster */
#define POOL_DEPTH_MAX 16
#define POOL_NORMAL_CPU_SHARES 4000

struct pool {
    char id[VMKD_ID_MAX + 1], parent[VMKD_ID_MAX + 1];
    char path[512];             /* below the parent; "" for a root */
    int depth;
    int64_t cpu_shares, cpu_res, cpu_limit, mem_shares, mem_res, mem_limit;
    uint64_t weight;
    int64_t quota_us;
    struct kvc_cg_vm *cg;       /* NULL for a root */
};

struct pool_vm {
    char id[VMKD_ID_MAX + 1];
    int pool;
};

static struct {
    struct pool *p;
    size_t n;
    struct pool_vm *v;
    size_t nv;
} cur;

static int find(const struct pool *p, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(p[i].id, id))
            return (int)i;
    return -1;
}

/* Checks the tree and fills ids, parents and paths; nothing is applied. */
static int parse(const Kvc__Vmkd__PoolTree *t, struct pool *p, struct pool_vm *v, char *why,
                 size_t len)
{
    if (t->n_pools > POOL_MAX || t->n_vms > POOL_VM_MAX) {
        snprintf(why, len, "at most %d pools and %d VMs", POOL_MAX, POOL_VM_MAX);
        return -EINVAL;
    }
    for (size_t i = 0; i < t->n_pools; i++) {
        const Kvc__Vmkd__Pool *q = t->pools[i];
        if (!vmkd_valid_id(q->id) || (*q->parent && !vmkd_valid_id(q->parent))) {
            snprintf(why, len, "pool %zu: bad id or parent", i);
            return -EINVAL;
        }
        if (find(p, i, q->id) >= 0) {
            snprintf(why, len, "pool %s listed twice", q->id);
            return -EINVAL;
        }
        if (q->cpu_shares < 0 || q->mem_shares < 0 || q->cpu_shares > 1000000
            || q->cpu_limit_mhz < -1 || q->mem_limit_mb < -1 || q->cpu_reservation_mhz < 0
            || q->mem_reservation_mb < 0 || q->mem_limit_mb > (INT64_C(1) << 40)
            || q->cpu_limit_mhz > (INT64_C(1) << 40) || q->mem_reservation_mb > (INT64_C(1) << 40)) {
            snprintf(why, len, "pool %s: shares, limits or reservations out of range", q->id);
            return -EINVAL;
        }
        memset(&p[i], 0, sizeof(p[i]));
        snprintf(p[i].id, sizeof(p[i].id), "%s", q->id);
        snprintf(p[i].parent, sizeof(p[i].parent), "%s", q->parent);
        p[i].cpu_shares = q->cpu_shares ? q->cpu_shares : POOL_NORMAL_CPU_SHARES;
        p[i].mem_shares = q->mem_shares;
        p[i].cpu_res = q->cpu_reservation_mhz;
        p[i].cpu_limit = q->cpu_limit_mhz > 0 ? q->cpu_limit_mhz : -1;
        p[i].mem_res = q->mem_reservation_mb;
        p[i].mem_limit = q->mem_limit_mb > 0 ? q->mem_limit_mb : -1;
    }
    for (size_t i = 0; i < t->n_pools; i++) {
        /* Walk up to a root: every parent listed, no cycle. */
        char path[512] = "";
        int j = (int)i, depth = 0;
        while (*p[j].parent) {
            char tmp[512];
            int up = find(p, t->n_pools, p[j].parent);
            if (up < 0 || ++depth > POOL_DEPTH_MAX) {
                snprintf(why, len, up < 0 ? "pool %s: parent %s is not in the tree"
                                          : "pool %s: nested too deep or in a cycle",
                         p[i].id, p[j].parent);
                return -EINVAL;
            }
            if (snprintf(tmp, sizeof(tmp), "%s%s%s", p[j].id, *path ? "/" : "", path)
                >= (int)sizeof(tmp)) {
                snprintf(why, len, "pool %s: nested too deep", p[i].id);
                return -EINVAL;
            }
            memcpy(path, tmp, sizeof(path));
            j = up;
        }
        memcpy(p[i].path, path, sizeof(path));
        p[i].depth = depth;
    }
    for (size_t i = 0; i < t->n_vms; i++) {
        const Kvc__Vmkd__PoolVm *q = t->vms[i];
        if (!vmkd_valid_id(q->vm_id) || (v[i].pool = find(p, t->n_pools, q->pool)) < 0) {
            snprintf(why, len, "VM %zu: bad id or unknown pool", i);
            return -EINVAL;
        }
        snprintf(v[i].id, sizeof(v[i].id), "%s", q->vm_id);
    }
    return 0;
}

static void apply_pool(struct vmkd *d, struct pool *p)
{
    struct kvc_cg_root *r = vmkd_cgroot(d);
    struct kvc_res_alloc a;
    int rc;

    kvc_res_alloc_default(&a);
    a.cpu_limit_mhz = p->cpu_limit > 0 ? p->cpu_limit : KVC_UNLIMITED;
    p->weight = kvc_cg_root_version(r) == KVC_CG_V2
        ? kvc_sched_shares_to_v2((uint32_t)p->cpu_shares, 1)
        : kvc_sched_shares_to_v1((uint32_t)p->cpu_shares, 1);
    p->quota_us = kvc_sched_quota_us(&a, vmkd_capacity(d), vmkd_cfs_period_us(d));
    if (!p->cg)
        return;
    rc = kvc_cg_vm_set_weight(p->cg, p->weight);
    if (rc == 0)
        rc = kvc_cg_vm_set_quota(p->cg, p->quota_us, vmkd_cfs_period_us(d));
    if (rc < 0)
        kvc_warn("pool %s: CPU settings: %s", p->id, strerror(-rc));
    if (kvc_cg_root_has_memory(r)) {
        kvc_cg_vm_set_mem_limit(p->cg, p->mem_limit > 0 ? p->mem_limit << 20 : -1);
        kvc_cg_vm_set_mem_reservation(p->cg, (uint64_t)p->mem_res << 20);
    }
}

static void free_tree(struct pool *p, size_t n, bool rmdir_them)
{
    /* Deepest first, so a parent is empty when its turn comes. */
    for (int depth = POOL_DEPTH_MAX; depth >= 0; depth--)
        for (size_t i = 0; i < n; i++) {
            if (p[i].depth != depth || !p[i].cg)
                continue;
            if (rmdir_them) {
                int rc = kvc_cg_vm_destroy(p[i].cg);
                if (rc < 0)
                    kvc_warn("pool %s: cgroup not removed: %s", p[i].id, strerror(-rc));
            } else {
                kvc_cg_vm_free(p[i].cg);
            }
            p[i].cg = NULL;
        }
    free(p);
}

static void fill_reply(const struct pool *p, size_t n, Kvc__Vmkd__PoolTree *out,
                       Kvc__Vmkd__Pool *pb, Kvc__Vmkd__Pool **pp, const char *root_path)
{
    for (size_t i = 0; i < n; i++) {
        struct kvc_cg_usage u = { 0 };
        kvc__vmkd__pool__init(&pb[i]);
        pb[i].id = (char *)p[i].id;
        pb[i].parent = (char *)p[i].parent;
        pb[i].cpu_shares = p[i].cpu_shares;
        pb[i].cpu_reservation_mhz = p[i].cpu_res;
        pb[i].cpu_limit_mhz = p[i].cpu_limit;
        pb[i].mem_shares = p[i].mem_shares;
        pb[i].mem_reservation_mb = p[i].mem_res;
        pb[i].mem_limit_mb = p[i].mem_limit;
        pb[i].cgroup = (char *)(p[i].cg ? kvc_cg_vm_path(p[i].cg) : root_path);
        pb[i].weight = p[i].weight;
        pb[i].quota_us = p[i].quota_us;
        if (p[i].cg && kvc_cg_vm_usage(p[i].cg, &u) == 0) {
            pb[i].cpu_ns = u.cpu_ns;
            pb[i].mem_bytes = u.mem_bytes;
        }
        pp[i] = &pb[i];
    }
    out->pools = pp;
    out->n_pools = n;
}

static void reply_tree(struct kvc_rpc_call *call, struct vmkd *d)
{
    Kvc__Vmkd__PoolTree r = KVC__VMKD__POOL_TREE__INIT;
    Kvc__Vmkd__Pool *pb = calloc(cur.n + 1, sizeof(*pb));
    Kvc__Vmkd__Pool **pp = calloc(cur.n + 1, sizeof(*pp));
    Kvc__Vmkd__PoolVm *vb = calloc(cur.nv + 1, sizeof(*vb));
    Kvc__Vmkd__PoolVm **vp = calloc(cur.nv + 1, sizeof(*vp));
    const char *desc = vmkd_cgroup_describe(d);

    if (!pb || !pp || !vb || !vp) {
        kvc_rpc_reply_error(call, KVC_RPC_E_INTERNAL, "out of memory");
        goto out;
    }
    fill_reply(cur.p, cur.n, &r, pb, pp, desc);
    for (size_t i = 0; i < cur.nv; i++) {
        kvc__vmkd__pool_vm__init(&vb[i]);
        vb[i].vm_id = cur.v[i].id;
        vb[i].pool = cur.p[cur.v[i].pool].id;
        vp[i] = &vb[i];
    }
    r.vms = vp;
    r.n_vms = cur.nv;
    kvc_rpc_reply(call, &r.base);
out:
    free(pb);
    free(pp);
    free(vb);
    free(vp);
}

void vmkd_pools_on_set(struct kvc_rpc_call *call, const ProtobufCMessage *m, void *arg)
{
    const Kvc__Vmkd__PoolTree *t = (const void *)m;
    struct vmkd *d;
    struct pool *p = NULL;
    struct pool_vm *v = NULL;
    char why[256] = "";
    int rc;

    if (!vmkd_ctl_allowed(arg, call))
        return;
    d = vmkd_ctl_vmkd(arg);
    p = calloc(t->n_pools + 1, sizeof(*p));
    v = calloc(t->n_vms + 1, sizeof(*v));
    if (!p || !v) {
        kvc_rpc_reply_error(call, KVC_RPC_E_INTERNAL, "out of memory");
        goto err;
    }
    rc = parse(t, p, v, why, sizeof(why));
    if (rc < 0) {
        kvc_rpc_reply_error(call, KVC_RPC_E_INVALID_ARGUMENT, "%s", why);
        goto err;
    }
    /* Pools first, parents before children; a pool that exists already
     * keeps its cgroup (its VMs stay in it). */
    for (int depth = 1; depth <= POOL_DEPTH_MAX; depth++)
        for (size_t i = 0; i < t->n_pools; i++) {
            if (p[i].depth != depth)
                continue;
            int old = find(cur.p, cur.n, p[i].id);
            if (old >= 0 && cur.p[old].cg && !strcmp(cur.p[old].path, p[i].path)) {
                p[i].cg = cur.p[old].cg;
                cur.p[old].cg = NULL;
            } else if ((rc = kvc_cg_group_create(vmkd_cgroot(d), p[i].path, true,
                                                 &p[i].cg)) < 0) {
                kvc_err("pool %s: cannot create cgroup %s: %s", p[i].id, p[i].path,
                        strerror(-rc));
                kvc_rpc_reply_error(call, KVC_RPC_E_INTERNAL, "pool %s: cgroup: %s",
                                    p[i].id, strerror(-rc));
                /* The new cgroups go; the old tree stays applied. */
                for (size_t k = 0; k < t->n_pools; k++)
                    if (p[k].cg && (old = find(cur.p, cur.n, p[k].id)) >= 0
                        && !cur.p[old].cg && !strcmp(cur.p[old].path, p[k].path)) {
                        cur.p[old].cg = p[k].cg;
                        p[k].cg = NULL;
                    }
                free_tree(p, t->n_pools, true);
                p = NULL;
                goto err;
            }
            apply_pool(d, &p[i]);
        }
    for (size_t i = 0; i < t->n_pools; i++)
        if (p[i].depth == 0)
            apply_pool(d, &p[i]);
    /* VMs: into their pools; those in the root or no longer listed back to
     * the top (before the old pools' cgroups go). */
    {
        char **ids = calloc(t->n_vms + 1, sizeof(*ids)), **dirs = calloc(t->n_vms + 1,
                                                                          sizeof(*dirs));
        size_t n = 0;
        for (size_t i = 0; ids && dirs && i < t->n_vms; i++)
            if (*p[v[i].pool].path) {
                ids[n] = v[i].id;
                dirs[n++] = p[v[i].pool].path;
            }
        rc = ids && dirs ? vmkd_vm_place_all(d, ids, dirs, n) : -ENOMEM;
        if (rc < 0)
            kvc_warn("resource pools: not every VM moved to its pool: %s", strerror(-rc));
        free(ids);
        free(dirs);
    }
    free_tree(cur.p, cur.n, true);
    free(cur.v);
    cur.p = p;
    cur.n = t->n_pools;
    cur.v = v;
    cur.nv = t->n_vms;
    kvc_info("resource pools: %zu pools, %zu VMs placed", cur.n, cur.nv);
    reply_tree(call, d);
    return;
err:
    free(p);
    free(v);
}

void vmkd_pools_on_get(struct kvc_rpc_call *call, const ProtobufCMessage *m, void *arg)
{
    (void)m;
    if (!vmkd_ctl_allowed(arg, call))
        return;
    reply_tree(call, vmkd_ctl_vmkd(arg));
}

void vmkd_pools_free(bool rmdir_them)
{
    free_tree(cur.p, cur.n, rmdir_them);
    free(cur.v);
    memset(&cur, 0, sizeof(cur));
}
