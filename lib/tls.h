/* TLS identities and certificate thumbprints for the RPC transport.
 *
 * Every daemon that speaks RPC over TCP has one identity: a private key and a
 * self-signed certificate kept in its state directory.  Peers do not trust a
 * CA; each side pins the other's certificate by its SHA-256 thumbprint, the
 * way vCenter pins an ESXi host: uppercase hex pairs separated by ':', e.g.
 *     "3F:A9:...:0C"            (32 pairs, KVC_TLS_THUMBPRINT_LEN characters)
 * Comparisons ignore case and separators, so a user may paste "3fa9...0c".
 *
 * Errors: functions return 0 on success or a negative errno value.
 */
#ifndef KVC_TLS_H
#define KVC_TLS_H

#include <stdbool.h>
#include <stddef.h>

#define KVC_TLS_THUMBPRINT_LEN  95              /* 32 * "XX" + 31 * ":" */
#define KVC_TLS_THUMBPRINT_SIZE (KVC_TLS_THUMBPRINT_LEN + 1)

/* File names inside a state directory. */
#define KVC_TLS_CERT_FILE "rpc.crt"
#define KVC_TLS_KEY_FILE  "rpc.key"

struct kvc_tls_identity;

/* Loads DIR/rpc.crt and DIR/rpc.key; on a daemon's first start (neither file
 * exists) creates DIR if needed, then an ECDSA P-256 key (mode 0600) and a
 * self-signed certificate for COMMON_NAME valid for 10 years.  A directory
 * holding only one of the two files is an error (-EEXIST), never silently
 * overwritten.  On success *OUT is the loaded identity. */
int kvc_tls_ensure_identity(const char *dir, const char *common_name,
                            struct kvc_tls_identity **out);

/* Loads an existing PEM certificate and key. */
int kvc_tls_identity_load(const char *cert_file, const char *key_file,
                          struct kvc_tls_identity **out);

/* The identity's own certificate thumbprint (valid while the identity is). */
const char *kvc_tls_identity_thumbprint(const struct kvc_tls_identity *);

void kvc_tls_identity_free(struct kvc_tls_identity *);

/* Thumbprint of the first certificate in a PEM (or DER) file, e.g. for vpxd
 * to show a host's thumbprint to the user.  OUT gets KVC_TLS_THUMBPRINT_SIZE
 * bytes. */
int kvc_tls_thumbprint_file(const char *cert_file, char out[KVC_TLS_THUMBPRINT_SIZE]);

/* Thumbprint of a DER-encoded certificate. */
void kvc_tls_thumbprint_der(const void *der, size_t len,
                            char out[KVC_TLS_THUMBPRINT_SIZE]);

/* True if A and B name the same SHA-256 digest (case and ':' ignored).
 * False if either is NULL or not 32 hex pairs. */
bool kvc_tls_thumbprint_equal(const char *a, const char *b);

#endif
