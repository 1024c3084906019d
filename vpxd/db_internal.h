/* Shared by the db module's files only (db.c, db_inventory.c). */
#ifndef VPXD_DB_INTERNAL_H
#define VPXD_DB_INTERNAL_H

#include <stdarg.h>
#include <sqlite3.h>

#include "vpxd/db.h"

struct vdb {
    sqlite3 *h;
    int depth;                  /* transaction nesting */
    int interrupted;
    int64_t pending_events;     /* last event seq written in this transaction */
    vdb_event_cb event_cb;
    void *event_arg;
    struct vdb_stats stats;
};

/* Run a write statement; returns the number of rows changed or -errno. */
int vdb_exec(struct vdb *, const char *sql, const char *fmt, ...);
int vdb_vexec(struct vdb *, const char *sql, const char *fmt, va_list);
int vdb_commit(struct vdb *);
void vdb_rollback(struct vdb *);
int vdb_errno(struct vdb *, int sqlite_rc, const char *what);
/* Next id from the one global counter: "vm-12". */
int vdb_new_id(struct vdb *, const char *prefix, char out[VDB_ID_MAX]);
int64_t vdb_event_add_locked(struct vdb *, const char *type, const char *severity,
                             const char *object, const char *user, const char *msg);
bool vdb_entity_exists_user(struct vdb *, const char *name);

#endif
