/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon_scale.c: the autoscaling loop of inference workloads with replicas {min, max}
 * (docs/RUNNING.md, Autoscaling). The agents' heartbeats carry each replica's load (requests in
 * flight + queued, docs/AGENT.md); agent_report keeps the last one per (event, replica) here,
 * the replica being that of the run whose own socket the heartbeat came through.
 * A thread of its own, with its own journal connection, wakes every autoscale.interval_s, and
 * for each event in the running phase whose plan allows more than one replica feeds the sum of
 * the fresh loads to the control law (ocra_sched_autoscale_step). A change is carried out as:
 * up: the allocations first (ocra_sched_allocator_scale under the allocator's lock), then the
 * new replicas' containers; down: the released replicas' containers stopped and removed first,
 * then their allocations. So a replica container never lives without its allocation, and after
 * a restart the held allocations say how many replicas there are (their containers are started
 * or adopted again). Replica 0 is the run stage's container; replica N >= 1 is
 * ocra-<short id>-r<N>, same image digest, same sandbox, port + N. Docker runner only. The
 * event's end removes the replicas its allocations name, then any other container of the event
 * but replica 0's (found by its labels). The loop's thread also removes the stray containers of
 * either runner (daemon_strays.c) at its start and every run.reconcile_interval_s, under the
 * lock of the scaling operations.
 */
#include "daemon/daemon_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metrics/metrics.h"
#include "run/run.h"
#include "sched/sched.h"

#define LOADS_MAX 4096  /* (event, replica) pairs kept, one per run; the stale go first */
#define STOP_GRACE_S 10 /* a removed replica's time to finish after SIGTERM */
#define FRESH_BEATS 3   /* a load counts while younger than this many heartbeats */

struct load {
    char *event_id;
    int replica;
    int64_t load;
    int64_t at_ms; /* monotonic */
};

/* An event the loop has seen in the running phase. */
struct scaled {
    char *event_id;
    bool seen;    /* in this tick's running set */
    bool static_; /* not autoscaled: max 1, another runner, or a plan that failed */
    int port;     /* the workload's port (replica N at port + N); 0: serves none */
    struct ocra_sched_autoscaler as;
};

struct ocra_daemon_scale {
    struct ocra_daemon *d;
    pthread_mutex_t mu; /* guards loads, ended, stopping */
    pthread_cond_t cv;  /* the loop waits here; stop signals */
    bool stopping;
    struct load *loads;
    size_t n_loads;
    char **ended; /* events whose complete stage took their replicas down */
    size_t n_ended;
    pthread_t thread;
    bool started;
    struct ocra_daemon_ctx ctx; /* the loop's: its own journal connection */
    struct scaled *ev;          /* the loop thread's only */
    size_t n_ev;
    bool slurm_said;
    bool reconciled;           /* the reconcile at start is done */
    int64_t next_reconcile_ms; /* monotonic */
};

/* One scaling operation at a time: the loop, the run stage's min and the complete stage's
 * teardown of one event never interleave. */
static pthread_mutex_t op_mu = PTHREAD_MUTEX_INITIALIZER;

static int64_t
mono_ms(void)
{
    return (int64_t)(ocra_time_mono_ns() / 1000000u);
}

/* ---- loads ------------------------------------------------------------------------------- */

static void
load_drop(struct ocra_daemon_scale *s, size_t i)
{
    free(s->loads[i].event_id);
    s->loads[i] = s->loads[--s->n_loads];
}

void
ocra_daemon_scale_report(struct ocra_daemon *d, const struct ocra_agentd_msg *msg, int replica)
{
    struct ocra_daemon_scale *s = d->scale;
    int64_t now = mono_ms(), fresh = FRESH_BEATS * 1000 * ocra_daemon_cfg(d)->agent.heartbeat_s;
    struct load *l = NULL;

    if (!s || (msg->type != OCRA_AGENTD_HEARTBEAT && msg->type != OCRA_AGENTD_COMPLETED))
        return;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n_loads; i++) {
        if (s->loads[i].replica == replica && !strcmp(s->loads[i].event_id, msg->event)) {
            l = &s->loads[i];
            break;
        }
    }
    if (l && (msg->type == OCRA_AGENTD_COMPLETED || !msg->has_load)) {
        load_drop(s, (size_t)(l - s->loads)); /* it says no more: it counts no more */
    } else if (msg->type == OCRA_AGENTD_HEARTBEAT && msg->has_load) {
        for (size_t i = s->n_loads; !l && s->n_loads == LOADS_MAX && i-- > 0;)
            if (now - s->loads[i].at_ms >= fresh)
                load_drop(s, i);
        if (!l && s->n_loads < LOADS_MAX) {
            l = &s->loads[s->n_loads++];
            l->event_id = ocra_xstrdup(msg->event);
            l->replica = replica;
        }
        if (l) {
            l->load = msg->load;
            l->at_ms = now;
        } else {
            ocra_log_debug("autoscale: %d loads kept already: event=%s load dropped", LOADS_MAX,
                           msg->event);
        }
    }
    pthread_mutex_unlock(&s->mu);
}

/* The sum of event_id's loads fresh at now (monotonic ms); *n counts them. */
static int64_t
load_sum(struct ocra_daemon_scale *s, const char *event_id, int64_t now, int64_t fresh_ms, int *n)
{
    int64_t sum = 0;

    *n = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n_loads; i++) {
        if (now - s->loads[i].at_ms < fresh_ms && !strcmp(s->loads[i].event_id, event_id)) {
            sum += s->loads[i].load;
            (*n)++;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return sum;
}

int64_t
ocra_daemon_scale_load(struct ocra_daemon *d, const char *event_id, int64_t later_ms, int *n)
{
    *n = 0;
    if (!d->scale)
        return 0;
    return load_sum(d->scale, event_id, mono_ms() + later_ms,
                    FRESH_BEATS * 1000 * ocra_daemon_cfg(d)->agent.heartbeat_s, n);
}

static bool
is_stopping(struct ocra_daemon_scale *s)
{
    bool stopping;

    pthread_mutex_lock(&s->mu);
    stopping = s->stopping;
    pthread_mutex_unlock(&s->mu);
    return stopping;
}

static bool
ended(struct ocra_daemon_scale *s, const char *event_id)
{
    bool found = false;

    if (!s)
        return false;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n_ended && !found; i++)
        found = !strcmp(s->ended[i], event_id);
    pthread_mutex_unlock(&s->mu);
    return found;
}

/* ---- replicas ------------------------------------------------------------------------------ */

struct held {
    int n;
    int max_replica; /* -1: none */
};

static int
count_held(const struct ocra_store_alloc *a, void *arg)
{
    struct held *h = arg;

    h->n++;
    if (a->replica > h->max_replica)
        h->max_replica = a->replica;
    return 0;
}

/* How many replicas event_id holds allocations for. */
static int
held_count(struct ocra_store *st, const char *event_id, struct held *h, struct ocra_err *err)
{
    *h = (struct held){0, -1};
    return ocra_store_alloc_list(st, event_id, true, count_held, h, err);
}

/* The runs row of a replica's container (as the run stage's for replica 0): its id, the image
 * digest, the node and devices of its allocation. A row that exists is kept as it is. */
static int
replica_journal(struct ocra_store *st, const char *runner, const struct ocra_run_spec *rs,
                const struct ocra_store_alloc *a, const struct ocra_run_job *rj,
                struct ocra_err *err)
{
    const char *at = strrchr(rs->image, '@');
    struct ocra_store_run run = {.id = rj->id,
                                 .event_id = rs->event_id,
                                 .image_digest = at ? at + 1 : NULL,
                                 .runner = runner,
                                 .node = a->node,
                                 .state = "running"};
    json_t *gpus = json_array();
    char *text;
    int ret;

    for (int i = 0; i < a->n_devs; i++)
        json_array_append_new(gpus, json_integer(a->devs[i]));
    text = ocra_json_compact(gpus);
    run.gpus = text;
    ret = ocra_store_run_put(st, &run, err);
    json_decref(gpus);
    free(text);
    return ret < 0 ? ocra_err_wrap(err, "journal replica %d's run", rs->replica) : 0;
}

/* The end of a replica the loop removed: its runs row "stopped" with the exit status, or, when
 * its workload had exited on its own (exited: why), "succeeded" or "failed" by its status (a
 * run the journal does not hold, started before runs were journaled, is left alone). */
static int
replica_journal_end(struct ocra_store *st, const char *container_id, int replica, int exit_code,
                    const char *exited, struct ocra_err *err)
{
    json_t *result =
        json_pack("{s:i, s:i, s:s}", "exitCode", exit_code, "replica", replica, "reason",
                  exited ? exited : "removed by the autoscaler or at the event's end");
    char *text = ocra_json_compact(result);
    const char *state = !exited ? "stopped" : exit_code == 0 ? "succeeded" : "failed";
    int ret = ocra_store_run_end(st, container_id, state, NULL, text, err);

    json_decref(result);
    free(text);
    if (ret < 0 && err->code == ENOENT)
        return 0;
    return ret < 0 ? ocra_err_wrap(err, "journal replica %d's end", replica) : 0;
}

struct gone {
    struct ocra_runner *runner;
    const char *keep;
    char **ids;
    size_t n;
};

static int
collect_gone(const struct ocra_store_run *r, void *arg)
{
    struct gone *g = arg;
    struct ocra_run_state cs;
    struct ocra_err err = {0};

    if (strcmp(r->state, "running") != 0 || strcmp(r->runner, g->runner->name) != 0 ||
        !strcmp(r->id, g->keep))
        return 0;
    if (g->runner->inspect(g->runner, r->id, &cs, &err) == 0 && !cs.found) {
        g->ids = ocra_xrealloc(g->ids, (g->n + 1) * sizeof(*g->ids));
        g->ids[g->n++] = ocra_xstrdup(r->id);
    }
    return 0;
}

/* After a replica's container had to be created again (it was gone: removed outside ocra while
 * the daemon was down): the event's runs rows still "running" whose container the engine no
 * longer knows end "failed", so the lineage does not show a run that is not there. */
static void
replica_reconcile(struct ocra_daemon_ctx *ctx, struct ocra_runner *runner, const char *event_id,
                  const char *keep)
{
    struct gone g = {.runner = runner, .keep = keep};
    struct ocra_err err = {0};

    if (ocra_store_run_list(ctx->st, event_id, collect_gone, &g, &err) < 0)
        ocra_log_warn("autoscale event=%s: runs without a container: %s", event_id, err.msg);
    for (size_t i = 0; i < g.n; i++) {
        if (ocra_store_run_end(ctx->st, g.ids[i], "failed", NULL,
                               "{\"exitCode\":-1,\"reason\":\"its container was gone (removed "
                               "outside ocra)\"}",
                               &err) < 0)
            ocra_log_warn("autoscale event=%s run=%s: %s", event_id, g.ids[i], err.msg);
        else
            ocra_log_warn("autoscale event=%s run=%s: its container is gone: run failed", event_id,
                          g.ids[i]);
        free(g.ids[i]);
    }
    free(g.ids);
}

/* Replica `replica`'s container: replica 0's spec with its own devices, name and port. */
static int
replica_start(struct ocra_daemon_ctx *ctx, struct ocra_runner *runner,
              const struct ocra_run_spec *rs0, int replica, struct ocra_err *err)
{
    struct ocra_run_spec rs = *rs0;
    struct ocra_store_alloc a;
    struct ocra_run_job rj = {0};
    uint8_t devs[OCRA_RUN_MAX_GPUS];
    char *agent_dir = NULL;
    bool found = false;
    int ret;

    if (ocra_store_alloc_held(ctx->st, rs0->event_id, replica, &a, &found, err) < 0)
        return -1;
    if (!found)
        return ocra_err_set(err, ENOENT, "replica %d holds no allocation", replica);
    rs.replica = replica;
    rs.n_gpu_devs = a.n_devs < OCRA_RUN_MAX_GPUS ? a.n_devs : OCRA_RUN_MAX_GPUS;
    for (int i = 0; i < rs.n_gpu_devs; i++)
        devs[i] = (uint8_t)a.devs[i];
    rs.gpu_devs = rs.n_gpu_devs ? devs : NULL;
    rs.node = a.node; /* a runner over several engines starts it on its node's */
    /* its own agent socket (an adopted container finds its directory again) */
    if (ocra_daemon_agent_run(ctx->d, rs0->event_id, replica, &agent_dir, err) < 0)
        return -1;
    rs.agent_dir = agent_dir;
    ocra_daemon_lb_forget(ctx->d, rs0->event_id, replica); /* drained before: back in rotation */
    ret = runner->start(runner, &rs, &rj, err);
    free(agent_dir);
    if (ret < 0)
        return -1;
    ocra_log_info("autoscale event=%s replica=%d container=%s%s", rs0->event_id, replica, rj.name,
                  rj.adopted ? " adopted" : " started");
    if (replica_journal(ctx->st, runner->name, &rs, &a, &rj, err) < 0)
        return -1;
    if (!rj.adopted)
        replica_reconcile(ctx, runner, rs0->event_id, rj.id);
    return 0;
}

/* Stops (SIGTERM, SIGKILL after STOP_GRACE_S) and removes replica `replica`'s container; one
 * that is gone already is fine. By name: the docker runner's remove wants the id. exited: NULL
 * when the loop removes a running replica, else why its workload ended (its runs row). */
static int
replica_remove(struct ocra_daemon_ctx *ctx, struct ocra_runner *runner, const char *event_id,
               int replica, const char *exited, struct ocra_err *err)
{
    struct ocra_run_state cs = {.exit_code = -1};
    struct ocra_run_job rj = {0};
    struct ocra_err ierr = {0};
    int ret = -1;

    ocra_run_replica_name(event_id, replica, rj.name);
    ocra_daemon_lb_drain(ctx->d, ctx->cfg, event_id, replica); /* no new request from here */
    if (runner->inspect(runner, rj.name, &cs, err) < 0)
        goto out;
    if (cs.found) {
        snprintf(rj.id, sizeof(rj.id), "%s", cs.id);
        if (runner->stop(runner, &rj, STOP_GRACE_S, err) < 0) {
            if (err->code != ENOENT) /* gone meanwhile is fine */
                goto out;
            memset(err, 0, sizeof(*err));
        }
        /* its id and exit status, for the journal's runs row (none: no row to end; an engine
         * that stopped answering fails the removal below) */
        (void)runner->inspect(runner, rj.id, &cs, &ierr);
        if (runner->remove(runner, &rj, err) < 0) {
            if (err->code != ENOENT)
                goto out;
            memset(err, 0, sizeof(*err));
        }
    }
    ret = 0;
out:
    if (ret < 0)
        ocra_err_wrap(err, "remove %s", rj.name);
    else
        ocra_daemon_agent_run_end(ctx->d, event_id, replica); /* its socket goes with it */
    if (ret == 0 && cs.found && cs.id[0])
        ret = replica_journal_end(ctx->st, cs.id, replica, cs.exit_code, exited, err);
    return ret;
}

struct scale_call {
    const char *event_id;
    struct ocra_sched_req req;
    int want, have;
};

static int
do_scale(struct ocra_sched_allocator *a, void *arg, struct ocra_err *err)
{
    struct scale_call *c = arg;

    return ocra_sched_allocator_scale(a, c->event_id, &c->req, c->want, &c->have, err);
}

/* Allocations of the event to want under the allocator's lock; *have: the count reached. */
static int
alloc_scale(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_prepared *p, const char *event_id,
            int want, int *have, struct ocra_err *err)
{
    struct scale_call c = {.event_id = event_id, .want = want, .have = *have};
    int ret;

    ocra_daemon_replica_req(p, &c.req);
    ret = ocra_daemon_with_allocator(ctx, do_scale, &c, err);
    if (c.have < *have) /* replicas gave their room back: the queue may start */
        ocra_daemon_queue_dispatch(ctx);
    *have = c.have;
    return ret;
}

/*
 * Brings the event from have replicas to want (under op_mu): up, the allocations, then each new
 * container (a start that fails gives that replica's allocation and those above it back);
 * down, the containers from the top, then the allocations. *reached: the count in place after.
 * -1 with err when it stopped short.
 */
static int
scale_to(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_prepared *p,
         const struct ocra_run_spec *rs0, int have, int want, int *reached, struct ocra_err *err)
{
    const char *id = rs0->event_id;
    struct ocra_runner *runner = NULL;
    struct ocra_err e2 = {0};
    int got = have, ret = -1;

    *reached = have;
    if (!(runner = ocra_daemon_runner_new(ctx->cfg, err)))
        return -1;
    if (want > have) {
        ret = alloc_scale(ctx, p, id, want, &got, err);
        for (int r = have; r < got; r++) {
            if (r > 0 && replica_start(ctx, runner, rs0, r, err) < 0) {
                int back = r;

                if (alloc_scale(ctx, p, id, r, &back, &e2) < 0)
                    ocra_log_warn("autoscale event=%s: give back replicas %d..: %s", id, r, e2.msg);
                got = back;
                ret = -1;
                break;
            }
        }
        *reached = got;
        ocra_runner_free(runner);
        return ret;
    }
    for (; got > want; got--) {
        if (got - 1 > 0 && replica_remove(ctx, runner, id, got - 1, NULL, err) < 0)
            break;
    }
    ret = got == want ? 0 : -1;
    if (got < have) { /* a failed removal keeps err; the release's error then is logged */
        int back = have;

        if (alloc_scale(ctx, p, id, got, &back, ret < 0 ? &e2 : err) < 0) {
            if (ret < 0)
                ocra_log_warn("autoscale event=%s: release replicas %d..: %s", id, got, e2.msg);
            ret = -1;
        }
        got = back;
    }
    *reached = got;
    ocra_runner_free(runner);
    return ret;
}

static void
scale_metrics(const char *event_id, int from, int to, bool failed)
{
    const struct ocra_metrics_std *m = ocra_metrics_std();

    ocra_metrics_set(m->replicas, (const char *const[]){event_id}, to);
    if (to != from)
        ocra_metrics_add(m->scale_actions, (const char *const[]){to > from ? "up" : "down"}, 1);
    if (failed)
        ocra_metrics_add(m->scale_actions, (const char *const[]){"failed"}, 1);
}

/* The autoscaler's bounds from the configuration and the plan. */
static int
conf_of(const struct ocra_config *cfg, const struct ocra_daemon_prepared *p,
        struct ocra_sched_autoscale_conf *c, struct ocra_err *err)
{
    const struct ocra_plan_resources *r = ocra_plan_resources_get(p->plan);
    int max =
        r->replicas_max > OCRA_SCHED_MAX_REPLICAS ? OCRA_SCHED_MAX_REPLICAS : (int)r->replicas_max;

    if (p->spec->workload.port && (int)p->spec->workload.port + max - 1 > 65535)
        max = 65535 - (int)p->spec->workload.port + 1;
    memset(c, 0, sizeof(*c));
    c->max = max;
    c->min = r->replicas_min < 1 ? 1 : (int)r->replicas_min; /* replica 0 always runs */
    if (c->min > c->max)
        c->min = c->max;
    c->target = (double)cfg->autoscale.target;
    c->tolerance = (double)cfg->autoscale.tolerance_percent / 100.0;
    c->up_cooldown_ms = cfg->autoscale.up_cooldown_s * 1000;
    c->down_cooldown_ms = cfg->autoscale.down_cooldown_s * 1000;
    return ocra_sched_autoscale_init(&(struct ocra_sched_autoscaler){0}, c, err);
}

/* ---- the run and complete stages ----------------------------------------------------------- */

void
ocra_daemon_scale_run(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job,
                      const struct ocra_daemon_prepared *p, const struct ocra_run_spec *rs)
{
    const struct ocra_plan_resources *r = ocra_plan_resources_get(p->plan);
    struct ocra_sched_autoscale_conf c;
    struct ocra_err err = {0};
    struct held h;
    int reached = 0;

    if (r->replicas_max <= 1)
        return;
    if (!(ocra_run_kind_supports(ctx->cfg->run.runner) & OCRA_RUN_REPLICAS)) {
        ocra_log_info("autoscale event=%s: the %s runner does not scale replicas: replica 0 "
                      "only",
                      job->event->id, ocra_run_kind_name(ctx->cfg->run.runner));
        return;
    }
    pthread_mutex_lock(&op_mu);
    if (conf_of(ctx->cfg, p, &c, &err) < 0 || held_count(ctx->st, job->event->id, &h, &err) < 0 ||
        scale_to(ctx, p, rs, h.n, h.n < c.min ? c.min : h.n, &reached, &err) < 0) {
        ocra_log_warn("autoscale event=%s: replicas to min %u: %s (the loop tries again)",
                      job->event->id, r->replicas_min, err.msg);
        scale_metrics(job->event->id, h.n, reached, true);
    } else {
        if (reached != h.n)
            ocra_log_info("autoscale event=%s load=0 replicas %d->%d (min)", job->event->id, h.n,
                          reached);
        scale_metrics(job->event->id, h.n, reached, false);
    }
    pthread_mutex_unlock(&op_mu);
}

/*
 * After the replicas the held allocations name: every other container of the event but
 * replica 0's, found by its labels (a replica left behind by a crash between its container and
 * its allocation, or a removal the engine lost), goes too, its runs row ended.
 */
static int
replicas_reap(struct ocra_daemon_ctx *ctx, const char *event_id, struct ocra_err *err)
{
    struct ocra_runner *runner = ocra_daemon_runner_new(ctx->cfg, err);
    struct ocra_run_container *gone = NULL;
    size_t n = 0;
    int ret = -1;

    if (!runner || runner->reap(runner, event_id, NULL, &gone, &n, err) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        ocra_log_warn("autoscale event=%s: removed stray replica container %s (%s): no held "
                      "allocation named it",
                      event_id, gone[i].name, gone[i].state);
        ocra_metrics_add(ocra_metrics_std()->strays_removed, (const char *const[]){runner->name},
                         1);
        if (gone[i].replica > 0)
            ocra_daemon_agent_run_end(ctx->d, event_id, gone[i].replica);
        if (replica_journal_end(ctx->st, gone[i].id, gone[i].replica, -1, NULL, err) < 0)
            goto out;
    }
    ret = 0;
out:
    free(gone);
    ocra_runner_free(runner);
    return ret;
}

int
ocra_daemon_scale_end(struct ocra_daemon_ctx *ctx, const char *event_id, struct ocra_err *err)
{
    struct ocra_daemon_scale *s = ctx->d ? ctx->d->scale : NULL;
    struct ocra_runner *runner = NULL;
    struct held h;
    int ret = -1;

    if (!(ocra_run_kind_supports(ctx->cfg->run.runner) & OCRA_RUN_REPLICAS))
        return 0;
    pthread_mutex_lock(&op_mu);
    if (s && !ended(s, event_id)) {
        pthread_mutex_lock(&s->mu);
        s->ended = ocra_xrealloc(s->ended, (s->n_ended + 1) * sizeof(*s->ended));
        s->ended[s->n_ended++] = ocra_xstrdup(event_id);
        pthread_mutex_unlock(&s->mu);
    }
    if (held_count(ctx->st, event_id, &h, err) < 0)
        goto out;
    if (h.max_replica > 0 && !(runner = ocra_daemon_runner_new(ctx->cfg, err)))
        goto out;
    for (int r = h.max_replica; r > 0; r--)
        if (replica_remove(ctx, runner, event_id, r, NULL, err) < 0)
            goto out;
    if (h.max_replica > 0)
        ocra_log_info("autoscale event=%s ended: replicas 1..%d removed", event_id, h.max_replica);
    /* an ended event's series goes: the family holds the live events only */
    ocra_metrics_remove(ocra_metrics_std()->replicas, (const char *const[]){event_id});
    if (replicas_reap(ctx, event_id, err) < 0)
        goto out;
    ocra_daemon_lb_end(ctx, event_id);
    ret = 0;
out:
    ocra_runner_free(runner);
    pthread_mutex_unlock(&op_mu);
    return ret;
}

/* ---- the loop ------------------------------------------------------------------------------ */

struct running {
    char **ids;
    size_t n;
};

static int
collect_running(const struct ocra_store_event *ev, const struct ocra_store_pipeline *p, void *arg)
{
    struct running *r = arg;

    (void)ev;
    if (p && !strcmp(p->status, "running") && p->stage && !strcmp(p->stage, "complete")) {
        r->ids = ocra_xrealloc(r->ids, (r->n + 1) * sizeof(*r->ids));
        r->ids[r->n++] = ocra_xstrdup(p->event_id);
    }
    return 0;
}

static struct scaled *
scaled_get(struct ocra_daemon_scale *s, const char *event_id, bool *is_new)
{
    *is_new = false;
    for (size_t i = 0; i < s->n_ev; i++)
        if (!strcmp(s->ev[i].event_id, event_id))
            return &s->ev[i];
    s->ev = ocra_xrealloc(s->ev, (s->n_ev + 1) * sizeof(*s->ev));
    memset(&s->ev[s->n_ev], 0, sizeof(s->ev[s->n_ev]));
    s->ev[s->n_ev].event_id = ocra_xstrdup(event_id);
    *is_new = true;
    return &s->ev[s->n_ev++];
}

/* Everything one step of one event needs from the journal. */
struct event_ctx {
    struct ocra_store_event *ev;
    json_t *inputs;
    struct ocra_daemon_prepared p;
    struct ocra_run_spec rs;
    uint8_t devs[OCRA_RUN_MAX_GPUS];
};

static void
event_ctx_fini(struct event_ctx *e)
{
    ocra_daemon_prepared_fini(&e->p);
    json_decref(e->inputs);
    ocra_store_event_free(e->ev);
}

static int
event_ctx_load(struct ocra_daemon_ctx *ctx, const char *event_id, struct event_ctx *e,
               struct ocra_err *err)
{
    struct ocra_daemon_job job;
    char *text = NULL;

    if (ocra_store_event_get(ctx->st, event_id, &e->ev, err) < 0)
        return -1;
    if (!e->ev)
        return ocra_err_set(err, ENOENT, "not in the journal");
    if (ocra_store_stage_outputs(ctx->st, event_id, &text, err) < 0)
        return -1;
    e->inputs = ocra_json_parse(text, strlen(text), 0, err);
    free(text);
    if (!e->inputs)
        return -1;
    job = (struct ocra_daemon_job){e->ev, NULL};
    if (ocra_daemon_prepare(ctx, e->ev, &e->p, err) < 0)
        return -1;
    return ocra_daemon_run_spec(ctx, &job, e->inputs, &e->p, e->devs, &e->rs, err);
}

/* First sight of a running event (at start, or after a restart): its bounds, and the replicas
 * its held allocations say exist, their containers started or adopted. */
static int
scaled_init(struct ocra_daemon_scale *s, struct scaled *sc, struct event_ctx *e,
            struct ocra_err *err)
{
    struct ocra_daemon_ctx *ctx = &s->ctx;
    struct ocra_sched_autoscale_conf c;
    struct ocra_runner *runner = NULL;
    struct held h;
    int ret = -1;

    if (ocra_plan_resources_get(e->p.plan)->replicas_max <= 1) {
        sc->static_ = true;
        return 0;
    }
    if (conf_of(ctx->cfg, &e->p, &c, err) < 0 || ocra_sched_autoscale_init(&sc->as, &c, err) < 0 ||
        held_count(ctx->st, sc->event_id, &h, err) < 0)
        return -1;
    if (!(runner = ocra_daemon_runner_new(ctx->cfg, err)))
        return -1;
    for (int r = 1; r < h.n; r++)
        if (replica_start(ctx, runner, &e->rs, r, err) < 0)
            goto out;
    sc->as.replicas = h.n; /* as found: the cooldowns count from now */
    sc->as.last_change_ms = ocra_time_wall_ms();
    ocra_metrics_set(ocra_metrics_std()->replicas, (const char *const[]){sc->event_id}, h.n);
    ocra_log_info("autoscale event=%s replicas=%d min=%d max=%d", sc->event_id, h.n, c.min, c.max);
    ret = 0;
out:
    ocra_runner_free(runner);
    return ret;
}

/*
 * Replicas 1..have-1 whose workload ended on its own (or whose container is gone) are
 * replaced: the ended container removed (its runs row ended with its exit status), a new one
 * started on the same allocation. Replica 0 is the complete stage's: its end is the event's.
 */
static void
replicas_heal(struct ocra_daemon_ctx *ctx, const struct ocra_run_spec *rs0, int have)
{
    struct ocra_runner *runner = NULL;
    struct ocra_err err = {0};
    char why[96];

    if (have <= 1 || !(runner = ocra_daemon_runner_new(ctx->cfg, &err)))
        goto out;
    for (int r = 1; r < have; r++) {
        struct ocra_run_state cs;
        char name[OCRA_RUN_NAME_MAX];

        ocra_run_replica_name(rs0->event_id, r, name);
        if (runner->inspect(runner, name, &cs, &err) < 0) {
            ocra_log_warn("autoscale event=%s replica=%d: %s", rs0->event_id, r, err.msg);
            continue;
        }
        if (cs.found && !cs.ended)
            continue;
        snprintf(why, sizeof(why), "the workload exited on its own with status %d: replaced",
                 cs.exit_code);
        ocra_log_warn("autoscale event=%s replica=%d: %s", rs0->event_id, r, why);
        if (replica_remove(ctx, runner, rs0->event_id, r, why, &err) < 0 ||
            replica_start(ctx, runner, rs0, r, &err) < 0) {
            ocra_log_warn("autoscale event=%s replica=%d: replace: %s", rs0->event_id, r, err.msg);
            continue;
        }
        ocra_metrics_add(ocra_metrics_std()->scale_actions, (const char *const[]){"replaced"}, 1);
    }
out:
    if (err.code && !runner)
        ocra_log_warn("autoscale event=%s: %s", rs0->event_id, err.msg);
    ocra_runner_free(runner);
}

static void
scale_event(struct ocra_daemon_scale *s, struct scaled *sc, bool is_new)
{
    struct ocra_daemon_ctx *ctx = &s->ctx;
    const struct ocra_config *cfg = ctx->cfg;
    struct ocra_sched_autoscale_conf c;
    struct event_ctx e = {0};
    struct ocra_err err = {0};
    int64_t load, now = ocra_time_wall_ms();
    int want, have, reached, n;

    if (sc->static_) {
        pthread_mutex_lock(&op_mu);
        if (sc->port && !ended(s, sc->event_id))
            ocra_daemon_lb_sync(ctx, sc->event_id, sc->port, 1); /* replica 0 only */
        pthread_mutex_unlock(&op_mu);
        return;
    }
    if (!(ocra_run_kind_supports(cfg->run.runner) & OCRA_RUN_REPLICAS)) {
        if (!s->slurm_said)
            ocra_log_info("autoscale: the %s runner does not scale replicas (run.runner)",
                          ocra_run_kind_name(cfg->run.runner));
        s->slurm_said = true;
        sc->static_ = true;
        return;
    }
    pthread_mutex_lock(&op_mu);
    if (ended(s, sc->event_id))
        goto out;
    if (event_ctx_load(ctx, sc->event_id, &e, &err) == 0)
        sc->port = e.p.spec->workload.port;
    if (err.code || (is_new && scaled_init(s, sc, &e, &err) < 0)) {
        ocra_log_warn("autoscale event=%s: %s", sc->event_id, err.msg);
        if (is_new) /* the next tick starts over */
            sc->seen = false;
        goto out;
    }
    if (sc->static_) {
        if (sc->port)
            ocra_daemon_lb_sync(ctx, sc->event_id, sc->port, 1);
        goto out;
    }
    if (!is_new && conf_of(cfg, &e.p, &c, &err) == 0)
        sc->as.conf = c; /* after a reload: the new target, tolerance and cooldowns */
    if (!is_new)         /* scaled_init started or adopted them just now */
        replicas_heal(ctx, &e.rs, sc->as.replicas);
    load = load_sum(s, sc->event_id, mono_ms(), FRESH_BEATS * 1000 * cfg->agent.heartbeat_s, &n);
    if (cfg->autoscale.lb_load && sc->port) { /* HAProxy's count, where it is the larger */
        int64_t lb = ocra_daemon_lb_load(s->d, sc->event_id);

        if (lb > load)
            load = lb;
    }
    have = sc->as.replicas;
    want = ocra_sched_autoscale_step(&sc->as, now, (double)load);
    ocra_log_debug("autoscale event=%s load=%" PRId64 " reporting=%d replicas=%d want=%d",
                   sc->event_id, load, n, have, want);
    if (want == have)
        goto sync;
    if (scale_to(ctx, &e.p, &e.rs, have, want, &reached, &err) < 0)
        ocra_log_warn("autoscale event=%s load=%" PRId64 " replicas %d->%d: stopped at %d: %s",
                      sc->event_id, load, have, want, reached, err.msg);
    if (reached != have)
        ocra_log_info("autoscale event=%s load=%" PRId64 " replicas %d->%d", sc->event_id, load,
                      have, reached);
    ocra_sched_autoscale_set(&sc->as, now, reached);
    scale_metrics(sc->event_id, have, reached, reached != want);
sync:
    if (sc->port) /* the servers of the replicas in place, the new ones once they accept */
        ocra_daemon_lb_sync(ctx, sc->event_id, sc->port, sc->as.replicas);
out:
    pthread_mutex_unlock(&op_mu);
    event_ctx_fini(&e);
}

/* The stray containers: at the loop's start, then every run.reconcile_interval_s (0: never
 * again); under op_mu, so that no replica is being started or removed meanwhile. */
static void
reconcile_due(struct ocra_daemon_scale *s)
{
    int64_t now = mono_ms(), every = s->ctx.cfg->run.reconcile_interval_s * 1000;

    if (s->reconciled && (every == 0 || now < s->next_reconcile_ms))
        return;
    pthread_mutex_lock(&op_mu);
    ocra_daemon_reconcile(&s->ctx);
    pthread_mutex_unlock(&op_mu);
    s->reconciled = true;
    s->next_reconcile_ms = mono_ms() + every;
}

static void
tick(struct ocra_daemon_scale *s)
{
    const struct ocra_store_event_filter f = {.status = "running"};
    struct running run = {0};
    struct ocra_err err = {0};
    size_t i;

    s->ctx.cfg = ocra_daemon_cfg(s->d);
    ocra_daemon_ctx_refresh(&s->ctx);
    reconcile_due(s);
    if (ocra_store_pipeline_list(s->ctx.st, &f, collect_running, &run, &err) < 0) {
        ocra_log_warn("autoscale: journal: %s", err.msg);
        goto out;
    }
    for (i = 0; i < s->n_ev; i++)
        s->ev[i].seen = false;
    for (i = 0; i < run.n && !is_stopping(s); i++) {
        bool is_new;
        struct scaled *sc = scaled_get(s, run.ids[i], &is_new);

        sc->seen = true;
        scale_event(s, sc, is_new);
    }
    /* events no longer running: forget them, and what the complete stage ended */
    for (i = s->n_ev; i-- > 0;) {
        if (s->ev[i].seen)
            continue;
        free(s->ev[i].event_id);
        s->ev[i] = s->ev[--s->n_ev];
    }
    pthread_mutex_lock(&s->mu);
    for (i = s->n_ended; i-- > 0;) {
        bool still = false;

        for (size_t j = 0; j < run.n && !still; j++)
            still = !strcmp(run.ids[j], s->ended[i]);
        if (!still) {
            free(s->ended[i]);
            s->ended[i] = s->ended[--s->n_ended];
        }
    }
    pthread_mutex_unlock(&s->mu);
out:
    for (i = 0; i < run.n; i++)
        free(run.ids[i]);
    free(run.ids);
}

static void *
loop_main(void *arg)
{
    struct ocra_daemon_scale *s = arg;

    ocra_log_debug("autoscale loop started");
    while (!is_stopping(s)) {
        struct timespec ts;

        tick(s);
        ocra_daemon_deadline(ocra_daemon_cfg(s->d)->autoscale.interval_s * 1000, &ts);
        pthread_mutex_lock(&s->mu);
        while (!s->stopping)
            if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) == ETIMEDOUT)
                break;
        pthread_mutex_unlock(&s->mu);
    }
    ocra_log_debug("autoscale loop stopped");
    return NULL;
}

int
ocra_daemon_scale_start(struct ocra_daemon *d, struct ocra_err *err)
{
    const struct ocra_config *cfg = ocra_daemon_cfg(d);
    struct ocra_daemon_scale *s = ocra_xcalloc(1, sizeof(*s));
    int rc;

    s->d = d;
    s->loads = ocra_xcalloc(LOADS_MAX, sizeof(*s->loads));
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->ctx.d = d;
    s->ctx.id = -1;
    (void)snprintf(s->ctx.name, sizeof(s->ctx.name), "autoscale@%s", d->host);
    d->scale = s;
    if (ocra_store_open(cfg->journal_path, &s->ctx.st, err) < 0)
        return ocra_err_wrap(err, "autoscale");
    rc = pthread_create(&s->thread, NULL, loop_main, s);
    if (rc != 0)
        return ocra_err_set(err, rc, "autoscale: pthread_create: %s", strerror(rc));
    s->started = true;
    return 0;
}

void
ocra_daemon_scale_stop(struct ocra_daemon *d)
{
    struct ocra_daemon_scale *s = d->scale;

    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (s->started)
        pthread_join(s->thread, NULL);
    d->scale = NULL;
    ocra_daemon_ctx_clients_fini(&s->ctx);
    ocra_store_close(s->ctx.st);
    for (size_t i = 0; i < s->n_loads; i++)
        free(s->loads[i].event_id);
    free(s->loads);
    for (size_t i = 0; i < s->n_ended; i++)
        free(s->ended[i]);
    free(s->ended);
    for (size_t i = 0; i < s->n_ev; i++)
        free(s->ev[i].event_id);
    free(s->ev);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
