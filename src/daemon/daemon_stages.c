/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon_stages.c: the ops of the stages after the plan, each idempotent and keyed by the
 * event id: toolchain (the artifact fetched and verified, the toolchain image found or
 * built: src/build), push (the model image assembled and pushed, tagged), sign (signature
 * and the image record), allocate (src/sched: node and GPUs, recorded in the journal),
 * run (src/run: the image by digest in the sandbox, the agent socket mounted) and complete
 * (the workload's exit, the allocation released). Each op rebuilds what it needs from the
 * journaled event (spec, plan: both deterministic) and the outputs of the stages before it.
 */
#include "daemon/daemon_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "build/build.h"
#include "metrics/metrics.h"
#include "run/run.h"
#include "sched/sched.h"

#define MIB (INT64_C(1) << 20)
#define LOG_TAIL_LINES 20
#define COMPLETE_LOOK_MS 250 /* the complete stage's look at a workload that may still run */

/* ---- the build stages -------------------------------------------------------------------- */

struct built {
    struct ocra_daemon_prepared p;
    struct ocra_build *b;
    char *url, *repo, *cache, *agent;
};

static void
built_fini(struct built *w)
{
    ocra_build_free(w->b);
    ocra_daemon_prepared_fini(&w->p);
    free(w->url);
    free(w->repo);
    free(w->cache);
    free(w->agent);
}

/* The build of the event's image, from the configuration. EINVAL for what the operator must
 * fix (no registry, no agent binary): the event is dead-lettered with that reason. With load,
 * the engine of the docker runner is handed the image as it is pushed. */
static int
build_open(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job, bool load,
           struct built *w, struct ocra_err *err)
{
    const struct ocra_config *cfg = ctx->cfg;
    struct ocra_build_opts bo = {0};
    char *prefix = NULL;
    int ret = -1;

    if (!*cfg->build.registry)
        return ocra_err_set(err, EINVAL, "build.registry is not set: nowhere to push images");
    if (ocra_daemon_prepare(ctx, job->event, &w->p, err) < 0)
        return -1;
    if (ocra_build_registry_parse(cfg->build.registry, &w->url, &prefix, err) < 0)
        goto out;
    w->repo = ocra_xasprintf("%s/%s", prefix, w->p.spec->name);
    w->cache = ocra_build_cache_dir(cfg->build.cache_dir);
    w->agent = ocra_build_agent_find(cfg->build.agent);
    if (!w->agent) {
        ocra_err_set(err, EINVAL, "no ocra-agent binary: set build.agent or $OCRA_AGENT");
        goto out;
    }
    bo.registry_url = w->url;
    bo.repo = w->repo;
    bo.toolchain_repo = cfg->build.toolchain_repo;
    bo.cache_dir = w->cache;
    bo.agent = w->agent;
    bo.docker_socket = ocra_config_docker_socket(cfg);
    bo.build_network = cfg->build.network == 1 ? "none" : "host";
    bo.sign_key = *cfg->build.sign_key ? cfg->build.sign_key : NULL;
    ocra_daemon_fetch_options(cfg, &bo);
    bo.weight_gzip = cfg->build.weight_gzip;
    bo.load_socket = load && (ocra_daemon_runner_supports(cfg) & OCRA_RUN_LOCAL_ENGINE)
                         ? ocra_config_docker_socket(cfg)
                         : NULL;
    bo.load_min_size = (uint64_t)cfg->build.engine_load_min_mib << 20;
    w->b = ocra_build_new(&bo, w->p.spec, w->p.plan, w->p.event, err);
    ret = w->b ? 0 : -1;
out:
    free(prefix);
    return ret;
}

/* A rejected artifact: the reason reported on-chain is the class in fixed words, never what
 * the artifact's server answered (an oracle on the hosts the daemon reaches); the journal
 * keeps the error in "detail" for the operator. */
static json_t *
artifact_verdict(const struct ocra_build *b, const struct ocra_err *err)
{
    json_t *v = ocra_daemon_verdict("rejected", ocra_build_rejection(b));
    char text[OCRA_ERR_MAX + 8];

    json_object_set_new(v, "detail", json_string(ocra_err_text(err, text, sizeof(text))));
    return v;
}

/* The last lines of a toolchain build's log, for the stage's output (null: none). */
static json_t *
log_tail(const char *log)
{
    const char *p = ocra_build_log_tail(log, LOG_TAIL_LINES);

    return p ? json_string(p) : json_null();
}

static int
op_toolchain(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job, const json_t *inputs,
             json_t **output, struct ocra_err *err)
{
    struct built w = {0};
    int ret = -1;

    (void)inputs;
    if (build_open(ctx, job, false, &w, err) < 0)
        goto out;
    if (ocra_build_fetch(w.b, err) < 0 || ocra_build_toolchain(w.b, err) < 0) {
        if (ocra_build_rejection(w.b) || ocra_build_base_refused(w.b)) {
            *output = ocra_build_rejection(w.b) ? artifact_verdict(w.b, err)
                                                : ocra_daemon_verdict_err("rejected", err);
            ret = 0;
        } else if (ocra_build_log_tail(ocra_build_log(w.b), LOG_TAIL_LINES)) {
            ocra_log_warn("event=%s stage=toolchain build log tail: %s", job->event->id,
                          ocra_build_log_tail(ocra_build_log(w.b), LOG_TAIL_LINES));
        }
        goto out;
    }
    ocra_daemon_metrics_build(ocra_build_toolchain_cache_hit(w.b), ocra_build_bytes_uploaded(w.b));
    *output = json_pack("{s:s, s:s, s:b, s:b, s:o}", "toolchain", ocra_build_toolchain_ref(w.b),
                        "digest", ocra_build_toolchain_digest(w.b), "cacheHit",
                        ocra_build_toolchain_cache_hit(w.b), "built",
                        ocra_build_toolchain_built(w.b), "logTail", log_tail(ocra_build_log(w.b)));
    ret = 0;
out:
    built_fini(&w);
    return ret;
}

static int
op_push(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job, const json_t *inputs,
        json_t **output, struct ocra_err *err)
{
    struct built w = {0};
    const char *const *tags;
    const char *host;
    json_t *jt;
    size_t n;
    int ret = -1;

    (void)inputs;
    if (build_open(ctx, job, true, &w, err) < 0)
        goto out;
    if (ocra_build_model(w.b, err) < 0 || ocra_build_tag(w.b, err) < 0) {
        if (ocra_build_rejection(w.b) || ocra_build_base_refused(w.b)) {
            *output = ocra_build_rejection(w.b) ? artifact_verdict(w.b, err)
                                                : ocra_daemon_verdict_err("rejected", err);
            ret = 0;
        }
        goto out;
    }
    ocra_metrics_add(ocra_metrics_std()->upload_bytes, NULL,
                     (double)ocra_build_bytes_uploaded(w.b));
    host = strstr(w.url, "://") + 3;
    tags = ocra_build_tags(w.b, &n);
    jt = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(jt, json_string(tags[i]));
    {
        char *ref = ocra_xasprintf("%s/%s@%s", host, w.repo, ocra_build_digest(w.b));

        /* engine: whether the runner's engine has the image already (its pull is cheap) */
        *output = json_pack("{s:s, s:s, s:s, s:o, s:s, s:s?}", "digest", ocra_build_digest(w.b),
                            "registry", w.url, "repo", w.repo, "tags", jt, "image", ref, "engine",
                            ocra_build_engine_load(w.b));
        free(ref);
    }
    ret = 0;
out:
    built_fini(&w);
    return ret;
}

static int
op_sign(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job, const json_t *inputs,
        json_t **output, struct ocra_err *err)
{
    struct built w = {0};
    int ret = -1;

    (void)inputs;
    if (build_open(ctx, job, false, &w, err) < 0)
        goto out;
    /* the model step finds its blobs and manifest in the registry: nothing is uploaded */
    if (ocra_build_model(w.b, err) < 0 || ocra_build_sign(w.b, err) < 0 ||
        ocra_build_record(w.b, ctx->st, err) < 0)
        goto out;
    *output = json_pack("{s:s, s:s?}", "digest", ocra_build_digest(w.b), "signature",
                        *ocra_build_signature(w.b) ? ocra_build_signature(w.b) : NULL);
    ret = 0;
out:
    built_fini(&w);
    return ret;
}

/* ---- allocate ---------------------------------------------------------------------------- */

/* One allocation at a time across the workers: the allocator is rebuilt from the journal's
 * held rows for each, so two workers never place on the same free devices. */
static pthread_mutex_t alloc_mu = PTHREAD_MUTEX_INITIALIZER;

/* Runs fn with the allocator of the journal, under alloc_mu. */
static int
with_allocator(struct ocra_daemon_ctx *ctx,
               int (*fn)(struct ocra_sched_allocator *a, void *arg, struct ocra_err *err),
               void *arg, struct ocra_err *err)
{
    static char none[] = "";
    struct ocra_sched_inventory inv;
    struct ocra_sched_allocator *a = NULL;
    struct ocra_config cfg;
    int ret = -1;

    pthread_mutex_lock(&alloc_mu);
    /* the docker runner runs on this machine: Slurm's nodes are Slurm's to place on; the
     * slurm runner's jobs run on Slurm's nodes only (Slurm places them: the allocation checks
     * that the workload fits the cluster and records the placement ocra expects) */
    cfg = *ctx->cfg;
    if (ocra_run_kind_supports(cfg.run.runner) & OCRA_RUN_PLACES_BY_COUNT)
        cfg.n_nodes = 0, cfg.inventory_local = false;
    else
        cfg.run.slurm.url = none;
    if (ocra_daemon_inventory(&cfg, &inv, NULL, err) < 0) {
        ocra_err_wrap(err, "inventory");
        goto out;
    }
    ocra_daemon_hosts_drop_down(&cfg, &inv); /* no new placements on a silent engine */
    if (ocra_sched_allocator_open(ctx->st, &inv, (enum ocra_sched_policy)ctx->cfg->sched.policy,
                                  ctx->cfg->sched.gpu_memory_headroom_mib, &a, err) < 0)
        goto out;
    ret = fn(a, arg, err);
out:
    ocra_sched_allocator_free(a);
    ocra_sched_inventory_fini(&inv);
    pthread_mutex_unlock(&alloc_mu);
    return ret;
}

int
ocra_daemon_with_allocator(struct ocra_daemon_ctx *ctx,
                           int (*fn)(struct ocra_sched_allocator *a, void *arg,
                                     struct ocra_err *err),
                           void *arg, struct ocra_err *err)
{
    return with_allocator(ctx, fn, arg, err);
}

void
ocra_daemon_replica_req(const struct ocra_daemon_prepared *p, struct ocra_sched_req *req)
{
    const struct ocra_plan_resources *r = ocra_plan_resources_get(p->plan);

    memset(req, 0, sizeof(*req));
    req->gpus = (int)r->gpus;
    req->gpu_mem_mib = r->gpus ? (int64_t)(r->need_bytes / r->gpus / (uint64_t)MIB) : 0;
    if (*ocra_plan_driver_min(p->plan) && r->gpus)
        (void)ocra_sched_driver_parse(ocra_plan_driver_min(p->plan), &req->min_driver, NULL);
    req->cpu_milli = (int64_t)r->cpus * 1000;
    req->ram_mib = (int64_t)(r->memory_bytes / (uint64_t)MIB);
}

struct alloc_call {
    const char *event_id;
    struct ocra_store *st;
    struct ocra_sched_req req;
    struct ocra_sched_alloc out;
    bool existed;
    bool queued; /* no room now, or others queued first: the queue's dispatcher decides */
    char reason[OCRA_ERR_MAX];
    char node[OCRA_SCHED_NAME_MAX];
};

/* 0 when r fits some node of the cluster once it is empty; else ENOSPC naming the filter (the
 * queue's own check: an event is never queued behind others for room that cannot come). */
static int
can_ever_fit(struct ocra_sched_allocator *a, const char *event_id, const struct ocra_sched_req *r,
             struct ocra_err *err)
{
    const struct ocra_sched_queue_conf conf = {.policy = OCRA_SCHED_Q_FIFO};
    const struct ocra_sched_queued q = {.id = event_id, .req = *r};
    struct ocra_sched_plan plan;
    int ret;

    ocra_sched_plan_init(&plan);
    ret = ocra_sched_queue_decide(ocra_sched_allocator_cluster(a), &conf, 0, NULL, 0, &q, 1, &plan,
                                  NULL, err);
    ocra_sched_plan_fini(&plan);
    return ret;
}

/* The event's allocation: the one held (the queue's dispatcher placed it, or an earlier
 * attempt did), else a new one unless other events wait in the queue (they go first, in the
 * queue's order), else c->queued when there is no room now. */
static int
do_allocate(struct ocra_sched_allocator *a, void *arg, struct ocra_err *err)
{
    struct alloc_call *c = arg;
    const struct ocra_sched_node *n;
    struct ocra_store_alloc held;
    bool found = false;
    int64_t ahead = 0;

    if (ocra_store_alloc_held(c->st, c->event_id, 0, &held, &found, err) < 0 ||
        (!found && ocra_store_queue_count(c->st, &ahead, err) < 0))
        return -1;
    if (!found && ahead > 0) {
        if (can_ever_fit(a, c->event_id, &c->req, err) < 0)
            return -1;
        c->queued = true;
        snprintf(c->reason, sizeof(c->reason), "%lld event%s queued before it", (long long)ahead,
                 ahead == 1 ? " is" : "s are");
        return 0;
    }
    if (ocra_sched_allocate(a, c->event_id, 0, &c->req, &c->out, &c->existed, err) < 0) {
        if (err->code != EAGAIN)
            return -1;
        c->queued = true; /* room frees when a workload ends: waiting is not failing */
        snprintf(c->reason, sizeof(c->reason), "%s", err->msg);
        memset(err, 0, sizeof(*err));
        return 0;
    }
    n = ocra_sched_cluster_node(ocra_sched_allocator_cluster(a), (size_t)c->out.node);
    snprintf(c->node, sizeof(c->node), "%s", n ? n->name : "?");
    return 0;
}

int
ocra_daemon_place(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job,
                  const struct ocra_sched_req *req, json_t **output, struct ocra_err *err)
{
    struct alloc_call c = {.event_id = job->event->id, .st = ctx->st, .req = *req};
    json_t *gpus;

    if (with_allocator(ctx, do_allocate, &c, err) < 0) {
        if (err->code != ENOSPC)
            return -1;
        /* fits no node of the inventory: waiting cannot help */
        *output = ocra_daemon_verdict_err("failed", err);
        return 0;
    }
    if (c.queued) { /* uncounted; the dispatcher wakes it when the queue's policy starts it */
        *output = ocra_daemon_verdict("queued", c.reason);
        json_object_set_new(
            *output, "request",
            ocra_daemon_queue_request(&c.req, ocra_daemon_estimate_s(job->event->spec)));
        return 0;
    }
    gpus = json_array();
    for (int i = 0; i < c.out.n_devs; i++)
        json_array_append_new(gpus, json_integer(c.out.devs[i]));
    *output = json_pack("{s:s, s:o, s:i, s:I, s:I, s:b}", "node", c.node, "gpus", gpus, "gpuMilli",
                        c.out.gpu_milli, "cpuMilli", (json_int_t)c.out.cpu_milli, "ramMib",
                        (json_int_t)c.out.ram_mib, "existed", c.existed);
    return 0;
}

static int
op_allocate(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job, const json_t *inputs,
            json_t **output, struct ocra_err *err)
{
    struct ocra_daemon_prepared p = {0};
    struct ocra_sched_req req;
    int ret;

    (void)inputs;
    if (ocra_daemon_prepare(ctx, job->event, &p, err) < 0)
        return -1;
    ocra_daemon_replica_req(&p, &req);
    /* a cluster that picks the devices (Slurm) reports no GPU memory or driver */
    if (ocra_run_kind_supports(ctx->cfg->run.runner) & OCRA_RUN_PLACES_BY_COUNT)
        req.gpu_mem_mib = 0, req.min_driver = 0;
    ret = ocra_daemon_place(ctx, job, &req, output, err);
    ocra_daemon_prepared_fini(&p);
    return ret;
}

static int
do_release(struct ocra_sched_allocator *a, void *arg, struct ocra_err *err)
{
    const char *const *event_id = arg;

    return ocra_sched_allocator_release(a, *event_id, -1, NULL, err);
}

int
ocra_daemon_release(struct ocra_daemon_ctx *ctx, const char *event_id, struct ocra_err *err)
{
    if (with_allocator(ctx, do_release, &event_id, err) < 0)
        return -1;
    ocra_daemon_queue_dispatch(ctx); /* room freed: what waits for it may start */
    return 0;
}

/* ---- run and complete -------------------------------------------------------------------- */

static struct ocra_runner *
runner_new(const struct ocra_config *cfg, struct ocra_err *err)
{
    const struct ocra_run_slurm_opts so = {
        .url = cfg->run.slurm.url,
        .user = cfg->run.slurm.user,
        .token_file = cfg->run.slurm.token_file,
        .partition = cfg->run.slurm.partition,
        .docker_host = cfg->run.slurm.docker_host,
        .workdir = cfg->run.slurm.workdir,
        .poll_interval_ms = (long)cfg->run.slurm.poll_interval_ms,
    };
    struct ocra_run_opts o = {
        .kind = cfg->run.runner, .docker_socket = ocra_config_docker_socket(cfg), .slurm = &so};
    struct ocra_run_host *hosts;
    struct ocra_runner *r;

    ocra_daemon_docker_hosts(cfg, &hosts, &o.n_hosts);
    o.hosts = hosts;
    r = ocra_run_new(&o, err);
    free(hosts);
    return r;
}

/* The workload as the run stage starts it and the complete stage finds it again. */
static int
run_spec_fill(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job, const json_t *inputs,
              const struct ocra_daemon_prepared *p, uint8_t *devs, struct ocra_run_spec *rs,
              struct ocra_err *err)
{
    const struct ocra_config *cfg = ctx->cfg;
    const struct ocra_plan_resources *r = ocra_plan_resources_get(p->plan);
    const json_t *alloc = json_object_get(inputs, "allocate");
    const char *image =
        json_string_value(json_object_get(json_object_get(inputs, "push"), "image"));
    size_t i;
    json_t *g;

    if (!image)
        return ocra_err_set(err, EINVAL, "no image: the push stage's output has none");
    memset(rs, 0, sizeof(*rs));
    rs->event_id = job->event->id;
    rs->image = image;
    rs->node = ocra_json_str(alloc, "node"); /* the engine of that node, where nodes name one */
    rs->port = (int)p->spec->workload.port;
    json_array_foreach(json_object_get(alloc, "gpus"), i, g)
    {
        if (i >= OCRA_RUN_MAX_GPUS)
            break;
        devs[i] = (uint8_t)json_integer_value(g);
        rs->n_gpu_devs = (int)i + 1;
    }
    rs->gpu_devs = rs->n_gpu_devs ? devs : NULL;
    rs->gpu_count = (int)r->gpus;
    if (ocra_run_kind_supports(cfg->run.runner) & OCRA_RUN_PLACES_BY_COUNT)
        rs->n_gpu_devs = 0, rs->gpu_devs = NULL; /* the cluster picks the devices */
    /* rs->agent_dir: each run's own, from ocra_daemon_agent_run() where it starts */
    rs->profile.memory_mib = (int64_t)(r->memory_bytes / (uint64_t)MIB);
    rs->profile.cpu_milli = (int64_t)r->cpus * 1000;
    rs->profile.shm_mib = (int64_t)(r->shm_bytes / (uint64_t)MIB);
    rs->profile.writable_rootfs = cfg->run.writable_rootfs;
    rs->profile.network_host = cfg->run.network_host;
    rs->profile.no_pids_limit = cfg->run.no_pids_limit;
    rs->profile.run_as_root = cfg->run.run_as_root;
    return 0;
}

struct ocra_runner *
ocra_daemon_runner_new(const struct ocra_config *cfg, struct ocra_err *err)
{
    return runner_new(cfg, err);
}

int
ocra_daemon_run_spec(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job,
                     const json_t *inputs, const struct ocra_daemon_prepared *p, uint8_t *devs,
                     struct ocra_run_spec *rs, struct ocra_err *err)
{
    return run_spec_fill(ctx, job, inputs, p, devs, rs, err);
}

static int
op_run(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job, const json_t *inputs,
       json_t **output, struct ocra_err *err)
{
    struct ocra_daemon_prepared p = {0};
    struct ocra_runner *runner = NULL;
    struct ocra_run_spec rs;
    struct ocra_run_job rj = {0};
    uint8_t devs[OCRA_RUN_MAX_GPUS];
    char *agent_dir = NULL;
    bool journaled = false;
    int pulled = -1, ret = -1;

    if (ocra_daemon_prepare(ctx, job->event, &p, err) < 0)
        return -1;
    if (run_spec_fill(ctx, job, inputs, &p, devs, &rs, err) < 0)
        goto out;
    if (ocra_run_spec_check(&rs, err) < 0) { /* the operator's profile forbids this workload */
        *output = ocra_daemon_verdict_err("failed", err);
        ret = 0;
        goto out;
    }
    /* replica 0's own socket directory, bound into its container only */
    if (ocra_daemon_agent_run(ctx->d, rs.event_id, 0, &agent_dir, err) < 0)
        goto out;
    rs.agent_dir = agent_dir;
    if (!(runner = runner_new(ctx->cfg, err)))
        goto out;
    /* docker: the engine runs what it has, pulled by digest first (a manifest only when the
     * push stage handed the engine the image) */
    if (runner->prepare && runner->prepare(runner, rs.image, &pulled, err) < 0)
        goto out;
    if ((runner->supports & OCRA_RUN_BATCH) &&
        ocra_daemon_run_journaled(ctx, job, runner, &rj, &journaled, err) < 0)
        goto out;
    if (!journaled && (runner->start(runner, &rs, &rj, err) < 0 ||
                       ocra_daemon_run_started(ctx, job, inputs, runner, &rj, err) < 0))
        goto out;
    ocra_daemon_scale_run(ctx, job, &p, &rs); /* replicas 1..min-1 */
    *output = json_pack("{s:s, s:s, s:s, s:b, s:s}", "runner", runner->name, "id", rj.id, "name",
                        rj.name, "adopted", rj.adopted, "image", rs.image);
    if (pulled >= 0) /* layers the engine downloaded */
        json_object_set_new(*output, "layersPulled", json_integer(pulled));
    ret = 0;
out:
    free(agent_dir);
    ocra_runner_free(runner);
    ocra_daemon_prepared_fini(&p);
    return ret;
}

/* The complete stage of a daemon that restarted while the workload ran: its container (or
 * Slurm job) still has its socket directory bound, and reaches the daemon again once the run
 * is served again. A failure costs the agent's reports only: the wait stays the authority. */
static void
agent_run_again(struct ocra_daemon_ctx *ctx, const char *event_id)
{
    struct ocra_err err = {0};
    char *dir = NULL;

    if (ocra_daemon_agent_run(ctx->d, event_id, 0, &dir, &err) < 0)
        ocra_log_warn("event=%s: %s (the workload's agent goes unheard)", event_id, err.msg);
    free(dir);
}

/* The run's time limit in seconds (0: none), from the event's spec and the configuration, and
 * whether it is a training workload. */
static int
run_limit(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job, int64_t *limit_s,
          bool *training, struct ocra_err *err)
{
    struct ocra_daemon_prepared p = {0};

    if (ocra_daemon_prepare(ctx, job->event, &p, err) < 0)
        return -1;
    *limit_s = ocra_daemon_run_limit_s(ctx->cfg, p.spec);
    *training = p.spec->workload.type == OCRA_SPEC_TRAINING;
    ocra_daemon_prepared_fini(&p);
    return 0;
}

/*
 * A look at the workload that costs a worker no more than a moment: 0 when it ended
 * (*exit_code) or the event is orphaned (*orphaned); -1 with EINPROGRESS when it runs on (the
 * supervisor follows it and wakes the event when it ends or must be stopped at its limit);
 * else the runner's error.
 */
static int
run_look(struct ocra_daemon_ctx *ctx, struct ocra_runner *runner, const struct ocra_run_job *rj,
         const char *event_id, int64_t limit_s, bool training, int *exit_code, bool *orphaned,
         struct ocra_err *err)
{
    int64_t started = 0, finished = 0;

    if (ocra_store_event_orphaned(ctx->st, event_id, orphaned, err) < 0 || *orphaned)
        return *orphaned ? 0 : -1;
    /* EHOSTDOWN: the engine of its node is silent; the run is followed (not failed, not run
     * elsewhere) until the engine answers and says how it ended */
    if (runner->wait(runner, rj, COMPLETE_LOOK_MS, exit_code, err) == 0 ||
        (err->code != ETIMEDOUT && err->code != EHOSTDOWN))
        return err->code ? -1 : 0;
    if (err->code == EHOSTDOWN)
        ocra_log_warn("event=%s: %s (waiting for its node)", event_id, err->msg);
    memset(err, 0, sizeof(*err));
    if (limit_s)
        ocra_daemon_run_times(ctx, runner, rj, &started, &finished);
    ocra_daemon_supervise_add(ctx->d, event_id, rj, limit_s ? started + limit_s * 1000 : 0,
                              training);
    return ocra_err_set(err, EINPROGRESS,
                        "%s (%s) runs: supervised, no worker waits for it; its end wakes the "
                        "event",
                        rj->name, rj->id);
}

/* Whether the run ended for its time limit: the supervisor stopped it, or (the supervisor of
 * an earlier daemon did) it ended unsuccessfully having run at least its limit (a second of
 * slack: Slurm's times are in seconds). */
static bool
run_timed_out(bool stopped_by_supervisor, int64_t limit_s, int exit_code, bool stopped,
              int64_t started, int64_t finished)
{
    if (stopped_by_supervisor)
        return true;
    return limit_s && (exit_code != 0 || stopped) && finished - started + 1000 >= limit_s * 1000;
}

/* Whether a run that exited 75 was the agent's refusal: its refusal is journaled (it said so
 * over its socket before it exited), or, when the daemon could not hear it (it was down at
 * that moment), a newer version of the model is current, which is what made the agent refuse. */
static bool
refused(struct ocra_daemon_ctx *ctx, const char *event_id, char **refusal)
{
    struct ocra_err rerr = {0};
    bool current = true;

    *refusal = NULL;
    if (ocra_store_event_refusal(ctx->st, event_id, refusal, &rerr) == 0 && *refusal)
        return true;
    return ocra_store_event_current(ctx->st, event_id, &current, NULL, &rerr) == 0 && !current;
}

/* The verdict of an ended run into output: superseded (the agent refused: exit 75), timeout,
 * lost, failed (non-zero), or none (completed). */
static void
complete_verdict(struct ocra_daemon_ctx *ctx, const char *event_id, int exit_code, bool timed_out,
                 int64_t limit_s, const char *lost, json_t *output)
{
    char reason[256], *refusal = NULL;

    if (exit_code == 75 && refused(ctx, event_id, &refusal)) {
        json_t *r = refusal ? ocra_json_parse(refusal, strlen(refusal), 0, NULL) : NULL;
        const char *cur = ocra_json_str(r, "current");

        snprintf(reason, sizeof(reason),
                 "the agent refused to start it: a newer version of the model (%s) is current "
                 "on-chain",
                 cur ? cur : "version not said");
        json_object_set_new(output, "verdict", json_string("superseded"));
        json_decref(r);
    } else if (timed_out) {
        snprintf(reason, sizeof(reason),
                 "the workload ran past its time limit of %" PRId64
                 " s (workload.maxDuration, capped by run.max_duration_s): stopped",
                 limit_s);
        json_object_set_new(output, "verdict", json_string("timeout"));
    } else if (lost[0]) {
        snprintf(reason, sizeof(reason), "%s", lost);
        json_object_set_new(output, "verdict", json_string("failed"));
    } else if (exit_code != 0) {
        snprintf(reason, sizeof(reason), "the workload exited with status %d", exit_code);
        json_object_set_new(output, "verdict", json_string("failed"));
    } else {
        reason[0] = '\0';
    }
    if (reason[0])
        json_object_set_new(output, "reason", json_string(reason));
    free(refusal);
}

static int
op_complete(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job, const json_t *inputs,
            json_t **output, struct ocra_err *err)
{
    const json_t *run = json_object_get(inputs, "run");
    struct ocra_runner *runner = NULL;
    struct ocra_run_job rj = {0};
    char *logs = NULL;
    size_t len = 0;
    int exit_code = -1, ret = -1, rc;
    bool stopped = false, orphaned = false, training = false;
    enum ocra_daemon_stop_why why;
    char *newer = NULL;
    char lost[192] = "";
    int64_t started = 0, finished = 0, limit_s = 0;
    struct ocra_err lerr = {0};
    const char *event_id = job->event->id;

    const char *id = json_string_value(json_object_get(run, "id"));
    const char *name = json_string_value(json_object_get(run, "name"));

    snprintf(rj.id, sizeof(rj.id), "%s", id ? id : "");
    snprintf(rj.name, sizeof(rj.name), "%s", name ? name : "");
    if (!rj.id[0] && !rj.name[0])
        return ocra_err_set(err, EINVAL, "the run stage's output names no container or job");
    if (run_limit(ctx, job, &limit_s, &training, err) < 0 || !(runner = runner_new(ctx->cfg, err)))
        return -1;
    agent_run_again(ctx, event_id);
    /* a started daemon's supervisor follows the workload: the op only looks (bounded work);
     * without one (ocra_daemon_step) it waits as before */
    if (ocra_daemon_supervising(ctx->d))
        rc = run_look(ctx, runner, &rj, event_id, limit_s, training, &exit_code, &orphaned, err);
    else
        rc = ocra_daemon_run_wait(ctx, runner, &rj, event_id, &exit_code, &orphaned, err);
    if (rc < 0) {
        if (err->code == ENOENT && (runner->supports & OCRA_RUN_BATCH)) {
            /* slurmctld purged the finished job (MinJobAge) while nobody watched it: it ran,
             * but its exit status is lost; the event fails, saying so, instead of waiting */
            snprintf(lost, sizeof(lost),
                     "Slurm no longer knows job %s (purged after MinJobAge while ocra was not "
                     "watching): its exit status is lost",
                     rj.id);
            exit_code = -1;
        } else if (err->code != ECANCELED) {
            goto out; /* EINPROGRESS: parked, supervised */
        } else {
            exit_code = -1; /* stopped from outside: the event failed, not the stage */
            stopped = true;
        }
        memset(err, 0, sizeof(*err));
    }
    why = ocra_daemon_supervise_end(ctx->d, event_id, &newer);
    if (orphaned) { /* the report stage stops the workload and gives its allocation back */
        *output = ocra_daemon_verdict("orphaned", "the chain no longer holds the event's block: "
                                                  "its workload is stopped");
        ret = 0;
        goto out;
    }
    ocra_daemon_agent_run_end(ctx->d, event_id, 0); /* replica 0 ended: its socket goes */
    (void)runner->logs(runner, &rj, 40, &logs, &len, &lerr);
    ocra_daemon_run_times(ctx, runner, &rj, &started, &finished); /* the run's, not this stage's */
    if (ocra_daemon_scale_end(ctx, event_id, err) < 0 ||          /* replicas 1.. */
        ocra_daemon_release(ctx, event_id, err) < 0 ||
        ocra_daemon_run_ended(ctx, job, inputs, runner, &rj, exit_code, stopped, logs, started,
                              finished, err) < 0)
        goto out;
    *output = json_pack("{s:s, s:i, s:I, s:I, s:s?}", "runner", runner->name, "exitCode", exit_code,
                        "startedAt", (json_int_t)started, "finishedAt", (json_int_t)finished,
                        "logTail", logs);
    if (limit_s)
        json_object_set_new(*output, "maxDurationS", json_integer((json_int_t)limit_s));
    if (why == OCRA_DAEMON_STOP_NEWER || why == OCRA_DAEMON_STOP_REMOVAL ||
        why == OCRA_DAEMON_STOP_ROOM) { /* the supervisor replaced it: the chain moved on */
        char reason[320];

        snprintf(reason, sizeof(reason),
                 why == OCRA_DAEMON_STOP_REMOVAL
                     ? "stopped: the model was removed on-chain (event %.80s)"
                 : why == OCRA_DAEMON_STOP_ROOM
                     ? "stopped: its newer version (event %.80s) took its room (no room for "
                       "both: a gap in service until the newer one starts)"
                     : "stopped: a newer version of the model is current on-chain (event %.80s)",
                 newer ? newer : "?");
        json_object_set_new(*output, "verdict", json_string("superseded"));
        json_object_set_new(*output, "reason", json_string(reason));
    } else {
        complete_verdict(ctx, event_id, exit_code,
                         run_timed_out(why == OCRA_DAEMON_STOP_TIMEOUT, limit_s, exit_code, stopped,
                                       started, finished),
                         limit_s, lost, *output);
    }
    ret = 0;
out:
    free(newer);
    free(logs);
    ocra_runner_free(runner);
    return ret;
}

/* ---- the table --------------------------------------------------------------------------- */

const struct ocra_daemon_stage ocra_daemon_stages[] = {
    {"validate", "validated", ocra_daemon_op_validate, true, false},
    {"plan", "planned", ocra_daemon_op_plan, true, false},
    {"toolchain", "toolchain", op_toolchain, true, false},
    {"push", "pushed", op_push, true, false},
    {"sign", "signed", op_sign, true, false},
    {"allocate", "allocated", op_allocate, true, true},
    {"run", "running", op_run, true, true},
    {"complete", "completed", op_complete, true, false},
    {"report", "reported", ocra_daemon_op_report, true, false},
};
const size_t ocra_daemon_n_stages = OCRA_ARRAY_LEN(ocra_daemon_stages);
