/* vpxd's access control: password hashes, sessions, throttling, and
 * permissions that propagate down the inventory tree. */
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

#include "vpxd/auth.h"
#include "vpxd/db.h"

struct fix {
    char dir[64], path[128];
    struct vdb *db;
    struct auth *a;
};

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    struct auth_config cfg = { .session_idle_s = 60, .fail_limit = 2 };
    char *gen = NULL;

    snprintf(f->dir, sizeof(f->dir), "/tmp/test_vpxd_auth.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/vpxd.db", f->dir);
    assert_int_equal(vdb_open(f->path, &f->db), 0);
    assert_int_equal(auth_new(f->db, &cfg, &f->a), 0);
    assert_int_equal(auth_bootstrap(f->a, "admin", "Admin-pass-1", &gen), 0);
    assert_null(gen);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    char cmd[160];

    auth_free(f->a);
    vdb_close(f->db);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void test_hash_and_verify(void **state)
{
    char h1[256], h2[256];

    (void)state;
    assert_int_equal(auth_hash_password("correct horse", h1, sizeof(h1)), 0);
    assert_int_equal(auth_hash_password("correct horse", h2, sizeof(h2)), 0);
    assert_true(!strncmp(h1, "$argon2id$", 10));
    assert_string_not_equal(h1, h2);        /* a fresh salt each time */
    assert_true(auth_verify_password(h1, "correct horse"));
    assert_false(auth_verify_password(h1, "correct horsE"));
    assert_false(auth_verify_password("garbage", "x"));
}

static void test_bootstrap_generates_once(void **state)
{
    struct fix *f = *state;
    char *gen = NULL;

    /* Users exist already: nothing happens, nothing is printed. */
    assert_int_equal(auth_bootstrap(f->a, "other", NULL, &gen), 0);
    assert_null(gen);
}

static void test_login_session_logout(void **state)
{
    struct fix *f = *state;
    char tok[AUTH_TOKEN_LEN + 1], user[64], hash[AUTH_HASH_HEX];
    int retry;

    assert_int_equal(auth_login(f->a, "admin", "Admin-pass-1", tok, &retry), 0);
    assert_int_equal(strlen(tok), AUTH_TOKEN_LEN);
    assert_int_equal(auth_session(f->a, tok, user, sizeof(user), hash), 0);
    assert_string_equal(user, "admin");
    /* Only the hash is stored. */
    int64_t n = -1;
    assert_int_equal(vdb_query_int(f->db, &n, "SELECT count(*) FROM session WHERE token_hash = ?",
                                   "s", tok), 0);
    assert_int_equal(n, 0);
    assert_int_equal(auth_logout(f->a, tok), 0);
    assert_int_equal(auth_session(f->a, tok, user, sizeof(user), hash), -ENOENT);
    assert_int_equal(auth_session(f->a, "short", user, sizeof(user), hash), -ENOENT);
}

static void test_throttle(void **state)
{
    struct fix *f = *state;
    char tok[AUTH_TOKEN_LEN + 1];
    int retry;

    assert_int_equal(auth_login(f->a, "admin", "bad", tok, &retry), -EACCES);
    assert_int_equal(auth_login(f->a, "admin", "bad", tok, &retry), -EACCES);
    assert_int_equal(auth_login(f->a, "admin", "Admin-pass-1", tok, &retry), -EAGAIN);
    assert_true(retry >= 1);
    /* Unknown users are throttled the same way. */
    assert_int_equal(auth_login(f->a, "ghost", "x", tok, &retry), -EACCES);
    assert_int_equal(auth_login(f->a, "ghost", "x", tok, &retry), -EACCES);
    assert_int_equal(auth_login(f->a, "ghost", "x", tok, &retry), -EAGAIN);
}

static void test_permissions_propagate(void **state)
{
    struct fix *f = *state;
    char dc[VDB_ID_MAX], dc2[VDB_ID_MAX], cl[VDB_ID_MAX], vmf[VDB_ID_MAX];
    int64_t role;
    const char *privs[] = { "VirtualMachine.Interact.PowerOn", NULL };

    assert_int_equal(vdb_datacenter_create(f->db, "A", NULL, dc), 0);
    assert_int_equal(vdb_datacenter_create(f->db, "B", NULL, dc2), 0);
    assert_int_equal(vdb_cluster_create(f->db, "C", dc, false, false, cl), 0);
    vdb_query_str(f->db, vmf, sizeof(vmf), "SELECT vm_folder FROM datacenter WHERE id = ?",
                  "s", dc);
    assert_int_equal(vdb_user_create(f->db, "bob", "$argon2id$x", false), 0);
    assert_int_equal(vdb_role_create(f->db, "power", privs, &role), 0);

    assert_true(auth_check(f->a, "admin", "Datacenter.Delete", dc));
    assert_false(auth_check(f->a, "bob", "System.Read", dc));
    assert_int_equal(vdb_permission_set(f->db, dc, "bob", role, true), 0);
    assert_true(auth_check(f->a, "bob", "VirtualMachine.Interact.PowerOn", vmf));
    assert_true(auth_check(f->a, "bob", "VirtualMachine.Interact.PowerOn", cl));
    assert_true(auth_check(f->a, "bob", "System.Read", cl));   /* implied */
    assert_false(auth_check(f->a, "bob", "VirtualMachine.Interact.PowerOff", vmf));
    assert_false(auth_check(f->a, "bob", "VirtualMachine.Interact.PowerOn", dc2));
    assert_false(auth_check(f->a, "bob", "VirtualMachine.Interact.PowerOn", "vm-12345"));
    /* The nearest permission wins: NoAccess on the cluster overrides. */
    assert_int_equal(vdb_permission_set(f->db, cl, "bob", -5, true), 0);
    assert_false(auth_check(f->a, "bob", "System.Read", cl));
    assert_true(auth_check(f->a, "bob", "System.Read", vmf));
    /* Without propagation only the object itself. */
    assert_int_equal(vdb_permission_set(f->db, dc, "bob", role, false), 0);
    assert_true(auth_check(f->a, "bob", "VirtualMachine.Interact.PowerOn", dc));
    assert_false(auth_check(f->a, "bob", "VirtualMachine.Interact.PowerOn", vmf));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_and_verify),
        cmocka_unit_test_setup_teardown(test_bootstrap_generates_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_login_session_logout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_permissions_propagate, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
