/* The CIM request handler against a fake /proc and /sys tree. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <libxml/parser.h>

#include "hostd/cim/cim.h"

static char root[256];          /* fake sysroot with hwmon */
static char bare[256];          /* fake sysroot without hwmon */
static bool vms_fail;

static void
put(const char *base, const char *rel, const char *content)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", base, rel);
    for (char *p = path + strlen(base) + 1; (p = strchr(p, '/')); p++) {
        *p = 0;
        mkdir(path, 0755);
        *p = '/';
    }
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

static void
make_tree(const char *base, bool hwmon)
{
    put(base, "proc/cpuinfo",
        "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Test CPU @ 2.40GHz\n"
        "stepping\t: 7\ncpu MHz\t\t: 2400.123\n\n"
        "processor\t: 1\nvendor_id\t: GenuineIntel\nmodel name\t: Test CPU @ 2.40GHz\n"
        "stepping\t: 7\ncpu MHz\t\t: 1200.000\n\n");
    put(base, "sys/devices/system/cpu/cpu1/cpufreq/cpuinfo_max_freq", "3000000\n");
    put(base, "proc/meminfo", "MemTotal:       16384000 kB\nMemFree:  100 kB\n"
                              "MemAvailable:    8192000 kB\n");
    put(base, "sys/class/net/eth0/type", "1\n");
    put(base, "sys/class/net/eth0/address", "52:54:00:ab:cd:ef\n");
    put(base, "sys/class/net/eth0/operstate", "up\n");
    put(base, "sys/class/net/eth0/flags", "0x1003\n");
    put(base, "sys/class/net/eth0/mtu", "1500\n");
    put(base, "sys/class/net/eth0/speed", "10000\n");
    put(base, "sys/class/net/eth1/type", "1\n");
    put(base, "sys/class/net/eth1/address", "52:54:00:00:00:02\n");
    put(base, "sys/class/net/eth1/operstate", "down\n");
    put(base, "sys/class/net/eth1/flags", "0x1002\n");
    put(base, "sys/class/net/lo/type", "772\n");
    if (!hwmon)
        return;
    put(base, "sys/class/hwmon/hwmon0/name", "coretemp\n");
    put(base, "sys/class/hwmon/hwmon0/temp1_input", "45000\n");
    put(base, "sys/class/hwmon/hwmon0/temp1_label", "Package id 0\n");
    put(base, "sys/class/hwmon/hwmon0/temp1_max", "80000\n");
    put(base, "sys/class/hwmon/hwmon0/temp1_crit", "100000\n");
    put(base, "sys/class/hwmon/hwmon0/temp2_input", "101000\n");
    put(base, "sys/class/hwmon/hwmon0/temp2_crit", "100000\n");
    put(base, "sys/class/hwmon/hwmon1/name", "nct6775\n");
    put(base, "sys/class/hwmon/hwmon1/fan1_input", "1200\n");
    put(base, "sys/class/hwmon/hwmon1/fan1_min", "300\n");
    put(base, "sys/class/hwmon/hwmon1/in0_input", "1104\n");
    put(base, "sys/class/hwmon/hwmon1/temp3_input", "0\n");
    put(base, "sys/class/hwmon/hwmon1/temp3_fault", "1\n");
}

static int
setup(void **state)
{
    snprintf(root, sizeof root, "/tmp/test_cim.XXXXXX");
    snprintf(bare, sizeof bare, "/tmp/test_cim.XXXXXX");
    if (!mkdtemp(root) || !mkdtemp(bare))
        return -1;
    make_tree(root, true);
    make_tree(bare, false);
    xmlInitParser();
    return 0;
}

static int
teardown(void **state)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", root, bare);
    return system(cmd);
}

static bool
auth(void *ctx, const char *u, const char *p)
{
    return !strcmp(u, "root") && !strcmp(p, "secret");
}

static int
vms(void *ctx, struct kvc_cim_vm **out, size_t *n)
{
    if (vms_fail)
        return -EIO;
    struct kvc_cim_vm *v = calloc(2, sizeof *v);
    strcpy(v[0].name, "web01");
    strcpy(v[0].uuid, "564d1111-2222-3333-4444-555566667777");
    strcpy(v[0].power_state, "poweredOn");
    strcpy(v[0].guest_os, "otherLinux64Guest");
    v[0].memory_mb = 2048;
    v[0].vcpus = 2;
    strcpy(v[1].name, "db <&> \"01\"");
    strcpy(v[1].uuid, "564d1111-2222-3333-4444-000000000002");
    strcpy(v[1].power_state, "poweredOff");
    v[1].memory_mb = 512;
    v[1].vcpus = 1;
    *out = v;
    *n = 2;
    return 0;
}

static struct kvc_cim_reply rep;

/* Send one intrinsic call; returns the reply body (valid XML checked). */
static const char *
call(const char *base, const char *method, const char *ns, const char *params)
{
    struct kvc_cim_provider pv = { .check_auth = auth, .list_vms = vms,
                                   .hostname = "testhost", .sysroot = base };
    char body[8192];
    snprintf(body, sizeof body,
             "<?xml version=\"1.0\" encoding=\"utf-8\" ?>\n"
             "<CIM CIMVERSION=\"2.0\" DTDVERSION=\"2.0\"><MESSAGE ID=\"77\" PROTOCOLVERSION=\"1.0\">"
             "<SIMPLEREQ><IMETHODCALL NAME=\"%s\"><LOCALNAMESPACEPATH>"
             "<NAMESPACE NAME=\"root\"/><NAMESPACE NAME=\"%s\"/></LOCALNAMESPACEPATH>%s"
             "</IMETHODCALL></SIMPLEREQ></MESSAGE></CIM>", method, ns, params);
    free(rep.body);
    kvc_cim_handle(&pv, method, "root%2Fcimv2", body, strlen(body), &rep);
    assert_int_equal(rep.http_status, 200);
    assert_non_null(rep.body);
    xmlDocPtr d = xmlReadMemory(rep.body, rep.len, "r.xml", NULL, XML_PARSE_NONET);
    assert_non_null(d);
    xmlFreeDoc(d);
    return rep.body;
}

static int
count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

#define CLASS(c) "<IPARAMVALUE NAME=\"ClassName\"><CLASSNAME NAME=\"" c "\"/></IPARAMVALUE>"
#define PROP(n, t, v) "<PROPERTY NAME=\"" n "\" TYPE=\"" t "\"><VALUE>" v "</VALUE></PROPERTY>"

static void
test_computer_system(void **state)
{
    const char *r = call(root, "EnumerateInstances", "cimv2", CLASS("CIM_ComputerSystem"));
    assert_non_null(strstr(r, "<IMETHODRESPONSE NAME=\"EnumerateInstances\">"));
    assert_non_null(strstr(r, "<MESSAGE ID=\"77\""));
    assert_int_equal(count(r, "<VALUE.NAMEDINSTANCE>"), 3);    /* host + 2 VMs */
    assert_non_null(strstr(r, "<INSTANCENAME CLASSNAME=\"KVC_UnitaryComputerSystem\">"
                              "<KEYBINDING NAME=\"CreationClassName\"><KEYVALUE VALUETYPE=\"string\">"
                              "KVC_UnitaryComputerSystem</KEYVALUE></KEYBINDING>"
                              "<KEYBINDING NAME=\"Name\"><KEYVALUE VALUETYPE=\"string\">testhost"));
    assert_non_null(strstr(r, PROP("ElementName", "string", "testhost")));
    /* temp2 is above its critical limit: the host rolls up Critical. */
    assert_non_null(strstr(r, PROP("HealthState", "uint16", "25")));
    assert_non_null(strstr(r, PROP("KVC_NumberOfProcessors", "uint32", "2")));
    assert_non_null(strstr(r, PROP("KVC_MemoryTotalKB", "uint64", "16384000")));
    /* VMs, with their names escaped. */
    assert_non_null(strstr(r, PROP("ElementName", "string", "web01")));
    assert_non_null(strstr(r, PROP("ElementName", "string", "db &lt;&amp;&gt; &quot;01&quot;")));
    assert_non_null(strstr(r, PROP("KVC_MemoryMB", "uint64", "2048")));
    assert_non_null(strstr(r, PROP("EnabledState", "uint16", "3")));

    r = call(bare, "EnumerateInstances", "cimv2", CLASS("KVC_UnitaryComputerSystem"));
    assert_int_equal(count(r, "<VALUE.NAMEDINSTANCE>"), 1);
    assert_non_null(strstr(r, PROP("HealthState", "uint16", "5")));
    assert_non_null(strstr(r, "<PROPERTY.ARRAY NAME=\"OperationalStatus\" TYPE=\"uint16\">"
                              "<VALUE.ARRAY><VALUE>2</VALUE></VALUE.ARRAY></PROPERTY.ARRAY>"));
}

static void
test_processor_memory(void **state)
{
    const char *r = call(root, "EnumerateInstances", "cimv2", CLASS("CIM_Processor"));
    assert_int_equal(count(r, "<VALUE.NAMEDINSTANCE>"), 2);
    assert_int_equal(count(r, PROP("ElementName", "string", "Test CPU @ 2.40GHz")), 2);
    assert_non_null(strstr(r, PROP("CurrentClockSpeed", "uint32", "2400")));
    assert_non_null(strstr(r, PROP("MaxClockSpeed", "uint32", "3000")));
    assert_non_null(strstr(r, "<KEYVALUE VALUETYPE=\"string\">CPU1</KEYVALUE>"));

    r = call(root, "EnumerateInstances", "cimv2", CLASS("CIM_Memory"));
    assert_int_equal(count(r, "<VALUE.NAMEDINSTANCE>"), 1);
    assert_non_null(strstr(r, PROP("NumberOfBlocks", "uint64", "16384000")));
    assert_non_null(strstr(r, PROP("BlockSize", "uint64", "1024")));
    assert_non_null(strstr(r, PROP("KVC_AvailableBlocks", "uint64", "8192000")));
    assert_non_null(strstr(r, PROP("HealthState", "uint16", "5")));
}

static void
test_ethernet(void **state)
{
    const char *r = call(root, "EnumerateInstances", "cimv2", CLASS("CIM_EthernetPort"));
    assert_int_equal(count(r, "<VALUE.NAMEDINSTANCE>"), 2);       /* lo skipped */
    assert_non_null(strstr(r, PROP("PermanentAddress", "string", "525400ABCDEF")));
    assert_non_null(strstr(r, PROP("Speed", "uint64", "10000000000")));
    assert_non_null(strstr(r, PROP("ActiveMaximumTransmissionUnit", "uint64", "1500")));
    /* eth1 is administratively down: Stopped. */
    assert_non_null(strstr(r, "<VALUE>10</VALUE></VALUE.ARRAY>"));
    assert_null(strstr(r, ">lo<"));
}

static void
test_sensors(void **state)
{
    const char *r = call(root, "EnumerateInstances", "cimv2", CLASS("CIM_NumericSensor"));
    assert_int_equal(count(r, "<VALUE.NAMEDINSTANCE>"), 5);
    assert_non_null(strstr(r, PROP("ElementName", "string", "Package id 0")));
    assert_non_null(strstr(r, PROP("CurrentReading", "sint32", "45000")));
    assert_non_null(strstr(r, PROP("UnitModifier", "sint32", "-3")));
    assert_non_null(strstr(r, PROP("UpperThresholdNonCritical", "sint32", "80000")));
    assert_non_null(strstr(r, PROP("UpperThresholdCritical", "sint32", "100000")));
    assert_non_null(strstr(r, PROP("CurrentState", "string", "Upper Critical")));
    assert_non_null(strstr(r, PROP("CurrentState", "string", "Fault")));
    assert_non_null(strstr(r, "<PROPERTY NAME=\"CurrentReading\" TYPE=\"sint32\"></PROPERTY>"));
    assert_non_null(strstr(r, PROP("ElementName", "string", "nct6775 fan1")));
    assert_non_null(strstr(r, PROP("BaseUnits", "uint16", "19")));
    assert_non_null(strstr(r, "<KEYVALUE VALUETYPE=\"string\">hwmon1.in0</KEYVALUE>"));

    /* No hwmon on the host: an empty enumeration, not an error. */
    r = call(bare, "EnumerateInstances", "cimv2", CLASS("CIM_NumericSensor"));
    assert_non_null(strstr(r, "<IRETURNVALUE>\n</IRETURNVALUE>"));
}

static void
test_get_instance(void **state)
{
    const char *r = call(root, "GetInstance", "cimv2",
        "<IPARAMVALUE NAME=\"InstanceName\"><INSTANCENAME CLASSNAME=\"KVC_VirtualMachine\">"
        "<KEYBINDING NAME=\"CreationClassName\"><KEYVALUE VALUETYPE=\"string\">KVC_VirtualMachine</KEYVALUE></KEYBINDING>"
        "<KEYBINDING NAME=\"Name\"><KEYVALUE VALUETYPE=\"string\">564d1111-2222-3333-4444-555566667777</KEYVALUE></KEYBINDING>"
        "</INSTANCENAME></IPARAMVALUE>");
    assert_non_null(strstr(r, "<IRETURNVALUE>\n<INSTANCE CLASSNAME=\"KVC_VirtualMachine\">"));
    assert_non_null(strstr(r, PROP("ElementName", "string", "web01")));
    assert_non_null(strstr(r, PROP("KVC_NumCPUs", "uint32", "2")));
    assert_null(strstr(r, "VALUE.NAMEDINSTANCE"));

    r = call(root, "GetInstance", "cimv2",
        "<IPARAMVALUE NAME=\"InstanceName\"><INSTANCENAME CLASSNAME=\"KVC_VirtualMachine\">"
        "<KEYBINDING NAME=\"CreationClassName\"><KEYVALUE>KVC_VirtualMachine</KEYVALUE></KEYBINDING>"
        "<KEYBINDING NAME=\"Name\"><KEYVALUE>nope</KEYVALUE></KEYBINDING>"
        "</INSTANCENAME></IPARAMVALUE>");
    assert_non_null(strstr(r, "<ERROR CODE=\"6\""));

    /* Only part of the key: not found rather than a guess. */
    r = call(root, "GetInstance", "cimv2",
        "<IPARAMVALUE NAME=\"InstanceName\"><INSTANCENAME CLASSNAME=\"KVC_Processor\">"
        "<KEYBINDING NAME=\"DeviceID\"><KEYVALUE>CPU0</KEYVALUE></KEYBINDING>"
        "</INSTANCENAME></IPARAMVALUE>");
    assert_non_null(strstr(r, "<ERROR CODE=\"6\""));

    r = call(root, "GetInstance", "cimv2",
        "<IPARAMVALUE NAME=\"InstanceName\"><INSTANCENAME CLASSNAME=\"OMC_Nope\">"
        "<KEYBINDING NAME=\"Name\"><KEYVALUE>x</KEYVALUE></KEYBINDING>"
        "</INSTANCENAME></IPARAMVALUE>");
    assert_non_null(strstr(r, "<ERROR CODE=\"5\""));

    r = call(root, "GetInstance", "cimv2", "");
    assert_non_null(strstr(r, "<ERROR CODE=\"4\""));
}

static void
test_errors(void **state)
{
    const char *r = call(root, "EnumerateInstances", "nosuch", CLASS("CIM_Memory"));
    assert_non_null(strstr(r, "<ERROR CODE=\"3\""));
    r = call(root, "EnumerateInstances", "cimv2", CLASS("CIM_Bogus"));
    assert_non_null(strstr(r, "<ERROR CODE=\"5\""));
    /* A concrete class of the other namespace. */
    r = call(root, "EnumerateInstances", "interop", CLASS("KVC_Processor"));
    assert_non_null(strstr(r, "<ERROR CODE=\"5\""));
    r = call(root, "GetClass", "cimv2", CLASS("CIM_Memory"));
    assert_non_null(strstr(r, "<ERROR CODE=\"7\""));
    r = call(root, "EnumerateInstances", "cimv2", "");
    assert_non_null(strstr(r, "<ERROR CODE=\"4\""));
    r = call(root, "EnumerateInstances", "cimv2",
             CLASS("CIM_Memory") "<IPARAMVALUE NAME=\"LocalOnly\"><VALUE>maybe</VALUE></IPARAMVALUE>");
    assert_non_null(strstr(r, "<ERROR CODE=\"4\""));
    vms_fail = true;
    r = call(root, "EnumerateInstances", "cimv2", CLASS("KVC_VirtualMachine"));
    vms_fail = false;
    assert_non_null(strstr(r, "<ERROR CODE=\"1\""));
}

static void
test_http_level_errors(void **state)
{
    struct kvc_cim_provider pv = { .check_auth = auth, .hostname = "h", .sysroot = root };
    struct kvc_cim_reply rp;
    static const char *const bodies[] = {
        "", "<CIM", "<html/>", "<CIM><MESSAGE/></CIM>",
        "<CIM><MESSAGE ID=\"1\"><SIMPLEREQ><IMETHODCALL NAME=\"EnumerateClassNames\">"
        "</IMETHODCALL></SIMPLEREQ></MESSAGE></CIM>",          /* no namespace */
    };
    for (size_t k = 0; k < sizeof bodies / sizeof *bodies; k++) {
        kvc_cim_handle(&pv, NULL, NULL, bodies[k], strlen(bodies[k]), &rp);
        assert_int_equal(rp.http_status, 400);
        assert_non_null(rp.cim_error);
        free(rp.body);
    }
    const char *multi = "<CIM><MESSAGE ID=\"1\"><MULTIREQ/></MESSAGE></CIM>";
    kvc_cim_handle(&pv, NULL, NULL, multi, strlen(multi), &rp);
    assert_int_equal(rp.http_status, 501);
    free(rp.body);
    const char *ecn = "<CIM><MESSAGE ID=\"1\"><SIMPLEREQ><IMETHODCALL NAME=\"EnumerateClassNames\">"
                      "<LOCALNAMESPACEPATH><NAMESPACE NAME=\"root\"/><NAMESPACE NAME=\"cimv2\"/>"
                      "</LOCALNAMESPACEPATH></IMETHODCALL></SIMPLEREQ></MESSAGE></CIM>";
    kvc_cim_handle(&pv, "GetInstance", NULL, ecn, strlen(ecn), &rp);
    assert_int_equal(rp.http_status, 400);
    assert_string_equal(rp.cim_error, "header-mismatch");
    free(rp.body);
    const char *ext = "<CIM><MESSAGE ID=\"1\"><SIMPLEREQ><METHODCALL NAME=\"Reboot\">"
                      "</METHODCALL></SIMPLEREQ></MESSAGE></CIM>";
    kvc_cim_handle(&pv, NULL, NULL, ext, strlen(ext), &rp);
    assert_int_equal(rp.http_status, 200);
    assert_non_null(strstr(rp.body, "<METHODRESPONSE NAME=\"Reboot\">\n<ERROR CODE=\"7\""));
    free(rp.body);
}

static void
test_class_names_and_names(void **state)
{
    const char *r = call(root, "EnumerateClassNames", "interop",
                         "<IPARAMVALUE NAME=\"DeepInheritance\"><VALUE>TRUE</VALUE></IPARAMVALUE>");
    assert_non_null(strstr(r, "<CLASSNAME NAME=\"KVC_Namespace\"/>"));
    assert_non_null(strstr(r, "<CLASSNAME NAME=\"KVC_UnitaryComputerSystem\"/>"));
    assert_null(strstr(r, "KVC_Processor"));
    r = call(root, "EnumerateClassNames", "cimv2", CLASS("CIM_LogicalDevice"));
    assert_non_null(strstr(r, "<CLASSNAME NAME=\"CIM_Processor\"/>"));
    assert_null(strstr(r, "KVC_Processor"));       /* not deep */
    r = call(root, "EnumerateClassNames", "cimv2", "");
    assert_non_null(strstr(r, "<CLASSNAME NAME=\"CIM_ManagedElement\"/>"));
    assert_int_equal(count(r, "<CLASSNAME "), 1);

    r = call(root, "EnumerateInstanceNames", "cimv2", CLASS("CIM_ManagedElement"));
    assert_int_equal(count(r, "<INSTANCENAME "), 1 + 2 + 2 + 1 + 2 + 5);
    assert_null(strstr(r, "<INSTANCE "));
    r = call(root, "EnumerateInstances", "interop", CLASS("CIM_Namespace"));
    assert_non_null(strstr(r, PROP("Name", "string", "root/interop")));
}

static void
test_property_list(void **state)
{
    const char *r = call(root, "EnumerateInstances", "cimv2",
        CLASS("CIM_Memory")
        "<IPARAMVALUE NAME=\"PropertyList\"><VALUE.ARRAY><VALUE>HealthState</VALUE>"
        "</VALUE.ARRAY></IPARAMVALUE>");
    assert_non_null(strstr(r, PROP("HealthState", "uint16", "5")));
    assert_null(strstr(r, "NumberOfBlocks"));
    /* keys stay in the instance name */
    assert_non_null(strstr(r, "<KEYBINDING NAME=\"DeviceID\">"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_computer_system),
        cmocka_unit_test(test_processor_memory),
        cmocka_unit_test(test_ethernet),
        cmocka_unit_test(test_sensors),
        cmocka_unit_test(test_get_instance),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_http_level_errors),
        cmocka_unit_test(test_class_names_and_names),
        cmocka_unit_test(test_property_list),
    };
    int r = cmocka_run_group_tests(tests, setup, teardown);
    free(rep.body);
    return r;
}
