/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon_api.c: what the HTTP API (src/api) asks of its host. Read-only hooks over the
 * journal, shared by `ocra daemon` and `ocra serve`: an event's lineage (its pipeline row,
 * one entry per stage from the attempt history, the image, the allocation, the run and the
 * report), the images built, the nodes with their allocations. The daemon adds readiness
 * (chain RPC, Docker engine, registry, slurmrestd: short timeouts, cached a few seconds)
 * and retry, and records its metrics: stage attempts, failures, runs, builds, events seen,
 * head lag, and at scrape time the GPUs allocated per node.
 */
#include "daemon/daemon_int.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "http/http.h"
#include "image/image.h"
#include "metrics/metrics.h"
#include "run/run.h"
#include "sched/sched.h"

#define READY_TIMEOUT_MS 2000
#define READY_CACHE_MS 3000

struct api_host {
    const struct ocra_config *cfg; /* ocra serve; the daemon's is ocra_daemon_cfg(d) */
    struct ocra_daemon *d;         /* NULL: read only (ocra serve) */
    pthread_mutex_t mu;            /* guards the readiness cache */
    json_t *ready_checks;
    bool ready_ok;
    int64_t ready_ms;
    struct ocra_store *st; /* the collector's connection, under collect_mu */
};

static pthread_mutex_t collect_mu = PTHREAD_MUTEX_INITIALIZER;
static struct api_host *collect_host; /* the daemon's API now, or NULL */
static pthread_once_t collect_once = PTHREAD_ONCE_INIT;

static const struct ocra_config *
host_cfg(struct api_host *h)
{
    return h->d ? ocra_daemon_cfg(h->d) : h->cfg;
}

/* ---- the inventory ------------------------------------------------------------------------ */

/* Slurm's nodes with their GPU gres, through slurmrestd, when run.slurm.url is set. */
static int
slurm_source(const struct ocra_config *cfg, struct ocra_sched_inventory *inv,
             struct ocra_run_slurm_inventory *seen, struct ocra_err *err)
{
    const struct ocra_run_slurm_opts o = {.url = cfg->run.slurm.url,
                                          .user = cfg->run.slurm.user,
                                          .token_file = cfg->run.slurm.token_file,
                                          .partition = cfg->run.slurm.partition};
    struct ocra_sched_node *nodes;
    int ret;

    if (!*cfg->run.slurm.url)
        return 0;
    ocra_run_slurm_inventory_fini(seen);
    if (ocra_run_slurm_inventory_get(&o, seen, err) < 0)
        return ocra_err_wrap(err, "slurm nodes (run.slurm.url %s)", cfg->run.slurm.url);
    nodes = ocra_xcalloc(seen->n_nodes + 1, sizeof(*nodes));
    for (size_t i = 0; i < seen->n_nodes; i++) {
        nodes[i] = seen->nodes[i].node;
        /* a gres without a type ("gpu:4", not "gpu:a100:4") names no model */
        if (nodes[i].gpu_count > 0 && !nodes[i].gpu_model[0])
            snprintf(nodes[i].gpu_model, sizeof(nodes[i].gpu_model), "unknown");
    }
    ret = ocra_sched_inventory_add(inv, nodes, seen->n_nodes, "slurm", err);
    free(nodes);
    return ret;
}

int
ocra_daemon_inventory(const struct ocra_config *cfg, struct ocra_sched_inventory *inv,
                      struct ocra_run_slurm_inventory *slurm, struct ocra_err *err)
{
    struct ocra_sched_node_conf *confs = ocra_xcalloc(cfg->n_nodes + 1, sizeof(*confs));
    struct ocra_run_slurm_inventory own = {0};
    int ret;

    for (size_t i = 0; i < cfg->n_nodes; i++) {
        const struct ocra_config_node *c = &cfg->nodes[i];

        confs[i] = (struct ocra_sched_node_conf){
            c->name,       c->gpu_model,          c->gpus,   c->gpu_memory_mib, c->cpus,
            c->memory_mib, c->compute_capability, c->driver, c->cost,           c->labels,
            c->n_labels};
    }
    ocra_sched_inventory_init(inv);
    ret = ocra_sched_inventory_add_conf(inv, confs, cfg->n_nodes, err);
    free(confs);
    if (ret == 0)
        ret = slurm_source(cfg, inv, slurm ? slurm : &own, err);
    ocra_run_slurm_inventory_fini(&own);
    if (ret == 0 && cfg->inventory_local)
        ocra_sched_inventory_discover_local(inv);
    return ret;
}

static json_t *
hook_nodes(void *arg, struct ocra_store *st, struct ocra_err *err)
{
    struct api_host *h = arg;
    const struct ocra_config *cfg = host_cfg(h);
    struct ocra_sched_allocator *a = NULL;
    struct ocra_sched_inventory inv;
    json_t *doc = NULL, *nodes = NULL;

    if (ocra_daemon_inventory(cfg, &inv, NULL, err) == 0 &&
        ocra_sched_allocator_open(st, &inv, (enum ocra_sched_policy)cfg->sched.policy,
                                  cfg->sched.gpu_memory_headroom_mib, &a, err) == 0)
        doc = ocra_sched_nodes_json(&inv, a, err);
    if (doc) {
        nodes = json_incref(json_object_get(doc, "nodes"));
        (void)ocra_daemon_hosts_json(cfg, nodes, 5000); /* each own engine: up or down */
    }
    ocra_sched_allocator_free(a);
    ocra_sched_inventory_fini(&inv);
    json_decref(doc);
    return nodes;
}

static json_t *
hook_queue(void *arg, struct ocra_store *st, struct ocra_err *err)
{
    return ocra_daemon_queue_json(host_cfg(arg), st, err);
}

/* ---- images ------------------------------------------------------------------------------- */

static json_t *
tags_json(const char *tags)
{
    json_t *t = tags ? ocra_json_parse(tags, strlen(tags), 0, NULL) : NULL;

    if (json_is_array(t))
        return t;
    json_decref(t);
    return json_array();
}

static json_t *
image_json(const struct ocra_store_image *im)
{
    json_t *o = json_object();

    json_object_set_new(o, "digest", json_string(im->digest));
    json_object_set_new(o, "registry", im->registry ? json_string(im->registry) : json_null());
    json_object_set_new(o, "repo", json_string(im->repo));
    json_object_set_new(o, "tags", tags_json(im->tags));
    json_object_set_new(o, "event", im->event ? json_string(im->event) : json_null());
    json_object_set_new(o, "signature", im->signature ? json_string(im->signature) : json_null());
    json_object_set_new(o, "toolchainHash",
                        im->toolchain_hash ? json_string(im->toolchain_hash) : json_null());
    json_object_set_new(o, "createdMs", json_integer(im->created_ms));
    return o;
}

static int
image_one(const struct ocra_store_image *im, void *arg)
{
    json_array_append_new(arg, image_json(im));
    return 0;
}

static json_t *
hook_images(void *arg, struct ocra_store *st, int64_t limit, struct ocra_err *err)
{
    json_t *all = json_array(), *out;
    size_t n;

    (void)arg;
    if (ocra_store_image_list(st, image_one, all, err) < 0) {
        json_decref(all);
        return NULL;
    }
    out = json_array();
    n = json_array_size(all);
    for (size_t i = 0; i < n && (int64_t)i < limit; i++) /* listed oldest first */
        json_array_append(out, json_array_get(all, n - 1 - i));
    json_decref(all);
    return out;
}

/* ---- lineage ------------------------------------------------------------------------------ */

/* One entry per stage, in the order first tried: the last attempt's state, error and output. */
static int
stage_one(const struct ocra_store_stage_row *r, void *arg)
{
    json_t *stages = arg, *s = NULL, *it, *out = NULL;
    size_t i;

    json_array_foreach(stages, i, it) if (!strcmp(ocra_json_str(it, "stage"), r->stage)) s = it;
    if (!s) {
        s = json_pack("{s:s,s:i,s:I}", "stage", r->stage, "attempts", 0, "startedMs",
                      (json_int_t)r->started_ms);
        json_array_append_new(stages, s);
    }
    /* an attempt whose worker died is a crash, not an attempt (it is made again) */
    if (r->outcome && !strcmp(r->outcome, "abandoned"))
        json_object_set_new(s, "crashes", json_integer(ocra_json_int(s, "crashes", 0) + 1));
    else
        json_object_set_new(s, "attempts", json_integer(ocra_json_int(s, "attempts", 0) + 1));
    json_object_set_new(s, "state", json_string(r->outcome ? r->outcome : "running"));
    json_object_set_new(s, "finishedMs",
                        r->finished_ms ? json_integer(r->finished_ms) : json_null());
    json_object_set_new(s, "error", r->error ? json_string(r->error) : json_null());
    if (r->output)
        out = ocra_json_parse(r->output, strlen(r->output), 0, NULL);
    json_object_set_new(s, "output", out ? out : json_null());
    return 0;
}

/* The image: its record in the journal, else what the push stage output. */
static json_t *
lineage_image(struct ocra_store *st, const char *id, const json_t *outputs, struct ocra_err *err)
{
    struct ocra_store_image *im = NULL;
    const json_t *push = json_object_get(outputs, "push");
    json_t *o = NULL;

    if (ocra_store_image_by_event(st, id, &im, err) < 0)
        return NULL;
    if (im) {
        o = json_pack("{s:s,s:s,s:o}", "digest", im->digest, "repo", im->repo, "tags",
                      tags_json(im->tags));
        if (o && im->registry && *im->registry)
            json_object_set_new(o, "registry", json_string(im->registry));
    } else if (ocra_json_str(push, "digest")) {
        const json_t *tags = json_object_get(push, "tags");

        o = json_pack("{s:s,s:s?,s:O}", "digest", ocra_json_str(push, "digest"), "repo",
                      ocra_json_str(push, "repo"), "tags",
                      json_is_array(tags) ? tags : json_array());
        if (!json_is_array(tags))
            json_decref(json_object_get(o, "tags"));
    }
    ocra_store_image_free(im);
    return o ? o : json_null();
}

struct alloc_pick {
    json_t *o;
};

static int
alloc_one(const struct ocra_store_alloc *a, void *arg)
{
    struct alloc_pick *p = arg;
    json_t *gpus = json_array();

    if (p->o && !a->held) /* the held one wins; else the latest */
        return 0;
    for (int i = 0; i < a->n_devs; i++)
        json_array_append_new(gpus, json_integer(a->devs[i]));
    json_decref(p->o);
    p->o = json_pack("{s:s,s:o,s:i,s:b}", "node", a->node, "gpus", gpus, "gpuMilli", a->gpu_milli,
                     "held", a->held);
    return 0;
}

/* The run: the run stage's output (runner, container or job), the complete stage's result. */
static json_t *
lineage_run(const json_t *outputs)
{
    const json_t *run = json_object_get(outputs, "run"),
                 *end = json_object_get(outputs, "complete");
    const json_t *code = json_object_get(end, "exitCode");
    const char *state = ocra_json_str(end, "state");

    if (!run && !end)
        return json_null();
    if (!state && end)
        state = ocra_json_str(end, "verdict") ? ocra_json_str(end, "verdict") : "completed";
    if (!state)
        state = ocra_json_str(run, "state") ? ocra_json_str(run, "state") : "running";
    if (!json_is_integer(code))
        code = json_object_get(run, "exitCode");
    return json_pack("{s:s?,s:s,s:O?}", "runner", ocra_json_str(run, "runner"), "state", state,
                     "exitCode", json_is_integer(code) ? code : NULL);
}

static int
hook_lineage(void *arg, struct ocra_store *st, const char *id, json_t *ev, struct ocra_err *err)
{
    struct api_host *h = arg;
    struct ocra_store_pipeline *p = NULL;
    json_t *stages = json_array(), *outputs = NULL, *image = NULL, *runs;
    struct alloc_pick ap = {NULL};
    const json_t *rep;
    char *text = NULL;
    int ret = -1;

    if (ocra_store_pipeline_get(st, id, &p, err) < 0 ||
        ocra_store_stage_history(st, id, stage_one, stages, err) < 0 ||
        ocra_store_alloc_list(st, id, false, alloc_one, &ap, err) < 0)
        goto out;
    if (p && ocra_store_stage_outputs(st, id, &text, err) < 0)
        goto out;
    outputs = text ? ocra_json_parse(text, strlen(text), 0, NULL) : NULL;
    if (!(image = lineage_image(st, id, outputs, err)))
        goto out;
    json_object_set_new(ev, "pipeline", p ? ocra_store_pipeline_to_json(p) : json_null());
    json_object_set(ev, "stages", stages);
    json_object_set(ev, "image", image);
    json_object_set_new(ev, "allocation", ap.o ? json_incref(ap.o) : json_null());
    json_object_set_new(ev, "run", lineage_run(outputs));
    if (!(runs = ocra_store_runs_json(st, id, err)))
        goto out;
    json_object_set_new(ev, "runs", runs);
    json_object_set_new(
        ev, "frontend", /* the load balancer's port of a served model */
        ocra_daemon_lb_frontend_json(h->d ? ocra_daemon_cfg(h->d) : h->cfg, p ? p->model : NULL));
    rep = json_object_get(outputs, "report");
    json_object_set_new(ev, "report",
                        ocra_json_str(rep, "tx")
                            ? json_pack("{s:s,s:s?}", "tx", ocra_json_str(rep, "tx"), "chain",
                                        ocra_json_str(rep, "chain"))
                            : json_null());
    ret = 0;
out:
    json_decref(ap.o);
    json_decref(image);
    json_decref(outputs);
    json_decref(stages);
    free(text);
    ocra_store_pipeline_free(p);
    return ret;
}

/* ---- retry -------------------------------------------------------------------------------- */

static int
hook_retry(void *arg, struct ocra_store *st, const char *id, struct ocra_err *err)
{
    struct api_host *h = arg;

    if (ocra_store_stage_retry(st, id, err) < 0) {
        if (err->code == EINVAL) /* neither failed nor dead-lettered: a state conflict */
            err->code = EBUSY;
        return -1;
    }
    ocra_log_info("api: retry event=%s", id);
    pthread_mutex_lock(&h->d->mu);
    h->d->wake_gen++;
    pthread_cond_broadcast(&h->d->cv);
    pthread_mutex_unlock(&h->d->mu);
    return 0;
}

/* ---- readiness ---------------------------------------------------------------------------- */

static void
check_set(json_t *checks, const char *name, const struct ocra_err *err)
{
    json_object_set_new(checks, name,
                        err ? json_pack("{s:b,s:s}", "ok", 0, "error", err->msg)
                            : json_pack("{s:b}", "ok", 1));
}

/* head_lag{source}: the chain's head minus the source's cursor. */
static void
set_head_lag(struct ocra_store *st, const char *source, int64_t head)
{
    struct ocra_store_cursor cur;
    struct ocra_err err = {0};
    bool found = false;

    pthread_mutex_lock(&collect_mu); /* st is the collector's connection too */
    if (st && ocra_store_cursor_get(st, source, &cur, &found, &err) == 0 && found)
        ocra_daemon_metrics_head_lag(source, head, cur.block_number);
    pthread_mutex_unlock(&collect_mu);
}

static void
ready_ain(const struct ocra_config *cfg, struct ocra_store *st, json_t *checks)
{
    struct ocra_ain_rpc_opts ro = {.url = cfg->ain.rpc, .timeout_ms = READY_TIMEOUT_MS};
    struct ocra_ain_rpc *rpc = ocra_ain_rpc_new(&ro);
    struct ocra_err err = {0};
    json_t *v = ocra_ain_rpc_call(rpc, "ain_getLastBlockNumber", NULL, NULL, &err);
    char src[32];

    if (v && json_is_integer(v)) {
        (void)snprintf(src, sizeof(src), "ain:%lld", (long long)cfg->ain.chain_id);
        set_head_lag(st, src, json_integer_value(v));
    } else if (v) {
        ocra_err_set(&err, EPROTO, "ain_getLastBlockNumber: not a number");
    }
    ocra_err_wrap(&err, "%s", cfg->ain.rpc);
    check_set(checks, "ain.rpc", v && json_is_integer(v) ? NULL : &err);
    json_decref(v);
    ocra_ain_rpc_free(rpc);
}

static void
ready_evm(const struct ocra_config *cfg, struct ocra_store *st, json_t *checks)
{
    for (size_t i = 0; i < cfg->evm.n_rpc; i++) {
        const char *url = cfg->evm.rpc[i];
        struct ocra_evm_rpc_opts ro = {.urls = &url, .n_urls = 1, .timeout_ms = READY_TIMEOUT_MS};
        struct ocra_err err = {0};
        struct ocra_evm_rpc *rpc = ocra_evm_rpc_new(&ro, &err);
        int64_t head = 0;
        char name[48], src[32];

        (void)snprintf(name, sizeof(name), cfg->evm.n_rpc > 1 ? "evm.rpc[%zu]" : "evm.rpc", i);
        if (!rpc || ocra_evm_block_number(rpc, &head, &err) < 0) {
            ocra_err_wrap(&err, "%s", url);
            check_set(checks, name, &err);
        } else {
            check_set(checks, name, NULL);
            (void)snprintf(src, sizeof(src), "evm:%lld", (long long)cfg->evm.chain_id);
            if (i == 0 && cfg->evm.chain_id)
                set_head_lag(st, src, head);
        }
        ocra_evm_rpc_free(rpc);
    }
}

static void
ready_docker(const struct ocra_config *cfg, json_t *checks)
{
    const char *host = cfg->run.docker_host;
    /* this host's engine (the builds' and the docker runner's) answers */
    const struct ocra_run_opts o = {.kind = OCRA_RUN_KIND_DOCKER,
                                    .docker_socket = *host ? host + strlen("unix://") : NULL,
                                    .docker_timeout_ms = READY_TIMEOUT_MS};
    struct ocra_err err = {0};
    struct ocra_runner *dk = ocra_run_new(&o, &err);

    check_set(checks, "docker", dk ? NULL : &err);
    ocra_runner_free(dk);
}

/* An HTTP dependency answers url (any status below 500 but ok_status's absence: reachable). */
static void
ready_http(json_t *checks, const char *name, const char *base, const char *path)
{
    struct ocra_http_resp resp = {0};
    struct ocra_err err = {0};
    char url[1024];
    size_t n = strlen(base);
    struct ocra_http_req req = {.method = "GET", .url = url, .timeout_ms = READY_TIMEOUT_MS};

    while (n > 0 && base[n - 1] == '/')
        n--;
    if (snprintf(url, sizeof(url), "%s%.*s%s", strstr(base, "://") ? "" : "http://", (int)n, base,
                 path) >= (int)sizeof(url)) {
        ocra_err_set(&err, EINVAL, "URL too long");
    } else if (ocra_http_do(&req, &resp, &err) == 0 && resp.status >= 500) {
        ocra_err_set(&err, EIO, "%s answered HTTP %ld", url, resp.status);
    } else if (err.code) {
        ocra_err_wrap(&err, "%s", url);
    }
    check_set(checks, name, err.code ? &err : NULL);
    ocra_http_resp_fini(&resp);
}

static bool
hook_ready(void *arg, json_t *checks)
{
    struct api_host *h = arg;
    const struct ocra_config *cfg = host_cfg(h);
    int64_t now = ocra_time_wall_ms();
    json_t *c;
    bool ok = true;
    const char *k;
    json_t *v;

    pthread_mutex_lock(&h->mu);
    if (h->ready_checks && now - h->ready_ms < READY_CACHE_MS) {
        json_object_update(checks, h->ready_checks);
        ok = h->ready_ok;
        pthread_mutex_unlock(&h->mu);
        return ok;
    }
    c = json_object();
    if (*cfg->ain.rpc)
        ready_ain(cfg, h->st, c);
    ready_evm(cfg, h->st, c);
    ready_docker(cfg, c);
    if (*cfg->build.registry)
        ready_http(c, "build.registry", cfg->build.registry, "/v2/");
    if (*cfg->run.slurm.url)
        ready_http(c, "run.slurm.url", cfg->run.slurm.url, "/");
    json_object_foreach(c, k, v) ok = ok && json_is_true(json_object_get(v, "ok"));
    json_decref(h->ready_checks);
    h->ready_checks = c;
    h->ready_ok = ok;
    h->ready_ms = ocra_time_wall_ms();
    json_object_update(checks, c);
    pthread_mutex_unlock(&h->mu);
    return ok;
}

/* ---- metrics ------------------------------------------------------------------------------ */

static int
count_gpus(const struct ocra_store_alloc *a, void *arg)
{
    const struct ocra_metrics_family *f = ocra_metrics_std()->gpus_allocated;

    (void)arg;
    ocra_metrics_add((struct ocra_metrics_family *)(uintptr_t)f, (const char *const[]){a->node},
                     a->n_devs);
    return 0;
}

/* gpus_allocated{node}, from the held allocations at scrape time (the queue depth and the
 * counts of events come from the journal's counters, in src/api, for ocra serve as well). */
static void
collect(struct ocra_metrics *m, void *arg)
{
    const struct ocra_metrics_std *std = ocra_metrics_std();
    struct ocra_err err = {0};

    (void)m;
    (void)arg;
    pthread_mutex_lock(&collect_mu);
    if (collect_host && collect_host->st) {
        ocra_metrics_clear(std->gpus_allocated);
        if (ocra_store_alloc_list(collect_host->st, NULL, true, count_gpus, NULL, &err) < 0)
            ocra_log_warn("metrics: journal: %s", err.msg);
    }
    pthread_mutex_unlock(&collect_mu);
}

static void
collect_register(void)
{
    ocra_metrics_on_collect(ocra_metrics_default(), collect, NULL);
}

void
ocra_daemon_metrics_stage(const struct ocra_store_claim *c, const struct ocra_store_stage_end *e,
                          uint64_t started_ns)
{
    const struct ocra_metrics_std *std = ocra_metrics_std();
    double s = (double)(ocra_time_mono_ns() - started_ns) / 1e9;
    json_t *out;

    if (!strcmp(e->outcome, "waiting")) /* not implemented: no attempt was made */
        return;
    ocra_metrics_observe(std->stage_seconds, (const char *const[]){c->stage}, s);
    if (!strcmp(e->outcome, "retry") || !strcmp(e->outcome, "dead"))
        ocra_metrics_add(std->stage_failures,
                         (const char *const[]){
                             c->stage, !strcmp(e->outcome, "retry") ? "transient" : "permanent"},
                         1);
    /* A run ends with the complete stage: its verdict "failed", else completed. */
    if (strcmp(c->stage, "complete") != 0 || strcmp(e->outcome, "done") != 0 || !e->output)
        return;
    if ((out = ocra_json_parse(e->output, strlen(e->output), 0, NULL))) {
        const char *runner = ocra_json_str(out, "runner"), *verdict = ocra_json_str(out, "verdict");

        ocra_daemon_metrics_run(runner ? runner : "unknown",
                                verdict && !strcmp(verdict, "failed") ? "failed" : "completed");
        json_decref(out);
    }
}

void
ocra_daemon_metrics_takeover(const char *kind, size_t n)
{
    ocra_metrics_add(ocra_metrics_std()->takeovers, (const char *const[]){kind}, (double)n);
}

void
ocra_daemon_metrics_run(const char *runner, const char *result)
{
    ocra_metrics_add(ocra_metrics_std()->runs, (const char *const[]){runner, result}, 1);
}

void
ocra_daemon_metrics_build(bool toolchain_cache_hit, uint64_t bytes_uploaded)
{
    const struct ocra_metrics_std *std = ocra_metrics_std();

    ocra_metrics_add(std->build_cache, (const char *const[]){toolchain_cache_hit ? "hit" : "miss"},
                     1);
    ocra_metrics_add(std->upload_bytes, NULL, (double)bytes_uploaded);
}

void
ocra_daemon_metrics_head_lag(const char *source, int64_t head, int64_t cursor)
{
    if (cursor >= 0)
        ocra_metrics_set(ocra_metrics_std()->head_lag, (const char *const[]){source},
                         (double)(head > cursor ? head - cursor : 0));
}

void
ocra_daemon_metrics_tx_refused(const char *chain, int64_t code, bool permanent)
{
    char c[24];

    (void)snprintf(c, sizeof(c), "%lld", (long long)code);
    ocra_metrics_add(ocra_metrics_std()->tx_refusals,
                     (const char *const[]){chain, c, permanent ? "permanent" : "transient"}, 1);
}

void
ocra_daemon_metrics_finality_violations(const char *source, unsigned long n)
{
    ocra_metrics_add(ocra_metrics_std()->finality_violations, (const char *const[]){source},
                     (double)n);
}

void
ocra_daemon_metrics_seen(const struct ocra_store_event *ev)
{
    bool rejected = ev->status && !strcmp(ev->status, "rejected");

    ocra_metrics_add(ocra_metrics_std()->events_seen,
                     (const char *const[]){ev->chain, rejected ? "rejected" : "accepted"}, 1);
}

/* ---- the server --------------------------------------------------------------------------- */

/* The dashboard's links: api.explorer_tx_url, api.explorer_address_url, api.registry_url. */
static json_t *
link_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

static json_t *
hook_links(void *arg)
{
    const struct api_host *h = arg;

    return json_pack("{s:o,s:o,s:o}", "tx", link_or_null(h->cfg->api_explorer_tx_url), "address",
                     link_or_null(h->cfg->api_explorer_address_url), "digest",
                     link_or_null(h->cfg->api_registry_url));
}

static void
host_free(struct api_host *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&collect_mu);
    if (collect_host == h)
        collect_host = NULL;
    pthread_mutex_unlock(&collect_mu);
    json_decref(h->ready_checks);
    ocra_store_close(h->st);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

/* The servers started here and their hosts, freed with them (ocra_api has no user data). */
static struct {
    struct ocra_api *api;
    struct api_host *host;
} servers[8];
static pthread_mutex_t servers_mu = PTHREAD_MUTEX_INITIALIZER;

struct ocra_api *
ocra_daemon_api_new(const struct ocra_config *cfg, struct ocra_daemon *d,
                    const struct ocra_api_opts *opts, struct ocra_err *err)
{
    struct api_host *h = ocra_xcalloc(1, sizeof(*h));
    struct ocra_api_hooks hooks = {.nodes = hook_nodes,
                                   .queue = hook_queue,
                                   .lineage = hook_lineage,
                                   .images = hook_images,
                                   .links = hook_links,
                                   .arg = h};
    struct ocra_api_opts o = *opts;
    struct ocra_api *api;
    size_t i;

    h->cfg = cfg;
    h->d = d;
    pthread_mutex_init(&h->mu, NULL);
    if (d) {
        hooks.ready = hook_ready;
        hooks.retry = hook_retry;
        if (ocra_store_open(cfg->journal_path, &h->st, err) < 0) {
            host_free(h);
            return NULL;
        }
        pthread_once(&collect_once, collect_register);
        pthread_mutex_lock(&collect_mu);
        collect_host = h;
        pthread_mutex_unlock(&collect_mu);
    }
    o.hooks = &hooks; /* copied by the server */
    if (!(api = ocra_api_new(&o, err))) {
        host_free(h);
        return NULL;
    }
    pthread_mutex_lock(&servers_mu);
    for (i = 0; i < OCRA_ARRAY_LEN(servers) && servers[i].api; i++)
        ;
    assert(i < OCRA_ARRAY_LEN(servers));
    servers[i].api = api;
    servers[i].host = h;
    pthread_mutex_unlock(&servers_mu);
    return api;
}

int
ocra_daemon_api_start(struct ocra_daemon *d, struct ocra_err *err)
{
    const struct ocra_config *cfg = ocra_daemon_cfg(d);
    struct ocra_api_opts o = {.listen = cfg->api_listen,
                              .token_file = cfg->api_token_file,
                              .journal = cfg->journal_path,
                              .allowed_hosts = (const char *const *)cfg->api_allowed_hosts,
                              .n_allowed_hosts = cfg->n_api_allowed_hosts,
                              .connections_per_client = (unsigned)cfg->api_connections_per_client};

    if (!cfg->api_listen || !*cfg->api_listen)
        return 0;
    if (!(d->api = ocra_daemon_api_new(cfg, d, &o, err))) {
        if (err->code == EINVAL || err->code == EACCES) /* the configuration: fix it first */
            return ocra_err_wrap(err, "api.listen %s", cfg->api_listen);
        /* a port taken (another daemon, a test beside this one): the pipeline works anyway */
        ocra_log_error("api: %s (serving no HTTP API; the pipeline works on)", err->msg);
        err->code = 0;
        return 0;
    }
    ocra_log_info("api listening on %.*s:%u",
                  (int)(strrchr(cfg->api_listen, ':') - cfg->api_listen), cfg->api_listen,
                  ocra_api_port(d->api));
    return 0;
}

void
ocra_daemon_api_free(struct ocra_api *api)
{
    struct api_host *h = NULL;

    if (!api)
        return;
    ocra_api_free(api);
    pthread_mutex_lock(&servers_mu);
    for (size_t i = 0; i < OCRA_ARRAY_LEN(servers); i++)
        if (servers[i].api == api) {
            h = servers[i].host;
            servers[i].api = NULL;
            servers[i].host = NULL;
        }
    pthread_mutex_unlock(&servers_mu);
    host_free(h);
}

void
ocra_daemon_api_stop(struct ocra_daemon *d)
{
    ocra_daemon_api_free(d->api);
    d->api = NULL;
}
