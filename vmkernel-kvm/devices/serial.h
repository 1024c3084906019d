/* 16550A UART (COM1).  Output goes to a ring (for console reads) and to a
 * log file; input is queued and raises the UART's IRQ when the guest has
 * enabled it.  Errors: 0 or -errno. */
#ifndef KVC_VMX_SERIAL_H
#define KVC_VMX_SERIAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "vmkernel-kvm/devices/device.h"
#include "vmkernel-kvm/vmx_state.h"

#define SERIAL_RING_SIZE (64 * 1024)
#define SERIAL_RX_SIZE   4096

struct serial {
    uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
    uint8_t rx[SERIAL_RX_SIZE];
    uint32_t rx_head, rx_len;
    uint8_t ring[SERIAL_RING_SIZE];
    uint64_t ring_total;            /* bytes ever written by the guest */
    int log_fd;                     /* -1: none */
    uint64_t first_byte_ns;         /* CLOCK_MONOTONIC of the first byte, 0 before */
    struct irq_line irq;
    void (*on_line)(void *opaque, const char *line, size_t len);
    void *on_line_opaque;
    char line[256];
    size_t line_len;
};

/* LOG_PATH may be NULL.  Takes no ownership of IRQ's opaque. */
int serial_init(struct serial *, const char *log_path, const struct irq_line *irq);
void serial_destroy(struct serial *);
/* Register on the port-I/O bus at BASE (0x3f8 for COM1). */
int serial_attach(struct serial *, struct bus *, uint16_t base);
/* Console input: returns bytes queued (may be fewer than LEN when full). */
size_t serial_input(struct serial *, const uint8_t *, size_t len);
/* Copy output from absolute offset FROM (0 = start of output) into BUF.
 * Returns bytes copied; *NEXT is the offset to ask for next.  Output older
 * than the ring is skipped. */
size_t serial_output(const struct serial *, uint64_t from, uint8_t *buf, size_t cap, uint64_t *next);

/* The log moves to NEW_PATH (the VM's folder moved): NEW_PATH is created
 * (it must not exist) with everything OLD_PATH, the current log, holds,
 * and the guest's output goes there from now on.  LOCK is the lock the
 * guest's writes hold (vmx's dev_lock): the bulk is copied without it, the
 * rest and the switch under it, so no byte is lost or written twice.
 * *COPIED: bytes carried over.  On error nothing changed (NEW_PATH is
 * removed) and ERR says why.  The old file is left as it is. */
int serial_log_move(struct serial *, const char *old_path, const char *new_path,
                    pthread_mutex_t *lock, uint64_t *copied, char *err, size_t errlen);

void serial_save(const struct serial *, struct sbuf *);
int serial_load(struct serial *, struct sreader *);

#endif
