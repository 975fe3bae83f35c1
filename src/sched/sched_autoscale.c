/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sched_autoscale.c: the autoscaler's control law (a target of load per replica with a dead
 * band, cooldowns and bounds, in the manner of Kubernetes' horizontal pod autoscaler) and the
 * discrete-event replay of an inference request trace through it, with every replica placed
 * on a cluster by the same placer the daemon uses.
 */
#include "sched/sched_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int
ocra_sched_autoscale_init(struct ocra_sched_autoscaler *as,
                          const struct ocra_sched_autoscale_conf *conf, struct ocra_err *err)
{
    if (conf->max < 1 || conf->max > OCRA_SCHED_MAX_REPLICAS)
        return ocra_err_set(err, EINVAL, "autoscale: max %d (1..%d)", conf->max,
                            OCRA_SCHED_MAX_REPLICAS);
    if (conf->min < 0 || conf->min > conf->max)
        return ocra_err_set(err, EINVAL, "autoscale: min %d (0..max %d)", conf->min, conf->max);
    if (!(conf->target > 0) || !isfinite(conf->target))
        return ocra_err_set(err, EINVAL, "autoscale: target must be > 0");
    if (!(conf->tolerance >= 0 && conf->tolerance < 1))
        return ocra_err_set(err, EINVAL, "autoscale: tolerance must be in [0, 1)");
    if (conf->up_cooldown_ms < 0 || conf->down_cooldown_ms < 0)
        return ocra_err_set(err, EINVAL, "autoscale: cooldowns must be >= 0");
    memset(as, 0, sizeof(*as));
    as->conf = *conf;
    as->last_change_ms = INT64_MIN;
    return 0;
}

int
ocra_sched_autoscale_step(const struct ocra_sched_autoscaler *as, int64_t now_ms, double load)
{
    const struct ocra_sched_autoscale_conf *c = &as->conf;
    int r = as->replicas, desired;
    double want, per = (double)r * c->target;
    int64_t since;

    if (r < c->min)
        return c->min;
    if (r > c->max)
        return c->max;
    if (!(load > 0)) /* also NaN */
        load = 0;
    want = ceil(load / c->target);
    desired = want > c->max ? c->max : (int)want;
    if (desired < c->min)
        desired = c->min;
    since = as->last_change_ms == INT64_MIN ? INT64_MAX : now_ms - as->last_change_ms;
    if (desired > r && load > per * (1 + c->tolerance) && since >= c->up_cooldown_ms)
        return desired;
    if (desired < r && load < per * (1 - c->tolerance) && since >= c->down_cooldown_ms)
        return desired;
    return r;
}

void
ocra_sched_autoscale_set(struct ocra_sched_autoscaler *as, int64_t now_ms, int replicas)
{
    if (replicas != as->replicas)
        as->last_change_ms = now_ms;
    as->replicas = replicas;
}

/* ---- the replay ------------------------------------------------------------------------ */

enum rstate { R_FREE, R_STARTING, R_SERVING, R_DRAINING };

struct replica {
    enum rstate state;
    int64_t ready_ms;
    int busy;
    struct ocra_sched_alloc alloc;
};

struct done {
    int64_t t;
    int replica;
};

struct replay {
    const struct ocra_sched_replay_conf *conf;
    const struct ocra_sched_request *reqs;
    size_t n_reqs, next; /* next arrival */
    struct ocra_sched_cluster *c;
    struct ocra_sched_autoscaler as;
    struct replica rep[OCRA_SCHED_MAX_REPLICAS];
    int active; /* starting or serving */
    struct done *heap;
    size_t n_heap;
    size_t *queue, q_head, q_tail; /* waiting requests, FIFO */
    int64_t *wait;                 /* per request; -1 until it starts */
    size_t in_flight;
    struct ocra_sched_replay_result *res;
    int64_t *rsum; /* per bucket: sum of replica counts at steps */
    size_t *rsteps;
};

static void
heap_push(struct replay *p, struct done d)
{
    size_t i = p->n_heap++;

    while (i > 0 && d.t < p->heap[(i - 1) / 2].t) {
        p->heap[i] = p->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    p->heap[i] = d;
}

static struct done
heap_pop(struct replay *p)
{
    struct done top = p->heap[0], last = p->heap[--p->n_heap];
    size_t i = 0, k;

    while ((k = 2 * i + 1) < p->n_heap) {
        if (k + 1 < p->n_heap && p->heap[k + 1].t < p->heap[k].t)
            k++;
        if (!(p->heap[k].t < last.t))
            break;
        p->heap[i] = p->heap[k];
        i = k;
    }
    if (p->n_heap)
        p->heap[i] = last;
    return top;
}

int64_t
ocra_sched_service_ms(const struct ocra_sched_replay_conf *c, const struct ocra_sched_request *r)
{
    if (c->service_ms > 0)
        return c->service_ms;
    return c->base_ms + (c->prefill_us_per_token * r->context_tokens +
                         c->decode_us_per_token * r->generated_tokens) /
                            1000;
}

/* The serving replica with a free slot and the fewest requests; -1 when none. */
static int
pick(const struct replay *p)
{
    int best = -1;

    for (int i = 0; i < OCRA_SCHED_MAX_REPLICAS; i++)
        if (p->rep[i].state == R_SERVING && p->rep[i].busy < p->conf->slots &&
            (best < 0 || p->rep[i].busy < p->rep[best].busy))
            best = i;
    return best;
}

static void
start(struct replay *p, size_t req, int replica, int64_t now)
{
    p->wait[req] = now - p->reqs[req].arrival_ms;
    p->rep[replica].busy++;
    p->in_flight++;
    heap_push(p, (struct done){now + ocra_sched_service_ms(p->conf, &p->reqs[req]), replica});
}

static void
dispatch(struct replay *p, int64_t now)
{
    int r;

    while (p->q_head < p->q_tail && (r = pick(p)) >= 0)
        start(p, p->queue[p->q_head++], r, now);
}

static void
free_replica(struct replay *p, int i)
{
    ocra_sched_release(p->c, &p->rep[i].alloc);
    p->rep[i].state = R_FREE;
}

/* Places one more replica; false when the placer finds no room. */
static bool
add_replica(struct replay *p, int64_t now)
{
    for (int i = 0; i < OCRA_SCHED_MAX_REPLICAS; i++) {
        struct replica *r = &p->rep[i];

        if (r->state != R_FREE)
            continue;
        if (ocra_sched_place(p->c, p->conf->policy, &p->conf->replica, &r->alloc, NULL) < 0)
            return false;
        r->state = now == 0 ? R_SERVING : R_STARTING; /* those at the start are warm */
        r->ready_ms = now + (now == 0 ? 0 : p->conf->startup_ms);
        r->busy = 0;
        p->active++;
        return true;
    }
    return false;
}

/* Takes one replica out: a starting one first (newest), else the least busy serving one. */
static void
remove_replica(struct replay *p)
{
    int victim = -1;

    for (int i = 0; i < OCRA_SCHED_MAX_REPLICAS; i++) {
        const struct replica *r = &p->rep[i];

        if (r->state == R_STARTING && (victim < 0 || p->rep[victim].state != R_STARTING ||
                                       r->ready_ms >= p->rep[victim].ready_ms))
            victim = i;
        else if (r->state == R_SERVING && (victim < 0 || (p->rep[victim].state == R_SERVING &&
                                                          r->busy < p->rep[victim].busy)))
            victim = i;
    }
    if (victim < 0)
        return;
    p->active--;
    if (p->rep[victim].busy == 0)
        free_replica(p, victim);
    else
        p->rep[victim].state = R_DRAINING;
}

static void
record_step(struct replay *p, int64_t now)
{
    size_t b = (size_t)(now / p->conf->bucket_ms);
    struct ocra_sched_replay_bucket *bk;

    if (b >= p->res->n_buckets)
        return;
    bk = &p->res->buckets[b];
    if (p->rsteps[b] == 0 || p->active < bk->replicas_min)
        bk->replicas_min = p->active;
    if (p->active > bk->replicas_max)
        bk->replicas_max = p->active;
    p->rsum[b] += p->active;
    p->rsteps[b]++;
    if (p->active > p->res->replicas_max)
        p->res->replicas_max = p->active;
}

static void
control(struct replay *p, int64_t now)
{
    double load = (double)(p->in_flight + (p->q_tail - p->q_head));
    int want = ocra_sched_autoscale_step(&p->as, now, load), before = p->active;

    while (p->active < want && add_replica(p, now))
        ;
    if (p->active < want)
        p->res->place_failures++;
    while (p->active > want)
        remove_replica(p);
    if (now > 0) { /* the start, up to min, is no scaling */
        p->res->scale_ups += p->active > before;
        p->res->scale_downs += p->active < before;
    }
    ocra_sched_autoscale_set(&p->as, now, p->active);
    p->res->replica_hours += (double)p->active * (double)p->conf->interval_ms / 3.6e6;
    record_step(p, now);
    dispatch(p, now);
}

/* The earliest time a starting replica becomes ready; INT64_MAX when none starts. */
static int64_t
next_ready(const struct replay *p)
{
    int64_t t = INT64_MAX;

    for (int i = 0; i < OCRA_SCHED_MAX_REPLICAS; i++)
        if (p->rep[i].state == R_STARTING && p->rep[i].ready_ms < t)
            t = p->rep[i].ready_ms;
    return t;
}

static void
become_ready(struct replay *p, int64_t now)
{
    for (int i = 0; i < OCRA_SCHED_MAX_REPLICAS; i++)
        if (p->rep[i].state == R_STARTING && p->rep[i].ready_ms <= now)
            p->rep[i].state = R_SERVING;
    dispatch(p, now);
}

static void
complete(struct replay *p)
{
    struct done d = heap_pop(p);
    struct replica *r = &p->rep[d.replica];

    r->busy--;
    p->in_flight--;
    if (r->state == R_DRAINING && r->busy == 0)
        free_replica(p, d.replica);
    dispatch(p, d.t);
}

static void
arrive(struct replay *p)
{
    size_t i = p->next++;
    int r = p->q_head == p->q_tail ? pick(p) : -1; /* FIFO: nobody overtakes the queue */

    if (r >= 0)
        start(p, i, r, p->reqs[i].arrival_ms);
    else
        p->queue[p->q_tail++] = i;
}

/* The event loop; false when requests are left that no replica will ever serve. */
static bool
run(struct replay *p)
{
    int64_t tick = 0;

    while (p->next < p->n_reqs || p->in_flight || p->q_head < p->q_tail) {
        int64_t ta = p->next < p->n_reqs ? p->reqs[p->next].arrival_ms : INT64_MAX;
        int64_t td = p->n_heap ? p->heap[0].t : INT64_MAX, tr = next_ready(p);

        if (td <= ta && td <= tr && td <= tick) {
            complete(p);
        } else if (tr <= ta && tr <= tick) {
            become_ready(p, tr);
        } else if (tick <= ta) {
            control(p, tick);
            if (p->active == 0 && p->next == p->n_reqs && !p->in_flight && tr == INT64_MAX &&
                p->res->place_failures > 0)
                return false;
            tick += p->conf->interval_ms;
        } else {
            arrive(p);
        }
    }
    return true;
}

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

/* The q-th percentile (nearest rank) of sorted v[0..n). */
static int64_t
pct(const int64_t *v, size_t n, int q)
{
    size_t k;

    if (n == 0)
        return 0;
    k = (n * (size_t)q + 99) / 100;
    return v[k ? k - 1 : 0];
}

static void
summarise(struct replay *p)
{
    struct ocra_sched_replay_result *res = p->res;
    int64_t *sorted = ocra_xcalloc(p->n_reqs + 1, sizeof(*sorted));
    size_t n = 0, lo = 0;

    for (size_t b = 0; b < res->n_buckets; b++) {
        struct ocra_sched_replay_bucket *bk = &res->buckets[b];
        size_t k = 0;

        bk->start_ms = (int64_t)b * p->conf->bucket_ms;
        bk->replicas_mean = p->rsteps[b] ? (double)p->rsum[b] / (double)p->rsteps[b] : 0;
        while (lo < p->n_reqs && p->reqs[lo].arrival_ms < bk->start_ms + p->conf->bucket_ms) {
            if (p->wait[lo] >= 0)
                sorted[k++] = p->wait[lo];
            bk->waited += p->wait[lo] > 0;
            bk->arrivals++;
            lo++;
        }
        qsort(sorted, k, sizeof(*sorted), cmp_i64);
        bk->wait_p99_ms = pct(sorted, k, 99);
    }
    for (size_t i = 0; i < p->n_reqs; i++)
        if (p->wait[i] > 0)
            sorted[n++] = p->wait[i];
    res->waited = n;
    qsort(sorted, n, sizeof(*sorted), cmp_i64);
    res->waited_p50_ms = pct(sorted, n, 50);
    for (size_t i = 0, k = n; i < p->n_reqs; i++)
        if (p->wait[i] == 0)
            sorted[k++] = 0;
    qsort(sorted, p->n_reqs, sizeof(*sorted), cmp_i64);
    res->wait_p50_ms = pct(sorted, p->n_reqs, 50);
    res->wait_p90_ms = pct(sorted, p->n_reqs, 90);
    res->wait_p99_ms = pct(sorted, p->n_reqs, 99);
    res->wait_max_ms = p->n_reqs ? sorted[p->n_reqs - 1] : 0;
    free(sorted);
}

static int
replay_check(const struct ocra_sched_request *reqs, size_t n_reqs,
             const struct ocra_sched_replay_conf *c, struct ocra_err *err)
{
    if (c->interval_ms < 1 || c->bucket_ms < 1 || c->startup_ms < 0 || c->slots < 1 ||
        c->service_ms < 0 || c->base_ms < 0 || c->prefill_us_per_token < 0 ||
        c->decode_us_per_token < 0 || (unsigned)c->policy >= OCRA_SCHED_N_POLICIES)
        return ocra_err_set(err, EINVAL,
                            "replay: interval, bucket and slots must be >= 1, "
                            "times >= 0");
    for (size_t i = 0; i < n_reqs; i++)
        if (reqs[i].arrival_ms < 0 || (i > 0 && reqs[i].arrival_ms < reqs[i - 1].arrival_ms))
            return ocra_err_set(err, EINVAL, "replay: request %zu arrives out of order", i);
    return 0;
}

static int
replay_init(struct replay *p, const struct ocra_sched_node *nodes, size_t n_nodes,
            struct ocra_sched_replay_result *res, struct ocra_err *err)
{
    int64_t span = p->n_reqs ? p->reqs[p->n_reqs - 1].arrival_ms : 0;

    memset(res, 0, sizeof(*res));
    p->res = res;
    res->requests = p->n_reqs;
    res->n_buckets = (size_t)(span / p->conf->bucket_ms) + 1;
    res->buckets = ocra_xcalloc(res->n_buckets, sizeof(*res->buckets));
    p->rsum = ocra_xcalloc(res->n_buckets, sizeof(*p->rsum));
    p->rsteps = ocra_xcalloc(res->n_buckets, sizeof(*p->rsteps));
    p->heap = ocra_xcalloc((size_t)OCRA_SCHED_MAX_REPLICAS * (size_t)p->conf->slots + 1,
                           sizeof(*p->heap));
    p->queue = ocra_xcalloc(p->n_reqs + 1, sizeof(*p->queue));
    p->wait = ocra_xcalloc(p->n_reqs + 1, sizeof(*p->wait));
    for (size_t i = 0; i < p->n_reqs; i++)
        p->wait[i] = -1;
    p->c = ocra_sched_cluster_new();
    for (size_t i = 0; i < n_nodes; i++)
        if (ocra_sched_cluster_add(p->c, &nodes[i], err) < 0)
            return ocra_err_wrap(err, "replay: nodes");
    return ocra_sched_autoscale_init(&p->as, &p->conf->scale, err);
}

int
ocra_sched_replay(const struct ocra_sched_node *nodes, size_t n_nodes,
                  const struct ocra_sched_request *reqs, size_t n_reqs,
                  const struct ocra_sched_replay_conf *conf, struct ocra_sched_replay_result *res,
                  struct ocra_err *err)
{
    struct replay p;
    int ret = -1;

    memset(&p, 0, sizeof(p));
    p.conf = conf;
    p.reqs = reqs;
    p.n_reqs = n_reqs;
    if (replay_check(reqs, n_reqs, conf, err) < 0)
        return -1;
    if (replay_init(&p, nodes, n_nodes, res, err) < 0)
        goto out;
    if (!run(&p)) {
        ocra_err_set(err, ENOSPC, "replay: no replica could be placed on the nodes");
        goto out;
    }
    summarise(&p);
    ret = 0;
out:
    if (ret < 0) {
        free(res->buckets);
        memset(res, 0, sizeof(*res));
    }
    ocra_sched_cluster_free(p.c);
    free(p.heap);
    free(p.queue);
    free(p.wait);
    free(p.rsum);
    free(p.rsteps);
    return ret;
}
