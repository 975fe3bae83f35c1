/* SPDX-License-Identifier: Apache-2.0 */
/*
 * plan: turns a validated model spec into a build and resource plan, offline and the same on
 * every machine. It resolves the frameworks of toolsAndLibraries to a base image (nvidia/cuda
 * with the CUDA and cuDNN they need, or plain Ubuntu for CPU-only work) and a pinned package
 * list with index URLs, sizes the workload (GPU model and count, CPU, RAM, shm) with a written
 * reason, writes a deterministic Dockerfile and computes the toolchain hash. The facts come
 * from the JSON tables in data/ (docs/PLANNING.md documents them and every rule).
 */
#ifndef OCRA_PLAN_H
#define OCRA_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "spec/spec.h"

/* ---- the data tables ------------------------------------------------------------------- */

/* The compatibility tables and GPU catalogue of one data directory. Opaque, read-only. */
struct ocra_plan_data;

/*
 * The data directory used when the caller names none: $OCRA_DATA_DIR when set and not empty,
 * else the directory compiled in (the source tree's data/). Borrowed, static.
 */
const char *ocra_plan_data_dir_default(void);
/*
 * Loads and strictly validates data/{pytorch,tensorflow,cuda_images,cuda_drivers,gpus}.json
 * from dir (NULL: ocra_plan_data_dir_default()). A broken table fails with EINVAL naming the
 * file and the entry. *out: caller frees with ocra_plan_data_free().
 */
int ocra_plan_data_load(const char *dir, struct ocra_plan_data **out, struct ocra_err *err);
/* d may be NULL. */
void ocra_plan_data_free(struct ocra_plan_data *d);

/* ---- options (the operator's overrides, from the plan.* configuration keys) ------------- */

/*
 * Rewrites base image references: from is a repository ("nvidia/cuda"), a prefix followed by
 * a slash and an asterisk (every repository under "nvidia/"), or a lone asterisk; to is the
 * repository or prefix that replaces it.
 */
struct ocra_plan_mirror {
    const char *from;
    const char *to;
};

/* Everything borrowed; a zeroed struct gives the defaults in parentheses. */
struct ocra_plan_options {
    const char *pip_index_url;           /* (https://pypi.org/simple) */
    const char *const *extra_index_urls; /* added as --extra-index-url to PyPI installs */
    size_t n_extra_index_urls;
    const char *torch_index_url;      /* (the table's, https://download.pytorch.org/whl) */
    const char *const *allowed_tools; /* package names; (none: every tool allowed) */
    size_t n_allowed_tools;
    /* What a spec's baseImage may name (docs/PLANNING.md §Base image policy): "nvidia/cuda"
     * names that repository, "registry.internal:5000/" or "nvidia/" (a trailing slash) every
     * repository under it; (none: the repositories the planner resolves to itself). */
    const char *const *base_images;
    size_t n_base_images;
    /* Where ocra pushes model images, "[scheme://]host[:port]/prefix" (build.registry): no
     * base, before or after mirrors, may be under one unless base_images names it exactly. */
    const char *const *model_registries;
    size_t n_model_registries;
    const char *python; /* preferred Python "3.10" when frameworks allow it; (3.10) */
    const struct ocra_plan_mirror *mirrors;
    size_t n_mirrors;
    unsigned max_gpus; /* most GPUs the planner picks for one replica; (8) */
    bool gpus_given;   /* the spec wrote workload.gpus (else its default 1 is a hint) */
    const struct ocra_spec_event *event; /* the chain event, for createdAt and labels; or NULL */
    /* Optional model shape for the KV cache term of inference sizing; 0: unknown. */
    uint32_t context, layers, kv_heads, head_dim, batch;
};

/* True when the document (a model spec JSON object) writes workload.gpus itself. */
bool ocra_plan_doc_gives_gpus(const json_t *doc);

/* ---- sizing ---------------------------------------------------------------------------- */

struct ocra_plan_resources {
    uint64_t need_bytes;    /* estimated GPU memory (CPU-only: RAM) for one replica; 0: unknown */
    unsigned gpus;          /* per replica; 0: CPU only */
    char gpu_model[32];     /* catalogue model, "" when not chosen (CPU only, or params unknown) */
    unsigned gpu_memory_gb; /* memory of that model */
    unsigned cpus;          /* per replica */
    uint64_t memory_bytes;  /* RAM per replica */
    uint64_t shm_bytes;     /* /dev/shm per replica */
    unsigned replicas_min, replicas_max;
    char reason[512]; /* "7.0e9 params × 18 B = 126.0 GB ... → 2 × H100 80GB ..." */
};

/*
 * Sizes the workload of spec with the catalogue of d (rules: docs/PLANNING.md §Sizing). Fails
 * with EINVAL when the estimate fits no catalogue GPU at the count asked for or allowed.
 */
int ocra_plan_size(const struct ocra_plan_data *d, const struct ocra_spec *spec,
                   const struct ocra_plan_options *opts, struct ocra_plan_resources *out,
                   struct ocra_err *err);

/* ---- the plan -------------------------------------------------------------------------- */

struct ocra_plan;

/*
 * Plans spec with opts (NULL: the defaults). 0 and *out (caller frees with ocra_plan_free) on
 * success; -1 with err EINVAL
 * ("N problems; first: ...") and every problem appended to probs (may be NULL) when the spec
 * cannot be planned: unknown or conflicting versions, tools not allowed, a workload that fits
 * no GPU. Fields of the problems are spec paths such as "toolsAndLibraries.PyTorch".
 */
int ocra_plan_new(const struct ocra_plan_data *d, const struct ocra_spec *spec,
                  const struct ocra_plan_options *opts, struct ocra_plan **out,
                  struct ocra_spec_problems *probs, struct ocra_err *err);
/* p may be NULL. */
void ocra_plan_free(struct ocra_plan *p);

/* Borrowed strings, valid until ocra_plan_free(p). */
const char *ocra_plan_base_image(const struct ocra_plan *p); /* after mirrors */
/* True when opts.base_images names the spec's baseImage's repository exactly: the operator
 * vouches for that repository, which may then hold an ocra model image (a base that carries
 * ocra's model labels is refused by src/build otherwise). */
bool ocra_plan_base_listed(const struct ocra_plan *p);
/* The Dockerfile of the toolchain image alone: the plan's Dockerfile up to its per-model part
 * (no EXPOSE, CMD or model labels), labelled io.ocra.toolchain-hash. Models that share the
 * toolchain hash share this image, so nothing of one model may be in it. */
const char *ocra_plan_toolchain_dockerfile(const struct ocra_plan *p);
const char *ocra_plan_dockerfile(const struct ocra_plan *p);
const char *ocra_plan_toolchain_hash(const struct ocra_plan *p); /* 64 hex digits */
/* The canonical JSON the toolchain hash covers. */
const char *ocra_plan_toolchain_json(const struct ocra_plan *p);
/* Minimum NVIDIA driver of the base image's CUDA ("530.30.02"); "" for CPU-only plans. */
const char *ocra_plan_driver_min(const struct ocra_plan *p);
const struct ocra_plan_resources *ocra_plan_resources_get(const struct ocra_plan *p);

/*
 * The container image specification of docs/SPEC.md (imageId, baseImage, aiModelVersion,
 * toolsAndLibraries, createdAt: the event's time or null, tags, specHash). Caller json_decref()s.
 */
json_t *ocra_plan_image_json(const struct ocra_plan *p);
/* The whole plan as JSON (image, resolution, packages, resources, toolchain, dockerfile). */
json_t *ocra_plan_to_json(const struct ocra_plan *p);
/* The whole plan as text for people. Caller frees with free(). */
char *ocra_plan_to_text(const struct ocra_plan *p);

#endif
