/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench/journal_gen.c: writes a large journal as the daemon would have written it, for the
 * scale benchmark (bench/journal_scale.sh) and for trying commands on a big journal by hand.
 * Everything goes through the store's own calls (append with cursor, intake, claim and end of
 * every stage, image, allocation and run records), so the rows, their history and the
 * counters are those of a real daemon; only the stage ops are replaced by a deterministic
 * choice per event. Events arrive in batches (1,000 per journal transaction); each batch is
 * carried through the stages before the next arrives, as on a chain where updates are spread
 * over time. The mix: 4 % rejected by the watcher (untrusted signer), 8 % rejected at
 * validation, 2 % of events a second version of the previous event's model (the older one is
 * superseded at its allocation gate), 6 % with one retry at the toolchain stage and 2 %
 * dead-lettered there, 5 % failed runs, the rest completed and reported. The last 1 % is left
 * in flight: events ready at several stages, some waiting, one claim whose lease expired.
 * The plan stage's output is the real planner's for the example spec (about 4.5 KB).
 *
 *   bench_journal_gen --events N [--models M] JOURNAL
 *
 * JOURNAL must not exist. Prints the counts and the time taken; exits 0, 1 on a journal error,
 * 2 on usage.
 */
#include "plan/plan.h"
#include "spec/spec.h"
#include "store/store.h"

#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BATCH 1000
#define ID_MAX 96

static const char *const stage_names[] = {"validate", "plan", "toolchain", "push",  "sign",
                                          "allocate", "run",  "complete",  "report"};
static const char *const stage_reached[] = {"validated", "planned",   "toolchain",
                                            "pushed",    "signed",    "allocated",
                                            "running",   "completed", "reported"};
static const char *const gated[] = {"allocate", "run"};

static const char spec_fmt[] =
    "{\"name\":\"m%zu\",\"modelVersion\":\"1.0.%zu\",\"toolsAndLibraries\":{\"PyTorch\":"
    "\"2.1.0+cu121\",\"transformers\":\"4.35.2\",\"CUDA\":\"12.1\"},\"artifact\":{\"uri\":"
    "\"https://models.example.com/m%zu/1.0.%zu/model.safetensors\",\"sha256\":"
    "\"0b09377229b689595dd3616d6088396bdae7caa9a52e9f7b09cab623f4e1d029\",\"size\":440473133},"
    "\"workload\":{\"type\":\"inference\",\"params\":110000000,\"dtype\":\"fp16\",\"gpus\":1,"
    "\"command\":[\"python3\",\"-m\",\"serve\",\"--port\",\"8080\"],\"port\":8080}}";

struct gen {
    struct ocra_store *st;
    size_t n, models, next; /* events wanted, models, events journaled so far */
    char *plan_out;         /* the plan stage's output for every event */
    size_t counts[8];       /* reported, rejected, superseded, failed, dead, in flight, ... */
};

/* A stable 32-bit hash of (text, salt): the choice made for an event at a stage. */
static uint32_t
pick(const char *text, uint32_t salt)
{
    uint32_t h = 2166136261u ^ salt;

    for (; *text; text++)
        h = (h ^ (unsigned char)*text) * 16777619u;
    h ^= h >> 15;
    return h * 2246822519u;
}

static bool
chance(const char *id, uint32_t salt, unsigned percent)
{
    return pick(id, salt) % 100 < percent;
}

/* The real planner's output for the example spec: {"summary": {...}, "plan": {...}}. */
static int
plan_output(char **out, struct ocra_err *err)
{
    char text[1024];
    struct ocra_plan_data *data = NULL;
    struct ocra_spec *spec = NULL;
    struct ocra_plan *plan = NULL;
    int ret = -1;

    (void)snprintf(text, sizeof(text), spec_fmt, (size_t)0, (size_t)0, (size_t)0, (size_t)0);
    if (ocra_plan_data_load(NULL, &data, err) < 0 ||
        ocra_spec_parse(text, strlen(text), NULL, &spec, NULL, err) < 0 ||
        ocra_plan_new(data, spec, NULL, &plan, NULL, err) < 0)
        goto out;
    {
        json_t *o =
            json_pack("{s:{s:s,s:s,s:i,s:s},s:o}", "summary", "baseImage",
                      ocra_plan_base_image(plan), "toolchainHash", ocra_plan_toolchain_hash(plan),
                      "gpus", 1, "gpuModel", "", "plan", ocra_plan_to_json(plan));

        *out = ocra_json_compact(o);
        json_decref(o);
    }
    ret = 0;
out:
    ocra_plan_free(plan);
    ocra_spec_free(spec);
    ocra_plan_data_free(data);
    return ret;
}

/* ---- the watcher: one batch of events ----------------------------------------------------- */

struct batch {
    char id[BATCH][ID_MAX], tx[BATCH][OCRA_STORE_HASH_MAX], path[BATCH][48], spec[BATCH][640];
    struct ocra_store_event ev[BATCH];
};

static void
batch_fill(struct gen *g, struct batch *b, size_t k)
{
    for (size_t j = 0; j < k; j++) {
        size_t i = g->next + j;
        /* 2 %: another version of the previous event's model */
        size_t m = (i > 0 && i % 50 == 7) ? (i - 1) % g->models : i % g->models;
        bool untrusted = i % 25 == 3;

        (void)snprintf(b->tx[j], sizeof(b->tx[j]), "0x%064zx", i + 1);
        (void)snprintf(b->id[j], sizeof(b->id[j]), "ain:0:%s:0", b->tx[j]);
        (void)snprintf(b->path[j], sizeof(b->path[j]), "/apps/bench/models/m%zu", m);
        (void)snprintf(b->spec[j], sizeof(b->spec[j]), spec_fmt, m, i, m, i);
        b->ev[j] = (struct ocra_store_event){
            .id = b->id[j],
            .chain = "ain:0",
            .block_number = (int64_t)(i / 10),
            .tx_hash = b->tx[j],
            .signer = untrusted ? "0x5b38da6a701c568545dcfcb03fcb875f56beddc4"
                                : "0x09a0d53fdf1c36a131938eb379b98910e55eefe1",
            .trusted = !untrusted,
            .path = b->path[j],
            .spec = b->spec[j],
            .status = untrusted ? "rejected" : "accepted",
            .reason = untrusted ? "signer 0x5b38da6a701c568545dcfcb03fcb875f56beddc4 is not in "
                                  "ain.watch[].allow"
                                : NULL,
        };
    }
}

/* ---- the stages: what each op would have done --------------------------------------------- */

/* Records of the build and run stages, keyed by the event (its tx hash names the image and the
 * container); the report gives back an allocation a supersession left held. */
static int
side_effects(struct gen *g, const struct ocra_store_claim *c, char *out, size_t n,
             struct ocra_err *err)
{
    const char *hex = c->event_id + strlen("ain:0:0x");
    char digest[80];

    (void)snprintf(digest, sizeof(digest), "sha256:%.64s", hex);
    if (!strcmp(c->stage, "sign")) {
        struct ocra_store_image im = {.digest = digest,
                                      .registry = "registry.local:5000",
                                      .repo = "bench/model",
                                      .tags = "[\"1.0.0\"]",
                                      .event = c->event_id,
                                      .record = "{\"imageId\":\"x\"}"};
        return ocra_store_image_put(g->st, &im, err);
    }
    if (!strcmp(c->stage, "allocate")) {
        struct ocra_store_alloc a = {.node = "gpu-1",
                                     .n_devs = 1,
                                     .gpu_milli = 1000,
                                     .gpu_mem_mib = 8000,
                                     .cpu_milli = 2000,
                                     .ram_mib = 8192};

        (void)snprintf(a.event_id, sizeof(a.event_id), "%s", c->event_id);
        a.devs[0] = (int)(pick(c->event_id, 1) % 8);
        return ocra_store_alloc_insert(g->st, &a, err);
    }
    if (!strcmp(c->stage, "run")) {
        struct ocra_store_run r = {.id = hex,
                                   .event_id = c->event_id,
                                   .image_digest = digest,
                                   .runner = "docker",
                                   .node = "gpu-1",
                                   .gpus = "[0]"};
        return ocra_store_run_put(g->st, &r, err);
    }
    if (!strcmp(c->stage, "complete")) {
        bool failed = chance(c->event_id, 9, 5);

        (void)snprintf(out, n, "{\"exitCode\":%d,\"logTail\":\"done\\n\",\"durationMs\":61000}",
                       failed ? 1 : 0);
        if (ocra_store_run_end(g->st, hex, failed ? "failed" : "succeeded", NULL, out, err) < 0)
            return -1;
    }
    if (!strcmp(c->stage, "complete") || !strcmp(c->stage, "report"))
        return ocra_store_alloc_release(g->st, c->event_id, -1, NULL, err);
    return 0;
}

/* The output of a successful attempt at c's stage, and where the event goes next. */
static void
stage_done(struct gen *g, const struct ocra_store_claim *c, size_t idx, char *out, size_t n,
           struct ocra_store_stage_end *e)
{
    uint32_t h = pick(c->event_id, 1);

    e->outcome = "done";
    e->state = "ready";
    e->next_ms = ocra_time_wall_ms();
    e->status = stage_reached[idx];
    e->stage = idx + 1 < OCRA_ARRAY_LEN(stage_names) ? stage_names[idx + 1] : NULL;
    e->finished = e->stage == NULL;
    if (idx == 1) {
        e->output = g->plan_out;
        return;
    }
    if ((idx == 0 && chance(c->event_id, 2, 8)) || (idx == 7 && chance(c->event_id, 9, 5))) {
        e->status = idx == 0 ? "rejected" : "failed";
        e->stage = "report";
        e->error = idx == 0 ? "spec: 1 problem; first: workload.gpus: more than plan.max_gpus"
                            : "the workload exited with code 1";
        (void)snprintf(out, n, "{\"verdict\":\"%s\",\"reason\":\"%s\"}", e->status, e->error);
    } else if (idx == 8) {
        (void)snprintf(out, n,
                       "{\"chain\":\"ain:0\",\"tx\":\"0x%08x%056x\",\"block\":%u,\"path\":"
                       "\"/apps/bench/ocra/runs/%.12s\"}",
                       h, 1u, h % 100000, c->event_id + 8);
    } else {
        (void)snprintf(out, n,
                       "{\"digest\":\"sha256:%08x%056x\",\"node\":\"gpu-1\",\"runner\":\"docker\","
                       "\"stage\":\"%s\",\"logTail\":\"step %zu of 9\"}",
                       h, 0u, c->stage, idx + 1);
    }
}

/* Runs one claimed attempt the way the generator decided; fills e. */
static int
attempt(struct gen *g, const struct ocra_store_claim *c, bool in_tail, char *out, size_t n,
        struct ocra_store_stage_end *e, struct ocra_err *err)
{
    size_t idx = 0;

    while (idx < OCRA_ARRAY_LEN(stage_names) && strcmp(stage_names[idx], c->stage) != 0)
        idx++;
    if (idx == OCRA_ARRAY_LEN(stage_names))
        return ocra_err_set(err, EINVAL, "unknown stage %s", c->stage);
    if (idx == 2 && in_tail && chance(c->event_id, 4, 10)) {
        *e = (struct ocra_store_stage_end){.outcome = "waiting",
                                           .state = "waiting",
                                           .error = "toolchain: not built into this ocra"};
        return 0;
    }
    if (idx == 2 && c->attempt == 1 && chance(c->event_id, 3, 8)) {
        bool dead = chance(c->event_id, 5, 25);

        *e = (struct ocra_store_stage_end){
            .outcome = dead ? "dead" : "retry",
            .state = dead ? "dead" : "ready",
            .next_ms = ocra_time_wall_ms(),
            .error = "toolchain: registry.local:5000: GET /v2/: HTTP 503"};
        return 0;
    }
    if (side_effects(g, c, out, n, err) < 0)
        return ocra_err_wrap(err, "event %s stage %s", c->event_id, c->stage);
    stage_done(g, c, idx, out, n, e);
    if (!e->output)
        e->output = out;
    return 0;
}

/* Claims and ends attempts until nothing is ready, or max claims. */
static int
churn(struct gen *g, size_t max, bool in_tail, struct ocra_err *err)
{
    const struct ocra_store_claim_opts o = {.worker = "w0@bench",
                                            .lease_ms = 60000,
                                            .gated = gated,
                                            .n_gated = OCRA_ARRAY_LEN(gated),
                                            .superseded_stage = "report"};

    for (size_t k = 0; k < max; k++) {
        /* a commit every 100 attempts: the pages a transaction dirties stay in SQLite's cache */
        if (k % 100 == 99 &&
            (ocra_store_commit(g->st, err) < 0 || ocra_store_begin(g->st, err) < 0))
            return -1;
        struct ocra_store_claim c = {0};
        struct ocra_store_stage_end e = {0};
        char out[512];
        bool found = false;
        int ret;

        if (ocra_store_stage_claim(g->st, &o, &c, &found, err) < 0)
            return -1;
        if (!found)
            return 0;
        ret = attempt(g, &c, in_tail, out, sizeof(out), &e, err);
        if (ret == 0)
            ret = ocra_store_stage_end(g->st, c.event_id, c.claim, &e, err);
        ocra_store_claim_fini(&c);
        if (ret < 0)
            return -1;
    }
    return 0;
}

/* One batch: journaled, taken in, and carried through; the last 1 % of the events (the tail)
 * only partly, about four attempts per event, so that they are left at every stage. */
static int
batch_run(struct gen *g, struct batch *b, struct ocra_err *err)
{
    size_t tail = g->n - g->n / 100, end = g->next < tail ? tail : g->n;
    size_t k = end - g->next < BATCH ? end - g->next : BATCH;
    bool in_tail = g->next >= tail;
    struct ocra_store_cursor cur = {0};
    int ret;

    batch_fill(g, b, k);
    cur.block_number = b->ev[k - 1].block_number;
    (void)snprintf(cur.block_hash, sizeof(cur.block_hash), "0x%064" PRIx64,
                   (uint64_t)cur.block_number);
    if (ocra_store_append(g->st, "ain:0", b->ev, k, &cur, NULL, err) < 0 ||
        ocra_store_pipeline_intake(g->st, "validate", "report", NULL, err) < 0 ||
        ocra_store_begin(g->st, err) < 0)
        return -1;
    ret = churn(g, in_tail ? 4 * k : SIZE_MAX, in_tail, err);
    if (ret < 0) {
        ocra_store_rollback(g->st);
        return -1;
    }
    g->next += k;
    return ocra_store_commit(g->st, err);
}

/* A claim whose holder died: its lease has expired when the daemon starts. */
static int
abandon_one(struct gen *g, struct ocra_err *err)
{
    const struct ocra_store_claim_opts o = {
        .worker = "w1@crashed", .lease_ms = 1, .superseded_stage = "report"};
    struct ocra_store_claim c = {0};
    bool found = false;

    if (ocra_store_stage_claim(g->st, &o, &c, &found, err) < 0)
        return -1;
    ocra_store_claim_fini(&c);
    return 0;
}

static int
count_one(const struct ocra_store_event *ev, const struct ocra_store_pipeline *p, void *arg)
{
    size_t *counts = arg;

    (void)ev;
    if (!p)
        return 0;
    if (!strcmp(p->state, "dead"))
        counts[4]++;
    else if (strcmp(p->state, "done") != 0)
        counts[5]++;
    else if (p->outcome && !strcmp(p->outcome, "rejected"))
        counts[1]++;
    else if (p->outcome && !strcmp(p->outcome, "superseded"))
        counts[2]++;
    else if (p->outcome && !strcmp(p->outcome, "failed"))
        counts[3]++;
    else
        counts[0]++;
    return 0;
}

static int
parse_args(int argc, char **argv, struct gen *g, const char **path)
{
    struct ocra_err err = {0};
    int64_t v;

    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "--events") || !strcmp(argv[i], "--models")) && i + 1 < argc) {
            bool ev = !strcmp(argv[i], "--events");

            if (ocra_parse_i64(argv[++i], 1, 100000000, &v, &err) < 0) {
                fprintf(stderr, "bench_journal_gen: %s: %s\n", argv[i - 1], err.msg);
                return -1;
            }
            *(ev ? &g->n : &g->models) = (size_t)v;
        } else if (argv[i][0] != '-' && !*path) {
            *path = argv[i];
        } else {
            break;
        }
    }
    if (*path && g->n)
        return 0;
    fprintf(stderr, "usage: bench_journal_gen --events N [--models M] JOURNAL\n"
                    "  writes a journal of N events of M models (default N/10, at least 1000)\n");
    return -1;
}

int
main(int argc, char **argv)
{
    struct gen g = {0};
    struct batch *b = NULL;
    struct ocra_err err = {0};
    const char *path = NULL;
    uint64_t t0 = ocra_time_mono_ns();
    int ret = 1;

    if (parse_args(argc, argv, &g, &path) < 0)
        return 2;
    if (!g.models) /* ten versions of each model, and no model twice in a batch */
        g.models = g.n / 10 > BATCH ? g.n / 10 : BATCH;
    if (access(path, F_OK) == 0) {
        fprintf(stderr, "bench_journal_gen: %s exists; give a new file\n", path);
        return 2;
    }
    ocra_log_setup(OCRA_LOG_ERROR, OCRA_LOG_TEXT);
    /* SQLite opens a temporary b-tree for the IN lists of the schema's CHECK constraints on
     * every write, and glibc would hand its page cache back to the kernel each time: keep it */
    (void)mallopt(M_TRIM_THRESHOLD, 256 << 20);
    (void)mallopt(M_TOP_PAD, 16 << 20);
    b = ocra_xcalloc(1, sizeof(*b));
    if (plan_output(&g.plan_out, &err) < 0 || ocra_store_open(path, &g.st, &err) < 0)
        goto out;
    while (g.next < g.n)
        if (batch_run(&g, b, &err) < 0)
            goto out;
    if (abandon_one(&g, &err) < 0 ||
        ocra_store_pipeline_list(g.st, NULL, count_one, g.counts, &err) < 0)
        goto out;
    printf("bench/journal_gen: %s: %zu events, %zu models in %.1f s\n", path, g.n, g.models,
           (double)(ocra_time_mono_ns() - t0) / 1e9);
    printf("  reported %zu, rejected %zu, superseded %zu, failed %zu, dead %zu, in flight %zu\n",
           g.counts[0], g.counts[1], g.counts[2], g.counts[3], g.counts[4], g.counts[5]);
    ret = 0;
out:
    if (ret)
        fprintf(stderr, "bench_journal_gen: %s\n", err.msg);
    ocra_store_close(g.st);
    free(g.plan_out);
    free(b);
    return ret;
}
