/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ain_source.c: AIN as a struct ocra_source: the block scanner does the work, the event
 * WebSocket only shortens the wait between polls.
 */
#include "chain/ain/ain.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct ain_source {
    struct ocra_source base; /* first: the interface pointer is the object */
    char name[32];
    struct ocra_ain_rpc *rpc;
    struct ocra_ain_scanner *scanner;
    struct ocra_ain_ws *ws;
};

static int
source_poll(struct ocra_source *src, size_t *n_events, bool *caught_up, struct ocra_err *err)
{
    return ocra_ain_scanner_poll(((struct ain_source *)src)->scanner, n_events, caught_up, err);
}

unsigned long
ocra_ain_source_finality_violations(const struct ocra_source *src)
{
    return ocra_ain_scanner_finality_violations(((const struct ain_source *)src)->scanner);
}

static int
source_wait(struct ocra_source *src, long ms)
{
    struct ain_source *s = (struct ain_source *)src;
    struct timespec ts = {(time_t)(ms / 1000), (ms % 1000) * 1000000L};

    if (s->ws)
        return ocra_ain_ws_wait(s->ws, ms, NULL);
    nanosleep(&ts, NULL); /* a signal ends it early; the caller checks its flag */
    return 0;
}

static void
source_free(struct ocra_source *src)
{
    struct ain_source *s = (struct ain_source *)src;

    if (!s)
        return;
    ocra_ain_ws_free(s->ws);
    ocra_ain_scanner_free(s->scanner);
    ocra_ain_rpc_free(s->rpc);
    free(s);
}

static struct ocra_ain_ws *
open_ws(const struct ocra_ain_source_opts *o, struct ocra_err *err)
{
    const char **patterns = ocra_xcalloc(o->n_watch + 1, sizeof(*patterns));
    struct ocra_ain_ws_opts wo = {.url = o->ws_url, .patterns = patterns, .n_patterns = o->n_watch};
    struct ocra_ain_ws *ws;

    for (size_t i = 0; i < o->n_watch; i++)
        patterns[i] = o->watch[i].pattern;
    ws = ocra_ain_ws_new(&wo, err);
    free(patterns);
    return ws;
}

struct ocra_source *
ocra_ain_source_new(const struct ocra_ain_source_opts *o, struct ocra_err *err)
{
    struct ain_source *s = ocra_xcalloc(1, sizeof(*s));
    struct ocra_ain_rpc_opts ro = {
        .url = o->rpc_url, .retries = o->retries, .rate_limit = o->rate_limit};
    struct ocra_ain_scan_opts so = {.store = o->store,
                                    .chain_id = o->chain_id,
                                    .watch = o->watch,
                                    .n_watch = o->n_watch,
                                    .from_block = o->from_block,
                                    .on_event = o->on_event,
                                    .arg = o->arg};

    (void)snprintf(s->name, sizeof(s->name), "ain:%lld", (long long)o->chain_id);
    s->base = (struct ocra_source){s->name, source_poll, source_wait, source_free};
    s->rpc = ocra_ain_rpc_new(&ro);
    so.rpc = s->rpc;
    s->scanner = ocra_ain_scanner_new(&so, err);
    if (!s->scanner || (o->ws_url && !(s->ws = open_ws(o, err)))) {
        source_free(&s->base);
        return NULL;
    }
    return &s->base;
}
