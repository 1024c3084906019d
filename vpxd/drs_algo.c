/* DRS, the algorithm (drs.h, docs/drs.md): load, imbalance, rules,
 * greedy moves with a cost-benefit check, swaps, initial placement.  Pure:
 * no database, no clock, no randomness; ties go to the lowest index. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vpxd/drs.h"

/* The sim backend's pre-copy model (hostd/backends/sim.c sim_migration_ms),
 * in MiB and MiB/s: rounds at the bandwidth while the guest dirties memory,
 * until the rest fits the downtime target or 30 rounds. */
int64_t drs_migration_ms(double mem, double dirty, double bw, int64_t target_ms)
{
    double left = mem, total = 0, t, fits = bw * (double)target_ms / 1000.0;

    if (bw <= 0)
        return -1;
    for (int round = 0; round < 30; round++) {
        if (left <= fits && round > 0)
            break;
        t = left / bw;
        total += t;
        left = dirty * t;
        if (left > mem)
            left = mem;
    }
    if (left > fits && dirty >= bw)
        return -1;
    return (int64_t)llround((total + left / bw) * 1000);
}

const char *drs_reason_name(enum drs_reason r)
{
    switch (r) {
    case DRS_REASON_BALANCE: return "balance";
    case DRS_REASON_RULE: return "rule";
    case DRS_REASON_EVACUATE: return "evacuate";
    }
    return "unknown";
}

double drs_target_imbalance(int threshold)
{
    switch (threshold) {
    case 1: return INFINITY;    /* only mandatory moves (rules, maintenance) */
    case 2: return 0.20;
    case 4: return 0.05;
    case 5: return 0.02;
    default: return 0.10;
    }
}

static void params_defaults(const struct drs_params *in, struct drs_params *p)
{
    *p = *in;
    if (p->threshold < 1 || p->threshold > 5)
        p->threshold = 3;
    if (p->cpu_weight <= 0 && p->mem_weight <= 0)
        p->cpu_weight = p->mem_weight = 0.5;
    if (p->bandwidth_mbps <= 0)
        p->bandwidth_mbps = 119.2;
    if (p->downtime_ms <= 0)
        p->downtime_ms = 500;
    if (p->horizon_s <= 0)
        p->horizon_s = 300;
    if (!p->max_moves)
        p->max_moves = 64;
}

/* ---- working state ------------------------------------------------------ */

struct st {
    struct drs_cluster *c;
    struct drs_params p;
    double *load, *memc;        /* per host: load, configured memory placed */
    int *nvm;                   /* per host: VMs placed */
    double s1, s2;              /* sums of load and load^2 over usable hosts */
    size_t k;                   /* usable hosts */
    int *cnt;                   /* per rule x host: members placed */
    size_t *vr_off, *vr;        /* per VM: its rules (CSR) */
    unsigned char *inset;       /* per rule x host: host listed in a VM-host rule */
    int *head, *next, *prev;    /* per host: its VMs (doubly linked) */
    int64_t *mig_ms;            /* per VM: migration time (-2: not computed yet) */
};

static double vm_load(const struct st *s, size_t v, size_t h)
{
    const struct drs_vm *vm = &s->c->vms[v];
    const struct drs_host *ho = &s->c->hosts[h];
    double l = 0;

    if (ho->cpu_mhz > 0)
        l += s->p.cpu_weight * vm->cpu_mhz / ho->cpu_mhz;
    if (ho->mem_mb > 0)
        l += s->p.mem_weight * vm->mem_demand_mb / ho->mem_mb;
    return l;
}

static double sigma(const struct st *s, double s1, double s2)
{
    double m, v;

    if (!s->k)
        return 0;
    m = s1 / (double)s->k;
    v = s2 / (double)s->k - m * m;
    return v > 0 ? sqrt(v) : 0;
}

static void st_free(struct st *s)
{
    free(s->load);
    free(s->memc);
    free(s->nvm);
    free(s->cnt);
    free(s->vr_off);
    free(s->vr);
    free(s->inset);
    free(s->head);
    free(s->next);
    free(s->prev);
    free(s->mig_ms);
}

static void list_del(struct st *s, size_t v, int h)
{
    if (s->prev[v] >= 0)
        s->next[s->prev[v]] = s->next[v];
    else
        s->head[h] = s->next[v];
    if (s->next[v] >= 0)
        s->prev[s->next[v]] = s->prev[v];
    s->next[v] = s->prev[v] = -1;
}

/* Keeps each host's list in VM index order, so scans stay deterministic. */
static void list_add(struct st *s, size_t v, size_t h)
{
    int at = s->head[h], before = -1;

    while (at >= 0 && at < (int)v) {
        before = at;
        at = s->next[at];
    }
    s->prev[v] = before;
    s->next[v] = at;
    if (before >= 0)
        s->next[before] = (int)v;
    else
        s->head[h] = (int)v;
    if (at >= 0)
        s->prev[at] = (int)v;
}

static int st_init(struct st *s, struct drs_cluster *c, const struct drs_params *p)
{
    size_t nh = c->n_hosts, nr = c->n_rules, total = 0;

    memset(s, 0, sizeof(*s));
    s->c = c;
    params_defaults(p, &s->p);
    s->load = calloc(nh + 1, sizeof(double));
    s->memc = calloc(nh + 1, sizeof(double));
    s->nvm = calloc(nh + 1, sizeof(int));
    s->cnt = calloc(nr * nh + 1, sizeof(int));
    s->inset = calloc(nr * nh + 1, 1);
    s->vr_off = calloc(c->n_vms + 2, sizeof(size_t));
    s->head = malloc((nh + 1) * sizeof(int));
    s->next = malloc((c->n_vms + 1) * sizeof(int));
    s->prev = malloc((c->n_vms + 1) * sizeof(int));
    s->mig_ms = malloc((c->n_vms + 1) * sizeof(int64_t));
    if (!s->load || !s->memc || !s->nvm || !s->cnt || !s->inset || !s->vr_off || !s->head ||
        !s->next || !s->prev || !s->mig_ms)
        goto nomem;
    for (size_t h = 0; h <= nh; h++)
        s->head[h] = -1;
    for (size_t v = 0; v <= c->n_vms; v++) {
        s->next[v] = s->prev[v] = -1;
        s->mig_ms[v] = -2;
    }
    for (size_t r = 0; r < nr; r++)
        for (size_t i = 0; i < c->rules[r].n_vms; i++) {
            int v = c->rules[r].vms[i];
            if (v >= 0 && (size_t)v < c->n_vms)
                s->vr_off[v + 1]++, total++;
        }
    for (size_t v = 0; v < c->n_vms; v++)
        s->vr_off[v + 1] += s->vr_off[v];
    if (!(s->vr = calloc(total + 1, sizeof(size_t))))
        goto nomem;
    {
        size_t *fill = calloc(c->n_vms + 1, sizeof(size_t));
        if (!fill)
            goto nomem;
        for (size_t r = 0; r < nr; r++) {
            for (size_t i = 0; i < c->rules[r].n_vms; i++) {
                int v = c->rules[r].vms[i];
                if (v >= 0 && (size_t)v < c->n_vms)
                    s->vr[s->vr_off[v] + fill[v]++] = r;
            }
            for (size_t i = 0; i < c->rules[r].n_hosts; i++) {
                int h = c->rules[r].hosts[i];
                if (h >= 0 && (size_t)h < nh)
                    s->inset[r * nh + (size_t)h] = 1;
            }
        }
        free(fill);
    }
    for (size_t v = c->n_vms; v-- > 0;) {
        int h = c->vms[v].host;
        if (h < 0 || (size_t)h >= nh)
            continue;
        list_add(s, v, (size_t)h);
    }
    for (size_t v = 0; v < c->n_vms; v++) {
        int h = c->vms[v].host;
        if (h < 0 || (size_t)h >= nh)
            continue;
        s->load[h] += vm_load(s, v, (size_t)h);
        s->memc[h] += c->vms[v].mem_mb;
        s->nvm[h]++;
        for (size_t i = s->vr_off[v]; i < s->vr_off[v + 1]; i++)
            s->cnt[s->vr[i] * nh + (size_t)h]++;
    }
    for (size_t h = 0; h < nh; h++)
        if (c->hosts[h].usable) {
            s->k++;
            s->s1 += s->load[h];
            s->s2 += s->load[h] * s->load[h];
        }
    return 0;
nomem:
    st_free(s);
    return -ENOMEM;
}

static void st_move(struct st *s, size_t v, size_t to)
{
    struct drs_cluster *c = s->c;
    int from = c->vms[v].host;
    size_t nh = c->n_hosts;

    if (from >= 0) {
        double l = vm_load(s, v, (size_t)from);
        if (c->hosts[from].usable) {
            s->s1 -= l;
            s->s2 += (s->load[from] - l) * (s->load[from] - l) - s->load[from] * s->load[from];
        }
        s->load[from] -= l;
        s->memc[from] -= c->vms[v].mem_mb;
        s->nvm[from]--;
        list_del(s, v, from);
        for (size_t i = s->vr_off[v]; i < s->vr_off[v + 1]; i++)
            s->cnt[s->vr[i] * nh + (size_t)from]--;
    }
    double l = vm_load(s, v, to);
    if (c->hosts[to].usable) {
        s->s1 += l;
        s->s2 += (s->load[to] + l) * (s->load[to] + l) - s->load[to] * s->load[to];
    }
    s->load[to] += l;
    s->memc[to] += c->vms[v].mem_mb;
    s->nvm[to]++;
    list_add(s, v, to);
    for (size_t i = s->vr_off[v]; i < s->vr_off[v + 1]; i++)
        s->cnt[s->vr[i] * nh + to]++;
    c->vms[v].host = (int)to;
}

/* Members of rule R other than V on host H, and in total (placed). */
static int others_on(const struct st *s, size_t r, size_t v, size_t h)
{
    return s->cnt[r * s->c->n_hosts + h] - (s->c->vms[v].host == (int)h ? 1 : 0);
}

static int others_total(const struct st *s, size_t r, size_t v)
{
    int n = 0;

    for (size_t h = 0; h < s->c->n_hosts; h++)
        n += others_on(s, r, v, h);
    return n;
}

/* Hard rules and capacity for V on H (V's own share on H not counted).
 * EXTRA_MEM: memory leaving H at the same time (the other half of a swap). */
static bool fits(const struct st *s, size_t v, size_t h, double extra_mem)
{
    const struct drs_cluster *c = s->c;
    const struct drs_vm *vm = &c->vms[v];
    const struct drs_host *ho = &c->hosts[h];
    double used = s->memc[h] - (vm->host == (int)h ? vm->mem_mb : 0) - extra_mem;

    if (!ho->usable || used + vm->mem_mb > ho->mem_mb + 1e-9)
        return false;
    if (ho->cpu_threads > 0 && vm->cpu_count > ho->cpu_threads)
        return false;
    for (size_t i = s->vr_off[v]; i < s->vr_off[v + 1]; i++) {
        size_t r = s->vr[i];
        bool in = s->inset[r * c->n_hosts + h];
        switch (c->rules[r].kind) {
        case DRS_VM_ANTI_AFFINITY:
            if (others_on(s, r, v, h) > 0)
                return false;
            break;
        case DRS_VM_AFFINITY:
            if (others_on(s, r, v, h) == 0 && others_total(s, r, v) > 0)
                return false;
            break;
        case DRS_VM_HOST_MUST:
            if (!in)
                return false;
            break;
        case DRS_VM_HOST_MUST_NOT:
            if (in)
                return false;
            break;
        default:
            break;
        }
    }
    return true;
}

/* Should rules: V on H satisfies all of them. */
static bool soft_ok(const struct st *s, size_t v, size_t h)
{
    const struct drs_cluster *c = s->c;

    for (size_t i = s->vr_off[v]; i < s->vr_off[v + 1]; i++) {
        size_t r = s->vr[i];
        bool in = s->inset[r * c->n_hosts + h];
        if ((c->rules[r].kind == DRS_VM_HOST_SHOULD && !in) ||
            (c->rules[r].kind == DRS_VM_HOST_SHOULD_NOT && in))
            return false;
    }
    return true;
}

/* Whether V violates a hard rule where it is (capacity aside). */
static bool violates(const struct st *s, size_t v)
{
    const struct drs_cluster *c = s->c;
    int h = c->vms[v].host;

    if (h < 0)
        return false;
    for (size_t i = s->vr_off[v]; i < s->vr_off[v + 1]; i++) {
        size_t r = s->vr[i];
        bool in = s->inset[r * c->n_hosts + (size_t)h];
        switch (c->rules[r].kind) {
        case DRS_VM_ANTI_AFFINITY:
            /* The first member of a pair stays; the later ones move. */
            if (others_on(s, r, v, (size_t)h) > 0) {
                for (size_t j = 0; j < c->rules[r].n_vms; j++) {
                    int u = c->rules[r].vms[j];
                    if ((size_t)u == v)
                        break;          /* V is the first one there: it stays */
                    if (u >= 0 && (size_t)u < c->n_vms && c->vms[u].host == h)
                        return true;
                }
            }
            break;
        case DRS_VM_AFFINITY: {
            /* Members follow the host that holds most of them. */
            int mine = others_on(s, r, v, (size_t)h), best = mine;
            for (size_t x = 0; x < c->n_hosts; x++)
                if (others_on(s, r, v, x) > best)
                    best = others_on(s, r, v, x);
            if (best > mine)
                return true;
            break;
        }
        case DRS_VM_HOST_MUST:
            if (!in)
                return true;
            break;
        case DRS_VM_HOST_MUST_NOT:
            if (in)
                return true;
            break;
        default:
            break;
        }
    }
    return false;
}

static double move_cost(const struct st *s, size_t v, size_t to, int64_t *ms)
{
    const struct drs_vm *vm = &s->c->vms[v];
    int64_t t = s->mig_ms[v];

    if (t == -2)
        t = s->mig_ms[v] = drs_migration_ms(vm->mem_mb, vm->dirty_mbps, s->p.bandwidth_mbps,
                                            s->p.downtime_ms);

    *ms = t;
    if (t < 0)
        return INFINITY;
    if (s->p.no_cost)
        return 0;
    /* While it moves, the VM's demand weighs on both hosts and the copy
     * costs a share of a core on each: its load on the destination plus a
     * floor, for the migration's duration. */
    return (double)t / 1000.0 * (vm_load(s, v, to) + 0.01);
}

/* The imbalance if V went to TO. */
static double sigma_after(const struct st *s, size_t v, size_t to)
{
    const struct drs_cluster *c = s->c;
    int from = c->vms[v].host;
    double s1 = s->s1, s2 = s->s2;

    if (from >= 0 && c->hosts[from].usable) {
        double l = vm_load(s, v, (size_t)from);
        s1 -= l;
        s2 += (s->load[from] - l) * (s->load[from] - l) - s->load[from] * s->load[from];
    }
    if (c->hosts[to].usable) {
        double l = vm_load(s, v, to);
        s1 += l;
        s2 += (s->load[to] + l) * (s->load[to] + l) - s->load[to] * s->load[to];
    }
    return sigma(s, s1, s2);
}

static void emit(struct st *s, struct drs_move *out, size_t *n, size_t v, size_t to,
                 enum drs_reason why, double gain, double cost, int64_t ms)
{
    out[*n] = (struct drs_move){ .vm = (int)v, .from = s->c->vms[v].host, .to = (int)to,
                                 .reason = why, .gain = gain, .cost = cost,
                                 .migration_ms = ms };
    (*n)++;
    st_move(s, v, to);
}

/* The best host for V among those it fits, preferring should-rule hosts;
 * -1 if none. */
static int best_host(const struct st *s, size_t v, bool want_soft)
{
    int best = -1;
    double bs = INFINITY;

    for (int pass = 0; pass < 2 && best < 0; pass++) {
        for (size_t h = 0; h < s->c->n_hosts; h++) {
            if ((int)h == s->c->vms[v].host || !fits(s, v, h, 0))
                continue;
            if (pass == 0 && want_soft && !soft_ok(s, v, h))
                continue;
            double sg = sigma_after(s, v, h);
            if (sg < bs - 1e-12) {
                bs = sg;
                best = (int)h;
            }
        }
        if (!want_soft)
            break;
    }
    return best;
}

/* What removing GAIN of imbalance is worth, in the cost's unit (load x
 * seconds): the imbalance is per host, so over the cluster it weighs
 * GAIN x hosts, for as long as the gain lasts (the horizon). */
static double benefit(const struct st *s, double gain)
{
    return gain * (double)s->k * s->p.horizon_s;
}

/* Host indexes by load, busiest first; ties by index. */
static void sort_by_load(const struct st *s, size_t *h, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        size_t x = h[i], j = i;
        while (j > 0 && (s->load[h[j - 1]] < s->load[x] ||
                         (s->load[h[j - 1]] == s->load[x] && h[j - 1] > x))) {
            h[j] = h[j - 1];
            j--;
        }
        h[j] = x;
    }
}

int drs_recommend(struct drs_cluster *c, const struct drs_params *p, struct drs_move *out,
                  size_t max)
{
    struct st s;
    size_t n = 0;
    int rc;

    if (!c || !p || (!out && max))
        return -EINVAL;
    if ((rc = st_init(&s, c, p)))
        return rc;
    double target = drs_target_imbalance(s.p.threshold);

    /* 1. Mandatory: evacuate unusable hosts, fix hard-rule violations;
     * then should-rule fixes that fit.  No cost-benefit check. */
    for (int round = 0; round < 2; round++) {
        for (size_t v = 0; v < c->n_vms && n < max && n < s.p.max_moves; v++) {
            const struct drs_vm *vm = &c->vms[v];
            enum drs_reason why;
            int h = vm->host, to;
            if (!vm->movable || h < 0)
                continue;
            if (round == 0 && !c->hosts[h].usable)
                why = DRS_REASON_EVACUATE;
            else if (round == 0 && violates(&s, v))
                why = DRS_REASON_RULE;
            else if (round == 1 && c->hosts[h].usable && !soft_ok(&s, v, (size_t)h))
                why = DRS_REASON_RULE;
            else
                continue;
            to = best_host(&s, v, true);
            if (to < 0 || (round == 1 && !soft_ok(&s, v, (size_t)to)))
                continue;
            double before = sigma(&s, s.s1, s.s2), after = sigma_after(&s, v, (size_t)to);
            int64_t ms;
            double cost = move_cost(&s, v, (size_t)to, &ms);
            emit(&s, out, &n, v, (size_t)to, why, before - after, cost, ms);
        }
    }

    /* 2. Balance: the single move that lowers the imbalance most, while
     * the gain is worth the move (benefit() > cost); swaps when no single
     * move helps.  Sources are the busiest hosts, destinations the idlest
     * (all of them in small clusters), so a pass stays fast on big ones. */
    size_t *order = malloc((c->n_hosts + 1) * sizeof(size_t));
    if (!order) {
        st_free(&s);
        return -ENOMEM;
    }
    while (n < max && n < s.p.max_moves) {
        double cur = sigma(&s, s.s1, s.s2);
        double aim = p->target_override > 0 ? p->target_override
                   : p->target_override < 0 ? 0 : target;
        if (cur <= aim || s.k < 2)
            break;
        size_t k = 0;
        for (size_t h = 0; h < c->n_hosts; h++)
            if (c->hosts[h].usable)
                order[k++] = h;
        sort_by_load(&s, order, k);             /* busiest first */
        size_t nsrc = k < 4 ? k : 4, ndst = k < 8 ? k : 8;
        double best_gain = 0, best_cost = 0, best_var = cur * cur - 1e-15;
        int64_t best_ms = 0;
        int bv = -1, bt = -1;
        for (size_t si = 0; si < nsrc; si++) {
            size_t h = order[si];
            for (int v = s.head[h]; v >= 0; v = s.next[v]) {
                const struct drs_vm *vm = &c->vms[v];
                if (!vm->movable)
                    continue;
                bool soft_now = soft_ok(&s, (size_t)v, h);
                double ls = vm_load(&s, (size_t)v, h);
                for (size_t di = k - ndst; di < k; di++) {
                    size_t d = order[di];
                    if (d == h || s.load[d] >= s.load[h])
                        continue;
                    /* Cheap first: the load change on the two hosts alone. */
                    double ld = vm_load(&s, (size_t)v, d);
                    double s1 = s.s1 - ls + ld;
                    double s2 = s.s2 + (s.load[h] - ls) * (s.load[h] - ls) - s.load[h] * s.load[h]
                                + (s.load[d] + ld) * (s.load[d] + ld) - s.load[d] * s.load[d];
                    double kk = (double)s.k, var = s2 / kk - (s1 / kk) * (s1 / kk);
                    if (var >= best_var)
                        continue;
                    if (!fits(&s, (size_t)v, d, 0) || (soft_now && !soft_ok(&s, (size_t)v, d)))
                        continue;
                    double gain = cur - (var > 0 ? sqrt(var) : 0);
                    if (gain <= 1e-12)
                        continue;
                    int64_t ms;
                    double cost = move_cost(&s, (size_t)v, d, &ms);
                    if (!(benefit(&s, gain) > cost))
                        continue;
                    best_gain = gain;
                    best_var = var;
                    best_cost = cost;
                    best_ms = ms;
                    bv = v;
                    bt = (int)d;
                }
            }
        }
        if (bv >= 0) {
            emit(&s, out, &n, (size_t)bv, (size_t)bt, DRS_REASON_BALANCE, best_gain, best_cost,
                 best_ms);
            continue;
        }
        /* Swap two VMs of two hosts: every pair of hosts in a small cluster,
         * the busiest against the idlest otherwise. */
        if (n + 2 > max || n + 2 > s.p.max_moves)
            break;
        bool small = c->n_vms <= 400;
        double bg = 0, bc = 0;
        int sv = -1, su = -1;
        size_t sh = 0, sd = 0;
        int64_t ms_v = 0, ms_u = 0;
        for (size_t a = 0; a < (small ? k : 1); a++) {
            size_t h = order[a];
            for (size_t b = small ? a + 1 : k - ndst; b < k; b++) {
                size_t d = order[b];
                if (d == h)
                    continue;
                for (int v = s.head[h]; v >= 0; v = s.next[v]) {
                    const struct drs_vm *vm = &c->vms[v];
                    if (!vm->movable)
                        continue;
                    for (int u = s.head[d]; u >= 0; u = s.next[u]) {
                        const struct drs_vm *um = &c->vms[u];
                        if (!um->movable)
                            continue;
                        double lv_s = vm_load(&s, (size_t)v, h), lv_d = vm_load(&s, (size_t)v, d);
                        double lu_s = vm_load(&s, (size_t)u, h), lu_d = vm_load(&s, (size_t)u, d);
                        if (lv_s <= lu_s)
                            continue;   /* must take load off the busier host */
                        double ns = s.load[h] - lv_s + lu_s, nd = s.load[d] - lu_d + lv_d;
                        double s2 = s.s2 - s.load[h] * s.load[h] - s.load[d] * s.load[d] +
                                    ns * ns + nd * nd;
                        double s1 = s.s1 - lv_s + lu_s - lu_d + lv_d;
                        double gain = cur - sigma(&s, s1, s2);
                        if (gain <= bg + 1e-12)
                            continue;
                        if (!fits(&s, (size_t)v, d, um->mem_mb) ||
                            !fits(&s, (size_t)u, h, vm->mem_mb) ||
                            (soft_ok(&s, (size_t)v, h) && !soft_ok(&s, (size_t)v, d)) ||
                            (soft_ok(&s, (size_t)u, d) && !soft_ok(&s, (size_t)u, h)))
                            continue;
                        int64_t m1, m2;
                        double cost = move_cost(&s, (size_t)v, d, &m1) +
                                      move_cost(&s, (size_t)u, h, &m2);
                        if (!(benefit(&s, gain) > cost))
                            continue;
                        bg = gain;
                        bc = cost;
                        sv = v;
                        su = u;
                        sh = h;
                        sd = d;
                        ms_v = m1;
                        ms_u = m2;
                    }
                }
            }
        }
        if (sv < 0)
            break;
        /* The two halves are applied in order; memory was checked for the pair. */
        emit(&s, out, &n, (size_t)su, sh, DRS_REASON_BALANCE, bg / 2, bc / 2, ms_u);
        emit(&s, out, &n, (size_t)sv, sd, DRS_REASON_BALANCE, bg / 2, bc / 2, ms_v);
    }
    free(order);
    st_free(&s);
    return (int)n;
}

int drs_place(const struct drs_cluster *cc, const struct drs_params *p, size_t vm)
{
    struct drs_cluster c = *cc;
    struct drs_vm *vms;
    struct st s;
    int best;

    if (!cc || !p || vm >= cc->n_vms)
        return -EINVAL;
    /* Work on a copy where the VM is not placed yet. */
    if (!(vms = malloc(cc->n_vms * sizeof(*vms))))
        return -ENOMEM;
    memcpy(vms, cc->vms, cc->n_vms * sizeof(*vms));
    vms[vm].host = -1;
    c.vms = vms;
    if (st_init(&s, &c, p)) {
        free(vms);
        return -ENOMEM;
    }
    best = best_host(&s, vm, true);
    st_free(&s);
    free(vms);
    return best < 0 ? -ENOSPC : best;
}

double drs_host_load(const struct drs_cluster *c, const struct drs_params *p, size_t host)
{
    struct drs_params q;
    double l = 0;

    params_defaults(p, &q);
    for (size_t v = 0; v < c->n_vms; v++) {
        const struct drs_vm *vm = &c->vms[v];
        const struct drs_host *h = &c->hosts[host];
        if (vm->host != (int)host)
            continue;
        if (h->cpu_mhz > 0)
            l += q.cpu_weight * vm->cpu_mhz / h->cpu_mhz;
        if (h->mem_mb > 0)
            l += q.mem_weight * vm->mem_demand_mb / h->mem_mb;
    }
    return l;
}

double drs_imbalance(const struct drs_cluster *c, const struct drs_params *p)
{
    double s1 = 0, s2 = 0;
    size_t k = 0;

    for (size_t h = 0; h < c->n_hosts; h++) {
        if (!c->hosts[h].usable)
            continue;
        double l = drs_host_load(c, p, h);
        s1 += l;
        s2 += l * l;
        k++;
    }
    if (!k)
        return 0;
    double m = s1 / (double)k, v = s2 / (double)k - m * m;
    return v > 0 ? sqrt(v) : 0;
}

bool drs_vm_fits(const struct drs_cluster *c, size_t vm, size_t host)
{
    struct drs_params p = { 0 };
    struct st s;
    bool ok;

    if (vm >= c->n_vms || host >= c->n_hosts ||
        st_init(&s, (struct drs_cluster *)c, &p))
        return false;
    ok = fits(&s, vm, host, 0);
    st_free(&s);
    return ok;
}

size_t drs_hard_violations(const struct drs_cluster *c)
{
    size_t n = 0;

    for (size_t r = 0; r < c->n_rules; r++) {
        const struct drs_rule *ru = &c->rules[r];
        for (size_t i = 0; i < ru->n_vms; i++) {
            int v = ru->vms[i];
            if (v < 0 || (size_t)v >= c->n_vms || c->vms[v].host < 0)
                continue;
            int h = c->vms[v].host;
            bool in = false;
            for (size_t j = 0; j < ru->n_hosts; j++)
                in |= ru->hosts[j] == h;
            if ((ru->kind == DRS_VM_HOST_MUST && !in) || (ru->kind == DRS_VM_HOST_MUST_NOT && in))
                n++;
            for (size_t j = i + 1; j < ru->n_vms; j++) {
                int u = ru->vms[j];
                if (u < 0 || (size_t)u >= c->n_vms || c->vms[u].host < 0)
                    continue;
                if (ru->kind == DRS_VM_ANTI_AFFINITY && c->vms[u].host == h)
                    n++;
                if (ru->kind == DRS_VM_AFFINITY && c->vms[u].host != h)
                    n++;
            }
        }
    }
    return n;
}
