/* The hostmgr listener that records host reports in vpxd's database:
 *     hostmgr_new(base, &cfg, &hostmgr_db_ops, db, &hm);
 * (the argument is the struct vdb *).  Reconciliation rules: hostmgr_db.c
 * and docs/hosts.md.  vpxd may wrap it to add its own reactions (SSE, HA)
 * by calling these members from its own ops. */
#ifndef KVC_VPXD_HOSTMGR_DB_H
#define KVC_VPXD_HOSTMGR_DB_H

#include "vpxd/hostmgr.h"

extern const struct hostmgr_ops hostmgr_db_ops;

#endif
