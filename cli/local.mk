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
