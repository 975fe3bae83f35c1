/* SPDX-License-Identifier: Apache-2.0 */
/*
 * run_slurm.c: the slurm runner, the distributed engine. Each workload is one batch job
 * submitted through slurmrestd (openapi/v0.0.38) with JWT auth: the user in
 * X-SLURM-USER-NAME, the token, read from its file at each request and wiped after, in
 * X-SLURM-USER-TOKEN. The job is named after the event id, and a start first looks for a job
 * of that name and user and adopts it, so a retry after a crash never submits a second one. A
 * request for more GPUs than the largest node of the partition has is refused before
 * submitting. wait polls the job with a growing interval, bounded by its timeout; stop cancels
 * (DELETE: Slurm sends SIGTERM, then SIGKILL after its KillWait); logs read the job's output
 * file from the job directory, which the nodes share with this host.
 */
#include "run/run_int.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http/http.h"

#define API "/slurm/v0.0.38"
#define TOKEN_MAX 8192
#define REPLY_MAX (64u << 20)     /* GET /jobs of a busy cluster */
#define LOG_MAX (8u << 20)        /* a log tail held in memory */
#define WAIT_DEFAULT_MS 86400000L /* wait without a timeout: a day */
#define TRANSIENT_MAX 5           /* failed polls in a row that wait tolerates */
#define SLURM_ALREADY_DONE "already completing or completed"

struct slurm_runner {
    char *url, *user, *token_file, *partition, *docker_host, *workdir;
    struct ocra_run_slurm_opts opts; /* pointing at the copies above */
    int wait_fails; /* wait's failed polls in a row, kept across waits with a timeout (the
                       daemon's complete stage waits in slices) */
};

/* ---- options and the token -------------------------------------------------------------- */

static bool
name_valid(const char *s, const char *extra)
{
    size_t n = s ? strlen(s) : 0;

    return n > 0 && n < OCRA_SCHED_NAME_MAX &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") > 0 &&
           strspn(s, extra) == 0 &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

static bool
url_valid(const char *u)
{
    if (!u || (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0))
        return false;
    for (const char *p = u; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '?' || *p == '#')
            return false;
    return strlen(u) < 1024;
}

static int
opts_check(const struct ocra_run_slurm_opts *o, struct ocra_err *err)
{
    if (!url_valid(o->url))
        return ocra_err_set(err, EINVAL, "run.slurm.url: need http://host:port of slurmrestd");
    if (!name_valid(o->user, "-."))
        return ocra_err_set(err, EINVAL, "run.slurm.user: need a user name");
    if (!o->token_file || !*o->token_file)
        return ocra_err_set(err, EINVAL, "run.slurm.token_file: need the file of a JWT");
    if (o->partition && *o->partition && !name_valid(o->partition, "-."))
        return ocra_err_set(err, EINVAL, "run.slurm.partition: not a partition name");
    if (o->docker_host && *o->docker_host && strncmp(o->docker_host, "unix:///", 8) != 0)
        return ocra_err_set(err, EINVAL, "run.slurm.docker_host: need unix:///absolute/path");
    if (o->workdir && *o->workdir &&
        (o->workdir[0] != '/' || strlen(o->workdir) > 512 ||
         !ocra_utf8_valid(o->workdir, strlen(o->workdir))))
        return ocra_err_set(err, EINVAL, "run.slurm.workdir: need an absolute path");
    if (o->poll_interval_ms < 0 || o->poll_interval_ms > 600000 || o->request_timeout_ms < 0)
        return ocra_err_set(err, EINVAL, "run.slurm.poll_interval_ms: not in 0..600000");
    return 0;
}

/* The JWT from its file, trimmed; only base64url and dots (it goes into a header). */
static char *
token_load(const char *path, struct ocra_err *err)
{
    char *tok = NULL;
    size_t len = 0;

    if (ocra_file_read(path, TOKEN_MAX, &tok, &len, err) < 0) {
        ocra_err_wrap(err, "run.slurm.token_file");
        return NULL;
    }
    while (len && (tok[len - 1] == '\n' || tok[len - 1] == '\r' || tok[len - 1] == ' '))
        tok[--len] = '\0';
    if (len == 0 ||
        strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=") != len) {
        ocra_secure_free(tok, len);
        ocra_err_set(err, EINVAL, "run.slurm.token_file %s: not a JWT (one line of base64url)",
                     path);
        return NULL;
    }
    return tok;
}

/* ---- requests --------------------------------------------------------------------------- */

/* One request to slurmrestd; *out (may be NULL) is the checked reply on success. */
static int
request(const struct slurm_runner *sr, const char *method, const char *path, const json_t *body,
        json_t **out, struct ocra_err *err)
{
    struct ocra_http_resp resp = {0};
    char *tok = token_load(sr->token_file, err), *text = NULL, *url = NULL, *user_h = NULL;
    char *tok_h = NULL;
    json_t *doc = NULL;
    int ret = -1;

    if (!tok)
        return -1;
    url = ocra_xasprintf("%s%s", sr->url, path);
    user_h = ocra_xasprintf("X-SLURM-USER-NAME: %s", sr->user);
    tok_h = ocra_xasprintf("X-SLURM-USER-TOKEN: %s", tok);
    text = body ? ocra_json_compact(body) : NULL;
    const char *headers[] = {user_h, tok_h, "Accept: application/json",
                             "Content-Type: application/json", NULL};
    struct ocra_http_req req = {.method = method,
                                .url = url,
                                .headers = headers,
                                .body = text,
                                .body_len = text ? strlen(text) : 0,
                                .timeout_ms = sr->opts.request_timeout_ms,
                                .max_response = REPLY_MAX};
    if (ocra_http_do(&req, &resp, err) < 0 ||
        ocra_run_slurm_reply(resp.status, resp.body, resp.body_len, &doc, err) < 0) {
        ocra_err_wrap(err, "%s %s", method, path);
        goto out;
    }
    if (out) {
        *out = doc;
        doc = NULL;
    }
    ret = 0;
out:
    json_decref(doc);
    ocra_http_resp_fini(&resp);
    ocra_secure_free(tok_h, strlen(tok_h));
    ocra_secure_free(tok, strlen(tok));
    free(user_h);
    free(text);
    free(url);
    return ret;
}

static struct slurm_runner *
impl(struct ocra_runner *r)
{
    return r->impl;
}

static int
job_id_of(const struct ocra_run_job *job, uint32_t *id, struct ocra_err *err)
{
    uint64_t v = 0;

    if (ocra_parse_u64(job->id, UINT32_MAX, &v, NULL) < 0 || v == 0)
        return ocra_err_set(err, EINVAL, "job: no Slurm job id");
    *id = (uint32_t)v;
    return 0;
}

static int
job_get(struct slurm_runner *sr, uint32_t id, struct ocra_run_slurm_job *out, struct ocra_err *err)
{
    char path[64];
    json_t *doc = NULL;
    const json_t *jobs;
    int ret = -1;

    snprintf(path, sizeof(path), API "/job/%" PRIu32, id);
    if (request(sr, "GET", path, NULL, &doc, err) < 0)
        goto out;
    jobs = json_object_get(doc, "jobs");
    if (!json_is_array(jobs) || json_array_size(jobs) == 0) {
        ocra_err_set(err, json_is_array(jobs) ? ENOENT : EPROTO, "job %" PRIu32 ": %s", id,
                     json_is_array(jobs) ? "slurmctld does not know it" : "no \"jobs\" array");
        goto out;
    }
    ret = ocra_run_slurm_job_parse(json_array_get(jobs, 0), out, err);
    if (ret == 0 && out->job_id != id)
        ret = ocra_err_set(err, EPROTO, "job %" PRIu32 ": the reply is about job %" PRIu32, id,
                           out->job_id);
out:
    json_decref(doc);
    return ret;
}

int
ocra_run_slurm_job_get(struct ocra_runner *r, const struct ocra_run_job *job,
                       struct ocra_run_slurm_job *out, struct ocra_err *err)
{
    uint32_t id = 0;

    assert(r && strcmp(r->name, "slurm") == 0);
    if (job_id_of(job, &id, err) < 0)
        return -1;
    return job_get(impl(r), id, out, err);
}

/* ---- start ------------------------------------------------------------------------------ */

/* The most GPUs one node of the partition (of the cluster without one) has; ENOENT when no
 * partition has that name. */
static int
max_node_gpus(const struct ocra_run_slurm_opts *o, int *out, struct ocra_err *err)
{
    struct ocra_run_slurm_inventory inv = {0};
    bool found = !*o->partition;
    int max = 0;

    if (ocra_run_slurm_inventory_get(o, &inv, err) < 0)
        return -1;
    for (size_t i = 0; !*o->partition && i < inv.n_nodes; i++)
        if (inv.nodes[i].gpus > max)
            max = inv.nodes[i].gpus;
    for (size_t i = 0; *o->partition && i < inv.n_parts; i++) {
        if (strcmp(inv.parts[i].name, o->partition) == 0) {
            max = inv.parts[i].max_node_gpus;
            found = true;
        }
    }
    ocra_run_slurm_inventory_fini(&inv);
    if (!found)
        return ocra_err_set(err, ENOENT, "run.slurm.partition %s: no such partition", o->partition);
    *out = max;
    return 0;
}

static int
gpus_precheck(struct slurm_runner *sr, int gpus, struct ocra_err *err)
{
    int max = 0;

    if (gpus <= 0)
        return 0;
    if (max_node_gpus(&sr->opts, &max, err) < 0)
        return ocra_err_wrap(err, "GPU pre-check");
    if (gpus > max)
        return ocra_err_set(err, ENOSPC,
                            "the job asks for %d GPUs (gres gpu:%d), but the largest node of %s%s "
                            "has %d: Slurm could never run it",
                            gpus, gpus, *sr->partition ? "partition " : "the cluster",
                            sr->partition, max);
    return 0;
}

/* 1 and job filled when a job to adopt exists, 0 when not. */
static int
find(struct slurm_runner *sr, const struct ocra_run_spec *spec, struct ocra_run_job *job,
     struct ocra_err *err)
{
    struct ocra_run_slurm_job found;
    json_t *doc = NULL;
    int ret = -1;

    if (request(sr, "GET", API "/jobs", NULL, &doc, err) < 0)
        goto out;
    ret = ocra_run_slurm_jobs_find(doc, job->name, sr->user, &found, err);
    if (ret <= 0)
        goto out;
    if (found.comment[0] && strcmp(found.comment, spec->image) != 0) {
        ret =
            ocra_err_set(err, EEXIST,
                         "job %s (%" PRIu32 ") exists for another image, not %s: cancel it or run "
                         "the new image under a new event",
                         job->name, found.job_id, spec->image);
        goto out;
    }
    snprintf(job->id, sizeof(job->id), "%" PRIu32, found.job_id);
    job->adopted = true;
out:
    json_decref(doc);
    return ret;
}

static int
submit(struct slurm_runner *sr, const struct ocra_run_spec *spec, struct ocra_run_job *job,
       struct ocra_err *err)
{
    struct ocra_buf script;
    json_t *body = NULL, *doc = NULL, *id;
    int ret = -1;

    ocra_buf_init(&script);
    if (ocra_run_slurm_script(spec, sr->docker_host, &script, err) < 0)
        goto out;
    body = ocra_run_slurm_submit_body(spec, &sr->opts, job->name, script.data);
    if (request(sr, "POST", API "/job/submit", body, &doc, err) < 0)
        goto out;
    id = json_object_get(doc, "job_id");
    if (!json_is_integer(id) || json_integer_value(id) <= 0 ||
        json_integer_value(id) > UINT32_MAX) {
        ocra_err_set(err, EPROTO, "slurmrestd: the submit reply has no job_id");
        goto out;
    }
    snprintf(job->id, sizeof(job->id), "%" PRIu32, (uint32_t)json_integer_value(id));
    ret = 0;
out:
    json_decref(doc);
    json_decref(body);
    ocra_buf_fini(&script);
    return ret;
}

/* DELETE the job: Slurm sends SIGCONT and SIGTERM, then SIGKILL after KillWait. */
static int
cancel(struct slurm_runner *sr, uint32_t id, struct ocra_err *err)
{
    struct ocra_err e = {0};
    char path[64];

    snprintf(path, sizeof(path), API "/job/%" PRIu32, id);
    if (request(sr, "DELETE", path, NULL, NULL, &e) == 0 || e.code == ENOENT ||
        strstr(e.msg, SLURM_ALREADY_DONE))
        return 0;
    if (err)
        *err = e;
    return -1;
}

/*
 * After a submit: another start of the same event may have raced this one past find() and
 * submitted too. Every starter keeps the first job and cancels its own, so one runs. Best
 * effort: when the list cannot be read, the job just submitted stands.
 */
static void
settle(struct slurm_runner *sr, struct ocra_run_job *job)
{
    struct ocra_run_slurm_job first;
    json_t *doc = NULL;
    uint32_t mine = 0;

    if (job_id_of(job, &mine, NULL) < 0 || request(sr, "GET", API "/jobs", NULL, &doc, NULL) < 0)
        return;
    if (ocra_run_slurm_jobs_first(doc, job->name, sr->user, &first, NULL) == 1 &&
        first.job_id != mine && cancel(sr, mine, NULL) == 0) {
        snprintf(job->id, sizeof(job->id), "%" PRIu32, first.job_id);
        job->adopted = true;
    }
    json_decref(doc);
}

static int
slurm_start(struct ocra_runner *r, const struct ocra_run_spec *spec, struct ocra_run_job *out,
            struct ocra_err *err)
{
    struct slurm_runner *sr = impl(r);
    struct ocra_run_job job = {0};
    int found = -1;

    if (ocra_run_spec_check(spec, err) < 0)
        goto fail;
    ocra_run_container_name(spec->event_id, job.name);
    found = find(sr, spec, &job, err);
    if (found < 0)
        goto fail;
    if (!found &&
        (gpus_precheck(sr, spec->gpu_count ? spec->gpu_count : spec->n_gpu_devs, err) < 0 ||
         submit(sr, spec, &job, err) < 0))
        goto fail;
    if (!found)
        settle(sr, &job);
    *out = job;
    return 0;
fail:
    return ocra_err_wrap(err, "slurm run %s", job.name[0] ? job.name : "(invalid spec)");
}

/* ---- reap ------------------------------------------------------------------------------- */

/* The engine of the jobs, as this host reaches it: run.slurm.docker_host, else the default. */
static struct ocra_image_docker *
jobs_engine(const struct slurm_runner *sr, struct ocra_err *err)
{
    const struct ocra_image_docker_opts o = {
        .socket = *sr->docker_host ? sr->docker_host + strlen("unix://") : NULL};
    struct ocra_image_docker *d = ocra_image_docker_new(&o, err);

    if (!d)
        ocra_err_wrap(err, "the jobs' engine (run.slurm.docker_host) from this host");
    return d;
}

static int
slurm_containers(struct ocra_runner *r, const char *event_id, struct ocra_run_container **out,
                 size_t *n, struct ocra_err *err)
{
    struct ocra_image_docker *d = jobs_engine(r->impl, err);
    int ret = d ? ocra_run_containers_list(d, event_id, out, n, err) : -1;

    ocra_image_docker_free(d);
    return ret;
}

static int
slurm_discard(struct ocra_runner *r, const char *container_id, struct ocra_err *err)
{
    struct ocra_image_docker *d = jobs_engine(r->impl, err);
    int ret = d ? ocra_run_container_remove(d, container_id, err) : -1;

    ocra_image_docker_free(d);
    return ret;
}

/*
 * Removes job id's containers: labelled with its id, on the event whose job name is job->name
 * (a job id of another cluster, or one reused after slurmctld lost its state, names another
 * event), and of event_id when given.
 */
static int
reap_job(struct slurm_runner *sr, const struct ocra_run_job *job, uint32_t id, const char *event_id,
         struct ocra_run_container **removed, size_t *n_removed, struct ocra_err *err)
{
    struct ocra_image_docker *d = jobs_engine(sr, err);
    struct ocra_run_container *v = NULL;
    char name[OCRA_RUN_NAME_MAX];
    size_t n = 0, k = 0;
    int ret = -1;

    if (!d || ocra_run_containers_list(d, event_id, &v, &n, err) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        ocra_run_container_name(v[i].event_id, name);
        if (v[i].slurm_job != id || strcmp(v[i].runner, "slurm") != 0 ||
            strcmp(name, job->name) != 0)
            continue;
        if (ocra_run_container_remove(d, v[i].id, err) < 0)
            goto out;
        v[k++] = v[i];
    }
    if (removed) {
        *removed = v;
        v = NULL;
    }
    *n_removed = k;
    ret = 0;
out:
    if (ret < 0)
        ocra_err_wrap(err, "reap job %" PRIu32 "'s containers", id);
    free(v);
    ocra_image_docker_free(d);
    return ret;
}

/*
 * After wait or stop saw the job end (j NULL: slurmctld no longer knows it): its containers
 * go, whatever the job script managed before Slurm killed it. A failure is logged (the end
 * stays the result); the node's epilog and the daemon's reconcile remain.
 */
static void
reap_ended(struct slurm_runner *sr, const struct ocra_run_job *job, uint32_t id,
           const struct ocra_run_slurm_job *j)
{
    const char *state = j ? j->state : "(purged)";
    struct ocra_err e = {0};
    size_t n = 0;

    if (reap_job(sr, job, id, NULL, NULL, &n, &e) < 0) {
        if (j && j->phase == OCRA_RUN_SLURM_EXITED && j->exit_code == 0)
            ocra_log_debug("slurm job=%" PRIu32 " %s ended %s: %s", id, job->name, state, e.msg);
        else
            ocra_log_warn("slurm job=%" PRIu32 " %s ended %s: %s; the node's epilog "
                          "(etc/slurm/ocra-epilog) or the daemon's reconcile must remove them",
                          id, job->name, state, e.msg);
    } else if (n) {
        ocra_log_info("slurm job=%" PRIu32 " %s ended %s: removed %zu container(s) it left", id,
                      job->name, state, n);
    }
}

static int
slurm_reap(struct ocra_runner *r, const char *event_id, const struct ocra_run_job *job,
           struct ocra_run_container **removed, size_t *n_removed, struct ocra_err *err)
{
    struct slurm_runner *sr = impl(r);
    struct ocra_run_slurm_job j = {0};
    struct ocra_err e = {0};
    uint32_t id = 0;

    if (!job)
        return ocra_err_set(err, EINVAL, "reap event %s: the slurm runner needs the job",
                            event_id ? event_id : "(none)");
    if (job_id_of(job, &id, err) < 0)
        return ocra_err_wrap(err, "reap %s", job->name);
    /* ENOENT: slurmctld purged it after its end */
    if (job_get(sr, id, &j, &e) < 0 && e.code != ENOENT) {
        if (err)
            *err = e;
        return ocra_err_wrap(err, "reap %s", job->name);
    }
    if (j.job_id && (j.phase == OCRA_RUN_SLURM_PENDING || j.phase == OCRA_RUN_SLURM_RUNNING))
        return ocra_err_set(err, EBUSY,
                            "reap %s: job %" PRIu32 " is %s: its containers are its own", job->name,
                            id, j.state);
    return reap_job(sr, job, id, event_id, removed, n_removed, err);
}

/* ---- wait, logs, stop, remove ----------------------------------------------------------- */

static bool
transient(int code)
{
    return code == ECONNREFUSED || code == ETIMEDOUT || code == EAGAIN || code == EIO;
}

/* The end of a job as wait reports it: 0 and *exit_code, or -1. */
static int
ended(const struct ocra_run_slurm_job *j, int *exit_code, struct ocra_err *err)
{
    switch (j->phase) {
    case OCRA_RUN_SLURM_EXITED:
        *exit_code = j->exit_code;
        return 0;
    case OCRA_RUN_SLURM_CANCELLED:
        return ocra_err_set(err, ECANCELED, "job %" PRIu32 " was cancelled (stopped)", j->job_id);
    default:
        return ocra_err_set(
            err, j->phase == OCRA_RUN_SLURM_LOST && strcmp(j->state, "TIMEOUT") == 0 ? ETIME : EIO,
            "job %" PRIu32 " ended in state %s (reason %s) without the workload's "
            "exit code",
            j->job_id, j->state, j->reason[0] ? j->reason : "none");
    }
}

static int
slurm_wait(struct ocra_runner *r, const struct ocra_run_job *job, long timeout_ms, int *exit_code,
           struct ocra_err *err)
{
    struct slurm_runner *sr = impl(r);
    struct ocra_run_slurm_job j = {0};
    long interval = sr->opts.poll_interval_ms ? sr->opts.poll_interval_ms : 1000;
    uint64_t deadline;
    uint32_t id = 0;

    if (job_id_of(job, &id, err) < 0)
        return ocra_err_wrap(err, "wait for %s", job->name);
    deadline =
        ocra_time_mono_ns() + (uint64_t)(timeout_ms > 0 ? timeout_ms : WAIT_DEFAULT_MS) * 1000000u;
    for (long delay = interval;;) {
        if (job_get(sr, id, &j, err) == 0) {
            sr->wait_fails = 0;
            if (j.phase != OCRA_RUN_SLURM_PENDING && j.phase != OCRA_RUN_SLURM_RUNNING) {
                reap_ended(sr, job, id, &j);
                return ended(&j, exit_code, err) < 0 ? ocra_err_wrap(err, "wait for %s", job->name)
                                                     : 0;
            }
        } else if (!transient(err ? err->code : EIO) || ++sr->wait_fails >= TRANSIENT_MAX) {
            sr->wait_fails = 0;
            if (err && err->code == ENOENT)
                reap_ended(sr, job, id, NULL);
            return ocra_err_wrap(err, "wait for %s", job->name);
        }
        uint64_t now = ocra_time_mono_ns();
        if (now >= deadline)
            return ocra_err_set(
                err, ETIMEDOUT, "wait for %s: job %" PRIu32 " still %s after %ld ms", job->name, id,
                j.state[0] ? j.state : "unknown", timeout_ms > 0 ? timeout_ms : WAIT_DEFAULT_MS);
        if ((uint64_t)delay * 1000000u > deadline - now)
            delay = (long)((deadline - now) / 1000000u) + 1;
        ocra_sleep_ms(delay);
        delay = delay * 2 > interval * 8 ? interval * 8 : delay * 2;
    }
}

/* One GET /jobs for every job the caller follows: each that has ended (or that slurmctld
 * forgot: purged after it ended) is reported. */
static int
slurm_watch(struct ocra_runner *r, const struct ocra_run_job *jobs, size_t n, long timeout_ms,
            ocra_run_ended_fn *ended_fn, void *arg, struct ocra_err *err)
{
    const json_t *list;
    json_t *doc = NULL;
    bool *live = NULL;
    int ret = -1;

    (void)timeout_ms;
    if (n == 0)
        return 0;
    if (request(impl(r), "GET", API "/jobs", NULL, &doc, err) < 0)
        goto out;
    if (!json_is_array(list = json_object_get(doc, "jobs"))) {
        ocra_err_set(err, EPROTO, "slurmrestd: no \"jobs\" array");
        goto out;
    }
    live = ocra_xcalloc(n, sizeof(*live));
    for (size_t i = 0; i < json_array_size(list); i++) {
        struct ocra_run_slurm_job j;
        char id[16];

        if (ocra_run_slurm_job_parse(json_array_get(list, i), &j, err) < 0)
            goto out;
        snprintf(id, sizeof(id), "%" PRIu32, j.job_id);
        for (size_t k = 0; k < n; k++)
            if (strcmp(jobs[k].id, id) == 0)
                live[k] = j.phase == OCRA_RUN_SLURM_PENDING || j.phase == OCRA_RUN_SLURM_RUNNING;
    }
    for (size_t k = 0; k < n; k++)
        if (!live[k])
            ended_fn(arg, jobs[k].id, NULL, -1);
    ret = 0;
out:
    if (ret < 0)
        ocra_err_wrap(err, "poll the jobs");
    free(live);
    json_decref(doc);
    return ret;
}

static char *
out_path(const struct slurm_runner *sr, const struct ocra_run_job *job)
{
    return ocra_xasprintf("%s/%s-%s.out", sr->workdir, job->name, job->id);
}

/* The last `tail` lines (0: all) of at most LOG_MAX bytes at the end of path. */
static int
file_tail(const char *path, unsigned tail, struct ocra_buf *out, struct ocra_err *err)
{
    struct stat st;
    char *buf = NULL;
    size_t n = 0, start, cap;
    int fd = open(path, O_RDONLY | O_CLOEXEC), ret = -1;

    if (fd < 0 || fstat(fd, &st) < 0) {
        ocra_err_sys(err, "open %s", path);
        goto out;
    }
    cap = (size_t)st.st_size < LOG_MAX ? (size_t)st.st_size : LOG_MAX;
    start = (size_t)st.st_size - cap;
    buf = ocra_xmalloc(cap + 1);
    for (ssize_t got; n < cap; n += (size_t)got) {
        got = pread(fd, buf + n, cap - n, (off_t)(start + n));
        if (got < 0) {
            ocra_err_sys(err, "read %s", path);
            goto out;
        }
        if (got == 0)
            break;
    }
    start = n;
    for (unsigned lines = 0; tail && start > 0; start--)
        if (buf[start - 1] == '\n' && start != n && ++lines == tail)
            break;
    ocra_buf_append(out, buf + start, n - start);
    ret = 0;
out:
    free(buf);
    ocra_fd_close(fd);
    return ret;
}

static int
slurm_logs(struct ocra_runner *r, const struct ocra_run_job *job, unsigned tail, char **out,
           size_t *len, struct ocra_err *err)
{
    struct ocra_buf b;
    uint32_t id = 0;
    char *path = NULL;
    int ret = -1;

    ocra_buf_init(&b);
    if (job_id_of(job, &id, err) < 0)
        goto out;
    path = out_path(impl(r), job);
    if (file_tail(path, tail, &b, err) < 0) {
        if (err && err->code == ENOENT)
            ocra_err_wrap(err, "the job has not written its output yet, or run.slurm.workdir is "
                               "not shared with this host");
        goto out;
    }
    ocra_buf_putc(&b, '\0');
    *len = b.len - 1;
    *out = ocra_buf_take(&b);
    ret = 0;
out:
    if (ret < 0)
        ocra_err_wrap(err, "logs of %s", job->name);
    ocra_buf_fini(&b);
    free(path);
    return ret;
}

static int
slurm_stop(struct ocra_runner *r, const struct ocra_run_job *job, int grace_s, struct ocra_err *err)
{
    struct slurm_runner *sr = impl(r);
    struct ocra_run_slurm_job j = {0};
    uint64_t deadline =
        ocra_time_mono_ns() + (uint64_t)((grace_s > 0 ? grace_s : 0) + 60) * 1000000000u;
    uint32_t id = 0;

    if (job_id_of(job, &id, err) < 0 || cancel(sr, id, err) < 0)
        return ocra_err_wrap(err, "stop %s", job->name);
    /* until it has left the node (COMPLETING included), so that its GPUs are free */
    while (ocra_time_mono_ns() < deadline) {
        if (job_get(sr, id, &j, err) < 0) {
            if (!err || err->code != ENOENT)
                return ocra_err_wrap(err, "stop %s", job->name);
            memset(err, 0, sizeof(*err));
            reap_ended(sr, job, id, NULL);
            return 0;
        }
        if (j.phase != OCRA_RUN_SLURM_PENDING && j.phase != OCRA_RUN_SLURM_RUNNING) {
            reap_ended(sr, job, id, &j);
            return 0;
        }
        ocra_sleep_ms(250);
    }
    return ocra_err_set(err, ETIMEDOUT, "stop %s: job %" PRIu32 " still %s", job->name, id,
                        j.state);
}

/* Slurm's start and end of the job: start_time is an estimate while it is pending and end_time
 * the time limit while it runs, so each counts only once it happened. */
static int
slurm_times(struct ocra_runner *r, const struct ocra_run_job *job, int64_t *started_ms,
            int64_t *finished_ms, struct ocra_err *err)
{
    struct ocra_run_slurm_job j = {0};
    uint32_t id = 0;

    if (job_id_of(job, &id, err) < 0 || job_get(impl(r), id, &j, err) < 0)
        return ocra_err_wrap(err, "times of %s", job->name);
    *started_ms = j.phase != OCRA_RUN_SLURM_PENDING ? j.start_time * 1000 : 0;
    *finished_ms = j.phase != OCRA_RUN_SLURM_PENDING && j.phase != OCRA_RUN_SLURM_RUNNING
                       ? j.end_time * 1000
                       : 0;
    return 0;
}

/* Slurm keeps no job to delete: remove cancels it when it runs and deletes its output file. */
static int
slurm_remove(struct ocra_runner *r, const struct ocra_run_job *job, struct ocra_err *err)
{
    struct slurm_runner *sr = impl(r);
    uint32_t id = 0;
    char *path = NULL;
    int ret = -1;

    if (job_id_of(job, &id, err) < 0 || cancel(sr, id, err) < 0)
        goto out;
    path = out_path(sr, job);
    if (unlink(path) < 0 && errno != ENOENT) {
        ocra_err_sys(err, "unlink %s", path);
        goto out;
    }
    ret = 0;
out:
    if (ret < 0)
        ocra_err_wrap(err, "remove %s", job->name);
    free(path);
    return ret;
}

/* ---- making one ------------------------------------------------------------------------- */

static void
impl_free(struct slurm_runner *sr)
{
    free(sr->url);
    free(sr->user);
    free(sr->token_file);
    free(sr->partition);
    free(sr->docker_host);
    free(sr->workdir);
    free(sr);
}

static void
slurm_free(struct ocra_runner *r)
{
    impl_free(r->impl);
    free(r);
}

static struct slurm_runner *
impl_new(const struct ocra_run_slurm_opts *o)
{
    struct slurm_runner *sr = ocra_xcalloc(1, sizeof(*sr));
    size_t n = strlen(o->url);

    while (n > 0 && o->url[n - 1] == '/')
        n--;
    sr->url = ocra_xstrndup(o->url, n);
    sr->user = ocra_xstrdup(o->user);
    sr->token_file = ocra_xstrdup(o->token_file);
    sr->partition = ocra_xstrdup(o->partition ? o->partition : "");
    sr->docker_host = ocra_xstrdup(o->docker_host ? o->docker_host : "");
    sr->workdir = ocra_xstrdup(o->workdir && *o->workdir ? o->workdir : "/tmp");
    sr->opts = *o;
    sr->opts.url = sr->url;
    sr->opts.user = sr->user;
    sr->opts.token_file = sr->token_file;
    sr->opts.partition = sr->partition;
    sr->opts.docker_host = sr->docker_host;
    sr->opts.workdir = sr->workdir;
    return sr;
}

struct ocra_runner *
ocra_run_slurm_new(const struct ocra_run_slurm_opts *opts, struct ocra_err *err)
{
    struct ocra_runner *r;

    if (opts_check(opts, err) < 0)
        return NULL;
    r = ocra_xcalloc(1, sizeof(*r));
    *r = (struct ocra_runner){.name = "slurm",
                              .start = slurm_start,
                              .wait = slurm_wait,
                              .logs = slurm_logs,
                              .stop = slurm_stop,
                              .remove = slurm_remove,
                              .times = slurm_times,
                              .reap = slurm_reap,
                              .watch = slurm_watch,
                              .containers = slurm_containers,
                              .discard = slurm_discard,
                              .supports = OCRA_RUN_SLURM_SUPPORTS,
                              .free = slurm_free,
                              .impl = impl_new(opts)};
    return r;
}

int
ocra_run_slurm_inventory_get(const struct ocra_run_slurm_opts *opts,
                             struct ocra_run_slurm_inventory *out, struct ocra_err *err)
{
    struct slurm_runner *sr;
    json_t *nodes = NULL, *parts = NULL;
    int ret = -1;

    if (opts_check(opts, err) < 0)
        return -1;
    sr = impl_new(opts);
    if (request(sr, "GET", API "/nodes", NULL, &nodes, err) < 0 ||
        request(sr, "GET", API "/partitions", NULL, &parts, err) < 0 ||
        ocra_run_slurm_inventory_parse(nodes, parts, out, err) < 0) {
        ocra_err_wrap(err, "slurm inventory");
        goto out;
    }
    ret = 0;
out:
    json_decref(nodes);
    json_decref(parts);
    impl_free(sr);
    return ret;
}
