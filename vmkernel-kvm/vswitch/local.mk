# vmkernel-kvm/vswitch/: the vSwitch library hosted by vmkd (docs/vswitch.md),
# its tests, the kvc-vswitch driver program (tests, benchmarks), the fuzz
# target and the benchmark.  Included from vmkernel-kvm/local.mk.
noinst_LIBRARIES += vmkernel-kvm/libkvcvswitch.a
vmkernel_kvm_libkvcvswitch_a_SOURCES = \
	vmkernel-kvm/vswitch/vswitch.c vmkernel-kvm/vswitch/vswitch.h \
	vmkernel-kvm/vswitch/port.h vmkernel-kvm/vswitch/port_dummy.c \
	vmkernel-kvm/vswitch/port_ring.c vmkernel-kvm/vswitch/port_tap.c \
	vmkernel-kvm/vswitch/ring.c vmkernel-kvm/vswitch/ring.h \
	vmkernel-kvm/vswitch/vxlan.c
VSWITCH_LIBS = vmkernel-kvm/libkvcvswitch.a lib/libkvcutil.a

check_PROGRAMS += tests/unit/test_vswitch tests/unit/test_vswitch_ring tests/unit/test_vswitch_tap
TESTS += tests/unit/test_vswitch tests/unit/test_vswitch_ring tests/unit/test_vswitch_tap
tests_unit_test_vswitch_tap_SOURCES = tests/unit/test_vswitch_tap.c
tests_unit_test_vswitch_tap_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/vmkernel-kvm/vswitch
tests_unit_test_vswitch_tap_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_vswitch_tap_LDADD = $(VSWITCH_LIBS) $(CMOCKA_LIBS)
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

# Fuzz target vswitch_ring (tests/fuzz/local.mk's convention): a hostile ring
# peer and hostile frames through the switch.  `make check` replays its corpus
# (replay_vswitch_ring) and a fixed-seed generated stream (test_vswitch_fuzzgen).
KVC_FUZZ_TARGETS += tests/fuzz/fuzz_vswitch_ring
KVC_FUZZ_VSWITCH_SRCS = vmkernel-kvm/vswitch/vswitch.c vmkernel-kvm/vswitch/port_dummy.c \
	vmkernel-kvm/vswitch/port_ring.c vmkernel-kvm/vswitch/port_tap.c vmkernel-kvm/vswitch/ring.c \
	vmkernel-kvm/vswitch/vxlan.c lib/log.c
tests/fuzz/fuzz_vswitch_ring: $(srcdir)/tests/fuzz/fuzz_vswitch_ring.c $(KVC_FUZZ_VSWITCH_SRCS)
	@$(MKDIR_P) tests/fuzz
	$(AM_V_CCLD)srcs=; for f in $(KVC_FUZZ_VSWITCH_SRCS); do srcs="$$srcs $(srcdir)/$$f"; done; \
	$(KVC_FUZZ_CC) -I$(srcdir)/vmkernel-kvm/vswitch -o $@ \
	  $(srcdir)/tests/fuzz/fuzz_vswitch_ring.c $$srcs -lpthread
check_PROGRAMS += tests/fuzz/replay_vswitch_ring tests/unit/test_vswitch_fuzzgen
TESTS += tests/fuzz/replay_vswitch_ring tests/unit/test_vswitch_fuzzgen
tests_fuzz_replay_vswitch_ring_SOURCES = tests/fuzz/fuzz_vswitch_ring.c tests/fuzz/replay-main.c
tests_fuzz_replay_vswitch_ring_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/vmkernel-kvm/vswitch \
	-DKVC_FUZZ_NAME='"vswitch_ring"'
tests_fuzz_replay_vswitch_ring_LDADD = $(VSWITCH_LIBS)
tests_unit_test_vswitch_fuzzgen_SOURCES = tests/fuzz/fuzz_vswitch_ring.c tests/unit/test_vswitch_fuzzgen.c
tests_unit_test_vswitch_fuzzgen_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/vmkernel-kvm/vswitch
tests_unit_test_vswitch_fuzzgen_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_vswitch_fuzzgen_LDADD = $(VSWITCH_LIBS) $(CMOCKA_LIBS)
EXTRA_DIST += tests/fuzz/corpus/vswitch_ring

# Benchmarks beside the Linux bridge (docs/benchmarks.md): built for `make bench`.
EXTRA_PROGRAMS += tests/bench/bench_vswitch
KVC_BENCH_BINS += tests/bench/bench_vswitch
CLEANFILES += tests/bench/bench_vswitch
tests_bench_bench_vswitch_SOURCES = tests/bench/bench_vswitch.c
tests_bench_bench_vswitch_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/vmkernel-kvm/vswitch
tests_bench_bench_vswitch_LDADD = $(VSWITCH_LIBS)
