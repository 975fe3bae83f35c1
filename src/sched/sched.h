/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sched: GPU placement. A cluster is a fixed array of nodes (homogeneous GPUs per node) with
 * device-level accounting: each GPU has a free share in milli-GPUs (1000 = a whole device) and
 * free memory, so fractional requests (`gpu_milli` < 1000) share one device and whole-device
 * requests get distinct device indices. Placement filters nodes (GPU model, driver and compute
 * capability minimums, labels, free devices and GPU memory, CPU, RAM), then scores them with a
 * policy: first-fit, best-fit, cheapest, or fgd (fragmentation gradient descent, ATC'23; the
 * formula is in sched_frag.c and docs/RUNNING.md). A placement is all-or-nothing on one node.
 * A decision searches a capacity index of the nodes (sched_index.c) and allocates nothing (fgd's
 * memo is allocated once, at its first decision). The trace-replay simulator (openb CSV traces)
 * drives the same code. Around it: the inventory of nodes with the source of every figure
 * (configuration, /proc, NVML by dlopen, other node sources), the allocator that records each
 * placement in the journal so that a restart never double-books, the autoscaler's control
 * law with its replay of an inference request trace, and the queue's policy (sched_queue.c):
 * which queued requests start now, in what order, why the rest wait and when they may start,
 * with its replay of a job trace.
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
#define OCRA_SCHED_TOPOLOGY_LABEL "topology"  /* a node's label key naming its topology group */

enum ocra_sched_policy {
    OCRA_SCHED_FIRST_FIT, /* the first node (in inventory order) that passes the filters */
    OCRA_SCHED_BEST_FIT,  /* least free GPU capacity left on the node, then least free CPU */
    OCRA_SCHED_CHEAPEST,  /* lowest cost of the placement per hour, then best-fit */
    OCRA_SCHED_FGD,       /* the best fragmentation score (sched_frag.c), then the first */
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
 * The workload the fgd policy expects: adds weight to the typical request of the same shape
 * (gpus, gpu_milli, cpu_milli; a request without GPUs is a shape of its own CPU, whose view of
 * free GPUs is that it can use none). Up to 256 shapes are kept; fgd uses the most frequent
 * ones that make up 95 % of the weight, at most 64. Takes effect at the next placement or
 * fragmentation query. Without any, fgd scores like best-fit.
 */
void ocra_sched_typical_add(struct ocra_sched_cluster *c, const struct ocra_sched_req *r,
                            int64_t weight);

/*
 * How a decision finds its node. The index (the default) keeps the nodes in a tree by free
 * capacity and GPU model, and weighs only nodes that can host the request, and of the empty
 * nodes of each type only the first. The scan weighs every node in turn (empty nodes of a type
 * after the first are skipped, but still visited); it is the reference the index is tested and
 * benchmarked against. Both choose the same node and devices for every policy.
 */
enum ocra_sched_search { OCRA_SCHED_SEARCH_INDEX, OCRA_SCHED_SEARCH_SCAN };
void ocra_sched_cluster_set_search(struct ocra_sched_cluster *c, enum ocra_sched_search s);

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
 * Takes exactly what a describes (a placement recorded earlier, e.g. in the journal): its node,
 * devices, shares, GPU memory, CPU and RAM. EINVAL when a does not fit the node's description
 * (no such node or device), EBUSY when the capacity is no longer free. Takes nothing on failure.
 */
int ocra_sched_claim(struct ocra_sched_cluster *c, const struct ocra_sched_alloc *a,
                     struct ocra_err *err);
/* The index of the node named name; -1 when there is none. */
int ocra_sched_cluster_find(const struct ocra_sched_cluster *c, const char *name);

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

/* ---- inventory: the nodes and where each figure came from (sched_inventory.c) ------------ */

/* The figures of a node whose origin the inventory records. */
enum ocra_sched_fig {
    OCRA_SCHED_FIG_GPUS,    /* GPU model and count */
    OCRA_SCHED_FIG_GPU_MEM, /* memory per GPU */
    OCRA_SCHED_FIG_DRIVER,
    OCRA_SCHED_FIG_CC, /* compute capability */
    OCRA_SCHED_FIG_CPU,
    OCRA_SCHED_FIG_RAM,
    OCRA_SCHED_FIG_LABELS,
    OCRA_SCHED_FIG_COST,
    OCRA_SCHED_N_FIGS
};

#define OCRA_SCHED_SOURCE_MAX 16 /* a source name ("config", "proc", "nvml", "slurm"), NUL */
#define OCRA_SCHED_NOTE_MAX 192

/* "gpus", "gpu_memory", "driver", "compute_capability", "cpus", "memory", "labels", "cost". */
const char *ocra_sched_fig_name(enum ocra_sched_fig f);

/* One node of the inventory: its description and where each figure came from. */
struct ocra_sched_inv_node {
    struct ocra_sched_node node;                           /* accounting fields unused */
    char source[OCRA_SCHED_N_FIGS][OCRA_SCHED_SOURCE_MAX]; /* "" when the figure is unknown */
    char note[OCRA_SCHED_NOTE_MAX]; /* why a figure is missing ("0 GPUs: ..."), or "" */
};

struct ocra_sched_inventory {
    struct ocra_sched_inv_node *v;
    size_t n, cap;
};

void ocra_sched_inventory_init(struct ocra_sched_inventory *inv);
void ocra_sched_inventory_fini(struct ocra_sched_inventory *inv);

/*
 * Adds copies of nodes, every known figure (non-zero, non-empty) attributed to source (a node
 * source such as "slurm": at most 15 bytes). EINVAL on a description out of bounds (as
 * ocra_sched_cluster_add() checks it), EEXIST when a name is already in the inventory; on
 * failure nothing was added.
 */
int ocra_sched_inventory_add(struct ocra_sched_inventory *inv, const struct ocra_sched_node *nodes,
                             size_t n, const char *source, struct ocra_err *err);

/* A node as the configuration writes it (the `nodes` list); text where the file has text. */
struct ocra_sched_node_conf {
    const char *name, *gpu_model;
    int64_t gpus, gpu_memory_mib, cpus, memory_mib;
    const char *compute_capability; /* "8.6" or "" */
    const char *driver;             /* "535.104.05" or "" */
    const char *cost;               /* per GPU-hour, "2.5" or "" */
    char *const *labels;            /* "key=value" */
    size_t n_labels;
};

/*
 * Adds the configured nodes (source "config"). EINVAL ("inventory.nodes[1]: node b: GPUs
 * without a model") or EEXIST ("...: node b: listed twice") names the entry; on failure
 * nothing was added.
 */
int ocra_sched_inventory_add_conf(struct ocra_sched_inventory *inv,
                                  const struct ocra_sched_node_conf *confs, size_t n,
                                  struct ocra_err *err);

/*
 * Discovers this machine: its host name, CPUs (sysconf, source "proc"), RAM (/proc/meminfo,
 * "proc") and GPUs through NVML (ocra_sched_nvml_probe(NULL, ...), "nvml"). Without NVML the
 * node has 0 GPUs and its note says why. When a node of the same name is already in the
 * inventory (configured), the discovered figures fill only what it left unknown; otherwise
 * the machine is appended. Never fails: what cannot be read stays unknown, with a note.
 */
void ocra_sched_inventory_discover_local(struct ocra_sched_inventory *inv);

/*
 * A cluster of the inventory's nodes, in inventory order, each GPU's memory less headroom_mib
 * (at least 0). Caller frees *out with ocra_sched_cluster_free().
 */
int ocra_sched_inventory_cluster(const struct ocra_sched_inventory *inv, int64_t headroom_mib,
                                 struct ocra_sched_cluster **out, struct ocra_err *err);

/* ---- the allocator: placements recorded in the journal (sched_alloc.c) ------------------ */

#define OCRA_SCHED_MAX_REPLICAS 256 /* replicas of one event */

struct ocra_store;
struct ocra_sched_allocator;

/*
 * Opens an allocator over a cluster of the inventory's nodes (GPU memory less headroom_mib)
 * and the journal st (borrowed: it must outlive the allocator, and both are used from one
 * thread). Rebuilds the accounting from the journal's held allocations: each takes its node
 * and devices again. A held allocation whose node the inventory lacks, or that no longer fits
 * it, stays held in the journal and is counted as an orphan (ocra_sched_allocator_orphans()).
 * Caller frees *out with ocra_sched_allocator_free().
 */
int ocra_sched_allocator_open(struct ocra_store *st, const struct ocra_sched_inventory *inv,
                              enum ocra_sched_policy policy, int64_t headroom_mib,
                              struct ocra_sched_allocator **out, struct ocra_err *err);
void ocra_sched_allocator_free(struct ocra_sched_allocator *a);
/* The cluster and its accounting; borrowed, valid until the allocator is freed. */
const struct ocra_sched_cluster *ocra_sched_allocator_cluster(const struct ocra_sched_allocator *a);
/* Held allocations that could not be taken again at open; *first (may be NULL): why, first. */
size_t ocra_sched_allocator_orphans(const struct ocra_sched_allocator *a, const char **first);

/*
 * The allocation of replica `replica` (0 without replicas) of event_id. When the journal holds
 * one, that one (*existed true): the same node and devices after any restart, never a second.
 * Otherwise places r with the allocator's policy and records the result, in one transaction
 * (*existed false). Errors as ocra_sched_place() (EAGAIN: no room now; ENOSPC: never), ENOENT
 * when the held allocation's node is no longer in the inventory, or the journal's.
 */
int ocra_sched_allocate(struct ocra_sched_allocator *a, const char *event_id, int replica,
                        const struct ocra_sched_req *r, struct ocra_sched_alloc *out, bool *existed,
                        struct ocra_err *err);
/*
 * As ocra_sched_allocate(), but records exactly the allocation want (one that
 * ocra_sched_queue_decide() returned; a gang records one replica per node) instead of placing:
 * EBUSY when its capacity is no longer free, EINVAL when it does not fit the node. A held
 * allocation of (event_id, replica) is returned as it is (*existed true).
 */
int ocra_sched_allocate_exact(struct ocra_sched_allocator *a, const char *event_id, int replica,
                              const struct ocra_sched_alloc *want, struct ocra_sched_alloc *out,
                              bool *existed, struct ocra_err *err);
/*
 * Releases the held allocation of (event_id, replica) (replica -1: all of the event's) in the
 * journal and gives the capacity back. *n (may be NULL): how many were released (0 is fine).
 */
int ocra_sched_allocator_release(struct ocra_sched_allocator *a, const char *event_id, int replica,
                                 size_t *n, struct ocra_err *err);
/*
 * Brings event_id's held replicas to want (0..OCRA_SCHED_MAX_REPLICAS): places new ones with
 * the lowest free replica indices, each through ocra_sched_allocate(), or releases the
 * highest ones. *have is the count reached; a placement that fails stops the scale-up there
 * and returns -1 with its error (*have then tells how far it got).
 */
int ocra_sched_allocator_scale(struct ocra_sched_allocator *a, const char *event_id,
                               const struct ocra_sched_req *r, int want, int *have,
                               struct ocra_err *err);

/*
 * The inventory as JSON (sched_report.c), for `ocra nodes --json` and /api/v1/nodes: per node
 * its figures, the source of each, its note; with an allocator (may be NULL) also what is free
 * and which events hold which devices, and the held allocations on nodes the inventory lacks
 * ("orphans"). NULL with err when the journal cannot be read. Caller frees with json_decref().
 */
json_t *ocra_sched_nodes_json(const struct ocra_sched_inventory *inv,
                              struct ocra_sched_allocator *a, struct ocra_err *err);

/* ---- autoscaling (sched_autoscale.c) ------------------------------------------------------ */

/*
 * The control law for an inference workload with replicas {min, max}. The load signal is the
 * service's requests in flight plus queued, summed over its replicas (each workload reports
 * its own). desired = ceil(load / target), clamped to [min, max]; the count moves up only when
 * load > replicas * target * (1 + tolerance) and the last change is up_cooldown_ms old, and
 * down only when load < replicas * target * (1 - tolerance) and the last change is
 * down_cooldown_ms old. Below min (at the start) it goes to min at once.
 */
struct ocra_sched_autoscale_conf {
    int min, max;             /* 0 <= min <= max <= OCRA_SCHED_MAX_REPLICAS, max >= 1 */
    double target;            /* load per replica aimed at, > 0 */
    double tolerance;         /* the dead band around target, 0 <= tolerance < 1 */
    int64_t up_cooldown_ms;   /* since the last change, before scaling up */
    int64_t down_cooldown_ms; /* since the last change, before scaling down */
};

struct ocra_sched_autoscaler {
    struct ocra_sched_autoscale_conf conf;
    int replicas;           /* the count in place, as the caller last reported it */
    int64_t last_change_ms; /* when it last changed; INT64_MIN: never */
};

/* EINVAL (naming the field) when conf is out of bounds; the count starts at 0. */
int ocra_sched_autoscale_init(struct ocra_sched_autoscaler *as,
                              const struct ocra_sched_autoscale_conf *conf, struct ocra_err *err);
/* The replica count the law wants now for load; changes nothing. */
int ocra_sched_autoscale_step(const struct ocra_sched_autoscaler *as, int64_t now_ms, double load);
/* Records the count actually in place at now_ms (after placing or releasing replicas). */
void ocra_sched_autoscale_set(struct ocra_sched_autoscaler *as, int64_t now_ms, int replicas);

/* One request of an inference trace (the Azure LLM inference trace, Splitwise ISCA'24). */
struct ocra_sched_request {
    int64_t arrival_ms; /* since the first request of the trace */
    int64_t context_tokens, generated_tokens;
};

/*
 * Parses the Azure LLM inference trace: a header with TIMESTAMP ("2023-11-16 18:15:46.6805900",
 * UTC), ContextTokens, GeneratedTokens; rows in time order. Errors as ocra_sched_nodes_parse().
 * Caller frees *out with free().
 */
int ocra_sched_requests_parse(const char *name, const char *text, size_t len,
                              struct ocra_sched_request **out, size_t *n, struct ocra_err *err);

/* The replay of a request trace through the autoscaler (ocra simulate --autoscale). */
struct ocra_sched_replay_conf {
    struct ocra_sched_autoscale_conf scale;
    int64_t interval_ms;          /* between control steps */
    int64_t startup_ms;           /* from placement until a replica serves */
    int slots;                    /* requests one replica serves at once */
    int64_t service_ms;           /* > 0: every request takes this long; 0: the token model */
    int64_t prefill_us_per_token; /* token model: service = base + prefill * context */
    int64_t decode_us_per_token;  /*              + decode * generated */
    int64_t base_ms;
    int64_t bucket_ms;             /* width of a row of the replica timeline */
    struct ocra_sched_req replica; /* what each replica asks of the placer */
    enum ocra_sched_policy policy;
};

/*
 * The time one request takes on a replica: service_ms when set, else the token model
 * base_ms + (prefill_us_per_token * context + decode_us_per_token * generated) / 1000.
 */
int64_t ocra_sched_service_ms(const struct ocra_sched_replay_conf *c,
                              const struct ocra_sched_request *r);

/* One bucket of the timeline. */
struct ocra_sched_replay_bucket {
    int64_t start_ms;
    size_t arrivals, waited;
    int replicas_min, replicas_max; /* placed replicas (starting or serving) seen at steps */
    double replicas_mean;
    int64_t wait_p99_ms; /* of the requests that arrived in the bucket */
};

struct ocra_sched_replay_result {
    size_t requests, waited; /* waited: started later than they arrived */
    int64_t wait_p50_ms, wait_p90_ms, wait_p99_ms, wait_max_ms; /* over all requests */
    int64_t waited_p50_ms; /* median wait of those that waited */
    size_t scale_ups, scale_downs, place_failures;
    int replicas_max;
    double replica_hours;
    struct ocra_sched_replay_bucket *buckets; /* caller frees with free() */
    size_t n_buckets;
};

/*
 * Replays reqs (in arrival order) through replicas placed on a fresh cluster of nodes and the
 * autoscaler: a request goes to a serving replica with a free slot (the least busy), else
 * waits in one FIFO queue; every interval the load (in flight + queued) drives
 * ocra_sched_autoscale_step(); each new replica is placed through ocra_sched_place() and
 * serves after startup_ms; a removed replica takes no new request and is released when its
 * last one ends. Deterministic. EINVAL on bad configuration.
 */
int ocra_sched_replay(const struct ocra_sched_node *nodes, size_t n_nodes,
                      const struct ocra_sched_request *reqs, size_t n_reqs,
                      const struct ocra_sched_replay_conf *conf,
                      struct ocra_sched_replay_result *res, struct ocra_err *err);

/* ---- NVML, loaded with dlopen (sched_nvml.c) ----------------------------------------------- */

/* What NVML says about this machine's GPUs. */
struct ocra_sched_nvml {
    int count;                        /* devices; 0 with why set when NVML is unusable */
    char model[OCRA_SCHED_MODEL_MAX]; /* of device 0, "NVIDIA " and "Tesla " stripped */
    int64_t mem_mib;                  /* the smallest device's total memory */
    uint32_t driver;                  /* ocra_sched_driver_parse() form; 0 unknown */
    char driver_text[32];             /* as NVML gives it */
    int compute_cap;                  /* the lowest of the devices, major * 10 + minor */
    char why[OCRA_SCHED_NOTE_MAX];    /* "libnvidia-ml.so.1 not found", ... or "" */
};

/*
 * Loads NVML from lib (NULL: $OCRA_NVML_LIB, else "libnvidia-ml.so.1"), reads the devices and
 * unloads it. A missing library, a failing nvmlInit_v2 or device query leave count 0 (or the
 * devices read so far) with the reason in why. The first device of another model than device 0
 * ends the list (a node's GPUs are one model, and the count must cover indices 0..count-1, those
 * the runner hands to the container), and why says so.
 */
void ocra_sched_nvml_probe(const char *lib, struct ocra_sched_nvml *out);

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
    uint64_t cpu_ns;       /* CPU time of the event loop (the thread's: the same on a busy host) */
    double frag_share;     /* ocra_sched_frag_share() just after the last arrival */
    double free_share;     /* ocra_sched_free_share() at the same moment */
    double frag_of_free;   /* frag_share / free_share (0 when nothing is free) */
};

/* What a replay runs. */
struct ocra_sched_sim_conf {
    enum ocra_sched_policy policy;
    bool departures;               /* placed pods leave at their deletion time */
    enum ocra_sched_search search; /* OCRA_SCHED_SEARCH_INDEX unless comparing */
};

/*
 * Replays pods through a fresh copy of nodes with conf's policy: arrivals in creation-time
 * order (file order without times); with departures, each placed pod leaves at its deletion
 * time (before arrivals at the same second); without, pods never leave (the FGD paper's fill-up
 * experiment). The typical workload for fgd is the pod list itself. EINVAL on bad input.
 */
int ocra_sched_simulate(const struct ocra_sched_node *nodes, size_t n_nodes,
                        const struct ocra_sched_pod *pods, size_t n_pods,
                        const struct ocra_sched_sim_conf *conf, struct ocra_sched_sim_result *res,
                        struct ocra_err *err);

/* ---- the queue's policy (sched_queue.c) ------------------------------------------------- */

/*
 * What to start now, and why the rest waits. A pure function of the cluster's state, the
 * running workloads and the queued requests: nothing is recorded, the caller's cluster is not
 * changed, and the same input gives the same answer (so a caller that places the started
 * requests itself, in the order given, with the same placement policy on the same state, gets
 * the same allocations; or it records the allocations returned).
 *
 * Order, for every policy: the effective priority first (higher first): a request's priority
 * plus one for every conf.aging_s seconds it has waited (now - submit), so nothing starves;
 * then the policy's own order; then submit time (FIFO), then the caller's array order.
 *   fifo      submit order. The requests start in that order while they fit; the first that
 *             does not fit (the head) stops every later one: no backfill.
 *   backfill  submit order, EASY backfill: the requests start in order while they fit; the
 *             first that does not is the head and gets a reservation: the earliest time it fits
 *             once running workloads end at their expected ends (the nodes and devices it would
 *             take then). A later request starts now when it fits now and either ends (now +
 *             estimate) by the reservation, or leaves the head's reserved devices (and the CPU
 *             and RAM it needs on those nodes) free. A head whose start cannot be estimated
 *             (what it needs is held by workloads without an expected end) lets nothing past.
 *   fair      weighted fair share across owners (DRF): within one effective priority, the next
 *             request is the oldest of the owner with the smallest dominant share, where an
 *             owner's dominant share is the largest of its shares of the cluster's GPUs
 *             (milli-GPUs), CPU and RAM, held by its running workloads and by what this
 *             decision starts, divided by its weight (conf.weights; 1 when not listed); then
 *             EASY backfill as above.
 *   sjf       shortest estimate first (unknown estimates last), aging keeping long ones from
 *             starving; then EASY backfill as above. The policy aimed at job completion time.
 *
 * A request asks for req (struct ocra_sched_req; gpus may exceed OCRA_SCHED_MAX_GPUS). One
 * whose req.gpus exceeds the GPU count of every node that passes its filters is a gang: it
 * takes whole nodes (every device of each, free), enough of them that their GPUs add up to
 * req.gpus, each node also giving req.cpu_milli and req.ram_mib; req.gpu_milli must then be 0.
 * The gang takes the fewest nodes (the largest first) and, among sets of that size, the nodes
 * of one topology group (the nodes' "topology=<group>" label) when one group can host it (the
 * first such group by name), else nodes across groups; its allocations are in node order (the
 * first is rank 0's node). It starts only once the whole gang fits: nothing is held for it
 * meanwhile, and under backfill the head gang's reservation keeps later gangs and smaller
 * requests from taking its nodes for longer than its estimated start.
 * The gang's allocations (one per node) are returned. A request that could never fit, even on
 * an empty cluster, is an error of the whole call: ENOSPC with the placer's explanation ("no
 * node can ever host it: ...") prefixed by the request's id, and *bad (may be NULL) set to its
 * index, so the caller fails that one and calls again without it. EINVAL likewise for a
 * malformed request.
 */
enum ocra_sched_qpolicy {
    OCRA_SCHED_Q_FIFO,
    OCRA_SCHED_Q_BACKFILL,
    OCRA_SCHED_Q_FAIR,
    OCRA_SCHED_Q_SJF,
    OCRA_SCHED_Q_N_POLICIES
};

/* "fifo", "backfill", "fair", "sjf"; -1 on anything else. */
int ocra_sched_qpolicy_parse(const char *s, enum ocra_sched_qpolicy *out);
/* The policy's name as ocra_sched_qpolicy_parse() reads it. */
const char *ocra_sched_qpolicy_name(enum ocra_sched_qpolicy p);

/* An owner's weight in fair share. */
struct ocra_sched_weight {
    const char *owner; /* borrowed */
    double weight;     /* > 0 */
};

/* The queue's configuration. Times are seconds on the caller's clock (the same as now). */
struct ocra_sched_queue_conf {
    enum ocra_sched_qpolicy policy;
    enum ocra_sched_policy place;            /* the placement policy (ocra_sched_place()) */
    int64_t aging_s;                         /* +1 effective priority per aging_s waited; 0: off */
    const struct ocra_sched_weight *weights; /* fair share weights by owner; may be NULL */
    size_t n_weights;
    int horizon; /* waiting requests, after the head, given an estimated start; 0: 64 */
};

/* A running workload: what it holds and until when. */
struct ocra_sched_running {
    const char *id;                        /* borrowed, for reasons */
    const char *owner;                     /* borrowed; NULL or "": its own owner */
    const struct ocra_sched_alloc *allocs; /* where it runs, one per node (a gang: several) */
    size_t n_allocs;
    int64_t end;      /* expected end (start + estimate); <= 0: unknown (never, for planning) */
    bool preemptible; /* may be preempted (ocra_sched_preempt_choose()) */
    int priority;     /* its priority, for preemption */
    int64_t start;    /* when it started, for preemption's minimum run time */
};

/* A queued request. */
struct ocra_sched_queued {
    const char *id;    /* borrowed */
    const char *owner; /* borrowed; NULL or "": its own owner */
    int priority;      /* higher first; operator configuration by app or publisher */
    int64_t submit;    /* when it was queued */
    struct ocra_sched_req req;
    int64_t estimate; /* how long it runs (workload.maxDuration), seconds; 0: unknown */
    bool preemptible;
};

/* Why a queued request waits. */
enum ocra_sched_wait {
    OCRA_SCHED_WAIT_NONE,     /* it starts now */
    OCRA_SCHED_WAIT_ROOM,     /* no room for it now ("no node has 4 free GPUs of the 8 it ...") */
    OCRA_SCHED_WAIT_ORDER,    /* behind an earlier request that cannot start (fifo) */
    OCRA_SCHED_WAIT_PRIORITY, /* behind a request of higher effective priority */
    OCRA_SCHED_WAIT_FAIR,     /* behind an owner with a smaller share ("fair share: owner X ...") */
    OCRA_SCHED_WAIT_RESERVED, /* it would delay the head ("reserved for the head until T") */
};

/* "none", "room", "order", "priority", "fair", "reserved". */
const char *ocra_sched_wait_name(enum ocra_sched_wait w);

#define OCRA_SCHED_REASON_MAX 256

/* The answer for one queued request. */
struct ocra_sched_decision {
    size_t queued;    /* its index in the caller's queued array */
    size_t position;  /* 1-based, in the order above */
    int eff_priority; /* priority plus aging */
    bool start;       /* start it now */
    bool head;        /* the head: it holds the reservation */
    enum ocra_sched_wait wait;
    char reason[OCRA_SCHED_REASON_MAX]; /* for people; "" when it starts */
    int64_t est_start;                  /* now when it starts; -1: cannot be estimated */
    size_t alloc, n_allocs;             /* when it starts: plan.allocs[alloc .. alloc+n_allocs) */
};

/* A decision over the whole queue. */
struct ocra_sched_plan {
    struct ocra_sched_decision *v; /* one per queued request, by position */
    size_t n, n_start;
    struct ocra_sched_alloc *allocs; /* of the requests that start, by position */
    size_t n_allocs;
    int64_t reserve_at; /* the head's reservation; -1: no head, or its start is unknown */
};

void ocra_sched_plan_init(struct ocra_sched_plan *p);
void ocra_sched_plan_fini(struct ocra_sched_plan *p);

/*
 * Decides at now over cluster c (its accounting must already hold the running workloads;
 * borrowed and left unchanged). Fills *plan (ocra_sched_plan_init() first; a plan reused is
 * overwritten; caller releases it with ocra_sched_plan_fini()). Every running workload's
 * allocations must be held in c (what is held in c by nothing listed never ends, for planning).
 * Errors: ENOSPC or EINVAL for a request (above, *bad set); EINVAL for a bad conf or a running
 * allocation on a node c does not have.
 */
int ocra_sched_queue_decide(const struct ocra_sched_cluster *c,
                            const struct ocra_sched_queue_conf *conf, int64_t now,
                            const struct ocra_sched_running *running, size_t n_running,
                            const struct ocra_sched_queued *queued, size_t n_queued,
                            struct ocra_sched_plan *plan, size_t *bad, struct ocra_err *err);

/*
 * The same decision with its scratch copies of the cluster kept between calls: a decision then
 * costs no copy of the cluster (about 20 ms for 1,000 nodes on a busy host), only the refresh of
 * the nodes that changed since the last one. ocra_sched_queue_new() copies c (caller frees with
 * ocra_sched_queue_free()); every later ocra_sched_queue_decide_with() must pass a cluster of
 * the same nodes (the same ocra_sched_cluster_add() calls: after an inventory change, make a
 * new one). Otherwise exactly ocra_sched_queue_decide(). One thread at a time.
 */
struct ocra_sched_queue;
struct ocra_sched_queue *ocra_sched_queue_new(const struct ocra_sched_cluster *c);
void ocra_sched_queue_free(struct ocra_sched_queue *q);
int ocra_sched_queue_decide_with(struct ocra_sched_queue *q, const struct ocra_sched_cluster *c,
                                 const struct ocra_sched_queue_conf *conf, int64_t now,
                                 const struct ocra_sched_running *running, size_t n_running,
                                 const struct ocra_sched_queued *queued, size_t n_queued,
                                 struct ocra_sched_plan *plan, size_t *bad, struct ocra_err *err);

/*
 * Preemption: which running workloads to stop so that the queued request q fits now. A victim
 * must be preemptible, of a priority strictly below q's, and have run at least min_run_s
 * (start <= now - min_run_s: no thrash, a workload just resumed is left to make progress).
 * Victims are taken greedily in order: lowest priority first, then the most recently started
 * (it loses the least work), then the later index; each taken victim's allocations are given
 * back on a copy of c and q is placed again (a gang of whole nodes when q is larger than any
 * node). Once q fits, every victim whose return would still leave room for q is dropped (last
 * taken first), so no victim is stopped in vain. Writes the victims' indices into running to
 * victims (room for n_running) and returns their number; 0 when q fits without preemption or
 * when stopping every eligible victim would still not make room (nothing is then preempted).
 */
int ocra_sched_preempt_choose(const struct ocra_sched_cluster *c, enum ocra_sched_policy place,
                              int64_t now, int64_t min_run_s,
                              const struct ocra_sched_running *running, size_t n_running,
                              const struct ocra_sched_queued *q, size_t *victims);

/* ---- job traces through the queue (ocra simulate --jobs) -------------------------------- */

/* One job of a trace. */
struct ocra_sched_job {
    char name[OCRA_SCHED_NAME_MAX];
    char owner[OCRA_SCHED_NAME_MAX]; /* "" when the trace has none */
    int64_t submit;                  /* seconds from the trace's start */
    int64_t duration;                /* seconds it runs once started, >= 1 */
    int64_t estimate;                /* what the queue is told; the duration when absent */
    int gpus;                        /* whole GPUs; more than a node's: whole nodes */
    int priority;
    bool preemptible; /* may be preempted by a job of higher priority */
};

/*
 * Parses a job trace: a header naming name, submit, duration, gpus (required) and owner,
 * priority, preemptible, estimate (optional), any order, other columns ignored. submit is
 * seconds (>= 0) or an ISO-8601 UTC time "2024-01-02T03:04:05Z" (a space for the T, without
 * the Z, and a fraction are accepted); when the trace uses times, the earliest is second 0.
 * Errors as ocra_sched_nodes_parse(), "name:line: column: problem". Caller frees *out.
 */
int ocra_sched_jobs_parse(const char *name, const char *text, size_t len,
                          struct ocra_sched_job **out, size_t *n, struct ocra_err *err);

/* What a job replay measured (seconds). */
struct ocra_sched_jobsim_result {
    size_t jobs;
    double jct_avg, jct_p50, jct_p95; /* completion - submit */
    double wait_avg;                  /* start - submit */
    int64_t makespan;                 /* the last completion - the first submit */
    double gpu_util;                  /* GPU-seconds used / (cluster GPUs * makespan), 0..1 */
    size_t decisions;                 /* ocra_sched_queue_decide() calls */
    size_t preemptions;               /* jobs stopped for a higher-priority one */
    uint64_t ns;                      /* wall time of the replay */
};

/*
 * Replays jobs through a fresh cluster of nodes and ocra_sched_queue_decide() with conf:
 * event driven (a decision at every submission and completion time, after the completions of
 * that second); a started job ends at start + duration; the queue is told its estimate. Jobs
 * are whole-GPU requests with no CPU or RAM. A job that can never fit is an error naming it.
 */
int ocra_sched_jobsim(const struct ocra_sched_node *nodes, size_t n_nodes,
                      const struct ocra_sched_job *jobs, size_t n_jobs,
                      const struct ocra_sched_queue_conf *conf,
                      struct ocra_sched_jobsim_result *res, struct ocra_err *err);

#endif
