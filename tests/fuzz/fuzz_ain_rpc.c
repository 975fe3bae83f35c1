/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_ain_rpc.c: JSON-RPC replies of an AIN node (hostile or broken) through the parser
 * the client uses. The first byte picks the HTTP status; the rest is the body.
 */
#include "chain/ain/ain_int.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const long statuses[] = {200, 200, 200, 200, 500, 503, 429, 404};
    struct ocra_err err = {0};
    int64_t code = 0;
    bool retry = false;
    json_t *v;

    if (size < 1)
        return 0;
    v = ocra_ain_rpc_parse_reply("ain_fuzz", statuses[data[0] % 8], (const char *)data + 1,
                                 size - 1, &code, &retry, &err);
    if (!v && err.msg[0] == '\0')
        abort(); /* every failure explains itself */
    json_decref(v);
    return 0;
}
