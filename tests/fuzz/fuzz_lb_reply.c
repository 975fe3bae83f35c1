/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_lb_reply: HAProxy's Runtime API replies are outside input (an operator's HAProxy, any
 * version), and so is the frontends file in lb.dir. The first byte chooses the parser: 0 the
 * CSV of `show stat`, 1 the frontends file, 2 the success check of a server command. The
 * parsers must never read out of bounds, leak or crash, and what they return must hold to the
 * bounds their header promises.
 */
#include "lb/lb.h"

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
stat(const char *text, size_t len)
{
    struct ocra_lb_stat *rows = NULL;
    struct ocra_err err = {0};
    size_t n = 0;

    if (ocra_lb_stat_parse(text, len, &rows, &n, &err) < 0) {
        REQUIRE(err.code != 0 && err.msg[0]);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        REQUIRE(rows[i].section[0] && strlen(rows[i].section) < OCRA_LB_NAME_MAX);
        REQUIRE(rows[i].server[0] && strlen(rows[i].server) < OCRA_LB_NAME_MAX);
        REQUIRE(rows[i].qcur >= -1 && rows[i].scur >= -1 && rows[i].stot >= -1);
    }
    free(rows);
}

static void
frontends(const char *text)
{
    struct ocra_err err = {0};
    char **ids = NULL;
    int *ports = NULL;
    size_t n = 0;

    if (ocra_lb_frontends_parse(text, &ports, &ids, &n, &err) < 0)
        return;
    for (size_t i = 0; i < n; i++) {
        REQUIRE(ports[i] >= 1 && ports[i] <= 65535);
        REQUIRE(ids[i][0] && !strchr(ids[i], '\n'));
        free(ids[i]);
    }
    free(ids);
    free(ports);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text;

    if (size < 1)
        return 0;
    text = ocra_xmalloc(size); /* the bytes after the mode, NUL-terminated */
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    switch (data[0] % 3) {
    case 0:
        stat(text, size - 1);
        break;
    case 1:
        frontends(text);
        break;
    default:
        (void)ocra_lb_reply_failed(text);
    }
    free(text);
    return 0;
}
