/* SPDX-License-Identifier: Apache-2.0 */
/*
 * spec_int.h: what the files of src/spec share and nobody else sees. The validation context
 * that collects problems, the typed member readers built on it, and the lexical checks of
 * spec_lex.c (names, versions, tool names, URIs, image references, sha256).
 */
#ifndef OCRA_SPEC_INT_H
#define OCRA_SPEC_INT_H

#include "spec/spec.h"

/* Longest escaped value quoted in a problem message. */
#define SPEC_ESC_CHARS 48
#define SPEC_ESC_SIZE (SPEC_ESC_CHARS * 4 + 8)

/* Collects the problems of one document. */
struct spec_vctx {
    const struct ocra_spec_policy *pol;
    struct ocra_spec_problems *probs; /* may be NULL */
    size_t n;                         /* problems found, recorded or not */
    struct ocra_spec_problem first;
};

/* jansson's iteration and incref take json_t *, though they do not change the value. */
static inline json_t *
spec_unconst(const json_t *j)
{
    return (json_t *)(uintptr_t)j;
}

/* Records a problem; msg becomes "field: <fmt> (rule)". */
void spec_problem(struct spec_vctx *v, const char *field, const char *rule, const char *fmt, ...)
    OCRA_PRINTF(4, 5);
/* Quotes s for a message (escaped, cut after SPEC_ESC_CHARS bytes); returns buf. */
const char *spec_esc(const char *s, char buf[SPEC_ESC_SIZE]);
/* Writes "prefix.key" (or key when prefix is empty) into out[128], hostile bytes as '?'. */
void spec_field(char out[128], const char *prefix, const char *key);

/* Reports every key of obj not in known[] (key.unknown, with a did-you-mean). */
void spec_check_keys(struct spec_vctx *v, const json_t *obj, const char *prefix,
                     const char *const *known, size_t n_known);
/*
 * Typed member readers: 1 and *out when present and valid, 0 when absent, -1 when a problem
 * was recorded (type, string.size, range). Strings are borrowed from obj.
 */
int spec_get_str(struct spec_vctx *v, const json_t *obj, const char *prefix, const char *key,
                 size_t max, const char **out);
int spec_get_int(struct spec_vctx *v, const json_t *obj, const char *prefix, const char *key,
                 int64_t min, int64_t max, int64_t *out);
int spec_get_obj(struct spec_vctx *v, const json_t *obj, const char *prefix, const char *key,
                 const json_t **out);
int spec_get_bool(struct spec_vctx *v, const json_t *obj, const char *prefix, const char *key,
                  bool *out);
/* A string list as an array or an AIN index-keyed object; *out is a new reference. */
int spec_get_list(struct spec_vctx *v, const json_t *obj, const char *prefix, const char *key,
                  json_t **out);

/* The artifact and workload members (spec_fields.c). */
void spec_read_artifact(struct spec_vctx *v, const json_t *doc, struct ocra_spec *s);
void spec_read_workload(struct spec_vctx *v, const json_t *doc, struct ocra_spec *s);
json_t *spec_workload_to_json(const struct ocra_spec_workload *w);

/* Lexical checks (spec_lex.c). */
struct spec_tool_info {
    const char *package; /* known package, or NULL when the name is a PEP 508 name */
    bool system;
};
/* True when name is a known tool or a PEP 508 name; fills info. */
bool spec_tool_lookup(const char *name, struct spec_tool_info *info);
/* PEP 503 normalised form of a PEP 508 name; caller frees with free(). */
char *spec_pep503_normalise(const char *name);
/* NULL when uri is acceptable under pol, else the rule id; *why explains. */
const char *spec_uri_check(const char *uri, const struct ocra_spec_policy *pol, const char **why);
/* True when s is 64 hex digits of either case. */
bool spec_sha256_valid(const char *s);
/* True for an OCI path component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* of n bytes. */
bool spec_path_component(const char *s, size_t n);

#endif
