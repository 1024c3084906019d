/* vpxd's inventory as KVCENTER-MIB: the provider of the AgentX subagent
 * (vpxd/snmp/snmp_agent.h) on vpxd's database, and the notifications that
 * changes of state imply.  See docs/monitoring.md.  Loop thread only.
 * Errors: 0 or -errno. */
#ifndef VPXD_SNMP_PROVIDER_H
#define VPXD_SNMP_PROVIDER_H

struct vpxd;
struct vpxd_snmp;

/* Attaches to the snmpd master at AGENTX_SOCKET ("unix:/path", "/path" or
 * "tcp:host:port"); keeps retrying every PING_S seconds while it is away. */
int vpxd_snmp_start(struct vpxd *, const char *agentx_socket, int ping_s,
                    struct vpxd_snmp **out);
void vpxd_snmp_stop(struct vpxd_snmp *);

#endif
