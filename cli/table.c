/* kvcli's command table: every namespace and command, in one place. */
#include "commands.h"

static const struct kvc_ns namespaces[] = {
    { "system", "Operations on the host or server itself." },
    { "system hostname", "The host's name." },
    { "system version", "The product name, version and build." },
    { "vm", "Operations on the virtual machines of a host." },
    { "vm process", "The running virtual machines." },
    { NULL },
};

static const struct kvc_cmd cmds[] = {
    { "system version get", "Display the product name, version and build "
      "information.", NULL, &kvc_shape_version_get, kvc_run_system_version_get },
    { "system hostname get", "Get the host name.", NULL, &kvc_shape_hostname_get,
      kvc_run_system_hostname_get },
    { "vm process list", "List the virtual machines this host runs.", NULL,
      &kvc_shape_vm_process_list, kvc_run_vm_process_list },
    { NULL },
};

const struct kvc_cmd_table kvcli_table = {
    .prog = "kvcli",
    .global_usage = "[options] ",
    .namespaces = namespaces,
    .cmds = cmds,
};
