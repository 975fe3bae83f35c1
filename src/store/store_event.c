/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_event.c: the journal's events, per-source cursors and materialised models. Appending
 * a batch of events and moving the source's cursor is one transaction (a savepoint inside the
 * caller's); an event id already in the journal is skipped, so a watcher that replays blocks
 * after a restart adds nothing twice.
 */
#include "store/store_int.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- append and cursors ------------------------------------------------------------------ */

/* Binds one event; rc collects the bind results (SQLITE_OK is 0). */
static int
bind_event(sqlite3_stmt *s, const char *source, const struct ocra_store_event *ev, int64_t now)
{
    int rc = 0;

    rc |= sqlite3_bind_text(s, 1, ev->id, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 2, source, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 3, ev->chain, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_int64(s, 4, ev->block_number);
    rc |= sqlite3_bind_text(s, 5, ev->block_hash, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 6, ev->tx_hash, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_int64(s, 7, ev->op_index);
    rc |= sqlite3_bind_text(s, 8, ev->signer, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_int(s, 9, ev->trusted ? 1 : 0);
    rc |= sqlite3_bind_text(s, 10, ev->path, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 11, ev->spec, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 12, ev->status ? ev->status : "accepted", -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 13, ev->reason, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_int64(s, 14, ev->observed_ms ? ev->observed_ms : now);
    rc |= sqlite3_bind_int64(s, 15, now);
    return rc;
}

/* Inserts ev unless its id exists; adds 1 to *count when a row was added. */
static int
insert_event(struct ocra_store *st, const char *source, const struct ocra_store_event *ev,
             int64_t now, size_t *count, struct ocra_err *err)
{
    sqlite3_stmt *s = ocra_store_stmt(st, OCRA_STORE_STMT_EVENT_INSERT, err);
    int rc;

    if (!s)
        return -1;
    if (ev->source && strcmp(ev->source, source) != 0)
        return ocra_err_set(err, EINVAL, "source %s differs from the batch's", ev->source);
    rc = bind_event(s, source, ev, now);
    if (ocra_store_exec_stmt(st, s, rc, err, "insert") < 0)
        return -1;
    *count += (size_t)sqlite3_changes(st->db); /* 0 when the id was already there */
    return 0;
}

static int
cursor_put(struct ocra_store *st, const char *source, const struct ocra_store_cursor *c,
           int64_t now, struct ocra_err *err)
{
    sqlite3_stmt *s = ocra_store_stmt(st, OCRA_STORE_STMT_CURSOR_PUT, err);
    int rc = 0;

    if (!s)
        return -1;
    if (!memchr(c->block_hash, '\0', sizeof(c->block_hash)))
        return ocra_err_set(err, EINVAL, "cursor block hash is not terminated");
    rc |= sqlite3_bind_text(s, 1, source, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_int64(s, 2, c->block_number);
    rc |= sqlite3_bind_text(s, 3, c->block_hash, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_int64(s, 4, now);
    return ocra_store_exec_stmt(st, s, rc, err, "cursor");
}

int
ocra_store_append(struct ocra_store *st, const char *source, const struct ocra_store_event *evs,
                  size_t n, const struct ocra_store_cursor *cursor, size_t *inserted,
                  struct ocra_err *err)
{
    int64_t now = ocra_time_wall_ms();
    size_t count = 0, i;

    if (ocra_store_begin(st, err) < 0)
        return ocra_err_wrap(err, "append %s", source);
    for (i = 0; i < n; i++) {
        if (insert_event(st, source, &evs[i], now, &count, err) < 0) {
            ocra_err_wrap(err, "event %zu (%.80s)", i, evs[i].id ? evs[i].id : "no id");
            goto fail;
        }
    }
    if (cursor && cursor_put(st, source, cursor, now, err) < 0)
        goto fail;
    if (ocra_store_commit(st, err) < 0)
        return ocra_err_wrap(err, "append %s", source);
    if (inserted)
        *inserted = count;
    return 0;
fail:
    ocra_store_rollback(st);
    return ocra_err_wrap(err, "append %s", source);
}

int
ocra_store_cursor_get(struct ocra_store *st, const char *source, struct ocra_store_cursor *out,
                      bool *found, struct ocra_err *err)
{
    sqlite3_stmt *s = ocra_store_stmt(st, OCRA_STORE_STMT_CURSOR_GET, err);
    const unsigned char *hash;
    int rc;

    if (!s)
        return ocra_err_wrap(err, "cursor %s", source);
    sqlite3_bind_text(s, 1, source, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        out->block_number = sqlite3_column_int64(s, 0);
        hash = sqlite3_column_text(s, 1);
        (void)snprintf(out->block_hash, sizeof(out->block_hash), "%s",
                       hash ? (const char *)hash : ""); /* the schema bounds it to 66 */
    } else if (rc != SQLITE_DONE) {
        ocra_store_sqlerr(st, rc, err, "cursor");
    }
    sqlite3_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return ocra_err_wrap(err, "%s", source);
    *found = rc == SQLITE_ROW;
    return 0;
}

/* ---- reading events ---------------------------------------------------------------------- */

void
ocra_store_event_from_row(sqlite3_stmt *s, struct ocra_store_event *ev)
{
#define TEXT(i) ((const char *)sqlite3_column_text(s, (i)))
    ev->seq = sqlite3_column_int64(s, 0);
    ev->id = TEXT(1);
    ev->source = TEXT(2);
    ev->chain = TEXT(3);
    ev->block_number = sqlite3_column_int64(s, 4);
    ev->block_hash = TEXT(5);
    ev->tx_hash = TEXT(6);
    ev->op_index = sqlite3_column_int64(s, 7);
    ev->signer = TEXT(8);
    ev->trusted = sqlite3_column_int(s, 9) != 0;
    ev->path = TEXT(10);
    ev->spec = TEXT(11);
    ev->status = TEXT(12);
    ev->reason = TEXT(13);
    ev->observed_ms = sqlite3_column_int64(s, 14);
    ev->created_ms = sqlite3_column_int64(s, 15);
    ev->updated_ms = sqlite3_column_int64(s, 16);
#undef TEXT
}

void *
ocra_store_dup_flat(const void *obj, size_t size, const size_t *text_off, size_t n)
{
    size_t total = size, len;
    const char *v;
    char *cp, *q;

    for (size_t i = 0; i < n; i++) {
        memcpy(&v, (const char *)obj + text_off[i], sizeof(v));
        total += v ? strlen(v) + 1 : 0;
    }
    cp = ocra_xmalloc(total);
    memcpy(cp, obj, size);
    q = cp + size;
    for (size_t i = 0; i < n; i++) {
        memcpy(&v, cp + text_off[i], sizeof(v));
        if (!v)
            continue;
        len = strlen(v) + 1;
        memcpy(q, v, len);
        memcpy(cp + text_off[i], &q, sizeof(q)); /* the member now points into the copy */
        q += len;
    }
    return cp;
}

struct ocra_store_event *
ocra_store_event_dup(const struct ocra_store_event *ev)
{
#define OFF(m) offsetof(struct ocra_store_event, m)
    static const size_t text[] = {OFF(id),      OFF(source), OFF(chain), OFF(block_hash),
                                  OFF(tx_hash), OFF(signer), OFF(path),  OFF(spec),
                                  OFF(status),  OFF(reason)};
#undef OFF

    return ocra_store_dup_flat(ev, sizeof(*ev), text, OCRA_ARRAY_LEN(text));
}

void
ocra_store_event_free(struct ocra_store_event *ev)
{
    free(ev); /* the strings live in the same allocation */
}

int
ocra_store_event_get(struct ocra_store *st, const char *id, struct ocra_store_event **out,
                     struct ocra_err *err)
{
    sqlite3_stmt *s = ocra_store_stmt(st, OCRA_STORE_STMT_EVENT_GET, err);
    struct ocra_store_event ev;
    int rc;

    if (!s)
        return ocra_err_wrap(err, "event %s", id);
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        ocra_store_event_from_row(s, &ev);
        *out = ocra_store_event_dup(&ev);
    } else if (rc == SQLITE_DONE) {
        *out = NULL;
    } else {
        ocra_store_sqlerr(st, rc, err, "select");
    }
    sqlite3_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return ocra_err_wrap(err, "event %s", id);
    return 0;
}

int
ocra_store_event_count(struct ocra_store *st, int64_t *out, struct ocra_err *err)
{
    sqlite3_stmt *s = ocra_store_stmt(st, OCRA_STORE_STMT_EVENT_COUNT, err);
    int rc;

    if (!s)
        return ocra_err_wrap(err, "count events");
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(s, 0);
    else
        ocra_store_sqlerr(st, rc, err, "count events");
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? 0 : -1;
}

/* Kept equal to the schema's CHECK lists by store_test.c (statuses_cover_schema). */
const char *const ocra_store_statuses[] = {
    "accepted",   "rejected", "detected",   "validated", "planned",   "toolchain",
    "pushed",     "signed",   "allocated",  "running",   "completed", "failed",
    "superseded", "orphaned", "timeout",    "reported",  "ready",     "claimed",
    "waiting",    "queued",   "supervised", "dead",      "done",      NULL};

bool
ocra_store_status_known(const char *s)
{
    for (size_t i = 0; ocra_store_statuses[i]; i++)
        if (strcmp(s, ocra_store_statuses[i]) == 0)
            return true;
    return false;
}

const char *
ocra_store_status_join(char *buf, size_t size)
{
    size_t len = 0;

    buf[0] = '\0';
    for (size_t i = 0; ocra_store_statuses[i] && len < size; i++) {
        int n = snprintf(buf + len, size - len, "%s%s", i ? ", " : "", ocra_store_statuses[i]);

        if (n < 0)
            break;
        len += (size_t)n;
    }
    return buf;
}

int
ocra_store_event_list(struct ocra_store *st, const struct ocra_store_event_filter *filter,
                      ocra_store_event_fn *fn, void *arg, struct ocra_err *err)
{
    static const struct ocra_store_event_filter all = {0};
    const struct ocra_store_event_filter *f = filter ? filter : &all;
    sqlite3_stmt *s;
    struct ocra_store_event ev;
    int rc;

    s = ocra_store_stmt(
        st, f->newest_first ? OCRA_STORE_STMT_EVENT_LIST_DESC : OCRA_STORE_STMT_EVENT_LIST_ASC,
        err);
    if (!s)
        return ocra_err_wrap(err, "list events");
    sqlite3_bind_text(s, 1, f->source, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, f->status, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, f->limit > 0 ? f->limit : -1);
    sqlite3_bind_int64(s, 4, f->before_seq > 0 ? f->before_seq : INT64_MAX);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        ocra_store_event_from_row(s, &ev);
        if (fn(&ev, arg) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_DONE)
        ocra_store_sqlerr(st, rc, err, "list events");
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE ? 0 : -1;
}

int
ocra_store_event_set_status(struct ocra_store *st, const char *id, const char *status,
                            const char *reason, struct ocra_err *err)
{
    sqlite3_stmt *s = ocra_store_stmt(st, OCRA_STORE_STMT_EVENT_STATUS, err);
    int rc = 0;

    if (!s)
        return ocra_err_wrap(err, "event %s", id);
    rc |= sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 2, status, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 3, reason, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_int64(s, 4, ocra_time_wall_ms());
    if (ocra_store_exec_stmt(st, s, rc, err, "set status") < 0)
        return ocra_err_wrap(err, "event %s", id);
    if (sqlite3_changes(st->db) == 0)
        return ocra_err_set(err, ENOENT, "event %s: no such event", id);
    return 0;
}

/* ---- models ------------------------------------------------------------------------------ */

int
ocra_store_model_put(struct ocra_store *st, const char *source, const char *path, const char *value,
                     int64_t block_number, struct ocra_err *err)
{
    sqlite3_stmt *s =
        ocra_store_stmt(st, value ? OCRA_STORE_STMT_MODEL_PUT : OCRA_STORE_STMT_MODEL_DEL, err);
    int rc = 0;

    if (!s)
        return ocra_err_wrap(err, "model %s %s", source, path);
    rc |= sqlite3_bind_text(s, 1, source, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 2, path, -1, SQLITE_STATIC);
    if (value) {
        rc |= sqlite3_bind_text(s, 3, value, -1, SQLITE_STATIC);
        rc |= sqlite3_bind_int64(s, 4, block_number);
        rc |= sqlite3_bind_int64(s, 5, ocra_time_wall_ms());
    }
    if (ocra_store_exec_stmt(st, s, rc, err, value ? "put" : "delete") < 0)
        return ocra_err_wrap(err, "model %s %s", source, path);
    return 0;
}

int
ocra_store_model_get(struct ocra_store *st, const char *source, const char *path, char **value,
                     int64_t *block_number, struct ocra_err *err)
{
    sqlite3_stmt *s = ocra_store_stmt(st, OCRA_STORE_STMT_MODEL_GET, err);
    int rc;

    if (!s)
        return ocra_err_wrap(err, "model %s %s", source, path);
    sqlite3_bind_text(s, 1, source, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, path, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *value = ocra_xstrdup((const char *)sqlite3_column_text(s, 0));
        if (block_number)
            *block_number = sqlite3_column_int64(s, 1);
    } else if (rc == SQLITE_DONE) {
        *value = NULL;
    } else {
        ocra_store_sqlerr(st, rc, err, "get");
    }
    sqlite3_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return ocra_err_wrap(err, "model %s %s", source, path);
    return 0;
}

int
ocra_store_model_paths(struct ocra_store *st, const char *source, const char *prefix,
                       ocra_store_model_fn *fn, void *arg, struct ocra_err *err)
{
    static const char sql[] = "SELECT path FROM models WHERE source = ?1"
                              " AND substr(path, 1, length(?2)) = ?2 ORDER BY path";
    sqlite3_stmt *s = ocra_store_stmt_sql(st, sql, err);
    size_t len = strlen(prefix);
    char *below =
        ocra_xasprintf("%.*s/", (int)(len && prefix[len - 1] == '/' ? len - 1 : len), prefix);
    int rc;

    if (!s) {
        free(below);
        return ocra_err_wrap(err, "models of %s below %s", source, prefix);
    }
    sqlite3_bind_text(s, 1, source, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, below, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        if (fn((const char *)sqlite3_column_text(s, 0), arg) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    if (rc != SQLITE_DONE)
        ocra_store_sqlerr(st, rc, err, "list");
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    free(below);
    if (rc != SQLITE_DONE)
        return ocra_err_wrap(err, "models of %s below %s", source, prefix);
    return 0;
}

json_t *
ocra_store_event_to_json(const struct ocra_store_event *ev)
{
    json_t *o = json_object(), *spec = NULL;

    json_object_set_new(o, "event", json_string(ev->id));
    json_object_set_new(o, "seq", json_integer(ev->seq));
    json_object_set_new(o, "chain", json_string(ev->chain));
    json_object_set_new(o, "block", json_integer(ev->block_number));
    json_object_set_new(o, "blockHash", json_string(ev->block_hash ? ev->block_hash : ""));
    json_object_set_new(o, "txHash", json_string(ev->tx_hash));
    json_object_set_new(o, "opIndex", json_integer(ev->op_index));
    json_object_set_new(o, "path", json_string(ev->path ? ev->path : ""));
    json_object_set_new(o, "signer", json_string(ev->signer ? ev->signer : ""));
    json_object_set_new(o, "trusted", json_boolean(ev->trusted));
    json_object_set_new(o, "status", json_string(ev->status ? ev->status : "accepted"));
    if (ev->spec)
        spec = ocra_json_parse(ev->spec, strlen(ev->spec), 0, NULL);
    json_object_set_new(o, "removed", json_boolean(json_is_null(spec)));
    json_object_set_new(o, "spec", spec ? spec : json_null());
    if (ev->reason)
        json_object_set_new(o, "reason", json_string(ev->reason));
    json_object_set_new(o, "observedMs", json_integer(ev->observed_ms));
    json_object_set_new(o, "updatedMs", json_integer(ev->updated_ms));
    return o;
}

int
ocra_store_event_counts(struct ocra_store *st, ocra_store_count_fn *fn, void *arg,
                        struct ocra_err *err)
{
    /* the counters the triggers keep (schema version 5), not a count of the events */
    static const char sql[] = "SELECT status, chain, n FROM event_counts ORDER BY status, chain";
    sqlite3_stmt *s = ocra_store_stmt_sql(st, sql, err);
    int rc;

    if (!s)
        return ocra_err_wrap(err, "count events");
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        fn((const char *)sqlite3_column_text(s, 0), (const char *)sqlite3_column_text(s, 1),
           sqlite3_column_int64(s, 2), arg);
    if (rc != SQLITE_DONE)
        ocra_store_sqlerr(st, rc, err, "count events");
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : -1;
}
