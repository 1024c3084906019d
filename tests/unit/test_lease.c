/* lib/lease: the file format (every corruption and truncation refused with
 * a message), the contender's judgement, and the holder's life on a real
 * folder with test clocks: acquire, renew, release, takeover after expiry,
 * fencing, hand-over for migration, the contenders' lock file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/lease.h"

static int64_t t_wall = 1700000000000, t_mono = 1000;
static int64_t fake_wall(void) { return t_wall; }
static int64_t fake_mono(void) { return t_mono; }
static void advance(int64_t ms) { t_wall += ms; t_mono += ms; }

#define A "host-a-0001"
#define B "host-b-0002"
#define C "host-c-0003"

struct fx {
    char dir[PATH_MAX];
    char path[PATH_MAX + 32];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/kvc-test-lease-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/vm1.lck", f->dir);
    kvc_lease_set_clocks(fake_wall, fake_mono);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        return -1;
    kvc_lease_set_clocks(NULL, NULL);
    free(f);
    return 0;
}

static struct kvc_lease_opts opts(const struct fx *f, const char *owner, struct kvc_lease_watch *w)
{
    struct kvc_lease_opts o = {
        .path = f->path, .owner = owner, .owner_name = owner[5] == 'a' ? "esx-a" : "esx-b",
        .vm = "vm1", .duration_ms = 1000, .watch = w,
    };
    return o;
}

static void write_file(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static const struct kvc_lease_record sample = {
    .owner = A, .owner_name = "esx-a", .vm = "vm1", .held = true,
    .generation = 7, .heartbeat = 42, .time_ms = 1700000000123, .duration_ms = 1000,
};

/* ---- format ---------------------------------------------------------------- */

static void test_format_roundtrip(void **state)
{
    (void)state;
    char buf[KVC_LEASE_FILE_MAX], err[256];
    struct kvc_lease_record r;
    int n = kvc_lease_format(&sample, buf, sizeof(buf));
    assert_true(n > 0);
    assert_non_null(strstr(buf, "owner=" A "\n"));
    assert_non_null(strstr(buf, "generation=7\nheartbeat=42\n"));
    assert_int_equal(kvc_lease_parse(buf, (size_t)n, &r, err, sizeof(err)), 0);
    assert_memory_equal(&r, &sample, sizeof(r));
    /* Bad fields are not written. */
    struct kvc_lease_record bad = sample;
    strcpy(bad.owner, "has space");
    assert_int_equal(kvc_lease_format(&bad, buf, sizeof(buf)), -EINVAL);
    bad = sample;
    strcpy(bad.owner_name, "two\nlines");
    assert_int_equal(kvc_lease_format(&bad, buf, sizeof(buf)), -EINVAL);
    bad = sample;
    bad.duration_ms = 5;
    assert_int_equal(kvc_lease_format(&bad, buf, sizeof(buf)), -EINVAL);
    assert_int_equal(kvc_lease_format(&sample, buf, 20), -ENOSPC);
}

/* Every prefix of a good file is refused with a message, and so is every
 * single-byte change to a value's digit or the structure. */
static void test_truncated_and_flipped(void **state)
{
    (void)state;
    char buf[KVC_LEASE_FILE_MAX], copy[KVC_LEASE_FILE_MAX], err[256];
    struct kvc_lease_record r;
    int n = kvc_lease_format(&sample, buf, sizeof(buf));
    for (int i = 0; i < n; i++) {
        err[0] = 0;
        assert_int_equal(kvc_lease_parse(buf, (size_t)i, &r, err, sizeof(err)), -EBADMSG);
        assert_true(err[0] != 0);
    }
    /* Structure bytes: '=', '\n', letters of keys, the magic. */
    for (int i = 0; i < n; i++) {
        if (buf[i] != '=' && buf[i] != '\n' && i > 11)
            continue;
        memcpy(copy, buf, (size_t)n);
        copy[i] = buf[i] == 'x' ? 'y' : 'x';
        err[0] = 0;
        assert_int_equal(kvc_lease_parse(copy, (size_t)n, &r, err, sizeof(err)), -EBADMSG);
        assert_true(err[0] != 0);
    }
    /* Trailing garbage after "end". */
    memcpy(copy, buf, (size_t)n);
    memcpy(copy + n, "x\n", 2);
    assert_int_equal(kvc_lease_parse(copy, (size_t)n + 2, &r, err, sizeof(err)), -EBADMSG);
    assert_non_null(strstr(err, "after 'end'"));
}

static void test_bad_files(void **state)
{
    (void)state;
    static const struct { const char *text, *want; } cases[] = {
        { "", "empty" },
        { "hello\n", "not a lease file" },
        { "kvc-lease 2\n", "unsupported version" },
        { "kvc-lease 1\nend\n", "missing" },
        { "kvc-lease 1\nowner=a\nowner=b\n", "repeated" },
        { "kvc-lease 1\ncolour=blue\n", "unknown key" },
        { "kvc-lease 1\nownerA\n", "key=value" },
        { "kvc-lease 1\ngeneration=-1\n", "generation" },
        { "kvc-lease 1\ngeneration=18446744073709551616\n", "generation" },
        { "kvc-lease 1\ngeneration=007\n", "generation" },
        { "kvc-lease 1\ntime_ms=9223372036854775808\n", "time_ms" },
        { "kvc-lease 1\nduration_ms=99\n", "duration_ms" },
        { "kvc-lease 1\nduration_ms=600001\n", "duration_ms" },
        { "kvc-lease 1\nstate=maybe\n", "state" },
        { "kvc-lease 1\nowner=a b\n", "owner" },
        { "kvc-lease 1\nowner=\n", "owner" },
        { "kvc-lease 1\nvm=\x01\n", "vm" },
    };
    char err[256];
    struct kvc_lease_record r;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err[0] = 0;
        assert_int_equal(kvc_lease_parse(cases[i].text, strlen(cases[i].text), &r, err, sizeof(err)),
                         -EBADMSG);
        if (!strstr(err, cases[i].want))
            fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].want);
    }
    char nul[] = "kvc-lease 1\n\0\n";
    assert_int_equal(kvc_lease_parse(nul, sizeof(nul) - 1, &r, err, sizeof(err)), -EBADMSG);
    assert_non_null(strstr(err, "NUL"));
    char *big = malloc(KVC_LEASE_FILE_MAX + 10);
    memset(big, 'a', KVC_LEASE_FILE_MAX + 10);
    assert_int_equal(kvc_lease_parse(big, KVC_LEASE_FILE_MAX + 10, &r, err, sizeof(err)), -EBADMSG);
    assert_non_null(strstr(err, "longer than"));
    free(big);
    /* NULL err buffers are fine. */
    assert_int_equal(kvc_lease_parse("x", 1, &r, NULL, 0), -EBADMSG);
}

/* ---- the contender's judgement ------------------------------------------- */

static void test_judge(void **state)
{
    (void)state;
    struct kvc_lease_record r = sample;
    struct kvc_lease_watch w = { 0 };
    int64_t wall = r.time_ms, mono = 5000, wait = -1;

    assert_int_equal(kvc_lease_judge(NULL, B, &w, wall, mono, &wait), KVC_LEASE_NONE);
    assert_int_equal(kvc_lease_judge(&r, A, &w, wall, mono, &wait), KVC_LEASE_MINE);
    r.held = false;
    assert_int_equal(kvc_lease_judge(&r, B, &w, wall, mono, &wait), KVC_LEASE_FREE);
    r.held = true;
    /* First sight: live for one duration on our clock. */
    assert_int_equal(kvc_lease_judge(&r, B, &w, wall, mono, &wait), KVC_LEASE_LIVE);
    assert_int_equal(wait, 1001);
    /* Unchanged, but not for longer than the duration yet. */
    assert_int_equal(kvc_lease_judge(&r, B, &w, wall + 1000, mono + 1000, &wait), KVC_LEASE_LIVE);
    assert_int_equal(wait, 1);
    /* A renewal resets the watch. */
    r.heartbeat++;
    r.time_ms += 900;
    assert_int_equal(kvc_lease_judge(&r, B, &w, wall + 1000, mono + 1000, &wait), KVC_LEASE_LIVE);
    assert_int_equal(wait, 1001);
    assert_int_equal(kvc_lease_judge(&r, B, &w, wall + 1500, mono + 1500, &wait), KVC_LEASE_LIVE);
    /* Unchanged for longer than the duration on our clock: expired, even
     * if the writer's clock runs far ahead of ours. */
    r.time_ms += 3600000;
    w.valid = false;
    assert_int_equal(kvc_lease_judge(&r, B, &w, wall, mono, &wait), KVC_LEASE_LIVE);
    assert_int_equal(kvc_lease_judge(&r, B, &w, wall + 1001, mono + 1001, &wait), KVC_LEASE_EXPIRED);
    /* Without a watch, only the wall clock: two durations old. */
    r = sample;
    assert_int_equal(kvc_lease_judge(&r, B, NULL, r.time_ms + 1999, 0, &wait), KVC_LEASE_LIVE);
    assert_int_equal(wait, 1);
    assert_int_equal(kvc_lease_judge(&r, B, NULL, r.time_ms + 2000, 0, &wait), KVC_LEASE_EXPIRED);
    /* A clock behind the writer's does not shorten anything. */
    assert_int_equal(kvc_lease_judge(&r, B, NULL, r.time_ms - 50000, 0, NULL), KVC_LEASE_LIVE);
    assert_string_equal(kvc_lease_state_name(KVC_LEASE_EXPIRED), "expired");
}

/* ---- holder and contenders on a real folder ------------------------------ */

static void test_acquire_renew_release(void **state)
{
    struct fx *f = *state;
    struct kvc_lease_opts oa = opts(f, A, NULL);
    struct kvc_lease *l = NULL;
    struct kvc_lease_record r;
    char err[512];

    assert_int_equal(kvc_lease_acquire(&oa, &l, NULL, err, sizeof(err)), 0);
    assert_int_equal(kvc_lease_generation(l), 1);
    assert_int_equal(kvc_lease_renew_interval_ms(l), 200);
    assert_string_equal(kvc_lease_path(l), f->path);
    assert_int_equal(kvc_lease_read(f->path, &r, err, sizeof(err)), 0);
    assert_true(r.held);
    assert_string_equal(r.owner, A);
    assert_string_equal(r.owner_name, "esx-a");
    assert_int_equal(r.heartbeat, 0);
    for (int i = 1; i <= 5; i++) {
        advance(200);
        assert_int_equal(kvc_lease_renew(l, NULL, err, sizeof(err)), 0);
        assert_int_equal(kvc_lease_read(f->path, &r, err, sizeof(err)), 0);
        assert_int_equal(r.heartbeat, (uint64_t)i);
        assert_int_equal(r.time_ms, t_wall);
        assert_int_equal(r.generation, 1);
    }
    assert_false(kvc_lease_lost(l));
    /* No temporary or lock file is left behind. */
    char p[PATH_MAX + 64];
    snprintf(p, sizeof(p), "%s.lock", f->path);
    assert_int_equal(access(p, F_OK), -1);
    snprintf(p, sizeof(p), "%s/.vm1.lck." A ".%d.tmp", f->dir, (int)getpid());
    assert_int_equal(access(p, F_OK), -1);
    assert_int_equal(kvc_lease_release(l), 0);
    assert_int_equal(kvc_lease_read(f->path, &r, err, sizeof(err)), 0);
    assert_false(r.held);
    assert_int_equal(r.generation, 2);
    /* A free lease is anyone's, with the next generation. */
    struct kvc_lease_opts ob = opts(f, B, NULL);
    assert_int_equal(kvc_lease_acquire(&ob, &l, NULL, err, sizeof(err)), 0);
    assert_int_equal(kvc_lease_generation(l), 3);
    kvc_lease_free(l);
    assert_int_equal(kvc_lease_release(NULL), 0);
}

static void test_live_lease_refused_then_taken_after_expiry(void **state)
{
    struct fx *f = *state;
    struct kvc_lease_watch wb = { 0 };
    struct kvc_lease_opts oa = opts(f, A, NULL), ob = opts(f, B, &wb);
    struct kvc_lease *la = NULL, *lb = NULL;
    struct kvc_lease_record holder, r;
    char err[512];

    assert_int_equal(kvc_lease_acquire(&oa, &la, NULL, err, sizeof(err)), 0);
    /* B is refused while A renews, and is told who runs it. */
    for (int i = 0; i < 10; i++) {
        advance(200);
        assert_int_equal(kvc_lease_renew(la, NULL, err, sizeof(err)), 0);
        memset(&holder, 0, sizeof(holder));
        assert_int_equal(kvc_lease_acquire(&ob, &lb, &holder, err, sizeof(err)), -EBUSY);
        assert_null(lb);
        assert_string_equal(holder.owner, A);
        assert_non_null(strstr(err, "running on host esx-a (" A ")"));
    }
    /* A stops renewing (its host died).  B still waits one full duration
     * of unchanged record on its own clock. */
    advance(900);
    assert_int_equal(kvc_lease_acquire(&ob, &lb, NULL, err, sizeof(err)), -EBUSY);
    advance(200);
    assert_int_equal(kvc_lease_acquire(&ob, &lb, NULL, err, sizeof(err)), 0);
    assert_int_equal(kvc_lease_generation(lb), 2);
    assert_int_equal(kvc_lease_read(f->path, &r, err, sizeof(err)), 0);
    assert_string_equal(r.owner, B);
    /* A's process comes back from its stall: too old to renew, it stops. */
    assert_int_equal(kvc_lease_renew(la, NULL, err, sizeof(err)), -ESTALE);
    assert_non_null(strstr(err, "not renewed for"));
    assert_true(kvc_lease_lost(la));
    assert_int_equal(kvc_lease_renew(la, NULL, err, sizeof(err)), -ESTALE);
    /* Its release writes nothing. */
    assert_int_equal(kvc_lease_release(la), -ESTALE);
    assert_int_equal(kvc_lease_read(f->path, &r, err, sizeof(err)), 0);
    assert_string_equal(r.owner, B);
    assert_true(r.held);
    /* And A, as a contender without a watch, is refused B's live lease. */
    la = NULL;
    assert_int_equal(kvc_lease_acquire(&oa, &la, NULL, err, sizeof(err)), -EBUSY);
    assert_non_null(strstr(err, "esx-b"));
    kvc_lease_free(lb);
}

/* Fencing: a holder that finds a record it did not write stops at once,
 * however young its own lease (a contender with a clock far ahead took it). */
static void test_fencing_by_generation(void **state)
{
    struct fx *f = *state;
    struct kvc_lease_opts oa = opts(f, A, NULL), ob = opts(f, B, NULL);
    struct kvc_lease *la = NULL, *lb = NULL;
    struct kvc_lease_record holder;
    char err[512];

    assert_int_equal(kvc_lease_acquire(&oa, &la, NULL, err, sizeof(err)), 0);
    advance(200);
    assert_int_equal(kvc_lease_renew(la, NULL, err, sizeof(err)), 0);
    t_wall += 5000;                     /* B's view of the time */
    assert_int_equal(kvc_lease_acquire(&ob, &lb, NULL, err, sizeof(err)), 0);
    t_wall -= 5000;
    advance(100);
    memset(&holder, 0, sizeof(holder));
    assert_int_equal(kvc_lease_renew(la, &holder, err, sizeof(err)), -ESTALE);
    assert_string_equal(holder.owner, B);
    assert_int_equal(holder.generation, 2);
    assert_non_null(strstr(err, "now held by host esx-b"));
    assert_true(kvc_lease_lost(la));
    kvc_lease_free(la);
    assert_int_equal(kvc_lease_renew(lb, NULL, err, sizeof(err)), 0);
    kvc_lease_free(lb);
}

static void test_wall_clock_expiry_and_own_lease(void **state)
{
    struct fx *f = *state;
    struct kvc_lease_opts oa = opts(f, A, NULL), ob = opts(f, B, NULL);
    struct kvc_lease *la = NULL, *lb = NULL;
    char err[512];

    assert_int_equal(kvc_lease_acquire(&oa, &la, NULL, err, sizeof(err)), 0);
    kvc_lease_free(la);                 /* A's vmx was killed: no release */
    /* The same host takes its own lease back at once. */
    assert_int_equal(kvc_lease_acquire(&oa, &la, NULL, err, sizeof(err)), 0);
    assert_int_equal(kvc_lease_generation(la), 2);
    kvc_lease_free(la);
    advance(1999);
    assert_int_equal(kvc_lease_acquire(&ob, &lb, NULL, err, sizeof(err)), -EBUSY);
    advance(1);
    assert_int_equal(kvc_lease_acquire(&ob, &lb, NULL, err, sizeof(err)), 0);
    assert_int_equal(kvc_lease_generation(lb), 3);
    /* release_owned touches only its owner's lease. */
    assert_int_equal(kvc_lease_release_owned(f->path, A, err, sizeof(err)), 0);
    struct kvc_lease_record r;
    assert_int_equal(kvc_lease_read(f->path, &r, err, sizeof(err)), 0);
    assert_true(r.held);
    assert_int_equal(kvc_lease_release_owned(f->path, B, err, sizeof(err)), 0);
    assert_int_equal(kvc_lease_read(f->path, &r, err, sizeof(err)), 0);
    assert_false(r.held);
    assert_int_equal(r.generation, 4);
    assert_int_equal(kvc_lease_renew(lb, NULL, err, sizeof(err)), -ESTALE);
    assert_non_null(strstr(err, "released"));
    kvc_lease_free(lb);
}

static void test_holder_gives_up_when_it_cannot_renew(void **state)
{
    struct fx *f = *state;
    struct kvc_lease_opts oa = opts(f, A, NULL);
    struct kvc_lease *la = NULL;
    char err[512];

    assert_int_equal(kvc_lease_acquire(&oa, &la, NULL, err, sizeof(err)), 0);
    /* The file turns unreadable (a directory in its place): transient
     * failures while younger than 3/5 of the duration, then lost. */
    char aside[PATH_MAX + 64];
    snprintf(aside, sizeof(aside), "%s.aside", f->path);
    assert_int_equal(rename(f->path, aside), 0);
    assert_int_equal(mkdir(f->path, 0755), 0);
    advance(200);
    int rc = kvc_lease_renew(la, NULL, err, sizeof(err));
    assert_true(rc < 0 && rc != -ESTALE);
    advance(200);
    rc = kvc_lease_renew(la, NULL, err, sizeof(err));
    assert_true(rc < 0 && rc != -ESTALE);
    assert_false(kvc_lease_lost(la));
    /* Back within the window: renewal resumes. */
    assert_int_equal(rmdir(f->path), 0);
    assert_int_equal(rename(aside, f->path), 0);
    advance(100);
    assert_int_equal(kvc_lease_renew(la, NULL, err, sizeof(err)), 0);
    /* Corrupt (someone wrote garbage): not overwritten, and after 3/5 of
     * the duration without a renewal the holder stops. */
    write_file(f->path, "garbage\n", 8);
    advance(300);
    rc = kvc_lease_renew(la, NULL, err, sizeof(err));
    assert_int_equal(rc, -EBADMSG);
    assert_non_null(strstr(err, "corrupt"));
    advance(301);
    assert_int_equal(kvc_lease_renew(la, NULL, err, sizeof(err)), -ESTALE);
    assert_non_null(strstr(err, "not renewed for"));
    assert_true(kvc_lease_lost(la));
    kvc_lease_free(la);
    /* A contender gets a clear error for the corrupt file, never a crash. */
    assert_int_equal(kvc_lease_acquire(&oa, &la, NULL, err, sizeof(err)), -EBADMSG);
    assert_non_null(strstr(err, "corrupt"));
    assert_non_null(strstr(err, "remove the file"));
    assert_null(la);
    /* A removed file: lost at once. */
    unlink(f->path);
    assert_int_equal(kvc_lease_acquire(&oa, &la, NULL, err, sizeof(err)), 0);
    unlink(f->path);
    advance(100);
    assert_int_equal(kvc_lease_renew(la, NULL, err, sizeof(err)), -ESTALE);
    assert_non_null(strstr(err, "removed"));
    kvc_lease_free(la);
}

static void test_stalled_holder_does_not_write(void **state)
{
    struct fx *f = *state;
    struct kvc_lease_opts oa = opts(f, A, NULL);
    struct kvc_lease *la = NULL;
    struct kvc_lease_record r;
    char err[512];

    assert_int_equal(kvc_lease_acquire(&oa, &la, NULL, err, sizeof(err)), 0);
    /* The process was stopped for a long time: it must not renew a lease
     * someone may already have judged expired. */
    advance(700);
    assert_int_equal(kvc_lease_renew(la, NULL, err, sizeof(err)), -ESTALE);
    assert_int_equal(kvc_lease_read(f->path, &r, err, sizeof(err)), 0);
    assert_int_equal(r.heartbeat, 0);
    kvc_lease_free(la);
}

static void test_transfer_and_adopt(void **state)
{
    struct fx *f = *state;
    struct kvc_lease_opts oa = opts(f, A, NULL), ob = opts(f, B, NULL), oc = opts(f, C, NULL);
    struct kvc_lease *la = NULL, *lb = NULL, *lc = NULL;
    struct kvc_lease_record r;
    uint64_t gen = 0;
    char err[512];

    assert_int_equal(kvc_lease_acquire(&oa, &la, NULL, err, sizeof(err)), 0);
    advance(200);
    assert_int_equal(kvc_lease_renew(la, NULL, err, sizeof(err)), 0);
    assert_int_equal(kvc_lease_transfer(la, "bad owner", "x", &gen, err, sizeof(err)), -EINVAL);
    assert_int_equal(kvc_lease_transfer(la, B, "esx-b", &gen, err, sizeof(err)), 0);
    assert_int_equal(gen, 2);
    assert_int_equal(kvc_lease_read(f->path, &r, err, sizeof(err)), 0);
    assert_string_equal(r.owner, B);
    assert_string_equal(r.owner_name, "esx-b");
    assert_true(r.held);
    /* The source is no holder any more, and knows it was a hand-over. */
    assert_true(kvc_lease_lost(la));
    assert_true(kvc_lease_transferred(la));
    assert_int_equal(kvc_lease_renew(la, NULL, err, sizeof(err)), -ESTALE);
    kvc_lease_free(la);
    /* Only the named destination, with that generation, adopts it. */
    assert_int_equal(kvc_lease_adopt(&oc, gen, &lc, err, sizeof(err)), -ESTALE);
    assert_int_equal(kvc_lease_adopt(&ob, gen + 1, &lb, err, sizeof(err)), -ESTALE);
    assert_null(lb);
    assert_int_equal(kvc_lease_adopt(&ob, gen, &lb, err, sizeof(err)), 0);
    advance(100);
    assert_int_equal(kvc_lease_renew(lb, NULL, err, sizeof(err)), 0);
    assert_int_equal(kvc_lease_generation(lb), 2);
    /* A third host is refused the live lease. */
    assert_int_equal(kvc_lease_acquire(&oc, &lc, NULL, err, sizeof(err)), -EBUSY);
    assert_non_null(strstr(err, "esx-b"));
    /* An abort after switch-over hands it back the same way. */
    assert_int_equal(kvc_lease_transfer(lb, A, "esx-a", &gen, err, sizeof(err)), 0);
    assert_int_equal(gen, 3);
    kvc_lease_free(lb);
    assert_int_equal(kvc_lease_adopt(&oa, gen, &la, err, sizeof(err)), 0);
    /* A forced hand-over (no source process to transfer it) fences the
     * holder at its next renewal. */
    struct kvc_lease_opts force = ob;
    force.force = true;
    assert_int_equal(kvc_lease_acquire(&ob, &lb, NULL, err, sizeof(err)), -EBUSY);
    assert_int_equal(kvc_lease_acquire(&force, &lb, NULL, err, sizeof(err)), 0);
    assert_int_equal(kvc_lease_generation(lb), 4);
    advance(100);
    assert_int_equal(kvc_lease_renew(la, NULL, err, sizeof(err)), -ESTALE);
    assert_int_equal(kvc_lease_release(la), -ESTALE);
    assert_int_equal(kvc_lease_release(lb), 0);
}

static void test_lock_file(void **state)
{
    struct fx *f = *state;
    struct kvc_lease_opts oa = opts(f, A, NULL);
    struct kvc_lease *la = NULL;
    char err[512], lock[PATH_MAX + 64], buf[128];

    /* Another contender is mid-change: retry later. */
    snprintf(lock, sizeof(lock), "%s.lock", f->path);
    int n = snprintf(buf, sizeof(buf), "%s 1 %" PRId64 "\n", B, t_wall);
    write_file(lock, buf, (size_t)n);
    assert_int_equal(kvc_lease_acquire(&oa, &la, NULL, err, sizeof(err)), -EAGAIN);
    assert_non_null(strstr(err, "changing the lease"));
    assert_int_equal(access(f->path, F_OK), -1);
    /* One left behind by a contender that died is broken. */
    advance(6000);
    assert_int_equal(kvc_lease_acquire(&oa, &la, NULL, err, sizeof(err)), 0);
    assert_int_equal(access(lock, F_OK), -1);
    kvc_lease_free(la);
    /* Bad arguments. */
    struct kvc_lease_opts bad = oa;
    bad.owner = "no/slash";
    assert_int_equal(kvc_lease_acquire(&bad, &la, NULL, err, sizeof(err)), -EINVAL);
    bad = oa;
    bad.duration_ms = 50;
    assert_int_equal(kvc_lease_acquire(&bad, &la, NULL, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "duration"));
    bad = oa;
    bad.path = NULL;
    assert_int_equal(kvc_lease_acquire(&bad, &la, NULL, err, sizeof(err)), -EINVAL);
}

static void test_acquire_wait(void **state)
{
    struct fx *f = *state;
    struct kvc_lease_opts oa = opts(f, A, NULL), ob = opts(f, B, NULL);
    struct kvc_lease *la = NULL, *lb = NULL;
    char err[512];

    /* Real clocks: A holds the shortest lease and stops renewing; B's
     * waiting acquire gets it after about one duration. */
    kvc_lease_set_clocks(NULL, NULL);
    oa.duration_ms = ob.duration_ms = 100;
    assert_int_equal(kvc_lease_acquire(&oa, &la, NULL, err, sizeof(err)), 0);
    kvc_lease_free(la);
    assert_int_equal(kvc_lease_acquire_wait(&ob, 0, &lb, NULL, err, sizeof(err)), -EBUSY);
    assert_int_equal(kvc_lease_acquire_wait(&ob, 5000, &lb, NULL, err, sizeof(err)), 0);
    assert_int_equal(kvc_lease_generation(lb), 2);
    assert_int_equal(kvc_lease_release(lb), 0);
    kvc_lease_set_clocks(fake_wall, fake_mono);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_roundtrip),
        cmocka_unit_test(test_truncated_and_flipped),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_judge),
        cmocka_unit_test_setup_teardown(test_acquire_renew_release, setup, teardown),
        cmocka_unit_test_setup_teardown(test_live_lease_refused_then_taken_after_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fencing_by_generation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wall_clock_expiry_and_own_lease, setup, teardown),
        cmocka_unit_test_setup_teardown(test_holder_gives_up_when_it_cannot_renew, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stalled_holder_does_not_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transfer_and_adopt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acquire_wait, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
