/* The DRS algorithm (vpxd/drs_algo.c): balancing, rules, cost-benefit,
 * determinism, placement, evacuation. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vpxd/drs.h"

#define MAXH 16
#define MAXV 256

struct fixture {
    struct drs_host hosts[MAXH];
    struct drs_vm vms[MAXV];
    struct drs_rule rules[8];
    int members[8][32];
    int hmembers[8][8];
    struct drs_cluster c;
    struct drs_move moves[128];
};

static void cluster(struct fixture *f, size_t nh)
{
    memset(f, 0, sizeof(*f));
    for (size_t i = 0; i < nh; i++)
        f->hosts[i] = (struct drs_host){ .id = "h", .cpu_mhz = 16 * 2000.0, .mem_mb = 65536,
                                         .cpu_threads = 32, .usable = true };
    f->c.hosts = f->hosts;
    f->c.n_hosts = nh;
    f->c.vms = f->vms;
    f->c.rules = f->rules;
}

static int add_vm(struct fixture *f, int host, double cpu, double mem)
{
    size_t i = f->c.n_vms++;

    f->vms[i] = (struct drs_vm){ .id = "v", .host = host, .cpu_mhz = cpu, .mem_mb = mem,
                                 .mem_demand_mb = mem / 2, .dirty_mbps = mem / 1000,
                                 .cpu_count = 2, .movable = true };
    return (int)i;
}

static void add_rule(struct fixture *f, enum drs_rule_kind k, const int *vms, size_t nv,
                     const int *hosts, size_t nh)
{
    size_t r = f->c.n_rules++;

    memcpy(f->members[r], vms, nv * sizeof(int));
    if (nh)
        memcpy(f->hmembers[r], hosts, nh * sizeof(int));
    f->rules[r] = (struct drs_rule){ .id = "r", .kind = k, .vms = f->members[r], .n_vms = nv,
                                     .hosts = f->hmembers[r], .n_hosts = nh };
}

/* No host holds more memory than it has. */
static void assert_capacity(const struct fixture *f)
{
    for (size_t h = 0; h < f->c.n_hosts; h++) {
        double used = 0;
        for (size_t v = 0; v < f->c.n_vms; v++)
            if (f->vms[v].host == (int)h)
                used += f->vms[v].mem_mb;
        assert_true(used <= f->hosts[h].mem_mb);
    }
}

static void test_balances_skewed_cluster(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct drs_params p = { .threshold = 3 };

    cluster(f, 4);
    for (int i = 0; i < 24; i++)
        add_vm(f, 0, 1000, 2048);
    double before = drs_imbalance(&f->c, &p);
    int n = drs_recommend(&f->c, &p, f->moves, 128);
    double after = drs_imbalance(&f->c, &p);
    assert_true(n > 0);
    assert_true(before > 0.2);
    assert_true(after <= drs_target_imbalance(3));
    assert_true(after < before / 2);
    for (int i = 0; i < n; i++) {
        assert_int_equal(f->moves[i].reason, DRS_REASON_BALANCE);
        assert_true(f->moves[i].gain > 0);
        assert_true(f->moves[i].gain * 4 * 300 > f->moves[i].cost);
        assert_true(f->moves[i].migration_ms > 0);
    }
    assert_capacity(f);
    free(f);
}

static void test_anti_affinity_kept_and_fixed(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct drs_params p = { .threshold = 5 };
    int a, b, c;

    cluster(f, 3);
    a = add_vm(f, 0, 8000, 4096);
    b = add_vm(f, 0, 8000, 4096);      /* violates: same host as a */
    c = add_vm(f, 1, 8000, 4096);
    for (int i = 0; i < 10; i++)
        add_vm(f, 2, 2000, 1024);
    int ab[] = { a, b, c };
    add_rule(f, DRS_VM_ANTI_AFFINITY, ab, 3, NULL, 0);
    assert_int_equal(drs_hard_violations(&f->c), 1);
    int n = drs_recommend(&f->c, &p, f->moves, 128);
    assert_true(n > 0);
    assert_int_equal(f->moves[0].vm, b);
    assert_int_equal(f->moves[0].reason, DRS_REASON_RULE);
    assert_int_equal(drs_hard_violations(&f->c), 0);
    assert_true(f->vms[a].host != f->vms[b].host);
    assert_true(f->vms[a].host != f->vms[c].host);
    assert_true(f->vms[b].host != f->vms[c].host);
    free(f);
}

static void test_must_rules_never_violated(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct drs_params p = { .threshold = 5 };
    int pinned[6], only0[] = { 0 }, wrong;

    cluster(f, 4);
    /* Host 0 is overloaded, but its VMs must stay. */
    for (int i = 0; i < 6; i++)
        pinned[i] = add_vm(f, 0, 4000, 4096);
    add_rule(f, DRS_VM_HOST_MUST, pinned, 6, only0, 1);
    /* One must not run on host 3, and does. */
    wrong = add_vm(f, 3, 500, 512);
    int w[] = { wrong }, h3[] = { 3 };
    add_rule(f, DRS_VM_HOST_MUST_NOT, w, 1, h3, 1);
    for (int i = 0; i < 4; i++)
        add_vm(f, 1, 1000, 1024);
    assert_int_equal(drs_hard_violations(&f->c), 1);
    int n = drs_recommend(&f->c, &p, f->moves, 128);
    assert_true(n >= 1);
    assert_int_equal(drs_hard_violations(&f->c), 0);
    for (int i = 0; i < 6; i++)
        assert_int_equal(f->vms[pinned[i]].host, 0);
    assert_true(f->vms[wrong].host != 3);
    for (int i = 0; i < n; i++) {
        assert_true(f->moves[i].vm != pinned[0] && f->moves[i].vm != pinned[5]);
        if (f->moves[i].vm == wrong)
            assert_true(f->moves[i].to != 3);
    }
    free(f);
}

static void test_no_move_when_gain_below_cost(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    /* Aim as low as moves can get: only the cost can stop it. */
    struct drs_params p = { .threshold = 5, .target_override = -1 };

    /* A small imbalance: host 0 has two small VMs more; moving one would
     * even it out but gains less than copying it costs. */
    cluster(f, 2);
    for (int i = 0; i < 8; i++) {
        add_vm(f, 0, 1000, 4096);
        add_vm(f, 1, 1000, 4096);
    }
    for (int i = 0; i < 2; i++) {
        /* Small in demand, large to copy (16 GiB: over two minutes at 1 GbE). */
        int v = add_vm(f, 0, 20, 16384);
        f->vms[v].mem_demand_mb = 100;
        f->vms[v].dirty_mbps = 1;
    }
    assert_true(drs_imbalance(&f->c, &p) > 0);
    assert_int_equal(drs_recommend(&f->c, &p, f->moves, 128), 0);
    /* The same with cost ignored does move something. */
    struct drs_params q = p;
    q.no_cost = true;
    assert_true(drs_recommend(&f->c, &q, f->moves, 128) > 0);
    free(f);
}

static void test_non_converging_vm_never_moves(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct drs_params p = { .threshold = 5 };

    cluster(f, 2);
    for (int i = 0; i < 4; i++) {
        int v = add_vm(f, 0, 6000, 8192);
        f->vms[v].dirty_mbps = 500;     /* faster than a 1 GbE link */
    }
    assert_true(drs_imbalance(&f->c, &p) > 0.2);
    assert_int_equal(drs_migration_ms(8192, 500, 119.2, 500), -1);
    assert_int_equal(drs_recommend(&f->c, &p, f->moves, 128), 0);
    free(f);
}

static void test_deterministic(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f)), *g = calloc(1, sizeof(*g));
    struct drs_params p = { .threshold = 4 };
    unsigned seed = 7;

    cluster(f, 6);
    for (int i = 0; i < 120; i++) {
        seed = seed * 1103515245u + 12345u;
        add_vm(f, (int)((seed >> 16) % 2), 200 + (seed >> 8) % 3000, 512 + (seed >> 4) % 2048);
    }
    memcpy(g, f, sizeof(*f));
    g->c.hosts = g->hosts;
    g->c.vms = g->vms;
    g->c.rules = g->rules;
    int n1 = drs_recommend(&f->c, &p, f->moves, 128);
    int n2 = drs_recommend(&g->c, &p, g->moves, 128);
    assert_true(n1 > 0);
    assert_int_equal(n1, n2);
    for (int i = 0; i < n1; i++) {
        assert_int_equal(f->moves[i].vm, g->moves[i].vm);
        assert_int_equal(f->moves[i].to, g->moves[i].to);
        assert_true(f->moves[i].gain == g->moves[i].gain);
    }
    assert_capacity(f);
    free(f);
    free(g);
}

static void test_evacuates_unusable_host(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct drs_params p = { .threshold = 1 };   /* mandatory moves only */

    cluster(f, 3);
    for (int i = 0; i < 5; i++)
        add_vm(f, 2, 1000, 4096);
    add_vm(f, 0, 1000, 4096);
    f->hosts[2].usable = false;
    int n = drs_recommend(&f->c, &p, f->moves, 128);
    assert_int_equal(n, 5);
    for (int i = 0; i < n; i++)
        assert_int_equal(f->moves[i].reason, DRS_REASON_EVACUATE);
    for (size_t v = 0; v < f->c.n_vms; v++)
        assert_true(f->vms[v].host != 2);
    free(f);
}

static void test_placement(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct drs_params p = { .threshold = 3 };

    cluster(f, 3);
    add_vm(f, 0, 8000, 8192);
    add_vm(f, 1, 2000, 8192);
    int a = add_vm(f, 2, 100, 1024);
    int nv = add_vm(f, -1, 1000, 2048);
    /* The least loaded host... */
    assert_int_equal(drs_place(&f->c, &p, (size_t)nv), 2);
    /* ...unless anti-affinity with its VM forbids it. */
    int pair[] = { a, nv };
    add_rule(f, DRS_VM_ANTI_AFFINITY, pair, 2, NULL, 0);
    assert_int_equal(drs_place(&f->c, &p, (size_t)nv), 1);
    /* Nothing fits a VM larger than any host's free memory. */
    f->vms[nv].mem_mb = 70000;
    assert_int_equal(drs_place(&f->c, &p, (size_t)nv), -ENOSPC);
    free(f);
}

static void test_migration_model(void **state)
{
    /* 1 GiB, almost idle, over 1 GbE: about 8.6 s of copying. */
    int64_t t = drs_migration_ms(1024, 1, 119.2, 500);
    assert_true(t > 8000 && t < 9500);
    /* More dirtying takes longer. */
    assert_true(drs_migration_ms(1024, 50, 119.2, 500) > t);
    assert_int_equal(drs_migration_ms(1024, 1, 0, 500), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_balances_skewed_cluster),
        cmocka_unit_test(test_anti_affinity_kept_and_fixed),
        cmocka_unit_test(test_must_rules_never_violated),
        cmocka_unit_test(test_no_move_when_gain_below_cost),
        cmocka_unit_test(test_non_converging_vm_never_moves),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_evacuates_unusable_host),
        cmocka_unit_test(test_placement),
        cmocka_unit_test(test_migration_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
