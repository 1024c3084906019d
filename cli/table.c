/* kvcli's command table: every namespace and command, in one place. */
#include "commands.h"

static const struct kvc_ns namespaces[] = {
    { "system", "Operations on the host or server itself." },
    { "system version", "The product name, version and build." },
    { NULL },
};

static const struct kvc_cmd cmds[] = {
    { "system version get", "Display the product name, version and build "
      "information.", NULL, &kvc_shape_version_get, kvc_run_system_version_get },
    { NULL },
};

const struct kvc_cmd_table kvcli_table = {
    .prog = "kvcli",
    .global_usage = "[options] ",
    .namespaces = namespaces,
    .cmds = cmds,
};
