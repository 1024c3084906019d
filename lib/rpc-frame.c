/* Frame header codec and status names: pure functions, shared by the
 * transport and the fuzz target. */
#include <errno.h>
#include <string.h>

#include "rpc.h"

static uint32_t
get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void
put32(uint8_t *p, uint32_t v)
{
    p[0] = v >> 24;
    p[1] = v >> 16;
    p[2] = v >> 8;
    p[3] = v;
}

int
kvc_rpc_header_decode(const void *buf, size_t len, uint32_t max_payload,
                      struct kvc_rpc_header *out)
{
    const uint8_t *p = buf;

    if (len < KVC_RPC_HEADER_SIZE)
        return -EAGAIN;
    memset(out, 0, sizeof *out);
    if (get32(p) != KVC_RPC_MAGIC || p[4] != KVC_RPC_VERSION
        || p[6] != 0 || p[7] != 0)
        return -EBADMSG;
    out->flags = p[5];
    out->method = get32(p + 8);
    out->request_id = (uint64_t)get32(p + 12) << 32 | get32(p + 16);
    out->length = get32(p + 20);
    if (out->flags & ~KVC_RPC_FLAGS_KNOWN)
        return -EBADMSG;
    /* ERROR only on responses; a response is never one-way; requests that
     * expect an answer need a non-zero id to be matched with it. */
    if ((out->flags & KVC_RPC_FLAG_ERROR) && !(out->flags & KVC_RPC_FLAG_RESPONSE))
        return -EBADMSG;
    if ((out->flags & KVC_RPC_FLAG_RESPONSE) && (out->flags & KVC_RPC_FLAG_ONEWAY))
        return -EBADMSG;
    if (!(out->flags & KVC_RPC_FLAG_ONEWAY) && out->request_id == 0)
        return -EBADMSG;
    if (out->length > max_payload)
        return -EMSGSIZE;
    return 0;
}

void
kvc_rpc_header_encode(const struct kvc_rpc_header *h, uint8_t out[KVC_RPC_HEADER_SIZE])
{
    put32(out, KVC_RPC_MAGIC);
    out[4] = KVC_RPC_VERSION;
    out[5] = h->flags;
    out[6] = out[7] = 0;
    put32(out + 8, h->method);
    put32(out + 12, (uint32_t)(h->request_id >> 32));
    put32(out + 16, (uint32_t)h->request_id);
    put32(out + 20, h->length);
}

const char *
kvc_rpc_status_name(int status)
{
    static const char *const names[] = {
        [KVC_RPC_OK] = "OK",
        [KVC_RPC_E_UNKNOWN_METHOD] = "UNKNOWN_METHOD",
        [KVC_RPC_E_BAD_REQUEST] = "BAD_REQUEST",
        [KVC_RPC_E_TOO_LARGE] = "TOO_LARGE",
        [KVC_RPC_E_TIMEOUT] = "TIMEOUT",
        [KVC_RPC_E_DISCONNECTED] = "DISCONNECTED",
        [KVC_RPC_E_UNAVAILABLE] = "UNAVAILABLE",
        [KVC_RPC_E_PERMISSION] = "PERMISSION",
        [KVC_RPC_E_NOT_FOUND] = "NOT_FOUND",
        [KVC_RPC_E_INVALID_ARGUMENT] = "INVALID_ARGUMENT",
        [KVC_RPC_E_CONFLICT] = "CONFLICT",
        [KVC_RPC_E_INTERNAL] = "INTERNAL",
        [KVC_RPC_E_NOT_IMPLEMENTED] = "NOT_IMPLEMENTED",
        [KVC_RPC_E_CANCELLED] = "CANCELLED",
    };

    if (status >= KVC_RPC_E_APP)
        return "APPLICATION";
    if (status < 0 || (size_t)status >= KVC_ARRAY_SIZE(names) || !names[status])
        return "UNKNOWN";
    return names[status];
}
