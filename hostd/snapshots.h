/* VM snapshots over the host protocol (VM_SNAPSHOT_*; docs/hosts.md
 * "Snapshots").  The index is <dir>/<name>.vmsd, written atomically. */
#ifndef KVC_HOSTD_SNAPSHOTS_H
#define KVC_HOSTD_SNAPSHOTS_H

#include "rpc.h"

#define HOSTD_SNAPSHOTS_MAX 32
#define HOSTD_SNAPSHOT_NAME_MAX 80
#define HOSTD_SNAPSHOT_DESC_MAX 512

void hostd_snapshot_on_create(struct kvc_rpc_call *, const ProtobufCMessage *, void *);
void hostd_snapshot_on_list(struct kvc_rpc_call *, const ProtobufCMessage *, void *);
void hostd_snapshot_on_revert(struct kvc_rpc_call *, const ProtobufCMessage *, void *);
void hostd_snapshot_on_delete(struct kvc_rpc_call *, const ProtobufCMessage *, void *);

#endif
