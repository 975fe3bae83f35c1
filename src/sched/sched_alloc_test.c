/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sched_alloc_test.c: the inventory (configured nodes, other node sources, discovery of this
 * machine), NVML through dlopen (the real library's absence, and a fake libnvidia-ml built for
 * this test: devices read, a failing init, mixed models), the allocator over a journal on disk
 * (gang placement, shares, driver and model filters, release and re-use, a restart without
 * double booking, a node gone from the inventory, scaling replicas), the autoscaler's control
 * law (bounds, cooldowns, dead band) and the request-trace replay.
 */
#include "sched/sched.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ocra_test.h"
#include "store/store.h"

/* ---- NVML and discovery ---------------------------------------------------------------- */

static void
test_nvml_absent_library_means_zero_gpus(void)
{
    struct ocra_sched_nvml g;

    ocra_sched_nvml_probe("/nonexistent/libnvidia-ml.so.1", &g);
    CHECK_INT(g.count, 0);
    CHECK(strstr(g.why, "/nonexistent/libnvidia-ml.so.1 not found") != NULL);
    ocra_sched_nvml_probe("libnvidia-ml.so.1", &g); /* the real one, absent on this machine */
    if (g.count > 0)
        OCRA_TEST_SKIP("this machine has NVML");
    CHECK(strstr(g.why, "libnvidia-ml.so.1 not found") != NULL ||
          strstr(g.why, "nvmlInit_v2") != NULL);
}

static void
test_nvml_fake_library_is_read(void)
{
    struct ocra_sched_nvml g;

    unsetenv("FAKE_NVML_MODE");
    ocra_sched_nvml_probe(FAKE_NVML, &g);
    CHECK_INT(g.count, 2);
    CHECK_STR(g.model, "A100-SXM4-40GB");
    CHECK_INT(g.mem_mib, 40960);
    CHECK_INT(g.driver, 535104005);
    CHECK_STR(g.driver_text, "535.104.05");
    CHECK_INT(g.compute_cap, 80);
    CHECK_STR(g.why, "");
}

static void
test_nvml_failing_init_mixed_models_no_gpu(void)
{
    struct ocra_sched_nvml g;

    setenv("FAKE_NVML_MODE", "init_fail", 1);
    ocra_sched_nvml_probe(FAKE_NVML, &g);
    CHECK_INT(g.count, 0);
    CHECK_STR(g.why, "nvmlInit_v2: Driver Not Loaded");
    setenv("FAKE_NVML_MODE", "mixed", 1);
    ocra_sched_nvml_probe(FAKE_NVML, &g);
    CHECK_INT(g.count, 1);
    CHECK(strstr(g.why, "GPU 1 is a T4, not a A100-SXM4-40GB: left out") != NULL);
    setenv("FAKE_NVML_MODE", "none", 1);
    ocra_sched_nvml_probe(FAKE_NVML, &g);
    CHECK_INT(g.count, 0);
    CHECK_STR(g.why, "NVML (driver 535.104.05) sees no GPU");
    unsetenv("FAKE_NVML_MODE");
}

static const struct ocra_sched_inv_node *
inv_get(const struct ocra_sched_inventory *inv, const char *name)
{
    for (size_t i = 0; i < inv->n; i++)
        if (strcmp(inv->v[i].node.name, name) == 0)
            return &inv->v[i];
    return NULL;
}

static void
test_local_discovery_records_sources(void)
{
    struct ocra_sched_inventory inv;
    const struct ocra_sched_inv_node *n;

    ocra_sched_inventory_init(&inv);
    setenv("OCRA_NVML_LIB", FAKE_NVML, 1);
    ocra_sched_inventory_discover_local(&inv);
    CHECK_INT(inv.n, 1);
    n = &inv.v[0];
    CHECK(n->node.cpu_milli >= 1000 && n->node.ram_mib > 0);
    CHECK_STR(n->source[OCRA_SCHED_FIG_CPU], "proc");
    CHECK_STR(n->source[OCRA_SCHED_FIG_RAM], "proc");
    CHECK_INT(n->node.gpu_count, 2);
    CHECK_STR(n->source[OCRA_SCHED_FIG_GPUS], "nvml");
    CHECK_STR(n->source[OCRA_SCHED_FIG_DRIVER], "nvml");
    CHECK_STR(n->source[OCRA_SCHED_FIG_COST], "");
    ocra_sched_inventory_fini(&inv);

    setenv("OCRA_NVML_LIB", "/nonexistent/libnvidia-ml.so.1", 1);
    ocra_sched_inventory_discover_local(&inv);
    CHECK_INT(inv.v[0].node.gpu_count, 0);
    CHECK_STR(inv.v[0].source[OCRA_SCHED_FIG_GPUS], "");
    CHECK(strncmp(inv.v[0].note, "0 GPUs: /nonexistent/libnvidia-ml.so.1 not found", 48) == 0);
    unsetenv("OCRA_NVML_LIB");
    ocra_sched_inventory_fini(&inv);
}

static void
test_configured_node_is_completed_not_overridden(void)
{
    char host[OCRA_SCHED_NAME_MAX] = "";
    char zone[] = "zone=a", *labels[] = {zone};
    struct ocra_sched_node_conf conf = {
        .gpu_model = "A100-40GB", .gpus = 4, .cost = "2.5", .labels = labels, .n_labels = 1};
    struct ocra_sched_inventory inv;
    const struct ocra_sched_inv_node *n;

    if (gethostname(host, sizeof(host) - 1) < 0 || !host[0])
        OCRA_TEST_SKIP("no host name");
    conf.name = host;
    ocra_sched_inventory_init(&inv);
    CHECK_INT(ocra_sched_inventory_add_conf(&inv, &conf, 1, NULL), 0);
    setenv("OCRA_NVML_LIB", FAKE_NVML, 1);
    ocra_sched_inventory_discover_local(&inv);
    unsetenv("OCRA_NVML_LIB");
    CHECK_INT(inv.n, 1);
    n = inv_get(&inv, host);
    CHECK(n != NULL);
    if (!n)
        goto out;
    CHECK_STR(n->node.gpu_model, "A100-40GB"); /* the operator's name for it */
    CHECK_INT(n->node.gpu_count, 4);
    CHECK_STR(n->source[OCRA_SCHED_FIG_GPUS], "config");
    CHECK_INT(n->node.gpu_mem_mib, 40960); /* filled by NVML */
    CHECK_STR(n->source[OCRA_SCHED_FIG_GPU_MEM], "nvml");
    CHECK_STR(n->source[OCRA_SCHED_FIG_CPU], "proc");
    CHECK_INT(n->node.cost_micro, 2500000);
    CHECK_STR(n->source[OCRA_SCHED_FIG_COST], "config");
    CHECK_STR(n->source[OCRA_SCHED_FIG_LABELS], "config");
    CHECK_STR(n->note, "NVML sees 2 GPUs; the configuration says 4");
out:
    ocra_sched_inventory_fini(&inv);
}

static void
test_other_node_sources_and_conflicts(void)
{
    struct ocra_sched_node slurm[2];
    struct ocra_sched_node_conf bad = {.name = "x", .gpu_model = "T4", .gpus = 1, .driver = "5x"};
    struct ocra_sched_node_conf cc = {.name = "y", .compute_capability = "8"};
    struct ocra_sched_inventory inv;
    struct ocra_err err = {0};

    memset(slurm, 0, sizeof(slurm));
    (void)snprintf(slurm[0].name, sizeof(slurm[0].name), "gpu-01");
    (void)snprintf(slurm[0].gpu_model, sizeof(slurm[0].gpu_model), "H100");
    slurm[0].gpu_count = 8;
    slurm[0].cpu_milli = 96000;
    slurm[1] = slurm[0];
    (void)snprintf(slurm[1].name, sizeof(slurm[1].name), "gpu-02");
    ocra_sched_inventory_init(&inv);
    CHECK_INT(ocra_sched_inventory_add(&inv, slurm, 2, "slurm", NULL), 0);
    CHECK_STR(inv.v[1].source[OCRA_SCHED_FIG_GPUS], "slurm");
    CHECK_STR(inv.v[1].source[OCRA_SCHED_FIG_CPU], "slurm");
    CHECK_STR(inv.v[1].source[OCRA_SCHED_FIG_RAM], ""); /* not given: unknown */
    CHECK_INT(ocra_sched_inventory_add(&inv, slurm, 1, "slurm", &err), -1);
    CHECK_INT(err.code, EEXIST);
    CHECK_INT(ocra_sched_inventory_add_conf(&inv, &bad, 1, &err), -1);
    CHECK_INT(err.code, EINVAL);
    CHECK(strstr(err.msg, "inventory.nodes[0]: driver version") != NULL);
    CHECK_INT(ocra_sched_inventory_add_conf(&inv, &cc, 1, &err), -1);
    CHECK(strstr(err.msg, "compute_capability") != NULL);
    CHECK_INT(inv.n, 2);
    ocra_sched_inventory_fini(&inv);
}

/* ---- the allocator over a journal ------------------------------------------------------ */

struct jr {
    char dir[64], path[96];
    struct ocra_store *st;
    struct ocra_sched_inventory inv;
    struct ocra_sched_allocator *a;
};

/* Nodes: n0 4x A100 driver 535, n1 2x T4 driver 470, n2 2x A100 driver 550 (names n0..). */
static void
inv_fill(struct ocra_sched_inventory *inv, bool with_n1)
{
    static const struct {
        const char *name, *model, *driver;
        int gpus;
    } rows[] = {
        {"n0", "A100", "535.104.05", 4}, {"n1", "T4", "470.82", 2}, {"n2", "A100", "550.54.14", 2}};
    struct ocra_sched_node n;

    ocra_sched_inventory_init(inv);
    for (size_t i = 0; i < OCRA_ARRAY_LEN(rows); i++) {
        if (i == 1 && !with_n1)
            continue;
        memset(&n, 0, sizeof(n));
        (void)snprintf(n.name, sizeof(n.name), "%s", rows[i].name);
        (void)snprintf(n.gpu_model, sizeof(n.gpu_model), "%s", rows[i].model);
        n.gpu_count = rows[i].gpus;
        n.gpu_mem_mib = 40960;
        n.cpu_milli = 64000;
        n.ram_mib = 262144;
        n.compute_cap = 80;
        CHECK_INT(ocra_sched_driver_parse(rows[i].driver, &n.driver, NULL), 0);
        CHECK_INT(ocra_sched_inventory_add(inv, &n, 1, "config", NULL), 0);
    }
}

static void
jr_open(struct jr *j, bool with_n1)
{
    struct ocra_err err = {0};

    CHECK_INT(ocra_store_open(j->path, &j->st, &err), 0);
    inv_fill(&j->inv, with_n1);
    CHECK_INT(ocra_sched_allocator_open(j->st, &j->inv, OCRA_SCHED_BEST_FIT, 0, &j->a, &err), 0);
    if (err.msg[0])
        fprintf(stderr, "  %s\n", err.msg);
}

static void
jr_close(struct jr *j)
{
    ocra_sched_allocator_free(j->a);
    ocra_sched_inventory_fini(&j->inv);
    ocra_store_close(j->st);
    j->a = NULL;
    j->st = NULL;
}

/* A fresh journal with events e0..e9. */
static int
jr_init(struct jr *j)
{
    struct ocra_store_event ev[10];
    char ids[10][16];

    memset(j, 0, sizeof(*j));
    (void)snprintf(j->dir, sizeof(j->dir), "/tmp/ocra-alloc-test-XXXXXX");
    if (!mkdtemp(j->dir))
        return -1;
    (void)snprintf(j->path, sizeof(j->path), "%s/journal.db", j->dir);
    memset(ev, 0, sizeof(ev));
    for (int i = 0; i < 10; i++) {
        (void)snprintf(ids[i], sizeof(ids[i]), "e%d", i);
        ev[i].id = ids[i];
        ev[i].chain = "ain:0";
        ev[i].tx_hash = "0x00";
        ev[i].op_index = i;
    }
    jr_open(j, true);
    CHECK_INT(ocra_store_append(j->st, "ain:0", ev, 10, NULL, NULL, NULL), 0);
    return 0;
}

static void
jr_fini(struct jr *j)
{
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
    char p[128];

    jr_close(j);
    for (size_t i = 0; i < OCRA_ARRAY_LEN(suffix); i++) {
        (void)snprintf(p, sizeof(p), "%s%s", j->path, suffix[i]);
        (void)unlink(p);
    }
    (void)rmdir(j->dir);
}

static const char *
node_of(const struct jr *j, const struct ocra_sched_alloc *a)
{
    return ocra_sched_cluster_node(ocra_sched_allocator_cluster(j->a), (size_t)a->node)->name;
}

static void
test_restart_does_not_double_book(void)
{
    struct ocra_sched_req r = {.gpus = 2, .gpu_model = "A100", .cpu_milli = 1000};
    struct ocra_sched_alloc a, b;
    struct ocra_err err = {0};
    bool existed = true;
    struct jr j;

    CHECK_INT(jr_init(&j), 0);
    /* best-fit: the 2-GPU A100 node n2 first, then n0 */
    CHECK_INT(ocra_sched_allocate(j.a, "e0", 0, &r, &a, &existed, &err), 0);
    CHECK(!existed);
    CHECK_STR(node_of(&j, &a), "n2");
    CHECK_INT(ocra_sched_allocate(j.a, "e1", 0, &r, &a, &existed, &err), 0);
    CHECK_STR(node_of(&j, &a), "n0");
    CHECK_INT(a.n_devs, 2);
    CHECK(a.devs[0] == 0 && a.devs[1] == 1);
    jr_close(&j);

    jr_open(&j, true); /* a restart: the accounting comes back from the journal */
    CHECK_INT(ocra_sched_allocate(j.a, "e1", 0, &r, &b, &existed, &err), 0);
    CHECK(existed);
    CHECK_STR(node_of(&j, &b), "n0");
    CHECK(b.n_devs == 2 && b.devs[0] == 0 && b.devs[1] == 1);
    CHECK_INT(ocra_sched_allocate(j.a, "e2", 0, &r, &b, &existed, &err), 0);
    CHECK(!existed);
    CHECK_STR(node_of(&j, &b), "n0");
    CHECK(b.n_devs == 2 && b.devs[0] == 2 && b.devs[1] == 3); /* not e1's */
    CHECK_INT(ocra_sched_allocate(j.a, "e3", 0, &r, &b, &existed, &err), -1);
    CHECK_INT(err.code, EAGAIN);
    CHECK(strstr(err.msg, "allocate e3: no node has room now") != NULL);
    jr_fini(&j);
}

/* The queue decides over the allocator's cluster; the allocator records exactly that. */
static void
test_allocate_exact_records_the_queue_decision(void)
{
    struct ocra_sched_queued q = {.id = "e0", .req = {.gpus = 4, .gpu_model = "A100"}};
    struct ocra_sched_queue_conf conf = {OCRA_SCHED_Q_BACKFILL, OCRA_SCHED_BEST_FIT, 0, NULL, 0, 0};
    struct ocra_sched_alloc a, b;
    struct ocra_sched_plan plan;
    struct ocra_err err = {0};
    bool existed = true;
    struct jr j;

    CHECK_INT(jr_init(&j), 0);
    ocra_sched_plan_init(&plan);
    CHECK_INT(ocra_sched_queue_decide(ocra_sched_allocator_cluster(j.a), &conf, 0, NULL, 0, &q, 1,
                                      &plan, NULL, &err),
              0);
    CHECK_INT(plan.n_start, 1);
    CHECK_INT(ocra_sched_allocate_exact(j.a, "e0", 0, &plan.allocs[0], &a, &existed, &err), 0);
    CHECK(!existed);
    CHECK_STR(node_of(&j, &a), "n0");
    CHECK_INT(a.n_devs, 4);
    /* the same devices for another event: taken */
    CHECK_INT(ocra_sched_allocate_exact(j.a, "e1", 0, &plan.allocs[0], &b, &existed, &err), -1);
    CHECK_INT(err.code, EBUSY);
    jr_close(&j);
    jr_open(&j, true); /* a restart: held, the same devices */
    CHECK_INT(ocra_sched_allocate_exact(j.a, "e0", 0, &plan.allocs[0], &b, &existed, &err), 0);
    CHECK(existed);
    CHECK(b.node == a.node && b.n_devs == 4 && b.devs[3] == a.devs[3]);
    ocra_sched_plan_fini(&plan);
    jr_fini(&j);
}

static int
count_row(const struct ocra_store_alloc *row, void *arg)
{
    (void)row;
    ++*(int *)arg;
    return 0;
}

static void
test_release_and_reuse_keep_history(void)
{
    struct ocra_sched_req r = {.gpus = 4, .cpu_milli = 1000};
    struct ocra_sched_alloc a;
    struct ocra_err err = {0};
    int rows = 0;
    size_t n = 0;
    struct jr j;

    CHECK_INT(jr_init(&j), 0);
    CHECK_INT(ocra_sched_allocate(j.a, "e0", 0, &r, &a, NULL, &err), 0);
    CHECK_STR(node_of(&j, &a), "n0");
    CHECK_INT(ocra_sched_allocate(j.a, "e1", 0, &r, &a, NULL, &err), -1);
    CHECK_INT(err.code, EAGAIN);
    CHECK_INT(ocra_sched_allocator_release(j.a, "e0", -1, &n, &err), 0);
    CHECK_INT(n, 1);
    CHECK_INT(ocra_sched_allocator_release(j.a, "e0", -1, &n, &err), 0); /* again: nothing */
    CHECK_INT(n, 0);
    CHECK_INT(ocra_sched_allocate(j.a, "e1", 0, &r, &a, NULL, &err), 0);
    CHECK_STR(node_of(&j, &a), "n0");
    CHECK_INT(ocra_store_alloc_list(j.st, NULL, false, count_row, &rows, &err), 0);
    CHECK_INT(rows, 2); /* e0 released, e1 held */
    rows = 0;
    CHECK_INT(ocra_store_alloc_list(j.st, NULL, true, count_row, &rows, &err), 0);
    CHECK_INT(rows, 1);
    jr_fini(&j);
}

static void
test_filters_through_the_allocator(void)
{
    struct ocra_sched_req gang = {.gpus = 8};
    struct ocra_sched_req newer = {.gpus = 1, .min_driver = 545000000};
    struct ocra_sched_req t4 = {.gpus = 1, .gpu_model = "T4|L4"};
    struct ocra_sched_req h100 = {.gpus = 1, .gpu_model = "H100"};
    struct ocra_sched_alloc a;
    struct ocra_err err = {0};
    int rows = 0;
    struct jr j;

    CHECK_INT(jr_init(&j), 0);
    CHECK_INT(ocra_sched_allocate(j.a, "e0", 0, &gang, &a, NULL, &err), -1); /* 4+2+2 != 8 */
    CHECK_INT(err.code, ENOSPC);
    CHECK(strstr(err.msg, "has 8 GPUs (the largest has 4)") != NULL);
    CHECK_INT(ocra_sched_allocate(j.a, "e1", 0, &newer, &a, NULL, &err), 0);
    CHECK_STR(node_of(&j, &a), "n2"); /* the only driver >= 545 */
    CHECK_INT(ocra_sched_allocate(j.a, "e2", 0, &t4, &a, NULL, &err), 0);
    CHECK_STR(node_of(&j, &a), "n1");
    CHECK_INT(ocra_sched_allocate(j.a, "e3", 0, &h100, &a, NULL, &err), -1);
    CHECK_INT(err.code, ENOSPC);
    CHECK_STR(err.msg, "allocate e3: no node can ever host it: none of 3 has GPU model \"H100\"");
    newer.min_driver = 560000000;
    CHECK_INT(ocra_sched_allocate(j.a, "e4", 0, &newer, &a, NULL, &err), -1);
    CHECK(strstr(err.msg, "NVIDIA driver >= 560.0.00 (newest 550.54.14)") != NULL);
    CHECK_INT(ocra_store_alloc_list(j.st, NULL, false, count_row, &rows, &err), 0);
    CHECK_INT(rows, 2); /* a refusal records nothing */
    jr_fini(&j);
}

static void
test_shares_pack_and_survive_a_restart(void)
{
    struct ocra_sched_req half = {.gpus = 1, .gpu_milli = 500, .gpu_mem_mib = 8192};
    struct ocra_sched_req quarter = {.gpus = 1, .gpu_milli = 250, .gpu_mem_mib = 4096};
    const struct ocra_sched_node *n2;
    struct ocra_sched_alloc a, b;
    struct ocra_err err = {0};
    struct jr j;

    CHECK_INT(jr_init(&j), 0);
    CHECK_INT(ocra_sched_allocate(j.a, "e0", 0, &half, &a, NULL, &err), 0);
    CHECK_INT(ocra_sched_allocate(j.a, "e1", 0, &quarter, &b, NULL, &err), 0);
    /* best-fit packs the quarter beside the half, leaving whole GPUs whole */
    CHECK(a.node == b.node && a.devs[0] == b.devs[0]);
    CHECK_STR(node_of(&j, &a), "n1");
    jr_close(&j);
    jr_open(&j, true);
    n2 = ocra_sched_cluster_node(ocra_sched_allocator_cluster(j.a), 1);
    CHECK_STR(n2->name, "n1");
    CHECK_INT(n2->gpu_free_milli[0], 250);
    CHECK_INT(n2->gpu_mem_free[0], 40960 - 8192 - 4096);
    CHECK_INT(n2->gpu_free_milli[1], 1000);
    jr_fini(&j);
}

static void
test_node_gone_from_inventory_is_an_orphan(void)
{
    struct ocra_sched_req t4 = {.gpus = 2, .gpu_model = "T4"};
    struct ocra_sched_alloc a;
    struct ocra_err err = {0};
    const char *why = NULL;
    struct jr j;

    CHECK_INT(jr_init(&j), 0);
    CHECK_INT(ocra_sched_allocate(j.a, "e0", 0, &t4, &a, NULL, &err), 0);
    jr_close(&j);
    jr_open(&j, false); /* n1 left the inventory */
    CHECK_INT(ocra_sched_allocator_orphans(j.a, &why), 1);
    CHECK_STR(why, "e0: replica 0 is held on node n1, not in the inventory");
    CHECK_INT(ocra_sched_allocate(j.a, "e0", 0, &t4, &a, NULL, &err), -1);
    CHECK_INT(err.code, ENOENT);
    CHECK_INT(ocra_sched_allocator_release(j.a, "e0", 0, NULL, &err), 0);
    jr_fini(&j);
}

static struct ocra_store_alloc
row(const char *event, int replica, const char *node, int dev)
{
    struct ocra_store_alloc r;

    memset(&r, 0, sizeof(r));
    (void)snprintf(r.event_id, sizeof(r.event_id), "%s", event);
    (void)snprintf(r.node, sizeof(r.node), "%s", node);
    r.replica = replica;
    r.n_devs = 1;
    r.devs[0] = dev;
    r.gpu_milli = 1000;
    return r;
}

static void
test_journal_conflicts_never_double_count(void)
{
    struct ocra_store_alloc r5 = row("e5", 0, "n1", 0), r6 = row("e6", 0, "n1", 0);
    struct ocra_store_alloc nope = row("nope", 0, "n1", 1);
    struct ocra_sched_req t4 = {.gpus = 1, .gpu_model = "T4"};
    const struct ocra_sched_node *n1;
    struct ocra_sched_alloc a;
    struct ocra_err err = {0};
    struct jr j;

    CHECK_INT(jr_init(&j), 0);
    CHECK_INT(ocra_store_alloc_insert(j.st, &r5, &err), 0);
    CHECK_INT(ocra_store_alloc_insert(j.st, &r5, &err), -1); /* one held row per replica */
    CHECK_INT(err.code, EEXIST);
    CHECK_INT(ocra_store_alloc_insert(j.st, &nope, &err), -1); /* no such event */
    CHECK_INT(err.code, EINVAL);
    CHECK_INT(ocra_store_alloc_insert(j.st, &r6, &err), 0); /* the same device: a conflict */
    jr_close(&j);
    jr_open(&j, true);
    CHECK_INT(ocra_sched_allocator_orphans(j.a, NULL), 1);
    CHECK_INT(ocra_sched_allocate(j.a, "e6", 0, &t4, &a, NULL, &err), -1);
    CHECK_INT(err.code, EBUSY);
    CHECK_INT(ocra_sched_allocator_release(j.a, "e6", 0, NULL, &err), 0);
    n1 = ocra_sched_cluster_node(ocra_sched_allocator_cluster(j.a), 1);
    CHECK_INT(n1->gpu_free_milli[0], 0); /* still e5's: the orphan gave nothing back */
    CHECK_INT(ocra_sched_allocator_orphans(j.a, NULL), 0);
    CHECK_INT(ocra_sched_allocate(j.a, "e6", 0, &t4, &a, NULL, &err), 0);
    CHECK(a.n_devs == 1 && a.devs[0] == 1);
    CHECK_INT(ocra_sched_allocate(j.a, "e7", 0, &t4, &a, NULL, &err), -1);
    CHECK_INT(err.code, EAGAIN);
    jr_fini(&j);
}

static void
test_scale_places_and_releases_replicas(void)
{
    struct ocra_sched_req r = {.gpus = 1, .gpu_model = "A100"};
    struct ocra_sched_alloc a;
    struct ocra_err err = {0};
    bool existed = false;
    int have = 0;
    struct jr j;

    CHECK_INT(jr_init(&j), 0);
    CHECK_INT(ocra_sched_allocator_scale(j.a, "e0", &r, 3, &have, &err), 0);
    CHECK_INT(have, 3);
    CHECK_INT(ocra_sched_allocator_scale(j.a, "e0", &r, 1, &have, &err), 0);
    CHECK_INT(have, 1);
    jr_close(&j);
    jr_open(&j, true);
    CHECK_INT(ocra_sched_allocate(j.a, "e0", 0, &r, &a, &existed, &err), 0);
    CHECK(existed); /* replica 0 stayed; 1 and 2 went */
    CHECK_INT(ocra_sched_allocate(j.a, "e0", 2, &r, &a, &existed, &err), 0);
    CHECK(!existed);
    CHECK_INT(ocra_sched_allocator_scale(j.a, "e0", &r, 7, &have, &err), -1);
    CHECK_INT(have, 6); /* 6 A100s in all */
    CHECK_INT(err.code, EAGAIN);
    CHECK_INT(ocra_sched_allocator_scale(j.a, "e0", &r, 0, &have, &err), 0);
    CHECK_INT(have, 0);
    jr_fini(&j);
}

/* ---- autoscaling ----------------------------------------------------------------------- */

static struct ocra_sched_autoscaler
scaler(int min, int max)
{
    struct ocra_sched_autoscale_conf c = {.min = min,
                                          .max = max,
                                          .target = 10,
                                          .tolerance = 0.1,
                                          .up_cooldown_ms = 1000,
                                          .down_cooldown_ms = 5000};
    struct ocra_sched_autoscaler as;

    CHECK_INT(ocra_sched_autoscale_init(&as, &c, NULL), 0);
    return as;
}

static void
test_autoscale_bounds(void)
{
    struct ocra_sched_autoscaler as = scaler(2, 5);
    struct ocra_sched_autoscale_conf bad = as.conf;
    struct ocra_err err = {0};

    CHECK_INT(ocra_sched_autoscale_step(&as, 0, 0), 2); /* below min: min at once */
    ocra_sched_autoscale_set(&as, 0, 2);
    CHECK_INT(ocra_sched_autoscale_step(&as, 2000, 1000), 5); /* capped at max */
    CHECK_INT(ocra_sched_autoscale_step(&as, 2000, -1), 2);   /* never below min */
    ocra_sched_autoscale_set(&as, 2000, 5);
    CHECK_INT(ocra_sched_autoscale_step(&as, 100000, 0), 2);
    bad.min = 6;
    CHECK_INT(ocra_sched_autoscale_init(&as, &bad, &err), -1);
    CHECK(strstr(err.msg, "min 6") != NULL);
    bad = scaler(0, 1).conf;
    bad.target = 0;
    CHECK_INT(ocra_sched_autoscale_init(&as, &bad, &err), -1);
    CHECK(strstr(err.msg, "target") != NULL);
}

static void
test_autoscale_cooldowns(void)
{
    struct ocra_sched_autoscaler as = scaler(1, 10);

    ocra_sched_autoscale_set(&as, 0, 1);
    CHECK_INT(ocra_sched_autoscale_step(&as, 500, 35), 1); /* up cooldown: 1000 ms */
    CHECK_INT(ocra_sched_autoscale_step(&as, 1000, 35), 4);
    ocra_sched_autoscale_set(&as, 1000, 4);
    CHECK_INT(ocra_sched_autoscale_step(&as, 1500, 80), 4); /* up again too soon */
    CHECK_INT(ocra_sched_autoscale_step(&as, 2000, 80), 8);
    CHECK_INT(ocra_sched_autoscale_step(&as, 5999, 5), 4); /* down cooldown: 5000 ms */
    CHECK_INT(ocra_sched_autoscale_step(&as, 6000, 5), 1);
}

static void
test_autoscale_dead_band(void)
{
    struct ocra_sched_autoscaler as = scaler(0, 10);

    ocra_sched_autoscale_set(&as, 0, 4);                     /* 4 replicas aim at 40 */
    CHECK_INT(ocra_sched_autoscale_step(&as, 60000, 43), 4); /* within 10 %: stays */
    CHECK_INT(ocra_sched_autoscale_step(&as, 60000, 45), 5);
    CHECK_INT(ocra_sched_autoscale_step(&as, 60000, 37), 4); /* 37 > 36: stays */
    CHECK_INT(ocra_sched_autoscale_step(&as, 60000, 35), 4); /* ceil(3.5) = 4: stays */
    CHECK_INT(ocra_sched_autoscale_step(&as, 60000, 29), 3);
    CHECK_INT(ocra_sched_autoscale_step(&as, 60000, 0), 0); /* scale to zero (min 0) */
    ocra_sched_autoscale_set(&as, 60000, 0);
    CHECK_INT(ocra_sched_autoscale_step(&as, 61000, 1), 1); /* and back from it */
}

static void
test_requests_parse(void)
{
    static const char good[] = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
                               "2023-11-16 18:15:46.6805900,374,44\n"
                               "2023-11-16 18:15:50.9951690,396,109\n"
                               "2023-11-17 00:00:00,1,2\n";
    static const char order[] = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
                                "2023-11-16 18:15:46,1,1\n2023-11-16 18:15:45,1,1\n";
    static const char bad[] = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
                              "2023-13-16 18:15:46,1,1\n";
    struct ocra_sched_request *r = NULL;
    struct ocra_err err = {0};
    size_t n = 0;

    CHECK_INT(ocra_sched_requests_parse("t.csv", good, strlen(good), &r, &n, &err), 0);
    CHECK_INT(n, 3);
    if (n == 3) {
        CHECK_INT(r[0].arrival_ms, 0);
        CHECK_INT(r[1].arrival_ms, 4315); /* 50.995 - 46.680 (ms truncated) */
        CHECK_INT(r[2].arrival_ms, (5 * 3600 + 44 * 60 + 13) * 1000 + 320);
        CHECK_INT(r[1].context_tokens, 396);
        CHECK_INT(r[1].generated_tokens, 109);
    }
    free(r);
    CHECK_INT(ocra_sched_requests_parse("o.csv", order, strlen(order), &r, &n, &err), -1);
    CHECK_STR(err.msg, "o.csv:3: TIMESTAMP: earlier than the row before (rows in time order)");
    CHECK_INT(ocra_sched_requests_parse("b.csv", bad, strlen(bad), &r, &n, &err), -1);
    CHECK(strstr(err.msg, "b.csv:2: TIMESTAMP: not a time") != NULL);
}

static struct ocra_sched_replay_conf
replay_conf(int max)
{
    struct ocra_sched_replay_conf c = {.scale = {.min = 1,
                                                 .max = max,
                                                 .target = 2,
                                                 .tolerance = 0.1,
                                                 .up_cooldown_ms = 0,
                                                 .down_cooldown_ms = 10000},
                                       .interval_ms = 1000,
                                       .startup_ms = 2000,
                                       .slots = 2,
                                       .service_ms = 4000,
                                       .bucket_ms = 10000,
                                       .replica = {.gpus = 1},
                                       .policy = OCRA_SCHED_BEST_FIT};

    return c;
}

static void
test_replay_scales_up_and_down(void)
{
    struct ocra_sched_request reqs[200];
    struct ocra_sched_replay_conf c = replay_conf(8);
    struct ocra_sched_replay_result res;
    struct ocra_sched_node node;
    struct ocra_err err = {0};

    memset(&node, 0, sizeof(node));
    (void)snprintf(node.name, sizeof(node.name), "g");
    (void)snprintf(node.gpu_model, sizeof(node.gpu_model), "A100");
    node.gpu_count = 8;
    /* a burst of 10 requests/s for 20 s, then silence, then one request a minute later */
    memset(reqs, 0, sizeof(reqs));
    for (int i = 0; i < 199; i++)
        reqs[i].arrival_ms = i * 100;
    reqs[199].arrival_ms = 80000;
    CHECK_INT(ocra_sched_replay(&node, 1, reqs, 200, &c, &res, &err), 0);
    CHECK_INT(res.requests, 200);
    CHECK(res.waited > 0 && res.waited < 200);
    CHECK_INT(res.replicas_max, 8);
    CHECK(res.scale_ups >= 1 && res.scale_downs >= 1);
    CHECK_INT(res.place_failures, 0);
    CHECK(res.wait_p50_ms <= res.wait_p90_ms && res.wait_p90_ms <= res.wait_p99_ms &&
          res.wait_p99_ms <= res.wait_max_ms);
    CHECK_INT(res.n_buckets, 9);
    CHECK(res.buckets[0].replicas_min == 1 && res.buckets[0].replicas_max == 8);
    CHECK_INT(res.buckets[0].arrivals + res.buckets[1].arrivals, 199);
    CHECK_INT(res.buckets[8].replicas_max, 1); /* back to min by the last request */
    CHECK_INT(res.buckets[8].waited, 0);
    free(res.buckets);

    node.gpu_count = 2; /* the placer stops the scale-up at 2 replicas */
    CHECK_INT(ocra_sched_replay(&node, 1, reqs, 200, &c, &res, &err), 0);
    CHECK_INT(res.replicas_max, 2);
    CHECK(res.place_failures > 0);
    free(res.buckets);
    c.replica.gpus = 4; /* no replica fits at all */
    CHECK_INT(ocra_sched_replay(&node, 1, reqs, 200, &c, &res, &err), -1);
    CHECK_INT(err.code, ENOSPC);
}

OCRA_TEST_MAIN(OCRA_TEST(test_nvml_absent_library_means_zero_gpus),
               OCRA_TEST(test_nvml_fake_library_is_read),
               OCRA_TEST(test_nvml_failing_init_mixed_models_no_gpu),
               OCRA_TEST(test_local_discovery_records_sources),
               OCRA_TEST(test_configured_node_is_completed_not_overridden),
               OCRA_TEST(test_other_node_sources_and_conflicts),
               OCRA_TEST(test_restart_does_not_double_book),
               OCRA_TEST(test_allocate_exact_records_the_queue_decision),
               OCRA_TEST(test_release_and_reuse_keep_history),
               OCRA_TEST(test_filters_through_the_allocator),
               OCRA_TEST(test_shares_pack_and_survive_a_restart),
               OCRA_TEST(test_node_gone_from_inventory_is_an_orphan),
               OCRA_TEST(test_journal_conflicts_never_double_count),
               OCRA_TEST(test_scale_places_and_releases_replicas), OCRA_TEST(test_autoscale_bounds),
               OCRA_TEST(test_autoscale_cooldowns), OCRA_TEST(test_autoscale_dead_band),
               OCRA_TEST(test_requests_parse), OCRA_TEST(test_replay_scales_up_and_down))
