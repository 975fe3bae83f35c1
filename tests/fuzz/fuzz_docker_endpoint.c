/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_docker_endpoint: an engine endpoint URL (inventory.nodes docker_host) is operator
 * input that reaches libcurl's URL API. The parser must never read out of bounds, leak or
 * crash, and what it accepts must hold to its header: a unix socket's absolute path, a tcp or
 * ssh host that is not empty, a port in 1..65535.
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
    struct ocra_image_docker_endpoint ep;
    struct ocra_err err = {0};
    char *url;

    if (size > 4096)
        return 0;
    url = malloc(size + 1);
    if (!url)
        return 0;
    memcpy(url, data, size);
    url[size] = '\0';
    if (ocra_image_docker_endpoint_parse(url, &ep, &err) == 0) {
        if (ep.scheme == OCRA_IMAGE_DOCKER_UNIX)
            REQUIRE(ep.socket[0] == '/');
        else
            REQUIRE(ep.host[0] && ep.port >= 1 && ep.port <= 65535);
    } else {
        REQUIRE(err.code && err.msg[0]);
    }
    free(url);
    return 0;
}
