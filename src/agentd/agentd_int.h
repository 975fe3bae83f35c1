/* SPDX-License-Identifier: Apache-2.0 */
/* agentd_int.h: what the files of src/agentd share: field checks and reply builders. */
#ifndef OCRA_AGENTD_INT_H
#define OCRA_AGENTD_INT_H

#include "agentd/agentd.h"

/*
 * True when s[0..len) is 1..max bytes of class cls: 0 printable ASCII without space (event,
 * version, host), 1 a model name, 2 an instance id.
 */
bool ocra_agentd_str_valid(const char *s, size_t len, size_t max, int cls);

/* Reply lines (newline included, at most OCRA_AGENTD_REPLY_MAX bytes) appended to out. */
void ocra_agentd_reply_ok(struct ocra_buf *out);
void ocra_agentd_reply_error(const char *msg, struct ocra_buf *out);
void ocra_agentd_reply_verdict(const struct ocra_agentd_answer *a, int heartbeat_s,
                               struct ocra_buf *out);

#endif
