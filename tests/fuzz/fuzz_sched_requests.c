/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_sched_requests.c: feeds arbitrary bytes to the parser of the Azure LLM inference trace
 * (TIMESTAMP,ContextTokens,GeneratedTokens). Besides memory errors it checks its promises: a
 * failure is EINVAL with a "f:..." message and no output; a success gives arrivals from 0 in
 * time order and token counts within bounds. Small parsed traces are replayed through the
 * autoscaler, whose report must add up: every request counted once, waits ordered, replicas
 * within bounds. Any broken promise aborts.
 */
#include "sched/sched.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(const struct ocra_sched_request *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (r[i].arrival_ms < 0 || (i == 0 && r[i].arrival_ms != 0) ||
            (i > 0 && r[i].arrival_ms < r[i - 1].arrival_ms) || r[i].context_tokens < 0 ||
            r[i].generated_tokens < 0 || r[i].context_tokens > (1 << 30))
            abort();
}

static void
replay(const struct ocra_sched_request *r, size_t n)
{
    struct ocra_sched_node node = {.name = "g", .gpu_model = "X", .gpu_count = 4};
    struct ocra_sched_replay_conf c = {
        .scale = {.min = 1, .max = 3, .target = 2, .tolerance = 0.1, .down_cooldown_ms = 5000},
        .interval_ms = 1000,
        .startup_ms = 500,
        .slots = 2,
        .service_ms = 700,
        .bucket_ms = 10000,
        .replica = {.gpus = 1}};
    struct ocra_sched_replay_result res;
    size_t arrivals = 0;

    if (ocra_sched_replay(&node, 1, r, n, &c, &res, NULL) < 0)
        abort(); /* a replica always fits */
    for (size_t b = 0; b < res.n_buckets; b++)
        arrivals += res.buckets[b].arrivals;
    if (res.requests != n || arrivals != n || res.waited > n || res.replicas_max > 3 ||
        res.wait_p50_ms > res.wait_p90_ms || res.wait_p90_ms > res.wait_p99_ms ||
        res.wait_p99_ms > res.wait_max_ms)
        abort();
    free(res.buckets);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ocra_sched_request *r = NULL;
    struct ocra_err err = {0};
    size_t n = 0;

    if (size > 64 * 1024)
        return 0;
    if (ocra_sched_requests_parse("f", (const char *)data, size, &r, &n, &err) < 0) {
        if (err.code != EINVAL || strncmp(err.msg, "f", 1) != 0 || r)
            abort();
        return 0;
    }
    check(r, n);
    /* a span of at most a day keeps the replay's timeline small */
    if (n <= 512 && (n == 0 || r[n - 1].arrival_ms <= 86400000))
        replay(r, n);
    free(r);
    return 0;
}
