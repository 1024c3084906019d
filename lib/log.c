#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static pthread_mutex_t log_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct kvc_log_module *modules;
static int default_level = KVC_LOG_INFO;
static char progname[32] = "kvc";
static int log_fd = STDERR_FILENO;

static const char *const level_names[] = {
    [KVC_LOG_OFF] = "OFF", [KVC_LOG_ERR] = "ERR", [KVC_LOG_WARN] = "WARN",
    [KVC_LOG_INFO] = "INFO", [KVC_LOG_DBG] = "DBG",
};

void
kvc_log_register(struct kvc_log_module *m)
{
    pthread_mutex_lock(&log_mutex);
    m->next = modules;
    modules = m;
    pthread_mutex_unlock(&log_mutex);
}

void
kvc_log_init(const char *name)
{
    const char *slash = strrchr(name, '/');
    snprintf(progname, sizeof progname, "%s", slash ? slash + 1 : name);
    const char *env = getenv("KVC_LOG_LEVEL");
    if (env) {
        int l = kvc_log_level_from_string(env);
        if (l >= 0)
            default_level = l;
    }
}

int
kvc_log_open(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    pthread_mutex_lock(&log_mutex);
    if (log_fd != STDERR_FILENO)
        close(log_fd);
    log_fd = fd;
    pthread_mutex_unlock(&log_mutex);
    return 0;
}

void
kvc_log_set_default_level(enum kvc_log_level l)
{
    default_level = l;
}

int
kvc_log_set_level(const char *name, enum kvc_log_level l)
{
    int found = -ENOENT;
    pthread_mutex_lock(&log_mutex);
    for (struct kvc_log_module *m = modules; m; m = m->next) {
        if (!strcmp(name, "*") || !strcmp(name, m->name)) {
            m->level = l;
            found = 0;
        }
    }
    pthread_mutex_unlock(&log_mutex);
    if (!strcmp(name, "*"))
        default_level = l;
    return found;
}

int
kvc_log_level_from_string(const char *s)
{
    if (!strcasecmp(s, "off")) return KVC_LOG_OFF;
    if (!strcasecmp(s, "err") || !strcasecmp(s, "error")) return KVC_LOG_ERR;
    if (!strcasecmp(s, "warn") || !strcasecmp(s, "warning")) return KVC_LOG_WARN;
    if (!strcasecmp(s, "info")) return KVC_LOG_INFO;
    if (!strcasecmp(s, "dbg") || !strcasecmp(s, "debug")) return KVC_LOG_DBG;
    return -1;
}

const char *
kvc_log_level_to_string(enum kvc_log_level l)
{
    return (unsigned) l <= KVC_LOG_DBG ? level_names[l] : "?";
}

bool
kvc_log_enabled(const struct kvc_log_module *m, enum kvc_log_level l)
{
    int lvl = m->level >= 0 ? m->level : default_level;
    return (int) l <= lvl;
}

bool
kvc_ratelimit_ok(struct kvc_ratelimit *rl)
{
    time_t now = time(NULL);
    bool ok;
    pthread_mutex_lock(&log_mutex);
    if (now - rl->start >= (time_t) rl->interval) {
        rl->start = now;
        rl->count = 0;
    }
    ok = rl->count < rl->burst;
    if (ok)
        rl->count++;
    else
        rl->dropped++;
    pthread_mutex_unlock(&log_mutex);
    return ok;
}

void
kvc_log(const struct kvc_log_module *m, enum kvc_log_level l,
        const char *func, const char *fmt, ...)
{
    char line[2048];
    struct timeval tv;
    struct tm tm;
    int saved_errno = errno;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof line,
                     "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%ld] %s %s: %s: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, (long) tv.tv_usec / 1000, progname,
                     (long) getpid(), kvc_log_level_to_string(l), m->name, func);
    if (n < 0)
        return;
    if ((size_t) n < sizeof line) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(line + n, sizeof line - n, fmt, ap);
        va_end(ap);
        if (k > 0)
            n += k;
    }
    if ((size_t) n >= sizeof line - 1)
        n = sizeof line - 2;
    /* One line per message, whatever the message held. */
    for (int i = 0; i < n; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[n++] = '\n';
    pthread_mutex_lock(&log_mutex);
    ssize_t w = write(log_fd, line, n);
    (void) w;
    pthread_mutex_unlock(&log_mutex);
    errno = saved_errno;
}
