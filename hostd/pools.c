/* Resource pools on the host (docs/resource-pools.md).
 *
 * vpxd sends the whole pool tree of the host's cluster (or of the
 * standalone host) on every change and before a power-on (POOLS_SET);
 * hostd keeps the last tree (not persisted: vpxd sends it again) and
 *  - kvm: hands it to vmkd, which makes the pools nested cgroups and puts
 *    each VM's cgroup inside its pool's (vmkernel-kvm/vmkd_pool.c).  The
 *    call is answered once the tree is checked and kept; vmkd applies it
 *    asynchronously (a refusal is logged: hostd checked the same rules).
 *  - sim: keeps the tree and reports per pool the memory of its powered-on
 *    VMs as usage.
 * POOLS_GET answers the tree as applied: on kvm with vmkd's cgroups,
 * weights, quotas and usage. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hostd/hostd.h"
#include "hostd/backend.h"
#include "log.h"
#include "rpc.h"
#include "host.pb-c.h"
#include "vmkd.pb-c.h"

KVC_LOG_MODULE(pools);

#define VMKD_CALL_MS 10000
#define POOLS_MAX 256
#define POOL_VMS_MAX 16384         /* vSphere 7: 10,000 VMs a cluster */

static bool
from_vpxd(struct hostd_host *h, struct kvc_rpc_call *call)
{
    if (h->vpxd && kvc_rpc_call_conn(call) == h->vpxd && !h->crashed)
        return true;
    kvc_rpc_reply_error(call, KVC_RPC_E_PERMISSION, "say hello first");
    return false;
}

static bool
is_kvm(const struct hostd_host *h)
{
    return h->be && !strcmp(h->be->name, "kvm");
}

static bool
id_ok(const char *s)
{
    if (!s || !*s || strlen(s) > 64 || s[0] == '.' || s[0] == '-')
        return false;
    for (; *s; s++)
        if (!(((*s | 32) >= 'a' && (*s | 32) <= 'z') || (*s >= '0' && *s <= '9')
              || *s == '-' || *s == '_' || *s == '.'))
            return false;
    return true;
}

static int
find(const Kvc__Host__PoolTree *t, const char *id)
{
    for (size_t i = 0; i < t->n_pools; i++)
        if (!strcmp(t->pools[i]->id, id))
            return (int)i;
    return -1;
}

/* The rules vmkd applies too, so that a tree hostd keeps is one vmkd takes. */
static int
check(const Kvc__Host__PoolTree *t, char *why, size_t len)
{
    size_t roots = 0;

    if (t->n_pools > POOLS_MAX || t->n_vms > POOL_VMS_MAX) {
        snprintf(why, len, "at most %d pools and %d VMs", POOLS_MAX, POOL_VMS_MAX);
        return -EINVAL;
    }
    for (size_t i = 0; i < t->n_pools; i++) {
        const Kvc__Host__Pool *p = t->pools[i];
        if (!id_ok(p->id) || (*p->parent && !id_ok(p->parent))) {
            snprintf(why, len, "pool %zu: bad id or parent", i);
            return -EINVAL;
        }
        if (find(t, p->id) != (int)i) {
            snprintf(why, len, "pool %s listed twice", p->id);
            return -EINVAL;
        }
        if (!*p->parent)
            roots++;
        else if (find(t, p->parent) < 0) {
            snprintf(why, len, "pool %s: parent %s is not in the tree", p->id, p->parent);
            return -EINVAL;
        }
        if (p->cpu_shares < 0 || p->mem_shares < 0 || p->cpu_limit_mhz < -1
            || p->mem_limit_mb < -1 || p->cpu_reservation_mhz < 0 || p->mem_reservation_mb < 0) {
            snprintf(why, len, "pool %s: negative shares, limit or reservation", p->id);
            return -EINVAL;
        }
    }
    if (t->n_pools && roots != 1) {
        snprintf(why, len, "the tree needs exactly one root pool, not %zu", roots);
        return -EINVAL;
    }
    /* No cycle: every pool reaches the root within n steps. */
    for (size_t i = 0; i < t->n_pools; i++) {
        int j = (int)i;
        size_t steps = 0;
        while (*t->pools[j]->parent && steps++ <= t->n_pools)
            j = find(t, t->pools[j]->parent);
        if (steps > t->n_pools) {
            snprintf(why, len, "pool %s: its parents form a cycle", t->pools[i]->id);
            return -EINVAL;
        }
    }
    for (size_t i = 0; i < t->n_vms; i++)
        if (!id_ok(t->vms[i]->uuid) || find(t, t->vms[i]->pool) < 0) {
            snprintf(why, len, "VM %zu: bad uuid or unknown pool", i);
            return -EINVAL;
        }
    return 0;
}

static Kvc__Host__PoolTree *
copy_tree(const Kvc__Host__PoolTree *t)
{
    size_t n = protobuf_c_message_get_packed_size(&t->base);
    uint8_t *buf = malloc(n ? n : 1);
    Kvc__Host__PoolTree *c = NULL;

    if (buf) {
        protobuf_c_message_pack(&t->base, buf);
        c = kvc__host__pool_tree__unpack(NULL, n, buf);
    }
    free(buf);
    return c;
}

static void
on_vmkd_set(int status, const char *error, const ProtobufCMessage *resp, void *arg)
{
    struct hostd_host *h = arg;

    (void)resp;
    if (status == KVC_RPC_E_CANCELLED || status == 0)
        return;
    kvc_warn("%s: vmkd refused the resource pool tree: %s", h->name, error ? error : "");
}

/* The host tree as vmkd's message; pointers into T, arrays allocated. */
struct vmkd_tree {
    Kvc__Vmkd__PoolTree t;
    Kvc__Vmkd__Pool *pb, **pp;
    Kvc__Vmkd__PoolVm *vb, **vp;
};

static int
to_vmkd(const Kvc__Host__PoolTree *t, struct vmkd_tree *v)
{
    kvc__vmkd__pool_tree__init(&v->t);
    v->pb = calloc(t->n_pools + 1, sizeof(*v->pb));
    v->pp = calloc(t->n_pools + 1, sizeof(*v->pp));
    v->vb = calloc(t->n_vms + 1, sizeof(*v->vb));
    v->vp = calloc(t->n_vms + 1, sizeof(*v->vp));
    if (!v->pb || !v->pp || !v->vb || !v->vp)
        return -ENOMEM;
    for (size_t i = 0; i < t->n_pools; i++) {
        const Kvc__Host__Pool *p = t->pools[i];
        kvc__vmkd__pool__init(&v->pb[i]);
        v->pb[i].id = p->id;
        v->pb[i].parent = p->parent;
        v->pb[i].cpu_shares = p->cpu_shares;
        v->pb[i].cpu_reservation_mhz = p->cpu_reservation_mhz;
        v->pb[i].cpu_limit_mhz = p->cpu_limit_mhz;
        v->pb[i].mem_shares = p->mem_shares;
        v->pb[i].mem_reservation_mb = p->mem_reservation_mb;
        v->pb[i].mem_limit_mb = p->mem_limit_mb;
        v->pp[i] = &v->pb[i];
    }
    for (size_t i = 0; i < t->n_vms; i++) {
        kvc__vmkd__pool_vm__init(&v->vb[i]);
        v->vb[i].vm_id = t->vms[i]->uuid;
        v->vb[i].pool = t->vms[i]->pool;
        v->vp[i] = &v->vb[i];
    }
    v->t.pools = v->pp;
    v->t.n_pools = t->n_pools;
    v->t.vms = v->vp;
    v->t.n_vms = t->n_vms;
    return 0;
}

static void
vmkd_tree_free(struct vmkd_tree *v)
{
    free(v->pb);
    free(v->pp);
    free(v->vb);
    free(v->vp);
}

static void
push_vmkd(struct hostd_host *h)
{
    struct kvc_rpc_client *cl = hostd_kvm_vmkd(h);
    struct vmkd_tree v;
    int rc;

    if (!cl || !h->pools)
        return;
    if (to_vmkd(h->pools, &v) == 0
        && (rc = kvc_rpc_client_call(cl, KVC__VMKD__METHOD__VMKD_POOLS_SET, &v.t.base,
                                     &kvc__vmkd__pool_tree__descriptor, VMKD_CALL_MS,
                                     on_vmkd_set, h)))
        kvc_warn("%s: resource pools to vmkd: %s", h->name, strerror(-rc));
    vmkd_tree_free(&v);
}

void
hostd_pools_on_set(struct kvc_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
    const Kvc__Host__PoolTree *t = (const void *)req;
    struct hostd_host *h = arg;
    Kvc__Host__Status st = KVC__HOST__STATUS__INIT;
    Kvc__Host__PoolTree *c;
    char why[256] = "";

    if (!from_vpxd(h, call))
        return;
    if (check(t, why, sizeof(why)) < 0) {
        kvc_rpc_reply_error(call, KVC_RPC_E_INVALID_ARGUMENT, "%s", why);
        return;
    }
    if (!(c = copy_tree(t))) {
        kvc_rpc_reply_error(call, KVC_RPC_E_INTERNAL, "out of memory");
        return;
    }
    if (h->pools)
        kvc__host__pool_tree__free_unpacked(h->pools, NULL);
    h->pools = c;
    kvc_info("%s: resource pools: %zu pools, %zu VMs placed", h->name, c->n_pools, c->n_vms);
    if (is_kvm(h))
        push_vmkd(h);
    kvc_rpc_reply(call, &st.base);
}

/* The stored tree as a reply, with the sim's usage or vmkd's view V. */
static void
reply_tree(struct hostd_host *h, struct kvc_rpc_call *call, const Kvc__Vmkd__PoolTree *v)
{
    static Kvc__Host__PoolTree empty = KVC__HOST__POOL_TREE__INIT;
    const Kvc__Host__PoolTree *t = h->pools ? h->pools : &empty;
    Kvc__Host__PoolTree r = *t;
    Kvc__Host__Pool *pb = calloc(t->n_pools + 1, sizeof(*pb));
    Kvc__Host__Pool **pp = calloc(t->n_pools + 1, sizeof(*pp));

    if (!pb || !pp) {
        kvc_rpc_reply_error(call, KVC_RPC_E_INTERNAL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < t->n_pools; i++) {
        pb[i] = *t->pools[i];
        pp[i] = &pb[i];
        pb[i].cgroup = (char *)"";
        if (v) {
            for (size_t k = 0; k < v->n_pools; k++)
                if (!strcmp(v->pools[k]->id, pb[i].id)) {
                    pb[i].cgroup = v->pools[k]->cgroup;
                    pb[i].weight = v->pools[k]->weight;
                    pb[i].quota_us = v->pools[k]->quota_us;
                    pb[i].cpu_ns = v->pools[k]->cpu_ns;
                    pb[i].mem_bytes = v->pools[k]->mem_bytes;
                }
            continue;
        }
        /* sim: the memory of the pool's powered-on VMs. */
        for (size_t k = 0; k < t->n_vms; k++) {
            struct hostd_vm *vm;
            if (strcmp(t->vms[k]->pool, pb[i].id)
                || !(vm = hostd_vm_find(h, t->vms[k]->uuid)) || vm->power != VM_ON)
                continue;
            pb[i].mem_bytes += vm->memory_mib << 20;
        }
    }
    r.pools = pp;
    kvc_rpc_reply(call, &r.base);
out:
    free(pb);
    free(pp);
}

struct get_ctx {
    struct hostd_host *h;
    struct kvc_rpc_call *call;
};

static void
on_vmkd_get(int status, const char *error, const ProtobufCMessage *resp, void *arg)
{
    struct get_ctx *g = arg;

    if (status == KVC_RPC_E_CANCELLED)
        kvc_rpc_reply_error(g->call, KVC_RPC_E_UNAVAILABLE, "hostd is stopping");
    else if (status)
        kvc_rpc_reply_error(g->call, KVC_RPC_E_UNAVAILABLE, "vmkd: %s", error ? error : "");
    else
        reply_tree(g->h, g->call, (const void *)resp);
    free(g);
}

void
hostd_pools_on_get(struct kvc_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
    struct hostd_host *h = arg;
    struct kvc_rpc_client *cl;
    Kvc__Vmkd__PoolsGetRequest g = KVC__VMKD__POOLS_GET_REQUEST__INIT;
    struct get_ctx *ctx;

    (void)req;
    if (!from_vpxd(h, call))
        return;
    if (!is_kvm(h) || !(cl = hostd_kvm_vmkd(h)) || !(ctx = malloc(sizeof(*ctx)))) {
        reply_tree(h, call, NULL);
        return;
    }
    ctx->h = h;
    ctx->call = call;
    if (kvc_rpc_client_call(cl, KVC__VMKD__METHOD__VMKD_POOLS_GET, &g.base,
                            &kvc__vmkd__pool_tree__descriptor, VMKD_CALL_MS, on_vmkd_get,
                            ctx)) {
        free(ctx);
        reply_tree(h, call, NULL);
    }
}

void
hostd_pools_kvm_resync(struct hostd_host *h)
{
    if (h && is_kvm(h) && h->pools) {
        kvc_info("%s: resource pools to vmkd again", h->name);
        push_vmkd(h);
    }
}

void
hostd_pools_free(struct hostd_host *h)
{
    if (h && h->pools) {
        kvc__host__pool_tree__free_unpacked(h->pools, NULL);
        h->pools = NULL;
    }
}
