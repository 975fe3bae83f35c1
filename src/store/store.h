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
#define OCRA_STORE_SCHEMA_VERSION 8

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
/* The events by status and chain (for the metrics), from the counters the journal keeps as
 * events are added or change (no event is read); a pair whose events all changed status is
 * reported with 0. */
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

/*
 * The statuses an event listing filters by (ocra_store_event_filter.status, `ocra events
 * --status`, /api/v1/events?status=): the watcher's verdict (accepted, rejected) and every
 * pipeline status, outcome and state the schema allows. NULL-terminated.
 */
extern const char *const ocra_store_statuses[];

/* True when s is one of ocra_store_statuses. */
bool ocra_store_status_known(const char *s);

/* ocra_store_statuses as "accepted, rejected, ..." in buf (size bytes, cut if too small);
 * returns buf. */
const char *ocra_store_status_join(char *buf, size_t size);

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

/* Called with each model path in turn (borrowed, valid during the call); non-zero stops. */
typedef int ocra_store_model_fn(const char *path, void *arg);
/*
 * Calls fn, in path order, for every model of source whose path lies below prefix: starts
 * with prefix + "/" ("" and "/" list every model). Returns -1 on a journal error, else 0.
 */
int ocra_store_model_paths(struct ocra_store *st, const char *source, const char *prefix,
                           ocra_store_model_fn *fn, void *arg, struct ocra_err *err);

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

/*
 * GPU use over time from the allocations: for each allocation held at or after since_ms,
 * fn(node, t_ms, gpu_milli, arg) once when it was taken (+ its GPUs x gpu_milli) and once when
 * it was released (-), in (node, time) order. A node's level at since_ms is the sum of its
 * changes up to then. Cost: one pass over the allocations held since since_ms and those still
 * held (the allocations table grows with placements; a window keeps the answer small).
 */
typedef int ocra_store_alloc_change_fn(const char *node, int64_t t_ms, int64_t gpu_milli,
                                       void *arg);
int ocra_store_alloc_changes(struct ocra_store *st, int64_t since_ms,
                             ocra_store_alloc_change_fn *fn, void *arg, struct ocra_err *err);

/* ---- allocations (end) -------------------------------------------------------------------- */

/* ---- images (begin) */

/*
 * One built image (the container image record of docs/SPEC.md and how it was made). As input
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

/* ---- runs (begin) */

/*
 * Runs (store_run.c): the workloads the run stage started, one row per runner job, keyed by
 * the runner's id (docker: the container id; slurm: the Slurm job id). The lineage's last
 * link: event -> image digest -> node and GPUs -> result. As input to ocra_store_run_put: id,
 * event_id, image_digest (an image of the journal: the sign stage records it) and runner are
 * required; gpus is a JSON array text (NULL: "[]"); state NULL is "running"; started_ms 0 is
 * now. As output every field is filled (NULL where stored as NULL; times 0 when unset).
 */
struct ocra_store_run {
    const char *id;
    const char *event_id;
    const char *image_digest; /* "sha256:<64 hex>" */
    const char *runner;       /* "docker", "slurm" */
    const char *node;         /* where it runs; NULL: not known yet */
    const char *gpus;         /* JSON array of device indices */
    const char *state;        /* pending, starting, running, succeeded, failed, stopped */
    const char *result;       /* JSON object {exitCode, logTail, durationMs} once ended */
    int64_t created_ms, started_ms, finished_ms, updated_ms;
};

/*
 * Records a started (or adopted) run: inserts it, or updates the row of the same id (node
 * when given, gpus, runner) keeping its first start and, once it ended, its end state: putting
 * the same run twice (a stage retried after a crash) adds no row. EINVAL when r is incomplete
 * or breaks the schema (unknown event or image, bad state or JSON).
 */
int ocra_store_run_put(struct ocra_store *st, const struct ocra_store_run *r, struct ocra_err *err);
/*
 * Records the end of run id: state (succeeded, failed or stopped), result (a JSON object
 * text), node when not NULL, finished_ms now. Ending it again replaces the result. ENOENT
 * when no such run; EINVAL on a state that is not an end or bad JSON.
 */
int ocra_store_run_end(struct ocra_store *st, const char *id, const char *state, const char *node,
                       const char *result, struct ocra_err *err);
/* *out: the run of id, or NULL when none; caller frees with ocra_store_run_free(). */
int ocra_store_run_get(struct ocra_store *st, const char *id, struct ocra_store_run **out,
                       struct ocra_err *err);
/* Called per run of the event, oldest first; r borrowed until it returns; nonzero stops. */
typedef int ocra_store_run_fn(const struct ocra_store_run *r, void *arg);
int ocra_store_run_list(struct ocra_store *st, const char *event_id, ocra_store_run_fn *fn,
                        void *arg, struct ocra_err *err);
/* NULL is a no-op. */
void ocra_store_run_free(struct ocra_store_run *r);
/*
 * The runs of event_id as a JSON array for `ocra lineage` and the HTTP API (store_lineage.c):
 * [{id, runner, node, gpus, state, imageDigest, result, createdMs, startedMs, finishedMs}],
 * oldest first. NULL with err set on a journal error; caller json_decref()s.
 */
json_t *ocra_store_runs_json(struct ocra_store *st, const char *event_id, struct ocra_err *err);

/* ---- runs (end) */

/* ---- daemon (begin): the stage machine (store_stage.c) --------------------------------- */

/*
 * Every journaled event enters the pipeline once (ocra_store_pipeline_intake) and then moves
 * through the daemon's stages. One row per event says where it is:
 *   status: the milestone reached: detected, validated, rejected, planned, toolchain, pushed,
 *           signed, allocated, running, completed, failed, superseded, orphaned, timeout,
 *           reported;
 *   outcome: completed, failed, rejected, superseded, orphaned or timeout once known (kept
 *            after `reported`; an orphaned event ends at status orphaned, never reported);
 *   stage: the next stage to run (the daemon's op name), NULL when the event is finished;
 *   state: ready (claimable once next_ms has passed), claimed (a worker holds it until
 *          lease_ms), waiting (its stage has no implementation yet), supervised (its workload
 *          runs: the daemon's supervisor wakes it when the workload ends or must be stopped),
 *          queued (no room yet), dead (dead letter, with
 *          last_error), done (finished).
 * Each attempt at a stage is a history row (stages table) with its start, end, outcome
 * (done, retry, dead, waiting, superseded, abandoned, released, orphaned, reopened, supervised,
 * queued), output
 * JSON and error.
 * A claim records its owner (the claiming process, struct ocra_proc_id). A claim whose
 * holder is gone (its process died, found at once on the same machine; or its lease ran
 * out) is `abandoned` and counted in crashes, never in attempts: a crash is not a failure
 * of the stage. Attempts and crashes count at the current stage and restart with the next.
 * Every function below is one transaction.
 */
struct ocra_store_pipeline {
    int64_t seq; /* the event's journal order */
    const char *event_id;
    const char *model;   /* "<source> <path>": the key of per-model ordering */
    const char *version; /* the spec's modelVersion; NULL when unknown */
    const char *status;
    const char *outcome; /* NULL until known */
    const char *stage;   /* NULL when finished */
    const char *state;
    int64_t attempts; /* attempts at the current stage, this one included when claimed */
    int64_t crashes;  /* claims at the current stage whose holder died (not attempts) */
    int64_t next_ms;  /* wall ms before which a ready row is not claimed */
    int64_t claim;    /* the history row of the current claim (a fencing token); 0: none */
    const char *claimed_by;
    int64_t lease_ms; /* wall ms when the claim expires */
    const char *last_error;
    const char *failed_stage; /* where it failed or was dead-lettered (for ocra retry) */
    int64_t created_ms;
    int64_t updated_ms;
};

/* One attempt at a stage (the lineage). */
struct ocra_store_stage_row {
    int64_t id;
    const char *stage;
    int64_t attempt;
    const char *worker;
    int64_t started_ms;
    int64_t finished_ms; /* 0 while running */
    const char *outcome; /* NULL while running */
    const char *output;  /* JSON or NULL */
    const char *error;
};

/*
 * Adds a pipeline row for every journaled event that has none (in journal order): a rejected
 * event enters at status rejected and stage rejected_stage, any other at status detected and
 * stage first_stage. The EVM source's internal paths (/.evm/...) are skipped. *added (may be
 * NULL) counts the new rows.
 */
int ocra_store_pipeline_intake(struct ocra_store *st, const char *first_stage,
                               const char *rejected_stage, size_t *added, struct ocra_err *err);

/* What a claim hands the worker; strings owned, release with ocra_store_claim_fini(). */
struct ocra_store_claim {
    char *event_id, *stage, *status, *model, *version, *last_error;
    int64_t attempt;  /* 1 for the first attempt at this stage */
    int64_t claim;    /* the fencing token to pass to ocra_store_stage_end */
    bool taken_over;  /* the previous holder's lease had expired */
    int64_t crashes;  /* holders of this stage that died (this takeover included) */
    char *crash_by;   /* the last one's worker (claimed_by), NULL when crashes is 0 */
    int64_t crash_ms; /* and when it was found gone */
};
void ocra_store_claim_fini(struct ocra_store_claim *c);

struct ocra_store_claim_opts {
    const char *worker; /* recorded as claimed_by and in the history */
    /* The claiming process, recorded with the claim so that a process of the same machine
     * can take it over as soon as this one is gone; NULL: none (only the lease ends it). */
    const struct ocra_proc_id *owner;
    int64_t now_ms;   /* 0: the wall clock */
    int64_t lease_ms; /* how long the claim holds without being renewed */
    /* Stages that a newer event of the same model stops (allocation, deployment): an event
     * about to run one of them is moved to status superseded and stage superseded_stage. */
    const char *const *gated;
    size_t n_gated;
    const char *superseded_stage;
};

/*
 * Atomically claims the ready row with the earliest next_ms (then journal order) whose
 * next_ms has passed, or a claimed row whose lease expired (its open history row becomes
 * `abandoned`, and crashes counts it). Adds a history row and increments attempts (not on a
 * takeover: the abandoned attempt did not count). *found is false when nothing is ready.
 */
int ocra_store_stage_claim(struct ocra_store *st, const struct ocra_store_claim_opts *o,
                           struct ocra_store_claim *out, bool *found, struct ocra_err *err);

/*
 * Takes over at once the claims whose owner is gone: recorded in self's scope (same host,
 * boot and pid namespace) by a process that no longer runs (ocra_proc_gone). Each becomes
 * ready at its stage, its open history row `abandoned`, counted in crashes and not in
 * attempts. Claims of other scopes wait for their lease (their process may run). *n (may be
 * NULL) counts the claims taken over. Cheap when there is nothing to take over: one read of
 * the claimed rows.
 */
int ocra_store_stage_takeover(struct ocra_store *st, const struct ocra_proc_id *self, size_t *n,
                              struct ocra_err *err);

/* Extends a claim's lease to now + lease_ms. ESTALE when the claim is no longer held. */
int ocra_store_stage_renew(struct ocra_store *st, const char *event_id, int64_t claim,
                           int64_t lease_ms, struct ocra_err *err);

/* How an attempt ended and where the event goes next. */
struct ocra_store_stage_end {
    const char *outcome; /* history: done, retry, dead, waiting, queued, released, supervised */
    const char *output;  /* JSON text or NULL */
    const char *error;   /* NULL on success; becomes last_error */
    const char *status;  /* the new status, NULL: unchanged */
    const char *stage;   /* the next stage; NULL: the same stage */
    bool finished;       /* no next stage: state done */
    const char *state;   /* ready, waiting, queued or dead (unless finished) */
    int64_t next_ms;     /* when a ready row may be claimed again */
};

/*
 * Ends the attempt holding claim: records the history row and moves the event, in one
 * transaction. ESTALE (and nothing written) when the claim is no longer held: its lease
 * expired and another worker took the event over. Attempts restart at 0 on a new stage; an
 * attempt that ends waiting, queued, released or supervised does not count, and one that
 * ends waiting (queued) right after a waiting (queued) attempt at the same stage only extends
 * that history row (a queued one also takes the newer output).
 */
int ocra_store_stage_end(struct ocra_store *st, const char *event_id, int64_t claim,
                         const struct ocra_store_stage_end *e, struct ocra_err *err);

/*
 * `ocra retry`: a dead-lettered event becomes ready at its stage with attempts and crashes 0;
 * a failed
 * or daemon-rejected event goes back to the stage that failed it. ENOENT: no such event in
 * the pipeline; EINVAL: the event is neither (message says its status and state).
 */
int ocra_store_stage_retry(struct ocra_store *st, const char *event_id, struct ocra_err *err);

/* Makes every waiting row ready again (at start and on reload); *n (may be NULL) counts. */
int ocra_store_stage_wake(struct ocra_store *st, size_t *n, struct ocra_err *err);

/*
 * Makes event_id's row ready (claimable now) if its state is `state`; *woken (may be NULL)
 * says whether it was. For the rows that wait on something outside the journal (a state other
 * than ready, claimed, dead or done) and are woken one at a time when it happens.
 */
int ocra_store_stage_wake_event(struct ocra_store *st, const char *event_id, const char *state,
                                bool *woken, struct ocra_err *err);

/*
 * The ids of the rows in state (journal order) into *ids (*n of them): for the supervisor to
 * wake each once at start. Caller frees each and the array with free().
 */
int ocra_store_stage_in_state(struct ocra_store *st, const char *state, char ***ids, size_t *n,
                              struct ocra_err *err);

/*
 * The in-image agent of event id refused to start its workload (docs/AGENT.md): refusal is
 * the agent's word as a JSON object text ({"reason": "superseded", "current": version}), kept
 * with the event for the complete stage. ENOENT: no such event.
 */
int ocra_store_event_refused(struct ocra_store *st, const char *id, const char *refusal,
                             struct ocra_err *err);
/* *refusal: what ocra_store_event_refused() kept for id, or NULL; caller frees. */
int ocra_store_event_refusal(struct ocra_store *st, const char *id, char **refusal,
                             struct ocra_err *err);

/*
 * The scheduler queue: the rows in state `queued` (an attempt that found no room ended with
 * outcome `queued`: it does not count, and the row waits until the daemon's dispatcher wakes
 * it with ocra_store_stage_wake_event(.., "queued", ..)). Each row as fn sees it, borrowed
 * until fn returns.
 */
struct ocra_store_queued {
    int64_t seq;
    const char *event_id, *model, *version, *stage;
    const char *reason;          /* the row's last_error: why it waits */
    const char *source, *signer; /* the event's (signer may be NULL) */
    const char *path, *spec;     /* the event's chain path and spec JSON (may be NULL) */
    int64_t queued_ms;           /* when the event was queued (first, in this span) */
    const char *request;         /* the queued attempt's output (JSON) or NULL */
};
/* Called once per queued row; non-zero stops the listing. */
typedef int ocra_store_queued_fn(const struct ocra_store_queued *q, void *arg);
/* Calls fn for each queued row, first queued first (then journal order). fn must not use st. */
int ocra_store_queue_list(struct ocra_store *st, ocra_store_queued_fn *fn, void *arg,
                          struct ocra_err *err);
/*
 * Moves on the queued rows that a claim would move on (the claim options' rule: the watcher
 * orphaned the event, or a newer event of its model supersedes it at a gated stage) at once,
 * as the claim does (status orphaned or superseded, stage superseded_stage, with its history
 * row): a queued row is never claimed until it starts, so without this an older version
 * waits in the queue behind, or for the room of, the versions that replace it. *moved gets
 * *n pairs (2 * *n strings, caller frees each and the array): the event, then the newer
 * event that superseded it or "orphaned".
 */
int ocra_store_queue_supersede(struct ocra_store *st, const struct ocra_store_claim_opts *o,
                               char ***moved, size_t *n, struct ocra_err *err);
/* *n: how many rows are queued (from the journal's counters: cheap). */
int ocra_store_queue_count(struct ocra_store *st, int64_t *n, struct ocra_err *err);

/*
 * The event's row; *out is NULL when the event is not in the pipeline. Caller frees with
 * ocra_store_pipeline_free().
 */
int ocra_store_pipeline_get(struct ocra_store *st, const char *event_id,
                            struct ocra_store_pipeline **out, struct ocra_err *err);
void ocra_store_pipeline_free(struct ocra_store_pipeline *p);

/*
 * The outputs of the stages the event has passed, as a JSON object text {"plan": {...}, ...}
 * (the latest done attempt of each stage). Caller frees *json with free().
 */
int ocra_store_stage_outputs(struct ocra_store *st, const char *event_id, char **json,
                             struct ocra_err *err);

/* Called once per history row, oldest first; row is borrowed. Non-zero stops. */
typedef int ocra_store_stage_fn(const struct ocra_store_stage_row *row, void *arg);
int ocra_store_stage_history(struct ocra_store *st, const char *event_id, ocra_store_stage_fn *fn,
                             void *arg, struct ocra_err *err);

/*
 * Per-model ordering: *current is true when no newer event of the event's model (later in
 * journal order) has passed validation without being rejected, superseded or dead-lettered.
 * *newer (may be NULL) receives that newer event's id or NULL; caller frees. ENOENT when the
 * event is not in the pipeline.
 */
int ocra_store_event_current(struct ocra_store *st, const char *event_id, bool *current,
                             char **newer, struct ocra_err *err);

/*
 * Lists events joined with their pipeline row (p NULL when the event has none). The filter's
 * status matches the event's journal status, or the row's status, outcome or state (so
 * "dead", "waiting", "planned" and "rejected" all work). Callback arguments are borrowed.
 */
typedef int ocra_store_pipeline_fn(const struct ocra_store_event *ev,
                                   const struct ocra_store_pipeline *p, void *arg);
int ocra_store_pipeline_list(struct ocra_store *st, const struct ocra_store_event_filter *filter,
                             ocra_store_pipeline_fn *fn, void *arg, struct ocra_err *err);

/*
 * The watcher's verdict that the chain no longer holds event id (its block was replaced after
 * it was final): status rejected with reason, and the orphaned mark that the stage machine
 * acts on at the event's next stage boundary (a claim moves it to status and outcome orphaned
 * at the claim options' superseded_stage, the report stage, which stops what runs and sends
 * no report). Marking it again keeps the first mark. ENOENT: no such id.
 */
int ocra_store_event_orphan(struct ocra_store *st, const char *id, const char *reason,
                            struct ocra_err *err);
/* *orphaned: whether event id carries the watcher's orphaned mark (false for no such id). */
int ocra_store_event_orphaned(struct ocra_store *st, const char *id, bool *orphaned,
                              struct ocra_err *err);
/*
 * A reported event whose report a reorg took off the chain: back to ready at stage (the report
 * stage), status its outcome, with a history row "reopened" and reason, in one transaction.
 * *reopened is false (and nothing written) unless the event is reported and done, and not
 * orphaned.
 */
int ocra_store_stage_reopen(struct ocra_store *st, const char *event_id, const char *stage,
                            const char *reason, bool *reopened, struct ocra_err *err);
/* Called per reported event with the output JSON of its last done attempt at the report stage;
 * borrowed. Non-zero stops. It must not write to the same store. */
typedef int ocra_store_report_fn(const char *event_id, const char *output, void *arg);
/* The reported events of source whose report (stage's output) has a "tx" in "block" min_block
 * or later, in journal order: those a reorg may still take off the chain. */
int ocra_store_reports_list(struct ocra_store *st, const char *source, const char *stage,
                            int64_t min_block, ocra_store_report_fn *fn, void *arg,
                            struct ocra_err *err);

/*
 * Called once per (state, status, outcome) with its number of pipeline rows; outcome is ""
 * while unknown. Strings borrowed. A combination whose rows have all moved on is reported
 * with 0.
 */
typedef void ocra_store_pipeline_count_fn(const char *state, const char *status,
                                          const char *outcome, int64_t n, void *arg);
/* Reads the pipeline's counters (kept by the journal as rows change: no rows are counted). */
int ocra_store_pipeline_counts(struct ocra_store *st, ocra_store_pipeline_count_fn *fn, void *arg,
                               struct ocra_err *err);

/* ---- daemonapi (begin) */
/* The row as `ocra lineage` and the HTTP API show it (status, outcome, stage, state, attempts,
 * modelVersion, claimedBy, error). Caller json_decref()s. */
json_t *ocra_store_pipeline_to_json(const struct ocra_store_pipeline *p);
/* ---- daemonapi (end) */

/* ---- daemon (end) ------------------------------------------------------------------------ */

#endif
