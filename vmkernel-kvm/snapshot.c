/* Snapshots: the whole VM state in one file (format: vmx_state.h).
 *
 *   HEADER  magic, version, memory bytes, vCPU count
 *   MEMORY  runs of non-zero 4 KiB pages: u64 gpa, u32 pages, data
 *   VCPU i  regs, sregs, xsave, xcrs, MSRs, LAPIC, events, MP state, debugregs
 *   IRQCHIP PIC master, PIC slave, IOAPIC
 *   CLOCK   kvmclock
 *   SERIAL, TOOLS, VIRTIO (per slot)
 *   END
 *
 * KVM structures are stored as blobs of their kernel size; a size mismatch
 * on restore is an error, not a guess.  The per-section encoders are shared
 * with live migration (vmx_state_save_devices / vmx_state_load_section). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "vmkernel-kvm/vmx.h"
#include "vmkernel-kvm/vmx_state.h"

KVC_LOG_MODULE(snapshot);

#define PAGE 4096ull
#define MAX_MSRS 1024u

static int xsave_size(struct vmx *vm)
{
    int n = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
    return n > (int)sizeof(struct kvm_xsave) ? n : (int)sizeof(struct kvm_xsave);
}

static int msr_indices(struct vmx *vm, uint32_t *idx, uint32_t *n)
{
    struct kvm_msr_list *l = calloc(1, sizeof(*l) + MAX_MSRS * sizeof(uint32_t));
    if (!l)
        return -ENOMEM;
    l->nmsrs = MAX_MSRS;
    int rc = ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, l);
    if (rc < 0) {
        rc = -errno;
        free(l);
        return rc;
    }
    *n = l->nmsrs < MAX_MSRS ? l->nmsrs : MAX_MSRS;
    memcpy(idx, l->indices, *n * sizeof(uint32_t));
    free(l);
    return 0;
}

static void section(struct sbuf *out, uint32_t type, uint32_t inst, const struct sbuf *body)
{
    sbuf_u32(out, type);
    sbuf_u32(out, inst);
    sbuf_u64(out, body->len);
    sbuf_put(out, body->p, body->len);
    if (body->err)
        out->err = body->err;
}

#define GET(fd, req, p) do { if (ioctl((fd), (req), (p)) < 0) { rc = -errno; \
    kvc_err(#req ": %s", strerror(errno)); goto out; } } while (0)

static int save_vcpu(struct vmx *vm, struct vcpu *c, struct sbuf *b)
{
    int rc = 0;
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    struct kvm_xcrs xcrs;
    struct kvm_lapic_state lapic;
    struct kvm_vcpu_events ev;
    struct kvm_mp_state mp;
    struct kvm_debugregs dr;
    int xs = xsave_size(vm);
    struct kvm_xsave *xsave = calloc(1, (size_t)xs);
    uint32_t *idx = calloc(MAX_MSRS, sizeof(uint32_t));
    struct kvm_msrs *msrs = calloc(1, sizeof(*msrs) + MAX_MSRS * sizeof(struct kvm_msr_entry));
    if (!xsave || !idx || !msrs) {
        rc = -ENOMEM;
        goto out;
    }
    GET(c->fd, KVM_GET_REGS, &regs);
    GET(c->fd, KVM_GET_SREGS, &sregs);
    if (xs > (int)sizeof(struct kvm_xsave))
        GET(c->fd, KVM_GET_XSAVE2, xsave);
    else
        GET(c->fd, KVM_GET_XSAVE, xsave);
    memset(&xcrs, 0, sizeof(xcrs));
    if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0)
        GET(c->fd, KVM_GET_XCRS, &xcrs);
    GET(c->fd, KVM_GET_LAPIC, &lapic);
    GET(c->fd, KVM_GET_VCPU_EVENTS, &ev);
    GET(c->fd, KVM_GET_MP_STATE, &mp);
    GET(c->fd, KVM_GET_DEBUGREGS, &dr);

    /* MSRs: read what this kernel can; one it refuses is skipped. */
    uint32_t n = 0, got = 0;
    if ((rc = msr_indices(vm, idx, &n)) < 0)
        goto out;
    for (uint32_t i = 0; i < n;) {
        uint32_t want = n - i;
        struct kvm_msrs *tail = calloc(1, sizeof(*tail) + want * sizeof(struct kvm_msr_entry));
        if (!tail) {
            rc = -ENOMEM;
            goto out;
        }
        tail->nmsrs = want;
        for (uint32_t k = 0; k < want; k++)
            tail->entries[k].index = idx[i + k];
        int r = ioctl(c->fd, KVM_GET_MSRS, tail);
        if (r < 0) {
            free(tail);
            rc = -errno;
            goto out;
        }
        memcpy(&msrs->entries[got], tail->entries, (size_t)r * sizeof(struct kvm_msr_entry));
        got += (uint32_t)r;
        i += (uint32_t)r;
        free(tail);
        if ((uint32_t)r < want)
            i++;    /* this MSR cannot be read here: skip it */
    }

    sbuf_blob(b, &regs, sizeof(regs));
    sbuf_blob(b, &sregs, sizeof(sregs));
    sbuf_blob(b, xsave, (size_t)xs);
    sbuf_blob(b, &xcrs, sizeof(xcrs));
    sbuf_u32(b, got);
    for (uint32_t i = 0; i < got; i++) {
        sbuf_u32(b, msrs->entries[i].index);
        sbuf_u64(b, msrs->entries[i].data);
    }
    sbuf_blob(b, &lapic, sizeof(lapic));
    sbuf_blob(b, &ev, sizeof(ev));
    sbuf_blob(b, &mp, sizeof(mp));
    sbuf_blob(b, &dr, sizeof(dr));
    rc = b->err;
out:
    free(xsave);
    free(idx);
    free(msrs);
    return rc;
}

static int save_irqchip(struct vmx *vm, struct sbuf *b)
{
    for (uint32_t id = 0; id < 3; id++) {
        struct kvm_irqchip chip;
        memset(&chip, 0, sizeof(chip));
        chip.chip_id = id;
        if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &chip) < 0)
            return -errno;
        sbuf_blob(b, &chip, sizeof(chip));
    }
    return b->err;
}

int vmx_state_save_devices(struct vmx *vm, struct sbuf *out)
{
    struct sbuf b;
    int rc = 0;
    for (unsigned i = 0; i < vm->nvcpus && rc == 0; i++) {
        sbuf_init(&b);
        rc = save_vcpu(vm, &vm->vcpus[i], &b);
        section(out, VMX_ST_VCPU, i, &b);
        sbuf_free(&b);
    }
    if (rc)
        return rc;
    sbuf_init(&b);
    rc = save_irqchip(vm, &b);
    section(out, VMX_ST_IRQCHIP, 0, &b);
    sbuf_free(&b);
    if (rc)
        return rc;

    struct kvm_clock_data clk;
    memset(&clk, 0, sizeof(clk));
    if (ioctl(vm->vm_fd, KVM_GET_CLOCK, &clk) < 0)
        return -errno;
    sbuf_init(&b);
    sbuf_blob(&b, &clk, sizeof(clk));
    section(out, VMX_ST_CLOCK, 0, &b);
    sbuf_free(&b);

    pthread_mutex_lock(&vm->dev_lock);
    sbuf_init(&b);
    serial_save(&vm->serial, &b);
    section(out, VMX_ST_SERIAL, 0, &b);
    sbuf_free(&b);
    sbuf_init(&b);
    virtio_mmio_save(&vm->tools.dev, &b);
    section(out, VMX_ST_TOOLS, 0, &b);
    sbuf_free(&b);
    if (vm->balloon_on) {
        sbuf_init(&b);
        virtio_mmio_save(&vm->balloon.dev, &b);
        section(out, VMX_ST_VIRTIO, 1, &b);
        sbuf_free(&b);
    }
    if (vm->blk_on) {
        sbuf_init(&b);
        virtio_mmio_save(&vm->blk.dev, &b);
        section(out, VMX_ST_VIRTIO, KVC_MMIO_SLOT_BLK, &b);
        sbuf_free(&b);
    }
    if (vm->net_on) {
        sbuf_init(&b);
        virtio_mmio_save(&vm->net.dev, &b);
        section(out, VMX_ST_VIRTIO, KVC_MMIO_SLOT_NET, &b);
        sbuf_free(&b);
    }
    pthread_mutex_unlock(&vm->dev_lock);
    return out->err;
}

/* ---- restore ---- */

#define SET(fd, req, p) do { if (ioctl((fd), (req), (p)) < 0) { \
    snprintf(err, errlen, #req ": %s", strerror(errno)); return -errno; } } while (0)

static int blob_exact(struct sreader *r, void *dst, size_t size, const char *what, char *err, size_t errlen)
{
    uint32_t n = sreader_u32(r);
    if (r->err || n != size) {
        snprintf(err, errlen, "%s: stored size %u, this kernel's %zu", what, n, size);
        return -EINVAL;
    }
    sreader_get(r, dst, size);
    return r->err;
}

static int load_vcpu(struct vmx *vm, struct vcpu *c, struct sreader *r, char *err, size_t errlen)
{
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    struct kvm_xcrs xcrs;
    struct kvm_lapic_state lapic;
    struct kvm_vcpu_events ev;
    struct kvm_mp_state mp;
    struct kvm_debugregs dr;
    int rc;
    if ((rc = blob_exact(r, &regs, sizeof(regs), "regs", err, errlen))
        || (rc = blob_exact(r, &sregs, sizeof(sregs), "sregs", err, errlen)))
        return rc;
    uint32_t xs = sreader_u32(r);
    if (r->err || xs < sizeof(struct kvm_xsave) || xs > (1u << 20) || xs > r->len - r->off) {
        snprintf(err, errlen, "xsave: bad size %u", xs);
        return -EINVAL;
    }
    if ((int)xs != xsave_size(vm)) {
        snprintf(err, errlen, "xsave: stored size %u, this kernel's %d", xs, xsave_size(vm));
        return -EINVAL;
    }
    struct kvm_xsave *xsave = malloc(xs);
    if (!xsave)
        return -ENOMEM;
    sreader_get(r, xsave, xs);
    if ((rc = blob_exact(r, &xcrs, sizeof(xcrs), "xcrs", err, errlen)) < 0) {
        free(xsave);
        return rc;
    }
    uint32_t n = sreader_u32(r);
    if (r->err || n > MAX_MSRS) {
        free(xsave);
        snprintf(err, errlen, "bad MSR count %u", n);
        return -EINVAL;
    }
    struct kvm_msrs *msrs = calloc(1, sizeof(*msrs) + (n ? n : 1) * sizeof(struct kvm_msr_entry));
    if (!msrs) {
        free(xsave);
        return -ENOMEM;
    }
    msrs->nmsrs = n;
    for (uint32_t i = 0; i < n; i++) {
        msrs->entries[i].index = sreader_u32(r);
        msrs->entries[i].data = sreader_u64(r);
    }
    rc = 0;
    if ((rc = blob_exact(r, &lapic, sizeof(lapic), "lapic", err, errlen))
        || (rc = blob_exact(r, &ev, sizeof(ev), "vcpu events", err, errlen))
        || (rc = blob_exact(r, &mp, sizeof(mp), "mp state", err, errlen))
        || (rc = blob_exact(r, &dr, sizeof(dr), "debugregs", err, errlen)))
        goto out;

    if (ioctl(c->fd, KVM_SET_SREGS, &sregs) < 0 || ioctl(c->fd, KVM_SET_REGS, &regs) < 0) {
        rc = -errno;
        snprintf(err, errlen, "vcpu %u: set regs: %s", c->index, strerror(errno));
        goto out;
    }
    if (ioctl(c->fd, KVM_SET_XSAVE, xsave) < 0) {
        rc = -errno;
        snprintf(err, errlen, "vcpu %u: KVM_SET_XSAVE: %s", c->index, strerror(errno));
        goto out;
    }
    if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0 && xcrs.nr_xcrs
        && ioctl(c->fd, KVM_SET_XCRS, &xcrs) < 0)
        kvc_warn("vcpu %u: KVM_SET_XCRS: %s", c->index, strerror(errno));
    /* MSRs: a value this kernel refuses is logged and skipped. */
    for (uint32_t i = 0; i < n;) {
        struct kvm_msrs *tail = calloc(1, sizeof(*tail) + (n - i) * sizeof(struct kvm_msr_entry));
        if (!tail) {
            rc = -ENOMEM;
            goto out;
        }
        tail->nmsrs = n - i;
        memcpy(tail->entries, &msrs->entries[i], (n - i) * sizeof(struct kvm_msr_entry));
        int set = ioctl(c->fd, KVM_SET_MSRS, tail);
        free(tail);
        if (set < 0) {
            rc = -errno;
            snprintf(err, errlen, "KVM_SET_MSRS: %s", strerror(errno));
            goto out;
        }
        i += (uint32_t)set;
        if (i < n) {
            kvc_warn("vcpu %u: MSR 0x%x not restored", c->index, msrs->entries[i].index);
            i++;
        }
    }
    if (ioctl(c->fd, KVM_SET_LAPIC, &lapic) < 0 || ioctl(c->fd, KVM_SET_MP_STATE, &mp) < 0
        || ioctl(c->fd, KVM_SET_VCPU_EVENTS, &ev) < 0 || ioctl(c->fd, KVM_SET_DEBUGREGS, &dr) < 0) {
        rc = -errno;
        snprintf(err, errlen, "vcpu %u: set lapic/mp/events/debugregs: %s", c->index, strerror(errno));
        goto out;
    }
out:
    free(xsave);
    free(msrs);
    return rc;
}

int vmx_state_load_section(struct vmx *vm, uint32_t type, uint32_t inst, const uint8_t *data,
                           uint64_t len, char *err, size_t errlen)
{
    struct sreader r;
    int rc = 0;
    sreader_init(&r, data, len);
    switch (type) {
    case VMX_ST_VCPU:
        if (inst >= vm->nvcpus) {
            snprintf(err, errlen, "state for vCPU %u, VM has %u", inst, vm->nvcpus);
            return -EINVAL;
        }
        return load_vcpu(vm, &vm->vcpus[inst], &r, err, errlen);
    case VMX_ST_IRQCHIP:
        for (uint32_t id = 0; id < 3; id++) {
            struct kvm_irqchip chip;
            if ((rc = blob_exact(&r, &chip, sizeof(chip), "irqchip", err, errlen)) < 0)
                return rc;
            if (chip.chip_id != id) {
                snprintf(err, errlen, "irqchip %u out of order", chip.chip_id);
                return -EINVAL;
            }
            SET(vm->vm_fd, KVM_SET_IRQCHIP, &chip);
        }
        return 0;
    case VMX_ST_CLOCK: {
        struct kvm_clock_data clk;
        if ((rc = blob_exact(&r, &clk, sizeof(clk), "clock", err, errlen)) < 0)
            return rc;
        struct kvm_clock_data set = { .clock = clk.clock };
        SET(vm->vm_fd, KVM_SET_CLOCK, &set);
        return 0;
    }
    case VMX_ST_SERIAL:
        pthread_mutex_lock(&vm->dev_lock);
        rc = serial_load(&vm->serial, &r);
        pthread_mutex_unlock(&vm->dev_lock);
        break;
    case VMX_ST_TOOLS:
        pthread_mutex_lock(&vm->dev_lock);
        rc = virtio_mmio_load(&vm->tools.dev, &r);
        pthread_mutex_unlock(&vm->dev_lock);
        break;
    case VMX_ST_DISK: {
        char name[DISK_NAME_MAX];
        memset(name, 0, sizeof(name));
        sreader_blob(&r, name, sizeof(name) - 1);
        uint64_t id = sreader_u64(&r);
        if (r.err) {
            snprintf(err, errlen, "bad disk section");
            return -EINVAL;
        }
        if (!vm->blk_on || vm->blk.readonly) {
            snprintf(err, errlen, "the snapshot has disk state, this VM has no writable disk");
            return -EINVAL;
        }
        pthread_mutex_lock(&vm->dev_lock);
        rc = disk_revert(&vm->blk.disk, name, id, err, errlen);
        pthread_mutex_unlock(&vm->dev_lock);
        return rc;
    }
    case VMX_ST_VIRTIO:
        if (inst == KVC_MMIO_SLOT_BLK && vm->blk_on) {
            pthread_mutex_lock(&vm->dev_lock);
            rc = virtio_mmio_load(&vm->blk.dev, &r);
            pthread_mutex_unlock(&vm->dev_lock);
            break;
        }
        if (inst == KVC_MMIO_SLOT_NET && vm->net_on) {
            pthread_mutex_lock(&vm->dev_lock);
            rc = virtio_mmio_load(&vm->net.dev, &r);
            pthread_mutex_unlock(&vm->dev_lock);
            break;
        }
        if (inst != 1 || !vm->balloon_on) {
            snprintf(err, errlen, "state for virtio slot %u, which this VM does not have", inst);
            return -EINVAL;
        }
        pthread_mutex_lock(&vm->dev_lock);
        rc = virtio_mmio_load(&vm->balloon.dev, &r);
        pthread_mutex_unlock(&vm->dev_lock);
        break;
    default:
        snprintf(err, errlen, "unknown section type %u", type);
        return -EINVAL;
    }
    if (rc < 0)
        snprintf(err, errlen, "section %u: bad device state", type);
    return rc;
}

/* ---- files ---- */

static bool page_zero(const uint8_t *p)
{
    const uint64_t *q = (const uint64_t *)(const void *)p;
    for (size_t i = 0; i < PAGE / 8; i++)
        if (q[i])
            return false;
    return true;
}

static int wr(FILE *f, const void *p, size_t n)
{
    return fwrite(p, 1, n, f) == n ? 0 : -EIO;
}

static int write_memory(struct vmx *vm, FILE *f, uint64_t *pages_out)
{
    /* Section header first, its length patched once known. */
    struct sbuf h;
    sbuf_init(&h);
    sbuf_u32(&h, VMX_ST_MEMORY);
    sbuf_u32(&h, 0);
    sbuf_u64(&h, 0);
    off_t at = ftello(f);
    int rc = h.err ? h.err : wr(f, h.p, h.len);
    sbuf_free(&h);
    if (rc)
        return rc;
    uint64_t len = 0, pages = 0, npages = vm->mem.size / PAGE;
    for (uint64_t i = 0; i < npages && !rc;) {
        if (page_zero(vm->mem.hva + i * PAGE)) {
            i++;
            continue;
        }
        uint64_t j = i;
        while (j < npages && j - i < 65536 && !page_zero(vm->mem.hva + j * PAGE))
            j++;
        struct sbuf run;
        sbuf_init(&run);
        sbuf_u64(&run, i * PAGE);
        sbuf_u32(&run, (uint32_t)(j - i));
        rc = run.err ? run.err : wr(f, run.p, run.len);
        sbuf_free(&run);
        if (!rc)
            rc = wr(f, vm->mem.hva + i * PAGE, (j - i) * PAGE);
        len += 12 + (j - i) * PAGE;
        pages += j - i;
        i = j;
    }
    if (rc)
        return rc;
    off_t end = ftello(f);
    uint8_t l[8];
    for (int i = 0; i < 8; i++)
        l[i] = (uint8_t)(len >> (8 * i));
    if (fseeko(f, at + 8, SEEK_SET) < 0 || wr(f, l, 8) || fseeko(f, end, SEEK_SET) < 0)
        return -EIO;
    *pages_out = pages;
    return 0;
}

int vmx_snapshot_save(struct vmx *vm, const char *path, struct vmx_snapshot_info *info)
{
    uint64_t t0 = vmx_now_ns();
    char tmp[PATH_MAX];
    struct sbuf b, hdr;
    int rc;
    memset(info, 0, sizeof(*info));
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
        return -ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        return -errno;
    }
    setvbuf(f, NULL, _IOFBF, 1 << 20);

    sbuf_init(&b);
    sbuf_init(&hdr);
    sbuf_u64(&hdr, VMX_STATE_MAGIC);
    sbuf_u32(&hdr, VMX_STATE_VERSION);
    sbuf_u64(&hdr, vm->mem.size);
    sbuf_u32(&hdr, vm->nvcpus);
    sbuf_u32(&b, VMX_ST_HEADER);
    sbuf_u32(&b, 0);
    sbuf_u64(&b, hdr.len);
    sbuf_put(&b, hdr.p, hdr.len);
    rc = b.err ? b.err : wr(f, b.p, b.len);
    sbuf_free(&b);
    sbuf_free(&hdr);
    /* The disk: freeze its top layer (a new delta takes the writes from
     * now on) and record which layer holds the state of this snapshot. */
    char frozen[DISK_NAME_MAX] = "";
    if (!rc && vm->blk_on && !vm->blk.readonly) {
        char why[256] = "";
        uint64_t id = 0;
        pthread_mutex_lock(&vm->dev_lock);
        rc = disk_snapshot(&vm->blk.disk, frozen, &id, why, sizeof(why));
        pthread_mutex_unlock(&vm->dev_lock);
        if (rc) {
            kvc_err("snapshot: disk: %s", why);
            frozen[0] = 0;
        } else {
            struct sbuf body;
            sbuf_init(&body);
            sbuf_init(&b);
            sbuf_blob(&body, frozen, strlen(frozen));
            sbuf_u64(&body, id);
            section(&b, VMX_ST_DISK, 0, &body);
            rc = b.err ? b.err : wr(f, b.p, b.len);
            sbuf_free(&b);
            sbuf_free(&body);
        }
    }
    if (!rc)
        rc = write_memory(vm, f, &info->memory_pages);
    if (!rc) {
        sbuf_init(&b);
        rc = vmx_state_save_devices(vm, &b);
        sbuf_u32(&b, VMX_ST_END);
        sbuf_u32(&b, 0);
        sbuf_u64(&b, 0);
        if (!rc)
            rc = b.err ? b.err : wr(f, b.p, b.len);
        sbuf_free(&b);
    }
    if (!rc && fflush(f) != 0)
        rc = -errno;
    if (!rc && fsync(fileno(f)) < 0)
        rc = -errno;
    if (!rc)
        info->bytes = (uint64_t)ftello(f);
    if (fclose(f) != 0 && !rc)
        rc = -EIO;
    if (!rc && rename(tmp, path) < 0)
        rc = -errno;
    if (rc) {
        unlink(tmp);
        if (frozen[0]) {
            pthread_mutex_lock(&vm->dev_lock);
            disk_snapshot_abort(&vm->blk.disk, frozen);
            pthread_mutex_unlock(&vm->dev_lock);
        }
    }
    info->duration_us = (vmx_now_ns() - t0) / 1000;
    return rc;
}

static int rd(FILE *f, void *p, size_t n)
{
    return fread(p, 1, n, f) == n ? 0 : -EINVAL;
}

int vmx_snapshot_restore(struct vmx *vm, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    int rc = 0;
    uint8_t *data = NULL;
    bool have_header = false, have_end = false;
    unsigned vcpus_seen = 0;
    if (!f) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return rc;
    }
    while (!rc && !have_end) {
        uint8_t sh[16];
        if (rd(f, sh, sizeof(sh))) {
            snprintf(err, errlen, "truncated file (no END section)");
            rc = -EINVAL;
            break;
        }
        struct sreader r;
        sreader_init(&r, sh, sizeof(sh));
        uint32_t type = sreader_u32(&r), inst = sreader_u32(&r);
        uint64_t len = sreader_u64(&r);
        if (!have_header && type != VMX_ST_HEADER) {
            snprintf(err, errlen, "not a vmx snapshot");
            rc = -EINVAL;
            break;
        }
        if (type == VMX_ST_MEMORY) {
            uint64_t left = len;
            while (left && !rc) {
                uint8_t rh[12];
                if (left < 12 || rd(f, rh, 12)) {
                    rc = -EINVAL;
                    break;
                }
                sreader_init(&r, rh, 12);
                uint64_t gpa = sreader_u64(&r);
                uint64_t n = sreader_u32(&r);
                left -= 12;
                void *dst = guest_mem_ptr(&vm->mem, gpa, n * PAGE);
                if (!dst || n * PAGE > left || (gpa % PAGE) || rd(f, dst, n * PAGE)) {
                    rc = -EINVAL;
                    break;
                }
                left -= n * PAGE;
            }
            if (rc)
                snprintf(err, errlen, "bad memory section");
            continue;
        }
        if (type == VMX_ST_END) {
            have_end = true;
            break;
        }
        if (len > (64u << 20)) {
            snprintf(err, errlen, "section %u too large (%llu bytes)", type, (unsigned long long)len);
            rc = -EINVAL;
            break;
        }
        free(data);
        data = malloc(len ? len : 1);
        if (!data) {
            rc = -ENOMEM;
            break;
        }
        if (rd(f, data, len)) {
            snprintf(err, errlen, "truncated section %u", type);
            rc = -EINVAL;
            break;
        }
        if (type == VMX_ST_HEADER) {
            sreader_init(&r, data, len);
            uint64_t magic = sreader_u64(&r);
            uint32_t ver = sreader_u32(&r);
            uint64_t mem = sreader_u64(&r);
            uint32_t nv = sreader_u32(&r);
            if (r.err || magic != VMX_STATE_MAGIC || ver != VMX_STATE_VERSION) {
                snprintf(err, errlen, "not a vmx snapshot (or version %u)", ver);
                rc = -EINVAL;
            } else if (mem != vm->mem.size || nv != vm->nvcpus) {
                snprintf(err, errlen, "snapshot has %llu MiB and %u vCPUs; config says %llu MiB and %u",
                         (unsigned long long)(mem >> 20), nv,
                         (unsigned long long)(vm->mem.size >> 20), vm->nvcpus);
                rc = -EINVAL;
            }
            have_header = true;
            continue;
        }
        if (type == VMX_ST_VCPU)
            vcpus_seen++;
        rc = vmx_state_load_section(vm, type, inst, data, len, err, errlen);
    }
    if (!rc && vcpus_seen != vm->nvcpus) {
        snprintf(err, errlen, "snapshot holds %u vCPU states, VM has %u", vcpus_seen, vm->nvcpus);
        rc = -EINVAL;
    }
    free(data);
    fclose(f);
    return rc;
}
