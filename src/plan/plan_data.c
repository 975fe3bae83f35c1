/* SPDX-License-Identifier: Apache-2.0 */
/*
 * plan_data.c: loads the compatibility tables and the GPU catalogue from the data directory
 * and checks them strictly: every member has its type and shape, versions parse, entries are
 * in ascending order without duplicates, and every table cites its sources. A broken table is
 * an error naming the file and the entry, never a guess. Also release-version arithmetic.
 */
#include "plan/plan_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#ifndef OCRA_DATA_DIR
#define OCRA_DATA_DIR "data"
#endif

#define TABLE_MAX (1u << 20)

/* ---- versions -------------------------------------------------------------------------- */

bool
ocra_plan_ver_parse(const char *s, struct ocra_plan_ver *v, const char **local)
{
    const char *p = s;

    memset(v, 0, sizeof(*v));
    if (local)
        *local = NULL;
    for (;;) {
        unsigned long x = 0;
        const char *start = p;

        while (*p >= '0' && *p <= '9' && p - start < 9)
            x = x * 10 + (unsigned long)(*p++ - '0');
        if (p == start || (*p >= '0' && *p <= '9') || v->n == OCRA_PLAN_VER_SEGS)
            return false;
        v->seg[v->n++] = (unsigned)x;
        if (*p != '.')
            break;
        p++;
    }
    if (*p == '+' && p[1] && local) {
        *local = p + 1;
        return true;
    }
    if (*p == '\0')
        return true;
    v->n = 0;
    return false;
}

int
ocra_plan_ver_cmp_n(const struct ocra_plan_ver *a, const struct ocra_plan_ver *b, unsigned n)
{
    for (unsigned i = 0; i < n && i < OCRA_PLAN_VER_SEGS; i++) {
        unsigned x = i < a->n ? a->seg[i] : 0, y = i < b->n ? b->seg[i] : 0;

        if (x != y)
            return x < y ? -1 : 1;
    }
    return 0;
}

int
ocra_plan_ver_cmp(const struct ocra_plan_ver *a, const struct ocra_plan_ver *b)
{
    return ocra_plan_ver_cmp_n(a, b, OCRA_PLAN_VER_SEGS);
}

/* Strict shapes: "N.N" (n = 2), "N.N.N" (n = 3); 0: any release. */
static bool
ver_ok(const char *s, unsigned n)
{
    struct ocra_plan_ver v;

    return s && ocra_plan_ver_parse(s, &v, NULL) && (n == 0 || v.n == n);
}

static int
ver_strcmp(const char *a, const char *b)
{
    struct ocra_plan_ver x, y;

    ocra_plan_ver_parse(a, &x, NULL);
    ocra_plan_ver_parse(b, &y, NULL);
    return ocra_plan_ver_cmp(&x, &y);
}

/* ---- table reading helpers ------------------------------------------------------------- */

struct rd {
    const char *file; /* "pytorch.json" */
    char where[96];   /* "versions[3]" */
    struct ocra_err *err;
};

static int
bad(struct rd *r, const char *key, const char *want)
{
    return ocra_err_set(r->err, EINVAL, "%s: %s%s%s: expected %s", r->file, r->where,
                        r->where[0] ? "." : "", key, want);
}

static int
get_str(struct rd *r, const json_t *o, const char *key, unsigned ver, char **out)
{
    const char *s = ocra_json_str(o, key);

    if (!s || !*s || strlen(s) > 256 || (ver != 99 && !ver_ok(s, ver)))
        return bad(r, key, ver == 99 ? "a non-empty string" : "a release version");
    *out = ocra_xstrdup(s);
    return 0;
}

static int
get_uint(struct rd *r, const json_t *o, const char *key, unsigned max, unsigned *out)
{
    const json_t *j = json_object_get(o, key);

    if (!json_is_integer(j) || json_integer_value(j) < 1 || json_integer_value(j) > max)
        return bad(r, key, "a positive integer in range");
    *out = (unsigned)json_integer_value(j);
    return 0;
}

/* A non-empty array of strings (versions of shape ver, or 99: any text) into *out. */
static int
get_strv(struct rd *r, const json_t *o, const char *key, unsigned ver, char ***out, size_t *n)
{
    const json_t *a = json_object_get(o, key), *e;
    size_t i;

    if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > 64)
        return bad(r, key, "a non-empty array of strings");
    *out = ocra_xcalloc(json_array_size(a), sizeof(char *));
    *n = 0;
    json_array_foreach(a, i, e)
    {
        const char *s = json_string_value(e);

        if (!s || !*s || (ver != 99 && !ver_ok(s, ver)))
            return bad(r, key, ver == 99 ? "strings" : "release versions");
        (*out)[(*n)++] = ocra_xstrdup(s);
    }
    return 0;
}

/* The envelope every table shares: table name, format 1, sources. Returns the entry array. */
static const json_t *
envelope(struct rd *r, const json_t *root, const char *table, const char *list)
{
    const json_t *src = json_object_get(root, "sources"), *a = json_object_get(root, list);
    const char *t = ocra_json_str(root, "table");

    if (!t || strcmp(t, table) != 0) {
        ocra_err_set(r->err, EINVAL, "%s: \"table\": expected \"%s\"", r->file, table);
        return NULL;
    }
    if (ocra_json_int(root, "format", 0) != 1) {
        ocra_err_set(r->err, EINVAL, "%s: \"format\": expected 1", r->file);
        return NULL;
    }
    if (!json_is_array(src) || json_array_size(src) == 0) {
        ocra_err_set(r->err, EINVAL, "%s: \"sources\": every table cites its sources", r->file);
        return NULL;
    }
    if (!json_is_array(a) || json_array_size(a) == 0) {
        ocra_err_set(r->err, EINVAL, "%s: \"%s\": expected a non-empty array", r->file, list);
        return NULL;
    }
    return a;
}

static void
at(struct rd *r, const char *list, size_t i, const json_t *e, const char *key)
{
    const char *id = key ? ocra_json_str(e, key) : NULL;
    char esc[48];

    if (id)
        snprintf(r->where, sizeof(r->where), "%s[%zu] (%s)", list, i,
                 ocra_str_escape(id, strlen(id), 24, esc, sizeof(esc)));
    else
        snprintf(r->where, sizeof(r->where), "%s[%zu]", list, i);
}

static int
ascending(struct rd *r, const char *prev, const char *cur)
{
    if (prev && ver_strcmp(prev, cur) >= 0)
        return ocra_err_set(r->err, EINVAL, "%s: %s: out of order or duplicate (after %s)", r->file,
                            r->where, prev);
    return 0;
}

/* ---- pytorch.json ---------------------------------------------------------------------- */

static int
torch_variants(struct rd *r, const json_t *e, struct ocra_plan_torch *t)
{
    const json_t *a = json_object_get(e, "variants"), *v;
    size_t i;
    bool cpu = false;

    if (!json_is_array(a) || json_array_size(a) < 2 || json_array_size(a) > 16)
        return bad(r, "variants", "an array of {name, cuda} with a cpu entry");
    t->variants = ocra_xcalloc(json_array_size(a), sizeof(*t->variants));
    json_array_foreach(a, i, v)
    {
        struct ocra_plan_torch_variant *tv = &t->variants[t->n_variants];
        const char *name = ocra_json_str(v, "name"), *cuda = ocra_json_str(v, "cuda");
        bool is_cpu = name && strcmp(name, "cpu") == 0;

        if (!name || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789") != strlen(name) ||
            strlen(name) > 8 || (is_cpu ? cuda != NULL : !ver_ok(cuda, 2)) ||
            (is_cpu && i + 1 != json_array_size(a)) || (!is_cpu && strncmp(name, "cu", 2)))
            return bad(r, "variants", "cuXYZ entries with a major.minor cuda, cpu last");
        if (t->n_variants > 0 && !is_cpu &&
            ver_strcmp(t->variants[t->n_variants - 1].cuda, cuda) >= 0)
            return bad(r, "variants", "CUDA versions in ascending order");
        tv->name = ocra_xstrdup(name);
        tv->cuda = cuda ? ocra_xstrdup(cuda) : NULL;
        t->n_variants++;
        cpu = cpu || is_cpu;
    }
    if (!cpu)
        return bad(r, "variants", "a cpu variant");
    return 0;
}

static int
torch_entry(struct rd *r, const json_t *e, struct ocra_plan_torch *t)
{
    if (get_str(r, e, "version", 3, &t->version) < 0 ||
        get_str(r, e, "torchvision", 3, &t->torchvision) < 0 ||
        get_str(r, e, "torchaudio", 3, &t->torchaudio) < 0 ||
        get_strv(r, e, "python", 2, &t->python, &t->n_python) < 0 || torch_variants(r, e, t) < 0 ||
        get_str(r, e, "pypi_default", 99, &t->pypi_default) < 0)
        return -1;
    for (size_t i = 0; i < t->n_variants; i++)
        if (strcmp(t->variants[i].name, t->pypi_default) == 0)
            return 0;
    return bad(r, "pypi_default", "one of the variants");
}

static int
load_torch(struct ocra_plan_data *d, const json_t *root, struct rd *r)
{
    const json_t *a = envelope(r, root, "pytorch", "versions"), *e;
    size_t i;

    if (!a)
        return -1;
    r->where[0] = '\0';
    if (get_str(r, root, "index_url", 99, &d->torch_index_url) < 0)
        return -1;
    d->torch = ocra_xcalloc(json_array_size(a), sizeof(*d->torch));
    json_array_foreach(a, i, e)
    {
        at(r, "versions", i, e, "version");
        if (torch_entry(r, e, &d->torch[d->n_torch++]) < 0 ||
            ascending(r, i ? d->torch[i - 1].version : NULL, d->torch[i].version) < 0)
            return -1;
    }
    return 0;
}

/* ---- tensorflow.json ------------------------------------------------------------------- */

static int
load_tf(struct ocra_plan_data *d, const json_t *root, struct rd *r)
{
    const json_t *a = envelope(r, root, "tensorflow", "versions"), *e;
    size_t i;

    if (!a)
        return -1;
    d->tf = ocra_xcalloc(json_array_size(a), sizeof(*d->tf));
    json_array_foreach(a, i, e)
    {
        struct ocra_plan_tf *t = &d->tf[d->n_tf++];
        const json_t *ac = json_object_get(e, "and_cuda");

        at(r, "versions", i, e, "version");
        if (get_str(r, e, "version", 3, &t->version) < 0 ||
            get_str(r, e, "cuda", 2, &t->cuda) < 0 || get_str(r, e, "cudnn", 2, &t->cudnn) < 0 ||
            get_strv(r, e, "python", 2, &t->python, &t->n_python) < 0)
            return -1;
        if (!json_is_boolean(ac))
            return bad(r, "and_cuda", "true or false");
        t->and_cuda = json_is_true(ac);
        if (ascending(r, i ? d->tf[i - 1].version : NULL, t->version) < 0)
            return -1;
    }
    return 0;
}

/* ---- cuda_images.json ------------------------------------------------------------------ */

static int
load_pairs(struct rd *r, const json_t *root, const char *list, const char *ka, unsigned va,
           const char *kb, unsigned vb, struct ocra_plan_pair **out, size_t *n)
{
    const json_t *a = json_object_get(root, list), *e;
    size_t i;

    r->where[0] = '\0';
    if (!json_is_array(a) || json_array_size(a) == 0)
        return bad(r, list, "a non-empty array");
    *out = ocra_xcalloc(json_array_size(a), sizeof(**out));
    json_array_foreach(a, i, e)
    {
        struct ocra_plan_pair *p = &(*out)[(*n)++];

        at(r, list, i, e, NULL);
        if (get_str(r, e, ka, va, &p->a) < 0 || get_str(r, e, kb, vb, &p->b) < 0)
            return -1;
    }
    return 0;
}

static int
image_entry(struct rd *r, const json_t *e, struct ocra_plan_image *im)
{
    const char *tag;

    if (get_str(r, e, "cuda", 3, &im->cuda) < 0 || get_uint(r, e, "cudnn", 99, &im->cudnn) < 0 ||
        get_str(r, e, "cudnn_tag", 99, &im->cudnn_tag) < 0 ||
        get_strv(r, e, "ubuntu", 2, &im->ubuntu, &im->n_ubuntu) < 0)
        return -1;
    tag = im->cudnn_tag;
    if (strncmp(tag, "cudnn", 5) != 0 || strspn(tag + 5, "0123456789") != strlen(tag + 5))
        return bad(r, "cudnn_tag", "\"cudnn\" or \"cudnnN\"");
    for (size_t i = 1; i < im->n_ubuntu; i++)
        if (ver_strcmp(im->ubuntu[i - 1], im->ubuntu[i]) >= 0)
            return bad(r, "ubuntu", "versions in ascending order");
    return 0;
}

static int
load_images(struct ocra_plan_data *d, const json_t *root, struct rd *r)
{
    const json_t *a = envelope(r, root, "cuda_images", "images"), *e;
    size_t i;

    if (!a)
        return -1;
    r->where[0] = '\0';
    if (get_str(r, root, "repository", 99, &d->cuda_repo) < 0 ||
        get_str(r, root, "pip", 0, &d->pip_version) < 0 ||
        get_strv(r, root, "devel_packages", 99, &d->devel_packages, &d->n_devel_packages) < 0)
        return -1;
    d->images = ocra_xcalloc(json_array_size(a), sizeof(*d->images));
    json_array_foreach(a, i, e)
    {
        at(r, "images", i, e, "cuda");
        if (image_entry(r, e, &d->images[d->n_images++]) < 0 ||
            ascending(r, i ? d->images[i - 1].cuda : NULL, d->images[i].cuda) < 0)
            return -1;
    }
    if (load_pairs(r, root, "ubuntu_python", "ubuntu", 2, "python", 2, &d->ubuntu_python,
                   &d->n_ubuntu_python) < 0 ||
        load_pairs(r, root, "cpu_images", "image", 99, "ubuntu", 2, &d->cpu_images,
                   &d->n_cpu_images) < 0)
        return -1;
    for (i = 0; i < d->n_images; i++)
        for (size_t j = 0; j < d->images[i].n_ubuntu; j++)
            if (!ocra_plan_data_ubuntu_python(d, d->images[i].ubuntu[j]))
                return ocra_err_set(r->err, EINVAL, "%s: images (%s): ubuntu %s has no python",
                                    r->file, d->images[i].cuda, d->images[i].ubuntu[j]);
    return 0;
}

/* ---- cuda_drivers.json ----------------------------------------------------------------- */

static int
load_drivers(struct ocra_plan_data *d, const json_t *root, struct rd *r)
{
    const json_t *a = envelope(r, root, "cuda_drivers", "releases"), *m, *e;
    size_t i;

    if (!a ||
        load_pairs(r, root, "releases", "cuda", 3, "driver", 0, &d->drivers, &d->n_drivers) < 0)
        return -1;
    m = json_object_get(root, "minor_compat");
    r->where[0] = '\0';
    if (!json_is_array(m) || json_array_size(m) == 0)
        return bad(r, "minor_compat", "a non-empty array");
    d->minor_compat = ocra_xcalloc(json_array_size(m), sizeof(*d->minor_compat));
    json_array_foreach(m, i, e)
    {
        struct ocra_plan_pair *p = &d->minor_compat[d->n_minor_compat++];
        unsigned major = 0;

        at(r, "minor_compat", i, e, NULL);
        if (get_uint(r, e, "major", 99, &major) < 0 || get_str(r, e, "driver", 0, &p->b) < 0)
            return -1;
        p->a = ocra_xasprintf("%u", major);
    }
    for (i = 0; i < d->n_images; i++)
        if (!ocra_plan_data_driver(d, d->images[i].cuda))
            return ocra_err_set(r->err, EINVAL, "%s: no driver for CUDA %s of cuda_images.json",
                                r->file, d->images[i].cuda);
    return 0;
}

/* ---- gpus.json ------------------------------------------------------------------------- */

static int
gpu_entry(struct rd *r, const json_t *e, struct ocra_plan_gpu *g)
{
    const json_t *cost = json_object_get(e, "cost_per_hour");
    char *cc = NULL;
    struct ocra_plan_ver v;

    if (get_str(r, e, "model", 99, &g->model) < 0)
        return -1;
    if (strlen(g->model) >= 32)
        return bad(r, "model", "at most 31 bytes");
    if (get_uint(r, e, "memory_gb", 4096, &g->memory_gb) < 0 ||
        get_str(r, e, "compute_capability", 2, &cc) < 0)
        return -1;
    ocra_plan_ver_parse(cc, &v, NULL);
    free(cc);
    if (v.seg[0] > 20 || v.seg[1] > 9)
        return bad(r, "compute_capability", "major.minor with a one-digit minor");
    g->cc = v.seg[0] * 10 + v.seg[1];
    if (json_is_number(cost) && json_number_value(cost) >= 0) {
        g->has_cost = true;
        g->cost = json_number_value(cost);
    } else if (!json_is_null(cost)) {
        return bad(r, "cost_per_hour", "a number >= 0 or null");
    }
    return 0;
}

static int
load_gpus(struct ocra_plan_data *d, const json_t *root, struct rd *r)
{
    const json_t *a = envelope(r, root, "gpus", "gpus"), *e;
    size_t i;

    if (!a)
        return -1;
    r->where[0] = '\0';
    if (get_uint(r, root, "usable_percent", 100, &d->usable_percent) < 0)
        return -1;
    d->gpus = ocra_xcalloc(json_array_size(a), sizeof(*d->gpus));
    json_array_foreach(a, i, e)
    {
        at(r, "gpus", i, e, "model");
        if (gpu_entry(r, e, &d->gpus[d->n_gpus++]) < 0)
            return -1;
        for (size_t j = 0; j + 1 < d->n_gpus; j++)
            if (strcmp(d->gpus[j].model, d->gpus[i].model) == 0)
                return bad(r, "model", "a model named once");
    }
    return 0;
}

/* ---- loading --------------------------------------------------------------------------- */

const char *
ocra_plan_data_dir_default(void)
{
    const char *env = getenv("OCRA_DATA_DIR");

    return env && *env ? env : OCRA_DATA_DIR;
}

typedef int load_fn(struct ocra_plan_data *d, const json_t *root, struct rd *r);

static int
load_one(struct ocra_plan_data *d, const char *file, load_fn *fn, struct ocra_err *err)
{
    char *path = ocra_xasprintf("%s/%s", d->dir, file);
    struct rd r = {.file = file, .err = err};
    json_t *root = ocra_json_load_file(path, TABLE_MAX, OCRA_JSON_STRICT, err);
    int ret = -1;

    if (!root) {
        ocra_err_wrap(err, "data table %s", path);
        goto out;
    }
    if (!json_is_object(root)) {
        ocra_err_set(err, EINVAL, "%s: expected a JSON object", file);
        goto out;
    }
    ret = fn(d, root, &r);
    if (ret < 0)
        ocra_err_wrap(err, "data table in %s", d->dir);
out:
    json_decref(root);
    free(path);
    return ret;
}

int
ocra_plan_data_load(const char *dir, struct ocra_plan_data **out, struct ocra_err *err)
{
    struct ocra_plan_data *d = ocra_xcalloc(1, sizeof(*d));

    d->dir = ocra_xstrdup(dir && *dir ? dir : ocra_plan_data_dir_default());
    if (load_one(d, "pytorch.json", load_torch, err) < 0 ||
        load_one(d, "tensorflow.json", load_tf, err) < 0 ||
        load_one(d, "cuda_images.json", load_images, err) < 0 ||
        load_one(d, "cuda_drivers.json", load_drivers, err) < 0 ||
        load_one(d, "gpus.json", load_gpus, err) < 0) {
        ocra_plan_data_free(d);
        return -1;
    }
    *out = d;
    return 0;
}

const char *
ocra_plan_data_ubuntu_python(const struct ocra_plan_data *d, const char *ubuntu)
{
    for (size_t i = 0; i < d->n_ubuntu_python; i++)
        if (strcmp(d->ubuntu_python[i].a, ubuntu) == 0)
            return d->ubuntu_python[i].b;
    return NULL;
}

const char *
ocra_plan_data_driver(const struct ocra_plan_data *d, const char *cuda)
{
    for (size_t i = 0; i < d->n_drivers; i++)
        if (strcmp(d->drivers[i].a, cuda) == 0)
            return d->drivers[i].b;
    return NULL;
}

/* ---- freeing --------------------------------------------------------------------------- */

static void
free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void
free_pairs(struct ocra_plan_pair *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(p[i].a);
        free(p[i].b);
    }
    free(p);
}

static void
free_torch(struct ocra_plan_torch *t)
{
    free(t->version);
    free(t->torchvision);
    free(t->torchaudio);
    free(t->pypi_default);
    free_strv(t->python, t->n_python);
    for (size_t i = 0; i < t->n_variants; i++) {
        free(t->variants[i].name);
        free(t->variants[i].cuda);
    }
    free(t->variants);
}

void
ocra_plan_data_free(struct ocra_plan_data *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n_torch; i++)
        free_torch(&d->torch[i]);
    free(d->torch);
    for (size_t i = 0; i < d->n_tf; i++) {
        free(d->tf[i].version);
        free(d->tf[i].cuda);
        free(d->tf[i].cudnn);
        free_strv(d->tf[i].python, d->tf[i].n_python);
    }
    free(d->tf);
    for (size_t i = 0; i < d->n_images; i++) {
        free(d->images[i].cuda);
        free(d->images[i].cudnn_tag);
        free_strv(d->images[i].ubuntu, d->images[i].n_ubuntu);
    }
    free(d->images);
    for (size_t i = 0; i < d->n_gpus; i++)
        free(d->gpus[i].model);
    free(d->gpus);
    free_pairs(d->ubuntu_python, d->n_ubuntu_python);
    free_pairs(d->cpu_images, d->n_cpu_images);
    free_pairs(d->drivers, d->n_drivers);
    free_pairs(d->minor_compat, d->n_minor_compat);
    free_strv(d->devel_packages, d->n_devel_packages);
    free(d->dir);
    free(d->torch_index_url);
    free(d->cuda_repo);
    free(d->pip_version);
    free(d);
}
