/* SPDX-License-Identifier: Apache-2.0 */
/*
 * base_hash.c: sha256 (OpenSSL) and keccak256. nettle implements SHA-3, whose padding differs
 * from the original Keccak that Ethereum and AIN use, so the sponge is built here over nettle's
 * Keccak-f[1600] permutation: rate 136 bytes, padding 0x01 ... 0x80.
 */
#include "base/base.h"

#include <string.h>

#include <nettle/sha3.h>
#include <openssl/evp.h>

#define KECCAK256_RATE 136

void
ocra_sha256(const void *data, size_t len, uint8_t out[OCRA_SHA256_LEN])
{
    unsigned int n = 0;

    if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1 || n != OCRA_SHA256_LEN)
        abort(); /* cannot fail with a built-in digest short of memory exhaustion */
}

void
ocra_sha256_hex(const void *data, size_t len, char out[2 * OCRA_SHA256_LEN + 1])
{
    uint8_t md[OCRA_SHA256_LEN];

    ocra_sha256(data, len, md);
    ocra_hex_encode(md, sizeof(md), out);
}

struct ocra_sha256_ctx *
ocra_sha256_begin(void)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();

    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
        abort();
    return (struct ocra_sha256_ctx *)md;
}

void
ocra_sha256_update(struct ocra_sha256_ctx *c, const void *data, size_t len)
{
    if (EVP_DigestUpdate((EVP_MD_CTX *)c, data, len) != 1)
        abort();
}

void
ocra_sha256_end(struct ocra_sha256_ctx *c, uint8_t out[OCRA_SHA256_LEN])
{
    unsigned int n = 0;

    if (EVP_DigestFinal_ex((EVP_MD_CTX *)c, out, &n) != 1 || n != OCRA_SHA256_LEN)
        abort();
    EVP_MD_CTX_free((EVP_MD_CTX *)c);
}

void
ocra_sha256_abort(struct ocra_sha256_ctx *c)
{
    EVP_MD_CTX_free((EVP_MD_CTX *)c);
}

/* XORs one rate-sized block into the state, lanes little-endian. */
static void
absorb_block(struct sha3_state *st, const uint8_t *block)
{
    for (size_t i = 0; i < KECCAK256_RATE / 8; i++) {
        uint64_t lane = 0;

        for (size_t b = 0; b < 8; b++)
            lane |= (uint64_t)block[8 * i + b] << (8 * b);
        st->a[i] ^= lane;
    }
    sha3_permute(st);
}

void
ocra_keccak256(const void *data, size_t len, uint8_t out[OCRA_KECCAK256_LEN])
{
    const uint8_t *p = data;
    uint8_t last[KECCAK256_RATE];
    struct sha3_state st;

    memset(&st, 0, sizeof(st));
    while (len >= KECCAK256_RATE) {
        absorb_block(&st, p);
        p += KECCAK256_RATE;
        len -= KECCAK256_RATE;
    }
    memset(last, 0, sizeof(last));
    if (len)
        memcpy(last, p, len);
    last[len] ^= 0x01;
    last[KECCAK256_RATE - 1] ^= 0x80;
    absorb_block(&st, last);
    for (size_t i = 0; i < OCRA_KECCAK256_LEN; i++)
        out[i] = (uint8_t)(st.a[i / 8] >> (8 * (i % 8)));
}
