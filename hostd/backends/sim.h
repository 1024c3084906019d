/* The sim backend's models, exposed for unit tests and for vpxd-side
 * planners that want the same numbers (DRS, migration estimates). */
#ifndef KVC_HOSTD_SIM_H
#define KVC_HOSTD_SIM_H

#include <stdint.h>

/* A workload ("demand profile") as written in a VM's config:
 *   idle            ~2% CPU, 10% of memory active
 *   cpu:N           N% of every vCPU busy (0..100)
 *   mem:R           dirties R MiB/s (memory mostly active)
 *   sine:P          CPU between 5% and 95% over a period of P seconds
 *   hang            the guest stops heartbeating after boot (tools stop)
 *   crash           the guest crashes right after boot (VM powers off)
 * Parsing fails (-EINVAL) on anything else. */
enum sim_profile { SIM_IDLE, SIM_CPU, SIM_MEM, SIM_SINE, SIM_HANG, SIM_CRASH };
struct sim_workload {
    enum sim_profile kind;
    double arg;
};
int sim_workload_parse(const char *s, struct sim_workload *out);

/* CPU demand in [0,1] of the VM's vCPUs, T_MS after power-on. */
double sim_cpu_demand(const struct sim_workload *, int64_t t_ms);
/* Active memory in bytes for a VM of MEM bytes. */
uint64_t sim_mem_active(const struct sim_workload *, uint64_t mem);
/* Memory dirty rate in bytes/s. */
double sim_dirty_rate(const struct sim_workload *, uint64_t mem);

/* Live-migration time model: pre-copy rounds at BANDWIDTH bytes/s while the
 * guest dirties DIRTY bytes/s, until what is left to send fits in
 * DOWNTIME_MS (then stop-and-copy) or 30 rounds.  Returns the total time in
 * ms and, in *DOWNTIME, the stop-and-copy time; -1 if it cannot converge
 * (dirty rate >= bandwidth and memory never fits the downtime). */
int64_t sim_migration_ms(uint64_t mem, double dirty, double bandwidth,
                         int64_t downtime_target_ms, int64_t *downtime);

/* The simulated serial console (sim_console.c): a boot prints the test
 * guest's ready line; typed lines are echoed as the test guest does. */
struct hostd_host;
struct hostd_vm;
void sim_console_boot(struct hostd_vm *);
void sim_console_forget(struct hostd_vm *);
void sim_console_read(struct hostd_host *, struct hostd_vm *, uint64_t offset, uint32_t max,
                      void (*done)(int, const char *, const void *, size_t, uint64_t, uint64_t,
                                   void *), void *ctx);
void sim_console_write(struct hostd_host *, struct hostd_vm *, const void *data, size_t len,
                       void (*done)(int, const char *, const void *, size_t, uint64_t, uint64_t,
                                    void *), void *ctx);

#endif
