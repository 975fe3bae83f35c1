/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon_queue.c: the scheduler queue's mechanics. An event that finds no room at the
 * allocate stage ends its attempt `queued`: the attempt does not count and no worker holds
 * the event. The dispatcher reads the queued events from the journal (owner, priority, when
 * first queued, the request the allocate stage recorded, the estimate from the spec's
 * workload.maxDuration) and the running workloads from the held allocations, asks the queue
 * policy (ocra_sched_queue_decide() in src/sched: the one place that orders) which start now,
 * records exactly the allocations it decided and wakes those events: their allocate stage then
 * finds its allocation held. It runs after every release of capacity, after an event is
 * queued, and on a slow timer (sched.queue.interval_ms). `ocra queue` and /api/v1/queue show
 * the same decision without acting on it.
 */
#include "daemon/daemon_int.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics.h"
#include "sched/sched.h"

_Static_assert(OCRA_SCHED_Q_FIFO == 0 && OCRA_SCHED_Q_BACKFILL == 1 && OCRA_SCHED_Q_FAIR == 2 &&
                   OCRA_SCHED_Q_SJF == 3,
               "sched.queue.policy's choices (src/config/config_table.c) are in this order");

/* ---- what the queue knows of an event ----------------------------------------------------- */

int64_t
ocra_daemon_estimate_s(const char *spec)
{
    json_t *j = spec ? ocra_json_parse(spec, strlen(spec), 0, NULL) : NULL;
    json_t *v = json_object_get(json_object_get(j, "workload"), "maxDuration");
    int64_t s = 0;

    if (json_is_integer(v) && json_integer_value(v) > 0) {
        s = (int64_t)json_integer_value(v);
    } else if (json_is_string(v)) { /* "90", "90s", "15m", "2h", "1d" */
        const char *t = json_string_value(v);
        size_t n = strspn(t, "0123456789");
        static const char units[] = "smhd";
        static const int64_t mult[] = {1, 60, 3600, 86400};
        const char *u = t[n] && !t[n + 1] ? strchr(units, t[n]) : NULL;
        char num[20];

        if (n > 0 && n < sizeof(num) && (!t[n] || u)) {
            memcpy(num, t, n);
            num[n] = '\0';
            if (ocra_parse_i64(num, 1, INT64_MAX / 86400, &s, NULL) < 0)
                s = 0;
            else if (u)
                s *= mult[u - units];
        }
    }
    json_decref(j);
    return s;
}

/* The app of a chain path: AIN "/apps/<app>/...", EVM "<contract>/<name>": the contract. */
static char *
app_of(const char *path)
{
    const char *p = path ? path : "", *end;

    if (!strncmp(p, "/apps/", 6))
        p += 6;
    end = strchr(p, '/');
    return end ? ocra_xstrndup(p, (size_t)(end - p)) : ocra_xstrdup(p);
}

/* The owner for fair share: the publisher (signer, lower case), else the app. */
static char *
owner_of(const char *signer, const char *app)
{
    char *o = ocra_xstrdup(signer && *signer ? signer : app);

    for (char *c = o; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    return o;
}

/* The operator's priority for a publisher or an app ("name=priority"); a publisher's wins. */
static int
priority_of(const struct ocra_config *cfg, const char *signer, const char *app)
{
    int by_app = 0;

    for (size_t i = 0; i < cfg->sched.queue.n_priorities; i++) {
        const char *e = cfg->sched.queue.priorities[i], *eq = strrchr(e, '=');
        size_t n = (size_t)(eq - e);
        int64_t v = 0;

        (void)ocra_parse_i64(eq + 1, -1000, 1000, &v, NULL); /* checked at load */
        if (signer && strlen(signer) == n && !strncasecmp(e, signer, n))
            return (int)v;
        if (app && strlen(app) == n && !strncmp(e, app, n))
            by_app = (int)v;
    }
    return by_app;
}

json_t *
ocra_daemon_queue_request(const struct ocra_sched_req *r, int64_t estimate_s)
{
    return json_pack("{s:i, s:I, s:I, s:I, s:I, s:I}", "gpus", r->gpus, "gpuMemMib",
                     (json_int_t)r->gpu_mem_mib, "minDriver", (json_int_t)r->min_driver, "cpuMilli",
                     (json_int_t)r->cpu_milli, "ramMib", (json_int_t)r->ram_mib, "estimateS",
                     (json_int_t)estimate_s);
}

/* ---- the queue's input from the journal ---------------------------------------------------- */

struct qitem {
    char *id, *owner, *app, *model, *version, *reason;
    int64_t queued_ms;
};

struct ritem {
    char *id, *owner;
    char *newer; /* the view's: the newer event of its model that supersedes it, or NULL */
    struct ocra_sched_alloc *allocs;
    size_t n;
    int64_t start_ms;
};

struct qstate {
    const struct ocra_config *cfg;
    struct ocra_store *st;
    const struct ocra_sched_cluster *c;
    struct qitem *items; /* parallel to qv */
    struct ocra_sched_queued *qv;
    size_t n, cap;
    struct qitem *never; /* requests that can never fit (the inventory shrank) */
    char **never_why;
    size_t n_never;
    struct ritem *r;
    struct ocra_sched_running *rv;
    size_t n_r, cap_r;
    struct ocra_sched_weight *w;
    size_t n_w;
    struct ocra_sched_plan plan;
};

static void
qitem_fini(struct qitem *q)
{
    free(q->id);
    free(q->owner);
    free(q->app);
    free(q->model);
    free(q->version);
    free(q->reason);
}

static void
qstate_fini(struct qstate *s)
{
    for (size_t i = 0; i < s->n; i++)
        qitem_fini(&s->items[i]);
    for (size_t i = 0; i < s->n_never; i++) {
        qitem_fini(&s->never[i]);
        free(s->never_why[i]);
    }
    for (size_t i = 0; i < s->n_r; i++) {
        free(s->r[i].id);
        free(s->r[i].owner);
        free(s->r[i].newer);
        free(s->r[i].allocs);
    }
    free(s->items);
    free(s->qv);
    free(s->never);
    free(s->never_why);
    for (size_t i = 0; i < s->n_w; i++)
        free((char *)(uintptr_t)s->w[i].owner); /* owned here, const for the policy */
    free(s->r);
    free(s->rv);
    free(s->w);
    ocra_sched_plan_fini(&s->plan);
}

static int
queued_add(const struct ocra_store_queued *q, void *arg)
{
    struct qstate *s = arg;
    json_t *out = q->request ? ocra_json_parse(q->request, strlen(q->request), 0, NULL) : NULL;
    const json_t *r = json_object_get(out, "request");
    struct qitem *it;
    struct ocra_sched_queued *v;

    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 16;
        s->items = ocra_xrealloc(s->items, s->cap * sizeof(*s->items));
        s->qv = ocra_xrealloc(s->qv, s->cap * sizeof(*s->qv));
    }
    it = &s->items[s->n];
    v = &s->qv[s->n++];
    memset(it, 0, sizeof(*it));
    memset(v, 0, sizeof(*v));
    it->id = ocra_xstrdup(q->event_id);
    it->app = app_of(q->path);
    it->owner = owner_of(q->signer, it->app);
    it->model = ocra_xstrdup(q->model ? q->model : "");
    it->version = ocra_xstrdup(q->version ? q->version : "");
    it->reason = ocra_xstrdup(q->reason ? q->reason : "");
    it->queued_ms = q->queued_ms;
    v->priority = priority_of(s->cfg, q->signer, it->app);
    v->submit = q->queued_ms / 1000;
    v->req.gpus = (int)ocra_json_int(r, "gpus", 0);
    v->req.gpu_mem_mib = ocra_json_int(r, "gpuMemMib", 0);
    v->req.min_driver = (uint32_t)ocra_json_int(r, "minDriver", 0);
    v->req.cpu_milli = ocra_json_int(r, "cpuMilli", 0);
    v->req.ram_mib = ocra_json_int(r, "ramMib", 0);
    v->estimate = ocra_json_int(r, "estimateS", 0);
    if (!v->estimate) /* queued before the estimate was recorded: the spec's */
        v->estimate = ocra_daemon_estimate_s(q->spec);
    json_decref(out);
    return 0;
}

/* A held allocation: its event's running entry gains it. */
static int
running_add(const struct ocra_store_alloc *a, void *arg)
{
    struct qstate *s = arg;
    int node = ocra_sched_cluster_find(s->c, a->node);
    struct ocra_sched_alloc *p;
    struct ritem *r = NULL;

    if (node < 0 || a->n_devs > OCRA_SCHED_MAX_GPUS) /* an orphan: not in the cluster */
        return 0;
    for (size_t i = s->n_r; i-- > 0;)
        if (!strcmp(s->r[i].id, a->event_id)) {
            r = &s->r[i];
            break;
        }
    if (!r) {
        if (s->n_r == s->cap_r) {
            s->cap_r = s->cap_r ? 2 * s->cap_r : 16;
            s->r = ocra_xrealloc(s->r, s->cap_r * sizeof(*s->r));
        }
        r = &s->r[s->n_r++];
        memset(r, 0, sizeof(*r));
        r->id = ocra_xstrdup(a->event_id);
        r->start_ms = a->created_ms;
    }
    r->allocs = ocra_xrealloc(r->allocs, (r->n + 1) * sizeof(*r->allocs));
    p = &r->allocs[r->n++];
    memset(p, 0, sizeof(*p));
    p->node = node;
    p->n_devs = a->n_devs;
    for (int i = 0; i < a->n_devs; i++)
        p->devs[i] = (uint8_t)a->devs[i];
    p->gpu_milli = a->gpu_milli;
    p->gpu_mem_mib = a->gpu_mem_mib;
    p->cpu_milli = a->cpu_milli;
    p->ram_mib = a->ram_mib;
    return 0;
}

/* Owners and expected ends of the running workloads (their events' signer and spec). */
static int
running_fill(struct qstate *s, struct ocra_err *err)
{
    s->rv = ocra_xcalloc(s->n_r + 1, sizeof(*s->rv));
    for (size_t i = 0; i < s->n_r; i++) {
        struct ocra_store_event *ev = NULL;
        struct ritem *r = &s->r[i];
        int64_t est = 0;

        if (ocra_store_event_get(s->st, r->id, &ev, err) < 0)
            return -1;
        if (ev) {
            char *app = app_of(ev->path);

            r->owner = owner_of(ev->signer, app);
            est = ocra_daemon_estimate_s(ev->spec);
            free(app);
        }
        ocra_store_event_free(ev);
        s->rv[i] = (struct ocra_sched_running){.id = r->id,
                                               .owner = r->owner,
                                               .allocs = r->allocs,
                                               .n_allocs = r->n,
                                               .end = est ? r->start_ms / 1000 + est : 0};
    }
    return 0;
}

/* The fair-share weights ("owner=weight"), owners in lower case as owner_of() gives them. */
static void
weights_fill(struct qstate *s)
{
    const struct ocra_config *cfg = s->cfg;

    s->w = ocra_xcalloc(cfg->sched.queue.n_weights + 1, sizeof(*s->w));
    for (size_t i = 0; i < cfg->sched.queue.n_weights; i++) {
        const char *e = cfg->sched.queue.weights[i], *eq = strrchr(e, '=');
        char *owner = ocra_xstrndup(e, (size_t)(eq - e));
        int64_t v = 1;

        (void)ocra_parse_i64(eq + 1, 1, 1000000, &v, NULL); /* checked at load */
        for (char *c = owner; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        s->w[s->n_w].owner = owner;
        s->w[s->n_w++].weight = (double)v;
    }
}

/* The queue and the running workloads, read from the journal over cluster c. */
static int
qstate_load(struct qstate *s, const struct ocra_sched_cluster *c, struct ocra_err *err)
{
    s->c = c;
    ocra_sched_plan_init(&s->plan);
    if (ocra_store_queue_list(s->st, queued_add, s, err) < 0)
        return -1;
    for (size_t i = 0; i < s->n; i++) { /* borrowed by the policy */
        s->qv[i].id = s->items[i].id;
        s->qv[i].owner = s->items[i].owner;
    }
    if (s->n == 0)
        return 0;
    if (ocra_store_alloc_list(s->st, NULL, true, running_add, s, err) < 0 ||
        running_fill(s, err) < 0)
        return -1;
    weights_fill(s);
    return 0;
}

/* Moves queued request i to the never-fits list with why. */
static void
never_add(struct qstate *s, size_t i, const char *why)
{
    s->never = ocra_xrealloc(s->never, (s->n_never + 1) * sizeof(*s->never));
    s->never_why = ocra_xrealloc(s->never_why, (s->n_never + 1) * sizeof(*s->never_why));
    s->never[s->n_never] = s->items[i];
    s->never_why[s->n_never++] = ocra_xstrdup(why);
    memmove(&s->items[i], &s->items[i + 1], (s->n - i - 1) * sizeof(*s->items));
    memmove(&s->qv[i], &s->qv[i + 1], (s->n - i - 1) * sizeof(*s->qv));
    s->n--;
}

/* The policy's decision over the queue; a request that can never fit (the inventory shrank
 * since it was queued) is moved to the never-fits list and the queue decided again. */
static int
decide(struct qstate *s, int64_t now, struct ocra_err *err)
{
    const struct ocra_config *cfg = s->cfg;
    const struct ocra_sched_queue_conf conf = {
        .policy = (enum ocra_sched_qpolicy)cfg->sched.queue.policy,
        .place = (enum ocra_sched_policy)cfg->sched.policy,
        .aging_s = cfg->sched.queue.aging_s,
        .weights = s->w,
        .n_weights = s->n_w,
    };

    for (;;) {
        size_t bad = SIZE_MAX;

        if (ocra_sched_queue_decide(s->c, &conf, now, s->rv, s->n_r, s->qv, s->n, &s->plan, &bad,
                                    err) == 0)
            return 0;
        if ((err->code != ENOSPC && err->code != EINVAL) || bad >= s->n)
            return -1;
        never_add(s, bad, err->msg); /* failed at its allocate stage, naming the filter */
        memset(err, 0, sizeof(*err));
    }
}

/* ---- a successor in its predecessor's room ------------------------------------------------- */

/* Whether queued request qi would start now if the workload of running event old_id gave its
 * room back (a newer version takes its older version's room), the rest of the queue aside.
 * The cluster's accounting holds old_id's allocations: they are given back for the decision
 * and taken again after it (the cluster is this call's allocator's own, left as it was). */
static bool
fits_in_room_of(struct qstate *s, size_t qi, const char *old_id, int64_t now)
{
    const struct ocra_sched_queue_conf conf = {
        .policy = OCRA_SCHED_Q_FIFO,
        .place = (enum ocra_sched_policy)s->cfg->sched.policy,
    };
    struct ocra_sched_cluster *c = (struct ocra_sched_cluster *)(uintptr_t)s->c;
    struct ocra_sched_running *rv = ocra_xcalloc(s->n_r + 1, sizeof(*rv));
    const struct ritem *old = NULL;
    struct ocra_sched_plan plan;
    struct ocra_err err = {0};
    bool fits = false;
    size_t n = 0;

    for (size_t i = 0; i < s->n_r; i++) {
        if (!strcmp(s->rv[i].id, old_id))
            old = &s->r[i];
        else
            rv[n++] = s->rv[i];
    }
    ocra_sched_plan_init(&plan);
    if (old) {
        for (size_t k = 0; k < old->n; k++)
            ocra_sched_release(c, &old->allocs[k]);
        if (ocra_sched_queue_decide(c, &conf, now, rv, n, &s->qv[qi], 1, &plan, NULL, &err) == 0)
            fits = plan.n > 0 && plan.v[0].start;
        for (size_t k = 0; k < old->n; k++)
            if (ocra_sched_claim(c, &old->allocs[k], &err) < 0)
                ocra_log_warn("queue: %s: taking its room again: %s", old_id, err.msg);
    }
    ocra_sched_plan_fini(&plan);
    free(rv);
    return fits;
}

/* Each running event's newer event (the one that supersedes it), once per view. */
static void
newer_fill(struct qstate *s)
{
    for (size_t i = 0; i < s->n_r; i++) {
        struct ocra_err err = {0};
        bool current = true;

        if (ocra_store_event_current(s->st, s->r[i].id, &current, &s->r[i].newer, &err) < 0 ||
            current) {
            free(s->r[i].newer);
            s->r[i].newer = NULL;
        }
    }
}

/* The running event whose room queued request qi takes (an older version of its model that
 * it supersedes, and whose room would let it start), or NULL. After newer_fill(). */
static const char *
predecessor_room(struct qstate *s, size_t qi, int64_t now)
{
    for (size_t i = 0; i < s->n_r; i++)
        if (s->r[i].newer && !strcmp(s->r[i].newer, s->items[qi].id) &&
            fits_in_room_of(s, qi, s->r[i].id, now))
            return s->r[i].id;
    return NULL;
}

struct successor_call {
    const struct ocra_config *cfg;
    struct ocra_store *st;
    const char *queued_id, *old_id;
    bool fits;
};

static int
do_successor(struct ocra_sched_allocator *a, void *arg, struct ocra_err *err)
{
    struct successor_call *sc = arg;
    struct qstate s = {.cfg = sc->cfg, .st = sc->st};
    int ret = -1;

    if (qstate_load(&s, ocra_sched_allocator_cluster(a), err) < 0)
        goto out;
    for (size_t i = 0; i < s.n && !sc->fits; i++)
        if (!strcmp(s.items[i].id, sc->queued_id))
            sc->fits = fits_in_room_of(&s, i, sc->old_id, ocra_time_wall_ms() / 1000);
    ret = 0;
out:
    qstate_fini(&s);
    return ret;
}

int
ocra_daemon_queue_successor_fits(struct ocra_daemon_ctx *ctx, const char *queued_id,
                                 const char *old_id, bool *fits, struct ocra_err *err)
{
    struct successor_call sc = {
        .cfg = ctx->cfg, .st = ctx->st, .queued_id = queued_id, .old_id = old_id};

    *fits = false;
    if (ocra_daemon_with_allocator(ctx, do_successor, &sc, err) < 0)
        return -1;
    *fits = sc.fits;
    return 0;
}

/* ---- the dispatcher ------------------------------------------------------------------------ */

/* Records the decided allocations of queued request v and wakes its event. */
static void
start_one(struct ocra_sched_allocator *a, struct qstate *s, const struct ocra_sched_decision *v,
          int64_t now_ms)
{
    const struct qitem *it = &s->items[v->queued];
    struct ocra_err err = {0};
    bool woken = false;

    for (size_t k = 0; k < v->n_allocs; k++) {
        struct ocra_sched_alloc out;
        bool existed = false;

        if (ocra_sched_allocate_exact(a, it->id, (int)k, &s->plan.allocs[v->alloc + k], &out,
                                      &existed, &err) < 0) {
            ocra_log_warn("queue event=%s: %s (it stays queued)", it->id, err.msg);
            (void)ocra_sched_allocator_release(a, it->id, -1, NULL, NULL);
            return;
        }
    }
    if (ocra_store_stage_wake_event(s->st, it->id, "queued", &woken, &err) < 0 || !woken) {
        /* moved on meanwhile (retried, superseded): nothing waits for the allocation */
        (void)ocra_sched_allocator_release(a, it->id, -1, NULL, NULL);
        if (err.code)
            ocra_log_warn("queue event=%s: wake: %s", it->id, err.msg);
        return;
    }
    ocra_metrics_observe(ocra_metrics_std()->queue_wait, NULL,
                         (double)(now_ms - it->queued_ms) / 1000.0);
    ocra_log_info("queue start event=%s position=%zu owner=%s waited_ms=%" PRId64, it->id,
                  v->position, it->owner, now_ms - it->queued_ms);
}

struct dispatch_call {
    struct ocra_daemon_ctx *ctx;
    size_t started;
};

static int
do_dispatch(struct ocra_sched_allocator *a, void *arg, struct ocra_err *err)
{
    struct dispatch_call *dc = arg;
    struct qstate s = {.cfg = dc->ctx->cfg, .st = dc->ctx->st};
    int64_t now_ms = ocra_time_wall_ms();
    int ret = -1;

    if (qstate_load(&s, ocra_sched_allocator_cluster(a), err) < 0)
        goto out;
    if (s.n && decide(&s, now_ms / 1000, err) < 0)
        goto out;
    for (size_t i = 0; s.n && i < s.plan.n; i++)
        if (s.plan.v[i].start) {
            start_one(a, &s, &s.plan.v[i], now_ms);
            dc->started++;
        }
    for (size_t i = 0; i < s.n_never; i++) { /* its allocate stage fails it, naming why */
        struct ocra_err e2 = {0};

        ocra_log_warn("queue event=%s can never fit: %s", s.never[i].id, s.never_why[i]);
        if (ocra_store_stage_wake_event(s.st, s.never[i].id, "queued", NULL, &e2) < 0)
            ocra_log_warn("queue event=%s: wake: %s", s.never[i].id, e2.msg);
    }
    ret = 0;
out:
    qstate_fini(&s);
    return ret;
}

/* The queued events that a newer version of their model (or its removal) supersedes, or that
 * the watcher orphaned, leave the queue at once for the report stage, as a claim would move
 * them (a queued event is not claimed until it starts): an older version never waits behind,
 * or for the room of, the version that replaces it. */
static void
supersede_queued(struct ocra_daemon_ctx *ctx)
{
    struct ocra_daemon *d = ctx->d;
    struct ocra_store_claim_opts o = {0};
    struct ocra_err err = {0};
    char **moved = NULL;
    size_t n = 0;

    if (!d || !d->n_stages)
        return;
    o = (struct ocra_store_claim_opts){.worker = ctx->name[0] ? ctx->name : "queue",
                                       .gated = d->gated,
                                       .n_gated = d->n_gated,
                                       .superseded_stage = d->stages[d->n_stages - 1].name};
    if (ocra_store_queue_supersede(ctx->st, &o, &moved, &n, &err) < 0) {
        ocra_log_warn("queue: superseding queued older versions: %s", err.msg);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(moved[2 * i + 1], "orphaned"))
            ocra_log_warn("queue event=%s left the queue: the chain no longer holds it "
                          "(orphaned)",
                          moved[2 * i]);
        else
            ocra_log_info("queue event=%s left the queue: superseded by %s, a newer version of "
                          "its model (or its removal)",
                          moved[2 * i], moved[2 * i + 1]);
        free(moved[2 * i]);
        free(moved[2 * i + 1]);
    }
    free(moved);
    if (n)
        ocra_daemon_wake_workers(d); /* the report stage reports them */
}

void
ocra_daemon_queue_dispatch(struct ocra_daemon_ctx *ctx)
{
    struct dispatch_call dc = {.ctx = ctx};
    struct ocra_err err = {0};
    int64_t n = 0;

    if (ocra_store_queue_count(ctx->st, &n, &err) == 0 && n == 0)
        return; /* the common case: nothing queued, no allocator to build */
    supersede_queued(ctx);
    if (ocra_daemon_with_allocator(ctx, do_dispatch, &dc, &err) < 0) {
        ocra_log_warn("queue: %s (tried again at the next release or in %" PRId64 " ms)", err.msg,
                      ctx->cfg->sched.queue.interval_ms);
        return;
    }
    if (dc.started && ctx->d)
        ocra_daemon_wake_workers(ctx->d);
}

/* ---- the view: ocra queue, /api/v1/queue --------------------------------------------------- */

static json_t *
item_json(const struct qitem *it, const struct ocra_sched_queued *q, int64_t now_ms)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:I, s:I, s:I, s:I, s:I}", "event", it->id,
                     "model", it->model, "version", it->version, "owner", it->owner, "priority",
                     q->priority, "gpus", q->req.gpus, "cpuMilli", (json_int_t)q->req.cpu_milli,
                     "ramMib", (json_int_t)q->req.ram_mib, "estimateS", (json_int_t)q->estimate,
                     "queuedAt", (json_int_t)it->queued_ms, "waitedS",
                     (json_int_t)((now_ms - it->queued_ms) / 1000));
}

struct view_call {
    const struct ocra_config *cfg;
    struct ocra_store *st;
    json_t *doc;
};

static int
do_view(struct ocra_sched_allocator *a, void *arg, struct ocra_err *err)
{
    struct view_call *vc = arg;
    struct qstate s = {.cfg = vc->cfg, .st = vc->st};
    int64_t now_ms = ocra_time_wall_ms();
    json_t *arr = json_array();
    int ret = -1;

    if (qstate_load(&s, ocra_sched_allocator_cluster(a), err) < 0)
        goto out;
    if (s.n && decide(&s, now_ms / 1000, err) < 0)
        goto out;
    newer_fill(&s);
    for (size_t i = 0; s.n && i < s.plan.n; i++) {
        const struct ocra_sched_decision *v = &s.plan.v[i];
        json_t *o = item_json(&s.items[v->queued], &s.qv[v->queued], now_ms);
        const char *old = v->start ? NULL : predecessor_room(&s, v->queued, now_ms / 1000);
        char why[OCRA_ERR_MAX];

        json_object_set_new(o, "position", json_integer((json_int_t)v->position));
        json_object_set_new(o, "effectivePriority", json_integer(v->eff_priority));
        json_object_set_new(o, "head", json_boolean(v->head));
        json_object_set_new(o, "wait",
                            json_string(v->start ? "starting" : ocra_sched_wait_name(v->wait)));
        if (old) /* the supervisor stops the older version for it */
            snprintf(why, sizeof(why),
                     "the room of its older version %s, which is stopped for it (no room for "
                     "both: a gap in service until this one starts)",
                     old);
        json_object_set_new(o, "reason",
                            json_string(v->start       ? "starts now: room is free"
                                        : old          ? why
                                        : v->reason[0] ? v->reason
                                                       : s.items[v->queued].reason));
        json_object_set_new(o, "estimatedStart",
                            v->est_start >= 0 ? json_integer((json_int_t)(v->est_start * 1000))
                                              : json_null());
        json_array_append_new(arr, o);
    }
    for (size_t i = 0; i < s.n_never; i++) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:n, s:I}", "event", s.never[i].id, "owner",
                              s.never[i].owner, "wait", "never", "reason", s.never_why[i],
                              "estimatedStart", "queuedAt", (json_int_t)s.never[i].queued_ms);

        json_array_append_new(arr, o);
    }
    vc->doc =
        json_pack("{s:s, s:I, s:I, s:o}", "policy",
                  ocra_sched_qpolicy_name((enum ocra_sched_qpolicy)vc->cfg->sched.queue.policy),
                  "depth", (json_int_t)(s.n + s.n_never), "now", (json_int_t)now_ms, "queued", arr);
    arr = NULL;
    ret = 0;
out:
    json_decref(arr);
    qstate_fini(&s);
    return ret;
}

json_t *
ocra_daemon_queue_json(const struct ocra_config *cfg, struct ocra_store *st, struct ocra_err *err)
{
    struct ocra_daemon_ctx ctx = {.st = st, .cfg = cfg, .id = -1};
    struct view_call vc = {.cfg = cfg, .st = st};

    if (ocra_daemon_with_allocator(&ctx, do_view, &vc, err) < 0)
        return NULL;
    return vc.doc;
}
