/* cgroup placement of VMs: one cgroup per running VM under a parent cgroup
 * that vmkd owns (e.g. "kvcenter" or "kvcenter-test-1234").
 *
 * Two layouts are supported and detected at open time:
 *  - cgroup v1 with one mount per controller (cpu, cpuacct, memory; cpu and
 *    cpuacct may also share one mount "cpu,cpuacct"), as on these machines;
 *  - cgroup v2 (unified) whose cgroup.controllers offers "cpu", mounted at
 *    the cgroup root itself or at <root>/unified.
 * A controller-less cgroup2 at <root>/unified next to v1 mounts is ignored.
 *
 * The layer works on plain paths, so unit tests point it at a directory that
 * mimics a cgroup file system (fake mode also creates the control files that
 * the kernel would provide).
 *
 * Every function returns 0 or -errno unless it says otherwise; destroy
 * functions accept NULL.
 */
#ifndef KVC_VMK_CGROUP_H
#define KVC_VMK_CGROUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum kvc_cg_version {
    KVC_CG_AUTO = 0,
    KVC_CG_V1 = 1,
    KVC_CG_V2 = 2,
};

struct kvc_cg_root;
struct kvc_cg_vm;

struct kvc_cg_root_opts {
    const char *fsroot;         /* NULL: /sys/fs/cgroup */
    const char *parent;         /* parent cgroup path below each hierarchy root, e.g. "kvcenter" */
    enum kvc_cg_version version;/* KVC_CG_AUTO: detect */
    bool fake;                  /* tests: create the control files the kernel would */
};

/* Detects the layout and creates the parent cgroup (and, on v2, enables the
 * cpu and memory controllers down to it).  On success *out owns it. */
int kvc_cg_root_open(const struct kvc_cg_root_opts *, struct kvc_cg_root **out);
/* Removes the parent cgroup if rmdir_parent (it must be empty by then). */
void kvc_cg_root_close(struct kvc_cg_root *, bool rmdir_parent);
enum kvc_cg_version kvc_cg_root_version(const struct kvc_cg_root *);
bool kvc_cg_root_has_memory(const struct kvc_cg_root *);
/* Human-readable description ("v1 cpu=/sys/fs/cgroup/cpu/kvcenter ..."). */
const char *kvc_cg_root_describe(const struct kvc_cg_root *);

/* Creates (or reuses, when it already exists: re-adoption after a vmkd
 * restart) the VM's cgroup "<parent>/<name>". name must be a plain file name. */
int kvc_cg_vm_create(struct kvc_cg_root *, const char *name, struct kvc_cg_vm **out);
/* The same for a cgroup at REL below the parent, which may nest ("a/b/c":
 * resource pools, and VMs inside them); missing levels are created.  With
 * DELEGATE (a pool) a v2 cgroup passes the cpu and memory controllers on to
 * its children.  Destroy removes only the last level. */
int kvc_cg_group_create(struct kvc_cg_root *, const char *rel, bool delegate,
                        struct kvc_cg_vm **out);
/* Removes the VM's cgroup directories (they must hold no process) and frees. */
int kvc_cg_vm_destroy(struct kvc_cg_vm *);
/* Frees without removing anything (vmkd shutting down, VMs keep running). */
void kvc_cg_vm_free(struct kvc_cg_vm *);

/* Moves a whole process (all its threads) into the VM's cgroup. */
int kvc_cg_vm_attach(struct kvc_cg_vm *, pid_t pid);
/* For a child between fork and exec: opens the cgroup.procs files (at most
 * max of them, O_WRONLY|O_CLOEXEC) so the child only has to write its pid.
 * Returns the number of fds opened or -errno. */
int kvc_cg_vm_procs_fds(struct kvc_cg_vm *, int *fds, int max);

/* CPU weight in the layout's native unit (v1 cpu.shares 2..262144, v2
 * cpu.weight 1..10000; see kvc_sched_*). */
int kvc_cg_vm_set_weight(struct kvc_cg_vm *, uint64_t weight);
/* CFS bandwidth: quota_us < 0 means unlimited. */
int kvc_cg_vm_set_quota(struct kvc_cg_vm *, int64_t quota_us, uint64_t period_us);
/* Memory limit in bytes; < 0 means unlimited.  -ENOTSUP without a memory controller. */
int kvc_cg_vm_set_mem_limit(struct kvc_cg_vm *, int64_t bytes);

/* Memory reservation in bytes (0: none): v2 memory.min (protected from
 * reclaim); v1 memory.soft_limit_in_bytes (under host memory pressure,
 * memory above it is reclaimed first).  -ENOTSUP without a memory controller. */
int kvc_cg_vm_set_mem_reservation(struct kvc_cg_vm *, uint64_t bytes);

struct kvc_cg_usage {
    uint64_t cpu_ns;            /* total CPU time of the group */
    uint64_t mem_bytes;         /* current memory charge (0 without memory controller) */
    uint64_t nr_periods;        /* CFS periods with the quota active */
    uint64_t nr_throttled;      /* periods in which the group was throttled */
    uint64_t throttled_ns;
};
int kvc_cg_vm_usage(struct kvc_cg_vm *, struct kvc_cg_usage *);
/* Number of processes in the group (from cgroup.procs of the cpu hierarchy). */
int kvc_cg_vm_nprocs(struct kvc_cg_vm *);
/* The cpu hierarchy directory of the VM (for logs and tests). */
const char *kvc_cg_vm_path(const struct kvc_cg_vm *);

#endif
