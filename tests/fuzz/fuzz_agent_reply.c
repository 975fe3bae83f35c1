/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_agent_reply: the daemon's reply is hostile input to ocra-agent, which runs in every
 * model image. Its hand-written parser (agent/agent_proto.c) must never read past the given
 * length, crash or hang; an accepted reply holds only printable ASCII, terminated within its
 * buffers, and a bounded heartbeat.
 */
#include "agent_proto.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A fuzzing invariant: checked in every build (assert() would vanish under NDEBUG). */
#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
require_printable(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);

    REQUIRE(n < cap);
    for (size_t i = 0; i < n; i++)
        REQUIRE((unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ocra_agent_reply r;
    char *copy = malloc(size ? size : 1);

    if (!copy)
        return 0;
    memcpy(copy, data, size); /* exactly the reply's bytes: overreads show */
    if (ocra_agent_reply_parse(copy, size, &r) == 0) {
        require_printable(r.current, sizeof(r.current));
        require_printable(r.error, sizeof(r.error));
        REQUIRE(r.heartbeat_s >= 0 && r.heartbeat_s <= 1000000000L);
        REQUIRE(r.status >= OCRA_AGENT_NO_STATUS && r.status <= OCRA_AGENT_UNKNOWN);
    }
    free(copy);
    return 0;
}
