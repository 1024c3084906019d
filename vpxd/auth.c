/* Access control (see auth.h). */
#include "config.h"

#include <argon2.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "lib/log.h"
#include "vpxd/auth.h"
#include "vpxd/db.h"

KVC_LOG_MODULE(auth);

/* OWASP's argon2id baseline: 19 MiB, 2 passes, 1 lane. */
#define ARGON_T 2
#define ARGON_M 19456
#define ARGON_P 1
#define SALT_LEN 16
#define HASH_LEN 32

/* Failed logins are remembered per user name (whether or not it exists, so
 * the delay does not reveal which names are real). */
#define THROTTLE_SLOTS 64
struct throttle {
    char user[128];
    int failures;
    int64_t until_ms;           /* monotonic */
    int64_t last_ms;
};

struct auth {
    struct vdb *db;
    struct auth_config cfg;
    struct throttle slots[THROTTLE_SLOTS];
};

static int random_bytes(void *buf, size_t len)
{
    return gnutls_rnd(GNUTLS_RND_KEY, buf, len) == 0 ? 0 : -EIO;
}

int auth_hash_password(const char *password, char *out, size_t len)
{
    unsigned char salt[SALT_LEN];
    int rc;

    if (random_bytes(salt, sizeof(salt)) < 0)
        return -EIO;
    rc = argon2id_hash_encoded(ARGON_T, ARGON_M, ARGON_P, password, strlen(password),
                               salt, sizeof(salt), HASH_LEN, out, len);
    if (rc != ARGON2_OK) {
        kvc_err("argon2id: %s", argon2_error_message(rc));
        return -EINVAL;
    }
    return 0;
}

bool auth_verify_password(const char *encoded, const char *password)
{
    return argon2id_verify(encoded, password, strlen(password)) == ARGON2_OK;
}

void auth_token_hash(const char *token, char out[AUTH_HASH_HEX])
{
    unsigned char d[32];

    gnutls_hash_fast(GNUTLS_DIG_SHA256, token, strlen(token), d);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

int auth_new(struct vdb *db, const struct auth_config *cfg, struct auth **out)
{
    struct auth *a = calloc(1, sizeof(*a));

    if (!a)
        return -ENOMEM;
    a->db = db;
    a->cfg = *cfg;
    if (a->cfg.fail_limit <= 0)
        a->cfg.fail_limit = 5;
    if (a->cfg.session_idle_s <= 0)
        a->cfg.session_idle_s = 1800;
    *out = a;
    return 0;
}

void auth_free(struct auth *a)
{
    free(a);
}

static void gen_password(char *out, size_t n)
{
    static const char alphabet[] =
        "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    unsigned char r[64];

    random_bytes(r, sizeof(r));
    for (size_t i = 0; i + 1 < n && i < sizeof(r); i++)
        out[i] = alphabet[r[i] % (sizeof(alphabet) - 1)];
    out[n - 1] = '\0';
}

int auth_bootstrap(struct auth *a, const char *admin, const char *password,
                   char **generated)
{
    char hash[256], pw[21];
    int64_t n = 0;
    int rc;

    *generated = NULL;
    rc = vdb_query_int(a->db, &n, "SELECT count(*) FROM users", NULL);
    if (rc < 0)
        return rc;
    if (n > 0)
        return 0;
    if (!password) {
        gen_password(pw, sizeof(pw));
        password = pw;
    }
    if ((rc = auth_hash_password(password, hash, sizeof(hash))) < 0)
        return rc;
    rc = vdb_bootstrap_admin(a->db, admin, hash);
    if (rc < 0)
        return rc;
    if (password == pw)
        *generated = strdup(pw);
    kvc_info("created administrator %s", admin);
    return 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct throttle *slot(struct auth *a, const char *user, bool create)
{
    struct throttle *oldest = &a->slots[0];

    for (int i = 0; i < THROTTLE_SLOTS; i++) {
        if (a->slots[i].user[0] && !strcmp(a->slots[i].user, user))
            return &a->slots[i];
        if (a->slots[i].last_ms < oldest->last_ms)
            oldest = &a->slots[i];
    }
    if (!create)
        return NULL;
    memset(oldest, 0, sizeof(*oldest));
    snprintf(oldest->user, sizeof(oldest->user), "%s", user);
    return oldest;
}

int auth_login(struct auth *a, const char *user, const char *password,
               char token[AUTH_TOKEN_LEN + 1], int *retry_s)
{
    char hash[256], th[AUTH_HASH_HEX];
    unsigned char raw[AUTH_TOKEN_LEN / 2];
    int64_t now = now_ms();
    struct throttle *t = slot(a, user, false);
    bool ok;
    int rc;

    *retry_s = 0;
    if (t && t->until_ms > now) {
        *retry_s = (int)((t->until_ms - now + 999) / 1000);
        return -EAGAIN;
    }
    ok = vdb_query_str(a->db, hash, sizeof(hash), "SELECT hash FROM users WHERE name = ?",
                       "s", user) == 0
         && auth_verify_password(hash, password);
    if (!ok) {
        t = slot(a, user, true);
        t->failures++;
        t->last_ms = now;
        if (t->failures >= a->cfg.fail_limit) {
            /* 2 s after the limit, doubling, at most 60 s. */
            int shift = (int)(t->failures - a->cfg.fail_limit);
            int64_t delay = shift > 5 ? 60000 : 2000 << shift;
            t->until_ms = now + (delay > 60000 ? 60000 : delay);
        }
        return -EACCES;
    }
    if (t)
        memset(t, 0, sizeof(*t));
    if ((rc = random_bytes(raw, sizeof(raw))) < 0)
        return rc;
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(token + 2 * i, 3, "%02x", raw[i]);
    auth_token_hash(token, th);
    return vdb_session_create(a->db, th, user);
}

int auth_session(struct auth *a, const char *token, char *user, size_t len,
                 char hash[AUTH_HASH_HEX])
{
    json_t *row = NULL;
    int64_t last;
    int rc;

    if (strlen(token) != AUTH_TOKEN_LEN)
        return -ENOENT;
    auth_token_hash(token, hash);
    rc = vdb_query_row(a->db, &row, "SELECT user_name, last_epoch FROM session"
                       " WHERE token_hash = ?", "s", hash);
    if (rc < 0)
        return rc;
    last = json_integer_value(json_object_get(row, "last_epoch"));
    snprintf(user, len, "%s", json_string_value(json_object_get(row, "user_name")));
    json_decref(row);
    if (time(NULL) - last > a->cfg.session_idle_s) {
        vdb_session_delete(a->db, hash);
        return -ENOENT;
    }
    /* A write per request would cost an fsync each: one a second is enough
     * for an idle timeout counted in minutes. */
    if (time(NULL) != last)
        vdb_session_touch(a->db, hash);
    return 0;
}

int auth_logout(struct auth *a, const char *token)
{
    char hash[AUTH_HASH_HEX];

    auth_token_hash(token, hash);
    return vdb_session_delete(a->db, hash);
}

int auth_expire(struct auth *a)
{
    return vdb_session_expire(a->db, a->cfg.session_idle_s);
}

bool auth_check(struct auth *a, const char *user, const char *priv, const char *entity)
{
    int64_t n = 0;
    const char *e = entity && vdb_entity_exists(a->db, entity, NULL) ? entity
                                                                     : VDB_ROOT_FOLDER;
    int rc = vdb_query_int(a->db, &n,
        "WITH RECURSIVE up(id, parent, depth) AS ("
        "  SELECT id, parent, 0 FROM entity WHERE id = ?1"
        "  UNION ALL SELECT e.id, e.parent, up.depth + 1 FROM entity e"
        "  JOIN up ON e.id = up.parent WHERE up.depth < 64)"
        " , nearest(role) AS ("
        "  SELECT p.role FROM up JOIN permission p ON p.entity = up.id"
        "  WHERE p.principal = ?2 AND (up.depth = 0 OR p.propagate)"
        "  ORDER BY up.depth LIMIT 1)"
        /* Every role but NoAccess can see and read, as in vSphere. */
        " SELECT (SELECT count(*) FROM role_privilege WHERE role = (SELECT role FROM nearest)"
        "   AND privilege IN (?3, 'System.All'))"
        " + (SELECT count(*) FROM nearest WHERE role != -5"
        "   AND ?3 IN ('System.Anonymous', 'System.View', 'System.Read'))",
        "sss", e, user, priv);

    return rc == 0 && n > 0;
}
