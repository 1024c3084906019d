# lib/: code shared by more than one program.
# libkvcutil: logging, config, ids, json helpers.  libkvcrpc: the RPC transport.
noinst_LIBRARIES += lib/libkvcutil.a
lib_libkvcutil_a_SOURCES = \
	lib/log.c lib/log.h

# Unit tests of lib/ (cmocka, TAP).
check_PROGRAMS += tests/unit/test_log
TESTS += tests/unit/test_log
tests_unit_test_log_SOURCES = tests/unit/test_log.c
tests_unit_test_log_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_log_LDADD = lib/libkvcutil.a $(CMOCKA_LIBS)
