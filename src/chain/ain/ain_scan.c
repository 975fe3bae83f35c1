/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ain_scan.c: the finalized block scanner, AIN's source of truth. Blocks returned by the
 * node's block methods are final, so the scanner reads every block after the journal's
 * cursor up to the last block, and for each transaction that succeeded (per its receipt)
 * turns every SET_VALUE whose ref falls under a watched pattern into an event. A write below
 * a model (".../sentiment-bert/modelVersion") is merged into the model's materialised value
 * kept in the journal; a write of null removes it. A write above the models (".../models" =
 * null or an object) replaces the chain's whole subtree, so it is one event per model: a
 * removal for each materialised model below it, the new value of each model in the object.
 * Every event's signer is recovered from its signature and checked against the pattern's
 * allowlist; an event that fails is still journaled, as rejected, with the reason. One block,
 * one journal transaction: its events, its model updates and the cursor, so a restart resumes
 * exactly after the last whole block.
 *
 * The materialised value records the last untrusted writer: a trusted partial write on top
 * of a value that an untrusted signer shaped is rejected too, since the merged spec would
 * carry that signer's fields. A trusted whole-model write clears the mark.
 */
#include "chain/ain/ain.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store/store.h"

#define MAX_SEGMENTS 32

struct pattern {
    const struct ocra_ain_watch *watch;
    char *segs[MAX_SEGMENTS];
    size_t n;
};

struct ocra_ain_scanner {
    struct ocra_ain_scan_opts o;
    struct pattern *patterns;
    size_t n_patterns;
    char source[32];
    json_t *pending;    /* model path -> wrapped value, updates of the block being processed */
    bool no_block_list; /* the node answered ain_getBlockList with "Method not found" */
    int rewound;        /* blocks moved back after the node replaced final blocks */
};

#define OCRA_AIN_MAX_REWIND 16

/* One block's output, written in one transaction. */
struct block_out {
    struct ocra_store_event *evs;
    char **owned; /* strings the events point to */
    size_t n, n_owned;
};

static const char *
or_empty(const char *s)
{
    return s ? s : "";
}

/* ---- paths and patterns --------------------------------------------------------------- */

/* Splits an absolute path into at most MAX_SEGMENTS segments; -1 when it is not one. */
static int
split(const char *path, char **segs, size_t *n)
{
    const char *p = path;

    *n = 0;
    if (!path || path[0] != '/')
        return -1;
    while (*p == '/') {
        const char *start = ++p;

        while (*p && *p != '/')
            p++;
        if (p == start) {
            if (*p == '\0' && *n == 0)
                return 0; /* "/" itself: the root */
            goto fail;
        }
        if (*n == MAX_SEGMENTS)
            goto fail;
        segs[(*n)++] = ocra_xstrndup(start, (size_t)(p - start));
    }
    return 0;
fail:
    for (size_t i = 0; i < *n; i++)
        free(segs[i]);
    *n = 0;
    return -1;
}

static void
free_segs(char **segs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(segs[i]);
}

static bool
var_name_valid(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return false;
    return true;
}

bool
ocra_ain_pattern_valid(const char *pattern)
{
    char *segs[MAX_SEGMENTS];
    size_t n = 0;
    bool ok = true;

    if (split(pattern, segs, &n) < 0 || n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (strstr(segs[i], "..") || (segs[i][0] == '$' && !var_name_valid(segs[i] + 1)))
            ok = false;
    }
    free_segs(segs, n);
    return ok;
}

/* True when the first n segments of ref match the first n of p. */
static bool
match_prefix(const struct pattern *p, char *const *segs, size_t n)
{
    for (size_t i = 0; i < n && i < p->n; i++)
        if (p->segs[i][0] != '$' && strcmp(p->segs[i], segs[i]) != 0)
            return false;
    return true;
}

/* How far ref matches p: the number of ref segments beyond the pattern (0: the model itself),
 * or -1 when ref is not at or below a model of p. */
static int
match_depth(const struct pattern *p, char *const *segs, size_t n)
{
    if (n < p->n || !match_prefix(p, segs, p->n))
        return -1;
    return (int)(n - p->n);
}

/* True when ref lies above the models of p: a write there replaces all of them below it. */
static bool
above_models(const struct pattern *p, char *const *segs, size_t n)
{
    return n < p->n && match_prefix(p, segs, n);
}

static char *
join(char *const *segs, size_t n)
{
    struct ocra_buf b;

    ocra_buf_init(&b);
    for (size_t i = 0; i < n; i++) {
        ocra_buf_putc(&b, '/');
        ocra_buf_puts(&b, segs[i]);
    }
    return ocra_buf_take(&b);
}

/* ---- construction --------------------------------------------------------------------- */

struct ocra_ain_scanner *
ocra_ain_scanner_new(const struct ocra_ain_scan_opts *opts, struct ocra_err *err)
{
    struct ocra_ain_scanner *sc = ocra_xcalloc(1, sizeof(*sc));

    sc->o = *opts;
    if (sc->o.batch <= 0 || sc->o.batch > 20)
        sc->o.batch = 20;
    (void)snprintf(sc->source, sizeof(sc->source), "ain:%lld", (long long)opts->chain_id);
    sc->patterns = ocra_xcalloc(opts->n_watch, sizeof(*sc->patterns));
    for (size_t i = 0; i < opts->n_watch; i++) {
        const struct ocra_ain_watch *w = &opts->watch[i];
        struct pattern *p = &sc->patterns[sc->n_patterns++];

        p->watch = w;
        if (!ocra_ain_pattern_valid(w->pattern) || split(w->pattern, p->segs, &p->n) < 0) {
            ocra_err_set(err, EINVAL, "watch pattern \"%.200s\": want /seg/seg/$var...",
                         w->pattern ? w->pattern : "");
            goto fail;
        }
        for (size_t k = 0; k < w->n_allow; k++) {
            if (!ocra_chain_address_valid(w->allow[k])) {
                ocra_err_set(err, EINVAL, "allowlist of %.120s: \"%.60s\" is not 0x + 40 hex",
                             w->pattern, w->allow[k]);
                goto fail;
            }
        }
    }
    sc->pending = json_object();
    return sc;
fail:
    ocra_ain_scanner_free(sc);
    return NULL;
}

unsigned long
ocra_ain_scanner_finality_violations(const struct ocra_ain_scanner *sc)
{
    return (unsigned long)sc->rewound;
}

void
ocra_ain_scanner_free(struct ocra_ain_scanner *sc)
{
    if (!sc)
        return;
    for (size_t i = 0; i < sc->n_patterns; i++)
        free_segs(sc->patterns[i].segs, sc->patterns[i].n);
    free(sc->patterns);
    json_decref(sc->pending);
    free(sc);
}

/* ---- block output --------------------------------------------------------------------- */

static const char *
own(struct block_out *out, char *s)
{
    out->owned = ocra_xrealloc(out->owned, (out->n_owned + 1) * sizeof(*out->owned));
    out->owned[out->n_owned++] = s;
    return s;
}

static void
block_out_fini(struct block_out *out)
{
    for (size_t i = 0; i < out->n_owned; i++)
        free(out->owned[i]);
    free(out->owned);
    free(out->evs);
    memset(out, 0, sizeof(*out));
}

/* ---- trust ---------------------------------------------------------------------------- */

/* What one transaction's signature says: the signer and, when it does not verify, why. */
struct tx_trust {
    char signer[OCRA_CHAIN_ADDR_LEN + 1];
    char reason[OCRA_ERR_MAX]; /* "" when the signature verifies for the named address */
};

static void
check_signature(const struct ocra_ain_scanner *sc, const json_t *tx, struct tx_trust *t)
{
    const json_t *body = json_object_get(tx, "tx_body");
    const char *hash = ocra_json_str(tx, "hash"), *addr = ocra_json_str(tx, "address");
    struct ocra_err err = {0};
    char computed[67];

    t->reason[0] = '\0';
    (void)snprintf(t->signer, sizeof(t->signer), "%s", addr ? addr : "");
    if (!json_is_object(body)) {
        (void)snprintf(t->reason, sizeof(t->reason), "transaction without a tx_body object");
        return;
    }
    ocra_ain_tx_hash_hex(body, computed);
    if (!hash || strcasecmp(hash, computed) != 0) {
        (void)snprintf(t->reason, sizeof(t->reason),
                       "tx hash %.66s does not match its body (recomputed %s)",
                       hash ? hash : "(none)", computed);
        return;
    }
    if (ocra_ain_verify(body, ocra_json_str(tx, "signature"), sc->o.chain_id, t->signer, &err) <
        0) {
        (void)snprintf(t->reason, sizeof(t->reason), "%s", err.msg);
        return;
    }
    if (!ocra_chain_address_equal(t->signer, addr))
        (void)snprintf(t->reason, sizeof(t->reason),
                       "signature recovers %s, but the transaction names %.42s", t->signer,
                       addr ? addr : "(none)");
}

static bool
allowed(const struct ocra_ain_watch *w, const char *signer)
{
    for (size_t i = 0; i < w->n_allow; i++)
        if (ocra_chain_address_equal(w->allow[i], signer))
            return true;
    return false;
}

/* ---- materialised models -------------------------------------------------------------- */

/* The wrapped value {"value": V, "untrusted": null|"0x.."} of a model, new reference. */
static json_t *
model_load(struct ocra_ain_scanner *sc, const char *path, struct ocra_err *err)
{
    json_t *w = json_object_get(sc->pending, path);
    char *text = NULL;

    if (w)
        return json_incref(w);
    if (ocra_store_model_get(sc->o.store, sc->source, path, &text, NULL, err) < 0)
        return NULL;
    w = text ? ocra_json_parse(text, strlen(text), 0, NULL) : NULL;
    free(text);
    if (!json_is_object(w)) {
        json_decref(w);
        w = json_pack("{s:n,s:n}", "value", "untrusted");
    }
    return w;
}

/* Removes empty objects along segs from the leaf up, as AIN keeps no empty objects. */
static void
prune(json_t *root, char *const *segs, size_t n)
{
    while (n > 0) {
        json_t *parent = root;

        for (size_t i = 0; i + 1 < n && parent; i++)
            parent = json_object_get(parent, segs[i]);
        if (!json_is_object(parent))
            return;
        json_t *child = json_object_get(parent, segs[n - 1]);
        if (!json_is_object(child) || json_object_size(child) > 0)
            return;
        json_object_del(parent, segs[n - 1]);
        n--;
    }
}

/* base with value written at segs (value null deletes); returns a new reference. */
static json_t *
merge(const json_t *base, char *const *segs, size_t n, const json_t *value)
{
    json_t *root = json_is_object(base) ? json_deep_copy(base) : json_object(), *cur = root;

    if (n == 0) {
        json_decref(root);
        return json_deep_copy(value);
    }
    for (size_t i = 0; i + 1 < n; i++) {
        json_t *next = json_object_get(cur, segs[i]);

        if (!json_is_object(next)) {
            next = json_object();
            json_object_set_new(cur, segs[i], next);
        }
        cur = next;
    }
    if (json_is_null(value))
        json_object_del(cur, segs[n - 1]);
    else
        json_object_set_new(cur, segs[n - 1], json_deep_copy(value));
    prune(root, segs, n);
    if (json_object_size(root) == 0) {
        json_decref(root);
        return json_null();
    }
    return root;
}

/* ---- one write ------------------------------------------------------------------------ */

struct write {
    const json_t *block, *tx;
    const struct tx_trust *trust;
    const struct pattern *p;
    char *const *segs;
    size_t n_segs;
    int depth;
    int64_t op_index;
    const json_t *value;
    const char *id_suffix; /* a write above the models: the model's path below the ref */
};

/* Sets status and reason of ev from the signature, the allowlist and the model's marks. */
static void
judge(struct block_out *out, struct ocra_store_event *ev, const struct write *w,
      const char *tainted_by)
{
    const char *pattern = w->p->watch->pattern;

    ev->trusted = false;
    ev->status = "rejected";
    if (w->trust->reason[0])
        ev->reason = own(out, ocra_xasprintf("signature: %s", w->trust->reason));
    else if (!allowed(w->p->watch, w->trust->signer))
        ev->reason = own(out, ocra_xasprintf("signer %s is not in the allowlist of %s",
                                             w->trust->signer, pattern));
    else if (w->depth > 0 && tainted_by)
        ev->reason = own(out, ocra_xasprintf("merges into a value last written by untrusted "
                                             "signer %s; a trusted whole-model write clears it",
                                             tainted_by));
    else {
        ev->trusted = true;
        ev->status = "accepted";
        ev->reason = NULL;
    }
}

static int
add_write(struct ocra_ain_scanner *sc, struct block_out *out, const struct write *w,
          struct ocra_err *err)
{
    char *model_path = join(w->segs, w->p->n);
    json_t *wrapped = model_load(sc, model_path, err), *merged;
    const char *tainted_by;
    struct ocra_store_event *ev;
    char *id;

    if (!wrapped) {
        free(model_path);
        return -1;
    }
    tainted_by = ocra_json_str(wrapped, "untrusted");
    merged =
        merge(json_object_get(wrapped, "value"), w->segs + w->p->n, w->n_segs - w->p->n, w->value);
    out->evs = ocra_xrealloc(out->evs, (out->n + 1) * sizeof(*out->evs));
    ev = memset(&out->evs[out->n++], 0, sizeof(*ev));
    id = ocra_xasprintf("%s:%s:%lld%s%s", sc->source, ocra_json_str(w->tx, "hash"),
                        (long long)w->op_index, w->id_suffix ? ":" : "", or_empty(w->id_suffix));
    ev->id = own(out, id);
    ev->source = ev->chain = sc->source;
    ev->block_number = ocra_json_int(w->block, "number", -1);
    ev->block_hash = ocra_json_str(w->block, "hash");
    ev->tx_hash = ocra_json_str(w->tx, "hash");
    ev->op_index = w->op_index;
    ev->signer = own(out, ocra_xstrdup(w->trust->signer));
    ev->path = own(out, model_path);
    ev->spec = own(out, ocra_json_canonical(merged));
    judge(out, ev, w, tainted_by);
    /* The mirror follows the chain; an untrusted writer marks it, a trusted whole write clears. */
    json_object_set_new(wrapped, "value", merged);
    if (!ev->trusted)
        json_object_set_new(wrapped, "untrusted", json_string(ev->signer));
    else if (w->depth == 0)
        json_object_set_new(wrapped, "untrusted", json_null());
    json_object_set(sc->pending, model_path, wrapped);
    json_decref(wrapped);
    return 0;
}

/* ---- a write above the models -------------------------------------------------------- */

/*
 * A SET_VALUE at a path above the models of a pattern (.../models = null, /apps/APP = {...})
 * replaces the whole subtree on the chain: every model below it is removed, and every model
 * inside the written object is written whole. So it becomes one event per model it touches:
 * the model's new value, or a removal (spec null) for a materialised model it deletes.
 */
struct above {
    struct ocra_ain_scanner *sc;
    size_t owner;     /* the pattern's index: models another pattern owns are left to it */
    const char *ref;  /* the written path, "" for the root */
    json_t *affected; /* model path -> new value (json null: removed) */
    struct ocra_err *err;
    bool failed; /* a materialised value could not be read: err says why */
};

/* The index of the pattern that owns a model path: the first one it is at or below. */
static size_t
owner_of(const struct ocra_ain_scanner *sc, char *const *segs, size_t n)
{
    size_t i = 0;

    while (i < sc->n_patterns && match_depth(&sc->patterns[i], segs, n) < 0)
        i++;
    return i;
}

/* Records path as affected when it is a model of the pattern that still holds a value. */
static int
note_existing(const char *path, void *arg)
{
    struct above *a = arg;
    const struct pattern *p = &a->sc->patterns[a->owner];
    char *segs[MAX_SEGMENTS];
    size_t n = 0;
    json_t *wrapped = NULL;
    int ret = 0;

    if (json_object_get(a->affected, path) || split(path, segs, &n) < 0)
        return 0;
    if (match_depth(p, segs, n) == 0 && owner_of(a->sc, segs, n) == a->owner) {
        wrapped = model_load(a->sc, path, a->err);
        if (!wrapped) {
            a->failed = true;
            ret = -1;
        } else if (!json_is_null(json_object_get(wrapped, "value"))) {
            json_object_set_new(a->affected, path, json_null());
        }
    }
    json_decref(wrapped);
    free_segs(segs, n);
    return ret;
}

/* Records every model of the pattern inside v (the value at path, pattern segment level). */
static void
note_written(struct above *a, const json_t *v, size_t level, struct ocra_buf *path)
{
    const struct pattern *p = &a->sc->patterns[a->owner];
    const char *key;
    json_t *child;

    if (level == p->n) {
        char *segs[MAX_SEGMENTS];
        size_t n = 0;

        if (!json_is_null(v) && split(path->data, segs, &n) == 0) {
            if (owner_of(a->sc, segs, n) == a->owner)
                json_object_set(a->affected, path->data, (json_t *)(uintptr_t)v);
            free_segs(segs, n);
        }
        return;
    }
    if (!json_is_object(v))
        return;
    json_object_foreach((json_t *)(uintptr_t)v, key, child)
    {
        size_t mark = path->len;

        if (p->segs[level][0] != '$' && strcmp(p->segs[level], key) != 0)
            continue;
        if (!*key || strchr(key, '/'))
            continue; /* not a segment: the node stores no such label */
        ocra_buf_printf(path, "/%s", key);
        note_written(a, child, level + 1, path);
        path->len = mark;
        path->data[mark] = '\0';
    }
}

static int
by_path(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* The model paths of a->affected in path order; the strings are the object's keys. */
static const char **
affected_paths(const struct above *a, size_t *n)
{
    const char **paths = ocra_xcalloc(json_object_size(a->affected) + 1, sizeof(*paths));
    const char *key;
    json_t *val;

    *n = 0;
    json_object_foreach(a->affected, key, val) paths[(*n)++] = key;
    qsort(paths, *n, sizeof(*paths), by_path);
    return paths;
}

/* One event per affected model, in path order: a whole-model write of its new value. */
static int
add_above_events(struct ocra_ain_scanner *sc, struct block_out *out, const struct write *w,
                 struct above *a, struct ocra_err *err)
{
    size_t n_paths, ref_len = strlen(a->ref);
    const char **paths = affected_paths(a, &n_paths);
    int ret = 0;

    for (size_t i = 0; i < n_paths && ret == 0; i++) {
        struct write mw = *w;
        char *segs[MAX_SEGMENTS];
        size_t n = 0;

        if (split(paths[i], segs, &n) < 0)
            continue;
        mw.segs = segs;
        mw.n_segs = n;
        mw.depth = 0;
        mw.value = json_object_get(a->affected, paths[i]);
        /* the model's path below the written one, e.g. "k1" or "models/k1" */
        mw.id_suffix = paths[i] + ref_len + 1;
        ret = add_write(sc, out, &mw, err);
        free_segs(segs, n);
    }
    free(paths);
    return ret;
}

static int
add_above_write(struct ocra_ain_scanner *sc, struct block_out *out, const struct write *w,
                size_t owner, struct ocra_err *err)
{
    char *ref = join(w->segs, w->n_segs); /* "" for the root */
    struct above a = {.sc = sc, .owner = owner, .ref = ref, .affected = json_object(), .err = err};
    size_t len = strlen(ref);
    struct ocra_buf walk;
    const char *key;
    json_t *val;
    int ret = -1;

    /* the models it removes, the journal's and this block's, then those it writes */
    if (ocra_store_model_paths(sc->o.store, sc->source, ref, note_existing, &a, err) < 0 ||
        a.failed)
        goto out;
    json_object_foreach(sc->pending, key, val)
    {
        if (!strncmp(key, ref, len) && key[len] == '/' && note_existing(key, &a) != 0)
            goto out;
    }
    ocra_buf_init(&walk);
    ocra_buf_puts(&walk, ref);
    note_written(&a, w->value, w->n_segs, &walk);
    ocra_buf_fini(&walk);
    ret = add_above_events(sc, out, w, &a, err);
out:
    json_decref(a.affected);
    free(ref);
    return ret;
}

/* ---- one block ------------------------------------------------------------------------ */

/* True when the receipt says the whole transaction succeeded. */
static bool
receipt_ok(const json_t *r)
{
    const json_t *list = json_object_get(r, "result_list"), *item;
    const char *key;

    if (!json_is_object(r))
        return false;
    if (json_is_object(list)) {
        json_object_foreach((json_t *)(uintptr_t)list, key,
                            item) if (ocra_json_int(item, "code", -1) != 0) return false;
        return json_object_size(list) > 0;
    }
    return ocra_json_int(r, "code", -1) == 0;
}

static int
scan_op(struct ocra_ain_scanner *sc, struct block_out *out, struct write *w, const json_t *op,
        struct ocra_err *err)
{
    char *segs[MAX_SEGMENTS];
    size_t n = 0;
    bool owned = false;
    int ret = 0;

    if (!json_is_object(op) || strcmp(or_empty(ocra_json_str(op, "type")), "SET_VALUE") != 0)
        return 0;
    if (split(ocra_json_str(op, "ref"), segs, &n) < 0)
        return 0; /* a ref the node accepted but ocra cannot watch: not ours */
    w->segs = segs;
    w->n_segs = n;
    w->value = json_object_get(op, "value");
    w->id_suffix = NULL;
    for (size_t i = 0; i < sc->n_patterns && ret == 0; i++) {
        int depth = match_depth(&sc->patterns[i], segs, n);

        w->p = &sc->patterns[i];
        w->depth = depth;
        if (depth >= 0 && !owned) {
            ret = add_write(sc, out, w, err);
            owned = true; /* the first pattern a write is at or below owns it */
        } else if (above_models(w->p, segs, n)) {
            ret = add_above_write(sc, out, w, i, err);
        }
    }
    free_segs(segs, n);
    return ret;
}

static int
scan_tx(struct ocra_ain_scanner *sc, struct block_out *out, const json_t *block, const json_t *tx,
        struct ocra_err *err)
{
    const json_t *op = json_object_get(json_object_get(tx, "tx_body"), "operation");
    size_t before = out->n;
    struct tx_trust trust;
    struct write w = {.block = block, .tx = tx, .trust = &trust};
    int ret = 0;

    if (!ocra_json_str(tx, "hash"))
        return ocra_err_set(err, EPROTO, "block %lld: a transaction without a hash",
                            (long long)ocra_json_int(block, "number", -1));
    check_signature(sc, tx, &trust);
    if (strcmp(or_empty(ocra_json_str(op, "type")), "SET") == 0) {
        const json_t *list = json_object_get(op, "op_list");

        for (size_t i = 0; i < json_array_size(list) && ret == 0; i++) {
            w.op_index = (int64_t)i;
            ret = scan_op(sc, out, &w, json_array_get(list, i), err);
        }
    } else {
        ret = scan_op(sc, out, &w, op, err);
    }
    (void)before;
    return ret;
}

/* Turns a block into events and model updates, then writes both and the cursor. */
static int
scan_block(struct ocra_ain_scanner *sc, const json_t *block, size_t *n_events, struct ocra_err *err)
{
    const json_t *txs = json_object_get(block, "transactions");
    const json_t *receipts = json_object_get(block, "receipts");
    struct ocra_store_cursor cursor = {.block_number = ocra_json_int(block, "number", -1)};
    struct block_out out = {0};
    const char *key;
    json_t *val;
    int ret = -1;

    json_object_clear(sc->pending);
    (void)snprintf(cursor.block_hash, sizeof(cursor.block_hash), "%s",
                   or_empty(ocra_json_str(block, "hash")));
    for (size_t i = 0; i < json_array_size(txs); i++) {
        if (!receipt_ok(json_array_get(receipts, i)))
            continue; /* reverted: the chain state did not change */
        if (scan_tx(sc, &out, block, json_array_get(txs, i), err) < 0)
            goto out;
    }
    if (ocra_store_begin(sc->o.store, err) < 0)
        goto out;
    json_object_foreach(sc->pending, key, val)
    {
        char *text = ocra_json_canonical(val);
        int rc = ocra_store_model_put(sc->o.store, sc->source, key, text, cursor.block_number, err);

        free(text);
        if (rc < 0) {
            ocra_store_rollback(sc->o.store);
            goto out;
        }
    }
    if (ocra_store_append(sc->o.store, sc->source, out.evs, out.n, &cursor, NULL, err) < 0) {
        ocra_store_rollback(sc->o.store);
        goto out;
    }
    if (ocra_store_commit(sc->o.store, err) < 0)
        goto out;
    if (n_events)
        *n_events += out.n;
    ret = 0;
    for (size_t i = 0; i < out.n && sc->o.on_event; i++)
        if (sc->o.on_event(&out.evs[i], sc->o.arg) != 0)
            ret = 1;
out:
    json_object_clear(sc->pending);
    block_out_fini(&out);
    if (ret < 0)
        ocra_err_wrap(err, "block %lld", (long long)cursor.block_number);
    return ret;
}

/* ---- polling -------------------------------------------------------------------------- */

/* The one block `number` with full transactions, as a one-element list. */
static json_t *
fetch_one_block(struct ocra_ain_scanner *sc, int64_t number, struct ocra_err *err)
{
    json_t *params = json_pack("{s:I,s:b}", "number", (json_int_t)number, "getFullTransactions", 1);
    json_t *block = ocra_ain_rpc_call(sc->o.rpc, "ain_getBlockByNumber", params, NULL, err);

    json_decref(params);
    return block ? json_pack("[o]", block) : NULL;
}

/*
 * Fetches finalized blocks [from, to) with full transactions, as a JSON array: with
 * ain_getBlockList where the node has it, else one ain_getBlockByNumber per call.
 */
static json_t *
fetch_blocks(struct ocra_ain_scanner *sc, int64_t from, int64_t to, struct ocra_err *err)
{
    json_t *params, *blocks;
    int64_t code = 0;

    if (sc->no_block_list)
        return fetch_one_block(sc, from, err);
    params = json_pack("{s:I,s:I}", "from", (json_int_t)from, "to", (json_int_t)to);
    blocks = ocra_ain_rpc_call(sc->o.rpc, "ain_getBlockList", params, &code, err);
    json_decref(params);
    if (!blocks && code == -32601) {
        ocra_log_info("ain: the node has no ain_getBlockList; reading block by block");
        sc->no_block_list = true;
        return fetch_one_block(sc, from, err);
    }
    if (blocks && !json_is_array(blocks)) {
        json_decref(blocks);
        ocra_err_set(err, EPROTO, "ain_getBlockList: result is not a list");
        return NULL;
    }
    return blocks;
}

static int
head_number(struct ocra_ain_scanner *sc, int64_t *head, struct ocra_err *err)
{
    json_t *v = ocra_ain_rpc_call(sc->o.rpc, "ain_getLastBlockNumber", NULL, NULL, err);
    int ret = -1;

    if (!v)
        return -1;
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *head = json_integer_value(v);
        ret = 0;
    } else if (json_is_integer(v)) {
        ocra_err_set(err, EAGAIN, "the node has no final block yet (last block %lld: starting?)",
                     (long long)json_integer_value(v));
    } else {
        ocra_err_set(err, EPROTO, "ain_getLastBlockNumber: not a block number");
    }
    json_decref(v);
    return ret;
}

/*
 * Checks that block follows the cursor: number and, when known, the hash chain. *forked is set
 * when only the hash chain is broken: the node no longer has the journal's last block.
 */
static int
check_follows(const struct ocra_store_cursor *cur, bool have, int64_t want, const json_t *block,
              bool *forked, struct ocra_err *err)
{
    const char *last = ocra_json_str(block, "last_hash");

    *forked = false;
    if (!json_is_object(block) || ocra_json_int(block, "number", -1) != want)
        return ocra_err_set(err, EPROTO, "node returned block %lld where %lld was due",
                            (long long)ocra_json_int(block, "number", -1), (long long)want);
    if (!have || !cur->block_hash[0] || (last && strcasecmp(last, cur->block_hash) == 0))
        return 0;
    *forked = true;
    return ocra_err_set(err, EPROTO,
                        "block %lld: last_hash %.66s does not follow the journal's block "
                        "%lld %s (another chain?)",
                        (long long)want, last ? last : "(none)", (long long)cur->block_number,
                        cur->block_hash);
}

/* The journal's events of one replaced block whose transaction the node's chain no longer
 * holds. */
struct replaced {
    struct ocra_ain_scanner *sc;
    int64_t block;
    const json_t *txs; /* the hashes of the node's block now */
    char **ids;
    size_t n;
};

static bool
tx_in(const json_t *txs, const char *hash)
{
    size_t i;
    const json_t *t;

    json_array_foreach(txs, i, t)
    {
        const char *h = json_is_string(t) ? json_string_value(t) : ocra_json_str(t, "hash");

        if (h && strcasecmp(h, hash) == 0)
            return true;
    }
    return false;
}

static int
collect_replaced(const struct ocra_store_event *ev, void *arg)
{
    struct replaced *r = arg;

    if (ev->block_number < r->block)
        return 1; /* newest first: everything further is older */
    if (ev->block_number == r->block && !tx_in(r->txs, ev->tx_hash)) {
        r->ids = ocra_xrealloc(r->ids, (r->n + 1) * sizeof(*r->ids));
        r->ids[r->n++] = ocra_xstrdup(ev->id);
    }
    return 0;
}

/* Whether the node still has tx_hash finalized (in another block than the one replaced). */
static int
tx_final(struct ocra_ain_scanner *sc, const char *tx_hash, bool *final, struct ocra_err *err)
{
    json_t *params = json_pack("{s:s}", "hash", tx_hash), *tx;
    int64_t code = 0;

    tx = ocra_ain_rpc_call(sc->o.rpc, "ain_getTransactionByHash", params, &code, err);
    json_decref(params);
    if (!tx && err && err->code == ENOENT) { /* no such transaction */
        memset(err, 0, sizeof(*err));
        tx = json_null();
    }
    if (!tx)
        return -1;
    *final = json_is_true(json_object_get(tx, "is_finalized"));
    json_decref(tx);
    return 0;
}

/* Marks orphaned the journal's events of replaced block `number` (now `block` on the node)
 * whose transaction the node's chain no longer holds: the stage machine stops them. */
static int
orphan_replaced(struct ocra_ain_scanner *sc, int64_t number, const json_t *block,
                struct ocra_err *err)
{
    struct ocra_store_event_filter f = {.source = sc->source, .newest_first = true};
    struct replaced r = {.sc = sc, .block = number, .txs = json_object_get(block, "transactions")};
    int ret = -1;

    if (ocra_store_event_list(sc->o.store, &f, collect_replaced, &r, err) < 0)
        goto out;
    for (size_t i = 0; i < r.n; i++) {
        struct ocra_store_event *ev = NULL;
        bool final = false;
        int rc = ocra_store_event_get(sc->o.store, r.ids[i], &ev, err);

        if (rc == 0 && ev)
            rc = tx_final(sc, ev->tx_hash, &final, err);
        if (rc == 0 && ev && !final) {
            rc = ocra_store_event_orphan(sc->o.store, ev->id,
                                         "orphaned: the node replaced its final block and no "
                                         "longer holds its transaction (finality violation)",
                                         err);
            if (rc == 0)
                ocra_log_error("ain: event=%s orphaned: block %lld was replaced without its "
                               "transaction %s",
                               ev->id, (long long)number, ev->tx_hash);
        }
        ocra_store_event_free(ev);
        if (rc < 0)
            goto out;
    }
    ret = 0;
out:
    for (size_t i = 0; i < r.n; i++)
        free(r.ids[i]);
    free(r.ids);
    return ret;
}

/*
 * The node's block `cur` differs from the journal's: AIN blocks are final, yet a node that
 * restarts can replace the last block it reported (seen with ain-blockchain 1.6.0). Moves the
 * cursor back one block onto the node's chain, so that the block is scanned again: events keep
 * their ids (tx hash and operation index), so nothing is journaled twice; an event whose
 * transaction the node's chain no longer holds (not in the new block, not final elsewhere) is
 * marked orphaned. At most
 * OCRA_AIN_MAX_REWIND blocks per scanner; beyond that, it stops for an operator to look.
 */
static int
rewind_one(struct ocra_ain_scanner *sc, struct ocra_store_cursor *cur, struct ocra_err *err)
{
    json_t *params = json_pack("{s:I}", "number", (json_int_t)cur->block_number), *block;
    struct ocra_store_cursor back = {.block_number = cur->block_number - 1};
    const char *hash;
    int ret = -1;

    block = ocra_ain_rpc_call(sc->o.rpc, "ain_getBlockByNumber", params, NULL, err);
    json_decref(params);
    hash = ocra_json_str(block, "hash");
    if (!block || !hash || strcasecmp(hash, cur->block_hash) == 0 || back.block_number < 0) {
        if (block)
            ocra_err_set(err, EPROTO,
                         "block %lld: the node's chain does not follow its own "
                         "block %lld",
                         (long long)cur->block_number + 1, (long long)cur->block_number);
        goto out;
    }
    if (sc->rewound >= OCRA_AIN_MAX_REWIND) {
        ocra_err_set(err, EPROTO,
                     "the node replaced more than %d final blocks below %lld; "
                     "not rewinding further: check the node (another chain?)",
                     OCRA_AIN_MAX_REWIND, (long long)cur->block_number + 1);
        goto out;
    }
    ocra_log_error("ain: finality violation: the node replaced block %lld (journal %s, node %s); "
                   "scanning it again source=%s",
                   (long long)cur->block_number, cur->block_hash, hash, sc->source);
    (void)snprintf(back.block_hash, sizeof(back.block_hash), "%s",
                   or_empty(ocra_json_str(block, "last_hash")));
    if (orphan_replaced(sc, cur->block_number, block, err) < 0 ||
        ocra_store_append(sc->o.store, sc->source, NULL, 0, &back, NULL, err) < 0)
        goto out;
    sc->rewound++;
    *cur = back;
    ret = 0;
out:
    json_decref(block);
    return ret;
}

/* Scans the fetched blocks in order; *next advances past each one journaled. */
static int
scan_blocks(struct ocra_ain_scanner *sc, const json_t *blocks, struct ocra_store_cursor *cur,
            bool *have, int64_t *next, size_t *n_events, struct ocra_err *err)
{
    for (size_t i = 0; i < json_array_size(blocks); i++) {
        const json_t *block = json_array_get(blocks, i);
        bool forked = false;
        int rc;

        if (check_follows(cur, *have, *next, block, &forked, err) < 0) {
            if (!forked || rewind_one(sc, cur, err) < 0)
                return -1;
            *next = cur->block_number + 1;
            return 0; /* fetch again from the rewound cursor */
        }
        rc = scan_block(sc, block, n_events, err);
        if (rc < 0)
            return -1;
        cur->block_number = (*next)++;
        (void)snprintf(cur->block_hash, sizeof(cur->block_hash), "%s",
                       or_empty(ocra_json_str(block, "hash")));
        *have = true;
        if (rc > 0)
            return 1; /* the callback asked to stop */
    }
    return 0;
}

int
ocra_ain_scanner_poll(struct ocra_ain_scanner *sc, size_t *n_events, bool *caught_up,
                      struct ocra_err *err)
{
    struct ocra_store_cursor cur = {0};
    int64_t head = 0, next;
    bool have = false;

    if (caught_up)
        *caught_up = false;
    if (ocra_store_cursor_get(sc->o.store, sc->source, &cur, &have, err) < 0 ||
        head_number(sc, &head, err) < 0)
        return -1;
    next = have ? cur.block_number + 1 : sc->o.from_block >= 0 ? sc->o.from_block : head;
    while (next <= head) {
        int64_t to = next + sc->o.batch > head + 1 ? head + 1 : next + sc->o.batch;
        json_t *blocks = fetch_blocks(sc, next, to, err);
        int rc;

        if (!blocks)
            return -1;
        if (json_array_size(blocks) == 0) {
            json_decref(blocks);
            return ocra_err_set(err, EPROTO, "ain_getBlockList [%lld, %lld): no blocks",
                                (long long)next, (long long)to);
        }
        rc = scan_blocks(sc, blocks, &cur, &have, &next, n_events, err);
        json_decref(blocks);
        if (rc != 0)
            return rc < 0 ? -1 : 0;
    }
    if (caught_up)
        *caught_up = true;
    return 0;
}
