/* SPDX-License-Identifier: Apache-2.0 */
/*
 * image_test: the parts of the image module that need no registry: WWW-Authenticate parsing,
 * names, deterministic layers (identical bytes on two runs, fixed gzip header, digest and
 * diff_id), manifest parsing and building, image configs over a base.
 */
#include "image/image.h"
#include "ocra_test.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>
#include <zlib.h>

static void
test_challenge_parse_cases(void)
{
    static const struct {
        const char *in;
        int ok;
        enum ocra_image_auth_scheme scheme;
        const char *realm, *service, *scope;
    } cases[] = {
        {"Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
         "scope=\"repository:samalba/my-app:pull,push\"",
         1, OCRA_IMAGE_AUTH_BEARER, "https://auth.docker.io/token", "registry.docker.io",
         "repository:samalba/my-app:pull,push"},
        {"Basic realm=\"Registry Realm\"", 1, OCRA_IMAGE_AUTH_BASIC, "Registry Realm", NULL, NULL},
        {"bearer  REALM = \"http://127.0.0.1:1/t?x=1\" , service=svc", 1, OCRA_IMAGE_AUTH_BEARER,
         "http://127.0.0.1:1/t?x=1", "svc", NULL},
        {"Negotiate abc, Bearer realm=\"https://a/t\",error=\"insufficient_scope\"", 1,
         OCRA_IMAGE_AUTH_BEARER, "https://a/t", NULL, NULL},
        {"Basic realm=\"a \\\"quoted\\\" realm\"", 1, OCRA_IMAGE_AUTH_BASIC, "a \"quoted\" realm",
         NULL, NULL},
        {"Bearer realm=\"https://a/t", 0, 0, NULL, NULL, NULL},          /* unterminated */
        {"Bearer service=\"x\"", 0, 0, NULL, NULL, NULL},                /* no realm */
        {"Bearer realm=\"file:///etc/passwd\"", 0, 0, NULL, NULL, NULL}, /* not http(s) */
        {"Bearer realm=\"https://a\",realm=\"https://b\"", 0, 0, NULL, NULL, NULL},
        {"Bearer realm=\"https://a\r\nX: y\"", 0, 0, NULL, NULL, NULL},
        {"Digest realm=\"x\"", 0, 0, NULL, NULL, NULL},
        {"", 0, 0, NULL, NULL, NULL},
        {"Bearer realm=", 0, 0, NULL, NULL, NULL},
    };

    for (size_t i = 0; i < OCRA_ARRAY_LEN(cases); i++) {
        struct ocra_image_challenge c = {0};
        struct ocra_err err = {0};
        int rc = ocra_image_challenge_parse(cases[i].in, strlen(cases[i].in), &c, &err);

        if ((rc == 0) != cases[i].ok)
            fprintf(stderr, "  case %zu: rc %d (%s)\n", i, rc, err.msg);
        CHECK_INT(rc == 0, cases[i].ok);
        if (rc == 0) {
            CHECK_INT(c.scheme, cases[i].scheme);
            CHECK_STR(c.realm, cases[i].realm);
            CHECK(cases[i].service ? c.service && !strcmp(c.service, cases[i].service)
                                   : !c.service);
            CHECK(cases[i].scope ? c.scope && !strcmp(c.scope, cases[i].scope) : !c.scope);
        } else {
            CHECK_INT(err.code, EPROTO);
        }
        ocra_image_challenge_fini(&c);
    }
}

static void
test_names(void)
{
    CHECK(ocra_image_repo_valid("ocra/model-x"));
    CHECK(ocra_image_repo_valid("a__b/c.d/e---f"));
    CHECK(!ocra_image_repo_valid("Ocra/x"));
    CHECK(!ocra_image_repo_valid("a/../b"));
    CHECK(!ocra_image_repo_valid("a//b"));
    CHECK(!ocra_image_repo_valid("a_-b"));
    CHECK(!ocra_image_repo_valid("a?b"));
    CHECK(ocra_image_ref_valid("1.2.0"));
    CHECK(ocra_image_ref_valid("evt-0123456789ab"));
    CHECK(!ocra_image_ref_valid("-x"));
    CHECK(!ocra_image_ref_valid("a/b"));
    CHECK(ocra_image_digest_valid(
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    CHECK(!ocra_image_digest_valid(
        "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"));
}

static char dir[] = "/tmp/image-test-XXXXXX";

static char *
write_file(const char *name, const char *data, unsigned mode)
{
    char *p = ocra_xasprintf("%s/%s", dir, name);
    struct ocra_err err = {0};

    CHECK_INT(ocra_file_write_atomic(p, data, strlen(data), mode, &err), 0);
    return p;
}

/* A layer into memory (through a temp file); returns its bytes. */
static char *
layer(const struct ocra_image_layer_entry *e, size_t n, bool gzip, struct ocra_image_layer *out,
      size_t *len)
{
    struct ocra_err err = {0};
    int fd = open(dir, O_TMPFILE | O_RDWR, 0600);
    char *buf;

    if (ocra_image_layer_write(e, n, 1700000000, gzip, fd, out, &err) < 0)
        fprintf(stderr, "  %s\n", err.msg);
    *len = (size_t)lseek(fd, 0, SEEK_END);
    buf = ocra_xmalloc(*len + 1);
    CHECK_INT(pread(fd, buf, *len, 0), *len);
    close(fd);
    return buf;
}

static void
test_layer_is_deterministic(void)
{
    char *a = write_file("a", "alpha\n", 0600), *b = write_file("b", "beta beta\n", 0777);
    struct ocra_image_layer_entry e1[] = {{"opt/m/b.bin", b, 0444}, {"opt/m/a.bin", a, 0644}};
    struct ocra_image_layer_entry e2[] = {{"opt/m/a.bin", a, 0644}, {"opt/m/b.bin", b, 0444}};
    struct ocra_image_layer l1, l2, g1;
    size_t n1, n2, ng;
    char *t1 = layer(e1, 2, false, &l1, &n1), *t2, *gz;
    char digest[OCRA_IMAGE_DIGEST_MAX];

    utimes(a, NULL); /* a later mtime on the source changes nothing */
    t2 = layer(e2, 2, false, &l2, &n2);
    CHECK(n1 == n2 && memcmp(t1, t2, n1) == 0);
    CHECK_STR(l1.desc.digest, l2.desc.digest);
    CHECK_STR(l1.desc.digest, l1.diff_id); /* uncompressed: digest is diff_id */
    ocra_image_digest_of(t1, n1, digest);
    CHECK_STR(l1.desc.digest, digest);
    CHECK_INT(l1.desc.size, n1);
    CHECK_STR(l1.desc.media_type, OCRA_IMAGE_MT_OCI_LAYER);
    /* sorted, parents first, uid 0, fixed mtime (octal 14524770400 = 1700000000) */
    CHECK(memcmp(t1, "opt/", 4) == 0);
    CHECK(memmem(t1, n1, "opt/m/a.bin", 11) < memmem(t1, n1, "opt/m/b.bin", 11));
    CHECK(memmem(t1, n1, "14524770400", 11) != NULL);
    gz = layer(e1, 2, true, &g1, &ng);
    CHECK_STR(g1.diff_id, l1.diff_id);
    CHECK(strcmp(g1.desc.digest, g1.diff_id) != 0);
    CHECK(memcmp(gz, "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff", 10) == 0);
    {
        uLongf out_len = (uLongf)n1 + 16;
        char *out = ocra_xmalloc(out_len);
        z_stream z = {0};

        inflateInit2(&z, 16 + 15);
        z.next_in = (Bytef *)gz;
        z.avail_in = (uInt)ng;
        z.next_out = (Bytef *)out;
        z.avail_out = (uInt)out_len;
        CHECK_INT(inflate(&z, Z_FINISH), Z_STREAM_END);
        CHECK(z.total_out == n1 && memcmp(out, t1, n1) == 0);
        inflateEnd(&z);
        free(out);
    }
    free(t1), free(t2), free(gz), free(a), free(b);
}

static void
test_layer_rejects_bad_entries(void)
{
    char *a = write_file("c", "x", 0600);
    const struct ocra_image_layer_entry bad[][2] = {
        {{"/abs", a, 0644}, {"x", a, 0644}}, {{"a/../b", a, 0644}, {"x", a, 0644}},
        {{"a//b", a, 0644}, {"x", a, 0644}}, {{"dup", a, 0644}, {"dup", a, 0644}},
        {{"d/f", a, 0644}, {"d", a, 0644}},  {{"x", "/nonexistent/f", 0644}, {"y", a, 0644}},
        {{"x", a, 010000}, {"y", a, 0644}},
    };

    for (size_t i = 0; i < OCRA_ARRAY_LEN(bad); i++) {
        struct ocra_image_layer l;
        struct ocra_err err = {0};
        int fd = open(dir, O_TMPFILE | O_RDWR, 0600);

        CHECK_INT(ocra_image_layer_write(bad[i], 2, 0, false, fd, &l, &err), -1);
        CHECK(err.code != 0);
        close(fd);
    }
    free(a);
}

/* A file of n pseudo-random bytes (xorshift from seed) in dir. */
static char *
random_file(const char *name, size_t n, uint32_t seed)
{
    char *p = ocra_xasprintf("%s/%s", dir, name), *data = ocra_xmalloc(n + 1);
    struct ocra_err err = {0};

    for (size_t i = 0; i < n; i++) {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        data[i] = (char)(seed & 0xff);
    }
    CHECK_INT(ocra_file_write_atomic(p, data, n, 0644, &err), 0);
    free(data);
    return p;
}

/* All of a streamed layer, read in pieces of step bytes (across its runs). */
static char *
stream_bytes(struct ocra_image_layer_stream *s, size_t step, size_t *len)
{
    size_t size = (size_t)ocra_image_layer_stream_size(s), off = 0;
    char *buf = ocra_xmalloc(size + step);
    ssize_t got;

    while ((got = ocra_image_layer_stream_read(s, buf + off, step, off)) > 0)
        off += (size_t)got;
    CHECK_INT(got, 0);
    *len = off;
    return buf;
}

/* The streamed layer of entries has the bytes of the written one (plain tar), read in one
 * pass or at any offset. */
static void
check_stream_is_written(const struct ocra_image_layer_entry *e, size_t n, const char *what)
{
    struct ocra_err err = {0};
    struct ocra_image_layer l;
    struct ocra_image_layer_stream *s = ocra_image_layer_stream_new(e, n, 1700000000, &err);
    size_t wn = 0, sn = 0;
    char *w = layer(e, n, false, &l, &wn), *got, piece[3000];
    int bad = ocra_test_failed;

    CHECK(s != NULL);
    if (!s) {
        fprintf(stderr, "  %s: %s\n", what, err.msg);
        free(w);
        return;
    }
    got = stream_bytes(s, 4097, &sn);
    CHECK_INT(ocra_image_layer_stream_size(s), wn);
    CHECK(sn == wn && memcmp(got, w, wn) == 0);
    for (size_t k = 0; k < 4; k++) { /* reads that start anywhere, across runs */
        size_t off = wn * k / 4 + k * 509, want = off < wn ? wn - off : 0;

        want = want < sizeof(piece) ? want : sizeof(piece);
        CHECK_INT(ocra_image_layer_stream_read(s, piece, sizeof(piece), off), want);
        CHECK(memcmp(piece, w + off, want) == 0);
    }
    CHECK_INT(ocra_image_layer_stream_read(s, piece, sizeof(piece), wn), 0);
    if (ocra_test_failed && !bad)
        fprintf(stderr, "  %s: streamed %zu bytes, written %zu\n", what, sn, wn);
    ocra_image_layer_stream_free(s);
    free(w);
    free(got);
}

static void
test_layer_stream_is_the_written_layer(void)
{
    /* around 512 (a tar block), and where the tar ends on and past a 10240-byte record: the
     * headers of opt/, opt/ocra/, opt/ocra/model/ and the file (2048) + data + 1024 */
    static const size_t sizes[] = {0,    1,     511,   512,   513,   7167,           7168,    7169,
                                   8192, 10240, 17408, 17409, 65537, (1u << 20) + 7, 3u << 20};
    char *a = write_file("sa", "alpha\n", 0600), *empty = write_file("se", "", 0600);
    char *b = random_file("sb", 70001, 7), *long_name = ocra_xasprintf("opt/m/%0150d.bin", 7);
    const struct ocra_image_layer_entry many[] = {
        {"opt/m/b.bin", b, 0444},
        {long_name, a, 0600}, /* a pax header for the long name */
        {"opt/empty", empty, 0644},
        {"srv/data", NULL, 0750},
        {"opt/m/c.bin", a, 04755}};

    for (size_t i = 0; i < OCRA_ARRAY_LEN(sizes); i++) {
        char *f = random_file("w.bin", sizes[i], (uint32_t)i + 1), what[64];
        const struct ocra_image_layer_entry e = {"opt/ocra/model/w.bin", f, 0644};

        snprintf(what, sizeof(what), "one file of %zu bytes", sizes[i]);
        check_stream_is_written(&e, 1, what);
        free(f);
    }
    check_stream_is_written(many, OCRA_ARRAY_LEN(many), "files, a long name, a directory");
    free(a), free(empty), free(b), free(long_name);
}

/* A source that shrinks after the stream was made fails the read (EIO), never pads it. */
static void
test_layer_stream_source_shrinks(void)
{
    char *f = random_file("shrinks.bin", 100000, 9);
    const struct ocra_image_layer_entry e = {"opt/w.bin", f, 0644};
    struct ocra_err err = {0};
    struct ocra_image_layer_stream *s = ocra_image_layer_stream_new(&e, 1, 0, &err);
    char buf[4096];

    CHECK(s != NULL);
    CHECK_INT(truncate(f, 50000), 0);
    errno = 0;
    CHECK_INT(ocra_image_layer_stream_read(s, buf, sizeof(buf), 1024 + 60000), -1);
    CHECK_INT(errno, EIO);
    CHECK_INT(ocra_image_layer_stream_read(s, buf, sizeof(buf), 0), sizeof(buf)); /* headers */
    ocra_image_layer_stream_free(s);
    CHECK(ocra_image_layer_stream_new(&(struct ocra_image_layer_entry){"x", "/nonexistent", 0644},
                                      1, 0, &err) == NULL);
    CHECK_INT(err.code, ENOENT);
    free(f);
}

/* The digest of a streamed layer, read through in 1 MiB pieces, into out (64 hex). */
static void
stream_digest(struct ocra_image_layer_stream *s, char out[65])
{
    struct ocra_sha256_ctx *md = ocra_sha256_begin();
    char *buf = ocra_xmalloc(1u << 20);
    uint8_t d[OCRA_SHA256_LEN];
    uint64_t off = 0;
    ssize_t got;

    while ((got = ocra_image_layer_stream_read(s, buf, 1u << 20, off)) > 0) {
        ocra_sha256_update(md, buf, (size_t)got);
        off += (uint64_t)got;
    }
    ocra_sha256_end(md, d);
    ocra_hex_encode(d, sizeof(d), out);
    free(buf);
}

/*
 * Over 8 GiB the ustar size field cannot hold the size: a pax record does. A sparse file (no
 * disk) of 8 GiB + 1 byte ending in 'x': the pax record, the file's bytes where the headers
 * end, the end blocks and the padding to 10240 bytes after them. With OCRA_TEST_BIG=1 also
 * byte for byte against the written layer (both read 8 GiB: a minute on a busy machine).
 */
static void
test_layer_stream_over_8_gib(void)
{
    const uint64_t size = (UINT64_C(8) << 30) + 1;
    char *f = ocra_xasprintf("%s/big.bin", dir), *buf = ocra_xmalloc(1u << 16);
    const struct ocra_image_layer_entry e = {"opt/ocra/model/big.bin", f, 0644};
    struct ocra_image_layer_stream *s = NULL;
    struct ocra_err err = {0};
    int fd = open(f, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    uint64_t total, data_off;
    const char *pax;

    CHECK(fd >= 0 && pwrite(fd, "x", 1, (off_t)size - 1) == 1);
    close(fd);
    s = ocra_image_layer_stream_new(&e, 1, 1700000000, &err);
    CHECK(s != NULL);
    if (!s)
        goto out;
    /* opt/, opt/ocra/, opt/ocra/model/, the pax header and its record, the file's header */
    data_off = 6 * 512;
    total = ocra_image_layer_stream_size(s);
    CHECK_INT(total, (data_off + (size + 511) / 512 * 512 + 1024 + 10239) / 10240 * 10240);
    CHECK_INT(ocra_image_layer_stream_read(s, buf, data_off, 0), data_off);
    pax = memmem(buf, data_off, "size=8589934593\n", 16);
    CHECK(pax != NULL && (pax - buf) / 512 == 4); /* the record, after the pax header */
    CHECK(memmem(buf, data_off, "big.bin", 7) != NULL);
    CHECK_INT(ocra_image_layer_stream_read(s, buf, 2, data_off + size - 1), 2);
    CHECK(buf[0] == 'x' && buf[1] == 0);
    CHECK_INT(ocra_image_layer_stream_read(s, buf, 1u << 16, total - 1024), 1024);
    CHECK(buf[0] == 0 && memcmp(buf, buf + 1, 1023) == 0);
    if (getenv("OCRA_TEST_BIG")) {
        struct ocra_image_layer l;
        int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
        char digest[65];

        CHECK_INT(ocra_image_layer_write(&e, 1, 1700000000, false, null, &l, &err), 0);
        close(null);
        CHECK_INT(total, l.desc.size);
        stream_digest(s, digest);
        CHECK_STR(l.desc.digest + 7, digest);
    }
out:
    ocra_image_layer_stream_free(s);
    unlink(f);
    free(f);
    free(buf);
}

/* A docker-archive: the new layers as written, the config, and manifest.json naming the
 * base's layers (not in the archive) before them, in the config's order. */
static void
test_docker_archive_layout(void)
{
    static const char config[] =
        "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\","
        "\"diff_ids\":[\"sha256:aa\",\"sha256:bb\",\"sha256:cc\"]}}";
    static const char manifest[] = "[{\"Config\":\"config.json\",\"Layers\":[\"base/0/layer.tar\","
                                   "\"base/1/layer.tar\",\"layers/0/layer.tar\"],\"RepoTags\":[]}]";
    char *layer = ocra_xmalloc(70000), *tar;
    const struct ocra_image_src src = {.mem = layer, .fd = -1, .size = 70000};
    struct ocra_image_docker_archive *x;
    struct ocra_err err = {0};
    int fd = open(dir, O_TMPFILE | O_RDWR, 0600);
    size_t len;

    memset(layer, 'L', 70000);
    x = ocra_image_docker_archive_new(fd, &err);
    CHECK(x != NULL);
    CHECK_INT(ocra_image_docker_archive_layer(x, &src, &err), 0);
    CHECK_INT(ocra_image_docker_archive_end(x, config, strlen(config), &err), 0);
    ocra_image_docker_archive_free(x);
    len = (size_t)lseek(fd, 0, SEEK_END);
    tar = ocra_xmalloc(len);
    CHECK_INT(pread(fd, tar, len, 0), len);
    CHECK(len % 512 == 0 && memcmp(tar, "layers/0/layer.tar", 19) == 0);
    CHECK(memcmp(tar + 512, layer, 70000) == 0); /* the layer's bytes, as they were read */
    CHECK(memmem(tar, len, config, strlen(config)) != NULL);
    CHECK(memmem(tar, len, manifest, strlen(manifest)) != NULL);
    close(fd);

    /* a config with fewer layers than the archive holds: refused, the archive cut short */
    fd = open(dir, O_TMPFILE | O_RDWR, 0600);
    x = ocra_image_docker_archive_new(fd, &err);
    CHECK_INT(ocra_image_docker_archive_layer(x, &src, &err), 0);
    CHECK_INT(ocra_image_docker_archive_end(x, "{\"rootfs\":{\"diff_ids\":[]}}", 26, &err), -1);
    CHECK(strstr(err.msg, "the config has 0 layers, the archive 1") != NULL);
    CHECK_INT(err.code, EINVAL);
    ocra_image_docker_archive_free(x);
    close(fd);
    free(layer);
    free(tar);
}

static void
test_manifest_roundtrip_and_rejects(void)
{
    struct ocra_image_desc cfg = {OCRA_IMAGE_MT_OCI_CONFIG, "", 7};
    struct ocra_image_desc ls[1] = {{OCRA_IMAGE_MT_OCI_LAYER_GZIP, "", 42}};
    json_t *ann = json_pack("{s:s}", "io.ocra.event-id", "ain:0:0x1:0");
    struct ocra_image_manifest m = {0};
    struct ocra_err err = {0};
    char *doc;

    ocra_image_digest_of("config!", 7, cfg.digest);
    ocra_image_digest_of("layer", 5, ls[0].digest);
    doc = ocra_image_manifest_build(&cfg, ls, 1, ann, &err);
    CHECK(doc && strncmp(doc, "{\"annotations\":", 15) == 0); /* canonical: keys sorted */
    CHECK_INT(ocra_image_manifest_parse(doc, strlen(doc), OCRA_IMAGE_MT_OCI_MANIFEST, &m, &err), 0);
    CHECK_INT(m.n_layers, 1);
    CHECK_STR(m.layers[0].digest, ls[0].digest);
    CHECK_INT(m.config.size, 7);
    CHECK_STR(json_string_value(json_object_get(m.annotations, "io.ocra.event-id")), "ain:0:0x1:0");
    ocra_image_manifest_fini(&m);
    CHECK_INT(ocra_image_manifest_parse(doc, strlen(doc), OCRA_IMAGE_MT_DOCKER_MANIFEST, &m, &err),
              -1); /* Content-Type disagrees */
    free(doc);
    {
        static const char *bad[] = {
            "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
            "\"manifests\":[]}",
            "{\"schemaVersion\":1}",
            "[]",
            "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a/b\",\"digest\":\"sha256:00\","
            "\"size\":1},\"layers\":[]}",
            "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a/b\",\"digest\":\"sha256:"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\",\"size\":-1},"
            "\"layers\":[]}",
        };
        for (size_t i = 0; i < OCRA_ARRAY_LEN(bad); i++) {
            CHECK_INT(ocra_image_manifest_parse(bad[i], strlen(bad[i]), NULL, &m, &err), -1);
            CHECK_INT(err.code, i == 0 ? ENOTSUP : EPROTO);
        }
    }
    json_decref(ann);
}

static void
test_config_over_base(void)
{
    json_t *base =
        json_pack("{s:s, s:s, s:{s:[s, s], s:{s:s}}, s:{s:s, s:[s]}, s:[{s:s}], s:{}}",
                  "architecture", "arm64", "os", "linux", "config", "Env", "PATH=/usr/bin",
                  "LANG=C", "Labels", "base", "yes", "rootfs", "type", "layers", "diff_ids",
                  "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                  "history", "created_by", "debootstrap", "container_config");
    const char *env[] = {"PATH=/opt/bin:/usr/bin", "MODEL=/m", NULL};
    const char *ids[] = {"sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
                         NULL};
    json_t *labels = json_pack("{s:s}", "io.ocra.spec-hash", "abc");
    struct ocra_image_config_spec s = {
        .base = base, .created = 0, .env = env, .labels = labels, .diff_ids = ids};
    struct ocra_err err = {0};
    char *c1 = ocra_image_config_build(&s, &err), *c2 = ocra_image_config_build(&s, &err);
    json_t *j = c1 ? ocra_json_parse(c1, strlen(c1), 0, &err) : NULL;

    CHECK(c1 && c2 && strcmp(c1, c2) == 0);
    CHECK_STR(ocra_json_str(j, "architecture"), "arm64");
    CHECK_STR(ocra_json_str(j, "created"), "1970-01-01T00:00:00Z");
    CHECK(!json_object_get(j, "container_config"));
    CHECK_INT(json_array_size(json_object_get(json_object_get(j, "config"), "Env")), 3);
    CHECK_STR(
        json_string_value(json_array_get(json_object_get(json_object_get(j, "config"), "Env"), 0)),
        "PATH=/opt/bin:/usr/bin");
    CHECK_INT(json_array_size(json_object_get(json_object_get(j, "rootfs"), "diff_ids")), 2);
    CHECK_INT(json_array_size(json_object_get(j, "history")), 2);
    CHECK_INT(json_object_size(json_object_get(json_object_get(j, "config"), "Labels")), 2);
    json_decref(j);
    free(c1), free(c2);
    ids[0] = "sha256:nothex";
    CHECK(ocra_image_config_build(&s, &err) == NULL && err.code == EINVAL);
    json_decref(base);
    json_decref(labels);
}

static void
test_setup(void)
{
    CHECK(mkdtemp(dir) != NULL);
}

static void
test_teardown(void)
{
    static const char *const names[] = {"a", "b", "c", "sa", "sb", "se", "w.bin", "shrinks.bin"};

    for (size_t i = 0; i < OCRA_ARRAY_LEN(names); i++) {
        char *p = ocra_xasprintf("%s/%s", dir, names[i]);

        unlink(p);
        free(p);
    }
    CHECK_INT(rmdir(dir), 0);
}

/* ---- signing --------------------------------------------------------------------------- */

#define SIGN_HEX "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SIGN_DIGEST "sha256:" SIGN_HEX
#define SIGN_REF "127.0.0.1:5000/ocra/model"

static void
test_sig_payload_is_cosign_simple_signing(void)
{
    static const char want[] =
        "{\"critical\":{\"identity\":{\"docker-reference\":\"" SIGN_REF "\"},\"image\":{"
        "\"docker-manifest-digest\":\"" SIGN_DIGEST "\"},\"type\":\"cosign container image "
        "signature\"},\"optional\":null}";
    static const char *const bad[] = {
        "{\"critical\":{\"identity\":{\"docker-reference\":\"" SIGN_REF "\"},\"image\":{"
        "\"docker-manifest-digest\":\"" SIGN_DIGEST "\"},\"type\":\"atomic container signature\"}}",
        "{\"critical\":{\"identity\":{\"docker-reference\":\"127.0.0.1:5000/ocra/other\"},\"image\""
        ":{\"docker-manifest-digest\":\"" SIGN_DIGEST "\"},\"type\":\"cosign container image "
        "signature\"}}",
        "{\"critical\":{\"identity\":{\"docker-reference\":\"" SIGN_REF "\"},\"image\":{"
        "\"docker-manifest-digest\":\"sha256:00\"},\"type\":\"cosign container image signature\"}}",
    };
    char tag[OCRA_IMAGE_SIG_TAG_MAX], *p;
    json_t *opt = json_pack("{s:s}", "io.ocra.event-id", "ain:0:0xabc:0");
    struct ocra_err err = {0};

    ocra_image_sig_tag(SIGN_DIGEST, tag);
    CHECK_STR(tag, "sha256-" SIGN_HEX ".sig");
    p = ocra_image_sig_payload(SIGN_REF, SIGN_DIGEST, NULL, &err);
    CHECK_STR(p, want); /* byte for byte what cosign's json.Marshal writes */
    CHECK_INT(ocra_image_sig_payload_check(p, strlen(p), SIGN_REF, SIGN_DIGEST, &err), 0);
    CHECK_INT(
        ocra_image_sig_payload_check(p, strlen(p), "127.0.0.1:5001/ocra/model", SIGN_DIGEST, &err),
        -1);
    CHECK_INT(err.code, EACCES);
    free(p);
    p = ocra_image_sig_payload(SIGN_REF, SIGN_DIGEST, opt, &err);
    CHECK(p && strstr(p, ",\"optional\":{\"io.ocra.event-id\":\"ain:0:0xabc:0\"}}"));
    CHECK_INT(ocra_image_sig_payload_check(p, strlen(p), SIGN_REF, SIGN_DIGEST, &err), 0);
    free(p);
    for (size_t i = 0; i < OCRA_ARRAY_LEN(bad); i++) {
        err.code = 0;
        CHECK_INT(ocra_image_sig_payload_check(bad[i], strlen(bad[i]), SIGN_REF, SIGN_DIGEST, &err),
                  -1);
        CHECK_INT(err.code, EACCES);
    }
    CHECK_INT(ocra_image_sig_payload_check("{\"critical\":1}", 14, SIGN_REF, SIGN_DIGEST, &err),
              -1);
    CHECK_INT(err.code, EPROTO);
    CHECK_INT(ocra_image_sig_payload_check("{", 1, SIGN_REF, SIGN_DIGEST, &err), -1);
    CHECK_INT(err.code, EPROTO);
    CHECK(ocra_image_sig_payload("model", SIGN_DIGEST, NULL, &err) == NULL); /* no host */
    CHECK(ocra_image_sig_payload(SIGN_REF, "sha256:abc", NULL, &err) == NULL);
    CHECK_INT(err.code, EINVAL);
    json_decref(opt);
}

/* A fresh key pair in d as name.key/name.pub; the private key loaded into *priv. */
static void
keypair(const char *d, const char *name, struct ocra_image_key **priv, struct ocra_image_key **pub)
{
    char *k = ocra_xasprintf("%s/%s.key", d, name), *p = ocra_xasprintf("%s/%s.pub", d, name);
    struct ocra_err err = {0};

    CHECK_INT(ocra_image_key_generate(k, p, &err), 0);
    *priv = ocra_image_key_load_private(k, &err);
    *pub = ocra_image_key_load_public(p, &err);
    CHECK(*priv && *pub);
    free(k);
    free(p);
}

static void
test_sign_verify_round_trip(void)
{
    char d[] = "/tmp/image-sign-XXXXXX", *sig = NULL, *bad = NULL, *path;
    struct ocra_image_key *k1 = NULL, *p1 = NULL, *k2 = NULL, *p2 = NULL;
    const char *msg = "{\"critical\":{}}";
    struct ocra_err err = {0};

    CHECK(mkdtemp(d) != NULL);
    keypair(d, "a", &k1, &p1);
    keypair(d, "b", &k2, &p2);
    sig = ocra_image_key_sign(k1, msg, strlen(msg), &err);
    CHECK(sig != NULL);
    CHECK_INT(ocra_image_key_verify(p1, msg, strlen(msg), sig, &err), 0);
    CHECK_INT(ocra_image_key_verify(p1, msg, strlen(msg) - 1, sig, &err), -1); /* other data */
    CHECK_INT(err.code, EACCES);
    CHECK_INT(ocra_image_key_verify(p2, msg, strlen(msg), sig, &err), -1); /* other key */
    CHECK_INT(err.code, EACCES);
    bad = ocra_xstrdup(sig);
    bad[10] = bad[10] == 'A' ? 'B' : 'A';
    CHECK_INT(ocra_image_key_verify(p1, msg, strlen(msg), bad, &err), -1); /* flipped */
    CHECK_INT(err.code, EACCES);
    CHECK_INT(ocra_image_key_verify(p1, msg, strlen(msg), "not base64!", &err), -1);
    CHECK_INT(ocra_image_key_verify(p1, msg, strlen(msg), "", &err), -1);
    CHECK(ocra_image_key_sign(p1, msg, strlen(msg), &err) == NULL); /* a public key */
    CHECK_INT(err.code, EINVAL);
    path = ocra_xasprintf("%s/a.key", d);
    chmod(path, 0640);
    CHECK(ocra_image_key_load_private(path, &err) == NULL); /* group-readable: refused */
    CHECK_INT(err.code, EACCES);
    free(path);
    path = ocra_xasprintf("%s/a.pub", d);
    chmod(path, 0600);
    CHECK(ocra_image_key_load_private(path, &err) == NULL); /* not a private key */
    CHECK_INT(err.code, EINVAL);
    for (const char *const *n = (const char *const[]){"a.key", "a.pub", "b.key", "b.pub", NULL}; *n;
         n++) {
        free(path);
        path = ocra_xasprintf("%s/%s", d, *n);
        unlink(path);
    }
    CHECK_INT(rmdir(d), 0);
    free(path);
    free(sig);
    free(bad);
    ocra_image_key_free(k1);
    ocra_image_key_free(p1);
    ocra_image_key_free(k2);
    ocra_image_key_free(p2);
}

/* The credentials a client holds can be handed to a Docker engine; none when anonymous. */
static void
test_registry_credentials(void)
{
    struct ocra_image_registry_opts o = {.url = "http://127.0.0.1:1",
                                         .username = "ocra",
                                         .password = "pa:ss",
                                         .docker_config = "/nonexistent/config.json"};
    struct ocra_image_registry *r;
    struct ocra_err err = {0};
    char *user = NULL, *pass = NULL;

    r = ocra_image_registry_new(&o, &err);
    CHECK(r != NULL);
    if (r) {
        CHECK_INT(ocra_image_registry_credentials(r, &user, &pass), 1);
        CHECK_STR(user, "ocra");
        CHECK_STR(pass, "pa:ss");
        free(user);
        free(pass);
    }
    ocra_image_registry_free(r);
    o.username = o.password = NULL;
    r = ocra_image_registry_new(&o, &err);
    CHECK(r != NULL && ocra_image_registry_credentials(r, &user, &pass) == 0);
    ocra_image_registry_free(r);
}

/* ---- engine stopped mid-build (begin) */
/* What the engine streams when it is stopped while a RUN step runs (dockerd SIGTERMed inside
 * `pip install`, tests/it_pipeline.sh section 7): the engine's message comes first, so the
 * cause survives the toolchain stage's context in a 256-byte error. A stream cut inside a
 * line is malformed, never a success. */
static void
test_progress_engine_stopped_mid_build(void)
{
    static const char run[] =
        "Step 3/14 : RUN [\"python3\", \"-m\", \"pip\", \"install\", \"--no-cache-dir\", "
        "\"--index-url\", \"http://127.0.0.1:46725/simple\", \"ocra-smoke==1.0.1\"]";
    static const char cmd[] = "The command 'python3 -m pip install --no-cache-dir --index-url "
                              "http://127.0.0.1:46725/simple ocra-smoke==1.0.1' returned a "
                              "non-zero code: 137";
    struct ocra_image_docker_progress *p = ocra_image_docker_progress_new(0);
    struct ocra_err err = {0};
    char *stream = ocra_xasprintf(
        "{\"stream\":\"Step 2/14 : ENV PIP_BREAK_SYSTEM_PACKAGES=\\\"1\\\"\\n\"}\r\n"
        "{\"stream\":\"%s\\n\"}\r\n{\"stream\":\" ---\\u003e Running in 6010e86ad928\\n\"}\r\n"
        "{\"stream\":\"Collecting ocra-smoke==1.0.1\\n\"}\r\n"
        "{\"errorDetail\":{\"code\":137,\"message\":\"%s\"},\"error\":\"%s\"}\r\n",
        "Step 3/14 : RUN [\\\"python3\\\", \\\"-m\\\", \\\"pip\\\", \\\"install\\\", "
        "\\\"--no-cache-dir\\\", \\\"--index-url\\\", \\\"http://127.0.0.1:46725/simple\\\", "
        "\\\"ocra-smoke==1.0.1\\\"]",
        cmd, cmd);

    CHECK_INT(ocra_image_docker_progress_feed(p, stream, strlen(stream), &err), 0);
    CHECK_INT(ocra_image_docker_progress_end(p, &err), -1);
    CHECK_INT(err.code, EIO);
    CHECK(strncmp(err.msg, cmd, strlen(cmd)) == 0);
    CHECK(strstr(err.msg, "non-zero code: 137 (Step 3/14 : RUN [") != NULL);
    CHECK_STR(ocra_image_docker_progress_step(p), run);
    CHECK(ocra_image_docker_progress_id(p) == NULL);
    ocra_err_wrap(&err, "docker build");
    ocra_err_wrap(&err, "toolchain 127.0.0.1:23986/ocra/pipe/engine-model-toolchain:dae64a832faf");
    CHECK(strstr(err.msg, "returned a non-zero code: 137") != NULL);
    ocra_image_docker_progress_free(p);

    p = ocra_image_docker_progress_new(0);
    CHECK_INT(ocra_image_docker_progress_feed(p, stream, 60, &err), 0);
    CHECK_INT(ocra_image_docker_progress_end(p, &err), -1);
    CHECK_INT(err.code, EPROTO);
    ocra_image_docker_progress_free(p);
    free(stream);
}
/* ---- engine stopped mid-build (end) */

/* A pull's stream counts the layers the engine downloaded; a pull of an image the engine has
 * by its config digest (as loaded) downloads none. */
static void
test_progress_counts_layers_pulled(void)
{
    static const char pulled[] =
        "{\"status\":\"Pulling from ocra/m\",\"id\":\"sha256:5e1f\"}\r\n"
        "{\"status\":\"Already exists\",\"progressDetail\":{},\"id\":\"1b2c3d4e5f60\"}\r\n"
        "{\"status\":\"Pulling fs layer\",\"progressDetail\":{},\"id\":\"3b2c3d4e5f60\"}\r\n"
        "{\"status\":\"Pulling fs layer\",\"progressDetail\":{},\"id\":\"4b2c3d4e5f60\"}\r\n"
        "{\"status\":\"Downloading\",\"progressDetail\":{\"current\":1,\"total\":9},\"id\":"
        "\"3b2c3d4e5f60\"}\r\n"
        "{\"status\":\"Pull complete\",\"progressDetail\":{},\"id\":\"3b2c3d4e5f60\"}\r\n"
        "{\"status\":\"Pull complete\",\"progressDetail\":{},\"id\":\"4b2c3d4e5f60\"}\r\n"
        "{\"status\":\"Digest: sha256:2f7e\"}\r\n"
        "{\"status\":\"Status: Downloaded newer image for r/ocra/m@sha256:2f7e\"}\r\n";
    static const char loaded[] =
        "{\"status\":\"Pulling from ocra/m\",\"id\":\"sha256:5e1f\"}\r\n"
        "{\"status\":\"Digest: sha256:2f7e\"}\r\n"
        "{\"status\":\"Status: Downloaded newer image for r/ocra/m@sha256:2f7e\"}\r\n";
    const char *streams[] = {pulled, loaded};
    const int want[] = {2, 0};

    for (size_t i = 0; i < 2; i++) {
        struct ocra_image_docker_progress *p = ocra_image_docker_progress_new(0);
        struct ocra_err err = {0};

        CHECK_INT(ocra_image_docker_progress_feed(p, streams[i], strlen(streams[i]), &err), 0);
        CHECK_INT(ocra_image_docker_progress_end(p, &err), 0);
        CHECK_INT(ocra_image_docker_progress_pulled(p), want[i]);
        ocra_image_docker_progress_free(p);
    }
}

/* Engine endpoints: the three forms parse into their parts; what is not one is refused with a
 * message naming the URL and the form wanted. */
static void
test_docker_endpoint_parse(void)
{
    static const struct {
        const char *url;
        int scheme;
        const char *socket, *host, *user;
        long port;
    } good[] = {
        {"unix:///var/run/docker.sock", OCRA_IMAGE_DOCKER_UNIX, "/var/run/docker.sock", "", "", 0},
        {"tcp://10.213.0.2:2376", OCRA_IMAGE_DOCKER_TCP, "", "10.213.0.2", "", 2376},
        {"tcp://gpu-b.internal", OCRA_IMAGE_DOCKER_TCP, "", "gpu-b.internal", "", 2376},
        {"tcp://[fd00::2]:2377", OCRA_IMAGE_DOCKER_TCP, "", "fd00::2", "", 2377},
        {"ssh://ops@gpu-c", OCRA_IMAGE_DOCKER_SSH, "", "gpu-c", "ops", 22},
    };
    static const struct {
        const char *url, *says;
    } bad[] = {
        {"unix://run/docker.sock", "absolute path"},
        {"unix://", "absolute path"},
        {"http://h:2375", "scheme http is not an engine endpoint"},
        {"tcp://", "not an endpoint URL with a host"},
        {"tcp://h:0", "port must be 1..65535"},
        {"tcp://h:99999", "not an endpoint URL"},
        {"tcp://h:2376/v1.41", "path or query"},
        {"tcp://h:2376?x=1", "path or query"},
        {"tcp://u@h:2376", "user on tcp"},
        {"ssh://u:pw@h", "password"},
        {"gpu-b:2376", "not an endpoint URL"},
        {"", "not an endpoint URL"},
    };
    struct ocra_image_docker_endpoint ep;
    struct ocra_err err = {0};

    for (size_t i = 0; i < OCRA_ARRAY_LEN(good); i++) {
        CHECK_INT(ocra_image_docker_endpoint_parse(good[i].url, &ep, &err), 0);
        CHECK_INT((int)ep.scheme, good[i].scheme);
        CHECK_STR(ep.socket, good[i].socket);
        CHECK_STR(ep.host, good[i].host);
        CHECK_STR(ep.user, good[i].user);
        CHECK_INT(ep.port, good[i].port);
    }
    for (size_t i = 0; i < OCRA_ARRAY_LEN(bad); i++) {
        memset(&err, 0, sizeof(err));
        CHECK_INT(ocra_image_docker_endpoint_parse(bad[i].url, &ep, &err), -1);
        CHECK_INT(err.code, EINVAL);
        if (!strstr(err.msg, bad[i].says))
            CHECK_STR(err.msg, bad[i].says);
    }
}

/* tcp:// without its TLS files, and ssh://, are refused before any connection is made. */
static void
test_docker_endpoint_needs_tls(void)
{
    const struct ocra_image_docker_opts plain = {.host = "tcp://127.0.0.1:1"};
    const struct ocra_image_docker_opts ssh = {.host = "ssh://ops@127.0.0.1"};
    struct ocra_err err = {0};

    CHECK(!ocra_image_docker_new(&plain, &err));
    CHECK_INT(err.code, EINVAL);
    CHECK(strstr(err.msg, "TLS client certificates") != NULL);
    memset(&err, 0, sizeof(err));
    CHECK(!ocra_image_docker_new(&ssh, &err));
    CHECK_INT(err.code, ENOTSUP);
    CHECK(strstr(err.msg, "ssh -L") != NULL);
}

OCRA_TEST_MAIN(OCRA_TEST(test_setup), OCRA_TEST(test_challenge_parse_cases), OCRA_TEST(test_names),
               OCRA_TEST(test_layer_is_deterministic), OCRA_TEST(test_layer_rejects_bad_entries),
               OCRA_TEST(test_layer_stream_is_the_written_layer),
               OCRA_TEST(test_layer_stream_source_shrinks), OCRA_TEST(test_layer_stream_over_8_gib),
               OCRA_TEST(test_docker_archive_layout),
               OCRA_TEST(test_manifest_roundtrip_and_rejects), OCRA_TEST(test_config_over_base),
               OCRA_TEST(test_teardown), OCRA_TEST(test_sig_payload_is_cosign_simple_signing),
               OCRA_TEST(test_sign_verify_round_trip), OCRA_TEST(test_registry_credentials),
               OCRA_TEST(test_progress_engine_stopped_mid_build),
               OCRA_TEST(test_progress_counts_layers_pulled), OCRA_TEST(test_docker_endpoint_parse),
               OCRA_TEST(test_docker_endpoint_needs_tls))
