/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_docker_progress: the Docker engine's JSON progress stream (build, push, pull and load
 * output) is outside input, and it arrives in pieces of any size. The first two bytes choose
 * the size of the kept log and the chunking; the rest is the stream. The parser must never
 * read out of bounds, leak or crash; the log must stay within its bound, and the same bytes
 * fed in one piece must give the same verdict, image ID, digest, step, layers pulled and log.
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

static const char *
or_empty(const char *s)
{
    return s ? s : "";
}

static void
check(const struct ocra_image_docker_progress *p, size_t log_max)
{
    size_t len;
    bool truncated;
    const char *log = ocra_image_docker_progress_log(p, &len, &truncated);

    REQUIRE(len <= log_max && strlen(log) <= len);
    REQUIRE(!ocra_image_docker_progress_id(p) ||
            ocra_image_digest_valid(ocra_image_docker_progress_id(p)));
    REQUIRE(!ocra_image_docker_progress_digest(p) ||
            ocra_image_digest_valid(ocra_image_docker_progress_digest(p)));
    REQUIRE(!ocra_image_docker_progress_step(p) ||
            strncmp(ocra_image_docker_progress_step(p), "Step ", 5) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ocra_err e1 = {0}, e2 = {0};
    struct ocra_image_docker_progress *p, *whole;
    size_t log_max, off = 0, l1, l2;
    unsigned seed;
    char *copy;
    int r1 = 0, r2;

    if (size < 2)
        return 0;
    log_max = 16 + (size_t)data[0] * 8;
    seed = data[1];
    copy = ocra_xmalloc(size - 2 ? size - 2 : 1);
    memcpy(copy, data + 2, size - 2); /* exactly the stream's bytes: overreads show */
    p = ocra_image_docker_progress_new(log_max);
    while (off < size - 2 && r1 == 0) {
        size_t n = 1 + (seed % 97);

        seed = seed * 1103515245u + 12345u;
        if (n > size - 2 - off)
            n = size - 2 - off;
        r1 = ocra_image_docker_progress_feed(p, copy + off, n, &e1);
        off += n;
    }
    if (r1 == 0)
        r1 = ocra_image_docker_progress_end(p, &e1);
    check(p, log_max);
    whole = ocra_image_docker_progress_new(log_max);
    r2 = ocra_image_docker_progress_feed(whole, copy, size - 2, &e2);
    if (r2 == 0)
        r2 = ocra_image_docker_progress_end(whole, &e2);
    REQUIRE(r1 == r2 && e1.code == e2.code && strcmp(e1.msg, e2.msg) == 0);
    REQUIRE(strcmp(or_empty(ocra_image_docker_progress_id(p)),
                   or_empty(ocra_image_docker_progress_id(whole))) == 0);
    REQUIRE(strcmp(or_empty(ocra_image_docker_progress_digest(p)),
                   or_empty(ocra_image_docker_progress_digest(whole))) == 0);
    REQUIRE(strcmp(or_empty(ocra_image_docker_progress_step(p)),
                   or_empty(ocra_image_docker_progress_step(whole))) == 0);
    REQUIRE(ocra_image_docker_progress_pulled(p) >= 0 &&
            ocra_image_docker_progress_pulled(p) == ocra_image_docker_progress_pulled(whole));
    REQUIRE(strcmp(ocra_image_docker_progress_log(p, &l1, NULL),
                   ocra_image_docker_progress_log(whole, &l2, NULL)) == 0 &&
            l1 == l2);
    ocra_image_docker_progress_free(p);
    ocra_image_docker_progress_free(whole);
    free(copy);
    return 0;
}
