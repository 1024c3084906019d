/* A test double of vmx for vmkd's tests (never installed, never used by
 * anything but tests/integration/test_vmkd*.py).  It obeys vmx's process
 * contract:
 *
 *     vmx -c CONFIG -s CONTROL_SOCKET [-l LOGFILE] [-n]
 *
 * It listens on CONTROL_SOCKET, prints "VMX-READY pid=<pid>" and runs until
 * SIGTERM (then exits 0).  Instead of a guest it runs `vcpus` threads doing
 * what the config's `workload` key says:
 *   idle      threads sleep
 *   burn      threads spin (CPU scheduling tests)
 *   crash     abort() shortly after ready (a crashed VM)
 *   exit3     exit(3) shortly after ready
 *   fail      exit(1) before ready (a VM that cannot start)
 *   noready   never print VMX-READY
 *   ignoreterm  ignore SIGTERM (forces vmkd's SIGKILL)
 * -n only checks that CONFIG is readable and exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static const char *sockpath;

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

static void *burn(void *arg)
{
    volatile unsigned long n = 0;
    (void)arg;
    while (!stop)
        n++;
    return NULL;
}

static void *idle(void *arg)
{
    (void)arg;
    while (!stop)
        pause();
    return NULL;
}

/* value of `key = value` (any section), quotes stripped */
static int conf_get(const char *path, const char *key, char *out, size_t len)
{
    FILE *f = fopen(path, "r");
    char line[512];
    if (!f)
        return -1;
    int found = -1;
    while (fgets(line, sizeof(line), f)) {
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        size_t kl = strlen(key);
        const char *dotted = strrchr(key, '.');
        const char *tail = dotted ? dotted + 1 : key;
        size_t tl = strlen(tail);
        char *v = NULL;
        if (strncmp(p, key, kl) == 0 && (p[kl] == ' ' || p[kl] == '='))
            v = p + kl;
        else if (strncmp(p, tail, tl) == 0 && (p[tl] == ' ' || p[tl] == '='))
            v = p + tl;
        if (!v)
            continue;
        while (*v == ' ' || *v == '=' || *v == '"' || *v == '\'')
            v++;
        v[strcspn(v, "\"'#\r\n")] = '\0';
        while (*v && v[strlen(v) - 1] == ' ')
            v[strlen(v) - 1] = '\0';
        snprintf(out, len, "%s", v);
        found = 0;
    }
    fclose(f);
    return found;
}

int main(int argc, char **argv)
{
    const char *conf = NULL, *logp = NULL;
    int check = 0, opt;
    /* vmx's other options (a NIC's fds, resume, migration) are taken and
     * ignored: the double has no devices and no state to move. */
    static const struct option longs[] = {
        { "net-fds", required_argument, NULL, 'N' },
        { "restore", required_argument, NULL, 'R' },
        { "incoming", required_argument, NULL, 'I' },
        { "incoming-tls", required_argument, NULL, 'T' },
        { "incoming-peer", required_argument, NULL, 'P' },
        { "incoming-disk", no_argument, NULL, 'D' },
        { "incoming-own-lease", no_argument, NULL, 'O' },
        { "net-socket", required_argument, NULL, 'K' },
        { "net-id", required_argument, NULL, 'J' },
        { NULL, 0, NULL, 0 },
    };
    while ((opt = getopt_long(argc, argv, "c:s:l:n", longs, NULL)) != -1) {
        switch (opt) {
        case 'c': conf = optarg; break;
        case 's': sockpath = optarg; break;
        case 'l': logp = optarg; break;
        case 'n': check = 1; break;
        case 'N': case 'R': case 'I': case 'T': case 'P': case 'D': case 'O': case 'K': case 'J': break;
        default: return 2;
        }
    }
    if (!conf || (!sockpath && !check)) {
        fprintf(stderr, "usage: vmx -c CONFIG -s SOCKET [-l LOG] [-n]\n");
        return 2;
    }
    char workload[64] = "idle", vcpus_s[16] = "1";
    if (access(conf, R_OK) < 0) {
        fprintf(stderr, "vmx: %s: %s\n", conf, strerror(errno));
        return 1;
    }
    conf_get(conf, "guest.workload", workload, sizeof(workload));
    conf_get(conf, "vcpus", vcpus_s, sizeof(vcpus_s));
    if (check)
        return 0;
    FILE *log = logp ? fopen(logp, "a") : NULL;
    if (log)
        fprintf(log, "fake vmx pid %d workload %s\n", (int)getpid(), workload);
    if (strcmp(workload, "fail") == 0) {
        fprintf(stderr, "vmx: cannot start: workload 'fail' asked for it\n");
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = strcmp(workload, "ignoreterm") == 0 ? SIG_IGN : on_term;
    sigaction(SIGTERM, &sa, NULL);

    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sockpath);
    unlink(sockpath);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(fd, 4) < 0) {
        fprintf(stderr, "vmx: control socket %s: %s\n", sockpath, strerror(errno));
        return 1;
    }
    int n = atoi(vcpus_s);
    if (n < 1 || n > 64)
        n = 1;
    sigset_t term, old;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &term, &old);     /* only the main thread takes SIGTERM */
    for (int i = 0; i < n; i++) {
        pthread_t t;
        pthread_create(&t, NULL, strcmp(workload, "burn") == 0 ? burn : idle, NULL);
        pthread_detach(t);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    /* Tell the tests which fds vmkd let through (only 0, 1, 2 expected). */
    char fdl[256] = "";
    for (int i = 0; i < 64; i++)
        if (i != fd && fcntl(i, F_GETFD) >= 0)
            snprintf(fdl + strlen(fdl), sizeof(fdl) - strlen(fdl), " %d", i);
    printf("fake-vmx inherited fds:%s\n", fdl);
    if (strcmp(workload, "noready") != 0) {
        printf("VMX-READY pid=%d\n", (int)getpid());
        fflush(stdout);
    }
    struct timespec ts = { 0, 20 * 1000 * 1000 };
    if (strcmp(workload, "crash") == 0) {
        nanosleep(&ts, NULL);
        abort();
    }
    if (strcmp(workload, "exit3") == 0) {
        nanosleep(&ts, NULL);
        exit(3);
    }
    while (!stop)
        pause();
    unlink(sockpath);
    if (log) {
        fprintf(log, "fake vmx pid %d powered off\n", (int)getpid());
        fclose(log);
    }
    return 0;
}
