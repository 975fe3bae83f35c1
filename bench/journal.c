/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench/journal.c: how fast the journal takes chain events, by batch size. For each mode
 * (1, 100 and 1,000 events per ocra_store_append, i.e. per transaction, each with a cursor
 * update) it creates a fresh journal in a temporary directory, appends N synthetic AIN events
 * (default 20,000; --events N), checks the row count, and prints seconds, events per second
 * and the ratio against the 1-per-transaction run of the same invocation. Exits 0.
 */
#include "store/store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ID_MAX 96

static const char spec_json[] =
    "{\"modelVersion\":\"1.2.0\",\"name\":\"sentiment-bert\",\"toolsAndLibraries\":"
    "{\"PyTorch\":\"2.1.0\",\"transformers\":\"4.35.2\"},\"workload\":{\"dtype\":\"fp16\","
    "\"gpus\":1,\"params\":110000000,\"type\":\"inference\"}}";

struct corpus {
    size_t n;
    char (*id)[ID_MAX];
    char (*tx)[OCRA_STORE_HASH_MAX];
    struct ocra_store_event *ev;
};

/* n events, three operations per transaction, ten transactions per block. */
static void
corpus_init(struct corpus *c, size_t n)
{
    c->n = n;
    c->id = ocra_xcalloc(n, sizeof(*c->id));
    c->tx = ocra_xcalloc(n, sizeof(*c->tx));
    c->ev = ocra_xcalloc(n, sizeof(*c->ev));
    for (size_t i = 0; i < n; i++) {
        (void)snprintf(c->tx[i], sizeof(c->tx[i]), "0x%064zx", i / 3);
        (void)snprintf(c->id[i], sizeof(c->id[i]), "ain:0:%s:%zu", c->tx[i], i % 3);
        c->ev[i] = (struct ocra_store_event){
            .id = c->id[i],
            .chain = "ain:0",
            .block_number = (int64_t)(i / 30),
            .tx_hash = c->tx[i],
            .op_index = (int64_t)(i % 3),
            .signer = "0x09a0d53fdf1c36a131938eb379b98910e55eefe1",
            .trusted = true,
            .path = "/apps/ocra/models/sentiment-bert",
            .spec = spec_json,
        };
    }
}

static void
corpus_fini(struct corpus *c)
{
    free(c->id);
    free(c->tx);
    free(c->ev);
}

static int
append_all(struct ocra_store *st, const struct corpus *c, size_t per_tx, struct ocra_err *err)
{
    struct ocra_store_cursor cur = {0};
    size_t ins, k;

    for (size_t i = 0; i < c->n; i += per_tx) {
        k = c->n - i < per_tx ? c->n - i : per_tx;
        cur.block_number = c->ev[i + k - 1].block_number;
        (void)snprintf(cur.block_hash, sizeof(cur.block_hash), "0x%064" PRIx64,
                       (uint64_t)cur.block_number);
        if (ocra_store_append(st, "ain:0", &c->ev[i], k, &cur, &ins, err) < 0)
            return -1;
        if (ins != k)
            return ocra_err_set(err, 0, "batch at %zu: %zu new rows, want %zu", i, ins, k);
    }
    return 0;
}

/* Appends the corpus to a fresh journal, per_tx events per transaction; *secs is the time. */
static int
run_mode(const struct corpus *c, size_t per_tx, double *secs, struct ocra_err *err)
{
    char dir[] = "/tmp/ocra-bench-journal-XXXXXX", path[128], p[160];
    static const char *const suffix[] = {"", "-wal", "-shm"};
    struct ocra_store *st = NULL;
    uint64_t t0;
    int64_t rows = 0;
    int ret = -1;

    if (!mkdtemp(dir))
        return ocra_err_sys(err, "mkdtemp");
    (void)snprintf(path, sizeof(path), "%s/journal.db", dir);
    if (ocra_store_open(path, &st, err) < 0)
        goto out;
    t0 = ocra_time_mono_ns();
    if (append_all(st, c, per_tx, err) < 0)
        goto out;
    *secs = (double)(ocra_time_mono_ns() - t0) / 1e9;
    if (ocra_store_event_count(st, &rows, err) < 0)
        goto out;
    if (rows != (int64_t)c->n) {
        ocra_err_set(err, 0, "%" PRId64 " rows, want %zu", rows, c->n);
        goto out;
    }
    ret = 0;
out:
    ocra_store_close(st);
    for (size_t i = 0; i < OCRA_ARRAY_LEN(suffix); i++) {
        (void)snprintf(p, sizeof(p), "%s%s", path, suffix[i]);
        (void)unlink(p);
    }
    (void)rmdir(dir);
    return ret;
}

static int
parse_args(int argc, char **argv, size_t *events)
{
    struct ocra_err err = {0};
    int64_t v;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--events") == 0 && i + 1 < argc) {
            if (ocra_parse_i64(argv[++i], 1, 10000000, &v, &err) < 0) {
                fprintf(stderr, "bench_journal: --events: %s\n", err.msg);
                return -1;
            }
            *events = (size_t)v;
        } else {
            fprintf(stderr, "usage: bench_journal [--events N]   (default 20000)\n");
            return -1;
        }
    }
    return 0;
}

int
main(int argc, char **argv)
{
    static const size_t per_tx[] = {1, 100, 1000};
    struct ocra_err err = {0};
    struct corpus c;
    size_t events = 20000;
    double secs = 0, base = 0;
    char label[32];

    if (parse_args(argc, argv, &events) < 0)
        return 2;
    corpus_init(&c, events);
    printf("bench/journal: %zu events per mode, fresh journal each (WAL, synchronous=NORMAL)\n",
           events);
    printf("%-10s %10s %9s %11s %7s\n", "mode", "events", "seconds", "events/s", "ratio");
    for (size_t m = 0; m < OCRA_ARRAY_LEN(per_tx); m++) {
        if (run_mode(&c, per_tx[m], &secs, &err) < 0) {
            fprintf(stderr, "bench_journal: %zu per transaction: %s\n", per_tx[m], err.msg);
            corpus_fini(&c);
            return 1;
        }
        if (m == 0)
            base = (double)events / secs;
        (void)snprintf(label, sizeof(label), "%zu/tx", per_tx[m]);
        printf("%-10s %10zu %9.3f %11.0f %6.1fx\n", label, events, secs, (double)events / secs,
               (double)events / secs / base);
    }
    corpus_fini(&c);
    return 0;
}
