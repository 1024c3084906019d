/* lib/config API: getters, defaults, named sections, set/dump round trip,
 * value parsers and their edge cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "configfile.h"

static const struct kvc_cfg_key host_keys[] = {
    KVC_CFG_KEY_STRING("name", "esx", "host name"),
    KVC_CFG_KEY_INT("cpus", "4", 1, 256, "vCPUs"),
    KVC_CFG_KEY_BOOL("ha", "false", "HA enabled"),
    KVC_CFG_KEY_SIZE("memory", "4G", 1 << 20, 1ll << 42, "memory"),
    KVC_CFG_KEY_DURATION("heartbeat", "1s", 100, 60000, "heartbeat"),
    KVC_CFG_KEY_ENUM("backend", "kvm", "backend", "kvm", "sim"),
    KVC_CFG_KEY_LIST("dns", "1.1.1.1, 8.8.8.8", "resolvers"),
    KVC_CFG_KEY_STRING("note", NULL, "optional"),
    KVC_CFG_KEY_STRING("motd", "", "empty by default"),
    KVC_CFG_KEY_END,
};
static const struct kvc_cfg_key nic_keys[] = {
    { .name = "network", .type = KVC_CFG_STRING, .required = true },
    KVC_CFG_KEY_STRING("mac", NULL, "MAC address"),
    KVC_CFG_KEY_END,
};
static const struct kvc_cfg_section_def sections[] = {
    { .name = "host", .keys = host_keys },
    { .name = "nic", .named = true, .keys = nic_keys },
    { .name = NULL },
};
static const struct kvc_cfg_schema schema = { .name = "t", .sections = sections };

static struct kvc_config *
parse_ok(const char *text)
{
    struct kvc_config *cfg = NULL;
    char *errs = NULL;
    int rc = kvc_config_parse(&schema, "t.conf", text, strlen(text), &cfg, &errs);
    if (rc)
        fprintf(stderr, "unexpected errors:\n%s", errs);
    assert_int_equal(rc, 0);
    assert_null(errs);
    assert_non_null(cfg);
    return cfg;
}

static char *
parse_err(const char *text, size_t len)
{
    struct kvc_config *cfg = (void *)1;
    char *errs = NULL;
    assert_int_equal(kvc_config_parse(&schema, "t.conf", text, len, &cfg, &errs),
                     -EINVAL);
    assert_null(cfg);
    assert_non_null(errs);
    return errs;
}

static void
test_defaults(void **state)
{
    struct kvc_config *cfg = parse_ok("");
    const struct kvc_cfg_section *h = kvc_config_section(cfg, "host");
    assert_non_null(h);
    assert_string_equal(kvc_cfg_string(h, "name"), "esx");
    assert_int_equal(kvc_cfg_int(h, "cpus"), 4);
    assert_false(kvc_cfg_bool(h, "ha"));
    assert_int_equal(kvc_cfg_size(h, "memory"), 4ull << 30);
    assert_int_equal(kvc_cfg_duration_ms(h, "heartbeat"), 1000);
    assert_string_equal(kvc_cfg_enum(h, "backend"), "kvm");
    assert_int_equal(kvc_cfg_enum_index(h, "backend"), 0);
    assert_int_equal(kvc_cfg_list_len(h, "dns"), 2);
    assert_string_equal(kvc_cfg_list_item(h, "dns", 1), "8.8.8.8");
    assert_null(kvc_cfg_list_item(h, "dns", 2));
    assert_null(kvc_cfg_string(h, "note"));
    assert_false(kvc_cfg_has(h, "note"));
    assert_string_equal(kvc_cfg_string(h, "motd"), "");
    assert_true(kvc_cfg_has(h, "motd"));
    assert_true(kvc_cfg_has(h, "name"));
    assert_false(kvc_cfg_is_set(h, "name"));
    assert_int_equal(kvc_config_count(cfg, "nic"), 0);
    kvc_config_free(cfg);
}

static void
test_values_and_named_sections(void **state)
{
    struct kvc_config *cfg = parse_ok(
        "[host]\nname = \"a \\\"b\\\"\"\ncpus = 0x10\nha = ON\n"
        "memory = 512M\nheartbeat = 250ms\nbackend = sim\ndns =\n"
        "[nic \"eth0\"]\nnetwork = \"VM Network\"\n"
        "[nic 'eth1']\nnetwork = lab\nmac = 00:50:56:00:00:01\n");
    const struct kvc_cfg_section *h = kvc_config_section(cfg, "host");
    assert_string_equal(kvc_cfg_string(h, "name"), "a \"b\"");
    assert_true(kvc_cfg_is_set(h, "name"));
    assert_int_equal(kvc_cfg_int(h, "cpus"), 16);
    assert_true(kvc_cfg_bool(h, "ha"));
    assert_int_equal(kvc_cfg_size(h, "memory"), 512ull << 20);
    assert_int_equal(kvc_cfg_duration_ms(h, "heartbeat"), 250);
    assert_int_equal(kvc_cfg_enum_index(h, "backend"), 1);
    assert_int_equal(kvc_cfg_list_len(h, "dns"), 0);
    assert_int_equal(kvc_config_count(cfg, "nic"), 2);
    const struct kvc_cfg_section *n0 = kvc_config_nth(cfg, "nic", 0);
    const struct kvc_cfg_section *n1 = kvc_config_nth(cfg, "nic", 1);
    assert_string_equal(kvc_cfg_instance(n0), "eth0");
    assert_string_equal(kvc_cfg_instance(n1), "eth1");
    assert_null(kvc_config_nth(cfg, "nic", 2));
    assert_ptr_equal(kvc_config_find(cfg, "nic", "eth1"), n1);
    assert_null(kvc_config_find(cfg, "nic", "eth9"));
    assert_string_equal(kvc_cfg_string(n0, "network"), "VM Network");
    assert_null(kvc_cfg_string(n0, "mac"));
    assert_string_equal(kvc_cfg_string(n1, "mac"), "00:50:56:00:00:01");
    assert_null(kvc_cfg_instance(h));
    kvc_config_free(cfg);
}

static void
test_errors_have_lines(void **state)
{
    const char *text = "[host]\ncpus = 0\n\nbogus = 1\nha = perhaps\n";
    char *errs = parse_err(text, strlen(text));
    assert_string_equal(errs,
        "t.conf:2: key 'cpus': 0 is out of range (1..256)\n"
        "t.conf:4: unknown key 'bogus' in [host]\n"
        "t.conf:5: key 'ha': expected a boolean (true/false, yes/no, on/off, 1/0), got 'perhaps'\n");
    free(errs);
    /* No top-level section in this schema. */
    errs = parse_err("cpus = 1\n", 9);
    assert_string_equal(errs, "t.conf:1: key 'cpus' outside any section\n");
    free(errs);
    /* Keys under a bad header are not reported again. */
    errs = parse_err("[hots]\ncpus = 1\nx = 2\n", 21);
    assert_string_equal(errs, "t.conf:1: unknown section [hots] (did you mean [host]?)\n");
    free(errs);
    errs = parse_err("[host]\nname = a\0b\n", 17);
    assert_string_equal(errs, "t.conf:2: NUL byte in file\n");
    free(errs);
    errs = parse_err("[nic \"e0\"]\nmac = x\n", 19);
    assert_string_equal(errs,
        "t.conf:1: missing required key 'network' in [nic \"e0\"]\n");
    free(errs);
}

static void
test_too_many_errors(void **state)
{
    char text[4096] = "[host]\n";
    for (int i = 0; i < 40; i++)
        strcat(text, "zzzzzz = 1\n");
    char *errs = parse_err(text, strlen(text));
    int lines = 0;
    for (char *p = errs; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 21);
    assert_non_null(strstr(errs, "too many errors"));
    free(errs);
}

static void
test_dump_round_trip(void **state)
{
    struct kvc_config *cfg = NULL, *again = NULL;
    char *errs = NULL;
    assert_int_equal(kvc_config_new(&schema, &cfg, &errs), 0);
    assert_int_equal(kvc_config_set(cfg, "host", NULL, "name", "'tab\there'", &errs), 0);
    assert_int_equal(kvc_config_set(cfg, "host", NULL, "memory", "1536M", &errs), 0);
    assert_int_equal(kvc_config_set(cfg, "host", NULL, "dns", "a, \"b,c\"", &errs), 0);
    assert_int_equal(kvc_config_add_section(cfg, "nic", "eth0", &errs), 0);
    assert_int_equal(kvc_config_add_section(cfg, "nic", "eth0", &errs), -EEXIST);
    free(errs);
    assert_int_equal(kvc_config_set(cfg, "nic", "eth0", "network", "x\\y", &errs), 0);
    assert_int_equal(kvc_config_set(cfg, "host", NULL, "cpus", "1000", &errs), -EINVAL);
    assert_string_equal(errs, "t: key 'cpus': 1000 is out of range (1..256)\n");
    free(errs);
    assert_int_equal(kvc_config_set(cfg, "host", NULL, "nope", "1", &errs), -ENOENT);
    free(errs);
    assert_int_equal(kvc_config_set(cfg, "nic", "eth7", "network", "1", &errs), -ENOENT);
    free(errs);

    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    kvc_config_dump(cfg, f);
    fclose(f);
    assert_non_null(strstr(buf, "memory = 1536M\n"));
    assert_non_null(strstr(buf, "name = \"tab\\there\"\n"));
    assert_non_null(strstr(buf, "dns = \"a\", \"b,c\"\n"));
    assert_non_null(strstr(buf, "[nic \"eth0\"]\nnetwork = \"x\\\\y\"\n"));

    assert_int_equal(kvc_config_parse(&schema, "dump", buf, len, &again, &errs), 0);
    const struct kvc_cfg_section *h = kvc_config_section(again, "host");
    assert_string_equal(kvc_cfg_string(h, "name"), "tab\there");
    assert_int_equal(kvc_cfg_size(h, "memory"), 1536ull << 20);
    assert_string_equal(kvc_cfg_list_item(h, "dns", 1), "b,c");
    assert_string_equal(kvc_cfg_string(kvc_config_find(again, "nic", "eth0"),
                                       "network"), "x\\y");
    char *buf2 = NULL;
    size_t len2 = 0;
    f = open_memstream(&buf2, &len2);
    kvc_config_dump(again, f);
    fclose(f);
    /* Dumping the re-parsed config differs only in "# default" marks. */
    assert_non_null(strstr(buf2, "memory = 1536M\n"));
    free(buf);
    free(buf2);
    kvc_config_free(cfg);
    kvc_config_free(again);
}

static void
test_parsers(void **state)
{
    int64_t i;
    uint64_t u;
    bool b;
    assert_int_equal(kvc_parse_int64("9223372036854775807", &i), 0);
    assert_true(i == INT64_MAX);
    assert_int_equal(kvc_parse_int64("-9223372036854775808", &i), 0);
    assert_true(i == INT64_MIN);
    assert_int_equal(kvc_parse_int64("9223372036854775808", &i), -ERANGE);
    assert_int_equal(kvc_parse_int64("-9223372036854775809", &i), -ERANGE);
    assert_int_equal(kvc_parse_int64("", &i), -EINVAL);
    assert_int_equal(kvc_parse_int64("-", &i), -EINVAL);
    assert_int_equal(kvc_parse_int64("0x", &i), -EINVAL);
    assert_int_equal(kvc_parse_int64(" 1", &i), -EINVAL);
    assert_int_equal(kvc_parse_int64("0xff", &i), 0);
    assert_int_equal(i, 255);
    assert_int_equal(kvc_parse_bool("Yes", &b), 0);
    assert_true(b);
    assert_int_equal(kvc_parse_bool("2", &b), -EINVAL);
    assert_int_equal(kvc_parse_size("64K", &u), 0);
    assert_int_equal(u, 65536);
    assert_int_equal(kvc_parse_size("3GiB", &u), 0);
    assert_int_equal(u, 3ull << 30);
    assert_int_equal(kvc_parse_size("8388608T", &u), -ERANGE);
    assert_int_equal(kvc_parse_size("1.5G", &u), -EINVAL);
    assert_int_equal(kvc_parse_size("-1", &u), -EINVAL);
    assert_int_equal(kvc_parse_duration_ms("2s", &i), 0);
    assert_int_equal(i, 2000);
    assert_int_equal(kvc_parse_duration_ms("0", &i), 0);
    assert_int_equal(i, 0);
    assert_int_equal(kvc_parse_duration_ms("10", &i), -EINVAL);
    assert_int_equal(kvc_parse_duration_ms("5M", &i), -EINVAL);
    assert_int_equal(kvc_parse_duration_ms("1d", &i), 0);
    assert_int_equal(i, 86400000);

    char buf[32];
    kvc_format_size(0, buf, sizeof buf);
    assert_string_equal(buf, "0");
    kvc_format_size(1536ull << 20, buf, sizeof buf);
    assert_string_equal(buf, "1536M");
    kvc_format_size(1000, buf, sizeof buf);
    assert_string_equal(buf, "1000");
    kvc_format_duration_ms(90000, buf, sizeof buf);
    assert_string_equal(buf, "90s");
    kvc_format_duration_ms(7200000, buf, sizeof buf);
    assert_string_equal(buf, "2h");
    kvc_format_duration_ms(1500, buf, sizeof buf);
    assert_string_equal(buf, "1500ms");
}

static void
test_load_file_errors(void **state)
{
    struct kvc_config *cfg = NULL;
    char *errs = NULL;
    assert_int_equal(kvc_config_load(&schema, "/nonexistent/kvc.conf", &cfg, &errs),
                     -ENOENT);
    assert_string_equal(errs, "/nonexistent/kvc.conf: No such file or directory\n");
    free(errs);

    char path[] = "/tmp/kvc-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, KVC_CONFIG_MAX_FILE + 1), 0);
    close(fd);
    assert_int_equal(kvc_config_load(&schema, path, &cfg, &errs), -EFBIG);
    assert_non_null(strstr(errs, "file too large"));
    free(errs);
    unlink(path);
}

static const struct kvc_cfg_key bad_default_keys[] = {
    KVC_CFG_KEY_INT("n", "1000", 1, 10, "bad default"),
    KVC_CFG_KEY_END,
};
static const struct kvc_cfg_section_def bad_sections[] = {
    { .name = "s", .keys = bad_default_keys },
    { .name = NULL },
};
static const struct kvc_cfg_schema bad_schema = { .name = "bad", .sections = bad_sections };

static void
test_bad_schema_default(void **state)
{
    struct kvc_config *cfg = NULL;
    char *errs = NULL;
    assert_int_equal(kvc_config_new(&bad_schema, &cfg, &errs), -EINVAL);
    assert_null(cfg);
    assert_string_equal(errs, "bad: bad default in the program's schema, section [s]: "
                        "schema default: key 'n': 1000 is out of range (1..10)\n");
    free(errs);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_values_and_named_sections),
        cmocka_unit_test(test_errors_have_lines),
        cmocka_unit_test(test_too_many_errors),
        cmocka_unit_test(test_dump_round_trip),
        cmocka_unit_test(test_parsers),
        cmocka_unit_test(test_load_file_errors),
        cmocka_unit_test(test_bad_schema_default),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
