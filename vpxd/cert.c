/* vpxd's TLS identity (see cert.h). */
#include "config.h"

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

#include "lib/log.h"
#include "vpxd/cert.h"

KVC_LOG_MODULE(cert);

static int read_file(const char *path, char **out)
{
    FILE *f = fopen(path, "re");
    long n;
    char *buf;

    if (!f)
        return -errno;
    if (fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 0 || n > 1 << 20) {
        fclose(f);
        return -EINVAL;
    }
    rewind(f);
    buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        fclose(f);
        return -EIO;
    }
    buf[n] = '\0';
    fclose(f);
    *out = buf;
    return 0;
}

/* Written to a temporary name, synced and renamed, so a crash never leaves
 * half a key. */
static int write_file(const char *path, const void *data, size_t len, mode_t mode)
{
    char tmp[4096];
    int fd, rc = 0;

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -errno;
    if (write(fd, data, len) != (ssize_t)len || fsync(fd) < 0)
        rc = -errno ? -errno : -EIO;
    close(fd);
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc)
        unlink(tmp);
    return rc;
}

static int create(const char *cert_path, const char *key_path, const char *cn)
{
    gnutls_x509_privkey_t key = NULL;
    gnutls_x509_crt_t crt = NULL;
    unsigned char serial[16];
    gnutls_datum_t kout = { 0 }, cout = { 0 };
    time_t now = time(NULL);
    int rc = -EIO;

    if (gnutls_x509_privkey_init(&key) < 0 || gnutls_x509_crt_init(&crt) < 0)
        goto out;
    if (gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
                                     GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0) < 0)
        goto out;
    gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial));
    serial[0] &= 0x7f;
    if (gnutls_x509_crt_set_version(crt, 3) < 0
        || gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)) < 0
        || gnutls_x509_crt_set_activation_time(crt, now - 3600) < 0
        || gnutls_x509_crt_set_expiration_time(crt, now + 10L * 365 * 86400) < 0
        || gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn,
                                         (unsigned)strlen(cn)) < 0
        || gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, cn,
                                                (unsigned)strlen(cn), GNUTLS_FSAN_SET) < 0
        || gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, "localhost",
                                                9, GNUTLS_FSAN_APPEND) < 0
        || gnutls_x509_crt_set_key(crt, key) < 0
        || gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE) < 0
        || gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0) < 0
        || gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_CLIENT, 0) < 0
        || gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0) < 0)
        goto out;
    if (gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &kout) < 0
        || gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &cout) < 0)
        goto out;
    if ((rc = write_file(key_path, kout.data, kout.size, 0600)) < 0)
        goto out;
    rc = write_file(cert_path, cout.data, cout.size, 0644);
    if (rc == 0)
        kvc_info("created a new certificate %s", cert_path);
out:
    gnutls_free(kout.data);
    gnutls_free(cout.data);
    gnutls_x509_crt_deinit(crt);
    gnutls_x509_privkey_deinit(key);
    return rc;
}

static int thumbprint(const char *pem, char thumb[96])
{
    gnutls_x509_crt_t crt;
    gnutls_datum_t in = { (unsigned char *)pem, (unsigned)strlen(pem) };
    unsigned char d[32];
    size_t n = sizeof(d);
    int rc = -EINVAL;

    if (gnutls_x509_crt_init(&crt) < 0)
        return -ENOMEM;
    if (gnutls_x509_crt_import(crt, &in, GNUTLS_X509_FMT_PEM) >= 0
        && gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA256, d, &n) >= 0) {
        for (int i = 0; i < 32; i++)
            snprintf(thumb + 3 * i, 4, "%02X%s", d[i], i < 31 ? ":" : "");
        rc = 0;
    }
    gnutls_x509_crt_deinit(crt);
    return rc;
}

int vpxd_cert_ensure(const char *dir, const char *cn, char **cert_pem, char **key_pem,
                     char thumb[96])
{
    char cp[4096], kp[4096];
    bool have_c, have_k;
    int rc;

    *cert_pem = *key_pem = NULL;
    snprintf(cp, sizeof(cp), "%s/rpc.crt", dir);
    snprintf(kp, sizeof(kp), "%s/rpc.key", dir);
    have_c = access(cp, F_OK) == 0;
    have_k = access(kp, F_OK) == 0;
    if (have_c != have_k) {
        kvc_err("%s holds only one of rpc.crt and rpc.key: refusing to replace it", dir);
        return -EEXIST;
    }
    if (!have_c && (rc = create(cp, kp, cn)) < 0) {
        kvc_err("cannot create a certificate in %s: %s", dir, strerror(-rc));
        return rc;
    }
    if ((rc = read_file(cp, cert_pem)) < 0 || (rc = read_file(kp, key_pem)) < 0
        || (rc = thumbprint(*cert_pem, thumb)) < 0) {
        kvc_err("cannot load the certificate in %s: %s", dir, strerror(-rc));
        free(*cert_pem);
        free(*key_pem);
        *cert_pem = *key_pem = NULL;
        return rc;
    }
    return 0;
}
