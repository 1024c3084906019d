# cli/: kvcli and the command table it shares with hostd's SSH shell.
# libkvccli: the table machinery and formatters (hostd links it too):
#   cli/libkvccli.a lib/libkvcutil.a $(JANSSON_LIBS)
noinst_LIBRARIES += cli/libkvccli.a
cli_libkvccli_a_SOURCES = cli/cmd.c cli/cmd.h cli/format.c cli/format.h
cli_libkvccli_a_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)

check_PROGRAMS += tests/unit/test_cli_format tests/unit/test_cli_parse
TESTS += tests/unit/test_cli_format tests/unit/test_cli_parse
tests_unit_test_cli_format_SOURCES = tests/unit/test_cli_format.c
tests_unit_test_cli_format_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_cli_format_LDADD = cli/libkvccli.a lib/libkvcutil.a $(JANSSON_LIBS) $(CMOCKA_LIBS)
tests_unit_test_cli_parse_SOURCES = tests/unit/test_cli_parse.c
tests_unit_test_cli_parse_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_cli_parse_LDADD = cli/libkvccli.a lib/libkvcutil.a $(JANSSON_LIBS) $(CMOCKA_LIBS)

# The REST client and kvcli itself.
cli_libkvccli_a_SOURCES += cli/ctx.c cli/ctx.h cli/rest.c cli/rest.h \
	cli/commands.h cli/table.c cli/ns_system.c cli/ns_vm.c \
	cli/ns_host.c cli/ns_cluster.c cli/ns_task.c cli/ns_event.c cli/ns_storage.c cli/ns_hardware.c \
	cli/ns_network.c \
	cli/ns_vm_console.c cli/ns_vm_snapshot.c
cli_libkvccli_a_CFLAGS += $(CURL_CFLAGS) $(GNUTLS_CFLAGS)
bin_PROGRAMS += cli/kvcli
cli_kvcli_SOURCES = cli/kvcli.c
cli_kvcli_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(CURL_CFLAGS)
cli_kvcli_LDADD = cli/libkvccli.a lib/libkvcutil.a $(CURL_LIBS) $(GNUTLS_LIBS) $(JANSSON_LIBS)

TESTS += tests/integration/test_cli_rest.py
EXTRA_DIST += tests/integration/test_cli_rest.py
TESTS += tests/integration/test_cli_namespaces.py
EXTRA_DIST += tests/integration/test_cli_namespaces.py
TESTS += tests/integration/test_cli_network.py
EXTRA_DIST += tests/integration/test_cli_network.py

# bash completion, asking kvcli itself (kvcli --complete WORDS...).
bashcompletiondir = $(datadir)/bash-completion/completions
dist_bashcompletion_DATA = cli/bash-completion/kvcli
