/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_ain_ws.c: text frames from an AIN event WebSocket (hostile or broken) through the
 * frame handler the client uses; no socket is opened.
 */
#include "chain/ain/ain_int.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct ocra_ain_ws *ws;

    if (!ws) {
        struct ocra_ain_ws_opts o = {.url = "ws://127.0.0.1:9"};

        ocra_log_setup(OCRA_LOG_ERROR, OCRA_LOG_TEXT);
        ws = ocra_ain_ws_new(&o, NULL);
        if (!ws)
            abort();
    }
    ocra_ain_ws_feed(ws, (const char *)data, size);
    ocra_ain_ws_drop_queue(ws);
    return 0;
}
