/* The shared command table: parsing, validation, help.  See cmd.h. */
#include "cmd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "configfile.h"         /* kvc_parse_int64, kvc_parse_bool */

/* Does PATH start with the words of PREFIX (whole words)? */
static bool
path_has_prefix(const char *path, const char *prefix)
{
    size_t n = strlen(prefix);
    if (n == 0)
        return true;
    return !strncmp(path, prefix, n) && (path[n] == ' ' || path[n] == 0);
}

static bool
is_namespace(const struct kvc_cmd_table *t, const char *path)
{
    for (const struct kvc_cmd *c = t->cmds; c->path; c++)
        if (path_has_prefix(c->path, path) && strcmp(c->path, path))
            return true;
    return false;
}

static const char *
ns_help_text(const struct kvc_cmd_table *t, const char *path)
{
    for (const struct kvc_ns *n = t->namespaces; n && n->path; n++)
        if (!strcmp(n->path, path))
            return n->help;
    return "";
}

static void
two_col(FILE *f, const char *left, const char *right)
{
    if (strlen(left) <= 20)
        fprintf(f, "  %-20s  %s\n", left, right ? right : "");
    else
        fprintf(f, "  %s\n  %-20s  %s\n", left, "", right ? right : "");
}

static const char *
opt_metavar(const struct kvc_opt *o)
{
    switch (o->type) {
    case KVC_OPT_INT: return "long";
    case KVC_OPT_BOOL: return "bool";
    default: return "str";
    }
}

static void
opt_spec(const struct kvc_opt *o, char *buf, size_t len)
{
    if (o->short_name)
        snprintf(buf, len, "-%c|--%s=<%s>", o->short_name, o->name, opt_metavar(o));
    else
        snprintf(buf, len, "--%s=<%s>", o->name, opt_metavar(o));
}

static void
opt_display(const struct kvc_opt *o, char *buf, size_t len)
{
    if (o->short_name)
        snprintf(buf, len, "-%c|--%s", o->short_name, o->name);
    else
        snprintf(buf, len, "--%s", o->name);
}

void
kvc_cmd_usage(const struct kvc_cmd_table *t, const struct kvc_cmd *c, FILE *f)
{
    const char *verb = strrchr(c->path, ' ');
    verb = verb ? verb + 1 : c->path;
    fprintf(f, "Usage: %s %s [cmd options]\n\nDescription:\n", t->prog, c->path);
    two_col(f, verb, c->help);
    fprintf(f, "\nCmd options:\n");
    if (!c->opts || !c->opts[0].name) {
        fprintf(f, "  (none)\n");
        return;
    }
    for (const struct kvc_opt *o = c->opts; o->name; o++) {
        char spec[96], help[512];
        size_t n = (size_t)snprintf(help, sizeof help, "%s", o->help ? o->help : "");
        if (o->type == KVC_OPT_ENUM && n < sizeof help) {
            n += (size_t)snprintf(help + n, sizeof help - n, " (one of:");
            for (int i = 0; o->values[i] && n < sizeof help; i++)
                n += (size_t)snprintf(help + n, sizeof help - n, " %s", o->values[i]);
            if (n < sizeof help)
                n += (size_t)snprintf(help + n, sizeof help - n, ")");
        }
        if (o->required && n < sizeof help)
            snprintf(help + n, sizeof help - n, " (required)");
        opt_spec(o, spec, sizeof spec);
        two_col(f, spec, help);
    }
}

void
kvc_ns_help(const struct kvc_cmd_table *t, const char *ns, FILE *f)
{
    size_t nl = strlen(ns);
    if (*ns)
        fprintf(f, "Usage: %s %s {cmd} [cmd options]\n", t->prog, ns);
    else
        fprintf(f, "Usage: %s %s{namespace}+ {cmd} [cmd options]\n", t->prog,
                t->global_usage ? t->global_usage : "");
    /* Children one word below NS: namespaces, then commands. */
    for (int pass = 0; pass < 2; pass++) {
        bool header = false;
        for (const struct kvc_cmd *c = t->cmds; c->path; c++) {
            if (!path_has_prefix(c->path, ns))
                continue;
            const char *rest = c->path + nl + (nl ? 1 : 0);
            const char *sp = strchr(rest, ' ');
            size_t wl = sp ? (size_t)(sp - rest) : strlen(rest);
            if ((pass == 0) != (sp != NULL))
                continue;
            /* Print each child once: skip if an earlier command had it. */
            bool seen = false;
            for (const struct kvc_cmd *p = t->cmds; p < c && !seen; p++) {
                if (!path_has_prefix(p->path, ns))
                    continue;
                const char *pr = p->path + nl + (nl ? 1 : 0);
                seen = !strncmp(pr, rest, wl) && (pr[wl] == ' ' || !pr[wl]) &&
                       ((strchr(pr, ' ') != NULL) == (sp != NULL));
            }
            if (seen)
                continue;
            if (!header) {
                fprintf(f, "\n%s\n", pass == 0 ? "Available Namespaces:"
                                               : "Available Commands:");
                header = true;
            }
            char word[64], child[256];
            snprintf(word, sizeof word, "%.*s", (int)wl, rest);
            if (pass == 0) {
                snprintf(child, sizeof child, "%s%s%s", ns, nl ? " " : "", word);
                two_col(f, word, ns_help_text(t, child));
            } else {
                two_col(f, word, c->help);
            }
        }
    }
    fprintf(f, "\nFor more information on a command, add --help.\n");
}

static int
find_opt(const struct kvc_cmd *c, const char *name, size_t len, char shrt)
{
    for (int i = 0; c->opts && c->opts[i].name; i++) {
        if (shrt ? c->opts[i].short_name == shrt
                 : strlen(c->opts[i].name) == len && !strncmp(c->opts[i].name, name, len))
            return i;
    }
    return -1;
}

__attribute__((format(printf, 4, 5)))
static int
usage_error(const struct kvc_cmd_table *t, const struct kvc_cmd *c, FILE *err,
            const char *fmt, ...)
{
    va_list ap;
    fputs("Error: ", err);
    va_start(ap, fmt);
    vfprintf(err, fmt, ap);
    va_end(ap);
    fputs("\n\n", err);
    kvc_cmd_usage(t, c, err);
    return -EINVAL;
}

static int
set_value(const struct kvc_cmd_table *t, const struct kvc_cmd *c,
          struct kvc_args *a, int i, const char *v, FILE *err)
{
    const struct kvc_opt *o = &c->opts[i];
    char disp[80];
    opt_display(o, disp, sizeof disp);
    if (a->str[i])
        return usage_error(t, c, err, "Option '%s' given more than once.", disp);
    switch (o->type) {
    case KVC_OPT_STRING:
        break;
    case KVC_OPT_INT: {
        int64_t n;
        int rc = kvc_parse_int64(v, &n);
        if (rc || (o->bounded && (n < o->min || n > o->max))) {
            if (o->bounded)
                return usage_error(t, c, err, "While processing '--%s'. Expected "
                                   "an integer in the range (%" PRId64 " - %" PRId64
                                   "), got '%s'.", o->name, o->min, o->max, v);
            return usage_error(t, c, err, "While processing '--%s'. Expected an "
                               "integer, got '%s'.", o->name, v);
        }
        a->num[i] = n;
        break;
    }
    case KVC_OPT_BOOL: {
        bool b;
        if (kvc_parse_bool(v, &b))
            return usage_error(t, c, err, "While processing '--%s'. Expected a "
                               "boolean (true or false), got '%s'.", o->name, v);
        a->num[i] = b;
        break;
    }
    case KVC_OPT_ENUM: {
        int idx = -1;
        for (int k = 0; o->values[k]; k++)
            if (!strcmp(o->values[k], v))
                idx = k;
        if (idx < 0) {
            char list[256] = "";
            size_t n = 0;
            for (int k = 0; o->values[k] && n < sizeof list; k++)
                n += (size_t)snprintf(list + n, sizeof list - n, "%s%s",
                                      k ? ", " : "", o->values[k]);
            return usage_error(t, c, err, "While processing '--%s'. Invalid "
                               "value '%s': expected one of %s.", o->name, v, list);
        }
        a->num[i] = idx;
        break;
    }
    }
    a->str[i] = v;
    return 0;
}

int
kvc_cmd_parse(const struct kvc_cmd_table *t, int nwords, char **words,
              const struct kvc_cmd **cmdp, struct kvc_args *a, FILE *out,
              FILE *err)
{
    char path[512] = "";
    size_t plen = 0;
    int w = 0;
    const struct kvc_cmd *c = NULL;

    memset(a, 0, sizeof *a);
    /* The path: words up to the first option, as long as they name a
     * namespace or a command. */
    for (; w < nwords && words[w][0] != '-'; w++) {
        char next[512];
        int n = snprintf(next, sizeof next, "%s%s%s", path, plen ? " " : "",
                         words[w]);
        if (n < 0 || (size_t)n >= sizeof next)
            break;
        const struct kvc_cmd *exact = NULL;
        for (const struct kvc_cmd *k = t->cmds; k->path; k++)
            if (!strcmp(k->path, next))
                exact = k;
        if (exact) {
            c = exact;
            w++;
            break;
        }
        if (!is_namespace(t, next)) {
            fprintf(err, "Error: Unknown command or namespace %s\n\n", next);
            kvc_ns_help(t, path, err);
            return -EINVAL;
        }
        memcpy(path, next, (size_t)n + 1);
        plen = (size_t)n;
    }
    if (!c) {
        bool help = w < nwords && (!strcmp(words[w], "--help") || !strcmp(words[w], "-h"));
        if (help || w == nwords) {
            kvc_ns_help(t, path, help ? out : err);
            return help ? 0 : -EINVAL;
        }
        fprintf(err, "Error: Invalid option %s\n\n", words[w]);
        kvc_ns_help(t, path, err);
        return -EINVAL;
    }
    a->cmd = c;
    for (; w < nwords; w++) {
        const char *s = words[w];
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            kvc_cmd_usage(t, c, out);
            return 0;
        }
        int i;
        const char *v = NULL;
        if (s[0] == '-' && s[1] == '-' && s[2]) {
            const char *eq = strchr(s + 2, '=');
            size_t len = eq ? (size_t)(eq - s - 2) : strlen(s + 2);
            i = find_opt(c, s + 2, len, 0);
            if (i < 0)
                return usage_error(t, c, err, "Invalid option %.*s", (int)len + 2, s);
            if (eq)
                v = eq + 1;
        } else if (s[0] == '-' && s[1] && s[1] != '-') {
            i = find_opt(c, NULL, 0, s[1]);
            if (i < 0)
                return usage_error(t, c, err, "Invalid option -%c", s[1]);
            if (s[2])
                v = s + 2;
        } else {
            return usage_error(t, c, err, "Unexpected argument '%s'", s);
        }
        if (!v) {
            if (w + 1 >= nwords) {
                char disp[80];
                opt_display(&c->opts[i], disp, sizeof disp);
                return usage_error(t, c, err, "Missing value for option %s", disp);
            }
            v = words[++w];
        }
        if (set_value(t, c, a, i, v, err))
            return -EINVAL;
    }
    for (int i = 0; c->opts && c->opts[i].name; i++) {
        if (c->opts[i].required && !a->str[i]) {
            char disp[80];
            opt_display(&c->opts[i], disp, sizeof disp);
            return usage_error(t, c, err, "Missing required parameter %s", disp);
        }
    }
    *cmdp = c;
    return 1;
}

void
kvc_cmd_complete(const struct kvc_cmd_table *t, int nwords, char **words,
                 FILE *out)
{
    char path[512] = "";
    size_t plen = 0;
    const struct kvc_cmd *c = NULL;
    int w = 0;

    for (; w < nwords && words[w][0] != '-' && !c; w++) {
        char next[512];
        int n = snprintf(next, sizeof next, "%s%s%s", path, plen ? " " : "", words[w]);
        if (n < 0 || (size_t)n >= sizeof next)
            return;
        for (const struct kvc_cmd *k = t->cmds; k->path; k++)
            if (!strcmp(k->path, next))
                c = k;
        if (!c && !is_namespace(t, next))
            return;
        memcpy(path, next, (size_t)n + 1);
        plen = (size_t)n;
    }
    if (!c) {
        if (w < nwords)
            return;
        /* Children of PATH, each once. */
        for (const struct kvc_cmd *k = t->cmds; k->path; k++) {
            if (!path_has_prefix(k->path, path))
                continue;
            const char *rest = k->path + plen + (plen ? 1 : 0);
            size_t wl = strcspn(rest, " ");
            bool seen = false;
            for (const struct kvc_cmd *p = t->cmds; p < k && !seen; p++) {
                if (!path_has_prefix(p->path, path))
                    continue;
                const char *pr = p->path + plen + (plen ? 1 : 0);
                seen = !strncmp(pr, rest, wl) && (pr[wl] == ' ' || !pr[wl]);
            }
            if (!seen)
                fprintf(out, "%.*s\n", (int)wl, rest);
        }
        return;
    }
    /* A command: after an option that wants a value, its values. */
    if (nwords > w) {
        const char *last = words[nwords - 1];
        int i = -1;
        if (last[0] == '-' && last[1] == '-' && !strchr(last, '='))
            i = find_opt(c, last + 2, strlen(last + 2), 0);
        else if (last[0] == '-' && last[1] && last[1] != '-' && !last[2])
            i = find_opt(c, NULL, 0, last[1]);
        if (i >= 0) {
            const struct kvc_opt *o = &c->opts[i];
            if (o->type == KVC_OPT_ENUM)
                for (int k = 0; o->values[k]; k++)
                    fprintf(out, "%s\n", o->values[k]);
            else if (o->type == KVC_OPT_BOOL)
                fputs("true\nfalse\n", out);
            return;
        }
    }
    for (int i = 0; c->opts && c->opts[i].name; i++) {
        bool given = false;
        size_t nl = strlen(c->opts[i].name);
        for (int k = w; k < nwords && !given; k++) {
            const char *s = words[k];
            given = (s[0] == '-' && s[1] == '-' && !strncmp(s + 2, c->opts[i].name, nl)
                     && (s[2 + nl] == 0 || s[2 + nl] == '='))
                    || (c->opts[i].short_name && s[0] == '-' && s[1] == c->opts[i].short_name);
        }
        if (!given)
            fprintf(out, "--%s\n", c->opts[i].name);
    }
    fputs("--help\n", out);
}

static int
arg_index(const struct kvc_args *a, const char *name)
{
    for (int i = 0; a->cmd->opts && a->cmd->opts[i].name; i++)
        if (!strcmp(a->cmd->opts[i].name, name))
            return i;
    fprintf(stderr, "kvcli: command '%s' has no option '%s'\n", a->cmd->path, name);
    abort();
}

bool
kvc_arg_isset(const struct kvc_args *a, const char *name)
{
    return a->str[arg_index(a, name)] != NULL;
}

const char *
kvc_arg_str(const struct kvc_args *a, const char *name)
{
    return a->str[arg_index(a, name)];
}

int64_t
kvc_arg_int(const struct kvc_args *a, const char *name, int64_t def)
{
    int i = arg_index(a, name);
    return a->str[i] ? a->num[i] : def;
}

bool
kvc_arg_bool(const struct kvc_args *a, const char *name, bool def)
{
    int i = arg_index(a, name);
    return a->str[i] ? a->num[i] != 0 : def;
}

int
kvc_cmd_main(const struct kvc_cmd_table *t, struct kvc_ctx *ctx, int nwords,
             char **words, enum kvc_formatter fmt, FILE *out, FILE *err)
{
    const struct kvc_cmd *c = NULL;
    struct kvc_args a;
    int rc = kvc_cmd_parse(t, nwords, words, &c, &a, out, err);
    if (rc <= 0)
        return rc == 0 ? 0 : 1;
    json_t *result = NULL;
    char msg[1024] = "";
    rc = c->run(ctx, &a, &result, msg, sizeof msg);
    if (rc) {
        fprintf(err, "Error: %s\n", msg[0] ? msg : strerror(-rc));
        json_decref(result);
        return 1;
    }
    if (result && c->shape) {
        rc = kvc_format_write(out, fmt, c->shape, result);
        if (rc)
            fprintf(err, "Error: the reply could not be shown: %s\n", strerror(-rc));
    }
    json_decref(result);
    fflush(out);
    return rc ? 1 : 0;
}
