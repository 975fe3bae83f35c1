/* SPDX-License-Identifier: Apache-2.0 */
/*
 * image_manifest.c: digests, image manifests and image configs. Manifests from a registry are
 * parsed strictly (OCI v1 and Docker schema 2; indexes are reported as such). The documents
 * ocra writes are built as JSON trees and serialized canonically (keys sorted, no whitespace),
 * so equal inputs give equal bytes, and so an equal digest, on any machine.
 */
#include "image/image.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LAYERS_MAX 4096

/* jansson's iteration takes json_t *; these documents are only read through it */
static json_t *
unconst(const json_t *j)
{
    return (json_t *)(uintptr_t)j;
}

/* ---- digests --------------------------------------------------------------------------- */

bool
ocra_image_digest_valid(const char *s)
{
    if (strncmp(s, "sha256:", 7) != 0 || !ocra_hex_is(s + 7, 64))
        return false;
    for (const char *p = s + 7; *p; p++)
        if (*p >= 'A' && *p <= 'F')
            return false;
    return true;
}

void
ocra_image_digest_of(const void *data, size_t len, char out[OCRA_IMAGE_DIGEST_MAX])
{
    memcpy(out, "sha256:", 7);
    ocra_sha256_hex(data, len, out + 7);
}

/* ---- parsing --------------------------------------------------------------------------- */

static int
copy_media_type(char *out, const char *s, struct ocra_err *err)
{
    size_t n = strlen(s);

    if (n == 0 || n >= OCRA_IMAGE_MEDIA_TYPE_MAX || !strchr(s, '/'))
        return ocra_err_set(err, EPROTO, "mediaType is not a media type");
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return ocra_err_set(err, EPROTO, "mediaType has a space or control byte");
    memcpy(out, s, n + 1);
    return 0;
}

static int
desc_parse(const json_t *j, struct ocra_image_desc *d, struct ocra_err *err)
{
    const char *mt = ocra_json_str(j, "mediaType"), *digest = ocra_json_str(j, "digest");
    json_t *size = json_object_get(j, "size");

    if (!json_is_object(j))
        return ocra_err_set(err, EPROTO, "descriptor is not an object");
    if (!mt || copy_media_type(d->media_type, mt, err) < 0)
        return ocra_err_set(err, EPROTO, "descriptor without a valid mediaType");
    if (!digest || !ocra_image_digest_valid(digest))
        return ocra_err_set(err, EPROTO, "descriptor digest is not sha256:<64 hex>");
    memcpy(d->digest, digest, strlen(digest) + 1);
    if (!json_is_integer(size) || json_integer_value(size) < 0)
        return ocra_err_set(err, EPROTO, "descriptor size is not a non-negative integer");
    d->size = json_integer_value(size);
    return 0;
}

/* The manifest's media type: its own mediaType and the registry's Content-Type must agree. */
static int
manifest_type(const json_t *j, const char *content_type, char *out, struct ocra_err *err)
{
    const char *mt = ocra_json_str(j, "mediaType");
    json_t *v = json_object_get(j, "schemaVersion");

    if (json_object_get(j, "mediaType") && !mt)
        return ocra_err_set(err, EPROTO, "mediaType is not a string");
    if (content_type && !*content_type)
        content_type = NULL;
    if (mt && content_type && strcmp(mt, content_type) != 0)
        return ocra_err_set(err, EPROTO, "mediaType disagrees with Content-Type");
    if (!mt)
        mt = content_type                      ? content_type
             : json_object_get(j, "manifests") ? OCRA_IMAGE_MT_OCI_INDEX
                                               : OCRA_IMAGE_MT_OCI_MANIFEST;
    if (copy_media_type(out, mt, err) < 0)
        return -1;
    if (strcmp(mt, OCRA_IMAGE_MT_OCI_INDEX) == 0 || strcmp(mt, OCRA_IMAGE_MT_DOCKER_LIST) == 0)
        return ocra_err_set(err, ENOTSUP, "an image index, not an image manifest");
    if (strcmp(mt, OCRA_IMAGE_MT_OCI_MANIFEST) != 0 &&
        strcmp(mt, OCRA_IMAGE_MT_DOCKER_MANIFEST) != 0)
        return ocra_err_set(err, EPROTO, "unsupported manifest media type");
    if (!json_is_integer(v) || json_integer_value(v) != 2)
        return ocra_err_set(err, EPROTO, "schemaVersion is not 2");
    return 0;
}

static int
annotations_check(const json_t *a, struct ocra_err *err)
{
    const char *k;
    json_t *v;

    if (!json_is_object(a))
        return ocra_err_set(err, EPROTO, "annotations is not an object");
    json_object_foreach(unconst(a), k, v)
    {
        if (!json_is_string(v))
            return ocra_err_set(err, EPROTO, "annotation %.64s is not a string", k);
    }
    return 0;
}

static int
manifest_fill(const json_t *j, struct ocra_image_manifest *m, struct ocra_err *err)
{
    json_t *layers = json_object_get(j, "layers"), *a = json_object_get(j, "annotations");
    size_t n = json_array_size(layers);

    if (desc_parse(json_object_get(j, "config"), &m->config, err) < 0)
        return ocra_err_wrap(err, "config");
    if (!json_is_array(layers) || n > LAYERS_MAX)
        return ocra_err_set(err, EPROTO, "layers is not an array of at most %d", LAYERS_MAX);
    m->layers = ocra_xcalloc(n ? n : 1, sizeof(*m->layers));
    for (size_t i = 0; i < n; i++, m->n_layers++)
        if (desc_parse(json_array_get(layers, i), &m->layers[i], err) < 0)
            return ocra_err_wrap(err, "layers[%zu]", i);
    if (a && annotations_check(a, err) < 0)
        return -1;
    m->annotations = json_incref(a);
    return 0;
}

int
ocra_image_manifest_parse(const char *data, size_t len, const char *content_type,
                          struct ocra_image_manifest *out, struct ocra_err *err)
{
    struct ocra_image_manifest m = {0};
    json_t *j = NULL;
    int ret = -1;

    if (len > (4u << 20)) {
        ocra_err_set(err, EPROTO, "manifest larger than 4 MiB");
        goto out;
    }
    j = ocra_json_parse(data, len, OCRA_JSON_STRICT, err);
    if (!j)
        goto out;
    if (!json_is_object(j)) {
        ocra_err_set(err, EPROTO, "manifest is not an object");
        goto out;
    }
    if (manifest_type(j, content_type, m.media_type, err) < 0 || manifest_fill(j, &m, err) < 0)
        goto out;
    *out = m;
    memset(&m, 0, sizeof(m));
    ret = 0;
out:
    if (ret < 0 && err && err->code == EINVAL)
        err->code = EPROTO; /* malformed JSON from a peer */
    if (ret < 0)
        ocra_err_wrap(err, "manifest");
    ocra_image_manifest_fini(&m);
    json_decref(j);
    return ret;
}

void
ocra_image_manifest_fini(struct ocra_image_manifest *m)
{
    free(m->layers);
    json_decref(m->annotations);
    memset(m, 0, sizeof(*m));
}

/* ---- building -------------------------------------------------------------------------- */

static json_t *
desc_json(const struct ocra_image_desc *d, struct ocra_err *err)
{
    char mt[OCRA_IMAGE_MEDIA_TYPE_MAX];

    if (!ocra_image_digest_valid(d->digest) || d->size < 0 ||
        copy_media_type(mt, d->media_type, err) < 0) {
        ocra_err_set(err, EINVAL, "descriptor: bad media type, digest or size");
        return NULL;
    }
    return json_pack("{s:s, s:s, s:I}", "mediaType", d->media_type, "digest", d->digest, "size",
                     (json_int_t)d->size);
}

static int
annotations_ok(const json_t *a, struct ocra_err *err)
{
    if (!a)
        return 0;
    if (annotations_check(a, err) < 0) {
        err ? err->code = EINVAL : 0;
        return -1;
    }
    return 0;
}

char *
ocra_image_manifest_build(const struct ocra_image_desc *config,
                          const struct ocra_image_desc *layers, size_t n_layers,
                          const json_t *annotations, struct ocra_err *err)
{
    json_t *m = NULL, *arr = json_array(), *d;
    char *out = NULL;

    if (annotations_ok(annotations, err) < 0)
        goto out;
    for (size_t i = 0; i < n_layers; i++) {
        if (!(d = desc_json(&layers[i], err))) {
            ocra_err_wrap(err, "layers[%zu]", i);
            goto out;
        }
        json_array_append_new(arr, d);
    }
    if (!(d = desc_json(config, err))) {
        ocra_err_wrap(err, "config");
        goto out;
    }
    m = json_pack("{s:i, s:s, s:o, s:O}", "schemaVersion", 2, "mediaType",
                  OCRA_IMAGE_MT_OCI_MANIFEST, "config", d, "layers", arr);
    if (annotations && json_object_size(annotations))
        json_object_set_new(m, "annotations", json_deep_copy(annotations));
    out = ocra_json_canonical(m);
out:
    json_decref(arr);
    json_decref(m);
    return out;
}

/* ---- image config ---------------------------------------------------------------------- */

static char *
rfc3339(int64_t t, char *out, size_t outsz)
{
    struct tm tm;
    time_t tt = (time_t)t;

    if (!gmtime_r(&tt, &tm) || strftime(out, outsz, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        out[0] = '\0';
    return out;
}

static json_t *
str_array(const char *const *v)
{
    json_t *a = json_array();

    for (; v && *v; v++)
        json_array_append_new(a, json_string(*v));
    return a;
}

/* Sets NAME=value entries over the base's Env, replacing the base's entry of the same NAME. */
static int
merge_env(json_t *cfg, const char *const *env, struct ocra_err *err)
{
    json_t *arr = json_object_get(cfg, "Env");

    if (!json_is_array(arr)) {
        arr = json_array();
        json_object_set_new(cfg, "Env", arr);
    }
    for (; env && *env; env++) {
        size_t n = strcspn(*env, "=");
        size_t i;
        json_t *v;

        if (n == 0 || !(*env)[n] || !ocra_utf8_valid(*env, strlen(*env)))
            return ocra_err_set(err, EINVAL, "Env entry is not NAME=value UTF-8");
        json_array_foreach(arr, i, v)
        {
            const char *s = json_string_value(v);

            if (s && strncmp(s, *env, n + 1) == 0)
                break;
        }
        if (i < json_array_size(arr))
            json_array_set_new(arr, i, json_string(*env));
        else
            json_array_append_new(arr, json_string(*env));
    }
    return 0;
}

static int
merge_config(json_t *cfg, const struct ocra_image_config_spec *s, struct ocra_err *err)
{
    const char *k;
    json_t *labels, *v;

    if (merge_env(cfg, s->env, err) < 0)
        return -1;
    if (s->entrypoint)
        json_object_set_new(cfg, "Entrypoint", str_array(s->entrypoint));
    if (s->cmd)
        json_object_set_new(cfg, "Cmd", str_array(s->cmd));
    if (s->working_dir)
        json_object_set_new(cfg, "WorkingDir", json_string(s->working_dir));
    if (s->user)
        json_object_set_new(cfg, "User", json_string(s->user));
    if (!s->labels)
        return 0;
    if (annotations_ok(s->labels, err) < 0)
        return ocra_err_wrap(err, "labels");
    labels = json_object_get(cfg, "Labels");
    if (!json_is_object(labels)) {
        labels = json_object();
        json_object_set_new(cfg, "Labels", labels);
    }
    json_object_foreach(unconst(s->labels), k, v) json_object_set(labels, k, v);
    return 0;
}

static int
merge_rootfs(json_t *img, const struct ocra_image_config_spec *s, const char *created,
             struct ocra_err *err)
{
    json_t *rootfs = json_object_get(img, "rootfs"), *ids, *hist;

    if (!json_is_object(rootfs)) {
        rootfs = json_object();
        json_object_set_new(img, "rootfs", rootfs);
    }
    json_object_set_new(rootfs, "type", json_string("layers"));
    ids = json_object_get(rootfs, "diff_ids");
    if (!json_is_array(ids)) {
        ids = json_array();
        json_object_set_new(rootfs, "diff_ids", ids);
    }
    hist = json_object_get(img, "history");
    if (!json_is_array(hist)) {
        hist = json_array();
        json_object_set_new(img, "history", hist);
    }
    for (size_t i = 0; s->diff_ids && s->diff_ids[i]; i++) {
        const char *by = s->created_by && s->created_by[i] ? s->created_by[i] : "ocra";

        if (!ocra_image_digest_valid(s->diff_ids[i]))
            return ocra_err_set(err, EINVAL, "diff_ids[%zu] is not sha256:<64 hex>", i);
        json_array_append_new(ids, json_string(s->diff_ids[i]));
        json_array_append_new(hist, json_pack("{s:s, s:s}", "created", created, "created_by", by));
    }
    return 0;
}

static json_t *
config_base(const struct ocra_image_config_spec *s, struct ocra_err *err)
{
    json_t *img = s->base ? json_deep_copy(s->base) : json_object(), *cfg;

    if (!json_is_object(img)) {
        json_decref(img);
        ocra_err_set(err, EPROTO, "base config is not an object");
        return NULL;
    }
    /* what described the base's build container says nothing about this image */
    json_object_del(img, "container");
    json_object_del(img, "container_config");
    json_object_del(img, "docker_version");
    cfg = json_object_get(img, "config");
    if (!json_is_object(cfg))
        json_object_set_new(img, "config", json_object());
    if (s->architecture || !ocra_json_str(img, "architecture"))
        json_object_set_new(img, "architecture",
                            json_string(s->architecture ? s->architecture : "amd64"));
    if (s->os || !ocra_json_str(img, "os"))
        json_object_set_new(img, "os", json_string(s->os ? s->os : "linux"));
    return img;
}

char *
ocra_image_config_build(const struct ocra_image_config_spec *spec, struct ocra_err *err)
{
    char created[32];
    json_t *img = config_base(spec, err);
    char *out = NULL;

    if (!img)
        goto out;
    rfc3339(spec->created, created, sizeof(created));
    json_object_set_new(img, "created", json_string(created));
    if (merge_config(json_object_get(img, "config"), spec, err) < 0 ||
        merge_rootfs(img, spec, created, err) < 0)
        goto out;
    out = ocra_json_canonical(img);
out:
    if (!out)
        ocra_err_wrap(err, "image config");
    json_decref(img);
    return out;
}
