/* Dummy port: the far end of the cable is a pair of in-memory queues that a
 * test (or the driver program) fills and drains (like OVS's netdev-dummy). */
#include "port.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "ring.h"

#define DUMMY_QUEUE_MAX 65536u

struct frame {
    struct frame *next;
    uint32_t len;
    uint8_t data[];
};

struct queue {
    struct frame *head, *tail;
    size_t n;
};

struct dummy_port {
    struct vs_port up;
    pthread_mutex_t lock;
    struct queue in;            /* injected, for the switch to receive */
    struct queue out;           /* delivered by the switch */
};

static const struct vs_port_class dummy_class;

static struct dummy_port *
dummy_cast(struct vs_port *p)
{
    return p && p->cls == &dummy_class ? (struct dummy_port *)p : NULL;
}

static void
q_push(struct queue *q, struct frame *f)
{
    f->next = NULL;
    if (q->tail)
        q->tail->next = f;
    else
        q->head = f;
    q->tail = f;
    q->n++;
}

static struct frame *
q_pop(struct queue *q)
{
    struct frame *f = q->head;
    if (f) {
        q->head = f->next;
        if (!q->head)
            q->tail = NULL;
        q->n--;
    }
    return f;
}

static void
q_free(struct queue *q)
{
    struct frame *f;
    while ((f = q_pop(q)))
        free(f);
}

static int
dummy_recv(struct vs_port *p, struct vs_pkt *pkts, int max)
{
    struct dummy_port *d = (struct dummy_port *)p;
    int n = 0;
    pthread_mutex_lock(&d->lock);
    while (n < max) {
        struct frame *f = q_pop(&d->in);
        if (!f)
            break;
        memcpy(pkts[n].data, f->data, f->len);      /* inject capped len */
        pkts[n].len = f->len;
        n++;
        free(f);
    }
    pthread_mutex_unlock(&d->lock);
    return n;
}

static int
dummy_send(struct vs_port *p, const uint8_t *frame, uint32_t len,
           const struct vs_tx_meta *m)
{
    struct dummy_port *d = (struct dummy_port *)p;
    uint32_t tlen = len + (m->vlan_tag ? 4 : 0);
    struct frame *f = malloc(sizeof *f + tlen);
    if (!f)
        return VS_DROP_NOSPACE;
    if (m->vlan_tag) {
        memcpy(f->data, frame, 12);
        f->data[12] = 0x81;
        f->data[13] = 0x00;
        f->data[14] = (uint8_t)(m->vlan_tag >> 8);
        f->data[15] = (uint8_t)m->vlan_tag;
        memcpy(f->data + 16, frame + 12, len - 12);
    } else {
        memcpy(f->data, frame, len);
    }
    f->len = tlen;
    pthread_mutex_lock(&d->lock);
    if (d->out.n >= DUMMY_QUEUE_MAX) {
        pthread_mutex_unlock(&d->lock);
        free(f);
        return VS_DROP_NOSPACE;
    }
    q_push(&d->out, f);
    pthread_mutex_unlock(&d->lock);
    return 0;
}

static void
dummy_flush(struct vs_port *p)
{
}

static bool
dummy_prepare_wait(struct vs_port *p)
{
    struct dummy_port *d = (struct dummy_port *)p;
    pthread_mutex_lock(&d->lock);
    bool pending = d->in.n > 0;
    pthread_mutex_unlock(&d->lock);
    return pending;
}

static void
dummy_ack(struct vs_port *p)
{
    kvc_ring_drain(p->fd);
}

static void
dummy_destroy(struct vs_port *p)
{
    struct dummy_port *d = (struct dummy_port *)p;
    if (!d)
        return;
    q_free(&d->in);
    q_free(&d->out);
    if (p->fd >= 0)
        close(p->fd);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

static const struct vs_port_class dummy_class = {
    .type = "dummy",
    .recv = dummy_recv,
    .send = dummy_send,
    .flush = dummy_flush,
    .prepare_wait = dummy_prepare_wait,
    .ack = dummy_ack,
    .destroy = dummy_destroy,
};

int
vs_dummy_create(struct vs_switch *sw, const char *name, const uint8_t *mac,
                struct vs_port **out)
{
    struct dummy_port *d = calloc(1, sizeof *d);
    if (!d)
        return -ENOMEM;
    vs_port_init(&d->up, &dummy_class, sw, name, mac);
    pthread_mutex_init(&d->lock, NULL);
    d->up.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (d->up.fd < 0) {
        int rc = -errno;
        dummy_destroy(&d->up);
        return rc;
    }
    *out = &d->up;
    return 0;
}

int
vs_dummy_inject(struct vs_port *p, const void *frame, size_t len)
{
    struct dummy_port *d = dummy_cast(p);
    if (!d || (!frame && len))
        return -EINVAL;
    /* The switch's buffers hold VS_FRAME_MAX; a longer frame is cut to one
     * byte more than that so the switch still sees and counts it as
     * oversize, as a NIC would report a giant. */
    uint32_t l = len > VS_FRAME_MAX + 1 ? VS_FRAME_MAX + 1 : (uint32_t)len;
    struct frame *f = malloc(sizeof *f + l + 1);
    if (!f)
        return -ENOMEM;
    if (l)
        memcpy(f->data, frame, l);
    f->len = l;
    pthread_mutex_lock(&d->lock);
    if (d->in.n >= DUMMY_QUEUE_MAX) {
        pthread_mutex_unlock(&d->lock);
        free(f);
        return -ENOBUFS;
    }
    q_push(&d->in, f);
    pthread_mutex_unlock(&d->lock);
    kvc_ring_kick(p->fd);
    return 0;
}

int
vs_dummy_recv(struct vs_port *p, void *buf, size_t cap)
{
    struct dummy_port *d = dummy_cast(p);
    if (!d)
        return -EINVAL;
    pthread_mutex_lock(&d->lock);
    struct frame *f = d->out.head;
    int rc;
    if (!f) {
        rc = -EAGAIN;
    } else if (f->len > cap) {
        rc = -EMSGSIZE;
    } else {
        q_pop(&d->out);
        memcpy(buf, f->data, f->len);
        rc = (int)f->len;
        free(f);
    }
    pthread_mutex_unlock(&d->lock);
    return rc;
}

size_t
vs_dummy_pending(struct vs_port *p)
{
    struct dummy_port *d = dummy_cast(p);
    if (!d)
        return 0;
    pthread_mutex_lock(&d->lock);
    size_t n = d->out.n;
    pthread_mutex_unlock(&d->lock);
    return n;
}
