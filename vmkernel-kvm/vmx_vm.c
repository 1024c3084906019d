/* Devices of a VM and loading its guest (the glue between kvm.c, boot.c and
 * devices/). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "vmkernel-kvm/boot.h"
#include "vmkernel-kvm/disk_mirror.h"
#include "vmkernel-kvm/vmx.h"

KVC_LOG_MODULE(vmx);

#define SLOT_TOOLS   0
#define SLOT_BALLOON 1
#define COM1_IRQ 4

static void tools_action(void *opaque, uint32_t action)
{
    struct vmx *vm = opaque;
    if (action == KVC_TOOLS_ACT_REBOOT) {
        kvc_info("guest asked to reboot");
        vmx_request_stop_locked(vm, VMX_STOP_RESET, "guest reboot");
    } else {
        kvc_info("guest asked to power off");
        vmx_request_stop_locked(vm, VMX_STOP_POWEROFF, "guest power off");
    }
}

static void serial_line(void *opaque, const char *line, size_t len)
{
    (void)opaque;
    /* Guest lines are guest-controlled: rate-limited, printable only. */
    static struct kvc_ratelimit rl = KVC_RATELIMIT_INIT(20, 10);
    char buf[257];
    size_t n = len < 256 ? len : 256;
    for (size_t i = 0; i < n; i++)
        buf[i] = (line[i] >= 0x20 && line[i] < 0x7f) ? line[i] : '?';
    buf[n] = 0;
    kvc_dbg_rl(&rl, "guest: %s", buf);
}

int vmx_devices_init(struct vmx *vm)
{
    int rc;
    struct irq_line com1 = { .opaque = vm, .set = vmx_irq_set, .gsi = COM1_IRQ };
    rc = serial_init(&vm->serial, vm->cfg.serial_log[0] ? vm->cfg.serial_log : NULL, &com1);
    if (rc < 0) {
        kvc_err("serial log %s: %s", vm->cfg.serial_log, strerror(-rc));
        return rc;
    }
    vm->serial.on_line = serial_line;
    vm->serial.on_line_opaque = vm;
    if ((rc = serial_attach(&vm->serial, &vm->pio, 0x3f8)) < 0)
        return rc;

    struct irq_line ti = { .opaque = vm, .set = vmx_irq_set, .gsi = KVC_MMIO_IRQ_BASE + SLOT_TOOLS };
    tools_init(&vm->tools, &vm->mem, &ti);
    vm->tools.on_action = tools_action;
    vm->tools.on_action_opaque = vm;
    if ((rc = virtio_mmio_attach(&vm->tools.dev, &vm->mmio,
                                 KVC_GPA_MMIO_BASE + SLOT_TOOLS * KVC_MMIO_SLOT_SIZE)) < 0)
        return rc;

    if (vm->cfg.balloon) {
        struct irq_line bi = { .opaque = vm, .set = vmx_irq_set, .gsi = KVC_MMIO_IRQ_BASE + SLOT_BALLOON };
        balloon_init(&vm->balloon, &vm->mem, &bi);
        if ((rc = virtio_mmio_attach(&vm->balloon.dev, &vm->mmio,
                                     KVC_GPA_MMIO_BASE + SLOT_BALLOON * KVC_MMIO_SLOT_SIZE)) < 0)
            return rc;
        vm->balloon_on = true;
    }
    if (vm->cfg.net) {
        struct irq_line ni = { .opaque = vm, .set = vmx_irq_set, .gsi = KVC_MMIO_IRQ_BASE + KVC_MMIO_SLOT_NET };
        virtio_net_init(&vm->net, &vm->mem, &ni, vm->cfg.net_mac, vm->cfg.net_mtu, &vm->dev_lock);
        vm->net_on = true;
        if (vm->net_fds[0] >= 0) {
            rc = virtio_net_attach_backend(&vm->net, vm->net_fds[0], vm->net_fds[1], vm->net_fds[2]);
            vm->net_fds[0] = vm->net_fds[1] = vm->net_fds[2] = -1;
            if (rc < 0) {
                kvc_err("virtio-net: the switch port's ring: %s", strerror(-rc));
                return rc;
            }
            kvc_info("virtio-net: backend on vSwitch port (port group %s)",
                     vm->cfg.net_portgroup[0] ? vm->cfg.net_portgroup : "?");
        } else {
            kvc_warn("virtio-net: no switch port (vmx started without --net-fds): link down");
        }
        if ((rc = virtio_mmio_attach(&vm->net.dev, &vm->mmio,
                                     KVC_GPA_MMIO_BASE + KVC_MMIO_SLOT_NET * KVC_MMIO_SLOT_SIZE)) < 0
            || (rc = virtio_net_start(&vm->net)) < 0 || (rc = vmx_net_bind_kvm(vm)) < 0)
            return rc;
    }
    if (vm->cfg.disk_path[0]) {
        char err[512] = "";
        const char *id = vm->cfg.uuid[0] ? vm->cfg.uuid : vm->cfg.name;
        struct irq_line di = { .opaque = vm, .set = vmx_irq_set, .gsi = KVC_MMIO_IRQ_BASE + KVC_MMIO_SLOT_BLK };
        if ((rc = virtio_blk_init(&vm->blk, &vm->mem, &di, vm->cfg.disk_path, vm->cfg.disk_readonly,
                                  id, err, sizeof(err))) < 0) {
            kvc_err("disk.path %s: %s", vm->cfg.disk_path, err[0] ? err : strerror(-rc));
            return rc;
        }
        vm->blk_on = true;
        kvc_info("virtio-blk: %s, %llu sectors%s, %u layer(s)", vm->cfg.disk_path,
                 (unsigned long long)virtio_blk_capacity(&vm->blk),
                 vm->cfg.disk_readonly ? ", read-only" : "", vm->blk.disk.n);
        if ((rc = virtio_mmio_attach(&vm->blk.dev, &vm->mmio,
                                     KVC_GPA_MMIO_BASE + KVC_MMIO_SLOT_BLK * KVC_MMIO_SLOT_SIZE)) < 0)
            return rc;
    }
    /* Port 0x80 (POST codes) and QEMU's isa-debug-exit port are accepted
     * and ignored, so guests that poke them do not fill the log. */
    struct bus_dev sink = { .name = "sink", .base = 0x80, .len = 1 };
    bus_register(&vm->pio, &sink);
    return 0;
}

void vmx_devices_destroy(struct vmx *vm)
{
    disk_move_free(vm);         /* its thread uses the disk */
    if (vm->blk_on)
        virtio_blk_destroy(&vm->blk);
    vm->blk_on = false;
    if (vm->net_on)
        virtio_net_destroy(&vm->net);
    for (int i = 0; i < 3; i++)
        if (vm->net_fds[i] >= 0)
            close(vm->net_fds[i]);
    serial_destroy(&vm->serial);
}

int vmx_net_bind_kvm(struct vmx *vm)
{
    if (!vm->net_on || vm->vm_fd < 0 || getenv("KVC_NET_NO_IOEVENTFD"))
        return 0;
    /* Guest kicks of either queue wake the NIC's thread without leaving
     * the kernel (no MMIO exit, no device lock on the vCPU). */
    struct kvm_ioeventfd io = {
        .addr = KVC_GPA_MMIO_BASE + KVC_MMIO_SLOT_NET * KVC_MMIO_SLOT_SIZE + 0x50,
        .len = 4,
        .fd = virtio_net_notify_fd(&vm->net),
    };
    if (ioctl(vm->vm_fd, KVM_IOEVENTFD, &io) < 0) {
        /* Not fatal: kicks then take the MMIO exit and run inline. */
        kvc_warn("virtio-net: KVM_IOEVENTFD: %s (kicks go through MMIO exits)", strerror(errno));
    }
    return 0;
}

static int read_file(const char *path, uint8_t **out, size_t *len, size_t max)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
        close(fd);
        return -EINVAL;
    }
    uint8_t *buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n <= 0) {
            free(buf);
            close(fd);
            return n < 0 ? -errno : -EIO;
        }
        got += (size_t)n;
    }
    close(fd);
    *out = buf;
    *len = got;
    return 0;
}

static int set_boot_state(struct vmx *vm, uint64_t entry, uint64_t rsi, int linux_layout)
{
    for (unsigned i = 0; i < vm->nvcpus; i++) {
        struct vcpu *c = &vm->vcpus[i];
        struct kvm_sregs sregs;
        struct kvm_regs regs;
        if (ioctl(c->fd, KVM_GET_SREGS, &sregs) < 0)
            return -errno;
        boot_longmode_sregs(&sregs, linux_layout);
        if (ioctl(c->fd, KVM_SET_SREGS, &sregs) < 0) {
            int e = -errno;
            kvc_err("KVM_SET_SREGS: %s", strerror(errno));
            return e;
        }
        boot_longmode_regs(&regs, entry, linux_layout ? 0 : i, rsi);
        if (ioctl(c->fd, KVM_SET_REGS, &regs) < 0)
            return -errno;
        /* Linux brings its APs up itself with INIT/SIPI; the test guest's
         * APs start in long mode at the same entry. */
        struct kvm_mp_state mp = {
            .mp_state = (i == 0 || !linux_layout) ? KVM_MP_STATE_RUNNABLE : KVM_MP_STATE_UNINITIALIZED,
        };
        if (ioctl(c->fd, KVM_SET_MP_STATE, &mp) < 0)
            return -errno;
    }
    return 0;
}

int vmx_boot(struct vmx *vm)
{
    char err[256] = "";
    uint8_t *img = NULL, *initrd = NULL;
    size_t len = 0, ilen = 0;
    int rc;

    if (vm->cfg.kernel[0]) {
        struct boot_linux_layout lay;
        if ((rc = read_file(vm->cfg.kernel, &img, &len, 256u << 20)) < 0) {
            kvc_err("guest.kernel %s: %s", vm->cfg.kernel, strerror(-rc));
            return rc;
        }
        if (vm->cfg.initrd[0] && (rc = read_file(vm->cfg.initrd, &initrd, &ilen, 1u << 30)) < 0) {
            kvc_err("guest.initrd %s: %s", vm->cfg.initrd, strerror(-rc));
            goto out;
        }
        rc = boot_linux_load(&vm->mem, img, len, initrd, ilen, vm->cfg.cmdline, &lay, err, sizeof(err));
        if (rc < 0) {
            kvc_err("guest.kernel %s: %s", vm->cfg.kernel, err);
            goto out;
        }
        if ((rc = boot_write_longmode_tables(&vm->mem, 1)) < 0)
            goto out;
        rc = set_boot_state(vm, lay.entry, lay.zero_page, 1);
        goto out;
    }

    if ((rc = read_file(vm->cfg.image, &img, &len, 64u << 20)) < 0) {
        kvc_err("guest.image %s: %s", vm->cfg.image, strerror(-rc));
        return rc;
    }
    uint64_t entry;
    if ((rc = boot_load_elf(&vm->mem, img, len, &entry, err, sizeof(err))) < 0) {
        kvc_err("guest.image %s: %s", vm->cfg.image, err);
        goto out;
    }
    if ((rc = boot_write_longmode_tables(&vm->mem, 0)) < 0)
        goto out;
    struct kvc_bootinfo *bi = guest_mem_ptr(&vm->mem, KVC_GPA_BOOTINFO, sizeof(*bi));
    if (!bi) {
        rc = -E2BIG;
        goto out;
    }
    memset(bi, 0, sizeof(*bi));
    bi->magic = KVC_BOOTINFO_MAGIC;
    bi->version = 1;
    bi->mem_bytes = vm->mem.size;
    bi->tools_base = KVC_GPA_MMIO_BASE + SLOT_TOOLS * KVC_MMIO_SLOT_SIZE;
    bi->balloon_base = vm->balloon_on ? KVC_GPA_MMIO_BASE + SLOT_BALLOON * KVC_MMIO_SLOT_SIZE : 0;
    bi->ncpus = vm->nvcpus;
    int khz = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_GET_TSC_KHZ) > 0
        ? ioctl(vm->vcpus[0].fd, KVM_GET_TSC_KHZ, 0) : 0;
    bi->tsc_khz = khz > 0 ? (uint32_t)khz : 0;
    snprintf(bi->cmdline, sizeof(bi->cmdline), "workload=%s duty=%u dirty_mb=%u ws_mb=%u",
             vmx_workload_name(vm->cfg.workload), vm->cfg.duty_percent,
             vm->cfg.dirty_mb_per_s, vm->cfg.working_set_mb);
    if (vm->net_on) {
        /* The network workload's words (guest/net.c); the NIC's MMIO base
         * rides along as net=, so the boot-info layout stays as it was. */
        size_t l = strlen(bi->cmdline);
        snprintf(bi->cmdline + l, sizeof(bi->cmdline) - l,
                 " net=0x%llx net_irq=%u net_mode=%s ip=%s peer=%s net_count=%u net_size=%u"
                 " net_forge=%u net_vlan=%u tsc_khz=%u",
                 (unsigned long long)(KVC_GPA_MMIO_BASE + KVC_MMIO_SLOT_NET * KVC_MMIO_SLOT_SIZE),
                 KVC_MMIO_IRQ_BASE + KVC_MMIO_SLOT_NET, vmx_net_mode_names[vm->cfg.guest_net_mode],
                 vm->cfg.guest_ip[0] ? vm->cfg.guest_ip : "0.0.0.0",
                 vm->cfg.guest_peer[0] ? vm->cfg.guest_peer : "0.0.0.0", vm->cfg.guest_net_count,
                 vm->cfg.guest_net_size, vm->cfg.guest_net_forge, vm->cfg.guest_net_vlan,
                 bi->tsc_khz);
    }
    if (vm->blk_on && vm->cfg.guest_disk_test) {
        /* The disk test's words (guest/blk.c). */
        size_t l = strlen(bi->cmdline);
        snprintf(bi->cmdline + l, sizeof(bi->cmdline) - l, " disk=%s disk_seed=%u disk_mb=%u",
                 vmx_disk_test_names[vm->cfg.guest_disk_test], vm->cfg.guest_disk_seed,
                 vm->cfg.guest_disk_mb);
    }
    rc = set_boot_state(vm, entry, KVC_GPA_BOOTINFO, 0);
out:
    free(img);
    free(initrd);
    return rc;
}
