/* SPDX-License-Identifier: Apache-2.0 */
/*
 * evm_abi.c: the slice of the Solidity ABI ocra needs. Log data is hostile input: a node (or
 * a contract at another address slipped into the config) can return anything, so every
 * offset and length word is checked against the data's size before it is used, the high bytes
 * of each word must be zero, and sums are done in 64 bits after those checks so that nothing
 * overflows or reads past the end. Also topic hashes and the encoding of a two-string call.
 */
#include "chain/evm/evm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* keccak256 of the signatures; evm_test checks them against ocra_evm_topic(). */
const char OCRA_EVM_TOPIC_MODEL_PUBLISHED[67] =
    "0x80816a3fc172a104234e85def57bd0a7a726cb66bb8c8964145624b8552c999b";
const char OCRA_EVM_TOPIC_STATUS_REPORTED[67] =
    "0xe9081c13bc3d1b6d310653b3bc94bac932cdb44801d04d3cdcd6449731cd645c";

void
ocra_evm_topic(const char *signature, char out[67])
{
    uint8_t h[32];

    ocra_keccak256(signature, strlen(signature), h);
    out[0] = '0';
    out[1] = 'x';
    ocra_hex_encode(h, sizeof(h), out + 2);
}

/* A 32-byte word as a size: EINVAL when its high 24 bytes are not zero. */
static int
word_size(const uint8_t *w, uint64_t *out)
{
    uint64_t v = 0;

    for (size_t i = 0; i < 24; i++)
        if (w[i])
            return -1;
    for (size_t i = 24; i < 32; i++)
        v = v << 8 | w[i];
    *out = v;
    return 0;
}

int
ocra_evm_abi_strings(const uint8_t *data, size_t len, size_t n, const uint8_t **out,
                     size_t *out_len, struct ocra_err *err)
{
    if (n == 0 || n > 16 || len < 32 * n)
        return ocra_err_set(err, EINVAL, "abi: %zu bytes cannot hold %zu offsets", len, n);
    for (size_t i = 0; i < n; i++) {
        uint64_t off, slen;

        if (word_size(data + 32 * i, &off) < 0 || off % 32 || off < 32 * n || off > len - 32)
            return ocra_err_set(err, EINVAL,
                                "abi: value %zu: offset out of bounds (data %zu bytes)", i, len);
        if (word_size(data + off, &slen) < 0 || slen > len - off - 32)
            return ocra_err_set(err, EINVAL,
                                "abi: value %zu: length past the end (offset %llu, data %zu bytes)",
                                i, (unsigned long long)off, len);
        /* the padding to a whole word must be there too, as every encoder writes it */
        if ((slen + 31) / 32 * 32 > len - off - 32)
            return ocra_err_set(err, EINVAL, "abi: value %zu: padding past the end", i);
        out[i] = data + off + 32;
        out_len[i] = (size_t)slen;
    }
    return 0;
}

static void
put_word(struct ocra_buf *b, uint64_t v)
{
    uint8_t w[32] = {0};

    for (size_t i = 0; i < 8; i++)
        w[31 - i] = (uint8_t)(v >> (8 * i));
    ocra_buf_append(b, w, sizeof(w));
}

static void
put_padded(struct ocra_buf *b, const char *s, size_t n)
{
    static const uint8_t zeros[32];

    put_word(b, n);
    ocra_buf_append(b, s, n);
    ocra_buf_append(b, zeros, (32 - n % 32) % 32);
}

uint8_t *
ocra_evm_abi_call_2str(const char *signature, const char *a, size_t a_len, const char *b,
                       size_t b_len, size_t *out_len)
{
    struct ocra_buf buf;
    uint8_t h[32];

    ocra_keccak256(signature, strlen(signature), h);
    ocra_buf_init(&buf);
    ocra_buf_append(&buf, h, 4);
    put_word(&buf, 64);
    put_word(&buf, 64 + 32 + (a_len + 31) / 32 * 32);
    put_padded(&buf, a, a_len);
    put_padded(&buf, b, b_len);
    *out_len = buf.len;
    return (uint8_t *)ocra_buf_take(&buf);
}

uint8_t *
ocra_evm_abi_call_b32_str(const char *signature, const uint8_t word[32], const char *s,
                          size_t s_len, size_t *out_len)
{
    struct ocra_buf buf;
    uint8_t h[32];

    ocra_keccak256(signature, strlen(signature), h);
    ocra_buf_init(&buf);
    ocra_buf_append(&buf, h, 4);
    ocra_buf_append(&buf, word, 32);
    put_word(&buf, 64);
    put_padded(&buf, s, s_len);
    *out_len = buf.len;
    return (uint8_t *)ocra_buf_take(&buf);
}

static bool
topic_valid(const char *t)
{
    return t && strlen(t) == 66 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X') &&
           ocra_hex_is(t + 2, 64);
}

int
ocra_evm_decode_published(const char *const *topics, size_t n_topics, const uint8_t *data,
                          size_t len, struct ocra_evm_published *out, struct ocra_err *err)
{
    const char *topic0 = OCRA_EVM_TOPIC_MODEL_PUBLISHED;
    const uint8_t *vals[2];
    size_t lens[2];
    uint8_t word[32], h[32];
    char name_hash[67] = "0x";

    if (n_topics != 3)
        return ocra_err_set(err, EINVAL, "log has %zu topics, ModelPublished has 3", n_topics);
    for (size_t i = 0; i < 3; i++)
        if (!topic_valid(topics[i]))
            return ocra_err_set(err, EINVAL, "topic %zu is not 32 bytes of hex", i);
    if (strcasecmp(topics[0], topic0) != 0)
        return ocra_err_set(err, EINVAL, "topic0 %.66s is not ModelPublished", topics[0]);
    if (ocra_hex_decode(topics[2], word, sizeof(word), err) < 0)
        return -1;
    for (size_t i = 0; i < 12; i++)
        if (word[i])
            return ocra_err_set(err, EINVAL, "publisher topic %.66s is not an address", topics[2]);
    if (ocra_evm_abi_strings(data, len, 2, vals, lens, err) < 0)
        return -1;
    ocra_keccak256(vals[0], lens[0], h);
    ocra_hex_encode(h, sizeof(h), name_hash + 2);
    if (strcasecmp(name_hash, topics[1]) != 0)
        return ocra_err_set(err, EINVAL, "nameHash topic %.66s is not keccak256(name) %s",
                            topics[1], name_hash);
    memcpy(out->name_hash, name_hash, sizeof(out->name_hash));
    ocra_chain_address_format(word + 12, out->publisher);
    out->name = vals[0];
    out->name_len = lens[0];
    out->spec = vals[1];
    out->spec_len = lens[1];
    return 0;
}
