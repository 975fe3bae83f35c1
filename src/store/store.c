/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store.c: the journal's connection, schema and transactions. Opening creates the file with
 * mode 0600, turns on WAL, foreign keys and a busy timeout, and applies the migrations below,
 * one transaction each, recording progress in PRAGMA user_version. Durability choice: WAL with
 * synchronous=NORMAL. A commit appends to the WAL without an fsync; the WAL is synced at each
 * checkpoint. The database stays consistent through a crash or power loss, but a power loss (not a
 * process crash) may lose the last few commits. That is safe here because every writer is
 * restartable: the watchers re-read chain blocks after their cursor, the insert is idempotent
 * by event id, and stage side effects are keyed by event id. FULL would fsync every commit,
 * about 3.5x slower for one-event transactions on the development machine (docs/BENCHMARKS.md).
 */
#include "store/store_int.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BUSY_TIMEOUT_MS 5000
#define TURNS_MAX 64 /* journal files open at once in this process */

/*
 * Schema migrations: migrations[i] takes user_version i to i + 1. Never edit one that has
 * shipped; append a new one and bump OCRA_STORE_SCHEMA_VERSION.
 *
 * events.seq aliases the rowid, so journal order survives VACUUM; id is the natural key that
 * every other table references. Status values follow the pipeline (DESIGN.md §1).
 */
static const char *const migrations[] = {
    /* 0 -> 1: the journal */
    "CREATE TABLE events ("
    "  seq INTEGER PRIMARY KEY,"
    "  id TEXT NOT NULL UNIQUE CHECK (length(id) BETWEEN 1 AND 512),"
    "  source TEXT NOT NULL,"
    "  chain TEXT NOT NULL,"
    "  block_number INTEGER NOT NULL CHECK (block_number >= 0),"
    "  block_hash TEXT CHECK (length(block_hash) <= 66),"
    "  tx_hash TEXT NOT NULL,"
    "  op_index INTEGER NOT NULL CHECK (op_index >= 0),"
    "  signer TEXT,"
    "  trusted INTEGER NOT NULL CHECK (trusted IN (0, 1)),"
    "  path TEXT,"
    "  spec TEXT CHECK (spec IS NULL OR status = 'rejected' OR json_valid(spec)),"
    "  status TEXT NOT NULL CHECK (status IN ('accepted', 'rejected', 'planned', 'built',"
    "    'pushed', 'allocated', 'running', 'done', 'failed')),"
    "  reason TEXT CHECK (status <> 'rejected' OR reason IS NOT NULL),"
    "  observed_ms INTEGER NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL);"
    "CREATE INDEX events_status ON events (status);"
    "CREATE INDEX events_source_block ON events (source, block_number);"
    "CREATE TABLE cursors ("
    "  source TEXT PRIMARY KEY NOT NULL,"
    "  block_number INTEGER NOT NULL CHECK (block_number >= 0),"
    "  block_hash TEXT NOT NULL DEFAULT '' CHECK (length(block_hash) <= 66),"
    "  updated_ms INTEGER NOT NULL);"
    "CREATE TABLE models ("
    "  source TEXT NOT NULL,"
    "  path TEXT NOT NULL,"
    "  value TEXT NOT NULL CHECK (json_valid(value)),"
    "  block_number INTEGER NOT NULL CHECK (block_number >= 0),"
    "  updated_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (source, path));"
    "CREATE TABLE stages ("
    "  event_id TEXT NOT NULL REFERENCES events (id),"
    "  stage TEXT NOT NULL CHECK (stage IN ('plan', 'build', 'push', 'allocate', 'run',"
    "    'report')),"
    "  state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'running', 'done',"
    "    'failed')),"
    "  attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),"
    "  worker TEXT,"
    "  output TEXT CHECK (output IS NULL OR json_valid(output)),"
    "  error TEXT,"
    "  created_ms INTEGER NOT NULL,"
    "  started_ms INTEGER,"
    "  finished_ms INTEGER,"
    "  updated_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (event_id, stage));"
    "CREATE INDEX stages_state ON stages (state, stage);"
    "CREATE TABLE images ("
    "  digest TEXT PRIMARY KEY NOT NULL CHECK (digest GLOB 'sha256:*'),"
    "  repo TEXT NOT NULL,"
    "  tags TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(tags)),"
    "  event_id TEXT REFERENCES events (id),"
    "  spec_hash TEXT,"
    "  toolchain_hash TEXT,"
    "  signature TEXT,"
    "  created_ms INTEGER NOT NULL);"
    "CREATE INDEX images_event ON images (event_id);"
    "CREATE INDEX images_toolchain ON images (toolchain_hash);"
    "CREATE TABLE runs ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  event_id TEXT NOT NULL REFERENCES events (id),"
    "  image_digest TEXT NOT NULL REFERENCES images (digest),"
    "  runner TEXT NOT NULL,"
    "  node TEXT,"
    "  gpus TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(gpus)),"
    "  state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'starting', 'running',"
    "    'succeeded', 'failed', 'stopped')),"
    "  result TEXT CHECK (result IS NULL OR json_valid(result)),"
    "  created_ms INTEGER NOT NULL,"
    "  started_ms INTEGER,"
    "  finished_ms INTEGER,"
    "  updated_ms INTEGER NOT NULL);"
    "CREATE INDEX runs_event ON runs (event_id);"
    "CREATE INDEX runs_state ON runs (state);",
    /* 1 -> 2: the daemon's stage machine (src/daemon) */
    "DROP TABLE stages;"
    "CREATE TABLE pipeline ("
    "  seq INTEGER PRIMARY KEY,"
    "  event_id TEXT NOT NULL UNIQUE REFERENCES events (id),"
    "  model TEXT NOT NULL,"
    "  version TEXT,"
    "  status TEXT NOT NULL CHECK (status IN ('detected', 'validated', 'rejected', 'planned',"
    "    'toolchain', 'pushed', 'signed', 'allocated', 'running', 'completed', 'failed',"
    "    'superseded', 'reported')),"
    "  outcome TEXT CHECK (outcome IS NULL OR outcome IN ('completed', 'failed', 'rejected',"
    "    'superseded')),"
    "  stage TEXT,"
    "  state TEXT NOT NULL CHECK (state IN ('ready', 'claimed', 'waiting', 'dead', 'done')),"
    "  attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),"
    "  next_ms INTEGER NOT NULL DEFAULT 0,"
    "  claim INTEGER,"
    "  claimed_by TEXT,"
    "  lease_ms INTEGER,"
    "  last_error TEXT,"
    "  failed_stage TEXT,"
    "  prev_status TEXT,"
    "  created_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL,"
    "  CHECK ((state = 'done') = (stage IS NULL)),"
    "  CHECK ((state = 'claimed') = (claim IS NOT NULL)));"
    "CREATE INDEX pipeline_ready ON pipeline (state, next_ms);"
    "CREATE INDEX pipeline_model ON pipeline (model, seq);"
    "CREATE TABLE stages ("
    "  id INTEGER PRIMARY KEY,"
    "  event_id TEXT NOT NULL REFERENCES events (id),"
    "  stage TEXT NOT NULL,"
    "  attempt INTEGER NOT NULL CHECK (attempt >= 0),"
    "  worker TEXT NOT NULL,"
    "  started_ms INTEGER NOT NULL,"
    "  finished_ms INTEGER,"
    "  outcome TEXT CHECK (outcome IS NULL OR outcome IN ('done', 'retry', 'dead', 'waiting',"
    "    'superseded', 'abandoned', 'released')),"
    "  output TEXT CHECK (output IS NULL OR json_valid(output)),"
    "  error TEXT);"
    "CREATE INDEX stages_event ON stages (event_id, id);",
    /* 2 -> 3: image records and provenance (src/build) */
    "ALTER TABLE images ADD COLUMN event TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE images ADD COLUMN registry TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE images ADD COLUMN record TEXT CHECK (record IS NULL OR json_valid(record));"
    "ALTER TABLE images ADD COLUMN build_log TEXT;"
    "CREATE INDEX images_event_any ON images (event);",
    /* 3 -> 4: inventory and allocations (src/sched) */
    "CREATE TABLE allocations ("
    "  id INTEGER PRIMARY KEY,"
    "  event_id TEXT NOT NULL REFERENCES events (id),"
    "  replica INTEGER NOT NULL DEFAULT 0 CHECK (replica >= 0),"
    "  node TEXT NOT NULL CHECK (length(node) BETWEEN 1 AND 127),"
    "  devices TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(devices) AND"
    "    json_type(devices) = 'array'),"
    "  gpu_milli INTEGER NOT NULL CHECK (gpu_milli BETWEEN 0 AND 1000),"
    "  gpu_mem_mib INTEGER NOT NULL CHECK (gpu_mem_mib >= 0),"
    "  cpu_milli INTEGER NOT NULL CHECK (cpu_milli >= 0),"
    "  ram_mib INTEGER NOT NULL CHECK (ram_mib >= 0),"
    "  state TEXT NOT NULL DEFAULT 'held' CHECK (state IN ('held', 'released')),"
    "  created_ms INTEGER NOT NULL,"
    "  released_ms INTEGER,"
    "  CHECK ((state = 'held') = (released_ms IS NULL)));"
    "CREATE UNIQUE INDEX allocations_held ON allocations (event_id, replica)"
    "  WHERE state = 'held';"
    "CREATE INDEX allocations_event ON allocations (event_id, replica);",
    /* 4 -> 5: events the chain withdrew (a replaced final block): the watcher marks them
     * orphaned, the stage machine ends them so. SQLite cannot change a CHECK: pipeline and
     * stages are rebuilt with the new values ('orphaned'; 'reopened' for a report whose
     * transaction a reorg dropped). */
    "ALTER TABLE events ADD COLUMN orphaned_ms INTEGER;"
    "CREATE TABLE pipeline_v5 ("
    "  seq INTEGER PRIMARY KEY,"
    "  event_id TEXT NOT NULL UNIQUE REFERENCES events (id),"
    "  model TEXT NOT NULL,"
    "  version TEXT,"
    "  status TEXT NOT NULL CHECK (status IN ('detected', 'validated', 'rejected', 'planned',"
    "    'toolchain', 'pushed', 'signed', 'allocated', 'running', 'completed', 'failed',"
    "    'superseded', 'orphaned', 'reported')),"
    "  outcome TEXT CHECK (outcome IS NULL OR outcome IN ('completed', 'failed', 'rejected',"
    "    'superseded', 'orphaned')),"
    "  stage TEXT,"
    "  state TEXT NOT NULL CHECK (state IN ('ready', 'claimed', 'waiting', 'dead', 'done')),"
    "  attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),"
    "  next_ms INTEGER NOT NULL DEFAULT 0,"
    "  claim INTEGER,"
    "  claimed_by TEXT,"
    "  lease_ms INTEGER,"
    "  last_error TEXT,"
    "  failed_stage TEXT,"
    "  prev_status TEXT,"
    "  created_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL,"
    "  CHECK ((state = 'done') = (stage IS NULL)),"
    "  CHECK ((state = 'claimed') = (claim IS NOT NULL)));"
    "INSERT INTO pipeline_v5 SELECT * FROM pipeline;"
    "DROP TABLE pipeline;"
    "ALTER TABLE pipeline_v5 RENAME TO pipeline;"
    "CREATE INDEX pipeline_ready ON pipeline (state, next_ms);"
    "CREATE INDEX pipeline_model ON pipeline (model, seq);"
    "CREATE TABLE stages_v5 ("
    "  id INTEGER PRIMARY KEY,"
    "  event_id TEXT NOT NULL REFERENCES events (id),"
    "  stage TEXT NOT NULL,"
    "  attempt INTEGER NOT NULL CHECK (attempt >= 0),"
    "  worker TEXT NOT NULL,"
    "  started_ms INTEGER NOT NULL,"
    "  finished_ms INTEGER,"
    "  outcome TEXT CHECK (outcome IS NULL OR outcome IN ('done', 'retry', 'dead', 'waiting',"
    "    'superseded', 'abandoned', 'released', 'orphaned', 'reopened')),"
    "  output TEXT CHECK (output IS NULL OR json_valid(output)),"
    "  error TEXT);"
    "INSERT INTO stages_v5 SELECT * FROM stages;"
    "DROP TABLE stages;"
    "ALTER TABLE stages_v5 RENAME TO stages;"
    "CREATE INDEX stages_event ON stages (event_id, id);",
    /* 5 -> 6: large journals. Counters kept by triggers, so that /metrics reads a few rows
     * instead of counting every event; they are keyed by the values themselves, so a new
     * status, state or outcome needs no change here. Indexes for the hot reads: the lists
     * filtered by a pipeline status, outcome or state (each index ends with the rowid, seq:
     * journal order) and the held allocations (the allocator, at every allocate stage). */
    "CREATE INDEX pipeline_state ON pipeline (state);"
    "CREATE INDEX pipeline_status ON pipeline (status);"
    "CREATE INDEX pipeline_outcome ON pipeline (outcome);"
    "CREATE INDEX allocations_state ON allocations (state);"
    "CREATE TABLE event_counts ("
    "  status TEXT NOT NULL,"
    "  chain TEXT NOT NULL,"
    "  n INTEGER NOT NULL CHECK (n >= 0),"
    "  PRIMARY KEY (status, chain)) WITHOUT ROWID;"
    "CREATE TABLE pipeline_counts ("
    "  state TEXT NOT NULL,"
    "  status TEXT NOT NULL,"
    "  outcome TEXT NOT NULL," /* '' while unknown */
    "  n INTEGER NOT NULL CHECK (n >= 0),"
    "  PRIMARY KEY (state, status, outcome)) WITHOUT ROWID;"
    "INSERT INTO event_counts SELECT status, chain, count(*) FROM events GROUP BY 1, 2;"
    "INSERT INTO pipeline_counts SELECT state, status, coalesce(outcome, ''), count(*)"
    "  FROM pipeline GROUP BY 1, 2, 3;"
    "CREATE TRIGGER event_counts_insert AFTER INSERT ON events BEGIN"
    "  INSERT INTO event_counts VALUES (new.status, new.chain, 1)"
    "   ON CONFLICT DO UPDATE SET n = n + 1;"
    " END;"
    "CREATE TRIGGER event_counts_update AFTER UPDATE OF status, chain ON events"
    " WHEN old.status IS NOT new.status OR old.chain IS NOT new.chain BEGIN"
    "  UPDATE event_counts SET n = n - 1 WHERE status = old.status AND chain = old.chain;"
    "  INSERT INTO event_counts VALUES (new.status, new.chain, 1)"
    "   ON CONFLICT DO UPDATE SET n = n + 1;"
    " END;"
    "CREATE TRIGGER event_counts_delete AFTER DELETE ON events BEGIN"
    "  UPDATE event_counts SET n = n - 1 WHERE status = old.status AND chain = old.chain;"
    " END;"
    "CREATE TRIGGER pipeline_counts_insert AFTER INSERT ON pipeline BEGIN"
    "  INSERT INTO pipeline_counts VALUES (new.state, new.status, coalesce(new.outcome, ''), 1)"
    "   ON CONFLICT DO UPDATE SET n = n + 1;"
    " END;"
    "CREATE TRIGGER pipeline_counts_update AFTER UPDATE OF state, status, outcome ON pipeline"
    " WHEN old.state IS NOT new.state OR old.status IS NOT new.status"
    "  OR old.outcome IS NOT new.outcome BEGIN"
    "  UPDATE pipeline_counts SET n = n - 1 WHERE state = old.state AND status = old.status"
    "   AND outcome = coalesce(old.outcome, '');"
    "  INSERT INTO pipeline_counts VALUES (new.state, new.status, coalesce(new.outcome, ''), 1)"
    "   ON CONFLICT DO UPDATE SET n = n + 1;"
    " END;"
    "CREATE TRIGGER pipeline_counts_delete AFTER DELETE ON pipeline BEGIN"
    "  UPDATE pipeline_counts SET n = n - 1 WHERE state = old.state AND status = old.status"
    "   AND outcome = coalesce(old.outcome, '');"
    " END;",
    /* 6 -> 7: held for another change of the same release (the journal's numbering follows
     * the order of the merges). */
    "",
    /* 7 -> 8: the scheduler queue. An event that finds no room waits in state 'queued' (its
     * history row's outcome 'queued') until the dispatcher places it. The CHECKs change:
     * pipeline and stages are rebuilt as in 4 -> 5, with their indexes and triggers. */
    "CREATE TABLE pipeline_v8 ("
    "  seq INTEGER PRIMARY KEY,"
    "  event_id TEXT NOT NULL UNIQUE REFERENCES events (id),"
    "  model TEXT NOT NULL,"
    "  version TEXT,"
    "  status TEXT NOT NULL CHECK (status IN ('detected', 'validated', 'rejected', 'planned',"
    "    'toolchain', 'pushed', 'signed', 'allocated', 'running', 'completed', 'failed',"
    "    'superseded', 'orphaned', 'reported')),"
    "  outcome TEXT CHECK (outcome IS NULL OR outcome IN ('completed', 'failed', 'rejected',"
    "    'superseded', 'orphaned')),"
    "  stage TEXT,"
    "  state TEXT NOT NULL CHECK (state IN ('ready', 'claimed', 'waiting', 'queued', 'dead',"
    "    'done')),"
    "  attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),"
    "  next_ms INTEGER NOT NULL DEFAULT 0,"
    "  claim INTEGER,"
    "  claimed_by TEXT,"
    "  lease_ms INTEGER,"
    "  last_error TEXT,"
    "  failed_stage TEXT,"
    "  prev_status TEXT,"
    "  created_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL,"
    "  CHECK ((state = 'done') = (stage IS NULL)),"
    "  CHECK ((state = 'claimed') = (claim IS NOT NULL)));"
    "INSERT INTO pipeline_v8 SELECT * FROM pipeline;"
    "DROP TABLE pipeline;"
    "ALTER TABLE pipeline_v8 RENAME TO pipeline;"
    "CREATE INDEX pipeline_ready ON pipeline (state, next_ms);"
    "CREATE INDEX pipeline_model ON pipeline (model, seq);"
    "CREATE INDEX pipeline_state ON pipeline (state);"
    "CREATE INDEX pipeline_status ON pipeline (status);"
    "CREATE INDEX pipeline_outcome ON pipeline (outcome);"
    "CREATE TRIGGER pipeline_counts_insert AFTER INSERT ON pipeline BEGIN"
    "  INSERT INTO pipeline_counts VALUES (new.state, new.status, coalesce(new.outcome, ''), 1)"
    "   ON CONFLICT DO UPDATE SET n = n + 1;"
    " END;"
    "CREATE TRIGGER pipeline_counts_update AFTER UPDATE OF state, status, outcome ON pipeline"
    " WHEN old.state IS NOT new.state OR old.status IS NOT new.status"
    "  OR old.outcome IS NOT new.outcome BEGIN"
    "  UPDATE pipeline_counts SET n = n - 1 WHERE state = old.state AND status = old.status"
    "   AND outcome = coalesce(old.outcome, '');"
    "  INSERT INTO pipeline_counts VALUES (new.state, new.status, coalesce(new.outcome, ''), 1)"
    "   ON CONFLICT DO UPDATE SET n = n + 1;"
    " END;"
    "CREATE TRIGGER pipeline_counts_delete AFTER DELETE ON pipeline BEGIN"
    "  UPDATE pipeline_counts SET n = n - 1 WHERE state = old.state AND status = old.status"
    "   AND outcome = coalesce(old.outcome, '');"
    " END;"
    "CREATE TABLE stages_v8 ("
    "  id INTEGER PRIMARY KEY,"
    "  event_id TEXT NOT NULL REFERENCES events (id),"
    "  stage TEXT NOT NULL,"
    "  attempt INTEGER NOT NULL CHECK (attempt >= 0),"
    "  worker TEXT NOT NULL,"
    "  started_ms INTEGER NOT NULL,"
    "  finished_ms INTEGER,"
    "  outcome TEXT CHECK (outcome IS NULL OR outcome IN ('done', 'retry', 'dead', 'waiting',"
    "    'queued', 'superseded', 'abandoned', 'released', 'orphaned', 'reopened')),"
    "  output TEXT CHECK (output IS NULL OR json_valid(output)),"
    "  error TEXT);"
    "INSERT INTO stages_v8 SELECT * FROM stages;"
    "DROP TABLE stages;"
    "ALTER TABLE stages_v8 RENAME TO stages;"
    "CREATE INDEX stages_event ON stages (event_id, id);",
};

_Static_assert(OCRA_ARRAY_LEN(migrations) == OCRA_STORE_SCHEMA_VERSION,
               "one migration per schema version");

#define EVENT_COLUMNS                                                                              \
    "seq, id, source, chain, block_number, block_hash, tx_hash, op_index, signer, trusted, path, " \
    "spec, status, reason, observed_ms, created_ms, updated_ms"

/* ?4 is the page's upper bound (INT64_MAX for the first page): a range on the rowid, so a page
 * deep in the journal starts where it is instead of skipping the rows above it. */
#define EVENT_LIST(order)                                                                          \
    "SELECT " EVENT_COLUMNS " FROM events WHERE (?1 IS NULL OR source = ?1) AND"                   \
    " (?2 IS NULL OR status = ?2) AND seq < ?4 ORDER BY seq " order " LIMIT ?3"

static const char *const stmt_sql[OCRA_STORE_STMT_COUNT] = {
    [OCRA_STORE_STMT_BEGIN] = "BEGIN IMMEDIATE",
    [OCRA_STORE_STMT_COMMIT] = "COMMIT",
    [OCRA_STORE_STMT_ROLLBACK] = "ROLLBACK",
    [OCRA_STORE_STMT_SAVEPOINT] = "SAVEPOINT ocra",
    [OCRA_STORE_STMT_RELEASE] = "RELEASE ocra",
    [OCRA_STORE_STMT_ROLLBACK_TO] = "ROLLBACK TO ocra",
    [OCRA_STORE_STMT_EVENT_INSERT] =
        "INSERT INTO events (id, source, chain, block_number, block_hash, tx_hash, op_index,"
        " signer, trusted, path, spec, status, reason, observed_ms, created_ms, updated_ms)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15)"
        " ON CONFLICT (id) DO NOTHING",
    [OCRA_STORE_STMT_EVENT_GET] = "SELECT " EVENT_COLUMNS " FROM events WHERE id = ?1",
    [OCRA_STORE_STMT_EVENT_COUNT] = "SELECT coalesce(sum(n), 0) FROM event_counts",
    [OCRA_STORE_STMT_EVENT_STATUS] =
        "UPDATE events SET status = ?2, reason = ?3, updated_ms = ?4 WHERE id = ?1",
    [OCRA_STORE_STMT_EVENT_LIST_ASC] = EVENT_LIST("ASC"),
    [OCRA_STORE_STMT_EVENT_LIST_DESC] = EVENT_LIST("DESC"),
    [OCRA_STORE_STMT_CURSOR_PUT] =
        "INSERT INTO cursors (source, block_number, block_hash, updated_ms)"
        " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (source) DO UPDATE SET"
        " block_number = excluded.block_number, block_hash = excluded.block_hash,"
        " updated_ms = excluded.updated_ms",
    [OCRA_STORE_STMT_CURSOR_GET] = "SELECT block_number, block_hash FROM cursors WHERE source = ?1",
    [OCRA_STORE_STMT_MODEL_PUT] =
        "INSERT INTO models (source, path, value, block_number, updated_ms)"
        " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (source, path) DO UPDATE SET"
        " value = excluded.value, block_number = excluded.block_number,"
        " updated_ms = excluded.updated_ms",
    [OCRA_STORE_STMT_MODEL_DEL] = "DELETE FROM models WHERE source = ?1 AND path = ?2",
    [OCRA_STORE_STMT_MODEL_GET] =
        "SELECT value, block_number FROM models WHERE source = ?1 AND path = ?2",
};

/* ---- turns: the writers of one journal in this process ----------------------------------- */

/*
 * The write transactions of a journal's connections within this process take turns in the
 * order they asked: a connection waits here, woken when its turn comes, instead of in SQLite's
 * busy handler, which polls with sleeps of up to 100 ms and is beaten to the lock by whoever
 * runs: a writer that commits and begins again at once (an intake in chunks, a worker ending
 * one stage and claiming the next) kept the others out past their busy timeout ("database is
 * locked"). Another process's writers still meet ours in SQLite's lock and busy timeout.
 */
struct turn_waiter {
    struct turn_waiter *next;
    bool go; /* the turn was handed over */
};

struct ocra_store_turns {
    dev_t dev;
    ino_t ino;
    int refs;
    bool held;
    struct turn_waiter *head, *tail; /* in arrival order */
    pthread_cond_t cv;
};

static pthread_mutex_t turns_mu = PTHREAD_MUTEX_INITIALIZER; /* guards every turns entry */
static struct ocra_store_turns turns_tab[TURNS_MAX];

/* The turns of the database file st has open (registered, refs + 1); NULL for a database
 * without a file (in memory, temporary) or when the table is full (SQLite's lock alone then). */
static struct ocra_store_turns *
turns_get(struct ocra_store *st)
{
    const char *file = sqlite3_db_filename(st->db, "main");
    struct ocra_store_turns *t = NULL;
    struct stat sb;

    if (!file || !*file || stat(file, &sb) < 0)
        return NULL;
    pthread_mutex_lock(&turns_mu);
    for (size_t i = 0; i < TURNS_MAX && !t; i++)
        if (turns_tab[i].refs && turns_tab[i].dev == sb.st_dev && turns_tab[i].ino == sb.st_ino)
            t = &turns_tab[i];
    for (size_t i = 0; i < TURNS_MAX && !t; i++)
        if (!turns_tab[i].refs) {
            t = &turns_tab[i];
            *t = (struct ocra_store_turns){.dev = sb.st_dev, .ino = sb.st_ino};
            pthread_cond_init(&t->cv, NULL);
        }
    if (t)
        t->refs++;
    pthread_mutex_unlock(&turns_mu);
    return t;
}

static void
turns_put(struct ocra_store_turns *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&turns_mu);
    if (--t->refs == 0)
        pthread_cond_destroy(&t->cv);
    pthread_mutex_unlock(&turns_mu);
}

/* Waits for the turn, at most the busy timeout (EAGAIN, as SQLite's lock would say). */
static int
turn_take(struct ocra_store_turns *t, struct ocra_err *err)
{
    struct turn_waiter me = {0};
    struct timespec ts;
    int rc = 0;

    if (!t)
        return 0;
    pthread_mutex_lock(&turns_mu);
    if (!t->held && !t->head) {
        t->held = true;
        pthread_mutex_unlock(&turns_mu);
        return 0;
    }
    if (t->tail)
        t->tail->next = &me;
    else
        t->head = &me;
    t->tail = &me;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += BUSY_TIMEOUT_MS / 1000;
    while (!me.go && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&t->cv, &turns_mu, &ts);
    if (!me.go) { /* gave up: leave the queue */
        struct turn_waiter **p = &t->head, *prev = NULL;

        while (*p != &me) {
            prev = *p;
            p = &(*p)->next;
        }
        *p = me.next;
        if (t->tail == &me)
            t->tail = prev;
    }
    pthread_mutex_unlock(&turns_mu);
    if (!me.go)
        return ocra_err_set(err, EAGAIN, "database is locked (by this process's other writers)");
    return 0;
}

/* Hands the turn to the first waiter, if any. */
static void
turn_give(struct ocra_store_turns *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&turns_mu);
    if (t->head) {
        struct turn_waiter *w = t->head;

        t->head = w->next;
        if (!t->head)
            t->tail = NULL;
        w->go = true; /* held passes to it */
        pthread_cond_broadcast(&t->cv);
    } else {
        t->held = false;
    }
    pthread_mutex_unlock(&turns_mu);
}

/* ---- errors and statements --------------------------------------------------------------- */

static int
errno_of(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return EAGAIN;
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
        return EINVAL;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return EPROTO;
    case SQLITE_FULL:
        return ENOSPC;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return EACCES;
    case SQLITE_NOMEM:
        return ENOMEM;
    default:
        return EIO;
    }
}

int
ocra_store_sqlerr(struct ocra_store *st, int rc, struct ocra_err *err, const char *what)
{
    const char *msg = st && st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc);

    return ocra_err_set(err, errno_of(rc), "%s: %s", what, msg);
}

sqlite3_stmt *
ocra_store_stmt(struct ocra_store *st, enum ocra_store_stmt_id id, struct ocra_err *err)
{
    int rc;

    assert(id < OCRA_STORE_STMT_COUNT);
    if (st->stmts[id])
        return st->stmts[id];
    rc = sqlite3_prepare_v3(st->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &st->stmts[id],
                            NULL);
    if (rc != SQLITE_OK) {
        ocra_store_sqlerr(st, rc, err, "prepare");
        return NULL;
    }
    return st->stmts[id];
}

int
ocra_store_exec_stmt(struct ocra_store *st, sqlite3_stmt *stmt, int bind_rc, struct ocra_err *err,
                     const char *what)
{
    /* a write outside a transaction is a transaction of its own: it takes its turn too */
    bool turn = bind_rc == SQLITE_OK && st->tx_depth == 0 && !sqlite3_stmt_readonly(stmt);
    int rc;

    if (turn && turn_take(st->turns, err) < 0) {
        sqlite3_reset(stmt);
        sqlite3_clear_bindings(stmt);
        return ocra_err_wrap(err, "%s", what);
    }
    rc = bind_rc == SQLITE_OK ? sqlite3_step(stmt) : bind_rc;
    if (turn)
        turn_give(st->turns);

    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        ocra_store_sqlerr(st, rc, err, what);
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt); /* bound text is SQLITE_STATIC: drop the borrowed pointers */
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -1;
}

sqlite3_stmt *
ocra_store_stmt_sql(struct ocra_store *st, const char *sql, struct ocra_err *err)
{
    size_t i;
    int rc;

    for (i = 0; i < OCRA_ARRAY_LEN(st->more) && st->more[i].sql; i++)
        if (st->more[i].sql == sql)
            return st->more[i].stmt;
    if (i == OCRA_ARRAY_LEN(st->more)) {
        ocra_err_set(err, ENOMEM, "prepare: more than %zu cached statements", i);
        return NULL;
    }
    rc = sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st->more[i].stmt, NULL);
    if (rc != SQLITE_OK) {
        ocra_store_sqlerr(st, rc, err, "prepare");
        return NULL;
    }
    st->more[i].sql = sql;
    return st->more[i].stmt;
}

/* Runs a transaction-control statement (never a turn of its own: begin and end manage it). */
static int
run(struct ocra_store *st, enum ocra_store_stmt_id id, struct ocra_err *err)
{
    sqlite3_stmt *stmt = ocra_store_stmt(st, id, err);
    int rc;

    if (!stmt)
        return -1;
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        ocra_store_sqlerr(st, rc, err, stmt_sql[id]);
    sqlite3_reset(stmt);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -1;
}

/* ---- transactions ------------------------------------------------------------------------ */

int
ocra_store_begin(struct ocra_store *st, struct ocra_err *err)
{
    /* IMMEDIATE takes the write lock up front, so the busy timeout applies to it and a
     * transaction never fails halfway through with a lock upgrade it cannot get. */
    if (st->tx_depth == 0 && turn_take(st->turns, err) < 0)
        return ocra_err_wrap(err, "BEGIN IMMEDIATE");
    if (run(st, st->tx_depth == 0 ? OCRA_STORE_STMT_BEGIN : OCRA_STORE_STMT_SAVEPOINT, err) < 0) {
        if (st->tx_depth == 0)
            turn_give(st->turns);
        return -1;
    }
    st->tx_depth++;
    return 0;
}

void
ocra_store_rollback(struct ocra_store *st)
{
    assert(st->tx_depth > 0);
    if (st->tx_depth == 1) {
        /* SQLite may already have rolled back on its own (e.g. after SQLITE_FULL). */
        if (!sqlite3_get_autocommit(st->db))
            (void)run(st, OCRA_STORE_STMT_ROLLBACK, NULL);
        turn_give(st->turns);
    } else if (!sqlite3_get_autocommit(st->db)) {
        (void)run(st, OCRA_STORE_STMT_ROLLBACK_TO, NULL);
        (void)run(st, OCRA_STORE_STMT_RELEASE, NULL);
    }
    st->tx_depth--;
}

int
ocra_store_commit(struct ocra_store *st, struct ocra_err *err)
{
    assert(st->tx_depth > 0);
    if (run(st, st->tx_depth == 1 ? OCRA_STORE_STMT_COMMIT : OCRA_STORE_STMT_RELEASE, err) < 0) {
        ocra_store_rollback(st);
        return -1;
    }
    if (st->tx_depth == 1)
        turn_give(st->turns);
    st->tx_depth--;
    return 0;
}

/* ---- open, migrate, close ---------------------------------------------------------------- */

/* Creates the file with mode 0600 before SQLite does (it would use 0644); the -wal and -shm
 * files SQLite makes later copy the database file's mode. An existing file is never opened
 * here: closing any descriptor of it would drop every POSIX lock this process holds on it,
 * those of the other connections (the daemon's threads) too, and another process would then
 * take the WAL for orphaned, checkpoint it and delete it under them. */
static int
create_private(const char *path, struct ocra_err *err)
{
    int fd;

    if (path[0] == '\0' || path[0] == ':' || strncmp(path, "file:", 5) == 0)
        return 0; /* temporary, in-memory or URI database: nothing to create */
    if (access(path, F_OK) == 0)
        return 0;
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST)
        return ocra_err_sys(err, "create");
    ocra_fd_close(fd);
    return 0;
}

static int
configure(struct ocra_store *st, struct ocra_err *err)
{
    sqlite3_stmt *stmt = NULL;
    const char *mode;
    int rc, ret = -1;

    sqlite3_busy_timeout(st->db, BUSY_TIMEOUT_MS);
    rc = sqlite3_exec(st->db, "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL", NULL, NULL,
                      NULL);
    if (rc != SQLITE_OK)
        return ocra_store_sqlerr(st, rc, err, "pragma");
    rc = sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &stmt, NULL);
    /* Turning a new journal to WAL takes an exclusive lock, and the switch can fail with
     * SQLITE_BUSY in spite of the busy timeout when another process opens the same new file at
     * that moment (seen in CI: `ocra events` polling while the daemon created its journal).
     * Try again, for as long as the busy timeout. */
    for (int64_t waited = 0; rc == SQLITE_OK;) {
        rc = sqlite3_step(stmt);
        if (((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED) ||
            waited >= BUSY_TIMEOUT_MS)
            break;
        sqlite3_reset(stmt);
        ocra_sleep_ms(20);
        waited += 20;
        rc = SQLITE_OK;
    }
    if (rc != SQLITE_ROW) {
        ocra_store_sqlerr(st, rc, err, "journal_mode");
        goto out;
    }
    mode = (const char *)sqlite3_column_text(stmt, 0);
    if (!mode || (strcmp(mode, "wal") != 0 && strcmp(mode, "memory") != 0)) {
        ocra_err_set(err, EIO, "journal_mode: cannot enable WAL (got %s)", mode ? mode : "?");
        goto out;
    }
    ret = 0;
out:
    sqlite3_finalize(stmt);
    return ret;
}

static int
read_version(struct ocra_store *st, struct ocra_err *err)
{
    sqlite3_stmt *stmt = NULL;
    int rc, v = -1;

    rc = sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &stmt, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        v = sqlite3_column_int(stmt, 0);
    else
        ocra_store_sqlerr(st, rc, err, "user_version");
    sqlite3_finalize(stmt);
    return v;
}

static int
check_version(int v, struct ocra_err *err)
{
    if (v > OCRA_STORE_SCHEMA_VERSION || v < 0)
        return ocra_err_set(err, EPROTO,
                            "schema version %d is newer than this ocra understands (%d); "
                            "use a newer ocra or another journal",
                            v, OCRA_STORE_SCHEMA_VERSION);
    return 0;
}

/* Applies migrations[v] and records v + 1, inside the caller's transaction. */
static int
apply(struct ocra_store *st, int v, struct ocra_err *err)
{
    char sql[64];
    int rc;

    rc = sqlite3_exec(st->db, migrations[v], NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return ocra_store_sqlerr(st, rc, err, "migrate");
    (void)snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1); /* cannot be bound */
    rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return ocra_store_sqlerr(st, rc, err, "migrate");
    return 0;
}

static int
migrate(struct ocra_store *st, struct ocra_err *err)
{
    int v = read_version(st, err);

    if (v < 0 || check_version(v, err) < 0)
        return -1;
    while (v < OCRA_STORE_SCHEMA_VERSION) {
        if (ocra_store_begin(st, err) < 0)
            return -1;
        /* Another process may have migrated while we waited for the write lock. */
        v = read_version(st, err);
        if (v < 0 || check_version(v, err) < 0 ||
            (v < OCRA_STORE_SCHEMA_VERSION && apply(st, v, err) < 0)) {
            ocra_store_rollback(st);
            return ocra_err_wrap(err, "schema version %d", v);
        }
        if (ocra_store_commit(st, err) < 0)
            return -1;
        if (v < OCRA_STORE_SCHEMA_VERSION)
            v++;
    }
    return 0;
}

int
ocra_store_open(const char *path, struct ocra_store **out, struct ocra_err *err)
{
    const int flags =
        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
    struct ocra_store *st = NULL;
    int rc, ret = -1;

    if (create_private(path, err) < 0)
        goto out;
    st = ocra_xcalloc(1, sizeof(*st));
    rc = sqlite3_open_v2(path, &st->db, flags, NULL);
    if (rc != SQLITE_OK) {
        ocra_store_sqlerr(st, rc, err, "open");
        goto out;
    }
    st->turns = turns_get(st);
    if (configure(st, err) < 0 || migrate(st, err) < 0)
        goto out;
    *out = st;
    st = NULL;
    ret = 0;
out:
    if (ret < 0)
        ocra_err_wrap(err, "journal %s", path);
    ocra_store_close(st);
    return ret;
}

void
ocra_store_close(struct ocra_store *st)
{
    if (!st)
        return;
    while (st->tx_depth > 0)
        ocra_store_rollback(st);
    for (size_t i = 0; i < OCRA_ARRAY_LEN(st->stmts); i++)
        sqlite3_finalize(st->stmts[i]);
    for (size_t i = 0; i < OCRA_ARRAY_LEN(st->more); i++)
        sqlite3_finalize(st->more[i].stmt);
    sqlite3_close(st->db);
    turns_put(st->turns);
    free(st);
}

int
ocra_store_schema_version(struct ocra_store *st)
{
    return read_version(st, NULL);
}
