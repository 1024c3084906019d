/* kvcli's command table (cli/table.c) and the commands, one file per
 * namespace (cli/ns_*.c).  hostd's SSH shell serves the same table. */
#ifndef KVC_CLI_COMMANDS_H
#define KVC_CLI_COMMANDS_H

#include "cmd.h"
#include "ctx.h"

extern const struct kvc_cmd_table kvcli_table;

/* ns_system.c */
extern const struct kvc_shape kvc_shape_version_get;
int kvc_run_system_version_get(struct kvc_ctx *, const struct kvc_args *,
                               json_t **, char *, size_t);

/* ns_system.c */
extern const struct kvc_shape kvc_shape_hostname_get;
int kvc_run_system_hostname_get(struct kvc_ctx *, const struct kvc_args *,
                                json_t **, char *, size_t);

/* ns_vm.c */
extern const struct kvc_shape kvc_shape_vm_process_list;
int kvc_run_vm_process_list(struct kvc_ctx *, const struct kvc_args *,
                            json_t **, char *, size_t);

#endif
