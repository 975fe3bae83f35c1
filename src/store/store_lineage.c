/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_lineage.c: the journal's pipeline rows as JSON, shared by `ocra events`, `ocra
 * lineage` and the HTTP API's lineage (src/daemon/daemon_api.c).
 */
#include "store/store_int.h"

json_t *
ocra_store_pipeline_to_json(const struct ocra_store_pipeline *p)
{
    json_t *o = json_object();

    json_object_set_new(o, "status", json_string(p->status));
    if (p->outcome)
        json_object_set_new(o, "outcome", json_string(p->outcome));
    json_object_set_new(o, "stage", p->stage ? json_string(p->stage) : json_null());
    json_object_set_new(o, "state", json_string(p->state));
    json_object_set_new(o, "attempts", json_integer(p->attempts));
    if (p->version)
        json_object_set_new(o, "modelVersion", json_string(p->version));
    if (p->claimed_by)
        json_object_set_new(o, "claimedBy", json_string(p->claimed_by));
    if (p->last_error)
        json_object_set_new(o, "error", json_string(p->last_error));
    return o;
}
