/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sched_frag.c: the typical workload and the fragmentation measure of "Beware of Fragmentation:
 * Scheduling GPU-Sharing Workloads with Fragmentation Gradient Descent" (Weng et al., USENIX
 * ATC'23, §3). For node n with free GPU shares R_g (milli-GPUs) and a typical request m of
 * GPU shape (k GPUs, d milli each) with CPU and RAM:
 *
 *   F_n(m) = sum_g R_g                      if m cannot run on n at all (CPU, RAM, or no device
 *                                           with d free, or fewer than k whole devices free)
 *          = sum_{g : R_g < t_m} R_g        otherwise, t_m = d for a share (d < 1000), 1000 for
 *                                           whole devices (a partly used GPU hosts none of it)
 *   F_n(M) = sum_m w_m F_n(m)               w_m: how often shape m occurs in the workload
 *
 * F(M) = sum_n F_n(M) is the GPU capacity the typical workload cannot use; divided by
 * W * 1000 * GPUs (W = sum_m w_m) it is the share of the cluster's GPU capacity left
 * unallocatable. The fgd policy places a request where F_n(M) grows least (the "gradient").
 * Simplifications, documented in docs/RUNNING.md: the typical shapes ignore GPU model
 * constraints; a shape's CPU and RAM are the means of its requests; the 32 heaviest shapes
 * are used; integer weights keep every comparison exact.
 */
#include "sched/sched_int.h"

#include <string.h>

/* t_m: below this free share a device cannot host shape m. */
static int
threshold(const struct sched_class *m)
{
    return m->gpus == 1 && m->milli < OCRA_SCHED_MILLI ? m->milli : OCRA_SCHED_MILLI;
}

int64_t
sched_frag_eval(const struct ocra_sched_cluster *c, const int *free_milli, int g, int64_t cpu,
                int64_t ram)
{
    int s[OCRA_SCHED_MAX_GPUS], total = 0, full = 0, j = 0;
    int64_t f = 0, below = 0;

    if (c->n_cls == 0 || g == 0)
        return 0;
    for (int i = 0; i < g; i++) { /* insertion sort: g <= 16 */
        int v = free_milli[i], k = i;

        for (; k > 0 && s[k - 1] > v; k--)
            s[k] = s[k - 1];
        s[k] = v;
        total += v;
        full += v == OCRA_SCHED_MILLI;
    }
    for (int i = 0; i < c->n_cls; i++) { /* classes by ascending threshold */
        const struct sched_class *m = &c->cls[i];
        int t = threshold(m);
        bool run;

        while (j < g && s[j] < t)
            below += s[j++];
        run = cpu >= m->cpu && ram >= m->ram &&
              (t == OCRA_SCHED_MILLI ? full >= m->gpus : s[g - 1] >= m->milli);
        f += m->weight * (run ? below : total);
    }
    return f;
}

void
ocra_sched_typical_add(struct ocra_sched_cluster *c, const struct ocra_sched_req *r, int64_t weight)
{
    int milli = r->gpu_milli ? r->gpu_milli : OCRA_SCHED_MILLI, i;

    if (r->gpus <= 0 || r->gpus > OCRA_SCHED_MAX_GPUS || weight <= 0 || weight > 1 << 20 ||
        milli > OCRA_SCHED_MILLI || milli < 0 || (r->gpus > 1 && milli != OCRA_SCHED_MILLI) ||
        r->cpu_milli < 0 || r->ram_mib < 0 || r->cpu_milli > INT64_C(1) << 32 ||
        r->ram_mib > INT64_C(1) << 32 || c->weight_acc > INT64_C(1) << 30)
        return; /* the bounds keep sum(weight * 16000 * 32 shapes) and the sums in int64 */
    for (i = 0; i < c->n_acc; i++)
        if (c->acc[i].gpus == r->gpus && c->acc[i].milli == milli)
            break;
    if (i == c->n_acc) {
        if (c->n_acc == SCHED_ACC_MAX)
            return;
        memset(&c->acc[i], 0, sizeof(c->acc[i]));
        c->acc[i].gpus = r->gpus;
        c->acc[i].milli = milli;
        c->n_acc++;
    }
    c->acc[i].weight += weight;
    c->weight_acc += weight;
    c->acc[i].cpu_sum += r->cpu_milli * weight;
    c->acc[i].ram_sum += r->ram_mib * weight;
    c->cls_dirty = true;
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

void
sched_classes_build(struct ocra_sched_cluster *c)
{
    bool used[SCHED_ACC_MAX] = {false};

    c->n_cls = 0;
    c->weight = 0;
    while (c->n_cls < SCHED_CLS_MAX) { /* the heaviest first; ties: the earlier shape */
        int best = -1;

        for (int i = 0; i < c->n_acc; i++)
            if (!used[i] && (best < 0 || c->acc[i].weight > c->acc[best].weight))
                best = i;
        if (best < 0)
            break;
        used[best] = true;
        c->cls[c->n_cls] = c->acc[best];
        c->cls[c->n_cls].cpu = c->acc[best].cpu_sum / c->acc[best].weight;
        c->cls[c->n_cls].ram = c->acc[best].ram_sum / c->acc[best].weight;
        c->weight += c->acc[best].weight;
        c->n_cls++;
    }
    qsort(c->cls, (size_t)c->n_cls, sizeof(c->cls[0]), cls_cmp_threshold);
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
        f += c->hot[i].frag;
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
