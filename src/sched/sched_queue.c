/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sched_queue.c: the queue's policy, a pure function of the cluster, the running workloads and
 * the queued requests (sched.h states the rules). One decision works on three scratch copies
 * of the cluster: "work" (now: the starts of this decision taken), "shadow" (the head's
 * reservation: the cluster at the reservation time, the head in it, and what backfills past
 * it holds beyond that time) and "empty" (the cluster with nothing allocated, to tell a
 * request that must wait from one that can never fit). Every placement goes through
 * ocra_sched_place() or, for gangs of whole nodes, the placer's own filters and
 * ocra_sched_claim(). Within one decision capacity is only taken, never given back, so a
 * request shape that found no room once finds none again: such shapes are remembered and not
 * tried twice, which keeps a decision over a long queue of few shapes near linear.
 */
#include "sched/sched_int.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHAPES_MAX 32 /* failed and checked request shapes remembered in one decision */
#define HORIZON_DEFAULT 64

static const char *const qpolicy_names[] = {"fifo", "backfill", "fair", "sjf"};
static const char *const wait_names[] = {"none", "room", "order", "priority", "fair", "reserved"};

int
ocra_sched_qpolicy_parse(const char *s, enum ocra_sched_qpolicy *out)
{
    for (int i = 0; i < OCRA_SCHED_Q_N_POLICIES; i++)
        if (strcmp(s, qpolicy_names[i]) == 0) {
            *out = (enum ocra_sched_qpolicy)i;
            return 0;
        }
    return -1;
}

const char *
ocra_sched_qpolicy_name(enum ocra_sched_qpolicy p)
{
    return (unsigned)p < OCRA_SCHED_Q_N_POLICIES ? qpolicy_names[p] : "?";
}

const char *
ocra_sched_wait_name(enum ocra_sched_wait w)
{
    return (unsigned)w <= OCRA_SCHED_WAIT_RESERVED ? wait_names[w] : "?";
}

void
ocra_sched_plan_init(struct ocra_sched_plan *p)
{
    memset(p, 0, sizeof(*p));
    p->reserve_at = -1;
}

void
ocra_sched_plan_fini(struct ocra_sched_plan *p)
{
    free(p->v);
    free(p->allocs);
    ocra_sched_plan_init(p);
}

/* ---- the decision's state ---------------------------------------------------------------- */

/* One queued request as the decision sees it. */
struct qitem {
    size_t q;       /* index in the caller's array */
    int eff;        /* effective priority */
    int owner;      /* owner id */
    int64_t key;    /* the policy's order within a priority (sjf: the estimate) */
    int64_t submit; /* the caller's, for FIFO */
    bool gang;
};

/* A growing array of allocations. */
struct avec {
    struct ocra_sched_alloc *v;
    size_t n, cap;
};

/* An expected end in the projection: allocations [a, a + n) of the projection's avec. */
struct qend {
    int64_t t;
    size_t a, n;
};

struct ocra_sched_queue {
    struct ocra_sched_cluster *work, *shadow, *empty;
    const struct ocra_sched_queue_conf *conf;
    int64_t now;
    const struct ocra_sched_queued *queued;
    const struct ocra_sched_running *running;
    size_t n_running;
    struct qitem *items;
    size_t *dec_item; /* per decision (by position): its index in items */
    size_t cap_items;
    /* owners: names (borrowed), weights, what each holds (GPU milli, CPU milli, RAM MiB) */
    const char **owner_name;
    double *owner_weight, (*owner_used)[3];
    size_t n_owners, cap_owners;
    int *owner_slot; /* hash table of owner ids, -1 empty */
    size_t n_slots;
    double total[3];
    /* shapes that found no room in work, and shapes checked as able to fit */
    const struct qitem *failed[SHAPES_MAX];
    int n_failed;
    struct avec scratch, head_allocs, proj, started, mask;
    struct qend *ends;
    size_t n_ends, cap_ends;
    struct ocra_sched_plan *plan;
    const struct qitem *head;
    int64_t reserve_at;
    char head_share[64]; /* the head's owner and share when it became the head (fair) */
};

static void
avec_push(struct avec *v, const struct ocra_sched_alloc *a)
{
    if (v->n == v->cap) {
        v->cap = v->cap ? 2 * v->cap : 16;
        v->v = ocra_xrealloc(v->v, v->cap * sizeof(*v->v));
    }
    v->v[v->n++] = *a;
}

struct ocra_sched_queue *
ocra_sched_queue_new(const struct ocra_sched_cluster *c)
{
    struct ocra_sched_queue *sq = ocra_xcalloc(1, sizeof(*sq));

    sq->work = sched_cluster_dup(c);
    sq->shadow = sched_cluster_dup(c);
    sq->empty = sched_cluster_dup(c);
    ocra_sched_cluster_reset(sq->empty);
    for (size_t i = 0; i < c->n; i++) {
        sq->total[0] += (double)c->nodes[i].gpu_count * OCRA_SCHED_MILLI;
        sq->total[1] += (double)c->nodes[i].cpu_milli;
        sq->total[2] += (double)c->nodes[i].ram_mib;
    }
    return sq;
}

void
ocra_sched_queue_free(struct ocra_sched_queue *sq)
{
    if (!sq)
        return;
    ocra_sched_cluster_free(sq->work);
    ocra_sched_cluster_free(sq->shadow);
    ocra_sched_cluster_free(sq->empty);
    free(sq->items);
    free(sq->dec_item);
    free(sq->owner_name);
    free(sq->owner_weight);
    free(sq->owner_used);
    free(sq->owner_slot);
    free(sq->scratch.v);
    free(sq->head_allocs.v);
    free(sq->proj.v);
    free(sq->started.v);
    free(sq->mask.v);
    free(sq->ends);
    free(sq);
}

/* ---- owners ---------------------------------------------------------------------------- */

static uint64_t
str_hash(const char *s)
{
    uint64_t h = 1469598103934665603u;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

static double
weight_of(const struct ocra_sched_queue_conf *conf, const char *owner)
{
    for (size_t i = 0; owner && i < conf->n_weights; i++)
        if (conf->weights[i].owner && strcmp(conf->weights[i].owner, owner) == 0)
            return conf->weights[i].weight;
    return 1.0;
}

static int
owner_new(struct ocra_sched_queue *sq, const char *name)
{
    size_t id = sq->n_owners++;

    if (id == sq->cap_owners) {
        sq->cap_owners = sq->cap_owners ? 2 * sq->cap_owners : 64;
        sq->owner_name = ocra_xrealloc(sq->owner_name, sq->cap_owners * sizeof(char *));
        sq->owner_weight = ocra_xrealloc(sq->owner_weight, sq->cap_owners * sizeof(double));
        sq->owner_used = ocra_xrealloc(sq->owner_used, sq->cap_owners * sizeof(*sq->owner_used));
    }
    sq->owner_name[id] = name;
    sq->owner_weight[id] = weight_of(sq->conf, name);
    memset(sq->owner_used[id], 0, sizeof(sq->owner_used[id]));
    return (int)id;
}

/* The id of owner name; NULL or "" is an owner of its own, every time. */
static int
owner_id(struct ocra_sched_queue *sq, const char *name)
{
    size_t i;

    if (!name || !name[0])
        return owner_new(sq, NULL);
    for (i = str_hash(name) & (sq->n_slots - 1); sq->owner_slot[i] >= 0;
         i = (i + 1) & (sq->n_slots - 1))
        if (strcmp(sq->owner_name[sq->owner_slot[i]], name) == 0)
            return sq->owner_slot[i];
    sq->owner_slot[i] = owner_new(sq, name);
    return sq->owner_slot[i];
}

static void
owner_add(struct ocra_sched_queue *sq, int id, const struct ocra_sched_alloc *a, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sq->owner_used[id][0] += (double)a[i].n_devs * a[i].gpu_milli;
        sq->owner_used[id][1] += (double)a[i].cpu_milli;
        sq->owner_used[id][2] += (double)a[i].ram_mib;
    }
}

/* The owner's dominant share divided by its weight. */
static double
owner_share(const struct ocra_sched_queue *sq, int id)
{
    double s = 0;

    for (int k = 0; k < 3; k++)
        if (sq->total[k] > 0 && sq->owner_used[id][k] / sq->total[k] > s)
            s = sq->owner_used[id][k] / sq->total[k];
    return s / sq->owner_weight[id];
}

static double
owner_gpu_pct(const struct ocra_sched_queue *sq, int id)
{
    return sq->total[0] > 0 ? 100.0 * sq->owner_used[id][0] / sq->total[0] : 0.0;
}

static const char *
owner_label(const struct ocra_sched_queue *sq, int id)
{
    return sq->owner_name[id] ? sq->owner_name[id] : "(none)";
}

static void
owners_init(struct ocra_sched_queue *sq, size_t n_queued)
{
    size_t want = 16;

    while (want < 2 * (n_queued + sq->n_running))
        want *= 2;
    if (want > sq->n_slots) {
        sq->n_slots = want;
        sq->owner_slot = ocra_xrealloc(sq->owner_slot, want * sizeof(int));
    }
    memset(sq->owner_slot, 0xff, sq->n_slots * sizeof(int));
    sq->n_owners = 0;
    for (size_t i = 0; i < sq->n_running; i++)
        owner_add(sq, owner_id(sq, sq->running[i].owner), sq->running[i].allocs,
                  sq->running[i].n_allocs);
}

/* ---- request shapes ---------------------------------------------------------------------- */

static bool
str_same(const char *a, const char *b)
{
    if (!a || !a[0] || !b || !b[0])
        return (!a || !a[0]) && (!b || !b[0]);
    return strcmp(a, b) == 0;
}

/* Whether two requests ask for the same thing (so one's placement verdict is the other's). */
static bool
same_req(const struct ocra_sched_req *a, const struct ocra_sched_req *b)
{

    if (a->gpus != b->gpus || a->gpu_milli != b->gpu_milli || a->gpu_mem_mib != b->gpu_mem_mib ||
        a->min_driver != b->min_driver || a->min_compute_cap != b->min_compute_cap ||
        a->cpu_milli != b->cpu_milli || a->ram_mib != b->ram_mib || a->n_labels != b->n_labels ||
        !str_same(a->gpu_model, b->gpu_model))
        return false;
    for (size_t i = 0; i < a->n_labels; i++)
        if (strcmp(a->labels[i], b->labels[i]) != 0)
            return false;
    return true;
}

static bool
same_shape(const struct ocra_sched_queue *sq, const struct qitem *x, const struct qitem *y)
{
    return same_req(&sq->queued[x->q].req, &sq->queued[y->q].req);
}

static bool
known_failed(const struct ocra_sched_queue *sq, const struct qitem *it)
{
    for (int i = 0; i < sq->n_failed; i++)
        if (same_shape(sq, sq->failed[i], it))
            return true;
    return false;
}

static void
remember_failed(struct ocra_sched_queue *sq, const struct qitem *it)
{
    if (sq->n_failed < SHAPES_MAX)
        sq->failed[sq->n_failed++] = it;
}

/* ---- taking capacity --------------------------------------------------------------------- */

static bool
node_whole_free(const struct ocra_sched_cluster *c, size_t i, const struct ocra_sched_req *r)
{
    const struct sched_hot *h = &c->hot[i];

    return h->gpu_count > 0 && h->full == h->gpu_count && h->cpu_free >= r->cpu_milli &&
           h->ram_free >= r->ram_mib;
}

/* A candidate node of a gang: its index, GPUs and topology group ("" when it has none). */
struct gang_cand {
    size_t node;
    int gpus;
    const char *group;
};

/* The value of a node's "topology=<group>" label; "" when it carries none. */
static const char *
node_group(const struct ocra_sched_node *n)
{
    for (int l = 0; l < n->n_labels; l++)
        if (strncmp(n->labels[l], OCRA_SCHED_TOPOLOGY_LABEL "=",
                    sizeof(OCRA_SCHED_TOPOLOGY_LABEL)) == 0)
            return n->labels[l] + sizeof(OCRA_SCHED_TOPOLOGY_LABEL);
    return "";
}

/* Most GPUs first, then node order: the greedy prefix that covers a gang is the shortest. */
static int
cand_cmp_gpus(const void *a, const void *b)
{
    const struct gang_cand *x = a, *y = b;

    if (x->gpus != y->gpus)
        return x->gpus > y->gpus ? -1 : 1;
    return x->node < y->node ? -1 : x->node > y->node;
}

/* By group, then as cand_cmp_gpus(): each group's nodes in one run, largest first. */
static int
cand_cmp_group(const void *a, const void *b)
{
    const struct gang_cand *x = a, *y = b;
    int g = strcmp(x->group, y->group);

    return g ? g : cand_cmp_gpus(a, b);
}

/* How many of v[0..n) (largest first), taken in order, cover gpus; 0 when all do not. */
static size_t
cover(const struct gang_cand *v, size_t n, int gpus)
{
    int have = 0;

    for (size_t i = 0; i < n; i++) {
        have += v[i].gpus;
        if (have >= gpus)
            return i + 1;
    }
    return 0;
}

/*
 * A gang: whole free nodes that pass r's filters whose GPUs cover it, all or nothing. The
 * fewest nodes (the largest first); among the sets of that size, one inside a single topology
 * group (the nodes' "topology=" label: a rack, a switch, an NVLink domain) when there is one,
 * the first group by name; else across groups.
 */
static int
cand_cmp_node(const void *a, const void *b)
{
    const struct gang_cand *x = a, *y = b;

    return x->node < y->node ? -1 : x->node > y->node;
}

static int
take_gang(struct ocra_sched_cluster *c, const struct ocra_sched_req *r, struct avec *out)
{
    struct gang_cand *v = ocra_xcalloc(c->n ? c->n : 1, sizeof(*v)), *pick = NULL;
    size_t n = 0, k_min, first = out->n;

    for (size_t i = 0; i < c->n; i++) {
        if (!node_whole_free(c, i, r) || !sched_node_admits(c, i, r))
            continue;
        v[n].node = i;
        v[n].gpus = c->nodes[i].gpu_count;
        v[n].group = node_group(&c->nodes[i]);
        n++;
    }
    qsort(v, n, sizeof(*v), cand_cmp_gpus);
    k_min = cover(v, n, r->gpus);
    if (k_min == 0) {
        free(v);
        return -1;
    }
    qsort(v, n, sizeof(*v), cand_cmp_group);
    for (size_t s = 0, e; s < n && !pick; s = e) {
        for (e = s + 1; e < n && strcmp(v[e].group, v[s].group) == 0;)
            e++;
        if (v[s].group[0] != '\0' && cover(v + s, e - s, r->gpus) == k_min)
            pick = v + s;
    }
    if (!pick) { /* no group holds the fewest nodes: across groups */
        qsort(v, n, sizeof(*v), cand_cmp_gpus);
        pick = v;
    }
    qsort(pick, k_min, sizeof(*pick), cand_cmp_node); /* rank 0 on the first node */
    for (size_t j = 0; j < k_min; j++) {
        const struct ocra_sched_node *nd = &c->nodes[pick[j].node];
        struct ocra_sched_alloc a = {0};

        a.node = (int)pick[j].node;
        a.n_devs = nd->gpu_count;
        for (int d = 0; d < nd->gpu_count; d++)
            a.devs[d] = (uint8_t)d;
        a.gpu_milli = OCRA_SCHED_MILLI;
        a.gpu_mem_mib = nd->gpu_mem_mib;
        a.cpu_milli = r->cpu_milli;
        a.ram_mib = r->ram_mib;
        avec_push(out, &a);
    }
    free(v);
    for (size_t k = first; k < out->n; k++)
        if (ocra_sched_claim(c, &out->v[k], NULL) < 0)
            abort(); /* each was checked free just above */
    return 0;
}

/* Places the request of it on c, appending its allocations to out; -1 when there is no room. */
static int
take(struct ocra_sched_queue *sq, struct ocra_sched_cluster *c, const struct qitem *it,
     struct avec *out)
{
    const struct ocra_sched_req *r = &sq->queued[it->q].req;
    struct ocra_sched_alloc a;

    if (it->gang)
        return take_gang(c, r, out);
    if (ocra_sched_place(c, sq->conf->place, r, &a, NULL) < 0)
        return -1;
    avec_push(out, &a);
    return 0;
}

static void
give_back(struct ocra_sched_cluster *c, const struct ocra_sched_alloc *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ocra_sched_release(c, &a[i]);
}

/* Takes exactly a[0..n) on c, all or nothing. */
static bool
claim_all(struct ocra_sched_cluster *c, const struct ocra_sched_alloc *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ocra_sched_claim(c, &a[i], NULL) < 0) {
            give_back(c, a, i);
            return false;
        }
    return true;
}

/* ---- checking requests ------------------------------------------------------------------- */

/*
 * Whether the request of it is a gang, or an error when it could never fit. A shape among the
 * last ones checked takes the earlier verdict.
 */
static int
classify(struct ocra_sched_queue *sq, struct qitem *it, const struct qitem *checked,
         size_t n_checked, struct ocra_err *err)
{
    const struct ocra_sched_req *r = &sq->queued[it->q].req;
    struct ocra_sched_req one = *r;
    struct ocra_sched_alloc a;
    struct ocra_err e = {0};
    int64_t max_g = 0, sum_g = 0;
    size_t n_adm = 0;

    for (size_t i = n_checked; i-- > 0 && n_checked - i <= SHAPES_MAX;)
        if (same_shape(sq, &checked[i], it)) {
            it->gang = checked[i].gang;
            return 0;
        }
    if (r->gpus <= OCRA_SCHED_MAX_GPUS &&
        ocra_sched_place(sq->empty, sq->conf->place, r, &a, &e) == 0) {
        ocra_sched_release(sq->empty, &a);
        return 0;
    }
    if (r->gpus > 1 && (r->gpu_milli == 0 || r->gpu_milli == OCRA_SCHED_MILLI)) {
        for (size_t i = 0; i < sq->empty->n; i++)
            if (sched_node_admits(sq->empty, i, r)) {
                n_adm++;
                sum_g += sq->empty->nodes[i].gpu_count;
                if (sq->empty->nodes[i].gpu_count > max_g)
                    max_g = sq->empty->nodes[i].gpu_count;
            }
        if (n_adm && r->gpus > max_g && sum_g >= r->gpus) {
            it->gang = true;
            return 0;
        }
        if (n_adm && r->gpus > max_g)
            return ocra_err_set(err, ENOSPC,
                                "no set of nodes can ever host it: a gang of %d GPUs takes "
                                "whole nodes, and the %zu nodes that pass its filters have %lld "
                                "GPUs in all",
                                r->gpus, n_adm, (long long)sum_g);
        if (r->gpus > OCRA_SCHED_MAX_GPUS) { /* the placer names the filter no node passes */
            one.gpus = 1;
            e = (struct ocra_err){0};
            if (ocra_sched_place(sq->empty, sq->conf->place, &one, &a, &e) == 0) {
                ocra_sched_release(sq->empty, &a); /* a node admits it: not reached */
                ocra_err_set(&e, ENOSPC, "no node can ever host it");
            }
        }
    }
    *err = e;
    return -1;
}

static int
check_conf(const struct ocra_sched_queue_conf *conf, struct ocra_err *err)
{
    if ((unsigned)conf->policy >= OCRA_SCHED_Q_N_POLICIES ||
        (unsigned)conf->place >= OCRA_SCHED_N_POLICIES)
        return ocra_err_set(err, EINVAL, "queue: no policy %d or placement policy %d",
                            (int)conf->policy, (int)conf->place);
    if (conf->aging_s < 0 || conf->horizon < 0 || (conf->n_weights && !conf->weights))
        return ocra_err_set(err, EINVAL, "queue: aging_s and horizon must be >= 0");
    for (size_t i = 0; i < conf->n_weights; i++)
        if (!(conf->weights[i].weight > 0) || conf->weights[i].weight > 1e6)
            return ocra_err_set(err, EINVAL, "queue: owner %s: weight %g (0 < w <= 1e6)",
                                conf->weights[i].owner ? conf->weights[i].owner : "(null)",
                                conf->weights[i].weight);
    return 0;
}

static int
check_running(const struct ocra_sched_queue *sq, struct ocra_err *err)
{
    for (size_t i = 0; i < sq->n_running; i++) {
        const struct ocra_sched_running *w = &sq->running[i];

        if (w->n_allocs && !w->allocs)
            return ocra_err_set(err, EINVAL, "queue: running %s: allocations missing",
                                w->id ? w->id : "?");
        for (size_t k = 0; k < w->n_allocs; k++)
            if (w->allocs[k].node < 0 || (size_t)w->allocs[k].node >= sq->work->n ||
                w->allocs[k].n_devs < 0 || w->allocs[k].n_devs > OCRA_SCHED_MAX_GPUS)
                return ocra_err_set(err, EINVAL, "queue: running %s: no such node %d",
                                    w->id ? w->id : "?", w->allocs[k].node);
    }
    return 0;
}

/* ---- order ------------------------------------------------------------------------------- */

static int
eff_priority(const struct ocra_sched_queue *sq, const struct ocra_sched_queued *q)
{
    int64_t p = q->priority, waited = sq->now - q->submit;

    if (sq->conf->aging_s > 0 && waited > 0)
        p += waited / sq->conf->aging_s;
    return p > INT_MAX ? INT_MAX : (int)p;
}

static int
item_cmp(const void *a, const void *b)
{
    const struct qitem *x = a, *y = b;

    if (x->eff != y->eff)
        return x->eff > y->eff ? -1 : 1;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    if (x->submit != y->submit)
        return x->submit < y->submit ? -1 : 1;
    return x->q < y->q ? -1 : x->q > y->q;
}

static int
items_init(struct ocra_sched_queue *sq, size_t n, size_t *bad, struct ocra_err *err)
{
    const struct ocra_sched_queued *queued = sq->queued;

    if (n > sq->cap_items) {
        sq->cap_items = n;
        sq->items = ocra_xrealloc(sq->items, n * sizeof(*sq->items));
        sq->dec_item = ocra_xrealloc(sq->dec_item, n * sizeof(*sq->dec_item));
    }
    for (size_t i = 0; i < n; i++) {
        struct qitem *it = &sq->items[i];

        memset(it, 0, sizeof(*it));
        it->q = i;
        it->eff = eff_priority(sq, &queued[i]);
        it->owner = owner_id(sq, queued[i].owner);
        it->submit = queued[i].submit;
        if (sq->conf->policy == OCRA_SCHED_Q_SJF)
            it->key = queued[i].estimate > 0 ? queued[i].estimate : INT64_MAX;
        if (classify(sq, it, sq->items, i, err) < 0) {
            if (bad)
                *bad = i;
            return ocra_err_wrap(err, "request %s", queued[i].id ? queued[i].id : "?");
        }
    }
    if (n) /* an empty queue has no array to sort */
        qsort(sq->items, n, sizeof(*sq->items), item_cmp);
    return 0;
}

/* ---- reasons ----------------------------------------------------------------------------- */

/* "1h05m", "3m20s", "42s". */
static void
fmt_dur(int64_t s, char *buf, size_t cap)
{
    if (s < 0)
        s = 0;
    if (s >= 3600)
        (void)snprintf(buf, cap, "%lldh%02lldm", (long long)(s / 3600), (long long)(s / 60 % 60));
    else if (s >= 60)
        (void)snprintf(buf, cap, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
    else
        (void)snprintf(buf, cap, "%llds", (long long)s);
}

/* Why d waits behind the head: priority, fair share, strict order or the reservation. */
static void
wait_behind(struct ocra_sched_queue *sq, struct ocra_sched_decision *d, const struct qitem *it,
            bool fits)
{
    const struct qitem *h = sq->head;
    const char *hid = sq->queued[h->q].id ? sq->queued[h->q].id : "?";
    char why[100], dur[24];

    if (sq->conf->policy == OCRA_SCHED_Q_FIFO) {
        (void)snprintf(why, sizeof(why), "which waits for room (strict order)");
    } else if (sq->reserve_at < 0) {
        (void)snprintf(why, sizeof(why),
                       "whose start cannot be estimated (running work without an expected end)");
    } else {
        fmt_dur(sq->reserve_at - sq->now, dur, sizeof(dur));
        (void)snprintf(why, sizeof(why), "reserved to start in %s%s", dur,
                       fits ? ", and this would delay it" : "");
    }
    if (h->eff > it->eff) {
        d->wait = OCRA_SCHED_WAIT_PRIORITY;
        (void)snprintf(d->reason, sizeof(d->reason),
                       "behind higher priority: %.40s (priority %d), %s", hid, h->eff, why);
    } else if (sq->conf->policy == OCRA_SCHED_Q_FAIR && h->owner != it->owner) {
        d->wait = OCRA_SCHED_WAIT_FAIR;
        (void)snprintf(d->reason, sizeof(d->reason),
                       "fair share: owner %.32s holds %.0f%% of GPUs; %.32s goes first (%s), %.70s",
                       owner_label(sq, it->owner), owner_gpu_pct(sq, it->owner), hid,
                       sq->head_share, why);
    } else if (sq->conf->policy == OCRA_SCHED_Q_FIFO) {
        d->wait = OCRA_SCHED_WAIT_ORDER;
        (void)snprintf(d->reason, sizeof(d->reason), "behind %.40s, %s", hid, why);
    } else {
        d->wait = OCRA_SCHED_WAIT_RESERVED;
        (void)snprintf(d->reason, sizeof(d->reason), "reserved for the head %.40s: %s", hid, why);
    }
}

/* Why nothing has room for r in c: the closest any node comes. */
static void
room_reason(const struct ocra_sched_cluster *c, const struct ocra_sched_req *r, bool gang,
            char *buf, size_t cap)
{
    int best = 0, free_nodes = 0, free_gpus = 0, milli = r->gpu_milli ? r->gpu_milli : 1000;
    bool gpus_enough = false;

    for (size_t i = 0; i < c->n; i++) {
        const struct sched_hot *h = &c->hot[i];

        if (r->gpus > 0 && (h->gpu_count == 0 || (!gang && h->gpu_count < r->gpus)))
            continue;
        if (!sched_node_admits(c, i, r))
            continue;
        if (gang && node_whole_free(c, i, r)) {
            free_nodes++;
            free_gpus += h->gpu_count;
        }
        if (!gang && milli == OCRA_SCHED_MILLI && h->full > best)
            best = h->full;
        if (!gang && milli < OCRA_SCHED_MILLI && h->max_free > best)
            best = h->max_free;
        if (!gang && (milli == OCRA_SCHED_MILLI ? h->full >= r->gpus : h->max_free >= milli))
            gpus_enough = true;
    }
    if (gang)
        (void)snprintf(buf, cap,
                       "no room for a gang of %d GPUs on whole nodes: %d free nodes have %d GPUs",
                       r->gpus, free_nodes, free_gpus);
    else if (r->gpus == 0 || gpus_enough)
        (void)snprintf(buf, cap,
                       "no node has room: none with the GPUs it needs has %lld CPU milli and "
                       "%lld MiB RAM (and the GPU memory) free",
                       (long long)r->cpu_milli, (long long)r->ram_mib);
    else if (milli == OCRA_SCHED_MILLI)
        (void)snprintf(buf, cap, "no node has room: the best has %d free GPUs of the %d it needs",
                       best, r->gpus);
    else
        (void)snprintf(buf, cap,
                       "no node has room: the freest GPU has %d of the %d milli-GPUs it needs",
                       best, milli);
}

static void
room_reasons(struct ocra_sched_queue *sq)
{
    struct ocra_sched_plan *p = sq->plan;
    const struct ocra_sched_decision *seen[SHAPES_MAX];
    int n_seen = 0, next = 0;

    for (size_t i = 0; i < p->n; i++) {
        struct ocra_sched_decision *d = &p->v[i];
        const struct ocra_sched_req *r = &sq->queued[d->queued].req;
        bool done = false;

        if (d->wait != OCRA_SCHED_WAIT_ROOM)
            continue;
        for (int k = 0; k < n_seen && !done; k++)
            if (same_req(&sq->queued[seen[k]->queued].req, r)) {
                memcpy(d->reason, seen[k]->reason, sizeof(d->reason));
                done = true;
            }
        if (done)
            continue;
        room_reason(sq->work, r, sq->items[sq->dec_item[i]].gang, d->reason, sizeof(d->reason));
        seen[next] = d;
        next = (next + 1) % SHAPES_MAX;
        n_seen += n_seen < SHAPES_MAX;
    }
}

/* ---- expected ends: a min-heap over sq->ends, allocations in sq->proj ------------------- */

static bool
end_less(const struct qend *x, const struct qend *y)
{
    return x->t < y->t || (x->t == y->t && x->a < y->a);
}

static void
end_push(struct ocra_sched_queue *sq, int64_t t, size_t a, size_t n)
{
    struct qend e = {t, a, n};
    size_t i;

    if (sq->n_ends == sq->cap_ends) {
        sq->cap_ends = sq->cap_ends ? 2 * sq->cap_ends : 64;
        sq->ends = ocra_xrealloc(sq->ends, sq->cap_ends * sizeof(*sq->ends));
    }
    for (i = sq->n_ends++; i > 0 && end_less(&e, &sq->ends[(i - 1) / 2]); i = (i - 1) / 2)
        sq->ends[i] = sq->ends[(i - 1) / 2];
    sq->ends[i] = e;
}

static struct qend
end_pop(struct ocra_sched_queue *sq)
{
    struct qend top = sq->ends[0], last = sq->ends[--sq->n_ends];
    size_t i = 0, k;

    while ((k = 2 * i + 1) < sq->n_ends) {
        if (k + 1 < sq->n_ends && end_less(&sq->ends[k + 1], &sq->ends[k]))
            k++;
        if (!end_less(&sq->ends[k], &last))
            break;
        sq->ends[i] = sq->ends[k];
        i = k;
    }
    if (sq->n_ends)
        sq->ends[i] = last;
    return top;
}

/* Pushes allocations a[0..n) ending at t (copied into sq->proj). */
static void
end_add(struct ocra_sched_queue *sq, int64_t t, const struct ocra_sched_alloc *a, size_t n)
{
    size_t first = sq->proj.n;

    for (size_t i = 0; i < n; i++)
        avec_push(&sq->proj, &a[i]);
    end_push(sq, t, first, n);
}

/* The expected ends of the running workloads and of what this decision started so far. */
static void
ends_collect(struct ocra_sched_queue *sq)
{
    const struct ocra_sched_plan *p = sq->plan;

    sq->n_ends = 0;
    sq->proj.n = 0;
    for (size_t i = 0; i < sq->n_running; i++)
        if (sq->running[i].end > 0)
            end_add(sq, sq->running[i].end, sq->running[i].allocs, sq->running[i].n_allocs);
    for (size_t i = 0; i < p->n; i++) {
        int64_t est = sq->queued[p->v[i].queued].estimate;

        if (p->v[i].start && est > 0)
            end_add(sq, sq->now + est, &sq->started.v[p->v[i].alloc], p->v[i].n_allocs);
    }
}

/* Releases from c every allocation of the earliest expected end; returns that end. */
static int64_t
end_release(struct ocra_sched_queue *sq, struct ocra_sched_cluster *c)
{
    int64_t t = sq->ends[0].t;

    while (sq->n_ends && sq->ends[0].t == t) {
        struct qend e = end_pop(sq);

        give_back(c, &sq->proj.v[e.a], e.n);
    }
    return t > sq->now ? t : sq->now;
}

/* ---- the pass ---------------------------------------------------------------------------- */

/* The head's reservation: the earliest expected end after which it fits; shadow then holds it. */
static void
reserve(struct ocra_sched_queue *sq, const struct qitem *head)
{
    sq->reserve_at = -1;
    sq->head_allocs.n = 0;
    sched_cluster_sync(sq->shadow, sq->work);
    ends_collect(sq);
    while (sq->n_ends) {
        int64_t t = end_release(sq, sq->shadow);

        if (take(sq, sq->shadow, head, &sq->head_allocs) == 0) {
            sq->reserve_at = t;
            return;
        }
    }
}

static struct ocra_sched_decision *
decision_new(struct ocra_sched_queue *sq, size_t item)
{
    struct ocra_sched_plan *p = sq->plan;
    struct ocra_sched_decision *d = &p->v[p->n];
    const struct qitem *it = &sq->items[item];

    memset(d, 0, sizeof(*d));
    sq->dec_item[p->n] = item;
    d->queued = it->q;
    d->position = ++p->n;
    d->eff_priority = it->eff;
    d->est_start = -1;
    return d;
}

static void
start(struct ocra_sched_queue *sq, struct ocra_sched_decision *d, const struct qitem *it)
{
    d->start = true;
    d->est_start = sq->now;
    d->alloc = sq->started.n;
    d->n_allocs = sq->scratch.n;
    for (size_t i = 0; i < sq->scratch.n; i++)
        avec_push(&sq->started, &sq->scratch.v[i]);
    owner_add(sq, it->owner, sq->scratch.v, sq->scratch.n);
    sq->plan->n_start++;
}

static void
become_head(struct ocra_sched_queue *sq, struct ocra_sched_decision *d, const struct qitem *it)
{
    d->head = true;
    sq->head = it;
    (void)snprintf(sq->head_share, sizeof(sq->head_share), "owner %.32s holds %.0f%%",
                   owner_label(sq, it->owner), owner_gpu_pct(sq, it->owner));
    reserve(sq, it);
    d->est_start = sq->reserve_at;
}

/*
 * A second try for a request whose first placement would delay the head: the head's reserved
 * devices (and its CPU and RAM on those nodes) that are free now are taken out of work while
 * the placer looks again, so it picks around them. True when that placement leaves the head's
 * reservation whole; it is then taken in work and in shadow.
 */
static bool
place_around_head(struct ocra_sched_queue *sq, const struct qitem *it)
{
    struct ocra_sched_cluster *w = sq->work;
    bool ok;

    sq->mask.n = 0;
    for (size_t i = 0; i < sq->head_allocs.n; i++) {
        const struct ocra_sched_alloc *h = &sq->head_allocs.v[i];
        const struct ocra_sched_node *n = &w->nodes[h->node];
        struct ocra_sched_alloc m = *h;

        m.n_devs = 0;
        for (int d = 0; d < h->n_devs; d++)
            if (n->gpu_free_milli[h->devs[d]] >= h->gpu_milli &&
                n->gpu_mem_free[h->devs[d]] >= h->gpu_mem_mib)
                m.devs[m.n_devs++] = h->devs[d];
        m.cpu_milli = h->cpu_milli < n->cpu_free ? h->cpu_milli : n->cpu_free;
        m.ram_mib = h->ram_mib < n->ram_free ? h->ram_mib : n->ram_free;
        if (ocra_sched_claim(w, &m, NULL) == 0)
            avec_push(&sq->mask, &m);
    }
    sq->scratch.n = 0;
    ok = take(sq, w, it, &sq->scratch) == 0;
    give_back(w, sq->mask.v, sq->mask.n);
    if (ok && claim_all(sq->shadow, sq->scratch.v, sq->scratch.n))
        return true;
    if (ok)
        give_back(w, sq->scratch.v, sq->scratch.n);
    return false;
}

/* Decides items[item]: start it now, or why it waits. */
static void
process(struct ocra_sched_queue *sq, size_t item)
{
    const struct qitem *it = &sq->items[item];
    const struct ocra_sched_queued *q = &sq->queued[it->q];
    struct ocra_sched_decision *d = decision_new(sq, item);
    bool failed;

    sq->scratch.n = 0;
    if (sq->head && sq->conf->policy == OCRA_SCHED_Q_FIFO) {
        wait_behind(sq, d, it, false);
        return;
    }
    failed = known_failed(sq, it);
    if (failed || take(sq, sq->work, it, &sq->scratch) < 0) {
        if (!failed)
            remember_failed(sq, it);
        d->wait = OCRA_SCHED_WAIT_ROOM;
        if (!sq->head)
            become_head(sq, d, it);
        return;
    }
    if (!sq->head ||
        (sq->reserve_at >= 0 && q->estimate > 0 && sq->now + q->estimate <= sq->reserve_at) ||
        (sq->reserve_at >= 0 && claim_all(sq->shadow, sq->scratch.v, sq->scratch.n))) {
        start(sq, d, it);
        return;
    }
    give_back(sq->work, sq->scratch.v, sq->scratch.n);
    if (sq->reserve_at >= 0 && place_around_head(sq, it)) {
        start(sq, d, it);
        return;
    }
    wait_behind(sq, d, it, true);
}

/* fair: within each effective priority, the oldest request of the owner of smallest share. */
static void
pass_fair(struct ocra_sched_queue *sq, size_t n)
{
    size_t *succ = ocra_xcalloc(n + 1, sizeof(*succ));
    size_t *next = ocra_xcalloc(sq->n_owners + 1, sizeof(*next));
    int *active = ocra_xcalloc(sq->n_owners + 1, sizeof(*active));

    for (size_t o = 0; o < sq->n_owners; o++)
        next[o] = SIZE_MAX;
    for (size_t lo = 0, hi; lo < n; lo = hi) {
        size_t n_active = 0;

        for (hi = lo; hi < n && sq->items[hi].eff == sq->items[lo].eff; hi++)
            ;
        for (size_t i = hi; i-- > lo;) { /* each owner's requests, oldest first */
            int o = sq->items[i].owner;

            if (next[o] == SIZE_MAX)
                active[n_active++] = o;
            succ[i] = next[o];
            next[o] = i;
        }
        while (n_active) {
            size_t best = 0;
            double bs = owner_share(sq, active[0]);

            for (size_t k = 1; k < n_active; k++) {
                double s = owner_share(sq, active[k]);

                if (s < bs || (s == bs && next[active[k]] < next[active[best]])) {
                    best = k;
                    bs = s;
                }
            }
            process(sq, next[active[best]]);
            next[active[best]] = succ[next[active[best]]];
            if (next[active[best]] == SIZE_MAX)
                active[best] = active[--n_active];
        }
    }
    free(succ);
    free(next);
    free(active);
}

/*
 * Estimated starts: the waiting requests in position order, each at the first expected end
 * after which it fits in the cluster as this decision leaves it (no backfill assumed), up to
 * the horizon past the head. The head's is its reservation.
 */
static void
project(struct ocra_sched_queue *sq)
{
    struct ocra_sched_plan *p = sq->plan;
    int left = (sq->conf->horizon ? sq->conf->horizon : HORIZON_DEFAULT) + 1;
    int64_t t = sq->now;

    if (!sq->head)
        return;
    sched_cluster_sync(sq->shadow, sq->work);
    ends_collect(sq);
    for (size_t i = 0; i < p->n && left > 0; i++) {
        struct ocra_sched_decision *d = &p->v[i];
        const struct qitem *it = &sq->items[sq->dec_item[i]];

        if (d->start)
            continue;
        left--;
        for (;;) {
            size_t first = sq->proj.n;

            if (take(sq, sq->shadow, it, &sq->proj) == 0) {
                d->est_start = d->head && sq->reserve_at >= 0 ? sq->reserve_at : t;
                if (sq->queued[it->q].estimate > 0)
                    end_push(sq, t + sq->queued[it->q].estimate, first, sq->proj.n - first);
                break;
            }
            if (!sq->n_ends)
                return; /* this one and every later one: unknown */
            t = end_release(sq, sq->shadow);
        }
    }
}

int
ocra_sched_queue_decide_with(struct ocra_sched_queue *sq, const struct ocra_sched_cluster *c,
                             const struct ocra_sched_queue_conf *conf, int64_t now,
                             const struct ocra_sched_running *running, size_t n_running,
                             const struct ocra_sched_queued *queued, size_t n_queued,
                             struct ocra_sched_plan *plan, size_t *bad, struct ocra_err *err)
{
    if (check_conf(conf, err) < 0)
        return -1;
    if (c->n != sq->work->n)
        return ocra_err_set(err, EINVAL, "queue: the cluster has %zu nodes, the queue's copy %zu",
                            c->n, sq->work->n);
    sq->conf = conf;
    sq->now = now;
    sq->running = running;
    sq->n_running = n_running;
    sq->queued = queued;
    sq->plan = plan;
    sq->head = NULL;
    sq->reserve_at = -1;
    sq->n_failed = 0;
    sq->started.n = 0;
    if (check_running(sq, err) < 0)
        return -1;
    sched_cluster_sync(sq->work, c);
    owners_init(sq, n_queued);
    if (items_init(sq, n_queued, bad, err) < 0)
        return -1;
    plan->v = ocra_xrealloc(plan->v, (n_queued + 1) * sizeof(*plan->v));
    plan->n = plan->n_start = 0;
    if (conf->policy == OCRA_SCHED_Q_FAIR)
        pass_fair(sq, n_queued);
    else
        for (size_t k = 0; k < n_queued; k++)
            process(sq, k);
    room_reasons(sq);
    project(sq);
    plan->allocs = ocra_xrealloc(plan->allocs, (sq->started.n + 1) * sizeof(*plan->allocs));
    if (sq->started.n)
        memcpy(plan->allocs, sq->started.v, sq->started.n * sizeof(*plan->allocs));
    plan->n_allocs = sq->started.n;
    plan->reserve_at = sq->reserve_at;
    return 0;
}

int
ocra_sched_queue_decide(const struct ocra_sched_cluster *c,
                        const struct ocra_sched_queue_conf *conf, int64_t now,
                        const struct ocra_sched_running *running, size_t n_running,
                        const struct ocra_sched_queued *queued, size_t n_queued,
                        struct ocra_sched_plan *plan, size_t *bad, struct ocra_err *err)
{
    struct ocra_sched_queue *sq;
    int ret;

    if (check_conf(conf, err) < 0)
        return -1;
    sq = ocra_sched_queue_new(c);
    ret = ocra_sched_queue_decide_with(sq, c, conf, now, running, n_running, queued, n_queued, plan,
                                       bad, err);
    ocra_sched_queue_free(sq);
    return ret;
}

/* ---- preemption ------------------------------------------------------------------------ */

/* Whether q fits on c now (c is left as it was). */
static bool
preempt_fits(struct ocra_sched_cluster *c, enum ocra_sched_policy place,
             const struct ocra_sched_req *r, struct avec *tmp)
{
    struct ocra_sched_alloc a;

    if (ocra_sched_place(c, place, r, &a, NULL) == 0) {
        ocra_sched_release(c, &a);
        return true;
    }
    tmp->n = 0;
    if (take_gang(c, r, tmp) < 0)
        return false;
    give_back(c, tmp->v, tmp->n);
    return true;
}

/* Whether victim i is taken before j: lowest priority, most recently started, later index. */
static bool
preempt_before(const struct ocra_sched_running *running, size_t i, size_t j)
{
    const struct ocra_sched_running *x = &running[i], *y = &running[j];

    if (x->priority != y->priority)
        return x->priority < y->priority;
    if (x->start != y->start)
        return x->start > y->start;
    return i > j;
}

int
ocra_sched_preempt_choose(const struct ocra_sched_cluster *c, enum ocra_sched_policy place,
                          int64_t now, int64_t min_run_s, const struct ocra_sched_running *running,
                          size_t n_running, const struct ocra_sched_queued *q, size_t *victims)
{
    struct ocra_sched_cluster *work = sched_cluster_dup(c);
    struct avec tmp = {0};
    size_t n = 0, kept = 0;

    if (preempt_fits(work, place, &q->req, &tmp))
        goto out; /* no preemption needed */
    for (size_t i = 0; i < n_running; i++) {
        const struct ocra_sched_running *r = &running[i];

        if (r->preemptible && r->priority < q->priority && r->start <= now - min_run_s)
            victims[n++] = i;
    }
    for (size_t i = 1; i < n; i++) /* insertion sort: few victims, no shared state */
        for (size_t k = i; k > 0 && preempt_before(running, victims[k], victims[k - 1]); k--) {
            size_t t = victims[k];

            victims[k] = victims[k - 1];
            victims[k - 1] = t;
        }
    for (kept = 0; kept < n; kept++) {
        give_back(work, running[victims[kept]].allocs, running[victims[kept]].n_allocs);
        if (preempt_fits(work, place, &q->req, &tmp))
            break;
    }
    if (kept == n) { /* even all of them would not make room */
        kept = 0;
        goto out;
    }
    kept++;
    /* Drop every victim whose return still leaves room, the last taken first. */
    for (size_t k = kept; k-- > 0;) {
        const struct ocra_sched_running *r = &running[victims[k]];

        if (!claim_all(work, r->allocs, r->n_allocs))
            continue;
        if (preempt_fits(work, place, &q->req, &tmp)) {
            memmove(&victims[k], &victims[k + 1], (kept - k - 1) * sizeof(*victims));
            kept--;
        } else {
            give_back(work, r->allocs, r->n_allocs);
        }
    }
out:
    free(tmp.v);
    ocra_sched_cluster_free(work);
    return (int)kept;
}
