/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon_int.h: what the daemon's files share: the daemon and worker structs, and the stage
 * ops' helpers. Not for use outside src/daemon.
 */
#ifndef OCRA_DAEMON_INT_H
#define OCRA_DAEMON_INT_H

#include <pthread.h>

#include "agentd/agentd.h"
#include "daemon/daemon.h"

struct ocra_daemon_ctx {
    struct ocra_daemon *d;
    struct ocra_store *st; /* this worker's connection (borrowed in ocra_daemon_step) */
    int id;
    char name[160];
    pthread_t thread;
    const struct ocra_config *cfg; /* the configuration of the current attempt */
    struct ocra_pacer pacer;       /* retry delays, with this worker's jitter */
    char error[OCRA_ERR_MAX + 8];  /* the failed attempt's error, cause first, for its end */
    /* What the ops build once per configuration (rebuilt after a reload). */
    const struct ocra_config *clients_cfg;
    struct ocra_evm_rpc *evm;
    struct ocra_ain_rpc *ain;
    struct ocra_chain_key *evm_key, *ain_key;
    struct ocra_plan_data *plan_data;
};

struct watcher {
    struct ocra_daemon *d;
    pthread_t thread;
    bool started;
    bool evm;
    struct ocra_store *st;
    struct ocra_source *src;
    struct ocra_ain_watch *watch;
    struct ocra_evm_source_opts evm_opts;
    struct ocra_daemon_source_opts so;
    const char *rpcs[1];
    unsigned long violations;     /* the source's finality violations counted in /metrics */
    struct ocra_evm_rpc *evm_rpc; /* reorged reports: the report transactions on the chain */
    struct ocra_ain_rpc *ain_rpc;
};

struct ocra_daemon {
    const struct ocra_daemon_stage *stages;
    size_t n_stages;
    const char **gated; /* names of the gated stages */
    size_t n_gated;
    bool no_watch;
    char host[128];
    /* this process, recorded with its claims (empty scope when /proc could not tell: its
     * claims are then taken over only when their lease runs out) */
    struct ocra_proc_id self;

    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t cv;  /* idle workers wait here */
    const struct ocra_config *cfg;
    volatile sig_atomic_t stopping;
    unsigned long wake_gen;
    struct ocra_daemon_stats stats;
    struct {
        char *event_id; /* the claim each worker holds now, for lease renewal */
        int64_t claim;
    } * held;

    struct ocra_store *st;       /* the supervisor's connection: intake, renewals */
    struct ocra_agentd *agentd;  /* the agent socket server, or NULL when it could not start */
    struct ocra_store *agent_st; /* its thread's connection, opened at its first question */
    char *journal;
    struct ocra_daemon_ctx *workers;
    size_t n_workers;
    struct watcher *watchers;
    size_t n_watchers;
    int64_t last_renew_ms;
    int64_t last_queue_ms;           /* the queue's last timed dispatch (sched.queue.interval_ms) */
    struct ocra_api *api;            /* the HTTP API when api.listen is set (daemon_api.c) */
    struct ocra_daemon_scale *scale; /* the autoscaling loop and its loads (daemon_scale.c) */
    struct ocra_daemon_supervisor *sup; /* the workload supervisor (daemon_supervise.c) */
    struct ocra_lb *lb; /* HAProxy in front of served models, or NULL (daemon_lb.c) */
};

/* The wall clock (CLOCK_REALTIME, for pthread_cond_timedwait) ms from now, into *ts. */
void ocra_daemon_deadline(int64_t ms, struct timespec *ts);
/* The configuration now (under the lock). */
const struct ocra_config *ocra_daemon_cfg(struct ocra_daemon *d);
/* Frees the clients a worker built for its last configuration. */
void ocra_daemon_ctx_clients_fini(struct ocra_daemon_ctx *ctx);
/* Makes sure ctx's clients were built for ctx->cfg (drops them after a reload). */
void ocra_daemon_ctx_refresh(struct ocra_daemon_ctx *ctx);

/* Watchers (daemon_watch.c): started and stopped with the daemon. */
int ocra_daemon_watchers_start(struct ocra_daemon *d, const char *journal, struct ocra_err *err);
void ocra_daemon_watchers_join(struct ocra_daemon *d);

/* The spec, chain event and plan of a journaled event, as the plan stage made them. */
struct ocra_daemon_prepared {
    struct ocra_spec *spec;
    struct ocra_spec_event *event;
    struct ocra_plan *plan;
};
/* Fills *out (free with ocra_daemon_prepared_fini) from ev with ctx's configuration. */
int ocra_daemon_prepare(struct ocra_daemon_ctx *ctx, const struct ocra_store_event *ev,
                        struct ocra_daemon_prepared *out, struct ocra_err *err);
void ocra_daemon_prepared_fini(struct ocra_daemon_prepared *p);

/* An op's output that ends the event's way through the pipeline: {"verdict": what ("rejected",
 * "failed", "superseded"), "reason": reason}. Caller owns it. */
json_t *ocra_daemon_verdict(const char *what, const char *reason);
/* The same with err's message as the reason, its root cause first (ocra_err_text). */
json_t *ocra_daemon_verdict_err(const char *what, const struct ocra_err *err);

/* The ops of daemon_ops.c, for the table in daemon_stages.c. */
int ocra_daemon_op_validate(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job,
                            const json_t *inputs, json_t **output, struct ocra_err *err);
int ocra_daemon_op_plan(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job,
                        const json_t *inputs, json_t **output, struct ocra_err *err);

/*
 * The agent socket of run (event_id, replica) (daemon.c, docs/AGENT.md): its own directory
 * <agent.socket_dir>/<container name>, made (or found again after a restart, so that the
 * container that runs on reaches the new socket) and served; requests on it that name another
 * event are refused. *dir: the directory to bind at /run/ocra in that run's container only
 * (caller frees), NULL when the daemon serves no agent sockets (the agent runs unreported).
 * d may be NULL (none).
 */
int ocra_daemon_agent_run(struct ocra_daemon *d, const char *event_id, int replica, char **dir,
                          struct ocra_err *err);
/* The run ended: its socket and directory go. */
void ocra_daemon_agent_run_end(struct ocra_daemon *d, const char *event_id, int replica);

/* The HTTP API (daemon_api.c): started after the workers when api.listen is set, stopped
 * first. */
int ocra_daemon_api_start(struct ocra_daemon *d, struct ocra_err *err);
void ocra_daemon_api_stop(struct ocra_daemon *d);
/* One stage attempt ended (claim c, its end e) after started_ns (monotonic): /metrics. */
void ocra_daemon_metrics_stage(const struct ocra_store_claim *c,
                               const struct ocra_store_stage_end *e, uint64_t started_ns);
/* n claims were taken over, kind "crash" (this machine's dead process, at once) or "lease"
 * (the lease ran out): /metrics. */
void ocra_daemon_metrics_takeover(const char *kind, size_t n);
/* A watcher journaled ev: /metrics (events seen, head lag). */
void ocra_daemon_metrics_seen(const struct ocra_store_event *ev);
/* finality_violations{chain}: n more final blocks replaced on source's chain. */
void ocra_daemon_metrics_finality_violations(const char *source, unsigned long n);
/* head_lag{source}: the chain's head minus the source's cursor, in blocks (cursor < 0: none). */
void ocra_daemon_metrics_head_lag(const char *source, int64_t head, int64_t cursor);
/* The chain ("ain", "evm") refused a transaction ocra sent with the node's code: /metrics. */
void ocra_daemon_metrics_tx_refused(const char *chain, int64_t code, bool permanent);

/* Releases event_id's held allocations (none held is fine), under the allocator's lock
 * (daemon_stages.c): the complete stage, and a superseded event that was allocated. */
int ocra_daemon_release(struct ocra_daemon_ctx *ctx, const char *event_id, struct ocra_err *err);

/* ---- the scheduler queue (daemon_queue.c) ------------------------------------------------ */

struct ocra_sched_req;
/* The allocate stage's placement of job's event asking req: the allocation held (placed by
 * the queue's dispatcher or an earlier attempt), else a new one when nothing is queued, else
 * *output {"verdict": "queued", "reason", "request"} (no room now, or events queued first);
 * {"verdict": "failed"} naming the filter when req fits no node of the inventory. */
int ocra_daemon_place(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job,
                      const struct ocra_sched_req *req, json_t **output, struct ocra_err *err);
/* Asks the queue's policy which queued events start now, records their allocations and wakes
 * them (errors are logged: the next release or the timer tries again). On ctx's connection,
 * under the allocator's lock; nothing to do (the common case) costs one counter read. */
void ocra_daemon_queue_dispatch(struct ocra_daemon_ctx *ctx);
/* Whether queued event queued_id would start now if running event old_id (an older version
 * of its model) gave its room back: the supervisor then stops old_id for it. */
int ocra_daemon_queue_successor_fits(struct ocra_daemon_ctx *ctx, const char *queued_id,
                                     const char *old_id, bool *fits, struct ocra_err *err);
/* The request a queued event records (its allocate attempt's output "request"). New ref. */
json_t *ocra_daemon_queue_request(const struct ocra_sched_req *r, int64_t estimate_s);
/* workload.maxDuration of a spec (JSON text, may be NULL) in seconds: an integer, or "90s",
 * "15m", "2h", "1d"; 0 when absent or unreadable (unknown). */
int64_t ocra_daemon_estimate_s(const char *spec);
/* Wakes the idle workers (an event became ready). */
void ocra_daemon_wake_workers(struct ocra_daemon *d);

/* ---- autoscale (begin) ------------------------------------------------------------------ */

struct ocra_sched_allocator;
struct ocra_sched_req;
struct ocra_run_spec;
struct ocra_runner;

/* Runs fn with the allocator of the journal under the allocator's lock (daemon_stages.c): one
 * placement at a time across the workers and the autoscaling loop. */
int ocra_daemon_with_allocator(struct ocra_daemon_ctx *ctx,
                               int (*fn)(struct ocra_sched_allocator *a, void *arg,
                                         struct ocra_err *err),
                               void *arg, struct ocra_err *err);
/* What one replica of p's workload asks of the placer. */
void ocra_daemon_replica_req(const struct ocra_daemon_prepared *p, struct ocra_sched_req *req);
/* The run spec of replica 0 (the run stage's), from the stage outputs before run (inputs);
 * devs backs rs->gpu_devs (OCRA_RUN_MAX_GPUS). */
int ocra_daemon_run_spec(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job,
                         const json_t *inputs, const struct ocra_daemon_prepared *p, uint8_t *devs,
                         struct ocra_run_spec *rs, struct ocra_err *err);
/* The runner of cfg (run.runner). Caller frees with ocra_runner_free(). */
struct ocra_runner *ocra_daemon_runner_new(const struct ocra_config *cfg, struct ocra_err *err);

/* The autoscaling loop (daemon_scale.c; docs/RUNNING.md, Autoscaling): its thread and journal
 * connection, started before the agent socket and stopped after it. */
int ocra_daemon_scale_start(struct ocra_daemon *d, struct ocra_err *err);
void ocra_daemon_scale_stop(struct ocra_daemon *d);
/* agent_report: keeps a heartbeat's load per (event, replica): the replica of the run whose
 * socket it came through, so one run holds one entry whatever its messages say. */
void ocra_daemon_scale_report(struct ocra_daemon *d, const struct ocra_agentd_msg *msg,
                              int replica);
/* The sum of event_id's loads that will still be fresh later_ms from now (0: now); *n: how
 * many replicas they are. 0 without the loop. For tests. */
int64_t ocra_daemon_scale_load(struct ocra_daemon *d, const char *event_id, int64_t later_ms,
                               int *n);
/* op_run, after replica 0 started: brings an event whose plan has replicas_min > 1 to min
 * (a failure is logged: the loop tries again). rs is replica 0's spec. */
void ocra_daemon_scale_run(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job,
                           const struct ocra_daemon_prepared *p, const struct ocra_run_spec *rs);
/* op_complete, once replica 0 ended: stops and removes the replicas 1.. and keeps the loop
 * from scaling the event again. The allocations are the caller's to release. */
int ocra_daemon_scale_end(struct ocra_daemon_ctx *ctx, const char *event_id, struct ocra_err *err);

/* ---- autoscale (end) -------------------------------------------------------------------- */

/* ---- load balancer (begin) (daemon_lb.c; docs/RUNNING.md, Load balancing) ------------------- */
struct ocra_lb;
/* Opens the load balancer when lb.haproxy or lb.socket is set (else d->lb stays NULL). */
int ocra_daemon_lb_start(struct ocra_daemon *d, struct ocra_err *err);
/* Closes it, stopping the HAProxy the daemon owns. */
void ocra_daemon_lb_stop(struct ocra_daemon *d);
/* The frontend of event_id's model (taken on first call; every version of the model shares it)
 * and a server per replica 0..replicas-1 (named as its container) at the workload port
 * wport + N, each enabled once it accepts connections. Errors are logged. */
void ocra_daemon_lb_sync(struct ocra_daemon_ctx *ctx, const char *event_id, int wport,
                         int replicas);
/* Replica `replica` of event_id drained (lb.drain_s at most) and removed from its frontend;
 * before its container is stopped. */
void ocra_daemon_lb_drain(struct ocra_daemon *d, const struct ocra_config *cfg,
                          const char *event_id, int replica);
/* Whether event_id's replica 0 is UP in the load balancer (true when there is none): a newer
 * version replaces an older one only then. */
bool ocra_daemon_lb_ready(struct ocra_daemon *d, struct ocra_store *st, const char *event_id);
/* Replica `replica` of event_id may be added again (a drained one is not): before its start. */
void ocra_daemon_lb_forget(struct ocra_daemon *d, const char *event_id, int replica);
/* event_id's requests in HAProxy (sessions and queued, over its servers); 0 without one. */
int64_t ocra_daemon_lb_load(struct ocra_daemon *d, const char *event_id);
/* Every server of event_id drained and removed; the frontend port given back unless another
 * version of the model holds servers there or is newer. */
void ocra_daemon_lb_end(struct ocra_daemon_ctx *ctx, const char *event_id);
/* The frontend of a model (the journal's model key), "addr:port" (a JSON string) from the
 * frontends file in lb.dir, or JSON null; a reader beside the daemon may call it. Caller owns
 * the reference. */
json_t *ocra_daemon_lb_frontend_json(const struct ocra_config *cfg, const char *model);
/* ---- load balancer (end) ------------------------------------------------------------------ */

/* Removes the stray containers (ocra_daemon_strays() over ctx's journal), ends a runs row
 * they left running, logs each and sets /metrics (ocra_stray_containers,
 * ocra_stray_containers_removed_total). A failure is logged: the next reconcile tries again.
 * The autoscaling loop's thread runs it at start and every run.reconcile_interval_s. */
void ocra_daemon_reconcile(struct ocra_daemon_ctx *ctx);

/* The report stage (daemon_report.c). */
int ocra_daemon_op_report(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job,
                          const json_t *inputs, json_t **output, struct ocra_err *err);
/* The report object of job from its stages' outputs (inputs: stage -> output): event, status,
 * modelVersion, reason, image, node, gpus, exitCode, startedAt, finishedAt, each when the
 * journal has it; no member is null or an empty list or object. Caller json_decref()s. */
json_t *ocra_daemon_report_value(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job,
                                 const json_t *inputs);

/* ---- runs (begin): daemon_runs.c, the runs table and the complete stage's wait */
struct ocra_runner;
struct ocra_run_job;
/* Journals the workload the run stage started or adopted (runs row, state running): the
 * runner's job id, the node (the allocation's; Slurm's for a Slurm job), the GPUs. */
int ocra_daemon_run_started(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job,
                            const json_t *inputs, struct ocra_runner *r,
                            const struct ocra_run_job *rj, struct ocra_err *err);
/*
 * The workload of this runner the journal already holds for the event (a run stage that
 * started it and then died, or was taken over): *found, and rj filled with its id and name,
 * adopted. For Slurm, whose controller forgets finished jobs (MinJobAge), so that a retried
 * stage never submits the job again; the docker runner adopts by name.
 */
int ocra_daemon_run_journaled(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job,
                              struct ocra_runner *r, struct ocra_run_job *rj, bool *found,
                              struct ocra_err *err);
/*
 * runner->wait in slices of 500 ms until the workload ends (0, *exit_code) or fails (-1, the
 * runner's error), checking the daemon's stopping flag between slices: a stopping daemon gets
 * -1 with ESHUTDOWN ("checkpointed"), the workload left running. With event_id, also whether
 * the watcher withdrew the event (orphaned: its block was replaced): 0 and *orphaned true, the
 * workload left running for the report stage to stop.
 */
int ocra_daemon_run_wait(struct ocra_daemon_ctx *ctx, struct ocra_runner *r,
                         const struct ocra_run_job *rj, const char *event_id, int *exit_code,
                         bool *orphaned, struct ocra_err *err);
/* Stops every run of the event that the journal holds as not ended (SIGTERM, SIGKILL after
 * 10 s: an orphaned event's workload) and journals each end as stopped; their ids are appended
 * to the JSON array stopped. */
int ocra_daemon_run_stop_all(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job,
                             const json_t *inputs, struct ocra_runner *r, json_t *stopped,
                             struct ocra_err *err);
/* The time limit of spec's run in seconds, 0: none: the spec's workload.maxDuration capped by
 * run.max_duration_s.<type>, or that when the spec gives none. */
int64_t ocra_daemon_run_limit_s(const struct ocra_config *cfg, const struct ocra_spec *spec);
/* Whether err is ocra_daemon_run_wait()'s checkpoint: the attempt ends "released". */
bool ocra_daemon_checkpointed(struct ocra_daemon_ctx *ctx, const struct ocra_err *err);
/* When the run started and ended (ms since the epoch) by the runner's record (r->times), else
 * the runs row's start and now: never the clock of the stage that waited, which may have taken
 * the wait over after a restart. */
void ocra_daemon_run_times(struct ocra_daemon_ctx *ctx, struct ocra_runner *r,
                           const struct ocra_run_job *rj, int64_t *started_ms,
                           int64_t *finished_ms);
/* Journals the run's end: stopped (cancelled from outside), else succeeded when exit_code is 0,
 * failed otherwise; result {exitCode, logTail, durationMs (finished_ms - started_ms)}; Slurm's
 * node. */
int ocra_daemon_run_ended(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job,
                          const json_t *inputs, struct ocra_runner *r,
                          const struct ocra_run_job *rj, int exit_code, bool stopped,
                          const char *logs, int64_t started_ms, int64_t finished_ms,
                          struct ocra_err *err);
/* ---- runs (end) */

/* ---- supervise (begin): daemon_supervise.c, the workload supervisor */
struct ocra_run_job;
/* Its thread and journal connection: started before the workers, stopped after them (the
 * stops it started for time limits are joined). */
int ocra_daemon_supervise_start(struct ocra_daemon *d, struct ocra_err *err);
void ocra_daemon_supervise_stop(struct ocra_daemon *d);
/* Whether d has a supervisor (a started daemon; not ocra_daemon_step alone). */
bool ocra_daemon_supervising(struct ocra_daemon *d);
/* The complete stage parks event_id: its workload rj runs on. The supervisor wakes the event
 * when it ends, stops it (SIGTERM, run.stop_grace_s, SIGKILL) at deadline_ms (wall ms; 0: no
 * limit), and when a newer version of its model replaces it (training: at once, unless
 * run.newer_version.training is keep; inference: once the newer one runs) or the model is
 * removed. Adding it again replaces what was known. */
void ocra_daemon_supervise_add(struct ocra_daemon *d, const char *event_id,
                               const struct ocra_run_job *rj, int64_t deadline_ms, bool training);
/* Why the supervisor stopped a workload. */
enum ocra_daemon_stop_why {
    OCRA_DAEMON_STOP_NONE,    /* it did not: the workload ended by itself (or from outside) */
    OCRA_DAEMON_STOP_TIMEOUT, /* its time limit */
    OCRA_DAEMON_STOP_NEWER,   /* a newer version of its model runs (or a training run's) */
    OCRA_DAEMON_STOP_REMOVAL, /* the model's removal on-chain */
    OCRA_DAEMON_STOP_ROOM,    /* its newer version waited in the queue for its room */
};
/* The complete stage found the workload ended: the supervisor forgets it. Returns why the
 * supervisor stopped it; for NEWER, REMOVAL and ROOM *newer (may be NULL) is the newer event
 * (caller frees). */
enum ocra_daemon_stop_why ocra_daemon_supervise_end(struct ocra_daemon *d, const char *event_id,
                                                    char **newer);
/* ---- supervise (end) */

#endif
