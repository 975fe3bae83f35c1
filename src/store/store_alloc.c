/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_alloc.c: the allocations table (migration 3 -> 4): one row per placement of an event's
 * workload (per replica), with the node, the device indices as a JSON array, the shares and
 * quantities taken, and its state. A partial unique index keeps at most one held row per
 * (event, replica), so a second insert for the same key fails instead of double-booking.
 */
#include "store/store_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALLOC_COLUMNS                                                                              \
    "SELECT event_id, replica, node, devices, gpu_milli, gpu_mem_mib, cpu_milli, ram_mib, state,"  \
    " created_ms, coalesce(released_ms, 0) FROM allocations"

static const char sql_held[] =
    ALLOC_COLUMNS " WHERE event_id = ?1 AND replica = ?2 AND state = 'held'";
static const char sql_insert[] =
    "INSERT INTO allocations (event_id, replica, node, devices, gpu_milli, gpu_mem_mib,"
    " cpu_milli, ram_mib, state, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'held', ?9)";
static const char sql_release[] =
    "UPDATE allocations SET state = 'released', released_ms = ?3"
    " WHERE event_id = ?1 AND (?2 < 0 OR replica = ?2) AND state = 'held'";
/* One text per listing, so that each uses its index (a "?1 IS NULL OR" would defeat them). */
static const char sql_list_all[] = ALLOC_COLUMNS " ORDER BY id";
static const char sql_list_held[] = ALLOC_COLUMNS " WHERE state = 'held' ORDER BY id";
static const char sql_list_event[] = ALLOC_COLUMNS " WHERE event_id = ?1 ORDER BY id";
static const char sql_list_event_held[] =
    ALLOC_COLUMNS " WHERE event_id = ?1 AND state = 'held' ORDER BY id";

/* "[0,3]" into a->devs; EPROTO on anything but an array of small non-negative integers. */
static int
devs_parse(const char *text, struct ocra_store_alloc *a, struct ocra_err *err)
{
    json_t *j = ocra_json_parse(text, strlen(text), 0, err), *v;
    size_t i;
    int ret = -1;

    if (!j)
        return ocra_err_wrap(err, "allocation devices");
    if (!json_is_array(j) || json_array_size(j) > OCRA_STORE_ALLOC_MAX_DEVS) {
        ocra_err_set(err, EPROTO, "allocation devices: not an array of at most %d",
                     OCRA_STORE_ALLOC_MAX_DEVS);
        goto out;
    }
    json_array_foreach(j, i, v)
    {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 255) {
            ocra_err_set(err, EPROTO, "allocation devices: not a device index");
            goto out;
        }
        a->devs[i] = (int)json_integer_value(v);
    }
    a->n_devs = (int)json_array_size(j);
    ret = 0;
out:
    json_decref(j);
    return ret;
}

/* Reads the current row of s (the columns of sql_held) into *a. */
static int
row_read(sqlite3_stmt *s, struct ocra_store_alloc *a, struct ocra_err *err)
{
    const char *id = (const char *)sqlite3_column_text(s, 0);
    const char *node = (const char *)sqlite3_column_text(s, 2);
    const char *devs = (const char *)sqlite3_column_text(s, 3);
    const char *state = (const char *)sqlite3_column_text(s, 8);

    memset(a, 0, sizeof(*a));
    if (!id || !node || !devs || !state || strlen(id) >= sizeof(a->event_id) ||
        strlen(node) >= sizeof(a->node))
        return ocra_err_set(err, EPROTO, "allocation: malformed row");
    memcpy(a->event_id, id, strlen(id) + 1);
    memcpy(a->node, node, strlen(node) + 1);
    a->replica = sqlite3_column_int(s, 1);
    a->gpu_milli = sqlite3_column_int(s, 4);
    a->gpu_mem_mib = sqlite3_column_int64(s, 5);
    a->cpu_milli = sqlite3_column_int64(s, 6);
    a->ram_mib = sqlite3_column_int64(s, 7);
    a->held = strcmp(state, "held") == 0;
    a->created_ms = sqlite3_column_int64(s, 9);
    a->released_ms = sqlite3_column_int64(s, 10);
    return devs_parse(devs, a, err);
}

int
ocra_store_alloc_held(struct ocra_store *st, const char *event_id, int replica,
                      struct ocra_store_alloc *out, bool *found, struct ocra_err *err)
{
    sqlite3_stmt *s = ocra_store_stmt_sql(st, sql_held, err);
    int rc = 0, ret = 0;

    if (!s)
        return -1;
    rc |= sqlite3_bind_text(s, 1, event_id, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_int(s, 2, replica);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    *found = false;
    if (rc == SQLITE_ROW) {
        ret = row_read(s, out, err);
        *found = ret == 0;
    } else if (rc != SQLITE_DONE) {
        ret = ocra_store_sqlerr(st, rc, err, "allocation");
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return ret;
}

/* a's devices as a JSON array; caller frees. */
static char *
devs_json(const struct ocra_store_alloc *a)
{
    struct ocra_buf b;

    ocra_buf_init(&b);
    ocra_buf_putc(&b, '[');
    for (int i = 0; i < a->n_devs; i++)
        ocra_buf_printf(&b, "%s%d", i ? "," : "", a->devs[i]);
    ocra_buf_putc(&b, ']');
    return ocra_buf_take(&b);
}

int
ocra_store_alloc_insert(struct ocra_store *st, const struct ocra_store_alloc *a,
                        struct ocra_err *err)
{
    sqlite3_stmt *s;
    char *devs;
    int rc = 0, ret;

    if (a->n_devs < 0 || a->n_devs > OCRA_STORE_ALLOC_MAX_DEVS ||
        !memchr(a->event_id, '\0', sizeof(a->event_id)) || !memchr(a->node, '\0', sizeof(a->node)))
        return ocra_err_set(err, EINVAL, "allocation: malformed");
    s = ocra_store_stmt_sql(st, sql_insert, err);
    if (!s)
        return -1;
    devs = devs_json(a);
    rc |= sqlite3_bind_text(s, 1, a->event_id, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_int(s, 2, a->replica);
    rc |= sqlite3_bind_text(s, 3, a->node, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 4, devs, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_int(s, 5, a->gpu_milli);
    rc |= sqlite3_bind_int64(s, 6, a->gpu_mem_mib);
    rc |= sqlite3_bind_int64(s, 7, a->cpu_milli);
    rc |= sqlite3_bind_int64(s, 8, a->ram_mib);
    rc |= sqlite3_bind_int64(s, 9, ocra_time_wall_ms());
    ret = ocra_store_exec_stmt(st, s, rc, err, "allocation");
    free(devs);
    if (ret < 0 && sqlite3_extended_errcode(st->db) == SQLITE_CONSTRAINT_UNIQUE)
        return ocra_err_set(err, EEXIST, "allocation: %s replica %d already holds one", a->event_id,
                            a->replica);
    return ret;
}

int
ocra_store_alloc_release(struct ocra_store *st, const char *event_id, int replica, size_t *n,
                         struct ocra_err *err)
{
    sqlite3_stmt *s = ocra_store_stmt_sql(st, sql_release, err);
    int rc = 0;

    if (!s)
        return -1;
    rc |= sqlite3_bind_text(s, 1, event_id, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_int(s, 2, replica);
    rc |= sqlite3_bind_int64(s, 3, ocra_time_wall_ms());
    if (ocra_store_exec_stmt(st, s, rc, err, "release") < 0)
        return -1;
    if (n)
        *n = (size_t)sqlite3_changes(st->db);
    return 0;
}

int
ocra_store_alloc_list(struct ocra_store *st, const char *event_id, bool held_only,
                      ocra_store_alloc_fn *fn, void *arg, struct ocra_err *err)
{
    const char *sql = event_id ? (held_only ? sql_list_event_held : sql_list_event)
                               : (held_only ? sql_list_held : sql_list_all);
    sqlite3_stmt *s = ocra_store_stmt_sql(st, sql, err);
    struct ocra_store_alloc a;
    int rc = 0, ret = 0;

    if (!s)
        return -1;
    if (event_id)
        rc = sqlite3_bind_text(s, 1, event_id, -1, SQLITE_STATIC);
    if (rc != SQLITE_OK) {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        return ocra_store_sqlerr(st, rc, err, "allocations");
    }
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (row_read(s, &a, err) < 0) {
            ret = -1;
            break;
        }
        if (fn(&a, arg) != 0)
            break;
    }
    if (ret == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
        ret = ocra_store_sqlerr(st, rc, err, "allocations");
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return ret;
}

static const char sql_changes[] =
    "SELECT node, created_ms AS t, json_array_length(devices) * gpu_milli FROM allocations"
    " WHERE released_ms IS NULL OR released_ms >= ?1"
    " UNION ALL "
    "SELECT node, released_ms AS t, -json_array_length(devices) * gpu_milli FROM allocations"
    " WHERE released_ms >= ?1"
    " ORDER BY 1, 2";

int
ocra_store_alloc_changes(struct ocra_store *st, int64_t since_ms, ocra_store_alloc_change_fn *fn,
                         void *arg, struct ocra_err *err)
{
    sqlite3_stmt *s = ocra_store_stmt_sql(st, sql_changes, err);
    int rc, ret = 0;

    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, since_ms);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        if (fn((const char *)sqlite3_column_text(s, 0), sqlite3_column_int64(s, 1),
               sqlite3_column_int64(s, 2), arg) != 0)
            break;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        ret = ocra_store_sqlerr(st, rc, err, "allocation history");
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return ret;
}
