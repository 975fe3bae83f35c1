/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_plan.c: feeds arbitrary bytes through the model spec parser and, when the spec is
 * valid, through the planner with the real tables of data/ (as a GPU plan, as a CPU-only
 * plan with mirrors, and under a base image policy with a model registry). Besides memory errors,
 * it checks the planner's promises: planning twice gives the same text, a failure always explains
 * itself, and a plan always has a Dockerfile and a 64-digit toolchain hash. Any broken promise
 * aborts.
 */
#include "plan/plan.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ocra_plan_data *
tables(void)
{
    static struct ocra_plan_data *d;

    if (!d && ocra_plan_data_load(NULL, &d, NULL) < 0)
        abort(); /* the data directory is compiled in (or $OCRA_DATA_DIR) */
    return d;
}

static char *
plan_once(const struct ocra_spec *s, const struct ocra_plan_options *o)
{
    struct ocra_spec_problems probs = {0};
    struct ocra_err err = {0};
    struct ocra_plan *p = NULL;
    char *text = NULL;

    if (ocra_plan_new(tables(), s, o, &p, &probs, &err) == 0) {
        if (probs.n != 0 || strlen(ocra_plan_toolchain_hash(p)) != 64 ||
            strncmp(ocra_plan_dockerfile(p), "# Generated", 11) != 0)
            abort();
        text = ocra_plan_to_text(p);
    } else if (probs.n == 0 || err.msg[0] == '\0') {
        abort(); /* every failure explains itself */
    }
    ocra_plan_free(p);
    ocra_spec_problems_fini(&probs);
    return text;
}

static void
plan_twice(const struct ocra_spec *s, const struct ocra_plan_options *o)
{
    char *a = plan_once(s, o), *b = plan_once(s, o);

    if ((a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0))
        abort();
    free(a);
    free(b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct ocra_plan_mirror mirrors[] = {{"nvidia/cuda", "m.internal/cuda"},
                                                      {"*", "hub.internal"}};
    static const struct ocra_spec_policy pol = {.default_name = "model"};
    struct ocra_plan_options gpu = {.gpus_given = false};
    static const char *const bases[] = {"docker.io/", "127.0.0.1:5000/", "127.0.0.1:5000/ocra/ok"};
    static const char *const models[] = {"http://127.0.0.1:5000/ocra"};
    struct ocra_plan_options mirrored = {.gpus_given = true, .mirrors = mirrors, .n_mirrors = 2};
    /* the base image policy: an allowlist with prefixes, a model registry, a mirror into it */
    struct ocra_plan_options policed = {.base_images = bases,
                                        .n_base_images = 3,
                                        .model_registries = models,
                                        .n_model_registries = 1,
                                        .mirrors = mirrors + 1,
                                        .n_mirrors = 1};
    struct ocra_spec *s = NULL;

    if (ocra_spec_parse((const char *)data, size, &pol, &s, NULL, NULL) < 0)
        return 0;
    plan_twice(s, &gpu);
    plan_twice(s, &mirrored);
    plan_twice(s, &policed);
    ocra_spec_free(s);
    return 0;
}
