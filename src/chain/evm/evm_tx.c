/* SPDX-License-Identifier: Apache-2.0 */
/*
 * evm_tx.c: RLP and transaction signing. RLP per the Yellow Paper appendix B: byte strings and
 * lists with short (<= 55 bytes) and long length forms, integers as big-endian bytes without
 * leading zeros. The decoder, used on outside input (fuzzed), accepts canonical encodings only
 * and checks every length against the bytes left before using it. Transactions: EIP-1559
 * (type 2: 0x02 || rlp([chain_id, nonce, priority fee, max fee, gas, to, value, data,
 * access_list, y_parity, r, s]), signed over keccak256 of the same without the signature) and
 * legacy with EIP-155 replay protection (v = recid + 2 * chain_id + 35).
 */
#include "chain/evm/evm.h"

#include <errno.h>
#include <string.h>

/* ---- encoding ---------------------------------------------------------------------------- */

/* Big-endian bytes of v without leading zeros into out (8 bytes); returns their count. */
static size_t
be_bytes(uint64_t v, uint8_t out[8])
{
    size_t n = 0;

    for (int shift = 56; shift >= 0; shift -= 8)
        if (n || (v >> shift) & 0xff)
            out[n++] = (uint8_t)(v >> shift);
    return n;
}

static void
length_prefix(struct ocra_buf *b, size_t n, uint8_t short_base, uint8_t long_base)
{
    uint8_t lb[8], c;
    size_t k;

    if (n <= 55) {
        c = (uint8_t)(short_base + n);
        ocra_buf_append(b, &c, 1);
        return;
    }
    k = be_bytes((uint64_t)n, lb);
    c = (uint8_t)(long_base + k);
    ocra_buf_append(b, &c, 1);
    ocra_buf_append(b, lb, k);
}

void
ocra_evm_rlp_bytes(struct ocra_buf *b, const uint8_t *p, size_t n)
{
    if (n == 1 && p[0] < 0x80) {
        ocra_buf_append(b, p, 1);
        return;
    }
    length_prefix(b, n, 0x80, 0xb7);
    if (n)
        ocra_buf_append(b, p, n);
}

void
ocra_evm_rlp_uint(struct ocra_buf *b, uint64_t v)
{
    uint8_t be[8];

    ocra_evm_rlp_bytes(b, be, be_bytes(v, be));
}

void
ocra_evm_rlp_list_header(struct ocra_buf *b, size_t n)
{
    length_prefix(b, n, 0xc0, 0xf7);
}

/* A 32-byte big-endian integer (r or s) without leading zeros. */
static void
rlp_word(struct ocra_buf *b, const uint8_t w[32])
{
    size_t i = 0;

    while (i < 32 && w[i] == 0)
        i++;
    ocra_evm_rlp_bytes(b, w + i, 32 - i);
}

/* ---- decoding ---------------------------------------------------------------------------- */

int
ocra_evm_rlp_decode(const uint8_t *data, size_t len, struct ocra_evm_rlp_item *out, size_t *used,
                    struct ocra_err *err)
{
    size_t hdr = 1, n = 0;
    uint8_t c;

    if (len == 0)
        return ocra_err_set(err, EINVAL, "rlp: empty input");
    c = data[0];
    out->list = c >= 0xc0;
    if (c < 0x80) {
        out->p = data;
        out->len = 1;
        if (used)
            *used = 1;
        return 0;
    }
    if (c <= 0xb7 || (c >= 0xc0 && c <= 0xf7)) {
        n = (size_t)(c - (out->list ? 0xc0 : 0x80));
    } else {
        size_t k = (size_t)(c - (out->list ? 0xf7 : 0xb7));

        if (k > 8 || k >= len)
            return ocra_err_set(err, EINVAL, "rlp: length of length %zu past the end", k);
        if (data[1] == 0)
            return ocra_err_set(err, EINVAL, "rlp: length with a leading zero");
        for (size_t i = 0; i < k; i++) {
            if (n > (SIZE_MAX >> 8))
                return ocra_err_set(err, EINVAL, "rlp: length overflows");
            n = n << 8 | data[1 + i];
        }
        if (n <= 55)
            return ocra_err_set(err, EINVAL, "rlp: long form for a short length %zu", n);
        hdr += k;
    }
    if (n > len - hdr)
        return ocra_err_set(err, EINVAL, "rlp: item of %zu bytes past the end (%zu left)", n,
                            len - hdr);
    if (!out->list && n == 1 && data[hdr] < 0x80)
        return ocra_err_set(err, EINVAL, "rlp: single byte below 0x80 with a header");
    out->p = data + hdr;
    out->len = n;
    if (used)
        *used = hdr + n;
    return 0;
}

/* ---- transactions ------------------------------------------------------------------------ */

/* The fields every form signs, in order, from nonce through data. */
static void
common_fields(struct ocra_buf *b, const struct ocra_evm_tx *tx)
{
    if (!tx->legacy) {
        ocra_evm_rlp_uint(b, (uint64_t)tx->chain_id);
        ocra_evm_rlp_uint(b, tx->nonce);
        ocra_evm_rlp_uint(b, tx->max_priority_fee);
    } else {
        ocra_evm_rlp_uint(b, tx->nonce);
    }
    ocra_evm_rlp_uint(b, tx->max_fee);
    ocra_evm_rlp_uint(b, tx->gas);
    ocra_evm_rlp_bytes(b, tx->to, tx->create ? 0 : 20);
    ocra_evm_rlp_uint(b, tx->value);
    ocra_evm_rlp_bytes(b, tx->data, tx->data_len);
    if (!tx->legacy)
        ocra_evm_rlp_list_header(b, 0); /* empty access list */
}

/* out = [type byte] || rlp(list of payload). */
static void
wrap_list(struct ocra_buf *out, const struct ocra_evm_tx *tx, const struct ocra_buf *payload)
{
    static const uint8_t type2 = 0x02;

    if (!tx->legacy)
        ocra_buf_append(out, &type2, 1);
    ocra_evm_rlp_list_header(out, payload->len);
    if (payload->len)
        ocra_buf_append(out, payload->data, payload->len);
}

static void
signing_hash(const struct ocra_evm_tx *tx, uint8_t hash[32])
{
    struct ocra_buf payload, msg;

    ocra_buf_init(&payload);
    ocra_buf_init(&msg);
    common_fields(&payload, tx);
    if (tx->legacy) {
        ocra_evm_rlp_uint(&payload, (uint64_t)tx->chain_id);
        ocra_evm_rlp_uint(&payload, 0);
        ocra_evm_rlp_uint(&payload, 0);
    }
    wrap_list(&msg, tx, &payload);
    ocra_keccak256(msg.data, msg.len, hash);
    ocra_buf_fini(&payload);
    ocra_buf_fini(&msg);
}

int
ocra_evm_tx_sign(const struct ocra_evm_tx *tx, const struct ocra_chain_key *key,
                 struct ocra_buf *raw, char hash[67], struct ocra_err *err)
{
    struct ocra_buf payload;
    uint8_t h[32], rs[64];
    int recid;

    if (tx->chain_id <= 0)
        return ocra_err_set(err, EINVAL, "tx: chain id %lld", (long long)tx->chain_id);
    signing_hash(tx, h);
    if (ocra_chain_sign(key, h, rs, &recid, err) < 0)
        return ocra_err_wrap(err, "sign tx");
    if (recid > 1) /* r overflowed the group order: astronomically rare, never valid here */
        return ocra_err_set(err, EINVAL, "sign tx: recovery id %d", recid);
    ocra_buf_init(&payload);
    common_fields(&payload, tx);
    if (tx->legacy)
        ocra_evm_rlp_uint(&payload, (uint64_t)recid + 2 * (uint64_t)tx->chain_id + 35);
    else
        ocra_evm_rlp_uint(&payload, (uint64_t)recid);
    rlp_word(&payload, rs);
    rlp_word(&payload, rs + 32);
    ocra_buf_init(raw);
    wrap_list(raw, tx, &payload);
    ocra_buf_fini(&payload);
    ocra_keccak256(raw->data, raw->len, h);
    hash[0] = '0';
    hash[1] = 'x';
    ocra_hex_encode(h, sizeof(h), hash + 2);
    return 0;
}
