/* SPDX-License-Identifier: Apache-2.0 */
/*
 * it_run_slurm: the slurm runner's API (src/run) against the private Slurm cluster and Docker
 * engine that it_run_slurm.sh started: the inventory (the node's fake GPUs, total and then
 * allocated), a job's state through ocra_run_slurm_job_get() while it runs, and stop: the job
 * is cancelled, wait reports it stopped (ECANCELED), and its state is CANCELLED. Reads
 * SLURM_REST_URL, SLURM_REST_USER, SLURM_TOKEN_FILE, SLURM_PARTITION, SLURM_JOBS_DIR,
 * DOCKER_HOST and OCRA_IT_RUN_IMAGE (repo@sha256:...).
 */
#include "ocra_test.h"
#include "run/run.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct ocra_run_slurm_opts
opts(void)
{
    return (struct ocra_run_slurm_opts){.url = getenv("SLURM_REST_URL"),
                                        .user = getenv("SLURM_REST_USER"),
                                        .token_file = getenv("SLURM_TOKEN_FILE"),
                                        .partition = getenv("SLURM_PARTITION"),
                                        .docker_host = getenv("DOCKER_HOST"),
                                        .workdir = getenv("SLURM_JOBS_DIR"),
                                        .poll_interval_ms = 200};
}

/* The GPUs of the partition: total and allocated; -1 on failure. */
static int
partition_gpus(int *total, int *alloc)
{
    struct ocra_run_slurm_opts o = opts();
    struct ocra_run_slurm_inventory inv = {0};
    struct ocra_err err = {0};
    int ret = -1;

    if (ocra_run_slurm_inventory_get(&o, &inv, &err) < 0) {
        fprintf(stderr, "  inventory: %s\n", err.msg);
        return -1;
    }
    for (size_t i = 0; i < inv.n_parts; i++) {
        if (strcmp(inv.parts[i].name, o.partition) == 0) {
            *total = inv.parts[i].gpus_total;
            *alloc = inv.parts[i].gpus_alloc;
            ret = 0;
        }
    }
    CHECK_INT(inv.n_nodes, 1);
    if (inv.n_nodes == 1)
        CHECK_INT(inv.nodes[0].node.gpu_count, 4);
    ocra_run_slurm_inventory_fini(&inv);
    return ret;
}

static void
test_inventory_lists_the_fake_gpus(void)
{
    int total = -1, alloc = -1;

    CHECK_INT(partition_gpus(&total, &alloc), 0);
    CHECK_INT(total, 4);
    CHECK_INT(alloc, 0);
}

static void
test_stop_cancels_and_wait_reports_stopped(void)
{
    static const char *const cmd[] = {"sleep", "300", NULL};
    struct ocra_run_slurm_opts o = opts();
    struct ocra_run_spec spec = {.event_id = "test:slurm:stop",
                                 .image = getenv("OCRA_IT_RUN_IMAGE"),
                                 .cmd = cmd,
                                 .gpu_count = 1};
    struct ocra_run_slurm_job j = {0};
    struct ocra_run_job job = {0};
    struct ocra_err err = {0};
    struct ocra_runner *r = ocra_run_slurm_new(&o, &err);
    int code = -1, total = -1, alloc = -1;

    CHECK(r != NULL);
    if (!r) {
        fprintf(stderr, "  %s\n", err.msg);
        return;
    }
    CHECK_INT(r->start(r, &spec, &job, &err), 0);
    CHECK(!job.adopted);
    /* running within a minute (the node is idle) */
    for (int i = 0; i < 300; i++) {
        if (ocra_run_slurm_job_get(r, &job, &j, &err) < 0 || j.phase != OCRA_RUN_SLURM_PENDING)
            break;
        ocra_sleep_ms(200);
    }
    CHECK_INT(j.phase, OCRA_RUN_SLURM_RUNNING);
    CHECK_STR(j.name, job.name);
    CHECK_STR(j.state, "RUNNING");
    CHECK_STR(j.nodes, "ocra-n1");
    CHECK_INT(partition_gpus(&total, &alloc), 0);
    CHECK_INT(alloc, 1);
    /* a short wait times out while it runs */
    CHECK_INT(r->wait(r, &job, 300, &code, &err), -1);
    CHECK_INT(err.code, ETIMEDOUT);
    CHECK_INT(r->stop(r, &job, 5, &err), 0);
    CHECK_INT(r->wait(r, &job, 60000, &code, &err), -1);
    CHECK_INT(err.code, ECANCELED);
    CHECK(strstr(err.msg, "stopped") != NULL);
    CHECK_INT(ocra_run_slurm_job_get(r, &job, &j, &err), 0);
    CHECK_STR(j.state, "CANCELLED");
    CHECK_INT(j.phase, OCRA_RUN_SLURM_CANCELLED);
    /* stopping a stopped job is no error */
    CHECK_INT(r->stop(r, &job, 5, &err), 0);
    CHECK_INT(r->remove(r, &job, &err), 0);
    ocra_runner_free(r);
}

static void
test_bad_token_is_refused_without_showing_it(void)
{
    struct ocra_run_slurm_opts o = opts();
    struct ocra_run_slurm_inventory inv = {0};
    struct ocra_err err = {0};
    char path[] = "/tmp/ocra-it-slurm-tok.XXXXXX";
    const char *tok = "eyJhbGciOiJIUzI1NiJ9.eyJzdW4iOiJ4In0.c2lnbmF0dXJl";

    CHECK(mkstemp(path) >= 0);
    CHECK(ocra_file_write_atomic(path, tok, strlen(tok), 0600, NULL) == 0);
    o.token_file = path;
    CHECK_INT(ocra_run_slurm_inventory_get(&o, &inv, &err), -1);
    CHECK(err.code == EACCES || err.code == EIO);
    CHECK(strstr(err.msg, "c2lnbmF0dXJl") == NULL);
    CHECK(strstr(err.msg, "run.slurm.token_file") != NULL);
    fprintf(stderr, "  (the refusal reads: %s)\n", err.msg);
    unlink(path);
}

OCRA_TEST_MAIN(OCRA_TEST(test_inventory_lists_the_fake_gpus),
               OCRA_TEST(test_stop_cancels_and_wait_reports_stopped),
               OCRA_TEST(test_bad_token_is_refused_without_showing_it))
