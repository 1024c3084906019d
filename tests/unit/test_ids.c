/* lib/ids: parse, format, and refuse everything that is not canonical. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "ids.h"

static void
test_parse_each_kind(void **state)
{
    static const struct { const char *s; enum kvc_id_kind k; uint64_t n; } ok[] = {
        { "vm-12", KVC_ID_VM, 12 },
        { "host-3", KVC_ID_HOST, 3 },
        { "domain-c7", KVC_ID_CLUSTER, 7 },
        { "datacenter-2", KVC_ID_DATACENTER, 2 },
        { "datastore-29", KVC_ID_DATASTORE, 29 },
        { "network-12", KVC_ID_NETWORK, 12 },
        { "dvportgroup-40", KVC_ID_DVPORTGROUP, 40 },
        { "group-v3", KVC_ID_FOLDER_VM, 3 },
        { "group-h4", KVC_ID_FOLDER_HOST, 4 },
        { "group-s5", KVC_ID_FOLDER_DATASTORE, 5 },
        { "group-n6", KVC_ID_FOLDER_NETWORK, 6 },
        { "group-d1", KVC_ID_FOLDER_DATACENTER, 1 },
        { "resgroup-9", KVC_ID_RESPOOL, 9 },
        { "task-41", KVC_ID_TASK, 41 },
        { "event-100", KVC_ID_EVENT, 100 },
        { "alarm-1", KVC_ID_ALARM, 1 },
        { "snapshot-2", KVC_ID_SNAPSHOT, 2 },
        { "vm-9223372036854775807", KVC_ID_VM, 9223372036854775807ull },
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        struct kvc_id id;
        assert_int_equal(kvc_id_parse(ok[i].s, &id), 0);
        assert_int_equal(id.kind, ok[i].k);
        assert_true(id.num == ok[i].n);
        assert_true(kvc_id_valid(ok[i].s, ok[i].k));
        char buf[KVC_ID_MAX_LEN];
        assert_int_equal(kvc_id_format(id.kind, id.num, buf, sizeof buf),
                         (int)strlen(ok[i].s));
        assert_string_equal(buf, ok[i].s);
    }
}

static void
test_reject_garbage(void **state)
{
    static const char *const bad[] = {
        "", "vm", "vm-", "vm-0", "vm-012", "vm--1", "vm-+1", "vm- 1", " vm-1",
        "vm-1 ", "vm-1x", "VM-1", "vm_1", "vm-0x10", "domain-7", "group-1",
        "group-x1", "host-3.5", "vm-1\n", "cluster-1", "datacenter-",
        "vm-\xc2\xb9",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct kvc_id id;
        if (kvc_id_parse(bad[i], &id) != -EINVAL)
            fail_msg("accepted '%s'", bad[i]);
    }
    struct kvc_id id;
    assert_int_equal(kvc_id_parse(NULL, &id), -EINVAL);
}

static void
test_overflow(void **state)
{
    struct kvc_id id;
    assert_int_equal(kvc_id_parse("vm-9223372036854775808", &id), -ERANGE);
    assert_int_equal(kvc_id_parse("host-99999999999999999999999", &id), -ERANGE);
    char buf[KVC_ID_MAX_LEN];
    assert_int_equal(kvc_id_format(KVC_ID_VM, 9223372036854775808ull, buf, sizeof buf),
                     -EINVAL);
    assert_int_equal(kvc_id_format(KVC_ID_VM, 0, buf, sizeof buf), -EINVAL);
    assert_int_equal(kvc_id_format(KVC_ID_KIND_MAX, 1, buf, sizeof buf), -EINVAL);
    assert_int_equal(kvc_id_format(KVC_ID_VM, 12345, buf, 5), -ENOSPC);
    /* The longest id fits KVC_ID_MAX_LEN. */
    assert_int_equal(kvc_id_format(KVC_ID_DVPORTGROUP, 9223372036854775807ull,
                                   buf, sizeof buf), KVC_ID_MAX_LEN - 1);
}

static void
test_wrong_kind_and_names(void **state)
{
    uint64_t n = 77;
    assert_int_equal(kvc_id_parse_kind("host-3", KVC_ID_VM, &n), -EINVAL);
    assert_int_equal(n, 77);
    assert_int_equal(kvc_id_parse_kind("vm-3", KVC_ID_VM, &n), 0);
    assert_int_equal(n, 3);
    assert_false(kvc_id_valid("group-v3", KVC_ID_FOLDER_HOST));
    assert_string_equal(kvc_id_type_name(KVC_ID_VM), "VirtualMachine");
    assert_string_equal(kvc_id_type_name(KVC_ID_CLUSTER), "ClusterComputeResource");
    assert_string_equal(kvc_id_prefix(KVC_ID_CLUSTER), "domain-c");
    assert_null(kvc_id_prefix(0));
    assert_int_equal(kvc_id_kind_from_type_name("HostSystem"), KVC_ID_HOST);
    assert_int_equal(kvc_id_kind_from_type_name("group-v"), KVC_ID_FOLDER_VM);
    assert_int_equal(kvc_id_kind_from_type_name("Folder"), 0);
    assert_int_equal(kvc_id_kind_from_type_name("nope"), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_each_kind),
        cmocka_unit_test(test_reject_garbage),
        cmocka_unit_test(test_overflow),
        cmocka_unit_test(test_wrong_kind_and_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
