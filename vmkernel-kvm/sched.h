/* CPU and memory resource policy of vmkd: host capacity, the mapping of
 * vSphere-style allocations (shares, limit, reservation) onto cgroup knobs,
 * and admission control of reservations.
 *
 * Units follow vSphere: CPU in MHz (a VM's "limit" may also be given as a
 * percentage of one host CPU), memory in MiB, shares as a plain number
 * (vSphere uses 500/1000/2000 per vCPU for low/normal/high).
 *
 * Functions return 0 or -errno unless they say otherwise.
 */
#ifndef KVC_VMK_SCHED_H
#define KVC_VMK_SCHED_H

#include <stddef.h>
#include <stdint.h>

struct kvc_host_capacity {
    uint32_t ncpus;             /* online CPUs */
    uint32_t cpu_mhz;           /* per CPU */
    uint64_t mem_bytes;         /* MemTotal */
};

/* Reads /proc/cpuinfo and /proc/meminfo below procroot (NULL: "/proc").
 * A machine that does not report MHz gets 1000 MHz per CPU. */
int kvc_sched_host_capacity(const char *procroot, struct kvc_host_capacity *);

static inline uint64_t kvc_host_cpu_mhz_total(const struct kvc_host_capacity *c)
{
    return (uint64_t)c->ncpus * c->cpu_mhz;
}

#define KVC_UNLIMITED (-1)
#define KVC_SHARES_PER_VCPU_NORMAL 1000u

struct kvc_res_alloc {
    uint32_t cpu_shares;        /* 0: normal (1000 per vCPU) */
    int64_t cpu_limit_mhz;      /* KVC_UNLIMITED or > 0 */
    int32_t cpu_limit_pct;      /* percent of one CPU; KVC_UNLIMITED or > 0 */
    uint64_t cpu_reservation_mhz;
    int64_t mem_limit_mb;       /* KVC_UNLIMITED or > 0 */
    uint64_t mem_reservation_mb;
};

/* An allocation with every field at its default (normal shares, no limits,
 * no reservations). */
void kvc_res_alloc_default(struct kvc_res_alloc *);
/* Checks ranges; on error writes a message to why. */
int kvc_res_alloc_check(const struct kvc_res_alloc *, char *why, size_t whylen);

/* Shares → cgroup weight, keeping ratios: v1 cpu.shares = shares*1024/1000
 * clamped to 2..262144; v2 cpu.weight = shares/10 clamped to 1..10000. */
uint64_t kvc_sched_shares_to_v1(uint32_t shares, uint32_t vcpus);
uint64_t kvc_sched_shares_to_v2(uint32_t shares, uint32_t vcpus);

/* CFS quota in microseconds per period for the allocation's limit (the lower
 * of the MHz and the percentage limit when both are set), or -1 unlimited.
 * A limit in MHz is converted with the host's MHz per CPU. */
int64_t kvc_sched_quota_us(const struct kvc_res_alloc *, const struct kvc_host_capacity *,
                           uint64_t period_us);

/* Admission control: the sum of the reservations of powered-on VMs must fit
 * in the host capacity minus a host reserve. */
struct kvc_admission {
    struct kvc_host_capacity cap;
    uint64_t reserve_cpu_mhz;   /* kept for the host itself */
    uint64_t reserve_mem_mb;
    uint64_t used_cpu_mhz;      /* reserved by admitted VMs */
    uint64_t used_mem_mb;
};

uint64_t kvc_admission_cpu_avail(const struct kvc_admission *);
uint64_t kvc_admission_mem_avail(const struct kvc_admission *);
/* Admits a reservation (and accounts it) or returns -ENOSPC with why set to
 * a message naming the resource, what was asked and what is available. */
int kvc_admission_take(struct kvc_admission *, uint64_t cpu_mhz, uint64_t mem_mb,
                       char *why, size_t whylen);
void kvc_admission_release(struct kvc_admission *, uint64_t cpu_mhz, uint64_t mem_mb);
/* Changes an admitted VM's reservation from old to new values (all or nothing). */
int kvc_admission_change(struct kvc_admission *, uint64_t old_cpu, uint64_t old_mem,
                         uint64_t new_cpu, uint64_t new_mem, char *why, size_t whylen);

#endif
