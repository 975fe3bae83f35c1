/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ain: the AI Network chain. This part: transactions as the node sees them. A tx body is
 * hashed as keccak256(keccak256(stable_stringify(body))), where stable_stringify is
 * fast-json-stable-stringify (keys sorted by UTF-16 code units, no whitespace, JavaScript
 * number and string formatting); it is signed with secp256k1 (RFC 6979, low-S) as
 * 0x || hash(32) || r(32) || s(32) || v, v = 27 + recid for chain_id 0, else
 * recid + 2 * chain_id + 35; the signer's address is the EIP-55 form of the last 20 bytes
 * of keccak256 of the uncompressed public key.
 */
#ifndef OCRA_AIN_H
#define OCRA_AIN_H

#include <stdbool.h>
#include <stdint.h>

#include "base/base.h"
#include "chain/chain.h"

/* fast-json-stable-stringify of j, byte for byte as the node computes it. Caller frees. */
char *ocra_ain_stringify(const json_t *j);
/* keccak256(keccak256(stable_stringify(tx_body))). */
void ocra_ain_tx_hash(const json_t *tx_body, uint8_t out[32]);
/* "0x" + 64 lowercase hex of ocra_ain_tx_hash into out (67 bytes). */
void ocra_ain_tx_hash_hex(const json_t *tx_body, char out[67]);

/* Signs tx_body for chain_id. Returns the "0x..." signature; caller frees. */
char *ocra_ain_sign(const struct ocra_chain_key *key, const json_t *tx_body, int64_t chain_id,
                    struct ocra_err *err);
/*
 * Checks a signature over tx_body: the hash inside it must equal the recomputed tx hash, and
 * a public key must be recoverable from (hash, r, s, v) for chain_id. Writes the recovered
 * signer's EIP-55 address to addr. EINVAL with the reason when any check fails.
 */
int ocra_ain_verify(const json_t *tx_body, const char *signature, int64_t chain_id,
                    char addr[OCRA_CHAIN_ADDR_LEN + 1], struct ocra_err *err);

/* ---- JSON-RPC ------------------------------------------------------------------------ */

#define OCRA_AIN_PROTO_VER "1.6.0"

struct ocra_ain_rpc_opts {
    const char *url;       /* http://host:port/json-rpc */
    const char *proto_ver; /* NULL: OCRA_AIN_PROTO_VER */
    long timeout_ms;       /* per request; 0: 10 s */
    int retries;           /* extra attempts on transport errors, 5xx, malformed replies; <0: 0 */
    long backoff_ms;       /* first retry delay, doubled each time (with jitter); 0: 250 ms */
    long backoff_max_ms;   /* cap; 0: 8 s */
    int rate_limit;        /* requests per second; 0: unlimited */
};

/* A JSON-RPC client of one node. Not thread-safe: one per thread. */
struct ocra_ain_rpc;

struct ocra_ain_rpc *ocra_ain_rpc_new(const struct ocra_ain_rpc_opts *opts);
void ocra_ain_rpc_free(struct ocra_ain_rpc *rpc);

/*
 * Calls method with params (a JSON object; protoVer is added; not taken). Returns the
 * node's answer, `result.result` (json null included); caller json_decref()s it. Errors:
 * ENOENT when the answer has no `result.result` (a block beyond the head); EPROTO for
 * a node error (JSON-RPC `error`, an application `{code, message}` in `result`, or a
 * protocol-version error body) with the node's code in *node_code (may be NULL) and its
 * message in err; ECONNREFUSED, ETIMEDOUT, EIO when the node stayed unreachable or answered
 * 5xx through every retry; EPROTO when its replies stayed malformed (not JSON, no result).
 */
json_t *ocra_ain_rpc_call(struct ocra_ain_rpc *rpc, const char *method, const json_t *params,
                          int64_t *node_code, struct ocra_err *err);
/* Requests made so far, retries included (for tests and metrics). */
unsigned long ocra_ain_rpc_requests(const struct ocra_ain_rpc *rpc);

/* ---- finalized block scanner ----------------------------------------------------------- */

struct ocra_store;
struct ocra_store_event;

/* A watched path pattern and the signers trusted to write under it. */
struct ocra_ain_watch {
    const char *pattern;      /* "/apps/my_app/models/$name": `$var` matches one segment */
    const char *const *allow; /* "0x" + 40 hex addresses, any letter case */
    size_t n_allow;
};

/* Called after each block's events are committed; a non-zero return stops the scan. */
typedef ocra_source_event_fn ocra_ain_event_fn;

struct ocra_ain_scan_opts {
    struct ocra_ain_rpc *rpc; /* borrowed */
    struct ocra_store *store; /* borrowed */
    int64_t chain_id;         /* the node's chain id; the journal source is "ain:<id>" */
    const struct ocra_ain_watch *watch;
    size_t n_watch;
    int64_t from_block;          /* where a source without a cursor starts: -1 the head, else N */
    int batch;                   /* blocks per ain_getBlockList (1..20); 0: 20 */
    ocra_ain_event_fn *on_event; /* may be NULL */
    void *arg;
};

/* Reads finalized blocks after the journal's cursor and journals the watched writes. */
struct ocra_ain_scanner;

/* Checks the patterns and allowlists (EINVAL naming the bad one). Caller frees with
 * ocra_ain_scanner_free(). opts and everything it points to must outlive the scanner. */
struct ocra_ain_scanner *ocra_ain_scanner_new(const struct ocra_ain_scan_opts *opts,
                                              struct ocra_err *err);
void ocra_ain_scanner_free(struct ocra_ain_scanner *sc);
/*
 * Processes the finalized blocks after the cursor, up to the node's last block, each block in
 * one journal transaction with its events and the cursor. *caught_up (may be NULL) says whether
 * the cursor reached the head read at the start; *n_events (may be NULL) counts the events
 * journaled. On an RPC or journal failure nothing of the failing block is written, so the next
 * call resumes at it: no block is skipped.
 */
int ocra_ain_scanner_poll(struct ocra_ain_scanner *sc, size_t *n_events, bool *caught_up,
                          struct ocra_err *err);
/* How many final blocks the node replaced (each one a finality violation) since sc was made. */
unsigned long ocra_ain_scanner_finality_violations(const struct ocra_ain_scanner *sc);
/* The same of an AIN source (src must come from ocra_ain_source_new). */
unsigned long ocra_ain_source_finality_violations(const struct ocra_source *src);
/* True when path is a valid pattern: absolute, non-empty segments without "..", `$var` names
 * of [A-Za-z0-9_]. */
bool ocra_ain_pattern_valid(const char *pattern);

/* ---- writing values -------------------------------------------------------------------- */

/* The node's longest state label, in UTF-16 code units (resource/state_label_length_limit). */
#define OCRA_AIN_LABEL_MAX 150

/*
 * The AIN form of a JSON value, by the node's rules for what a SET_VALUE may store
 * (ain-blockchain 1.6.0 db/state-util.js isValidJsObjectForStates; a write that breaks them is
 * reverted with code 10101): no arrays, so arrays become objects keyed "0".."n-1"; no empty
 * object or array; every key a valid state label (non-empty, at most OCRA_AIN_LABEL_MAX UTF-16
 * code units, none of / . $ * # { } [ ] < > ' " ` space or control characters, except "*" and
 * keys of "." or "$" and then allowed characters). Fails with EINVAL, naming the path, on a
 * value it cannot store. Caller json_decref()s the result.
 */
json_t *ocra_ain_encode_value(const json_t *v, struct ocra_err *err);

/* What a send or a wait ended with. */
struct ocra_ain_tx_result {
    char tx_hash[67];
    char state[24]; /* FINALIZED, REVERTED, ... or "" when not waited for */
    int64_t code;   /* the node's result code; 0 success */
    int64_t block;  /* the block the transaction landed in, -1 when unknown */
};

/*
 * True when a node's result code for a transaction may change if the same write is sent again
 * later: a full transaction pool (10704, 10705, 10715, 10716), the transaction already in the
 * pool (10701), a node not serving yet (18001) or failing itself (16001, JSON-RPC -32603 and
 * -32000..-32099). Every other code is permanent: the same write gets the same answer until an
 * operator acts (state budgets 10901-10908, write rules and permissions 12xxx, invalid values
 * or paths 10101-10105, nonces and timestamps 10712-10713, fees and billing 108xx-110xx, tree
 * limits 111xx, transaction format and signature 303xx, protocol version 301xx, ...).
 * Codes: ain-blockchain 1.6.0 common/result-code.js.
 */
bool ocra_ain_code_transient(int64_t code);

/*
 * Builds, signs and sends a SET_VALUE of value at ref: nonce, timestamp_ms (0: now) and
 * gas_price go into the tx body. With wait_ms > 0, polls ain_getTransactionByHash until the
 * transaction is FINALIZED, or fails when it is REVERTED or rejected, or ETIMEDOUT after
 * wait_ms. The value must already be in AIN form. A transaction the node refuses (at the send
 * or by reverting it) fails with the node's code in res->code and its message in err: EINVAL
 * when the code is permanent, EAGAIN when it is transient (ocra_ain_code_transient()).
 */
int ocra_ain_send_set_value(struct ocra_ain_rpc *rpc, const struct ocra_chain_key *key,
                            int64_t chain_id, const char *ref, const json_t *value, int64_t nonce,
                            int64_t timestamp_ms, int64_t gas_price, int64_t wait_ms,
                            struct ocra_ain_tx_result *res, struct ocra_err *err);

/* ---- event WebSocket ------------------------------------------------------------------- */

struct ocra_ain_ws_opts {
    const char *url;             /* ws://host:5100 or wss://... */
    const char *const *patterns; /* VALUE_CHANGED hints for these (at most 4 are used) */
    size_t n_patterns;
    long keepalive_ms;   /* a client message at least this often (the node closes channels
                            silent but for PONG for 600 s); 0: 240 s */
    long backoff_ms;     /* first reconnect delay, doubled up to backoff_max_ms; 0: 500 ms */
    long backoff_max_ms; /* 0: 30 s */
};

/*
 * The node's event WebSocket, used only to wake the scanner: it subscribes to
 * BLOCK_FINALIZED (and VALUE_CHANGED on the patterns), answers PING, keeps the channel alive,
 * and reconnects with backoff, registering its filters again, whenever the channel closes
 * (the node closes every channel after an hour). It pushes only and has no replay: the
 * scanner stays the source of truth and polls regardless.
 */
struct ocra_ain_ws;

struct ocra_ain_ws *ocra_ain_ws_new(const struct ocra_ain_ws_opts *opts, struct ocra_err *err);
void ocra_ain_ws_free(struct ocra_ain_ws *ws);
/*
 * Services the socket for up to timeout_ms, connecting or reconnecting as needed. Returns 1
 * as soon as a BLOCK_FINALIZED or VALUE_CHANGED event arrives (the last finalized block
 * number, when known, in *finalized, else -1), 0 when the time ran out.
 */
int ocra_ain_ws_wait(struct ocra_ain_ws *ws, long timeout_ms, int64_t *finalized);

struct ocra_ain_ws_stats {
    unsigned long connects, frames, pings, errors;
    bool connected;
};
void ocra_ain_ws_stats(const struct ocra_ain_ws *ws, struct ocra_ain_ws_stats *out);

/* ---- the AIN source -------------------------------------------------------------------- */

struct ocra_ain_source_opts {
    const char *rpc_url; /* JSON-RPC endpoint */
    const char *ws_url;  /* event WebSocket, or NULL: poll only */
    int rate_limit;      /* requests/s to the node; 0: unlimited */
    int retries;         /* per request */
    int64_t chain_id;
    const struct ocra_ain_watch *watch;
    size_t n_watch;
    int64_t from_block;
    struct ocra_store *store; /* borrowed */
    ocra_ain_event_fn *on_event;
    void *arg;
};

/*
 * The AIN chain as a struct ocra_source: the finalized block scanner over JSON-RPC, woken by
 * the event WebSocket when ws_url is set. opts' pointers must outlive the source. Free it with
 * src->free(src).
 */
struct ocra_source *ocra_ain_source_new(const struct ocra_ain_source_opts *opts,
                                        struct ocra_err *err);

#endif
