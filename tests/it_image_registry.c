/* SPDX-License-Identifier: Apache-2.0 */
/*
 * it_image_registry: the OCI distribution client and the deterministic image documents
 * against real docker-registry instances started by it_image_registry.sh: an anonymous one,
 * the same one behind tests/lib/regproxy.py (faults on demand), one with htpasswd basic auth
 * and one with token auth (tests/lib/token_server.py). Their URLs come from the environment;
 * a test whose registry is not there is skipped.
 */
#include "http/http.h"
#include "image/image.h"
#include "ocra_test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BLOB_SIZE (300u * 1024 + 17) /* not a multiple of the chunk size */
#define CHUNK (64u * 1024)

static char tmpdir[512]; /* under $OCRA_IT_TMP (the script removes it), else /tmp */

static struct ocra_image_registry *
client(const char *env, uint64_t chunk, const char *user, const char *pass)
{
    const char *url = getenv(env);
    struct ocra_image_registry_opts o = {.url = url,
                                         .chunk_size = chunk,
                                         .username = user,
                                         .password = pass,
                                         .backoff_ms = 10,
                                         .docker_config = "/nonexistent/config.json"};
    struct ocra_err err = {0};
    struct ocra_image_registry *r;

    if (!url)
        return NULL;
    r = ocra_image_registry_new(&o, &err);
    if (!r)
        fprintf(stderr, "  registry_new: %s\n", err.msg);
    return r;
}

/* Deterministic pseudo-random bytes (xorshift), so reruns push the same blobs. */
static char *
blob_make(size_t n, uint32_t seed)
{
    char *b = ocra_xmalloc(n);

    for (size_t i = 0; i < n; i++) {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        b[i] = (char)(seed & 0xff);
    }
    return b;
}

static char *
file_make(const char *name, const void *data, size_t n)
{
    char *path = ocra_xasprintf("%s/%s", tmpdir, name);
    struct ocra_err err = {0};

    if (ocra_file_write_atomic(path, data, n, 0644, &err) < 0)
        fprintf(stderr, "  %s\n", err.msg);
    return path;
}

/* The fault proxy's control and log endpoints. */
static char *
proxy_get(const char *path)
{
    char *url = ocra_xasprintf("%s%s", getenv("OCRA_REG_PROXY_URL"), path);
    struct ocra_http_req req = {.method = "GET", .url = url};
    struct ocra_http_resp resp = {0};
    struct ocra_err err = {0};
    char *body = NULL;

    if (ocra_http_do(&req, &resp, &err) == 0)
        body = resp.body;
    else
        fprintf(stderr, "  proxy %s: %s\n", path, err.msg);
    free(url);
    return body;
}

static void
test_ping_anonymous(void)
{
    struct ocra_image_registry *r = client("OCRA_REG_URL", 0, NULL, NULL);
    struct ocra_err err = {0};

    if (!r)
        OCRA_TEST_SKIP("no anonymous registry");
    CHECK_INT(ocra_image_registry_ping(r, &err), 0);
    ocra_image_registry_free(r);
}

/* Where push_and_check's bytes come from. */
enum src_kind { FROM_MEM, FROM_FILE, STREAMED };

/* A reader of memory at an offset, as a streamed layer is read: its digest is not given. */
static ssize_t
mem_read_at(void *arg, void *buf, size_t n, uint64_t off)
{
    const struct ocra_image_src *s = arg;

    if (off >= s->size)
        return 0;
    if (n > s->size - off)
        n = (size_t)(s->size - off);
    memcpy(buf, (const char *)s->mem + off, n);
    return (ssize_t)n;
}

/* Pushes a blob, then checks HEAD and a verified GET; returns 0 when all went right. */
static int
push_and_check(struct ocra_image_registry *r, const char *repo, const char *data, size_t n,
               enum src_kind kind)
{
    char digest[OCRA_IMAGE_DIGEST_MAX], got_digest[OCRA_IMAGE_DIGEST_MAX] = "", *path = NULL,
                                        *got = NULL;
    struct ocra_image_src src = {.mem = data, .fd = -1, .size = n}, mem = src;
    struct ocra_err err = {0};
    int64_t size = -1;
    size_t got_len = 0;
    int failed = 0, rc;

    ocra_image_digest_of(data, n, digest);
    if (kind == FROM_FILE) {
        path = file_make("blob.bin", data, n);
        src.mem = NULL;
        src.fd = open(path, O_RDONLY | O_CLOEXEC);
    } else if (kind == STREAMED) {
        src.mem = NULL;
        src.read = mem_read_at;
        src.read_arg = &mem;
    }
    CHECK_INT(ocra_image_blob_exists(r, repo, digest, NULL, &err), 0);
    rc = kind == STREAMED ? ocra_image_blob_push_stream(r, repo, &src, got_digest, &err)
                          : ocra_image_blob_push(r, repo, digest, &src, &err);
    if (rc < 0) {
        fprintf(stderr, "  push: %s\n", err.msg);
        failed = 1;
    }
    if (kind == STREAMED)
        CHECK_STR(got_digest, digest);
    CHECK_INT(ocra_image_blob_exists(r, repo, digest, &size, &err), 1);
    CHECK_INT(size, n);
    if (ocra_image_blob_get(r, repo, digest, n, &got, &got_len, &err) < 0) {
        fprintf(stderr, "  get: %s\n", err.msg);
        failed = 1;
    }
    CHECK(got && got_len == n && memcmp(got, data, n) == 0);
    ocra_fd_close(src.fd);
    free(path);
    free(got);
    return failed || ocra_test_failed ? -1 : 0;
}

static void
test_blob_push_monolithic_head_get(void)
{
    struct ocra_image_registry *r = client("OCRA_REG_URL", 0, NULL, NULL);
    char *data = blob_make(BLOB_SIZE, 1);

    if (!r)
        OCRA_TEST_SKIP("no anonymous registry");
    CHECK_INT(push_and_check(r, "ocra/mono", data, BLOB_SIZE, FROM_MEM), 0);
    ocra_image_registry_free(r);
    free(data);
}

static void
test_blob_push_chunked_from_file(void)
{
    struct ocra_image_registry *r = client("OCRA_REG_URL", CHUNK, NULL, NULL);
    char *data = blob_make(BLOB_SIZE, 2);

    if (!r)
        OCRA_TEST_SKIP("no anonymous registry");
    CHECK_INT(push_and_check(r, "ocra/chunked", data, BLOB_SIZE, FROM_FILE), 0);
    ocra_image_registry_free(r);
    free(data);
}

/* A blob whose digest is computed as it goes: one PATCH, or chunks, then the PUT names it. */
static void
test_blob_push_streamed(void)
{
    struct ocra_image_registry *r = client("OCRA_REG_URL", 0, NULL, NULL),
                               *rc = client("OCRA_REG_URL", CHUNK, NULL, NULL);
    char *data = blob_make(BLOB_SIZE, 3), *other = blob_make(BLOB_SIZE, 4);

    if (!r || !rc)
        OCRA_TEST_SKIP("no anonymous registry");
    CHECK_INT(push_and_check(r, "ocra/streamed", data, BLOB_SIZE, STREAMED), 0);
    CHECK_INT(push_and_check(rc, "ocra/streamed", other, BLOB_SIZE, STREAMED), 0);
    ocra_image_registry_free(r);
    ocra_image_registry_free(rc);
    free(data);
    free(other);
}

static void
test_blob_mount_into_other_repo(void)
{
    struct ocra_image_registry *r = client("OCRA_REG_URL", 0, NULL, NULL);
    char *data = blob_make(4096, 3), digest[OCRA_IMAGE_DIGEST_MAX], absent[OCRA_IMAGE_DIGEST_MAX];
    struct ocra_image_src src = {.mem = data, .fd = -1, .size = 4096};
    struct ocra_err err = {0};

    if (!r)
        OCRA_TEST_SKIP("no anonymous registry");
    ocra_image_digest_of(data, 4096, digest);
    ocra_image_digest_of("absent", 6, absent);
    CHECK_INT(ocra_image_blob_push(r, "ocra/mount-src", digest, &src, &err), 0);
    CHECK_INT(ocra_image_blob_exists(r, "ocra/mount-dst", digest, NULL, &err), 0);
    CHECK_INT(ocra_image_blob_mount(r, "ocra/mount-dst", digest, "ocra/mount-src", &err), 1);
    CHECK_INT(ocra_image_blob_exists(r, "ocra/mount-dst", digest, NULL, &err), 1);
    /* a blob the source does not have: the registry opens an upload instead, which is closed */
    CHECK_INT(ocra_image_blob_mount(r, "ocra/mount-dst", absent, "ocra/mount-src", &err), 0);
    CHECK_INT(ocra_image_blob_exists(r, "ocra/mount-dst", absent, NULL, &err), 0);
    ocra_image_registry_free(r);
    free(data);
}

/* ---- a whole image --------------------------------------------------------------------- */

struct image {
    struct ocra_image_layer layers[2];
    char *config;
    char *manifest;
    char digest[OCRA_IMAGE_DIGEST_MAX];
    char *layer_path[2];
};

static void
image_fini(struct image *im)
{
    free(im->config);
    free(im->manifest);
    for (int i = 0; i < 2; i++) {
        if (im->layer_path[i])
            unlink(im->layer_path[i]);
        free(im->layer_path[i]);
    }
}

/* Two layers (weights uncompressed, an agent gzip), a config and a manifest from fixed inputs
 * placed under `sub` (a different directory each time, so paths on this machine do not leak). */
static int
image_build(const char *sub, struct image *im)
{
    char *w = blob_make(200000, 7), *dir = ocra_xasprintf("%s/%s", tmpdir, sub);
    char *wpath = ocra_xasprintf("%s/w.safetensors", dir), *apath = ocra_xasprintf("%s/agent", dir);
    struct ocra_err err = {0};
    int ret = -1;

    mkdir(dir, 0755);
    ocra_file_write_atomic(wpath, w, 200000, 0600, &err);
    ocra_file_write_atomic(apath, "#!/bin/sh\necho ocra-agent 0.1\n", 30, 0700, &err);
    {
        struct ocra_image_layer_entry weights[] = {{"opt/model/w.safetensors", wpath, 0444}};
        struct ocra_image_layer_entry agent[] = {{"usr/local/bin/ocra-agent", apath, 0755}};
        const struct ocra_image_layer_entry *ents[] = {weights, agent};

        for (int i = 0; i < 2; i++) {
            int fd;

            im->layer_path[i] = ocra_xasprintf("%s/layer%d", dir, i);
            fd = open(im->layer_path[i], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            if (ocra_image_layer_write(ents[i], 1, 1700000000, i == 1, fd, &im->layers[i], &err) <
                0)
                fprintf(stderr, "  layer: %s\n", err.msg);
            close(fd);
        }
    }
    {
        const char *ids[] = {im->layers[0].diff_id, im->layers[1].diff_id, NULL};
        const char *env[] = {"OCRA_MODEL=/opt/model/w.safetensors", NULL};
        const char *cmd[] = {"/usr/local/bin/ocra-agent", NULL};
        json_t *labels = json_pack("{s:s}", "io.ocra.event-id", "ain:0:0xabc:0");
        json_t *ann = json_pack("{s:s}", "org.opencontainers.image.version", "1.2.0");
        struct ocra_image_config_spec spec = {
            .created = 1700000000, .env = env, .cmd = cmd, .labels = labels, .diff_ids = ids};
        struct ocra_image_desc cfg = {.media_type = OCRA_IMAGE_MT_OCI_CONFIG};
        struct ocra_image_desc descs[2] = {im->layers[0].desc, im->layers[1].desc};

        im->config = ocra_image_config_build(&spec, &err);
        if (im->config) {
            ocra_image_digest_of(im->config, strlen(im->config), cfg.digest);
            cfg.size = (int64_t)strlen(im->config);
            im->manifest = ocra_image_manifest_build(&cfg, descs, 2, ann, &err);
        }
        if (im->manifest) {
            ocra_image_digest_of(im->manifest, strlen(im->manifest), im->digest);
            ret = 0;
        } else {
            fprintf(stderr, "  image: %s\n", err.msg);
        }
        json_decref(labels);
        json_decref(ann);
    }
    free(w);
    free(dir);
    free(wpath);
    free(apath);
    return ret;
}

static int
image_push(struct ocra_image_registry *r, const char *repo, struct image *im, char *digest)
{
    struct ocra_image_src cfg = {.mem = im->config, .fd = -1, .size = strlen(im->config)};
    char cfg_digest[OCRA_IMAGE_DIGEST_MAX];
    struct ocra_err err = {0};
    int ret = 0;

    ocra_image_digest_of(im->config, strlen(im->config), cfg_digest);
    for (int i = 0; i < 2 && ret == 0; i++) {
        struct ocra_image_src src = {.fd = open(im->layer_path[i], O_RDONLY | O_CLOEXEC),
                                     .size = (uint64_t)im->layers[i].desc.size};

        ret = ocra_image_blob_push(r, repo, im->layers[i].desc.digest, &src, &err);
        close(src.fd);
    }
    if (ret == 0)
        ret = ocra_image_blob_push(r, repo, cfg_digest, &cfg, &err);
    if (ret == 0)
        ret = ocra_image_manifest_put(r, repo, "1.2.0", OCRA_IMAGE_MT_OCI_MANIFEST, im->manifest,
                                      strlen(im->manifest), digest, &err);
    if (ret < 0)
        fprintf(stderr, "  push image: %s\n", err.msg);
    return ret;
}

/* GETs the manifest back by tag and digest, parses it, fetches every blob verified. */
static void
image_check(struct ocra_image_registry *r, const char *repo, const struct image *im)
{
    char *data = NULL, mt[OCRA_IMAGE_MEDIA_TYPE_MAX] = "", dg[OCRA_IMAGE_DIGEST_MAX] = "";
    struct ocra_image_manifest m = {0};
    struct ocra_err err = {0};
    size_t len = 0;

    CHECK_INT(ocra_image_manifest_get(r, repo, "1.2.0", &data, &len, mt, dg, &err), 0);
    CHECK_STR(dg, im->digest);
    CHECK_STR(mt, OCRA_IMAGE_MT_OCI_MANIFEST);
    CHECK(data && strcmp(data, im->manifest) == 0);
    CHECK_INT(ocra_image_manifest_parse(data, len, mt, &m, &err), 0);
    CHECK_INT(m.n_layers, 2);
    for (size_t i = 0; i < m.n_layers && i < 2; i++) {
        int fd = open(tmpdir, O_TMPFILE | O_RDWR, 0600);

        CHECK_STR(m.layers[i].digest, im->layers[i].desc.digest);
        CHECK_INT(ocra_image_blob_fetch(r, repo, m.layers[i].digest, fd, &err), 0);
        CHECK_INT(lseek(fd, 0, SEEK_END), im->layers[i].desc.size);
        close(fd);
    }
    free(data);
    data = NULL;
    CHECK_INT(ocra_image_manifest_get(r, repo, im->digest, &data, &len, NULL, NULL, &err), 0);
    CHECK_INT(ocra_image_manifest_head(r, repo, "1.2.0", dg, &err), 1);
    CHECK_STR(dg, im->digest);
    CHECK_INT(ocra_image_manifest_head(r, repo, "absent", dg, &err), 0);
    ocra_image_manifest_fini(&m);
    free(data);
}

static void
test_image_push_get_verify(void)
{
    struct ocra_image_registry *r = client("OCRA_REG_URL", 0, NULL, NULL);
    struct image im = {0};
    char digest[OCRA_IMAGE_DIGEST_MAX] = "";

    if (!r)
        OCRA_TEST_SKIP("no anonymous registry");
    CHECK_INT(image_build("a", &im), 0);
    CHECK_INT(image_push(r, "ocra/model", &im, digest), 0);
    CHECK_STR(digest, im.digest);
    image_check(r, "ocra/model", &im);
    image_fini(&im);
    ocra_image_registry_free(r);
}

/* The tag list follows the registry's pages (docker-registry pages when n is given). */
static void
test_tags_list_pages(void)
{
    struct ocra_image_registry *r = client("OCRA_REG_URL", 0, NULL, NULL);
    struct image im = {0};
    char digest[OCRA_IMAGE_DIGEST_MAX] = "", tag[32];
    struct ocra_err err = {0};
    char **tags = NULL;
    size_t n = 0;
    int bad = 0;

    if (!r)
        OCRA_TEST_SKIP("no anonymous registry");
    CHECK_INT(ocra_image_tags_list(r, "ocra/no-such-repo", &tags, &n, &err), 0);
    CHECK_INT(n, 0);
    CHECK(tags && !tags[0]);
    free(tags);
    CHECK_INT(image_build("t", &im), 0);
    CHECK_INT(image_push(r, "ocra/tags", &im, digest), 0);
    for (int i = 0; i < 104; i++) { /* 1.2.0 and these: 105 tags, two pages of 100 */
        snprintf(tag, sizeof(tag), "v%03d", i);
        bad |= ocra_image_manifest_put(r, "ocra/tags", tag, OCRA_IMAGE_MT_OCI_MANIFEST, im.manifest,
                                       strlen(im.manifest), NULL, &err);
    }
    CHECK_INT(bad, 0);
    CHECK_INT(ocra_image_tags_list(r, "ocra/tags", &tags, &n, &err), 0);
    CHECK_INT(n, 105);
    /* every tag once (the registry's order is its own) */
    for (size_t i = 0; tags && i < n; i++) {
        int want = strcmp(tags[i], "1.2.0") == 0 ? 1 : 0;

        for (size_t j = 0; j < n; j++)
            if (j != i && strcmp(tags[i], tags[j]) == 0)
                bad = 1;
        if (!want && (strncmp(tags[i], "v", 1) != 0 || strlen(tags[i]) != 4))
            bad = 1;
    }
    CHECK_INT(bad, 0);
    CHECK(tags && tags[n] == NULL);
    for (size_t i = 0; tags && i < n; i++)
        free(tags[i]);
    free(tags);
    image_fini(&im);
    ocra_image_registry_free(r);
}

static void
test_same_inputs_same_manifest_digest(void)
{
    struct ocra_image_registry *r = client("OCRA_REG_URL", 0, NULL, NULL);
    struct image a = {0}, b = {0};
    char da[OCRA_IMAGE_DIGEST_MAX] = "", db[OCRA_IMAGE_DIGEST_MAX] = "";

    if (!r)
        OCRA_TEST_SKIP("no anonymous registry");
    CHECK_INT(image_build("b1", &a), 0);
    CHECK_INT(image_build("b2", &b), 0);
    CHECK_STR(a.digest, b.digest);
    CHECK_STR(a.layers[1].desc.digest, b.layers[1].desc.digest);
    CHECK_INT(image_push(r, "ocra/same-1", &a, da), 0);
    CHECK_INT(image_push(r, "ocra/same-2", &b, db), 0);
    CHECK_STR(da, db);
    image_fini(&a);
    image_fini(&b);
    ocra_image_registry_free(r);
}

/* ---- faults through the proxy ---------------------------------------------------------- */

/* The proxy log lines after the armed fault fired (`action`), in order. */
static void
push_through_fault_from(enum src_kind kind, const char *fault, uint64_t chunk, uint32_t seed,
                        char **log_out)
{
    struct ocra_image_registry *r = client("OCRA_REG_PROXY_URL", chunk, NULL, NULL);
    char *data = blob_make(BLOB_SIZE, seed), *path;

    *log_out = NULL;
    if (!r)
        return;
    free(proxy_get("/_log/clear"));
    path = ocra_xasprintf("/_fault/%s", fault);
    free(proxy_get(path));
    CHECK_INT(push_and_check(r, "ocra/faults", data, BLOB_SIZE, kind), 0);
    *log_out = proxy_get("/_log");
    free(path);
    free(data);
    ocra_image_registry_free(r);
}

static void
push_through_fault(const char *fault, uint64_t chunk, uint32_t seed, char **log_out)
{
    push_through_fault_from(FROM_FILE, fault, chunk, seed, log_out);
}

/* The start offset of a log line's range ("PATCH /v2/x 65536-131071 relay"), or -1. */
static long long
line_start(const char *line)
{
    char method[16], path[512];
    long long start = -1, end = -1;

    if (!line || sscanf(line, "%15s %511s %lld-%lld", method, path, &start, &end) != 4)
        return -1;
    return start;
}

/* After the faulted PATCH at offset N > 0: a GET on the upload URL, then a PATCH from N. */
static void
check_resumed(const char *log, const char *fault)
{
    const char *f = log ? strstr(log, fault) : NULL, *line, *get, *next;

    CHECK(f != NULL);
    if (!f)
        return;
    for (line = f; line > log && line[-1] != '\n'; line--)
        ;
    get = strstr(f, "\nGET /v2/ocra/faults/blobs/uploads/");
    next = get ? strstr(get + 1, "\nPATCH ") : NULL;
    CHECK(get != NULL && next != NULL);
    CHECK(line_start(line) > 0);
    CHECK_INT(line_start(next ? next + 1 : NULL), line_start(line));
}

static void
test_chunked_push_resumes_after_503(void)
{
    char *log = NULL;

    if (!getenv("OCRA_REG_PROXY_URL"))
        OCRA_TEST_SKIP("no fault proxy");
    push_through_fault("503-patch@2", CHUNK, 11, &log);
    check_resumed(log, "503-patch");
    if (ocra_test_failed && log)
        fprintf(stderr, "%s", log);
    free(log);
}

static void
test_chunked_push_resumes_after_reset(void)
{
    char *log = NULL;

    if (!getenv("OCRA_REG_PROXY_URL"))
        OCRA_TEST_SKIP("no fault proxy");
    push_through_fault("reset-patch@2", CHUNK, 12, &log);
    check_resumed(log, "reset-patch");
    if (ocra_test_failed && log)
        fprintf(stderr, "%s", log);
    free(log);
}

static void
test_chunked_push_survives_cut_forwarded_patch(void)
{
    char *log = NULL;

    if (!getenv("OCRA_REG_PROXY_URL"))
        OCRA_TEST_SKIP("no fault proxy");
    /* half a chunk reached the registry: it resumes if the registry kept a consistent offset,
     * else it starts over; either way the stored blob must be the right one */
    push_through_fault("cut-patch@2", CHUNK, 13, &log);
    CHECK(log && strstr(log, "cut-patch"));
    free(log);
}

static void
test_monolithic_push_recovers_from_503_on_put(void)
{
    char *log = NULL;

    if (!getenv("OCRA_REG_PROXY_URL"))
        OCRA_TEST_SKIP("no fault proxy");
    push_through_fault("503-put", 0, 14, &log);
    CHECK(log && strstr(log, "503-put"));
    free(log);
}

/* A streamed upload resumed from the registry's offset, or started over, hashes the bytes
 * sent again once: the PUT names the digest of the blob (push_and_check compares it). */
static void
test_streamed_push_resumes_after_faults(void)
{
    static const struct {
        const char *fault;
        uint64_t chunk;
    } cases[] = {{"reset-patch@2", CHUNK}, {"503-patch@2", CHUNK}, {"cut-patch@2", CHUNK},
                 {"reset-patch", 0},       {"cut-patch", 0},       {"503-put", 0}};

    if (!getenv("OCRA_REG_PROXY_URL"))
        OCRA_TEST_SKIP("no fault proxy");
    for (size_t i = 0; i < OCRA_ARRAY_LEN(cases); i++) {
        char *log = NULL, *kind = ocra_xstrndup(cases[i].fault, strcspn(cases[i].fault, "@"));

        push_through_fault_from(STREAMED, cases[i].fault, cases[i].chunk, (uint32_t)(20 + i), &log);
        CHECK(log && strstr(log, kind));
        if (i < 2)
            check_resumed(log, kind);
        if (ocra_test_failed && log)
            fprintf(stderr, "  case %s:\n%s", cases[i].fault, log);
        free(log);
        free(kind);
    }
}

static void
test_corrupted_blob_is_rejected(void)
{
    struct ocra_image_registry *r = client("OCRA_REG_PROXY_URL", 0, NULL, NULL);
    char *data = blob_make(5000, 15), digest[OCRA_IMAGE_DIGEST_MAX], *got = NULL;
    struct ocra_image_src src = {.mem = data, .fd = -1, .size = 5000};
    struct ocra_err err = {0};

    if (!r)
        OCRA_TEST_SKIP("no fault proxy");
    ocra_image_digest_of(data, 5000, digest);
    CHECK_INT(ocra_image_blob_push(r, "ocra/flip", digest, &src, &err), 0);
    free(proxy_get("/_fault/flip-get"));
    CHECK_INT(ocra_image_blob_get(r, "ocra/flip", digest, 5000, &got, NULL, &err), -1);
    CHECK_INT(err.code, EPROTO);
    CHECK(got == NULL);
    ocra_image_registry_free(r);
    free(data);
}

/* ---- auth ------------------------------------------------------------------------------ */

static void
auth_round_trip(const char *env, struct ocra_image_registry *r)
{
    char *data = blob_make(70000, 21);
    struct ocra_err err = {0};

    CHECK_INT(ocra_image_registry_ping(r, &err), 0);
    CHECK_INT(push_and_check(r, "ocra/authed", data, 70000, FROM_MEM), 0);
    CHECK_INT(
        ocra_image_blob_mount(r, "ocra/authed-2",
                              "sha256:"
                              "0000000000000000000000000000000000000000000000000000000000000000",
                              "ocra/authed", &err),
        0);
    (void)env;
    free(data);
}

static void
expect_denied(const char *env, const char *user, const char *pass)
{
    struct ocra_image_registry *r = client(env, 0, user, pass);
    struct ocra_err err = {0};

    CHECK_INT(ocra_image_registry_ping(r, &err), -1);
    CHECK_INT(err.code, EACCES);
    CHECK(!strstr(err.msg, "s3cret")); /* a password never reaches a message */
    ocra_image_registry_free(r);
}

static void
test_basic_auth(void)
{
    struct ocra_image_registry *r = client("OCRA_REG_BASIC_URL", CHUNK, "ocra", "s3cret-pw");

    if (!r)
        OCRA_TEST_SKIP("no basic-auth registry");
    auth_round_trip("OCRA_REG_BASIC_URL", r);
    ocra_image_registry_free(r);
    expect_denied("OCRA_REG_BASIC_URL", NULL, NULL);
    expect_denied("OCRA_REG_BASIC_URL", "ocra", "wrong-s3cret");
}

static void
test_basic_auth_from_docker_config_and_file(void)
{
    const char *url = getenv("OCRA_REG_BASIC_URL");
    char *cfg = NULL, *cfgpath = NULL, *credpath = NULL;
    struct ocra_err err = {0};
    struct ocra_image_registry *r;

    if (!url)
        OCRA_TEST_SKIP("no basic-auth registry");
    /* base64("ocra:s3cret-pw") */
    cfg = ocra_xasprintf("{\"auths\":{\"other:1\":{\"auth\":\"eDp5\"},\"%s\":{\"auth\":"
                         "\"b2NyYTpzM2NyZXQtcHc=\"}}}",
                         url + 7);
    cfgpath = file_make("config.json", cfg, strlen(cfg));
    r = ocra_image_registry_new(
        &(struct ocra_image_registry_opts){.url = url, .docker_config = cfgpath}, &err);
    CHECK(r != NULL);
    CHECK_INT(ocra_image_registry_ping(r, &err), 0);
    ocra_image_registry_free(r);
    credpath = file_make("creds", "ocra:s3cret-pw\n", 15);
    chmod(credpath, 0644);
    r = ocra_image_registry_new(
        &(struct ocra_image_registry_opts){.url = url, .credentials_file = credpath}, &err);
    CHECK(r == NULL && err.code == EACCES); /* readable by others: refused */
    chmod(credpath, 0600);
    r = ocra_image_registry_new(
        &(struct ocra_image_registry_opts){.url = url, .credentials_file = credpath}, &err);
    CHECK(r != NULL);
    CHECK_INT(ocra_image_registry_ping(r, &err), 0);
    ocra_image_registry_free(r);
    free(cfg);
    free(cfgpath);
    free(credpath);
}

static void
test_token_auth(void)
{
    struct ocra_image_registry *r = client("OCRA_REG_TOKEN_URL", CHUNK, "ocra", "s3cret-pw");
    struct image im = {0};
    char digest[OCRA_IMAGE_DIGEST_MAX] = "";

    if (!r)
        OCRA_TEST_SKIP("no token-auth registry");
    auth_round_trip("OCRA_REG_TOKEN_URL", r);
    CHECK_INT(image_build("t", &im), 0);
    CHECK_INT(image_push(r, "ocra/token-model", &im, digest), 0);
    image_check(r, "ocra/token-model", &im);
    image_fini(&im);
    ocra_image_registry_free(r);
    expect_denied("OCRA_REG_TOKEN_URL", NULL, NULL);
    expect_denied("OCRA_REG_TOKEN_URL", "ocra", "wrong-s3cret");
}

static void
test_setup(void)
{
    const char *base = getenv("OCRA_IT_TMP");

    snprintf(tmpdir, sizeof(tmpdir), "%s/it-image-XXXXXX", base ? base : "/tmp");
    CHECK(mkdtemp(tmpdir) != NULL);
}

OCRA_TEST_MAIN(OCRA_TEST(test_setup), OCRA_TEST(test_ping_anonymous),
               OCRA_TEST(test_blob_push_monolithic_head_get),
               OCRA_TEST(test_blob_push_chunked_from_file), OCRA_TEST(test_blob_push_streamed),
               OCRA_TEST(test_blob_mount_into_other_repo), OCRA_TEST(test_image_push_get_verify),
               OCRA_TEST(test_tags_list_pages), OCRA_TEST(test_same_inputs_same_manifest_digest),
               OCRA_TEST(test_chunked_push_resumes_after_503),
               OCRA_TEST(test_chunked_push_resumes_after_reset),
               OCRA_TEST(test_chunked_push_survives_cut_forwarded_patch),
               OCRA_TEST(test_monolithic_push_recovers_from_503_on_put),
               OCRA_TEST(test_streamed_push_resumes_after_faults),
               OCRA_TEST(test_corrupted_blob_is_rejected), OCRA_TEST(test_basic_auth),
               OCRA_TEST(test_basic_auth_from_docker_config_and_file), OCRA_TEST(test_token_auth))
