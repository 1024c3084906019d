/* TLS identities (key + self-signed certificate) and SHA-256 thumbprints. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include "log.h"
#include "tls.h"
#include "rpc-int.h"

KVC_LOG_MODULE(tls);

struct kvc_tls_identity {
    gnutls_datum_t cert_pem;
    gnutls_datum_t key_pem;
    char thumbprint[KVC_TLS_THUMBPRINT_SIZE];
};

/* GnuTLS error codes are negative but not errnos; keep the log precise and
 * hand callers one errno. */
static int
gnutls_fail(const char *what, const char *path, int r)
{
    kvc_err("%s %s: %s", what, path ? path : "", gnutls_strerror(r));
    return r == GNUTLS_E_MEMORY_ERROR ? -ENOMEM : -EINVAL;
}

void
kvc_tls_thumbprint_der(const void *der, size_t len, char out[KVC_TLS_THUMBPRINT_SIZE])
{
    static const char hex[] = "0123456789ABCDEF";
    unsigned char d[32];
    size_t i;

    if (gnutls_hash_fast(GNUTLS_DIG_SHA256, der, len, d) < 0) {
        out[0] = 0;
        return;
    }
    for (i = 0; i < 32; i++) {
        out[i * 3] = hex[d[i] >> 4];
        out[i * 3 + 1] = hex[d[i] & 15];
        out[i * 3 + 2] = i == 31 ? 0 : ':';
    }
}

/* Extracts the 64 hex digits of a thumbprint, upper-cased; false if it is
 * not exactly 32 hex pairs (':' and spaces allowed between digits). */
static bool
thumbprint_digits(const char *s, char d[65])
{
    size_t n = 0;

    if (!s)
        return false;
    for (; *s; s++) {
        char ch = *s;
        if (ch == ':' || ch == ' ')
            continue;
        if (ch >= 'a' && ch <= 'f')
            ch -= 'a' - 'A';
        if (!((ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'F')) || n == 64)
            return false;
        d[n++] = ch;
    }
    d[n] = 0;
    return n == 64;
}

bool
kvc_tls_thumbprint_equal(const char *a, const char *b)
{
    char da[65], db[65];

    return thumbprint_digits(a, da) && thumbprint_digits(b, db) && !strcmp(da, db);
}

static int
read_file(const char *path, gnutls_datum_t *out)
{
    int r = gnutls_load_file(path, out);

    if (r < 0) {
        int e = errno ? errno : EIO;
        if (access(path, R_OK) < 0)
            e = errno;
        kvc_err("cannot read %s: %s", path, strerror(e));
        return -e;
    }
    return 0;
}

static int
cert_thumbprint(const gnutls_datum_t *data, const char *path, char out[KVC_TLS_THUMBPRINT_SIZE])
{
    gnutls_x509_crt_t crt;
    gnutls_datum_t der = { NULL, 0 };
    int r;

    if ((r = gnutls_x509_crt_init(&crt)) < 0)
        return gnutls_fail("certificate init", path, r);
    r = gnutls_x509_crt_import(crt, data, GNUTLS_X509_FMT_PEM);
    if (r < 0)
        r = gnutls_x509_crt_import(crt, data, GNUTLS_X509_FMT_DER);
    if (r >= 0)
        r = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &der);
    gnutls_x509_crt_deinit(crt);
    if (r < 0)
        return gnutls_fail("not a certificate:", path, r);
    kvc_tls_thumbprint_der(der.data, der.size, out);
    gnutls_free(der.data);
    return 0;
}

int
kvc_tls_thumbprint_file(const char *cert_file, char out[KVC_TLS_THUMBPRINT_SIZE])
{
    gnutls_datum_t data;
    int r;

    out[0] = 0;
    if ((r = read_file(cert_file, &data)) < 0)
        return r;
    r = cert_thumbprint(&data, cert_file, out);
    gnutls_free(data.data);
    return r;
}

int
kvc_tls_identity_load(const char *cert_file, const char *key_file,
                      struct kvc_tls_identity **out)
{
    struct kvc_tls_identity *id;
    gnutls_certificate_credentials_t cred = NULL;
    int r;

    *out = NULL;
    if (!(id = calloc(1, sizeof *id)))
        return -ENOMEM;
    if ((r = read_file(cert_file, &id->cert_pem)) < 0
        || (r = read_file(key_file, &id->key_pem)) < 0
        || (r = cert_thumbprint(&id->cert_pem, cert_file, id->thumbprint)) < 0)
        goto out;
    /* Check now that key and certificate belong together, not at the first
     * connection. */
    if ((r = gnutls_certificate_allocate_credentials(&cred)) < 0) {
        r = gnutls_fail("credentials", NULL, r);
        goto out;
    }
    r = gnutls_certificate_set_x509_key_mem2(cred, &id->cert_pem, &id->key_pem,
                                             GNUTLS_X509_FMT_PEM, NULL, 0);
    gnutls_certificate_free_credentials(cred);
    if (r < 0) {
        r = gnutls_fail("key and certificate do not load:", key_file, r);
        goto out;
    }
    *out = id;
    id = NULL;
    r = 0;
out:
    kvc_tls_identity_free(id);
    return r;
}

const char *
kvc_tls_identity_thumbprint(const struct kvc_tls_identity *id)
{
    return id->thumbprint;
}

void
kvc_tls_identity_free(struct kvc_tls_identity *id)
{
    if (!id)
        return;
    gnutls_free(id->cert_pem.data);
    if (id->key_pem.data) {
        gnutls_memset(id->key_pem.data, 0, id->key_pem.size);
        gnutls_free(id->key_pem.data);
    }
    free(id);
}

int
kvc_tls__set_credentials(const struct kvc_tls_identity *id,
                         gnutls_certificate_credentials_t cred)
{
    int r = gnutls_certificate_set_x509_key_mem2(cred, &id->cert_pem, &id->key_pem,
                                                 GNUTLS_X509_FMT_PEM, NULL, 0);
    return r < 0 ? gnutls_fail("load identity", NULL, r) : 0;
}

/* Writes DATA to PATH atomically (temporary file + rename) with MODE. */
static int
write_file(const char *path, const gnutls_datum_t *data, mode_t mode)
{
    char tmp[4096];
    int fd, r = 0;

    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return -ENAMETOOLONG;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -errno;
    if (write(fd, data->data, data->size) != (ssize_t)data->size || fsync(fd) < 0)
        r = errno ? -errno : -EIO;
    if (close(fd) < 0 && !r)
        r = -errno;
    if (!r && rename(tmp, path) < 0)
        r = -errno;
    if (r)
        unlink(tmp);
    return r;
}

static int
mkdir_p(const char *dir)
{
    char buf[4096];
    size_t i, n = strlen(dir);

    if (n == 0 || n >= sizeof buf)
        return -EINVAL;
    memcpy(buf, dir, n + 1);
    for (i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != 0)
            continue;
        buf[i] = 0;
        if (mkdir(buf, 0700) < 0 && errno != EEXIST)
            return -errno;
        buf[i] = i == n ? 0 : '/';
    }
    return 0;
}

static int
create_identity(const char *cert_file, const char *key_file, const char *cn)
{
    gnutls_x509_privkey_t key = NULL;
    gnutls_x509_crt_t crt = NULL;
    gnutls_datum_t key_pem = { NULL, 0 }, crt_pem = { NULL, 0 };
    unsigned char serial[16];
    time_t now = time(NULL);
    int r;

    if ((r = gnutls_x509_privkey_init(&key)) < 0
        || (r = gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
                    GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0)) < 0
        || (r = gnutls_x509_crt_init(&crt)) < 0
        || (r = gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof serial)) < 0)
        goto gnutls_err;
    serial[0] &= 0x7f;                  /* a positive serial */
    serial[0] |= 0x01;
    if ((r = gnutls_x509_crt_set_version(crt, 3)) < 0
        || (r = gnutls_x509_crt_set_serial(crt, serial, sizeof serial)) < 0
        || (r = gnutls_x509_crt_set_activation_time(crt, now - 3600)) < 0
        || (r = gnutls_x509_crt_set_expiration_time(crt, now + 10L * 365 * 86400)) < 0
        || (r = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0,
                                              cn, strlen(cn))) < 0
        || (r = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, cn,
                                                     strlen(cn), GNUTLS_FSAN_SET)) < 0
        || (r = gnutls_x509_crt_set_key(crt, key)) < 0
        || (r = gnutls_x509_crt_set_basic_constraints(crt, 0, -1)) < 0
        || (r = gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE)) < 0
        || (r = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0)) < 0
        || (r = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_CLIENT, 0)) < 0
        || (r = gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0)) < 0
        || (r = gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &key_pem)) < 0
        || (r = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &crt_pem)) < 0)
        goto gnutls_err;
    /* Key first: a certificate without its key would be unusable. */
    if ((r = write_file(key_file, &key_pem, 0600)) < 0
        || (r = write_file(cert_file, &crt_pem, 0644)) < 0) {
        kvc_err("cannot write identity in %s: %s", key_file, strerror(-r));
        unlink(key_file);
    }
    goto out;
gnutls_err:
    r = gnutls_fail("create identity", cert_file, r);
out:
    if (key_pem.data) {
        gnutls_memset(key_pem.data, 0, key_pem.size);
        gnutls_free(key_pem.data);
    }
    gnutls_free(crt_pem.data);
    gnutls_x509_crt_deinit(crt);
    gnutls_x509_privkey_deinit(key);
    return r;
}

int
kvc_tls_ensure_identity(const char *dir, const char *common_name,
                        struct kvc_tls_identity **out)
{
    char cert[4096], key[4096];
    bool have_cert, have_key;
    int r;

    *out = NULL;
    if (!dir || !*dir || !common_name || !*common_name)
        return -EINVAL;
    if (snprintf(cert, sizeof cert, "%s/%s", dir, KVC_TLS_CERT_FILE) >= (int)sizeof cert
        || snprintf(key, sizeof key, "%s/%s", dir, KVC_TLS_KEY_FILE) >= (int)sizeof key)
        return -ENAMETOOLONG;
    if ((r = mkdir_p(dir)) < 0) {
        kvc_err("cannot create %s: %s", dir, strerror(-r));
        return r;
    }
    have_cert = access(cert, F_OK) == 0;
    have_key = access(key, F_OK) == 0;
    if (have_cert != have_key) {
        kvc_err("%s holds only %s: refusing to replace it (remove it to start over)",
                dir, have_cert ? KVC_TLS_CERT_FILE : KVC_TLS_KEY_FILE);
        return -EEXIST;
    }
    if (!have_cert) {
        if ((r = create_identity(cert, key, common_name)) < 0)
            return r;
    }
    if ((r = kvc_tls_identity_load(cert, key, out)) < 0)
        return r;
    if (!have_cert)
        kvc_info("created key and self-signed certificate for %s in %s, thumbprint %s",
                 common_name, dir, (*out)->thumbprint);
    return 0;
}
