/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_sched_jobs.c: feeds arbitrary bytes to the job trace parser of `ocra simulate --jobs`
 * (name,submit,duration,gpus[,owner,priority,preemptible,estimate]). Besides memory errors it
 * checks its promises: a failure is EINVAL with a "f:..." message and no output; a success
 * gives times, durations, estimates and GPU counts within bounds. Small traces are replayed
 * through the queue under every policy on two 8-GPU nodes: a job of more than 16 GPUs is the
 * one error (ENOSPC), and otherwise the report adds up (every job counted, p50 <= p95, the
 * average wait below the average completion time, utilisation within 0..1). Any broken promise
 * aborts.
 */
#include "sched/sched.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(const struct ocra_sched_job *j, size_t n, int *max_gpus)
{
    *max_gpus = 0;
    for (size_t i = 0; i < n; i++) {
        if (j[i].submit < 0 || j[i].duration < 1 || j[i].estimate < 1 || j[i].gpus < 1 ||
            !j[i].name[0] || !memchr(j[i].name, '\0', sizeof(j[i].name)) ||
            !memchr(j[i].owner, '\0', sizeof(j[i].owner)))
            abort();
        if (j[i].gpus > *max_gpus)
            *max_gpus = j[i].gpus;
    }
}

static void
replay(const struct ocra_sched_job *j, size_t n, int max_gpus)
{
    struct ocra_sched_node nodes[2] = {{.name = "a", .gpu_model = "X", .gpu_count = 8},
                                       {.name = "b", .gpu_model = "X", .gpu_count = 8}};
    struct ocra_sched_jobsim_result res;
    struct ocra_err err = {0};

    for (int p = 0; p < OCRA_SCHED_Q_N_POLICIES; p++) {
        struct ocra_sched_queue_conf conf = {
            (enum ocra_sched_qpolicy)p, OCRA_SCHED_BEST_FIT, 60, NULL, 0, 8};

        if (ocra_sched_jobsim(nodes, 2, j, n, &conf, &res, &err) < 0) {
            if (max_gpus <= 16 || err.code != ENOSPC)
                abort();
            continue;
        }
        if (max_gpus > 16 || res.jobs != n || res.jct_p50 > res.jct_p95 ||
            res.wait_avg > res.jct_avg || res.wait_avg < 0 || res.gpu_util < 0 ||
            res.gpu_util > 1.0000001)
            abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ocra_sched_job *j = NULL;
    struct ocra_err err = {0};
    size_t n = 0;
    int max_gpus;

    if (size > 64 * 1024)
        return 0;
    if (ocra_sched_jobs_parse("f", (const char *)data, size, &j, &n, &err) < 0) {
        if (err.code != EINVAL || strncmp(err.msg, "f", 1) != 0 || j)
            abort();
        return 0;
    }
    check(j, n, &max_gpus);
    if (n <= 48)
        replay(j, n, max_gpus);
    free(j);
    return 0;
}
