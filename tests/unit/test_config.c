/* Golden-file driver for lib/config: `test_config -n FILE` parses FILE with
 * the test schema below and prints what a daemon's -n flag prints (the
 * normalised config, or the errors), all on stdout.  Exit 0 good, 1 bad.
 * tests/unit/test_config_golden.sh diffs the output with FILE's .ok. */
#include <stdio.h>
#include <string.h>

#include "configfile.h"

static const struct kvc_cfg_key top_keys[] = {
    KVC_CFG_KEY_STRING("name", "test", "a name for the program"),
    KVC_CFG_KEY_END,
};

static const struct kvc_cfg_key server_keys[] = {
    KVC_CFG_KEY_STRING("listen", "127.0.0.1", "address to listen on"),
    KVC_CFG_KEY_INT("port", "8443", 1, 65535, "TCP port"),
    KVC_CFG_KEY_INT("offset", "-5", -100, 100, "a signed value"),
    KVC_CFG_KEY_BOOL("tls", "true", "serve TLS"),
    KVC_CFG_KEY_SIZE("max-body", "1M", 1024, 1ll << 30, "largest request body"),
    KVC_CFG_KEY_DURATION("timeout", "30s", 1, 3600000, "request timeout"),
    KVC_CFG_KEY_ENUM("backend", "kvm", "host backend", "kvm", "sim"),
    KVC_CFG_KEY_LIST("allow", "", "allowed client addresses"),
    KVC_CFG_KEY_STRING("banner", NULL, "optional login banner"),
    KVC_CFG_KEY_END,
};

static const struct kvc_cfg_key log_keys[] = {
    KVC_CFG_KEY_ENUM("level", "info", "log level", "err", "warn", "info", "dbg"),
    KVC_CFG_KEY_STRING("file", NULL, "log file (default: stderr)"),
    KVC_CFG_KEY_END,
};

static const struct kvc_cfg_key datastore_keys[] = {
    { .name = "path", .type = KVC_CFG_STRING, .required = true,
      .help = "directory of the datastore" },
    KVC_CFG_KEY_SIZE("reserve", "0", 0, 1ll << 50, "space kept free"),
    KVC_CFG_KEY_BOOL("shared", "no", "reachable from other hosts"),
    KVC_CFG_KEY_END,
};

static const struct kvc_cfg_section_def sections[] = {
    { .name = "", .keys = top_keys },
    { .name = "server", .keys = server_keys },
    { .name = "log", .keys = log_keys },
    { .name = "datastore", .named = true, .keys = datastore_keys },
    { .name = NULL },
};

static const struct kvc_cfg_schema schema = { .name = "test", .sections = sections };

int
main(int argc, char **argv)
{
    if (argc != 3 || strcmp(argv[1], "-n")) {
        fprintf(stderr, "usage: %s -n FILE\n", argv[0]);
        return 2;
    }
    return kvc_config_check(&schema, argv[2], stdout, stdout);
}
