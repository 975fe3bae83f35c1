/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon_test.c: the stage machine driven by test stage tables on a real journal: every
 * stage runs exactly once per event under concurrent workers; transient failures retry with
 * backoff and end in dead letter after daemon.max_attempts while the other events go on; a
 * permanent failure is dead at once; an unwired stage waits without using attempts; a newer
 * version supersedes an older one before the gated stage and never the other way round; a
 * crashed worker's claim is taken over once its lease expires, a dead process's of this
 * machine at once, neither counted as an attempt, and a stage whose worker keeps dying is
 * dead-lettered after daemon.max_crashes with the reason; `ocra retry` resumes a dead
 * letter; the agent's "is it current?" question; the HTTP API's lineage and images and the
 * stage metrics; the autoscaling loop's loads from the agents' heartbeats; a stopping daemon
 * checkpoints a stage that waits for its workload.
 */
#include "daemon/daemon.h"
#include "daemon/daemon_int.h"
#include "ocra_test.h"

#include "api/api.h"
#include "http/http.h"
#include "metrics/metrics.h"
#include "run/run.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#define N_EVENTS 120

struct tmpdb {
    char dir[64];
    char path[96];
};

static int
tmpdb_init(struct tmpdb *t)
{
    (void)snprintf(t->dir, sizeof(t->dir), "/tmp/ocra-daemon-test-XXXXXX");
    if (!mkdtemp(t->dir))
        return -1;
    (void)snprintf(t->path, sizeof(t->path), "%s/journal.db", t->dir);
    return 0;
}

static void
tmpdb_fini(struct tmpdb *t)
{
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
    char p[128];

    for (size_t i = 0; i < OCRA_ARRAY_LEN(suffix); i++) {
        (void)snprintf(p, sizeof(p), "%s%s", t->path, suffix[i]);
        (void)unlink(p);
    }
    (void)rmdir(t->dir);
}

/* ---- what the test ops record ------------------------------------------------------------ */

static pthread_mutex_t calls_mu = PTHREAD_MUTEX_INITIALIZER;
static int calls[N_EVENTS][4]; /* per event: build, deploy, report, other */
static int transient_failures; /* op_build fails event 0 with EIO this many more times */
static bool permanent_failure; /* op_build fails event 1 with EINVAL */

static int
event_index(const struct ocra_daemon_job *job)
{
    const char *colon = strrchr(job->event->id, ':');
    int64_t i = -1;

    (void)ocra_parse_i64(colon ? colon + 1 : "", 0, N_EVENTS - 1, &i, NULL);
    return (int)i;
}

static void
record(const struct ocra_daemon_job *job, int which)
{
    int i = event_index(job);

    pthread_mutex_lock(&calls_mu);
    if (i >= 0 && i < N_EVENTS)
        calls[i][which]++;
    pthread_mutex_unlock(&calls_mu);
}

static int
op_build(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job, const json_t *inputs,
         json_t **output, struct ocra_err *err)
{
    int i = event_index(job);
    bool fail = false;

    (void)ctx;
    (void)inputs;
    pthread_mutex_lock(&calls_mu);
    if (i == 0 && transient_failures > 0) {
        transient_failures--;
        fail = true;
    }
    pthread_mutex_unlock(&calls_mu);
    if (fail) { /* a cause behind 300 bytes of context: the journal keeps it, first */
        ocra_err_set(err, EIO, "503 (attempt %lld)", (long long)job->claim->attempt);
        return ocra_err_wrap(err, "registry: HEAD http://127.0.0.1:5999/v2/%0300d/manifests/x", 0);
    }
    if (i == 1 && permanent_failure)
        return ocra_err_set(err, EINVAL, "Dockerfile: bad instruction");
    record(job, 0);
    *output = json_pack("{s:s}", "digest", "sha256:feed");
    return 0;
}

static int
op_deploy(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job, const json_t *inputs,
          json_t **output, struct ocra_err *err)
{
    (void)ctx;
    (void)err;
    if (!json_object_get(json_object_get(inputs, "build"), "digest"))
        return ocra_err_set(err, EINVAL, "deploy: no digest from build");
    record(job, 1);
    *output = json_pack("{s:s}", "node", "gpu-01");
    return 0;
}

static int
op_report(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job, const json_t *inputs,
          json_t **output, struct ocra_err *err)
{
    (void)ctx;
    (void)inputs;
    (void)err;
    record(job, 2);
    *output = json_pack("{s:s}", "status", job->claim->status);
    return 0;
}

static int
op_unwired(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job, const json_t *inputs,
           json_t **output, struct ocra_err *err)
{
    (void)ctx;
    (void)inputs;
    (void)output;
    record(job, 3);
    return ocra_err_set(err, ENOSYS, "stage later is not wired yet (issue 0)");
}

static const struct ocra_daemon_stage test_stages[] = {
    {"build", "pushed", op_build, true, false},
    {"deploy", "running", op_deploy, true, true},
    {"report", "reported", op_report, true, false},
};

/* Rejects a removal as the real validate stage does. */
static int
op_check(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job, const json_t *inputs,
         json_t **output, struct ocra_err *err)
{
    (void)ctx;
    (void)inputs;
    (void)err;
    if (!strcmp(job->event->spec, "null"))
        *output = ocra_daemon_verdict("rejected", "the model was removed: nothing to deploy");
    else
        *output = json_pack("{s:s}", "modelVersion", "1.0");
    return 0;
}

static const struct ocra_daemon_stage checked_stages[] = {
    {"validate", "validated", op_check, true, false},
    {"build", "pushed", op_build, true, false},
    {"deploy", "running", op_deploy, true, true},
    {"report", "reported", op_report, true, false},
};

static const struct ocra_daemon_stage waiting_stages[] = {
    {"build", "pushed", op_build, true, false},
    {"later", "allocated", op_unwired, true, false},
    {"report", "reported", op_report, true, false},
};

/* ---- fixture ----------------------------------------------------------------------------- */

struct fixture {
    struct tmpdb t;
    struct ocra_config cfg;
    struct ocra_store *st;
    struct ocra_daemon *d;
    char ids[N_EVENTS][96], txs[N_EVENTS][67], specs[N_EVENTS][96], paths[N_EVENTS][64];
};

static struct fixture fx;

/* n events; event i is model m<i % models>, version 1.<i>. */
static bool
fixture_init(const struct ocra_daemon_stage *stages, size_t n_stages, int n, int models)
{
    struct ocra_store_event evs[N_EVENTS];
    struct ocra_daemon_opts o = {
        .cfg = &fx.cfg, .stages = stages, .n_stages = n_stages, .no_watch = true};
    struct ocra_err err = {0};

    memset(calls, 0, sizeof(calls));
    transient_failures = 0;
    permanent_failure = false;
    if (tmpdb_init(&fx.t) < 0)
        return false;
    ocra_config_init(&fx.cfg);
    free(fx.cfg.journal_path);
    fx.cfg.journal_path = ocra_xstrdup(fx.t.path);
    fx.cfg.daemon_workers = 4;
    fx.cfg.daemon.retry_base_ms = 1;
    fx.cfg.daemon.retry_max_ms = 4;
    fx.cfg.daemon.poll_ms = 10;
    fx.cfg.daemon.max_attempts = 3;
    for (int i = 0; i < n; i++) {
        (void)snprintf(fx.txs[i], sizeof(fx.txs[i]), "0x%064x", i);
        (void)snprintf(fx.ids[i], sizeof(fx.ids[i]), "ain:0:0x%064x:%d", i, i);
        (void)snprintf(fx.specs[i], sizeof(fx.specs[i]), "{\"modelVersion\":\"1.%d\"}", i);
        (void)snprintf(fx.paths[i], sizeof(fx.paths[i]), "/apps/t/models/m%d", i % models);
        evs[i] = (struct ocra_store_event){.id = fx.ids[i],
                                           .chain = "ain:0",
                                           .block_number = i,
                                           .tx_hash = fx.txs[i],
                                           .op_index = i,
                                           .trusted = true,
                                           .path = fx.paths[i],
                                           .spec = fx.specs[i]};
    }
    if (ocra_store_open(fx.t.path, &fx.st, &err) < 0 ||
        ocra_store_append(fx.st, "ain:0", evs, (size_t)n, NULL, NULL, &err) < 0 ||
        ocra_daemon_new(&o, &fx.d, &err) < 0) {
        fprintf(stderr, "  fixture: %s\n", err.msg);
        return false;
    }
    return true;
}

static void
fixture_fini(void)
{
    ocra_daemon_free(fx.d);
    ocra_store_close(fx.st);
    ocra_config_fini(&fx.cfg);
    tmpdb_fini(&fx.t);
    memset(&fx, 0, sizeof(fx));
}

/* Runs stages on this thread until none is ready. */
static void
drain_steps(void)
{
    struct ocra_err err = {0};
    bool ran = true;

    CHECK(ocra_daemon_tick(fx.d, &err) == 0);
    for (int i = 0; ran && i < 100000; i++)
        if (ocra_daemon_step(fx.d, fx.st, &ran, &err) < 0) {
            fprintf(stderr, "  step: %s\n", err.msg);
            break;
        }
}

struct tally {
    int done, dead, waiting, superseded, reported;
};

static int
tally_one(const struct ocra_store_event *ev, const struct ocra_store_pipeline *p, void *arg)
{
    struct tally *t = arg;

    (void)ev;
    if (!p)
        return 0;
    t->done += !strcmp(p->state, "done");
    t->dead += !strcmp(p->state, "dead");
    t->waiting += !strcmp(p->state, "waiting");
    t->superseded += p->outcome && !strcmp(p->outcome, "superseded");
    t->reported += !strcmp(p->status, "reported");
    return 0;
}

static struct tally
tally(void)
{
    struct tally t = {0};

    (void)ocra_store_pipeline_list(fx.st, NULL, tally_one, &t, NULL);
    return t;
}

struct hist {
    int rows, done, retry, dead, waiting, abandoned, superseded;
};

static int
hist_one(const struct ocra_store_stage_row *r, void *arg)
{
    struct hist *h = arg;
    const char *o = r->outcome ? r->outcome : "";

    h->rows++;
    h->done += !strcmp(o, "done");
    h->retry += !strcmp(o, "retry");
    h->dead += !strcmp(o, "dead");
    h->waiting += !strcmp(o, "waiting");
    h->abandoned += !strcmp(o, "abandoned");
    h->superseded += !strcmp(o, "superseded");
    return 0;
}

static struct hist
history(int i)
{
    struct hist h = {0};

    (void)ocra_store_stage_history(fx.st, fx.ids[i], hist_one, &h, NULL);
    return h;
}

/* ---- tests ------------------------------------------------------------------------------- */

static void
test_every_stage_runs_exactly_once_under_concurrent_workers(void)
{
    struct ocra_daemon_stats s;
    struct ocra_err err = {0};
    struct tally t = {0};

    if (!fixture_init(test_stages, 3, N_EVENTS, N_EVENTS))
        goto out;
    CHECK(ocra_daemon_start(fx.d, &err) == 0);
    /* a bound against a hang, not a timing assertion */
    for (int i = 0; i < 6000 && t.done < N_EVENTS; i++) {
        CHECK(ocra_daemon_tick(fx.d, &err) == 0);
        usleep(10000);
        t = tally();
    }
    ocra_daemon_stop(fx.d);
    CHECK_INT(t.done, N_EVENTS);
    CHECK_INT(t.reported, N_EVENTS);
    for (int i = 0; i < N_EVENTS; i++) {
        struct hist h = history(i);

        CHECK_INT(calls[i][0], 1);
        CHECK_INT(calls[i][1], 1);
        CHECK_INT(calls[i][2], 1);
        CHECK_INT(h.done, 3);
        CHECK_INT(h.rows, 3);
    }
    ocra_daemon_stats(fx.d, &s);
    CHECK_INT(s.done, 3 * N_EVENTS);
    CHECK_INT(s.lost, 0);
    printf("  %d events x 3 stages by 4 workers: %lu claims, %lu done\n", N_EVENTS, s.claimed,
           s.done);
out:
    fixture_fini();
}

static void
test_transient_failures_retry_then_dead_letter_without_blocking(void)
{
    struct ocra_store_pipeline *p = NULL;
    struct ocra_err err = {0};
    struct tally t;
    struct hist h;

    if (!fixture_init(test_stages, 3, 5, 5))
        goto out;
    transient_failures = 1000;
    permanent_failure = true;
    for (int round = 0; round < 200 && tally().done + tally().dead < 5; round++) {
        drain_steps();
        usleep(5000); /* let the backoff pass */
    }
    t = tally();
    CHECK_INT(t.done, 3); /* events 2, 3, 4 went through */
    CHECK_INT(t.dead, 2);
    h = history(0);
    CHECK_INT(h.retry, 2); /* max_attempts 3: two retries, then dead */
    CHECK_INT(h.dead, 1);
    h = history(1);
    CHECK_INT(h.dead, 1); /* EINVAL: dead at once */
    CHECK_INT(h.retry, 0);
    CHECK(ocra_store_pipeline_get(fx.st, fx.ids[0], &p, &err) == 0 && p);
    if (p) {
        CHECK_STR(p->state, "dead");
        CHECK_STR(p->stage, "build");
        CHECK(p->last_error && !strncmp(p->last_error, "503 (attempt 3) (registry: HEAD ", 32));
        CHECK(p->last_error &&
              !strcmp(p->last_error + strlen(p->last_error) - 13, "/manifests/x)"));
    }
    ocra_store_pipeline_free(p);
    /* ocra retry: the registry is back */
    transient_failures = 0;
    CHECK(ocra_store_stage_retry(fx.st, fx.ids[0], &err) == 0);
    drain_steps();
    CHECK_INT(tally().done, 4);
    CHECK_INT(calls[0][2], 1);
out:
    fixture_fini();
}

static void
test_unwired_stage_waits_without_using_attempts(void)
{
    struct ocra_store_pipeline *p = NULL;
    struct ocra_err err = {0};

    if (!fixture_init(waiting_stages, 3, 2, 2))
        goto out;
    for (int i = 0; i < 5; i++) {
        drain_steps();
        CHECK(ocra_daemon_start(fx.d, &err) == 0); /* a restart wakes the waiting */
        ocra_daemon_stop(fx.d);
    }
    drain_steps();
    CHECK_INT(tally().waiting, 2);
    CHECK(ocra_store_pipeline_get(fx.st, fx.ids[0], &p, &err) == 0 && p);
    if (p) {
        CHECK_STR(p->status, "pushed");
        CHECK_STR(p->stage, "later");
        CHECK_INT(p->attempts, 0);
        CHECK(p->last_error && strstr(p->last_error, "not wired yet"));
    }
    ocra_store_pipeline_free(p);
    CHECK(calls[0][3] >= 5);
    CHECK_INT(calls[0][0], 1); /* the stage before it ran once */
out:
    fixture_fini();
}

static void
test_newer_version_supersedes_older_before_deployment(void)
{
    struct ocra_store_pipeline *p = NULL;
    struct ocra_err err = {0};
    char *newer = NULL;
    bool current = true;

    /* 3 events over 2 models: m0 has versions 1.0 (event 0) and 1.2 (event 2), m1 has 1.1 */
    if (!fixture_init(test_stages, 3, 3, 2))
        goto out;
    drain_steps();
    /* event 0 (1.0) and event 2 (1.2) are both m0: 1.0 was built but never deployed */
    CHECK_INT(calls[0][0], 1);
    CHECK_INT(calls[0][1], 0);
    CHECK_INT(calls[2][1], 1);
    CHECK_INT(calls[1][1], 1); /* the other model is not affected */
    CHECK_INT(calls[0][2], 1); /* the superseded event is reported as such */
    CHECK(ocra_store_pipeline_get(fx.st, fx.ids[0], &p, &err) == 0 && p);
    if (p) {
        CHECK_STR(p->status, "reported");
        CHECK_STR(p->outcome, "superseded");
    }
    ocra_store_pipeline_free(p);
    CHECK_INT(history(0).superseded, 1);
    /* the agent's question */
    CHECK(ocra_daemon_event_current(fx.st, fx.ids[0], "ain:0 /apps/t/models/m0", "1.0", &current,
                                    &newer, &err) == 0);
    CHECK(!current);
    CHECK_STR(newer, fx.ids[2]);
    free(newer);
    newer = NULL;
    CHECK(ocra_daemon_event_current(fx.st, fx.ids[2], NULL, "1.2", &current, &newer, &err) == 0);
    CHECK(current && !newer);
    CHECK(ocra_daemon_event_current(fx.st, fx.ids[2], NULL, "1.0", &current, NULL, &err) == -1);
    CHECK_INT(err.code, EINVAL);
    CHECK(ocra_daemon_event_current(fx.st, "ain:0:0x1:9", NULL, NULL, &current, NULL, &err) == -1);
    CHECK_INT(err.code, ENOENT);
out:
    fixture_fini();
}

/* A trusted removal of the model (spec null, as a null written at or above it journals)
 * stops an older version before deployment, though it never passes validation itself; an
 * untrusted one does not. */
static void
test_removal_supersedes_older_before_deployment(void)
{
    struct ocra_store_event rm[2] = {
        {.id = "ain:0:0xr0:0:m0",
         .chain = "ain:0",
         .block_number = 9,
         .tx_hash = "0xr0",
         .signer = "0x1",
         .trusted = false,
         .status = "rejected",
         .reason = "signer 0x1 is not "
                   "in the allowlist",
         .path = "/apps/t/models/m0",
         .spec = "null"},
        {.id = "ain:0:0xr1:0:m0",
         .chain = "ain:0",
         .block_number = 10,
         .tx_hash = "0xr1",
         .trusted = true,
         .path = "/apps/t/models/m0",
         .spec = "null"},
    };
    struct ocra_store_pipeline *p = NULL;
    struct ocra_err err = {0};
    char *newer = NULL;
    bool current = true;

    /* event 0 is m0 1.0; an untrusted removal, then a trusted one */
    if (!fixture_init(checked_stages, 4, 1, 1))
        goto out;
    CHECK(ocra_store_append(fx.st, "ain:0", rm, 1, NULL, NULL, &err) == 0);
    CHECK(ocra_daemon_tick(fx.d, &err) == 0);
    CHECK(ocra_daemon_event_current(fx.st, fx.ids[0], NULL, NULL, &current, NULL, &err) == 0);
    CHECK(current); /* an untrusted signer cannot take a model down */
    CHECK(ocra_store_append(fx.st, "ain:0", rm + 1, 1, NULL, NULL, &err) == 0);
    drain_steps();
    CHECK_INT(calls[0][0], 1); /* built before the removal was seen at its gate */
    CHECK_INT(calls[0][1], 0); /* never deployed */
    CHECK(ocra_store_pipeline_get(fx.st, fx.ids[0], &p, &err) == 0 && p);
    if (p)
        CHECK_STR(p->outcome, "superseded");
    ocra_store_pipeline_free(p);
    CHECK(ocra_daemon_event_current(fx.st, fx.ids[0], NULL, NULL, &current, &newer, &err) == 0);
    CHECK(!current);
    CHECK_STR(newer, rm[1].id);
    free(newer);
out:
    fixture_fini();
}

/* Every shape of report the stage writes, as a job's journal would hold it, is storable on AIN
 * (the encoder follows the node's rules: ain_test checks it against the node's verdicts). */
static void
test_every_report_shape_is_storable_on_ain(void)
{
    static const char gpu[] = "\"allocate\":{\"node\":\"n1\",\"gpus\":[0,1],\"gpuMilli\":2000,"
                              "\"cpuMilli\":4000,\"ramMib\":8192,\"existed\":false}";
    static const char cpu[] = "\"allocate\":{\"node\":\"n1\",\"gpus\":[],\"gpuMilli\":0,"
                              "\"cpuMilli\":500,\"ramMib\":512,\"existed\":false}";
    static const char built[] =
        "\"validate\":{\"name\":\"m\",\"modelVersion\":\"1.0\",\"specHash\":\"ab\"},"
        "\"push\":{\"digest\":\"sha256:aa\",\"tags\":[\"1.0\"]},\"sign\":{\"digest\":\"sha256:"
        "aa\"}";
    static const char ran[] = "\"run\":{\"runner\":\"docker\",\"id\":\"c1\",\"name\":\"ocra-x\","
                              "\"adopted\":false,\"image\":\"r/m@sha256:aa\"},";
    static const char done0[] = "\"complete\":{\"runner\":\"docker\",\"exitCode\":0,"
                                "\"startedAt\":\"2026-01-01T00:00:00Z\",\"finishedAt\":\"2026-01-"
                                "01T00:01:00Z\",\"logTail\":\"\"}";
    static const char done1[] = "\"complete\":{\"runner\":\"slurm\",\"exitCode\":1,\"startedAt\":"
                                "\"2026-01-01T00:00:00Z\",\"verdict\":\"failed\",\"reason\":\"exit "
                                "code 1\"}";
    struct shape {
        const char *what, *status, *version, *event_reason;
        char inputs[1024];
        bool gpus;
    } shapes[] = {
        {"completed on GPUs", "completed", "1.0", NULL, "", true},
        {"completed on CPUs", "completed", "1.0", NULL, "", false},
        {"completed on CPUs with replicas", "completed", "1.0", NULL, "", false},
        {"failed on CPUs", "failed", "1.0", NULL, "", false},
        {"failed on GPUs", "failed", "1.0", NULL, "", true},
        {"failed: fits no node", "failed", "1.0", NULL, "", false},
        {"rejected by validation", "rejected", NULL, NULL, "", false},
        {"rejected by the watcher", "rejected", NULL, "signer 0x1 is not in the allowlist", "",
         false},
        {"removed", "rejected", NULL, NULL, "", false},
        {"superseded after allocate on CPUs", "superseded", "1.0", NULL, "", false},
        {"superseded after allocate on GPUs", "superseded", "1.0", NULL, "", true},
        {"superseded before allocate", "superseded", "1.0", NULL, "", false},
        {"timeout on CPUs", "timeout", "1.0", NULL, "", false},
    };
    struct ocra_daemon_ctx ctx = {0};
    struct ocra_err err = {0};

    (void)snprintf(shapes[0].inputs, sizeof(shapes[0].inputs), "{%s,%s,%s%s}", built, gpu, ran,
                   done0);
    (void)snprintf(shapes[1].inputs, sizeof(shapes[1].inputs), "{%s,%s,%s%s}", built, cpu, ran,
                   done0);
    (void)snprintf(shapes[2].inputs, sizeof(shapes[2].inputs),
                   "{%s,\"plan\":{\"replicas\":{\"min\":2,\"max\":4}},%s,%s%s}", built, cpu, ran,
                   done0);
    (void)snprintf(shapes[3].inputs, sizeof(shapes[3].inputs), "{%s,%s,%s%s}", built, cpu, ran,
                   done1);
    (void)snprintf(shapes[4].inputs, sizeof(shapes[4].inputs), "{%s,%s,%s%s}", built, gpu, ran,
                   done1);
    (void)snprintf(shapes[5].inputs, sizeof(shapes[5].inputs),
                   "{%s,\"allocate\":{\"verdict\":\"failed\",\"reason\":\"fits no node\"}}", built);
    (void)snprintf(shapes[6].inputs, sizeof(shapes[6].inputs),
                   "{\"validate\":{\"verdict\":\"rejected\",\"reason\":\"spec: name: "
                   "missing\"}}");
    (void)snprintf(shapes[7].inputs, sizeof(shapes[7].inputs), "{}");
    (void)snprintf(shapes[8].inputs, sizeof(shapes[8].inputs),
                   "{\"validate\":{\"verdict\":\"rejected\",\"reason\":\"the model was "
                   "removed: nothing to deploy\"}}");
    (void)snprintf(shapes[9].inputs, sizeof(shapes[9].inputs), "{%s,%s}", built, cpu);
    (void)snprintf(shapes[10].inputs, sizeof(shapes[10].inputs), "{%s,%s}", built, gpu);
    (void)snprintf(shapes[11].inputs, sizeof(shapes[11].inputs), "{%s}", built);
    (void)snprintf(shapes[12].inputs, sizeof(shapes[12].inputs),
                   "{%s,%s,%s\"complete\":{\"runner\":\"docker\",\"exitCode\":137,\"startedAt\":"
                   "1767225600000,\"finishedAt\":1767225606000,\"maxDurationS\":6,\"verdict\":"
                   "\"timeout\",\"reason\":\"the workload ran past its time limit of 6 s\"}}",
                   built, cpu, ran);
    if (!fixture_init(test_stages, 3, 2, 1))
        goto out;
    ctx.st = fx.st;
    ctx.cfg = &fx.cfg;
    for (size_t i = 0; i < OCRA_ARRAY_LEN(shapes); i++) {
        struct shape *sh = &shapes[i];
        struct ocra_store_event ev = {
            .id = fx.ids[0], .chain = "ain:0", .path = fx.paths[0], .reason = sh->event_reason};
        struct ocra_store_claim claim = {.event_id = fx.ids[0],
                                         .stage = (char *)(uintptr_t) "report",
                                         .status = (char *)(uintptr_t)sh->status,
                                         .version = (char *)(uintptr_t)sh->version};
        struct ocra_daemon_job job = {.event = &ev, .claim = &claim};
        json_t *inputs = ocra_json_parse(sh->inputs, strlen(sh->inputs), 0, NULL), *value, *enc;

        CHECK(inputs != NULL);
        value = ocra_daemon_report_value(&ctx, &job, inputs);
        enc = ocra_ain_encode_value(value, &err);
        if (!enc)
            fprintf(stderr, "  %s: %s\n", sh->what, err.msg);
        CHECK(enc != NULL);
        CHECK_STR(ocra_json_str(value, "status"), sh->status);
        CHECK(sh->gpus == (json_object_get(value, "gpus") != NULL));
        CHECK(!strcmp(sh->status, "completed") || ocra_json_str(value, "reason"));
        json_decref(enc);
        json_decref(value);
        json_decref(inputs);
    }
out:
    fixture_fini();
}

static void
test_crashed_workers_claim_is_taken_over_after_its_lease(void)
{
    struct ocra_store_claim_opts crashed = {.worker = "w0@dead:1", .lease_ms = 50};
    struct ocra_store_claim c = {0};
    struct ocra_err err = {0};
    bool found = false, ran = false;
    struct ocra_daemon_stats s;
    struct hist h;

    if (!fixture_init(test_stages, 3, 1, 1))
        goto out;
    CHECK(ocra_daemon_tick(fx.d, &err) == 0);
    /* a worker claims the build and dies before ending it */
    CHECK(ocra_store_stage_claim(fx.st, &crashed, &c, &found, &err) == 0 && found);
    ocra_store_claim_fini(&c);
    CHECK(ocra_daemon_step(fx.d, fx.st, &ran, &err) == 0);
    CHECK(!ran); /* held until the lease expires */
    usleep(60000);
    drain_steps();
    CHECK_INT(tally().done, 1);
    CHECK_INT(calls[0][0], 1);
    h = history(0);
    CHECK_INT(h.abandoned, 1);
    CHECK_INT(h.done, 3);
    ocra_daemon_stats(fx.d, &s);
    CHECK_INT(s.takeovers_lease, 1);
out:
    fixture_fini();
}

/* A process of this machine that waits to be killed, into *id. */
static pid_t
spawn_child(struct ocra_proc_id *id)
{
    struct ocra_err err = {0};
    pid_t pid;

    if (ocra_proc_self(id, &err) < 0)
        return -1;
    if ((pid = fork()) == 0) {
        pause();
        _exit(0);
    }
    if (pid < 0)
        return -1;
    id->pid = pid;
    if (ocra_proc_start(pid, &id->start, &err) < 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    return pid;
}

static void
end_child(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static void
test_dead_process_claim_taken_over_at_once_not_as_an_attempt(void)
{
    struct ocra_store_claim_opts o = {.worker = "w0@here:1", .lease_ms = 600000};
    struct ocra_store_claim c = {0};
    struct ocra_daemon_stats s;
    struct ocra_proc_id child;
    struct ocra_err err = {0};
    bool found = false, ran = true;
    pid_t pid = -1;
    struct hist h;

    if (!fixture_init(test_stages, 3, 1, 1))
        goto out;
    fx.cfg.daemon.lease_ms = 600000;
    fx.cfg.daemon.max_attempts = 1; /* a kill counted as an attempt would dead-letter */
    CHECK(ocra_daemon_tick(fx.d, &err) == 0);
    CHECK((pid = spawn_child(&child)) > 0);
    if (pid <= 0)
        goto out;
    o.owner = &child;
    CHECK(ocra_store_stage_claim(fx.st, &o, &c, &found, &err) == 0 && found);
    ocra_store_claim_fini(&c);
    CHECK(ocra_daemon_step(fx.d, fx.st, &ran, &err) == 0);
    CHECK(!ran); /* its process runs: the claim holds */
    end_child(pid);
    /* killed: the next claim takes it over at once, not 600 s later */
    drain_steps();
    CHECK_INT(tally().done, 1);
    CHECK_INT(tally().dead, 0);
    CHECK_INT(calls[0][0], 1);
    h = history(0);
    CHECK_INT(h.abandoned, 1);
    CHECK_INT(h.done, 3);
    ocra_daemon_stats(fx.d, &s);
    CHECK_INT(s.takeovers_crash, 1);
    CHECK_INT(s.takeovers_lease, 0);
out:
    fixture_fini();
}

static void
test_crash_cap_dead_letters_with_the_reason(void)
{
    struct ocra_store_claim_opts o = {.worker = "w1@here:2", .lease_ms = 600000};
    struct ocra_store_pipeline *p = NULL;
    struct ocra_store_claim c = {0};
    struct ocra_proc_id child;
    struct ocra_err err = {0};
    bool found = false;
    size_t n = 0;

    if (!fixture_init(test_stages, 3, 1, 1))
        goto out;
    fx.cfg.daemon.max_crashes = 2;
    CHECK(ocra_daemon_tick(fx.d, &err) == 0);
    /* a build that kills its worker every time: three deaths, each taken over */
    for (int i = 0; i < 3; i++) {
        pid_t pid = spawn_child(&child);

        CHECK(pid > 0);
        if (pid <= 0)
            goto out;
        o.owner = &child;
        CHECK(ocra_store_stage_claim(fx.st, &o, &c, &found, &err) == 0 && found);
        CHECK_INT(c.attempt, 1);
        ocra_store_claim_fini(&c);
        end_child(pid);
        CHECK(ocra_store_stage_takeover(fx.st, &fx.d->self, &n, &err) == 0);
        CHECK_INT(n, 1);
    }
    drain_steps();
    CHECK_INT(tally().dead, 1);
    CHECK_INT(calls[0][0], 0);
    CHECK(ocra_store_pipeline_get(fx.st, fx.ids[0], &p, &err) == 0 && p);
    if (p) {
        CHECK_STR(p->stage, "build");
        CHECK_INT(p->crashes, 3);
        CHECK_INT(p->attempts, 1);
        CHECK(p->last_error && !strncmp(p->last_error,
                                        "the worker's process died 3 times while running stage "
                                        "build (last: w1@here:2, at 20",
                                        83));
        CHECK(p->last_error && strstr(p->last_error, "); see the daemon's log"));
        CHECK(p->last_error && !strstr(p->last_error, "none recorded"));
    }
    ocra_store_pipeline_free(p);
    p = NULL;
    /* ocra retry: both counts start afresh, and the build runs */
    CHECK(ocra_store_stage_retry(fx.st, fx.ids[0], &err) == 0);
    drain_steps();
    CHECK_INT(tally().done, 1);
    CHECK_INT(calls[0][0], 1);
out:
    ocra_store_pipeline_free(p);
    fixture_fini();
}

static void
test_stage_table_is_checked(void)
{
    static const struct ocra_daemon_stage dup[] = {
        {"a", "validated", op_build, true, false},
        {"a", "reported", op_report, true, false},
    };
    static const struct ocra_daemon_stage gated_last[] = {
        {"report", "reported", op_report, true, true},
    };
    struct ocra_config cfg;
    struct ocra_daemon *d = NULL;
    struct ocra_daemon_opts o = {.cfg = &cfg, .stages = dup, .n_stages = 2};
    struct ocra_err err = {0};

    ocra_config_init(&cfg);
    CHECK(ocra_daemon_new(&o, &d, &err) == -1);
    CHECK(strstr(err.msg, "stage a listed twice") != NULL);
    o.stages = gated_last;
    o.n_stages = 1;
    CHECK(ocra_daemon_new(&o, &d, &err) == -1);
    CHECK_INT(err.code, EINVAL);
    /* the real table: validate first, report last, allocate and run gated */
    CHECK_STR(ocra_daemon_stages[0].name, "validate");
    CHECK_STR(ocra_daemon_stages[ocra_daemon_n_stages - 1].name, "report");
    for (size_t i = 0; i < ocra_daemon_n_stages; i++)
        CHECK(ocra_daemon_stages[i].gated == (!strcmp(ocra_daemon_stages[i].name, "allocate") ||
                                              !strcmp(ocra_daemon_stages[i].name, "run")));
    ocra_config_fini(&cfg);
}

/* ---- the HTTP API's hooks (daemon_api.c) -------------------------------------------------- */

static int
op_out(const struct ocra_daemon_job *job, json_t **output)
{
    const char *st = job->claim->stage;

    if (!strcmp(st, "push"))
        *output =
            json_pack("{s:s,s:s,s:[s]}", "digest", "sha256:feed", "repo", "team/m", "tags", "1.0");
    else if (!strcmp(st, "run"))
        *output = json_pack("{s:s,s:s}", "runner", "docker", "container", "c0");
    else if (!strcmp(st, "complete"))
        *output = json_pack("{s:s,s:i}", "runner", "docker", "exitCode", 0);
    else
        *output = json_pack("{s:s,s:s}", "chain", "ain:0", "tx", "0xabc");
    return 0;
}

static int
op_lineage(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job, const json_t *inputs,
           json_t **output, struct ocra_err *err)
{
    (void)ctx;
    (void)inputs;
    (void)err;
    return op_out(job, output);
}

static const struct ocra_daemon_stage lineage_stages[] = {
    {"push", "pushed", op_lineage, true, false},
    {"run", "running", op_lineage, true, true},
    {"complete", "completed", op_lineage, true, false},
    {"report", "reported", op_lineage, true, false},
};

/* GET path of the server at port: the JSON body, or NULL. */
static json_t *
api_get(unsigned port, const char *path)
{
    struct ocra_http_resp resp = {0};
    struct ocra_err err = {0};
    char url[256];
    struct ocra_http_req req = {.method = "GET", .url = url, .timeout_ms = 5000};
    json_t *j = NULL;

    (void)snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", port, path);
    if (ocra_http_do(&req, &resp, &err) == 0 && resp.status == 200)
        j = ocra_json_parse(resp.body, resp.body_len, 0, NULL);
    else
        fprintf(stderr, "  GET %s: %ld %s\n", path, resp.status, err.msg);
    ocra_http_resp_fini(&resp);
    return j;
}

static void
put_image(const char *digest, const char *tags, int64_t created)
{
    struct ocra_store_image im = {.digest = digest,
                                  .registry = "127.0.0.1:5000",
                                  .repo = "team/m",
                                  .tags = tags,
                                  .event = fx.ids[0],
                                  .record = "{}",
                                  .created_ms = created};
    struct ocra_err err = {0};

    CHECK(ocra_store_image_put(fx.st, &im, &err) == 0);
}

static void
test_api_lineage_images_and_stage_metrics(void)
{
    const struct ocra_metrics_std *std = ocra_metrics_std();
    const char *const push[] = {"push"}, *const run[] = {"docker", "completed"};
    double pushes = ocra_metrics_value(std->stage_seconds, push);
    double runs = ocra_metrics_value(std->runs, run);
    struct ocra_store_alloc a = {.replica = 0, .n_devs = 2, .devs = {0, 1}, .gpu_milli = 1000};
    struct ocra_api_opts o = {.listen = "127.0.0.1:0"};
    struct ocra_api *api = NULL;
    struct ocra_err err = {0};
    json_t *ev = NULL, *ims = NULL, *st;
    char path[160];

    if (!fixture_init(lineage_stages, 4, 1, 1))
        goto out;
    drain_steps();
    CHECK_INT(ocra_metrics_value(std->stage_seconds, push), pushes + 1);
    CHECK_INT(ocra_metrics_value(std->runs, run), runs + 1);
    snprintf(a.event_id, sizeof(a.event_id), "%s", fx.ids[0]);
    snprintf(a.node, sizeof(a.node), "gpu-a");
    CHECK(ocra_store_alloc_insert(fx.st, &a, &err) == 0);
    put_image("sha256:1111111111111111111111111111111111111111111111111111111111111111",
              "[\"old\"]", 1000);
    put_image("sha256:2222222222222222222222222222222222222222222222222222222222222222",
              "[\"1.0\",\"latest\"]", 2000);
    o.journal = fx.t.path;
    if (!(api = ocra_daemon_api_new(&fx.cfg, NULL, &o, &err))) {
        fprintf(stderr, "  api: %s\n", err.msg);
        CHECK(api != NULL);
        goto out;
    }
    snprintf(path, sizeof(path), "/api/v1/events/%s", fx.ids[0]);
    CHECK((ev = api_get(ocra_api_port(api), path)) != NULL);
    CHECK_STR(ocra_json_str(json_object_get(ev, "pipeline"), "status"), "reported");
    st = json_object_get(ev, "stages");
    CHECK_INT(json_array_size(st), 4);
    CHECK_STR(ocra_json_str(json_array_get(st, 1), "stage"), "run");
    CHECK_STR(ocra_json_str(json_array_get(st, 1), "state"), "done");
    CHECK_INT(ocra_json_int(json_array_get(st, 1), "attempts", 0), 1);
    CHECK(ocra_json_int(json_array_get(st, 3), "finishedMs", 0) > 0);
    /* the newest image record of the event wins over the push stage's output */
    CHECK_STR(ocra_json_str(json_object_get(ev, "image"), "digest"),
              "sha256:2222222222222222222222222222222222222222222222222222222222222222");
    CHECK_STR(
        json_string_value(json_array_get(json_object_get(json_object_get(ev, "image"), "tags"), 1)),
        "latest");
    CHECK_STR(ocra_json_str(json_object_get(ev, "allocation"), "node"), "gpu-a");
    CHECK_INT(json_array_size(json_object_get(json_object_get(ev, "allocation"), "gpus")), 2);
    CHECK_STR(ocra_json_str(json_object_get(ev, "run"), "runner"), "docker");
    CHECK_STR(ocra_json_str(json_object_get(ev, "run"), "state"), "completed");
    CHECK_INT(ocra_json_int(json_object_get(ev, "run"), "exitCode", -1), 0);
    CHECK_STR(ocra_json_str(json_object_get(ev, "report"), "tx"), "0xabc");
    CHECK((ims = api_get(ocra_api_port(api), "/api/v1/images?limit=1")) != NULL);
    CHECK_INT(json_array_size(json_object_get(ims, "images")), 1);
    CHECK_STR(ocra_json_str(json_array_get(json_object_get(ims, "images"), 0), "digest"),
              "sha256:2222222222222222222222222222222222222222222222222222222222222222");
out:
    json_decref(ev);
    json_decref(ims);
    ocra_daemon_api_free(api);
    fixture_fini();
}

/* A heartbeat (load >= 0: with it) or completed report on run (event, replica)'s socket, with
 * the instance id the message says. */
static void
heartbeat(const char *event, int replica, const char *instance, int64_t load, bool completed)
{
    struct ocra_agentd_msg m = {.type = completed ? OCRA_AGENTD_COMPLETED : OCRA_AGENTD_HEARTBEAT,
                                .has_load = load >= 0,
                                .load = load >= 0 ? load : 0};

    snprintf(m.event, sizeof(m.event), "%s", event);
    snprintf(m.instance, sizeof(m.instance), "%s", instance);
    ocra_daemon_scale_report(fx.d, &m, replica);
}

static int64_t
load_of(const char *event, int64_t later_ms, int *n)
{
    return ocra_daemon_scale_load(fx.d, event, later_ms, n);
}

static void
test_autoscale_loads_from_heartbeats(void)
{
    struct ocra_err err = {0};
    int n = -1;

    if (!fixture_init(test_stages, 3, 1, 1))
        return;
    fx.cfg.agent.heartbeat_s = 2;      /* a load is fresh for 6 s */
    CHECK_INT(load_of("e", 0, &n), 0); /* no loop yet */
    CHECK_INT(ocra_daemon_scale_start(fx.d, &err), 0);
    heartbeat("e", 0, "a", 6, false);
    heartbeat("e", 1, "b", 4, false);
    heartbeat("e", 2, "c", -1, false); /* reports none: counts nothing */
    heartbeat("f", 0, "a", 1, false);  /* another event, same replica and instance */
    CHECK_INT(load_of("e", 0, &n), 10);
    CHECK_INT(n, 2);
    CHECK_INT(load_of("f", 0, &n), 1);
    heartbeat("e", 0, "a", 2, false); /* the last load counts, not the sum of loads */
    CHECK_INT(load_of("e", 0, &n), 6);
    heartbeat("e", 1, "b", -1, false); /* says none any more */
    CHECK_INT(load_of("e", 0, &n), 2);
    CHECK_INT(n, 1);
    heartbeat("e", 0, "a", -1, true); /* completed */
    CHECK_INT(load_of("e", 0, &n), 0);
    CHECK_INT(n, 0);
    /* fresh for 3 heartbeats: 6 s */
    CHECK_INT(load_of("f", 5000, &n), 1);
    CHECK_INT(load_of("f", 6001, &n), 0);
    CHECK_INT(n, 0);
    ocra_daemon_scale_stop(fx.d);
    CHECK_INT(load_of("f", 0, &n), 0);
    fixture_fini();
}

/* One run holds one load whatever its messages say: a workload that floods heartbeats under
 * thousands of instance ids from one run's socket replaces its own replica's load, and fills
 * no table that another run's load would be dropped from. */
static void
test_autoscale_one_load_per_run(void)
{
    struct ocra_err err = {0};
    char inst[32];
    int n = -1;

    if (!fixture_init(test_stages, 3, 1, 1))
        return;
    fx.cfg.agent.heartbeat_s = 2;
    CHECK_INT(ocra_daemon_scale_start(fx.d, &err), 0);
    for (int i = 0; i < 5000; i++) {
        snprintf(inst, sizeof(inst), "forged%d", i);
        heartbeat("forger", 0, inst, 1000, false);
    }
    CHECK_INT(load_of("forger", 0, &n), 1000);
    CHECK_INT(n, 1);
    heartbeat("legit", 0, "l0", 3, false); /* still counted */
    heartbeat("legit", 1, "l1", 3, false);
    CHECK_INT(load_of("legit", 0, &n), 6);
    CHECK_INT(n, 2);
    ocra_daemon_scale_stop(fx.d);
    fixture_fini();
}

/* ---- runs (begin): a stopping daemon checkpoints the complete stage's wait */

static atomic_int fake_waits;     /* wait calls that timed out */
static atomic_bool fake_finished; /* the fake workload has exited (status 0) */

static int
fake_wait(struct ocra_runner *r, const struct ocra_run_job *job, long timeout_ms, int *exit_code,
          struct ocra_err *err)
{
    (void)r;
    if (atomic_load(&fake_finished)) {
        *exit_code = 0;
        return 0;
    }
    usleep((useconds_t)timeout_ms * 1000u);
    atomic_fetch_add(&fake_waits, 1);
    return ocra_err_set(err, ETIMEDOUT, "wait for %s: still running", job->name);
}

static int
op_wait(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job, const json_t *inputs,
        json_t **output, struct ocra_err *err)
{
    struct ocra_runner r = {.name = "fake", .wait = fake_wait};
    struct ocra_run_job rj = {.id = "c0ffee", .name = "ocra-fake"};
    bool orphaned = false;
    int code = -1;

    (void)inputs;
    if (ocra_daemon_run_wait(ctx, &r, &rj, job->event->id, &code, &orphaned, err) < 0)
        return -1;
    record(job, 1);
    *output = json_pack("{s:i}", "exitCode", code);
    return 0;
}

static const struct ocra_daemon_stage wait_stages[] = {
    {"build", "pushed", op_build, true, false},
    {"complete", "completed", op_wait, true, false},
    {"report", "reported", op_report, true, false},
};

static void
test_stopping_daemon_checkpoints_a_waiting_stage(void)
{
    struct ocra_daemon_opts o = {
        .cfg = &fx.cfg, .stages = wait_stages, .n_stages = 3, .no_watch = true};
    struct ocra_store_pipeline *p = NULL;
    struct ocra_daemon_stats s;
    struct ocra_err err = {0};
    struct hist h;

    atomic_store(&fake_waits, 0);
    atomic_store(&fake_finished, false);
    if (!fixture_init(wait_stages, 3, 1, 1))
        goto out;
    CHECK(ocra_daemon_start(fx.d, &err) == 0);
    for (int i = 0; i < 3000 && atomic_load(&fake_waits) < 1; i++) { /* a bound, not a timing */
        CHECK(ocra_daemon_tick(fx.d, &err) == 0);
        usleep(10000);
    }
    CHECK(atomic_load(&fake_waits) >= 1);
    /* the workload never ends by itself here: the stop returns because the wait is sliced */
    ocra_daemon_stop(fx.d);
    ocra_daemon_stats(fx.d, &s);
    CHECK_INT(s.dead, 0);
    CHECK_INT(s.retried, 0);
    CHECK(ocra_store_pipeline_get(fx.st, fx.ids[0], &p, &err) == 0 && p);
    if (p) {
        CHECK_STR(p->stage, "complete");
        CHECK_STR(p->state, "ready");
        CHECK_INT(p->attempts, 0); /* a checkpoint uses no attempt */
        CHECK(p->last_error && strstr(p->last_error, "checkpointed") != NULL);
    }
    ocra_store_pipeline_free(p);
    p = NULL;
    h = history(0);
    CHECK_INT(h.done, 1); /* build */
    CHECK_INT(calls[0][1], 0);
    /* the next daemon waits again and the workload's end completes the event */
    atomic_store(&fake_finished, true);
    ocra_daemon_free(fx.d);
    fx.d = NULL;
    CHECK(ocra_daemon_new(&o, &fx.d, &err) == 0);
    if (!fx.d)
        goto out;
    drain_steps();
    CHECK(ocra_store_pipeline_get(fx.st, fx.ids[0], &p, &err) == 0 && p);
    if (p)
        CHECK_STR(p->status, "reported");
    ocra_store_pipeline_free(p);
    h = history(0);
    CHECK_INT(h.rows, 4); /* build, complete released, complete done, report */
    CHECK_INT(h.done, 3);
    CHECK_INT(calls[0][1], 1);
out:
    fixture_fini();
}

/* ---- runs (end) */

/* ---- supervise (begin) */

/* A complete stage as the supervised one answers: "runs on" (EINPROGRESS) at the first look,
 * then the end: a timeout for event 0, a completion for the others. */
static int
op_park(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job, const json_t *inputs,
        json_t **output, struct ocra_err *err)
{
    int i = event_index(job);
    bool first;

    (void)ctx;
    (void)inputs;
    pthread_mutex_lock(&calls_mu);
    first = calls[i][1]++ == 0;
    pthread_mutex_unlock(&calls_mu);
    if (first)
        return ocra_err_set(err, EINPROGRESS, "ocra-x (c1) runs: supervised");
    *output = i == 0 ? ocra_daemon_verdict("timeout", "the workload ran past its time limit")
                     : json_pack("{s:i}", "exitCode", 0);
    return 0;
}

static const struct ocra_daemon_stage park_stages[] = {
    {"build", "pushed", op_build, true, false},
    {"complete", "completed", op_park, true, false},
    {"report", "reported", op_report, true, false},
};

/* A running workload parks its event (state supervised, no attempt used, nothing dead) until
 * it is woken; a timeout verdict ends the event at outcome timeout, reported. */
static void
test_running_workload_parks_its_event_supervised(void)
{
    struct ocra_store_pipeline *p = NULL;
    struct ocra_daemon_stats s;
    struct ocra_err err = {0};
    char **ids = NULL;
    size_t n = 0;
    struct hist h;

    if (!fixture_init(park_stages, 3, 3, 3))
        goto out;
    drain_steps();
    CHECK_INT(ocra_store_stage_in_state(fx.st, "supervised", &ids, &n, &err), 0);
    CHECK_INT(n, 3);
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    CHECK(ocra_store_pipeline_get(fx.st, fx.ids[0], &p, &err) == 0 && p);
    if (p) {
        CHECK_STR(p->stage, "complete");
        CHECK_STR(p->state, "supervised");
        CHECK_STR(p->status, "pushed");
        CHECK_INT(p->attempts, 0); /* parking uses no attempt */
    }
    ocra_store_pipeline_free(p);
    p = NULL;
    ocra_daemon_stats(fx.d, &s);
    CHECK_INT(s.dead, 0);
    CHECK_INT(s.retried, 0);
    /* nothing claims a parked event; a wake makes it ready once */
    drain_steps();
    CHECK_INT(calls[0][1], 1);
    for (int i = 0; i < 3; i++) {
        bool woken = false;

        CHECK(ocra_store_stage_wake_event(fx.st, fx.ids[i], "supervised", &woken, &err) == 0);
        CHECK(woken);
    }
    drain_steps();
    CHECK(ocra_store_pipeline_get(fx.st, fx.ids[0], &p, &err) == 0 && p);
    if (p) {
        CHECK_STR(p->status, "reported");
        CHECK_STR(p->outcome, "timeout");
    }
    ocra_store_pipeline_free(p);
    p = NULL;
    CHECK_INT(calls[0][2], 1); /* reported once, at status timeout */
    CHECK(ocra_store_pipeline_get(fx.st, fx.ids[1], &p, &err) == 0 && p);
    if (p)
        CHECK_STR(p->outcome, "completed");
    ocra_store_pipeline_free(p);
    h = history(0);
    CHECK_INT(h.rows, 4); /* build, complete supervised, complete done, report */
    CHECK_INT(h.done, 3);
out:
    fixture_fini();
}

/* The time limit: the spec's maxDuration capped by the operator's maximum of its type. */
static void
test_run_limit_is_the_spec_capped_by_the_operator(void)
{
    struct ocra_config cfg;
    struct ocra_spec sp = {0};

    ocra_config_init(&cfg);
    CHECK_INT(cfg.run.max_duration_training_s, 86400); /* the defaults */
    CHECK_INT(cfg.run.max_duration_inference_s, 0);
    sp.workload.type = OCRA_SPEC_INFERENCE;
    CHECK_INT(ocra_daemon_run_limit_s(&cfg, &sp), 0); /* none, unbounded */
    sp.workload.max_duration_s = 600;
    CHECK_INT(ocra_daemon_run_limit_s(&cfg, &sp), 600);
    sp.workload.type = OCRA_SPEC_TRAINING;
    CHECK_INT(ocra_daemon_run_limit_s(&cfg, &sp), 600);
    sp.workload.max_duration_s = 100000;
    CHECK_INT(ocra_daemon_run_limit_s(&cfg, &sp), 86400); /* capped */
    sp.workload.max_duration_s = 0;
    CHECK_INT(ocra_daemon_run_limit_s(&cfg, &sp), 86400); /* the operator's for none */
    cfg.run.max_duration_inference_s = 3600;
    sp.workload.type = OCRA_SPEC_INFERENCE;
    sp.workload.max_duration_s = 7200;
    CHECK_INT(ocra_daemon_run_limit_s(&cfg, &sp), 3600);
    ocra_config_fini(&cfg);
}
/* ---- supervise (end) */

/* ---- the scheduler queue ----------------------------------------------------------------- */

/* The order the queue's events reached the run stage. */
static char q_started[16][96];
static int q_n_started;

/* allocate: one CPU and 1 GiB (event 6 asks 64 CPUs: never fits), through the daemon's own
 * placement and queue. */
static int
op_q_allocate(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job, const json_t *inputs,
              json_t **output, struct ocra_err *err)
{
    struct ocra_sched_req req = {.cpu_milli = 1000, .ram_mib = 1024};

    (void)inputs;
    if (strstr(job->event->spec, "\"huge\""))
        req.cpu_milli = 64000;
    return ocra_daemon_place(ctx, job, &req, output, err);
}

/* run: records the start and ends at once, giving its room back (the queue moves on). */
static int
op_q_run(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job, const json_t *inputs,
         json_t **output, struct ocra_err *err)
{
    (void)inputs;
    pthread_mutex_lock(&calls_mu);
    if (q_n_started < 16)
        snprintf(q_started[q_n_started++], sizeof(q_started[0]), "%s", job->event->id);
    pthread_mutex_unlock(&calls_mu);
    if (ocra_daemon_release(ctx, job->event->id, err) < 0)
        return -1;
    *output = json_pack("{s:s}", "exit", "0");
    return 0;
}

static const struct ocra_daemon_stage queue_stages[] = {
    {"allocate", "allocated", op_q_allocate, true, false},
    {"run", "running", op_q_run, true, false},
    {"report", "reported", op_report, true, false},
};

struct q_fixture {
    struct tmpdb t;
    struct ocra_config cfg;
    struct ocra_store *st;
    struct ocra_daemon *d;
    char ids[8][96], txs[8][67];
};

/* Seven events on a node of one CPU: 0..3 by publisher 0xa.., 4..5 by 0xb.. (priority 5),
 * 6 asks more than the node has. */
static bool
q_fixture_init(struct q_fixture *q, const char *policy)
{
    static const char *const signers[] = {
        "0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "0xBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB", "0xbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
        "0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    static const char *const paths[] = {
        "/apps/t/models/m0", "/apps/t/models/m1", "/apps/t/models/m2", "/apps/t/models/m3",
        "/apps/t/models/m4", "/apps/t/models/m5", "/apps/t/models/m6"};
    struct ocra_store_event evs[7];
    struct ocra_daemon_opts o = {
        .cfg = &q->cfg, .stages = queue_stages, .n_stages = 3, .no_watch = true};
    struct ocra_err err = {0};
    char *yaml;
    bool ok;

    memset(q, 0, sizeof(*q));
    q_n_started = 0;
    if (tmpdb_init(&q->t) < 0)
        return false;
    yaml = ocra_xasprintf("journal:\n  path: \"%s\"\n"
                          "daemon:\n  workers: 2\n  poll_ms: 10\n  max_attempts: 2\n"
                          "api:\n  listen: \"\"\nagent:\n  socket_dir: \"\"\n"
                          "inventory:\n  local: false\n  nodes:\n"
                          "    - {name: n1, cpus: 1, memory_mib: 4096}\n"
                          "sched:\n  queue:\n    policy: %s\n"
                          "    priorities: [\"0xbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb=5\"]\n",
                          q->t.path, policy);
    ok = ocra_config_load_text("q.yaml", NULL, yaml, strlen(yaml), &q->cfg, NULL, &err) == 0;
    free(yaml);
    if (!ok) {
        fprintf(stderr, "  config: %s\n", err.msg);
        return false;
    }
    for (int i = 0; i < 7; i++) {
        (void)snprintf(q->txs[i], sizeof(q->txs[i]), "0x%064x", i);
        (void)snprintf(q->ids[i], sizeof(q->ids[i]), "ain:0:0x%064x:%d", i, i);
        evs[i] = (struct ocra_store_event){.id = q->ids[i],
                                           .chain = "ain:0",
                                           .block_number = i,
                                           .tx_hash = q->txs[i],
                                           .op_index = i,
                                           .signer = signers[i],
                                           .trusted = true,
                                           .path = paths[i],
                                           .spec = i == 6 ? "{\"huge\":true}" : "{}"};
    }
    if (ocra_store_open(q->t.path, &q->st, &err) < 0 ||
        ocra_store_append(q->st, "ain:0", evs, 7, NULL, NULL, &err) < 0 ||
        ocra_daemon_new(&o, &q->d, &err) < 0) {
        fprintf(stderr, "  fixture: %s\n", err.msg);
        return false;
    }
    return true;
}

static void
q_fixture_fini(struct q_fixture *q)
{
    ocra_daemon_free(q->d);
    ocra_store_close(q->st);
    ocra_config_fini(&q->cfg);
    tmpdb_fini(&q->t);
}

/* Steps (on this thread) until the stage machine stops at the queue or runs dry. */
static void
q_steps(struct q_fixture *q, int max)
{
    struct ocra_err err = {0};
    bool ran = true;

    for (int i = 0; ran && i < max; i++)
        if (ocra_daemon_step(q->d, q->st, &ran, &err) < 0) {
            fprintf(stderr, "  step: %s\n", err.msg);
            break;
        }
}

struct q_hist {
    int queued, done, retry, dead, max_attempt;
};

static int
q_hist_one(const struct ocra_store_stage_row *r, void *arg)
{
    struct q_hist *h = arg;
    const char *o = r->outcome ? r->outcome : "";

    if (strcmp(r->stage, "allocate") != 0)
        return 0;
    h->queued += !strcmp(o, "queued");
    h->done += !strcmp(o, "done");
    h->retry += !strcmp(o, "retry");
    h->dead += !strcmp(o, "dead");
    if (r->attempt > h->max_attempt)
        h->max_attempt = (int)r->attempt;
    return 0;
}

/* A cluster smaller than the demand: the events that find no room are queued (uncounted, no
 * worker), start one by one as the room frees (priority first, then first queued), none is
 * dead-lettered; the one that can never fit fails at once, naming the filter; `ocra queue`'s
 * document shows positions and reasons. */
static void
test_queue_starts_events_in_order_as_room_frees(void)
{
    static const int want[] = {0, 4, 5, 1, 2, 3};
    struct ocra_store_pipeline *p = NULL;
    struct q_fixture q;
    struct ocra_err err = {0};
    json_t *doc = NULL, *arr;
    int64_t n = -1;

    if (!q_fixture_init(&q, "fifo"))
        goto out;
    CHECK(ocra_store_pipeline_intake(q.st, "allocate", "report", NULL, &err) == 0);
    /* event 0 takes the node, 1..5 queue (no room, then others first), 6 fails; nothing runs
     * yet: the allocate stages come first in journal order */
    q_steps(&q, 7);
    CHECK(ocra_store_queue_count(q.st, &n, &err) == 0);
    CHECK_INT(n, 5);
    CHECK(ocra_store_pipeline_get(q.st, q.ids[6], &p, &err) == 0 && p);
    if (p) {
        CHECK_STR(p->status, "failed");
        CHECK(p->last_error && strstr(p->last_error, "no node can ever host it"));
    }
    ocra_store_pipeline_free(p);
    p = NULL;
    doc = ocra_daemon_queue_json(&q.cfg, q.st, &err);
    CHECK(doc != NULL);
    arr = json_object_get(doc, "queued");
    CHECK_INT(json_array_size(arr), 5);
    if (json_array_size(arr) == 5) {
        json_t *first = json_array_get(arr, 0), *last = json_array_get(arr, 4);

        CHECK_STR(json_string_value(json_object_get(first, "event")), q.ids[4]);
        CHECK_INT(json_integer_value(json_object_get(first, "position")), 1);
        CHECK_INT(json_integer_value(json_object_get(first, "priority")), 5);
        CHECK_STR(json_string_value(json_object_get(first, "owner")),
                  "0xbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
        CHECK_STR(json_string_value(json_object_get(first, "wait")), "room");
        CHECK_STR(json_string_value(json_object_get(last, "event")), q.ids[3]);
        CHECK_STR(json_string_value(json_object_get(last, "wait")), "priority");
        CHECK(json_is_string(json_object_get(last, "reason")));
        CHECK_STR(json_string_value(json_object_get(doc, "policy")), "fifo");
    }
    json_decref(doc);
    /* the rest runs: each run gives its CPU back and the dispatcher starts the next */
    q_steps(&q, 200);
    CHECK_INT(q_n_started, 6);
    for (int i = 0; i < 6 && i < q_n_started; i++)
        CHECK_STR(q_started[i], q.ids[want[i]]);
    CHECK(ocra_store_queue_count(q.st, &n, &err) == 0);
    CHECK_INT(n, 0);
    for (int i = 0; i < 6; i++) {
        struct q_hist h = {0};

        CHECK(ocra_store_stage_history(q.st, q.ids[i], q_hist_one, &h, &err) == 0);
        CHECK_INT(h.done, 1);
        CHECK_INT(h.retry + h.dead, 0);
        CHECK_INT(h.max_attempt, 1); /* queued attempts are not counted */
        CHECK_INT(h.queued, i == 0 ? 0 : 1);
        CHECK(ocra_store_pipeline_get(q.st, q.ids[i], &p, &err) == 0 && p);
        if (p)
            CHECK_STR(p->status, "reported");
        ocra_store_pipeline_free(p);
        p = NULL;
    }
out:
    q_fixture_fini(&q);
}

/* A restart finds the queue as it was and its timed dispatch starts what fits. */
static void
test_queue_survives_a_restart(void)
{
    struct q_fixture q;
    struct ocra_err err = {0};
    int64_t n = -1;

    if (!q_fixture_init(&q, "backfill"))
        goto out;
    CHECK(ocra_store_pipeline_intake(q.st, "allocate", "report", NULL, &err) == 0);
    q_steps(&q, 7);
    CHECK(ocra_store_queue_count(q.st, &n, &err) == 0);
    CHECK_INT(n, 5);
    /* event 0's room is given back behind the daemon's back (its run never came) */
    CHECK(ocra_store_alloc_release(q.st, q.ids[0], -1, NULL, &err) == 0);
    CHECK(ocra_daemon_start(q.d, &err) == 0); /* the first tick dispatches */
    ocra_daemon_stop(q.d);
    CHECK(ocra_store_queue_count(q.st, &n, &err) == 0);
    CHECK_INT(n, 4);
out:
    q_fixture_fini(&q);
}

/* Many Docker hosts: a node whose own engine does not answer leaves the inventory the
 * allocator places on (the others stay), and the nodes' report says it is down and why; the
 * build loads nothing into this host's engine then. */
static void
test_hosts_silent_engine_takes_no_placements(void)
{
    static const char yaml[] = "inventory:\n  local: false\n  nodes:\n"
                               "    - {name: gone, cpus: 1, memory_mib: 1024,"
                               " docker_host: \"unix:///nonexistent/ocra-test/docker.sock\"}\n"
                               "    - {name: plain, cpus: 1, memory_mib: 1024,"
                               " docker_host: \"unix:///nonexistent/ocra-test/plain.sock\"}\n"
                               "    - {name: none, cpus: 1, memory_mib: 1024}\n";
    struct ocra_config cfg;
    struct ocra_sched_inventory inv;
    struct ocra_err err = {0};
    json_t *nodes;

    CHECK_INT(ocra_config_load_text("h.yaml", NULL, yaml, strlen(yaml), &cfg, NULL, &err), 0);
    CHECK(!(ocra_daemon_runner_supports(&cfg) & OCRA_RUN_LOCAL_ENGINE));
    CHECK_INT(ocra_daemon_inventory(&cfg, &inv, NULL, &err), 0);
    CHECK_INT((int)inv.n, 3);
    /* plain answered a moment ago: it is not asked again, and stays; none has no engine */
    ocra_run_hosts_note("plain", NULL);
    ocra_daemon_hosts_drop_down(&cfg, &inv);
    CHECK_INT((int)inv.n, 1);
    CHECK_STR(inv.v[0].node.name, "plain");
    nodes = json_pack("[{s:s}, {s:s}]", "name", "gone", "name", "none");
    CHECK_INT((int)ocra_daemon_hosts_json(&cfg, nodes, 60000), 1);
    CHECK(
        json_is_false(json_object_get(json_object_get(json_array_get(nodes, 0), "engine"), "up")));
    CHECK(strstr(json_string_value(
                     json_object_get(json_object_get(json_array_get(nodes, 0), "engine"), "error")),
                 "nonexistent") != NULL);
    CHECK(!json_object_get(json_array_get(nodes, 1), "engine"));
    json_decref(nodes);
    ocra_sched_inventory_fini(&inv);
    ocra_config_fini(&cfg);
}

OCRA_TEST_MAIN(OCRA_TEST(test_hosts_silent_engine_takes_no_placements),
               OCRA_TEST(test_autoscale_loads_from_heartbeats),
               OCRA_TEST(test_autoscale_one_load_per_run),
               OCRA_TEST(test_every_stage_runs_exactly_once_under_concurrent_workers),
               OCRA_TEST(test_transient_failures_retry_then_dead_letter_without_blocking),
               OCRA_TEST(test_unwired_stage_waits_without_using_attempts),
               OCRA_TEST(test_newer_version_supersedes_older_before_deployment),
               OCRA_TEST(test_removal_supersedes_older_before_deployment),
               OCRA_TEST(test_every_report_shape_is_storable_on_ain),
               OCRA_TEST(test_crashed_workers_claim_is_taken_over_after_its_lease),
               OCRA_TEST(test_dead_process_claim_taken_over_at_once_not_as_an_attempt),
               OCRA_TEST(test_crash_cap_dead_letters_with_the_reason),
               OCRA_TEST(test_stage_table_is_checked),
               OCRA_TEST(test_api_lineage_images_and_stage_metrics),
               OCRA_TEST(test_stopping_daemon_checkpoints_a_waiting_stage),
               OCRA_TEST(test_running_workload_parks_its_event_supervised),
               OCRA_TEST(test_run_limit_is_the_spec_capped_by_the_operator),
               OCRA_TEST(test_queue_starts_events_in_order_as_room_frees),
               OCRA_TEST(test_queue_survives_a_restart))
