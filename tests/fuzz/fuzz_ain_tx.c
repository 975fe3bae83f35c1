/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_ain_tx.c: a transaction as a block carries it ({tx_body, signature, ...}) through the
 * stable-stringify, hash and signer-recovery path. Checks that stable-stringify output is
 * canonical: it parses back (numbers read as JavaScript reads them) and stringifies to the same
 * bytes.
 */
#include "chain/ain/ain.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char addr[OCRA_CHAIN_ADDR_LEN + 1], hash[67], *s1, *s2;
    json_t *tx = ocra_json_parse((const char *)data, size, OCRA_JSON_JS_NUMBERS, NULL), *again;

    if (!tx)
        return 0;
    s1 = ocra_ain_stringify(tx);
    again = ocra_json_parse(s1, strlen(s1), OCRA_JSON_JS_NUMBERS, NULL);
    if (!again)
        abort(); /* stable-stringify must emit JSON */
    s2 = ocra_ain_stringify(again);
    /* Reals may round once through the JS formatting; after that the text is a fixed point. */
    json_decref(again);
    again = ocra_json_parse(s2, strlen(s2), OCRA_JSON_JS_NUMBERS, NULL);
    free(s1);
    s1 = ocra_ain_stringify(again);
    if (strcmp(s1, s2) != 0)
        abort();
    ocra_ain_tx_hash_hex(json_object_get(tx, "tx_body"), hash);
    (void)ocra_ain_verify(json_object_get(tx, "tx_body"), ocra_json_str(tx, "signature"), 0, addr,
                          NULL);
    free(s1);
    free(s2);
    json_decref(again);
    json_decref(tx);
    return 0;
}
