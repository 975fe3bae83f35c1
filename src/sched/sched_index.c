/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sched_index.c: the capacity index that a decision searches instead of weighing every node. A
 * segment tree over the node indices keeps, for each range of nodes, the most CPU, RAM, whole
 * free devices and free share of one device that a node of the range has, and the GPU models
 * the range holds. A search descends only into ranges that could host the request, left to
 * right, so first-fit stops at the first node that passes and the other policies score only
 * nodes that can fit; a change to one node updates its leaf and the ranges above it. All empty
 * nodes of one type score the same and ties go to the lower index, so only the lowest-numbered
 * empty node of each type is in the tree: a min-heap per type holds the others and hands the
 * next one over when that node is taken.
 */
#include "sched/sched_int.h"

#include <string.h>

#define NOT_EMPTY UINT32_MAX

static const struct sched_seg seg_none = {-1, -1, -1, -1, -1, -1, 0};

/* ---- the empty nodes of each type --------------------------------------------------------- */

static void
heap_put(struct ocra_sched_cluster *c, struct sched_heap *h, uint32_t k, uint32_t i)
{
    h->v[k] = i;
    c->heap_pos[i] = k;
}

static void
heap_up(struct ocra_sched_cluster *c, struct sched_heap *h, uint32_t k)
{
    uint32_t i = h->v[k];

    while (k > 0 && h->v[(k - 1) / 2] > i) {
        heap_put(c, h, k, h->v[(k - 1) / 2]);
        k = (k - 1) / 2;
    }
    heap_put(c, h, k, i);
}

static void
heap_down(struct ocra_sched_cluster *c, struct sched_heap *h, uint32_t k)
{
    uint32_t i = h->v[k];

    for (;;) {
        uint32_t m = 2 * k + 1;

        if (m >= h->n)
            break;
        if (m + 1 < h->n && h->v[m + 1] < h->v[m])
            m++;
        if (h->v[m] > i)
            break;
        heap_put(c, h, k, h->v[m]);
        k = m;
    }
    heap_put(c, h, k, i);
}

static void
heap_push(struct ocra_sched_cluster *c, struct sched_heap *h, uint32_t i)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? 2 * h->cap : 4;
        h->v = ocra_xrealloc(h->v, h->cap * sizeof(*h->v));
    }
    h->v[h->n] = i;
    heap_up(c, h, h->n++);
}

static void
heap_remove(struct ocra_sched_cluster *c, struct sched_heap *h, uint32_t i)
{
    uint32_t k = c->heap_pos[i], last = h->v[--h->n];

    c->heap_pos[i] = NOT_EMPTY;
    if (k == h->n)
        return;
    heap_put(c, h, k, last);
    heap_up(c, h, k);
    heap_down(c, h, c->heap_pos[last]);
}

/* ---- the tree ----------------------------------------------------------------------------- */

static void
seg_leaf(const struct ocra_sched_cluster *c, size_t i, struct sched_seg *s)
{
    const struct sched_hot *h = &c->hot[i];
    const struct sched_heap *e = &c->empty[h->type];

    if (h->empty && e->v[0] != i) {
        *s = seg_none;
        return;
    }
    s->cpu = h->cpu_free;
    s->ram = h->ram_free;
    s->cpu_whole = h->full ? h->cpu_free : -1;
    s->ram_whole = h->full ? h->ram_free : -1;
    s->full = h->full;
    s->max_free = h->max_free;
    s->models = h->model_id >= 0 ? UINT64_C(1) << h->model_id : 0;
}

static void
seg_join(struct sched_seg *s, const struct sched_seg *a, const struct sched_seg *b)
{
    s->cpu = a->cpu > b->cpu ? a->cpu : b->cpu;
    s->ram = a->ram > b->ram ? a->ram : b->ram;
    s->cpu_whole = a->cpu_whole > b->cpu_whole ? a->cpu_whole : b->cpu_whole;
    s->ram_whole = a->ram_whole > b->ram_whole ? a->ram_whole : b->ram_whole;
    s->full = a->full > b->full ? a->full : b->full;
    s->max_free = a->max_free > b->max_free ? a->max_free : b->max_free;
    s->models = a->models | b->models;
}

static bool
seg_equal(const struct sched_seg *a, const struct sched_seg *b)
{
    return a->cpu == b->cpu && a->ram == b->ram && a->cpu_whole == b->cpu_whole &&
           a->ram_whole == b->ram_whole && a->full == b->full && a->max_free == b->max_free &&
           a->models == b->models;
}

/* Rewrites node i's leaf and the ranges above it, up to the first that does not change. */
static void
seg_set(struct ocra_sched_cluster *c, size_t i)
{
    struct sched_seg s;
    size_t v = c->cap + i;

    seg_leaf(c, i, &s);
    while (!seg_equal(&c->seg[v], &s)) {
        c->seg[v] = s;
        if (v == 1)
            break;
        v /= 2;
        seg_join(&s, &c->seg[2 * v], &c->seg[2 * v + 1]);
    }
}

void
sched_index_resize(struct ocra_sched_cluster *c)
{
    size_t leaves = c->cap; /* a power of two: 64, doubled */

    c->seg = ocra_xrealloc(c->seg, 2 * leaves * sizeof(*c->seg));
    for (size_t i = 0; i < leaves; i++) {
        if (i < c->n)
            seg_leaf(c, i, &c->seg[leaves + i]);
        else
            c->seg[leaves + i] = seg_none;
    }
    for (size_t v = leaves - 1; v >= 1; v--)
        seg_join(&c->seg[v], &c->seg[2 * v], &c->seg[2 * v + 1]);
    c->seg[0] = seg_none;
}

void
sched_index_update(struct ocra_sched_cluster *c, size_t i)
{
    struct sched_heap *e = &c->empty[c->hot[i].type];
    uint32_t head = e->n ? e->v[0] : NOT_EMPTY;
    bool was = c->heap_pos[i] != NOT_EMPTY;

    if (c->hot[i].empty != was) {
        if (was)
            heap_remove(c, e, (uint32_t)i);
        else
            heap_push(c, e, (uint32_t)i);
        if (head != NOT_EMPTY && head != i)
            seg_set(c, head); /* it may have stopped being the type's first */
        if (e->n && e->v[0] != i && e->v[0] != head)
            seg_set(c, e->v[0]); /* the type's new first */
    }
    seg_set(c, i);
}

void
sched_index_rebuild(struct ocra_sched_cluster *c)
{
    for (size_t t = 0; t < c->n_types; t++)
        c->empty[t].n = 0;
    for (size_t i = 0; i < c->n; i++) {
        c->heap_pos[i] = NOT_EMPTY;
        if (c->hot[i].empty)
            heap_push(c, &c->empty[c->hot[i].type], (uint32_t)i);
    }
    if (c->cap)
        sched_index_resize(c);
}

void
sched_index_free(struct ocra_sched_cluster *c)
{
    for (size_t t = 0; c->empty && t < c->n_types; t++)
        free(c->empty[t].v);
    free(c->empty);
    free(c->heap_pos);
    free(c->seg);
}

/* ---- the search --------------------------------------------------------------------------- */

static bool
seg_may_fit(const struct sched_seg *s, const struct sched_want *w)
{
    if (s->cpu < w->r->cpu_milli || s->ram < w->r->ram_mib)
        return false; /* also every range without a visible node: -1 < 0 */
    if (!w->r->gpus)
        return true;
    if (!(s->models & w->models))
        return false;
    if (w->k) /* whole GPUs: CPU and RAM on a node that has one */
        return s->full >= w->k && s->cpu_whole >= w->r->cpu_milli && s->ram_whole >= w->r->ram_mib;
    return s->max_free >= w->milli;
}

struct search {
    const struct sched_want *w;
    bool (*visit)(struct ocra_sched_cluster *c, size_t i, void *arg);
    void *arg;
};

static bool
descend(struct ocra_sched_cluster *c, size_t v, const struct search *s)
{
    if (!seg_may_fit(&c->seg[v], s->w))
        return false;
    if (v >= c->cap)
        return s->visit(c, v - c->cap, s->arg);
    return descend(c, 2 * v, s) || descend(c, 2 * v + 1, s);
}

bool
sched_index_search(struct ocra_sched_cluster *c, const struct sched_want *w,
                   bool (*visit)(struct ocra_sched_cluster *c, size_t i, void *arg), void *arg)
{
    struct search s = {w, visit, arg};

    return c->n > 0 && descend(c, 1, &s);
}
