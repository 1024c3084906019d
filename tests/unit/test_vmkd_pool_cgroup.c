/* Resource pool cgroups (kvc_cg_group_create, vmkernel-kvm/cgroup.c) on fake
 * v1 and v2 trees: nested pools, a VM inside a pool, v2 delegation of the
 * controllers by pools (not by VMs), bad paths refused. */
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

#include "vmkernel-kvm/cgroup.h"

static char tmp[64];

static void put(const char *rel, const char *text)
{
    char p[512], cmd[600];
    snprintf(p, sizeof(p), "%s/%s", tmp, rel);
    char *slash = strrchr(p, '/');
    *slash = '\0';
    snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", p);
    assert_int_equal(system(cmd), 0);
    *slash = '/';
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* The whole file (fake writes append), newlines as ' '. */
static const char *slurp(const char *rel)
{
    static char buf[4096];
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", tmp, rel);
    FILE *f = fopen(p, "r");
    if (!f)
        return NULL;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    for (char *c = buf; *c; c++)
        if (*c == '\n')
            *c = ' ';
    return buf;
}

static bool isdir(const char *rel)
{
    char p[512];
    struct stat st;
    snprintf(p, sizeof(p), "%s/%s", tmp, rel);
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int setup_tmp(void **state)
{
    (void)state;
    snprintf(tmp, sizeof(tmp), "/tmp/test_vmkd_pool.XXXXXX");
    return mkdtemp(tmp) ? 0 : -1;
}

static int teardown_tmp(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_v1_nested(void **state)
{
    (void)state;
    put("cpu/cpu.shares", "1024\n");
    put("cpuacct/cpuacct.usage", "0\n");
    put("memory/memory.limit_in_bytes", "9223372036854771712\n");
    struct kvc_cg_root_opts o = { .fsroot = tmp, .parent = "kvc", .fake = true };
    struct kvc_cg_root *r;
    struct kvc_cg_vm *a, *b, *vm;
    assert_int_equal(kvc_cg_root_open(&o, &r), 0);
    assert_int_equal(kvc_cg_group_create(r, "rp-a", true, &a), 0);
    assert_int_equal(kvc_cg_group_create(r, "rp-a/rp-b", true, &b), 0);
    assert_int_equal(kvc_cg_group_create(r, "rp-a/rp-b/vm1", false, &vm), 0);
    /* Each hierarchy nests the same way. */
    assert_true(isdir("cpu/kvc/rp-a/rp-b/vm1"));
    assert_true(isdir("cpuacct/kvc/rp-a/rp-b/vm1"));
    assert_true(isdir("memory/kvc/rp-a/rp-b/vm1"));
    assert_non_null(strstr(kvc_cg_vm_path(b), "/cpu/kvc/rp-a/rp-b"));
    assert_int_equal(kvc_cg_vm_set_weight(b, 8192), 0);
    assert_string_equal(slurp("cpu/kvc/rp-a/rp-b/cpu.shares"), "8192 ");
    assert_int_equal(kvc_cg_vm_set_quota(a, 50000, 100000), 0);
    assert_string_equal(slurp("cpu/kvc/rp-a/cpu.cfs_quota_us"), "-1 50000 ");
    assert_int_equal(kvc_cg_vm_set_mem_limit(a, 256 << 20), 0);
    assert_string_equal(slurp("memory/kvc/rp-a/memory.limit_in_bytes"), "268435456 ");
    /* v1 has no delegation: nothing written to a subtree_control. */
    assert_null(slurp("cpu/kvc/rp-a/cgroup.subtree_control"));
    /* Removal is leaf first; destroy removes only the last level. */
    assert_int_equal(kvc_cg_vm_destroy(vm), 0);
    assert_false(isdir("cpu/kvc/rp-a/rp-b/vm1"));
    assert_true(isdir("cpu/kvc/rp-a/rp-b"));
    assert_int_equal(kvc_cg_vm_destroy(b), 0);
    assert_int_equal(kvc_cg_vm_destroy(a), 0);
    assert_false(isdir("cpu/kvc/rp-a"));
    kvc_cg_root_close(r, true);
}

static void test_v2_delegation(void **state)
{
    (void)state;
    put("cgroup.controllers", "cpuset cpu io memory pids\n");
    put("cgroup.subtree_control", "");
    struct kvc_cg_root_opts o = { .fsroot = tmp, .parent = "kvc", .fake = true };
    struct kvc_cg_root *r;
    struct kvc_cg_vm *a, *b, *vm;
    assert_int_equal(kvc_cg_root_open(&o, &r), 0);
    assert_int_equal(kvc_cg_root_version(r), KVC_CG_V2);
    assert_int_equal(kvc_cg_group_create(r, "rp-a", true, &a), 0);
    assert_int_equal(kvc_cg_group_create(r, "rp-a/rp-b", true, &b), 0);
    assert_int_equal(kvc_cg_group_create(r, "rp-a/rp-b/vm1", false, &vm), 0);
    /* Pools pass cpu and memory on to their children; a VM does not. */
    assert_string_equal(slurp("kvc/rp-a/cgroup.subtree_control"), "+cpu +memory ");
    assert_string_equal(slurp("kvc/rp-a/rp-b/cgroup.subtree_control"),
                        "+cpu +memory ");
    const char *v = slurp("kvc/rp-a/rp-b/vm1/cgroup.subtree_control");
    assert_true(!v || !*v);
    assert_int_equal(kvc_cg_vm_set_weight(a, 400), 0);
    assert_string_equal(slurp("kvc/rp-a/cpu.weight"), "400 ");
    assert_int_equal(kvc_cg_vm_set_quota(b, 100000, 100000), 0);
    assert_string_equal(slurp("kvc/rp-a/rp-b/cpu.max"), "100000 100000 ");
    assert_int_equal(kvc_cg_vm_set_mem_reservation(b, 1 << 20), 0);
    assert_string_equal(slurp("kvc/rp-a/rp-b/memory.min"), "1048576 ");
    assert_int_equal(kvc_cg_vm_destroy(vm), 0);
    assert_int_equal(kvc_cg_vm_destroy(b), 0);
    assert_int_equal(kvc_cg_vm_destroy(a), 0);
    kvc_cg_root_close(r, true);
}

static void test_bad_paths(void **state)
{
    (void)state;
    put("cpu/cpu.shares", "1024\n");
    struct kvc_cg_root_opts o = { .fsroot = tmp, .parent = "kvc", .fake = true };
    struct kvc_cg_root *r;
    struct kvc_cg_vm *g = (void *)1;
    static const char *const bad[] = { "", "/abs", "../up", "a/../b", "a/./b", ".hidden",
                                       "a/", "a//b", "a/b c", "a\nb", NULL };
    assert_int_equal(kvc_cg_root_open(&o, &r), 0);
    for (int i = 0; bad[i]; i++) {
        assert_int_equal(kvc_cg_group_create(r, bad[i], true, &g), -EINVAL);
        assert_null(g);
    }
    assert_false(isdir("up"));
    assert_false(isdir("cpu/kvc/a"));
    kvc_cg_root_close(r, true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_v1_nested, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_v2_delegation, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_bad_paths, setup_tmp, teardown_tmp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
