/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ain_tx.c: AIN transaction hashing, signing and signer recovery over libsecp256k1's
 * recovery module, and EIP-55 addresses.
 */
#include "chain/ain/ain.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <secp256k1.h>
#include <secp256k1_recovery.h>

struct ocra_ain_key {
    uint8_t secret[32];
    char address[OCRA_AIN_ADDR_LEN + 1];
};

static secp256k1_context *secp_ctx;
static pthread_once_t secp_once = PTHREAD_ONCE_INIT;

static void
secp_init(void)
{
    secp_ctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    if (!secp_ctx)
        abort();
}

static secp256k1_context *
secp(void)
{
    pthread_once(&secp_once, secp_init);
    return secp_ctx;
}

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

void
ocra_ain_address_format(const uint8_t addr[20], char out[OCRA_AIN_ADDR_LEN + 1])
{
    uint8_t h[32];
    char *hex = out + 2;

    out[0] = '0';
    out[1] = 'x';
    ocra_hex_encode(addr, 20, hex);
    ocra_keccak256(hex, 40, h);
    /* EIP-55: a letter is upper case when its nibble of keccak256(lowercase hex) is >= 8. */
    for (size_t i = 0; i < 40; i++) {
        uint8_t nibble = i % 2 ? h[i / 2] & 0xf : h[i / 2] >> 4;

        if (hex[i] >= 'a' && nibble >= 8)
            hex[i] = (char)toupper((unsigned char)hex[i]);
    }
}

bool
ocra_ain_address_valid(const char *s)
{
    return s && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') && ocra_hex_is(s + 2, 40);
}

bool
ocra_ain_address_equal(const char *a, const char *b)
{
    return ocra_ain_address_valid(a) && ocra_ain_address_valid(b) &&
           strncasecmp(a + 2, b + 2, 40) == 0;
}

/* Address of a public key: last 20 bytes of keccak256(X || Y). */
static void
pubkey_address(const secp256k1_pubkey *pub, char out[OCRA_AIN_ADDR_LEN + 1])
{
    uint8_t ser[65], h[32];
    size_t len = sizeof(ser);

    secp256k1_ec_pubkey_serialize(secp(), ser, &len, pub, SECP256K1_EC_UNCOMPRESSED);
    ocra_keccak256(ser + 1, 64, h);
    ocra_ain_address_format(h + 12, out);
}

struct ocra_ain_key *
ocra_ain_key_from_hex(const char *hex, struct ocra_err *err)
{
    struct ocra_ain_key *key = ocra_xcalloc(1, sizeof(*key));
    secp256k1_pubkey pub;

    if (ocra_hex_decode(hex, key->secret, sizeof(key->secret), err) < 0) {
        ocra_ain_key_free(key);
        ocra_err_set(err, EINVAL, "private key: want 64 hex digits");
        return NULL;
    }
    if (!secp256k1_ec_seckey_verify(secp(), key->secret) ||
        !secp256k1_ec_pubkey_create(secp(), &pub, key->secret)) {
        ocra_ain_key_free(key);
        ocra_err_set(err, EINVAL, "private key: not a valid secp256k1 secret");
        return NULL;
    }
    pubkey_address(&pub, key->address);
    return key;
}

struct ocra_ain_key *
ocra_ain_key_load(const char *path, struct ocra_err *err)
{
    struct ocra_ain_key *key = NULL;
    char *text = NULL, *start, *end;
    struct stat st;
    size_t len = 0;

    if (stat(path, &st) == 0 && (st.st_mode & 077)) {
        ocra_err_set(err, EACCES, "key file %s: readable by group or others (chmod 600 it)", path);
        return NULL;
    }
    if (ocra_file_read(path, 4096, &text, &len, err) < 0)
        return NULL;
    for (start = text; isspace((unsigned char)*start); start++)
        ;
    for (end = start + strlen(start); end > start && isspace((unsigned char)end[-1]); end--)
        ;
    *end = '\0';
    key = ocra_ain_key_from_hex(start, err);
    if (!key)
        ocra_err_wrap(err, "key file %s", path);
    ocra_secure_free(text, len);
    return key;
}

void
ocra_ain_key_free(struct ocra_ain_key *key)
{
    ocra_secure_free(key, sizeof(*key));
}

const char *
ocra_ain_key_address(const struct ocra_ain_key *key)
{
    return key->address;
}

/* v byte(s) for a recovery id on chain_id; see the header. */
static int64_t
v_of(int recid, int64_t chain_id)
{
    return chain_id == 0 ? 27 + recid : recid + 2 * chain_id + 35;
}

char *
ocra_ain_sign(const struct ocra_ain_key *key, const json_t *tx_body, int64_t chain_id,
              struct ocra_err *err)
{
    secp256k1_ecdsa_recoverable_signature sig;
    uint8_t hash[32], rs[64];
    char hex[129], hash_hex[65];
    int recid = 0;
    int64_t v;

    if (chain_id < 0 || chain_id > 100) {
        ocra_err_set(err, EINVAL, "chain_id %lld: want 0..100", (long long)chain_id);
        return NULL;
    }
    ocra_ain_tx_hash(tx_body, hash);
    /* NULL nonce function: RFC 6979; libsecp256k1 always emits low-S. */
    if (!secp256k1_ecdsa_sign_recoverable(secp(), &sig, hash, key->secret, NULL, NULL)) {
        ocra_err_set(err, EINVAL, "sign: libsecp256k1 refused the key");
        return NULL;
    }
    secp256k1_ecdsa_recoverable_signature_serialize_compact(secp(), rs, &recid, &sig);
    ocra_hex_encode(hash, 32, hash_hex);
    ocra_hex_encode(rs, 64, hex);
    v = v_of(recid, chain_id);
    return ocra_xasprintf("0x%s%s%02llx", hash_hex, hex, (long long)v);
}

int
ocra_ain_verify(const json_t *tx_body, const char *signature, int64_t chain_id,
                char addr[OCRA_AIN_ADDR_LEN + 1], struct ocra_err *err)
{
    secp256k1_ecdsa_recoverable_signature sig;
    secp256k1_pubkey pub;
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
    if (!secp256k1_ecdsa_recoverable_signature_parse_compact(secp(), &sig, raw + 32, recid) ||
        !secp256k1_ecdsa_recover(secp(), &pub, &sig, hash))
        return ocra_err_set(err, EINVAL, "signature: no public key recovers from it");
    pubkey_address(&pub, addr);
    return 0;
}
