/* VM serial console over the host protocol (console.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "host.pb-c.h"
#include "hostd/backend.h"
#include "hostd/console.h"
#include "hostd/hostd.h"

KVC_LOG_MODULE(console);

struct ctx {
    struct kvc_rpc_call *call;
    bool write;
};

static int rpc_status(int err)
{
    switch (-err) {
    case ENOENT: return KVC_RPC_E_NOT_FOUND;
    case EBUSY: case EALREADY: return KVC_RPC_E_CONFLICT;
    case EINVAL: return KVC_RPC_E_INVALID_ARGUMENT;
    default: return KVC_RPC_E_UNAVAILABLE;
    }
}

static void done(int err, const char *msg, const void *data, size_t len, uint64_t next,
                 uint64_t total, void *arg)
{
    struct ctx *c = arg;

    if (err) {
        kvc_rpc_reply_error(c->call, rpc_status(err), "%s",
                            msg ? msg : strerror(-err));
    } else if (c->write) {
        Kvc__Host__ConsoleWritten w = KVC__HOST__CONSOLE_WRITTEN__INIT;
        w.accepted = (uint32_t)next;
        kvc_rpc_reply(c->call, &w.base);
    } else {
        Kvc__Host__ConsoleData d = KVC__HOST__CONSOLE_DATA__INIT;
        d.data.data = (uint8_t *)data;
        d.data.len = len;
        d.next_offset = next;
        d.total = total;
        kvc_rpc_reply(c->call, &d.base);
    }
    free(c);
}

/* The VM a console call is for, or NULL after answering the call. */
static struct hostd_vm *vm_for(struct hostd_host *h, struct kvc_rpc_call *call,
                               const char *uuid, void *op)
{
    struct hostd_vm *vm;

    if (!hostd_session_ok(h, call))
        return NULL;
    if (!uuid || !(vm = hostd_vm_find(h, uuid))) {
        kvc_rpc_reply_error(call, KVC_RPC_E_NOT_FOUND, "no such VM on this host");
        return NULL;
    }
    if (vm->power != VM_ON) {
        kvc_rpc_reply_error(call, KVC_RPC_E_CONFLICT,
                            "the VM is not powered on: its serial console is not running");
        return NULL;
    }
    if (!op) {
        kvc_rpc_reply_error(call, KVC_RPC_E_UNAVAILABLE,
                            "the %s backend has no serial console", h->be->name);
        return NULL;
    }
    return vm;
}

void hostd_console_on_read(struct kvc_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
    struct hostd_host *h = arg;
    const Kvc__Host__ConsoleRead *m = (const Kvc__Host__ConsoleRead *)req;
    struct hostd_vm *vm = vm_for(h, call, m->uuid, (void *)h->be->console_read);
    struct ctx *c;
    uint32_t max = m->max_bytes && m->max_bytes < HOSTD_CONSOLE_MAX_READ
                   ? m->max_bytes : HOSTD_CONSOLE_MAX_READ;

    if (!vm)
        return;
    if (!(c = calloc(1, sizeof *c))) {
        kvc_rpc_reply_error(call, KVC_RPC_E_INTERNAL, "out of memory");
        return;
    }
    c->call = call;
    h->be->console_read(h, vm, m->offset, max, done, c);
}

void hostd_console_on_write(struct kvc_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
    struct hostd_host *h = arg;
    const Kvc__Host__ConsoleWrite *m = (const Kvc__Host__ConsoleWrite *)req;
    struct hostd_vm *vm;
    struct ctx *c;

    if (m->data.len > HOSTD_CONSOLE_MAX_WRITE) {
        kvc_rpc_reply_error(call, KVC_RPC_E_INVALID_ARGUMENT,
                            "console input of %zu bytes: at most %u at a time", m->data.len,
                            HOSTD_CONSOLE_MAX_WRITE);
        return;
    }
    if (!(vm = vm_for(h, call, m->uuid, (void *)h->be->console_write)))
        return;
    if (!(c = calloc(1, sizeof *c))) {
        kvc_rpc_reply_error(call, KVC_RPC_E_INTERNAL, "out of memory");
        return;
    }
    c->call = call;
    c->write = true;
    h->be->console_write(h, vm, m->data.data, m->data.len, done, c);
}
