/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.c: loading. The problem report, the generic walk that applies a key table to the
 * tree from config_yaml.c (nested mappings become dotted keys; unknown keys get a
 * did-you-mean), the typed conversions, and the public load, init and fini functions. A row
 * of config_table.c is all it takes to add a key; nothing here names a key.
 */
#include "config/config_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- problems -------------------------------------------------------------------------- */

/* Keys come from the file: show them as they are only when that cannot garble a line. */
static bool
key_is_plain(const char *key)
{
    size_t n = 0;

    for (const char *p = key; *p; p++, n++)
        if (*p < 0x21 || *p > 0x7e || *p == '"')
            return false;
    return n > 0 && n <= 120;
}

static void report_vadd(struct ocra_config_report *r, int line, const char *key, const char *fmt,
                        va_list ap) OCRA_PRINTF(4, 0);

static void
report_vadd(struct ocra_config_report *r, int line, const char *key, const char *fmt, va_list ap)
{
    char msg[512], esc[160];
    char *text;

    if (r->fatal)
        return; /* the problem that stopped loading is the last one worth reading */
    if (r->n == OCRA_CONFIG_MAX_PROBLEMS) {
        key = NULL;
        snprintf(msg, sizeof(msg), "too many problems; stopped here");
        r->fatal = true;
    } else {
        (void)vsnprintf(msg, sizeof(msg), fmt, ap); /* truncation is acceptable */
    }
    if (!key)
        text = ocra_xstrdup(msg);
    else if (key_is_plain(key))
        text = ocra_xasprintf("%s: %s", key, msg);
    else
        text =
            ocra_xasprintf("%s: %s", ocra_str_escape(key, strlen(key), 60, esc, sizeof(esc)), msg);
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 8;
        r->v = ocra_xrealloc(r->v, r->cap * sizeof(*r->v));
    }
    r->v[r->n] = (struct ocra_config_problem){line, (unsigned)r->n, text};
    r->n++;
}

void
ocra_config_report_add(struct ocra_config_report *r, int line, const char *key, const char *fmt,
                       ...)
{
    va_list ap;

    va_start(ap, fmt);
    report_vadd(r, line, key, fmt, ap);
    va_end(ap);
}

void
ocra_config_report_fatal(struct ocra_config_report *r, int line, const char *key, const char *fmt,
                         ...)
{
    va_list ap;

    va_start(ap, fmt);
    report_vadd(r, line, key, fmt, ap);
    va_end(ap);
    r->fatal = true;
}

static int
problem_cmp(const void *a, const void *b)
{
    const struct ocra_config_problem *x = a, *y = b;

    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void
ocra_config_report_take(struct ocra_config_report *r, struct ocra_config_problems *p)
{
    if (r->n)
        qsort(r->v, r->n, sizeof(*r->v), problem_cmp);
    p->lines = ocra_xcalloc(r->n ? r->n : 1, sizeof(*p->lines));
    p->n = r->n;
    for (size_t i = 0; i < r->n; i++) {
        if (r->v[i].line > 0)
            p->lines[i] = ocra_xasprintf("%s:%d: %s", r->name, r->v[i].line, r->v[i].text);
        else
            p->lines[i] = ocra_xasprintf("%s: %s", r->name, r->v[i].text);
    }
}

void
ocra_config_report_fini(struct ocra_config_report *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->v[i].text);
    free(r->v);
    r->v = NULL;
    r->n = r->cap = 0;
}

/* ---- typed fields ---------------------------------------------------------------------- */

static char **
str_at(void *base, const struct ocra_config_row *row)
{
    return (char **)((char *)base + row->off);
}

static char ***
list_at(void *base, const struct ocra_config_row *row)
{
    return (char ***)((char *)base + row->off);
}

static size_t *
count_at(void *base, const struct ocra_config_row *row)
{
    return (size_t *)((char *)base + row->count_off);
}

/* Sections are arrays of different struct types: move their pointer as bytes. */
static char *
sections_get(const void *base, const struct ocra_config_row *row)
{
    char *p;

    memcpy(&p, (const char *)base + row->off, sizeof(p));
    return p;
}

static void
sections_set(void *base, const struct ocra_config_row *row, char *p)
{
    memcpy((char *)base + row->off, &p, sizeof(p));
}

/* Enums are stored as int (config_table.c asserts they have int's size). */
static void
enum_set(void *base, const struct ocra_config_row *row, int v)
{
    memcpy((char *)base + row->off, &v, sizeof(v));
}

static int
enum_index(const struct ocra_config_row *row, const char *s)
{
    for (int i = 0; row->choices[i]; i++)
        if (!strcmp(row->choices[i], s))
            return i;
    return -1;
}

static bool
bool_parse(const char *s, bool *out)
{
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
        *out = true;
    else if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
        *out = false;
    else
        return false;
    return true;
}

static void
free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void
row_default(const struct ocra_config_row *row, void *base)
{
    bool b = false;
    int64_t v = 0;

    switch (row->type) {
    case OCRA_CONFIG_STRING:
    case OCRA_CONFIG_PATH:
    case OCRA_CONFIG_SECRET:
        *str_at(base, row) = ocra_xstrdup(row->def ? row->def : "");
        break;
    case OCRA_CONFIG_INT:
        if (ocra_parse_i64(row->def, row->min, row->max, &v, NULL) < 0)
            abort(); /* a default outside its own bounds: the table is wrong */
        *(int64_t *)((char *)base + row->off) = v;
        break;
    case OCRA_CONFIG_BOOL:
        if (!bool_parse(row->def, &b))
            abort();
        *(bool *)((char *)base + row->off) = b;
        break;
    case OCRA_CONFIG_ENUM:
        if (enum_index(row, row->def) < 0)
            abort();
        enum_set(base, row, enum_index(row, row->def));
        break;
    case OCRA_CONFIG_LIST:
    case OCRA_CONFIG_SECTIONS:
        break; /* empty: the struct was zeroed */
    }
}

void
ocra_config_rows_init(const struct ocra_config_row *rows, size_t n, void *base)
{
    for (size_t i = 0; i < n; i++)
        row_default(&rows[i], base);
}

void
ocra_config_rows_fini(const struct ocra_config_row *rows, size_t n, void *base)
{
    for (size_t i = 0; i < n; i++) {
        const struct ocra_config_row *row = &rows[i];
        char *elems;

        switch (row->type) {
        case OCRA_CONFIG_STRING:
        case OCRA_CONFIG_PATH:
        case OCRA_CONFIG_SECRET:
            free(*str_at(base, row));
            *str_at(base, row) = NULL;
            break;
        case OCRA_CONFIG_LIST:
            free_strv(*list_at(base, row), *count_at(base, row));
            *list_at(base, row) = NULL;
            *count_at(base, row) = 0;
            break;
        case OCRA_CONFIG_SECTIONS:
            elems = sections_get(base, row);
            for (size_t j = 0; j < *count_at(base, row); j++)
                ocra_config_rows_fini(row->sub, row->n_sub, elems + j * row->elem_size);
            free(elems);
            sections_set(base, row, NULL);
            *count_at(base, row) = 0;
            break;
        default:
            break;
        }
    }
}

void
ocra_config_bounds(const struct ocra_config_row *row, char *out, size_t outsz)
{
    out[0] = '\0';
    if (row->type != OCRA_CONFIG_INT)
        return;
    if (row->min != INT64_MIN && row->max != INT64_MAX)
        snprintf(out, outsz, "[%" PRId64 ", %" PRId64 "]", row->min, row->max);
    else if (row->min != INT64_MIN)
        snprintf(out, outsz, ">= %" PRId64, row->min);
    else if (row->max != INT64_MAX)
        snprintf(out, outsz, "<= %" PRId64, row->max);
}

const char *
ocra_config_type_name(const struct ocra_config_row *row)
{
    static const char *const names[] = {
        [OCRA_CONFIG_STRING] = "string",        [OCRA_CONFIG_PATH] = "path",
        [OCRA_CONFIG_SECRET] = "secret file",   [OCRA_CONFIG_INT] = "integer",
        [OCRA_CONFIG_BOOL] = "boolean",         [OCRA_CONFIG_ENUM] = "enum",
        [OCRA_CONFIG_LIST] = "list of strings", [OCRA_CONFIG_SECTIONS] = "list of mappings",
    };

    return row->type_name ? row->type_name : names[row->type];
}

/* ---- applying a tree ------------------------------------------------------------------- */

struct apply {
    const struct ocra_config_tree *t;
    struct ocra_config_report *r;
};

static const struct ocra_config_meta *
meta_of(const struct apply *a, const json_t *node)
{
    static const struct ocra_config_meta none = {NULL, 0, 0, false};
    const struct ocra_config_meta *m = ocra_config_tree_meta(a->t, node);

    return m ? m : &none;
}

static bool
is_null(const struct apply *a, const json_t *node)
{
    const char *s = json_string_value(node);

    return s && meta_of(a, node)->plain &&
           (!*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
            !strcmp(s, "NULL"));
}

/* What a row (or, with item, each of its list items) accepts, for "want ..." messages. */
static void
describe_want(const struct ocra_config_row *row, bool item, char *out, size_t outsz)
{
    char bounds[64];

    if (row->want && (item || row->type != OCRA_CONFIG_LIST)) {
        snprintf(out, outsz, "%s", row->want);
        return;
    }
    switch (row->type) {
    case OCRA_CONFIG_INT:
        ocra_config_bounds(row, bounds, sizeof(bounds));
        snprintf(out, outsz, "an integer%s%s",
                 bounds[0] == '[' ? " in "
                 : bounds[0]      ? " "
                                  : "",
                 bounds);
        break;
    case OCRA_CONFIG_BOOL:
        snprintf(out, outsz, "true or false");
        break;
    case OCRA_CONFIG_ENUM:
        snprintf(out, outsz, "one of ");
        for (int i = 0; row->choices[i]; i++)
            snprintf(out + strlen(out), outsz - strlen(out), "%s%s", i ? ", " : "",
                     row->choices[i]);
        break;
    case OCRA_CONFIG_LIST:
        snprintf(out, outsz, item ? "a string" : "a list of strings");
        break;
    case OCRA_CONFIG_SECTIONS:
        snprintf(out, outsz, item ? "a mapping" : "a list of mappings");
        break;
    default:
        snprintf(out, outsz, "a string");
        break;
    }
}

/* Reports "name: want W, got G" at the node's line. */
static void
bad_value(struct apply *a, const struct ocra_config_row *row, bool item, const char *name,
          const json_t *node)
{
    const struct ocra_config_meta *m = meta_of(a, node);
    const char *s = json_string_value(node);
    char want[256], got[160], esc[80];

    describe_want(row, item, want, sizeof(want));
    if (!s)
        snprintf(got, sizeof(got), "%s", json_is_object(node) ? "a mapping" : "a list");
    else if (!m->plain && (row->type == OCRA_CONFIG_INT || row->type == OCRA_CONFIG_BOOL))
        snprintf(got, sizeof(got), "the quoted string %s",
                 ocra_str_escape(s, strlen(s), 60, esc, sizeof(esc)));
    else
        ocra_str_escape(s, strlen(s), 60, got, sizeof(got));
    ocra_config_report_add(a->r, item ? m->line : m->key_line, name, "want %s, got %s", want, got);
}

static void walk(struct apply *a, const struct ocra_config_row *rows, size_t n, json_t *obj,
                 const char *prefix, const char *disp, void *base, int *seen);

static void
set_string(struct apply *a, const struct ocra_config_row *row, const json_t *node, const char *name,
           void *base)
{
    const char *s = json_string_value(node);

    if (!s || (row->check && !row->check(s))) {
        bad_value(a, row, false, name, node);
        return;
    }
    free(*str_at(base, row));
    *str_at(base, row) = ocra_xstrdup(s);
}

static void
set_scalar(struct apply *a, const struct ocra_config_row *row, const json_t *node, const char *name,
           void *base)
{
    const char *s = json_string_value(node);
    bool plain = meta_of(a, node)->plain, b = false;
    int64_t v = 0;

    if (row->type == OCRA_CONFIG_INT) {
        if (!s || !plain || ocra_parse_i64(s, row->min, row->max, &v, NULL) < 0)
            bad_value(a, row, false, name, node);
        else
            *(int64_t *)((char *)base + row->off) = v;
    } else if (row->type == OCRA_CONFIG_BOOL) {
        if (!s || !plain || !bool_parse(s, &b))
            bad_value(a, row, false, name, node);
        else
            *(bool *)((char *)base + row->off) = b;
    } else {
        if (!s || enum_index(row, s) < 0)
            bad_value(a, row, false, name, node);
        else
            enum_set(base, row, enum_index(row, s));
    }
}

/* A list replaces the default; its valid items are kept even when others are reported. */
static void
set_list(struct apply *a, const struct ocra_config_row *row, const json_t *node, const char *name,
         void *base)
{
    size_t n = json_array_size(node), k = 0;
    char **items;

    if (!json_is_array(node)) {
        bad_value(a, row, false, name, node);
        return;
    }
    items = ocra_xcalloc(n ? n : 1, sizeof(*items));
    for (size_t i = 0; i < n; i++) {
        const json_t *it = json_array_get(node, i);
        const char *s = json_string_value(it);
        char *item_name;

        if (s && (!row->check || row->check(s))) {
            items[k++] = ocra_xstrdup(s);
            continue;
        }
        item_name = ocra_xasprintf("%s[%zu]", name, i);
        bad_value(a, row, true, item_name, it);
        free(item_name);
    }
    free_strv(*list_at(base, row), *count_at(base, row));
    *list_at(base, row) = items;
    *count_at(base, row) = k;
}

/* Required keys of a section must be present and not empty. */
static void
check_required(struct apply *a, const struct ocra_config_row *row, const char *name, int line,
               const int *seen)
{
    for (size_t i = 0; i < row->n_sub; i++) {
        const struct ocra_config_row *sub = &row->sub[i];
        char *key;

        if (!sub->required || seen[i]) /* present: apply_row checked it */
            continue;
        key = ocra_xasprintf("%s.%s", name, sub->key);
        ocra_config_report_add(a->r, line, key, "required key is missing");
        free(key);
    }
}

static void
set_sections(struct apply *a, const struct ocra_config_row *row, const json_t *node,
             const char *name, void *base)
{
    size_t n = json_array_size(node), k = 0;
    int *seen = ocra_xcalloc(row->n_sub, sizeof(*seen));
    char *elems;

    if (!json_is_array(node)) {
        bad_value(a, row, false, name, node);
        free(seen);
        return;
    }
    elems = ocra_xcalloc(n ? n : 1, row->elem_size);
    for (size_t i = 0; i < n && !a->r->fatal; i++) {
        json_t *it = json_array_get(node, i);
        char *elem_name = ocra_xasprintf("%s[%zu]", name, i);
        char *elem = elems + k * row->elem_size;

        if (!json_is_object(it)) {
            bad_value(a, row, true, elem_name, it);
        } else {
            memset(seen, 0, row->n_sub * sizeof(*seen));
            ocra_config_rows_init(row->sub, row->n_sub, elem);
            walk(a, row->sub, row->n_sub, it, NULL, elem_name, elem, seen);
            check_required(a, row, elem_name, meta_of(a, it)->line, seen);
            k++;
        }
        free(elem_name);
    }
    free(seen);
    ocra_config_rows_fini(row, 1, base);
    sections_set(base, row, elems);
    *count_at(base, row) = k;
}

static void
apply_row(struct apply *a, const struct ocra_config_row *row, const json_t *node, const char *name,
          void *base)
{
    if (is_null(a, node)) {
        /* `key:` with no value, `~` or `null`: the default stays, if there is one */
        if (row->required)
            ocra_config_report_add(a->r, meta_of(a, node)->key_line, name, "required key is empty");
        return;
    }
    switch (row->type) {
    case OCRA_CONFIG_STRING:
    case OCRA_CONFIG_PATH:
    case OCRA_CONFIG_SECRET:
        set_string(a, row, node, name, base);
        break;
    case OCRA_CONFIG_INT:
    case OCRA_CONFIG_BOOL:
    case OCRA_CONFIG_ENUM:
        set_scalar(a, row, node, name, base);
        break;
    case OCRA_CONFIG_LIST:
        set_list(a, row, node, name, base);
        break;
    case OCRA_CONFIG_SECTIONS:
        set_sections(a, row, node, name, base);
        break;
    }
}

static const struct ocra_config_row *
find_row(const struct ocra_config_row *rows, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(rows[i].key, key))
            return &rows[i];
    return NULL;
}

/* True when key is a section of the table: some row's key starts with "key.". */
static bool
is_section(const struct ocra_config_row *rows, size_t n, const char *key)
{
    size_t len = strlen(key);

    for (size_t i = 0; i < n; i++)
        if (!strncmp(rows[i].key, key, len) && rows[i].key[len] == '.')
            return true;
    return false;
}

/* The closest key or section name to key, when close enough to be a likely typo. */
static const char *
suggest(const struct ocra_config_row *rows, size_t n, const char *key, char *buf, size_t bufsz)
{
    size_t limit = strlen(key) / 3 > 2 ? strlen(key) / 3 : 2;
    unsigned best = 255;

    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const char *k = rows[i].key;

        for (size_t j = 0;; j++) {
            char cand[128];
            unsigned d;

            if (k[j] != '.' && k[j] != '\0')
                continue;
            snprintf(cand, sizeof(cand), "%.*s", (int)j, k);
            d = ocra_str_distance(key, cand);
            if (d < best && d <= limit) {
                best = d;
                snprintf(buf, bufsz, "%s", cand);
            }
            if (k[j] == '\0')
                break;
        }
    }
    return buf[0] ? buf : NULL;
}

static void
unknown_key(struct apply *a, const struct ocra_config_row *rows, size_t n, const char *key,
            const char *name, int line)
{
    char buf[128];
    const char *near = suggest(rows, n, key, buf, sizeof(buf));

    if (near)
        ocra_config_report_add(a->r, line, name, "unknown key (did you mean %s?)", near);
    else
        ocra_config_report_add(a->r, line, name, "unknown key");
}

/* One member of a mapping: a key of the table, a section to descend into, or unknown. */
static void
walk_member(struct apply *a, const struct ocra_config_row *rows, size_t n, const char *key,
            json_t *v, const char *disp, void *base, int *seen)
{
    char *name = disp ? ocra_xasprintf("%s.%s", disp, key) : ocra_xstrdup(key);
    const struct ocra_config_row *row = find_row(rows, n, key);
    int line = meta_of(a, v)->key_line;

    if (row && seen[row - rows]) {
        ocra_config_report_add(a->r, line, name, "duplicate key (first on line %d)",
                               seen[row - rows]);
    } else if (row) {
        seen[row - rows] = line;
        apply_row(a, row, v, name, base);
    } else if (is_section(rows, n, key)) {
        if (json_is_object(v))
            walk(a, rows, n, v, key, disp, base, seen);
        else if (!is_null(a, v))
            ocra_config_report_add(a->r, line, name, "want a mapping, got %s",
                                   json_is_array(v) ? "a list" : "a scalar");
    } else {
        unknown_key(a, rows, n, key, name, line);
    }
    free(name);
}

static void
walk(struct apply *a, const struct ocra_config_row *rows, size_t n, json_t *obj, const char *prefix,
     const char *disp, void *base, int *seen)
{
    const char *k;
    json_t *v;

    json_object_foreach(obj, k, v)
    {
        char *key = prefix ? ocra_xasprintf("%s.%s", prefix, k) : ocra_xstrdup(k);

        if (!a->r->fatal)
            walk_member(a, rows, n, key, v, disp, base, seen);
        free(key);
    }
}

static void
resolve_paths(const struct ocra_config_row *rows, size_t n, void *base, const char *dir)
{
    if (!dir || !*dir || !strcmp(dir, "."))
        return;
    for (size_t i = 0; i < n; i++) {
        const struct ocra_config_row *row = &rows[i];
        char **p = str_at(base, row), *abs;

        if (row->type == OCRA_CONFIG_SECTIONS) {
            char *elems = sections_get(base, row);

            for (size_t j = 0; j < *count_at(base, row); j++)
                resolve_paths(row->sub, row->n_sub, elems + j * row->elem_size, dir);
        }
        if ((row->type != OCRA_CONFIG_PATH && row->type != OCRA_CONFIG_SECRET) || !**p ||
            **p == '/')
            continue;
        abs = ocra_xasprintf("%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", *p);
        free(*p);
        *p = abs;
    }
}

void
ocra_config_rows_apply(const struct ocra_config_row *rows, size_t n,
                       const struct ocra_config_tree *t, const char *base_dir, void *base,
                       struct ocra_config_report *r)
{
    struct apply a = {t, r};
    int *seen = ocra_xcalloc(n ? n : 1, sizeof(*seen));

    walk(&a, rows, n, t->root, NULL, NULL, base, seen);
    free(seen);
    resolve_paths(rows, n, base, base_dir);
}

/* ---- the public API -------------------------------------------------------------------- */

void
ocra_config_init(struct ocra_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    ocra_config_rows_init(ocra_config_rows, ocra_config_n_rows, cfg);
}

void
ocra_config_fini(struct ocra_config *cfg)
{
    ocra_config_rows_fini(ocra_config_rows, ocra_config_n_rows, cfg);
    free(cfg->path);
    memset(cfg, 0, sizeof(*cfg));
}

void
ocra_config_problems_fini(struct ocra_config_problems *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        free(p->lines[i]);
    free(p->lines);
    p->lines = NULL;
    p->n = 0;
}

int
ocra_config_load_text(const char *name, const char *base_dir, const char *text, size_t len,
                      struct ocra_config *cfg, struct ocra_config_problems *probs,
                      struct ocra_err *err)
{
    struct ocra_config_report rep = {.name = name};
    struct ocra_config_tree tree;
    int ret = -1;

    ocra_config_init(cfg);
    if (probs)
        *probs = (struct ocra_config_problems){NULL, 0};
    if (len > OCRA_CONFIG_MAX_BYTES)
        return ocra_err_set(err, EFBIG, "%s: larger than %u bytes", name, OCRA_CONFIG_MAX_BYTES);
    if (ocra_config_tree_read(&tree, text, len, &rep) == 0)
        ocra_config_rows_apply(ocra_config_rows, ocra_config_n_rows, &tree, base_dir, cfg, &rep);
    if (rep.n) {
        ocra_err_set(err, EINVAL, "%zu problem%s in %s", rep.n, rep.n == 1 ? "" : "s", name);
        if (probs)
            ocra_config_report_take(&rep, probs);
        ocra_config_fini(cfg);
        ocra_config_init(cfg);
        goto out;
    }
    cfg->path = ocra_xstrdup(name);
    ret = 0;
out:
    ocra_config_tree_fini(&tree);
    ocra_config_report_fini(&rep);
    return ret;
}

int
ocra_config_load(const char *path, struct ocra_config *cfg, struct ocra_config_problems *probs,
                 struct ocra_err *err)
{
    const char *slash = strrchr(path, '/');
    char *text = NULL, *dir = NULL;
    size_t len = 0;
    int ret = -1;

    if (ocra_file_read(path, OCRA_CONFIG_MAX_BYTES, &text, &len, err) < 0) {
        ocra_config_init(cfg);
        if (probs)
            *probs = (struct ocra_config_problems){NULL, 0};
        goto out;
    }
    /* Relative paths in the file resolve against its directory, made absolute here: the
     * daemon hands them to Docker mounts and socket servers, which need absolute paths, and
     * `-c ocra.yaml` (no slash) must mean the file's directory as much as `-c ./ocra.yaml`. */
    dir = slash == path ? ocra_xstrdup("/")
          : slash       ? ocra_xstrndup(path, (size_t)(slash - path))
                        : ocra_xstrdup(".");
    if (dir[0] != '/') {
        char *abs = realpath(dir, NULL);

        if (abs) {
            free(dir);
            dir = abs;
        }
    }
    ret = ocra_config_load_text(path, dir, text, len, cfg, probs, err);
out:
    free(dir);
    free(text);
    return ret;
}

const char *
ocra_config_docker_socket(const struct ocra_config *cfg)
{
    /* the table's check admits only "" or "unix:///absolute/path" */
    return *cfg->run.docker_host ? cfg->run.docker_host + strlen("unix://") : NULL;
}
