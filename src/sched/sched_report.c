/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sched_report.c: the inventory and its allocation as one JSON document, the single source of
 * `ocra nodes` (text and --json) and of the daemon's /api/v1/nodes. Unknown figures are null
 * and have no source; every known one names where it came from.
 */
#include "sched/sched_int.h"

#include <stdio.h>
#include <string.h>

#include "store/store.h"

/* "535.104.05" from ocra_sched_driver_parse()'s number. */
static json_t *
driver_json(uint32_t v)
{
    char buf[32];

    if (!v)
        return json_null();
    (void)snprintf(buf, sizeof(buf), "%u.%u.%02u", v / 1000000, v / 1000 % 1000, v % 1000);
    return json_string(buf);
}

/* "2.5" from millionths. */
static json_t *
micro_json(int64_t v)
{
    char buf[48];
    size_t n;

    if (v <= 0)
        return json_null();
    n = (size_t)snprintf(buf, sizeof(buf), "%lld.%06lld", (long long)(v / 1000000),
                         (long long)(v % 1000000));
    while (n > 0 && buf[n - 1] == '0')
        buf[--n] = '\0';
    if (n > 0 && buf[n - 1] == '.')
        buf[--n] = '\0';
    return json_string(buf);
}

static json_t *
num_or_null(int64_t v)
{
    return v > 0 ? json_integer(v) : json_null();
}

static json_t *
sources_json(const struct ocra_sched_inv_node *in)
{
    json_t *o = json_object();

    for (int f = 0; f < OCRA_SCHED_N_FIGS; f++)
        json_object_set_new(o, ocra_sched_fig_name((enum ocra_sched_fig)f),
                            in->source[f][0] ? json_string(in->source[f]) : json_null());
    return o;
}

static json_t *
node_json(const struct ocra_sched_inv_node *in)
{
    const struct ocra_sched_node *n = &in->node;
    json_t *o = json_object(), *labels = json_array();
    char cc[32];

    for (int i = 0; i < n->n_labels; i++)
        json_array_append_new(labels, json_string(n->labels[i]));
    (void)snprintf(cc, sizeof(cc), "%d.%d", n->compute_cap / 10, n->compute_cap % 10);
    json_object_set_new(o, "name", json_string(n->name));
    json_object_set_new(o, "gpu_model", n->gpu_model[0] ? json_string(n->gpu_model) : json_null());
    json_object_set_new(o, "gpus", json_integer(n->gpu_count));
    json_object_set_new(o, "gpu_memory_mib", num_or_null(n->gpu_mem_mib));
    json_object_set_new(o, "driver", driver_json(n->driver));
    json_object_set_new(o, "compute_capability", n->compute_cap ? json_string(cc) : json_null());
    json_object_set_new(o, "cpus",
                        n->cpu_milli > 0 ? json_real((double)n->cpu_milli / 1000) : json_null());
    json_object_set_new(o, "memory_mib", num_or_null(n->ram_mib));
    json_object_set_new(o, "labels", labels);
    json_object_set_new(o, "cost_per_gpu_hour", micro_json(n->cost_micro));
    json_object_set_new(o, "sources", sources_json(in));
    json_object_set_new(o, "note", in->note[0] ? json_string(in->note) : json_null());
    return o;
}

/* What node i of the cluster has free: CPU, RAM, and each device's share and memory. */
static json_t *
free_json(const struct ocra_sched_node *n)
{
    json_t *o = json_object(), *gpus = json_array();

    for (int d = 0; d < n->gpu_count; d++) {
        json_t *g = json_object();

        json_object_set_new(g, "index", json_integer(d));
        json_object_set_new(g, "free_milli", json_integer(n->gpu_free_milli[d]));
        json_object_set_new(g, "free_memory_mib", json_integer(n->gpu_mem_free[d]));
        json_array_append_new(gpus, g);
    }
    json_object_set_new(o, "cpus", json_real((double)n->cpu_free / 1000));
    json_object_set_new(o, "memory_mib", json_integer(n->ram_free));
    json_object_set_new(o, "gpus", gpus);
    return o;
}

static json_t *
alloc_json(const struct ocra_store_alloc *row)
{
    json_t *o = json_object(), *devs = json_array();

    for (int i = 0; i < row->n_devs; i++)
        json_array_append_new(devs, json_integer(row->devs[i]));
    json_object_set_new(o, "event", json_string(row->event_id));
    json_object_set_new(o, "replica", json_integer(row->replica));
    json_object_set_new(o, "node", json_string(row->node));
    json_object_set_new(o, "devices", devs);
    json_object_set_new(o, "gpu_milli", json_integer(row->gpu_milli));
    json_object_set_new(o, "gpu_memory_mib", json_integer(row->gpu_mem_mib));
    json_object_set_new(o, "cpu_milli", json_integer(row->cpu_milli));
    json_object_set_new(o, "memory_mib", json_integer(row->ram_mib));
    json_object_set_new(o, "since_ms", json_integer(row->created_ms));
    return o;
}

/* Files one held allocation under its node (by name), or under the orphans. */
struct file_ctx {
    json_t *by_node; /* name -> array */
    json_t *orphans;
};

static int
file_alloc(const struct ocra_store_alloc *row, void *arg)
{
    struct file_ctx *f = arg;
    json_t *list = json_object_get(f->by_node, row->node);

    json_array_append_new(list ? list : f->orphans, alloc_json(row));
    return 0;
}

json_t *
ocra_sched_nodes_json(const struct ocra_sched_inventory *inv, struct ocra_sched_allocator *a,
                      struct ocra_err *err)
{
    json_t *doc = json_object(), *nodes = json_array();
    struct file_ctx f = {json_object(), json_array()};

    for (size_t i = 0; i < inv->n; i++)
        json_object_set_new(f.by_node, inv->v[i].node.name, json_array());
    if (a && ocra_store_alloc_list(sched_allocator_store(a), NULL, true, file_alloc, &f, err) < 0) {
        json_decref(doc);
        json_decref(nodes);
        json_decref(f.by_node);
        json_decref(f.orphans);
        return NULL;
    }
    for (size_t i = 0; i < inv->n; i++) {
        json_t *o = node_json(&inv->v[i]);

        if (a) {
            const struct ocra_sched_cluster *c = ocra_sched_allocator_cluster(a);

            json_object_set_new(o, "free", free_json(ocra_sched_cluster_node(c, i)));
            json_object_set(o, "allocations", json_object_get(f.by_node, inv->v[i].node.name));
        }
        json_array_append_new(nodes, o);
    }
    json_object_set_new(doc, "nodes", nodes);
    if (a)
        json_object_set(doc, "orphans", f.orphans);
    json_decref(f.by_node);
    json_decref(f.orphans);
    return doc;
}
