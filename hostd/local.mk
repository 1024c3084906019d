# hostd/: the host management agent, its backends (kvm, sim) and tests.
# The CIM server lives in hostd/cim/ with its own fragment.
include $(srcdir)/hostd/cim/local.mk

sbin_PROGRAMS += hostd/hostd
hostd_hostd_SOURCES = \
	hostd/hostd.c hostd/hostd.h hostd/host.c hostd/migrate.c hostd/vmstore.c hostd/ha.c \
	hostd/hwinfo.c hostd/util.c hostd/control.c hostd/backend.h \
	hostd/backends/sim.c hostd/backends/sim.h hostd/backends/kvm.c \
	hostd/backends/sim_console.c hostd/console.c hostd/console.h hostd/vswitch.c \
	hostd/pools.c
hostd_hostd_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) $(GNUTLS_CFLAGS) $(PROTOBUF_C_CFLAGS)
hostd_hostd_LDADD = lib/libkvcrpc.a proto/libkvcproto.a lib/libkvcutil.a \
	$(KVC_RPC_LIBS) -lm
# The shell (SSH and HTTPS) adds its sources and libraries.
include $(srcdir)/hostd/ssh/local.mk
# Storage migration (hostd/svmotion.c).
hostd_hostd_SOURCES += hostd/svmotion.c
# VM snapshots (hostd/snapshots.c).
hostd_hostd_SOURCES += hostd/snapshots.c hostd/snapshots.h
# kvm: vmx takes and deletes a running VM's snapshots; a powered-off VM's
# disk is worked on by hostd itself with vmx's disk code.
hostd_hostd_SOURCES += hostd/backends/kvm_snapshot.c hostd/backends/kvm.h \
	vmkernel-kvm/disk.c vmkernel-kvm/disk.h

# Unit tests: sim models, VM store, datastore heartbeats (no daemon).
check_PROGRAMS += tests/unit/test_hostd_sim
TESTS += tests/unit/test_hostd_sim
tests_unit_test_hostd_sim_SOURCES = tests/unit/test_hostd_sim.c \
	hostd/vmstore.c hostd/util.c hostd/hwinfo.c hostd/backends/sim.c hostd/backends/sim_console.c \
	tests/unit/test_hostd_stubs.c
tests_unit_test_hostd_sim_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(LIBEVENT_CFLAGS) $(PROTOBUF_C_CFLAGS)
tests_unit_test_hostd_sim_LDADD = proto/libkvcproto.a lib/libkvcutil.a \
	$(LIBEVENT_LIBS) $(PROTOBUF_C_LIBS) $(CMOCKA_LIBS) -lm

# Integration tests: real hostd processes against vpxd's host manager and
# database, driven through tests/integration/test_hostd_driver.
check_PROGRAMS += tests/integration/test_hostd_driver
tests_integration_test_hostd_driver_SOURCES = tests/integration/test_hostd_driver.c
tests_integration_test_hostd_driver_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) \
	$(GNUTLS_CFLAGS) $(PROTOBUF_C_CFLAGS) $(SQLITE_CFLAGS) $(JANSSON_CFLAGS)
tests_integration_test_hostd_driver_LDADD = $(VPXD_HOSTMGR_LIBS) $(VPXD_CORE_LIBS) \
	$(KVC_RPC_LIBS)
TESTS += tests/integration/test_hostd.py tests/integration/test_sim.py
EXTRA_DIST += tests/integration/test_hostd.py tests/integration/test_sim.py \
	tests/integration/hostd_util.py

# kvcenter-up: a whole cluster on loopback (docs/hosts.md).  Built into the
# build tree's top (build/normal/kvcenter-up), where it finds vpxd/vpxd and
# hostd/hostd beside it; installed it finds them in sbindir.
bin_SCRIPTS += kvcenter-up
CLEANFILES += kvcenter-up
EXTRA_DIST += hostd/kvcenter-up.py
kvcenter-up: hostd/kvcenter-up.py Makefile
	$(AM_V_GEN)$(SED) -e 's|@sbindir[@]|$(sbindir)|g' -e 's|@libexecdir[@]|$(libexecdir)|g' -e 's|@pkgdatadir[@]|$(pkgdatadir)|g' $(srcdir)/hostd/kvcenter-up.py > $@.tmp && \
	chmod +x $@.tmp && mv $@.tmp $@
TESTS += tests/integration/test_kvcenter_up.py tests/integration/test_kvcenter_up_kvm.py \
	tests/integration/test_vm_console.py tests/integration/test_vmotion_kvm.py \
	tests/integration/test_ha_kvm.py
# VM snapshots (hostd/snapshots.c, vpxd/api/snapshots.c).
TESTS += tests/integration/test_vm_snapshots.py
EXTRA_DIST += tests/integration/test_vm_snapshots.py
EXTRA_DIST += tests/integration/test_kvcenter_up.py tests/integration/test_kvcenter_up_kvm.py \
	tests/integration/test_vm_console.py tests/integration/test_vmotion_kvm.py \
	tests/integration/test_ha_kvm.py
TESTS += tests/integration/test_hostd_kvm.py
EXTRA_DIST += tests/integration/test_hostd_kvm.py
# BENCH vmotion-downtime, vmotion-total: kvm vMotion through vpxd beside a direct vmx migration.
KVC_BENCH_SCRIPT_LIST += tests/bench/bench_vmotion.py
EXTRA_DIST += tests/bench/bench_vmotion.py
# BENCH ha-failover-kvm: HA restart of a real guest after kill -9 of its kvm host.
KVC_BENCH_SCRIPT_LIST += tests/bench/bench_ha_kvm.py
EXTRA_DIST += tests/bench/bench_ha_kvm.py
