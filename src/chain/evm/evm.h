/* SPDX-License-Identifier: Apache-2.0 */
/*
 * evm: Ethereum and every EVM chain. Model specs are published through the ModelRegistry
 * contract (contracts/ModelRegistry.sol) and read back from its ModelPublished logs with
 * plain eth_getLogs (no server-side filters), only once their block is final: `finalized` /
 * `safe` tag or `confirmations` deep. A durable cursor and the hashes of recent blocks in the
 * journal detect reorgs; one deeper than the confirmation depth is reported as a finality
 * violation. Transactions (EIP-1559 type 2, or legacy EIP-155) are RLP-encoded, hashed with
 * keccak256 and signed with the chain module's secp256k1 keys.
 */
#ifndef OCRA_EVM_H
#define OCRA_EVM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "chain/chain.h"

/* ---- JSON-RPC ------------------------------------------------------------------------ */

struct ocra_evm_rpc_opts {
    const char *const *urls; /* endpoints in order of preference (at least one) */
    size_t n_urls;
    long timeout_ms;     /* per request; 0: 10 s */
    int retries;         /* extra rounds over the endpoints on transport errors, 5xx, 429,
                            malformed replies; <0: 0 */
    long backoff_ms;     /* first delay between rounds, doubled each time (jitter); 0: 250 ms */
    long backoff_max_ms; /* cap; 0: 8 s */
    int rate_limit;      /* requests per second; 0: unlimited */
};

/* A JSON-RPC client over one or more endpoints of the same chain. One per thread. */
struct ocra_evm_rpc;

/* EINVAL when there is no URL or one is not http(s)://. Caller frees with ocra_evm_rpc_free(). */
struct ocra_evm_rpc *ocra_evm_rpc_new(const struct ocra_evm_rpc_opts *opts, struct ocra_err *err);
void ocra_evm_rpc_free(struct ocra_evm_rpc *rpc);

/*
 * Calls method with params (a JSON array or NULL for []; not taken). Returns `result` (json
 * null included); caller json_decref()s it. Errors: EPROTO for a node error (JSON-RPC
 * `error`) with its code in *node_code (may be NULL) and message in err; E2BIG when the
 * error or the reply's size says a provider limit was hit (too many results, range too
 * large); ECONNREFUSED, ETIMEDOUT, EIO when every endpoint stayed unreachable or answered
 * 5xx through every retry; EPROTO when the replies stayed malformed.
 */
json_t *ocra_evm_rpc_call(struct ocra_evm_rpc *rpc, const char *method, const json_t *params,
                          int64_t *node_code, struct ocra_err *err);
/* Requests made so far, retries included. */
unsigned long ocra_evm_rpc_requests(const struct ocra_evm_rpc *rpc);

/* Parses an Ethereum QUANTITY ("0x" + 1..16 hex digits, no leading zeros needed). */
int ocra_evm_quantity(const json_t *v, uint64_t *out, struct ocra_err *err);

/* A block header as the scanner needs it. */
struct ocra_evm_block {
    int64_t number;
    char hash[67];    /* "0x" + 64 lowercase hex */
    char parent[67];  /* parentHash */
    int64_t base_fee; /* baseFeePerGas in wei, -1 when the chain has none (pre-London) */
};

int ocra_evm_chain_id(struct ocra_evm_rpc *rpc, int64_t *out, struct ocra_err *err);
int ocra_evm_block_number(struct ocra_evm_rpc *rpc, int64_t *out, struct ocra_err *err);
/* tag: "latest", "finalized", "safe", or NULL to use number. ENOENT when there is no such
 * block (beyond the head, or a tag the node does not know as a block). */
int ocra_evm_get_block(struct ocra_evm_rpc *rpc, const char *tag, int64_t number,
                       struct ocra_evm_block *out, struct ocra_err *err);
/*
 * eth_getLogs over [from, to] for address and topic0 (either may be NULL). A range the node
 * refuses as over a limit (E2BIG) is halved and retried down to single blocks. Returns the
 * logs as a JSON array in chain order; caller json_decref()s it. *requests (may be NULL) gets
 * how many eth_getLogs calls it took.
 */
json_t *ocra_evm_get_logs(struct ocra_evm_rpc *rpc, int64_t from, int64_t to, const char *address,
                          const char *topic0, unsigned *requests, struct ocra_err *err);

/* ---- ABI ----------------------------------------------------------------------------- */

/* "0x" + hex of keccak256("ModelPublished(bytes32,address,string,string)"). */
extern const char OCRA_EVM_TOPIC_MODEL_PUBLISHED[67];
/* "0x" + hex of keccak256("StatusReported(bytes32,address,string)"). */
extern const char OCRA_EVM_TOPIC_STATUS_REPORTED[67];

/* keccak256 of an event or function signature, "0x" + 64 hex into out. */
void ocra_evm_topic(const char *signature, char out[67]);

/*
 * Decodes ABI data holding n dynamic `string` (or `bytes`) values, the head being n 32-byte
 * offsets. Every offset and length is checked against len (hostile data fails with EINVAL
 * and never reads past data + len); offsets must be multiples of 32 past the head. Each
 * out[i] points into data (not NUL-terminated) with its length in out_len[i]. UTF-8 is not
 * checked here.
 */
int ocra_evm_abi_strings(const uint8_t *data, size_t len, size_t n, const uint8_t **out,
                         size_t *out_len, struct ocra_err *err);
/* ABI-encodes the call selector(string a, string b) into a new buffer; caller frees. */
uint8_t *ocra_evm_abi_call_2str(const char *signature, const char *a, size_t a_len, const char *b,
                                size_t b_len, size_t *out_len);
/* ABI-encodes the call selector(bytes32 word, string s) (reportStatus); caller frees. */
uint8_t *ocra_evm_abi_call_b32_str(const char *signature, const uint8_t word[32], const char *s,
                                   size_t s_len, size_t *out_len);

/*
 * Names revert data (what a node returns in a JSON-RPC error's "data" for a reverted call): a
 * custom error of the ModelRegistry ABI in the tree ("NotReporter()", arguments as
 * "name=value"), Error(string) or Panic(uint256); for the contract's access errors it adds
 * what fixes them ("NotReporter(): the sending account is not a reporter ..."). Writes into
 * out (cut to size) and returns true; false, out untouched, for an unknown selector or
 * malformed arguments (the caller keeps the hex). _hex takes "0x" + hex (at most 1 KiB).
 */
bool ocra_evm_revert_describe(const uint8_t *data, size_t len, char *out, size_t size);
bool ocra_evm_revert_describe_hex(const char *hex, char *out, size_t size);

/* A ModelPublished log, decoded and checked. */
struct ocra_evm_published {
    char name_hash[67];                      /* topic 1 */
    char publisher[OCRA_CHAIN_ADDR_LEN + 1]; /* topic 2, EIP-55 */
    const uint8_t *name, *spec;              /* into the caller's data */
    size_t name_len, spec_len;
};
/*
 * Decodes a ModelPublished log from its topics (4 hex strings) and data bytes. EINVAL with the
 * reason when topic0 is another event, a topic is malformed, the publisher topic has non-zero
 * high bytes, the data is malformed, or keccak256(name) differs from the name hash.
 */
int ocra_evm_decode_published(const char *const *topics, size_t n_topics, const uint8_t *data,
                              size_t len, struct ocra_evm_published *out, struct ocra_err *err);

/* ---- RLP and transactions -------------------------------------------------------------- */

/* RLP encoders append to b. */
void ocra_evm_rlp_bytes(struct ocra_buf *b, const uint8_t *p, size_t n);
void ocra_evm_rlp_uint(struct ocra_buf *b, uint64_t v);
/* Appends a list header for a payload of n bytes. */
void ocra_evm_rlp_list_header(struct ocra_buf *b, size_t n);

/* One RLP item as decoded: a byte string or a list, pointing into the input. */
struct ocra_evm_rlp_item {
    bool list;
    const uint8_t *p; /* payload */
    size_t len;
};
/*
 * Decodes the item at data[0..len), which must be canonical RLP; *used (may be NULL) gets
 * the bytes it took. EINVAL when truncated, non-canonical or lengths overflow.
 */
int ocra_evm_rlp_decode(const uint8_t *data, size_t len, struct ocra_evm_rlp_item *out,
                        size_t *used, struct ocra_err *err);

/* A transaction to sign. Amounts in wei fit 64 bits here (gas prices, values <= 18 ETH). */
struct ocra_evm_tx {
    bool legacy; /* false: EIP-1559 type 2; true: legacy with EIP-155 v */
    int64_t chain_id;
    uint64_t nonce;
    uint64_t max_priority_fee; /* type 2 */
    uint64_t max_fee;          /* type 2: maxFeePerGas; legacy: gasPrice */
    uint64_t gas;
    bool create; /* contract creation: no `to` */
    uint8_t to[20];
    uint64_t value;
    const uint8_t *data;
    size_t data_len;
};

/*
 * Signs tx with key: the raw transaction bytes into raw (caller frees with ocra_buf_fini) and
 * its hash "0x..." into hash.
 */
int ocra_evm_tx_sign(const struct ocra_evm_tx *tx, const struct ocra_chain_key *key,
                     struct ocra_buf *raw, char hash[67], struct ocra_err *err);

/* ---- sending ----------------------------------------------------------------------------- */

struct ocra_evm_tx_result {
    char tx_hash[67];
    char contract[OCRA_CHAIN_ADDR_LEN + 1]; /* contract created, "" otherwise */
    int64_t block;                          /* -1 when not waited for */
    char block_hash[67];
    bool success; /* receipt status 1 */
    uint64_t gas_used;
    uint64_t nonce;
};

struct ocra_evm_send_opts {
    int64_t chain_id;     /* 0: eth_chainId */
    int64_t nonce;        /* -1: eth_getTransactionCount(pending) */
    uint64_t gas;         /* 0: eth_estimateGas + 20 % */
    int64_t max_fee;      /* wei; -1: 2 * baseFee + priority (or eth_gasPrice when legacy) */
    int64_t priority_fee; /* wei; -1: eth_maxPriorityFeePerGas, else 1 gwei */
    int legacy;           /* -1: legacy only when the latest block has no baseFeePerGas */
    int64_t wait_ms;      /* > 0: poll the receipt that long (ETIMEDOUT after) */
};
/* The defaults above. */
void ocra_evm_send_opts_init(struct ocra_evm_send_opts *o);

/*
 * Builds, signs and sends a transaction calling `to` with data (to NULL: creates a contract
 * with data as init code), filling nonce, gas and fees per opts, then waits for the receipt
 * when opts->wait_ms > 0. A reverted transaction fails with EPROTO (res is filled).
 */
int ocra_evm_send(struct ocra_evm_rpc *rpc, const struct ocra_chain_key *key, const char *to,
                  const uint8_t *data, size_t data_len, const struct ocra_evm_send_opts *opts,
                  struct ocra_evm_tx_result *res, struct ocra_err *err);

/*
 * Calls a ModelRegistry role getter, signature "isReporter(address)" or
 * "isPublisher(address)", for account at the latest block. EPROTO when the answer is not an
 * ABI bool (no such function at contract), or the node's error.
 */
int ocra_evm_call_role(struct ocra_evm_rpc *rpc, const char *contract, const char *signature,
                       const char *account, bool *out, struct ocra_err *err);
/* The balance of account in wei at the latest block; more than UINT64_MAX wei (18.4 ETH)
 * reads UINT64_MAX. */
int ocra_evm_balance(struct ocra_evm_rpc *rpc, const char *account, uint64_t *wei,
                     struct ocra_err *err);
/*
 * What a transaction from key to `to` with data would cost at most: *fee gets the max fee per
 * gas ocra_evm_send would offer now (as with default options), then *gas the gas it would ask
 * for (eth_estimateGas + 20 %). Fails when the estimate does (a call that reverts: the error
 * names the contract's error); *fee is set before the estimate.
 */
int ocra_evm_estimate_cost(struct ocra_evm_rpc *rpc, const struct ocra_chain_key *key,
                           const char *to, const uint8_t *data, size_t data_len, uint64_t *gas,
                           uint64_t *fee, struct ocra_err *err);

/*
 * `ocra publish --chain evm`: calls ModelRegistry.publish(name, spec_json) on contract at
 * rpc_url, signed with key, and waits up to wait_ms for the receipt (0: does not wait). name
 * NULL takes the spec's "name". The spec must be JSON; it is sent in canonical form. Fails
 * with EINVAL for a bad name or spec, EPROTO when the transaction reverted (res filled).
 */
int ocra_evm_publish(const char *rpc_url, const struct ocra_chain_key *key, const char *contract,
                     const char *name, const char *spec_json, int64_t wait_ms,
                     struct ocra_evm_tx_result *res, struct ocra_err *err);

/* Deploys init code (hex, as contracts/ModelRegistry.bin), waiting up to wait_ms. */
int ocra_evm_deploy(const char *rpc_url, const struct ocra_chain_key *key, const char *bin_hex,
                    int64_t wait_ms, struct ocra_evm_tx_result *res, struct ocra_err *err);

/* ---- log scanner and source -------------------------------------------------------------- */

struct ocra_store;
struct ocra_store_event;

/* Called after each range's events are committed; a non-zero return stops the scan. */
typedef int ocra_evm_event_fn(const struct ocra_store_event *ev, void *arg);

/* A reorg the scanner saw. */
struct ocra_evm_reorg {
    int64_t block;           /* the first block number whose hash changed */
    int64_t depth;           /* blocks replaced, as far as the scanner can tell (>= 1) */
    bool finality_violation; /* it reached blocks already treated as final */
    size_t n_orphaned;       /* events journaled from orphaned blocks (violations only) */
};
typedef void ocra_evm_reorg_fn(const struct ocra_evm_reorg *r, void *arg);

enum ocra_evm_finality {
    OCRA_EVM_FINALITY_DEPTH,     /* head - confirmations (default) */
    OCRA_EVM_FINALITY_FINALIZED, /* the `finalized` tag, falling back to depth */
    OCRA_EVM_FINALITY_SAFE,      /* the `safe` tag, falling back to depth */
};

struct ocra_evm_source_opts {
    const char *const *rpc_urls; /* endpoints in order of preference */
    size_t n_rpc_urls;
    struct ocra_evm_rpc *rpc; /* or an existing client (borrowed); then rpc_urls is ignored */
    struct ocra_store *store; /* borrowed */
    const char *contract;     /* the ModelRegistry address */
    int64_t chain_id;         /* 0: ask eth_chainId; otherwise it must match the node's */
    enum ocra_evm_finality finality;
    int64_t confirmations;    /* depth that counts as final; <0: 12 (0 is allowed: the head) */
    int64_t from_block;       /* where a source without a cursor starts: -1 the final head */
    int64_t to_block;         /* stop after this block; -1 never (tests, benchmarks) */
    int64_t batch_blocks;     /* blocks per eth_getLogs range and journal transaction; 0: 2000 */
    const char *const *allow; /* the operator's allowlist of publishers ("0x" + 40 hex) */
    size_t n_allow;
    long poll_ms; /* wait() between polls; 0: 2000 */
    ocra_evm_event_fn *on_event;
    ocra_evm_reorg_fn *on_reorg;
    void *arg; /* for both callbacks */
};

/*
 * The EVM chain source: journal source and chain "evm:<chain_id>". Checks the options (EINVAL
 * naming the bad one) and asks the node its chain id. poll() journals every ModelPublished
 * log of the final blocks after the cursor, one transaction per range with the cursor and the
 * recent-block window (model path "/.evm/recent-blocks" of the source); wait() sleeps
 * poll_ms. opts and what it points to must outlive the source. Caller frees with src->free.
 */
struct ocra_source *ocra_evm_source_new(const struct ocra_evm_source_opts *opts,
                                        struct ocra_err *err);

struct ocra_evm_stats {
    int64_t chain_id;
    int64_t cursor; /* last final block journaled, -1 none */
    int64_t head;   /* last head seen */
    unsigned long requests, ranges, logs, events, reorgs, finality_violations;
};
/* Counters of an EVM source (src must come from ocra_evm_source_new). */
void ocra_evm_source_stats(const struct ocra_source *src, struct ocra_evm_stats *out);

/* The model path of a published name: "<contract EIP-55>/<name>". */
#define OCRA_EVM_RECENT_PATH "/.evm/recent-blocks"

#endif
