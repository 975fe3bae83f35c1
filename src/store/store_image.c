/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_image.c: the images the build stage pushed, keyed by manifest digest, with the image
 * record (the container image specification of docs/SPEC.md plus the annotations, layers
 * and signature), the registry and repository, the tags and the toolchain build's log. A put
 * of a digest already stored updates it in place, so a retried build stage adds nothing twice.
 */
#include "store/store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define IMAGE_COLS                                                                                 \
    "digest, registry, repo, tags, event, spec_hash, toolchain_hash, signature, record, "          \
    "build_log, created_ms"

static const char sql_put[] =
    "INSERT INTO images (digest, registry, repo, tags, event, event_id, spec_hash,"
    " toolchain_hash, signature, record, build_log, created_ms)"
    " VALUES (?1, ?2, ?3, ?4, ?5, (SELECT id FROM events WHERE id = ?5), ?6, ?7, ?8, ?9, ?10,"
    " ?11)"
    " ON CONFLICT (digest) DO UPDATE SET registry = excluded.registry, repo = excluded.repo,"
    " tags = excluded.tags, event = excluded.event, event_id = excluded.event_id,"
    " spec_hash = excluded.spec_hash, toolchain_hash = excluded.toolchain_hash,"
    " signature = coalesce(excluded.signature, signature), record = excluded.record,"
    " build_log = coalesce(excluded.build_log, build_log)";
static const char sql_get[] = "SELECT " IMAGE_COLS " FROM images WHERE digest = ?1";
static const char sql_by_event[] = "SELECT " IMAGE_COLS " FROM images WHERE event = ?1"
                                   " ORDER BY created_ms DESC, rowid DESC LIMIT 1";
static const char sql_list[] = "SELECT " IMAGE_COLS " FROM images ORDER BY created_ms, rowid";

int
ocra_store_image_put(struct ocra_store *st, const struct ocra_store_image *im, struct ocra_err *err)
{
    sqlite3_stmt *s;
    int rc = 0;

    if (!im->digest || strncmp(im->digest, "sha256:", 7) != 0 || strlen(im->digest) != 71 ||
        !im->repo || !im->record)
        return ocra_err_set(err, EINVAL, "image: want a sha256 digest, a repository and a record");
    s = ocra_store_stmt_sql(st, sql_put, err);
    if (!s)
        return ocra_err_wrap(err, "image %s", im->digest);
    rc |= sqlite3_bind_text(s, 1, im->digest, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 2, im->registry ? im->registry : "", -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 3, im->repo, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 4, im->tags ? im->tags : "[]", -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 5, im->event ? im->event : "", -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 6, im->spec_hash, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 7, im->toolchain_hash, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 8, im->signature, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 9, im->record, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 10, im->build_log, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_int64(s, 11, im->created_ms ? im->created_ms : ocra_time_wall_ms());
    if (ocra_store_exec_stmt(st, s, rc, err, "insert") < 0)
        return ocra_err_wrap(err, "image %s", im->digest);
    return 0;
}

/* A deep copy of the current row in one allocation (strings after the struct). */
static struct ocra_store_image *
image_from_row(sqlite3_stmt *s)
{
    const char *col[10];
    size_t total = sizeof(struct ocra_store_image), len[10];
    struct ocra_store_image *im;
    const char **f[10];
    char *p;

    for (int i = 0; i < 10; i++) {
        col[i] = (const char *)sqlite3_column_text(s, i);
        len[i] = col[i] ? (size_t)sqlite3_column_bytes(s, i) + 1 : 0;
        total += len[i];
    }
    im = ocra_xcalloc(1, total);
    f[0] = &im->digest, f[1] = &im->registry, f[2] = &im->repo, f[3] = &im->tags;
    f[4] = &im->event, f[5] = &im->spec_hash, f[6] = &im->toolchain_hash;
    f[7] = &im->signature, f[8] = &im->record, f[9] = &im->build_log;
    p = (char *)(im + 1);
    for (int i = 0; i < 10; i++) {
        if (!col[i])
            continue;
        memcpy(p, col[i], len[i]);
        *f[i] = p;
        p += len[i];
    }
    im->created_ms = sqlite3_column_int64(s, 10);
    return im;
}

/* Runs a one-row query bound to key: *out the row or NULL. */
static int
image_one(struct ocra_store *st, const char *sql, const char *key, struct ocra_store_image **out,
          struct ocra_err *err)
{
    sqlite3_stmt *s = ocra_store_stmt_sql(st, sql, err);
    int rc;

    if (!s)
        return ocra_err_wrap(err, "image %s", key);
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *out = image_from_row(s);
    else if (rc == SQLITE_DONE)
        *out = NULL;
    else
        ocra_store_sqlerr(st, rc, err, "select");
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return ocra_err_wrap(err, "image %s", key);
    return 0;
}

int
ocra_store_image_get(struct ocra_store *st, const char *digest, struct ocra_store_image **out,
                     struct ocra_err *err)
{
    return image_one(st, sql_get, digest, out, err);
}

int
ocra_store_image_by_event(struct ocra_store *st, const char *event, struct ocra_store_image **out,
                          struct ocra_err *err)
{
    return image_one(st, sql_by_event, event, out, err);
}

int
ocra_store_image_list(struct ocra_store *st, ocra_store_image_fn *fn, void *arg,
                      struct ocra_err *err)
{
    sqlite3_stmt *s = ocra_store_stmt_sql(st, sql_list, err);
    struct ocra_store_image *im;
    int rc;

    if (!s)
        return ocra_err_wrap(err, "images");
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int stop;

        im = image_from_row(s);
        stop = fn(im, arg);
        free(im);
        if (stop) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_DONE)
        ocra_store_sqlerr(st, rc, err, "images");
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : -1;
}

void
ocra_store_image_free(struct ocra_store_image *im)
{
    free(im); /* the strings live in the same allocation */
}
