/* DRS benchmarks (docs/benchmarks.md):
 *   drs-pass-64x5000  one pass (drs_recommend) over 64 hosts and 5,000 VMs
 *                     placed with a skew, in ms; the peer figure is the
 *                     50 ms budget (target=50).
 *   drs-quality       the imbalance DRS reaches (cost ignored, as low as
 *                     moves get) over the best an exhaustive search finds,
 *                     summed over small random clusters; target=1.05.
 * Deterministic inputs (a fixed LCG); each timing is the median of runs. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vpxd/drs.h"

static uint64_t rng = 88172645463325252ull;

static double urand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#define NH 64
#define NV 5000

static void big_cluster(struct drs_host *hosts, struct drs_vm *vms)
{
    for (int h = 0; h < NH; h++)
        hosts[h] = (struct drs_host){ .id = "h", .cpu_mhz = 32 * 2600.0, .mem_mb = 512 * 1024.0,
                                      .cpu_threads = 64, .usable = true };
    for (int v = 0; v < NV; v++) {
        double mem = 1024.0 * (1 + (int)(urand() * 8));
        /* Skewed: the first 16 hosts hold half the VMs. */
        int h = v % 2 ? (int)(urand() * 16) : (int)(urand() * NH);
        vms[v] = (struct drs_vm){ .id = "v", .host = h, .cpu_mhz = 100 + urand() * 1500,
                                  .mem_mb = mem, .mem_demand_mb = mem * (0.1 + 0.4 * urand()),
                                  .dirty_mbps = mem * 0.005, .cpu_count = 2, .movable = true };
    }
}

static void bench_pass(void)
{
    static struct drs_host hosts[NH];
    static struct drs_vm vms[NV], work[NV];
    static struct drs_move moves[64];
    struct drs_params p = { .threshold = 3 };
    double t[7];
    int n = 0;

    big_cluster(hosts, vms);
    for (int i = 0; i < 7; i++) {
        struct drs_cluster c = { .hosts = hosts, .n_hosts = NH, .vms = work, .n_vms = NV };
        memcpy(work, vms, sizeof(vms));
        double t0 = now_ms();
        n = drs_recommend(&c, &p, moves, 64);
        t[i] = now_ms() - t0;
    }
    qsort(t, 7, sizeof(t[0]), cmp);
    double med = t[3];
    printf("# drs-pass-64x5000: %d moves per pass\n", n);
    printf("BENCH drs-pass-64x5000 ours=%.2f target=50 unit=ms ratio=%.3f median=%.2f"
           " spread=%.2f\n", med, med / 50.0, med, t[6] - t[0]);
}

/* Exhaustive: every assignment of NVS VMs to NHS hosts within memory. */
static double best_sigma(struct drs_cluster *c, const struct drs_params *p, size_t v,
                         double best)
{
    if (v == c->n_vms) {
        double s = drs_imbalance(c, p);
        return s < best ? s : best;
    }
    for (size_t h = 0; h < c->n_hosts; h++) {
        double used = 0;
        for (size_t u = 0; u < v; u++)
            if (c->vms[u].host == (int)h)
                used += c->vms[u].mem_mb;
        if (used + c->vms[v].mem_mb > c->hosts[h].mem_mb)
            continue;
        c->vms[v].host = (int)h;
        best = best_sigma(c, p, v + 1, best);
    }
    return best;
}

static void bench_quality(void)
{
    struct drs_params p = { .threshold = 5, .no_cost = true, .target_override = -1,
                            .max_moves = 64 };
    double sum_drs = 0, sum_best = 0, worst = 0;
    const int clusters = 60;

    for (int k = 0; k < clusters; k++) {
        struct drs_host hosts[4];
        struct drs_vm vms[8], copy[8];
        struct drs_move moves[64];
        size_t nh = 3 + (size_t)(k % 2), nv = 7 + (size_t)(k % 2);
        for (size_t h = 0; h < nh; h++)
            hosts[h] = (struct drs_host){ .id = "h", .cpu_mhz = 16000, .mem_mb = 32768,
                                          .cpu_threads = 32, .usable = true };
        for (size_t v = 0; v < nv; v++) {
            double mem = 1024.0 * (1 + (int)(urand() * 6));
            vms[v] = (struct drs_vm){ .id = "v", .host = (int)(urand() * 2),
                                      .cpu_mhz = 500 + urand() * 6000, .mem_mb = mem,
                                      .mem_demand_mb = mem * urand(), .dirty_mbps = 1,
                                      .cpu_count = 2, .movable = true };
        }
        struct drs_cluster c = { .hosts = hosts, .n_hosts = nh, .vms = vms, .n_vms = nv };
        memcpy(copy, vms, sizeof(vms));
        if (drs_recommend(&c, &p, moves, 64) < 0)
            continue;
        double got = drs_imbalance(&c, &p);
        struct drs_cluster e = { .hosts = hosts, .n_hosts = nh, .vms = copy, .n_vms = nv };
        double best = best_sigma(&e, &p, 0, INFINITY);
        sum_drs += got;
        sum_best += best;
        if (best > 1e-6 && got / best > worst)
            worst = got / best;
    }
    double ratio = sum_drs / sum_best;
    printf("# drs-quality: %d clusters of 3-4 hosts and 7-8 VMs; worst single ratio %.3f\n",
           clusters, worst);
    printf("BENCH drs-quality ours=%.4f target=1.05 unit=ratio ratio=%.4f median=%.4f"
           " spread=%.4f\n", ratio, ratio / 1.05, ratio, worst - 1.0);
}

int main(void)
{
    bench_pass();
    bench_quality();
    return 0;
}
