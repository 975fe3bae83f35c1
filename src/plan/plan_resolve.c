/* SPDX-License-Identifier: Apache-2.0 */
/*
 * plan_resolve.c: from toolsAndLibraries to a base image and pinned pip steps. Looks every
 * framework version up in the tables (an unknown or too new version is an error that names the
 * newest known one and the two ways on, never a guess), turns each into a constraint on the
 * base image's CUDA, cuDNN and Python, and picks the oldest nvidia/cuda release that meets them
 * all, trying the PyTorch CUDA variants newest first. docs/PLANNING.md §Resolution.
 */
#include "plan/plan_int.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_PIP_INDEX "https://pypi.org/simple"
#define DEFAULT_PYTHON "3.10"
#define VENV_PATH                                                                                  \
    "/opt/venv/bin:/usr/local/nvidia/bin:/usr/local/cuda/bin:/usr/local/sbin:/usr/local/bin:"      \
    "/usr/sbin:/usr/bin:/sbin:/bin"

/* What the tools ask for, gathered before any choice is made. */
struct want {
    const struct ocra_spec *spec;
    const struct ocra_plan_options *opts;
    const struct ocra_spec_tool *torch_tool, *tf_tool, *vision, *audio, *cuda, *cudnn, *python;
    const struct ocra_plan_torch *torch; /* NULL: no torch, or a version the table lacks */
    const char *torch_local;             /* "cu121", "cpu" or NULL */
    const struct ocra_plan_tf *tf;
    struct ocra_plan_ver cuda_pin, cudnn_pin, python_pin;
    unsigned gpus;
    bool custom_base, devel;
};

/* The choice being tried. */
struct pick {
    const struct ocra_plan_torch_variant *var; /* torch variant or NULL */
    bool tf_system;                            /* TensorFlow loads CUDA/cuDNN from the base */
    const struct ocra_plan_image *image;
    const char *ubuntu, *python, *cpu_image;
    const char *why; /* why this torch variant */
};

void
ocra_plan_problem(struct ocra_spec_problems *probs, const char *field, const char *rule,
                  const char *fmt, ...)
{
    struct ocra_spec_problem *p;
    va_list ap;
    int n;

    if (!probs)
        return;
    probs->items = ocra_xrealloc(probs->items, (probs->n + 1) * sizeof(*probs->items));
    p = &probs->items[probs->n++];
    memset(p, 0, sizeof(*p));
    snprintf(p->field, sizeof(p->field), "%s", field);
    snprintf(p->rule, sizeof(p->rule), "%s", rule);
    va_start(ap, fmt);
    n = vsnprintf(p->text, sizeof(p->text), fmt, ap);
    va_end(ap);
    if (n < 0)
        p->text[0] = '\0';
    (void)snprintf(p->msg, sizeof(p->msg), "%s", p->text);
}

/* ---- looking versions up --------------------------------------------------------------- */

static char *
field_of(const struct ocra_spec_tool *t)
{
    return ocra_xasprintf("toolsAndLibraries.%s", t->name);
}

/* Reports a version the table lacks; too new and unknown read differently (Cog #390, #1867). */
static void
unknown_version(struct want *w, const struct ocra_spec_tool *t, const char *file,
                const char *newest, const char *oldest, struct ocra_spec_problems *probs)
{
    struct ocra_plan_ver v, n;
    char *field = field_of(t);

    ocra_plan_ver_parse(newest, &n, NULL);
    if (ocra_plan_ver_parse(t->version, &v, NULL) && ocra_plan_ver_cmp(&v, &n) > 0)
        ocra_plan_problem(probs, field, "plan.version_newer",
                          "%s %s is newer than the newest version ocra knows (%s, data/%s); "
                          "set baseImage in the spec to build on an image you choose, or add "
                          "the version to data/%s (plan.data_dir)",
                          t->name, t->version, newest, file, file);
    else
        ocra_plan_problem(probs, field, "plan.version_unknown",
                          "%s %s is not a release in data/%s (known: %s to %s); use a known "
                          "release, set baseImage in the spec, or add it to data/%s",
                          t->name, t->version, file, oldest, newest, file);
    (void)w;
    free(field);
}

static const struct ocra_plan_torch *
find_torch(const struct ocra_plan_data *d, const struct ocra_plan_ver *v)
{
    for (size_t i = 0; i < d->n_torch; i++) {
        struct ocra_plan_ver x;

        ocra_plan_ver_parse(d->torch[i].version, &x, NULL);
        if (ocra_plan_ver_cmp(&x, v) == 0)
            return &d->torch[i];
    }
    return NULL;
}

static const struct ocra_plan_tf *
find_tf(const struct ocra_plan_data *d, const struct ocra_plan_ver *v)
{
    for (size_t i = 0; i < d->n_tf; i++) {
        struct ocra_plan_ver x;

        ocra_plan_ver_parse(d->tf[i].version, &x, NULL);
        if (ocra_plan_ver_cmp(&x, v) == 0)
            return &d->tf[i];
    }
    return NULL;
}

static const struct ocra_plan_torch_variant *
find_variant(const struct ocra_plan_torch *t, const char *name)
{
    for (size_t i = 0; i < t->n_variants; i++)
        if (strcmp(t->variants[i].name, name) == 0)
            return &t->variants[i];
    return NULL;
}

static void
look_up_torch(const struct ocra_plan_data *d, struct want *w, struct ocra_spec_problems *probs)
{
    const struct ocra_spec_tool *t = w->torch_tool;
    struct ocra_plan_ver v;
    char *field;

    if (!ocra_plan_ver_parse(t->version, &v, &w->torch_local) || !(w->torch = find_torch(d, &v))) {
        if (!w->custom_base)
            unknown_version(w, t, "pytorch.json", d->torch[d->n_torch - 1].version,
                            d->torch[0].version, probs);
        w->torch = NULL;
        return;
    }
    if (!w->torch_local || find_variant(w->torch, w->torch_local))
        return;
    field = field_of(t);
    ocra_plan_problem(probs, field, "plan.torch_variant",
                      "PyTorch %s: no +%s build in data/pytorch.json; PyTorch %s has %s",
                      t->version, w->torch_local, w->torch->version, "these builds:");
    for (size_t i = 0; i < w->torch->n_variants; i++) {
        struct ocra_spec_problem *p = &probs->items[probs->n - 1];
        size_t len = strlen(p->msg), tlen = strlen(p->text);

        snprintf(p->msg + len, sizeof(p->msg) - len, " +%s", w->torch->variants[i].name);
        snprintf(p->text + tlen, sizeof(p->text) - tlen, " +%s", w->torch->variants[i].name);
    }
    free(field);
    w->torch = NULL;
}

static void
look_up_tf(const struct ocra_plan_data *d, struct want *w, struct ocra_spec_problems *probs)
{
    const struct ocra_spec_tool *t = w->tf_tool;
    struct ocra_plan_ver v;
    const char *local = NULL;

    if (ocra_plan_ver_parse(t->version, &v, &local) && !local && (w->tf = find_tf(d, &v)))
        return;
    if (!w->custom_base)
        unknown_version(w, t, "tensorflow.json", d->tf[d->n_tf - 1].version, d->tf[0].version,
                        probs);
}

/* torchvision/torchaudio must be the release that goes with torch. */
static void
check_companion(const struct want *w, const struct ocra_spec_tool *t, const char *want,
                struct ocra_spec_problems *probs)
{
    struct ocra_plan_ver a, b;
    char *field;

    if (!t || !w->torch)
        return;
    ocra_plan_ver_parse(want, &b, NULL);
    if (ocra_plan_ver_parse(t->version, &a, NULL) && ocra_plan_ver_cmp(&a, &b) == 0)
        return;
    field = field_of(t);
    ocra_plan_problem(probs, field, "plan.conflict",
                      "%s %s does not go with PyTorch %s, which needs %s %s "
                      "(data/pytorch.json)",
                      t->name, t->version, w->torch->version, t->package, want);
    free(field);
}

/* System tools pin the base: CUDA x[.y[.z]], cuDNN major, Python major.minor. */
static void
read_pins(struct want *w, struct ocra_spec_problems *probs)
{
    const struct ocra_spec_tool *pins[] = {w->cuda, w->cudnn, w->python};
    struct ocra_plan_ver *out[] = {&w->cuda_pin, &w->cudnn_pin, &w->python_pin};

    for (size_t i = 0; i < 3; i++) {
        char *field;

        if (!pins[i] || ocra_plan_ver_parse(pins[i]->version, out[i], NULL))
            continue;
        field = field_of(pins[i]);
        ocra_plan_problem(probs, field, "plan.pin", "%s %s: expected a plain release version",
                          pins[i]->name, pins[i]->version);
        free(field);
    }
    if (w->python && w->python_pin.n < 2)
        w->python_pin.n = 0;
}

static bool
listed(const char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], s) == 0)
            return true;
    return false;
}

static void
gather(const struct ocra_plan_data *d, struct want *w, struct ocra_spec_problems *probs)
{
    const struct ocra_spec *s = w->spec;

    for (size_t i = 0; i < s->n_tools; i++) {
        const struct ocra_spec_tool *t = &s->tools[i];
        const char *pkg = t->package;

        if (!t->system && w->opts->n_allowed_tools &&
            !listed(w->opts->allowed_tools, w->opts->n_allowed_tools, pkg)) {
            char *field = field_of(t);

            ocra_plan_problem(probs, field, "plan.tool_not_allowed",
                              "%s (%s) is not in the operator's plan.allowed_tools", t->name, pkg);
            free(field);
        }
        if (listed((const char *const *)d->devel_packages, d->n_devel_packages, pkg))
            w->devel = true;
        w->torch_tool = strcmp(pkg, "torch") ? w->torch_tool : t;
        w->tf_tool = strcmp(pkg, "tensorflow") ? w->tf_tool : t;
        w->vision = strcmp(pkg, "torchvision") ? w->vision : t;
        w->audio = strcmp(pkg, "torchaudio") ? w->audio : t;
        w->cuda = strcmp(pkg, "cuda") ? w->cuda : t;
        w->cudnn = strcmp(pkg, "cudnn") ? w->cudnn : t;
        w->python = strcmp(pkg, "python") ? w->python : t;
        if (strcmp(pkg, "nccl") == 0 && !w->custom_base) {
            char *field = field_of(t);

            ocra_plan_problem(probs, field, "plan.pin",
                              "NCCL %s: NCCL comes with the framework wheels and cannot be "
                              "pinned on its own; remove it, or set baseImage to an image "
                              "that has it",
                              t->version);
            free(field);
        }
    }
}

/* ---- choosing the base ----------------------------------------------------------------- */

static bool
python_ok(const struct want *w, const char *py)
{
    struct ocra_plan_ver v;

    ocra_plan_ver_parse(py, &v, NULL);
    if (w->python_pin.n && ocra_plan_ver_cmp_n(&v, &w->python_pin, 2) != 0)
        return false;
    if (w->torch && !listed((const char *const *)w->torch->python, w->torch->n_python, py))
        return false;
    return !w->tf || listed((const char *const *)w->tf->python, w->tf->n_python, py);
}

/* Does image im meet every CUDA/cuDNN constraint of w with torch variant var? */
static bool
image_ok(const struct want *w, const struct ocra_plan_image *im,
         const struct ocra_plan_torch_variant *var, bool tf_system)
{
    struct ocra_plan_ver c, x;

    ocra_plan_ver_parse(im->cuda, &c, NULL);
    if (w->cuda_pin.n && ocra_plan_ver_cmp_n(&c, &w->cuda_pin, w->cuda_pin.n) != 0)
        return false;
    if (w->cudnn_pin.n && im->cudnn != w->cudnn_pin.seg[0])
        return false;
    if (var) {
        ocra_plan_ver_parse(var->cuda, &x, NULL);
        if (c.seg[0] != x.seg[0] || ocra_plan_ver_cmp_n(&c, &x, 2) < 0)
            return false;
    }
    if (w->tf) {
        ocra_plan_ver_parse(w->tf->cuda, &x, NULL);
        if (c.seg[0] != x.seg[0] || ocra_plan_ver_cmp_n(&c, &x, 2) < 0)
            return false;
        ocra_plan_ver_parse(w->tf->cudnn, &x, NULL);
        if (tf_system && im->cudnn != x.seg[0])
            return false;
    }
    return true;
}

/* Newest Python among ubuntus that w allows (pass 1: only the preferred one). */
static const char *
pick_ubuntu(const struct ocra_plan_data *d, const struct want *w, char *const *ubuntu, size_t n,
            const char *prefer)
{
    for (size_t i = n; i-- > 0;) {
        const char *py = ocra_plan_data_ubuntu_python(d, ubuntu[i]);

        if (py && python_ok(w, py) && (!prefer || strcmp(py, prefer) == 0))
            return ubuntu[i];
    }
    return NULL;
}

static bool
pick_gpu_base(const struct ocra_plan_data *d, const struct want *w, struct pick *pk)
{
    const char *prefer = w->opts->python && *w->opts->python ? w->opts->python : DEFAULT_PYTHON;

    /* nothing asks for a minimum CUDA: take the newest, as the pip wheels of the day do */
    bool newest = !w->torch && !w->tf && !w->cuda_pin.n;

    for (int pass = 0; pass < 2; pass++)
        for (size_t k = 0; k < d->n_images; k++) {
            const struct ocra_plan_image *im = &d->images[newest ? d->n_images - 1 - k : k];
            const char *u;

            if (!image_ok(w, im, pk->var, pk->tf_system))
                continue;
            u = pick_ubuntu(d, w, im->ubuntu, im->n_ubuntu, pass == 0 ? prefer : NULL);
            if (u) {
                pk->image = im;
                pk->ubuntu = u;
                pk->python = ocra_plan_data_ubuntu_python(d, u);
                return true;
            }
        }
    return false;
}

static bool
pick_cpu_base(const struct ocra_plan_data *d, const struct want *w, struct pick *pk)
{
    const char *prefer = w->opts->python && *w->opts->python ? w->opts->python : DEFAULT_PYTHON;

    for (int pass = 0; pass < 2; pass++)
        for (size_t i = d->n_cpu_images; i-- > 0;) {
            const char *py = ocra_plan_data_ubuntu_python(d, d->cpu_images[i].b);

            if (py && python_ok(w, py) && (pass == 1 || strcmp(py, prefer) == 0)) {
                pk->cpu_image = d->cpu_images[i].a;
                pk->ubuntu = d->cpu_images[i].b;
                pk->python = py;
                return true;
            }
        }
    return false;
}

/* Lists what the constraints were, for the error when nothing meets them. */
static void
explain_constraints(const struct want *w, struct ocra_buf *b)
{
    if (w->torch) {
        ocra_buf_printf(b, "PyTorch %s has CUDA builds", w->torch->version);
        for (size_t i = 0; i < w->torch->n_variants; i++)
            if (w->torch->variants[i].cuda &&
                (!w->torch_local || !strcmp(w->torch_local, w->torch->variants[i].name)))
                ocra_buf_printf(b, " %s", w->torch->variants[i].cuda);
        ocra_buf_printf(b, " (Python %s-%s); ", w->torch->python[0],
                        w->torch->python[w->torch->n_python - 1]);
    }
    if (w->tf)
        ocra_buf_printf(b,
                        "TensorFlow %s was built and tested with CUDA %s and cuDNN %s%s "
                        "(Python %s-%s); ",
                        w->tf->version, w->tf->cuda, w->tf->cudnn,
                        w->torch ? ", which it loads from the base image beside PyTorch" : "",
                        w->tf->python[0], w->tf->python[w->tf->n_python - 1]);
    if (w->cuda)
        ocra_buf_printf(b, "the spec pins CUDA %s; ", w->cuda->version);
    if (w->cudnn)
        ocra_buf_printf(b, "the spec pins cuDNN %s; ", w->cudnn->version);
    if (w->python)
        ocra_buf_printf(b, "the spec pins Python %s; ", w->python->version);
}

static void
no_base(const struct want *w, const char *what, struct ocra_spec_problems *probs)
{
    struct ocra_buf b;

    ocra_buf_init(&b);
    explain_constraints(w, &b);
    ocra_plan_problem(probs, "toolsAndLibraries", "plan.conflict",
                      "%sno %s in data/cuda_images.json satisfies all of these; change a "
                      "version or set baseImage",
                      b.data ? b.data : "", what);
    ocra_buf_fini(&b);
}

/* Tries the torch variants newest CUDA first (or the one the +cuXYZ suffix names). */
static bool
resolve_gpu(const struct ocra_plan_data *d, struct want *w, struct pick *pk,
            struct ocra_spec_problems *probs)
{
    pk->tf_system = w->tf && (w->torch || !w->tf->and_cuda || w->cudnn);
    if (w->torch_local && strcmp(w->torch_local, "cpu") == 0) {
        ocra_plan_problem(probs, "toolsAndLibraries.PyTorch", "plan.conflict",
                          "PyTorch %s is the CPU build but workload.gpus asks for GPUs; drop "
                          "+cpu or set workload.gpus to 0",
                          w->torch_tool->version);
        return false;
    }
    if (!w->torch)
        return pick_gpu_base(d, w, pk) || (no_base(w, "nvidia/cuda image", probs), false);
    for (size_t i = w->torch->n_variants; i-- > 0;) {
        pk->var = &w->torch->variants[i];
        if (!pk->var->cuda || (w->torch_local && strcmp(w->torch_local, pk->var->name)))
            continue;
        if (pick_gpu_base(d, w, pk)) {
            pk->why = w->torch_local ? "the spec's +suffix names it"
                                     : "the newest CUDA build that every other constraint allows";
            return true;
        }
    }
    pk->var = NULL;
    no_base(w, "nvidia/cuda image", probs);
    return false;
}

static bool
resolve_cpu(const struct ocra_plan_data *d, struct want *w, struct pick *pk,
            struct ocra_spec_problems *probs)
{
    if (w->torch_local && strcmp(w->torch_local, "cpu") != 0)
        ocra_plan_problem(probs, "toolsAndLibraries.PyTorch", "plan.conflict",
                          "PyTorch %s is a CUDA build but workload.gpus is 0 (CPU only); drop "
                          "the +%s suffix or ask for GPUs",
                          w->torch_tool->version, w->torch_local);
    if (w->cuda || w->cudnn)
        ocra_plan_problem(probs, w->cuda ? "toolsAndLibraries.CUDA" : "toolsAndLibraries.cuDNN",
                          "plan.conflict",
                          "the spec pins %s but workload.gpus is 0: a CPU-only plan has no "
                          "CUDA; remove the pin or ask for GPUs",
                          w->cuda ? "CUDA" : "cuDNN");
    if (w->torch)
        pk->var = find_variant(w->torch, "cpu");
    pk->why = "CPU-only plan";
    if (pick_cpu_base(d, w, pk))
        return true;
    no_base(w, "CPU base image", probs);
    return false;
}

/* ---- writing the toolchain ------------------------------------------------------------- */

void
ocra_plan_tc_note(struct ocra_plan_tc *tc, const char *fmt, ...)
{
    va_list ap;
    char *s;
    int n;

    if (tc->n_notes == OCRA_PLAN_MAX_NOTES)
        return;
    va_start(ap, fmt);
    n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    tc->notes[tc->n_notes++] = s;
}

void
ocra_plan_tc_env(struct ocra_plan_tc *tc, const char *name, const char *value)
{
    size_t i = tc->n_env;

    if (tc->n_env == OCRA_PLAN_MAX_ENV)
        abort(); /* the set of settings is fixed by this file */
    while (i > 0 && strcmp(tc->env[i - 1].a, name) > 0) {
        tc->env[i] = tc->env[i - 1];
        i--;
    }
    tc->env[i].a = ocra_xstrdup(name);
    tc->env[i].b = ocra_xstrdup(value);
    tc->n_env++;
}

static void
step_fini(struct ocra_plan_step *s)
{
    for (size_t i = 0; i < s->n_reqs; i++)
        free(s->reqs[i]);
    free(s->reqs);
    free(s->what);
    free(s->index_url);
    memset(s, 0, sizeof(*s));
}

void
ocra_plan_tc_fini(struct ocra_plan_tc *tc)
{
    for (size_t i = 0; i < tc->n_steps; i++)
        step_fini(&tc->steps[i]);
    for (size_t i = 0; i < tc->n_env; i++) {
        free(tc->env[i].a);
        free(tc->env[i].b);
    }
    for (size_t i = 0; i < tc->n_notes; i++)
        free(tc->notes[i]);
    for (size_t i = 0; i < tc->n_image_tools; i++)
        free(tc->image_tools[i]);
    free(tc->image_tools);
    for (size_t i = 0; i < tc->n_extra_index_urls; i++)
        free(tc->extra_index_urls[i]);
    free(tc->extra_index_urls);
    free(tc->base);
    free(tc->base_mirror);
    free(tc->cuda);
    free(tc->flavor);
    free(tc->ubuntu);
    free(tc->python);
    free(tc->driver_min);
    free(tc->driver_compat);
    free(tc->pip_version);
    memset(tc, 0, sizeof(*tc));
}

static struct ocra_plan_step *
add_step(struct ocra_plan_tc *tc, const char *what, const char *index, bool extra)
{
    struct ocra_plan_step *s = &tc->steps[tc->n_steps++];

    s->what = ocra_xstrdup(what);
    s->index_url = ocra_xstrdup(index);
    s->extra = extra;
    s->reqs = ocra_xcalloc(OCRA_SPEC_MAX_TOOLS + 4, sizeof(char *));
    return s;
}

static void
add_req(struct ocra_plan_step *s, char *req)
{
    s->reqs[s->n_reqs++] = req;
}

static const char *
pip_index(const struct want *w)
{
    return w->opts->pip_index_url && *w->opts->pip_index_url ? w->opts->pip_index_url
                                                             : DEFAULT_PIP_INDEX;
}

/* The variant PyPI's plain torch==X means, or the one a CUDA pin names, for custom bases. */
static const struct ocra_plan_torch_variant *
custom_base_variant(const struct want *w)
{
    const struct ocra_plan_torch *t = w->torch;

    if (w->torch_local)
        return find_variant(t, w->torch_local);
    if (w->gpus == 0)
        return find_variant(t, "cpu");
    for (size_t i = 0; w->cuda_pin.n && i < t->n_variants; i++) {
        struct ocra_plan_ver c;

        if (t->variants[i].cuda && ocra_plan_ver_parse(t->variants[i].cuda, &c, NULL) &&
            ocra_plan_ver_cmp_n(&c, &w->cuda_pin, 2) == 0)
            return &t->variants[i];
    }
    return find_variant(t, t->pypi_default);
}

static void
torch_step(const struct ocra_plan_data *d, const struct want *w, const struct pick *pk,
           struct ocra_plan_tc *tc, char **pin)
{
    const char *base = w->opts->torch_index_url && *w->opts->torch_index_url
                           ? w->opts->torch_index_url
                           : d->torch_index_url;
    char *index = ocra_xasprintf("%s/%s", base, pk->var->name);
    struct ocra_plan_step *s = add_step(tc, "PyTorch", index, false);

    *pin = ocra_xasprintf("torch==%s+%s", w->torch->version, pk->var->name);
    add_req(s, ocra_xstrdup(*pin));
    if (w->audio)
        add_req(s, ocra_xasprintf("torchaudio==%s", w->torch->torchaudio));
    if (w->vision)
        add_req(s, ocra_xasprintf("torchvision==%s", w->torch->torchvision));
    s->n_own = s->n_reqs;
    free(index);
}

static void
pip_steps(const struct ocra_plan_data *d, const struct want *w, const struct pick *pk,
          struct ocra_plan_tc *tc)
{
    char *torch_pin = NULL, *tf_pin = NULL;
    struct ocra_plan_step *s;

    if (w->torch_tool && w->torch && pk->var)
        torch_step(d, w, pk, tc, &torch_pin);
    else if (w->torch_tool)
        torch_pin = ocra_xasprintf("torch==%s", w->torch_tool->version);
    if (w->tf_tool) {
        bool and_cuda = w->tf && w->gpus > 0 && !pk->tf_system && !w->custom_base;

        tf_pin = ocra_xasprintf("tensorflow==%s", w->tf_tool->version);
        s = add_step(tc, "TensorFlow", pip_index(w), true);
        add_req(s, and_cuda ? ocra_xasprintf("tensorflow[and-cuda]==%s", w->tf_tool->version)
                            : ocra_xstrdup(tf_pin));
        s->n_own = 1;
    }
    s = add_step(tc, "other packages", pip_index(w), true);
    for (size_t i = 0; i < w->spec->n_tools; i++) {
        const struct ocra_spec_tool *t = &w->spec->tools[i];

        if (t->system || t == w->tf_tool || (w->torch && pk->var && t == w->torch_tool) ||
            (w->torch && pk->var && (t == w->vision || t == w->audio)))
            continue;
        add_req(s, t == w->torch_tool ? ocra_xstrdup(torch_pin)
                                      : ocra_xasprintf("%s==%s", t->package, t->version));
    }
    s->n_own = s->n_reqs;
    if (s->n_reqs == 0) {
        step_fini(s);
        tc->n_steps--;
    } else {
        /* repeated so that pip's resolver keeps, never replaces, what the layers above hold */
        if (torch_pin && w->torch && pk->var)
            add_req(s, ocra_xstrdup(torch_pin));
        if (tf_pin)
            add_req(s, ocra_xstrdup(tf_pin));
    }
    free(torch_pin);
    free(tf_pin);
}

/* Runtime settings by framework and workload type (docs/PLANNING.md §Runtime settings). */
static void
settings(const struct want *w, struct ocra_plan_tc *tc)
{
    struct ocra_plan_ver v, v21 = {{2, 1}, 2}, v22 = {{2, 2}, 2};
    bool torch_ok = w->torch_tool && ocra_plan_ver_parse(w->torch_tool->version, &v, NULL);

    ocra_plan_tc_env(tc, "PYTHONDONTWRITEBYTECODE", "1");
    ocra_plan_tc_env(tc, "PYTHONUNBUFFERED", "1");
    if (!w->custom_base) {
        ocra_plan_tc_env(tc, "VIRTUAL_ENV", "/opt/venv");
        ocra_plan_tc_env(tc, "PATH", VENV_PATH);
    }
    if (w->gpus == 0)
        return;
    if (torch_ok && ocra_plan_ver_cmp_n(&v, &v21, 2) >= 0)
        ocra_plan_tc_env(tc, "PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True");
    if (w->tf_tool)
        ocra_plan_tc_env(tc, "TF_FORCE_GPU_ALLOW_GROWTH", "true");
    if (w->gpus > 1 && w->spec->workload.type == OCRA_SPEC_TRAINING) {
        ocra_plan_tc_env(tc, "NCCL_DEBUG", "WARN");
        if (w->torch_tool)
            ocra_plan_tc_env(tc,
                             torch_ok && ocra_plan_ver_cmp_n(&v, &v22, 2) >= 0
                                 ? "TORCH_NCCL_ASYNC_ERROR_HANDLING"
                                 : "NCCL_ASYNC_ERROR_HANDLING",
                             "1");
    }
}

static void
base_gpu(const struct ocra_plan_data *d, const struct want *w, const struct pick *pk,
         struct ocra_plan_tc *tc)
{
    const struct ocra_plan_image *im = pk->image;
    bool cudnn = pk->tf_system || w->cudnn;
    struct ocra_plan_ver c;

    tc->gpu = true;
    tc->cuda = ocra_xstrdup(im->cuda);
    tc->cudnn = cudnn ? im->cudnn : 0;
    tc->flavor = ocra_xstrdup(w->devel ? "devel" : "runtime");
    tc->base = ocra_xasprintf("%s:%s%s%s-%s-ubuntu%s", d->cuda_repo, im->cuda, cudnn ? "-" : "",
                              cudnn ? im->cudnn_tag : "", tc->flavor, pk->ubuntu);
    tc->driver_min = ocra_xstrdup(ocra_plan_data_driver(d, im->cuda));
    ocra_plan_ver_parse(im->cuda, &c, NULL);
    for (size_t i = 0; i < d->n_minor_compat; i++)
        if ((unsigned)strtoul(d->minor_compat[i].a, NULL, 10) == c.seg[0])
            tc->driver_compat = ocra_xstrdup(d->minor_compat[i].b);
    ocra_plan_tc_note(
        tc,
        "base: %s, the %s CUDA release in data/cuda_images.json that meets "
        "every constraint%s; %s flavour%s",
        tc->base, !w->torch && !w->tf && !w->cuda_pin.n ? "newest" : "oldest",
        cudnn ? (pk->tf_system ? " (with cuDNN for TensorFlow)" : " (cuDNN pinned)")
              : " (no cuDNN: the pip wheels bring their own)",
        tc->flavor, w->devel ? " (a package that compiles CUDA code at install or run time)" : "");
    ocra_plan_tc_note(tc, "driver: NVIDIA >= %s for CUDA %s%s%s%s", tc->driver_min, im->cuda,
                      tc->driver_compat ? "; >= " : "", tc->driver_compat ? tc->driver_compat : "",
                      tc->driver_compat ? " with CUDA minor version compatibility" : "");
}

static void
base_note_python(const struct want *w, const struct pick *pk, struct ocra_plan_tc *tc)
{
    const char *prefer = w->opts->python && *w->opts->python ? w->opts->python : DEFAULT_PYTHON;

    ocra_plan_tc_note(tc, "Python %s: the python3 of Ubuntu %s, in a venv at /opt/venv (%s)",
                      pk->python, pk->ubuntu,
                      w->python                         ? "pinned by the spec"
                      : strcmp(pk->python, prefer) == 0 ? "the preferred version, plan.python"
                                                        : "the preferred plan.python is not "
                                                          "possible with these frameworks");
}

static void
image_tools(const struct want *w, const struct pick *pk, struct ocra_plan_tc *tc)
{
    const struct ocra_spec *s = w->spec;

    tc->image_tools = ocra_xcalloc(s->n_tools + 3, sizeof(char *));
    for (size_t i = 0; i < s->n_tools; i++) {
        const struct ocra_spec_tool *t = &s->tools[i];
        const char *v = t->version;
        char *own = NULL;

        if (t == w->torch_tool && w->torch && pk->var && !w->torch_local)
            v = own = ocra_xasprintf("%s+%s", w->torch->version, pk->var->name);
        else if (t == w->cuda && tc->cuda)
            v = tc->cuda;
        else if (t == w->python && tc->python)
            v = tc->python;
        tc->image_tools[tc->n_image_tools++] = ocra_xasprintf("%s=%s", t->name, v);
        free(own);
    }
    if (!w->cuda && tc->cuda)
        tc->image_tools[tc->n_image_tools++] = ocra_xasprintf("CUDA=%s", tc->cuda);
    if (!w->cudnn && tc->cudnn)
        tc->image_tools[tc->n_image_tools++] = ocra_xasprintf("cuDNN=%u", tc->cudnn);
    if (!w->python && tc->python)
        tc->image_tools[tc->n_image_tools++] = ocra_xasprintf("Python=%s", tc->python);
}

static void
framework_notes(const struct ocra_plan_data *d, const struct want *w, const struct pick *pk,
                struct ocra_plan_tc *tc)
{
    const char *base = w->opts->torch_index_url && *w->opts->torch_index_url
                           ? w->opts->torch_index_url
                           : d->torch_index_url;

    if (w->torch_tool && w->torch && pk->var)
        ocra_plan_tc_note(tc, "PyTorch %s: the %s build from %s/%s (%s)", w->torch->version,
                          pk->var->name, base, pk->var->name, pk->why);
    else if (w->torch_tool)
        ocra_plan_tc_note(tc,
                          "PyTorch %s: not in data/pytorch.json; installed as given from "
                          "the package index on the spec's baseImage",
                          w->torch_tool->version);
    if (w->tf && w->tf_tool)
        ocra_plan_tc_note(tc, "TensorFlow %s: built and tested with CUDA %s, cuDNN %s; %s",
                          w->tf->version, w->tf->cuda, w->tf->cudnn,
                          w->gpus == 0     ? "CPU-only plan"
                          : w->custom_base ? "the base image must provide them"
                          : pk->tf_system  ? "it loads them from the base image"
                                           : "the and-cuda extra installs them as pip packages");
    else if (w->tf_tool)
        ocra_plan_tc_note(tc,
                          "TensorFlow %s: not in data/tensorflow.json; installed as given "
                          "from the package index on the spec's baseImage",
                          w->tf_tool->version);
}

static void
finish(const struct ocra_plan_data *d, const struct want *w, const struct pick *pk,
       struct ocra_plan_tc *tc)
{
    framework_notes(d, w, pk, tc);
    if (w->custom_base) {
        tc->base = ocra_xstrdup(w->spec->base_image);
        tc->custom_base = true;
        tc->gpu = w->gpus > 0;
        ocra_plan_tc_note(tc,
                          "base: %s, the spec's baseImage: used as given; ocra assumes it "
                          "has python3 with pip and checks no CUDA constraint",
                          tc->base);
    } else if (pk->image) {
        base_gpu(d, w, pk, tc);
    } else {
        tc->base = ocra_xstrdup(pk->cpu_image);
        ocra_plan_tc_note(tc, "base: %s, CPU only (workload.gpus is 0)", tc->base);
    }
    if (!w->custom_base) {
        tc->ubuntu = ocra_xstrdup(pk->ubuntu);
        tc->python = ocra_xstrdup(pk->python);
        tc->pip_version = ocra_xstrdup(d->pip_version);
        base_note_python(w, pk, tc);
    }
    tc->base_mirror = ocra_plan_mirror_apply(w->opts, tc->base);
    if (strcmp(tc->base, tc->base_mirror) != 0)
        ocra_plan_tc_note(tc, "mirror: %s is pulled as %s (plan.mirrors)", tc->base,
                          tc->base_mirror);
    tc->extra_index_urls = ocra_xcalloc(w->opts->n_extra_index_urls + 1, sizeof(char *));
    for (size_t i = 0; i < w->opts->n_extra_index_urls; i++)
        tc->extra_index_urls[tc->n_extra_index_urls++] = ocra_xstrdup(w->opts->extra_index_urls[i]);
    pip_steps(d, w, pk, tc);
    settings(w, tc);
    image_tools(w, pk, tc);
}

size_t
ocra_plan_resolve(const struct ocra_plan_data *d, const struct ocra_spec *spec,
                  const struct ocra_plan_options *opts, unsigned gpus, struct ocra_plan_tc *tc,
                  struct ocra_spec_problems *probs)
{
    struct want w = {.spec = spec, .opts = opts, .gpus = gpus};
    struct pick pk = {0};
    size_t before = probs->n;
    bool ok;

    w.custom_base = spec->base_image != NULL;
    if (w.custom_base) {
        char *pulled = ocra_plan_mirror_apply(opts, spec->base_image);

        ocra_plan_base_check(d, opts, spec->base_image, pulled, &tc->base_listed, probs);
        free(pulled);
    }
    gather(d, &w, probs);
    read_pins(&w, probs);
    if (w.torch_tool)
        look_up_torch(d, &w, probs);
    if (w.tf_tool)
        look_up_tf(d, &w, probs);
    check_companion(&w, w.vision, w.torch ? w.torch->torchvision : NULL, probs);
    check_companion(&w, w.audio, w.torch ? w.torch->torchaudio : NULL, probs);
    if (probs->n > before)
        return probs->n - before;
    if (w.custom_base) {
        pk.var = w.torch ? custom_base_variant(&w) : NULL;
        pk.why = w.torch_local ? "the spec's +suffix names it"
                 : gpus == 0   ? "CPU-only plan"
                 : w.cuda_pin.n && pk.var && strcmp(pk.var->name, w.torch->pypi_default)
                     ? "the build of the spec's CUDA pin"
                     : "the build PyPI serves for this version";
        pk.tf_system = true;
        ok = true;
    } else {
        ok = gpus > 0 ? resolve_gpu(d, &w, &pk, probs) : resolve_cpu(d, &w, &pk, probs);
    }
    if (!ok || probs->n > before)
        return probs->n - before;
    finish(d, &w, &pk, tc);
    if (!w.custom_base) /* the planner's own base, after mirrors */
        ocra_plan_base_check(d, opts, NULL, tc->base_mirror, NULL, probs);
    return probs->n - before;
}

/* ---- mirrors --------------------------------------------------------------------------- */

/* Docker Hub's implicit spellings: docker.io/library/ubuntu is ubuntu. */
static const char *
hub_short(const char *repo)
{
    if (!strncmp(repo, "docker.io/", 10))
        repo += 10;
    else if (!strncmp(repo, "index.docker.io/", 16))
        repo += 16;
    if (!strncmp(repo, "library/", 8))
        repo += 8;
    return repo;
}

char *
ocra_plan_mirror_apply(const struct ocra_plan_options *opts, const char *ref)
{
    const char *slash = strrchr(ref, '/'), *at = strchr(ref, '@'), *colon, *repo;
    size_t end;
    char *whole, *out = NULL;

    colon = strchr(slash ? slash : ref, ':');
    end = at ? (size_t)(at - ref) : strlen(ref);
    if (colon && (size_t)(colon - ref) < end)
        end = (size_t)(colon - ref);
    whole = ocra_xstrndup(ref, end);
    repo = hub_short(whole);
    for (size_t i = 0; i < opts->n_mirrors && !out; i++) {
        const char *from = hub_short(opts->mirrors[i].from), *to = opts->mirrors[i].to;
        size_t n = strlen(from);

        if (strcmp(from, "*") == 0)
            out = ocra_xasprintf("%s/%s%s", to, repo, ref + end);
        else if (n > 2 && !strcmp(from + n - 2, "/*") && !strncmp(repo, from, n - 1))
            out = ocra_xasprintf("%s/%s%s", to, repo + n - 1, ref + end);
        else if (strcmp(from, repo) == 0)
            out = ocra_xasprintf("%s%s", to, ref + end);
    }
    free(whole);
    return out ? out : ocra_xstrdup(ref);
}
