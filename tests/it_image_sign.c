/* SPDX-License-Identifier: Apache-2.0 */
/*
 * it_image_sign: signing and `ocra_image_verify` against a real docker-registry started by
 * it_image_sign.sh, with P-256 keys the script made with the openssl CLI. A small image
 * (config + one deterministic layer) is pushed, signed and verified; then each way it can go
 * wrong: a tag moved to another manifest, a manifest or layer changed in the registry's storage
 * on disk, a layer descriptor with a wrong size, a signature by another key, a flipped
 * signature, a signature copied from another image, no signature, a wrong annotation.
 */
#include "image/image.h"
#include "ocra_test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[512];

struct pushed {
    char digest[OCRA_IMAGE_DIGEST_MAX];
    struct ocra_image_layer layer;
};

static struct ocra_image_registry *
client(void)
{
    struct ocra_image_registry_opts o = {.url = getenv("OCRA_REG_URL"),
                                         .backoff_ms = 10,
                                         .docker_config = "/nonexistent/config.json"};
    struct ocra_err err = {0};
    struct ocra_image_registry *r;

    if (!o.url)
        return NULL;
    r = ocra_image_registry_new(&o, &err);
    if (!r)
        fprintf(stderr, "  registry_new: %s\n", err.msg);
    return r;
}

static struct ocra_image_key *
key(const char *env, bool private)
{
    const char *path = getenv(env);
    struct ocra_err err = {0};
    struct ocra_image_key *k;

    if (!path)
        return NULL;
    k = private ? ocra_image_key_load_private(path, &err) : ocra_image_key_load_public(path, &err);
    if (!k)
        fprintf(stderr, "  key %s: %s\n", path, err.msg);
    return k;
}

/* A one-layer image whose layer holds `seed`-made bytes, annotated with event id `event`,
 * its layer descriptor's size off by size_delta; pushed under repo:tag. 0 on success. */
static int
image_push(struct ocra_image_registry *r, const char *repo, const char *tag, uint32_t seed,
           const char *event, int64_t size_delta, struct pushed *out)
{
    char *src = ocra_xasprintf("%s/w-%u", tmpdir, seed), *lpath = ocra_xasprintf("%s.tar", src);
    char data[4096], *cfg = NULL, *man = NULL;
    struct ocra_image_layer_entry ent = {"opt/model/w.bin", src, 0444};
    const char *ids[2] = {NULL, NULL};
    json_t *ann = json_pack("{s:s, s:s}", "io.ocra.event-id", event,
                            "org.opencontainers.image.version", "1.2.0");
    struct ocra_image_config_spec spec = {.created = 1700000000, .diff_ids = ids};
    struct ocra_image_desc cd = {.media_type = OCRA_IMAGE_MT_OCI_CONFIG}, ld;
    struct ocra_image_src ls = {.fd = -1}, cs = {.fd = -1};
    struct ocra_err err = {0};
    int ret = -1;

    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (char)((seed * 2654435761u + i * 40503u) >> 7);
    ocra_file_write_atomic(src, data, sizeof(data), 0644, &err);
    ls.fd = open(lpath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (ocra_image_layer_write(&ent, 1, 1700000000, false, ls.fd, &out->layer, &err) < 0)
        goto out;
    ids[0] = out->layer.diff_id;
    if (!(cfg = ocra_image_config_build(&spec, &err)))
        goto out;
    ocra_image_digest_of(cfg, strlen(cfg), cd.digest);
    cd.size = (int64_t)strlen(cfg);
    ld = out->layer.desc;
    ld.size += size_delta;
    if (!(man = ocra_image_manifest_build(&cd, &ld, 1, ann, &err)))
        goto out;
    ls.size = (uint64_t)out->layer.desc.size;
    cs.mem = cfg;
    cs.size = strlen(cfg);
    if (ocra_image_blob_push(r, repo, out->layer.desc.digest, &ls, &err) < 0 ||
        ocra_image_blob_push(r, repo, cd.digest, &cs, &err) < 0 ||
        ocra_image_manifest_put(r, repo, tag, OCRA_IMAGE_MT_OCI_MANIFEST, man, strlen(man),
                                out->digest, &err) < 0)
        goto out;
    ret = 0;
out:
    if (ret < 0)
        fprintf(stderr, "  push %s: %s\n", repo, err.msg);
    ocra_fd_close(ls.fd);
    unlink(lpath);
    unlink(src);
    free(src);
    free(lpath);
    free(cfg);
    free(man);
    json_decref(ann);
    return ret;
}

static int
sign(struct ocra_image_registry *r, const char *repo, const char *digest, const char *key_env)
{
    struct ocra_image_key *k = key(key_env, true);
    struct ocra_err err = {0};
    int ret = ocra_image_sign(r, repo, digest, k, NULL, NULL, &err);

    if (ret < 0)
        fprintf(stderr, "  sign: %s\n", err.msg);
    ocra_image_key_free(k);
    return ret;
}

/* ocra_image_verify with key1's public key; the errno (0 when verified) and the message. */
static int
verify(struct ocra_image_registry *r, const char *repo, const char *ref, const char *event,
       const char *pub_env, char *msg, size_t msgsz)
{
    struct ocra_image_key *pub = key(pub_env ? pub_env : "OCRA_SIGN_PUB", false);
    json_t *exp = event ? json_pack("{s:s}", "io.ocra.event-id", event) : NULL;
    char digest[OCRA_IMAGE_DIGEST_MAX];
    struct ocra_err err = {0};
    int ret = ocra_image_verify(r, repo, ref, pub, exp, digest, &err);

    snprintf(msg, msgsz, "%s", ret < 0 ? err.msg : "");
    if (ret < 0)
        fprintf(stderr, "  (expected or not) %s\n", err.msg);
    ocra_image_key_free(pub);
    json_decref(exp);
    return ret < 0 ? err.code : 0;
}

/* Path of a blob (or manifest) in the registry's filesystem storage. */
static char *
blob_path(const char *digest)
{
    return ocra_xasprintf("%s/docker/registry/v2/blobs/sha256/%.2s/%s/data",
                          getenv("OCRA_REG_DATA"), digest + 7, digest + 7);
}

/* Rewrites a stored blob with `from` replaced by `to` (same length) or its first byte flipped. */
static int
tamper_at_rest(const char *digest, const char *from, const char *to)
{
    char *path = blob_path(digest), *data = NULL, *hit;
    struct ocra_err err = {0};
    size_t len = 0;
    int ret = -1;

    if (ocra_file_read(path, 1u << 20, &data, &len, &err) < 0) {
        fprintf(stderr, "  %s\n", err.msg);
        goto out;
    }
    if (from && (hit = strstr(data, from)))
        memcpy(hit, to, strlen(to));
    else if (!from)
        data[len - 1] ^= 1;
    else
        goto out;
    ret = ocra_file_write_atomic(path, data, len, 0644, &err);
out:
    free(path);
    free(data);
    return ret;
}

#define NEED_REGISTRY(r)                                                                           \
    do {                                                                                           \
        if (!(r) || !getenv("OCRA_SIGN_KEY"))                                                      \
            OCRA_TEST_SKIP("no registry or keys");                                                 \
    } while (0)

static void
test_signed_image_verifies_by_digest_and_tag(void)
{
    struct ocra_image_registry *r = client();
    char tag[OCRA_IMAGE_SIG_TAG_MAX], mt[OCRA_IMAGE_MEDIA_TYPE_MAX], msg[OCRA_ERR_MAX],
        *data = NULL;
    struct ocra_image_manifest m = {0};
    struct ocra_err err = {0};
    struct pushed p;
    size_t len = 0;

    NEED_REGISTRY(r);
    CHECK_INT(image_push(r, "ocra/signed", "1.2.0", 1, "ain:0:0xabc:0", 0, &p), 0);
    CHECK_INT(sign(r, "ocra/signed", p.digest, "OCRA_SIGN_KEY"), 0);
    CHECK_INT(verify(r, "ocra/signed", p.digest, "ain:0:0xabc:0", NULL, msg, sizeof(msg)), 0);
    CHECK_INT(verify(r, "ocra/signed", "1.2.0", NULL, NULL, msg, sizeof(msg)), 0);
    /* the signature manifest as cosign lays it out */
    ocra_image_sig_tag(p.digest, tag);
    CHECK_INT(ocra_image_manifest_get(r, "ocra/signed", tag, &data, &len, mt, NULL, &err), 0);
    CHECK_INT(ocra_image_manifest_parse(data, len, mt, &m, &err), 0);
    CHECK_STR(mt, OCRA_IMAGE_MT_OCI_MANIFEST);
    CHECK_STR(m.config.media_type, OCRA_IMAGE_MT_OCI_CONFIG);
    CHECK_INT(m.n_layers, 1);
    CHECK(m.n_layers == 1 && strcmp(m.layers[0].media_type, OCRA_IMAGE_MT_COSIGN_PAYLOAD) == 0);
    CHECK(data && strstr(data, "\"annotations\":{\"" OCRA_IMAGE_ANN_COSIGN_SIGNATURE "\":\""));
    /* the script cross-checks the signature with the openssl CLI */
    if (getenv("OCRA_IT_TMP")) {
        char *f = ocra_xasprintf("%s/signed.digest", getenv("OCRA_IT_TMP"));

        ocra_file_write_atomic(f, p.digest, strlen(p.digest), 0644, &err);
        free(f);
    }
    ocra_image_manifest_fini(&m);
    free(data);
    ocra_image_registry_free(r);
}

static void
test_unsigned_image_fails(void)
{
    struct ocra_image_registry *r = client();
    struct pushed p;
    char msg[OCRA_ERR_MAX];

    NEED_REGISTRY(r);
    CHECK_INT(image_push(r, "ocra/unsigned", "1", 2, "ain:0:0x2:0", 0, &p), 0);
    CHECK_INT(verify(r, "ocra/unsigned", p.digest, NULL, NULL, msg, sizeof(msg)), EACCES);
    CHECK(strstr(msg, "not signed") != NULL);
    ocra_image_registry_free(r);
}

static void
test_moved_tag_fails_and_signed_digest_still_verifies(void)
{
    struct ocra_image_registry *r = client();
    struct pushed a, b;
    char msg[OCRA_ERR_MAX];

    NEED_REGISTRY(r);
    CHECK_INT(image_push(r, "ocra/retag", "1.2.0", 3, "ain:0:0x3:0", 0, &a), 0);
    CHECK_INT(sign(r, "ocra/retag", a.digest, "OCRA_SIGN_KEY"), 0);
    CHECK_INT(image_push(r, "ocra/retag", "1.2.0", 4, "ain:0:0x3:0", 0, &b), 0);
    CHECK_INT(verify(r, "ocra/retag", "1.2.0", NULL, NULL, msg, sizeof(msg)), EACCES);
    CHECK_INT(verify(r, "ocra/retag", a.digest, "ain:0:0x3:0", NULL, msg, sizeof(msg)), 0);
    ocra_image_registry_free(r);
}

static void
test_wrong_annotation_fails(void)
{
    struct ocra_image_registry *r = client();
    struct pushed p;
    char msg[OCRA_ERR_MAX];

    NEED_REGISTRY(r);
    CHECK_INT(image_push(r, "ocra/ann", "1", 5, "ain:0:0x5:0", 0, &p), 0);
    CHECK_INT(sign(r, "ocra/ann", p.digest, "OCRA_SIGN_KEY"), 0);
    CHECK_INT(verify(r, "ocra/ann", p.digest, "ain:0:0x6:0", NULL, msg, sizeof(msg)), EACCES);
    CHECK(strstr(msg, "annotation io.ocra.event-id") != NULL);
    ocra_image_registry_free(r);
}

static void
test_other_key_fails(void)
{
    struct ocra_image_registry *r = client();
    struct pushed p;
    char msg[OCRA_ERR_MAX];

    NEED_REGISTRY(r);
    CHECK_INT(image_push(r, "ocra/otherkey", "1", 7, "ain:0:0x7:0", 0, &p), 0);
    CHECK_INT(sign(r, "ocra/otherkey", p.digest, "OCRA_SIGN_KEY2"), 0);
    CHECK_INT(verify(r, "ocra/otherkey", p.digest, NULL, NULL, msg, sizeof(msg)), EACCES);
    CHECK(strstr(msg, "does not verify") != NULL);
    CHECK_INT(verify(r, "ocra/otherkey", p.digest, NULL, "OCRA_SIGN_PUB2", msg, sizeof(msg)), 0);
    ocra_image_registry_free(r);
}

/* Rewrites the signature manifest of digest in repo through edit(); PUTs it back. */
static void
sig_rewrite(struct ocra_image_registry *r, const char *repo, const char *digest,
            const char *to_tag_digest, void (*edit)(json_t *doc))
{
    char tag[OCRA_IMAGE_SIG_TAG_MAX], *data = NULL, *out = NULL;
    struct ocra_err err = {0};
    json_t *doc = NULL;
    size_t len = 0;

    ocra_image_sig_tag(digest, tag);
    CHECK_INT(ocra_image_manifest_get(r, repo, tag, &data, &len, NULL, NULL, &err), 0);
    doc = data ? ocra_json_parse(data, len, 0, &err) : NULL;
    CHECK(doc != NULL);
    if (doc && edit)
        edit(doc);
    out = doc ? ocra_json_canonical(doc) : NULL;
    ocra_image_sig_tag(to_tag_digest, tag);
    CHECK(out && ocra_image_manifest_put(r, repo, tag, OCRA_IMAGE_MT_OCI_MANIFEST, out, strlen(out),
                                         NULL, &err) == 0);
    json_decref(doc);
    free(data);
    free(out);
}

static void
flip_signature(json_t *doc)
{
    json_t *ann = json_object_get(json_array_get(json_object_get(doc, "layers"), 0), "annotations");
    char *s = ocra_xstrdup(ocra_json_str(ann, OCRA_IMAGE_ANN_COSIGN_SIGNATURE));

    s[20] = s[20] == 'Q' ? 'R' : 'Q';
    json_object_set_new(ann, OCRA_IMAGE_ANN_COSIGN_SIGNATURE, json_string(s));
    free(s);
}

static void
test_flipped_signature_fails(void)
{
    struct ocra_image_registry *r = client();
    struct pushed p;
    char msg[OCRA_ERR_MAX];

    NEED_REGISTRY(r);
    CHECK_INT(image_push(r, "ocra/flipsig", "1", 8, "ain:0:0x8:0", 0, &p), 0);
    CHECK_INT(sign(r, "ocra/flipsig", p.digest, "OCRA_SIGN_KEY"), 0);
    sig_rewrite(r, "ocra/flipsig", p.digest, p.digest, flip_signature);
    CHECK_INT(verify(r, "ocra/flipsig", p.digest, NULL, NULL, msg, sizeof(msg)), EACCES);
    ocra_image_registry_free(r);
}

static void
test_signature_copied_from_other_image_fails(void)
{
    struct ocra_image_registry *r = client();
    struct pushed a, b;
    char msg[OCRA_ERR_MAX];

    NEED_REGISTRY(r);
    CHECK_INT(image_push(r, "ocra/replay", "a", 9, "ain:0:0x9:0", 0, &a), 0);
    CHECK_INT(image_push(r, "ocra/replay", "b", 10, "ain:0:0xa:0", 0, &b), 0);
    CHECK_INT(sign(r, "ocra/replay", a.digest, "OCRA_SIGN_KEY"), 0);
    sig_rewrite(r, "ocra/replay", a.digest, b.digest, NULL); /* a's valid signature, b's tag */
    CHECK_INT(verify(r, "ocra/replay", b.digest, NULL, NULL, msg, sizeof(msg)), EACCES);
    CHECK(strstr(msg, "docker-manifest-digest") != NULL);
    ocra_image_registry_free(r);
}

static void
test_layer_with_wrong_size_fails(void)
{
    struct ocra_image_registry *r = client();
    struct pushed p;
    char msg[OCRA_ERR_MAX];

    NEED_REGISTRY(r);
    /* the descriptor names the right blob with one byte less: signed as it is */
    if (image_push(r, "ocra/size", "1", 11, "ain:0:0xb:0", -1, &p) < 0)
        OCRA_TEST_SKIP("this registry refuses a manifest whose layer size is wrong");
    CHECK_INT(sign(r, "ocra/size", p.digest, "OCRA_SIGN_KEY"), 0);
    CHECK_INT(verify(r, "ocra/size", p.digest, NULL, NULL, msg, sizeof(msg)), EPROTO);
    CHECK(strstr(msg, "the manifest says") != NULL);
    ocra_image_registry_free(r);
}

static void
test_layer_changed_at_rest_fails(void)
{
    struct ocra_image_registry *r = client();
    struct pushed p;
    char msg[OCRA_ERR_MAX];

    NEED_REGISTRY(r);
    if (!getenv("OCRA_REG_DATA"))
        OCRA_TEST_SKIP("no registry storage path");
    CHECK_INT(image_push(r, "ocra/rest-layer", "1", 12, "ain:0:0xc:0", 0, &p), 0);
    CHECK_INT(sign(r, "ocra/rest-layer", p.digest, "OCRA_SIGN_KEY"), 0);
    CHECK_INT(verify(r, "ocra/rest-layer", p.digest, NULL, NULL, msg, sizeof(msg)), 0);
    CHECK_INT(tamper_at_rest(p.layer.desc.digest, NULL, NULL), 0);
    CHECK_INT(verify(r, "ocra/rest-layer", p.digest, NULL, NULL, msg, sizeof(msg)), EPROTO);
    CHECK(strstr(msg, "layer 0") != NULL);
    ocra_image_registry_free(r);
}

static void
test_manifest_changed_at_rest_fails(void)
{
    struct ocra_image_registry *r = client();
    struct pushed p;
    char msg[OCRA_ERR_MAX];

    NEED_REGISTRY(r);
    if (!getenv("OCRA_REG_DATA"))
        OCRA_TEST_SKIP("no registry storage path");
    CHECK_INT(image_push(r, "ocra/rest-man", "1", 13, "ain:0:0xd:0", 0, &p), 0);
    CHECK_INT(sign(r, "ocra/rest-man", p.digest, "OCRA_SIGN_KEY"), 0);
    /* the annotation now names another event: still valid JSON, same length */
    CHECK_INT(tamper_at_rest(p.digest, "ain:0:0xd:0", "ain:0:0xe:0"), 0);
    CHECK_INT(verify(r, "ocra/rest-man", p.digest, NULL, NULL, msg, sizeof(msg)), EPROTO);
    CHECK_INT(verify(r, "ocra/rest-man", "1", NULL, NULL, msg, sizeof(msg)) != 0, 1);
    ocra_image_registry_free(r);
}

static void
test_setup(void)
{
    const char *base = getenv("OCRA_IT_TMP");

    snprintf(tmpdir, sizeof(tmpdir), "%s/it-sign-XXXXXX", base ? base : "/tmp");
    CHECK(mkdtemp(tmpdir) != NULL);
}

OCRA_TEST_MAIN(OCRA_TEST(test_setup), OCRA_TEST(test_signed_image_verifies_by_digest_and_tag),
               OCRA_TEST(test_unsigned_image_fails),
               OCRA_TEST(test_moved_tag_fails_and_signed_digest_still_verifies),
               OCRA_TEST(test_wrong_annotation_fails), OCRA_TEST(test_other_key_fails),
               OCRA_TEST(test_flipped_signature_fails),
               OCRA_TEST(test_signature_copied_from_other_image_fails),
               OCRA_TEST(test_layer_with_wrong_size_fails),
               OCRA_TEST(test_layer_changed_at_rest_fails),
               OCRA_TEST(test_manifest_changed_at_rest_fails))
