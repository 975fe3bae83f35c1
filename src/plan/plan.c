/* SPDX-License-Identifier: Apache-2.0 */
/*
 * plan.c: the plan as a whole. Sizes the workload, resolves the toolchain for the GPU count
 * that sizing chose, computes the toolchain hash and the Dockerfile, and presents the result
 * as the container image specification (docs/SPEC.md), as JSON and as text that says
 * why each decision was made.
 */
#include "plan/plan_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct ocra_plan {
    const struct ocra_spec *spec; /* borrowed: valid as long as the caller's spec */
    char *name, *model_version, *event_id, spec_hash[65];
    int64_t created_at; /* ms; -1: unknown */
    struct ocra_plan_tc tc;
    struct ocra_plan_resources res;
    char *tc_json, hash[65], *dockerfile, *tc_dockerfile, *image_id, *version_tag, *evt_tag;
    json_t *image; /* the container image specification */
};

bool
ocra_plan_doc_gives_gpus(const json_t *doc)
{
    return json_object_get(json_object_get(doc, "workload"), "gpus") != NULL;
}

/* A PEP 440 version as an image tag: bytes outside [A-Za-z0-9_.-] ("+", "!") become "-". */
static char *
version_tag(const char *v)
{
    char *t = ocra_xstrdup(v);

    for (char *p = t; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-", *p))
            *p = '-';
    return t;
}

static int
kv_cmp(const void *a, const void *b)
{
    return strcmp(((const struct ocra_spec_kv *)a)->key, ((const struct ocra_spec_kv *)b)->key);
}

static json_t *
image_json(const struct ocra_plan *p)
{
    struct ocra_spec_kv *kv = ocra_xcalloc(p->tc.n_image_tools + 1, sizeof(*kv));
    char *tags[2] = {p->version_tag, p->evt_tag};
    struct ocra_spec_image im = {0};
    json_t *j;

    for (size_t i = 0; i < p->tc.n_image_tools; i++) {
        char *eq = strchr(p->tc.image_tools[i], '=');

        kv[i].key = ocra_xstrndup(p->tc.image_tools[i], (size_t)(eq - p->tc.image_tools[i]));
        kv[i].value = eq + 1;
    }
    qsort(kv, p->tc.n_image_tools, sizeof(*kv), kv_cmp);
    im.image_id = p->image_id;
    im.base_image = p->tc.base_mirror;
    im.ai_model_version = p->model_version;
    im.tools = kv;
    im.n_tools = p->tc.n_image_tools;
    im.created_at = p->created_at;
    im.tags = tags;
    im.n_tags = p->evt_tag ? 2 : 1;
    memcpy(im.spec_hash, p->spec_hash, sizeof(im.spec_hash));
    j = ocra_spec_image_to_json(&im);
    if (p->created_at < 0)
        json_object_set_new(j, "createdAt", json_null());
    json_object_set_new(j, "toolchainHash", json_string(p->hash));
    for (size_t i = 0; i < p->tc.n_image_tools; i++)
        free(kv[i].key);
    free(kv);
    return j;
}

static size_t
labels(struct ocra_plan *p, struct ocra_plan_label *l, char *ts, size_t tssz)
{
    size_t n = 0;

    if (p->event_id)
        l[n++] = (struct ocra_plan_label){"io.ocra.event-id", p->event_id};
    l[n++] = (struct ocra_plan_label){"io.ocra.spec-hash", p->spec_hash};
    l[n++] = (struct ocra_plan_label){"io.ocra.toolchain-hash", p->hash};
    l[n++] = (struct ocra_plan_label){"org.opencontainers.image.base.name", p->tc.base_mirror};
    if (p->created_at >= 0) {
        ocra_time_iso8601(p->created_at, ts, tssz);
        l[n++] = (struct ocra_plan_label){"org.opencontainers.image.created", ts};
    }
    l[n++] = (struct ocra_plan_label){"org.opencontainers.image.title", p->name};
    l[n++] = (struct ocra_plan_label){"org.opencontainers.image.version", p->model_version};
    return n;
}

static void
finish(struct ocra_plan *p)
{
    struct ocra_plan_label l[8];
    char ts[32];
    json_t *tcj = ocra_plan_tc_json(&p->tc);
    size_t n;

    p->tc_json = ocra_json_canonical(tcj);
    json_decref(tcj);
    ocra_sha256_hex(p->tc_json, strlen(p->tc_json), p->hash);
    p->version_tag = version_tag(p->model_version);
    if (p->event_id) {
        char short_id[13];

        ocra_spec_event_short_id(p->event_id, short_id);
        p->evt_tag = ocra_xasprintf("evt-%s", short_id);
    }
    p->image_id = ocra_xasprintf("%s:%s", p->name, p->evt_tag ? p->evt_tag : p->version_tag);
    n = labels(p, l, ts, sizeof(ts));
    p->dockerfile = ocra_plan_dockerfile_text(&p->tc, p->spec, p->hash, l, n);
    p->tc_dockerfile = ocra_plan_toolchain_dockerfile_text(&p->tc, p->hash);
    p->image = image_json(p);
}

int
ocra_plan_new(const struct ocra_plan_data *d, const struct ocra_spec *spec,
              const struct ocra_plan_options *opts, struct ocra_plan **out,
              struct ocra_spec_problems *probs, struct ocra_err *err)
{
    static const struct ocra_plan_options defaults = {0};
    struct ocra_spec_problems local = {0}, *pr = probs ? probs : &local;
    struct ocra_plan *p = ocra_xcalloc(1, sizeof(*p));
    struct ocra_err serr = {0};
    size_t before = pr->n;
    unsigned gpus;

    p->spec = spec;
    opts = opts ? opts : &defaults;
    if (ocra_plan_size(d, spec, opts, &p->res, &serr) < 0)
        ocra_plan_problem(pr, "workload", "plan.no_fit", "%s", serr.msg);
    gpus = pr->n > before ? spec->workload.gpus : p->res.gpus;
    ocra_plan_resolve(d, spec, opts, gpus, &p->tc, pr);
    if (pr->n > before) {
        ocra_err_set(err, EINVAL, "%zu problem%s; first: %s%s%s", pr->n - before,
                     pr->n - before == 1 ? "" : "s", pr->items[before].field,
                     pr->items[before].field[0] ? ": " : "", pr->items[before].msg);
        ocra_spec_problems_fini(&local);
        ocra_plan_free(p);
        return -1;
    }
    p->name = ocra_xstrdup(spec->name);
    p->model_version = ocra_xstrdup(spec->model_version);
    ocra_spec_hash(spec, p->spec_hash);
    p->created_at = opts->event ? opts->event->timestamp : -1;
    p->event_id = opts->event ? ocra_xstrdup(opts->event->event_id) : NULL;
    finish(p);
    p->spec = NULL; /* nothing below reads it again */
    *out = p;
    return 0;
}

void
ocra_plan_free(struct ocra_plan *p)
{
    if (!p)
        return;
    ocra_plan_tc_fini(&p->tc);
    free(p->name);
    free(p->model_version);
    free(p->event_id);
    free(p->tc_json);
    free(p->dockerfile);
    free(p->tc_dockerfile);
    free(p->image_id);
    free(p->version_tag);
    free(p->evt_tag);
    json_decref(p->image);
    free(p);
}

const char *
ocra_plan_base_image(const struct ocra_plan *p)
{
    return p->tc.base_mirror;
}

bool
ocra_plan_base_listed(const struct ocra_plan *p)
{
    return p->tc.base_listed;
}

const char *
ocra_plan_dockerfile(const struct ocra_plan *p)
{
    return p->dockerfile;
}

const char *
ocra_plan_toolchain_dockerfile(const struct ocra_plan *p)
{
    return p->tc_dockerfile;
}

const char *
ocra_plan_toolchain_hash(const struct ocra_plan *p)
{
    return p->hash;
}

const char *
ocra_plan_toolchain_json(const struct ocra_plan *p)
{
    return p->tc_json;
}

const char *
ocra_plan_driver_min(const struct ocra_plan *p)
{
    return p->tc.driver_min ? p->tc.driver_min : "";
}

const struct ocra_plan_resources *
ocra_plan_resources_get(const struct ocra_plan *p)
{
    return &p->res;
}

json_t *
ocra_plan_image_json(const struct ocra_plan *p)
{
    return json_deep_copy(p->image);
}

/* ---- JSON ------------------------------------------------------------------------------ */

static json_t *
resources_json(const struct ocra_plan_resources *r)
{
    json_t *j = json_object();

    json_object_set_new(j, "gpus", json_integer(r->gpus));
    json_object_set_new(j, "gpuModel", r->gpu_model[0] ? json_string(r->gpu_model) : json_null());
    json_object_set_new(j, "gpuMemoryGB",
                        r->gpu_model[0] ? json_integer(r->gpu_memory_gb) : json_null());
    json_object_set_new(j, "needBytes",
                        r->need_bytes ? json_integer((json_int_t)r->need_bytes) : json_null());
    json_object_set_new(j, "cpus", json_integer(r->cpus));
    json_object_set_new(j, "memoryBytes", json_integer((json_int_t)r->memory_bytes));
    json_object_set_new(j, "shmBytes", json_integer((json_int_t)r->shm_bytes));
    json_object_set_new(
        j, "replicas",
        json_pack("{s:i,s:i}", "min", (int)r->replicas_min, "max", (int)r->replicas_max));
    json_object_set_new(j, "reason", json_string(r->reason));
    return j;
}

json_t *
ocra_plan_to_json(const struct ocra_plan *p)
{
    json_t *j = json_object(), *notes = json_array(), *tc;

    for (size_t i = 0; i < p->tc.n_notes; i++)
        json_array_append_new(notes, json_string(p->tc.notes[i]));
    tc = json_object();
    json_object_set_new(tc, "hash", json_string(p->hash));
    json_object_set_new(tc, "spec", ocra_json_parse(p->tc_json, strlen(p->tc_json), 0, NULL));
    json_object_set_new(tc, "driverMin",
                        p->tc.driver_min ? json_string(p->tc.driver_min) : json_null());
    json_object_set_new(j, "image", json_deep_copy(p->image));
    json_object_set_new(j, "resolution", notes);
    json_object_set_new(j, "resources", resources_json(&p->res));
    json_object_set_new(j, "toolchain", tc);
    json_object_set_new(j, "dockerfile", json_string(p->dockerfile));
    return j;
}

/* ---- text ------------------------------------------------------------------------------ */

static void
text_image(struct ocra_buf *b, const struct ocra_plan *p)
{
    json_t *tools = json_object_get(p->image, "toolsAndLibraries");
    const char *key;
    json_t *v;
    char ts[32];

    ocra_buf_printf(b, "image\n  imageId            %s\n  baseImage          %s\n", p->image_id,
                    p->tc.base_mirror);
    ocra_buf_printf(b, "  aiModelVersion     %s\n  toolsAndLibraries ", p->model_version);
    json_object_foreach(tools, key, v) ocra_buf_printf(b, " %s=%s", key, json_string_value(v));
    if (p->created_at >= 0)
        ocra_buf_printf(b, "\n  createdAt          %s\n",
                        ocra_time_iso8601(p->created_at, ts, sizeof(ts)));
    else
        ocra_buf_puts(b, "\n  createdAt          unknown (no chain event given)\n");
    ocra_buf_printf(b, "  tags              ");
    ocra_buf_printf(b, " %s%s%s\n  specHash           %s\n", p->version_tag, p->evt_tag ? " " : "",
                    p->evt_tag ? p->evt_tag : "", p->spec_hash);
}

static void
text_resources(struct ocra_buf *b, const struct ocra_plan *p)
{
    const struct ocra_plan_resources *r = &p->res;
    char m[32], s[32];

    ocra_plan_fmt_gb(r->memory_bytes, m, sizeof(m));
    ocra_plan_fmt_gb(r->shm_bytes, s, sizeof(s));
    ocra_buf_puts(b, "resources (per replica)\n");
    if (r->gpus && r->gpu_model[0])
        ocra_buf_printf(b, "  gpus               %u × %s (%u GB)\n", r->gpus, r->gpu_model,
                        r->gpu_memory_gb);
    else
        ocra_buf_printf(b, "  gpus               %u%s\n", r->gpus, r->gpus ? " (any model)" : "");
    ocra_buf_printf(b, "  why                %s\n", r->reason);
    ocra_buf_printf(b,
                    "  cpus               %u\n  memory             %s\n  shm                %s\n",
                    r->cpus, m, s);
    ocra_buf_printf(b, "  replicas           %u..%u\n", r->replicas_min, r->replicas_max);
}

char *
ocra_plan_to_text(const struct ocra_plan *p)
{
    struct ocra_buf b;

    ocra_buf_init(&b);
    ocra_buf_printf(&b, "plan %s %s\n\n", p->name, p->model_version);
    text_image(&b, p);
    ocra_buf_puts(&b, "\nresolution\n");
    for (size_t i = 0; i < p->tc.n_notes; i++)
        ocra_buf_printf(&b, "  - %s\n", p->tc.notes[i]);
    ocra_buf_puts(&b, "\npackages\n");
    for (size_t i = 0; i < p->tc.n_steps; i++)
        for (size_t j = 0; j < p->tc.steps[i].n_own; j++)
            ocra_buf_printf(&b, "  %-40s %s\n", p->tc.steps[i].reqs[j], p->tc.steps[i].index_url);
    ocra_buf_putc(&b, '\n');
    text_resources(&b, p);
    ocra_buf_printf(&b, "\ntoolchain\n  hash               sha256:%s\n", p->hash);
    if (p->tc.driver_min)
        ocra_buf_printf(&b, "  driver             >= %s\n", p->tc.driver_min);
    ocra_buf_printf(&b, "\ndockerfile\n%s", p->dockerfile);
    return ocra_buf_take(&b);
}
