/* SPDX-License-Identifier: Apache-2.0 */
/*
 * chain: what every chain family shares. The source interface the daemon and `ocra watch`
 * drive (AIN and EVM implement it), and secp256k1 keys: signing with recovery (RFC 6979,
 * low-S) and signer recovery, with Ethereum-style addresses (the last 20 bytes of keccak256
 * of the uncompressed public key, written EIP-55), which AIN uses too. libsecp256k1 is
 * included here only.
 */
#ifndef OCRA_CHAIN_H
#define OCRA_CHAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "base/base.h"

/* ---- sources --------------------------------------------------------------------------- */

/*
 * A chain source: reads what is final after its journal cursor and journals the events.
 * poll() does one round (until caught up with the head it read); wait() blocks up to ms
 * for news (a push channel wakes it early; without one it sleeps) and returns 1 when woken;
 * free() releases it. name is the journal source, "ain:0" or "evm:31337".
 */
struct ocra_store_event;

/* Called with each event after its block was committed to the journal; non-zero stops. */
typedef int ocra_source_event_fn(const struct ocra_store_event *ev, void *arg);

struct ocra_source {
    const char *name;
    int (*poll)(struct ocra_source *src, size_t *n_events, bool *caught_up, struct ocra_err *err);
    int (*wait)(struct ocra_source *src, long ms);
    void (*free)(struct ocra_source *src);
};

/* ---- addresses ------------------------------------------------------------------------- */

#define OCRA_CHAIN_ADDR_LEN 42 /* "0x" + 40 hex digits */

/* EIP-55 checksummed "0x..." form of a 20-byte address into out (43 bytes). */
void ocra_chain_address_format(const uint8_t addr[20], char out[OCRA_CHAIN_ADDR_LEN + 1]);
/* True when a and b are the same "0x" + 40-hex address, whatever their letter case. */
bool ocra_chain_address_equal(const char *a, const char *b);
/* True when s is "0x" + 40 hex digits. */
bool ocra_chain_address_valid(const char *s);

/* ---- keys ------------------------------------------------------------------------------ */

/* A secp256k1 signing key; the secret is wiped when freed. */
struct ocra_chain_key;

/* From 64 hex digits (optional 0x). Caller frees with ocra_chain_key_free(). */
struct ocra_chain_key *ocra_chain_key_from_hex(const char *hex, struct ocra_err *err);
/* From a file holding the hex key (surrounding whitespace ignored); EACCES when the file is
 * readable by group or others. Caller frees with ocra_chain_key_free(). */
struct ocra_chain_key *ocra_chain_key_load(const char *path, struct ocra_err *err);
void ocra_chain_key_free(struct ocra_chain_key *key);
/* The key's address, EIP-55; borrowed, valid until the key is freed. */
const char *ocra_chain_key_address(const struct ocra_chain_key *key);

/* Signs a 32-byte hash: r || s (low-S) into rs and the recovery id (0..3) into *recid. */
int ocra_chain_sign(const struct ocra_chain_key *key, const uint8_t hash[32], uint8_t rs[64],
                    int *recid, struct ocra_err *err);
/* The EIP-55 address of the key that signed hash as (rs, recid); EINVAL when none does. */
int ocra_chain_recover(const uint8_t hash[32], const uint8_t rs[64], int recid,
                       char addr[OCRA_CHAIN_ADDR_LEN + 1], struct ocra_err *err);

#endif
