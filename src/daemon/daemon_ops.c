/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon_ops.c: the ops of the stages before the build: validate (the spec again, with the
 * operator's policy, and the signer's trust) and plan (src/plan; the plan is the stage's
 * output), and ocra_daemon_prepare(), with which the later stages (daemon_stages.c, where
 * the stage table is) rebuild the spec, event and plan of a journaled event.
 */
#include "daemon/daemon_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "build/build.h"
#include "spec/spec.h"

/* ---- validate ---------------------------------------------------------------------------- */

json_t *
ocra_daemon_verdict(const char *what, const char *reason)
{
    return json_pack("{s:s, s:s}", "verdict", what, "reason", reason);
}

json_t *
ocra_daemon_verdict_err(const char *what, const struct ocra_err *err)
{
    char text[OCRA_ERR_MAX + 8];

    return ocra_daemon_verdict(what, ocra_err_text(err, text, sizeof(text)));
}

/* The name a spec without one takes: the last segment of its path (AIN and EVM alike). */
static const char *
default_name(const struct ocra_store_event *ev)
{
    const char *slash = ev->path ? strrchr(ev->path, '/') : NULL;

    return slash && slash[1] ? slash + 1 : NULL;
}

void
ocra_daemon_spec_policy(const struct ocra_config *cfg, struct ocra_spec_policy *pol)
{
    pol->http_hosts = (const char *const *)cfg->spec_http_hosts;
    pol->n_http_hosts = cfg->n_spec_http_hosts;
    pol->allow_hosts = (const char *const *)cfg->artifact.allow_hosts;
    pol->n_allow_hosts = cfg->artifact.n_allow_hosts;
}

void
ocra_daemon_fetch_options(const struct ocra_config *cfg, struct ocra_build_opts *bo)
{
    bo->http_hosts = (const char *const *)cfg->spec_http_hosts;
    bo->n_http_hosts = cfg->n_spec_http_hosts;
    bo->artifact_allow = (const char *const *)cfg->artifact.allow_hosts;
    bo->n_artifact_allow = cfg->artifact.n_allow_hosts;
    bo->artifact_max_size = (uint64_t)cfg->artifact.max_size_mib << 20;
    bo->artifact_min_rate = (long)cfg->artifact.min_rate_kib * 1024;
    bo->artifact_rate_window_s = (long)cfg->artifact.min_rate_window_s;
    bo->artifact_deadline_s = (long)cfg->artifact.deadline_s;
}

static int
parse_spec(const struct ocra_config *cfg, const struct ocra_store_event *ev,
           struct ocra_spec **spec, struct ocra_err *err)
{
    struct ocra_spec_policy pol = {.default_name = default_name(ev)};

    ocra_daemon_spec_policy(cfg, &pol);
    return ocra_spec_parse(ev->spec, strlen(ev->spec), &pol, spec, NULL, err);
}

int
ocra_daemon_op_validate(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job,
                        const json_t *inputs, json_t **output, struct ocra_err *err)
{
    const struct ocra_store_event *ev = job->event;
    struct ocra_spec *spec = NULL;
    struct ocra_err perr = {0};
    char hash[65];

    (void)inputs;
    if (!ev->trusted) {
        *output = ocra_daemon_verdict("rejected", "the signer is not trusted");
        return 0;
    }
    if (!ev->spec || !strcmp(ev->spec, "null")) {
        *output = ocra_daemon_verdict("rejected", "the model was removed: nothing to deploy");
        return 0;
    }
    if (parse_spec(ctx->cfg, ev, &spec, &perr) < 0) {
        if (perr.code != EINVAL) {
            ocra_err_copy(err, &perr);
            return ocra_err_wrap(err, "spec");
        }
        ocra_err_wrap(&perr, "spec");
        *output = ocra_daemon_verdict_err("rejected", &perr);
        return 0;
    }
    ocra_spec_hash(spec, hash);
    *output = json_pack("{s:s, s:s, s:s, s:s?}", "name", spec->name, "modelVersion",
                        spec->model_version, "specHash", hash, "signer", ev->signer);
    ocra_spec_free(spec);
    return 0;
}

/* ---- plan -------------------------------------------------------------------------------- */

void
ocra_daemon_plan_options(const struct ocra_config *cfg, struct ocra_plan_options *po,
                         struct ocra_plan_mirror *mirrors)
{
    for (size_t i = 0; i < cfg->plan.n_mirrors; i++) {
        mirrors[i].from = cfg->plan.mirrors[i].from;
        mirrors[i].to = cfg->plan.mirrors[i].to;
    }
    po->pip_index_url = cfg->plan.pip_index_url;
    po->extra_index_urls = (const char *const *)cfg->plan.extra_index_urls;
    po->n_extra_index_urls = cfg->plan.n_extra_index_urls;
    po->torch_index_url = cfg->plan.torch_index_url;
    po->allowed_tools = (const char *const *)cfg->plan.allowed_tools;
    po->n_allowed_tools = cfg->plan.n_allowed_tools;
    po->base_images = (const char *const *)cfg->plan.base_images;
    po->n_base_images = cfg->plan.n_base_images;
    po->model_registries = (const char *const *)&cfg->build.registry;
    po->n_model_registries = *cfg->build.registry ? 1 : 0;
    po->python = cfg->plan.python;
    po->mirrors = mirrors;
    po->n_mirrors = cfg->plan.n_mirrors;
    po->max_gpus = (unsigned)cfg->plan.max_gpus;
}

/* The blockchain event (docs/SPEC.md) for the journaled event (labels, createdAt). */
static struct ocra_spec_event *
spec_event(const struct ocra_store_event *ev, const struct ocra_spec *spec)
{
    struct ocra_spec_event *se = ocra_xcalloc(1, sizeof(*se));
    const char *colon = strchr(ev->chain, ':');

    se->event_id = ocra_xstrdup(ev->id);
    se->model_version = ocra_xstrdup(spec->model_version);
    se->timestamp = ev->observed_ms;
    se->chain = ocra_xstrndup(ev->chain, colon ? (size_t)(colon - ev->chain) : strlen(ev->chain));
    se->chain_id = colon ? strtoull(colon + 1, NULL, 10) : 0;
    se->block_number = (uint64_t)ev->block_number;
    se->block_hash = ev->block_hash ? ocra_xstrdup(ev->block_hash) : NULL;
    se->tx_hash = ocra_xstrdup(ev->tx_hash);
    se->index = (uint64_t)ev->op_index;
    se->signer = ev->signer ? ocra_xstrdup(ev->signer) : NULL;
    se->ref = ev->path ? ocra_xstrdup(ev->path) : NULL;
    return se;
}

static json_t *
plan_output(const struct ocra_plan *plan)
{
    const struct ocra_plan_resources *r = ocra_plan_resources_get(plan);
    json_t *image = ocra_plan_image_json(plan);
    json_t *summary =
        json_pack("{s:s, s:s, s:O?, s:i, s:s, s:i, s:s}", "baseImage", ocra_plan_base_image(plan),
                  "toolchainHash", ocra_plan_toolchain_hash(plan), "imageId",
                  json_object_get(image, "imageId"), "gpus", (json_int_t)r->gpus, "gpuModel",
                  r->gpu_model, "cpus", (json_int_t)r->cpus, "reason", r->reason);

    json_decref(image);
    return json_pack("{s:o, s:o}", "summary", summary, "plan", ocra_plan_to_json(plan));
}

/*
 * A baseImage by digest that the journal's images table holds is a model image ocra built,
 * whatever name the spec gives it (a digest names content): refused unless plan.base_images
 * names the spec's repository exactly. *why: the reason (caller frees), NULL when it is not.
 */
static int
base_in_journal(struct ocra_store *st, const struct ocra_spec *spec, const struct ocra_plan *plan,
                char **why, struct ocra_err *err)
{
    const char *at = spec->base_image ? strchr(spec->base_image, '@') : NULL;
    struct ocra_store_image *im = NULL;

    *why = NULL;
    if (!at || ocra_plan_base_listed(plan))
        return 0;
    if (ocra_store_image_get(st, at + 1, &im, err) < 0)
        return ocra_err_wrap(err, "plan: baseImage in the journal");
    if (im)
        *why = ocra_xasprintf("plan: baseImage: %.100s is a model image ocra built (the "
                              "journal's images): a base only when plan.base_images names its "
                              "repository exactly",
                              spec->base_image);
    ocra_store_image_free(im);
    return 0;
}

static int
load_data(struct ocra_daemon_ctx *ctx, struct ocra_err *err)
{
    if (ctx->plan_data)
        return 0;
    return ocra_plan_data_load(*ctx->cfg->plan.data_dir ? ctx->cfg->plan.data_dir : NULL,
                               &ctx->plan_data, err);
}

int
ocra_daemon_op_plan(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job,
                    const json_t *inputs, json_t **output, struct ocra_err *err)
{
    const struct ocra_config *cfg = ctx->cfg;
    struct ocra_plan_mirror *mirrors = NULL;
    struct ocra_plan_options po = {0};
    struct ocra_spec_event *se = NULL;
    struct ocra_spec *spec = NULL;
    struct ocra_plan *plan = NULL;
    struct ocra_err perr = {0};
    json_t *doc = NULL;
    int ret = -1;

    (void)inputs;
    if (load_data(ctx, err) < 0)
        return ocra_err_wrap(err, "plan data");
    if (parse_spec(cfg, job->event, &spec, err) < 0)
        return ocra_err_wrap(err, "spec"); /* validated before: EINVAL means a policy change */
    mirrors = ocra_xcalloc(cfg->plan.n_mirrors + 1, sizeof(*mirrors));
    ocra_daemon_plan_options(cfg, &po, mirrors);
    doc = ocra_json_parse(job->event->spec, strlen(job->event->spec), 0, NULL);
    po.gpus_given = doc && ocra_plan_doc_gives_gpus(doc);
    po.event = se = spec_event(job->event, spec);
    if (ocra_plan_new(ctx->plan_data, spec, &po, &plan, NULL, &perr) < 0) {
        if (perr.code != EINVAL) {
            ocra_err_copy(err, &perr);
            ocra_err_wrap(err, "plan");
            goto out;
        }
        ocra_err_wrap(&perr, "plan");
        *output = ocra_daemon_verdict_err("rejected", &perr);
    } else {
        char *why = NULL;

        if (base_in_journal(ctx->st, spec, plan, &why, err) < 0)
            goto out;
        *output = why ? ocra_daemon_verdict("rejected", why) : plan_output(plan);
        free(why);
    }
    ret = 0;
out:
    ocra_plan_free(plan);
    ocra_spec_event_free(se);
    ocra_spec_free(spec);
    json_decref(doc);
    free(mirrors);
    return ret;
}

/* ---- what the later stages rebuild ------------------------------------------------------- */

int
ocra_daemon_prepare(struct ocra_daemon_ctx *ctx, const struct ocra_store_event *ev,
                    struct ocra_daemon_prepared *out, struct ocra_err *err)
{
    const struct ocra_config *cfg = ctx->cfg;
    struct ocra_plan_mirror *mirrors = NULL;
    struct ocra_plan_options po = {0};
    json_t *doc = NULL;
    int ret = -1;

    memset(out, 0, sizeof(*out));
    if (load_data(ctx, err) < 0)
        return ocra_err_wrap(err, "plan data");
    if (parse_spec(cfg, ev, &out->spec, err) < 0)
        return ocra_err_wrap(err, "spec");
    mirrors = ocra_xcalloc(cfg->plan.n_mirrors + 1, sizeof(*mirrors));
    ocra_daemon_plan_options(cfg, &po, mirrors);
    doc = ocra_json_parse(ev->spec, strlen(ev->spec), 0, NULL);
    po.gpus_given = doc && ocra_plan_doc_gives_gpus(doc);
    po.event = out->event = spec_event(ev, out->spec);
    if (ocra_plan_new(ctx->plan_data, out->spec, &po, &out->plan, NULL, err) < 0) {
        ocra_err_wrap(err, "plan");
        goto out;
    }
    ret = 0;
out:
    if (ret < 0)
        ocra_daemon_prepared_fini(out);
    json_decref(doc);
    free(mirrors);
    return ret;
}

void
ocra_daemon_prepared_fini(struct ocra_daemon_prepared *p)
{
    ocra_plan_free(p->plan);
    ocra_spec_event_free(p->event);
    ocra_spec_free(p->spec);
    memset(p, 0, sizeof(*p));
}
