/* Storage migration orchestration (docs/storage-migration.md): relocate
 * with placement.datastore other than the VM's datastore. */
#ifndef KVC_VPXD_SVMOTION_H
#define KVC_VPXD_SVMOTION_H

#include <stdbool.h>

struct api_req;

/* Called by POST /api/vcenter/vm/{vm}?action=relocate once the body is
 * parsed.  False: not a storage migration (no datastore, or the VM's own,
 * or no such VM): relocate goes on as before.  True: this handled R (an
 * error, or the move under way and answered when it ends):
 *   - HOST absent or the VM's host: the VM's folder moves to DS on its
 *     host (VM_STORAGE_MOVE, polled with VM_STORAGE_MOVE_STATUS);
 *   - another HOST: the files move first, on the source host, to DS, which
 *     both hosts must see; then the VM migrates live to HOST (migration.c).
 * CLUSTER: optional, HOST must be in it (checked by migration.c). */
bool vpxd_svmotion_relocate(struct api_req *r, const char *host, const char *cluster,
                            const char *ds);

/* POST /api/cis/tasks/{task}?action=cancel for a relocate's task: 0 if
 * TASK is a storage move still copying (the host is told to stop; the task
 * ends FAILED, CANCELED, the VM where it was), -ENOENT if it is not one
 * (or the files moved and the live migration runs: migration.c's cancel
 * applies), -EBUSY if the files are moving into place. */
struct vpxd;
int vpxd_svmotion_cancel(struct vpxd *, const char *task);
/* vpxd stops: answer the moves that wait on a timer (before migration.c
 * and the hosts stop, which end the others). */
void vpxd_svmotion_stop(struct vpxd *);

#endif
