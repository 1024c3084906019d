/* Automation-API-style object ids: see ids.h. */
#include "ids.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const struct {
    enum kvc_id_kind kind;
    const char *prefix;
    const char *type;
} kinds[] = {
    { KVC_ID_VM, "vm-", "VirtualMachine" },
    { KVC_ID_HOST, "host-", "HostSystem" },
    { KVC_ID_CLUSTER, "domain-c", "ClusterComputeResource" },
    { KVC_ID_DATACENTER, "datacenter-", "Datacenter" },
    { KVC_ID_DATASTORE, "datastore-", "Datastore" },
    { KVC_ID_NETWORK, "network-", "Network" },
    { KVC_ID_DVPORTGROUP, "dvportgroup-", "DistributedVirtualPortgroup" },
    { KVC_ID_FOLDER_VM, "group-v", "Folder" },
    { KVC_ID_FOLDER_HOST, "group-h", "Folder" },
    { KVC_ID_FOLDER_DATASTORE, "group-s", "Folder" },
    { KVC_ID_FOLDER_NETWORK, "group-n", "Folder" },
    { KVC_ID_FOLDER_DATACENTER, "group-d", "Folder" },
    { KVC_ID_RESPOOL, "resgroup-", "ResourcePool" },
    { KVC_ID_TASK, "task-", "Task" },
    { KVC_ID_EVENT, "event-", "Event" },
    { KVC_ID_ALARM, "alarm-", "Alarm" },
    { KVC_ID_SNAPSHOT, "snapshot-", "VirtualMachineSnapshot" },
};
#define NKINDS (sizeof kinds / sizeof kinds[0])

const char *
kvc_id_prefix(enum kvc_id_kind kind)
{
    for (size_t i = 0; i < NKINDS; i++)
        if (kinds[i].kind == kind)
            return kinds[i].prefix;
    return NULL;
}

const char *
kvc_id_type_name(enum kvc_id_kind kind)
{
    for (size_t i = 0; i < NKINDS; i++)
        if (kinds[i].kind == kind)
            return kinds[i].type;
    return NULL;
}

enum kvc_id_kind
kvc_id_kind_from_type_name(const char *s)
{
    for (size_t i = 0; i < NKINDS; i++) {
        /* "Folder" is ambiguous: only the prefix names one kind of folder. */
        if (!strcmp(kinds[i].prefix, s) ||
            (!strcmp(kinds[i].type, s) && strcmp(s, "Folder")))
            return kinds[i].kind;
    }
    return 0;
}

/* Digits only, no leading zero, 1..INT64_MAX. */
static int
parse_num(const char *p, uint64_t *out)
{
    uint64_t v = 0;
    if (*p < '1' || *p > '9')
        return -EINVAL;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        uint64_t d = (uint64_t)(*p - '0');
        if (v > ((uint64_t)INT64_MAX - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int
kvc_id_parse(const char *s, struct kvc_id *out)
{
    if (!s)
        return -EINVAL;
    for (size_t i = 0; i < NKINDS; i++) {
        size_t n = strlen(kinds[i].prefix);
        if (strncmp(s, kinds[i].prefix, n))
            continue;
        uint64_t num;
        int rc = parse_num(s + n, &num);
        if (rc)
            return rc;
        out->kind = kinds[i].kind;
        out->num = num;
        return 0;
    }
    return -EINVAL;
}

int
kvc_id_parse_kind(const char *s, enum kvc_id_kind kind, uint64_t *num)
{
    struct kvc_id id;
    int rc = kvc_id_parse(s, &id);
    if (rc)
        return rc;
    if (id.kind != kind)
        return -EINVAL;
    *num = id.num;
    return 0;
}

bool
kvc_id_valid(const char *s, enum kvc_id_kind kind)
{
    uint64_t num;
    return kvc_id_parse_kind(s, kind, &num) == 0;
}

int
kvc_id_format(enum kvc_id_kind kind, uint64_t num, char *buf, size_t len)
{
    const char *prefix = kvc_id_prefix(kind);
    if (!prefix || num == 0 || num > (uint64_t)INT64_MAX)
        return -EINVAL;
    int n = snprintf(buf, len, "%s%llu", prefix, (unsigned long long)num);
    if (n < 0 || (size_t)n >= len)
        return -ENOSPC;
    return n;
}
