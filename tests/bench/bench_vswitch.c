/* vSwitch benchmarks beside the Linux bridge (docs/benchmarks.md).
 *
 *   vswitch-pps-64      60-byte frames (64 on the wire with FCS) per second
 *   vswitch-gbps-1500   1514-byte frames, Gbit/s of frame bytes
 *
 * Both sides get the same sender and receiver threads, the same frames,
 * batches of 32, and count the same thing: marked frames that reached the
 * receiver during the measured window.  Ours: each endpoint is the VM side
 * of a ring port (memfd rings, eventfd kicks), the switch runs its data
 * path thread.  The peer: each endpoint is a veth in its own network
 * namespace (created here) on a Linux bridge in a third namespace, frames
 * sent with AF_PACKET sendmmsg (qdisc bypassed) and received with recvmmsg.
 * Medians over several alternating runs; the spread is max-min.
 * Needs root for the namespaces; prints BENCH-SKIP otherwise. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "ring.h"
#include "vswitch.h"

#define BATCH 32
#define ETHERTYPE_BENCH 0x88b5
#define RUNS 5
#define WARMUP_MS 200
#define WINDOW_MS 1000

static atomic_bool stop;
static _Atomic uint64_t rx_frames, rx_bytes, tx_frames;
static char ns[3][64];
static bool ns_made;

static const uint8_t MAC_A[6] = { 0x02, 0x00, 0x00, 0x00, 0xbe, 0x0a };
static const uint8_t MAC_B[6] = { 0x02, 0x00, 0x00, 0x00, 0xbe, 0x0b };

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
mkframe(uint8_t *f, size_t len, const uint8_t *dst, const uint8_t *src)
{
    memset(f, 0x5a, len);
    memcpy(f, dst, 6);
    memcpy(f + 6, src, 6);
    f[12] = ETHERTYPE_BENCH >> 8;
    f[13] = ETHERTYPE_BENCH & 0xff;
}

static bool
is_bench(const uint8_t *f, uint32_t len)
{
    return len >= 14 && f[12] == (ETHERTYPE_BENCH >> 8) && f[13] == (ETHERTYPE_BENCH & 0xff);
}

/* Measure: start, warm up, count over the window, stop.  Returns the rate
 * of frames (or bytes*8/1e9 when gbps). */
static double
measure(bool gbps)
{
    struct timespec w = { 0, WARMUP_MS * 1000000L };
    nanosleep(&w, NULL);
    uint64_t f0 = atomic_load(&rx_frames), b0 = atomic_load(&rx_bytes);
    double t0 = now_s();
    struct timespec win = { WINDOW_MS / 1000, (WINDOW_MS % 1000) * 1000000L };
    nanosleep(&win, NULL);
    uint64_t f1 = atomic_load(&rx_frames), b1 = atomic_load(&rx_bytes);
    double dt = now_s() - t0;
    atomic_store(&stop, true);
    if (getenv("KVC_BENCH_DEBUG"))
        fprintf(stderr, "sent %llu received %llu in %.2fs\n",
                (unsigned long long)atomic_load(&tx_frames),
                (unsigned long long)atomic_load(&rx_frames), dt + WARMUP_MS / 1000.0);
    return gbps ? (double)(b1 - b0) * 8 / 1e9 / dt : (double)(f1 - f0) / dt;
}

/* --- Ours: the VM side of two ring ports --------------------------------- */
struct ring_ep {
    struct kvc_ring_region rg;
    int kick_fd, call_fd;
    size_t len;
};

static void
wait_fd(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    poll(&p, 1, 10);
    kvc_ring_drain(fd);
}

static void *
ring_sender(void *arg)
{
    struct ring_ep *e = arg;
    struct kvc_ring *tx = &e->rg.tx;
    uint8_t tmpl[2048];
    mkframe(tmpl, e->len, MAC_B, MAC_A);
    uint32_t seq = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        int space = kvc_ring_prod_space(tx);
        if (space <= 0) {
            if (!kvc_ring_prod_prepare_wait(tx))
                wait_fd(e->call_fd);
            continue;
        }
        int n = space < BATCH ? space : BATCH;
        for (int i = 0; i < n; i++) {
            struct kvc_ring_slot *s = kvc_ring_slot(tx, tx->shadow);
            memcpy(s->data, tmpl, e->len);
            memcpy(s->data + 14, &seq, sizeof seq);
            seq++;
            s->len = (uint32_t)e->len;
            tx->shadow++;
        }
        atomic_fetch_add_explicit(&tx_frames, (uint64_t)n, memory_order_relaxed);
        if (kvc_ring_prod_publish(tx))
            kvc_ring_kick(e->kick_fd);
    }
    return NULL;
}

static void *
ring_receiver(void *arg)
{
    struct ring_ep *e = arg;
    struct kvc_ring *rx = &e->rg.rx;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        int n = kvc_ring_cons_avail(rx);
        if (n <= 0) {
            if (!kvc_ring_cons_prepare_wait(rx))
                wait_fd(e->call_fd);
            continue;
        }
        if (n > BATCH)
            n = BATCH;
        uint64_t f = 0, b = 0;
        for (int i = 0; i < n; i++) {
            struct kvc_ring_slot *s = kvc_ring_slot(rx, rx->shadow + (uint32_t)i);
            uint32_t len = s->len;
            if (len <= kvc_ring_slot_cap(rx) && is_bench(s->data, len)) {
                f++;
                b += len;
            }
        }
        rx->shadow += (uint32_t)n;
        kvc_ring_cons_release(rx);
        atomic_fetch_add_explicit(&rx_frames, f, memory_order_relaxed);
        atomic_fetch_add_explicit(&rx_bytes, b, memory_order_relaxed);
    }
    return NULL;
}

static int
attach(struct vs_port *p, struct ring_ep *e)
{
    int memfd;
    vs_port_ring_fds(p, &memfd, &e->kick_fd, &e->call_fd);
    int rc = kvc_ring_region_map(memfd, &e->rg);
    if (!rc) {
        kvc_ring_attach_producer(&e->rg.tx);
        kvc_ring_attach_consumer(&e->rg.rx);
    }
    return rc;
}

static double
run_ours(size_t len, bool gbps)
{
    struct vs_switch *sw;
    struct vs_port *pa, *pb;
    struct ring_ep a = { .len = len }, b = { .len = len };
    struct vs_pg_config c;
    vs_pg_config_default(&c, false);
    if (vs_create(NULL, &sw) || vs_pg_add(sw, "bench", &c)
        || vs_port_add_ring(sw, "a", "bench", MAC_A, NULL, &pa)
        || vs_port_add_ring(sw, "b", "bench", MAC_B, NULL, &pb)
        || attach(pa, &a) || attach(pb, &b)) {
        fprintf(stderr, "bench_vswitch: cannot set up the switch\n");
        exit(1);
    }
    vs_start(sw);
    /* B says hello so the switch learns it (the peer gets the same). */
    struct kvc_ring_slot *s = kvc_ring_slot(&b.rg.tx, b.rg.tx.shadow);
    mkframe(s->data, 60, (const uint8_t *)"\xff\xff\xff\xff\xff\xff", MAC_B);
    s->data[12] = 0x88; s->data[13] = 0xb6;
    s->len = 60;
    b.rg.tx.shadow++;
    kvc_ring_prod_publish(&b.rg.tx);
    kvc_ring_kick(b.kick_fd);
    char name[64];
    for (int i = 0; i < 2000 && vs_mac_lookup(sw, 0, MAC_B, name, sizeof name); i++)
        usleep(1000);
    atomic_store(&stop, false);
    atomic_store(&rx_frames, 0);
    atomic_store(&rx_bytes, 0);
    atomic_store(&tx_frames, 0);
    pthread_t ts, tr;
    pthread_create(&tr, NULL, ring_receiver, &b);
    pthread_create(&ts, NULL, ring_sender, &a);
    double r = measure(gbps);
    pthread_join(ts, NULL);
    pthread_join(tr, NULL);
    vs_stop(sw);
    kvc_ring_region_unmap(&a.rg);
    kvc_ring_region_unmap(&b.rg);
    vs_destroy(sw);
    return r;
}

/* --- Peer: Linux bridge with veth pairs in namespaces ------------------- */
static int
sh(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return system(cmd);
}

static void
cleanup(void)
{
    if (!ns_made)
        return;
    for (int i = 0; i < 3; i++)
        sh("ip netns del %s 2>/dev/null", ns[i]);
    ns_made = false;
}

static void
on_signal(int sig)
{
    cleanup();
    _exit(128 + sig);
}

static int
bridge_setup(void)
{
    for (int i = 0; i < 3; i++)
        snprintf(ns[i], sizeof ns[i], "kvcbench-%d-%c", (int)getpid(), "abr"[i]);
    ns_made = true;
    const char *A = ns[0], *B = ns[1], *R = ns[2];
    int rc = 0;
    rc |= sh("ip netns add %s && ip netns add %s && ip netns add %s", A, B, R);
    rc |= sh("ip -n %s link add br0 type bridge stp_state 0 forward_delay 0", R);
    rc |= sh("ip -n %s link add a1 type veth peer name a0 netns %s", R, A);
    rc |= sh("ip -n %s link add b1 type veth peer name b0 netns %s", R, B);
    rc |= sh("ip -n %s link set a1 master br0 && ip -n %s link set b1 master br0", R, R);
    rc |= sh("ip -n %s link set a0 address 02:00:00:00:be:0a && ip -n %s link set b0 address 02:00:00:00:be:0b", A, B);
    for (int i = 0; i < 3; i++)
        sh("ip netns exec %s sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 >/dev/null 2>&1", ns[i]);
    rc |= sh("ip -n %s link set a1 up && ip -n %s link set b1 up && ip -n %s link set br0 up", R, R, R);
    rc |= sh("ip -n %s link set a0 up && ip -n %s link set b0 up", A, B);
    return rc ? -1 : 0;
}

/* Open an AF_PACKET socket on ifname inside namespace nsname. */
static int
packet_socket(const char *nsname, const char *ifname, bool rx)
{
    char path[256];
    snprintf(path, sizeof path, "/var/run/netns/%s", nsname);
    int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    int target = open(path, O_RDONLY | O_CLOEXEC);
    int fd = -1;
    if (self < 0 || target < 0 || setns(target, CLONE_NEWNET) < 0)
        goto out;
    fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(rx ? ETHERTYPE_BENCH : 0));
    if (fd >= 0) {
        struct sockaddr_ll sll = {
            .sll_family = AF_PACKET,
            .sll_protocol = htons(rx ? ETHERTYPE_BENCH : 0),
            .sll_ifindex = (int)if_nametoindex(ifname),
        };
        int one = 1, big = 32 << 20;
        if (!rx)
            setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one);
        setsockopt(fd, SOL_SOCKET, rx ? SO_RCVBUFFORCE : SO_SNDBUFFORCE, &big, sizeof big);
        struct timeval tv = { 0, 100000 };
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) {
            close(fd);
            fd = -1;
        }
    }
    if (setns(self, CLONE_NEWNET) < 0) {
        perror("setns back");
        exit(1);
    }
out:
    if (self >= 0)
        close(self);
    if (target >= 0)
        close(target);
    return fd;
}

struct pkt_ep {
    int fd;
    size_t len;
};

static void *
packet_sender(void *arg)
{
    struct pkt_ep *e = arg;
    static uint8_t frames[BATCH][2048];
    struct mmsghdr m[BATCH];
    struct iovec iov[BATCH];
    for (int i = 0; i < BATCH; i++) {
        mkframe(frames[i], e->len, MAC_B, MAC_A);
        iov[i].iov_base = frames[i];
        iov[i].iov_len = e->len;
        memset(&m[i], 0, sizeof m[i]);
        m[i].msg_hdr.msg_iov = &iov[i];
        m[i].msg_hdr.msg_iovlen = 1;
    }
    uint32_t seq = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        for (int i = 0; i < BATCH; i++, seq++)
            memcpy(frames[i] + 14, &seq, sizeof seq);
        int n = sendmmsg(e->fd, m, BATCH, 0);
        if (n > 0)
            atomic_fetch_add_explicit(&tx_frames, (uint64_t)n, memory_order_relaxed);
        else if (errno != ENOBUFS && errno != EAGAIN)
            break;
    }
    return NULL;
}

static void *
packet_receiver(void *arg)
{
    struct pkt_ep *e = arg;
    static uint8_t frames[BATCH][2048];
    struct mmsghdr m[BATCH];
    struct iovec iov[BATCH];
    for (int i = 0; i < BATCH; i++) {
        iov[i].iov_base = frames[i];
        iov[i].iov_len = sizeof frames[i];
        memset(&m[i], 0, sizeof m[i]);
        m[i].msg_hdr.msg_iov = &iov[i];
        m[i].msg_hdr.msg_iovlen = 1;
    }
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        int n = recvmmsg(e->fd, m, BATCH, MSG_WAITFORONE, NULL);
        if (n <= 0)
            continue;
        uint64_t f = 0, b = 0;
        for (int i = 0; i < n; i++)
            if (is_bench(frames[i], m[i].msg_len)) {
                f++;
                b += m[i].msg_len;
            }
        atomic_fetch_add_explicit(&rx_frames, f, memory_order_relaxed);
        atomic_fetch_add_explicit(&rx_bytes, b, memory_order_relaxed);
    }
    return NULL;
}

static double
run_bridge(size_t len, bool gbps)
{
    struct pkt_ep tx = { packet_socket(ns[0], "a0", false), len };
    struct pkt_ep rx = { packet_socket(ns[1], "b0", true), len };
    if (tx.fd < 0 || rx.fd < 0) {
        fprintf(stderr, "bench_vswitch: AF_PACKET sockets: %s\n", strerror(errno));
        return -1;
    }
    /* Hello from B: the bridge learns b0's MAC. */
    int hello = packet_socket(ns[1], "b0", false);
    uint8_t h[60];
    mkframe(h, 60, (const uint8_t *)"\xff\xff\xff\xff\xff\xff", MAC_B);
    h[13] = 0xb6;
    if (hello >= 0) {
        send(hello, h, sizeof h, 0);
        close(hello);
    }
    usleep(20000);
    atomic_store(&stop, false);
    atomic_store(&rx_frames, 0);
    atomic_store(&rx_bytes, 0);
    atomic_store(&tx_frames, 0);
    pthread_t ts, tr;
    pthread_create(&tr, NULL, packet_receiver, &rx);
    pthread_create(&ts, NULL, packet_sender, &tx);
    double r = measure(gbps);
    pthread_join(ts, NULL);
    pthread_join(tr, NULL);
    close(tx.fd);
    close(rx.fd);
    return r;
}

static int
cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double
median(double *v, int n, double *spread)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    *spread = v[n - 1] - v[0];
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void
bench(const char *name, size_t len, bool gbps)
{
    double ours[RUNS], peer[RUNS], so, sp;
    for (int i = 0; i < RUNS; i++) {
        ours[i] = run_ours(len, gbps);
        peer[i] = run_bridge(len, gbps);
        if (peer[i] < 0) {
            printf("BENCH-SKIP %s AF_PACKET on the bridge's veths failed\n", name);
            return;
        }
    }
    double mo = median(ours, RUNS, &so), mp = median(peer, RUNS, &sp);
    int prec = gbps ? 3 : 0;
    /* ours= and linux-bridge= are medians of RUNS runs; spread is max-min
     * of ours, linux-bridge-spread the peer's (same unit). */
    printf("BENCH %s ours=%.*f linux-bridge=%.*f unit=%s ratio=%.2f median=%.*f spread=%.*f "
           "linux-bridge-spread=%.*f runs=%d\n",
           name, prec, mo, prec, mp, gbps ? "Gbit/s" : "pkt/s", mp > 0 ? mo / mp : 0.0,
           prec, mo, prec, so, prec, sp, RUNS);
    fflush(stdout);
}

int
main(int argc, char **argv)
{
    kvc_log_init("bench_vswitch");
    kvc_log_set_default_level(KVC_LOG_WARN);
    const char *why = NULL;
    if (geteuid() != 0)
        why = "needs root for network namespaces and AF_PACKET";
    else if (system("ip netns list >/dev/null 2>&1") != 0)
        why = "the ip command (iproute2) is missing or netns is unsupported";
    if (why) {
        printf("BENCH-SKIP vswitch-pps-64 %s\nBENCH-SKIP vswitch-gbps-1500 %s\n", why, why);
        return 0;
    }
    atexit(cleanup);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    if (bridge_setup() < 0) {
        cleanup();
        printf("BENCH-SKIP vswitch-pps-64 cannot create namespaces, veths or a bridge here\n"
               "BENCH-SKIP vswitch-gbps-1500 cannot create namespaces, veths or a bridge here\n");
        return 0;
    }
    bench("vswitch-pps-64", 60, false);
    bench("vswitch-gbps-1500", 1514, true);
    cleanup();
    return 0;
}
