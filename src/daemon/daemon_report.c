/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon_report.c: the report stage writes each event's outcome back on the chain it came
 * from, exactly once: it first looks at what the chain already holds and sends only when
 * the report is not there. AIN: a SET_VALUE of the report object at daemon.report_ain_path
 * (default /apps/<app>/ocra/runs/<shortid>), signed with ain.key_file; already there when
 * the value at the path names the event and the status. EVM: ModelRegistry.reportStatus(
 * sha256(event id), report JSON) signed with evm.key_file; already there when a
 * StatusReported log with that key from that reporter exists since the event's block. The
 * report is built only from journaled facts, so every attempt sends the same bytes, and holds
 * no null, empty list or empty object (AIN stores none). A transaction the AIN node refuses
 * with a permanent code (ocra_ain_code_transient) fails the stage with EINVAL: dead-lettered at
 * once, not sent again; each refusal is counted by code in ocra_chain_tx_refusals_total.
 */
#include "daemon/daemon_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "run/run.h"
#include "spec/spec.h"

/* Bytes of a reason on-chain: reasons read cause first (ocra_err_text), so the cut keeps the
 * cause; the journal keeps the whole text. */
#define REPORT_REASON_MAX 512

/* The operator's key signs every report of this process: one send at a time keeps its
 * nonces in order. */
static pthread_mutex_t send_mu = PTHREAD_MUTEX_INITIALIZER;

/* The reason an event ended as it did, from what the journal holds. */
static char *
report_reason(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job, const json_t *inputs)
{
    const char *key, *reason;
    json_t *out;
    char *newer = NULL, *r;
    bool current = true;

    if (!strcmp(job->claim->status, "superseded")) {
        if (ocra_store_event_current(ctx->st, job->event->id, &current, &newer, NULL) == 0 &&
            newer) {
            r = ocra_xasprintf("superseded by %s", newer);
            free(newer);
            return r;
        }
        return ocra_xstrdup("superseded by a newer version");
    }
    json_object_foreach((json_t *)(uintptr_t)inputs, key, out)
    {
        if (ocra_json_str(out, "verdict") && (reason = ocra_json_str(out, "reason")))
            return ocra_xstrdup(reason);
    }
    return job->event->reason ? ocra_xstrdup(job->event->reason) : NULL;
}

/* Copies member name of inputs[stage] into r when it holds something: AIN stores no null,
 * empty array or empty object (a CPU-only run's "gpus": [] is left out), and EVM reports
 * carry the same object. */
static void
take(json_t *r, const json_t *inputs, const char *stage, const char *name, const char *as)
{
    json_t *v = json_object_get(json_object_get(inputs, stage), name);

    if (!v || json_is_null(v) || (json_is_array(v) && json_array_size(v) == 0) ||
        (json_is_object(v) && json_object_size(v) == 0))
        return;
    json_object_set(r, as, v);
}

json_t *
ocra_daemon_report_value(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job,
                         const json_t *inputs)
{
    json_t *r = json_object();
    char *reason = report_reason(ctx, job, inputs);

    json_object_set_new(r, "event", json_string(job->event->id));
    json_object_set_new(r, "status", json_string(job->claim->status));
    if (job->claim->version)
        json_object_set_new(r, "modelVersion", json_string(job->claim->version));
    if (reason)
        json_object_set_new(r, "reason", json_string(ocra_str_cut(reason, REPORT_REASON_MAX)));
    free(reason);
    take(r, inputs, "push", "digest", "image");
    take(r, inputs, "sign", "digest", "image");
    take(r, inputs, "allocate", "node", "node");
    take(r, inputs, "allocate", "gpus", "gpus");
    take(r, inputs, "complete", "exitCode", "exitCode");
    take(r, inputs, "complete", "startedAt", "startedAt");
    take(r, inputs, "complete", "finishedAt", "finishedAt");
    return r;
}

static struct ocra_chain_key *
load_key(const char *path, const char *what, struct ocra_err *err)
{
    if (!*path) {
        ocra_err_set(err, EINVAL, "no %s configured: cannot sign the report", what);
        return NULL;
    }
    return ocra_chain_key_load(path, err);
}

/* ---- EVM --------------------------------------------------------------------------------- */

/* The ModelRegistry of an EVM event: its path is "<contract>/<name>". */
static char *
evm_contract(const struct ocra_store_event *ev, const struct ocra_config *cfg)
{
    const char *slash = ev->path ? strchr(ev->path, '/') : NULL;

    if (slash && slash - ev->path == OCRA_CHAIN_ADDR_LEN)
        return ocra_xstrndup(ev->path, OCRA_CHAIN_ADDR_LEN);
    return *cfg->evm.contract ? ocra_xstrdup(cfg->evm.contract) : NULL;
}

static bool
topic_is(const json_t *topics, size_t i, const char *hex40or64)
{
    const char *t = json_string_value(json_array_get(topics, i));
    size_t n = strlen(hex40or64);

    return t && strlen(t) == 66 && !strcasecmp(t + 66 - n, hex40or64);
}

/* Looks for our StatusReported log of key since the event's block; fills out when found. */
static int
evm_find(struct ocra_daemon_ctx *ctx, const char *contract, int64_t from, const char *key_hex,
         json_t *out, bool *found, struct ocra_err *err)
{
    const char *addr = ocra_chain_key_address(ctx->evm_key) + 2;
    json_t *logs, *log;
    int64_t head;
    size_t i;

    *found = false;
    if (ocra_evm_block_number(ctx->evm, &head, err) < 0)
        return -1;
    logs = ocra_evm_get_logs(ctx->evm, from < head ? from : head, head, contract,
                             OCRA_EVM_TOPIC_STATUS_REPORTED, NULL, err);
    if (!logs)
        return -1;
    json_array_foreach(logs, i, log)
    {
        const json_t *topics = json_object_get(log, "topics");

        if (topic_is(topics, 1, key_hex) && topic_is(topics, 2, addr)) {
            uint64_t block = 0;

            json_object_set(out, "tx", json_object_get(log, "transactionHash"));
            json_object_set(out, "blockHash", json_object_get(log, "blockHash"));
            /* the watcher checks the report's transaction while a reorg may still drop it */
            if (ocra_evm_quantity(json_object_get(log, "blockNumber"), &block, NULL) == 0)
                json_object_set_new(out, "block", json_integer((json_int_t)block));
            *found = true;
            break;
        }
    }
    json_decref(logs);
    return 0;
}

static int
evm_clients(struct ocra_daemon_ctx *ctx, struct ocra_err *err)
{
    const struct ocra_config *cfg = ctx->cfg;
    struct ocra_evm_rpc_opts ro = {
        .urls = (const char *const *)cfg->evm.rpc, .n_urls = cfg->evm.n_rpc, .retries = 2};

    if (!ctx->evm_key && !(ctx->evm_key = load_key(cfg->evm.key_file, "evm.key_file", err)))
        return -1;
    if (!ctx->evm && !(ctx->evm = ocra_evm_rpc_new(&ro, err)))
        return ocra_err_wrap(err, "evm.rpc");
    return 0;
}

/* How many transactions of the operator's account the node holds unmined: its pending nonce
 * minus its latest. */
static int
evm_in_flight(struct ocra_daemon_ctx *ctx, uint64_t *n, struct ocra_err *err)
{
    const char *addr = ocra_chain_key_address(ctx->evm_key);
    uint64_t count[2];
    static const char *const tags[2] = {"latest", "pending"};

    for (int i = 0; i < 2; i++) {
        json_t *params = json_pack("[s, s]", addr, tags[i]), *v;
        int rc;

        v = ocra_evm_rpc_call(ctx->evm, "eth_getTransactionCount", params, NULL, err);
        json_decref(params);
        if (!v)
            return -1;
        rc = ocra_evm_quantity(v, &count[i], err);
        json_decref(v);
        if (rc < 0)
            return ocra_err_wrap(err, "eth_getTransactionCount %s", tags[i]);
    }
    *n = count[1] > count[0] ? count[1] - count[0] : 0;
    return 0;
}

/*
 * An attempt that broadcast its report and then died (a crash, a timeout waiting for the
 * receipt) leaves the transaction in the node's pool, where the log check cannot see it yet.
 * Sending again then would make a second report. So while the operator's account has
 * transactions in flight, wait for them (up to daemon.report_wait_ms), and fail the attempt
 * (to be retried) when they are still there: the check runs once they are mined. A dropped
 * transaction frees its nonce, and the report is sent again, once.
 */
static int
evm_settle(struct ocra_daemon_ctx *ctx, struct ocra_err *err)
{
    uint64_t deadline = ocra_time_mono_ns() + (uint64_t)ctx->cfg->daemon.report_wait_ms * 1000000u;
    uint64_t n = 0;

    for (;;) {
        if (evm_in_flight(ctx, &n, err) < 0)
            return -1;
        if (n == 0)
            return 0;
        if (ocra_time_mono_ns() >= deadline)
            return ocra_err_set(err, EAGAIN,
                                "%llu transaction(s) of the reporter %s are not mined yet (an "
                                "earlier attempt's report?): not sending another before they are",
                                (unsigned long long)n, ocra_chain_key_address(ctx->evm_key));
        ocra_sleep_ms(200);
    }
}

static int
report_evm(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job, const char *text,
           json_t *out, struct ocra_err *err)
{
    struct ocra_evm_send_opts so;
    struct ocra_evm_tx_result res = {0};
    uint8_t key[OCRA_SHA256_LEN], *data = NULL;
    char key_hex[2 * OCRA_SHA256_LEN + 1], *contract = NULL;
    size_t len = 0;
    bool found = false;
    int ret = -1;

    if (evm_clients(ctx, err) < 0)
        return -1;
    if (!(contract = evm_contract(job->event, ctx->cfg)))
        return ocra_err_set(err, EINVAL, "no ModelRegistry contract for %s", job->event->id);
    ocra_sha256(job->event->id, strlen(job->event->id), key);
    ocra_hex_encode(key, sizeof(key), key_hex);
    json_object_set_new(out, "eventKey", json_sprintf("0x%s", key_hex));
    json_object_set_new(out, "contract", json_string(contract));
    pthread_mutex_lock(&send_mu);
    if (evm_settle(ctx, err) < 0 ||
        evm_find(ctx, contract, job->event->block_number, key_hex, out, &found, err) < 0)
        goto out;
    if (found) {
        json_object_set_new(out, "already", json_true());
        ret = 0;
        goto out;
    }
    data = ocra_evm_abi_call_b32_str("reportStatus(bytes32,string)", key, text, strlen(text), &len);
    ocra_evm_send_opts_init(&so);
    so.wait_ms = ctx->cfg->daemon.report_wait_ms;
    if (ocra_evm_send(ctx->evm, ctx->evm_key, contract, data, len, &so, &res, err) < 0)
        goto out;
    json_object_set_new(out, "tx", json_string(res.tx_hash));
    json_object_set_new(out, "block", json_integer(res.block));
    ret = 0;
out:
    pthread_mutex_unlock(&send_mu);
    if (ret < 0)
        ocra_err_wrap(err, "reportStatus on %s", contract);
    free(contract);
    free(data);
    return ret;
}

/* ---- AIN --------------------------------------------------------------------------------- */

/* The report path from the template: {app} is the event path's second segment. */
static char *
ain_path(const char *tmpl, const struct ocra_store_event *ev, struct ocra_err *err)
{
    struct ocra_buf b;
    const char *p = tmpl, *app = NULL;
    size_t app_len = 0;
    char shortid[13];

    if (ev->path && !strncmp(ev->path, "/apps/", 6)) {
        app = ev->path + 6;
        app_len = strcspn(app, "/");
    }
    ocra_spec_event_short_id(ev->id, shortid);
    ocra_buf_init(&b);
    while (*p) {
        if (!strncmp(p, "{app}", 5)) {
            if (!app_len) {
                ocra_buf_fini(&b);
                ocra_err_set(err, EINVAL, "daemon.report_ain_path: event path %s has no app",
                             ev->path ? ev->path : "(none)");
                return NULL;
            }
            ocra_buf_append(&b, app, app_len);
            p += 5;
        } else if (!strncmp(p, "{shortid}", 9)) {
            ocra_buf_puts(&b, shortid);
            p += 9;
        } else {
            ocra_buf_putc(&b, *p++);
        }
    }
    return ocra_buf_take(&b);
}

static int
ain_clients(struct ocra_daemon_ctx *ctx, struct ocra_err *err)
{
    struct ocra_ain_rpc_opts ro = {.url = ctx->cfg->ain.rpc, .retries = 2};

    if (!*ctx->cfg->ain.rpc)
        return ocra_err_set(err, EINVAL, "no ain.rpc configured: cannot report");
    if (!ctx->ain_key && !(ctx->ain_key = load_key(ctx->cfg->ain.key_file, "ain.key_file", err)))
        return -1;
    if (!ctx->ain)
        ctx->ain = ocra_ain_rpc_new(&ro);
    return 0;
}

/* True when the value at path already is this report (same event and status). */
static int
ain_present(struct ocra_daemon_ctx *ctx, const char *path, const json_t *value, bool *found,
            struct ocra_err *err)
{
    json_t *params = json_pack("{s:s, s:s}", "type", "GET_VALUE", "ref", path), *have;

    have = ocra_ain_rpc_call(ctx->ain, "ain_get", params, NULL, err);
    json_decref(params);
    if (!have)
        return -1;
    *found = json_is_object(have) &&
             json_equal(json_object_get(have, "event"), json_object_get(value, "event")) &&
             json_equal(json_object_get(have, "status"), json_object_get(value, "status"));
    json_decref(have);
    return 0;
}

static int
report_ain(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job, const json_t *value,
           json_t *out, struct ocra_err *err)
{
    const struct ocra_config *cfg = ctx->cfg;
    struct ocra_ain_tx_result res = {0};
    json_t *enc = NULL;
    char *path = NULL;
    bool found = false;
    int ret = -1;

    if (ain_clients(ctx, err) < 0 ||
        !(path = ain_path(cfg->daemon.report_ain_path, job->event, err)))
        return -1;
    json_object_set_new(out, "path", json_string(path));
    pthread_mutex_lock(&send_mu);
    if (ain_present(ctx, path, value, &found, err) < 0)
        goto out;
    if (found) {
        json_object_set_new(out, "already", json_true());
        ret = 0;
        goto out;
    }
    if (!(enc = ocra_ain_encode_value(value, err)))
        goto out;
    if (ocra_ain_send_set_value(ctx->ain, ctx->ain_key, cfg->ain.chain_id, path, enc, -1, 0,
                                cfg->ain.gas_price, cfg->daemon.report_wait_ms, &res, err) < 0) {
        /* the node's code says whether sending again can help (EINVAL: dead letter at once) */
        if (res.code != 0 && (err->code == EINVAL || err->code == EAGAIN))
            ocra_daemon_metrics_tx_refused("ain", res.code, err->code == EINVAL);
        goto out;
    }
    json_object_set_new(out, "tx", json_string(res.tx_hash));
    json_object_set_new(out, "block", json_integer(res.block));
    ret = 0;
out:
    pthread_mutex_unlock(&send_mu);
    if (ret < 0)
        ocra_err_wrap(err, "SET_VALUE %s", path);
    json_decref(enc);
    free(path);
    return ret;
}

/* ---- the stage --------------------------------------------------------------------------- */

/*
 * An orphaned event: the chain no longer holds the block it came from, so there is nothing to
 * report on (its event key names a block of a chain that lost; a publish mined again is a new
 * event with a report of its own). What it holds is given back: its workload stopped (the
 * runs the journal holds as running, and the autoscaled replicas), its allocations released.
 * The output's verdict ends it at status orphaned.
 */
static int
report_orphaned(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job,
                const json_t *inputs, json_t *out, struct ocra_err *err)
{
    struct ocra_runner *runner = NULL;
    json_t *stopped = json_array();
    int ret = -1;

    json_object_set_new(out, "stopped", stopped);
    if (json_object_get(inputs, "run")) {
        if (!(runner = ocra_daemon_runner_new(ctx->cfg, err)) ||
            ocra_daemon_run_stop_all(ctx, job, inputs, runner, stopped, err) < 0 ||
            ocra_daemon_scale_end(ctx, job->event->id, err) < 0)
            goto out;
    }
    if (json_object_get(inputs, "allocate") && ocra_daemon_release(ctx, job->event->id, err) < 0)
        goto out;
    json_object_set_new(out, "verdict", json_string("orphaned"));
    json_object_set_new(out, "reason",
                        json_string(job->claim->last_error
                                        ? job->claim->last_error
                                        : "the chain no longer holds its block"));
    json_object_set_new(out, "skipped", json_string("orphaned: not reported"));
    ocra_log_warn("event=%s orphaned: %s; not reported", job->event->id,
                  job->claim->last_error ? job->claim->last_error : "its block was replaced");
    ret = 0;
out:
    ocra_runner_free(runner);
    return ret;
}

int
ocra_daemon_op_report(struct ocra_daemon_ctx *ctx, const struct ocra_daemon_job *job,
                      const json_t *inputs, json_t **output, struct ocra_err *err)
{
    json_t *value = ocra_daemon_report_value(ctx, job, inputs), *out = json_object();
    char *text = ocra_json_canonical(value);
    int ret = 0;

    if (!strcmp(job->claim->status, "orphaned")) { /* nothing to report on: stop, release */
        ret = report_orphaned(ctx, job, inputs, out, err);
        goto out;
    }
    json_object_set(out, "report", value);
    /* superseded after its allocate stage: the run and complete stages that would release
     * its allocation never come */
    if (!strcmp(job->claim->status, "superseded") && json_object_get(inputs, "allocate") &&
        ocra_daemon_release(ctx, job->event->id, err) < 0) {
        ret = -1;
    } else if (!ctx->cfg->daemon.report) {
        json_object_set_new(out, "skipped", json_string("daemon.report is false"));
    } else if (!strncmp(job->event->chain, "evm:", 4)) {
        json_object_set_new(out, "chain", json_string("evm"));
        ret = report_evm(ctx, job, text, out, err);
    } else if (!strncmp(job->event->chain, "ain:", 4)) {
        json_object_set_new(out, "chain", json_string("ain"));
        ret = report_ain(ctx, job, value, out, err);
    } else {
        ret = ocra_err_set(err, EINVAL, "cannot report on chain %s", job->event->chain);
    }
out:
    if (ret == 0)
        *output = out;
    else
        json_decref(out);
    json_decref(value);
    free(text);
    return ret;
}
