/* kvcli's REST client: libcurl over HTTPS, session login in the Automation
 * API way, and certificate pinning by SHA-256 thumbprint.
 *
 * Trust works like adding a host to vCenter: the server's certificate is not
 * checked against a CA; its SHA-256 thumbprint (of the DER certificate,
 * "AB:CD:...") must equal the one the user gave or accepted before.  The
 * thumbprint is checked on a first connection that sends nothing, and from
 * then on every connection is pinned to that certificate's public key, so no
 * request (and no password) ever goes to another server.
 *
 * Login: POST /api/session with HTTP Basic; the reply is the token (a JSON
 * string), sent afterwards as "vmware-api-session-id".  With a session file
 * the token is reused across runs and replaced when the server refuses it.
 * Errors: 0 or -errno, with a message in ERR.
 */
#ifndef KVC_CLI_REST_H
#define KVC_CLI_REST_H

#include <jansson.h>
#include <stddef.h>

struct kvc_rest_opts {
    const char *server;         /* "https://host:port" */
    const char *user;
    const char *password;
    const char *session_file;   /* NULL: no reuse across runs */
    const char *thumbprint;     /* required: the pinned certificate */
    long timeout_ms;            /* 0: 30 s */
};

struct kvc_rest;

/* Connects, checks the thumbprint, and pins the key.  -EPERM with the real
 * thumbprint in ERR if it does not match. */
int kvc_rest_open(struct kvc_rest **, const struct kvc_rest_opts *,
                  char *err, size_t errlen);
void kvc_rest_close(struct kvc_rest *);

/* METHOD PATH with an optional JSON BODY.  Logs in first when there is no
 * session (or the server says 401 to the current one).  On success *STATUS
 * is the HTTP status and *REPLY the decoded body (NULL if empty); a 4xx/5xx
 * reply is success here: the caller decides.  -errno on transport errors. */
int kvc_rest_call(struct kvc_rest *, const char *method, const char *path,
                  const json_t *body, long *status, json_t **reply,
                  char *err, size_t errlen);

/* The SHA-256 thumbprint of SERVER's certificate ("AB:CD:..."), without
 * trusting it: for "unknown server, trust it?".  OUT needs 96 bytes. */
int kvc_rest_fetch_thumbprint(const char *server, long timeout_ms, char *out,
                              size_t outlen, char *err, size_t errlen);

/* Normalises a thumbprint typed by a user ("ab:cd..", "abcd..") to
 * "AB:CD:..."; -EINVAL unless it is 32 bytes of hex. */
int kvc_thumbprint_normalise(const char *in, char *out, size_t outlen);

#endif
