/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_test.c: unit tests of the journal on real SQLite files in a fresh directory under
 * /tmp: idempotent appends across a restart, batch atomicity, migrations, WAL and the keys of
 * the later stages' tables (checked through a second, raw connection), event status, listing
 * and models.
 */
#include "store/store.h"
#include "ocra_test.h"
#include "store/store_int.h" /* the connection's statements: their plans and VM steps */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define N_EVENTS 1000

static const char spec_json[] = "{\"modelVersion\":\"1.2.0\",\"name\":\"sentiment-bert\","
                                "\"toolsAndLibraries\":{\"PyTorch\":\"2.1.0\"}}";

struct tmpdb {
    char dir[64];
    char path[96];
};

static int
tmpdb_init(struct tmpdb *t)
{
    (void)snprintf(t->dir, sizeof(t->dir), "/tmp/ocra-store-test-XXXXXX");
    if (!mkdtemp(t->dir))
        return -1;
    (void)snprintf(t->path, sizeof(t->path), "%s/journal.db", t->dir);
    return 0;
}

static void
tmpdb_fini(struct tmpdb *t)
{
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
    char p[128];

    for (size_t i = 0; i < OCRA_ARRAY_LEN(suffix); i++) {
        (void)snprintf(p, sizeof(p), "%s%s", t->path, suffix[i]);
        (void)unlink(p);
    }
    (void)rmdir(t->dir);
}

/* Storage for N_EVENTS synthetic AIN events: event i sits in block 100 + i / 3. */
struct fixture {
    char id[N_EVENTS][96];
    char tx[N_EVENTS][67];
    struct ocra_store_event ev[N_EVENTS];
};

static struct fixture fx;

static void
fixture_init(void)
{
    for (int i = 0; i < N_EVENTS; i++) {
        (void)snprintf(fx.tx[i], sizeof(fx.tx[i]), "0x%064x", i);
        (void)snprintf(fx.id[i], sizeof(fx.id[i]), "ain:0:0x%064x:%d", i, i % 3);
        fx.ev[i] = (struct ocra_store_event){
            .id = fx.id[i],
            .chain = "ain:0",
            .block_number = 100 + i / 3,
            .tx_hash = fx.tx[i],
            .op_index = i % 3,
            .signer = "0x09a0d53fdf1c36a131938eb379b98910e55eefe1",
            .trusted = true,
            .path = "/apps/ocra/models/sentiment-bert",
            .spec = spec_json,
        };
    }
}

static struct ocra_store_cursor
cursor_at(int64_t block)
{
    struct ocra_store_cursor c = {.block_number = block};

    (void)snprintf(c.block_hash, sizeof(c.block_hash), "0x%064" PRIx64, (uint64_t)block);
    return c;
}

/* Opens the journal, reporting why when it cannot. */
static struct ocra_store *
open_db(const char *path)
{
    struct ocra_err err = {0};
    struct ocra_store *st = NULL;

    if (ocra_store_open(path, &st, &err) < 0)
        fprintf(stderr, "  open: %s\n", err.msg);
    CHECK(st != NULL);
    return st;
}

static int64_t
count_events(struct ocra_store *st)
{
    struct ocra_err err = {0};
    int64_t n = -1;

    CHECK(ocra_store_event_count(st, &n, &err) == 0);
    return n;
}

/* Appends all fixture events in 10 batches of 100; returns how many were new. */
static size_t
append_all(struct ocra_store *st)
{
    struct ocra_err err = {0};
    size_t total = 0, ins;

    for (int b = 0; b < 10; b++) {
        struct ocra_store_cursor c = cursor_at(fx.ev[b * 100 + 99].block_number);

        ins = 9999;
        CHECK(ocra_store_append(st, "ain:0", &fx.ev[b * 100], 100, &c, &ins, &err) == 0);
        total += ins;
    }
    return total;
}

static void
test_events_are_idempotent_across_restart(void)
{
    struct ocra_err err = {0};
    struct ocra_store *st = NULL;
    struct ocra_store_cursor c = {0}, want;
    struct tmpdb t;
    bool found = false;

    fixture_init();
    want = cursor_at(fx.ev[N_EVENTS - 1].block_number);
    CHECK(tmpdb_init(&t) == 0);
    if (!(st = open_db(t.path)))
        goto out;
    CHECK_INT(append_all(st), N_EVENTS);
    ocra_store_close(st);
    /* the restart: a new connection replays the same blocks */
    if (!(st = open_db(t.path)))
        goto out;
    CHECK_INT(append_all(st), 0);
    CHECK_INT(count_events(st), N_EVENTS);
    ocra_store_close(st);
    if (!(st = open_db(t.path)))
        goto out;
    CHECK_INT(count_events(st), N_EVENTS);
    CHECK(ocra_store_cursor_get(st, "ain:0", &c, &found, &err) == 0);
    CHECK(found);
    CHECK_INT(c.block_number, want.block_number);
    CHECK_STR(c.block_hash, want.block_hash);
    CHECK(ocra_store_cursor_get(st, "evm:1", &c, &found, &err) == 0);
    CHECK(!found);
out:
    ocra_store_close(st);
    tmpdb_fini(&t);
}

static void
test_failed_batch_changes_nothing(void)
{
    struct ocra_err err = {0};
    struct ocra_store *st = NULL;
    struct ocra_store_event bad[3];
    struct ocra_store_cursor c = cursor_at(5), later = cursor_at(9), got;
    struct tmpdb t;
    bool found;

    fixture_init();
    CHECK(tmpdb_init(&t) == 0);
    if (!(st = open_db(t.path)))
        goto out;
    CHECK(ocra_store_append(st, "ain:0", fx.ev, 10, &c, NULL, &err) == 0);
    memcpy(bad, &fx.ev[10], sizeof(bad));
    bad[2].tx_hash = NULL; /* NOT NULL violation after two good rows */
    CHECK(ocra_store_append(st, "ain:0", bad, 3, &later, NULL, &err) == -1);
    CHECK_INT(err.code, EINVAL);
    CHECK(strstr(err.msg, "NOT NULL") != NULL);
    bad[2] = fx.ev[12];
    bad[2].status = "rejected"; /* CHECK: a rejection needs a reason */
    CHECK(ocra_store_append(st, "ain:0", bad, 3, &later, NULL, &err) == -1);
    CHECK_INT(err.code, EINVAL);
    bad[2] = fx.ev[12];
    bad[2].source = "evm:1"; /* not the batch's source */
    CHECK(ocra_store_append(st, "ain:0", bad, 3, &later, NULL, &err) == -1);
    CHECK_INT(err.code, EINVAL);
    CHECK_INT(count_events(st), 10);
    CHECK(ocra_store_cursor_get(st, "ain:0", &got, &found, &err) == 0);
    CHECK_INT(got.block_number, 5);
    /* the store is usable after the failures */
    bad[2] = fx.ev[12];
    CHECK(ocra_store_append(st, "ain:0", bad, 3, &later, NULL, &err) == 0);
    CHECK_INT(count_events(st), 13);
out:
    ocra_store_close(st);
    tmpdb_fini(&t);
}

static void
test_watcher_batch_with_models_is_one_transaction(void)
{
    struct ocra_err err = {0};
    struct ocra_store *st = NULL;
    struct ocra_store_cursor c = cursor_at(7), got;
    struct ocra_store_event bad;
    struct tmpdb t;
    char *value = NULL;
    bool found = true;

    fixture_init();
    CHECK(tmpdb_init(&t) == 0);
    if (!(st = open_db(t.path)))
        goto out;
    /* rolled back: neither model, events nor cursor */
    CHECK(ocra_store_begin(st, &err) == 0);
    CHECK(ocra_store_model_put(st, "ain:0", "/m/a", spec_json, 7, &err) == 0);
    CHECK(ocra_store_append(st, "ain:0", fx.ev, 3, &c, NULL, &err) == 0);
    ocra_store_rollback(st);
    CHECK(ocra_store_model_get(st, "ain:0", "/m/a", &value, NULL, &err) == 0);
    CHECK(value == NULL);
    CHECK_INT(count_events(st), 0);
    CHECK(ocra_store_cursor_get(st, "ain:0", &got, &found, &err) == 0);
    CHECK(!found);
    /* a failed append inside the batch undoes only itself; the commit keeps the rest */
    bad = fx.ev[3];
    bad.chain = NULL;
    CHECK(ocra_store_begin(st, &err) == 0);
    CHECK(ocra_store_model_put(st, "ain:0", "/m/a", spec_json, 7, &err) == 0);
    CHECK(ocra_store_append(st, "ain:0", &bad, 1, &c, NULL, &err) == -1);
    CHECK(ocra_store_append(st, "ain:0", fx.ev, 3, &c, NULL, &err) == 0);
    CHECK(ocra_store_commit(st, &err) == 0);
    CHECK(ocra_store_model_get(st, "ain:0", "/m/a", &value, NULL, &err) == 0);
    CHECK_STR(value, spec_json);
    free(value);
    CHECK_INT(count_events(st), 3);
    CHECK(ocra_store_cursor_get(st, "ain:0", &got, &found, &err) == 0);
    CHECK(found && got.block_number == 7);
out:
    ocra_store_close(st);
    tmpdb_fini(&t);
}

/* Runs one statement on a raw connection; returns the first column of the first row as int. */
static int
raw_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = NULL;
    int v = -1;

    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    return v;
}

static void
test_migrations_run_once_and_refuse_newer_schema(void)
{
    struct ocra_err err = {0};
    struct ocra_store *st = NULL;
    struct tmpdb t;
    struct stat sb;
    sqlite3 *db = NULL;
    char wal[128];

    fixture_init();
    CHECK(tmpdb_init(&t) == 0);
    if (!(st = open_db(t.path)))
        goto out;
    CHECK_INT(ocra_store_schema_version(st), OCRA_STORE_SCHEMA_VERSION);
    CHECK(ocra_store_append(st, "ain:0", fx.ev, 5, NULL, NULL, &err) == 0);
    (void)snprintf(wal, sizeof(wal), "%s-wal", t.path);
    CHECK(stat(wal, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    ocra_store_close(st);
    CHECK(stat(t.path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    /* reopening keeps the data (re-running the migration would fail on CREATE TABLE) */
    if (!(st = open_db(t.path)))
        goto out;
    CHECK_INT(ocra_store_schema_version(st), OCRA_STORE_SCHEMA_VERSION);
    CHECK_INT(count_events(st), 5);
    ocra_store_close(st);

    CHECK(sqlite3_open(t.path, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db, "PRAGMA user_version = 999", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    st = NULL;
    CHECK(ocra_store_open(t.path, &st, &err) == -1);
    CHECK(st == NULL);
    CHECK_INT(err.code, EPROTO);
    CHECK(strstr(err.msg, "schema version 999 is newer") != NULL);
out:
    ocra_store_close(st);
    tmpdb_fini(&t);
}

static void
test_wal_and_stage_tables_have_their_keys(void)
{
    static const struct {
        const char *table, *pk;
    } keys[] = {
        {"events", "seq"}, {"cursors", "source"}, {"models", "source,path"},
        {"stages", "id"},  {"pipeline", "seq"},   {"images", "digest"},
        {"runs", "id"},
    };
    struct ocra_err err = {0};
    struct ocra_store *st = NULL;
    struct tmpdb t;
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    char sql[320];

    fixture_init();
    CHECK(tmpdb_init(&t) == 0);
    if (!(st = open_db(t.path)))
        goto out;
    CHECK(ocra_store_append(st, "ain:0", fx.ev, 1, NULL, NULL, &err) == 0);
    CHECK(sqlite3_open(t.path, &db) == SQLITE_OK);
    CHECK(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL) == SQLITE_OK);
    CHECK(sqlite3_step(s) == SQLITE_ROW);
    CHECK_STR((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    for (size_t i = 0; i < OCRA_ARRAY_LEN(keys); i++) {
        (void)snprintf(sql, sizeof(sql),
                       "SELECT group_concat(name) = '%s' FROM (SELECT name FROM"
                       " pragma_table_info('%s') WHERE pk > 0 ORDER BY pk)",
                       keys[i].pk, keys[i].table);
        CHECK_INT(raw_int(db, sql), 1);
    }
    (void)snprintf(sql, sizeof(sql),
                   "INSERT INTO pipeline (seq, event_id, model, status, stage, state, created_ms,"
                   " updated_ms) VALUES (1, '%s', 'm', 'detected', 'validate', 'ready', 1, 1)",
                   fx.id[0]);
    CHECK(sqlite3_exec(db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL) == SQLITE_OK);
    CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
    CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_CONSTRAINT);
    /* a stage of an unknown event breaks the foreign key */
    CHECK(sqlite3_exec(db,
                       "INSERT INTO stages (event_id, stage, attempt, worker, started_ms)"
                       " VALUES ('ain:0:0x0:9', 'build', 1, 'w', 1)",
                       NULL, NULL, NULL) == SQLITE_CONSTRAINT);
    /* a claimed row without a claim breaks a check */
    CHECK(sqlite3_exec(db, "UPDATE pipeline SET state = 'claimed'", NULL, NULL, NULL) ==
          SQLITE_CONSTRAINT);
    CHECK_INT(raw_int(db, "SELECT count(*) FROM pipeline"), 1);
    sqlite3_close(db);
out:
    ocra_store_close(st);
    tmpdb_fini(&t);
}

static void
test_event_status_get_and_reason(void)
{
    struct ocra_err err = {0};
    struct ocra_store *st = NULL;
    struct ocra_store_event *ev = NULL;
    struct tmpdb t;

    fixture_init();
    CHECK(tmpdb_init(&t) == 0);
    if (!(st = open_db(t.path)))
        goto out;
    CHECK(ocra_store_append(st, "ain:0", fx.ev, 3, NULL, NULL, &err) == 0);
    CHECK(ocra_store_event_get(st, fx.id[1], &ev, &err) == 0);
    CHECK(ev != NULL);
    if (ev) {
        CHECK_STR(ev->id, fx.id[1]);
        CHECK_STR(ev->source, "ain:0");
        CHECK_STR(ev->status, "accepted");
        CHECK(ev->reason == NULL && ev->block_hash == NULL);
        CHECK_INT(ev->op_index, 1);
        CHECK(ev->trusted);
        CHECK_STR(ev->spec, spec_json);
        CHECK(ev->observed_ms > 0 && ev->created_ms == ev->updated_ms);
    }
    ocra_store_event_free(ev);
    CHECK(ocra_store_event_set_status(st, fx.id[1], "rejected", "modelVersion: not PEP 440",
                                      &err) == 0);
    CHECK(ocra_store_event_get(st, fx.id[1], &ev, &err) == 0 && ev != NULL);
    if (ev) {
        CHECK_STR(ev->status, "rejected");
        CHECK_STR(ev->reason, "modelVersion: not PEP 440");
    }
    ocra_store_event_free(ev);
    CHECK(ocra_store_event_set_status(st, fx.id[2], "rejected", NULL, &err) == -1);
    CHECK_INT(err.code, EINVAL);
    CHECK(ocra_store_event_set_status(st, fx.id[2], "bogus", NULL, &err) == -1);
    CHECK_INT(err.code, EINVAL);
    CHECK(ocra_store_event_set_status(st, "ain:0:0x0:9", "done", NULL, &err) == -1);
    CHECK_INT(err.code, ENOENT);
    CHECK(ocra_store_event_get(st, "ain:0:0x0:9", &ev, &err) == 0);
    CHECK(ev == NULL);
out:
    ocra_store_close(st);
    tmpdb_fini(&t);
}

struct collected {
    int n;
    char ids[4][96];
};

static int
collect(const struct ocra_store_event *ev, void *arg)
{
    struct collected *c = arg;

    (void)snprintf(c->ids[c->n], sizeof(c->ids[0]), "%s", ev->id);
    return ++c->n == (int)OCRA_ARRAY_LEN(c->ids); /* stop when full */
}

static void
test_event_list_orders_filters_and_limits(void)
{
    struct ocra_err err = {0};
    struct ocra_store *st = NULL;
    struct ocra_store_event_filter newest = {.newest_first = true, .limit = 2};
    struct ocra_store_event_filter rejected = {.status = "rejected"};
    struct ocra_store_event_filter other = {.source = "evm:1"};
    struct collected c = {0};
    struct tmpdb t;

    fixture_init();
    CHECK(tmpdb_init(&t) == 0);
    if (!(st = open_db(t.path)))
        goto out;
    CHECK(ocra_store_append(st, "ain:0", fx.ev, 6, NULL, NULL, &err) == 0);
    CHECK(ocra_store_event_set_status(st, fx.id[4], "rejected", "no", &err) == 0);
    CHECK(ocra_store_event_list(st, NULL, collect, &c, &err) == 0);
    CHECK_INT(c.n, 4); /* the callback stopped the listing */
    CHECK_STR(c.ids[0], fx.id[0]);
    CHECK_STR(c.ids[3], fx.id[3]);
    memset(&c, 0, sizeof(c));
    CHECK(ocra_store_event_list(st, &newest, collect, &c, &err) == 0);
    CHECK_INT(c.n, 2);
    CHECK_STR(c.ids[0], fx.id[5]);
    CHECK_STR(c.ids[1], fx.id[4]);
    memset(&c, 0, sizeof(c));
    CHECK(ocra_store_event_list(st, &rejected, collect, &c, &err) == 0);
    CHECK_INT(c.n, 1);
    CHECK_STR(c.ids[0], fx.id[4]);
    memset(&c, 0, sizeof(c));
    CHECK(ocra_store_event_list(st, &other, collect, &c, &err) == 0);
    CHECK_INT(c.n, 0);
out:
    ocra_store_close(st);
    tmpdb_fini(&t);
}

static int
collect_path(const char *path, void *arg)
{
    struct ocra_buf *b = arg;

    ocra_buf_printf(b, "%s;", path);
    return !strcmp(path, "/stop") ? 1 : 0;
}

/* The models below a path, in path order: "/m/a" is below "/m", "/ma" is not. */
static void
test_model_paths_below_a_prefix(void)
{
    static const char *const paths[] = {"/m/b", "/m", "/m/a/x", "/ma", "/m/a", "/n/a"};
    struct ocra_err err = {0};
    struct ocra_store *st = NULL;
    struct ocra_buf b;
    struct tmpdb t;

    ocra_buf_init(&b);
    fixture_init();
    CHECK(tmpdb_init(&t) == 0);
    if (!(st = open_db(t.path)))
        goto out;
    for (size_t i = 0; i < OCRA_ARRAY_LEN(paths); i++)
        CHECK(ocra_store_model_put(st, "ain:0", paths[i], "null", 1, &err) == 0);
    CHECK(ocra_store_model_put(st, "ain:1", "/m/c", "null", 1, &err) == 0);
    CHECK(ocra_store_model_paths(st, "ain:0", "/m", collect_path, &b, &err) == 0);
    CHECK_STR(b.data, "/m/a;/m/a/x;/m/b;");
    b.len = 0;
    CHECK(ocra_store_model_paths(st, "ain:0", "/m/", collect_path, &b, &err) == 0);
    CHECK_STR(b.data, "/m/a;/m/a/x;/m/b;");
    b.len = 0;
    CHECK(ocra_store_model_paths(st, "ain:0", "", collect_path, &b, &err) == 0);
    CHECK_STR(b.data, "/m;/m/a;/m/a/x;/m/b;/ma;/n/a;");
    b.len = 0;
    CHECK(ocra_store_model_put(st, "ain:0", "/stop", "null", 1, &err) == 0);
    CHECK(ocra_store_model_put(st, "ain:0", "/u", "null", 1, &err) == 0);
    CHECK(ocra_store_model_paths(st, "ain:0", "/", collect_path, &b, &err) == 0);
    CHECK_STR(b.data, "/m;/m/a;/m/a/x;/m/b;/ma;/n/a;/stop;"); /* a non-zero return stops */
out:
    ocra_buf_fini(&b);
    ocra_store_close(st);
    tmpdb_fini(&t);
}

static void
test_model_put_get_replace_remove(void)
{
    struct ocra_err err = {0};
    struct ocra_store *st = NULL;
    struct tmpdb t;
    char *value = NULL;
    int64_t block = 0;

    fixture_init();
    CHECK(tmpdb_init(&t) == 0);
    if (!(st = open_db(t.path)))
        goto out;
    CHECK(ocra_store_model_put(st, "ain:0", "/m/a", "{\"v\":1}", 10, &err) == 0);
    CHECK(ocra_store_model_put(st, "ain:0", "/m/a", "{\"v\":2}", 11, &err) == 0);
    CHECK(ocra_store_model_put(st, "ain:1", "/m/a", "{\"v\":3}", 12, &err) == 0);
    CHECK(ocra_store_model_get(st, "ain:0", "/m/a", &value, &block, &err) == 0);
    CHECK_STR(value, "{\"v\":2}");
    CHECK_INT(block, 11);
    free(value);
    CHECK(ocra_store_model_put(st, "ain:0", "/m/a", "{not json", 12, &err) == -1);
    CHECK_INT(err.code, EINVAL);
    CHECK(ocra_store_model_put(st, "ain:0", "/m/a", NULL, 13, &err) == 0);
    CHECK(ocra_store_model_get(st, "ain:0", "/m/a", &value, &block, &err) == 0);
    CHECK(value == NULL);
    CHECK(ocra_store_model_get(st, "ain:1", "/m/a", &value, NULL, &err) == 0);
    CHECK_STR(value, "{\"v\":3}");
    free(value);
out:
    ocra_store_close(st);
    tmpdb_fini(&t);
}

static void
test_open_fails_cleanly_on_a_non_database(void)
{
    struct ocra_err err = {0};
    struct ocra_store *st = NULL;
    struct tmpdb t;
    FILE *f;

    CHECK(tmpdb_init(&t) == 0);
    f = fopen(t.path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("this is not an SQLite database, but long enough to have a header....\n", f);
        fclose(f);
    }
    CHECK(ocra_store_open(t.path, &st, &err) == -1);
    CHECK(st == NULL);
    CHECK_INT(err.code, EPROTO);
    CHECK(strstr(err.msg, t.path) != NULL);
    tmpdb_fini(&t);
}

/* Opening a second connection in the same process must not drop the first one's locks: a
 * process that opens and closes the journal afterwards would take the WAL for orphaned and
 * delete it, and later commits would vanish. */
static void
test_second_connection_keeps_the_wal_alive(void)
{
    struct ocra_store *a = NULL, *b = NULL, *c = NULL;
    struct ocra_err err = {0};
    struct tmpdb t;
    char wal[128];
    int64_t n = 0;
    pid_t pid;
    int status = 0;

    fixture_init();
    CHECK(tmpdb_init(&t) == 0);
    if (!(a = open_db(t.path)))
        goto out;
    CHECK(ocra_store_append(a, "ain:0", fx.ev, 1, NULL, NULL, &err) == 0);
    if (!(b = open_db(t.path)))
        goto out;
    CHECK(ocra_store_event_count(b, &n, &err) == 0);
    pid = fork();
    if (pid == 0) { /* another process (a fresh one: no SQLite state inherited) reads */
        int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

        if (null >= 0)
            (void)dup2(null, 1);
        execlp("sqlite3", "sqlite3", t.path, "SELECT count(*) FROM events;", (char *)NULL);
        _exit(127);
    }
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
        ocra_store_close(b);
        ocra_store_close(a);
        tmpdb_fini(&t);
        OCRA_TEST_SKIP("the sqlite3 command-line tool is not installed");
    }
    (void)snprintf(wal, sizeof(wal), "%s-wal", t.path);
    CHECK(access(wal, F_OK) == 0); /* the other process left our WAL alone */
    CHECK(ocra_store_append(a, "ain:0", fx.ev + 1, 1, NULL, NULL, &err) == 0);
    if (!(c = open_db(t.path)))
        goto out;
    CHECK(ocra_store_event_count(c, &n, &err) == 0);
    CHECK_INT(n, 2);
out:
    ocra_store_close(c);
    ocra_store_close(b);
    ocra_store_close(a);
    tmpdb_fini(&t);
}

/* ---- the stage machine ------------------------------------------------------------------- */

static const struct ocra_store_claim_opts claim_w1 = {.worker = "w1", .lease_ms = 60000};

static bool
claim_one(struct ocra_store *st, const struct ocra_store_claim_opts *o, struct ocra_store_claim *c)
{
    struct ocra_err err = {0};
    bool found = false;

    if (ocra_store_stage_claim(st, o, c, &found, &err) < 0)
        fprintf(stderr, "  claim: %s\n", err.msg);
    return found;
}

static int
end_with(struct ocra_store *st, const struct ocra_store_claim *c, const char *outcome,
         const char *status, const char *stage, const char *state, struct ocra_err *err)
{
    struct ocra_store_stage_end e = {.outcome = outcome,
                                     .status = status,
                                     .stage = stage,
                                     .state = state,
                                     .finished = stage && !*stage,
                                     .next_ms = ocra_time_wall_ms()};

    if (e.finished)
        e.stage = NULL;
    if (!strcmp(outcome, "done"))
        e.output = "{\"n\":1}";
    else
        e.error = "boom";
    return ocra_store_stage_end(st, c->event_id, c->claim, &e, err);
}

static char *
pipe_field(struct ocra_store *st, const char *id, int which)
{
    struct ocra_store_pipeline *p = NULL;
    char *v = NULL;

    if (ocra_store_pipeline_get(st, id, &p, NULL) == 0 && p) {
        const char *f = which == 0 ? p->status : which == 1 ? p->state : p->stage;
        v = f ? ocra_xstrdup(f) : ocra_xstrdup("(null)");
    }
    ocra_store_pipeline_free(p);
    return v;
}

#define CHECK_PIPE(st, id, status, state, stage)                                                   \
    do {                                                                                           \
        char *a_ = pipe_field(st, id, 0), *b_ = pipe_field(st, id, 1),                             \
             *c_ = pipe_field(st, id, 2);                                                          \
        CHECK_STR(a_, status);                                                                     \
        CHECK_STR(b_, state);                                                                      \
        CHECK_STR(c_, stage);                                                                      \
        free(a_);                                                                                  \
        free(b_);                                                                                  \
        free(c_);                                                                                  \
    } while (0)

static void
test_stage_intake_claim_end_and_history(void)
{
    struct ocra_store_event evs[3];
    struct ocra_store_claim c = {0};
    struct ocra_err err = {0};
    struct ocra_store *st = NULL;
    char *json = NULL;
    size_t added = 0;
    struct tmpdb t;

    fixture_init();
    memcpy(evs, fx.ev, sizeof(evs));
    evs[1].status = "rejected";
    evs[1].reason = "signer not trusted";
    CHECK(tmpdb_init(&t) == 0);
    if (!(st = open_db(t.path)))
        goto out;
    CHECK(ocra_store_append(st, "ain:0", evs, 3, NULL, NULL, &err) == 0);
    CHECK(ocra_store_pipeline_intake(st, "validate", "report", &added, &err) == 0);
    CHECK_INT(added, 3);
    CHECK(ocra_store_pipeline_intake(st, "validate", "report", &added, &err) == 0);
    CHECK_INT(added, 0);
    CHECK_PIPE(st, fx.id[0], "detected", "ready", "validate");
    CHECK_PIPE(st, fx.id[1], "rejected", "ready", "report");

    /* journal order first; a claimed row is not claimed twice */
    CHECK(claim_one(st, &claim_w1, &c));
    CHECK_STR(c.event_id, fx.id[0]);
    CHECK_STR(c.stage, "validate");
    CHECK_INT(c.attempt, 1);
    CHECK_STR(c.version, "1.2.0");
    CHECK(end_with(st, &c, "done", "validated", "plan", "ready", &err) == 0);
    /* ending twice under the same claim is refused */
    CHECK(end_with(st, &c, "done", "validated", "plan", "ready", &err) == -1);
    CHECK_INT(err.code, ESTALE);
    ocra_store_claim_fini(&c);
    CHECK_PIPE(st, fx.id[0], "validated", "ready", "plan");

    CHECK(claim_one(st, &claim_w1, &c)); /* the rejected event, then event 2, then plan */
    CHECK_STR(c.event_id, fx.id[1]);
    CHECK(end_with(st, &c, "done", "reported", "", NULL, &err) == 0);
    ocra_store_claim_fini(&c);
    CHECK_PIPE(st, fx.id[1], "reported", "done", "(null)");

    CHECK(ocra_store_stage_outputs(st, fx.id[0], &json, &err) == 0);
    CHECK_STR(json, "{\"validate\":{\"n\":1}}");
    free(json);
out:
    ocra_store_close(st);
    tmpdb_fini(&t);
}

static void
test_stage_retry_backoff_dead_letter_and_ocra_retry(void)
{
    struct ocra_store_claim_opts later = claim_w1;
    struct ocra_store_claim c = {0};
    struct ocra_store_stage_end e = {0};
    struct ocra_err err = {0};
    struct ocra_store *st = NULL;
    struct tmpdb t;

    fixture_init();
    CHECK(tmpdb_init(&t) == 0);
    if (!(st = open_db(t.path)))
        goto out;
    CHECK(ocra_store_append(st, "ain:0", fx.ev, 2, NULL, NULL, &err) == 0);
    CHECK(ocra_store_pipeline_intake(st, "validate", "report", NULL, &err) == 0);
    CHECK(claim_one(st, &claim_w1, &c));
    e = (struct ocra_store_stage_end){.outcome = "retry",
                                      .error = "rpc down",
                                      .state = "ready",
                                      .next_ms = ocra_time_wall_ms() + 3600000};
    CHECK(ocra_store_stage_end(st, c.event_id, c.claim, &e, &err) == 0);
    ocra_store_claim_fini(&c);
    /* the backed-off event waits; the next one is not blocked */
    CHECK(claim_one(st, &claim_w1, &c));
    CHECK_STR(c.event_id, fx.id[1]);
    CHECK(end_with(st, &c, "done", "reported", "", NULL, &err) == 0);
    ocra_store_claim_fini(&c);
    CHECK(!claim_one(st, &claim_w1, &c));
    later.now_ms = ocra_time_wall_ms() + 3600001;
    later.lease_ms = 7200000;
    CHECK(claim_one(st, &later, &c));
    CHECK_STR(c.event_id, fx.id[0]);
    CHECK_INT(c.attempt, 2);
    CHECK_STR(c.last_error, "rpc down");
    CHECK(end_with(st, &c, "dead", NULL, NULL, "dead", &err) == 0);
    ocra_store_claim_fini(&c);
    CHECK_PIPE(st, fx.id[0], "detected", "dead", "validate");

    CHECK(ocra_store_stage_retry(st, fx.id[0], &err) == 0);
    CHECK_PIPE(st, fx.id[0], "detected", "ready", "validate");
    CHECK(ocra_store_stage_retry(st, fx.id[0], &err) == -1);
    CHECK_INT(err.code, EINVAL);
    CHECK(strstr(err.msg, "only dead-lettered or failed") != NULL);
    CHECK(ocra_store_stage_retry(st, "ain:0:0x0:9", &err) == -1);
    CHECK_INT(err.code, ENOENT);
    CHECK(claim_one(st, &claim_w1, &c));
    CHECK_INT(c.attempt, 1);
    /* a failed event goes back to the stage that failed it, with its earlier status */
    CHECK(end_with(st, &c, "done", "failed", "report", "ready", &err) == 0);
    ocra_store_claim_fini(&c);
    CHECK(ocra_store_stage_retry(st, fx.id[0], &err) == 0);
    CHECK_PIPE(st, fx.id[0], "detected", "ready", "validate");
out:
    ocra_store_close(st);
    tmpdb_fini(&t);
}

struct history_count {
    int rows, abandoned, done;
};

static int
count_history(const struct ocra_store_stage_row *r, void *arg)
{
    struct history_count *h = arg;

    h->rows++;
    h->abandoned += r->outcome && !strcmp(r->outcome, "abandoned");
    h->done += r->outcome && !strcmp(r->outcome, "done");
    return 0;
}

static void
test_stage_waiting_does_not_burn_attempts_and_wakes(void)
{
    struct history_count h = {0};
    struct ocra_store_claim c = {0};
    struct ocra_err err = {0};
    struct ocra_store *st = NULL;
    size_t n = 0;
    struct tmpdb t;

    fixture_init();
    CHECK(tmpdb_init(&t) == 0);
    if (!(st = open_db(t.path)))
        goto out;
    CHECK(ocra_store_append(st, "ain:0", fx.ev, 1, NULL, NULL, &err) == 0);
    CHECK(ocra_store_pipeline_intake(st, "toolchain", "report", NULL, &err) == 0);
    for (int i = 0; i < 3; i++) {
        CHECK(claim_one(st, &claim_w1, &c));
        CHECK_INT(c.attempt, 1);
        CHECK(end_with(st, &c, "waiting", NULL, NULL, "waiting", &err) == 0);
        ocra_store_claim_fini(&c);
        CHECK(!claim_one(st, &claim_w1, &c));
        CHECK_PIPE(st, fx.id[0], "detected", "waiting", "toolchain");
        CHECK(ocra_store_stage_wake(st, &n, &err) == 0);
        CHECK_INT(n, 1);
    }
    CHECK(ocra_store_stage_history(st, fx.id[0], count_history, &h, &err) == 0);
    CHECK_INT(h.rows, 1); /* one waiting row, extended by each later wait */
    /* one event woken from its own state; another state is left as it is */
    {
        bool woken = true;

        CHECK(claim_one(st, &claim_w1, &c));
        CHECK(end_with(st, &c, "waiting", NULL, NULL, "waiting", &err) == 0);
        ocra_store_claim_fini(&c);
        CHECK(ocra_store_stage_wake_event(st, fx.id[0], "queued", &woken, &err) == 0);
        CHECK(!woken);
        CHECK_PIPE(st, fx.id[0], "detected", "waiting", "toolchain");
        CHECK(ocra_store_stage_wake_event(st, fx.id[0], "waiting", &woken, &err) == 0);
        CHECK(woken);
        CHECK_PIPE(st, fx.id[0], "detected", "ready", "toolchain");
    }
out:
    ocra_store_close(st);
    tmpdb_fini(&t);
}

struct queue_seen {
    int n;
    char first[160];
    int64_t first_ms;
    char request[64];
};

static int
queue_seen(const struct ocra_store_queued *q, void *arg)
{
    struct queue_seen *qs = arg;

    if (qs->n++ == 0) {
        snprintf(qs->first, sizeof(qs->first), "%s", q->event_id);
        qs->first_ms = q->queued_ms;
        snprintf(qs->request, sizeof(qs->request), "%s", q->request ? q->request : "(null)");
    }
    return 0;
}

/* Ends c queued (no room now) with the request as output. */
static int
end_queued(struct ocra_store *st, const struct ocra_store_claim *c, const char *request,
           struct ocra_err *err)
{
    struct ocra_store_stage_end e = {.outcome = "queued",
                                     .state = "queued",
                                     .output = request,
                                     .error = "no node has room now",
                                     .next_ms = ocra_time_wall_ms()};

    return ocra_store_stage_end(st, c->event_id, c->claim, &e, err);
}

/* A queued attempt is not counted, holds nothing, is never claimed until woken, keeps the
 * time it was first queued across a wake that found no room again, and is listed. */
static void
test_stage_queued_keeps_attempts_and_first_queued_time(void)
{
    struct history_count h = {0};
    struct queue_seen qs = {0};
    struct ocra_store_claim c = {0};
    struct ocra_err err = {0};
    struct ocra_store *st = NULL;
    int64_t n = -1, first_ms;
    bool woken = false;
    struct tmpdb t;

    fixture_init();
    CHECK(tmpdb_init(&t) == 0);
    if (!(st = open_db(t.path)))
        goto out;
    CHECK(ocra_store_append(st, "ain:0", fx.ev, 1, NULL, NULL, &err) == 0);
    CHECK(ocra_store_pipeline_intake(st, "allocate", "report", NULL, &err) == 0);
    CHECK(claim_one(st, &claim_w1, &c));
    CHECK_INT(c.attempt, 1);
    CHECK(end_queued(st, &c, "{\"gpus\":1}", &err) == 0);
    ocra_store_claim_fini(&c);
    CHECK_PIPE(st, fx.id[0], "detected", "queued", "allocate");
    CHECK(!claim_one(st, &claim_w1, &c)); /* queued: no worker takes it */
    CHECK(ocra_store_queue_count(st, &n, &err) == 0);
    CHECK_INT(n, 1);
    CHECK(ocra_store_queue_list(st, queue_seen, &qs, &err) == 0);
    CHECK_INT(qs.n, 1);
    CHECK_STR(qs.first, fx.id[0]);
    CHECK_STR(qs.request, "{\"gpus\":1}");
    first_ms = qs.first_ms;
    /* the mass wake (start, reload) leaves the queue to the dispatcher */
    {
        size_t k = 9;

        CHECK(ocra_store_stage_wake(st, &k, &err) == 0);
        CHECK_INT(k, 0);
    }
    /* woken, and no room again (a race): queued again, attempt not counted, one history row */
    for (int i = 0; i < 3; i++) {
        CHECK(ocra_store_stage_wake_event(st, fx.id[0], "queued", &woken, &err) == 0);
        CHECK(woken);
        CHECK(claim_one(st, &claim_w1, &c));
        CHECK_INT(c.attempt, 1);
        ocra_sleep_ms(2);
        CHECK(end_queued(st, &c, "{\"gpus\":2}", &err) == 0);
        ocra_store_claim_fini(&c);
    }
    CHECK(ocra_store_stage_history(st, fx.id[0], count_history, &h, &err) == 0);
    CHECK_INT(h.rows, 1);
    memset(&qs, 0, sizeof(qs));
    CHECK(ocra_store_queue_list(st, queue_seen, &qs, &err) == 0);
    CHECK_INT(qs.n, 1);
    CHECK(qs.first_ms == first_ms);
    CHECK_STR(qs.request, "{\"gpus\":2}");
    /* placed at last: out of the queue */
    CHECK(ocra_store_stage_wake_event(st, fx.id[0], "queued", &woken, &err) == 0);
    CHECK(claim_one(st, &claim_w1, &c));
    CHECK_INT(c.attempt, 1);
    CHECK(end_with(st, &c, "done", "allocated", "run", "ready", &err) == 0);
    ocra_store_claim_fini(&c);
    CHECK(ocra_store_queue_count(st, &n, &err) == 0);
    CHECK_INT(n, 0);
    memset(&qs, 0, sizeof(qs));
    CHECK(ocra_store_queue_list(st, queue_seen, &qs, &err) == 0);
    CHECK_INT(qs.n, 0);
out:
    ocra_store_close(st);
    tmpdb_fini(&t);
}

static void
test_stage_lease_takeover_fences_the_old_holder(void)
{
    struct ocra_store_claim_opts short_lease = {.worker = "crashed", .lease_ms = 60000};
    struct ocra_store_claim_opts o2 = claim_w1;
    struct ocra_store_claim old = {0}, c = {0};
    struct ocra_err err = {0};
    struct ocra_store *st = NULL;
    struct tmpdb t;
    char *json = NULL;

    fixture_init();
    CHECK(tmpdb_init(&t) == 0);
    if (!(st = open_db(t.path)))
        goto out;
    CHECK(ocra_store_append(st, "ain:0", fx.ev, 1, NULL, NULL, &err) == 0);
    CHECK(ocra_store_pipeline_intake(st, "validate", "report", NULL, &err) == 0);
    CHECK(claim_one(st, &short_lease, &old));
    CHECK(!claim_one(st, &claim_w1, &c));    /* held */
    o2.now_ms = ocra_time_wall_ms() + 60001; /* the lease has run out */
    CHECK(claim_one(st, &o2, &c));
    CHECK(c.taken_over);
    CHECK_INT(c.attempt, 1); /* the abandoned attempt does not count: a crash does */
    CHECK_INT(c.crashes, 1);
    /* the old holder wakes up late: it can neither renew nor end */
    CHECK(ocra_store_stage_renew(st, old.event_id, old.claim, 1000, &err) == -1);
    CHECK_INT(err.code, ESTALE);
    CHECK(end_with(st, &old, "done", "validated", "plan", "ready", &err) == -1);
    CHECK_INT(err.code, ESTALE);
    CHECK(ocra_store_stage_renew(st, c.event_id, c.claim, 1000, &err) == 0);
    CHECK(end_with(st, &c, "done", "validated", "plan", "ready", &err) == 0);
    CHECK(ocra_store_stage_outputs(st, fx.id[0], &json, &err) == 0);
    CHECK_STR(json, "{\"validate\":{\"n\":1}}");
    free(json);
out:
    ocra_store_claim_fini(&old);
    ocra_store_claim_fini(&c);
    ocra_store_close(st);
    tmpdb_fini(&t);
}

/* A process of this machine that waits to be killed, into *id (scope, pid, start time). */
static pid_t
spawn_child(struct ocra_proc_id *id)
{
    struct ocra_err err = {0};
    pid_t pid;

    if (ocra_proc_self(id, &err) < 0) {
        fprintf(stderr, "  proc self: %s\n", err.msg);
        return -1;
    }
    if ((pid = fork()) == 0) {
        pause();
        _exit(0);
    }
    if (pid < 0)
        return -1;
    id->pid = pid;
    if (ocra_proc_start(pid, &id->start, &err) < 0) {
        fprintf(stderr, "  proc start: %s\n", err.msg);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    return pid;
}

static void
end_child(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static int64_t
pipe_num(struct ocra_store *st, const char *id, bool crashes)
{
    struct ocra_store_pipeline *p = NULL;
    int64_t v = -1;

    if (ocra_store_pipeline_get(st, id, &p, NULL) == 0 && p)
        v = crashes ? p->crashes : p->attempts;
    ocra_store_pipeline_free(p);
    return v;
}

struct abandoned_row {
    int n;
    char error[320];
};

static int
last_abandoned(const struct ocra_store_stage_row *r, void *arg)
{
    struct abandoned_row *a = arg;

    if (r->outcome && !strcmp(r->outcome, "abandoned")) {
        a->n++;
        (void)snprintf(a->error, sizeof(a->error), "%s", r->error ? r->error : "");
    }
    return 0;
}

static void
test_stage_dead_owner_on_this_machine_taken_over_at_once(void)
{
    struct ocra_store_claim_opts dead = {.worker = "w0@here:1", .lease_ms = 600000};
    struct ocra_proc_id me, child, reused;
    struct ocra_store_claim c = {0};
    struct abandoned_row a = {0};
    struct ocra_err err = {0};
    struct ocra_store *st = NULL;
    pid_t pid = -1;
    size_t n = 9;
    struct tmpdb t;

    fixture_init();
    CHECK(tmpdb_init(&t) == 0);
    if (!(st = open_db(t.path)))
        goto out;
    CHECK(ocra_store_append(st, "ain:0", fx.ev, 2, NULL, NULL, &err) == 0);
    CHECK(ocra_store_pipeline_intake(st, "validate", "report", NULL, &err) == 0);
    CHECK(ocra_proc_self(&me, &err) == 0);
    CHECK((pid = spawn_child(&child)) > 0);
    if (pid <= 0)
        goto out;
    dead.owner = &child;
    CHECK(claim_one(st, &dead, &c));
    ocra_store_claim_fini(&c);
    /* its process runs: nothing is taken over, and the claim holds */
    CHECK(ocra_store_stage_takeover(st, &me, &n, &err) == 0);
    CHECK_INT(n, 0);
    /* the live process of this test holds the other event: neither is taken over */
    dead.owner = &me;
    CHECK(claim_one(st, &dead, &c));
    ocra_store_claim_fini(&c);
    CHECK(ocra_store_stage_takeover(st, &me, &n, &err) == 0);
    CHECK_INT(n, 0);
    CHECK(!claim_one(st, &claim_w1, &c));
    end_child(pid);
    /* gone: taken over at once, long before its 600 s lease runs out; the crash is counted,
     * the attempt it cut short is not */
    CHECK(ocra_store_stage_takeover(st, &me, &n, &err) == 0);
    CHECK_INT(n, 1);
    CHECK_PIPE(st, fx.id[0], "detected", "ready", "validate");
    CHECK_INT(pipe_num(st, fx.id[0], false), 0);
    CHECK_INT(pipe_num(st, fx.id[0], true), 1);
    CHECK(ocra_store_stage_history(st, fx.id[0], last_abandoned, &a, &err) == 0);
    CHECK_INT(a.n, 1);
    CHECK(strstr(a.error, "worker w0@here:1 died") != NULL);
    CHECK(claim_one(st, &claim_w1, &c));
    CHECK_STR(c.event_id, fx.id[0]);
    CHECK(!c.taken_over);
    CHECK_INT(c.attempt, 1);
    CHECK_INT(c.crashes, 1);
    CHECK_STR(c.crash_by, "w0@here:1");
    CHECK(c.crash_ms > 0);
    /* crashes count at a stage: the next one starts at 0 */
    CHECK(end_with(st, &c, "done", "validated", "plan", "ready", &err) == 0);
    ocra_store_claim_fini(&c);
    CHECK_INT(pipe_num(st, fx.id[0], true), 0);
    /* a pid taken again by another process (another start time) is not the old holder */
    reused = me;
    reused.pid = getppid();
    CHECK(ocra_proc_start(reused.pid, &reused.start, &err) == 0);
    reused.start++;
    dead.owner = &reused;
    CHECK(claim_one(st, &dead, &c));
    CHECK_STR(c.stage, "plan");
    ocra_store_claim_fini(&c);
    CHECK(ocra_store_stage_takeover(st, &me, &n, &err) == 0);
    CHECK_INT(n, 1);
    CHECK_PIPE(st, fx.id[0], "validated", "ready", "plan");
    /* ocra retry starts a dead letter afresh: attempts and crashes */
    CHECK(claim_one(st, &claim_w1, &c));
    CHECK_INT(c.crashes, 1);
    CHECK(end_with(st, &c, "dead", NULL, NULL, "dead", &err) == 0);
    ocra_store_claim_fini(&c);
    CHECK_INT(pipe_num(st, fx.id[0], true), 1);
    CHECK(ocra_store_stage_retry(st, fx.id[0], &err) == 0);
    CHECK_INT(pipe_num(st, fx.id[0], true), 0);
    CHECK_INT(pipe_num(st, fx.id[0], false), 0);
out:
    ocra_store_claim_fini(&c);
    ocra_store_close(st);
    tmpdb_fini(&t);
}

static void
test_stage_other_machine_claim_waits_for_its_lease(void)
{
    struct ocra_store_claim_opts far = {.worker = "w0@far:7", .lease_ms = 60000};
    struct ocra_store_claim_opts later = claim_w1;
    struct ocra_proc_id me, other;
    struct ocra_store_claim c = {0};
    struct ocra_err err = {0};
    struct ocra_store *st = NULL;
    pid_t pid = -1;
    size_t n = 9;
    struct tmpdb t;

    fixture_init();
    CHECK(tmpdb_init(&t) == 0);
    if (!(st = open_db(t.path)))
        goto out;
    CHECK(ocra_store_append(st, "ain:0", fx.ev, 1, NULL, NULL, &err) == 0);
    CHECK(ocra_store_pipeline_intake(st, "validate", "report", NULL, &err) == 0);
    CHECK(ocra_proc_self(&me, &err) == 0);
    CHECK((pid = spawn_child(&other)) > 0);
    if (pid <= 0)
        goto out;
    end_child(pid);       /* its pid is free here; but on its own machine it may run */
    other.scope[0] = 'X'; /* another host name: another machine */
    far.owner = &other;
    CHECK(claim_one(st, &far, &c));
    ocra_store_claim_fini(&c);
    CHECK(ocra_store_stage_takeover(st, &me, &n, &err) == 0);
    CHECK_INT(n, 0);
    CHECK(!claim_one(st, &claim_w1, &c));
    /* when the lease runs out it is taken over: a crash, not an attempt */
    later.now_ms = ocra_time_wall_ms() + 60001;
    later.owner = &me;
    CHECK(claim_one(st, &later, &c));
    CHECK(c.taken_over);
    CHECK_INT(c.attempt, 1);
    CHECK_INT(c.crashes, 1);
    CHECK_STR(c.crash_by, "w0@far:7");
    CHECK_INT(pipe_num(st, fx.id[0], false), 1);
    CHECK_INT(pipe_num(st, fx.id[0], true), 1);
out:
    ocra_store_claim_fini(&c);
    ocra_store_close(st);
    tmpdb_fini(&t);
}

static void
test_stage_supersession_gates_allocation_only(void)
{
    static const char *const gated[] = {"allocate"};
    struct ocra_store_claim_opts o = {.worker = "w",
                                      .lease_ms = 60000,
                                      .gated = gated,
                                      .n_gated = 1,
                                      .superseded_stage = "report"};
    struct ocra_store_claim c = {0};
    struct history_count h = {0};
    struct ocra_err err = {0};
    struct ocra_store *st = NULL;
    char *newer = NULL;
    bool current = false;
    struct tmpdb t;

    fixture_init();
    CHECK(tmpdb_init(&t) == 0);
    if (!(st = open_db(t.path)))
        goto out;
    CHECK(ocra_store_append(st, "ain:0", fx.ev, 2, NULL, NULL, &err) == 0); /* same model */
    CHECK(ocra_store_pipeline_intake(st, "build", "report", NULL, &err) == 0);
    /* the newer event is still only detected: the older one is current and may build */
    CHECK(ocra_store_event_current(st, fx.id[0], &current, &newer, &err) == 0);
    CHECK(current && newer == NULL);
    CHECK(claim_one(st, &o, &c));
    CHECK_STR(c.event_id, fx.id[0]);
    CHECK(end_with(st, &c, "done", "pushed", "allocate", "ready", &err) == 0);
    ocra_store_claim_fini(&c);
    CHECK(claim_one(st, &o, &c));
    CHECK_STR(c.event_id, fx.id[1]);
    CHECK(end_with(st, &c, "done", "pushed", "allocate", "ready", &err) == 0);
    ocra_store_claim_fini(&c);
    /* now the newer one counts: the older one is superseded before allocation */
    CHECK(ocra_store_event_current(st, fx.id[0], &current, &newer, &err) == 0);
    CHECK(!current);
    CHECK_STR(newer, fx.id[1]);
    free(newer);
    /* the older one is moved on to report in the claim's transaction and claimed there */
    CHECK(claim_one(st, &o, &c));
    CHECK_STR(c.event_id, fx.id[0]);
    CHECK_STR(c.stage, "report");
    CHECK_STR(c.status, "superseded");
    ocra_store_claim_fini(&c);
    CHECK_PIPE(st, fx.id[0], "superseded", "claimed", "report");
    CHECK(claim_one(st, &o, &c));
    CHECK_STR(c.event_id, fx.id[1]);
    CHECK_STR(c.stage, "allocate");
    ocra_store_claim_fini(&c);
    CHECK(ocra_store_stage_history(st, fx.id[0], count_history, &h, &err) == 0);
    CHECK_INT(h.rows, 3); /* build, superseded at allocate, report (running) */
out:
    ocra_store_close(st);
    tmpdb_fini(&t);
}

/* A queued older version is never claimed until it starts: the newer version that passed
 * validation moves it out of the queue at once (superseded, at the report stage, with its
 * history row); a queued event nothing supersedes stays queued. */
static void
test_queue_supersede_moves_queued_older_versions(void)
{
    static const char *const gated[] = {"allocate"};
    struct ocra_store_claim_opts o = {.worker = "w",
                                      .lease_ms = 60000,
                                      .gated = gated,
                                      .n_gated = 1,
                                      .superseded_stage = "report"};
    struct ocra_store_claim c = {0};
    struct ocra_err err = {0};
    struct ocra_store *st = NULL;
    char **moved = NULL;
    size_t n = 9;
    int64_t queued = -1;
    struct tmpdb t;

    fixture_init();
    CHECK(tmpdb_init(&t) == 0);
    if (!(st = open_db(t.path)))
        goto out;
    CHECK(ocra_store_append(st, "ain:0", fx.ev, 2, NULL, NULL, &err) == 0); /* same model */
    CHECK(ocra_store_pipeline_intake(st, "allocate", "report", NULL, &err) == 0);
    CHECK(claim_one(st, &o, &c)); /* the older one finds no room: queued */
    CHECK_STR(c.event_id, fx.id[0]);
    CHECK(end_queued(st, &c, "{\"gpus\":1}", &err) == 0);
    ocra_store_claim_fini(&c);
    /* the newer one is only detected: it does not count yet */
    CHECK(ocra_store_queue_supersede(st, &o, &moved, &n, &err) == 0);
    CHECK_INT(n, 0);
    free(moved);
    CHECK_PIPE(st, fx.id[0], "detected", "queued", "allocate");
    CHECK(claim_one(st, &o, &c)); /* the newer one passes a stage: now it counts */
    CHECK_STR(c.event_id, fx.id[1]);
    CHECK(end_with(st, &c, "done", "pushed", "allocate", "ready", &err) == 0);
    ocra_store_claim_fini(&c);
    CHECK(ocra_store_queue_supersede(st, &o, &moved, &n, &err) == 0);
    CHECK_INT(n, 1);
    if (n == 1) {
        CHECK_STR(moved[0], fx.id[0]);
        CHECK_STR(moved[1], fx.id[1]);
        free(moved[0]);
        free(moved[1]);
    }
    free(moved);
    CHECK_PIPE(st, fx.id[0], "superseded", "ready", "report");
    CHECK(ocra_store_queue_count(st, &queued, &err) == 0);
    CHECK_INT(queued, 0);
    /* the newer one queued in turn: nothing supersedes it, it stays */
    CHECK(claim_one(st, &o, &c));
    if (c.event_id && !strcmp(c.event_id, fx.id[0])) { /* the report of the older one first */
        CHECK(end_with(st, &c, "done", "reported", "", "done", &err) == 0);
        ocra_store_claim_fini(&c);
        CHECK(claim_one(st, &o, &c));
    }
    CHECK_STR(c.event_id, fx.id[1]);
    CHECK(end_queued(st, &c, "{\"gpus\":1}", &err) == 0);
    ocra_store_claim_fini(&c);
    CHECK(ocra_store_queue_supersede(st, &o, &moved, &n, &err) == 0);
    CHECK_INT(n, 0);
    free(moved);
    CHECK_PIPE(st, fx.id[1], "pushed", "queued", "allocate");
out:
    ocra_store_close(st);
    tmpdb_fini(&t);
}

/* A stage end's status sets the pipeline's outcome when it is an outcome (completed, failed,
 * rejected, superseded, orphaned, timeout) and leaves it as it was otherwise. */
static void
test_stage_end_status_sets_outcome(void)
{
    static const char *const statuses[] = {"completed", "failed",  "rejected",  "superseded",
                                           "orphaned",  "timeout", "validated", "reported"};
    struct ocra_store_claim c = {0};
    struct ocra_store_pipeline *p = NULL;
    struct ocra_err err = {0};
    struct ocra_store *st = NULL;
    struct tmpdb t;

    fixture_init();
    CHECK(tmpdb_init(&t) == 0);
    if (!(st = open_db(t.path)))
        goto out;
    CHECK(ocra_store_append(st, "ain:0", fx.ev, OCRA_ARRAY_LEN(statuses), NULL, NULL, &err) == 0);
    CHECK(ocra_store_pipeline_intake(st, "build", "report", NULL, &err) == 0);
    for (size_t i = 0; i < OCRA_ARRAY_LEN(statuses); i++) {
        CHECK(claim_one(st, &claim_w1, &c));
        CHECK_STR(c.event_id, fx.id[i]); /* in journal order; the ended ones wait */
        CHECK(end_with(st, &c, "done", statuses[i], "report", "waiting", &err) == 0);
        ocra_store_claim_fini(&c);
        CHECK(ocra_store_pipeline_get(st, fx.id[i], &p, &err) == 0 && p);
        if (p && i < 6)
            CHECK_STR(p->outcome, statuses[i]);
        else if (p)
            CHECK(p->outcome == NULL);
        ocra_store_pipeline_free(p);
        p = NULL;
    }
out:
    ocra_store_close(st);
    tmpdb_fini(&t);
}

/* A final block replaced (finality violation): the watcher marks the event orphaned; whatever
 * stage it is at, the next claim moves it to the report stage at status orphaned, whose end
 * finishes it orphaned; a reported event whose report a reorg dropped is reopened, an orphaned
 * one is not. */
static void
test_stage_orphaned_event_stops_at_next_boundary(void)
{
    struct ocra_store_claim_opts o = {
        .worker = "w", .lease_ms = 60000, .superseded_stage = "report"};
    struct ocra_store_stage_end fin = {.outcome = "done", .status = "orphaned", .finished = true};
    struct ocra_store_stage_end sent = {.outcome = "done",
                                        .output = "{\"tx\":\"0xab\",\"block\":7}",
                                        .status = "reported",
                                        .finished = true};
    struct ocra_store_claim c = {0};
    struct ocra_store_pipeline *p = NULL;
    struct ocra_err err = {0};
    struct ocra_store *st = NULL;
    bool orphaned = true, reopened = true;
    struct tmpdb t;

    fixture_init();
    CHECK(tmpdb_init(&t) == 0);
    if (!(st = open_db(t.path)))
        goto out;
    CHECK(ocra_store_append(st, "ain:0", fx.ev, 2, NULL, NULL, &err) == 0);
    CHECK(ocra_store_pipeline_intake(st, "build", "report", NULL, &err) == 0);
    CHECK(ocra_store_event_orphaned(st, fx.id[0], &orphaned, &err) == 0);
    CHECK(!orphaned);
    CHECK(claim_one(st, &o, &c)); /* holds its claim while the chain withdraws the event */
    CHECK_STR(c.event_id, fx.id[0]);
    CHECK(ocra_store_event_orphan(st, fx.id[0], "orphaned: block replaced", &err) == 0);
    CHECK(ocra_store_event_orphaned(st, fx.id[0], &orphaned, &err) == 0);
    CHECK(orphaned);
    CHECK(ocra_store_event_orphan(st, "no-such-event", "x", &err) == -1);
    CHECK_INT(err.code, ENOENT);
    /* the attempt in flight ends as it does; the boundary is the next claim */
    CHECK(end_with(st, &c, "done", "running", "complete", "ready", &err) == 0);
    ocra_store_claim_fini(&c);
    CHECK(claim_one(st, &o, &c)); /* the other event, to its report stage */
    CHECK_STR(c.event_id, fx.id[1]);
    CHECK(end_with(st, &c, "done", "completed", "report", "ready", &err) == 0);
    ocra_store_claim_fini(&c);
    CHECK(claim_one(st, &o, &c));
    CHECK_STR(c.event_id, fx.id[0]);
    CHECK_STR(c.stage, "report"); /* not complete: moved on in the claim's transaction */
    CHECK_STR(c.status, "orphaned");
    CHECK_STR(c.last_error, "orphaned: block replaced");
    CHECK(ocra_store_stage_end(st, c.event_id, c.claim, &fin, &err) == 0);
    ocra_store_claim_fini(&c);
    CHECK(ocra_store_pipeline_get(st, fx.id[0], &p, &err) == 0 && p);
    if (p) {
        CHECK_STR(p->status, "orphaned");
        CHECK_STR(p->outcome, "orphaned");
        CHECK_STR(p->state, "done");
    }
    ocra_store_pipeline_free(p);
    CHECK(ocra_store_stage_reopen(st, fx.id[0], "report", "r", &reopened, &err) == 0);
    CHECK(!reopened); /* orphaned: nothing to report */
    /* the other event is reported; a reorg drops its report's transaction: back to report */
    CHECK(claim_one(st, &o, &c));
    CHECK_STR(c.event_id, fx.id[1]);
    CHECK(ocra_store_stage_end(st, c.event_id, c.claim, &sent, &err) == 0);
    ocra_store_claim_fini(&c);
    CHECK(ocra_store_stage_reopen(st, fx.id[1], "report", "dropped", &reopened, &err) == 0);
    CHECK(reopened);
    CHECK_PIPE(st, fx.id[1], "completed", "ready", "report");
out:
    ocra_store_close(st);
    tmpdb_fini(&t);
}

struct list_seen {
    int n, with_pipe;
    char last_state[16];
};

static int
list_one(const struct ocra_store_event *ev, const struct ocra_store_pipeline *p, void *arg)
{
    struct list_seen *s = arg;

    (void)ev;
    s->n++;
    if (p) {
        s->with_pipe++;
        (void)snprintf(s->last_state, sizeof(s->last_state), "%s", p->state);
    }
    return 0;
}

static void
test_pipeline_list_filters_by_any_status(void)
{
    struct ocra_store_event_filter f = {0};
    struct ocra_store_claim c = {0};
    struct list_seen seen = {0};
    struct ocra_err err = {0};
    struct ocra_store *st = NULL;
    struct tmpdb t;

    fixture_init();
    CHECK(tmpdb_init(&t) == 0);
    if (!(st = open_db(t.path)))
        goto out;
    CHECK(ocra_store_append(st, "ain:0", fx.ev, 4, NULL, NULL, &err) == 0);
    CHECK(ocra_store_pipeline_list(st, NULL, list_one, &seen, &err) == 0);
    CHECK_INT(seen.n, 4);
    CHECK_INT(seen.with_pipe, 0);
    CHECK(ocra_store_pipeline_intake(st, "validate", "report", NULL, &err) == 0);
    CHECK(claim_one(st, &claim_w1, &c));
    CHECK(end_with(st, &c, "dead", NULL, NULL, "dead", &err) == 0);
    ocra_store_claim_fini(&c);
    f.status = "dead";
    memset(&seen, 0, sizeof(seen));
    CHECK(ocra_store_pipeline_list(st, &f, list_one, &seen, &err) == 0);
    CHECK_INT(seen.n, 1);
    CHECK_STR(seen.last_state, "dead");
    f.status = "detected";
    memset(&seen, 0, sizeof(seen));
    CHECK(ocra_store_pipeline_list(st, &f, list_one, &seen, &err) == 0);
    CHECK_INT(seen.n, 4); /* the dead one is still at status detected */
    f.status = "accepted";
    memset(&seen, 0, sizeof(seen));
    CHECK(ocra_store_pipeline_list(st, &f, list_one, &seen, &err) == 0);
    CHECK_INT(seen.n, 4);
out:
    ocra_store_close(st);
    tmpdb_fini(&t);
}

/* ---- runs (begin) */

static const char run_digest[] =
    "sha256:1111111111111111111111111111111111111111111111111111111111111111";

static int
run_count(const struct ocra_store_run *r, void *arg)
{
    (void)r;
    (*(int *)arg)++;
    return 0;
}

static void
test_run_put_is_idempotent_and_end_is_kept(void)
{
    struct ocra_store_image im = {
        .digest = run_digest, .repo = "ocra/m", .record = "{}", .event = NULL};
    struct ocra_store_run r = {.id = "4242",
                               .event_id = NULL,
                               .image_digest = run_digest,
                               .runner = "slurm",
                               .gpus = "[0,1]"};
    struct ocra_store_run *got = NULL;
    struct ocra_err err = {0};
    struct ocra_store *st = NULL;
    json_t *runs = NULL;
    int n = 0;
    struct tmpdb t;

    fixture_init();
    CHECK(tmpdb_init(&t) == 0);
    if (!(st = open_db(t.path)))
        goto out;
    CHECK(ocra_store_append(st, "ain:0", fx.ev, 2, NULL, NULL, &err) == 0);
    im.event = fx.id[0];
    r.event_id = fx.id[0];
    CHECK(ocra_store_image_put(st, &im, &err) == 0);
    /* the run stage, then the same stage retried after a crash (the job adopted) */
    CHECK(ocra_store_run_put(st, &r, &err) == 0);
    r.node = "ocra-n1";
    CHECK(ocra_store_run_put(st, &r, &err) == 0);
    CHECK(ocra_store_run_list(st, fx.id[0], run_count, &n, &err) == 0);
    CHECK_INT(n, 1);
    CHECK(ocra_store_run_get(st, "4242", &got, &err) == 0 && got);
    if (got) {
        CHECK_STR(got->state, "running");
        CHECK_STR(got->node, "ocra-n1");
        CHECK_STR(got->gpus, "[0,1]");
        CHECK(got->started_ms > 0 && got->finished_ms == 0 && got->result == NULL);
    }
    ocra_store_run_free(got);
    got = NULL;
    /* the end; a later put (the run stage sent back by `ocra retry`) does not take it back */
    CHECK(ocra_store_run_end(st, "4242", "succeeded", NULL,
                             "{\"exitCode\":0,\"logTail\":\"hi\",\"durationMs\":5}", &err) == 0);
    r.state = "running";
    CHECK(ocra_store_run_put(st, &r, &err) == 0);
    CHECK(ocra_store_run_get(st, "4242", &got, &err) == 0 && got);
    if (got) {
        CHECK_STR(got->state, "succeeded");
        CHECK_STR(got->node, "ocra-n1");
        CHECK(got->finished_ms >= got->started_ms && got->finished_ms > 0);
    }
    ocra_store_run_free(got);
    got = NULL;
    runs = ocra_store_runs_json(st, fx.id[0], &err);
    CHECK(json_is_array(runs) && json_array_size(runs) == 1);
    CHECK_STR(ocra_json_str(json_array_get(runs, 0), "runner"), "slurm");
    CHECK_INT(ocra_json_int(json_object_get(json_array_get(runs, 0), "result"), "exitCode", -1), 0);
    json_decref(runs);
    runs = ocra_store_runs_json(st, fx.id[1], &err);
    CHECK(json_is_array(runs) && json_array_size(runs) == 0);
    json_decref(runs);
out:
    ocra_store_close(st);
    tmpdb_fini(&t);
}

static void
test_run_refuses_bad_input_with_reasons(void)
{
    struct ocra_store_run r = {
        .id = "c0ffee", .image_digest = run_digest, .runner = "docker", .state = "exploded"};
    struct ocra_store_run *got = NULL;
    struct ocra_err err = {0};
    struct ocra_store *st = NULL;
    struct tmpdb t;

    fixture_init();
    CHECK(tmpdb_init(&t) == 0);
    if (!(st = open_db(t.path)))
        goto out;
    CHECK(ocra_store_append(st, "ain:0", fx.ev, 2, NULL, NULL, &err) == 0);
    r.event_id = fx.id[0];
    CHECK(ocra_store_run_put(st, &r, &err) < 0 && err.code == EINVAL);
    CHECK(strstr(err.msg, "exploded") != NULL);
    r.state = NULL; /* no image of that digest in the journal: the foreign key refuses it */
    CHECK(ocra_store_run_put(st, &r, &err) < 0 && err.code == EINVAL);
    CHECK(ocra_store_run_end(st, "nope", "succeeded", NULL, "{}", &err) < 0 && err.code == ENOENT);
    CHECK(ocra_store_run_end(st, "nope", "running", NULL, "{}", &err) < 0 && err.code == EINVAL);
    CHECK(ocra_store_run_get(st, "nope", &got, &err) == 0 && got == NULL);
out:
    ocra_store_close(st);
    tmpdb_fini(&t);
}

static void
test_stage_released_keeps_the_stage_and_attempts(void)
{
    struct ocra_store_stage_end e = {.outcome = "released", .state = "ready"};
    struct ocra_store_pipeline *p = NULL;
    struct ocra_store_claim c = {0};
    struct ocra_err err = {0};
    struct ocra_store *st = NULL;
    struct tmpdb t;

    fixture_init();
    CHECK(tmpdb_init(&t) == 0);
    if (!(st = open_db(t.path)))
        goto out;
    CHECK(ocra_store_append(st, "ain:0", fx.ev, 1, NULL, NULL, &err) == 0);
    CHECK(ocra_store_pipeline_intake(st, "complete", "report", NULL, &err) == 0);
    CHECK(claim_one(st, &claim_w1, &c));
    e.error = "checkpointed: the daemon is stopping";
    e.next_ms = ocra_time_wall_ms();
    CHECK(ocra_store_stage_end(st, c.event_id, c.claim, &e, &err) == 0);
    ocra_store_claim_fini(&c);
    CHECK_PIPE(st, fx.id[0], "detected", "ready", "complete");
    CHECK(ocra_store_pipeline_get(st, fx.id[0], &p, &err) == 0 && p);
    if (p)
        CHECK_INT(p->attempts, 0); /* a checkpoint is not a failed attempt */
    ocra_store_pipeline_free(p);
    /* the next start claims the same stage again */
    CHECK(claim_one(st, &claim_w1, &c));
    CHECK_STR(c.stage, "complete");
    CHECK_INT(c.attempt, 1);
    ocra_store_claim_fini(&c);
out:
    ocra_store_close(st);
    tmpdb_fini(&t);
}

/* ---- runs (end) */

/* ---- large journals (begin) */

/* A journal of n events of 50 models, taken in: the first 10 dead-lettered at validate, the next
 * 10 finished (reported), one waiting, the rest ready. */
struct big {
    struct tmpdb t;
    struct ocra_store *st;
    size_t n;
    char (*id)[96], (*tx)[67], (*path)[48];
};

static int
big_init(struct big *b, size_t n)
{
    struct ocra_store_event *ev = ocra_xcalloc(n, sizeof(*ev));
    struct ocra_store_claim c = {0};
    struct ocra_err err = {0};
    int ret = -1;

    memset(b, 0, sizeof(*b));
    b->n = n;
    b->id = ocra_xcalloc(n, sizeof(*b->id));
    b->tx = ocra_xcalloc(n, sizeof(*b->tx));
    b->path = ocra_xcalloc(n, sizeof(*b->path));
    for (size_t i = 0; i < n; i++) {
        (void)snprintf(b->tx[i], sizeof(b->tx[i]), "0x%064zx", i);
        (void)snprintf(b->id[i], sizeof(b->id[i]), "ain:0:%s:0", b->tx[i]);
        (void)snprintf(b->path[i], sizeof(b->path[i]), "/apps/ocra/models/m%zu", i % 50);
        ev[i] = (struct ocra_store_event){.id = b->id[i],
                                          .chain = "ain:0",
                                          .tx_hash = b->tx[i],
                                          .block_number = (int64_t)i,
                                          .trusted = true,
                                          .path = b->path[i],
                                          .spec = spec_json};
    }
    if (tmpdb_init(&b->t) < 0 || !(b->st = open_db(b->t.path)) ||
        ocra_store_append(b->st, "ain:0", ev, n, NULL, NULL, &err) < 0 ||
        ocra_store_pipeline_intake(b->st, "validate", "report", NULL, &err) < 0)
        goto out;
    for (int i = 0; i < 21; i++) {
        const char *outcome = i < 10 ? "dead" : i < 20 ? "done" : "waiting";

        if (!claim_one(b->st, &claim_w1, &c) ||
            end_with(b->st, &c, outcome, i < 10 || i == 20 ? NULL : "reported",
                     i < 10 || i == 20 ? NULL : "", i < 10 ? "dead" : "waiting", &err) < 0)
            goto out;
        ocra_store_claim_fini(&c);
    }
    ret = 0;
out:
    if (ret < 0)
        fprintf(stderr, "  big journal: %s\n", err.msg);
    ocra_store_claim_fini(&c);
    free(ev);
    return ret;
}

static void
big_fini(struct big *b)
{
    ocra_store_close(b->st);
    tmpdb_fini(&b->t);
    free(b->id);
    free(b->tx);
    free(b->path);
}

static void
count_nothing(const char *a, const char *b, int64_t n, void *arg)
{
    (void)a, (void)b, (void)n, (void)arg;
}

static void
pcount_nothing(const char *a, const char *b, const char *c, int64_t n, void *arg)
{
    (void)a, (void)b, (void)c, (void)n, (void)arg;
}

static int
stage_nothing(const struct ocra_store_stage_row *r, void *arg)
{
    (void)r, (void)arg;
    return 0;
}

static int
alloc_nothing(const struct ocra_store_alloc *a, void *arg)
{
    (void)a, (void)arg;
    return 0;
}

/* The calls behind /metrics, the filtered and paged event lists, `ocra events --limit`,
 * `ocra lineage`, the daemon's start and a worker's claim and end, on b's journal. */
static void
hot_calls(struct big *b)
{
    static const char *const statuses[] = {"dead", "ready", "waiting", "accepted", "reported"};
    const char *mid = b->id[b->n / 2];
    struct ocra_store_event_filter f = {.newest_first = true, .limit = 5};
    struct ocra_store_pipeline *p = NULL;
    struct ocra_store_event *ev = NULL;
    struct ocra_store_claim c = {0};
    struct list_seen seen = {0};
    struct ocra_err err = {0};
    char *json = NULL;
    json_t *runs;
    size_t n = 0;

    CHECK(ocra_store_event_counts(b->st, count_nothing, NULL, &err) == 0);
    CHECK(ocra_store_pipeline_counts(b->st, pcount_nothing, NULL, &err) == 0);
    for (size_t i = 0; i < OCRA_ARRAY_LEN(statuses); i++) {
        f.status = statuses[i];
        f.before_seq = 0;
        CHECK(ocra_store_pipeline_list(b->st, &f, list_one, &seen, &err) == 0);
        f.before_seq = (int64_t)b->n / 2; /* a page further on */
        CHECK(ocra_store_pipeline_list(b->st, &f, list_one, &seen, &err) == 0);
    }
    f = (struct ocra_store_event_filter){.limit = 5};
    CHECK(ocra_store_pipeline_list(b->st, &f, list_one, &seen, &err) == 0);
    f.newest_first = true;
    f.before_seq = (int64_t)b->n / 2;
    CHECK(ocra_store_pipeline_list(b->st, &f, list_one, &seen, &err) == 0);
    CHECK(ocra_store_event_get(b->st, mid, &ev, &err) == 0 && ev);
    CHECK(ocra_store_pipeline_get(b->st, mid, &p, &err) == 0 && p);
    CHECK(ocra_store_stage_history(b->st, mid, stage_nothing, NULL, &err) == 0);
    CHECK(ocra_store_stage_outputs(b->st, mid, &json, &err) == 0);
    CHECK((runs = ocra_store_runs_json(b->st, mid, &err)) != NULL);
    CHECK(ocra_store_alloc_list(b->st, mid, false, alloc_nothing, NULL, &err) == 0);
    CHECK(ocra_store_alloc_list(b->st, NULL, true, alloc_nothing, NULL, &err) == 0);
    CHECK(ocra_store_pipeline_intake(b->st, "validate", "report", &n, &err) == 0);
    CHECK(claim_one(b->st, &claim_w1, &c));
    CHECK(end_with(b->st, &c, "retry", NULL, NULL, "ready", &err) == 0);
    json_decref(runs);
    free(json);
    ocra_store_claim_fini(&c);
    ocra_store_pipeline_free(p);
    ocra_store_event_free(ev);
}

/* The VM instructions SQLite ran for the statements of st since the last call. */
static int64_t
vm_steps(struct ocra_store *st)
{
    int64_t n = 0;

    for (sqlite3_stmt *s = sqlite3_next_stmt(st->db, NULL); s; s = sqlite3_next_stmt(st->db, s))
        n += sqlite3_stmt_status(s, SQLITE_STMTSTATUS_VM_STEP, 1);
    return n;
}

/* The journal's tables and the aliases the store gives them. */
static bool
journal_table(const char *name, size_t len)
{
    static const char *const names[] = {"events", "pipeline", "stages", "allocations", "runs",
                                        "images", "e",        "p",      "n",           "s"};

    for (size_t i = 0; i < OCRA_ARRAY_LEN(names); i++)
        if (strlen(names[i]) == len && !strncmp(names[i], name, len))
            return true;
    return false;
}

/* Fails for each statement prepared on st whose plan reads a journal table from end to end
 * ("SCAN t" or "SCAN t USING INDEX i"; a SEARCH is an index lookup or range). */
static void
check_no_full_scan(struct ocra_store *st)
{
    for (sqlite3_stmt *s = sqlite3_next_stmt(st->db, NULL); s; s = sqlite3_next_stmt(st->db, s)) {
        const char *sql = sqlite3_sql(s);
        sqlite3_stmt *eqp = NULL;
        char *q = NULL;

        if (!sql || strncmp(sql, "EXPLAIN", 7) == 0 || !strpbrk(sql, " "))
            continue;
        q = sqlite3_mprintf("EXPLAIN QUERY PLAN %s", sql);
        CHECK(sqlite3_prepare_v2(st->db, q, -1, &eqp, NULL) == SQLITE_OK);
        while (eqp && sqlite3_step(eqp) == SQLITE_ROW) {
            const char *d = (const char *)sqlite3_column_text(eqp, 3);

            if (d && !strncmp(d, "SCAN ", 5) && journal_table(d + 5, strcspn(d + 5, " "))) {
                fprintf(stderr, "  full scan: %s\n    in: %.300s\n", d, sql);
                CHECK(!"a hot statement reads a whole table");
            }
        }
        sqlite3_finalize(eqp);
        sqlite3_free(q);
    }
}

/* The claim's pick of the next row sorts nothing: its plan has no "USE TEMP B-TREE" (a
 * temporary B-tree built and freed inside every claim's write transaction). */
static void
test_claim_pick_builds_no_temp_btree(void)
{
    struct ocra_store_claim c = {0};
    struct ocra_err err = {0};
    struct ocra_store *st = NULL;
    bool seen = false;
    struct tmpdb t;

    fixture_init();
    CHECK(tmpdb_init(&t) == 0);
    if (!(st = open_db(t.path)))
        goto out;
    CHECK(ocra_store_append(st, "ain:0", fx.ev, 3, NULL, NULL, &err) == 0);
    CHECK(ocra_store_pipeline_intake(st, "build", "report", NULL, &err) == 0);
    CHECK(claim_one(st, &claim_w1, &c));
    ocra_store_claim_fini(&c);
    for (sqlite3_stmt *s = sqlite3_next_stmt(st->db, NULL); s; s = sqlite3_next_stmt(st->db, s)) {
        const char *sql = sqlite3_sql(s);
        sqlite3_stmt *eqp = NULL;
        char *q = NULL;

        if (!sql || strncmp(sql, "SELECT event_id, stage, state, claim, claimed_by FROM", 53))
            continue;
        seen = true;
        q = sqlite3_mprintf("EXPLAIN QUERY PLAN %s", sql);
        CHECK(sqlite3_prepare_v2(st->db, q, -1, &eqp, NULL) == SQLITE_OK);
        while (eqp && sqlite3_step(eqp) == SQLITE_ROW) {
            const char *d = (const char *)sqlite3_column_text(eqp, 3);

            if (d && strstr(d, "TEMP B-TREE")) {
                fprintf(stderr, "  %s\n    in: %.300s\n", d, sql);
                CHECK(!"the pick sorts");
            }
        }
        sqlite3_finalize(eqp);
        sqlite3_free(q);
    }
    CHECK(seen);
out:
    ocra_store_close(st);
    tmpdb_fini(&t);
}

static void
test_hot_queries_use_indexes_and_do_not_grow_with_the_journal(void)
{
    struct big small, large;
    int64_t s_small, s_large;

    if (big_init(&small, 200) < 0 || big_init(&large, 4000) < 0) {
        CHECK(!"journals");
        goto out;
    }
    hot_calls(&small); /* prepares every statement once */
    hot_calls(&large);
    check_no_full_scan(large.st);
    (void)vm_steps(small.st);
    (void)vm_steps(large.st);
    hot_calls(&small);
    hot_calls(&large);
    s_small = vm_steps(small.st);
    s_large = vm_steps(large.st);
    /* 20x the events: the same work, give or take the depth of a b-tree */
    if (s_large > 2 * s_small)
        fprintf(stderr, "  VM steps: %" PRId64 " at 200 events, %" PRId64 " at 4000\n", s_small,
                s_large);
    CHECK(s_large <= 2 * s_small);
out:
    big_fini(&small);
    big_fini(&large);
}

/* ---- counters ---- */

struct tally {
    char key[64][96];
    int64_t n[64];
    size_t len;
};

static void
tally_add(struct tally *t, const char *key, int64_t n)
{
    size_t i;

    for (i = 0; i < t->len && strcmp(t->key[i], key) != 0; i++)
        ;
    if (i == t->len) {
        if (t->len == OCRA_ARRAY_LEN(t->key))
            return;
        (void)snprintf(t->key[t->len++], sizeof(t->key[0]), "%s", key);
    }
    t->n[i] += n;
}

static void
tally_event_count(const char *status, const char *chain, int64_t n, void *arg)
{
    char key[96];

    (void)snprintf(key, sizeof(key), "event %s %s", status, chain);
    tally_add(arg, key, n);
}

static void
tally_pipe_count(const char *state, const char *status, const char *outcome, int64_t n, void *arg)
{
    char key[96];

    (void)snprintf(key, sizeof(key), "pipe %s %s %s", state, status, outcome);
    tally_add(arg, key, n);
}

/* The recount: every event and pipeline row read and counted here. */
static int
tally_row(const struct ocra_store_event *ev, const struct ocra_store_pipeline *p, void *arg)
{
    tally_event_count(ev->status, ev->chain, 1, arg);
    if (p)
        tally_pipe_count(p->state, p->status, p->outcome ? p->outcome : "", 1, arg);
    return 0;
}

/* Every non-zero counter equals the recount and every recounted key has its counter. */
static bool
counters_match(struct ocra_store *st)
{
    struct tally *kept = ocra_xcalloc(1, sizeof(*kept)), *re = ocra_xcalloc(1, sizeof(*re));
    struct ocra_err err = {0};
    bool ok = ocra_store_event_counts(st, tally_event_count, kept, &err) == 0 &&
              ocra_store_pipeline_counts(st, tally_pipe_count, kept, &err) == 0 &&
              ocra_store_pipeline_list(st, NULL, tally_row, re, &err) == 0;

    for (size_t i = 0; ok && i < kept->len; i++) {
        int64_t want = 0;

        for (size_t j = 0; j < re->len; j++)
            if (!strcmp(re->key[j], kept->key[i]))
                want = re->n[j];
        if (kept->n[i] != want)
            fprintf(stderr, "  counter %s: %" PRId64 ", recount %" PRId64 "\n", kept->key[i],
                    kept->n[i], want);
        ok = kept->n[i] == want;
    }
    for (size_t j = 0; ok && j < re->len; j++) {
        bool found = false;

        for (size_t i = 0; i < kept->len; i++)
            found = found || !strcmp(re->key[j], kept->key[i]);
        if (!found)
            fprintf(stderr, "  no counter for %s (%" PRId64 " rows)\n", re->key[j], re->n[j]);
        ok = found;
    }
    free(kept);
    free(re);
    return ok;
}

/* One random step of a worker, a watcher or an operator. */
static void
churn_step(struct ocra_store *st, unsigned r)
{
    static const char *const gated[] = {"allocate"};
    static const char *const stages[] = {"validate", "plan", "allocate", "run", "report"};
    static const char *const outcomes[] = {"done", "done",    "done",    "retry",
                                           "dead", "waiting", "released"};
    const struct ocra_store_claim_opts o = {
        .worker = "w",
        .lease_ms = r % 17 == 0 ? 0 : 60000, /* some leases expire at once */
        .gated = gated,
        .n_gated = 1,
        .superseded_stage = "report"};
    const char *outcome = outcomes[(r >> 4) % OCRA_ARRAY_LEN(outcomes)];
    const char *stage = stages[(r >> 8) % OCRA_ARRAY_LEN(stages)];
    struct ocra_store_claim c = {0};
    struct ocra_err err = {0};
    bool finish = !strcmp(stage, "report") && !strcmp(outcome, "done");

    if (r % 13 == 0) {
        (void)ocra_store_stage_retry(st, fx.id[(r >> 4) % 300], &err); /* dead or not */
    } else if (r % 11 == 0) {
        (void)ocra_store_stage_wake(st, NULL, &err);
    } else if (r % 7 == 0) {
        (void)ocra_store_event_set_status(st, fx.id[(r >> 4) % 300],
                                          (r >> 12) % 2 ? "rejected" : "accepted", "churn", &err);
    } else if (claim_one(st, &o, &c)) {
        const char *state =
            !strcmp(outcome, "dead") || !strcmp(outcome, "waiting") ? outcome : "ready";

        if (end_with(st, &c, outcome, !strcmp(outcome, "done") ? "validated" : NULL,
                     finish ? "" : stage, state, &err) < 0 &&
            err.code != ESTALE) {
            fprintf(stderr, "  end: %s\n", err.msg);
            CHECK(!"the end of an attempt");
        }
    }
    ocra_store_claim_fini(&c);
}

static void
test_counters_equal_a_recount_after_churn(void)
{
    struct ocra_err err = {0};
    struct ocra_store *st = NULL;
    sqlite3 *db = NULL;
    unsigned r = 12345;
    struct tmpdb t;

    fixture_init();
    for (int i = 0; i < 300; i += 7) { /* the watcher rejects some */
        fx.ev[i].status = "rejected";
        fx.ev[i].reason = "untrusted";
        fx.ev[i].chain = i % 2 ? "ain:0" : "ain:1";
    }
    CHECK(tmpdb_init(&t) == 0);
    if (!(st = open_db(t.path)))
        goto out;
    for (int round = 0; round < 6; round++) {
        CHECK(ocra_store_append(st, "ain:0", &fx.ev[round * 50], 50, NULL, NULL, &err) == 0);
        CHECK(ocra_store_pipeline_intake(st, "validate", "report", NULL, &err) == 0);
        for (int k = 0; k < 400; k++) {
            r = r * 1103515245u + 12345u;
            churn_step(st, r >> 3);
        }
        CHECK(counters_match(st));
    }
    ocra_store_close(st);
    /* the migration counts an existing journal: drop what it made, then open again */
    CHECK(sqlite3_open(t.path, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db,
                       "DROP TABLE event_counts; DROP TABLE pipeline_counts;"
                       "DROP TRIGGER event_counts_insert; DROP TRIGGER event_counts_update;"
                       "DROP TRIGGER event_counts_delete; DROP TRIGGER pipeline_counts_insert;"
                       "DROP TRIGGER pipeline_counts_update; DROP TRIGGER pipeline_counts_delete;"
                       "DROP INDEX pipeline_state; DROP INDEX pipeline_status;"
                       "DROP INDEX pipeline_outcome; DROP INDEX allocations_state;"
                       "ALTER TABLE pipeline DROP COLUMN crashes;" /* what 6 -> 7 added */
                       "ALTER TABLE pipeline DROP COLUMN owner_scope;"
                       "ALTER TABLE pipeline DROP COLUMN owner_pid;"
                       "ALTER TABLE pipeline DROP COLUMN owner_start;"
                       "ALTER TABLE events DROP COLUMN refusal;" /* what 7 -> 8 added */
                       "PRAGMA user_version = 5",
                       NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    if (!(st = open_db(t.path)))
        goto out;
    CHECK_INT(ocra_store_schema_version(st), OCRA_STORE_SCHEMA_VERSION);
    CHECK(counters_match(st));
out:
    for (int i = 0; i < 300; i += 7) {
        fx.ev[i].status = NULL;
        fx.ev[i].reason = NULL;
        fx.ev[i].chain = "ain:0";
    }
    ocra_store_close(st);
    tmpdb_fini(&t);
}

/* ---- intake beside busy workers ---- */

struct churner {
    const char *path;
    volatile int *stop;
    int64_t claims;
    char error[OCRA_ERR_MAX]; /* the first journal error */
};

/* A worker: claims and retries at once, keeping every row ready, until stopped. */
static void *
churner_main(void *arg)
{
    struct churner *w = arg;
    const struct ocra_store_claim_opts o = {.worker = "churner", .lease_ms = 60000};
    struct ocra_store *st = NULL;
    struct ocra_err err = {0};

    if (ocra_store_open(w->path, &st, &err) < 0)
        goto out;
    while (!*w->stop && !err.code) {
        struct ocra_store_claim c = {0};
        struct ocra_store_stage_end e = {.outcome = "retry", .state = "ready", .error = "x"};
        bool found = false;

        if (ocra_store_stage_claim(st, &o, &c, &found, &err) == 0 && found) {
            e.next_ms = ocra_time_wall_ms();
            (void)ocra_store_stage_end(st, c.event_id, c.claim, &e, &err);
            w->claims++;
        }
        ocra_store_claim_fini(&c);
    }
out:
    if (err.code)
        (void)snprintf(w->error, sizeof(w->error), "%s", err.msg);
    ocra_store_close(st);
    return NULL;
}

/* Appends n events after b's (a watcher's backfill), not taken in yet. */
static int
big_backfill(struct big *b, size_t n, struct ocra_err *err)
{
    struct ocra_store_event ev[500];
    char id[500][96], tx[500][67];

    for (size_t done = 0; done < n;) {
        size_t k = n - done < 500 ? n - done : 500;

        for (size_t j = 0; j < k; j++) {
            (void)snprintf(tx[j], sizeof(tx[j]), "0x%064zx", b->n + done + j);
            (void)snprintf(id[j], sizeof(id[j]), "ain:0:%.66s:0", tx[j]);
            ev[j] = (struct ocra_store_event){.id = id[j],
                                              .chain = "ain:0",
                                              .tx_hash = tx[j],
                                              .block_number = 1,
                                              .trusted = true,
                                              .path = "/apps/ocra/models/new",
                                              .spec = spec_json};
        }
        if (ocra_store_append(b->st, "ain:0", ev, k, NULL, NULL, err) < 0)
            return -1;
        done += k;
    }
    return 0;
}

static void
test_intake_is_not_locked_out_by_churning_workers(void)
{
    struct churner w[3] = {0};
    pthread_t th[3];
    volatile int stop = 0;
    struct ocra_err err = {0};
    struct big b;
    size_t added = 0;
    int started = 0;

    /* a backlog of 5,000 ready events, and 100,000 more journaled by a watcher's backfill */
    if (big_init(&b, 5000) < 0 || big_backfill(&b, 100000, &err) < 0) {
        CHECK(!"journal");
        goto out;
    }
    for (; started < 3; started++) {
        w[started] = (struct churner){.path = b.t.path, .stop = &stop};
        if (pthread_create(&th[started], NULL, churner_main, &w[started]) != 0)
            break;
    }
    /* the supervisor takes the backfill in while the workers churn */
    if (ocra_store_pipeline_intake(b.st, "validate", "report", &added, &err) == 0)
        CHECK_INT(added, 100000);
    if (err.code)
        fprintf(stderr, "  intake: %s\n", err.msg);
    CHECK_INT(err.code, 0);
    stop = 1;
    for (int i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
        if (w[i].error[0])
            fprintf(stderr, "  worker %d: %s\n", i, w[i].error);
        CHECK(w[i].error[0] == '\0');
        CHECK(w[i].claims > 0);
    }
out:
    big_fini(&b);
}

static int
count_commit(void *arg)
{
    (*(int *)arg)++;
    return 0; /* go on with the commit */
}

/* A big intake or wake is several short write transactions, not one long one: a worker or a
 * watcher waiting for the write lock gets it between them. */
static void
test_intake_and_wake_commit_in_chunks(void)
{
    struct ocra_err err = {0};
    size_t added = 0, woken = 0;
    int commits = 0;
    struct big b;

    if (big_init(&b, 30) < 0 || big_backfill(&b, 1200, &err) < 0) {
        CHECK(!"journal");
        goto out;
    }
    sqlite3_commit_hook(b.st->db, count_commit, &commits);
    CHECK(ocra_store_pipeline_intake(b.st, "validate", "report", &added, &err) == 0);
    CHECK_INT(added, 1200);
    CHECK(commits >= 3);
    CHECK(sqlite3_exec(b.st->db, "UPDATE pipeline SET state = 'waiting' WHERE state = 'ready'",
                       NULL, NULL, NULL) == SQLITE_OK); /* every event's stage not built in */
    commits = 0;
    CHECK(ocra_store_stage_wake(b.st, &woken, &err) == 0);
    CHECK_INT(woken, 1210); /* with the one waiting before */
    CHECK(commits >= 3);
    sqlite3_commit_hook(b.st->db, NULL, NULL);
out:
    big_fini(&b);
}

struct hog {
    const char *path;
    volatile int *stop;
    long txs;
    char error[OCRA_ERR_MAX];
};

/* A writer that commits and begins again at once, until stopped. */
static void *
hog_main(void *arg)
{
    struct hog *h = arg;
    struct ocra_store *st = NULL;
    struct ocra_err err = {0};
    char id[96];

    if (ocra_store_open(h->path, &st, &err) < 0)
        goto out;
    while (!*h->stop && h->txs < 200000 && ocra_store_begin(st, &err) == 0) {
        for (int i = 0; i < 1000 && !err.code; i++) { /* a long transaction */
            (void)snprintf(id, sizeof(id), "ain:0:0x%064x:0", i % 100);
            (void)ocra_store_event_set_status(st, id, h->txs % 2 ? "rejected" : "accepted", "x",
                                              &err);
        }
        if (err.code) {
            ocra_store_rollback(st);
            break;
        }
        if (ocra_store_commit(st, &err) < 0)
            break;
        h->txs++;
    }
out:
    if (err.code)
        (void)snprintf(h->error, sizeof(h->error), "%s", err.msg);
    ocra_store_close(st);
    return NULL;
}

/* The writers of a journal in one process take turns: one that commits and begins again at
 * once does not keep another one out (SQLite's busy handler alone lost to it every time). */
static void
test_writers_of_a_journal_take_turns(void)
{
    struct ocra_store_claim c = {0};
    struct ocra_err err = {0};
    volatile int stop = 0;
    struct hog h = {0};
    bool found = false;
    pthread_t th;
    struct big b;

    if (big_init(&b, 100) < 0) {
        CHECK(!"journal");
        goto out;
    }
    h = (struct hog){.path = b.t.path, .stop = &stop};
    if (pthread_create(&th, NULL, hog_main, &h) != 0) {
        CHECK(!"thread");
        goto out;
    }
    while (h.txs < 3 && !h.error[0])
        ocra_sleep_ms(5);
    for (int i = 0; i < 10 && !err.code; i++) { /* a worker's claims and ends */
        CHECK(ocra_store_stage_claim(b.st, &claim_w1, &c, &found, &err) == 0 && found);
        if (found)
            CHECK(end_with(b.st, &c, "retry", NULL, NULL, "ready", &err) == 0);
        ocra_store_claim_fini(&c);
    }
    if (err.code)
        fprintf(stderr, "  claim beside the busy writer: %s\n", err.msg);
    stop = 1;
    pthread_join(th, NULL);
    if (h.error[0])
        fprintf(stderr, "  busy writer: %s\n", h.error);
    CHECK(h.error[0] == '\0');
out:
    big_fini(&b);
}

/* Every value the schema lets pipeline's status, outcome and state hold, and the watcher's two
 * verdicts, is a status `ocra events --status` and /api/v1/events?status= accept (a state added to
 * a CHECK list without ocra_store_statuses would be refused as unknown). */
static void
test_statuses_cover_the_schema(void)
{
    static const char sql[] = "SELECT sql FROM sqlite_master WHERE name = 'pipeline'";
    struct ocra_store *st = NULL;
    sqlite3_stmt *s = NULL;
    int tables = 0, values = 0;
    struct tmpdb t;

    CHECK(tmpdb_init(&t) == 0);
    if (!(st = open_db(t.path)))
        goto out;
    CHECK(sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) == SQLITE_OK);
    while (s && sqlite3_step(s) == SQLITE_ROW) {
        const char *p = (const char *)sqlite3_column_text(s, 0);

        tables++;
        /* Each "<column> IN ('a', 'b', ...)" of status, outcome or state. */
        while ((p = strstr(p, " IN ('")) != NULL) {
            const char *col = p;
            bool listed;

            while (col[-1] != ' ' && col[-1] != '(') /* the word before " IN" */
                col--;
            listed = !strncmp(col, "status ", 7) || !strncmp(col, "outcome ", 8) ||
                     !strncmp(col, "state ", 6);
            for (p += 5; *p == '\''; p += strspn(p, ", ")) {
                char v[32];
                size_t n = strcspn(p + 1, "'");

                snprintf(v, sizeof(v), "%.*s", (int)n, p + 1);
                p += n + 2;
                if (!listed)
                    continue;
                values++;
                if (!ocra_store_status_known(v))
                    fprintf(stderr, "  schema value '%s' is not in ocra_store_statuses\n", v);
                CHECK(ocra_store_status_known(v));
            }
        }
    }
    CHECK_INT(tables, 1);
    CHECK(values > 20);
    CHECK(ocra_store_status_known("accepted") && ocra_store_status_known("rejected"));
    CHECK(!ocra_store_status_known("bogus"));
out:
    sqlite3_finalize(s);
    ocra_store_close(st);
    tmpdb_fini(&t);
}

/* ---- large journals (end) */

OCRA_TEST_MAIN(OCRA_TEST(test_events_are_idempotent_across_restart),
               OCRA_TEST(test_failed_batch_changes_nothing),
               OCRA_TEST(test_watcher_batch_with_models_is_one_transaction),
               OCRA_TEST(test_model_paths_below_a_prefix),
               OCRA_TEST(test_migrations_run_once_and_refuse_newer_schema),
               OCRA_TEST(test_stage_end_status_sets_outcome),
               OCRA_TEST(test_claim_pick_builds_no_temp_btree),
               OCRA_TEST(test_stage_orphaned_event_stops_at_next_boundary),
               OCRA_TEST(test_wal_and_stage_tables_have_their_keys),
               OCRA_TEST(test_event_status_get_and_reason),
               OCRA_TEST(test_event_list_orders_filters_and_limits),
               OCRA_TEST(test_model_put_get_replace_remove),
               OCRA_TEST(test_open_fails_cleanly_on_a_non_database),
               OCRA_TEST(test_second_connection_keeps_the_wal_alive),
               OCRA_TEST(test_stage_intake_claim_end_and_history),
               OCRA_TEST(test_stage_retry_backoff_dead_letter_and_ocra_retry),
               OCRA_TEST(test_stage_waiting_does_not_burn_attempts_and_wakes),
               OCRA_TEST(test_stage_queued_keeps_attempts_and_first_queued_time),
               OCRA_TEST(test_stage_lease_takeover_fences_the_old_holder),
               OCRA_TEST(test_stage_dead_owner_on_this_machine_taken_over_at_once),
               OCRA_TEST(test_stage_other_machine_claim_waits_for_its_lease),
               OCRA_TEST(test_stage_supersession_gates_allocation_only),
               OCRA_TEST(test_queue_supersede_moves_queued_older_versions),
               OCRA_TEST(test_pipeline_list_filters_by_any_status),
               OCRA_TEST(test_statuses_cover_the_schema),
               OCRA_TEST(test_run_put_is_idempotent_and_end_is_kept),
               OCRA_TEST(test_run_refuses_bad_input_with_reasons),
               OCRA_TEST(test_stage_released_keeps_the_stage_and_attempts),
               OCRA_TEST(test_hot_queries_use_indexes_and_do_not_grow_with_the_journal),
               OCRA_TEST(test_counters_equal_a_recount_after_churn),
               OCRA_TEST(test_intake_is_not_locked_out_by_churning_workers),
               OCRA_TEST(test_intake_and_wake_commit_in_chunks),
               OCRA_TEST(test_writers_of_a_journal_take_turns))
