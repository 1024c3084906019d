/* BENCH rpc-roundtrip-unix: one synchronous call at a time (Ping with 64
 * bytes, echoed) over a unix socket to a server in another process, in
 * microseconds per round trip.  The peer ("raw") is the least any transport
 * can do with the same framing: blocking write() of the same 24-byte header
 * and payload, blocking read() of the echo, a server looping on read/write,
 * no event loop, no protobuf, no dispatch.  ratio = ours/raw, lower is
 * better; it is the price of the transport's machinery. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "rpc.h"
#include "rpc.pb-c.h"

#define CALLS 20000
#define RUNS 5
#define PAYLOAD 64

static double
now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int
cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void
h_echo(struct kvc_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
    kvc_rpc_reply(call, req);
}

static const struct kvc_rpc_method methods[] = {
    { 0x6001, "Echo", &kvc__rpc__ping__descriptor, &kvc__rpc__ping__descriptor, h_echo },
};

static pid_t
spawn(void (*serve)(const char *), const char *path)
{
    int fds[2];
    char c;
    pid_t pid;

    if (pipe(fds) < 0)
        exit(1);
    pid = fork();
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 100);
        close(fds[1]);
        serve(path);
        _exit(0);
    }
    close(fds[1]);
    if (read(fds[0], &c, 1) != 1) {
        fprintf(stderr, "server did not start\n");
        exit(1);
    }
    close(fds[0]);
    return pid;
}

static void
ready(void)
{
    if (write(100, "x", 1) != 1)
        _exit(1);
    close(100);
}

static void
serve_ours(const char *path)
{
    struct event_base *b = event_base_new();
    struct kvc_rpc_opts o = { .methods = methods, .n_methods = 1 };
    struct kvc_rpc_server *srv;

    if (kvc_rpc_server_new(b, &o, &srv) < 0 || kvc_rpc_server_listen_unix(srv, path) < 0)
        _exit(1);
    ready();
    event_base_dispatch(b);
}

static int
full_io(int fd, void *buf, size_t len, bool wr)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = wr ? write(fd, (char *)buf + off, len - off)
                       : read(fd, (char *)buf + off, len - off);
        if (n <= 0)
            return -1;
        off += (size_t)n;
    }
    return 0;
}

static void
serve_raw(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int l = socket(AF_UNIX, SOCK_STREAM, 0), fd;
    uint8_t buf[KVC_RPC_HEADER_SIZE + 4096];

    strcpy(sa.sun_path, path);
    if (bind(l, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(l, 4) < 0)
        _exit(1);
    ready();
    while ((fd = accept(l, NULL, NULL)) >= 0) {
        for (;;) {
            struct kvc_rpc_header h;
            if (full_io(fd, buf, KVC_RPC_HEADER_SIZE, false) < 0
                || kvc_rpc_header_decode(buf, KVC_RPC_HEADER_SIZE, 4096, &h) < 0
                || full_io(fd, buf + KVC_RPC_HEADER_SIZE, h.length, false) < 0)
                break;
            h.flags = KVC_RPC_FLAG_RESPONSE;
            kvc_rpc_header_encode(&h, buf);
            if (full_io(fd, buf, KVC_RPC_HEADER_SIZE + h.length, true) < 0)
                break;
        }
        close(fd);
    }
}

static double
run_ours(const char *path, int calls)
{
    struct event_base *b = event_base_new();
    struct kvc_rpc_opts o = { 0 };
    struct kvc_rpc_client *cl;
    Kvc__Rpc__Ping p = KVC__RPC__PING__INIT;
    uint8_t data[PAYLOAD] = { 0 };
    ProtobufCMessage *resp;
    double t0;
    int i;

    p.data.data = data;
    p.data.len = sizeof data;
    if (kvc_rpc_client_new_unix(b, path, &o, &cl) < 0
        || kvc_rpc_call_sync(cl, KVC_RPC_METHOD_PING, &p.base, NULL, 5000, NULL, NULL) != 0)
        exit(1);
    t0 = now_us();
    for (i = 0; i < calls; i++) {
        p.seq = (uint64_t)i;
        if (kvc_rpc_call_sync(cl, 0x6001, &p.base, &kvc__rpc__ping__descriptor, 5000,
                              &resp, NULL) != 0)
            exit(1);
        protobuf_c_message_free_unpacked(resp, NULL);
    }
    t0 = (now_us() - t0) / calls;
    kvc_rpc_client_free(cl);
    event_base_free(b);
    return t0;
}

static double
run_raw(const char *path, int calls)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM, 0), i;
    uint8_t buf[KVC_RPC_HEADER_SIZE + PAYLOAD + 8];
    struct kvc_rpc_header h = { 0, 0x6001, 0, 0 };
    size_t len = PAYLOAD + 4;           /* the same bytes protobuf would send */
    double t0;

    strcpy(sa.sun_path, path);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
        exit(1);
    memset(buf, 0, sizeof buf);
    h.length = (uint32_t)len;
    t0 = now_us();
    for (i = 0; i < calls; i++) {
        h.request_id = (uint64_t)i + 1;
        kvc_rpc_header_encode(&h, buf);
        if (full_io(fd, buf, KVC_RPC_HEADER_SIZE + len, true) < 0
            || full_io(fd, buf, KVC_RPC_HEADER_SIZE + len, false) < 0)
            exit(1);
    }
    t0 = (now_us() - t0) / calls;
    close(fd);
    return t0;
}

int
main(void)
{
    char dir[] = "/tmp/kvc-bench-rpc-XXXXXX", ours_path[64], raw_path[64];
    double ours[RUNS], raw[RUNS];
    pid_t a, b;
    int i;

    signal(SIGPIPE, SIG_IGN);
    kvc_log_set_default_level(KVC_LOG_WARN);
    if (!mkdtemp(dir))
        return 1;
    snprintf(ours_path, sizeof ours_path, "%s/ours.sock", dir);
    snprintf(raw_path, sizeof raw_path, "%s/raw.sock", dir);
    a = spawn(serve_ours, ours_path);
    b = spawn(serve_raw, raw_path);
    run_ours(ours_path, CALLS / 10);    /* warm-up */
    run_raw(raw_path, CALLS / 10);
    for (i = 0; i < RUNS; i++) {
        ours[i] = run_ours(ours_path, CALLS);
        raw[i] = run_raw(raw_path, CALLS);
    }
    kill(a, SIGKILL);
    kill(b, SIGKILL);
    waitpid(a, NULL, 0);
    waitpid(b, NULL, 0);
    unlink(ours_path);
    unlink(raw_path);
    rmdir(dir);
    qsort(ours, RUNS, sizeof *ours, cmp_d);
    qsort(raw, RUNS, sizeof *raw, cmp_d);
    printf("BENCH rpc-roundtrip-unix ours=%.1f raw=%.1f unit=us ratio=%.2f median=%.1f spread=%.1f\n",
           ours[RUNS / 2], raw[RUNS / 2], ours[RUNS / 2] / raw[RUNS / 2], ours[RUNS / 2],
           ours[RUNS - 1] - ours[0]);
    return 0;
}
