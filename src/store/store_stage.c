/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_stage.c: the daemon's stage machine in the journal. The pipeline table holds one row
 * per event (where it is, who holds it, until when); the stages table one history row per
 * attempt. Every transition is one transaction, and an attempt ends only under the claim that
 * started it (the claim id is a fencing token): a worker whose lease expired and whose event
 * was taken over cannot write over the new holder's work.
 */
#include "store/store_int.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PIPE_COLUMNS                                                                               \
    "p.seq, p.event_id, p.model, p.version, p.status, p.outcome, p.stage, p.state, p.attempts,"    \
    " p.next_ms, p.claim, p.claimed_by, p.lease_ms, p.last_error, p.failed_stage, p.created_ms,"   \
    " p.updated_ms, p.crashes"

static const char sql_intake[] =
    "INSERT INTO pipeline (seq, event_id, model, version, status, outcome, stage, state,"
    " created_ms, updated_ms)"
    " SELECT e.seq, e.id, e.source || ' ' || coalesce(e.path, ''),"
    "  CASE WHEN e.status <> 'rejected' AND json_valid(e.spec)"
    "   AND json_type(e.spec, '$.modelVersion') = 'text'"
    "   THEN json_extract(e.spec, '$.modelVersion') END,"
    "  CASE WHEN e.status = 'rejected' THEN 'rejected' ELSE 'detected' END,"
    "  CASE WHEN e.status = 'rejected' THEN 'rejected' END,"
    "  CASE WHEN e.status = 'rejected' THEN ?2 ELSE ?1 END, 'ready', ?3, ?3"
    " FROM events e WHERE e.seq > (SELECT coalesce(max(seq), 0) FROM pipeline)"
    "  AND coalesce(e.path, '') NOT LIKE '/.evm/%' ORDER BY e.seq LIMIT ?4";

/* Rows per write transaction of the intake and the wake: a journal taken in or woken all at
 * once would hold the write lock while the workers wait (beyond their busy timeout). */
#define CHUNK 500

/* The ready row due first, or a claimed row whose lease expired, whichever comes first by
 * (next_ms, seq): two walks of pipeline_ready that stop at their first row, compared as row
 * values, never a sort inside the claim's write transaction (not even of those two rows: a
 * sort builds a temporary B-tree at every claim). */
static const char sql_pick[] =
    "SELECT event_id, stage, state, claim, claimed_by FROM pipeline WHERE seq = ("
    " SELECT CASE WHEN c IS NULL OR (r IS NOT NULL AND ((SELECT next_ms FROM pipeline"
    "  WHERE seq = r), r) < ((SELECT next_ms FROM pipeline WHERE seq = c), c)) THEN r ELSE c END"
    " FROM (SELECT (SELECT seq FROM pipeline WHERE state = 'ready' AND next_ms <= ?1"
    "   ORDER BY next_ms, seq LIMIT 1) AS r,"
    "  (SELECT seq FROM pipeline WHERE state = 'claimed' AND lease_ms <= ?1"
    "   ORDER BY next_ms, seq LIMIT 1) AS c))";

static const char sql_abandon[] =
    "UPDATE stages SET finished_ms = ?2, outcome = 'abandoned', error = ?3"
    " WHERE id = ?1 AND outcome IS NULL";

/* The owners of the claims held in scope ?1 (the claimed rows are few: one per worker). */
static const char sql_owners[] = "SELECT DISTINCT owner_pid, owner_start FROM pipeline"
                                 " WHERE state = 'claimed' AND owner_scope = ?1";

/* The claims of one owner (?1 scope, ?2 pid, ?3 start). */
static const char sql_owned[] =
    "SELECT event_id, claim, claimed_by FROM pipeline WHERE state = 'claimed'"
    " AND owner_scope = ?1 AND owner_pid = ?2 AND owner_start = ?3";

/* A claim whose holder died goes back to ready at its stage: the attempt it made does not
 * count, the crash does. ?1 event, ?2 claim, ?3 now. */
static const char sql_release[] =
    "UPDATE pipeline SET state = 'ready', claim = NULL, claimed_by = NULL, lease_ms = NULL,"
    " attempts = max(attempts - 1, 0), crashes = crashes + 1, updated_ms = ?3"
    " WHERE event_id = ?1 AND claim = ?2 AND state = 'claimed'";

/* The last abandoned attempt at the event's current stage: who held it, when it was found. */
static const char sql_last_crash[] =
    "SELECT worker, finished_ms FROM stages WHERE event_id = ?1 AND stage = ?2"
    " AND outcome = 'abandoned' ORDER BY id DESC LIMIT 1";

/* A newer event of the same model that passed validation and still counts, or a trusted
 * removal of the model (spec null): the chain no longer holds what the older one deploys. */
static const char sql_newer[] =
    "SELECT n.event_id FROM pipeline p JOIN pipeline n ON n.model = p.model AND n.seq > p.seq"
    " WHERE p.event_id = ?1 AND ((n.status <> 'detected' AND n.status <> 'rejected'"
    "  AND n.status <> 'superseded'"
    "  AND coalesce(n.outcome, '') NOT IN ('rejected', 'superseded') AND n.state <> 'dead')"
    "  OR EXISTS (SELECT 1 FROM events e WHERE e.id = n.event_id AND e.trusted = 1"
    "   AND e.status <> 'rejected' AND e.spec = 'null'))"
    " ORDER BY n.seq DESC LIMIT 1";

static const char sql_history_add[] =
    "INSERT INTO stages (event_id, stage, attempt, worker, started_ms, finished_ms, outcome,"
    " error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

static const char sql_supersede[] =
    "UPDATE pipeline SET prev_status = status, failed_stage = stage, status = 'superseded',"
    " outcome = 'superseded', stage = ?2, state = 'ready', attempts = 0, crashes = 0, next_ms = 0,"
    " claim = NULL, claimed_by = NULL, lease_ms = NULL, last_error = ?3, updated_ms = ?4"
    " WHERE event_id = ?1";

/* The event's chain truth was withdrawn (the watcher marked it orphaned) and the row does not
 * know yet: ?1 the event. Answers the watcher's reason. */
static const char sql_orphaned_row[] =
    "SELECT e.reason FROM events e JOIN pipeline p ON p.event_id = e.id"
    " WHERE e.id = ?1 AND e.orphaned_ms IS NOT NULL AND p.status <> 'orphaned'";

static const char sql_orphan_row[] =
    "UPDATE pipeline SET prev_status = status, failed_stage = stage, status = 'orphaned',"
    " outcome = 'orphaned', stage = ?2, state = 'ready', attempts = 0, crashes = 0, next_ms = 0,"
    " claim = NULL, claimed_by = NULL, lease_ms = NULL, last_error = ?3, updated_ms = ?4"
    " WHERE event_id = ?1";

static const char sql_event_orphan[] =
    "UPDATE events SET status = 'rejected', reason = ?2, orphaned_ms = coalesce(orphaned_ms, ?3),"
    " updated_ms = ?3 WHERE id = ?1";

static const char sql_event_orphaned[] = "SELECT orphaned_ms IS NOT NULL FROM events WHERE id = ?1";

static const char sql_reopen[] =
    "UPDATE pipeline SET status = outcome, stage = ?2, state = 'ready', attempts = 0, crashes = 0,"
    " next_ms = 0,"
    " last_error = ?3, updated_ms = ?4"
    " WHERE event_id = ?1 AND state = 'done' AND status = 'reported' AND outcome IS NOT NULL"
    "  AND outcome <> 'orphaned'";

/* Reported events of a source whose last report attempt that was done recorded a transaction
 * in block ?2 or later. */
static const char sql_reports[] =
    "SELECT p.event_id, s.output FROM pipeline p JOIN events e ON e.id = p.event_id"
    " JOIN stages s ON s.id = (SELECT max(id) FROM stages WHERE event_id = p.event_id"
    "  AND stage = ?3 AND outcome = 'done')"
    " WHERE p.status = 'reported' AND p.state = 'done' AND e.source = ?1"
    "  AND json_valid(s.output) AND json_type(s.output, '$.tx') = 'text'"
    "  AND json_extract(s.output, '$.block') >= ?2 ORDER BY p.seq";

/* ?6: a takeover of an expired lease, whose attempt does not count and whose crash does;
 * ?7-?9 the owner. */
static const char sql_take[] =
    "UPDATE pipeline SET state = 'claimed', claim = ?2, claimed_by = ?3, lease_ms = ?4,"
    " attempts = attempts + 1 - ?6, crashes = crashes + ?6, owner_scope = ?7, owner_pid = ?8,"
    " owner_start = ?9, updated_ms = ?5 WHERE event_id = ?1";

static const char sql_claimed[] =
    "SELECT status, model, version, last_error, attempts, crashes FROM pipeline"
    " WHERE event_id = ?1";

static const char sql_holder[] = "SELECT claim, state, stage, status FROM pipeline"
                                 " WHERE event_id = ?1";

static const char sql_renew[] = "UPDATE pipeline SET lease_ms = ?3, updated_ms = ?4"
                                " WHERE event_id = ?1 AND claim = ?2 AND state = 'claimed'";

/* A waiting (or queued: ?4) attempt right after another such attempt at the same stage only
 * extends the earlier one, so that restarts (and queued events woken in a race for the same
 * room) do not fill the history with identical rows; a queued row keeps its start (when the
 * event was first queued) and takes the newer request (?5). */
static const char sql_waiting_again[] =
    "UPDATE stages SET finished_ms = ?3, output = coalesce(?5, output) WHERE id = (SELECT max(id)"
    " FROM stages WHERE event_id = ?1 AND id < ?2) AND outcome = ?4"
    " AND stage = (SELECT stage FROM stages WHERE id = ?2)";

static const char sql_history_drop[] = "DELETE FROM stages WHERE id = ?1";

static const char sql_history_end[] =
    "UPDATE stages SET finished_ms = ?2, outcome = ?3, output = ?4, error = ?5 WHERE id = ?1";

/* ?2 status (NULL: same), ?3 stage (NULL: same), ?4 finished, ?5 state, ?6 next_ms, ?7 error,
 * ?8 now, ?9 attempt does not count. The outcomes are compared one by one: an IN-list of more
 * than two constants makes SQLite build a temporary B-tree at every run of the statement, that
 * is at every stage end. */
static const char sql_move[] =
    "UPDATE pipeline SET"
    " prev_status = CASE WHEN ?2 IN ('failed', 'rejected') OR ?5 = 'dead' THEN status"
    "  ELSE prev_status END,"
    " failed_stage = CASE WHEN ?2 IN ('failed', 'rejected') OR ?5 = 'dead' THEN stage"
    "  ELSE failed_stage END,"
    " outcome = CASE WHEN ?2 = 'completed' OR ?2 = 'failed' OR ?2 = 'rejected'"
    "  OR ?2 = 'superseded' OR ?2 = 'orphaned' OR ?2 = 'timeout'"
    "  THEN ?2"
    "  ELSE outcome END,"
    " attempts = CASE WHEN ?4 OR (?3 IS NOT NULL AND ?3 IS NOT stage) THEN 0"
    "  WHEN ?9 THEN max(attempts - 1, 0) ELSE attempts END,"
    " crashes = CASE WHEN ?4 OR (?3 IS NOT NULL AND ?3 IS NOT stage) THEN 0 ELSE crashes END,"
    " status = coalesce(?2, status),"
    " stage = CASE WHEN ?4 THEN NULL ELSE coalesce(?3, stage) END,"
    " state = CASE WHEN ?4 THEN 'done' ELSE ?5 END,"
    " next_ms = ?6, last_error = ?7, claim = NULL, claimed_by = NULL, lease_ms = NULL,"
    " updated_ms = ?8 WHERE event_id = ?1";

static const char sql_retry_get[] =
    "SELECT status, state, outcome, failed_stage, prev_status FROM pipeline WHERE event_id = ?1";

static const char sql_retry[] =
    "UPDATE pipeline SET state = 'ready', next_ms = 0, attempts = 0, crashes = 0,"
    " last_error = NULL,"
    " stage = coalesce(?2, stage), status = coalesce(?3, status),"
    " outcome = CASE WHEN ?2 IS NOT NULL THEN NULL ELSE outcome END, updated_ms = ?4"
    " WHERE event_id = ?1";

static const char sql_wake[] =
    "UPDATE pipeline SET state = 'ready', next_ms = 0, updated_ms = ?1 WHERE seq IN"
    " (SELECT seq FROM pipeline WHERE state = 'waiting' LIMIT ?2)";

static const char sql_wake_event[] =
    "UPDATE pipeline SET state = 'ready', next_ms = 0, updated_ms = ?3"
    " WHERE event_id = ?1 AND state = ?2";

static const char sql_in_state[] = "SELECT event_id FROM pipeline WHERE state = ?1 ORDER BY seq";

static const char sql_event_refused[] =
    "UPDATE events SET refusal = ?2, updated_ms = ?3 WHERE id = ?1";

static const char sql_event_refusal[] = "SELECT refusal FROM events WHERE id = ?1";

/* The queued events, first queued first: the start of the history row of their queued span
 * (ocra_store_stage_end keeps one row per span) and its output (the request). */
static const char sql_queued[] =
    "SELECT p.seq, p.event_id, p.model, p.version, p.stage, p.last_error, e.source, e.signer,"
    " e.path, e.spec, s.started_ms, s.output FROM pipeline p JOIN events e ON e.id = p.event_id"
    " JOIN stages s ON s.id = (SELECT max(id) FROM stages WHERE event_id = p.event_id"
    "  AND outcome = 'queued')"
    " WHERE p.state = 'queued' ORDER BY s.started_ms, p.seq";

static const char sql_queued_count[] =
    "SELECT coalesce(sum(n), 0) FROM pipeline_counts WHERE state = 'queued'";

static const char sql_get[] = "SELECT " PIPE_COLUMNS " FROM pipeline p WHERE p.event_id = ?1";

static const char sql_outputs[] =
    "SELECT json_group_object(stage, json(output)) FROM (SELECT stage, output FROM stages"
    " WHERE id IN (SELECT max(id) FROM stages WHERE event_id = ?1 AND outcome = 'done'"
    "  AND output IS NOT NULL GROUP BY stage) ORDER BY id)";

static const char sql_history[] =
    "SELECT id, stage, attempt, worker, started_ms, finished_ms, outcome, output, error"
    " FROM stages WHERE event_id = ?1 ORDER BY id";

#define LIST_COLUMNS                                                                               \
    "SELECT e.seq, e.id, e.source, e.chain, e.block_number, e.block_hash, e.tx_hash,"              \
    " e.op_index, e.signer, e.trusted, e.path, e.spec, e.status, e.reason, e.observed_ms,"         \
    " e.created_ms, e.updated_ms, p.event_id IS NOT NULL, " PIPE_COLUMNS

/* Every event, in journal order from ?4 (INT64_MAX: the first page). */
#define LIST_SQL(order)                                                                            \
    LIST_COLUMNS                                                                                   \
    " FROM events e LEFT JOIN pipeline p ON p.event_id = e.id"                                     \
    " WHERE coalesce(e.path, '') NOT LIKE '/.evm/%' AND (?1 IS NULL OR e.source = ?1)"             \
    " AND e.seq < ?4 ORDER BY e.seq " order " LIMIT ?3"

/* The events whose journal status, or pipeline status, outcome or state is ?2: one walk per
 * column along its index (in journal order, as far as the page goes), merged. */
#define BY_SOURCE(seq) "(?1 IS NULL OR (SELECT source FROM events s WHERE s.seq = " seq ") = ?1)"
#define STATUS_PART(from, col, extra, order)                                                       \
    "SELECT seq FROM (SELECT seq FROM " from " WHERE " col " = ?2 AND seq < ?4 AND " extra         \
    " ORDER BY seq " order " LIMIT ?3)"
#define STATUS_EVENTS(order)                                                                       \
    STATUS_PART("events", "status",                                                                \
                "(?1 IS NULL OR source = ?1) AND coalesce(path, '') NOT LIKE '/.evm/%'", order)
#define STATUS_PIPE(col, order)                                                                    \
    " UNION " STATUS_PART("pipeline", col, BY_SOURCE("pipeline.seq"), order)
#define STATUS_MERGED(order)                                                                       \
    STATUS_EVENTS(order)                                                                           \
    STATUS_PIPE("status", order) STATUS_PIPE("outcome", order) STATUS_PIPE("state", order)
#define STATUS_FROM(order)                                                                         \
    " FROM m JOIN events e ON e.seq = m.seq LEFT JOIN pipeline p ON p.event_id = e.id"             \
    " ORDER BY e.seq " order " LIMIT ?3"
#define STATUS_SQL(order)                                                                          \
    "WITH m(seq) AS (" STATUS_MERGED(order) ") " LIST_COLUMNS STATUS_FROM(order)

static const char sql_list_asc[] = LIST_SQL("ASC");
static const char sql_list_desc[] = LIST_SQL("DESC");
static const char sql_status_asc[] = STATUS_SQL("ASC");
static const char sql_status_desc[] = STATUS_SQL("DESC");

static const char sql_counts[] =
    "SELECT state, status, outcome, n FROM pipeline_counts ORDER BY state, status, outcome";

#define TEXT(s, i) ((const char *)sqlite3_column_text((s), (i)))

static char *
dup_col(sqlite3_stmt *s, int i)
{
    const char *t = TEXT(s, i);

    return t ? ocra_xstrdup(t) : NULL;
}

static sqlite3_stmt *
prep(struct ocra_store *st, const char *sql, struct ocra_err *err)
{
    return ocra_store_stmt_sql(st, sql, err);
}

/* Runs fn inside one transaction: commit when it returns 0, roll back otherwise. */
static int
in_tx(struct ocra_store *st, int (*fn)(struct ocra_store *, void *, struct ocra_err *), void *arg,
      struct ocra_err *err)
{
    if (ocra_store_begin(st, err) < 0)
        return -1;
    if (fn(st, arg, err) < 0) {
        ocra_store_rollback(st);
        return -1;
    }
    return ocra_store_commit(st, err);
}

/* ---- intake ------------------------------------------------------------------------------ */

int
ocra_store_pipeline_intake(struct ocra_store *st, const char *first_stage,
                           const char *rejected_stage, size_t *added, struct ocra_err *err)
{
    sqlite3_stmt *s = prep(st, sql_intake, err);
    size_t total = 0;
    int n;

    if (!s)
        return ocra_err_wrap(err, "pipeline intake");
    do { /* one transaction per chunk */
        int rc = 0;

        rc |= sqlite3_bind_text(s, 1, first_stage, -1, SQLITE_STATIC);
        rc |= sqlite3_bind_text(s, 2, rejected_stage, -1, SQLITE_STATIC);
        rc |= sqlite3_bind_int64(s, 3, ocra_time_wall_ms());
        rc |= sqlite3_bind_int(s, 4, CHUNK);
        if (ocra_store_exec_stmt(st, s, rc, err, "pipeline intake") < 0) {
            if (added)
                *added = total;
            return -1;
        }
        n = sqlite3_changes(st->db);
        total += (size_t)n;
    } while (n == CHUNK);
    if (added)
        *added = total;
    return 0;
}

/* ---- claims ------------------------------------------------------------------------------ */

void
ocra_store_claim_fini(struct ocra_store_claim *c)
{
    free(c->event_id);
    free(c->stage);
    free(c->status);
    free(c->model);
    free(c->version);
    free(c->last_error);
    free(c->crash_by);
    memset(c, 0, sizeof(*c));
}

static int
history_add(struct ocra_store *st, const char *event_id, const char *stage, int64_t attempt,
            const char *worker, int64_t now, const char *outcome, const char *error, int64_t *id,
            struct ocra_err *err)
{
    sqlite3_stmt *s = prep(st, sql_history_add, err);
    int rc = 0;

    if (!s)
        return -1;
    rc |= sqlite3_bind_text(s, 1, event_id, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 2, stage, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_int64(s, 3, attempt);
    rc |= sqlite3_bind_text(s, 4, worker, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_int64(s, 5, now);
    rc |= outcome ? sqlite3_bind_int64(s, 6, now) : sqlite3_bind_null(s, 6);
    rc |= sqlite3_bind_text(s, 7, outcome, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 8, error, -1, SQLITE_STATIC);
    if (ocra_store_exec_stmt(st, s, rc, err, "history") < 0)
        return -1;
    if (id)
        *id = sqlite3_last_insert_rowid(st->db);
    return 0;
}

/* The newest event that supersedes event_id, or NULL (*newer owned by the caller). */
static int
find_newer(struct ocra_store *st, const char *event_id, char **newer, struct ocra_err *err)
{
    sqlite3_stmt *s = prep(st, sql_newer, err);
    int rc;

    if (!s)
        return -1;
    sqlite3_bind_text(s, 1, event_id, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    *newer = rc == SQLITE_ROW ? dup_col(s, 0) : NULL;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        ocra_store_sqlerr(st, rc, err, "newer");
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

static bool
is_gated(const struct ocra_store_claim_opts *o, const char *stage)
{
    for (size_t i = 0; i < o->n_gated; i++)
        if (strcmp(o->gated[i], stage) == 0)
            return true;
    return false;
}

/* Moves a superseded event to the superseded stage, with its history row. */
static int
supersede(struct ocra_store *st, const struct ocra_store_claim_opts *o, const char *event_id,
          const char *stage, const char *newer, int64_t now, struct ocra_err *err)
{
    char msg[600];
    sqlite3_stmt *s;
    int rc = 0;

    (void)snprintf(msg, sizeof(msg), "superseded by %s", newer);
    if (history_add(st, event_id, stage, 0, o->worker, now, "superseded", msg, NULL, err) < 0)
        return -1;
    if (!(s = prep(st, sql_supersede, err)))
        return -1;
    rc |= sqlite3_bind_text(s, 1, event_id, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 2, o->superseded_stage, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 3, msg, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_int64(s, 4, now);
    return ocra_store_exec_stmt(st, s, rc, err, "supersede");
}

/* When the watcher withdrew event_id (orphaned) and its row does not know yet: moves it to
 * status orphaned at the report stage (which stops what runs and sends nothing), with its
 * history row; *moved says whether it did. */
static int
orphan(struct ocra_store *st, const struct ocra_store_claim_opts *o, const char *event_id,
       const char *stage, int64_t now, bool *moved, struct ocra_err *err)
{
    sqlite3_stmt *s = prep(st, sql_orphaned_row, err);
    char *reason = NULL;
    int rc = 0, ret = -1;

    *moved = false;
    if (!s)
        return -1;
    sqlite3_bind_text(s, 1, event_id, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        reason = ocra_xstrdup(TEXT(s, 0) ? TEXT(s, 0) : "orphaned: the chain no longer holds it");
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (rc != SQLITE_ROW)
        return rc == SQLITE_DONE ? 0 : ocra_store_sqlerr(st, rc, err, "orphaned");
    if (history_add(st, event_id, stage, 0, o->worker, now, "orphaned", reason, NULL, err) < 0 ||
        !(s = prep(st, sql_orphan_row, err)))
        goto out;
    rc = 0;
    rc |= sqlite3_bind_text(s, 1, event_id, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 2, o->superseded_stage, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 3, reason, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_int64(s, 4, now);
    if (ocra_store_exec_stmt(st, s, rc, err, "orphan") < 0)
        goto out;
    *moved = true;
    ret = 0;
out:
    free(reason);
    return ret;
}

/* The last abandoned attempt at c's stage into c->crash_by and c->crash_ms. */
static int
last_crash(struct ocra_store *st, struct ocra_store_claim *c, struct ocra_err *err)
{
    sqlite3_stmt *s = prep(st, sql_last_crash, err);
    int rc;

    if (!s)
        return -1;
    sqlite3_bind_text(s, 1, c->event_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, c->stage, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        c->crash_by = dup_col(s, 0);
        c->crash_ms = sqlite3_column_int64(s, 1);
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : ocra_store_sqlerr(st, rc, err, "crashes");
}

static int
take(struct ocra_store *st, const struct ocra_store_claim_opts *o, struct ocra_store_claim *c,
     int64_t now, struct ocra_err *err)
{
    sqlite3_stmt *s = prep(st, sql_claimed, err);
    const struct ocra_proc_id *w = o->owner;
    int rc = 0;

    if (!s)
        return -1;
    sqlite3_bind_text(s, 1, c->event_id, -1, SQLITE_STATIC);
    if (sqlite3_step(s) == SQLITE_ROW) {
        c->status = dup_col(s, 0);
        c->model = dup_col(s, 1);
        c->version = dup_col(s, 2);
        c->last_error = dup_col(s, 3);
        /* a takeover repeats the abandoned attempt: that one did not count */
        c->attempt = sqlite3_column_int64(s, 4) + (c->taken_over ? 0 : 1);
        c->crashes = sqlite3_column_int64(s, 5) + (c->taken_over ? 1 : 0);
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if ((c->crashes > 0 && last_crash(st, c, err) < 0) ||
        history_add(st, c->event_id, c->stage, c->attempt, o->worker, now, NULL, NULL, &c->claim,
                    err) < 0 ||
        !(s = prep(st, sql_take, err)))
        return -1;
    rc |= sqlite3_bind_text(s, 1, c->event_id, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_int64(s, 2, c->claim);
    rc |= sqlite3_bind_text(s, 3, o->worker, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_int64(s, 4, now + o->lease_ms);
    rc |= sqlite3_bind_int64(s, 5, now);
    rc |= sqlite3_bind_int(s, 6, c->taken_over);
    rc |= w && *w->scope ? sqlite3_bind_text(s, 7, w->scope, -1, SQLITE_STATIC)
                         : sqlite3_bind_null(s, 7);
    rc |= w ? sqlite3_bind_int64(s, 8, w->pid) : sqlite3_bind_null(s, 8);
    rc |= w ? sqlite3_bind_int64(s, 9, w->start) : sqlite3_bind_null(s, 9);
    return ocra_store_exec_stmt(st, s, rc, err, "claim");
}

struct claim_args {
    const struct ocra_store_claim_opts *o;
    struct ocra_store_claim *c;
    bool found;
};

/* Picks the next claimable row into a->c (event_id, stage, taken_over); *abandoned gets the
 * expired claim to close, 0 if none. Returns 0 with a->found false when nothing is ready. */
static int
pick(struct ocra_store *st, struct claim_args *a, int64_t now, int64_t *abandoned, char **holder,
     struct ocra_err *err)
{
    sqlite3_stmt *s = prep(st, sql_pick, err);
    int rc;

    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, now);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        a->c->event_id = dup_col(s, 0);
        a->c->stage = dup_col(s, 1);
        a->c->taken_over = strcmp(TEXT(s, 2), "claimed") == 0;
        *abandoned = a->c->taken_over ? sqlite3_column_int64(s, 3) : 0;
        *holder = dup_col(s, 4);
    } else if (rc != SQLITE_DONE) {
        ocra_store_sqlerr(st, rc, err, "pick");
    }
    sqlite3_reset(s);
    a->found = rc == SQLITE_ROW;
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

static int
claim_tx(struct ocra_store *st, void *arg, struct ocra_err *err)
{
    struct claim_args *a = arg;
    int64_t now = a->o->now_ms ? a->o->now_ms : ocra_time_wall_ms();

    /* A superseded or orphaned event is moved on and the next one looked at, in the same
     * transaction. */
    for (;;) {
        char *holder = NULL, *newer = NULL, msg[160];
        int64_t abandoned = 0;
        bool moved = false;
        int ret = 0;

        if (pick(st, a, now, &abandoned, &holder, err) < 0 || !a->found) {
            free(holder);
            return a->found ? -1 : 0;
        }
        (void)snprintf(msg, sizeof(msg), "lease of %s expired", holder ? holder : "?");
        free(holder);
        if (abandoned) {
            sqlite3_stmt *s = prep(st, sql_abandon, err);
            int rc = 0;

            if (!s)
                return -1;
            rc |= sqlite3_bind_int64(s, 1, abandoned);
            rc |= sqlite3_bind_int64(s, 2, now);
            rc |= sqlite3_bind_text(s, 3, msg, -1, SQLITE_STATIC);
            if (ocra_store_exec_stmt(st, s, rc, err, "abandon") < 0)
                return -1;
        }
        /* the chain withdrew it: every stage is a boundary, the report stage included */
        if (a->o->superseded_stage &&
            orphan(st, a->o, a->c->event_id, a->c->stage, now, &moved, err) < 0)
            return -1;
        if (moved) {
            ocra_store_claim_fini(a->c);
            continue;
        }
        if (is_gated(a->o, a->c->stage) && find_newer(st, a->c->event_id, &newer, err) < 0)
            return -1;
        if (!newer)
            return take(st, a->o, a->c, now, err);
        ret = supersede(st, a->o, a->c->event_id, a->c->stage, newer, now, err);
        free(newer);
        ocra_store_claim_fini(a->c);
        if (ret < 0)
            return -1;
    }
}

int
ocra_store_stage_claim(struct ocra_store *st, const struct ocra_store_claim_opts *o,
                       struct ocra_store_claim *out, bool *found, struct ocra_err *err)
{
    struct ocra_store_claim c = {0};
    struct claim_args a = {.o = o, .c = &c};

    if (in_tx(st, claim_tx, &a, err) < 0) {
        ocra_store_claim_fini(&c);
        return ocra_err_wrap(err, "claim");
    }
    *found = a.found;
    if (a.found)
        *out = c;
    else
        ocra_store_claim_fini(&c);
    return 0;
}

/* ---- superseding queued events ------------------------------------------------------------ */

static const char sql_queued_rows[] =
    "SELECT event_id, stage FROM pipeline WHERE state = 'queued' ORDER BY seq";

struct queue_supersede_args {
    const struct ocra_store_claim_opts *o;
    char **moved; /* pairs: the event, then what moved it ("orphaned" or the newer event) */
    size_t n;
};

static int
queue_supersede_tx(struct ocra_store *st, void *arg, struct ocra_err *err)
{
    struct queue_supersede_args *a = arg;
    int64_t now = a->o->now_ms ? a->o->now_ms : ocra_time_wall_ms();
    sqlite3_stmt *s = prep(st, sql_queued_rows, err);
    char **rows = NULL;
    size_t n = 0;
    int rc, ret = -1;

    if (!s)
        return -1;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        rows = ocra_xrealloc(rows, (n + 2) * sizeof(*rows));
        rows[n++] = dup_col(s, 0);
        rows[n++] = dup_col(s, 1);
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) {
        ocra_store_sqlerr(st, rc, err, "queued rows");
        goto out;
    }
    for (size_t i = 0; i < n; i += 2) {
        char *newer = NULL;
        bool moved = false;

        if (orphan(st, a->o, rows[i], rows[i + 1], now, &moved, err) < 0)
            goto out;
        if (!moved && is_gated(a->o, rows[i + 1]) && find_newer(st, rows[i], &newer, err) < 0)
            goto out;
        if (newer && supersede(st, a->o, rows[i], rows[i + 1], newer, now, err) < 0) {
            free(newer);
            goto out;
        }
        if (moved || newer) {
            a->moved = ocra_xrealloc(a->moved, (a->n + 2) * sizeof(*a->moved));
            a->moved[a->n++] = ocra_xstrdup(rows[i]);
            a->moved[a->n++] = newer ? newer : ocra_xstrdup("orphaned");
        }
    }
    ret = 0;
out:
    for (size_t i = 0; i < n; i++)
        free(rows[i]);
    free(rows);
    return ret;
}

int
ocra_store_queue_supersede(struct ocra_store *st, const struct ocra_store_claim_opts *o,
                           char ***moved, size_t *n, struct ocra_err *err)
{
    struct queue_supersede_args a = {.o = o};

    *moved = NULL;
    *n = 0;
    if (!o->superseded_stage)
        return 0;
    if (in_tx(st, queue_supersede_tx, &a, err) < 0) {
        for (size_t i = 0; i < a.n; i++)
            free(a.moved[i]);
        free(a.moved);
        return ocra_err_wrap(err, "queue");
    }
    *moved = a.moved;
    *n = a.n / 2;
    return 0;
}

/* ---- takeover of a dead process's claims ------------------------------------------------- */

/* The owners (pid, start) of the claims in self's scope whose process is gone. */
struct gone {
    int64_t (*owner)[2];
    size_t n;
    const struct ocra_proc_id *self;
    size_t taken;
};

static int
find_gone(struct ocra_store *st, struct gone *g, struct ocra_err *err)
{
    sqlite3_stmt *s = prep(st, sql_owners, err);
    int rc;

    if (!s)
        return -1;
    sqlite3_bind_text(s, 1, g->self->scope, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t pid = sqlite3_column_int64(s, 0), start = sqlite3_column_int64(s, 1);

        if (!ocra_proc_gone(g->self, g->self->scope, pid, start))
            continue;
        g->owner = ocra_xrealloc(g->owner, (g->n + 1) * sizeof(*g->owner));
        g->owner[g->n][0] = pid;
        g->owner[g->n][1] = start;
        g->n++;
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE ? 0 : ocra_store_sqlerr(st, rc, err, "claim owners");
}

/* Ends claim (event_id) of a dead worker: its history row abandoned, the row ready again. */
static int
release_dead(struct ocra_store *st, const char *event_id, int64_t claim, const char *worker,
             int64_t pid, int64_t now, bool *released, struct ocra_err *err)
{
    sqlite3_stmt *s = prep(st, sql_abandon, err);
    char msg[320];
    int rc = 0;

    if (!s)
        return -1;
    (void)snprintf(msg, sizeof(msg),
                   "worker %s died (process %lld is gone from this machine): taken over at once",
                   worker ? worker : "?", (long long)pid);
    rc |= sqlite3_bind_int64(s, 1, claim);
    rc |= sqlite3_bind_int64(s, 2, now);
    rc |= sqlite3_bind_text(s, 3, msg, -1, SQLITE_STATIC);
    if (ocra_store_exec_stmt(st, s, rc, err, "abandon") < 0 || !(s = prep(st, sql_release, err)))
        return -1;
    rc = 0;
    rc |= sqlite3_bind_text(s, 1, event_id, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_int64(s, 2, claim);
    rc |= sqlite3_bind_int64(s, 3, now);
    if (ocra_store_exec_stmt(st, s, rc, err, "release") < 0)
        return -1;
    *released = sqlite3_changes(st->db) > 0;
    return 0;
}

/* The claims of one dead owner, released one by one (read first: no update while reading). */
static int
release_owner(struct ocra_store *st, struct gone *g, size_t k, int64_t now, struct ocra_err *err)
{
    sqlite3_stmt *s = prep(st, sql_owned, err);
    struct {
        char *event_id, *worker;
        int64_t claim;
    } *rows = NULL;
    size_t n = 0;
    int rc, ret = -1;

    if (!s)
        return -1;
    sqlite3_bind_text(s, 1, g->self->scope, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, g->owner[k][0]);
    sqlite3_bind_int64(s, 3, g->owner[k][1]);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        rows = ocra_xrealloc(rows, (n + 1) * sizeof(*rows));
        rows[n].event_id = dup_col(s, 0);
        rows[n].claim = sqlite3_column_int64(s, 1);
        rows[n].worker = dup_col(s, 2);
        n++;
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (rc != SQLITE_DONE) {
        ocra_store_sqlerr(st, rc, err, "claims of a dead process");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        bool released = false;

        if (release_dead(st, rows[i].event_id, rows[i].claim, rows[i].worker, g->owner[k][0], now,
                         &released, err) < 0)
            goto out;
        g->taken += released;
    }
    ret = 0;
out:
    for (size_t i = 0; i < n; i++) {
        free(rows[i].event_id);
        free(rows[i].worker);
    }
    free(rows);
    return ret;
}

static int
takeover_tx(struct ocra_store *st, void *arg, struct ocra_err *err)
{
    struct gone *g = arg;
    int64_t now = ocra_time_wall_ms();

    for (size_t k = 0; k < g->n; k++)
        if (release_owner(st, g, k, now, err) < 0)
            return -1;
    return 0;
}

int
ocra_store_stage_takeover(struct ocra_store *st, const struct ocra_proc_id *self, size_t *n,
                          struct ocra_err *err)
{
    struct gone g = {.self = self};
    int ret = -1;

    if (n)
        *n = 0;
    if (!self || !*self->scope)
        return 0;
    /* read outside a transaction: the write lock is taken only when a process has died */
    if (find_gone(st, &g, err) < 0)
        goto out;
    if (g.n > 0 && in_tx(st, takeover_tx, &g, err) < 0)
        goto out;
    if (n)
        *n = g.taken;
    ret = 0;
out:
    free(g.owner);
    return ret < 0 ? ocra_err_wrap(err, "take over the claims of dead processes") : 0;
}

int
ocra_store_stage_renew(struct ocra_store *st, const char *event_id, int64_t claim, int64_t lease_ms,
                       struct ocra_err *err)
{
    sqlite3_stmt *s = prep(st, sql_renew, err);
    int64_t now = ocra_time_wall_ms();
    int rc = 0;

    if (!s)
        return -1;
    rc |= sqlite3_bind_text(s, 1, event_id, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_int64(s, 2, claim);
    rc |= sqlite3_bind_int64(s, 3, now + lease_ms);
    rc |= sqlite3_bind_int64(s, 4, now);
    if (ocra_store_exec_stmt(st, s, rc, err, "renew") < 0)
        return ocra_err_wrap(err, "event %s", event_id);
    if (sqlite3_changes(st->db) == 0)
        return ocra_err_set(err, ESTALE, "event %s: claim %lld is no longer held", event_id,
                            (long long)claim);
    return 0;
}

/* ---- ending an attempt ------------------------------------------------------------------- */

struct end_args {
    const char *event_id;
    int64_t claim;
    const struct ocra_store_stage_end *e;
};

/* ESTALE unless the row is claimed under claim. */
static int
check_holder(struct ocra_store *st, const char *event_id, int64_t claim, struct ocra_err *err)
{
    sqlite3_stmt *s = prep(st, sql_holder, err);
    bool held = false;
    int rc;

    if (!s)
        return -1;
    sqlite3_bind_text(s, 1, event_id, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        held = sqlite3_column_int64(s, 0) == claim && strcmp(TEXT(s, 1), "claimed") == 0;
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return ocra_store_sqlerr(st, rc, err, "holder");
    if (!held)
        return ocra_err_set(err, ESTALE, "claim %lld is no longer held", (long long)claim);
    return 0;
}

static int
end_tx(struct ocra_store *st, void *arg, struct ocra_err *err)
{
    const struct end_args *a = arg;
    const struct ocra_store_stage_end *e = a->e;
    int64_t now = ocra_time_wall_ms();
    bool again = !strcmp(e->outcome, "waiting") || !strcmp(e->outcome, "queued");
    bool uncounted = again || !strcmp(e->outcome, "released") || !strcmp(e->outcome, "supervised");
    sqlite3_stmt *s;
    int rc = 0;

    if (check_holder(st, a->event_id, a->claim, err) < 0)
        return -1;
    if (again) {
        if (!(s = prep(st, sql_waiting_again, err)))
            return -1;
        rc |= sqlite3_bind_text(s, 1, a->event_id, -1, SQLITE_STATIC);
        rc |= sqlite3_bind_int64(s, 2, a->claim);
        rc |= sqlite3_bind_int64(s, 3, now);
        rc |= sqlite3_bind_text(s, 4, e->outcome, -1, SQLITE_STATIC);
        rc |= sqlite3_bind_text(s, 5, e->output, -1, SQLITE_STATIC);
        if (ocra_store_exec_stmt(st, s, rc, err, "history") < 0)
            return -1;
        if (sqlite3_changes(st->db) > 0 &&
            (!(s = prep(st, sql_history_drop, err)) ||
             ocra_store_exec_stmt(st, s, sqlite3_bind_int64(s, 1, a->claim), err, "history") < 0))
            return -1;
        rc = 0;
    }
    if (!(s = prep(st, sql_history_end, err)))
        return -1;
    rc |= sqlite3_bind_int64(s, 1, a->claim);
    rc |= sqlite3_bind_int64(s, 2, now);
    rc |= sqlite3_bind_text(s, 3, e->outcome, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 4, e->output, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 5, e->error, -1, SQLITE_STATIC);
    if (ocra_store_exec_stmt(st, s, rc, err, "history") < 0 || !(s = prep(st, sql_move, err)))
        return -1;
    rc = 0;
    rc |= sqlite3_bind_text(s, 1, a->event_id, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 2, e->status, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 3, e->stage, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_int(s, 4, e->finished);
    rc |= sqlite3_bind_text(s, 5, e->state ? e->state : "ready", -1, SQLITE_STATIC);
    rc |= sqlite3_bind_int64(s, 6, e->next_ms);
    rc |= sqlite3_bind_text(s, 7, e->error, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_int64(s, 8, now);
    rc |= sqlite3_bind_int(s, 9, uncounted);
    return ocra_store_exec_stmt(st, s, rc, err, "move");
}

int
ocra_store_stage_end(struct ocra_store *st, const char *event_id, int64_t claim,
                     const struct ocra_store_stage_end *e, struct ocra_err *err)
{
    struct end_args a = {event_id, claim, e};

    if (in_tx(st, end_tx, &a, err) < 0)
        return ocra_err_wrap(err, "event %s", event_id);
    return 0;
}

/* ---- orphaned events and reopened reports ------------------------------------------------ */

int
ocra_store_event_orphan(struct ocra_store *st, const char *id, const char *reason,
                        struct ocra_err *err)
{
    sqlite3_stmt *s = prep(st, sql_event_orphan, err);
    int rc = 0;

    if (!s)
        return ocra_err_wrap(err, "event %s", id);
    rc |= sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 2, reason, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_int64(s, 3, ocra_time_wall_ms());
    if (ocra_store_exec_stmt(st, s, rc, err, "orphan") < 0)
        return ocra_err_wrap(err, "event %s", id);
    if (sqlite3_changes(st->db) == 0)
        return ocra_err_set(err, ENOENT, "event %s: no such event", id);
    return 0;
}

int
ocra_store_event_orphaned(struct ocra_store *st, const char *id, bool *orphaned,
                          struct ocra_err *err)
{
    sqlite3_stmt *s = prep(st, sql_event_orphaned, err);
    int rc;

    if (!s)
        return ocra_err_wrap(err, "event %s", id);
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    *orphaned = rc == SQLITE_ROW && sqlite3_column_int(s, 0) != 0;
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return ocra_store_sqlerr(st, rc, err, "orphaned");
    return 0;
}

struct reopen_args {
    const char *event_id, *stage, *reason;
    bool *reopened;
};

static int
reopen_tx(struct ocra_store *st, void *arg, struct ocra_err *err)
{
    const struct reopen_args *a = arg;
    sqlite3_stmt *s = prep(st, sql_reopen, err);
    int64_t now = ocra_time_wall_ms();
    int rc = 0;

    if (!s)
        return -1;
    rc |= sqlite3_bind_text(s, 1, a->event_id, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 2, a->stage, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 3, a->reason, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_int64(s, 4, now);
    if (ocra_store_exec_stmt(st, s, rc, err, "reopen") < 0)
        return -1;
    *a->reopened = sqlite3_changes(st->db) > 0;
    if (!*a->reopened)
        return 0;
    return history_add(st, a->event_id, a->stage, 0, "watcher", now, "reopened", a->reason, NULL,
                       err);
}

int
ocra_store_stage_reopen(struct ocra_store *st, const char *event_id, const char *stage,
                        const char *reason, bool *reopened, struct ocra_err *err)
{
    struct reopen_args a = {event_id, stage, reason, reopened};

    *reopened = false;
    if (in_tx(st, reopen_tx, &a, err) < 0)
        return ocra_err_wrap(err, "reopen %s", event_id);
    return 0;
}

int
ocra_store_reports_list(struct ocra_store *st, const char *source, const char *stage,
                        int64_t min_block, ocra_store_report_fn *fn, void *arg,
                        struct ocra_err *err)
{
    sqlite3_stmt *s = prep(st, sql_reports, err);
    int rc;

    if (!s)
        return ocra_err_wrap(err, "reports of %s", source);
    sqlite3_bind_text(s, 1, source, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, min_block);
    sqlite3_bind_text(s, 3, stage, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        if (fn(TEXT(s, 0), TEXT(s, 1), arg) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    if (rc != SQLITE_DONE)
        ocra_store_sqlerr(st, rc, err, "reports");
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE ? 0 : ocra_err_wrap(err, "reports of %s", source);
}

/* ---- retry and wake ---------------------------------------------------------------------- */

static int
retry_tx(struct ocra_store *st, void *arg, struct ocra_err *err)
{
    const char *id = arg;
    sqlite3_stmt *s = prep(st, sql_retry_get, err);
    char *status = NULL, *state = NULL, *outcome = NULL, *failed = NULL, *prev = NULL;
    int rc, ret = -1;

    if (!s)
        return -1;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        status = dup_col(s, 0);
        state = dup_col(s, 1);
        outcome = dup_col(s, 2);
        failed = dup_col(s, 3);
        prev = dup_col(s, 4);
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (rc != SQLITE_ROW) {
        if (rc == SQLITE_DONE)
            ocra_err_set(err, ENOENT, "no such event in the pipeline");
        else
            ocra_store_sqlerr(st, rc, err, "retry");
        goto out;
    }
    if (strcmp(state, "dead") != 0) {
        /* A failed run or a rejection by the daemon goes back to the stage that decided it. */
        bool back =
            outcome && failed && (!strcmp(outcome, "failed") || !strcmp(outcome, "rejected"));

        if (!back || !strcmp(state, "claimed")) {
            ocra_err_set(err, EINVAL,
                         "status %s, state %s: only dead-lettered or failed events can be retried",
                         status, state);
            goto out;
        }
    } else {
        free(failed);
        free(prev);
        failed = prev = NULL; /* a dead letter resumes where it stopped */
    }
    if (!(s = prep(st, sql_retry, err)))
        goto out;
    rc = 0;
    rc |= sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 2, failed, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 3, prev, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_int64(s, 4, ocra_time_wall_ms());
    ret = ocra_store_exec_stmt(st, s, rc, err, "retry");
out:
    free(status);
    free(state);
    free(outcome);
    free(failed);
    free(prev);
    return ret;
}

int
ocra_store_stage_retry(struct ocra_store *st, const char *event_id, struct ocra_err *err)
{
    if (in_tx(st, retry_tx, (void *)(uintptr_t)event_id, err) < 0)
        return ocra_err_wrap(err, "retry %s", event_id);
    return 0;
}

int
ocra_store_stage_wake(struct ocra_store *st, size_t *n, struct ocra_err *err)
{
    sqlite3_stmt *s = prep(st, sql_wake, err);
    size_t total = 0;
    int k;

    if (!s)
        return -1;
    do { /* one transaction per chunk */
        int rc = sqlite3_bind_int64(s, 1, ocra_time_wall_ms()) | sqlite3_bind_int(s, 2, CHUNK);

        if (ocra_store_exec_stmt(st, s, rc, err, "wake") < 0)
            return -1;
        k = sqlite3_changes(st->db);
        total += (size_t)k;
    } while (k == CHUNK);
    if (n)
        *n = total;
    return 0;
}

int
ocra_store_stage_wake_event(struct ocra_store *st, const char *event_id, const char *state,
                            bool *woken, struct ocra_err *err)
{
    sqlite3_stmt *s = prep(st, sql_wake_event, err);
    int rc;

    if (!s)
        return -1;
    rc = sqlite3_bind_text(s, 1, event_id, -1, SQLITE_STATIC) |
         sqlite3_bind_text(s, 2, state, -1, SQLITE_STATIC) |
         sqlite3_bind_int64(s, 3, ocra_time_wall_ms());
    if (ocra_store_exec_stmt(st, s, rc, err, "wake") < 0)
        return -1;
    if (woken)
        *woken = sqlite3_changes(st->db) > 0;
    return 0;
}

int
ocra_store_stage_in_state(struct ocra_store *st, const char *state, char ***ids, size_t *n,
                          struct ocra_err *err)
{
    sqlite3_stmt *s = prep(st, sql_in_state, err);
    char **out = NULL;
    size_t k = 0;
    int rc;

    if (!s)
        return -1;
    if ((rc = sqlite3_bind_text(s, 1, state, -1, SQLITE_STATIC)) == SQLITE_OK)
        rc = sqlite3_step(s);
    for (; rc == SQLITE_ROW; rc = sqlite3_step(s)) {
        out = ocra_xrealloc(out, (k + 1) * sizeof(*out));
        out[k++] = ocra_xstrdup(TEXT(s, 0));
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (rc != SQLITE_DONE) {
        for (size_t i = 0; i < k; i++)
            free(out[i]);
        free(out);
        return ocra_store_sqlerr(st, rc, err, "rows in state");
    }
    *ids = out;
    *n = k;
    return 0;
}

int
ocra_store_event_refused(struct ocra_store *st, const char *id, const char *refusal,
                         struct ocra_err *err)
{
    sqlite3_stmt *s = prep(st, sql_event_refused, err);
    int rc = 0;

    if (!s)
        return ocra_err_wrap(err, "event %s", id);
    rc |= sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 2, refusal, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_int64(s, 3, ocra_time_wall_ms());
    if (ocra_store_exec_stmt(st, s, rc, err, "refusal") < 0)
        return ocra_err_wrap(err, "event %s", id);
    if (sqlite3_changes(st->db) == 0)
        return ocra_err_set(err, ENOENT, "event %s: no such event", id);
    return 0;
}

int
ocra_store_event_refusal(struct ocra_store *st, const char *id, char **refusal,
                         struct ocra_err *err)
{
    sqlite3_stmt *s = prep(st, sql_event_refusal, err);
    int rc;

    *refusal = NULL;
    if (!s)
        return ocra_err_wrap(err, "event %s", id);
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL)
        *refusal = ocra_xstrdup((const char *)sqlite3_column_text(s, 0));
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return ocra_store_sqlerr(st, rc, err, "refusal");
    return 0;
}

/* ---- the queue --------------------------------------------------------------------------- */

int
ocra_store_queue_list(struct ocra_store *st, ocra_store_queued_fn *fn, void *arg,
                      struct ocra_err *err)
{
    sqlite3_stmt *s = prep(st, sql_queued, err);
    int rc;

    if (!s)
        return ocra_err_wrap(err, "queue");
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const struct ocra_store_queued q = {
            .seq = sqlite3_column_int64(s, 0),
            .event_id = TEXT(s, 1),
            .model = TEXT(s, 2),
            .version = TEXT(s, 3),
            .stage = TEXT(s, 4),
            .reason = TEXT(s, 5),
            .source = TEXT(s, 6),
            .signer = TEXT(s, 7),
            .path = TEXT(s, 8),
            .spec = TEXT(s, 9),
            .queued_ms = sqlite3_column_int64(s, 10),
            .request = TEXT(s, 11),
        };

        if (fn(&q, arg) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_DONE)
        ocra_store_sqlerr(st, rc, err, "queue");
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : ocra_err_wrap(err, "queue");
}

int
ocra_store_queue_count(struct ocra_store *st, int64_t *n, struct ocra_err *err)
{
    sqlite3_stmt *s = prep(st, sql_queued_count, err);
    int rc;

    if (!s)
        return ocra_err_wrap(err, "queue");
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *n = sqlite3_column_int64(s, 0);
    else
        ocra_store_sqlerr(st, rc, err, "queue");
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? 0 : ocra_err_wrap(err, "queue");
}

/* ---- reading ----------------------------------------------------------------------------- */

/* Fills p with borrowed pointers into the row of s, PIPE_COLUMNS starting at column i. */
static void
pipeline_from_row(sqlite3_stmt *s, int i, struct ocra_store_pipeline *p)
{
    p->seq = sqlite3_column_int64(s, i);
    p->event_id = TEXT(s, i + 1);
    p->model = TEXT(s, i + 2);
    p->version = TEXT(s, i + 3);
    p->status = TEXT(s, i + 4);
    p->outcome = TEXT(s, i + 5);
    p->stage = TEXT(s, i + 6);
    p->state = TEXT(s, i + 7);
    p->attempts = sqlite3_column_int64(s, i + 8);
    p->next_ms = sqlite3_column_int64(s, i + 9);
    p->claim = sqlite3_column_int64(s, i + 10);
    p->claimed_by = TEXT(s, i + 11);
    p->lease_ms = sqlite3_column_int64(s, i + 12);
    p->last_error = TEXT(s, i + 13);
    p->failed_stage = TEXT(s, i + 14);
    p->created_ms = sqlite3_column_int64(s, i + 15);
    p->updated_ms = sqlite3_column_int64(s, i + 16);
    p->crashes = sqlite3_column_int64(s, i + 17);
}

static struct ocra_store_pipeline *
pipeline_dup(const struct ocra_store_pipeline *p)
{
#define OFF(m) offsetof(struct ocra_store_pipeline, m)
    static const size_t text[] = {OFF(event_id),   OFF(model),       OFF(version), OFF(status),
                                  OFF(outcome),    OFF(stage),       OFF(state),   OFF(claimed_by),
                                  OFF(last_error), OFF(failed_stage)};
#undef OFF

    return ocra_store_dup_flat(p, sizeof(*p), text, OCRA_ARRAY_LEN(text));
}

void
ocra_store_pipeline_free(struct ocra_store_pipeline *p)
{
    free(p); /* the strings live in the same allocation */
}

int
ocra_store_pipeline_get(struct ocra_store *st, const char *event_id,
                        struct ocra_store_pipeline **out, struct ocra_err *err)
{
    sqlite3_stmt *s = prep(st, sql_get, err);
    struct ocra_store_pipeline p;
    int rc;

    if (!s)
        return ocra_err_wrap(err, "event %s", event_id);
    sqlite3_bind_text(s, 1, event_id, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        pipeline_from_row(s, 0, &p);
        *out = pipeline_dup(&p);
    } else if (rc == SQLITE_DONE) {
        *out = NULL;
    } else {
        ocra_store_sqlerr(st, rc, err, "pipeline");
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return ocra_err_wrap(err, "event %s", event_id);
    return 0;
}

int
ocra_store_stage_outputs(struct ocra_store *st, const char *event_id, char **json,
                         struct ocra_err *err)
{
    sqlite3_stmt *s = prep(st, sql_outputs, err);
    int rc;

    if (!s)
        return ocra_err_wrap(err, "outputs %s", event_id);
    sqlite3_bind_text(s, 1, event_id, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *json = ocra_xstrdup(TEXT(s, 0) ? TEXT(s, 0) : "{}");
    else
        ocra_store_sqlerr(st, rc, err, "outputs");
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_ROW ? 0 : ocra_err_wrap(err, "event %s", event_id);
}

int
ocra_store_stage_history(struct ocra_store *st, const char *event_id, ocra_store_stage_fn *fn,
                         void *arg, struct ocra_err *err)
{
    sqlite3_stmt *s = prep(st, sql_history, err);
    struct ocra_store_stage_row r;
    int rc;

    if (!s)
        return ocra_err_wrap(err, "history %s", event_id);
    sqlite3_bind_text(s, 1, event_id, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        r = (struct ocra_store_stage_row){
            .id = sqlite3_column_int64(s, 0),
            .stage = TEXT(s, 1),
            .attempt = sqlite3_column_int64(s, 2),
            .worker = TEXT(s, 3),
            .started_ms = sqlite3_column_int64(s, 4),
            .finished_ms = sqlite3_column_int64(s, 5),
            .outcome = TEXT(s, 6),
            .output = TEXT(s, 7),
            .error = TEXT(s, 8),
        };
        if (fn(&r, arg) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_DONE)
        ocra_store_sqlerr(st, rc, err, "history");
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE ? 0 : ocra_err_wrap(err, "event %s", event_id);
}

int
ocra_store_event_current(struct ocra_store *st, const char *event_id, bool *current, char **newer,
                         struct ocra_err *err)
{
    struct ocra_store_pipeline *p = NULL;
    char *n = NULL;

    if (ocra_store_pipeline_get(st, event_id, &p, err) < 0)
        return -1;
    if (!p)
        return ocra_err_set(err, ENOENT, "event %s: not in the pipeline", event_id);
    ocra_store_pipeline_free(p);
    if (find_newer(st, event_id, &n, err) < 0)
        return ocra_err_wrap(err, "event %s", event_id);
    *current = n == NULL;
    if (newer)
        *newer = n;
    else
        free(n);
    return 0;
}

int
ocra_store_pipeline_list(struct ocra_store *st, const struct ocra_store_event_filter *filter,
                         ocra_store_pipeline_fn *fn, void *arg, struct ocra_err *err)
{
    static const struct ocra_store_event_filter all = {0};
    const struct ocra_store_event_filter *f = filter ? filter : &all;
    sqlite3_stmt *s = prep(st,
                           f->status ? (f->newest_first ? sql_status_desc : sql_status_asc)
                                     : (f->newest_first ? sql_list_desc : sql_list_asc),
                           err);
    struct ocra_store_event ev;
    struct ocra_store_pipeline p;
    int rc;

    if (!s)
        return ocra_err_wrap(err, "list events");
    sqlite3_bind_text(s, 1, f->source, -1, SQLITE_STATIC);
    if (f->status)
        sqlite3_bind_text(s, 2, f->status, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, f->limit > 0 ? f->limit : -1);
    sqlite3_bind_int64(s, 4, f->before_seq > 0 ? f->before_seq : INT64_MAX);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        ocra_store_event_from_row(s, &ev);
        if (sqlite3_column_int(s, 17))
            pipeline_from_row(s, 18, &p);
        if (fn(&ev, sqlite3_column_int(s, 17) ? &p : NULL, arg) != 0) {
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
ocra_store_pipeline_counts(struct ocra_store *st, ocra_store_pipeline_count_fn *fn, void *arg,
                           struct ocra_err *err)
{
    sqlite3_stmt *s = prep(st, sql_counts, err);
    int rc;

    if (!s)
        return ocra_err_wrap(err, "count the pipeline");
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        fn(TEXT(s, 0), TEXT(s, 1), TEXT(s, 2), sqlite3_column_int64(s, 3), arg);
    if (rc != SQLITE_DONE)
        ocra_store_sqlerr(st, rc, err, "count the pipeline");
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : ocra_err_wrap(err, "count the pipeline");
}
