/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon_runs.c: what the run and complete stages tell the journal's runs table, and how the
 * complete stage waits. The run stage records the workload it started or adopted (the
 * runner's job id, the node, the GPUs of the allocation); the complete stage waits for its
 * end in slices, so that a stopping daemon checkpoints the wait instead of draining for as
 * long as the workload runs (the workload keeps running; the next start adopts the claim and
 * waits again), then records the end: succeeded, failed or stopped, with the exit code, the
 * log tail and the duration by the runner's record of the run (not the stage's clock: a stage
 * that took the wait over after a restart saw only the run's end).
 */
#include "daemon/daemon_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "run/run.h"

#define WAIT_SLICE_MS 500      /* how long a stopping daemon may wait for a wait to return */
#define ORPHAN_STOP_GRACE_S 10 /* SIGTERM, then SIGKILL: the workload of an orphaned event */

/* The image digest the run uses: the sign stage's, else the push stage's. */
static const char *
run_digest(const json_t *inputs)
{
    const char *d = ocra_json_str(json_object_get(inputs, "sign"), "digest");

    return d ? d : ocra_json_str(json_object_get(inputs, "push"), "digest");
}

/* Where Slurm placed job (its host list), "" while pending or when slurmrestd cannot say. */
static void
slurm_nodes(struct ocra_runner *r, const struct ocra_run_job *rj, char *out, size_t n)
{
    struct ocra_run_slurm_job sj = {0};
    struct ocra_err err = {0};

    out[0] = '\0';
    if ((r->supports & OCRA_RUN_BATCH) && ocra_run_slurm_job_get(r, rj, &sj, &err) == 0)
        snprintf(out, n, "%s", sj.nodes);
}

int
ocra_daemon_run_started(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job,
                        const json_t *inputs, struct ocra_runner *r, const struct ocra_run_job *rj,
                        struct ocra_err *err)
{
    const json_t *alloc = json_object_get(inputs, "allocate");
    bool by_count = r->supports & OCRA_RUN_PLACES_BY_COUNT;
    struct ocra_store_run run = {.id = rj->id,
                                 .event_id = job->event->id,
                                 .image_digest = run_digest(inputs),
                                 .runner = r->name,
                                 .state = "running"};
    char node[128], *gpus = NULL;
    int ret;

    if (!run.image_digest)
        return ocra_err_set(err, EINVAL, "run %s: no image digest in the stage outputs", rj->name);
    /* the cluster (Slurm) places the job and picks its devices: the row names the node it
     * reports */
    if (by_count)
        slurm_nodes(r, rj, node, sizeof(node));
    else
        snprintf(node, sizeof(node), "%s",
                 ocra_json_str(alloc, "node") ? ocra_json_str(alloc, "node") : "");
    run.node = node;
    if (!by_count && json_is_array(json_object_get(alloc, "gpus")))
        gpus = ocra_json_compact(json_object_get(alloc, "gpus"));
    run.gpus = gpus;
    ret = ocra_store_run_put(ctx->st, &run, err);
    free(gpus);
    return ret < 0 ? ocra_err_wrap(err, "journal the run") : 0;
}

struct found_run {
    const char *runner;
    char id[72];
};

static int
first_of_runner(const struct ocra_store_run *r, void *arg)
{
    struct found_run *f = arg;

    if (strcmp(r->runner, f->runner) != 0 || strlen(r->id) >= sizeof(f->id))
        return 0;
    snprintf(f->id, sizeof(f->id), "%s", r->id);
    return 1;
}

int
ocra_daemon_run_journaled(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job,
                          struct ocra_runner *r, struct ocra_run_job *rj, bool *found,
                          struct ocra_err *err)
{
    struct found_run f = {.runner = r->name};

    *found = false;
    if (ocra_store_run_list(ctx->st, job->event->id, first_of_runner, &f, err) < 0)
        return ocra_err_wrap(err, "the event's runs");
    if (!f.id[0])
        return 0;
    memset(rj, 0, sizeof(*rj));
    snprintf(rj->id, sizeof(rj->id), "%s", f.id);
    ocra_run_container_name(job->event->id, rj->name);
    rj->adopted = true;
    *found = true;
    return 0;
}

int
ocra_daemon_run_wait(struct ocra_daemon_ctx *ctx, struct ocra_runner *r,
                     const struct ocra_run_job *rj, const char *event_id, int *exit_code,
                     bool *orphaned, struct ocra_err *err)
{
    *orphaned = false;
    for (;;) {
        if (ctx->d->stopping)
            return ocra_err_set(err, ESHUTDOWN,
                                "checkpointed: the daemon is stopping; %s (%s) keeps running and "
                                "the next start waits for it again",
                                rj->name, rj->id);
        /* the watcher withdrew the event (its block was replaced): stop waiting for it */
        if (event_id && ocra_store_event_orphaned(ctx->st, event_id, orphaned, err) < 0)
            return -1;
        if (*orphaned)
            return 0;
        if (r->wait(r, rj, WAIT_SLICE_MS, exit_code, err) == 0)
            return 0;
        if (err->code != ETIMEDOUT)
            return -1;
    }
}

/* The event's runs that may still be running (the ids of its runner), collected first: the
 * journal is written for each one after the listing. */
struct live_runs {
    const char *runner;
    char (*ids)[72];
    size_t n;
};

static int
live_run(const struct ocra_store_run *run, void *arg)
{
    struct live_runs *l = arg;

    if (strcmp(run->state, "running") != 0 && strcmp(run->state, "pending") != 0 &&
        strcmp(run->state, "starting") != 0)
        return 0;
    if (strcmp(run->runner, l->runner) != 0 || strlen(run->id) >= sizeof(*l->ids)) {
        ocra_log_warn("event=%s run %s: runner %s, not the configured %s: not stopped",
                      run->event_id, run->id, run->runner, l->runner);
        return 0;
    }
    l->ids = ocra_xrealloc(l->ids, (l->n + 1) * sizeof(*l->ids));
    snprintf(l->ids[l->n++], sizeof(*l->ids), "%s", run->id);
    return 0;
}

int
ocra_daemon_run_stop_all(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job,
                         const json_t *inputs, struct ocra_runner *r, json_t *stopped,
                         struct ocra_err *err)
{
    struct live_runs l = {.runner = r->name};
    int ret = -1;

    if (ocra_store_run_list(ctx->st, job->event->id, live_run, &l, err) < 0) {
        ocra_err_wrap(err, "the event's runs");
        goto out;
    }
    for (size_t i = 0; i < l.n; i++) {
        struct ocra_run_job rj = {.adopted = true};
        int64_t started = 0, finished = 0;
        struct ocra_err lerr = {0};
        char *logs = NULL;
        size_t len = 0;
        int rc;

        snprintf(rj.id, sizeof(rj.id), "%s", l.ids[i]);
        ocra_run_container_name(job->event->id, rj.name);
        if (r->stop(r, &rj, ORPHAN_STOP_GRACE_S, err) < 0)
            goto out;
        (void)r->logs(r, &rj, 40, &logs, &len, &lerr);
        ocra_daemon_run_times(ctx, r, &rj, &started, &finished);
        rc =
            ocra_daemon_run_ended(ctx, job, inputs, r, &rj, -1, true, logs, started, finished, err);
        free(logs);
        if (rc < 0)
            goto out;
        json_array_append_new(stopped, json_string(rj.id));
        ocra_log_info("event=%s run %s (%s) stopped: the event is orphaned", job->event->id,
                      rj.name, rj.id);
    }
    ocra_daemon_agent_run_end(ctx->d, job->event->id, 0); /* replica 0's socket goes with it */
    ret = 0;
out:
    free(l.ids);
    return ret;
}
int64_t
ocra_daemon_run_limit_s(const struct ocra_config *cfg, const struct ocra_spec *spec)
{
    int64_t op = spec->workload.type == OCRA_SPEC_TRAINING ? cfg->run.max_duration_training_s
                                                           : cfg->run.max_duration_inference_s;
    int64_t want = (int64_t)spec->workload.max_duration_s;

    if (!want)
        return op;
    return op && want > op ? op : want;
}

bool
ocra_daemon_checkpointed(struct ocra_daemon_ctx *ctx, const struct ocra_err *err)
{
    return err->code == ESHUTDOWN && ctx->d->stopping;
}

void
ocra_daemon_run_times(struct ocra_daemon_ctx *ctx, struct ocra_runner *r,
                      const struct ocra_run_job *rj, int64_t *started_ms, int64_t *finished_ms)
{
    struct ocra_store_run *row = NULL;
    struct ocra_err err = {0};
    int64_t s = 0, f = 0;

    if (r->times && r->times(r, rj, &s, &f, &err) < 0) {
        ocra_log_warn("run %s (%s): %s; using the journal's start and the wall clock", rj->name,
                      rj->id, err.msg);
        s = f = 0;
    }
    if (!s && ocra_store_run_get(ctx->st, rj->id, &row, &err) == 0 && row)
        s = row->started_ms;
    ocra_store_run_free(row);
    if (!f)
        f = ocra_time_wall_ms();
    *started_ms = s && s <= f ? s : f;
    *finished_ms = f;
}

int
ocra_daemon_run_ended(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job,
                      const json_t *inputs, struct ocra_runner *r, const struct ocra_run_job *rj,
                      int exit_code, bool stopped, const char *logs, int64_t started_ms,
                      int64_t finished_ms, struct ocra_err *err)
{
    const char *state = stopped ? "stopped" : exit_code == 0 ? "succeeded" : "failed";
    struct ocra_store_run *row = NULL;
    char node[128], *text = NULL;
    json_t *result;
    int ret = -1;

    /* a run started by a daemon that did not journal runs yet is recorded now */
    if (ocra_store_run_get(ctx->st, rj->id, &row, err) < 0 ||
        (!row && (ocra_daemon_run_started(ctx, job, inputs, r, rj, err) < 0 ||
                  ocra_store_run_get(ctx->st, rj->id, &row, err) < 0)))
        return ocra_err_wrap(err, "journal the run's end");
    if (!row)
        return ocra_err_set(err, ENOENT, "run %s: not in the journal", rj->id);
    slurm_nodes(r, rj, node, sizeof(node));
    result = json_pack("{s:i, s:s?, s:I}", "exitCode", exit_code, "logTail", logs, "durationMs",
                       (json_int_t)(finished_ms > started_ms ? finished_ms - started_ms : 0));
    text = ocra_json_compact(result);
    ret = ocra_store_run_end(ctx->st, rj->id, state, node, text, err);
    json_decref(result);
    free(text);
    ocra_store_run_free(row);
    return ret < 0 ? ocra_err_wrap(err, "journal the run's end") : 0;
}
