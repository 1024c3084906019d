# vmkernel-kvm/vswitch/: the vSwitch library hosted by vmkd (docs/vswitch.md),
# its tests, the kvc-vswitch driver program (tests, benchmarks), the fuzz
# target and the benchmark.  Included from vmkernel-kvm/local.mk.
noinst_LIBRARIES += vmkernel-kvm/libkvcvswitch.a
vmkernel_kvm_libkvcvswitch_a_SOURCES = \
	vmkernel-kvm/vswitch/vswitch.c vmkernel-kvm/vswitch/vswitch.h \
	vmkernel-kvm/vswitch/port.h vmkernel-kvm/vswitch/port_dummy.c \
	vmkernel-kvm/vswitch/port_ring.c vmkernel-kvm/vswitch/ring.c \
	vmkernel-kvm/vswitch/ring.h vmkernel-kvm/vswitch/vxlan.c
VSWITCH_LIBS = vmkernel-kvm/libkvcvswitch.a lib/libkvcutil.a

check_PROGRAMS += tests/unit/test_vswitch tests/unit/test_vswitch_ring
TESTS += tests/unit/test_vswitch tests/unit/test_vswitch_ring
tests_unit_test_vswitch_SOURCES = tests/unit/test_vswitch.c
tests_unit_test_vswitch_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/vmkernel-kvm/vswitch
tests_unit_test_vswitch_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_vswitch_LDADD = $(VSWITCH_LIBS) $(CMOCKA_LIBS)
tests_unit_test_vswitch_ring_SOURCES = tests/unit/test_vswitch_ring.c
tests_unit_test_vswitch_ring_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/vmkernel-kvm/vswitch
tests_unit_test_vswitch_ring_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_vswitch_ring_LDADD = $(VSWITCH_LIBS) $(CMOCKA_LIBS)

noinst_PROGRAMS += vmkernel-kvm/vswitch/kvc-vswitch
vmkernel_kvm_vswitch_kvc_vswitch_SOURCES = vmkernel-kvm/vswitch/kvc-vswitch.c
vmkernel_kvm_vswitch_kvc_vswitch_LDADD = $(VSWITCH_LIBS)

TESTS += tests/integration/test_vswitch_vxlan.py
EXTRA_DIST += tests/integration/test_vswitch_vxlan.py

# Fuzz target: hostile ring peer and frames through the switch.  `make check`
# replays its corpus and a fixed-seed stream through a plain main()
# (tests/fuzz/fuzz_vswitch_replay.c); libFuzzer runs it in `make fuzz`.
KVC_FUZZ_TARGETS += tests/fuzz/fuzz_vswitch_ring
check_PROGRAMS += tests/fuzz/fuzz_vswitch_replay
TESTS += tests/fuzz/fuzz_vswitch_replay
tests_fuzz_fuzz_vswitch_replay_SOURCES = tests/fuzz/fuzz_vswitch_ring.c tests/fuzz/fuzz_vswitch_replay.c
tests_fuzz_fuzz_vswitch_replay_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/vmkernel-kvm/vswitch
tests_fuzz_fuzz_vswitch_replay_LDADD = $(VSWITCH_LIBS)
EXTRA_DIST += tests/fuzz/corpus/vswitch

# Benchmarks beside the Linux bridge (docs/benchmarks.md): built for `make bench`.
EXTRA_PROGRAMS += tests/bench/bench_vswitch
KVC_BENCH_BINS += tests/bench/bench_vswitch
CLEANFILES += tests/bench/bench_vswitch
tests_bench_bench_vswitch_SOURCES = tests/bench/bench_vswitch.c
tests_bench_bench_vswitch_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/vmkernel-kvm/vswitch
tests_bench_bench_vswitch_LDADD = $(VSWITCH_LIBS)
