/* SPDX-License-Identifier: Apache-2.0 */
/*
 * plan_size.c: resource sizing from the spec's workload, in integer bytes so that every
 * machine computes the same plan. Inference needs the weights x 1.2 plus a KV cache when the
 * model's shape is known; training with AdamW in mixed precision 18 bytes per parameter plus
 * 10% for activations. The GPU count is the spec's when it gives one (checked for fit), else
 * the fewest GPUs of the smallest catalogue model that holds the estimate. CPU, RAM and shm
 * follow documented defaults by workload type. docs/PLANNING.md §Sizing has the sources.
 */
#include "plan/plan_int.h"

#include <errno.h>
#include <string.h>

#define GB 1000000000ull
#define DEFAULT_MAX_GPUS 8

/* ---- formatting ------------------------------------------------------------------------ */

void
ocra_plan_fmt_count(uint64_t n, char *out, size_t outsz)
{
    uint64_t p = 1, tenths;
    unsigned e = 0;

    while (n / p >= 10) {
        p *= 10;
        e++;
    }
    /* rounded to one decimal of the mantissa */
    tenths = p >= 10 ? (n + p / 20) / (p / 10) : n * 10;
    if (tenths >= 100) {
        tenths /= 10;
        e++;
    }
    snprintf(out, outsz, "%u.%ue%u", (unsigned)(tenths / 10), (unsigned)(tenths % 10), e);
}

void
ocra_plan_fmt_gb(uint64_t bytes, char *out, size_t outsz)
{
    uint64_t hundredths = (bytes + GB / 100 - 1) / (GB / 100), tenths;

    /* rounded up, so that a shown need is never below the real one */
    if (bytes < 10 * GB) {
        snprintf(out, outsz, "%llu.%02u GB", (unsigned long long)(hundredths / 100),
                 (unsigned)(hundredths % 100));
        return;
    }
    tenths = (bytes + GB / 10 - 1) / (GB / 10);
    snprintf(out, outsz, "%llu.%u GB", (unsigned long long)(tenths / 10), (unsigned)(tenths % 10));
}

/* ---- the estimate ---------------------------------------------------------------------- */

/* Half-bytes per parameter: fp32 8, fp16/bf16 4, fp8/int8 2, int4 1. */
static uint64_t
half_bytes(enum ocra_spec_dtype t)
{
    return ocra_spec_dtype_bits(t) / 4;
}

/* KV cache: 2 (K and V) x layers x kv_heads x head_dim x context x batch x 2 B (4 B in fp32). */
static uint64_t
kv_cache(const struct ocra_plan_options *o, enum ocra_spec_dtype t)
{
    uint64_t batch = o->batch ? o->batch : 1;

    if (!o->context || !o->layers || !o->kv_heads || !o->head_dim)
        return 0;
    return 2ull * o->layers * o->kv_heads * o->head_dim * o->context * batch *
           (t == OCRA_SPEC_FP32 ? 4 : 2);
}

/* Returns the bytes needed and writes how they were reckoned to b. */
static uint64_t
estimate(const struct ocra_spec *s, const struct ocra_plan_options *o, struct ocra_buf *b)
{
    const struct ocra_spec_workload *w = &s->workload;
    char n[32], g1[32], g2[32];
    uint64_t weights = w->params * half_bytes(w->dtype) / 2, need, kv;

    ocra_plan_fmt_count(w->params, n, sizeof(n));
    if (w->type == OCRA_SPEC_TRAINING) {
        uint64_t per = w->dtype == OCRA_SPEC_FP32 ? 16 : 18, states = w->params * per;

        need = states + states / 10;
        ocra_plan_fmt_gb(states, g1, sizeof(g1));
        ocra_plan_fmt_gb(need, g2, sizeof(g2));
        ocra_buf_printf(b, "%s params × %llu B (%s) = %s + 10%% activations = %s", n,
                        (unsigned long long)per,
                        per == 16 ? "fp32 weights and gradients, AdamW states"
                                  : "mixed-precision weights, gradients, AdamW states",
                        g1, g2);
        return need;
    }
    need = weights + weights / 5;
    kv = kv_cache(o, w->dtype);
    ocra_plan_fmt_gb(weights, g1, sizeof(g1));
    ocra_plan_fmt_gb(need + kv, g2, sizeof(g2));
    ocra_buf_printf(b, "%s params × %s B (%s) = %s weights × 1.2", n,
                    w->dtype == OCRA_SPEC_INT4 ? "0.5"
                                               : (half_bytes(w->dtype) == 8   ? "4"
                                                  : half_bytes(w->dtype) == 4 ? "2"
                                                                              : "1"),
                    ocra_spec_dtype_name(w->dtype), g1);
    if (kv) {
        char g3[32];

        ocra_plan_fmt_gb(kv, g3, sizeof(g3));
        ocra_buf_printf(b, " + KV cache %s", g3);
    }
    ocra_buf_printf(b, " = %s", g2);
    return need + kv;
}

/* ---- choosing GPUs --------------------------------------------------------------------- */

static bool
gpu_has_dtype(const struct ocra_plan_gpu *g, enum ocra_spec_dtype t)
{
    if (t == OCRA_SPEC_BF16)
        return g->cc >= 80;
    if (t == OCRA_SPEC_FP8)
        return g->cc >= 89;
    return true;
}

static uint64_t
usable(const struct ocra_plan_data *d, const struct ocra_plan_gpu *g)
{
    return (uint64_t)g->memory_gb * GB / 100 * d->usable_percent;
}

/* a before b: less memory, then newer architecture, then cheaper, then name. */
static bool
better(const struct ocra_plan_gpu *a, const struct ocra_plan_gpu *b)
{
    if (!b)
        return true;
    if (a->memory_gb != b->memory_gb)
        return a->memory_gb < b->memory_gb;
    if (a->cc != b->cc)
        return a->cc > b->cc;
    if (a->has_cost != b->has_cost || (a->has_cost && a->cost != b->cost))
        return a->has_cost && (!b->has_cost || a->cost < b->cost);
    return strcmp(a->model, b->model) < 0;
}

/* The smallest GPU holding need / n each, or NULL. */
static const struct ocra_plan_gpu *
smallest_fit(const struct ocra_plan_data *d, enum ocra_spec_dtype t, uint64_t need, unsigned n)
{
    const struct ocra_plan_gpu *best = NULL;
    uint64_t each = (need + n - 1) / n;

    for (size_t i = 0; i < d->n_gpus; i++)
        if (gpu_has_dtype(&d->gpus[i], t) && usable(d, &d->gpus[i]) >= each &&
            better(&d->gpus[i], best))
            best = &d->gpus[i];
    return best;
}

static const struct ocra_plan_gpu *
largest(const struct ocra_plan_data *d, enum ocra_spec_dtype t)
{
    const struct ocra_plan_gpu *big = NULL;

    for (size_t i = 0; i < d->n_gpus; i++)
        if (gpu_has_dtype(&d->gpus[i], t) && (!big || d->gpus[i].memory_gb > big->memory_gb))
            big = &d->gpus[i];
    return big;
}

static int
no_fit(const struct ocra_plan_data *d, const struct ocra_spec *s, uint64_t need, unsigned n,
       bool given, struct ocra_err *err)
{
    const struct ocra_plan_gpu *big = largest(d, s->workload.dtype);
    char g[32], u[32];

    ocra_plan_fmt_gb(need, g, sizeof(g));
    if (!big)
        return ocra_err_set(err, EINVAL, "no GPU in data/gpus.json supports %s",
                            ocra_spec_dtype_name(s->workload.dtype));
    ocra_plan_fmt_gb(usable(d, big) * n, u, sizeof(u));
    return ocra_err_set(err, EINVAL,
                        "%s does not fit on %u GPU%s: %u × %s, the largest in data/gpus.json "
                        "with %s, holds %s; %s",
                        g, n, n == 1 ? "" : "s", n, big->model,
                        ocra_spec_dtype_name(s->workload.dtype), u,
                        given ? "ask for more GPUs or leave workload.gpus out"
                              : "raise plan.max_gpus or use a smaller dtype");
}

static int
choose_gpus(const struct ocra_plan_data *d, const struct ocra_spec *s,
            const struct ocra_plan_options *o, uint64_t need, struct ocra_plan_resources *r,
            struct ocra_err *err)
{
    unsigned max = o->max_gpus ? o->max_gpus : DEFAULT_MAX_GPUS;
    const struct ocra_plan_gpu *g = NULL;
    unsigned n = o->gpus_given ? s->workload.gpus : 1;

    if (o->gpus_given)
        g = smallest_fit(d, s->workload.dtype, need, n);
    else
        for (; n <= max && !(g = smallest_fit(d, s->workload.dtype, need, n)); n++)
            ;
    if (!g)
        return no_fit(d, s, need, o->gpus_given ? n : max, o->gpus_given, err);
    r->gpus = n;
    snprintf(r->gpu_model, sizeof(r->gpu_model), "%s", g->model);
    r->gpu_memory_gb = g->memory_gb;
    return 0;
}

/* ---- CPU, RAM, shm --------------------------------------------------------------------- */

static void
host_resources(const struct ocra_spec *s, uint64_t need, struct ocra_plan_resources *r)
{
    bool train = s->workload.type == OCRA_SPEC_TRAINING;
    uint64_t weights = s->workload.params * half_bytes(s->workload.dtype) / 2;
    uint64_t ram = train ? 32 * GB : 16 * GB, want;
    unsigned per = train ? 8 : 4;

    if (!r->gpus) {
        /* CPU only: a small workload by default (a test, a preprocessing step, a tiny
         * model), sized up by its estimate: 1 CPU (2 to train), RAM = the estimate rounded
         * up to a GiB, at least 1 GiB (2 to train) */
        r->cpus = train ? 2 : 1;
        ram = train ? 2 * GB : 1 * GB;
        if (need > ram)
            ram = (need + GB - 1) / GB * GB;
        r->memory_bytes = ram;
        r->shm_bytes = GB / 4;
        return;
    }
    r->cpus = per * r->gpus;
    want = (train ? 4 : 2) * weights;
    if (want > ram)
        ram = (want + GB - 1) / GB * GB;
    r->memory_bytes = ram;
    r->shm_bytes = train ? 16 * GB : r->gpus > 1 ? 8 * GB : 1 * GB;
}

int
ocra_plan_size(const struct ocra_plan_data *d, const struct ocra_spec *spec,
               const struct ocra_plan_options *opts, struct ocra_plan_resources *out,
               struct ocra_err *err)
{
    struct ocra_plan_resources r = {0};
    struct ocra_buf b;
    char g[32];
    int ret = -1;

    ocra_buf_init(&b);
    r.replicas_min = spec->workload.replicas_min;
    r.replicas_max = spec->workload.replicas_max;
    if (spec->workload.params)
        r.need_bytes = estimate(spec, opts, &b);
    if (spec->workload.gpus == 0) {
        ocra_buf_puts(&b, b.len ? " → CPU only (workload.gpus is 0), in RAM"
                                : "CPU only (workload.gpus is 0); workload.params not given: "
                                  "no memory estimate");
    } else if (!spec->workload.params) {
        r.gpus = opts->gpus_given ? spec->workload.gpus : 1;
        ocra_buf_printf(&b,
                        "workload.params not given: no memory estimate; %u GPU%s (%s), any "
                        "model",
                        r.gpus, r.gpus == 1 ? "" : "s",
                        opts->gpus_given ? "the spec's workload.gpus" : "the default");
    } else {
        if (choose_gpus(d, spec, opts, r.need_bytes, &r, err) < 0)
            goto out;
        ocra_plan_fmt_gb(usable(d, smallest_fit(d, spec->workload.dtype, r.need_bytes, r.gpus)), g,
                         sizeof(g));
        ocra_buf_printf(&b, " → %u × %s (%u GB; %s usable each; %s)", r.gpus, r.gpu_model,
                        r.gpu_memory_gb, g,
                        opts->gpus_given ? "workload.gpus from the spec, checked for fit"
                                         : "the fewest GPUs, then the smallest that fits");
    }
    host_resources(spec, r.need_bytes, &r);
    snprintf(r.reason, sizeof(r.reason), "%s", b.data ? b.data : "");
    *out = r;
    ret = 0;
out:
    ocra_buf_fini(&b);
    return ret;
}
