/* The tools device (see tools.h). */
#include <string.h>
#include <time.h>

#include "lib/log.h"
#include "vmkernel-kvm/devices/tools.h"

KVC_LOG_MODULE(tools);

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void cfg_read(void *opaque, uint64_t off, uint8_t *data, unsigned len)
{
    struct tools *t = opaque;
    uint32_t v = 0;
    switch (off + 0x100) {
    case KVC_TOOLS_HEARTBEAT: v = (uint32_t)t->heartbeats; break;
    case KVC_TOOLS_HOST_REQUEST: v = t->host_request; break;
    case KVC_TOOLS_WL_KIND: v = t->wl_kind; break;
    default: v = 0;
    }
    le_put(data, len, v);
}

static void str_append(struct tools *t, uint32_t w)
{
    char *s = t->str_sel == 1 ? t->os_name : t->str_sel == 2 ? t->ip : NULL;
    if (!s)
        return;
    for (int i = 0; i < 4; i++) {
        char c = (char)(w >> (8 * i));
        if (!c || t->str_len >= KVC_TOOLS_STR_MAX)
            break;
        /* Keep it printable: it ends up in logs and RPC replies. */
        s[t->str_len++] = (c >= 0x20 && c < 0x7f) ? c : '?';
        s[t->str_len] = 0;
    }
}

static void cfg_write(void *opaque, uint64_t off, const uint8_t *data, unsigned len)
{
    struct tools *t = opaque;
    if (len != 4)
        return;
    uint32_t v = (uint32_t)le_get(data, 4);
    switch (off + 0x100) {
    case KVC_TOOLS_HEARTBEAT:
        t->heartbeats++;
        t->last_heartbeat_ns = now_ns();
        break;
    case KVC_TOOLS_GUEST_ACTION:
        if (v == KVC_TOOLS_ACT_ACK) {
            t->host_request = KVC_TOOLS_REQ_NONE;
        } else if ((v == KVC_TOOLS_ACT_POWEROFF || v == KVC_TOOLS_ACT_REBOOT) && t->on_action) {
            t->on_action(t->on_action_opaque, v);
        }
        break;
    case KVC_TOOLS_WL_KIND: t->wl_kind = v < KVC_WL_COUNT_ ? v : KVC_WL_COUNT_; break;
    case KVC_TOOLS_WL_COUNTER_LO: t->pend_lo_counter = v; break;
    case KVC_TOOLS_WL_COUNTER_HI: t->pend_hi_counter = v; break;
    case KVC_TOOLS_WL_SUM_LO: t->pend_lo_sum = v; break;
    case KVC_TOOLS_WL_SUM_HI:
        t->wl_counter = (uint64_t)t->pend_hi_counter << 32 | t->pend_lo_counter;
        t->wl_sum = (uint64_t)v << 32 | t->pend_lo_sum;
        t->state_updates++;
        break;
    case KVC_TOOLS_STR_SEL:
        t->str_sel = v;
        t->str_len = 0;
        if (v == 1)
            t->os_name[0] = 0;
        else if (v == 2)
            t->ip[0] = 0;
        break;
    case KVC_TOOLS_STR_DATA:
        str_append(t, v);
        break;
    }
}

static void tools_save(void *opaque, struct sbuf *b)
{
    struct tools *t = opaque;
    sbuf_u64(b, t->heartbeats);
    sbuf_u32(b, t->host_request);
    sbuf_u32(b, t->wl_kind);
    sbuf_u64(b, t->wl_counter);
    sbuf_u64(b, t->wl_sum);
    sbuf_u32(b, t->pend_lo_counter);
    sbuf_u32(b, t->pend_hi_counter);
    sbuf_u32(b, t->pend_lo_sum);
    sbuf_u32(b, t->str_sel);
    sbuf_blob(b, t->os_name, strlen(t->os_name));
    sbuf_blob(b, t->ip, strlen(t->ip));
}

static int tools_load(void *opaque, struct sreader *r)
{
    struct tools *t = opaque;
    t->heartbeats = sreader_u64(r);
    t->host_request = sreader_u32(r);
    t->wl_kind = sreader_u32(r);
    t->wl_counter = sreader_u64(r);
    t->wl_sum = sreader_u64(r);
    t->pend_lo_counter = sreader_u32(r);
    t->pend_hi_counter = sreader_u32(r);
    t->pend_lo_sum = sreader_u32(r);
    t->str_sel = sreader_u32(r);
    memset(t->os_name, 0, sizeof(t->os_name));
    memset(t->ip, 0, sizeof(t->ip));
    sreader_blob(r, t->os_name, KVC_TOOLS_STR_MAX);
    sreader_blob(r, t->ip, KVC_TOOLS_STR_MAX);
    t->str_len = 0;
    for (char *s = t->os_name; *s; s++)
        if (*s < 0x20 || *s >= 0x7f) *s = '?';
    for (char *s = t->ip; *s; s++)
        if (*s < 0x20 || *s >= 0x7f) *s = '?';
    /* A restored guest gets a fresh grace period before it counts as hung. */
    t->last_heartbeat_ns = t->heartbeats ? now_ns() : 0;
    return r->err;
}

static const struct virtio_dev_ops tools_ops = {
    .name = "tools",
    .device_id = KVC_VIRTIO_ID_TOOLS,
    .num_queues = 0,
    .config_read = cfg_read,
    .config_write = cfg_write,
    .save = tools_save,
    .load = tools_load,
};

void tools_init(struct tools *t, struct guest_mem *mem, const struct irq_line *irq)
{
    memset(t, 0, sizeof(*t));
    virtio_mmio_init(&t->dev, &tools_ops, t, mem, irq);
}

int64_t tools_heartbeat_age_ms(const struct tools *t, uint64_t now)
{
    if (!t->last_heartbeat_ns)
        return -1;
    return now > t->last_heartbeat_ns ? (int64_t)((now - t->last_heartbeat_ns) / 1000000) : 0;
}

void tools_request(struct tools *t, uint32_t req)
{
    t->host_request = req;
    virtio_mmio_config_changed(&t->dev);
}
