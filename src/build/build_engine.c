/* SPDX-License-Identifier: Apache-2.0 */
/*
 * build_engine.c: the model image handed to the Docker engine that will run it while it is
 * pushed (opts.load_socket), so that the run stage's pull by digest finds it there and
 * downloads no layer. Beside the upload of the weight layer, one thread writes a
 * docker-archive into a socket pair (the new layers read from their sources as the upload
 * reads them, then the config once the build has made it) and another posts it to the engine
 * (POST /images/load). Only when the engine has the toolchain image (its layers are not sent)
 * and the weight layer is uploaded by this build and is at least opts.load_min_size (below it
 * the load, which the push stage waits for, costs more than the pull it saves). The model step
 * waits for the engine at its end (at most LOAD_TIMEOUT_MS); whatever fails here, the image is
 * pushed all the same and the run stage pulls it as it would without.
 */
#include "build/build_int.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOAD_MAX_LAYERS 2
#define LOAD_TIMEOUT_MS 600000L

struct build_load {
    struct ocra_image_docker *d;
    struct ocra_image_layer_stream *layer[LOAD_MAX_LAYERS];
    size_t n_layers;
    int sv[2]; /* [0]: the archive written, [1]: the body of the load */
    pthread_t writer, loader;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool handed; /* the build handed the config over, or gave up (config NULL) */
    char *config;
    struct ocra_err werr, lerr;
    int wret, lret;
};

/* What became of the load: why, and the error that made it so (may be NULL). */
static void
load_note(struct ocra_build *b, const char *why, const struct ocra_err *err)
{
    (void)snprintf(b->load_note, sizeof(b->load_note), "%s%s%s", why, err ? ": " : "",
                   err ? err->msg : "");
}

void
build_load_check(struct ocra_build *b, const char *tc_config_digest)
{
    /* bounded: the push stage waits for the engine (which reads as fast as the registry) */
    struct ocra_image_docker_opts o = {.socket = b->opts.load_socket,
                                       .build_timeout_ms = LOAD_TIMEOUT_MS};
    struct ocra_err err = {0};

    if (!b->opts.load_socket || b->load)
        return;
    b->load = ocra_xcalloc(1, sizeof(*b->load));
    b->load->sv[0] = b->load->sv[1] = -1;
    if (!(b->load->d = ocra_image_docker_new(&o, &err))) {
        load_note(b, "not loaded", &err);
        return;
    }
    /* an engine without the toolchain would need its layers too: it pulls them instead */
    if (ocra_image_docker_inspect(b->load->d, tc_config_digest, NULL, &err) < 0) {
        load_note(b,
                  err.code == ENOENT ? "not loaded: the engine lacks the toolchain image"
                                     : "not loaded",
                  err.code == ENOENT ? NULL : &err);
        ocra_image_docker_free(b->load->d);
        b->load->d = NULL;
    }
}

bool
build_load_wanted(const struct ocra_build *b)
{
    return b->load && b->load->d && !b->load->started;
}

/* Writes the archive: the layers as the upload goes, then waits for the config. */
static void *
load_write(void *arg)
{
    struct build_load *l = arg;
    struct ocra_image_docker_archive *x = ocra_image_docker_archive_new(l->sv[0], &l->werr);

    l->wret = x ? 0 : -1;
    for (size_t i = 0; i < l->n_layers && l->wret == 0; i++) {
        const struct ocra_image_src src = {.fd = -1,
                                           .size = ocra_image_layer_stream_size(l->layer[i]),
                                           .read = ocra_image_layer_stream_read,
                                           .read_arg = l->layer[i]};

        l->wret = ocra_image_docker_archive_layer(x, &src, &l->werr);
    }
    pthread_mutex_lock(&l->mu);
    while (!l->handed)
        pthread_cond_wait(&l->cv, &l->mu);
    pthread_mutex_unlock(&l->mu);
    if (l->wret == 0 && !l->config)
        l->wret = ocra_err_set(&l->werr, ECANCELED, "the build gave up");
    if (l->wret == 0)
        l->wret = ocra_image_docker_archive_end(x, l->config, strlen(l->config), &l->werr);
    ocra_image_docker_archive_free(x); /* cut short unless ended: the engine refuses it */
    shutdown(l->sv[0], SHUT_WR);
    return NULL;
}

static void *
load_post(void *arg)
{
    struct build_load *l = arg;

    l->lret = ocra_image_docker_load(l->d, l->sv[1], &l->lerr);
    shutdown(l->sv[1], SHUT_RD); /* a writer still writing stops */
    return NULL;
}

void
build_load_start(struct ocra_build *b, const struct ocra_image_layer_entry *const *entries,
                 const int64_t *mtimes, size_t n)
{
    struct build_load *l = b->load;
    struct ocra_err err = {0};
    struct stat sb;

    assert(build_load_wanted(b) && n <= LOAD_MAX_LAYERS);
    l->started = true;
    /* a small image: the engine's load (the push stage waits for it) costs more than the run
     * stage's pull of it */
    if (b->opts.load_min_size && stat(entries[0]->source, &sb) == 0 &&
        (uint64_t)sb.st_size < b->opts.load_min_size) {
        load_note(b, "not loaded: below build.engine_load_min_mib", NULL);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        /* the same tar as the registry's layer: plain, even where that one is gzip */
        if (!(l->layer[i] = ocra_image_layer_stream_new(entries[i], 1, mtimes[i], &err))) {
            load_note(b, "not loaded", &err);
            return;
        }
        l->n_layers++;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, l->sv) < 0) {
        ocra_err_sys(&err, "socketpair");
        load_note(b, "not loaded", &err);
        l->sv[0] = l->sv[1] = -1;
        return;
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    if (pthread_create(&l->writer, NULL, load_write, l) != 0)
        abort();
    if (pthread_create(&l->loader, NULL, load_post, l) != 0)
        abort();
    build_progress(b, OCRA_BUILD_MODEL, "engine", "loading the image as it is pushed", 0, 0);
}

void
build_load_config(struct ocra_build *b, const char *config)
{
    struct build_load *l = b->load;

    if (!l || l->sv[0] < 0 || l->handed)
        return;
    pthread_mutex_lock(&l->mu);
    l->config = config ? ocra_xstrdup(config) : NULL;
    l->handed = true;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    if (!config) /* the writer stops at once (EPIPE), the engine reads a cut archive */
        shutdown(l->sv[1], SHUT_RD);
}

/* Whether the engine now has the image of config (its ID is the config's digest). */
static bool
load_landed(struct build_load *l)
{
    char id[OCRA_IMAGE_DIGEST_MAX];
    struct ocra_err err = {0};

    ocra_image_digest_of(l->config, strlen(l->config), id);
    return ocra_image_docker_inspect(l->d, id, NULL, &err) == 0;
}

void
build_load_end(struct ocra_build *b)
{
    struct build_load *l = b->load;

    if (!l)
        return;
    if (l->d && !l->started) /* a retry (the registry has the layer), a gzip or no weight layer */
        load_note(b, "not loaded: no plain weight layer uploaded by this build", NULL);
    if (l->sv[0] >= 0) {
        build_load_config(b, NULL); /* nothing handed over: the build failed */
        pthread_join(l->writer, NULL);
        pthread_join(l->loader, NULL);
        if (!l->config) {
            load_note(b, "not loaded: the build failed", NULL);
        } else if (l->wret < 0 || l->lret < 0) {
            /* the engine's error when it had one: a writer cut short is its consequence */
            load_note(b, "not loaded", l->lret < 0 ? &l->lerr : &l->werr);
        } else if (!load_landed(l)) {
            load_note(b, "not loaded: the engine has no image of the config's digest", NULL);
        } else {
            b->loaded = true;
            load_note(b, "loaded", NULL);
            build_progress(b, OCRA_BUILD_MODEL, "engine", "loaded", 0, 0);
        }
        pthread_mutex_destroy(&l->mu);
        pthread_cond_destroy(&l->cv);
        ocra_fd_close(l->sv[0]);
        ocra_fd_close(l->sv[1]);
    }
    for (size_t i = 0; i < l->n_layers; i++)
        ocra_image_layer_stream_free(l->layer[i]);
    ocra_image_docker_free(l->d);
    free(l->config);
    free(l);
    b->load = NULL;
}
