/* SPDX-License-Identifier: Apache-2.0 */
/*
 * build_model.c: the two levels of an image. The toolchain, <toolchain repo>:<hash> (one
 * repository for every model), is looked up in the registry, then in the engine, and built
 * through the Engine API only when neither has it, once per hash in this process. The model
 * image is assembled natively on top of it: its layers mounted from the toolchain repository, a
 * deterministic weight layer and an agent layer (made once per key of their inputs, whose
 * descriptor the cache keeps, uploaded unless the registry has them: a plain tar streamed
 * from the artifact, a gzip one through an unlinked file; the agent layer is the same for
 * every event), a config and an OCI manifest with the provenance annotations, pushed by
 * digest, then tagged and signed. What depends on the event is in the config and manifest.
 */
#include "build/build_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONFIG_MAX (8u << 20)
#define LAYER_FORMAT "ocra-layer-v1" /* part of the layer cache key: bump when layers change */
#define MODEL_DIR "/opt/ocra/model"
#define AGENT_PATH "/opt/ocra/bin/ocra-agent"

/* ---- toolchain --------------------------------------------------------------------------- */

/*
 * A toolchain whose labels carry ocra's model label was built on a model image (labels are
 * inherited from the base), whatever name the spec gave that base: refused unless the plan's
 * base is listed exactly in plan.base_images.
 */
static int
labels_check(struct ocra_build *b, const json_t *labels, struct ocra_err *err)
{
    if (!ocra_json_str(labels, BUILD_MODEL_LABEL) || ocra_plan_base_listed(b->plan))
        return 0;
    b->base_refused = true;
    return ocra_err_set(err, EINVAL,
                        "base %.100s is an ocra model image (label " BUILD_MODEL_LABEL
                        "): a base only when plan.base_images names its repository exactly",
                        ocra_plan_base_image(b->plan));
}

/*
 * The labels of the engine's image ref (ENOENT: nothing to check). A refused toolchain is
 * untagged (it holds another model's image under the toolchain's name).
 */
static int
engine_check(struct ocra_build *b, struct ocra_image_docker *d, const char *ref, bool untag,
             struct ocra_err *err)
{
    struct ocra_image_docker_image img = {0};
    struct ocra_err rerr = {0};
    int ret;

    if (ocra_image_docker_inspect(d, ref, &img, err) < 0)
        return err->code == ENOENT ? 0 : -1;
    ret = labels_check(b, img.labels, err);
    if (ret < 0 && untag)
        (void)ocra_image_docker_remove(d, ref, false, &rerr);
    ocra_image_docker_image_fini(&img);
    return ret;
}

/*
 * The toolchain hashes being made by threads of this process (the daemon's workers): a second
 * thread that misses the same hash waits for the first and then finds the image in the
 * registry, instead of building it a second time beside it.
 */
struct tc_claim {
    char hash[65];
    struct tc_claim *next;
};

static pthread_mutex_t tc_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t tc_cv = PTHREAD_COND_INITIALIZER;
static struct tc_claim *tc_claims;

static bool
tc_claimed(const char *hash)
{
    for (const struct tc_claim *c = tc_claims; c; c = c->next)
        if (strcmp(c->hash, hash) == 0)
            return true;
    return false;
}

/* Takes the claim of hash, after whoever holds it; true when one had to be waited for. */
static bool
tc_claim(struct tc_claim *c, const char *hash)
{
    bool waited = false;

    (void)snprintf(c->hash, sizeof(c->hash), "%s", hash);
    pthread_mutex_lock(&tc_mu);
    while (tc_claimed(hash)) {
        waited = true;
        pthread_cond_wait(&tc_cv, &tc_mu);
    }
    c->next = tc_claims;
    tc_claims = c;
    pthread_mutex_unlock(&tc_mu);
    return waited;
}

static void
tc_release(struct tc_claim *c)
{
    pthread_mutex_lock(&tc_mu);
    for (struct tc_claim **p = &tc_claims; *p; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            break;
        }
    }
    pthread_cond_broadcast(&tc_cv);
    pthread_mutex_unlock(&tc_mu);
}

static int
toolchain_build(struct ocra_build *b, struct ocra_image_docker *d, struct ocra_err *err)
{
    struct ocra_image_docker_build_opts bo = {
        .dockerfile = ocra_plan_toolchain_dockerfile(b->plan),
        .tag = b->tc_ref,
        .network = b->opts.build_network ? b->opts.build_network : "host",
    };
    struct ocra_image_docker_build out = {0};
    int ret;

    build_progress(b, OCRA_BUILD_TOOLCHAIN, b->tc_ref, "building (Docker Engine API)", 0, 0);
    ret = ocra_image_docker_build(d, &bo, &out, err);
    free(b->log);
    b->log = out.log ? ocra_xstrdup(out.log) : NULL;
    ocra_image_docker_build_fini(&out);
    if (ret == 0)
        b->tc_built = true;
    return ret;
}

/* Pushes through the engine with the registry client's credentials, if it has any. */
static int
toolchain_push(struct ocra_build *b, struct ocra_image_docker *d, const char *name, const char *tag,
               struct ocra_err *err)
{
    struct ocra_image_docker_auth auth = {.serveraddress = b->origin};
    char *user = NULL, *pass = NULL;
    int have = ocra_image_registry_credentials(b->reg, &user, &pass), ret;

    auth.username = user;
    auth.password = pass;
    ret = ocra_image_docker_push(d, name, tag, have ? &auth : NULL, b->tc_digest, err);
    if (have) {
        ocra_secure_free(user, strlen(user));
        ocra_secure_free(pass, strlen(pass));
    }
    return ret;
}

/* Makes the toolchain in the engine (found there, or built), checks it, pushes it. */
static int
toolchain_make(struct ocra_build *b, const char *hash, struct ocra_err *err)
{
    struct ocra_image_docker_opts dopts = {.socket = b->opts.docker_socket};
    struct ocra_image_docker *d = NULL;
    char *name = NULL;
    int ret = -1;

    if (!(d = ocra_image_docker_new(&dopts, err)))
        goto out;
    if (ocra_image_docker_inspect(d, b->tc_ref, NULL, err) < 0) {
        struct ocra_err berr = {0};
        int built;

        if (err->code != ENOENT)
            goto out;
        built = toolchain_build(b, d, err);
        /* the base as the engine pulled it, whether the build went through or not: a model
         * image is refused for good, not retried as a failed build */
        if (engine_check(b, d, ocra_plan_base_image(b->plan), false, &berr) < 0 &&
            b->base_refused) {
            *err = berr;
            if (built == 0) /* what was built on it is not kept under the toolchain's name */
                (void)ocra_image_docker_remove(d, b->tc_ref, false, &berr);
            goto out;
        }
        if (built < 0)
            goto out;
    } else {
        build_progress(b, OCRA_BUILD_TOOLCHAIN, b->tc_ref, "found in the engine", 0, 0);
    }
    if (engine_check(b, d, b->tc_ref, true, err) < 0)
        goto out;
    name = ocra_xasprintf("%s/%s", b->origin, b->tc_repo);
    build_progress(b, OCRA_BUILD_TOOLCHAIN, b->tc_ref, "pushing", 0, 0);
    if (toolchain_push(b, d, name, hash, err) < 0)
        goto out;
    build_progress(b, OCRA_BUILD_TOOLCHAIN, b->tc_ref, "pushed", 0, 0);
    ret = 0;
out:
    ocra_image_docker_free(d);
    free(name);
    return ret;
}

int
ocra_build_toolchain(struct ocra_build *b, struct ocra_err *err)
{
    const char *hash = ocra_plan_toolchain_hash(b->plan);
    struct tc_claim claim;
    bool claimed = false;
    int found, ret = -1;

    found = ocra_image_manifest_head(b->reg, b->tc_repo, hash, b->tc_digest, err);
    if (found == 0) {
        /* another thread may be making it: wait for it, then look again */
        claimed = true;
        if (tc_claim(&claim, hash))
            found = ocra_image_manifest_head(b->reg, b->tc_repo, hash, b->tc_digest, err);
    }
    if (found < 0)
        goto out;
    if (found) {
        b->tc_hit = true;
        build_progress(b, OCRA_BUILD_TOOLCHAIN, b->tc_ref, "cache hit", 0, 0);
        ret = 0;
        goto out;
    }
    ret = toolchain_make(b, hash, err);
out:
    if (claimed)
        tc_release(&claim);
    if (ret < 0) /* the hash shortened: a full ref leaves the engine's cause no room */
        ocra_err_wrap(err, "toolchain %s/%s:%.12s", b->origin, b->tc_repo, hash);
    return ret;
}

/* ---- layers ------------------------------------------------------------------------------ */

/* One new layer: what it is, its entries (for writing it) and its descriptor. */
struct new_layer {
    const char *what;
    struct ocra_image_layer_entry entry;
    const char *sha; /* the entry's content sha256, part of the cache key */
    int64_t mtime;   /* of its entries */
    bool gzip;
    bool artifact; /* the entry is the model artifact, fetched only when the layer is written */
    struct ocra_image_layer layer;
};

/*
 * The cache key of a layer: its format, compression, mtime and its entry's path, mode and
 * content digest. Into out (65 hex).
 */
static void
layer_key(const struct new_layer *l, char out[65])
{
    struct ocra_buf k;

    ocra_buf_init(&k);
    ocra_buf_printf(&k, "%s\n%d\n%lld\n%s\n%o\n%s\n", LAYER_FORMAT, l->gzip ? 1 : 0,
                    (long long)l->mtime, l->entry.path, l->entry.mode, l->sha);
    ocra_sha256_hex(k.data, k.len, out);
    ocra_buf_fini(&k);
}

/* Reads the layer index <dir>/<key>.json (the descriptor of a layer written before). */
static int
layer_index_read(const char *dir, const char *key, struct ocra_image_layer *out)
{
    char *ipath = ocra_xasprintf("%s/%s.json", dir, key);
    json_t *j = ocra_json_load_file(ipath, 4096, OCRA_JSON_STRICT, NULL);
    const char *mt = ocra_json_str(j, "mediaType"), *dg = ocra_json_str(j, "digest"),
               *di = ocra_json_str(j, "diffId");
    int64_t size = ocra_json_int(j, "size", -1);
    int ret = -1;

    free(ipath);
    if (mt && dg && di && size >= 0 && ocra_image_digest_valid(dg) && ocra_image_digest_valid(di) &&
        strlen(mt) < OCRA_IMAGE_MEDIA_TYPE_MAX) {
        memcpy(out->desc.media_type, mt, strlen(mt) + 1);
        memcpy(out->desc.digest, dg, strlen(dg) + 1);
        memcpy(out->diff_id, di, strlen(di) + 1);
        out->desc.size = size;
        ret = 0;
    }
    json_decref(j);
    return ret;
}

static int
layer_index_write(const char *dir, const char *key, const struct ocra_image_layer *l,
                  struct ocra_err *err)
{
    char *ipath = ocra_xasprintf("%s/%s.json", dir, key);
    char *index =
        ocra_xasprintf("{\"diffId\":\"%s\",\"digest\":\"%s\",\"mediaType\":\"%s\","
                       "\"size\":%lld}\n",
                       l->diff_id, l->desc.digest, l->desc.media_type, (long long)l->desc.size);
    int ret = ocra_file_write_atomic(ipath, index, strlen(index), 0644, err);

    free(ipath);
    free(index);
    return ret;
}

struct push_progress {
    struct ocra_build *b;
    const char *what; /* NULL: count the bytes, report nothing */
    uint64_t last;
};

/* Counts the bytes sent (a resumed upload restarts at its offset: those go again). */
static void
push_progress(void *arg, uint64_t done, uint64_t size)
{
    struct push_progress *pp = arg;

    if (done > pp->last)
        pp->b->uploaded += done - pp->last;
    pp->last = done;
    if (pp->what)
        build_progress(pp->b, OCRA_BUILD_MODEL, pp->what, NULL, done, size);
}

/*
 * Writes the layer into an unlinked temporary file in dir (the bytes live only as long as the
 * upload needs them: the cache keeps the descriptor, the registry the blob) and uploads it: a
 * gzip layer, whose compressed bytes cannot be made again at an offset to resume from.
 */
static int
layer_file_push(struct ocra_build *b, const char *dir, struct new_layer *l, struct ocra_err *err)
{
    struct push_progress pp = {b, l->what, 0};
    struct ocra_image_src src = {.fd = -1, .progress = push_progress, .progress_arg = &pp};
    int ret = -1;

    src.fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (src.fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR)) {
        /* a file system without O_TMPFILE: a named file, unlinked at once */
        char *tmpl = ocra_xasprintf("%s/.layer.XXXXXX", dir);

        src.fd = mkostemp(tmpl, O_CLOEXEC);
        if (src.fd >= 0)
            unlink(tmpl);
        free(tmpl);
    }
    if (src.fd < 0) {
        ocra_err_sys(err, "temporary file in %s", dir);
        goto out;
    }
    if (ocra_image_layer_write(&l->entry, 1, l->mtime, l->gzip, src.fd, &l->layer, err) < 0)
        goto out;
    build_progress(b, OCRA_BUILD_MODEL, l->what, "written", (uint64_t)l->layer.desc.size,
                   (uint64_t)l->layer.desc.size);
    src.size = (uint64_t)l->layer.desc.size;
    ret = ocra_image_blob_push(b->reg, b->opts.repo, l->layer.desc.digest, &src, err);
out:
    ocra_fd_close(src.fd);
    return ret;
}

/*
 * Uploads a plain tar layer straight from its sources (tar headers, the file, padding): its
 * digest, which is its diff_id too, computed as the bytes go; nothing is written here.
 */
static int
layer_stream_push(struct ocra_build *b, struct new_layer *l, struct ocra_err *err)
{
    struct push_progress pp = {b, l->what, 0};
    struct ocra_image_src src = {.fd = -1,
                                 .read = ocra_image_layer_stream_read,
                                 .progress = push_progress,
                                 .progress_arg = &pp};
    struct ocra_image_layer_stream *s = ocra_image_layer_stream_new(&l->entry, 1, l->mtime, err);
    struct ocra_image_layer *out = &l->layer;
    int ret = -1;

    if (!s)
        return -1;
    src.read_arg = s;
    src.size = ocra_image_layer_stream_size(s);
    if (ocra_image_blob_push_stream(b->reg, b->opts.repo, &src, out->desc.digest, err) < 0)
        goto out;
    memcpy(out->desc.media_type, OCRA_IMAGE_MT_OCI_LAYER, sizeof(OCRA_IMAGE_MT_OCI_LAYER));
    memcpy(out->diff_id, out->desc.digest, sizeof(out->diff_id));
    out->desc.size = (int64_t)src.size;
    ret = 0;
out:
    ocra_image_layer_stream_free(s);
    return ret;
}

/* Makes the layer and uploads it, then records its descriptor under key in dir. */
static int
layer_write_push(struct ocra_build *b, const char *dir, const char *key, struct new_layer *l,
                 struct ocra_err *err)
{
    /* the artifact is needed only now, to make the layer (fetch is a no-op when done) */
    if (l->artifact) {
        if (ocra_build_fetch(b, err) < 0)
            return -1;
        l->entry.source = b->artifact_path;
    }
    if ((l->gzip ? layer_file_push(b, dir, l, err) : layer_stream_push(b, l, err)) < 0)
        return -1;
    build_progress(b, OCRA_BUILD_MODEL, l->what, "uploaded", (uint64_t)l->layer.desc.size,
                   (uint64_t)l->layer.desc.size);
    b->new_layer = true;
    return layer_index_write(dir, key, &l->layer, err);
}

/* 1 when the cache describes the layer (l->layer filled) and the registry has its blob. */
static int
layer_have(struct ocra_build *b, const char *dir, const char *key, struct new_layer *l,
           struct ocra_err *err)
{
    if (layer_index_read(dir, key, &l->layer) < 0)
        return 0;
    return ocra_image_blob_exists(b->reg, b->opts.repo, l->layer.desc.digest, NULL, err);
}

/*
 * Makes the layer's blob exist in the registry: a descriptor in the cache whose blob the
 * registry has is done without reading anything; else the layer is made and uploaded.
 */
static int
layer_ensure(struct ocra_build *b, struct new_layer *l, struct ocra_err *err)
{
    char *dir = ocra_xasprintf("%s/layers", b->opts.cache_dir), key[65];
    int have, ret = -1;

    layer_key(l, key);
    if ((have = layer_have(b, dir, key, l, err)) < 0)
        goto out;
    if (have) {
        build_progress(b, OCRA_BUILD_MODEL, l->what, "already in the registry", 0, 0);
        ret = 0;
    } else if (build_mkdirs(dir, err) == 0) {
        ret = layer_write_push(b, dir, key, l, err);
    }
out:
    if (ret < 0)
        ocra_err_wrap(err, "%s", l->what);
    free(dir);
    return ret;
}

/* sha256 hex of a (small) file. */
static int
file_sha256(const char *path, char out[65], struct ocra_err *err)
{
    char *data = NULL;
    size_t len = 0;

    if (ocra_file_read(path, 256u << 20, &data, &len, err) < 0)
        return -1;
    ocra_sha256_hex(data, len, out);
    free(data);
    return 0;
}

/*
 * Starts handing the image to the engine of opts.load_socket (build_engine.c) when the weight
 * layer (l[0], a plain tar) is to be uploaded now: the engine reads the new layers beside the
 * upload. Not for a layer the registry has (a retry): its run stage pulls it.
 */
static int
load_start(struct ocra_build *b, struct new_layer *l, size_t n, struct ocra_err *err)
{
    char *dir = ocra_xasprintf("%s/layers", b->opts.cache_dir), key[65];
    const struct ocra_image_layer_entry *entries[2] = {&l[0].entry, &l[1].entry};
    const int64_t mtimes[2] = {l[0].mtime, l[1].mtime};
    struct new_layer probe = l[0];
    int have;

    layer_key(&l[0], key);
    have = layer_have(b, dir, key, &probe, err);
    free(dir);
    if (have != 0)
        return have < 0 ? ocra_err_wrap(err, "%s", l[0].what) : 0;
    if (ocra_build_fetch(b, err) < 0)
        return -1;
    l[0].entry.source = b->artifact_path;
    build_load_start(b, entries, mtimes, n);
    return 0;
}

/* The weight layer (when the spec has an artifact) and the agent layer, in the registry.
 * model_path and agent_sha are storage for the entries. */
static int
new_layers(struct ocra_build *b, struct new_layer *l, size_t *n, char *model_path,
           char agent_sha[65], struct ocra_err *err)
{
    const struct ocra_spec_artifact *a = &b->spec->artifact;
    char name[256];

    *n = 0;
    if (a->present) {
        ocra_build_model_file_name(a->uri, name);
        (void)snprintf(model_path, 300, "%s/%s", MODEL_DIR + 1, name);
        l[(*n)++] = (struct new_layer){.what = "weight layer",
                                       .entry = {model_path, NULL, 0644}, /* set when written */
                                       .sha = a->sha256,
                                       .mtime = b->ev->timestamp / 1000, /* when published */
                                       .gzip = b->opts.weight_gzip,
                                       .artifact = true};
    }
    if (file_sha256(b->opts.agent, agent_sha, err) < 0)
        return ocra_err_wrap(err, "ocra-agent");
    /* the same for every event: written and uploaded once per agent binary */
    l[(*n)++] = (struct new_layer){.what = "agent layer",
                                   .entry = {AGENT_PATH + 1, b->opts.agent, 0755},
                                   .sha = agent_sha,
                                   .mtime = 0,
                                   .gzip = true};
    if (a->present && !l[0].gzip && build_load_wanted(b) && load_start(b, l, *n, err) < 0)
        return -1;
    /* the agent layer first: found with one request, before the weights instead of after */
    for (size_t i = *n; i-- > 0;)
        if (layer_ensure(b, &l[i], err) < 0)
            return -1;
    return 0;
}

/* Copies a toolchain blob into repo through a temporary file (a registry that refused a
 * mount). */
static int
blob_copy(struct ocra_build *b, const struct ocra_image_desc *d, struct ocra_err *err)
{
    struct push_progress pp = {b, NULL, 0};
    struct ocra_image_src src = {
        .fd = -1, .size = (uint64_t)d->size, .progress = push_progress, .progress_arg = &pp};
    char tmpl[] = "/tmp/ocra-blob.XXXXXX";
    int ret = -1;

    src.fd = mkostemp(tmpl, O_CLOEXEC);
    if (src.fd < 0)
        return ocra_err_sys(err, "mkstemp");
    unlink(tmpl);
    if (ocra_image_blob_fetch(b->reg, b->tc_repo, d->digest, src.fd, err) == 0)
        ret = ocra_image_blob_push(b->reg, b->opts.repo, d->digest, &src, err);
    ocra_fd_close(src.fd);
    return ret;
}

/* Makes each toolchain layer available in repo: there already, mounted from the toolchain
 * repository (no bytes move), or copied (a registry that declines mounts). */
static int
toolchain_mount(struct ocra_build *b, const struct ocra_image_manifest *tm, struct ocra_err *err)
{
    size_t n[3] = {0}; /* there, mounted, copied */
    char line[300];

    for (size_t i = 0; i < tm->n_layers; i++) {
        const struct ocra_image_desc *d = &tm->layers[i];
        int r = ocra_image_blob_exists(b->reg, b->opts.repo, d->digest, NULL, err), how = 0;

        if (r == 0) {
            how = 1;
            r = ocra_image_blob_mount(b->reg, b->opts.repo, d->digest, b->tc_repo, err);
        }
        if (r == 0) {
            how = 2;
            r = blob_copy(b, d, err) == 0 ? 1 : -1;
        }
        if (r < 0)
            return ocra_err_wrap(err, "toolchain layer %s", d->digest);
        n[how]++;
    }
    (void)snprintf(line, sizeof(line), "%zu mounted from %s, %zu copied, %zu already in %s", n[1],
                   b->tc_repo, n[2], n[0], b->opts.repo);
    build_progress(b, OCRA_BUILD_MODEL, "toolchain layers", line, 0, 0);
    return 0;
}

/* ---- config and manifest ----------------------------------------------------------------- */

/* The toolchain's manifest and config (as JSON), by its digest. */
static int
toolchain_fetch(struct ocra_build *b, struct ocra_image_manifest *tm, json_t **config,
                struct ocra_err *err)
{
    char *data = NULL, mt[OCRA_IMAGE_MEDIA_TYPE_MAX];
    size_t len = 0;
    int ret = -1;

    if (!b->tc_digest[0]) {
        int found = ocra_image_manifest_head(b->reg, b->tc_repo, ocra_plan_toolchain_hash(b->plan),
                                             b->tc_digest, err);
        if (found <= 0)
            return found < 0 ? -1
                             : ocra_err_set(err, ENOENT,
                                            "%s: not in the registry (the "
                                            "toolchain step comes first)",
                                            b->tc_ref);
    }
    if (ocra_image_manifest_get(b->reg, b->tc_repo, b->tc_digest, &data, &len, mt, NULL, err) < 0 ||
        ocra_image_manifest_parse(data, len, mt, tm, err) < 0)
        goto out;
    free(data);
    data = NULL;
    if (ocra_image_blob_get(b->reg, b->tc_repo, tm->config.digest, CONFIG_MAX, &data, &len, err) <
        0)
        goto out;
    if (!(*config = ocra_json_parse(data, len, 0, err)))
        goto out;
    ret = 0;
out:
    free(data);
    return ret;
}

static char *
config_make(struct ocra_build *b, const json_t *base, const struct new_layer *l, size_t n,
            struct ocra_err *err)
{
    static const char *const entrypoint[] = {AGENT_PATH, "--", NULL};
    const struct ocra_spec_workload *w = &b->spec->workload;
    char *env[5] = {NULL}, **cmd = NULL, *out;
    const char *diff_ids[3] = {NULL}, *created_by[3] = {NULL};
    struct ocra_image_config_spec cs = {0};

    env[0] = ocra_xasprintf("OCRA_EVENT_ID=%s", b->ev->event_id);
    env[1] = ocra_xasprintf("OCRA_MODEL_NAME=%s", b->spec->name);
    env[2] = ocra_xasprintf("OCRA_MODEL_VERSION=%s", b->spec->model_version);
    env[3] = ocra_xstrdup("OCRA_MODEL_DIR=" MODEL_DIR);
    if (w->argv) {
        cmd = ocra_xcalloc(w->argc + 1, sizeof(*cmd));
        memcpy(cmd, w->argv, w->argc * sizeof(*cmd));
    }
    for (size_t i = 0; i < n; i++) {
        diff_ids[i] = l[i].layer.diff_id;
        created_by[i] = strcmp(l[i].what, "agent layer") == 0
                            ? "ocra: COPY ocra-agent " AGENT_PATH
                            : "ocra: COPY the verified model artifact to " MODEL_DIR;
    }
    cs.base = base;
    cs.created = b->ev->timestamp / 1000;
    cs.env = (const char *const *)env;
    cs.entrypoint = entrypoint;
    cs.cmd = (const char *const *)cmd;
    cs.labels = b->annotations;
    cs.diff_ids = diff_ids;
    cs.created_by = created_by;
    out = ocra_image_config_build(&cs, err);
    for (size_t i = 0; i < 4; i++)
        free(env[i]);
    free(cmd);
    return out;
}

/* The layer descriptors of the model manifest: the toolchain's (Docker gzip layers named
 * with the OCI media type of the same bytes), then the new ones. */
static struct ocra_image_desc *
manifest_layers(const struct ocra_image_manifest *tm, const struct new_layer *l, size_t n)
{
    struct ocra_image_desc *d = ocra_xcalloc(tm->n_layers + n, sizeof(*d));

    for (size_t i = 0; i < tm->n_layers; i++) {
        d[i] = tm->layers[i];
        if (strcmp(d[i].media_type, OCRA_IMAGE_MT_DOCKER_LAYER_GZIP) == 0)
            memcpy(d[i].media_type, OCRA_IMAGE_MT_OCI_LAYER_GZIP,
                   sizeof(OCRA_IMAGE_MT_OCI_LAYER_GZIP));
    }
    for (size_t i = 0; i < n; i++)
        d[tm->n_layers + i] = l[i].layer.desc;
    return d;
}

static void
record_layers(struct ocra_build *b, const struct ocra_image_desc *d, size_t n)
{
    json_decref(b->layers);
    b->layers = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(b->layers,
                              json_pack("{s:s, s:s, s:I}", "mediaType", d[i].media_type, "digest",
                                        d[i].digest, "size", (json_int_t)d[i].size));
}

/* Pushes the config and the manifest (by digest, unless the registry has it: asked only when
 * no layer was uploaded). */
static int
manifest_push(struct ocra_build *b, const struct ocra_image_manifest *tm, const char *config,
              const struct new_layer *l, size_t n, struct ocra_err *err)
{
    struct ocra_image_desc cd = {OCRA_IMAGE_MT_OCI_CONFIG, "", (int64_t)strlen(config)};
    struct push_progress pp = {b, NULL, 0};
    struct ocra_image_src src = {.mem = config,
                                 .fd = -1,
                                 .size = strlen(config),
                                 .progress = push_progress,
                                 .progress_arg = &pp};
    struct ocra_image_desc *d = manifest_layers(tm, l, n);
    char *m = NULL, digest[OCRA_IMAGE_DIGEST_MAX];
    int have = 0, ret = -1;

    ocra_image_digest_of(config, strlen(config), cd.digest);
    if ((b->new_layer ? ocra_image_blob_upload(b->reg, b->opts.repo, cd.digest, &src, err)
                      : ocra_image_blob_push(b->reg, b->opts.repo, cd.digest, &src, err)) < 0)
        goto out;
    if (!(m = ocra_image_manifest_build(&cd, d, tm->n_layers + n, b->annotations, err)))
        goto out;
    ocra_image_digest_of(m, strlen(m), digest);
    if (!b->new_layer)
        have = ocra_image_manifest_head(b->reg, b->opts.repo, digest, NULL, err);
    if (have < 0 || (have == 0 && ocra_image_manifest_put(b->reg, b->opts.repo, digest,
                                                          OCRA_IMAGE_MT_OCI_MANIFEST, m, strlen(m),
                                                          NULL, err) < 0))
        goto out;
    record_layers(b, d, tm->n_layers + n);
    memcpy(b->digest, digest, sizeof(digest));
    free(b->manifest);
    b->manifest = m;
    b->manifest_len = strlen(m);
    m = NULL;
    build_progress(b, OCRA_BUILD_MODEL, b->digest,
                   have ? "manifest already in the registry" : "manifest pushed", 0, 0);
    ret = 0;
out:
    free(m);
    free(d);
    return ret;
}

int
ocra_build_model(struct ocra_build *b, struct ocra_err *err)
{
    struct ocra_image_manifest tm = {0};
    struct new_layer l[2] = {{0}};
    char model_path[300], agent_sha[65];
    json_t *base = NULL;
    char *config = NULL, *base_name = NULL;
    size_t n = 0;
    int ret = -1;

    if (toolchain_fetch(b, &tm, &base, err) < 0 ||
        labels_check(b, json_object_get(json_object_get(base, "config"), "Labels"), err) < 0 ||
        toolchain_mount(b, &tm, err) < 0)
        goto out;
    if (!b->load_note[0])
        build_load_check(b, tm.config.digest);
    if (new_layers(b, l, &n, model_path, agent_sha, err) < 0)
        goto out;
    /* without the registry host: the same image pushed to another registry keeps its digest */
    base_name = ocra_xasprintf("%s:%s", b->tc_repo, ocra_plan_toolchain_hash(b->plan));
    json_decref(b->annotations);
    b->annotations = ocra_build_annotations_make(b->spec, b->ev, ocra_plan_toolchain_hash(b->plan),
                                                 base_name, b->tc_digest);
    if (!(config = config_make(b, base, l, n, err)))
        goto out;
    build_load_config(b, config);
    if (manifest_push(b, &tm, config, l, n, err) < 0)
        goto out;
    ret = 0;
out:
    build_load_end(b); /* the engine, if it was given the image, has it now */
    if (ret < 0)
        ocra_err_wrap(err, "model image %s", b->opts.repo);
    ocra_image_manifest_fini(&tm);
    json_decref(base);
    free(config);
    free(base_name);
    return ret;
}

/* ---- tags and signature ------------------------------------------------------------------ */

int
ocra_build_tag(struct ocra_build *b, struct ocra_err *err)
{
    char have[OCRA_IMAGE_DIGEST_MAX];

    if (!b->manifest && ocra_build_model(b, err) < 0)
        return -1;
    for (size_t i = 0; i < b->n_tags; i++) {
        /* a manifest naming a new layer is new: no tag names it yet */
        int found = b->new_layer
                        ? 0
                        : ocra_image_manifest_head(b->reg, b->opts.repo, b->tags[i], have, err);

        if (found < 0)
            return ocra_err_wrap(err, "tag %s", b->tags[i]);
        if (found && strcmp(have, b->digest) == 0)
            continue;
        if (ocra_image_manifest_put(b->reg, b->opts.repo, b->tags[i], OCRA_IMAGE_MT_OCI_MANIFEST,
                                    b->manifest, b->manifest_len, NULL, err) < 0)
            return ocra_err_wrap(err, "tag %s", b->tags[i]);
        build_progress(b, OCRA_BUILD_TAG, b->tags[i], "tagged", 0, 0);
    }
    return 0;
}

int
ocra_build_sign(struct ocra_build *b, struct ocra_err *err)
{
    struct ocra_image_key *key;
    int ret;

    if (!b->opts.sign_key || !b->opts.sign_key[0])
        return 0;
    if (!b->digest[0] && ocra_build_model(b, err) < 0)
        return -1;
    if (!(key = ocra_image_key_load_private(b->opts.sign_key, err)))
        return ocra_err_wrap(err, "sign");
    ret = ocra_image_sign(b->reg, b->opts.repo, b->digest, key, NULL, b->sig, err);
    ocra_image_key_free(key);
    if (ret < 0)
        return ocra_err_wrap(err, "sign %s", b->digest);
    build_progress(b, OCRA_BUILD_SIGN, b->sig, "signed", 0, 0);
    return 0;
}
