/* /api/kvc/vm/{vm}/console: the serial console of a powered-on VM, read
 * from and typed into through its host (VM_CONSOLE_READ/WRITE of the host
 * protocol; hostd asks vmx, or the sim backend's model).
 *
 *   GET  ?offset=N[&max=M]  -> {"data": "...", "offset": next, "total": T}
 *   POST {"data": "text"}   -> {"accepted": bytes}
 *
 * Offsets count the bytes the guest ever wrote; the host keeps the last
 * 64 KiB (an older offset reads from the oldest kept).  Output is returned
 * as text: bytes that are not UTF-8 become U+FFFD. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "host.pb-c.h"
#include "vpxd/api/api.h"
#include "vpxd/api/internal.h"
#include "vpxd/hostmgr.h"

#define CONSOLE_MAX_READ (64u << 10)
#define CONSOLE_MAX_WRITE 4096u

struct con_req {
    struct api_req *r;
    char vm[VDB_ID_MAX];
};

/* The VM's host and instance uuid, or answered with an error. */
static int vm_where(struct api_req *r, char *host, size_t hl, char *uuid, size_t ul)
{
    const char *id = api_param(r, "vm");
    json_t *row = NULL;
    int rc = vdb_query_row(api_db(r), &row, "SELECT host, instance_uuid, power_state FROM vm"
                           " WHERE id = ?", "s", id);
    const char *h, *u, *p;

    if (rc == -ENOENT) {
        api_error(r, 404, "NOT_FOUND", "virtual machine %s not found", id);
        return -1;
    }
    if (rc < 0) {
        api_error_errno(r, rc, "virtual machine");
        return -1;
    }
    h = json_string_value(json_object_get(row, "host"));
    u = json_string_value(json_object_get(row, "instance_uuid"));
    p = json_string_value(json_object_get(row, "power_state"));
    if (!p || strcmp(p, "POWERED_ON")) {
        api_error(r, 400, "NOT_ALLOWED_IN_CURRENT_STATE",
                  "virtual machine %s is %s: its serial console runs only while it is "
                  "powered on", id, p ? p : "in no known state");
        json_decref(row);
        return -1;
    }
    snprintf(host, hl, "%s", h ? h : "");
    snprintf(uuid, ul, "%s", u ? u : "");
    json_decref(row);
    return api_need_host(r, host) < 0 ? -1 : 0;
}

/* DATA as a JSON string, invalid UTF-8 replaced by U+FFFD. */
static json_t *text(const uint8_t *d, size_t n)
{
    json_t *s = json_stringn((const char *)d, n);
    char *buf;
    size_t k = 0;

    if (s)
        return s;
    if (!(buf = malloc(n * 3 + 1)))
        return json_string("");
    for (size_t i = 0; i < n;) {
        size_t len = d[i] < 0x80 ? 1 : (d[i] & 0xe0) == 0xc0 ? 2 : (d[i] & 0xf0) == 0xe0 ? 3
                   : (d[i] & 0xf8) == 0xf0 ? 4 : 0;
        json_t *one = len && i + len <= n ? json_stringn((const char *)d + i, len) : NULL;
        if (one) {
            memcpy(buf + k, d + i, len);
            k += len;
            i += len;
            json_decref(one);
        } else {
            memcpy(buf + k, "\xef\xbf\xbd", 3);
            k += 3;
            i++;
        }
    }
    s = json_stringn(buf, k);
    free(buf);
    return s ? s : json_string("");
}

static void on_read(void *arg, int err, const char *msg, const ProtobufCMessage *resp)
{
    struct con_req *c = arg;
    const Kvc__Host__ConsoleData *d = (const Kvc__Host__ConsoleData *)resp;

    if (err)
        api_host_error(c->r, err, msg);
    else
        api_reply(c->r, 200, json_pack("{s:o, s:I, s:I}", "data", text(d->data.data, d->data.len),
                                       "offset", (json_int_t)d->next_offset,
                                       "total", (json_int_t)d->total));
    free(c);
}

static void on_write(void *arg, int err, const char *msg, const ProtobufCMessage *resp)
{
    struct con_req *c = arg;
    const Kvc__Host__ConsoleWritten *w = (const Kvc__Host__ConsoleWritten *)resp;

    if (err)
        api_host_error(c->r, err, msg);
    else
        api_reply(c->r, 200, json_pack("{s:i}", "accepted", (int)w->accepted));
    free(c);
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (!s || !*s || *s == '-')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

void api_vm_console_read(struct api_req *r)
{
    Kvc__Host__ConsoleRead m = KVC__HOST__CONSOLE_READ__INIT;
    char host[VDB_ID_MAX], uuid[64];
    uint64_t offset = 0, max = CONSOLE_MAX_READ;
    const char *qo = api_query(r, "offset"), *qm = api_query(r, "max");
    struct con_req *c;
    int rc;

    if (qo && parse_u64(qo, &offset) < 0)
        return api_error(r, 400, "INVALID_ARGUMENT", "offset '%.32s' is not a byte offset", qo);
    if (qm && (parse_u64(qm, &max) < 0 || max < 1 || max > CONSOLE_MAX_READ))
        return api_error(r, 400, "INVALID_ARGUMENT", "max '%.32s' is not 1..%u", qm,
                         CONSOLE_MAX_READ);
    if (vm_where(r, host, sizeof host, uuid, sizeof uuid) < 0)
        return;
    if (!(c = calloc(1, sizeof *c)))
        return api_error(r, 500, "ERROR", "out of memory");
    c->r = r;
    m.uuid = uuid;
    m.offset = offset;
    m.max_bytes = (uint32_t)max;
    api_hold(r);
    rc = hostmgr_host_call(api_vpxd(r)->hm, host, KVC__HOST__METHOD__VM_CONSOLE_READ, &m.base,
                           &kvc__host__console_data__descriptor, on_read, c);
    if (rc < 0) {
        api_host_error(r, rc, NULL);
        free(c);
    }
}

void api_vm_console_write(struct api_req *r)
{
    static const char *const fields[] = { "data", NULL };
    Kvc__Host__ConsoleWrite m = KVC__HOST__CONSOLE_WRITE__INIT;
    char host[VDB_ID_MAX], uuid[64];
    const char *data;
    struct con_req *c;
    int rc;

    if (api_body_object(r, fields) < 0 ||
        api_field_str(r, api_body(r), "data", true, &data) < 0)
        return;
    if (strlen(data) > CONSOLE_MAX_WRITE)
        return api_error(r, 400, "INVALID_ARGUMENT", "data: %zu bytes, at most %u at a time",
                         strlen(data), CONSOLE_MAX_WRITE);
    if (vm_where(r, host, sizeof host, uuid, sizeof uuid) < 0)
        return;
    if (!(c = calloc(1, sizeof *c)))
        return api_error(r, 500, "ERROR", "out of memory");
    c->r = r;
    m.uuid = uuid;
    m.data.data = (uint8_t *)data;
    m.data.len = strlen(data);
    api_set_object(r, api_param(r, "vm"));
    api_hold(r);
    rc = hostmgr_host_call(api_vpxd(r)->hm, host, KVC__HOST__METHOD__VM_CONSOLE_WRITE, &m.base,
                           &kvc__host__console_written__descriptor, on_write, c);
    if (rc < 0) {
        api_host_error(r, rc, NULL);
        free(c);
    }
}
