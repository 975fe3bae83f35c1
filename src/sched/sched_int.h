/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sched_int.h: the cluster's insides, shared by sched.c (filters, policies, accounting),
 * sched_index.c (the capacity index decisions search), sched_frag.c (the typical workload and
 * the fragmentation measure) and sched_sim.c. Each node has a small "hot" summary beside its
 * description so that a decision reads one compact record per candidate and touches the full
 * node only for the filters a request asks for.
 */
#ifndef OCRA_SCHED_INT_H
#define OCRA_SCHED_INT_H

#include "sched/sched.h"

#define SCHED_ACC_MAX 256    /* typical shapes accumulated */
#define SCHED_CLS_MAX 64     /* typical shapes fgd evaluates: the most frequent */
#define SCHED_SCORE_MAX 100  /* fgd's score of a placement: 0..100 */
#define SCHED_TYPES_MAX 1024 /* node types looked for; past that each node is its own */

/* What a decision reads of every node; refreshed by sched_node_refresh() after each change. */
struct sched_hot {
    int64_t cpu_free, ram_free;
    int64_t frag; /* F_n(M) of sched_frag.c, in the current state, unless frag_stale */
    int gpu_free_total;
    int full;     /* devices with 1000 free */
    int max_free; /* the largest free share of a device */
    int model_id; /* index into the cluster's models; -1 without GPUs */
    int gpu_count;
    int type;        /* nodes of one type have the same description (see node_type()) */
    bool empty;      /* nothing allocated: all empty nodes of a type score the same */
    bool frag_stale; /* the state changed since frag was computed (sched_node_frag()) */
};

/*
 * One range of nodes in the capacity index (sched_index.c): the most that any node of the
 * range visible to searches has free. A range without one has cpu and ram -1.
 */
struct sched_seg {
    int64_t cpu, ram;
    int64_t cpu_whole, ram_whole; /* of the nodes with a whole GPU free; -1: none */
    int full;                     /* whole free devices */
    int max_free;                 /* the largest free share of one device */
    uint64_t models;              /* bit m: a node with GPU model m */
};

/* The empty nodes of one type: a min-heap of node indices (the top is the lowest). */
struct sched_heap {
    uint32_t *v;
    uint32_t n, cap;
};

/* A request checked and resolved once per decision (sched.c). */
struct sched_want {
    const struct ocra_sched_req *r;
    int k;           /* whole devices; 0 for a share or none */
    int milli;       /* per device */
    uint64_t models; /* allowed model ids */
    bool statics;    /* driver, compute capability, labels or GPU memory asked for */
};

/*
 * fgd's memo: what weighing a node for a request found (the placement's score and the device
 * of a share), kept per node for each of the last SCHED_SHAPES request shapes until the node
 * changes (8 bytes a shape: 512 per node, allocated at fgd's first decision). A shape is what
 * the weighing reads of a request (sched_shape); ids are given in turn with the shapes' slots,
 * so id % SCHED_MEMO_WAYS never collides, and never reused, so an entry of a forgotten shape
 * never matches.
 */
#define SCHED_MEMO_WAYS 64 /* entries per node: one per shape remembered */
#define SCHED_SHAPES 64    /* request shapes remembered */

struct sched_memo {
    uint32_t shape; /* 0: empty */
    int16_t dev;    /* the device of a share; -1: none takes it, or no share */
    int16_t score;  /* sched_frag_score() of the placement */
};

struct sched_shape {
    int k, milli;
    int64_t cpu, ram, gpu_mem;
    uint32_t id; /* 0: unused */
};

/* One typical request shape of the workload fgd expects: GPUs, share, CPU; how often. */
struct sched_class {
    int gpus, milli; /* 0, 0: no GPU */
    int64_t cpu;
    int64_t weight;
};

struct ocra_sched_cluster {
    struct ocra_sched_node *nodes;
    struct sched_hot *hot;
    size_t n, cap;
    char models[OCRA_SCHED_MAX_MODELS][OCRA_SCHED_MODEL_MAX];
    int n_models;
    int64_t gpu_capacity; /* milli-GPUs in all nodes */
    size_t *type_rep;     /* per type: its first node */
    uint32_t *type_stamp; /* per type: the decision that last weighed an empty node of it */
    size_t n_types;
    uint32_t stamp; /* this decision's number */
    enum ocra_sched_search search;
    struct sched_seg *seg;    /* the capacity index: 2 * cap ranges, leaf of node i at cap + i */
    struct sched_heap *empty; /* per type: its empty nodes */
    uint32_t *heap_pos;       /* per node: its place in its type's heap; UINT32_MAX: not empty */
    struct sched_memo *memo;  /* SCHED_MEMO_WAYS per node; NULL until fgd first decides */
    struct sched_shape shapes[SCHED_SHAPES];
    uint32_t shape_seq; /* the last id given */
    int shape_next;     /* the slot the next new shape takes */
    struct sched_class acc[SCHED_ACC_MAX];
    int n_acc;
    int64_t weight_acc;                    /* of acc */
    struct sched_class cls[SCHED_CLS_MAX]; /* GPU shapes, by ascending threshold (sched_frag.c) */
    int n_cls;
    int64_t cpu_weight;                  /* of the typical shapes without GPUs */
    int64_t weight;                      /* of all typical shapes: cls and cpu_weight */
    int64_t score_step[SCHED_SCORE_MAX]; /* the fall of F_n(M) that scores 1, 2, .. 100 */
    bool cls_dirty;                      /* acc changed since cls was built */
};

/* Recomputes hot[i] from nodes[i]'s accounting, and its index entry while decisions use it. */
void sched_node_refresh(struct ocra_sched_cluster *c, size_t i);

/*
 * The capacity index (sched_index.c). Only nodes visible to searches are in the tree: every
 * node with something allocated, and of the empty nodes of each type the lowest-numbered one
 * (the others score exactly like it and lose the tie).
 */
/* Resizes the tree to c->cap nodes and rebuilds it from hot[0..n) and the heaps. */
void sched_index_resize(struct ocra_sched_cluster *c);
/* Rebuilds the whole index (heaps and tree) from hot[0..n): the scan does not keep it. */
void sched_index_rebuild(struct ocra_sched_cluster *c);
/* Brings node i's entry up to date after hot[i] changed. */
void sched_index_update(struct ocra_sched_cluster *c, size_t i);
void sched_index_free(struct ocra_sched_cluster *c);
/*
 * Calls visit(c, i, arg) for the visible nodes that may host w's CPU, RAM, model and free
 * devices, in ascending index order, until visit returns true; returns whether one did. visit
 * still checks each node: a range's maxima can come from different nodes.
 */
bool sched_index_search(struct ocra_sched_cluster *c, const struct sched_want *w,
                        bool (*visit)(struct ocra_sched_cluster *c, size_t i, void *arg),
                        void *arg);
/* hot[i].frag, computed first when the node changed since. */
int64_t sched_node_frag(struct ocra_sched_cluster *c, size_t i);
/* F_n(M) of a node state: g devices with free shares free_milli, cpu free. */
int64_t sched_frag_eval(const struct ocra_sched_cluster *c, const int *free_milli, int g,
                        int64_t cpu);
/* fgd's score of a placement that lowers F_n(M) by fall (negative: raises it): 0..100. */
int sched_frag_score(const struct ocra_sched_cluster *c, int64_t fall);
/* Rebuilds cls from acc and every node's cached fragmentation. */
void sched_classes_build(struct ocra_sched_cluster *c);

/* EINVAL when n's description is out of bounds (names, counts, quantities, labels). */
int sched_node_check(const struct ocra_sched_node *n, struct ocra_err *err);
/* "12" or "1.25" (up to 6 digits and 6 decimals) into millionths; -1 on anything else. */
int64_t sched_parse_micro(const char *s);
/* A compute capability "8.6" as 86; -1 on anything else. */
int sched_parse_cc(const char *s);

/* The journal an allocator records to (borrowed). */
struct ocra_store *sched_allocator_store(const struct ocra_sched_allocator *a);

/*
 * For the queue (sched_queue.c). sched_cluster_dup: a new cluster with src's nodes, accounting
 * and typical workload (caller frees with ocra_sched_cluster_free()). sched_cluster_sync: makes
 * dst's accounting src's (dst a dup of src: the same nodes), refreshing only the nodes that
 * differ. sched_node_admits: whether node i, were it empty, passes r's filters other than the
 * GPU count (model, driver, compute capability, labels, GPU memory, CPU, RAM) and has a GPU
 * when r asks for any: the placer's own filters, for gangs of whole nodes.
 */
struct ocra_sched_cluster *sched_cluster_dup(const struct ocra_sched_cluster *src);
void sched_cluster_sync(struct ocra_sched_cluster *dst, const struct ocra_sched_cluster *src);
bool sched_node_admits(const struct ocra_sched_cluster *c, size_t i,
                       const struct ocra_sched_req *r);

#endif
