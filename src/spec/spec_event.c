/* SPDX-License-Identifier: Apache-2.0 */
/*
 * spec_event.c: the two records ocra keeps by name (docs/SPEC.md). The blockchain event
 * (what the chain said: eventId, modelVersion, updatedTools, timestamp, and where it was said)
 * and the container image specification (what was built from it: imageId, baseImage,
 * aiModelVersion, toolsAndLibraries, createdAt, digest, tags, specHash). Both travel as JSON
 * (journal rows, OCI annotations, on-chain reports), so each has a to/from JSON pair; the
 * reader checks types, bounds and keys and fails with EINVAL naming the key.
 */
#include "spec/spec_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define TEXT_MAX 512 /* ids, hashes, addresses, refs */

static const char *const event_keys[] = {
    "eventId",   "modelVersion", "updatedTools", "timestamp", "chain",  "chainId", "blockNumber",
    "blockHash", "txHash",       "opIndex",      "logIndex",  "signer", "ref"};
static const char *const image_keys[] = {
    "imageId",   "baseImage", "aiModelVersion", "toolsAndLibraries",
    "createdAt", "digest",    "tags",           "specHash"};

void
ocra_spec_event_short_id(const char *event_id, char out[13])
{
    char hex[65];

    ocra_sha256_hex(event_id, strlen(event_id), hex);
    memcpy(out, hex, 12);
    out[12] = '\0';
}

/* ---- readers --------------------------------------------------------------------------- */

static int
check_keys(const json_t *j, const char *const *known, size_t n, struct ocra_err *err)
{
    const char *key;
    json_t *val;
    char esc[SPEC_ESC_SIZE];

    json_object_foreach(spec_unconst(j), key, val)
    {
        size_t i = 0;

        while (i < n && strcmp(key, known[i]) != 0)
            i++;
        if (i == n)
            return ocra_err_set(err, EINVAL, "unknown key %s", spec_esc(key, esc));
    }
    return 0;
}

/* Printable ASCII of 1..max bytes; *out a copy, or untouched when absent and optional. */
static int
get_text(const json_t *j, const char *key, size_t max, bool required, char **out,
         struct ocra_err *err)
{
    const json_t *m = json_object_get(j, key);
    const char *s = json_string_value(m);
    size_t n = json_string_length(m);

    if (!m && !required)
        return 0;
    if (!m)
        return ocra_err_set(err, EINVAL, "%s: is required", key);
    if (!s)
        return ocra_err_set(err, EINVAL, "%s: expected a string, got %s", key,
                            ocra_json_type_name(m));
    if (n == 0 || n > max || strlen(s) != n)
        return ocra_err_set(err, EINVAL, "%s: length %zu outside 1..%zu", key, n, max);
    for (size_t i = 0; i < n; i++)
        if (s[i] <= 0x20 || s[i] >= 0x7f)
            return ocra_err_set(err, EINVAL, "%s: not printable ASCII", key);
    *out = ocra_xstrdup(s);
    return 0;
}

static int
get_uint(const json_t *j, const char *key, bool required, int64_t max, int64_t *out,
         struct ocra_err *err)
{
    const json_t *m = json_object_get(j, key);

    if (!m && !required)
        return 0;
    if (!json_is_integer(m))
        return ocra_err_set(err, EINVAL, "%s: expected an integer, got %s", key,
                            m ? ocra_json_type_name(m) : "nothing");
    if (json_integer_value(m) < 0 || json_integer_value(m) > max)
        return ocra_err_set(err, EINVAL, "%s: %" JSON_INTEGER_FORMAT " is outside 0..%" PRId64, key,
                            json_integer_value(m), max);
    *out = json_integer_value(m);
    return 0;
}

static int
kv_cmp(const void *a, const void *b)
{
    return strcmp(((const struct ocra_spec_kv *)a)->key, ((const struct ocra_spec_kv *)b)->key);
}

/* A tool -> version object, sorted by tool name. */
static int
get_tools(const json_t *j, const char *key, struct ocra_spec_kv **out, size_t *n_out,
          struct ocra_err *err)
{
    const json_t *m = json_object_get(j, key);
    struct spec_tool_info info;
    const char *name;
    json_t *val;
    size_t n = 0;

    if (!m)
        return 0;
    if (!json_is_object(m) || json_object_size(m) > OCRA_SPEC_MAX_TOOLS)
        return ocra_err_set(err, EINVAL, "%s: expected an object of at most %d tools", key,
                            OCRA_SPEC_MAX_TOOLS);
    json_object_foreach(spec_unconst(m), name, val)
    {
        if (!spec_tool_lookup(name, &info) || !json_is_string(val) ||
            !ocra_spec_version_valid(json_string_value(val)))
            return ocra_err_set(err, EINVAL, "%s.%s: not a tool name and PEP 440 version", key,
                                name);
    }
    *out = ocra_xcalloc(json_object_size(m), sizeof(**out));
    json_object_foreach(spec_unconst(m), name, val)
    {
        (*out)[n].key = ocra_xstrdup(name);
        (*out)[n++].value = ocra_xstrdup(json_string_value(val));
    }
    qsort(*out, n, sizeof(**out), kv_cmp);
    *n_out = n;
    return 0;
}

static json_t *
tools_to_json(const struct ocra_spec_kv *kv, size_t n)
{
    json_t *j = json_object();

    for (size_t i = 0; i < n; i++)
        json_object_set_new(j, kv[i].key, json_string(kv[i].value));
    return j;
}

static void
kv_free(struct ocra_spec_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kv[i].key);
        free(kv[i].value);
    }
    free(kv);
}

static void
set_opt_str(json_t *j, const char *key, const char *val)
{
    if (val)
        json_object_set_new(j, key, json_string(val));
}

/* ---- the blockchain event -------------------------------------------------------------- */

json_t *
ocra_spec_event_to_json(const struct ocra_spec_event *ev)
{
    json_t *j = json_object();
    bool evm = ev->chain && strcmp(ev->chain, "evm") == 0;

    json_object_set_new(j, "eventId", json_string(ev->event_id));
    json_object_set_new(j, "modelVersion", json_string(ev->model_version));
    json_object_set_new(j, "updatedTools", tools_to_json(ev->updated_tools, ev->n_updated_tools));
    json_object_set_new(j, "timestamp", json_integer(ev->timestamp));
    json_object_set_new(j, "chain", json_string(ev->chain));
    json_object_set_new(j, "chainId", json_integer((json_int_t)ev->chain_id));
    json_object_set_new(j, "blockNumber", json_integer((json_int_t)ev->block_number));
    set_opt_str(j, "blockHash", ev->block_hash);
    set_opt_str(j, "txHash", ev->tx_hash);
    json_object_set_new(j, evm ? "logIndex" : "opIndex", json_integer((json_int_t)ev->index));
    set_opt_str(j, "signer", ev->signer);
    set_opt_str(j, "ref", ev->ref);
    return j;
}

static int
event_ids(const json_t *j, struct ocra_spec_event *ev, struct ocra_err *err)
{
    int64_t ts = 0, chain_id = 0, block = 0, idx = 0;
    bool evm;

    if (get_text(j, "eventId", TEXT_MAX, true, &ev->event_id, err) < 0 ||
        get_text(j, "chain", 16, true, &ev->chain, err) < 0)
        return -1;
    evm = strcmp(ev->chain, "evm") == 0;
    if (!evm && strcmp(ev->chain, "ain") != 0)
        return ocra_err_set(err, EINVAL, "chain: expected \"ain\" or \"evm\"");
    if (json_object_get(j, evm ? "opIndex" : "logIndex"))
        return ocra_err_set(err, EINVAL, "%s: not used on %s", evm ? "opIndex" : "logIndex",
                            ev->chain);
    if (get_uint(j, "timestamp", true, INT64_MAX, &ts, err) < 0 ||
        get_uint(j, "chainId", false, INT64_MAX, &chain_id, err) < 0 ||
        get_uint(j, "blockNumber", false, INT64_MAX, &block, err) < 0 ||
        get_uint(j, evm ? "logIndex" : "opIndex", false, UINT32_MAX, &idx, err) < 0)
        return -1;
    ev->timestamp = ts;
    ev->chain_id = (uint64_t)chain_id;
    ev->block_number = (uint64_t)block;
    ev->index = (uint64_t)idx;
    return 0;
}

int
ocra_spec_event_from_json(const json_t *j, struct ocra_spec_event **out, struct ocra_err *err)
{
    struct ocra_spec_event *ev = ocra_xcalloc(1, sizeof(*ev));

    if (!json_is_object(j)) {
        ocra_err_set(err, EINVAL, "event: expected an object");
        goto fail;
    }
    if (check_keys(j, event_keys, OCRA_ARRAY_LEN(event_keys), err) < 0 ||
        event_ids(j, ev, err) < 0 ||
        get_text(j, "modelVersion", OCRA_SPEC_MAX_VERSION, true, &ev->model_version, err) < 0 ||
        get_tools(j, "updatedTools", &ev->updated_tools, &ev->n_updated_tools, err) < 0 ||
        get_text(j, "blockHash", TEXT_MAX, false, &ev->block_hash, err) < 0 ||
        get_text(j, "txHash", TEXT_MAX, false, &ev->tx_hash, err) < 0 ||
        get_text(j, "signer", TEXT_MAX, false, &ev->signer, err) < 0 ||
        get_text(j, "ref", TEXT_MAX, false, &ev->ref, err) < 0)
        goto fail;
    if (!ocra_spec_version_valid(ev->model_version)) {
        ocra_err_set(err, EINVAL, "modelVersion: not a PEP 440 version");
        goto fail;
    }
    *out = ev;
    return 0;
fail:
    ocra_spec_event_free(ev);
    return -1;
}

void
ocra_spec_event_free(struct ocra_spec_event *ev)
{
    if (!ev)
        return;
    free(ev->event_id);
    free(ev->model_version);
    kv_free(ev->updated_tools, ev->n_updated_tools);
    free(ev->chain);
    free(ev->block_hash);
    free(ev->tx_hash);
    free(ev->signer);
    free(ev->ref);
    free(ev);
}

/* ---- the container image specification ------------------------------------------------ */

json_t *
ocra_spec_image_to_json(const struct ocra_spec_image *im)
{
    json_t *j = json_object(), *tags = json_array();

    json_object_set_new(j, "imageId", json_string(im->image_id));
    set_opt_str(j, "baseImage", im->base_image);
    json_object_set_new(j, "aiModelVersion", json_string(im->ai_model_version));
    json_object_set_new(j, "toolsAndLibraries", tools_to_json(im->tools, im->n_tools));
    json_object_set_new(j, "createdAt", json_integer(im->created_at));
    set_opt_str(j, "digest", im->digest);
    for (size_t i = 0; i < im->n_tags; i++)
        json_array_append_new(tags, json_string(im->tags[i]));
    json_object_set_new(j, "tags", tags);
    if (im->spec_hash[0])
        json_object_set_new(j, "specHash", json_string(im->spec_hash));
    return j;
}

static int
image_tags(const json_t *j, struct ocra_spec_image *im, struct ocra_err *err)
{
    const json_t *tags = json_object_get(j, "tags");
    size_t i;
    json_t *t;

    if (!tags)
        return 0;
    if (!json_is_array(tags) || json_array_size(tags) > 64)
        return ocra_err_set(err, EINVAL, "tags: expected an array of at most 64 strings");
    im->tags = ocra_xcalloc(json_array_size(tags) + 1, sizeof(*im->tags));
    json_array_foreach(tags, i, t)
    {
        const char *s = json_string_value(t);
        char *ref;
        bool ok;

        if (!s || strpbrk(s, "/@:"))
            return ocra_err_set(err, EINVAL, "tags[%zu]: not an image tag", i);
        ref = ocra_xasprintf("x:%s", s); /* the tag grammar, checked as part of a reference */
        ok = ocra_spec_image_ref_valid(ref);
        free(ref);
        if (!ok)
            return ocra_err_set(err, EINVAL, "tags[%zu]: not an image tag", i);
        im->tags[im->n_tags++] = ocra_xstrdup(s);
    }
    return 0;
}

/* digest and specHash: sha256:<64 lowercase hex> and <64 lowercase hex>. */
static int
image_hashes(const json_t *j, struct ocra_spec_image *im, struct ocra_err *err)
{
    const char *hash = NULL;

    if (get_text(j, "digest", TEXT_MAX, false, &im->digest, err) < 0)
        return -1;
    if (im->digest && (strncmp(im->digest, "sha256:", 7) != 0 ||
                       !spec_sha256_valid(im->digest + 7) || strpbrk(im->digest, "ABCDEF")))
        return ocra_err_set(err, EINVAL, "digest: expected sha256:<64 lowercase hex>");
    hash = ocra_json_str(j, "specHash");
    if (!hash && json_object_get(j, "specHash"))
        return ocra_err_set(err, EINVAL, "specHash: expected a string");
    if (!hash)
        return 0;
    if (!spec_sha256_valid(hash) || strpbrk(hash, "ABCDEF"))
        return ocra_err_set(err, EINVAL, "specHash: expected 64 lowercase hex");
    memcpy(im->spec_hash, hash, 65);
    return 0;
}

int
ocra_spec_image_from_json(const json_t *j, struct ocra_spec_image **out, struct ocra_err *err)
{
    struct ocra_spec_image *im = ocra_xcalloc(1, sizeof(*im));
    int64_t created = 0;

    if (!json_is_object(j)) {
        ocra_err_set(err, EINVAL, "image: expected an object");
        goto fail;
    }
    if (check_keys(j, image_keys, OCRA_ARRAY_LEN(image_keys), err) < 0 ||
        get_text(j, "imageId", TEXT_MAX, true, &im->image_id, err) < 0 ||
        get_text(j, "baseImage", TEXT_MAX, false, &im->base_image, err) < 0 ||
        get_text(j, "aiModelVersion", OCRA_SPEC_MAX_VERSION, true, &im->ai_model_version, err) <
            0 ||
        get_tools(j, "toolsAndLibraries", &im->tools, &im->n_tools, err) < 0 ||
        get_uint(j, "createdAt", true, INT64_MAX, &created, err) < 0 ||
        image_hashes(j, im, err) < 0 || image_tags(j, im, err) < 0)
        goto fail;
    if (!ocra_spec_version_valid(im->ai_model_version)) {
        ocra_err_set(err, EINVAL, "aiModelVersion: not a PEP 440 version");
        goto fail;
    }
    im->created_at = created;
    *out = im;
    return 0;
fail:
    ocra_spec_image_free(im);
    return -1;
}

void
ocra_spec_image_free(struct ocra_spec_image *im)
{
    if (!im)
        return;
    free(im->image_id);
    free(im->base_image);
    free(im->ai_model_version);
    kv_free(im->tools, im->n_tools);
    free(im->digest);
    for (size_t i = 0; i < im->n_tags; i++)
        free(im->tags[i]);
    free(im->tags);
    free(im);
}
