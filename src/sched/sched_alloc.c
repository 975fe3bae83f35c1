/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sched_alloc.c: the allocator, placement made durable. The journal's allocations table is
 * the truth and the cluster's accounting a cache of it: at open every held allocation takes
 * its devices again, and each allocation is decided and recorded in one transaction, so an
 * event asked again (after a crash, a retry, a restart) gets the allocation it holds, and no
 * device is ever booked twice.
 */
#include "sched/sched_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

/* A held allocation that took no capacity at open: its release gives nothing back. */
struct orphan {
    char *event_id;
    int replica;
};

struct ocra_sched_allocator {
    struct ocra_store *st;
    struct ocra_sched_cluster *c;
    enum ocra_sched_policy policy;
    struct orphan *orphans;
    size_t n_orphans;
    char first_orphan[320];
};

/* The index of (event_id, replica) among the orphans; -1 when it is not one. */
static long
orphan_find(const struct ocra_sched_allocator *a, const char *event_id, int replica)
{
    for (size_t i = 0; i < a->n_orphans; i++)
        if (a->orphans[i].replica == replica && strcmp(a->orphans[i].event_id, event_id) == 0)
            return (long)i;
    return -1;
}

static void
orphan_drop(struct ocra_sched_allocator *a, size_t i)
{
    free(a->orphans[i].event_id);
    a->orphans[i] = a->orphans[--a->n_orphans];
}

/* The journal's row as a placement on the cluster; ENOENT when its node is not there. */
static int
from_row(const struct ocra_sched_cluster *c, const struct ocra_store_alloc *row,
         struct ocra_sched_alloc *out, struct ocra_err *err)
{
    int node = ocra_sched_cluster_find(c, row->node);

    if (node < 0)
        return ocra_err_set(err, ENOENT, "replica %d is held on node %s, not in the inventory",
                            row->replica, row->node);
    if (row->n_devs > OCRA_SCHED_MAX_GPUS)
        return ocra_err_set(err, EPROTO, "%s: more than %d devices", row->event_id,
                            OCRA_SCHED_MAX_GPUS);
    memset(out, 0, sizeof(*out));
    out->node = node;
    out->n_devs = row->n_devs;
    for (int i = 0; i < row->n_devs; i++) {
        if (row->devs[i] < 0 || row->devs[i] >= OCRA_SCHED_MAX_GPUS)
            return ocra_err_set(err, EPROTO, "%s: device %d", row->event_id, row->devs[i]);
        out->devs[i] = (uint8_t)row->devs[i];
    }
    out->gpu_milli = row->gpu_milli;
    out->gpu_mem_mib = row->gpu_mem_mib;
    out->cpu_milli = row->cpu_milli;
    out->ram_mib = row->ram_mib;
    return 0;
}

static int
to_row(const struct ocra_sched_cluster *c, const char *event_id, int replica,
       const struct ocra_sched_alloc *p, struct ocra_store_alloc *row, struct ocra_err *err)
{
    memset(row, 0, sizeof(*row));
    if (strlen(event_id) >= sizeof(row->event_id))
        return ocra_err_set(err, EINVAL, "event id longer than %zu bytes",
                            sizeof(row->event_id) - 1);
    memcpy(row->event_id, event_id, strlen(event_id) + 1);
    row->replica = replica;
    (void)snprintf(row->node, sizeof(row->node), "%s", ocra_sched_cluster_node(c, p->node)->name);
    row->n_devs = p->n_devs;
    for (int i = 0; i < p->n_devs; i++)
        row->devs[i] = p->devs[i];
    row->gpu_milli = p->gpu_milli;
    row->gpu_mem_mib = p->gpu_mem_mib;
    row->cpu_milli = p->cpu_milli;
    row->ram_mib = p->ram_mib;
    return 0;
}

/* At open: one held row takes its capacity again, or counts as an orphan. */
static int
reclaim(const struct ocra_store_alloc *row, void *arg)
{
    struct ocra_sched_allocator *a = arg;
    struct ocra_sched_alloc p;
    struct ocra_err err = {0};

    if (from_row(a->c, row, &p, &err) == 0 && ocra_sched_claim(a->c, &p, &err) == 0)
        return 0;
    if (a->n_orphans == 0)
        (void)snprintf(a->first_orphan, sizeof(a->first_orphan), "%.100s: %.200s", row->event_id,
                       err.msg);
    a->orphans = ocra_xrealloc(a->orphans, (a->n_orphans + 1) * sizeof(*a->orphans));
    a->orphans[a->n_orphans++] = (struct orphan){ocra_xstrdup(row->event_id), row->replica};
    return 0;
}

int
ocra_sched_allocator_open(struct ocra_store *st, const struct ocra_sched_inventory *inv,
                          enum ocra_sched_policy policy, int64_t headroom_mib,
                          struct ocra_sched_allocator **out, struct ocra_err *err)
{
    struct ocra_sched_allocator *a;

    if ((unsigned)policy >= OCRA_SCHED_N_POLICIES || headroom_mib < 0)
        return ocra_err_set(err, EINVAL, "allocator: bad policy or headroom");
    a = ocra_xcalloc(1, sizeof(*a));
    a->st = st;
    a->policy = policy;
    if (ocra_sched_inventory_cluster(inv, headroom_mib, &a->c, err) < 0 ||
        ocra_store_alloc_list(st, NULL, true, reclaim, a, err) < 0) {
        ocra_sched_allocator_free(a);
        return ocra_err_wrap(err, "allocator");
    }
    *out = a;
    return 0;
}

void
ocra_sched_allocator_free(struct ocra_sched_allocator *a)
{
    if (!a)
        return;
    ocra_sched_cluster_free(a->c);
    for (size_t i = 0; i < a->n_orphans; i++)
        free(a->orphans[i].event_id);
    free(a->orphans);
    free(a);
}

const struct ocra_sched_cluster *
ocra_sched_allocator_cluster(const struct ocra_sched_allocator *a)
{
    return a->c;
}

struct ocra_store *
sched_allocator_store(const struct ocra_sched_allocator *a)
{
    return a->st;
}

size_t
ocra_sched_allocator_orphans(const struct ocra_sched_allocator *a, const char **first)
{
    if (first)
        *first = a->first_orphan;
    return a->n_orphans;
}

/* Inside the transaction: the held one, or a new placement recorded. */
static int
allocate_tx(struct ocra_sched_allocator *a, const char *event_id, int replica,
            const struct ocra_sched_req *r, const struct ocra_sched_alloc *exact,
            struct ocra_sched_alloc *out, bool *existed, struct ocra_err *err)
{
    struct ocra_store_alloc row;
    struct ocra_sched_alloc p;
    bool found = false;

    if (ocra_store_alloc_held(a->st, event_id, replica, &row, &found, err) < 0)
        return -1;
    if (found) {
        if (orphan_find(a, event_id, replica) >= 0 && from_row(a->c, &row, out, err) == 0)
            return ocra_err_set(err, EBUSY,
                                "replica %d is held on node %s, but its devices were taken "
                                "again since (release it)",
                                replica, row.node);
        if (from_row(a->c, &row, out, err) < 0)
            return -1;
        *existed = true;
        return 0;
    }
    if (exact) {
        if (ocra_sched_claim(a->c, exact, err) < 0)
            return -1;
        p = *exact;
    } else if (ocra_sched_place(a->c, a->policy, r, &p, err) < 0) {
        return -1;
    }
    if (to_row(a->c, event_id, replica, &p, &row, err) < 0 ||
        ocra_store_alloc_insert(a->st, &row, err) < 0) {
        ocra_sched_release(a->c, &p);
        return -1;
    }
    *out = p;
    *existed = false;
    return 0;
}

static int
allocate(struct ocra_sched_allocator *a, const char *event_id, int replica,
         const struct ocra_sched_req *r, const struct ocra_sched_alloc *exact,
         struct ocra_sched_alloc *out, bool *existed, struct ocra_err *err)
{
    struct ocra_sched_alloc p;
    bool ex = false;

    if (replica < 0 || replica >= OCRA_SCHED_MAX_REPLICAS)
        return ocra_err_set(err, EINVAL, "replica %d (0..%d)", replica,
                            OCRA_SCHED_MAX_REPLICAS - 1);
    if (ocra_store_begin(a->st, err) < 0)
        return ocra_err_wrap(err, "allocate %s", event_id);
    if (allocate_tx(a, event_id, replica, r, exact, &p, &ex, err) < 0) {
        ocra_store_rollback(a->st);
        return ocra_err_wrap(err, "allocate %s", event_id);
    }
    if (ocra_store_commit(a->st, err) < 0) {
        if (!ex)
            ocra_sched_release(a->c, &p);
        return ocra_err_wrap(err, "allocate %s", event_id);
    }
    *out = p;
    if (existed)
        *existed = ex;
    return 0;
}

int
ocra_sched_allocate(struct ocra_sched_allocator *a, const char *event_id, int replica,
                    const struct ocra_sched_req *r, struct ocra_sched_alloc *out, bool *existed,
                    struct ocra_err *err)
{
    return allocate(a, event_id, replica, r, NULL, out, existed, err);
}

int
ocra_sched_allocate_exact(struct ocra_sched_allocator *a, const char *event_id, int replica,
                          const struct ocra_sched_alloc *want, struct ocra_sched_alloc *out,
                          bool *existed, struct ocra_err *err)
{
    return allocate(a, event_id, replica, NULL, want, out, existed, err);
}

/* What a release collects before it commits: the held rows of the event (and replica). */
struct held {
    int replica;
    struct ocra_store_alloc *rows;
    size_t n;
};

static int
collect(const struct ocra_store_alloc *row, void *arg)
{
    struct held *h = arg;

    if (h->replica >= 0 && row->replica != h->replica)
        return 0;
    h->rows = ocra_xrealloc(h->rows, (h->n + 1) * sizeof(*h->rows));
    h->rows[h->n++] = *row;
    return 0;
}

int
ocra_sched_allocator_release(struct ocra_sched_allocator *a, const char *event_id, int replica,
                             size_t *n, struct ocra_err *err)
{
    struct held h = {replica, NULL, 0};
    struct ocra_sched_alloc p;
    int ret = -1;

    if (ocra_store_begin(a->st, err) < 0)
        return ocra_err_wrap(err, "release %s", event_id);
    if (ocra_store_alloc_list(a->st, event_id, true, collect, &h, err) < 0 ||
        ocra_store_alloc_release(a->st, event_id, replica, NULL, err) < 0) {
        ocra_store_rollback(a->st);
        goto out;
    }
    if (ocra_store_commit(a->st, err) < 0)
        goto out;
    for (size_t i = 0; i < h.n; i++) {
        long o = orphan_find(a, h.rows[i].event_id, h.rows[i].replica);

        if (o >= 0) /* an orphan took nothing here */
            orphan_drop(a, (size_t)o);
        else if (from_row(a->c, &h.rows[i], &p, NULL) == 0)
            ocra_sched_release(a->c, &p);
    }
    if (n)
        *n = h.n;
    ret = 0;
out:
    free(h.rows);
    return ret < 0 ? ocra_err_wrap(err, "release %s", event_id) : 0;
}

/* Marks the held replica indices of the event. */
static int
mark(const struct ocra_store_alloc *row, void *arg)
{
    bool *held = arg;

    if (row->replica >= 0 && row->replica < OCRA_SCHED_MAX_REPLICAS)
        held[row->replica] = true;
    return 0;
}

int
ocra_sched_allocator_scale(struct ocra_sched_allocator *a, const char *event_id,
                           const struct ocra_sched_req *r, int want, int *have,
                           struct ocra_err *err)
{
    bool held[OCRA_SCHED_MAX_REPLICAS] = {false};
    struct ocra_sched_alloc p;
    int count = 0;

    if (want < 0 || want > OCRA_SCHED_MAX_REPLICAS)
        return ocra_err_set(err, EINVAL, "scale %s: %d replicas (0..%d)", event_id, want,
                            OCRA_SCHED_MAX_REPLICAS);
    if (ocra_store_alloc_list(a->st, event_id, true, mark, held, err) < 0)
        return ocra_err_wrap(err, "scale %s", event_id);
    for (int i = 0; i < OCRA_SCHED_MAX_REPLICAS; i++)
        count += held[i];
    for (int i = 0; count < want && i < OCRA_SCHED_MAX_REPLICAS; i++) {
        if (held[i])
            continue;
        if (ocra_sched_allocate(a, event_id, i, r, &p, NULL, err) < 0)
            break;
        held[i] = true;
        count++;
    }
    for (int i = OCRA_SCHED_MAX_REPLICAS - 1; count > want && i >= 0; i--) {
        if (!held[i])
            continue;
        if (ocra_sched_allocator_release(a, event_id, i, NULL, err) < 0)
            break;
        held[i] = false;
        count--;
    }
    *have = count;
    return count == want ? 0 : -1;
}
