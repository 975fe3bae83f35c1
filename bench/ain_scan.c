/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench/ain_scan.c: how fast the AIN scanner replays the recorded chain (blocks 0..67 with
 * the scenario's writes) from the loopback recorded-traffic server (bench/ain_scan.sh starts
 * it). Two modes, each over --rounds rounds (default 30): `fetch` reads the blocks with the
 * same JSON-RPC calls the scanner makes and does nothing else (the baseline: the cost of the
 * node and the transport); `scan` runs the scanner into a fresh journal each round (fetch,
 * signer recovery for every transaction, merging, one journal transaction per block). Prints
 * blocks/s, events/s and the time ratio scan/fetch of the same invocation. Exits 0.
 */
#include "chain/ain/ain.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *allow[] = {"0x22fF60c8E1bEdeED288BBA0c4b1344B1A6115aB2",
                              "0x90B6746CC1Ca479a39fc04C1c5DB6EA5fb174613"};

static double
seconds_since(uint64_t t0)
{
    return (double)(ocra_time_mono_ns() - t0) / 1e9;
}

/* Reads blocks [0, head] in batches of 20; returns the number of blocks read. */
static int64_t
fetch_all(struct ocra_ain_rpc *rpc, int64_t head)
{
    int64_t blocks = 0;

    for (int64_t from = 0; from <= head; from += 20) {
        json_t *p = json_pack("{s:I,s:I}", "from", (json_int_t)from, "to",
                              (json_int_t)(from + 20 > head + 1 ? head + 1 : from + 20));
        json_t *v = ocra_ain_rpc_call(rpc, "ain_getLastBlockNumber", NULL, NULL, NULL);
        json_t *list = ocra_ain_rpc_call(rpc, "ain_getBlockList", p, NULL, NULL);

        blocks += (int64_t)json_array_size(list);
        json_decref(v);
        json_decref(list);
        json_decref(p);
    }
    return blocks;
}

/* One scan from block 0 into a fresh journal; returns the events journaled or -1. */
static int64_t
scan_once(struct ocra_ain_rpc *rpc, const char *dir, int round)
{
    struct ocra_ain_watch watch[] = {{"/apps/ocra_demo/models/$name", allow, 2},
                                     {"/apps/ocra_demo/model/version", allow, 2}};
    struct ocra_ain_scan_opts so = {.rpc = rpc, .watch = watch, .n_watch = 2, .from_block = 0};
    char *path = ocra_xasprintf("%s/journal-%d.db", dir, round);
    struct ocra_ain_scanner *sc = NULL;
    struct ocra_err err = {0};
    size_t n = 0;
    bool caught_up = false;
    int64_t ret = -1;

    if (ocra_store_open(path, &so.store, &err) < 0)
        goto out;
    sc = ocra_ain_scanner_new(&so, &err);
    if (sc && ocra_ain_scanner_poll(sc, &n, &caught_up, &err) == 0 && caught_up)
        ret = (int64_t)n;
out:
    if (ret < 0)
        fprintf(stderr, "scan: %s\n", err.msg);
    ocra_ain_scanner_free(sc);
    ocra_store_close(so.store);
    free(path);
    return ret;
}

int
main(int argc, char **argv)
{
    struct ocra_ain_rpc_opts ro = {.url = NULL, .retries = 2};
    const int64_t head = 67;
    int rounds = 30;
    char dir[] = "/tmp/ocra_bench_ain_XXXXXX";
    double t_fetch, t_scan;
    int64_t blocks = 0, events = 0;
    struct ocra_ain_rpc *rpc;
    uint64_t t0;

    for (int i = 1; i + 1 < argc; i += 2) {
        int64_t v = 0;

        if (strcmp(argv[i], "--rpc") == 0)
            ro.url = argv[i + 1];
        else if (strcmp(argv[i], "--rounds") == 0 &&
                 ocra_parse_i64(argv[i + 1], 1, 100000, &v, NULL) == 0)
            rounds = (int)v;
        else
            rounds = 0;
    }
    if (!ro.url || rounds <= 0 || !mkdtemp(dir)) {
        fprintf(stderr, "usage: bench_ain_scan --rpc URL [--rounds N]\n");
        return 2;
    }
    rpc = ocra_ain_rpc_new(&ro);
    t0 = ocra_time_mono_ns();
    for (int r = 0; r < rounds; r++)
        blocks += fetch_all(rpc, head);
    t_fetch = seconds_since(t0);
    t0 = ocra_time_mono_ns();
    for (int r = 0; r < rounds; r++) {
        int64_t n = scan_once(rpc, dir, r);

        if (n < 0)
            return 1;
        events += n;
    }
    t_scan = seconds_since(t0);
    printf("%-6s %6s %7s %7s %8s %9s %9s %6s\n", "mode", "rounds", "blocks", "events", "seconds",
           "blocks/s", "events/s", "ratio");
    printf("%-6s %6d %7lld %7s %8.3f %9.0f %9s %6.2f\n", "fetch", rounds, (long long)blocks, "-",
           t_fetch, (double)blocks / t_fetch, "-", 1.0);
    printf("%-6s %6d %7lld %7lld %8.3f %9.0f %9.0f %6.2f\n", "scan", rounds, (long long)blocks,
           (long long)events, t_scan, (double)blocks / t_scan, (double)events / t_scan,
           t_scan / t_fetch);
    for (int r = 0; r < rounds; r++) {
        char *p = ocra_xasprintf("%s/journal-%d.db", dir, r);
        char *wal = ocra_xasprintf("%s-wal", p), *shm = ocra_xasprintf("%s-shm", p);

        unlink(p);
        unlink(wal);
        unlink(shm);
        free(p);
        free(wal);
        free(shm);
    }
    rmdir(dir);
    ocra_ain_rpc_free(rpc);
    return 0;
}
