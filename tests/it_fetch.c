/* SPDX-License-Identifier: Apache-2.0 */
/*
 * it_fetch.c: the artifact fetch step of src/build on its own, configured as the daemon
 * configures it (ocra_daemon_spec_policy, ocra_daemon_fetch_options), for tests/it_fetch.sh.
 *
 *   it_fetch CONFIG CACHE SPEC.json [SPEC2.json MARK]
 *
 * Validates each spec under the configuration's policy and fetches its artifact into CACHE.
 * With SPEC2, two fetches run at once in two threads of this process, as two workers of one
 * daemon: the first starts, and the second once the file MARK exists (the artifact server
 * creates it mid-response). For each fetch N, one line on stdout:
 *
 *   fetch N: ok PATH
 *   fetch N: invalid spec: MESSAGE
 *   fetch N: error ERRNO: MESSAGE
 *   fetch N: rejected: PUBLIC REASON
 *
 * ("rejected" follows the "error" line of a fetch whose artifact is rejected). Exits 0 when
 * every fetch succeeded, 1 otherwise, 2 on a usage or setup error.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "build/build.h"
#include "config/config.h"
#include "daemon/daemon.h"

struct fetch {
    int n;
    const char *spec_path;
    const struct ocra_config *cfg;
    const char *cache;
    struct ocra_plan_data *data;
    char line[2 * OCRA_ERR_MAX + 512];
    int status;
};

static const char *
errno_name(int code)
{
    switch (code) {
    case EACCES:
        return "EACCES";
    case EPROTO:
        return "EPROTO";
    case EFBIG:
        return "EFBIG";
    case ETIMEDOUT:
        return "ETIMEDOUT";
    case EINVAL:
        return "EINVAL";
    default:
        return "other";
    }
}

static void *
fetch_run(void *arg)
{
    struct fetch *f = arg;
    struct ocra_spec_policy pol = {.default_name = "m"};
    struct ocra_build_opts o = {.registry_url = "http://127.0.0.1:1",
                                .repo = "t/m",
                                .cache_dir = f->cache,
                                .agent = "/bin/sh"};
    struct ocra_plan_options po = {0};
    struct ocra_spec_event *ev = NULL;
    struct ocra_plan *plan = NULL;
    struct ocra_spec *spec = NULL;
    struct ocra_build *b = NULL;
    struct ocra_err err = {0};
    json_t *sj = NULL;
    int len;

    f->status = 1;
    ocra_daemon_spec_policy(f->cfg, &pol);
    if (!(sj = ocra_json_load_file(f->spec_path, 1u << 20, 0, &err)) ||
        ocra_spec_from_json(sj, &pol, &spec, NULL, &err) < 0) {
        snprintf(f->line, sizeof(f->line), "fetch %d: invalid spec: %s\n", f->n, err.msg);
        goto out;
    }
    ev = ocra_build_local_event(spec, NULL);
    po.event = ev;
    ocra_daemon_fetch_options(f->cfg, &o);
    if (ocra_plan_new(f->data, spec, &po, &plan, NULL, &err) < 0 ||
        !(b = ocra_build_new(&o, spec, plan, ev, &err))) {
        snprintf(f->line, sizeof(f->line), "fetch %d: setup: %s\n", f->n, err.msg);
        goto out;
    }
    if (ocra_build_fetch(b, &err) < 0) {
        len = snprintf(f->line, sizeof(f->line), "fetch %d: error %s: %s\n", f->n,
                       errno_name(err.code), err.msg);
        if (ocra_build_rejection(b) && len > 0 && (size_t)len < sizeof(f->line))
            snprintf(f->line + len, sizeof(f->line) - (size_t)len, "fetch %d: rejected: %s\n", f->n,
                     ocra_build_rejection(b));
        goto out;
    }
    snprintf(f->line, sizeof(f->line), "fetch %d: ok %s\n", f->n, ocra_build_artifact_path(b));
    f->status = 0;
out:
    ocra_build_free(b);
    ocra_plan_free(plan);
    ocra_spec_free(spec);
    ocra_spec_event_free(ev);
    json_decref(sj);
    return NULL;
}

/* Waits until path exists: a bounded wait for the server's mark, not a timing check. */
static void
wait_for(const char *path)
{
    for (int i = 0; i < 1200 && access(path, F_OK) < 0; i++)
        ocra_sleep_ms(50);
}

int
main(int argc, char **argv)
{
    struct ocra_config cfg = {0}; /* loading sets the defaults; fini of a zeroed one is a no-op */
    struct ocra_plan_data *data = NULL;
    struct ocra_err err = {0};
    struct fetch f[2];
    pthread_t t[2];
    int n = argc == 6 ? 2 : 1, status = 2;

    if (argc != 4 && argc != 6) {
        fprintf(stderr, "usage: it_fetch CONFIG CACHE SPEC.json [SPEC2.json MARK]\n");
        goto out;
    }
    if (ocra_config_load(argv[1], &cfg, NULL, &err) < 0 ||
        ocra_plan_data_load(NULL, &data, &err) < 0) {
        fprintf(stderr, "it_fetch: %s\n", err.msg);
        goto out;
    }
    for (int i = 0; i < n; i++) {
        memset(&f[i], 0, sizeof(f[i]));
        f[i].n = i + 1;
        f[i].spec_path = argv[3 + i];
        f[i].cfg = &cfg;
        f[i].cache = argv[2];
        f[i].data = data;
    }
    if (n == 1) {
        fetch_run(&f[0]);
    } else {
        if (pthread_create(&t[0], NULL, fetch_run, &f[0]) != 0)
            goto out;
        wait_for(argv[5]);
        if (pthread_create(&t[1], NULL, fetch_run, &f[1]) != 0) {
            pthread_join(t[0], NULL);
            goto out;
        }
        pthread_join(t[0], NULL);
        pthread_join(t[1], NULL);
    }
    status = 0;
    for (int i = 0; i < n; i++) {
        fputs(f[i].line, stdout);
        if (f[i].status)
            status = 1;
    }
out:
    ocra_plan_data_free(data);
    ocra_config_fini(&cfg);
    return status;
}
