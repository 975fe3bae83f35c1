/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ain_tx.c: AIN transaction hashing, signing and signer recovery (keys: src/chain/chain.h).
 */
#include "chain/ain/ain.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
ocra_ain_tx_hash(const json_t *tx_body, uint8_t out[32])
{
    char *s = ocra_ain_stringify(tx_body);
    uint8_t inner[32];

    ocra_keccak256(s, strlen(s), inner);
    ocra_keccak256(inner, sizeof(inner), out);
    free(s);
}

void
ocra_ain_tx_hash_hex(const json_t *tx_body, char out[67])
{
    uint8_t h[32];

    ocra_ain_tx_hash(tx_body, h);
    out[0] = '0';
    out[1] = 'x';
    ocra_hex_encode(h, sizeof(h), out + 2);
}

/* v byte(s) for a recovery id on chain_id; see the header. */
static int64_t
v_of(int recid, int64_t chain_id)
{
    return chain_id == 0 ? 27 + recid : recid + 2 * chain_id + 35;
}

char *
ocra_ain_sign(const struct ocra_chain_key *key, const json_t *tx_body, int64_t chain_id,
              struct ocra_err *err)
{
    uint8_t hash[32], rs[64];
    char hex[129], hash_hex[65];
    int recid = 0;

    if (chain_id < 0 || chain_id > 100) {
        ocra_err_set(err, EINVAL, "chain_id %lld: want 0..100", (long long)chain_id);
        return NULL;
    }
    ocra_ain_tx_hash(tx_body, hash);
    if (ocra_chain_sign(key, hash, rs, &recid, err) < 0)
        return NULL;
    ocra_hex_encode(hash, 32, hash_hex);
    ocra_hex_encode(rs, 64, hex);
    return ocra_xasprintf("0x%s%s%02llx", hash_hex, hex, (long long)v_of(recid, chain_id));
}

int
ocra_ain_verify(const json_t *tx_body, const char *signature, int64_t chain_id,
                char addr[OCRA_CHAIN_ADDR_LEN + 1], struct ocra_err *err)
{
    uint8_t raw[97], hash[32];
    int64_t v;
    int recid;

    if (!signature || strncmp(signature, "0x", 2) != 0 || strlen(signature) != 2 + 2 * 97 ||
        ocra_hex_decode(signature, raw, sizeof(raw), NULL) < 0)
        return ocra_err_set(err, EINVAL, "signature: want 0x and 194 hex digits");
    ocra_ain_tx_hash(tx_body, hash);
    if (memcmp(hash, raw, 32) != 0)
        return ocra_err_set(err, EINVAL, "signature: signed hash differs from the tx body's hash");
    v = raw[96];
    recid = (int)(v - v_of(0, chain_id));
    if (recid < 0 || recid > 3)
        return ocra_err_set(err, EINVAL, "signature: v %lld is not valid for chain_id %lld",
                            (long long)v, (long long)chain_id);
    return ocra_chain_recover(hash, raw + 32, recid, addr, err);
}
