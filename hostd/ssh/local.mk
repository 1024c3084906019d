# hostd/ssh/: the host's shell, over SSH (libssh) and HTTPS for kvcli
# (libmicrohttpd), running cli/'s command table against the host's own API.
# See docs/hosts.md ("SSH shell") and cli/README.md.
hostd_hostd_SOURCES += \
	hostd/ssh/ssh.h hostd/ssh/bridge.c hostd/ssh/hostapi.c hostd/ssh/shell.c \
	hostd/ssh/auth.c hostd/ssh/ssh.c hostd/ssh/rest.c
hostd_hostd_CFLAGS += $(LIBSSH_CFLAGS) $(MHD_CFLAGS) $(JANSSON_CFLAGS) $(ARGON2_CFLAGS)
hostd_hostd_LDADD += cli/libkvccli.a lib/libkvcutil.a $(LIBSSH_LIBS) $(MHD_LIBS) \
	$(ARGON2_LIBS) $(JANSSON_LIBS) $(GNUTLS_LIBS)

# OpenSSH's client and kvcli against a real hostd.
TESTS += tests/integration/test_ssh.py
EXTRA_DIST += tests/integration/test_ssh.py

# Unit tests: command-line splitting, the host's API, lines through the bridge.
check_PROGRAMS += tests/unit/test_hostd_shell
TESTS += tests/unit/test_hostd_shell
tests_unit_test_hostd_shell_SOURCES = tests/unit/test_hostd_shell.c \
	hostd/ssh/shell.c hostd/ssh/bridge.c hostd/ssh/hostapi.c
tests_unit_test_hostd_shell_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(LIBEVENT_CFLAGS) \
	$(JANSSON_CFLAGS) $(PROTOBUF_C_CFLAGS)
tests_unit_test_hostd_shell_LDADD = cli/libkvccli.a lib/libkvcutil.a $(LIBEVENT_LIBS) \
	$(JANSSON_LIBS) $(CMOCKA_LIBS)

# make bench: a command over SSH against the same command through kvcli.
KVC_BENCH_SCRIPT_LIST += tests/bench/bench_ssh.py
EXTRA_DIST += tests/bench/bench_ssh.py
