/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_int.h: what the files of src/config share. The problem report (collected, then
 * sorted by line), the YAML reader's tree with its side table of lines, and the row type of
 * the declarative key table with the functions that apply a table to a tree.
 */
#ifndef OCRA_CONFIG_INT_H
#define OCRA_CONFIG_INT_H

#include <stdbool.h>

#include "config/config.h"

#define OCRA_CONFIG_MAX_DEPTH 16     /* nesting of mappings and lists */
#define OCRA_CONFIG_MAX_PROBLEMS 100 /* past this, loading stops */

/* ---- problems -------------------------------------------------------------------------- */

struct ocra_config_problem {
    int line;     /* 0: none known */
    unsigned seq; /* order of discovery, to keep the sort stable */
    char *text;   /* "key: problem" or "problem" */
};

struct ocra_config_report {
    const char *name; /* the file, as messages name it */
    struct ocra_config_problem *v;
    size_t n, cap;
    bool fatal; /* loading cannot go on (malformed YAML, too many problems) */
};

/* Records one problem; key (may be NULL) is shown escaped when it is not plain ASCII. */
void ocra_config_report_add(struct ocra_config_report *r, int line, const char *key,
                            const char *fmt, ...) OCRA_PRINTF(4, 5);
/* Like ocra_config_report_add, and marks the report fatal. */
void ocra_config_report_fatal(struct ocra_config_report *r, int line, const char *key,
                              const char *fmt, ...) OCRA_PRINTF(4, 5);
/* Moves the problems, sorted by line, into p as "name:line: text" lines. */
void ocra_config_report_take(struct ocra_config_report *r, struct ocra_config_problems *p);
void ocra_config_report_fini(struct ocra_config_report *r);

/* ---- the YAML reader ------------------------------------------------------------------- */

/* Where a node of the tree came from. Every node is a distinct json_t (no singletons). */
struct ocra_config_meta {
    const json_t *node;
    int line;     /* of the node itself */
    int key_line; /* of the mapping key it is the value of; its own line for list items */
    bool plain;   /* a plain (unquoted) scalar */
};

/*
 * Scalars become JSON strings (typing is the table's job), mappings objects, lists arrays.
 * meta is sorted by node address once reading is done.
 */
struct ocra_config_tree {
    json_t *root;    /* an object */
    json_t *discard; /* values of duplicate keys, kept alive so that meta stays exact */
    struct ocra_config_meta *meta;
    size_t n_meta, cap_meta;
};

/*
 * Reads YAML text into t, reporting problems to r. Returns 0 when t->root is a tree worth
 * checking, -1 when reading stopped (r is then fatal). Release t with ocra_config_tree_fini()
 * either way.
 */
int ocra_config_tree_read(struct ocra_config_tree *t, const char *text, size_t len,
                          struct ocra_config_report *r);
/* The meta of node, or NULL; borrowed from t. */
const struct ocra_config_meta *ocra_config_tree_meta(const struct ocra_config_tree *t,
                                                     const json_t *node);
void ocra_config_tree_fini(struct ocra_config_tree *t);

/* ---- the key table --------------------------------------------------------------------- */

enum ocra_config_type {
    OCRA_CONFIG_STRING,   /* char * */
    OCRA_CONFIG_PATH,     /* char *, relative resolves against the file's directory */
    OCRA_CONFIG_SECRET,   /* char *, a path like OCRA_CONFIG_PATH to a file holding a secret */
    OCRA_CONFIG_INT,      /* int64_t in [min, max] */
    OCRA_CONFIG_BOOL,     /* bool: true or false */
    OCRA_CONFIG_ENUM,     /* an enum stored as int: the index into choices */
    OCRA_CONFIG_LIST,     /* char ** at off, size_t count at count_off */
    OCRA_CONFIG_SECTIONS, /* array of elem_size structs at off, count at count_off; see sub */
};

/* A check of a string value or list item; true when s is acceptable. */
typedef bool ocra_config_check_fn(const char *s);

/* One row per key: everything about the key lives here (redis standardConfig). */
struct ocra_config_row {
    const char *key; /* dotted: "log.level"; rows sharing a prefix are adjacent */
    enum ocra_config_type type;
    const char *def;                   /* default as text; NULL for empty lists */
    int64_t min, max;                  /* OCRA_CONFIG_INT */
    const char *const *choices;        /* OCRA_CONFIG_ENUM: NULL-terminated */
    ocra_config_check_fn *check;       /* strings, or each list item; may be NULL */
    const char *want;                  /* what check accepts: "an address (0x and 40 hex digits)" */
    const char *type_name;             /* in docs, instead of the type's own name */
    size_t off, count_off;             /* offsetof in the struct the table fills */
    const struct ocra_config_row *sub; /* OCRA_CONFIG_SECTIONS: the table of each element */
    size_t n_sub, elem_size;
    bool required;       /* in a section: the key must be present and not empty */
    const char *doc;     /* one line */
    const char *example; /* YAML lines shown commented out in the default file; may be NULL */
};

extern const struct ocra_config_row ocra_config_rows[];
extern const size_t ocra_config_n_rows;

/* Sets every key of the table at base to its default. */
void ocra_config_rows_init(const struct ocra_config_row *rows, size_t n, void *base);
/* Frees what the table's keys at base own. */
void ocra_config_rows_fini(const struct ocra_config_row *rows, size_t n, void *base);
/*
 * Applies the tree to the struct at base (already at its defaults), reporting every problem;
 * then resolves relative paths against base_dir.
 */
void ocra_config_rows_apply(const struct ocra_config_row *rows, size_t n,
                            const struct ocra_config_tree *t, const char *base_dir, void *base,
                            struct ocra_config_report *r);
/* "[1, 64]", ">= 0", "<= 9" or "" for an integer row. */
void ocra_config_bounds(const struct ocra_config_row *row, char *out, size_t outsz);
/* The type's name in docs: "integer", "list of strings", or row->type_name. */
const char *ocra_config_type_name(const struct ocra_config_row *row);

#endif
