/* Resource pool admission arithmetic (vpxd/rp.c): fixed and expandable
 * reservations, nested pools, limits, reservation changes, share values. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "vpxd/rp.h"

static char why[512];

/* root (capacity CAP MHz and MB) */
static int pool(struct rp_tree *t, const char *id, int parent, int64_t res, bool exp,
                int64_t limit)
{
    int i = rp_add(t, id, parent);

    assert_true(i >= 0);
    for (int k = 0; k < 2; k++) {
        t->n[i].reservation[k] = res;
        t->n[i].expandable[k] = exp;
        t->n[i].limit[k] = limit;
    }
    return i;
}

static void test_fixed(void **state)
{
    struct rp_tree t = { 0 };
    int root = pool(&t, "root", -1, 10000, false, -1);
    int a = pool(&t, "a", root, 3000, false, -1);

    (void)state;
    assert_int_equal(rp_admit(&t, a, RP_CPU, 3000, why, sizeof(why)), 0);
    assert_int_equal(rp_admit(&t, a, RP_CPU, 3001, why, sizeof(why)), -ENOSPC);
    assert_non_null(strstr(why, "resource pool a"));
    t.n[a].vms[RP_CPU] = 2000;
    assert_int_equal(rp_admit(&t, a, RP_CPU, 1000, why, sizeof(why)), 0);
    assert_int_equal(rp_admit(&t, a, RP_CPU, 1001, why, sizeof(why)), -ENOSPC);
    /* A fixed pool's demand on the root is its reservation, whatever it uses. */
    assert_int_equal(rp_demand(&t, a, RP_CPU), 3000);
    assert_int_equal(rp_used(&t, root, RP_CPU), 3000);
    assert_int_equal(rp_admit(&t, root, RP_CPU, 7000, why, sizeof(why)), 0);
    assert_int_equal(rp_admit(&t, root, RP_CPU, 7001, why, sizeof(why)), -ENOSPC);
    rp_tree_free(&t);
}

static void test_expandable(void **state)
{
    struct rp_tree t = { 0 };
    int root = pool(&t, "root", -1, 10000, false, -1);
    int a = pool(&t, "a", root, 2000, true, -1);
    int b = pool(&t, "b", root, 5000, false, -1);

    (void)state;
    /* a borrows from the root what b does not hold: 10000 - 5000 - 2000. */
    assert_int_equal(rp_admit(&t, a, RP_MEM, 5000, why, sizeof(why)), 0);
    assert_int_equal(rp_admit(&t, a, RP_MEM, 5001, why, sizeof(why)), -ENOSPC);
    assert_non_null(strstr(why, "resource pool root"));
    t.n[a].vms[RP_MEM] = 4000;          /* borrowed 2000 */
    assert_int_equal(rp_demand(&t, a, RP_MEM), 4000);
    assert_int_equal(rp_used(&t, root, RP_MEM), 9000);
    assert_int_equal(rp_admit(&t, a, RP_MEM, 1000, why, sizeof(why)), 0);
    assert_int_equal(rp_admit(&t, a, RP_MEM, 1001, why, sizeof(why)), -ENOSPC);
    /* b is fixed: its own reservation only. */
    assert_int_equal(rp_admit(&t, b, RP_MEM, 5001, why, sizeof(why)), -ENOSPC);
    rp_tree_free(&t);
}

static void test_nested(void **state)
{
    struct rp_tree t = { 0 };
    int root = pool(&t, "root", -1, 10000, false, -1);
    int fixed = pool(&t, "fixed", root, 4000, false, -1);
    int mid = pool(&t, "mid", fixed, 1000, true, -1);
    int leaf = pool(&t, "leaf", mid, 0, true, -1);

    (void)state;
    /* leaf -> mid -> fixed (stops there: 4000, not the root's 10000). */
    assert_int_equal(rp_admit(&t, leaf, RP_CPU, 4000, why, sizeof(why)), 0);
    assert_int_equal(rp_admit(&t, leaf, RP_CPU, 4001, why, sizeof(why)), -ENOSPC);
    assert_non_null(strstr(why, "resource pool fixed"));
    t.n[leaf].vms[RP_CPU] = 1500;       /* mid borrows 500 from fixed */
    assert_int_equal(rp_demand(&t, mid, RP_CPU), 1500);
    assert_int_equal(rp_used(&t, fixed, RP_CPU), 1500);
    assert_int_equal(rp_admit(&t, mid, RP_CPU, 2500, why, sizeof(why)), 0);
    assert_int_equal(rp_admit(&t, mid, RP_CPU, 2501, why, sizeof(why)), -ENOSPC);
    /* Made expandable, fixed may grow into the root. */
    t.n[fixed].expandable[RP_CPU] = true;
    assert_int_equal(rp_admit(&t, leaf, RP_CPU, 8500, why, sizeof(why)), 0);
    assert_int_equal(rp_admit(&t, leaf, RP_CPU, 8501, why, sizeof(why)), -ENOSPC);
    assert_non_null(strstr(why, "resource pool root"));
    rp_tree_free(&t);
}

static void test_limits(void **state)
{
    struct rp_tree t = { 0 };
    int root = pool(&t, "root", -1, 10000, false, -1);
    int a = pool(&t, "a", root, 1000, true, 3000);
    int b = pool(&t, "b", a, 0, true, -1);

    (void)state;
    /* An expandable pool reserves no more than its limit. */
    assert_int_equal(rp_admit(&t, b, RP_CPU, 3000, why, sizeof(why)), 0);
    assert_int_equal(rp_admit(&t, b, RP_CPU, 3001, why, sizeof(why)), -ENOSPC);
    assert_non_null(strstr(why, "limit"));
    /* A limit below the reservation is refused. */
    assert_int_equal(rp_check_change(&t, a, RP_CPU, 2000, true, 1999, why, sizeof(why)),
                     -EINVAL);
    assert_int_equal(rp_check_change(&t, a, RP_CPU, 2000, true, 2000, why, sizeof(why)), 0);
    /* ... and one below what the children hold. */
    t.n[b].vms[RP_CPU] = 2500;
    assert_int_equal(rp_check_change(&t, a, RP_CPU, 1000, true, 2400, why, sizeof(why)),
                     -ENOSPC);
    assert_int_equal(rp_check_change(&t, a, RP_CPU, 1000, true, 2500, why, sizeof(why)), 0);
    rp_tree_free(&t);
}

static void test_change(void **state)
{
    struct rp_tree t = { 0 };
    int root = pool(&t, "root", -1, 10000, false, -1);
    int p = pool(&t, "p", root, 6000, false, -1);
    int a = pool(&t, "a", p, 2000, false, -1);
    int b = pool(&t, "b", p, 3000, true, -1);

    (void)state;
    /* p has 1000 unreserved: a may grow by that much, not more. */
    assert_int_equal(rp_check_change(&t, a, RP_MEM, 3000, false, -1, why, sizeof(why)), 0);
    assert_int_equal(rp_check_change(&t, a, RP_MEM, 3001, false, -1, why, sizeof(why)),
                     -ENOSPC);
    assert_non_null(strstr(why, "resource pool p"));
    /* Shrinking is always fine while the children fit. */
    assert_int_equal(rp_check_change(&t, a, RP_MEM, 0, false, -1, why, sizeof(why)), 0);
    /* A fixed reservation below what the children hold is refused; an
     * expandable one keeps what it holds, so it is fine. */
    t.n[b].vms[RP_MEM] = 2500;
    assert_int_equal(rp_check_change(&t, b, RP_MEM, 2000, false, -1, why, sizeof(why)),
                     -ENOSPC);
    assert_int_equal(rp_check_change(&t, b, RP_MEM, 2000, true, -1, why, sizeof(why)), 0);
    /* p may grow to what the root has left: 10000. */
    assert_int_equal(rp_check_change(&t, p, RP_MEM, 10000, false, -1, why, sizeof(why)), 0);
    assert_int_equal(rp_check_change(&t, p, RP_MEM, 10001, false, -1, why, sizeof(why)),
                     -ENOSPC);
    rp_tree_free(&t);
}

static void test_shares(void **state)
{
    (void)state;
    assert_int_equal(rp_pool_shares("LOW", RP_CPU, 0), 2000);
    assert_int_equal(rp_pool_shares("NORMAL", RP_CPU, 0), 4000);
    assert_int_equal(rp_pool_shares("HIGH", RP_CPU, 0), 8000);
    assert_int_equal(rp_pool_shares("LOW", RP_MEM, 0), 81920);
    assert_int_equal(rp_pool_shares("NORMAL", RP_MEM, 0), 163840);
    assert_int_equal(rp_pool_shares("HIGH", RP_MEM, 0), 327680);
    assert_int_equal(rp_pool_shares("CUSTOM", RP_CPU, 1234), 1234);
    assert_int_equal(rp_vm_shares("NORMAL", RP_CPU, 2, 0), 2000);
    assert_int_equal(rp_vm_shares("HIGH", RP_MEM, 1024, 0), 20480);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed),
        cmocka_unit_test(test_expandable),
        cmocka_unit_test(test_nested),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_change),
        cmocka_unit_test(test_shares),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
