#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

KVC_LOG_MODULE(testmod);

static char *
read_all(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static void
test_line_format_and_levels(void **state)
{
    char path[] = "/tmp/kvc-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    kvc_log_init("unittest");
    assert_int_equal(kvc_log_open(path), 0);
    kvc_log_set_level("testmod", KVC_LOG_INFO);
    kvc_info("hello %d\nsecond", 42);
    kvc_dbg("not shown");
    char *s = read_all(path);
    assert_non_null(strstr(s, " unittest["));
    assert_non_null(strstr(s, "] INFO testmod: test_line_format_and_levels: hello 42 second\n"));
    assert_null(strstr(s, "not shown"));
    assert_int_equal(kvc_log_set_level("nosuchmodule", KVC_LOG_DBG), -ENOENT);
    unlink(path);
}

static void
test_ratelimit(void **state)
{
    struct kvc_ratelimit rl = KVC_RATELIMIT_INIT(3, 3600);
    int ok = 0;
    for (int i = 0; i < 100; i++)
        ok += kvc_ratelimit_ok(&rl);
    assert_int_equal(ok, 3);
    assert_int_equal(rl.dropped, 97);
}

static void
test_level_names(void **state)
{
    assert_int_equal(kvc_log_level_from_string("debug"), KVC_LOG_DBG);
    assert_int_equal(kvc_log_level_from_string("WARN"), KVC_LOG_WARN);
    assert_int_equal(kvc_log_level_from_string("bogus"), -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_format_and_levels),
        cmocka_unit_test(test_ratelimit),
        cmocka_unit_test(test_level_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
