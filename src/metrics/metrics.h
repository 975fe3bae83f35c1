/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics: counters, gauges and histograms with labels, and their Prometheus text exposition
 * (format 0.0.4). Modules record into the process's registry (ocra_metrics_default()); the
 * HTTP API writes it at /metrics. Values that live in the journal (events by status, queue
 * depth, GPUs allocated) are set at scrape time by collectors. Every call is thread-safe.
 */
#ifndef OCRA_METRICS_H
#define OCRA_METRICS_H

#include <stddef.h>

#include "base/base.h"

#define OCRA_METRICS_MAX_LABELS 4
#define OCRA_METRICS_MAX_BUCKETS 24
#define OCRA_METRICS_MAX_SERIES 4096 /* per family: more label sets are dropped (and counted) */

enum ocra_metrics_type { OCRA_METRICS_COUNTER, OCRA_METRICS_GAUGE, OCRA_METRICS_HISTOGRAM };

struct ocra_metrics;
struct ocra_metrics_family;

/* An empty registry; caller frees with ocra_metrics_free(). */
struct ocra_metrics *ocra_metrics_new(void);
/* m may be NULL. */
void ocra_metrics_free(struct ocra_metrics *m);
/* The process's registry, created on first use; borrowed, lives until exit. */
struct ocra_metrics *ocra_metrics_default(void);

/*
 * Declares a family, or returns the one of that name already declared (the same type and
 * labels are asserted). name: [a-zA-Z_:][a-zA-Z0-9_:]*, by convention ocra_<what>_<unit>
 * with _total for counters; labels: NULL-terminated names ([a-zA-Z_][a-zA-Z0-9_]*, at most
 * OCRA_METRICS_MAX_LABELS, NULL for none); buckets: histogram upper bounds in increasing
 * order (n_buckets <= OCRA_METRICS_MAX_BUCKETS; +Inf is implicit). help, labels and buckets
 * are copied. Borrowed, valid until the registry is freed.
 */
struct ocra_metrics_family *ocra_metrics_family(struct ocra_metrics *m, const char *name,
                                                const char *help, enum ocra_metrics_type type,
                                                const char *const *labels, const double *buckets,
                                                size_t n_buckets);

/* label_values: one per label name, in order (NULL when the family has no labels). */
/* Creates the series of label_values at zero when missing: a label set known in advance is
 * exported from the start, so its first increase is seen as one. */
void ocra_metrics_touch(struct ocra_metrics_family *f, const char *const *label_values);
void ocra_metrics_add(struct ocra_metrics_family *f, const char *const *label_values, double v);
void ocra_metrics_set(struct ocra_metrics_family *f, const char *const *label_values, double v);
void ocra_metrics_observe(struct ocra_metrics_family *f, const char *const *label_values, double v);
/* Forgets every series of f (a collector that sets gauges from scratch calls this first). */
/* Drops the series of label_values (a label set that will not come back: an ended event's). */
void ocra_metrics_remove(struct ocra_metrics_family *f, const char *const *label_values);
void ocra_metrics_clear(struct ocra_metrics_family *f);

/* The value of one series of a counter or gauge (0 when absent); histograms: the count. */
double ocra_metrics_value(struct ocra_metrics_family *f, const char *const *label_values);

/*
 * A collector runs at the start of every ocra_metrics_write(), outside the registry's lock,
 * and sets the gauges it owns. At most 16 per registry.
 */
typedef void ocra_metrics_collect_fn(struct ocra_metrics *m, void *arg);
void ocra_metrics_on_collect(struct ocra_metrics *m, ocra_metrics_collect_fn *fn, void *arg);

/* Appends the text exposition of every family (HELP, TYPE, samples; families sorted by
 * name, series in first-use order) to out. */
void ocra_metrics_write(struct ocra_metrics *m, struct ocra_buf *out);

/*
 * ocra's own families, declared once on the default registry (docs/OPERATIONS.md says what
 * each means and which to alert on). Borrowed, valid until exit.
 */
struct ocra_metrics_std {
    struct ocra_metrics_family *events;         /* gauge {status, chain}: events in the journal */
    struct ocra_metrics_family *events_seen;    /* counter {chain, outcome}: accepted|rejected */
    struct ocra_metrics_family *stage_seconds;  /* histogram {stage}: one stage attempt */
    struct ocra_metrics_family *stage_failures; /* counter {stage, kind}: transient|permanent */
    struct ocra_metrics_family *takeovers;      /* counter {kind}: crash|lease (dead holders) */
    struct ocra_metrics_family *build_cache;    /* counter {result}: hit|miss (toolchain) */
    struct ocra_metrics_family *upload_bytes;   /* counter: bytes uploaded to registries */
    struct ocra_metrics_family *queue_depth;    /* gauge: stages ready and waiting for a worker */
    struct ocra_metrics_family *pipeline;       /* gauge {state, status, outcome}: pipeline rows */
    struct ocra_metrics_family *gpus_allocated; /* gauge {node}: GPUs held by allocations */
    struct ocra_metrics_family *head_lag; /* gauge {source}: chain head minus cursor, blocks */
    struct ocra_metrics_family *runs;     /* counter {runner, result}: finished runs */
    /* counter {chain, code, kind}: transactions ocra sent that the chain refused, by the
     * node's code; kind permanent (not sent again) or transient (retried) */
    struct ocra_metrics_family *tx_refusals;
    /* counter {chain}: final blocks a chain replaced (events journaled from them are orphaned) */
    struct ocra_metrics_family *finality_violations;
    /* the scheduler queue (begin) */
    struct ocra_metrics_family *sched_queue_depth; /* gauge: events queued for room */
    struct ocra_metrics_family *queue_wait;        /* histogram: queued to started, seconds */
    /* the scheduler queue (end) */
    /* autoscale (begin) */
    struct ocra_metrics_family *replicas;      /* gauge {event}: replicas of an event in place */
    struct ocra_metrics_family *scale_actions; /* counter {direction}: up|down|failed|replaced */
    /* autoscale (end) */
    /* gauge {runner}: containers with ocra's labels but no live run that the last reconcile
     * found and could not remove */
    struct ocra_metrics_family *strays;
    struct ocra_metrics_family *strays_removed; /* counter {runner}: stray containers removed */
    /* supervise (begin) */
    struct ocra_metrics_family *supervised; /* gauge: running workloads the supervisor follows */
    struct ocra_metrics_family *timeouts;   /* counter {runner}: runs stopped at their limit */
    /* supervise (end) */
    struct ocra_metrics_family *build_info; /* gauge {version}: 1 */
    /* the process (process_*: CPU seconds, resident and virtual bytes, open and max fds, start
     * time), read from /proc/self at each scrape */
    struct ocra_metrics_family *process_cpu, *process_rss, *process_vsize, *process_fds,
        *process_max_fds, *process_start;
};
const struct ocra_metrics_std *ocra_metrics_std(void);

/* Standard buckets for durations in seconds: 0.005 s to 1 h. */
extern const double ocra_metrics_seconds_buckets[];
extern const size_t ocra_metrics_seconds_n_buckets;

#endif
