/* vpxd's database: open, migrate, bind helpers, transactions, and the
 * writes that do not belong to one inventory type (tasks, events, alarms,
 * access control, audit).  Inventory writes are in db_inventory.c. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <sqlite3.h>

#include "lib/log.h"
#include "vpxd/db.h"
#include "vpxd/db_internal.h"
#include "vpxd/migrations.h"

KVC_LOG_MODULE(db);

void vdb_now(char *buf, size_t len)
{
    struct timeval tv;
    struct tm tm;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));
}

int vdb_errno(struct vdb *db, int rc, const char *what)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return 0;
    case SQLITE_CONSTRAINT:
        return -EEXIST;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        db->stats.busy++;
        kvc_warn("%s: database busy", what);
        return -EBUSY;
    case SQLITE_NOMEM:
        return -ENOMEM;
    default:
        kvc_err("%s: %s", what, sqlite3_errmsg(db->h));
        return -EIO;
    }
}

static int bind_args(struct vdb *db, sqlite3_stmt *st, const char *fmt,
                     va_list ap)
{
    int idx = 1, rc = SQLITE_OK;

    for (const char *f = fmt ? fmt : ""; *f; f++, idx++) {
        switch (*f) {
        case 's': {
            const char *s = va_arg(ap, const char *);
            rc = s ? sqlite3_bind_text(st, idx, s, -1, SQLITE_TRANSIENT)
                   : sqlite3_bind_null(st, idx);
            break;
        }
        case 'i':
            rc = sqlite3_bind_int64(st, idx, va_arg(ap, int));
            break;
        case 'I':
            rc = sqlite3_bind_int64(st, idx, va_arg(ap, int64_t));
            break;
        case 'd':
            rc = sqlite3_bind_double(st, idx, va_arg(ap, double));
            break;
        default:
            kvc_fatal("bad bind format '%c' in \"%s\"", *f, fmt);
        }
        if (rc != SQLITE_OK)
            return vdb_errno(db, rc, "bind");
    }
    return 0;
}

static int prepare(struct vdb *db, sqlite3_stmt **st, const char *sql,
                   const char *fmt, va_list ap, bool readonly)
{
    int rc = sqlite3_prepare_v2(db->h, sql, -1, st, NULL);

    if (rc != SQLITE_OK) {
        kvc_err("prepare \"%s\": %s", sql, sqlite3_errmsg(db->h));
        return -EIO;
    }
    if (readonly && !sqlite3_stmt_readonly(*st))
        kvc_fatal("write statement outside db module: %s", sql);
    rc = bind_args(db, *st, fmt, ap);
    if (rc < 0) {
        sqlite3_finalize(*st);
        *st = NULL;
    }
    return rc;
}

int vdb_vexec(struct vdb *db, const char *sql, const char *fmt, va_list ap)
{
    sqlite3_stmt *st;
    int rc = prepare(db, &st, sql, fmt, ap, false);

    if (rc < 0)
        return rc;
    do
        rc = sqlite3_step(st);
    while (rc == SQLITE_ROW);
    if (rc == SQLITE_DONE)
        rc = sqlite3_changes(db->h);
    else
        rc = vdb_errno(db, rc, sql);
    sqlite3_finalize(st);
    return rc;
}

int vdb_exec(struct vdb *db, const char *sql, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = vdb_vexec(db, sql, fmt, ap);
    va_end(ap);
    return rc;
}

static json_t *column_json(sqlite3_stmt *st, int i)
{
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER:
        return json_integer(sqlite3_column_int64(st, i));
    case SQLITE_FLOAT:
        return json_real(sqlite3_column_double(st, i));
    case SQLITE_NULL:
        return json_null();
    default: {
        const char *name = sqlite3_column_name(st, i);
        const char *txt = (const char *)sqlite3_column_text(st, i);
        size_t n = strlen(name);

        if (n > 5 && !strcmp(name + n - 5, "_json")) {
            json_t *j = json_loads(txt ? txt : "null", JSON_DECODE_ANY, NULL);
            return j ? j : json_null();
        }
        return json_string(txt ? txt : "");
    }
    }
}

static json_t *row_json(sqlite3_stmt *st)
{
    json_t *o = json_object();
    int n = sqlite3_column_count(st);

    for (int i = 0; i < n; i++) {
        const char *name = sqlite3_column_name(st, i);
        size_t len = strlen(name);
        char key[128];

        snprintf(key, sizeof(key), "%s", name);
        if (len > 5 && len < sizeof(key) && !strcmp(name + len - 5, "_json"))
            key[len - 5] = '\0';
        json_object_set_new(o, key, column_json(st, i));
    }
    return o;
}

static int vquery(struct vdb *db, json_t **out, bool one, const char *sql,
                  const char *fmt, va_list ap)
{
    sqlite3_stmt *st;
    json_t *arr = NULL;
    int rc = prepare(db, &st, sql, fmt, ap, true);

    *out = NULL;
    if (rc < 0)
        return rc;
    if (!one)
        arr = json_array();
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (one) {
            *out = row_json(st);
            break;
        }
        json_array_append_new(arr, row_json(st));
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        rc = vdb_errno(db, rc, sql);
        json_decref(arr);
        json_decref(*out);
        *out = NULL;
    } else if (one) {
        rc = *out ? 0 : -ENOENT;
    } else {
        *out = arr;
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc;
}

int vdb_query_json(struct vdb *db, json_t **out, const char *sql,
                   const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = vquery(db, out, false, sql, fmt, ap);
    va_end(ap);
    return rc;
}

int vdb_query_row(struct vdb *db, json_t **out, const char *sql,
                  const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = vquery(db, out, true, sql, fmt, ap);
    va_end(ap);
    return rc;
}

static int vscalar(struct vdb *db, int64_t *iout, char *buf, size_t len,
                   const char *sql, const char *fmt, va_list ap)
{
    sqlite3_stmt *st;
    int rc = prepare(db, &st, sql, fmt, ap, true);

    if (rc < 0)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (iout)
            *iout = sqlite3_column_int64(st, 0);
        if (buf) {
            const char *t = (const char *)sqlite3_column_text(st, 0);
            snprintf(buf, len, "%s", t ? t : "");
        }
        rc = 0;
    } else if (rc == SQLITE_DONE) {
        rc = -ENOENT;
    } else {
        rc = vdb_errno(db, rc, sql);
    }
    sqlite3_finalize(st);
    return rc;
}

int vdb_query_int(struct vdb *db, int64_t *out, const char *sql,
                  const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = vscalar(db, out, NULL, 0, sql, fmt, ap);
    va_end(ap);
    return rc;
}

int vdb_query_str(struct vdb *db, char *buf, size_t len, const char *sql,
                  const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = vscalar(db, NULL, buf, len, sql, fmt, ap);
    va_end(ap);
    return rc;
}

/* Transactions nest: the outermost is BEGIN IMMEDIATE (it takes the write
 * lock up front, so it never fails half-way on a lock upgrade), inner ones
 * are savepoints, so a failed inner change rolls back alone while the outer
 * one (e.g. a REST request with its audit record) still commits. */
int vdb_begin(struct vdb *db)
{
    char sql[48];
    int rc;

    if (db->depth == 0)
        snprintf(sql, sizeof(sql), "BEGIN IMMEDIATE");
    else
        snprintf(sql, sizeof(sql), "SAVEPOINT sp%d", db->depth);
    rc = sqlite3_exec(db->h, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return vdb_errno(db, rc, sql);
    db->depth++;
    return 0;
}

int vdb_commit(struct vdb *db)
{
    char sql[48];
    int rc;

    if (db->depth <= 0)
        kvc_fatal("commit without begin");
    if (db->depth == 1)
        snprintf(sql, sizeof(sql), "COMMIT");
    else
        snprintf(sql, sizeof(sql), "RELEASE sp%d", db->depth - 1);
    rc = sqlite3_exec(db->h, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        rc = vdb_errno(db, rc, sql);
        vdb_rollback(db);
        return rc ? rc : -EIO;
    }
    db->depth--;
    if (db->depth > 0)
        return 0;
    db->stats.commits++;
    if (db->pending_events) {
        int64_t seq = db->pending_events;

        db->pending_events = 0;
        if (db->event_cb)
            db->event_cb(db->event_arg, seq);
    }
    return 0;
}

void vdb_rollback(struct vdb *db)
{
    char sql[80];

    if (db->depth <= 0)
        kvc_fatal("rollback without begin");
    if (db->depth == 1) {
        if (!sqlite3_get_autocommit(db->h))
            sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
        db->stats.rollbacks++;
        db->pending_events = 0;
    } else {
        snprintf(sql, sizeof(sql), "ROLLBACK TO sp%d; RELEASE sp%d",
                 db->depth - 1, db->depth - 1);
        sqlite3_exec(db->h, sql, NULL, NULL, NULL);
    }
    db->depth--;
}

int vdb_finish(struct vdb *db, int rc)
{
    if (rc < 0) {
        vdb_rollback(db);
        return rc;
    }
    int c = vdb_commit(db);
    return c < 0 ? c : rc;
}

int vdb_new_id(struct vdb *db, const char *prefix, char out[VDB_ID_MAX])
{
    int64_t n;
    int rc = vdb_exec(db, "UPDATE id_seq SET next = next + 1", NULL);

    if (rc < 0)
        return rc;
    rc = vdb_query_int(db, &n, "SELECT next - 1 FROM id_seq", NULL);
    if (rc < 0)
        return rc;
    /* "vm" -> "vm-12"; "domain-c" -> "domain-c7", as vCenter spells them. */
    snprintf(out, VDB_ID_MAX, strchr(prefix, '-') ? "%s%lld" : "%s-%lld", prefix,
             (long long)n);
    return 0;
}

/* ---- migrations ---- */

static int migrate(struct vdb *db)
{
    int rc;
    int64_t have = 0;

    rc = vdb_exec(db, "CREATE TABLE IF NOT EXISTS schema_version ("
                  " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                  " applied TEXT NOT NULL)", NULL);
    if (rc < 0)
        return rc;
    for (int i = 0; vpxd_migrations[i].name; i++) {
        char now[32];

        rc = vdb_query_int(db, &have,
                           "SELECT count(*) FROM schema_version WHERE version = ?",
                           "i", i + 1);
        if (rc < 0)
            return rc;
        if (have)
            continue;
        if ((rc = vdb_begin(db)) < 0)
            return rc;
        char *err = NULL;
        int src = sqlite3_exec(db->h, vpxd_migrations[i].sql, NULL, NULL, &err);
        if (src != SQLITE_OK) {
            kvc_err("migration %s failed: %s", vpxd_migrations[i].name,
                    err ? err : sqlite3_errstr(src));
            sqlite3_free(err);
            vdb_rollback(db);
            return -EIO;
        }
        vdb_now(now, sizeof(now));
        rc = vdb_exec(db, "INSERT INTO schema_version (version, name, applied)"
                      " VALUES (?, ?, ?)", "iss", i + 1,
                      vpxd_migrations[i].name, now);
        if ((rc = vdb_finish(db, rc)) < 0)
            return rc;
        kvc_info("applied migration %s", vpxd_migrations[i].name);
    }
    return 0;
}

int vdb_schema_version(struct vdb *db)
{
    int64_t v = 0;

    if (vdb_query_int(db, &v, "SELECT coalesce(max(version), 0) FROM schema_version",
                      NULL) < 0)
        return -EIO;
    return (int)v;
}

/* Tasks a previous run left in flight can never finish now: fail them with
 * an error body a client can read, in one transaction. */
static int fail_interrupted_tasks(struct vdb *db)
{
    char now[32];
    json_t *err;
    char *errs;
    int rc;

    vdb_now(now, sizeof(now));
    err = json_pack("{s:s, s:[{s:[], s:s, s:s}]}", "error_type", "ERROR",
                    "messages", "args",
                    "default_message", "The task was interrupted because vpxd restarted.",
                    "id", "com.vmware.kvc.task.interrupted");
    errs = json_dumps(err, JSON_COMPACT);
    json_decref(err);
    if ((rc = vdb_begin(db)) < 0) {
        free(errs);
        return rc;
    }
    rc = vdb_exec(db, "INSERT INTO task_history (task, time, status, completed, message)"
                  " SELECT id, ?, 'FAILED', completed, 'interrupted by vpxd restart'"
                  " FROM task WHERE status IN ('PENDING', 'RUNNING', 'BLOCKED')",
                  "s", now);
    if (rc >= 0)
        rc = vdb_exec(db, "UPDATE task SET status = 'FAILED', error = ?, end_time = ?,"
                      " message = 'interrupted by vpxd restart'"
                      " WHERE status IN ('PENDING', 'RUNNING', 'BLOCKED')",
                      "ss", errs, now);
    free(errs);
    rc = vdb_finish(db, rc);
    if (rc > 0)
        kvc_warn("marked %d interrupted task(s) failed", rc);
    return rc;
}

int vdb_open(const char *path, struct vdb **out)
{
    struct vdb *db = calloc(1, sizeof(*db));
    int rc;

    *out = NULL;
    if (!db)
        return -ENOMEM;
    rc = sqlite3_open_v2(path, &db->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                         NULL);
    if (rc != SQLITE_OK) {
        kvc_err("open %s: %s", path, db->h ? sqlite3_errmsg(db->h) : sqlite3_errstr(rc));
        rc = -EIO;
        goto err;
    }
    sqlite3_busy_timeout(db->h, 5000);
    sqlite3_extended_result_codes(db->h, 1);
    {
        char *journal = NULL;
        sqlite3_stmt *st;

        if (sqlite3_prepare_v2(db->h, "PRAGMA journal_mode=WAL", -1, &st, NULL) == SQLITE_OK) {
            if (sqlite3_step(st) == SQLITE_ROW)
                journal = strdup((const char *)sqlite3_column_text(st, 0));
            sqlite3_finalize(st);
        }
        if (!journal || strcmp(journal, "wal")) {
            kvc_err("%s: cannot switch to WAL mode (%s)", path, journal ? journal : "?");
            free(journal);
            rc = -EIO;
            goto err;
        }
        free(journal);
    }
    if (sqlite3_exec(db->h, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
                     NULL, NULL, NULL) != SQLITE_OK) {
        rc = vdb_errno(db, sqlite3_errcode(db->h), "pragmas");
        goto err;
    }
    if ((rc = migrate(db)) < 0)
        goto err;
    rc = fail_interrupted_tasks(db);
    if (rc < 0)
        goto err;
    db->interrupted = rc;
    *out = db;
    return 0;
err:
    vdb_close(db);
    return rc;
}

void vdb_close(struct vdb *db)
{
    if (!db)
        return;
    if (db->h)
        sqlite3_close_v2(db->h);
    free(db);
}

int vdb_interrupted_tasks(const struct vdb *db)
{
    return db->interrupted;
}

void vdb_get_stats(const struct vdb *db, struct vdb_stats *s)
{
    *s = db->stats;
}

/* ---- tasks ---- */

static int task_history(struct vdb *db, const char *id, const char *now)
{
    return vdb_exec(db, "INSERT INTO task_history (task, time, status, completed, message)"
                    " SELECT id, ?, status, completed, message FROM task WHERE id = ?",
                    "ss", now, id);
}

int vdb_task_create(struct vdb *db, const char *service, const char *operation,
                    const char *target_type, const char *target_id,
                    const char *user, char out_id[VDB_ID_MAX])
{
    char now[32];
    int rc;

    vdb_now(now, sizeof(now));
    if ((rc = vdb_begin(db)) < 0)
        return rc;
    rc = vdb_new_id(db, "task", out_id);
    if (rc >= 0)
        rc = vdb_exec(db, "INSERT INTO task (id, service, operation, target_type,"
                      " target_id, user_name, status, created, start_time, message)"
                      " VALUES (?, ?, ?, ?, ?, ?, 'PENDING', ?, ?, 'queued')",
                      "ssssssss", out_id, service, operation, target_type,
                      target_id, user, now, now);
    if (rc >= 0)
        rc = task_history(db, out_id, now);
    return vdb_finish(db, rc < 0 ? rc : 0);
}

int vdb_task_progress(struct vdb *db, const char *id, const char *status,
                      int completed, const char *message)
{
    char now[32];
    int rc;

    if (completed < 0 || completed > 100)
        return -EINVAL;
    vdb_now(now, sizeof(now));
    if ((rc = vdb_begin(db)) < 0)
        return rc;
    rc = vdb_exec(db, "UPDATE task SET status = ?, completed = ?, message = ?"
                  " WHERE id = ? AND status NOT IN ('SUCCEEDED', 'FAILED')",
                  "siss", status, completed, message ? message : "", id);
    if (rc == 0)
        rc = -ENOENT;
    if (rc >= 0)
        rc = task_history(db, id, now);
    return vdb_finish(db, rc < 0 ? rc : 0);
}

int vdb_task_finish(struct vdb *db, const char *id, const json_t *result,
                    const json_t *error)
{
    char now[32];
    char *res = result ? json_dumps(result, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    char *err = error ? json_dumps(error, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    int rc;

    vdb_now(now, sizeof(now));
    if ((rc = vdb_begin(db)) < 0)
        goto out;
    rc = vdb_exec(db, "UPDATE task SET status = ?, completed = CASE WHEN ? THEN completed"
                  " ELSE total END, message = ?, result = ?, error = ?, end_time = ?"
                  " WHERE id = ? AND status NOT IN ('SUCCEEDED', 'FAILED')",
                  "sisssss", error ? "FAILED" : "SUCCEEDED", error ? 1 : 0,
                  error ? "failed" : "completed", res, err, now, id);
    if (rc == 0)
        rc = -ENOENT;
    if (rc >= 0)
        rc = task_history(db, id, now);
    rc = vdb_finish(db, rc < 0 ? rc : 0);
out:
    free(res);
    free(err);
    return rc;
}

/* ---- events and alarms ---- */

void vdb_set_event_listener(struct vdb *db, vdb_event_cb cb, void *arg)
{
    db->event_cb = cb;
    db->event_arg = arg;
}

static int alarm_set_locked(struct vdb *db, const char *alarm, const char *object,
                            const char *status, const char *message)
{
    char now[32];

    vdb_now(now, sizeof(now));
    return vdb_exec(db, "INSERT INTO alarm_state (alarm, object, status, time, message)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (alarm, object) DO UPDATE SET"
                    " status = excluded.status, time = excluded.time,"
                    " message = excluded.message, acknowledged = 0",
                    "sssss", alarm, object, status, now, message ? message : "");
}

/* Appends the event inside the caller's transaction (if any). */
int64_t vdb_event_add_locked(struct vdb *db, const char *type, const char *severity,
                             const char *object, const char *user, const char *msg)
{
    char now[32];
    int64_t seq;
    json_t *alarms = NULL;
    int rc;

    vdb_now(now, sizeof(now));
    rc = vdb_exec(db, "INSERT INTO event (time, type, severity, object, user_name, message)"
                  " VALUES (?, ?, ?, ?, ?, ?)", "ssssss", now, type,
                  severity ? severity : "info", object, user, msg);
    if (rc < 0)
        return rc;
    seq = sqlite3_last_insert_rowid(db->h);
    if (object) {
        rc = vdb_query_json(db, &alarms, "SELECT id, severity FROM alarm"
                            " WHERE enabled AND event_type = ?", "s", type);
        if (rc < 0)
            return rc;
        size_t i;
        json_t *a;
        json_array_foreach(alarms, i, a) {
            const char *sev = json_string_value(json_object_get(a, "severity"));
            rc = alarm_set_locked(db, json_string_value(json_object_get(a, "id")),
                                  object, !strcmp(sev, "error") ? "red" : "yellow", msg);
            if (rc < 0)
                break;
        }
        json_decref(alarms);
        if (rc < 0)
            return rc;
    }
    db->pending_events = seq;
    return seq;
}

int64_t vdb_event_add(struct vdb *db, const char *type, const char *severity,
                      const char *object, const char *user, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    int64_t seq;
    int rc;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if ((rc = vdb_begin(db)) < 0)
        return rc;
    seq = vdb_event_add_locked(db, type, severity, object, user, msg);
    rc = vdb_finish(db, seq < 0 ? (int)seq : 0);
    return rc < 0 ? rc : seq;
}

int vdb_alarm_set(struct vdb *db, const char *alarm, const char *object,
                  const char *status, const char *message)
{
    int rc;

    if (strcmp(status, "green") && strcmp(status, "yellow") && strcmp(status, "red"))
        return -EINVAL;
    if ((rc = vdb_begin(db)) < 0)
        return rc;
    if (!strcmp(status, "green"))
        rc = vdb_exec(db, "DELETE FROM alarm_state WHERE alarm = ? AND object = ?",
                      "ss", alarm, object);
    else
        rc = alarm_set_locked(db, alarm, object, status, message);
    return vdb_finish(db, rc < 0 ? rc : 0);
}

int vdb_alarm_ack(struct vdb *db, const char *alarm, const char *object)
{
    int rc = vdb_exec(db, "UPDATE alarm_state SET acknowledged = 1"
                      " WHERE alarm = ? AND object = ?", "ss", alarm, object);
    return rc < 0 ? rc : rc == 0 ? -ENOENT : 0;
}

/* ---- access control ---- */

int vdb_user_create(struct vdb *db, const char *name, const char *hash,
                    bool builtin)
{
    char now[32];
    int rc;

    vdb_now(now, sizeof(now));
    rc = vdb_exec(db, "INSERT INTO users (name, hash, builtin, created) VALUES (?, ?, ?, ?)",
                  "ssis", name, hash, builtin ? 1 : 0, now);
    return rc < 0 ? rc : 0;
}

int vdb_user_set_hash(struct vdb *db, const char *name, const char *hash)
{
    int rc = vdb_exec(db, "UPDATE users SET hash = ? WHERE name = ?", "ss", hash, name);
    return rc < 0 ? rc : rc == 0 ? -ENOENT : 0;
}

int vdb_user_delete(struct vdb *db, const char *name)
{
    int rc;

    if ((rc = vdb_begin(db)) < 0)
        return rc;
    rc = vdb_exec(db, "DELETE FROM users WHERE name = ? AND NOT builtin", "s", name);
    if (rc == 0)
        rc = vdb_entity_exists_user(db, name) ? -EPERM : -ENOENT;
    return vdb_finish(db, rc < 0 ? rc : 0);
}

bool vdb_entity_exists_user(struct vdb *db, const char *name)
{
    int64_t n = 0;
    return vdb_query_int(db, &n, "SELECT count(*) FROM users WHERE name = ?", "s",
                         name) == 0 && n > 0;
}

int vdb_role_create(struct vdb *db, const char *name, const char *const *privs,
                    int64_t *out_id)
{
    int rc;

    if ((rc = vdb_begin(db)) < 0)
        return rc;
    rc = vdb_exec(db, "INSERT INTO role (id, name) VALUES"
                  " ((SELECT max(100, coalesce(max(id), 0)) + 1 FROM role), ?)", "s", name);
    if (rc >= 0) {
        *out_id = sqlite3_last_insert_rowid(db->h);
        for (size_t i = 0; privs && privs[i] && rc >= 0; i++)
            rc = vdb_exec(db, "INSERT OR IGNORE INTO role_privilege (role, privilege)"
                          " VALUES (?, ?)", "Is", *out_id, privs[i]);
    }
    return vdb_finish(db, rc < 0 ? rc : 0);
}

int vdb_role_delete(struct vdb *db, int64_t id)
{
    int64_t n = 0;
    int rc;

    if ((rc = vdb_begin(db)) < 0)
        return rc;
    rc = vdb_query_int(db, &n, "SELECT count(*) FROM role WHERE id = ? AND builtin", "I", id);
    if (rc >= 0 && n > 0)
        rc = -EPERM;
    if (rc >= 0)
        rc = vdb_query_int(db, &n, "SELECT count(*) FROM permission WHERE role = ?", "I", id);
    if (rc >= 0 && n > 0)
        rc = -ENOTEMPTY;
    if (rc >= 0)
        rc = vdb_exec(db, "DELETE FROM role WHERE id = ? AND NOT builtin", "I", id);
    if (rc == 0) {
        rc = vdb_query_int(db, &n, "SELECT count(*) FROM role WHERE id = ?", "I", id);
        rc = rc < 0 ? rc : n ? -EPERM : -ENOENT;
    }
    return vdb_finish(db, rc < 0 ? rc : 0);
}

int vdb_permission_set(struct vdb *db, const char *entity, const char *principal,
                       int64_t role, bool propagate)
{
    int rc = vdb_exec(db, "INSERT INTO permission (entity, principal, role, propagate)"
                      " VALUES (?, ?, ?, ?) ON CONFLICT (entity, principal) DO UPDATE"
                      " SET role = excluded.role, propagate = excluded.propagate",
                      "ssIi", entity, principal, role, propagate ? 1 : 0);
    return rc < 0 ? rc : 0;
}

int vdb_permission_delete(struct vdb *db, const char *entity, const char *principal)
{
    int rc = vdb_exec(db, "DELETE FROM permission WHERE entity = ? AND principal = ?",
                      "ss", entity, principal);
    return rc < 0 ? rc : rc == 0 ? -ENOENT : 0;
}

int vdb_session_create(struct vdb *db, const char *token_hash, const char *user)
{
    char now[32];
    int rc;

    vdb_now(now, sizeof(now));
    rc = vdb_exec(db, "INSERT INTO session (token_hash, user_name, created,"
                  " last_accessed, last_epoch) VALUES (?, ?, ?, ?, ?)", "ssssI",
                  token_hash, user, now, now, (int64_t)time(NULL));
    return rc < 0 ? rc : 0;
}

int vdb_session_touch(struct vdb *db, const char *token_hash)
{
    char now[32];
    int rc;

    vdb_now(now, sizeof(now));
    rc = vdb_exec(db, "UPDATE session SET last_accessed = ?, last_epoch = ?"
                  " WHERE token_hash = ?", "sIs", now, (int64_t)time(NULL), token_hash);
    return rc < 0 ? rc : rc == 0 ? -ENOENT : 0;
}

int vdb_session_delete(struct vdb *db, const char *token_hash)
{
    int rc = vdb_exec(db, "DELETE FROM session WHERE token_hash = ?", "s", token_hash);
    return rc < 0 ? rc : rc == 0 ? -ENOENT : 0;
}

int vdb_session_expire(struct vdb *db, int64_t idle_s)
{
    return vdb_exec(db, "DELETE FROM session WHERE last_epoch < ?", "I",
                    (int64_t)time(NULL) - idle_s);
}

int vdb_audit(struct vdb *db, const char *user, const char *remote,
              const char *action, const char *object, const char *result,
              int status)
{
    char now[32];
    int rc;

    vdb_now(now, sizeof(now));
    rc = vdb_exec(db, "INSERT INTO audit_log (time, user_name, remote, action, object,"
                  " result, status) VALUES (?, ?, ?, ?, ?, ?, ?)", "ssssssi", now,
                  user ? user : "", remote ? remote : "", action, object ? object : "",
                  result, status);
    return rc < 0 ? rc : 0;
}
