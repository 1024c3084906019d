/* Config files: parser, typed values, normal-form dump, check mode.
 * Format and error messages: docs/configuration.md. */
#include "configfile.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MAX_ERRORS 20

struct cfg_value {
    bool set;           /* written in the file or by kvc_config_set */
    bool present;       /* has a value: set, or a default */
    int line;
    union {
        char *s;
        int64_t i;
        bool b;
        uint64_t sz;
        int64_t ms;
        int e;
        struct { char **v; size_t n; } l;
    } u;
};

struct kvc_cfg_section {
    const struct kvc_cfg_section_def *def;
    char *instance;             /* named sections only */
    int line;                   /* of its header; 0: not in the file */
    size_t nkeys;
    struct cfg_value *vals;
    struct kvc_cfg_section *next;
};

struct kvc_config {
    const struct kvc_cfg_schema *schema;
    struct kvc_cfg_section *head, *tail;
};

/* ---- error collection ---- */

struct errs {
    const char *file;
    char *buf;
    size_t len, cap;
    int count;
};

__attribute__((format(printf, 3, 4)))
static void
err_add(struct errs *e, int line, const char *fmt, ...)
{
    char msg[1024], full[1400];
    va_list ap;

    if (e->count++ >= MAX_ERRORS) {
        if (e->count == MAX_ERRORS + 1)
            snprintf(msg, sizeof msg, "too many errors, giving up");
        else
            return;
    } else {
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
    }
    int n;
    if (line > 0)
        n = snprintf(full, sizeof full, "%s:%d: %s\n", e->file, line, msg);
    else
        n = snprintf(full, sizeof full, "%s: %s\n", e->file, msg);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof full)
        n = sizeof full - 1;
    if (e->len + (size_t)n + 1 > e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 256;
        while (cap < e->len + (size_t)n + 1)
            cap *= 2;
        char *nb = realloc(e->buf, cap);
        if (!nb)
            return;
        e->buf = nb;
        e->cap = cap;
    }
    memcpy(e->buf + e->len, full, (size_t)n);
    e->len += (size_t)n;
    e->buf[e->len] = 0;
}

static void
errs_hand_over(struct errs *e, char **out)
{
    if (out) {
        *out = e->buf;
        if (!*out)
            *out = strdup("");
    } else {
        free(e->buf);
    }
    e->buf = NULL;
}

/* ---- value parsers ---- */

int
kvc_parse_int64(const char *s, int64_t *out)
{
    const char *p = s;
    bool neg = false;
    int base = 10;

    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p += 2;
        if (!isxdigit((unsigned char)*p))
            return -EINVAL;
    } else if (!isdigit((unsigned char)*p)) {
        return -EINVAL;
    }
    uint64_t v = 0;
    for (; *p; p++) {
        int d;
        if (isdigit((unsigned char)*p))
            d = *p - '0';
        else if (base == 16 && isxdigit((unsigned char)*p))
            d = tolower((unsigned char)*p) - 'a' + 10;
        else
            return -EINVAL;
        if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
            return -ERANGE;
        v = v * (uint64_t)base + (uint64_t)d;
    }
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1)
            return -ERANGE;
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX)
            return -ERANGE;
        *out = (int64_t)v;
    }
    return 0;
}

int
kvc_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = { "true", "yes", "on", "1" };
    static const char *const no[] = { "false", "no", "off", "0" };
    for (size_t i = 0; i < 4; i++) {
        if (!strcasecmp(s, yes[i])) {
            *out = true;
            return 0;
        }
        if (!strcasecmp(s, no[i])) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

/* Digits, then a unit from TABLE; multiplies with overflow checks. */
struct unit { const char *name; uint64_t mult; };

static int
parse_with_units(const char *s, const struct unit *units, bool unit_required,
                 bool nocase, uint64_t *out)
{
    const char *p = s;
    uint64_t v = 0;

    if (!isdigit((unsigned char)*p))
        return -EINVAL;
    for (; isdigit((unsigned char)*p); p++) {
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    if (!*p) {
        if (unit_required && v != 0)
            return -EINVAL;
        *out = v;
        return 0;
    }
    for (const struct unit *u = units; u->name; u++) {
        if (nocase ? !strcasecmp(p, u->name) : !strcmp(p, u->name)) {
            if (v && u->mult > UINT64_MAX / v)
                return -ERANGE;
            v *= u->mult;
            if (v > (uint64_t)INT64_MAX)
                return -ERANGE;
            *out = v;
            return 0;
        }
    }
    return -EINVAL;
}

static const struct unit size_units[] = {
    { "B", 1 },
    { "K", 1ull << 10 }, { "KiB", 1ull << 10 },
    { "M", 1ull << 20 }, { "MiB", 1ull << 20 },
    { "G", 1ull << 30 }, { "GiB", 1ull << 30 },
    { "T", 1ull << 40 }, { "TiB", 1ull << 40 },
    { NULL, 0 },
};

/* Size units ignore case ("64m" is 64M); duration units do not ("5M" is
 * more likely a size typed into the wrong key than five minutes). */
static const struct unit duration_units[] = {
    { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
    { "d", 86400000 }, { NULL, 0 },
};

int
kvc_parse_size(const char *s, uint64_t *out)
{
    int rc = parse_with_units(s, size_units, false, true, out);
    if (!rc && *out > (uint64_t)INT64_MAX)
        return -ERANGE;
    return rc;
}

int
kvc_parse_duration_ms(const char *s, int64_t *out)
{
    uint64_t v;
    int rc = parse_with_units(s, duration_units, true, false, &v);
    if (rc)
        return rc;
    if (v > (uint64_t)INT64_MAX)
        return -ERANGE;
    *out = (int64_t)v;
    return 0;
}

void
kvc_format_size(uint64_t v, char *buf, size_t len)
{
    static const struct { const char *u; unsigned shift; } t[] = {
        { "T", 40 }, { "G", 30 }, { "M", 20 }, { "K", 10 },
    };
    if (v) {
        for (size_t i = 0; i < 4; i++) {
            uint64_t m = 1ull << t[i].shift;
            if (v % m == 0) {
                snprintf(buf, len, "%" PRIu64 "%s", v / m, t[i].u);
                return;
            }
        }
    }
    snprintf(buf, len, "%" PRIu64, v);
}

void
kvc_format_duration_ms(int64_t v, char *buf, size_t len)
{
    static const struct { const char *u; int64_t m; } t[] = {
        { "d", 86400000 }, { "h", 3600000 }, { "m", 60000 }, { "s", 1000 },
    };
    if (v == 0) {
        snprintf(buf, len, "0s");
        return;
    }
    for (size_t i = 0; i < 4; i++) {
        if (v % t[i].m == 0) {
            snprintf(buf, len, "%" PRId64 "%s", v / t[i].m, t[i].u);
            return;
        }
    }
    snprintf(buf, len, "%" PRId64 "ms", v);
}

/* ---- schema lookups ---- */

static const struct kvc_cfg_section_def *
find_section_def(const struct kvc_cfg_schema *s, const char *name)
{
    for (const struct kvc_cfg_section_def *d = s->sections; d->name; d++)
        if (!strcmp(d->name, name))
            return d;
    return NULL;
}

static int
find_key(const struct kvc_cfg_section_def *d, const char *name)
{
    for (int i = 0; d->keys[i].name; i++)
        if (!strcmp(d->keys[i].name, name))
            return i;
    return -1;
}

static size_t
count_keys(const struct kvc_cfg_section_def *d)
{
    size_t n = 0;
    while (d->keys[n].name)
        n++;
    return n;
}

/* Levenshtein distance, capped: for "did you mean" hints. */
static size_t
edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return 99;
    size_t prev[65], cur[65];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t c = prev[j - 1] + (tolower((unsigned char)a[i - 1]) !=
                                      tolower((unsigned char)b[j - 1]));
            if (prev[j] + 1 < c)
                c = prev[j] + 1;
            if (cur[j - 1] + 1 < c)
                c = cur[j - 1] + 1;
            cur[j] = c;
        }
        memcpy(prev, cur, sizeof cur);
    }
    return prev[lb];
}

static const char *
suggest_key(const struct kvc_cfg_section_def *d, const char *name)
{
    const char *best = NULL;
    size_t bestd = 3;
    for (int i = 0; d->keys[i].name; i++) {
        size_t dist = edit_distance(name, d->keys[i].name);
        if (dist < bestd) {
            bestd = dist;
            best = d->keys[i].name;
        }
    }
    return best;
}

static const char *
suggest_section(const struct kvc_cfg_schema *s, const char *name)
{
    const char *best = NULL;
    size_t bestd = 3;
    for (const struct kvc_cfg_section_def *d = s->sections; d->name; d++) {
        if (!*d->name)
            continue;
        size_t dist = edit_distance(name, d->name);
        if (dist < bestd) {
            bestd = dist;
            best = d->name;
        }
    }
    return best;
}

/* ---- values ---- */

static void
value_clear(const struct kvc_cfg_key *k, struct cfg_value *v)
{
    if (!v->present)
        return;
    if (k->type == KVC_CFG_STRING) {
        free(v->u.s);
    } else if (k->type == KVC_CFG_LIST) {
        for (size_t i = 0; i < v->u.l.n; i++)
            free(v->u.l.v[i]);
        free(v->u.l.v);
    }
    memset(v, 0, sizeof *v);
}

/* A value as written, split into items (one unless LIST); each item has
 * its quotes and escapes already resolved. */
struct item { char *text; bool quoted; };
struct items { struct item *v; size_t n; };

static void
items_free(struct items *it)
{
    for (size_t i = 0; i < it->n; i++)
        free(it->v[i].text);
    free(it->v);
    it->v = NULL;
    it->n = 0;
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Parses one quoted string at *P (pointing at the quote) into a new string.
 * Advances *P past the closing quote.  Returns NULL with *WHY on error. */
static char *
lex_quoted(const char **pp, const char **why, char *badesc)
{
    const char *p = *pp;
    char q = *p++;
    size_t cap = strlen(p) + 1;
    char *out = malloc(cap), *o = out;
    if (!out) {
        *why = "out of memory";
        return NULL;
    }
    for (;;) {
        char c = *p;
        if (!c) {
            *why = "unterminated string";
            goto fail;
        }
        p++;
        if (c == q)
            break;
        if (q == '\'' || c != '\\') {
            *o++ = c;
            continue;
        }
        c = *p++;
        switch (c) {
        case '\\': *o++ = '\\'; break;
        case '"': *o++ = '"'; break;
        case '\'': *o++ = '\''; break;
        case 'n': *o++ = '\n'; break;
        case 't': *o++ = '\t'; break;
        case 'r': *o++ = '\r'; break;
        case 'x': {
            int h = hexval(p[0]), l = h >= 0 ? hexval(p[1]) : -1;
            if (h < 0 || l < 0 || (h == 0 && l == 0)) {
                *why = "bad escape: \\x needs two hex digits (not 00)";
                goto fail;
            }
            *o++ = (char)(h * 16 + l);
            p += 2;
            break;
        }
        case 0:
            *why = "unterminated string";
            goto fail;
        default:
            *badesc = c;
            *why = "unknown escape";
            goto fail;
        }
    }
    *o = 0;
    *pp = p;
    return out;
fail:
    free(out);
    return NULL;
}

static int
items_add(struct items *it, char *text, bool quoted)
{
    struct item *nv = realloc(it->v, (it->n + 1) * sizeof *nv);
    if (!nv) {
        free(text);
        return -ENOMEM;
    }
    it->v = nv;
    it->v[it->n].text = text;
    it->v[it->n].quoted = quoted;
    it->n++;
    return 0;
}

static char *
strndup_trim(const char *s, size_t n)
{
    while (n && isspace((unsigned char)*s)) {
        s++;
        n--;
    }
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    return strndup(s, n);
}

/* Lexes the text after '=' (a NUL-terminated line).  LIST splits on commas
 * outside quotes; other types take the whole value as one item.  Returns 0
 * or -EINVAL after reporting. */
static int
lex_value(struct errs *e, int line, const char *key, const char *p, bool list,
          struct items *it)
{
    for (;;) {
        while (isspace((unsigned char)*p))
            p++;
        if (*p == '"' || *p == '\'') {
            const char *why = NULL;
            char badesc = 0;
            char *s = lex_quoted(&p, &why, &badesc);
            if (!s) {
                if (badesc)
                    err_add(e, line, "key '%s': unknown escape '\\%c' in string",
                            key, badesc);
                else
                    err_add(e, line, "key '%s': %s", key, why);
                return -EINVAL;
            }
            if (items_add(it, s, true))
                return -ENOMEM;
            while (isspace((unsigned char)*p))
                p++;
            if (list && *p == ',') {
                p++;
                continue;
            }
            if (*p && *p != '#') {
                err_add(e, line, "key '%s': unexpected text after string: '%s'",
                        key, p);
                return -EINVAL;
            }
            return 0;
        }
        const char *start = p;
        while (*p && *p != '#' && !(list && *p == ',')) {
            if (*p == '"') {
                err_add(e, line, "key '%s': unexpected '\"' inside an unquoted "
                        "value (quote the whole value)", key);
                return -EINVAL;
            }
            p++;
        }
        char *s = strndup_trim(start, (size_t)(p - start));
        if (!s)
            return -ENOMEM;
        if (list && !*s && (*p == ',' || it->n > 0)) {
            free(s);
            err_add(e, line, "key '%s': empty list item", key);
            return -EINVAL;
        }
        if (list && !*s) {      /* "key =": the empty list */
            free(s);
            return 0;
        }
        if (items_add(it, s, false))
            return -ENOMEM;
        if (list && *p == ',') {
            p++;
            continue;
        }
        return 0;
    }
}

static void
describe_bound(const struct kvc_cfg_key *k, int64_t v, char *buf, size_t len)
{
    if (k->type == KVC_CFG_SIZE)
        kvc_format_size((uint64_t)v, buf, len);
    else if (k->type == KVC_CFG_DURATION)
        kvc_format_duration_ms(v, buf, len);
    else
        snprintf(buf, len, "%" PRId64, v);
}

static int
check_bounds(struct errs *e, int line, const struct kvc_cfg_key *k, int64_t v,
             const char *text)
{
    if (!k->bounded || (v >= k->min && v <= k->max))
        return 0;
    char lo[32], hi[32];
    describe_bound(k, k->min, lo, sizeof lo);
    describe_bound(k, k->max, hi, sizeof hi);
    err_add(e, line, "key '%s': %s is out of range (%s..%s)", k->name, text,
            lo, hi);
    return -EINVAL;
}

/* Converts lexed ITEMS to a typed value in *V (replacing what was there). */
static int
convert(struct errs *e, int line, const struct kvc_cfg_key *k,
        struct items *it, struct cfg_value *v)
{
    struct cfg_value nv = { .set = true, .present = true, .line = line };
    const char *t = it->n ? it->v[0].text : "";
    int rc;

    if (k->type != KVC_CFG_LIST && it->n == 1 && !it->v[0].quoted && !*t) {
        err_add(e, line, "key '%s': missing value", k->name);
        return -EINVAL;
    }
    switch (k->type) {
    case KVC_CFG_STRING:
        nv.u.s = it->v[0].text;
        it->v[0].text = NULL;
        break;
    case KVC_CFG_INT:
        rc = kvc_parse_int64(t, &nv.u.i);
        if (rc == -ERANGE) {
            err_add(e, line, "key '%s': integer '%s' overflows", k->name, t);
            return -EINVAL;
        }
        if (rc) {
            err_add(e, line, "key '%s': expected an integer, got '%s'",
                    k->name, t);
            return -EINVAL;
        }
        if (check_bounds(e, line, k, nv.u.i, t))
            return -EINVAL;
        break;
    case KVC_CFG_BOOL:
        if (kvc_parse_bool(t, &nv.u.b)) {
            err_add(e, line, "key '%s': expected a boolean (true/false, "
                    "yes/no, on/off, 1/0), got '%s'", k->name, t);
            return -EINVAL;
        }
        break;
    case KVC_CFG_SIZE:
        rc = kvc_parse_size(t, &nv.u.sz);
        if (rc == -ERANGE) {
            err_add(e, line, "key '%s': size '%s' overflows", k->name, t);
            return -EINVAL;
        }
        if (rc) {
            err_add(e, line, "key '%s': bad size '%s' (expected a number with "
                    "an optional unit: B, K, M, G, T)", k->name, t);
            return -EINVAL;
        }
        if (check_bounds(e, line, k, (int64_t)nv.u.sz, t))
            return -EINVAL;
        break;
    case KVC_CFG_DURATION:
        rc = kvc_parse_duration_ms(t, &nv.u.ms);
        if (rc == -ERANGE) {
            err_add(e, line, "key '%s': duration '%s' overflows", k->name, t);
            return -EINVAL;
        }
        if (rc) {
            err_add(e, line, "key '%s': bad duration '%s' (expected a number "
                    "with a unit: ms, s, m, h, d)", k->name, t);
            return -EINVAL;
        }
        if (check_bounds(e, line, k, nv.u.ms, t))
            return -EINVAL;
        break;
    case KVC_CFG_ENUM: {
        int idx = -1;
        for (int i = 0; k->values[i]; i++)
            if (!strcmp(k->values[i], t))
                idx = i;
        if (idx < 0) {
            char list[512] = "";
            size_t off = 0;
            for (int i = 0; k->values[i] && off < sizeof list; i++)
                off += (size_t)snprintf(list + off, sizeof list - off, "%s%s",
                                        i ? ", " : "", k->values[i]);
            err_add(e, line, "key '%s': expected one of %s; got '%s'",
                    k->name, list, t);
            return -EINVAL;
        }
        nv.u.e = idx;
        break;
    }
    case KVC_CFG_LIST:
        nv.u.l.n = it->n;
        nv.u.l.v = calloc(it->n ? it->n : 1, sizeof(char *));
        if (!nv.u.l.v)
            return -ENOMEM;
        for (size_t i = 0; i < it->n; i++) {
            nv.u.l.v[i] = it->v[i].text;
            it->v[i].text = NULL;
        }
        break;
    }
    value_clear(k, v);
    *v = nv;
    return 0;
}

/* Parses the text VALUE for key K into *V; used for defaults and set(). */
static int
parse_value_text(struct errs *e, int line, const struct kvc_cfg_key *k,
                 const char *value, struct cfg_value *v)
{
    struct items it = { 0 };
    int rc = lex_value(e, line, k->name, value, k->type == KVC_CFG_LIST, &it);
    if (!rc)
        rc = convert(e, line, k, &it, v);
    items_free(&it);
    return rc;
}

/* ---- sections ---- */

static void
section_free(struct kvc_cfg_section *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nkeys; i++)
        value_clear(&s->def->keys[i], &s->vals[i]);
    free(s->vals);
    free(s->instance);
    free(s);
}

/* A new section with defaults applied, appended to CFG. */
static struct kvc_cfg_section *
section_new(struct kvc_config *cfg, const struct kvc_cfg_section_def *d,
            const char *instance, struct errs *e)
{
    struct kvc_cfg_section *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->def = d;
    s->nkeys = count_keys(d);
    s->vals = calloc(s->nkeys ? s->nkeys : 1, sizeof *s->vals);
    if (!s->vals || (instance && !(s->instance = strdup(instance)))) {
        section_free(s);
        return NULL;
    }
    for (size_t i = 0; i < s->nkeys; i++) {
        const struct kvc_cfg_key *k = &d->keys[i];
        if (!k->def)
            continue;
        /* "" is the natural C spelling of an empty default string. */
        if (k->type == KVC_CFG_STRING && !*k->def) {
            s->vals[i].u.s = strdup("");
            if (!s->vals[i].u.s) {
                section_free(s);
                return NULL;
            }
            s->vals[i].present = true;
            continue;
        }
        struct errs de = { .file = "schema default" };
        if (parse_value_text(&de, 0, k, k->def, &s->vals[i])) {
            if (de.len && de.buf[de.len - 1] == '\n')
                de.buf[--de.len] = 0;
            err_add(e, 0, "bad default in the program's schema, section [%s]: %s",
                    d->name, de.buf ? de.buf : "out of memory");
            free(de.buf);
            section_free(s);
            return NULL;
        }
        free(de.buf);
        s->vals[i].set = false;
        s->vals[i].line = 0;
    }
    if (cfg->tail)
        cfg->tail->next = s;
    else
        cfg->head = s;
    cfg->tail = s;
    return s;
}

static struct kvc_cfg_section *
lookup(const struct kvc_config *cfg, const char *name, const char *instance)
{
    for (struct kvc_cfg_section *s = cfg->head; s; s = s->next) {
        if (strcmp(s->def->name, name))
            continue;
        if (!instance || (s->instance && !strcmp(s->instance, instance)))
            return s;
    }
    return NULL;
}

static void
describe_section(const struct kvc_cfg_section *s, char *buf, size_t len)
{
    if (s->instance)
        snprintf(buf, len, "[%s \"%s\"]", s->def->name, s->instance);
    else if (*s->def->name)
        snprintf(buf, len, "[%s]", s->def->name);
    else
        snprintf(buf, len, "(top level)");
}

static struct kvc_config *
config_alloc(const struct kvc_cfg_schema *schema, struct errs *e)
{
    struct kvc_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return NULL;
    cfg->schema = schema;
    for (const struct kvc_cfg_section_def *d = schema->sections; d->name; d++) {
        if (d->named)
            continue;
        if (!section_new(cfg, d, NULL, e)) {
            kvc_config_free(cfg);
            return NULL;
        }
    }
    return cfg;
}

void
kvc_config_free(struct kvc_config *cfg)
{
    if (!cfg)
        return;
    struct kvc_cfg_section *s = cfg->head;
    while (s) {
        struct kvc_cfg_section *n = s->next;
        section_free(s);
        s = n;
    }
    free(cfg);
}

/* ---- the parser ---- */

static bool
is_name_start(char c)
{
    return isalpha((unsigned char)c) || c == '_';
}

static bool
is_name_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.';
}

struct parser {
    struct kvc_config *cfg;
    struct errs *e;
    struct kvc_cfg_section *cur;        /* NULL after a bad header */
    bool skipping;                      /* inside a bad section: quiet */
};

static void
parse_header(struct parser *ps, int line, const char *p)
{
    char name[128];
    char *instance = NULL;
    size_t n = 0;

    ps->cur = NULL;
    ps->skipping = true;
    p++;                                /* '[' */
    while (*p == ' ' || *p == '\t')
        p++;
    if (!is_name_start(*p)) {
        err_add(ps->e, line, "bad section header: expected a section name "
                "after '['");
        return;
    }
    while (is_name_char(*p)) {
        if (n + 1 >= sizeof name) {
            err_add(ps->e, line, "section name too long");
            return;
        }
        name[n++] = *p++;
    }
    name[n] = 0;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '"' || *p == '\'') {
        const char *why = NULL;
        char badesc = 0;
        instance = lex_quoted(&p, &why, &badesc);
        if (!instance) {
            if (badesc)
                err_add(ps->e, line, "section [%s]: unknown escape '\\%c' in "
                        "name", name, badesc);
            else
                err_add(ps->e, line, "section [%s]: %s", name, why);
            return;
        }
        while (*p == ' ' || *p == '\t')
            p++;
    }
    if (*p != ']') {
        err_add(ps->e, line, "bad section header: missing ']'");
        goto out;
    }
    p++;
    while (isspace((unsigned char)*p))
        p++;
    if (*p && *p != '#') {
        err_add(ps->e, line, "unexpected text after section header: '%s'", p);
        goto out;
    }
    const struct kvc_cfg_section_def *d = find_section_def(ps->cfg->schema, name);
    if (!d || !*d->name) {
        const char *hint = suggest_section(ps->cfg->schema, name);
        if (hint)
            err_add(ps->e, line, "unknown section [%s] (did you mean [%s]?)",
                    name, hint);
        else
            err_add(ps->e, line, "unknown section [%s]", name);
        goto out;
    }
    if (d->named && (!instance || !*instance)) {
        err_add(ps->e, line, "section [%s] needs a name: [%s \"NAME\"]",
                name, name);
        goto out;
    }
    if (!d->named && instance) {
        err_add(ps->e, line, "section [%s] does not take a name", name);
        goto out;
    }
    struct kvc_cfg_section *s = lookup(ps->cfg, name, instance);
    if (s && (instance || s->line)) {
        char desc[200];
        describe_section(s, desc, sizeof desc);
        err_add(ps->e, line, "duplicate section %s (first at line %d)", desc,
                s->line);
        goto out;
    }
    if (!s) {
        s = section_new(ps->cfg, d, instance, ps->e);
        if (!s) {
            err_add(ps->e, line, "out of memory");
            goto out;
        }
    }
    s->line = line;
    ps->cur = s;
    ps->skipping = false;
out:
    free(instance);
}

static void
parse_assignment(struct parser *ps, int line, const char *p)
{
    char key[128];
    size_t n = 0;

    if (!is_name_start(*p)) {
        err_add(ps->e, line, "expected '[section]' or 'key = value'");
        return;
    }
    while (is_name_char(*p)) {
        if (n + 1 >= sizeof key) {
            err_add(ps->e, line, "key name too long");
            return;
        }
        key[n++] = *p++;
    }
    key[n] = 0;
    if (*p && *p != ' ' && *p != '\t' && *p != '=' && *p != '#') {
        err_add(ps->e, line, "bad character '%c' in key name '%s%c...'", *p,
                key, *p);
        return;
    }
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p != '=') {
        err_add(ps->e, line, "missing '=' after key '%s'", key);
        return;
    }
    p++;
    if (!ps->cur) {
        if (!ps->skipping)
            err_add(ps->e, line, "key '%s' outside any section", key);
        return;
    }
    const struct kvc_cfg_section_def *d = ps->cur->def;
    int ki = find_key(d, key);
    if (ki < 0) {
        char desc[200];
        describe_section(ps->cur, desc, sizeof desc);
        const char *hint = suggest_key(d, key);
        const struct kvc_cfg_section_def *top =
            find_section_def(ps->cfg->schema, "");
        if (top && top != d && find_key(top, key) >= 0)
            err_add(ps->e, line, "unknown key '%s' in %s ('%s' is a top-level "
                    "key: put it before the first section)", key, desc, key);
        else if (hint)
            err_add(ps->e, line, "unknown key '%s' in %s (did you mean '%s'?)",
                    key, desc, hint);
        else
            err_add(ps->e, line, "unknown key '%s' in %s", key, desc);
        return;
    }
    struct cfg_value *v = &ps->cur->vals[ki];
    if (v->set) {
        err_add(ps->e, line, "duplicate key '%s' (first set at line %d)", key,
                v->line);
        return;
    }
    parse_value_text(ps->e, line, &d->keys[ki], p, v);
}

static void
check_required(struct kvc_config *cfg, struct errs *e)
{
    for (struct kvc_cfg_section *s = cfg->head; s; s = s->next) {
        for (size_t i = 0; i < s->nkeys; i++) {
            const struct kvc_cfg_key *k = &s->def->keys[i];
            if (!k->required || s->vals[i].set)
                continue;
            char desc[200];
            describe_section(s, desc, sizeof desc);
            err_add(e, s->line, "missing required key '%s' in %s", k->name,
                    desc);
        }
    }
}

int
kvc_config_parse(const struct kvc_cfg_schema *schema, const char *filename,
                 const char *text, size_t len, struct kvc_config **out,
                 char **errsp)
{
    struct errs e = { .file = filename };
    struct parser ps = { .e = &e };
    char *buf = NULL;
    int rc = -EINVAL;

    *out = NULL;
    if (errsp)
        *errsp = NULL;
    ps.cfg = config_alloc(schema, &e);
    if (!ps.cfg) {
        if (!e.count)
            err_add(&e, 0, "out of memory");
        goto out;
    }
    ps.cur = lookup(ps.cfg, "", NULL);
    if (len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3)) {
        text += 3;
        len -= 3;
    }
    buf = malloc(len + 1);
    if (!buf) {
        err_add(&e, 0, "out of memory");
        goto out;
    }
    memcpy(buf, text, len);
    buf[len] = 0;

    int line = 0;
    char *p = buf, *end = buf + len;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *eol = nl ? nl : end;
        line++;
        if (memchr(p, 0, (size_t)(eol - p))) {
            err_add(&e, line, "NUL byte in file");
            break;
        }
        *eol = 0;
        if (eol > p && eol[-1] == '\r')
            eol[-1] = 0;
        char *q = p;
        while (*q == ' ' || *q == '\t')
            q++;
        if (*q == '[')
            parse_header(&ps, line, q);
        else if (*q && *q != '#')
            parse_assignment(&ps, line, q);
        if (e.count > MAX_ERRORS)
            break;
        p = eol + 1;
    }
    if (!e.count)
        check_required(ps.cfg, &e);
    if (!e.count) {
        *out = ps.cfg;
        ps.cfg = NULL;
        rc = 0;
    }
out:
    kvc_config_free(ps.cfg);
    free(buf);
    if (rc)
        errs_hand_over(&e, errsp);
    else
        free(e.buf);
    return rc;
}

int
kvc_config_load(const struct kvc_cfg_schema *schema, const char *path,
                struct kvc_config **out, char **errsp)
{
    int fd = -1, rc;
    char *buf = NULL;
    size_t len = 0;

    *out = NULL;
    if (errsp)
        *errsp = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        goto fail;
    }
    buf = malloc(KVC_CONFIG_MAX_FILE + 1);
    if (!buf) {
        rc = -ENOMEM;
        goto fail;
    }
    for (;;) {
        ssize_t n = read(fd, buf + len, KVC_CONFIG_MAX_FILE + 1 - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            goto fail;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > KVC_CONFIG_MAX_FILE) {
            struct errs e = { .file = path };
            err_add(&e, 0, "file too large (more than %u bytes)",
                    KVC_CONFIG_MAX_FILE);
            errs_hand_over(&e, errsp);
            rc = -EFBIG;
            goto out;
        }
    }
    rc = kvc_config_parse(schema, path, buf, len, out, errsp);
    goto out;
fail:
    if (errsp) {
        struct errs e = { .file = path };
        err_add(&e, 0, "%s", strerror(-rc));
        errs_hand_over(&e, errsp);
    }
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    return rc;
}

int
kvc_config_new(const struct kvc_cfg_schema *schema, struct kvc_config **out,
               char **errsp)
{
    struct errs e = { .file = schema->name };
    *out = config_alloc(schema, &e);
    if (*out) {
        free(e.buf);
        if (errsp)
            *errsp = NULL;
        return 0;
    }
    if (!e.count)
        err_add(&e, 0, "out of memory");
    errs_hand_over(&e, errsp);
    return -EINVAL;
}

int
kvc_config_add_section(struct kvc_config *cfg, const char *section,
                       const char *instance, char **errsp)
{
    struct errs e = { .file = cfg->schema->name };
    const struct kvc_cfg_section_def *d = find_section_def(cfg->schema, section);
    int rc = 0;

    if (errsp)
        *errsp = NULL;
    if (!d || !d->named || !instance || !*instance) {
        err_add(&e, 0, "no named section [%s] in the schema", section);
        rc = -ENOENT;
    } else if (lookup(cfg, section, instance)) {
        err_add(&e, 0, "duplicate section [%s \"%s\"]", section, instance);
        rc = -EEXIST;
    } else if (!section_new(cfg, d, instance, &e)) {
        rc = -ENOMEM;
    }
    if (rc)
        errs_hand_over(&e, errsp);
    return rc;
}

int
kvc_config_set(struct kvc_config *cfg, const char *section,
               const char *instance, const char *key, const char *value,
               char **errsp)
{
    struct errs e = { .file = cfg->schema->name };
    struct kvc_cfg_section *s = lookup(cfg, section, instance);
    int rc = -ENOENT, ki = -1;

    if (errsp)
        *errsp = NULL;
    if (s && (instance ? s->instance != NULL : s->instance == NULL))
        ki = find_key(s->def, key);
    if (ki < 0) {
        err_add(&e, 0, "no key '%s' in section [%s]", key, section);
        goto out;
    }
    rc = parse_value_text(&e, 0, &s->def->keys[ki], value, &s->vals[ki]);
    if (rc == 0)
        s->vals[ki].line = 0;
out:
    if (rc)
        errs_hand_over(&e, errsp);
    else
        free(e.buf);
    return rc;
}

/* ---- dump and check mode ---- */

static void
dump_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\t': fputs("\\t", f); break;
        case '\r': fputs("\\r", f); break;
        default:
            if (c < 0x20 || c == 0x7f)
                fprintf(f, "\\x%02x", c);
            else
                fputc(c, f);
        }
    }
    fputc('"', f);
}

static void
dump_value(FILE *f, const struct kvc_cfg_key *k, const struct cfg_value *v)
{
    char buf[32];
    switch (k->type) {
    case KVC_CFG_STRING:
        dump_string(f, v->u.s);
        break;
    case KVC_CFG_INT:
        fprintf(f, "%" PRId64, v->u.i);
        break;
    case KVC_CFG_BOOL:
        fputs(v->u.b ? "true" : "false", f);
        break;
    case KVC_CFG_SIZE:
        kvc_format_size(v->u.sz, buf, sizeof buf);
        fputs(buf, f);
        break;
    case KVC_CFG_DURATION:
        kvc_format_duration_ms(v->u.ms, buf, sizeof buf);
        fputs(buf, f);
        break;
    case KVC_CFG_ENUM:
        fputs(k->values[v->u.e], f);
        break;
    case KVC_CFG_LIST:
        for (size_t i = 0; i < v->u.l.n; i++) {
            if (i)
                fputs(", ", f);
            dump_string(f, v->u.l.v[i]);
        }
        break;
    }
}

void
kvc_config_dump(const struct kvc_config *cfg, FILE *f)
{
    bool first = true;
    for (const struct kvc_cfg_section_def *d = cfg->schema->sections; d->name;
         d++) {
        for (struct kvc_cfg_section *s = cfg->head; s; s = s->next) {
            if (s->def != d)
                continue;
            if (!first)
                fputc('\n', f);
            first = false;
            if (s->instance) {
                fprintf(f, "[%s ", d->name);
                dump_string(f, s->instance);
                fputs("]\n", f);
            } else if (*d->name) {
                fprintf(f, "[%s]\n", d->name);
            }
            for (size_t i = 0; i < s->nkeys; i++) {
                const struct kvc_cfg_key *k = &d->keys[i];
                const struct cfg_value *v = &s->vals[i];
                if (!v->present) {
                    fprintf(f, "# %s = (unset%s)\n", k->name,
                            k->required ? ", required" : "");
                    continue;
                }
                if (k->type == KVC_CFG_LIST && v->u.l.n == 0) {
                    fprintf(f, "%s =%s\n", k->name, v->set ? "" : "  # default");
                    continue;
                }
                fprintf(f, "%s = ", k->name);
                dump_value(f, k, v);
                fputs(v->set ? "\n" : "  # default\n", f);
            }
        }
    }
}

int
kvc_config_check(const struct kvc_cfg_schema *schema, const char *path,
                 FILE *out, FILE *err)
{
    struct kvc_config *cfg = NULL;
    char *errs = NULL;
    int rc = kvc_config_load(schema, path, &cfg, &errs);
    if (rc) {
        fputs(errs ? errs : "error\n", err);
        free(errs);
        return 1;
    }
    kvc_config_dump(cfg, out);
    fflush(out);
    fprintf(err, "%s: configuration OK\n", path);
    kvc_config_free(cfg);
    return 0;
}

/* ---- getters ---- */

const struct kvc_cfg_section *
kvc_config_section(const struct kvc_config *cfg, const char *section)
{
    const struct kvc_cfg_section_def *d = find_section_def(cfg->schema, section);
    if (!d || d->named)
        abort();        /* not declared unnamed: programming error */
    return lookup(cfg, section, NULL);
}

size_t
kvc_config_count(const struct kvc_config *cfg, const char *section)
{
    size_t n = 0;
    for (struct kvc_cfg_section *s = cfg->head; s; s = s->next)
        n += !strcmp(s->def->name, section);
    return n;
}

const struct kvc_cfg_section *
kvc_config_nth(const struct kvc_config *cfg, const char *section, size_t idx)
{
    for (struct kvc_cfg_section *s = cfg->head; s; s = s->next)
        if (!strcmp(s->def->name, section) && idx-- == 0)
            return s;
    return NULL;
}

const struct kvc_cfg_section *
kvc_config_find(const struct kvc_config *cfg, const char *section,
                const char *instance)
{
    return instance ? lookup(cfg, section, instance) : NULL;
}

const char *
kvc_cfg_instance(const struct kvc_cfg_section *s)
{
    return s->instance;
}

static const struct cfg_value *
get(const struct kvc_cfg_section *s, const char *key, enum kvc_cfg_type t)
{
    int ki = find_key(s->def, key);
    if (ki < 0 || (t && s->def->keys[ki].type != t)) {
        fprintf(stderr, "config: key '%s' in [%s] %s\n", key, s->def->name,
                ki < 0 ? "not declared" : "read with the wrong type");
        abort();
    }
    return &s->vals[ki];
}

bool
kvc_cfg_is_set(const struct kvc_cfg_section *s, const char *key)
{
    return get(s, key, 0)->set;
}

bool
kvc_cfg_has(const struct kvc_cfg_section *s, const char *key)
{
    return get(s, key, 0)->present;
}

const char *
kvc_cfg_string(const struct kvc_cfg_section *s, const char *key)
{
    const struct cfg_value *v = get(s, key, KVC_CFG_STRING);
    return v->present ? v->u.s : NULL;
}

int64_t
kvc_cfg_int(const struct kvc_cfg_section *s, const char *key)
{
    const struct cfg_value *v = get(s, key, KVC_CFG_INT);
    return v->present ? v->u.i : 0;
}

bool
kvc_cfg_bool(const struct kvc_cfg_section *s, const char *key)
{
    const struct cfg_value *v = get(s, key, KVC_CFG_BOOL);
    return v->present && v->u.b;
}

uint64_t
kvc_cfg_size(const struct kvc_cfg_section *s, const char *key)
{
    const struct cfg_value *v = get(s, key, KVC_CFG_SIZE);
    return v->present ? v->u.sz : 0;
}

int64_t
kvc_cfg_duration_ms(const struct kvc_cfg_section *s, const char *key)
{
    const struct cfg_value *v = get(s, key, KVC_CFG_DURATION);
    return v->present ? v->u.ms : 0;
}

const char *
kvc_cfg_enum(const struct kvc_cfg_section *s, const char *key)
{
    int ki = find_key(s->def, key);
    const struct cfg_value *v = get(s, key, KVC_CFG_ENUM);
    return v->present ? s->def->keys[ki].values[v->u.e] : NULL;
}

int
kvc_cfg_enum_index(const struct kvc_cfg_section *s, const char *key)
{
    const struct cfg_value *v = get(s, key, KVC_CFG_ENUM);
    return v->present ? v->u.e : -1;
}

size_t
kvc_cfg_list_len(const struct kvc_cfg_section *s, const char *key)
{
    const struct cfg_value *v = get(s, key, KVC_CFG_LIST);
    return v->present ? v->u.l.n : 0;
}

const char *
kvc_cfg_list_item(const struct kvc_cfg_section *s, const char *key, size_t i)
{
    const struct cfg_value *v = get(s, key, KVC_CFG_LIST);
    return v->present && i < v->u.l.n ? v->u.l.v[i] : NULL;
}
