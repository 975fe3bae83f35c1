/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon: ocra's main job. Watcher threads run the configured chain sources (they journal
 * every event); a pool of worker threads carries each journaled event through a table of
 * stages (struct ocra_daemon_stage), one durable transition in the journal per stage
 * (src/store's stage machine): claim, run the stage, record its output and move the event
 * on, retry transient failures with exponential backoff and jitter, dead-letter an event
 * after daemon.max_attempts (or daemon.max_crashes deaths of the worker's process: a crash
 * is not an attempt; a dead process's claims are taken over at once), supersede an older
 * version of a model still in flight before it is allocated. Each worker has its own journal
 * connection and chain clients. The stage sequence and its guarantees are in
 * docs/ARCHITECTURE.md (§ The stage machine).
 */
#ifndef OCRA_DAEMON_H
#define OCRA_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <signal.h>

#include "base/base.h"
#include "chain/ain/ain.h"
#include "chain/evm/evm.h"
#include "config/config.h"
#include "plan/plan.h"
#include "run/run.h"
#include "store/store.h"

/* ---- the stage-op table -------------------------------------------------------------- */

/* One worker's context: its journal connection, its chain clients, the configuration. */
struct ocra_daemon_ctx;

/* What a stage works on; everything borrowed for the call. */
struct ocra_daemon_job {
    const struct ocra_store_event *event; /* the journaled chain event */
    const struct ocra_store_claim *claim; /* stage, attempt, status, model, version */
};

/*
 * A stage: does its side effect idempotently (keyed by the event id; it first checks whether
 * the effect already exists) and returns its output. inputs is the object of the outputs of
 * the stages the event passed ({"validate": {...}, "plan": {...}}), borrowed. On success
 * *output is a JSON object (the stage's record for `ocra lineage`; the daemon takes it). An
 * output holding "verdict": "rejected" or "failed" ends the event's way through the
 * pipeline: it goes to the report stage with that status ("reason" says why). Returns -1
 * with err on failure: ENOSYS means the stage is not implemented yet (the event waits there
 * without using up attempts); EINVAL is permanent (dead letter at once); anything else is
 * retried when the stage's errors are transient.
 */
typedef int ocra_daemon_stage_fn(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job,
                                 const json_t *inputs, json_t **output, struct ocra_err *err);

struct ocra_daemon_stage {
    const char *name;          /* the stage, as journaled: "validate", "plan", ... */
    const char *reached;       /* the event's status once it is done: "validated", ... */
    ocra_daemon_stage_fn *run; /* the op */
    bool transient;            /* its errors are retried (else: dead letter at once) */
    bool gated;                /* a newer version of the model stops the event before it */
};

/*
 * The pipeline (docs/ARCHITECTURE.md, "The stage machine"): validate, plan, toolchain, push,
 * sign, allocate, run, complete, report (the last one). Ops not written yet fail with ENOSYS
 * (daemon_ops.c).
 */
extern const struct ocra_daemon_stage ocra_daemon_stages[];
extern const size_t ocra_daemon_n_stages;

/* Borrowed from the worker for the op's call. */
const struct ocra_config *ocra_daemon_ctx_config(const struct ocra_daemon_ctx *ctx);
struct ocra_store *ocra_daemon_ctx_store(struct ocra_daemon_ctx *ctx);
/* "w<N>@<host>:<pid>", the claim's owner. */
const char *ocra_daemon_ctx_worker(const struct ocra_daemon_ctx *ctx);

/* ---- the daemon ------------------------------------------------------------------------ */

struct ocra_daemon_opts {
    const struct ocra_config *cfg;          /* copied in by reference: must outlive the daemon
                                               (ocra_daemon_reload swaps it) */
    const struct ocra_daemon_stage *stages; /* NULL: ocra_daemon_stages */
    size_t n_stages;
    bool no_watch; /* run no watcher threads (tests; `ocra watch` journals elsewhere) */
};

struct ocra_daemon;

/*
 * Checks the stage table (EINVAL: empty, duplicate names, no report stage last) and opens
 * the journal (migrating it). Starts nothing. Caller frees with ocra_daemon_free().
 */
int ocra_daemon_new(const struct ocra_daemon_opts *opts, struct ocra_daemon **out,
                    struct ocra_err *err);
/*
 * Wakes the events waiting at a stage, takes the journal's new events in, and starts the
 * watcher threads and daemon.workers worker threads. Watcher failures are logged and retried;
 * they never stop the daemon.
 */
int ocra_daemon_start(struct ocra_daemon *d, struct ocra_err *err);
/* One round of the supervisor: takes new journal events into the pipeline and wakes idle
 * workers. The CLI calls it every daemon.poll_ms. */
int ocra_daemon_tick(struct ocra_daemon *d, struct ocra_err *err);
/*
 * Drains: watchers stop after their current round, workers finish the stage they run and
 * claim nothing new; then every thread is joined. A stage is never cut in half: its
 * transition is one transaction, and a claim a worker could not end stays claimable.
 */
void ocra_daemon_stop(struct ocra_daemon *d);
/*
 * Swaps the configuration (SIGHUP) and wakes the events waiting at a stage. Takes effect for
 * the next stage attempt: retry and lease settings, the poll interval, reporting, planner and
 * chain client settings. Needs a restart: daemon.workers, journal.path, the watched sources.
 * Call it from the supervisor's thread. cfg must outlive the daemon.
 */
void ocra_daemon_reload(struct ocra_daemon *d, const struct ocra_config *cfg);
void ocra_daemon_free(struct ocra_daemon *d);

/*
 * Runs one ready stage on the calling thread with its own journal connection st (for tests
 * and `ocra daemon --once`): *ran is false when nothing was ready.
 */
int ocra_daemon_step(struct ocra_daemon *d, struct ocra_store *st, bool *ran, struct ocra_err *err);

/* Counters since start. takeovers_crash: claims of this machine's dead processes taken over
 * at once; takeovers_lease: claims taken over when their lease ran out. */
struct ocra_daemon_stats {
    unsigned long claimed, done, retried, dead, waiting, lost, intake;
    unsigned long takeovers_crash, takeovers_lease;
    unsigned long queued; /* allocate attempts that found no room (uncounted, queued) */
};
void ocra_daemon_stats(struct ocra_daemon *d, struct ocra_daemon_stats *out);

/*
 * For the in-image agent's question "is (model, version, event) still current?": *current
 * is true when event_id is journaled for model (its "<source> <path>" key, or NULL to skip
 * that check) with version (or NULL) and no newer version of the model supersedes it.
 * *newer (may be NULL) receives the superseding event's id (caller frees). EINVAL when the
 * event's model or version differ from the ones given; ENOENT when it is unknown.
 */
int ocra_daemon_event_current(struct ocra_store *st, const char *event_id, const char *model,
                              const char *version, bool *current, char **newer,
                              struct ocra_err *err);

/*
 * `ocra daemon --check`: tries the journal, the chain endpoints and contract, the signing
 * keys (addresses only) and the Docker engine, calling fn once per check with whether it
 * passed, its name (the configuration key) and a message that explains a failure. Returns
 * the number of failed checks.
 */
typedef void ocra_daemon_check_fn(bool ok, const char *what, const char *msg, void *arg);
int ocra_daemon_check(const struct ocra_config *cfg, ocra_daemon_check_fn *fn, void *arg);

/* ---- watchers (shared with `ocra watch`) --------------------------------------------- */

/* What a chain source is built from: the configuration with the command line's overrides. */
struct ocra_daemon_source_opts {
    bool evm;
    const char *const *rpcs; /* at least one */
    size_t n_rpcs;
    const char *ws;                     /* AIN event WebSocket or NULL */
    const char *contract;               /* EVM */
    const struct ocra_ain_watch *watch; /* AIN */
    size_t n_watch;
    const char *const *allow; /* EVM publishers */
    size_t n_allow;
    int64_t chain_id, from_block, confirmations;
    struct ocra_store *store;
    int (*on_event)(const struct ocra_store_event *ev, void *arg);
    ocra_evm_reorg_fn *on_reorg; /* EVM, may be NULL */
    void *arg;
};

/*
 * Builds the AIN or EVM source (o and what it points to must outlive it; the EVM options are
 * kept in *evm_opts, which must too). Caller frees with src->free(src).
 */
struct ocra_source *ocra_daemon_source_new(const struct ocra_daemon_source_opts *o,
                                           const struct ocra_config *cfg,
                                           struct ocra_evm_source_opts *evm_opts,
                                           struct ocra_err *err);
/* The AIN watch list of the configuration; caller frees the array with free(). */
struct ocra_ain_watch *ocra_daemon_watch_list(const struct ocra_config *cfg, size_t *n);
/*
 * Polls src until *stop is set (or, with once, until caught up), waiting interval_ms between
 * rounds (a push channel cuts the wait short). A failed round (the node, the journal) is logged
 * and retried after a backoff: the interval doubled per failure in a row, capped at 30 s (or
 * the interval when longer), with 50-100 % jitter; with once the first failure is returned.
 * round (may be NULL) is called with arg after each round. *total (may be NULL) counts the
 * events journaled.
 */
/* Called after each round of ocra_daemon_follow (the poll succeeded or not). */
typedef void ocra_daemon_round_fn(struct ocra_source *src, void *arg);
int ocra_daemon_follow(struct ocra_source *src, int64_t interval_ms, bool once,
                       const volatile sig_atomic_t *stop, ocra_daemon_round_fn *round, void *arg,
                       size_t *total, struct ocra_err *err);

struct ocra_build_opts;
struct ocra_spec_policy;
/* The spec policy of spec.http_hosts and artifact.allow_hosts (borrowed from cfg); the other
 * members of pol are left as they are. */
void ocra_daemon_spec_policy(const struct ocra_config *cfg, struct ocra_spec_policy *pol);
/* The artifact fetch's options of spec.http_hosts and artifact.* (borrowed from cfg) into bo;
 * its other members are left as they are. */
void ocra_daemon_fetch_options(const struct ocra_config *cfg, struct ocra_build_opts *bo);

/* The planner's options from the plan.* keys (and build.registry, where ocra's model images
 * are: no base may come from there); mirrors has room for cfg->plan.n_mirrors. */
void ocra_daemon_plan_options(const struct ocra_config *cfg, struct ocra_plan_options *po,
                              struct ocra_plan_mirror *mirrors);

/* ---- stray containers (daemon_strays.c) ------------------------------------------------- */

/* A container that carries ocra's labels but belongs to no live run, and why. */
struct ocra_daemon_stray {
    struct ocra_run_container c;
    char why[256]; /* "Slurm job 5 ended CANCELLED", "its run ended stopped" */
};

/*
 * The strays on the configured runner's engine (run.docker_host; run.slurm.docker_host for the
 * slurm runner), as this host reaches it: a Slurm job's container (io.ocra.slurm-job) whose job
 * ended, is unknown to slurmctld or is now another event's; a docker runner's container that
 * still runs after its run ended, a replica without an allocation, or a running container of
 * an event that finished (by the journal st; NULL: those are not judged). Containers of events
 * the journal does not know, and those that cannot be judged now, are left out. *out (caller
 * frees with free()) and *n on success; -1 when the engine cannot be listed (err).
 */
int ocra_daemon_strays(const struct ocra_config *cfg, struct ocra_store *st,
                       struct ocra_daemon_stray **out, size_t *n, struct ocra_err *err);

/* ---- the HTTP API's hooks and the daemon's metrics (daemon_api.c) ---------------------- */

struct ocra_api;
struct ocra_api_opts;
struct ocra_sched_inventory;
struct ocra_run_slurm_inventory;

/* ---- many Docker hosts (daemon_hosts.c) ------------------------------------------------ */

struct ocra_run_host;
/* The nodes' own engines (inventory.nodes docker_host) with the run.docker_tls.* defaults,
 * docker runner only: returns *n (0: none, the runner uses run.docker_host); caller frees *out
 * with free() (its strings are cfg's). */
size_t ocra_daemon_docker_hosts(const struct ocra_config *cfg, struct ocra_run_host **out,
                                size_t *n);
/* The runner's capabilities under cfg: the kind's, less OCRA_RUN_LOCAL_ENGINE when nodes name
 * their own engines (the build then loads nothing into this host's). */
unsigned ocra_daemon_runner_supports(const struct ocra_config *cfg);
/*
 * Asks the nodes' engines not heard from in the last few seconds (GET /version) and takes the
 * nodes whose engine does not answer out of inv: no new placements there until it answers
 * (what they hold stays held in the journal). With any node naming an engine, a node that
 * names none leaves too (it has nothing to run on). Sets ocra_node_up{node}.
 */
void ocra_daemon_hosts_drop_down(const struct ocra_config *cfg, struct ocra_sched_inventory *inv);
/*
 * To each node object of nodes (ocra_sched_nodes_json()'s "nodes") that has its own engine:
 * "engine": {"endpoint", "up", "since" (ms), "error" (when down)}, after asking the engines
 * not heard from in the last max_age_ms. Returns how many are down.
 */
size_t ocra_daemon_hosts_json(const struct ocra_config *cfg, json_t *nodes, int64_t max_age_ms);

/*
 * The inventory of cfg: inventory.nodes, Slurm's nodes through slurmrestd when run.slurm.url
 * is set (what Slurm reported goes to *slurm when not NULL; caller releases it with
 * ocra_run_slurm_inventory_fini()), this machine when inventory.local. inv is initialised
 * here; release it with ocra_sched_inventory_fini() either way. EINVAL names the bad node.
 */
int ocra_daemon_inventory(const struct ocra_config *cfg, struct ocra_sched_inventory *inv,
                          struct ocra_run_slurm_inventory *slurm, struct ocra_err *err);

/*
 * The scheduler queue as the dispatcher sees it now (daemon_queue.c), for `ocra queue` and
 * /api/v1/queue: {"policy", "depth", "now" (ms), "queued": [{"event", "model", "version",
 * "owner", "priority", "effectivePriority", "position", "head", "gpus", "cpuMilli", "ramMib",
 * "estimateS", "queuedAt" (ms), "waitedS", "wait" (starting, room, order, priority, fair,
 * reserved, never), "reason", "estimatedStart" (ms or null)}]}, by position. Decides nothing
 * (no allocation, no wake). NULL with err when the journal or inventory cannot be read.
 * Caller frees with json_decref().
 */
json_t *ocra_daemon_queue_json(const struct ocra_config *cfg, struct ocra_store *st,
                               struct ocra_err *err);

/*
 * Starts the HTTP API (opts: listen, token file, journal) with the hooks over cfg's journal:
 * lineage (pipeline, stages, image, allocation, run, report), images and nodes; with d (a
 * started daemon) also readiness (chain RPC, Docker engine, registry, slurmrestd; cached a
 * few seconds) and retry, and the scrape-time metrics (queue depth, GPUs per node). cfg and
 * d must outlive the server. Caller stops it with ocra_daemon_api_free(). Errors as
 * ocra_api_new().
 */
struct ocra_api *ocra_daemon_api_new(const struct ocra_config *cfg, struct ocra_daemon *d,
                                     const struct ocra_api_opts *opts, struct ocra_err *err);
/* Stops the server and frees what its hooks hold. NULL is a no-op. */
void ocra_daemon_api_free(struct ocra_api *api);

/* A build's figures for /metrics: the toolchain cache (hit or miss) and the bytes uploaded
 * to the registry. The build stage calls it once per build. */
void ocra_daemon_metrics_build(bool toolchain_cache_hit, uint64_t bytes_uploaded);
/* A finished run for /metrics: runner "docker" or "slurm", result "completed", "failed"... */
void ocra_daemon_metrics_run(const char *runner, const char *result);

#endif
