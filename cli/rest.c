/* kvcli REST client: see rest.h. */
#include "config.h"

#include "rest.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_REPLY (16u << 20)

struct kvc_rest {
    CURL *curl;
    char *server;
    char *user, *password;
    char *session_file;
    char *token;
    char pin[128];              /* "sha256//BASE64" of the server's key */
    long timeout_ms;
};

struct buf {
    char *data;
    size_t len;
    bool too_big;
};

__attribute__((format(printf, 3, 4)))
static int
fail(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
    return -EIO;
}

static size_t
on_data(char *p, size_t size, size_t n, void *arg)
{
    struct buf *b = arg;
    size_t add = size * n;
    if (b->len + add > MAX_REPLY) {
        b->too_big = true;
        return 0;
    }
    char *nd = realloc(b->data, b->len + add + 1);
    if (!nd)
        return 0;
    memcpy(nd + b->len, p, add);
    b->data = nd;
    b->len += add;
    b->data[b->len] = 0;
    return add;
}

int
kvc_thumbprint_normalise(const char *in, char *out, size_t outlen)
{
    unsigned char raw[32];
    size_t n = 0;
    for (const char *p = in; *p;) {
        if (*p == ':') {
            p++;
            continue;
        }
        if (!isxdigit((unsigned char)p[0]) || !isxdigit((unsigned char)p[1]) || n == 32)
            return -EINVAL;
        char hex[3] = { p[0], p[1], 0 };
        raw[n++] = (unsigned char)strtoul(hex, NULL, 16);
        p += 2;
    }
    if (n != 32 || outlen < 96)
        return -EINVAL;
    for (size_t i = 0; i < 32; i++)
        snprintf(out + i * 3, 4, "%02X%s", raw[i], i == 31 ? "" : ":");
    return 0;
}

static CURL *
new_handle(const char *server, long timeout_ms)
{
    CURL *c = curl_easy_init();
    if (!c)
        return NULL;
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);  /* pinned instead */
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms ? timeout_ms : 30000L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "kvcli/" PACKAGE_VERSION);
    (void)server;
    return c;
}

/* The server's leaf certificate: thumbprint and key pin, on a connection
 * that sends no request. */
static int
probe(const char *server, long timeout_ms, char *thumb, size_t tlen,
      char *pin, size_t plen, char *err, size_t errlen)
{
    CURL *c = new_handle(server, timeout_ms);
    struct curl_certinfo *ci = NULL;
    gnutls_x509_crt_t crt = NULL;
    gnutls_pubkey_t pub = NULL;
    gnutls_datum_t der = { NULL, 0 }, spki = { NULL, 0 };
    int rc = -EIO;

    if (!c)
        return fail(err, errlen, "out of memory");
    curl_easy_setopt(c, CURLOPT_URL, server);
    curl_easy_setopt(c, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(c, CURLOPT_CERTINFO, 1L);
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        fail(err, errlen, "cannot connect to %s: %s", server, curl_easy_strerror(cc));
        goto out;
    }
    if (curl_easy_getinfo(c, CURLINFO_CERTINFO, &ci) != CURLE_OK || !ci
        || ci->num_of_certs < 1) {
        fail(err, errlen, "%s sent no certificate", server);
        goto out;
    }
    const char *pem = NULL;
    for (struct curl_slist *s = ci->certinfo[0]; s; s = s->next)
        if (!strncmp(s->data, "Cert:", 5))
            pem = s->data + 5;
    gnutls_datum_t pd = { (unsigned char *)pem, pem ? (unsigned)strlen(pem) : 0 };
    if (!pem || gnutls_x509_crt_init(&crt) < 0
        || gnutls_x509_crt_import(crt, &pd, GNUTLS_X509_FMT_PEM) < 0
        || gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &der) < 0) {
        fail(err, errlen, "%s: cannot read the server's certificate", server);
        goto out;
    }
    unsigned char digest[32];
    gnutls_hash_fast(GNUTLS_DIG_SHA256, der.data, der.size, digest);
    if (tlen < 96) {
        fail(err, errlen, "buffer too small");
        goto out;
    }
    for (size_t i = 0; i < 32; i++)
        snprintf(thumb + i * 3, 4, "%02X%s", digest[i], i == 31 ? "" : ":");
    if (pin) {
        if (gnutls_pubkey_init(&pub) < 0 || gnutls_pubkey_import_x509(pub, crt, 0) < 0
            || gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &spki) < 0) {
            fail(err, errlen, "%s: cannot read the server's public key", server);
            goto out;
        }
        gnutls_hash_fast(GNUTLS_DIG_SHA256, spki.data, spki.size, digest);
        gnutls_datum_t in = { digest, 32 }, b64 = { NULL, 0 };
        if (gnutls_base64_encode2(&in, &b64) < 0) {
            fail(err, errlen, "out of memory");
            goto out;
        }
        snprintf(pin, plen, "sha256//%.*s", (int)b64.size, b64.data);
        gnutls_free(b64.data);
    }
    rc = 0;
out:
    gnutls_free(der.data);
    gnutls_free(spki.data);
    if (pub)
        gnutls_pubkey_deinit(pub);
    if (crt)
        gnutls_x509_crt_deinit(crt);
    curl_easy_cleanup(c);
    return rc;
}

int
kvc_rest_fetch_thumbprint(const char *server, long timeout_ms, char *out,
                          size_t outlen, char *err, size_t errlen)
{
    return probe(server, timeout_ms, out, outlen, NULL, 0, err, errlen);
}

static void
load_session(struct kvc_rest *r)
{
    if (!r->session_file)
        return;
    FILE *f = fopen(r->session_file, "r");
    if (!f)
        return;
    char line[512];
    if (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (*line)
            r->token = strdup(line);
    }
    fclose(f);
}

static void
save_session(struct kvc_rest *r)
{
    if (!r->session_file || !r->token)
        return;
    int fd = open(r->session_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        return;
    }
    fprintf(f, "%s\n", r->token);
    fclose(f);
}

void
kvc_rest_close(struct kvc_rest *r)
{
    if (!r)
        return;
    if (r->curl)
        curl_easy_cleanup(r->curl);
    free(r->server);
    free(r->user);
    if (r->password) {
        explicit_bzero(r->password, strlen(r->password));
        free(r->password);
    }
    free(r->session_file);
    free(r->token);
    free(r);
}

int
kvc_rest_open(struct kvc_rest **out, const struct kvc_rest_opts *o, char *err,
              size_t errlen)
{
    char want[96], got[96];
    *out = NULL;
    if (!o->server || strncmp(o->server, "https://", 8))
        return fail(err, errlen, "the server must be an https:// URL"), -EINVAL;
    if (!o->thumbprint || kvc_thumbprint_normalise(o->thumbprint, want, sizeof want))
        return fail(err, errlen, "a SHA-256 certificate thumbprint is needed "
                    "(32 hex bytes, e.g. AB:CD:...)"), -EINVAL;
    static bool inited;
    if (!inited) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        inited = true;
    }
    struct kvc_rest *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->timeout_ms = o->timeout_ms;
    size_t sl = strlen(o->server);
    while (sl > 8 && o->server[sl - 1] == '/')
        sl--;
    r->server = strndup(o->server, sl);
    r->user = o->user ? strdup(o->user) : NULL;
    r->password = o->password ? strdup(o->password) : NULL;
    r->session_file = o->session_file ? strdup(o->session_file) : NULL;
    int rc = probe(r->server, r->timeout_ms, got, sizeof got, r->pin, sizeof r->pin,
                   err, errlen);
    if (rc)
        goto fail;
    if (strcmp(got, want)) {
        fail(err, errlen, "the certificate of %s has thumbprint %s, not the "
             "expected %s: refusing to talk to it", r->server, got, want);
        rc = -EPERM;
        goto fail;
    }
    r->curl = new_handle(r->server, r->timeout_ms);
    if (!r->curl) {
        rc = -ENOMEM;
        goto fail;
    }
    curl_easy_setopt(r->curl, CURLOPT_PINNEDPUBLICKEY, r->pin);
    load_session(r);
    *out = r;
    return 0;
fail:
    kvc_rest_close(r);
    return rc;
}

/* One request.  EXTRA: a header or NULL.  BASIC: log in with user/password. */
static int
perform(struct kvc_rest *r, const char *method, const char *path,
        const json_t *body, bool basic, long *status, struct buf *reply,
        char *err, size_t errlen)
{
    CURL *c = r->curl;
    struct curl_slist *h = NULL;
    char *url = NULL, *text = NULL;
    int rc = -EIO;

    if (asprintf(&url, "%s%s", r->server, path) < 0)
        return -ENOMEM;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    if (basic) {
        curl_easy_setopt(c, CURLOPT_USERNAME, r->user ? r->user : "");
        curl_easy_setopt(c, CURLOPT_PASSWORD, r->password ? r->password : "");
    } else {
        curl_easy_setopt(c, CURLOPT_USERNAME, NULL);
        curl_easy_setopt(c, CURLOPT_PASSWORD, NULL);
    }
    if (!basic && r->token) {
        char hdr[600];
        snprintf(hdr, sizeof hdr, "vmware-api-session-id: %s", r->token);
        h = curl_slist_append(h, hdr);
    }
    h = curl_slist_append(h, "Accept: application/json");
    if (body) {
        text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!text) {
            rc = -ENOMEM;
            goto out;
        }
        h = curl_slist_append(h, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(text));
    } else if (!strcmp(method, "POST") || !strcmp(method, "PUT")
               || !strcmp(method, "PATCH")) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
    } else {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, reply);
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        if (reply->too_big)
            fail(err, errlen, "%s %s: reply larger than %u bytes", method, path, MAX_REPLY);
        else if (cc == CURLE_SSL_PINNEDPUBKEYNOTMATCH)
            fail(err, errlen, "%s: the server's key changed since its thumbprint "
                 "was checked: refusing to talk to it", r->server);
        else
            fail(err, errlen, "%s %s: %s", method, path, curl_easy_strerror(cc));
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    rc = 0;
out:
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, NULL);
    curl_slist_free_all(h);
    free(text);
    free(url);
    return rc;
}

static int
decode(const struct buf *b, json_t **out, const char *what, char *err, size_t errlen)
{
    json_error_t je;
    *out = NULL;
    if (!b->len)
        return 0;
    *out = json_loadb(b->data, b->len, JSON_DECODE_ANY, &je);
    if (!*out)
        return fail(err, errlen, "%s: the reply is not JSON (%s)", what, je.text);
    return 0;
}

static int
login(struct kvc_rest *r, char *err, size_t errlen)
{
    struct buf b = { 0 };
    long status = 0;
    json_t *v = NULL;

    if (!r->user)
        return fail(err, errlen, "not logged in: give --user and --password "
                    "(or a --session-file holding a session)"), -EACCES;
    int rc = perform(r, "POST", "/api/session", NULL, true, &status, &b, err, errlen);
    if (rc)
        goto out;
    if (status == 401 || status == 403) {
        rc = -EACCES;
        fail(err, errlen, "Cannot complete login due to an incorrect user name or password.");
        goto out;
    }
    if (status != 201 && status != 200) {
        rc = fail(err, errlen, "login: the server answered HTTP %ld", status);
        goto out;
    }
    rc = decode(&b, &v, "login", err, errlen);
    if (rc)
        goto out;
    /* /api answers a bare string; /rest-style servers {"value": token}. */
    json_t *t = json_is_object(v) ? json_object_get(v, "value") : v;
    if (!json_is_string(t) || !json_string_length(t)) {
        rc = fail(err, errlen, "login: the server sent no session token");
        goto out;
    }
    free(r->token);
    r->token = strdup(json_string_value(t));
    save_session(r);
out:
    json_decref(v);
    free(b.data);
    return rc;
}

int
kvc_rest_call(struct kvc_rest *r, const char *method, const char *path,
              const json_t *body, long *status, json_t **reply, char *err,
              size_t errlen)
{
    struct buf b = { 0 };
    int rc;

    *reply = NULL;
    if (!r->token && (rc = login(r, err, errlen)))
        return rc;
    rc = perform(r, method, path, body, false, status, &b, err, errlen);
    if (!rc && *status == 401 && r->user) {
        /* The session expired (or the saved one is stale): log in again. */
        free(b.data);
        b = (struct buf){ 0 };
        free(r->token);
        r->token = NULL;
        if ((rc = login(r, err, errlen)))
            return rc;
        rc = perform(r, method, path, body, false, status, &b, err, errlen);
    }
    if (!rc)
        rc = decode(&b, reply, path, err, errlen);
    free(b.data);
    return rc;
}
