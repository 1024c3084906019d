/* vpxd's statistics in the database: samples, rollups at vCenter's levels,
 * duplicates, retention, persistence across a reopen. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "vpxd/db.h"
#include "vpxd/db_stats.h"

#define MIN_MS 60000LL
/* A 5-minute boundary well after the epoch. */
#define T0 (1764800000000LL / (24 * 60 * MIN_MS) * (24 * 60 * MIN_MS))

struct fix {
    char dir[64];
    char path[128];
    struct vdb *db;
};

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));

    snprintf(f->dir, sizeof(f->dir), "/tmp/test_vpxd_stats.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/vpxd.db", f->dir);
    assert_int_equal(vdb_open(f->path, &f->db), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    char cmd[200];

    vdb_close(f->db);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static struct vdb_perf_sample sample(const char *id, int64_t t, double cpu)
{
    return (struct vdb_perf_sample){ .entity = id, .time_ms = t, .cpu_mhz = cpu,
                                     .cpu_percent = cpu / 100.0, .mem_consumed_mib = 2 * cpu,
                                     .mem_active_mib = cpu, .net_rx_bps = 10 * cpu };
}

static double num(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    assert_non_null(v);
    return json_number_value(v);
}

static json_t *query(struct vdb *db, const char *id, int level)
{
    json_t *rows = NULL;
    assert_int_equal(vdb_stats_query(db, id, level, 0, 0, &rows), 0);
    return rows;
}

static void test_levels(void **state)
{
    (void)state;
    assert_int_equal(vdb_stats_level_by_name("realtime"), 0);
    assert_int_equal(vdb_stats_level_by_name("5min"), 1);
    assert_int_equal(vdb_stats_level_by_name("30min"), 2);
    assert_int_equal(vdb_stats_level_by_name("2h"), 3);
    assert_int_equal(vdb_stats_level_by_name("1day"), 4);
    assert_int_equal(vdb_stats_level_by_name("1h"), -EINVAL);
    assert_int_equal(vdb_stats_level_by_name(NULL), -EINVAL);
    /* Each rollup interval divides the next, so intervals nest. */
    for (int l = 2; l < VDB_STATS_LEVELS; l++)
        assert_int_equal(vdb_stats_levels[l].interval_ms % vdb_stats_levels[l - 1].interval_ms, 0);
}

/* Twelve samples 20 s apart (4 minutes) then one 5 minutes later: one
 * 5-minute interval averages the twelve, the next holds the last; the
 * 30-minute, 2-hour and 1-day levels average all thirteen. */
static void test_rollups_average_their_interval(void **state)
{
    struct fix *f = *state;
    struct vdb_perf_sample s[13];
    double sum = 0, sum12 = 0;

    for (int i = 0; i < 12; i++) {
        s[i] = sample("vm-1", T0 + i * 20000, 100 + i * 10);
        sum += s[i].cpu_mhz;
    }
    sum12 = sum;
    s[12] = sample("vm-1", T0 + 5 * MIN_MS + 1000, 1000);
    sum += 1000;
    assert_int_equal(vdb_stats_record(f->db, s, 13), 0);

    json_t *rt = query(f->db, "vm-1", 0);
    assert_int_equal(json_array_size(rt), 13);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(rt, 0), "time_ms")), T0);
    assert_true(num(json_array_get(rt, 12), "cpu_MHz") == 1000);
    json_decref(rt);

    json_t *r5 = query(f->db, "vm-1", 1);
    assert_int_equal(json_array_size(r5), 2);
    json_t *a = json_array_get(r5, 0), *b = json_array_get(r5, 1);
    assert_int_equal(json_integer_value(json_object_get(a, "time_ms")), T0);
    assert_int_equal(json_integer_value(json_object_get(a, "samples")), 12);
    assert_true(fabs(num(a, "cpu_MHz") - sum12 / 12) < 1e-9);
    assert_true(fabs(num(a, "mem_MiB") - 2 * sum12 / 12) < 1e-9);
    assert_true(fabs(num(a, "net_rx_Bps") - 10 * sum12 / 12) < 1e-6);
    assert_int_equal(json_integer_value(json_object_get(b, "time_ms")), T0 + 5 * MIN_MS);
    assert_int_equal(json_integer_value(json_object_get(b, "samples")), 1);
    assert_true(num(b, "cpu_MHz") == 1000);
    json_decref(r5);

    for (int l = 2; l < VDB_STATS_LEVELS; l++) {
        json_t *r = query(f->db, "vm-1", l);
        assert_int_equal(json_array_size(r), 1);
        assert_int_equal(json_integer_value(json_object_get(json_array_get(r, 0), "samples")), 13);
        assert_true(fabs(num(json_array_get(r, 0), "cpu_MHz") - sum / 13) < 1e-9);
        json_decref(r);
    }
    /* Another object's samples are its own. */
    json_t *other = query(f->db, "vm-2", 1);
    assert_int_equal(json_array_size(other), 0);
    json_decref(other);
}

/* A host resending a batch after a reconnect changes nothing. */
static void test_repeated_sample_is_ignored(void **state)
{
    struct fix *f = *state;
    struct vdb_perf_sample s = sample("host-3", T0, 500), t = sample("host-3", T0, 9000);

    assert_int_equal(vdb_stats_record(f->db, &s, 1), 0);
    assert_int_equal(vdb_stats_record(f->db, &t, 1), 0);
    json_t *r = query(f->db, "host-3", 1);
    assert_int_equal(json_array_size(r), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(r, 0), "samples")), 1);
    assert_true(num(json_array_get(r, 0), "cpu_MHz") == 500);
    json_decref(r);
}

/* A bad sample fails the whole batch: nothing of it is stored. */
static void test_bad_batch_changes_nothing(void **state)
{
    struct fix *f = *state;
    struct vdb_perf_sample s[2] = { sample("vm-5", T0, 100), sample("", T0 + 20000, 100) };

    assert_int_equal(vdb_stats_record(f->db, s, 2), -EINVAL);
    for (int l = 0; l < VDB_STATS_LEVELS; l++) {
        json_t *r = query(f->db, "vm-5", l);
        assert_int_equal(json_array_size(r), 0);
        json_decref(r);
    }
    json_t *r = NULL;
    assert_int_equal(vdb_stats_query(f->db, "vm-5", VDB_STATS_LEVELS, 0, 0, &r), -EINVAL);
    assert_int_equal(vdb_stats_query(f->db, "vm-5", -1, 0, 0, &r), -EINVAL);
}

/* Each level is pruned to its own retention, by the end of its interval. */
static void test_prune_per_level(void **state)
{
    struct fix *f = *state;
    struct vdb_perf_sample s[3] = { sample("vm-1", T0, 1), sample("vm-1", T0 + 20000, 2),
                                    sample("vm-1", T0 + 10 * MIN_MS, 3) };
    int64_t keep[VDB_STATS_LEVELS];

    assert_int_equal(vdb_stats_record(f->db, s, 3), 0);
    for (int l = 0; l < VDB_STATS_LEVELS; l++)
        keep[l] = 100LL * 24 * 60 * MIN_MS;
    /* Realtime kept 5 minutes, 5-minute rollups 1 minute, at T0 + 11 min:
     * realtime keeps only the sample at +10 min; 5-minute keeps the
     * interval [+10, +15) (it ends after +10 min). */
    keep[0] = 5 * MIN_MS;
    keep[1] = 1 * MIN_MS;
    int n = vdb_stats_prune(f->db, T0 + 11 * MIN_MS, keep);
    assert_int_equal(n, 2 + 1);
    json_t *rt = query(f->db, "vm-1", 0), *r5 = query(f->db, "vm-1", 1), *r30 = query(f->db, "vm-1", 2);
    assert_int_equal(json_array_size(rt), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(rt, 0), "time_ms")),
                     T0 + 10 * MIN_MS);
    assert_int_equal(json_array_size(r5), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(r5, 0), "time_ms")),
                     T0 + 10 * MIN_MS);
    assert_int_equal(json_array_size(r30), 1);
    json_decref(rt);
    json_decref(r5);
    json_decref(r30);
}

/* Committed samples survive closing and reopening the database. */
static void test_persist_across_reopen(void **state)
{
    struct fix *f = *state;
    struct vdb_perf_sample s = sample("vm-9", T0, 42);

    assert_int_equal(vdb_stats_record(f->db, &s, 1), 0);
    vdb_close(f->db);
    assert_int_equal(vdb_open(f->path, &f->db), 0);
    json_t *r = query(f->db, "vm-9", 4);
    assert_int_equal(json_array_size(r), 1);
    assert_true(num(json_array_get(r, 0), "cpu_MHz") == 42);
    json_decref(r);
}

/* LIMIT keeps the newest, still oldest first. */
static void test_query_limit_keeps_newest(void **state)
{
    struct fix *f = *state;
    struct vdb_perf_sample s[5];
    json_t *r = NULL;

    for (int i = 0; i < 5; i++)
        s[i] = sample("vm-4", T0 + i * 20000, i);
    assert_int_equal(vdb_stats_record(f->db, s, 5), 0);
    assert_int_equal(vdb_stats_query(f->db, "vm-4", 0, 0, 2, &r), 0);
    assert_int_equal(json_array_size(r), 2);
    assert_true(num(json_array_get(r, 0), "cpu_MHz") == 3);
    assert_true(num(json_array_get(r, 1), "cpu_MHz") == 4);
    json_decref(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_levels),
        cmocka_unit_test_setup_teardown(test_rollups_average_their_interval, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repeated_sample_is_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_batch_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune_per_level, setup, teardown),
        cmocka_unit_test_setup_teardown(test_persist_across_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_limit_keeps_newest, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
