/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench/evm_backfill.c: how fast the EVM source backfills a chain. Against a node already
 * holding the ModelRegistry contract and its events (bench/evm_backfill.sh makes a local anvil
 * chain of 10,000 blocks and 2,000 publishes), it runs the source from block 0 to the head
 * with 0 confirmations into a fresh journal, once per range size (blocks per eth_getLogs range
 * and journal transaction), and prints seconds, blocks/s, events/s and RPC requests. Baseline
 * `getLogs`: the same eth_getLogs ranges and nothing else. Checks the event count. Exits 0.
 *
 *   bench_evm_backfill URL CONTRACT [--events N] [--rounds N]
 */
#include "chain/evm/evm.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct result {
    double s;
    size_t events;
    unsigned long requests;
};

static double
now_s(void)
{
    return (double)ocra_time_mono_ns() / 1e9;
}

/* Plain eth_getLogs over [0, head] in ranges of `batch`: the floor any indexer pays. */
static int
run_getlogs(const char *url, const char *contract, int64_t head, int64_t batch, struct result *r)
{
    const char *urls[] = {url};
    struct ocra_evm_rpc_opts ro = {.urls = urls, .n_urls = 1};
    struct ocra_evm_rpc *rpc = ocra_evm_rpc_new(&ro, NULL);
    double t0 = now_s();

    r->events = 0;
    for (int64_t from = 0; from <= head; from += batch) {
        int64_t to = from + batch - 1 < head ? from + batch - 1 : head;
        json_t *logs =
            ocra_evm_get_logs(rpc, from, to, contract, OCRA_EVM_TOPIC_MODEL_PUBLISHED, NULL, NULL);

        if (!logs)
            return -1;
        r->events += json_array_size(logs);
        json_decref(logs);
    }
    r->s = now_s() - t0;
    r->requests = ocra_evm_rpc_requests(rpc);
    ocra_evm_rpc_free(rpc);
    return 0;
}

static int
run_source(const char *url, const char *contract, int64_t head, int64_t batch, struct result *r)
{
    char dir[] = "/tmp/ocra-bench-evm.XXXXXX", path[64];
    const char *urls[] = {url}, *allow[] = {"0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"};
    struct ocra_evm_source_opts o = {.rpc_urls = urls,
                                     .n_rpc_urls = 1,
                                     .contract = contract,
                                     .confirmations = 0,
                                     .from_block = 0,
                                     .to_block = head,
                                     .batch_blocks = batch,
                                     .allow = allow,
                                     .n_allow = 1};
    struct ocra_err err = {0};
    struct ocra_store *st = NULL;
    struct ocra_source *src = NULL;
    struct ocra_evm_stats stats;
    bool caught_up = false;
    double t0;
    int ret = -1;

    if (!mkdtemp(dir))
        return -1;
    (void)snprintf(path, sizeof(path), "%s/j.db", dir);
    if (ocra_store_open(path, &st, &err) < 0)
        goto out;
    o.store = st;
    t0 = now_s();
    r->events = 0;
    if (!(src = ocra_evm_source_new(&o, &err)) ||
        src->poll(src, &r->events, &caught_up, &err) < 0 || !caught_up)
        goto out;
    r->s = now_s() - t0;
    ocra_evm_source_stats(src, &stats);
    r->requests = stats.requests;
    ret = 0;
out:
    if (ret < 0)
        fprintf(stderr, "bench_evm_backfill: %s\n", err.msg);
    if (src)
        src->free(src);
    ocra_store_close(st);
    (void)unlink(path);
    (void)snprintf(path, sizeof(path), "%s/j.db-wal", dir);
    (void)unlink(path);
    (void)snprintf(path, sizeof(path), "%s/j.db-shm", dir);
    (void)unlink(path);
    (void)rmdir(dir);
    return ret;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = ((const struct result *)a)->s, y = ((const struct result *)b)->s;

    return x < y ? -1 : x > y;
}

/* The median of `rounds` runs. */
static int
measure(bool source, const char *url, const char *contract, int64_t head, int64_t batch, int rounds,
        struct result *out)
{
    struct result rs[16];

    for (int i = 0; i < rounds; i++)
        if ((source ? run_source : run_getlogs)(url, contract, head, batch, &rs[i]) < 0)
            return -1;
    qsort(rs, (size_t)rounds, sizeof(rs[0]), cmp_double);
    *out = rs[rounds / 2];
    return 0;
}

int
main(int argc, char **argv)
{
    static const int64_t batches[] = {500, 2000, 10000};
    const char *urls[1];
    struct ocra_evm_rpc_opts ro = {.urls = urls, .n_urls = 1};
    struct ocra_evm_rpc *rpc;
    int64_t head = 0, want = -1, rounds = 3;

    if (argc < 3) {
        fprintf(stderr, "usage: bench_evm_backfill URL CONTRACT [--events N] [--rounds N]\n");
        return 2;
    }
    for (int i = 3; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--events") == 0)
            (void)ocra_parse_i64(argv[i + 1], 0, INT64_MAX, &want, NULL);
        else if (strcmp(argv[i], "--rounds") == 0)
            (void)ocra_parse_i64(argv[i + 1], 1, 15, &rounds, NULL);
    }
    urls[0] = argv[1];
    ocra_log_setup(OCRA_LOG_WARN, OCRA_LOG_TEXT);
    rpc = ocra_evm_rpc_new(&ro, NULL);
    if (!rpc || ocra_evm_block_number(rpc, &head, NULL) < 0) {
        fprintf(stderr, "bench_evm_backfill: no node at %s\n", argv[1]);
        return 1;
    }
    ocra_evm_rpc_free(rpc);
    printf("bench/evm_backfill: blocks 0..%lld, median of %lld rounds, fresh journal each\n",
           (long long)head, (long long)rounds);
    printf("%-8s %7s %7s %8s %10s %10s %9s %6s\n", "mode", "range", "events", "seconds", "blocks/s",
           "events/s", "requests", "ratio");
    for (size_t b = 0; b < OCRA_ARRAY_LEN(batches); b++) {
        struct result base, src;

        if (measure(false, argv[1], argv[2], head, batches[b], (int)rounds, &base) < 0 ||
            measure(true, argv[1], argv[2], head, batches[b], (int)rounds, &src) < 0)
            return 1;
        for (int k = 0; k < 2; k++) {
            const struct result *r = k ? &src : &base;

            printf("%-8s %7lld %7zu %8.3f %10.0f %10.0f %9lu %5.2fx\n", k ? "source" : "getLogs",
                   (long long)batches[b], r->events, r->s, (double)(head + 1) / r->s,
                   (double)r->events / r->s, r->requests, r->s / base.s);
        }
        if (want >= 0 && (int64_t)src.events != want)
            fprintf(stderr, "bench_evm_backfill: %zu events, want %lld\n", src.events,
                    (long long)want);
    }
    return 0;
}
