/* vmx's control socket.
 *
 * The wire format is the project's RPC framing (lib/rpc.h: 24-byte header,
 * protobuf payload, kvc.rpc.Error on failure) and the messages are
 * proto/vmx.proto.  Until lib/rpc's transport is implemented on main, the
 * unix-socket server here speaks that framing itself (requests and
 * responses only, one connection at a time per event); clients written
 * against lib/rpc.h talk to it unchanged.
 *
 * Errors: 0 or -errno. */
#ifndef KVC_VMX_CTL_H
#define KVC_VMX_CTL_H

#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

struct event_base;
struct vmx;
struct vmx_ctl;
struct vmx_ctl_call;

typedef void (*vmx_ctl_handler_fn)(struct vmx_ctl_call *, const ProtobufCMessage *req, void *arg);

struct vmx_ctl_method {
    uint32_t id;
    const char *name;
    const ProtobufCMessageDescriptor *request;
    const ProtobufCMessageDescriptor *response;
    vmx_ctl_handler_fn handler;
};

/* Listen on PATH (a stale socket file is replaced). */
int vmx_ctl_listen(struct event_base *, const char *path, const struct vmx_ctl_method *,
                   size_t n_methods, void *arg, struct vmx_ctl **out);
void vmx_ctl_free(struct vmx_ctl *);
/* Finish CALL with RESPONSE (caller keeps ownership of RESPONSE). */
int vmx_ctl_reply(struct vmx_ctl_call *, const ProtobufCMessage *response);
int vmx_ctl_reply_error(struct vmx_ctl_call *, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Flush replies already queued (vmx calls it before exiting). */
void vmx_ctl_flush(struct vmx_ctl *);

/* The method table and handlers of vmx (vmx_ctl.c). */
extern const struct vmx_ctl_method vmx_ctl_methods[];
extern const size_t vmx_ctl_n_methods;
/* A migration ended (or vmx is exiting): answer a MigrateSend that asked
 * to wait for the outcome. */
void vmx_ctl_migrate_finished(struct vmx *);

#endif
