/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench/sched_alloc.c: the allocator over a journal on disk (docs/BENCHMARKS.md). Every pod of
 * an openb pod list becomes an event; each is allocated with best-fit and recorded (one
 * transaction each, pods never leave), then asked again (the held allocation comes back),
 * then the journal is reopened (the accounting rebuilt from every held row), then all are
 * released. Rates are per second of wall time, with the in-memory placer on the same pods
 * as the baseline; the placed and failed counts must equal the simulator's.
 *
 *   bench_sched_alloc --nodes NODES.csv --pods PODS.csv
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "sched/sched.h"
#include "store/store.h"

struct bench {
    struct ocra_sched_node *nodes;
    struct ocra_sched_pod *pods;
    size_t nn, np;
    char dir[64], path[96];
    char (*ids)[32];
    struct ocra_store *st;
    struct ocra_sched_inventory inv;
    struct ocra_sched_allocator *a;
};

static int
load(const char *nodes, const char *pods, struct bench *b)
{
    struct ocra_err err = {0};
    char *text = NULL;
    size_t len = 0;
    int r = ocra_file_read(nodes, 64u << 20, &text, &len, &err);

    if (r == 0)
        r = ocra_sched_nodes_parse(nodes, text, len, &b->nodes, &b->nn, &err);
    free(text);
    text = NULL;
    if (r == 0)
        r = ocra_file_read(pods, 64u << 20, &text, &len, &err);
    if (r == 0)
        r = ocra_sched_pods_parse(pods, text, len, &b->pods, &b->np, &err);
    free(text);
    if (r == 0)
        r = ocra_sched_inventory_add(&b->inv, b->nodes, b->nn, "csv", &err);
    if (r < 0)
        fprintf(stderr, "bench_sched_alloc: %s\n", err.msg);
    return r;
}

/* A fresh journal holding one event per pod. */
static int
journal(struct bench *b)
{
    struct ocra_store_event *ev = ocra_xcalloc(b->np, sizeof(*ev));
    struct ocra_err err = {0};
    int r;

    (void)snprintf(b->dir, sizeof(b->dir), "/tmp/ocra-bench-alloc-XXXXXX");
    if (!mkdtemp(b->dir))
        return -1;
    (void)snprintf(b->path, sizeof(b->path), "%s/journal.db", b->dir);
    b->ids = ocra_xcalloc(b->np, sizeof(*b->ids));
    for (size_t i = 0; i < b->np; i++) {
        (void)snprintf(b->ids[i], sizeof(b->ids[i]), "bench:%zu", i);
        ev[i].id = b->ids[i];
        ev[i].chain = "bench:0";
        ev[i].tx_hash = "0x00";
        ev[i].op_index = (int64_t)i;
    }
    r = ocra_store_open(b->path, &b->st, &err);
    if (r == 0)
        r = ocra_store_append(b->st, "bench:0", ev, b->np, NULL, NULL, &err);
    free(ev);
    if (r < 0)
        fprintf(stderr, "bench_sched_alloc: %s\n", err.msg);
    return r;
}

static void
req_of(const struct ocra_sched_pod *p, struct ocra_sched_req *r)
{
    memset(r, 0, sizeof(*r));
    r->gpus = p->gpus;
    r->gpu_milli = p->gpu_milli;
    r->gpu_model = p->gpu_spec[0] ? p->gpu_spec : NULL;
    r->cpu_milli = p->cpu_milli;
    r->ram_mib = p->ram_mib;
}

/* Allocates every pod once; counts the placed ones and the ones that were already held. */
static double
allocate_all(struct bench *b, size_t *placed, size_t *existing)
{
    struct ocra_sched_alloc a;
    struct ocra_sched_req r;
    uint64_t t0 = ocra_time_mono_ns();
    bool ex;

    *placed = *existing = 0;
    for (size_t i = 0; i < b->np; i++) {
        req_of(&b->pods[i], &r);
        if (ocra_sched_allocate(b->a, b->ids[i], 0, &r, &a, &ex, NULL) == 0) {
            (*placed)++;
            *existing += ex;
        }
    }
    return (double)b->np * 1e9 / (double)(ocra_time_mono_ns() - t0);
}

static double
release_all(struct bench *b)
{
    uint64_t t0 = ocra_time_mono_ns();

    for (size_t i = 0; i < b->np; i++)
        (void)ocra_sched_allocator_release(b->a, b->ids[i], 0, NULL, NULL);
    return (double)b->np * 1e9 / (double)(ocra_time_mono_ns() - t0);
}

static void
cleanup(struct bench *b)
{
    static const char *const suffix[] = {"", "-wal", "-shm"};
    char p[128];

    ocra_sched_allocator_free(b->a);
    ocra_store_close(b->st);
    for (size_t i = 0; b->dir[0] && i < OCRA_ARRAY_LEN(suffix); i++) {
        (void)snprintf(p, sizeof(p), "%s%s", b->path, suffix[i]);
        (void)unlink(p);
    }
    if (b->dir[0])
        (void)rmdir(b->dir);
    ocra_sched_inventory_fini(&b->inv);
    free(b->nodes);
    free(b->pods);
    free(b->ids);
}

static int
run(struct bench *b)
{
    struct ocra_sched_sim_conf conf = {OCRA_SCHED_BEST_FIT, false, OCRA_SCHED_SEARCH_INDEX};
    struct ocra_sched_sim_result sim;
    size_t placed, existing, placed2, existing2;
    double first, again, reopen_ms, rel, before, reopened, released;
    uint64_t t0;

    if (ocra_sched_simulate(b->nodes, b->nn, b->pods, b->np, &conf, &sim, NULL) < 0 ||
        ocra_sched_allocator_open(b->st, &b->inv, OCRA_SCHED_BEST_FIT, 0, &b->a, NULL) < 0)
        return -1;
    first = allocate_all(b, &placed, &existing);
    again = allocate_all(b, &placed2, &existing2);
    before = ocra_sched_free_share(ocra_sched_allocator_cluster(b->a));
    ocra_sched_allocator_free(b->a);
    b->a = NULL;
    t0 = ocra_time_mono_ns();
    if (ocra_sched_allocator_open(b->st, &b->inv, OCRA_SCHED_BEST_FIT, 0, &b->a, NULL) < 0)
        return -1;
    reopen_ms = (double)(ocra_time_mono_ns() - t0) / 1e6;
    reopened = ocra_sched_free_share(ocra_sched_allocator_cluster(b->a));
    rel = release_all(b);
    released = ocra_sched_free_share(ocra_sched_allocator_cluster(b->a));
    printf("\n%-34s %12s\n", "step (best-fit, pods never leave)", "per second");
    printf("%-34s %12.0f\n", "placer in memory (baseline)",
           (double)sim.decisions * 1e9 / (double)(sim.ns ? sim.ns : 1));
    printf("%-34s %12.0f\n", "allocate + record (1 tx each)", first);
    printf("%-34s %12.0f\n", "allocate again (held, 1 tx each)", again);
    printf("%-34s %12.0f\n", "release (1 tx each)", rel);
    printf("\nplaced %zu, refused %zu (simulator: %zu, %zu); asked again: %zu held, %zu new\n",
           placed, b->np - placed, sim.placed, sim.failed, existing2, placed2 - existing2);
    printf("reopen with %zu held allocations: %.1f ms; free share %.4f before, %.4f after the "
           "reopen, %.4f after the releases\n",
           placed, reopen_ms, before, reopened, released);
    return placed == sim.placed && existing2 == placed && placed2 == placed && reopened == before &&
                   released == 1.0
               ? 0
               : -1;
}

int
main(int argc, char **argv)
{
    struct bench b;
    int ret = 1;

    memset(&b, 0, sizeof(b));
    ocra_sched_inventory_init(&b.inv);
    if (argc != 5 || strcmp(argv[1], "--nodes") != 0 || strcmp(argv[3], "--pods") != 0) {
        fprintf(stderr, "usage: bench_sched_alloc --nodes CSV --pods CSV\n");
        return 2;
    }
    if (load(argv[2], argv[4], &b) == 0 && journal(&b) == 0) {
        printf("bench/sched_alloc: %zu nodes, %zu pods as events, journal %s\n", b.nn, b.np,
               b.path);
        ret = run(&b) == 0 ? 0 : 1;
        if (ret)
            fprintf(stderr, "bench_sched_alloc: the allocator and the simulator disagree\n");
    }
    cleanup(&b);
    return ret;
}
