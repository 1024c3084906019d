/* The sim backend's serial console: what a simulated guest prints (the test
 * guest's lines, so tests read a sim VM's console as a kvm one's) and the
 * echo of what is typed, kept per VM in a 64 KiB window like vmx's ring. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hostd/backends/sim.h"
#include "hostd/backend.h"

#define KEEP (64u << 10)

struct con {
    struct con *next;
    char uuid[HOSTD_UUID_LEN];
    char *buf;                  /* bytes [base, base + len) of the output */
    size_t len, cap;
    uint64_t base;
    char line[256];             /* input not yet ended by a newline */
    size_t line_len;
};

static struct con *all;

static struct con *find(const char *uuid, bool create)
{
    struct con *c;

    for (c = all; c; c = c->next)
        if (!strcmp(c->uuid, uuid))
            return c;
    if (!create || !(c = calloc(1, sizeof *c)))
        return NULL;
    snprintf(c->uuid, sizeof c->uuid, "%s", uuid);
    c->next = all;
    all = c;
    return c;
}

static void out(struct con *c, const char *s, size_t n)
{
    if (c->len + n > c->cap) {
        size_t cap = c->cap ? c->cap : 4096;
        while (cap < c->len + n)
            cap *= 2;
        char *nb = realloc(c->buf, cap);
        if (!nb)
            return;
        c->buf = nb;
        c->cap = cap;
    }
    memcpy(c->buf + c->len, s, n);
    c->len += n;
    if (c->len > KEEP) {                /* keep the newest KEEP bytes */
        size_t drop = c->len - KEEP;
        memmove(c->buf, c->buf + drop, KEEP);
        c->len = KEEP;
        c->base += drop;
    }
}

void sim_console_boot(struct hostd_vm *vm)
{
    struct con *c = find(vm->uuid, true);
    char s[256];
    int n;

    if (!c)
        return;
    c->line_len = 0;
    n = snprintf(s, sizeof s, "kvcenter sim: %s powered on\r\n"
                 "KVC-GUEST: ready workload=%s cpus=%u mem_mb=%llu tools=1\r\n",
                 vm->name, vm->workload && *vm->workload ? vm->workload : "idle",
                 vm->cpu_count, (unsigned long long)vm->memory_mib);
    out(c, s, (size_t)n < sizeof s ? (size_t)n : sizeof s - 1);
}

void sim_console_forget(struct hostd_vm *vm)
{
    for (struct con **pp = &all; *pp; pp = &(*pp)->next)
        if (!strcmp((*pp)->uuid, vm->uuid)) {
            struct con *c = *pp;
            *pp = c->next;
            free(c->buf);
            free(c);
            return;
        }
}

void sim_console_read(struct hostd_host *h, struct hostd_vm *vm, uint64_t offset, uint32_t max,
                      hostd_console_fn done, void *ctx)
{
    struct con *c = find(vm->uuid, true);

    if (!c) {
        done(-ENOMEM, "out of memory", NULL, 0, 0, 0, ctx);
        return;
    }
    uint64_t end = c->base + c->len;
    if (offset < c->base)
        offset = c->base;               /* older than kept: from the oldest */
    if (offset > end)
        offset = end;
    size_t n = (size_t)(end - offset);
    if (n > max)
        n = max;
    done(0, NULL, c->buf + (offset - c->base), n, offset + n, end, ctx);
}

/* The test guest echoes each line it gets as "KVC-GUEST: console: LINE". */
void sim_console_write(struct hostd_host *h, struct hostd_vm *vm, const void *data, size_t len,
                       hostd_console_fn done, void *ctx)
{
    struct con *c = find(vm->uuid, true);
    const unsigned char *p = data;

    if (!c) {
        done(-ENOMEM, "out of memory", NULL, 0, 0, 0, ctx);
        return;
    }
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '\n' || p[i] == '\r') {
            char s[320];
            int n = snprintf(s, sizeof s, "KVC-GUEST: console: %.*s\r\n", (int)c->line_len,
                             c->line);
            out(c, s, (size_t)n < sizeof s ? (size_t)n : sizeof s - 1);
            c->line_len = 0;
        } else if (c->line_len < sizeof c->line && p[i] >= 0x20 && p[i] < 0x7f) {
            c->line[c->line_len++] = (char)p[i];
        }
    }
    done(0, NULL, NULL, 0, len, c->base + c->len, ctx);
}
