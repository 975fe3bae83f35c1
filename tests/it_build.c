/* SPDX-License-Identifier: Apache-2.0 */
/*
 * it_build.c: runs one build step of src/build/build.h on its own, as the daemon will, for
 * tests/it_build.sh. A fresh struct ocra_build per run, no journal.
 *
 *   it_build STEP REGISTRY_URL REPO SPEC.json EVENT.json CACHE AGENT
 *
 * STEP is fetch, toolchain, model or tag. Prints "digest <manifest digest>" after model and
 * tag; exits 0, or 1 with the error on stderr. Plain-http artifact hosts from $OCRA_HTTP_HOST,
 * an internal host, address or CIDR artifacts may come from from $OCRA_ALLOW_HOST.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build/build.h"

static int
run_step(struct ocra_build *b, const char *step, struct ocra_err *err)
{
    if (strcmp(step, "fetch") == 0)
        return ocra_build_fetch(b, err);
    if (strcmp(step, "toolchain") == 0)
        return ocra_build_toolchain(b, err);
    if (strcmp(step, "model") == 0)
        return ocra_build_model(b, err);
    if (strcmp(step, "tag") == 0)
        return ocra_build_tag(b, err);
    return ocra_err_set(err, 22, "unknown step %s", step);
}

int
main(int argc, char **argv)
{
    const char *host = getenv("OCRA_HTTP_HOST"), *allow = getenv("OCRA_ALLOW_HOST");
    struct ocra_build_opts o = {0};
    struct ocra_spec_policy pol = {.http_hosts = &host,
                                   .n_http_hosts = host ? 1 : 0,
                                   .allow_hosts = &allow,
                                   .n_allow_hosts = allow ? 1 : 0};
    struct ocra_plan_options po = {0};
    struct ocra_spec_event *ev = NULL;
    struct ocra_plan_data *data = NULL;
    struct ocra_plan *plan = NULL;
    struct ocra_spec *spec = NULL;
    struct ocra_build *b = NULL;
    struct ocra_err err = {0};
    json_t *sj = NULL, *ej = NULL;
    int status = 1;

    if (argc != 8) {
        fprintf(stderr, "usage: it_build STEP REGISTRY_URL REPO SPEC EVENT CACHE AGENT\n");
        return 2;
    }
    if (!(sj = ocra_json_load_file(argv[4], 1u << 20, 0, &err)) ||
        ocra_spec_from_json(sj, &pol, &spec, NULL, &err) < 0 ||
        !(ej = ocra_json_load_file(argv[5], 1u << 20, 0, &err)) ||
        ocra_spec_event_from_json(ej, &ev, &err) < 0 || ocra_plan_data_load(NULL, &data, &err) < 0)
        goto out;
    po.event = ev;
    po.pip_index_url = getenv("OCRA_PYINDEX_URL");
    /* the test's spec names the local test image as its base: allowed as it_build.sh allows it */
    po.base_images = (const char *const *)&spec->base_image;
    po.n_base_images = spec->base_image ? 1 : 0;
    if (ocra_plan_new(data, spec, &po, &plan, NULL, &err) < 0)
        goto out;
    o.registry_url = argv[2];
    o.repo = argv[3];
    o.cache_dir = argv[6];
    o.agent = argv[7];
    o.http_hosts = &host;
    o.n_http_hosts = host ? 1 : 0;
    o.artifact_allow = &allow;
    o.n_artifact_allow = allow ? 1 : 0;
    if (!(b = ocra_build_new(&o, spec, plan, ev, &err)) || run_step(b, argv[1], &err) < 0)
        goto out;
    if (ocra_build_digest(b)[0])
        printf("digest %s\n", ocra_build_digest(b));
    printf("uploaded %llu\n", (unsigned long long)ocra_build_bytes_uploaded(b));
    status = 0;
out:
    if (status)
        fprintf(stderr, "it_build: %s: %s\n", argv[1], err.msg);
    ocra_build_free(b);
    ocra_plan_free(plan);
    ocra_plan_data_free(data);
    ocra_spec_free(spec);
    ocra_spec_event_free(ev);
    json_decref(sj);
    json_decref(ej);
    return status;
}
