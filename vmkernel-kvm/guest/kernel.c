/* The test guest's kernel: the only code that runs at CPL0.
 *
 * On the build machines CPL0 code is emulated (about 4 million instructions
 * a second), so this part does the least it can: descriptor tables, the
 * LAPIC timer, the serial port and the tools device, then it drops every CPU
 * to CPL3 where the workloads run natively.  Workloads come back in through
 * int3 (see guest.h) for the few things only CPL0 may do. */
#include "guest.h"

#define COM1 0x3f8
#define KSTACK_SHIFT 14
#define USTACK_SIZE (64 * 1024)

#define LAPIC_EOI   0xb0
#define LAPIC_SVR   0xf0
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_LVT_LINT0 0x350
#define LAPIC_TICR  0x380
#define LAPIC_TDCR  0x3e0

#define VEC_TIMER   32
#define VEC_SERIAL  33
#define VEC_SPURIOUS 255

struct frame {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
    uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
    uint64_t vec, err;
    uint64_t rip, cs, rflags, rsp, ss;
};

struct tss {
    uint32_t reserved0;
    uint64_t rsp0, rsp1, rsp2;
    uint64_t reserved1;
    uint64_t ist[7];
    uint64_t reserved2;
    uint16_t reserved3;
    uint16_t iomap;
} __attribute__((packed));

struct idt_entry {
    uint16_t off_lo, sel;
    uint8_t ist, attr;
    uint16_t off_mid;
    uint32_t off_hi, zero;
} __attribute__((packed));

struct hvm_start_info {
    uint32_t magic, version, flags, nr_modules;
    uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
    uint32_t memmap_entries, reserved;
};

struct hvm_memmap_entry {
    uint64_t addr, size;
    uint32_t type, reserved;
};

extern char kstacks[];
extern const uint64_t trap_vectors[];
extern void enter_user(uint64_t rip, uint64_t rsp, uint64_t arg) __attribute__((noreturn));

struct guest_params g_params;
volatile uint64_t g_ticks;
const char *const g_workload_names[KVC_WL_COUNT_] = {
    "idle", "cpu", "dirty", "counter", "hang", "crash",
};

static uint64_t gdt[MAX_CPUS][8] __attribute__((aligned(16)));
static struct tss tss[MAX_CPUS] __attribute__((aligned(16)));
static struct idt_entry idt[256] __attribute__((aligned(16)));
static uint8_t ustacks[MAX_CPUS][USTACK_SIZE] __attribute__((aligned(16)));
static volatile uint32_t boot_done;
static volatile uint32_t serial_lock;
static char rx_line[128];
static unsigned rx_len;

static inline void outb(uint16_t port, uint8_t v)
{
    __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static inline void mmio_write32(uint64_t addr, uint32_t v)
{
    *(volatile uint32_t *)addr = v;
}

static inline uint32_t mmio_read32(uint64_t addr)
{
    return *(volatile uint32_t *)addr;
}

static unsigned this_cpu(void)
{
    uint64_t sp;
    __asm__ volatile("mov %%rsp, %0" : "=r"(sp));
    return (unsigned)((sp - (uint64_t)kstacks) >> KSTACK_SHIFT) & (MAX_CPUS - 1);
}

/* The 16550 is written without polling LSR: vmx and QEMU both take a byte at
 * any time, and every port access costs an exit. */
static void serial_write(const char *s, size_t n)
{
    while (__atomic_exchange_n(&serial_lock, 1, __ATOMIC_ACQUIRE))
        __asm__ volatile("pause");
    for (size_t i = 0; i < n; i++)
        outb(COM1, (uint8_t)s[i]);
    __atomic_store_n(&serial_lock, 0, __ATOMIC_RELEASE);
}

static void kprint(const char *s)
{
    serial_write(s, g_strlen(s));
}

static void __attribute__((noreturn)) triple_fault(void)
{
    static const struct { uint16_t limit; uint64_t base; } __attribute__((packed)) none = { 0, 0 };
    __asm__ volatile("lidt %0; int3" : : "m"(none));
    for (;;)
        __asm__ volatile("cli; hlt");
}

static void poweroff(int reboot)
{
    if (g_params.tools) {
        mmio_write32((uint64_t)g_params.tools + KVC_TOOLS_GUEST_ACTION,
                     reboot ? KVC_TOOLS_ACT_REBOOT : KVC_TOOLS_ACT_POWEROFF);
    } else {
        /* QEMU's isa-debug-exit: exit status (v << 1) | 1. */
        __asm__ volatile("outl %0, %1" : : "a"(0u), "Nd"((uint16_t)0x501));
    }
    for (;;)
        __asm__ volatile("cli; hlt");
}

static void lapic_init(void)
{
    mmio_write32(KVC_GPA_LAPIC + LAPIC_SVR, 0x100 | VEC_SPURIOUS);
    /* The BSP's LINT0 comes out of reset in ExtINT mode: without this, an
     * ISA IRQ would also arrive through the (uninitialised) 8259 as a vector
     * below 32.  Devices are routed through the IOAPIC instead. */
    mmio_write32(KVC_GPA_LAPIC + LAPIC_LVT_LINT0, 1u << 16);
    mmio_write32(KVC_GPA_LAPIC + LAPIC_TDCR, 0xb);           /* divide by 1 */
    mmio_write32(KVC_GPA_LAPIC + LAPIC_LVT_TIMER, (1u << 17) | VEC_TIMER);
    /* KVM's LAPIC timer counts nanoseconds at divide-by-1. */
    mmio_write32(KVC_GPA_LAPIC + LAPIC_TICR, 1000000000u / KVC_GUEST_HZ);
}

static void ioapic_route(unsigned pin, unsigned vec)
{
    mmio_write32(KVC_GPA_IOAPIC, 0x10 + 2 * pin + 1);
    mmio_write32(KVC_GPA_IOAPIC + 0x10, 0);                  /* APIC id 0 */
    mmio_write32(KVC_GPA_IOAPIC, 0x10 + 2 * pin);
    mmio_write32(KVC_GPA_IOAPIC + 0x10, vec);                /* fixed, edge, unmasked */
}

static void cpu_tables(unsigned cpu)
{
    uint64_t *g = gdt[cpu];
    uint64_t t = (uint64_t)&tss[cpu];
    uint64_t lim = sizeof(struct tss) - 1;

    g[0] = 0;
    g[1] = 0x00af9a000000ffffull;      /* 0x08 kernel code */
    g[2] = 0x00cf92000000ffffull;      /* 0x10 kernel data */
    g[3] = 0x00affa000000ffffull;      /* 0x18 user code (0x1b) */
    g[4] = 0x00cff2000000ffffull;      /* 0x20 user data (0x23) */
    g[5] = (lim & 0xffff) | ((t & 0xffffff) << 16) | (0x89ull << 40)
         | ((lim >> 16 & 0xf) << 48) | ((t >> 24 & 0xff) << 56);
    g[6] = t >> 32;
    tss[cpu].rsp0 = (uint64_t)kstacks + ((uint64_t)(cpu + 1) << KSTACK_SHIFT);
    tss[cpu].iomap = sizeof(struct tss);

    struct { uint16_t limit; uint64_t base; } __attribute__((packed)) d;
    d.limit = sizeof(gdt[cpu]) - 1;
    d.base = (uint64_t)g;
    __asm__ volatile("lgdt %0" : : "m"(d));
    __asm__ volatile(
        "pushq $0x08\n\t"
        "leaq 1f(%%rip), %%rax\n\t"
        "pushq %%rax\n\t"
        "lretq\n"
        "1:\n\t"
        "movw $0x10, %%ax\n\t"
        "movw %%ax, %%ds\n\t"
        "movw %%ax, %%es\n\t"
        "movw %%ax, %%ss\n\t"
        "movw %%ax, %%fs\n\t"
        "movw %%ax, %%gs\n\t"
        "movw $0x28, %%ax\n\t"
        "ltr %%ax" : : : "rax", "memory");

    struct { uint16_t limit; uint64_t base; } __attribute__((packed)) i;
    i.limit = sizeof(idt) - 1;
    i.base = (uint64_t)idt;
    __asm__ volatile("lidt %0" : : "m"(i));
}

static void idt_init(void)
{
    for (const uint64_t *v = trap_vectors; v[0] != (uint64_t)-1; v += 2) {
        struct idt_entry *e = &idt[v[0]];
        uint64_t off = v[1];
        e->off_lo = (uint16_t)off;
        e->off_mid = (uint16_t)(off >> 16);
        e->off_hi = (uint32_t)(off >> 32);
        e->sel = 0x08;
        e->ist = 0;
        e->attr = v[0] == 3 ? 0xee : 0x8e;   /* int3 is callable from CPL3 */
        e->zero = 0;
    }
}

static unsigned parse_uint(const char *s)
{
    unsigned v = 0;
    while (*s >= '0' && *s <= '9')
        v = v * 10 + (unsigned)(*s++ - '0');
    return v;
}

static int word_is(const char *w, const char *key, const char **val)
{
    size_t n = g_strlen(key);
    for (size_t i = 0; i < n; i++)
        if (w[i] != key[i])
            return 0;
    if (w[n] != '=')
        return 0;
    *val = w + n + 1;
    return 1;
}

static void parse_cmdline(const char *c)
{
    while (c && *c) {
        while (*c == ' ')
            c++;
        const char *v;
        if (word_is(c, "workload", &v)) {
            for (int i = 0; i < KVC_WL_COUNT_; i++) {
                const char *n = g_workload_names[i];
                size_t l = g_strlen(n);
                size_t k = 0;
                while (k < l && v[k] == n[k])
                    k++;
                if (k == l && (v[l] == ' ' || v[l] == 0))
                    g_params.workload = (enum kvc_workload)i;
            }
        } else if (word_is(c, "duty", &v)) {
            g_params.duty = parse_uint(v);
        } else if (word_is(c, "dirty_mb", &v)) {
            g_params.dirty_mb = parse_uint(v);
        } else if (word_is(c, "ws_mb", &v)) {
            g_params.ws_mb = parse_uint(v);
        }
        while (*c && *c != ' ')
            c++;
    }
}

static void tools_init(uint64_t base)
{
    if (!base || mmio_read32(base) != 0x74726976u || mmio_read32(base + 8) != KVC_VIRTIO_ID_TOOLS)
        return;
    mmio_write32(base + 0x70, 1 | 2 | 4);   /* ACKNOWLEDGE | DRIVER | DRIVER_OK */
    g_params.tools = (volatile uint8_t *)base;
}

static void serial_rx(void)
{
    /* Echo each received line, so a test can see console input arrive. */
    while (inb(COM1 + 5) & 1) {
        char ch = (char)inb(COM1);
        if (ch == '\r' || ch == '\n') {
            if (rx_len) {
                char out[160];
                rx_line[rx_len] = 0;
                int n = g_snprintf(out, sizeof(out), "KVC-GUEST: console: %s\n", rx_line);
                serial_write(out, (size_t)n < sizeof(out) ? (size_t)n : sizeof(out) - 1);
                rx_len = 0;
            }
        } else if (rx_len < sizeof(rx_line) - 1) {
            rx_line[rx_len++] = ch;
        }
    }
}

static void syscall(struct frame *f)
{
    switch (f->rax) {
    case SYS_WRITE: {
        /* Everything below 4 GiB is mapped; clamp what a workload asks. */
        uint64_t len = f->rsi > 256 ? 256 : f->rsi;
        serial_write((const char *)f->rdi, len);
        f->rax = len;
        break;
    }
    case SYS_WAIT_TICK:
        while (g_ticks < f->rdi)
            __asm__ volatile("sti; hlt; cli" ::: "memory");
        f->rax = g_ticks;
        break;
    case SYS_HANG:
        for (;;)
            __asm__ volatile("cli; hlt");
    case SYS_CRASH: {
        /* Drop the IDT and go back to CPL3, whose next trap (the workload's
         * int3, or the timer) then triple-faults: a crash every hypervisor
         * reports as a shutdown. */
        static const struct { uint16_t limit; uint64_t base; } __attribute__((packed)) none = { 0, 0 };
        __asm__ volatile("lidt %0" : : "m"(none));
        f->rax = 0;
        break;
    }
    case SYS_POWEROFF:
        poweroff((int)f->rdi);
        break;
    default:
        f->rax = (uint64_t)-1;
    }
}

void trap(struct frame *f);
void trap(struct frame *f)
{
    switch (f->vec) {
    case 3:
        if ((f->cs & 3) == 3) {
            syscall(f);
            return;
        }
        break;
    case VEC_TIMER:
        if (this_cpu() == 0)
            g_ticks++;
        mmio_write32(KVC_GPA_LAPIC + LAPIC_EOI, 0);
        return;
    case VEC_SERIAL:
        serial_rx();
        mmio_write32(KVC_GPA_LAPIC + LAPIC_EOI, 0);
        return;
    case VEC_SPURIOUS:
        return;
    }
    uint64_t cr2;
    __asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
    char buf[160];
    g_snprintf(buf, sizeof(buf), "KVC-GUEST: fault vector=%lu err=%lx rip=%lx cr2=%lx cpl=%lu\n",
               f->vec, f->err, f->rip, cr2, f->cs & 3);
    kprint(buf);
    triple_fault();
}

void kmain(uint64_t cpu, uint64_t info, uint64_t from_pvh);
void kmain(uint64_t cpu, uint64_t info, uint64_t from_pvh)
{
    cpu &= MAX_CPUS - 1;
    if (cpu == 0) {
        const char *cmdline = 0;
        uint64_t tools = 0;
        g_params.ncpus = 1;
        g_params.mem_bytes = 64ull << 20;
        g_params.duty = 50;
        g_params.dirty_mb = 16;
        g_params.ws_mb = 16;
        if (from_pvh) {
            const struct hvm_start_info *si = (const void *)info;
            if (si && si->magic == 0x336ec578u) {
                if (si->cmdline_paddr)
                    cmdline = (const char *)si->cmdline_paddr;
                const struct hvm_memmap_entry *m = (const void *)si->memmap_paddr;
                uint64_t top = 0;
                for (uint32_t i = 0; m && si->version >= 1 && i < si->memmap_entries && i < 64; i++)
                    if (m[i].type == 1 && m[i].addr + m[i].size > top && m[i].addr + m[i].size <= KVC_RAM_MAX)
                        top = m[i].addr + m[i].size;
                if (top)
                    g_params.mem_bytes = top;
            }
        } else {
            const struct kvc_bootinfo *bi = (const void *)info;
            if (bi && bi->magic == KVC_BOOTINFO_MAGIC) {
                cmdline = bi->cmdline;
                tools = bi->tools_base;
                g_params.mem_bytes = bi->mem_bytes;
                g_params.ncpus = bi->ncpus ? bi->ncpus : 1;
                if (g_params.ncpus > MAX_CPUS)
                    g_params.ncpus = MAX_CPUS;
            }
        }
        parse_cmdline(cmdline);
        g_params.cmdline = cmdline;
        idt_init();
        cpu_tables(0);
        tools_init(tools);
        ioapic_route(4, VEC_SERIAL);
        outb(COM1 + 1, 1);               /* IER: receive data available */
        outb(COM1 + 4, 0x08);            /* MCR: OUT2, so the IRQ reaches the PIC/IOAPIC */
        lapic_init();
        __atomic_store_n(&boot_done, 1, __ATOMIC_RELEASE);
    } else {
        while (!__atomic_load_n(&boot_done, __ATOMIC_ACQUIRE))
            __asm__ volatile("pause");
        cpu_tables((unsigned)cpu);
        lapic_init();
    }
    enter_user((uint64_t)user_main, (uint64_t)ustacks[cpu] + USTACK_SIZE, cpu);
}
