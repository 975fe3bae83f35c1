/* SPDX-License-Identifier: Apache-2.0 */
/*
 * run_slurm_parse.c: the pure parts of the slurm runner, fed directly by run_test.c. The job
 * script, a POSIX sh text in which every word that came from the spec is single-quoted (the
 * spec came from a chain), with the sandbox profile of the docker runner as docker CLI flags;
 * the submit body; and the parsers of slurmrestd's replies (openapi/v0.0.38), which are outside
 * input: every field is type-checked, strings are bounded, and gres strings are parsed with
 * every number checked.
 */
#include "run/run_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLURM_ERR_INVALID_JOB_ID 2017 /* ESLURM_INVALID_JOB_ID */
#define SLURM_ERR_NODES_BUSY 2014     /* ESLURM_REQUESTED_NODE_CONFIG_UNAVAILABLE */
#define SLURM_ERR_TOO_MANY_GRES 2072  /* ESLURM_INVALID_GRES */
#define JOB_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* ---- the job script --------------------------------------------------------------------- */

/* s as one single-quoted sh word: ' becomes '\'' */
static void
sh_word(struct ocra_buf *out, const char *s)
{
    ocra_buf_putc(out, '\'');
    for (; *s; s++) {
        if (*s == '\'')
            ocra_buf_puts(out, "'\\''");
        else
            ocra_buf_putc(out, *s);
    }
    ocra_buf_putc(out, '\'');
}

/* " \\\n    FLAG 'VALUE'" */
static void
flag(struct ocra_buf *out, const char *name, const char *value)
{
    ocra_buf_printf(out, " \\\n    %s", name);
    if (value) {
        ocra_buf_putc(out, ' ');
        sh_word(out, value);
    }
}

static void
profile_flags(const struct ocra_run_spec *spec, struct ocra_buf *out)
{
    const struct ocra_run_profile *p = &spec->profile;
    struct ocra_run_limits l;
    char v[96];

    ocra_run_limits_get(p, &l);
    if (!p->writable_rootfs)
        flag(out, "--read-only", NULL);
    snprintf(v, sizeof(v), "/tmp:rw,nosuid,nodev,size=%" PRId64 "m,mode=1777", l.tmp_mib);
    flag(out, "--tmpfs", v);
    flag(out, "--cap-drop", "ALL");
    flag(out, "--security-opt", "no-new-privileges");
    snprintf(v, sizeof(v), "%" PRId64, p->no_pids_limit ? -1 : l.pids);
    flag(out, "--pids-limit", v);
    snprintf(v, sizeof(v), "%" PRId64 "m", l.memory_mib);
    flag(out, "--memory", v);
    flag(out, "--memory-swap", v);
    snprintf(v, sizeof(v), "%" PRId64 ".%03" PRId64, l.cpu_milli / 1000, l.cpu_milli % 1000);
    flag(out, "--cpus", v);
    snprintf(v, sizeof(v), "%" PRId64 "m", l.shm_mib);
    flag(out, "--shm-size", v);
    flag(out, "--user", ocra_run_user_get(p));
    flag(out, "--network", p->network_host ? "host" : "none");
    flag(out, "--restart", "no");
}

/* The opening: the docker function, the GPU arguments and the cancel trap. */
static void
script_head(const struct ocra_run_spec *spec, const char *docker_host, struct ocra_buf *out)
{
    char name[OCRA_RUN_NAME_MAX];

    ocra_run_container_name(spec->event_id, name);
    ocra_buf_printf(out,
                    "#!/bin/sh\n"
                    "# ocra job %s: runs one image by digest under the sandbox profile of\n"
                    "# docs/RUNNING.md. Generated; every word from the model spec is quoted.\n"
                    "set -u\n"
                    "name=%s-\"${SLURM_JOB_ID:-0}\"\n",
                    name, name);
    ocra_buf_puts(out, "dk() { docker");
    if (docker_host && *docker_host) {
        ocra_buf_puts(out, " --host ");
        sh_word(out, docker_host);
    }
    ocra_buf_puts(out, " \"$@\"; }\n");
    /* the docker CLI wants a config directory; the job user may have no home */
    ocra_buf_puts(out, "[ -w \"${HOME:-/nonexistent}\" ] || export "
                       "DOCKER_CONFIG=\"${TMPDIR:-/tmp}/ocra-docker-$name\"\n");
    /*
     * The GPUs Slurm allocated: device requests when the node has NVIDIA GPUs and their
     * container toolkit, else the indices in the environment only.
     */
    ocra_buf_puts(out, "set --\n"
                       "gpus=${CUDA_VISIBLE_DEVICES:-}\n"
                       "case $gpus in *[!0-9A-Za-z,-]*) echo \"ocra: bad CUDA_VISIBLE_DEVICES\" "
                       ">&2; exit 125 ;; esac\n"
                       "if [ -n \"$gpus\" ] && [ \"$gpus\" != NoDevFiles ]; then\n"
                       "    if [ -e /dev/nvidiactl ] && command -v nvidia-container-cli "
                       ">/dev/null 2>&1; then\n"
                       "        set -- --gpus \"\\\"device=$gpus\\\"\"\n"
                       "    else\n"
                       "        set -- --env \"CUDA_VISIBLE_DEVICES=$gpus\"\n"
                       "    fi\n"
                       "fi\n"
                       /* a cancel: Slurm sends SIGTERM to every process of the job, the docker
                          client too, and SIGKILL after KillWait; a create that the engine
                          finishes after the client died leaves a container: remove it until
                          none has been seen for 2.5 s (at most 25 s; KillWait must allow it) */
                       "pid=\n"
                       "stop() {\n"
                       "    [ -n \"$pid\" ] && kill \"$pid\" 2>/dev/null && wait \"$pid\"\n"
                       "    i=0 quiet=0\n"
                       "    while [ $i -lt 100 ] && [ $quiet -lt 10 ]; do\n"
                       "        if [ -n \"$(dk ps -aq --filter \"name=^/$name\\$\")\" ]; then\n"
                       "            dk rm -f \"$name\" >/dev/null 2>&1; quiet=0\n"
                       "        else\n"
                       "            quiet=$((quiet + 1))\n"
                       "        fi\n"
                       "        sleep 0.25; i=$((i + 1))\n"
                       "    done\n"
                       "    exit 143\n"
                       "}\n"
                       "trap stop TERM INT HUP\n");
}

int
ocra_run_slurm_script(const struct ocra_run_spec *spec, const char *docker_host,
                      struct ocra_buf *out, struct ocra_err *err)
{
    char *label;

    if (ocra_run_spec_check(spec, err) < 0)
        return -1;
    if (docker_host && *docker_host &&
        (strncmp(docker_host, "unix:///", 8) != 0 ||
         !ocra_utf8_valid(docker_host, strlen(docker_host))))
        return ocra_err_set(err, EINVAL, "docker host: need unix:///absolute/path");
    script_head(spec, docker_host, out);
    ocra_buf_puts(out, "dk run --rm --name \"$name\"");
    profile_flags(spec, out);
    label = ocra_xasprintf("io.ocra.event-id=%s", spec->event_id);
    flag(out, "--label", label);
    free(label);
    label = ocra_xasprintf("io.ocra.image=%s", spec->image);
    flag(out, "--label", label);
    free(label);
    flag(out, "--label", "io.ocra.runner=slurm");
    /* the job's own id: its reap, the epilog and the daemon's reconcile find it by this */
    ocra_buf_puts(out, " \\\n    --label \"" OCRA_RUN_LABEL_SLURM_JOB "=${SLURM_JOB_ID:-0}\"");
    if (spec->agent_dir && *spec->agent_dir) {
        /* the run's own agent socket directory: reached where the node is the daemon's host
         * (elsewhere the engine makes an empty directory, and the agent runs unreported) */
        label = ocra_xasprintf("%s:/run/ocra:ro", spec->agent_dir);
        flag(out, "--volume", label);
        free(label);
    }
    for (size_t i = 0; spec->env && spec->env[i]; i++)
        flag(out, "--env", spec->env[i]);
    if (spec->port) {
        label = ocra_xasprintf("OCRA_PORT=%d", ocra_run_port(spec));
        flag(out, "--env", label);
        free(label);
    }
    ocra_buf_puts(out, " \\\n    \"$@\"");
    flag(out, "--", spec->image);
    for (size_t i = 0; spec->cmd && spec->cmd[i]; i++) {
        ocra_buf_putc(out, ' ');
        sh_word(out, spec->cmd[i]);
    }
    ocra_buf_puts(out, " &\n"
                       "pid=$!\n"
                       "wait \"$pid\"\n"
                       "exit $?\n");
    return 0;
}

json_t *
ocra_run_slurm_submit_body(const struct ocra_run_spec *spec, const struct ocra_run_slurm_opts *o,
                           const char *name, const char *script)
{
    const char *wd = o->workdir && *o->workdir ? o->workdir : "/tmp";
    struct ocra_run_limits l;
    json_t *job = json_object();
    int gpus = spec->gpu_count ? spec->gpu_count : spec->n_gpu_devs;
    char *out = ocra_xasprintf("%s/%s-%%j.out", wd, name);

    ocra_run_limits_get(&spec->profile, &l);
    json_object_set_new(job, "name", json_string(name));
    if (o->partition && *o->partition)
        json_object_set_new(job, "partition", json_string(o->partition));
    if (gpus > 0) {
        char gres[32];

        snprintf(gres, sizeof(gres), "gpu:%d", gpus);
        json_object_set_new(job, "gres", json_string(gres));
    }
    json_object_set_new(job, "nodes", json_integer(1));
    json_object_set_new(job, "tasks", json_integer(1));
    json_object_set_new(job, "cpus_per_task",
                        json_integer((json_int_t)((l.cpu_milli + 999) / 1000)));
    json_object_set_new(job, "current_working_directory", json_string(wd));
    json_object_set_new(job, "standard_output", json_string(out));
    json_object_set_new(job, "comment", json_string(spec->image));
    json_object_set_new(job, "requeue", json_false());
    json_object_set_new(job, "environment", json_pack("{s:s}", "PATH", JOB_PATH));
    free(out);
    return json_pack("{s:s, s:o}", "script", script, "job", job);
}

/* ---- replies ---------------------------------------------------------------------------- */

static int
errno_of(long slurm_code, long status)
{
    if (slurm_code == SLURM_ERR_INVALID_JOB_ID)
        return ENOENT;
    if (slurm_code == SLURM_ERR_NODES_BUSY || slurm_code == SLURM_ERR_TOO_MANY_GRES)
        return ENOSPC;
    if (status == 401 || status == 403)
        return EACCES;
    return EIO;
}

/* The first entry of "errors" as err; 0 when there is none. */
static int
reply_errors(const json_t *doc, long status, struct ocra_err *err)
{
    const json_t *errors = json_object_get(doc, "errors"), *e;
    const char *what, *desc;
    char q1[160], q2[160];
    int64_t code;

    if (errors && !json_is_array(errors))
        return ocra_err_set(err, EPROTO, "slurmrestd: \"errors\" is not an array");
    if (!errors || json_array_size(errors) == 0)
        return 0;
    e = json_array_get(errors, 0);
    if (!json_is_object(e))
        return ocra_err_set(err, EPROTO, "slurmrestd: an error that is not an object");
    code = ocra_json_int(e, "error_number", ocra_json_int(e, "error_code", 0));
    what = ocra_json_str(e, "error");
    desc = ocra_json_str(e, "description");
    if (code <= 0 && what && strcmp(what, "Unspecified error") == 0 && !desc)
        /* what slurmctld's auth/jwt answers for a token it cannot verify, among other things */
        desc = "slurmctld says so of a token it rejects: check run.slurm.token_file";
    return ocra_err_set(
        err, errno_of((long)code, status), "slurmrestd: %s%s%s (Slurm error %" PRId64 ")",
        what ? ocra_str_escape(what, strlen(what), 120, q1, sizeof(q1)) : "error", desc ? ": " : "",
        desc ? ocra_str_escape(desc, strlen(desc), 120, q2, sizeof(q2)) : "", code);
}

int
ocra_run_slurm_reply(long status, const char *body, size_t len, json_t **out, struct ocra_err *err)
{
    json_t *doc = NULL;
    int ret = -1;

    if (status == 401 || status == 403) {
        ocra_err_set(err, EACCES,
                     "slurmrestd refused the token (HTTP %ld): check run.slurm.user and "
                     "run.slurm.token_file (an expired `scontrol token`?)",
                     status);
        goto out;
    }
    doc = ocra_json_parse(body ? body : "", len, 0, err);
    if (!doc) {
        ocra_err_set(err, EPROTO, "slurmrestd: the reply is not JSON (HTTP %ld)", status);
        goto out;
    }
    if (!json_is_object(doc)) {
        ocra_err_set(err, EPROTO, "slurmrestd: the reply is not a JSON object (HTTP %ld)", status);
        goto out;
    }
    if (reply_errors(doc, status, err) < 0)
        goto out;
    if (status < 200 || status > 299) {
        ocra_err_set(err, status == 404 ? ENOENT : EIO, "slurmrestd: HTTP %ld", status);
        goto out;
    }
    *out = doc;
    doc = NULL;
    ret = 0;
out:
    json_decref(doc);
    return ret;
}

/* A string field copied into out (size n); "" when null or absent; false when ill-typed. */
static bool
str_field(const json_t *j, const char *key, char *out, size_t n)
{
    const json_t *v = json_object_get(j, key);

    out[0] = '\0';
    if (!v || json_is_null(v))
        return true;
    if (!json_is_string(v) || json_string_length(v) >= n ||
        memchr(json_string_value(v), 0, json_string_length(v)))
        return false;
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return true;
}

static const struct {
    const char *state;
    enum ocra_run_slurm_phase phase;
} phases[] = {
    {"PENDING", OCRA_RUN_SLURM_PENDING},      {"CONFIGURING", OCRA_RUN_SLURM_PENDING},
    {"REQUEUED", OCRA_RUN_SLURM_PENDING},     {"REQUEUE_FED", OCRA_RUN_SLURM_PENDING},
    {"REQUEUE_HOLD", OCRA_RUN_SLURM_PENDING}, {"RESIZING", OCRA_RUN_SLURM_PENDING},
    {"SUSPENDED", OCRA_RUN_SLURM_PENDING},    {"RUNNING", OCRA_RUN_SLURM_RUNNING},
    {"COMPLETING", OCRA_RUN_SLURM_RUNNING},   {"STAGE_OUT", OCRA_RUN_SLURM_RUNNING},
    {"SIGNALING", OCRA_RUN_SLURM_RUNNING},    {"COMPLETED", OCRA_RUN_SLURM_EXITED},
    {"FAILED", OCRA_RUN_SLURM_EXITED},        {"CANCELLED", OCRA_RUN_SLURM_CANCELLED},
};

static enum ocra_run_slurm_phase
phase_of(const char *state)
{
    for (size_t i = 0; i < OCRA_ARRAY_LEN(phases); i++)
        if (strcmp(state, phases[i].state) == 0)
            return phases[i].phase;
    return OCRA_RUN_SLURM_LOST;
}

/* A wait status (exit code << 8 | signal) as a shell reports it. */
static int
exit_status(int64_t raw)
{
    if (raw & 0x7f)
        return 128 + (int)(raw & 0x7f);
    return (int)((raw >> 8) & 0xff);
}

/* A time in s since the epoch (start_time, end_time); 0 when absent, not a number or out of
 * range (2^40 s: the year 36812): the times are for people, not a reason to refuse the job. */
static int64_t
epoch_field(const json_t *j, const char *key)
{
    const json_t *v = json_object_get(j, key);

    if (!json_is_integer(v) || json_integer_value(v) <= 0 ||
        json_integer_value(v) > (INT64_C(1) << 40))
        return 0;
    return (int64_t)json_integer_value(v);
}

int
ocra_run_slurm_job_parse(const json_t *j, struct ocra_run_slurm_job *out, struct ocra_err *err)
{
    struct ocra_run_slurm_job job = {0};
    const json_t *id = json_object_get(j, "job_id"), *code = json_object_get(j, "exit_code");

    if (!json_is_object(j))
        return ocra_err_set(err, EPROTO, "slurmrestd: a job that is not an object");
    if (!json_is_integer(id) || json_integer_value(id) <= 0 || json_integer_value(id) > UINT32_MAX)
        return ocra_err_set(err, EPROTO, "slurmrestd: a job without a job_id 1..2^32-1");
    job.job_id = (uint32_t)json_integer_value(id);
    if (!str_field(j, "name", job.name, sizeof(job.name)) ||
        !str_field(j, "user_name", job.user, sizeof(job.user)) ||
        !str_field(j, "job_state", job.state, sizeof(job.state)) ||
        !str_field(j, "state_reason", job.reason, sizeof(job.reason)) ||
        !str_field(j, "nodes", job.nodes, sizeof(job.nodes)) ||
        !str_field(j, "comment", job.comment, sizeof(job.comment)))
        return ocra_err_set(err, EPROTO,
                            "slurmrestd: job %" PRIu32 ": a field that is not a short string",
                            job.job_id);
    if (!job.state[0])
        return ocra_err_set(err, EPROTO, "slurmrestd: job %" PRIu32 ": no job_state", job.job_id);
    if (code && !json_is_null(code) &&
        (!json_is_integer(code) || json_integer_value(code) < 0 ||
         json_integer_value(code) > 0xffff))
        return ocra_err_set(err, EPROTO, "slurmrestd: job %" PRIu32 ": exit_code not 0..65535",
                            job.job_id);
    job.phase = phase_of(job.state);
    job.start_time = epoch_field(j, "start_time");
    job.end_time = epoch_field(j, "end_time");
    if (job.phase == OCRA_RUN_SLURM_EXITED)
        job.exit_code = exit_status(json_is_integer(code) ? json_integer_value(code) : 0);
    *out = job;
    return 0;
}

static bool
active(const struct ocra_run_slurm_job *j)
{
    return j->phase == OCRA_RUN_SLURM_PENDING || j->phase == OCRA_RUN_SLURM_RUNNING;
}

/* Whether j is a better pick than best: the lowest id (first), else an active one, then the
 * newest. */
static bool
better(const struct ocra_run_slurm_job *j, const struct ocra_run_slurm_job *best, bool first)
{
    if (first)
        return j->job_id < best->job_id;
    return (active(j) && !active(best)) || (active(j) == active(best) && j->job_id > best->job_id);
}

static int
pick(const json_t *reply, const char *name, const char *user, bool first,
     struct ocra_run_slurm_job *out, struct ocra_err *err)
{
    const json_t *jobs = json_object_get(reply, "jobs");
    struct ocra_run_slurm_job best = {0}, j;
    bool found = false;

    if (!json_is_array(jobs))
        return ocra_err_set(err, EPROTO, "slurmrestd: no \"jobs\" array");
    for (size_t i = 0; i < json_array_size(jobs); i++) {
        if (ocra_run_slurm_job_parse(json_array_get(jobs, i), &j, err) < 0)
            return -1;
        if (strcmp(j.name, name) != 0 || strcmp(j.user, user) != 0 ||
            j.phase == OCRA_RUN_SLURM_CANCELLED || j.phase == OCRA_RUN_SLURM_LOST)
            continue;
        if (!found || better(&j, &best, first))
            best = j;
        found = true;
    }
    if (found)
        *out = best;
    return found ? 1 : 0;
}

int
ocra_run_slurm_jobs_find(const json_t *reply, const char *name, const char *user,
                         struct ocra_run_slurm_job *out, struct ocra_err *err)
{
    return pick(reply, name, user, false, out, err);
}

int
ocra_run_slurm_jobs_first(const json_t *reply, const char *name, const char *user,
                          struct ocra_run_slurm_job *out, struct ocra_err *err)
{
    return pick(reply, name, user, true, out, err);
}

/* ---- gres and the inventory ------------------------------------------------------------- */

/* "0-1,3" into *idx; false on anything malformed or an index >= 32 */
static bool
idx_parse(const char *s, size_t n, uint32_t *idx)
{
    size_t i = 0;

    while (i < n) {
        unsigned lo = 0, hi;
        size_t d = 0;

        for (; i < n && s[i] >= '0' && s[i] <= '9' && d < 3; i++, d++)
            lo = lo * 10 + (unsigned)(s[i] - '0');
        if (!d)
            return false;
        hi = lo;
        if (i < n && s[i] == '-') {
            hi = 0;
            for (i++, d = 0; i < n && s[i] >= '0' && s[i] <= '9' && d < 3; i++, d++)
                hi = hi * 10 + (unsigned)(s[i] - '0');
            if (!d)
                return false;
        }
        if (hi < lo || hi >= 32)
            return false;
        for (unsigned k = lo; k <= hi; k++)
            *idx |= 1u << k;
        if (i < n && s[i++] != ',')
            return false;
    }
    return true;
}

/* One entry "gpu[:type]:count[(...)]" (n bytes); other gres names leave the sums alone. */
static int
gres_entry(const char *e, size_t n, char *model, int *count, uint32_t *idx, struct ocra_err *err)
{
    const char *paren = memchr(e, '(', n), *num, *colon;
    size_t head = paren ? (size_t)(paren - e) : n;
    int64_t c = 0;
    size_t d = 0;

    if (head < 4 || strncmp(e, "gpu:", 4) != 0)
        return 0;
    /* the count is after the last ':' of the head, the type between the first and the last */
    for (colon = e + head; colon > e && colon[-1] != ':'; colon--)
        ;
    num = colon;
    for (; num + d < e + head && num[d] >= '0' && num[d] <= '9' && d < 6; d++)
        c = c * 10 + (num[d] - '0');
    if (!d || num + d != e + head)
        return ocra_err_set(err, EPROTO, "gres: no GPU count in \"%.*s\"",
                            (int)(head > 64 ? 64 : head), e);
    if (colon - 1 > e + 4 && !model[0]) {
        size_t tl = (size_t)(colon - 1 - (e + 4));

        if (tl >= OCRA_SCHED_MODEL_MAX)
            return ocra_err_set(err, EPROTO, "gres: a GPU type of %zu bytes", tl);
        memcpy(model, e + 4, tl);
        model[tl] = '\0';
    }
    if (*count + c > 4096)
        return ocra_err_set(err, EPROTO, "gres: more than 4096 GPUs on a node");
    *count += (int)c;
    if (paren) {
        const char *in = paren + 1, *end = memchr(in, ')', n - head - 1);

        if (!end || end != e + n - 1)
            return ocra_err_set(err, EPROTO, "gres: unbalanced parenthesis");
        if ((size_t)(end - in) > 4 && strncmp(in, "IDX:", 4) == 0 &&
            strncmp(in + 4, "N/A)", 4) != 0 && !idx_parse(in + 4, (size_t)(end - in - 4), idx))
            return ocra_err_set(err, EPROTO, "gres: bad IDX list");
    }
    return 0;
}

int
ocra_run_slurm_gres_gpus(const char *gres, char *model, int *count, uint32_t *idx,
                         struct ocra_err *err)
{
    const char *p = gres ? gres : "";
    char m[OCRA_SCHED_MODEL_MAX] = "";
    int c = 0;
    uint32_t ix = 0;

    if (strcmp(p, "(null)") == 0 || strcmp(p, "N/A") == 0)
        p = "";
    while (*p) {
        /* entries are split by commas outside parentheses */
        size_t n = 0;
        int depth = 0;

        for (; p[n] && (depth || p[n] != ','); n++) {
            depth += p[n] == '(' ? 1 : p[n] == ')' ? -1 : 0;
            if (depth < 0 || depth > 1)
                return ocra_err_set(err, EPROTO, "gres: unbalanced parenthesis");
        }
        if (depth)
            return ocra_err_set(err, EPROTO, "gres: unbalanced parenthesis");
        if (gres_entry(p, n, m, &c, &ix, err) < 0)
            return -1;
        p += n + (p[n] == ',');
    }
    memcpy(model, m, sizeof(m));
    *count = c;
    *idx = ix;
    return 0;
}

static int
node_parse(const json_t *j, struct ocra_run_slurm_node *out, struct ocra_err *err)
{
    struct ocra_sched_node *n = &out->node;
    const json_t *parts = json_object_get(j, "partitions"),
                 *flags = json_object_get(j, "state_flags");
    char gres[512], used[512], used_model[OCRA_SCHED_MODEL_MAX];
    int total = 0, alloc = 0;
    uint32_t idx = 0, ignored = 0;
    size_t pn = 0;

    if (!json_is_object(j) || !str_field(j, "name", n->name, sizeof(n->name)) || !n->name[0] ||
        !str_field(j, "gres", gres, sizeof(gres)) ||
        !str_field(j, "gres_used", used, sizeof(used)) ||
        !str_field(j, "state", out->state, sizeof(out->state)))
        return ocra_err_set(err, EPROTO, "slurmrestd: a node without a name, or a long field");
    if (ocra_run_slurm_gres_gpus(gres, n->gpu_model, &total, &ignored, err) < 0 ||
        ocra_run_slurm_gres_gpus(used, used_model, &alloc, &idx, err) < 0)
        return ocra_err_wrap(err, "node %s", n->name);
    out->gpus = total;
    out->gpus_alloc = alloc > total ? total : alloc;
    n->gpu_count = total > OCRA_SCHED_MAX_GPUS ? OCRA_SCHED_MAX_GPUS : total;
    for (int i = 0, left = out->gpus_alloc; i < n->gpu_count; i++) {
        bool taken = idx ? (idx >> i) & 1u : left > 0;

        n->gpu_free_milli[i] = taken ? 0 : OCRA_SCHED_MILLI;
        left -= taken;
    }
    n->cpu_milli = ocra_json_int(j, "cpus", 0) * 1000;
    n->cpu_free = n->cpu_milli - ocra_json_int(j, "alloc_cpus", 0) * 1000;
    n->ram_mib = ocra_json_int(j, "real_memory", 0);
    n->ram_free = n->ram_mib - ocra_json_int(j, "alloc_memory", 0);
    if (n->cpu_milli < 0 || n->cpu_milli > OCRA_SCHED_QTY_MAX || n->ram_mib < 0 ||
        n->ram_mib > OCRA_SCHED_QTY_MAX || n->cpu_free < 0 || n->ram_free < 0)
        return ocra_err_set(err, EPROTO, "node %s: CPUs or memory out of bounds", n->name);
    for (size_t i = 0; json_is_array(flags) && i < json_array_size(flags); i++) {
        const char *f = json_string_value(json_array_get(flags, i));
        size_t sl = strlen(out->state);

        if (f && sl + strlen(f) + 2 <= sizeof(out->state))
            snprintf(out->state + sl, sizeof(out->state) - sl, "+%s", f);
    }
    for (size_t i = 0; json_is_array(parts) && i < json_array_size(parts); i++) {
        const char *p = json_string_value(json_array_get(parts, i));
        int w;

        if (!p || !*p || strchr(p, ','))
            return ocra_err_set(err, EPROTO, "node %s: a partition that is not a name", n->name);
        w = snprintf(out->partitions + pn, sizeof(out->partitions) - pn, "%s%s", pn ? "," : "", p);
        if (w < 0 || (size_t)w >= sizeof(out->partitions) - pn)
            return ocra_err_set(err, EPROTO, "node %s: too many partitions", n->name);
        pn += (size_t)w;
    }
    return 0;
}

/* Whether the comma-separated list has name. */
static bool
list_has(const char *list, const char *name)
{
    size_t n = strlen(name);

    for (const char *p = list; *p;) {
        size_t w = strcspn(p, ",");

        if (w == n && strncmp(p, name, n) == 0)
            return true;
        p += w + (p[w] == ',');
    }
    return false;
}

static int
parts_parse(const json_t *reply, struct ocra_run_slurm_inventory *inv, struct ocra_err *err)
{
    const json_t *parts = json_object_get(reply, "partitions");

    if (!json_is_array(parts))
        return ocra_err_set(err, EPROTO, "slurmrestd: no \"partitions\" array");
    if (json_array_size(parts) > OCRA_SCHED_MAX_NODES)
        return ocra_err_set(err, EPROTO, "slurmrestd: too many partitions");
    inv->parts = ocra_xcalloc(json_array_size(parts) + 1, sizeof(*inv->parts));
    for (size_t i = 0; i < json_array_size(parts); i++) {
        struct ocra_run_slurm_partition *p = &inv->parts[inv->n_parts];
        const json_t *j = json_array_get(parts, i);

        if (!json_is_object(j) || !str_field(j, "name", p->name, sizeof(p->name)) || !p->name[0] ||
            !str_field(j, "state", p->state, sizeof(p->state)))
            return ocra_err_set(err, EPROTO,
                                "slurmrestd: a partition without a name, or a long field");
        inv->n_parts++;
    }
    for (size_t i = 0; i < inv->n_parts; i++) {
        struct ocra_run_slurm_partition *p = &inv->parts[i];

        for (size_t k = 0; k < inv->n_nodes; k++) {
            const struct ocra_run_slurm_node *n = &inv->nodes[k];

            if (!list_has(n->partitions, p->name))
                continue;
            p->n_nodes++;
            p->gpus_total += n->gpus;
            p->gpus_alloc += n->gpus_alloc;
            if (n->gpus > p->max_node_gpus)
                p->max_node_gpus = n->gpus;
        }
    }
    return 0;
}

int
ocra_run_slurm_inventory_parse(const json_t *nodes, const json_t *parts,
                               struct ocra_run_slurm_inventory *out, struct ocra_err *err)
{
    struct ocra_run_slurm_inventory inv = {0};
    const json_t *list = json_object_get(nodes, "nodes");

    if (!json_is_array(list))
        return ocra_err_set(err, EPROTO, "slurmrestd: no \"nodes\" array");
    if (json_array_size(list) > OCRA_SCHED_MAX_NODES)
        return ocra_err_set(err, EPROTO, "slurmrestd: more than %d nodes", OCRA_SCHED_MAX_NODES);
    inv.nodes = ocra_xcalloc(json_array_size(list) + 1, sizeof(*inv.nodes));
    for (size_t i = 0; i < json_array_size(list); i++) {
        if (node_parse(json_array_get(list, i), &inv.nodes[i], err) < 0)
            goto fail;
        inv.n_nodes++;
    }
    if (parts && parts_parse(parts, &inv, err) < 0)
        goto fail;
    *out = inv;
    return 0;
fail:
    ocra_run_slurm_inventory_fini(&inv);
    return -1;
}

void
ocra_run_slurm_inventory_fini(struct ocra_run_slurm_inventory *inv)
{
    if (!inv)
        return;
    free(inv->nodes);
    free(inv->parts);
    *inv = (struct ocra_run_slurm_inventory){0};
}
