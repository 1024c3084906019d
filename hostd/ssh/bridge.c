/* Work handed from server threads to hostd's loop thread (see ssh.h).
 *
 * A job is queued under the mutex and a byte is written to a pipe; the
 * loop's read event on the pipe runs every queued job and wakes the
 * waiters.  A pipe rather than event_active() from another thread keeps
 * hostd free of libevent's global threading setup. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>

#include "hostd/ssh/ssh.h"

struct job {
    struct job *next;
    void (*fn)(void *);
    void *arg;
    int result;                 /* 1 while queued, 0 done, -ESHUTDOWN */
};

struct hostd_bridge {
    pthread_mutex_t mu;
    pthread_cond_t done;
    struct job *head, **tail;
    bool stopping;
    int pipe[2];
    struct event *ev;
};

static void
on_wake(evutil_socket_t fd, short what, void *arg)
{
    struct hostd_bridge *b = arg;
    char buf[64];

    while (read(fd, buf, sizeof buf) > 0)
        ;
    pthread_mutex_lock(&b->mu);
    while (b->head) {
        struct job *j = b->head;
        b->head = j->next;
        if (!b->head)
            b->tail = &b->head;
        pthread_mutex_unlock(&b->mu);
        j->fn(j->arg);
        pthread_mutex_lock(&b->mu);
        j->result = 0;
        pthread_cond_broadcast(&b->done);
    }
    pthread_mutex_unlock(&b->mu);
}

int
hostd_bridge_new(struct event_base *base, struct hostd_bridge **out)
{
    struct hostd_bridge *b = calloc(1, sizeof *b);

    if (!b)
        return -ENOMEM;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->done, NULL);
    b->tail = &b->head;
    if (pipe2(b->pipe, O_CLOEXEC | O_NONBLOCK)) {
        int rc = -errno;
        b->pipe[0] = b->pipe[1] = -1;
        hostd_bridge_free(b);
        return rc;
    }
    b->ev = event_new(base, b->pipe[0], EV_READ | EV_PERSIST, on_wake, b);
    if (!b->ev || event_add(b->ev, NULL)) {
        hostd_bridge_free(b);
        return -ENOMEM;
    }
    *out = b;
    return 0;
}

int
hostd_bridge_run(struct hostd_bridge *b, void (*fn)(void *), void *arg)
{
    struct job j = { .fn = fn, .arg = arg, .result = 1 };
    int rc;

    pthread_mutex_lock(&b->mu);
    if (b->stopping) {
        pthread_mutex_unlock(&b->mu);
        return -ESHUTDOWN;
    }
    *b->tail = &j;
    b->tail = &j.next;
    pthread_mutex_unlock(&b->mu);
    /* A full pipe already holds a wake-up: nothing lost. */
    if (write(b->pipe[1], "", 1) < 0 && errno != EAGAIN) {
        /* Cannot happen while the read end is open; the loop still sees
         * the job on its next wake-up. */
    }
    pthread_mutex_lock(&b->mu);
    while (j.result == 1)
        pthread_cond_wait(&b->done, &b->mu);
    rc = j.result;
    pthread_mutex_unlock(&b->mu);
    return rc;
}

void
hostd_bridge_shutdown(struct hostd_bridge *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->mu);
    b->stopping = true;
    while (b->head) {
        struct job *j = b->head;
        b->head = j->next;
        j->result = -ESHUTDOWN;
    }
    b->tail = &b->head;
    pthread_cond_broadcast(&b->done);
    pthread_mutex_unlock(&b->mu);
}

void
hostd_bridge_free(struct hostd_bridge *b)
{
    if (!b)
        return;
    hostd_bridge_shutdown(b);
    if (b->ev)
        event_free(b->ev);
    if (b->pipe[0] >= 0)
        close(b->pipe[0]);
    if (b->pipe[1] >= 0)
        close(b->pipe[1]);
    pthread_cond_destroy(&b->done);
    pthread_mutex_destroy(&b->mu);
    free(b);
}
