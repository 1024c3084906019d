/* VM leases: the file in a VM's folder (<datastore>/<name>/<name>.lck)
 * that says which host may run the VM.  It is what keeps a VM from ever
 * running on two hosts at once, across HA restarts, network partitions and
 * live migration.  vmx renews it while the guest runs, hostd checks it
 * before a power-on (and renews it for sim VMs), vpxd HA reads it.
 * docs/hosts.md ("Leases") has the design and its reasons.
 *
 * The rules, in the manner of VMware's on-disk locks:
 *   - The holder rewrites the record every duration/5 with a bumped
 *     heartbeat.  Every write is a whole file: a temporary file in the same
 *     folder, fsync, rename over the lease (atomic on local file systems and
 *     NFS; no flock/fcntl lock is trusted across hosts).
 *   - Before each renewal the holder reads the file back.  If it holds a
 *     record the holder did not write (another owner, another generation or
 *     heartbeat, or released), the lease was taken: the holder stops at once
 *     (fencing, KVC_LEASE_LOST / -ESTALE).  If it cannot renew for 3/5 of the
 *     duration (I/O errors, an unreadable file, a stalled process), it stops
 *     too, before any contender may take over.
 *   - A contender takes over a lease of another owner only when it is
 *     expired: the contender saw the very same record (owner, generation,
 *     heartbeat, time) unchanged for longer than the record's duration on
 *     its own monotonic clock, or the record's wall-clock time is more than
 *     two durations old (clocks of hosts sharing a datastore must agree
 *     within one duration; NTP does much better).  A takeover bumps the
 *     generation.
 *   - Ownership changes by contenders (acquire of a free, expired or own
 *     lease) are serialised by a short-lived lock file <lease>.lock made
 *     with link(2), the NFS-safe exclusive create; the holder's own writes
 *     (renew, release, transfer) need no lock: nobody else writes a live
 *     lease.
 *   - An owner is a host uuid.  A lease held by the caller's own owner id
 *     is taken at once (a vmx that was killed, a hostd restarted on the same
 *     host): one host never runs two copies of a VM (vmkd refuses that).
 *
 * Errors: functions return 0 or a negative errno:
 *   -EBUSY     a live lease of another owner (*holder says who)
 *   -ESTALE    the holder lost the lease (another record is there): stop now
 *   -EBADMSG   the lease file is corrupt or truncated (err says what and where)
 *   -EAGAIN    another contender is changing the lease right now: retry
 *   -EINVAL    bad arguments (owner id with odd characters, duration out of range)
 *   other      the file system's errno (ENOENT: no lease file)
 * ERR/ERRLEN, where taken, get a one-line message for any error (may be NULL). */
#ifndef KVC_LEASE_H
#define KVC_LEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KVC_LEASE_DEFAULT_MS 10000u
#define KVC_LEASE_MIN_MS 100u
#define KVC_LEASE_MAX_MS 600000u
#define KVC_LEASE_FILE_MAX 4096         /* a longer file is corrupt */
#define KVC_LEASE_OWNER_MAX 64          /* [A-Za-z0-9._-], a host uuid */
#define KVC_LEASE_NAME_MAX 128          /* printable, for messages */

/* One lease record, as in the file:
 *     kvc-lease 1
 *     owner=<host uuid>            who holds (or last held) it
 *     owner_name=<host name>       for messages ("running on host esx-2")
 *     vm=<VM name>                 for messages
 *     state=held|free
 *     generation=<n>               bumped by every change of ownership
 *     heartbeat=<n>                bumped by every renewal
 *     time_ms=<unix ms>            wall clock of this write
 *     duration_ms=<n>              the holder renews well within this
 *     end
 * Any other shape (missing, repeated or unknown keys, numbers out of
 * range, no "end" line, trailing bytes) is corrupt. */
struct kvc_lease_record {
    char owner[KVC_LEASE_OWNER_MAX];
    char owner_name[KVC_LEASE_NAME_MAX];
    char vm[KVC_LEASE_NAME_MAX];
    bool held;
    uint64_t generation;
    uint64_t heartbeat;
    int64_t time_ms;
    uint32_t duration_ms;
};

/* Text of REC into BUF: its length, or -ENOSPC / -EINVAL (bad fields). */
int kvc_lease_format(const struct kvc_lease_record *rec, char *buf, size_t len);
/* Parse LEN bytes.  -EBADMSG with "line N: ..." in ERR when corrupt. */
int kvc_lease_parse(const char *buf, size_t len, struct kvc_lease_record *rec,
                    char *err, size_t errlen);
/* Read and parse the lease file PATH.  -ENOENT when there is none. */
int kvc_lease_read(const char *path, struct kvc_lease_record *rec, char *err, size_t errlen);

/* What a contender remembers of the record it last saw, so that "unchanged
 * for longer than the duration" can be judged across attempts (hostd keeps
 * one per VM).  Zero-initialise it. */
struct kvc_lease_watch {
    bool valid;
    char owner[KVC_LEASE_OWNER_MAX];
    uint64_t generation, heartbeat;
    int64_t time_ms;
    int64_t since_mono_ms;      /* when this record was first seen */
};

enum kvc_lease_state {
    KVC_LEASE_NONE = 0,         /* no lease file */
    KVC_LEASE_FREE,             /* released */
    KVC_LEASE_MINE,             /* held by the caller's owner id */
    KVC_LEASE_EXPIRED,          /* held by another owner, who stopped renewing */
    KVC_LEASE_LIVE,             /* held by another owner: hands off */
};
const char *kvc_lease_state_name(enum kvc_lease_state);

/* The contender's verdict on REC (NULL: no file) for owner ME at the given
 * clocks; updates W (may be NULL: only the wall-clock rule applies).  For
 * LIVE, *WAIT_MS (may be NULL) says how long until it would expire if it
 * stays unchanged. */
enum kvc_lease_state kvc_lease_judge(const struct kvc_lease_record *rec, const char *me,
                                     struct kvc_lease_watch *w, int64_t now_wall_ms,
                                     int64_t now_mono_ms, int64_t *wait_ms);

/* A held lease (the holder's handle). */
struct kvc_lease;

struct kvc_lease_opts {
    const char *path;           /* the lease file */
    const char *owner;          /* host uuid: [A-Za-z0-9._-], < KVC_LEASE_OWNER_MAX */
    const char *owner_name;     /* host name (may be NULL) */
    const char *vm;             /* VM name (may be NULL) */
    uint32_t duration_ms;       /* 0: KVC_LEASE_DEFAULT_MS */
    struct kvc_lease_watch *watch;  /* the contender's memory, or NULL */
    /* Take it even from a live holder.  Only for a hand-over that has no
     * source process to call kvc_lease_transfer (the sim backend's live
     * migration switch-over); the old holder is fenced at its next renewal. */
    bool force;
};

/* One attempt to take the lease: a new record with generation + 1.  On
 * -EBUSY, *HOLDER (may be NULL) is the live record and ERR names the
 * holder.  On success *OUT is the caller's. */
int kvc_lease_acquire(const struct kvc_lease_opts *, struct kvc_lease **out,
                      struct kvc_lease_record *holder, char *err, size_t errlen);
/* Same, retrying (-EBUSY, -EAGAIN) until it succeeds or MAX_WAIT_MS pass
 * (then the last error).  Blocks: for tools and start-up code only. */
int kvc_lease_acquire_wait(const struct kvc_lease_opts *, uint32_t max_wait_ms,
                           struct kvc_lease **out, struct kvc_lease_record *holder,
                           char *err, size_t errlen);

/* Renew now (call it every kvc_lease_renew_interval_ms()).  0: renewed.
 * -ESTALE: lost; *HOLDER (may be NULL) is the record found, if any; stop
 * the VM now.  Another negative errno: this renewal failed but the lease
 * still counts as held (retry at the next interval); after 3/5 of the
 * duration without a renewal it returns -ESTALE instead. */
int kvc_lease_renew(struct kvc_lease *, struct kvc_lease_record *holder,
                    char *err, size_t errlen);
uint32_t kvc_lease_renew_interval_ms(const struct kvc_lease *);
uint64_t kvc_lease_generation(const struct kvc_lease *);
const char *kvc_lease_path(const struct kvc_lease *);
/* True once renew would return -ESTALE: lost, or handed over. */
bool kvc_lease_lost(const struct kvc_lease *);
/* True once kvc_lease_transfer handed it over (not a loss: do not stop the VM). */
bool kvc_lease_transferred(const struct kvc_lease *);

/* Release (state=free, generation + 1) if still held, and free the handle.
 * Accepts NULL.  Returns 0, -ESTALE (it was not ours any more: nothing
 * written) or an I/O error (the handle is freed anyway). */
int kvc_lease_release(struct kvc_lease *);
/* Free the handle without writing (the lease expires unless re-acquired). */
void kvc_lease_free(struct kvc_lease *);

/* Live migration hand-over, by the current holder at switch-over: one write
 * makes NEW_OWNER (NEW_OWNER_NAME) the holder with generation + 1 and a
 * fresh time, after checking that the caller still holds it (-ESTALE
 * otherwise, nothing written).  On success the handle stops being a holder
 * (renew returns -ESTALE; free it with kvc_lease_free) and *NEW_GENERATION
 * (may be NULL) is what the destination passes to kvc_lease_adopt.  The
 * destination must adopt and renew within the duration.  To hand a lease
 * back (an abort after switch-over), the destination transfers it again. */
int kvc_lease_transfer(struct kvc_lease *, const char *new_owner, const char *new_owner_name,
                       uint64_t *new_generation, char *err, size_t errlen);
/* The destination's side: become the holder of a lease transferred to
 * OPTS->owner with GENERATION.  -ESTALE if the file says otherwise.  Does
 * not write; the first renewal does (renew right away). */
int kvc_lease_adopt(const struct kvc_lease_opts *, uint64_t generation,
                    struct kvc_lease **out, char *err, size_t errlen);

/* For hostd after a vmx it owned died without releasing (forced power-off,
 * crash, failed start): if the file is held by OWNER, mark it free
 * (generation + 1).  0 also when there was nothing to do. */
int kvc_lease_release_owned(const char *path, const char *owner, char *err, size_t errlen);

/* The clocks the lease code judges by (ms): CLOCK_REALTIME, CLOCK_MONOTONIC. */
int64_t kvc_lease_wall_ms(void);
int64_t kvc_lease_mono_ms(void);
/* Tests: replace the clocks (NULL: the real CLOCK_REALTIME / CLOCK_MONOTONIC). */
void kvc_lease_set_clocks(int64_t (*wall_ms)(void), int64_t (*mono_ms)(void));

#endif
