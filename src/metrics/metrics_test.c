/* SPDX-License-Identifier: Apache-2.0 */
#include "metrics/metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ocra_test.h"

static void
test_counter_gauge_exposition(void)
{
    struct ocra_metrics *m = ocra_metrics_new();
    const char *const labels[] = {"status", "chain", NULL};
    struct ocra_metrics_family *c = ocra_metrics_family(m, "ocra_events_total", "Events seen.",
                                                        OCRA_METRICS_COUNTER, labels, NULL, 0);
    struct ocra_metrics_family *g = ocra_metrics_family(
        m, "ocra_queue_depth", "Stages ready.\nSecond \\ line", OCRA_METRICS_GAUGE, NULL, NULL, 0);
    struct ocra_buf b;

    CHECK(ocra_metrics_family(m, "ocra_events_total", "x", OCRA_METRICS_COUNTER, labels, NULL, 0) ==
          c);
    ocra_metrics_add(c, (const char *const[]){"done", "evm:31337"}, 1);
    ocra_metrics_add(c, (const char *const[]){"done", "evm:31337"}, 2);
    ocra_metrics_add(c, (const char *const[]){"rej\"ected\n", "ain:0"}, 1);
    ocra_metrics_set(g, NULL, 7);
    ocra_metrics_set(g, NULL, 4.5);
    CHECK(ocra_metrics_value(c, (const char *const[]){"done", "evm:31337"}) == 3);
    CHECK(ocra_metrics_value(c, (const char *const[]){"none", "x"}) == 0);
    ocra_buf_init(&b);
    ocra_metrics_write(m, &b);
    CHECK_STR(b.data, "# HELP ocra_events_total Events seen.\n"
                      "# TYPE ocra_events_total counter\n"
                      "ocra_events_total{status=\"done\",chain=\"evm:31337\"} 3\n"
                      "ocra_events_total{status=\"rej\\\"ected\\n\",chain=\"ain:0\"} 1\n"
                      "# HELP ocra_queue_depth Stages ready.\\nSecond \\\\ line\n"
                      "# TYPE ocra_queue_depth gauge\n"
                      "ocra_queue_depth 4.5\n");
    ocra_buf_fini(&b);
    ocra_metrics_free(m);
}

static void
test_histogram_buckets_are_cumulative(void)
{
    struct ocra_metrics *m = ocra_metrics_new();
    const double buckets[] = {0.1, 1, 10};
    const char *const labels[] = {"stage", NULL};
    struct ocra_metrics_family *h =
        ocra_metrics_family(m, "ocra_stage_duration_seconds", "Stage time.", OCRA_METRICS_HISTOGRAM,
                            labels, buckets, 3);
    struct ocra_buf b;

    ocra_metrics_observe(h, (const char *const[]){"build"}, 0.05);
    ocra_metrics_observe(h, (const char *const[]){"build"}, 1);
    ocra_metrics_observe(h, (const char *const[]){"build"}, 100);
    ocra_buf_init(&b);
    ocra_metrics_write(m, &b);
    CHECK_STR(b.data, "# HELP ocra_stage_duration_seconds Stage time.\n"
                      "# TYPE ocra_stage_duration_seconds histogram\n"
                      "ocra_stage_duration_seconds_bucket{stage=\"build\",le=\"0.1\"} 1\n"
                      "ocra_stage_duration_seconds_bucket{stage=\"build\",le=\"1\"} 2\n"
                      "ocra_stage_duration_seconds_bucket{stage=\"build\",le=\"10\"} 2\n"
                      "ocra_stage_duration_seconds_bucket{stage=\"build\",le=\"+Inf\"} 3\n"
                      "ocra_stage_duration_seconds_sum{stage=\"build\"} 101.05\n"
                      "ocra_stage_duration_seconds_count{stage=\"build\"} 3\n");
    ocra_buf_fini(&b);
    ocra_metrics_free(m);
}

static void
collect(struct ocra_metrics *m, void *arg)
{
    struct ocra_metrics_family *g =
        ocra_metrics_family(m, "ocra_gpus_allocated", "GPUs held.", OCRA_METRICS_GAUGE,
                            (const char *const[]){"node", NULL}, NULL, 0);

    ocra_metrics_clear(g);
    ocra_metrics_set(g, (const char *const[]){"n1"}, (double)++*(int *)arg);
}

static void
test_collectors_run_at_each_write(void)
{
    struct ocra_metrics *m = ocra_metrics_new();
    struct ocra_buf b;
    int calls = 0;

    ocra_metrics_on_collect(m, collect, &calls);
    ocra_buf_init(&b);
    ocra_metrics_write(m, &b);
    ocra_buf_reset(&b);
    ocra_metrics_write(m, &b);
    CHECK_INT(calls, 2);
    CHECK(strstr(b.data, "ocra_gpus_allocated{node=\"n1\"} 2\n") != NULL);
    ocra_buf_fini(&b);
    ocra_metrics_free(m);
}

static void *
adder(void *arg)
{
    for (int i = 0; i < 10000; i++)
        ocra_metrics_add(arg, NULL, 1);
    return NULL;
}

static void
test_threads_do_not_lose_increments(void)
{
    struct ocra_metrics *m = ocra_metrics_new();
    struct ocra_metrics_family *c =
        ocra_metrics_family(m, "ocra_x_total", "x", OCRA_METRICS_COUNTER, NULL, NULL, 0);
    pthread_t t[4];

    for (int i = 0; i < 4; i++)
        CHECK_INT(pthread_create(&t[i], NULL, adder, c), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    CHECK(ocra_metrics_value(c, NULL) == 40000);
    CHECK(ocra_metrics_default() == ocra_metrics_default());
    ocra_metrics_free(m);
}

/* What a dashboard needs from the first scrape: unlabeled families and known label sets at
 * zero, the build's version, the process's own figures. */
static void
test_zero_series_build_info_and_process(void)
{
    const struct ocra_metrics_std *std = ocra_metrics_std();
    struct ocra_metrics *m = ocra_metrics_new();
    struct ocra_metrics_family *c =
        ocra_metrics_family(m, "x_bytes_total", "Bytes.", OCRA_METRICS_COUNTER, NULL, NULL, 0);
    struct ocra_metrics_family *k =
        ocra_metrics_family(m, "x_kinds_total", "Kinds.", OCRA_METRICS_COUNTER,
                            (const char *const[]){"kind", NULL}, NULL, 0);
    struct ocra_buf b;

    (void)c;
    ocra_metrics_touch(k, (const char *const[]){"permanent"});
    ocra_metrics_add(k, (const char *const[]){"gone"}, 2);
    ocra_metrics_remove(k, (const char *const[]){"gone"});
    ocra_metrics_remove(k, (const char *const[]){"never"});
    ocra_buf_init(&b);
    ocra_metrics_write(m, &b);
    CHECK(strstr(b.data, "\nx_bytes_total 0\n") != NULL);
    CHECK(strstr(b.data, "\nx_kinds_total{kind=\"permanent\"} 0\n") != NULL);
    CHECK(strstr(b.data, "gone") == NULL);
    ocra_buf_fini(&b);
    ocra_metrics_free(m);

    ocra_buf_init(&b);
    ocra_metrics_write(ocra_metrics_default(), &b);
    CHECK(strstr(b.data, "\nocra_build_info{version=\"") != NULL);
    CHECK(strstr(b.data, "\nocra_registry_upload_bytes_total 0\n") != NULL);
    CHECK(strstr(b.data, "\nocra_stage_takeovers_total{kind=\"crash\"} 0\n") != NULL);
    CHECK(strstr(b.data, "# TYPE process_cpu_seconds_total counter\n") != NULL);
    CHECK(ocra_metrics_value(std->process_rss, NULL) > 1e5);
    CHECK(ocra_metrics_value(std->process_fds, NULL) >= 3);
    CHECK(ocra_metrics_value(std->process_max_fds, NULL) >= 3);
    CHECK(ocra_metrics_value(std->process_start, NULL) > 1.7e9);
    if (!strstr(b.data, "\nocra_build_info{"))
        fprintf(stderr, "%s", b.data);
    ocra_buf_fini(&b);
}

OCRA_TEST_MAIN(OCRA_TEST(test_counter_gauge_exposition),
               OCRA_TEST(test_histogram_buckets_are_cumulative),
               OCRA_TEST(test_collectors_run_at_each_write),
               OCRA_TEST(test_threads_do_not_lose_increments),
               OCRA_TEST(test_zero_series_build_info_and_process))
