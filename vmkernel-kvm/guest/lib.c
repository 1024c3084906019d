/* Freestanding helpers shared by the kernel and the workloads. */
#include <stdarg.h>
#include "guest.h"

size_t g_strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

void *memset(void *d, int c, size_t n)
{
    uint8_t *p = d;
    while (n--)
        *p++ = (uint8_t)c;
    return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
    uint8_t *p = d;
    const uint8_t *q = s;
    while (n--)
        *p++ = *q++;
    return d;
}

static void put(char *buf, size_t len, size_t *pos, char c)
{
    if (*pos + 1 < len)
        buf[*pos] = c;
    (*pos)++;
}

static void put_num(char *buf, size_t len, size_t *pos, uint64_t v, unsigned base)
{
    char tmp[24];
    int n = 0;
    do {
        unsigned d = (unsigned)(v % base);
        tmp[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
        v /= base;
    } while (v);
    while (n)
        put(buf, len, pos, tmp[--n]);
}

int g_snprintf(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    size_t pos = 0;
    va_start(ap, fmt);
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            put(buf, len, &pos, *f);
            continue;
        }
        f++;
        int lng = 0;
        if (*f == 'l') {
            lng = 1;
            f++;
        }
        switch (*f) {
        case 's': {
            const char *s = va_arg(ap, const char *);
            while (*s)
                put(buf, len, &pos, *s++);
            break;
        }
        case 'd': {
            int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);
            if (v < 0) {
                put(buf, len, &pos, '-');
                v = -v;
            }
            put_num(buf, len, &pos, (uint64_t)v, 10);
            break;
        }
        case 'u':
            put_num(buf, len, &pos, lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 10);
            break;
        case 'x':
            put_num(buf, len, &pos, lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 16);
            break;
        default:
            put(buf, len, &pos, '%');
            if (*f)
                put(buf, len, &pos, *f);
            else
                f--;
        }
    }
    va_end(ap);
    if (len)
        buf[pos < len ? pos : len - 1] = 0;
    return (int)pos;
}
