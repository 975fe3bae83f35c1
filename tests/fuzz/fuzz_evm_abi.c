/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_evm_abi.c: feeds arbitrary bytes to the ABI decoding of ModelPublished logs. The first
 * byte picks how many dynamic strings the data holds (1..4); the rest is the data. Besides
 * memory errors (ASan/UBSan, and a copy of the data in its own allocation so that any
 * over-read is caught), it checks the decoder's promise: every value it returns lies inside
 * the data. The same bytes go through ocra_evm_decode_published with well-formed topics,
 * through the scanner's log judging as a log's hex data, and through the naming of revert data
 * (a custom error's selector and arguments), whose text must stay inside its buffer. Any
 * broken promise aborts.
 */
#include "chain/evm/evm_int.h"

#include <stdlib.h>
#include <string.h>

#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_strings(const uint8_t *d, size_t n, size_t count)
{
    const uint8_t *vals[4];
    size_t lens[4];

    if (ocra_evm_abi_strings(d, n, count, vals, lens, NULL) < 0)
        return;
    for (size_t i = 0; i < count; i++)
        if (vals[i] < d || lens[i] > n || vals[i] + lens[i] > d + n)
            abort();
}

static void
check_log(const uint8_t *d, size_t n)
{
    static const char *const allow[] = {"0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"};
    struct ocra_evm_scan_ctx c = {.source = "evm:1",
                                  .contract = "0x5FbDB2315678afecb367f032d93F642f64180aa3",
                                  .allow = allow,
                                  .n_allow = 1,
                                  .to = 10};
    struct ocra_evm_range r = {0};
    char *hex = malloc(2 * n + 3);
    json_t *log;

    hex[0] = '0';
    hex[1] = 'x';
    ocra_hex_encode(d, n, hex + 2);
    log = json_pack(
        "{s:s,s:s,s:s,s:s,s:s,s:[s,s,s],s:s}", "address", c.contract, "blockNumber", "0x1",
        "logIndex", "0x0", "blockHash",
        "0x1111111111111111111111111111111111111111111111111111111111111111", "transactionHash",
        "0x2222222222222222222222222222222222222222222222222222222222222222", "topics",
        OCRA_EVM_TOPIC_MODEL_PUBLISHED,
        "0x3333333333333333333333333333333333333333333333333333333333333333",
        "0x000000000000000000000000f39fd6e51aad88f6f4ce6ab8827279cfffb92266", "data", hex);
    if (ocra_evm_log_event(&c, &r, log, NULL) < 0 || r.n != 1)
        abort(); /* a well-formed envelope always gives an event */
    if (strcmp(r.evs[0].status, "accepted") == 0 && !r.evs[0].trusted)
        abort();
    ocra_evm_range_fini(&r);
    json_decref(log);
    free(hex);
}

static void
check_revert(const uint8_t *d, size_t n)
{
    char out[64];

    memset(out, 'x', sizeof(out));
    if (ocra_evm_revert_describe(d, n, out, sizeof(out)) && !memchr(out, '\0', sizeof(out)))
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *d;
    size_t n;

    if (size == 0)
        return 0;
    n = size - 1;
    d = malloc(n ? n : 1); /* exactly n bytes: ASan sees any read past them */
    memcpy(d, data + 1, n);
    check_strings(d, n, (size_t)(data[0] % 4) + 1);
    check_log(d, n);
    check_revert(d, n);
    free(d);
    return 0;
}
