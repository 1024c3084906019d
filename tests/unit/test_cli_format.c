/* cli/format: the five formatters print esxcli's shapes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/format.h"

static const struct kvc_field version_fields[] = {
    { "Product", KVC_F_STRING }, { "Version", KVC_F_STRING },
    { "Build", KVC_F_STRING }, { "Update", KVC_F_INT }, { "Patch", KVC_F_INT },
    { NULL },
};
static const struct kvc_shape version_shape = { "VersionGet", version_fields };

static const struct kvc_field pg_fields[] = {
    { "Name", KVC_F_STRING }, { "Virtual Switch", KVC_F_STRING },
    { "Active Clients", KVC_F_INT }, { "VLAN ID", KVC_F_INT }, { NULL },
};
static const struct kvc_shape pg_shape = { "PortGroup", pg_fields, KVC_LIST_TABLE };

static const struct kvc_field vs_fields[] = {
    { "Name", KVC_F_STRING }, { "MTU", KVC_F_INT },
    { "Uplinks", KVC_F_STRLIST }, { "Enabled", KVC_F_BOOL }, { NULL },
};
static const struct kvc_shape vs_shape = { "VirtualSwitch", vs_fields,
                                           KVC_LIST_BLOCKS, "Name" };

static char *
render(enum kvc_formatter fmt, const struct kvc_shape *sh, const char *json)
{
    json_error_t je;
    json_t *v = json_loads(json, 0, &je);
    assert_non_null(v);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_int_equal(kvc_format_write(f, fmt, sh, v), 0);
    fclose(f);
    json_decref(v);
    return buf;
}

#define VERSION "{\"Product\":\"kvcenter\",\"Version\":\"0.1.0\",\"Build\":\"7\"," \
                "\"Update\":0,\"Patch\":1}"
#define PGS "[{\"Name\":\"Management Network\",\"VirtualSwitch\":\"vSwitch0\"," \
            "\"ActiveClients\":1,\"VLANID\":0}," \
            "{\"Name\":\"VM, \\\"lab\\\"\",\"VirtualSwitch\":\"vSwitch1\"," \
            "\"ActiveClients\":12,\"VLANID\":4095}]"
#define VSS "[{\"Name\":\"vSwitch0\",\"MTU\":1500,\"Uplinks\":[\"vmnic0\",\"vmnic1\"]," \
            "\"Enabled\":true},{\"Name\":\"vSwitch1\",\"MTU\":9000,\"Uplinks\":[]," \
            "\"Enabled\":false}]"

static void
test_table_structure(void **state)
{
    char *s = render(KVC_FMT_TABLE, &version_shape, VERSION);
    assert_string_equal(s, "   Product: kvcenter\n   Version: 0.1.0\n   Build: 7\n"
                        "   Update: 0\n   Patch: 1\n");
    free(s);
}

static void
test_table_list(void **state)
{
    char *s = render(KVC_FMT_TABLE, &pg_shape, PGS);
    assert_string_equal(s,
        "Name                Virtual Switch  Active Clients  VLAN ID\n"
        "------------------  --------------  --------------  -------\n"
        "Management Network  vSwitch0                     1        0\n"
        "VM, \"lab\"           vSwitch1                    12     4095\n");
    free(s);
    s = render(KVC_FMT_TABLE, &pg_shape, "[]");
    assert_string_equal(s, "Name  Virtual Switch  Active Clients  VLAN ID\n"
                           "----  --------------  --------------  -------\n");
    free(s);
}

static void
test_table_blocks(void **state)
{
    char *s = render(KVC_FMT_TABLE, &vs_shape, VSS);
    assert_string_equal(s,
        "vSwitch0\n   Name: vSwitch0\n   MTU: 1500\n   Uplinks: vmnic0, vmnic1\n"
        "   Enabled: true\n\n"
        "vSwitch1\n   Name: vSwitch1\n   MTU: 9000\n   Uplinks: \n   Enabled: false\n\n");
    free(s);
}

static void
test_keyvalue(void **state)
{
    char *s = render(KVC_FMT_KEYVALUE, &version_shape, VERSION);
    assert_string_equal(s, "VersionGet.Product.string=kvcenter\n"
                        "VersionGet.Version.string=0.1.0\nVersionGet.Build.string=7\n"
                        "VersionGet.Update.integer=0\nVersionGet.Patch.integer=1\n");
    free(s);
    s = render(KVC_FMT_KEYVALUE, &vs_shape, VSS);
    assert_non_null(strstr(s, "VirtualSwitch.Uplinks.string[]=vmnic0\n"
                              "VirtualSwitch.Uplinks.string[]=vmnic1\n"));
    assert_non_null(strstr(s, "VirtualSwitch.Enabled.boolean=false\n"));
    free(s);
}

static void
test_csv(void **state)
{
    char *s = render(KVC_FMT_CSV, &pg_shape, PGS);
    assert_string_equal(s, "ActiveClients,Name,VLANID,VirtualSwitch,\n"
                        "1,Management Network,0,vSwitch0,\n"
                        "12,\"VM, \"\"lab\"\"\",4095,vSwitch1,\n");
    free(s);
    s = render(KVC_FMT_CSV, &version_shape, VERSION);
    assert_string_equal(s, "Build,Patch,Product,Update,Version,\n7,1,kvcenter,0,0.1.0,\n");
    free(s);
}

static void
test_xml(void **state)
{
    char *s = render(KVC_FMT_XML, &version_shape, VERSION);
    assert_string_equal(s,
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
        "<output xmlns=\"http://www.vmware.com/Products/ESX/5.0/esxcli/\">\n"
        "<root>\n"
        "   <structure typeName=\"VersionGet\">\n"
        "      <field name=\"Product\">\n         <string>kvcenter</string>\n      </field>\n"
        "      <field name=\"Version\">\n         <string>0.1.0</string>\n      </field>\n"
        "      <field name=\"Build\">\n         <string>7</string>\n      </field>\n"
        "      <field name=\"Update\">\n         <integer>0</integer>\n      </field>\n"
        "      <field name=\"Patch\">\n         <integer>1</integer>\n      </field>\n"
        "   </structure>\n"
        "</root>\n</output>\n");
    free(s);
    s = render(KVC_FMT_XML, &pg_shape, PGS);
    assert_non_null(strstr(s, "<root>\n   <list type=\"structure\">\n"
                              "      <structure typeName=\"PortGroup\">\n"));
    assert_non_null(strstr(s, "<string>VM, &quot;lab&quot;</string>"));
    assert_non_null(strstr(s, "<field name=\"VLANID\">\n            <integer>4095</integer>"));
    free(s);
    s = render(KVC_FMT_XML, &vs_shape, VSS);
    assert_non_null(strstr(s, "<list type=\"string\">\n"
                              "               <string>vmnic0</string>\n"));
    assert_non_null(strstr(s, "<boolean>true</boolean>"));
    free(s);
}

static void
test_json(void **state)
{
    char *s = render(KVC_FMT_JSON, &version_shape,
                     "{\"Patch\":1,\"Product\":\"kvcenter\",\"Extra\":3}");
    assert_string_equal(s, "{\"Product\":\"kvcenter\",\"Version\":null,\"Build\":null,"
                        "\"Update\":null,\"Patch\":1}\n");
    free(s);
    s = render(KVC_FMT_JSON, &pg_shape, "[]");
    assert_string_equal(s, "[]\n");
    free(s);
}

static void
test_bad_input_and_names(void **state)
{
    json_t *v = json_integer(3);
    FILE *f = fopen("/dev/null", "w");
    assert_int_equal(kvc_format_write(f, KVC_FMT_TABLE, &pg_shape, v), -EINVAL);
    json_decref(v);
    v = json_pack("[i]", 1);
    assert_int_equal(kvc_format_write(f, KVC_FMT_CSV, &pg_shape, v), -EINVAL);
    json_decref(v);
    fclose(f);
    assert_int_equal(kvc_formatter_from_name("xml"), KVC_FMT_XML);
    assert_int_equal(kvc_formatter_from_name("keyvalue"), KVC_FMT_KEYVALUE);
    assert_int_equal(kvc_formatter_from_name("yaml"), -1);
    char key[32];
    kvc_field_key("VMX Cartel ID", key, sizeof key);
    assert_string_equal(key, "VMXCartelID");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_structure),
        cmocka_unit_test(test_table_list),
        cmocka_unit_test(test_table_blocks),
        cmocka_unit_test(test_keyvalue),
        cmocka_unit_test(test_csv),
        cmocka_unit_test(test_xml),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_bad_input_and_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
