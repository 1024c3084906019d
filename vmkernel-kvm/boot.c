/* Guest loading and boot vCPU state (see boot.h). */
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vmkernel-kvm/boot.h"
#include "vmkernel-kvm/guest/kvc_guest_abi.h"

#define ERR(...) (snprintf(err, errlen, __VA_ARGS__), -EINVAL)

int boot_load_elf(struct guest_mem *m, const uint8_t *img, size_t len, uint64_t *entry,
                  char *err, size_t errlen)
{
    Elf64_Ehdr eh;
    if (len < sizeof(eh))
        return ERR("image too small for an ELF header");
    memcpy(&eh, img, sizeof(eh));
    if (memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS64
        || eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_machine != EM_X86_64
        || eh.e_type != ET_EXEC)
        return ERR("not a little-endian x86-64 ELF executable");
    if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > 64
        || eh.e_phoff > len || (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr) > len - eh.e_phoff)
        return ERR("bad program header table");
    bool entry_ok = false;
    unsigned loads = 0;
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        memcpy(&ph, img + eh.e_phoff + i * sizeof(ph), sizeof(ph));
        if (ph.p_type != PT_LOAD)
            continue;
        if (ph.p_filesz > ph.p_memsz || ph.p_offset > len || ph.p_filesz > len - ph.p_offset)
            return ERR("segment %u: file range outside the image", i);
        if (ph.p_paddr < KVC_GPA_IMAGE_MIN)
            return ERR("segment %u: loads below 1 MiB (0x%llx)", i, (unsigned long long)ph.p_paddr);
        uint8_t *dst = guest_mem_ptr(m, ph.p_paddr, ph.p_memsz);
        if (!dst) {
            snprintf(err, errlen, "segment %u: 0x%llx+0x%llx does not fit in guest RAM", i,
                     (unsigned long long)ph.p_paddr, (unsigned long long)ph.p_memsz);
            return -E2BIG;
        }
        memcpy(dst, img + ph.p_offset, ph.p_filesz);
        memset(dst + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
        if (eh.e_entry >= ph.p_paddr && eh.e_entry - ph.p_paddr < ph.p_memsz)
            entry_ok = true;
        loads++;
    }
    if (!loads)
        return ERR("no loadable segment");
    if (!entry_ok)
        return ERR("entry point 0x%llx is not in a loaded segment", (unsigned long long)eh.e_entry);
    *entry = eh.e_entry;
    return 0;
}

int boot_write_longmode_tables(struct guest_mem *m, int linux_layout)
{
    uint64_t gdt[4] = { 0 };
    const uint64_t code = 0x00af9a000000ffffull, data = 0x00cf92000000ffffull;
    if (linux_layout) {
        gdt[2] = code;
        gdt[3] = data;
    } else {
        gdt[1] = code;
        gdt[2] = data;
    }
    if (guest_mem_write(m, KVC_GPA_GDT, gdt, sizeof(gdt)) < 0)
        return -E2BIG;
    uint64_t *pml4 = guest_mem_ptr(m, KVC_GPA_PML4, 4096);
    uint64_t *pdpt = guest_mem_ptr(m, KVC_GPA_PDPT, 4096);
    uint64_t *pd = guest_mem_ptr(m, KVC_GPA_PD, 4 * 4096);
    if (!pml4 || !pdpt || !pd)
        return -E2BIG;
    memset(pml4, 0, 4096);
    memset(pdpt, 0, 4096);
    /* Present | writable | user: the test guest runs its workloads at CPL3
     * over the same identity map. */
    pml4[0] = KVC_GPA_PDPT | 7;
    for (unsigned i = 0; i < 4; i++)
        pdpt[i] = (KVC_GPA_PD + 4096ull * i) | 7;
    for (unsigned i = 0; i < 2048; i++)
        pd[i] = ((uint64_t)i << 21) | 0x87;     /* 2 MiB page */
    return 0;
}

static void seg(struct kvm_segment *s, uint16_t sel, uint8_t type, int code)
{
    memset(s, 0, sizeof(*s));
    s->base = 0;
    s->limit = 0xffffffff;
    s->selector = sel;
    s->type = type;
    s->present = 1;
    s->s = 1;
    s->g = 1;
    s->l = code ? 1 : 0;
    s->db = code ? 0 : 1;
}

void boot_longmode_sregs(struct kvm_sregs *s, int linux_layout)
{
    uint16_t cs = linux_layout ? 0x10 : 0x08, ds = linux_layout ? 0x18 : 0x10;
    seg(&s->cs, cs, 11, 1);
    seg(&s->ds, ds, 3, 0);
    s->es = s->fs = s->gs = s->ss = s->ds;
    memset(&s->tr, 0, sizeof(s->tr));
    s->tr.type = 11;
    s->tr.present = 1;
    s->tr.limit = 0x67;
    memset(&s->ldt, 0, sizeof(s->ldt));
    s->ldt.type = 2;
    s->ldt.unusable = 1;
    s->gdt.base = KVC_GPA_GDT;
    s->gdt.limit = 4 * 8 - 1;
    s->idt.base = 0;
    s->idt.limit = 0;
    s->cr0 = 0x80050033ull;     /* PG | WP | NE | ET | MP | PE */
    s->cr3 = KVC_GPA_PML4;
    s->cr4 = 0x620;             /* OSXMMEXCPT | OSFXSR | PAE */
    s->efer = 0x500;            /* LMA | LME */
}

void boot_longmode_regs(struct kvm_regs *r, uint64_t entry, uint64_t rdi, uint64_t rsi)
{
    memset(r, 0, sizeof(*r));
    r->rip = entry;
    r->rdi = rdi;
    r->rsi = rsi;
    r->rflags = 2;
}

/* ---- Linux ---- */

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)rd16(p) | (uint32_t)rd16(p + 2) << 16; }
static void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void wr32(uint8_t *p, uint32_t v) { wr16(p, (uint16_t)v); wr16(p + 2, (uint16_t)(v >> 16)); }
static void wr64(uint8_t *p, uint64_t v) { wr32(p, (uint32_t)v); wr32(p + 4, (uint32_t)(v >> 32)); }

static void e820_add(uint8_t *zp, unsigned *n, uint64_t addr, uint64_t size, uint32_t type)
{
    if (*n >= BP_E820_MAX || size == 0)
        return;
    uint8_t *e = zp + BP_E820_TABLE + 20 * *n;
    wr64(e, addr);
    wr64(e + 8, size);
    wr32(e + 16, type);
    (*n)++;
}

int boot_linux_load(struct guest_mem *m, const uint8_t *bz, size_t bzlen,
                    const uint8_t *initrd, size_t initrd_len, const char *cmdline,
                    struct boot_linux_layout *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (bzlen < BP_INIT_SIZE + 4)
        return ERR("bzImage too small for a setup header");
    if (rd16(bz + BP_BOOT_FLAG) != 0xaa55 || memcmp(bz + BP_HEADER_MAGIC, "HdrS", 4))
        return ERR("not a bzImage (no boot flag or HdrS magic)");
    uint16_t version = rd16(bz + BP_VERSION);
    if (version < 0x020c)
        return ERR("boot protocol %u.%u too old (need 2.12 for the 64-bit entry)",
                   version >> 8, version & 0xff);
    if (!(bz[BP_XLOADFLAGS] & 1))
        return ERR("kernel has no 64-bit entry (XLF_KERNEL_64)");
    if (!(bz[BP_LOADFLAGS] & 1))
        return ERR("kernel is not a bzImage (LOADED_HIGH unset)");
    unsigned setup_sects = bz[BP_SETUP_SECTS] ? bz[BP_SETUP_SECTS] : 4;
    size_t setup_size = (size_t)(setup_sects + 1) * 512;
    if (setup_size >= bzlen)
        return ERR("setup (%zu bytes) covers the whole image", setup_size);
    size_t hdr_end = BP_JUMP + 2 + bz[BP_JUMP + 1];    /* the jump's offset ends the header */
    if (hdr_end > setup_size || hdr_end > 4096 || hdr_end < BP_INIT_SIZE + 4)
        return ERR("bad setup header length");

    uint64_t ksize = bzlen - setup_size;
    uint64_t kaddr = BOOT_LINUX_KERNEL_FIXED;
    if (bz[BP_RELOCATABLE]) {
        uint32_t align = rd32(bz + BP_KERNEL_ALIGN);
        if (align == 0 || (align & (align - 1)) || align > (1u << 30))
            return ERR("bad kernel_alignment 0x%x", align);
        kaddr = (BOOT_LINUX_KERNEL + align - 1) & ~(uint64_t)(align - 1);
    }
    uint64_t init_size = rd32(bz + BP_INIT_SIZE);
    uint64_t span = init_size > ksize ? init_size : ksize;
    uint8_t *kdst = guest_mem_ptr(m, kaddr, span);
    if (!kdst) {
        snprintf(err, errlen, "kernel needs 0x%llx bytes at 0x%llx: more than guest RAM",
                 (unsigned long long)span, (unsigned long long)kaddr);
        return -E2BIG;
    }
    memcpy(kdst, bz + setup_size, ksize);

    uint8_t *zp = guest_mem_ptr(m, BOOT_LINUX_ZERO_PAGE, 4096);
    if (!zp)
        return -E2BIG;
    memset(zp, 0, 4096);
    memcpy(zp + BP_HDR, bz + BP_HDR, hdr_end - BP_HDR);
    zp[BP_TYPE_OF_LOADER] = 0xff;
    zp[BP_LOADFLAGS] |= 0x80;                   /* CAN_USE_HEAP */
    wr16(zp + BP_HEAP_END_PTR, 0xfe00);
    wr32(zp + BP_CODE32_START, (uint32_t)kaddr);

    size_t cl = cmdline ? strlen(cmdline) : 0;
    uint32_t cl_max = rd32(bz + BP_CMDLINE_SIZE);
    if (cl_max == 0 || cl_max > BOOT_LINUX_CMDLINE_MAX - 1)
        cl_max = BOOT_LINUX_CMDLINE_MAX - 1;
    if (cl > cl_max)
        return ERR("command line is %zu bytes; the kernel takes at most %u", cl, cl_max);
    if (guest_mem_write(m, BOOT_LINUX_CMDLINE, cmdline ? cmdline : "", cl + 1) < 0)
        return -E2BIG;
    wr32(zp + BP_CMD_LINE_PTR, BOOT_LINUX_CMDLINE);

    if (initrd_len) {
        uint64_t max = rd32(bz + BP_INITRD_ADDR_MAX);
        uint64_t top = m->size < max + 1 ? m->size : max + 1;
        if (initrd_len > top)
            return ERR("initrd of %zu bytes does not fit in guest RAM", initrd_len);
        uint64_t at = (top - initrd_len) & ~0xfffull;
        if (at < kaddr + span) {
            snprintf(err, errlen, "initrd of %zu bytes does not fit above the kernel", initrd_len);
            return -E2BIG;
        }
        if (guest_mem_write(m, at, initrd, initrd_len) < 0)
            return -E2BIG;
        wr32(zp + BP_RAMDISK_IMAGE, (uint32_t)at);
        wr32(zp + BP_RAMDISK_SIZE, (uint32_t)initrd_len);
        out->initrd = at;
        out->initrd_size = initrd_len;
    }

    unsigned n = 0;
    e820_add(zp, &n, 0, 0x9fc00, E820_RAM);
    e820_add(zp, &n, 0x9fc00, 0xa0000 - 0x9fc00, E820_RESERVED);
    e820_add(zp, &n, 0xf0000, 0x10000, E820_RESERVED);
    e820_add(zp, &n, 0x100000, m->size - 0x100000, E820_RAM);
    zp[BP_E820_ENTRIES] = (uint8_t)n;

    out->zero_page = BOOT_LINUX_ZERO_PAGE;
    out->cmdline = BOOT_LINUX_CMDLINE;
    out->kernel = kaddr;
    out->kernel_size = ksize;
    out->entry = kaddr + 0x200;
    out->e820_entries = n;
    return 0;
}
