/* SPDX-License-Identifier: Apache-2.0 */
/*
 * evm_scan.c: the EVM source, a log scanner that acts only on final blocks. Each poll reads
 * the head and the final line (head - confirmations, or the `finalized`/`safe` block), then
 * walks the final blocks after the journal's cursor in ranges: header of the range's first
 * block (its parentHash must be the cursor's hash), header of its last block, eth_getLogs of
 * the contract's ModelPublished topic over the range (split on provider limits), and the last
 * header again (it must not have changed meanwhile). The range's events, the new cursor and
 * the window of recent block hashes go into one journal transaction, so a restart resumes
 * after the last whole range: no gap, no duplicate (ids are also first-write-wins).
 *
 * Reorgs. Blocks above the final line are never acted upon, so a reorg there (seen as the
 * head's hash changing) only drops what was not yet final: it is reported, nothing else. A
 * parentHash that does not follow the cursor means a block already treated as final was
 * replaced: a finality violation. It is logged as an error and reported; the scanner finds the
 * newest block of the recent-block window still on the chain, marks the events journaled
 * above it orphaned (status rejected, with the reason; the daemon's stage machine stops each
 * at its next stage boundary), and rewinds the cursor there so the new chain's events are
 * journaled. Without such a block it stops with EPROTO.
 */
#include "chain/evm/evm_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "store/store.h"

#define WINDOW_MAX 256 /* recent block hashes kept in the journal */
#define ANCESTOR_TRIES 64

struct evm_source {
    struct ocra_source base; /* first: the interface the daemon drives */
    struct ocra_evm_source_opts o;
    struct ocra_evm_rpc *rpc, *own_rpc;
    char name[32];
    struct ocra_evm_scan_ctx ctx;
    struct ocra_evm_stats st;
    bool tag_fallback;
    struct ocra_evm_block tip; /* the head of the last poll, for reorgs above the final line */
    bool have_tip;
};

static struct evm_source *
from_base(struct ocra_source *src)
{
    return (struct evm_source *)(void *)src;
}

/* ---- the recent-block window ----------------------------------------------------------- */

static json_t *
window_load(struct evm_source *s, struct ocra_err *err)
{
    char *text = NULL;
    json_t *w;

    if (ocra_store_model_get(s->o.store, s->name, OCRA_EVM_RECENT_PATH, &text, NULL, err) < 0)
        return NULL;
    w = text ? ocra_json_parse(text, strlen(text), 0, NULL) : NULL;
    free(text);
    if (!json_is_array(w)) {
        json_decref(w);
        w = json_array();
    }
    return w;
}

/* Adds (number, hash) unless the newest entry has that number already; keeps the newest. */
static void
window_add(json_t *w, int64_t number, const char *hash)
{
    json_t *last = json_array_get(w, json_array_size(w) - 1);

    if (last && json_integer_value(json_array_get(last, 0)) >= number)
        return;
    json_array_append_new(w, json_pack("[I,s]", (json_int_t)number, hash));
    while (json_array_size(w) > WINDOW_MAX)
        json_array_remove(w, 0);
}

/* ---- journal ----------------------------------------------------------------------------- */

static int
commit_range(struct evm_source *s, struct ocra_evm_range *r, json_t *window,
             const struct ocra_store_cursor *cur, struct ocra_err *err)
{
    char *wtext = ocra_json_compact(window);
    int ret = -1;

    if (ocra_store_begin(s->o.store, err) < 0)
        goto out;
    for (size_t i = 0; i < r->n; i++) {
        const struct ocra_store_event *ev = &r->evs[i];

        if (ev->trusted && ocra_store_model_put(s->o.store, s->name, ev->path, ev->spec,
                                                ev->block_number, err) < 0)
            goto fail;
    }
    if (ocra_store_model_put(s->o.store, s->name, OCRA_EVM_RECENT_PATH, wtext, cur->block_number,
                             err) < 0 ||
        ocra_store_append(s->o.store, s->name, r->evs, r->n, cur, NULL, err) < 0)
        goto fail;
    ret = ocra_store_commit(s->o.store, err);
    goto out;
fail:
    ocra_store_rollback(s->o.store);
out:
    free(wtext);
    return ret;
}

/* ---- one range --------------------------------------------------------------------------- */

/* Logs of [from, to] with the header of `to` unchanged across the call. */
static json_t *
range_logs(struct evm_source *s, struct ocra_evm_block *last, struct ocra_err *err)
{
    struct ocra_evm_block again;
    unsigned requests = 0;
    json_t *logs;

    if (ocra_evm_get_block(s->rpc, NULL, s->ctx.to, last, err) < 0)
        return NULL;
    logs = ocra_evm_get_logs(s->rpc, s->ctx.from, s->ctx.to, s->ctx.contract,
                             OCRA_EVM_TOPIC_MODEL_PUBLISHED, &requests, err);
    if (!logs)
        return NULL;
    if (ocra_evm_get_block(s->rpc, NULL, s->ctx.to, &again, err) < 0 ||
        strcmp(again.hash, last->hash) != 0) {
        if (strcmp(again.hash, last->hash) != 0)
            ocra_err_set(err, EAGAIN, "block %lld changed during eth_getLogs",
                         (long long)s->ctx.to);
        json_decref(logs);
        return NULL;
    }
    (void)snprintf(s->ctx.to_hash, sizeof(s->ctx.to_hash), "%s", last->hash);
    return logs;
}

static int
deliver(struct evm_source *s, const struct ocra_evm_range *r)
{
    int stop = 0;

    for (size_t i = 0; i < r->n && !stop; i++) {
        const struct ocra_store_event *ev = &r->evs[i];

        ocra_log_debug("evm event=%s status=%s block=%lld", ev->id, ev->status,
                       (long long)ev->block_number);
        if (s->o.on_event && s->o.on_event(ev, s->o.arg) != 0)
            stop = 1;
    }
    return stop;
}

/* Scans [from, to] after cursor cur; returns 1 when the callback asked to stop. */
static int
scan_range(struct evm_source *s, struct ocra_store_cursor *cur, size_t *n_events,
           struct ocra_err *err)
{
    struct ocra_evm_range r = {0};
    struct ocra_evm_block last;
    struct ocra_store_cursor next = {.block_number = s->ctx.to};
    json_t *logs = NULL, *window = NULL, *log;
    size_t i;
    int ret = -1;

    if (!(logs = range_logs(s, &last, err)) || !(window = window_load(s, err)))
        goto out;
    json_array_foreach(logs, i, log)
    {
        if (ocra_evm_log_event(&s->ctx, &r, log, err) < 0)
            goto out;
        window_add(window, r.evs[r.n - 1].block_number, r.evs[r.n - 1].block_hash);
    }
    window_add(window, last.number, last.hash);
    (void)snprintf(next.block_hash, sizeof(next.block_hash), "%s", last.hash);
    if (commit_range(s, &r, window, &next, err) < 0)
        goto out;
    *cur = next;
    s->st.cursor = next.block_number;
    s->st.ranges++;
    s->st.logs += json_array_size(logs);
    s->st.events += r.n;
    if (n_events)
        *n_events += r.n;
    ret = deliver(s, &r);
out:
    if (ret < 0)
        ocra_err_wrap(err, "range [%lld, %lld]", (long long)s->ctx.from, (long long)s->ctx.to);
    ocra_evm_range_fini(&r);
    json_decref(logs);
    json_decref(window);
    return ret;
}

/* ---- reorgs ------------------------------------------------------------------------------ */

static void
report(struct evm_source *s, const struct ocra_evm_reorg *rg)
{
    s->st.reorgs++;
    if (rg->finality_violation) {
        s->st.finality_violations++;
        ocra_log_error("evm finality violation: source=%s block=%lld depth=%lld orphaned=%zu: a "
                       "block deeper than the final line was replaced",
                       s->name, (long long)rg->block, (long long)rg->depth, rg->n_orphaned);
    } else {
        ocra_log_info("evm reorg above the final line: source=%s block=%lld depth=%lld: "
                      "nothing was acted upon",
                      s->name, (long long)rg->block, (long long)rg->depth);
    }
    if (s->o.on_reorg)
        s->o.on_reorg(rg, s->o.arg);
}

/* Compares the new head with the last poll's: a changed hash is a reorg of unfinal blocks. */
static void
check_tip(struct evm_source *s, const struct ocra_evm_block *head)
{
    struct ocra_evm_block then;
    struct ocra_evm_reorg rg = {0};

    if (s->have_tip) {
        if (head->number < s->tip.number) {
            rg.block = head->number + 1;
            rg.depth = s->tip.number - head->number;
        } else if (ocra_evm_get_block(s->rpc, NULL, s->tip.number, &then, NULL) == 0 &&
                   strcmp(then.hash, s->tip.hash) != 0) {
            rg.block = s->tip.number;
            rg.depth = 1;
        }
        if (rg.depth)
            report(s, &rg);
    }
    s->tip = *head;
    s->have_tip = true;
}

struct orphan_scan {
    int64_t above;
    char **ids;
    size_t n;
};

static int
collect_orphan(const struct ocra_store_event *ev, void *arg)
{
    struct orphan_scan *o = arg;

    if (ev->block_number <= o->above)
        return 1; /* newest first: everything further is older */
    /* accepted or rejected by the watcher: no event of a replaced block is on the chain */
    o->ids = ocra_xrealloc(o->ids, (o->n + 1) * sizeof(*o->ids));
    o->ids[o->n++] = ocra_xstrdup(ev->id);
    return 0;
}

/* The newest window entry at or below `below` still on the chain; -1 when none is. */
static int
find_ancestor(struct evm_source *s, const json_t *window, int64_t below,
              struct ocra_store_cursor *anc, struct ocra_err *err)
{
    int tries = 0;

    for (size_t i = json_array_size(window); i-- > 0 && tries < ANCESTOR_TRIES;) {
        const json_t *e = json_array_get(window, i);
        int64_t n = json_integer_value(json_array_get(e, 0));
        const char *h = json_string_value(json_array_get(e, 1));
        struct ocra_evm_block b;

        if (n > below || !h)
            continue;
        tries++;
        if (ocra_evm_get_block(s->rpc, NULL, n, &b, err) < 0)
            return -1;
        if (strcasecmp(b.hash, h) == 0) {
            anc->block_number = n;
            (void)snprintf(anc->block_hash, sizeof(anc->block_hash), "%s", b.hash);
            return 0;
        }
    }
    return ocra_err_set(err, EPROTO, "no block of the last %d journaled is still on the chain",
                        tries);
}

/* Trims the window to entries at or below n. */
static void
window_trim(json_t *w, int64_t n)
{
    while (json_array_size(w) &&
           json_integer_value(json_array_get(json_array_get(w, json_array_size(w) - 1), 0)) > n)
        json_array_remove(w, json_array_size(w) - 1);
}

static int
rewind_to(struct evm_source *s, const struct ocra_store_cursor *anc, json_t *window,
          struct orphan_scan *os, struct ocra_err *err)
{
    char *wtext;
    int rc;

    window_trim(window, anc->block_number);
    wtext = ocra_json_compact(window);
    rc = ocra_store_begin(s->o.store, err);
    for (size_t i = 0; i < os->n && rc == 0; i++)
        rc = ocra_store_event_orphan(s->o.store, os->ids[i],
                                     "orphaned: its block was replaced by a reorg deeper than "
                                     "the confirmation depth (finality violation)",
                                     err);
    if (rc == 0)
        rc = ocra_store_model_put(s->o.store, s->name, OCRA_EVM_RECENT_PATH, wtext,
                                  anc->block_number, err);
    if (rc == 0)
        rc = ocra_store_append(s->o.store, s->name, NULL, 0, anc, NULL, err);
    if (rc == 0)
        rc = ocra_store_commit(s->o.store, err);
    else
        ocra_store_rollback(s->o.store);
    free(wtext);
    return rc;
}

/* The block after the cursor does not descend from it: handle the finality violation. */
static int
finality_violation(struct evm_source *s, struct ocra_store_cursor *cur, struct ocra_err *err)
{
    struct orphan_scan os = {0};
    struct ocra_store_event_filter f = {.source = s->name, .newest_first = true};
    struct ocra_store_cursor anc = {0};
    struct ocra_evm_reorg rg = {.finality_violation = true};
    json_t *window = window_load(s, err);
    int ret = -1;

    if (!window || find_ancestor(s, window, cur->block_number, &anc, err) < 0)
        goto out;
    os.above = anc.block_number;
    if (ocra_store_event_list(s->o.store, &f, collect_orphan, &os, err) < 0 ||
        rewind_to(s, &anc, window, &os, err) < 0)
        goto out;
    rg.block = anc.block_number + 1;
    rg.depth = cur->block_number - anc.block_number;
    rg.n_orphaned = os.n;
    report(s, &rg);
    *cur = anc;
    s->st.cursor = anc.block_number;
    ret = 0;
out:
    if (ret < 0) {
        s->st.finality_violations++;
        ocra_log_error("evm finality violation: source=%s block=%lld: %s", s->name,
                       (long long)cur->block_number + 1, err ? err->msg : "");
        ocra_err_wrap(err, "finality violation after block %lld", (long long)cur->block_number);
    }
    for (size_t i = 0; i < os.n; i++)
        free(os.ids[i]);
    free(os.ids);
    json_decref(window);
    return ret;
}

/* ---- polling ----------------------------------------------------------------------------- */

/* The last final block, per the configured finality. */
static int
final_line(struct evm_source *s, int64_t *final, struct ocra_err *err)
{
    struct ocra_evm_block head, tagged;
    const char *tag = s->o.finality == OCRA_EVM_FINALITY_FINALIZED ? "finalized"
                      : s->o.finality == OCRA_EVM_FINALITY_SAFE    ? "safe"
                                                                   : NULL;
    struct ocra_err terr = {0};

    if (ocra_evm_get_block(s->rpc, "latest", 0, &head, err) < 0)
        return -1;
    check_tip(s, &head);
    s->st.head = head.number;
    *final = head.number - s->o.confirmations;
    if (tag && !s->tag_fallback) {
        if (ocra_evm_get_block(s->rpc, tag, 0, &tagged, &terr) == 0) {
            *final = tagged.number;
        } else if (terr.code == ENOENT || terr.code == EPROTO || terr.code == E2BIG) {
            s->tag_fallback = true;
            ocra_log_warn("evm source=%s: the node has no `%s` block (%s); using %lld "
                          "confirmations",
                          s->name, tag, terr.msg, (long long)s->o.confirmations);
        } else {
            return ocra_err_copy(err, &terr);
        }
    }
    if (s->o.to_block >= 0 && *final > s->o.to_block)
        *final = s->o.to_block;
    return 0;
}

/* Checks that block `from` descends from the cursor (its parentHash). 1: it does not. */
static int
check_parent(struct evm_source *s, const struct ocra_store_cursor *cur, struct ocra_err *err)
{
    struct ocra_evm_block b;

    if (!cur->block_hash[0])
        return 0;
    if (ocra_evm_get_block(s->rpc, NULL, cur->block_number + 1, &b, err) < 0)
        return -1;
    return strcasecmp(b.parent, cur->block_hash) != 0 ? 1 : 0;
}

/* Scans the final blocks from next on; 1 when the callback asked to stop. */
static int
scan_to(struct evm_source *s, struct ocra_store_cursor *cur, bool have, int64_t next, int64_t final,
        size_t *n_events, struct ocra_err *err)
{
    int rc;

    while (next <= final) {
        if (have && (rc = check_parent(s, cur, err)) != 0) {
            if (rc < 0 || finality_violation(s, cur, err) < 0)
                return -1;
            next = cur->block_number + 1;
            continue;
        }
        s->ctx.from = next;
        s->ctx.to = final - next >= s->o.batch_blocks ? next + s->o.batch_blocks - 1 : final;
        if ((rc = scan_range(s, cur, n_events, err)) != 0)
            return rc;
        have = true;
        next = cur->block_number + 1;
    }
    return 0;
}

static int
evm_poll(struct ocra_source *src, size_t *n_events, bool *caught_up, struct ocra_err *err)
{
    struct evm_source *s = from_base(src);
    struct ocra_store_cursor cur = {0};
    int64_t final = 0, next;
    bool have = false;
    int rc;

    if (caught_up)
        *caught_up = false;
    if (ocra_store_cursor_get(s->o.store, s->name, &cur, &have, err) < 0 ||
        final_line(s, &final, err) < 0)
        return -1;
    if (have)
        s->st.cursor = cur.block_number;
    next = have ? cur.block_number + 1 : s->o.from_block >= 0 ? s->o.from_block : final;
    if (next < 0)
        next = 0; /* a chain still shorter than the confirmation depth */
    rc = scan_to(s, &cur, have, next, final, n_events, err);
    s->st.requests = ocra_evm_rpc_requests(s->rpc);
    if (rc < 0)
        return -1;
    if (caught_up && rc == 0)
        *caught_up = true;
    return 0;
}

static int
evm_wait(struct ocra_source *src, long ms)
{
    struct evm_source *s = from_base(src);
    long t = ms < s->o.poll_ms ? ms : s->o.poll_ms;
    struct timespec ts = {t / 1000, (t % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
    return 0;
}

static void
evm_free(struct ocra_source *src)
{
    struct evm_source *s = src ? from_base(src) : NULL;

    if (!s)
        return;
    ocra_evm_rpc_free(s->own_rpc);
    free(s);
}

void
ocra_evm_source_stats(const struct ocra_source *src, struct ocra_evm_stats *out)
{
    const struct evm_source *s = (const struct evm_source *)(const void *)src;

    *out = s->st;
    out->requests = ocra_evm_rpc_requests(s->rpc);
}

/* ---- construction ------------------------------------------------------------------------ */

static int
check_opts(const struct ocra_evm_source_opts *o, struct ocra_err *err)
{
    if (!o->store)
        return ocra_err_set(err, EINVAL, "evm source: no journal");
    if (!o->contract || !ocra_chain_address_valid(o->contract))
        return ocra_err_set(err, EINVAL, "evm source: contract \"%.60s\" is not 0x + 40 hex",
                            o->contract ? o->contract : "");
    for (size_t i = 0; i < o->n_allow; i++)
        if (!ocra_chain_address_valid(o->allow[i]))
            return ocra_err_set(err, EINVAL,
                                "evm source: allowlist entry \"%.60s\" is not 0x + "
                                "40 hex",
                                o->allow[i]);
    if (o->batch_blocks < 0 || o->chain_id < 0)
        return ocra_err_set(err, EINVAL, "evm source: negative batch_blocks or chain_id");
    return 0;
}

static int
connect_chain(struct evm_source *s, struct ocra_err *err)
{
    struct ocra_evm_rpc_opts ro = {.urls = s->o.rpc_urls, .n_urls = s->o.n_rpc_urls, .retries = 3};
    int64_t id;

    s->rpc = s->o.rpc;
    if (!s->rpc && !(s->rpc = s->own_rpc = ocra_evm_rpc_new(&ro, err)))
        return -1;
    if (ocra_evm_chain_id(s->rpc, &id, err) < 0)
        return ocra_err_wrap(err, "evm source");
    if (s->o.chain_id && s->o.chain_id != id)
        return ocra_err_set(err, EINVAL, "evm source: the node's chain id is %lld, not %lld",
                            (long long)id, (long long)s->o.chain_id);
    s->st.chain_id = id;
    return 0;
}

struct ocra_source *
ocra_evm_source_new(const struct ocra_evm_source_opts *opts, struct ocra_err *err)
{
    struct evm_source *s;
    uint8_t addr[20];

    if (check_opts(opts, err) < 0)
        return NULL;
    s = ocra_xcalloc(1, sizeof(*s));
    s->o = *opts;
    s->o.confirmations = opts->confirmations < 0 ? 12 : opts->confirmations;
    s->o.batch_blocks = opts->batch_blocks > 0 ? opts->batch_blocks : 2000;
    s->o.poll_ms = opts->poll_ms > 0 ? opts->poll_ms : 2000;
    s->st.cursor = -1;
    if (connect_chain(s, err) < 0) {
        evm_free(&s->base);
        return NULL;
    }
    (void)snprintf(s->name, sizeof(s->name), "evm:%lld", (long long)s->st.chain_id);
    (void)ocra_hex_decode(opts->contract, addr, sizeof(addr), NULL);
    ocra_chain_address_format(addr, s->ctx.contract);
    s->ctx.source = s->name;
    s->ctx.allow = opts->allow;
    s->ctx.n_allow = opts->n_allow;
    s->base =
        (struct ocra_source){.name = s->name, .poll = evm_poll, .wait = evm_wait, .free = evm_free};
    return &s->base;
}
