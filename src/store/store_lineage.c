/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_lineage.c: the journal's pipeline rows as JSON, shared by `ocra events`, `ocra
 * lineage` and the HTTP API's lineage (src/daemon/daemon_api.c): the pipeline row and the
 * event's runs.
 */
#include "store/store_int.h"

#include <string.h>

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
    json_object_set_new(o, "crashes", json_integer(p->crashes));
    if (p->version)
        json_object_set_new(o, "modelVersion", json_string(p->version));
    if (p->claimed_by)
        json_object_set_new(o, "claimedBy", json_string(p->claimed_by));
    if (p->last_error)
        json_object_set_new(o, "error", json_string(p->last_error));
    return o;
}

/* ---- runs (begin) */

/* A JSON text column as JSON (null when absent or unreadable). */
static json_t *
json_col(const char *text)
{
    json_t *j = text ? ocra_json_parse(text, strlen(text), 0, NULL) : NULL;

    return j ? j : json_null();
}

static json_t *
ms_or_null(int64_t ms)
{
    return ms ? json_integer(ms) : json_null();
}

static int
run_one(const struct ocra_store_run *r, void *arg)
{
    json_t *o = json_object();

    json_object_set_new(o, "id", json_string(r->id));
    json_object_set_new(o, "runner", json_string(r->runner));
    json_object_set_new(o, "node", r->node ? json_string(r->node) : json_null());
    json_object_set_new(o, "gpus", json_col(r->gpus));
    json_object_set_new(o, "state", json_string(r->state));
    json_object_set_new(o, "imageDigest", json_string(r->image_digest));
    json_object_set_new(o, "result", json_col(r->result));
    json_object_set_new(o, "createdMs", json_integer(r->created_ms));
    json_object_set_new(o, "startedMs", ms_or_null(r->started_ms));
    json_object_set_new(o, "finishedMs", ms_or_null(r->finished_ms));
    json_array_append_new(arg, o);
    return 0;
}

json_t *
ocra_store_runs_json(struct ocra_store *st, const char *event_id, struct ocra_err *err)
{
    json_t *a = json_array();

    if (ocra_store_run_list(st, event_id, run_one, a, err) < 0) {
        json_decref(a);
        return NULL;
    }
    return a;
}

/* ---- runs (end) */
