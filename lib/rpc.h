/* The kvcenter RPC transport: protobuf messages in length-checked frames over
 * TLS-on-TCP (certificates pinned by thumbprint) or unix sockets (peer known
 * by SO_PEERCRED), driven by the daemon's libevent loop.
 *
 * A connection is symmetric: once it is up, either end may call methods the
 * other end serves and send it one-way messages (heartbeats, events).  A
 * "server" and a "client" differ only in who dials; both take a method table.
 *
 * Serving (see docs/development.md, "Using the RPC transport"):
 *
 *     static void on_ping(struct kvc_rpc_call *call, const ProtobufCMessage *req,
 *                         void *arg)
 *     {
 *         const Kvc__Rpc__Ping *p = (const Kvc__Rpc__Ping *)req;
 *         kvc_rpc_reply(call, &p->base);     // now, or later from another event
 *     }
 *     static const struct kvc_rpc_method methods[] = {
 *         { .id = 0x2001, .name = "Echo", .handler = on_ping,
 *           .request = &kvc__rpc__ping__descriptor,
 *           .response = &kvc__rpc__ping__descriptor },
 *     };
 *     struct kvc_rpc_opts o = { .methods = methods,
 *                               .n_methods = KVC_ARRAY_SIZE(methods) };
 *     kvc_rpc_server_new(base, &o, &srv);
 *     kvc_rpc_server_listen_unix(srv, "/run/kvcenter/vmkd.sock");
 *
 * Calling:
 *
 *     kvc_rpc_client_new_unix(base, path, &o, &cl);
 *     kvc_rpc_client_call(cl, 0x2001, &ping.base, &kvc__rpc__ping__descriptor,
 *                         5000, on_reply, ctx);
 *
 * Conventions.  Functions that return int return 0 on success or a negative
 * errno value, except the synchronous call, which returns a status code
 * (enum kvc_rpc_status).  Destroy functions accept NULL.  Nothing here is
 * thread-safe: use one event_base per daemon and call everything from its
 * loop thread.
 */
#ifndef KVC_RPC_H
#define KVC_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <protobuf-c/protobuf-c.h>

#include "tls.h"

struct event_base;

#ifndef KVC_ARRAY_SIZE
#define KVC_ARRAY_SIZE(A) (sizeof(A) / sizeof((A)[0]))
#endif

/* ---- Wire format ------------------------------------------------------
 *
 * Every frame is a 24-byte header followed by LENGTH bytes of protobuf
 * payload.  All integers are big-endian.
 *
 *   offset size field
 *        0    4 magic       0x4B564352 ("KVCR")
 *        4    1 version     1
 *        5    1 flags       KVC_RPC_FLAG_*; unknown bits are an error
 *        6    2 reserved    0
 *        8    4 method      method id (see "Method ids" below)
 *       12    8 request id  chosen by the caller, echoed in the response;
 *                           0 for one-way messages
 *       20    4 length      payload bytes, checked against the receiver's
 *                           max_frame before anything is allocated
 *
 * A request has no RESPONSE flag; its payload is the method's request type.
 * A response has RESPONSE; its payload is the method's response type, or,
 * with RESPONSE|ERROR, a kvc.rpc.Error (proto/rpc.proto).  A one-way message
 * has ONEWAY and is never answered, not even with an error.
 */
#define KVC_RPC_MAGIC               0x4B564352u
#define KVC_RPC_VERSION             1
#define KVC_RPC_HEADER_SIZE         24
#define KVC_RPC_DEFAULT_MAX_FRAME   (16u * 1024 * 1024)

#define KVC_RPC_FLAG_RESPONSE       0x01
#define KVC_RPC_FLAG_ERROR          0x02
#define KVC_RPC_FLAG_ONEWAY         0x04
#define KVC_RPC_FLAGS_KNOWN         0x07

struct kvc_rpc_header {
    uint8_t flags;
    uint32_t method;
    uint64_t request_id;
    uint32_t length;
};

/* Decodes the header at the start of BUF.  Returns 0, -EAGAIN if LEN is less
 * than KVC_RPC_HEADER_SIZE, -EBADMSG for a wrong magic, version, reserved
 * field or flag combination, -EMSGSIZE if the payload exceeds MAX_PAYLOAD
 * (OUT is still filled in, so the request id can be answered). */
int kvc_rpc_header_decode(const void *buf, size_t len, uint32_t max_payload,
                          struct kvc_rpc_header *out);
void kvc_rpc_header_encode(const struct kvc_rpc_header *,
                           uint8_t out[KVC_RPC_HEADER_SIZE]);

/* ---- Method ids ---------------------------------------------------------
 *
 * 32-bit numbers, unique across kvcenter, defined next to their messages in
 * proto/ (as an enum) and listed in docs/development.md:
 *   0x0000-0x00ff  the transport itself (below)
 *   0x1000-0x1fff  vpxd            0x2000-0x2fff  hostd
 *   0x3000-0x3fff  vmkd            0x4000-0x4fff  vmx
 *   0x5000-0x5fff  migration       0x6000-0xffff  free, claim a range in docs
 */
/* Answered by every endpoint with the request it got (kvc.rpc.Ping), without
 * a table entry: liveness checks and tests. */
#define KVC_RPC_METHOD_PING         0x0001
/* 0x0002 (HELLO) is sent one-way, empty, by the accepting side once it has
 * accepted the peer (after TLS pinning); the dialing side counts the
 * connection as up only then, so a refused certificate is a failed connect,
 * never a connection that drops at once.  Tables may not use it. */

/* ---- Status codes ------------------------------------------------------
 * Carried in kvc.rpc.Error.code and given to reply callbacks.  Codes from
 * KVC_RPC_E_APP up are free for applications. */
enum kvc_rpc_status {
    KVC_RPC_OK = 0,
    KVC_RPC_E_UNKNOWN_METHOD = 1,   /* no handler for this method id */
    KVC_RPC_E_BAD_REQUEST = 2,      /* malformed frame or undecodable payload */
    KVC_RPC_E_TOO_LARGE = 3,        /* frame longer than the receiver's limit */
    KVC_RPC_E_TIMEOUT = 4,          /* no reply before the call's deadline */
    KVC_RPC_E_DISCONNECTED = 5,     /* connection lost while the call was out */
    KVC_RPC_E_UNAVAILABLE = 6,      /* could not connect (the message says why,
                                       e.g. a thumbprint mismatch) */
    KVC_RPC_E_PERMISSION = 7,       /* the peer is not allowed to do this */
    KVC_RPC_E_NOT_FOUND = 8,
    KVC_RPC_E_INVALID_ARGUMENT = 9,
    KVC_RPC_E_CONFLICT = 10,        /* wrong state for this request */
    KVC_RPC_E_INTERNAL = 11,
    KVC_RPC_E_NOT_IMPLEMENTED = 12,
    KVC_RPC_E_CANCELLED = 13,       /* the local endpoint was shut down */
    KVC_RPC_E_APP = 1000,
};

/* "UNKNOWN_METHOD", ...; "APP_<n>" style names are not generated: codes at
 * or above KVC_RPC_E_APP return "APPLICATION". */
const char *kvc_rpc_status_name(int status);

/* ---- Serving -------------------------------------------------------------*/
struct kvc_rpc_call;                /* one incoming request, until answered */
struct kvc_rpc_conn;                /* one connection, either direction */
struct kvc_rpc_server;
struct kvc_rpc_client;

/* Handles one incoming request or one-way message.  REQUEST is the decoded
 * payload (NULL if the method's request type is NULL); it stays valid until
 * the call is finished.  The handler owns CALL and must finish it exactly
 * once, now or later, with kvc_rpc_reply() or kvc_rpc_reply_error(); for a
 * one-way message finishing only frees the call. */
typedef void (*kvc_rpc_handler_fn)(struct kvc_rpc_call *call,
                                   const ProtobufCMessage *request, void *arg);

struct kvc_rpc_method {
    uint32_t id;
    const char *name;                               /* for log lines */
    const ProtobufCMessageDescriptor *request;      /* NULL: empty payload */
    const ProtobufCMessageDescriptor *response;     /* NULL: empty payload */
    kvc_rpc_handler_fn handler;
};

/* Sends the response and frees CALL.  RESPONSE may be NULL (empty payload)
 * and must otherwise be of the method's response type.  The caller keeps
 * ownership of RESPONSE.  If the connection has gone the reply is dropped
 * and -ENOTCONN returned; CALL is freed either way. */
int kvc_rpc_reply(struct kvc_rpc_call *call, const ProtobufCMessage *response);

/* Sends an error reply (kvc.rpc.Error) and frees CALL.  STATUS should not
 * be KVC_RPC_OK.  Same return values as kvc_rpc_reply(). */
int kvc_rpc_reply_error(struct kvc_rpc_call *call, int status,
                        const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

uint32_t kvc_rpc_call_method(const struct kvc_rpc_call *);
bool kvc_rpc_call_is_oneway(const struct kvc_rpc_call *);
/* The connection the call came on, or NULL once it has closed. */
struct kvc_rpc_conn *kvc_rpc_call_conn(const struct kvc_rpc_call *);
/* Peer credentials of a unix-socket call (SO_PEERCRED, taken at connect
 * time).  Any pointer may be NULL.  -ENOTSUP on TCP, -ENOTCONN if the
 * connection has closed. */
int kvc_rpc_call_peer_cred(const struct kvc_rpc_call *, uid_t *uid,
                           pid_t *pid, gid_t *gid);

/* ---- Connections ------------------------------------------------------
 * A struct kvc_rpc_conn * (from on_connect, kvc_rpc_call_conn() or
 * kvc_rpc_client_conn()) is valid until on_disconnect for it returns. */

/* Called once per call: STATUS is KVC_RPC_OK and RESPONSE the decoded reply
 * (NULL if the call passed no response type), or STATUS is an error and
 * ERROR says why (never NULL; "" on success).  RESPONSE is freed when the
 * callback returns. */
typedef void (*kvc_rpc_reply_fn)(int status, const char *error,
                                 const ProtobufCMessage *response, void *arg);

/* Calls METHOD on the peer.  REQUEST may be NULL (empty payload); it is
 * serialised before this returns.  TIMEOUT_MS 0 means no deadline.  Returns
 * 0 and then calls CB exactly once (never from inside this function), or
 * returns -ENOTCONN / -EMSGSIZE / -ENOMEM and never calls CB. */
int kvc_rpc_conn_call(struct kvc_rpc_conn *, uint32_t method,
                      const ProtobufCMessage *request,
                      const ProtobufCMessageDescriptor *response_type,
                      unsigned timeout_ms, kvc_rpc_reply_fn cb, void *arg);

/* Sends a one-way message.  Returns 0, -ENOTCONN, -EMSGSIZE or -ENOMEM. */
int kvc_rpc_conn_send(struct kvc_rpc_conn *, uint32_t method,
                      const ProtobufCMessage *message);

/* Closes the connection (for a client: the current one; it reconnects if so
 * configured).  Calls still out fail with KVC_RPC_E_DISCONNECTED. */
void kvc_rpc_conn_close(struct kvc_rpc_conn *);

/* Same as kvc_rpc_call_peer_cred(). */
int kvc_rpc_conn_peer_cred(const struct kvc_rpc_conn *, uid_t *uid,
                           pid_t *pid, gid_t *gid);
/* The peer certificate's thumbprint on TLS, NULL on unix sockets. */
const char *kvc_rpc_conn_peer_thumbprint(const struct kvc_rpc_conn *);
/* "127.0.0.1:5410" or "unix:pid=123,uid=0", for log lines. */
const char *kvc_rpc_conn_peer_name(const struct kvc_rpc_conn *);
/* One pointer of the application's per-connection state. */
void kvc_rpc_conn_set_data(struct kvc_rpc_conn *, void *);
void *kvc_rpc_conn_get_data(const struct kvc_rpc_conn *);

/* ---- Endpoints ---------------------------------------------------------*/

/* Decides whether a TLS peer may connect: return true to accept.  THUMBPRINT
 * is the peer certificate's, in the canonical form. */
typedef bool (*kvc_rpc_verify_fn)(const char *thumbprint, void *arg);

struct kvc_rpc_tls {
    /* Our own key and certificate (copied; may be freed afterwards). */
    const struct kvc_tls_identity *identity;
    /* The peer we accept: if VERIFY is set it decides, otherwise the peer's
     * thumbprint must equal PEER_THUMBPRINT.  With neither, every peer is
     * refused -- and the error names the thumbprint it presented, so a user
     * can check it and retry with it (vCenter's "add host" flow). */
    const char *peer_thumbprint;
    kvc_rpc_verify_fn verify;
    void *verify_arg;
};

struct kvc_rpc_opts {
    /* Methods this end serves (sorted internally; duplicate ids: -EINVAL).
     * The table must outlive the endpoint.  Other method ids get a
     * KVC_RPC_E_UNKNOWN_METHOD error reply and a log line. */
    const struct kvc_rpc_method *methods;
    size_t n_methods;
    void *handler_arg;

    /* Largest payload accepted; 0: KVC_RPC_DEFAULT_MAX_FRAME. */
    uint32_t max_frame;

    /* A connection is up (after the TLS handshake and pinning) / has gone.
     * REASON is a short text ("peer closed", "frame too large", ...). */
    void (*on_connect)(struct kvc_rpc_conn *, void *cb_arg);
    void (*on_disconnect)(struct kvc_rpc_conn *, const char *reason,
                          void *cb_arg);
    void *cb_arg;

    /* Client only.  Reconnect after a failure or disconnect, waiting
     * backoff_initial_ms (default 100), doubling up to backoff_max_ms
     * (default 10000); a successful connect resets the wait.  Without
     * RECONNECT a failed connect fails the calls waiting for it with
     * KVC_RPC_E_UNAVAILABLE and the client stays down. */
    bool reconnect;
    unsigned backoff_initial_ms;
    unsigned backoff_max_ms;
    /* Deadline of one connect attempt including the TLS handshake;
     * 0: 10000. */
    unsigned connect_timeout_ms;
};

/* A listening endpoint.  OPTS is copied. */
int kvc_rpc_server_new(struct event_base *, const struct kvc_rpc_opts *opts,
                       struct kvc_rpc_server **out);
/* Listens on a unix socket at PATH (a stale socket file there is replaced).
 * Peers are identified by SO_PEERCRED; file permissions decide who may
 * connect. */
int kvc_rpc_server_listen_unix(struct kvc_rpc_server *, const char *path);
/* Listens on ADDR:PORT (PORT 0: any free port, see kvc_rpc_server_port())
 * with mutual TLS.  TLS is copied. */
int kvc_rpc_server_listen_tcp(struct kvc_rpc_server *, const char *addr,
                              uint16_t port, const struct kvc_rpc_tls *tls);
/* The port of the last TCP listener, 0 if none. */
uint16_t kvc_rpc_server_port(const struct kvc_rpc_server *);
/* Closes listeners and connections; calls still out fail with
 * KVC_RPC_E_CANCELLED (callbacks run before this returns). */
void kvc_rpc_server_free(struct kvc_rpc_server *);

/* A dialing endpoint; starts connecting at once.  Calls made while it is
 * connecting wait (with their deadlines running) and go out once it is up.
 * HOST is resolved with getaddrinfo() at each attempt, which blocks the
 * loop while a DNS server answers: daemons should pass addresses. */
int kvc_rpc_client_new_tcp(struct event_base *, const char *host,
                           uint16_t port, const struct kvc_rpc_tls *tls,
                           const struct kvc_rpc_opts *opts,
                           struct kvc_rpc_client **out);
int kvc_rpc_client_new_unix(struct event_base *, const char *path,
                            const struct kvc_rpc_opts *opts,
                            struct kvc_rpc_client **out);
/* Like kvc_rpc_conn_call() on the current connection, but a call made while
 * (re)connecting waits for the connection instead of failing. */
int kvc_rpc_client_call(struct kvc_rpc_client *, uint32_t method,
                        const ProtobufCMessage *request,
                        const ProtobufCMessageDescriptor *response_type,
                        unsigned timeout_ms, kvc_rpc_reply_fn cb, void *arg);
/* One-way message on the current connection; -ENOTCONN while down. */
int kvc_rpc_client_send(struct kvc_rpc_client *, uint32_t method,
                        const ProtobufCMessage *message);
/* The current connection, NULL while down. */
struct kvc_rpc_conn *kvc_rpc_client_conn(const struct kvc_rpc_client *);
/* Why the last connect attempt or connection failed ("" if none). */
const char *kvc_rpc_client_last_error(const struct kvc_rpc_client *);
/* Closes the client; calls still out fail with KVC_RPC_E_CANCELLED
 * (callbacks run before this returns). */
void kvc_rpc_client_free(struct kvc_rpc_client *);

/* For tools and tests: runs the client's event_base until the reply or the
 * deadline.  From inside that loop (a handler or callback) it fails at once
 * with KVC_RPC_E_INTERNAL: libevent loops do not nest.  Returns the status; on
 * KVC_RPC_OK *RESPONSE (if RESPONSE is not NULL) is the reply, to free with
 * protobuf_c_message_free_unpacked(*response, NULL); otherwise *ERROR (if
 * ERROR is not NULL) is a malloc'ed message to free(). */
int kvc_rpc_call_sync(struct kvc_rpc_client *, uint32_t method,
                      const ProtobufCMessage *request,
                      const ProtobufCMessageDescriptor *response_type,
                      unsigned timeout_ms, ProtobufCMessage **response,
                      char **error);

#endif
