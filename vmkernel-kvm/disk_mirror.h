/* Storage migration: move the running VM's disk (every file of its layer
 * tree) to another folder while the guest runs.  Design and crash rules:
 * docs/vmx.md, "Storage migration".
 *
 *   1. checks: a writable or read-only disk, the VM running or paused, no
 *      live migration, no move; the target an existing folder other than
 *      the disk's, holding none of the disk's file names, with room for
 *      the files' allocated bytes (-ENOSPC otherwise)
 *   2. <target>/<base>.moving is created (O_EXCL): a copy with it is
 *      partial; disk_write starts marking clusters (disk.move_dirty)
 *   3. first pass (a thread): every file, sparse (holes stay holes); the
 *      frozen layers without the device lock, the writable top layer in
 *      chunks read under it
 *   4. dirty passes: clusters the guest wrote meanwhile, until few are
 *      left, DISK_MOVE_MAX_ROUNDS, or DISK_MOVE_STUCK_ROUNDS without
 *      progress; then at most DISK_MOVE_SWITCH_MAX may be left (-EAGAIN)
 *   5. switch, with the device lock held (disk I/O waits): flush the
 *      source, copy the last clusters, the top layer's map and the chain
 *      file, fsync every file and the folder, remove the marker (the
 *      commit), reopen the disk from the target; vmx's disk.path follows
 *   6. the lock is released (the guest's I/O goes to the new files), then
 *      the source files are removed
 * Any failure or a cancel before step 5's reopen leaves the VM on the
 * source, unchanged, and removes every file the move created.
 *
 * Threading: the move runs on its own thread; these functions run on the
 * main thread. */
#ifndef KVC_VMX_DISK_MIRROR_H
#define KVC_VMX_DISK_MIRROR_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DISK_MOVE_MAX_ROUNDS    32u
#define DISK_MOVE_STUCK_ROUNDS  4u               /* rounds without fewer dirty clusters */
#define DISK_MOVE_CHUNK         (1024u * 1024)   /* bytes per read in the first pass */
#define DISK_MOVE_BATCH         256u             /* dirty clusters per device-lock hold */
#define DISK_MOVE_SWITCH_LEFT   256u             /* switch once this few are dirty */
#define DISK_MOVE_SWITCH_MAX    4096u            /* after the last round: more fails */

enum disk_move_phase {          /* as DiskMovePhase in proto/vmx.proto */
    DISK_MOVE_NONE = 0,
    DISK_MOVE_COPYING,
    DISK_MOVE_DIRTY,
    DISK_MOVE_SWITCHING,
    DISK_MOVE_COMPLETED,
    DISK_MOVE_FAILED,
    DISK_MOVE_CANCELLED,
};

struct disk_move_status {
    enum disk_move_phase phase;
    char from[PATH_MAX], to[PATH_MAX];
    unsigned percent, rounds, files;
    uint64_t total_bytes, copied_bytes, dirty_clusters, recopied_clusters;
    uint64_t pause_us, total_ms;
    char error[512];
};

struct vmx;

/* Start moving the disk into DEST_DIR; MAX_BPS limits the first pass
 * (0: none; the dirty passes run unthrottled, so that they converge).  -EINVAL (bad target, same folder), -ENOENT,
 * -EEXIST (a file of the disk is there already), -ENOSPC, -EBUSY (a move
 * or migration is under way), -ENODEV (no disk). */
int disk_move_start(struct vmx *, const char *dest_dir, uint64_t max_bps, char *err, size_t errlen);
void disk_move_get_status(struct vmx *, struct disk_move_status *);
/* Ask the move to stop; -ESRCH if none is running.  The status turns
 * CANCELLED once the copy is removed (or COMPLETED if it had switched). */
int disk_move_cancel(struct vmx *);
bool disk_move_active(struct vmx *);
/* Cancel, wait for the thread, free (vmx exit). */
void disk_move_free(struct vmx *);

/* Stream mode: the same file list, passes and dirty tracking, with the
 * bytes going to SINK instead of a folder (a live migration that carries
 * the disk, migrate_disk.c).  FILE indexes the list disk_stream_file
 * gives; OFF/BUF/LEN a piece of that file.  The caller's thread runs the
 * passes; the source's files are only read.
 *   begin     list the files, open them, start marking written clusters
 *             (snapshots and disk moves are refused until end)
 *   passes    first pass and dirty passes while the guest runs
 *   dirty_pass  one more pass over what the guest wrote since
 *   final     vCPUs stopped: flush, the last clusters, the top map and the
 *             chain file whole, under the device lock
 *   end       stop marking, close, free (any time, also on failure) */
struct disk_mirror;
typedef int (*disk_sink_fn)(void *arg, unsigned file, uint64_t off, const void *buf, size_t len);
int disk_stream_begin(struct vmx *, struct disk_mirror **, disk_sink_fn, void *arg,
                      const int *cancel, char *err, size_t errlen);
unsigned disk_stream_nfiles(const struct disk_mirror *);
const char *disk_stream_file(const struct disk_mirror *, unsigned i, uint64_t *size);
const char *disk_stream_base(const struct disk_mirror *, uint64_t *capacity);
int disk_stream_passes(struct disk_mirror *);
int disk_stream_dirty_pass(struct disk_mirror *);
int disk_stream_final(struct disk_mirror *);
void disk_stream_progress(struct disk_mirror *, uint64_t *total, uint64_t *sent);
void disk_stream_error(struct disk_mirror *, char *buf, size_t len);
void disk_stream_end(struct disk_mirror *);

#endif
