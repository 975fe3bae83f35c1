/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_verify.c: `ocra verify` checks an image in a registry end to end (manifest, config and
 * every layer against their digests and sizes, the cosign-compatible signature under
 * "sha256-<hex>.sig" with a public key, and expected manifest annotations); `ocra sign`
 * signs an image's manifest digest with a private key in the same format.
 */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "image/image.h"
#include "store/store.h"

#include <unistd.h>

/* An image reference split into what the registry client needs. */
struct image_ref {
    char *url;  /* http(s)://host[:port] */
    char *repo; /* "team/model" */
    char *ref;  /* a tag or "sha256:..." */
};

struct sign_opts {
    const char *key, *registry;
    json_t *annotations; /* object of strings */
    struct image_ref ir;
};

static void
image_ref_fini(struct image_ref *ir)
{
    free(ir->url);
    free(ir->repo);
    free(ir->ref);
}

/* Docker's rule: the first component names a host when it has a '.' or ':' or is localhost. */
static bool
is_host(const char *s, size_t n)
{
    return memchr(s, '.', n) || memchr(s, ':', n) || (n == 9 && memcmp(s, "localhost", 9) == 0);
}

static bool
is_loopback(const char *host)
{
    return strncmp(host, "127.", 4) == 0 || strncmp(host, "localhost", 9) == 0 ||
           strncmp(host, "[::1]", 5) == 0;
}

/* "[host[:port]/]repo(@sha256:...|:tag)"; --registry URL wins over the host. */
static int
image_ref_parse(const char *s, const char *registry, struct image_ref *out, struct ocra_err *err)
{
    const char *at = strchr(s, '@'), *slash = strchr(s, '/'), *name = s, *colon;
    size_t name_len;

    if (slash && is_host(s, (size_t)(slash - s)) && (!at || slash < at))
        name = slash + 1;
    colon = at ? NULL : strrchr(name, ':');
    if (!at && !colon)
        return ocra_err_set(err, EINVAL, "%s: want REPO@sha256:... or REPO:TAG", s);
    name_len = (size_t)((at ? at : colon) - name);
    if (name != s && registry == NULL)
        out->url =
            ocra_xasprintf("%s://%.*s", is_loopback(s) ? "http" : "https", (int)(name - 1 - s), s);
    else if (registry)
        out->url = ocra_xstrdup(registry);
    else
        return ocra_err_set(err, EINVAL, "%s: no registry host in the reference: use --registry",
                            s);
    out->repo = ocra_xstrndup(name, name_len);
    out->ref = ocra_xstrdup((at ? at : colon) + 1);
    if (!ocra_image_repo_valid(out->repo) || !ocra_image_ref_valid(out->ref)) {
        image_ref_fini(out);
        memset(out, 0, sizeof(*out));
        return ocra_err_set(err, EINVAL, "%s: bad repository name, tag or digest", s);
    }
    return 0;
}

/* --annotation k=v into o->annotations; a repeated key is a usage error. */
static int
add_annotation(struct sign_opts *o, const char *kv)
{
    const char *eq = strchr(kv, '=');
    char *key;
    int ret = OCRA_CLI_OK;

    if (!eq || eq == kv)
        return ocra_cli_fail(OCRA_CLI_USAGE, "--annotation %s: want KEY=VALUE", kv);
    key = ocra_xstrndup(kv, (size_t)(eq - kv));
    if (json_object_get(o->annotations, key))
        ret = ocra_cli_fail(OCRA_CLI_USAGE, "--annotation %s given twice", key);
    else
        json_object_set_new(o->annotations, key, json_string(eq + 1));
    free(key);
    return ret;
}

/* Options and the one REF argument of sign and verify. */
static int
parse_args(const char *cmd, int argc, char **argv, struct sign_opts *o)
{
    static const struct option longopts[] = {
        {"key", required_argument, NULL, 'k'},
        {"registry", required_argument, NULL, 'r'},
        {"annotation", required_argument, NULL, 'a'},
        {NULL, 0, NULL, 0},
    };
    struct ocra_err err = {0};
    int c;

    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == 'k')
            o->key = optarg;
        else if (c == 'r')
            o->registry = optarg;
        else if (c != 'a' || add_annotation(o, optarg) != OCRA_CLI_OK)
            return ocra_cli_fail(OCRA_CLI_USAGE, "see `ocra help %s`", cmd);
    }
    if (optind + 1 != argc || !o->key)
        return ocra_cli_fail(OCRA_CLI_USAGE, "%s: want one REF and --key FILE", cmd);
    if (image_ref_parse(argv[optind], o->registry, &o->ir, &err) < 0)
        return ocra_cli_fail(OCRA_CLI_USAGE, "%s: %s", cmd, err.msg);
    return OCRA_CLI_OK;
}

static struct ocra_image_registry *
registry_open(const struct sign_opts *o, struct ocra_err *err)
{
    struct ocra_image_registry_opts ro = {.url = o->ir.url};

    return ocra_image_registry_new(&ro, err);
}

/*
 * When the journal has a record of the image (by digest: a tag is resolved first), its
 * annotations must be in the manifest too: merged into o->annotations (those given with
 * --annotation win). A journal that does not exist is not created. Returns the number of
 * annotations taken from the journal, or -1.
 */
static int
journal_annotations(struct ocra_cli_ctx *ctx, struct ocra_image_registry *r, struct sign_opts *o,
                    struct ocra_err *err)
{
    char digest[OCRA_IMAGE_DIGEST_MAX];
    struct ocra_store_image *im = NULL;
    struct ocra_store *st = NULL;
    const char *key;
    json_t *rec = NULL, *ann, *v;
    int n = 0, found;

    if (ocra_cli_config(ctx) != OCRA_CLI_OK)
        return ocra_err_set(err, EINVAL, "configuration");
    if (access(ctx->cfg.journal_path, F_OK) != 0)
        return 0;
    if (ocra_image_digest_valid(o->ir.ref)) {
        memcpy(digest, o->ir.ref, strlen(o->ir.ref) + 1);
    } else {
        found = ocra_image_manifest_head(r, o->ir.repo, o->ir.ref, digest, err);
        if (found <= 0)
            return found; /* ocra_image_verify reports a missing tag */
    }
    if (ocra_store_open(ctx->cfg.journal_path, &st, err) < 0 ||
        ocra_store_image_get(st, digest, &im, err) < 0) {
        ocra_store_close(st);
        return ocra_err_wrap(err, "journal %s", ctx->cfg.journal_path);
    }
    rec = im ? ocra_json_parse(im->record, strlen(im->record), 0, NULL) : NULL;
    ann = json_object_get(rec, "annotations");
    json_object_foreach(ann, key, v)
    {
        if (json_is_string(v) && !json_object_get(o->annotations, key)) {
            json_object_set(o->annotations, key, v);
            n++;
        }
    }
    json_decref(rec);
    ocra_store_image_free(im);
    ocra_store_close(st);
    return n;
}

static int
verify_run(struct ocra_cli_ctx *ctx, int argc, char **argv)
{
    struct sign_opts o = {.annotations = json_object()};
    struct ocra_image_registry *r = NULL;
    struct ocra_image_key *pub = NULL;
    char digest[OCRA_IMAGE_DIGEST_MAX];
    struct ocra_err err = {0};
    int status, from_journal;

    status = parse_args("verify", argc, argv, &o);
    if (status != OCRA_CLI_OK)
        goto out;
    if (!(pub = ocra_image_key_load_public(o.key, &err)) || !(r = registry_open(&o, &err))) {
        status = ocra_cli_fail(OCRA_CLI_USAGE, "verify: %s", err.msg);
        goto out;
    }
    from_journal = journal_annotations(ctx, r, &o, &err);
    if (from_journal < 0) {
        status = ocra_cli_fail(OCRA_CLI_FAIL, "verify: %s", err.msg);
        goto out;
    }
    if (ocra_image_verify(r, o.ir.repo, o.ir.ref, pub, o.annotations, digest, &err) < 0) {
        bool failed = err.code == EPROTO || err.code == EACCES;

        status = ocra_cli_fail(failed ? OCRA_CLI_USAGE : OCRA_CLI_FAIL, "%s: %s",
                               failed ? "verification failed" : "verify", err.msg);
        goto out;
    }
    printf("verified %s@%s\n", o.ir.repo, digest);
    if (from_journal > 0)
        printf("annotations match the journal's record (%d)\n", from_journal);
    status = OCRA_CLI_OK;
out:
    ocra_image_registry_free(r);
    ocra_image_key_free(pub);
    image_ref_fini(&o.ir);
    json_decref(o.annotations);
    return status;
}

static int
sign_run(struct ocra_cli_ctx *ctx, int argc, char **argv)
{
    struct sign_opts o = {.annotations = json_object()};
    struct ocra_image_registry *r = NULL;
    struct ocra_image_key *key = NULL;
    char digest[OCRA_IMAGE_DIGEST_MAX], sig[OCRA_IMAGE_DIGEST_MAX], tag[OCRA_IMAGE_SIG_TAG_MAX];
    struct ocra_err err = {0};
    int status, found;

    (void)ctx;
    status = parse_args("sign", argc, argv, &o);
    if (status != OCRA_CLI_OK)
        goto out;
    if (!(key = ocra_image_key_load_private(o.key, &err)) || !(r = registry_open(&o, &err))) {
        status = ocra_cli_fail(OCRA_CLI_USAGE, "sign: %s", err.msg);
        goto out;
    }
    /* a tag is resolved once, here: what is signed is the digest printed below */
    found = ocra_image_manifest_head(r, o.ir.repo, o.ir.ref, digest, &err);
    if (found == 0)
        ocra_err_set(&err, ENOENT, "%s:%s: no such manifest", o.ir.repo, o.ir.ref);
    if (found <= 0 ||
        ocra_image_sign(r, o.ir.repo, digest, key,
                        json_object_size(o.annotations) ? o.annotations : NULL, sig, &err) < 0) {
        status = ocra_cli_fail(OCRA_CLI_FAIL, "sign: %s", err.msg);
        goto out;
    }
    ocra_image_sig_tag(digest, tag);
    printf("signed %s@%s as %s:%s (%s)\n", o.ir.repo, digest, o.ir.repo, tag, sig);
    status = OCRA_CLI_OK;
out:
    ocra_image_registry_free(r);
    ocra_image_key_free(key);
    image_ref_fini(&o.ir);
    json_decref(o.annotations);
    return status;
}

const struct ocra_cli_cmd ocra_cli_verify_cmd = {
    "verify", "verify an image's digests, signature and annotations in a registry",
    "usage: ocra verify REF --key PUB.pem [--registry URL] [--annotation KEY=VALUE]...\n"
    "\n"
    "REF is host[:port]/repo@sha256:... (or :tag, resolved to the digest it names now).\n"
    "Re-fetches the manifest, the config and every layer and checks each digest and size;\n"
    "checks the cosign-compatible signature stored under the tag sha256-<hex>.sig of the\n"
    "same repository (ECDSA P-256, the public key in PEM, as cosign.pub) and that its payload\n"
    "names this digest and repository; then that the manifest has each annotation given\n"
    "and, when the journal (journal.path) has a record of the image from `ocra build`,\n"
    "every annotation of that record (the event id, chain, block, tx, spec hash...).\n"
    "\n"
    "options:\n"
    "      --key FILE              the signer's public key (PEM \"PUBLIC KEY\")\n"
    "      --registry URL          the registry (default: http:// for a loopback host in\n"
    "                              REF, else https://); credentials from ~/.docker/config.json\n"
    "      --annotation KEY=VALUE  a manifest annotation that must have this value\n"
    "\n"
    "examples:\n"
    "  ocra verify localhost:5000/mine/seed@sha256:... --key cosign.pub\n"
    "  ocra verify localhost:5000/mine/seed:0.1.0 --key cosign.pub --annotation "
    "io.ocra.event=ain:0:0x3f2c...:0\n"
    "\n"
    "exit status: 0 verified, 1 the registry cannot be reached or read, 2 verification\n"
    "failed or usage error.\n",
    verify_run, NULL};

const struct ocra_cli_cmd ocra_cli_sign_cmd = {
    "sign", "sign an image's manifest digest (cosign-compatible)",
    "usage: ocra sign REF --key KEY.pem [--registry URL] [--annotation KEY=VALUE]...\n"
    "\n"
    "Signs the manifest digest of REF (host[:port]/repo@sha256:... or :tag, resolved once)\n"
    "with an ECDSA P-256 private key (unencrypted PEM, mode 0600) and pushes the signature\n"
    "as cosign does: a simple-signing payload layer in a manifest tagged sha256-<hex>.sig,\n"
    "replacing an earlier signature. Annotations go into the payload's \"optional\".\n"
    "\n"
    "examples:\n"
    "  ocra sign localhost:5000/mine/seed@sha256:... --key cosign.key\n"
    "\n"
    "exit status: 0 signed, 1 the registry refused or failed, 2 usage error or bad key.\n",
    sign_run, NULL};
