/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api: ocra's HTTP API and dashboard (libmicrohttpd, 127.0.0.1 by default). Read endpoints
 * serve the journal (events, their lineage, images), the inventory and the metrics; the one
 * mutating call (retry) and, when bound beyond loopback, every call need a bearer token read
 * from a file. A request whose Host is not a name of this server is refused (421), and
 * slow clients are limited and cut off (api.c). Errors are JSON:
 * {"error":{"code":"...","message":"..."}}. The dashboard's
 * assets are compiled into the binary. The in-image agent's socket is a separate API
 * (src/agentd).
 *
 *   GET  /healthz                     the process answers
 *   GET  /readyz                      chain, engine, registry reachable (hook), 200 or 503
 *   GET  /metrics                     Prometheus text format 0.0.4
 *   GET  /api/v1/events?status=&limit=&cursor=   newest first; next_cursor pages on
 *   GET  /api/v1/events/{id}          the event and its lineage
 *   GET  /api/v1/images               images built, newest first
 *   GET  /api/v1/nodes                nodes, capacity and allocation (hook)
 *   GET  /api/v1/queue                the scheduler queue: position, reason, estimated start
 *   POST /api/v1/events/{id}/retry    a failed or dead-lettered event back to work (hook)
 *   GET  /                            the dashboard
 */
#ifndef OCRA_API_H
#define OCRA_API_H

#include <stdbool.h>
#include <stdint.h>

#include "base/base.h"
#include "metrics/metrics.h"

struct ocra_store;

/*
 * What the server asks of its host (the daemon); any member may be NULL. Hooks run on the
 * server's thread with its journal connection st; they return new references.
 */
struct ocra_api_hooks {
    /* Fills checks with {"name": {"ok": bool, "error": "..."}}; true when all are ok. NULL:
     * ready. */
    bool (*ready)(void *arg, json_t *checks);
    /* An array of nodes, or NULL with err. NULL hook: 501. */
    json_t *(*nodes)(void *arg, struct ocra_store *st, struct ocra_err *err);
    /* The scheduler queue document (docs/API.md), or NULL with err. NULL hook: 501. */
    json_t *(*queue)(void *arg, struct ocra_store *st, struct ocra_err *err);
    /* Adds what the host knows of the event (stages, image, allocation, run, report) to ev,
     * the event object. NULL hook: the event alone. */
    int (*lineage)(void *arg, struct ocra_store *st, const char *event_id, json_t *ev,
                   struct ocra_err *err);
    /* An array of images, newest first, at most limit. NULL hook: 501. */
    json_t *(*images)(void *arg, struct ocra_store *st, int64_t limit, struct ocra_err *err);
    /* Puts the event back to work: ENOENT unknown, EBUSY when it is not failed. NULL: 501. */
    int (*retry)(void *arg, struct ocra_store *st, const char *event_id, struct ocra_err *err);
    /* The dashboard's link templates {"tx": "...", "address": ..., "digest": ...}, each a
     * string or null. NULL hook: all null. */
    json_t *(*links)(void *arg);
    void *arg;
};

struct ocra_api_opts {
    const char *listen;     /* "HOST:PORT" ("127.0.0.1:8080", "[::1]:8080"); port 0: any free */
    const char *token_file; /* the bearer token (first line); NULL or "": none */
    const char *journal;    /* the journal's path, opened by the server */
    struct ocra_metrics *metrics; /* NULL: ocra_metrics_default() */
    const struct ocra_api_hooks *hooks;
    /* Host header names accepted besides loopback names and the listen address: the DNS
     * names clients reach the API by (api.allowed_hosts); others get 421. */
    const char *const *allowed_hosts;
    size_t n_allowed_hosts;
    unsigned connections_per_client; /* from one client address; 0: 16 */
};

struct ocra_api;

/*
 * Starts serving on its own thread. EINVAL for a bad listen address, or a non-loopback one
 * without a token (every call would be open to the network); EACCES for a token file that
 * group or others may read; EADDRINUSE and friends from the bind. Caller stops and frees
 * with ocra_api_free().
 */
struct ocra_api *ocra_api_new(const struct ocra_api_opts *opts, struct ocra_err *err);
/*
 * What ocra_api_new would refuse before it binds (`ocra daemon --check`): the listen address,
 * api.allowed_hosts, the token file, a non-loopback address without a token. *loopback (may
 * be NULL) says whether the address is a loopback one. Binds nothing.
 */
int ocra_api_opts_check(const struct ocra_api_opts *opts, bool *loopback, struct ocra_err *err);
/* Stops serving (in-flight requests finish) and frees. NULL is a no-op. */
void ocra_api_free(struct ocra_api *api);
/* The port bound (useful with port 0). */
unsigned ocra_api_port(const struct ocra_api *api);

/*
 * The name in a Host header ("name", "name:port", "[v6]", "[v6]:port"): lowercase, without
 * brackets, port or a trailing dot, in out (size bytes). False, out unspecified, when the
 * header is not of that form or the name does not fit.
 */
bool ocra_api_host_name(const char *header, char *out, size_t size);

#endif
