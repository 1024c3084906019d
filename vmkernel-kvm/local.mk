# vmkernel-kvm/: see ARCHITECTURE.md

# --- vSwitch: rules in its own fragment ---
include $(srcdir)/vmkernel-kvm/vswitch/local.mk

# ---- vmkd: the per-host VMkernel shim (docs/vmkd.md) ----
# libvmkd.a: cgroup placement and resource policy, shared by vmkd and its tests.
noinst_LIBRARIES += vmkernel-kvm/libvmkd.a
vmkernel_kvm_libvmkd_a_SOURCES = \
	vmkernel-kvm/cgroup.c vmkernel-kvm/cgroup.h \
	vmkernel-kvm/sched.c vmkernel-kvm/sched.h

check_PROGRAMS += tests/unit/test_vmkd_sched tests/unit/test_vmkd_cgroup
TESTS += tests/unit/test_vmkd_sched tests/unit/test_vmkd_cgroup
tests_unit_test_vmkd_sched_SOURCES = tests/unit/test_vmkd_sched.c
tests_unit_test_vmkd_sched_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_vmkd_sched_LDADD = vmkernel-kvm/libvmkd.a lib/libkvcutil.a $(CMOCKA_LIBS)
tests_unit_test_vmkd_cgroup_SOURCES = tests/unit/test_vmkd_cgroup.c
tests_unit_test_vmkd_cgroup_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_vmkd_cgroup_LDADD = vmkernel-kvm/libvmkd.a lib/libkvcutil.a $(CMOCKA_LIBS)
vmkernel_kvm_libvmkd_a_SOURCES += vmkernel-kvm/vmkd_vm.c vmkernel-kvm/vmkd.h
vmkernel_kvm_libvmkd_a_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS)

# The daemon and its control-socket client (vmkdctl: operators and tests).
sbin_PROGRAMS += vmkernel-kvm/vmkd
vmkernel_kvm_vmkd_SOURCES = vmkernel-kvm/vmkd.c vmkernel-kvm/vmkd_ctl.c vmkernel-kvm/vmkd_ctl.h
vmkernel_kvm_vmkd_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) $(GNUTLS_CFLAGS) $(PROTOBUF_C_CFLAGS)
vmkernel_kvm_vmkd_LDADD = vmkernel-kvm/libvmkd.a lib/libkvcrpc.a proto/libkvcproto.a \
	lib/libkvcutil.a $(KVC_RPC_LIBS)
noinst_PROGRAMS += vmkernel-kvm/vmkdctl
vmkernel_kvm_vmkdctl_SOURCES = vmkernel-kvm/vmkdctl.c
vmkernel_kvm_vmkdctl_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) $(GNUTLS_CFLAGS) $(PROTOBUF_C_CFLAGS)
vmkernel_kvm_vmkdctl_LDADD = lib/libkvcrpc.a proto/libkvcproto.a lib/libkvcutil.a $(KVC_RPC_LIBS)

# A vmx test double (tests only): obeys vmx's process contract, runs threads
# instead of a guest.
check_PROGRAMS += tests/integration/test_vmkd_fake_vmx
tests_integration_test_vmkd_fake_vmx_SOURCES = tests/integration/test_vmkd_fake_vmx.c

# vmkd's supervision core driven directly (no RPC): start/stop/reap, crash
# reports, admission control, shares, limits, re-adoption.
check_PROGRAMS += tests/unit/test_vmkd_core
TESTS += tests/unit/test_vmkd_core
tests_unit_test_vmkd_core_SOURCES = tests/unit/test_vmkd_core.c
tests_unit_test_vmkd_core_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(LIBEVENT_CFLAGS)
tests_unit_test_vmkd_core_LDADD = vmkernel-kvm/libvmkd.a lib/libkvcutil.a $(LIBEVENT_LIBS) $(CMOCKA_LIBS)

# vmkd as a daemon through its control socket (pytest; needs root).
TESTS += tests/integration/test_vmkd.py
EXTRA_DIST += tests/integration/test_vmkd.py

# BENCH vms-per-host: idle VMs at once through vmkd, QEMU beside it.
KVC_BENCH_SCRIPT_LIST += tests/bench/bench_vmkd_vms.py
EXTRA_DIST += tests/bench/bench_vmkd_vms.py
