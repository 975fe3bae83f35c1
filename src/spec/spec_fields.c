/* SPDX-License-Identifier: Apache-2.0 */
/*
 * spec_fields.c: the "artifact" and "workload" members of the model spec. The artifact is a
 * download the builder will fetch and verify, so its URI passes the operator's scheme policy
 * and its digest must be a sha256. The workload says how the model runs: type, size, dtype,
 * GPUs, replicas, an exec-form command and a port, with the documented defaults.
 */
#include "spec/spec_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const char *const artifact_keys[] = {"uri", "sha256", "size"};
static const char *const workload_keys[] = {
    "type", "params", "dtype", "gpus", "replicas", "command", "port", "maxDuration", "preemptible"};
static const char *const replicas_keys[] = {"min", "max"};

static const char *const type_names[] = {"inference", "training"};
static const char *const dtype_names[] = {"fp32", "fp16", "bf16", "fp8", "int8", "int4"};
static const unsigned dtype_bits[] = {32, 16, 16, 8, 8, 4};

const char *
ocra_spec_workload_type_name(enum ocra_spec_workload_type t)
{
    return (size_t)t < OCRA_ARRAY_LEN(type_names) ? type_names[t] : "?";
}

const char *
ocra_spec_dtype_name(enum ocra_spec_dtype d)
{
    return (size_t)d < OCRA_ARRAY_LEN(dtype_names) ? dtype_names[d] : "?";
}

unsigned
ocra_spec_dtype_bits(enum ocra_spec_dtype d)
{
    return (size_t)d < OCRA_ARRAY_LEN(dtype_bits) ? dtype_bits[d] : 0;
}

static void
read_uri(struct spec_vctx *v, const json_t *a, struct ocra_spec *s)
{
    const char *uri = NULL, *rule, *why = NULL;
    char esc[SPEC_ESC_SIZE];
    int r = spec_get_str(v, a, "artifact", "uri", OCRA_SPEC_MAX_URI, &uri);

    if (r == 0)
        spec_problem(v, "artifact.uri", "key.required", "is required");
    if (r <= 0)
        return;
    rule = spec_uri_check(uri, v->pol, &why);
    if (rule) {
        spec_problem(v, "artifact.uri", rule, "%s %s", spec_esc(uri, esc), why);
        return;
    }
    s->artifact.uri = ocra_xstrdup(uri);
}

static void
read_sha256(struct spec_vctx *v, const json_t *a, struct ocra_spec *s)
{
    const char *hex = NULL;
    char esc[SPEC_ESC_SIZE];
    int r = spec_get_str(v, a, "artifact", "sha256", 256, &hex);

    if (r == 0)
        spec_problem(v, "artifact.sha256", "key.required", "is required");
    if (r <= 0)
        return;
    if (!spec_sha256_valid(hex)) {
        spec_problem(v, "artifact.sha256", "sha256.hex", "%s is not 64 hex digits",
                     spec_esc(hex, esc));
        return;
    }
    /* either case is accepted; the canonical form is lowercase */
    for (size_t i = 0; i < 64; i++)
        s->artifact.sha256[i] =
            (hex[i] >= 'A' && hex[i] <= 'F') ? (char)(hex[i] - 'A' + 'a') : hex[i];
}

void
spec_read_artifact(struct spec_vctx *v, const json_t *doc, struct ocra_spec *s)
{
    const json_t *a = NULL;
    int64_t size = 0;

    if (spec_get_obj(v, doc, "", "artifact", &a) <= 0)
        return;
    spec_check_keys(v, a, "artifact", artifact_keys, OCRA_ARRAY_LEN(artifact_keys));
    read_uri(v, a, s);
    read_sha256(v, a, s);
    if (spec_get_int(v, a, "artifact", "size", 1, (int64_t)OCRA_SPEC_MAX_ARTIFACT_SIZE, &size) > 0)
        s->artifact.size = (uint64_t)size;
    s->artifact.present = true;
}

/* A string member that must be one of names[]; leaves *out alone when absent. */
static void
read_enum(struct spec_vctx *v, const json_t *w, const char *key, const char *const *names, size_t n,
          unsigned *out)
{
    const char *s = NULL;
    char field[128], esc[SPEC_ESC_SIZE];
    struct ocra_buf list;

    if (spec_get_str(v, w, "workload", key, 64, &s) <= 0)
        return;
    for (unsigned i = 0; i < n; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = i;
            return;
        }
    }
    spec_field(field, "workload", key);
    ocra_buf_init(&list);
    for (unsigned i = 0; i < n; i++)
        ocra_buf_printf(&list, "%s%s", i ? ", " : "", names[i]);
    spec_problem(v, field, "enum", "%s is not one of %s", spec_esc(s, esc), list.data);
    ocra_buf_fini(&list);
}

static void
read_replicas(struct spec_vctx *v, const json_t *w, struct ocra_spec_workload *wl)
{
    const json_t *r = NULL;
    int64_t min = 1, max = 0;
    int has_min, has_max;

    if (spec_get_obj(v, w, "workload", "replicas", &r) <= 0)
        return;
    spec_check_keys(v, r, "workload.replicas", replicas_keys, OCRA_ARRAY_LEN(replicas_keys));
    has_min = spec_get_int(v, r, "workload.replicas", "min", 0, OCRA_SPEC_MAX_REPLICAS, &min);
    has_max = spec_get_int(v, r, "workload.replicas", "max", 1, OCRA_SPEC_MAX_REPLICAS, &max);
    if (has_min < 0 || has_max < 0)
        return;
    if (!has_max) /* max defaults to min, and to 1 when min is 0 */
        max = min > 0 ? min : 1;
    if (min > max) {
        spec_problem(v, "workload.replicas", "replicas.order",
                     "min %" PRId64 " is greater than max %" PRId64, min, max);
        return;
    }
    wl->replicas_min = (unsigned)min;
    wl->replicas_max = (unsigned)max;
}

/* One argv entry; false after recording a problem. */
static bool
read_arg(struct spec_vctx *v, const json_t *arr, size_t i, struct ocra_spec_workload *wl)
{
    const json_t *e = json_array_get(arr, i);
    json_t *holder = json_object();
    const char *s = NULL;
    char key[32];
    bool ok;

    /* reuse the member reader (type, size, NUL) with "command[i]" as the field name */
    if (snprintf(key, sizeof(key), "command[%zu]", i) >= (int)sizeof(key))
        abort();
    json_object_set(holder, key, spec_unconst(e));
    ok = spec_get_str(v, holder, "workload", key, OCRA_SPEC_MAX_ARG, &s) > 0;
    if (ok && i == 0 && !*s) {
        spec_problem(v, "workload.command[0]", "string.empty", "the program name is empty");
        ok = false;
    }
    if (ok)
        wl->argv[wl->argc++] = ocra_xstrdup(s);
    json_decref(holder);
    return ok;
}

static void
read_command(struct spec_vctx *v, const json_t *w, struct ocra_spec_workload *wl)
{
    json_t *arr = NULL;
    size_t n;

    if (spec_get_list(v, w, "workload", "command", &arr) <= 0)
        return;
    n = json_array_size(arr);
    if (n == 0 || n > OCRA_SPEC_MAX_ARGC) {
        spec_problem(v, "workload.command", "list.size", "has %zu entries, expected 1..%d", n,
                     OCRA_SPEC_MAX_ARGC);
        goto out;
    }
    wl->argv = ocra_xcalloc(n, sizeof(*wl->argv));
    for (size_t i = 0; i < n; i++)
        read_arg(v, arr, i, wl);
out:
    json_decref(arr);
}

/* "90m": a count and one unit of s, m, h or d; 0 and *secs, or -1. */
static int
duration_parse(const char *s, int64_t *secs)
{
    static const char units[] = "smhd";
    static const int64_t mult[] = {1, 60, 3600, 86400};
    const char *u;
    int64_t n = 0;
    size_t i = 0;

    if (s[0] < '1' || s[0] > '9')
        return -1;
    for (; s[i] >= '0' && s[i] <= '9'; i++) {
        if (n > OCRA_SPEC_MAX_DURATION_S)
            return -1;
        n = n * 10 + (s[i] - '0');
    }
    if (!s[i] || s[i + 1] || !(u = strchr(units, s[i])))
        return -1;
    if (n > OCRA_SPEC_MAX_DURATION_S / mult[u - units])
        return -1;
    *secs = n * mult[u - units];
    return 0;
}

/* workload.maxDuration: seconds as an integer, or a string "90m", "2h", "1d". */
static void
read_max_duration(struct spec_vctx *v, const json_t *w, struct ocra_spec_workload *wl)
{
    const json_t *j = json_object_get(w, "maxDuration");
    char esc[SPEC_ESC_SIZE];
    int64_t secs = 0;

    if (!j)
        return;
    if (json_is_string(j)) {
        const char *s = NULL;

        if (spec_get_str(v, w, "workload", "maxDuration", 32, &s) <= 0)
            return;
        if (duration_parse(s, &secs) < 0) {
            spec_problem(v, "workload.maxDuration", "duration",
                         "%s is not a duration such as \"90m\", \"2h\" or \"1d\" (a count of "
                         "1 or more and one unit of s, m, h or d)",
                         spec_esc(s, esc));
            return;
        }
    } else if (spec_get_int(v, w, "workload", "maxDuration", 1, OCRA_SPEC_MAX_DURATION_S, &secs) <=
               0) {
        return;
    }
    if (secs < 1 || secs > OCRA_SPEC_MAX_DURATION_S) {
        spec_problem(v, "workload.maxDuration", "range", "%" PRId64 " s is outside 1..%d s", secs,
                     OCRA_SPEC_MAX_DURATION_S);
        return;
    }
    wl->max_duration_s = (uint64_t)secs;
}

void
spec_read_workload(struct spec_vctx *v, const json_t *doc, struct ocra_spec *s)
{
    struct ocra_spec_workload *wl = &s->workload;
    const json_t *w = NULL;
    unsigned type = OCRA_SPEC_INFERENCE, dtype = OCRA_SPEC_FP16;
    int64_t params = 0, gpus = 1, port = 0;

    wl->replicas_min = wl->replicas_max = 1;
    if (spec_get_obj(v, doc, "", "workload", &w) > 0) {
        spec_check_keys(v, w, "workload", workload_keys, OCRA_ARRAY_LEN(workload_keys));
        read_enum(v, w, "type", type_names, OCRA_ARRAY_LEN(type_names), &type);
        spec_get_int(v, w, "workload", "params", 1, (int64_t)OCRA_SPEC_MAX_PARAMS, &params);
        read_enum(v, w, "dtype", dtype_names, OCRA_ARRAY_LEN(dtype_names), &dtype);
        spec_get_int(v, w, "workload", "gpus", 0, OCRA_SPEC_MAX_GPUS, &gpus);
        read_replicas(v, w, wl);
        read_command(v, w, wl);
        spec_get_int(v, w, "workload", "port", 1, 65535, &port);
        read_max_duration(v, w, wl);
        spec_get_bool(v, w, "workload", "preemptible", &wl->preemptible);
    }
    wl->type = (enum ocra_spec_workload_type)type;
    wl->dtype = (enum ocra_spec_dtype)dtype;
    wl->params = (uint64_t)params;
    wl->gpus = (unsigned)gpus;
    wl->port = (unsigned)port;
}

json_t *
spec_workload_to_json(const struct ocra_spec_workload *w)
{
    json_t *j = json_object(), *r = json_object();

    json_object_set_new(j, "type", json_string(ocra_spec_workload_type_name(w->type)));
    if (w->params)
        json_object_set_new(j, "params", json_integer((json_int_t)w->params));
    json_object_set_new(j, "dtype", json_string(ocra_spec_dtype_name(w->dtype)));
    json_object_set_new(j, "gpus", json_integer(w->gpus));
    json_object_set_new(r, "min", json_integer(w->replicas_min));
    json_object_set_new(r, "max", json_integer(w->replicas_max));
    json_object_set_new(j, "replicas", r);
    if (w->argc) {
        json_t *cmd = json_array();

        for (size_t i = 0; i < w->argc; i++)
            json_array_append_new(cmd, json_string(w->argv[i]));
        json_object_set_new(j, "command", cmd);
    }
    if (w->port)
        json_object_set_new(j, "port", json_integer(w->port));
    if (w->max_duration_s)
        json_object_set_new(j, "maxDuration", json_integer((json_int_t)w->max_duration_s));
    if (w->preemptible)
        json_object_set_new(j, "preemptible", json_true());
    return j;
}
