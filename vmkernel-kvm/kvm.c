/* The KVM VM and its vCPU threads (see vmx.h). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "vmkernel-kvm/vmx.h"

KVC_LOG_MODULE(kvm);

#define KICK_SIGNAL SIGUSR1

static struct kvc_ratelimit rl_io = KVC_RATELIMIT_INIT(10, 10);

uint64_t vmx_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static const char *const exit_names[] = {
    [KVM_EXIT_UNKNOWN] = "unknown", [KVM_EXIT_EXCEPTION] = "exception",
    [KVM_EXIT_IO] = "io", [KVM_EXIT_HYPERCALL] = "hypercall",
    [KVM_EXIT_DEBUG] = "debug", [KVM_EXIT_HLT] = "hlt", [KVM_EXIT_MMIO] = "mmio",
    [KVM_EXIT_IRQ_WINDOW_OPEN] = "irq_window_open", [KVM_EXIT_SHUTDOWN] = "shutdown",
    [KVM_EXIT_FAIL_ENTRY] = "fail_entry", [KVM_EXIT_INTR] = "intr",
    [KVM_EXIT_SET_TPR] = "set_tpr", [KVM_EXIT_TPR_ACCESS] = "tpr_access",
    [KVM_EXIT_NMI] = "nmi", [KVM_EXIT_INTERNAL_ERROR] = "internal_error",
    [KVM_EXIT_SYSTEM_EVENT] = "system_event",
};

const char *vmx_exit_reason_name(unsigned r)
{
    if (r < sizeof(exit_names) / sizeof(exit_names[0]) && exit_names[r])
        return exit_names[r];
    return "other";
}

static void kick_handler(int sig)
{
    (void)sig;
}

int vmx_kvm_open(struct vmx *vm)
{
    vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (vm->kvm_fd < 0) {
        int e = -errno;
        kvc_err("open /dev/kvm: %s", strerror(errno));
        return e;
    }
    int v = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
    if (v != KVM_API_VERSION) {
        kvc_err("KVM API version %d, expected %d", v, KVM_API_VERSION);
        return -ENOTSUP;
    }
    static const int caps[] = { KVM_CAP_IRQCHIP, KVM_CAP_USER_MEMORY, KVM_CAP_IMMEDIATE_EXIT };
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
        if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, caps[i]) <= 0) {
            kvc_err("KVM lacks capability %d", caps[i]);
            return -ENOTSUP;
        }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = kick_handler;
    sigemptyset(&sa.sa_mask);
    sigaction(KICK_SIGNAL, &sa, NULL);
    return 0;
}

void vmx_irq_set(void *opaque, unsigned gsi, int level)
{
    struct vmx *vm = opaque;
    struct kvm_irq_level l = { .irq = gsi, .level = level };
    if (vm->vm_fd >= 0 && ioctl(vm->vm_fd, KVM_IRQ_LINE, &l) < 0)
        kvc_warn_rl(&rl_io, "KVM_IRQ_LINE %u: %s", gsi, strerror(errno));
}

static int set_cpuid(struct vmx *vm, struct vcpu *c)
{
    int n = 128, rc = 0;
    struct kvm_cpuid2 *cpuid = NULL;
    for (;;) {
        cpuid = calloc(1, sizeof(*cpuid) + (size_t)n * sizeof(cpuid->entries[0]));
        if (!cpuid)
            return -ENOMEM;
        cpuid->nent = (uint32_t)n;
        if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) == 0)
            break;
        free(cpuid);
        if (errno != E2BIG || n > 4096)
            return -errno;
        n *= 2;
    }
    for (uint32_t i = 0; i < cpuid->nent; i++) {
        struct kvm_cpuid_entry2 *e = &cpuid->entries[i];
        if (e->function == 1)
            e->ebx = (e->ebx & 0x00ffffffu) | (c->index << 24);
        if (e->function == 0xb || e->function == 0x1f)
            e->edx = c->index;
    }
    if (ioctl(c->fd, KVM_SET_CPUID2, cpuid) < 0)
        rc = -errno;
    free(cpuid);
    return rc;
}

int vmx_vm_create(struct vmx *vm)
{
    int rc;
    vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
    if (vm->vm_fd < 0) {
        rc = -errno;
        kvc_err("KVM_CREATE_VM: %s", strerror(errno));
        return rc;
    }
    fcntl(vm->vm_fd, F_SETFD, FD_CLOEXEC);
    if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, 0xfffbd000ul) < 0)
        kvc_dbg("KVM_SET_TSS_ADDR: %s", strerror(errno));
    if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
        rc = -errno;
        kvc_err("KVM_CREATE_IRQCHIP: %s", strerror(errno));
        return rc;
    }
    struct kvm_userspace_memory_region r = {
        .slot = 0, .guest_phys_addr = 0, .memory_size = vm->mem.size,
        .userspace_addr = (uint64_t)(uintptr_t)vm->mem.hva,
    };
    if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0) {
        rc = -errno;
        kvc_err("KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
        return rc;
    }
    int run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (run_size < (int)sizeof(struct kvm_run))
        return -EINVAL;
    for (unsigned i = 0; i < vm->nvcpus; i++) {
        struct vcpu *c = &vm->vcpus[i];
        memset(c, 0, sizeof(*c));
        c->vm = vm;
        c->index = i;
        c->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)i);
        if (c->fd < 0) {
            rc = -errno;
            kvc_err("KVM_CREATE_VCPU %u: %s", i, strerror(errno));
            return rc;
        }
        fcntl(c->fd, F_SETFD, FD_CLOEXEC);
        c->run_size = (size_t)run_size;
        c->run = mmap(NULL, c->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
        if (c->run == MAP_FAILED) {
            c->run = NULL;
            return -errno;
        }
        rc = set_cpuid(vm, c);
        if (rc < 0) {
            kvc_err("KVM_SET_CPUID2: %s", strerror(-rc));
            return rc;
        }
    }
    return 0;
}

void vmx_vm_destroy(struct vmx *vm)
{
    for (unsigned i = 0; i < VMX_MAX_VCPUS; i++) {
        struct vcpu *c = &vm->vcpus[i];
        if (c->run)
            munmap(c->run, c->run_size);
        c->run = NULL;
        if (c->fd > 0)
            close(c->fd);
        c->fd = -1;
    }
    if (vm->vm_fd >= 0)
        close(vm->vm_fd);
    vm->vm_fd = -1;
}

void vmx_kick_vcpus(struct vmx *vm)
{
    for (unsigned i = 0; i < vm->nvcpus; i++) {
        struct vcpu *c = &vm->vcpus[i];
        if (c->run)
            __atomic_store_n(&c->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
        if (c->thread_started)
            pthread_kill(c->thread, KICK_SIGNAL);
    }
}

static void request_stop_locked(struct vmx *vm, enum vmx_stop_reason r, const char *detail)
{
    if (vm->stop == VMX_STOP_NONE) {
        vm->stop = r;
        snprintf(vm->stop_detail, sizeof(vm->stop_detail), "%s", detail ? detail : "");
        uint64_t one = 1;
        if (vm->notify_fd >= 0 && write(vm->notify_fd, &one, sizeof(one)) < 0)
            kvc_warn("notify: %s", strerror(errno));
    }
    pthread_cond_broadcast(&vm->cond);
    vmx_kick_vcpus(vm);
}

void vmx_request_stop(struct vmx *vm, enum vmx_stop_reason r, const char *detail)
{
    pthread_mutex_lock(&vm->dev_lock);
    request_stop_locked(vm, r, detail);
    pthread_mutex_unlock(&vm->dev_lock);
}

void vmx_request_stop_locked(struct vmx *vm, enum vmx_stop_reason r, const char *detail)
{
    request_stop_locked(vm, r, detail);
}

static void crash(struct vcpu *c, const char *what)
{
    struct vmx *vm = c->vm;
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    char detail[400], bytes[64] = "";
    uint64_t rip = 0, cs_base = 0;
    if (ioctl(c->fd, KVM_GET_REGS, &regs) == 0)
        rip = regs.rip;
    if (ioctl(c->fd, KVM_GET_SREGS, &sregs) == 0)
        cs_base = sregs.cs.base;
    struct kvm_translation t = { .linear_address = cs_base + rip };
    uint64_t gpa = cs_base + rip;
    if (ioctl(c->fd, KVM_TRANSLATE, &t) == 0 && t.valid)
        gpa = t.physical_address;
    uint8_t ib[16];
    size_t nb = 0;
    for (; nb < sizeof(ib); nb++) {
        const uint8_t *p = guest_mem_ptr(&vm->mem, gpa + nb, 1);
        if (!p)
            break;
        ib[nb] = *p;
    }
    for (size_t i = 0; i < nb; i++)
        snprintf(bytes + 3 * i, sizeof(bytes) - 3 * i, "%02x ", ib[i]);
    if (nb)
        bytes[3 * nb - 1] = 0;
    snprintf(detail, sizeof(detail), "%s on vcpu %u rip=0x%llx bytes=[%s]", what, c->index,
             (unsigned long long)rip, nb ? bytes : "not in RAM");
    kvc_err("VMX-CRASH %s", detail);
    vmx_request_stop(vm, VMX_STOP_CRASH, detail);
}

static void handle_io(struct vcpu *c)
{
    struct vmx *vm = c->vm;
    struct kvm_run *run = c->run;
    uint32_t size = run->io.size, count = run->io.count;
    uint64_t off = run->io.data_offset;
    if ((size != 1 && size != 2 && size != 4) || off > c->run_size
        || (uint64_t)size * count > c->run_size - off)
        return;
    uint8_t *data = (uint8_t *)run + off;
    pthread_mutex_lock(&vm->dev_lock);
    for (uint32_t i = 0; i < count; i++, data += size) {
        bool ok;
        if (run->io.direction == KVM_EXIT_IO_OUT)
            ok = bus_write(&vm->pio, run->io.port, data, size);
        else
            ok = bus_read(&vm->pio, run->io.port, data, size);
        if (!ok)
            kvc_dbg_rl(&rl_io, "unclaimed port 0x%x %s", run->io.port,
                       run->io.direction == KVM_EXIT_IO_OUT ? "write" : "read");
    }
    pthread_mutex_unlock(&vm->dev_lock);
}

static void handle_mmio(struct vcpu *c)
{
    struct vmx *vm = c->vm;
    struct kvm_run *run = c->run;
    unsigned len = run->mmio.len;
    if (len == 0 || len > 8)
        return;
    pthread_mutex_lock(&vm->dev_lock);
    bool ok = run->mmio.is_write ? bus_write(&vm->mmio, run->mmio.phys_addr, run->mmio.data, len)
                                 : bus_read(&vm->mmio, run->mmio.phys_addr, run->mmio.data, len);
    pthread_mutex_unlock(&vm->dev_lock);
    if (!ok)
        kvc_dbg_rl(&rl_io, "unclaimed MMIO 0x%llx %s", (unsigned long long)run->mmio.phys_addr,
                   run->mmio.is_write ? "write" : "read");
}

static void *vcpu_thread(void *arg)
{
    struct vcpu *c = arg;
    struct vmx *vm = c->vm;
    char name[16];
    snprintf(name, sizeof(name), "vcpu%u", c->index);
    pthread_setname_np(pthread_self(), name);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, KICK_SIGNAL);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);

    unsigned throttle_seen = 0;
    for (;;) {
        /* Auto-converge (migrate.c): sleep once per throttle tick.  A stop
         * or pause kicks the thread out of the sleep (EINTR). */
        unsigned tg = __atomic_load_n(&vm->throttle_gen, __ATOMIC_ACQUIRE);
        if (tg != throttle_seen) {
            throttle_seen = tg;
            uint64_t ns = __atomic_load_n(&vm->throttle_sleep_ns, __ATOMIC_RELAXED);
            if (ns) {
                struct timespec ts = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };
                nanosleep(&ts, NULL);
            }
        }
        pthread_mutex_lock(&vm->dev_lock);
        c->run->immediate_exit = 0;
        while (vm->pause_req && vm->stop == VMX_STOP_NONE) {
            c->paused = true;
            vm->parked++;
            pthread_cond_broadcast(&vm->cond);
            pthread_cond_wait(&vm->cond, &vm->dev_lock);
            vm->parked--;
            c->paused = false;
            c->run->immediate_exit = 0;
        }
        bool stop = vm->stop != VMX_STOP_NONE;
        pthread_mutex_unlock(&vm->dev_lock);
        if (stop)
            break;

        int r = ioctl(c->fd, KVM_RUN, 0);
        c->kvm_runs++;
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                c->exits[KVM_EXIT_INTR]++;
                continue;
            }
            char d[96];
            snprintf(d, sizeof(d), "KVM_RUN failed: %s", strerror(errno));
            crash(c, d);
            break;
        }
        unsigned reason = c->run->exit_reason;
        c->exits[reason < VMX_EXIT_REASONS ? reason : VMX_EXIT_REASONS - 1]++;
        switch (reason) {
        case KVM_EXIT_IO:
            handle_io(c);
            break;
        case KVM_EXIT_MMIO:
            handle_mmio(c);
            break;
        case KVM_EXIT_INTR:
        case KVM_EXIT_IRQ_WINDOW_OPEN:
            break;
        case KVM_EXIT_HLT:
            /* Not expected with the in-kernel LAPIC; do not spin. */
            usleep(1000);
            break;
        case KVM_EXIT_SHUTDOWN:
            crash(c, "triple fault (shutdown)");
            break;
        case KVM_EXIT_INTERNAL_ERROR: {
            char d[96];
            snprintf(d, sizeof(d), "internal error (suberror %u)", c->run->internal.suberror);
            crash(c, d);
            break;
        }
        case KVM_EXIT_FAIL_ENTRY: {
            char d[96];
            snprintf(d, sizeof(d), "entry failure (reason 0x%llx)",
                     (unsigned long long)c->run->fail_entry.hardware_entry_failure_reason);
            crash(c, d);
            break;
        }
        case KVM_EXIT_SYSTEM_EVENT:
            if (c->run->system_event.type == KVM_SYSTEM_EVENT_RESET)
                vmx_request_stop(vm, VMX_STOP_RESET, "guest reset");
            else if (c->run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN)
                vmx_request_stop(vm, VMX_STOP_POWEROFF, "guest shutdown");
            else
                crash(c, "system event (crash)");
            break;
        default: {
            char d[96];
            snprintf(d, sizeof(d), "unexpected exit %u (%s)", reason, vmx_exit_reason_name(reason));
            crash(c, d);
            break;
        }
        }
    }
    pthread_mutex_lock(&vm->dev_lock);
    pthread_cond_broadcast(&vm->cond);
    pthread_mutex_unlock(&vm->dev_lock);
    return NULL;
}

int vmx_vcpus_start(struct vmx *vm)
{
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, KICK_SIGNAL);
    /* Threads start with the kick signal blocked and unblock it themselves,
     * so the main thread never receives it. */
    pthread_sigmask(SIG_BLOCK, &set, &old);
    for (unsigned i = 0; i < vm->nvcpus; i++) {
        struct vcpu *c = &vm->vcpus[i];
        int rc = pthread_create(&c->thread, NULL, vcpu_thread, c);
        if (rc) {
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            vmx_request_stop(vm, VMX_STOP_CRASH, "cannot start vCPU thread");
            return -rc;
        }
        c->thread_started = true;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return 0;
}

void vmx_vcpus_join(struct vmx *vm)
{
    for (unsigned i = 0; i < vm->nvcpus; i++) {
        struct vcpu *c = &vm->vcpus[i];
        if (!c->thread_started)
            continue;
        pthread_join(c->thread, NULL);
        c->thread_started = false;
    }
}

void vmx_pause(struct vmx *vm)
{
    pthread_mutex_lock(&vm->dev_lock);
    vm->pause_req = true;
    vmx_kick_vcpus(vm);
    unsigned running = 0;
    for (unsigned i = 0; i < vm->nvcpus; i++)
        running += vm->vcpus[i].thread_started;
    while (vm->parked < running && vm->stop == VMX_STOP_NONE) {
        pthread_mutex_unlock(&vm->dev_lock);
        vmx_kick_vcpus(vm);
        pthread_mutex_lock(&vm->dev_lock);
        /* A vCPU may have parked (and broadcast) while the lock was out. */
        if (vm->parked >= running || vm->stop != VMX_STOP_NONE)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&vm->cond, &vm->dev_lock, &ts);
    }
    if (vm->state == VMX_RUNNING)
        vm->state = VMX_PAUSED;
    pthread_mutex_unlock(&vm->dev_lock);
}

void vmx_resume(struct vmx *vm)
{
    pthread_mutex_lock(&vm->dev_lock);
    vm->pause_req = false;
    if (vm->state == VMX_PAUSED)
        vm->state = VMX_RUNNING;
    pthread_cond_broadcast(&vm->cond);
    pthread_mutex_unlock(&vm->dev_lock);
}

uint64_t vmx_vcpu_runtime_ns(struct vmx *vm, unsigned i)
{
    struct vcpu *c = &vm->vcpus[i];
    clockid_t cid;
    struct timespec ts;
    if (!c->thread_started || pthread_getcpuclockid(c->thread, &cid) || clock_gettime(cid, &ts))
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- dirty logging (live migration) ---- */

int vmx_dirty_log_enable(struct vmx *vm, bool on)
{
    struct kvm_userspace_memory_region r = {
        .slot = 0, .flags = on ? KVM_MEM_LOG_DIRTY_PAGES : 0, .guest_phys_addr = 0,
        .memory_size = vm->mem.size, .userspace_addr = (uint64_t)(uintptr_t)vm->mem.hva,
    };
    if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0) {
        int e = -errno;
        kvc_err("KVM_SET_USER_MEMORY_REGION (dirty log %s): %s", on ? "on" : "off", strerror(errno));
        return e;
    }
    return 0;
}

int vmx_dirty_log_get(struct vmx *vm, uint64_t *bitmap)
{
    struct kvm_dirty_log log = { .slot = 0 };
    log.dirty_bitmap = bitmap;
    if (ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0) {
        int e = -errno;
        kvc_err("KVM_GET_DIRTY_LOG: %s", strerror(errno));
        return e;
    }
    return 0;
}
