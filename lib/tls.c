/* TLS identities: not implemented yet (clear errors until it lands). */
#include <errno.h>
#include <string.h>

#include "tls.h"

int kvc_tls_ensure_identity(const char *d, const char *cn, struct kvc_tls_identity **out) { *out = NULL; return -ENOSYS; }
int kvc_tls_identity_load(const char *c, const char *k, struct kvc_tls_identity **out) { *out = NULL; return -ENOSYS; }
const char *kvc_tls_identity_thumbprint(const struct kvc_tls_identity *id) { return ""; }
void kvc_tls_identity_free(struct kvc_tls_identity *id) { }
int kvc_tls_thumbprint_file(const char *f, char out[KVC_TLS_THUMBPRINT_SIZE]) { out[0] = 0; return -ENOSYS; }
void kvc_tls_thumbprint_der(const void *d, size_t l, char out[KVC_TLS_THUMBPRINT_SIZE]) { out[0] = 0; }
bool kvc_tls_thumbprint_equal(const char *a, const char *b) { return false; }
