/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sched_frag.c: the typical workload and the fragmentation measure of "Beware of Fragmentation:
 * Scheduling GPU-Sharing Workloads with Fragmentation Gradient Descent" (Weng et al., USENIX
 * ATC'23, §3), as the paper's own simulator (github.com/hkust-adsl/kubernetes-scheduler-
 * simulator, pkg/utils/frag.go) computes it. A typical request m is a shape: k GPUs of d milli
 * each and c milli-CPUs, or c milli-CPUs and no GPU. For node n with free GPU shares R_g
 * (milli-GPUs):
 *
 *   F_n(m) = sum_g R_g                      if m asks for no GPU (it cannot use any), or cannot
 *                                           run on n (CPU, or no device with d free, or fewer
 *                                           than k whole devices free)
 *          = sum_{g : R_g < t_m} R_g        otherwise, t_m = d for a share (d < 1000), 1000 for
 *                                           whole devices (a partly used GPU hosts none of it)
 *   F_n(M) = sum_m w_m F_n(m)               w_m: how often shape m occurs in the workload
 *
 * The workload M is the most frequent shapes that together make up 95 % of the requests (ties:
 * more CPU, then a larger share, then more GPUs first), at most SCHED_CLS_MAX. F(M) = sum_n
 * F_n(M) is the GPU capacity the typical workload cannot use; divided by W * 1000 * GPUs (W =
 * sum_m w_m) it is the share of the cluster's GPU capacity left unallocatable. fgd weighs a
 * placement by the fall of F_n(M) it brings, on the simulator's scale: floor(100 * sigmoid(fall
 * / (1000 * W))), a whole number 0..100 (sched_frag_score()). Integer weights keep the measure
 * exact; the scale's steps are integer thresholds computed once per workload.
 */
#include "sched/sched_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* t_m: below this free share a device cannot host shape m. */
static int
threshold(const struct sched_class *m)
{
    return m->gpus == 1 && m->milli < OCRA_SCHED_MILLI ? m->milli : OCRA_SCHED_MILLI;
}

int64_t
sched_frag_eval(const struct ocra_sched_cluster *c, const int *free_milli, int g, int64_t cpu)
{
    int s[OCRA_SCHED_MAX_GPUS], total = 0, full = 0, j = 0;
    int64_t f, below = 0;

    if (c->weight == 0 || g == 0)
        return 0;
    for (int i = 0; i < g; i++) { /* insertion sort: g <= 16 */
        int v = free_milli[i], k = i;

        for (; k > 0 && s[k - 1] > v; k--)
            s[k] = s[k - 1];
        s[k] = v;
        total += v;
        full += v == OCRA_SCHED_MILLI;
    }
    f = c->cpu_weight * total;           /* requests without GPUs use none of it */
    for (int i = 0; i < c->n_cls; i++) { /* GPU shapes by ascending threshold */
        const struct sched_class *m = &c->cls[i];
        int t = threshold(m);
        bool run;

        while (j < g && s[j] < t)
            below += s[j++];
        run = cpu >= m->cpu && (t == OCRA_SCHED_MILLI ? full >= m->gpus : s[g - 1] >= m->milli);
        f += m->weight * (run ? below : total);
    }
    return f;
}

int64_t
sched_node_frag(struct ocra_sched_cluster *c, size_t i)
{
    struct sched_hot *h = &c->hot[i];
    const struct ocra_sched_node *n = &c->nodes[i];

    if (h->frag_stale) {
        h->frag = sched_frag_eval(c, n->gpu_free_milli, n->gpu_count, n->cpu_free);
        h->frag_stale = false;
    }
    return h->frag;
}

int
sched_frag_score(const struct ocra_sched_cluster *c, int64_t fall)
{
    int lo = 0, hi = SCHED_SCORE_MAX; /* the score: how many steps fall reaches */

    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;

        if (fall >= c->score_step[mid - 1])
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

void
ocra_sched_typical_add(struct ocra_sched_cluster *c, const struct ocra_sched_req *r, int64_t weight)
{
    int milli = r->gpus ? (r->gpu_milli ? r->gpu_milli : OCRA_SCHED_MILLI) : 0, i;

    if (r->gpus < 0 || r->gpus > OCRA_SCHED_MAX_GPUS || weight <= 0 || weight > 1 << 20 ||
        milli > OCRA_SCHED_MILLI || milli < 0 || (r->gpus > 1 && milli != OCRA_SCHED_MILLI) ||
        r->cpu_milli < 0 || r->cpu_milli > INT64_C(1) << 32 || c->weight_acc > INT64_C(1) << 30)
        return; /* the bounds keep sum(weight * 16000 * 64 shapes) in int64 */
    for (i = 0; i < c->n_acc; i++)
        if (c->acc[i].gpus == r->gpus && c->acc[i].milli == milli && c->acc[i].cpu == r->cpu_milli)
            break;
    if (i == c->n_acc) {
        if (c->n_acc == SCHED_ACC_MAX)
            return;
        memset(&c->acc[i], 0, sizeof(c->acc[i]));
        c->acc[i].gpus = r->gpus;
        c->acc[i].milli = milli;
        c->acc[i].cpu = r->cpu_milli;
        c->n_acc++;
    }
    c->acc[i].weight += weight;
    c->weight_acc += weight;
    c->cls_dirty = true;
}

/* The simulator's order of shapes: the most frequent first, then more CPU, share, GPUs. */
static int
cls_cmp_weight(const void *a, const void *b)
{
    const struct sched_class *p = a, *q = b;

    if (p->weight != q->weight)
        return p->weight > q->weight ? -1 : 1;
    if (p->cpu != q->cpu)
        return p->cpu > q->cpu ? -1 : 1;
    if (p->milli != q->milli)
        return p->milli > q->milli ? -1 : 1;
    return p->gpus > q->gpus ? -1 : p->gpus < q->gpus;
}

static int
cls_cmp_threshold(const void *a, const void *b)
{
    int x = threshold(a), y = threshold(b);
    const struct sched_class *p = a, *q = b;

    if (x != y)
        return x < y ? -1 : 1;
    return p->gpus < q->gpus ? -1 : p->gpus > q->gpus;
}

/*
 * The fall of F_n(M) each score needs: score s (1..100) when 100 * sigmoid(fall / (1000 W))
 * >= s, i.e. fall >= 1000 W ln(s / (100 - s)); 100 once the sigmoid rounds to 1 in double
 * precision, as in the simulator (its argument past 36.74).
 */
static void
score_steps(struct ocra_sched_cluster *c)
{
    for (int s = 1; s <= SCHED_SCORE_MAX; s++) {
        double x = s < SCHED_SCORE_MAX ? log((double)s / (double)(SCHED_SCORE_MAX - s)) : 36.74;

        c->score_step[s - 1] = (int64_t)ceil(1000.0 * (double)c->weight * x);
    }
}

void
sched_classes_build(struct ocra_sched_cluster *c)
{
    struct sched_class sorted[SCHED_ACC_MAX];
    int64_t cum = 0;

    memcpy(sorted, c->acc, (size_t)c->n_acc * sizeof(sorted[0]));
    qsort(sorted, (size_t)c->n_acc, sizeof(sorted[0]), cls_cmp_weight);
    c->n_cls = 0;
    c->cpu_weight = 0;
    for (int i = 0; i < c->n_acc && i < SCHED_CLS_MAX && cum * 100 < 95 * c->weight_acc; i++) {
        cum += sorted[i].weight;
        if (sorted[i].gpus == 0)
            c->cpu_weight += sorted[i].weight;
        else
            c->cls[c->n_cls++] = sorted[i];
    }
    c->weight = cum;
    qsort(c->cls, (size_t)c->n_cls, sizeof(c->cls[0]), cls_cmp_threshold);
    score_steps(c);
    c->cls_dirty = false;
    for (size_t i = 0; i < c->n; i++)
        sched_node_refresh(c, i);
}

void
ocra_sched_frag(struct ocra_sched_cluster *c, int64_t *frag, int64_t *weight)
{
    int64_t f = 0;

    if (c->cls_dirty)
        sched_classes_build(c);
    for (size_t i = 0; i < c->n; i++)
        f += sched_node_frag(c, i);
    *frag = f;
    *weight = c->weight;
}

double
ocra_sched_frag_share(struct ocra_sched_cluster *c)
{
    int64_t f, w;

    ocra_sched_frag(c, &f, &w);
    if (w == 0 || c->gpu_capacity == 0)
        return 0.0;
    return (double)f / ((double)w * (double)c->gpu_capacity);
}

double
ocra_sched_free_share(const struct ocra_sched_cluster *c)
{
    int64_t f = 0;

    for (size_t i = 0; i < c->n; i++)
        f += c->hot[i].gpu_free_total;
    return c->gpu_capacity ? (double)f / (double)c->gpu_capacity : 0.0;
}
