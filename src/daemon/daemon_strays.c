/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon_strays.c: containers that carry ocra's labels but belong to no live run (strays),
 * found on the configured runner's engine and judged, each by what knows its run: a Slurm job's
 * container by slurmctld (the job ended, or slurmctld no longer knows it, or the id now names
 * another event's job), a docker runner's container by the journal (its run ended; a replica
 * that holds no allocation; an event that finished). A container of an event the journal does
 * not know (an `ocra run` from the command line) is never judged. `ocra nodes` warns about the
 * strays; the daemon's reconcile (at start, then every run.reconcile_interval_s) removes them,
 * ends a runs row left running, and counts them in /metrics.
 */
#include "daemon/daemon_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics.h"
#include "run/run.h"

struct judge {
    const struct ocra_config *cfg;
    struct ocra_store *st;      /* may be NULL: docker containers are then not judged */
    struct ocra_runner *runner; /* the configured runner: its containers, on its engine */
    struct ocra_runner *slurm;  /* runner when it is a batch runner (Slurm's job states) */
};

/* A Slurm job's container: 1 stray (why), 0 live or not to judge, -1 not known now (err). */
static int
judge_slurm(struct judge *j, const struct ocra_run_container *c, char *why, size_t n,
            struct ocra_err *err)
{
    struct ocra_run_job rj = {0};
    struct ocra_run_slurm_job sj = {0};

    if (!c->slurm_job || !j->slurm)
        return 0;
    snprintf(rj.id, sizeof(rj.id), "%" PRIu32, c->slurm_job);
    ocra_run_container_name(c->event_id, rj.name);
    if (ocra_run_slurm_job_get(j->slurm, &rj, &sj, err) < 0) {
        if (err->code != ENOENT)
            return -1;
        snprintf(why, n, "Slurm no longer knows job %" PRIu32, c->slurm_job);
        return 1;
    }
    if (strcmp(sj.name, rj.name) != 0) {
        snprintf(why, n, "Slurm job %" PRIu32 " is %s, not this event's %s (the id was reused)",
                 c->slurm_job, sj.name, rj.name);
        return 1;
    }
    if (sj.phase == OCRA_RUN_SLURM_PENDING || sj.phase == OCRA_RUN_SLURM_RUNNING)
        return 0;
    snprintf(why, n, "Slurm job %" PRIu32 " ended %s", c->slurm_job, sj.state);
    return 1;
}

/* A docker runner's container, by the journal; as judge_slurm(). */
static int
judge_docker(struct judge *j, const struct ocra_run_container *c, char *why, size_t n,
             struct ocra_err *err)
{
    struct ocra_store_pipeline *p = NULL;
    struct ocra_store_run *row = NULL;
    struct ocra_store_alloc a;
    bool held = true;
    int ret = -1;

    if (!c->active || !j->st)
        return 0;
    if (ocra_store_run_get(j->st, c->id, &row, err) < 0 ||
        ocra_store_pipeline_get(j->st, c->event_id, &p, err) < 0)
        goto out;
    ret = 0;
    if (row && (!strcmp(row->state, "running") || !strcmp(row->state, "pending") ||
                !strcmp(row->state, "starting")))
        goto out;
    ret = 1;
    if (row) {
        snprintf(why, n, "its run ended %s", row->state);
        goto out;
    }
    ret = 0;
    if (!p) /* not the daemon's: `ocra run` */
        goto out;
    ret = 1;
    if (c->replica < 0) {
        snprintf(why, n, "its io.ocra.replica label is not a replica number");
        goto out;
    }
    /* no replica container lives without its allocation (the autoscaling loop's order) */
    if (c->replica > 0 &&
        ocra_store_alloc_held(j->st, c->event_id, c->replica, &a, &held, err) < 0) {
        ret = -1;
        goto out;
    }
    if (!held) {
        snprintf(why, n, "replica %d of its event holds no allocation", c->replica);
        goto out;
    }
    if (!strcmp(p->state, "done")) {
        snprintf(why, n, "its event is finished (%s)", p->status);
        goto out;
    }
    ret = 0;
out:
    ocra_store_run_free(row);
    ocra_store_pipeline_free(p);
    return ret;
}

static int
judge(struct judge *j, const struct ocra_run_container *c, char *why, size_t n,
      struct ocra_err *err)
{
    if (!strcmp(c->runner, "slurm"))
        return judge_slurm(j, c, why, n, err);
    if (!strcmp(c->runner, "docker"))
        return judge_docker(j, c, why, n, err);
    return 0;
}

/* The strays among the engine's ocra containers; a container that cannot be judged now is
 * left out (logged at debug). */
static int
strays_of(struct judge *j, struct ocra_daemon_stray **out, size_t *n, struct ocra_err *err)
{
    struct ocra_run_container *v = NULL;
    struct ocra_daemon_stray *s = NULL;
    size_t nv = 0, k = 0;

    if (j->runner->containers(j->runner, NULL, &v, &nv, err) < 0)
        return -1;
    s = ocra_xcalloc(nv + 1, sizeof(*s));
    for (size_t i = 0; i < nv; i++) {
        struct ocra_err e = {0};
        int rc = judge(j, &v[i], s[k].why, sizeof(s[k].why), &e);

        if (rc < 0)
            ocra_log_debug("container %s (event=%s): not judged now: %s", v[i].name, v[i].event_id,
                           e.msg);
        if (rc == 1)
            s[k++].c = v[i];
    }
    free(v);
    *out = s;
    *n = k;
    return 0;
}

static int
judge_init(struct judge *j, const struct ocra_config *cfg, struct ocra_store *st,
           struct ocra_err *err)
{
    memset(j, 0, sizeof(*j));
    j->cfg = cfg;
    j->st = st;
    if (!(j->runner = ocra_daemon_runner_new(cfg, err)))
        return -1;
    if (j->runner->supports & OCRA_RUN_BATCH)
        j->slurm = j->runner;
    return 0;
}

int
ocra_daemon_strays(const struct ocra_config *cfg, struct ocra_store *st,
                   struct ocra_daemon_stray **out, size_t *n, struct ocra_err *err)
{
    struct judge j;
    int ret = -1;

    if (judge_init(&j, cfg, st, err) < 0 || strays_of(&j, out, n, err) < 0)
        goto out;
    ret = 0;
out:
    if (ret < 0)
        ocra_err_wrap(err, "stray containers");
    ocra_runner_free(j.runner);
    return ret;
}

/* A docker run's row the journal still holds as running ends stopped, saying why. */
static void
row_end(struct ocra_store *st, const struct ocra_daemon_stray *s)
{
    struct ocra_store_run *row = NULL;
    struct ocra_err err = {0};
    char reason[OCRA_RUN_EVENT_MAX], *text;
    json_t *result;

    if (ocra_store_run_get(st, s->c.id, &row, &err) < 0 || !row ||
        (strcmp(row->state, "running") && strcmp(row->state, "pending") &&
         strcmp(row->state, "starting"))) {
        ocra_store_run_free(row);
        return;
    }
    ocra_store_run_free(row);
    snprintf(reason, sizeof(reason), "a stray container, removed: %s", s->why);
    result = json_pack("{s:i, s:s}", "exitCode", -1, "reason", reason);
    text = ocra_json_compact(result);
    if (ocra_store_run_end(st, s->c.id, "stopped", NULL, text, &err) < 0)
        ocra_log_warn("reconcile run=%s: %s", s->c.id, err.msg);
    json_decref(result);
    free(text);
}

void
ocra_daemon_reconcile(struct ocra_daemon_ctx *ctx)
{
    const char *runner = ocra_run_kind_name(ctx->cfg->run.runner);
    const struct ocra_metrics_std *m = ocra_metrics_std();
    struct ocra_daemon_stray *s = NULL;
    struct ocra_err err = {0};
    size_t n = 0, left = 0;
    struct judge j;

    if (judge_init(&j, ctx->cfg, ctx->st, &err) < 0 || strays_of(&j, &s, &n, &err) < 0) {
        ocra_log_warn("reconcile: stray containers not checked: %s", err.msg);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (j.runner->discard(j.runner, s[i].c.id, &err) < 0) {
            ocra_log_warn("reconcile: stray container %s (event=%s): %s; not removed: %s",
                          s[i].c.name, s[i].c.event_id, s[i].why, err.msg);
            left++;
            continue;
        }
        ocra_log_warn("reconcile: removed stray container %s (%s, event=%s): %s", s[i].c.name,
                      s[i].c.state, s[i].c.event_id, s[i].why);
        ocra_metrics_add(m->strays_removed, (const char *const[]){runner}, 1);
        row_end(ctx->st, &s[i]);
    }
    ocra_metrics_set(m->strays, (const char *const[]){runner}, (double)left);
    ocra_log_debug("reconcile: %zu stray container(s), %zu removed", n, n - left);
out:
    free(s);
    ocra_runner_free(j.runner);
}
