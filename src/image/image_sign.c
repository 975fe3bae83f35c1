/* SPDX-License-Identifier: Apache-2.0 */
/*
 * image_sign.c: cosign-compatible signing and verification of image manifests. A manifest
 * digest is signed as a "simple signing" payload (critical.identity.docker-reference,
 * critical.image.docker-manifest-digest, critical.type, optional) with an ECDSA P-256 key over
 * sha256 of the payload bytes; the payload is the one layer
 * (application/vnd.dev.cosign.simplesigning.v1+json) of an OCI manifest tagged
 * "sha256-<hex>.sig" in the image's repository, the base64 DER signature in the layer
 * annotation dev.cosignproject.cosign/signature, as `cosign sign --key` stores it. Verifying
 * re-fetches the manifest, config and every layer with their digests and sizes checked, checks
 * a signature over a payload that names this digest and repository, and compares the
 * manifest's annotations with what the caller expects. Private keys are wiped when freed.
 */
#include "image/image_int.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#define KEY_FILE_MAX (64u << 10)
#define PAYLOAD_MAX (64u << 10)
#define CONFIG_MAX (16u << 20)
#define SIG_B64_MAX 512
#define ZERO_TIME "0001-01-01T00:00:00Z" /* what cosign's empty signature image carries */

struct ocra_image_key {
    EVP_PKEY *pkey;
};

/* ---- keys ------------------------------------------------------------------------------ */

/* Refuses a passphrase prompt: ocra never reads one from a terminal. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return 0;
}

/* Reads a key file; a private one must be a regular file no one but its owner can touch. */
static int
key_file_read(const char *path, bool private, char **out, size_t *len, struct ocra_err *err)
{
    char *buf = ocra_xmalloc(KEY_FILE_MAX + 1);
    size_t n = 0;
    struct stat st;
    int fd = -1, ret = -1;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0 || fstat(fd, &st) < 0) {
        ocra_err_sys(err, "%s", path);
        goto out;
    }
    if (!S_ISREG(st.st_mode) || (private && (st.st_mode & 077))) {
        ocra_err_set(err, S_ISREG(st.st_mode) ? EACCES : EINVAL, "%s: %s", path,
                     S_ISREG(st.st_mode) ? "private key is accessible by group or others "
                                           "(chmod 600)"
                                         : "not a regular file");
        goto out;
    }
    while (n < KEY_FILE_MAX) {
        ssize_t r = read(fd, buf + n, KEY_FILE_MAX - n);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            ocra_err_sys(err, "%s", path);
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    buf = NULL;
    ret = 0;
out:
    if (buf)
        ocra_secure_free(buf, KEY_FILE_MAX + 1);
    ocra_fd_close(fd);
    return ret;
}

static bool
key_is_p256(EVP_PKEY *pkey)
{
    char group[64] = "";
    size_t glen = 0;

    if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC)
        return false;
    if (!EVP_PKEY_get_group_name(pkey, group, sizeof(group), &glen))
        return false;
    return strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0;
}

static struct ocra_image_key *
key_load(const char *path, bool private, struct ocra_err *err)
{
    struct ocra_image_key *k = NULL;
    EVP_PKEY *pkey = NULL;
    char *pem = NULL;
    size_t len = 0;
    BIO *bio = NULL;

    if (key_file_read(path, private, &pem, &len, err) < 0)
        return NULL;
    bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio)
        abort();
    pkey = private ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL)
                   : PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL);
    ERR_clear_error();
    if (!pkey)
        ocra_err_set(err, EINVAL, "%s: not an unencrypted PEM %s key", path,
                     private ? "private" : "public");
    else if (!key_is_p256(pkey))
        ocra_err_set(err, EINVAL, "%s: not an ECDSA P-256 key", path);
    else {
        k = ocra_xcalloc(1, sizeof(*k));
        k->pkey = pkey;
        pkey = NULL;
    }
    EVP_PKEY_free(pkey); /* clears private key material */
    BIO_free(bio);
    ocra_secure_free(pem, KEY_FILE_MAX + 1);
    return k;
}

struct ocra_image_key *
ocra_image_key_load_private(const char *path, struct ocra_err *err)
{
    return key_load(path, true, err);
}

struct ocra_image_key *
ocra_image_key_load_public(const char *path, struct ocra_err *err)
{
    return key_load(path, false, err);
}

void
ocra_image_key_free(struct ocra_image_key *k)
{
    if (!k)
        return;
    EVP_PKEY_free(k->pkey);
    free(k);
}

/* Writes what bio holds to path with mode; the bytes are wiped from memory after. */
static int
bio_write_file(BIO *bio, const char *path, unsigned mode, struct ocra_err *err)
{
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);

    if (n <= 0)
        return ocra_err_set(err, EIO, "%s: PEM encoding failed", path);
    return ocra_file_write_atomic(path, data, (size_t)n, mode, err);
}

int
ocra_image_key_generate(const char *priv_path, const char *pub_path, struct ocra_err *err)
{
    EVP_PKEY *pkey = EVP_EC_gen("P-256");
    BIO *priv = BIO_new(BIO_s_secmem()), *pub = BIO_new(BIO_s_mem());
    int ret = -1;

    if (!pkey || !priv || !pub) {
        ocra_err_set(err, EIO, "P-256 key generation failed");
        goto out;
    }
    if (!PEM_write_bio_PrivateKey(priv, pkey, NULL, NULL, 0, NULL, NULL) ||
        !PEM_write_bio_PUBKEY(pub, pkey)) {
        ocra_err_set(err, EIO, "PEM encoding failed");
        goto out;
    }
    if (bio_write_file(priv, priv_path, 0600, err) < 0 ||
        bio_write_file(pub, pub_path, 0644, err) < 0)
        goto out;
    ret = 0;
out:
    ERR_clear_error();
    EVP_PKEY_free(pkey);
    BIO_free(priv); /* secure memory: cleared on free */
    BIO_free(pub);
    return ret;
}

char *
ocra_image_key_sign(const struct ocra_image_key *k, const void *data, size_t len,
                    struct ocra_err *err)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char sig[256];
    size_t sig_len = sizeof(sig);
    char *b64 = NULL;

    if (!md)
        abort();
    if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k->pkey) != 1 ||
        EVP_DigestSign(md, sig, &sig_len, data, len) != 1) {
        ERR_clear_error();
        ocra_err_set(err, EINVAL, "ECDSA signing failed (not a private key?)");
        goto out;
    }
    b64 = ocra_xmalloc(4 * ((sig_len + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)b64, sig, (int)sig_len);
out:
    EVP_MD_CTX_free(md);
    return b64;
}

/* Strict standard base64 (with padding) into out; the decoded length, or -1. */
static int
b64_decode(const char *s, unsigned char *out, size_t cap)
{
    size_t n = strlen(s), pad = 0;
    int got;

    if (n == 0 || n % 4 != 0 || n > SIG_B64_MAX || 3 * (n / 4) > cap)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '+' || c == '/' || (c == '=' && i >= n - 2);

        if (!ok || (pad && c != '='))
            return -1;
        pad += c == '=';
    }
    got = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
    return got < 0 ? -1 : got - (int)pad;
}

int
ocra_image_key_verify(const struct ocra_image_key *k, const void *data, size_t len,
                      const char *sig_b64, struct ocra_err *err)
{
    unsigned char sig[SIG_B64_MAX];
    EVP_MD_CTX *md;
    int n = b64_decode(sig_b64, sig, sizeof(sig)), ok;

    if (n <= 0)
        return ocra_err_set(err, EACCES, "signature is not base64");
    md = EVP_MD_CTX_new();
    if (!md)
        abort();
    ok = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k->pkey) == 1 &&
         EVP_DigestVerify(md, sig, (size_t)n, data, len) == 1;
    ERR_clear_error();
    EVP_MD_CTX_free(md);
    if (!ok)
        return ocra_err_set(err, EACCES, "signature does not verify with the given key");
    return 0;
}

/* ---- payload --------------------------------------------------------------------------- */

void
ocra_image_sig_tag(const char *digest, char out[OCRA_IMAGE_SIG_TAG_MAX])
{
    assert(ocra_image_digest_valid(digest));
    snprintf(out, OCRA_IMAGE_SIG_TAG_MAX, "sha256-%.64s.sig", digest + 7);
}

/* "host[:port]/repo": a non-empty host part and a valid repository name. */
static bool
docker_ref_valid(const char *ref)
{
    const char *slash = strchr(ref, '/');

    if (!slash || slash == ref || strlen(ref) > 512)
        return false;
    for (const char *p = ref; p < slash; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return false;
    return ocra_image_repo_valid(slash + 1);
}

char *
ocra_image_sig_payload(const char *docker_ref, const char *digest, const json_t *optional,
                       struct ocra_err *err)
{
    json_t *doc;
    char *out;

    if (!ocra_image_digest_valid(digest) || !docker_ref_valid(docker_ref)) {
        ocra_err_set(err, EINVAL, "signature payload: bad digest or reference");
        return NULL;
    }
    if (optional && !json_is_object(optional)) {
        ocra_err_set(err, EINVAL, "signature payload: optional must be an object");
        return NULL;
    }
    doc = json_pack("{s:{s:{s:s}, s:{s:s}, s:s}, s:O}", "critical", "identity", "docker-reference",
                    docker_ref, "image", "docker-manifest-digest", digest, "type",
                    OCRA_IMAGE_COSIGN_TYPE, "optional", optional ? optional : json_null());
    if (!doc)
        abort();
    out = ocra_json_canonical(doc);
    json_decref(doc);
    return out;
}

/* Compares a payload string with what it must be; EACCES naming both when they differ. */
static int
payload_expect(const json_t *obj, const char *key, const char *want, struct ocra_err *err)
{
    const char *got = ocra_json_str(obj, key);
    char q[160];

    if (!got)
        return ocra_err_set(err, EPROTO, "signature payload: no %s", key);
    if (strcmp(got, want) != 0)
        return ocra_err_set(err, EACCES, "signature payload names %s %s, not %s", key,
                            ocra_str_escape(got, strlen(got), 100, q, sizeof(q)), want);
    return 0;
}

int
ocra_image_sig_payload_check(const char *data, size_t len, const char *docker_ref,
                             const char *digest, struct ocra_err *err)
{
    json_t *doc = ocra_json_parse(data, len, OCRA_JSON_STRICT, err), *crit;
    int ret = -1;

    if (!doc) {
        err->code = EPROTO;
        return ocra_err_wrap(err, "signature payload");
    }
    crit = json_object_get(doc, "critical");
    if (!json_is_object(crit) || !json_is_object(json_object_get(crit, "identity")) ||
        !json_is_object(json_object_get(crit, "image"))) {
        ocra_err_set(err, EPROTO, "signature payload: no critical.identity or critical.image");
        goto out;
    }
    if (payload_expect(crit, "type", OCRA_IMAGE_COSIGN_TYPE, err) < 0 ||
        payload_expect(json_object_get(crit, "image"), "docker-manifest-digest", digest, err) < 0 ||
        payload_expect(json_object_get(crit, "identity"), "docker-reference", docker_ref, err) < 0)
        goto out;
    ret = 0;
out:
    json_decref(doc);
    return ret;
}

/* ---- signing --------------------------------------------------------------------------- */

static void
desc_of(struct ocra_image_desc *d, const char *media_type, const char *data, size_t len)
{
    snprintf(d->media_type, sizeof(d->media_type), "%s", media_type);
    ocra_image_digest_of(data, len, d->digest);
    d->size = (int64_t)len;
}

/* The config cosign's signature images carry: an empty image whose one layer is the payload. */
static char *
sig_config_build(const char *payload_digest)
{
    json_t *c = json_pack("{s:s, s:{}, s:s, s:[{s:s}], s:s, s:{s:[s], s:s}}", "architecture", "",
                          "config", "created", ZERO_TIME, "history", "created", ZERO_TIME, "os", "",
                          "rootfs", "diff_ids", payload_digest, "type", "layers");
    char *out;

    if (!c)
        abort();
    out = ocra_json_canonical(c);
    json_decref(c);
    return out;
}

static char *
sig_manifest_build(const struct ocra_image_desc *cfg, const struct ocra_image_desc *payload,
                   const char *sig_b64)
{
    json_t *m =
        json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:[{s:s, s:s, s:I, s:{s:s}}]}", "schemaVersion", 2,
                  "mediaType", OCRA_IMAGE_MT_OCI_MANIFEST, "config", "mediaType", cfg->media_type,
                  "digest", cfg->digest, "size", (json_int_t)cfg->size, "layers", "mediaType",
                  payload->media_type, "digest", payload->digest, "size", (json_int_t)payload->size,
                  "annotations", OCRA_IMAGE_ANN_COSIGN_SIGNATURE, sig_b64);
    char *out;

    if (!m)
        abort();
    out = ocra_json_canonical(m);
    json_decref(m);
    return out;
}

static int
blob_push_mem(struct ocra_image_registry *r, const char *repo, const struct ocra_image_desc *d,
              const char *data, struct ocra_err *err)
{
    struct ocra_image_src src = {.mem = data, .fd = -1, .size = (uint64_t)d->size};

    return ocra_image_blob_push(r, repo, d->digest, &src, err);
}

int
ocra_image_sign(struct ocra_image_registry *r, const char *repo, const char *digest,
                const struct ocra_image_key *key, const json_t *optional,
                char sig_digest_out[OCRA_IMAGE_DIGEST_MAX], struct ocra_err *err)
{
    char *ref = NULL, *payload = NULL, *sig = NULL, *cfg = NULL, *man = NULL;
    char tag[OCRA_IMAGE_SIG_TAG_MAX];
    struct ocra_image_desc pd, cd;
    int ret = -1, found;

    if (!ocra_image_digest_valid(digest) || !ocra_image_repo_valid(repo))
        return ocra_err_set(err, EINVAL, "sign: want a repository and a sha256 digest");
    found = ocra_image_manifest_head(r, repo, digest, NULL, err);
    if (found <= 0) {
        if (found == 0)
            ocra_err_set(err, ENOENT, "no such manifest");
        goto out;
    }
    ref = ocra_xasprintf("%s/%s", r->origin, repo);
    if (!(payload = ocra_image_sig_payload(ref, digest, optional, err)) ||
        !(sig = ocra_image_key_sign(key, payload, strlen(payload), err)))
        goto out;
    desc_of(&pd, OCRA_IMAGE_MT_COSIGN_PAYLOAD, payload, strlen(payload));
    cfg = sig_config_build(pd.digest);
    desc_of(&cd, OCRA_IMAGE_MT_OCI_CONFIG, cfg, strlen(cfg));
    man = sig_manifest_build(&cd, &pd, sig);
    ocra_image_sig_tag(digest, tag);
    if (blob_push_mem(r, repo, &pd, payload, err) < 0 ||
        blob_push_mem(r, repo, &cd, cfg, err) < 0 ||
        ocra_image_manifest_put(r, repo, tag, OCRA_IMAGE_MT_OCI_MANIFEST, man, strlen(man),
                                sig_digest_out, err) < 0)
        goto out;
    ret = 0;
out:
    if (ret < 0)
        ocra_err_wrap(err, "sign %s@%.19s", repo, digest);
    free(ref);
    free(payload);
    free(sig);
    free(cfg);
    free(man);
    return ret;
}

/* ---- verification ---------------------------------------------------------------------- */

/* A layer's bytes through an unlinked file: digest checked by the fetch, size here. */
static int
verify_layer(struct ocra_image_registry *r, const char *repo, const struct ocra_image_desc *d,
             struct ocra_err *err)
{
    const char *tmp = getenv("TMPDIR");
    struct stat st;
    int fd, ret = -1;

    fd = open(tmp && *tmp ? tmp : "/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0)
        return ocra_err_sys(err, "layer %.19s: temporary file", d->digest);
    if (ocra_image_blob_fetch(r, repo, d->digest, fd, err) < 0)
        goto out;
    if (fstat(fd, &st) < 0) {
        ocra_err_sys(err, "layer %.19s: fstat", d->digest);
        goto out;
    }
    if ((int64_t)st.st_size != d->size) {
        ocra_err_set(err, EPROTO, "layer %.19s: %lld bytes, the manifest says %lld", d->digest,
                     (long long)st.st_size, (long long)d->size);
        goto out;
    }
    ret = 0;
out:
    ocra_fd_close(fd);
    return ret;
}

static int
verify_blobs(struct ocra_image_registry *r, const char *repo, const struct ocra_image_manifest *m,
             struct ocra_err *err)
{
    char *cfg = NULL;
    size_t len = 0;

    if (ocra_image_blob_get(r, repo, m->config.digest, CONFIG_MAX, &cfg, &len, err) < 0)
        return ocra_err_wrap(err, "config");
    free(cfg);
    if ((int64_t)len != m->config.size)
        return ocra_err_set(err, EPROTO, "config %.19s: %zu bytes, the manifest says %lld",
                            m->config.digest, len, (long long)m->config.size);
    for (size_t i = 0; i < m->n_layers; i++)
        if (verify_layer(r, repo, &m->layers[i], err) < 0)
            return ocra_err_wrap(err, "layer %zu", i);
    return 0;
}

/* One layer of the signature manifest: its payload, signed by pub, for digest and ref. */
static int
verify_sig_layer(struct ocra_image_registry *r, const char *repo, const struct ocra_image_desc *d,
                 const char *sig, const struct ocra_image_key *pub, const char *ref,
                 const char *digest, struct ocra_err *err)
{
    char *payload = NULL;
    size_t len = 0;
    int ret = -1;

    if (strcmp(d->media_type, OCRA_IMAGE_MT_COSIGN_PAYLOAD) != 0)
        return ocra_err_set(err, EPROTO, "layer is not a simple-signing payload");
    if (!sig)
        return ocra_err_set(err, EACCES, "layer has no %s annotation",
                            OCRA_IMAGE_ANN_COSIGN_SIGNATURE);
    if (d->size < 0 || d->size > (int64_t)PAYLOAD_MAX)
        return ocra_err_set(err, EPROTO, "payload of %lld bytes", (long long)d->size);
    if (ocra_image_blob_get(r, repo, d->digest, PAYLOAD_MAX, &payload, &len, err) < 0)
        return ocra_err_wrap(err, "payload");
    if ((int64_t)len != d->size)
        ocra_err_set(err, EPROTO, "payload: %zu bytes, the manifest says %lld", len,
                     (long long)d->size);
    else if (ocra_image_key_verify(pub, payload, len, sig, err) == 0 &&
             ocra_image_sig_payload_check(payload, len, ref, digest, err) == 0)
        ret = 0;
    free(payload);
    return ret;
}

/* The signature annotation of layer i of a signature manifest, or NULL. */
static const char *
sig_annotation(const json_t *doc, size_t i)
{
    json_t *layer = json_array_get(json_object_get(doc, "layers"), i);

    return ocra_json_str(json_object_get(layer, "annotations"), OCRA_IMAGE_ANN_COSIGN_SIGNATURE);
}

/* Any one layer of the "sha256-<hex>.sig" manifest with a valid signature will do. */
static int
verify_signature(struct ocra_image_registry *r, const char *repo, const char *digest,
                 const struct ocra_image_key *pub, struct ocra_err *err)
{
    char tag[OCRA_IMAGE_SIG_TAG_MAX], mt[OCRA_IMAGE_MEDIA_TYPE_MAX], *data = NULL, *ref = NULL;
    struct ocra_image_manifest m = {0};
    struct ocra_err first = {0};
    json_t *doc = NULL;
    size_t len = 0;
    int ret = -1;

    ocra_image_sig_tag(digest, tag);
    if (ocra_image_manifest_get(r, repo, tag, &data, &len, mt, NULL, err) < 0) {
        if (err->code == ENOENT)
            ocra_err_set(err, EACCES, "not signed: no %s:%s", repo, tag);
        return -1;
    }
    if (ocra_image_manifest_parse(data, len, mt, &m, err) < 0 ||
        !(doc = ocra_json_parse(data, len, OCRA_JSON_STRICT, err))) {
        err->code = EPROTO;
        ocra_err_wrap(err, "%s", tag);
        goto out;
    }
    ocra_err_set(&first, EACCES, "%s has no layers", tag);
    ref = ocra_xasprintf("%s/%s", r->origin, repo);
    for (size_t i = 0; i < m.n_layers && ret < 0; i++) {
        struct ocra_err e = {0};

        ret = verify_sig_layer(r, repo, &m.layers[i], sig_annotation(doc, i), pub, ref, digest, &e);
        if (ret < 0 && i == 0)
            first = e;
    }
    if (ret < 0) {
        *err = first;
        ocra_err_wrap(err, "%s", tag);
    }
out:
    ocra_image_manifest_fini(&m);
    json_decref(doc);
    free(data);
    free(ref);
    return ret;
}

static int
verify_annotations(const struct ocra_image_manifest *m, const json_t *expected,
                   struct ocra_err *err)
{
    const char *key;
    json_t *want;
    char q1[160], q2[160];

    json_object_foreach((json_t *)(uintptr_t)expected, key, want)
    {
        const char *got = ocra_json_str(m->annotations, key);
        const char *w = json_string_value(want);

        if (!w)
            return ocra_err_set(err, EINVAL, "expected annotation %s is not a string", key);
        if (!got)
            return ocra_err_set(err, EACCES, "annotation %s: missing, expected %s", key,
                                ocra_str_escape(w, strlen(w), 100, q2, sizeof(q2)));
        if (strcmp(got, w) != 0)
            return ocra_err_set(err, EACCES, "annotation %s: %s, expected %s", key,
                                ocra_str_escape(got, strlen(got), 100, q1, sizeof(q1)),
                                ocra_str_escape(w, strlen(w), 100, q2, sizeof(q2)));
    }
    return 0;
}

int
ocra_image_verify(struct ocra_image_registry *r, const char *repo, const char *ref,
                  const struct ocra_image_key *pub, const json_t *expected,
                  char digest_out[OCRA_IMAGE_DIGEST_MAX], struct ocra_err *err)
{
    char mt[OCRA_IMAGE_MEDIA_TYPE_MAX], digest[OCRA_IMAGE_DIGEST_MAX] = "", *data = NULL;
    struct ocra_image_manifest m = {0};
    size_t len = 0;
    int ret = -1;

    if (expected && !json_is_object(expected))
        return ocra_err_set(err, EINVAL, "verify: expected annotations must be an object");
    /* digest is computed from the bytes received: by digest, the client refuses bytes of
     * another; by tag, it is what the signature must name */
    if (ocra_image_manifest_get(r, repo, ref, &data, &len, mt, digest, err) < 0)
        goto out;
    if (ocra_image_manifest_parse(data, len, mt, &m, err) < 0) {
        err->code = EPROTO;
        goto out;
    }
    if (verify_blobs(r, repo, &m, err) < 0 || verify_signature(r, repo, digest, pub, err) < 0 ||
        (expected && verify_annotations(&m, expected, err) < 0))
        goto out;
    if (digest_out)
        memcpy(digest_out, digest, sizeof(digest));
    ret = 0;
out:
    if (ret < 0)
        ocra_err_wrap(err, "verify %s%c%s", repo, ocra_image_digest_valid(ref) ? '@' : ':', ref);
    ocra_image_manifest_fini(&m);
    free(data);
    return ret;
}
