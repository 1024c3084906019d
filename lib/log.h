/* Per-module logging.
 *
 * Each .c file that logs says once which module it belongs to:
 *     KVC_LOG_MODULE(rpc);
 * and then logs with
 *     kvc_err("connect %s: %s", addr, strerror(errno));
 *     kvc_info(...), kvc_warn(...), kvc_dbg(...)
 * A line looks like (one line per message, greppable by tests):
 *     2026-11-22T07:30:00.123Z vpxd[1234] WARN rpc: conn_read: frame too large (len=999999)
 * The level of each module can be changed at run time (kvc_log_set_level), so
 * a test can turn on debug output of one module.
 *
 * Hot paths use a rate limit, so a hostile guest or peer cannot flood the log:
 *     static struct kvc_ratelimit rl = KVC_RATELIMIT_INIT(5, 10);  // 5 lines per 10 s
 *     kvc_warn_rl(&rl, "bad descriptor %u", idx);
 */
#ifndef KVC_LOG_H
#define KVC_LOG_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

enum kvc_log_level {
    KVC_LOG_OFF = 0,
    KVC_LOG_ERR,
    KVC_LOG_WARN,
    KVC_LOG_INFO,
    KVC_LOG_DBG,
};

struct kvc_log_module {
    const char *name;
    int level;                  /* enum kvc_log_level, or -1: use default */
    struct kvc_log_module *next;
};

struct kvc_ratelimit {
    unsigned int burst;         /* lines allowed per interval */
    unsigned int interval;      /* seconds */
    time_t start;
    unsigned int count;
    unsigned int dropped;
};
#define KVC_RATELIMIT_INIT(BURST, INTERVAL) { (BURST), (INTERVAL), 0, 0, 0 }

#define KVC_LOG_MODULE(NAME)                                                  \
    static struct kvc_log_module kvc_log_this_module = { #NAME, -1, NULL };   \
    __attribute__((constructor)) static void kvc_log_register_##NAME(void)    \
    { kvc_log_register(&kvc_log_this_module); }

void kvc_log_register(struct kvc_log_module *);

/* Program name shown in each line (default: "kvc"). */
void kvc_log_init(const char *progname);
/* Send lines to a file (append) instead of stderr.  Returns 0 or -errno. */
int kvc_log_open(const char *path);
void kvc_log_set_default_level(enum kvc_log_level);
/* Set one module's level ("rpc", "*" for all).  Returns 0 or -ENOENT. */
int kvc_log_set_level(const char *module, enum kvc_log_level);
/* "err", "warn", "info", "dbg"/"debug"; returns -1 if unknown. */
int kvc_log_level_from_string(const char *);
const char *kvc_log_level_to_string(enum kvc_log_level);
bool kvc_log_enabled(const struct kvc_log_module *, enum kvc_log_level);

void kvc_log(const struct kvc_log_module *, enum kvc_log_level,
             const char *func, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Returns true if the line may be printed now; counts what it drops. */
bool kvc_ratelimit_ok(struct kvc_ratelimit *);

#define KVC_LOG_(LVL, ...)                                                    \
    do {                                                                      \
        if (kvc_log_enabled(&kvc_log_this_module, LVL))                       \
            kvc_log(&kvc_log_this_module, LVL, __func__, __VA_ARGS__);        \
    } while (0)
#define KVC_LOG_RL_(RL, LVL, ...)                                             \
    do {                                                                      \
        if (kvc_log_enabled(&kvc_log_this_module, LVL)                        \
            && kvc_ratelimit_ok(RL))                                          \
            kvc_log(&kvc_log_this_module, LVL, __func__, __VA_ARGS__);        \
    } while (0)

#define kvc_err(...)  KVC_LOG_(KVC_LOG_ERR, __VA_ARGS__)
#define kvc_warn(...) KVC_LOG_(KVC_LOG_WARN, __VA_ARGS__)
#define kvc_info(...) KVC_LOG_(KVC_LOG_INFO, __VA_ARGS__)
#define kvc_dbg(...)  KVC_LOG_(KVC_LOG_DBG, __VA_ARGS__)
#define kvc_err_rl(RL, ...)  KVC_LOG_RL_(RL, KVC_LOG_ERR, __VA_ARGS__)
#define kvc_warn_rl(RL, ...) KVC_LOG_RL_(RL, KVC_LOG_WARN, __VA_ARGS__)
#define kvc_info_rl(RL, ...) KVC_LOG_RL_(RL, KVC_LOG_INFO, __VA_ARGS__)
#define kvc_dbg_rl(RL, ...)  KVC_LOG_RL_(RL, KVC_LOG_DBG, __VA_ARGS__)

/* Broken invariant: log and abort. */
#define kvc_fatal(...)                                                        \
    do {                                                                      \
        kvc_log(&kvc_log_this_module, KVC_LOG_ERR, __func__, __VA_ARGS__);    \
        abort();                                                              \
    } while (0)

#endif
