/* SPDX-License-Identifier: Apache-2.0 */
/*
 * build_fetch.c: the model artifact, fetched once into a content-addressed cache
 * (<cache>/sha256/<hex>). The bytes are hashed and counted as they arrive, into a temporary
 * file of this fetch's own in the same directory that is renamed into place only once the
 * sha256 and size from the chain match: a file under its digest's name has been verified, so
 * it is reused as is. One fetch per digest at a time (a lock file), so no second fetch of the
 * digest writes while the first publishes; connections go to public addresses or to the ones
 * the operator allows, within the operator's size, rate and time limits.
 */
#include "build/build_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http/http.h"

#define FETCH_DEADLINE_S (6L * 3600) /* the whole transfer, when the options give none */

/* What ocra_build_rejection() says, per class: fixed text, nothing the server answered. */
static const char reject_uri[] =
    "artifact.uri may not be fetched: the operator's policy does not allow its scheme, host or "
    "address";
static const char reject_size[] = "artifact.size is over the operator's maximum artifact size";
static const char reject_content[] =
    "artifact: what artifact.uri served is not the artifact that artifact.sha256 and "
    "artifact.size name, or is over the operator's maximum artifact size";

struct fetch_sink {
    const struct ocra_build *b;
    int fd;
    struct ocra_sha256_ctx *md;
    uint64_t got, want;
    bool io_error;
};

static int
fetch_write(void *ctx, const void *data, size_t n)
{
    struct fetch_sink *s = ctx;

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
    if (a->size && s->got != a->size)
        return ocra_err_set(err, EPROTO, "artifact size mismatch: want %llu bytes, got %llu",
                            (unsigned long long)a->size, (unsigned long long)s->got);
    ocra_hex_encode(md, sizeof(md), hex);
    if (strcmp(hex, a->sha256) != 0)
        return ocra_err_set(err, EPROTO, "artifact sha256 mismatch: want %s got %s", a->sha256,
                            hex);
    return 0;
}

/* The most bytes the artifact may have: its declared size, else the operator's maximum. */
static uint64_t
fetch_max(const struct ocra_build *b)
{
    uint64_t op = b->opts.artifact_max_size;

    if (b->spec->artifact.size)
        return b->spec->artifact.size;
    return op && op < OCRA_SPEC_MAX_ARTIFACT_SIZE ? op : OCRA_SPEC_MAX_ARTIFACT_SIZE;
}

/* The transport's failure as the fetch's: a refused address, too many bytes, too slow. */
static int
fetch_transport_err(struct ocra_build *b, struct ocra_err *err)
{
    const struct ocra_spec_artifact *a = &b->spec->artifact;

    switch (err->code) {
    case EACCES:
        b->rejection = reject_uri;
        return ocra_err_wrap(err, "artifact (artifact.allow_hosts lists internal hosts it may "
                                  "come from)");
    case EFBIG:
        b->rejection = reject_content;
        if (a->size)
            return ocra_err_set(err, EPROTO, "artifact size mismatch: want %llu bytes, got more",
                                (unsigned long long)a->size);
        return ocra_err_set(err, EFBIG,
                            "artifact larger than %llu bytes, the operator's maximum "
                            "(artifact.max_size_mib)",
                            (unsigned long long)fetch_max(b));
    case ETIMEDOUT:
        return ocra_err_wrap(err, "artifact (artifact.min_rate_kib over "
                                  "artifact.min_rate_window_s, artifact.deadline_s)");
    default:
        return -1;
    }
}

/* GETs the artifact into s: from an allowed address, within the operator's limits. */
static int
fetch_get(struct ocra_build *b, struct fetch_sink *s, struct ocra_err *err)
{
    const struct ocra_build_opts *o = &b->opts;
    long deadline_s = o->artifact_deadline_s > 0 ? o->artifact_deadline_s : FETCH_DEADLINE_S;
    struct ocra_http_req req = {.method = "GET",
                                .url = b->spec->artifact.uri,
                                .timeout_ms = deadline_s * 1000,
                                .stall_ms = o->artifact_rate_window_s * 1000,
                                .min_rate = o->artifact_min_rate,
                                .max_download = fetch_max(b),
                                .public_only = true,
                                .allow = o->artifact_allow,
                                .n_allow = o->n_artifact_allow,
                                .write = fetch_write,
                                .write_ctx = s};
    struct ocra_http_resp resp = {0};
    int ret = -1;

    if (ocra_http_do(&req, &resp, err) < 0) {
        if (s->io_error)
            ocra_err_sys(err, "write");
        else
            fetch_transport_err(b, err);
        goto out;
    }
    /* the status stays in the journal's error; it is never a rejection (nothing published) */
    if (resp.status != 200) {
        ocra_err_set(err, ocra_http_status_errno(resp.status), "artifact: HTTP %ld", resp.status);
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

/*
 * Takes the fetch lock of a digest (flock of <dir>/.lock.<hex>): one fetch of it at a time,
 * among the threads of a process (each opens its own description) and across processes.
 * The holder removes the file when it is done, so the lock taken is kept only when the file
 * still has the name. The descriptor, or -1; without wait, -1 at once when a fetch holds it.
 */
static int
lock_digest(const char *lock, bool wait, struct ocra_err *err)
{
    struct stat held, named;
    int fd;

    for (;;) {
        fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
            return ocra_err_sys(err, "open %s", lock);
        while (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
            if (errno != EINTR) {
                ocra_err_sys(err, "lock %s", lock);
                ocra_fd_close(fd);
                return -1;
            }
        }
        if (fstat(fd, &held) == 0 && stat(lock, &named) == 0 && held.st_dev == named.st_dev &&
            held.st_ino == named.st_ino)
            return fd;
        ocra_fd_close(fd);
    }
}

static void
unlock_digest(const char *lock, int fd)
{
    if (fd < 0)
        return;
    unlink(lock); /* while held: a waiter on this file sees it gone and opens a new one */
    ocra_fd_close(fd);
}

/* The digest of a temporary's name, ".tmp.<hex>.<suffix>", into hex; false for another name. */
static bool
temp_digest(const char *name, char hex[2 * OCRA_SHA256_LEN + 1])
{
    const size_t n = 2 * OCRA_SHA256_LEN;

    if (strncmp(name, ".tmp.", 5) != 0 || strlen(name) < 5 + n + 1 || name[5 + n] != '.')
        return false;
    memcpy(hex, name + 5, n);
    hex[n] = '\0';
    return ocra_hex_is(hex, n);
}

/*
 * Removes the temporaries no running fetch owns, which a crash left behind: the digest's
 * own (its lock is held here), and another digest's when its lock is free (taken without
 * waiting while its temporary is removed).
 */
static void
remove_stale(const char *dir, const char *hex)
{
    char other[2 * OCRA_SHA256_LEN + 1];
    struct dirent *de;
    DIR *d = opendir(dir);
    int dfd = d ? dirfd(d) : -1;

    while (d && (de = readdir(d))) {
        char *lock = NULL;
        int fd = -1;

        if (!temp_digest(de->d_name, other))
            continue;
        if (strcmp(other, hex) != 0) {
            lock = ocra_xasprintf("%s/.lock.%s", dir, other);
            fd = lock_digest(lock, false, NULL);
        }
        if ((!lock || fd >= 0) && unlinkat(dfd, de->d_name, 0) == 0)
            ocra_log_info("fetch: removed %s/%s, left by an earlier fetch", dir, de->d_name);
        if (lock)
            unlock_digest(lock, fd);
        free(lock);
    }
    if (d)
        closedir(d);
}

/* Fetches into a temporary file of its own (mkostemp: a name no other fetch opens), verifies
 * what was written through it, and renames it to path. */
static int
fetch_into(struct ocra_build *b, const char *dir, const char *path, struct ocra_err *err)
{
    const struct ocra_spec_artifact *a = &b->spec->artifact;
    struct fetch_sink s = {.b = b, .fd = -1, .want = a->size};
    char *tmp = ocra_xasprintf("%s/.tmp.%s.XXXXXX", dir, a->sha256);
    bool made = false;
    int ret = -1;

    s.fd = mkostemp(tmp, O_CLOEXEC);
    if (s.fd < 0) {
        ocra_err_sys(err, "create a temporary file in %s", dir);
        goto out;
    }
    made = true;
    s.md = ocra_sha256_begin();
    if (fetch_get(b, &s, err) < 0)
        goto out;
    if (fetch_check(a, &s, err) < 0) {
        b->rejection = reject_content;
        goto out;
    }
    if (fchmod(s.fd, 0644) < 0 || fsync(s.fd) < 0 || close(s.fd) < 0) {
        s.fd = -1;
        ocra_err_sys(err, "write %s", tmp);
        goto out;
    }
    s.fd = -1;
    if (rename(tmp, path) < 0) {
        ocra_err_sys(err, "rename to %s", path);
        goto out;
    }
    made = false;
    ret = 0;
out:
    ocra_sha256_abort(s.md);
    ocra_fd_close(s.fd);
    if (made)
        unlink(tmp);
    free(tmp);
    return ret;
}

/* Under the digest's lock: a fetch that waited for another finds its result in the cache. */
static int
fetch_locked(struct ocra_build *b, const char *dir, const char *path, struct ocra_err *err)
{
    const struct ocra_spec_artifact *a = &b->spec->artifact;
    char *lock = ocra_xasprintf("%s/.lock.%s", dir, a->sha256);
    int fd, ret = -1;

    fd = lock_digest(lock, true, err);
    if (fd < 0)
        goto out;
    if (cache_hit(path, a->size)) {
        build_progress(b, OCRA_BUILD_FETCH, "artifact", "cache hit", a->size, a->size);
        ret = 0;
        goto out;
    }
    remove_stale(dir, a->sha256);
    if (fetch_into(b, dir, path, err) < 0)
        goto out;
    build_progress(b, OCRA_BUILD_FETCH, "artifact", "verified", a->size, a->size);
    ret = 0;
out:
    unlock_digest(lock, fd);
    free(lock);
    return ret;
}

/* Refuses what can be refused before any connection: a URI, or a declared size too big. */
static int
fetch_admit(struct ocra_build *b, struct ocra_err *err)
{
    const struct ocra_spec_artifact *a = &b->spec->artifact;
    uint64_t op = b->opts.artifact_max_size;

    if (op && a->size > op) {
        b->rejection = reject_size;
        return ocra_err_set(err, EFBIG,
                            "artifact.size %llu is over the operator's maximum of %llu bytes "
                            "(artifact.max_size_mib)",
                            (unsigned long long)a->size, (unsigned long long)op);
    }
    if (ocra_build_uri_allowed(a->uri, b->opts.http_hosts, b->opts.n_http_hosts, err) < 0) {
        b->rejection = reject_uri;
        return -1;
    }
    return 0;
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
    if (fetch_admit(b, err) < 0)
        goto out;
    if (cache_hit(path, a->size)) {
        build_progress(b, OCRA_BUILD_FETCH, "artifact", "cache hit", a->size, a->size);
    } else if (build_mkdirs(dir, err) < 0 || fetch_locked(b, dir, path, err) < 0) {
        goto out;
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
