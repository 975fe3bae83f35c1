/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sched_inventory.c: the nodes ocra may place on, and where each of their figures came from.
 * Nodes come from the configuration ("config"), from discovery of this machine ("proc" for
 * CPUs and RAM, "nvml" for GPUs) and from any other node source that hands over struct
 * ocra_sched_node values under its own name ("slurm"). A configured node named like this
 * machine is completed by discovery, never overridden: the operator's word wins.
 */
#include "sched/sched_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const fig_names[OCRA_SCHED_N_FIGS] = {
    "gpus", "gpu_memory", "driver", "compute_capability", "cpus", "memory", "labels", "cost"};

const char *
ocra_sched_fig_name(enum ocra_sched_fig f)
{
    return (unsigned)f < OCRA_SCHED_N_FIGS ? fig_names[f] : "?";
}

void
ocra_sched_inventory_init(struct ocra_sched_inventory *inv)
{
    memset(inv, 0, sizeof(*inv));
}

void
ocra_sched_inventory_fini(struct ocra_sched_inventory *inv)
{
    free(inv->v);
    memset(inv, 0, sizeof(*inv));
}

static struct ocra_sched_inv_node *
inv_find(struct ocra_sched_inventory *inv, const char *name)
{
    for (size_t i = 0; i < inv->n; i++)
        if (strcmp(inv->v[i].node.name, name) == 0)
            return &inv->v[i];
    return NULL;
}

static struct ocra_sched_inv_node *
inv_append(struct ocra_sched_inventory *inv)
{
    if (inv->n == inv->cap) {
        inv->cap = inv->cap ? 2 * inv->cap : 8;
        inv->v = ocra_xrealloc(inv->v, inv->cap * sizeof(*inv->v));
    }
    memset(&inv->v[inv->n], 0, sizeof(inv->v[0]));
    return &inv->v[inv->n++];
}

static void
set_source(struct ocra_sched_inv_node *in, enum ocra_sched_fig f, const char *source)
{
    (void)snprintf(in->source[f], sizeof(in->source[f]), "%s", source);
}

/* Attributes every known figure of in->node to source. */
static void
attribute(struct ocra_sched_inv_node *in, const char *source)
{
    const struct ocra_sched_node *n = &in->node;
    const bool known[OCRA_SCHED_N_FIGS] = {
        [OCRA_SCHED_FIG_GPUS] = n->gpu_count > 0 || n->gpu_model[0],
        [OCRA_SCHED_FIG_GPU_MEM] = n->gpu_mem_mib > 0,
        [OCRA_SCHED_FIG_DRIVER] = n->driver > 0,
        [OCRA_SCHED_FIG_CC] = n->compute_cap > 0,
        [OCRA_SCHED_FIG_CPU] = n->cpu_milli > 0,
        [OCRA_SCHED_FIG_RAM] = n->ram_mib > 0,
        [OCRA_SCHED_FIG_LABELS] = n->n_labels > 0,
        [OCRA_SCHED_FIG_COST] = n->cost_micro > 0,
    };

    for (int f = 0; f < OCRA_SCHED_N_FIGS; f++)
        if (known[f])
            set_source(in, (enum ocra_sched_fig)f, source);
}

/* EEXIST when a name of nodes is in inv or repeats within nodes; EINVAL when one is bad. */
static int
check_new(struct ocra_sched_inventory *inv, const struct ocra_sched_node *nodes, size_t n,
          struct ocra_err *err)
{
    for (size_t i = 0; i < n; i++) {
        if (sched_node_check(&nodes[i], err) < 0)
            return -1;
        if (inv_find(inv, nodes[i].name))
            return ocra_err_set(err, EEXIST, "node %s: already in the inventory", nodes[i].name);
        for (size_t j = 0; j < i; j++)
            if (strcmp(nodes[i].name, nodes[j].name) == 0)
                return ocra_err_set(err, EEXIST, "node %s: listed twice", nodes[i].name);
    }
    return 0;
}

int
ocra_sched_inventory_add(struct ocra_sched_inventory *inv, const struct ocra_sched_node *nodes,
                         size_t n, const char *source, struct ocra_err *err)
{
    if (!source || !source[0] || strlen(source) >= OCRA_SCHED_SOURCE_MAX)
        return ocra_err_set(err, EINVAL, "node source: 1 to %d bytes", OCRA_SCHED_SOURCE_MAX - 1);
    if (check_new(inv, nodes, n, err) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        struct ocra_sched_inv_node *in = inv_append(inv);

        in->node = nodes[i];
        attribute(in, source);
    }
    return 0;
}

/* ---- configured nodes ------------------------------------------------------------------ */

static int
copy_word(char *out, size_t cap, const char *s, const char *what, struct ocra_err *err)
{
    if (!s || strlen(s) >= cap)
        return ocra_err_set(err, EINVAL, "%s: at most %zu bytes", what, cap - 1);
    memcpy(out, s, strlen(s) + 1);
    return 0;
}

static int
conf_numbers(const struct ocra_sched_node_conf *c, struct ocra_sched_node *n, struct ocra_err *err)
{
    int64_t v;

    if (c->gpus < 0 || c->gpus > OCRA_SCHED_MAX_GPUS)
        return ocra_err_set(err, EINVAL, "gpus: %lld (0..%d)", (long long)c->gpus,
                            OCRA_SCHED_MAX_GPUS);
    if (c->cpus < 0 || c->cpus > OCRA_SCHED_QTY_MAX / 1000)
        return ocra_err_set(err, EINVAL, "cpus: out of range");
    n->gpu_count = (int)c->gpus;
    n->gpu_mem_mib = c->gpu_memory_mib;
    n->cpu_milli = c->cpus * 1000;
    n->ram_mib = c->memory_mib;
    if (c->driver && c->driver[0] && ocra_sched_driver_parse(c->driver, &n->driver, err) < 0)
        return -1;
    if (c->compute_capability && c->compute_capability[0]) {
        if ((v = sched_parse_cc(c->compute_capability)) < 0)
            return ocra_err_set(err, EINVAL, "compute_capability: not X.Y");
        n->compute_cap = (int)v;
    }
    if (c->cost && c->cost[0] && (n->cost_micro = sched_parse_micro(c->cost)) < 0)
        return ocra_err_set(err, EINVAL, "cost: not a decimal (up to 6 digits . 6 decimals)");
    return 0;
}

static int
conf_node(const struct ocra_sched_node_conf *c, struct ocra_sched_node *n, struct ocra_err *err)
{
    memset(n, 0, sizeof(*n));
    if (copy_word(n->name, sizeof(n->name), c->name, "name", err) < 0 ||
        copy_word(n->gpu_model, sizeof(n->gpu_model), c->gpu_model ? c->gpu_model : "", "gpu_model",
                  err) < 0 ||
        conf_numbers(c, n, err) < 0)
        return -1;
    if (c->n_labels > OCRA_SCHED_LABELS_MAX)
        return ocra_err_set(err, EINVAL, "labels: at most %d", OCRA_SCHED_LABELS_MAX);
    for (size_t i = 0; i < c->n_labels; i++) {
        if (!strchr(c->labels[i], '=') || c->labels[i][0] == '=')
            return ocra_err_set(err, EINVAL, "labels: %s is not key=value", c->labels[i]);
        if (copy_word(n->labels[i], OCRA_SCHED_LABEL_MAX, c->labels[i], "label", err) < 0)
            return -1;
    }
    n->n_labels = (int)c->n_labels;
    return 0;
}

int
ocra_sched_inventory_add_conf(struct ocra_sched_inventory *inv,
                              const struct ocra_sched_node_conf *confs, size_t n,
                              struct ocra_err *err)
{
    struct ocra_sched_node *nodes = ocra_xcalloc(n ? n : 1, sizeof(*nodes));
    int ret = -1;

    for (size_t i = 0; i < n; i++) {
        /* each node checked alone, then against the others, so the message can name it */
        if (conf_node(&confs[i], &nodes[i], err) < 0 || check_new(inv, nodes, i + 1, err) < 0) {
            ocra_err_wrap(err, "inventory.nodes[%zu]", i);
            goto out;
        }
    }
    ret = ocra_sched_inventory_add(inv, nodes, n, "config", err);
out:
    free(nodes);
    return ret;
}

/* ---- this machine ---------------------------------------------------------------------- */

/* MemTotal of /proc/meminfo in MiB; 0 when it cannot be read. */
static int64_t
meminfo_mib(void)
{
    struct ocra_err err = {0};
    char *text = NULL, *p;
    size_t len = 0;
    int64_t kib = 0;

    if (ocra_file_read("/proc/meminfo", 1 << 20, &text, &len, &err) < 0)
        return 0;
    p = strstr(text, "MemTotal:");
    if (p) {
        char num[32];
        size_t n;

        p += strlen("MemTotal:");
        p += strspn(p, " \t");
        n = strspn(p, "0123456789");
        if (n > 0 && n < sizeof(num)) {
            memcpy(num, p, n);
            num[n] = '\0';
            if (ocra_parse_i64(num, 0, OCRA_SCHED_QTY_MAX, &kib, NULL) < 0)
                kib = 0;
        }
    }
    free(text);
    return kib / 1024;
}

/* The discovered machine, every figure attributed ("proc" or "nvml"). */
static void
discover(struct ocra_sched_inv_node *in)
{
    struct ocra_sched_node *n = &in->node;
    struct ocra_sched_nvml g;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    memset(in, 0, sizeof(*in));
    if (gethostname(n->name, sizeof(n->name) - 1) < 0 || !n->name[0])
        (void)snprintf(n->name, sizeof(n->name), "localhost");
    n->cpu_milli = cpus > 0 ? (int64_t)cpus * 1000 : 0;
    n->ram_mib = meminfo_mib();
    attribute(in, "proc");
    ocra_sched_nvml_probe(NULL, &g);
    if (g.count > 0) {
        memcpy(n->gpu_model, g.model, sizeof(n->gpu_model));
        n->gpu_count = g.count;
        n->gpu_mem_mib = g.mem_mib;
        n->driver = g.driver;
        n->compute_cap = g.compute_cap;
        for (int f = OCRA_SCHED_FIG_GPUS; f <= OCRA_SCHED_FIG_CC; f++)
            if (f == OCRA_SCHED_FIG_GPUS || (f == OCRA_SCHED_FIG_GPU_MEM && g.mem_mib) ||
                (f == OCRA_SCHED_FIG_DRIVER && g.driver) ||
                (f == OCRA_SCHED_FIG_CC && g.compute_cap))
                set_source(in, (enum ocra_sched_fig)f, "nvml");
    }
    if (g.why[0])
        (void)snprintf(in->note, sizeof(in->note), "%d GPUs: %.170s", g.count, g.why);
}

/* Fills the figures cfg left unknown from the discovered d. */
static void
complete(struct ocra_sched_inv_node *cfg, const struct ocra_sched_inv_node *d)
{
    struct ocra_sched_node *n = &cfg->node;
    const struct ocra_sched_node *m = &d->node;

    if (!cfg->source[OCRA_SCHED_FIG_GPUS][0] && d->source[OCRA_SCHED_FIG_GPUS][0]) {
        memcpy(n->gpu_model, m->gpu_model, sizeof(n->gpu_model));
        n->gpu_count = m->gpu_count;
        memcpy(cfg->source[OCRA_SCHED_FIG_GPUS], d->source[OCRA_SCHED_FIG_GPUS],
               OCRA_SCHED_SOURCE_MAX);
    } else if (d->source[OCRA_SCHED_FIG_GPUS][0] && m->gpu_count != n->gpu_count) {
        (void)snprintf(cfg->note, sizeof(cfg->note), "NVML sees %d GPUs; the configuration says %d",
                       m->gpu_count, n->gpu_count);
    }
#define FILL(field, fig)                                                                           \
    if (!cfg->source[fig][0] && d->source[fig][0]) {                                               \
        n->field = m->field;                                                                       \
        memcpy(cfg->source[fig], d->source[fig], OCRA_SCHED_SOURCE_MAX);                           \
    }
    FILL(gpu_mem_mib, OCRA_SCHED_FIG_GPU_MEM)
    FILL(driver, OCRA_SCHED_FIG_DRIVER)
    FILL(compute_cap, OCRA_SCHED_FIG_CC)
    FILL(cpu_milli, OCRA_SCHED_FIG_CPU)
    FILL(ram_mib, OCRA_SCHED_FIG_RAM)
#undef FILL
    if (!cfg->note[0] && !cfg->source[OCRA_SCHED_FIG_GPUS][0])
        memcpy(cfg->note, d->note, sizeof(cfg->note));
}

void
ocra_sched_inventory_discover_local(struct ocra_sched_inventory *inv)
{
    struct ocra_sched_inv_node d, *cfg;

    discover(&d);
    cfg = inv_find(inv, d.node.name);
    if (cfg)
        complete(cfg, &d);
    else
        *inv_append(inv) = d;
}

int
ocra_sched_inventory_cluster(const struct ocra_sched_inventory *inv, int64_t headroom_mib,
                             struct ocra_sched_cluster **out, struct ocra_err *err)
{
    struct ocra_sched_cluster *c = ocra_sched_cluster_new();

    for (size_t i = 0; i < inv->n; i++) {
        struct ocra_sched_node n = inv->v[i].node;

        n.gpu_mem_mib = n.gpu_mem_mib > headroom_mib ? n.gpu_mem_mib - headroom_mib : 0;
        if (ocra_sched_cluster_add(c, &n, err) < 0) {
            ocra_sched_cluster_free(c);
            return -1;
        }
    }
    *out = c;
    return 0;
}
