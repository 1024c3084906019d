/* The SNMP subagent without a master: ids to indexes, start and stop, and
 * notifications refused while detached. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>

#include "vpxd/snmp/snmp_agent.h"

const char *__lsan_default_suppressions(void);
const char *
__lsan_default_suppressions(void)
{
    return "leak:libnetsnmp\n";
}

const char *__lsan_default_options(void);
const char *
__lsan_default_options(void)
{
    return "print_suppressions=0";
}

static void
test_index_of(void **state)
{
    assert_int_equal(kvc_snmp_index_of("vm-58"), 58);
    assert_int_equal(kvc_snmp_index_of("domain-c7"), 7);
    assert_int_equal(kvc_snmp_index_of("host-2147483647"), 2147483647u);
    assert_int_equal(kvc_snmp_index_of("host-2147483648"), 0);
    assert_int_equal(kvc_snmp_index_of("vm-99999999999999"), 0);
    assert_int_equal(kvc_snmp_index_of("vm-0"), 0);
    assert_int_equal(kvc_snmp_index_of("vm-"), 0);
    assert_int_equal(kvc_snmp_index_of(""), 0);
    assert_int_equal(kvc_snmp_index_of(NULL), 0);
}

static int calls;

static int
snap(void *ctx, struct kvc_snmp_snapshot *out)
{
    calls++;
    memset(out, 0, sizeof *out);
    return 0;
}

static void
test_detached_agent(void **state)
{
    struct event_base *base = event_base_new();
    assert_non_null(base);
    char path[] = "/nonexistent/kvc-test/agentx";
    struct kvc_snmp_config cfg = { .agentx_socket = path, .ping_interval = 1 };
    struct kvc_snmp_provider pv = { .snapshot = snap };
    struct kvc_snmp_agent *a = NULL, *b = NULL;
    assert_int_equal(kvc_snmp_agent_start(base, &cfg, &pv, &a), 0);
    assert_non_null(a);
    assert_false(kvc_snmp_agent_connected(a));
    assert_int_equal(kvc_snmp_agent_start(base, &cfg, &pv, &b), -EBUSY);

    struct kvc_snmp_event e = { .trap = KVC_TRAP_VM_POWERED_ON, .entity_name = "web01",
                                .entity_id = "vm-58" };
    assert_int_equal(kvc_snmp_agent_notify(a, &e), -ENOTCONN);
    e.trap = 42;
    assert_int_equal(kvc_snmp_agent_notify(a, &e), -EINVAL);

    struct kvc_snmp_vm v1 = { .index = 58, .power_state = "poweredOff" };
    struct kvc_snmp_vm v2 = { .index = 58, .power_state = "poweredOn", .guest_state = "running" };
    struct kvc_snmp_snapshot s1 = { .vms = &v1, .nvms = 1 }, s2 = { .vms = &v2, .nvms = 1 };
    kvc_snmp_agent_notify_diff(a, &s1, &s2);        /* dropped, no crash */

    /* The loop keeps running while the subagent retries. */
    struct timeval tv = { 0, 300000 };
    event_base_loopexit(base, &tv);
    assert_int_equal(event_base_dispatch(base), 0);
    kvc_snmp_agent_invalidate(a);
    kvc_snmp_agent_stop(a);
    kvc_snmp_agent_stop(NULL);
    event_base_free(base);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_of),
        cmocka_unit_test(test_detached_agent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
