# vpxd/snmp/: the AgentX subagent serving packaging/mib/KVCENTER-MIB.txt.
# vpxd links vpxd/snmp/libkvcsnmp.a $(NETSNMP_AGENT_LIBS) $(LIBEVENT_LIBS).
# See docs/monitoring.md.
noinst_LIBRARIES += vpxd/snmp/libkvcsnmp.a
vpxd_snmp_libkvcsnmp_a_SOURCES = \
	vpxd/snmp/snmp_agent.c vpxd/snmp/snmp_agent.h vpxd/snmp/snmp_oids.h
vpxd_snmp_libkvcsnmp_a_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) $(NETSNMP_CFLAGS)
KVC_SNMP_LIBS = vpxd/snmp/libkvcsnmp.a lib/libkvcutil.a $(NETSNMP_AGENT_LIBS) $(LIBEVENT_LIBS)

# A standalone subagent fed from a JSON inventory, for tests and trials.
noinst_PROGRAMS += vpxd/kvc-snmp-harness
vpxd_kvc_snmp_harness_SOURCES = vpxd/snmp/kvc-snmp-harness.c
vpxd_kvc_snmp_harness_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) $(JANSSON_CFLAGS)
vpxd_kvc_snmp_harness_LDADD = $(KVC_SNMP_LIBS) $(JANSSON_LIBS)

TESTS += tests/integration/test_snmp.py
EXTRA_DIST += tests/integration/test_snmp.py

check_PROGRAMS += tests/unit/test_snmp
TESTS += tests/unit/test_snmp
tests_unit_test_snmp_SOURCES = tests/unit/test_snmp.c
tests_unit_test_snmp_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(LIBEVENT_CFLAGS)
tests_unit_test_snmp_LDADD = $(KVC_SNMP_LIBS) $(CMOCKA_LIBS)
