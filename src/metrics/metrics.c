/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics.c: the registry. Families live in a growing array, each with its series in a
 * growing array searched linearly (a family has a handful of label sets: statuses, stages,
 * nodes). One mutex guards the registry; recording is rare next to the work it measures.
 */
#include "metrics/metrics.h"

#include <assert.h>
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define MAX_COLLECTORS 16

const double ocra_metrics_seconds_buckets[] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600};
const size_t ocra_metrics_seconds_n_buckets = OCRA_ARRAY_LEN(ocra_metrics_seconds_buckets);

struct series {
    char *labels[OCRA_METRICS_MAX_LABELS];
    double value; /* counter, gauge; histogram: sum */
    uint64_t count;
    uint64_t *buckets; /* histogram: cumulative counts are computed when written */
};

struct ocra_metrics_family {
    struct ocra_metrics *m;
    char *name, *help;
    enum ocra_metrics_type type;
    char *labels[OCRA_METRICS_MAX_LABELS];
    size_t n_labels;
    double buckets[OCRA_METRICS_MAX_BUCKETS];
    size_t n_buckets;
    struct series *series;
    size_t n_series, cap_series;
    uint64_t dropped; /* label sets refused past OCRA_METRICS_MAX_SERIES */
};

struct ocra_metrics {
    pthread_mutex_t lock;
    struct ocra_metrics_family **fams;
    size_t n_fams, cap_fams;
    struct {
        ocra_metrics_collect_fn *fn;
        void *arg;
    } collectors[MAX_COLLECTORS];
    size_t n_collectors;
};

#ifndef NDEBUG /* only asserted */
static bool
name_valid(const char *s, bool colon)
{
    if (!s || !*s || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || (colon && *s == ':')))
            return false;
    return true;
}
#endif

static struct series *series_get(struct ocra_metrics_family *f, const char *const *values,
                                 bool create);

struct ocra_metrics *
ocra_metrics_new(void)
{
    struct ocra_metrics *m = ocra_xcalloc(1, sizeof(*m));

    pthread_mutex_init(&m->lock, NULL);
    return m;
}

static void
family_free(struct ocra_metrics_family *f)
{
    for (size_t i = 0; i < f->n_series; i++) {
        for (size_t j = 0; j < f->n_labels; j++)
            free(f->series[i].labels[j]);
        free(f->series[i].buckets);
    }
    for (size_t j = 0; j < f->n_labels; j++)
        free(f->labels[j]);
    free(f->series);
    free(f->name);
    free(f->help);
    free(f);
}

void
ocra_metrics_free(struct ocra_metrics *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_fams; i++)
        family_free(m->fams[i]);
    free(m->fams);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static struct ocra_metrics *default_registry;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

static void
default_init(void)
{
    default_registry = ocra_metrics_new();
}

struct ocra_metrics *
ocra_metrics_default(void)
{
    pthread_once(&default_once, default_init);
    return default_registry;
}

struct ocra_metrics_family *
ocra_metrics_family(struct ocra_metrics *m, const char *name, const char *help,
                    enum ocra_metrics_type type, const char *const *labels, const double *buckets,
                    size_t n_buckets)
{
    struct ocra_metrics_family *f = NULL;
    size_t n_labels = 0;

    assert(name_valid(name, true) && help);
    while (labels && labels[n_labels]) {
        assert(name_valid(labels[n_labels], false) && strcmp(labels[n_labels], "le") != 0);
        n_labels++;
    }
    assert(n_labels <= OCRA_METRICS_MAX_LABELS);
    assert(type == OCRA_METRICS_HISTOGRAM || n_buckets == 0);
    assert(n_buckets <= OCRA_METRICS_MAX_BUCKETS);
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->n_fams; i++) {
        if (strcmp(m->fams[i]->name, name) == 0) {
            f = m->fams[i];
            assert(f->type == type && f->n_labels == n_labels);
            goto out;
        }
    }
    f = ocra_xcalloc(1, sizeof(*f));
    f->m = m;
    f->name = ocra_xstrdup(name);
    f->help = ocra_xstrdup(help);
    f->type = type;
    f->n_labels = n_labels;
    for (size_t j = 0; j < n_labels; j++)
        f->labels[j] = ocra_xstrdup(labels[j]);
    for (size_t j = 0; j < n_buckets; j++) {
        assert(j == 0 || buckets[j] > buckets[j - 1]);
        f->buckets[j] = buckets[j];
    }
    f->n_buckets = n_buckets;
    if (n_labels == 0) /* its one series, at zero until recorded (a rate needs a start) */
        (void)series_get(f, NULL, true);
    if (m->n_fams == m->cap_fams) {
        m->cap_fams = m->cap_fams ? 2 * m->cap_fams : 16;
        m->fams = ocra_xrealloc(m->fams, m->cap_fams * sizeof(*m->fams));
    }
    m->fams[m->n_fams++] = f;
out:
    pthread_mutex_unlock(&m->lock);
    return f;
}

/* The series of label_values, created when missing; NULL past OCRA_METRICS_MAX_SERIES. Called
 * with the lock held. */
static struct series *
series_get(struct ocra_metrics_family *f, const char *const *values, bool create)
{
    struct series *s;

    for (size_t i = 0; i < f->n_series; i++) {
        size_t j = 0;

        while (j < f->n_labels && strcmp(f->series[i].labels[j], values[j]) == 0)
            j++;
        if (j == f->n_labels)
            return &f->series[i];
    }
    if (!create)
        return NULL;
    if (f->n_series == OCRA_METRICS_MAX_SERIES) {
        f->dropped++;
        return NULL;
    }
    if (f->n_series == f->cap_series) {
        f->cap_series = f->cap_series ? 2 * f->cap_series : 4;
        f->series = ocra_xrealloc(f->series, f->cap_series * sizeof(*f->series));
    }
    s = &f->series[f->n_series++];
    memset(s, 0, sizeof(*s));
    for (size_t j = 0; j < f->n_labels; j++)
        s->labels[j] = ocra_xstrdup(values[j] ? values[j] : "");
    if (f->type == OCRA_METRICS_HISTOGRAM)
        s->buckets = ocra_xcalloc(f->n_buckets + 1, sizeof(*s->buckets));
    return s;
}

static void
record(struct ocra_metrics_family *f, const char *const *values, double v, int op)
{
    struct series *s;

    assert(f->n_labels == 0 || values);
    pthread_mutex_lock(&f->m->lock);
    s = series_get(f, values, true);
    if (s) {
        if (op == 0) {
            assert(f->type != OCRA_METRICS_COUNTER || v >= 0);
            s->value += v;
        } else if (op == 1) {
            s->value = v;
        } else {
            size_t b = 0;

            while (b < f->n_buckets && v > f->buckets[b])
                b++;
            s->buckets[b]++;
            s->value += v;
            s->count++;
        }
    }
    pthread_mutex_unlock(&f->m->lock);
}

void
ocra_metrics_touch(struct ocra_metrics_family *f, const char *const *label_values)
{
    pthread_mutex_lock(&f->m->lock);
    (void)series_get(f, label_values, true);
    pthread_mutex_unlock(&f->m->lock);
}

void
ocra_metrics_add(struct ocra_metrics_family *f, const char *const *label_values, double v)
{
    assert(f->type != OCRA_METRICS_HISTOGRAM);
    record(f, label_values, v, 0);
}

void
ocra_metrics_set(struct ocra_metrics_family *f, const char *const *label_values, double v)
{
    assert(f->type == OCRA_METRICS_GAUGE);
    record(f, label_values, v, 1);
}

void
ocra_metrics_observe(struct ocra_metrics_family *f, const char *const *label_values, double v)
{
    assert(f->type == OCRA_METRICS_HISTOGRAM);
    record(f, label_values, v, 2);
}

void
ocra_metrics_remove(struct ocra_metrics_family *f, const char *const *label_values)
{
    struct series *s;

    pthread_mutex_lock(&f->m->lock);
    s = series_get(f, label_values, false);
    if (s) {
        for (size_t j = 0; j < f->n_labels; j++)
            free(s->labels[j]);
        free(s->buckets);
        *s = f->series[--f->n_series];
    }
    pthread_mutex_unlock(&f->m->lock);
}

void
ocra_metrics_clear(struct ocra_metrics_family *f)
{
    pthread_mutex_lock(&f->m->lock);
    for (size_t i = 0; i < f->n_series; i++) {
        for (size_t j = 0; j < f->n_labels; j++)
            free(f->series[i].labels[j]);
        free(f->series[i].buckets);
    }
    f->n_series = 0;
    pthread_mutex_unlock(&f->m->lock);
}

double
ocra_metrics_value(struct ocra_metrics_family *f, const char *const *label_values)
{
    struct series *s;
    double v = 0;

    pthread_mutex_lock(&f->m->lock);
    s = series_get(f, label_values, false);
    if (s)
        v = f->type == OCRA_METRICS_HISTOGRAM ? (double)s->count : s->value;
    pthread_mutex_unlock(&f->m->lock);
    return v;
}

void
ocra_metrics_on_collect(struct ocra_metrics *m, ocra_metrics_collect_fn *fn, void *arg)
{
    pthread_mutex_lock(&m->lock);
    assert(m->n_collectors < MAX_COLLECTORS);
    m->collectors[m->n_collectors].fn = fn;
    m->collectors[m->n_collectors].arg = arg;
    m->n_collectors++;
    pthread_mutex_unlock(&m->lock);
}

/* ---- the text exposition ----------------------------------------------------------------- */

/* Escapes per the format: HELP text escapes \ and newline; label values also ". */
static void
put_escaped(struct ocra_buf *out, const char *s, bool quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            ocra_buf_puts(out, "\\\\");
        else if (*s == '\n')
            ocra_buf_puts(out, "\\n");
        else if (quote && *s == '"')
            ocra_buf_puts(out, "\\\"");
        else
            ocra_buf_putc(out, *s);
    }
}

static void
put_number(struct ocra_buf *out, double v)
{
    if (isinf(v))
        ocra_buf_puts(out, v > 0 ? "+Inf" : "-Inf");
    else if (isnan(v))
        ocra_buf_puts(out, "NaN");
    else if (v == (double)(int64_t)v && fabs(v) < 1e15)
        ocra_buf_printf(out, "%lld", (long long)v);
    else {
        char tmp[32];

        /* the shortest of 15 or 17 digits that reads back as v ("0.1", not 0.1000...01) */
        snprintf(tmp, sizeof(tmp), "%.15g", v);
        if (strtod(tmp, NULL) != v)
            snprintf(tmp, sizeof(tmp), "%.17g", v);
        ocra_buf_puts(out, tmp);
    }
}

/* name{l1="v1",...[,le="b"]} */
static void
put_sample_name(struct ocra_buf *out, const struct ocra_metrics_family *f, const struct series *s,
                const char *suffix, const char *le)
{
    bool any = f->n_labels > 0 || le;

    ocra_buf_puts(out, f->name);
    ocra_buf_puts(out, suffix);
    if (!any)
        return;
    ocra_buf_putc(out, '{');
    for (size_t j = 0; j < f->n_labels; j++) {
        ocra_buf_printf(out, "%s%s=\"", j ? "," : "", f->labels[j]);
        put_escaped(out, s->labels[j], true);
        ocra_buf_putc(out, '"');
    }
    if (le)
        ocra_buf_printf(out, "%sle=\"%s\"", f->n_labels ? "," : "", le);
    ocra_buf_putc(out, '}');
}

static int
family_cmp(const void *a, const void *b)
{
    const struct ocra_metrics_family *const *x = a, *const *y = b;

    return strcmp((*x)->name, (*y)->name);
}

static void
write_family(struct ocra_buf *out, const struct ocra_metrics_family *f)
{
    static const char *const type_names[] = {"counter", "gauge", "histogram"};

    ocra_buf_printf(out, "# HELP %s ", f->name);
    put_escaped(out, f->help, false);
    ocra_buf_printf(out, "\n# TYPE %s %s\n", f->name, type_names[f->type]);
    for (size_t i = 0; i < f->n_series; i++) {
        const struct series *s = &f->series[i];

        if (f->type != OCRA_METRICS_HISTOGRAM) {
            put_sample_name(out, f, s, "", NULL);
            ocra_buf_putc(out, ' ');
            put_number(out, s->value);
            ocra_buf_putc(out, '\n');
            continue;
        }
        uint64_t cum = 0;

        for (size_t b = 0; b <= f->n_buckets; b++) {
            struct ocra_buf le;

            ocra_buf_init(&le);
            if (b < f->n_buckets)
                put_number(&le, f->buckets[b]);
            else
                ocra_buf_puts(&le, "+Inf");
            cum += s->buckets[b];
            put_sample_name(out, f, s, "_bucket", le.data);
            ocra_buf_printf(out, " %llu\n", (unsigned long long)cum);
            ocra_buf_fini(&le);
        }
        put_sample_name(out, f, s, "_sum", NULL);
        ocra_buf_putc(out, ' ');
        put_number(out, s->value);
        ocra_buf_putc(out, '\n');
        put_sample_name(out, f, s, "_count", NULL);
        ocra_buf_printf(out, " %llu\n", (unsigned long long)s->count);
    }
}

void
ocra_metrics_write(struct ocra_metrics *m, struct ocra_buf *out)
{
    struct ocra_metrics_family **sorted;
    size_t n, n_collectors;

    pthread_mutex_lock(&m->lock);
    n_collectors = m->n_collectors;
    pthread_mutex_unlock(&m->lock);
    for (size_t i = 0; i < n_collectors; i++)
        m->collectors[i].fn(m, m->collectors[i].arg);

    pthread_mutex_lock(&m->lock);
    n = m->n_fams;
    sorted = ocra_xcalloc(n ? n : 1, sizeof(*sorted));
    memcpy(sorted, m->fams, n * sizeof(*sorted));
    qsort(sorted, n, sizeof(*sorted), family_cmp);
    for (size_t i = 0; i < n; i++)
        write_family(out, sorted[i]);
    pthread_mutex_unlock(&m->lock);
    free(sorted);
}

/* ---- ocra's families ----------------------------------------------------------------------- */

static struct ocra_metrics_std std_families;
static pthread_once_t std_once = PTHREAD_ONCE_INIT;

/* The boot time, seconds since the epoch (/proc/stat's btime); 0 when unknown. */
static double
boot_time(void)
{
    char line[256];
    double bt = 0;
    FILE *f = fopen("/proc/stat", "re");

    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "btime %lf", &bt) == 1)
            break;
    fclose(f);
    return bt;
}

/* The process's own figures, as every Prometheus client library exports them, read from
 * /proc/self at each scrape. A figure that cannot be read is left as it was. */
static void
collect_process(struct ocra_metrics *m, void *arg)
{
    const struct ocra_metrics_std *s = arg;
    char buf[1024], *p;
    unsigned long long utime, stime, start, vsize;
    long rss, tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    struct rlimit rl;
    size_t fds = 0;
    DIR *d;
    FILE *f;

    (void)m;
    if ((f = fopen("/proc/self/stat", "re")) != NULL) {
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);

        fclose(f);
        buf[n] = '\0';
        /* after "pid (comm) ": state is field 3; utime 14, stime 15, starttime 22, vsize 23,
         * rss 24 */
        p = strrchr(buf, ')');
        if (p && tick > 0 &&
            sscanf(p + 2,
                   "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d "
                   "%*d %llu %llu %ld",
                   &utime, &stime, &start, &vsize, &rss) == 5) {
            double cpu = (double)(utime + stime) / (double)tick,
                   seen = ocra_metrics_value(s->process_cpu, NULL);

            if (cpu > seen) /* a counter only grows */
                ocra_metrics_add(s->process_cpu, NULL, cpu - seen);
            ocra_metrics_set(s->process_rss, NULL, (double)rss * (double)page);
            ocra_metrics_set(s->process_vsize, NULL, (double)vsize);
            ocra_metrics_set(s->process_start, NULL, boot_time() + (double)start / (double)tick);
        }
    }
    if ((d = opendir("/proc/self/fd")) != NULL) {
        for (struct dirent *e; (e = readdir(d)) != NULL;)
            fds += e->d_name[0] != '.';
        closedir(d);
        ocra_metrics_set(s->process_fds, NULL, (double)(fds - 1)); /* less the one just opened */
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        ocra_metrics_set(s->process_max_fds, NULL, (double)rl.rlim_cur);
}

static void
std_init(void)
{
    struct ocra_metrics *m = ocra_metrics_default();
    struct ocra_metrics_std *s = &std_families;
    const size_t nb = ocra_metrics_seconds_n_buckets;
    const double *b = ocra_metrics_seconds_buckets;

    s->events = ocra_metrics_family(m, "ocra_events", "Chain events in the journal, by status.",
                                    OCRA_METRICS_GAUGE,
                                    (const char *const[]){"status", "chain", NULL}, NULL, 0);
    s->events_seen = ocra_metrics_family(
        m, "ocra_events_seen_total", "Chain events this process journaled, by outcome.",
        OCRA_METRICS_COUNTER, (const char *const[]){"chain", "outcome", NULL}, NULL, 0);
    s->stage_seconds = ocra_metrics_family(
        m, "ocra_stage_duration_seconds", "Duration of one pipeline stage attempt.",
        OCRA_METRICS_HISTOGRAM, (const char *const[]){"stage", NULL}, b, nb);
    s->stage_failures = ocra_metrics_family(
        m, "ocra_stage_failures_total", "Failed stage attempts (transient ones are retried).",
        OCRA_METRICS_COUNTER, (const char *const[]){"stage", "kind", NULL}, NULL, 0);
    s->takeovers = ocra_metrics_family(
        m, "ocra_stage_takeovers_total",
        "Claims taken over from a dead holder: crash (a process of this machine that is gone, "
        "at once) or lease (the lease ran out).",
        OCRA_METRICS_COUNTER, (const char *const[]){"kind", NULL}, NULL, 0);
    s->build_cache = ocra_metrics_family(
        m, "ocra_build_cache_total", "Toolchain image lookups: hit (reused) or miss (built).",
        OCRA_METRICS_COUNTER, (const char *const[]){"result", NULL}, NULL, 0);
    s->upload_bytes =
        ocra_metrics_family(m, "ocra_registry_upload_bytes_total", "Bytes uploaded to registries.",
                            OCRA_METRICS_COUNTER, NULL, NULL, 0);
    s->queue_depth = ocra_metrics_family(m, "ocra_queue_depth",
                                         "Pipeline stages ready and waiting for a worker.",
                                         OCRA_METRICS_GAUGE, NULL, NULL, 0);
    s->sched_queue_depth = ocra_metrics_family(
        m, "ocra_sched_queue_depth", "Events queued for room on the cluster (state queued).",
        OCRA_METRICS_GAUGE, NULL, NULL, 0);
    s->queue_wait = ocra_metrics_family(m, "ocra_queue_wait_seconds",
                                        "Time from queued (no room) to placed, per event.",
                                        OCRA_METRICS_HISTOGRAM, NULL, b, nb);
    s->pipeline = ocra_metrics_family(
        m, "ocra_pipeline_events", "Events in the daemon's pipeline, by state, status and outcome.",
        OCRA_METRICS_GAUGE, (const char *const[]){"state", "status", "outcome", NULL}, NULL, 0);
    s->gpus_allocated =
        ocra_metrics_family(m, "ocra_gpus_allocated", "GPUs held by allocations, per node.",
                            OCRA_METRICS_GAUGE, (const char *const[]){"node", NULL}, NULL, 0);
    s->head_lag = ocra_metrics_family(
        m, "ocra_chain_head_lag_blocks", "Blocks between the chain head and the source's cursor.",
        OCRA_METRICS_GAUGE, (const char *const[]){"source", NULL}, NULL, 0);
    s->runs = ocra_metrics_family(m, "ocra_runs_total", "Finished workload runs, by result.",
                                  OCRA_METRICS_COUNTER,
                                  (const char *const[]){"runner", "result", NULL}, NULL, 0);
    s->tx_refusals = ocra_metrics_family(
        m, "ocra_chain_tx_refusals_total",
        "Transactions ocra sent that the chain refused, by the node's code: permanent ones are "
        "not sent again, transient ones are retried.",
        OCRA_METRICS_COUNTER, (const char *const[]){"chain", "code", "kind", NULL}, NULL, 0);
    s->finality_violations = ocra_metrics_family(
        m, "ocra_finality_violations_total",
        "Final blocks the chain replaced: events journaled from them are orphaned.",
        OCRA_METRICS_COUNTER, (const char *const[]){"chain", NULL}, NULL, 0);
    /* autoscale (begin) */
    s->replicas = ocra_metrics_family(
        m, "ocra_replicas", "Replicas in place of an autoscaled inference event.",
        OCRA_METRICS_GAUGE, (const char *const[]){"event", NULL}, NULL, 0);
    s->scale_actions = ocra_metrics_family(
        m, "ocra_autoscale_actions_total",
        "Autoscaling actions, by direction (up, down, failed, replaced).", OCRA_METRICS_COUNTER,
        (const char *const[]){"direction", NULL}, NULL, 0);
    /* autoscale (end) */
    s->strays = ocra_metrics_family(
        m, "ocra_stray_containers",
        "Containers carrying ocra's labels that belong to no live run and that the daemon's "
        "last reconcile could not remove.",
        OCRA_METRICS_GAUGE, (const char *const[]){"runner", NULL}, NULL, 0);
    s->strays_removed = ocra_metrics_family(
        m, "ocra_stray_containers_removed_total",
        "Containers carrying ocra's labels that outlived their run and that the daemon removed.",
        OCRA_METRICS_COUNTER, (const char *const[]){"runner", NULL}, NULL, 0);
    /* supervise (begin) */
    s->supervised = ocra_metrics_family(
        m, "ocra_supervised_workloads",
        "Running workloads the supervisor follows (their events hold no worker).",
        OCRA_METRICS_GAUGE, NULL, NULL, 0);
    s->timeouts = ocra_metrics_family(
        m, "ocra_run_timeouts_total", "Runs stopped at their time limit (workload.maxDuration).",
        OCRA_METRICS_COUNTER, (const char *const[]){"runner", NULL}, NULL, 0);
    /* supervise (end) */
    s->build_info =
        ocra_metrics_family(m, "ocra_build_info", "The running ocra's version (1).",
                            OCRA_METRICS_GAUGE, (const char *const[]){"version", NULL}, NULL, 0);
    ocra_metrics_set(s->build_info, (const char *const[]){OCRA_VERSION}, 1);
    /* Label sets known in advance exist at zero, so that the first increase is a rate. */
    for (size_t i = 0; i < 2; i++)
        ocra_metrics_touch(s->takeovers, (const char *const[]){i ? "lease" : "crash"});
    for (size_t i = 0; i < 2; i++)
        ocra_metrics_touch(s->build_cache, (const char *const[]){i ? "miss" : "hit"});
    for (size_t i = 0; i < 4; i++)
        ocra_metrics_touch(s->scale_actions, (const char *const[]){(const char *const[]){
                                                 "up", "down", "failed", "replaced"}[i]});
    s->process_cpu = ocra_metrics_family(m, "process_cpu_seconds_total",
                                         "User and system CPU time the process spent, seconds.",
                                         OCRA_METRICS_COUNTER, NULL, NULL, 0);
    s->process_rss =
        ocra_metrics_family(m, "process_resident_memory_bytes", "Resident memory size, bytes.",
                            OCRA_METRICS_GAUGE, NULL, NULL, 0);
    s->process_vsize =
        ocra_metrics_family(m, "process_virtual_memory_bytes", "Virtual memory size, bytes.",
                            OCRA_METRICS_GAUGE, NULL, NULL, 0);
    s->process_fds = ocra_metrics_family(m, "process_open_fds", "Open file descriptors.",
                                         OCRA_METRICS_GAUGE, NULL, NULL, 0);
    s->process_max_fds = ocra_metrics_family(
        m, "process_max_fds", "The open file descriptor limit.", OCRA_METRICS_GAUGE, NULL, NULL, 0);
    s->process_start = ocra_metrics_family(
        m, "process_start_time_seconds", "Start time of the process since the Unix epoch, seconds.",
        OCRA_METRICS_GAUGE, NULL, NULL, 0);
    ocra_metrics_on_collect(m, collect_process, s);
}

const struct ocra_metrics_std *
ocra_metrics_std(void)
{
    pthread_once(&std_once, std_init);
    return &std_families;
}
