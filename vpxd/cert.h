/* vpxd's TLS identity: a private key and self-signed certificate in its
 * state directory (rpc.key / rpc.crt, the names lib/tls.h uses), created on
 * first start and used both for HTTPS and towards hosts.
 * Errors: 0 or -errno. */
#ifndef VPXD_CERT_H
#define VPXD_CERT_H

#include <stddef.h>

/* Loads DIR/rpc.crt and DIR/rpc.key, creating both if neither exists.
 * *CERT_PEM and *KEY_PEM are malloc'd; THUMB gets "AB:CD:..." (96 bytes). */
int vpxd_cert_ensure(const char *dir, const char *common_name, char **cert_pem,
                     char **key_pem, char thumb[96]);

#endif
