/* vmx: one process per running VM.
 *
 *   vmx -c CONFIG -s CONTROL_SOCKET [-l LOGFILE] [-n] [--restore FILE]
 *
 * Prints "VMX-READY pid=N" on stdout (and in the log) once the control socket
 * listens and the vCPUs run.  Exit status: 0 powered off (also after a
 * suspend), 1 could not start (bad config, no /dev/kvm, bad snapshot),
 * 2 crashed.  See docs/vmx.md. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <event2/event.h>

#include "lib/lease.h"
#include "lib/log.h"
#include "vmkernel-kvm/migrate.h"
#include "vmkernel-kvm/vmx.h"
#include "vmkernel-kvm/vmx_ctl.h"

KVC_LOG_MODULE(vmx);

#define EXIT_POWERED_OFF 0
#define EXIT_START_FAILED 1
#define EXIT_CRASHED 2
#define EXIT_MIGRATED 3          /* the VM left: it runs on a migration destination */

struct vmx_seccomp;
int vmx_seccomp_install(char *why, size_t len);

static struct vmx g_vm;
static struct event_base *g_base;

static void usage(FILE *f)
{
    fprintf(f, "usage: vmx -c CONFIG -s CONTROL_SOCKET [-l LOGFILE] [-n] [--restore FILE]\n"
               "  -c CONFIG        the VM's config file (in its folder)\n"
               "  -s SOCKET        control socket to listen on (proto/vmx.proto)\n"
               "  -l LOGFILE       log here instead of stderr\n"
               "  -n               check the config and exit\n"
               "  --restore FILE   start from a snapshot instead of booting\n"
               "  --incoming ADDR  wait for a live migration on unix:PATH, tcp:IP:PORT or fd:N\n"
               "  --incoming-disk  with --incoming: the disk comes over the stream too (disk.path is\n"
               "                   a new, empty base of the same size that it replaces)\n"
               "  --incoming-own-lease  with --incoming: this VM's folder is not the source's: take\n"
               "                   its own lease (implied by --incoming-disk)\n"
               "  --incoming-tls DIR --incoming-peer THUMBPRINT  require TLS for it (identity in DIR,\n"
               "                   the source's certificate pinned)\n"
               "  --no-seccomp     do not install the seccomp filter (debugging)\n"
               "  --net-fds M,K,C[,L]  inherited vSwitch port: ring memfd, kick and call eventfds,\n"
               "                   and the port's link (vmkd passes 3,4,5,6)\n"
               "  --net-socket PATH --net-id ID  where to ask for a new port when the link\n"
               "                   closes (vmkd's port socket, the VM's id there)\n");
}

/* Guest RAM is prefaulted (MADV_POPULATE_WRITE: the guest's first touch of
 * a page then costs no host page fault) by a thread once the guest runs,
 * not before it starts: populating 64 MiB of 4 KiB shmem pages took ~100 ms
 * on the build machines, most of vmx's start-up (tests/bench/bench_vmx.py,
 * docs/benchmarks.md).  Populating never changes what a page holds, so it
 * may run beside the guest; it goes in 2 MiB steps so exit can stop it. */
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#define PREFAULT_STEP (2u << 20)
static pthread_t g_prefault;
static bool g_prefault_on;
static atomic_bool g_prefault_stop;

static void *prefault_main(void *arg)
{
    struct guest_mem *m = arg;
    for (uint64_t off = 0; off < m->size && !atomic_load(&g_prefault_stop); off += PREFAULT_STEP) {
        uint64_t n = m->size - off < PREFAULT_STEP ? m->size - off : PREFAULT_STEP;
        if (madvise(m->hva + off, n, MADV_POPULATE_WRITE) < 0)
            break;              /* an old kernel: pages fault in on demand */
    }
    return NULL;
}

static void prefault_start(struct vmx *vm)
{
    if (!g_prefault_on && vm->mem.hva
        && pthread_create(&g_prefault, NULL, prefault_main, &vm->mem) == 0)
        g_prefault_on = true;
}

static void prefault_stop(void)
{
    if (!g_prefault_on)
        return;
    atomic_store(&g_prefault_stop, true);
    pthread_join(g_prefault, NULL);
    g_prefault_on = false;
}

static int build_vm(struct vmx *vm)
{
    int rc;
    if ((rc = vmx_vm_create(vm)) < 0)
        return rc;
    return 0;
}

static int reset_vm(struct vmx *vm)
{
    kvc_info("resetting the VM");
    vmx_vm_destroy(vm);
    guest_mem_clear(&vm->mem, true);
    pthread_mutex_lock(&vm->dev_lock);
    vm->stop = VMX_STOP_NONE;
    vm->stop_detail[0] = 0;
    vm->pause_req = false;
    vm->parked = 0;
    /* Devices go back to their power-on state; the console ring and the log
     * keep their history. */
    uint8_t zero[4] = { 0 };
    virtio_mmio_write(&vm->tools.dev, 0x70, zero, 4);
    vm->tools.last_heartbeat_ns = 0;
    vm->hb_lost_logged = false;
    if (vm->balloon_on)
        virtio_mmio_write(&vm->balloon.dev, 0x70, zero, 4);
    if (vm->net_on)
        virtio_mmio_write(&vm->net.dev, 0x70, zero, 4);
    if (vm->blk_on)
        virtio_mmio_write(&vm->blk.dev, 0x70, zero, 4);
    vm->serial.ier = 0;
    vm->serial.mcr = 0;
    vm->serial.rx_len = 0;
    pthread_mutex_unlock(&vm->dev_lock);
    int rc = build_vm(vm);
    if (!rc)
        rc = vmx_net_bind_kvm(vm);
    if (!rc)
        rc = vmx_boot(vm);
    if (!rc)
        rc = vmx_vcpus_start(vm);
    if (!rc) {
        vm->resets++;
        vm->state = VMX_RUNNING;
        kvc_info("VMX-RESET count=%u", vm->resets);
    }
    return rc;
}

static void on_notify(evutil_socket_t fd, short what, void *arg)
{
    struct vmx *vm = arg;
    uint64_t v;
    (void)what;
    if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        kvc_warn("notify read: %s", strerror(errno));
    pthread_mutex_lock(&vm->dev_lock);
    enum vmx_stop_reason r = vm->stop;
    pthread_mutex_unlock(&vm->dev_lock);
    if (r == VMX_STOP_NONE)
        return;
    /* A migration thread uses the VM: end it (it aborts unless committed). */
    vmx_migrate_stop(vm);
    vmx_vcpus_join(vm);
    switch (r) {
    case VMX_STOP_MIGRATED:
        vm->state = VMX_MIGRATED;
        break;
    case VMX_STOP_RESET:
        if (reset_vm(vm) == 0)
            return;
        vm->state = VMX_CRASHED;
        snprintf(vm->stop_detail, sizeof(vm->stop_detail), "reset failed");
        break;
    case VMX_STOP_POWEROFF:
        vm->state = VMX_POWERED_OFF;
        break;
    default:
        vm->state = VMX_CRASHED;
        break;
    }
    event_base_loopexit(g_base, NULL);
}

/* A live migration ended (migrate.c, on this loop). */
static bool g_incoming, g_incoming_failed;
static bool g_incoming_own_lease;   /* --incoming-disk, --incoming-own-lease: a folder
                                     * of its own, so a lease of its own */

static void on_migration_done(struct vmx *vm, bool ok, void *arg)
{
    (void)arg;
    vmx_ctl_migrate_finished(vm);
    struct vmx_migrate_status st;
    vmx_migrate_get_status(vm, &st);
    if (!g_incoming) {
        if (ok) {
            char d[300];
            snprintf(d, sizeof(d), "migrated to %s", st.peer);
            vmx_request_stop(vm, VMX_STOP_MIGRATED, d);
        }
        return;
    }
    g_incoming = false;
    if (!ok) {
        char d[300];
        g_incoming_failed = true;
        snprintf(d, sizeof(d), "incoming migration: %s", st.error);
        vmx_request_stop(vm, VMX_STOP_POWEROFF, d);
        return;
    }
    kvc_info("VMX-READY pid=%d name=%s migrated=1", (int)getpid(), vm->cfg.name);
    prefault_start(vm);         /* the pages the source sent as zero */
    printf("VMX-READY pid=%d\n", (int)getpid());
    fflush(stdout);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    kvc_info("signal %d: powering off", (int)sig);
    vmx_request_stop(arg, VMX_STOP_POWEROFF, "powered off by signal");
}

static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
    struct vmx *vm = arg;
    (void)fd; (void)what;
    if (vm->state != VMX_RUNNING)
        return;
    pthread_mutex_lock(&vm->dev_lock);
    int64_t age = tools_heartbeat_age_ms(&vm->tools, vmx_now_ns());
    if (age > (int64_t)vm->cfg.heartbeat_timeout_ms && !vm->hb_lost_logged) {
        vm->hb_lost_logged = true;
        kvc_warn("VMX-EVENT heartbeat-lost age_ms=%lld", (long long)age);
    } else if (age >= 0 && age <= (int64_t)vm->cfg.heartbeat_timeout_ms && vm->hb_lost_logged) {
        vm->hb_lost_logged = false;
        kvc_info("VMX-EVENT heartbeat-restored");
    }
    pthread_mutex_unlock(&vm->dev_lock);
}

/* The VM's lease (lib/lease.h, docs/hosts.md): renewed from this loop every
 * duration/5.  Anything that blocks the loop for 3/5 of the duration loses
 * it.  A lease taken by another host powers the guest off at once. */
static struct event *g_ev_lease;

static void on_lease(evutil_socket_t fd, short what, void *arg)
{
    static struct kvc_ratelimit rl = KVC_RATELIMIT_INIT(3, 60);
    struct vmx *vm = arg;
    char err[PATH_MAX + 512];
    (void)fd; (void)what;
    if (!vm->lease || kvc_lease_transferred(vm->lease))
        return;
    int rc = kvc_lease_renew(vm->lease, NULL, err, sizeof(err));
    if (rc == -ESTALE) {
        kvc_err("VMX-EVENT lease-lost: %s", err);
        vmx_request_stop(vm, VMX_STOP_POWEROFF, "lease-lost");
        event_del(g_ev_lease);
    } else if (rc) {
        kvc_warn_rl(&rl, "lease renewal failed, retrying: %s", err);
    }
}

/* Take the lease (unless an incoming migration hands it over) and start
 * renewing it.  A lease live on another host: -EBUSY, the VM must not run. */
static int lease_start(struct vmx *vm)
{
    const struct vmx_config *c = &vm->cfg;
    char err[PATH_MAX + 512];
    if (!c->lease_path[0])
        return 0;
    if (vm->state == VMX_INCOMING && !g_incoming_own_lease)
        vm->lease_adopt = true;         /* the source hands it over at switch-over */
    if (!vm->lease && !vm->lease_adopt) {
        struct kvc_lease_opts o = {
            .path = c->lease_path, .owner = c->lease_owner,
            .owner_name = c->lease_owner_name[0] ? c->lease_owner_name : c->lease_owner,
            .vm = c->name, .duration_ms = c->lease_duration_ms,
        };
        /* A short retry covers a contender's lock held for a moment. */
        int rc = kvc_lease_acquire_wait(&o, 200, &vm->lease, NULL, err, sizeof(err));
        if (rc) {
            kvc_err("lease: %s", err);
            fprintf(stderr, "vmx: not starting: %s\n", err);
            return rc;
        }
        kvc_info("VMX-LEASE acquired path=%s generation=%llu duration_ms=%u", c->lease_path,
                 (unsigned long long)kvc_lease_generation(vm->lease), c->lease_duration_ms);
    }
    unsigned iv = vm->lease ? kvc_lease_renew_interval_ms(vm->lease) : c->lease_duration_ms / 5;
    struct timeval tv = { iv / 1000, (iv % 1000) * 1000 };
    g_ev_lease = event_new(g_base, -1, EV_PERSIST, on_lease, vm);
    if (!g_ev_lease || event_add(g_ev_lease, &tv))
        return -ENOMEM;
    return 0;
}

int main(int argc, char **argv)
{
    const char *cfg_path = NULL, *sock = NULL, *logfile = NULL, *restore = NULL, *incoming = NULL;
    const char *incoming_tls = NULL, *incoming_peer = NULL;
    const char *net_fds = NULL, *net_sock = NULL, *net_id = NULL;
    int net_link = -1;
    bool check = false, no_seccomp = false, incoming_disk = false, own_lease = false;
    static const struct option opts[] = {
        { "incoming-disk", no_argument, NULL, 'D' },
        { "incoming-own-lease", no_argument, NULL, 'L' },
        { "restore", required_argument, NULL, 'r' },
        { "incoming", required_argument, NULL, 'I' },
        { "incoming-tls", required_argument, NULL, 'T' },
        { "incoming-peer", required_argument, NULL, 'P' },
        { "no-seccomp", no_argument, NULL, 'S' },
        { "net-fds", required_argument, NULL, 'N' },
        { "net-socket", required_argument, NULL, 'K' },
        { "net-id", required_argument, NULL, 'J' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int o;
    while ((o = getopt_long(argc, argv, "c:s:l:nh", opts, NULL)) != -1) {
        switch (o) {
        case 'c': cfg_path = optarg; break;
        case 's': sock = optarg; break;
        case 'l': logfile = optarg; break;
        case 'n': check = true; break;
        case 'r': restore = optarg; break;
        case 'I': incoming = optarg; break;
        case 'T': incoming_tls = optarg; break;
        case 'P': incoming_peer = optarg; break;
        case 'D': incoming_disk = true; break;
        case 'L': own_lease = true; break;
        case 'S': no_seccomp = true; break;
        case 'N': net_fds = optarg; break;
        case 'K': net_sock = optarg; break;
        case 'J': net_id = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return EXIT_START_FAILED;
        }
    }
    if (!cfg_path || optind != argc || (!check && !sock)) {
        usage(stderr);
        return EXIT_START_FAILED;
    }
    kvc_log_init("vmx");
    if (logfile && kvc_log_open(logfile) < 0) {
        fprintf(stderr, "vmx: cannot open log %s: %s\n", logfile, strerror(errno));
        return EXIT_START_FAILED;
    }

    struct vmx *vm = &g_vm;
    char err[1024];
    memset(vm, 0, sizeof(*vm));
    vm->kvm_fd = vm->vm_fd = vm->notify_fd = -1;
    for (unsigned i = 0; i < VMX_MAX_VCPUS; i++)
        vm->vcpus[i].fd = -1;
    vm->net_fds[0] = vm->net_fds[1] = vm->net_fds[2] = -1;
    if (logfile)
        snprintf(vm->log_path, sizeof(vm->log_path), "%s", logfile);
    char net_tail;
    int nnet = net_fds ? sscanf(net_fds, "%d,%d,%d,%d%c", &vm->net_fds[0], &vm->net_fds[1],
                                &vm->net_fds[2], &net_link, &net_tail) : 0;
    if (net_fds && nnet != 3 && nnet != 4) {
        fprintf(stderr, "vmx: --net-fds %s: expected MEMFD,KICK,CALL[,LINK]\n", net_fds);
        return EXIT_START_FAILED;
    }
    if (nnet != 4)
        net_link = -1;
    if (!net_sock != !net_id) {
        fprintf(stderr, "vmx: --net-socket and --net-id go together\n");
        return EXIT_START_FAILED;
    }
    if (vmx_config_load(cfg_path, &vm->cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        if (logfile)
            kvc_err("%s", err);
        return EXIT_START_FAILED;
    }
    if (check) {
        const char *img = vm->cfg.image[0] ? vm->cfg.image : vm->cfg.kernel;
        if (access(img, R_OK) < 0) {
            fprintf(stderr, "%s: guest %s: %s\n", cfg_path, img, strerror(errno));
            return EXIT_START_FAILED;
        }
        /* The disk: its chain and delta maps are checked as at start. */
        char disk[96] = "";
        if (vm->cfg.disk_path[0]) {
            static struct disk dk;
            if (disk_open(&dk, vm->cfg.disk_path, true, err, sizeof(err)) < 0) {
                fprintf(stderr, "%s: disk.path %s: %s\n", cfg_path, vm->cfg.disk_path, err);
                return EXIT_START_FAILED;
            }
            snprintf(disk, sizeof(disk), ", disk %llu sectors in %u layer(s)",
                     (unsigned long long)(dk.size / DISK_SECTOR), dk.n);
            disk_close(&dk);
        }
        printf("configuration OK: %s, %llu MiB, %u vCPU(s), %s%s\n", vm->cfg.name,
               (unsigned long long)vm->cfg.memory_mb, vm->cfg.vcpus,
               vm->cfg.kernel[0] ? "linux" : vmx_workload_name(vm->cfg.workload), disk);
        return 0;
    }

    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    pthread_mutex_init(&vm->dev_lock, NULL);
    pthread_cond_init(&vm->cond, NULL);
    vm->nvcpus = vm->cfg.vcpus;
    vm->start_ns = vmx_now_ns();
    int rc, status = EXIT_START_FAILED;
    char incoming_at[300] = "";
    bool dispatched = false;
    struct vmx_ctl *ctl = NULL;
    struct event *ev_notify = NULL, *ev_term = NULL, *ev_int = NULL, *ev_wd = NULL;

    signal(SIGPIPE, SIG_IGN);
    g_base = event_base_new();
    if (!g_base)
        goto out;
    vm->notify_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (vm->notify_fd < 0)
        goto out;
    if ((rc = vmx_kvm_open(vm)) < 0)
        goto out;
    if ((rc = guest_mem_init(&vm->mem, vm->cfg.memory_mb << 20, false)) < 0) {
        kvc_err("guest RAM (%llu MiB): %s", (unsigned long long)vm->cfg.memory_mb, strerror(-rc));
        goto out;
    }
    if ((rc = build_vm(vm)) < 0 || (rc = vmx_devices_init(vm)) < 0)
        goto out;
    if (incoming && restore) {
        fprintf(stderr, "vmx: --incoming and --restore exclude each other\n");
        goto out;
    }
    if (vmx_migrate_init(vm, g_base, on_migration_done, NULL) < 0)
        goto out;
    if (incoming_disk && (!incoming || !vm->blk_on)) {
        fprintf(stderr, "vmx: --incoming-disk needs --incoming and a disk.path (the placeholder the "
                        "stream replaces)\n");
        goto out;
    }
    if (own_lease && !incoming) {
        fprintf(stderr, "vmx: --incoming-own-lease needs --incoming\n");
        goto out;
    }
    if (incoming_disk)
        vmx_migrate_expect_disk(vm);
    /* Files of its own (another datastore): a lease of its own, taken at
     * start, not the source's handed over. */
    g_incoming_own_lease = incoming_disk || own_lease;
    if (g_incoming_own_lease)
        vmx_migrate_own_lease(vm);
    if (incoming) {
        /* Built but not booted: the state comes from the source. */
        vm->state = VMX_INCOMING;
        g_incoming = true;
        if (vmx_migrate_incoming(vm, incoming, incoming_at, sizeof(incoming_at), err, sizeof(err)) < 0
            || ((incoming_tls || incoming_peer)
                && vmx_migrate_incoming_tls(vm, incoming_tls, incoming_peer, err, sizeof(err)) < 0)) {
            kvc_err("incoming migration: %s", err);
            fprintf(stderr, "vmx: --incoming %s: %s\n", incoming, err);
            goto out;
        }
    } else if (restore) {
        if ((rc = vmx_snapshot_restore(vm, restore, err, sizeof(err))) < 0) {
            kvc_err("restore %s: %s", restore, err);
            fprintf(stderr, "vmx: restore %s: %s\n", restore, err);
            goto out;
        }
        vm->restored = true;
        kvc_info("restored from %s", restore);
    } else if ((rc = vmx_boot(vm)) < 0) {
        goto out;
    }
    /* vmx's own methods, then the NIC's (vmx_net_ctl.c), then the disk's
     * (vmx_disk_ctl.c). */
    static struct vmx_ctl_method methods[64];
    size_t n_net, n_disk;
    const struct vmx_ctl_method *net_methods = vmx_net_ctl_table(&n_net);
    const struct vmx_ctl_method *disk_methods = vmx_disk_ctl_table(&n_disk);
    if (vmx_ctl_n_methods + n_net + n_disk > 64)
        goto out;
    memcpy(methods, vmx_ctl_methods, sizeof(methods[0]) * vmx_ctl_n_methods);
    memcpy(methods + vmx_ctl_n_methods, net_methods, sizeof(methods[0]) * n_net);
    memcpy(methods + vmx_ctl_n_methods + n_net, disk_methods, sizeof(methods[0]) * n_disk);
    if ((rc = vmx_ctl_listen(g_base, sock, methods, vmx_ctl_n_methods + n_net + n_disk, vm,
                             &ctl)) < 0) {
        kvc_err("control socket %s: %s", sock, strerror(-rc));
        goto out;
    }
    ev_notify = event_new(g_base, vm->notify_fd, EV_READ | EV_PERSIST, on_notify, vm);
    ev_term = evsignal_new(g_base, SIGTERM, on_signal, vm);
    ev_int = evsignal_new(g_base, SIGINT, on_signal, vm);
    ev_wd = event_new(g_base, -1, EV_PERSIST, on_watchdog, vm);
    struct timeval wd = { 0, 250000 };
    if (!ev_notify || !ev_term || !ev_int || !ev_wd || event_add(ev_notify, NULL)
        || event_add(ev_term, NULL) || event_add(ev_int, NULL) || event_add(ev_wd, &wd))
        goto out;

    if (vm->net_on) {
        rc = vmx_net_link_start(vm, g_base, net_link, net_sock, net_id);
        net_link = -1;
        if (rc < 0)
            goto out;
    }
    if ((rc = lease_start(vm)) < 0)
        goto out;
    if (no_seccomp) {
        kvc_warn("seccomp filter not installed (--no-seccomp)");
    } else {
        char why[256] = "";
        if ((rc = vmx_seccomp_install(why, sizeof(why))) < 0) {
            kvc_err("seccomp: %s", why);
            goto out;
        }
        if (why[0])
            kvc_warn("seccomp: %s", why);
    }
    if (incoming) {
        if (vmx_migrate_incoming_run(vm, err, sizeof(err)) < 0) {
            kvc_err("incoming migration: %s", err);
            goto out;
        }
        kvc_info("VMX-INCOMING pid=%d name=%s listen=%s", (int)getpid(), vm->cfg.name, incoming_at);
        printf("VMX-INCOMING pid=%d listen=%s\n", (int)getpid(), incoming_at);
        fflush(stdout);
    } else {
        if ((rc = vmx_vcpus_start(vm)) < 0)
            goto out;
        vm->state = VMX_RUNNING;
        kvc_info("VMX-READY pid=%d name=%s", (int)getpid(), vm->cfg.name);
        prefault_start(vm);
        printf("VMX-READY pid=%d\n", (int)getpid());
        fflush(stdout);
    }

    dispatched = true;
    event_base_dispatch(g_base);

    vmx_migrate_stop(vm);
    vmx_ctl_migrate_finished(vm);
    vmx_ctl_flush(ctl);
    if (vm->state == VMX_MIGRATED) {
        status = EXIT_MIGRATED;
        kvc_info("VMX-EXIT state=migrated detail=%s", vm->stop_detail);
    } else if (g_incoming || g_incoming_failed) {
        status = EXIT_START_FAILED;
        kvc_err("VMX-EXIT state=failed detail=%s", g_incoming_failed ? vm->stop_detail
                : "stopped before an incoming migration completed");
    } else if (vm->state == VMX_CRASHED) {
        status = EXIT_CRASHED;
        kvc_err("VMX-EXIT state=crashed detail=%s", vm->stop_detail);
    } else {
        status = EXIT_POWERED_OFF;
        kvc_info("VMX-EXIT state=poweredOff detail=%s", vm->stop_detail);
    }
out:
    if (status == EXIT_START_FAILED && !dispatched)
        kvc_err("VMX-EXIT state=failed: the VM could not start");
    if (vm->stop == VMX_STOP_NONE && vm->vm_fd >= 0)
        vmx_request_stop(vm, VMX_STOP_POWEROFF, "shutting down");
    vmx_vcpus_join(vm);
    vmx_ctl_free(ctl);
    /* Released whatever the end (power-off, crash, failed start); a lost
     * or handed-over lease is not written. */
    if (vm->lease)
        kvc_lease_release(vm->lease);
    vm->lease = NULL;
    if (g_ev_lease)
        event_free(g_ev_lease);
    if (ev_notify) event_free(ev_notify);
    if (ev_term) event_free(ev_term);
    if (ev_int) event_free(ev_int);
    if (ev_wd) event_free(ev_wd);
    vmx_net_link_stop();
    if (net_link >= 0)
        close(net_link);
    vmx_migrate_free(vm);
    vmx_devices_destroy(vm);
    vmx_vm_destroy(vm);
    prefault_stop();
    guest_mem_destroy(&vm->mem);
    if (vm->kvm_fd >= 0)
        close(vm->kvm_fd);
    if (vm->notify_fd >= 0)
        close(vm->notify_fd);
    if (g_base)
        event_base_free(g_base);
    return status;
}
