/* Live migration between two vmx processes: protocol and phases in
 * migrate.h, operator view in docs/vmx.md ("Live migration"). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "lib/lease.h"
#include "lib/log.h"
#include "lib/tls.h"
#include "vmkernel-kvm/disk_mirror.h"
#include "vmkernel-kvm/migrate.h"
#include "vmkernel-kvm/migrate_disk.h"
#include "vmkernel-kvm/vmx.h"
#include "vmkernel-kvm/vmx_state.h"

KVC_LOG_MODULE(migrate);

#define PAGE 4096ull
#define SLICE_MS 10                 /* I/O waits, throttle ticks, cancel checks */
#define DEFAULT_DOWNTIME_MS 100u
#define DEFAULT_TIMEOUT_MS 10000u
#define DEFAULT_MAX_ROUNDS 100u
#define OUTBUF 65536u
#define MAX_REPLY 4096u
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* ---- the stream: a connected socket behind two calls ----
 *
 * chan_send / chan_recv are the only places bytes meet the socket; a TLS
 * session replaces them (gnutls_record_send/recv on the same fd) without
 * the protocol noticing. */
struct mig_chan {
    int fd;
    unsigned timeout_ms;            /* no progress this long: -ETIMEDOUT */
    const int *cancel;              /* set: -ECANCELED at the next slice */
    void (*tick)(void *);           /* called every slice while waiting */
    void *tick_arg;
    uint64_t max_bw, bw_t0, bw_bytes;   /* rate limit (bytes/s) since bw_t0 */
    uint64_t sent, received;
    uint8_t out[OUTBUF];
    size_t out_len;
    gnutls_session_t tls;           /* NULL: plain socket */
    gnutls_certificate_credentials_t cred;
};

static bool cancelled(const struct mig_chan *c)
{
    return c->cancel && __atomic_load_n(c->cancel, __ATOMIC_ACQUIRE);
}

/* Wait for EVENTS on the socket in slices; 0, -ETIMEDOUT, -ECANCELED. */
static int chan_wait(struct mig_chan *c, short events)
{
    uint64_t deadline = vmx_now_ns() + (uint64_t)c->timeout_ms * 1000000ull;
    for (;;) {
        if (cancelled(c))
            return -ECANCELED;
        struct pollfd p = { .fd = c->fd, .events = events };
        int r = poll(&p, 1, SLICE_MS);
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return -errno;
        if (c->tick)
            c->tick(c->tick_arg);
        if (vmx_now_ns() > deadline)
            return -ETIMEDOUT;
    }
}

static void rate_limit(struct mig_chan *c, size_t n)
{
    if (!c->max_bw)
        return;
    c->bw_bytes += n;
    for (;;) {
        uint64_t due = c->bw_t0 + (uint64_t)((double)c->bw_bytes * 1e9 / (double)c->max_bw);
        uint64_t now = vmx_now_ns();
        if (now >= due || cancelled(c))
            return;
        uint64_t ns = due - now < SLICE_MS * 1000000ull ? due - now : SLICE_MS * 1000000ull;
        struct timespec ts = { 0, (long)ns };
        nanosleep(&ts, NULL);
        if (c->tick)
            c->tick(c->tick_arg);
    }
}

/* Write all of IOV (consumed in place). */
static int chan_send(struct mig_chan *c, struct iovec *iov, int n)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    while (n > 0) {
        if (cancelled(c))
            return -ECANCELED;
        ssize_t w;
        if (c->tls) {
            w = gnutls_record_send(c->tls, iov->iov_base, iov->iov_len);
            if (w == GNUTLS_E_AGAIN || w == GNUTLS_E_INTERRUPTED) {
                int rc = chan_wait(c, POLLOUT);
                if (rc)
                    return rc;
                continue;
            }
            if (w < 0) {
                kvc_warn("TLS send: %s", gnutls_strerror((int)w));
                return -ECONNRESET;
            }
            goto advance;
        }
        struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)n };
        w = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                return -errno;
            int rc = chan_wait(c, POLLOUT);
            if (rc)
                return rc;
            continue;
        }
advance:
        __atomic_fetch_add(&c->sent, (uint64_t)w, __ATOMIC_RELAXED);
        size_t left = (size_t)w;
        while (n > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    rate_limit(c, total);
    return 0;
}

static int chan_flush(struct mig_chan *c)
{
    if (!c->out_len)
        return 0;
    struct iovec v = { c->out, c->out_len };
    c->out_len = 0;
    return chan_send(c, &v, 1);
}

/* Queue a small record (header + body); flushed when the buffer fills. */
static int chan_record(struct mig_chan *c, uint32_t type, uint32_t arg, const void *body, size_t len)
{
    uint8_t h[16];
    for (int i = 0; i < 4; i++) {
        h[i] = (uint8_t)(type >> (8 * i));
        h[4 + i] = (uint8_t)(arg >> (8 * i));
    }
    for (int i = 0; i < 8; i++)
        h[8 + i] = (uint8_t)((uint64_t)len >> (8 * i));
    if (16 + len > OUTBUF) {
        int rc = chan_flush(c);
        if (rc)
            return rc;
        struct iovec v[2] = { { h, 16 }, { (void *)(uintptr_t)body, len } };
        return chan_send(c, v, 2);
    }
    if (c->out_len + 16 + len > OUTBUF) {
        int rc = chan_flush(c);
        if (rc)
            return rc;
    }
    memcpy(c->out + c->out_len, h, 16);
    if (len)
        memcpy(c->out + c->out_len + 16, body, len);
    c->out_len += 16 + len;
    return 0;
}

/* A record whose body is PREFIX (small) followed by DATA (large, sent from
 * where it lies: guest RAM). */
static int chan_record_data(struct mig_chan *c, uint32_t type, uint32_t arg, const void *prefix,
                            size_t plen, const void *data, size_t dlen)
{
    uint8_t h[16 + 16];
    uint64_t len = plen + dlen;
    for (int i = 0; i < 4; i++) {
        h[i] = (uint8_t)(type >> (8 * i));
        h[4 + i] = (uint8_t)(arg >> (8 * i));
    }
    for (int i = 0; i < 8; i++)
        h[8 + i] = (uint8_t)(len >> (8 * i));
    memcpy(h + 16, prefix, plen);
    struct iovec v[3] = { { c->out, c->out_len }, { h, 16 + plen },
                          { (void *)(uintptr_t)data, dlen } };
    c->out_len = 0;
    return v[0].iov_len ? chan_send(c, v, 3) : chan_send(c, v + 1, 2);
}

static int chan_recv(struct mig_chan *c, void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n) {
        if (cancelled(c))
            return -ECANCELED;
        ssize_t r;
        if (c->tls) {
            r = gnutls_record_recv(c->tls, p, n);
            if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
                int rc = gnutls_record_check_pending(c->tls) ? 0 : chan_wait(c, POLLIN);
                if (rc)
                    return rc;
                continue;
            }
            if (r < 0) {
                kvc_warn("TLS receive: %s", gnutls_strerror((int)r));
                return -ECONNRESET;
            }
            if (r == 0)
                return -ECONNRESET;
            goto got;
        }
        r = recv(c->fd, p, n, MSG_DONTWAIT);
        if (r == 0)
            return -ECONNRESET;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                return -errno;
            int rc = chan_wait(c, POLLIN);
            if (rc)
                return rc;
            continue;
        }
got:
        __atomic_fetch_add(&c->received, (uint64_t)r, __ATOMIC_RELAXED);
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int recv_header(struct mig_chan *c, uint32_t *type, uint32_t *arg, uint64_t *len)
{
    uint8_t h[16];
    int rc = chan_recv(c, h, sizeof(h));
    if (rc)
        return rc;
    struct sreader r;
    sreader_init(&r, h, sizeof(h));
    *type = sreader_u32(&r);
    *arg = sreader_u32(&r);
    *len = sreader_u64(&r);
    return 0;
}

static void chan_close(struct mig_chan *c)
{
    if (c->tls)
        gnutls_deinit(c->tls);
    c->tls = NULL;
    if (c->cred)
        gnutls_certificate_free_credentials(c->cred);
    c->cred = NULL;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

/* TLS over the connected socket, both sides presenting the host identity
 * in DIR (lib/tls.h: rpc.crt, rpc.key) and pinning the peer's certificate
 * by its SHA-256 thumbprint PEER -- no CA, as hosts pin vpxd. */
static int chan_tls(struct mig_chan *c, bool server, const char *dir, const char *peer,
                    char *err, size_t errlen)
{
    char crt[PATH_MAX], key[PATH_MAX];
    int r;
    snprintf(crt, sizeof(crt), "%s/%s", dir, KVC_TLS_CERT_FILE);
    snprintf(key, sizeof(key), "%s/%s", dir, KVC_TLS_KEY_FILE);
    if ((r = gnutls_certificate_allocate_credentials(&c->cred)) < 0
        || (r = gnutls_certificate_set_x509_key_file(c->cred, crt, key, GNUTLS_X509_FMT_PEM)) < 0) {
        snprintf(err, errlen, "TLS identity %.200s: %s", crt, gnutls_strerror(r));
        return -EINVAL;
    }
    if ((r = gnutls_init(&c->tls, (server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_NONBLOCK)) < 0
        || (r = gnutls_set_default_priority(c->tls)) < 0
        || (r = gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, c->cred)) < 0) {
        snprintf(err, errlen, "TLS: %s", gnutls_strerror(r));
        return -EINVAL;
    }
    if (server)
        gnutls_certificate_server_set_request(c->tls, GNUTLS_CERT_REQUIRE);
    gnutls_transport_set_int(c->tls, c->fd);
    for (;;) {
        r = gnutls_handshake(c->tls);
        if (r == 0)
            break;
        if (r != GNUTLS_E_AGAIN && r != GNUTLS_E_INTERRUPTED) {
            snprintf(err, errlen, "TLS handshake: %s", gnutls_strerror(r));
            return -ECONNREFUSED;
        }
        int rc = chan_wait(c, gnutls_record_get_direction(c->tls) ? POLLOUT : POLLIN);
        if (rc) {
            snprintf(err, errlen, "TLS handshake: %s", strerror(-rc));
            return rc;
        }
    }
    unsigned n = 0;
    const gnutls_datum_t *certs = gnutls_certificate_get_peers(c->tls, &n);
    char tp[KVC_TLS_THUMBPRINT_SIZE] = "";
    if (!certs || !n) {
        snprintf(err, errlen, "TLS: the peer sent no certificate");
        return -EACCES;
    }
    kvc_tls_thumbprint_der(certs[0].data, certs[0].size, tp);
    if (!kvc_tls_thumbprint_equal(tp, peer)) {
        snprintf(err, errlen, "TLS: peer certificate %s is not the pinned %s", tp, peer);
        return -EACCES;
    }
    kvc_info("VMX-MIGRATE tls peer=%s verified (%s)", tp,
             gnutls_cipher_get_name(gnutls_cipher_get(c->tls)));
    return 0;
}

/* ---- state ---- */

struct vmx_migrate {
    struct vmx *vm;
    struct event_base *base;
    pthread_mutex_t lock;           /* st */
    struct vmx_migrate_status st;
    struct vmx_migrate_params p;
    bool source;
    pthread_t thread;
    bool thread_running;
    int cancel;                     /* atomic */
    bool committed;                 /* GO sent (source) */
    int notify_fd;
    struct event *ev_notify;
    vmx_migrate_done_fn done;
    void *done_arg;
    bool ok;
    bool finished, reported;        /* thread ended (atomic); done() called */
    /* A call the migration thread needs made on the main thread (the lease
     * handle is the main thread's): 0 none, 1 asked, 2 running, 3 done. */
    pthread_cond_t call_cond;
    int call_state, call_rc;
    int (*call_fn)(struct vmx_migrate *);
    /* Lease hand-over: the destination's owner (from ACCEPT), and the
     * generation the source's transfer produced (sent in GO). */
    bool peer_lease, peer_disk, peer_own_lease;
    char peer_owner[64], peer_owner_name[128];
    uint64_t lease_gen;

    /* destination */
    int listen_fd;
    char unix_path[108];
    char tls_dir[256], tls_peer[128];   /* TLS required if tls_peer[0] */
    /* Pages the stream wrote data into.  The rest of RAM is still the
     * memfd's holes, which read as zero: a ZERO marker needs to clear only
     * written pages, and touching the others would fault them all in. */
    uint64_t *written;
    bool expect_disk;               /* --incoming-disk */
    bool own_lease;                 /* a lease of its own (not handed over) */
    struct disk_recv *drecv;        /* the disk being received */
    bool disk_flushed;              /* its first pass made durable */
    uint8_t *dbuf;                  /* one DISK_DATA record */

    /* source */
    uint64_t *pending, *scratch;
    uint64_t npages, words;
    uint64_t t_start, t_stop_mono, t_stop_rt;
    uint64_t send_ns, send_bytes;   /* time spent sending, for the bandwidth */
    unsigned throttle;
    uint64_t last_tick;
    bool paused_by_us, was_running, logging;
    struct disk_mirror *dsend;      /* with_disk: the disk's files (disk_mirror.c) */
    struct mig_chan chan;
};

static uint64_t now_rt_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void set_phase(struct vmx_migrate *m, enum vmx_mig_phase ph)
{
    pthread_mutex_lock(&m->lock);
    m->st.phase = ph;
    pthread_mutex_unlock(&m->lock);
}

static void set_error(struct vmx_migrate *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(struct vmx_migrate *m, const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&m->lock);
    if (!m->st.error[0]) {
        va_start(ap, fmt);
        vsnprintf(m->st.error, sizeof(m->st.error), fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&m->lock);
}

static const char *phase_name(enum vmx_mig_phase p)
{
    static const char *const n[] = { "none", "setup", "precopy", "stopcopy", "commit",
                                     "completed", "failed", "cancelled", "incoming" };
    return (unsigned)p < sizeof(n) / sizeof(n[0]) ? n[p] : "?";
}

static void on_notify(evutil_socket_t fd, short what, void *arg)
{
    struct vmx_migrate *m = arg;
    uint64_t v;
    (void)what;
    if (read(fd, &v, sizeof(v)) < 0)
        return;
    pthread_mutex_lock(&m->lock);
    if (m->call_state == 1) {
        m->call_state = 2;
        pthread_mutex_unlock(&m->lock);
        int rc = m->call_fn(m);
        pthread_mutex_lock(&m->lock);
        m->call_rc = rc;
        m->call_state = 3;
        pthread_cond_broadcast(&m->call_cond);
    }
    pthread_mutex_unlock(&m->lock);
    if (!__atomic_load_n(&m->finished, __ATOMIC_ACQUIRE) || m->reported)
        return;
    if (m->thread_running) {
        pthread_join(m->thread, NULL);
        m->thread_running = false;
    }
    m->reported = true;
    if (m->done)
        m->done(m->vm, m->ok, m->done_arg);
}

/* From the migration thread: run FN on the main thread and wait for it.
 * -ECANCELED if the migration is being stopped before FN started (the main
 * thread may then be joining this thread, so it must not wait). */
static int run_on_main(struct vmx_migrate *m, int (*fn)(struct vmx_migrate *))
{
    uint64_t one = 1;
    pthread_mutex_lock(&m->lock);
    m->call_fn = fn;
    m->call_state = 1;
    pthread_mutex_unlock(&m->lock);
    if (write(m->notify_fd, &one, sizeof(one)) < 0)
        kvc_warn("migration notify: %s", strerror(errno));
    pthread_mutex_lock(&m->lock);
    while (m->call_state != 3) {
        if (m->call_state == 1 && __atomic_load_n(&m->cancel, __ATOMIC_ACQUIRE)) {
            m->call_state = 0;
            pthread_mutex_unlock(&m->lock);
            return -ECANCELED;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += SLICE_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&m->call_cond, &m->lock, &ts);
    }
    m->call_state = 0;
    int rc = m->call_rc;
    pthread_mutex_unlock(&m->lock);
    return rc;
}

/* Main thread: hand the source's lease to the destination's owner. */
static int lease_transfer_main(struct vmx_migrate *m)
{
    char err[512] = "";
    uint64_t gen = 0;
    int rc = kvc_lease_transfer(m->vm->lease, m->peer_owner, m->peer_owner_name[0] ? m->peer_owner_name : NULL,
                                &gen, err, sizeof(err));
    if (rc) {
        set_error(m, "lease hand-over: %s", err);
        return rc;
    }
    m->lease_gen = gen;
    kvc_info("VMX-LEASE transferred path=%s to=%s generation=%llu", kvc_lease_path(m->vm->lease),
             m->peer_owner, (unsigned long long)gen);
    return 0;
}

/* Main thread: the destination becomes the lease's holder, and renews it
 * at once (the renewal timer of vmx_main.c takes it from there). */
static int lease_adopt_main(struct vmx_migrate *m)
{
    const struct vmx_config *c = &m->vm->cfg;
    char err[PATH_MAX + 512] = "";
    struct kvc_lease_opts o = {
        .path = c->lease_path, .owner = c->lease_owner,
        .owner_name = c->lease_owner_name[0] ? c->lease_owner_name : c->lease_owner,
        .vm = c->name, .duration_ms = c->lease_duration_ms,
    };
    int rc = kvc_lease_adopt(&o, m->lease_gen, &m->vm->lease, err, sizeof(err));
    if (!rc && (rc = kvc_lease_renew(m->vm->lease, NULL, err, sizeof(err))) != -ESTALE)
        rc = 0;     /* a failed renewal still holds; the timer retries */
    if (rc) {
        set_error(m, "lease adoption: %s", err);
        kvc_lease_free(m->vm->lease);
        m->vm->lease = NULL;
        return rc;
    }
    kvc_info("VMX-LEASE adopted path=%s generation=%llu", c->lease_path, (unsigned long long)m->lease_gen);
    return 0;
}

static void notify_main(struct vmx_migrate *m)
{
    uint64_t one = 1;
    __atomic_store_n(&m->finished, true, __ATOMIC_RELEASE);
    if (write(m->notify_fd, &one, sizeof(one)) < 0)
        kvc_warn("migration notify: %s", strerror(errno));
}

static struct vmx_migrate *mig_new(struct vmx *vm, struct event_base *base)
{
    if (vm->mig)
        return vm->mig;
    struct vmx_migrate *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->vm = vm;
    m->base = base;
    m->listen_fd = -1;
    m->chan.fd = -1;
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->call_cond, NULL);
    m->notify_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (m->notify_fd < 0 || !(m->ev_notify = event_new(base, m->notify_fd, EV_READ | EV_PERSIST,
                                                        on_notify, m))
        || event_add(m->ev_notify, NULL) < 0) {
        if (m->ev_notify)
            event_free(m->ev_notify);
        if (m->notify_fd >= 0)
            close(m->notify_fd);
        free(m);
        return NULL;
    }
    m->st.ram_bytes = vm->mem.size;
    vm->mig = m;
    return m;
}

int vmx_migrate_init(struct vmx *vm, struct event_base *base, vmx_migrate_done_fn fn, void *arg)
{
    struct vmx_migrate *m = mig_new(vm, base);
    if (!m)
        return -ENOMEM;
    m->done = fn;
    m->done_arg = arg;
    return 0;
}

void vmx_migrate_get_status(struct vmx *vm, struct vmx_migrate_status *out)
{
    struct vmx_migrate *m = vm->mig;
    memset(out, 0, sizeof(*out));
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    *out = m->st;
    pthread_mutex_unlock(&m->lock);
    if (out->phase >= VMX_MIG_SETUP && out->phase <= VMX_MIG_COMMIT && m->t_start)
        out->total_ms = (vmx_now_ns() - m->t_start) / 1000000;
    if (out->phase >= VMX_MIG_SETUP && out->phase <= VMX_MIG_COMMIT)     /* live, between updates */
        out->transferred_bytes = __atomic_load_n(m->source ? &m->chan.sent : &m->chan.received,
                                                 __ATOMIC_RELAXED);
}

bool vmx_migrate_active(struct vmx *vm)
{
    return vm->mig && vm->mig->thread_running;
}

int vmx_migrate_cancel(struct vmx *vm)
{
    struct vmx_migrate *m = vm->mig;
    if (!m || !m->thread_running || !m->source)
        return -ESRCH;
    if (__atomic_load_n(&m->committed, __ATOMIC_ACQUIRE))
        return -EBUSY;
    set_error(m, "cancelled by request");
    __atomic_store_n(&m->cancel, 1, __ATOMIC_RELEASE);
    return 0;
}

void vmx_migrate_stop(struct vmx *vm)
{
    struct vmx_migrate *m = vm->mig;
    if (!m)
        return;
    __atomic_store_n(&m->cancel, 1, __ATOMIC_RELEASE);
    if (m->thread_running) {
        pthread_join(m->thread, NULL);
        m->thread_running = false;
    }
}

void vmx_migrate_free(struct vmx *vm)
{
    struct vmx_migrate *m = vm->mig;
    if (!m)
        return;
    vmx_migrate_stop(vm);
    if (m->ev_notify)
        event_free(m->ev_notify);
    if (m->notify_fd >= 0)
        close(m->notify_fd);
    if (m->listen_fd >= 0)
        close(m->listen_fd);
    chan_close(&m->chan);
    if (m->unix_path[0])
        unlink(m->unix_path);
    free(m->pending);
    free(m->scratch);
    free(m->written);
    free(m->dbuf);
    pthread_mutex_destroy(&m->lock);
    pthread_cond_destroy(&m->call_cond);
    free(m);
    vm->mig = NULL;
}

/* ---- addresses ---- */

static int parse_addr(const char *a, struct sockaddr_storage *ss, socklen_t *sl, char *err, size_t errlen)
{
    memset(ss, 0, sizeof(*ss));
    if (!strncmp(a, "unix:", 5)) {
        struct sockaddr_un *un = (struct sockaddr_un *)ss;
        if (!a[5] || strlen(a + 5) >= sizeof(un->sun_path)) {
            snprintf(err, errlen, "bad unix socket path in '%s'", a);
            return -EINVAL;
        }
        un->sun_family = AF_UNIX;
        snprintf(un->sun_path, sizeof(un->sun_path), "%s", a + 5);
        *sl = sizeof(*un);
        return 0;
    }
    if (!strncmp(a, "tcp:", 4)) {
        char host[128];
        const char *h = a + 4, *colon;
        size_t hl;
        if (*h == '[') {
            const char *close_b = strchr(h, ']');
            if (!close_b || close_b[1] != ':')
                goto bad;
            h++;
            hl = (size_t)(close_b - h);
            colon = close_b + 1;
        } else {
            colon = strrchr(h, ':');
            if (!colon)
                goto bad;
            hl = (size_t)(colon - h);
        }
        if (hl == 0 || hl >= sizeof(host))
            goto bad;
        memcpy(host, h, hl);
        host[hl] = 0;
        char *end;
        unsigned long port = strtoul(colon + 1, &end, 10);
        if (!colon[1] || *end || port > 65535)
            goto bad;
        struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
            in4->sin_family = AF_INET;
            in4->sin_port = htons((uint16_t)port);
            *sl = sizeof(*in4);
            return 0;
        }
        if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
            in6->sin6_family = AF_INET6;
            in6->sin6_port = htons((uint16_t)port);
            *sl = sizeof(*in6);
            return 0;
        }
bad:
        snprintf(err, errlen, "bad address '%s' (want tcp:IP:PORT with a numeric IP)", a);
        return -EINVAL;
    }
    snprintf(err, errlen, "bad address '%s' (want unix:PATH or tcp:IP:PORT)", a);
    return -EINVAL;
}

static void tune_socket(int fd)
{
    int one = 1, buf = 4 << 20;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 && ss.ss_family != AF_UNIX)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* ---- source ---- */

static bool page_zero(const uint8_t *p)
{
    const uint64_t *q = (const uint64_t *)(const void *)p;
    for (size_t i = 0; i < PAGE / 8; i += 8)
        if (q[i] | q[i + 1] | q[i + 2] | q[i + 3] | q[i + 4] | q[i + 5] | q[i + 6] | q[i + 7])
            return false;
    return true;
}

static inline bool bit(const uint64_t *b, uint64_t i)
{
    return (b[i / 64] >> (i % 64)) & 1;
}

static uint64_t popcount(const uint64_t *b, uint64_t words)
{
    uint64_t n = 0;
    for (uint64_t i = 0; i < words; i++)
        n += (uint64_t)__builtin_popcountll(b[i]);
    return n;
}

/* Auto-converge: every THROTTLE_PERIOD_MS each vCPU is told to sleep
 * throttle% of the period before it re-enters the guest.  The period is
 * long against a guest's timer tick (10 ms) on purpose: parking a vCPU for
 * less than a tick only delays the tick, and a tick-paced guest would then
 * dirty just as fast. */
#define THROTTLE_PERIOD_MS 100u

static void throttle_tick(void *arg)
{
    struct vmx_migrate *m = arg;
    if (!m->throttle)
        return;
    uint64_t now = vmx_now_ns();
    if (now - m->last_tick < THROTTLE_PERIOD_MS * 1000000ull)
        return;
    m->last_tick = now;
    __atomic_store_n(&m->vm->throttle_sleep_ns,
                     (uint64_t)m->throttle * THROTTLE_PERIOD_MS * 10000ull, __ATOMIC_RELAXED);
    __atomic_fetch_add(&m->vm->throttle_gen, 1, __ATOMIC_RELEASE);
    vmx_kick_vcpus(m->vm);
}

static void throttle_off(struct vmx_migrate *m)
{
    m->throttle = 0;
    __atomic_store_n(&m->vm->throttle_sleep_ns, 0, __ATOMIC_RELAXED);
    __atomic_fetch_add(&m->vm->throttle_gen, 1, __ATOMIC_RELEASE);
}

static int fetch_dirty(struct vmx_migrate *m)
{
    memset(m->scratch, 0, m->words * sizeof(uint64_t));
    int rc = vmx_dirty_log_get(m->vm, m->scratch);
    if (rc)
        return rc;
    for (uint64_t i = 0; i < m->words; i++)
        m->pending[i] |= m->scratch[i];
    pthread_mutex_lock(&m->vm->dev_lock);
    guest_mem_collect_dirty(&m->vm->mem, m->pending);
    pthread_mutex_unlock(&m->vm->dev_lock);
    return 0;
}

static bool vm_stopping(struct vmx *vm)
{
    pthread_mutex_lock(&vm->dev_lock);
    bool s = vm->stop != VMX_STOP_NONE;
    pthread_mutex_unlock(&vm->dev_lock);
    return s;
}

/* Send every page in m->pending (clearing it): runs of non-zero pages as
 * PAGES, runs of zero pages as ZERO markers. */
static int send_pending(struct vmx_migrate *m, bool full_pass)
{
    struct vmx *vm = m->vm;
    uint64_t t0 = vmx_now_ns(), b0 = m->chan.sent, left = popcount(m->pending, m->words);
    uint64_t zero = 0, data = 0, last_status = t0;
    int rc = 0;
    for (uint64_t i = 0; i < m->npages && !rc;) {
        uint64_t w = i / 64, bits = m->pending[w] & (~0ull << (i % 64));
        if (!bits) {
            i = (w + 1) * 64;
            continue;
        }
        i = w * 64 + (uint64_t)__builtin_ctzll(bits);
        bool z = page_zero(vm->mem.hva + i * PAGE);
        uint64_t j = i + 1;
        while (j < m->npages && bit(m->pending, j) && (z || j - i < MIG_MAX_RUN)
               && page_zero(vm->mem.hva + j * PAGE) == z)
            j++;
        for (uint64_t k = i; k < j; k++)
            m->pending[k / 64] &= ~(1ull << (k % 64));
        uint8_t pre[12];
        uint64_t gpa = i * PAGE;
        for (int b = 0; b < 8; b++)
            pre[b] = (uint8_t)(gpa >> (8 * b));
        uint32_t n = (uint32_t)(j - i);
        if (z) {
            for (int b = 0; b < 4; b++)
                pre[8 + b] = (uint8_t)(n >> (8 * b));
            rc = chan_record(&m->chan, MIG_ZERO, 0, pre, 12);
            zero += n;
        } else {
            rc = chan_record_data(&m->chan, MIG_PAGES, n, pre, 8, vm->mem.hva + gpa, n * PAGE);
            data += n;
        }
        left -= n;
        i = j;
        throttle_tick(m);
        uint64_t now = vmx_now_ns();
        if (now - last_status > 20000000ull) {
            last_status = now;
            if (vm_stopping(vm))
                rc = -ECANCELED;
            pthread_mutex_lock(&m->lock);
            m->st.remaining_bytes = left * PAGE;
            m->st.transferred_bytes = m->chan.sent;
            if (full_pass)
                m->st.percent = (uint32_t)(100 - left * 100 / m->npages);
            m->st.zero_pages += zero;
            m->st.data_pages += data;
            zero = data = 0;
            pthread_mutex_unlock(&m->lock);
        }
    }
    if (!rc)
        rc = chan_flush(&m->chan);
    m->send_ns += vmx_now_ns() - t0;
    m->send_bytes += m->chan.sent - b0;
    pthread_mutex_lock(&m->lock);
    m->st.zero_pages += zero;
    m->st.data_pages += data;
    m->st.transferred_bytes = m->chan.sent;
    pthread_mutex_unlock(&m->lock);
    return rc;
}

static int expect_reply(struct vmx_migrate *m, uint32_t want, uint8_t *body, uint64_t *blen)
{
    uint32_t type, arg;
    uint64_t len;
    int rc = recv_header(&m->chan, &type, &arg, &len);
    if (rc)
        return rc;
    if (len > MAX_REPLY || (type != want && type != MIG_FAIL)) {
        set_error(m, "protocol error: record 0x%x (%llu bytes) from the destination", type,
                  (unsigned long long)len);
        return -EPROTO;
    }
    uint8_t buf[MAX_REPLY + 1];
    if ((rc = chan_recv(&m->chan, buf, (size_t)len)))
        return rc;
    if (type == MIG_FAIL) {
        buf[len] = 0;
        for (uint64_t i = 0; i < len; i++)
            if (buf[i] < 0x20 || buf[i] >= 0x7f)
                buf[i] = '?';
        set_error(m, "destination refused: %s", (char *)buf);
        return -EREMOTEIO;
    }
    if (body) {
        memcpy(body, buf, (size_t)len);
        *blen = len;
    }
    return 0;
}

static void log_round(struct vmx_migrate *m, const char *what)
{
    struct vmx_migrate_status s;
    pthread_mutex_lock(&m->lock);
    s = m->st;
    pthread_mutex_unlock(&m->lock);
    kvc_info("VMX-MIGRATE %s phase=%s round=%u percent=%u remaining_bytes=%llu "
             "transferred_bytes=%llu dirty_rate_bps=%llu bandwidth_bps=%llu "
             "expected_downtime_ms=%llu throttle=%u", what, phase_name(s.phase), s.round, s.percent,
             (unsigned long long)s.remaining_bytes, (unsigned long long)s.transferred_bytes,
             (unsigned long long)s.dirty_rate_bps, (unsigned long long)s.bandwidth_bps,
             (unsigned long long)s.expected_downtime_ms, s.throttle_percent);
}

static int connect_to(struct vmx_migrate *m)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    char err[256];
    if (parse_addr(m->p.to, &ss, &sl, err, sizeof(err)) < 0) {
        set_error(m, "%s", err);
        return -EINVAL;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        set_error(m, "socket: %s", strerror(errno));
        return -errno;
    }
    m->chan.fd = fd;
    if (connect(fd, (struct sockaddr *)&ss, sl) < 0) {
        if (errno != EINPROGRESS && errno != EAGAIN) {
            set_error(m, "connect %s: %s", m->p.to, strerror(errno));
            return -errno;
        }
        int rc = chan_wait(&m->chan, POLLOUT);
        int soerr = 0;
        socklen_t l = sizeof(soerr);
        if (!rc && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &l) == 0 && soerr)
            rc = -soerr;
        if (rc) {
            set_error(m, "connect %s: %s", m->p.to, strerror(-rc));
            return rc;
        }
    }
    tune_socket(fd);
    return 0;
}

static int send_hello(struct vmx_migrate *m)
{
    struct sbuf b;
    sbuf_init(&b);
    sbuf_u64(&b, MIG_MAGIC);
    sbuf_u32(&b, MIG_VERSION);
    sbuf_u64(&b, m->vm->mem.size);
    sbuf_u32(&b, m->vm->nvcpus);
    sbuf_u32(&b, (uint32_t)PAGE);
    sbuf_u32(&b, m->p.verify ? 1u : 0u);
    sbuf_u32(&b, m->p.timeout_ms);
    int rc = b.err ? b.err : chan_record(&m->chan, MIG_HELLO, 0, b.p, b.len);
    sbuf_free(&b);
    if (!rc)
        rc = chan_flush(&m->chan);
    return rc;
}

static void ram_hash(struct vmx *vm, uint8_t out[32])
{
    if (gnutls_hash_fast(GNUTLS_DIG_SHA256, vm->mem.hva, vm->mem.size, out) < 0)
        memset(out, 0, 32);
}

static void hex32(const uint8_t h[32], char out[65])
{
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", h[i]);
}

/* ---- the disk over the stream (with_disk; records in migrate_disk.h) ---- */

static int disk_sink(void *arg, unsigned file, uint64_t off, const void *buf, size_t len)
{
    struct vmx_migrate *m = arg;
    uint8_t o[8];
    for (int i = 0; i < 8; i++)
        o[i] = (uint8_t)(off >> (8 * i));
    int rc = chan_record_data(&m->chan, MIG_DISK_DATA, file, o, 8, buf, len);
    if (!rc) {
        pthread_mutex_lock(&m->lock);
        m->st.disk_sent_bytes += len;
        m->st.transferred_bytes = m->chan.sent;
        pthread_mutex_unlock(&m->lock);
    }
    return rc;
}

static int disk_fail(struct vmx_migrate *m, int rc)
{
    char e[256] = "";
    if (m->dsend)
        disk_stream_error(m->dsend, e, sizeof(e));
    if (e[0])
        set_error(m, "disk: %s", e);
    return rc;
}

/* Before the memory: announce the files, then the first pass and dirty
 * passes while the guest runs; the disk stays marked from here on. */
static int send_disk(struct vmx_migrate *m)
{
    char err[512] = "";
    int rc = disk_stream_begin(m->vm, &m->dsend, disk_sink, m, &m->cancel, err, sizeof(err));
    if (rc) {
        set_error(m, "disk: %s", err[0] ? err : strerror(-rc));
        return rc;
    }
    uint64_t cap, total, sent;
    const char *base = disk_stream_base(m->dsend, &cap);
    unsigned n = disk_stream_nfiles(m->dsend);
    disk_stream_progress(m->dsend, &total, &sent);
    pthread_mutex_lock(&m->lock);
    m->st.disk_total_bytes = total;
    pthread_mutex_unlock(&m->lock);
    kvc_info("VMX-MIGRATE disk send base=%s files=%u bytes=%llu", base, n, (unsigned long long)total);
    struct sbuf b;
    sbuf_init(&b);
    sbuf_u32(&b, n);
    sbuf_u64(&b, cap);
    sbuf_u32(&b, (uint32_t)strlen(base));
    sbuf_put(&b, base, strlen(base));
    rc = b.err ? b.err : chan_record(&m->chan, MIG_DISK_BEGIN, 0, b.p, b.len);
    sbuf_free(&b);
    for (unsigned i = 0; i < n && !rc; i++) {
        uint64_t size;
        const char *name = disk_stream_file(m->dsend, i, &size);
        sbuf_init(&b);
        sbuf_u64(&b, size);
        sbuf_put(&b, name, strlen(name));
        rc = b.err ? b.err : chan_record(&m->chan, MIG_DISK_FILE, i, b.p, b.len);
        sbuf_free(&b);
    }
    if (rc || (rc = disk_stream_passes(m->dsend)) < 0)
        return disk_fail(m, rc);
    disk_stream_progress(m->dsend, &total, &sent);
    kvc_info("VMX-MIGRATE disk first pass done bytes=%llu", (unsigned long long)sent);
    return 0;
}

/* Stop-and-copy, then the hand-over.  Returns 0 once GO is sent. */
static int switch_over(struct vmx_migrate *m)
{
    struct vmx *vm = m->vm;
    int rc;
    set_phase(m, VMX_MIG_STOPCOPY);
    m->t_stop_mono = vmx_now_ns();
    m->t_stop_rt = now_rt_ns();
    pthread_mutex_lock(&vm->dev_lock);
    m->was_running = vm->state == VMX_RUNNING;
    pthread_mutex_unlock(&vm->dev_lock);
    vmx_pause(vm);
    m->paused_by_us = true;
    throttle_off(m);
    kvc_info("VMX-MIGRATE vcpus-stopped mono_ns=%llu realtime_ns=%llu pause_us=%llu",
             (unsigned long long)m->t_stop_mono, (unsigned long long)m->t_stop_rt,
             (unsigned long long)((vmx_now_ns() - m->t_stop_mono) / 1000));
    if (vm_stopping(vm)) {
        set_error(m, "the VM stopped during the migration");
        return -ECANCELED;
    }
    if ((rc = fetch_dirty(m)) < 0)
        return rc;
    uint64_t last = popcount(m->pending, m->words);
    pthread_mutex_lock(&m->lock);
    m->st.percent = 100;
    m->st.remaining_bytes = last * PAGE;
    pthread_mutex_unlock(&m->lock);
    if ((rc = send_pending(m, false)) < 0)
        return rc;
    if (m->dsend) {
        if ((rc = disk_stream_final(m->dsend)) < 0)
            return disk_fail(m, rc);
        if ((rc = chan_record(&m->chan, MIG_DISK_END, 0, NULL, 0)) < 0)
            return rc;
    }
    uint64_t t_pages = vmx_now_ns();

    struct sbuf b;
    sbuf_init(&b);
    sbuf_u64(&b, m->t_stop_rt);
    sbuf_u64(&b, m->t_stop_mono);
    sbuf_u32(&b, m->was_running);
    sbuf_u32(&b, m->p.verify);
    uint8_t h[32] = { 0 };
    if (m->p.verify) {
        char hx[65];
        ram_hash(vm, h);
        hex32(h, hx);
        kvc_info("VMX-MIGRATE verify sha256=%s", hx);
    }
    sbuf_put(&b, h, 32);
    rc = b.err ? b.err : chan_record(&m->chan, MIG_SWITCH, 0, b.p, b.len);
    sbuf_free(&b);
    if (rc)
        return rc;
    sbuf_init(&b);
    rc = vmx_state_save_devices(vm, &b);
    sbuf_u32(&b, VMX_ST_END);
    sbuf_u32(&b, 0);
    sbuf_u64(&b, 0);
    if (!rc && b.err)
        rc = b.err;
    if (rc) {
        sbuf_free(&b);
        set_error(m, "saving the vCPU and device state: %s", strerror(-rc));
        return rc;
    }
    /* The device sections are already in the stream's record format. */
    if (!(rc = chan_flush(&m->chan))) {
        struct iovec v = { b.p, b.len };
        rc = chan_send(&m->chan, &v, 1);
    }
    sbuf_free(&b);
    if (rc)
        return rc;
    uint64_t t_sent = vmx_now_ns();
    kvc_info("VMX-MIGRATE state-sent last_pages=%llu bytes=%llu pages_us=%llu state_us=%llu",
             (unsigned long long)last, (unsigned long long)m->chan.sent,
             (unsigned long long)((t_pages - m->t_stop_mono) / 1000),
             (unsigned long long)((t_sent - t_pages) / 1000));
    if ((rc = expect_reply(m, MIG_READY, NULL, NULL)) < 0)
        return rc;
    uint64_t t_ready = vmx_now_ns();
    /* The point of no return: from here the destination owns the VM. */
    if (cancelled(&m->chan) || vm_stopping(vm)) {
        set_error(m, cancelled(&m->chan) ? "cancelled by request" : "the VM stopped during the migration");
        return -ECANCELED;
    }
    /* The lease goes first: if it cannot be handed over, the VM stays. */
    m->lease_gen = 0;
    /* With the disk the destination's files are its own, under a lease of
     * its own (taken at its start); this one's is released at exit. */
    if (vm->lease && !m->p.with_disk && !m->peer_own_lease
        && (rc = run_on_main(m, lease_transfer_main)) < 0)
        return rc;
    __atomic_store_n(&m->committed, true, __ATOMIC_RELEASE);
    set_phase(m, VMX_MIG_COMMIT);
    uint8_t g[8];
    for (int i = 0; i < 8; i++)
        g[i] = (uint8_t)(m->lease_gen >> (8 * i));
    if ((rc = chan_record(&m->chan, MIG_GO, 0, g, 8)) == 0)
        rc = chan_flush(&m->chan);
    kvc_info("VMX-MIGRATE confirmed: destination loaded the state in %llu us; handing over%s",
             (unsigned long long)((t_ready - t_sent) / 1000), rc ? " (GO may not have reached it)" : "");
    return 0;
}

static void source_abort(struct vmx_migrate *m, int rc)
{
    struct vmx *vm = m->vm;
    throttle_off(m);
    disk_stream_end(m->dsend);      /* the disk was only read */
    m->dsend = NULL;
    if (m->logging) {
        guest_mem_track_writes(&vm->mem, false);
        vmx_dirty_log_enable(vm, false);
        m->logging = false;
    }
    if (m->paused_by_us && m->was_running)
        vmx_resume(vm);
    m->paused_by_us = false;
    bool stopping = vm_stopping(vm);
    bool by_cancel = !stopping && rc == -ECANCELED && __atomic_load_n(&m->cancel, __ATOMIC_ACQUIRE);
    if (stopping)
        set_error(m, "the VM stopped (power-off, reset or crash) during the migration");
    else if (rc == -ETIMEDOUT)
        set_error(m, "no progress from the destination for %u ms", m->p.timeout_ms);
    else if (rc == -ECONNRESET || rc == -EPIPE)
        set_error(m, "connection to the destination lost");
    set_error(m, "%s", strerror(-rc));
    if (m->chan.fd >= 0) {
        /* Best effort: tell the destination so it exits at once. */
        const char *why = by_cancel ? "cancelled" : stopping ? "the source VM stopped" : "source aborted";
        m->chan.out_len = 0;
        m->chan.timeout_ms = 200;
        m->chan.cancel = NULL;
        m->chan.max_bw = 0;
        if (chan_record(&m->chan, MIG_CANCEL, 0, why, strlen(why)) == 0)
            chan_flush(&m->chan);
    }
    pthread_mutex_lock(&m->lock);
    enum vmx_mig_phase was = m->st.phase;
    m->st.phase = by_cancel ? VMX_MIG_CANCELLED : VMX_MIG_FAILED;
    m->st.throttle_percent = 0;
    char err[256];
    snprintf(err, sizeof(err), "%s", m->st.error);
    pthread_mutex_unlock(&m->lock);
    kvc_warn("VMX-MIGRATE aborted phase=%s reason=%s%s", phase_name(was), err,
             stopping ? "" : ": the VM runs on here");
}

static void *source_thread(void *arg)
{
    struct vmx_migrate *m = arg;
    struct vmx *vm = m->vm;
    int rc;
    char name[16] = "vmx-migrate";
    pthread_setname_np(pthread_self(), name);
    m->t_start = vmx_now_ns();
    kvc_info("VMX-MIGRATE start to=%s mono_ns=%llu downtime_ms=%u max_bandwidth=%llu verify=%d",
             m->p.to, (unsigned long long)m->t_start, m->p.downtime_ms,
             (unsigned long long)m->p.max_bandwidth, m->p.verify);
    if ((rc = connect_to(m)) < 0)
        goto fail;
    if (m->p.peer_thumbprint[0]) {
        char err[512];
        if ((rc = chan_tls(&m->chan, false, m->p.tls_dir, m->p.peer_thumbprint, err, sizeof(err))) < 0) {
            set_error(m, "%s", err);
            goto fail;
        }
    }
    uint8_t acc[MAX_REPLY];
    uint64_t alen = 0;
    if ((rc = send_hello(m)) < 0 || (rc = expect_reply(m, MIG_ACCEPT, acc, &alen)) < 0)
        goto fail;
    {
        struct sreader r;
        sreader_init(&r, acc, (size_t)alen);
        memset(m->peer_owner, 0, sizeof(m->peer_owner));
        memset(m->peer_owner_name, 0, sizeof(m->peer_owner_name));
        uint32_t fl = sreader_u32(&r);
        m->peer_lease = fl & 1;
        m->peer_disk = fl & 2;
        m->peer_own_lease = fl & 4;
        sreader_blob(&r, m->peer_owner, sizeof(m->peer_owner) - 1);
        sreader_blob(&r, m->peer_owner_name, sizeof(m->peer_owner_name) - 1);
        if (r.err) {
            set_error(m, "protocol error: bad ACCEPT from the destination");
            rc = -EPROTO;
            goto fail;
        }
    }
    if (vm->lease && !m->p.with_disk && !m->peer_own_lease && (!m->peer_lease || !m->peer_owner[0])) {
        set_error(m, "this VM holds a lease and the destination has no lease.path/lease.owner: "
                     "it would run without one");
        rc = -EINVAL;
        goto fail;
    }
    if (m->peer_disk != m->p.with_disk) {
        set_error(m, m->p.with_disk ? "the destination does not take a disk (it was not started with "
                                      "--incoming-disk): it would run on its own disk"
                                    : "the destination expects the disk over the stream (it shares no "
                                      "storage with this host): migrate with the disk");
        rc = -EINVAL;
        goto fail;
    }
    m->chan.max_bw = m->p.max_bandwidth;
    m->chan.bw_t0 = vmx_now_ns();
    if (m->p.with_disk && (rc = send_disk(m)) < 0)
        goto fail;

    if ((rc = guest_mem_track_writes(&vm->mem, true)) < 0 || (rc = vmx_dirty_log_enable(vm, true)) < 0)
        goto fail;
    m->logging = true;
    memset(m->pending, 0xff, m->words * sizeof(uint64_t));
    if (m->npages % 64)
        m->pending[m->words - 1] = (1ull << (m->npages % 64)) - 1;
    set_phase(m, VMX_MIG_PRECOPY);

    uint64_t target_ns = (uint64_t)m->p.downtime_ms * 1000000ull, prev_dirty = vm->mem.size;
    for (uint32_t round = 1;; round++) {
        pthread_mutex_lock(&m->lock);
        m->st.round = round;
        pthread_mutex_unlock(&m->lock);
        uint64_t t0 = vmx_now_ns(), sent0 = m->chan.sent;
        /* What the guest wrote to its disk since the last pass goes with
         * each round, so that little is left for the pause. */
        if (m->dsend && (rc = disk_stream_dirty_pass(m->dsend)) < 0) {
            rc = disk_fail(m, rc);
            goto fail;
        }
        if ((rc = send_pending(m, round == 1)) < 0)
            goto fail;
        uint64_t dt = vmx_now_ns() - t0, sent = m->chan.sent - sent0;
        if ((rc = fetch_dirty(m)) < 0)
            goto fail;
        uint64_t dirty = popcount(m->pending, m->words) * PAGE;
        uint64_t bw = m->send_ns ? (uint64_t)((double)m->send_bytes * 1e9 / (double)m->send_ns) : 0;
        if (m->p.max_bandwidth && (!bw || bw > m->p.max_bandwidth))
            bw = m->p.max_bandwidth;
        uint64_t rate = dt ? (uint64_t)((double)dirty * 1e9 / (double)dt) : 0;
        uint64_t expect_ns = bw ? (uint64_t)((double)dirty * 1e9 / (double)bw) : UINT64_MAX;
        pthread_mutex_lock(&m->lock);
        m->st.remaining_bytes = dirty;
        m->st.dirty_rate_bps = rate;
        m->st.bandwidth_bps = bw;
        m->st.expected_downtime_ms = expect_ns == UINT64_MAX ? 0 : expect_ns / 1000000;
        m->st.percent = (uint32_t)(dirty >= vm->mem.size ? 0 : 99 - dirty * 99 / vm->mem.size);
        m->st.transferred_bytes = m->chan.sent;
        pthread_mutex_unlock(&m->lock);
        log_round(m, "progress");
        /* Switch over once the last copy fits the target -- but while each
         * round still halves the dirty set, one more round is cheaper than
         * the downtime it saves (the guest runs during it). */
        if (expect_ns <= target_ns
            && (expect_ns <= 1000000ull || dirty * 2 >= prev_dirty || round >= 10))
            break;
        prev_dirty = dirty;
        if (round >= m->p.max_rounds) {
            kvc_warn("VMX-MIGRATE not converged after %u rounds: switching over with %llu bytes "
                     "left (expected downtime %llu ms)", round, (unsigned long long)dirty,
                     (unsigned long long)(expect_ns / 1000000));
            break;
        }
        /* Auto-converge: the guest dirtied more than half of what this
         * round carried, so the copy is not catching up. */
        if (round >= 2 && dirty * 2 > sent) {
            /* Aim at a dirty rate of half the bandwidth: the measured rate
             * is already throttled by the current share, so the share
             * wanted is 1 - (1 - now) * bw / (2 * rate); at least 10 points
             * more each time, 20 to start with, 99 at most. */
            double keep = rate ? (1.0 - m->throttle / 100.0) * (double)bw / (2.0 * (double)rate) : 1.0;
            unsigned want = keep >= 1.0 ? 0 : (unsigned)((1.0 - keep) * 100.0 + 0.5);
            unsigned min = m->throttle ? m->throttle + 10 : 20;
            m->throttle = want > min ? want : min;
            if (m->throttle > 99)
                m->throttle = 99;
            pthread_mutex_lock(&m->lock);
            m->st.throttle_percent = m->throttle;
            pthread_mutex_unlock(&m->lock);
            kvc_info("VMX-MIGRATE auto-converge throttle=%u dirty_rate_bps=%llu bandwidth_bps=%llu",
                     m->throttle, (unsigned long long)rate, (unsigned long long)bw);
        }
        struct sbuf b;
        sbuf_init(&b);
        sbuf_u32(&b, round);
        sbuf_u32(&b, m->st.percent);
        sbuf_u64(&b, dirty);
        rc = b.err ? b.err : chan_record(&m->chan, MIG_ROUND, 0, b.p, b.len);
        sbuf_free(&b);
        if (rc)
            goto fail;
    }
    if ((rc = switch_over(m)) < 0)
        goto fail;

    /* Committed.  Wait (bounded) for the destination to say it runs, for
     * the downtime figure; the outcome no longer depends on it. */
    uint8_t body[MAX_REPLY];
    uint64_t blen = 0;
    m->chan.cancel = NULL;
    uint64_t downtime = 0;
    if (expect_reply(m, MIG_RUNNING, body, &blen) == 0 && blen >= 16) {
        struct sreader r;
        sreader_init(&r, body, (size_t)blen);
        uint64_t run_rt = sreader_u64(&r);
        downtime = run_rt > m->t_stop_rt ? (run_rt - m->t_stop_rt) / 1000000 : 0;
    }
    pthread_mutex_lock(&m->lock);
    m->st.phase = VMX_MIG_COMPLETED;
    m->st.error[0] = 0;         /* a cancel that came too late */
    m->st.remaining_bytes = 0;
    m->st.downtime_ms = downtime;
    m->st.total_ms = (vmx_now_ns() - m->t_start) / 1000000;
    m->st.transferred_bytes = m->chan.sent;
    pthread_mutex_unlock(&m->lock);
    disk_stream_end(m->dsend);
    m->dsend = NULL;
    log_round(m, "completed");
    kvc_info("VMX-MIGRATE completed to=%s total_ms=%llu downtime_ms=%llu bytes=%llu "
             "zero_pages=%llu data_pages=%llu", m->p.to, (unsigned long long)m->st.total_ms,
             (unsigned long long)downtime, (unsigned long long)m->chan.sent,
             (unsigned long long)m->st.zero_pages, (unsigned long long)m->st.data_pages);
    m->ok = true;
    notify_main(m);
    return NULL;
fail:
    source_abort(m, rc);
    chan_close(&m->chan);
    m->ok = false;
    notify_main(m);
    return NULL;
}

int vmx_migrate_start(struct vmx *vm, const struct vmx_migrate_params *p, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    if (!vm->mig) {
        snprintf(err, errlen, "migration is not set up in this vmx");
        return -EINVAL;
    }
    if (vm->mig->thread_running) {
        snprintf(err, errlen, "a migration is already running");
        return -EBUSY;
    }
    if (disk_move_active(vm)) {     /* the disk's files are changing folder */
        snprintf(err, errlen, "a disk move is in progress");
        return -EBUSY;
    }
    if (vm->mig->st.phase == VMX_MIG_INCOMING || (!vm->mig->source && vm->mig->st.phase != VMX_MIG_NONE
                                                  && vm->mig->st.phase != VMX_MIG_COMPLETED)) {
        snprintf(err, errlen, "this vmx is a migration destination");
        return -EINVAL;
    }
    if (vm->stop != VMX_STOP_NONE || (vm->state != VMX_RUNNING && vm->state != VMX_PAUSED)) {
        snprintf(err, errlen, "the VM is not running");
        return -EINVAL;
    }
    if (parse_addr(p->to, &ss, &sl, err, errlen) < 0)
        return -EINVAL;
    if (p->peer_thumbprint[0] && (!p->tls_dir[0] || ss.ss_family == AF_UNIX
                                  || !kvc_tls_thumbprint_equal(p->peer_thumbprint, p->peer_thumbprint))) {
        snprintf(err, errlen, "TLS needs tcp:, tls_dir and a SHA-256 thumbprint (32 hex pairs)");
        return -EINVAL;
    }
    struct vmx_migrate *m = vm->mig;
    m->source = true;
    m->p = *p;
    if (!m->p.downtime_ms)
        m->p.downtime_ms = DEFAULT_DOWNTIME_MS;
    if (!m->p.timeout_ms)
        m->p.timeout_ms = DEFAULT_TIMEOUT_MS;
    if (!m->p.max_rounds)
        m->p.max_rounds = DEFAULT_MAX_ROUNDS;
    m->npages = vm->mem.size / PAGE;
    m->words = (m->npages + 63) / 64;
    if (!m->pending)
        m->pending = calloc(m->words, sizeof(uint64_t));
    if (!m->scratch)
        m->scratch = calloc(m->words, sizeof(uint64_t));
    if (!m->pending || !m->scratch) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    pthread_mutex_lock(&m->lock);
    memset(&m->st, 0, sizeof(m->st));
    m->st.phase = VMX_MIG_SETUP;
    m->st.source = true;
    m->st.ram_bytes = vm->mem.size;
    m->st.downtime_target_ms = m->p.downtime_ms;
    snprintf(m->st.peer, sizeof(m->st.peer), "%s", p->to);
    pthread_mutex_unlock(&m->lock);
    chan_close(&m->chan);
    memset(&m->chan, 0, sizeof(m->chan));
    m->chan.fd = -1;
    m->chan.timeout_ms = m->p.timeout_ms;
    m->chan.cancel = &m->cancel;
    m->chan.tick = throttle_tick;
    m->chan.tick_arg = m;
    m->cancel = 0;
    m->committed = false;
    m->ok = false;
    m->finished = m->reported = false;
    m->throttle = 0;
    m->paused_by_us = m->logging = false;
    m->send_ns = m->send_bytes = 0;
    m->t_start = vmx_now_ns();
    int rc = pthread_create(&m->thread, NULL, source_thread, m);
    if (rc) {
        snprintf(err, errlen, "cannot start the migration thread: %s", strerror(rc));
        m->st.phase = VMX_MIG_FAILED;
        return -rc;
    }
    m->thread_running = true;
    return 0;
}

/* ---- destination ---- */

static int dest_fail(struct vmx_migrate *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int dest_fail(struct vmx_migrate *m, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    set_error(m, "%s", msg);
    return -EPROTO;
}

static int dest_hello(struct vmx_migrate *m, uint32_t type, uint64_t len)
{
    struct vmx *vm = m->vm;
    uint8_t b[64];
    if (type == MIG_CANCEL)
        return dest_fail(m, "the source aborted the migration before the handshake");
    if (type != MIG_HELLO || len != 36)
        return dest_fail(m, "not a vmx migration stream (record 0x%x, %llu bytes)", type,
                         (unsigned long long)len);
    int rc = chan_recv(&m->chan, b, 36);
    if (rc)
        return rc;
    struct sreader r;
    sreader_init(&r, b, 36);
    uint64_t magic = sreader_u64(&r);
    uint32_t ver = sreader_u32(&r);
    uint64_t mem = sreader_u64(&r);
    uint32_t nv = sreader_u32(&r), pg = sreader_u32(&r);
    (void)sreader_u32(&r);
    uint32_t tmo = sreader_u32(&r);
    if (magic != MIG_MAGIC || ver != MIG_VERSION)
        return dest_fail(m, "not a vmx migration stream (or version %u)", ver);
    if (mem != vm->mem.size || nv != vm->nvcpus || pg != PAGE)
        return dest_fail(m, "source VM has %llu MiB and %u vCPUs; this one has %llu MiB and %u",
                         (unsigned long long)(mem >> 20), nv,
                         (unsigned long long)(vm->mem.size >> 20), vm->nvcpus);
    if (tmo >= 100 && tmo <= 600000)
        m->chan.timeout_ms = tmo;
    return 0;
}

/* One DISK_* record (migrate_disk.h), its header read. */
static int dest_disk_record(struct vmx_migrate *m, uint32_t type, uint32_t arg, uint64_t len)
{
    char err[512] = "";
    uint8_t b[8 + DISK_NAME_MAX + 32];
    int rc;
    if (!m->expect_disk)
        return dest_fail(m, "the source sends its disk, and this VM was not started to receive one "
                            "(--incoming-disk): it has a disk of its own");
    if (type != MIG_DISK_BEGIN && !m->drecv)
        return dest_fail(m, "disk record 0x%x before DISK_BEGIN", type);
    if (type == MIG_DISK_BEGIN || type == MIG_DISK_FILE) {
        if (type == MIG_DISK_BEGIN && m->drecv)
            return dest_fail(m, "DISK_BEGIN twice");
        if (len > sizeof(b))
            return dest_fail(m, "bad disk record 0x%x (%llu bytes)", type, (unsigned long long)len);
        if ((rc = chan_recv(&m->chan, b, (size_t)len)))
            return rc;
        rc = type == MIG_DISK_BEGIN ? disk_recv_begin(m->vm, &m->drecv, b, (size_t)len, err, sizeof(err))
                                    : disk_recv_file(m->drecv, arg, b, (size_t)len, err, sizeof(err));
    } else if (type == MIG_DISK_DATA) {
        if (len <= 8 || len > 8 + (uint64_t)DISK_MOVE_CHUNK)
            return dest_fail(m, "bad DISK_DATA record (%llu bytes)", (unsigned long long)len);
        if (!m->dbuf && !(m->dbuf = malloc(DISK_MOVE_CHUNK)))
            return -ENOMEM;
        if ((rc = chan_recv(&m->chan, b, 8)) || (rc = chan_recv(&m->chan, m->dbuf, (size_t)len - 8)))
            return rc;
        struct sreader r;
        sreader_init(&r, b, 8);
        uint64_t off = sreader_u64(&r);
        rc = disk_recv_data(m->drecv, arg, off, m->dbuf, (size_t)len - 8, err, sizeof(err));
        pthread_mutex_lock(&m->lock);
        m->st.disk_sent_bytes = disk_recv_bytes(m->drecv);
        pthread_mutex_unlock(&m->lock);
    } else {
        if (len != 0)
            return dest_fail(m, "bad DISK_END record");
        rc = disk_recv_end(m->drecv, err, sizeof(err));
    }
    if (rc < 0)
        set_error(m, "disk: %s", err[0] ? err : strerror(-rc));
    return rc;
}

static void dest_progress(struct vmx_migrate *m)
{
    pthread_mutex_lock(&m->lock);
    m->st.transferred_bytes = m->chan.received;
    pthread_mutex_unlock(&m->lock);
}

static int dest_receive(struct vmx_migrate *m, uint64_t *stop_rt, uint32_t *was_running)
{
    struct vmx *vm = m->vm;
    uint32_t type, arg;
    uint64_t len;
    int rc;
    bool switched = false;
    unsigned vcpus_seen = 0, vcpu_mask = 0;
    uint8_t hash[32];
    uint32_t has_hash = 0;
    uint8_t *sec = NULL;

    if ((rc = recv_header(&m->chan, &type, &arg, &len)) || (rc = dest_hello(m, type, len))) {
        if (rc == -ECONNRESET)
            set_error(m, "the stream ended before the handshake");
        return rc;
    }
    struct sbuf ab;
    sbuf_init(&ab);
    /* The lease it is to adopt must be the source's: a lease file that is
     * not here means this host does not see the source's folder, and the
     * adoption after GO would fail with the source gone. */
    struct stat lst;
    if (vm->cfg.lease_path[0] && !m->own_lease && stat(vm->cfg.lease_path, &lst) < 0) {
        rc = dest_fail(m, "the VM's lease %s is not here: this host does not see the source's "
                          "folder (a destination on another datastore takes a lease of its own: "
                          "--incoming-own-lease)", vm->cfg.lease_path);
        return rc;
    }
    sbuf_u32(&ab, (vm->cfg.lease_path[0] && vm->cfg.lease_owner[0] ? 1u : 0u) | (m->expect_disk ? 2u : 0u)
                  | (m->own_lease && vm->cfg.lease_path[0] ? 4u : 0u));
    sbuf_blob(&ab, vm->cfg.lease_owner, strlen(vm->cfg.lease_owner));
    sbuf_blob(&ab, vm->cfg.lease_owner_name, strlen(vm->cfg.lease_owner_name));
    rc = ab.err ? ab.err : chan_record(&m->chan, MIG_ACCEPT, 0, ab.p, ab.len);
    sbuf_free(&ab);
    if (rc || (rc = chan_flush(&m->chan)))
        return rc;
    set_phase(m, VMX_MIG_PRECOPY);
    kvc_info("VMX-MIGRATE receiving");
    for (;;) {
        if ((rc = recv_header(&m->chan, &type, &arg, &len))) {
            if (rc == -ECONNRESET)
                set_error(m, "the stream ended before the state was complete");
            goto out;
        }
        dest_progress(m);
        if (m->drecv && !m->disk_flushed && (type == MIG_PAGES || type == MIG_ZERO || type == MIG_ROUND)) {
            /* The disk's first pass is over: flush it now, while the
             * guest runs on the source, not in the pause. */
            char err[512] = "";
            m->disk_flushed = true;
            if ((rc = disk_recv_flush(m->drecv, err, sizeof(err))) < 0) {
                set_error(m, "disk: %s", err);
                goto out;
            }
        }
        if (type == MIG_PAGES && !switched) {
            uint64_t gpa;
            uint8_t g[8];
            if (arg == 0 || arg > MIG_MAX_RUN || len != 8 + (uint64_t)arg * PAGE) {
                rc = dest_fail(m, "bad PAGES record (%u pages, %llu bytes)", arg, (unsigned long long)len);
                goto out;
            }
            if ((rc = chan_recv(&m->chan, g, 8)))
                goto out;
            struct sreader r;
            sreader_init(&r, g, 8);
            gpa = sreader_u64(&r);
            void *dst = (gpa % PAGE) ? NULL : guest_mem_ptr(&vm->mem, gpa, (uint64_t)arg * PAGE);
            if (!dst) {
                rc = dest_fail(m, "PAGES outside guest RAM (gpa 0x%llx, %u pages)",
                               (unsigned long long)gpa, arg);
                goto out;
            }
            if ((rc = chan_recv(&m->chan, dst, (size_t)arg * PAGE)))
                goto out;
            for (uint64_t k = gpa / PAGE; k < gpa / PAGE + arg; k++)
                m->written[k / 64] |= 1ull << (k % 64);
            pthread_mutex_lock(&m->lock);
            m->st.data_pages += arg;
            pthread_mutex_unlock(&m->lock);
        } else if (type == MIG_ZERO && !switched) {
            uint8_t g[12];
            if (len != 12) {
                rc = dest_fail(m, "bad ZERO record (%llu bytes)", (unsigned long long)len);
                goto out;
            }
            if ((rc = chan_recv(&m->chan, g, 12)))
                goto out;
            struct sreader r;
            sreader_init(&r, g, 12);
            uint64_t gpa = sreader_u64(&r), n = sreader_u32(&r);
            void *dst = (gpa % PAGE || !n) ? NULL : guest_mem_ptr(&vm->mem, gpa, n * PAGE);
            if (!dst) {
                rc = dest_fail(m, "ZERO outside guest RAM (gpa 0x%llx, %llu pages)",
                               (unsigned long long)gpa, (unsigned long long)n);
                goto out;
            }
            for (uint64_t k = gpa / PAGE; k < gpa / PAGE + n; k++)
                if (m->written[k / 64] & (1ull << (k % 64))) {
                    memset(vm->mem.hva + k * PAGE, 0, PAGE);
                    m->written[k / 64] &= ~(1ull << (k % 64));
                }
            (void)dst;
            pthread_mutex_lock(&m->lock);
            m->st.zero_pages += n;
            pthread_mutex_unlock(&m->lock);
        } else if (type == MIG_ROUND && !switched) {
            uint8_t g[16];
            if (len != 16) {
                rc = dest_fail(m, "bad ROUND record");
                goto out;
            }
            if ((rc = chan_recv(&m->chan, g, 16)))
                goto out;
            struct sreader r;
            sreader_init(&r, g, 16);
            pthread_mutex_lock(&m->lock);
            m->st.round = sreader_u32(&r) + 1;
            m->st.percent = sreader_u32(&r) % 101;
            m->st.remaining_bytes = sreader_u64(&r);
            pthread_mutex_unlock(&m->lock);
        } else if (type == MIG_SWITCH && !switched) {
            uint8_t g[56];
            if (len != 56) {
                rc = dest_fail(m, "bad SWITCH record");
                goto out;
            }
            if ((rc = chan_recv(&m->chan, g, 56)))
                goto out;
            struct sreader r;
            sreader_init(&r, g, 56);
            *stop_rt = sreader_u64(&r);
            (void)sreader_u64(&r);
            *was_running = sreader_u32(&r) ? 1 : 0;
            has_hash = sreader_u32(&r);
            sreader_get(&r, hash, 32);
            if (m->expect_disk && !disk_recv_complete(m->drecv)) {
                rc = dest_fail(m, "the stream did not carry this VM's disk (it was started to receive "
                                  "one: --incoming-disk)");
                goto out;
            }
            switched = true;
            m->t_stop_mono = vmx_now_ns();  /* destination: when the state began */
            set_phase(m, VMX_MIG_STOPCOPY);
        } else if ((type == MIG_DISK_BEGIN || type == MIG_DISK_FILE || type == MIG_DISK_DATA
                    || type == MIG_DISK_END) && !switched) {
            if ((rc = dest_disk_record(m, type, arg, len)) < 0)
                goto out;
        } else if (type == MIG_CANCEL) {
            char why[128] = "";
            size_t n = len < sizeof(why) - 1 ? (size_t)len : sizeof(why) - 1;
            if (len <= MAX_REPLY && chan_recv(&m->chan, why, n) == 0)
                for (size_t i = 0; i < n; i++)
                    if (why[i] < 0x20 || why[i] >= 0x7f)
                        why[i] = '?';
            rc = dest_fail(m, "the source aborted the migration (%s)", why);
            goto out;
        } else if (type == VMX_ST_END && switched) {
            if (len != 0) {
                rc = dest_fail(m, "bad END record");
                goto out;
            }
            break;
        } else if (switched && (type == VMX_ST_VCPU || type == VMX_ST_IRQCHIP || type == VMX_ST_CLOCK
                                || type == VMX_ST_SERIAL || type == VMX_ST_TOOLS
                                || type == VMX_ST_VIRTIO)) {
            if (len > MIG_MAX_SECTION) {
                rc = dest_fail(m, "state section %u too large (%llu bytes)", type, (unsigned long long)len);
                goto out;
            }
            free(sec);
            sec = malloc(len ? (size_t)len : 1);
            if (!sec) {
                rc = -ENOMEM;
                goto out;
            }
            if ((rc = chan_recv(&m->chan, sec, (size_t)len)))
                goto out;
            char err[256] = "";
            if (type == VMX_ST_VCPU) {
                if (arg < VMX_MAX_VCPUS && (vcpu_mask & (1u << arg))) {
                    rc = dest_fail(m, "state of vCPU %u twice", arg);
                    goto out;
                }
                vcpu_mask |= arg < VMX_MAX_VCPUS ? 1u << arg : 0;
                vcpus_seen++;
            }
            uint64_t t0 = vmx_now_ns();
            rc = vmx_state_load_section(vm, type, arg, sec, len, err, sizeof(err));
            kvc_dbg("section %u/%u loaded in %llu us", type, arg, (unsigned long long)((vmx_now_ns() - t0) / 1000));
            if (rc < 0) {
                set_error(m, "state section %u: %s", type, err[0] ? err : strerror(-rc));
                goto out;
            }
        } else {
            rc = dest_fail(m, "unexpected record 0x%x (%llu bytes)%s", type, (unsigned long long)len,
                           switched ? " after the switch-over" : "");
            goto out;
        }
    }
    if (vcpus_seen != vm->nvcpus) {
        rc = dest_fail(m, "stream held %u vCPU states, VM has %u", vcpus_seen, vm->nvcpus);
        goto out;
    }
    if (has_hash) {
        uint8_t mine[32];
        char a[65], b[65];
        ram_hash(vm, mine);
        hex32(mine, a);
        hex32(hash, b);
        kvc_info("VMX-MIGRATE verify sha256=%s source=%s %s", a, b,
                 memcmp(mine, hash, 32) ? "MISMATCH" : "ok");
        if (memcmp(mine, hash, 32)) {
            rc = dest_fail(m, "RAM checksum mismatch after the copy");
            goto out;
        }
    }
    rc = 0;
out:
    free(sec);
    return rc;
}

static void *dest_thread(void *arg)
{
    struct vmx_migrate *m = arg;
    struct vmx *vm = m->vm;
    int rc = 0;
    uint64_t stop_rt = 0;
    uint32_t was_running = 1;
    pthread_setname_np(pthread_self(), "vmx-incoming");

    if (m->listen_fd >= 0) {
        for (;;) {
            if (__atomic_load_n(&m->cancel, __ATOMIC_ACQUIRE)) {
                set_error(m, "stopped while waiting for the source");
                rc = -ECANCELED;
                goto fail;
            }
            struct pollfd p = { .fd = m->listen_fd, .events = POLLIN };
            if (poll(&p, 1, 100) <= 0)
                continue;
            int fd = accept4(m->listen_fd, NULL, NULL, SOCK_CLOEXEC);
            if (fd < 0)
                continue;
            m->chan.fd = fd;
            break;
        }
        close(m->listen_fd);
        m->listen_fd = -1;
        if (m->unix_path[0]) {
            unlink(m->unix_path);
            m->unix_path[0] = 0;
        }
    }
    tune_socket(m->chan.fd);
    m->t_start = vmx_now_ns();
    set_phase(m, VMX_MIG_SETUP);
    kvc_info("VMX-MIGRATE incoming connection");
    if (m->tls_peer[0]) {
        char err[512];
        if ((rc = chan_tls(&m->chan, true, m->tls_dir, m->tls_peer, err, sizeof(err))) < 0) {
            set_error(m, "%s", err);
            goto fail;
        }
    }
    if ((rc = dest_receive(m, &stop_rt, &was_running)) < 0)
        goto fail;
    /* Failure points for tests (docs/vmx.md): die, or stall, just before
     * confirming -- the source is then in stop-and-copy. */
    const char *fp = getenv("VMX_MIGRATE_FAILPOINT");
    if (fp && !strcmp(fp, "dest-exit-before-ready")) {
        kvc_warn("VMX-MIGRATE failpoint %s", fp);
        _exit(9);
    }
    if (fp && !strcmp(fp, "dest-stall-before-ready")) {
        kvc_warn("VMX-MIGRATE failpoint %s", fp);
        while (!__atomic_load_n(&m->cancel, __ATOMIC_ACQUIRE)) {
            struct timespec ts = { 0, SLICE_MS * 1000000L };
            nanosleep(&ts, NULL);
        }
        rc = -ECANCELED;
        set_error(m, "stopped at failpoint %s", fp);
        goto fail;
    }
    if ((rc = chan_record(&m->chan, MIG_READY, 0, NULL, 0)) || (rc = chan_flush(&m->chan)))
        goto fail;
    set_phase(m, VMX_MIG_COMMIT);
    kvc_info("VMX-MIGRATE loaded: state complete in %llu us, waiting for the source to hand over",
             (unsigned long long)((vmx_now_ns() - m->t_stop_mono) / 1000));
    uint32_t type, a;
    uint64_t len;
    if ((rc = recv_header(&m->chan, &type, &a, &len)) < 0) {
        set_error(m, "no hand-over from the source (%s)", strerror(-rc));
        goto fail;
    }
    uint8_t g[8];
    if (type != MIG_GO || len != 8) {
        rc = dest_fail(m, "the source did not hand over (record 0x%x)", type);
        goto fail;
    }
    if ((rc = chan_recv(&m->chan, g, 8)) < 0)
        goto fail;
    m->lease_gen = 0;
    for (int i = 0; i < 8; i++)
        m->lease_gen |= (uint64_t)g[i] << (8 * i);
    if (vm->cfg.lease_path[0] && m->lease_gen && (rc = run_on_main(m, lease_adopt_main)) < 0)
        goto fail;
    /* GO: the guest is ours. */
    pthread_mutex_lock(&vm->dev_lock);
    vm->pause_req = !was_running;
    vm->state = was_running ? VMX_RUNNING : VMX_PAUSED;
    pthread_mutex_unlock(&vm->dev_lock);
    if ((rc = vmx_vcpus_start(vm)) < 0) {
        set_error(m, "cannot start the vCPUs: %s", strerror(-rc));
        goto fail;
    }
    uint64_t run_mono = vmx_now_ns(), run_rt = now_rt_ns();
    uint64_t downtime = run_rt > stop_rt ? (run_rt - stop_rt) / 1000000 : 0;
    struct sbuf b;
    sbuf_init(&b);
    sbuf_u64(&b, run_rt);
    sbuf_u64(&b, run_mono);
    m->chan.timeout_ms = 1000;
    if (!b.err && chan_record(&m->chan, MIG_RUNNING, 0, b.p, b.len) == 0)
        chan_flush(&m->chan);
    sbuf_free(&b);
    pthread_mutex_lock(&m->lock);
    m->st.phase = VMX_MIG_COMPLETED;
    m->st.percent = 100;
    m->st.remaining_bytes = 0;
    m->st.downtime_ms = downtime;
    m->st.total_ms = (run_mono - m->t_start) / 1000000;
    m->st.transferred_bytes = m->chan.received;
    pthread_mutex_unlock(&m->lock);
    kvc_info("VMX-MIGRATE running mono_ns=%llu realtime_ns=%llu downtime_ms=%llu bytes=%llu%s",
             (unsigned long long)run_mono, (unsigned long long)run_rt, (unsigned long long)downtime,
             (unsigned long long)m->chan.received, was_running ? "" : " (paused, as on the source)");
    chan_close(&m->chan);
    disk_recv_free(m->drecv, false);
    m->drecv = NULL;
    m->ok = true;
    notify_main(m);
    return NULL;
fail:
    disk_recv_free(m->drecv, true);     /* what it created; the placeholder stays */
    m->drecv = NULL;
    if (rc == -ETIMEDOUT)
        set_error(m, "no data from the source for %u ms", m->chan.timeout_ms);
    if (rc == -ECONNRESET)
        set_error(m, "the stream ended before the migration completed");
    set_error(m, "%s", strerror(-rc));
    if (m->chan.fd >= 0) {
        char why[256];
        pthread_mutex_lock(&m->lock);
        snprintf(why, sizeof(why), "%s", m->st.error);
        pthread_mutex_unlock(&m->lock);
        m->chan.out_len = 0;
        m->chan.timeout_ms = 200;
        m->chan.cancel = NULL;
        if (chan_record(&m->chan, MIG_FAIL, 0, why, strlen(why)) == 0)
            chan_flush(&m->chan);
        chan_close(&m->chan);
    }
    set_phase(m, VMX_MIG_FAILED);
    kvc_err("VMX-MIGRATE failed reason=%s", m->st.error);
    m->ok = false;
    notify_main(m);
    return NULL;
}

int vmx_migrate_incoming(struct vmx *vm, const char *addr, char *bound, size_t boundlen,
                         char *err, size_t errlen)
{
    struct vmx_migrate *m = vm->mig;
    if (!m) {
        snprintf(err, errlen, "migration is not set up in this vmx");
        return -EINVAL;
    }
    m->source = false;
    m->chan.timeout_ms = DEFAULT_TIMEOUT_MS;
    m->chan.cancel = &m->cancel;
    snprintf(bound, boundlen, "%s", addr);
    if (!strncmp(addr, "fd:", 3)) {
        char *end;
        long fd = strtol(addr + 3, &end, 10);
        int acc = 0;
        socklen_t l = sizeof(acc);
        if (!addr[3] || *end || fd < 3 || fd > 65535
            || getsockopt((int)fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &l) < 0) {
            snprintf(err, errlen, "'%s' is not a stream socket", addr);
            return -EINVAL;
        }
        fcntl((int)fd, F_SETFD, FD_CLOEXEC);
        if (acc)
            m->listen_fd = (int)fd;
        else
            m->chan.fd = (int)fd;
    } else {
        struct sockaddr_storage ss;
        socklen_t sl;
        if (parse_addr(addr, &ss, &sl, err, errlen) < 0)
            return -EINVAL;
        int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            snprintf(err, errlen, "socket: %s", strerror(errno));
            return -errno;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (ss.ss_family == AF_UNIX)
            unlink(((struct sockaddr_un *)&ss)->sun_path);
        if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 1) < 0) {
            int e = errno;
            close(fd);
            snprintf(err, errlen, "listen on %s: %s", addr, strerror(e));
            return -e;
        }
        m->listen_fd = fd;
        if (ss.ss_family == AF_UNIX) {
            memcpy(m->unix_path, ((struct sockaddr_un *)&ss)->sun_path, sizeof(m->unix_path));
            m->unix_path[sizeof(m->unix_path) - 1] = 0;
            chmod(m->unix_path, 0600);
        } else {
            struct sockaddr_storage got;
            socklen_t gl = sizeof(got);
            char ip[INET6_ADDRSTRLEN] = "";
            if (getsockname(fd, (struct sockaddr *)&got, &gl) == 0) {
                if (got.ss_family == AF_INET) {
                    struct sockaddr_in *a4 = (struct sockaddr_in *)&got;
                    inet_ntop(AF_INET, &a4->sin_addr, ip, sizeof(ip));
                    snprintf(bound, boundlen, "tcp:%s:%u", ip, ntohs(a4->sin_port));
                } else {
                    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&got;
                    inet_ntop(AF_INET6, &a6->sin6_addr, ip, sizeof(ip));
                    snprintf(bound, boundlen, "tcp:[%s]:%u", ip, ntohs(a6->sin6_port));
                }
            }
        }
    }
    /* Prepare the RAM the stream will fill while nobody waits for it: vmx
     * otherwise populates guest RAM lazily once the guest runs, and a
     * stream landing on holes pays a page fault per 4 KiB page. */
    uint64_t t0 = vmx_now_ns();
    for (uint64_t off = 0; off < vm->mem.size; off += 2u << 20) {
        uint64_t n = vm->mem.size - off < (2u << 20) ? vm->mem.size - off : (2u << 20);
        if (madvise(vm->mem.hva + off, n, MADV_POPULATE_WRITE) < 0)
            break;
    }
    kvc_info("VMX-MIGRATE incoming prepared ram_bytes=%llu populate_ms=%llu",
             (unsigned long long)vm->mem.size, (unsigned long long)((vmx_now_ns() - t0) / 1000000));
    pthread_mutex_lock(&m->lock);
    memset(&m->st, 0, sizeof(m->st));
    m->st.phase = VMX_MIG_INCOMING;
    m->st.ram_bytes = vm->mem.size;
    snprintf(m->st.peer, sizeof(m->st.peer), "%s", bound);
    pthread_mutex_unlock(&m->lock);
    return 0;
}

void vmx_migrate_expect_disk(struct vmx *vm)
{
    if (vm->mig)
        vm->mig->expect_disk = true;
}

void vmx_migrate_own_lease(struct vmx *vm)
{
    if (vm->mig)
        vm->mig->own_lease = true;
}

int vmx_migrate_incoming_run(struct vmx *vm, char *err, size_t errlen)
{
    struct vmx_migrate *m = vm->mig;
    if (!m->written && !(m->written = calloc((vm->mem.size / PAGE + 63) / 64, sizeof(uint64_t)))) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int rc = pthread_create(&m->thread, NULL, dest_thread, m);
    if (rc) {
        snprintf(err, errlen, "cannot start the migration thread: %s", strerror(rc));
        return -rc;
    }
    m->thread_running = true;
    return 0;
}

int vmx_migrate_incoming_tls(struct vmx *vm, const char *dir, const char *peer, char *err, size_t errlen)
{
    struct vmx_migrate *m = vm->mig;
    char crt[PATH_MAX];
    if (!m || !dir || !peer || !kvc_tls_thumbprint_equal(peer, peer)) {
        snprintf(err, errlen, "TLS needs an identity directory and the source's SHA-256 thumbprint");
        return -EINVAL;
    }
    snprintf(crt, sizeof(crt), "%s/%s", dir, KVC_TLS_CERT_FILE);
    if (access(crt, R_OK) < 0) {
        snprintf(err, errlen, "%s: %s", crt, strerror(errno));
        return -errno;
    }
    snprintf(m->tls_dir, sizeof(m->tls_dir), "%s", dir);
    snprintf(m->tls_peer, sizeof(m->tls_peer), "%s", peer);
    return 0;
}
