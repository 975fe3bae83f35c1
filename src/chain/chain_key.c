/* SPDX-License-Identifier: Apache-2.0 */
/*
 * chain_key.c: secp256k1 keys over libsecp256k1's recovery module, and EIP-55 addresses.
 */
#include "chain/chain.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <secp256k1.h>
#include <secp256k1_recovery.h>

struct ocra_chain_key {
    uint8_t secret[32];
    char address[OCRA_CHAIN_ADDR_LEN + 1];
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
ocra_chain_address_format(const uint8_t addr[20], char out[OCRA_CHAIN_ADDR_LEN + 1])
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
ocra_chain_address_valid(const char *s)
{
    return s && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') && ocra_hex_is(s + 2, 40);
}

bool
ocra_chain_address_equal(const char *a, const char *b)
{
    return ocra_chain_address_valid(a) && ocra_chain_address_valid(b) &&
           strncasecmp(a + 2, b + 2, 40) == 0;
}

/* Address of a public key: last 20 bytes of keccak256(X || Y). */
static void
pubkey_address(const secp256k1_pubkey *pub, char out[OCRA_CHAIN_ADDR_LEN + 1])
{
    uint8_t ser[65], h[32];
    size_t len = sizeof(ser);

    secp256k1_ec_pubkey_serialize(secp(), ser, &len, pub, SECP256K1_EC_UNCOMPRESSED);
    ocra_keccak256(ser + 1, 64, h);
    ocra_chain_address_format(h + 12, out);
}

struct ocra_chain_key *
ocra_chain_key_from_hex(const char *hex, struct ocra_err *err)
{
    struct ocra_chain_key *key = ocra_xcalloc(1, sizeof(*key));
    secp256k1_pubkey pub;

    if (ocra_hex_decode(hex, key->secret, sizeof(key->secret), NULL) < 0) {
        ocra_chain_key_free(key);
        ocra_err_set(err, EINVAL, "private key: want 64 hex digits");
        return NULL;
    }
    if (!secp256k1_ec_seckey_verify(secp(), key->secret) ||
        !secp256k1_ec_pubkey_create(secp(), &pub, key->secret)) {
        ocra_chain_key_free(key);
        ocra_err_set(err, EINVAL, "private key: not a valid secp256k1 secret");
        return NULL;
    }
    pubkey_address(&pub, key->address);
    return key;
}

struct ocra_chain_key *
ocra_chain_key_load(const char *path, struct ocra_err *err)
{
    struct ocra_chain_key *key = NULL;
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
    key = ocra_chain_key_from_hex(start, err);
    if (!key)
        ocra_err_wrap(err, "key file %s", path);
    ocra_secure_free(text, len);
    return key;
}

void
ocra_chain_key_free(struct ocra_chain_key *key)
{
    ocra_secure_free(key, sizeof(*key));
}

const char *
ocra_chain_key_address(const struct ocra_chain_key *key)
{
    return key->address;
}

int
ocra_chain_sign(const struct ocra_chain_key *key, const uint8_t hash[32], uint8_t rs[64],
                int *recid, struct ocra_err *err)
{
    secp256k1_ecdsa_recoverable_signature sig;

    /* NULL nonce function: RFC 6979; libsecp256k1 always emits low-S. */
    if (!secp256k1_ecdsa_sign_recoverable(secp(), &sig, hash, key->secret, NULL, NULL))
        return ocra_err_set(err, EINVAL, "sign: libsecp256k1 refused the key");
    secp256k1_ecdsa_recoverable_signature_serialize_compact(secp(), rs, recid, &sig);
    return 0;
}

int
ocra_chain_recover(const uint8_t hash[32], const uint8_t rs[64], int recid,
                   char addr[OCRA_CHAIN_ADDR_LEN + 1], struct ocra_err *err)
{
    secp256k1_ecdsa_recoverable_signature sig;
    secp256k1_pubkey pub;

    if (recid < 0 || recid > 3 ||
        !secp256k1_ecdsa_recoverable_signature_parse_compact(secp(), &sig, rs, recid) ||
        !secp256k1_ecdsa_recover(secp(), &pub, &sig, hash))
        return ocra_err_set(err, EINVAL, "signature: no public key recovers from it");
    pubkey_address(&pub, addr);
    return 0;
}
