/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon.c: the stage machine's driver. A supervisor (the caller of ocra_daemon_tick) takes
 * new journal events into the pipeline and renews the leases of the stages running now;
 * worker threads, each with its own journal connection, claim a ready stage, run its op
 * outside any transaction, and end the attempt in one transaction that also moves the
 * event on: next stage, retry later (backoff with jitter), waiting (stage not implemented),
 * or dead letter. Errors are reported here, once, in the log. A claim records this process
 * (host, boot, pid namespace, pid, start time): a daemon of the same machine takes over the
 * claims of a dead one at once (at start and before each claim), another machine's when
 * their lease runs out; a crash is counted apart from the attempts, with its own cap.
 */
#include "daemon/daemon_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "metrics/metrics.h"
#include "run/run.h"

static const char *
report_stage(const struct ocra_daemon *d)
{
    return d->stages[d->n_stages - 1].name;
}

const struct ocra_config *
ocra_daemon_cfg(struct ocra_daemon *d)
{
    const struct ocra_config *cfg;

    pthread_mutex_lock(&d->mu);
    cfg = d->cfg;
    pthread_mutex_unlock(&d->mu);
    return cfg;
}

const struct ocra_config *
ocra_daemon_ctx_config(const struct ocra_daemon_ctx *ctx)
{
    return ctx->cfg;
}

struct ocra_store *
ocra_daemon_ctx_store(struct ocra_daemon_ctx *ctx)
{
    return ctx->st;
}

const char *
ocra_daemon_ctx_worker(const struct ocra_daemon_ctx *ctx)
{
    return ctx->name;
}

void
ocra_daemon_ctx_clients_fini(struct ocra_daemon_ctx *ctx)
{
    ocra_evm_rpc_free(ctx->evm);
    ocra_ain_rpc_free(ctx->ain);
    ocra_chain_key_free(ctx->evm_key);
    ocra_chain_key_free(ctx->ain_key);
    ocra_plan_data_free(ctx->plan_data);
    ctx->evm = NULL;
    ctx->ain = NULL;
    ctx->evm_key = ctx->ain_key = NULL;
    ctx->plan_data = NULL;
    ctx->clients_cfg = NULL;
}

void
ocra_daemon_ctx_refresh(struct ocra_daemon_ctx *ctx)
{
    if (ctx->clients_cfg != ctx->cfg) {
        ocra_daemon_ctx_clients_fini(ctx);
        ctx->clients_cfg = ctx->cfg;
        ocra_pacer_init(&ctx->pacer, 0, (long)ctx->cfg->daemon.retry_base_ms,
                        (long)ctx->cfg->daemon.retry_max_ms);
    }
}

static void
stat_add(struct ocra_daemon *d, unsigned long *counter)
{
    pthread_mutex_lock(&d->mu);
    (*counter)++;
    pthread_mutex_unlock(&d->mu);
}

void
ocra_daemon_stats(struct ocra_daemon *d, struct ocra_daemon_stats *out)
{
    pthread_mutex_lock(&d->mu);
    *out = d->stats;
    pthread_mutex_unlock(&d->mu);
}

/* ---- one attempt ------------------------------------------------------------------------- */

static const struct ocra_daemon_stage *
find_stage(const struct ocra_daemon *d, const char *name, size_t *idx)
{
    for (size_t i = 0; i < d->n_stages; i++) {
        if (strcmp(d->stages[i].name, name) == 0) {
            *idx = i;
            return &d->stages[i];
        }
    }
    return NULL;
}

/* Where a successful attempt sends the event. */
static void
route_done(const struct ocra_daemon *d, size_t idx, const json_t *output,
           struct ocra_store_stage_end *e)
{
    const char *verdict = ocra_json_str(output, "verdict");

    e->outcome = "done";
    e->state = "ready";
    e->next_ms = ocra_time_wall_ms(); /* behind the events already ready: first come first */
    if (idx + 1 == d->n_stages) {
        /* an orphaned event is not reported: it ends at its outcome */
        e->status = verdict && !strcmp(verdict, "orphaned") ? "orphaned" : d->stages[idx].reached;
        e->finished = true;
    } else if (verdict && !strcmp(verdict, "queued")) {
        /* no room now: uncounted, held by nobody, woken by the queue's dispatcher */
        e->outcome = e->state = "queued";
        e->next_ms = 0;
        e->error = ocra_json_str(output, "reason");
    } else if (verdict && (!strcmp(verdict, "rejected") || !strcmp(verdict, "failed") ||
                           !strcmp(verdict, "superseded") || !strcmp(verdict, "orphaned") ||
                           !strcmp(verdict, "timeout"))) {
        e->status = !strcmp(verdict, "rejected")   ? "rejected" /* static: outlives output */
                    : !strcmp(verdict, "failed")   ? "failed"
                    : !strcmp(verdict, "orphaned") ? "orphaned"
                    : !strcmp(verdict, "timeout")  ? "timeout"
                                                   : "superseded";
        e->stage = report_stage(d);
        e->error = ocra_json_str(output, "reason");
    } else {
        e->status = d->stages[idx].reached;
        e->stage = d->stages[idx + 1].name;
    }
}

/* Where a failed attempt sends the event. */
static void
route_failed(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_stage *op,
             const struct ocra_store_claim *c, const struct ocra_err *err,
             struct ocra_store_stage_end *e)
{
    bool transient = op->transient && err->code != EINVAL;

    e->error = ocra_err_text(err, ctx->error, sizeof(ctx->error));
    if (ocra_daemon_checkpointed(ctx, err)) { /* the workload runs on: the same stage later */
        e->outcome = "released";
        e->state = "ready";
        e->next_ms = ocra_time_wall_ms();
    } else if (err->code == EINPROGRESS) { /* the workload runs: the supervisor wakes it */
        e->outcome = "supervised";
        e->state = "supervised";
    } else if (err->code == ENOSYS) {
        e->outcome = "waiting";
        e->state = "waiting";
    } else if (transient && c->attempt < ctx->cfg->daemon.max_attempts) {
        e->outcome = "retry";
        e->state = "ready";
        e->next_ms = ocra_time_wall_ms() + ocra_pacer_backoff_ms(&ctx->pacer, (int)(c->attempt));
    } else {
        e->outcome = "dead";
        e->state = "dead";
    }
}

static void
hold(struct ocra_daemon_ctx *ctx, const struct ocra_store_claim *c)
{
    struct ocra_daemon *d = ctx->d;

    if (!d->held || ctx->id < 0) /* ocra_daemon_step: no pool slot, no renewal */
        return;
    pthread_mutex_lock(&d->mu);
    free(d->held[ctx->id].event_id);
    d->held[ctx->id].event_id = c ? ocra_xstrdup(c->event_id) : NULL;
    d->held[ctx->id].claim = c ? c->claim : 0;
    pthread_mutex_unlock(&d->mu);
}

/* Runs the op of claim c; fills e (output text in *output_text, caller frees). */
static void
run_op(struct ocra_daemon_ctx *ctx, const struct ocra_store_claim *c,
       struct ocra_store_stage_end *e, char **output_text, struct ocra_err *err)
{
    struct ocra_store_event *ev = NULL;
    const struct ocra_daemon_stage *op;
    json_t *inputs = NULL, *output = NULL;
    struct ocra_daemon_job job;
    char *in_text = NULL;
    size_t idx = 0;

    if (!(op = find_stage(ctx->d, c->stage, &idx))) {
        ocra_err_set(err, EINVAL, "unknown stage %s", c->stage);
        e->outcome = e->state = "dead";
        e->error = err->msg;
        return;
    }
    if (c->crashes > ctx->cfg->daemon.max_crashes) {
        /* A stage that kills its worker every time ends here instead of looping. */
        char when[32] = "?";

        if (c->crash_ms)
            ocra_time_iso8601(c->crash_ms, when, sizeof(when));
        ocra_err_set(err, EIO,
                     "the worker's process died %lld times while running stage %s (last: %s, at "
                     "%s); see the daemon's log",
                     (long long)c->crashes, c->stage, c->crash_by ? c->crash_by : "?", when);
        e->outcome = e->state = "dead";
        e->error = err->msg;
        return;
    }
    if (c->attempt > ctx->cfg->daemon.max_attempts) {
        /* (daemon.max_attempts lowered by a reload below the attempts already made) */
        ocra_err_set(err, EIO, "gave up after %lld attempts (last error: %s)",
                     (long long)c->attempt - 1, c->last_error ? c->last_error : "none recorded");
        e->outcome = e->state = "dead";
        e->error = err->msg;
        return;
    }
    if (ocra_store_event_get(ctx->st, c->event_id, &ev, err) < 0 ||
        ocra_store_stage_outputs(ctx->st, c->event_id, &in_text, err) < 0 || !ev ||
        !(inputs = ocra_json_parse(in_text, strlen(in_text), 0, err))) {
        if (!ev && err->code == 0)
            ocra_err_set(err, ENOENT, "event is not in the journal");
        ocra_err_wrap(err, "stage %s inputs", c->stage);
        route_failed(ctx, op, c, err, e);
        goto out;
    }
    job = (struct ocra_daemon_job){ev, c};
    if (op->run(ctx, &job, inputs, &output, err) == 0 && json_is_object(output)) {
        *output_text = ocra_json_compact(output);
        e->output = *output_text;
        route_done(ctx->d, idx, output, e);
        if (e->error) { /* the reason borrowed from output: keep a copy in err */
            ocra_err_set(err, 0, "%s", e->error);
            e->error = err->msg;
        }
    } else {
        if (err->code == 0)
            ocra_err_set(err, EPROTO, "stage %s returned no output object", c->stage);
        route_failed(ctx, op, c, err, e);
    }
out:
    json_decref(output);
    json_decref(inputs);
    free(in_text);
    ocra_store_event_free(ev);
}

static void
log_end(struct ocra_daemon_ctx *ctx, const struct ocra_store_claim *c,
        const struct ocra_store_stage_end *e)
{
    const char *next = e->finished ? "-" : e->stage ? e->stage : c->stage;

    if (!strcmp(e->outcome, "done"))
        ocra_log_info("stage done event=%s stage=%s status=%s next=%s worker=%s", c->event_id,
                      c->stage, e->status, next, ctx->name);
    else if (!strcmp(e->outcome, "retry"))
        ocra_log_warn("stage retry event=%s stage=%s attempt=%lld in_ms=%lld worker=%s: %s",
                      c->event_id, c->stage, (long long)c->attempt,
                      (long long)(e->next_ms - ocra_time_wall_ms()), ctx->name, e->error);
    else if (!strcmp(e->outcome, "waiting"))
        ocra_log_info("stage waiting event=%s stage=%s: %s", c->event_id, c->stage, e->error);
    else if (!strcmp(e->outcome, "supervised"))
        ocra_log_info("stage supervised event=%s stage=%s worker=%s: %s", c->event_id, c->stage,
                      ctx->name, e->error);
    else if (!strcmp(e->outcome, "queued"))
        ocra_log_info("stage queued event=%s stage=%s: %s", c->event_id, c->stage, e->error);
    else if (!strcmp(e->outcome, "released"))
        ocra_log_info("stage checkpointed event=%s stage=%s worker=%s: %s", c->event_id, c->stage,
                      ctx->name, e->error);
    else
        ocra_log_error("stage dead event=%s stage=%s attempt=%lld worker=%s: %s", c->event_id,
                       c->stage, (long long)c->attempt, ctx->name, e->error);
}

static void
count_end(struct ocra_daemon *d, const struct ocra_store_stage_end *e)
{
    if (!strcmp(e->outcome, "done"))
        stat_add(d, &d->stats.done);
    else if (!strcmp(e->outcome, "retry"))
        stat_add(d, &d->stats.retried);
    else if (!strcmp(e->outcome, "waiting"))
        stat_add(d, &d->stats.waiting);
    else if (!strcmp(e->outcome, "queued"))
        stat_add(d, &d->stats.queued);
    else if (strcmp(e->outcome, "released") != 0 && strcmp(e->outcome, "supervised") != 0)
        stat_add(d, &d->stats.dead);
}

/* Takes over at once the claims of this machine's processes that are gone. */
static int
take_over_dead(struct ocra_daemon *d, struct ocra_store *st, const char *who, struct ocra_err *err)
{
    size_t n = 0;

    if (ocra_store_stage_takeover(st, &d->self, &n, err) < 0)
        return -1;
    if (n) {
        ocra_log_warn("took over claims=%zu of this machine's dead processes at once worker=%s", n,
                      who);
        pthread_mutex_lock(&d->mu);
        d->stats.takeovers_crash += n;
        pthread_mutex_unlock(&d->mu);
        ocra_daemon_metrics_takeover("crash", n);
    }
    return 0;
}

/* One claim, run and end on ctx's connection. */
static int
step_ctx(struct ocra_daemon_ctx *ctx, bool *ran, struct ocra_err *err)
{
    struct ocra_daemon *d = ctx->d;
    struct ocra_store_claim_opts o = {.worker = ctx->name,
                                      .gated = d->gated,
                                      .n_gated = d->n_gated,
                                      .superseded_stage = report_stage(d),
                                      .owner = *d->self.scope ? &d->self : NULL};
    struct ocra_store_stage_end e = {0};
    struct ocra_store_claim c = {0};
    struct ocra_err op_err = {0};
    char *output = NULL;
    bool found = false;
    uint64_t t0;
    int ret = 0;

    ctx->cfg = ocra_daemon_cfg(d);
    ocra_daemon_ctx_refresh(ctx);
    o.lease_ms = ctx->cfg->daemon.lease_ms;
    *ran = false;
    if (take_over_dead(d, ctx->st, ctx->name, err) < 0 ||
        ocra_store_stage_claim(ctx->st, &o, &c, &found, err) < 0 || !found)
        return found ? -1 : 0;
    *ran = true;
    stat_add(d, &d->stats.claimed);
    if (c.taken_over) {
        ocra_log_warn("stage taken over (lease expired) event=%s stage=%s attempt=%lld "
                      "crashes=%lld worker=%s",
                      c.event_id, c.stage, (long long)c.attempt, (long long)c.crashes, ctx->name);
        stat_add(d, &d->stats.takeovers_lease);
        ocra_daemon_metrics_takeover("lease", 1);
    }
    hold(ctx, &c);
    t0 = ocra_time_mono_ns();
    run_op(ctx, &c, &e, &output, &op_err);
    hold(ctx, NULL);
    if (ocra_store_stage_end(ctx->st, c.event_id, c.claim, &e, err) < 0) {
        if (err->code == ESTALE) { /* taken over meanwhile: the new holder's result counts */
            ocra_log_warn("stage lost event=%s stage=%s worker=%s: %s", c.event_id, c.stage,
                          ctx->name, err->msg);
            stat_add(d, &d->stats.lost);
        } else {
            ret = -1;
        }
    } else {
        log_end(ctx, &c, &e);
        count_end(d, &e);
        ocra_daemon_metrics_stage(&c, &e, t0);
        if (!strcmp(e.outcome, "queued")) /* room freed while it looked: not lost */
            ocra_daemon_queue_dispatch(ctx);
    }
    free(output);
    ocra_store_claim_fini(&c);
    return ret;
}

int
ocra_daemon_step(struct ocra_daemon *d, struct ocra_store *st, bool *ran, struct ocra_err *err)
{
    struct ocra_daemon_ctx ctx = {.d = d, .st = st, .id = -1};
    int ret;

    (void)snprintf(ctx.name, sizeof(ctx.name), "step@%s", d->host);
    ret = step_ctx(&ctx, ran, err);
    ocra_daemon_ctx_clients_fini(&ctx);
    return ret;
}

/* ---- workers ----------------------------------------------------------------------------- */

void
ocra_daemon_deadline(int64_t ms, struct timespec *ts)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Waits up to ms for a wake-up (new events, stop). */
static void
idle(struct ocra_daemon *d, int64_t ms)
{
    struct timespec ts;
    unsigned long gen;

    ocra_daemon_deadline(ms, &ts);
    pthread_mutex_lock(&d->mu);
    gen = d->wake_gen;
    while (!d->stopping && gen == d->wake_gen)
        if (pthread_cond_timedwait(&d->cv, &d->mu, &ts) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&d->mu);
}

static void *
worker_main(void *arg)
{
    struct ocra_daemon_ctx *ctx = arg;
    struct ocra_daemon *d = ctx->d;

    ocra_log_debug("worker started worker=%s", ctx->name);
    while (!d->stopping) {
        struct ocra_err err = {0};
        bool ran = false;

        if (step_ctx(ctx, &ran, &err) < 0) {
            ocra_log_error("worker=%s journal: %s", ctx->name, err.msg);
            idle(d, ocra_daemon_cfg(d)->daemon.poll_ms);
        } else if (!ran) {
            idle(d, ocra_daemon_cfg(d)->daemon.poll_ms);
        }
    }
    ocra_log_debug("worker stopped worker=%s", ctx->name);
    return NULL;
}

static void
wake_all(struct ocra_daemon *d)
{
    pthread_mutex_lock(&d->mu);
    d->wake_gen++;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

void
ocra_daemon_wake_workers(struct ocra_daemon *d)
{
    wake_all(d);
}

/* ---- lifecycle --------------------------------------------------------------------------- */

static int
check_stages(const struct ocra_daemon_stage *s, size_t n, struct ocra_err *err)
{
    if (n == 0)
        return ocra_err_set(err, EINVAL, "daemon: no stages");
    for (size_t i = 0; i < n; i++) {
        if (!s[i].name || !s[i].reached || !s[i].run)
            return ocra_err_set(err, EINVAL, "daemon: stage %zu lacks a name, status or op", i);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(s[i].name, s[j].name))
                return ocra_err_set(err, EINVAL, "daemon: stage %s listed twice", s[i].name);
    }
    if (s[n - 1].gated)
        return ocra_err_set(err, EINVAL, "daemon: the last stage (report) cannot be gated");
    return 0;
}

int
ocra_daemon_new(const struct ocra_daemon_opts *opts, struct ocra_daemon **out, struct ocra_err *err)
{
    const struct ocra_daemon_stage *stages = opts->stages ? opts->stages : ocra_daemon_stages;
    size_t n = opts->stages ? opts->n_stages : ocra_daemon_n_stages;
    struct ocra_err self_err = {0};
    struct ocra_daemon *d;

    if (check_stages(stages, n, err) < 0)
        return -1;
    d = ocra_xcalloc(1, sizeof(*d));
    d->stages = stages;
    d->n_stages = n;
    d->cfg = opts->cfg;
    d->no_watch = opts->no_watch;
    d->gated = ocra_xcalloc(n, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        if (stages[i].gated)
            d->gated[d->n_gated++] = stages[i].name;
        /* every stage's failures exist at zero: an alert on their increase sees the first */
        ocra_metrics_touch(ocra_metrics_std()->stage_failures,
                           (const char *const[]){stages[i].name, "transient"});
        ocra_metrics_touch(ocra_metrics_std()->stage_failures,
                           (const char *const[]){stages[i].name, "permanent"});
    }
    if (gethostname(d->host, sizeof(d->host) - 16) < 0)
        (void)snprintf(d->host, sizeof(d->host), "localhost");
    d->host[sizeof(d->host) - 17] = '\0';
    (void)snprintf(d->host + strlen(d->host), 16, ":%ld", (long)getpid());
    if (ocra_proc_self(&d->self, &self_err) < 0) {
        ocra_log_warn("daemon: cannot identify this process (%s): if it dies, its claims are "
                      "taken over only when their lease (daemon.lease_ms) runs out",
                      self_err.msg);
        memset(&d->self, 0, sizeof(d->self));
    }
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    if (ocra_store_open(opts->cfg->journal_path, &d->st, err) < 0) {
        ocra_daemon_free(d);
        return -1;
    }
    *out = d;
    return 0;
}

int
ocra_daemon_tick(struct ocra_daemon *d, struct ocra_err *err)
{
    const struct ocra_config *cfg = ocra_daemon_cfg(d);
    int64_t now = ocra_time_wall_ms();
    size_t added = 0;

    if (ocra_store_pipeline_intake(d->st, d->stages[0].name, report_stage(d), &added, err) < 0)
        return -1;
    if (added) {
        pthread_mutex_lock(&d->mu);
        d->stats.intake += added;
        pthread_mutex_unlock(&d->mu);
        ocra_log_info("intake events=%zu", added);
    }
    if (now - d->last_queue_ms >= cfg->sched.queue.interval_ms) { /* at start, then a safety net */
        struct ocra_daemon_ctx qctx = {.d = d, .st = d->st, .cfg = cfg, .id = -1};

        d->last_queue_ms = now;
        ocra_daemon_queue_dispatch(&qctx);
    }
    wake_all(d);
    /* Renew the claims of the stages running now, a third of a lease before it ends. */
    if (d->held && now - d->last_renew_ms >= cfg->daemon.lease_ms / 3) {
        d->last_renew_ms = now;
        for (size_t i = 0; i < d->n_workers; i++) {
            char *id = NULL;
            int64_t claim = 0;
            struct ocra_err e2 = {0};

            pthread_mutex_lock(&d->mu);
            if (d->held[i].event_id) {
                id = ocra_xstrdup(d->held[i].event_id);
                claim = d->held[i].claim;
            }
            pthread_mutex_unlock(&d->mu);
            if (id && ocra_store_stage_renew(d->st, id, claim, cfg->daemon.lease_ms, &e2) < 0 &&
                e2.code != ESTALE)
                ocra_log_warn("renew event=%s: %s", id, e2.msg);
            free(id);
        }
    }
    return 0;
}

static int
start_workers(struct ocra_daemon *d, const struct ocra_config *cfg, struct ocra_err *err)
{
    d->n_workers = (size_t)cfg->daemon_workers;
    d->workers = ocra_xcalloc(d->n_workers, sizeof(*d->workers));
    d->held = ocra_xcalloc(d->n_workers, sizeof(*d->held));
    for (size_t i = 0; i < d->n_workers; i++) {
        struct ocra_daemon_ctx *ctx = &d->workers[i];

        ctx->d = d;
        ctx->id = (int)i;
        (void)snprintf(ctx->name, sizeof(ctx->name), "w%zu@%s", i, d->host);
        if (ocra_store_open(cfg->journal_path, &ctx->st, err) < 0)
            return ocra_err_wrap(err, "worker %zu", i);
    }
    for (size_t i = 0; i < d->n_workers; i++) {
        int rc = pthread_create(&d->workers[i].thread, NULL, worker_main, &d->workers[i]);

        if (rc != 0) {
            d->n_workers = i; /* only those joined at stop */
            return ocra_err_set(err, rc, "worker %zu: pthread_create: %s", i, strerror(rc));
        }
    }
    return 0;
}

/* ---- the agent sockets (docs/AGENT.md) ---------------------------------------------------- */

/* Guards d->agentd: the workers and the autoscaling loop add and remove runs while the daemon
 * stops. */
static pthread_mutex_t agent_mu = PTHREAD_MUTEX_INITIALIZER;

/* The agent's own journal connection, opened at its first use; NULL when it cannot be. */
static struct ocra_store *
agent_store(struct ocra_daemon *d)
{
    struct ocra_err err = {0};

    if (!d->agent_st && ocra_store_open(d->journal, &d->agent_st, &err) < 0) {
        ocra_log_warn("agent socket: journal: %s", err.msg);
        d->agent_st = NULL;
    }
    return d->agent_st;
}

/* "is this image's (event, version) still current?", asked by the agent before the workload
 * starts; the same rule as the supersession gate. */
static int
agent_check(void *arg, const struct ocra_agentd_msg *msg, const struct ocra_agentd_peer *peer,
            struct ocra_agentd_answer *answer)
{
    struct ocra_daemon *d = arg;
    struct ocra_store_event *ev = NULL;
    struct ocra_err err = {0};
    char *newer = NULL;
    bool current = true;
    json_t *spec;

    (void)peer;
    if (!agent_store(d))
        return -1;
    if (ocra_daemon_event_current(d->agent_st, msg->event, NULL, msg->version, &current, &newer,
                                  &err) < 0) {
        answer->verdict = OCRA_AGENTD_UNKNOWN;
        ocra_log_info("agent event=%s version=%s: %s", msg->event, msg->version, err.msg);
        return 0;
    }
    answer->verdict = current ? OCRA_AGENTD_CURRENT : OCRA_AGENTD_SUPERSEDED;
    if (!current && newer && ocra_store_event_get(d->agent_st, newer, &ev, &err) == 0 && ev &&
        ev->spec && (spec = ocra_json_parse(ev->spec, strlen(ev->spec), 0, NULL))) {
        snprintf(answer->current, sizeof(answer->current), "%s",
                 ocra_json_str(spec, "modelVersion") ? ocra_json_str(spec, "modelVersion") : "");
        json_decref(spec);
    }
    ocra_log_info("agent event=%s version=%s: %s", msg->event, msg->version,
                  current ? "current" : "superseded");
    ocra_store_event_free(ev);
    free(newer);
    return 0;
}

/* The agent refused to start its workload and exits 75 once answered: the refusal is kept
 * with the event before the answer, so the complete stage that sees the exit knows why. */
static void
agent_refused(struct ocra_daemon *d, const struct ocra_agentd_msg *msg,
              const struct ocra_agentd_peer *peer)
{
    json_t *j = json_pack("{s:s, s:s?, s:i, s:I}", "reason", msg->reason, "current",
                          msg->current[0] ? msg->current : NULL, "replica", peer->replica, "timeMs",
                          (json_int_t)ocra_time_wall_ms());
    char *text = ocra_json_compact(j);
    struct ocra_store *st = agent_store(d);
    struct ocra_err err = {0};

    if (st && ocra_store_event_refused(st, msg->event, text, &err) < 0)
        ocra_log_warn("agent event=%s refused: journal: %s", msg->event, err.msg);
    ocra_log_info("agent event=%s replica=%d refused to start: %s (current version %s)", msg->event,
                  peer->replica, msg->reason, msg->current[0] ? msg->current : "?");
    free(text);
    json_decref(j);
}

/* A report of the run whose socket it came through (peer->run, peer->replica): agentd has
 * refused anything that named another event. */
static void
agent_report(void *arg, const struct ocra_agentd_msg *msg, const struct ocra_agentd_peer *peer)
{
    ocra_daemon_scale_report(arg, msg, peer->replica); /* a heartbeat's load: autoscaling */
    switch (msg->type) {
    case OCRA_AGENTD_STARTED:
        ocra_log_info("agent event=%s replica=%d started pid=%" PRId64 "%s", msg->event,
                      peer->replica, msg->pid, msg->forced ? " forced" : "");
        break;
    case OCRA_AGENTD_COMPLETED:
        ocra_log_info("agent event=%s replica=%d completed exit=%d signal=%d duration_ms=%" PRId64,
                      msg->event, peer->replica, msg->exit_code, msg->signal, msg->duration_ms);
        break;
    case OCRA_AGENTD_REFUSED:
        agent_refused(arg, msg, peer);
        break;
    default:
        ocra_log_debug("agent event=%s replica=%d %s", msg->event, peer->replica,
                       ocra_agentd_type_name(msg->type));
        break;
    }
}

/* Each run holds a listening socket of its own (and its agent's connection): a daemon with
 * many replicas needs more descriptors than the usual soft limit of 1024. */
static void
raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
        return;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        ocra_log_warn("agent sockets: cannot raise the open files limit to %llu: %s",
                      (unsigned long long)rl.rlim_max, strerror(errno));
}

/* The agent server on agent.socket_dir, with no run yet (ocra_daemon_agent_run adds each); a
 * failure is logged, not fatal: the agents then run their workloads unreported, and runs
 * mount nothing. */
static void
agent_start(struct ocra_daemon *d, const struct ocra_config *cfg)
{
    const struct ocra_agentd_options o = {.dir = cfg->agent.socket_dir,
                                          .name_max = OCRA_RUN_NAME_MAX - 1,
                                          .gid = 65532,
                                          .heartbeat_s = (int)cfg->agent.heartbeat_s};
    const struct ocra_agentd_callbacks cb = {agent_check, agent_report, d};
    struct ocra_agentd *a = NULL;
    struct ocra_err err = {0};
    struct stat st;

    if (!*cfg->agent.socket_dir)
        return;
    raise_fd_limit();
    if (ocra_agentd_start(&o, &cb, &a, &err) < 0) {
        ocra_log_warn("agent sockets in %s: %s (workloads run without reporting)",
                      cfg->agent.socket_dir, err.msg);
        return;
    }
    pthread_mutex_lock(&agent_mu);
    d->agentd = a;
    pthread_mutex_unlock(&agent_mu);
    ocra_log_info("agent sockets in %s, one directory per run", cfg->agent.socket_dir);
    if (stat(cfg->agent.socket_dir, &st) == 0 && (st.st_mode & 077))
        /* an existing directory is used as it is (it may be /run): say what it costs */
        ocra_log_warn("agent sockets in %s: the directory has mode %03o; a container that binds "
                      "it whole (one started by an ocra before per-run sockets) can reach every "
                      "run's socket: chmod 0700 %s",
                      cfg->agent.socket_dir, (unsigned)(st.st_mode & 0777), cfg->agent.socket_dir);
}

/* Stops the server; after it, ocra_daemon_agent_run gives no directory. */
static void
agent_stop(struct ocra_daemon *d)
{
    struct ocra_agentd *a;

    pthread_mutex_lock(&agent_mu);
    a = d->agentd;
    d->agentd = NULL;
    pthread_mutex_unlock(&agent_mu);
    ocra_agentd_stop(a);
}

int
ocra_daemon_agent_run(struct ocra_daemon *d, const char *event_id, int replica, char **dir,
                      struct ocra_err *err)
{
    char name[OCRA_RUN_NAME_MAX];
    int ret = 0;

    *dir = NULL;
    if (!d)
        return 0;
    ocra_run_replica_name(event_id, replica, name);
    pthread_mutex_lock(&agent_mu);
    if (d->agentd && ocra_agentd_run_add(d->agentd, name, event_id, replica, dir, err) < 0)
        ret = -1;
    pthread_mutex_unlock(&agent_mu);
    return ret;
}

void
ocra_daemon_agent_run_end(struct ocra_daemon *d, const char *event_id, int replica)
{
    char name[OCRA_RUN_NAME_MAX];

    if (!d)
        return;
    ocra_run_replica_name(event_id, replica, name);
    pthread_mutex_lock(&agent_mu);
    ocra_agentd_run_remove(d->agentd, name);
    pthread_mutex_unlock(&agent_mu);
}

int
ocra_daemon_start(struct ocra_daemon *d, struct ocra_err *err)
{
    const struct ocra_config *cfg = ocra_daemon_cfg(d);
    size_t woken = 0;

    if (ocra_store_stage_wake(d->st, &woken, err) < 0)
        return ocra_err_wrap(err, "wake waiting stages");
    if (woken)
        ocra_log_info("woke waiting events=%zu", woken);
    /* a restart resumes its predecessor's stages now, not a lease later */
    if (take_over_dead(d, d->st, "start", err) < 0)
        return -1;
    if (ocra_daemon_tick(d, err) < 0)
        return ocra_err_wrap(err, "intake");
    free(d->journal);
    d->journal = ocra_xstrdup(cfg->journal_path);
    if (ocra_daemon_lb_start(d, err) < 0) /* before the loop syncs its servers */
        return -1;
    if (ocra_daemon_scale_start(d, err) < 0) /* before the agents report loads */
        return -1;
    agent_start(d, cfg);
    if (ocra_daemon_supervise_start(d, err) < 0) /* before a worker parks a workload */
        return -1;
    if (start_workers(d, cfg, err) < 0)
        return -1;
    if (!d->no_watch && ocra_daemon_watchers_start(d, cfg->journal_path, err) < 0)
        return -1;
    if (ocra_daemon_api_start(d, err) < 0)
        return -1;
    ocra_log_info("daemon started workers=%zu watchers=%zu journal=%s", d->n_workers, d->n_watchers,
                  cfg->journal_path);
    return 0;
}

void
ocra_daemon_stop(struct ocra_daemon *d)
{
    ocra_daemon_api_stop(d);
    pthread_mutex_lock(&d->mu);
    d->stopping = 1;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
    ocra_daemon_watchers_join(d);
    for (size_t i = 0; i < d->n_workers; i++)
        pthread_join(d->workers[i].thread, NULL);
    for (size_t i = 0; i < d->n_workers; i++) {
        ocra_daemon_ctx_clients_fini(&d->workers[i]);
        ocra_store_close(d->workers[i].st);
    }
    free(d->workers);
    d->workers = NULL;
    if (d->held)
        for (size_t i = 0; i < d->n_workers; i++)
            free(d->held[i].event_id);
    free(d->held);
    d->held = NULL;
    d->n_workers = 0;
    ocra_daemon_supervise_stop(d); /* no worker parks a workload any more */
    agent_stop(d);
    ocra_daemon_scale_stop(d); /* after the agent socket: no report comes in meanwhile */
    ocra_daemon_lb_stop(d);    /* after the loop: nothing drives HAProxy any more */
    ocra_store_close(d->agent_st);
    d->agent_st = NULL;
}

void
ocra_daemon_reload(struct ocra_daemon *d, const struct ocra_config *cfg)
{
    struct ocra_err err = {0};
    size_t woken = 0;

    pthread_mutex_lock(&d->mu);
    d->cfg = cfg;
    pthread_mutex_unlock(&d->mu);
    /* a stage wired since (a new binary is a restart; a configuration may enable one) */
    if (ocra_store_stage_wake(d->st, &woken, &err) < 0)
        ocra_log_warn("reload: wake waiting stages: %s", err.msg);
    else if (woken)
        ocra_log_info("reload: woke waiting events=%zu", woken);
    wake_all(d);
}

void
ocra_daemon_free(struct ocra_daemon *d)
{
    if (!d)
        return;
    if (d->workers || d->watchers || d->api || d->scale || d->sup || d->lb)
        ocra_daemon_stop(d);
    ocra_store_close(d->st);
    free(d->journal);
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    free(d->gated);
    free(d);
}

/* ---- the agent's question ---------------------------------------------------------------- */

int
ocra_daemon_event_current(struct ocra_store *st, const char *event_id, const char *model,
                          const char *version, bool *current, char **newer, struct ocra_err *err)
{
    struct ocra_store_pipeline *p = NULL;
    int ret = -1;

    if (ocra_store_pipeline_get(st, event_id, &p, err) < 0)
        return -1;
    if (!p)
        return ocra_err_set(err, ENOENT, "event %s: unknown", event_id);
    if (model && strcmp(model, p->model) != 0)
        ocra_err_set(err, EINVAL, "event %s is of model %s, not %s", event_id, p->model, model);
    else if (version && (!p->version || strcmp(version, p->version) != 0))
        ocra_err_set(err, EINVAL, "event %s is version %s, not %s", event_id,
                     p->version ? p->version : "(none)", version);
    else
        ret = ocra_store_event_current(st, event_id, current, newer, err);
    ocra_store_pipeline_free(p);
    return ret;
}
