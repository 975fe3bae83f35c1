/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agent_proto: the agent's half of the protocol text (docs/AGENT.md), libc only: a bounded
 * builder of request lines with JSON string escaping, and a strict parser of the daemon's
 * reply, which it treats as hostile. Kept apart from agent.c so that agent_test and
 * fuzz_agent_reply exercise exactly the code the static agent runs.
 */
#ifndef OCRA_AGENT_PROTO_H
#define OCRA_AGENT_PROTO_H

#include <stdbool.h>
#include <stddef.h>

#define OCRA_AGENT_LINE_MAX 2048  /* a request line (the daemon accepts up to 4096) */
#define OCRA_AGENT_REPLY_MAX 1024 /* a reply line, newline included */
#define OCRA_AGENT_VERSION_MAX 64

/* A request line being built; once anything does not fit, full is set (the line is then not
 * to be sent) and nothing more is appended. Zero it to start. */
struct ocra_agent_line {
    char buf[OCRA_AGENT_LINE_MAX];
    size_t n;
    bool full;
};

void ocra_agent_line_printf(struct ocra_agent_line *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends `,"key":"value"`, val escaped for JSON (control and non-ASCII bytes as \u00XX). */
void ocra_agent_line_str(struct ocra_agent_line *l, const char *key, const char *val);

enum ocra_agent_status {
    OCRA_AGENT_NO_STATUS = -1,
    OCRA_AGENT_CURRENT,
    OCRA_AGENT_SUPERSEDED,
    OCRA_AGENT_UNKNOWN,
};

/* A reply. Strings hold printable ASCII only (anything else became '?'), cut to fit. */
struct ocra_agent_reply {
    bool ok;                                  /* "ok": true */
    enum ocra_agent_status status;            /* "status"; NO_STATUS when absent or unknown */
    long heartbeat_s;                         /* "heartbeat_s"; 0 when absent */
    char current[OCRA_AGENT_VERSION_MAX + 1]; /* "current"; "" when absent or too long */
    char error[200];                          /* "error" */
};

/*
 * Parses a reply line of len bytes (without its newline): one flat JSON object of strings,
 * non-negative integers up to 10^9, booleans and null. Nested values, fractions, exponents,
 * control characters in strings, bad escapes and trailing text are refused. Unknown members
 * are ignored. Returns 0, or -1 (r is then unspecified).
 */
int ocra_agent_reply_parse(const char *text, size_t len, struct ocra_agent_reply *r);

#define OCRA_AGENT_LOAD_FILE "/tmp/ocra-load" /* told to the workload as OCRA_LOAD_FILE */
#define OCRA_AGENT_LOAD_MAX 1000000000LL      /* the largest load a heartbeat carries */
#define OCRA_AGENT_LOAD_TEXT_MAX 32           /* bytes of the load file read at most */

/*
 * Parses the load file's content (len bytes): the workload's requests in flight plus queued,
 * a decimal integer 0..OCRA_AGENT_LOAD_MAX without sign or leading zeros (but "0"), optionally
 * surrounded by spaces, tabs and newlines. Returns 0 and sets *load, or -1 (*load untouched).
 */
int ocra_agent_load_parse(const char *text, size_t len, long long *load);

#endif
