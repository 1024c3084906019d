/* vmkd resource policy: host capacity parsing, shares/limit mapping,
 * admission control of reservations. */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmkernel-kvm/sched.h"

static void write_text(const char *dir, const char *name, const char *text)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_capacity_from_proc(void **state)
{
    char dir[] = "/tmp/test_vmkd_sched.XXXXXX";
    assert_non_null(mkdtemp(dir));
    write_text(dir, "cpuinfo",
               "processor\t: 0\nmodel name\t: X\ncpu MHz\t\t: 2596.144\n\n"
               "processor\t: 1\nmodel name\t: X\ncpu MHz\t\t: 2596.144\n\n"
               "processor\t: 2\ncpu MHz\t\t: 1200.000\n");
    write_text(dir, "meminfo", "MemTotal:       24684084 kB\nMemFree:  1 kB\n");
    struct kvc_host_capacity c;
    assert_int_equal(kvc_sched_host_capacity(dir, &c), 0);
    assert_int_equal(c.ncpus, 3);
    assert_int_equal(c.cpu_mhz, 2596);
    assert_int_equal(c.mem_bytes, 24684084ull * 1024);
    assert_int_equal(kvc_host_cpu_mhz_total(&c), 3 * 2596);

    /* No MHz reported (some virtual machines): 1000 MHz per CPU. */
    write_text(dir, "cpuinfo", "processor\t: 0\n");
    assert_int_equal(kvc_sched_host_capacity(dir, &c), 0);
    assert_int_equal(c.cpu_mhz, 1000);
    /* Garbage meminfo is an error, not a zero-sized host. */
    write_text(dir, "meminfo", "nonsense\n");
    assert_int_equal(kvc_sched_host_capacity(dir, &c), -EINVAL);

    char p[600];
    snprintf(p, sizeof(p), "%s/cpuinfo", dir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/meminfo", dir);
    unlink(p);
    rmdir(dir);

    /* The real machine. */
    assert_int_equal(kvc_sched_host_capacity(NULL, &c), 0);
    assert_true(c.ncpus >= 1);
    assert_true(c.mem_bytes > 0);
}

static void test_shares_mapping(void **state)
{
    /* Default: normal = 1000 per vCPU. */
    assert_int_equal(kvc_sched_shares_to_v1(0, 1), 1024);
    assert_int_equal(kvc_sched_shares_to_v1(0, 2), 2048);
    assert_int_equal(kvc_sched_shares_to_v2(0, 1), 100);
    /* Ratios are kept: high:normal:low = 2000:1000:500. */
    assert_int_equal(kvc_sched_shares_to_v1(2000, 1), 2 * kvc_sched_shares_to_v1(1000, 1));
    assert_int_equal(kvc_sched_shares_to_v1(1000, 1), 2 * kvc_sched_shares_to_v1(500, 1));
    assert_int_equal(kvc_sched_shares_to_v2(2000, 1), 2 * kvc_sched_shares_to_v2(1000, 1));
    /* Clamped to what the kernel accepts. */
    assert_int_equal(kvc_sched_shares_to_v1(1, 1), 2);
    assert_int_equal(kvc_sched_shares_to_v1(1000000, 1), 262144);
    assert_int_equal(kvc_sched_shares_to_v2(1, 1), 1);
    assert_int_equal(kvc_sched_shares_to_v2(1000000, 1), 10000);
}

static void test_quota(void **state)
{
    struct kvc_host_capacity c = { .ncpus = 2, .cpu_mhz = 2000, .mem_bytes = 1ull << 30 };
    struct kvc_res_alloc a;
    kvc_res_alloc_default(&a);
    assert_int_equal(kvc_sched_quota_us(&a, &c, 100000), -1);
    a.cpu_limit_mhz = 500;                  /* a quarter of one 2000 MHz CPU */
    assert_int_equal(kvc_sched_quota_us(&a, &c, 100000), 25000);
    a.cpu_limit_mhz = 3000;                 /* 1.5 CPUs */
    assert_int_equal(kvc_sched_quota_us(&a, &c, 100000), 150000);
    a.cpu_limit_pct = 50;                   /* the lower of both limits wins */
    assert_int_equal(kvc_sched_quota_us(&a, &c, 100000), 50000);
    a.cpu_limit_mhz = KVC_UNLIMITED;
    a.cpu_limit_pct = 250;
    assert_int_equal(kvc_sched_quota_us(&a, &c, 100000), 250000);
    a.cpu_limit_pct = KVC_UNLIMITED;
    a.cpu_limit_mhz = 1;                    /* below the kernel's 1 ms minimum */
    assert_int_equal(kvc_sched_quota_us(&a, &c, 100000), 1000);
}

static void test_alloc_check(void **state)
{
    char why[256];
    struct kvc_res_alloc a;
    kvc_res_alloc_default(&a);
    assert_int_equal(kvc_res_alloc_check(&a, why, sizeof(why)), 0);
    a.cpu_limit_mhz = 100;
    a.cpu_reservation_mhz = 200;
    assert_int_equal(kvc_res_alloc_check(&a, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, "exceeds the limit"));
    kvc_res_alloc_default(&a);
    a.mem_limit_mb = 64;
    a.mem_reservation_mb = 128;
    assert_int_equal(kvc_res_alloc_check(&a, why, sizeof(why)), -EINVAL);
    kvc_res_alloc_default(&a);
    a.cpu_limit_pct = -5;
    assert_int_equal(kvc_res_alloc_check(&a, why, sizeof(why)), -EINVAL);
    kvc_res_alloc_default(&a);
    a.cpu_shares = 2000000;
    assert_int_equal(kvc_res_alloc_check(&a, why, sizeof(why)), -EINVAL);
}

static void test_admission(void **state)
{
    char why[512];
    struct kvc_admission ad = {
        .cap = { .ncpus = 2, .cpu_mhz = 2500, .mem_bytes = 8ull << 30 },
        .reserve_cpu_mhz = 1000,
        .reserve_mem_mb = 1024,
    };
    assert_int_equal(kvc_admission_cpu_avail(&ad), 4000);
    assert_int_equal(kvc_admission_mem_avail(&ad), 7168);
    assert_int_equal(kvc_admission_take(&ad, 3000, 4096, why, sizeof(why)), 0);
    assert_int_equal(kvc_admission_cpu_avail(&ad), 1000);
    /* A second VM asking more CPU than is left is refused, and nothing changes. */
    assert_int_equal(kvc_admission_take(&ad, 1500, 0, why, sizeof(why)), -ENOSPC);
    assert_non_null(strstr(why, "insufficient CPU resources"));
    assert_non_null(strstr(why, "1500 MHz"));
    assert_non_null(strstr(why, "available 1000 MHz"));
    assert_int_equal(ad.used_cpu_mhz, 3000);
    assert_int_equal(kvc_admission_take(&ad, 0, 4000, why, sizeof(why)), -ENOSPC);
    assert_non_null(strstr(why, "insufficient memory resources"));
    assert_int_equal(ad.used_mem_mb, 4096);
    /* Exactly what is left fits. */
    assert_int_equal(kvc_admission_take(&ad, 1000, 3072, why, sizeof(why)), 0);
    assert_int_equal(kvc_admission_cpu_avail(&ad), 0);
    kvc_admission_release(&ad, 1000, 3072);
    /* Changing a reservation is all or nothing. */
    assert_int_equal(kvc_admission_change(&ad, 3000, 4096, 5000, 4096, why, sizeof(why)), -ENOSPC);
    assert_int_equal(ad.used_cpu_mhz, 3000);
    assert_int_equal(kvc_admission_change(&ad, 3000, 4096, 4000, 1024, why, sizeof(why)), 0);
    assert_int_equal(ad.used_cpu_mhz, 4000);
    assert_int_equal(ad.used_mem_mb, 1024);
    kvc_admission_release(&ad, 4000, 1024);
    assert_int_equal(ad.used_cpu_mhz, 0);
    /* A host reserve larger than the host leaves nothing, without underflow. */
    ad.reserve_cpu_mhz = 100000;
    assert_int_equal(kvc_admission_cpu_avail(&ad), 0);
    assert_int_equal(kvc_admission_take(&ad, 1, 0, why, sizeof(why)), -ENOSPC);
    assert_int_equal(kvc_admission_take(&ad, 0, 0, why, sizeof(why)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_capacity_from_proc),
        cmocka_unit_test(test_shares_mapping),
        cmocka_unit_test(test_quota),
        cmocka_unit_test(test_alloc_check),
        cmocka_unit_test(test_admission),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
