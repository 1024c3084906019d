/* vpxd's SNMP AgentX subagent: serves KVCENTER-MIB
 * (packaging/mib/KVCENTER-MIB.txt) under a stock net-snmp snmpd.
 *
 * The data comes from a provider (a snapshot of product, hosts, clusters,
 * VMs and NICs); the subagent keeps the tables as sorted rows and updates
 * them in place (rows are added, changed and removed by index), so a walk
 * in progress sees a consistent order while VMs come and go.
 *
 * Threading: net-snmp's agent library is not thread-safe, so everything
 * runs in the caller's libevent loop: the AgentX socket and net-snmp's
 * timers (ping, reconnect) are mirrored as libevent events (see
 * snmp_agent.c).  Call every function from that loop's thread.
 *
 * snmpd may be absent when the subagent starts, or restart later: the
 * subagent keeps retrying every ping_interval seconds and re-registers its
 * tables when the master is back; vpxd keeps serving meanwhile.
 * Notifications raised while no master is attached are dropped (logged).
 *
 * net-snmp keeps global state: one agent per process.
 *
 * Errors: functions returning int return 0 or -errno.
 */
#ifndef KVC_SNMP_AGENT_H
#define KVC_SNMP_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;

/* Index of an inventory object: the number in its id ("vm-58" -> 58,
 * "domain-c7" -> 7).  Returns 0 if ID has no positive number at its end. */
uint32_t kvc_snmp_index_of(const char *id);

struct kvc_snmp_vm {
    uint32_t index;             /* kvc_snmp_index_of(id) */
    char id[32];                /* vm-58 */
    char name[128];
    char config_file[256];
    char guest_os[64];
    uint32_t memory_mb;
    char power_state[16];       /* poweredOn, poweredOff, suspended */
    char guest_state[16];       /* running, notRunning, unknown */
    uint32_t vcpus;
    char uuid[40];
    char host[128];             /* host name, empty when unplaced */
};

struct kvc_snmp_nic {
    uint32_t vm_index, nic_index;       /* nic_index from 1 */
    char label[32];             /* "Network adapter 1" */
    char portgroup[128];
    bool connected;
    uint8_t mac[6];
};

enum kvc_snmp_host_state {
    KVC_SNMP_HOST_CONNECTED = 1,
    KVC_SNMP_HOST_DISCONNECTED = 2,
    KVC_SNMP_HOST_NOT_RESPONDING = 3,
};

struct kvc_snmp_host {
    uint32_t index;
    char id[32];
    char name[128];
    int state;                  /* enum kvc_snmp_host_state */
    uint32_t cpu_capacity_mhz, cpu_usage_mhz;
    uint32_t mem_capacity_mb, mem_usage_mb;
    uint32_t vm_count;
    char cluster[128];
};

enum kvc_snmp_ha_status { KVC_SNMP_HA_DISABLED = 1, KVC_SNMP_HA_GREEN, KVC_SNMP_HA_YELLOW,
                          KVC_SNMP_HA_RED };
enum kvc_snmp_drs { KVC_SNMP_DRS_MANUAL = 1, KVC_SNMP_DRS_PARTIAL, KVC_SNMP_DRS_FULL };

struct kvc_snmp_cluster {
    uint32_t index;
    char id[32];
    char name[128];
    bool ha_enabled;
    int ha_status;              /* enum kvc_snmp_ha_status */
    bool drs_enabled;
    int drs_behavior;           /* enum kvc_snmp_drs */
    uint32_t host_count, vm_count;
};

/* A snapshot; arrays are malloc'ed by the provider and freed by the agent
 * (kvc_snmp_snapshot_clear).  Any order; duplicates by index are dropped. */
struct kvc_snmp_snapshot {
    struct kvc_snmp_vm *vms;
    size_t nvms;
    struct kvc_snmp_nic *nics;
    size_t nnics;
    struct kvc_snmp_host *hosts;
    size_t nhosts;
    struct kvc_snmp_cluster *clusters;
    size_t nclusters;
};
void kvc_snmp_snapshot_clear(struct kvc_snmp_snapshot *);

struct kvc_snmp_provider {
    void *ctx;
    /* Fill *out.  Returns 0 or -errno (the tables then keep their data). */
    int (*snapshot)(void *ctx, struct kvc_snmp_snapshot *out);
    /* Optional: a number that changes whenever the inventory does.  With
     * it the tables are rebuilt only after a change; without it, at most
     * every refresh_ms while requests come in. */
    uint64_t (*generation)(void *ctx);
};

struct kvc_snmp_config {
    const char *agentx_socket;  /* NULL: net-snmp's default */
    int ping_interval;          /* seconds between pings/reconnects; default 5 */
    unsigned int refresh_ms;    /* default 1000 */
    const char *prod_name, *prod_version, *prod_build;
};

struct kvc_snmp_agent;

int kvc_snmp_agent_start(struct event_base *, const struct kvc_snmp_config *,
                         const struct kvc_snmp_provider *, struct kvc_snmp_agent **out);
/* Detach from the master and free; accepts NULL. */
void kvc_snmp_agent_stop(struct kvc_snmp_agent *);
/* Whether an AgentX session with the master is open. */
bool kvc_snmp_agent_connected(const struct kvc_snmp_agent *);
/* Mark the tables stale (rebuilt before the next request is answered). */
void kvc_snmp_agent_invalidate(struct kvc_snmp_agent *);

enum kvc_snmp_trap {
    KVC_TRAP_VM_POWERED_ON = 1,
    KVC_TRAP_VM_POWERED_OFF = 2,
    KVC_TRAP_VM_HEARTBEAT_LOST = 3,
    KVC_TRAP_VM_HEARTBEAT_RESTORED = 4,
    KVC_TRAP_VM_SUSPENDED = 5,
    KVC_TRAP_HOST_NOT_RESPONDING = 6,
    KVC_TRAP_HOST_CONNECTED = 7,
    KVC_TRAP_HA_VM_RESTARTED = 8,
    KVC_TRAP_ALARM_RAISED = 9,
};

struct kvc_snmp_event {
    enum kvc_snmp_trap trap;
    const char *entity_name;    /* VM, host or cluster name */
    const char *entity_id;      /* vm-58, host-28, ... */
    const char *host_name;      /* VM traps, HA restart */
    const char *alarm_name;     /* alarm raised */
    int alarm_severity;         /* 1 gray, 2 green, 3 yellow, 4 red */
    const char *message;        /* HA restart, alarm raised */
};

/* Send one notification (an AgentX Notify to the master, which sends v2c
 * traps or v3 notifications to its configured sinks).  Returns -ENOTCONN
 * when no master is attached (the event is dropped), -EINVAL for a bad
 * trap number. */
int kvc_snmp_agent_notify(struct kvc_snmp_agent *, const struct kvc_snmp_event *);

/* Compare two snapshots and send the notifications their differences imply:
 * VM power on/off/suspend, guest heartbeat lost/restored, host not
 * responding/connected.  For callers that only have state, not events. */
void kvc_snmp_agent_notify_diff(struct kvc_snmp_agent *, const struct kvc_snmp_snapshot *old,
                                const struct kvc_snmp_snapshot *cur);

#endif
