/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_slurm_reply: slurmrestd's replies (openapi/v0.0.38) are outside input. The first byte
 * chooses the parser: 0 a GET /jobs reply through the reply check and the adopt search, 1 a
 * GET /nodes reply (and the same bytes as a /partitions reply) into the inventory, 2 a gres
 * string, 3 an RFC 3339 time as the Docker Engine reports a container's start and end (the
 * same runners' run times). The parsers must never read out of bounds, leak or crash, and what they
 * return must hold to the bounds their header promises.
 */
#include "run/run_int.h"

#include <stdlib.h>
#include <string.h>

/* A fuzzing invariant: checked in every build (REQUIRE() would vanish under NDEBUG). */
#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
jobs(const char *text, size_t len)
{
    struct ocra_run_slurm_job j = {0};
    struct ocra_err err = {0};
    json_t *doc = NULL;

    if (ocra_run_slurm_reply(200, text, len, &doc, &err) < 0)
        return;
    if (ocra_run_slurm_jobs_find(doc, "ocra-0123456789ab", "ocra", &j, &err) == 1) {
        REQUIRE(j.job_id > 0 && strcmp(j.name, "ocra-0123456789ab") == 0);
        REQUIRE(j.exit_code >= 0 && j.exit_code <= 255);
        REQUIRE(j.phase != OCRA_RUN_SLURM_CANCELLED && j.phase != OCRA_RUN_SLURM_LOST);
    }
    json_decref(doc);
}

static void
inventory(const char *text, size_t len)
{
    struct ocra_run_slurm_inventory inv = {0};
    struct ocra_err err = {0};
    json_t *doc = NULL;

    if (ocra_run_slurm_reply(200, text, len, &doc, &err) < 0)
        return;
    if (ocra_run_slurm_inventory_parse(doc, doc, &inv, &err) == 0) {
        for (size_t i = 0; i < inv.n_nodes; i++) {
            const struct ocra_run_slurm_node *n = &inv.nodes[i];

            REQUIRE(n->node.gpu_count >= 0 && n->node.gpu_count <= OCRA_SCHED_MAX_GPUS);
            REQUIRE(n->gpus_alloc >= 0 && n->gpus_alloc <= n->gpus);
            REQUIRE(strlen(n->node.gpu_model) < sizeof(n->node.gpu_model));
        }
        for (size_t i = 0; i < inv.n_parts; i++)
            REQUIRE(inv.parts[i].gpus_alloc <= inv.parts[i].gpus_total);
    }
    ocra_run_slurm_inventory_fini(&inv);
    json_decref(doc);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char model[OCRA_SCHED_MODEL_MAX];
    struct ocra_err err = {0};
    int64_t ms = -1;
    uint32_t idx = 0;
    int count = -1;
    char *text;

    if (size < 1)
        return 0;
    text = ocra_xmalloc(size); /* the bytes after the mode, NUL-terminated */
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    switch (data[0] % 4) {
    case 0:
        jobs(text, size - 1);
        break;
    case 1:
        inventory(text, size - 1);
        break;
    case 3:
        if (ocra_run_time_parse(text, &ms, &err) == 0)
            REQUIRE(ms >= 0);
        break;
    default:
        if (ocra_run_slurm_gres_gpus(text, model, &count, &idx, &err) == 0)
            REQUIRE(count >= 0 && strlen(model) < sizeof(model));
    }
    free(text);
    return 0;
}
