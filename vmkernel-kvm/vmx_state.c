/* State stream primitives (see vmx_state.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmkernel-kvm/vmx_state.h"

void sbuf_init(struct sbuf *b)
{
    memset(b, 0, sizeof(*b));
}

void sbuf_free(struct sbuf *b)
{
    if (!b)
        return;
    free(b->p);
    sbuf_init(b);
}

void sbuf_put(struct sbuf *b, const void *d, size_t n)
{
    if (b->err)
        return;
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n) {
            if (cap > SIZE_MAX / 2) {
                b->err = -ENOMEM;
                return;
            }
            cap *= 2;
        }
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->err = -ENOMEM;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, d, n);
    b->len += n;
}

void sbuf_u8(struct sbuf *b, uint8_t v)
{
    sbuf_put(b, &v, 1);
}

void sbuf_u16(struct sbuf *b, uint16_t v)
{
    uint8_t d[2] = { (uint8_t)v, (uint8_t)(v >> 8) };
    sbuf_put(b, d, 2);
}

void sbuf_u32(struct sbuf *b, uint32_t v)
{
    uint8_t d[4];
    for (int i = 0; i < 4; i++)
        d[i] = (uint8_t)(v >> (8 * i));
    sbuf_put(b, d, 4);
}

void sbuf_u64(struct sbuf *b, uint64_t v)
{
    uint8_t d[8];
    for (int i = 0; i < 8; i++)
        d[i] = (uint8_t)(v >> (8 * i));
    sbuf_put(b, d, 8);
}

void sbuf_blob(struct sbuf *b, const void *d, size_t n)
{
    if (n > UINT32_MAX) {
        b->err = -EINVAL;
        return;
    }
    sbuf_u32(b, (uint32_t)n);
    sbuf_put(b, d, n);
}

void sreader_init(struct sreader *r, const void *p, size_t len)
{
    r->p = p;
    r->len = len;
    r->off = 0;
    r->err = 0;
}

void sreader_get(struct sreader *r, void *d, size_t n)
{
    if (r->err || n > r->len - r->off) {
        r->err = -EINVAL;
        memset(d, 0, n);
        return;
    }
    memcpy(d, r->p + r->off, n);
    r->off += n;
}

uint8_t sreader_u8(struct sreader *r)
{
    uint8_t v;
    sreader_get(r, &v, 1);
    return v;
}

uint16_t sreader_u16(struct sreader *r)
{
    uint8_t d[2];
    sreader_get(r, d, 2);
    return (uint16_t)(d[0] | d[1] << 8);
}

uint32_t sreader_u32(struct sreader *r)
{
    uint8_t d[4];
    sreader_get(r, d, 4);
    return (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24;
}

uint64_t sreader_u64(struct sreader *r)
{
    uint64_t lo = sreader_u32(r);
    uint64_t hi = sreader_u32(r);
    return lo | hi << 32;
}

size_t sreader_blob(struct sreader *r, void *buf, size_t cap)
{
    uint32_t n = sreader_u32(r);
    if (r->err || n > cap) {
        r->err = -EINVAL;
        return 0;
    }
    sreader_get(r, buf, n);
    return r->err ? 0 : n;
}
