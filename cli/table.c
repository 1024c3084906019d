/* kvcli's command table: every namespace and command, in one place. */
#include "commands.h"

#include <stdint.h>

static const struct kvc_ns namespaces[] = {
    { "system", "Operations on the host or server itself." },
    { "system hostname", "The host's name." },
    { "system version", "The product name, version and build." },
    { "vm", "Operations on the virtual machines of a host." },
    { "vm process", "The running virtual machines." },
    { "vm power", "Power operations (vpxd; they wait for the host)." },
    { "vm console", "The serial console of a powered-on VM (vpxd)." },
    { "vm snapshot", "A VM's snapshots: take, list, revert to, remove (vpxd)." },
    { "system maintenanceMode", "A host's maintenance mode (vpxd: --host)." },
    { "hardware", "A host's hardware (vpxd: --host)." },
    { "hardware cpu", "The host's CPUs." },
    { "hardware cpu global", "CPU totals." },
    { "hardware memory", "The host's memory." },
    { "host", "The hosts vpxd manages." },
    { "cluster", "The clusters of hosts." },
    { "task", "Operations that run as tasks (vmw-task=true)." },
    { "event", "The events log." },
    { "storage", "Storage: datastores and their file systems." },
    { "storage filesystem", "The file system volumes (datastores)." },
    { "network", "A host's networking (vpxd: --host)." },
    { "network vswitch", "Virtual switches." },
    { "network vswitch standard", "Standard virtual switches." },
    { "network vswitch standard portgroup", "Port groups of standard virtual switches." },
    { NULL },
};

static const struct kvc_opt host_add_opts[] = {
    { "hostname", 'n', KVC_OPT_STRING, .required = true,
      .help = "The host's name or address." },
    { "port", 'p', KVC_OPT_INT, .bounded = true, .min = 1, .max = 65535,
      .help = "The host's management port (default 902)." },
    { "username", 'u', KVC_OPT_STRING, .help = "The host's administrator (default root)." },
    { "password", 'w', KVC_OPT_STRING, .help = "That user's password." },
    { "folder", 'f', KVC_OPT_STRING,
      .help = "The cluster or host folder to add it to (domain-c7, group-h4)." },
    { "thumbprint", 't', KVC_OPT_STRING,
      .help = "The host certificate's SHA-256 thumbprint.  Without it the host is not "
              "added and its thumbprint is shown, to verify and pass here." },
    { NULL },
};
static const struct kvc_opt host_remove_opts[] = {
    { "host", 'o', KVC_OPT_STRING, .required = true, .help = "The host's id (host-28)." },
    { NULL },
};
static const struct kvc_opt task_get_opts[] = {
    { "task", 't', KVC_OPT_STRING, .required = true, .help = "The task's id (task-42)." },
    { NULL },
};
static const struct kvc_opt event_list_opts[] = {
    { "since", 's', KVC_OPT_INT, .bounded = true, .min = 0, .max = INT64_MAX,
      .help = "Only events after this sequence number." },
    { "limit", 'l', KVC_OPT_INT, .bounded = true, .min = 1, .max = 10000,
      .help = "At most this many events (default 1000)." },
    { "object", 'o', KVC_OPT_STRING, .help = "Only events of this object (vm-42)." },
    { "type", 't', KVC_OPT_STRING, .help = "Only events of this type (VmCreatedEvent)." },
    { NULL },
};

static const struct kvc_opt vm_opts[] = {
    { "vm", 'v', KVC_OPT_STRING, .required = true, .help = "The VM's id (vm-42)." },
    { NULL },
};
static const struct kvc_opt console_read_opts[] = {
    { "vm", 'v', KVC_OPT_STRING, .required = true, .help = "The VM's id (vm-42)." },
    { "offset", 'o', KVC_OPT_INT, .bounded = true, .min = 0, .max = INT64_MAX,
      .help = "Output from this byte on (the Next Offset of the last read; default 0: "
              "all that is kept)." },
    { NULL },
};
static const struct kvc_opt console_send_opts[] = {
    { "vm", 'v', KVC_OPT_STRING, .required = true, .help = "The VM's id (vm-42)." },
    { "data", 'd', KVC_OPT_STRING, .required = true, .help = "The text to type." },
    { "no-newline", 'n', KVC_OPT_BOOL, .help = "Do not end it with a newline." },
    { NULL },
};
static const struct kvc_opt snapshot_create_opts[] = {
    { "vm", 'v', KVC_OPT_STRING, .required = true, .help = "The VM's id (vm-42)." },
    { "name", 'n', KVC_OPT_STRING, .required = true, .help = "The snapshot's name." },
    { "description", 'd', KVC_OPT_STRING, .help = "What the snapshot is for." },
    { "memory", 'm', KVC_OPT_BOOL,
      .help = "Keep the running VM's memory too (a revert resumes it where it was)." },
    { NULL },
};
static const struct kvc_opt snapshot_id_opts[] = {
    { "vm", 'v', KVC_OPT_STRING, .required = true, .help = "The VM's id (vm-42)." },
    { "snapshot", 's', KVC_OPT_STRING, .required = true,
      .help = "The snapshot's id (as 'vm snapshot list' shows)." },
    { NULL },
};
static const struct kvc_opt vm_create_opts[] = {
    { "name", 'n', KVC_OPT_STRING, .required = true, .help = "The VM's name." },
    { "cpus", 'c', KVC_OPT_INT, .bounded = true, .min = 1, .max = 64,
      .help = "Virtual CPUs (default 1)." },
    { "memory", 'm', KVC_OPT_INT, .bounded = true, .min = 16, .max = 1048576,
      .help = "Memory in MiB (default 64)." },
    { "host", 'o', KVC_OPT_STRING, .help = "Place it on this host (host-28)." },
    { "cluster", 'l', KVC_OPT_STRING, .help = "Place it in this cluster (domain-c7)." },
    { "datastore", 'd', KVC_OPT_STRING, .help = "Its files' datastore (datastore-9)." },
    { "guest-os", 'g', KVC_OPT_STRING, .help = "Guest OS id (default OTHER_LINUX_64)." },
    { NULL },
};

static const struct kvc_opt on_host_opts[] = {
    { "host", 'o', KVC_OPT_STRING, .required = true, .help = "The host's id (host-28)." },
    { NULL },
};
static const struct kvc_opt maint_set_opts[] = {
    { "enable", 'e', KVC_OPT_BOOL, .required = true,
      .help = "Enter (true) or exit (false) maintenance mode." },
    { "host", 'o', KVC_OPT_STRING, .required = true, .help = "The host's id (host-28)." },
    { NULL },
};

#define HOST_OPT { "host", 'o', KVC_OPT_STRING, \
    .help = "The host's id (host-28), when talking to vpxd." }
static const struct kvc_opt vm_process_list_opts[] = {
    { "host", 'o', KVC_OPT_STRING, .help = "vpxd: only the VMs of this host (host-28)." },
    { NULL },
};
static const char *const kill_types[] = { "soft", "hard", "force", NULL };
static const struct kvc_opt vm_process_kill_opts[] = {
    { "type", 't', KVC_OPT_ENUM, .required = true, .values = kill_types,
      .help = "soft: shut the guest down through tools; hard: power off; force: power off "
              "(the vmx is killed)." },
    { "world-id", 'w', KVC_OPT_INT, .required = true, .bounded = true, .min = 1,
      .max = INT32_MAX, .help = "The World ID of the VM (vm process list)." },
    { NULL },
};
static const struct kvc_opt vsw_list_opts[] = {
    { "vswitch-name", 'v', KVC_OPT_STRING, .help = "Only this virtual switch." },
    HOST_OPT,
    { NULL },
};
static const struct kvc_opt vsw_add_opts[] = {
    { "vswitch-name", 'v', KVC_OPT_STRING, .required = true,
      .help = "The name of the virtual switch to add." },
    { "ports", 'P', KVC_OPT_INT, .bounded = true, .min = 8, .max = 4096,
      .help = "The number of ports (default 128)." },
    HOST_OPT,
    { NULL },
};
static const struct kvc_opt vsw_remove_opts[] = {
    { "vswitch-name", 'v', KVC_OPT_STRING, .required = true,
      .help = "The name of the virtual switch to remove (it must have no port groups)." },
    HOST_OPT,
    { NULL },
};
static const struct kvc_opt host_only_opts[] = {
    HOST_OPT,
    { NULL },
};
static const struct kvc_opt pg_add_opts[] = {
    { "portgroup-name", 'p', KVC_OPT_STRING, .required = true,
      .help = "The name of the port group to add." },
    { "vswitch-name", 'v', KVC_OPT_STRING, .required = true,
      .help = "The virtual switch to add it to." },
    HOST_OPT,
    { NULL },
};
static const struct kvc_opt pg_remove_opts[] = {
    { "portgroup-name", 'p', KVC_OPT_STRING, .required = true,
      .help = "The name of the port group to remove (no powered-on VM may use it)." },
    { "vswitch-name", 'v', KVC_OPT_STRING, .required = true,
      .help = "The virtual switch it is on." },
    HOST_OPT,
    { NULL },
};
static const struct kvc_opt pg_set_opts[] = {
    { "portgroup-name", 'p', KVC_OPT_STRING, .required = true,
      .help = "The name of the port group." },
    { "vlan-id", 'v', KVC_OPT_INT, .required = true, .bounded = true, .min = 0, .max = 4095,
      .help = "The VLAN id: 0 (none), 1-4094, or 4095 (all VLANs)." },
    HOST_OPT,
    { NULL },
};

static const struct kvc_cmd cmds[] = {
    { "system version get", "Display the product name, version and build "
      "information.", NULL, &kvc_shape_version_get, kvc_run_system_version_get },
    { "system hostname get", "Get the host name.", NULL, &kvc_shape_hostname_get,
      kvc_run_system_hostname_get },
    { "vm process list", "List the running virtual machines (of this host; on vpxd of every "
      "host, or of --host).", vm_process_list_opts, &kvc_shape_vm_process_list,
      kvc_run_vm_process_list },
    { "vm process kill", "Stop a running virtual machine: soft (guest shutdown through "
      "tools), hard or force (power off).", vm_process_kill_opts, NULL,
      kvc_run_vm_process_kill },
    { "vm create", "Create a virtual machine (powered off).", vm_create_opts,
      &kvc_shape_vm_create, kvc_run_vm_create },
    { "vm power on", "Power on (or resume) a VM.", vm_opts, NULL, kvc_run_vm_power_on },
    { "vm power off", "Power off a VM.", vm_opts, NULL, kvc_run_vm_power_off },
    { "vm power reset", "Reset a VM.", vm_opts, NULL, kvc_run_vm_power_reset },
    { "vm power suspend", "Suspend a VM.", vm_opts, NULL, kvc_run_vm_power_suspend },
    { "vm power get", "Show a VM's power state.", vm_opts, &kvc_shape_vm_power_get,
      kvc_run_vm_power_get },
    { "vm console read", "Show what the VM's guest printed on its serial port.",
      console_read_opts, &kvc_shape_vm_console_read, kvc_run_vm_console_read },
    { "vm console send", "Type a line on the VM's serial port.", console_send_opts,
      &kvc_shape_vm_console_send, kvc_run_vm_console_send },
    { "vm snapshot list", "List a VM's snapshots.", vm_opts, &kvc_shape_vm_snapshot_list,
      kvc_run_vm_snapshot_list },
    { "vm snapshot create", "Take a snapshot of a VM.", snapshot_create_opts,
      &kvc_shape_vm_snapshot_create, kvc_run_vm_snapshot_create },
    { "vm snapshot revert", "Revert a VM to a snapshot.", snapshot_id_opts, NULL,
      kvc_run_vm_snapshot_revert },
    { "vm snapshot remove", "Remove a snapshot (its disk delta is consolidated).",
      snapshot_id_opts, NULL, kvc_run_vm_snapshot_remove },
    { "system maintenanceMode get", "Get the host's maintenance mode state.", on_host_opts,
      &kvc_shape_maintenance_get, kvc_run_system_maintenance_get },
    { "system maintenanceMode set", "Enter or exit maintenance mode (entering moves the "
      "host's running VMs to other hosts of its cluster first).", maint_set_opts, NULL,
      kvc_run_system_maintenance_set },
    { "hardware cpu global get", "Get the host's CPU totals.", on_host_opts,
      &kvc_shape_hardware_cpu_global_get, kvc_run_hardware_cpu_global_get },
    { "hardware memory get", "Get the host's physical memory.", on_host_opts,
      &kvc_shape_hardware_memory_get, kvc_run_hardware_memory_get },
    { "host list", "List the hosts.", NULL, &kvc_shape_host_list, kvc_run_host_list },
    { "host add", "Add a host: connect to it, check its certificate's thumbprint, "
      "take it into the inventory.", host_add_opts, &kvc_shape_host_add, kvc_run_host_add },
    { "host remove", "Remove a host and its VMs from the inventory.", host_remove_opts,
      NULL, kvc_run_host_remove },
    { "cluster list", "List the clusters.", NULL, &kvc_shape_cluster_list,
      kvc_run_cluster_list },
    { "task list", "List the recent tasks, oldest first.", NULL, &kvc_shape_task_list,
      kvc_run_task_list },
    { "task get", "Show one task.", task_get_opts, &kvc_shape_task_get, kvc_run_task_get },
    { "event list", "List events, oldest first.", event_list_opts, &kvc_shape_event_list,
      kvc_run_event_list },
    { "storage filesystem list", "List the file system volumes (datastores).", NULL,
      &kvc_shape_storage_filesystem_list, kvc_run_storage_filesystem_list },
    { "network vswitch standard list", "List the virtual switches.", vsw_list_opts,
      &kvc_shape_vswitch_list, kvc_run_vswitch_list },
    { "network vswitch standard add", "Add a virtual switch.", vsw_add_opts, NULL,
      kvc_run_vswitch_add },
    { "network vswitch standard remove", "Remove a virtual switch.", vsw_remove_opts, NULL,
      kvc_run_vswitch_remove },
    { "network vswitch standard portgroup list", "List the port groups.", host_only_opts,
      &kvc_shape_portgroup_list, kvc_run_portgroup_list },
    { "network vswitch standard portgroup add", "Add a port group to a virtual switch.",
      pg_add_opts, NULL, kvc_run_portgroup_add },
    { "network vswitch standard portgroup remove", "Remove a port group.", pg_remove_opts,
      NULL, kvc_run_portgroup_remove },
    { "network vswitch standard portgroup set", "Set a port group's VLAN id.", pg_set_opts,
      NULL, kvc_run_portgroup_set },
    { NULL },
};

const struct kvc_cmd_table kvcli_table = {
    .prog = "kvcli",
    .global_usage = "[options] ",
    .namespaces = namespaces,
    .cmds = cmds,
};
