/* Live migration that carries the disk (a destination that shares no
 * storage with the source): the destination's side.  Records (migrate.h):
 *
 *   DISK_BEGIN  u32 files, u64 capacity, u32 n, n bytes base name
 *   DISK_FILE   arg = index (0, 1, ... in order; 0 is the base):
 *               u64 size, then the file name (rest of the record)
 *   DISK_DATA   arg = index: u64 offset, then 1..1 MiB of the file
 *   DISK_END    (empty) every file is complete: fsync, open the disk
 *
 * The destination vmx runs with --incoming-disk: its disk.path is a new,
 * empty base of the same capacity and name (the placeholder hostd made);
 * the stream replaces it and adds the other layer files beside it.  Every
 * record is checked before it is acted on: names (the base, its chain
 * file, "*-delta.img" and "*-delta.map" only: nothing else of the folder,
 * nothing outside it), sizes (data files the disk's capacity, maps the
 * size of a bitmap, the chain at most 1 MiB), every write inside its file.
 * On failure the files this side created are removed (the placeholder is
 * left to hostd).
 *
 * Errors: 0 or -errno (-EPROTO for a bad record), ERR says why. */
#ifndef KVC_VMX_MIGRATE_DISK_H
#define KVC_VMX_MIGRATE_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vmx;
struct disk_recv;

int disk_recv_begin(struct vmx *, struct disk_recv **, const uint8_t *body, size_t len,
                    char *err, size_t errlen);
int disk_recv_file(struct disk_recv *, uint32_t idx, const uint8_t *body, size_t len,
                   char *err, size_t errlen);
int disk_recv_data(struct disk_recv *, uint32_t idx, uint64_t off, const void *buf, size_t len,
                   char *err, size_t errlen);
int disk_recv_end(struct disk_recv *, char *err, size_t errlen);
/* Make what arrived so far durable (called once the first pass is over,
 * while the guest still runs on the source: DISK_END's fsync is then
 * short). */
int disk_recv_flush(struct disk_recv *, char *err, size_t errlen);
uint64_t disk_recv_bytes(const struct disk_recv *);
bool disk_recv_complete(const struct disk_recv *);
/* FAILED: remove the files this side created. */
void disk_recv_free(struct disk_recv *, bool failed);

#endif
