/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_api_host: the Host header of an HTTP request is hostile input. The parser must never
 * read or write out of bounds, and what it accepts must be a plain name: lowercase letters,
 * digits, dots, dashes, underscores, or an IPv6 literal's hex digits, colons and dots, that
 * fits the buffer.
 */
#include "api/api.h"

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
    char *header = ocra_xmalloc(size + 1), *out = ocra_xmalloc(64);

    memcpy(header, data, size);
    header[size] = '\0'; /* libmicrohttpd hands headers over as strings */
    if (ocra_api_host_name(header, out, 64)) {
        size_t n = strlen(out);

        REQUIRE(n > 0 && n < 64);
        REQUIRE(strspn(out, "abcdefghijklmnopqrstuvwxyz0123456789.-_:") == n);
        REQUIRE(!strchr(out, ':') || header[0] == '[');
    }
    free(header);
    free(out);
    return 0;
}
