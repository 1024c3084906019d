/* vmkd's live vSwitch configuration (vmkernel-kvm/vmkd_net.c): switches and
 * port groups added, re-tagged and removed while a VM port is attached, the
 * rules (names, VLANs, busy), and STATE-DIR/vswitch.state applied over
 * vmkd.conf by the next vmkd. */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "configfile.h"
#include "vmkd_net.h"

static const struct kvc_cfg_key vmkd_keys[] = {
    KVC_CFG_KEY_STRING("state-dir", "/nonexistent", "state"),
    KVC_CFG_KEY_END,
};
static const struct kvc_cfg_section_def sections[] = {
    { .name = "vmkd", .keys = vmkd_keys },
    { .name = "vswitch", .keys = vmkd_net_vswitch_keys },
    { .name = "portgroup", .named = true, .keys = vmkd_net_portgroup_keys },
    { .name = NULL },
};
static const struct kvc_cfg_schema schema = { .name = "vmkd", .sections = sections };

struct fixture {
    char dir[64];
    struct kvc_config *cfg;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char text[256], *errs = NULL;
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_vmkd_vswitch.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(text, sizeof(text), "[vmkd]\nstate-dir = \"%s\"\n[portgroup \"VM Network\"]\n"
             "vlan = 0\n", f->dir);
    assert_int_equal(kvc_config_parse(&schema, "vmkd.conf", text, strlen(text), &f->cfg,
                                      &errs), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char path[128];
    snprintf(path, sizeof(path), "%s/vswitch.state", f->dir);
    unlink(path);
    rmdir(f->dir);
    kvc_config_free(f->cfg);
    free(f);
    return 0;
}

static struct vmkd_net *open_net(struct fixture *f)
{
    struct vmkd_net *n = NULL;
    char why[256] = "";
    assert_int_equal(vmkd_net_new(f->cfg, &n, why, sizeof(why)), 0);
    return n;
}

/* "name:vswitch:vlan:ports ..." of every port group, for comparisons. */
static void pgs(struct vmkd_net *n, char *out, size_t len)
{
    size_t o = 0;
    out[0] = 0;
    for (size_t i = 0; i < vmkd_net_pg_count(n); i++) {
        struct vmkd_net_pg_info p;
        vmkd_net_pg_nth(n, i, &p);
        o += (size_t)snprintf(out + o, len - o, "%s%s:%s:%u:%u", i ? " " : "", p.name,
                              p.vswitch, p.vlan, p.ports);
    }
}

static void test_rules(void **state)
{
    struct vmkd_net *n = open_net(*state);
    char why[256], s[512];

    assert_int_equal(vmkd_net_sw_count(n), 1);
    assert_int_equal(vmkd_net_sw_add(n, "vSwitch1", 0, 9000, why, sizeof(why)), 0);
    assert_int_equal(vmkd_net_sw_add(n, "vSwitch1", 0, 0, why, sizeof(why)), -EEXIST);
    assert_int_equal(vmkd_net_sw_add(n, "a/b", 0, 0, why, sizeof(why)), -EINVAL);
    assert_int_equal(vmkd_net_sw_add(n, "", 0, 0, why, sizeof(why)), -EINVAL);
    assert_int_equal(vmkd_net_sw_add(n, "vs\n", 0, 0, why, sizeof(why)), -EINVAL);
    assert_int_equal(vmkd_net_sw_add(n, "vs2", 7, 0, why, sizeof(why)), -EINVAL);
    assert_int_equal(vmkd_net_sw_add(n, "vs2", 0, 9001, why, sizeof(why)), -EINVAL);
    assert_int_equal(vmkd_net_pg_add(n, "PG 10", "vSwitch1", 10, why, sizeof(why)), 0);
    assert_int_equal(vmkd_net_pg_add(n, "PG 10", "vSwitch0", 10, why, sizeof(why)), -EEXIST);
    assert_int_equal(vmkd_net_pg_add(n, "PG 11", "nope", 10, why, sizeof(why)), -ENOENT);
    assert_int_equal(vmkd_net_pg_add(n, "PG 11", "vSwitch1", 4096, why, sizeof(why)), -EINVAL);
    assert_int_equal(vmkd_net_pg_set_vlan(n, "PG 10", 4096, why, sizeof(why)), -EINVAL);
    assert_int_equal(vmkd_net_pg_set_vlan(n, "nope", 1, why, sizeof(why)), -ENOENT);
    assert_int_equal(vmkd_net_sw_remove(n, "vSwitch1", why, sizeof(why)), -EBUSY);
    assert_non_null(strstr(why, "PG 10"));
    /* Refused changes changed nothing. */
    pgs(n, s, sizeof(s));
    assert_string_equal(s, "VM Network:vSwitch0:0:0 PG 10:vSwitch1:10:0");
    struct vmkd_net_sw_info w;
    vmkd_net_sw_nth(n, 1, &w);
    assert_string_equal(w.name, "vSwitch1");
    assert_int_equal(w.mtu, 9000);
    assert_int_equal(w.ports, VMKD_NET_PORTS_DEFAULT);
    vmkd_net_free(n);
}

static void test_switch_limit(void **state)
{
    struct vmkd_net *n = open_net(*state);
    char why[256], name[16];

    for (int i = 1; vmkd_net_sw_count(n) < VMKD_NET_MAX_SWITCHES; i++) {
        snprintf(name, sizeof(name), "vs%d", i);
        assert_int_equal(vmkd_net_sw_add(n, name, 8, 0, why, sizeof(why)), 0);
    }
    assert_int_equal(vmkd_net_sw_add(n, "one-more", 8, 0, why, sizeof(why)), -ENOSPC);
    assert_int_equal(vmkd_net_sw_count(n), VMKD_NET_MAX_SWITCHES);
    vmkd_net_free(n);
    /* All of them come back. */
    n = open_net(*state);
    assert_int_equal(vmkd_net_sw_count(n), VMKD_NET_MAX_SWITCHES);
    vmkd_net_free(n);
}

static void test_busy_port_group(void **state)
{
    struct vmkd_net *n = open_net(*state);
    struct vmkd_net_hooks h;
    char why[256], s[512];
    int fds[4];

    vmkd_net_hooks(n, &h);
    assert_int_equal(vmkd_net_sw_add(n, "vSwitch1", 8, 0, why, sizeof(why)), 0);
    assert_int_equal(vmkd_net_pg_add(n, "PG 10", "vSwitch1", 10, why, sizeof(why)), 0);
    assert_int_equal(h.port_add(h.ctx, "vm1", "PG 10", "00:50:56:00:00:01", fds, why,
                                sizeof(why)), 0);
    assert_true(fds[3] >= 0);           /* the vmx's end of the port's link */
    close(fds[3]);
    assert_int_equal(vmkd_net_pg_remove(n, "PG 10", why, sizeof(why)), -EBUSY);
    /* Re-tagged live, the port stays. */
    assert_int_equal(vmkd_net_pg_set_vlan(n, "PG 10", 20, why, sizeof(why)), 0);
    pgs(n, s, sizeof(s));
    assert_string_equal(s, "VM Network:vSwitch0:0:0 PG 10:vSwitch1:20:1");
    struct vmkd_net_sw_info w;
    vmkd_net_sw_nth(n, 1, &w);
    assert_int_equal(w.used, 1);
    h.port_remove(h.ctx, "vm1");
    assert_int_equal(vmkd_net_pg_remove(n, "PG 10", why, sizeof(why)), 0);
    assert_int_equal(vmkd_net_sw_remove(n, "vSwitch1", why, sizeof(why)), 0);
    assert_int_equal(vmkd_net_sw_count(n), 1);
    vmkd_net_free(n);
}

static void test_state_survives_a_restart(void **state)
{
    struct fixture *f = *state;
    struct vmkd_net *n = open_net(f);
    char why[256], s[512], path[128];

    assert_int_equal(vmkd_net_sw_add(n, "vSwitch1", 64, 9000, why, sizeof(why)), 0);
    assert_int_equal(vmkd_net_pg_add(n, "PG 20", "vSwitch1", 20, why, sizeof(why)), 0);
    assert_int_equal(vmkd_net_pg_remove(n, "VM Network", why, sizeof(why)), 0);
    vmkd_net_free(n);

    n = open_net(f);                    /* vmkd.conf still has "VM Network" */
    pgs(n, s, sizeof(s));
    assert_string_equal(s, "PG 20:vSwitch1:20:0");
    assert_int_equal(vmkd_net_sw_count(n), 2);
    struct vmkd_net_sw_info w;
    vmkd_net_sw_nth(n, 1, &w);
    assert_int_equal(w.ports, 64);
    assert_int_equal(w.mtu, 9000);
    vmkd_net_free(n);

    /* A damaged state file stops vmkd with a message, rather than a guess. */
    snprintf(path, sizeof(path), "%s/vswitch.state", f->dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("vswitch\tvSwitch9\n", fp);
    fclose(fp);
    n = NULL;
    why[0] = 0;
    assert_int_equal(vmkd_net_new(f->cfg, &n, why, sizeof(why)), -EINVAL);
    assert_null(n);
    assert_non_null(strstr(why, "vswitch.state:1"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_switch_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy_port_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_survives_a_restart, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
