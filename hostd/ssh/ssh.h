/* hostd's shell: the ESXi-Shell-like SSH server (libssh) and the HTTPS
 * endpoint kvcli talks to, both running the command table of cli/ against
 * this host.  See docs/hosts.md ("SSH shell") and cli/README.md.
 *
 * Threads.  hostd's state (hosts, VMs, backends) belongs to its libevent
 * loop thread.  libssh's server API is blocking per session (key exchange,
 * password hashing, a client typing slowly), so each SSH server has an
 * acceptor thread and one thread per session; libmicrohttpd has its own
 * thread.  Neither ever touches host state: a command line (or an API call)
 * is handed to the loop thread through a bridge (a queue plus a pipe the
 * loop watches), runs there to completion, and the caller waits for the
 * result.  Commands never block the loop, so no lock guards host state.
 *
 * Errors: 0 or -errno. */
#ifndef KVC_HOSTD_SSH_H
#define KVC_HOSTD_SSH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct hostd_host;

/* ---- bridge.c: run work on the loop thread from another thread ---- */
struct hostd_bridge;
int hostd_bridge_new(struct event_base *, struct hostd_bridge **out);
/* Runs FN(ARG) on the loop thread and waits for it.  -ESHUTDOWN (FN not
 * run) once the bridge is shut down.  Never call from the loop thread. */
int hostd_bridge_run(struct hostd_bridge *, void (*fn)(void *), void *arg);
/* Refuses new work and cancels queued work (their callers get -ESHUTDOWN).
 * Call on the loop thread before stopping the servers that use it. */
void hostd_bridge_shutdown(struct hostd_bridge *);
void hostd_bridge_free(struct hostd_bridge *);

/* ---- hostapi.c: the host's API, REST-shaped, answered in process ----
 * METHOD PATH [BODY] -> HTTP status and a JSON reply (NULL for none),
 * exactly what the HTTPS endpoint sends.  Loop thread only. */
void hostd_api_call(struct hostd_host *, const char *method, const char *path,
                    const json_t *body, long *status, json_t **reply);

/* ---- shell.c: command lines against the command table ---- */
struct hostd_cmd_result {
    char *out, *err;            /* malloc'ed, NUL-terminated */
    size_t out_len, err_len;
    int status;                 /* exit status: 0 ok, 1 error */
};
/* Splits LINE into words (shell quoting: '...', "...", backslash), drops a
 * leading "esxcli" and takes its --formatter option, and runs the command on
 * the loop thread through BR.  Returns -EINVAL (with a message in
 * res->err and status 1) for a line that does not parse, -ESHUTDOWN when
 * hostd is stopping, else 0 with the command's output and exit status. */
int hostd_shell_run_line(struct hostd_bridge *, struct hostd_host *, const char *line,
                         struct hostd_cmd_result *res);
void hostd_cmd_result_free(struct hostd_cmd_result *);
/* Splits LINE into at most MAX words (malloc'ed, in *WORDS, free with
 * hostd_words_free).  0, or -EINVAL with a message in ERR. */
int hostd_split_words(const char *line, char ***words, int *n, char *err, size_t errlen);
void hostd_words_free(char **words, int n);

/* ---- ssh.c: the SSH server of one host ---- */
struct hostd_ssh_opts {
    const char *listen;         /* address */
    uint16_t port;
    const char *authorized_keys;/* file; NULL: STATE_DIR/authorized_keys */
    unsigned max_sessions;      /* 0: 16 */
};
struct hostd_ssh;
/* Creates STATE_DIR/ssh_host_ed25519_key on first start, listens, and
 * starts the acceptor thread. */
struct hostd_auth;
int hostd_ssh_start(struct hostd_host *, struct hostd_bridge *, struct hostd_auth *,
                    const struct hostd_ssh_opts *, struct hostd_ssh **out);
uint16_t hostd_ssh_port(const struct hostd_ssh *);
/* Closes the listener and every session, joins the threads; accepts NULL.
 * Shut the bridge down first. */
void hostd_ssh_stop(struct hostd_ssh *);

/* ---- auth.c: the host's users (shared by the SSH and HTTPS servers) ---- */
struct hostd_auth;
/* USER with PASSWORD (hashed here with argon2id and kept only as the hash;
 * NULL or "": no password login). */
int hostd_auth_new(const char *user, const char *password, struct hostd_auth **out);
void hostd_auth_free(struct hostd_auth *);
const char *hostd_auth_user(const struct hostd_auth *);
/* Thread-safe.  Failed attempts are throttled host-wide: each failure in a
 * row (within a minute) delays the answer more, up to 4 s. */
bool hostd_auth_password(struct hostd_auth *, const char *user, const char *password,
                         const char *peer);

/* ---- rest.c: the HTTPS endpoint kvcli uses (libmicrohttpd) ---- */
struct hostd_rest;
/* Serves the host's API on LISTEN:PORT with the host's TLS identity
 * (STATE_DIR/rpc.crt and rpc.key, the certificate vpxd pins), with the
 * Automation API's session login. */
int hostd_rest_start(struct hostd_host *, struct hostd_bridge *, struct hostd_auth *,
                     const char *listen, uint16_t port, struct hostd_rest **out);
uint16_t hostd_rest_port(const struct hostd_rest *);
void hostd_rest_stop(struct hostd_rest *);

#endif
