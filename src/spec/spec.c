/* SPDX-License-Identifier: Apache-2.0 */
/*
 * spec.c: the model spec's entry points. Checks the raw document (size, UTF-8, JSON syntax,
 * duplicate keys), reads the top-level members into struct ocra_spec through the readers of
 * spec_read.c, and writes the normalised JSON form back out: defaults filled in, lists as
 * arrays, sha256 in lowercase. The canonical text of that form (sorted keys, compact) is what
 * the spec hash covers, so parse(canonical(x)) gives x again.
 */
#include "spec/spec_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const top_keys[] = {"name",      "modelVersion", "toolsAndLibraries",
                                       "baseImage", "artifact",     "workload"};

static int
tool_cmp(const void *a, const void *b)
{
    return strcmp(((const struct ocra_spec_tool *)a)->name,
                  ((const struct ocra_spec_tool *)b)->name);
}

/* Two spellings of one package ("PyTorch" and "torch") would leave the version ambiguous. */
static void
check_tool_duplicates(struct spec_vctx *v, const struct ocra_spec *s)
{
    for (size_t i = 0; i < s->n_tools; i++) {
        for (size_t k = 0; k < i; k++) {
            char field[128], esc[SPEC_ESC_SIZE];

            if (strcmp(s->tools[i].package, s->tools[k].package) != 0)
                continue;
            spec_field(field, "toolsAndLibraries", s->tools[i].name);
            spec_problem(v, field, "tool.duplicate", "%s names package \"%s\" again",
                         spec_esc(s->tools[i].name, esc), s->tools[i].package);
        }
    }
}

/* One "Name": "version" member; false after recording a problem. */
static bool
read_tool(struct spec_vctx *v, const json_t *tools, const char *key, struct ocra_spec_tool *t)
{
    struct spec_tool_info info;
    char field[128], esc[SPEC_ESC_SIZE];
    const char *ver = NULL;
    bool ok = true;

    spec_field(field, "toolsAndLibraries", key);
    if (strlen(key) > OCRA_SPEC_MAX_TOOL_NAME || !spec_tool_lookup(key, &info)) {
        spec_problem(v, field, "tool.name", "%s is neither a known tool nor a PEP 508 package name",
                     spec_esc(key, esc));
        ok = false;
    }
    if (spec_get_str(v, tools, "toolsAndLibraries", key, OCRA_SPEC_MAX_VERSION, &ver) < 0)
        return false;
    if (!ocra_spec_version_valid(ver)) {
        spec_problem(v, field, "version.pep440", "%s is not a PEP 440 version", spec_esc(ver, esc));
        return false;
    }
    if (!ok)
        return false;
    t->name = ocra_xstrdup(key);
    t->package = info.package ? ocra_xstrdup(info.package) : spec_pep503_normalise(key);
    t->version = ocra_xstrdup(ver);
    t->system = info.system;
    return true;
}

static void
read_tools(struct spec_vctx *v, const json_t *doc, struct ocra_spec *s)
{
    const json_t *tools = NULL;
    const char *key;
    json_t *val;
    size_t n;

    if (spec_get_obj(v, doc, "", "toolsAndLibraries", &tools) == 0)
        spec_problem(v, "toolsAndLibraries", "key.required", "is required");
    if (!tools)
        return;
    n = json_object_size(tools);
    if (n == 0 || n > OCRA_SPEC_MAX_TOOLS) {
        spec_problem(v, "toolsAndLibraries", "list.size", "has %zu entries, expected 1..%d", n,
                     OCRA_SPEC_MAX_TOOLS);
        return;
    }
    s->tools = ocra_xcalloc(n, sizeof(*s->tools));
    json_object_foreach(spec_unconst(tools), key, val)
    {
        if (read_tool(v, tools, key, &s->tools[s->n_tools]))
            s->n_tools++;
    }
    qsort(s->tools, s->n_tools, sizeof(*s->tools), tool_cmp);
    check_tool_duplicates(v, s);
}

static void
read_name(struct spec_vctx *v, const json_t *doc, struct ocra_spec *s)
{
    const char *name = NULL;
    char esc[SPEC_ESC_SIZE];
    int r = spec_get_str(v, doc, "", "name", OCRA_SPEC_MAX_NAME, &name);

    if (r < 0)
        return;
    if (r == 0 && v->pol && v->pol->default_name)
        name = v->pol->default_name;
    if (!name) {
        spec_problem(v, "name", "key.required", "is required (no default name for this source)");
        return;
    }
    if (!ocra_spec_name_valid(name)) {
        spec_problem(v, "name", "name.pattern",
                     "%s does not match [a-z0-9][a-z0-9._-]{0,127} as an image path component",
                     spec_esc(name, esc));
        return;
    }
    s->name = ocra_xstrdup(name);
}

static void
read_model_version(struct spec_vctx *v, const json_t *doc, struct ocra_spec *s)
{
    const char *ver = NULL;
    char esc[SPEC_ESC_SIZE];
    int r = spec_get_str(v, doc, "", "modelVersion", OCRA_SPEC_MAX_VERSION, &ver);

    if (r == 0)
        spec_problem(v, "modelVersion", "key.required", "is required");
    else if (r > 0 && !ocra_spec_version_valid(ver))
        spec_problem(v, "modelVersion", "version.pep440", "%s is not a PEP 440 version",
                     spec_esc(ver, esc));
    else if (r > 0)
        s->model_version = ocra_xstrdup(ver);
}

static void
read_base_image(struct spec_vctx *v, const json_t *doc, struct ocra_spec *s)
{
    const char *img = NULL;
    char esc[SPEC_ESC_SIZE];

    if (spec_get_str(v, doc, "", "baseImage", OCRA_SPEC_MAX_IMAGE_REF, &img) <= 0)
        return;
    if (!ocra_spec_image_ref_valid(img))
        spec_problem(v, "baseImage", "image.ref", "%s is not a docker image reference",
                     spec_esc(img, esc));
    else
        s->base_image = ocra_xstrdup(img);
}

/* Reads a tree into a spec; NULL when problems were recorded. */
static struct ocra_spec *
spec_build(struct spec_vctx *v, const json_t *doc)
{
    struct ocra_spec *s;

    if (!json_is_object(doc)) {
        spec_problem(v, "", "type", "is %s, expected an object", ocra_json_type_name(doc));
        return NULL;
    }
    s = ocra_xcalloc(1, sizeof(*s));
    spec_check_keys(v, doc, "", top_keys, OCRA_ARRAY_LEN(top_keys));
    read_name(v, doc, s);
    read_model_version(v, doc, s);
    read_tools(v, doc, s);
    read_base_image(v, doc, s);
    spec_read_artifact(v, doc, s);
    spec_read_workload(v, doc, s);
    if (v->n == 0)
        return s;
    ocra_spec_free(s);
    return NULL;
}

static int
spec_finish(struct spec_vctx *v, struct ocra_spec *s, struct ocra_spec **out, struct ocra_err *err)
{
    if (v->n == 0 && s) {
        *out = s;
        return 0;
    }
    ocra_spec_free(s);
    if (v->n == 0) /* cannot happen: every failure path records a problem */
        spec_problem(v, "", "doc.json", "invalid");
    return ocra_err_set(err, EINVAL, "%zu problem%s; first: %s", v->n, v->n == 1 ? "" : "s",
                        v->first.msg);
}

int
ocra_spec_from_json(const json_t *doc, const struct ocra_spec_policy *pol, struct ocra_spec **out,
                    struct ocra_spec_problems *probs, struct ocra_err *err)
{
    struct spec_vctx v = {.pol = pol, .probs = probs};
    struct ocra_spec *s = spec_build(&v, doc);

    return spec_finish(&v, s, out, err);
}

/* Size, encoding and syntax of the raw text; the tree, or NULL after recording a problem. */
static json_t *
parse_text(struct spec_vctx *v, const char *text, size_t len)
{
    struct ocra_err jerr = {0};
    json_t *doc, *loose;

    if (len > OCRA_SPEC_MAX_DOC) {
        spec_problem(v, "", "doc.size", "is %zu bytes, more than %d", len, OCRA_SPEC_MAX_DOC);
        return NULL;
    }
    if (!ocra_utf8_valid(text, len)) {
        spec_problem(v, "", "doc.utf8", "is not valid UTF-8");
        return NULL;
    }
    doc = ocra_json_parse(text, len, OCRA_JSON_STRICT, &jerr);
    if (doc)
        return doc;
    /* parses without the duplicate check: then a duplicate key was the only fault */
    loose = ocra_json_parse(text, len, 0, NULL);
    if (loose) {
        json_decref(loose);
        spec_problem(v, "", "key.duplicate", "%s", jerr.msg);
    } else {
        spec_problem(v, "", "doc.json", "is not JSON: %s", jerr.msg);
    }
    return NULL;
}

int
ocra_spec_parse(const char *text, size_t len, const struct ocra_spec_policy *pol,
                struct ocra_spec **out, struct ocra_spec_problems *probs, struct ocra_err *err)
{
    struct spec_vctx v = {.pol = pol, .probs = probs};
    struct ocra_spec *s = NULL;
    json_t *doc = parse_text(&v, text ? text : "", text ? len : 0);

    if (doc)
        s = spec_build(&v, doc);
    json_decref(doc);
    return spec_finish(&v, s, out, err);
}

void
ocra_spec_free(struct ocra_spec *s)
{
    if (!s)
        return;
    free(s->name);
    free(s->model_version);
    for (size_t i = 0; i < s->n_tools; i++) {
        free(s->tools[i].name);
        free(s->tools[i].package);
        free(s->tools[i].version);
    }
    free(s->tools);
    free(s->base_image);
    free(s->artifact.uri);
    for (size_t i = 0; i < s->workload.argc; i++)
        free(s->workload.argv[i]);
    free(s->workload.argv);
    free(s);
}

json_t *
ocra_spec_to_json(const struct ocra_spec *s)
{
    json_t *j = json_object(), *tools = json_object();

    json_object_set_new(j, "name", json_string(s->name));
    json_object_set_new(j, "modelVersion", json_string(s->model_version));
    for (size_t i = 0; i < s->n_tools; i++)
        json_object_set_new(tools, s->tools[i].name, json_string(s->tools[i].version));
    json_object_set_new(j, "toolsAndLibraries", tools);
    if (s->base_image)
        json_object_set_new(j, "baseImage", json_string(s->base_image));
    if (s->artifact.present) {
        json_t *a = json_object();

        json_object_set_new(a, "uri", json_string(s->artifact.uri));
        json_object_set_new(a, "sha256", json_string(s->artifact.sha256));
        if (s->artifact.size)
            json_object_set_new(a, "size", json_integer((json_int_t)s->artifact.size));
        json_object_set_new(j, "artifact", a);
    }
    json_object_set_new(j, "workload", spec_workload_to_json(&s->workload));
    return j;
}

char *
ocra_spec_canonical(const struct ocra_spec *s)
{
    json_t *j = ocra_spec_to_json(s);
    char *text = ocra_json_canonical(j);

    json_decref(j);
    return text;
}

void
ocra_spec_hash(const struct ocra_spec *s, char out[65])
{
    char *text = ocra_spec_canonical(s);

    ocra_sha256_hex(text, strlen(text), out);
    free(text);
}

const struct ocra_spec_tool *
ocra_spec_tool_find(const struct ocra_spec *s, const char *package)
{
    for (size_t i = 0; i < s->n_tools; i++)
        if (strcmp(s->tools[i].package, package) == 0)
            return &s->tools[i];
    return NULL;
}
