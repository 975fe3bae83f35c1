/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_yaml.c: libyaml's event stream into a JSON tree plus a side table of lines. Only
 * the plain subset of YAML that a configuration needs is accepted: one document whose top
 * level is a mapping, at most OCRA_CONFIG_MAX_DEPTH levels deep, UTF-8, scalar keys, no
 * duplicate keys, no anchors, aliases or tags. Rejecting aliases outright means no input can
 * expand (billion laughs). Scalars stay strings; the key table types them.
 */
#include "config/config_int.h"

#include <stdlib.h>
#include <string.h>

#include <yaml.h>

struct frame {
    json_t *node; /* an object or an array */
    char *key;    /* mappings: the key whose value comes next, or NULL */
    int key_line;
    bool skip; /* the key is a duplicate: its value goes to discard */
};

struct reader {
    struct ocra_config_tree *t;
    struct ocra_config_report *r;
    struct frame st[OCRA_CONFIG_MAX_DEPTH];
    size_t depth;
    int docs;
};

static void
meta_add(struct ocra_config_tree *t, const json_t *node, int line, int key_line, bool plain)
{
    if (t->n_meta == t->cap_meta) {
        t->cap_meta = t->cap_meta ? 2 * t->cap_meta : 64;
        t->meta = ocra_xrealloc(t->meta, t->cap_meta * sizeof(*t->meta));
    }
    t->meta[t->n_meta++] = (struct ocra_config_meta){node, line, key_line, plain};
}

/* Linear: used only while reading, to name the first line of a duplicate key. */
static int
meta_key_line(const struct ocra_config_tree *t, const json_t *node)
{
    for (size_t i = 0; i < t->n_meta; i++)
        if (t->meta[i].node == node)
            return t->meta[i].key_line;
    return 0;
}

/* The dotted name of where the reader is ("ain.watch[0].allow"), plus last when not NULL. */
static char *
reader_path(const struct reader *rd, const char *last)
{
    struct ocra_buf b;

    ocra_buf_init(&b);
    for (size_t i = 0; i < rd->depth; i++) {
        const struct frame *f = &rd->st[i];
        size_t n = json_array_size(f->node);

        /* a frame below the top holds its open child last; the top one's next item is n */
        if (json_is_array(f->node))
            ocra_buf_printf(&b, "[%zu]", i + 1 < rd->depth && n ? n - 1 : n);
        else if (f->key)
            ocra_buf_printf(&b, "%s%s", b.len ? "." : "", f->key);
    }
    if (last)
        ocra_buf_printf(&b, "%s%s", b.len ? "." : "", last);
    return ocra_buf_take(&b);
}

static int
reader_fatal(struct reader *rd, int line, bool with_path, const char *msg)
{
    char *path = with_path ? reader_path(rd, NULL) : NULL;

    ocra_config_report_fatal(rd->r, line, path && *path ? path : NULL, "%s", msg);
    free(path);
    return -1;
}

/* Anchors and tags are reported but reading goes on; an alias stops it. */
static void
reader_props(struct reader *rd, int line, const yaml_char_t *anchor, const yaml_char_t *tag)
{
    char *path;

    if (!anchor && !tag)
        return;
    path = reader_path(rd, NULL);
    if (anchor)
        ocra_config_report_add(rd->r, line, *path ? path : NULL, "anchors are not supported");
    if (tag)
        ocra_config_report_add(rd->r, line, *path ? path : NULL, "tags are not supported");
    free(path);
}

/* Ends the value of the current key of the top frame, if it is a mapping. */
static void
frame_key_done(struct frame *f)
{
    free(f->key);
    f->key = NULL;
    f->skip = false;
}

/*
 * Puts node (a new reference) under the current frame, or makes it the root. A mapping keeps
 * the key of a container until the container ends, so that messages can name the path.
 */
static int
reader_attach(struct reader *rd, json_t *node)
{
    struct frame *f;

    if (rd->depth == 0) {
        rd->t->root = node;
        return 0;
    }
    f = &rd->st[rd->depth - 1];
    if (json_is_array(f->node))
        return json_array_append_new(f->node, node) == 0 ? 0 : -1;
    if (f->skip)
        json_array_append_new(rd->t->discard, node);
    else if (json_object_set_new(f->node, f->key, node) < 0)
        return -1; /* jansson refused the key: not reachable after the UTF-8 check */
    if (json_is_string(node))
        frame_key_done(f);
    return 0;
}

static int
reader_key(struct reader *rd, const char *key, int line)
{
    struct frame *f = &rd->st[rd->depth - 1];
    const json_t *old = json_object_get(f->node, key);

    if (old) {
        char *path = reader_path(rd, key);

        ocra_config_report_add(rd->r, line, path, "duplicate key (first on line %d)",
                               meta_key_line(rd->t, old));
        free(path);
    }
    f->key = ocra_xstrdup(key);
    f->key_line = line;
    f->skip = old != NULL;
    return 0;
}

static bool
scalar_is_null(const char *s, bool plain)
{
    return plain && (!*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
                     !strcmp(s, "NULL"));
}

static int
reader_scalar(struct reader *rd, const yaml_event_t *ev, int line)
{
    const char *s = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    struct frame *f = rd->depth ? &rd->st[rd->depth - 1] : NULL;
    json_t *node;

    reader_props(rd, line, ev->data.scalar.anchor, ev->data.scalar.tag);
    if (memchr(s, '\0', len))
        return reader_fatal(rd, line, true, "contains a NUL character");
    if (!f && !scalar_is_null(s, plain))
        return reader_fatal(rd, line, false, "want a mapping at the top level, got a scalar");
    if (f && json_is_object(f->node) && !f->key)
        return reader_key(rd, s, line);
    node = f ? json_stringn(s, len) : json_object();
    if (!node)
        return reader_fatal(rd, line, true, "not valid UTF-8");
    meta_add(rd->t, node, line, f && f->key ? f->key_line : line, plain);
    if (reader_attach(rd, node) < 0)
        return reader_fatal(rd, line, true, "cannot be stored");
    return 0;
}

static int
reader_open(struct reader *rd, const yaml_event_t *ev, int line, bool map)
{
    struct frame *f = rd->depth ? &rd->st[rd->depth - 1] : NULL;
    json_t *node;

    if (map)
        reader_props(rd, line, ev->data.mapping_start.anchor, ev->data.mapping_start.tag);
    else
        reader_props(rd, line, ev->data.sequence_start.anchor, ev->data.sequence_start.tag);
    if (f && json_is_object(f->node) && !f->key)
        return reader_fatal(rd, line, true, "mapping keys must be scalars");
    if (!f && !map)
        return reader_fatal(rd, line, false, "want a mapping at the top level, got a list");
    if (rd->depth == OCRA_CONFIG_MAX_DEPTH)
        return reader_fatal(rd, line, false, "nesting deeper than 16 levels");
    node = map ? json_object() : json_array();
    meta_add(rd->t, node, line, f && f->key ? f->key_line : line, false);
    if (reader_attach(rd, node) < 0)
        return reader_fatal(rd, line, true, "cannot be stored");
    rd->st[rd->depth++] = (struct frame){node, NULL, 0, false};
    return 0;
}

static int
reader_event(struct reader *rd, const yaml_event_t *ev)
{
    int line = (int)ev->start_mark.line + 1;

    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++rd->docs > 1)
            return reader_fatal(rd, line, false, "only one YAML document is allowed");
        return 0;
    case YAML_ALIAS_EVENT:
        return reader_fatal(rd, line, true, "aliases are not supported");
    case YAML_SCALAR_EVENT:
        return reader_scalar(rd, ev, line);
    case YAML_MAPPING_START_EVENT:
    case YAML_SEQUENCE_START_EVENT:
        return reader_open(rd, ev, line, ev->type == YAML_MAPPING_START_EVENT);
    case YAML_MAPPING_END_EVENT:
    case YAML_SEQUENCE_END_EVENT:
        rd->depth--;
        if (rd->depth)
            frame_key_done(&rd->st[rd->depth - 1]);
        return 0;
    default:
        return 0;
    }
}

/* The line of a libyaml error: reader errors carry a byte offset, the others a mark. */
static void
reader_syntax_error(struct reader *rd, const yaml_parser_t *p, const char *text, size_t len)
{
    size_t line = p->problem_mark.line + 1;

    if (p->error == YAML_READER_ERROR) {
        line = 1;
        for (size_t i = 0; i < p->problem_offset && i < len; i++)
            line += text[i] == '\n';
    }
    ocra_config_report_fatal(rd->r, (int)line, NULL, "invalid YAML: %s",
                             p->problem ? p->problem : "cannot parse");
}

/* Names the first line that is not UTF-8 ('\n' never occurs inside a multibyte sequence). */
static int
check_utf8(const char *text, size_t len, struct ocra_config_report *r)
{
    const char *p = text, *end = text + len;

    for (int line = 1; p < end; line++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);

        if (!ocra_utf8_valid(p, n)) {
            ocra_config_report_fatal(r, line, NULL, "not valid UTF-8");
            return -1;
        }
        p += n + 1;
    }
    return 0;
}

static int
meta_cmp(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const struct ocra_config_meta *)a)->node;
    uintptr_t y = (uintptr_t)((const struct ocra_config_meta *)b)->node;

    return x < y ? -1 : x > y;
}

int
ocra_config_tree_read(struct ocra_config_tree *t, const char *text, size_t len,
                      struct ocra_config_report *r)
{
    struct reader rd = {.t = t, .r = r};
    yaml_parser_t p;
    bool done = false;

    memset(t, 0, sizeof(*t));
    t->discard = json_array();
    if (check_utf8(text, len, r) < 0)
        return -1;
    if (!yaml_parser_initialize(&p))
        abort(); /* libyaml fails here only when out of memory */
    yaml_parser_set_encoding(&p, YAML_UTF8_ENCODING);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    while (!done && !r->fatal) {
        yaml_event_t ev;

        if (!yaml_parser_parse(&p, &ev)) {
            reader_syntax_error(&rd, &p, text, len);
            break;
        }
        done = ev.type == YAML_STREAM_END_EVENT;
        (void)reader_event(&rd, &ev);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    for (size_t i = 0; i < OCRA_CONFIG_MAX_DEPTH; i++)
        free(rd.st[i].key);
    if (!t->root)
        t->root = json_object(); /* an empty file: every key at its default */
    if (t->n_meta)
        qsort(t->meta, t->n_meta, sizeof(*t->meta), meta_cmp);
    return r->fatal ? -1 : 0;
}

const struct ocra_config_meta *
ocra_config_tree_meta(const struct ocra_config_tree *t, const json_t *node)
{
    struct ocra_config_meta key = {.node = node};

    if (!t->n_meta)
        return NULL;
    return bsearch(&key, t->meta, t->n_meta, sizeof(*t->meta), meta_cmp);
}

void
ocra_config_tree_fini(struct ocra_config_tree *t)
{
    json_decref(t->root);
    json_decref(t->discard);
    free(t->meta);
    memset(t, 0, sizeof(*t));
}
