/* vpxd's database module: migrations, inventory writes, tasks, restart. */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "vpxd/db.h"
#include "vpxd/migrations.h"

struct fix {
    char dir[64];
    char path[128];
    struct vdb *db;
};

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));

    snprintf(f->dir, sizeof(f->dir), "/tmp/test_vpxd_db.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/vpxd.db", f->dir);
    assert_int_equal(vdb_open(f->path, &f->db), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    char cmd[200];

    vdb_close(f->db);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static int count_migrations(void)
{
    int n = 0;
    while (vpxd_migrations[n].name)
        n++;
    return n;
}

static void test_migrations_applied_once(void **state)
{
    struct fix *f = *state;
    int64_t n = 0;

    assert_int_equal(vdb_schema_version(f->db), count_migrations());
    vdb_close(f->db);
    assert_int_equal(vdb_open(f->path, &f->db), 0);
    assert_int_equal(vdb_query_int(f->db, &n, "SELECT count(*) FROM schema_version", NULL), 0);
    assert_int_equal(n, count_migrations());
    /* WAL mode is persistent in the file. */
    sqlite3 *h;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(f->path, &h), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(h, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(h);
}

static void test_datacenter_tree(void **state)
{
    struct fix *f = *state;
    char dc[VDB_ID_MAX], cl[VDB_ID_MAX], dc2[VDB_ID_MAX];
    json_t *row = NULL;

    assert_int_equal(vdb_datacenter_create(f->db, "DC1", NULL, dc), 0);
    assert_true(!strncmp(dc, "datacenter-", 11));
    assert_int_equal(vdb_datacenter_create(f->db, "DC1", NULL, dc2), -EEXIST);
    assert_int_equal(vdb_query_row(f->db, &row, "SELECT * FROM datacenter WHERE id = ?",
                                   "s", dc), 0);
    char vmf[VDB_ID_MAX];
    snprintf(vmf, sizeof(vmf), "%s", json_string_value(json_object_get(row, "vm_folder")));
    assert_true(!strncmp(vmf, "group-v", 7));
    json_decref(row);
    assert_int_equal(vdb_cluster_create(f->db, "C1", dc, true, false, cl), 0);
    assert_true(!strncmp(cl, "domain-c", 8));
    assert_true(vdb_entity_exists(f->db, cl, "cluster"));
    /* Not empty once a host is in it: the host pins the datacenter. */
    struct vdb_host_spec hs = { .hostname = "esx1", .port = 9443, .user_name = "root",
                                .thumbprint = "AA", .parent = cl };
    char host[VDB_ID_MAX];
    assert_int_equal(vdb_host_add(f->db, &hs, host), 0);
    assert_int_equal(vdb_host_add(f->db, &hs, host), -EEXIST);
    assert_int_equal(vdb_datacenter_delete(f->db, dc, false), -ENOTEMPTY);
    assert_int_equal(vdb_datacenter_delete(f->db, dc, true), 0);
    assert_false(vdb_entity_exists(f->db, cl, NULL));
    assert_false(vdb_entity_exists(f->db, host, NULL));
    assert_false(vdb_entity_exists(f->db, vmf, NULL));
}

static void test_failed_change_leaves_nothing(void **state)
{
    struct fix *f = *state;
    char id[VDB_ID_MAX];
    int64_t before = 0, after = 0;

    vdb_query_int(f->db, &before, "SELECT count(*) FROM entity", NULL);
    /* Bad parent: nothing half-created. */
    assert_int_not_equal(vdb_cluster_create(f->db, "C", "datacenter-999", false, false, id), 0);
    struct vdb_vm_spec vs = { .name = "vm1", .folder = "group-v999", .cpu_count = 1,
                              .cores_per_socket = 1, .memory_mib = 64 };
    assert_int_not_equal(vdb_vm_create(f->db, &vs, id), 0);
    vdb_query_int(f->db, &after, "SELECT count(*) FROM entity", NULL);
    assert_int_equal(before, after);
}

static void test_vm_power_events(void **state)
{
    struct fix *f = *state;
    char dc[VDB_ID_MAX], vm[VDB_ID_MAX], folder[VDB_ID_MAX];
    int64_t n = 0;

    assert_int_equal(vdb_datacenter_create(f->db, "DC", NULL, dc), 0);
    vdb_query_str(f->db, folder, sizeof(folder), "SELECT vm_folder FROM datacenter WHERE id = ?",
                  "s", dc);
    struct vdb_vm_spec vs = { .name = "vm1", .folder = folder, .cpu_count = 2,
                              .cores_per_socket = 1, .memory_mib = 256 };
    assert_int_equal(vdb_vm_create(f->db, &vs, vm), 0);
    assert_true(!strncmp(vm, "vm-", 3));
    assert_int_equal(vdb_vm_set_power(f->db, vm, "POWERED_ON", "u"), 1);
    assert_int_equal(vdb_vm_set_power(f->db, vm, "POWERED_ON", "u"), 0);
    assert_int_equal(vdb_vm_set_power(f->db, vm, "BOGUS", "u"), -EINVAL);
    assert_int_equal(vdb_vm_set_power(f->db, "vm-999", "POWERED_ON", "u"), -ENOENT);
    vdb_query_int(f->db, &n, "SELECT count(*) FROM event WHERE type = 'VmPowerStateChangedEvent'"
                  " AND object = ?", "s", vm);
    assert_int_equal(n, 1);
    vdb_query_int(f->db, &n, "SELECT count(*) FROM alarm_state WHERE alarm = 'alarm-2'"
                  " AND object = ?", "s", vm);
    assert_int_equal(n, 1);
    assert_int_equal(vdb_vm_delete(f->db, vm), 0);
    assert_int_equal(vdb_vm_delete(f->db, vm), -ENOENT);
    vdb_query_int(f->db, &n, "SELECT count(*) FROM alarm_state WHERE object = ?", "s", vm);
    assert_int_equal(n, 0);
}

static void test_interrupted_task_failed_on_open(void **state)
{
    struct fix *f = *state;
    char t1[VDB_ID_MAX], t2[VDB_ID_MAX], st[32];

    assert_int_equal(vdb_task_create(f->db, "com.vmware.vcenter.vm", "create", "vm", NULL,
                                     "admin", t1), 0);
    assert_int_equal(vdb_task_progress(f->db, t1, "RUNNING", 40, "copying"), 0);
    assert_int_equal(vdb_task_create(f->db, "com.vmware.vcenter.vm", "delete", "vm", NULL,
                                     "admin", t2), 0);
    assert_int_equal(vdb_task_finish(f->db, t2, NULL, NULL), 0);
    assert_int_equal(vdb_task_finish(f->db, t2, NULL, NULL), -ENOENT);
    vdb_close(f->db);
    assert_int_equal(vdb_open(f->path, &f->db), 0);
    assert_int_equal(vdb_interrupted_tasks(f->db), 1);
    vdb_query_str(f->db, st, sizeof(st), "SELECT status FROM task WHERE id = ?", "s", t1);
    assert_string_equal(st, "FAILED");
    vdb_query_str(f->db, st, sizeof(st), "SELECT status FROM task WHERE id = ?", "s", t2);
    assert_string_equal(st, "SUCCEEDED");
    int64_t n = 0;
    vdb_query_int(f->db, &n, "SELECT count(*) FROM task_history WHERE task = ?", "s", t1);
    assert_int_equal(n, 3);     /* PENDING, RUNNING 40%, FAILED */
}

static void test_nested_transaction_rollback(void **state)
{
    struct fix *f = *state;
    char dc[VDB_ID_MAX], dc2[VDB_ID_MAX];
    int64_t n = 0;

    assert_int_equal(vdb_begin(f->db), 0);
    assert_int_equal(vdb_datacenter_create(f->db, "A", NULL, dc), 0);
    assert_int_equal(vdb_datacenter_create(f->db, "A", NULL, dc2), -EEXIST);
    assert_int_equal(vdb_audit(f->db, "admin", "127.0.0.1", "POST x", dc, "ok", 201), 0);
    assert_int_equal(vdb_finish(f->db, 0), 0);
    vdb_query_int(f->db, &n, "SELECT count(*) FROM datacenter", NULL);
    assert_int_equal(n, 1);
    vdb_query_int(f->db, &n, "SELECT count(*) FROM audit_log", NULL);
    assert_int_equal(n, 1);
}

static void test_access_control_rows(void **state)
{
    struct fix *f = *state;
    int64_t role;
    const char *privs[] = { "System.Read", "VirtualMachine.Interact.PowerOn", NULL };

    assert_int_equal(vdb_user_create(f->db, "alice", "$argon2id$x", false), 0);
    assert_int_equal(vdb_user_create(f->db, "alice", "$argon2id$x", false), -EEXIST);
    assert_int_equal(vdb_role_create(f->db, "ops", privs, &role), 0);
    assert_true(role > 100);
    assert_int_equal(vdb_permission_set(f->db, VDB_ROOT_FOLDER, "alice", role, true), 0);
    assert_int_equal(vdb_role_delete(f->db, role), -ENOTEMPTY);
    assert_int_equal(vdb_role_delete(f->db, -1), -EPERM);
    assert_int_equal(vdb_session_create(f->db, "abc", "alice"), 0);
    assert_int_equal(vdb_session_touch(f->db, "abc"), 0);
    assert_int_equal(vdb_session_expire(f->db, 3600), 0);
    assert_int_equal(vdb_user_delete(f->db, "alice"), 0);
    assert_int_equal(vdb_session_touch(f->db, "abc"), -ENOENT);
    assert_int_equal(vdb_user_delete(f->db, "alice"), -ENOENT);
}

static void test_reports_share_datastore(void **state)
{
    struct fix *f = *state;
    char dc[VDB_ID_MAX], h1[VDB_ID_MAX], h2[VDB_ID_MAX], d1[VDB_ID_MAX], d2[VDB_ID_MAX];
    char n1[VDB_ID_MAX], n2[VDB_ID_MAX];
    int64_t n = 0;

    assert_int_equal(vdb_datacenter_create(f->db, "DC", NULL, dc), 0);
    struct vdb_host_spec hs = { .hostname = "a", .port = 1, .parent = dc };
    assert_int_equal(vdb_host_add(f->db, &hs, h1), 0);
    hs.hostname = "b";
    assert_int_equal(vdb_host_add(f->db, &hs, h2), 0);
    struct vdb_datastore_info ds = { .name = "shared", .type = "NFS", .capacity = 100,
                                     .free_space = 5, .accessible = true };
    assert_int_equal(vdb_datastore_report(f->db, h1, &ds, d1), 0);
    assert_int_equal(vdb_datastore_report(f->db, h2, &ds, d2), 0);
    assert_string_equal(d1, d2);
    vdb_query_int(f->db, &n, "SELECT count(*) FROM alarm_state WHERE alarm = 'alarm-3'", NULL);
    assert_int_equal(n, 1);     /* 95% full > 85% */
    ds.free_space = 90;
    assert_int_equal(vdb_datastore_report(f->db, h1, &ds, d1), 0);
    vdb_query_int(f->db, &n, "SELECT count(*) FROM alarm_state WHERE alarm = 'alarm-3'", NULL);
    assert_int_equal(n, 0);
    assert_int_equal(vdb_network_report(f->db, h1, "VM Network", NULL, 0, n1), 0);
    assert_int_equal(vdb_network_report(f->db, h2, "VM Network", NULL, 0, n2), 0);
    assert_string_equal(n1, n2);
    assert_int_equal(vdb_host_set_state(f->db, h1, "CONNECTED"), 1);
    assert_int_equal(vdb_host_set_state(f->db, h1, "CONNECTED"), 0);
    assert_int_equal(vdb_host_set_state(f->db, h1, "NOT_RESPONDING"), 1);
    vdb_query_int(f->db, &n, "SELECT count(*) FROM alarm_state WHERE alarm = 'alarm-1'", NULL);
    assert_int_equal(n, 1);
    assert_int_equal(vdb_host_remove(f->db, h1), 0);
    vdb_query_int(f->db, &n, "SELECT count(*) FROM host_datastore", NULL);
    assert_int_equal(n, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_migrations_applied_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_datacenter_tree, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_change_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vm_power_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupted_task_failed_on_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nested_transaction_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_access_control_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reports_share_datastore, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
