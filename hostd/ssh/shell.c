/* Command lines of the SSH shell against cli/'s command table (see ssh.h).
 *
 * The table's commands reach their API through struct kvc_ctx's call();
 * here that call is hostd_api_call(), the host's API answered in process,
 * so a command runs the same code as kvcli's and prints the same bytes.
 * The whole command (parse, run, format) runs on the loop thread, into
 * memory streams that the session thread then sends. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "hostd/hostd.h"
#include "hostd/ssh/ssh.h"

#define MAX_WORDS 64

void
hostd_words_free(char **w, int n)
{
    for (int i = 0; w && i < n; i++)
        free(w[i]);
    free(w);
}

int
hostd_split_words(const char *line, char ***out, int *nout, char *err, size_t errlen)
{
    char **w = calloc(MAX_WORDS, sizeof *w);
    size_t len = strlen(line);
    char *cur = malloc(len + 1);
    int n = 0;
    size_t cl = 0;
    bool in_word = false;
    char quote = 0;

    *out = NULL;
    *nout = 0;
    if (!w || !cur) {
        free(w);
        free(cur);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    for (const char *p = line;; p++) {
        char c = *p;
        if (!c) {
            if (quote) {
                snprintf(err, errlen, "unterminated %s quote",
                         quote == '\'' ? "single" : "double");
                goto fail;
            }
        } else if (quote) {
            if (c == quote) {
                quote = 0;
            } else if (quote == '"' && c == '\\' && (p[1] == '"' || p[1] == '\\')) {
                cur[cl++] = *++p;
            } else {
                cur[cl++] = c;
            }
            continue;
        } else if (c == '\'' || c == '"') {
            quote = c;
            in_word = true;
            continue;
        } else if (c == '\\') {
            if (p[1]) {
                cur[cl++] = *++p;
                in_word = true;
            }
            continue;
        } else if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
            if ((unsigned char)c < 0x20 || c == 0x7f) {
                snprintf(err, errlen, "control character 0x%02x in the command line",
                         (unsigned)(unsigned char)c);
                goto fail;
            }
            cur[cl++] = c;
            in_word = true;
            continue;
        }
        /* End of a word (blank or end of line). */
        if (in_word) {
            if (n == MAX_WORDS) {
                snprintf(err, errlen, "too many words (at most %d)", MAX_WORDS);
                goto fail;
            }
            if (!(w[n] = strndup(cur, cl))) {
                snprintf(err, errlen, "out of memory");
                goto fail;
            }
            n++;
            cl = 0;
            in_word = false;
        }
        if (!c)
            break;
    }
    free(cur);
    *out = w;
    *nout = n;
    return 0;
fail:
    free(cur);
    hostd_words_free(w, n);
    return -EINVAL;
}

/* The table as esxcli: same commands, "esxcli" in usage lines. */
static struct kvc_cmd_table esxcli;
static pthread_once_t esxcli_once = PTHREAD_ONCE_INIT;

static void
esxcli_init(void)
{
    esxcli = kvcli_table;
    esxcli.prog = "esxcli";
}

static const struct kvc_cmd_table *
esxcli_table(void)
{
    pthread_once(&esxcli_once, esxcli_init);
    return &esxcli;
}

static int
hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* The commands percent-encode names in paths ("VM%20Network"); over HTTPS
 * libmicrohttpd decodes the path before hostd_api_call sees it, so this
 * transport decodes it too (the query is left alone). */
static int
local_call(struct kvc_ctx *ctx, const char *method, const char *path,
           const json_t *body, long *status, json_t **reply, char *err, size_t errlen)
{
    char decoded[1024];
    size_t o = 0;
    const char *p = path;

    for (; *p && *p != '?' && o + 1 < sizeof decoded; p++) {
        int hi, lo;
        if (*p == '%' && (hi = hexval(p[1])) >= 0 && (lo = hexval(p[2])) >= 0) {
            decoded[o++] = (char)(hi * 16 + lo);
            p += 2;
        } else {
            decoded[o++] = *p;
        }
    }
    if (strlen(p) >= sizeof decoded - o) {
        snprintf(err, errlen, "request path too long");
        return -ENAMETOOLONG;
    }
    memcpy(decoded + o, p, strlen(p) + 1);
    hostd_api_call(ctx->priv, method, decoded, body, status, reply);
    return 0;
}

struct cmd_job {
    struct hostd_host *h;
    int nwords;
    char **words;
    enum kvc_formatter fmt;
    struct hostd_cmd_result *res;
};

static void
run_on_loop(void *arg)
{
    struct cmd_job *j = arg;
    struct kvc_ctx ctx = { .call = local_call, .priv = j->h };
    FILE *o = open_memstream(&j->res->out, &j->res->out_len);
    FILE *e = open_memstream(&j->res->err, &j->res->err_len);

    if (!o || !e) {
        if (o)
            fclose(o);
        if (e)
            fclose(e);
        j->res->status = 1;
        return;
    }
    j->res->status = kvc_cmd_main(esxcli_table(), &ctx, j->nwords, j->words, j->fmt, o, e);
    fclose(o);
    fclose(e);
}

__attribute__((format(printf, 2, 3)))
static int
set_err(struct hostd_cmd_result *r, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof buf)
        n = (int)sizeof buf - 1;
    free(r->err);
    r->err = strdup(buf);
    r->err_len = r->err ? (size_t)n : 0;
    r->status = 1;
    return -EINVAL;
}

int
hostd_shell_run_line(struct hostd_bridge *br, struct hostd_host *h, const char *line,
                     struct hostd_cmd_result *res)
{
    char **w = NULL, msg[256];
    int n = 0, rc;
    int i = 0;
    enum kvc_formatter fmt = KVC_FMT_TABLE;

    memset(res, 0, sizeof *res);
    if ((rc = hostd_split_words(line, &w, &n, msg, sizeof msg)))
        return set_err(res, "Error: %s\n", msg);
    if (n > 0 && !strcmp(w[0], "esxcli")) {
        /* esxcli's own options come before the namespaces. */
        for (i = 1; i < n && w[i][0] == '-'; i++) {
            const char *v = NULL;
            if (!strncmp(w[i], "--formatter=", 12))
                v = w[i] + 12;
            else if (!strcmp(w[i], "--formatter") && i + 1 < n)
                v = w[++i];
            else if (!strcmp(w[i], "--help") || !strcmp(w[i], "-h"))
                break;
            else {
                rc = set_err(res, "Error: Invalid option %s\n", w[i]);
                goto out;
            }
            int f = kvc_formatter_from_name(v);
            if (f < 0) {
                rc = set_err(res, "Error: While processing '--formatter'. Unknown formatter "
                             "'%s': use table, json, csv, xml or keyvalue.\n", v);
                goto out;
            }
            fmt = (enum kvc_formatter)f;
        }
    }
    struct cmd_job j = { .h = h, .nwords = n - i, .words = w + i, .fmt = fmt, .res = res };
    rc = hostd_bridge_run(br, run_on_loop, &j);
    if (rc) {
        set_err(res, "Error: hostd is shutting down\n");
        goto out;
    }
    if (!res->out) {
        res->out = strdup("");
        res->out_len = 0;
    }
    if (!res->err) {
        res->err = strdup("");
        res->err_len = 0;
    }
    if (!res->out || !res->err) {
        rc = -ENOMEM;
        res->status = 1;
    }
out:
    hostd_words_free(w, n);
    return rc;
}

void
hostd_cmd_result_free(struct hostd_cmd_result *r)
{
    if (!r)
        return;
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}
