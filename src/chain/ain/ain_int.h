/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ain_int.h: internals of src/chain/ain shared by its files and its fuzz targets: the parsers
 * of what the node sends, callable without a network.
 */
#ifndef OCRA_AIN_INT_H
#define OCRA_AIN_INT_H

#include "chain/ain/ain.h"

/*
 * Interprets one JSON-RPC reply (HTTP status and body) to method. Returns `result.result`
 * (new reference) or NULL with err; *retry says whether another attempt may help, *node_code
 * (may be NULL) receives a node error's code.
 */
json_t *ocra_ain_rpc_parse_reply(const char *method, long status, const char *body, size_t len,
                                 int64_t *node_code, bool *retry, struct ocra_err *err);

/* Handles one complete text frame from the node as ocra_ain_ws_wait() does. */
void ocra_ain_ws_feed(struct ocra_ain_ws *ws, const char *text, size_t len);
/* Drops the queued outgoing messages (for fuzzing without a socket). */
void ocra_ain_ws_drop_queue(struct ocra_ain_ws *ws);

#endif
