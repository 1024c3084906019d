/* Resource pools: allocation arithmetic and admission control (see rp.h and
 * docs/resource-pools.md).  The arithmetic works on an in-memory tree so the
 * unit tests check it without a database; the loaders build that tree from
 * the inventory for each question and throw it away (pool trees are small,
 * and the database stays the only state). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vpxd/db_internal.h"
#include "vpxd/rp.h"

static const char *const kind_name[2] = { "CPU", "memory" };
static const char *const kind_unit[2] = { "MHz", "MB" };

static int level_index(const char *level)
{
    static const char *const levels[] = { "LOW", "NORMAL", "HIGH", NULL };

    for (int i = 0; level && levels[i]; i++)
        if (!strcmp(level, levels[i]))
            return i;
    return -1;
}

int64_t rp_pool_shares(const char *level, enum rp_kind k, int64_t custom)
{
    static const int64_t v[2][3] = { { 2000, 4000, 8000 }, { 81920, 163840, 327680 } };
    int i = level_index(level);

    return i < 0 ? custom : v[k][i];
}

int64_t rp_vm_shares(const char *level, enum rp_kind k, int64_t units, int64_t custom)
{
    static const int64_t v[2][3] = { { 500, 1000, 2000 }, { 5, 10, 20 } };
    int i = level_index(level);

    return i < 0 ? custom : v[k][i] * units;
}

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

int64_t rp_used(const struct rp_tree *t, int i, enum rp_kind k)
{
    int64_t used = t->n[i].vms[k];

    for (size_t c = 0; c < t->count; c++)
        if (t->n[c].parent == i)
            used += rp_demand(t, (int)c, k);
    return used;
}

int64_t rp_demand(const struct rp_tree *t, int i, enum rp_kind k)
{
    const struct rp_node *p = &t->n[i];

    return p->expandable[k] ? max64(p->reservation[k], rp_used(t, i, k)) : p->reservation[k];
}

/* Pool I's children would reserve EXTRA more. */
static int grow(const struct rp_tree *t, int i, enum rp_kind k, int64_t extra, char *why,
                size_t len)
{
    while (extra > 0) {
        const struct rp_node *p = &t->n[i];
        int64_t used = rp_used(t, i, k), want = used + extra;

        if (p->limit[k] >= 0 && want > p->limit[k]) {
            snprintf(why, len, "resource pool %s: %s reservation %lld %s would exceed its"
                     " limit %lld %s", p->id, kind_name[k], (long long)want, kind_unit[k],
                     (long long)p->limit[k], kind_unit[k]);
            return -ENOSPC;
        }
        if (want <= p->reservation[k])
            return 0;
        if (!p->expandable[k] || p->parent < 0) {
            snprintf(why, len, "resource pool %s: %lld %s of %s unreserved, %lld %s needed",
                     p->id, (long long)max64(p->reservation[k] - used, 0), kind_unit[k],
                     kind_name[k], (long long)(want - used), kind_unit[k]);
            return -ENOSPC;
        }
        /* Expandable: borrow what exceeds its own reservation from the
         * parent (only the part not borrowed already). */
        extra = want - max64(p->reservation[k], used);
        i = p->parent;
    }
    return 0;
}

int rp_admit(const struct rp_tree *t, int i, enum rp_kind k, int64_t amount, char *why,
             size_t len)
{
    if (i < 0 || (size_t)i >= t->count || amount < 0)
        return -EINVAL;
    return grow(t, i, k, amount, why, len);
}

int rp_check_change(const struct rp_tree *t, int i, enum rp_kind k, int64_t res, bool exp,
                    int64_t limit, char *why, size_t len)
{
    const struct rp_node *p;
    int64_t used, now, next;

    if (i < 0 || (size_t)i >= t->count || res < 0 || limit < -1)
        return -EINVAL;
    p = &t->n[i];
    if (limit != -1 && limit < res) {
        snprintf(why, len, "%s limit %lld is below the reservation %lld", kind_name[k],
                 (long long)limit, (long long)res);
        return -EINVAL;
    }
    used = rp_used(t, i, k);
    if (limit != -1 && used > limit) {
        snprintf(why, len, "resource pool %s: its children reserve %lld %s of %s, more than"
                 " the limit %lld", p->id, (long long)used, kind_unit[k], kind_name[k],
                 (long long)limit);
        return -ENOSPC;
    }
    if (!exp && used > res) {
        snprintf(why, len, "resource pool %s: its children reserve %lld %s of %s, more than"
                 " a fixed reservation of %lld", p->id, (long long)used, kind_unit[k],
                 kind_name[k], (long long)res);
        return -ENOSPC;
    }
    if (p->parent < 0)
        return 0;               /* the root is the owner's capacity */
    now = rp_demand(t, i, k);
    next = exp ? max64(res, used) : res;
    return next > now ? grow(t, p->parent, k, next - now, why, len) : 0;
}

int rp_find(const struct rp_tree *t, const char *id)
{
    for (size_t i = 0; id && i < t->count; i++)
        if (!strcmp(t->n[i].id, id))
            return (int)i;
    return -1;
}

int rp_add(struct rp_tree *t, const char *id, int parent)
{
    struct rp_node *n = realloc(t->n, (t->count + 1) * sizeof(*n));

    if (!n)
        return -1;
    t->n = n;
    n = &t->n[t->count];
    memset(n, 0, sizeof(*n));
    snprintf(n->id, sizeof(n->id), "%s", id);
    n->parent = parent;
    n->limit[RP_CPU] = n->limit[RP_MEM] = -1;
    return (int)t->count++;
}

void rp_tree_free(struct rp_tree *t)
{
    if (!t)
        return;
    free(t->n);
    t->n = NULL;
    t->count = 0;
}

/* ---- power-ons admitted, not confirmed yet ---- */

#define PENDING_TTL_S 120       /* a lost answer does not hold a reservation longer */

static struct pending {
    char vm[VDB_ID_MAX];
    time_t until;
} *pending;
static size_t npending;

static time_t now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

static void pending_expire(void)
{
    time_t now = now_s();
    for (size_t i = 0; i < npending;)
        if (pending[i].until <= now)
            pending[i] = pending[--npending];
        else
            i++;
}

void rp_pending_drop(const char *vm)
{
    for (size_t i = 0; vm && i < npending; i++)
        if (!strcmp(pending[i].vm, vm)) {
            pending[i] = pending[--npending];
            break;
        }
    if (!npending) {
        free(pending);
        pending = NULL;
    }
}

int rp_pending_add(const char *vm)
{
    struct pending *p;

    rp_pending_drop(vm);
    if (!(p = realloc(pending, (npending + 1) * sizeof(*p))))
        return -ENOMEM;
    pending = p;
    snprintf(pending[npending].vm, sizeof(pending[npending].vm), "%s", vm);
    pending[npending].until = now_s() + PENDING_TTL_S;
    npending++;
    return 0;
}

static bool is_pending(const char *vm)
{
    for (size_t i = 0; i < npending; i++)
        if (!strcmp(pending[i].vm, vm))
            return true;
    return false;
}

/* ---- from the database ---- */

static int64_t jint(json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

static const char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

int rp_tree_load(struct vdb *db, const char *pool, struct rp_tree *t)
{
    char owner[VDB_ID_MAX], type[32];
    json_t *rows = NULL, *row;
    size_t i;
    int rc;

    memset(t, 0, sizeof(*t));
    rc = vdb_query_str(db, owner, sizeof(owner), "SELECT owner FROM resource_pool WHERE id = ?",
                       "s", pool);
    if (rc < 0)
        return rc;
    rc = vdb_query_json(db, &rows, "SELECT p.*, e.parent, (SELECT type FROM entity WHERE id ="
                        " e.parent) AS parent_type FROM resource_pool p JOIN entity e ON e.id ="
                        " p.id WHERE p.owner = ? ORDER BY e.rowid", "s", owner);
    if (rc < 0)
        return rc;
    json_array_foreach(rows, i, row) {
        if (rp_add(t, jstr(row, "id"), -1) < 0) {
            rc = -ENOMEM;
            goto out;
        }
    }
    json_array_foreach(rows, i, row) {
        struct rp_node *n = &t->n[i];
        if (!strcmp(jstr(row, "parent_type"), "resource_pool"))
            n->parent = rp_find(t, jstr(row, "parent"));
        n->reservation[RP_CPU] = jint(row, "cpu_reservation");
        n->reservation[RP_MEM] = jint(row, "mem_reservation");
        n->limit[RP_CPU] = jint(row, "cpu_limit");
        n->limit[RP_MEM] = jint(row, "mem_limit");
        n->expandable[RP_CPU] = jint(row, "cpu_expandable");
        n->expandable[RP_MEM] = jint(row, "mem_expandable");
        if (n->parent < 0) {
            /* The root: what the owner's usable hosts offer. */
            json_t *cap = NULL;
            rc = vdb_entity_type(db, owner, type, sizeof(type));
            if (rc >= 0)
                rc = vdb_query_row(db, &cap, "SELECT coalesce(sum(cpu_count * cpu_mhz), 0) AS"
                                   " cpu, coalesce(sum(memory_bytes / 1048576), 0) AS mem"
                                   " FROM host WHERE (id = ? OR cluster = ?) AND"
                                   " connection_state = 'CONNECTED' AND NOT maintenance",
                                   "ss", owner, owner);
            if (rc < 0)
                goto out;
            n->reservation[RP_CPU] = jint(cap, "cpu");
            n->reservation[RP_MEM] = jint(cap, "mem");
            n->limit[RP_CPU] = n->limit[RP_MEM] = -1;
            n->expandable[RP_CPU] = n->expandable[RP_MEM] = false;
            json_decref(cap);
        }
    }
    json_decref(rows);
    rows = NULL;
    rc = vdb_query_json(db, &rows, "SELECT v.resource_pool AS rp, sum(a.cpu_reservation) AS"
                        " cpu, sum(a.mem_reservation) AS mem FROM vm v JOIN vm_alloc a ON"
                        " a.vm = v.id JOIN resource_pool p ON p.id = v.resource_pool WHERE"
                        " p.owner = ? AND v.power_state = 'POWERED_ON' GROUP BY"
                        " v.resource_pool", "s", owner);
    if (rc < 0)
        goto out;
    json_array_foreach(rows, i, row) {
        int j = rp_find(t, jstr(row, "rp"));
        if (j >= 0) {
            t->n[j].vms[RP_CPU] = jint(row, "cpu");
            t->n[j].vms[RP_MEM] = jint(row, "mem");
        }
    }
    /* Power-ons on their way count as on: two at once cannot both take
     * the last of a pool. */
    pending_expire();
    for (size_t k = 0; k < npending; k++) {
        json_t *v = NULL;
        if (vdb_query_row(db, &v, "SELECT v.resource_pool AS rp, a.cpu_reservation AS cpu,"
                          " a.mem_reservation AS mem FROM vm v JOIN vm_alloc a ON a.vm = v.id"
                          " WHERE v.id = ? AND v.power_state != 'POWERED_ON'", "s",
                          pending[k].vm) == 0) {
            int j = rp_find(t, jstr(v, "rp"));
            if (j >= 0) {
                t->n[j].vms[RP_CPU] += jint(v, "cpu");
                t->n[j].vms[RP_MEM] += jint(v, "mem");
            }
        }
        json_decref(v);
    }
    rc = 0;
out:
    json_decref(rows);
    if (rc < 0)
        rp_tree_free(t);
    return rc;
}

int rp_admit_vm(struct vdb *db, const char *vm, const char *pool, char *why, size_t len)
{
    return rp_admit_vm_with(db, vm, pool, -1, -1, why, len);
}

int rp_admit_vm_with(struct vdb *db, const char *vm, const char *pool, int64_t cpu_res,
                     int64_t mem_res, char *why, size_t len)
{
    char own[VDB_ID_MAX] = "";
    json_t *row = NULL;
    struct rp_tree t;
    int rc, i;

    rc = vdb_query_row(db, &row, "SELECT coalesce(v.resource_pool, '') AS rp, v.power_state,"
                       " coalesce(a.cpu_reservation, 0) AS cpu, coalesce(a.mem_reservation, 0)"
                       " AS mem FROM vm v LEFT JOIN vm_alloc a ON a.vm = v.id WHERE v.id = ?",
                       "s", vm);
    if (rc < 0)
        return rc;
    snprintf(own, sizeof(own), "%s", jstr(row, "rp"));
    if (!pool)
        pool = own;
    int64_t want[2] = { cpu_res >= 0 ? cpu_res : jint(row, "cpu"),
                        mem_res >= 0 ? mem_res : jint(row, "mem") };
    if (!*pool || (want[RP_CPU] == 0 && want[RP_MEM] == 0)) {
        json_decref(row);
        return 0;               /* reserves nothing: always fits */
    }
    rc = rp_tree_load(db, pool, &t);
    if (rc < 0) {
        json_decref(row);
        return rc;
    }
    i = rp_find(&t, pool);
    /* A VM already on (or on its way) counts in its pool; moving it frees that. */
    if (!strcmp(jstr(row, "power_state"), "POWERED_ON") || is_pending(vm)) {
        int o = rp_find(&t, own);
        if (o >= 0) {
            t.n[o].vms[RP_CPU] -= jint(row, "cpu");
            t.n[o].vms[RP_MEM] -= jint(row, "mem");
        }
    }
    rc = i < 0 ? -ENOENT : rp_admit(&t, i, RP_CPU, want[RP_CPU], why, len);
    if (rc == 0)
        rc = rp_admit(&t, i, RP_MEM, want[RP_MEM], why, len);
    rp_tree_free(&t);
    json_decref(row);
    return rc;
}

int rp_admit_pool_update(struct vdb *db, const char *pool, const struct vdb_alloc *cpu,
                         const struct vdb_alloc *mem, char *why, size_t len)
{
    const struct vdb_alloc *a[2] = { cpu, mem };
    struct rp_tree t;
    int rc, i;

    rc = rp_tree_load(db, pool, &t);
    if (rc < 0)
        return rc;
    i = rp_find(&t, pool);
    rc = i < 0 ? -ENOENT : 0;
    for (int k = 0; k < 2 && rc == 0; k++) {
        if (!a[k])
            continue;
        if (t.n[i].parent < 0) {
            snprintf(why, len, "%s is the root resource pool: its reservation is the capacity"
                     " of its cluster or host", pool);
            rc = -EPERM;
            break;
        }
        rc = rp_check_change(&t, i, k, a[k]->reservation, a[k]->expandable, a[k]->limit,
                             why, len);
        /* The next kind is checked with this one applied: they are
         * independent, but keep the tree as it will be. */
        if (rc == 0) {
            t.n[i].reservation[k] = a[k]->reservation;
            t.n[i].expandable[k] = a[k]->expandable;
            t.n[i].limit[k] = a[k]->limit;
        }
    }
    rp_tree_free(&t);
    return rc;
}

int rp_admit_pool_create(struct vdb *db, const char *parent, const struct vdb_alloc *cpu,
                         const struct vdb_alloc *mem, char *why, size_t len)
{
    const struct vdb_alloc *a[2] = { cpu, mem };
    struct rp_tree t;
    int rc, p;

    rc = rp_tree_load(db, parent, &t);
    if (rc < 0)
        return rc;
    p = rp_find(&t, parent);
    rc = p < 0 ? -ENOENT : 0;
    for (int k = 0; k < 2 && rc == 0; k++)
        if (a[k])
            rc = rp_admit(&t, p, k, a[k]->reservation, why, len);
    rp_tree_free(&t);
    return rc;
}

int rp_vm_alloc_get(struct vdb *db, const char *vm, struct rp_vm_alloc *cpu,
                    struct rp_vm_alloc *mem, char levels[2][16])
{
    json_t *row = NULL;
    int rc;

    if (!vdb_entity_exists(db, vm, "vm"))
        return -ENOENT;
    rc = vdb_query_row(db, &row, "SELECT * FROM vm_alloc WHERE vm = ?", "s", vm);
    if (rc == -ENOENT) {
        *cpu = *mem = (struct rp_vm_alloc){ 0, -1, "NORMAL", 0 };
        snprintf(levels[0], 16, "NORMAL");
        snprintf(levels[1], 16, "NORMAL");
        cpu->shares_level = levels[0];
        mem->shares_level = levels[1];
        return 0;
    }
    if (rc < 0)
        return rc;
    snprintf(levels[0], 16, "%s", jstr(row, "cpu_shares_level"));
    snprintf(levels[1], 16, "%s", jstr(row, "mem_shares_level"));
    *cpu = (struct rp_vm_alloc){ jint(row, "cpu_reservation"), jint(row, "cpu_limit"),
                                 levels[0], jint(row, "cpu_shares") };
    *mem = (struct rp_vm_alloc){ jint(row, "mem_reservation"), jint(row, "mem_limit"),
                                 levels[1], jint(row, "mem_shares") };
    json_decref(row);
    return 0;
}

static bool vm_alloc_ok(const struct rp_vm_alloc *a)
{
    return !a || (a->reservation >= 0 && a->limit >= -1 && a->shares >= 0
                  && (a->limit == -1 || a->limit >= a->reservation) && a->shares_level
                  && (level_index(a->shares_level) >= 0 || !strcmp(a->shares_level, "CUSTOM")));
}

int rp_vm_alloc_set(struct vdb *db, const char *vm, const struct rp_vm_alloc *cpu,
                    const struct rp_vm_alloc *mem)
{
    int rc;

    if (!vm_alloc_ok(cpu) || !vm_alloc_ok(mem))
        return -EINVAL;
    if (!vdb_entity_exists(db, vm, "vm"))
        return -ENOENT;
    if ((rc = vdb_begin(db)) < 0)
        return rc;
    rc = vdb_exec(db, "INSERT OR IGNORE INTO vm_alloc (vm) VALUES (?)", "s", vm);
    if (rc >= 0 && cpu)
        rc = vdb_exec(db, "UPDATE vm_alloc SET cpu_reservation = ?, cpu_limit = ?,"
                      " cpu_shares_level = ?, cpu_shares = ? WHERE vm = ?", "IIsIs",
                      cpu->reservation, cpu->limit, cpu->shares_level, cpu->shares, vm);
    if (rc >= 0 && mem)
        rc = vdb_exec(db, "UPDATE vm_alloc SET mem_reservation = ?, mem_limit = ?,"
                      " mem_shares_level = ?, mem_shares = ? WHERE vm = ?", "IIsIs",
                      mem->reservation, mem->limit, mem->shares_level, mem->shares, vm);
    return vdb_finish(db, rc < 0 ? rc : 0);
}

int rp_vm_move(struct vdb *db, const char *vm, const char *pool)
{
    int64_t same = 0;
    int rc;

    if (!vdb_entity_exists(db, vm, "vm"))
        return -ENOENT;
    if (!vdb_entity_exists(db, pool, "resource_pool"))
        return -ENOENT;
    rc = vdb_query_int(db, &same, "SELECT count(*) FROM vm v JOIN resource_pool p ON"
                       " p.id = ? WHERE v.id = ? AND p.owner = coalesce(v.cluster, v.host)",
                       "ss", pool, vm);
    if (rc < 0)
        return rc;
    if (!same)
        return -EXDEV;
    if ((rc = vdb_begin(db)) < 0)
        return rc;
    rc = vdb_exec(db, "UPDATE vm SET resource_pool = ? WHERE id = ?", "ss", pool, vm);
    return vdb_finish(db, rc < 0 ? rc : 0);
}
