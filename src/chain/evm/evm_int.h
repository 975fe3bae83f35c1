/* SPDX-License-Identifier: Apache-2.0 */
/*
 * evm_int.h: what the EVM module's files share and nothing outside uses: the context of one
 * scanned range and the events it produced, and turning a log into an event (evm_log.c).
 */
#ifndef OCRA_EVM_INT_H
#define OCRA_EVM_INT_H

#include "chain/evm/evm.h"

struct ocra_store_event;

/* What judging a log needs: the source, the contract and the operator's allowlist, and the
 * range being scanned with the hash of its last block. */
struct ocra_evm_scan_ctx {
    const char *source;                     /* "evm:<chain_id>" */
    char contract[OCRA_CHAIN_ADDR_LEN + 1]; /* EIP-55 */
    const char *const *allow;
    size_t n_allow;
    int64_t from, to;
    char to_hash[67];
};

/* The events of one range and the strings they point to. */
struct ocra_evm_range {
    struct ocra_store_event *evs;
    size_t n;
    char **owned;
    size_t n_owned;
};

void ocra_evm_range_fini(struct ocra_evm_range *r);

/*
 * Appends the event of one log to r. Fails (EPROTO, or EAGAIN when the log suggests a reorg)
 * only when the node's envelope of the log is malformed or outside the range; hostile content
 * gives a rejected event.
 */
int ocra_evm_log_event(const struct ocra_evm_scan_ctx *c, struct ocra_evm_range *r,
                       const json_t *log, struct ocra_err *err);
bool ocra_evm_allowed(const struct ocra_evm_scan_ctx *c, const char *addr);

/* One custom error of the ModelRegistry ABI (generated from contracts/ModelRegistry.abi.json
 * at build time by abi_errors.cmake): "Name(type,...)" and its input names, comma-separated.
 * The table ends with a row whose signature is NULL. */
struct ocra_evm_abi_error {
    const char *signature;
    const char *names;
};
extern const struct ocra_evm_abi_error ocra_evm_abi_errors[];

#endif
