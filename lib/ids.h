/* Object ids in the vSphere Automation API style: "vm-12", "host-3",
 * "domain-c7" (cluster), "datacenter-2", "datastore-29", "network-12",
 * "group-v3" (VM folder), "resgroup-9", "task-41".
 *
 * An id is a kind (its prefix) and a positive number (the SQLite rowid of
 * the object), written in exactly one way: no sign, no leading zeros, no
 * spaces, at most INT64_MAX.  Anything else is rejected, so an id string can
 * be compared with strcmp and used as a key.
 *
 * Errors: 0 or -errno (-EINVAL for a malformed id or the wrong kind, -ERANGE
 * for a number that does not fit, -ENOSPC for a short buffer).
 */
#ifndef KVC_IDS_H
#define KVC_IDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum kvc_id_kind {
    KVC_ID_VM = 1,
    KVC_ID_HOST,
    KVC_ID_CLUSTER,             /* domain-c */
    KVC_ID_DATACENTER,
    KVC_ID_DATASTORE,
    KVC_ID_NETWORK,             /* standard port group */
    KVC_ID_DVPORTGROUP,         /* distributed port group */
    KVC_ID_FOLDER_VM,           /* group-v */
    KVC_ID_FOLDER_HOST,         /* group-h */
    KVC_ID_FOLDER_DATASTORE,    /* group-s */
    KVC_ID_FOLDER_NETWORK,      /* group-n */
    KVC_ID_FOLDER_DATACENTER,   /* group-d */
    KVC_ID_RESPOOL,             /* resgroup- */
    KVC_ID_TASK,
    KVC_ID_EVENT,
    KVC_ID_ALARM,
    KVC_ID_SNAPSHOT,
    KVC_ID_KIND_MAX,
};

/* Longest id ("dvportgroup-9223372036854775807") plus the NUL. */
#define KVC_ID_MAX_LEN 32

struct kvc_id {
    enum kvc_id_kind kind;
    uint64_t num;               /* 1 .. INT64_MAX */
};

/* Parses any kind of id. */
int kvc_id_parse(const char *s, struct kvc_id *out);
/* Parses an id that must be of KIND (e.g. the {vm} of /api/vcenter/vm/{vm}). */
int kvc_id_parse_kind(const char *s, enum kvc_id_kind kind, uint64_t *num);
bool kvc_id_valid(const char *s, enum kvc_id_kind kind);
/* Writes "vm-12" into BUF; returns the length, or -EINVAL / -ENOSPC. */
int kvc_id_format(enum kvc_id_kind kind, uint64_t num, char *buf, size_t len);

/* "vm-", "domain-c", ...; NULL for an unknown kind. */
const char *kvc_id_prefix(enum kvc_id_kind kind);
/* The vSphere managed-object type: "VirtualMachine", "HostSystem",
 * "ClusterComputeResource", "Folder", ...; NULL for an unknown kind. */
const char *kvc_id_type_name(enum kvc_id_kind kind);
/* The kind whose prefix or type name is S ("vm-", "VirtualMachine"); 0 if none. */
enum kvc_id_kind kvc_id_kind_from_type_name(const char *s);

#endif
