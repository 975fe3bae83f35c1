/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sched: GPU placement. A cluster is a fixed array of nodes (homogeneous GPUs per node) with
 * device-level accounting: each GPU has a free share in milli-GPUs (1000 = a whole device) and
 * free memory, so fractional requests (`gpu_milli` < 1000) share one device and whole-device
 * requests get distinct device indices. Placement filters nodes (GPU model, driver and compute
 * capability minimums, labels, free devices and GPU memory, CPU, RAM), then scores them with a
 * policy: first-fit, best-fit, cheapest, or fgd (fragmentation gradient descent, ATC'23; the
 * formula is in sched_frag.c and docs/RUNNING.md). A placement is all-or-nothing on one node.
 * The placer allocates nothing per decision. The trace-replay simulator (openb CSV traces)
 * drives the same code.
 */
#ifndef OCRA_SCHED_H
#define OCRA_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

#define OCRA_SCHED_MILLI 1000                 /* one whole GPU in milli-GPUs */
#define OCRA_SCHED_MAX_GPUS 16                /* devices per node */
#define OCRA_SCHED_MAX_NODES 65536            /* nodes per cluster */
#define OCRA_SCHED_MAX_MODELS 64              /* distinct GPU models per cluster */
#define OCRA_SCHED_NAME_MAX 64                /* node and pod names, with the NUL */
#define OCRA_SCHED_MODEL_MAX 32               /* a GPU model name, with the NUL */
#define OCRA_SCHED_SPEC_MAX 128               /* a GPU model constraint "A|B", with the NUL */
#define OCRA_SCHED_LABELS_MAX 8               /* labels per node */
#define OCRA_SCHED_LABEL_MAX 64               /* one "key=value" label, with the NUL */
#define OCRA_SCHED_QTY_MAX (INT64_C(1) << 40) /* CPU milli, MiB and cost bound */

enum ocra_sched_policy {
    OCRA_SCHED_FIRST_FIT, /* the first node (in inventory order) that passes the filters */
    OCRA_SCHED_BEST_FIT,  /* least free GPU capacity left on the node, then least free CPU */
    OCRA_SCHED_CHEAPEST,  /* lowest cost of the placement per hour, then best-fit */
    OCRA_SCHED_FGD,       /* least increase of expected fragmentation, then best-fit */
    OCRA_SCHED_N_POLICIES
};

/* "first-fit", "best-fit", "cheapest", "fgd"; -1 on anything else. */
int ocra_sched_policy_parse(const char *s, enum ocra_sched_policy *out);
/* The policy's name as ocra_sched_policy_parse() reads it. */
const char *ocra_sched_policy_name(enum ocra_sched_policy p);

/*
 * Parses an NVIDIA driver version "major[.minor[.patch]]" (535.104.05) into one comparable
 * number: major * 1000000 + minor * 1000 + patch (minor, patch < 1000). EINVAL on anything else.
 */
int ocra_sched_driver_parse(const char *s, uint32_t *out, struct ocra_err *err);

/*
 * A node: its description (filled by the caller before ocra_sched_cluster_add()) and its
 * accounting (maintained by the cluster; read it through ocra_sched_cluster_node()).
 */
struct ocra_sched_node {
    char name[OCRA_SCHED_NAME_MAX];
    char gpu_model[OCRA_SCHED_MODEL_MAX]; /* "" for a CPU-only node */
    int64_t gpu_mem_mib;                  /* per device; 0: unknown */
    int gpu_count;                        /* 0..OCRA_SCHED_MAX_GPUS */
    int compute_cap;                      /* major * 10 + minor (75 = 7.5); 0: unknown */
    uint32_t driver;                      /* ocra_sched_driver_parse() form; 0: unknown */
    int64_t cpu_milli, ram_mib;
    int64_t cost_micro; /* cost per GPU-hour in millionths of a currency unit */
    char labels[OCRA_SCHED_LABELS_MAX][OCRA_SCHED_LABEL_MAX]; /* "key=value" */
    int n_labels;
    /* accounting */
    int64_t cpu_free, ram_free;
    int gpu_free_milli[OCRA_SCHED_MAX_GPUS]; /* 1000: the device is unused */
    int64_t gpu_mem_free[OCRA_SCHED_MAX_GPUS];
};

/* What a workload asks for. Zeroed fields ask for nothing. */
struct ocra_sched_req {
    int gpus;                  /* devices; 0: CPU only */
    int gpu_milli;             /* share of each device, 1..1000 (0: 1000); < 1000 needs gpus 1 */
    int64_t gpu_mem_mib;       /* free memory needed on each device */
    const char *gpu_model;     /* NULL or "": any; else one model or alternatives "A|B" */
    uint32_t min_driver;       /* ocra_sched_driver_parse() form; 0: any */
    int min_compute_cap;       /* as in the node; 0: any */
    const char *const *labels; /* "key=value" labels every one of which the node must carry */
    size_t n_labels;
    int64_t cpu_milli, ram_mib;
};

/* Where a request went: what ocra_sched_release() gives back. */
struct ocra_sched_alloc {
    int node;                          /* index into the cluster */
    int n_devs;                        /* device indices in devs[0..n_devs) */
    uint8_t devs[OCRA_SCHED_MAX_GPUS]; /* ascending */
    int gpu_milli;                     /* taken from each device */
    int64_t gpu_mem_mib;               /* taken from each device */
    int64_t cpu_milli, ram_mib;
};

struct ocra_sched_cluster;

/* An empty cluster; caller frees with ocra_sched_cluster_free(). */
struct ocra_sched_cluster *ocra_sched_cluster_new(void);
void ocra_sched_cluster_free(struct ocra_sched_cluster *c);

/*
 * Adds a copy of node (its accounting fields are ignored: the node starts free). EINVAL on
 * a description out of bounds, ENOSPC past OCRA_SCHED_MAX_NODES or MAX_MODELS.
 */
int ocra_sched_cluster_add(struct ocra_sched_cluster *c, const struct ocra_sched_node *node,
                           struct ocra_err *err);
size_t ocra_sched_cluster_size(const struct ocra_sched_cluster *c);
/* Borrowed, valid until the next ocra_sched_cluster_add(); NULL past the end. */
const struct ocra_sched_node *ocra_sched_cluster_node(const struct ocra_sched_cluster *c, size_t i);
/* Frees every allocation: all nodes back to their full capacity. */
void ocra_sched_cluster_reset(struct ocra_sched_cluster *c);

/*
 * The workload the fgd policy expects: adds weight to the typical request of the same GPU shape
 * (gpus, gpu_milli); its CPU and RAM become the weighted means. Requests without GPUs are
 * ignored (they cannot use GPU capacity). Up to 256 shapes are kept; fgd uses the 32 heaviest.
 * Takes effect at the next placement or fragmentation query. Without any, fgd scores like
 * best-fit.
 */
void ocra_sched_typical_add(struct ocra_sched_cluster *c, const struct ocra_sched_req *r,
                            int64_t weight);

/*
 * Places r: fills *out and takes the capacity. Returns 0, or -1 with EINVAL (a malformed
 * request), ENOSPC (no node could ever host it, even empty: the message names the filter that
 * ruled the last nodes out) or EAGAIN (nodes could host it but none has room now).
 */
int ocra_sched_place(struct ocra_sched_cluster *c, enum ocra_sched_policy policy,
                     const struct ocra_sched_req *r, struct ocra_sched_alloc *out,
                     struct ocra_err *err);
/* Gives back what a successful ocra_sched_place() took. */
void ocra_sched_release(struct ocra_sched_cluster *c, const struct ocra_sched_alloc *a);

/*
 * Fragmentation (sched_frag.c): the GPU capacity, in milli-GPUs weighted by the typical
 * workload, that the typical requests cannot use, summed over nodes; and the total weight, so
 * that frag / (weight * 1000 * GPUs) is the share of GPU capacity left unallocatable.
 */
void ocra_sched_frag(struct ocra_sched_cluster *c, int64_t *frag, int64_t *weight);
/* The share of all GPU capacity unallocatable by the typical workload, 0..1. */
double ocra_sched_frag_share(struct ocra_sched_cluster *c);
/* The share of all GPU capacity not allocated, 0..1. */
double ocra_sched_free_share(const struct ocra_sched_cluster *c);

/* ---- traces: the Alibaba openb CSV files ----------------------------------------------- */

/* One pod of a pod list. creation and deletion are -1 when the list has no such column. */
struct ocra_sched_pod {
    char name[OCRA_SCHED_NAME_MAX];
    int64_t cpu_milli, ram_mib;
    int gpus, gpu_milli;
    char gpu_spec[OCRA_SCHED_SPEC_MAX]; /* "" or "A|B" */
    int64_t creation, deletion;         /* seconds */
};

#define OCRA_SCHED_CSV_MAX_LINE 4096
#define OCRA_SCHED_CSV_MAX_FIELD 255
#define OCRA_SCHED_CSV_MAX_ROWS 1000000

/*
 * Parses a node list: header with sn, cpu_milli, memory_mib, gpu, model (required) and
 * gpu_mem_mib, driver, compute_cap, cost, labels (optional; labels "k=v;k=v"); other columns
 * are ignored. A model without gpu_mem_mib gets the memory of the openb table (P100, T4, V100M16
 * 16 GiB, V100M32 32 GiB, A10 24 GiB; others 0, unknown). name names the input in messages.
 * On success *out is an array of *n nodes; caller frees with free(). EINVAL errors read
 * "name:line: column: problem".
 */
int ocra_sched_nodes_parse(const char *name, const char *text, size_t len,
                           struct ocra_sched_node **out, size_t *n, struct ocra_err *err);
/*
 * Parses a pod list: name, cpu_milli, memory_mib, num_gpu, gpu_milli (required), gpu_spec,
 * creation_time, deletion_time (optional). As ocra_sched_nodes_parse() otherwise.
 */
int ocra_sched_pods_parse(const char *name, const char *text, size_t len,
                          struct ocra_sched_pod **out, size_t *n, struct ocra_err *err);

/* ---- the simulator --------------------------------------------------------------------- */

struct ocra_sched_sim_result {
    size_t placed, failed; /* pods */
    size_t decisions;      /* placement calls (one per arriving pod) */
    uint64_t ns;           /* wall time of the event loop */
    double frag_share;     /* ocra_sched_frag_share() just after the last arrival */
    double free_share;     /* ocra_sched_free_share() at the same moment */
    double frag_of_free;   /* frag_share / free_share (0 when nothing is free) */
};

/*
 * Replays pods through a fresh copy of nodes with one policy: arrivals in creation-time order
 * (file order without times); with departures, each placed pod leaves at its deletion time
 * (before arrivals at the same second); without, pods never leave (the FGD paper's fill-up
 * experiment). The typical workload for fgd is the pod list itself. EINVAL on bad input.
 */
int ocra_sched_simulate(const struct ocra_sched_node *nodes, size_t n_nodes,
                        const struct ocra_sched_pod *pods, size_t n_pods,
                        enum ocra_sched_policy policy, bool departures,
                        struct ocra_sched_sim_result *res, struct ocra_err *err);

#endif
