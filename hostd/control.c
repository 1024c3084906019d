/* hostd's local control socket: status and failure injection for tests and
 * operators (STATE_DIR/control.sock, mode 0600).  One command per line, one
 * answer line per command ("OK ..." or "ERR ..."):
 *     hosts                       one line: "OK n=N" then per host a line
 *                                 "host INDEX NAME UUID PORT state=..."
 *     host I crash | recover      a whole simulated host dies / comes back
 *     host I hb stop|start        network heartbeats to vpxd
 *     host I dshb stop|start      datastore heartbeat files
 *     host I vm VM hang|unhang|crash   (sim) a guest misbehaves
 * I is the host index (0 for a single-host hostd). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "log.h"
#include "hostd/backend.h"
#include "hostd/hostd.h"

KVC_LOG_MODULE(control);

struct control {
    struct hostd *d;
    struct evconnlistener *lev;
    char path[108];
};

static void
answer(struct bufferevent *bev, const char *s)
{
    bufferevent_write(bev, s, strlen(s));
    bufferevent_write(bev, "\n", 1);
}

static void
run(struct control *c, struct bufferevent *bev, char *line)
{
    char *argv[8], out[4096] = "OK", *save = NULL;
    int argc = 0;
    struct hostd_host *h;
    unsigned long idx;
    char *end;

    for (char *t = strtok_r(line, " \t\r", &save); t && argc < 8;
         t = strtok_r(NULL, " \t\r", &save))
        argv[argc++] = t;
    if (!argc)
        return;
    if (!strcmp(argv[0], "hosts")) {
        char buf[256];
        snprintf(buf, sizeof buf, "OK n=%zu", c->d->n_hosts);
        answer(bev, buf);
        for (size_t i = 0; i < c->d->n_hosts; i++) {
            h = c->d->hosts[i];
            snprintf(buf, sizeof buf, "host %u %s %s %u state=%s vpxd=%s",
                     h->index, h->name, h->uuid, h->port,
                     h->crashed ? "crashed" : "up", h->vpxd ? "connected" : "none");
            answer(bev, buf);
        }
        return;
    }
    if (strcmp(argv[0], "host") || argc < 3) {
        answer(bev, "ERR unknown command (hosts | host I ...)");
        return;
    }
    idx = strtoul(argv[1], &end, 10);
    if (*end || idx >= c->d->n_hosts) {
        answer(bev, "ERR no such host index");
        return;
    }
    h = c->d->hosts[idx];
    if (!strcmp(argv[2], "crash") && argc == 3) {
        hostd_host_crash(h);
    } else if (!strcmp(argv[2], "recover") && argc == 3) {
        hostd_host_recover(h);
    } else if ((!strcmp(argv[2], "hb") || !strcmp(argv[2], "dshb")) && argc == 4 &&
               (!strcmp(argv[3], "stop") || !strcmp(argv[3], "start"))) {
        bool stop = !strcmp(argv[3], "stop");
        if (argv[2][0] == 'h')
            h->fail_net_hb = stop;
        else
            h->fail_ds_hb = stop;
        kvc_warn("%s: %s heartbeats %s by control", h->name,
                 argv[2][0] == 'h' ? "network" : "datastore", stop ? "stopped" : "restarted");
    } else if (hostd_ha_control(h, argc - 2, argv + 2, out, sizeof out) != -ENOENT) {
        ;                               /* HA failure injection: "net cut|restore" */
    } else if (h->be->control) {
        int rc = h->be->control(h, argc - 2, argv + 2, out, sizeof out);
        if (rc == -ENOENT)
            snprintf(out, sizeof out, "ERR unknown host command");
    } else {
        snprintf(out, sizeof out, "ERR unknown host command");
    }
    answer(bev, out);
}

static void
on_read(struct bufferevent *bev, void *arg)
{
    struct evbuffer *in = bufferevent_get_input(bev);
    char *line;
    size_t n;

    while ((line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF))) {
        run(arg, bev, line);
        free(line);
    }
    if (evbuffer_get_length(in) > 4096) {
        answer(bev, "ERR line too long");
        bufferevent_free(bev);
    }
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        bufferevent_free(bev);
}

static void
on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
          int len, void *arg)
{
    struct bufferevent *bev = bufferevent_socket_new(
        evconnlistener_get_base(l), fd, BEV_OPT_CLOSE_ON_FREE);

    if (!bev) {
        close(fd);
        return;
    }
    bufferevent_setcb(bev, on_read, NULL, on_event, arg);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

int
control_new(struct hostd *d, const char *path, struct control **out)
{
    struct control *c = calloc(1, sizeof *c);
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    mode_t old;

    if (!c)
        return -ENOMEM;
    if (strlen(path) >= sizeof sun.sun_path) {
        free(c);
        return -ENAMETOOLONG;
    }
    strcpy(sun.sun_path, path);
    strcpy(c->path, path);
    c->d = d;
    unlink(path);
    old = umask(077);
    c->lev = evconnlistener_new_bind(d->base, on_accept, c,
                                     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16,
                                     (struct sockaddr *)&sun, sizeof sun);
    umask(old);
    if (!c->lev) {
        int rc = -errno;
        free(c);
        return rc ? rc : -EIO;
    }
    *out = c;
    return 0;
}

void
control_free(struct control *c)
{
    if (!c)
        return;
    evconnlistener_free(c->lev);
    unlink(c->path);
    free(c);
}
