/* cli/cmd: the shared command table: paths, typed options, esxcli-style
 * errors with the usage, --help at every level, running and formatting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"

static int
run_echo(struct kvc_ctx *ctx, const struct kvc_args *a, json_t **res, char *err,
         size_t len)
{
    *res = json_pack("{s:s, s:I}", "Name", kvc_arg_str(a, "portgroup-name"),
                     "VLANID", (json_int_t)kvc_arg_int(a, "vlan-id", -1));
    return 0;
}

static int
run_fail(struct kvc_ctx *ctx, const struct kvc_args *a, json_t **res, char *err,
         size_t len)
{
    snprintf(err, len, "Unable to find world %lld", (long long)kvc_arg_int(a, "world-id", 0));
    return -ENOENT;
}

static int
run_nothing(struct kvc_ctx *ctx, const struct kvc_args *a, json_t **res, char *err,
            size_t len)
{
    *res = NULL;
    return 0;
}

static const struct kvc_opt pg_set_opts[] = {
    { "portgroup-name", 'p', KVC_OPT_STRING, .required = true,
      .help = "The name of the port group." },
    { "vlan-id", 'v', KVC_OPT_INT, .bounded = true, .min = 0, .max = 4095,
      .help = "The VLAN id (0 - 4095)." },
    { NULL },
};
static const struct kvc_opt kill_opts[] = {
    { "type", 't', KVC_OPT_ENUM, .required = true,
      .values = (const char *const[]){ "soft", "hard", "force", NULL },
      .help = "The type of kill." },
    { "world-id", 'w', KVC_OPT_INT, .required = true, .help = "The World ID." },
    { NULL },
};
static const struct kvc_opt mm_opts[] = {
    { "enable", 'e', KVC_OPT_BOOL, .required = true, .help = "Enter or exit." },
    { NULL },
};
static const struct kvc_field pg_fields[] = {
    { "Name", KVC_F_STRING }, { "VLAN ID", KVC_F_INT }, { NULL },
};
static const struct kvc_shape pg_shape = { "PortGroup", pg_fields };

static const struct kvc_ns namespaces[] = {
    { "network", "Operations on the network." },
    { "network vswitch", "Virtual switches." },
    { "vm", "Virtual machines." },
    { NULL },
};
static const struct kvc_cmd cmds[] = {
    { "network vswitch standard portgroup set", "Set the VLAN id of a port group.",
      pg_set_opts, &pg_shape, run_echo },
    { "network vswitch standard list", "List virtual switches.", NULL, NULL,
      run_nothing },
    { "vm process kill", "Kill a VM.", kill_opts, NULL, run_fail },
    { "system maintenanceMode set", "Enter or exit maintenance mode.", mm_opts,
      NULL, run_nothing },
    { NULL },
};
static const struct kvc_cmd_table table = { "kvcli", "[options] ", namespaces, cmds };

struct run {
    int rc;
    char *out, *err;
};

/* Runs "kvcli WORDS" through kvc_cmd_main with the table above. */
static struct run
run(const char *line)
{
    char *copy = strdup(line), *words[32], *save = NULL;
    int n = 0;
    for (char *w = strtok_r(copy, " ", &save); w && n < 32; w = strtok_r(NULL, " ", &save))
        words[n++] = w;
    struct run r = { 0 };
    size_t lo, le;
    FILE *out = open_memstream(&r.out, &lo), *err = open_memstream(&r.err, &le);
    r.rc = kvc_cmd_main(&table, NULL, n, words, KVC_FMT_TABLE, out, err);
    fclose(out);
    fclose(err);
    free(copy);
    return r;
}

static void
done(struct run *r)
{
    free(r->out);
    free(r->err);
}

static void
test_run_with_options(void **state)
{
    struct run r = run("network vswitch standard portgroup set -p PG1 --vlan-id=30");
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "   Name: PG1\n   VLAN ID: 30\n");
    assert_string_equal(r.err, "");
    done(&r);
    r = run("network vswitch standard portgroup set --vlan-id 4095 -pPG2");
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "   Name: PG2\n   VLAN ID: 4095\n");
    done(&r);
    r = run("network vswitch standard portgroup set --portgroup-name=x");
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "   Name: x\n   VLAN ID: -1\n");
    done(&r);
}

static void
test_bad_value_error(void **state)
{
    struct run r = run("network vswitch standard portgroup set -p PG --vlan-id abc");
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.out, "");
    assert_string_equal(r.err,
        "Error: While processing '--vlan-id'. Expected an integer in the range "
        "(0 - 4095), got 'abc'.\n\n"
        "Usage: kvcli network vswitch standard portgroup set [cmd options]\n\n"
        "Description:\n"
        "  set                   Set the VLAN id of a port group.\n\n"
        "Cmd options:\n"
        "  -p|--portgroup-name=<str>\n"
        "                        The name of the port group. (required)\n"
        "  -v|--vlan-id=<long>   The VLAN id (0 - 4095).\n");
    done(&r);
    r = run("network vswitch standard portgroup set -p PG --vlan-id 4096");
    assert_int_equal(r.rc, 1);
    assert_true(strncmp(r.err, "Error: While processing '--vlan-id'. Expected an "
                        "integer in the range (0 - 4095), got '4096'.\n", 87) == 0);
    done(&r);
    r = run("vm process kill -t gentle -w 5");
    assert_int_equal(r.rc, 1);
    assert_true(strncmp(r.err, "Error: While processing '--type'. Invalid value "
                        "'gentle': expected one of soft, hard, force.\n", 93) == 0);
    done(&r);
    r = run("system maintenanceMode set -e maybe");
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.err, "Error: While processing '--enable'. Expected a boolean"));
    done(&r);
}

static void
test_other_errors(void **state)
{
    struct run r = run("network vswitch standard portgroup set --vlan-id 3");
    assert_int_equal(r.rc, 1);
    assert_true(strncmp(r.err, "Error: Missing required parameter -p|--portgroup-name\n\nUsage: ", 62) == 0);
    done(&r);
    r = run("network vswitch standard portgroup set -p a --colour red");
    assert_int_equal(r.rc, 1);
    assert_true(strncmp(r.err, "Error: Invalid option --colour\n", 31) == 0);
    done(&r);
    r = run("network vswitch standard portgroup set -p a -p b");
    assert_int_equal(r.rc, 1);
    assert_true(strncmp(r.err, "Error: Option '-p|--portgroup-name' given more than once.", 57) == 0);
    done(&r);
    r = run("network vswitch standard portgroup set -p");
    assert_int_equal(r.rc, 1);
    assert_true(strncmp(r.err, "Error: Missing value for option -p|--portgroup-name", 51) == 0);
    done(&r);
    r = run("network vswitch standard portgroup set -p a extra");
    assert_int_equal(r.rc, 1);
    assert_true(strncmp(r.err, "Error: Unexpected argument 'extra'", 34) == 0);
    done(&r);
    r = run("network vswitch bogus list");
    assert_int_equal(r.rc, 1);
    assert_true(strncmp(r.err, "Error: Unknown command or namespace network vswitch bogus\n\n"
                        "Usage: kvcli network vswitch {cmd} [cmd options]\n", 108) == 0);
    done(&r);
    /* A failing command prints its error and exits 1. */
    r = run("vm process kill -t hard -w 77");
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.err, "Error: Unable to find world 77\n");
    assert_string_equal(r.out, "");
    done(&r);
}

static void
test_help_at_every_level(void **state)
{
    struct run r = run("--help");
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out,
        "Usage: kvcli [options] {namespace}+ {cmd} [cmd options]\n\n"
        "Available Namespaces:\n"
        "  network               Operations on the network.\n"
        "  vm                    Virtual machines.\n"
        "  system                \n\n"
        "For more information on a command, add --help.\n");
    done(&r);
    r = run("network vswitch standard --help");
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out,
        "Usage: kvcli network vswitch standard {cmd} [cmd options]\n\n"
        "Available Namespaces:\n"
        "  portgroup             \n\n"
        "Available Commands:\n"
        "  list                  List virtual switches.\n\n"
        "For more information on a command, add --help.\n");
    done(&r);
    r = run("vm process kill --help");
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "  -t|--type=<str>       The type of kill. (one of: soft hard force) (required)\n"));
    done(&r);
    /* A bare namespace shows its help on stderr and fails. */
    r = run("network");
    assert_int_equal(r.rc, 1);
    assert_true(strncmp(r.err, "Usage: kvcli network {cmd} [cmd options]\n", 41) == 0);
    done(&r);
    /* Commands that print nothing. */
    r = run("system maintenanceMode set --enable=yes");
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "");
    done(&r);
}

static void
test_parse_api(void **state)
{
    char *words[] = { "vm", "process", "kill", "-t", "force", "--world-id=12" };
    const struct kvc_cmd *c = NULL;
    struct kvc_args a;
    FILE *null = fopen("/dev/null", "w");
    assert_int_equal(kvc_cmd_parse(&table, 6, words, &c, &a, null, null), 1);
    assert_ptr_equal(c, &cmds[2]);
    assert_int_equal(kvc_arg_int(&a, "type", -1), 2);
    assert_string_equal(kvc_arg_str(&a, "type"), "force");
    assert_int_equal(kvc_arg_int(&a, "world-id", 0), 12);
    assert_true(kvc_arg_isset(&a, "world-id"));
    char *w2[] = { "system", "maintenanceMode", "set", "-e", "false" };
    assert_int_equal(kvc_cmd_parse(&table, 5, w2, &c, &a, null, null), 1);
    assert_false(kvc_arg_bool(&a, "enable", true));
    fclose(null);
}

static char *
complete(int n, char **words)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    kvc_cmd_complete(&table, n, words, f);
    fclose(f);
    return buf;
}

static void
test_completion(void **state)
{
    char *s = complete(0, NULL);
    assert_string_equal(s, "network\nvm\nsystem\n");
    free(s);
    char *w1[] = { "network", "vswitch", "standard" };
    s = complete(3, w1);
    assert_string_equal(s, "portgroup\nlist\n");
    free(s);
    char *w2[] = { "vm", "process", "kill" };
    s = complete(3, w2);
    assert_string_equal(s, "--type\n--world-id\n--help\n");
    free(s);
    char *w3[] = { "vm", "process", "kill", "-w", "3", "--type" };
    s = complete(6, w3);
    assert_string_equal(s, "soft\nhard\nforce\n");
    free(s);
    char *w4[] = { "vm", "process", "kill", "-w", "3" };
    s = complete(5, w4);
    assert_string_equal(s, "--type\n--help\n");
    free(s);
    char *w5[] = { "system", "maintenanceMode", "set", "-e" };
    s = complete(4, w5);
    assert_string_equal(s, "true\nfalse\n");
    free(s);
    char *w6[] = { "nosuch" };
    s = complete(1, w6);
    assert_string_equal(s, "");
    free(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_with_options),
        cmocka_unit_test(test_bad_value_error),
        cmocka_unit_test(test_other_errors),
        cmocka_unit_test(test_help_at_every_level),
        cmocka_unit_test(test_parse_api),
        cmocka_unit_test(test_completion),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
