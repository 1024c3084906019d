/* hostd's shell without sockets: command-line splitting, the host's API
 * answered in process, and whole command lines run through the bridge on a
 * real libevent loop (in a second thread, as the SSH sessions do). */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>
#include <jansson.h>

#include "hostd/hostd.h"
#include "hostd/ssh/ssh.h"

static void
split_ok(const char *line, int want_n, const char *const *want)
{
    char **w = NULL, err[128] = "";
    int n = -1;
    assert_int_equal(hostd_split_words(line, &w, &n, err, sizeof err), 0);
    assert_int_equal(n, want_n);
    for (int i = 0; i < n; i++)
        assert_string_equal(w[i], want[i]);
    hostd_words_free(w, n);
}

static void
split_bad(const char *line, const char *msg)
{
    char **w = (char **)1, err[128] = "";
    int n = -1;
    assert_int_equal(hostd_split_words(line, &w, &n, err, sizeof err), -EINVAL);
    assert_null(w);
    assert_int_equal(n, 0);
    assert_string_equal(err, msg);
}

static void
test_split(void **state)
{
    (void)state;
    split_ok("", 0, NULL);
    split_ok("   \t ", 0, NULL);
    split_ok("vm process list", 3, (const char *const[]){ "vm", "process", "list" });
    split_ok("  esxcli   --formatter=json system\tversion get  ", 5,
             (const char *const[]){ "esxcli", "--formatter=json", "system", "version", "get" });
    split_ok("a 'b c' \"d \\\"e\\\\\" f\\ g ''", 5,
             (const char *const[]){ "a", "b c", "d \"e\\", "f g", "" });
    split_ok("x'y'\"z\"", 1, (const char *const[]){ "xyz" });
    split_ok("'keeps \\ backslash'", 1, (const char *const[]){ "keeps \\ backslash" });
    split_bad("echo 'open", "unterminated single quote");
    split_bad("echo \"open", "unterminated double quote");
    split_bad("ls \x01", "control character 0x01 in the command line");
    char many[400] = "";
    for (int i = 0; i < 65; i++)
        strcat(many, "w ");
    split_bad(many, "too many words (at most 64)");
}

/* A host with one datastore and two VMs, one of them running. */
struct fixture {
    struct hostd_host h;
    struct hostd_datastore ds;
    struct hostd_vm on, off;
};

static struct fixture *
fixture_new(void)
{
    struct fixture *f = calloc(1, sizeof *f);
    f->h.name = "esx-t";
    f->ds = (struct hostd_datastore){ .name = "ds1", .path = "/", .shared = true };
    f->h.ds = &f->ds;
    f->h.n_ds = 1;
    snprintf(f->on.uuid, sizeof f->on.uuid, "0a1b2c3d-0000-4000-8000-000000000001");
    f->on.name = "web01";
    f->on.power = VM_ON;
    snprintf(f->on.config, sizeof f->on.config, "/ds1/web01/web01.vmx");
    snprintf(f->off.uuid, sizeof f->off.uuid, "0a1b2c3d-0000-4000-8000-000000000002");
    f->off.name = "db01";
    f->off.power = VM_OFF;
    f->on.next = &f->off;
    f->h.vms = &f->on;
    return f;
}

static void
test_api(void **state)
{
    (void)state;
    struct fixture *f = fixture_new();
    long st = 0;
    json_t *r = NULL;

    hostd_api_call(&f->h, "GET", "/api/appliance/system/version", NULL, &st, &r);
    assert_int_equal(st, 200);
    assert_string_equal(json_string_value(json_object_get(r, "version")), HOSTD_VERSION);
    json_decref(r);

    hostd_api_call(&f->h, "GET", "/api/appliance/networking/dns/hostname/?x=1", NULL, &st, &r);
    assert_int_equal(st, 200);
    assert_string_equal(json_string_value(r), "esx-t");
    json_decref(r);

    hostd_api_call(&f->h, "GET", "/api/kvc/host/vm-processes", NULL, &st, &r);
    assert_int_equal(st, 200);
    assert_int_equal(json_array_size(r), 1);        /* only the running VM */
    json_t *vm = json_array_get(r, 0);
    assert_string_equal(json_string_value(json_object_get(vm, "display_name")), "web01");
    json_int_t w = json_integer_value(json_object_get(vm, "world_id"));
    assert_true(w >= 1000001 && w <= 9999999);
    assert_int_equal(json_integer_value(json_object_get(vm, "vmx_cartel_id")), w - 1);
    json_decref(r);

    hostd_api_call(&f->h, "GET", "/api/vcenter/datastore/ds1", NULL, &st, &r);
    assert_int_equal(st, 200);
    assert_true(json_is_true(json_object_get(r, "accessible")));
    assert_string_equal(json_string_value(json_object_get(r, "type")), "NFS");
    json_decref(r);

    /* Unknown resources, other methods, hostile paths: a 404, nothing else. */
    static const char *const bad[][2] = {
        { "GET", "/api/vcenter/datastore/nope" }, { "POST", "/api/appliance/system/version" },
        { "DELETE", "/api/kvc/host/vm-processes" }, { "GET", "/api/../../etc/passwd" },
        { "GET", "" }, { "GET", "/" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hostd_api_call(&f->h, bad[i][0], bad[i][1], NULL, &st, &r);
        assert_int_equal(st, 404);
        assert_string_equal(json_string_value(json_object_get(r, "error_type")), "NOT_FOUND");
        json_decref(r);
    }
    char longpath[2000];
    memset(longpath, 'a', sizeof longpath - 1);
    longpath[0] = '/';
    longpath[sizeof longpath - 1] = 0;
    hostd_api_call(&f->h, "GET", longpath, NULL, &st, &r);
    assert_int_equal(st, 404);
    json_decref(r);

    f->h.crashed = true;
    hostd_api_call(&f->h, "GET", "/api/appliance/system/version", NULL, &st, &r);
    assert_int_equal(st, 503);
    json_decref(r);
    free(f);
}

/* ---- command lines through the bridge, as a session thread runs them ---- */

struct run {
    struct hostd_bridge *br;
    struct hostd_host *h;
    struct event_base *base;
    const char *line;
    struct hostd_cmd_result res;
    int rc;
    _Atomic int done;           /* the session thread has its answer */
};

static void *
session_thread(void *arg)
{
    struct run *r = arg;
    r->rc = hostd_shell_run_line(r->br, r->h, r->line, &r->res);
    /* The loop thread notices on its next tick: a loopbreak from here could
     * come before the loop starts (a line that fails to parse never reaches
     * the bridge), and the loop clears the flag when it starts. */
    r->done = 1;
    return NULL;
}

static void
keep_alive(evutil_socket_t fd, short what, void *arg)
{
    struct run *r = arg;
    (void)fd;
    (void)what;
    if (r->done)
        event_base_loopbreak(r->base);
}

static struct hostd_cmd_result
run_line(struct hostd_host *h, const char *line, int *rcp)
{
    struct event_base *base = event_base_new();
    struct run r = { .h = h, .base = base, .line = line };
    struct event *tick = event_new(base, -1, EV_PERSIST, keep_alive, &r);
    struct timeval tv = { 0, 10000 };
    pthread_t t;

    event_add(tick, &tv);
    assert_int_equal(hostd_bridge_new(base, &r.br), 0);
    assert_int_equal(pthread_create(&t, NULL, session_thread, &r), 0);
    event_base_dispatch(base);
    pthread_join(t, NULL);
    hostd_bridge_free(r.br);
    event_free(tick);
    event_base_free(base);
    *rcp = r.rc;
    return r.res;
}

static void
test_lines(void **state)
{
    (void)state;
    struct fixture *f = fixture_new();
    int rc;

    struct hostd_cmd_result r = run_line(&f->h, "esxcli system hostname get", &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "   Host Name: esx-t\n");
    assert_string_equal(r.err, "");
    hostd_cmd_result_free(&r);

    r = run_line(&f->h, "esxcli --formatter keyvalue system hostname get", &rc);
    assert_string_equal(r.out, "HostnameGet.HostName.string=esx-t\n");
    hostd_cmd_result_free(&r);

    r = run_line(&f->h, "vm process list", &rc);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "web01\n   World ID: "));
    assert_null(strstr(r.out, "db01"));
    hostd_cmd_result_free(&r);

    r = run_line(&f->h, "nosuch", &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(r.status, 1);
    assert_string_equal(r.out, "");
    assert_non_null(strstr(r.err, "Error: Unknown command or namespace nosuch\n"));
    assert_non_null(strstr(r.err, "Usage: esxcli "));
    hostd_cmd_result_free(&r);

    r = run_line(&f->h, "esxcli --formatter=yaml system hostname get", &rc);
    assert_int_equal(rc, -EINVAL);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "Unknown formatter 'yaml'"));
    hostd_cmd_result_free(&r);

    r = run_line(&f->h, "esxcli --bogus", &rc);
    assert_int_equal(r.status, 1);
    assert_string_equal(r.err, "Error: Invalid option --bogus\n");
    hostd_cmd_result_free(&r);

    r = run_line(&f->h, "system 'hostname", &rc);
    assert_int_equal(rc, -EINVAL);
    assert_string_equal(r.err, "Error: unterminated single quote\n");
    hostd_cmd_result_free(&r);
    free(f);
}

static void
test_bridge_shutdown(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct hostd_bridge *br;
    struct hostd_host h = { .name = "x" };
    struct hostd_cmd_result r;

    assert_int_equal(hostd_bridge_new(base, &br), 0);
    hostd_bridge_shutdown(br);
    /* After shutdown nothing runs, and the caller is told so at once. */
    assert_int_equal(hostd_shell_run_line(br, &h, "system hostname get", &r), -ESHUTDOWN);
    assert_int_equal(r.status, 1);
    assert_string_equal(r.err, "Error: hostd is shutting down\n");
    hostd_cmd_result_free(&r);
    hostd_bridge_free(br);
    event_base_free(base);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_api),
        cmocka_unit_test(test_lines),
        cmocka_unit_test(test_bridge_shutdown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
