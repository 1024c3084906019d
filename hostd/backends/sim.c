/* The sim backend: VMs modelled without KVM.
 *
 * A simulated VM is a small state machine driven by one timer per host:
 * power-on boots for boot_ms, then the "guest" heartbeats (tools RUNNING)
 * unless its workload hangs or crashes it; CPU and memory demand follow the
 * workload's profile over time; guest shutdown takes shutdown_ms.  What a
 * running VM is lives in its folder (<name>.sim), the way a vmx process
 * outlives hostd: a restarted hostd finds its VMs still running. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "lib/lease.h"
#include "hostd/backend.h"
#include "hostd/backends/sim.h"

KVC_LOG_MODULE(sim);

#define SIM_TICK_MS 100
#define SIM_BOOT_MS 300
#define SIM_SHUTDOWN_MS 200

struct sim_vm {
    struct sim_workload wl;
    int64_t boot_start;         /* ms; 0 when off */
    int64_t shutdown_at;        /* ms; 0: none pending */
    bool hung, crash_pending;
    bool mig_stall;             /* failure injection: pre-copy never converges */
    uint64_t net_rx, net_tx, disk_rd, disk_wr;
    struct kvc_lease *lease;    /* held while on or suspended (lib/lease.h) */
    int64_t lease_next;         /* ms: its next renewal */
};

struct sim_host {
    struct event *tick;
};

int
sim_workload_parse(const char *s, struct sim_workload *o)
{
    char *end;

    o->arg = 0;
    if (!s || !*s || !strcmp(s, "idle")) {
        o->kind = SIM_IDLE;
        return 0;
    }
    if (!strcmp(s, "hang")) {
        o->kind = SIM_HANG;
        return 0;
    }
    if (!strcmp(s, "crash")) {
        o->kind = SIM_CRASH;
        return 0;
    }
    if (!strncmp(s, "cpu:", 4))
        o->kind = SIM_CPU, s += 4;
    else if (!strncmp(s, "mem:", 4))
        o->kind = SIM_MEM, s += 4;
    else if (!strncmp(s, "sine:", 5))
        o->kind = SIM_SINE, s += 5;
    else
        return -EINVAL;
    errno = 0;
    o->arg = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(o->arg) || o->arg < 0)
        return -EINVAL;
    if (o->kind == SIM_CPU && o->arg > 100)
        return -EINVAL;
    if (o->kind == SIM_SINE && o->arg <= 0)
        return -EINVAL;
    return 0;
}

double
sim_cpu_demand(const struct sim_workload *w, int64_t t_ms)
{
    switch (w->kind) {
    case SIM_CPU:
        return w->arg / 100.0;
    case SIM_MEM:
        return 0.15;
    case SIM_SINE:
        return 0.5 + 0.45 * sin(2 * M_PI * (double)t_ms / (w->arg * 1000.0));
    case SIM_HANG:
        return 1.0;             /* a hung guest usually spins */
    default:
        return 0.02;
    }
}

uint64_t
sim_mem_active(const struct sim_workload *w, uint64_t mem)
{
    return w->kind == SIM_MEM ? mem * 8 / 10 : w->kind == SIM_CPU ? mem / 4 : mem / 10;
}

double
sim_dirty_rate(const struct sim_workload *w, uint64_t mem)
{
    switch (w->kind) {
    case SIM_MEM:
        return w->arg * 1048576.0;
    case SIM_CPU:
    case SIM_SINE:
        return (double)mem / 100;       /* 1% of memory per second */
    default:
        return (double)mem / 1000;
    }
}

int64_t
sim_migration_ms(uint64_t mem, double dirty, double bw, int64_t target_ms,
                 int64_t *downtime)
{
    double left = (double)mem, total = 0, t;
    double fits = bw * (double)target_ms / 1000.0;

    if (bw <= 0)
        return -1;
    for (int round = 0; round < 30; round++) {
        if (left <= fits && round > 0)
            break;
        t = left / bw;
        total += t;
        left = dirty * t;
        if (left > (double)mem)
            left = (double)mem;
    }
    if (left > fits && dirty >= bw)
        return -1;
    t = left / bw;
    if (downtime)
        *downtime = (int64_t)llround(t * 1000);
    return (int64_t)llround((total + t) * 1000);
}

/* ---- runtime file ------------------------------------------------------- */

static void
runfile_path(const struct hostd_vm *vm, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s.sim", vm->dir, vm->name);
}

static void
runfile_write(struct hostd_host *h, struct hostd_vm *vm)
{
    char path[PATH_MAX + 16];
    FILE *f;

    runfile_path(vm, path, sizeof path);
    if (vm->power == VM_OFF) {
        unlink(path);
        return;
    }
    if (!(f = fopen(path, "w"))) {
        kvc_warn("%s: %s", path, strerror(errno));
        return;
    }
    fprintf(f, "power=%s host=%s\n", vm->power == VM_ON ? "on" : "suspended", h->uuid);
    fclose(f);
}

static void
runfile_read(struct hostd_host *h, struct hostd_vm *vm)
{
    char path[PATH_MAX + 16], line[256] = "", state[32] = "", host[64] = "";
    FILE *f;

    runfile_path(vm, path, sizeof path);
    if (!(f = fopen(path, "r")))
        return;
    if (fgets(line, sizeof line, f))
        sscanf(line, "power=%31s host=%63s", state, host);
    fclose(f);
    /* Only this host's runs: a VM started elsewhere (HA) is not ours. */
    if (strcmp(host, h->uuid))
        return;
    if (!strcmp(state, "on"))
        vm->power = VM_ON;
    else if (!strcmp(state, "suspended"))
        vm->power = VM_SUSPENDED;
}

/* ---- VM state machine ----------------------------------------------------*/

static void
boot(struct hostd_vm *vm, struct sim_vm *s)
{
    vm->power = VM_ON;
    vm->tools_running = false;
    s->boot_start = hostd_now_ms();
    s->shutdown_at = 0;
    s->hung = false;
    s->crash_pending = s->wl.kind == SIM_CRASH;
    sim_console_boot(vm);
}

static void
halt(struct hostd_vm *vm, struct sim_vm *s)
{
    vm->power = VM_OFF;
    vm->tools_running = false;
    s->boot_start = 0;
    s->shutdown_at = 0;
    kvc_lease_release(s->lease);
    s->lease = NULL;
}

/* Renews VM's lease when due, as a vmx would.  True if the VM stopped: the
 * lease was taken by another host (fencing) or could not be renewed in
 * time.  A VM migrating out lets it go: the destination took it. */
static bool
lease_tick(struct hostd_host *h, struct hostd_vm *vm, struct sim_vm *s, int64_t now)
{
    static struct kvc_ratelimit rl = KVC_RATELIMIT_INIT(5, 60);
    char err[PATH_MAX + 512], path[PATH_MAX + 16], line[256] = "", host[64] = "";
    FILE *f;
    int rc;

    if (!s->lease || vm->power == VM_OFF || now < s->lease_next)
        return false;
    s->lease_next = now + kvc_lease_renew_interval_ms(s->lease);
    if ((rc = kvc_lease_renew(s->lease, NULL, err, sizeof err)) != -ESTALE) {
        if (rc)
            kvc_warn_rl(&rl, "%s: VM %s: lease renewal failed, retrying: %s", h->name,
                        vm->name, err);
        return false;
    }
    kvc_lease_free(s->lease);
    s->lease = NULL;
    if (vm->busy) {
        kvc_info("%s: VM %s: lease handed to the migration's destination (%s)", h->name,
                 vm->name, err);
        return false;
    }
    kvc_err("%s: VM %s: lease lost, powering off: %s", h->name, vm->name, err);
    halt(vm, s);
    /* The run record goes only if it is ours: the new holder wrote its own. */
    runfile_path(vm, path, sizeof path);
    if ((f = fopen(path, "r"))) {
        if (fgets(line, sizeof line, f))
            sscanf(line, "power=%*31s host=%63s", host);
        fclose(f);
    }
    if (!host[0] || !strcmp(host, h->uuid))
        unlink(path);
    hostd_vm_changed(h, vm, false);
    return true;
}

static void
sim_tick(evutil_socket_t fd, short what, void *arg)
{
    struct hostd_host *h = arg;
    int64_t now = hostd_now_ms();

    if (h->crashed)
        return;
    for (struct hostd_vm *vm = h->vms; vm; vm = vm->next) {
        struct sim_vm *s = vm->be;
        if (s && lease_tick(h, vm, s, now))
            continue;
        if (!s || vm->power != VM_ON)
            continue;
        if (s->shutdown_at && now >= s->shutdown_at) {
            halt(vm, s);
            runfile_write(h, vm);
            hostd_vm_changed(h, vm, false);
            continue;
        }
        if (now - s->boot_start < SIM_BOOT_MS)
            continue;
        if (s->crash_pending) {
            kvc_info("%s: guest of %s crashed (workload)", h->name, vm->name);
            halt(vm, s);
            runfile_write(h, vm);
            hostd_vm_changed(h, vm, false);
            continue;
        }
        bool beating = !s->hung && s->wl.kind != SIM_HANG;
        if (beating != vm->tools_running) {
            vm->tools_running = beating;
            hostd_vm_changed(h, vm, false);
        }
        /* Counters grow with demand, so rates look alive. */
        double d = sim_cpu_demand(&s->wl, now - s->boot_start);
        s->net_rx += (uint64_t)(d * 125000 * SIM_TICK_MS / 1000);
        s->net_tx += (uint64_t)(d * 62500 * SIM_TICK_MS / 1000);
        s->disk_rd += (uint64_t)(d * 250000 * SIM_TICK_MS / 1000);
        s->disk_wr += (uint64_t)(d * 100000 * SIM_TICK_MS / 1000);
    }
}

/* Takes VM's lease for this host (FORCE: a migration switch-over). */
static int
sim_lease_take(struct hostd_host *h, struct hostd_vm *vm, bool force)
{
    struct sim_vm *s = vm->be;
    char err[PATH_MAX + 512];
    int rc;

    if (s->lease && !kvc_lease_lost(s->lease))
        return 0;
    kvc_lease_free(s->lease);
    s->lease = NULL;
    if ((rc = vmstore_lease_acquire(h, vm, force, &s->lease, err, sizeof err))) {
        kvc_warn("%s: VM %s: %s", h->name, vm->name, err);
        return rc;
    }
    s->lease_next = hostd_now_ms() + kvc_lease_renew_interval_ms(s->lease);
    return 0;
}

/* ---- ops ---------------------------------------------------------------- */

static int
sim_vm_attach(struct hostd_host *h, struct hostd_vm *vm)
{
    struct sim_vm *s = calloc(1, sizeof *s);

    if (!s)
        return -ENOMEM;
    if (sim_workload_parse(vm->workload, &s->wl)) {
        kvc_warn("%s: VM %s: unknown workload '%s', running it idle", h->name,
                 vm->name, vm->workload);
        s->wl.kind = SIM_IDLE;
    }
    vm->be = s;
    return 0;
}

static void
sim_vm_detach(struct hostd_host *h, struct hostd_vm *vm)
{
    char path[PATH_MAX + 16], line[256] = "", host[64] = "";
    FILE *f;

    sim_console_forget(vm);
    runfile_path(vm, path, sizeof path);
    /* Only this host's run record: after an HA restart another host runs
     * the VM from the same folder, and unregistering the stale copy here
     * must not touch it. */
    if ((f = fopen(path, "r"))) {
        if (fgets(line, sizeof line, f))
            sscanf(line, "power=%*31s host=%63s", host);
        fclose(f);
    }
    if (!host[0] || !strcmp(host, h->uuid))
        unlink(path);
    if (vm->be)
        kvc_lease_release(((struct sim_vm *)vm->be)->lease);
    free(vm->be);
    vm->be = NULL;
}

static int
sim_init(struct hostd_host *h, void **priv)
{
    const struct hostd_options *o = &h->d->opt;
    struct sim_host *sh = calloc(1, sizeof *sh);
    struct timeval tv = { 0, SIM_TICK_MS * 1000 };
    int64_t now = hostd_now_ms();

    if (!sh)
        return -ENOMEM;
    snprintf(h->hw.cpu_model, sizeof h->hw.cpu_model, "kvcenter simulated CPU @ %u MHz",
             o->sim_mhz);
    h->hw.sockets = o->sim_cores >= 16 ? 2 : 1;
    h->hw.cores = o->sim_cores;
    h->hw.threads = o->sim_cores * 2;
    h->hw.mhz = o->sim_mhz;
    h->hw.memory_bytes = o->sim_memory;
    for (struct hostd_vm *vm = h->vms; vm; vm = vm->next) {
        int rc = sim_vm_attach(h, vm);
        if (rc) {
            free(sh);
            return rc;
        }
        runfile_read(h, vm);
        /* Still ours only if no other host took the lease meanwhile. */
        if (vm->power != VM_OFF && sim_lease_take(h, vm, false)) {
            kvc_warn("%s: VM %s: not running it here: its lease is not ours", h->name,
                     vm->name);
            vm->power = VM_OFF;
            runfile_write(h, vm);
        }
        if (vm->power == VM_ON) {
            struct sim_vm *s = vm->be;
            /* Still running from before hostd restarted: already booted. */
            s->boot_start = now - SIM_BOOT_MS;
            vm->tools_running = s->wl.kind != SIM_HANG && s->wl.kind != SIM_CRASH;
            kvc_info("%s: VM %s is still running", h->name, vm->name);
        }
    }
    if (!(sh->tick = event_new(h->d->base, -1, EV_PERSIST, sim_tick, h))) {
        free(sh);
        return -ENOMEM;
    }
    event_add(sh->tick, &tv);
    *priv = sh;
    return 0;
}

static void
sim_fini(struct hostd_host *h, void *priv)
{
    struct sim_host *sh = priv;

    for (struct hostd_vm *vm = h->vms; vm; vm = vm->next) {
        if (vm->be)             /* the VMs keep running: no release */
            kvc_lease_free(((struct sim_vm *)vm->be)->lease);
        free(vm->be);
        vm->be = NULL;
    }
    if (sh->tick)
        event_free(sh->tick);
    free(sh);
}

static int
sim_power_on(struct hostd_host *h, struct hostd_vm *vm)
{
    int rc = sim_lease_take(h, vm, false);

    if (rc)
        return rc;
    boot(vm, vm->be);
    runfile_write(h, vm);
    return 0;
}

static int
sim_power_off(struct hostd_host *h, struct hostd_vm *vm)
{
    halt(vm, vm->be);
    runfile_write(h, vm);
    return 0;
}

/* Snapshots: the sim keeps the power state (in the index) and a marker
 * file standing for the memory and disk state. */
static int
sim_snapshot_take(struct hostd_host *h, struct hostd_vm *vm, const char *path, bool memory,
                  char *err, size_t errlen)
{
    FILE *f = fopen(path, "wx");

    (void)h;
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -errno;
    }
    fprintf(f, "sim snapshot of %s (%s)\n", vm->uuid, memory ? "memory" : "disk only");
    if (fclose(f)) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        unlink(path);
        return -EIO;
    }
    return 0;
}

static int sim_resume(struct hostd_host *, struct hostd_vm *);
static int sim_suspend(struct hostd_host *, struct hostd_vm *);

static int
sim_snapshot_revert(struct hostd_host *h, struct hostd_vm *vm, const char *path,
                    enum vm_power power, bool memory, char *err, size_t errlen)
{
    int rc;

    if (access(path, R_OK) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -errno;
    }
    if (!memory)
        power = VM_OFF;
    if (power == VM_OFF) {
        if (vm->power != VM_OFF)
            sim_power_off(h, vm);
        return 0;
    }
    if (vm->power == VM_OFF && (rc = sim_power_on(h, vm))) {
        snprintf(err, errlen, "cannot start the VM: %s", strerror(-rc));
        return rc;
    }
    if (power == VM_ON && vm->power == VM_SUSPENDED)
        return sim_resume(h, vm);
    if (power == VM_SUSPENDED && vm->power == VM_ON)
        return sim_suspend(h, vm);
    return 0;
}

static int
sim_snapshot_delete(struct hostd_host *h, struct hostd_vm *vm, const char *path, char *err,
                    size_t errlen)
{
    (void)h;
    (void)vm;
    if (unlink(path) < 0 && errno != ENOENT) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -errno;
    }
    return 0;
}

static int
sim_reset(struct hostd_host *h, struct hostd_vm *vm)
{
    boot(vm, vm->be);
    return 0;
}

static int
sim_suspend(struct hostd_host *h, struct hostd_vm *vm)
{
    vm->power = VM_SUSPENDED;
    vm->tools_running = false;
    runfile_write(h, vm);
    return 0;
}

static int
sim_resume(struct hostd_host *h, struct hostd_vm *vm)
{
    struct sim_vm *s = vm->be;

    vm->power = VM_ON;
    vm->tools_running = !s->hung && s->wl.kind != SIM_HANG;
    runfile_write(h, vm);
    return 0;
}

static int
sim_guest_shutdown(struct hostd_host *h, struct hostd_vm *vm)
{
    struct sim_vm *s = vm->be;

    /* Like the real thing, the call returns once the guest was asked. */
    s->shutdown_at = hostd_now_ms() + SIM_SHUTDOWN_MS;
    return 0;
}

static int
sim_guest_reboot(struct hostd_host *h, struct hostd_vm *vm)
{
    boot(vm, vm->be);
    return 0;
}

static int
sim_vm_stats(struct hostd_host *h, struct hostd_vm *vm, struct hostd_vm_stats *o)
{
    struct sim_vm *s = vm->be;
    int64_t t = hostd_now_ms() - s->boot_start;
    double d = sim_cpu_demand(&s->wl, t);
    uint64_t mem = vm->memory_mib << 20;

    o->cpu_usage_permille = (uint32_t)(d * 1000);
    o->cpu_usage_mhz = (uint32_t)(d * vm->cpu_count * h->hw.mhz);
    o->mem_active_bytes = sim_mem_active(&s->wl, mem);
    o->mem_consumed_bytes = mem;
    o->net_rx_bytes = s->net_rx;
    o->net_tx_bytes = s->net_tx;
    o->disk_read_bytes = s->disk_rd;
    o->disk_write_bytes = s->disk_wr;
    return 0;
}

/* ---- live migration ------------------------------------------------------
 * The memory moves in pre-copy rounds at the link's bandwidth while the
 * guest dirties pages (sim_migration_ms); the VM's files stay on the shared
 * datastore and the .sim record is the lease: whoever wrote it last runs
 * the VM. */

static int
sim_migrate_estimate(struct hostd_host *h, struct hostd_vm *vm, double bw,
                     int64_t downtime_target_ms, int64_t *total_ms, int64_t *downtime_ms)
{
    struct sim_vm *s = vm->be;
    uint64_t mem = vm->memory_mib << 20;
    int64_t t = sim_migration_ms(mem, sim_dirty_rate(&s->wl, mem), bw, downtime_target_ms,
                                 downtime_ms);

    if (t < 0)
        return -EAGAIN;
    *total_ms = t > 0 ? t : 1;
    if (s->mig_stall)
        *total_ms = 3600000;    /* crawls: vpxd's deadline must end it */
    return 0;
}

static int
sim_migrate_in(struct hostd_host *h, struct hostd_vm *vm)
{
    struct sim_vm *s = vm->be;
    int rc;

    /* The switch-over: the sim source has no vmx to hand the lease over
     * (kvc_lease_transfer), so the destination takes it and the source,
     * migrating the VM out, lets it go at its next renewal. */
    if ((rc = sim_lease_take(h, vm, true)))
        return rc;

    /* The guest arrives already booted: no new boot, tools keep running. */
    vm->power = VM_ON;
    s->boot_start = hostd_now_ms() - SIM_BOOT_MS;
    s->shutdown_at = 0;
    s->crash_pending = false;
    vm->tools_running = s->wl.kind != SIM_HANG && s->wl.kind != SIM_CRASH;
    runfile_write(h, vm);
    return 0;
}

static void
sim_migrate_out(struct hostd_host *h, struct hostd_vm *vm)
{
    if (vm->be)                 /* the destination holds the lease */
        kvc_lease_free(((struct sim_vm *)vm->be)->lease);
    free(vm->be);               /* the .sim record now belongs to the destination */
    vm->be = NULL;
}

static void
sim_migrate_abort(struct hostd_host *h, struct hostd_vm *vm)
{
    sim_lease_take(h, vm, true);
    runfile_write(h, vm);       /* take the lease back, whoever wrote it */
}

static void
sim_crash(struct hostd_host *h)
{
    for (struct hostd_vm *vm = h->vms; vm; vm = vm->next) {
        if (vm->power == VM_OFF)
            continue;
        /* A dead host writes nothing: its leases expire. */
        kvc_lease_free(((struct sim_vm *)vm->be)->lease);
        ((struct sim_vm *)vm->be)->lease = NULL;
        halt(vm, vm->be);
        runfile_write(h, vm);
        /* Nobody hears it now; the next inventory tells vpxd. */
        hostd_vm_changed(h, vm, false);
    }
}

static int
sim_control(struct hostd_host *h, int argc, char **argv, char *out, size_t len)
{
    struct hostd_vm *vm;
    struct sim_vm *s;

    /* vm UUID|NAME hang|unhang|crash|migrate-stall|migrate-ok, vm UUID|NAME workload W */
    if ((argc != 3 && argc != 4) || strcmp(argv[0], "vm"))
        return -ENOENT;
    vm = hostd_vm_find_key(h, argv[1]);
    if (!vm) {
        snprintf(out, len, "ERR no VM %s on %s", argv[1], h->name);
        return -EINVAL;
    }
    s = vm->be;
    if (argc == 4) {
        struct sim_workload wl;
        char *w;
        if (strcmp(argv[2], "workload") || sim_workload_parse(argv[3], &wl) ||
            !(w = strdup(argv[3]))) {
            snprintf(out, len, "ERR vm NAME workload idle|cpu:N|mem:R|sine:P|hang|crash");
            return -EINVAL;
        }
        free(vm->workload);
        vm->workload = w;
        s->wl = wl;
        hostd_vm_changed(h, vm, false);
        snprintf(out, len, "OK");
        return 0;
    }
    if (!strcmp(argv[2], "hang")) {
        s->hung = true;
    } else if (!strcmp(argv[2], "migrate-stall")) {
        s->mig_stall = true;
    } else if (!strcmp(argv[2], "migrate-ok")) {
        s->mig_stall = false;
    } else if (!strcmp(argv[2], "unhang")) {
        s->hung = false;
    } else if (!strcmp(argv[2], "crash")) {
        if (vm->power == VM_ON) {
            halt(vm, s);
            runfile_write(h, vm);
            hostd_vm_changed(h, vm, false);
        }
    } else {
        snprintf(out, len, "ERR vm commands: hang, unhang, crash, migrate-stall, migrate-ok,"
                 " workload W");
        return -EINVAL;
    }
    snprintf(out, len, "OK");
    return 0;
}

/* Storage migration: the folder moved; a VM that runs holds its lease in
 * the new folder from now on (the copy there names this host), and lets
 * the old one go. */
static int
sim_storage_moved(struct hostd_host *h, struct hostd_vm *vm, const char *old_dir, char *err,
                  size_t errlen)
{
    struct sim_vm *s = vm->be;
    struct kvc_lease *old;
    char why[PATH_MAX + 512];
    int rc;

    (void)old_dir;
    if (!s || !s->lease)
        return 0;
    old = s->lease;
    s->lease = NULL;
    if ((rc = vmstore_lease_acquire(h, vm, true, &s->lease, why, sizeof why))) {
        s->lease = old;
        if (err)
            snprintf(err, errlen, "taking the lease in %s: %s", vm->dir, why);
        return rc;
    }
    s->lease_next = hostd_now_ms() + kvc_lease_renew_interval_ms(s->lease);
    kvc_lease_release(old);
    return 0;
}

const struct hostd_backend_ops hostd_backend_sim = {
    .name = "sim",
    .init = sim_init,
    .fini = sim_fini,
    .vm_attach = sim_vm_attach,
    .vm_detach = sim_vm_detach,
    .power_on = sim_power_on,
    .power_off = sim_power_off,
    .reset = sim_reset,
    .suspend = sim_suspend,
    .resume = sim_resume,
    .guest_shutdown = sim_guest_shutdown,
    .guest_reboot = sim_guest_reboot,
    .vm_stats = sim_vm_stats,
    .migrate_estimate = sim_migrate_estimate,
    .migrate_in = sim_migrate_in,
    .migrate_out = sim_migrate_out,
    .migrate_abort = sim_migrate_abort,
    .crash = sim_crash,
    .control = sim_control,
    .console_read = sim_console_read,
    .snapshot_take = sim_snapshot_take,
    .snapshot_revert = sim_snapshot_revert,
    .snapshot_delete = sim_snapshot_delete,
    .console_write = sim_console_write,
    .storage_moved = sim_storage_moved,
};
