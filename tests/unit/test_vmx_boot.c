/* Guest loading: the test guest's ELF loader and long-mode tables, and the
 * Linux boot protocol's structures (zero page, e820, command line, initrd)
 * built from a synthetic bzImage; plus the VM config file. */
#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "vmkernel-kvm/boot.h"
#include "vmkernel-kvm/guest/kvc_guest_abi.h"
#include "vmkernel-kvm/vmx.h"

#define RAM (64u << 20)
static struct guest_mem mem;
static char err[512];

static int setup(void **st)
{
    (void)st;
    mem.fd = -1;
    mem.size = RAM;
    mem.hva = calloc(1, RAM);
    return mem.hva ? 0 : -1;
}

static int teardown(void **st)
{
    (void)st;
    free(mem.hva);
    return 0;
}

static uint16_t r16(uint64_t gpa) { uint16_t v; memcpy(&v, mem.hva + gpa, 2); return v; }
static uint32_t r32(uint64_t gpa) { uint32_t v; memcpy(&v, mem.hva + gpa, 4); return v; }
static uint64_t r64(uint64_t gpa) { uint64_t v; memcpy(&v, mem.hva + gpa, 8); return v; }

/* An ELF with one PT_LOAD of FILESZ bytes of 0xaa at PADDR, MEMSZ in memory. */
static size_t make_elf(uint8_t *buf, uint64_t paddr, uint64_t filesz, uint64_t memsz, uint64_t entry)
{
    Elf64_Ehdr eh = { 0 };
    memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_type = ET_EXEC;
    eh.e_machine = EM_X86_64;
    eh.e_entry = entry;
    eh.e_phoff = sizeof(eh);
    eh.e_phentsize = sizeof(Elf64_Phdr);
    eh.e_phnum = 1;
    Elf64_Phdr ph = { 0 };
    ph.p_type = PT_LOAD;
    ph.p_offset = 0x1000;
    ph.p_paddr = ph.p_vaddr = paddr;
    ph.p_filesz = filesz;
    ph.p_memsz = memsz;
    memcpy(buf, &eh, sizeof(eh));
    memcpy(buf + sizeof(eh), &ph, sizeof(ph));
    memset(buf + 0x1000, 0xaa, filesz);
    return 0x1000 + filesz;
}

static void test_elf_load(void **st)
{
    (void)st;
    uint8_t *img = calloc(1, 0x3000);
    size_t len = make_elf(img, 0x100000, 0x800, 0x2000, 0x100010);
    memset(mem.hva + 0x100000, 0x55, 0x3000);
    uint64_t entry = 0;
    assert_int_equal(boot_load_elf(&mem, img, len, &entry, err, sizeof(err)), 0);
    assert_true(entry == 0x100010);
    assert_int_equal(mem.hva[0x100000], 0xaa);
    assert_int_equal(mem.hva[0x1007ff], 0xaa);
    assert_int_equal(mem.hva[0x100800], 0);         /* bss zeroed */
    assert_int_equal(mem.hva[0x101fff], 0);
    assert_int_equal(mem.hva[0x102000], 0x55);      /* beyond memsz untouched */
    free(img);
}

static void test_elf_rejects(void **st)
{
    (void)st;
    uint8_t *img = calloc(1, 0x3000);
    uint64_t entry;
    size_t len = make_elf(img, 0x100000, 0x800, 0x800, 0x100000);
    assert_int_equal(boot_load_elf(&mem, img, 10, &entry, err, sizeof(err)), -EINVAL);
    assert_int_equal(boot_load_elf(&mem, img, len - 1, &entry, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "outside the image"));
    len = make_elf(img, 0x1000, 0x800, 0x800, 0x1000);          /* below 1 MiB */
    assert_int_equal(boot_load_elf(&mem, img, len, &entry, err, sizeof(err)), -EINVAL);
    len = make_elf(img, RAM - 0x100, 0x800, 0x800, RAM - 0x100);    /* past RAM */
    assert_int_equal(boot_load_elf(&mem, img, len, &entry, err, sizeof(err)), -E2BIG);
    len = make_elf(img, 0x100000, 0x800, UINT64_MAX - 0x1000, 0x100000);   /* wraps */
    assert_int_not_equal(boot_load_elf(&mem, img, len, &entry, err, sizeof(err)), 0);
    len = make_elf(img, 0x100000, 0x800, 0x800, 0x900000);      /* entry outside */
    assert_int_equal(boot_load_elf(&mem, img, len, &entry, err, sizeof(err)), -EINVAL);
    len = make_elf(img, 0x100000, 0x800, 0x800, 0x100000);
    img[EI_CLASS] = ELFCLASS32;
    assert_int_equal(boot_load_elf(&mem, img, len, &entry, err, sizeof(err)), -EINVAL);
    len = make_elf(img, 0x100000, 0x800, 0x800, 0x100000);
    Elf64_Ehdr *eh = (Elf64_Ehdr *)(void *)img;
    eh->e_phnum = 0xffff;
    assert_int_equal(boot_load_elf(&mem, img, len, &entry, err, sizeof(err)), -EINVAL);
    free(img);
}

static void test_longmode_tables(void **st)
{
    (void)st;
    assert_int_equal(boot_write_longmode_tables(&mem, 0), 0);
    assert_true(r64(KVC_GPA_GDT + 8) == 0x00af9a000000ffffull);     /* CS 0x08: 64-bit code */
    assert_true(r64(KVC_GPA_GDT + 16) == 0x00cf92000000ffffull);
    assert_true(r64(KVC_GPA_PML4) == (KVC_GPA_PDPT | 7));
    assert_true(r64(KVC_GPA_PDPT + 3 * 8) == ((KVC_GPA_PD + 3 * 4096) | 7));
    assert_true(r64(KVC_GPA_PD + 8 * 2047) == ((2047ull << 21) | 0x87));
    struct kvm_sregs s;
    memset(&s, 0, sizeof(s));
    boot_longmode_sregs(&s, 0);
    assert_int_equal(s.cs.selector, 0x08);
    assert_int_equal(s.cs.l, 1);
    assert_true(s.efer == 0x500);
    assert_true(s.cr3 == KVC_GPA_PML4);
    assert_true(s.cr0 & 0x80000001);
    assert_true(s.cr4 & 0x20);
    boot_longmode_sregs(&s, 1);
    assert_int_equal(s.cs.selector, 0x10);
    assert_int_equal(s.ds.selector, 0x18);
    assert_int_equal(boot_write_longmode_tables(&mem, 1), 0);
    assert_true(r64(KVC_GPA_GDT + 16) == 0x00af9a000000ffffull);    /* __BOOT_CS */
    assert_true(r64(KVC_GPA_GDT + 24) == 0x00cf92000000ffffull);    /* __BOOT_DS */
    struct kvm_regs r;
    boot_longmode_regs(&r, 0x1234, 1, 0x7000);
    assert_true(r.rip == 0x1234 && r.rdi == 1 && r.rsi == 0x7000 && r.rflags == 2);
}

/* A bzImage with 4 setup sectors and KSIZE bytes of "kernel". */
static uint8_t *make_bz(size_t ksize, size_t *len, uint16_t version, uint8_t xload, int reloc)
{
    size_t setup = 5 * 512;
    *len = setup + ksize;
    uint8_t *bz = calloc(1, *len);
    bz[0x1f1] = 4;
    bz[0x1fe] = 0x55;
    bz[0x1ff] = 0xaa;
    bz[0x200] = 0xeb;
    bz[0x201] = 0x6a;               /* header ends at 0x26c */
    memcpy(bz + 0x202, "HdrS", 4);
    memcpy(bz + 0x206, &version, 2);
    bz[0x211] = 0x01;               /* LOADED_HIGH */
    uint32_t v = 0x7fffffff;
    memcpy(bz + 0x22c, &v, 4);      /* initrd_addr_max */
    v = 0x200000;
    memcpy(bz + 0x230, &v, 4);      /* kernel_alignment */
    bz[0x234] = (uint8_t)reloc;
    bz[0x236] = xload;
    v = 2048;
    memcpy(bz + 0x238, &v, 4);      /* cmdline_size */
    v = 0x800000;
    memcpy(bz + 0x260, &v, 4);      /* init_size */
    memset(bz + setup, 0xcc, ksize);
    return bz;
}

static void test_linux_layout(void **st)
{
    (void)st;
    size_t len;
    uint8_t *bz = make_bz(0x10000, &len, 0x020f, 0x03, 1);
    uint8_t initrd[8192];
    memset(initrd, 0x77, sizeof(initrd));
    struct boot_linux_layout l;
    assert_int_equal(boot_linux_load(&mem, bz, len, initrd, sizeof(initrd), "console=ttyS0 quiet",
                                     &l, err, sizeof(err)), 0);
    assert_true(l.kernel == BOOT_LINUX_KERNEL);
    assert_true(l.entry == BOOT_LINUX_KERNEL + 0x200);
    assert_int_equal(mem.hva[l.kernel], 0xcc);
    assert_int_equal(mem.hva[l.kernel + 0xffff], 0xcc);
    uint64_t zp = BOOT_LINUX_ZERO_PAGE;
    assert_int_equal(mem.hva[zp + BP_TYPE_OF_LOADER], 0xff);
    assert_int_equal(mem.hva[zp + BP_LOADFLAGS] & 0x81, 0x81);
    assert_int_equal(r16(zp + BP_BOOT_FLAG), 0xaa55);
    assert_int_equal(r32(zp + BP_HEADER_MAGIC), 0x53726448);
    assert_int_equal(r32(zp + BP_CMD_LINE_PTR), BOOT_LINUX_CMDLINE);
    assert_string_equal((char *)mem.hva + BOOT_LINUX_CMDLINE, "console=ttyS0 quiet");
    assert_int_equal(r32(zp + BP_CODE32_START), BOOT_LINUX_KERNEL);
    /* initrd: at the top of RAM, page aligned, above the kernel */
    uint32_t ird = r32(zp + BP_RAMDISK_IMAGE);
    assert_int_equal(r32(zp + BP_RAMDISK_SIZE), sizeof(initrd));
    assert_int_equal(ird % 4096, 0);
    assert_true(ird + sizeof(initrd) <= RAM && ird >= RAM - 2 * sizeof(initrd));
    assert_int_equal(mem.hva[ird], 0x77);
    /* e820: low RAM, two reserved holes, RAM from 1 MiB to the end */
    assert_int_equal(mem.hva[zp + BP_E820_ENTRIES], 4);
    assert_int_equal(l.e820_entries, 4);
    uint64_t e = zp + BP_E820_TABLE;
    assert_true(r64(e) == 0 && r64(e + 8) == 0x9fc00 && r32(e + 16) == E820_RAM);
    assert_int_equal(r32(e + 20 + 16), E820_RESERVED);
    assert_true(r64(e + 60) == 0x100000 && r64(e + 68) == RAM - 0x100000 && r32(e + 76) == E820_RAM);
    free(bz);
}

static void test_linux_rejects(void **st)
{
    (void)st;
    size_t len;
    struct boot_linux_layout l;
    uint8_t *bz = make_bz(0x1000, &len, 0x020b, 0x03, 1);       /* protocol 2.11 */
    assert_int_equal(boot_linux_load(&mem, bz, len, NULL, 0, "", &l, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "2.11"));
    free(bz);
    bz = make_bz(0x1000, &len, 0x020f, 0x00, 1);                /* no 64-bit entry */
    assert_int_equal(boot_linux_load(&mem, bz, len, NULL, 0, "", &l, err, sizeof(err)), -EINVAL);
    free(bz);
    bz = make_bz(0x1000, &len, 0x020f, 0x03, 1);
    bz[0x1fe] = 0;                                              /* no boot flag */
    assert_int_equal(boot_linux_load(&mem, bz, len, NULL, 0, "", &l, err, sizeof(err)), -EINVAL);
    bz[0x1fe] = 0x55;
    bz[0x1f1] = 200;                                            /* setup covers it all */
    assert_int_equal(boot_linux_load(&mem, bz, len, NULL, 0, "", &l, err, sizeof(err)), -EINVAL);
    bz[0x1f1] = 4;
    char longcl[3000];
    memset(longcl, 'a', sizeof(longcl) - 1);
    longcl[sizeof(longcl) - 1] = 0;
    assert_int_equal(boot_linux_load(&mem, bz, len, NULL, 0, longcl, &l, err, sizeof(err)), -EINVAL);
    uint32_t big = 0x7fffffff;
    memcpy(bz + 0x260, &big, 4);                                /* init_size past RAM */
    assert_int_equal(boot_linux_load(&mem, bz, len, NULL, 0, "", &l, err, sizeof(err)), -E2BIG);
    assert_int_equal(boot_linux_load(&mem, bz, 100, NULL, 0, "", &l, err, sizeof(err)), -EINVAL);
    free(bz);
    /* an initrd larger than RAM */
    bz = make_bz(0x1000, &len, 0x020f, 0x03, 0);
    uint8_t *ird = calloc(1, RAM + 4096);
    assert_int_not_equal(boot_linux_load(&mem, bz, len, ird, RAM + 4096, "", &l, err, sizeof(err)), 0);
    /* non-relocatable: loads at 1 MiB */
    assert_int_equal(boot_linux_load(&mem, bz, len, NULL, 0, "", &l, err, sizeof(err)), 0);
    assert_true(l.kernel == BOOT_LINUX_KERNEL_FIXED);
    free(ird);
    free(bz);
}

static void test_config(void **st)
{
    (void)st;
    struct vmx_config c;
    assert_int_equal(vmx_config_parse("/vms/a/vm.conf",
        "name = a\nmemory_mb = 128\nvcpus = 2\nguest.image = guest.elf\n"
        "guest.workload = dirty\nguest.dirty_mb_per_s = 50\nguest.working_set_mb = 64\n"
        "serial.log = serial.log\n", &c, err, sizeof(err)), 0);
    assert_string_equal(c.name, "a");
    assert_true(c.memory_mb == 128);
    assert_int_equal(c.vcpus, 2);
    assert_string_equal(c.image, "/vms/a/guest.elf");
    assert_string_equal(c.serial_log, "/vms/a/serial.log");
    assert_int_equal(c.workload, KVC_WL_DIRTY);
    assert_int_equal(c.dirty_mb_per_s, 50);
    assert_int_equal(c.heartbeat_timeout_ms, 3000);
    assert_true(c.balloon);

    static const struct { const char *text, *want; } bad[] = {
        { "memory_mb = 64\nguest.image = /g\n", "name" },
        { "name = a\n", "guest.image" },
        { "name = a\nguest.image = /g\nguest.kernel = /k\n", "exclude" },
        { "name = a\nguest.image = /g\nvcpus = 99\n", "vcpus" },
        { "name = a\nguest.image = /g\nmemory_mb = 63\n", "even" },
        { "name = a\nguest.image = /g\nguest.workload = dance\n", "workload" },
        { "name = a\nguest.image = /g\nbogus = 1\n", "bogus" },
        { "name = a\nguest.image = /g\nguest.workload = dirty\nguest.working_set_mb = 60\n", "working_set" },
        { "name = a\nguest.image = /g\nmemory_mb = lots\n", "memory_mb" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = 0;
        assert_int_equal(vmx_config_parse("vm.conf", bad[i].text, &c, err, sizeof(err)), -EINVAL);
        if (!strstr(err, bad[i].want))
            fail_msg("case %zu: error '%s' does not mention '%s'", i, err, bad[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_elf_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_elf_rejects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_longmode_tables, setup, teardown),
        cmocka_unit_test_setup_teardown(test_linux_layout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_linux_rejects, setup, teardown),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
