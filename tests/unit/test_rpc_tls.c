/* TLS identities, thumbprints and the RPC transport over TLS-on-TCP with
 * mutual thumbprint pinning. */
#include <regex.h>
#include <sys/stat.h>

#include "rpc_test_util.h"

struct fixture {
    struct event_base *base;
    char *dir;
    char logpath[300];
    struct kvc_tls_identity *srv_id, *cl_id, *other_id;
    struct svc svc;
    struct kvc_rpc_server *srv;
    uint16_t port;
};

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    char d[300];

    alarm(60);
    f->base = event_base_new();
    f->dir = make_tmpdir();
    assert_non_null(f->dir);
    snprintf(f->logpath, sizeof f->logpath, "%s/log", f->dir);
    assert_int_equal(kvc_log_open(f->logpath), 0);
    snprintf(d, sizeof d, "%s/srv", f->dir);
    assert_int_equal(kvc_tls_ensure_identity(d, "srv.test", &f->srv_id), 0);
    snprintf(d, sizeof d, "%s/cl", f->dir);
    assert_int_equal(kvc_tls_ensure_identity(d, "cl.test", &f->cl_id), 0);
    snprintf(d, sizeof d, "%s/other", f->dir);
    assert_int_equal(kvc_tls_ensure_identity(d, "other.test", &f->other_id), 0);
    f->svc.base = f->base;
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;
    svc_release(&f->svc);
    kvc_rpc_server_free(f->srv);
    kvc_tls_identity_free(f->srv_id);
    kvc_tls_identity_free(f->cl_id);
    kvc_tls_identity_free(f->other_id);
    event_base_free(f->base);
    kvc_log_open("/dev/stderr");
    if (getenv("KVC_TEST_SHOW_LOG")) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "cat '%s' >&2", f->logpath);
        if (system(cmd) != 0)
            fprintf(stderr, "no log\n");
    }
    rm_tmpdir(f->dir);
    free(f);
    alarm(0);
    return 0;
}

/* Starts the server, accepting clients whose thumbprint is PIN. */
static void
start_server(struct fixture *f, const char *pin)
{
    struct kvc_rpc_opts o = svc_opts(&f->svc);
    struct kvc_rpc_tls t = { .identity = f->srv_id, .peer_thumbprint = pin };
    assert_int_equal(kvc_rpc_server_new(f->base, &o, &f->srv), 0);
    assert_int_equal(kvc_rpc_server_listen_tcp(f->srv, "127.0.0.1", 0, &t), 0);
    f->port = kvc_rpc_server_port(f->srv);
    assert_true(f->port > 0);
}

static struct kvc_rpc_client *
tls_client(struct fixture *f, const struct kvc_tls_identity *id, const char *pin,
           struct svc *cs, bool reconnect)
{
    struct kvc_rpc_opts o = { 0 };
    struct kvc_rpc_tls t = { .identity = id, .peer_thumbprint = pin };
    struct kvc_rpc_client *cl;
    if (cs) {
        cs->base = f->base;
        o = svc_opts(cs);
    }
    o.reconnect = reconnect;
    o.backoff_initial_ms = 20;
    o.backoff_max_ms = 200;
    assert_int_equal(kvc_rpc_client_new_tcp(f->base, "127.0.0.1", f->port, &t, &o, &cl), 0);
    return cl;
}

static int
echo_sync(struct kvc_rpc_client *cl, uint64_t seq, char **err)
{
    Kvc__Rpc__Ping p = KVC__RPC__PING__INIT;
    ProtobufCMessage *resp = NULL;
    int st;
    p.seq = seq;
    st = kvc_rpc_call_sync(cl, M_ECHO, &p.base, &kvc__rpc__ping__descriptor, 10000, &resp, err);
    if (st == KVC_RPC_OK) {
        assert_true(((Kvc__Rpc__Ping *)resp)->seq == seq);
        protobuf_c_message_free_unpacked(resp, NULL);
    }
    return st;
}

static bool
log_contains(struct fixture *f, const char *needle)
{
    static char buf[1 << 20];
    FILE *fp = fopen(f->logpath, "r");
    size_t n;
    if (!fp)
        return false;
    n = fread(buf, 1, sizeof buf - 1, fp);
    buf[n] = 0;
    fclose(fp);
    return strstr(buf, needle) != NULL;
}

/* ---- identities and thumbprints --------------------------------------*/

static void
test_identity_created_once(void **state)
{
    struct fixture *f = *state;
    struct kvc_tls_identity *again;
    char d[300], path[400], tp[KVC_TLS_THUMBPRINT_SIZE];
    struct stat st;
    regex_t re;

    snprintf(d, sizeof d, "%s/srv", f->dir);
    snprintf(path, sizeof path, "%s/%s", d, KVC_TLS_KEY_FILE);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* A second start loads the same identity. */
    assert_int_equal(kvc_tls_ensure_identity(d, "srv.test", &again), 0);
    assert_string_equal(kvc_tls_identity_thumbprint(again), kvc_tls_identity_thumbprint(f->srv_id));
    kvc_tls_identity_free(again);
    /* The file's thumbprint, in vCenter's format. */
    snprintf(path, sizeof path, "%s/%s", d, KVC_TLS_CERT_FILE);
    assert_int_equal(kvc_tls_thumbprint_file(path, tp), 0);
    assert_string_equal(tp, kvc_tls_identity_thumbprint(f->srv_id));
    assert_int_equal(regcomp(&re, "^([0-9A-F]{2}:){31}[0-9A-F]{2}$", REG_EXTENDED), 0);
    assert_int_equal(regexec(&re, tp, 0, NULL, 0), 0);
    regfree(&re);
    assert_int_equal(strlen(tp), KVC_TLS_THUMBPRINT_LEN);
    /* Different daemons, different identities. */
    assert_string_not_equal(tp, kvc_tls_identity_thumbprint(f->cl_id));
}

static void
test_identity_half_present_is_refused(void **state)
{
    struct fixture *f = *state;
    struct kvc_tls_identity *id = (void *)1;
    char d[300], path[400], tp[KVC_TLS_THUMBPRINT_SIZE];

    snprintf(d, sizeof d, "%s/srv", f->dir);
    snprintf(path, sizeof path, "%s/%s", d, KVC_TLS_KEY_FILE);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(kvc_tls_ensure_identity(d, "srv.test", &id), -EEXIST);
    assert_null(id);
    /* Nothing was overwritten. */
    snprintf(path, sizeof path, "%s/%s", d, KVC_TLS_CERT_FILE);
    assert_int_equal(kvc_tls_thumbprint_file(path, tp), 0);
    assert_string_equal(tp, kvc_tls_identity_thumbprint(f->srv_id));
    snprintf(path, sizeof path, "%s/nothere.crt", f->dir);
    assert_int_equal(kvc_tls_thumbprint_file(path, tp), -ENOENT);
    snprintf(path, sizeof path, "%s/log", f->dir);     /* not a certificate */
    assert_int_equal(kvc_tls_thumbprint_file(path, tp), -EINVAL);
}

static void
test_thumbprint_compare(void **state)
{
    struct fixture *f = *state;
    const char *tp = kvc_tls_identity_thumbprint(f->srv_id);
    char lower[KVC_TLS_THUMBPRINT_SIZE], bare[65];
    size_t i, n = 0;

    for (i = 0; tp[i]; i++) {
        lower[i] = (char)(tp[i] >= 'A' && tp[i] <= 'F' ? tp[i] + 32 : tp[i]);
        if (tp[i] != ':')
            bare[n++] = tp[i];
    }
    lower[i] = 0;
    bare[n] = 0;
    assert_true(kvc_tls_thumbprint_equal(tp, lower));
    assert_true(kvc_tls_thumbprint_equal(tp, bare));
    assert_false(kvc_tls_thumbprint_equal(tp, kvc_tls_identity_thumbprint(f->cl_id)));
    assert_false(kvc_tls_thumbprint_equal(tp, NULL));
    assert_false(kvc_tls_thumbprint_equal(tp, "AB:CD"));
    bare[5] = 'G';
    assert_false(kvc_tls_thumbprint_equal(tp, bare));
}

/* ---- TLS transport --------------------------------------------------*/

static void
test_tls_round_trip_pinned_both_ways(void **state)
{
    struct fixture *f = *state;
    struct svc cs = { 0 };
    struct kvc_rpc_client *cl;
    char *err = NULL;

    start_server(f, kvc_tls_identity_thumbprint(f->cl_id));
    cl = tls_client(f, f->cl_id, kvc_tls_identity_thumbprint(f->srv_id), &cs, false);
    assert_int_equal(echo_sync(cl, 5, &err), KVC_RPC_OK);
    assert_int_equal(cs.connects, 1);
    assert_int_equal(f->svc.connects, 1);
    assert_string_equal(kvc_rpc_conn_peer_thumbprint(kvc_rpc_client_conn(cl)),
                        kvc_tls_identity_thumbprint(f->srv_id));
    assert_string_equal(kvc_rpc_conn_peer_thumbprint(f->svc.last_conn),
                        kvc_tls_identity_thumbprint(f->cl_id));
    assert_int_equal(kvc_rpc_conn_peer_cred(f->svc.last_conn, NULL, NULL, NULL), -ENOTSUP);
    assert_non_null(strstr(kvc_rpc_conn_peer_name(f->svc.last_conn), "127.0.0.1:"));
    /* The server can call back over the same TLS connection. */
    {
        struct reply r = { 0 };
        Kvc__Rpc__Ping p = KVC__RPC__PING__INIT;
        p.seq = 8;
        assert_int_equal(kvc_rpc_conn_call(f->svc.last_conn, M_ECHO, &p.base,
                                           &kvc__rpc__ping__descriptor, 5000, on_reply, &r), 0);
        assert_true(run_until(f->base, &r.done, 10000));
        assert_int_equal(r.status, KVC_RPC_OK);
        assert_true(r.seq == 8);
    }
    kvc_rpc_client_free(cl);
}

static void
test_tls_large_messages(void **state)
{
    struct fixture *f = *state;
    struct kvc_rpc_client *cl;
    Kvc__Rpc__Ping p = KVC__RPC__PING__INIT;
    ProtobufCMessage *resp = NULL;
    size_t len = 3 * 1024 * 1024 + 17, i;
    uint8_t *big = malloc(len);

    for (i = 0; i < len; i++)
        big[i] = (uint8_t)(i * 7);
    p.data.data = big;
    p.data.len = len;
    start_server(f, kvc_tls_identity_thumbprint(f->cl_id));
    cl = tls_client(f, f->cl_id, kvc_tls_identity_thumbprint(f->srv_id), NULL, false);
    assert_int_equal(kvc_rpc_call_sync(cl, M_ECHO, &p.base, &kvc__rpc__ping__descriptor,
                                       20000, &resp, NULL), KVC_RPC_OK);
    assert_int_equal(((Kvc__Rpc__Ping *)resp)->data.len, len);
    assert_memory_equal(((Kvc__Rpc__Ping *)resp)->data.data, big, len);
    protobuf_c_message_free_unpacked(resp, NULL);
    free(big);
    kvc_rpc_client_free(cl);
}

static void
test_tls_client_refuses_wrong_server(void **state)
{
    struct fixture *f = *state;
    struct kvc_rpc_client *cl;
    char *err = NULL;

    start_server(f, kvc_tls_identity_thumbprint(f->cl_id));
    /* The client expects another certificate than the server's. */
    cl = tls_client(f, f->cl_id, kvc_tls_identity_thumbprint(f->other_id), NULL, false);
    assert_int_equal(echo_sync(cl, 1, &err), KVC_RPC_E_UNAVAILABLE);
    assert_non_null(strstr(err, "thumbprint mismatch"));
    assert_non_null(strstr(err, kvc_tls_identity_thumbprint(f->srv_id)));   /* the real one */
    free(err);
    run_for(f->base, 100);
    assert_int_equal(f->svc.connects, 0);
    assert_true(log_contains(f, "refused 127.0.0.1:"));
    kvc_rpc_client_free(cl);
}

static void
test_tls_server_refuses_wrong_client(void **state)
{
    struct fixture *f = *state;
    struct kvc_rpc_client *cl;
    char *err = NULL, want[200];

    start_server(f, kvc_tls_identity_thumbprint(f->cl_id));
    /* "other" is not the client the server pinned. */
    cl = tls_client(f, f->other_id, kvc_tls_identity_thumbprint(f->srv_id), NULL, false);
    assert_int_equal(echo_sync(cl, 1, &err), KVC_RPC_E_UNAVAILABLE);
    assert_non_null(strstr(err, "refused"));
    assert_non_null(strstr(err, kvc_tls_identity_thumbprint(f->other_id)));
    free(err);
    assert_int_equal(f->svc.connects, 0);
    /* The server's log names the thumbprint the client really presented. */
    snprintf(want, sizeof want, "peer presented %s", kvc_tls_identity_thumbprint(f->other_id));
    assert_true(log_contains(f, want));
    kvc_rpc_client_free(cl);
}

static void
test_tls_unpinned_error_names_thumbprint(void **state)
{
    struct fixture *f = *state;
    struct kvc_rpc_client *cl;
    char *err = NULL;

    /* vCenter's add-host flow: no thumbprint given, the error shows it. */
    start_server(f, kvc_tls_identity_thumbprint(f->cl_id));
    cl = tls_client(f, f->cl_id, NULL, NULL, false);
    assert_int_equal(echo_sync(cl, 1, &err), KVC_RPC_E_UNAVAILABLE);
    assert_non_null(strstr(err, kvc_tls_identity_thumbprint(f->srv_id)));
    free(err);
    kvc_rpc_client_free(cl);
}

static bool
accept_cl_only(const char *tp, void *arg)
{
    struct fixture *f = arg;
    return kvc_tls_thumbprint_equal(tp, kvc_tls_identity_thumbprint(f->cl_id));
}

static void
test_tls_verify_callback(void **state)
{
    struct fixture *f = *state;
    struct kvc_rpc_opts o = svc_opts(&f->svc);
    struct kvc_rpc_tls t = { .identity = f->srv_id, .verify = accept_cl_only, .verify_arg = f };
    struct kvc_rpc_client *ok, *bad;
    char *err = NULL;

    assert_int_equal(kvc_rpc_server_new(f->base, &o, &f->srv), 0);
    assert_int_equal(kvc_rpc_server_listen_tcp(f->srv, "127.0.0.1", 0, &t), 0);
    f->port = kvc_rpc_server_port(f->srv);
    ok = tls_client(f, f->cl_id, kvc_tls_identity_thumbprint(f->srv_id), NULL, false);
    bad = tls_client(f, f->other_id, kvc_tls_identity_thumbprint(f->srv_id), NULL, false);
    assert_int_equal(echo_sync(ok, 1, NULL), KVC_RPC_OK);
    assert_int_equal(echo_sync(bad, 1, &err), KVC_RPC_E_UNAVAILABLE);
    free(err);
    assert_int_equal(echo_sync(ok, 2, NULL), KVC_RPC_OK);
    kvc_rpc_client_free(ok);
    kvc_rpc_client_free(bad);
}

static void
test_tls_100_connections(void **state)
{
    struct fixture *f = *state;
    struct kvc_rpc_client *cl[100];
    struct reply *r = calloc(100, sizeof *r);
    Kvc__Rpc__Ping p = KVC__RPC__PING__INIT;
    int i, done = 0;

    start_server(f, kvc_tls_identity_thumbprint(f->cl_id));
    for (i = 0; i < 100; i++) {
        cl[i] = tls_client(f, f->cl_id, kvc_tls_identity_thumbprint(f->srv_id), NULL, false);
        p.seq = (uint64_t)i;
        assert_int_equal(kvc_rpc_client_call(cl[i], M_ECHO, &p.base, &kvc__rpc__ping__descriptor,
                                             30000, on_reply, &r[i]), 0);
    }
    for (;;) {
        done = 0;
        for (i = 0; i < 100; i++)
            done += r[i].done;
        if (done == 100)
            break;
        assert_true(run_until_count(f->base, &f->svc.connects, 100, 30000));
        run_for(f->base, 10);
    }
    for (i = 0; i < 100; i++) {
        assert_int_equal(r[i].status, KVC_RPC_OK);
        assert_true(r[i].seq == (uint64_t)i);
        kvc_rpc_client_free(cl[i]);
    }
    assert_int_equal(f->svc.connects, 100);
    free(r);
}

static void
test_tls_reconnect_after_server_restart(void **state)
{
    struct fixture *f = *state;
    struct svc cs = { 0 };
    struct kvc_rpc_client *cl;
    struct kvc_rpc_opts o;
    struct kvc_rpc_tls t = { .identity = f->srv_id,
                             .peer_thumbprint = kvc_tls_identity_thumbprint(f->cl_id) };
    uint16_t port;

    start_server(f, kvc_tls_identity_thumbprint(f->cl_id));
    port = f->port;
    cl = tls_client(f, f->cl_id, kvc_tls_identity_thumbprint(f->srv_id), &cs, true);
    assert_int_equal(echo_sync(cl, 1, NULL), KVC_RPC_OK);
    kvc_rpc_server_free(f->srv);
    f->srv = NULL;
    assert_true(run_until_count(f->base, &cs.disconnects, 1, 10000));
    run_for(f->base, 200);                      /* a few refused attempts */
    assert_int_equal(cs.connects, 1);
    assert_non_null(strstr(kvc_rpc_client_last_error(cl), "refused"));
    o = svc_opts(&f->svc);
    assert_int_equal(kvc_rpc_server_new(f->base, &o, &f->srv), 0);
    assert_int_equal(kvc_rpc_server_listen_tcp(f->srv, "127.0.0.1", port, &t), 0);
    assert_true(run_until_count(f->base, &cs.connects, 2, 10000));
    assert_int_equal(echo_sync(cl, 2, NULL), KVC_RPC_OK);
    kvc_rpc_client_free(cl);
}

static void
test_tls_plaintext_peer_is_dropped(void **state)
{
    struct fixture *f = *state;
    struct sockaddr_in sa = { .sin_family = AF_INET };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    uint8_t buf[KVC_RPC_HEADER_SIZE];
    struct kvc_rpc_header h = { 0, KVC_RPC_METHOD_PING, 1, 0 };
    char c;

    start_server(f, kvc_tls_identity_thumbprint(f->cl_id));
    sa.sin_port = htons(f->port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    kvc_rpc_header_encode(&h, buf);
    assert_int_equal(write(fd, buf, sizeof buf), (ssize_t)sizeof buf);
    struct event *ev;
    bool got = false;
    ev = event_new(f->base, fd, EV_READ, wake, &got);
    event_add(ev, NULL);
    assert_true(run_until(f->base, &got, 10000));
    event_free(ev);
    /* Whatever comes back (an alert at most), the connection then ends. */
    while (read(fd, &c, 1) > 0)
        ;
    close(fd);
    assert_int_equal(f->svc.connects, 0);
    {
        struct kvc_rpc_client *cl = tls_client(f, f->cl_id, kvc_tls_identity_thumbprint(f->srv_id),
                                               NULL, false);
        assert_int_equal(echo_sync(cl, 3, NULL), KVC_RPC_OK);
        kvc_rpc_client_free(cl);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_identity_created_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_identity_half_present_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thumbprint_compare, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_round_trip_pinned_both_ways, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_large_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_client_refuses_wrong_server, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_server_refuses_wrong_client, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_unpinned_error_names_thumbprint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_verify_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_100_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_reconnect_after_server_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_plaintext_peer_is_dropped, setup, teardown),
    };
    signal(SIGPIPE, SIG_IGN);
    kvc_log_init("test_rpc_tls");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
