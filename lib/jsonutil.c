/* jansson helpers: see jsonutil.h. */
#include "jsonutil.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ids.h"

__attribute__((format(printf, 2, 3)))
static int
fail(struct kvc_json_err *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static json_t *
parse(const char *buf, size_t len, size_t max, bool object,
      struct kvc_json_err *e)
{
    json_error_t je;

    e->msg[0] = 0;
    if (len > max) {
        fail(e, "request body too large (%zu bytes, limit %zu)", len, max);
        return NULL;
    }
    if (len == 0) {
        fail(e, "empty request body");
        return NULL;
    }
    json_t *v = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY
                           | JSON_ALLOW_NUL, &je);
    if (!v) {
        fail(e, "invalid JSON at line %d column %d: %s", je.line, je.column,
             je.text);
        return NULL;
    }
    if (object && !json_is_object(v)) {
        fail(e, "request body: expected a JSON object");
        json_decref(v);
        return NULL;
    }
    return v;
}

json_t *
kvc_json_parse_body(const char *buf, size_t len, size_t max,
                    struct kvc_json_err *e)
{
    return parse(buf, len, max, true, e);
}

json_t *
kvc_json_parse_any(const char *buf, size_t len, size_t max,
                   struct kvc_json_err *e)
{
    return parse(buf, len, max, false, e);
}

static const char *
type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "number";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}

/* Finds FIELD: 1 with *V set, 0 if absent/null and optional, or -EINVAL. */
static int
lookup(const json_t *obj, const char *field, unsigned flags, json_t **v,
       struct kvc_json_err *e)
{
    if (!json_is_object(obj))
        return fail(e, "field '%s': the enclosing value is not an object",
                    field);
    *v = json_object_get(obj, field);
    if (!*v || json_is_null(*v)) {
        if (flags & KVC_JSON_REQUIRED)
            return fail(e, "field '%s': missing", field);
        return 0;
    }
    return 1;
}

int
kvc_json_get_int(const json_t *obj, const char *field, unsigned flags,
                 int64_t min, int64_t max, int64_t *out,
                 struct kvc_json_err *e)
{
    json_t *v = NULL;
    int rc = lookup(obj, field, flags, &v, e);
    if (rc <= 0)
        return rc;
    if (!json_is_integer(v))
        return fail(e, "field '%s': expected integer, got %s", field,
                    type_name(v));
    json_int_t i = json_integer_value(v);
    if (i < min || i > max)
        return fail(e, "field '%s': %lld is out of range (%lld..%lld)", field,
                    (long long)i, (long long)min, (long long)max);
    *out = i;
    return 1;
}

int
kvc_json_get_bool(const json_t *obj, const char *field, unsigned flags,
                  bool *out, struct kvc_json_err *e)
{
    json_t *v = NULL;
    int rc = lookup(obj, field, flags, &v, e);
    if (rc <= 0)
        return rc;
    if (!json_is_boolean(v))
        return fail(e, "field '%s': expected boolean, got %s", field,
                    type_name(v));
    *out = json_is_true(v);
    return 1;
}

int
kvc_json_get_string(const json_t *obj, const char *field, unsigned flags,
                    size_t maxlen, const char **out, struct kvc_json_err *e)
{
    json_t *v = NULL;
    int rc = lookup(obj, field, flags, &v, e);
    if (rc <= 0)
        return rc;
    if (!json_is_string(v))
        return fail(e, "field '%s': expected string, got %s", field,
                    type_name(v));
    size_t len = json_string_length(v);
    const char *s = json_string_value(v);
    if (memchr(s, 0, len))
        return fail(e, "field '%s': NUL character in string", field);
    if ((flags & KVC_JSON_NONEMPTY) && len == 0)
        return fail(e, "field '%s': must not be empty", field);
    if (maxlen && len > maxlen)
        return fail(e, "field '%s': longer than %zu bytes", field, maxlen);
    *out = s;
    return 1;
}

int
kvc_json_get_enum(const json_t *obj, const char *field, unsigned flags,
                  const char *const *values, int *out, struct kvc_json_err *e)
{
    const char *s;
    int rc = kvc_json_get_string(obj, field, flags, 0, &s, e);
    if (rc <= 0)
        return rc;
    for (int i = 0; values[i]; i++) {
        if (!strcmp(values[i], s)) {
            *out = i;
            return 1;
        }
    }
    char list[160] = "";
    size_t off = 0;
    for (int i = 0; values[i] && off < sizeof list; i++)
        off += (size_t)snprintf(list + off, sizeof list - off, "%s%s",
                                i ? ", " : "", values[i]);
    return fail(e, "field '%s': expected one of %s; got '%.40s'", field, list,
                s);
}

int
kvc_json_get_id(const json_t *obj, const char *field, unsigned flags,
                int kind, uint64_t *out, struct kvc_json_err *e)
{
    const char *s;
    int rc = kvc_json_get_string(obj, field, flags, 0, &s, e);
    if (rc <= 0)
        return rc;
    if (kvc_id_parse_kind(s, (enum kvc_id_kind)kind, out))
        return fail(e, "field '%s': expected an id like '%s1', got '%.40s'",
                    field, kvc_id_prefix((enum kvc_id_kind)kind), s);
    return 1;
}

int
kvc_json_get_object(const json_t *obj, const char *field, unsigned flags,
                    json_t **out, struct kvc_json_err *e)
{
    json_t *v = NULL;
    int rc = lookup(obj, field, flags, &v, e);
    if (rc <= 0)
        return rc;
    if (!json_is_object(v))
        return fail(e, "field '%s': expected object, got %s", field,
                    type_name(v));
    *out = v;
    return 1;
}

int
kvc_json_get_array(const json_t *obj, const char *field, unsigned flags,
                   json_t **out, struct kvc_json_err *e)
{
    json_t *v = NULL;
    int rc = lookup(obj, field, flags, &v, e);
    if (rc <= 0)
        return rc;
    if (!json_is_array(v))
        return fail(e, "field '%s': expected array, got %s", field,
                    type_name(v));
    *out = v;
    return 1;
}

int
kvc_json_check_fields(const json_t *obj, const char *const *allowed,
                      struct kvc_json_err *e)
{
    const char *key;
    json_t *v = NULL;

    if (!json_is_object(obj))
        return fail(e, "expected a JSON object");
    json_object_foreach((json_t *)obj, key, v) {
        bool ok = false;
        for (size_t i = 0; allowed[i] && !ok; i++)
            ok = !strcmp(allowed[i], key);
        if (!ok)
            return fail(e, "unknown field '%.64s'", key);
    }
    return 0;
}

json_t *
kvc_json_api_error(const char *type, const char *id, const char *fmt, ...)
{
    char msg[512], idbuf[128];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!id) {
        size_t n = (size_t)snprintf(idbuf, sizeof idbuf,
                                    "com.vmware.vapi.std.errors.");
        for (const char *p = type; *p && n + 1 < sizeof idbuf; p++)
            idbuf[n++] = (char)tolower((unsigned char)*p);
        idbuf[n] = 0;
        id = idbuf;
    }
    return json_pack("{s:s, s:[{s:[], s:s, s:s}]}", "error_type", type,
                     "messages", "args", "default_message", msg, "id", id);
}

const char *
kvc_json_api_error_message(const json_t *body)
{
    if (json_is_object(body) && json_object_get(body, "value")
        && json_object_size(body) == 1)
        body = json_object_get(body, "value");
    json_t *msgs = json_object_get(body, "messages");
    json_t *first = json_array_get(msgs, 0);
    json_t *m = json_object_get(first, "default_message");
    return json_string_value(m);
}

char *
kvc_json_dump(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}
