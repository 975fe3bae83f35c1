/* SPDX-License-Identifier: Apache-2.0 */
/*
 * run_hosts.c: the docker runner over several engines, one per placement node
 * (inventory.nodes docker_host). Each host gets its own docker runner (run_docker.c), made on
 * first use; a workload starts on the engine of the node its allocation names, and is found
 * again on whichever engine has a container of its name. What each engine answered is kept
 * in a process-wide table (the host health) that placement, `ocra daemon --check` and the
 * metrics read: a node whose engine does not answer is down until it answers again.
 */
#include "run/run_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEALTH_MAX 256 /* nodes tracked */

/* ---- host health ------------------------------------------------------------------------ */

static pthread_mutex_t health_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char node[OCRA_SCHED_NAME_MAX];
    struct ocra_run_host_health h;
} health[HEALTH_MAX];
static size_t n_health;

bool
ocra_run_hosts_silent(const struct ocra_err *err)
{
    switch (err->code) {
    case ECONNREFUSED:
    case EHOSTUNREACH:
    case EHOSTDOWN:
    case EIO: /* curl's other transport failures: TLS handshake, reset */
        return true;
    default:
        return false;
    }
}

void
ocra_run_hosts_note(const char *node, const struct ocra_err *err)
{
    int64_t now = ocra_time_wall_ms();
    bool up = !err || !err->code;
    size_t i;

    pthread_mutex_lock(&health_mu);
    for (i = 0; i < n_health && strcmp(health[i].node, node) != 0; i++)
        ;
    if (i == n_health && n_health < HEALTH_MAX)
        snprintf(health[n_health++].node, sizeof(health[0].node), "%s", node);
    if (i < n_health) {
        struct ocra_run_host_health *h = &health[i].h;

        if (!h->known || h->up != up) {
            h->changed_ms = now;
            if (up)
                ocra_log_info("node %s: its docker engine answers: up", node);
            else
                ocra_log_warn("node %s: its docker engine does not answer: down (%s)", node,
                              err->msg);
        }
        h->known = true;
        h->up = up;
        h->seen_ms = now;
        snprintf(h->error, sizeof(h->error), "%.255s", up ? "" : err->msg);
    }
    pthread_mutex_unlock(&health_mu);
}

void
ocra_run_hosts_health(const char *node, struct ocra_run_host_health *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&health_mu);
    for (size_t i = 0; i < n_health; i++)
        if (strcmp(health[i].node, node) == 0)
            *out = health[i].h;
    pthread_mutex_unlock(&health_mu);
}

/* GET /version, which an engine answers at once: a timeout is silence too (a wait's timeout
 * is not: the workload runs on). */
static bool
version_silent(const struct ocra_err *err)
{
    return err->code == ETIMEDOUT || ocra_run_hosts_silent(err);
}

static struct ocra_image_docker *
host_engine(const struct ocra_run_host *h, long timeout_ms, struct ocra_err *err)
{
    const struct ocra_image_docker_opts o = {.host = h->endpoint,
                                             .tls_ca = h->tls_ca,
                                             .tls_cert = h->tls_cert,
                                             .tls_key = h->tls_key,
                                             .timeout_ms = timeout_ms};

    return ocra_image_docker_new(&o, err);
}

size_t
ocra_run_hosts_refresh(const struct ocra_run_host *hosts, size_t n, int64_t max_age_ms,
                       long timeout_ms)
{
    size_t down = 0;

    for (size_t i = 0; i < n; i++) {
        struct ocra_run_host_health h;
        struct ocra_err err = {0};
        struct ocra_image_docker *d;

        ocra_run_hosts_health(hosts[i].node, &h);
        if (h.known && ocra_time_wall_ms() - h.seen_ms < max_age_ms) {
            down += !h.up;
            continue;
        }
        d = host_engine(&hosts[i], timeout_ms, &err);
        ocra_run_hosts_note(hosts[i].node, d ? NULL : &err); /* unusable: down as well */
        down += !d;
        ocra_image_docker_free(d);
    }
    return down;
}

/* ---- the runner ------------------------------------------------------------------------- */

struct host {
    struct ocra_run_host conf; /* its strings are own's */
    char *own[5];
    struct ocra_runner *r; /* made at the engine's first answer, then kept */
};

struct hosts_runner {
    struct host *v;
    size_t n;
    long timeout_ms;
};

static struct hosts_runner *
impl(struct ocra_runner *r)
{
    return r->impl;
}

/* The runner of host i, made now when it is not yet (its engine asked for its version:
 * EHOSTDOWN naming the node when it does not answer). */
static struct ocra_runner *
host_runner(struct hosts_runner *hr, size_t i, struct ocra_err *err)
{
    struct host *h = &hr->v[i];
    const struct ocra_image_docker_opts o = {.host = h->conf.endpoint,
                                             .tls_ca = h->conf.tls_ca,
                                             .tls_cert = h->conf.tls_cert,
                                             .tls_key = h->conf.tls_key,
                                             .timeout_ms = hr->timeout_ms};

    if (h->r)
        return h->r;
    if (!(h->r = ocra_run_docker_new(&o, err))) {
        ocra_run_hosts_note(h->conf.node, err); /* silent or unusable (too old): down */
        if (version_silent(err))
            err->code = EHOSTDOWN;
        ocra_err_wrap(err, "node %s", h->conf.node);
        return NULL;
    }
    ocra_run_hosts_note(h->conf.node, NULL);
    return h->r;
}

/* After an op on host i: a transport failure marks it down (EHOSTDOWN naming the node), an
 * answer marks it up. Returns rc. */
static int
host_done(struct hosts_runner *hr, size_t i, int rc, struct ocra_err *err)
{
    struct host *h = &hr->v[i];

    if (rc < 0 && ocra_run_hosts_silent(err)) {
        /* the runner stays: its /events window goes on where it ended once the engine answers */
        ocra_run_hosts_note(h->conf.node, err);
        err->code = EHOSTDOWN;
        ocra_err_wrap(err, "node %s", h->conf.node);
    } else if (rc == 0 || err->code) {
        ocra_run_hosts_note(h->conf.node, NULL);
    }
    return rc;
}

static int
host_by_node(struct hosts_runner *hr, const char *node, struct ocra_err *err)
{
    if (!node || !*node)
        return ocra_err_set(err, EINVAL,
                            "no placement node: with inventory.nodes docker_host, a workload "
                            "runs on its allocation's node");
    for (size_t i = 0; i < hr->n; i++)
        if (strcmp(hr->v[i].conf.node, node) == 0)
            return (int)i;
    return ocra_err_set(err, ENOENT,
                        "node %s has no docker_host (inventory.nodes): name its engine, or "
                        "leave every node's docker_host empty for run.docker_host",
                        node);
}

/* The host whose engine has the workload ref (a name or an id): its index; ENOENT when no
 * engine has it and all answered; EHOSTDOWN naming a node that did not answer (it may be
 * there). */
static int
host_of(struct ocra_runner *r, const char *ref, struct ocra_err *err)
{
    struct hosts_runner *hr = impl(r);
    struct ocra_err down = {0};

    for (size_t i = 0; i < hr->n; i++) {
        struct ocra_run_state st;
        struct ocra_err e = {0};
        struct ocra_runner *hrun = host_runner(hr, i, &e);
        int rc;

        if (hrun) {
            rc = host_done(hr, i, hrun->inspect(hrun, ref, &st, &e), &e);
            if (rc == 0 && st.found)
                return (int)i;
            if (rc == 0)
                continue;
        }
        if (e.code != EHOSTDOWN) {
            *err = e;
            return -1;
        }
        if (!down.code)
            down = e;
    }
    if (down.code) {
        *err = down;
        return ocra_err_wrap(err, "%s may run there", ref);
    }
    return ocra_err_set(err, ENOENT, "no engine has %s", ref);
}

static int
hosts_start(struct ocra_runner *r, const struct ocra_run_spec *spec, struct ocra_run_job *job,
            struct ocra_err *err)
{
    struct hosts_runner *hr = impl(r);
    struct ocra_runner *hrun;
    int i = host_by_node(hr, spec->node, err), rc;

    if (i < 0 || !(hrun = host_runner(hr, (size_t)i, err)))
        return -1;
    /* the node's engine runs what it has: pulled by digest there first */
    rc = ocra_run_spec_check(spec, err);
    if (rc == 0 && hrun->prepare)
        rc = hrun->prepare(hrun, spec->image, NULL, err);
    if (rc == 0)
        rc = hrun->start(hrun, spec, job, err);
    return host_done(hr, (size_t)i, rc, err);
}

/* The runner of the host that has job (a name or an id), into *i. */
static struct ocra_runner *
job_host(struct ocra_runner *r, const struct ocra_run_job *job, size_t *i, struct ocra_err *err)
{
    int h = host_of(r, job->id[0] ? job->id : job->name, err);

    if (h < 0)
        return NULL;
    *i = (size_t)h;
    return impl(r)->v[h].r;
}

static int
hosts_wait(struct ocra_runner *r, const struct ocra_run_job *job, long timeout_ms, int *exit_code,
           struct ocra_err *err)
{
    size_t i;
    struct ocra_runner *h = job_host(r, job, &i, err);

    return h ? host_done(impl(r), i, h->wait(h, job, timeout_ms, exit_code, err), err) : -1;
}

static int
hosts_logs(struct ocra_runner *r, const struct ocra_run_job *job, unsigned tail, char **out,
           size_t *len, struct ocra_err *err)
{
    size_t i;
    struct ocra_runner *h = job_host(r, job, &i, err);

    return h ? host_done(impl(r), i, h->logs(h, job, tail, out, len, err), err) : -1;
}

static int
hosts_stop(struct ocra_runner *r, const struct ocra_run_job *job, int grace_s, struct ocra_err *err)
{
    size_t i;
    struct ocra_runner *h = job_host(r, job, &i, err);

    if (!h && err->code == ENOENT) { /* on no engine: not running */
        memset(err, 0, sizeof(*err));
        return 0;
    }
    return h ? host_done(impl(r), i, h->stop(h, job, grace_s, err), err) : -1;
}

static int
hosts_remove(struct ocra_runner *r, const struct ocra_run_job *job, struct ocra_err *err)
{
    size_t i;
    struct ocra_runner *h = job_host(r, job, &i, err);

    return h ? host_done(impl(r), i, h->remove(h, job, err), err) : -1;
}

static int
hosts_times(struct ocra_runner *r, const struct ocra_run_job *job, int64_t *started_ms,
            int64_t *finished_ms, struct ocra_err *err)
{
    size_t i;
    struct ocra_runner *h = job_host(r, job, &i, err);

    return h ? host_done(impl(r), i, h->times(h, job, started_ms, finished_ms, err), err) : -1;
}

static int
hosts_inspect(struct ocra_runner *r, const char *ref, struct ocra_run_state *out,
              struct ocra_err *err)
{
    int i = host_of(r, ref, err);

    memset(out, 0, sizeof(*out));
    if (i < 0 && err->code == ENOENT) { /* every engine answered: none has it */
        memset(err, 0, sizeof(*err));
        return 0;
    }
    if (i < 0)
        return -1;
    return host_done(impl(r), (size_t)i, impl(r)->v[i].r->inspect(impl(r)->v[i].r, ref, out, err),
                     err);
}

/* Every host's containers appended to *out; EHOSTDOWN (after the others) when one did not
 * answer: a caller that acts on what is absent must not take a silent engine for empty. */
static int
hosts_containers(struct ocra_runner *r, const char *event_id, struct ocra_run_container **out,
                 size_t *n, struct ocra_err *err)
{
    struct hosts_runner *hr = impl(r);
    struct ocra_run_container *all = NULL;
    size_t n_all = 0;
    int ret = 0;

    for (size_t i = 0; i < hr->n; i++) {
        struct ocra_run_container *v = NULL;
        struct ocra_runner *h;
        size_t k = 0;
        struct ocra_err e = {0};

        if (!(h = host_runner(hr, i, &e)) ||
            host_done(hr, i, h->containers(h, event_id, &v, &k, &e), &e) < 0) {
            if (!ret)
                *err = e;
            ret = -1;
            continue;
        }
        all = ocra_xrealloc(all, (n_all + k + 1) * sizeof(*all));
        memcpy(all + n_all, v, k * sizeof(*v));
        n_all += k;
        free(v);
    }
    if (ret < 0) {
        free(all);
        return -1;
    }
    *out = all;
    *n = n_all;
    return 0;
}

static int
hosts_discard(struct ocra_runner *r, const char *container_id, struct ocra_err *err)
{
    int i = host_of(r, container_id, err);

    if (i < 0 && err->code == ENOENT) { /* gone already */
        memset(err, 0, sizeof(*err));
        return 0;
    }
    if (i < 0)
        return -1;
    return host_done(impl(r), (size_t)i,
                     impl(r)->v[i].r->discard(impl(r)->v[i].r, container_id, err), err);
}

/* The event's containers on every engine that answers (each host's reap); those on a silent
 * one are left for the reconcile, which removes them as strays once it answers. */
static int
hosts_reap(struct ocra_runner *r, const char *event_id, const struct ocra_run_job *job,
           struct ocra_run_container **removed, size_t *n_removed, struct ocra_err *err)
{
    struct hosts_runner *hr = impl(r);
    struct ocra_run_container *all = NULL;
    size_t n_all = 0;
    int ret = 0;

    for (size_t i = 0; i < hr->n; i++) {
        struct ocra_run_container *v = NULL;
        struct ocra_runner *h;
        size_t k = 0;
        struct ocra_err e = {0};

        if (!(h = host_runner(hr, i, &e)) ||
            host_done(hr, i, h->reap(h, event_id, job, removed ? &v : NULL, &k, &e), &e) < 0) {
            /* a silent engine's containers wait for the reconcile (strays) once it answers */
            if (e.code == EHOSTDOWN) {
                ocra_log_warn("reap event=%s: %s (its containers there are removed as strays "
                              "once it answers)",
                              event_id, e.msg);
                continue;
            }
            if (!ret)
                *err = e;
            ret = -1;
            continue;
        }
        if (removed && k) {
            all = ocra_xrealloc(all, (n_all + k) * sizeof(*all));
            memcpy(all + n_all, v, k * sizeof(*v));
        }
        n_all += k;
        free(v);
    }
    if (removed)
        *removed = all;
    else
        free(all);
    if (n_removed)
        *n_removed = n_all;
    return ret;
}

static int
hosts_probe(struct ocra_runner *r, char *what, size_t n, struct ocra_err *err)
{
    struct hosts_runner *hr = impl(r);
    size_t used = 0;

    what[0] = '\0';
    for (size_t i = 0; i < hr->n; i++) {
        char one[64] = "";
        struct ocra_runner *h = host_runner(hr, i, err);

        if (!h || h->probe(h, one, sizeof(one), err) < 0)
            return -1;
        used += (size_t)snprintf(what + used, used < n ? n - used : 0, "%s%s %s", i ? ", " : "",
                                 hr->v[i].conf.node, one);
        if (used >= n)
            used = n - 1;
    }
    return 0;
}

/* Each engine's /events for its share of timeout_ms, in turn; one that does not answer is
 * skipped (marked down), and the error after the others says the caller should look again. */
static int
hosts_watch(struct ocra_runner *r, const struct ocra_run_job *jobs, size_t n, long timeout_ms,
            ocra_run_ended_fn *ended, void *arg, struct ocra_err *err)
{
    struct hosts_runner *hr = impl(r);
    long share = timeout_ms / (long)(hr->n ? hr->n : 1);
    int ret = 0;

    for (size_t i = 0; i < hr->n; i++) {
        struct ocra_err e = {0};
        struct ocra_runner *h = host_runner(hr, i, &e);

        if (!h || host_done(hr, i, h->watch(h, jobs, n, share, ended, arg, &e), &e) < 0) {
            if (!ret)
                *err = e;
            ret = -1;
        }
    }
    return ret;
}

static void
hosts_free(struct ocra_runner *r)
{
    struct hosts_runner *hr = impl(r);

    for (size_t i = 0; i < hr->n; i++) {
        ocra_runner_free(hr->v[i].r);
        for (size_t k = 0; k < OCRA_ARRAY_LEN(hr->v[i].own); k++)
            free(hr->v[i].own[k]);
    }
    free(hr->v);
    free(hr);
    free(r);
}

static char *
dup_or_null(const char *s)
{
    return s && *s ? ocra_xstrdup(s) : NULL;
}

struct ocra_runner *
ocra_run_hosts_new(const struct ocra_run_opts *o, struct ocra_err *err)
{
    struct hosts_runner *hr = ocra_xcalloc(1, sizeof(*hr));
    struct ocra_runner *r = ocra_xcalloc(1, sizeof(*r));

    *r = (struct ocra_runner){.name = "docker",
                              .start = hosts_start,
                              .wait = hosts_wait,
                              .logs = hosts_logs,
                              .stop = hosts_stop,
                              .remove = hosts_remove,
                              .times = hosts_times,
                              .reap = hosts_reap,
                              .watch = hosts_watch,
                              .inspect = hosts_inspect,
                              .containers = hosts_containers,
                              .discard = hosts_discard,
                              .probe = hosts_probe,
                              .supports = OCRA_RUN_DOCKER_SUPPORTS & ~OCRA_RUN_LOCAL_ENGINE,
                              .free = hosts_free,
                              .impl = hr};
    hr->timeout_ms = o->docker_timeout_ms;
    hr->v = ocra_xcalloc(o->n_hosts, sizeof(*hr->v));
    for (size_t i = 0; i < o->n_hosts; i++) {
        const struct ocra_run_host *h = &o->hosts[i];
        struct ocra_image_docker_endpoint ep;

        if (ocra_image_docker_endpoint_parse(h->endpoint, &ep, err) < 0 ||
            (ep.scheme == OCRA_IMAGE_DOCKER_SSH &&
             ocra_err_set(err, ENOTSUP,
                          "ssh:// is not supported: forward the engine's socket (ssh -L "
                          "/local.sock:/var/run/docker.sock) and name unix:///local.sock, or "
                          "use tcp:// with TLS") < 0) ||
            (ep.scheme == OCRA_IMAGE_DOCKER_TCP &&
             (!h->tls_ca || !*h->tls_ca || !h->tls_cert || !*h->tls_cert || !h->tls_key ||
              !*h->tls_key) &&
             ocra_err_set(err, EINVAL,
                          "tcp:// needs TLS client certificates: docker_tls_ca, docker_tls_cert "
                          "and docker_tls_key (or run.docker_tls.*)") < 0)) {
            ocra_err_wrap(err, "inventory.nodes %s docker_host", h->node);
            hr->n = i;
            ocra_runner_free(r);
            return NULL;
        }
        hr->v[i].own[0] = ocra_xstrdup(h->node);
        hr->v[i].own[1] = ocra_xstrdup(h->endpoint);
        hr->v[i].own[2] = dup_or_null(h->tls_ca);
        hr->v[i].own[3] = dup_or_null(h->tls_cert);
        hr->v[i].own[4] = dup_or_null(h->tls_key);
        hr->v[i].conf = (struct ocra_run_host){.node = hr->v[i].own[0],
                                               .endpoint = hr->v[i].own[1],
                                               .tls_ca = hr->v[i].own[2],
                                               .tls_cert = hr->v[i].own[3],
                                               .tls_key = hr->v[i].own[4]};
        hr->n = i + 1;
    }
    return r;
}
