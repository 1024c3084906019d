/* vmkd resource policy (see sched.h). */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sched.h"

int kvc_sched_host_capacity(const char *procroot, struct kvc_host_capacity *c)
{
    char path[512], line[256];
    const char *pr = procroot ? procroot : "/proc";
    memset(c, 0, sizeof(*c));

    snprintf(path, sizeof(path), "%s/cpuinfo", pr);
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    uint32_t nproc = 0;
    double mhz = 0;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "processor", 9) == 0 && strchr(line, ':'))
            nproc++;
        else if (strncmp(line, "cpu MHz", 7) == 0 && mhz == 0) {
            char *colon = strchr(line, ':');
            if (colon)
                mhz = strtod(colon + 1, NULL);
        }
    }
    fclose(f);
    if (!procroot) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        if (n > 0)
            nproc = (uint32_t)n;
    }
    c->ncpus = nproc ? nproc : 1;
    c->cpu_mhz = mhz >= 1 && mhz < 1e6 ? (uint32_t)(mhz + 0.5) : 1000;

    snprintf(path, sizeof(path), "%s/meminfo", pr);
    f = fopen(path, "re");
    if (!f)
        return -errno;
    while (fgets(line, sizeof(line), f)) {
        unsigned long long kb;
        if (sscanf(line, "MemTotal: %llu kB", &kb) == 1) {
            c->mem_bytes = (uint64_t)kb * 1024;
            break;
        }
    }
    fclose(f);
    return c->mem_bytes ? 0 : -EINVAL;
}

void kvc_res_alloc_default(struct kvc_res_alloc *a)
{
    memset(a, 0, sizeof(*a));
    a->cpu_limit_mhz = KVC_UNLIMITED;
    a->cpu_limit_pct = KVC_UNLIMITED;
    a->mem_limit_mb = KVC_UNLIMITED;
}

int kvc_res_alloc_check(const struct kvc_res_alloc *a, char *why, size_t wl)
{
    if (a->cpu_shares > 1000000) {
        snprintf(why, wl, "cpu shares %" PRIu32 " out of range (0..1000000)", a->cpu_shares);
        return -EINVAL;
    }
    if (a->cpu_limit_mhz != KVC_UNLIMITED && (a->cpu_limit_mhz <= 0 || a->cpu_limit_mhz > 100000000)) {
        snprintf(why, wl, "cpu limit %" PRId64 " MHz out of range", a->cpu_limit_mhz);
        return -EINVAL;
    }
    if (a->cpu_limit_pct != KVC_UNLIMITED && (a->cpu_limit_pct <= 0 || a->cpu_limit_pct > 100000)) {
        snprintf(why, wl, "cpu limit %" PRId32 "%% out of range", a->cpu_limit_pct);
        return -EINVAL;
    }
    if (a->mem_limit_mb != KVC_UNLIMITED && (a->mem_limit_mb <= 0 || a->mem_limit_mb > (INT64_C(1) << 40))) {
        snprintf(why, wl, "memory limit %" PRId64 " MB out of range", a->mem_limit_mb);
        return -EINVAL;
    }
    if (a->cpu_reservation_mhz > 100000000 || a->mem_reservation_mb > (UINT64_C(1) << 40)) {
        snprintf(why, wl, "reservation out of range");
        return -EINVAL;
    }
    if (a->cpu_limit_mhz != KVC_UNLIMITED && a->cpu_reservation_mhz > (uint64_t)a->cpu_limit_mhz) {
        snprintf(why, wl, "cpu reservation %" PRIu64 " MHz exceeds the limit %" PRId64 " MHz",
                 a->cpu_reservation_mhz, a->cpu_limit_mhz);
        return -EINVAL;
    }
    if (a->mem_limit_mb != KVC_UNLIMITED && a->mem_reservation_mb > (uint64_t)a->mem_limit_mb) {
        snprintf(why, wl, "memory reservation %" PRIu64 " MB exceeds the limit %" PRId64 " MB",
                 a->mem_reservation_mb, a->mem_limit_mb);
        return -EINVAL;
    }
    return 0;
}

static uint64_t effective_shares(uint32_t shares, uint32_t vcpus)
{
    return shares ? shares : (uint64_t)KVC_SHARES_PER_VCPU_NORMAL * (vcpus ? vcpus : 1);
}

uint64_t kvc_sched_shares_to_v1(uint32_t shares, uint32_t vcpus)
{
    uint64_t v = effective_shares(shares, vcpus) * 1024 / 1000;
    return v < 2 ? 2 : v > 262144 ? 262144 : v;
}

uint64_t kvc_sched_shares_to_v2(uint32_t shares, uint32_t vcpus)
{
    uint64_t v = effective_shares(shares, vcpus) / 10;
    return v < 1 ? 1 : v > 10000 ? 10000 : v;
}

int64_t kvc_sched_quota_us(const struct kvc_res_alloc *a, const struct kvc_host_capacity *c,
                           uint64_t period_us)
{
    int64_t q = -1;
    if (a->cpu_limit_mhz > 0) {
        uint64_t mhz = c->cpu_mhz ? c->cpu_mhz : 1000;
        q = (int64_t)((uint64_t)a->cpu_limit_mhz * period_us / mhz);
    }
    if (a->cpu_limit_pct > 0) {
        int64_t p = (int64_t)((uint64_t)a->cpu_limit_pct * period_us / 100);
        if (q < 0 || p < q)
            q = p;
    }
    if (q >= 0 && q < 1000)
        q = 1000;               /* the kernel refuses quotas below 1 ms */
    return q;
}

uint64_t kvc_admission_cpu_avail(const struct kvc_admission *ad)
{
    uint64_t total = kvc_host_cpu_mhz_total(&ad->cap);
    uint64_t cap = total > ad->reserve_cpu_mhz ? total - ad->reserve_cpu_mhz : 0;
    return cap > ad->used_cpu_mhz ? cap - ad->used_cpu_mhz : 0;
}

uint64_t kvc_admission_mem_avail(const struct kvc_admission *ad)
{
    uint64_t total = ad->cap.mem_bytes >> 20;
    uint64_t cap = total > ad->reserve_mem_mb ? total - ad->reserve_mem_mb : 0;
    return cap > ad->used_mem_mb ? cap - ad->used_mem_mb : 0;
}

int kvc_admission_take(struct kvc_admission *ad, uint64_t cpu_mhz, uint64_t mem_mb,
                       char *why, size_t wl)
{
    uint64_t ca = kvc_admission_cpu_avail(ad), ma = kvc_admission_mem_avail(ad);
    if (cpu_mhz > ca) {
        snprintf(why, wl, "insufficient CPU resources: reservation %" PRIu64 " MHz, available %"
                 PRIu64 " MHz (host %" PRIu64 " MHz, host reserve %" PRIu64 " MHz, reserved by "
                 "running VMs %" PRIu64 " MHz)", cpu_mhz, ca, kvc_host_cpu_mhz_total(&ad->cap),
                 ad->reserve_cpu_mhz, ad->used_cpu_mhz);
        return -ENOSPC;
    }
    if (mem_mb > ma) {
        snprintf(why, wl, "insufficient memory resources: reservation %" PRIu64 " MB, available %"
                 PRIu64 " MB (host %" PRIu64 " MB, host reserve %" PRIu64 " MB, reserved by "
                 "running VMs %" PRIu64 " MB)", mem_mb, ma, ad->cap.mem_bytes >> 20,
                 ad->reserve_mem_mb, ad->used_mem_mb);
        return -ENOSPC;
    }
    ad->used_cpu_mhz += cpu_mhz;
    ad->used_mem_mb += mem_mb;
    return 0;
}

void kvc_admission_release(struct kvc_admission *ad, uint64_t cpu_mhz, uint64_t mem_mb)
{
    ad->used_cpu_mhz = ad->used_cpu_mhz > cpu_mhz ? ad->used_cpu_mhz - cpu_mhz : 0;
    ad->used_mem_mb = ad->used_mem_mb > mem_mb ? ad->used_mem_mb - mem_mb : 0;
}

int kvc_admission_change(struct kvc_admission *ad, uint64_t old_cpu, uint64_t old_mem,
                         uint64_t new_cpu, uint64_t new_mem, char *why, size_t wl)
{
    kvc_admission_release(ad, old_cpu, old_mem);
    int rc = kvc_admission_take(ad, new_cpu, new_mem, why, wl);
    if (rc < 0)
        ad->used_cpu_mhz += old_cpu, ad->used_mem_mb += old_mem;
    return rc;
}
