/* Shared declarations of the test guest's kernel (CPL0) and workloads (CPL3). */
#ifndef KVC_GUEST_H
#define KVC_GUEST_H

#include <stdint.h>
#include <stddef.h>
#include "kvc_guest_abi.h"

#define MAX_CPUS 8

/* Syscalls: rax = number, rdi/rsi = arguments, via int3 (INT n and SYSCALL
 * do not reach CPL0 on every hypervisor this guest runs on). */
enum {
    SYS_WRITE = 1,      /* (buf, len) */
    SYS_WAIT_TICK,      /* (tick): sleep until ticks >= tick */
    SYS_HANG,           /* never returns, interrupts off */
    SYS_CRASH,          /* triple fault */
    SYS_POWEROFF,       /* (reboot?) */
};

struct guest_params {
    enum kvc_workload workload;
    uint32_t duty;          /* cpu: percent 0..100 */
    uint32_t dirty_mb;      /* dirty: MiB per second */
    uint32_t ws_mb;         /* dirty: working set in MiB */
    uint64_t mem_bytes;
    uint32_t ncpus;
    volatile uint8_t *tools;        /* NULL without the tools device */
    const char *cmdline;            /* boot words (net.c reads its own) */
};

/* Kernel state the workloads read (all memory is user-readable). */
extern struct guest_params g_params;
extern volatile uint64_t g_ticks;
extern const char *const g_workload_names[KVC_WL_COUNT_];

static inline long syscall2(long nr, long a, long b)
{
    long ret;
    __asm__ volatile("int3" : "=a"(ret) : "a"(nr), "D"(a), "S"(b) : "memory");
    return ret;
}

void user_main(uint64_t cpu);
/* user.c: heartbeat and host requests, for workloads outside user.c */
void user_heartbeat(void);
/* blk.c: the disk test, when the boot words ask for one (returns after it) */
void blk_main(void);
/* net.c: the network workload, when the boot words ask for one */
int net_configured(void);
void net_main(void) __attribute__((noreturn));

size_t g_strlen(const char *);
void *memset(void *, int, size_t);
void *memcpy(void *, const void *, size_t);
/* Formats into BUF: %s %u %x %lu %lx %d (no width); returns length. */
int g_snprintf(char *buf, size_t len, const char *fmt, ...);

#endif
