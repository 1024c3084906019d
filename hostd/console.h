/* The VM serial console calls of the host protocol (VM_CONSOLE_READ,
 * VM_CONSOLE_WRITE in proto/host.proto), answered through the backend's
 * console ops.  Handlers for hostd's method table (arg: the hostd_host). */
#ifndef HOSTD_CONSOLE_H
#define HOSTD_CONSOLE_H

#include "rpc.h"

#define HOSTD_CONSOLE_MAX_READ (64u << 10)
#define HOSTD_CONSOLE_MAX_WRITE 4096u

void hostd_console_on_read(struct kvc_rpc_call *, const ProtobufCMessage *, void *arg);
void hostd_console_on_write(struct kvc_rpc_call *, const ProtobufCMessage *, void *arg);

#endif
