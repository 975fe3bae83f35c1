/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench/daemon_burst.c: how fast the daemon's stage machine carries a burst of journaled
 * events through validation and planning, by worker count, and its resident memory. For each
 * worker count (--workers 1,2,4) it creates a fresh journal, starts the daemon with the real
 * stage table (no watchers, reporting off), measures the resident set idle, appends N events
 * (default 1,000; --events N) in one transaction, and waits until every event has been
 * validated, planned and stopped at the toolchain stage (dead-lettered there at once: the
 * benchmark configures no registry, so nothing is fetched or built). It prints
 * seconds, events per second, the ratio against the 1-worker run of the same invocation, and
 * the resident set idle and at its peak during the burst. Exits 0.
 */
#include "daemon/daemon.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ID_MAX 96

struct corpus {
    size_t n;
    char (*id)[ID_MAX];
    char (*tx)[OCRA_STORE_HASH_MAX];
    char (*spec)[256];
    char (*path)[64];
    struct ocra_store_event *ev;
};

static void
corpus_init(struct corpus *c, size_t n)
{
    c->n = n;
    c->id = ocra_xcalloc(n, sizeof(*c->id));
    c->tx = ocra_xcalloc(n, sizeof(*c->tx));
    c->spec = ocra_xcalloc(n, sizeof(*c->spec));
    c->path = ocra_xcalloc(n, sizeof(*c->path));
    c->ev = ocra_xcalloc(n, sizeof(*c->ev));
    for (size_t i = 0; i < n; i++) {
        (void)snprintf(c->tx[i], sizeof(c->tx[i]), "0x%064zx", i);
        (void)snprintf(c->id[i], sizeof(c->id[i]), "ain:0:%s:0", c->tx[i]);
        (void)snprintf(c->path[i], sizeof(c->path[i]), "/apps/bench/models/m%zu", i);
        (void)snprintf(c->spec[i], sizeof(c->spec[i]),
                       "{\"name\":\"m%zu\",\"modelVersion\":\"1.0.%zu\",\"toolsAndLibraries\":"
                       "{\"PyTorch\":\"2.1.0\",\"transformers\":\"4.35.2\"},\"workload\":"
                       "{\"params\":110000000,\"dtype\":\"fp16\"}}",
                       i, i);
        c->ev[i] = (struct ocra_store_event){.id = c->id[i],
                                             .chain = "ain:0",
                                             .block_number = (int64_t)i,
                                             .tx_hash = c->tx[i],
                                             .trusted = true,
                                             .path = c->path[i],
                                             .spec = c->spec[i]};
    }
}

static void
corpus_fini(struct corpus *c)
{
    free(c->id);
    free(c->tx);
    free(c->spec);
    free(c->path);
    free(c->ev);
}

/* VmRSS or VmHWM of this process in KiB. */
static long
status_kib(const char *key)
{
    char line[256];
    long v = -1;
    FILE *f = fopen("/proc/self/status", "r");

    while (f && fgets(line, sizeof(line), f)) {
        char *p = line + strlen(key), *end;
        int64_t kib = -1;

        if (strncmp(line, key, strlen(key)) != 0)
            continue;
        p += strspn(p, " \t");
        end = p + strspn(p, "0123456789");
        *end = '\0';
        if (ocra_parse_i64(p, 0, INT64_MAX, &kib, NULL) == 0)
            v = (long)kib;
    }
    if (f)
        fclose(f);
    return v;
}

/* Resets VmHWM to the current resident set (Linux 4.0+). */
static void
reset_peak(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");

    if (f) {
        fputs("5", f);
        fclose(f);
    }
}

/* Events that stopped: waiting or dead-lettered, from the journal's counters. */
static void
count(const char *state, const char *status, const char *outcome, int64_t n, void *arg)
{
    (void)status;
    (void)outcome;
    if (!strcmp(state, "waiting") || !strcmp(state, "dead"))
        *(size_t *)arg += (size_t)n;
}

struct result {
    double seconds;
    long rss_idle, rss_peak;
};

static int
run(const struct corpus *c, int workers, struct result *r)
{
    char dir[] = "/tmp/ocra-bench-daemon-XXXXXX", path[96];
    struct ocra_daemon_opts o = {.no_watch = true};
    struct ocra_daemon *d = NULL;
    struct ocra_store *st = NULL;
    struct ocra_config cfg;
    struct ocra_err err = {0};
    size_t done = 0;
    uint64_t t0;
    int ret = -1;

    if (!mkdtemp(dir))
        return -1;
    (void)snprintf(path, sizeof(path), "%s/journal.db", dir);
    ocra_config_init(&cfg);
    free(cfg.journal_path);
    cfg.journal_path = ocra_xstrdup(path);
    cfg.daemon_workers = workers;
    cfg.daemon.poll_ms = 20;
    cfg.daemon.report = false;
    o.cfg = &cfg;
    if (ocra_store_open(path, &st, &err) < 0 || ocra_daemon_new(&o, &d, &err) < 0 ||
        ocra_daemon_start(d, &err) < 0)
        goto out;
    usleep(200000);
    r->rss_idle = status_kib("VmRSS:");
    reset_peak();
    t0 = ocra_time_mono_ns();
    if (ocra_store_append(st, "ain:0", c->ev, c->n, NULL, NULL, &err) < 0)
        goto out;
    while (done < c->n) {
        if (ocra_daemon_tick(d, &err) < 0)
            goto out;
        usleep(5000);
        done = 0;
        if (ocra_store_pipeline_counts(st, count, &done, &err) < 0)
            goto out;
    }
    r->seconds = (double)(ocra_time_mono_ns() - t0) / 1e9;
    r->rss_peak = status_kib("VmHWM:");
    ret = 0;
out:
    if (ret < 0)
        fprintf(stderr, "bench/daemon_burst: %s\n", err.msg);
    ocra_daemon_free(d);
    ocra_store_close(st);
    ocra_config_fini(&cfg);
    for (const char *sfx = ""; sfx; sfx = !*sfx ? "-wal" : !strcmp(sfx, "-wal") ? "-shm" : NULL) {
        char p[128];

        (void)snprintf(p, sizeof(p), "%s%s", path, sfx);
        (void)unlink(p);
    }
    (void)rmdir(dir);
    return ret;
}

int
main(int argc, char **argv)
{
    const char *workers = "1,2,4";
    int64_t n = 1000;
    struct corpus c;
    double base = 0;
    const char *tok;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--events"))
            (void)ocra_parse_i64(argv[i + 1], 1, 1000000, &n, NULL);
        else if (!strcmp(argv[i], "--workers"))
            workers = argv[i + 1];
    }
    ocra_log_setup(OCRA_LOG_ERROR, OCRA_LOG_TEXT);
    corpus_init(&c, (size_t)n);
    printf("bench/daemon_burst: %lld events through validate and plan, fresh journal each\n",
           (long long)n);
    printf("workers  events   seconds   events/s   ratio   rss idle MiB   rss peak MiB\n");
    for (tok = workers; *tok; tok += strcspn(tok, ",") + (tok[strcspn(tok, ",")] == ',')) {
        struct result r = {0};
        char one[16];
        int64_t w = 0;

        (void)snprintf(one, sizeof(one), "%.*s", (int)strcspn(tok, ","), tok);
        if (ocra_parse_i64(one, 1, 64, &w, NULL) < 0 || run(&c, (int)w, &r) < 0)
            continue;
        if (base == 0)
            base = (double)n / r.seconds;
        printf("%7lld  %6lld  %8.3f  %9.0f  %5.1fx  %13.1f  %13.1f\n", (long long)w, (long long)n,
               r.seconds, (double)n / r.seconds, (double)n / r.seconds / base,
               (double)r.rss_idle / 1024.0, (double)r.rss_peak / 1024.0);
    }
    corpus_fini(&c);
    return 0;
}
