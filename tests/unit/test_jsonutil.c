/* lib/jsonutil: strict readers name the field; bodies are bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ids.h"
#include "jsonutil.h"

static json_t *
body(const char *s)
{
    struct kvc_json_err e;
    json_t *v = kvc_json_parse_body(s, strlen(s), 4096, &e);
    if (!v)
        fail_msg("parse: %s", e.msg);
    return v;
}

static void
test_parse_body_limits(void **state)
{
    struct kvc_json_err e;
    const char *big = "{\"name\": \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}";
    assert_null(kvc_json_parse_body(big, strlen(big), 16, &e));
    assert_string_equal(e.msg, "request body too large (52 bytes, limit 16)");
    assert_null(kvc_json_parse_body("", 0, 16, &e));
    assert_string_equal(e.msg, "empty request body");
    assert_null(kvc_json_parse_body("{\"a\": 1,\n \"b\": }", 17, 100, &e));
    assert_true(strncmp(e.msg, "invalid JSON at line 2 column", 29) == 0);
    assert_null(kvc_json_parse_body("{\"a\":1,\"a\":2}", 13, 100, &e));
    assert_non_null(strstr(e.msg, "duplicate"));
    assert_null(kvc_json_parse_body("[1,2]", 5, 100, &e));
    assert_string_equal(e.msg, "request body: expected a JSON object");
    /* Only LEN bytes are read: no NUL terminator needed. */
    json_t *v = kvc_json_parse_body("{}garbage", 2, 100, &e);
    assert_non_null(v);
    json_decref(v);
    v = kvc_json_parse_any("\"token\"", 7, 100, &e);
    assert_true(json_is_string(v));
    json_decref(v);
    /* Deep nesting is refused by jansson's depth limit, not a crash. */
    size_t n = 100000;
    char *deep = malloc(2 * n);
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    assert_null(kvc_json_parse_any(deep, 2 * n, 4 * n, &e));
    free(deep);
}

static void
test_int_reader(void **state)
{
    struct kvc_json_err e;
    json_t *o = body("{\"memory_MiB\": 2048, \"cpu\": \"4\", \"x\": 1.5, \"n\": null}");
    int64_t v = -1;
    assert_int_equal(kvc_json_get_int(o, "memory_MiB", KVC_JSON_REQUIRED, 4,
                                      1 << 20, &v, &e), 1);
    assert_int_equal(v, 2048);
    assert_int_equal(kvc_json_get_int(o, "cpu", 0, 1, 64, &v, &e), -EINVAL);
    assert_string_equal(e.msg, "field 'cpu': expected integer, got string");
    assert_int_equal(kvc_json_get_int(o, "x", 0, 0, 10, &v, &e), -EINVAL);
    assert_string_equal(e.msg, "field 'x': expected integer, got number");
    assert_int_equal(kvc_json_get_int(o, "memory_MiB", 0, 1, 1024, &v, &e), -EINVAL);
    assert_string_equal(e.msg, "field 'memory_MiB': 2048 is out of range (1..1024)");
    v = 7;
    assert_int_equal(kvc_json_get_int(o, "absent", 0, 0, 10, &v, &e), 0);
    assert_int_equal(kvc_json_get_int(o, "n", 0, 0, 10, &v, &e), 0);
    assert_int_equal(v, 7);
    assert_int_equal(kvc_json_get_int(o, "absent", KVC_JSON_REQUIRED, 0, 10, &v, &e),
                     -EINVAL);
    assert_string_equal(e.msg, "field 'absent': missing");
    json_t *arr = json_array();
    assert_int_equal(kvc_json_get_int(arr, "a", 0, 0, 1, &v, &e), -EINVAL);
    json_decref(arr);
    json_decref(o);
}

static void
test_other_readers(void **state)
{
    struct kvc_json_err e;
    json_t *o = body("{\"name\": \"vm1\", \"empty\": \"\", \"on\": true,"
                     " \"state\": \"POWERED_ON\", \"host\": \"host-3\","
                     " \"bad_host\": \"vm-3\", \"spec\": {\"a\": 1},"
                     " \"list\": [1], \"nul\": \"a\\u0000b\"}");
    const char *s;
    assert_int_equal(kvc_json_get_string(o, "name", KVC_JSON_REQUIRED, 80, &s, &e), 1);
    assert_string_equal(s, "vm1");
    assert_int_equal(kvc_json_get_string(o, "name", 0, 2, &s, &e), -EINVAL);
    assert_string_equal(e.msg, "field 'name': longer than 2 bytes");
    assert_int_equal(kvc_json_get_string(o, "empty", KVC_JSON_NONEMPTY, 0, &s, &e), -EINVAL);
    assert_string_equal(e.msg, "field 'empty': must not be empty");
    assert_int_equal(kvc_json_get_string(o, "on", 0, 0, &s, &e), -EINVAL);
    assert_string_equal(e.msg, "field 'on': expected string, got boolean");
    assert_int_equal(kvc_json_get_string(o, "nul", 0, 0, &s, &e), -EINVAL);
    assert_string_equal(e.msg, "field 'nul': NUL character in string");

    bool b = false;
    assert_int_equal(kvc_json_get_bool(o, "on", 0, &b, &e), 1);
    assert_true(b);
    assert_int_equal(kvc_json_get_bool(o, "name", 0, &b, &e), -EINVAL);
    assert_string_equal(e.msg, "field 'name': expected boolean, got string");

    static const char *const states[] = { "POWERED_OFF", "POWERED_ON", "SUSPENDED", NULL };
    int idx = -1;
    assert_int_equal(kvc_json_get_enum(o, "state", 0, states, &idx, &e), 1);
    assert_int_equal(idx, 1);
    assert_int_equal(kvc_json_get_enum(o, "name", 0, states, &idx, &e), -EINVAL);
    assert_string_equal(e.msg, "field 'name': expected one of POWERED_OFF, "
                        "POWERED_ON, SUSPENDED; got 'vm1'");

    uint64_t id = 0;
    assert_int_equal(kvc_json_get_id(o, "host", 0, KVC_ID_HOST, &id, &e), 1);
    assert_int_equal(id, 3);
    assert_int_equal(kvc_json_get_id(o, "bad_host", 0, KVC_ID_HOST, &id, &e), -EINVAL);
    assert_string_equal(e.msg, "field 'bad_host': expected an id like 'host-1', got 'vm-3'");

    json_t *sub = NULL;
    assert_int_equal(kvc_json_get_object(o, "spec", 0, &sub, &e), 1);
    assert_true(json_is_object(sub));
    assert_int_equal(kvc_json_get_object(o, "list", 0, &sub, &e), -EINVAL);
    assert_string_equal(e.msg, "field 'list': expected object, got array");
    assert_int_equal(kvc_json_get_array(o, "list", 0, &sub, &e), 1);
    assert_int_equal(kvc_json_get_array(o, "spec", 0, &sub, &e), -EINVAL);
    assert_string_equal(e.msg, "field 'spec': expected array, got object");
    json_decref(o);
}

static void
test_check_fields(void **state)
{
    struct kvc_json_err e;
    json_t *o = body("{\"name\": \"a\", \"memroy_MiB\": 1}");
    static const char *const allowed[] = { "name", "memory_MiB", NULL };
    assert_int_equal(kvc_json_check_fields(o, allowed, &e), -EINVAL);
    assert_string_equal(e.msg, "unknown field 'memroy_MiB'");
    json_object_del(o, "memroy_MiB");
    assert_int_equal(kvc_json_check_fields(o, allowed, &e), 0);
    json_decref(o);
}

static void
test_api_error(void **state)
{
    json_t *err = kvc_json_api_error("NOT_FOUND", NULL, "VM %s not found", "vm-9");
    char *s = kvc_json_dump(err);
    assert_string_equal(s, "{\"error_type\":\"NOT_FOUND\",\"messages\":[{\"args\":[],"
                        "\"default_message\":\"VM vm-9 not found\","
                        "\"id\":\"com.vmware.vapi.std.errors.not_found\"}]}");
    free(s);
    assert_string_equal(kvc_json_api_error_message(err), "VM vm-9 not found");
    json_t *wrapped = json_pack("{s:O}", "value", err);
    assert_string_equal(kvc_json_api_error_message(wrapped), "VM vm-9 not found");
    json_decref(wrapped);
    json_decref(err);
    json_t *other = json_pack("{s:i}", "a", 1);
    assert_null(kvc_json_api_error_message(other));
    assert_null(kvc_json_api_error_message(NULL));
    json_decref(other);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_body_limits),
        cmocka_unit_test(test_int_reader),
        cmocka_unit_test(test_other_readers),
        cmocka_unit_test(test_check_fields),
        cmocka_unit_test(test_api_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
