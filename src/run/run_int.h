/* SPDX-License-Identifier: Apache-2.0 */
/*
 * run_int.h: what the files of the run module share with each other and with run_test.c:
 * the demultiplexer of the Engine API's log stream, which the unit tests feed directly.
 */
#ifndef OCRA_RUN_INT_H
#define OCRA_RUN_INT_H

#include "run/run.h"

/*
 * Appends the payloads of a multiplexed log stream (frames of an 8-byte header: stream type
 * 0, 1 or 2, three zero bytes, a big-endian 32-bit size; then that many bytes) to out, in
 * order. EPROTO on an unknown stream type, nonzero padding or a truncated frame; out then
 * holds the frames before the bad one.
 */
int ocra_run_docker_demux(const void *data, size_t len, struct ocra_buf *out, struct ocra_err *err);

#endif
