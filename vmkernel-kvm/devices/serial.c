/* 16550A UART (see serial.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "vmkernel-kvm/devices/serial.h"
#include "vmkernel-kvm/vmx_fs.h"

KVC_LOG_MODULE(serial);

#define LSR_DR   0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define IER_RDA  0x01
#define IER_THRE 0x02
#define LCR_DLAB 0x80
#define MCR_LOOP 0x10

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void update_irq(struct serial *s)
{
    irq_set(&s->irq, (s->ier & IER_RDA) && s->rx_len ? 1 : 0);
    irq_set(&s->irq, 0);    /* edge: the IOAPIC pin is programmed edge-triggered */
}

static void out_byte(struct serial *s, uint8_t c)
{
    if (!s->first_byte_ns)
        s->first_byte_ns = now_ns();
    s->ring[s->ring_total % SERIAL_RING_SIZE] = c;
    s->ring_total++;
    if (s->log_fd >= 0 && write(s->log_fd, &c, 1) < 0) {
        static struct kvc_ratelimit rl = KVC_RATELIMIT_INIT(1, 60);
        kvc_warn_rl(&rl, "serial log write: %s", strerror(errno));
    }
    if (c == '\n') {
        if (s->on_line)
            s->on_line(s->on_line_opaque, s->line, s->line_len);
        s->line_len = 0;
    } else if (s->line_len < sizeof(s->line) - 1) {
        s->line[s->line_len++] = (char)c;
    }
}

static uint8_t iir(const struct serial *s)
{
    if ((s->ier & IER_RDA) && s->rx_len)
        return 0x04 | 0xc0;
    if (s->ier & IER_THRE)
        return 0x02 | 0xc0;
    return 0x01 | 0xc0;
}

static void serial_read(void *opaque, uint64_t off, uint8_t *data, unsigned len)
{
    struct serial *s = opaque;
    uint8_t v = 0xff;
    memset(data, 0xff, len);
    switch (off) {
    case 0:
        if (s->lcr & LCR_DLAB) {
            v = s->dll;
        } else if (s->rx_len) {
            v = s->rx[s->rx_head];
            s->rx_head = (s->rx_head + 1) % SERIAL_RX_SIZE;
            s->rx_len--;
        } else {
            v = 0;
        }
        break;
    case 1: v = (s->lcr & LCR_DLAB) ? s->dlm : s->ier; break;
    case 2: v = iir(s); break;
    case 3: v = s->lcr; break;
    case 4: v = s->mcr; break;
    case 5: v = LSR_THRE | LSR_TEMT | (s->rx_len ? LSR_DR : 0); break;
    case 6: v = 0xb0; break;    /* DCD, DSR, CTS */
    case 7: v = s->scr; break;
    }
    data[0] = v;
}

static void serial_write_reg(void *opaque, uint64_t off, const uint8_t *data, unsigned len)
{
    struct serial *s = opaque;
    uint8_t v = data[0];
    switch (off) {
    case 0:
        if (s->lcr & LCR_DLAB)
            s->dll = v;
        else if (s->mcr & MCR_LOOP)
            serial_input(s, &v, 1);
        else
            out_byte(s, v);
        break;
    case 1:
        if (s->lcr & LCR_DLAB) {
            s->dlm = v;
        } else {
            s->ier = v & 0x0f;
            update_irq(s);
        }
        break;
    case 2: s->fcr = v; if (v & 2) s->rx_len = 0; break;
    case 3: s->lcr = v; break;
    case 4: s->mcr = v & 0x1f; break;
    case 7: s->scr = v; break;
    }
}

int serial_init(struct serial *s, const char *log_path, const struct irq_line *irq)
{
    memset(s, 0, sizeof(*s));
    s->log_fd = -1;
    s->lcr = 0x03;
    if (irq)
        s->irq = *irq;
    if (log_path) {
        s->log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (s->log_fd < 0)
            return -errno;
    }
    return 0;
}

void serial_destroy(struct serial *s)
{
    if (!s)
        return;
    if (s->log_fd >= 0)
        close(s->log_fd);
    s->log_fd = -1;
}

int serial_log_move(struct serial *s, const char *old_path, const char *new_path,
                    pthread_mutex_t *lock, uint64_t *copied, char *err, size_t errlen)
{
    uint64_t off = 0;
    int rc = 0, in = -1, out = -1;
    if (s->log_fd < 0) {
        snprintf(err, errlen, "the serial port has no log");
        return -ENOENT;
    }
    if ((in = open(old_path, O_RDONLY | O_CLOEXEC)) < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", old_path, strerror(errno));
        return rc;
    }
    /* The log the guest writes to must be this file, or the copy would
     * carry another file's bytes. */
    struct stat a, b;
    if (fstat(in, &a) < 0 || fstat(s->log_fd, &b) < 0 || a.st_dev != b.st_dev
        || a.st_ino != b.st_ino) {
        snprintf(err, errlen, "%s is not the serial log vmx writes (replaced or removed?)",
                 old_path);
        close(in);
        return -ESTALE;
    }
    if ((out = open(new_path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0640)) < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", new_path, strerror(errno));
        close(in);
        return rc;
    }
    /* Most of it without the lock (the guest keeps writing); the last
     * bytes and the switch with it (the guest's next byte waits). */
    if ((rc = vmx_copy_tail(in, out, &off)) < 0) {
        snprintf(err, errlen, "copying %s to %s: %s", old_path, new_path, strerror(-rc));
        goto fail;
    }
    pthread_mutex_lock(lock);
    rc = vmx_copy_tail(in, out, &off);
    if (!rc && fsync(out) < 0)
        rc = -errno;
    if (!rc) {
        close(s->log_fd);
        s->log_fd = out;
        out = -1;
    }
    pthread_mutex_unlock(lock);
    if (rc) {
        snprintf(err, errlen, "copying %s to %s: %s", old_path, new_path, strerror(-rc));
        goto fail;
    }
    close(in);
    *copied = off;
    return 0;
fail:
    close(in);
    close(out);
    unlink(new_path);
    return rc;
}

int serial_attach(struct serial *s, struct bus *b, uint16_t base)
{
    struct bus_dev d = {
        .name = "serial", .base = base, .len = 8, .opaque = s,
        .read = serial_read, .write = serial_write_reg,
    };
    return bus_register(b, &d);
}

size_t serial_input(struct serial *s, const uint8_t *d, size_t len)
{
    size_t n = 0;
    while (n < len && s->rx_len < SERIAL_RX_SIZE) {
        s->rx[(s->rx_head + s->rx_len) % SERIAL_RX_SIZE] = d[n++];
        s->rx_len++;
    }
    if (n)
        update_irq(s);
    return n;
}

size_t serial_output(const struct serial *s, uint64_t from, uint8_t *buf, size_t cap, uint64_t *next)
{
    uint64_t oldest = s->ring_total > SERIAL_RING_SIZE ? s->ring_total - SERIAL_RING_SIZE : 0;
    if (from < oldest)
        from = oldest;
    if (from > s->ring_total)
        from = s->ring_total;
    size_t n = 0;
    while (from + n < s->ring_total && n < cap) {
        buf[n] = s->ring[(from + n) % SERIAL_RING_SIZE];
        n++;
    }
    *next = from + n;
    return n;
}

void serial_save(const struct serial *s, struct sbuf *b)
{
    uint8_t regs[7] = { s->ier, s->lcr, s->mcr, s->scr, s->dll, s->dlm, s->fcr };
    sbuf_put(b, regs, sizeof(regs));
    sbuf_u32(b, s->rx_len);
    for (uint32_t i = 0; i < s->rx_len; i++)
        sbuf_u8(b, s->rx[(s->rx_head + i) % SERIAL_RX_SIZE]);
}

int serial_load(struct serial *s, struct sreader *r)
{
    uint8_t regs[7];
    sreader_get(r, regs, sizeof(regs));
    uint32_t n = sreader_u32(r);
    if (r->err || n > SERIAL_RX_SIZE)
        return -EINVAL;
    s->ier = regs[0] & 0x0f;
    s->lcr = regs[1];
    s->mcr = regs[2] & 0x1f;
    s->scr = regs[3];
    s->dll = regs[4];
    s->dlm = regs[5];
    s->fcr = regs[6];
    s->rx_head = 0;
    s->rx_len = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint8_t c = sreader_u8(r);
        s->rx[s->rx_len++] = c;
    }
    return r->err;
}
