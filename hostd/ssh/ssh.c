/* The host's SSH shell (libssh server API; see ssh.h and docs/hosts.md).
 *
 * One acceptor thread per host polls the listening socket (and a stop pipe),
 * hands each connection to libssh with ssh_bind_accept_fd() and starts a
 * session thread.  A session thread runs libssh's blocking protocol code:
 * key exchange, authentication (password against the host's administrator,
 * or a key listed in authorized_keys), one session channel, then either
 * exec mode (run one command line, send its exit status, close) or an
 * interactive shell with a small line editor.  libssh's callbacks only
 * record what the client asked for; the session thread acts on it after
 * each poll, so nothing is written from inside a callback.  Commands run on
 * hostd's loop thread through the bridge.
 *
 * Limits: max_sessions at once (more are closed at accept), 30 s to log in,
 * 3 wrong passwords or 10 authentication requests per connection; wrong
 * passwords are throttled host-wide by auth.c. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/server.h>

#include "log.h"
#include "hostd/hostd.h"
#include "hostd/ssh/ssh.h"

KVC_LOG_MODULE(ssh);

#define LOGIN_GRACE_MS 30000
#define MAX_PW_FAILS 3
#define MAX_AUTH_REQS 10
#define IN_BUF 4096
#define LINE_MAX_LEN 2048
#define KEYS_MAX_BYTES (64 * 1024)

struct hostd_ssh;

struct sess {
    struct sess *next;
    struct hostd_ssh *srv;
    ssh_session s;
    ssh_channel chan;
    pthread_t thr;
    int fd;                     /* -1 once the session thread closes it */
    atomic_bool done;
    char peer[80];
    int64_t start_ms;

    /* Set by callbacks, read by the session thread (the same thread). */
    bool authenticated;
    char user[64];
    const char *method;
    unsigned pw_fails, auth_reqs;
    bool pty, shell, eof, chan_closed;
    char *exec_cmd;
    char in[IN_BUF];
    size_t in_len;

    /* The shell's line editor. */
    char line[LINE_MAX_LEN];
    size_t line_len;
    int esc;                    /* 0, 1 after ESC, 2 inside CSI/SS3 */
    bool last_cr;
    bool want_exit;
    int exit_status;

    struct ssh_server_callbacks_struct scb;
    struct ssh_channel_callbacks_struct ccb;
};

struct hostd_ssh {
    struct hostd_host *h;
    struct hostd_bridge *br;
    struct hostd_auth *auth;
    ssh_bind bind;
    int lfd;
    int stop_pipe[2];
    uint16_t port;
    unsigned max_sessions;
    char keys_path[PATH_MAX + 32];
    char hostkey_path[PATH_MAX + 32];
    pthread_t acceptor;
    bool acceptor_started;
    atomic_bool stopping;
    pthread_mutex_t mu;         /* sessions, their fds */
    struct sess *sessions;
    unsigned n_sessions;
};

/* ---- authorized_keys ---------------------------------------------------- */

/* Whether KEY is listed in the authorized_keys file.  Lines are
 * "TYPE BASE64 [comment]"; a line with options in front is skipped (the
 * restrictions it would carry are not implemented, so it grants nothing).
 * A file writable by group or others is ignored, as sshd's StrictModes. */
static bool
key_authorized(struct hostd_ssh *srv, ssh_key key)
{
    FILE *f = fopen(srv->keys_path, "re");
    struct stat st;
    char line[16384];
    bool ok = false;
    size_t total = 0;

    if (!f)
        return false;
    if (fstat(fileno(f), &st) || (st.st_mode & 022)) {
        static struct kvc_ratelimit rl = KVC_RATELIMIT_INIT(1, 60);
        kvc_warn_rl(&rl, "%s: writable by group or others: ignored", srv->keys_path);
        fclose(f);
        return false;
    }
    while (!ok && fgets(line, sizeof line, f) && (total += strlen(line)) <= KEYS_MAX_BYTES) {
        char *save = NULL, *type = strtok_r(line, " \t\r\n", &save);
        char *b64 = type ? strtok_r(NULL, " \t\r\n", &save) : NULL;
        ssh_key k = NULL;
        if (!type || type[0] == '#' || !b64)
            continue;
        enum ssh_keytypes_e t = ssh_key_type_from_name(type);
        if (t == SSH_KEYTYPE_UNKNOWN)
            continue;
        if (ssh_pki_import_pubkey_base64(b64, t, &k) == SSH_OK)
            ok = ssh_key_cmp(k, key, SSH_KEY_CMP_PUBLIC) == 0;
        ssh_key_free(k);
    }
    fclose(f);
    return ok;
}

/* ---- libssh callbacks (they only record) -------------------------------- */

static bool
user_ok(struct sess *c, const char *user)
{
    return user && !strcmp(user, hostd_auth_user(c->srv->auth));
}

static int
on_auth_password(ssh_session s, const char *user, const char *password, void *arg)
{
    struct sess *c = arg;
    (void)s;
    c->auth_reqs++;
    if (hostd_auth_password(c->srv->auth, user, password, c->peer)) {
        c->authenticated = true;
        c->method = "password";
        snprintf(c->user, sizeof c->user, "%s", user);
        return SSH_AUTH_SUCCESS;
    }
    c->pw_fails++;
    return SSH_AUTH_DENIED;
}

static int
on_auth_pubkey(ssh_session s, const char *user, struct ssh_key_struct *key,
               char signature_state, void *arg)
{
    struct sess *c = arg;
    (void)s;
    c->auth_reqs++;
    if (!user_ok(c, user) || !key_authorized(c->srv, key))
        return SSH_AUTH_DENIED;
    if (signature_state == SSH_PUBLICKEY_STATE_NONE)
        return SSH_AUTH_SUCCESS;        /* "this key would do": sign with it */
    if (signature_state != SSH_PUBLICKEY_STATE_VALID)
        return SSH_AUTH_DENIED;
    c->authenticated = true;
    c->method = "publickey";
    snprintf(c->user, sizeof c->user, "%s", user);
    return SSH_AUTH_SUCCESS;
}

static int
on_data(ssh_session s, ssh_channel ch, void *data, uint32_t len, int is_stderr, void *arg)
{
    struct sess *c = arg;
    (void)s;
    (void)ch;
    (void)is_stderr;
    size_t n = sizeof c->in - c->in_len;
    if (n > len)
        n = len;
    memcpy(c->in + c->in_len, data, n);
    c->in_len += n;
    return (int)n;              /* the rest stays in libssh's buffer */
}

static void
on_eof(ssh_session s, ssh_channel ch, void *arg)
{
    (void)s;
    (void)ch;
    ((struct sess *)arg)->eof = true;
}

static void
on_close(ssh_session s, ssh_channel ch, void *arg)
{
    (void)s;
    (void)ch;
    ((struct sess *)arg)->chan_closed = true;
}

static int
on_pty(ssh_session s, ssh_channel ch, const char *term, int w, int hgt, int pw, int ph,
       void *arg)
{
    (void)s; (void)ch; (void)term; (void)w; (void)hgt; (void)pw; (void)ph;
    ((struct sess *)arg)->pty = true;
    return 0;
}

static int
on_window(ssh_session s, ssh_channel ch, int w, int hgt, int pw, int ph, void *arg)
{
    (void)s; (void)ch; (void)w; (void)hgt; (void)pw; (void)ph; (void)arg;
    return 0;
}

static int
on_shell(ssh_session s, ssh_channel ch, void *arg)
{
    struct sess *c = arg;
    (void)s;
    (void)ch;
    if (c->shell || c->exec_cmd)
        return 1;
    c->shell = true;
    return 0;
}

static int
on_exec(ssh_session s, ssh_channel ch, const char *command, void *arg)
{
    struct sess *c = arg;
    (void)s;
    (void)ch;
    if (c->shell || c->exec_cmd || !command)
        return 1;
    c->exec_cmd = strdup(command);
    return c->exec_cmd ? 0 : 1;
}

static int
on_env(ssh_session s, ssh_channel ch, const char *name, const char *value, void *arg)
{
    (void)s; (void)ch; (void)name; (void)value; (void)arg;
    return 1;                   /* refused: the shell has no environment */
}

static int
on_subsystem(ssh_session s, ssh_channel ch, const char *name, void *arg)
{
    (void)s; (void)ch; (void)name; (void)arg;
    return 1;                   /* no sftp/scp */
}

static ssh_channel
on_channel_open(ssh_session s, void *arg)
{
    struct sess *c = arg;
    if (!c->authenticated || c->chan)
        return NULL;            /* one session channel per connection */
    c->chan = ssh_channel_new(s);
    if (!c->chan)
        return NULL;
    c->ccb = (struct ssh_channel_callbacks_struct){
        .userdata = c,
        .channel_data_function = on_data,
        .channel_eof_function = on_eof,
        .channel_close_function = on_close,
        .channel_pty_request_function = on_pty,
        .channel_pty_window_change_function = on_window,
        .channel_shell_request_function = on_shell,
        .channel_exec_request_function = on_exec,
        .channel_env_request_function = on_env,
        .channel_subsystem_request_function = on_subsystem,
    };
    ssh_callbacks_init(&c->ccb);
    ssh_set_channel_callbacks(c->chan, &c->ccb);
    return c->chan;
}

/* ---- output ------------------------------------------------------------- */

/* Writes to the client.  On a pty, newlines become CR LF and errors go to
 * the terminal like everything else; without one, errors go to stderr. */
static int
put(struct sess *c, const char *buf, size_t len, bool err)
{
    while (len > 0) {
        size_t n = len;
        const char *nl = c->pty ? memchr(buf, '\n', len) : NULL;
        if (nl)
            n = (size_t)(nl - buf);
        if (n > 0) {
            int rc = err && !c->pty ? ssh_channel_write_stderr(c->chan, buf, (uint32_t)n)
                                    : ssh_channel_write(c->chan, buf, (uint32_t)n);
            if (rc == SSH_ERROR)
                return -EIO;
        }
        if (nl) {
            if (ssh_channel_write(c->chan, "\r\n", 2) == SSH_ERROR)
                return -EIO;
            n++;
        }
        buf += n;
        len -= n;
    }
    return 0;
}

static int
puts_(struct sess *c, const char *s)
{
    return put(c, s, strlen(s), false);
}

static void
prompt(struct sess *c)
{
    char p[200];
    snprintf(p, sizeof p, "[%s@%s:~] ", c->user, c->srv->h->name);
    puts_(c, p);
}

static void
banner(struct sess *c)
{
    char b[1024];
    snprintf(b, sizeof b,
             "The time and date of this login have been sent to the system logs.\n"
             "\n"
             "kvcenter host %s (hostd %s): the host's shell.\n"
             "Commands are esxcli's: 'esxcli --help' lists the namespaces ('esxcli' may be\n"
             "left out). Type 'exit' or press Ctrl-D to leave.\n"
             "\n", c->srv->h->name, HOSTD_VERSION);
    puts_(c, b);
}

/* ---- running commands --------------------------------------------------- */

static int
run_line(struct sess *c, const char *line)
{
    struct hostd_cmd_result r;
    int rc = hostd_shell_run_line(c->srv->br, c->srv->h, line, &r);
    if (rc == -ESHUTDOWN)
        c->want_exit = true;
    if (r.out && r.out_len)
        put(c, r.out, r.out_len, false);
    if (r.err && r.err_len)
        put(c, r.err, r.err_len, true);
    int st = r.status;
    hostd_cmd_result_free(&r);
    return st;
}

/* exit / logout, with an optional status. */
static bool
is_exit(const char *line, int *status)
{
    char **w = NULL, err[64];
    int n = 0;
    bool yes = false;
    if (hostd_split_words(line, &w, &n, err, sizeof err))
        return false;
    if (n >= 1 && n <= 2 && (!strcmp(w[0], "exit") || !strcmp(w[0], "logout"))) {
        yes = true;
        if (n == 2)
            *status = atoi(w[1]) & 0xff;
    }
    hostd_words_free(w, n);
    return yes;
}

static void
shell_line(struct sess *c)
{
    c->line[c->line_len] = 0;
    const char *p = c->line;
    while (*p == ' ' || *p == '\t')
        p++;
    if (!*p) {
        c->line_len = 0;
        return;
    }
    if (is_exit(p, &c->exit_status)) {
        c->want_exit = true;
    } else if (!strcmp(p, "help")) {
        c->exit_status = run_line(c, "esxcli --help");
    } else {
        c->exit_status = run_line(c, p);
        kvc_dbg("%s@%s: '%s' -> %d", c->user, c->peer, p, c->exit_status);
    }
    c->line_len = 0;
}

/* The line editor: printable bytes (UTF-8 included) are echoed, Backspace
 * and ^U erase, ^C drops the line, ^D on an empty line leaves, escape
 * sequences (arrows, function keys) are ignored.  Without a pty nothing
 * is echoed and lines end at LF. */
static void
shell_input(struct sess *c)
{
    size_t i;
    for (i = 0; i < c->in_len && !c->want_exit; i++) {
        unsigned char ch = (unsigned char)c->in[i];
        if (c->esc == 1) {
            c->esc = (ch == '[' || ch == 'O') ? 2 : 0;
            continue;
        }
        if (c->esc == 2) {
            if (ch >= 0x40 && ch <= 0x7e)
                c->esc = 0;
            continue;
        }
        if (ch == '\n' && c->last_cr) {
            c->last_cr = false;
            continue;
        }
        c->last_cr = ch == '\r';
        if (ch == '\r' || ch == '\n') {
            if (c->pty)
                puts_(c, "\n");
            shell_line(c);
            if (!c->want_exit && c->pty)
                prompt(c);
        } else if (ch == 0x7f || ch == 0x08) {
            if (c->line_len) {
                /* Drop a whole UTF-8 sequence. */
                do
                    c->line_len--;
                while (c->line_len && ((unsigned char)c->line[c->line_len] & 0xc0) == 0x80);
                if (c->pty)
                    puts_(c, "\b \b");
            }
        } else if (ch == 0x03) {
            c->line_len = 0;
            if (c->pty) {
                puts_(c, "^C\n");
                prompt(c);
            }
        } else if (ch == 0x04) {
            if (!c->line_len)
                c->want_exit = true;
        } else if (ch == 0x15) {
            if (c->pty)
                for (size_t k = 0; k < c->line_len; k++)
                    puts_(c, "\b \b");
            c->line_len = 0;
        } else if (ch == 0x1b) {
            c->esc = 1;
        } else if (ch >= 0x20 || ch == '\t') {
            if (ch == '\t')
                ch = ' ';
            if (c->line_len + 1 < sizeof c->line) {
                c->line[c->line_len++] = (char)ch;
                if (c->pty)
                    put(c, (const char *)&ch, 1, false);
            }
        }
    }
    memmove(c->in, c->in + i, c->in_len - i);
    c->in_len -= i;
}

/* Exit status, EOF and CLOSE, then wait (a little) for the client's CLOSE:
 * a connection dropped before the client has read the exit status makes
 * OpenSSH report 255 ("closed by remote host"). */
static void
finish_channel(struct sess *c, ssh_event ev, int status)
{
    ssh_channel_request_send_exit_status(c->chan, status);
    ssh_channel_send_eof(c->chan);
    ssh_channel_close(c->chan);
    ssh_blocking_flush(c->s, 2000);
    int64_t until = hostd_now_ms() + 5000;
    while (!c->chan_closed && !atomic_load(&c->srv->stopping) && hostd_now_ms() < until)
        if (ssh_event_dopoll(ev, 100) == SSH_ERROR)
            break;
}

static void
exec_mode(struct sess *c, ssh_event ev)
{
    kvc_info("%s@%s: exec '%.200s'", c->user, c->peer, c->exec_cmd);
    int st = run_line(c, c->exec_cmd);
    finish_channel(c, ev, st);
}

/* ---- the session thread ------------------------------------------------- */

static void *
session_main(void *arg)
{
    struct sess *c = arg;
    struct hostd_ssh *srv = c->srv;
    ssh_event ev = NULL;
    bool greeted = false;

    c->scb = (struct ssh_server_callbacks_struct){
        .userdata = c,
        .auth_password_function = on_auth_password,
        .auth_pubkey_function = on_auth_pubkey,
        .channel_open_request_session_function = on_channel_open,
    };
    ssh_callbacks_init(&c->scb);
    ssh_set_server_callbacks(c->s, &c->scb);
    ssh_set_auth_methods(c->s, SSH_AUTH_METHOD_PUBLICKEY | SSH_AUTH_METHOD_PASSWORD);
    if (ssh_handle_key_exchange(c->s) != SSH_OK) {
        kvc_dbg("%s: key exchange: %s", c->peer, ssh_get_error(c->s));
        goto out;
    }
    if (!(ev = ssh_event_new()) || ssh_event_add_session(ev, c->s) != SSH_OK)
        goto out;
    for (;;) {
        if (atomic_load(&srv->stopping))
            break;
        int rc = ssh_event_dopoll(ev, 200);
        if (rc == SSH_ERROR)
            break;              /* the client went away, or sent garbage */
        if (!c->authenticated) {
            if (c->pw_fails >= MAX_PW_FAILS || c->auth_reqs >= MAX_AUTH_REQS) {
                kvc_warn("%s: too many authentication failures: disconnected", c->peer);
                break;
            }
            if (hostd_now_ms() - c->start_ms > LOGIN_GRACE_MS) {
                kvc_info("%s: no login within %d s: disconnected", c->peer,
                         LOGIN_GRACE_MS / 1000);
                break;
            }
            continue;
        }
        if (c->method) {
            kvc_info("login %s from %s (%s)", c->user, c->peer, c->method);
            c->method = NULL;
        }
        if (!c->chan) {
            if (hostd_now_ms() - c->start_ms > LOGIN_GRACE_MS)
                break;
            continue;
        }
        if (c->chan_closed)
            break;
        if (c->exec_cmd) {
            exec_mode(c, ev);
            break;
        }
        if (!c->shell) {
            if (c->eof)
                break;
            continue;
        }
        if (!greeted) {
            greeted = true;
            if (c->pty) {
                banner(c);
                prompt(c);
            }
        }
        shell_input(c);
        if (c->eof && !c->in_len && !c->want_exit) {
            /* No pty: the last line may lack its LF. */
            if (c->line_len)
                shell_line(c);
            c->want_exit = true;
        }
        if (c->want_exit) {
            if (c->pty)
                puts_(c, "\n");
            finish_channel(c, ev, c->exit_status);
            break;
        }
    }
out:
    if (ev) {
        ssh_event_remove_session(ev, c->s);
        ssh_event_free(ev);
    }
    pthread_mutex_lock(&srv->mu);
    c->fd = -1;                 /* closed below: never shut down again */
    pthread_mutex_unlock(&srv->mu);
    ssh_disconnect(c->s);
    kvc_dbg("%s: session ends", c->peer);
    atomic_store(&c->done, true);
    return NULL;
}

static void
sess_free(struct sess *c)
{
    ssh_free(c->s);             /* its channel with it */
    free(c->exec_cmd);
    free(c);
}

/* Joins and frees finished sessions (ALL: every one, after shutting their
 * sockets down). */
static void
reap(struct hostd_ssh *srv, bool all)
{
    struct sess *done = NULL;

    pthread_mutex_lock(&srv->mu);
    for (struct sess **pp = &srv->sessions; *pp;) {
        struct sess *c = *pp;
        if (all && c->fd >= 0)
            shutdown(c->fd, SHUT_RDWR);
        if (all || atomic_load(&c->done)) {
            *pp = c->next;
            c->next = done;
            done = c;
            srv->n_sessions--;
        } else {
            pp = &c->next;
        }
    }
    pthread_mutex_unlock(&srv->mu);
    while (done) {
        struct sess *c = done;
        done = c->next;
        pthread_join(c->thr, NULL);
        sess_free(c);
    }
}

static void
accept_one(struct hostd_ssh *srv)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd = accept4(srv->lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
    static struct kvc_ratelimit rl = KVC_RATELIMIT_INIT(5, 60);
    char host[64] = "?", serv[16] = "?";

    if (fd < 0)
        return;
    getnameinfo((struct sockaddr *)&ss, sl, host, sizeof host, serv, sizeof serv,
                NI_NUMERICHOST | NI_NUMERICSERV);
    pthread_mutex_lock(&srv->mu);
    bool full = srv->n_sessions >= srv->max_sessions;
    pthread_mutex_unlock(&srv->mu);
    if (full) {
        kvc_warn_rl(&rl, "%s: %u sessions already: connection from %s refused",
                    srv->h->name, srv->max_sessions, host);
        close(fd);
        return;
    }
    struct sess *c = calloc(1, sizeof *c);
    if (!c || !(c->s = ssh_new())) {
        free(c);
        close(fd);
        return;
    }
    c->srv = srv;
    c->fd = fd;
    c->start_ms = hostd_now_ms();
    snprintf(c->peer, sizeof c->peer, "%s:%s", host, serv);
    if (ssh_bind_accept_fd(srv->bind, c->s, fd) != SSH_OK) {
        kvc_warn_rl(&rl, "accept from %s: %s", c->peer, ssh_get_error(srv->bind));
        ssh_free(c->s);         /* closes FD */
        free(c);
        return;
    }
    long timeout = LOGIN_GRACE_MS / 1000;
    ssh_options_set(c->s, SSH_OPTIONS_TIMEOUT, &timeout);
    pthread_mutex_lock(&srv->mu);
    if (pthread_create(&c->thr, NULL, session_main, c)) {
        pthread_mutex_unlock(&srv->mu);
        sess_free(c);
        return;
    }
    c->next = srv->sessions;
    srv->sessions = c;
    srv->n_sessions++;
    pthread_mutex_unlock(&srv->mu);
}

static void *
acceptor_main(void *arg)
{
    struct hostd_ssh *srv = arg;

    while (!atomic_load(&srv->stopping)) {
        struct pollfd p[2] = { { srv->lfd, POLLIN, 0 }, { srv->stop_pipe[0], POLLIN, 0 } };
        int n = poll(p, 2, 1000);
        if (n < 0 && errno != EINTR)
            break;
        if (n > 0 && (p[1].revents & POLLIN))
            break;
        if (n > 0 && (p[0].revents & POLLIN))
            accept_one(srv);
        reap(srv, false);
    }
    return NULL;
}

/* ---- start and stop ----------------------------------------------------- */

static int
ensure_host_key(const char *path, char *fp, size_t fplen)
{
    ssh_key k = NULL;
    unsigned char *hash = NULL;
    size_t hlen = 0;
    int rc = 0;

    if (access(path, F_OK) == 0) {
        if (ssh_pki_import_privkey_file(path, NULL, NULL, NULL, &k) != SSH_OK) {
            kvc_err("%s: not a private key libssh can read", path);
            return -EINVAL;
        }
    } else {
        if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &k) != SSH_OK)
            return -EIO;
        mode_t old = umask(077);
        if (ssh_pki_export_privkey_file(k, NULL, NULL, NULL, path) != SSH_OK)
            rc = -EIO;
        umask(old);
        if (rc) {
            kvc_err("%s: cannot write the host key", path);
            goto out;
        }
        kvc_info("created SSH host key %s", path);
    }
    if (ssh_get_publickey_hash(k, SSH_PUBLICKEY_HASH_SHA256, &hash, &hlen) == 0) {
        char *f = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen);
        snprintf(fp, fplen, "%s", f ? f : "?");
        ssh_string_free_char(f);
        ssh_clean_pubkey_hash(&hash);
    }
out:
    ssh_key_free(k);
    return rc;
}

static int
listen_on(const char *addr, uint16_t port, int *fd_out, uint16_t *port_out)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV };
    struct addrinfo *ai = NULL;
    char ps[8];
    int fd = -1, rc, one = 1;

    snprintf(ps, sizeof ps, "%u", port);
    if ((rc = getaddrinfo(addr, ps, &hints, &ai)))
        return -EINVAL;
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 16)) {
        rc = -errno;
        close(fd);
        goto out;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *port_out = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
    *fd_out = fd;
    rc = 0;
out:
    freeaddrinfo(ai);
    return rc;
}

int
hostd_ssh_start(struct hostd_host *h, struct hostd_bridge *br, struct hostd_auth *auth,
                const struct hostd_ssh_opts *o, struct hostd_ssh **out)
{
    struct hostd_ssh *srv = calloc(1, sizeof *srv);
    char fp[128] = "?";
    int rc = -ENOMEM;

    if (!srv)
        return -ENOMEM;
    srv->h = h;
    srv->br = br;
    srv->auth = auth;
    srv->lfd = -1;
    srv->stop_pipe[0] = srv->stop_pipe[1] = -1;
    srv->max_sessions = o->max_sessions ? o->max_sessions : 16;
    pthread_mutex_init(&srv->mu, NULL);
    if (o->authorized_keys && o->authorized_keys[0])
        snprintf(srv->keys_path, sizeof srv->keys_path, "%s", o->authorized_keys);
    else
        snprintf(srv->keys_path, sizeof srv->keys_path, "%s/authorized_keys", h->state_dir);
    snprintf(srv->hostkey_path, sizeof srv->hostkey_path, "%s/ssh_host_ed25519_key",
             h->state_dir);
    if ((rc = ensure_host_key(srv->hostkey_path, fp, sizeof fp)))
        goto fail;
    rc = -ENOMEM;
    if (!(srv->bind = ssh_bind_new()))
        goto fail;
    if (ssh_bind_options_set(srv->bind, SSH_BIND_OPTIONS_HOSTKEY, srv->hostkey_path) != SSH_OK) {
        kvc_err("host key %s: %s", srv->hostkey_path, ssh_get_error(srv->bind));
        rc = -EINVAL;
        goto fail;
    }
    if (pipe2(srv->stop_pipe, O_CLOEXEC)) {
        rc = -errno;
        goto fail;
    }
    if ((rc = listen_on(o->listen, o->port, &srv->lfd, &srv->port))) {
        kvc_err("%s: ssh listen on %s:%u: %s", h->name, o->listen, o->port, strerror(-rc));
        goto fail;
    }
    if (pthread_create(&srv->acceptor, NULL, acceptor_main, srv)) {
        rc = -EAGAIN;
        goto fail;
    }
    srv->acceptor_started = true;
    /* Tests and kvcenter-up read this line. */
    kvc_info("ssh ready index=%u name=%s port=%u fingerprint=%s", h->index, h->name,
             srv->port, fp);
    *out = srv;
    return 0;
fail:
    hostd_ssh_stop(srv);
    return rc;
}

uint16_t
hostd_ssh_port(const struct hostd_ssh *srv)
{
    return srv->port;
}

void
hostd_ssh_stop(struct hostd_ssh *srv)
{
    if (!srv)
        return;
    atomic_store(&srv->stopping, true);
    if (srv->acceptor_started) {
        if (write(srv->stop_pipe[1], "x", 1) < 0)
            kvc_warn("stop pipe: %s", strerror(errno));
        pthread_join(srv->acceptor, NULL);
    }
    reap(srv, true);
    if (srv->lfd >= 0)
        close(srv->lfd);
    for (int i = 0; i < 2; i++)
        if (srv->stop_pipe[i] >= 0)
            close(srv->stop_pipe[i]);
    if (srv->bind)
        ssh_bind_free(srv->bind);
    pthread_mutex_destroy(&srv->mu);
    free(srv);
}
