/* SPDX-License-Identifier: Apache-2.0 */
/*
 * run.c: what every runner shares: freeing one through its interface, and the container
 * (or job) name derived from the event id and replica, the key that makes a start idempotent.
 */
#include "run/run.h"

#include <assert.h>
#include <stdio.h>

#include "spec/spec.h"

void
ocra_runner_free(struct ocra_runner *r)
{
    if (r && r->free)
        r->free(r);
}

void
ocra_run_container_name(const char *event_id, char out[OCRA_RUN_NAME_MAX])
{
    char short_id[13];

    ocra_spec_event_short_id(event_id, short_id);
    snprintf(out, OCRA_RUN_NAME_MAX, "ocra-%s", short_id);
}

void
ocra_run_replica_name(const char *event_id, int replica, char out[OCRA_RUN_NAME_MAX])
{
    char short_id[13];

    assert(replica >= 0 && replica < OCRA_RUN_MAX_REPLICAS);
    if (replica == 0) {
        ocra_run_container_name(event_id, out);
        return;
    }
    ocra_spec_event_short_id(event_id, short_id);
    snprintf(out, OCRA_RUN_NAME_MAX, "ocra-%s-r%d", short_id, replica);
}
