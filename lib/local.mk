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

# libkvcrpc: the RPC transport (frames, TLS-pinned TCP, unix sockets).
# Link with: lib/libkvcrpc.a proto/libkvcproto.a lib/libkvcutil.a $(KVC_RPC_LIBS)
noinst_LIBRARIES += lib/libkvcrpc.a
lib_libkvcrpc_a_SOURCES = lib/rpc.h lib/rpc-int.h lib/rpc.c lib/rpc-frame.c \
	lib/rpc-server.c lib/rpc-client.c lib/tls.h lib/tls.c
lib_libkvcrpc_a_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) $(GNUTLS_CFLAGS) $(PROTOBUF_C_CFLAGS)
KVC_RPC_LIBS = $(LIBEVENT_LIBS) $(GNUTLS_LIBS) $(PROTOBUF_C_LIBS)

check_PROGRAMS += tests/unit/test_rpc_frame
TESTS += tests/unit/test_rpc_frame
tests_unit_test_rpc_frame_SOURCES = tests/unit/test_rpc_frame.c
tests_unit_test_rpc_frame_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(PROTOBUF_C_CFLAGS)
tests_unit_test_rpc_frame_LDADD = lib/libkvcrpc.a proto/libkvcproto.a lib/libkvcutil.a \
	$(KVC_RPC_LIBS) $(CMOCKA_LIBS)

# lib/config: golden files (tests/unit/config/*.conf against *.ok) and the API.
lib_libkvcutil_a_SOURCES += lib/configfile.c lib/configfile.h
check_PROGRAMS += tests/unit/test_config tests/unit/test_config_api
TESTS += tests/unit/test_config_golden.sh tests/unit/test_config_api \
	tests/unit/test_config_packaged.sh
EXTRA_DIST += tests/unit/test_config_golden.sh tests/unit/config \
	tests/unit/test_config_packaged.sh
tests_unit_test_config_SOURCES = tests/unit/test_config.c
tests_unit_test_config_LDADD = lib/libkvcutil.a
tests_unit_test_config_api_SOURCES = tests/unit/test_config_api.c
tests_unit_test_config_api_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_config_api_LDADD = lib/libkvcutil.a $(CMOCKA_LIBS)

# lib/ids: Automation-API-style object ids.
lib_libkvcutil_a_SOURCES += lib/ids.c lib/ids.h
check_PROGRAMS += tests/unit/test_ids
TESTS += tests/unit/test_ids
tests_unit_test_ids_SOURCES = tests/unit/test_ids.c
tests_unit_test_ids_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_ids_LDADD = lib/libkvcutil.a $(CMOCKA_LIBS)

# lib/jsonutil: strict jansson readers for REST bodies and kvcli.
# Programs linking libkvcutil.a and using it add $(JANSSON_LIBS).
lib_libkvcutil_a_SOURCES += lib/jsonutil.c lib/jsonutil.h
lib_libkvcutil_a_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
check_PROGRAMS += tests/unit/test_jsonutil
TESTS += tests/unit/test_jsonutil
tests_unit_test_jsonutil_SOURCES = tests/unit/test_jsonutil.c
tests_unit_test_jsonutil_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_jsonutil_LDADD = lib/libkvcutil.a $(JANSSON_LIBS) $(CMOCKA_LIBS)

KVC_RPC_TEST_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(LIBEVENT_CFLAGS) $(GNUTLS_CFLAGS) \
	$(PROTOBUF_C_CFLAGS)
KVC_RPC_TEST_LDADD = lib/libkvcrpc.a proto/libkvcproto.a lib/libkvcutil.a \
	$(KVC_RPC_LIBS) $(CMOCKA_LIBS)
check_PROGRAMS += tests/unit/test_rpc
TESTS += tests/unit/test_rpc
tests_unit_test_rpc_SOURCES = tests/unit/test_rpc.c tests/unit/rpc_test_util.h
tests_unit_test_rpc_CFLAGS = $(KVC_RPC_TEST_CFLAGS)
tests_unit_test_rpc_LDADD = $(KVC_RPC_TEST_LDADD)
check_PROGRAMS += tests/unit/test_rpc_tls
TESTS += tests/unit/test_rpc_tls
tests_unit_test_rpc_tls_SOURCES = tests/unit/test_rpc_tls.c tests/unit/rpc_test_util.h
tests_unit_test_rpc_tls_CFLAGS = $(KVC_RPC_TEST_CFLAGS)
tests_unit_test_rpc_tls_LDADD = $(KVC_RPC_TEST_LDADD)

# make bench: rpc-roundtrip-unix (tests/bench/bench_rpc.c).
KVC_BENCH_BINS += tests/bench/bench_rpc
EXTRA_PROGRAMS += tests/bench/bench_rpc
CLEANFILES += tests/bench/bench_rpc
tests_bench_bench_rpc_SOURCES = tests/bench/bench_rpc.c
tests_bench_bench_rpc_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) $(GNUTLS_CFLAGS) $(PROTOBUF_C_CFLAGS)
tests_bench_bench_rpc_LDADD = lib/libkvcrpc.a proto/libkvcproto.a lib/libkvcutil.a $(KVC_RPC_LIBS)

# lib/lease: VM lease files on datastores (vmx, hostd, vpxd HA).
lib_libkvcutil_a_SOURCES += lib/lease.c lib/lease.h
check_PROGRAMS += tests/unit/test_lease
TESTS += tests/unit/test_lease
tests_unit_test_lease_SOURCES = tests/unit/test_lease.c
tests_unit_test_lease_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_lease_LDADD = lib/libkvcutil.a $(CMOCKA_LIBS)
# Leases across two hosts (sim, and kvm with vmkd + vmx where /dev/kvm works).
TESTS += tests/integration/test_lease.py
EXTRA_DIST += tests/integration/test_lease.py
