/* Unit tests of hostd's sim models and VM store (no daemon, no network). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hostd/backend.h"
#include "hostd/backends/sim.h"
#include "hostd/hostd.h"

static void
test_workload_parse(void **state)
{
    struct sim_workload w;

    assert_int_equal(sim_workload_parse("idle", &w), 0);
    assert_int_equal(w.kind, SIM_IDLE);
    assert_int_equal(sim_workload_parse("", &w), 0);
    assert_int_equal(sim_workload_parse("cpu:50", &w), 0);
    assert_int_equal(w.kind, SIM_CPU);
    assert_true(w.arg == 50);
    assert_int_equal(sim_workload_parse("sine:60", &w), 0);
    assert_int_equal(sim_workload_parse("mem:100", &w), 0);
    assert_int_equal(sim_workload_parse("hang", &w), 0);
    assert_int_equal(sim_workload_parse("crash", &w), 0);
    /* Bad input is refused, never guessed. */
    assert_int_equal(sim_workload_parse("cpu:101", &w), -EINVAL);
    assert_int_equal(sim_workload_parse("cpu:-1", &w), -EINVAL);
    assert_int_equal(sim_workload_parse("cpu:", &w), -EINVAL);
    assert_int_equal(sim_workload_parse("cpu:5x", &w), -EINVAL);
    assert_int_equal(sim_workload_parse("sine:0", &w), -EINVAL);
    assert_int_equal(sim_workload_parse("mem:nan", &w), -EINVAL);
    assert_int_equal(sim_workload_parse("dance", &w), -EINVAL);
}

static void
test_demand_profiles(void **state)
{
    struct sim_workload w;

    sim_workload_parse("cpu:40", &w);
    assert_true(sim_cpu_demand(&w, 0) == 0.4);
    assert_true(sim_cpu_demand(&w, 123456) == 0.4);
    sim_workload_parse("sine:10", &w);
    /* Over one period the demand sweeps between 5% and 95%. */
    double lo = 1, hi = 0;
    for (int t = 0; t < 10000; t += 100) {
        double d = sim_cpu_demand(&w, t);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    assert_true(lo >= 0.05 - 1e-9 && lo < 0.1);
    assert_true(hi <= 0.95 + 1e-9 && hi > 0.9);
    sim_workload_parse("mem:64", &w);
    assert_true(sim_dirty_rate(&w, 1 << 30) == 64.0 * 1048576);
    assert_true(sim_mem_active(&w, 1000) == 800);
    sim_workload_parse("idle", &w);
    assert_true(sim_cpu_demand(&w, 0) < 0.05);
}

static void
test_migration_model(void **state)
{
    int64_t down = -1, t;
    uint64_t gib = 1ull << 30;

    /* An idle 1 GiB VM at 1 GiB/s: about one second, tiny downtime. */
    t = sim_migration_ms(gib, (double)gib / 1000, (double)gib, 300, &down);
    assert_true(t >= 1000 && t < 1100);
    assert_true(down >= 0 && down <= 300);
    /* More memory takes longer; more bandwidth takes less. */
    assert_true(sim_migration_ms(4 * gib, 1e6, (double)gib, 300, NULL) > t);
    assert_true(sim_migration_ms(gib, 1e6, 2.0 * gib, 300, NULL) < t);
    /* A guest dirtying faster than the link never converges. */
    assert_int_equal(sim_migration_ms(8 * gib, 2.0 * gib, (double)gib, 300, NULL), -1);
    assert_int_equal(sim_migration_ms(gib, 0, 0, 300, NULL), -1);
}

static void
test_uuid(void **state)
{
    char a[HOSTD_UUID_LEN], b[HOSTD_UUID_LEN];

    hostd_uuid_generate(a);
    hostd_uuid_generate(b);
    assert_true(hostd_uuid_valid(a));
    assert_string_not_equal(a, b);
    assert_int_equal(a[14], '4');
    assert_false(hostd_uuid_valid("not-a-uuid"));
    assert_false(hostd_uuid_valid("0123456789abcdef0123456789abcdef0123"));
    assert_false(hostd_uuid_valid("01234567-89ab-cdef-0123-456789abcdeg"));
}

/* A host with one datastore in a temporary directory, no RPC, no backend. */
struct fixture {
    char dir[64];
    char ds[128];
    struct hostd d;
    struct hostd_host h;
    struct hostd_datastore dsd;
    struct hostd_network net;
};

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);

    strcpy(f->dir, "/tmp/kvc-hostd-unit-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->ds, sizeof f->ds, "%s/ds1", f->dir);
    assert_int_equal(mkdir(f->ds, 0755), 0);
    f->h.d = &f->d;
    f->h.name = "unit";
    strcpy(f->h.uuid, "11111111-2222-4333-8444-555555555555");
    snprintf(f->h.state_dir, sizeof f->h.state_dir, "%s", f->dir);
    f->dsd.name = "ds1";
    f->dsd.path = f->ds;
    f->dsd.shared = true;
    f->h.ds = &f->dsd;
    f->h.n_ds = 1;
    f->net.name = "VM Network";
    f->net.vswitch = "vSwitch0";
    f->h.nets = &f->net;
    f->h.n_nets = 1;
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];

    while (f->h.vms) {
        struct hostd_vm *vm = f->h.vms;
        f->h.vms = vm->next;
        vmstore_vm_free(vm);
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static Kvc__Host__VmSpec
spec(const char *uuid, const char *name)
{
    Kvc__Host__VmSpec s = KVC__HOST__VM_SPEC__INIT;
    s.uuid = (char *)uuid;
    s.name = (char *)name;
    s.datastore = "ds1";
    s.cpu_count = 2;
    s.memory_mib = 512;
    s.disk_bytes = 1 << 20;
    s.network = "VM Network";
    return s;
}

static void
test_vmstore_create_layout_reload_delete(void **state)
{
    struct fixture *f = *state;
    Kvc__Host__VmSpec s = spec("aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee", "web 01");
    struct hostd_vm *vm = NULL;
    char err[256], path[512];
    struct stat st;

    assert_int_equal(vmstore_create(&f->h, &s, &vm, err, sizeof err), 0);
    /* <datastore>/<name>/<name>.vmx and the sparse disk beside it. */
    snprintf(path, sizeof path, "%s/web 01/web 01.vmx", f->ds);
    assert_string_equal(vm->config, path);
    assert_int_equal(stat(path, &st), 0);
    snprintf(path, sizeof path, "%s/web 01/web 01.img", f->ds);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 1 << 20);
    f->h.vms = vm;
    assert_int_equal(vmstore_save_registry(&f->h), 0);

    /* A restarted hostd finds the same VM from its registry. */
    f->h.vms = NULL;
    assert_int_equal(vmstore_load(&f->h), 0);
    assert_non_null(f->h.vms);
    assert_null(f->h.vms->next);
    assert_string_equal(f->h.vms->uuid, "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee");
    assert_string_equal(f->h.vms->name, "web 01");
    assert_string_equal(f->h.vms->datastore, "ds1");
    assert_int_equal(f->h.vms->cpu_count, 2);
    assert_int_equal(f->h.vms->memory_mib, 512);
    assert_int_equal(f->h.vms->disk_bytes, 1 << 20);

    /* Delete removes the folder with its files. */
    assert_int_equal(vmstore_delete(&f->h, f->h.vms), 0);
    snprintf(path, sizeof path, "%s/web 01", f->ds);
    assert_int_not_equal(stat(path, &st), 0);
    vmstore_vm_free(vm);
}

static void
test_vmstore_bad_input(void **state)
{
    struct fixture *f = *state;
    struct hostd_vm *vm = NULL;
    char err[256];
    Kvc__Host__VmSpec s;

    s = spec("nope", "a");
    assert_int_equal(vmstore_create(&f->h, &s, &vm, err, sizeof err), -EINVAL);
    s = spec("aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee", "../escape");
    assert_int_equal(vmstore_create(&f->h, &s, &vm, err, sizeof err), -EINVAL);
    s = spec("aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee", ".hidden");
    assert_int_equal(vmstore_create(&f->h, &s, &vm, err, sizeof err), -EINVAL);
    s = spec("aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee", "ok");
    s.datastore = "nosuch";
    assert_int_equal(vmstore_create(&f->h, &s, &vm, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, "nosuch"));
    s = spec("aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee", "ok");
    s.memory_mib = 1ull << 40;
    assert_int_equal(vmstore_create(&f->h, &s, &vm, err, sizeof err), -EINVAL);
    s = spec("aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee", "ok");
    s.network = "nosuch";
    assert_int_equal(vmstore_create(&f->h, &s, &vm, err, sizeof err), -ENOENT);
    /* Nothing was left behind by the refusals. */
    char path[256];
    struct stat st;
    snprintf(path, sizeof path, "%s/ok", f->ds);
    assert_int_not_equal(stat(path, &st), 0);
    /* A name taken on the datastore is refused. */
    s = spec("aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee", "twice");
    assert_int_equal(vmstore_create(&f->h, &s, &vm, err, sizeof err), 0);
    vmstore_vm_free(vm);
    s = spec("aaaaaaaa-bbbb-4ccc-8ddd-ffffffffffff", "twice");
    assert_int_equal(vmstore_create(&f->h, &s, &vm, err, sizeof err), -EEXIST);
}

static void
test_vmstore_corrupt_config_skipped(void **state)
{
    struct fixture *f = *state;
    char path[256], reg[600];
    FILE *fp;

    snprintf(path, sizeof path, "%s/bad", f->ds);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/bad/bad.vmx", f->ds);
    fp = fopen(path, "w");
    fputs("[vm]\nuuid = \"x\"\ncpu_count = lots\n", fp);
    fclose(fp);
    snprintf(reg, sizeof reg, "%s\n/nonexistent/x/x.vmx\n", path);
    assert_int_equal(hostd_state_write(f->dir, "vms", reg), 0);
    /* hostd still comes up, without the broken entries. */
    assert_int_equal(vmstore_load(&f->h), 0);
    assert_null(f->h.vms);
}

static void
test_ds_heartbeat_file(void **state)
{
    struct fixture *f = *state;
    char path[256], buf[256] = "";
    FILE *fp;

    f->h.hb_seq = 7;
    assert_int_equal(vmstore_write_ds_heartbeat(&f->h, 1234567), 0);
    snprintf(path, sizeof path, "%s/.kvc-hb/%s", f->ds, f->h.uuid);
    assert_non_null(fp = fopen(path, "r"));
    assert_non_null(fgets(buf, sizeof buf, fp));
    fclose(fp);
    assert_non_null(strstr(buf, "time_ms=1234567"));
    assert_non_null(strstr(buf, "seq=7"));
    /* Local (unshared) datastores get none. */
    f->dsd.shared = false;
    snprintf(path, sizeof path, "%s/.kvc-hb/%s", f->ds, f->h.uuid);
    unlink(path);
    assert_int_equal(vmstore_write_ds_heartbeat(&f->h, 1), 0);
    assert_int_not_equal(access(path, F_OK), 0);
}

static void
test_hwinfo(void **state)
{
    struct hostd_hw hw;

    assert_int_equal(hwinfo_read(&hw), 0);
    assert_true(hw.threads >= 1);
    assert_true(hw.cores >= 1 && hw.cores <= hw.threads);
    assert_true(hw.memory_bytes > (64ull << 20));
    assert_true(hw.cpu_model[0]);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_workload_parse),
        cmocka_unit_test(test_demand_profiles),
        cmocka_unit_test(test_migration_model),
        cmocka_unit_test(test_uuid),
        cmocka_unit_test_setup_teardown(test_vmstore_create_layout_reload_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vmstore_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vmstore_corrupt_config_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ds_heartbeat_file, setup, teardown),
        cmocka_unit_test(test_hwinfo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
