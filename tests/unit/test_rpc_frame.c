/* Frame header codec of the RPC transport (lib/rpc-frame.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "rpc.h"

static void
test_header_round_trip(void **state)
{
    struct kvc_rpc_header h = { .flags = KVC_RPC_FLAG_RESPONSE | KVC_RPC_FLAG_ERROR,
                                .method = 0x2001, .request_id = 0x0102030405060708ull,
                                .length = 1234 }, d;
    uint8_t buf[KVC_RPC_HEADER_SIZE];

    kvc_rpc_header_encode(&h, buf);
    assert_memory_equal(buf, "KVCR\x01\x03\0\0\0\0\x20\x01\x01\x02\x03\x04\x05\x06\x07\x08\0\0\x04\xd2", 24);
    assert_int_equal(kvc_rpc_header_decode(buf, sizeof buf, 4096, &d), 0);
    assert_int_equal(d.flags, h.flags);
    assert_int_equal(d.method, h.method);
    assert_true(d.request_id == h.request_id);
    assert_int_equal(d.length, h.length);
}

static void
test_header_short_and_bad(void **state)
{
    struct kvc_rpc_header h = { .method = 1, .request_id = 7, .length = 0 }, d;
    uint8_t buf[KVC_RPC_HEADER_SIZE], bad[KVC_RPC_HEADER_SIZE];

    kvc_rpc_header_encode(&h, buf);
    assert_int_equal(kvc_rpc_header_decode(buf, 23, 4096, &d), -EAGAIN);
    memcpy(bad, buf, sizeof bad);
    bad[0] = 'X';                               /* magic */
    assert_int_equal(kvc_rpc_header_decode(bad, sizeof bad, 4096, &d), -EBADMSG);
    memcpy(bad, buf, sizeof bad);
    bad[4] = 2;                                 /* version */
    assert_int_equal(kvc_rpc_header_decode(bad, sizeof bad, 4096, &d), -EBADMSG);
    memcpy(bad, buf, sizeof bad);
    bad[5] = 0x80;                              /* unknown flag */
    assert_int_equal(kvc_rpc_header_decode(bad, sizeof bad, 4096, &d), -EBADMSG);
    memcpy(bad, buf, sizeof bad);
    bad[5] = KVC_RPC_FLAG_ERROR;                /* error without response */
    assert_int_equal(kvc_rpc_header_decode(bad, sizeof bad, 4096, &d), -EBADMSG);
    memcpy(bad, buf, sizeof bad);
    bad[7] = 1;                                 /* reserved */
    assert_int_equal(kvc_rpc_header_decode(bad, sizeof bad, 4096, &d), -EBADMSG);
    memcpy(bad, buf, sizeof bad);
    memset(bad + 12, 0, 8);                     /* request id 0 on a request */
    assert_int_equal(kvc_rpc_header_decode(bad, sizeof bad, 4096, &d), -EBADMSG);
}

static void
test_header_size_limit(void **state)
{
    struct kvc_rpc_header h = { .method = 1, .request_id = 9, .length = 4097 }, d;
    uint8_t buf[KVC_RPC_HEADER_SIZE];

    kvc_rpc_header_encode(&h, buf);
    assert_int_equal(kvc_rpc_header_decode(buf, sizeof buf, 4096, &d), -EMSGSIZE);
    assert_true(d.request_id == 9);             /* still answerable */
    h.length = 0xffffffffu;
    kvc_rpc_header_encode(&h, buf);
    assert_int_equal(kvc_rpc_header_decode(buf, sizeof buf, KVC_RPC_DEFAULT_MAX_FRAME, &d),
                     -EMSGSIZE);
    h.length = 4096;
    kvc_rpc_header_encode(&h, buf);
    assert_int_equal(kvc_rpc_header_decode(buf, sizeof buf, 4096, &d), 0);
}

static void
test_status_names(void **state)
{
    assert_string_equal(kvc_rpc_status_name(KVC_RPC_OK), "OK");
    assert_string_equal(kvc_rpc_status_name(KVC_RPC_E_TIMEOUT), "TIMEOUT");
    assert_string_equal(kvc_rpc_status_name(KVC_RPC_E_APP + 5), "APPLICATION");
    assert_string_equal(kvc_rpc_status_name(-3), "UNKNOWN");
    assert_string_equal(kvc_rpc_status_name(999), "UNKNOWN");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_round_trip),
        cmocka_unit_test(test_header_short_and_bad),
        cmocka_unit_test(test_header_size_limit),
        cmocka_unit_test(test_status_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
