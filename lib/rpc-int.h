/* Internals of the RPC transport shared by lib/rpc*.c and its tests.  Not an
 * API for daemons: use rpc.h. */
#ifndef KVC_RPC_INT_H
#define KVC_RPC_INT_H

#include <stdbool.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <gnutls/gnutls.h>

#include "rpc.h"

/* Sent one-way by the accepting side once it has accepted a connection
 * (after TLS and pinning); the dialing side treats the connection as up only
 * when it arrives, so a refused certificate never looks like a connection. */
#define KVC_RPC_METHOD_HELLO 0x0002

/* What servers and clients share; embedded first in both. */
struct kvc_rpc_ep {
    int refs;
    bool dead;
    bool is_client;
    struct event_base *base;
    struct kvc_rpc_opts opts;
    struct kvc_rpc_method *methods;     /* sorted by id */
    size_t n_methods;
    uint32_t max_frame;
    /* The owner's hook when one of its connections closes. */
    void (*conn_closed)(struct kvc_rpc_ep *, struct kvc_rpc_conn *,
                        const char *reason, bool was_up);
    /* Client: the connection became usable. */
    void (*conn_up)(struct kvc_rpc_ep *, struct kvc_rpc_conn *);
    void (*destroy)(struct kvc_rpc_ep *);
};

struct kvc_rpc_tlsctx {
    gnutls_certificate_credentials_t cred;
    char *peer_thumbprint;
    kvc_rpc_verify_fn verify;
    void *verify_arg;
    char thumbprint[KVC_TLS_THUMBPRINT_SIZE];   /* our own */
};

int kvc_rpc_ep_init(struct kvc_rpc_ep *, struct event_base *,
                    const struct kvc_rpc_opts *);
void kvc_rpc_ep_ref(struct kvc_rpc_ep *);
void kvc_rpc_ep_unref(struct kvc_rpc_ep *);

int kvc_rpc_tlsctx_new(const struct kvc_rpc_tls *, struct kvc_rpc_tlsctx **);
void kvc_rpc_tlsctx_free(struct kvc_rpc_tlsctx *);
int kvc_tls__set_credentials(const struct kvc_tls_identity *,
                             gnutls_certificate_credentials_t);

/* A connection on FD (takes ownership of it whether successful or not).
 * DIALING: we connected (CONNECTING state until the socket is writable).
 * TLS NULL: unix socket.  The owner holds the returned reference. */
struct kvc_rpc_conn *kvc_rpc_conn_new(struct kvc_rpc_ep *, int fd, bool dialing,
                                      struct kvc_rpc_tlsctx *tls,
                                      const struct sockaddr *peer, socklen_t peerlen);
/* Starts I/O once the owner has recorded the connection (may call
 * on_connect before returning). */
void kvc_rpc_conn_start(struct kvc_rpc_conn *);
void kvc_rpc_conn_unref(struct kvc_rpc_conn *);
/* Closes with REASON (for logs and on_disconnect); idempotent. */
void kvc_rpc_conn_abort(struct kvc_rpc_conn *, const char *reason);
/* Sends a request with an already packed payload (client queue flush). */
struct kvc_rpc_out_call;
int kvc_rpc_conn_start_call(struct kvc_rpc_conn *, struct kvc_rpc_out_call *);

/* Outgoing calls: created by kvc_rpc_conn_call / kvc_rpc_client_call. */
struct kvc_rpc_out_call {
    uint64_t id;
    uint32_t method;
    const ProtobufCMessageDescriptor *rtype;
    kvc_rpc_reply_fn cb;
    void *arg;
    unsigned timeout_ms;
    struct event *timer;
    struct kvc_rpc_conn *conn;          /* in its table, or NULL */
    struct kvc_rpc_client *client;      /* waiting in its queue, or NULL */
    struct kvc_rpc_out_call *next;      /* hash chain or queue */
    struct kvc_rpc_out_call *prev;      /* queue only */
    uint8_t *payload;                   /* while queued */
    size_t len;
    ProtobufCMessage **keep;            /* sync call: keep the response */
    int fail_status;                    /* deferred failure, or 0 */
    char *fail_msg;
};

struct kvc_rpc_out_call *kvc_rpc_out_call_new(struct event_base *, uint32_t method,
        const ProtobufCMessage *req, const ProtobufCMessageDescriptor *rtype,
        unsigned timeout_ms, kvc_rpc_reply_fn cb, void *arg, uint32_t max_frame,
        int *err);
/* Runs the callback with STATUS and frees the call (not in any list). */
void kvc_rpc_out_call_finish(struct kvc_rpc_out_call *, int status,
                             const char *msg, ProtobufCMessage *resp);
void kvc_rpc_client__timeout(struct kvc_rpc_client *, struct kvc_rpc_out_call *);

/* Test hooks: a connection without a socket.  Bytes fed are processed as if
 * received (as the accepting side, already up); what it sends collects in
 * its output buffer.  Used by the fuzz target and unit tests. */
int kvc_rpc_test_conn_new(struct event_base *, const struct kvc_rpc_opts *,
                          struct kvc_rpc_conn **out);
/* Returns false once the connection has closed itself (malformed input). */
bool kvc_rpc_test_conn_feed(struct kvc_rpc_conn *, const void *data, size_t len);
struct evbuffer *kvc_rpc_test_conn_output(struct kvc_rpc_conn *);
void kvc_rpc_test_conn_free(struct kvc_rpc_conn *);

#endif
