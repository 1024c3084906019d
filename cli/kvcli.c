/* kvcli: the esxcli-like remote CLI.
 *   kvcli [--server URL] [--user U] [--password P | --session-file F]
 *         [--thumbprint T] [--formatter=table|json|csv|xml|keyvalue]
 *         {namespace}+ {cmd} [cmd options]
 * Global options may also come from KVCLI_SERVER, KVCLI_USER,
 * KVCLI_PASSWORD, KVCLI_SESSION_FILE, KVCLI_THUMBPRINT. */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "rest.h"

struct kvcli {
    struct kvc_rest_opts opts;
    struct kvc_rest *rest;
    char thumb[96];
};

static void
global_help(FILE *f)
{
    fputs("Options:\n"
          "  --server=<url>        the server: vpxd or a host (https://HOST:PORT)\n"
          "  --user=<str>          user name to log in with\n"
          "  --password=<str>      password (or KVCLI_PASSWORD)\n"
          "  --session-file=<path> keep the session token here and reuse it\n"
          "  --thumbprint=<str>    the server certificate's SHA-256 thumbprint\n"
          "  --formatter=<str>     table (default), json, csv, xml, keyvalue\n"
          "  --version             print kvcli's version\n"
          "  --help                this help\n\n", f);
}

/* ~/.config/kvcli/known_servers: "URL THUMBPRINT" lines. */
static char *
known_path(void)
{
    const char *p = getenv("KVCLI_KNOWN_SERVERS");
    if (p)
        return strdup(p);
    const char *home = getenv("HOME");
    char *s = NULL;
    if (!home || asprintf(&s, "%s/.config/kvcli/known_servers", home) < 0)
        return NULL;
    return s;
}

static bool
known_lookup(const char *server, char *out, size_t len)
{
    char *path = known_path();
    FILE *f = path ? fopen(path, "r") : NULL;
    char line[512];
    bool found = false;
    free(path);
    if (!f)
        return false;
    while (!found && fgets(line, sizeof line, f)) {
        char url[400], tp[100];
        if (sscanf(line, "%399s %99s", url, tp) == 2 && !strcmp(url, server)) {
            snprintf(out, len, "%.95s", tp);
            found = true;
        }
    }
    fclose(f);
    return found;
}

static void
known_add(const char *server, const char *thumb)
{
    char *path = known_path();
    if (!path)
        return;
    char *slash = strrchr(path, '/');
    if (slash && slash != path) {
        *slash = 0;
        char *p = path;
        /* mkdir -p of the directory */
        for (char *q = p + 1; *q; q++) {
            if (*q == '/') {
                *q = 0;
                mkdir(p, 0700);
                *q = '/';
            }
        }
        mkdir(p, 0700);
        *slash = '/';
    }
    FILE *f = fopen(path, "a");
    if (f) {
        fprintf(f, "%s %s\n", server, thumb);
        fclose(f);
    }
    free(path);
}

/* The thumbprint to pin: given, remembered, or shown and accepted. */
static int
choose_thumbprint(struct kvcli *k, char *err, size_t errlen)
{
    if (k->opts.thumbprint)
        return 0;
    if (known_lookup(k->opts.server, k->thumb, sizeof k->thumb)) {
        k->opts.thumbprint = k->thumb;
        return 0;
    }
    char real[96];
    int rc = kvc_rest_fetch_thumbprint(k->opts.server, k->opts.timeout_ms, real,
                                       sizeof real, err, errlen);
    if (rc)
        return rc;
    if (isatty(STDIN_FILENO) && isatty(STDERR_FILENO)) {
        fprintf(stderr, "The server %s is not known.\nIts certificate's SHA-256 "
                "thumbprint is\n  %s\nTrust it and remember it? [y/N] ",
                k->opts.server, real);
        char ans[16] = "";
        if (fgets(ans, sizeof ans, stdin) && (ans[0] == 'y' || ans[0] == 'Y')) {
            known_add(k->opts.server, real);
            snprintf(k->thumb, sizeof k->thumb, "%s", real);
            k->opts.thumbprint = k->thumb;
            return 0;
        }
    }
    snprintf(err, errlen, "The server %s is not known: its certificate's "
             "SHA-256 thumbprint is %s. Check it, then pass --thumbprint %s",
             k->opts.server, real, real);
    return -EPERM;
}

static int
rest_call(struct kvc_ctx *ctx, const char *method, const char *path,
          const json_t *body, long *status, json_t **reply, char *err,
          size_t errlen)
{
    struct kvcli *k = ctx->priv;
    if (!k->rest) {
        if (!k->opts.server) {
            snprintf(err, errlen, "no server: give --server https://HOST:PORT "
                     "(or set KVCLI_SERVER)");
            return -EINVAL;
        }
        int rc = choose_thumbprint(k, err, errlen);
        if (!rc)
            rc = kvc_rest_open(&k->rest, &k->opts, err, errlen);
        if (rc)
            return rc;
    }
    return kvc_rest_call(k->rest, method, path, body, status, reply, err, errlen);
}

/* --name=value or --name value; returns the value, advancing *I. */
static const char *
opt_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n))
        return NULL;
    if (a[n] == '=')
        return a + n + 1;
    if (a[n] == 0 && *i + 1 < argc)
        return argv[++*i];
    return NULL;
}

static const char *const global_opts[] = {
    "--server", "--user", "--password", "--session-file", "--thumbprint",
    "--formatter", NULL,
};

/* `kvcli --complete WORD...`: what may follow WORDS (bash completion). */
static int
complete(int n, char **words)
{
    int i = 0;
    /* Skip the global options and their values. */
    while (i < n && words[i][0] == '-') {
        bool takes = false;
        for (int k = 0; global_opts[k]; k++)
            if (!strcmp(words[i], global_opts[k]))
                takes = true;
        if (takes && i + 1 == n) {
            if (!strcmp(words[i], "--formatter"))
                for (int k = 0; kvc_formatter_names[k]; k++)
                    printf("%s\n", kvc_formatter_names[k]);
            return 0;
        }
        i += takes ? 2 : 1;
    }
    if (i == n)
        for (int k = 0; global_opts[k]; k++)
            printf("%s\n", global_opts[k]);
    kvc_cmd_complete(&kvcli_table, n - i, words + i, stdout);
    return 0;
}

int
main(int argc, char **argv)
{
    struct kvcli k = { 0 };
    enum kvc_formatter fmt = KVC_FMT_TABLE;
    int i;

    k.opts.server = getenv("KVCLI_SERVER");
    k.opts.user = getenv("KVCLI_USER");
    k.opts.password = getenv("KVCLI_PASSWORD");
    k.opts.session_file = getenv("KVCLI_SESSION_FILE");
    k.opts.thumbprint = getenv("KVCLI_THUMBPRINT");
    if (argc > 1 && !strcmp(argv[1], "--complete"))
        return complete(argc - 2, argv + 2);
    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        const char *v;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            kvc_ns_help(&kvcli_table, "", stdout);
            fputc('\n', stdout);
            global_help(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--version")) {
            printf("kvcli %s\n", PACKAGE_VERSION);
            return 0;
        } else if ((v = opt_value(argc, argv, &i, "--server"))) {
            k.opts.server = v;
        } else if ((v = opt_value(argc, argv, &i, "--user"))) {
            k.opts.user = v;
        } else if ((v = opt_value(argc, argv, &i, "--password"))) {
            k.opts.password = v;
        } else if ((v = opt_value(argc, argv, &i, "--session-file"))) {
            k.opts.session_file = v;
        } else if ((v = opt_value(argc, argv, &i, "--thumbprint"))) {
            k.opts.thumbprint = v;
        } else if ((v = opt_value(argc, argv, &i, "--formatter"))) {
            int f = kvc_formatter_from_name(v);
            if (f < 0) {
                fprintf(stderr, "Error: While processing '--formatter'. Unknown "
                        "formatter '%s': use table, json, csv, xml or keyvalue.\n", v);
                return 1;
            }
            fmt = (enum kvc_formatter)f;
        } else {
            fprintf(stderr, "Error: Invalid option %s\n\nUsage: kvcli [options] "
                    "{namespace}+ {cmd} [cmd options]\n\n", argv[i]);
            global_help(stderr);
            return 1;
        }
    }
    struct kvc_ctx ctx = { .call = rest_call, .priv = &k };
    int rc = kvc_cmd_main(&kvcli_table, &ctx, argc - i, argv + i, fmt, stdout,
                          stderr);
    kvc_rest_close(k.rest);
    return rc;
}
