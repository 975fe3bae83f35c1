/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sched_queue_test.c: the queue's policy on small clusters whose answers are worked out by
 * hand: priority order, fifo's strictness, EASY backfill (a short job starts, one that would
 * delay the head does not, one that leaves the head's devices alone does), DRF across two
 * owners and its weights, aging, shortest-estimate-first, gangs of whole nodes (the fewest,
 * one topology group, two gangs without deadlock), requests that can never fit, the reasons and
 * the estimated starts; preemption's victims.
 */
#include "sched/sched.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ocra_test.h"

/* n nodes n0.. of 8 T4 GPUs each. */
static struct ocra_sched_cluster *
cluster(size_t n)
{
    struct ocra_sched_cluster *c = ocra_sched_cluster_new();
    struct ocra_sched_node node;

    for (size_t i = 0; i < n; i++) {
        memset(&node, 0, sizeof(node));
        (void)snprintf(node.name, sizeof(node.name), "n%zu", i);
        (void)snprintf(node.gpu_model, sizeof(node.gpu_model), "T4");
        node.gpu_count = 8;
        node.gpu_mem_mib = 16384;
        node.cpu_milli = 64000;
        node.ram_mib = 262144;
        CHECK_INT(ocra_sched_cluster_add(c, &node, NULL), 0);
    }
    return c;
}

/* A running workload of gpus on c (placed best-fit, or on node `on` when >= 0). */
static void
run(struct ocra_sched_cluster *c, struct ocra_sched_running *w, struct ocra_sched_alloc *a,
    const char *id, const char *owner, int gpus, int64_t end, int on)
{
    struct ocra_sched_req r = {.gpus = gpus};

    memset(w, 0, sizeof(*w));
    if (on >= 0) {
        memset(a, 0, sizeof(*a));
        a->node = on;
        a->n_devs = gpus;
        a->gpu_milli = 1000;
        a->gpu_mem_mib = 16384;
        for (int d = 0; d < gpus; d++)
            a->devs[d] = (uint8_t)d;
        CHECK_INT(ocra_sched_claim(c, a, NULL), 0);
    } else {
        CHECK_INT(ocra_sched_place(c, OCRA_SCHED_BEST_FIT, &r, a, NULL), 0);
    }
    w->id = id;
    w->owner = owner;
    w->allocs = a;
    w->n_allocs = 1;
    w->end = end;
}

static struct ocra_sched_queued
job(const char *id, const char *owner, int prio, int64_t submit, int gpus, int64_t est)
{
    struct ocra_sched_queued q;

    memset(&q, 0, sizeof(q));
    q.id = id;
    q.owner = owner;
    q.priority = prio;
    q.submit = submit;
    q.req.gpus = gpus;
    q.estimate = est;
    return q;
}

static struct ocra_sched_queue_conf
conf_of(enum ocra_sched_qpolicy p)
{
    struct ocra_sched_queue_conf conf;

    memset(&conf, 0, sizeof(conf));
    conf.policy = p;
    conf.place = OCRA_SCHED_BEST_FIT;
    return conf;
}

/* The decision for queued[i]. */
static const struct ocra_sched_decision *
dec(const struct ocra_sched_plan *p, size_t i)
{
    for (size_t k = 0; k < p->n; k++)
        if (p->v[k].queued == i)
            return &p->v[k];
    CHECK(!"no decision");
    return &p->v[0];
}

static int
decide(const struct ocra_sched_cluster *c, const struct ocra_sched_queue_conf *conf, int64_t now,
       const struct ocra_sched_running *run_v, size_t n_run, const struct ocra_sched_queued *q,
       size_t n_q, struct ocra_sched_plan *plan)
{
    struct ocra_err err = {0};
    int rc = ocra_sched_queue_decide(c, conf, now, run_v, n_run, q, n_q, plan, NULL, &err);

    if (rc < 0)
        fprintf(stderr, "  decide: %s\n", err.msg);
    return rc;
}

static void
test_priority_orders_the_queue(void)
{
    struct ocra_sched_cluster *c = cluster(1);
    struct ocra_sched_running w;
    struct ocra_sched_alloc a;
    struct ocra_sched_queued q[3] = {job("a", NULL, 0, 1, 2, 0), job("b", NULL, 5, 2, 2, 0),
                                     job("c", NULL, 0, 0, 2, 0)};
    struct ocra_sched_queue_conf conf = conf_of(OCRA_SCHED_Q_FIFO);
    struct ocra_sched_plan p;

    run(c, &w, &a, "r", NULL, 8, 100, -1);
    ocra_sched_plan_init(&p);
    CHECK_INT(decide(c, &conf, 10, &w, 1, q, 3, &p), 0);
    CHECK_INT(p.n, 3);
    CHECK_INT(p.n_start, 0);
    CHECK_INT(p.v[0].queued, 1); /* b: priority 5 */
    CHECK_INT(p.v[1].queued, 2); /* c: submitted first */
    CHECK_INT(p.v[2].queued, 0);
    CHECK(p.v[0].head);
    CHECK_INT(p.v[0].wait, OCRA_SCHED_WAIT_ROOM);
    CHECK_INT(p.v[0].est_start, 100);
    CHECK_INT(p.reserve_at, 100);
    CHECK_INT(p.v[1].wait, OCRA_SCHED_WAIT_PRIORITY);
    CHECK(strstr(p.v[1].reason, "behind higher priority: b (priority 5)") != NULL);
    /* once the running one ends, all three start, highest priority first */
    ocra_sched_release(c, &a);
    CHECK_INT(decide(c, &conf, 100, NULL, 0, q, 3, &p), 0);
    CHECK_INT(p.n_start, 3);
    CHECK_INT(p.v[0].queued, 1);
    CHECK(p.v[0].start && p.v[2].start);
    CHECK_INT(p.n_allocs, 3);
    CHECK_INT(p.v[2].est_start, 100);
    CHECK_INT(p.reserve_at, -1);
    CHECK_INT(ocra_sched_free_share(c) == 1.0, 1); /* the caller's cluster is left alone */
    ocra_sched_plan_fini(&p);
    ocra_sched_cluster_free(c);
}

/* 8 GPUs, 6 held until 100; the head wants 8. */
static void
backfill_case(enum ocra_sched_qpolicy policy, struct ocra_sched_plan *p)
{
    struct ocra_sched_cluster *c = cluster(1);
    struct ocra_sched_running w;
    struct ocra_sched_alloc a;
    struct ocra_sched_queued q[4] = {
        job("head", NULL, 0, 0, 8, 50),
        job("short", NULL, 0, 1, 1, 30), /* ends at 40, before the head's 100 */
        job("long", NULL, 0, 2, 1, 200), /* would still hold a GPU at 100 */
        job("unknown", NULL, 0, 3, 1, 0),
    };
    struct ocra_sched_queue_conf conf = conf_of(policy);

    run(c, &w, &a, "r", NULL, 6, 100, -1);
    CHECK_INT(decide(c, &conf, 10, &w, 1, q, 4, p), 0);
    ocra_sched_cluster_free(c);
}

static void
test_fifo_is_strict(void)
{
    struct ocra_sched_plan p;

    ocra_sched_plan_init(&p);
    backfill_case(OCRA_SCHED_Q_FIFO, &p);
    CHECK_INT(p.n_start, 0);
    CHECK(dec(&p, 0)->head);
    CHECK_STR(dec(&p, 0)->reason, "no node has room: the best has 2 free GPUs of the 8 it needs");
    CHECK_INT(dec(&p, 1)->wait, OCRA_SCHED_WAIT_ORDER);
    CHECK_STR(dec(&p, 1)->reason, "behind head, which waits for room (strict order)");
    CHECK_INT(dec(&p, 0)->est_start, 100);
    CHECK_INT(dec(&p, 1)->est_start, 150); /* after the head's estimated end */
    ocra_sched_plan_fini(&p);
}

static void
test_backfill_starts_a_short_job_and_refuses_one_that_delays_the_head(void)
{
    struct ocra_sched_plan p;

    ocra_sched_plan_init(&p);
    backfill_case(OCRA_SCHED_Q_BACKFILL, &p);
    CHECK_INT(p.n_start, 1);
    CHECK(dec(&p, 1)->start);
    CHECK_INT(dec(&p, 1)->position, 2);
    CHECK_INT(dec(&p, 1)->n_allocs, 1);
    CHECK_INT(p.allocs[dec(&p, 1)->alloc].n_devs, 1);
    CHECK(!dec(&p, 2)->start);
    CHECK_INT(dec(&p, 2)->wait, OCRA_SCHED_WAIT_RESERVED);
    CHECK_STR(dec(&p, 2)->reason,
              "reserved for the head head: reserved to start in 1m30s, and this would delay it");
    CHECK_INT(dec(&p, 3)->wait, OCRA_SCHED_WAIT_RESERVED); /* no estimate: may run past 100 */
    CHECK_INT(p.reserve_at, 100);
    CHECK_INT(dec(&p, 0)->est_start, 100);
    ocra_sched_plan_fini(&p);
}

static void
test_backfill_past_the_head_on_devices_it_does_not_need(void)
{
    struct ocra_sched_cluster *c = cluster(2);
    struct ocra_sched_running w[2];
    struct ocra_sched_alloc a[2];
    struct ocra_sched_queued q[2] = {job("head", NULL, 0, 0, 8, 50),
                                     job("long", NULL, 0, 1, 2, 500)};
    struct ocra_sched_queue_conf conf = conf_of(OCRA_SCHED_Q_BACKFILL);
    struct ocra_sched_plan p;

    run(c, &w[0], &a[0], "r0", NULL, 8, 100, 0);  /* n0 full until 100: the head's */
    run(c, &w[1], &a[1], "r1", NULL, 4, 1000, 1); /* n1 half until 1000 */
    ocra_sched_plan_init(&p);
    CHECK_INT(decide(c, &conf, 0, w, 2, q, 2, &p), 0);
    CHECK(dec(&p, 0)->head);
    CHECK_INT(p.reserve_at, 100);
    CHECK(dec(&p, 1)->start); /* on n1: the head's reservation is n0 */
    CHECK_INT(p.allocs[dec(&p, 1)->alloc].node, 1);
    ocra_sched_plan_fini(&p);
    ocra_sched_cluster_free(c);
}

static void
test_backfill_places_around_the_reservation(void)
{
    struct ocra_sched_cluster *c = cluster(2);
    struct ocra_sched_running w[2];
    struct ocra_sched_alloc a[2];
    struct ocra_sched_queued q[2] = {job("head", NULL, 0, 0, 8, 50),
                                     job("long", NULL, 0, 1, 2, 500)};
    struct ocra_sched_queue_conf conf = conf_of(OCRA_SCHED_Q_BACKFILL);
    struct ocra_sched_plan p;

    run(c, &w[0], &a[0], "r0", NULL, 6, 100, 0);  /* n0: 2 free, all 8 at 100: the head's */
    run(c, &w[1], &a[1], "r1", NULL, 4, 1000, 1); /* n1: 4 free */
    ocra_sched_plan_init(&p);
    CHECK_INT(decide(c, &conf, 0, w, 2, q, 2, &p), 0);
    CHECK_INT(p.reserve_at, 100);
    /* best-fit would fill n0's two free GPUs, which the head needs at 100: n1 instead */
    CHECK(dec(&p, 1)->start);
    CHECK_INT(p.allocs[dec(&p, 1)->alloc].node, 1);
    ocra_sched_plan_fini(&p);
    ocra_sched_cluster_free(c);
}

static void
test_fair_share_across_two_owners(void)
{
    struct ocra_sched_cluster *c = cluster(1);
    struct ocra_sched_running w;
    struct ocra_sched_alloc a;
    struct ocra_sched_queued q[3] = {job("a1", "alice", 0, 0, 1, 500),
                                     job("a2", "alice", 0, 1, 1, 500),
                                     job("b1", "bob", 0, 2, 8, 50)};
    struct ocra_sched_queue_conf conf = conf_of(OCRA_SCHED_Q_BACKFILL);
    struct ocra_sched_plan p;

    run(c, &w, &a, "r", "alice", 6, 100, -1); /* alice holds 75 % */
    ocra_sched_plan_init(&p);
    /* submit order: alice's two fit now and start; bob's waits */
    CHECK_INT(decide(c, &conf, 10, &w, 1, q, 3, &p), 0);
    CHECK_INT(p.n_start, 2);
    CHECK(dec(&p, 2)->head);
    /* fair: bob (0 %) goes first; alice's would delay his reservation */
    conf = conf_of(OCRA_SCHED_Q_FAIR);
    CHECK_INT(decide(c, &conf, 10, &w, 1, q, 3, &p), 0);
    CHECK_INT(p.n_start, 0);
    CHECK_INT(p.v[0].queued, 2);
    CHECK(p.v[0].head);
    CHECK_INT(dec(&p, 0)->wait, OCRA_SCHED_WAIT_FAIR);
    CHECK(strstr(dec(&p, 0)->reason, "fair share: owner alice holds 75% of GPUs; b1 goes first "
                                     "(owner bob holds 0%)") != NULL);
    ocra_sched_plan_fini(&p);
    ocra_sched_cluster_free(c);
}

static void
test_fair_share_weights(void)
{
    struct ocra_sched_cluster *c = cluster(1);
    struct ocra_sched_running w[2];
    struct ocra_sched_alloc a[2];
    struct ocra_sched_queued q[2] = {job("a1", "alice", 0, 0, 1, 10),
                                     job("b1", "bob", 0, 1, 1, 10)};
    struct ocra_sched_weight wt = {"alice", 10};
    struct ocra_sched_queue_conf conf = conf_of(OCRA_SCHED_Q_FAIR);
    struct ocra_sched_plan p;

    run(c, &w[0], &a[0], "ra", "alice", 6, 100, -1); /* 75 % */
    run(c, &w[1], &a[1], "rb", "bob", 1, 100, -1);   /* 12.5 % */
    ocra_sched_plan_init(&p);
    CHECK_INT(decide(c, &conf, 10, w, 2, q, 2, &p), 0);
    CHECK(dec(&p, 1)->start); /* bob's share is the smaller: his one free GPU */
    CHECK(!dec(&p, 0)->start);
    conf.weights = &wt;
    conf.n_weights = 1; /* alice's 75 % / 10 is less than bob's 12.5 % */
    CHECK_INT(decide(c, &conf, 10, w, 2, q, 2, &p), 0);
    CHECK(dec(&p, 0)->start);
    CHECK(!dec(&p, 1)->start);
    ocra_sched_plan_fini(&p);
    ocra_sched_cluster_free(c);
}

static void
test_aging_raises_waiting_requests(void)
{
    struct ocra_sched_cluster *c = cluster(1);
    struct ocra_sched_running w;
    struct ocra_sched_alloc a;
    struct ocra_sched_queued q[2] = {job("old", NULL, 0, 0, 8, 0), job("new", NULL, 2, 200, 8, 0)};
    struct ocra_sched_queue_conf conf = conf_of(OCRA_SCHED_Q_BACKFILL);
    struct ocra_sched_plan p;

    run(c, &w, &a, "r", NULL, 8, 0, -1);
    ocra_sched_plan_init(&p);
    CHECK_INT(decide(c, &conf, 300, &w, 1, q, 2, &p), 0);
    CHECK_INT(p.v[0].queued, 1); /* without aging: priority 2 first */
    CHECK_INT(p.reserve_at, -1); /* the running one has no expected end */
    CHECK_INT(p.v[0].est_start, -1);
    conf.aging_s = 60; /* old: 0 + 300/60 = 5; new: 2 + 100/60 = 3 */
    CHECK_INT(decide(c, &conf, 300, &w, 1, q, 2, &p), 0);
    CHECK_INT(p.v[0].queued, 0);
    CHECK_INT(p.v[0].eff_priority, 5);
    CHECK_INT(p.v[1].eff_priority, 3);
    ocra_sched_plan_fini(&p);
    ocra_sched_cluster_free(c);
}

static void
test_sjf_starts_the_shortest_first(void)
{
    struct ocra_sched_cluster *c = cluster(1);
    struct ocra_sched_queued q[3] = {job("long", NULL, 0, 0, 8, 1000),
                                     job("short", NULL, 0, 1, 8, 10),
                                     job("unknown", NULL, 0, 2, 8, 0)};
    struct ocra_sched_queue_conf conf = conf_of(OCRA_SCHED_Q_SJF);
    struct ocra_sched_plan p;

    ocra_sched_plan_init(&p);
    CHECK_INT(decide(c, &conf, 5, NULL, 0, q, 3, &p), 0);
    CHECK(dec(&p, 1)->start);
    CHECK(dec(&p, 0)->head);
    CHECK_INT(dec(&p, 0)->est_start, 15);
    CHECK_INT(dec(&p, 2)->position, 3); /* unknown estimates last */
    CHECK_INT(dec(&p, 2)->est_start, 1015);
    ocra_sched_plan_fini(&p);
    ocra_sched_cluster_free(c);
}

static void
test_gangs_take_whole_nodes(void)
{
    struct ocra_sched_cluster *c = cluster(3);
    struct ocra_sched_running w[2];
    struct ocra_sched_alloc a[2];
    struct ocra_sched_queued q[2] = {job("g12", NULL, 0, 0, 12, 0), job("g30", NULL, 0, 1, 30, 0)};
    struct ocra_sched_queue_conf conf = conf_of(OCRA_SCHED_Q_BACKFILL);
    struct ocra_err err = {0};
    struct ocra_sched_plan p;
    size_t bad = 99;
    char text[4200];

    ocra_sched_plan_init(&p);
    CHECK_INT(decide(c, &conf, 0, NULL, 0, q, 1, &p), 0);
    CHECK(dec(&p, 0)->start);
    CHECK_INT(dec(&p, 0)->n_allocs, 2);
    CHECK_INT(p.allocs[0].node, 0);
    CHECK_INT(p.allocs[0].n_devs, 8);
    CHECK_INT(p.allocs[1].node, 1);
    CHECK_INT(p.allocs[1].n_devs, 8);
    /* 30 GPUs: more than the 24 of all nodes */
    CHECK_INT(ocra_sched_queue_decide(c, &conf, 0, NULL, 0, q, 2, &p, &bad, &err), -1);
    CHECK_INT(err.code, ENOSPC);
    CHECK_INT(bad, 1);
    CHECK(strstr(err.msg, "a gang of 30 GPUs takes whole nodes, and the 3 nodes that pass its "
                          "filters have 24 GPUs in all") != NULL);
    CHECK(strstr(ocra_err_text(&err, text, sizeof(text)), "g30") != NULL);
    /* one GPU used on n0 and on n1: one whole node is not enough */
    run(c, &w[0], &a[0], "r0", NULL, 1, 0, 0);
    run(c, &w[1], &a[1], "r1", NULL, 1, 0, 1);
    CHECK_INT(decide(c, &conf, 0, w, 2, q, 1, &p), 0);
    CHECK(!dec(&p, 0)->start);
    CHECK_STR(dec(&p, 0)->reason,
              "no room for a gang of 12 GPUs on whole nodes: 1 free nodes have 8 GPUs");
    ocra_sched_plan_fini(&p);
    ocra_sched_cluster_free(c);
}

/* Nodes n0.. with gpus[i] T4 GPUs and the label "topology=<group[i]>" (none when NULL). */
static struct ocra_sched_cluster *
cluster_of(size_t n, const int *gpus, const char *const *group)
{
    struct ocra_sched_cluster *c = ocra_sched_cluster_new();
    struct ocra_sched_node node;

    for (size_t i = 0; i < n; i++) {
        memset(&node, 0, sizeof(node));
        (void)snprintf(node.name, sizeof(node.name), "n%zu", i);
        (void)snprintf(node.gpu_model, sizeof(node.gpu_model), "T4");
        node.gpu_count = gpus[i];
        node.gpu_mem_mib = 16384;
        node.cpu_milli = 64000;
        node.ram_mib = 262144;
        if (group && group[i]) {
            (void)snprintf(node.labels[0], sizeof(node.labels[0]), "topology=%s", group[i]);
            node.n_labels = 1;
        }
        CHECK_INT(ocra_sched_cluster_add(c, &node, NULL), 0);
    }
    return c;
}

static void
test_gang_takes_the_fewest_nodes(void)
{
    const int gpus[4] = {4, 4, 8, 8};
    struct ocra_sched_cluster *c = cluster_of(4, gpus, NULL);
    struct ocra_sched_queued q = job("g16", NULL, 0, 0, 16, 0);
    struct ocra_sched_queue_conf conf = conf_of(OCRA_SCHED_Q_BACKFILL);
    struct ocra_sched_plan p;

    ocra_sched_plan_init(&p);
    CHECK_INT(decide(c, &conf, 0, NULL, 0, &q, 1, &p), 0);
    CHECK(dec(&p, 0)->start);
    CHECK_INT(dec(&p, 0)->n_allocs, 2); /* 8 + 8, not 4 + 4 + 8 in node order */
    CHECK_INT(p.allocs[0].node, 2);
    CHECK_INT(p.allocs[1].node, 3);
    q.req.gpus = 20; /* 8 + 8 + 4: three nodes, the two large ones among them */
    CHECK_INT(decide(c, &conf, 0, NULL, 0, &q, 1, &p), 0);
    CHECK_INT(dec(&p, 0)->n_allocs, 3);
    CHECK_INT(p.allocs[0].node, 0);
    CHECK_INT(p.allocs[1].node, 2);
    CHECK_INT(p.allocs[2].node, 3);
    ocra_sched_plan_fini(&p);
    ocra_sched_cluster_free(c);
}

static void
test_gang_prefers_one_topology_group(void)
{
    const int gpus[5] = {8, 8, 8, 8, 8};
    const char *const group[5] = {"rack-b", "rack-a", "rack-b", NULL, "rack-c"};
    struct ocra_sched_cluster *c = cluster_of(5, gpus, group);
    struct ocra_sched_queued q = job("g16", NULL, 0, 0, 16, 0);
    struct ocra_sched_queue_conf conf = conf_of(OCRA_SCHED_Q_BACKFILL);
    struct ocra_sched_plan p;

    ocra_sched_plan_init(&p);
    CHECK_INT(decide(c, &conf, 0, NULL, 0, &q, 1, &p), 0);
    CHECK_INT(dec(&p, 0)->n_allocs, 2); /* rack-b's two nodes, not n0 and n1 in node order */
    CHECK_INT(p.allocs[0].node, 0);
    CHECK_INT(p.allocs[1].node, 2);
    q.req.gpus = 24; /* no group has three nodes: the fewest across groups */
    CHECK_INT(decide(c, &conf, 0, NULL, 0, &q, 1, &p), 0);
    CHECK_INT(dec(&p, 0)->n_allocs, 3);
    CHECK_INT(p.allocs[0].node, 0);
    CHECK_INT(p.allocs[1].node, 1);
    CHECK_INT(p.allocs[2].node, 2);
    ocra_sched_plan_fini(&p);
    ocra_sched_cluster_free(c);
}

/*
 * Two gangs on three nodes, one node busy until 100: the head gang (all three nodes) holds
 * nothing while it waits, and the second gang, which fits now on the two free nodes, starts
 * only when it ends before the head's reservation; otherwise it waits too, so the head is
 * never starved by it and neither holds part of what the other needs.
 */
static void
test_two_gangs_do_not_deadlock(void)
{
    struct ocra_sched_cluster *c = cluster(3);
    struct ocra_sched_running w;
    struct ocra_sched_alloc a;
    struct ocra_sched_queued q[2] = {job("g24", NULL, 0, 0, 24, 50),
                                     job("g16", NULL, 0, 1, 16, 500)};
    struct ocra_sched_queue_conf conf = conf_of(OCRA_SCHED_Q_BACKFILL);
    struct ocra_sched_plan p;

    run(c, &w, &a, "r", NULL, 8, 100, 0);
    ocra_sched_plan_init(&p);
    CHECK_INT(decide(c, &conf, 0, &w, 1, q, 2, &p), 0);
    CHECK_INT(p.n_start, 0);
    CHECK_INT(p.n_allocs, 0); /* no partial hold */
    CHECK(dec(&p, 0)->head);
    CHECK_INT(dec(&p, 0)->wait, OCRA_SCHED_WAIT_ROOM);
    CHECK_INT(dec(&p, 0)->est_start, 100);
    CHECK_INT(dec(&p, 1)->wait, OCRA_SCHED_WAIT_RESERVED);
    q[1].estimate = 60; /* ends by 100: it backfills on n1 and n2 */
    CHECK_INT(decide(c, &conf, 0, &w, 1, q, 2, &p), 0);
    CHECK_INT(p.n_start, 1);
    CHECK(dec(&p, 1)->start);
    CHECK_INT(dec(&p, 1)->n_allocs, 2);
    CHECK(!dec(&p, 0)->start);
    /* the busy node free: the head gang starts on all three, the other waits whole */
    ocra_sched_release(c, &a);
    q[1].estimate = 500;
    CHECK_INT(decide(c, &conf, 100, NULL, 0, q, 2, &p), 0);
    CHECK_INT(p.n_start, 1);
    CHECK(dec(&p, 0)->start);
    CHECK_INT(dec(&p, 0)->n_allocs, 3);
    CHECK(!dec(&p, 1)->start);
    CHECK_INT(p.n_allocs, 3);
    ocra_sched_plan_fini(&p);
    ocra_sched_cluster_free(c);
}

static void
test_never_fits_names_the_filter(void)
{
    struct ocra_sched_cluster *c = cluster(2);
    struct ocra_sched_queued q[2] = {job("ok", NULL, 0, 0, 1, 0), job("a100", NULL, 0, 1, 1, 0)};
    struct ocra_sched_queue_conf conf = conf_of(OCRA_SCHED_Q_FIFO);
    struct ocra_err err = {0};
    struct ocra_sched_plan p;
    size_t bad = 99;
    char text[4200];

    q[1].req.gpu_model = "A100";
    ocra_sched_plan_init(&p);
    CHECK_INT(ocra_sched_queue_decide(c, &conf, 0, NULL, 0, q, 2, &p, &bad, &err), -1);
    CHECK_INT(err.code, ENOSPC);
    CHECK_INT(bad, 1);
    CHECK(strstr(ocra_err_text(&err, text, sizeof(text)),
                 "no node can ever host it: none of 2 has GPU model \"A100\"") != NULL);
    CHECK(strstr(ocra_err_text(&err, text, sizeof(text)), "request a100") != NULL);
    q[1].req.gpus = 40; /* a gang no node's model admits: the same filter named */
    CHECK_INT(ocra_sched_queue_decide(c, &conf, 0, NULL, 0, q, 2, &p, &bad, &err), -1);
    CHECK(strstr(ocra_err_text(&err, text, sizeof(text)), "GPU model \"A100\"") != NULL);
    ocra_sched_plan_fini(&p);
    ocra_sched_cluster_free(c);
}

static void
test_empty_queue_and_kept_copies(void)
{
    struct ocra_sched_cluster *c = cluster(2), *other = cluster(3);
    struct ocra_sched_queue *kept = ocra_sched_queue_new(c);
    struct ocra_sched_queued q = job("a", NULL, 0, 0, 8, 10);
    struct ocra_sched_queue_conf conf = conf_of(OCRA_SCHED_Q_BACKFILL);
    struct ocra_sched_running w;
    struct ocra_sched_alloc a;
    struct ocra_err err = {0};
    struct ocra_sched_plan p;

    ocra_sched_plan_init(&p);
    CHECK_INT(ocra_sched_queue_decide_with(kept, c, &conf, 0, NULL, 0, NULL, 0, &p, NULL, &err), 0);
    CHECK_INT(p.n, 0);
    /* the kept copies follow the cluster's changes from one decision to the next */
    run(c, &w, &a, "r", NULL, 8, 50, 0);
    CHECK_INT(ocra_sched_queue_decide_with(kept, c, &conf, 0, &w, 1, &q, 1, &p, NULL, &err), 0);
    CHECK_INT(p.allocs[0].node, 1);
    run(c, &w, &a, "r", NULL, 8, 50, 1);
    CHECK_INT(ocra_sched_queue_decide_with(kept, c, &conf, 0, &w, 1, &q, 1, &p, NULL, &err), 0);
    CHECK_INT(p.n_start, 0);
    ocra_sched_release(c, &a);
    CHECK_INT(ocra_sched_queue_decide_with(kept, c, &conf, 0, NULL, 0, &q, 1, &p, NULL, &err), 0);
    CHECK_INT(p.allocs[0].node, 1);
    CHECK_INT(ocra_sched_queue_decide_with(kept, other, &conf, 0, NULL, 0, &q, 1, &p, NULL, &err),
              -1);
    CHECK_INT(err.code, EINVAL);
    ocra_sched_plan_fini(&p);
    ocra_sched_queue_free(kept);
    ocra_sched_cluster_free(c);
    ocra_sched_cluster_free(other);
}

static void
test_names_parse(void)
{
    enum ocra_sched_qpolicy p;

    for (int i = 0; i < OCRA_SCHED_Q_N_POLICIES; i++) {
        CHECK_INT(ocra_sched_qpolicy_parse(ocra_sched_qpolicy_name((enum ocra_sched_qpolicy)i), &p),
                  0);
        CHECK_INT(p, i);
    }
    CHECK_INT(ocra_sched_qpolicy_parse("lifo", &p), -1);
    CHECK_STR(ocra_sched_wait_name(OCRA_SCHED_WAIT_RESERVED), "reserved");
}

/*
 * One node of 8: a (4 GPUs, priority 0, started at 0), b (2, priority 0, started at 50), both
 * preemptible, and c (2, priority 5, not preemptible). The node is full.
 */
static void
preempt_setup(struct ocra_sched_cluster *c, struct ocra_sched_running *w,
              struct ocra_sched_alloc *a)
{
    run(c, &w[0], &a[0], "a", "o", 4, 0, -1);
    run(c, &w[1], &a[1], "b", "o", 2, 0, -1);
    run(c, &w[2], &a[2], "c", "o", 2, 0, -1);
    w[0].preemptible = w[1].preemptible = true;
    w[0].start = 0;
    w[1].start = 50;
    w[2].priority = 5;
}

static void
test_preempt_chooses_the_fewest_victims(void)
{
    struct ocra_sched_cluster *c = cluster(1);
    struct ocra_sched_running w[3];
    struct ocra_sched_alloc a[3];
    struct ocra_sched_queued q = job("q", "p", 10, 90, 4, 0);
    size_t v[3];

    preempt_setup(c, w, a);
    /* b is taken first (most recent) but is not enough; a is; then b is not needed after all */
    CHECK_INT(ocra_sched_preempt_choose(c, OCRA_SCHED_BEST_FIT, 100, 0, w, 3, &q, v), 1);
    CHECK_INT((int)v[0], 0);
    /* 2 GPUs: the most recently started, b, alone */
    q.req.gpus = 2;
    CHECK_INT(ocra_sched_preempt_choose(c, OCRA_SCHED_BEST_FIT, 100, 0, w, 3, &q, v), 1);
    CHECK_INT((int)v[0], 1);
    /* 8 GPUs would need c, which is not preemptible: nothing is preempted in vain */
    q.req.gpus = 8;
    CHECK_INT(ocra_sched_preempt_choose(c, OCRA_SCHED_BEST_FIT, 100, 0, w, 3, &q, v), 0);
    /* 6 GPUs: both preemptible ones */
    q.req.gpus = 6;
    CHECK_INT(ocra_sched_preempt_choose(c, OCRA_SCHED_BEST_FIT, 100, 0, w, 3, &q, v), 2);
    /* the same priority never preempts */
    q.priority = 0;
    CHECK_INT(ocra_sched_preempt_choose(c, OCRA_SCHED_BEST_FIT, 100, 0, w, 3, &q, v), 0);
    /* c's priority 5 is above a and b's: a request of 3 may preempt them, never c */
    q.priority = 3;
    q.req.gpus = 2;
    CHECK_INT(ocra_sched_preempt_choose(c, OCRA_SCHED_BEST_FIT, 100, 0, w, 3, &q, v), 1);
    CHECK_INT((int)v[0], 1);
    ocra_sched_cluster_free(c);
}

static void
test_preempt_minimum_run_time_and_room(void)
{
    struct ocra_sched_cluster *c = cluster(1);
    struct ocra_sched_running w[3];
    struct ocra_sched_alloc a[3];
    struct ocra_sched_queued q = job("q", "p", 10, 90, 2, 0);
    size_t v[3];

    preempt_setup(c, w, a);
    /* b ran 50 s of the 60 required: a is taken instead */
    CHECK_INT(ocra_sched_preempt_choose(c, OCRA_SCHED_BEST_FIT, 100, 60, w, 3, &q, v), 1);
    CHECK_INT((int)v[0], 0);
    /* neither ran 200 s: nothing */
    CHECK_INT(ocra_sched_preempt_choose(c, OCRA_SCHED_BEST_FIT, 100, 200, w, 3, &q, v), 0);
    /* room already: nothing to preempt */
    ocra_sched_release(c, &a[1]);
    CHECK_INT(ocra_sched_preempt_choose(c, OCRA_SCHED_BEST_FIT, 100, 0, w, 3, &q, v), 0);
    ocra_sched_cluster_free(c);
}

/* A gang of 12 GPUs on two full 8-GPU nodes needs both nodes' workloads stopped. */
static void
test_preempt_for_a_gang(void)
{
    struct ocra_sched_cluster *c = cluster(2);
    struct ocra_sched_running w[2];
    struct ocra_sched_alloc a[2];
    struct ocra_sched_queued q = job("g", "p", 5, 10, 12, 0);
    size_t v[2];

    run(c, &w[0], &a[0], "a", "o", 8, 0, 0);
    run(c, &w[1], &a[1], "b", "o", 8, 0, 1);
    w[0].preemptible = w[1].preemptible = true;
    w[1].start = 5;
    CHECK_INT(ocra_sched_preempt_choose(c, OCRA_SCHED_BEST_FIT, 100, 0, w, 2, &q, v), 2);
    CHECK_INT((int)v[0], 1); /* the most recent first */
    CHECK_INT((int)v[1], 0);
    w[0].preemptible = false;
    CHECK_INT(ocra_sched_preempt_choose(c, OCRA_SCHED_BEST_FIT, 100, 0, w, 2, &q, v), 0);
    ocra_sched_cluster_free(c);
}

OCRA_TEST_MAIN(
    OCRA_TEST(test_priority_orders_the_queue), OCRA_TEST(test_fifo_is_strict),
    OCRA_TEST(test_backfill_starts_a_short_job_and_refuses_one_that_delays_the_head),
    OCRA_TEST(test_backfill_past_the_head_on_devices_it_does_not_need),
    OCRA_TEST(test_backfill_places_around_the_reservation),
    OCRA_TEST(test_fair_share_across_two_owners), OCRA_TEST(test_fair_share_weights),
    OCRA_TEST(test_aging_raises_waiting_requests), OCRA_TEST(test_sjf_starts_the_shortest_first),
    OCRA_TEST(test_gangs_take_whole_nodes), OCRA_TEST(test_gang_takes_the_fewest_nodes),
    OCRA_TEST(test_gang_prefers_one_topology_group), OCRA_TEST(test_two_gangs_do_not_deadlock),
    OCRA_TEST(test_never_fits_names_the_filter), OCRA_TEST(test_empty_queue_and_kept_copies),
    OCRA_TEST(test_names_parse), OCRA_TEST(test_preempt_chooses_the_fewest_victims),
    OCRA_TEST(test_preempt_minimum_run_time_and_room), OCRA_TEST(test_preempt_for_a_gang))
