/* Fuzz target: the RPC frame decoder and dispatch.
 *
 * The input is a byte stream arriving on one connection (the first byte
 * picks the size of the pieces it arrives in, so frames split anywhere).
 * The connection serves a small method table (synchronous, asynchronous,
 * error, one-way and payload-less methods) and has four calls of its own
 * out, so responses with ids 1-4 reach the reply path.  Whatever the input,
 * the transport must not crash or leak, and every frame it writes back must
 * itself be well formed.
 *
 * Built with libFuzzer by `make fuzz` (tests/fuzz/fuzz_rpc_frame), and with
 * tests/fuzz/replay-main.c as tests/fuzz/replay_rpc_frame, which replays
 * tests/fuzz/corpus/rpc_frame/ in `make check`. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "log.h"
#include "rpc.h"
#include "rpc-int.h"
#include "rpc.pb-c.h"

#define FUZZ_MAX_FRAME 4096

static struct kvc_rpc_call *held[8];
static int n_held;

static void
h_echo(struct kvc_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
    kvc_rpc_reply(call, req);
}

static void
h_hold(struct kvc_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
    if (n_held < 8)
        held[n_held++] = call;
    else
        kvc_rpc_reply_error(call, KVC_RPC_E_CONFLICT, "busy");
}

static void
h_fail(struct kvc_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
    kvc_rpc_reply_error(call, KVC_RPC_E_APP + 7, "no %u", kvc_rpc_call_method(call));
}

static void
h_empty(struct kvc_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
    kvc_rpc_reply(call, NULL);
}

static void
h_close(struct kvc_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
    struct kvc_rpc_conn *c = kvc_rpc_call_conn(call);
    kvc_rpc_reply(call, NULL);
    kvc_rpc_conn_close(c);
}

static const struct kvc_rpc_method methods[] = {
    { 0x10, "Echo", &kvc__rpc__ping__descriptor, &kvc__rpc__ping__descriptor, h_echo },
    { 0x11, "Hold", &kvc__rpc__ping__descriptor, &kvc__rpc__ping__descriptor, h_hold },
    { 0x12, "Fail", &kvc__rpc__error__descriptor, NULL, h_fail },
    { 0x13, "Empty", NULL, NULL, h_empty },
    { 0x14, "Close", NULL, NULL, h_close },
};

static void
on_reply(int status, const char *error, const ProtobufCMessage *resp, void *arg)
{
    if (!error || (status == KVC_RPC_OK && error[0]))
        abort();
}

/* Every frame we produced must decode. */
static void
check_output(struct evbuffer *out)
{
    size_t len = evbuffer_get_length(out);
    const uint8_t *p = len ? evbuffer_pullup(out, -1) : NULL;
    size_t off = 0;

    while (off < len) {
        struct kvc_rpc_header h;
        if (kvc_rpc_header_decode(p + off, len - off, FUZZ_MAX_FRAME, &h) != 0
            || h.length > len - off - KVC_RPC_HEADER_SIZE)
            abort();
        if (h.flags & KVC_RPC_FLAG_ERROR) {
            Kvc__Rpc__Error *e = kvc__rpc__error__unpack(NULL, h.length,
                                                         p + off + KVC_RPC_HEADER_SIZE);
            if (!e || e->code == 0)
                abort();
            kvc__rpc__error__free_unpacked(e, NULL);
        }
        off += KVC_RPC_HEADER_SIZE + h.length;
    }
    evbuffer_drain(out, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct event_base *base;
    struct kvc_rpc_opts o = { .methods = methods, .n_methods = KVC_ARRAY_SIZE(methods),
                              .max_frame = FUZZ_MAX_FRAME };
    Kvc__Rpc__Ping ping = KVC__RPC__PING__INIT;
    struct kvc_rpc_conn *c;
    size_t chunk, off;
    bool alive = true;
    int i;

    if (!base) {
        base = event_base_new();
        kvc_log_set_default_level(KVC_LOG_OFF);
    }
    if (kvc_rpc_test_conn_new(base, &o, &c) < 0)
        abort();
    for (i = 0; i < 4; i++)                     /* request ids 1..4 */
        if (kvc_rpc_conn_call(c, 0x10 + (uint32_t)i, &ping.base,
                              i == 2 ? NULL : &kvc__rpc__ping__descriptor,
                              1000, on_reply, NULL) < 0)
            abort();
    check_output(kvc_rpc_test_conn_output(c));
    chunk = size ? (size_t)(data[0] % 64) + 1 : 1;
    if (size) {
        data++;
        size--;
    }
    for (off = 0; off < size && alive; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        alive = kvc_rpc_test_conn_feed(c, data + off, n);
    }
    for (i = 0; i < n_held; i++)
        kvc_rpc_reply(held[i], NULL);
    n_held = 0;
    check_output(kvc_rpc_test_conn_output(c));
    kvc_rpc_test_conn_free(c);
    return 0;
}
