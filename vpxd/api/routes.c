/* The one route table: the server dispatches with it and /api/openapi.json
 * is generated from it (api/openapi.c), so the two cannot drift apart. */
#include "config.h"

#include "vpxd/api/api.h"

#define R(M, P, A, H, AUTH, PRIV, TASK, ST, SUM, BODY, Q) \
    { .method = M, .path = P, .action = A, .handler = H, .auth = AUTH, \
      .privilege = PRIV, .task = TASK, .status = ST, .summary = SUM, \
      .body_schema = BODY, .query = Q }
#define S API_AUTH_SESSION
#define VMQ "vms,names,folders,datacenters,hosts,clusters,resource_pools,power_states"

const struct api_route api_routes[] = {
    /* Sessions. */
    R("POST", "/api/session", NULL, api_session_create, API_AUTH_BASIC, NULL, false, 201,
      "Log in with HTTP Basic; returns the session token", NULL, NULL),
    R("GET", "/api/session", NULL, api_session_get, S, NULL, false, 200,
      "The current session", NULL, NULL),
    R("DELETE", "/api/session", NULL, api_session_delete, S, NULL, false, 204,
      "Log out", NULL, NULL),
    R("POST", "/rest/com/vmware/cis/session", NULL, api_rest_session_create, API_AUTH_BASIC,
      NULL, false, 200, "Log in (older clients): {\"value\": token} and a cookie", NULL, NULL),
    R("POST", "/rest/com/vmware/cis/session", "get", api_rest_session_get, S, NULL, false, 200,
      "The current session (older clients, ~action=get)", NULL, NULL),
    R("DELETE", "/rest/com/vmware/cis/session", NULL, api_rest_session_delete, S, NULL, false,
      200, "Log out (older clients)", NULL, NULL),

    /* VMs. */
    R("GET", "/api/vcenter/vm", NULL, api_vm_list, S, NULL, false, 200,
      "List VMs (at most 4000)", NULL, VMQ),
    R("POST", "/api/vcenter/vm", NULL, api_vm_create, S, NULL, true, 201,
      "Create a VM on a host or in a cluster", "VcenterVMCreateSpec", NULL),
    R("GET", "/api/vcenter/vm/{vm}", NULL, api_vm_get, S, "System.Read", false, 200,
      "A VM's configuration", NULL, NULL),
    R("DELETE", "/api/vcenter/vm/{vm}", NULL, api_vm_delete, S,
      "VirtualMachine.Inventory.Delete", true, 204, "Delete a powered-off VM and its files",
      NULL, NULL),
    R("GET", "/api/vcenter/vm/{vm}/power", NULL, api_vm_power_get, S, "System.Read", false,
      200, "A VM's power state", NULL, NULL),
    R("POST", "/api/vcenter/vm/{vm}/power", "start", api_ha_vm_power_start, S,
      "VirtualMachine.Interact.PowerOn", true, 204, "Power on (or resume)", NULL, NULL),
    R("POST", "/api/vcenter/vm/{vm}/power", "stop", api_ha_vm_power_stop, S,
      "VirtualMachine.Interact.PowerOff", true, 204, "Power off", NULL, NULL),
    R("POST", "/api/vcenter/vm/{vm}/power", "suspend", api_ha_vm_power_suspend, S,
      "VirtualMachine.Interact.Suspend", true, 204, "Suspend", NULL, NULL),
    R("POST", "/api/vcenter/vm/{vm}/power", "reset", api_vm_power_reset, S,
      "VirtualMachine.Interact.Reset", true, 204, "Reset", NULL, NULL),
    R("GET", "/api/vcenter/vm/{vm}/guest/power", NULL, api_vm_guest_power_get, S,
      "System.Read", false, 200, "Guest OS power state", NULL, NULL),
    R("POST", "/api/vcenter/vm/{vm}/guest/power", "shutdown", api_ha_vm_guest_shutdown, S,
      "VirtualMachine.Interact.PowerOff", false, 204, "Ask the guest to shut down", NULL,
      NULL),
    R("POST", "/api/vcenter/vm/{vm}/guest/power", "reboot", api_vm_guest_reboot, S,
      "VirtualMachine.Interact.Reset", false, 204, "Ask the guest to reboot", NULL, NULL),
    R("GET", "/api/vcenter/vm/{vm}/guest/identity", NULL, api_vm_guest_identity, S,
      "System.Read", false, 200, "Guest identity (needs tools running)", NULL, NULL),
    R("GET", "/api/vcenter/vm/{vm}/tools", NULL, api_vm_tools_get, S, "System.Read", false,
      200, "Tools state", NULL, NULL),
    R("GET", "/api/kvc/vm/{vm}/console", NULL, api_vm_console_read, S,
      "VirtualMachine.Interact.ConsoleInteract", false, 200,
      "Serial console output from a byte offset: {data, offset (next), total}", NULL,
      "offset,max"),
    R("POST", "/api/kvc/vm/{vm}/console", NULL, api_vm_console_write, S,
      "VirtualMachine.Interact.ConsoleInteract", false, 200,
      "Type on the serial console: {data} -> {accepted}", "KvcConsoleInput", NULL),
    R("GET", "/api/kvc/vm/{vm}/snapshots", NULL, api_vm_snapshot_list, S, "System.Read",
      false, 200, "A VM's snapshots: [{snapshot, name, description, created, power_state, "
      "memory, current}]", NULL, NULL),
    R("POST", "/api/kvc/vm/{vm}/snapshots", NULL, api_vm_snapshot_create, S,
      "VirtualMachine.State.CreateSnapshot", false, 201,
      "Take a snapshot: {name, description, memory} (memory: a revert resumes the running "
      "VM)", "KvcSnapshotCreate", NULL),
    R("POST", "/api/kvc/vm/{vm}/snapshots/{snapshot}", "revert", api_vm_snapshot_revert, S,
      "VirtualMachine.State.RevertToSnapshot", false, 200,
      "Revert the VM to a snapshot (its power state then)", NULL, NULL),
    R("DELETE", "/api/kvc/vm/{vm}/snapshots/{snapshot}", NULL, api_vm_snapshot_delete, S,
      "VirtualMachine.State.RemoveSnapshot", false, 204,
      "Delete a snapshot (its disk delta is consolidated)", NULL, NULL),
    R("GET", "/api/vcenter/vm/{vm}/hardware", NULL, api_vm_hardware_get, S, "System.Read",
      false, 200, "Virtual hardware version and upgrade policy", NULL, NULL),
    R("PATCH", "/api/vcenter/vm/{vm}/hardware", NULL, api_vm_hardware_patch, S,
      "VirtualMachine.Config.CPUCount", false, 204,
      "kvcenter: change CPU count and memory of a powered-off VM "
      "(cpu.count, cpu.cores_per_socket, memory.size_MiB)", "KvcVmHardwareUpdateSpec", NULL),

    /* Hosts. */
    R("GET", "/api/vcenter/host", NULL, api_host_list, S, NULL, false, 200, "List hosts",
      NULL, "hosts,names,folders,datacenters,standalone,clusters,connection_states"),
    R("POST", "/api/vcenter/host", NULL, api_host_create, S, NULL, false, 201,
      "Add a host (thumbprint flow); `folder` may also name a cluster",
      "VcenterHostCreateSpec", NULL),
    R("DELETE", "/api/vcenter/host/{host}", NULL, api_host_delete, S,
      "Host.Inventory.RemoveHostFromCluster", false, 204, "Remove a host", NULL, NULL),
    R("POST", "/api/vcenter/host/{host}", "connect", api_host_connect, S,
      "Host.Config.Connection", false, 204, "Connect a host", NULL, NULL),
    R("POST", "/api/vcenter/host/{host}", "disconnect", api_host_disconnect, S,
      "Host.Config.Connection", false, 204, "Disconnect a host", NULL, NULL),

    /* Datacenters, clusters, folders, datastores, networks, pools. */
    R("GET", "/api/vcenter/datacenter", NULL, api_datacenter_list, S, NULL, false, 200,
      "List datacenters", NULL, "datacenters,names,folders"),
    R("POST", "/api/vcenter/datacenter", NULL, api_datacenter_create, S, NULL, false, 201,
      "Create a datacenter", "VcenterDatacenterCreateSpec", NULL),
    R("GET", "/api/vcenter/datacenter/{datacenter}", NULL, api_datacenter_get, S,
      "System.Read", false, 200, "A datacenter", NULL, NULL),
    R("DELETE", "/api/vcenter/datacenter/{datacenter}", NULL, api_datacenter_delete, S,
      "Datacenter.Delete", false, 204, "Delete a datacenter", NULL, "force"),
    R("GET", "/api/vcenter/cluster", NULL, api_cluster_list, S, NULL, false, 200,
      "List clusters", NULL, "clusters,names,folders,datacenters"),
    R("GET", "/api/vcenter/cluster/{cluster}", NULL, api_cluster_get, S, "System.Read",
      false, 200, "A cluster", NULL, NULL),
    R("POST", "/api/kvc/cluster", NULL, api_cluster_create, S, NULL, false, 201,
      "kvcenter: create a cluster {name, folder (host folder or datacenter), ha_enabled,"
      " drs_enabled}", "KvcClusterCreateSpec", NULL),
    R("DELETE", "/api/kvc/cluster/{cluster}", NULL, api_cluster_delete, S,
      "Host.Inventory.DeleteCluster", false, 204, "kvcenter: delete an empty cluster", NULL,
      NULL),
    /* vSphere HA (api/ha.c, docs/ha.md). */
    R("GET", "/api/kvc/cluster/{cluster}/ha", NULL, api_ha_cluster_get, S, "System.Read",
      false, 200, "kvcenter: vSphere HA settings of a cluster, its hosts' HA states and the"
      " failover queue", NULL, NULL),
    R("PATCH", "/api/kvc/cluster/{cluster}/ha", NULL, api_ha_cluster_patch, S,
      "Host.Inventory.EditCluster", false, 204, "kvcenter: change vSphere HA settings"
      " (enabled, host_monitoring, failure_detection_time_ms, admission_control{policy,"
      " host_failures_tolerated, cpu_percent, memory_percent, failover_hosts},"
      " restart_priority, isolation_response, isolation_address, vm_monitoring{enabled,"
      " failure_interval_s, min_uptime_s, max_resets, max_resets_window_s})",
      "KvcHaClusterUpdateSpec", NULL),
    R("GET", "/api/kvc/vm/{vm}/ha", NULL, api_ha_vm_get, S, "System.Read", false, 200,
      "kvcenter: a VM's HA restart priority and protection", NULL, NULL),
    R("PATCH", "/api/kvc/vm/{vm}/ha", NULL, api_ha_vm_patch, S,
      "VirtualMachine.Config.Settings", false, 204,
      "kvcenter: a VM's restart priority {restart_priority: disabled|lowest|low|medium|high|"
      "highest, or null for the cluster's}", "KvcHaVmUpdateSpec", NULL),
    R("GET", "/api/vcenter/folder", NULL, api_folder_list, S, NULL, false, 200,
      "List folders", NULL, "folders,names,type,parent_folders,datacenters"),
    R("POST", "/api/kvc/folder", NULL, api_folder_create, S, NULL, false, 201,
      "kvcenter: create a folder {name, parent_folder}", "KvcFolderCreateSpec", NULL),
    R("DELETE", "/api/kvc/folder/{folder}", NULL, api_folder_delete, S, "Folder.Delete",
      false, 204, "kvcenter: delete an empty folder", NULL, NULL),
    R("GET", "/api/vcenter/datastore", NULL, api_datastore_list, S, NULL, false, 200,
      "List datastores", NULL, "datastores,names,types,folders,datacenters"),
    R("GET", "/api/vcenter/datastore/{datastore}", NULL, api_datastore_get, S,
      "System.Read", false, 200, "A datastore", NULL, NULL),
    R("GET", "/api/vcenter/network", NULL, api_network_list, S, NULL, false, 200,
      "List networks", NULL, "networks,names,types,folders,datacenters"),
    R("GET", "/api/vcenter/resource-pool", NULL, api_rp_list, S, NULL, false, 200,
      "List resource pools", NULL,
      "resource_pools,names,parent_resource_pools,datacenters,hosts,clusters"),
    R("POST", "/api/vcenter/resource-pool", NULL, api_rp_create, S, NULL, false, 201,
      "Create a resource pool", "VcenterResourcePoolCreateSpec", NULL),
    R("GET", "/api/vcenter/resource-pool/{resource_pool}", NULL, api_rp_get, S,
      "System.Read", false, 200, "A resource pool", NULL, NULL),
    R("PATCH", "/api/vcenter/resource-pool/{resource_pool}", NULL, api_rp_patch, S,
      "Resource.EditPool", false, 204, "Change a resource pool",
      "VcenterResourcePoolUpdateSpec", NULL),
    R("DELETE", "/api/vcenter/resource-pool/{resource_pool}", NULL, api_rp_delete, S,
      "Resource.DeletePool", false, 204, "Delete an empty resource pool", NULL, NULL),
    R("GET", "/api/kvc/vm/{vm}/resource-allocation", NULL, api_rp_vm_alloc_get, S,
      "System.Read", false, 200, "kvcenter: a VM's resource pool and its CPU (MHz) and memory"
      " (MB) reservation, limit and shares", NULL, NULL),
    R("PATCH", "/api/kvc/vm/{vm}/resource-allocation", NULL, api_rp_vm_alloc_patch, S,
      "Resource.AssignVMToPool", false, 204, "kvcenter: move a VM to another resource pool of its cluster or host and"
      " change its reservations, limits and shares {resource_pool, cpu_allocation:"
      " {reservation, limit, shares: {level, shares}}, memory_allocation}",
      "KvcVmResourceAllocationSpec", NULL),
    R("GET", "/api/kvc/host/{host}/resource-pools", NULL, api_rp_host_pools, S, "System.Read",
      false, 200, "kvcenter: the resource pool tree as the host applied it (cgroups, weights,"
      " quotas, usage)", NULL, NULL),

    /* Migration, maintenance mode and DRS (api/relocate.c, api/host.c,
     * api/drs.c; docs/drs.md). */
    R("POST", "/api/vcenter/vm/{vm}", "relocate", api_vm_relocate, S, "Resource.HotMigrate",
      true, 204, "Migrate a VM to another host (live when powered on): {placement: {host,"
      " cluster, datastore}}; the datastore must be the VM's", "VcenterVMRelocateSpec", NULL),
    R("POST", "/api/cis/tasks/{task}", "cancel", api_task_cancel, S, NULL, false, 204,
      "Cancel a running migration's task (the VM stays on its source)", NULL, NULL),
    R("POST", "/api/kvc/host/{host}", "enter-maintenance", api_host_enter_maintenance, S,
      "Host.Config.Maintenance", true, 204, "kvcenter: enter maintenance mode, moving the"
      " host's powered-on VMs to other hosts of its cluster first", NULL, NULL),
    R("POST", "/api/kvc/host/{host}", "exit-maintenance", api_host_exit_maintenance, S,
      "Host.Config.Maintenance", true, 204, "kvcenter: exit maintenance mode", NULL, NULL),
    R("GET", "/api/kvc/cluster/{cluster}/drs", NULL, api_drs_get, S, "System.Read", false, 200,
      "kvcenter: DRS settings, current imbalance, host loads", NULL, NULL),
    R("PATCH", "/api/kvc/cluster/{cluster}/drs", NULL, api_drs_patch, S,
      "Host.Inventory.EditCluster", false, 204, "kvcenter: change DRS settings {enabled,"
      " automation_level: manual|partiallyAutomated|fullyAutomated, migration_threshold 1-5,"
      " pass_interval_s}", "KvcDrsUpdateSpec", NULL),
    R("POST", "/api/kvc/cluster/{cluster}/drs", "run", api_drs_run, S,
      "Host.Inventory.EditCluster", false, 200, "kvcenter: run a DRS pass now", NULL, NULL),
    R("GET", "/api/kvc/cluster/{cluster}/drs/recommendations", NULL, api_drs_recs_list, S,
      "System.Read", false, 200, "kvcenter: DRS recommendations, newest first", NULL, "state"),
    R("POST", "/api/kvc/cluster/{cluster}/drs/recommendations", "apply", api_drs_recs_apply, S,
      "Host.Inventory.EditCluster", false, 200, "kvcenter: apply pending recommendations"
      " {recommendations: [ids]} (no body: all pending)", "KvcDrsApplySpec", NULL),
    R("GET", "/api/kvc/cluster/{cluster}/rules", NULL, api_drs_rules_list, S, "System.Read",
      false, 200, "kvcenter: the cluster's VM-VM and VM-host rules", NULL, NULL),
    R("POST", "/api/kvc/cluster/{cluster}/rules", NULL, api_drs_rule_create, S,
      "Host.Inventory.EditCluster", false, 201, "kvcenter: add a rule {name, kind:"
      " VM_AFFINITY|VM_ANTI_AFFINITY|VM_HOST_MUST|VM_HOST_SHOULD|VM_HOST_MUST_NOT|"
      "VM_HOST_SHOULD_NOT, enabled, vms[], hosts[]}", "KvcDrsRuleCreateSpec", NULL),
    R("DELETE", "/api/kvc/cluster/{cluster}/rules/{rule}", NULL, api_drs_rule_delete, S,
      "Host.Inventory.EditCluster", false, 204, "kvcenter: delete a rule", NULL, NULL),

    /* Tasks. */
    R("GET", "/api/cis/tasks/{task}", NULL, api_task_get, S, NULL, false, 200,
      "A task", NULL, NULL),
    R("POST", "/api/cis/tasks", "list", api_task_list, S, NULL, false, 200,
      "Recent tasks (at most 1000), keyed by id", NULL, NULL),

    /* kvcenter's own resources. */
    R("GET", "/api/kvc/events", NULL, api_events_list, S, "System.Read", false, 200,
      "Events after `since` (sequence number), oldest first", NULL, "since,limit,object,type"),
    R("GET", "/api/kvc/events/stream", NULL, api_events_stream, S, "System.Read", false, 200,
      "Server-sent event stream of new events (text/event-stream)", NULL, "since"),
    R("GET", "/api/kvc/alarms", NULL, api_alarms_list, S, "System.Read", false, 200,
      "Alarm definitions and triggered alarms", NULL, NULL),
    R("POST", "/api/kvc/alarms/{alarm}", "acknowledge", api_alarm_ack, S,
      "Alarm.Acknowledge", false, 204, "Acknowledge a triggered alarm {object}",
      "KvcAlarmAckSpec", NULL),
    R("GET", "/api/kvc/stats", NULL, api_stats_get, S, NULL, false, 200,
      "Performance samples of a host or VM: interval=realtime (as reported, the last "
      "hour) or a rollup kept in the database (5min, 30min, 2h, 1day)", NULL,
      "entity,interval"),
    R("GET", "/api/kvc/users", NULL, api_users_list, S, "Authorization.ModifyPermissions",
      false, 200, "Local users", NULL, NULL),
    R("POST", "/api/kvc/users", NULL, api_user_create, S, "Authorization.ModifyPermissions",
      false, 201, "Create a local user {name, password}", "KvcUserCreateSpec", NULL),
    R("PATCH", "/api/kvc/users/{user}", NULL, api_user_patch, S, NULL, false, 204,
      "Change a password {password} (own, or any with Authorization.ModifyPermissions)",
      "KvcUserUpdateSpec", NULL),
    R("DELETE", "/api/kvc/users/{user}", NULL, api_user_delete, S,
      "Authorization.ModifyPermissions", false, 204, "Delete a local user", NULL, NULL),
    R("GET", "/api/kvc/roles", NULL, api_roles_list, S, "System.Read", false, 200,
      "Roles and their privileges", NULL, NULL),
    R("POST", "/api/kvc/roles", NULL, api_role_create, S, "Authorization.ModifyRoles", false,
      201, "Create a role {name, privileges[]}", "KvcRoleCreateSpec", NULL),
    R("DELETE", "/api/kvc/roles/{role}", NULL, api_role_delete, S,
      "Authorization.ModifyRoles", false, 204, "Delete an unused custom role", NULL, NULL),
    R("GET", "/api/kvc/permissions", NULL, api_permissions_list, S, "System.Read", false, 200,
      "Permissions", NULL, "entity,principal"),
    R("POST", "/api/kvc/permissions", NULL, api_permission_set, S, NULL, false, 204,
      "Set a permission {entity, principal, role, propagate}", "KvcPermissionSpec", NULL),
    R("DELETE", "/api/kvc/permissions/{entity}/{principal}", NULL, api_permission_delete, S,
      NULL, false, 204, "Remove a permission", NULL, NULL),
    R("GET", "/api/kvc/audit", NULL, api_audit_list, S, "Global.Diagnostics", false, 200,
      "Audit log after `since`", NULL, "since,limit"),

    /* One host's details (api/hostinfo.c). */
    R("GET", "/api/kvc/host/{host}", NULL, api_kvc_host_get, S, "System.Read", false, 200,
      "kvcenter: a host's connection, power, maintenance mode, CPU, memory and version",
      NULL, NULL),

    /* A host's standard vSwitches and port groups (api/vswitch.c, docs/vswitch.md). */
    R("GET", "/api/kvc/host/{host}/vswitches", NULL, api_vswitch_list, S, "System.Read", false,
      200, "kvcenter: the host's standard vSwitches [{name, class, num_ports, used_ports,"
      " configured_ports, mtu, uplinks, portgroups}]", NULL, NULL),
    R("POST", "/api/kvc/host/{host}/vswitches", NULL, api_vswitch_create, S,
      "Host.Config.Network", false, 201, "kvcenter: add a standard vSwitch {name, ports"
      " (8-4096, default 128), mtu (68-9000, default 1500)}", NULL, NULL),
    R("DELETE", "/api/kvc/host/{host}/vswitches/{vswitch}", NULL, api_vswitch_delete, S,
      NULL, false, 204, "kvcenter: remove a standard vSwitch without port"
      " groups; needs Host.Config.Network on the host", NULL, NULL),
    R("GET", "/api/kvc/host/{host}/portgroups", NULL, api_portgroup_list, S, "System.Read",
      false, 200, "kvcenter: the host's port groups [{name, vswitch, active_clients, vlan}]",
      NULL, NULL),
    R("POST", "/api/kvc/host/{host}/portgroups", NULL, api_portgroup_create, S,
      "Host.Config.Network", false, 201, "kvcenter: add a port group {name, vswitch, vlan"
      " (0-4095)}", NULL, NULL),
    R("PATCH", "/api/kvc/host/{host}/portgroups/{portgroup}", NULL, api_portgroup_patch, S,
      NULL, false, 204, "kvcenter: set a port group's VLAN {vlan: 0-4095};"
      " needs Host.Config.Network on the host",
      NULL, NULL),
    R("DELETE", "/api/kvc/host/{host}/portgroups/{portgroup}", NULL, api_portgroup_delete, S,
      NULL, false, 204, "kvcenter: remove a port group no powered-on VM"
      " uses; needs Host.Config.Network on the host", NULL, NULL),

    /* esxcli's vm process list|kill (api/vmprocess.c). */
    R("GET", "/api/kvc/vm-processes", NULL, api_vm_process_list, S, NULL, false, 200,
      "kvcenter: the running VMs as `esxcli vm process list` shows them [{world_id,"
      " process_id, vmx_cartel_id, uuid, display_name, config_file, host, vm}]", NULL, "host"),
    R("POST", "/api/kvc/vm-processes/{world}", "kill", api_vm_process_kill, S, NULL, false,
      204, "kvcenter: stop a running VM by world id {type: soft (guest shutdown) | hard |"
      " force (power off)}; needs VirtualMachine.Interact.PowerOff on the VM", NULL, NULL),

    /* The appliance (api/appliance.c). */
    R("GET", "/api/appliance/system/version", NULL, api_appliance_version, S, NULL, false,
      200, "Product name, version and build", NULL, NULL),

    /* Documents. */
    R("GET", "/api/openapi.json", NULL, api_openapi, API_AUTH_NONE, NULL, false, 200,
      "This document", NULL, NULL),
    R("GET", "/metrics", NULL, api_metrics, API_AUTH_NONE, NULL, false, 200,
      "Prometheus metrics (text format)", NULL, NULL),

    /* The dashboard's static files (api/ui.c). */
    R("GET", "/", NULL, api_ui_file, API_AUTH_NONE, NULL, false, 302,
      "Redirect to the dashboard", NULL, NULL),
    R("GET", "/ui", NULL, api_ui_file, API_AUTH_NONE, NULL, false, 302,
      "Redirect to the dashboard", NULL, NULL),
    R("GET", "/ui/", NULL, api_ui_file, API_AUTH_NONE, NULL, false, 200,
      "The dashboard (text/html); its other files are served below /ui/ too",
      NULL, NULL),
};

const size_t api_n_routes = sizeof(api_routes) / sizeof(api_routes[0]);
