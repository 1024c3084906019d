/* The host's users for the SSH shell and the HTTPS endpoint (see ssh.h).
 *
 * hostd knows one administrator: [hostd] admin_user / admin_password (the
 * credentials vpxd presents too).  The password is hashed once at start
 * with argon2id, as vpxd/auth.c stores its users' (OWASP's baseline: 19 MiB,
 * 2 passes), and only the hash is kept, so a login is checked by
 * argon2id_verify and no plain copy stays in memory.
 *
 * Throttling: verifications run one at a time, and each failure within a
 * minute of the previous one doubles the delay before the answer (200 ms,
 * 400 ms, ... up to 4 s), host-wide, so guessing is slow from any number of
 * connections while a user who mistyped once barely notices. */
#include <argon2.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "log.h"
#include "hostd/hostd.h"
#include "hostd/ssh/ssh.h"

KVC_LOG_MODULE(auth);

#define ARGON_T 2
#define ARGON_M (19 * 1024)
#define ARGON_P 1
#define MAX_DELAY_MS 4000

struct hostd_auth {
    char *user;
    char *hash;                 /* NULL: no password login */
    pthread_mutex_t mu;         /* one verification at a time; the counters */
    unsigned fails;             /* in a row */
    int64_t last_fail_ms;
};

int
hostd_auth_new(const char *user, const char *password, struct hostd_auth **out)
{
    struct hostd_auth *a = calloc(1, sizeof *a);
    unsigned char salt[16];
    int rc = -ENOMEM;

    if (!a)
        return -ENOMEM;
    pthread_mutex_init(&a->mu, NULL);
    if (!(a->user = strdup(user && user[0] ? user : "root")))
        goto fail;
    if (password && password[0]) {
        size_t len = argon2_encodedlen(ARGON_T, ARGON_M, ARGON_P, sizeof salt, 32,
                                       Argon2_id);
        if (gnutls_rnd(GNUTLS_RND_NONCE, salt, sizeof salt) < 0) {
            rc = -EIO;
            goto fail;
        }
        if (!(a->hash = malloc(len)))
            goto fail;
        int r = argon2id_hash_encoded(ARGON_T, ARGON_M, ARGON_P, password, strlen(password),
                                      salt, sizeof salt, 32, a->hash, len);
        if (r != ARGON2_OK) {
            kvc_err("argon2id: %s", argon2_error_message(r));
            rc = -EIO;
            goto fail;
        }
    }
    *out = a;
    return 0;
fail:
    hostd_auth_free(a);
    return rc;
}

void
hostd_auth_free(struct hostd_auth *a)
{
    if (!a)
        return;
    free(a->user);
    free(a->hash);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

const char *
hostd_auth_user(const struct hostd_auth *a)
{
    return a->user;
}

static void
sleep_ms(unsigned ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) && errno == EINTR)
        ;
}

bool
hostd_auth_password(struct hostd_auth *a, const char *user, const char *password,
                    const char *peer)
{
    bool ok;
    unsigned delay = 0;

    pthread_mutex_lock(&a->mu);
    /* Verify even for a wrong user name: the answer takes as long. */
    ok = a->hash && password
         && argon2id_verify(a->hash, password, strlen(password)) == ARGON2_OK
         && user && !strcmp(user, a->user);
    int64_t now = hostd_now_ms();
    if (ok) {
        a->fails = 0;
    } else {
        if (now - a->last_fail_ms > 60000)
            a->fails = 0;
        a->fails++;
        a->last_fail_ms = now;
        delay = 200u << (a->fails < 5 ? a->fails - 1 : 5);
        if (delay > MAX_DELAY_MS)
            delay = MAX_DELAY_MS;
    }
    if (!ok) {
        /* Under the mutex: the rate limit's counters are not atomic. */
        static struct kvc_ratelimit rl = KVC_RATELIMIT_INIT(10, 60);
        kvc_warn_rl(&rl, "failed password for '%s' from %s (%u in a row; answer delayed %u ms)",
                    user ? user : "", peer ? peer : "?", a->fails, delay);
    }
    pthread_mutex_unlock(&a->mu);
    if (!ok)
        sleep_ms(delay);
    return ok;
}
