# vpxd/: the cluster brain (see ARCHITECTURE.md).
# libvpxdcore: the database module and what does not need the network, so
# unit tests link it without the daemon's main().
noinst_LIBRARIES += vpxd/libvpxdcore.a
vpxd_libvpxdcore_a_SOURCES = \
	vpxd/db.c vpxd/db.h vpxd/db_internal.h vpxd/db_inventory.c \
	vpxd/db_stats.c vpxd/db_stats.h \
	vpxd/migrations.h vpxd/auth.c vpxd/auth.h vpxd/db_ha.c vpxd/db_ha.h
nodist_vpxd_libvpxdcore_a_SOURCES = vpxd/migrations.c
vpxd_libvpxdcore_a_CFLAGS = $(AM_CFLAGS) $(SQLITE_CFLAGS) $(JANSSON_CFLAGS) \
	$(GNUTLS_CFLAGS) $(ARGON2_CFLAGS)
VPXD_CORE_LIBS = vpxd/libvpxdcore.a lib/libkvcutil.a $(SQLITE_LIBS) $(JANSSON_LIBS) \
	$(GNUTLS_LIBS) $(ARGON2_LIBS)

# The daemon: HTTPS API (api/, one resource a file), host connections.
sbin_PROGRAMS += vpxd/vpxd
vpxd_vpxd_SOURCES = \
	vpxd/vpxd.c vpxd/vpxd.h vpxd/cert.c vpxd/cert.h vpxd/hosts.c vpxd/hosts.h \
	vpxd/ha.c vpxd/ha.h vpxd/api/ha.c \
	vpxd/stats.c vpxd/stats.h \
	vpxd/api/api.h vpxd/api/internal.h vpxd/api/filters.h vpxd/api/http.c \
	vpxd/api/routes.c vpxd/api/common.c vpxd/api/session.c vpxd/api/vm.c \
	vpxd/api/host.c vpxd/api/datacenter.c vpxd/api/cluster.c vpxd/api/folder.c \
	vpxd/api/datastore.c vpxd/api/resource_pool.c vpxd/api/tasks.c vpxd/api/kvc.c \
	vpxd/api/openapi.c vpxd/api/metrics.c vpxd/api/ui.c vpxd/api/stats.c vpxd/api/console.c vpxd/api/snapshots.c \
	vpxd/api/appliance.c vpxd/api/hostinfo.c vpxd/api/vswitch.c \
	vpxd/api/vmprocess.c
# Storage migration (relocate to another datastore).
vpxd_vpxd_SOURCES += vpxd/svmotion.c vpxd/svmotion.h
TESTS += tests/integration/test_vpxd_svmotion.py
EXTRA_DIST += tests/integration/test_vpxd_svmotion.py
vpxd_vpxd_CFLAGS = $(AM_CFLAGS) $(SQLITE_CFLAGS) $(JANSSON_CFLAGS) $(GNUTLS_CFLAGS) \
	$(LIBEVENT_CFLAGS) $(MHD_CFLAGS) $(ARGON2_CFLAGS) $(PROTOBUF_C_CFLAGS)
vpxd_vpxd_LDADD = $(VPXD_HOSTMGR_LIBS) $(VPXD_CORE_LIBS) $(MHD_LIBS) $(LIBEVENT_LIBS) \
	$(PROTOBUF_C_LIBS)

# Unit tests (cmocka).
check_PROGRAMS += tests/unit/test_vpxd_db
TESTS += tests/unit/test_vpxd_db
tests_unit_test_vpxd_db_SOURCES = tests/unit/test_vpxd_db.c
tests_unit_test_vpxd_db_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(SQLITE_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_vpxd_db_LDADD = $(VPXD_CORE_LIBS) $(CMOCKA_LIBS)
check_PROGRAMS += tests/unit/test_vpxd_stats
TESTS += tests/unit/test_vpxd_stats
tests_unit_test_vpxd_stats_SOURCES = tests/unit/test_vpxd_stats.c
tests_unit_test_vpxd_stats_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(SQLITE_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_vpxd_stats_LDADD = $(VPXD_CORE_LIBS) $(CMOCKA_LIBS) -lm
check_PROGRAMS += tests/unit/test_vpxd_auth
TESTS += tests/unit/test_vpxd_auth
tests_unit_test_vpxd_auth_SOURCES = tests/unit/test_vpxd_auth.c
tests_unit_test_vpxd_auth_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(SQLITE_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_vpxd_auth_LDADD = $(VPXD_CORE_LIBS) $(CMOCKA_LIBS)

# Integration tests: a real vpxd on 127.0.0.1 (test_vpxd_util.py is their
# helper module, not a test).
TESTS += tests/integration/test_vpxd_api.py tests/integration/test_vpxd_rbac.py \
	tests/integration/test_vpxd_restart.py tests/integration/test_vpxd_stats.py \
	tests/integration/test_api_spec.py
EXTRA_DIST += tests/integration/test_vpxd_api.py tests/integration/test_vpxd_rbac.py \
	tests/integration/test_vpxd_restart.py tests/integration/test_vpxd_util.py \
	tests/integration/test_vpxd_stats.py tests/integration/test_api_spec.py

# vpxd's host manager (owned by the hosts area): a library vpxd links with
# `$(VPXD_HOSTMGR_LIBS)` (before $(VPXD_CORE_LIBS)); hostmgr_db_ops records
# what hosts report through vpxd/db.h.
noinst_LIBRARIES += vpxd/libhostmgr.a
vpxd_libhostmgr_a_SOURCES = vpxd/hostmgr.c vpxd/hostmgr.h \
	vpxd/hostmgr_db.c vpxd/hostmgr_db.h
vpxd_libhostmgr_a_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) $(GNUTLS_CFLAGS) \
	$(PROTOBUF_C_CFLAGS) $(SQLITE_CFLAGS) $(JANSSON_CFLAGS)
VPXD_HOSTMGR_LIBS = vpxd/libhostmgr.a lib/libkvcrpc.a proto/libkvcproto.a \
	$(KVC_RPC_LIBS)
include $(srcdir)/vpxd/snmp/local.mk

# The SNMP subagent on vpxd's database ([snmp] agentx; vpxd/snmp_provider.c).
vpxd_vpxd_SOURCES += vpxd/snmp_provider.c vpxd/snmp_provider.h
vpxd_vpxd_CFLAGS += $(NETSNMP_CFLAGS)
vpxd_vpxd_LDADD += $(KVC_SNMP_LIBS)

# Live migration and DRS (docs/drs.md).  The algorithm (drs_algo.c) and the
# DRS tables' writes (db_drs.c) go in the core library so the unit tests and
# benchmarks link them without the daemon.
vpxd_libvpxdcore_a_SOURCES += vpxd/db_drs.c vpxd/drs_algo.c vpxd/drs.h
VPXD_CORE_LIBS += -lm
vpxd_vpxd_SOURCES += vpxd/migration.c vpxd/migration.h vpxd/drs.c \
	vpxd/api/drs.c vpxd/api/relocate.c
check_PROGRAMS += tests/unit/test_vpxd_drs
TESTS += tests/unit/test_vpxd_drs
tests_unit_test_vpxd_drs_SOURCES = tests/unit/test_vpxd_drs.c
tests_unit_test_vpxd_drs_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(SQLITE_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_vpxd_drs_LDADD = $(VPXD_CORE_LIBS) $(CMOCKA_LIBS)
TESTS += tests/integration/test_vpxd_migrate.py tests/integration/test_vpxd_drs.py
EXTRA_DIST += tests/integration/test_vpxd_migrate.py tests/integration/test_vpxd_drs.py \
	tests/integration/drs_util.py
EXTRA_PROGRAMS += tests/bench/bench_drs
tests_bench_bench_drs_SOURCES = tests/bench/bench_drs.c
tests_bench_bench_drs_CFLAGS = $(AM_CFLAGS) $(SQLITE_CFLAGS) $(JANSSON_CFLAGS)
tests_bench_bench_drs_LDADD = $(VPXD_CORE_LIBS)
KVC_BENCH_BINS += tests/bench/bench_drs

# vSphere-style HA (vpxd/ha.c, hostd/ha.c; docs/ha.md).
TESTS += tests/integration/test_ha.py tests/integration/test_ha_netns.py
EXTRA_DIST += tests/integration/test_ha.py tests/integration/test_ha_netns.py tests/bench/bench_ha.py
KVC_BENCH_SCRIPT_LIST += tests/bench/bench_ha.py

# Resource pools (docs/resource-pools.md): the model and admission control in
# the core library (rp.c writes vm_alloc), its REST additions in the daemon.
vpxd_libvpxdcore_a_SOURCES += vpxd/rp.c vpxd/rp.h
check_PROGRAMS += tests/unit/test_vpxd_rp
TESTS += tests/unit/test_vpxd_rp
tests_unit_test_vpxd_rp_SOURCES = tests/unit/test_vpxd_rp.c
tests_unit_test_vpxd_rp_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(SQLITE_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_vpxd_rp_LDADD = $(VPXD_CORE_LIBS) $(CMOCKA_LIBS)
TESTS += tests/integration/test_vpxd_rp.py
EXTRA_DIST += tests/integration/test_vpxd_rp.py
