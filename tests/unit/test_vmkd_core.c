/* vmkd's supervision core (vmkd_vm.c) driven directly on a libevent loop,
 * with the vmx test double (tests/integration/test_vmkd_fake_vmx) and real
 * cgroups under a per-run parent (kvcenter-test-<pid>).  Needs root. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "vmkernel-kvm/vmkd.h"

static char tmpdir[64];
static char fake_vmx[512];
static char cg_parent[64];
static bool have_cgroups;

struct t {
    struct event_base *base;
    struct vmkd *d;
    struct vmkd_config cfg;
    /* results */
    int start_rc;
    bool start_done;
    char start_why[512];
    struct vmkd_vm_info started;
    int nexits;
    struct vmkd_exit exits[8];
    bool stop_done;
    struct vmkd_exit stop_exit;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs the loop until *flag (or the deadline: then fails the test). */
static void run_until(struct t *t, bool (*cond)(struct t *), double timeout_s, const char *what)
{
    double end = now_s() + timeout_s;
    while (!cond(t)) {
        if (now_s() > end)
            fail_msg("timed out after %.1fs waiting for %s", timeout_s, what);
        struct timeval tv = { 0, 20000 };
        event_base_loopexit(t->base, &tv);
        event_base_loop(t->base, EVLOOP_ONCE);
    }
}

static bool c_started(struct t *t) { return t->start_done; }
static bool c_stopped(struct t *t) { return t->stop_done; }
static bool c_exit1(struct t *t) { return t->nexits >= 1; }

static void on_start(void *ctx, int rc, const char *why, const struct vmkd_vm_info *info)
{
    struct t *t = ctx;
    t->start_done = true;
    t->start_rc = rc;
    snprintf(t->start_why, sizeof(t->start_why), "%s", why ? why : "");
    if (info)
        t->started = *info;
}

static void on_stop(void *ctx, int rc, const struct vmkd_exit *ex)
{
    struct t *t = ctx;
    t->stop_done = true;
    if (ex)
        t->stop_exit = *ex;
}

static void l_exited(void *ctx, const struct vmkd_exit *ex)
{
    struct t *t = ctx;
    if (t->nexits < 8)
        t->exits[t->nexits++] = *ex;
}

static void write_vm_config(const char *name, const char *workload, int vcpus, char *path,
                            size_t len)
{
    snprintf(path, len, "%s/%s.vmx", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "name = \"%s\"\nmemory_mb = 64\nvcpus = %d\nguest.workload = %s\n", name,
            vcpus, workload);
    fclose(f);
}

static void new_vmkd(struct t *t)
{
    char why[VMKD_WHY_MAX] = "";
    int rc = vmkd_new(t->base, &t->cfg, &t->d, why);
    if (rc < 0)
        fail_msg("vmkd_new: %s", why);
    struct vmkd_listener l = { .vm_exited = l_exited, .ctx = t };
    vmkd_set_listener(t->d, &l);
}

static int setup(void **state)
{
    if (!have_cgroups)
        return 0;
    struct t *t = calloc(1, sizeof(*t));
    t->base = event_base_new();
    static char sd[128];
    snprintf(sd, sizeof(sd), "%s/state", tmpdir);
    t->cfg = (struct vmkd_config){
        .state_dir = sd,
        .vmx_path = fake_vmx,
        .hostd_uid = -1,
        .ready_timeout_ms = 10000,
        .stop_timeout_ms = 5000,
        .cg = { .parent = cg_parent },
        .reserve_cpu_mhz = 0,
        .reserve_mem_mb = 256,
        .cfs_period_us = 100000,
        .rmdir_cgroup_parent = true,
    };
    new_vmkd(t);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    struct t *t = *state;
    if (!t)
        return 0;
    vmkd_free(t->d, true);
    event_base_free(t->base);
    free(t);
    return 0;
}

static void power_on(struct t *t, const char *id, const char *workload, int vcpus,
                     const struct kvc_res_alloc *a, uint64_t affinity)
{
    char conf[256];
    write_vm_config(id, workload, vcpus, conf, sizeof(conf));
    struct vmkd_power_on po = { .vm_id = id, .config_path = conf, .vcpus = (uint32_t)vcpus,
                                .cpu_affinity = affinity };
    kvc_res_alloc_default(&po.alloc);
    if (a)
        po.alloc = *a;
    char why[VMKD_WHY_MAX] = "";
    t->start_done = false;
    int rc = vmkd_power_on(t->d, &po, on_start, t, why);
    if (rc < 0)
        fail_msg("power on %s: %s", id, why);
    run_until(t, c_started, 20, "VMX-READY");
}

static void power_off(struct t *t, const char *id, bool force, int64_t timeout_ms)
{
    char why[VMKD_WHY_MAX] = "";
    t->stop_done = false;
    assert_int_equal(vmkd_power_off(t->d, id, force, timeout_ms, on_stop, t, why), 0);
    run_until(t, c_stopped, 20, "vmx reaped");
}

#define SKIP_WITHOUT_CGROUPS() do { if (!have_cgroups) skip(); } while (0)

/* Every thread of the vmx is in the VM's cgroup. */
static void assert_threads_in(pid_t pid, const char *cgpath)
{
    const char *rel = strstr(cgpath, cg_parent);
    assert_non_null(rel);
    char dir[64];
    snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char p[400], buf[4096];
        snprintf(p, sizeof(p), "%s/%s/cgroup", dir, de->d_name);
        int fd = open(p, O_RDONLY);
        assert_true(fd >= 0);
        ssize_t len = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        assert_true(len > 0);
        buf[len] = '\0';
        if (!strstr(buf, rel))
            fail_msg("thread %s of pid %d not in %s:\n%s", de->d_name, (int)pid, rel, buf);
        n++;
    }
    closedir(d);
    assert_true(n >= 2);
}

static void test_start_stop(void **state)
{
    SKIP_WITHOUT_CGROUPS();
    struct t *t = *state;
    power_on(t, "vm-a", "idle", 3, NULL, 0);
    assert_int_equal(t->start_rc, 0);
    assert_int_equal(t->started.state, VMKD_VM_RUNNING);
    pid_t pid = t->started.pid;
    assert_true(pid > 0);
    assert_int_equal(kill(pid, 0), 0);
    char sock[256];
    snprintf(sock, sizeof(sock), "%s", t->started.control_socket);
    assert_int_equal(access(sock, F_OK), 0);       /* vmx made its control socket */
    char cgpath[512];
    snprintf(cgpath, sizeof(cgpath), "%s", t->started.cgroup_path);
    assert_threads_in(pid, cgpath);                 /* main thread + 3 "vCPUs" */
    /* vmx inherited nothing but stdin/stdout/stderr (this test holds other fds). */
    char outp[512], obuf[4096];
    snprintf(outp, sizeof(outp), "%s/state/vms/vm-a/vmx.out", tmpdir);
    int ofd = open(outp, O_RDONLY);
    assert_true(ofd >= 0);
    ssize_t on = read(ofd, obuf, sizeof(obuf) - 1);
    close(ofd);
    assert_true(on > 0);
    obuf[on] = '\0';
    assert_non_null(strstr(obuf, "fake-vmx inherited fds: 0 1 2\n"));
    assert_int_equal(vmkd_vm_count(t->d), 1);
    struct vmkd_vm_info info;
    assert_int_equal(vmkd_vm_get(t->d, "vm-a", &info), 0);
    assert_int_equal(info.weight, 3072);            /* normal shares for 3 vCPUs (v1) */

    /* The same id twice is refused. */
    char why[VMKD_WHY_MAX], conf[256];
    write_vm_config("vm-a", "idle", 1, conf, sizeof(conf));
    struct vmkd_power_on po = { .vm_id = "vm-a", .config_path = conf };
    kvc_res_alloc_default(&po.alloc);
    assert_int_equal(vmkd_power_on(t->d, &po, on_start, t, why), -EEXIST);
    /* Bad ids and relative paths are refused. */
    po.vm_id = "../x";
    assert_int_equal(vmkd_power_on(t->d, &po, on_start, t, why), -EINVAL);
    po.vm_id = "vm-b";
    po.config_path = "relative.vmx";
    assert_int_equal(vmkd_power_on(t->d, &po, on_start, t, why), -EINVAL);
    po.config_path = "/nonexistent/x.vmx";
    assert_int_equal(vmkd_power_on(t->d, &po, on_start, t, why), -ENOENT);

    power_off(t, "vm-a", false, 0);
    assert_int_equal(t->stop_exit.reason, VMKD_EXIT_POWERED_OFF);
    assert_int_equal(t->stop_exit.exit_code, 0);
    assert_false(t->stop_exit.forced);
    assert_string_equal(t->stop_exit.vm_id, "vm-a");
    assert_int_equal(t->stop_exit.pid, pid);
    assert_int_equal(t->nexits, 1);
    assert_int_equal(t->exits[0].reason, VMKD_EXIT_POWERED_OFF);
    /* Reaped (no zombie), cgroup and state gone. */
    assert_int_equal(waitpid(pid, NULL, WNOHANG), -1);
    assert_int_equal(access(cgpath, F_OK), -1);
    assert_int_equal(access(sock, F_OK), -1);
    assert_int_equal(vmkd_vm_count(t->d), 0);
    assert_int_equal(vmkd_power_off(t->d, "vm-a", false, 0, NULL, NULL, why), -ENOENT);
}

static void test_crash_reported(void **state)
{
    SKIP_WITHOUT_CGROUPS();
    struct t *t = *state;
    power_on(t, "vm-crash", "crash", 1, NULL, 0);
    assert_int_equal(t->start_rc, 0);
    run_until(t, c_exit1, 20, "crash report");
    assert_int_equal(t->exits[0].reason, VMKD_EXIT_CRASHED);
    assert_int_equal(t->exits[0].signal, SIGABRT);
    assert_int_equal(t->exits[0].exit_code, -1);
    assert_non_null(strstr(t->exits[0].message, "signal 6"));

    /* Status 3 is vmx's "migrated away" (docs/vmx.md), not a crash. */
    t->nexits = 0;
    power_on(t, "vm-exit3", "exit3", 1, NULL, 0);
    run_until(t, c_exit1, 20, "exit report");
    assert_int_equal(t->exits[0].reason, VMKD_EXIT_MIGRATED);
    assert_non_null(strstr(t->exits[0].message, "migrated"));
    assert_int_equal(t->exits[0].exit_code, 3);
    assert_int_equal(t->exits[0].signal, 0);
    assert_int_equal(vmkd_vm_count(t->d), 0);
}

static void test_failed_start(void **state)
{
    SKIP_WITHOUT_CGROUPS();
    struct t *t = *state;
    power_on(t, "vm-fail", "fail", 1, NULL, 0);
    assert_true(t->start_rc < 0);
    assert_non_null(strstr(t->start_why, "cannot start"));   /* vmx's own words */
    assert_int_equal(t->nexits, 1);
    assert_int_equal(t->exits[0].reason, VMKD_EXIT_FAILED_TO_START);
    assert_int_equal(t->exits[0].exit_code, 1);

    /* A vmx that never reports ready is killed after the ready timeout. */
    vmkd_free(t->d, true);
    t->cfg.ready_timeout_ms = 300;
    new_vmkd(t);
    t->nexits = 0;
    power_on(t, "vm-noready", "noready", 1, NULL, 0);
    assert_true(t->start_rc < 0);
    assert_non_null(strstr(t->start_why, "did not report VMX-READY"));
    assert_int_equal(t->exits[0].reason, VMKD_EXIT_FAILED_TO_START);
    assert_int_equal(vmkd_vm_count(t->d), 0);

    /* A missing vmx program. */
    vmkd_free(t->d, true);
    t->cfg.vmx_path = "/nonexistent/vmx";
    new_vmkd(t);
    t->nexits = 0;
    power_on(t, "vm-noexec", "idle", 1, NULL, 0);
    assert_true(t->start_rc < 0);
    assert_non_null(strstr(t->start_why, "exec /nonexistent/vmx"));
}

static void test_forced_stop(void **state)
{
    SKIP_WITHOUT_CGROUPS();
    struct t *t = *state;
    power_on(t, "vm-stubborn", "ignoreterm", 1, NULL, 0);
    power_off(t, "vm-stubborn", false, 200);
    assert_int_equal(t->stop_exit.reason, VMKD_EXIT_POWERED_OFF);
    assert_true(t->stop_exit.forced);
    assert_int_equal(t->stop_exit.signal, SIGKILL);

    power_on(t, "vm-kill", "idle", 1, NULL, 0);
    power_off(t, "vm-kill", true, 0);
    assert_int_equal(t->stop_exit.reason, VMKD_EXIT_POWERED_OFF);
    assert_true(t->stop_exit.forced);
}

static void test_admission(void **state)
{
    SKIP_WITHOUT_CGROUPS();
    struct t *t = *state;
    const struct kvc_host_capacity *cap = vmkd_capacity(t->d);
    uint64_t total = kvc_host_cpu_mhz_total(cap);
    char conf[256], why[VMKD_WHY_MAX];
    write_vm_config("big", "idle", 1, conf, sizeof(conf));
    struct vmkd_power_on po = { .vm_id = "big", .config_path = conf };
    kvc_res_alloc_default(&po.alloc);

    /* More CPU than the host has. */
    po.alloc.cpu_reservation_mhz = total + 1;
    assert_int_equal(vmkd_power_on(t->d, &po, on_start, t, why), -ENOSPC);
    assert_non_null(strstr(why, "insufficient CPU resources"));
    /* More memory than the host has minus its reserve. */
    po.alloc.cpu_reservation_mhz = 0;
    po.alloc.mem_reservation_mb = (cap->mem_bytes >> 20) - 255;
    assert_int_equal(vmkd_power_on(t->d, &po, on_start, t, why), -ENOSPC);
    assert_non_null(strstr(why, "insufficient memory resources"));
    assert_non_null(strstr(why, "host reserve 256 MB"));
    assert_int_equal(vmkd_vm_count(t->d), 0);
    assert_int_equal(vmkd_admission(t->d)->used_cpu_mhz, 0);

    /* Two VMs reserving 60% each: the second does not fit while the first runs. */
    struct kvc_res_alloc a;
    kvc_res_alloc_default(&a);
    a.cpu_reservation_mhz = total * 6 / 10;
    power_on(t, "r1", "idle", 1, &a, 0);
    assert_int_equal(t->start_rc, 0);
    assert_int_equal(vmkd_admission(t->d)->used_cpu_mhz, a.cpu_reservation_mhz);
    write_vm_config("r2", "idle", 1, conf, sizeof(conf));
    po.vm_id = "r2";
    po.alloc = a;
    assert_int_equal(vmkd_power_on(t->d, &po, on_start, t, why), -ENOSPC);
    /* Raising r1's reservation beyond the host is refused live, too. */
    struct kvc_res_alloc more = a;
    more.cpu_reservation_mhz = total + 1;
    assert_int_equal(vmkd_reconfigure(t->d, "r1", &more, why), -ENOSPC);
    power_off(t, "r1", false, 0);
    assert_int_equal(vmkd_admission(t->d)->used_cpu_mhz, 0);
    power_on(t, "r2", "idle", 1, &a, 0);
    assert_int_equal(t->start_rc, 0);
    power_off(t, "r2", false, 0);
}

static uint64_t cpu_ns(struct t *t, const char *id)
{
    struct kvc_cg_usage u;
    assert_int_equal(vmkd_vm_usage(t->d, id, &u), 0);
    return u.cpu_ns;
}

/* Waits, on the event loop, until the two VMs together used `need` ns more
 * CPU than at the start; returns each one's share of that. */
static void measure(struct t *t, const char *a, const char *b, uint64_t need, uint64_t *da,
                    uint64_t *db)
{
    uint64_t a0 = cpu_ns(t, a), b0 = cpu_ns(t, b);
    double end = now_s() + 90;
    for (;;) {
        struct timeval tv = { 0, 100000 };
        event_base_loopexit(t->base, &tv);
        event_base_loop(t->base, 0);
        *da = cpu_ns(t, a) - a0;
        *db = cpu_ns(t, b) - b0;
        if (*da + *db >= need)
            return;
        if (now_s() > end)
            fail_msg("the burners got only %" PRIu64 " ns of CPU", *da + *db);
    }
}

static void test_shares(void **state)
{
    SKIP_WITHOUT_CGROUPS();
    struct t *t = *state;
    struct kvc_res_alloc hi, lo;
    kvc_res_alloc_default(&hi);
    kvc_res_alloc_default(&lo);
    hi.cpu_shares = 2000;
    lo.cpu_shares = 1000;
    /* Both pinned to CPU 0, so they compete for one CPU. */
    power_on(t, "burn-hi", "burn", 1, &hi, 1);
    power_on(t, "burn-lo", "burn", 1, &lo, 1);
    uint64_t dh, dl;
    measure(t, "burn-hi", "burn-lo", 1500000000ull, &dh, &dl);
    printf("# shares 2000:1000 -> cpu %" PRIu64 " ms : %" PRIu64 " ms (ratio %.2f)\n",
           dh / 1000000, dl / 1000000, dl ? (double)dh / (double)dl : 0.0);
    assert_true(dh > dl);
    assert_true(dh * 10 >= dl * 15);        /* at least 1.5:1 (2:1 expected) */

    /* Swap the shares live: the order reverses. */
    assert_int_equal(vmkd_reconfigure(t->d, "burn-hi", &lo, (char[VMKD_WHY_MAX]){ 0 }), 0);
    assert_int_equal(vmkd_reconfigure(t->d, "burn-lo", &hi, (char[VMKD_WHY_MAX]){ 0 }), 0);
    measure(t, "burn-hi", "burn-lo", 1500000000ull, &dh, &dl);
    printf("# after swapping live -> cpu %" PRIu64 " ms : %" PRIu64 " ms\n", dh / 1000000,
           dl / 1000000);
    assert_true(dl * 10 >= dh * 15);
    power_off(t, "burn-hi", false, 0);
    power_off(t, "burn-lo", false, 0);
}

static void test_limit(void **state)
{
    SKIP_WITHOUT_CGROUPS();
    struct t *t = *state;
    struct kvc_res_alloc a;
    kvc_res_alloc_default(&a);
    a.cpu_limit_pct = 20;
    power_on(t, "capped", "burn", 2, &a, 0);
    struct vmkd_vm_info info;
    assert_int_equal(vmkd_vm_get(t->d, "capped", &info), 0);
    assert_int_equal(info.quota_us, 20000);
    /* Run until it has been throttled in a good number of periods, then
     * check the accounting: CPU time never beyond quota x periods. */
    struct kvc_cg_usage u;
    double end = now_s() + 60;
    do {
        struct timeval tv = { 0, 100000 };
        event_base_loopexit(t->base, &tv);
        event_base_loop(t->base, 0);
        assert_int_equal(vmkd_vm_usage(t->d, "capped", &u), 0);
        if (now_s() > end)
            fail_msg("not throttled: periods %" PRIu64 " throttled %" PRIu64, u.nr_periods,
                     u.nr_throttled);
    } while (u.nr_throttled < 10);
    printf("# limit 20%%: cpu %" PRIu64 " ms in %" PRIu64 " periods, %" PRIu64 " throttled\n",
           u.cpu_ns / 1000000, u.nr_periods, u.nr_throttled);
    assert_true(u.cpu_ns <= (u.nr_periods + 2) * 20000ull * 1000 * 11 / 10);

    /* Lift the limit live. */
    kvc_res_alloc_default(&a);
    char why[VMKD_WHY_MAX];
    assert_int_equal(vmkd_reconfigure(t->d, "capped", &a, why), 0);
    assert_int_equal(vmkd_vm_get(t->d, "capped", &info), 0);
    assert_int_equal(info.quota_us, -1);
    power_off(t, "capped", false, 0);
}

static void test_mem_limit(void **state)
{
    SKIP_WITHOUT_CGROUPS();
    struct t *t = *state;
    struct kvc_res_alloc a;
    kvc_res_alloc_default(&a);
    a.mem_limit_mb = 64;
    a.mem_reservation_mb = 32;
    power_on(t, "memcap", "idle", 1, &a, 0);
    char p[512];
    FILE *f = NULL;
    const char *cg = t->started.cgroup_path;
    /* v1: the memory hierarchy mirrors the cpu one. */
    const char *rel = strstr(cg, cg_parent);
    snprintf(p, sizeof(p), "/sys/fs/cgroup/memory/%s/memory.limit_in_bytes", rel);
    f = fopen(p, "r");
    if (!f) {
        snprintf(p, sizeof(p), "%s/memory.max", cg);
        f = fopen(p, "r");
    }
    assert_non_null(f);
    unsigned long long v = 0;
    assert_int_equal(fscanf(f, "%llu", &v), 1);
    fclose(f);
    assert_int_equal(v, 64ull << 20);
    /* The reservation is protected (v2 memory.min) or reclaimed last (v1 soft limit). */
    snprintf(p, sizeof(p), "/sys/fs/cgroup/memory/%s/memory.soft_limit_in_bytes", rel);
    f = fopen(p, "r");
    if (!f) {
        snprintf(p, sizeof(p), "%s/memory.min", cg);
        f = fopen(p, "r");
    }
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%llu", &v), 1);
    fclose(f);
    assert_int_equal(v, 32ull << 20);
    assert_int_equal(vmkd_admission(t->d)->used_mem_mb, 32);
    struct kvc_cg_usage u;
    assert_int_equal(vmkd_vm_usage(t->d, "memcap", &u), 0);
    assert_true(u.mem_bytes > 0);
    power_off(t, "memcap", false, 0);
    assert_int_equal(vmkd_admission(t->d)->used_mem_mb, 0);
}

static void test_readopt(void **state)
{
    SKIP_WITHOUT_CGROUPS();
    struct t *t = *state;
    struct kvc_res_alloc a;
    kvc_res_alloc_default(&a);
    a.cpu_shares = 500;
    a.cpu_reservation_mhz = 100;
    power_on(t, "keep", "idle", 2, &a, 0);
    pid_t pid = t->started.pid;
    power_on(t, "gone", "idle", 1, NULL, 0);
    pid_t gone = t->started.pid;

    /* vmkd goes away; its VMs keep running. */
    vmkd_free(t->d, false);
    t->d = NULL;
    assert_int_equal(kill(pid, 0), 0);
    /* One of them dies while vmkd is down. */
    kill(gone, SIGKILL);
    assert_int_equal(waitpid(gone, NULL, 0), gone);

    new_vmkd(t);
    assert_int_equal(vmkd_adopt_all(t->d), 0);
    assert_int_equal(vmkd_vm_count(t->d), 1);
    struct vmkd_vm_info info;
    assert_int_equal(vmkd_vm_get(t->d, "keep", &info), 0);
    assert_int_equal(info.pid, pid);
    assert_true(info.adopted);
    assert_int_equal(info.state, VMKD_VM_RUNNING);
    assert_int_equal(info.alloc.cpu_shares, 500);
    assert_int_equal(info.vcpus, 2);
    assert_int_equal(vmkd_admission(t->d)->used_cpu_mhz, 100);
    assert_int_equal(vmkd_vm_get(t->d, "gone", &info), -ENOENT);
    assert_threads_in(pid, info.cgroup_path);

    /* Its exit is still seen; the status went to its real parent (us). */
    power_off(t, "keep", false, 0);
    assert_int_equal(t->stop_exit.reason, VMKD_EXIT_UNKNOWN);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(vmkd_admission(t->d)->used_cpu_mhz, 0);
}

int main(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_vmkd_core.XXXXXX");
    if (!mkdtemp(tmpdir))
        return 1;
    const char *bd = getenv("KVC_BUILDDIR");
    snprintf(fake_vmx, sizeof(fake_vmx), "%s/tests/integration/test_vmkd_fake_vmx", bd ? bd : ".");
    snprintf(cg_parent, sizeof(cg_parent), "kvcenter-test-%d", (int)getpid());
    have_cgroups = geteuid() == 0 && (access("/sys/fs/cgroup/cpu/cpu.shares", W_OK) == 0
                                      || access("/sys/fs/cgroup/cgroup.subtree_control", W_OK) == 0);
    if (!have_cgroups)
        printf("# skipping: needs root and a writable cpu cgroup controller\n");
    if (access(fake_vmx, X_OK) != 0) {
        printf("# %s: not built\n", fake_vmx);
        have_cgroups = false;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_start_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forced_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admission, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shares, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mem_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readopt, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        rc = 1;
    return rc;
}
