/* Access control: local users with argon2id password hashes, sessions with
 * an idle timeout (the database keeps only a SHA-256 of each token), roles
 * as sets of privileges, permissions on inventory objects that propagate
 * down the tree, and throttling of failed logins.
 *
 * Errors: 0 or -errno (-EACCES bad credentials, -EAGAIN throttled with
 * *retry_s set, -ENOENT no such session). */
#ifndef VPXD_AUTH_H
#define VPXD_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vdb;
struct auth;

#define AUTH_TOKEN_LEN 64       /* hex characters */
#define AUTH_HASH_HEX 65

struct auth_config {
    int64_t session_idle_s;
    int64_t fail_limit;         /* failures per user before a delay */
};

int auth_new(struct vdb *, const struct auth_config *, struct auth **out);
void auth_free(struct auth *);

/* argon2id encoded hash of PASSWORD (a new random salt each time). */
int auth_hash_password(const char *password, char *out, size_t len);
bool auth_verify_password(const char *encoded, const char *password);

/* First start: create ADMIN with PASSWORD, or with a generated password
 * written to *GENERATED (caller frees) when PASSWORD is NULL, and give it
 * the Admin role on the root folder.  Nothing happens if users exist. */
int auth_bootstrap(struct auth *, const char *admin, const char *password,
                   char **generated);

/* Checks the credentials and opens a session: TOKEN gets the secret (only
 * its hash is stored). */
int auth_login(struct auth *, const char *user, const char *password,
               char token[AUTH_TOKEN_LEN + 1], int *retry_s);
/* Resolves a token to its user (USER gets it) and marks it used. */
int auth_session(struct auth *, const char *token, char *user, size_t len,
                 char hash[AUTH_HASH_HEX]);
int auth_logout(struct auth *, const char *token);
/* Drops idle sessions; returns how many. */
int auth_expire(struct auth *);

/* Whether USER holds PRIV on ENTITY: the permission nearest to ENTITY up
 * its ancestors (the entity's own, or an ancestor's that propagates)
 * decides; its role must hold PRIV or System.All.  Unknown entities are
 * judged at the root folder. */
bool auth_check(struct auth *, const char *user, const char *priv, const char *entity);

void auth_token_hash(const char *token, char out[AUTH_HASH_HEX]);

#endif
