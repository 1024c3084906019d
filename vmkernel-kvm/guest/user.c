/* Workloads: everything here runs at CPL3 (natively on every hypervisor).
 * Printing and sleeping go through the kernel (int3, see guest.h); the tools
 * device is plain MMIO and is written directly. */
#include "guest.h"

#define HB_TICKS (KVC_GUEST_HZ / 4)     /* heartbeat every 250 ms */

static uint64_t next_hb;
static uint64_t hb_count;
static uint64_t ctr_n, ctr_sum;

static void uprint(const char *s)
{
    syscall2(SYS_WRITE, (long)s, (long)g_strlen(s));
}

static void tools_w32(unsigned off, uint32_t v)
{
    if (g_params.tools)
        *(volatile uint32_t *)(g_params.tools + off) = v;
}

static uint32_t tools_r32(unsigned off)
{
    return g_params.tools ? *(volatile uint32_t *)(g_params.tools + off) : 0;
}

static void tools_str(uint32_t sel, const char *s)
{
    tools_w32(KVC_TOOLS_STR_SEL, sel);
    size_t n = g_strlen(s);
    for (size_t i = 0; i < n; i += 4) {
        uint32_t w = 0;
        for (size_t k = 0; k < 4 && i + k < n; k++)
            w |= (uint32_t)(uint8_t)s[i + k] << (8 * k);
        tools_w32(KVC_TOOLS_STR_DATA, w);
    }
}

static void report_counter(void)
{
    tools_w32(KVC_TOOLS_WL_COUNTER_LO, (uint32_t)ctr_n);
    tools_w32(KVC_TOOLS_WL_COUNTER_HI, (uint32_t)(ctr_n >> 32));
    tools_w32(KVC_TOOLS_WL_SUM_LO, (uint32_t)ctr_sum);
    tools_w32(KVC_TOOLS_WL_SUM_HI, (uint32_t)(ctr_sum >> 32));
}

/* Called often by every workload on CPU 0: beats, and serves host requests. */
static void heartbeat(void)
{
    if (g_ticks < next_hb)
        return;
    next_hb = g_ticks + HB_TICKS;
    if (!g_params.tools)
        return;
    tools_w32(KVC_TOOLS_HEARTBEAT, (uint32_t)++hb_count);
    if (g_params.workload == KVC_WL_COUNTER)
        report_counter();
    uint32_t req = tools_r32(KVC_TOOLS_HOST_REQUEST);
    if (req == KVC_TOOLS_REQ_SHUTDOWN || req == KVC_TOOLS_REQ_REBOOT) {
        tools_w32(KVC_TOOLS_GUEST_ACTION, KVC_TOOLS_ACT_ACK);
        uprint(req == KVC_TOOLS_REQ_SHUTDOWN ? "KVC-GUEST: shutdown requested\n"
                                             : "KVC-GUEST: reboot requested\n");
        syscall2(SYS_POWEROFF, req == KVC_TOOLS_REQ_REBOOT, 0);
    }
}

void user_heartbeat(void)
{
    heartbeat();
}

static void wait_until(uint64_t tick)
{
    while (g_ticks < tick) {
        uint64_t t = tick < next_hb || !g_params.tools ? tick : next_hb;
        syscall2(SYS_WAIT_TICK, (long)t, 0);
        heartbeat();
    }
}

static void burn_until(uint64_t tick, int cpu0)
{
    while (g_ticks < tick) {
        for (volatile int i = 0; i < 20000; i++)
            ;
        if (cpu0)
            heartbeat();
    }
}

static void __attribute__((noreturn)) wl_cpu(int cpu0)
{
    /* Duty cycle over a 100 ms period. */
    uint32_t period = KVC_GUEST_HZ / 10;
    uint32_t busy = g_params.duty >= 100 ? period : period * g_params.duty / 100;
    for (;;) {
        uint64_t start = g_ticks;
        burn_until(start + busy, cpu0);
        wait_until(start + period);
    }
}

static void __attribute__((noreturn)) wl_dirty(void)
{
    uint64_t ws = (uint64_t)g_params.ws_mb << 20;
    uint64_t base = KVC_GPA_WORKSET;
    if (base + ws > g_params.mem_bytes)
        ws = g_params.mem_bytes > base ? (g_params.mem_bytes - base) & ~0xfffull : 0;
    uint64_t pages = ws >> 12;
    /* Pages per tick, in 1/256ths, so slow rates still progress. */
    uint64_t rate = (uint64_t)g_params.dirty_mb * 256 * 256 / KVC_GUEST_HZ;
    uint64_t acc = 0, pos = 0, gen = 0;
    /* dirty_mb=0: fill the whole working set once (every word non-zero,
     * for migration benchmarks), then leave it alone. */
    if (!g_params.dirty_mb)
        for (uint64_t i = 0; i < pages << 9; i++)
            ((volatile uint64_t *)base)[i] = 0x9e3779b97f4a7c15ull * (i + 1);
    for (;;) {
        uint64_t t = g_ticks;
        acc += rate;
        for (; acc >= 256 && pages; acc -= 256) {
            volatile uint64_t *p = (volatile uint64_t *)(base + (pos << 12));
            *p = ++gen;
            if (++pos == pages)
                pos = 0;
        }
        if (!pages)
            acc = 0;
        wait_until(t + 1);
    }
}

static void __attribute__((noreturn)) wl_counter(void)
{
    char buf[96];
    ctr_sum = KVC_COUNTER_SEED;
    for (;;) {
        uint64_t t = g_ticks;
        ctr_n++;
        ctr_sum = kvc_counter_step(ctr_sum, ctr_n);
        if (ctr_n % KVC_GUEST_HZ == 0) {
            g_snprintf(buf, sizeof(buf), "KVC-GUEST: counter=%lu sum=%lx\n", ctr_n, ctr_sum);
            uprint(buf);
        }
        wait_until(t + 1);
    }
}

void user_main(uint64_t cpu)
{
    char buf[128];
    if (cpu != 0) {
        g_snprintf(buf, sizeof(buf), "KVC-GUEST: cpu %lu online\n", cpu);
        uprint(buf);
        if (g_params.workload == KVC_WL_CPU)
            wl_cpu(0);
        for (;;)
            syscall2(SYS_WAIT_TICK, (long)(g_ticks + 1000), 0);
    }
    tools_str(1, "kvc-testguest 1.0");
    tools_str(2, "0.0.0.0");
    tools_w32(KVC_TOOLS_WL_KIND, (uint32_t)g_params.workload);
    g_snprintf(buf, sizeof(buf), "KVC-GUEST: ready workload=%s cpus=%u mem_mb=%lu tools=%u\n",
               g_workload_names[g_params.workload], g_params.ncpus,
               g_params.mem_bytes >> 20, g_params.tools ? 1u : 0u);
    uprint(buf);
    next_hb = 0;
    heartbeat();
    blk_main();
    if (net_configured())
        net_main();
    switch (g_params.workload) {
    case KVC_WL_CPU:
        wl_cpu(1);
    case KVC_WL_DIRTY:
        wl_dirty();
    case KVC_WL_COUNTER:
        wl_counter();
    case KVC_WL_HANG:
        uprint("KVC-GUEST: hanging\n");
        syscall2(SYS_HANG, 0, 0);
        break;
    case KVC_WL_CRASH:
        uprint("KVC-GUEST: crashing\n");
        syscall2(SYS_CRASH, 0, 0);
        for (;;)
            __asm__ volatile("int3");
    default:
        break;
    }
    for (;;)
        wait_until(g_ticks + 1000);
}
