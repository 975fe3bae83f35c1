/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_run_containers: the Docker engine's container list (GET /containers/json) is outside
 * input; the runners' reap, the daemon's reconcile and `ocra nodes` act on what
 * ocra_run_containers_parse() makes of it. The parser must never read out of bounds, leak or
 * crash, and every container it returns must hold to the bounds run.h promises: a 64-hex id,
 * a printable event id that fits, a replica in range or -1, a runner and state that fit.
 */
#include "run/run.h"

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
    struct ocra_run_container *v = NULL;
    struct ocra_err err = {0};
    size_t n = 0;

    if (ocra_run_containers_parse((const char *)data, size, &v, &n, &err) < 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        const struct ocra_run_container *c = &v[i];

        REQUIRE(strlen(c->id) == 64 && ocra_hex_is(c->id, 64));
        REQUIRE(c->event_id[0] && strlen(c->event_id) <= OCRA_RUN_EVENT_MAX);
        for (const char *p = c->event_id; *p; p++)
            REQUIRE((unsigned char)*p >= 0x20 && *p != 0x7f);
        REQUIRE(c->replica >= -1 && c->replica < OCRA_RUN_MAX_REPLICAS);
        REQUIRE(strlen(c->runner) < sizeof(c->runner) && strlen(c->state) < sizeof(c->state));
        REQUIRE(strlen(c->name) < sizeof(c->name));
        REQUIRE(c->active == (strcmp(c->state, "exited") != 0 && strcmp(c->state, "dead") != 0));
    }
    free(v);
    return 0;
}
