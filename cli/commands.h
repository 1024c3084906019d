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
int kvc_run_vm_process_kill(struct kvc_ctx *, const struct kvc_args *,
                            json_t **, char *, size_t);

/* ns_host.c */
extern const struct kvc_shape kvc_shape_host_list, kvc_shape_host_add;
int kvc_run_host_list(struct kvc_ctx *, const struct kvc_args *, json_t **, char *, size_t);
int kvc_run_host_add(struct kvc_ctx *, const struct kvc_args *, json_t **, char *, size_t);
int kvc_run_host_remove(struct kvc_ctx *, const struct kvc_args *, json_t **, char *, size_t);
/* An inventory id ("host-28", "domain-c7"): safe in a request path. */
bool kvc_ns_valid_id(const char *);

/* ns_cluster.c */
extern const struct kvc_shape kvc_shape_cluster_list;
int kvc_run_cluster_list(struct kvc_ctx *, const struct kvc_args *, json_t **, char *, size_t);

/* ns_task.c */
extern const struct kvc_shape kvc_shape_task_list, kvc_shape_task_get;
int kvc_run_task_list(struct kvc_ctx *, const struct kvc_args *, json_t **, char *, size_t);
int kvc_run_task_get(struct kvc_ctx *, const struct kvc_args *, json_t **, char *, size_t);

/* ns_event.c */
extern const struct kvc_shape kvc_shape_event_list;
int kvc_run_event_list(struct kvc_ctx *, const struct kvc_args *, json_t **, char *, size_t);

/* ns_storage.c */
extern const struct kvc_shape kvc_shape_storage_filesystem_list;
int kvc_run_storage_filesystem_list(struct kvc_ctx *, const struct kvc_args *, json_t **,
                                    char *, size_t);

/* ns_vm.c: vCenter-level VM commands */
extern const struct kvc_shape kvc_shape_vm_create, kvc_shape_vm_power_get;
int kvc_run_vm_create(struct kvc_ctx *, const struct kvc_args *, json_t **, char *, size_t);
int kvc_run_vm_power_on(struct kvc_ctx *, const struct kvc_args *, json_t **, char *, size_t);
int kvc_run_vm_power_off(struct kvc_ctx *, const struct kvc_args *, json_t **, char *, size_t);
int kvc_run_vm_power_reset(struct kvc_ctx *, const struct kvc_args *, json_t **, char *,
                           size_t);
int kvc_run_vm_power_suspend(struct kvc_ctx *, const struct kvc_args *, json_t **, char *,
                             size_t);
int kvc_run_vm_power_get(struct kvc_ctx *, const struct kvc_args *, json_t **, char *, size_t);

/* ns_hardware.c */
extern const struct kvc_shape kvc_shape_hardware_cpu_global_get, kvc_shape_hardware_memory_get;
int kvc_run_hardware_cpu_global_get(struct kvc_ctx *, const struct kvc_args *, json_t **,
                                    char *, size_t);
int kvc_run_hardware_memory_get(struct kvc_ctx *, const struct kvc_args *, json_t **, char *,
                                size_t);
/* GET /api/kvc/host/{--host}: the host's record (an object). */
int kvc_ns_host_get(struct kvc_ctx *, const struct kvc_args *, json_t **, char *, size_t);

/* ns_system.c: system maintenanceMode */
extern const struct kvc_shape kvc_shape_maintenance_get;
int kvc_run_system_maintenance_get(struct kvc_ctx *, const struct kvc_args *, json_t **,
                                   char *, size_t);
int kvc_run_system_maintenance_set(struct kvc_ctx *, const struct kvc_args *, json_t **,
                                   char *, size_t);

/* ns_vm_snapshot.c */
extern const struct kvc_shape kvc_shape_vm_snapshot_list, kvc_shape_vm_snapshot_create;
int kvc_run_vm_snapshot_list(struct kvc_ctx *, const struct kvc_args *, json_t **, char *,
                             size_t);
int kvc_run_vm_snapshot_create(struct kvc_ctx *, const struct kvc_args *, json_t **, char *,
                               size_t);
int kvc_run_vm_snapshot_revert(struct kvc_ctx *, const struct kvc_args *, json_t **, char *,
                               size_t);
int kvc_run_vm_snapshot_remove(struct kvc_ctx *, const struct kvc_args *, json_t **, char *,
                               size_t);
/* ns_vm_console.c */
extern const struct kvc_shape kvc_shape_vm_console_read, kvc_shape_vm_console_send;
int kvc_run_vm_console_read(struct kvc_ctx *, const struct kvc_args *, json_t **, char *,
                            size_t);
int kvc_run_vm_console_send(struct kvc_ctx *, const struct kvc_args *, json_t **, char *,
                            size_t);

/* ns_network.c: network vswitch standard [portgroup] */
extern const struct kvc_shape kvc_shape_vswitch_list, kvc_shape_portgroup_list;
int kvc_run_vswitch_list(struct kvc_ctx *, const struct kvc_args *, json_t **, char *, size_t);
int kvc_run_vswitch_add(struct kvc_ctx *, const struct kvc_args *, json_t **, char *, size_t);
int kvc_run_vswitch_remove(struct kvc_ctx *, const struct kvc_args *, json_t **, char *,
                           size_t);
int kvc_run_portgroup_list(struct kvc_ctx *, const struct kvc_args *, json_t **, char *,
                           size_t);
int kvc_run_portgroup_add(struct kvc_ctx *, const struct kvc_args *, json_t **, char *, size_t);
int kvc_run_portgroup_remove(struct kvc_ctx *, const struct kvc_args *, json_t **, char *,
                             size_t);
int kvc_run_portgroup_set(struct kvc_ctx *, const struct kvc_args *, json_t **, char *, size_t);

#endif
