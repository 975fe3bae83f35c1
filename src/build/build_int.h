/* SPDX-License-Identifier: Apache-2.0 */
/*
 * build_int.h: the build job that build.c (steps, annotations, record), build_fetch.c (the
 * artifact) and build_model.c (toolchain, layers, manifest, tags, signature) share. Not for use
 * outside src/build.
 */
#ifndef OCRA_BUILD_INT_H
#define OCRA_BUILD_INT_H

#include "build/build.h"

/* The label of ocra's model images (their annotations are their config's labels) that no
 * toolchain has unless it was built on a model image: labels are inherited from the base. */
#define BUILD_MODEL_LABEL "io.ocra.event-id"

struct ocra_build {
    struct ocra_build_opts opts;
    const struct ocra_spec *spec;
    const struct ocra_plan *plan;
    const struct ocra_spec_event *ev;
    struct ocra_image_registry *reg;
    char *origin;  /* host[:port] of the registry */
    char *tc_repo; /* the toolchain repository, shared by every model */
    char *tc_ref;  /* <origin>/<tc_repo>:<hash> */
    char tc_digest[OCRA_IMAGE_DIGEST_MAX];
    bool tc_hit, tc_built;
    bool base_refused; /* the toolchain's base is an ocra model image the plan does not list */
    uint64_t uploaded; /* bytes sent to the registry (ocra_build_bytes_uploaded) */
    /* a new layer was uploaded: the config, manifest and tags that name it are new too, put
     * without asking first (only a build from an empty cache puts existing ones again) */
    bool new_layer;
    char *log;           /* the toolchain build's log tail */
    char *artifact_path; /* <cache>/sha256/<hex> once fetched */
    bool fetched;
    const char *rejection;              /* ocra_build_rejection() */
    char digest[OCRA_IMAGE_DIGEST_MAX]; /* the model manifest's */
    char *manifest;
    size_t manifest_len;
    json_t *annotations;
    json_t *layers; /* the manifest's layer descriptors, for the record */
    char sig[OCRA_IMAGE_DIGEST_MAX];
    char **tags;
    size_t n_tags;
    struct build_load *load; /* the image handed to opts.load_socket's engine (build_engine.c) */
    bool loaded;
    char load_note[OCRA_ERR_MAX + 64]; /* "" (not asked), "loaded", "not loaded: why" */
};

/* Reports progress when the caller asked for it. */
void build_progress(const struct ocra_build *b, enum ocra_build_step step, const char *what,
                    const char *status, uint64_t done, uint64_t total);
/* mkdir -p of path (mode 0755). */
int build_mkdirs(const char *path, struct ocra_err *err);

/*
 * build_engine.c, the model image handed to the engine of opts.load_socket as it is pushed:
 * build_load_check() asks that engine whether it has the toolchain image (its config digest);
 * build_load_wanted() is then true, and build_load_start() starts writing the new layers
 * (each one entry, the weight layer's then the agent layer's, read from their sources) into
 * a docker-archive posted to the engine, beside the upload; build_load_config() hands the
 * image config over once made (NULL: the build gave up); build_load_end() waits for the
 * engine and notes the outcome in b->load_note (also when nothing was started). Failures are
 * notes, never the build's errors.
 */
void build_load_check(struct ocra_build *b, const char *tc_config_digest);
bool build_load_wanted(const struct ocra_build *b);
void build_load_start(struct ocra_build *b, const struct ocra_image_layer_entry *const *entries,
                      const int64_t *mtimes, size_t n);
void build_load_config(struct ocra_build *b, const char *config);
void build_load_end(struct ocra_build *b);

#endif
