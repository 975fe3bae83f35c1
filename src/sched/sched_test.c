/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sched_test.c: placement (gang all-or-nothing, fragmentation-aware choices against best-fit,
 * driver, model and label filters, shared devices and their accounting, release and re-use,
 * clear refusals), the openb CSV parser against hostile lines, and trace replays over the
 * trimmed fixtures of tests/data/sched with exact counts (first-fit's were reproduced by an
 * independent Python replica of the policy).
 */
#include "sched/sched.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ocra_test.h"

static void
node_init(struct ocra_sched_node *n, const char *name, const char *model, int gpus)
{
    memset(n, 0, sizeof(*n));
    (void)snprintf(n->name, sizeof(n->name), "%s", name);
    (void)snprintf(n->gpu_model, sizeof(n->gpu_model), "%s", model);
    n->gpu_count = gpus;
    n->gpu_mem_mib = 16384;
    n->cpu_milli = 64000;
    n->ram_mib = 262144;
    n->driver = 535104005;
    n->compute_cap = 75;
}

/* A cluster of nodes named n0.. with the given models and GPU counts. */
static struct ocra_sched_cluster *
cluster(const char *const *models, const int *gpus, size_t n)
{
    struct ocra_sched_cluster *c = ocra_sched_cluster_new();
    struct ocra_sched_node node;
    char name[32];

    for (size_t i = 0; i < n; i++) {
        (void)snprintf(name, sizeof(name), "n%zu", i);
        node_init(&node, name, models[i], gpus[i]);
        CHECK_INT(ocra_sched_cluster_add(c, &node, NULL), 0);
    }
    return c;
}

static int
place(struct ocra_sched_cluster *c, enum ocra_sched_policy p, int gpus, int milli,
      struct ocra_sched_alloc *a, struct ocra_err *err)
{
    struct ocra_sched_req r = {.gpus = gpus, .gpu_milli = milli, .cpu_milli = 1000};

    return ocra_sched_place(c, p, &r, a, err);
}

static void
test_gang_is_all_or_nothing_on_one_node(void)
{
    static const char *const models[] = {"T4", "T4"};
    static const int gpus[] = {4, 4};
    struct ocra_sched_cluster *c = cluster(models, gpus, 2);
    struct ocra_sched_alloc a, b, d;
    struct ocra_err err = {0};

    CHECK_INT(place(c, OCRA_SCHED_FIRST_FIT, 2, 0, &a, NULL), 0); /* n0: 2 of 4 left */
    CHECK_INT(place(c, OCRA_SCHED_BEST_FIT, 1, 0, &b, NULL), 0);  /* best fit: n0 again */
    CHECK_INT(b.node, 0);
    CHECK_INT(place(c, OCRA_SCHED_FIRST_FIT, 2, 0, &d, NULL), 0); /* n0 has 1: goes to n1 */
    CHECK_INT(d.node, 1);
    CHECK_INT(d.n_devs, 2);
    CHECK_INT(d.devs[0], 0);
    CHECK_INT(d.devs[1], 1);
    /* 3 GPUs are free (n0: 1, n1: 2) but no node has 3: refused, nothing taken */
    CHECK_INT(place(c, OCRA_SCHED_BEST_FIT, 3, 0, &d, &err), -1);
    CHECK_INT(err.code, EAGAIN);
    CHECK_STR(err.msg, "no node has room now (2 of 2 could host it when free)");
    CHECK_INT(ocra_sched_cluster_node(c, 0)->gpu_free_milli[3], 1000);
    CHECK_INT(ocra_sched_cluster_node(c, 1)->gpu_free_milli[2], 1000);
    CHECK_INT(ocra_sched_cluster_node(c, 1)->gpu_free_milli[3], 1000);
    CHECK_INT(ocra_sched_cluster_node(c, 1)->cpu_free, 63000);
    ocra_sched_cluster_free(c);
}

/*
 * The FGD paper's point: n0 has a whole GPU and one with 700 milli free, n1 one whole GPU.
 * The typical pod takes one whole GPU. A 300-milli share: best-fit fills the node with the
 * least GPU left (n1), breaking its whole GPU; fgd puts it on n0's partly used GPU, which no
 * typical pod could use anyway (fragmentation falls by 300 instead of rising by 700).
 */
static void
test_fgd_and_best_fit_choose_differently(void)
{
    static const char *const models[] = {"T4", "T4"};
    static const int gpus[] = {2, 1};
    struct ocra_sched_req typical = {.gpus = 1, .gpu_milli = 1000, .cpu_milli = 1000};
    static const enum ocra_sched_policy policies[] = {OCRA_SCHED_BEST_FIT, OCRA_SCHED_FGD};

    for (size_t i = 0; i < OCRA_ARRAY_LEN(policies); i++) {
        struct ocra_sched_cluster *c = cluster(models, gpus, 2);
        struct ocra_sched_alloc pre, a;
        bool fgd = policies[i] == OCRA_SCHED_FGD;
        int64_t frag, w;

        ocra_sched_typical_add(c, &typical, 10);
        CHECK_INT(place(c, OCRA_SCHED_FIRST_FIT, 1, 300, &pre, NULL), 0);
        CHECK_INT(pre.node, 0);
        CHECK_INT(pre.devs[0], 0);
        ocra_sched_frag(c, &frag, &w);
        CHECK_INT(frag, 7000); /* n0's 700 free milli, weight 10 */
        CHECK_INT(w, 10);
        CHECK_INT(place(c, policies[i], 1, 300, &a, NULL), 0);
        CHECK_INT(a.node, fgd ? 0 : 1);
        CHECK_INT(a.devs[0], 0);
        CHECK_INT(ocra_sched_cluster_node(c, a.node)->gpu_free_milli[0], fgd ? 400 : 700);
        ocra_sched_frag(c, &frag, &w);
        CHECK_INT(frag, fgd ? 4000 : 14000);
        ocra_sched_cluster_free(c);
    }
}

/*
 * Within a node too. dev0 has 600 milli free, dev1 is whole; the typical pod takes 500 milli.
 * A 200-milli share: best-fit takes the tightest device (dev0, leaving 400: no longer enough
 * for a typical pod); fgd takes dev1 (800 left) and keeps both devices usable.
 */
static void
test_fgd_picks_the_device_within_a_node(void)
{
    static const char *const models[] = {"T4"};
    static const int gpus[] = {2};
    struct ocra_sched_req typical = {.gpus = 1, .gpu_milli = 500};
    struct ocra_sched_alloc x, a;

    for (int fgd = 0; fgd < 2; fgd++) {
        struct ocra_sched_cluster *c = cluster(models, gpus, 1);
        int64_t frag, w;

        ocra_sched_typical_add(c, &typical, 1);
        CHECK_INT(place(c, OCRA_SCHED_FIRST_FIT, 1, 400, &x, NULL), 0);
        CHECK_INT(place(c, fgd ? OCRA_SCHED_FGD : OCRA_SCHED_BEST_FIT, 1, 200, &a, NULL), 0);
        CHECK_INT(a.devs[0], fgd ? 1 : 0);
        CHECK_INT(ocra_sched_cluster_node(c, 0)->gpu_free_milli[0], fgd ? 600 : 400);
        CHECK_INT(ocra_sched_cluster_node(c, 0)->gpu_free_milli[1], fgd ? 800 : 1000);
        ocra_sched_frag(c, &frag, &w);
        CHECK_INT(frag, fgd ? 0 : 400);
        ocra_sched_cluster_free(c);
    }
}

/*
 * fgd scores placements on the paper's simulator's scale, a whole number (floor(100 *
 * sigmoid(fall of fragmentation / 1000 W))), and breaks ties by node order as its scheduler
 * does, not by best-fit. One whole GPU on either of two nodes leaves the typical whole-GPU
 * request runnable on both (score 50 each); best-fit takes n1, whose CPU is partly used, fgd
 * the first node.
 */
static void
test_fgd_ties_go_to_the_first_node(void)
{
    static const char *const models[] = {"T4", "T4"};
    static const int gpus[] = {2, 2};
    struct ocra_sched_req typical = {.gpus = 1, .gpu_milli = 1000, .cpu_milli = 1000};
    struct ocra_sched_alloc cpu = {.node = 1, .cpu_milli = 8000}, a;

    for (int fgd = 0; fgd < 2; fgd++) {
        struct ocra_sched_cluster *c = cluster(models, gpus, 2);

        ocra_sched_typical_add(c, &typical, 1);
        CHECK_INT(ocra_sched_claim(c, &cpu, NULL), 0);
        CHECK_INT(place(c, fgd ? OCRA_SCHED_FGD : OCRA_SCHED_BEST_FIT, 1, 0, &a, NULL), 0);
        CHECK_INT(a.node, fgd ? 0 : 1);
        ocra_sched_cluster_free(c);
    }
}

/*
 * The typical workload as the simulator builds it: shapes by GPUs, share and CPU; a request
 * without GPUs counts every free GPU as unusable; the most frequent shapes that make up 95 %
 * of the requests (here 90 + 6 of 100: the rarest shape is left out).
 */
static void
test_typical_workload_and_its_measure(void)
{
    static const char *const models[] = {"T4"};
    static const int gpus[] = {2};
    struct ocra_sched_cluster *c = cluster(models, gpus, 1);
    struct ocra_sched_req whole = {.gpus = 1, .cpu_milli = 1000}, cpu_only = {.cpu_milli = 1000},
                          rare = {.gpus = 2, .cpu_milli = 1000};
    int64_t frag, w;

    ocra_sched_typical_add(c, &whole, 90);
    ocra_sched_typical_add(c, &cpu_only, 6);
    ocra_sched_typical_add(c, &rare, 4);
    ocra_sched_frag(c, &frag, &w);
    CHECK_INT(w, 96);
    CHECK_INT(frag, 6 * 2000); /* whole GPUs run on the empty node; CPU-only use none */
    whole.cpu_milli = 2000;    /* another CPU: another shape */
    ocra_sched_typical_add(c, &whole, 100);
    ocra_sched_frag(c, &frag, &w);
    CHECK_INT(w, 190);
    ocra_sched_cluster_free(c);
}

static void
test_driver_too_old_is_refused(void)
{
    static const char *const models[] = {"A10", "A10"};
    static const int gpus[] = {1, 1};
    struct ocra_sched_cluster *c = ocra_sched_cluster_new();
    struct ocra_sched_req r = {.gpus = 1};
    struct ocra_sched_node n;
    struct ocra_sched_alloc a;
    struct ocra_err err = {0};

    for (int i = 0; i < 2; i++) {
        node_init(&n, i ? "new" : "old", models[i], gpus[i]);
        if (i == 0)
            CHECK_INT(ocra_sched_driver_parse("470.57.02", &n.driver, NULL), 0);
        CHECK_INT(ocra_sched_cluster_add(c, &n, NULL), 0);
    }
    CHECK_INT(ocra_sched_driver_parse("550.54.14", &r.min_driver, NULL), 0);
    CHECK_INT(ocra_sched_place(c, OCRA_SCHED_FIRST_FIT, &r, &a, &err), -1);
    CHECK_INT(err.code, ENOSPC);
    CHECK_STR(err.msg, "no node can ever host it: none of 2 has NVIDIA driver >= 550.54.14 "
                       "(newest 535.104.05)");
    CHECK_INT(ocra_sched_driver_parse("535.104.05", &r.min_driver, NULL), 0);
    CHECK_INT(ocra_sched_place(c, OCRA_SCHED_FIRST_FIT, &r, &a, NULL), 0);
    CHECK_INT(a.node, 1); /* n0's 470 driver is too old for CUDA 12 */
    r.min_compute_cap = 80;
    CHECK_INT(ocra_sched_place(c, OCRA_SCHED_FIRST_FIT, &r, &a, &err), -1);
    CHECK_STR(err.msg, "no node can ever host it: none of the 1 of 2 nodes that pass the "
                       "earlier filters has compute capability >= 8.0 (highest 7.5)");
    ocra_sched_cluster_free(c);
}

static void
test_driver_versions_parse(void)
{
    uint32_t v = 0;
    struct ocra_err err = {0};

    CHECK_INT(ocra_sched_driver_parse("535.104.05", &v, NULL), 0);
    CHECK_INT(v, 535104005);
    CHECK_INT(ocra_sched_driver_parse("550", &v, NULL), 0);
    CHECK_INT(v, 550000000);
    CHECK(ocra_sched_driver_parse("535.104.05", &v, NULL) == 0 && v > 525060013);
    static const char *const bad[] = {"",        ".",  "535.",   "a.b",  "535.1000",
                                      "1.2.3.4", "-1", "535..1", "99999"};
    for (size_t i = 0; i < OCRA_ARRAY_LEN(bad); i++) {
        CHECK_INT(ocra_sched_driver_parse(bad[i], &v, &err), -1);
        CHECK_INT(err.code, EINVAL);
    }
}

static void
test_gpu_model_constraint(void)
{
    static const char *const models[] = {"T4", "A10", "V100M32"};
    static const int gpus[] = {2, 2, 2};
    struct ocra_sched_cluster *c = cluster(models, gpus, 3);
    struct ocra_sched_req r = {.gpus = 1, .gpu_model = "a10"};
    struct ocra_sched_alloc a;
    struct ocra_err err = {0};

    CHECK_INT(ocra_sched_place(c, OCRA_SCHED_FIRST_FIT, &r, &a, NULL), 0);
    CHECK_INT(a.node, 1);
    r.gpu_model = "P100|V100M32";
    CHECK_INT(ocra_sched_place(c, OCRA_SCHED_BEST_FIT, &r, &a, NULL), 0);
    CHECK_INT(a.node, 2);
    r.gpu_model = "H100";
    CHECK_INT(ocra_sched_place(c, OCRA_SCHED_FGD, &r, &a, &err), -1);
    CHECK_INT(err.code, ENOSPC);
    CHECK_STR(err.msg, "no node can ever host it: none of 3 has GPU model \"H100\"");
    r.gpu_model = NULL; /* a CPU-only request ignores GPU filters */
    r.gpus = 0;
    r.min_driver = 999000000;
    CHECK_INT(ocra_sched_place(c, OCRA_SCHED_FIRST_FIT, &r, &a, NULL), 0);
    CHECK_INT(a.n_devs, 0);
    ocra_sched_cluster_free(c);
}

static void
test_labels_filter(void)
{
    static const char *const models[] = {"T4", "T4"};
    static const int gpus[] = {1, 1};
    struct ocra_sched_cluster *c = ocra_sched_cluster_new();
    const char *const labels[] = {"zone=b", "tier=gold"};
    struct ocra_sched_req r = {.gpus = 1, .labels = labels, .n_labels = 2};
    struct ocra_sched_node n;
    struct ocra_sched_alloc a;
    struct ocra_err err = {0};

    for (int i = 0; i < 2; i++) {
        node_init(&n, i ? "gold" : "plain", models[i], gpus[i]);
        if (i == 1) {
            memcpy(n.labels[0], "tier=gold", 10);
            memcpy(n.labels[1], "zone=b", 7);
            n.n_labels = 2;
        }
        CHECK_INT(ocra_sched_cluster_add(c, &n, NULL), 0);
    }
    CHECK_INT(ocra_sched_place(c, OCRA_SCHED_FIRST_FIT, &r, &a, NULL), 0);
    CHECK_INT(a.node, 1);
    r.n_labels = 1;
    r.labels = (const char *const[]){"zone=c"};
    CHECK_INT(ocra_sched_place(c, OCRA_SCHED_FIRST_FIT, &r, &a, &err), -1);
    CHECK_STR(err.msg, "no node can ever host it: none of 2 has every requested label");
    ocra_sched_cluster_free(c);
}

/* Three 300-milli shares with 4 GiB each share one device; its accounting adds up. */
static void
test_shares_of_one_device_and_their_accounting(void)
{
    static const char *const models[] = {"T4"};
    static const int gpus[] = {2};
    struct ocra_sched_cluster *c = cluster(models, gpus, 1);
    struct ocra_sched_req r = {.gpus = 1, .gpu_milli = 300, .gpu_mem_mib = 4096};
    const struct ocra_sched_node *n = ocra_sched_cluster_node(c, 0);
    struct ocra_sched_alloc a[3], x, whole;
    struct ocra_err err = {0};

    CHECK_INT(place(c, OCRA_SCHED_FIRST_FIT, 1, 0, &whole, NULL), 0); /* dev0 whole */
    CHECK_INT(whole.devs[0], 0);
    CHECK_INT(n->gpu_mem_free[0], 0);
    for (int i = 0; i < 3; i++) {
        CHECK_INT(ocra_sched_place(c, OCRA_SCHED_BEST_FIT, &r, &a[i], NULL), 0);
        CHECK_INT(a[i].devs[0], 1);
        CHECK_INT(a[i].gpu_milli, 300);
    }
    CHECK_INT(n->gpu_free_milli[1], 100);
    CHECK_INT(n->gpu_mem_free[1], 16384 - 3 * 4096);
    r.gpu_milli = 100;
    r.gpu_mem_mib = 8192; /* 100 milli are free, but only 4 GiB */
    CHECK_INT(ocra_sched_place(c, OCRA_SCHED_FGD, &r, &x, &err), -1);
    CHECK_INT(err.code, EAGAIN);
    ocra_sched_release(c, &a[1]);
    CHECK_INT(n->gpu_free_milli[1], 400);
    CHECK_INT(n->gpu_mem_free[1], 16384 - 2 * 4096);
    CHECK_INT(ocra_sched_place(c, OCRA_SCHED_FGD, &r, &x, NULL), 0);
    CHECK_INT(x.devs[0], 1);
    ocra_sched_release(c, &whole);
    CHECK_INT(n->gpu_free_milli[0], 1000);
    CHECK_INT(n->gpu_mem_free[0], 16384);
    ocra_sched_cluster_free(c);
}

static void
test_release_and_reuse(void)
{
    static const char *const models[] = {"T4", "T4"};
    static const int gpus[] = {4, 4};
    struct ocra_sched_cluster *c = cluster(models, gpus, 2);
    struct ocra_sched_alloc a, b, d;

    CHECK_INT(place(c, OCRA_SCHED_BEST_FIT, 3, 0, &a, NULL), 0);
    CHECK_INT(place(c, OCRA_SCHED_BEST_FIT, 3, 0, &b, NULL), 0);
    CHECK_INT(b.node, 1 - a.node);
    CHECK_INT(place(c, OCRA_SCHED_BEST_FIT, 2, 0, &d, NULL), -1);
    ocra_sched_release(c, &a);
    CHECK_INT(place(c, OCRA_SCHED_BEST_FIT, 2, 0, &d, NULL), 0);
    CHECK_INT(d.node, a.node);
    CHECK_INT(d.devs[0], 0);
    CHECK_INT(d.devs[1], 1);
    CHECK_INT(ocra_sched_cluster_node(c, (size_t)a.node)->cpu_free, 63000);
    ocra_sched_cluster_reset(c);
    CHECK(ocra_sched_free_share(c) == 1.0);
    CHECK_INT(ocra_sched_cluster_node(c, 1)->cpu_free, 64000);
    ocra_sched_cluster_free(c);
}

static void
test_request_bigger_than_any_node_is_refused(void)
{
    static const char *const models[] = {"T4", "G2"};
    static const int gpus[] = {2, 8};
    struct ocra_sched_cluster *c = cluster(models, gpus, 2);
    struct ocra_sched_req r = {.gpus = 16};
    struct ocra_sched_alloc a;
    struct ocra_err err = {0};

    CHECK_INT(ocra_sched_place(c, OCRA_SCHED_BEST_FIT, &r, &a, &err), -1);
    CHECK_INT(err.code, ENOSPC);
    CHECK_STR(err.msg, "no node can ever host it: none of 2 has 16 GPUs (the largest has 8)");
    r = (struct ocra_sched_req){.gpus = 1, .ram_mib = 300000};
    CHECK_INT(ocra_sched_place(c, OCRA_SCHED_BEST_FIT, &r, &a, &err), -1);
    CHECK_STR(err.msg, "no node can ever host it: none of 2 has 300000 MiB RAM (the largest "
                       "has 262144)");
    r = (struct ocra_sched_req){.gpus = 4, .gpu_mem_mib = 20000};
    CHECK_INT(ocra_sched_place(c, OCRA_SCHED_BEST_FIT, &r, &a, &err), -1);
    CHECK_STR(err.msg, "no node can ever host it: none of the 1 of 2 nodes that pass the "
                       "earlier filters has 20000 MiB per GPU (the largest has 16384)");
    ocra_sched_cluster_free(c);
}

/* GPUs asked of nodes that have none, without naming a model: refused with the reason. */
static void
test_gpus_on_cpu_only_nodes_are_refused(void)
{
    static const char *const models[] = {"", ""};
    static const int gpus[] = {0, 0};
    struct ocra_sched_cluster *c = cluster(models, gpus, 2);
    struct ocra_sched_alloc a;
    struct ocra_err err = {0};

    for (int p = 0; p < OCRA_SCHED_N_POLICIES; p++) {
        CHECK_INT(place(c, (enum ocra_sched_policy)p, 1, 0, &a, &err), -1);
        CHECK_INT(err.code, ENOSPC);
        CHECK_STR(err.msg, "no node can ever host it: none of 2 has a GPU");
    }
    CHECK_INT(place(c, OCRA_SCHED_BEST_FIT, 0, 0, &a, NULL), 0); /* CPU only: fits */
    ocra_sched_cluster_free(c);
}

static void
test_malformed_requests(void)
{
    static const char *const models[] = {"T4"};
    static const int gpus[] = {2};
    struct ocra_sched_cluster *c = cluster(models, gpus, 1);
    static const struct ocra_sched_req bad[] = {
        {.gpus = 2, .gpu_milli = 500},
        {.gpus = 1, .gpu_milli = 1001},
        {.gpus = -1},
        {.gpus = 0, .gpu_milli = 10},
        {.gpus = 17},
        {.cpu_milli = -1},
        {.n_labels = 1},
    };
    struct ocra_sched_alloc a;
    struct ocra_err err = {0};

    for (size_t i = 0; i < OCRA_ARRAY_LEN(bad); i++) {
        err.code = 0;
        CHECK_INT(ocra_sched_place(c, OCRA_SCHED_FGD, &bad[i], &a, &err), -1);
        CHECK_INT(err.code, EINVAL);
    }
    CHECK_INT(ocra_sched_place(c, OCRA_SCHED_FGD, &bad[0], &a, &err), -1);
    CHECK_STR(err.msg, "request: a share of a GPU (gpu_milli 500) is for one GPU, not 2");
    ocra_sched_cluster_free(c);
}

static void
test_cheapest_prefers_the_lower_cost(void)
{
    static const char *const models[] = {"T4", "A10", "A10"};
    static const int gpus[] = {1, 1, 1};
    struct ocra_sched_cluster *c = ocra_sched_cluster_new();
    static const int64_t costs[] = {900000, 500000, 500000};
    struct ocra_sched_node node;
    struct ocra_sched_alloc a;
    enum ocra_sched_policy p;

    for (int i = 0; i < 3; i++) {
        node_init(&node, models[i], models[i], gpus[i]);
        node.cost_micro = costs[i];
        CHECK_INT(ocra_sched_cluster_add(c, &node, NULL), 0);
    }
    CHECK_INT(place(c, OCRA_SCHED_CHEAPEST, 1, 0, &a, NULL), 0);
    CHECK_INT(a.node, 1);
    CHECK_INT(place(c, OCRA_SCHED_CHEAPEST, 1, 0, &a, NULL), 0);
    CHECK_INT(a.node, 2);
    CHECK_INT(ocra_sched_policy_parse("cheapest", &p), 0);
    CHECK_INT(p, OCRA_SCHED_CHEAPEST);
    CHECK_INT(ocra_sched_policy_parse("worst-fit", &p), -1);
    CHECK_STR(ocra_sched_policy_name(OCRA_SCHED_FGD), "fgd");
    ocra_sched_cluster_free(c);
}

/* ---- the capacity index against the scan of every node ----------------------------------- */

static uint64_t
rnd(uint64_t *s) /* xorshift64*: the same sequence on every machine */
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * UINT64_C(2685821657736338717);
}

static int
pick(uint64_t *s, int n)
{
    return (int)(rnd(s) % (uint64_t)n);
}

/* One of a few descriptions, so that many nodes share a type (and its empty-node heap). */
static void
random_node(uint64_t *s, size_t i, struct ocra_sched_node *n)
{
    static const char *const models[] = {"T4", "A10", "V100", ""};
    static const int gpus[] = {1, 2, 4, 8};
    int d = pick(s, 12);

    node_init(n, "", models[d % 4], d % 4 == 3 ? 0 : gpus[d % 4]);
    (void)snprintf(n->name, sizeof(n->name), "r%zu", i);
    n->cpu_milli = 16000 * (1 + d / 4);
    n->ram_mib = 65536 * (1 + d / 6);
    n->cost_micro = 100000 * (1 + (d + 1) % 3);
    n->driver = d % 2 ? 535104005 : 470000000;
    if (d % 5 == 0) {
        n->n_labels = 1;
        (void)snprintf(n->labels[0], sizeof(n->labels[0]), "zone=a");
    }
}

static void
random_req(uint64_t *s, struct ocra_sched_req *r)
{
    static const char *const models[] = {NULL, "T4", "A10|V100", "A100"};
    static const char *const zone[] = {"zone=a"};
    static const int milli[] = {1000, 1000, 250, 500, 700};
    int m = pick(s, 8);

    memset(r, 0, sizeof(*r));
    r->gpus = pick(s, 6) == 0 ? 0 : 1 + pick(s, 4) * pick(s, 3);
    r->gpu_milli = r->gpus == 1 ? milli[pick(s, 5)] : r->gpus ? 1000 : 0;
    r->gpu_model = m < 4 ? models[m] : NULL;
    r->cpu_milli = 1000 * pick(s, 20);
    r->ram_mib = 4096 * pick(s, 40);
    r->gpu_mem_mib = pick(s, 6) == 0 ? 1024 * pick(s, 20) : 0;
    r->min_driver = pick(s, 8) == 0 ? 500000000 : 0;
    if (pick(s, 10) == 0) {
        r->labels = zone;
        r->n_labels = 1;
    }
}

static bool
same_alloc(const struct ocra_sched_alloc *a, const struct ocra_sched_alloc *b)
{
    return a->node == b->node && a->n_devs == b->n_devs &&
           memcmp(a->devs, b->devs, (size_t)a->n_devs) == 0 && a->gpu_milli == b->gpu_milli &&
           a->cpu_milli == b->cpu_milli;
}

/*
 * One random step on both copies: a release of a held placement, a claim on a random node, or a
 * request placed in each.
 * Returns whether the two decided differently; a placement stays held only in the first copy's
 * form, so that the copies stay alike even then.
 */
static int
index_step(struct ocra_sched_cluster *c[2], enum ocra_sched_policy p, uint64_t *s,
           struct ocra_sched_alloc *held, size_t *n_held)
{
    struct ocra_sched_alloc a[2];
    struct ocra_err err[2];
    struct ocra_sched_req r;
    int ret[2], differ;

    if (*n_held && pick(s, 3) == 0) {
        size_t j = (size_t)pick(s, (int)*n_held);

        ocra_sched_release(c[0], &held[j]);
        ocra_sched_release(c[1], &held[j]);
        held[j] = held[--*n_held];
        return 0;
    }
    if (pick(s, 8) == 0) { /* a claim on any node, as the allocator makes from its journal */
        const struct ocra_sched_node *n;

        memset(&a[0], 0, sizeof(a[0]));
        a[0].node = pick(s, (int)ocra_sched_cluster_size(c[0]));
        n = ocra_sched_cluster_node(c[0], (size_t)a[0].node);
        a[0].n_devs = n->gpu_count > 0;
        a[0].gpu_milli = 1000;
        a[0].cpu_milli = 1000;
        if (ocra_sched_claim(c[0], &a[0], NULL) == 0) {
            CHECK_INT(ocra_sched_claim(c[1], &a[0], NULL), 0);
            held[(*n_held)++] = a[0];
        }
        return 0;
    }
    random_req(s, &r);
    for (int i = 0; i < 2; i++)
        ret[i] = ocra_sched_place(c[i], p, &r, &a[i], &err[i]);
    differ = ret[0] != ret[1] || (ret[0] == 0 && !same_alloc(&a[0], &a[1])) ||
             (ret[0] < 0 && (err[0].code != err[1].code || strcmp(err[0].msg, err[1].msg) != 0));
    for (int i = 0; i < 2; i++)
        if (ret[i] == 0)
            ocra_sched_release(c[i], &a[i]);
    if (ret[0] == 0) {
        CHECK_INT(ocra_sched_claim(c[0], &a[0], NULL), 0);
        CHECK_INT(ocra_sched_claim(c[1], &a[0], NULL), 0);
        held[(*n_held)++] = a[0];
    }
    return differ;
}

/*
 * Random clusters (a few node descriptions, so that types repeat), random requests (gangs,
 * shares, CPU only, models, labels, drivers, GPU memory) and random releases, in two copies of
 * a cluster: one decides through the capacity index, the other through the scan of every node.
 * Under every policy each decision must take the same node and devices, or fail with the same
 * error, before and after a reset and after the index was off for a while (rebuilt when it
 * comes back); and the fragmentation must end the same.
 */
static void
test_index_chooses_as_the_scan_does(void)
{
    enum { CLUSTERS = 60, OPS = 400 };
    struct ocra_sched_alloc held[OPS];
    uint64_t s = 42;
    int diffs = 0, held_total = 0;

    for (int k = 0; k < CLUSTERS * OCRA_SCHED_N_POLICIES; k++) {
        enum ocra_sched_policy p = (enum ocra_sched_policy)(k % OCRA_SCHED_N_POLICIES);
        struct ocra_sched_cluster *c[2] = {ocra_sched_cluster_new(), ocra_sched_cluster_new()};
        size_t nn = 1 + (size_t)pick(&s, 150), n_held = 0;
        struct ocra_sched_node node;
        struct ocra_sched_req r;

        ocra_sched_cluster_set_search(c[1], OCRA_SCHED_SEARCH_SCAN);
        for (size_t i = 0; i < nn; i++) {
            random_node(&s, i, &node);
            CHECK_INT(ocra_sched_cluster_add(c[0], &node, NULL), 0);
            CHECK_INT(ocra_sched_cluster_add(c[1], &node, NULL), 0);
        }
        for (int i = 0; i < 20; i++) {
            int64_t w = 1 + pick(&s, 5);

            random_req(&s, &r);
            ocra_sched_typical_add(c[0], &r, w);
            ocra_sched_typical_add(c[1], &r, w);
        }
        for (int op = 0; op < OPS; op++) {
            if (op == OPS / 2) { /* everything back, then fill again */
                ocra_sched_cluster_reset(c[0]);
                ocra_sched_cluster_reset(c[1]);
                n_held = 0;
            }
            if (op == OPS / 4 || op == OPS / 4 + 20) /* a while without the index: rebuilt */
                ocra_sched_cluster_set_search(c[0], op == OPS / 4 ? OCRA_SCHED_SEARCH_SCAN
                                                                  : OCRA_SCHED_SEARCH_INDEX);
            diffs += index_step(c, p, &s, held, &n_held);
            held_total += (int)n_held;
        }
        CHECK(ocra_sched_frag_share(c[0]) == ocra_sched_frag_share(c[1]));
        ocra_sched_cluster_free(c[0]);
        ocra_sched_cluster_free(c[1]);
    }
    CHECK_INT(diffs, 0);
    CHECK(held_total > CLUSTERS * OCRA_SCHED_N_POLICIES * OPS); /* the requests mostly fit */
}

#define NODE_HDR "sn,cpu_milli,memory_mib,gpu,model\n"
#define POD_HDR "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,creation_time,deletion_time\n"

static void
test_csv_reads_good_lists(void)
{
    static const char nodes[] = "model,gpu,sn,memory_mib,cpu_milli,driver,cost,labels,extra\r\n"
                                "A10,4,a,1024,8000,535.104.05,1.25,zone=a;tier=x,?\r\n"
                                "\n"
                                "G2,8,b,2048,16000,,,,\n";
    static const char pods[] = POD_HDR "p0,100,200,1,500,T4|A10,5,\n"
                                       "p1,0,0,0,0,,7,9";
    struct ocra_sched_node *n = NULL;
    struct ocra_sched_pod *p = NULL;
    size_t nn = 0, np = 0;
    struct ocra_err err = {0};

    CHECK_INT(ocra_sched_nodes_parse("n.csv", nodes, sizeof(nodes) - 1, &n, &nn, &err), 0);
    CHECK_INT(nn, 2);
    if (nn == 2) {
        CHECK_STR(n[0].name, "a");
        CHECK_INT(n[0].gpu_count, 4);
        CHECK_INT(n[0].gpu_mem_mib, 24576);
        CHECK_INT(n[0].driver, 535104005);
        CHECK_INT(n[0].cost_micro, 1250000);
        CHECK_INT(n[0].n_labels, 2);
        CHECK_STR(n[0].labels[1], "tier=x");
        CHECK_INT(n[1].gpu_mem_mib, 0); /* G2: anonymised, memory unknown */
        CHECK_INT(n[1].cpu_milli, 16000);
    }
    CHECK_INT(ocra_sched_pods_parse("p.csv", pods, sizeof(pods) - 1, &p, &np, &err), 0);
    CHECK_INT(np, 2);
    if (np == 2) {
        CHECK_STR(p[0].gpu_spec, "T4|A10");
        CHECK_INT(p[0].creation, 5);
        CHECK_INT(p[0].deletion, -1);
        CHECK_INT(p[1].deletion, 9);
        CHECK_INT(p[1].gpus, 0);
    }
    free(n);
    free(p);
}

struct csv_case {
    bool nodes;
    const char *text;
    const char *msg;
};

static const struct csv_case csv_cases[] = {
    {true, "", "x.csv: empty, no header line"},
    {true, "sn,cpu_milli,memory_mib,gpu\n", "x.csv:1: model: missing column"},
    {true, "sn,sn,cpu_milli,memory_mib,gpu,model\n", "x.csv:1: sn: duplicate column"},
    {true, NODE_HDR "a,1,2,3\n", "x.csv:2: expected 5 columns, found 4"},
    {true, NODE_HDR "a,1,2,3,T4,9\n", "x.csv:2: expected 5 columns, found 6"},
    {true, NODE_HDR "a,12x,2,3,T4\n", "x.csv:2: cpu_milli: not an integer: \"12x\""},
    {true, NODE_HDR "a,,2,3,T4\n", "x.csv:2: cpu_milli: not an integer: \"\""},
    {true, NODE_HDR "a,-5,2,3,T4\n", "x.csv:2: cpu_milli: -5 is out of range [0, 1099511627776]"},
    {true, NODE_HDR "a,1,99999999999999999999,3,T4\n",
     "x.csv:2: memory_mib: 99999999999999999999 is out of range [0, 1099511627776]"},
    {true, NODE_HDR "a,1,2,17,T4\n", "x.csv:2: gpu: 17 is out of range [0, 16]"},
    {true, NODE_HDR "a,1,2,1,\n", "x.csv:2: model: empty"},
    {true, NODE_HDR ",1,2,1,T4\n", "x.csv:2: sn: empty"},
    {true, NODE_HDR "a b,1,2,1,T4\n", "x.csv:2: sn: not printable ASCII without spaces: \"a b\""},
    {true, NODE_HDR "a\x01,1,2,1,T4\n",
     "x.csv:2: sn: not printable ASCII without spaces: \"a\\x01\""},
    {true, NODE_HDR "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa,1,2,1,T4\n",
     "x.csv:2: sn: longer than 63 bytes"},
    {true, NODE_HDR "\"a\",1,2,1,T4\n", "x.csv:2: quoted fields are not supported"},
    {true, NODE_HDR "a,1,2,1,T4\nb,1\0,2,1,T4\n", "x.csv:3: NUL byte"},
    {true, "sn,cpu_milli,memory_mib,gpu,model,driver\na,1,2,1,T4,535.x\n",
     "x.csv:2: driver: not a driver version major[.minor[.patch]]"},
    {true, "sn,cpu_milli,memory_mib,gpu,model,cost\na,1,2,1,T4,1.2345678\n",
     "x.csv:2: cost: not a decimal cost (up to 6 digits . 6 decimals)"},
    {true, "sn,cpu_milli,memory_mib,gpu,model,labels\na,1,2,1,T4,novalue\n",
     "x.csv:2: labels: not up to 8 key=value;... of 63 bytes"},
    {false, POD_HDR "p,1,2,2,500,,0,1\n", "x.csv:2: gpu_milli: must be 1000 when num_gpu > 1"},
    {false, POD_HDR "p,1,2,1,0,,0,1\n", "x.csv:2: gpu_milli: 0 exactly when num_gpu is 0"},
    {false, POD_HDR "p,1,2,1,1001,,0,1\n", "x.csv:2: gpu_milli: 1001 is out of range [0, 1000]"},
    {false, POD_HDR "p,1,2,1,500,,,1\n", "x.csv:2: creation_time: not an integer: \"\""},
    {false, POD_HDR "p,1,2,1,500,,0,0x10\n", "x.csv:2: deletion_time: not an integer: \"0x10\""},
    {false, POD_HDR "p,1,2,1,500,,+3,1\n", "x.csv:2: creation_time: not an integer: \"+3\""},
    {false, "name,cpu_milli,memory_mib,num_gpu\n", "x.csv:1: gpu_milli: missing column"},
};

static void
test_csv_refuses_hostile_lines(void)
{
    for (size_t i = 0; i < OCRA_ARRAY_LEN(csv_cases); i++) {
        const struct csv_case *k = &csv_cases[i];
        size_t len = strlen(k->text), n = 0;
        struct ocra_err err = {0};
        void *out = NULL;
        int r;

        if (strstr(k->msg, "NUL byte"))
            len = strlen(NODE_HDR "a,1,2,1,T4\nb,1") + 1 + strlen(",2,1,T4\n");
        if (k->nodes)
            r = ocra_sched_nodes_parse("x.csv", k->text, len, (struct ocra_sched_node **)&out, &n,
                                       &err);
        else
            r = ocra_sched_pods_parse("x.csv", k->text, len, (struct ocra_sched_pod **)&out, &n,
                                      &err);
        CHECK_INT(r, -1);
        CHECK_INT(err.code, EINVAL);
        CHECK_STR(err.msg, k->msg);
        CHECK(out == NULL);
    }
}

/* Lines and fields past their bounds, built at run time. */
static void
test_csv_refuses_overlong_lines_and_fields(void)
{
    struct ocra_sched_node *out = NULL;
    struct ocra_err err = {0};
    struct ocra_buf b;
    size_t n = 0;

    ocra_buf_init(&b);
    ocra_buf_puts(&b, NODE_HDR "a,1,2,1,");
    for (int i = 0; i < 300; i++)
        ocra_buf_putc(&b, 'M');
    ocra_buf_puts(&b, "\n");
    CHECK_INT(ocra_sched_nodes_parse("x.csv", b.data, b.len, &out, &n, &err), -1);
    CHECK_STR(err.msg, "x.csv:2: field 5 longer than 255 bytes");
    ocra_buf_reset(&b);
    ocra_buf_puts(&b, NODE_HDR);
    for (int i = 0; i < 1000; i++)
        ocra_buf_puts(&b, "a,1,2,");
    CHECK_INT(ocra_sched_nodes_parse("x.csv", b.data, b.len, &out, &n, &err), -1);
    CHECK_STR(err.msg, "x.csv:2: line longer than 4096 bytes");
    ocra_buf_reset(&b);
    for (int i = 0; i < 40; i++)
        ocra_buf_puts(&b, "c,");
    CHECK_INT(ocra_sched_nodes_parse("x.csv", b.data, b.len, &out, &n, &err), -1);
    CHECK_STR(err.msg, "x.csv:1: more than 32 columns");
    ocra_buf_fini(&b);
    CHECK(out == NULL);
}

static int
load_fixture(const char *nodes_path, const char *pods_path, struct ocra_sched_node **nodes,
             size_t *nn, struct ocra_sched_pod **pods, size_t *np)
{
    struct ocra_err err = {0};
    char *text = NULL;
    size_t len = 0;
    int r;

    if (ocra_file_read(nodes_path, 1u << 20, &text, &len, &err) < 0)
        return -1;
    r = ocra_sched_nodes_parse(nodes_path, text, len, nodes, nn, &err);
    free(text);
    if (r < 0 || ocra_file_read(pods_path, 1u << 20, &text, &len, &err) < 0)
        return -1;
    r = ocra_sched_pods_parse(pods_path, text, len, pods, np, &err);
    free(text);
    if (r < 0)
        fprintf(stderr, "  %s\n", err.msg);
    return r;
}

struct sim_case {
    const char *pods;
    bool departures;
    size_t placed[OCRA_SCHED_N_POLICIES]; /* first-fit, best-fit, cheapest, fgd */
    int free_bp;                          /* free_share of first-fit, in basis points */
};

/*
 * Exact counts over the fixtures (31 openb nodes, 147 GPUs; the first 500 pods of the default
 * list and the first 300 of multigpu50). first-fit's placed counts and free shares are also
 * what tests/data/sched/first_fit.py, an independent replica of the policy, computes.
 */
static void
test_simulate_fixtures_exact_counts(void)
{
    static const struct sim_case cases[] = {
        {"tests/data/sched/pods.csv", false, {206, 210, 210, 209}, 405},
        {"tests/data/sched/pods.csv", true, {500, 500, 500, 500}, 7601},
        {"tests/data/sched/pods_multigpu.csv", true, {181, 185, 185, 184}, 456},
    };
    struct ocra_sched_node *nodes = NULL;
    struct ocra_sched_pod *pods = NULL;
    struct ocra_sched_sim_result res;
    size_t nn = 0, np = 0;

    for (size_t i = 0; i < OCRA_ARRAY_LEN(cases); i++) {
        CHECK_INT(
            load_fixture("tests/data/sched/nodes.csv", cases[i].pods, &nodes, &nn, &pods, &np), 0);
        CHECK_INT(nn, 31);
        for (int p = 0; p < OCRA_SCHED_N_POLICIES; p++) {
            struct ocra_sched_sim_conf conf = {(enum ocra_sched_policy)p, cases[i].departures,
                                               OCRA_SCHED_SEARCH_INDEX};

            CHECK_INT(ocra_sched_simulate(nodes, nn, pods, np, &conf, &res, NULL), 0);
            CHECK_INT(res.placed, cases[i].placed[p]);
            CHECK_INT(res.placed + res.failed, np);
            CHECK_INT(res.decisions, np);
            CHECK(res.frag_share <= res.free_share + 1e-12);
            if (p == OCRA_SCHED_FIRST_FIT)
                CHECK_INT((int)(res.free_share * 10000 + 0.5), cases[i].free_bp);
        }
        free(nodes);
        free(pods);
        nodes = NULL;
        pods = NULL;
    }
}

OCRA_TEST_MAIN(OCRA_TEST(test_gang_is_all_or_nothing_on_one_node),
               OCRA_TEST(test_fgd_and_best_fit_choose_differently),
               OCRA_TEST(test_fgd_picks_the_device_within_a_node),
               OCRA_TEST(test_fgd_ties_go_to_the_first_node),
               OCRA_TEST(test_typical_workload_and_its_measure),
               OCRA_TEST(test_driver_too_old_is_refused), OCRA_TEST(test_driver_versions_parse),
               OCRA_TEST(test_gpu_model_constraint), OCRA_TEST(test_labels_filter),
               OCRA_TEST(test_shares_of_one_device_and_their_accounting),
               OCRA_TEST(test_release_and_reuse),
               OCRA_TEST(test_request_bigger_than_any_node_is_refused),
               OCRA_TEST(test_gpus_on_cpu_only_nodes_are_refused),
               OCRA_TEST(test_malformed_requests), OCRA_TEST(test_cheapest_prefers_the_lower_cost),
               OCRA_TEST(test_csv_reads_good_lists), OCRA_TEST(test_csv_refuses_hostile_lines),
               OCRA_TEST(test_csv_refuses_overlong_lines_and_fields),
               OCRA_TEST(test_index_chooses_as_the_scan_does),
               OCRA_TEST(test_simulate_fixtures_exact_counts))
