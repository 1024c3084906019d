/* /api/session and the /rest login older clients use. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "vpxd/api/api.h"
#include "vpxd/api/internal.h"
#include "vpxd/auth.h"

/* Checks HTTP Basic credentials and opens a session; answers the error
 * itself and returns -1 on failure. */
static int login(struct api_req *r, char token[AUTH_TOKEN_LEN + 1])
{
    char *pass = NULL;
    char *user = api_basic_auth(r, &pass);
    int retry = 0, rc;

    if (!user) {
        api_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Basic realm=\"kvcenter\"");
        api_error(r, 401, "UNAUTHENTICATED", "log in with HTTP Basic authentication");
        return -1;
    }
    api_set_user(r, user);
    rc = auth_login(api_vpxd(r)->auth, user, pass ? pass : "", token, &retry);
    MHD_free(user);
    if (pass)
        MHD_free(pass);
    if (rc == -EAGAIN) {
        char ra[16];
        snprintf(ra, sizeof(ra), "%d", retry);
        api_header(r, "Retry-After", ra);
        api_count_login_failure(r, true);
        api_error(r, 401, "UNAUTHENTICATED",
                  "too many failed logins for this user: try again in %d s", retry);
        return -1;
    }
    if (rc < 0) {
        api_count_login_failure(r, false);
        api_error(r, 401, "UNAUTHENTICATED", rc == -EACCES ? "wrong user name or password"
                  : "cannot create a session");
        return -1;
    }
    return 0;
}

void api_session_create(struct api_req *r)
{
    char token[AUTH_TOKEN_LEN + 1];

    if (login(r, token) < 0)
        return;
    api_reply(r, 201, json_string(token));
}

void api_rest_session_create(struct api_req *r)
{
    char token[AUTH_TOKEN_LEN + 1], cookie[160];

    if (login(r, token) < 0)
        return;
    snprintf(cookie, sizeof(cookie), "vmware-api-session-id=%s; Path=/rest; Secure; HttpOnly",
             token);
    api_header(r, MHD_HTTP_HEADER_SET_COOKIE, cookie);
    api_reply(r, 200, json_string(token));
}

static json_t *session_info(struct api_req *r)
{
    json_t *row = NULL;

    if (vdb_query_row(api_db(r), &row, "SELECT user_name AS user, created AS created_time,"
                      " last_accessed AS last_accessed_time FROM session WHERE token_hash = ?",
                      "s", api_session_token_hash(r)) < 0)
        return NULL;
    return row;
}

void api_session_get(struct api_req *r)
{
    json_t *row = session_info(r);

    if (!row) {
        api_error(r, 401, "UNAUTHENTICATED", "the session is not valid or has expired");
        return;
    }
    api_reply(r, 200, row);
}

void api_rest_session_get(struct api_req *r)
{
    api_session_get(r);
}

void api_session_delete(struct api_req *r)
{
    int rc = vdb_session_delete(api_db(r), api_session_token_hash(r));

    if (rc < 0)
        api_error(r, 401, "UNAUTHENTICATED", "the session is not valid or has expired");
    else
        api_reply(r, 204, NULL);
}

void api_rest_session_delete(struct api_req *r)
{
    int rc = vdb_session_delete(api_db(r), api_session_token_hash(r));

    if (rc < 0)
        api_error(r, 401, "UNAUTHENTICATED", "the session is not valid or has expired");
    else
        api_reply(r, 200, NULL);
}
