/* SPDX-License-Identifier: Apache-2.0 */
/*
 * run_docker.c: the docker runner, the embedded default. It talks to one Docker engine through
 * the image module's Engine API client (its socket and negotiated API version): inspect,
 * create, start, wait, logs, stop and delete of containers, and the reap of an event's
 * replicas by their labels (run_reap.c). A start first looks for the
 * container named after the event id and adopts it when it is the same workload, so a retry
 * after a crash never makes a second one; a race with another creator (409) is settled the
 * same way. What the engine answers is outside input: ids are checked before they go into a
 * path, and the log stream is demultiplexed with every frame bounded.
 */
#include "run/run_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MAX (8u << 20)        /* a log tail held in memory */
#define WAIT_DEFAULT_MS 86400000L /* wait without a timeout: a day */
#define ID_LEN 64

struct docker_runner {
    struct ocra_image_docker *d;
    int64_t since_ns; /* watch: where the next window of /events starts (0: now) */
};

/* GET /events: the ends of containers that carry ocra's event label; URL-encoded
 * {"type":["container"],"event":["die","oom","stop"],"label":["io.ocra.event-id"]} */
#define EVENTS_FILTER                                                                              \
    "%7B%22type%22%3A%5B%22container%22%5D%2C%22event%22%3A%5B%22die%22%2C%22oom%22%2C%22stop%22"  \
    "%5D%2C%22label%22%3A%5B%22io.ocra.event-id%22%5D%7D"
#define EVENTS_OVERLAP_NS INT64_C(1000000000) /* windows overlap: an end is never missed */

static struct ocra_image_docker *
engine(struct ocra_runner *r)
{
    return ((struct docker_runner *)r->impl)->d;
}

/* One request; a status outside 2xx and `also_ok` becomes an error with the engine's message. */
static int
request(struct ocra_runner *r, const char *method, const char *path, const char *body,
        long timeout_ms, long also_ok, struct ocra_image_docker_reply *out, struct ocra_err *err)
{
    if (ocra_image_docker_request(engine(r), method, path, body, timeout_ms, LOG_MAX, out, err) < 0)
        return -1;
    if ((out->status >= 200 && out->status < 300) || out->status == also_ok)
        return 0;
    ocra_image_docker_reply_err(out, err);
    ocra_image_docker_reply_fini(out);
    return -1;
}

static json_t *
reply_json(const struct ocra_image_docker_reply *rep, struct ocra_err *err)
{
    json_t *doc = ocra_json_parse(rep->body ? rep->body : "", rep->len, 0, err);

    if (doc && !json_is_object(doc)) {
        json_decref(doc);
        ocra_err_set(err, EPROTO, "the engine's reply is not a JSON object");
        return NULL;
    }
    return doc;
}

static int
id_take(const char *id, struct ocra_run_job *job, struct ocra_err *err)
{
    if (!id || strlen(id) != ID_LEN || !ocra_hex_is(id, ID_LEN))
        return ocra_err_set(err, EPROTO, "the engine's container id is not 64 hex digits");
    snprintf(job->id, sizeof(job->id), "%s", id);
    return 0;
}

static int
job_check(const struct ocra_run_job *job, struct ocra_err *err)
{
    if (strlen(job->id) != ID_LEN || !ocra_hex_is(job->id, ID_LEN))
        return ocra_err_set(err, EINVAL, "job: no container id");
    return 0;
}

/* GET /containers/{name}/json: 1 and *out when it exists, 0 when not, -1 on error. */
static int
inspect(struct ocra_runner *r, const char *name, json_t **out, struct ocra_err *err)
{
    struct ocra_image_docker_reply rep = {0};
    char *path = ocra_xasprintf("/containers/%s/json", name);
    int ret = -1;

    if (request(r, "GET", path, NULL, 0, 404, &rep, err) < 0)
        goto out;
    ret = 0;
    if (rep.status == 404)
        goto out;
    *out = reply_json(&rep, err);
    ret = *out ? 1 : -1;
out:
    ocra_image_docker_reply_fini(&rep);
    free(path);
    return ret;
}

/* An existing container is adopted when it is the same workload: image reference, event and
 * replica. */
static int
adopt(const json_t *doc, const struct ocra_run_spec *spec, struct ocra_run_job *job,
      bool *needs_start, struct ocra_err *err)
{
    const json_t *config = json_object_get(doc, "Config");
    const char *image = ocra_json_str(config, "Image");
    const char *event = ocra_json_str(json_object_get(config, "Labels"), "io.ocra.event-id");
    const char *state = ocra_json_str(json_object_get(doc, "State"), "Status");
    /* absent on containers made before replicas: replica 0 */
    const char *replica = ocra_json_str(json_object_get(config, "Labels"), "io.ocra.replica");
    char q[96], want[16];

    if (!image || strcmp(image, spec->image) != 0)
        return ocra_err_set(err, EEXIST,
                            "container %s exists for another image (%s), not %s: remove it or "
                            "run the new image under a new event",
                            job->name,
                            image ? ocra_str_escape(image, strlen(image), 80, q, sizeof(q)) : "?",
                            spec->image);
    if (!event || strcmp(event, spec->event_id) != 0)
        return ocra_err_set(err, EEXIST, "container %s exists for another event id", job->name);
    snprintf(want, sizeof(want), "%d", spec->replica);
    if (strcmp(replica ? replica : "0", want) != 0)
        return ocra_err_set(err, EEXIST, "container %s exists for another replica", job->name);
    if (id_take(ocra_json_str(doc, "Id"), job, err) < 0)
        return -1;
    job->adopted = true;
    *needs_start = state && strcmp(state, "created") == 0;
    return 0;
}

/* POST /containers/create?name=: 1 and job->id when created, 0 when the name is taken. */
static int
create(struct ocra_runner *r, const struct ocra_run_spec *spec, struct ocra_run_job *job,
       struct ocra_err *err)
{
    struct ocra_image_docker_reply rep = {0};
    json_t *body = ocra_run_docker_create_body(spec, err), *doc = NULL;
    char *text = NULL, *path = ocra_xasprintf("/containers/create?name=%s", job->name);
    int ret = -1;

    if (!body)
        goto out;
    text = ocra_json_compact(body);
    if (request(r, "POST", path, text, 0, 409, &rep, err) < 0) {
        if (err && err->code == ENOENT)
            ocra_err_wrap(err, "image %s is not in the engine (ocra does not pull)", spec->image);
        goto out;
    }
    ret = 0;
    if (rep.status == 409)
        goto out;
    doc = reply_json(&rep, err);
    ret = doc && id_take(ocra_json_str(doc, "Id"), job, err) == 0 ? 1 : -1;
out:
    json_decref(doc);
    json_decref(body);
    ocra_image_docker_reply_fini(&rep);
    free(text);
    free(path);
    return ret;
}

/* The container for spec: adopted when it exists, else created. */
static int
create_or_adopt(struct ocra_runner *r, const struct ocra_run_spec *spec, struct ocra_run_job *job,
                bool *needs_start, struct ocra_err *err)
{
    json_t *doc = NULL;
    int found, ret = -1;

    for (int attempt = 0; attempt < 2; attempt++) {
        found = inspect(r, job->name, &doc, err);
        if (found < 0)
            goto out;
        if (found) {
            ret = adopt(doc, spec, job, needs_start, err);
            goto out;
        }
        found = create(r, spec, job, err);
        if (found < 0)
            goto out;
        if (found) {
            *needs_start = true;
            ret = 0;
            goto out;
        }
        /* 409: another creator won between inspect and create; adopt its container */
    }
    ocra_err_set(err, EAGAIN, "container %s: created and removed concurrently", job->name);
out:
    json_decref(doc);
    return ret;
}

static int
docker_start(struct ocra_runner *r, const struct ocra_run_spec *spec, struct ocra_run_job *out,
             struct ocra_err *err)
{
    struct ocra_image_docker_reply rep = {0};
    struct ocra_run_job job = {0};
    bool needs_start = false;
    char *path = NULL;
    int ret = -1;

    if (ocra_run_spec_check(spec, err) < 0)
        goto out;
    ocra_run_replica_name(spec->event_id, spec->replica, job.name);
    if (create_or_adopt(r, spec, &job, &needs_start, err) < 0)
        goto out;
    if (needs_start) {
        path = ocra_xasprintf("/containers/%s/start", job.id);
        if (request(r, "POST", path, NULL, 0, 304, &rep, err) < 0)
            goto out;
    }
    *out = job;
    ret = 0;
out:
    if (ret < 0)
        ocra_err_wrap(err, "docker run %s", job.name[0] ? job.name : "(invalid spec)");
    ocra_image_docker_reply_fini(&rep);
    free(path);
    return ret;
}

static int
docker_wait(struct ocra_runner *r, const struct ocra_run_job *job, long timeout_ms, int *exit_code,
            struct ocra_err *err)
{
    struct ocra_image_docker_reply rep = {0};
    json_t *doc = NULL, *code;
    char *path = NULL;
    int ret = -1;

    if (job_check(job, err) < 0)
        goto out;
    path = ocra_xasprintf("/containers/%s/wait?condition=not-running", job->id);
    if (request(r, "POST", path, NULL, timeout_ms > 0 ? timeout_ms : WAIT_DEFAULT_MS, 0, &rep,
                err) < 0 ||
        !(doc = reply_json(&rep, err)))
        goto out;
    code = json_object_get(doc, "StatusCode");
    if (!json_is_integer(code) || json_integer_value(code) < 0 || json_integer_value(code) > 255) {
        ocra_err_set(err, EPROTO, "wait: no StatusCode 0..255 in the engine's reply");
        goto out;
    }
    *exit_code = (int)json_integer_value(code);
    ret = 0;
out:
    if (ret < 0)
        ocra_err_wrap(err, "wait for %s", job->name);
    json_decref(doc);
    ocra_image_docker_reply_fini(&rep);
    free(path);
    return ret;
}

static int
docker_logs(struct ocra_runner *r, const struct ocra_run_job *job, unsigned tail, char **out,
            size_t *len, struct ocra_err *err)
{
    struct ocra_image_docker_reply rep = {0};
    struct ocra_buf b;
    char *path = NULL, n[16] = "all";
    int ret = -1;

    ocra_buf_init(&b);
    if (job_check(job, err) < 0)
        goto out;
    if (tail)
        snprintf(n, sizeof(n), "%u", tail);
    path = ocra_xasprintf("/containers/%s/logs?stdout=1&stderr=1&tail=%s", job->id, n);
    if (request(r, "GET", path, NULL, 0, 0, &rep, err) < 0 ||
        ocra_run_docker_demux(rep.body, rep.len, &b, err) < 0)
        goto out;
    *len = b.len;
    *out = ocra_buf_take(&b);
    ret = 0;
out:
    if (ret < 0)
        ocra_err_wrap(err, "logs of %s", job->name);
    ocra_buf_fini(&b);
    ocra_image_docker_reply_fini(&rep);
    free(path);
    return ret;
}

static int
docker_stop(struct ocra_runner *r, const struct ocra_run_job *job, int grace_s,
            struct ocra_err *err)
{
    struct ocra_image_docker_reply rep = {0};
    char *path = NULL;
    int ret = -1;

    if (job_check(job, err) < 0)
        goto out;
    path = ocra_xasprintf("/containers/%s/stop?t=%d", job->id, grace_s > 0 ? grace_s : 0);
    /* 304: it was not running; the wait is the grace period plus some slack */
    ret = request(r, "POST", path, NULL, (grace_s > 0 ? grace_s : 0) * 1000L + 30000L, 304, &rep,
                  err);
out:
    if (ret < 0)
        ocra_err_wrap(err, "stop %s", job->name);
    ocra_image_docker_reply_fini(&rep);
    free(path);
    return ret;
}

static int
docker_remove(struct ocra_runner *r, const struct ocra_run_job *job, struct ocra_err *err)
{
    struct ocra_image_docker_reply rep = {0};
    char *path = NULL;
    int ret = -1;

    if (job_check(job, err) < 0)
        goto out;
    path = ocra_xasprintf("/containers/%s?force=1", job->id);
    ret = request(r, "DELETE", path, NULL, 0, 0, &rep, err);
out:
    if (ret < 0)
        ocra_err_wrap(err, "remove %s", job->name);
    ocra_image_docker_reply_fini(&rep);
    free(path);
    return ret;
}

/* One of State's times; a missing one is 0 (not happened), a malformed one EPROTO. */
static int
state_time(const json_t *state, const char *key, int64_t *ms, struct ocra_err *err)
{
    const char *v = ocra_json_str(state, key);

    *ms = 0;
    if (v && ocra_run_time_parse(v, ms, err) < 0)
        return ocra_err_wrap(err, "State.%s", key);
    return 0;
}

static int
docker_times(struct ocra_runner *r, const struct ocra_run_job *job, int64_t *started_ms,
             int64_t *finished_ms, struct ocra_err *err)
{
    const json_t *state;
    json_t *doc = NULL;
    int64_t s = 0, f = 0;
    int ret = -1;

    if (job_check(job, err) < 0)
        goto out;
    ret = inspect(r, job->id, &doc, err);
    if (ret == 0)
        ocra_err_set(err, ENOENT, "no container %s", job->id);
    if (ret <= 0) {
        ret = -1;
        goto out;
    }
    state = json_object_get(doc, "State");
    ret = -1;
    if (state_time(state, "StartedAt", &s, err) < 0 || state_time(state, "FinishedAt", &f, err) < 0)
        goto out;
    /* a running container keeps the end of its previous run (a restart): not its end */
    if (json_is_true(json_object_get(state, "Running")) || f < s)
        f = 0;
    *started_ms = s;
    *finished_ms = f;
    ret = 0;
out:
    if (ret < 0)
        ocra_err_wrap(err, "times of %s", job->name);
    json_decref(doc);
    return ret;
}

/* The event's containers but replica 0's: the replicas, whatever their number and state. */
static int
docker_reap(struct ocra_runner *r, const char *event_id, const struct ocra_run_job *job,
            struct ocra_run_container **removed, size_t *n_removed, struct ocra_err *err)
{
    struct ocra_run_container *v = NULL;
    size_t n = 0, k = 0;
    int ret = -1;

    (void)job;
    if (ocra_run_containers_list(engine(r), event_id, &v, &n, err) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i].runner, "docker") != 0 || v[i].replica == 0)
            continue;
        if (ocra_run_container_remove(engine(r), v[i].id, err) < 0)
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
        ocra_err_wrap(err, "reap the replicas of event %s", event_id);
    free(v);
    return ret;
}

static int
docker_inspect(struct ocra_runner *r, const char *ref, struct ocra_run_state *out,
               struct ocra_err *err)
{
    const json_t *state;
    const char *status, *id;
    json_t *doc = NULL;
    int rc;

    memset(out, 0, sizeof(*out));
    out->exit_code = -1;
    if ((rc = inspect(r, ref, &doc, err)) < 0)
        return ocra_err_wrap(err, "inspect %s", ref);
    if (rc == 0)
        return 0;
    state = json_object_get(doc, "State");
    status = ocra_json_str(state, "Status");
    id = ocra_json_str(doc, "Id");
    out->found = true;
    out->ended = status && (!strcmp(status, "exited") || !strcmp(status, "dead"));
    out->exit_code = (int)json_integer_value(json_object_get(state, "ExitCode"));
    snprintf(out->id, sizeof(out->id), "%s", id ? id : "");
    json_decref(doc);
    return 0;
}

/* The engine runs what it has: pull by digest first (a manifest only when it has the image). */
static int
docker_prepare(struct ocra_runner *r, const char *image, int *pulled, struct ocra_err *err)
{
    return ocra_image_docker_pull(engine(r), image, NULL, pulled, err);
}

static int
docker_containers(struct ocra_runner *r, const char *event_id, struct ocra_run_container **out,
                  size_t *n, struct ocra_err *err)
{
    return ocra_run_containers_list(engine(r), event_id, out, n, err);
}

static int
docker_discard(struct ocra_runner *r, const char *container_id, struct ocra_err *err)
{
    return ocra_run_container_remove(engine(r), container_id, err);
}

/* The engine answered when the runner was made (ocra_image_docker_new() asks its version). */
static int
docker_probe(struct ocra_runner *r, char *what, size_t n, struct ocra_err *err)
{
    (void)err;
    snprintf(what, n, "API %s", ocra_image_docker_api_version(engine(r)));
    return 0;
}

/* Follows the engine's /events for a window of timeout_ms: the request ends when the window
 * does (until), and the next window starts a little before it ended, so that an event the
 * engine published late is still seen (reported twice at worst). */
static int
docker_watch(struct ocra_runner *r, const struct ocra_run_job *jobs, size_t n, long timeout_ms,
             ocra_run_ended_fn *ended, void *arg, struct ocra_err *err)
{
    struct docker_runner *dr = r->impl;
    struct ocra_image_docker_reply rep = {0};
    int64_t now = ocra_time_wall_ms() * INT64_C(1000000), until;
    char path[512];
    int ret = -1;

    (void)jobs, (void)n;
    if (timeout_ms < 100)
        timeout_ms = 100;
    until = now + (int64_t)timeout_ms * 1000000;
    if (!dr->since_ns || dr->since_ns > now)
        dr->since_ns = now - EVENTS_OVERLAP_NS;
    snprintf(path, sizeof(path),
             "/events?since=%" PRId64 ".%09" PRId64 "&until=%" PRId64 ".%09" PRId64 "&filters=%s",
             dr->since_ns / 1000000000, dr->since_ns % 1000000000, until / 1000000000,
             until % 1000000000, EVENTS_FILTER);
    if (request(r, "GET", path, NULL, timeout_ms + 30000L, 0, &rep, err) < 0)
        goto out;
    if (ocra_run_docker_events_parse(rep.body, rep.len, ended, arg, err) < 0)
        goto out;
    dr->since_ns = until - EVENTS_OVERLAP_NS;
    ret = 0;
out:
    if (ret < 0)
        ocra_err_wrap(err, "the engine's events");
    ocra_image_docker_reply_fini(&rep);
    return ret;
}

static void
docker_free(struct ocra_runner *r)
{
    struct docker_runner *dr = r->impl;

    ocra_image_docker_free(dr->d);
    free(dr);
    free(r);
}

struct ocra_runner *
ocra_run_docker_new(const struct ocra_image_docker_opts *opts, struct ocra_err *err)
{
    struct ocra_image_docker *d = ocra_image_docker_new(opts, err);
    struct ocra_runner *r;
    struct docker_runner *dr;

    if (!d)
        return NULL;
    dr = ocra_xcalloc(1, sizeof(*dr));
    dr->d = d;
    r = ocra_xcalloc(1, sizeof(*r));
    *r = (struct ocra_runner){.name = "docker",
                              .start = docker_start,
                              .wait = docker_wait,
                              .logs = docker_logs,
                              .stop = docker_stop,
                              .remove = docker_remove,
                              .times = docker_times,
                              .reap = docker_reap,
                              .watch = docker_watch,
                              .inspect = docker_inspect,
                              .prepare = docker_prepare,
                              .containers = docker_containers,
                              .discard = docker_discard,
                              .probe = docker_probe,
                              .supports = OCRA_RUN_DOCKER_SUPPORTS,
                              .free = docker_free,
                              .impl = dr};
    return r;
}

/* ---- the event stream ------------------------------------------------------------------ */

/* One line of /events; 1 when it was an end reported, 0 when skipped, -1 when not JSON. */
static int
event_line(const char *line, size_t len, ocra_run_ended_fn *ended, void *arg, struct ocra_err *err)
{
    const json_t *actor, *attrs;
    const char *type, *action, *id, *event, *replica;
    struct ocra_err perr = {0};
    json_t *doc = ocra_json_parse(line, len, 0, &perr);
    uint64_t rep = 0;
    int ret = 0;

    if (!doc)
        return ocra_err_set(err, EPROTO, "an event line is not JSON: %s", perr.msg);
    type = ocra_json_str(doc, "Type");
    action = ocra_json_str(doc, "Action");
    actor = json_object_get(doc, "Actor");
    attrs = json_object_get(actor, "Attributes");
    id = ocra_json_str(actor, "ID");
    if (!type || strcmp(type, "container") != 0 || !action ||
        (strcmp(action, "die") != 0 && strcmp(action, "stop") != 0 && strcmp(action, "oom") != 0) ||
        !id || strlen(id) != ID_LEN || !ocra_hex_is(id, ID_LEN))
        goto out;
    event = ocra_json_str(attrs, "io.ocra.event-id");
    if (event &&
        (!*event || strlen(event) > OCRA_RUN_EVENT_MAX || !ocra_utf8_valid(event, strlen(event))))
        event = NULL;
    replica = ocra_json_str(attrs, "io.ocra.replica");
    if (!replica || ocra_parse_u64(replica, OCRA_RUN_MAX_REPLICAS - 1, &rep, NULL) < 0)
        rep = UINT64_MAX;
    ended(arg, id, event, rep == UINT64_MAX ? -1 : (int)rep);
    ret = 1;
out:
    json_decref(doc);
    return ret;
}

int
ocra_run_docker_events_parse(const char *body, size_t len, ocra_run_ended_fn *ended, void *arg,
                             struct ocra_err *err)
{
    size_t off = 0;
    int n = 0, rc;

    while (off < len) {
        const char *nl = memchr(body + off, '\n', len - off);
        size_t l = nl ? (size_t)(nl - (body + off)) : len - off;

        if (l > 0 && (rc = event_line(body + off, l, ended, arg, err)) < 0)
            return ocra_err_wrap(err, "events at byte %zu", off);
        else if (l > 0)
            n += rc;
        off += l + 1;
    }
    return n;
}

/* ---- the log stream -------------------------------------------------------------------- */

int
ocra_run_docker_demux(const void *data, size_t len, struct ocra_buf *out, struct ocra_err *err)
{
    const unsigned char *p = data;
    size_t off = 0;

    while (off < len) {
        uint32_t size;

        if (len - off < 8)
            return ocra_err_set(err, EPROTO, "log stream: a frame header cut at byte %zu", off);
        if (p[off] > 2 || p[off + 1] || p[off + 2] || p[off + 3])
            return ocra_err_set(err, EPROTO, "log stream: bad frame header at byte %zu", off);
        size = (uint32_t)p[off + 4] << 24 | (uint32_t)p[off + 5] << 16 | (uint32_t)p[off + 6] << 8 |
               (uint32_t)p[off + 7];
        off += 8;
        if (size > len - off)
            return ocra_err_set(err, EPROTO, "log stream: a frame of %u bytes cut at byte %zu",
                                size, off);
        ocra_buf_append(out, p + off, size);
        off += size;
    }
    return 0;
}
