# hostd/cim/: the CIM-XML server (DSP0200), embedded by hostd and runnable
# alone as hostd/kvc-cimd.  See docs/monitoring.md.
noinst_LIBRARIES += hostd/cim/libkvccim.a
hostd_cim_libkvccim_a_SOURCES = \
	hostd/cim/cim.h hostd/cim/cim_classes.c hostd/cim/cim_request.c \
	hostd/cim/cim_server.c
hostd_cim_libkvccim_a_CFLAGS = $(AM_CFLAGS) $(XML2_CFLAGS) $(MHD_CFLAGS)
KVC_CIM_LIBS = hostd/cim/libkvccim.a lib/libkvcutil.a $(XML2_LIBS) $(MHD_LIBS)

noinst_PROGRAMS += hostd/kvc-cimd
hostd_kvc_cimd_SOURCES = hostd/cim/kvc-cimd.c
hostd_kvc_cimd_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
hostd_kvc_cimd_LDADD = $(KVC_CIM_LIBS) $(JANSSON_LIBS)

# Unit tests: the request handler against a fake /proc and /sys tree.
check_PROGRAMS += tests/unit/test_cim
TESTS += tests/unit/test_cim
tests_unit_test_cim_SOURCES = tests/unit/test_cim.c
tests_unit_test_cim_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(XML2_CFLAGS)
tests_unit_test_cim_LDADD = $(KVC_CIM_LIBS) $(CMOCKA_LIBS)

# The request parser's fuzz target; its corpus runs in `make check` through
# a plain main() (tests/fuzz/fuzz_cim_corpus.c), libFuzzer runs it in `make fuzz`.
KVC_FUZZ_TARGETS += tests/fuzz/fuzz_cim_request
check_PROGRAMS += tests/fuzz/fuzz_cim_corpus
TESTS += tests/fuzz/fuzz_cim_corpus
tests_fuzz_fuzz_cim_corpus_SOURCES = tests/fuzz/fuzz_cim_request.c tests/fuzz/fuzz_cim_corpus.c
tests_fuzz_fuzz_cim_corpus_CFLAGS = $(AM_CFLAGS) $(XML2_CFLAGS)
tests_fuzz_fuzz_cim_corpus_LDADD = $(KVC_CIM_LIBS)
EXTRA_DIST += tests/fuzz/corpus/cim

# Integration: Debian's wbemcli against kvc-cimd.
TESTS += tests/integration/test_cim.py
EXTRA_DIST += tests/integration/test_cim.py
