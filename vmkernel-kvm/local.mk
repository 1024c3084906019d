# vmkernel-kvm/: see ARCHITECTURE.md

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
