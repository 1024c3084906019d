/* Small jansson helpers for REST handlers and kvcli: strict, typed field
 * readers whose errors name the field, bounded parsing of request bodies,
 * and the Automation API error body.
 *
 *     struct kvc_json_err e;
 *     json_t *body = kvc_json_parse_body(buf, len, 64 * 1024, &e);
 *     int64_t mem;
 *     if (!body || kvc_json_get_int(body, "memory_MiB", KVC_JSON_REQUIRED,
 *                                   4, 1 << 20, &mem, &e) < 0)
 *         return reply_400(e.msg);    // "field 'memory_MiB': expected integer"
 *
 * Readers return 1 if the field was present and read, 0 if it is absent (or
 * null) and optional (*out untouched), or -EINVAL with e->msg set: missing
 * required field, wrong type, out of range.  OBJ must be a JSON object
 * (anything else is -EINVAL too).
 */
#ifndef KVC_JSONUTIL_H
#define KVC_JSONUTIL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kvc_json_err {
    char msg[256];
};

enum {
    KVC_JSON_OPTIONAL = 0,
    KVC_JSON_REQUIRED = 1 << 0,
    KVC_JSON_NONEMPTY = 1 << 1,     /* strings: "" is refused */
};

/* Parses a request body of LEN bytes.  Refuses bodies over MAX bytes before
 * parsing, invalid JSON (with line and column), duplicate keys, and
 * anything but an object at the top.  NULL with e->msg on error; the caller
 * owns the result (json_decref). */
json_t *kvc_json_parse_body(const char *buf, size_t len, size_t max,
                            struct kvc_json_err *e);
/* The same without the "must be an object" rule (e.g. a bare token). */
json_t *kvc_json_parse_any(const char *buf, size_t len, size_t max,
                           struct kvc_json_err *e);

int kvc_json_get_int(const json_t *obj, const char *field, unsigned flags,
                     int64_t min, int64_t max, int64_t *out,
                     struct kvc_json_err *e);
int kvc_json_get_bool(const json_t *obj, const char *field, unsigned flags,
                      bool *out, struct kvc_json_err *e);
/* *OUT points into OBJ (valid while OBJ lives).  MAXLEN 0: no limit. */
int kvc_json_get_string(const json_t *obj, const char *field, unsigned flags,
                        size_t maxlen, const char **out,
                        struct kvc_json_err *e);
/* A string that must be one of VALUES (NULL-terminated); *OUT = index. */
int kvc_json_get_enum(const json_t *obj, const char *field, unsigned flags,
                      const char *const *values, int *out,
                      struct kvc_json_err *e);
/* A string that must be an object id of KIND (lib/ids.h). */
int kvc_json_get_id(const json_t *obj, const char *field, unsigned flags,
                    int kind, uint64_t *out, struct kvc_json_err *e);
/* Borrowed references to a nested object / array. */
int kvc_json_get_object(const json_t *obj, const char *field, unsigned flags,
                        json_t **out, struct kvc_json_err *e);
int kvc_json_get_array(const json_t *obj, const char *field, unsigned flags,
                       json_t **out, struct kvc_json_err *e);

/* Refuses fields not in ALLOWED (NULL-terminated): "unknown field 'x'".
 * Returns 0 or -EINVAL. */
int kvc_json_check_fields(const json_t *obj, const char *const *allowed,
                          struct kvc_json_err *e);

/* The Automation API error body:
 *   {"error_type": TYPE, "messages": [{"args": [], "default_message": MSG,
 *    "id": ID}]}
 * ID may be NULL ("com.vmware.vapi.std.errors.<type in lower case>").
 * Returns a new reference, NULL only when out of memory. */
json_t *kvc_json_api_error(const char *type, const char *id, const char *fmt,
                           ...) __attribute__((format(printf, 3, 4)));
/* From such a body (or {"value": ...}-wrapped), the first default_message;
 * NULL if there is none.  Points into BODY. */
const char *kvc_json_api_error_message(const json_t *body);

/* Compact, key-sorted text of V (malloc'd; NULL when out of memory). */
char *kvc_json_dump(const json_t *v);

#endif
