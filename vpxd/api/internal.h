/* Helpers shared by the REST resource files only. */
#ifndef VPXD_API_INTERNAL_H
#define VPXD_API_INTERNAL_H

#include <stdbool.h>

#include "vpxd/api/api.h"

/* HTTP Basic credentials: the user (malloc'd) and *PASS (malloc'd), or NULL. */
char *api_basic_auth(struct api_req *, char **pass);
/* The user a request acts for when it has no session (logins). */
void api_set_user(struct api_req *, const char *user);
void api_count_login_failure(struct api_req *, bool throttled);

/* Answers the error for a -errno from the host manager (hostmgr.h). */
void api_host_error(struct api_req *, int err, const char *msg);
/* 503 unless the host manager runs and HOST is CONNECTED; returns -1 then. */
int api_need_host(struct api_req *, const char *host);

/* A SELECT over a list filter: "? IS NULL OR col IN (SELECT value FROM
 * json_each(?))" takes the JSON text twice; returns NULL for an empty list
 * (no filter) or the malloc'd JSON text. */
char *api_filter_json(struct api_req *, const char *name);
/* Validates every value of a list filter against WORDS; -1 (answered) if bad. */
int api_filter_words(struct api_req *, const char *name, const char *const *words);

/* A request header, NULL if absent. */
const char *api_header_in(struct api_req *, const char *name);
/* Same SHA-256 thumbprint, ignoring case and ':' separators. */
bool api_thumbprint_equal(const char *a, const char *b);

#endif
