/* SPDX-License-Identifier: Apache-2.0 */
/*
 * image_registry.c: the OCI distribution client. Every request goes through call_do(), which
 * adds the Authorization header (only for the registry's own origin) and answers one 401 by
 * learning the challenge; small requests are retried with backoff on 429/5xx and transport
 * failures. Blob uploads resume: after any failure the registry is asked how many bytes of the
 * upload it holds (GET on the upload URL, `Range: 0-N`), and the upload goes on from there, or
 * starts over when the registry lost it. Whatever comes back is checked against its digest.
 */
#include "image/image_int.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#define MANIFEST_MAX (4u << 20)
#define LONG_TIMEOUT_MS 3600000L
#define HDR_MAX 4096

static const char *const manifest_accept =
    "Accept: " OCRA_IMAGE_MT_OCI_MANIFEST ", " OCRA_IMAGE_MT_DOCKER_MANIFEST
    ", " OCRA_IMAGE_MT_OCI_INDEX ", " OCRA_IMAGE_MT_DOCKER_LIST;

/* ---- names ----------------------------------------------------------------------------- */

static bool
is_alnum_lower(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* One path component: [a-z0-9]+ joined by ".", "_", "__" or runs of "-". */
static bool
component_valid(const char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        size_t run = 0;

        if (!is_alnum_lower(s[i]))
            return false;
        while (i < n && is_alnum_lower(s[i]))
            i++;
        while (i + run < n && strchr("._-", s[i + run]))
            run++;
        if (run && !((run == 1) || (run == 2 && s[i] == '_' && s[i + 1] == '_') ||
                     strspn(s + i, "-") >= run))
            return false;
        if (run && i + run == n)
            return false;
        i += run;
    }
    return n > 0;
}

bool
ocra_image_repo_valid(const char *repo)
{
    size_t len = strlen(repo);

    if (len == 0 || len > 255)
        return false;
    for (const char *p = repo;;) {
        size_t n = strcspn(p, "/");

        if (!component_valid(p, n))
            return false;
        if (!p[n])
            return true;
        p += n + 1;
    }
}

bool
ocra_image_ref_valid(const char *ref)
{
    size_t len = strlen(ref);

    if (ocra_image_digest_valid(ref))
        return true;
    if (len == 0 || len > 128 || ref[0] == '.' || ref[0] == '-')
        return false;
    for (const char *p = ref; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '.' || *p == '-'))
            return false;
    return true;
}

static int
check_names(const char *repo, const char *ref, struct ocra_err *err)
{
    char q[96];

    if (!ocra_image_repo_valid(repo))
        return ocra_err_set(err, EINVAL, "invalid repository name %s",
                            ocra_str_escape(repo, strlen(repo), 64, q, sizeof(q)));
    if (ref && !ocra_image_ref_valid(ref))
        return ocra_err_set(err, EINVAL, "invalid reference %s",
                            ocra_str_escape(ref, strlen(ref), 64, q, sizeof(q)));
    return 0;
}

/* ---- client ---------------------------------------------------------------------------- */

struct ocra_image_registry *
ocra_image_registry_new(const struct ocra_image_registry_opts *opts, struct ocra_err *err)
{
    struct ocra_image_registry *r = NULL;
    const char *u = opts->url, *host;
    size_t n;

    host = strncmp(u, "https://", 8) == 0 ? u + 8 : strncmp(u, "http://", 7) == 0 ? u + 7 : NULL;
    n = host ? strcspn(host, "/") : 0;
    if (!host || n == 0 || strpbrk(u, " \t\r\n?#@") || host[n + strspn(host + n, "/")]) {
        ocra_err_set(err, EINVAL, "registry url: want http(s)://host[:port]");
        return NULL;
    }
    r = ocra_xcalloc(1, sizeof(*r));
    r->url = ocra_xstrndup(u, (size_t)(host - u) + n);
    r->origin = ocra_xstrndup(host, n);
    r->chunk_size = opts->chunk_size;
    r->max_attempts = opts->max_attempts > 0 ? opts->max_attempts : 5;
    r->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : 30000;
    ocra_pacer_init(&r->pacer, 0, opts->backoff_ms, 0);
    if (image_creds_load(r, opts, err) < 0) {
        ocra_err_wrap(err, "registry %s", r->origin);
        ocra_image_registry_free(r);
        return NULL;
    }
    return r;
}

void
ocra_image_registry_free(struct ocra_image_registry *r)
{
    if (!r)
        return;
    image_tokens_free(r);
    if (r->basic)
        ocra_secure_free(r->basic, strlen(r->basic));
    free(r->realm);
    free(r->service);
    free(r->url);
    free(r->origin);
    free(r);
}

/* ---- requests -------------------------------------------------------------------------- */

/* The sha256 of an upload whose digest is known only at its end: of the bytes [0, done). */
struct upload_md {
    EVP_MD_CTX *ctx;
    uint64_t done;
};

/* A byte range of a blob source, read by the http module as a request body. */
struct src_reader {
    const struct ocra_image_src *src;
    uint64_t start, off, end;
    struct upload_md *md; /* NULL, or hashed as the bytes are first read */
};

/* Hashes what of buf (the bytes at off) is past the bytes hashed so far: bytes sent again
 * after a failure are the same bytes, hashed once. */
static void
md_feed(struct upload_md *md, const char *buf, size_t n, uint64_t off)
{
    if (off + n <= md->done)
        return;
    assert(off <= md->done); /* a read starts at an offset the registry holds */
    EVP_DigestUpdate(md->ctx, buf + (md->done - off), (size_t)(off + n - md->done));
    md->done = off + n;
}

ssize_t
image_src_read(const struct ocra_image_src *src, void *buf, size_t n, uint64_t off)
{
    ssize_t got;

    if (off >= src->size)
        return 0;
    if (n > src->size - off)
        n = (size_t)(src->size - off);
    if (src->mem) {
        memcpy(buf, (const char *)src->mem + off, n);
        return (ssize_t)n;
    }
    if (src->read)
        return src->read(src->read_arg, buf, n, off);
    do
        got = pread(src->fd, buf, n, (off_t)off);
    while (got < 0 && errno == EINTR);
    return got;
}

static size_t
src_read(void *ctx, char *buf, size_t n)
{
    struct src_reader *sr = ctx;
    ssize_t got;

    if (sr->off >= sr->end)
        return 0;
    if (n > sr->end - sr->off)
        n = (size_t)(sr->end - sr->off);
    got = image_src_read(sr->src, buf, n, sr->off);
    if (got <= 0)
        return (size_t)-1; /* a source shorter than its size is an error, not an end */
    if (sr->md)
        md_feed(sr->md, buf, (size_t)got, sr->off);
    sr->off += (uint64_t)got;
    if (sr->src->progress && !sr->src->mem)
        sr->src->progress(sr->src->progress_arg, sr->off, sr->src->size);
    return (size_t)got;
}

struct call {
    const char *method;
    const char *url;
    const char *scope;  /* for the bearer token; NULL: no auth */
    const char *hdr[4]; /* extra headers, NULL-terminated */
    const char *body;
    size_t body_len;
    struct src_reader *reader;                  /* streaming body, rewound per attempt */
    int (*write)(void *, const void *, size_t); /* streaming response */
    void (*write_reset)(void *);
    void *write_ctx;
    bool follow;
    size_t max_response;
};

static bool
same_origin(const struct ocra_image_registry *r, const char *url)
{
    size_t n = strlen(r->url);

    return strncmp(url, r->url, n) == 0 && (url[n] == '/' || url[n] == '\0');
}

static int
call_once(struct ocra_image_registry *r, struct call *c, struct ocra_http_resp *resp,
          struct ocra_err *err)
{
    const char *headers[6] = {0};
    char *auth = NULL;
    size_t n = 0;
    int ret;

    if (c->scope && same_origin(r, c->url) && image_auth_header(r, c->scope, &auth, err) < 0)
        return -1;
    for (; n < 4 && c->hdr[n]; n++)
        headers[n] = c->hdr[n];
    headers[n] = auth;
    if (c->reader)
        c->reader->off = c->reader->start;
    if (c->write_reset)
        c->write_reset(c->write_ctx);
    ret = ocra_http_do(
        &(struct ocra_http_req){
            .method = c->method,
            .url = c->url,
            .headers = headers,
            .body = c->body,
            .body_len = c->reader ? c->reader->end - c->reader->start : c->body_len,
            .read = c->reader ? src_read : NULL,
            .read_ctx = c->reader,
            .write = c->write,
            .write_ctx = c->write_ctx,
            .keep_headers = true,
            .follow_redirects = c->follow,
            .max_response = c->max_response ? c->max_response : (1u << 20),
            .timeout_ms = c->reader || c->write ? LONG_TIMEOUT_MS : r->timeout_ms},
        resp, err);
    if (auth)
        ocra_secure_free(auth, strlen(auth));
    return ret;
}

/* One request; a 401 is answered once by authenticating as the challenge asks. */
static int
call_do(struct ocra_image_registry *r, struct call *c, struct ocra_http_resp *resp,
        struct ocra_err *err)
{
    if (call_once(r, c, resp, err) < 0)
        return -1;
    if (resp->status != 401 || !c->scope)
        return 0;
    if (image_auth_on_401(r, resp, c->scope, err) < 0) {
        ocra_http_resp_fini(resp);
        return -1;
    }
    ocra_http_resp_fini(resp);
    return call_once(r, c, resp, err);
}

static bool
transient(long status)
{
    return status == 429 || status == 502 || status == 503 || status == 504;
}

/* call_do with backoff on transport failures and 429/5xx-ish statuses. */
static int
call_retry(struct ocra_image_registry *r, struct call *c, struct ocra_http_resp *resp,
           struct ocra_err *err)
{
    for (int attempt = 1;; attempt++) {
        int rc = call_do(r, c, resp, err);

        if (rc == 0 && !transient(resp->status))
            return 0;
        if (rc < 0 && err && (err->code == EACCES || err->code == EINVAL))
            return -1;
        if (attempt >= r->max_attempts)
            return rc;
        if (rc == 0)
            ocra_http_resp_fini(resp);
        ocra_sleep_ms(ocra_pacer_backoff_ms(&r->pacer, attempt));
    }
}

/* Turns a non-2xx reply into an error naming the registry's error code, if any. */
static int
status_err(const struct ocra_http_resp *resp, const char *what, struct ocra_err *err)
{
    json_t *j = resp->body_len ? ocra_json_parse(resp->body, resp->body_len, 0, NULL) : NULL;
    json_t *e0 = json_array_get(json_object_get(j, "errors"), 0);
    const char *code = ocra_json_str(e0, "code");
    char q[80];

    ocra_err_set(err, ocra_http_status_errno(resp->status), "%s: HTTP %ld%s%s", what, resp->status,
                 code ? " " : "",
                 code ? ocra_str_escape(code, strlen(code), 48, q, sizeof(q)) : "");
    json_decref(j);
    return -1;
}

static char *
api_url(const struct ocra_image_registry *r, const char *repo, const char *kind, const char *ref)
{
    return ocra_xasprintf("%s/v2/%s/%s/%s", r->url, repo, kind, ref);
}

static char *
scope_of(const char *repo, bool push)
{
    return ocra_xasprintf("repository:%s:%s", repo, push ? "pull,push" : "pull");
}

int
ocra_image_registry_ping(struct ocra_image_registry *r, struct ocra_err *err)
{
    char *url = ocra_xasprintf("%s/v2/", r->url);
    struct call c = {.method = "GET", .url = url, .scope = ""};
    struct ocra_http_resp resp = {0};
    int ret = -1;

    if (call_retry(r, &c, &resp, err) < 0)
        goto out;
    if (resp.status != 200) {
        status_err(&resp, "GET /v2/", err);
        goto out;
    }
    ret = 0;
out:
    if (ret < 0)
        ocra_err_wrap(err, "registry %s", r->origin);
    ocra_http_resp_fini(&resp);
    free(url);
    return ret;
}

/* ---- blobs: reading -------------------------------------------------------------------- */

int
ocra_image_blob_exists(struct ocra_image_registry *r, const char *repo, const char *digest,
                       int64_t *size, struct ocra_err *err)
{
    char *url = NULL, *scope = NULL, len[32];
    struct ocra_http_resp resp = {0};
    struct call c = {.method = "HEAD", .follow = true};
    int ret = -1;

    if (check_names(repo, NULL, err) < 0)
        return -1;
    if (!ocra_image_digest_valid(digest))
        return ocra_err_set(err, EINVAL, "blob digest: want sha256:<64 hex>");
    c.url = url = api_url(r, repo, "blobs", digest);
    c.scope = scope = scope_of(repo, false);
    if (call_retry(r, &c, &resp, err) < 0)
        goto out;
    if (resp.status == 404) {
        ret = 0;
        goto out;
    }
    if (resp.status != 200) {
        status_err(&resp, "HEAD blob", err);
        goto out;
    }
    if (size && (ocra_http_resp_header(&resp, "Content-Length", len, sizeof(len)) < 0 ||
                 ocra_parse_i64(len, 0, INT64_MAX, size, NULL) < 0)) {
        ocra_err_set(err, EPROTO, "HEAD blob: no valid Content-Length");
        goto out;
    }
    ret = 1;
out:
    if (ret < 0)
        ocra_err_wrap(err, "%s@%.19s", repo, digest);
    ocra_http_resp_fini(&resp);
    free(url);
    free(scope);
    return ret;
}

/* The response body of a blob GET: hashed as it arrives, kept in memory or written to fd. */
struct fetch_sink {
    EVP_MD_CTX *md;
    int fd;
    off_t fd_start;
    struct ocra_buf buf;
    size_t max;
    uint64_t n;
};

static int
fetch_write(void *ctx, const void *data, size_t n)
{
    struct fetch_sink *s = ctx;

    s->n += n;
    EVP_DigestUpdate(s->md, data, n);
    if (s->fd < 0) {
        if (s->buf.len + n > s->max)
            return -1;
        ocra_buf_append(&s->buf, data, n);
        return 0;
    }
    return ocra_write_all(s->fd, data, n);
}

static void
fetch_reset(void *ctx)
{
    struct fetch_sink *s = ctx;

    EVP_DigestInit_ex(s->md, EVP_sha256(), NULL);
    ocra_buf_reset(&s->buf);
    s->n = 0;
    if (s->fd >= 0 && lseek(s->fd, s->fd_start, SEEK_SET) >= 0)
        (void)!ftruncate(s->fd, s->fd_start);
}

static int
fetch_verify(struct fetch_sink *s, const char *digest, struct ocra_err *err)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    char got[OCRA_IMAGE_DIGEST_MAX] = "sha256:";
    unsigned mdlen = 0;

    EVP_DigestFinal_ex(s->md, md, &mdlen);
    ocra_hex_encode(md, mdlen, got + 7);
    if (strcmp(got, digest) != 0)
        return ocra_err_set(err, EPROTO, "content has digest %.19s..., not the one asked for", got);
    return 0;
}

static int
blob_get(struct ocra_image_registry *r, const char *repo, const char *digest, struct fetch_sink *s,
         struct ocra_err *err)
{
    char *url = NULL, *scope = NULL;
    struct ocra_http_resp resp = {0};
    struct call c = {.method = "GET",
                     .follow = true,
                     .write = fetch_write,
                     .write_reset = fetch_reset,
                     .write_ctx = s};
    int ret = -1;

    if (check_names(repo, digest, err) < 0)
        return -1;
    if (!ocra_image_digest_valid(digest))
        return ocra_err_set(err, EINVAL, "blob digest: want sha256:<64 hex>");
    c.url = url = api_url(r, repo, "blobs", digest);
    c.scope = scope = scope_of(repo, false);
    if (call_retry(r, &c, &resp, err) < 0)
        goto out;
    if (resp.status != 200) {
        status_err(&resp, "GET blob", err);
        goto out;
    }
    ret = fetch_verify(s, digest, err);
out:
    if (ret < 0)
        ocra_err_wrap(err, "%s@%.19s", repo, digest);
    ocra_http_resp_fini(&resp);
    free(url);
    free(scope);
    return ret;
}

int
ocra_image_blob_get(struct ocra_image_registry *r, const char *repo, const char *digest, size_t max,
                    char **out, size_t *len, struct ocra_err *err)
{
    struct fetch_sink s = {.md = EVP_MD_CTX_new(), .fd = -1, .max = max};
    int ret;

    if (!s.md)
        abort();
    ocra_buf_init(&s.buf);
    ret = blob_get(r, repo, digest, &s, err);
    if (ret == 0) {
        if (len)
            *len = s.buf.len;
        *out = ocra_buf_take(&s.buf);
    }
    ocra_buf_fini(&s.buf);
    EVP_MD_CTX_free(s.md);
    return ret;
}

int
ocra_image_blob_fetch(struct ocra_image_registry *r, const char *repo, const char *digest, int fd,
                      struct ocra_err *err)
{
    struct fetch_sink s = {.md = EVP_MD_CTX_new(), .fd = fd};
    int ret;

    if (!s.md)
        abort();
    s.fd_start = lseek(fd, 0, SEEK_CUR);
    ocra_buf_init(&s.buf);
    ret = s.fd_start < 0 ? ocra_err_sys(err, "blob fetch: lseek")
                         : blob_get(r, repo, digest, &s, err);
    ocra_buf_fini(&s.buf);
    EVP_MD_CTX_free(s.md);
    return ret;
}

/* ---- blobs: uploading ------------------------------------------------------------------ */

struct upload {
    struct ocra_image_registry *r;
    const char *repo;
    const char *digest; /* NULL until the bytes of a streamed upload are all read */
    const struct ocra_image_src *src;
    char *scope;
    char *loc;            /* the upload URL the registry gave last; NULL: none open */
    uint64_t off;         /* bytes the registry holds */
    struct upload_md *md; /* a streamed upload: its digest as the bytes are read */
    char md_digest[OCRA_IMAGE_DIGEST_MAX];
};

/* Takes the Location of resp as the upload's URL (relative ones resolved on the registry). */
static int
upload_take_location(struct upload *u, const struct ocra_http_resp *resp, struct ocra_err *err)
{
    char loc[HDR_MAX], *next;

    if (ocra_http_resp_header(resp, "Location", loc, sizeof(loc)) <= 0)
        return ocra_err_set(err, EPROTO, "upload reply without a Location");
    if (strpbrk(loc, " \t\"<>\\"))
        return ocra_err_set(err, EPROTO, "upload Location is not a URL");
    if (loc[0] == '/' && loc[1] != '/')
        next = ocra_xasprintf("%s%s", u->r->url, loc);
    else if (strncmp(loc, "http://", 7) == 0 || strncmp(loc, "https://", 8) == 0)
        next = ocra_xstrdup(loc);
    else
        return ocra_err_set(err, EPROTO, "upload Location is not a URL");
    free(u->loc);
    u->loc = next;
    return 0;
}

/* "0-N" from the registry: it holds N + 1 bytes ("0-0" is read as none). */
static int
parse_range(const struct ocra_http_resp *resp, uint64_t *held, struct ocra_err *err)
{
    char range[64];
    uint64_t end;

    if (ocra_http_resp_header(resp, "Range", range, sizeof(range)) < 0) {
        *held = 0; /* some registries omit it before the first byte */
        return 0;
    }
    if (strncmp(range, "0-", 2) != 0 || ocra_parse_u64(range + 2, UINT64_MAX - 1, &end, NULL) < 0)
        return ocra_err_set(err, EPROTO, "upload Range is not 0-N");
    *held = end == 0 ? 0 : end + 1;
    return 0;
}

static int
upload_start(struct upload *u, struct ocra_err *err)
{
    char *url = ocra_xasprintf("%s/v2/%s/blobs/uploads/", u->r->url, u->repo);
    struct call c = {.method = "POST",
                     .url = url,
                     .scope = u->scope,
                     .body = "",
                     .hdr = {"Content-Type: application/octet-stream"}};
    struct ocra_http_resp resp = {0};
    int ret = -1;

    if (call_retry(u->r, &c, &resp, err) < 0)
        goto out;
    if (resp.status != 202) {
        status_err(&resp, "start upload", err);
        goto out;
    }
    if (upload_take_location(u, &resp, err) < 0)
        goto out;
    u->off = 0;
    ret = 0;
out:
    ocra_http_resp_fini(&resp);
    free(url);
    return ret;
}

/* Asks the registry how much of the open upload it holds (after a failure). */
static int
upload_status(struct upload *u, struct ocra_err *err)
{
    struct call c = {.method = "GET", .url = u->loc, .scope = u->scope};
    struct ocra_http_resp resp = {0};
    int ret = -1;

    if (call_do(u->r, &c, &resp, err) < 0)
        goto out;
    if (resp.status != 204 && resp.status != 200) {
        status_err(&resp, "upload status", err);
        goto out;
    }
    if (parse_range(&resp, &u->off, err) < 0 || u->off > u->src->size ||
        (u->md && u->off > u->md->done)) /* holding bytes never sent: not this upload */
        goto out;
    (void)upload_take_location(u, &resp, NULL); /* without a new Location the old one stays */
    ret = 0;
out:
    ocra_http_resp_fini(&resp);
    return ret;
}

static int
upload_patch(struct upload *u, uint64_t n, struct ocra_err *err)
{
    struct src_reader sr = {.src = u->src, .start = u->off, .end = u->off + n, .md = u->md};
    char range[64];
    struct call c = {.method = "PATCH",
                     .url = u->loc,
                     .scope = u->scope,
                     .reader = &sr,
                     .hdr = {"Content-Type: application/octet-stream", range}};
    struct ocra_http_resp resp = {0};
    uint64_t held = 0;
    int ret = -1;

    /* "Content-Range: " and two 20-digit numbers always fit in range */
    (void)snprintf(range, sizeof(range), "Content-Range: %llu-%llu", (unsigned long long)u->off,
                   (unsigned long long)(u->off + n - 1));
    if (call_do(u->r, &c, &resp, err) < 0)
        goto out;
    if (resp.status != 202) {
        status_err(&resp, "PATCH", err);
        goto out;
    }
    if (upload_take_location(u, &resp, err) < 0 || parse_range(&resp, &held, err) < 0)
        goto out;
    if (held != u->off + n) {
        ocra_err_set(err, EPROTO, "registry holds %llu bytes after a PATCH to %llu",
                     (unsigned long long)held, (unsigned long long)(u->off + n));
        goto out;
    }
    u->off = held;
    ret = 0;
out:
    ocra_http_resp_fini(&resp);
    return ret;
}

/* PUT ?digest= with the bytes the registry does not hold yet (none after chunks). */
static int
upload_finish(struct upload *u, struct ocra_err *err)
{
    struct src_reader sr = {.src = u->src, .start = u->off, .end = u->src->size};
    struct ocra_buf url;
    struct call c = {.method = "PUT",
                     .scope = u->scope,
                     .reader = &sr,
                     .hdr = {"Content-Type: application/octet-stream"}};
    struct ocra_http_resp resp = {0};
    char got[OCRA_IMAGE_DIGEST_MAX];
    int ret = -1;

    if (!u->digest) { /* streamed: every byte went in the PATCHes and was hashed */
        unsigned char d[EVP_MAX_MD_SIZE];
        unsigned len = 0;

        assert(u->md && u->md->done == u->src->size && u->off == u->src->size);
        EVP_DigestFinal_ex(u->md->ctx, d, &len);
        memcpy(u->md_digest, "sha256:", 7);
        ocra_hex_encode(d, len, u->md_digest + 7);
        u->digest = u->md_digest;
    }
    ocra_buf_init(&url);
    ocra_buf_printf(&url, "%s%cdigest=", u->loc, strchr(u->loc, '?') ? '&' : '?');
    image_url_escape(&url, u->digest);
    c.url = url.data;
    if (call_do(u->r, &c, &resp, err) < 0)
        goto out;
    if (resp.status != 201) {
        status_err(&resp, "PUT", err);
        goto out;
    }
    if (ocra_http_resp_header(&resp, "Docker-Content-Digest", got, sizeof(got)) >= 0 &&
        strcmp(got, u->digest) != 0) {
        ocra_err_set(err, EPROTO, "registry stored the blob under another digest");
        goto out;
    }
    u->off = u->src->size;
    ret = 0;
out:
    ocra_http_resp_fini(&resp);
    ocra_buf_fini(&url);
    return ret;
}

/* One step: a chunk, or the final PUT. 1 when the blob is complete. */
static int
upload_step(struct upload *u, struct ocra_err *err)
{
    uint64_t left = u->src->size - u->off, chunk = u->r->chunk_size;

    if (u->md && !chunk) /* the digest is known at the end: the bytes go in a PATCH */
        chunk = left;
    if (!u->loc && upload_start(u, err) < 0)
        return -1;
    if (chunk && left > 0) {
        if (upload_patch(u, left < chunk ? left : chunk, err) < 0)
            return -1;
        return 0;
    }
    return upload_finish(u, err) < 0 ? -1 : 1;
}

/* After a failure: resume at the registry's offset, or start over when it lost the upload. */
static void
upload_recover(struct upload *u)
{
    if (u->loc && upload_status(u, NULL) == 0)
        return;
    free(u->loc);
    u->loc = NULL;
    u->off = 0;
}

static int
upload_run(struct upload *u, struct ocra_err *err)
{
    int failures = 0;

    for (;;) {
        int rc = upload_step(u, err);

        if (rc > 0)
            return 0;
        if (rc == 0)
            continue;
        if (err && (err->code == EACCES || err->code == ENOTSUP))
            return -1;
        if (++failures >= u->r->max_attempts)
            return ocra_err_wrap(err, "giving up after %d failures", failures);
        ocra_sleep_ms(ocra_pacer_backoff_ms(&u->r->pacer, failures));
        upload_recover(u);
    }
}

/* Runs the upload; a failed one is cancelled (best effort: the registry GCs it anyway). */
static int
upload_do(struct upload *u, struct ocra_err *err)
{
    int ret;

    u->scope = scope_of(u->repo, true);
    ret = upload_run(u, err);
    if (u->loc && ret < 0) {
        struct call c = {.method = "DELETE", .url = u->loc, .scope = u->scope};
        struct ocra_http_resp resp = {0};

        if (call_do(u->r, &c, &resp, NULL) == 0)
            ocra_http_resp_fini(&resp);
    }
    free(u->loc);
    free(u->scope);
    return ret;
}

int
ocra_image_blob_upload(struct ocra_image_registry *r, const char *repo, const char *digest,
                       const struct ocra_image_src *src, struct ocra_err *err)
{
    struct upload u = {.r = r, .repo = repo, .digest = digest, .src = src};

    if (upload_do(&u, err) < 0)
        return ocra_err_wrap(err, "push %s@%.19s", repo, digest);
    return 0;
}

int
ocra_image_blob_push(struct ocra_image_registry *r, const char *repo, const char *digest,
                     const struct ocra_image_src *src, struct ocra_err *err)
{
    int have = ocra_image_blob_exists(r, repo, digest, NULL, err);

    if (have != 0)
        return have < 0 ? -1 : 0;
    return ocra_image_blob_upload(r, repo, digest, src, err);
}

int
ocra_image_blob_push_stream(struct ocra_image_registry *r, const char *repo,
                            const struct ocra_image_src *src,
                            char digest_out[OCRA_IMAGE_DIGEST_MAX], struct ocra_err *err)
{
    struct upload_md md = {EVP_MD_CTX_new(), 0};
    struct upload u = {.r = r, .repo = repo, .src = src, .md = &md};
    int ret;

    if (!md.ctx)
        abort();
    EVP_DigestInit_ex(md.ctx, EVP_sha256(), NULL);
    ret = upload_do(&u, err);
    EVP_MD_CTX_free(md.ctx);
    if (ret < 0)
        return ocra_err_wrap(err, "push %s (streamed)", repo);
    memcpy(digest_out, u.digest, strlen(u.digest) + 1);
    return 0;
}

int
ocra_image_blob_mount(struct ocra_image_registry *r, const char *repo, const char *digest,
                      const char *from, struct ocra_err *err)
{
    struct upload u = {.r = r, .repo = repo, .digest = digest};
    struct ocra_http_resp resp = {0};
    struct call c = {
        .method = "POST", .body = "", .hdr = {"Content-Type: application/octet-stream"}};
    struct ocra_buf url;
    int ret = -1;

    if (check_names(repo, digest, err) < 0 || check_names(from, NULL, err) < 0)
        return -1;
    ocra_buf_init(&url);
    ocra_buf_printf(&url, "%s/v2/%s/blobs/uploads/?mount=", r->url, repo);
    image_url_escape(&url, digest);
    ocra_buf_printf(&url, "&from=%s", from);
    c.url = url.data;
    c.scope = u.scope = ocra_xasprintf("repository:%s:pull,push repository:%s:pull", repo, from);
    if (call_retry(r, &c, &resp, err) < 0)
        goto out;
    if (resp.status == 201) {
        ret = 1;
    } else if (resp.status == 202) {
        /* the registry opened an ordinary upload instead: close it */
        if (upload_take_location(&u, &resp, NULL) == 0) {
            struct call d = {.method = "DELETE", .url = u.loc, .scope = u.scope};

            ocra_http_resp_fini(&resp);
            if (call_do(r, &d, &resp, NULL) < 0)
                memset(&resp, 0, sizeof(resp));
        }
        ret = 0;
    } else {
        status_err(&resp, "mount", err);
    }
out:
    if (ret < 0)
        ocra_err_wrap(err, "mount %.19s from %s into %s", digest, from, repo);
    ocra_http_resp_fini(&resp);
    ocra_buf_fini(&url);
    free(u.loc);
    free(u.scope);
    return ret;
}

/* ---- manifests ------------------------------------------------------------------------- */

int
ocra_image_manifest_put(struct ocra_image_registry *r, const char *repo, const char *ref,
                        const char *media_type, const char *data, size_t len,
                        char digest_out[OCRA_IMAGE_DIGEST_MAX], struct ocra_err *err)
{
    char digest[OCRA_IMAGE_DIGEST_MAX], got[OCRA_IMAGE_DIGEST_MAX], *ct = NULL;
    char *url = NULL, *scope = NULL;
    struct ocra_http_resp resp = {0};
    struct call c = {.method = "PUT", .body = data, .body_len = len};
    int ret = -1;

    if (check_names(repo, ref, err) < 0)
        return -1;
    ocra_image_digest_of(data, len, digest);
    if (ocra_image_digest_valid(ref) && strcmp(ref, digest) != 0)
        return ocra_err_set(err, EINVAL, "manifest PUT by digest: content has another digest");
    if (strlen(media_type) >= OCRA_IMAGE_MEDIA_TYPE_MAX || strpbrk(media_type, "\r\n"))
        return ocra_err_set(err, EINVAL, "manifest media type is not valid");
    c.hdr[0] = ct = ocra_xasprintf("Content-Type: %s", media_type);
    c.url = url = api_url(r, repo, "manifests", ref);
    c.scope = scope = scope_of(repo, true);
    if (call_retry(r, &c, &resp, err) < 0)
        goto out;
    if (resp.status != 201) {
        status_err(&resp, "PUT manifest", err);
        goto out;
    }
    if (ocra_http_resp_header(&resp, "Docker-Content-Digest", got, sizeof(got)) >= 0 &&
        strcmp(got, digest) != 0) {
        ocra_err_set(err, EPROTO, "registry stored the manifest under another digest");
        goto out;
    }
    if (digest_out)
        memcpy(digest_out, digest, sizeof(digest));
    ret = 0;
out:
    if (ret < 0)
        ocra_err_wrap(err, "%s:%s", repo, ref);
    ocra_http_resp_fini(&resp);
    free(ct);
    free(url);
    free(scope);
    return ret;
}

/* The digest the bytes of a fetched manifest must have: ref's, else the registry's. */
static int
manifest_verify(const struct ocra_http_resp *resp, const char *ref, char *digest,
                struct ocra_err *err)
{
    char claimed[OCRA_IMAGE_DIGEST_MAX];

    ocra_image_digest_of(resp->body, resp->body_len, digest);
    if (ocra_image_digest_valid(ref))
        return strcmp(ref, digest) == 0
                   ? 0
                   : ocra_err_set(err, EPROTO, "manifest content does not match its digest");
    if (ocra_http_resp_header(resp, "Docker-Content-Digest", claimed, sizeof(claimed)) < 0 ||
        strncmp(claimed, "sha256:", 7) != 0)
        return 0; /* nothing else to check it against: digest is what the caller records */
    return strcmp(claimed, digest) == 0
               ? 0
               : ocra_err_set(err, EPROTO, "manifest content does not match Docker-Content-Digest");
}

int
ocra_image_manifest_get(struct ocra_image_registry *r, const char *repo, const char *ref,
                        char **data, size_t *len, char media_type[OCRA_IMAGE_MEDIA_TYPE_MAX],
                        char digest_out[OCRA_IMAGE_DIGEST_MAX], struct ocra_err *err)
{
    char digest[OCRA_IMAGE_DIGEST_MAX], ct[OCRA_IMAGE_MEDIA_TYPE_MAX] = "";
    char *url = NULL, *scope = NULL;
    struct ocra_http_resp resp = {0};
    struct call c = {.method = "GET", .hdr = {manifest_accept}, .max_response = MANIFEST_MAX};
    int ret = -1;

    if (check_names(repo, ref, err) < 0)
        return -1;
    c.url = url = api_url(r, repo, "manifests", ref);
    c.scope = scope = scope_of(repo, false);
    if (call_retry(r, &c, &resp, err) < 0)
        goto out;
    if (resp.status != 200) {
        status_err(&resp, "GET manifest", err);
        goto out;
    }
    if (manifest_verify(&resp, ref, digest, err) < 0)
        goto out;
    (void)ocra_http_resp_header(&resp, "Content-Type", ct, sizeof(ct));
    ct[strcspn(ct, ";")] = '\0';
    if (media_type)
        memcpy(media_type, ct, sizeof(ct));
    if (digest_out)
        memcpy(digest_out, digest, sizeof(digest));
    if (len)
        *len = resp.body_len;
    *data = resp.body;
    resp.body = NULL;
    ret = 0;
out:
    if (ret < 0)
        ocra_err_wrap(err, "%s:%s", repo, ref);
    ocra_http_resp_fini(&resp);
    free(url);
    free(scope);
    return ret;
}

int
ocra_image_manifest_head(struct ocra_image_registry *r, const char *repo, const char *ref,
                         char digest_out[OCRA_IMAGE_DIGEST_MAX], struct ocra_err *err)
{
    char got[OCRA_IMAGE_DIGEST_MAX];
    char *url = NULL, *scope = NULL;
    struct ocra_http_resp resp = {0};
    struct call c = {.method = "HEAD", .hdr = {manifest_accept}};
    int ret = -1;

    if (check_names(repo, ref, err) < 0)
        return -1;
    c.url = url = api_url(r, repo, "manifests", ref);
    c.scope = scope = scope_of(repo, false);
    if (call_retry(r, &c, &resp, err) < 0)
        goto out;
    if (resp.status == 404) {
        ret = 0;
        goto out;
    }
    if (resp.status != 200) {
        status_err(&resp, "HEAD manifest", err);
        goto out;
    }
    if (ocra_http_resp_header(&resp, "Docker-Content-Digest", got, sizeof(got)) < 0 ||
        !ocra_image_digest_valid(got)) {
        ocra_err_set(err, EPROTO, "HEAD manifest: no valid Docker-Content-Digest");
        goto out;
    }
    if (digest_out)
        memcpy(digest_out, got, sizeof(got));
    ret = 1;
out:
    if (ret < 0)
        ocra_err_wrap(err, "%s:%s", repo, ref);
    ocra_http_resp_fini(&resp);
    free(url);
    free(scope);
    return ret;
}

/* ---- tag list ---------------------------------------------------------------------------- */

#define TAGS_PAGE 100
#define TAGS_MAX 100000

/* The next page of a Link header (`<...>; rel="next"`), as a URL on the registry's origin;
 * NULL when there is none. The registry gives a path ("/v2/r/tags/list?n=100&last=x"). */
static char *
next_link(const struct ocra_image_registry *r, const struct ocra_http_resp *resp)
{
    char link[1024];
    const char *lt, *gt;

    if (ocra_http_resp_header(resp, "Link", link, sizeof(link)) < 0 ||
        !strstr(link, "rel=\"next\""))
        return NULL;
    lt = strchr(link, '<');
    gt = lt ? strchr(lt, '>') : NULL;
    if (!lt || !gt || lt[1] != '/' || strncmp(lt + 1, "/v2/", 4) != 0)
        return NULL;
    return ocra_xasprintf("%s%.*s", r->url, (int)(gt - lt - 1), lt + 1);
}

int
ocra_image_tags_list(struct ocra_image_registry *r, const char *repo, char ***tags_out,
                     size_t *n_out, struct ocra_err *err)
{
    char **tags = NULL, *url = NULL, *scope = NULL;
    size_t n = 0, cap = 0;
    struct ocra_http_resp resp = {0};
    int ret = -1;

    if (!ocra_image_repo_valid(repo))
        return ocra_err_set(err, EINVAL, "bad repository name");
    url = ocra_xasprintf("%s/v2/%s/tags/list?n=%d", r->url, repo, TAGS_PAGE);
    scope = scope_of(repo, false);
    while (url) {
        struct call c = {.method = "GET", .url = url, .scope = scope, .max_response = 4u << 20};
        json_t *doc, *list, *t;
        size_t i;

        ocra_http_resp_fini(&resp);
        memset(&resp, 0, sizeof(resp));
        if (call_retry(r, &c, &resp, err) < 0)
            goto out;
        if (resp.status == 404) { /* no such repository: no tags */
            free(url);
            url = NULL;
            break;
        }
        if (resp.status != 200) {
            status_err(&resp, "GET tags", err);
            goto out;
        }
        doc = ocra_json_parse(resp.body, resp.body_len, OCRA_JSON_STRICT, err);
        list = doc ? json_object_get(doc, "tags") : NULL;
        if (!doc || !(json_is_array(list) || json_is_null(list))) {
            if (doc)
                ocra_err_set(err, EPROTO, "GET tags: no \"tags\" array");
            json_decref(doc);
            goto out;
        }
        json_array_foreach(list, i, t)
        {
            const char *tag = json_string_value(t);

            if (!tag || !ocra_image_ref_valid(tag) || ocra_image_digest_valid(tag)) {
                ocra_err_set(err, EPROTO, "GET tags: an entry is not a tag");
                json_decref(doc);
                goto out;
            }
            if (n == TAGS_MAX) {
                ocra_err_set(err, EPROTO, "GET tags: more than %d tags", TAGS_MAX);
                json_decref(doc);
                goto out;
            }
            if (n == cap) {
                cap = cap ? 2 * cap : 16;
                tags = ocra_xrealloc(tags, (cap + 1) * sizeof(*tags));
            }
            tags[n++] = ocra_xstrdup(tag);
        }
        json_decref(doc);
        free(url);
        url = next_link(r, &resp);
    }
    if (!tags)
        tags = ocra_xcalloc(1, sizeof(*tags));
    tags[n] = NULL;
    *tags_out = tags;
    *n_out = n;
    tags = NULL;
    ret = 0;
out:
    if (ret < 0)
        ocra_err_wrap(err, "%s", repo);
    for (size_t i = 0; tags && i < n; i++)
        free(tags[i]);
    free(tags);
    ocra_http_resp_fini(&resp);
    free(url);
    free(scope);
    return ret;
}
