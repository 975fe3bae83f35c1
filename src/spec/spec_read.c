/* SPDX-License-Identifier: Apache-2.0 */
/*
 * spec_read.c: the validation context and the typed readers of JSON members. Every reader
 * records a problem that names the field, quotes the value (escaped, truncated) and gives a
 * stable rule id, then lets validation go on so that one pass reports everything. Lists come
 * either as JSON arrays or as AIN's index-keyed objects ({"0": .., "1": ..}), which become
 * arrays in numeric order.
 */
#include "spec/spec_int.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Formats into out[size], ending a cut text with "..." (messages are cut on purpose). */
static void format_cut(char *out, size_t size, const char *fmt, va_list ap) OCRA_PRINTF(3, 0);

static void
format_cut(char *out, size_t size, const char *fmt, va_list ap)
{
    int n = vsnprintf(out, size, fmt, ap);

    if (n < 0)
        out[0] = '\0';
    else if ((size_t)n >= size && size > 4)
        memcpy(out + size - 4, "...", 4);
}

static void
problem_fill(struct ocra_spec_problem *p, const char *field, const char *rule, const char *text)
{
    int n;

    memset(p, 0, sizeof(*p));
    spec_field(p->field, "", field);
    n = snprintf(p->rule, sizeof(p->rule), "%s", rule);
    if (n < 0 || (size_t)n >= sizeof(p->rule))
        abort(); /* rule ids are short literals */
    (void)snprintf(p->text, sizeof(p->text), "%s", text);
    n = snprintf(p->msg, sizeof(p->msg), "%s: %s (%s)", *field ? p->field : "document", text, rule);
    if (n < 0 || (size_t)n >= sizeof(p->msg))
        memcpy(p->msg + sizeof(p->msg) - 4, "...", 4);
}

void
spec_problem(struct spec_vctx *v, const char *field, const char *rule, const char *fmt, ...)
{
    struct ocra_spec_problem p;
    char text[sizeof(p.msg)];
    va_list ap;

    va_start(ap, fmt);
    format_cut(text, sizeof(text), fmt, ap);
    va_end(ap);
    problem_fill(&p, field, rule, text);
    if (v->n == 0)
        v->first = p;
    v->n++;
    if (!v->probs || v->probs->n >= OCRA_SPEC_MAX_PROBLEMS)
        return;
    v->probs->items = ocra_xrealloc(v->probs->items, (v->probs->n + 1) * sizeof(*v->probs->items));
    v->probs->items[v->probs->n++] = p;
}

void
ocra_spec_problems_fini(struct ocra_spec_problems *p)
{
    if (!p)
        return;
    free(p->items);
    p->items = NULL;
    p->n = 0;
}

const char *
spec_esc(const char *s, char buf[SPEC_ESC_SIZE])
{
    return ocra_str_escape(s, strlen(s), SPEC_ESC_CHARS, buf, SPEC_ESC_SIZE);
}

void
spec_field(char out[128], const char *prefix, const char *key)
{
    size_t o = 0;

    for (const char *p = prefix; *p && o < 127; p++)
        out[o++] = *p;
    if (*prefix && *key && o < 127)
        out[o++] = '.';
    for (const char *p = key; *p && o < 127; p++) {
        unsigned char c = (unsigned char)*p;

        /* keys are hostile: the field stays printable, the message quotes the real bytes */
        out[o++] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
    }
    out[o] = '\0';
}

void
spec_check_keys(struct spec_vctx *v, const json_t *obj, const char *prefix,
                const char *const *known, size_t n_known)
{
    const char *key;
    json_t *val;

    json_object_foreach(spec_unconst(obj), key, val)
    {
        const char *best;
        char field[128], esc[SPEC_ESC_SIZE];
        size_t i = 0;

        while (i < n_known && strcmp(key, known[i]) != 0)
            i++;
        if (i < n_known)
            continue;
        best = ocra_str_closest(key, known, n_known, 2); /* suggest only close matches */
        spec_field(field, prefix, key);
        if (best)
            spec_problem(v, field, "key.unknown", "unknown key %s; did you mean \"%s\"?",
                         spec_esc(key, esc), best);
        else
            spec_problem(v, field, "key.unknown", "unknown key %s", spec_esc(key, esc));
    }
}

static void
type_problem(struct spec_vctx *v, const char *field, const json_t *j, const char *want)
{
    char *text = ocra_json_compact(j), esc[SPEC_ESC_SIZE];

    spec_problem(v, field, "type", "expected %s, got %s %s", want, ocra_json_type_name(j),
                 spec_esc(text, esc));
    free(text);
}

int
spec_get_str(struct spec_vctx *v, const json_t *obj, const char *prefix, const char *key,
             size_t max, const char **out)
{
    const json_t *j = json_object_get(obj, key);
    char field[128], esc[SPEC_ESC_SIZE];
    const char *s;
    size_t n;

    if (!j)
        return 0;
    spec_field(field, prefix, key);
    if (!json_is_string(j)) {
        type_problem(v, field, j, "a string");
        return -1;
    }
    s = json_string_value(j);
    n = json_string_length(j);
    if (n > max) {
        spec_problem(v, field, "string.size", "%s is %zu bytes, more than %zu", spec_esc(s, esc), n,
                     max);
        return -1;
    }
    if (strlen(s) != n) {
        spec_problem(v, field, "string.nul", "%s contains a NUL byte", spec_esc(s, esc));
        return -1;
    }
    *out = s;
    return 1;
}

int
spec_get_int(struct spec_vctx *v, const json_t *obj, const char *prefix, const char *key,
             int64_t min, int64_t max, int64_t *out)
{
    const json_t *j = json_object_get(obj, key);
    char field[128];
    json_int_t i;

    if (!j)
        return 0;
    spec_field(field, prefix, key);
    if (!json_is_integer(j)) {
        type_problem(v, field, j, "an integer");
        return -1;
    }
    i = json_integer_value(j);
    if (i < min || i > max) {
        spec_problem(v, field, "range", "%" JSON_INTEGER_FORMAT " is outside %" PRId64 "..%" PRId64,
                     i, min, max);
        return -1;
    }
    *out = i;
    return 1;
}

int
spec_get_bool(struct spec_vctx *v, const json_t *obj, const char *prefix, const char *key,
              bool *out)
{
    const json_t *j = json_object_get(obj, key);
    char field[128];

    if (!j)
        return 0;
    if (!json_is_boolean(j)) {
        spec_field(field, prefix, key);
        type_problem(v, field, j, "true or false");
        return -1;
    }
    *out = json_is_true(j);
    return 1;
}

int
spec_get_obj(struct spec_vctx *v, const json_t *obj, const char *prefix, const char *key,
             const json_t **out)
{
    const json_t *j = json_object_get(obj, key);
    char field[128];

    if (!j)
        return 0;
    if (!json_is_object(j)) {
        spec_field(field, prefix, key);
        type_problem(v, field, j, "an object");
        return -1;
    }
    *out = j;
    return 1;
}

/* "0".."n-1" exactly: no sign, no leading zero, no gap; sets *idx. */
static bool
index_key(const char *key, size_t n, size_t *idx)
{
    uint64_t u;

    if (!key[0] || (key[0] == '0' && key[1]) || key[0] < '0' || key[0] > '9')
        return false;
    if (ocra_parse_u64(key, n ? n - 1 : 0, &u, NULL) < 0)
        return false;
    *idx = (size_t)u;
    return true;
}

/* AIN's {"0": a, "1": b} as [a, b]; NULL with *bad_key (borrowed) when a key is no index. */
static json_t *
index_list(const json_t *obj, const char **bad_key)
{
    size_t n = json_object_size(obj), idx = 0;
    json_t *arr = json_array(), *val;
    const char *key;

    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_null());
    json_object_foreach(spec_unconst(obj), key, val)
    {
        if (!index_key(key, n, &idx)) {
            *bad_key = key;
            json_decref(arr);
            return NULL;
        }
        json_array_set(arr, idx, val);
    }
    return arr;
}

/* AIN's {"0": a, "1": b} as [a, b]; NULL after recording list.index. */
static json_t *
list_from_object(struct spec_vctx *v, const json_t *obj, const char *field)
{
    const char *bad = NULL;
    json_t *arr = index_list(obj, &bad);
    char esc[SPEC_ESC_SIZE];
    size_t n = json_object_size(obj);

    if (!arr)
        spec_problem(v, field, "list.index",
                     "index-keyed list has key %s; keys must be exactly \"0\"..\"%zu\"",
                     spec_esc(bad, esc), n ? n - 1 : 0);
    return arr;
}

json_t *
ocra_spec_lists_as_arrays(const json_t *spec)
{
    json_t *out = json_deep_copy(spec);
    json_t *workload = json_object_get(out, "workload");
    json_t *command = json_object_get(workload, "command"), *arr;
    const char *bad = NULL;

    /* workload.command is the spec's one list (docs/SPEC.md) */
    if (json_is_object(command) && json_object_size(command) > 0 &&
        (arr = index_list(command, &bad)))
        json_object_set_new(workload, "command", arr);
    return out;
}

int
spec_get_list(struct spec_vctx *v, const json_t *obj, const char *prefix, const char *key,
              json_t **out)
{
    const json_t *j = json_object_get(obj, key);
    char field[128];

    if (!j)
        return 0;
    spec_field(field, prefix, key);
    if (json_is_array(j)) {
        *out = json_incref(spec_unconst(j));
        return 1;
    }
    if (!json_is_object(j)) {
        type_problem(v, field, j, "an array or an index-keyed object");
        return -1;
    }
    *out = list_from_object(v, j, field);
    return *out ? 1 : -1;
}
