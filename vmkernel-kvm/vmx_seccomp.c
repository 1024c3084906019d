/* The seccomp filter vmx installs once its VM is built: after that it only
 * runs vCPUs, serves its control socket and writes logs, snapshots and the
 * serial log.  Anything else kills the process (SCMP_ACT_KILL_PROCESS), so
 * a compromised vmx cannot open new files beyond that or exec anything.
 *
 * Sanitizer builds need more (ASan's reports, LSan's ptrace-free thread
 * walk, symbolizer); there the filter logs violations instead of killing,
 * and says so. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <seccomp.h>

#include "lib/log.h"

KVC_LOG_MODULE(seccomp);

int vmx_seccomp_install(char *why, size_t len);

static const char *const allowed[] = {
    /* vCPUs and KVM */
    "ioctl", "mmap", "munmap", "mprotect", "madvise", "mincore", "fallocate",
    /* threads */
    "futex", "rt_sigreturn", "rt_sigprocmask", "rt_sigaction", "tgkill", "tkill", "getpid",
    "gettid", "sched_yield", "exit", "exit_group", "set_robust_list", "rseq", "clone", "clone3",
    /* memory */
    "brk", "mremap",
    /* event loop, control socket */
    "epoll_wait", "epoll_pwait", "epoll_ctl", "poll", "ppoll", "select", "pselect6",
    "read", "write", "readv", "writev", "recvfrom", "sendto", "recvmsg", "sendmsg",
    "accept", "accept4", "getsockopt", "setsockopt", "getsockname", "getpeername",
    "shutdown", "close", "fcntl", "eventfd2", "pipe2",
    /* time */
    "clock_gettime", "clock_nanosleep", "nanosleep", "gettimeofday", "clock_getres",
    /* snapshots, serial log */
    "openat", "fstat", "newfstatat", "lseek", "fsync", "fdatasync", "rename", "renameat",
    "renameat2", "unlink", "unlinkat", "link", "linkat", "getuid", "getrandom",
    /* virtio-blk and its delta files (disk.c) */
    "pread64", "pwrite64", "preadv", "pwritev", "ftruncate",
    /* a disk received over a migration: writeback started as it arrives */
    "sync_file_range",
    /* disk moves (disk_mirror.c): free space of the target */
    "statfs", "fstatfs",
    /* thread CPU times for stats */
    "getrusage", "times",
    /* signals we send ourselves (kicks) */
    "rt_sigtimedwait", "sigaltstack", "prctl",
};

int vmx_seccomp_install(char *why, size_t len)
{
#if defined(__SANITIZE_ADDRESS__)
    uint32_t deflt = SCMP_ACT_LOG;
    snprintf(why, len, "sanitizer build: violations are logged, not fatal "
             "(ASan needs syscalls outside the filter for its reports)");
#else
    uint32_t deflt = SCMP_ACT_KILL_PROCESS;
#endif
    scmp_filter_ctx ctx = seccomp_init(deflt);
    if (!ctx) {
        snprintf(why, len, "seccomp_init failed");
        return -ENOMEM;
    }
    int rc = 0;
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
        int nr = seccomp_syscall_resolve_name(allowed[i]);
        if (nr == __NR_SCMP_ERROR)
            continue;
        if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0)) < 0) {
            snprintf(why, len, "rule for %s: %s", allowed[i], strerror(-rc));
            goto out;
        }
    }
    /* Live migration's source connects out (migrate.c): stream sockets of
     * these families only; the destination listens before the filter. */
    static const int families[] = { AF_UNIX, AF_INET, AF_INET6 };
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
        if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
                                   SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)families[i]))) < 0) {
            snprintf(why, len, "rule for socket: %s", strerror(-rc));
            goto out;
        }
    if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(connect), 0)) < 0) {
        snprintf(why, len, "rule for connect: %s", strerror(-rc));
        goto out;
    }
    if ((rc = seccomp_load(ctx)) < 0)
        snprintf(why, len, "seccomp_load: %s", strerror(-rc));
    else
        kvc_info("seccomp filter installed (%zu syscalls allowed)",
                 sizeof(allowed) / sizeof(allowed[0]));
out:
    seccomp_release(ctx);
    return rc;
}
