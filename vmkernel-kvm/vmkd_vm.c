/* vmkd: the VM table and vmx supervision (spawn, readiness, exit, re-adoption).
 *
 * Every vmx is watched through a pidfd, whether vmkd spawned it (then
 * waitid(P_PIDFD) also gives its exit status) or re-adopted it after a vmkd
 * restart (then the status went to its new parent and only the fact of the
 * exit is known).  vmx's stdout and stderr go to a file in the VM's state
 * directory, never to a pipe: a vmx must not die of SIGPIPE because vmkd
 * restarted.  Readiness ("VMX-READY pid=N") is seen through inotify on that
 * file.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "vmkd.h"

KVC_LOG_MODULE(vmkd);

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define READY_MARK "VMX-READY pid="
#define INCOMING_MARK "VMX-INCOMING pid="      /* a migration destination listens */
#define VMX_EXIT_MIGRATED 3                    /* vmx's exit status after a migration */
#define OUT_SCAN_MAX 65536

struct stop_waiter {
    vmkd_stop_cb cb;
    void *ctx;
    struct stop_waiter *next;
};

struct vmkd_vm {
    struct vmkd *d;
    char id[VMKD_ID_MAX + 1];
    pid_t pid;
    int pidfd;
    bool child;                 /* spawned by this vmkd (exit status known) */
    bool adopted;
    bool has_port;              /* a vSwitch port (d->cfg.net) */
    char *nic_pg, *nic_mac;     /* its port group and MAC (kept in vm.state) */
    enum vmkd_vm_state state;
    bool stop_requested, forced;
    unsigned long long starttime;
    char *dir, *sock, *out, *statefile, *config, *log;
    char *restore;              /* --restore file of this start (resume), or NULL */
    char *incoming, *incoming_tls, *incoming_peer;  /* --incoming (migration destination) */
    bool incoming_disk;         /* --incoming-disk: the stream carries the disk */
    bool incoming_own_lease;    /* --incoming-own-lease: not the source's lease */
    char listen[128];           /* what an incoming vmx said it listens on */
    uint32_t vcpus;
    struct kvc_res_alloc alloc;
    uint64_t weight;
    int64_t quota_us;
    struct kvc_cg_vm *cg;
    struct event *ev_exit;
    struct event *ev_timer;
    int wd;                     /* inotify watch while starting, else -1 */
    char fail_why[200];
    vmkd_start_cb start_cb;
    void *start_ctx;
    struct stop_waiter *waiters;
};

struct vmkd {
    struct event_base *base;
    struct vmkd_config cfg;
    struct kvc_cg_root *cg;
    struct kvc_host_capacity cap;
    struct kvc_admission adm;
    struct vmkd_vm **vms;
    size_t nvms, capvms;
    int ino_fd;
    struct event *ev_ino;
    struct vmkd_listener lis;
    /* Resource pools (vmkd_pool.c): the cgroup directory, below the parent,
     * that VM pl_id[i] goes in. */
    char **pl_id, **pl_dir;
    size_t npl;
    void (*pools_cleanup)(bool rmdir_them);
};

static void vm_exited(struct vmkd_vm *vm, const struct vmkd_exit *ex);

/* ---- small helpers ---- */

void *vmkd_net_ctx(const struct vmkd *d)
{
    return d->cfg.net.ctx;
}

bool vmkd_valid_id(const char *s)
{
    if (!s || !*s || strlen(s) > VMKD_ID_MAX || s[0] == '.' || s[0] == '-')
        return false;
    for (const char *p = s; *p; p++)
        if (!(((*p | 32) >= 'a' && (*p | 32) <= 'z') || (*p >= '0' && *p <= '9')
              || *p == '-' || *p == '_' || *p == '.'))
            return false;
    return true;
}

const char *vmkd_exit_reason_str(enum vmkd_exit_reason r)
{
    switch (r) {
    case VMKD_EXIT_POWERED_OFF: return "powered-off";
    case VMKD_EXIT_CRASHED: return "crashed";
    case VMKD_EXIT_FAILED_TO_START: return "failed-to-start";
    case VMKD_EXIT_UNKNOWN: return "exited-unknown";
    case VMKD_EXIT_MIGRATED: return "migrated";
    }
    return "?";
}

const char *vmkd_state_str(enum vmkd_vm_state s)
{
    switch (s) {
    case VMKD_VM_STARTING: return "starting";
    case VMKD_VM_RUNNING: return "running";
    case VMKD_VM_STOPPING: return "stopping";
    }
    return "?";
}

static int sys_pidfd_open(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int sys_pidfd_signal(int pidfd, int sig)
{
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

/* Field 22 of /proc/PID/stat: start time in clock ticks since boot; with the
 * pid it names one process for the life of the machine. */
static int proc_starttime(pid_t pid, unsigned long long *out)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -EIO;
    buf[n] = '\0';
    char *p = strrchr(buf, ')');        /* comm may hold spaces */
    if (!p)
        return -EIO;
    int field = 2;
    for (p++; *p && field < 22; p++)
        if (*p == ' ')
            field++;
    if (field != 22)
        return -EIO;
    *out = strtoull(p, NULL, 10);
    return 0;
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    return n < 0 ? NULL : s;
}

static void apply_weight_quota(struct vmkd_vm *vm)
{
    struct vmkd *d = vm->d;
    vm->weight = kvc_cg_root_version(d->cg) == KVC_CG_V2
        ? kvc_sched_shares_to_v2(vm->alloc.cpu_shares, vm->vcpus)
        : kvc_sched_shares_to_v1(vm->alloc.cpu_shares, vm->vcpus);
    vm->quota_us = kvc_sched_quota_us(&vm->alloc, &d->cap, d->cfg.cfs_period_us);
}

/* Applies the VM's allocation to its cgroup. */
/* ---- resource pools: where a VM's cgroup goes ---- */

static const char *placement(const struct vmkd *d, const char *id)
{
    for (size_t i = 0; i < d->npl; i++)
        if (!strcmp(d->pl_id[i], id))
            return d->pl_dir[i];
    return NULL;
}

static int vm_cgroup_create(struct vmkd *d, const char *id, struct kvc_cg_vm **out)
{
    const char *dir = placement(d, id);
    char rel[PATH_MAX];

    if (!dir)
        return kvc_cg_vm_create(d->cg, id, out);
    if (snprintf(rel, sizeof(rel), "%s/%s", dir, id) >= (int)sizeof(rel))
        return -ENAMETOOLONG;
    return kvc_cg_group_create(d->cg, rel, false, out);
}

static int apply_alloc(struct vmkd_vm *vm, char *why);
static struct vmkd_vm *vm_find(const struct vmkd *d, const char *id);

void vmkd_set_pools_cleanup(struct vmkd *d, void (*fn)(bool rmdir_them))
{
    d->pools_cleanup = fn;
}

struct kvc_cg_root *vmkd_cgroot(struct vmkd *d)
{
    return d->cg;
}

uint64_t vmkd_cfs_period_us(const struct vmkd *d)
{
    return d->cfg.cfs_period_us;
}

static int vm_move(struct vmkd *d, struct vmkd_vm *vm);

int vmkd_vm_place(struct vmkd *d, const char *vm_id, const char *dir)
{
    struct vmkd_vm *vm;
    size_t i;

    if (!vmkd_valid_id(vm_id))
        return -EINVAL;
    for (i = 0; i < d->npl && strcmp(d->pl_id[i], vm_id); i++)
        ;
    if (i < d->npl && dir && !strcmp(d->pl_dir[i], dir))
        return 0;               /* already there */
    if (!dir && i == d->npl)
        return 0;
    if (dir) {
        char *nd = strdup(dir);
        if (!nd)
            return -ENOMEM;
        if (i == d->npl) {
            char **a = realloc(d->pl_id, (d->npl + 1) * sizeof(*a));
            char **b = a ? realloc(d->pl_dir, (d->npl + 1) * sizeof(*b)) : NULL;
            char *id = strdup(vm_id);
            if (a)
                d->pl_id = a;
            if (b)
                d->pl_dir = b;
            if (!a || !b || !id) {
                free(nd);
                free(id);
                return -ENOMEM;
            }
            d->pl_id[i] = id;
            d->pl_dir[i] = NULL;
            d->npl++;
        }
        free(d->pl_dir[i]);
        d->pl_dir[i] = nd;
    } else {
        free(d->pl_id[i]);
        free(d->pl_dir[i]);
        d->npl--;
        d->pl_id[i] = d->pl_id[d->npl];
        d->pl_dir[i] = d->pl_dir[d->npl];
    }
    vm = vm_find(d, vm_id);
    return vm ? vm_move(d, vm) : 0;
}

static bool same_dir(const char *a, const char *b)
{
    return a == b || (a && b && !strcmp(a, b));
}

int vmkd_vm_place_all(struct vmkd *d, char *const *ids, char *const *dirs, size_t n)
{
    char **ni = calloc(n + 1, sizeof(*ni)), **nd = calloc(n + 1, sizeof(*nd));
    char **oi = d->pl_id, **od = d->pl_dir;
    size_t on = d->npl;
    int rc = 0;

    if (!ni || !nd)
        goto nomem;
    for (size_t i = 0; i < n; i++)
        if (!vmkd_valid_id(ids[i]) || !dirs[i] || !(ni[i] = strdup(ids[i]))
            || !(nd[i] = strdup(dirs[i])))
            goto nomem;
    d->pl_id = ni;
    d->pl_dir = nd;
    d->npl = n;
    /* Running VMs whose place changed move now (few VMs run, many may be
     * listed: the lookups go over the running ones). */
    for (size_t k = 0; k < d->nvms; k++) {
        const char *was = NULL;
        for (size_t i = 0; i < on && !was; i++)
            if (!strcmp(oi[i], d->vms[k]->id))
                was = od[i];
        if (!same_dir(was, placement(d, d->vms[k]->id))) {
            int r = vm_move(d, d->vms[k]);
            if (r < 0)
                rc = r;
        }
    }
    for (size_t i = 0; i < on; i++) {
        free(oi[i]);
        free(od[i]);
    }
    free(oi);
    free(od);
    return rc;
nomem:
    for (size_t i = 0; ni && nd && i < n; i++) {
        free(ni[i]);
        free(nd[i]);
    }
    free(ni);
    free(nd);
    return -ENOMEM;
}

static int vm_move(struct vmkd *d, struct vmkd_vm *vm)
{
    struct kvc_cg_vm *ng = NULL, *old;
    char why[VMKD_WHY_MAX] = "";
    const char *vm_id = vm->id, *dir = placement(d, vm->id);
    int rc;

    if (!vm->cg || vm->pid <= 0)
        return 0;               /* placed when it powers on */
    /* Running: a new cgroup in the new place, the process moved, the old
     * cgroup removed (empty now). */
    rc = vm_cgroup_create(d, vm_id, &ng);
    if (rc == 0)
        rc = kvc_cg_vm_attach(ng, vm->pid);
    if (rc < 0) {
        kvc_err("VM %s: cannot move to cgroup %s: %s", vm_id, dir ? dir : "(top)",
                strerror(-rc));
        kvc_cg_vm_destroy(ng);
        return rc;
    }
    old = vm->cg;
    vm->cg = ng;
    if (apply_alloc(vm, why) < 0)
        kvc_warn("VM %s: allocation in its new cgroup: %s", vm_id, why);
    kvc_cg_vm_destroy(old);
    kvc_info("VM %s: moved to cgroup %s", vm_id, kvc_cg_vm_path(ng));
    return 0;
}

static int apply_alloc(struct vmkd_vm *vm, char *why)
{
    struct vmkd *d = vm->d;
    apply_weight_quota(vm);
    int rc = kvc_cg_vm_set_weight(vm->cg, vm->weight);
    if (rc == 0)
        rc = kvc_cg_vm_set_quota(vm->cg, vm->quota_us, d->cfg.cfs_period_us);
    if (rc < 0) {
        snprintf(why, VMKD_WHY_MAX, "cannot set CPU controls in %s: %s",
                 kvc_cg_vm_path(vm->cg), strerror(-rc));
        return rc;
    }
    int64_t mem = vm->alloc.mem_limit_mb > 0 ? vm->alloc.mem_limit_mb << 20 : -1;
    uint64_t res = vm->alloc.mem_reservation_mb << 20;
    if (mem < 0 && res == 0 && !kvc_cg_root_has_memory(d->cg))
        return 0;
    rc = kvc_cg_vm_set_mem_limit(vm->cg, mem);
    if (rc < 0) {
        snprintf(why, VMKD_WHY_MAX, "cannot set the memory limit: %s%s", strerror(-rc),
                 rc == -ENOTSUP ? " (no memory cgroup controller)" : "");
        return rc;
    }
    rc = kvc_cg_vm_set_mem_reservation(vm->cg, res);
    if (rc < 0) {
        snprintf(why, VMKD_WHY_MAX, "cannot set the memory reservation: %s%s", strerror(-rc),
                 rc == -ENOTSUP ? " (no memory cgroup controller)" : "");
        return rc;
    }
    return 0;
}

/* vms/<id>/vm.state: what a restarted vmkd needs to re-adopt the vmx. */
static int write_state(struct vmkd_vm *vm)
{
    char *tmp = xasprintf("%s.tmp", vm->statefile);
    if (!tmp)
        return -ENOMEM;
    FILE *f = fopen(tmp, "we");
    if (!f) {
        int e = -errno;
        free(tmp);
        return e;
    }
    const struct kvc_res_alloc *a = &vm->alloc;
    fprintf(f, "pid=%d\nstarttime=%llu\nvcpus=%" PRIu32 "\nconfig=%s\nlog=%s\n"
            "cpu_shares=%" PRIu32 "\ncpu_limit_mhz=%" PRId64 "\ncpu_limit_pct=%" PRId32 "\n"
            "cpu_reservation_mhz=%" PRIu64 "\nmem_limit_mb=%" PRId64 "\n"
            "mem_reservation_mb=%" PRIu64 "\nready=%d\n",
            (int)vm->pid, vm->starttime, vm->vcpus, vm->config, vm->log ? vm->log : "",
            a->cpu_shares, a->cpu_limit_mhz, a->cpu_limit_pct, a->cpu_reservation_mhz,
            a->mem_limit_mb, a->mem_reservation_mb, vm->state != VMKD_VM_STARTING);
    if (vm->nic_pg && vm->nic_mac)
        fprintf(f, "nic_portgroup=%s\nnic_mac=%s\n", vm->nic_pg, vm->nic_mac);
    int rc = 0;
    if (fflush(f) != 0 || fsync(fileno(f)) != 0)
        rc = -errno;
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, vm->statefile) < 0)
        rc = -errno;
    if (rc < 0) {
        kvc_err("write %s: %s", vm->statefile, strerror(-rc));
        unlink(tmp);
    }
    free(tmp);
    return rc;
}

static void vm_info(const struct vmkd_vm *vm, struct vmkd_vm_info *i)
{
    memset(i, 0, sizeof(*i));
    snprintf(i->vm_id, sizeof(i->vm_id), "%s", vm->id);
    i->pid = vm->pid;
    i->state = vm->state;
    i->adopted = vm->adopted;
    i->vcpus = vm->vcpus;
    i->alloc = vm->alloc;
    i->config_path = vm->config;
    i->control_socket = vm->sock;
    i->cgroup_path = vm->cg ? kvc_cg_vm_path(vm->cg) : "";
    i->quota_us = vm->quota_us;
    i->weight = vm->weight;
    i->incoming_listen = vm->listen;
}

static void rm_tree_files(const char *dir)
{
    DIR *dd = opendir(dir);
    struct dirent *de;
    while (dd && (de = readdir(dd)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char *p = xasprintf("%s/%s", dir, de->d_name);
        if (p)
            unlink(p);
        free(p);
    }
    if (dd)
        closedir(dd);
    rmdir(dir);
}

/* Frees the in-memory VM; remove: also its cgroup and state directory. */
static void vm_free(struct vmkd_vm *vm, bool remove)
{
    if (!vm)
        return;
    struct vmkd *d = vm->d;
    if (vm->wd >= 0 && d->ino_fd >= 0)
        inotify_rm_watch(d->ino_fd, vm->wd);
    if (vm->ev_exit)
        event_free(vm->ev_exit);
    if (vm->ev_timer)
        event_free(vm->ev_timer);
    if (vm->pidfd >= 0)
        close(vm->pidfd);
    if (vm->has_port && d->cfg.net.port_remove)
        d->cfg.net.port_remove(d->cfg.net.ctx, vm->id);
    if (remove) {
        if (vm->cg && kvc_cg_vm_destroy(vm->cg) < 0)
            kvc_warn("VM %s: its cgroup could not be removed", vm->id);
        if (vm->dir)
            rm_tree_files(vm->dir);
    } else {
        kvc_cg_vm_free(vm->cg);
    }
    for (struct stop_waiter *w = vm->waiters, *n; w; w = n) {
        n = w->next;
        free(w);
    }
    free(vm->dir);
    free(vm->sock);
    free(vm->out);
    free(vm->statefile);
    free(vm->config);
    free(vm->log);
    free(vm->restore);
    free(vm->incoming);
    free(vm->incoming_tls);
    free(vm->incoming_peer);
    free(vm->nic_pg);
    free(vm->nic_mac);
    free(vm);
}

static int vms_add(struct vmkd *d, struct vmkd_vm *vm)
{
    if (d->nvms == d->capvms) {
        size_t n = d->capvms ? d->capvms * 2 : 16;
        struct vmkd_vm **v = realloc(d->vms, n * sizeof(*v));
        if (!v)
            return -ENOMEM;
        d->vms = v;
        d->capvms = n;
    }
    d->vms[d->nvms++] = vm;
    return 0;
}

static void vms_del(struct vmkd *d, struct vmkd_vm *vm)
{
    for (size_t i = 0; i < d->nvms; i++) {
        if (d->vms[i] == vm) {
            memmove(&d->vms[i], &d->vms[i + 1], (d->nvms - i - 1) * sizeof(*d->vms));
            d->nvms--;
            return;
        }
    }
}

static struct vmkd_vm *vm_find(const struct vmkd *d, const char *id)
{
    for (size_t i = 0; i < d->nvms; i++)
        if (strcmp(d->vms[i]->id, id) == 0)
            return d->vms[i];
    return NULL;
}

/* Last line(s) of vmx's output, for error messages. */
static void out_tail(const struct vmkd_vm *vm, char *buf, size_t len)
{
    buf[0] = '\0';
    int fd = open(vm->out, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    off_t end = lseek(fd, 0, SEEK_END);
    off_t start = end > (off_t)len - 1 ? end - (off_t)len + 1 : 0;
    ssize_t n = pread(fd, buf, len - 1, start);
    close(fd);
    if (n <= 0) {
        buf[0] = '\0';
        return;
    }
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    for (ssize_t i = 0; i < n; i++)
        if (buf[i] == '\n' || (unsigned char)buf[i] < 0x20)
            buf[i] = ' ';
}

/* ---- exit, timers, readiness ---- */

static void on_exit_ev(evutil_socket_t fd, short what, void *arg)
{
    struct vmkd_vm *vm = arg;
    struct vmkd_exit ex = { .exit_code = -1, .pid = vm->pid };
    snprintf(ex.vm_id, sizeof(ex.vm_id), "%s", vm->id);
    if (vm->child) {
        siginfo_t si;
        memset(&si, 0, sizeof(si));
        if (waitid((idtype_t)P_PIDFD, (id_t)vm->pidfd, &si, WEXITED | WNOHANG) < 0) {
            kvc_err("VM %s: waitid pid %d: %s", vm->id, (int)vm->pid, strerror(errno));
            ex.reason = VMKD_EXIT_UNKNOWN;
        } else if (si.si_pid == 0) {
            return;             /* spurious: not yet exited */
        } else if (si.si_code == CLD_EXITED) {
            ex.exit_code = si.si_status;
        } else {
            ex.signal = si.si_status;
        }
    } else {
        ex.reason = VMKD_EXIT_UNKNOWN;
    }
    if (ex.reason != VMKD_EXIT_UNKNOWN) {
        if (vm->state == VMKD_VM_STARTING)
            ex.reason = VMKD_EXIT_FAILED_TO_START;
        else if (ex.exit_code == VMX_EXIT_MIGRATED && ex.signal == 0)
            ex.reason = VMKD_EXIT_MIGRATED;
        else if (ex.exit_code == 0 || (vm->stop_requested && ex.signal != 0))
            ex.reason = VMKD_EXIT_POWERED_OFF;
        else
            ex.reason = VMKD_EXIT_CRASHED;
    }
    ex.forced = vm->forced;
    if (ex.reason == VMKD_EXIT_FAILED_TO_START) {
        char tail[160];
        out_tail(vm, tail, sizeof(tail));
        snprintf(ex.message, sizeof(ex.message), "%s%s%s",
                 vm->fail_why[0] ? vm->fail_why : "vmx exited before it was ready",
                 tail[0] ? ": " : "", tail);
    } else if (ex.reason == VMKD_EXIT_UNKNOWN) {
        snprintf(ex.message, sizeof(ex.message),
                 "re-adopted vmx exited; its exit status is not known to this vmkd");
    } else if (ex.reason == VMKD_EXIT_MIGRATED) {
        snprintf(ex.message, sizeof(ex.message), "the VM migrated to another host");
    } else if (ex.signal) {
        snprintf(ex.message, sizeof(ex.message), "vmx killed by signal %d (%s)%s", ex.signal,
                 strsignal(ex.signal), ex.forced ? " after the stop timeout" : "");
    } else {
        snprintf(ex.message, sizeof(ex.message), "vmx exited with status %d", ex.exit_code);
    }
    vm_exited(vm, &ex);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct vmkd_vm *vm = arg;
    if (vm->state == VMKD_VM_STARTING) {
        snprintf(vm->fail_why, sizeof(vm->fail_why),
                 "vmx did not report VMX-READY within %" PRId64 " ms", vm->d->cfg.ready_timeout_ms);
        kvc_warn("VM %s: %s; killing pid %d", vm->id, vm->fail_why, (int)vm->pid);
    } else {
        kvc_warn("VM %s: pid %d still running %" PRId64 " ms after SIGTERM; sending SIGKILL",
                 vm->id, (int)vm->pid, vm->d->cfg.stop_timeout_ms);
    }
    vm->forced = vm->state != VMKD_VM_STARTING;
    if (sys_pidfd_signal(vm->pidfd, SIGKILL) < 0 && errno != ESRCH)
        kvc_err("VM %s: kill: %s", vm->id, strerror(errno));
}

static void arm_timer(struct vmkd_vm *vm, int64_t ms)
{
    struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
    evtimer_add(vm->ev_timer, &tv);
}

static void vm_ready(struct vmkd_vm *vm)
{
    struct vmkd *d = vm->d;
    if (vm->wd >= 0) {
        inotify_rm_watch(d->ino_fd, vm->wd);
        vm->wd = -1;
    }
    evtimer_del(vm->ev_timer);
    vm->state = VMKD_VM_RUNNING;
    write_state(vm);
    kvc_info("VM %s: running, vmx pid %d, cgroup %s", vm->id, (int)vm->pid,
             kvc_cg_vm_path(vm->cg));
    struct vmkd_vm_info info;
    vm_info(vm, &info);
    vmkd_start_cb cb = vm->start_cb;
    void *ctx = vm->start_ctx;
    vm->start_cb = NULL;
    if (cb)
        cb(ctx, 0, NULL, &info);
    if (d->lis.vm_started)
        d->lis.vm_started(d->lis.ctx, &info);
}

/* An incoming vmx is ready once it listens: "VMX-INCOMING pid=N listen=ADDR";
 * ADDR (up to the end of the word) goes to vm->listen. */
static bool incoming_ready(struct vmkd_vm *vm, const char *buf)
{
    char want[64];
    snprintf(want, sizeof(want), INCOMING_MARK "%d listen=", (int)vm->pid);
    const char *p = strstr(buf, want);
    if (!p)
        return false;
    p += strlen(want);
    size_t n = strcspn(p, " \r\n");
    if (n == 0 || n >= sizeof(vm->listen))
        return false;
    memcpy(vm->listen, p, n);
    vm->listen[n] = '\0';
    return true;
}

/* Looks for the readiness line in vmx's output file. */
static bool out_has_ready(struct vmkd_vm *vm)
{
    int fd = open(vm->out, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    char *buf = malloc(OUT_SCAN_MAX + 1);
    ssize_t n = buf ? read(fd, buf, OUT_SCAN_MAX) : -1;
    close(fd);
    bool ok = false;
    if (n > 0 && vm->incoming) {
        buf[n] = '\0';
        ok = incoming_ready(vm, buf);
    } else if (n > 0) {
        buf[n] = '\0';
        char want[64];
        snprintf(want, sizeof(want), READY_MARK "%d", (int)vm->pid);
        for (char *p = buf; (p = strstr(p, want)) != NULL; p++) {
            char c = p[strlen(want)];
            if (c == '\n' || c == '\r' || c == ' ' || c == '\0') {
                ok = true;
                break;
            }
        }
    }
    free(buf);
    return ok;
}

static void on_inotify(evutil_socket_t fd, short what, void *arg)
{
    struct vmkd *d = arg;
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t n = read(d->ino_fd, buf, sizeof(buf));
        if (n <= 0)
            break;
        for (char *p = buf; p < buf + n; ) {
            struct inotify_event *ie = (struct inotify_event *)p;
            p += sizeof(*ie) + ie->len;
            for (size_t i = 0; i < d->nvms; i++) {
                struct vmkd_vm *vm = d->vms[i];
                if (vm->wd == ie->wd && vm->state == VMKD_VM_STARTING && out_has_ready(vm)) {
                    vm_ready(vm);
                    break;
                }
            }
        }
    }
}

static void vm_exited(struct vmkd_vm *vm, const struct vmkd_exit *ex)
{
    struct vmkd *d = vm->d;
    bool was_starting = vm->state == VMKD_VM_STARTING;
    if (ex->reason == VMKD_EXIT_CRASHED || ex->reason == VMKD_EXIT_FAILED_TO_START)
        kvc_warn("VM %s: vmx pid %d %s: %s", vm->id, (int)vm->pid,
                 vmkd_exit_reason_str(ex->reason), ex->message);
    else
        kvc_info("VM %s: vmx pid %d %s: %s", vm->id, (int)vm->pid,
                 vmkd_exit_reason_str(ex->reason), ex->message);
    vms_del(d, vm);
    kvc_admission_release(&d->adm, vm->alloc.cpu_reservation_mhz, vm->alloc.mem_reservation_mb);
    vmkd_start_cb scb = vm->start_cb;
    void *sctx = vm->start_ctx;
    struct stop_waiter *w = vm->waiters;
    vm->waiters = NULL;
    vm->start_cb = NULL;
    vm_free(vm, true);
    if (was_starting && scb)
        scb(sctx, -EIO, ex->message, NULL);
    while (w) {
        struct stop_waiter *n = w->next;
        if (w->cb)
            w->cb(w->ctx, 0, ex);
        free(w);
        w = n;
    }
    if (d->lis.vm_exited)
        d->lis.vm_exited(d->lis.ctx, ex);
}

/* ---- power on ---- */

static int vm_new(struct vmkd *d, const char *id, struct vmkd_vm **out)
{
    struct vmkd_vm *vm = calloc(1, sizeof(*vm));
    if (!vm)
        return -ENOMEM;
    vm->d = d;
    vm->pidfd = -1;
    vm->wd = -1;
    vm->quota_us = -1;
    snprintf(vm->id, sizeof(vm->id), "%s", id);
    vm->dir = xasprintf("%s/vms/%s", d->cfg.state_dir, id);
    vm->sock = xasprintf("%s/vmx.sock", vm->dir ? vm->dir : "");
    vm->out = xasprintf("%s/vmx.out", vm->dir ? vm->dir : "");
    vm->statefile = xasprintf("%s/vm.state", vm->dir ? vm->dir : "");
    vm->ev_timer = evtimer_new(d->base, on_timer, vm);
    if (!vm->dir || !vm->sock || !vm->out || !vm->statefile || !vm->ev_timer) {
        vm_free(vm, false);
        return -ENOMEM;
    }
    if (strlen(vm->sock) >= 108) {
        kvc_err("state dir path too long for a unix socket: %s", vm->sock);
        vm_free(vm, false);
        return -ENAMETOOLONG;
    }
    *out = vm;
    return 0;
}

static int watch_pid(struct vmkd_vm *vm)
{
    vm->pidfd = sys_pidfd_open(vm->pid);
    if (vm->pidfd < 0)
        return -errno;
    fcntl(vm->pidfd, F_SETFD, FD_CLOEXEC);
    vm->ev_exit = event_new(vm->d->base, vm->pidfd, EV_READ | EV_PERSIST, on_exit_ev, vm);
    if (!vm->ev_exit || event_add(vm->ev_exit, NULL) < 0)
        return -ENOMEM;
    return 0;
}

int vmkd_power_on(struct vmkd *d, const struct vmkd_power_on *req, vmkd_start_cb cb,
                  void *ctx, char *why)
{
    struct vmkd_vm *vm = NULL;
    int rc;
    int cgfds[4];
    int ncg = 0, outfd = -1;
    int netfds[4] = { -1, -1, -1, -1 };
    char *portsock = NULL;
    bool admitted = false;

    if (!vmkd_valid_id(req->vm_id)) {
        snprintf(why, VMKD_WHY_MAX, "invalid VM id (1-%d characters of [A-Za-z0-9._-])", VMKD_ID_MAX);
        return -EINVAL;
    }
    if (!req->config_path || req->config_path[0] != '/') {
        snprintf(why, VMKD_WHY_MAX, "the VM config path must be absolute");
        return -EINVAL;
    }
    if (access(req->config_path, R_OK) < 0) {
        snprintf(why, VMKD_WHY_MAX, "VM config %s: %s", req->config_path, strerror(errno));
        return -ENOENT;
    }
    if (req->log_path && req->log_path[0] && req->log_path[0] != '/') {
        snprintf(why, VMKD_WHY_MAX, "the VM log path must be absolute");
        return -EINVAL;
    }
    if (req->incoming && req->incoming[0]) {
        size_t n = strlen(req->incoming);
        if ((strncmp(req->incoming, "tcp:", 4) && strncmp(req->incoming, "unix:", 5)) || n > 100 ||
            strpbrk(req->incoming, " \t\r\n")) {
            snprintf(why, VMKD_WHY_MAX, "incoming: '%.100s' is not tcp:IP:PORT or unix:PATH",
                     req->incoming);
            return -EINVAL;
        }
        if (req->restore_path && req->restore_path[0]) {
            snprintf(why, VMKD_WHY_MAX, "a VM cannot be both resumed and migrated in");
            return -EINVAL;
        }
        if ((req->incoming_tls_dir && req->incoming_tls_dir[0] && req->incoming_tls_dir[0] != '/') ||
            (req->incoming_peer && strlen(req->incoming_peer) > 100)) {
            snprintf(why, VMKD_WHY_MAX, "incoming TLS: the directory must be absolute and the "
                     "peer a thumbprint");
            return -EINVAL;
        }
    } else if (req->incoming_disk || req->incoming_own_lease) {
        snprintf(why, VMKD_WHY_MAX, "%s needs incoming (a migration destination)",
                 req->incoming_disk ? "incoming_disk" : "incoming_own_lease");
        return -EINVAL;
    }
    if (req->restore_path && req->restore_path[0]) {
        if (req->restore_path[0] != '/') {
            snprintf(why, VMKD_WHY_MAX, "the suspend file path must be absolute");
            return -EINVAL;
        }
        if (access(req->restore_path, R_OK) < 0) {
            snprintf(why, VMKD_WHY_MAX, "suspend file %s: %s", req->restore_path,
                     strerror(errno));
            return -ENOENT;
        }
    }
    if (req->vcpus > 4096) {
        snprintf(why, VMKD_WHY_MAX, "vcpus %u out of range", req->vcpus);
        return -EINVAL;
    }
    if (vm_find(d, req->vm_id)) {
        snprintf(why, VMKD_WHY_MAX, "VM %s is already powered on", req->vm_id);
        return -EEXIST;
    }
    rc = kvc_res_alloc_check(&req->alloc, why, VMKD_WHY_MAX);
    if (rc < 0)
        return rc;
    rc = kvc_admission_take(&d->adm, req->alloc.cpu_reservation_mhz,
                            req->alloc.mem_reservation_mb, why, VMKD_WHY_MAX);
    if (rc < 0) {
        kvc_warn("VM %s: power-on refused: %s", req->vm_id, why);
        return rc;
    }
    admitted = true;
    rc = vm_new(d, req->vm_id, &vm);
    if (rc < 0) {
        snprintf(why, VMKD_WHY_MAX, "cannot set up the VM: %s", strerror(-rc));
        goto err;
    }
    vm->vcpus = req->vcpus ? req->vcpus : 1;
    vm->alloc = req->alloc;
    vm->config = strdup(req->config_path);
    vm->log = req->log_path && req->log_path[0] ? strdup(req->log_path) : NULL;
    vm->restore = req->restore_path && req->restore_path[0] ? strdup(req->restore_path) : NULL;
    vm->incoming = req->incoming && req->incoming[0] ? strdup(req->incoming) : NULL;
    if (vm->incoming && req->incoming_tls_dir && req->incoming_tls_dir[0]) {
        vm->incoming_tls = strdup(req->incoming_tls_dir);
        vm->incoming_peer = strdup(req->incoming_peer ? req->incoming_peer : "");
    }
    vm->incoming_disk = vm->incoming && req->incoming_disk;
    vm->incoming_own_lease = vm->incoming && req->incoming_own_lease;
    if (!vm->config) {
        rc = -ENOMEM;
        goto err_msg;
    }
    if (mkdir(vm->dir, 0700) < 0 && errno != EEXIST) {
        rc = -errno;
        goto err_msg;
    }
    unlink(vm->sock);
    outfd = open(vm->out, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (outfd < 0) {
        rc = -errno;
        goto err_msg;
    }
    rc = vm_cgroup_create(d, vm->id, &vm->cg);
    if (rc < 0) {
        snprintf(why, VMKD_WHY_MAX, "cannot create the VM's cgroup: %s", strerror(-rc));
        goto err;
    }
    rc = apply_alloc(vm, why);
    if (rc < 0)
        goto err;
    ncg = kvc_cg_vm_procs_fds(vm->cg, cgfds, 4);
    if (ncg < 0) {
        rc = ncg;
        ncg = 0;
        snprintf(why, VMKD_WHY_MAX, "cannot open the VM's cgroup: %s", strerror(-rc));
        goto err;
    }
    vm->wd = inotify_add_watch(d->ino_fd, vm->out, IN_MODIFY);
    if (vm->wd < 0) {
        rc = -errno;
        goto err_msg;
    }

    char netarg[32];
    if (req->nic_portgroup && req->nic_portgroup[0]) {
        if (!d->cfg.net.port_add) {
            snprintf(why, VMKD_WHY_MAX, "this host has no vSwitch for the VM's adapter");
            rc = -EINVAL;
            goto err;
        }
        rc = d->cfg.net.port_add(d->cfg.net.ctx, vm->id, req->nic_portgroup, req->nic_mac, netfds,
                                 why, VMKD_WHY_MAX);
        if (rc < 0)
            goto err;
        vm->has_port = true;
        vm->nic_pg = strdup(req->nic_portgroup);
        vm->nic_mac = strdup(req->nic_mac);
        portsock = xasprintf("%s/%s", d->cfg.state_dir, VMKD_PORT_SOCK);
        if (!vm->nic_pg || !vm->nic_mac || !portsock) {
            rc = -ENOMEM;
            goto err_msg;
        }
    }
    const char *argv[28];
    int ac = 0;
    argv[ac++] = d->cfg.vmx_path;
    argv[ac++] = "-c";
    argv[ac++] = vm->config;
    argv[ac++] = "-s";
    argv[ac++] = vm->sock;
    if (vm->log) {
        argv[ac++] = "-l";
        argv[ac++] = vm->log;
    }
    if (vm->restore) {
        argv[ac++] = "--restore";
        argv[ac++] = vm->restore;
    }
    if (vm->incoming) {
        argv[ac++] = "--incoming";
        argv[ac++] = vm->incoming;
        if (vm->incoming_tls) {
            argv[ac++] = "--incoming-tls";
            argv[ac++] = vm->incoming_tls;
            argv[ac++] = "--incoming-peer";
            argv[ac++] = vm->incoming_peer;
        }
        if (vm->incoming_disk)
            argv[ac++] = "--incoming-disk";
        else if (vm->incoming_own_lease)
            argv[ac++] = "--incoming-own-lease";
    }
    if (vm->has_port) {
        /* The child puts the port's fds at 3, 4, 5 and its link at 6; vmx
         * comes back to the port socket for a new port if the link breaks. */
        snprintf(netarg, sizeof(netarg), netfds[3] >= 0 ? "3,4,5,6" : "3,4,5");
        argv[ac++] = "--net-fds";
        argv[ac++] = netarg;
        argv[ac++] = "--net-socket";
        argv[ac++] = portsock;
        argv[ac++] = "--net-id";
        argv[ac++] = vm->id;
    }
    argv[ac] = NULL;

    pid_t pid = fork();
    if (pid < 0) {
        rc = -errno;
        goto err_msg;
    }
    if (pid == 0) {
        /* Child: join the VM's cgroup before exec, so every thread vmx
         * creates is born inside it. Only async-signal-safe calls here. */
        char pb[24];
        int pl = snprintf(pb, sizeof(pb), "%d\n", (int)getpid());
        for (int i = 0; i < ncg; i++) {
            if (write(cgfds[i], pb, (size_t)pl) != pl) {
                dprintf(outfd, "vmkd: cannot join the VM's cgroup: %s\n", strerror(errno));
                _exit(126);
            }
        }
        if (req->cpu_affinity) {
            cpu_set_t set;
            CPU_ZERO(&set);
            for (int c = 0; c < 64; c++)
                if (req->cpu_affinity & (UINT64_C(1) << c))
                    CPU_SET(c, &set);
            if (sched_setaffinity(0, sizeof(set), &set) < 0) {
                dprintf(outfd, "vmkd: cannot set CPU affinity: %s\n", strerror(errno));
                _exit(126);
            }
        }
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        for (int s = 1; s < NSIG; s++)
            signal(s, SIG_DFL);
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0 && nul != 0) {
            dup2(nul, 0);
            close(nul);
        }
        dup2(outfd, 1);
        dup2(outfd, 2);
        /* vmx gets stdin/out/err (and its vSwitch port) only: no control connection, no fd vmkd
         * inherited from whoever started it (a pipe held by a long-lived vmx
         * would keep its reader waiting for EOF forever). */
        int keep = 3;
        if (netfds[0] >= 0) {
            /* The vSwitch port (ring memfd, kick, call) at 3, 4, 5 and its
             * link at 6: first out of the way of the targets, then into
             * place (dup2 clears close-on-exec). */
            int hi[4], nfd = netfds[3] >= 0 ? 4 : 3;
            for (int k = 0; k < nfd; k++) {
                hi[k] = fcntl(netfds[k], F_DUPFD, 100);
                if (hi[k] < 0) {
                    dprintf(2, "vmkd: cannot pass the network port: %s\n", strerror(errno));
                    _exit(126);
                }
            }
            for (int k = 0; k < nfd; k++)
                dup2(hi[k], 3 + k);
            keep = 3 + nfd;
        }
        close_range((unsigned)keep, ~0u, 0);
        execv(argv[0], (char *const *)argv);
        dprintf(2, "vmkd: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    vm->pid = pid;
    vm->child = true;
    vm->state = VMKD_VM_STARTING;
    for (int i = 0; i < ncg; i++)
        close(cgfds[i]);
    ncg = 0;
    if (netfds[3] >= 0)
        close(netfds[3]);       /* the vmx's end of the port's link */
    netfds[3] = -1;
    free(portsock);
    portsock = NULL;
    close(outfd);
    outfd = -1;
    proc_starttime(pid, &vm->starttime);
    rc = watch_pid(vm);
    if (rc < 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        goto err_msg;
    }
    rc = vms_add(d, vm);
    if (rc < 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        goto err_msg;
    }
    vm->start_cb = cb;
    vm->start_ctx = ctx;
    write_state(vm);
    arm_timer(vm, d->cfg.ready_timeout_ms);
    kvc_info("VM %s: spawned vmx pid %d (config %s, shares %" PRIu64 ", quota %" PRId64 " us)",
             vm->id, (int)pid, vm->config, vm->weight, vm->quota_us);
    /* The marker may already be there (a fast vmx wrote it before the watch). */
    if (out_has_ready(vm))
        vm_ready(vm);
    return 0;

err_msg:
    snprintf(why, VMKD_WHY_MAX, "cannot start vmx: %s", strerror(-rc));
err:
    for (int i = 0; i < ncg; i++)
        close(cgfds[i]);
    if (outfd >= 0)
        close(outfd);
    if (netfds[3] >= 0)
        close(netfds[3]);
    free(portsock);
    if (admitted)
        kvc_admission_release(&d->adm, req->alloc.cpu_reservation_mhz, req->alloc.mem_reservation_mb);
    kvc_err("VM %s: power-on failed: %s", req->vm_id, why);
    vm_free(vm, true);
    return rc;
}

/* ---- power off, reconfigure, queries ---- */

int vmkd_power_off(struct vmkd *d, const char *vm_id, bool force, int64_t timeout_ms,
                   vmkd_stop_cb cb, void *ctx, char *why)
{
    struct vmkd_vm *vm = vm_id ? vm_find(d, vm_id) : NULL;
    if (!vm) {
        snprintf(why, VMKD_WHY_MAX, "VM %s is not powered on", vm_id ? vm_id : "(none)");
        return -ENOENT;
    }
    if (cb) {
        struct stop_waiter *w = calloc(1, sizeof(*w));
        if (!w)
            return -ENOMEM;
        w->cb = cb;
        w->ctx = ctx;
        w->next = vm->waiters;
        vm->waiters = w;
    }
    if (timeout_ms <= 0)
        timeout_ms = d->cfg.stop_timeout_ms;
    bool first = !vm->stop_requested;
    vm->stop_requested = true;
    if (vm->state == VMKD_VM_STARTING)
        snprintf(vm->fail_why, sizeof(vm->fail_why), "powered off before it was ready");
    else
        vm->state = VMKD_VM_STOPPING;
    if (force) {
        vm->forced = true;
        kvc_info("VM %s: forced power off of pid %d", vm->id, (int)vm->pid);
        if (sys_pidfd_signal(vm->pidfd, SIGKILL) < 0 && errno != ESRCH)
            kvc_err("VM %s: kill: %s", vm->id, strerror(errno));
    } else if (first) {
        kvc_info("VM %s: power off pid %d (SIGTERM, SIGKILL after %" PRId64 " ms)", vm->id,
                 (int)vm->pid, timeout_ms);
        if (sys_pidfd_signal(vm->pidfd, SIGTERM) < 0 && errno != ESRCH)
            kvc_err("VM %s: kill: %s", vm->id, strerror(errno));
        arm_timer(vm, timeout_ms);
    }
    return 0;
}

void vmkd_cancel_callbacks(struct vmkd *d, void *ctx)
{
    for (size_t i = 0; i < d->nvms; i++) {
        struct vmkd_vm *vm = d->vms[i];
        if (vm->start_ctx == ctx)
            vm->start_cb = NULL;
        for (struct stop_waiter *w = vm->waiters; w; w = w->next)
            if (w->ctx == ctx)
                w->cb = NULL;
    }
}

int vmkd_reconfigure(struct vmkd *d, const char *vm_id, const struct kvc_res_alloc *a, char *why)
{
    struct vmkd_vm *vm = vm_id ? vm_find(d, vm_id) : NULL;
    if (!vm) {
        snprintf(why, VMKD_WHY_MAX, "VM %s is not powered on", vm_id ? vm_id : "(none)");
        return -ENOENT;
    }
    int rc = kvc_res_alloc_check(a, why, VMKD_WHY_MAX);
    if (rc < 0)
        return rc;
    rc = kvc_admission_change(&d->adm, vm->alloc.cpu_reservation_mhz, vm->alloc.mem_reservation_mb,
                              a->cpu_reservation_mhz, a->mem_reservation_mb, why, VMKD_WHY_MAX);
    if (rc < 0)
        return rc;
    struct kvc_res_alloc old = vm->alloc;
    vm->alloc = *a;
    rc = apply_alloc(vm, why);
    if (rc < 0) {
        char ignore[VMKD_WHY_MAX];
        kvc_admission_change(&d->adm, a->cpu_reservation_mhz, a->mem_reservation_mb,
                             old.cpu_reservation_mhz, old.mem_reservation_mb, ignore, sizeof(ignore));
        vm->alloc = old;
        apply_alloc(vm, ignore);
        return rc;
    }
    write_state(vm);
    kvc_info("VM %s: reconfigured: weight %" PRIu64 ", quota %" PRId64 " us, memory limit %" PRId64
             " MB, reservation %" PRIu64 " MHz / %" PRIu64 " MB", vm->id, vm->weight, vm->quota_us,
             a->mem_limit_mb, a->cpu_reservation_mhz, a->mem_reservation_mb);
    return 0;
}

size_t vmkd_vm_count(const struct vmkd *d)
{
    return d->nvms;
}

bool vmkd_vm_nth(const struct vmkd *d, size_t i, struct vmkd_vm_info *info)
{
    if (i >= d->nvms)
        return false;
    vm_info(d->vms[i], info);
    return true;
}

int vmkd_vm_get(const struct vmkd *d, const char *vm_id, struct vmkd_vm_info *info)
{
    struct vmkd_vm *vm = vm_id ? vm_find(d, vm_id) : NULL;
    if (!vm)
        return -ENOENT;
    vm_info(vm, info);
    return 0;
}

int vmkd_vm_usage(struct vmkd *d, const char *vm_id, struct kvc_cg_usage *u)
{
    struct vmkd_vm *vm = vm_id ? vm_find(d, vm_id) : NULL;
    if (!vm)
        return -ENOENT;
    return kvc_cg_vm_usage(vm->cg, u);
}

/* ---- re-adoption ---- */

static int parse_state(struct vmkd_vm *vm, int *ready)
{
    FILE *f = fopen(vm->statefile, "re");
    if (!f)
        return -errno;
    char line[PATH_MAX + 32];
    int have = 0;
    kvc_res_alloc_default(&vm->alloc);
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq = '\0';
        const char *k = line, *v = eq + 1;
        if (strcmp(k, "pid") == 0) {
            vm->pid = (pid_t)strtol(v, NULL, 10);
            have |= 1;
        } else if (strcmp(k, "starttime") == 0) {
            vm->starttime = strtoull(v, NULL, 10);
            have |= 2;
        } else if (strcmp(k, "config") == 0) {
            free(vm->config);
            vm->config = strdup(v);
            have |= 4;
        } else if (strcmp(k, "log") == 0 && *v) {
            free(vm->log);
            vm->log = strdup(v);
        } else if (strcmp(k, "vcpus") == 0) {
            vm->vcpus = (uint32_t)strtoul(v, NULL, 10);
        } else if (strcmp(k, "cpu_shares") == 0) {
            vm->alloc.cpu_shares = (uint32_t)strtoul(v, NULL, 10);
        } else if (strcmp(k, "cpu_limit_mhz") == 0) {
            vm->alloc.cpu_limit_mhz = strtoll(v, NULL, 10);
        } else if (strcmp(k, "cpu_limit_pct") == 0) {
            vm->alloc.cpu_limit_pct = (int32_t)strtol(v, NULL, 10);
        } else if (strcmp(k, "cpu_reservation_mhz") == 0) {
            vm->alloc.cpu_reservation_mhz = strtoull(v, NULL, 10);
        } else if (strcmp(k, "mem_limit_mb") == 0) {
            vm->alloc.mem_limit_mb = strtoll(v, NULL, 10);
        } else if (strcmp(k, "mem_reservation_mb") == 0) {
            vm->alloc.mem_reservation_mb = strtoull(v, NULL, 10);
        } else if (strcmp(k, "ready") == 0) {
            *ready = atoi(v);
        } else if (strcmp(k, "nic_portgroup") == 0 && *v) {
            free(vm->nic_pg);
            vm->nic_pg = strdup(v);
        } else if (strcmp(k, "nic_mac") == 0 && *v) {
            free(vm->nic_mac);
            vm->nic_mac = strdup(v);
        }
    }
    fclose(f);
    char why[VMKD_WHY_MAX];
    if (have != 7 || vm->pid <= 1 || !vm->config || kvc_res_alloc_check(&vm->alloc, why, sizeof(why)) < 0)
        return -EINVAL;
    if (!vm->vcpus)
        vm->vcpus = 1;
    return 0;
}

static void adopt_one(struct vmkd *d, const char *id)
{
    struct vmkd_vm *vm = NULL;
    int ready = 0;
    char why[VMKD_WHY_MAX] = "";
    if (!vmkd_valid_id(id) || vm_new(d, id, &vm) < 0)
        return;
    int rc = parse_state(vm, &ready);
    if (rc < 0) {
        kvc_warn("VM %s: unreadable state file %s: %s; removing it", id, vm->statefile,
                 strerror(-rc));
        goto drop;
    }
    unsigned long long st = 0;
    if (proc_starttime(vm->pid, &st) < 0 || st != vm->starttime) {
        kvc_warn("VM %s: vmx pid %d exited while vmkd was down", id, (int)vm->pid);
        goto drop;
    }
    rc = watch_pid(vm);
    /* The pid could have been reused between the check and pidfd_open. */
    if (rc < 0 || proc_starttime(vm->pid, &st) < 0 || st != vm->starttime) {
        kvc_warn("VM %s: vmx pid %d exited while vmkd was down", id, (int)vm->pid);
        goto drop;
    }
    rc = kvc_cg_vm_create(d->cg, id, &vm->cg);
    if (rc == 0)
        rc = kvc_cg_vm_attach(vm->cg, vm->pid);
    if (rc == 0)
        rc = apply_alloc(vm, why);
    if (rc < 0)
        kvc_err("VM %s: re-adopted vmx pid %d but could not restore its cgroup: %s", id,
                (int)vm->pid, why[0] ? why : strerror(-rc));
    /* It runs already: account its reservation even if the host shrank. */
    d->adm.used_cpu_mhz += vm->alloc.cpu_reservation_mhz;
    d->adm.used_mem_mb += vm->alloc.mem_reservation_mb;
    vm->adopted = true;
    vm->state = VMKD_VM_RUNNING;
    if (!ready) {
        /* It was still starting: give it the rest of its time to report. */
        vm->state = VMKD_VM_STARTING;
        vm->wd = inotify_add_watch(d->ino_fd, vm->out, IN_MODIFY);
        if (out_has_ready(vm))
            vm->state = VMKD_VM_RUNNING;
        else
            arm_timer(vm, d->cfg.ready_timeout_ms);
    }
    if (vms_add(d, vm) < 0) {
        kvc_err("VM %s: out of memory re-adopting", id);
        vm_free(vm, false);
        return;
    }
    if (vm->nic_pg && vm->nic_mac) {
        /* A port on this vmkd's switch, same port group and MAC: the vmx
         * saw its old link close and comes to the port socket for it. */
        int fds[4];
        if (!d->cfg.net.port_add) {
            kvc_warn("VM %s: this vmkd has no vSwitch; its adapter stays without a port", id);
        } else if (d->cfg.net.port_add(d->cfg.net.ctx, id, vm->nic_pg, vm->nic_mac, fds, why,
                                       sizeof(why)) < 0) {
            kvc_warn("VM %s: no port for its adapter on the new switch: %s", id, why);
        } else {
            vm->has_port = true;
            if (fds[3] >= 0)
                close(fds[3]);  /* the vmx brings its own link */
        }
    }
    write_state(vm);
    kvc_info("VM %s: re-adopted running vmx pid %d (%s)", id, (int)vm->pid,
             vmkd_state_str(vm->state));
    return;
drop:
    if (!vm->cg)
        kvc_cg_vm_create(d->cg, id, &vm->cg);   /* so that it is removed too */
    vm_free(vm, true);
}

int vmkd_adopt_all(struct vmkd *d)
{
    char *dir = xasprintf("%s/vms", d->cfg.state_dir);
    if (!dir)
        return -ENOMEM;
    DIR *dd = opendir(dir);
    if (!dd) {
        int e = errno == ENOENT ? 0 : -errno;
        free(dir);
        return e;
    }
    struct dirent *de;
    while ((de = readdir(dd)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (vm_find(d, de->d_name))
            continue;
        adopt_one(d, de->d_name);
    }
    closedir(dd);
    free(dir);
    return 0;
}

/* ---- lifetime ---- */

static int mkdir_p(const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
        return -ENAMETOOLONG;
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, mode) < 0 && errno != EEXIST)
                return -errno;
            *p = '/';
        }
    }
    if (mkdir(buf, mode) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

int vmkd_new(struct event_base *base, const struct vmkd_config *cfg, struct vmkd **out, char *why)
{
    *out = NULL;
    struct vmkd *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->base = base;
    d->cfg = *cfg;
    d->ino_fd = -1;
    int rc = kvc_sched_host_capacity(NULL, &d->cap);
    if (rc < 0) {
        snprintf(why, VMKD_WHY_MAX, "cannot read host capacity: %s", strerror(-rc));
        goto err;
    }
    d->adm.cap = d->cap;
    d->adm.reserve_cpu_mhz = cfg->reserve_cpu_mhz;
    d->adm.reserve_mem_mb = cfg->reserve_mem_mb;
    char *vmsdir = xasprintf("%s/vms", cfg->state_dir);
    rc = vmsdir ? mkdir_p(vmsdir, 0700) : -ENOMEM;
    free(vmsdir);
    if (rc < 0) {
        snprintf(why, VMKD_WHY_MAX, "cannot create state dir %s: %s", cfg->state_dir, strerror(-rc));
        goto err;
    }
    rc = kvc_cg_root_open(&cfg->cg, &d->cg);
    if (rc < 0) {
        snprintf(why, VMKD_WHY_MAX, "cannot set up cgroups (parent '%s'): %s", cfg->cg.parent,
                 strerror(-rc));
        goto err;
    }
    d->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (d->ino_fd < 0) {
        rc = -errno;
        snprintf(why, VMKD_WHY_MAX, "inotify: %s", strerror(-rc));
        goto err;
    }
    d->ev_ino = event_new(base, d->ino_fd, EV_READ | EV_PERSIST, on_inotify, d);
    if (!d->ev_ino || event_add(d->ev_ino, NULL) < 0) {
        rc = -ENOMEM;
        snprintf(why, VMKD_WHY_MAX, "event setup failed");
        goto err;
    }
    kvc_info("host: %u CPUs at %u MHz, %" PRIu64 " MB; host reserve %" PRIu64 " MHz, %" PRIu64 " MB",
             d->cap.ncpus, d->cap.cpu_mhz, d->cap.mem_bytes >> 20, cfg->reserve_cpu_mhz,
             cfg->reserve_mem_mb);
    *out = d;
    return 0;
err:
    vmkd_free(d, false);
    return rc;
}

void vmkd_free(struct vmkd *d, bool stop_vms)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->npl; i++) {
        free(d->pl_id[i]);
        free(d->pl_dir[i]);
    }
    free(d->pl_id);
    free(d->pl_dir);
    d->npl = 0;
    bool empty = d->nvms == 0;
    while (d->nvms) {
        struct vmkd_vm *vm = d->vms[d->nvms - 1];
        d->nvms--;
        if (vm->start_cb)
            vm->start_cb(vm->start_ctx, -ECANCELED, "vmkd is shutting down", NULL);
        vm->start_cb = NULL;
        for (struct stop_waiter *w = vm->waiters; w; w = w->next)
            if (w->cb)
                w->cb(w->ctx, -ECANCELED, NULL);
        if (stop_vms) {
            sys_pidfd_signal(vm->pidfd, SIGKILL);
            if (vm->child) {
                siginfo_t si;
                waitid((idtype_t)P_PIDFD, (id_t)vm->pidfd, &si, WEXITED);
            } else {
                struct timespec ts = { 0, 2000000 };
                for (int i = 0; i < 2500 && kill(vm->pid, 0) == 0; i++)
                    nanosleep(&ts, NULL);
            }
            kvc_info("VM %s: vmx pid %d killed (vmkd stopping with stop-vms)", vm->id, (int)vm->pid);
            vm_free(vm, true);
        } else {
            vm_free(vm, false);
        }
    }
    free(d->vms);
    if (d->ev_ino)
        event_free(d->ev_ino);
    if (d->ino_fd >= 0)
        close(d->ino_fd);
    /* The pools' cgroups go before the parent (and while the root is open). */
    if (d->pools_cleanup)
        d->pools_cleanup(stop_vms || empty);
    kvc_cg_root_close(d->cg, d->cfg.rmdir_cgroup_parent && (stop_vms || empty));
    free(d);
}

void vmkd_set_listener(struct vmkd *d, const struct vmkd_listener *l)
{
    d->lis = *l;
}

const struct kvc_host_capacity *vmkd_capacity(const struct vmkd *d)
{
    return &d->cap;
}

const struct kvc_admission *vmkd_admission(const struct vmkd *d)
{
    return &d->adm;
}

const char *vmkd_cgroup_describe(const struct vmkd *d)
{
    return kvc_cg_root_describe(d->cg);
}

int vmkd_cgroup_version(const struct vmkd *d)
{
    return (int)kvc_cg_root_version(d->cg);
}
