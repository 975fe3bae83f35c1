/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon_supervise.c: the workload supervisor. A running workload costs no worker: the
 * complete stage that finds it running parks its event in state `supervised` and hands the
 * workload to this one thread, which follows every such workload through the runner's own
 * signals (runner->watch: the Docker Engine's /events stream filtered by ocra's label, or one
 * poll of Slurm's jobs for all of them) and wakes the event when its workload ends, so the
 * complete stage runs again, finds the end and moves the event on. It also enforces the time
 * limits (SIGTERM, the grace period, SIGKILL: runner->stop in a thread of its own, so one slow
 * stop never delays the others), follows the chain (a newer version of the model replaces the
 * running one: training at once, inference once the newer one runs, or at once when the newer
 * one waits in the queue for its room; a removal stops it), and
 * wakes an event the watcher orphaned (the claim moves it
 * to the report stage, which stops the workload). At start, and whenever the runner's stream
 * or poll failed (an end may have been missed), every supervised event is woken once: the
 * complete stage checks each again and parks those that still run.
 */
#include "daemon/daemon_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics.h"
#include "run/run.h"

#define ROUND_MS 1000        /* one window of the event stream; the longest wait between rounds */
#define CHECK_MS 250         /* a new workload's first look (runner->wait) */
#define ORPHAN_EVERY_MS 5000 /* how often the supervised events' orphaned marks are read */
#define RETRY_MAX_MS 30000   /* a failing runner is asked again after at most this */

struct entry {
    char *event_id;
    struct ocra_run_job rj;
    int64_t deadline_ms; /* wall ms of the time limit, 0: none */
    bool fresh;          /* added since the last round: looked at once (an end before the add) */
    bool ended;          /* the runner saw it end: wake the event (again, until it is woken) */
    bool woken;          /* woken: the complete stage takes it from here */
    bool timed_out;      /* stopped for its time limit */
    bool training;       /* a training workload (else inference) */
    char *replaced_by;   /* stopped for this newer event of its model (or its removal) */
    enum ocra_daemon_stop_why stop_why; /* with replaced_by: newer, removal or room */
    bool kept;   /* a newer version exists and the operator keeps training runs */
    char *noted; /* why it keeps serving beside a newer version, as last logged */
};

struct stopper {
    struct ocra_daemon_supervisor *s;
    pthread_t thread;
    char *event_id;
    struct ocra_run_job rj;
    const struct ocra_config *cfg;
    const char *why; /* "at its time limit", "for a newer version" */
    bool done;
};

struct ocra_daemon_supervisor {
    struct ocra_daemon *d;
    pthread_t thread;
    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t cv;
    bool stop, reconcile;
    struct entry *e;
    size_t n;
    struct stopper **stoppers;
    size_t n_stoppers;
    char **unknown; /* ends of events without an entry (a restart's): woken once */
    size_t n_unknown;
    /* the supervisor thread's own */
    struct ocra_store *st;
    struct ocra_runner *runner;
    const struct ocra_config *runner_cfg;
    int64_t last_orphan_ms;
};

static struct entry *
find(struct ocra_daemon_supervisor *s, const char *event_id)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->e[i].event_id, event_id))
            return &s->e[i];
    return NULL;
}

static void
drop(struct ocra_daemon_supervisor *s, struct entry *e)
{
    free(e->event_id);
    free(e->replaced_by);
    free(e->noted);
    *e = s->e[--s->n];
    ocra_metrics_set(ocra_metrics_std()->supervised, NULL, (double)s->n);
}

void
ocra_daemon_supervise_add(struct ocra_daemon *d, const char *event_id,
                          const struct ocra_run_job *rj, int64_t deadline_ms, bool training)
{
    struct ocra_daemon_supervisor *s = d ? d->sup : NULL;
    struct entry *e;

    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    if (!(e = find(s, event_id))) {
        s->e = ocra_xrealloc(s->e, (s->n + 1) * sizeof(*s->e));
        e = &s->e[s->n++];
        *e = (struct entry){.event_id = ocra_xstrdup(event_id)};
        ocra_metrics_set(ocra_metrics_std()->supervised, NULL, (double)s->n);
    }
    e->rj = *rj;
    e->deadline_ms = deadline_ms;
    e->training = training;
    e->fresh = true;
    e->ended = e->woken = false;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

enum ocra_daemon_stop_why
ocra_daemon_supervise_end(struct ocra_daemon *d, const char *event_id, char **newer)
{
    struct ocra_daemon_supervisor *s = d ? d->sup : NULL;
    enum ocra_daemon_stop_why why = OCRA_DAEMON_STOP_NONE;
    struct entry *e;

    if (newer)
        *newer = NULL;
    if (!s)
        return why;
    pthread_mutex_lock(&s->mu);
    if ((e = find(s, event_id))) {
        if (e->timed_out)
            why = OCRA_DAEMON_STOP_TIMEOUT;
        else if (e->replaced_by) {
            why = e->stop_why;
            if (newer)
                *newer = ocra_xstrdup(e->replaced_by);
        }
        drop(s, e);
    }
    pthread_mutex_unlock(&s->mu);
    return why;
}

bool
ocra_daemon_supervising(struct ocra_daemon *d)
{
    return d && d->sup;
}

/* ---- the supervisor's thread --------------------------------------------------------------- */

/* The runner of the configuration now (made again after a reload changed it). */
static struct ocra_runner *
runner_get(struct ocra_daemon_supervisor *s)
{
    const struct ocra_config *cfg = ocra_daemon_cfg(s->d);
    struct ocra_err err = {0};

    if (s->runner && s->runner_cfg == cfg)
        return s->runner;
    ocra_runner_free(s->runner);
    s->runner = ocra_daemon_runner_new(cfg, &err);
    s->runner_cfg = s->runner ? cfg : NULL;
    if (!s->runner)
        ocra_log_warn("supervisor: runner: %s", err.msg);
    return s->runner;
}

/* Wakes event_id from state supervised (true; also when it is ready at the complete stage
 * already); *gone: its row has left the complete stage, or is neither supervised, ready nor
 * claimed there (nothing to wake any more). False and not gone: a worker holds it (the stage
 * that parks it has not ended yet): try again next round. */
static bool
wake(struct ocra_daemon_supervisor *s, const char *event_id, bool *gone)
{
    struct ocra_store_pipeline *p = NULL;
    struct ocra_err err = {0};
    bool woken = false;

    *gone = false;
    if (ocra_store_stage_wake_event(s->st, event_id, "supervised", &woken, &err) < 0) {
        ocra_log_warn("supervisor: wake event=%s: %s", event_id, err.msg);
        return false;
    }
    if (woken) {
        ocra_log_debug("supervisor: woke event=%s", event_id);
        return true;
    }
    if (ocra_store_pipeline_get(s->st, event_id, &p, &err) == 0) {
        *gone = !p || !p->stage || strcmp(p->stage, "complete") != 0 ||
                (strcmp(p->state, "claimed") != 0 && strcmp(p->state, "ready") != 0);
        woken = p && !*gone && !strcmp(p->state, "ready"); /* woken by another (reconcile) */
    }
    ocra_store_pipeline_free(p);
    return woken;
}

/* Every supervised event once: the complete stage looks at each again. */
static void
reconcile(struct ocra_daemon_supervisor *s)
{
    struct ocra_err err = {0};
    char **ids = NULL;
    size_t n = 0, woken = 0;
    bool gone;

    if (ocra_store_stage_in_state(s->st, "supervised", &ids, &n, &err) < 0) {
        ocra_log_warn("supervisor: the supervised events: %s", err.msg);
        pthread_mutex_lock(&s->mu);
        s->reconcile = true;
        pthread_mutex_unlock(&s->mu);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        woken += wake(s, ids[i], &gone);
        free(ids[i]);
    }
    free(ids);
    if (woken)
        ocra_log_info("supervisor: woke supervised events=%zu to check them again", woken);
}

/* runner->watch's report: the entry of the event (docker) or of the job (slurm). */
static void
on_ended(void *arg, const char *job_id, const char *event_id, int replica)
{
    struct ocra_daemon_supervisor *s = arg;
    struct entry *e = NULL;

    if (replica > 0) /* an autoscaled replica: the loop's business, not the event's end */
        return;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n && !e; i++)
        if (!strcmp(s->e[i].rj.id, job_id))
            e = &s->e[i];
    if (e) {
        e->ended = true;
    } else if (event_id) {
        s->unknown = ocra_xrealloc(s->unknown, (s->n_unknown + 1) * sizeof(*s->unknown));
        s->unknown[s->n_unknown++] = ocra_xstrdup(event_id);
    }
    pthread_mutex_unlock(&s->mu);
}

static void *
stopper_main(void *arg)
{
    struct stopper *t = arg;
    struct ocra_daemon_supervisor *s = t->s;
    struct ocra_err err = {0};
    struct ocra_runner *r = ocra_daemon_runner_new(t->cfg, &err);
    struct entry *e;

    ocra_daemon_lb_drain(s->d, t->cfg, t->event_id, 0); /* its requests end before its SIGTERM */
    if (!r || r->stop(r, &t->rj, (int)t->cfg->run.stop_grace_s, &err) < 0)
        ocra_log_warn("supervisor: event=%s stop %s (%s) %s: %s", t->event_id, t->rj.name, t->rj.id,
                      t->why, err.msg);
    else
        ocra_log_info("supervisor: event=%s %s (%s) stopped %s", t->event_id, t->rj.name, t->rj.id,
                      t->why);
    ocra_runner_free(r);
    pthread_mutex_lock(&s->mu);
    if ((e = find(s, t->event_id)) && !strcmp(e->rj.id, t->rj.id))
        e->ended = true; /* the stream says so too; this covers a missed event */
    t->done = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Under s->mu: starts stopping e's workload (SIGTERM, grace, SIGKILL) in a thread; why says
 * what for, in words for the log. */
static void
stop_start(struct ocra_daemon_supervisor *s, struct entry *e, const char *why)
{
    struct stopper *t = ocra_xcalloc(1, sizeof(*t));
    int rc;

    *t = (struct stopper){.s = s,
                          .event_id = ocra_xstrdup(e->event_id),
                          .rj = e->rj,
                          .cfg = ocra_daemon_cfg(s->d),
                          .why = why};
    ocra_log_warn("supervisor: event=%s %s (%s): stopping it %s (SIGTERM, SIGKILL after %" PRId64
                  " s)",
                  e->event_id, e->rj.name, e->rj.id, why, t->cfg->run.stop_grace_s);
    if ((rc = pthread_create(&t->thread, NULL, stopper_main, t)) != 0) {
        ocra_log_error("supervisor: event=%s: pthread_create: %s", e->event_id, strerror(rc));
        free(t->event_id);
        free(t);
        return;
    }
    s->stoppers = ocra_xrealloc(s->stoppers, (s->n_stoppers + 1) * sizeof(*s->stoppers));
    s->stoppers[s->n_stoppers++] = t;
}

/* Under s->mu: e reached its time limit. */
static void
stop_for_time(struct ocra_daemon_supervisor *s, struct entry *e)
{
    const struct ocra_config *cfg = ocra_daemon_cfg(s->d);

    e->timed_out = true;
    ocra_metrics_add(ocra_metrics_std()->timeouts,
                     (const char *const[]){ocra_run_kind_name(cfg->run.runner)}, 1);
    stop_start(s, e, "at its time limit");
}

/* Joins the stoppers that are done (all of them with wait_all), outside s->mu. */
static void
stoppers_reap(struct ocra_daemon_supervisor *s, bool wait_all)
{
    for (;;) {
        struct stopper *t = NULL;

        pthread_mutex_lock(&s->mu);
        for (size_t i = 0; i < s->n_stoppers && !t; i++) {
            if (s->stoppers[i]->done || wait_all) {
                t = s->stoppers[i];
                s->stoppers[i] = s->stoppers[--s->n_stoppers];
            }
        }
        pthread_mutex_unlock(&s->mu);
        if (!t)
            return;
        pthread_join(t->thread, NULL);
        free(t->event_id);
        free(t);
    }
}

/* A first look at the workloads added since the last round: one that ended before the
 * supervisor followed it would otherwise never be seen to end. */
static void
look_at_fresh(struct ocra_daemon_supervisor *s, struct ocra_runner *r)
{
    for (;;) {
        struct ocra_run_job rj = {0};
        struct ocra_err err = {0};
        struct entry *e = NULL;
        bool found = false;
        int code = 0;

        pthread_mutex_lock(&s->mu);
        for (size_t i = 0; i < s->n && !found; i++) {
            if (s->e[i].fresh) {
                s->e[i].fresh = false;
                rj = s->e[i].rj;
                found = true;
            }
        }
        pthread_mutex_unlock(&s->mu);
        if (!found)
            return;
        /* EHOSTDOWN: its node's engine is silent: followed until it answers (reconcile) */
        if (r->wait(r, &rj, CHECK_MS, &code, &err) == 0 ||
            (err.code != ETIMEDOUT && err.code != EHOSTDOWN)) {
            pthread_mutex_lock(&s->mu);
            for (size_t i = 0; i < s->n && !e; i++)
                if (!strcmp(s->e[i].rj.id, rj.id))
                    e = &s->e[i];
            if (e)
                e->ended = true; /* ended, or gone: the complete stage finds out which */
            pthread_mutex_unlock(&s->mu);
        }
    }
}

/* The jobs followed now (for a polling runner). */
static struct ocra_run_job *
jobs_now(struct ocra_daemon_supervisor *s, size_t *n)
{
    struct ocra_run_job *jobs;

    pthread_mutex_lock(&s->mu);
    jobs = ocra_xcalloc(s->n ? s->n : 1, sizeof(*jobs));
    *n = 0;
    for (size_t i = 0; i < s->n; i++)
        if (!s->e[i].woken)
            jobs[(*n)++] = s->e[i].rj;
    pthread_mutex_unlock(&s->mu);
    return jobs;
}

/* Where the newer event of a model stands, for an inference workload it would replace. */
enum newer_state {
    NEWER_COMING, /* still on its way (validating, building, placing) */
    NEWER_RUNS,   /* its workload started and is followed (and with a load balancer its
                     replica 0 is UP there: traffic can shift), or it completed */
    NEWER_QUEUED, /* waiting in the scheduler queue for room */
    NEWER_FAILED, /* it ended without ever serving (failed, timeout, dead-lettered) */
};

/* The newer event's state; for NEWER_FAILED *why its outcome and reason (caller frees). */
static enum newer_state
newer_state(struct ocra_daemon_supervisor *s, const char *newer, char **why)
{
    struct ocra_store_pipeline *p = NULL;
    struct ocra_err err = {0};
    enum newer_state ns = NEWER_COMING;

    *why = NULL;
    if (ocra_store_pipeline_get(s->st, newer, &p, &err) < 0 || !p)
        goto out;
    if ((!strcmp(p->status, "running") && !strcmp(p->state, "supervised") &&
         ocra_daemon_lb_ready(s->d, s->st, newer)) ||
        (p->outcome && !strcmp(p->outcome, "completed")))
        ns = NEWER_RUNS;
    else if (!strcmp(p->state, "queued"))
        ns = NEWER_QUEUED;
    else if (!strcmp(p->state, "dead") ||
             (p->outcome && (!strcmp(p->outcome, "failed") || !strcmp(p->outcome, "timeout"))))
        ns = NEWER_FAILED;
    if (ns == NEWER_FAILED)
        *why = ocra_xasprintf("%s: %s", p->outcome ? p->outcome : p->state,
                              p->last_error ? p->last_error : "no reason recorded");
out:
    ocra_store_pipeline_free(p);
    return ns;
}

/* Whether the newer event, queued, would start in the room event_id's workload holds. */
static bool
successor_fits(struct ocra_daemon_supervisor *s, const char *newer, const char *event_id)
{
    struct ocra_daemon_ctx ctx = {.d = s->d, .st = s->st, .cfg = ocra_daemon_cfg(s->d), .id = -1};
    struct ocra_err err = {0};
    bool fits = false;

    if (ocra_daemon_queue_successor_fits(&ctx, newer, event_id, &fits, &err) < 0)
        ocra_log_warn("supervisor: event=%s: whether %s fits in its room: %s", event_id, newer,
                      err.msg);
    return fits;
}

/* Under s->mu: logs why e keeps serving beside its newer version, once per reason. */
static void
note(struct entry *e, char *why)
{
    if (e->noted && !strcmp(e->noted, why)) {
        free(why);
        return;
    }
    ocra_log_warn("supervisor: event=%s %s (%s) keeps serving: %s", e->event_id, e->rj.name,
                  e->rj.id, why);
    free(e->noted);
    e->noted = why;
}

/* A newer version of event_id's model (or its removal) is current on-chain: the removal stops
 * the workload at once; a newer version replaces a training run at once (unless
 * run.newer_version.training is keep) and an inference run once the newer one runs, or at
 * once when the newer one waits in the queue for the room this one holds (no room for both:
 * it takes this one's room, a gap in service). An inference run whose newer version failed
 * without ever serving keeps serving (the rollback), and the log says why. */
static void
newer_check(struct ocra_daemon_supervisor *s, const char *event_id)
{
    const struct ocra_config *cfg = ocra_daemon_cfg(s->d);
    struct ocra_store_event *nev = NULL;
    struct ocra_err err = {0};
    enum ocra_daemon_stop_why stop = OCRA_DAEMON_STOP_NEWER;
    enum newer_state ns = NEWER_COMING;
    char *newer = NULL, *failed = NULL;
    bool current = true, removal, training = false, fits = false, known;
    const char *why = NULL;
    struct entry *e;

    if (ocra_store_event_current(s->st, event_id, &current, &newer, &err) < 0 || current ||
        !newer || ocra_store_event_get(s->st, newer, &nev, &err) < 0 || !nev)
        goto out;
    removal = nev->spec && !strcmp(nev->spec, "null");
    pthread_mutex_lock(&s->mu);
    known = (e = find(s, event_id)) != NULL;
    training = known && e->training;
    pthread_mutex_unlock(&s->mu);
    if (!known)
        goto out;
    if (!removal && !training) {
        ns = newer_state(s, newer, &failed);
        fits = ns == NEWER_QUEUED && successor_fits(s, newer, event_id);
    }
    pthread_mutex_lock(&s->mu);
    if ((e = find(s, event_id)) && !e->replaced_by && !e->timed_out && !e->ended) {
        if (removal) {
            why = "for the model's removal on-chain";
            stop = OCRA_DAEMON_STOP_REMOVAL;
        } else if (e->training && cfg->run.keep_training && !e->kept) {
            ocra_log_info("supervisor: event=%s: a newer version of its model is current (event "
                          "%s); run.newer_version.training is keep: it runs on",
                          event_id, newer);
        } else if ((e->training && !cfg->run.keep_training) || (!e->training && ns == NEWER_RUNS)) {
            why = "for a newer version of its model";
        } else if (!e->training && fits) {
            why = "for its newer version, which waits in the queue for the room this one holds "
                  "(no room for both: a gap in service until the newer one starts)";
            stop = OCRA_DAEMON_STOP_ROOM;
        } else if (!e->training && ns == NEWER_QUEUED) {
            note(e, ocra_xasprintf("its newer version %s waits in the queue for room that "
                                   "stopping this one would not make",
                                   newer));
        } else if (!e->training && ns == NEWER_FAILED) {
            note(e, ocra_xasprintf("its newer version %s never became healthy (%s): the older "
                                   "version is not stopped",
                                   newer, failed));
        }
        e->kept = e->kept || (e->training && cfg->run.keep_training);
        if (why) {
            e->replaced_by = ocra_xstrdup(newer);
            e->stop_why = stop;
            stop_start(s, e, why);
        }
    }
    pthread_mutex_unlock(&s->mu);
out:
    ocra_store_event_free(nev);
    free(newer);
    free(failed);
}

/* Every few seconds, per followed event: an entry whose row left the complete stage (the
 * report stage took an orphaned event over, ocra retry, a dead letter) is dropped; a
 * supervised event the watcher orphaned is woken (the claim sends it to the report stage,
 * which stops its workload). */
static void
check_rows(struct ocra_daemon_supervisor *s, char **ids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct ocra_store_pipeline *p = NULL;
        struct ocra_err err = {0};
        bool orphaned = false, gone = false;
        struct entry *e;

        if (ocra_store_pipeline_get(s->st, ids[i], &p, &err) < 0) {
            free(ids[i]);
            continue;
        }
        gone = !p || !p->stage || strcmp(p->stage, "complete") != 0 || !strcmp(p->state, "dead") ||
               !strcmp(p->state, "done");
        if (!gone && !strcmp(p->state, "supervised") &&
            ocra_store_event_orphaned(s->st, ids[i], &orphaned, &err) == 0 && orphaned &&
            wake(s, ids[i], &gone))
            ocra_log_info("supervisor: event=%s is orphaned: woken for the report stage to stop "
                          "its workload",
                          ids[i]);
        else if (!gone && !orphaned && !strcmp(p->state, "supervised"))
            newer_check(s, ids[i]);
        ocra_store_pipeline_free(p);
        pthread_mutex_lock(&s->mu);
        if (gone && (e = find(s, ids[i])))
            drop(s, e);
        pthread_mutex_unlock(&s->mu);
        free(ids[i]);
    }
}

/* Wakes the events whose workloads ended and starts the stops of those past their limit. */
static void
act(struct ocra_daemon_supervisor *s)
{
    int64_t now = ocra_time_wall_ms();
    bool rows = now - s->last_orphan_ms >= ORPHAN_EVERY_MS;
    char **wake_ids = NULL, **check_ids = NULL;
    size_t n_wake = 0, n_check = 0;

    if (rows)
        s->last_orphan_ms = now;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n; i++) {
        struct entry *e = &s->e[i];

        if (e->deadline_ms && now >= e->deadline_ms && !e->timed_out && !e->ended)
            stop_for_time(s, e);
        if (e->ended && !e->woken) {
            wake_ids = ocra_xrealloc(wake_ids, (n_wake + 1) * sizeof(*wake_ids));
            wake_ids[n_wake++] = ocra_xstrdup(e->event_id);
        } else if (rows) {
            check_ids = ocra_xrealloc(check_ids, (n_check + 1) * sizeof(*check_ids));
            check_ids[n_check++] = ocra_xstrdup(e->event_id);
        }
    }
    for (size_t i = 0; i < s->n_unknown; i++) {
        wake_ids = ocra_xrealloc(wake_ids, (n_wake + 1) * sizeof(*wake_ids));
        wake_ids[n_wake++] = s->unknown[i];
    }
    free(s->unknown);
    s->unknown = NULL;
    s->n_unknown = 0;
    pthread_mutex_unlock(&s->mu);
    check_rows(s, check_ids, n_check);
    for (size_t i = 0; i < n_wake; i++) {
        bool gone = false, woken = wake(s, wake_ids[i], &gone);
        struct entry *e;

        pthread_mutex_lock(&s->mu);
        if ((e = find(s, wake_ids[i])) && e->ended) {
            if (woken)
                e->woken = true;
            else if (gone)
                drop(s, e);
        }
        pthread_mutex_unlock(&s->mu);
        free(wake_ids[i]);
    }
    free(wake_ids);
    free(check_ids);
}

/* Waits up to ms, or until something was added or the daemon stops. */
static void
rest(struct ocra_daemon_supervisor *s, int64_t ms)
{
    struct timespec ts;

    ocra_daemon_deadline(ms, &ts);
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        bool fresh = false;

        for (size_t i = 0; i < s->n && !fresh; i++)
            fresh = s->e[i].fresh;
        if (fresh || pthread_cond_timedwait(&s->cv, &s->mu, &ts) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&s->mu);
}

/* One round: the runner's news, then what follows from it. Returns how long to rest. */
static int64_t
round_once(struct ocra_daemon_supervisor *s, int *fails)
{
    struct ocra_runner *r = runner_get(s);
    const struct ocra_config *cfg = ocra_daemon_cfg(s->d);
    struct ocra_err err = {0};
    int64_t rest_ms = 0;
    int rc = 0;

    if (!r)
        return ROUND_MS;
    look_at_fresh(s, r);
    if (r->watch && (r->supports & OCRA_RUN_WATCH_EVENTS)) {
        rc = r->watch(r, NULL, 0, ROUND_MS, on_ended, s, &err);
    } else if (r->watch && (r->supports & OCRA_RUN_WATCH_POLL)) {
        size_t n = 0;
        struct ocra_run_job *jobs = jobs_now(s, &n);

        rc = r->watch(r, jobs, n, 0, on_ended, s, &err);
        free(jobs);
        rest_ms = cfg->run.slurm.poll_interval_ms;
    } else {
        rest_ms = ROUND_MS; /* a runner without watch: the fresh looks and the limits only */
    }
    if (rc < 0) {
        int64_t backoff = ROUND_MS << (*fails < 5 ? *fails : 5);

        if (*fails == 0)
            ocra_log_warn("supervisor: %s (following the workloads again when it answers)",
                          err.msg);
        (*fails)++;
        pthread_mutex_lock(&s->mu);
        s->reconcile = true; /* an end may have passed unseen */
        pthread_mutex_unlock(&s->mu);
        return backoff < RETRY_MAX_MS ? backoff : RETRY_MAX_MS;
    }
    if (*fails)
        ocra_log_info("supervisor: the runner answers again");
    *fails = 0;
    act(s);
    return rest_ms;
}

static void *
supervise_main(void *arg)
{
    struct ocra_daemon_supervisor *s = arg;
    int fails = 0;

    for (;;) {
        bool again;
        int64_t ms;

        pthread_mutex_lock(&s->mu);
        again = s->reconcile;
        s->reconcile = false;
        if (s->stop) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        pthread_mutex_unlock(&s->mu);
        if (again && fails == 0)
            reconcile(s);
        else if (again) { /* not while the runner is down: once it answers */
            pthread_mutex_lock(&s->mu);
            s->reconcile = true;
            pthread_mutex_unlock(&s->mu);
        }
        ms = round_once(s, &fails);
        stoppers_reap(s, false);
        if (ms > 0)
            rest(s, ms);
    }
    return NULL;
}

int
ocra_daemon_supervise_start(struct ocra_daemon *d, struct ocra_err *err)
{
    struct ocra_daemon_supervisor *s = ocra_xcalloc(1, sizeof(*s));
    int rc;

    s->d = d;
    s->reconcile = true; /* at start: every supervised event checked once */
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (ocra_store_open(d->journal, &s->st, err) < 0)
        goto fail;
    if ((rc = pthread_create(&s->thread, NULL, supervise_main, s)) != 0) {
        ocra_err_set(err, rc, "supervisor: pthread_create: %s", strerror(rc));
        goto fail;
    }
    ocra_metrics_set(ocra_metrics_std()->supervised, NULL, 0);
    d->sup = s;
    return 0;
fail:
    ocra_store_close(s->st);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
    return ocra_err_wrap(err, "supervisor");
}

void
ocra_daemon_supervise_stop(struct ocra_daemon *d)
{
    struct ocra_daemon_supervisor *s = d->sup;

    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    stoppers_reap(s, true);
    d->sup = NULL;
    for (size_t i = 0; i < s->n; i++) {
        free(s->e[i].event_id);
        free(s->e[i].replaced_by);
        free(s->e[i].noted);
    }
    free(s->e);
    for (size_t i = 0; i < s->n_unknown; i++)
        free(s->unknown[i]);
    free(s->unknown);
    free(s->stoppers);
    ocra_runner_free(s->runner);
    ocra_store_close(s->st);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
