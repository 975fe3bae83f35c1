/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_run.c: the runs table (migration 0 -> 1): one row per workload the daemon's run stage
 * started or adopted, keyed by the runner's job id, with the event, the image digest, the
 * node and GPUs, the state and, once the complete stage saw its end, the result. A put of an
 * id already stored updates it in place and never takes back an end, so a stage retried
 * after a crash adds nothing twice.
 */
#include "store/store_int.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define RUN_COLS                                                                                   \
    "id, event_id, image_digest, runner, node, gpus, state, result, created_ms,"                   \
    " coalesce(started_ms, 0), coalesce(finished_ms, 0), updated_ms"

static const char sql_put[] =
    "INSERT INTO runs (id, event_id, image_digest, runner, node, gpus, state, created_ms,"
    " started_ms, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?8)"
    " ON CONFLICT (id) DO UPDATE SET runner = excluded.runner,"
    " node = coalesce(excluded.node, node), gpus = excluded.gpus,"
    " state = CASE WHEN finished_ms IS NULL THEN excluded.state ELSE state END,"
    " started_ms = coalesce(started_ms, excluded.started_ms), updated_ms = excluded.updated_ms"
    " WHERE event_id = excluded.event_id";
static const char sql_end[] =
    "UPDATE runs SET state = ?2, result = ?3, node = coalesce(?4, node), finished_ms = ?5,"
    " updated_ms = ?5 WHERE id = ?1";
static const char sql_get[] = "SELECT " RUN_COLS " FROM runs WHERE id = ?1";
static const char sql_by_event[] =
    "SELECT " RUN_COLS " FROM runs WHERE event_id = ?1 ORDER BY created_ms, rowid";

static bool
state_known(const char *s)
{
    static const char *const known[] = {"pending",   "starting", "running",
                                        "succeeded", "failed",   "stopped"};

    for (size_t i = 0; i < OCRA_ARRAY_LEN(known); i++)
        if (!strcmp(s, known[i]))
            return true;
    return false;
}

int
ocra_store_run_put(struct ocra_store *st, const struct ocra_store_run *r, struct ocra_err *err)
{
    const char *state = r->state ? r->state : "running";
    sqlite3_stmt *s;
    int rc = 0;

    if (!r->id || !*r->id || !r->event_id || !r->image_digest || !r->runner || !*r->runner)
        return ocra_err_set(err, EINVAL, "run: want an id, an event, an image digest and a runner");
    if (!state_known(state))
        return ocra_err_set(err, EINVAL, "run %s: unknown state %s", r->id, state);
    if (!(s = ocra_store_stmt_sql(st, sql_put, err)))
        return ocra_err_wrap(err, "run %s", r->id);
    rc |= sqlite3_bind_text(s, 1, r->id, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 2, r->event_id, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 3, r->image_digest, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 4, r->runner, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 5, r->node && *r->node ? r->node : NULL, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 6, r->gpus ? r->gpus : "[]", -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 7, state, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_int64(s, 8, r->started_ms ? r->started_ms : ocra_time_wall_ms());
    if (ocra_store_exec_stmt(st, s, rc, err, "insert") < 0)
        return ocra_err_wrap(err, "run %s", r->id);
    if (sqlite3_changes(st->db) == 0) /* the conflict's WHERE: the id is another event's */
        return ocra_err_set(err, EEXIST, "run %s: recorded for another event", r->id);
    return 0;
}

int
ocra_store_run_end(struct ocra_store *st, const char *id, const char *state, const char *node,
                   const char *result, struct ocra_err *err)
{
    sqlite3_stmt *s;
    int rc = 0;

    if (strcmp(state, "succeeded") != 0 && strcmp(state, "failed") != 0 &&
        strcmp(state, "stopped") != 0)
        return ocra_err_set(err, EINVAL, "run %s: %s is not an end state", id, state);
    if (!(s = ocra_store_stmt_sql(st, sql_end, err)))
        return ocra_err_wrap(err, "run %s", id);
    rc |= sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 2, state, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 3, result, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 4, node && *node ? node : NULL, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_int64(s, 5, ocra_time_wall_ms());
    if (ocra_store_exec_stmt(st, s, rc, err, "update") < 0)
        return ocra_err_wrap(err, "run %s", id);
    if (sqlite3_changes(st->db) == 0)
        return ocra_err_set(err, ENOENT, "run %s: not in the journal", id);
    return 0;
}

/* The current row of s (RUN_COLS) with borrowed strings, valid until s steps or resets. */
static void
run_from_row(sqlite3_stmt *s, struct ocra_store_run *r)
{
    const char **text[] = {&r->id,   &r->event_id, &r->image_digest, &r->runner,
                           &r->node, &r->gpus,     &r->state,        &r->result};

    for (size_t i = 0; i < OCRA_ARRAY_LEN(text); i++)
        *text[i] = (const char *)sqlite3_column_text(s, (int)i);
    r->created_ms = sqlite3_column_int64(s, 8);
    r->started_ms = sqlite3_column_int64(s, 9);
    r->finished_ms = sqlite3_column_int64(s, 10);
    r->updated_ms = sqlite3_column_int64(s, 11);
}

static struct ocra_store_run *
run_dup(const struct ocra_store_run *r)
{
#define OFF(m) offsetof(struct ocra_store_run, m)
    static const size_t text[] = {OFF(id),   OFF(event_id), OFF(image_digest), OFF(runner),
                                  OFF(node), OFF(gpus),     OFF(state),        OFF(result)};
#undef OFF
    return ocra_store_dup_flat(r, sizeof(*r), text, OCRA_ARRAY_LEN(text));
}

/* Steps sql bound to key, calling fn per row (or keeping a copy of the first in *one). */
static int
run_query(struct ocra_store *st, const char *sql, const char *key, ocra_store_run_fn *fn, void *arg,
          struct ocra_store_run **one, struct ocra_err *err)
{
    sqlite3_stmt *s = ocra_store_stmt_sql(st, sql, err);
    struct ocra_store_run r;
    int rc;

    if (!s)
        return ocra_err_wrap(err, "runs of %s", key);
    if ((rc = sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC)) == SQLITE_OK)
        rc = sqlite3_step(s);
    for (; rc == SQLITE_ROW; rc = sqlite3_step(s)) {
        run_from_row(s, &r);
        if (one) {
            *one = run_dup(&r);
            rc = SQLITE_DONE;
            break;
        }
        if (fn(&r, arg) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_DONE)
        ocra_store_sqlerr(st, rc, err, "runs");
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE ? 0 : ocra_err_wrap(err, "runs of %s", key);
}

int
ocra_store_run_get(struct ocra_store *st, const char *id, struct ocra_store_run **out,
                   struct ocra_err *err)
{
    struct ocra_store_run *r = NULL;

    if (run_query(st, sql_get, id, NULL, NULL, &r, err) < 0)
        return -1;
    *out = r;
    return 0;
}

int
ocra_store_run_list(struct ocra_store *st, const char *event_id, ocra_store_run_fn *fn, void *arg,
                    struct ocra_err *err)
{
    return run_query(st, sql_by_event, event_id, fn, arg, NULL, err);
}

void
ocra_store_run_free(struct ocra_store_run *r)
{
    free(r); /* the strings live in the same allocation */
}
