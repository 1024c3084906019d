/* kvc-cimd: the host CIM server on its own, for tests and for hosts that
 * want CIM without hostd.  hostd embeds the same module (hostd/cim/).
 *
 *   kvc-cimd [--listen ADDR:PORT] --user NAME --password-file FILE
 *            [--tls-cert PEM --tls-key PEM] [--sysroot DIR] [--hostname NAME]
 *            [--vms FILE.json] [--log FILE]
 *
 * --vms names a JSON array of {"name","uuid","power_state","guest_os",
 * "memory_mb","vcpus"} objects, read again on every request.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "hostd/cim/cim.h"
#include "log.h"

KVC_LOG_MODULE(cimd);

struct opts {
    const char *user;
    char password[256];
    const char *vms_path;
};

static bool
check_auth(void *ctx, const char *user, const char *password)
{
    const struct opts *o = ctx;
    size_t a = strlen(password), b = strlen(o->password);
    unsigned char diff = a != b;
    for (size_t k = 0; k < b; k++)
        diff |= (unsigned char)o->password[k] ^ (unsigned char)(k < a ? password[k] : 0);
    return !diff && !strcmp(user, o->user);
}

static int
list_vms(void *ctx, struct kvc_cim_vm **out, size_t *n)
{
    const struct opts *o = ctx;
    *out = NULL;
    *n = 0;
    if (!o->vms_path)
        return 0;
    json_error_t jerr;
    json_t *arr = json_load_file(o->vms_path, 0, &jerr);
    if (!arr || !json_is_array(arr)) {
        kvc_warn("%s: %s", o->vms_path, arr ? "not a JSON array" : jerr.text);
        json_decref(arr);
        return -EINVAL;
    }
    size_t cnt = json_array_size(arr);
    struct kvc_cim_vm *v = calloc(cnt ? cnt : 1, sizeof *v);
    if (!v) {
        json_decref(arr);
        return -ENOMEM;
    }
    for (size_t k = 0; k < cnt; k++) {
        json_t *o2 = json_array_get(arr, k);
        const char *s;
        if ((s = json_string_value(json_object_get(o2, "name"))))
            snprintf(v[k].name, sizeof v[k].name, "%s", s);
        if ((s = json_string_value(json_object_get(o2, "uuid"))))
            snprintf(v[k].uuid, sizeof v[k].uuid, "%s", s);
        if ((s = json_string_value(json_object_get(o2, "power_state"))))
            snprintf(v[k].power_state, sizeof v[k].power_state, "%s", s);
        if ((s = json_string_value(json_object_get(o2, "guest_os"))))
            snprintf(v[k].guest_os, sizeof v[k].guest_os, "%s", s);
        v[k].memory_mb = json_integer_value(json_object_get(o2, "memory_mb"));
        v[k].vcpus = json_integer_value(json_object_get(o2, "vcpus"));
    }
    json_decref(arr);
    *out = v;
    *n = cnt;
    return 0;
}

static char *
slurp(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (m) {
        char tmp[4096];
        size_t n;
        while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
            fwrite(tmp, 1, n, m);
        fclose(m);
    }
    fclose(f);
    return buf;
}

static void
usage(void)
{
    fprintf(stderr, "usage: kvc-cimd [--listen ADDR:PORT] --user NAME --password-file FILE\n"
                    "                [--tls-cert PEM --tls-key PEM] [--sysroot DIR]\n"
                    "                [--hostname NAME] [--vms FILE.json] [--log FILE]\n");
    exit(2);
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "listen", required_argument, NULL, 'l' },
        { "user", required_argument, NULL, 'u' },
        { "password-file", required_argument, NULL, 'p' },
        { "tls-cert", required_argument, NULL, 'c' },
        { "tls-key", required_argument, NULL, 'k' },
        { "sysroot", required_argument, NULL, 's' },
        { "hostname", required_argument, NULL, 'H' },
        { "vms", required_argument, NULL, 'v' },
        { "log", required_argument, NULL, 'L' },
        { NULL, 0, NULL, 0 },
    };
    struct opts o = { .user = "root" };
    struct kvc_cim_config cfg = { .address = "127.0.0.1", .port = 5988 };
    struct kvc_cim_provider pv = { .ctx = &o, .check_auth = check_auth, .list_vms = list_vms };
    const char *pwfile = NULL, *certf = NULL, *keyf = NULL;
    char addr[64];
    int opt;

    kvc_log_init("kvc-cimd");
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'l': {
            const char *colon = strrchr(optarg, ':');
            if (!colon || (size_t)(colon - optarg) >= sizeof addr)
                usage();
            memcpy(addr, optarg, colon - optarg);
            addr[colon - optarg] = 0;
            cfg.address = addr;
            char *end;
            long port = strtol(colon + 1, &end, 10);
            if (*end || port < 0 || port > 65535)
                usage();
            cfg.port = port;
            break;
        }
        case 'u': o.user = optarg; break;
        case 'p': pwfile = optarg; break;
        case 'c': certf = optarg; break;
        case 'k': keyf = optarg; break;
        case 's': pv.sysroot = optarg; break;
        case 'H': pv.hostname = optarg; break;
        case 'v': o.vms_path = optarg; break;
        case 'L':
            if (kvc_log_open(optarg) < 0) {
                fprintf(stderr, "kvc-cimd: cannot open log %s\n", optarg);
                return 1;
            }
            break;
        default: usage();
        }
    }
    if (!pwfile || optind != argc)
        usage();
    FILE *f = fopen(pwfile, "re");
    if (!f || !fgets(o.password, sizeof o.password, f)) {
        kvc_err("cannot read password file %s", pwfile);
        if (f)
            fclose(f);
        return 1;
    }
    fclose(f);
    o.password[strcspn(o.password, "\r\n")] = 0;

    char *cert = NULL, *key = NULL;
    if (!!certf != !!keyf)
        usage();
    if (certf) {
        cert = slurp(certf);
        key = slurp(keyf);
        if (!cert || !key) {
            kvc_err("cannot read TLS certificate or key");
            return 1;
        }
        cfg.tls_cert_pem = cert;
        cfg.tls_key_pem = key;
    }

    /* Block the stop signals before the server thread starts, so that only
     * sigwait below sees them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct kvc_cim_server *srv;
    int r = kvc_cim_server_start(&cfg, &pv, &srv);
    if (r < 0) {
        kvc_err("cannot start: %s", strerror(-r));
        return 1;
    }
    kvc_info("ready on port %u", kvc_cim_server_port(srv));
    int sig;
    sigwait(&set, &sig);
    kvc_info("stopping (signal %d)", sig);
    kvc_cim_server_stop(srv);
    free(cert);
    free(key);
    explicit_bzero(o.password, sizeof o.password);
    return 0;
}
