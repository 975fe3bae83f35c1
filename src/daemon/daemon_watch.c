/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon_watch.c: the chain sources as the daemon and `ocra watch` run them. A source is
 * built from the configuration (with the command line's overrides for `ocra watch`) and
 * followed in a loop that polls until caught up, waits for news, and retries after a
 * failure in the next round. The daemon runs one watcher thread per configured chain (AIN
 * when ain.rpc and ain.watch are set, EVM when evm.rpc and evm.contract are), each with its
 * own journal connection; a watcher takes what it journaled into the pipeline at once and
 * wakes the workers. A node that cannot be reached at start is retried every poll interval; it
 * never stops the daemon.
 */
#include "daemon/daemon_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chain/chain.h"

/* The longest wait between polls after failures in a row (unless the poll interval is longer). */
#define FOLLOW_BACKOFF_MAX_MS 30000

struct ocra_ain_watch *
ocra_daemon_watch_list(const struct ocra_config *cfg, size_t *n)
{
    struct ocra_ain_watch *w = ocra_xcalloc(cfg->ain.n_watch + 1, sizeof(*w));

    for (size_t i = 0; i < cfg->ain.n_watch; i++)
        w[i] = (struct ocra_ain_watch){cfg->ain.watch[i].path,
                                       (const char *const *)cfg->ain.watch[i].allow,
                                       cfg->ain.watch[i].n_allow};
    *n = cfg->ain.n_watch;
    return w;
}

struct ocra_source *
ocra_daemon_source_new(const struct ocra_daemon_source_opts *o, const struct ocra_config *cfg,
                       struct ocra_evm_source_opts *evm_opts, struct ocra_err *err)
{
    struct ocra_ain_source_opts ao = {.rpc_url = o->rpcs[0],
                                      .ws_url = o->ws,
                                      .rate_limit = (int)cfg->ain.rate_limit,
                                      .retries = 4,
                                      .chain_id = o->chain_id,
                                      .watch = o->watch,
                                      .n_watch = o->n_watch,
                                      .from_block = o->from_block,
                                      .store = o->store,
                                      .on_event = o->on_event,
                                      .arg = o->arg};

    if (!o->evm)
        return ocra_ain_source_new(&ao, err);
    *evm_opts = (struct ocra_evm_source_opts){
        .rpc_urls = o->rpcs,
        .n_rpc_urls = o->n_rpcs,
        .store = o->store,
        .contract = o->contract,
        .chain_id = o->chain_id,
        .finality = (enum ocra_evm_finality)cfg->evm.finality,
        .confirmations = o->confirmations,
        .from_block = o->from_block,
        .to_block = -1,
        .batch_blocks = cfg->evm.batch_blocks,
        .allow = o->allow,
        .n_allow = o->n_allow,
        .poll_ms = (long)cfg->evm.poll_interval_ms,
        .on_event = o->on_event,
        .on_reorg = o->on_reorg,
        .arg = o->arg,
    };
    return ocra_evm_source_new(evm_opts, err);
}

/* Waits up to ms for the next poll, in slices, so that a stop is seen promptly; a push
 * channel (the AIN event WebSocket) ends the wait early. */
static void
wait_next(struct ocra_source *src, int64_t ms, const volatile sig_atomic_t *stop)
{
    uint64_t deadline = ocra_time_mono_ns() + (uint64_t)ms * 1000000u;

    while (!*stop) {
        uint64_t now = ocra_time_mono_ns();
        int64_t left = now >= deadline ? 0 : (int64_t)((deadline - now) / 1000000u);

        if (left <= 0 || src->wait(src, (long)(left < 250 ? left : 250)) > 0)
            return;
    }
}

/* Sleeps ms in slices, so that a stop is seen promptly; nothing but a stop ends it early (a
 * push channel's news cannot help a node that fails). */
static void
back_off(int64_t ms, const volatile sig_atomic_t *stop)
{
    uint64_t deadline = ocra_time_mono_ns() + (uint64_t)ms * 1000000u;

    for (uint64_t now; !*stop && (now = ocra_time_mono_ns()) < deadline;) {
        int64_t left = (int64_t)((deadline - now) / 1000000u);

        ocra_sleep_ms(left < 100 ? left + 1 : 100);
    }
}

int
ocra_daemon_follow(struct ocra_source *src, int64_t interval_ms, bool once,
                   const volatile sig_atomic_t *stop, ocra_daemon_round_fn *round, void *arg,
                   size_t *total, struct ocra_err *err)
{
    struct ocra_pacer pacer;
    int failures = 0;
    size_t sum = 0;

    /* after a failure: the poll interval, doubled per failure in a row up to FOLLOW_BACKOFF_MAX
     * (or the interval when that is longer), 50-100 % of it (jitter) */
    ocra_pacer_init(&pacer, 0, interval_ms > 0 ? (long)interval_ms : 1,
                    interval_ms > FOLLOW_BACKOFF_MAX_MS ? (long)interval_ms
                                                        : FOLLOW_BACKOFF_MAX_MS);
    while (!*stop) {
        struct ocra_err e = {0};
        bool caught_up = false;
        size_t n = 0;

        int rc = src->poll(src, &n, &caught_up, &e);

        if (round)
            round(src, arg);
        if (rc < 0) {
            long delay;

            sum += n;
            if (once) {
                if (total)
                    *total = sum;
                return ocra_err_copy(err, &e);
            }
            delay = ocra_pacer_backoff_ms(&pacer, failures < 30 ? ++failures : failures);
            ocra_log_error("watch: source=%s %s (retrying in %ld ms)", src->name, e.msg, delay);
            back_off(delay, stop);
            continue;
        }
        failures = 0;
        sum += n;
        if (once && caught_up)
            break;
        if (!caught_up && !*stop)
            continue;
        wait_next(src, interval_ms, stop);
    }
    if (total)
        *total = sum;
    return 0;
}

/* ---- the daemon's watcher threads -------------------------------------------------------- */

static int
on_event(const struct ocra_store_event *ev, void *arg)
{
    struct watcher *w = arg;
    struct ocra_err err = {0};
    size_t added = 0;

    ocra_log_info("event journaled event=%s status=%s", ev->id, ev->status);
    ocra_daemon_metrics_seen(ev);
    if (w->evm && w->src) {
        struct ocra_evm_stats es;

        ocra_evm_source_stats(w->src, &es);
        ocra_daemon_metrics_head_lag(w->src->name, es.head, es.cursor);
    }
    if (ocra_store_pipeline_intake(w->st, w->d->stages[0].name,
                                   w->d->stages[w->d->n_stages - 1].name, &added, &err) < 0) {
        ocra_log_warn("intake: %s (the supervisor takes it in later)", err.msg);
        return 0;
    }
    if (added) {
        pthread_mutex_lock(&w->d->mu);
        w->d->stats.intake += added;
        w->d->wake_gen++;
        pthread_cond_broadcast(&w->d->cv);
        pthread_mutex_unlock(&w->d->mu);
    }
    return 0;
}

/* Builds the source, retrying while the node cannot be reached (the EVM source asks it its
 * chain id); a configuration error (EINVAL) ends the watcher. */
static bool
watcher_source(struct watcher *w, const struct ocra_config *cfg, int64_t interval)
{
    while (!w->d->stopping) {
        struct ocra_err err = {0};

        if ((w->src = ocra_daemon_source_new(&w->so, cfg, &w->evm_opts, &err)))
            return true;
        if (err.code == EINVAL) {
            ocra_log_error("watch: %s (see `ocra daemon --check`); not watching", err.msg);
            return false;
        }
        ocra_log_error("watch: %s (retrying in %lld ms)", err.msg, (long long)interval);
        for (int64_t t = 0; t < interval && !w->d->stopping; t += 100)
            ocra_sleep_ms(100);
    }
    return false;
}

/* ---- reports a reorg took off the chain ------------------------------------------------ */

/* Blocks below the cursor within which a report may still be taken off the chain: EVM, the
 * confirmation depth (a report is checked until its block is that deep in the final chain);
 * AIN, whose blocks are final, as far as the scanner steps back over replaced blocks. */
#define AIN_REPORT_WINDOW 16

struct report_tx {
    char *event_id, *tx;
};

struct report_txs {
    struct report_tx *v;
    size_t n;
};

static int
collect_report(const char *event_id, const char *output, void *arg)
{
    struct report_txs *l = arg;
    json_t *o = ocra_json_parse(output, strlen(output), 0, NULL);
    const char *tx = ocra_json_str(o, "tx");

    if (tx) {
        l->v = ocra_xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
        l->v[l->n++] = (struct report_tx){ocra_xstrdup(event_id), ocra_xstrdup(tx)};
    }
    json_decref(o);
    return 0;
}

/* Whether the chain holds transaction tx (a receipt on EVM; a finalized transaction on AIN):
 * 1 it does, 0 it does not, -1 the node could not say. */
static int
tx_on_chain(struct watcher *w, const char *tx, struct ocra_err *err)
{
    const struct ocra_config *cfg = ocra_daemon_cfg(w->d);
    json_t *params, *v;
    int held;

    if (w->evm) {
        struct ocra_evm_rpc_opts ro = {.urls = (const char *const *)cfg->evm.rpc,
                                       .n_urls = cfg->evm.n_rpc};

        if (!w->evm_rpc && !(w->evm_rpc = ocra_evm_rpc_new(&ro, err)))
            return -1;
        params = json_pack("[s]", tx);
        v = ocra_evm_rpc_call(w->evm_rpc, "eth_getTransactionReceipt", params, NULL, err);
        json_decref(params);
        held = v && json_is_object(v);
    } else {
        struct ocra_ain_rpc_opts ro = {.url = cfg->ain.rpc};

        if (!w->ain_rpc)
            w->ain_rpc = ocra_ain_rpc_new(&ro);
        params = json_pack("{s:s}", "hash", tx);
        v = ocra_ain_rpc_call(w->ain_rpc, "ain_getTransactionByHash", params, NULL, err);
        json_decref(params);
        if (!v && err->code == ENOENT) /* the node knows no such transaction */
            return 0;
        held = v && json_is_true(json_object_get(v, "is_finalized"));
    }
    if (!v)
        return -1;
    json_decref(v);
    return held;
}

/* Reports whose transaction may still be taken off the chain (in a block at most a window
 * below the cursor): one that the chain no longer holds goes back to the report stage, which
 * finds no report on-chain and sends it again. */
static void
recheck_reports(struct watcher *w, struct ocra_source *src)
{
    struct ocra_store_cursor cur;
    struct report_txs l = {0};
    struct ocra_err err = {0};
    const char *report = w->d->stages[w->d->n_stages - 1].name;
    int64_t window =
        w->evm ? (w->so.confirmations > 0 ? w->so.confirmations : 1) : AIN_REPORT_WINDOW;
    bool have = false;

    if (ocra_store_cursor_get(w->st, src->name, &cur, &have, &err) < 0 || !have ||
        ocra_store_reports_list(w->st, src->name, report, cur.block_number - window, collect_report,
                                &l, &err) < 0) {
        if (err.code)
            ocra_log_warn("watch: source=%s reports: %s", src->name, err.msg);
        goto out;
    }
    for (size_t i = 0; i < l.n && !w->d->stopping; i++) {
        bool reopened = false;
        int held;

        memset(&err, 0, sizeof(err));
        if ((held = tx_on_chain(w, l.v[i].tx, &err)) < 0) {
            ocra_log_warn("watch: event=%s report tx %s: %s (checked again next round)",
                          l.v[i].event_id, l.v[i].tx, err.msg);
            continue;
        }
        if (held)
            continue;
        if (ocra_store_stage_reopen(w->st, l.v[i].event_id, report,
                                    "the report's transaction is no longer on the chain (a "
                                    "reorg): reporting again",
                                    &reopened, &err) < 0)
            ocra_log_warn("watch: event=%s: %s", l.v[i].event_id, err.msg);
        else if (reopened)
            ocra_log_warn("watch: event=%s report tx %s is no longer on the chain (a reorg): "
                          "reporting again",
                          l.v[i].event_id, l.v[i].tx);
    }
out:
    for (size_t i = 0; i < l.n; i++) {
        free(l.v[i].event_id);
        free(l.v[i].tx);
    }
    free(l.v);
}

/* After each round: the source's finality violations (/metrics) and the reorged reports. */
static void
watcher_round(struct ocra_source *src, void *arg)
{
    struct watcher *w = arg;
    unsigned long v;

    if (w->evm) {
        struct ocra_evm_stats es;

        ocra_evm_source_stats(src, &es);
        v = es.finality_violations;
    } else {
        v = ocra_ain_source_finality_violations(src);
    }
    if (v > w->violations)
        ocra_daemon_metrics_finality_violations(src->name, v - w->violations);
    w->violations = v;
    recheck_reports(w, src);
}

static void *
watcher_main(void *arg)
{
    struct watcher *w = arg;
    const struct ocra_config *cfg = ocra_daemon_cfg(w->d);
    int64_t interval = w->evm ? cfg->evm.poll_interval_ms : cfg->ain.poll_interval_ms;
    struct ocra_err err = {0};
    size_t total = 0;

    if (!watcher_source(w, cfg, interval))
        return NULL;
    ocra_log_info("watch: source=%s rpc=%s", w->src->name, w->rpcs[0]);
    (void)ocra_daemon_follow(w->src, interval, false, &w->d->stopping, watcher_round, w, &total,
                             &err);
    ocra_log_info("watch: stopped source=%s events=%zu", w->src->name, total);
    return NULL;
}

/* Fills w's source options from the configuration (AIN or EVM). */
static void
watcher_opts(struct watcher *w, const struct ocra_config *cfg)
{
    size_t n_watch = 0;

    w->so = (struct ocra_daemon_source_opts){.evm = w->evm,
                                             .rpcs = w->rpcs,
                                             .n_rpcs = 1,
                                             .store = w->st,
                                             .on_event = on_event,
                                             .arg = w};
    if (w->evm) {
        w->so.rpcs = (const char *const *)cfg->evm.rpc;
        w->so.n_rpcs = cfg->evm.n_rpc;
        w->rpcs[0] = cfg->evm.rpc[0];
        w->so.contract = cfg->evm.contract;
        w->so.allow = (const char *const *)cfg->evm.allow;
        w->so.n_allow = cfg->evm.n_allow;
        w->so.chain_id = cfg->evm.chain_id;
        w->so.from_block = cfg->evm.from_block;
        w->so.confirmations = cfg->evm.confirmations;
    } else {
        w->rpcs[0] = cfg->ain.rpc;
        w->so.ws = *cfg->ain.ws ? cfg->ain.ws : NULL;
        w->watch = ocra_daemon_watch_list(cfg, &n_watch);
        w->so.watch = w->watch;
        w->so.n_watch = n_watch;
        w->so.chain_id = cfg->ain.chain_id;
        w->so.from_block = cfg->ain.from_block;
    }
}

static int
watcher_start(struct ocra_daemon *d, struct watcher *w, const char *journal, struct ocra_err *err)
{
    const struct ocra_config *cfg = ocra_daemon_cfg(d);
    int rc;

    w->d = d;
    if (ocra_store_open(journal, &w->st, err) < 0)
        return -1;
    watcher_opts(w, cfg);
    rc = pthread_create(&w->thread, NULL, watcher_main, w);
    if (rc != 0)
        return ocra_err_set(err, rc, "watcher: pthread_create: %s", strerror(rc));
    w->started = true;
    return 0;
}

int
ocra_daemon_watchers_start(struct ocra_daemon *d, const char *journal, struct ocra_err *err)
{
    const struct ocra_config *cfg = ocra_daemon_cfg(d);
    bool ain = *cfg->ain.rpc && cfg->ain.n_watch > 0;
    bool evm = cfg->evm.n_rpc > 0 && *cfg->evm.contract;

    d->watchers = ocra_xcalloc(2, sizeof(*d->watchers));
    if (ain) {
        d->watchers[d->n_watchers].evm = false;
        if (watcher_start(d, &d->watchers[d->n_watchers++], journal, err) < 0)
            return -1;
    }
    if (evm) {
        d->watchers[d->n_watchers].evm = true;
        if (watcher_start(d, &d->watchers[d->n_watchers++], journal, err) < 0)
            return -1;
    }
    if (!ain && !evm)
        ocra_log_warn("daemon: no chain configured (ain.rpc + ain.watch, or evm.rpc + "
                      "evm.contract): working on journaled events only");
    return 0;
}

void
ocra_daemon_watchers_join(struct ocra_daemon *d)
{
    for (size_t i = 0; i < d->n_watchers; i++) {
        struct watcher *w = &d->watchers[i];

        if (w->started)
            pthread_join(w->thread, NULL);
        if (w->src)
            w->src->free(w->src);
        ocra_store_close(w->st);
        ocra_evm_rpc_free(w->evm_rpc);
        ocra_ain_rpc_free(w->ain_rpc);
        free(w->watch);
    }
    free(d->watchers);
    d->watchers = NULL;
    d->n_watchers = 0;
}
