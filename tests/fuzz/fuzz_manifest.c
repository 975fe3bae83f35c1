/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_manifest: image manifests come from registries, so from anyone. The parser must not
 * crash or leak; an accepted manifest has valid digests and sizes, and rebuilding it from
 * the parsed descriptors gives a document that parses to the same descriptors.
 */
#include "image/image.h"

#include <stdlib.h>
#include <string.h>

/* A fuzzing invariant: checked in every build (REQUIRE() would vanish under NDEBUG). */
#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
roundtrip(const struct ocra_image_manifest *m)
{
    struct ocra_image_manifest again = {0};
    struct ocra_err err = {0};
    char *doc = ocra_image_manifest_build(&m->config, m->layers, m->n_layers, m->annotations, &err);

    REQUIRE(doc);
    REQUIRE(ocra_image_manifest_parse(doc, strlen(doc), NULL, &again, &err) == 0);
    REQUIRE(again.n_layers == m->n_layers);
    REQUIRE(strcmp(again.config.digest, m->config.digest) == 0);
    for (size_t i = 0; i < m->n_layers; i++)
        REQUIRE(memcmp(&again.layers[i], &m->layers[i], sizeof(m->layers[i])) == 0);
    ocra_image_manifest_fini(&again);
    free(doc);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ocra_image_manifest m = {0};
    struct ocra_err err = {0};
    char *copy = ocra_xmalloc(size ? size : 1);

    memcpy(copy, data, size);
    if (ocra_image_manifest_parse(copy, size, NULL, &m, &err) == 0) {
        REQUIRE(ocra_image_digest_valid(m.config.digest) && m.config.size >= 0);
        for (size_t i = 0; i < m.n_layers; i++)
            REQUIRE(ocra_image_digest_valid(m.layers[i].digest) && m.layers[i].size >= 0);
        roundtrip(&m);
        ocra_image_manifest_fini(&m);
    }
    free(copy);
    return 0;
}
