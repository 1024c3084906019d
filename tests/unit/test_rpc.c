/* The RPC transport over unix sockets: calls, concurrency, bad frames,
 * SO_PEERCRED, timeouts, reconnecting. */
#include "rpc_test_util.h"

struct fixture {
    struct event_base *base;
    char *dir;
    char path[256];
    struct svc svc;
    struct kvc_rpc_server *srv;
};

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    struct kvc_rpc_opts o;

    alarm(60);
    f->base = event_base_new();
    f->dir = make_tmpdir();
    assert_non_null(f->dir);
    snprintf(f->path, sizeof f->path, "%s/srv.sock", f->dir);
    f->svc.base = f->base;
    o = svc_opts(&f->svc);
    assert_int_equal(kvc_rpc_server_new(f->base, &o, &f->srv), 0);
    assert_int_equal(kvc_rpc_server_listen_unix(f->srv, f->path), 0);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;
    svc_release(&f->svc);
    kvc_rpc_server_free(f->srv);
    event_base_free(f->base);
    rm_tmpdir(f->dir);
    free(f);
    alarm(0);
    return 0;
}

static struct kvc_rpc_client *
client(struct fixture *f, struct svc *cs)
{
    struct kvc_rpc_client *cl;
    struct kvc_rpc_opts o = { 0 };
    if (cs) {
        cs->base = f->base;
        o = svc_opts(cs);
    }
    assert_int_equal(kvc_rpc_client_new_unix(f->base, f->path, &o, &cl), 0);
    return cl;
}

static int
echo(struct event_base *base, struct kvc_rpc_client *cl, uint64_t seq, struct reply *r)
{
    Kvc__Rpc__Ping p = KVC__RPC__PING__INIT;
    p.seq = seq;
    memset(r, 0, sizeof *r);
    int rc = kvc_rpc_client_call(cl, M_ECHO, &p.base, &kvc__rpc__ping__descriptor, 5000,
                                 on_reply, r);
    if (rc < 0)
        return rc;
    return run_until(base, &r->done, 10000) ? r->status : -ETIMEDOUT;
}

/* ---- raw sockets: a peer that writes whatever bytes it likes ------------*/

static int
raw_connect(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    strcpy(sa.sun_path, path);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

static void
frame(uint8_t *out, uint8_t flags, uint32_t method, uint64_t id, uint32_t len)
{
    struct kvc_rpc_header h = { flags, method, id, len };
    kvc_rpc_header_encode(&h, out);
}

struct raw_reader {
    int fd;
    uint8_t buf[65536];
    size_t len;
    bool eof;
    struct event *ev;
};

static void
raw_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct raw_reader *rr = arg;
    ssize_t n = read(fd, rr->buf + rr->len, sizeof rr->buf - rr->len);
    if (n <= 0) {
        rr->eof = true;
        event_del(rr->ev);
    } else {
        rr->len += (size_t)n;
    }
}

static void
raw_reader_start(struct event_base *base, struct raw_reader *rr, int fd)
{
    memset(rr, 0, sizeof *rr);
    rr->fd = fd;
    rr->ev = event_new(base, fd, EV_READ | EV_PERSIST, raw_read_cb, rr);
    event_add(rr->ev, NULL);
}

static void
raw_reader_stop(struct raw_reader *rr)
{
    event_free(rr->ev);
    close(rr->fd);
}

/* Waits for one whole frame after the HELLO; returns its header (and the
 * decoded error if it is one). */
static bool
raw_have_frames(struct raw_reader *rr, int want)
{
    size_t off = 0;
    int n = 0;
    while (off + KVC_RPC_HEADER_SIZE <= rr->len) {
        struct kvc_rpc_header h;
        if (kvc_rpc_header_decode(rr->buf + off, rr->len - off, 1 << 20, &h) < 0)
            return false;
        if (off + KVC_RPC_HEADER_SIZE + h.length > rr->len)
            break;
        off += KVC_RPC_HEADER_SIZE + h.length;
        n++;
    }
    return n >= want;
}

static void
raw_frame_at(struct raw_reader *rr, int index, struct kvc_rpc_header *h, Kvc__Rpc__Error **err)
{
    size_t off = 0;
    int i;
    for (i = 0;; i++) {
        assert_int_equal(kvc_rpc_header_decode(rr->buf + off, rr->len - off, 1 << 20, h), 0);
        if (i == index)
            break;
        off += KVC_RPC_HEADER_SIZE + h->length;
    }
    *err = NULL;
    if (h->flags & KVC_RPC_FLAG_ERROR)
        *err = kvc__rpc__error__unpack(NULL, h->length, rr->buf + off + KVC_RPC_HEADER_SIZE);
}

static bool raw_cond;

static void
raw_wait(struct event_base *base, struct raw_reader *rr, int frames)
{
    bool expired = false;
    struct timeval tv = { 10, 0 };
    struct event *t = evtimer_new(base, wake, &expired);
    evtimer_add(t, &tv);
    while (!raw_have_frames(rr, frames) && !rr->eof && !expired)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(t);
    (void)raw_cond;
    assert_true(raw_have_frames(rr, frames));
}

static void
raw_wait_eof(struct event_base *base, struct raw_reader *rr)
{
    assert_true(run_until(base, &rr->eof, 10000));
}

/* The server keeps serving a well-behaved client. */
static void
assert_still_serving(struct fixture *f)
{
    struct kvc_rpc_client *cl = client(f, NULL);
    struct reply r;
    assert_int_equal(echo(f->base, cl, 77, &r), KVC_RPC_OK);
    assert_true(r.seq == 77);
    kvc_rpc_client_free(cl);
}

/* ---- tests -------------------------------------------------------------*/

static void
test_round_trip(void **state)
{
    struct fixture *f = *state;
    struct kvc_rpc_client *cl = client(f, NULL);
    Kvc__Rpc__Ping p = KVC__RPC__PING__INIT;
    struct reply r;

    assert_int_equal(echo(f->base, cl, 42, &r), KVC_RPC_OK);
    assert_true(r.seq == 42);
    assert_string_equal(r.error, "");
    assert_int_equal(f->svc.connects, 1);

    /* Built-in ping, answered without a table entry. */
    memset(&r, 0, sizeof r);
    p.seq = 9;
    p.data.data = (uint8_t *)"hi";
    p.data.len = 2;
    assert_int_equal(kvc_rpc_client_call(cl, KVC_RPC_METHOD_PING, &p.base,
                                         &kvc__rpc__ping__descriptor, 5000, on_reply, &r), 0);
    assert_true(run_until(f->base, &r.done, 10000));
    assert_int_equal(r.status, KVC_RPC_OK);
    assert_string_equal(r.data, "hi");

    /* Error replies carry code and message. */
    memset(&r, 0, sizeof r);
    p.seq = 5;
    assert_int_equal(kvc_rpc_client_call(cl, M_FAIL, &p.base, NULL, 5000, on_reply, &r), 0);
    assert_true(run_until(f->base, &r.done, 10000));
    assert_int_equal(r.status, KVC_RPC_E_APP + 1);
    assert_string_equal(r.error, "boom 5");

    /* Asynchronous reply from a timer. */
    memset(&r, 0, sizeof r);
    p.seq = 20;
    assert_int_equal(kvc_rpc_client_call(cl, M_LATER, &p.base, &kvc__rpc__ping__descriptor,
                                         5000, on_reply, &r), 0);
    assert_true(run_until(f->base, &r.done, 10000));
    assert_int_equal(r.status, KVC_RPC_OK);
    assert_true(r.seq == 20);
    kvc_rpc_client_free(cl);
}

struct many {
    int done, ok, wrong;
    struct reply r[1000];
};

static void
on_many(int status, const char *error, const ProtobufCMessage *resp, void *arg)
{
    struct reply *r = arg;
    struct many *m = (struct many *)((char *)(r - r->seq) - offsetof(struct many, r));
    const Kvc__Rpc__Ping *p = (const void *)resp;
    m->done++;
    if (status == KVC_RPC_OK && p && p->seq == r->seq)
        m->ok++;
    else
        m->wrong++;
}

static void
test_1000_concurrent_requests(void **state)
{
    struct fixture *f = *state;
    struct kvc_rpc_client *cl = client(f, NULL);
    struct many *m = calloc(1, sizeof *m);
    Kvc__Rpc__Ping p = KVC__RPC__PING__INIT;
    int i;

    /* All 1,000 go out before the first reply can come back; LATER replies
     * in a scrambled order (seq % 7 ms), so ids must really be matched. */
    for (i = 0; i < 1000; i++) {
        m->r[i].seq = (uint64_t)i;
        p.seq = (uint64_t)i;
        assert_int_equal(kvc_rpc_client_call(cl, i % 2 ? M_ECHO : M_LATER, &p.base,
                                             &kvc__rpc__ping__descriptor, 20000,
                                             on_many, &m->r[i]), 0);
    }
    assert_true(run_until_count(f->base, &m->done, 1000, 30000));
    assert_int_equal(m->ok, 1000);
    assert_int_equal(m->wrong, 0);
    assert_int_equal(f->svc.connects, 1);
    kvc_rpc_client_free(cl);
    free(m);
}

static void
test_100_connections(void **state)
{
    struct fixture *f = *state;
    struct kvc_rpc_client *cl[100];
    struct many *m = calloc(1, sizeof *m);
    Kvc__Rpc__Ping p = KVC__RPC__PING__INIT;
    int i;

    for (i = 0; i < 100; i++) {
        cl[i] = client(f, NULL);
        m->r[i].seq = (uint64_t)i;
        p.seq = (uint64_t)i;
        assert_int_equal(kvc_rpc_client_call(cl[i], M_ECHO, &p.base,
                                             &kvc__rpc__ping__descriptor, 20000,
                                             on_many, &m->r[i]), 0);
    }
    assert_true(run_until_count(f->base, &m->done, 100, 30000));
    assert_int_equal(m->ok, 100);
    assert_int_equal(f->svc.connects, 100);
    for (i = 0; i < 100; i++)
        kvc_rpc_client_free(cl[i]);
    assert_true(run_until_count(f->base, &f->svc.disconnects, 100, 10000));
    free(m);
}

static void
test_oneway_and_calls_both_ways(void **state)
{
    struct fixture *f = *state;
    struct svc cs = { 0 };
    struct kvc_rpc_client *cl = client(f, &cs);
    Kvc__Rpc__Ping p = KVC__RPC__PING__INIT;
    struct reply r;
    int i;

    assert_int_equal(kvc_rpc_client_send(cl, M_EVENT, &p.base), -ENOTCONN);
    assert_true(run_until_count(f->base, &cs.connects, 1, 10000));
    for (i = 1; i <= 10; i++) {
        p.seq = (uint64_t)i;
        assert_int_equal(kvc_rpc_client_send(cl, M_EVENT, &p.base), 0);
    }
    assert_true(run_until_count(f->base, &f->svc.events, 10, 10000));
    assert_true(f->svc.event_sum == 55);

    /* The accepting side calls the dialing side on the same connection. */
    assert_non_null(f->svc.last_conn);
    memset(&r, 0, sizeof r);
    p.seq = 314;
    assert_int_equal(kvc_rpc_conn_call(f->svc.last_conn, M_ECHO, &p.base,
                                       &kvc__rpc__ping__descriptor, 5000, on_reply, &r), 0);
    assert_true(run_until(f->base, &r.done, 10000));
    assert_int_equal(r.status, KVC_RPC_OK);
    assert_true(r.seq == 314);
    assert_int_equal(kvc_rpc_conn_send(f->svc.last_conn, M_EVENT, &p.base), 0);
    assert_true(run_until_count(f->base, &cs.events, 1, 10000));
    kvc_rpc_client_free(cl);
}

static void
test_unknown_method_gets_error(void **state)
{
    struct fixture *f = *state;
    struct kvc_rpc_client *cl = client(f, NULL);
    struct raw_reader rr;
    struct kvc_rpc_header h;
    Kvc__Rpc__Error *e;
    struct reply r;
    uint8_t buf[KVC_RPC_HEADER_SIZE];

    /* Through the API ... */
    memset(&r, 0, sizeof r);
    assert_int_equal(kvc_rpc_client_call(cl, 0x7777, NULL, NULL, 5000, on_reply, &r), 0);
    assert_true(run_until(f->base, &r.done, 10000));
    assert_int_equal(r.status, KVC_RPC_E_UNKNOWN_METHOD);
    assert_non_null(strstr(r.error, "0x7777"));
    kvc_rpc_client_free(cl);

    /* ... and raw: the error answers the request id; the connection stays. */
    raw_reader_start(f->base, &rr, raw_connect(f->path));
    frame(buf, 0, 0xABCDEF, 99, 0);
    assert_int_equal(write(rr.fd, buf, sizeof buf), (ssize_t)sizeof buf);
    raw_wait(f->base, &rr, 2);                  /* HELLO + error */
    raw_frame_at(&rr, 1, &h, &e);
    assert_true(h.request_id == 99);
    assert_int_equal(h.flags, KVC_RPC_FLAG_RESPONSE | KVC_RPC_FLAG_ERROR);
    assert_non_null(e);
    assert_int_equal(e->code, KVC_RPC_E_UNKNOWN_METHOD);
    kvc__rpc__error__free_unpacked(e, NULL);
    frame(buf, 0, KVC_RPC_METHOD_PING, 100, 0);
    assert_int_equal(write(rr.fd, buf, sizeof buf), (ssize_t)sizeof buf);
    raw_wait(f->base, &rr, 3);
    raw_frame_at(&rr, 2, &h, &e);
    assert_true(h.request_id == 100);
    assert_int_equal(h.flags, KVC_RPC_FLAG_RESPONSE);
    assert_false(rr.eof);
    raw_reader_stop(&rr);
    assert_still_serving(f);
}

static void
test_undecodable_payload_gets_error(void **state)
{
    struct fixture *f = *state;
    struct raw_reader rr;
    struct kvc_rpc_header h;
    Kvc__Rpc__Error *e;
    uint8_t buf[KVC_RPC_HEADER_SIZE + 4];

    raw_reader_start(f->base, &rr, raw_connect(f->path));
    frame(buf, 0, M_ECHO, 5, 4);
    memcpy(buf + KVC_RPC_HEADER_SIZE, "\xff\xff\xff\xff", 4);  /* not protobuf */
    assert_int_equal(write(rr.fd, buf, sizeof buf), (ssize_t)sizeof buf);
    raw_wait(f->base, &rr, 2);
    raw_frame_at(&rr, 1, &h, &e);
    assert_true(h.request_id == 5);
    assert_non_null(e);
    assert_int_equal(e->code, KVC_RPC_E_BAD_REQUEST);
    kvc__rpc__error__free_unpacked(e, NULL);
    raw_reader_stop(&rr);
    assert_still_serving(f);
}

static void
test_garbage_is_closed(void **state)
{
    struct fixture *f = *state;
    struct raw_reader rr;
    static const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

    raw_reader_start(f->base, &rr, raw_connect(f->path));
    assert_int_equal(write(rr.fd, junk, sizeof junk - 1), (ssize_t)sizeof junk - 1);
    raw_wait_eof(f->base, &rr);
    raw_reader_stop(&rr);
    assert_still_serving(f);
}

static void
test_oversized_frame_rejected_before_allocation(void **state)
{
    struct fixture *f = *state;
    struct raw_reader rr;
    struct kvc_rpc_header h;
    Kvc__Rpc__Error *e;
    uint8_t buf[KVC_RPC_HEADER_SIZE];

    raw_reader_start(f->base, &rr, raw_connect(f->path));
    /* Claims 4 GiB - 1; only the header is ever sent. */
    frame(buf, 0, M_ECHO, 8, 0xffffffffu);
    assert_int_equal(write(rr.fd, buf, sizeof buf), (ssize_t)sizeof buf);
    raw_wait(f->base, &rr, 2);
    raw_frame_at(&rr, 1, &h, &e);
    assert_true(h.request_id == 8);
    assert_non_null(e);
    assert_int_equal(e->code, KVC_RPC_E_TOO_LARGE);
    kvc__rpc__error__free_unpacked(e, NULL);
    raw_wait_eof(f->base, &rr);
    raw_reader_stop(&rr);
    assert_still_serving(f);

    /* The sender checks too, before anything goes out. */
    {
        struct kvc_rpc_client *cl;
        struct kvc_rpc_opts o = { .max_frame = 100 };
        Kvc__Rpc__Ping p = KVC__RPC__PING__INIT;
        uint8_t big[200] = { 0 };
        struct reply r = { 0 };
        p.data.data = big;
        p.data.len = sizeof big;
        assert_int_equal(kvc_rpc_client_new_unix(f->base, f->path, &o, &cl), 0);
        assert_int_equal(kvc_rpc_client_call(cl, M_ECHO, &p.base, NULL, 1000, on_reply, &r),
                         -EMSGSIZE);
        kvc_rpc_client_free(cl);
    }
}

static void
test_truncated_frame_then_close(void **state)
{
    struct fixture *f = *state;
    struct raw_reader rr;
    uint8_t buf[KVC_RPC_HEADER_SIZE];

    /* Half a header, then the write side closes. */
    raw_reader_start(f->base, &rr, raw_connect(f->path));
    frame(buf, 0, M_ECHO, 8, 10);
    assert_int_equal(write(rr.fd, buf, 10), 10);
    shutdown(rr.fd, SHUT_WR);
    raw_wait_eof(f->base, &rr);
    raw_reader_stop(&rr);
    assert_int_equal(f->svc.disconnects, 1);
    assert_non_null(strstr(f->svc.last_reason, "mid-frame"));
    assert_still_serving(f);
}

static void
test_peer_killed_mid_frame(void **state)
{
    struct fixture *f = *state;
    int ready[2];
    pid_t pid;
    char c;

    /* A client process writes a header and part of its payload, then dies. */
    assert_int_equal(pipe(ready), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        uint8_t buf[KVC_RPC_HEADER_SIZE + 100];
        int fd = raw_connect(f->path);
        frame(buf, 0, M_ECHO, 1, 1000);
        memset(buf + KVC_RPC_HEADER_SIZE, 0x0a, 100);
        if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf)
            _exit(1);
        if (write(ready[1], "x", 1) != 1)
            _exit(1);
        pause();
        _exit(0);
    }
    close(ready[1]);
    assert_int_equal(read(ready[0], &c, 1), 1);
    close(ready[0]);
    assert_true(run_until_count(f->base, &f->svc.connects, 1, 10000));
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    assert_true(run_until_count(f->base, &f->svc.disconnects, 1, 10000));
    assert_non_null(strstr(f->svc.last_reason, "mid-frame"));
    assert_still_serving(f);
}

/* A server that dies halfway through writing its reply. */
static void
test_server_dies_mid_reply(void **state)
{
    struct fixture *f = *state;
    char path[300];
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct kvc_rpc_client *cl;
    struct kvc_rpc_opts o = { 0 };
    struct reply r = { 0 };
    Kvc__Rpc__Ping p = KVC__RPC__PING__INIT;
    pid_t pid;

    snprintf(path, sizeof path, "%s/fake.sock", f->dir);
    strcpy(sa.sun_path, path);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(lfd, 4), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        uint8_t buf[KVC_RPC_HEADER_SIZE + 64];
        int fd = accept(lfd, NULL, NULL);
        frame(buf, KVC_RPC_FLAG_ONEWAY, KVC_RPC_METHOD_HELLO, 0, 0);
        if (fd < 0 || write(fd, buf, KVC_RPC_HEADER_SIZE) != KVC_RPC_HEADER_SIZE)
            _exit(1);
        if (read(fd, buf, sizeof buf) < KVC_RPC_HEADER_SIZE)
            _exit(1);
        frame(buf, KVC_RPC_FLAG_RESPONSE, M_ECHO, 1, 50);
        if (write(fd, buf, KVC_RPC_HEADER_SIZE + 3) < 0)
            _exit(1);
        kill(getpid(), SIGKILL);
    }
    close(lfd);
    assert_int_equal(kvc_rpc_client_new_unix(f->base, path, &o, &cl), 0);
    assert_int_equal(kvc_rpc_client_call(cl, M_ECHO, &p.base, &kvc__rpc__ping__descriptor,
                                         10000, on_reply, &r), 0);
    assert_true(run_until(f->base, &r.done, 15000));
    assert_int_equal(r.status, KVC_RPC_E_DISCONNECTED);
    assert_non_null(strstr(r.error, "mid-frame"));
    waitpid(pid, NULL, 0);
    kvc_rpc_client_free(cl);
}

static void
test_peercred_reported(void **state)
{
    struct fixture *f = *state;
    int fds[2];
    pid_t pid;
    char buf[128] = "", expect[128];
    ssize_t n;

    /* The caller is another process: the server must name its pid. */
    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct event_base *b = event_base_new();
        struct kvc_rpc_client *cl;
        struct kvc_rpc_opts o = { 0 };
        ProtobufCMessage *resp = NULL;
        char *err = NULL;
        close(fds[0]);
        if (kvc_rpc_client_new_unix(b, f->path, &o, &cl) < 0)
            _exit(1);
        int st = kvc_rpc_call_sync(cl, M_WHO, NULL, &kvc__rpc__ping__descriptor, 10000,
                                   &resp, &err);
        if (st == KVC_RPC_OK) {
            const Kvc__Rpc__Ping *p = (const void *)resp;
            if (write(fds[1], p->data.data, p->data.len) < 0)
                _exit(1);
        } else {
            dprintf(fds[1], "error %d %s", st, err);
        }
        _exit(0);
    }
    close(fds[1]);
    /* Serve while the child asks. */
    struct event *ev;
    bool got = false;
    ev = event_new(f->base, fds[0], EV_READ, wake, &got);
    event_add(ev, NULL);
    assert_true(run_until(f->base, &got, 15000));
    event_free(ev);
    n = read(fds[0], buf, sizeof buf - 1);
    assert_true(n > 0);
    buf[n] = 0;
    close(fds[0]);
    waitpid(pid, NULL, 0);
    snprintf(expect, sizeof expect, "uid=%u pid=%d", (unsigned)getuid(), (int)pid);
    assert_string_equal(buf, expect);
}

static void
test_peercred_both_ends_in_process(void **state)
{
    struct fixture *f = *state;
    struct svc cs = { 0 };
    struct kvc_rpc_client *cl = client(f, &cs);
    uid_t uid;
    pid_t pid;
    gid_t gid;

    assert_true(run_until_count(f->base, &cs.connects, 1, 10000));
    assert_int_equal(kvc_rpc_conn_peer_cred(kvc_rpc_client_conn(cl), &uid, &pid, &gid), 0);
    assert_int_equal(pid, getpid());
    assert_int_equal(uid, getuid());
    assert_int_equal(gid, getgid());
    assert_null(kvc_rpc_conn_peer_thumbprint(kvc_rpc_client_conn(cl)));
    assert_non_null(strstr(kvc_rpc_conn_peer_name(f->svc.last_conn), "unix:pid="));
    kvc_rpc_client_free(cl);
}

static void
test_per_call_timeout(void **state)
{
    struct fixture *f = *state;
    struct kvc_rpc_client *cl = client(f, NULL);
    Kvc__Rpc__Ping p = KVC__RPC__PING__INIT;
    struct reply r = { 0 }, r2;

    assert_int_equal(kvc_rpc_client_call(cl, M_NEVER, &p.base, &kvc__rpc__ping__descriptor,
                                         200, on_reply, &r), 0);
    assert_true(run_until(f->base, &r.done, 10000));
    assert_int_equal(r.status, KVC_RPC_E_TIMEOUT);
    assert_non_null(strstr(r.error, "200 ms"));
    /* The late reply is dropped quietly; the connection carries on. */
    assert_int_equal(f->svc.n_held, 1);
    assert_int_equal(kvc_rpc_reply(f->svc.held[0], &p.base), 0);
    f->svc.n_held = 0;
    assert_int_equal(echo(f->base, cl, 3, &r2), KVC_RPC_OK);
    kvc_rpc_client_free(cl);
}

static void
test_disconnect_fails_calls_in_flight(void **state)
{
    struct fixture *f = *state;
    struct svc cs = { 0 };
    struct kvc_rpc_client *cl = client(f, &cs);
    Kvc__Rpc__Ping p = KVC__RPC__PING__INIT;
    struct reply r = { 0 }, r2 = { 0 };

    assert_int_equal(kvc_rpc_client_call(cl, M_NEVER, &p.base, NULL, 0, on_reply, &r), 0);
    assert_true(run_until_count(f->base, &f->svc.n_held, 1, 10000));
    kvc_rpc_conn_close(f->svc.last_conn);
    assert_true(run_until(f->base, &r.done, 10000));
    assert_int_equal(r.status, KVC_RPC_E_DISCONNECTED);
    assert_int_equal(cs.disconnects, 1);
    /* An answer to a call whose connection is gone is dropped. */
    assert_null(kvc_rpc_call_conn(f->svc.held[0]));
    assert_int_equal(kvc_rpc_reply(f->svc.held[0], NULL), -ENOTCONN);
    f->svc.n_held = 0;
    /* Without reconnect, later calls fail UNAVAILABLE (from the loop). */
    assert_int_equal(kvc_rpc_client_call(cl, M_ECHO, &p.base, NULL, 1000, on_reply, &r2), 0);
    assert_false(r2.done);
    assert_true(run_until(f->base, &r2.done, 10000));
    assert_int_equal(r2.status, KVC_RPC_E_UNAVAILABLE);
    kvc_rpc_client_free(cl);
}

static void
test_sync_call(void **state)
{
    struct fixture *f = *state;
    struct kvc_rpc_client *cl = client(f, NULL);
    Kvc__Rpc__Ping p = KVC__RPC__PING__INIT;
    ProtobufCMessage *resp = NULL;
    char *err = NULL, nopath[300];
    struct kvc_rpc_opts o = { 0 };

    p.seq = 11;
    assert_int_equal(kvc_rpc_call_sync(cl, M_ECHO, &p.base, &kvc__rpc__ping__descriptor,
                                       5000, &resp, &err), KVC_RPC_OK);
    assert_null(err);
    assert_true(((Kvc__Rpc__Ping *)resp)->seq == 11);
    protobuf_c_message_free_unpacked(resp, NULL);
    assert_int_equal(kvc_rpc_call_sync(cl, M_FAIL, &p.base, NULL, 5000, NULL, &err),
                     KVC_RPC_E_APP + 1);
    assert_string_equal(err, "boom 11");
    free(err);
    kvc_rpc_client_free(cl);

    snprintf(nopath, sizeof nopath, "%s/nobody.sock", f->dir);
    assert_int_equal(kvc_rpc_client_new_unix(f->base, nopath, &o, &cl), 0);
    assert_int_equal(kvc_rpc_call_sync(cl, M_ECHO, &p.base, NULL, 5000, NULL, &err),
                     KVC_RPC_E_UNAVAILABLE);
    assert_non_null(strstr(err, "No such file"));
    free(err);
    kvc_rpc_client_free(cl);
}

/* A server in a child process, so it can be killed and restarted. */
static pid_t
spawn_server(const char *path)
{
    int fds[2];
    char c;
    pid_t pid;

    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct event_base *b = event_base_new();
        struct svc s = { .base = b };
        struct kvc_rpc_opts o = svc_opts(&s);
        struct kvc_rpc_server *srv;
        close(fds[0]);
        if (kvc_rpc_server_new(b, &o, &srv) < 0 || kvc_rpc_server_listen_unix(srv, path) < 0)
            _exit(1);
        if (write(fds[1], "x", 1) != 1)
            _exit(1);
        close(fds[1]);
        event_base_dispatch(b);
        _exit(0);
    }
    close(fds[1]);
    assert_int_equal(read(fds[0], &c, 1), 1);
    close(fds[0]);
    return pid;
}

static void
test_reconnect_with_backoff(void **state)
{
    struct fixture *f = *state;
    struct svc cs = { .base = f->base };
    struct kvc_rpc_opts o = svc_opts(&cs);
    struct kvc_rpc_client *cl;
    char path[300];
    struct reply r;
    pid_t pid;

    snprintf(path, sizeof path, "%s/restart.sock", f->dir);
    o.reconnect = true;
    o.backoff_initial_ms = 20;
    o.backoff_max_ms = 200;
    /* Starts before its server exists: retries until it appears. */
    assert_int_equal(kvc_rpc_client_new_unix(f->base, path, &o, &cl), 0);
    run_for(f->base, 100);
    assert_int_equal(cs.connects, 0);
    assert_non_null(strstr(kvc_rpc_client_last_error(cl), "No such file"));
    pid = spawn_server(path);
    assert_true(run_until_count(f->base, &cs.connects, 1, 10000));
    assert_int_equal(echo(f->base, cl, 1, &r), KVC_RPC_OK);

    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    assert_true(run_until_count(f->base, &cs.disconnects, 1, 10000));
    assert_null(kvc_rpc_client_conn(cl));
    /* A call made while the server is down waits for the reconnect. */
    memset(&r, 0, sizeof r);
    Kvc__Rpc__Ping p = KVC__RPC__PING__INIT;
    p.seq = 2;
    assert_int_equal(kvc_rpc_client_call(cl, M_ECHO, &p.base, &kvc__rpc__ping__descriptor,
                                         20000, on_reply, &r), 0);
    run_for(f->base, 300);
    assert_false(r.done);
    pid = spawn_server(path);
    assert_true(run_until_count(f->base, &cs.connects, 2, 10000));
    assert_true(run_until(f->base, &r.done, 10000));
    assert_int_equal(r.status, KVC_RPC_OK);
    assert_true(r.seq == 2);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    kvc_rpc_client_free(cl);
}

static void
test_free_from_callback(void **state)
{
    struct fixture *f = *state;
    struct kvc_rpc_client *cl = client(f, NULL);
    struct reply r;

    /* Freeing the server while its connection is up: the client sees the
     * disconnect, nothing leaks or crashes (ASan checks). */
    assert_int_equal(echo(f->base, cl, 1, &r), KVC_RPC_OK);
    kvc_rpc_server_free(f->srv);
    f->srv = NULL;
    memset(&r, 0, sizeof r);
    Kvc__Rpc__Ping p = KVC__RPC__PING__INIT;
    assert_int_equal(kvc_rpc_client_call(cl, M_ECHO, &p.base, NULL, 5000, on_reply, &r), 0);
    assert_true(run_until(f->base, &r.done, 10000));
    assert_true(r.status == KVC_RPC_E_DISCONNECTED || r.status == KVC_RPC_E_UNAVAILABLE);
    kvc_rpc_client_free(cl);
}

struct nested {
    struct kvc_rpc_client *cl;
    int status;
    bool done;
};

static void
on_reply_nested(int status, const char *error, const ProtobufCMessage *resp, void *arg)
{
    struct nested *n = arg;
    char *err = NULL;
    /* A synchronous call from inside the loop fails at once, no hang. */
    n->status = kvc_rpc_call_sync(n->cl, M_ECHO, NULL, NULL, 1000, NULL, &err);
    free(err);
    n->done = true;
}

static void
test_sync_call_inside_loop_fails_fast(void **state)
{
    struct fixture *f = *state;
    struct nested n = { .cl = client(f, NULL) };
    Kvc__Rpc__Ping p = KVC__RPC__PING__INIT;
    struct reply r;

    assert_int_equal(kvc_rpc_client_call(n.cl, M_ECHO, &p.base, NULL, 5000, on_reply_nested, &n), 0);
    assert_true(run_until(f->base, &n.done, 10000));
    assert_int_equal(n.status, KVC_RPC_E_INTERNAL);
    assert_int_equal(echo(f->base, n.cl, 4, &r), KVC_RPC_OK);
    kvc_rpc_client_free(n.cl);
}

static void
test_bad_method_table(void **state)
{
    struct fixture *f = *state;
    struct kvc_rpc_server *srv;
    struct kvc_rpc_method dup[2] = { svc_methods[0], svc_methods[0] };
    struct kvc_rpc_opts o = { .methods = dup, .n_methods = 2 };

    assert_int_equal(kvc_rpc_server_new(f->base, &o, &srv), -EINVAL);
    assert_null(srv);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_1000_concurrent_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_100_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oneway_and_calls_both_ways, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_method_gets_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_undecodable_payload_gets_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_is_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_frame_rejected_before_allocation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_frame_then_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peer_killed_mid_frame, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_dies_mid_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peercred_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peercred_both_ends_in_process, setup, teardown),
        cmocka_unit_test_setup_teardown(test_per_call_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disconnect_fails_calls_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconnect_with_backoff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_from_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_call_inside_loop_fails_fast, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_method_table, setup, teardown),
    };
    signal(SIGPIPE, SIG_IGN);
    kvc_log_init("test_rpc");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
