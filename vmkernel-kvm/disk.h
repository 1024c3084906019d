/* A VM's disk: a raw sparse base file plus a tree of delta layers made by
 * snapshots (redirect-on-write).  Format and rules: docs/vmx.md, "Disk
 * snapshots".
 *
 *   <dir>/<base>                 raw sparse file; its size is the capacity
 *   <dir>/<base>.chain           the layer tree (text, absent: no deltas)
 *   <dir>/<stem>-NNNNNN-delta.img   a delta's data: sparse, same size, data
 *                                   at the same offsets as in the base
 *   <dir>/<stem>-NNNNNN-delta.map   header page + allocation bitmap, one
 *                                   bit per 4 KiB cluster
 *
 * The open disk is the path from the chain's top layer down to the base:
 * reads take each cluster from the topmost layer that holds it, writes go
 * to the top layer only.  Bits in a map only ever get set, and only after
 * the data they cover reached the data file (disk_flush: fdatasync data,
 * then write the dirty bitmap pages, fdatasync map), so a crash leaves
 * every layer consistent: a cluster whose bit did not reach the disk reads
 * from the layer below, as before the write.
 *
 * Threading: one thread at a time (vmx holds its device lock).
 * Errors: 0 or -errno; where ERR is given it gets a one-line reason. */
#ifndef KVC_VMX_DISK_H
#define KVC_VMX_DISK_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define DISK_SECTOR       512u
#define DISK_CLUSTER      4096u
#define DISK_NAME_MAX     128u      /* layer names, without folder */
#define DISK_MAX_LAYERS   64u       /* in the tree (chain file) */
#define DISK_MAX_ALIASES  256u
#define DISK_MAP_HDR      4096u     /* the map's header page */
#define DISK_MAP_MAGIC    "KVCDMAP1"
#define DISK_CHAIN_MAGIC  "kvc-disk-chain 1"
/* The base layer's name in the chain file and in snapshots. */
#define DISK_BASE         "-"

struct disk_layer {
    char name[DISK_NAME_MAX];   /* DISK_BASE for the base */
    uint64_t id;                /* random, recorded by snapshots */
    int fd, map_fd;             /* map_fd -1 for the base */
    uint8_t *bitmap;            /* NULL for the base (it holds everything) */
    uint8_t *dirty;             /* one bit per bitmap page not yet written */
    uint64_t allocated;         /* clusters whose bit is set */
};

/* The layer tree as the chain file records it. */
struct disk_chain_layer {
    char name[DISK_NAME_MAX];
    char parent[DISK_NAME_MAX]; /* DISK_BASE or another layer */
    uint64_t id;
};
struct disk_chain_alias {
    char from[DISK_NAME_MAX];   /* merged away... */
    uint64_t from_id;
    char to[DISK_NAME_MAX];     /* ...into this one */
};
struct disk_chain {
    unsigned n, naliases;
    unsigned next;              /* number of the next delta */
    uint64_t base_id;
    char top[DISK_NAME_MAX];
    char merge[DISK_NAME_MAX];  /* a merge of this layer into its parent is
                                 * under way ("": none); finished at open */
    struct disk_chain_layer l[DISK_MAX_LAYERS];
    struct disk_chain_alias a[DISK_MAX_ALIASES];
};

struct disk {
    char dir[PATH_MAX];
    char base[DISK_NAME_MAX];   /* file name of the base in DIR */
    bool readonly;
    bool is_open;
    uint64_t size;              /* bytes, a multiple of DISK_SECTOR */
    uint64_t clusters;
    unsigned n;                 /* layers[0] base .. layers[n-1] top */
    struct disk_layer layers[DISK_MAX_LAYERS];
    struct disk_chain chain;
    uint64_t read_bytes, write_bytes, flushes, cow_clusters;
    uint8_t *bounce;            /* one cluster */
    /* A disk move (disk_mirror.c) is under way: one bit per cluster written
     * since it began, set by disk_write (NULL: no move).  Snapshots,
     * reverts and merges are refused (-EBUSY) meanwhile. */
    uint8_t *move_dirty;
};

/* Open PATH (the base; relative to nothing: give a full path).  READONLY
 * opens every file read-only and refuses writes and snapshots.  A merge
 * the chain file says was under way (vmx died in it) is finished first,
 * unless READONLY.
 *
 * Fault injection for tests: KVC_VMX_FAULT=disk-merge-copied in the
 * environment makes the process exit (status 99) in a merge after the data
 * is copied and before the chain file says so. */
int disk_open(struct disk *, const char *path, bool readonly, char *err, size_t errlen);
/* Flush and close; accepts a disk that was never opened. */
void disk_close(struct disk *);
/* Close and open again from the chain file (another process may have
 * changed it: live migration). */
int disk_reopen(struct disk *, char *err, size_t errlen);

/* LEN bytes at byte offset OFF (both multiples of DISK_SECTOR, inside the
 * disk) to/from the iovecs.  -EINVAL out of range, -EROFS read-only. */
int disk_read(struct disk *, uint64_t off, const struct iovec *, unsigned n, uint64_t len);
int disk_write(struct disk *, uint64_t off, const struct iovec *, unsigned n, uint64_t len);
/* Make every completed write durable (data, then maps). */
int disk_flush(struct disk *);

/* Snapshot: flush, freeze the top layer and put a new empty delta on it.
 * FROZEN/ID name the frozen layer (what a VM snapshot records). */
int disk_snapshot(struct disk *, char frozen[DISK_NAME_MAX], uint64_t *id, char *err, size_t errlen);
/* Undo a disk_snapshot whose VM snapshot could not be written (the new top
 * must still be empty). */
void disk_snapshot_abort(struct disk *, const char *frozen);
/* Go back to the state a snapshot froze: drop the current top (its data is
 * the state being reverted away from) and put a new delta on FROZEN. */
int disk_revert(struct disk *, const char *frozen, uint64_t id, char *err, size_t errlen);

struct disk_merge_info {
    char merged[DISK_NAME_MAX];     /* the layer merged away ("" if none) */
    char into[DISK_NAME_MAX];
    uint64_t clusters;              /* clusters copied */
    bool removed;                   /* the frozen layer itself was dropped */
};
/* The snapshot that froze FROZEN/ID is being deleted: merge its child layer
 * into it (or drop it if it has none).  -EBUSY if it has more than one
 * child (a branch left by a revert: delete that branch's snapshots first). */
int disk_delete_snapshot(struct disk *, const char *frozen, uint64_t id,
                         struct disk_merge_info *, char *err, size_t errlen);
/* Whether disk_delete_snapshot would be refused (same errors), changing
 * nothing: checked before the snapshot file is removed. */
int disk_delete_check(struct disk *, const char *frozen, uint64_t id, char *err, size_t errlen);

/* DST = the LEN bytes of the iovecs SRC starting SKIP bytes in; returns the
 * count of DST entries, 0 if SRC is too short or CAP too small. */
unsigned disk_iov_sub(const struct iovec *src, unsigned n, uint64_t skip, uint64_t len,
                      struct iovec *dst, unsigned cap);

/* Chain file text <-> struct (exposed for tests and the fuzzer).  Parsing
 * is bounded and checks names, parents, cycles and the top. */
int disk_chain_parse(const char *text, size_t len, struct disk_chain *, char *err, size_t errlen);
/* Check a map header page against the disk (size, cluster size). */
int disk_map_header_check(const uint8_t *hdr, size_t len, uint64_t disk_size, uint64_t *id,
                          char *parent, char *err, size_t errlen);

#endif
