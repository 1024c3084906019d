/* Serialization of VM state, shared by snapshots and live migration.
 *
 * A state stream is a sequence of sections:
 *     u32 type | u32 instance | u64 length | length bytes
 * all little-endian.  Each device writes its own section with the sbuf
 * writer below and reads it back with the sreader, which never reads past
 * the section (an underrun sets .err and yields zeros), so a truncated or
 * hostile file cannot make a loader read out of bounds. */
#ifndef KVC_VMX_STATE_H
#define KVC_VMX_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sbuf {
    uint8_t *p;
    size_t len, cap;
    int err;                /* -ENOMEM once an allocation failed */
};

void sbuf_init(struct sbuf *);
void sbuf_free(struct sbuf *);
void sbuf_put(struct sbuf *, const void *, size_t);
void sbuf_u8(struct sbuf *, uint8_t);
void sbuf_u16(struct sbuf *, uint16_t);
void sbuf_u32(struct sbuf *, uint32_t);
void sbuf_u64(struct sbuf *, uint64_t);
/* Length-prefixed (u32) bytes. */
void sbuf_blob(struct sbuf *, const void *, size_t);

struct sreader {
    const uint8_t *p;
    size_t len, off;
    int err;                /* -EINVAL after any underrun */
};

void sreader_init(struct sreader *, const void *, size_t);
void sreader_get(struct sreader *, void *, size_t);
uint8_t sreader_u8(struct sreader *);
uint16_t sreader_u16(struct sreader *);
uint32_t sreader_u32(struct sreader *);
uint64_t sreader_u64(struct sreader *);
/* A u32-length-prefixed blob: copies at most CAP bytes into BUF, returns the
 * length; a blob longer than CAP is an error. */
size_t sreader_blob(struct sreader *, void *buf, size_t cap);

/* Section types. */
enum vmx_state_section {
    VMX_ST_HEADER = 1,      /* magic, version, memory size, vCPU count */
    VMX_ST_MEMORY = 2,      /* runs of non-zero pages: u64 gpa, u32 pages, data */
    VMX_ST_VCPU = 3,        /* instance = vCPU index */
    VMX_ST_IRQCHIP = 4,
    VMX_ST_CLOCK = 5,
    VMX_ST_SERIAL = 16,
    VMX_ST_TOOLS = 17,
    VMX_ST_VIRTIO = 18,     /* instance = virtio-mmio slot */
    VMX_ST_DISK = 19,       /* snapshots only: the disk layer the snapshot froze */
    VMX_ST_END = 0xffff,
};

#define VMX_STATE_MAGIC   0x50414e5343564b00ull     /* "\0KVCSNAP" */
#define VMX_STATE_VERSION 1u

#endif
