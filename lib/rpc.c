/* RPC transport: not implemented yet.  Every entry point fails with a clear
 * error until the implementation lands; the frame codec is in rpc-frame.c. */
#include <errno.h>
#include <stdlib.h>

#include "log.h"
#include "rpc.h"

KVC_LOG_MODULE(rpc);

int kvc_rpc_reply(struct kvc_rpc_call *c, const ProtobufCMessage *r) { return -ENOSYS; }
int kvc_rpc_reply_error(struct kvc_rpc_call *c, int s, const char *fmt, ...) { return -ENOSYS; }
uint32_t kvc_rpc_call_method(const struct kvc_rpc_call *c) { return 0; }
bool kvc_rpc_call_is_oneway(const struct kvc_rpc_call *c) { return false; }
struct kvc_rpc_conn *kvc_rpc_call_conn(const struct kvc_rpc_call *c) { return NULL; }
int kvc_rpc_call_peer_cred(const struct kvc_rpc_call *c, uid_t *u, pid_t *p, gid_t *g) { return -ENOSYS; }
int kvc_rpc_conn_call(struct kvc_rpc_conn *c, uint32_t m, const ProtobufCMessage *r,
                      const ProtobufCMessageDescriptor *t, unsigned to,
                      kvc_rpc_reply_fn cb, void *a) { return -ENOSYS; }
int kvc_rpc_conn_send(struct kvc_rpc_conn *c, uint32_t m, const ProtobufCMessage *r) { return -ENOSYS; }
void kvc_rpc_conn_close(struct kvc_rpc_conn *c) { }
int kvc_rpc_conn_peer_cred(const struct kvc_rpc_conn *c, uid_t *u, pid_t *p, gid_t *g) { return -ENOSYS; }
const char *kvc_rpc_conn_peer_thumbprint(const struct kvc_rpc_conn *c) { return NULL; }
const char *kvc_rpc_conn_peer_name(const struct kvc_rpc_conn *c) { return "?"; }
void kvc_rpc_conn_set_data(struct kvc_rpc_conn *c, void *d) { }
void *kvc_rpc_conn_get_data(const struct kvc_rpc_conn *c) { return NULL; }
int kvc_rpc_server_new(struct event_base *b, const struct kvc_rpc_opts *o, struct kvc_rpc_server **out)
{ kvc_err("RPC transport not implemented yet"); *out = NULL; return -ENOSYS; }
int kvc_rpc_server_listen_unix(struct kvc_rpc_server *s, const char *p) { return -ENOSYS; }
int kvc_rpc_server_listen_tcp(struct kvc_rpc_server *s, const char *a, uint16_t p, const struct kvc_rpc_tls *t) { return -ENOSYS; }
uint16_t kvc_rpc_server_port(const struct kvc_rpc_server *s) { return 0; }
void kvc_rpc_server_free(struct kvc_rpc_server *s) { }
int kvc_rpc_client_new_tcp(struct event_base *b, const char *h, uint16_t p, const struct kvc_rpc_tls *t,
                           const struct kvc_rpc_opts *o, struct kvc_rpc_client **out)
{ kvc_err("RPC transport not implemented yet"); *out = NULL; return -ENOSYS; }
int kvc_rpc_client_new_unix(struct event_base *b, const char *p, const struct kvc_rpc_opts *o, struct kvc_rpc_client **out)
{ kvc_err("RPC transport not implemented yet"); *out = NULL; return -ENOSYS; }
int kvc_rpc_client_call(struct kvc_rpc_client *c, uint32_t m, const ProtobufCMessage *r,
                        const ProtobufCMessageDescriptor *t, unsigned to, kvc_rpc_reply_fn cb, void *a) { return -ENOSYS; }
int kvc_rpc_client_send(struct kvc_rpc_client *c, uint32_t m, const ProtobufCMessage *r) { return -ENOSYS; }
struct kvc_rpc_conn *kvc_rpc_client_conn(const struct kvc_rpc_client *c) { return NULL; }
const char *kvc_rpc_client_last_error(const struct kvc_rpc_client *c) { return "not implemented"; }
void kvc_rpc_client_free(struct kvc_rpc_client *c) { }
int kvc_rpc_call_sync(struct kvc_rpc_client *c, uint32_t m, const ProtobufCMessage *r,
                      const ProtobufCMessageDescriptor *t, unsigned to, ProtobufCMessage **resp, char **err)
{ if (err) *err = NULL; return KVC_RPC_E_NOT_IMPLEMENTED; }
