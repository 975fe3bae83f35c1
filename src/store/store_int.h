/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_int.h: what store.c (connection, schema, transactions) shares with store_event.c
 * (events, cursors, models): the connection struct, its cache of prepared statements, and the
 * mapping of SQLite results to ocra errors. Not for use outside src/store.
 */
#ifndef OCRA_STORE_INT_H
#define OCRA_STORE_INT_H

#include <sqlite3.h>

#include "store/store.h"

/* Every statement the store runs, prepared once per connection on first use. */
enum ocra_store_stmt_id {
    OCRA_STORE_STMT_BEGIN,
    OCRA_STORE_STMT_COMMIT,
    OCRA_STORE_STMT_ROLLBACK,
    OCRA_STORE_STMT_SAVEPOINT,
    OCRA_STORE_STMT_RELEASE,
    OCRA_STORE_STMT_ROLLBACK_TO,
    OCRA_STORE_STMT_EVENT_INSERT,
    OCRA_STORE_STMT_EVENT_GET,
    OCRA_STORE_STMT_EVENT_COUNT,
    OCRA_STORE_STMT_EVENT_STATUS,
    OCRA_STORE_STMT_EVENT_LIST_ASC,
    OCRA_STORE_STMT_EVENT_LIST_DESC,
    OCRA_STORE_STMT_CURSOR_PUT,
    OCRA_STORE_STMT_CURSOR_GET,
    OCRA_STORE_STMT_MODEL_PUT,
    OCRA_STORE_STMT_MODEL_DEL,
    OCRA_STORE_STMT_MODEL_GET,
    OCRA_STORE_STMT_COUNT
};

struct ocra_store_turns;

struct ocra_store {
    sqlite3 *db;
    int tx_depth;                   /* 0: autocommit; 1: BEGIN IMMEDIATE; more: nested savepoints */
    struct ocra_store_turns *turns; /* the writers of this file in this process; NULL: none */
    sqlite3_stmt *stmts[OCRA_STORE_STMT_COUNT];
    struct {
        const char *sql; /* the caller's static text: the cache key is its address */
        sqlite3_stmt *stmt;
    } more[128];
};

/*
 * Returns the prepared statement id, ready for binding (borrowed; the caller resets it with
 * sqlite3_reset() when done so that no read transaction stays open), or NULL with err set.
 */
sqlite3_stmt *ocra_store_stmt(struct ocra_store *st, enum ocra_store_stmt_id id,
                              struct ocra_err *err);
/*
 * The same for statements outside the enum (the files added by later modules: stages, images,
 * allocations): sql must be a string with static storage, its address is the cache key.
 */
sqlite3_stmt *ocra_store_stmt_sql(struct ocra_store *st, const char *sql, struct ocra_err *err);
/*
 * Fills err from the SQLite result rc and the connection's message as "what: message";
 * returns -1. BUSY/LOCKED give EAGAIN, CONSTRAINT/MISMATCH/TOOBIG EINVAL (the caller's data
 * broke the schema), CORRUPT/NOTADB EPROTO, FULL ENOSPC, READONLY/PERM EACCES, others EIO.
 */
int ocra_store_sqlerr(struct ocra_store *st, int rc, struct ocra_err *err, const char *what);
/*
 * Steps a statement whose result rows are not needed, then resets it and clears its bindings.
 * bind_rc is the OR of the bind results (SQLITE_OK is 0); when it is not SQLITE_OK, the statement
 * is not stepped and err reports the failed bind.
 */
int ocra_store_exec_stmt(struct ocra_store *st, sqlite3_stmt *stmt, int bind_rc,
                         struct ocra_err *err, const char *what);

/*
 * Fills ev with borrowed pointers (valid until s steps or resets) into the current row of s,
 * whose first 17 columns are the events table's in this order: seq, id, source, chain,
 * block_number, block_hash, tx_hash, op_index, signer, trusted, path, spec, status, reason,
 * observed_ms, created_ms, updated_ms.
 */
void ocra_store_event_from_row(sqlite3_stmt *s, struct ocra_store_event *ev);

/*
 * A copy of the struct at obj (size bytes) in one allocation with the strings its members at
 * text_off[] point to (NULL stays NULL); the caller frees it with free().
 */
void *ocra_store_dup_flat(const void *obj, size_t size, const size_t *text_off, size_t n);

#endif
