/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_agent_proto: a request line from an in-image agent is hostile input to the daemon
 * (docs/AGENT.md). The parser must never read out of bounds, leak or crash; a failure must
 * carry a message; an accepted message must hold only what the protocol allows: strings
 * NUL-terminated within their bounds and of their grammar, numbers within their ranges.
 */
#include "agentd/agentd.h"

#include <errno.h>
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
require_token(const char *s, size_t cap, bool may_be_empty)
{
    size_t n = strnlen(s, cap);

    REQUIRE(n < cap);
    REQUIRE(n > 0 || may_be_empty);
    for (size_t i = 0; i < n; i++)
        REQUIRE(s[i] > 0x20 && s[i] < 0x7f);
}

static void
check(const struct ocra_agentd_msg *m)
{
    REQUIRE(ocra_agentd_type_name(m->type) != NULL);
    require_token(m->event, sizeof(m->event), false);
    require_token(m->model, sizeof(m->model), false);
    require_token(m->version, sizeof(m->version), false);
    require_token(m->instance, sizeof(m->instance), false);
    require_token(m->host, sizeof(m->host), true);
    REQUIRE(m->model[0] != '.' && m->model[0] != '-' && m->model[0] != '_');
    REQUIRE(strspn(m->model, "abcdefghijklmnopqrstuvwxyz0123456789._-") == strlen(m->model));
    REQUIRE(m->time_ms > 0);
    REQUIRE(m->type != OCRA_AGENTD_STARTED || m->pid > 0);
    REQUIRE(m->uptime_ms >= 0 && m->duration_ms >= 0);
    REQUIRE(m->load >= 0 && m->load <= OCRA_AGENTD_LOAD_MAX);
    REQUIRE(!m->has_load || m->type == OCRA_AGENTD_HEARTBEAT);
    require_token(m->current, sizeof(m->current), true);
    REQUIRE(m->type == OCRA_AGENTD_REFUSED ? strcmp(m->reason, "superseded") == 0
                                           : m->reason[0] == '\0' && m->current[0] == '\0');
    if (m->type == OCRA_AGENTD_COMPLETED)
        REQUIRE((m->exit_code >= 0 && m->exit_code <= 255 && m->signal == 0) ||
                (m->exit_code == -1 && m->signal >= 1 && m->signal <= 64));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ocra_err err = {0};
    struct ocra_agentd_msg m;
    char *copy = malloc(size ? size : 1);

    if (!copy)
        return 0;
    memcpy(copy, data, size); /* exactly the line's bytes: overreads show */
    if (ocra_agentd_msg_parse(copy, size, &m, &err) == 0)
        check(&m);
    else
        REQUIRE(err.code == EPROTO && err.msg[0] != '\0');
    free(copy);
    return 0;
}
