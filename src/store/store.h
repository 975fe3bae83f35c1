/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store: the journal, one SQLite database in WAL mode. It records every chain event ocra saw
 * (accepted or rejected, with the reason), each source's cursor, the materialised value of
 * each watched model, and the tables the later stages write (stages, images, runs). Every
 * call is one transaction unless the caller opened one with ocra_store_begin(), in which case
 * the call joins it (as a savepoint, so a failed call leaves the caller's work intact). The
 * schema is migrated to the latest version by ocra_store_open(). An ocra_store is one
 * connection for one thread; open one per thread.
 */
#ifndef OCRA_STORE_H
#define OCRA_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

/* The schema version this build creates and understands (PRAGMA user_version). */
#define OCRA_STORE_SCHEMA_VERSION 4

/* Room for "0x" + 64 hex digits + NUL. */
#define OCRA_STORE_HASH_MAX 67

struct ocra_store;

/*
 * Opens the journal at path, creating it (mode 0600) when missing, and migrates it to
 * OCRA_STORE_SCHEMA_VERSION. Fails with EPROTO when the file's schema is newer than this
 * build; EAGAIN when another process holds the database locked for longer than the busy
 * timeout. On success *out is the store; caller frees with ocra_store_close().
 */
int ocra_store_open(const char *path, struct ocra_store **out, struct ocra_err *err);
/* Closes the store, rolling back a transaction left open. NULL is a no-op. */
void ocra_store_close(struct ocra_store *st);
/* The schema version of the open database (PRAGMA user_version); -1 if it cannot be read. */
int ocra_store_schema_version(struct ocra_store *st);

/*
 * Explicit transactions, for a change that spans several calls (the chain watcher's batch:
 * model puts + ocra_store_append). Nested begins become savepoints. Every begin is matched by
 * exactly one commit or rollback. A failed commit has rolled back.
 */
int ocra_store_begin(struct ocra_store *st, struct ocra_err *err);
int ocra_store_commit(struct ocra_store *st, struct ocra_err *err);
void ocra_store_rollback(struct ocra_store *st);

/* ---- events ------------------------------------------------------------------------------ */

/*
 * One chain event. As input to ocra_store_append: id, chain, tx_hash and status-specific
 * fields are required, the rest may be NULL/0; source is NULL or equal to the batch's source;
 * status NULL means "accepted"; a "rejected" event needs a reason; observed_ms 0 means now;
 * seq, created_ms and updated_ms are ignored. As output every field is filled (text fields
 * that were stored as NULL stay NULL).
 *
 * id: `ain:<chain_id>:<tx_hash>:<op_index>` or `evm:<chain_id>:<block_hash>:<log_index>`.
 * chain: `<kind>:<chain_id>` ("ain:0", "evm:31337"). source: the configured source ("ain:0").
 * spec: the canonical spec JSON (NULL for a removal, raw text allowed when rejected).
 * status: accepted, rejected, planned, built, pushed, allocated, running, done, failed.
 */
struct ocra_store_event {
    const char *id;
    const char *source;
    const char *chain;
    int64_t block_number;
    const char *block_hash;
    const char *tx_hash;
    int64_t op_index;
    const char *signer;
    bool trusted;
    const char *path;
    const char *spec;
    const char *status;
    const char *reason;
    int64_t observed_ms;
    int64_t seq; /* journal order: increases with every inserted event */
    int64_t created_ms;
    int64_t updated_ms;
};

/* A source's position: the last block fully processed, and its hash for reorg checks. */
struct ocra_store_cursor {
    int64_t block_number;
    char block_hash[OCRA_STORE_HASH_MAX]; /* "" when the chain gives none */
};

/*
 * In one transaction (or savepoint): inserts the n events whose id is not in the journal yet
 * (an existing id is left untouched: the first write wins) and, when cursor is not NULL, sets
 * source's cursor to it. Either everything is written or nothing: on failure (EINVAL for an
 * event that breaks a constraint) neither events nor the cursor changed. *inserted (may be
 * NULL) is the number of new rows.
 */
int ocra_store_append(struct ocra_store *st, const char *source, const struct ocra_store_event *evs,
                      size_t n, const struct ocra_store_cursor *cursor, size_t *inserted,
                      struct ocra_err *err);

/* Reads source's cursor into *out; *found is false (and *out untouched) when it has none. */
int ocra_store_cursor_get(struct ocra_store *st, const char *source, struct ocra_store_cursor *out,
                          bool *found, struct ocra_err *err);

int ocra_store_event_count(struct ocra_store *st, int64_t *out, struct ocra_err *err);

/* Called once per (status, chain) pair with its number of events; strings borrowed. */
typedef void ocra_store_count_fn(const char *status, const char *chain, int64_t n, void *arg);
/* Counts the events by status and chain (for the metrics). */
int ocra_store_event_counts(struct ocra_store *st, ocra_store_count_fn *fn, void *arg,
                            struct ocra_err *err);

/*
 * Looks up an event by id. *out is the event or NULL when there is none; caller frees with
 * ocra_store_event_free().
 */
int ocra_store_event_get(struct ocra_store *st, const char *id, struct ocra_store_event **out,
                         struct ocra_err *err);

/* Sets an event's status and reason (NULL clears it). ENOENT: no such id; EINVAL: bad status. */
int ocra_store_event_set_status(struct ocra_store *st, const char *id, const char *status,
                                const char *reason, struct ocra_err *err);

/* Which events ocra_store_event_list visits. NULL members match everything; limit 0: no limit. */
struct ocra_store_event_filter {
    const char *source;
    const char *status;
    bool newest_first; /* journal order (seq), oldest first by default */
    int64_t limit;
    int64_t before_seq; /* > 0: only events with a smaller seq (the next page, newest first) */
};

/*
 * Called once per listed event; ev is borrowed, valid until the callback returns (keep it
 * with ocra_store_event_dup()). Returns 0 to go on, anything else to stop the listing (which
 * is not an error). It must not call ocra_store_event_list on the same store.
 */
typedef int ocra_store_event_fn(const struct ocra_store_event *ev, void *arg);

/* Calls fn for each event matching filter (NULL: all, oldest first). */
int ocra_store_event_list(struct ocra_store *st, const struct ocra_store_event_filter *filter,
                          ocra_store_event_fn *fn, void *arg, struct ocra_err *err);

/*
 * The event as the CLI and the HTTP API show it (event, seq, chain, block, blockHash, txHash,
 * opIndex, path, signer, trusted, status, removed, spec, reason, observedMs, updatedMs).
 * Caller json_decref()s.
 */
json_t *ocra_store_event_to_json(const struct ocra_store_event *ev);

/* Deep copy in one allocation; caller frees with ocra_store_event_free(). */
struct ocra_store_event *ocra_store_event_dup(const struct ocra_store_event *ev);
/* Frees an event from ocra_store_event_get/_dup. NULL is a no-op. */
void ocra_store_event_free(struct ocra_store_event *ev);

/* ---- models: the last merged value of each watched model -------------------------------- */

/*
 * Sets the value (JSON text, EINVAL if not valid JSON) of model path for source, as of
 * block_number; a NULL value removes the model. Meant to run inside the batch's transaction.
 */
int ocra_store_model_put(struct ocra_store *st, const char *source, const char *path,
                         const char *value, int64_t block_number, struct ocra_err *err);

/*
 * Reads model path for source. *value is the JSON text or NULL when there is no such model;
 * caller frees with free(). block_number (may be NULL) receives the block of the last update.
 */
int ocra_store_model_get(struct ocra_store *st, const char *source, const char *path, char **value,
                         int64_t *block_number, struct ocra_err *err);

/* ---- allocations (begin) ------------------------------------------------------------------ */

/*
 * Allocations (store_alloc.c): which node and GPU devices an event's workload (one row per
 * replica) holds. At most one held allocation per (event, replica); a release keeps the row
 * as history (state "released"). The store keeps what the placer decided and never decides.
 */
#define OCRA_STORE_ALLOC_MAX_DEVS 16
#define OCRA_STORE_ID_MAX 513   /* an event id (at most 512 bytes) with the NUL */
#define OCRA_STORE_NODE_MAX 128 /* a node name with the NUL */

struct ocra_store_alloc {
    char event_id[OCRA_STORE_ID_MAX];
    int replica; /* 0 for a workload without replicas */
    char node[OCRA_STORE_NODE_MAX];
    int n_devs;
    int devs[OCRA_STORE_ALLOC_MAX_DEVS]; /* device indices on the node */
    int gpu_milli;                       /* taken from each device, 0..1000 */
    int64_t gpu_mem_mib, cpu_milli, ram_mib;
    bool held;
    int64_t created_ms, released_ms; /* released_ms 0 while held; both ignored by insert */
};

/*
 * Reads the held allocation of (event_id, replica) into *out; *found is false (and *out
 * untouched) when there is none.
 */
int ocra_store_alloc_held(struct ocra_store *st, const char *event_id, int replica,
                          struct ocra_store_alloc *out, bool *found, struct ocra_err *err);
/*
 * Records a as held. EEXIST when (event, replica) already holds one; EINVAL when a breaks a
 * constraint (no such event, bounds).
 */
int ocra_store_alloc_insert(struct ocra_store *st, const struct ocra_store_alloc *a,
                            struct ocra_err *err);
/*
 * Marks the held allocation of (event_id, replica) released (replica -1: every replica of the
 * event). *n (may be NULL) is the number of rows released; none is not an error.
 */
int ocra_store_alloc_release(struct ocra_store *st, const char *event_id, int replica, size_t *n,
                             struct ocra_err *err);

/* Called once per listed allocation; a is borrowed. Non-zero stops the listing. */
typedef int ocra_store_alloc_fn(const struct ocra_store_alloc *a, void *arg);
/*
 * Calls fn for each allocation of event_id (NULL: of every event; held_only: the held ones),
 * oldest first. fn must not list allocations on the same store.
 */
int ocra_store_alloc_list(struct ocra_store *st, const char *event_id, bool held_only,
                          ocra_store_alloc_fn *fn, void *arg, struct ocra_err *err);

/* ---- allocations (end) -------------------------------------------------------------------- */

/* ---- images (begin) */

/*
 * One built image (the container image record of DESIGN.md §2 and how it was made). As input
 * to ocra_store_image_put: digest, repo and record are required; tags is a JSON array text
 * (NULL: "[]"); created_ms 0 means now. event is the chain event id that caused the build,
 * journaled or not (the events foreign key, images.event_id, is set only when the journal has
 * it). signature is the digest of the signature manifest, NULL when unsigned. record is the
 * JSON of the image record (imageId = digest, annotations, layers...). As output every field
 * is filled (NULL where stored as NULL).
 */
struct ocra_store_image {
    const char *digest;
    const char *registry; /* "host[:port]" */
    const char *repo;
    const char *tags;
    const char *event;
    const char *spec_hash;
    const char *toolchain_hash;
    const char *signature;
    const char *record;
    const char *build_log; /* the toolchain build's log tail, when this build ran one */
    int64_t created_ms;
};

/*
 * Inserts the image, or updates the row of the same digest (tags, signature, record and
 * build log are replaced; a NULL signature or build log keeps the stored one): putting the
 * same image twice is a no-op. EINVAL on a bad digest or JSON.
 */
int ocra_store_image_put(struct ocra_store *st, const struct ocra_store_image *im,
                         struct ocra_err *err);
/* *out: the image of digest, or NULL when none; caller frees with ocra_store_image_free(). */
int ocra_store_image_get(struct ocra_store *st, const char *digest, struct ocra_store_image **out,
                         struct ocra_err *err);
/* *out: the newest image built for event id, or NULL; caller frees with ocra_store_image_free(). */
int ocra_store_image_by_event(struct ocra_store *st, const char *event,
                              struct ocra_store_image **out, struct ocra_err *err);
/* Called per image, oldest first; im borrowed until it returns; nonzero stops (not an error). */
typedef int ocra_store_image_fn(const struct ocra_store_image *im, void *arg);
int ocra_store_image_list(struct ocra_store *st, ocra_store_image_fn *fn, void *arg,
                          struct ocra_err *err);
/* NULL is a no-op. */
void ocra_store_image_free(struct ocra_store_image *im);

/* ---- images (end) */

#endif
