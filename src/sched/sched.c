/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sched.c: the cluster and its device-level accounting, the request filters, the four scoring
 * policies and all-or-nothing placement on one node. A decision weighs the nodes the capacity
 * index (sched_index.c) finds able to host the request, or, as the reference, scans every
 * node's hot summary; fgd remembers per node what weighing it for a request shape found, until
 * the node changes. A decision formats nothing unless it fails and the caller wants to know
 * why (then sched_why() replays the filters against empty nodes to name the one that rules
 * every node out).
 */
#include "sched/sched_int.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const policy_names[OCRA_SCHED_N_POLICIES] = {"first-fit", "best-fit", "cheapest",
                                                                "fgd"};

int
ocra_sched_policy_parse(const char *s, enum ocra_sched_policy *out)
{
    for (int p = 0; p < OCRA_SCHED_N_POLICIES; p++) {
        if (strcmp(s, policy_names[p]) == 0) {
            *out = (enum ocra_sched_policy)p;
            return 0;
        }
    }
    return -1;
}

const char *
ocra_sched_policy_name(enum ocra_sched_policy p)
{
    return (unsigned)p < OCRA_SCHED_N_POLICIES ? policy_names[p] : "?";
}

int
ocra_sched_driver_parse(const char *s, uint32_t *out, struct ocra_err *err)
{
    int64_t part[3] = {0, 0, 0};
    char buf[16];
    const char *p = s;

    for (int i = 0; i < 3 && *p; i++) {
        size_t n = strcspn(p, ".");

        if (n == 0 || n >= sizeof(buf) || (i < 2 && p[n] == '.' && p[n + 1] == '\0'))
            return ocra_err_set(err, EINVAL, "driver version: not major[.minor[.patch]]");
        memcpy(buf, p, n);
        buf[n] = '\0';
        if (ocra_parse_i64(buf, 0, i == 0 ? 4000 : 999, &part[i], NULL) < 0 || buf[0] == '-')
            return ocra_err_set(err, EINVAL, "driver version: not major[.minor[.patch]]");
        p += n + (p[n] == '.');
        if (i == 2 && *p)
            return ocra_err_set(err, EINVAL, "driver version: not major[.minor[.patch]]");
    }
    if (p == s)
        return ocra_err_set(err, EINVAL, "driver version: empty");
    *out = (uint32_t)(part[0] * 1000000 + part[1] * 1000 + part[2]);
    return 0;
}

struct ocra_sched_cluster *
ocra_sched_cluster_new(void)
{
    return ocra_xcalloc(1, sizeof(struct ocra_sched_cluster));
}

void
ocra_sched_cluster_free(struct ocra_sched_cluster *c)
{
    if (!c)
        return;
    free(c->nodes);
    free(c->hot);
    free(c->type_rep);
    free(c->type_stamp);
    sched_index_free(c);
    free(c->memo);
    free(c);
}

size_t
ocra_sched_cluster_size(const struct ocra_sched_cluster *c)
{
    return c->n;
}

const struct ocra_sched_node *
ocra_sched_cluster_node(const struct ocra_sched_cluster *c, size_t i)
{
    return i < c->n ? &c->nodes[i] : NULL;
}

/* The index of model (added when new); -1 when the table is full. */
static int
model_id(struct ocra_sched_cluster *c, const char *model)
{
    for (int i = 0; i < c->n_models; i++)
        if (strcasecmp(c->models[i], model) == 0)
            return i;
    if (c->n_models == OCRA_SCHED_MAX_MODELS)
        return -1;
    memcpy(c->models[c->n_models], model, OCRA_SCHED_MODEL_MAX);
    return c->n_models++;
}

int
sched_node_check(const struct ocra_sched_node *n, struct ocra_err *err)
{
    if (!memchr(n->name, '\0', sizeof(n->name)) || !n->name[0])
        return ocra_err_set(err, EINVAL, "node: no name");
    if (!memchr(n->gpu_model, '\0', sizeof(n->gpu_model)))
        return ocra_err_set(err, EINVAL, "node %s: GPU model too long", n->name);
    if (n->gpu_count < 0 || n->gpu_count > OCRA_SCHED_MAX_GPUS)
        return ocra_err_set(err, EINVAL, "node %s: %d GPUs (at most %d)", n->name, n->gpu_count,
                            OCRA_SCHED_MAX_GPUS);
    if (n->gpu_count > 0 && !n->gpu_model[0])
        return ocra_err_set(err, EINVAL, "node %s: GPUs without a model", n->name);
    if (n->cpu_milli < 0 || n->ram_mib < 0 || n->gpu_mem_mib < 0 || n->cost_micro < 0 ||
        n->cpu_milli > OCRA_SCHED_QTY_MAX || n->ram_mib > OCRA_SCHED_QTY_MAX ||
        n->gpu_mem_mib > OCRA_SCHED_QTY_MAX || n->cost_micro > OCRA_SCHED_QTY_MAX)
        return ocra_err_set(err, EINVAL, "node %s: capacity or cost out of range [0, 2^40]",
                            n->name);
    if (n->n_labels < 0 || n->n_labels > OCRA_SCHED_LABELS_MAX)
        return ocra_err_set(err, EINVAL, "node %s: too many labels", n->name);
    for (int i = 0; i < n->n_labels; i++)
        if (!memchr(n->labels[i], '\0', OCRA_SCHED_LABEL_MAX))
            return ocra_err_set(err, EINVAL, "node %s: label too long", n->name);
    return 0;
}

/* Frees the node's capacity: every device whole, CPU and RAM all free. */
static void
node_free_all(struct ocra_sched_cluster *c, size_t i)
{
    struct ocra_sched_node *n = &c->nodes[i];

    n->cpu_free = n->cpu_milli;
    n->ram_free = n->ram_mib;
    for (int d = 0; d < OCRA_SCHED_MAX_GPUS; d++) {
        n->gpu_free_milli[d] = d < n->gpu_count ? OCRA_SCHED_MILLI : 0;
        n->gpu_mem_free[d] = d < n->gpu_count ? n->gpu_mem_mib : 0;
    }
    sched_node_refresh(c, i);
}

static bool
same_description(const struct ocra_sched_node *a, const struct ocra_sched_node *b)
{
    if (a->gpu_count != b->gpu_count || a->gpu_mem_mib != b->gpu_mem_mib ||
        a->cpu_milli != b->cpu_milli || a->ram_mib != b->ram_mib ||
        a->cost_micro != b->cost_micro || a->driver != b->driver ||
        a->compute_cap != b->compute_cap || a->n_labels != b->n_labels ||
        strcasecmp(a->gpu_model, b->gpu_model) != 0)
        return false;
    for (int i = 0; i < a->n_labels; i++)
        if (strcmp(a->labels[i], b->labels[i]) != 0)
            return false;
    return true;
}

/* The type of the node just added at index i: that of an earlier node like it, or a new one. */
static int
node_type(struct ocra_sched_cluster *c, size_t i)
{
    size_t t, lim = c->n_types < SCHED_TYPES_MAX ? c->n_types : SCHED_TYPES_MAX;

    for (t = 0; t < lim; t++)
        if (same_description(&c->nodes[c->type_rep[t]], &c->nodes[i]))
            return (int)t;
    t = c->n_types++;
    c->type_rep[t] = i;
    c->type_stamp[t] = 0;
    return (int)t;
}

/* Doubles the room for nodes (and types: at most one per node). */
static void
cluster_grow(struct ocra_sched_cluster *c)
{
    size_t old = c->cap;

    c->cap = c->cap ? 2 * c->cap : 64;
    c->nodes = ocra_xrealloc(c->nodes, c->cap * sizeof(*c->nodes));
    c->hot = ocra_xrealloc(c->hot, c->cap * sizeof(*c->hot));
    c->type_rep = ocra_xrealloc(c->type_rep, c->cap * sizeof(*c->type_rep));
    c->type_stamp = ocra_xrealloc(c->type_stamp, c->cap * sizeof(*c->type_stamp));
    c->heap_pos = ocra_xrealloc(c->heap_pos, c->cap * sizeof(*c->heap_pos));
    c->empty = ocra_xrealloc(c->empty, c->cap * sizeof(*c->empty));
    memset(&c->empty[old], 0, (c->cap - old) * sizeof(*c->empty));
    if (c->memo) {
        c->memo = ocra_xrealloc(c->memo, c->cap * SCHED_MEMO_WAYS * sizeof(*c->memo));
        memset(&c->memo[old * SCHED_MEMO_WAYS], 0,
               (c->cap - old) * SCHED_MEMO_WAYS * sizeof(*c->memo));
    }
    if (c->search == OCRA_SCHED_SEARCH_INDEX)
        sched_index_resize(c);
}

int
ocra_sched_cluster_add(struct ocra_sched_cluster *c, const struct ocra_sched_node *node,
                       struct ocra_err *err)
{
    int id = -1;

    if (sched_node_check(node, err) < 0)
        return -1;
    if (c->n == OCRA_SCHED_MAX_NODES)
        return ocra_err_set(err, ENOSPC, "node %s: more than %d nodes", node->name,
                            OCRA_SCHED_MAX_NODES);
    if (node->gpu_count > 0 && (id = model_id(c, node->gpu_model)) < 0)
        return ocra_err_set(err, ENOSPC, "node %s: more than %d GPU models", node->name,
                            OCRA_SCHED_MAX_MODELS);
    if (c->n == c->cap)
        cluster_grow(c);
    c->nodes[c->n] = *node;
    c->hot[c->n].model_id = id;
    c->hot[c->n].type = node_type(c, c->n);
    c->heap_pos[c->n] = UINT32_MAX; /* not empty yet: node_free_all() makes it so */
    c->gpu_capacity += (int64_t)node->gpu_count * OCRA_SCHED_MILLI;
    node_free_all(c, c->n++);
    return 0;
}

void
ocra_sched_cluster_reset(struct ocra_sched_cluster *c)
{
    for (size_t i = 0; i < c->n; i++)
        node_free_all(c, i);
}

void
sched_node_refresh(struct ocra_sched_cluster *c, size_t i)
{
    const struct ocra_sched_node *n = &c->nodes[i];
    struct sched_hot *h = &c->hot[i];

    h->cpu_free = n->cpu_free;
    h->ram_free = n->ram_free;
    h->gpu_count = n->gpu_count;
    h->gpu_free_total = h->full = h->max_free = 0;
    for (int d = 0; d < n->gpu_count; d++) {
        int f = n->gpu_free_milli[d];

        h->gpu_free_total += f;
        h->full += f == OCRA_SCHED_MILLI;
        if (f > h->max_free)
            h->max_free = f;
    }
    h->empty = h->cpu_free == n->cpu_milli && h->ram_free == n->ram_mib &&
               h->full == n->gpu_count; /* no share, so no GPU memory, is taken either */
    h->frag_stale = true; /* computed when asked for: only fgd and the measure read it */
    if (c->memo)
        memset(&c->memo[i * SCHED_MEMO_WAYS], 0, SCHED_MEMO_WAYS * sizeof(*c->memo));
    if (c->search == OCRA_SCHED_SEARCH_INDEX)
        sched_index_update(c, i);
}

/* ---- one decision ---------------------------------------------------------------------- */

/* Lexicographic score: lower is better. */
struct key {
    int64_t a, b, c;
};

static bool
key_less(const struct key *x, const struct key *y)
{
    if (x->a != y->a)
        return x->a < y->a;
    if (x->b != y->b)
        return x->b < y->b;
    return x->c < y->c;
}

static int
want_init(const struct ocra_sched_cluster *c, const struct ocra_sched_req *r, struct sched_want *w,
          struct ocra_err *err)
{
    memset(w, 0, sizeof(*w));
    w->r = r;
    w->milli = r->gpu_milli ? r->gpu_milli : OCRA_SCHED_MILLI;
    if (r->gpus < 0 || r->gpus > OCRA_SCHED_MAX_GPUS)
        return ocra_err_set(err, EINVAL, "request: %d GPUs (0..%d)", r->gpus, OCRA_SCHED_MAX_GPUS);
    if (r->gpu_milli < 0 || r->gpu_milli > OCRA_SCHED_MILLI || (r->gpus == 0 && r->gpu_milli))
        return ocra_err_set(err, EINVAL, "request: gpu_milli %d (1..1000, with gpus >= 1)",
                            r->gpu_milli);
    if (r->gpus > 1 && w->milli != OCRA_SCHED_MILLI)
        return ocra_err_set(err, EINVAL,
                            "request: a share of a GPU (gpu_milli %d) is for one "
                            "GPU, not %d",
                            r->gpu_milli, r->gpus);
    if (r->cpu_milli < 0 || r->ram_mib < 0 || r->gpu_mem_mib < 0 ||
        r->cpu_milli > OCRA_SCHED_QTY_MAX || r->ram_mib > OCRA_SCHED_QTY_MAX ||
        r->gpu_mem_mib > OCRA_SCHED_QTY_MAX || (r->n_labels && !r->labels))
        return ocra_err_set(err, EINVAL, "request: CPU, RAM or GPU memory out of range [0, 2^40]");
    w->k = w->milli == OCRA_SCHED_MILLI ? r->gpus : 0;
    if (r->gpus == 0)
        w->milli = 0;
    w->models = UINT64_MAX;
    if (r->gpu_model && r->gpu_model[0]) {
        const char *p = r->gpu_model;

        w->models = 0;
        while (*p) {
            size_t len = strcspn(p, "|");

            for (int i = 0; i < c->n_models; i++)
                if (strlen(c->models[i]) == len && strncasecmp(c->models[i], p, len) == 0)
                    w->models |= UINT64_C(1) << i;
            p += len + (p[len] == '|');
        }
    }
    w->statics = r->min_driver || r->min_compute_cap || r->n_labels || r->gpu_mem_mib;
    return 0;
}

static bool
has_label(const struct ocra_sched_node *n, const char *label)
{
    for (int i = 0; i < n->n_labels; i++)
        if (strcmp(n->labels[i], label) == 0)
            return true;
    return false;
}

static bool
labels_pass(const struct ocra_sched_node *n, const struct ocra_sched_req *r)
{
    for (size_t i = 0; i < r->n_labels; i++)
        if (!has_label(n, r->labels[i]))
            return false;
    return true;
}

/* The filters a node's description decides, whatever its allocation. */
static bool
statics_pass(const struct ocra_sched_node *n, const struct sched_want *w)
{
    const struct ocra_sched_req *r = w->r;

    if (r->gpus && (n->driver < r->min_driver || n->compute_cap < r->min_compute_cap ||
                    n->gpu_mem_mib < r->gpu_mem_mib))
        return false;
    return labels_pass(n, r);
}

/* CPU, RAM, model, and enough free devices in the summary (memory is checked per device). */
static bool
hot_pass(const struct sched_hot *h, const struct sched_want *w)
{
    if (h->cpu_free < w->r->cpu_milli || h->ram_free < w->r->ram_mib)
        return false;
    if (!w->r->gpus)
        return true;
    if (h->model_id < 0 || !(w->models >> h->model_id & 1))
        return false;
    return w->k ? h->full >= w->k : h->max_free >= w->milli;
}

/* The fragmentation after taking w from node i, with `dev` the device of a share (or -1). */
static int64_t
frag_after(const struct ocra_sched_cluster *c, size_t i, const struct sched_want *w, int dev)
{
    const struct ocra_sched_node *n = &c->nodes[i];
    int f[OCRA_SCHED_MAX_GPUS];
    int k = w->k;

    memcpy(f, n->gpu_free_milli, sizeof(f));
    if (dev >= 0)
        f[dev] -= w->milli;
    for (int d = 0; d < n->gpu_count && k > 0; d++) {
        if (f[d] == OCRA_SCHED_MILLI) {
            f[d] = 0;
            k--;
        }
    }
    return sched_frag_eval(c, f, n->gpu_count, n->cpu_free - w->r->cpu_milli);
}

/* True when device d of n was already weighed in this loop: same free share, same memory. */
static bool
seen_share(const struct ocra_sched_node *n, int d, int64_t mem)
{
    for (int j = 0; j < d; j++)
        if (n->gpu_free_milli[j] == n->gpu_free_milli[d] && n->gpu_mem_free[j] >= mem &&
            n->gpu_mem_free[j] == n->gpu_mem_free[d])
            return true;
    return false;
}

/*
 * The device for a share on node i: first-fit the lowest index, fgd the one whose use scores
 * best (*score: that score, sched_frag_score()), the others the tightest fit; ties go to the
 * lowest index. -1 when no device has the share and the memory free.
 */
static int
share_device(struct ocra_sched_cluster *c, size_t i, const struct sched_want *w,
             enum ocra_sched_policy p, int *score)
{
    const struct ocra_sched_node *n = &c->nodes[i];
    int64_t mem = w->r->gpu_mem_mib;
    int best = -1, sc;

    for (int d = 0; d < n->gpu_count; d++) {
        int f = n->gpu_free_milli[d];

        if (f < w->milli || n->gpu_mem_free[d] < mem)
            continue;
        if (p == OCRA_SCHED_FIRST_FIT)
            return d;
        if (p != OCRA_SCHED_FGD || !c->weight) { /* fgd without a typical workload: best-fit */
            if (best < 0 || f < n->gpu_free_milli[best])
                best = d;
            continue;
        }
        if (seen_share(n, d, mem))
            continue;
        sc = sched_frag_score(c, sched_node_frag(c, i) - frag_after(c, i, w, d));
        if (best < 0 || sc > *score) {
            best = d;
            *score = sc;
        }
    }
    return best;
}

/*
 * fgd's weighing of node i: the score of placing w there and the device of a share (-1 for
 * none). With a shape id (not 0) the result comes from, or goes to, the node's memo. false when
 * no device takes the share.
 */
static bool
fgd_weigh(struct ocra_sched_cluster *c, size_t i, const struct sched_want *w, uint32_t shape,
          int *dev, int *score)
{
    struct sched_memo *slot = NULL;
    bool share = !w->k && w->milli;

    if (shape) {
        slot = &c->memo[i * SCHED_MEMO_WAYS + shape % SCHED_MEMO_WAYS];
        if (slot->shape == shape) {
            *dev = slot->dev;
            *score = slot->score;
            return !share || *dev >= 0;
        }
    }
    *dev = -1;
    *score = 0;
    if (share)
        *dev = share_device(c, i, w, OCRA_SCHED_FGD, score);
    else
        *score = sched_frag_score(c, sched_node_frag(c, i) - frag_after(c, i, w, -1));
    if (slot)
        *slot = (struct sched_memo){shape, (int16_t)*dev, (int16_t)*score};
    return !share || *dev >= 0;
}

/* Scores node i (which passed the filters); false when no device takes the share. */
static bool
score(struct ocra_sched_cluster *c, size_t i, const struct sched_want *w, enum ocra_sched_policy p,
      uint32_t shape, struct key *key, int *dev)
{
    const struct sched_hot *h = &c->hot[i];
    int64_t take = w->k ? (int64_t)w->k * OCRA_SCHED_MILLI : w->milli;
    int sc = 0;

    *dev = -1;
    if (p == OCRA_SCHED_FGD) {
        if (!fgd_weigh(c, i, w, shape, dev, &sc))
            return false;
    } else if (!w->k && w->milli && (*dev = share_device(c, i, w, p, &sc)) < 0) {
        return false;
    }
    if (p == OCRA_SCHED_FIRST_FIT)
        return true;
    key->a = p == OCRA_SCHED_CHEAPEST ? c->nodes[i].cost_micro * take : 0;
    key->b = h->gpu_free_total - take;
    key->c = h->cpu_free - w->r->cpu_milli;
    if (p == OCRA_SCHED_FGD && c->weight) { /* the best score; ties: the lowest index */
        key->a = -sc;
        key->b = key->c = 0;
    }
    return true;
}

/*
 * Nodes in the same state score the same, and ties go to the lower index, so the scan weighs
 * only the first empty node of each type, and under fgd only the first of a run of equal nodes
 * (the index has the same skips built in, and fgd's memo).
 */
static bool
seen_empty_type(struct ocra_sched_cluster *c, size_t i)
{
    const struct sched_hot *h = &c->hot[i];

    if (!h->empty)
        return false;
    if (c->type_stamp[h->type] == c->stamp)
        return true;
    c->type_stamp[h->type] = c->stamp;
    return false;
}

static bool
same_state(const struct ocra_sched_cluster *c, size_t a, size_t b)
{
    const struct sched_hot *x = &c->hot[a], *y = &c->hot[b];
    const struct ocra_sched_node *m = &c->nodes[a], *n = &c->nodes[b];

    return x->cpu_free == y->cpu_free && x->ram_free == y->ram_free &&
           x->gpu_count == y->gpu_count && x->gpu_free_total == y->gpu_free_total &&
           x->model_id == y->model_id &&
           memcmp(m->gpu_free_milli, n->gpu_free_milli, sizeof(m->gpu_free_milli)) == 0 &&
           memcmp(m->gpu_mem_free, n->gpu_mem_free, sizeof(m->gpu_mem_free)) == 0;
}

static void
take(struct ocra_sched_cluster *c, size_t i, const struct sched_want *w, int dev,
     struct ocra_sched_alloc *out)
{
    struct ocra_sched_node *n = &c->nodes[i];

    memset(out, 0, sizeof(*out));
    out->node = (int)i;
    out->cpu_milli = w->r->cpu_milli;
    out->ram_mib = w->r->ram_mib;
    out->gpu_milli = w->milli;
    out->gpu_mem_mib = w->k ? n->gpu_mem_mib : w->r->gpu_mem_mib;
    if (dev >= 0)
        out->devs[out->n_devs++] = (uint8_t)dev;
    for (int d = 0; d < n->gpu_count && out->n_devs < w->k; d++)
        if (n->gpu_free_milli[d] == OCRA_SCHED_MILLI)
            out->devs[out->n_devs++] = (uint8_t)d;
    for (int j = 0; j < out->n_devs; j++) {
        n->gpu_free_milli[out->devs[j]] -= out->gpu_milli;
        n->gpu_mem_free[out->devs[j]] -= out->gpu_mem_mib;
    }
    n->cpu_free -= out->cpu_milli;
    n->ram_free -= out->ram_mib;
    sched_node_refresh(c, i);
}

void
ocra_sched_release(struct ocra_sched_cluster *c, const struct ocra_sched_alloc *a)
{
    struct ocra_sched_node *n;

    assert(a->node >= 0 && (size_t)a->node < c->n && a->n_devs <= OCRA_SCHED_MAX_GPUS);
    n = &c->nodes[a->node];
    for (int j = 0; j < a->n_devs; j++) {
        n->gpu_free_milli[a->devs[j]] += a->gpu_milli;
        n->gpu_mem_free[a->devs[j]] += a->gpu_mem_mib;
    }
    n->cpu_free += a->cpu_milli;
    n->ram_free += a->ram_mib;
    sched_node_refresh(c, (size_t)a->node);
}

static int
claim_check(const struct ocra_sched_cluster *c, const struct ocra_sched_alloc *a,
            struct ocra_err *err)
{
    const struct ocra_sched_node *n;

    if (a->node < 0 || (size_t)a->node >= c->n || a->n_devs < 0 ||
        a->n_devs > OCRA_SCHED_MAX_GPUS || a->gpu_milli < 0 || a->gpu_milli > OCRA_SCHED_MILLI ||
        a->gpu_mem_mib < 0 || a->cpu_milli < 0 || a->ram_mib < 0)
        return ocra_err_set(err, EINVAL, "claim: no such node, or a malformed allocation");
    n = &c->nodes[a->node];
    for (int j = 0; j < a->n_devs; j++) {
        if (a->devs[j] >= n->gpu_count || (j > 0 && a->devs[j] <= a->devs[j - 1]))
            return ocra_err_set(err, EINVAL, "claim: node %s has no GPU %d (or devices repeat)",
                                n->name, a->devs[j]);
        if (n->gpu_free_milli[a->devs[j]] < a->gpu_milli ||
            n->gpu_mem_free[a->devs[j]] < a->gpu_mem_mib)
            return ocra_err_set(err, EBUSY, "claim: GPU %d of node %s is no longer free",
                                a->devs[j], n->name);
    }
    if (n->cpu_free < a->cpu_milli || n->ram_free < a->ram_mib)
        return ocra_err_set(err, EBUSY, "claim: node %s has not that much CPU or RAM free",
                            n->name);
    return 0;
}

int
ocra_sched_claim(struct ocra_sched_cluster *c, const struct ocra_sched_alloc *a,
                 struct ocra_err *err)
{
    struct ocra_sched_node *n;

    if (claim_check(c, a, err) < 0)
        return -1;
    n = &c->nodes[a->node];
    for (int j = 0; j < a->n_devs; j++) {
        n->gpu_free_milli[a->devs[j]] -= a->gpu_milli;
        n->gpu_mem_free[a->devs[j]] -= a->gpu_mem_mib;
    }
    n->cpu_free -= a->cpu_milli;
    n->ram_free -= a->ram_mib;
    sched_node_refresh(c, (size_t)a->node);
    return 0;
}

int
ocra_sched_cluster_find(const struct ocra_sched_cluster *c, const char *name)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->nodes[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* ---- why a request fails ---------------------------------------------------------------- */

enum stage { ST_MODEL, ST_DRIVER, ST_CC, ST_LABELS, ST_GPUS, ST_GPU_MEM, ST_CPU, ST_RAM, ST_N };

/* Whether empty node i passes filter st; *have is its figure for the "largest" of a message. */
static bool
stage_pass(const struct ocra_sched_cluster *c, size_t i, const struct sched_want *w, enum stage st,
           int64_t *have)
{
    const struct ocra_sched_node *n = &c->nodes[i];
    const struct ocra_sched_req *r = w->r;
    int id = c->hot[i].model_id;

    switch (st) {
    case ST_MODEL:
        return !r->gpus || (id >= 0 && (w->models >> id & 1));
    case ST_DRIVER:
        *have = n->driver;
        return !r->gpus || n->driver >= r->min_driver;
    case ST_CC:
        *have = n->compute_cap;
        return !r->gpus || n->compute_cap >= r->min_compute_cap;
    case ST_LABELS:
        return labels_pass(n, r);
    case ST_GPUS:
        *have = n->gpu_count;
        return n->gpu_count >= r->gpus;
    case ST_GPU_MEM:
        *have = n->gpu_mem_mib;
        return !r->gpus || n->gpu_mem_mib >= r->gpu_mem_mib;
    case ST_CPU:
        *have = n->cpu_milli;
        return n->cpu_milli >= r->cpu_milli;
    default:
        *have = n->ram_mib;
        return n->ram_mib >= r->ram_mib;
    }
}

/* Whether empty node i passes every filter before st. */
static bool
stages_pass(const struct ocra_sched_cluster *c, size_t i, const struct sched_want *w, int st)
{
    int64_t have;

    for (int s = 0; s < st; s++)
        if (!stage_pass(c, i, w, (enum stage)s, &have))
            return false;
    return true;
}

static int
why_stage(const struct sched_want *w, enum stage st, int64_t most, size_t before, size_t total,
          struct ocra_err *err)
{
    const struct ocra_sched_req *r = w->r;
    char what[160], esc[80];
    uint32_t v = (uint32_t)most;

    switch (st) {
    case ST_MODEL:
        if (!r->gpu_model || !r->gpu_model[0]) { /* any model: every node lacks GPUs */
            (void)snprintf(what, sizeof(what), "a GPU");
            break;
        }
        ocra_str_escape(r->gpu_model, strlen(r->gpu_model), 60, esc, sizeof(esc));
        (void)snprintf(what, sizeof(what), "GPU model %s", esc);
        break;
    case ST_DRIVER:
        (void)snprintf(what, sizeof(what), "NVIDIA driver >= %u.%u.%02u (newest %u.%u.%02u)",
                       r->min_driver / 1000000, r->min_driver / 1000 % 1000, r->min_driver % 1000,
                       v / 1000000, v / 1000 % 1000, v % 1000);
        break;
    case ST_CC:
        (void)snprintf(what, sizeof(what), "compute capability >= %d.%d (highest %d.%d)",
                       r->min_compute_cap / 10, r->min_compute_cap % 10, (int)most / 10,
                       (int)most % 10);
        break;
    case ST_LABELS:
        (void)snprintf(what, sizeof(what), "every requested label");
        break;
    default: {
        static const char *const units[] = {"",          "",       "", "", "GPUs", "MiB per GPU",
                                            "CPU milli", "MiB RAM"};
        int64_t want = st == ST_GPUS      ? r->gpus
                       : st == ST_GPU_MEM ? r->gpu_mem_mib
                       : st == ST_CPU     ? r->cpu_milli
                                          : r->ram_mib;

        (void)snprintf(what, sizeof(what), "%" PRId64 " %s (the largest has %" PRId64 ")", want,
                       units[st], most);
    }
    }
    if (before == total)
        return ocra_err_set(err, ENOSPC, "no node can ever host it: none of %zu has %s", total,
                            what);
    return ocra_err_set(err, ENOSPC,
                        "no node can ever host it: none of the %zu of %zu nodes that pass the "
                        "earlier filters has %s",
                        before, total, what);
}

/*
 * Explains a failed decision: the first filter that rules out every node still standing when
 * all nodes are empty (ENOSPC), or, when some node could host the request once free, EAGAIN.
 */
static int
sched_why(const struct ocra_sched_cluster *c, const struct sched_want *w, struct ocra_err *err)
{
    size_t alive = c->n, next;
    int64_t most, have;

    if (!err)
        return -1;
    for (int st = 0; st < ST_N; st++) {
        next = 0;
        most = 0;
        for (size_t i = 0; i < c->n; i++) {
            if (!stages_pass(c, i, w, st))
                continue;
            have = 0;
            next += stage_pass(c, i, w, (enum stage)st, &have);
            if (have > most)
                most = have;
        }
        if (next == 0)
            return why_stage(w, (enum stage)st, most, alive, c->n, err);
        alive = next;
    }
    return ocra_err_set(err, EAGAIN, "no node has room now (%zu of %zu could host it when free)",
                        alive, c->n);
}

/* The id of w's shape for fgd's memo; a shape not among the last SCHED_SHAPES gets a new one. */
static uint32_t
shape_id(struct ocra_sched_cluster *c, const struct sched_want *w)
{
    const struct ocra_sched_req *r = w->r;
    struct sched_shape *s;

    if (!c->memo)
        c->memo = ocra_xcalloc(c->cap * SCHED_MEMO_WAYS, sizeof(*c->memo));
    for (int i = 0; i < SCHED_SHAPES; i++) {
        s = &c->shapes[i];
        if (s->id && s->k == w->k && s->milli == w->milli && s->cpu == r->cpu_milli &&
            s->ram == r->ram_mib && s->gpu_mem == r->gpu_mem_mib)
            return s->id;
    }
    if (c->shape_seq == UINT32_MAX) { /* every id given: forget them all, and every memo */
        memset(c->memo, 0, c->cap * SCHED_MEMO_WAYS * sizeof(*c->memo));
        memset(c->shapes, 0, sizeof(c->shapes));
        c->shape_seq = 0;
    }
    s = &c->shapes[c->shape_next];
    c->shape_next = (c->shape_next + 1) % SCHED_SHAPES;
    *s = (struct sched_shape){w->k,       w->milli,       r->cpu_milli,
                              r->ram_mib, r->gpu_mem_mib, ++c->shape_seq};
    return s->id;
}

/* The decision so far. */
struct choice {
    const struct sched_want *w;
    enum ocra_sched_policy policy;
    uint32_t shape;    /* fgd's memo: the request's shape id; 0: no memo */
    size_t best, prev; /* prev: the node scored last */
    struct key best_key;
    int best_dev;
};

static bool
passes(const struct ocra_sched_cluster *c, size_t i, const struct sched_want *w)
{
    return hot_pass(&c->hot[i], w) && (!w->statics || statics_pass(&c->nodes[i], w));
}

/* Weighs node i, which passes the filters; true when the decision is made (first-fit). */
static bool
weigh(struct ocra_sched_cluster *c, size_t i, struct choice *ch)
{
    const struct sched_want *w = ch->w;
    struct key key = {0, 0, 0};
    int dev;

    if (ch->policy == OCRA_SCHED_FGD && !ch->shape && ch->prev != SIZE_MAX &&
        same_state(c, ch->prev, i))
        return false;
    if (!score(c, i, w, ch->policy, ch->shape, &key, &dev))
        return false;
    ch->prev = i;
    if (ch->best == SIZE_MAX || key_less(&key, &ch->best_key)) {
        ch->best = i;
        ch->best_key = key;
        ch->best_dev = dev;
    }
    return ch->policy == OCRA_SCHED_FIRST_FIT;
}

/* The capacity index's visit of node i. */
static bool
consider(struct ocra_sched_cluster *c, size_t i, void *arg)
{
    return passes(c, i, ((struct choice *)arg)->w) && weigh(c, i, arg);
}

/* Weighs every node in index order that passes, but of the empty nodes of a type the first. */
static void
scan(struct ocra_sched_cluster *c, struct choice *ch)
{
    if (++c->stamp == 0) { /* wrapped: forget every stamp */
        for (size_t t = 0; t < c->n_types; t++)
            c->type_stamp[t] = 0;
        c->stamp = 1;
    }
    for (size_t i = 0; i < c->n; i++) {
        if (!passes(c, i, ch->w))
            continue;
        if (ch->policy != OCRA_SCHED_FIRST_FIT && seen_empty_type(c, i))
            continue;
        if (weigh(c, i, ch))
            break;
    }
}

void
ocra_sched_cluster_set_search(struct ocra_sched_cluster *c, enum ocra_sched_search s)
{
    if (s == c->search)
        return;
    c->search = s;
    if (s == OCRA_SCHED_SEARCH_INDEX)
        sched_index_rebuild(c); /* the scan left it as it was */
}

int
ocra_sched_place(struct ocra_sched_cluster *c, enum ocra_sched_policy policy,
                 const struct ocra_sched_req *r, struct ocra_sched_alloc *out, struct ocra_err *err)
{
    struct choice ch = {NULL, policy, 0, SIZE_MAX, SIZE_MAX, {0, 0, 0}, -1};
    struct sched_want w;

    if (want_init(c, r, &w, err) < 0)
        return -1;
    if (c->cls_dirty)
        sched_classes_build(c);
    ch.w = &w;
    if (c->search == OCRA_SCHED_SEARCH_SCAN) {
        scan(c, &ch);
    } else {
        if (policy == OCRA_SCHED_FGD)
            ch.shape = shape_id(c, &w);
        (void)sched_index_search(c, &w, consider, &ch);
    }
    if (ch.best == SIZE_MAX)
        return sched_why(c, &w, err);
    take(c, ch.best, &w, ch.best_dev, out);
    return 0;
}

/* ---- what the queue (sched_queue.c) needs of the cluster -------------------------------- */

static void *
dup_array(const void *p, size_t n, size_t size)
{
    void *q;

    if (!p || !n)
        return NULL;
    q = ocra_xcalloc(n, size);
    memcpy(q, p, n * size);
    return q;
}

struct ocra_sched_cluster *
sched_cluster_dup(const struct ocra_sched_cluster *src)
{
    struct ocra_sched_cluster *c = ocra_xcalloc(1, sizeof(*c));

    *c = *src; /* then every array copied; fgd's memo starts afresh, and so its shapes */
    c->nodes = dup_array(src->nodes, src->cap, sizeof(*c->nodes));
    c->hot = dup_array(src->hot, src->cap, sizeof(*c->hot));
    c->type_rep = dup_array(src->type_rep, src->cap, sizeof(*c->type_rep));
    c->type_stamp = dup_array(src->type_stamp, src->cap, sizeof(*c->type_stamp));
    c->heap_pos = dup_array(src->heap_pos, src->cap, sizeof(*c->heap_pos));
    c->seg = dup_array(src->seg, 2 * src->cap, sizeof(*c->seg));
    c->empty = dup_array(src->empty, src->cap, sizeof(*c->empty));
    for (size_t t = 0; c->empty && t < src->n_types; t++)
        c->empty[t].v = dup_array(src->empty[t].v, src->empty[t].cap, sizeof(*c->empty[t].v));
    c->memo = NULL;
    memset(c->shapes, 0, sizeof(c->shapes));
    c->shape_seq = 0;
    c->shape_next = 0;
    return c;
}

void
sched_cluster_sync(struct ocra_sched_cluster *dst, const struct ocra_sched_cluster *src)
{
    assert(dst->n == src->n);
    for (size_t i = 0; i < src->n; i++) {
        const struct ocra_sched_node *s = &src->nodes[i];
        struct ocra_sched_node *d = &dst->nodes[i];

        if (d->cpu_free == s->cpu_free && d->ram_free == s->ram_free &&
            memcmp(d->gpu_free_milli, s->gpu_free_milli, sizeof(d->gpu_free_milli)) == 0 &&
            memcmp(d->gpu_mem_free, s->gpu_mem_free, sizeof(d->gpu_mem_free)) == 0)
            continue;
        d->cpu_free = s->cpu_free;
        d->ram_free = s->ram_free;
        memcpy(d->gpu_free_milli, s->gpu_free_milli, sizeof(d->gpu_free_milli));
        memcpy(d->gpu_mem_free, s->gpu_mem_free, sizeof(d->gpu_mem_free));
        sched_node_refresh(dst, i);
    }
}

bool
sched_node_admits(const struct ocra_sched_cluster *c, size_t i, const struct ocra_sched_req *r)
{
    struct ocra_sched_req one = *r;
    struct sched_want w;
    int64_t have;

    one.gpus = r->gpus > 0;
    one.gpu_milli = 0;
    if (want_init(c, &one, &w, NULL) < 0)
        return false;
    for (int st = 0; st < ST_N; st++)
        if (st != ST_GPUS && !stage_pass(c, i, &w, (enum stage)st, &have))
            return false;
    return c->nodes[i].gpu_count >= one.gpus;
}
