/* vmkd cgroup placement: layout detection and control files on fake v1 and
 * v2 trees, then the real cgroup file system of this machine (as root). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmkernel-kvm/cgroup.h"

static char tmp[64];

static void put(const char *rel, const char *text)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", tmp, rel);
    char *slash = strrchr(p, '/');
    *slash = '\0';
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", p);
    assert_int_equal(system(cmd), 0);
    *slash = '/';
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Last line of a control file written in fake mode (writes append). */
static const char *last_line(const char *path)
{
    static char buf[4096];
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n && buf[n - 1] == '\n')
        buf[--n] = '\0';
    char *nl = strrchr(buf, '\n');
    return nl ? nl + 1 : buf;
}

static int setup_tmp(void **state)
{
    snprintf(tmp, sizeof(tmp), "/tmp/test_vmkd_cg.XXXXXX");
    return mkdtemp(tmp) ? 0 : -1;
}

static int teardown_tmp(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_fake_v1(void **state)
{
    /* This machine's layout: one mount per controller and a controller-less
     * cgroup2 at unified/ that must be ignored. */
    put("cpu/cpu.shares", "1024\n");
    put("cpuacct/cpuacct.usage", "0\n");
    put("memory/memory.limit_in_bytes", "9223372036854771712\n");
    put("unified/cgroup.controllers", "\n");
    struct kvc_cg_root_opts o = { .fsroot = tmp, .parent = "kvc-test/host1", .fake = true };
    struct kvc_cg_root *r;
    assert_int_equal(kvc_cg_root_open(&o, &r), 0);
    assert_int_equal(kvc_cg_root_version(r), KVC_CG_V1);
    assert_true(kvc_cg_root_has_memory(r));

    struct kvc_cg_vm *vm;
    assert_int_equal(kvc_cg_vm_create(r, "vm-1", &vm), 0);
    char p[512];
    snprintf(p, sizeof(p), "%s/cpu/kvc-test/host1/vm-1", tmp);
    assert_string_equal(kvc_cg_vm_path(vm), p);
    assert_int_equal(kvc_cg_vm_set_weight(vm, 2048), 0);
    snprintf(p, sizeof(p), "%s/cpu/kvc-test/host1/vm-1/cpu.shares", tmp);
    assert_string_equal(last_line(p), "2048");
    assert_int_equal(kvc_cg_vm_set_quota(vm, 25000, 100000), 0);
    snprintf(p, sizeof(p), "%s/cpu/kvc-test/host1/vm-1/cpu.cfs_period_us", tmp);
    assert_string_equal(last_line(p), "100000");
    snprintf(p, sizeof(p), "%s/cpu/kvc-test/host1/vm-1/cpu.cfs_quota_us", tmp);
    assert_string_equal(last_line(p), "25000");
    assert_int_equal(kvc_cg_vm_set_quota(vm, -1, 100000), 0);
    assert_string_equal(last_line(p), "-1");
    assert_int_equal(kvc_cg_vm_set_quota(vm, 1000, 10), -EINVAL);
    assert_int_equal(kvc_cg_vm_set_mem_limit(vm, 64 << 20), 0);
    snprintf(p, sizeof(p), "%s/memory/kvc-test/host1/vm-1/memory.limit_in_bytes", tmp);
    assert_string_equal(last_line(p), "67108864");
    assert_int_equal(kvc_cg_vm_set_mem_reservation(vm, 32 << 20), 0);
    snprintf(p, sizeof(p), "%s/memory/kvc-test/host1/vm-1/memory.soft_limit_in_bytes", tmp);
    assert_string_equal(last_line(p), "33554432");
    assert_int_equal(kvc_cg_vm_attach(vm, 4242), 0);
    snprintf(p, sizeof(p), "%s/cpuacct/kvc-test/host1/vm-1/cgroup.procs", tmp);
    assert_string_equal(last_line(p), "4242");
    snprintf(p, sizeof(p), "%s/memory/kvc-test/host1/vm-1/cgroup.procs", tmp);
    assert_string_equal(last_line(p), "4242");
    int fds[4];
    assert_int_equal(kvc_cg_vm_procs_fds(vm, fds, 4), 3);
    for (int i = 0; i < 3; i++)
        close(fds[i]);
    assert_int_equal(kvc_cg_vm_procs_fds(vm, fds, 2), -EINVAL);

    /* Usage comes from cpuacct (its own mount) and memory. */
    put("cpuacct/kvc-test/host1/vm-1/cpuacct.usage", "123456789\n");
    put("cpu/kvc-test/host1/vm-1/cpu.stat", "nr_periods 10\nnr_throttled 4\nthrottled_time 999\n");
    put("memory/kvc-test/host1/vm-1/memory.usage_in_bytes", "4096\n");
    struct kvc_cg_usage u;
    assert_int_equal(kvc_cg_vm_usage(vm, &u), 0);
    assert_int_equal(u.cpu_ns, 123456789);
    assert_int_equal(u.nr_periods, 10);
    assert_int_equal(u.nr_throttled, 4);
    assert_int_equal(u.throttled_ns, 999);
    assert_int_equal(u.mem_bytes, 4096);

    /* Names that would escape the parent are refused. */
    struct kvc_cg_vm *bad;
    assert_int_equal(kvc_cg_vm_create(r, "../x", &bad), -EINVAL);
    assert_int_equal(kvc_cg_vm_create(r, "a/b", &bad), -EINVAL);
    assert_int_equal(kvc_cg_vm_create(r, "", &bad), -EINVAL);
    assert_int_equal(kvc_cg_vm_create(r, "..", &bad), -EINVAL);

    assert_int_equal(kvc_cg_vm_destroy(vm), 0);
    snprintf(p, sizeof(p), "%s/cpu/kvc-test/host1/vm-1", tmp);
    assert_int_equal(access(p, F_OK), -1);
    kvc_cg_root_close(r, true);
    snprintf(p, sizeof(p), "%s/cpu/kvc-test/host1", tmp);
    assert_int_equal(access(p, F_OK), -1);

    /* Forcing v2 on a v1-only machine is a clear error. */
    o.version = KVC_CG_V2;
    assert_int_equal(kvc_cg_root_open(&o, &r), -ENOTSUP);
    /* A bad parent is refused. */
    struct kvc_cg_root_opts o2 = { .fsroot = tmp, .parent = "../etc", .fake = true };
    assert_int_equal(kvc_cg_root_open(&o2, &r), -EINVAL);
    o2.parent = "/abs";
    assert_int_equal(kvc_cg_root_open(&o2, &r), -EINVAL);
}

static void test_fake_v1_shared_cpuacct(void **state)
{
    put("cpu,cpuacct/cpu.shares", "1024\n");
    put("cpu,cpuacct/cpuacct.usage", "0\n");
    struct kvc_cg_root_opts o = { .fsroot = tmp, .parent = "kvc", .fake = true };
    struct kvc_cg_root *r;
    assert_int_equal(kvc_cg_root_open(&o, &r), 0);
    assert_int_equal(kvc_cg_root_version(r), KVC_CG_V1);
    assert_false(kvc_cg_root_has_memory(r));
    struct kvc_cg_vm *vm;
    assert_int_equal(kvc_cg_vm_create(r, "a", &vm), 0);
    put("cpu,cpuacct/kvc/a/cpuacct.usage", "77\n");
    struct kvc_cg_usage u;
    assert_int_equal(kvc_cg_vm_usage(vm, &u), 0);
    assert_int_equal(u.cpu_ns, 77);
    /* No memory controller: a memory limit cannot be honoured. */
    assert_int_equal(kvc_cg_vm_set_mem_limit(vm, 1 << 20), -ENOTSUP);
    assert_int_equal(kvc_cg_vm_set_mem_reservation(vm, 1 << 20), -ENOTSUP);
    assert_int_equal(kvc_cg_vm_destroy(vm), 0);
    kvc_cg_root_close(r, true);
}

static void test_fake_v2(void **state)
{
    /* Unified hierarchy with controllers, mounted at the root. */
    put("cgroup.controllers", "cpuset cpu io memory pids\n");
    put("cgroup.subtree_control", "");
    struct kvc_cg_root_opts o = { .fsroot = tmp, .parent = "kvcenter/h1", .fake = true };
    struct kvc_cg_root *r;
    assert_int_equal(kvc_cg_root_open(&o, &r), 0);
    assert_int_equal(kvc_cg_root_version(r), KVC_CG_V2);
    assert_true(kvc_cg_root_has_memory(r));
    /* Controllers are delegated from the root down to the parent. */
    char p[512];
    snprintf(p, sizeof(p), "%s/cgroup.subtree_control", tmp);
    assert_string_equal(last_line(p), "+memory");
    snprintf(p, sizeof(p), "%s/kvcenter/cgroup.subtree_control", tmp);
    assert_string_equal(last_line(p), "+memory");
    snprintf(p, sizeof(p), "%s/kvcenter/h1/cgroup.subtree_control", tmp);
    assert_string_equal(last_line(p), "+memory");

    struct kvc_cg_vm *vm;
    assert_int_equal(kvc_cg_vm_create(r, "vm", &vm), 0);
    assert_int_equal(kvc_cg_vm_set_weight(vm, 200), 0);
    snprintf(p, sizeof(p), "%s/kvcenter/h1/vm/cpu.weight", tmp);
    assert_string_equal(last_line(p), "200");
    assert_int_equal(kvc_cg_vm_set_quota(vm, 50000, 100000), 0);
    snprintf(p, sizeof(p), "%s/kvcenter/h1/vm/cpu.max", tmp);
    assert_string_equal(last_line(p), "50000 100000");
    assert_int_equal(kvc_cg_vm_set_quota(vm, -1, 100000), 0);
    assert_string_equal(last_line(p), "max 100000");
    assert_int_equal(kvc_cg_vm_set_mem_limit(vm, 1 << 30), 0);
    snprintf(p, sizeof(p), "%s/kvcenter/h1/vm/memory.max", tmp);
    assert_string_equal(last_line(p), "1073741824");
    assert_int_equal(kvc_cg_vm_set_mem_limit(vm, -1), 0);
    assert_string_equal(last_line(p), "max");
    assert_int_equal(kvc_cg_vm_set_mem_reservation(vm, 1 << 20), 0);
    snprintf(p, sizeof(p), "%s/kvcenter/h1/vm/memory.min", tmp);
    assert_string_equal(last_line(p), "1048576");
    int fds[4];
    assert_int_equal(kvc_cg_vm_procs_fds(vm, fds, 4), 1);   /* one hierarchy */
    close(fds[0]);
    put("kvcenter/h1/vm/cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n"
        "nr_periods 7\nnr_throttled 2\nthrottled_usec 30\n");
    put("kvcenter/h1/vm/memory.current", "8192\n");
    struct kvc_cg_usage u;
    assert_int_equal(kvc_cg_vm_usage(vm, &u), 0);
    assert_int_equal(u.cpu_ns, 1500000);
    assert_int_equal(u.nr_periods, 7);
    assert_int_equal(u.nr_throttled, 2);
    assert_int_equal(u.throttled_ns, 30000);
    assert_int_equal(u.mem_bytes, 8192);
    assert_int_equal(kvc_cg_vm_destroy(vm), 0);
    kvc_cg_root_close(r, true);
}

static void test_fake_v2_unified(void **state)
{
    /* Hybrid: v1 cpu mount plus a unified hierarchy that does offer cpu:
     * v2 wins in auto mode, v1 can be forced. */
    put("cpu/cpu.shares", "1024\n");
    put("unified/cgroup.controllers", "cpu memory\n");
    struct kvc_cg_root_opts o = { .fsroot = tmp, .parent = "k", .fake = true };
    struct kvc_cg_root *r;
    assert_int_equal(kvc_cg_root_open(&o, &r), 0);
    assert_int_equal(kvc_cg_root_version(r), KVC_CG_V2);
    assert_non_null(strstr(kvc_cg_root_describe(r), "/unified/k"));
    kvc_cg_root_close(r, true);
    o.version = KVC_CG_V1;
    assert_int_equal(kvc_cg_root_open(&o, &r), 0);
    assert_int_equal(kvc_cg_root_version(r), KVC_CG_V1);
    kvc_cg_root_close(r, true);
}

static void test_no_cgroups(void **state)
{
    struct kvc_cg_root_opts o = { .fsroot = tmp, .parent = "k", .fake = true };
    struct kvc_cg_root *r;
    assert_int_equal(kvc_cg_root_open(&o, &r), -ENOTSUP);
}

static long read_long(const char *dir, const char *file)
{
    char p[600];
    snprintf(p, sizeof(p), "%s/%s", dir, file);
    FILE *f = fopen(p, "r");
    if (!f)
        return -12345;
    long v = -12345;
    if (fscanf(f, "%ld", &v) != 1)
        v = -12345;
    fclose(f);
    return v;
}

/* The real cgroup file system: a child placed through the pre-opened
 * cgroup.procs fds lands in the VM's cgroup with all its threads. */
static void test_real(void **state)
{
    if (geteuid() != 0)
        skip();                 /* needs root to create cgroups */
    struct kvc_cg_root_opts o = { .parent = NULL };
    char parent[64];
    snprintf(parent, sizeof(parent), "kvcenter-test-%d", (int)getpid());
    o.parent = parent;
    struct kvc_cg_root *r;
    int rc = kvc_cg_root_open(&o, &r);
    if (rc == -ENOTSUP || rc == -EROFS || rc == -EACCES)
        skip();                 /* no usable cpu controller here */
    assert_int_equal(rc, 0);
    struct kvc_cg_vm *vm;
    assert_int_equal(kvc_cg_vm_create(r, "vm1", &vm), 0);
    int fds[4];
    int n = kvc_cg_vm_procs_fds(vm, fds, 4);
    assert_true(n >= 1);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char b[24];
        int l = snprintf(b, sizeof(b), "%d\n", (int)getpid());
        for (int i = 0; i < n; i++)
            if (write(fds[i], b, (size_t)l) != l)
                _exit(3);
        pause();
        _exit(0);
    }
    for (int i = 0; i < n; i++)
        close(fds[i]);
    /* Wait (bounded) until the child has joined. */
    for (int i = 0; i < 500 && kvc_cg_vm_nprocs(vm) < 1; i++)
        usleep(2000);
    assert_int_equal(kvc_cg_vm_nprocs(vm), 1);
    const char *dir = kvc_cg_vm_path(vm);
    if (kvc_cg_root_version(r) == KVC_CG_V1) {
        assert_int_equal(kvc_cg_vm_set_weight(vm, 2048), 0);
        assert_int_equal(read_long(dir, "cpu.shares"), 2048);
        assert_int_equal(kvc_cg_vm_set_quota(vm, 20000, 50000), 0);
        assert_int_equal(read_long(dir, "cpu.cfs_period_us"), 50000);
        assert_int_equal(read_long(dir, "cpu.cfs_quota_us"), 20000);
        /* Shrinking the period below the old quota works too. */
        assert_int_equal(kvc_cg_vm_set_quota(vm, 5000, 10000), 0);
        assert_int_equal(read_long(dir, "cpu.cfs_quota_us"), 5000);
        assert_int_equal(kvc_cg_vm_set_quota(vm, -1, 100000), 0);
        assert_int_equal(read_long(dir, "cpu.cfs_quota_us"), -1);
    } else {
        assert_int_equal(kvc_cg_vm_set_weight(vm, 200), 0);
        assert_int_equal(read_long(dir, "cpu.weight"), 200);
        assert_int_equal(kvc_cg_vm_set_quota(vm, 20000, 50000), 0);
    }
    if (kvc_cg_root_has_memory(r)) {
        assert_int_equal(kvc_cg_vm_set_mem_limit(vm, 256 << 20), 0);
        assert_int_equal(kvc_cg_vm_set_mem_reservation(vm, 64 << 20), 0);
    }
    struct kvc_cg_usage u;
    assert_int_equal(kvc_cg_vm_usage(vm, &u), 0);
    /* Creating an existing VM cgroup reuses it (re-adoption after a restart). */
    struct kvc_cg_vm *again;
    assert_int_equal(kvc_cg_vm_create(r, "vm1", &again), 0);
    assert_int_equal(kvc_cg_vm_nprocs(again), 1);
    kvc_cg_vm_free(again);
    kill(pid, SIGKILL);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_int_equal(kvc_cg_vm_nprocs(vm), 0);
    assert_int_equal(kvc_cg_vm_destroy(vm), 0);
    kvc_cg_root_close(r, true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fake_v1, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_fake_v1_shared_cpuacct, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_fake_v2, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_fake_v2_unified, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_no_cgroups, setup_tmp, teardown_tmp),
        cmocka_unit_test(test_real),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
