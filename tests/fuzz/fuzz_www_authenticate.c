/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_www_authenticate: a registry's WWW-Authenticate header is hostile input. The parser
 * must never read out of bounds, leak or crash, and what it accepts must hold its promises:
 * a scheme, and for bearer an http(s) realm.
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

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ocra_image_challenge c = {0};
    struct ocra_err err = {0};
    char *copy = ocra_xmalloc(size ? size : 1);

    memcpy(copy, data, size); /* exactly size bytes: overreads show under ASan */
    if (ocra_image_challenge_parse(copy, size, &c, &err) == 0) {
        REQUIRE(c.scheme == OCRA_IMAGE_AUTH_BASIC || c.scheme == OCRA_IMAGE_AUTH_BEARER);
        REQUIRE(c.scheme != OCRA_IMAGE_AUTH_BEARER ||
                (c.realm && strstr(c.realm, "http") == c.realm));
        ocra_image_challenge_fini(&c);
    } else {
        REQUIRE(err.code != 0 && c.realm == NULL);
    }
    free(copy);
    return 0;
}
