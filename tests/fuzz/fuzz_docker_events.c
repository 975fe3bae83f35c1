/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_docker_events: the Docker Engine's GET /events body (one JSON object per line) is
 * outside input to the workload supervisor. The parser must never read out of bounds, leak or
 * crash, and what it reports must hold to its header's bounds: a 64-hex container id, an event
 * id of 1..OCRA_RUN_EVENT_MAX bytes or none, a replica in -1..OCRA_RUN_MAX_REPLICAS-1.
 */
#include "run/run_int.h"

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
ended(void *arg, const char *job_id, const char *event_id, int replica)
{
    int *n = arg;

    REQUIRE(strlen(job_id) == 64 && ocra_hex_is(job_id, 64));
    REQUIRE(!event_id || (*event_id && strlen(event_id) <= OCRA_RUN_EVENT_MAX));
    REQUIRE(replica >= -1 && replica < OCRA_RUN_MAX_REPLICAS);
    (*n)++;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ocra_err err = {0};
    int n = 0, rc = ocra_run_docker_events_parse((const char *)data, size, ended, &n, &err);

    REQUIRE(rc == -1 || rc == n);
    return 0;
}
