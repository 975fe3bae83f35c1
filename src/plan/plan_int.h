/* SPDX-License-Identifier: Apache-2.0 */
/*
 * plan_int.h: what the files of src/plan share. The loaded data tables, release-version
 * arithmetic, the problem list, and the resolved toolchain (base image, Python, pip steps,
 * runtime settings) that resolution produces and the Dockerfile writer and hash consume.
 */
#ifndef OCRA_PLAN_INT_H
#define OCRA_PLAN_INT_H

#include "plan/plan.h"

/* ---- versions: release segments only ("2.1.0", "12.1", "3.10") ------------------------- */

#define OCRA_PLAN_VER_SEGS 4

struct ocra_plan_ver {
    unsigned seg[OCRA_PLAN_VER_SEGS];
    unsigned n; /* segments written; 0: not a plain release */
};

/*
 * Parses the release part of s up to an optional "+local" (returned in *local, or NULL) into
 * v. Returns false for anything else (pre-, post-, dev-releases, epochs, > 4 segments).
 */
bool ocra_plan_ver_parse(const char *s, struct ocra_plan_ver *v, const char **local);
/* Numeric comparison, missing segments count as 0 ("2.1" == "2.1.0"): <0, 0, >0. */
int ocra_plan_ver_cmp(const struct ocra_plan_ver *a, const struct ocra_plan_ver *b);
/* Compares the first n segments only (n = 2: major.minor). */
int ocra_plan_ver_cmp_n(const struct ocra_plan_ver *a, const struct ocra_plan_ver *b, unsigned n);

/* ---- the tables ------------------------------------------------------------------------ */

struct ocra_plan_torch_variant {
    char *name; /* "cu121", "cpu" */
    char *cuda; /* "12.1"; NULL for cpu */
};

struct ocra_plan_torch {
    char *version, *torchvision, *torchaudio, *pypi_default;
    char **python;
    size_t n_python;
    struct ocra_plan_torch_variant *variants; /* GPU variants by CUDA ascending, then cpu */
    size_t n_variants;
};

struct ocra_plan_tf {
    char *version, *cuda, *cudnn;
    char **python;
    size_t n_python;
    bool and_cuda;
};

struct ocra_plan_image {
    char *cuda; /* "12.1.1" */
    unsigned cudnn;
    char *cudnn_tag; /* "cudnn8", "cudnn" */
    char **ubuntu;   /* ascending */
    size_t n_ubuntu;
};

struct ocra_plan_pair {
    char *a, *b;
};

struct ocra_plan_gpu {
    char *model;
    unsigned memory_gb;
    unsigned cc; /* compute capability x 10: 89 for 8.9 */
    bool has_cost;
    double cost;
};

struct ocra_plan_data {
    char *dir;
    char *torch_index_url;
    struct ocra_plan_torch *torch; /* ascending by version */
    size_t n_torch;
    struct ocra_plan_tf *tf; /* ascending by version */
    size_t n_tf;
    char *cuda_repo;                /* "nvidia/cuda" */
    struct ocra_plan_image *images; /* ascending by CUDA version */
    size_t n_images;
    struct ocra_plan_pair *ubuntu_python; /* a: ubuntu, b: python */
    size_t n_ubuntu_python;
    struct ocra_plan_pair *cpu_images; /* a: image, b: ubuntu */
    size_t n_cpu_images;
    char *pip_version;
    char **devel_packages;
    size_t n_devel_packages;
    struct ocra_plan_pair *drivers; /* a: CUDA release, b: driver */
    size_t n_drivers;
    struct ocra_plan_pair *minor_compat; /* a: major, b: driver */
    size_t n_minor_compat;
    struct ocra_plan_gpu *gpus;
    size_t n_gpus;
    unsigned usable_percent;
};

/* Python of an Ubuntu release in the table, or NULL. */
const char *ocra_plan_data_ubuntu_python(const struct ocra_plan_data *d, const char *ubuntu);
/* Toolkit driver of a CUDA release, or NULL. */
const char *ocra_plan_data_driver(const struct ocra_plan_data *d, const char *cuda);

/* ---- problems -------------------------------------------------------------------------- */

/* Appends {field, rule, formatted msg} to probs (NULL: dropped). */
void ocra_plan_problem(struct ocra_spec_problems *probs, const char *field, const char *rule,
                       const char *fmt, ...) OCRA_PRINTF(4, 5);

/* ---- the resolved toolchain ------------------------------------------------------------ */

#define OCRA_PLAN_MAX_STEPS 3
#define OCRA_PLAN_MAX_ENV 12
#define OCRA_PLAN_MAX_NOTES 16

/* One pip install layer. */
struct ocra_plan_step {
    char *what;      /* "PyTorch", "TensorFlow", "other packages" */
    char *index_url; /* --index-url */
    bool extra;      /* add the operator's --extra-index-url list */
    char **reqs;     /* "torch==2.1.0+cu121"; the first n_own are this step's own */
    size_t n_reqs, n_own;
};

struct ocra_plan_tc {
    char *base;        /* resolved or the spec's, before mirrors */
    char *base_mirror; /* after mirrors */
    bool custom_base;  /* baseImage from the spec: no apt layer, no venv */
    bool base_listed;  /* plan.base_images names the spec's base exactly (ocra_plan_base_listed) */
    bool gpu;
    char *cuda;     /* "12.1.1" or NULL */
    unsigned cudnn; /* 0: none in the base */
    char *flavor;   /* "runtime" or "devel"; NULL for CPU bases */
    char *ubuntu, *python;
    char *driver_min, *driver_compat;
    char *pip_version;
    char **extra_index_urls; /* the operator's, for steps with extra */
    size_t n_extra_index_urls;
    struct ocra_plan_step steps[OCRA_PLAN_MAX_STEPS];
    size_t n_steps;
    struct ocra_plan_pair env[OCRA_PLAN_MAX_ENV]; /* sorted by name */
    size_t n_env;
    char *notes[OCRA_PLAN_MAX_NOTES]; /* the resolution's reasons, in order */
    size_t n_notes;
    char **image_tools; /* "PyTorch=2.1.0+cu121": resolved toolsAndLibraries, sorted */
    size_t n_image_tools;
};

void ocra_plan_tc_fini(struct ocra_plan_tc *tc);
void ocra_plan_tc_note(struct ocra_plan_tc *tc, const char *fmt, ...) OCRA_PRINTF(2, 3);
void ocra_plan_tc_env(struct ocra_plan_tc *tc, const char *name, const char *value);

/*
 * Resolves spec's tools to tc (zeroed first by the caller) for a replica of gpus GPUs (0: CPU
 * only). Every problem goes to probs (not NULL); returns the number of problems added.
 */
size_t ocra_plan_resolve(const struct ocra_plan_data *d, const struct ocra_spec *spec,
                         const struct ocra_plan_options *opts, unsigned gpus,
                         struct ocra_plan_tc *tc, struct ocra_spec_problems *probs);
/* Applies the mirror map to ref; caller frees. */
char *ocra_plan_mirror_apply(const struct ocra_plan_options *opts, const char *ref);

/* ---- the base image policy (plan_base.c) ---------------------------------------------- */

/* The repository of a docker reference in Docker's normal form, without tag or digest:
 * "ubuntu:22.04" -> "docker.io/library/ubuntu", "Reg.example:5000/a/b@sha256:…" ->
 * "reg.example:5000/a/b". Caller frees. */
char *ocra_plan_ref_repo(const char *ref);
/*
 * Checks a base: spec_ref, the spec's baseImage as written (NULL: the planner chose the
 * base), against opts.base_images (plan.base_image), and it and pulled (the reference after
 * mirrors; may be NULL) against opts.model_registries (plan.base_image_model). Problems go to
 * probs; *listed (may be NULL): base_images names spec_ref's repository exactly.
 */
void ocra_plan_base_check(const struct ocra_plan_data *d, const struct ocra_plan_options *opts,
                          const char *spec_ref, const char *pulled, bool *listed,
                          struct ocra_spec_problems *probs);

/* The canonical toolchain JSON (caller json_decref()s). */
json_t *ocra_plan_tc_json(const struct ocra_plan_tc *tc);
struct ocra_plan_label {
    const char *name, *value;
};

/* The Dockerfile text; caller frees. labels: sorted by name, values already validated. */
char *ocra_plan_dockerfile_text(const struct ocra_plan_tc *tc, const struct ocra_spec *spec,
                                const char *toolchain_hash, const struct ocra_plan_label *labels,
                                size_t n_labels);
/* The toolchain image's Dockerfile: the toolchain part of the above and its hash label;
 * caller frees. */
char *ocra_plan_toolchain_dockerfile_text(const struct ocra_plan_tc *tc,
                                          const char *toolchain_hash);
/* Writes s as a JSON string literal (quotes and escapes) to b. */
void ocra_plan_put_json_str(struct ocra_buf *b, const char *s);

/* "7.0e9" for 7000000000 (one decimal, no exponent sign). */
void ocra_plan_fmt_count(uint64_t n, char *out, size_t outsz);
/* "126.0 GB" (decimal gigabytes, one decimal, rounded up). */
void ocra_plan_fmt_gb(uint64_t bytes, char *out, size_t outsz);

#endif
