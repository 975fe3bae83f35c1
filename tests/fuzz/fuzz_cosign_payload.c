/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_cosign_payload.c: a signature payload as a registry serves it (hostile) through the
 * check `ocra verify` makes: well-formed JSON of the simple signing type naming the expected
 * repository and digest, or a precise error.
 */
#include "image/image.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char digest[] =
        "sha256:0b09377229b689595dd3616d6088396bdae7caa9a52e9f7b09cab623f4e1d029";
    struct ocra_err err = {0};

    if (ocra_image_sig_payload_check((const char *)data, size, "127.0.0.1:5000/demo/model", digest,
                                     &err) < 0 &&
        err.msg[0] == '\0')
        abort(); /* every rejection explains itself */
    return 0;
}
