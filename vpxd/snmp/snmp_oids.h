/* KVCENTER-MIB's object identifiers (packaging/mib/KVCENTER-MIB.txt).
 * 32473 is the IANA enterprise number reserved for documentation (RFC 5612)
 * until kvcenter registers its own; change it here and in the MIB. */
#ifndef KVC_SNMP_OIDS_H
#define KVC_SNMP_OIDS_H

#define KVC_OID_ROOT            1, 3, 6, 1, 4, 1, 32473
#define KVC_OID_NOTIFICATIONS   KVC_OID_ROOT, 0
#define KVC_OID_PROD_NAME       KVC_OID_ROOT, 1, 1
#define KVC_OID_PROD_VERSION    KVC_OID_ROOT, 1, 2
#define KVC_OID_PROD_BUILD      KVC_OID_ROOT, 1, 4
#define KVC_OID_VM_TABLE        KVC_OID_ROOT, 2, 1
#define KVC_OID_VMNET_TABLE     KVC_OID_ROOT, 2, 4
#define KVC_OID_HOST_TABLE      KVC_OID_ROOT, 3, 1
#define KVC_OID_CLUSTER_TABLE   KVC_OID_ROOT, 4, 1
#define KVC_OID_NOTIFY_OBJECTS  KVC_OID_ROOT, 5

/* columns of kvcNotifyObjects */
#define KVC_NOTIFY_ENTITY_NAME    1
#define KVC_NOTIFY_ENTITY_ID      2
#define KVC_NOTIFY_HOST_NAME      3
#define KVC_NOTIFY_ALARM_NAME     4
#define KVC_NOTIFY_ALARM_SEVERITY 5
#define KVC_NOTIFY_MESSAGE        6

#endif
