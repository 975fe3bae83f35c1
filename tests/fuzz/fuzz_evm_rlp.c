/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_evm_rlp.c: feeds arbitrary bytes to the RLP decoder, walking lists to a bounded
 * depth. Besides memory errors it checks the decoder's promises: every item lies inside its
 * parent, and an item it accepts is canonical, so encoding it again gives back exactly the
 * bytes it was decoded from. Any broken promise aborts.
 */
#include "chain/evm/evm.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
walk(const uint8_t *p, size_t len, int depth)
{
    size_t off = 0;

    while (off < len && depth < 16) {
        struct ocra_evm_rlp_item it;
        struct ocra_buf b;
        size_t used = 0;

        if (ocra_evm_rlp_decode(p + off, len - off, &it, &used, NULL) < 0)
            return;
        if (used == 0 || used > len - off || it.p < p + off || it.p + it.len > p + off + used)
            abort();
        ocra_buf_init(&b);
        if (it.list)
            ocra_evm_rlp_list_header(&b, it.len);
        else
            ocra_evm_rlp_bytes(&b, it.p, it.len);
        if (it.list)
            ocra_buf_append(&b, it.p, it.len);
        if (b.len != used || memcmp(b.data, p + off, used) != 0)
            abort(); /* accepted but not canonical */
        ocra_buf_fini(&b);
        if (it.list)
            walk(it.p, it.len, depth + 1);
        off += used;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *d = malloc(size ? size : 1);

    memcpy(d, data, size);
    walk(d, size, 0);
    free(d);
    return 0;
}
