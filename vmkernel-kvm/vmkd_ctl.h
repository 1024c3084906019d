/* vmkd's control socket (kvc.vmkd methods, proto/vmkd.proto).
 * Returns 0 or -errno; vmkd_ctl_free accepts NULL. */
#ifndef KVC_VMKD_CTL_H
#define KVC_VMKD_CTL_H

#include <sys/types.h>

#include "vmkd.h"

struct event_base;
struct vmkd_ctl;

/* Listens on PATH (file mode MODE; chowned to HOSTD_UID if > 0).  Requests
 * are served for uid 0 and HOSTD_UID (-1: root only). */
int vmkd_ctl_new(struct event_base *, struct vmkd *, const char *path, mode_t mode,
                 long hostd_uid, struct vmkd_ctl **out);
void vmkd_ctl_free(struct vmkd_ctl *);

#endif
