/* Helpers shared by the RPC unit tests: loop-until-condition with a deadline,
 * a temporary directory, a small test service. */
#ifndef KVC_RPC_TEST_UTIL_H
#define KVC_RPC_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "rpc.h"
#include "rpc-int.h"
#include "rpc.pb-c.h"

#define M_ECHO   0x6001     /* Ping -> Ping */
#define M_NEVER  0x6002     /* keeps the call; answered at teardown */
#define M_WHO    0x6003     /* Ping -> Ping{data="uid=U pid=P"} */
#define M_FAIL   0x6004     /* error KVC_RPC_E_APP+1 */
#define M_EVENT  0x6005     /* one-way Ping: counted */
#define M_LATER  0x6006     /* Ping -> Ping, replied from a timer after seq ms */

struct svc {
    struct event_base *base;
    int events;
    uint64_t event_sum;
    struct kvc_rpc_call *held[64];
    int n_held;
    int connects, disconnects;
    struct kvc_rpc_conn *last_conn;
    char last_reason[512];
};

struct later {
    struct kvc_rpc_call *call;
    Kvc__Rpc__Ping reply;
    struct event *ev;
};

static void
later_fire(evutil_socket_t fd, short what, void *arg)
{
    struct later *l = arg;
    kvc_rpc_reply(l->call, &l->reply.base);
    event_free(l->ev);
    free(l);
}

static void
h_echo(struct kvc_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
    kvc_rpc_reply(call, req);
}

static void
h_never(struct kvc_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
    struct svc *s = arg;
    if (s->n_held < 64)
        s->held[s->n_held++] = call;
    else
        kvc_rpc_reply_error(call, KVC_RPC_E_CONFLICT, "too many held");
}

static void
h_who(struct kvc_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
    Kvc__Rpc__Ping p = KVC__RPC__PING__INIT;
    char buf[64];
    uid_t uid;
    pid_t pid;
    int r = kvc_rpc_call_peer_cred(call, &uid, &pid, NULL);
    if (r < 0) {
        kvc_rpc_reply_error(call, KVC_RPC_E_PERMISSION, "no peer credentials: %s", strerror(-r));
        return;
    }
    snprintf(buf, sizeof buf, "uid=%u pid=%d", (unsigned)uid, (int)pid);
    p.data.data = (uint8_t *)buf;
    p.data.len = strlen(buf);
    kvc_rpc_reply(call, &p.base);
}

static void
h_fail(struct kvc_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
    const Kvc__Rpc__Ping *p = (const void *)req;
    kvc_rpc_reply_error(call, KVC_RPC_E_APP + 1, "boom %" PRIu64, p->seq);
}

static void
h_event(struct kvc_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
    struct svc *s = arg;
    const Kvc__Rpc__Ping *p = (const void *)req;
    s->events++;
    s->event_sum += p->seq;
    kvc_rpc_reply(call, NULL);
}

static void
h_later(struct kvc_rpc_call *call, const ProtobufCMessage *req, void *arg)
{
    struct svc *s = arg;
    const Kvc__Rpc__Ping *p = (const void *)req;
    struct later *l = calloc(1, sizeof *l);
    struct timeval tv = { 0, (suseconds_t)(p->seq % 1000) * 1000 };
    kvc__rpc__ping__init(&l->reply);
    l->reply.seq = p->seq;
    l->call = call;
    l->ev = evtimer_new(s->base, later_fire, l);
    evtimer_add(l->ev, &tv);
}

static const struct kvc_rpc_method svc_methods[] = {
    { M_ECHO, "Echo", &kvc__rpc__ping__descriptor, &kvc__rpc__ping__descriptor, h_echo },
    { M_NEVER, "Never", &kvc__rpc__ping__descriptor, &kvc__rpc__ping__descriptor, h_never },
    { M_WHO, "Who", NULL, &kvc__rpc__ping__descriptor, h_who },
    { M_FAIL, "Fail", &kvc__rpc__ping__descriptor, NULL, h_fail },
    { M_EVENT, "Event", &kvc__rpc__ping__descriptor, NULL, h_event },
    { M_LATER, "Later", &kvc__rpc__ping__descriptor, &kvc__rpc__ping__descriptor, h_later },
};

static void
svc_on_connect(struct kvc_rpc_conn *c, void *arg)
{
    struct svc *s = arg;
    s->connects++;
    s->last_conn = c;
}

static void
svc_on_disconnect(struct kvc_rpc_conn *c, const char *reason, void *arg)
{
    struct svc *s = arg;
    s->disconnects++;
    if (s->last_conn == c)
        s->last_conn = NULL;
    snprintf(s->last_reason, sizeof s->last_reason, "%s", reason);
}

static struct kvc_rpc_opts
svc_opts(struct svc *s)
{
    struct kvc_rpc_opts o = {
        .methods = svc_methods, .n_methods = KVC_ARRAY_SIZE(svc_methods),
        .handler_arg = s, .on_connect = svc_on_connect,
        .on_disconnect = svc_on_disconnect, .cb_arg = s,
    };
    return o;
}

static void
svc_release(struct svc *s)
{
    int i;
    for (i = 0; i < s->n_held; i++)
        kvc_rpc_reply_error(s->held[i], KVC_RPC_E_CANCELLED, "test over");
    s->n_held = 0;
}

/* ---- loop helpers ----------------------------------------------------*/

static void
wake(evutil_socket_t fd, short what, void *arg)
{
    *(bool *)arg = true;
}

/* Runs BASE until *COUNTER >= WANT or MS pass; returns whether it got there. */
static bool
run_until_count(struct event_base *base, const int *counter, int want, int ms)
{
    bool expired = false;
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    struct event *t = evtimer_new(base, wake, &expired);
    evtimer_add(t, &tv);
    while (*counter < want && !expired)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(t);
    return *counter >= want;
}

static bool
run_until(struct event_base *base, const bool *flag, int ms)
{
    int dummy;
    bool expired = false;
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    struct event *t = evtimer_new(base, wake, &expired);
    (void)dummy;
    evtimer_add(t, &tv);
    while (!*flag && !expired)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(t);
    return *flag;
}

/* Runs BASE for MS (to let events that must NOT happen have their chance). */
static void
run_for(struct event_base *base, int ms)
{
    bool expired = false;
    run_until(base, &expired, ms);
}

/* ---- reply collection ------------------------------------------------*/

struct reply {
    bool done;
    int status;
    char error[512];
    uint64_t seq;
    char data[256];
};

static void
on_reply(int status, const char *error, const ProtobufCMessage *resp, void *arg)
{
    struct reply *r = arg;
    assert_false(r->done);
    r->done = true;
    r->status = status;
    snprintf(r->error, sizeof r->error, "%s", error);
    if (resp && resp->descriptor == &kvc__rpc__ping__descriptor) {
        const Kvc__Rpc__Ping *p = (const void *)resp;
        r->seq = p->seq;
        snprintf(r->data, sizeof r->data, "%.*s", (int)p->data.len, (const char *)p->data.data);
    }
}

static char *
make_tmpdir(void)
{
    const char *t = getenv("TMPDIR");
    char *d;
    if (asprintf(&d, "%s/kvc-rpc-XXXXXX", t && *t ? t : "/tmp") < 0)
        return NULL;
    return mkdtemp(d);
}

static void
rm_tmpdir(char *d)
{
    char cmd[600];
    if (!d)
        return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", d);
    free(d);
}

#endif
