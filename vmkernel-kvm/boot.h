/* Loading a guest into RAM and the vCPU state to start it.
 *
 * Two kinds of guest:
 *  - the test guest (an ELF, vmkernel-kvm/guest/): PT_LOAD segments copied to
 *    their physical addresses, long mode entered directly (vmx writes the
 *    GDT and identity page tables), RDI = vCPU index, RSI = boot-info page.
 *  - a Linux bzImage, by the x86 boot protocol's 64-bit entry (protocol
 *    >= 2.12 with XLF_KERNEL_64): zero page with the setup header, e820 map,
 *    command line and initrd.
 * Everything read from an image is bounds-checked; a bad image gives
 * -EINVAL (or -E2BIG when it does not fit in RAM) and a message.
 *
 * Errors: 0 or -errno. */
#ifndef KVC_VMX_BOOT_H
#define KVC_VMX_BOOT_H

#include <stddef.h>
#include <stdint.h>
#include <linux/kvm.h>

#include "vmkernel-kvm/memory.h"

/* ---- test guest (ELF) ---- */
int boot_load_elf(struct guest_mem *, const uint8_t *img, size_t len, uint64_t *entry,
                  char *err, size_t errlen);

/* GDT and page tables for direct long-mode entry.  LINUX selects the GDT
 * layout of the Linux 64-bit boot protocol (CS 0x10, DS 0x18) instead of
 * the test guest's (CS 0x08, DS 0x10). */
int boot_write_longmode_tables(struct guest_mem *, int linux_layout);
/* vCPU state for direct long-mode entry at ENTRY. */
void boot_longmode_sregs(struct kvm_sregs *, int linux_layout);
void boot_longmode_regs(struct kvm_regs *, uint64_t entry, uint64_t rdi, uint64_t rsi);

/* ---- Linux boot protocol ---- */
#define BOOT_LINUX_ZERO_PAGE  0x7000u
#define BOOT_LINUX_CMDLINE    0x20000u
#define BOOT_LINUX_CMDLINE_MAX 4096u
#define BOOT_LINUX_KERNEL     0x1000000u    /* 16 MiB, if relocatable */
#define BOOT_LINUX_KERNEL_FIXED 0x100000u   /* non-relocatable kernels */

/* Offsets into struct boot_params (Documentation/arch/x86/zero-page.rst). */
#define BP_E820_ENTRIES   0x1e8
#define BP_HDR            0x1f1
#define BP_SETUP_SECTS    0x1f1
#define BP_BOOT_FLAG      0x1fe
#define BP_JUMP           0x200
#define BP_HEADER_MAGIC   0x202
#define BP_VERSION        0x206
#define BP_TYPE_OF_LOADER 0x210
#define BP_LOADFLAGS      0x211
#define BP_CODE32_START   0x214
#define BP_RAMDISK_IMAGE  0x218
#define BP_RAMDISK_SIZE   0x21c
#define BP_HEAP_END_PTR   0x224
#define BP_CMD_LINE_PTR   0x228
#define BP_INITRD_ADDR_MAX 0x22c
#define BP_KERNEL_ALIGN   0x230
#define BP_RELOCATABLE    0x234
#define BP_XLOADFLAGS     0x236
#define BP_CMDLINE_SIZE   0x238
#define BP_PREF_ADDRESS   0x258
#define BP_INIT_SIZE      0x260
#define BP_E820_TABLE     0x2d0
#define BP_E820_MAX       128

#define E820_RAM      1
#define E820_RESERVED 2

struct boot_linux_layout {
    uint64_t zero_page, cmdline, kernel, kernel_size, initrd, initrd_size, entry;
    unsigned e820_entries;
};

int boot_linux_load(struct guest_mem *, const uint8_t *bz, size_t bzlen,
                    const uint8_t *initrd, size_t initrd_len, const char *cmdline,
                    struct boot_linux_layout *out, char *err, size_t errlen);

#endif
