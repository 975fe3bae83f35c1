/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sched_int.h: the cluster's insides, shared by sched.c (filters, policies, accounting),
 * sched_frag.c (the typical workload and the fragmentation measure) and sched_sim.c. Each node
 * has a small "hot" summary beside its description so that a placement decision scans one
 * compact array and touches the full node only for the filters a request asks for.
 */
#ifndef OCRA_SCHED_INT_H
#define OCRA_SCHED_INT_H

#include "sched/sched.h"

#define SCHED_ACC_MAX 256    /* typical shapes accumulated */
#define SCHED_CLS_MAX 32     /* typical shapes fgd evaluates: the heaviest */
#define SCHED_TYPES_MAX 1024 /* node types looked for; past that each node is its own */

/* What a decision reads of every node; refreshed by sched_node_refresh() after each change. */
struct sched_hot {
    int64_t cpu_free, ram_free;
    int64_t frag; /* F_n(M) of sched_frag.c, in the current state */
    int gpu_free_total;
    int full;     /* devices with 1000 free */
    int max_free; /* the largest free share of a device */
    int model_id; /* index into the cluster's models; -1 without GPUs */
    int gpu_count;
    int type;   /* nodes of one type have the same description (see node_type()) */
    bool empty; /* nothing allocated: all empty nodes of a type score the same */
};

/* One typical request shape of the workload fgd expects. */
struct sched_class {
    int gpus, milli;
    int64_t cpu, ram;         /* means */
    int64_t cpu_sum, ram_sum; /* while accumulating */
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
    struct sched_class acc[SCHED_ACC_MAX];
    int n_acc;
    int64_t weight_acc;                    /* of acc */
    struct sched_class cls[SCHED_CLS_MAX]; /* by ascending threshold (see sched_frag.c) */
    int n_cls;
    int64_t weight; /* of cls */
    bool cls_dirty; /* acc changed since cls was built */
};

/* Recomputes hot[i] (and its fragmentation) from nodes[i]'s accounting. */
void sched_node_refresh(struct ocra_sched_cluster *c, size_t i);
/* F_n(M) of a node state: g devices with free shares free_milli, cpu and ram free. */
int64_t sched_frag_eval(const struct ocra_sched_cluster *c, const int *free_milli, int g,
                        int64_t cpu, int64_t ram);
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

#endif
