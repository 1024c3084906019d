/* kvcli formatters: see format.h. */
#include "format.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

const char *const kvc_formatter_names[] = {
    "table", "json", "csv", "xml", "keyvalue", NULL,
};

int
kvc_formatter_from_name(const char *s)
{
    for (int i = 0; kvc_formatter_names[i]; i++)
        if (!strcmp(kvc_formatter_names[i], s))
            return i;
    return -1;
}

void
kvc_field_key(const char *label, char *buf, size_t len)
{
    size_t n = 0;
    for (const char *p = label; *p && n + 1 < len; p++)
        if (isalnum((unsigned char)*p) || *p == '_')
            buf[n++] = *p;
    buf[n] = 0;
}

static size_t
nfields(const struct kvc_shape *sh)
{
    size_t n = 0;
    while (sh->fields[n].label)
        n++;
    return n;
}

static json_t *
field_value(const json_t *row, const struct kvc_field *f)
{
    char key[128];
    kvc_field_key(f->label, key, sizeof key);
    return json_object_get(row, key);
}

/* Text of a value for table, csv and keyvalue (malloc'd).  SEP joins lists. */
static char *
value_text(const json_t *v, const char *sep)
{
    char *s = NULL;
    if (!v || json_is_null(v))
        return strdup("");
    switch (json_typeof(v)) {
    case JSON_STRING:
        return strdup(json_string_value(v));
    case JSON_INTEGER:
        if (asprintf(&s, "%lld", (long long)json_integer_value(v)) < 0)
            return NULL;
        return s;
    case JSON_REAL:
        if (asprintf(&s, "%g", json_real_value(v)) < 0)
            return NULL;
        return s;
    case JSON_TRUE:
        return strdup("true");
    case JSON_FALSE:
        return strdup("false");
    case JSON_ARRAY: {
        size_t cap = 1, i;
        json_t *item;
        json_array_foreach(v, i, item) {
            char *t = value_text(item, sep);
            if (!t) {
                free(s);
                return NULL;
            }
            size_t need = (s ? strlen(s) : 0) + strlen(sep) + strlen(t) + 1;
            if (need > cap) {
                char *ns = realloc(s, need);
                if (!ns) {
                    free(t);
                    free(s);
                    return NULL;
                }
                if (!s)
                    ns[0] = 0;
                s = ns;
                cap = need;
            }
            if (i)
                strcat(s, sep);
            strcat(s, t);
            free(t);
        }
        return s ? s : strdup("");
    }
    default:
        return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    }
}

/* Display width: UTF-8 code points. */
static size_t
width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xc0) != 0x80;
    return w;
}

static void
pad(FILE *f, size_t n)
{
    while (n--)
        fputc(' ', f);
}

/* ---- table (esxcli's default) ---- */

static int
write_block(FILE *f, const struct kvc_shape *sh, const json_t *row,
            const char *indent)
{
    for (const struct kvc_field *fl = sh->fields; fl->label; fl++) {
        char *t = value_text(field_value(row, fl), ", ");
        if (!t)
            return -ENOMEM;
        fprintf(f, "%s%s: %s\n", indent, fl->label, t);
        free(t);
    }
    return 0;
}

static int
write_table(FILE *f, const struct kvc_shape *sh, const json_t *rows)
{
    size_t nf = nfields(sh), nr = json_array_size(rows);
    size_t *w = calloc(nf, sizeof *w);
    char **cell = calloc(nf * (nr ? nr : 1), sizeof *cell);
    int rc = -ENOMEM;

    if (!w || !cell)
        goto out;
    for (size_t c = 0; c < nf; c++)
        w[c] = width(sh->fields[c].label);
    for (size_t r = 0; r < nr; r++) {
        for (size_t c = 0; c < nf; c++) {
            char *t = value_text(field_value(json_array_get(rows, r),
                                             &sh->fields[c]), ", ");
            if (!t)
                goto out;
            cell[r * nf + c] = t;
            if (width(t) > w[c])
                w[c] = width(t);
        }
    }
    /* Header, rule, rows; numbers right-aligned; no trailing blanks. */
    for (size_t c = 0; c < nf; c++) {
        const char *l = sh->fields[c].label;
        bool last = c + 1 == nf;
        if (sh->fields[c].type == KVC_F_INT) {
            pad(f, w[c] - width(l));
            fputs(l, f);
        } else {
            fputs(l, f);
            if (!last)
                pad(f, w[c] - width(l));
        }
        fputs(last ? "\n" : "  ", f);
    }
    for (size_t c = 0; c < nf; c++) {
        for (size_t i = 0; i < w[c]; i++)
            fputc('-', f);
        fputs(c + 1 == nf ? "\n" : "  ", f);
    }
    for (size_t r = 0; r < nr; r++) {
        for (size_t c = 0; c < nf; c++) {
            const char *t = cell[r * nf + c];
            bool last = c + 1 == nf;
            if (sh->fields[c].type == KVC_F_INT) {
                pad(f, w[c] - width(t));
                fputs(t, f);
            } else {
                fputs(t, f);
                if (!last)
                    pad(f, w[c] - width(t));
            }
            fputs(last ? "\n" : "  ", f);
        }
    }
    rc = 0;
out:
    if (cell)
        for (size_t i = 0; i < nf * nr; i++)
            free(cell[i]);
    free(cell);
    free(w);
    return rc;
}

static int
write_human(FILE *f, const struct kvc_shape *sh, const json_t *res)
{
    if (json_is_object(res))
        return write_block(f, sh, res, "   ");
    if (sh->list_style == KVC_LIST_TABLE)
        return write_table(f, sh, res);
    size_t i;
    json_t *row;
    json_array_foreach(res, i, row) {
        if (sh->block_head) {
            struct kvc_field head = { sh->block_head, KVC_F_STRING };
            char *t = value_text(field_value(row, &head), ", ");
            if (!t)
                return -ENOMEM;
            fprintf(f, "%s\n", t);
            free(t);
        }
        int rc = write_block(f, sh, row, "   ");
        if (rc)
            return rc;
        fputc('\n', f);
    }
    return 0;
}

/* ---- csv ---- */

static int
cmp_keys(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
csv_cell(FILE *f, const char *t)
{
    if (!strpbrk(t, ",\"\r\n")) {
        fputs(t, f);
        return;
    }
    fputc('"', f);
    for (; *t; t++) {
        if (*t == '"')
            fputc('"', f);
        fputc(*t, f);
    }
    fputc('"', f);
}

static int
write_csv(FILE *f, const struct kvc_shape *sh, const json_t *res)
{
    size_t nf = nfields(sh);
    char (*keys)[128] = calloc(nf ? nf : 1, sizeof *keys);
    const struct kvc_field **order = calloc(nf ? nf : 1, sizeof *order);
    char **sorted = calloc(nf ? nf : 1, sizeof *sorted);
    int rc = -ENOMEM;

    if (!keys || !order || !sorted)
        goto out;
    for (size_t c = 0; c < nf; c++) {
        kvc_field_key(sh->fields[c].label, keys[c], sizeof keys[c]);
        sorted[c] = keys[c];
    }
    /* esxcli's CSV lists the columns by key, alphabetically. */
    qsort(sorted, nf, sizeof *sorted, cmp_keys);
    for (size_t c = 0; c < nf; c++) {
        size_t k = (size_t)((char (*)[128])sorted[c] - keys);
        order[c] = &sh->fields[k];
        fprintf(f, "%s,", sorted[c]);
    }
    fputc('\n', f);
    size_t n = json_is_array(res) ? json_array_size(res) : 1;
    for (size_t r = 0; r < n; r++) {
        const json_t *row = json_is_array(res) ? json_array_get(res, r) : res;
        for (size_t c = 0; c < nf; c++) {
            char *t = value_text(field_value(row, order[c]), ",");
            if (!t)
                goto out;
            csv_cell(f, t);
            fputc(',', f);
            free(t);
        }
        fputc('\n', f);
    }
    rc = 0;
out:
    free(keys);
    free(order);
    free(sorted);
    return rc;
}

/* ---- keyvalue ---- */

static const char *
type_word(enum kvc_ftype t)
{
    switch (t) {
    case KVC_F_INT: return "integer";
    case KVC_F_BOOL: return "boolean";
    case KVC_F_STRLIST: return "string[]";
    default: return "string";
    }
}

static int
write_keyvalue(FILE *f, const struct kvc_shape *sh, const json_t *res)
{
    size_t n = json_is_array(res) ? json_array_size(res) : 1;
    for (size_t r = 0; r < n; r++) {
        const json_t *row = json_is_array(res) ? json_array_get(res, r) : res;
        for (const struct kvc_field *fl = sh->fields; fl->label; fl++) {
            char key[128];
            kvc_field_key(fl->label, key, sizeof key);
            json_t *v = field_value(row, fl);
            if (fl->type == KVC_F_STRLIST && json_is_array(v)) {
                size_t i;
                json_t *item;
                json_array_foreach(v, i, item) {
                    char *t = value_text(item, ",");
                    if (!t)
                        return -ENOMEM;
                    fprintf(f, "%s.%s.string[]=%s\n", sh->type_name, key, t);
                    free(t);
                }
                continue;
            }
            char *t = value_text(v, ",");
            if (!t)
                return -ENOMEM;
            fprintf(f, "%s.%s.%s=%s\n", sh->type_name, key, type_word(fl->type), t);
            free(t);
        }
    }
    return 0;
}

/* ---- xml ---- */

static void
xml_text(FILE *f, const char *t)
{
    for (; *t; t++) {
        switch (*t) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default:
            if ((unsigned char)*t < 0x20 && *t != '\n' && *t != '\t')
                fprintf(f, "&#x%x;", (unsigned char)*t);
            else
                fputc(*t, f);
        }
    }
}

static int
xml_scalar(FILE *f, const char *ind, enum kvc_ftype type, const json_t *v)
{
    char *t = value_text(v, ",");
    if (!t)
        return -ENOMEM;
    const char *w = type == KVC_F_INT ? "integer" : type == KVC_F_BOOL ? "boolean"
                                                                       : "string";
    fprintf(f, "%s<%s>", ind, w);
    xml_text(f, t);
    fprintf(f, "</%s>\n", w);
    free(t);
    return 0;
}

static int
xml_structure(FILE *f, const char *ind, const struct kvc_shape *sh,
              const json_t *row)
{
    fprintf(f, "%s<structure typeName=\"", ind);
    xml_text(f, sh->type_name);
    fputs("\">\n", f);
    for (const struct kvc_field *fl = sh->fields; fl->label; fl++) {
        char key[128], in2[64], in3[64], in4[64];
        kvc_field_key(fl->label, key, sizeof key);
        snprintf(in2, sizeof in2, "%s   ", ind);
        snprintf(in3, sizeof in3, "%s      ", ind);
        snprintf(in4, sizeof in4, "%s         ", ind);
        fprintf(f, "%s<field name=\"%s\">\n", in2, key);
        json_t *v = field_value(row, fl);
        if (fl->type == KVC_F_STRLIST) {
            fprintf(f, "%s<list type=\"string\">\n", in3);
            size_t i;
            json_t *item;
            json_array_foreach(v, i, item)
                if (xml_scalar(f, in4, KVC_F_STRING, item))
                    return -ENOMEM;
            fprintf(f, "%s</list>\n", in3);
        } else if (xml_scalar(f, in3, fl->type, v)) {
            return -ENOMEM;
        }
        fprintf(f, "%s</field>\n", in2);
    }
    fprintf(f, "%s</structure>\n", ind);
    return 0;
}

static int
write_xml(FILE *f, const struct kvc_shape *sh, const json_t *res)
{
    int rc = 0;
    fputs("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
          "<output xmlns=\"http://www.vmware.com/Products/ESX/5.0/esxcli/\">\n"
          "<root>\n", f);
    if (json_is_object(res)) {
        rc = xml_structure(f, "   ", sh, res);
    } else {
        fputs("   <list type=\"structure\">\n", f);
        size_t i;
        json_t *row;
        json_array_foreach(res, i, row)
            if ((rc = xml_structure(f, "      ", sh, row)))
                break;
        fputs("   </list>\n", f);
    }
    fputs("</root>\n</output>\n", f);
    return rc;
}

/* ---- json ---- */

static json_t *
json_row(const struct kvc_shape *sh, const json_t *row)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    for (const struct kvc_field *fl = sh->fields; fl->label; fl++) {
        char key[128];
        kvc_field_key(fl->label, key, sizeof key);
        json_t *v = field_value(row, fl);
        json_object_set(o, key, v ? v : json_null());
    }
    return o;
}

static int
write_json(FILE *f, const struct kvc_shape *sh, const json_t *res)
{
    json_t *out;
    if (json_is_object(res)) {
        out = json_row(sh, res);
    } else {
        out = json_array();
        size_t i;
        json_t *row;
        json_array_foreach(res, i, row)
            json_array_append_new(out, json_row(sh, row));
    }
    if (!out)
        return -ENOMEM;
    int rc = json_dumpf(out, f, JSON_COMPACT | JSON_PRESERVE_ORDER) ? -EIO : 0;
    fputc('\n', f);
    json_decref(out);
    return rc;
}

int
kvc_format_write(FILE *f, enum kvc_formatter fmt, const struct kvc_shape *sh,
                 const json_t *res)
{
    if (!json_is_object(res) && !json_is_array(res))
        return -EINVAL;
    if (json_is_array(res)) {
        size_t i;
        json_t *row;
        json_array_foreach(res, i, row)
            if (!json_is_object(row))
                return -EINVAL;
    }
    switch (fmt) {
    case KVC_FMT_TABLE: return write_human(f, sh, res);
    case KVC_FMT_JSON: return write_json(f, sh, res);
    case KVC_FMT_CSV: return write_csv(f, sh, res);
    case KVC_FMT_XML: return write_xml(f, sh, res);
    case KVC_FMT_KEYVALUE: return write_keyvalue(f, sh, res);
    }
    return -EINVAL;
}
