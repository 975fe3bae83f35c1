/* SPDX-License-Identifier: Apache-2.0 */
/*
 * build_fetch.c: the model artifact, fetched once into a content-addressed cache
 * (<cache>/sha256/<hex>). The bytes are hashed and counted as they arrive, into a temporary
 * file in the same directory that is renamed into place only once the sha256 and size from
 * the chain match: a file under its digest's name has been verified, so it is reused as is.
 */
#include "build/build_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http/http.h"

#define FETCH_TIMEOUT_MS (6L * 3600 * 1000) /* the whole transfer; stalls end it sooner */

struct fetch_sink {
    const struct ocra_build *b;
    int fd;
    struct ocra_sha256_ctx *md;
    uint64_t got, want, max;
    bool too_big, io_error;
};

static int
fetch_write(void *ctx, const void *data, size_t n)
{
    struct fetch_sink *s = ctx;

    if (s->got + n > s->max) {
        s->too_big = true;
        return -1;
    }
    if (ocra_write_all(s->fd, data, n) < 0) {
        s->io_error = true;
        return -1;
    }
    ocra_sha256_update(s->md, data, n);
    s->got += n;
    build_progress(s->b, OCRA_BUILD_FETCH, "artifact", NULL, s->got, s->want);
    return 0;
}

/* Checks what arrived against the chain's values; EPROTO with both when they differ. */
static int
fetch_check(const struct ocra_spec_artifact *a, struct fetch_sink *s, struct ocra_err *err)
{
    uint8_t md[OCRA_SHA256_LEN];
    char hex[2 * OCRA_SHA256_LEN + 1];

    ocra_sha256_end(s->md, md);
    s->md = NULL;
    if (s->too_big)
        return ocra_err_set(err, EPROTO, "artifact size mismatch: want %llu bytes, got more",
                            (unsigned long long)a->size);
    if (a->size && s->got != a->size)
        return ocra_err_set(err, EPROTO, "artifact size mismatch: want %llu bytes, got %llu",
                            (unsigned long long)a->size, (unsigned long long)s->got);
    ocra_hex_encode(md, sizeof(md), hex);
    if (strcmp(hex, a->sha256) != 0)
        return ocra_err_set(err, EPROTO, "artifact sha256 mismatch: want %s got %s", a->sha256,
                            hex);
    return 0;
}

/* GETs uri into fd through s. */
static int
fetch_get(const char *uri, struct fetch_sink *s, struct ocra_err *err)
{
    struct ocra_http_req req = {.method = "GET",
                                .url = uri,
                                .timeout_ms = FETCH_TIMEOUT_MS,
                                .write = fetch_write,
                                .write_ctx = s};
    struct ocra_http_resp resp = {0};
    int ret = -1;

    if (ocra_http_do(&req, &resp, err) < 0) {
        if (s->too_big || s->io_error)
            ret = s->io_error ? ocra_err_sys(err, "write") : 0; /* size reported by the caller */
        goto out;
    }
    if (resp.status != 200) {
        ocra_err_set(err, ocra_http_status_errno(resp.status), "HTTP %ld", resp.status);
        goto out;
    }
    ret = 0;
out:
    ocra_http_resp_fini(&resp);
    return ret;
}

/* A cached artifact of the right size: reused (it was verified before it got its name). */
static bool
cache_hit(const char *path, uint64_t size)
{
    struct stat sb;

    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && (!size || (uint64_t)sb.st_size == size);
}

static int
fetch_into(struct ocra_build *b, const char *dir, const char *path, struct ocra_err *err)
{
    const struct ocra_spec_artifact *a = &b->spec->artifact;
    struct fetch_sink s = {.b = b, .fd = -1, .want = a->size};
    char *tmp = ocra_xasprintf("%s/.tmp.%s.%ld", dir, a->sha256, (long)getpid());
    int ret = -1;

    s.max = a->size ? a->size : OCRA_SPEC_MAX_ARTIFACT_SIZE;
    s.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (s.fd < 0) {
        ocra_err_sys(err, "open %s", tmp);
        goto out;
    }
    s.md = ocra_sha256_begin();
    if (fetch_get(a->uri, &s, err) < 0 || fetch_check(a, &s, err) < 0)
        goto out;
    if (fsync(s.fd) < 0 || close(s.fd) < 0) {
        s.fd = -1;
        ocra_err_sys(err, "write %s", tmp);
        goto out;
    }
    s.fd = -1;
    if (rename(tmp, path) < 0) {
        ocra_err_sys(err, "rename to %s", path);
        goto out;
    }
    ret = 0;
out:
    ocra_sha256_abort(s.md);
    ocra_fd_close(s.fd);
    if (ret < 0)
        unlink(tmp);
    free(tmp);
    return ret;
}

int
ocra_build_fetch(struct ocra_build *b, struct ocra_err *err)
{
    const struct ocra_spec_artifact *a = &b->spec->artifact;
    char *dir = NULL, *path = NULL;
    int ret = -1;

    if (!a->present) {
        b->fetched = true;
        return 0;
    }
    dir = ocra_xasprintf("%s/sha256", b->opts.cache_dir);
    path = ocra_xasprintf("%s/%s", dir, a->sha256);
    if (cache_hit(path, a->size)) {
        build_progress(b, OCRA_BUILD_FETCH, "artifact", "cache hit", a->size, a->size);
    } else {
        if (ocra_build_uri_allowed(a->uri, b->opts.http_hosts, b->opts.n_http_hosts, err) < 0 ||
            build_mkdirs(dir, err) < 0 || fetch_into(b, dir, path, err) < 0)
            goto out;
        build_progress(b, OCRA_BUILD_FETCH, "artifact", "verified", a->size, a->size);
    }
    free(b->artifact_path);
    b->artifact_path = path;
    path = NULL;
    b->fetched = true;
    ret = 0;
out:
    if (ret < 0)
        ocra_err_wrap(err, "fetch");
    free(dir);
    free(path);
    return ret;
}
