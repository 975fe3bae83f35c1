/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agent_proto.c: request lines and the reply parser of ocra-agent (agent_proto.h). The reply
 * parser is a hand-written, bounded, single-pass reader of one flat JSON object: the daemon
 * sends nothing else, and everything else is refused rather than half understood.
 */
#include "agent_proto.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- request lines ----------------------------------------------------------------- */

void
ocra_agent_line_printf(struct ocra_agent_line *l, const char *fmt, ...)
{
    va_list ap;
    int r;

    if (l->full)
        return;
    va_start(ap, fmt);
    r = vsnprintf(l->buf + l->n, sizeof(l->buf) - l->n, fmt, ap);
    va_end(ap);
    if (r < 0 || (size_t)r >= sizeof(l->buf) - l->n)
        l->full = true;
    else
        l->n += (size_t)r;
}

/* Appends `,"key":"value"` with JSON escaping (the values are checked ASCII already). */
void
ocra_agent_line_str(struct ocra_agent_line *l, const char *key, const char *val)
{
    ocra_agent_line_printf(l, ",\"%s\":\"", key);
    for (; *val; val++) {
        unsigned char ch = (unsigned char)*val;

        if (ch == '"' || ch == '\\')
            ocra_agent_line_printf(l, "\\%c", ch);
        else if (ch < 0x20 || ch >= 0x7f)
            ocra_agent_line_printf(l, "\\u%04x", ch);
        else
            ocra_agent_line_printf(l, "%c", ch);
    }
    ocra_agent_line_printf(l, "\"");
}

/* ---- the reply --------------------------------------------------------------------- */

struct cursor {
    const char *p, *end;
};

static void
ws(struct cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\r' || *c->p == '\n'))
        c->p++;
}

static int
hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* A JSON string into out (size cap; longer is cut). Only printable ASCII is kept: anything else,
 * escaped (\n, \u00e9) or not, becomes '?', so no reply can write control bytes to a terminal. */
static int
jstring(struct cursor *c, char *out, size_t cap)
{
    size_t o = 0;

    if (c->p >= c->end || *c->p++ != '"')
        return -1;
    while (c->p < c->end && *c->p != '"') {
        unsigned char ch = (unsigned char)*c->p++;

        if (ch < 0x20)
            return -1;
        if (ch == '\\') {
            const char *esc = "\"\"\\\\//b\bf\fn\nr\rt\t", *m;

            if (c->p >= c->end)
                return -1;
            if (*c->p == 'u') {
                int v = 0;

                for (int i = 1; i <= 4; i++) {
                    if (c->p + i >= c->end || hexval(c->p[i]) < 0)
                        return -1;
                    v = v * 16 + hexval(c->p[i]);
                }
                c->p += 5;
                ch = v < 0x80 ? (unsigned char)v : '?';
            } else {
                for (m = esc; *m && *m != *c->p; m += 2)
                    ;
                if (!*m)
                    return -1;
                ch = (unsigned char)m[1];
                c->p++;
            }
        }
        if (o + 1 < cap)
            out[o++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?'; /* it may reach a terminal */
    }
    if (c->p >= c->end)
        return -1;
    c->p++;
    out[o] = '\0';
    return 0;
}

/* One value: a string (into s, *kind 's'), an integer (into *num, 'n'), true, false or null
 * ('t', 'f', 'z'). Nested values, negative and non-integer numbers are refused: no reply of
 * the protocol has them. */
static int
jvalue(struct cursor *c, char *s, size_t cap, long *num, char *kind)
{
    static const char *const words[] = {"true", "false", "null"};
    static const char kinds[] = {'t', 'f', 'z'};

    if (c->p < c->end && *c->p == '"') {
        *kind = 's';
        return jstring(c, s, cap);
    }
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(words[i]);

        if ((size_t)(c->end - c->p) >= n && memcmp(c->p, words[i], n) == 0) {
            c->p += n;
            *kind = kinds[i];
            return 0;
        }
    }
    *kind = 'n';
    *num = 0;
    if (c->p < c->end && *c->p == '-')
        return -1; /* nothing in a reply is negative */
    if (c->p >= c->end || *c->p < '0' || *c->p > '9')
        return -1;
    for (; c->p < c->end && *c->p >= '0' && *c->p <= '9'; c->p++) {
        if (*num > 100000000)
            return -1;
        *num = *num * 10 + (*c->p - '0');
    }
    return 0;
}

/* Copies s into out (size cap), cut to fit. */
static void
copy_cut(char *out, size_t cap, const char *s)
{
    size_t n = strnlen(s, cap - 1);

    memcpy(out, s, n);
    out[n] = '\0';
}

/* Copies s into out (size cap) when it fits whole; else out is "". */
static void
copy_if_fits(char *out, size_t cap, const char *s)
{
    if (strnlen(s, cap) < cap)
        copy_cut(out, cap, s);
    else
        out[0] = '\0';
}

static void
reply_member(struct ocra_agent_reply *r, const char *key, const char *s, long num, char kind)
{
    if (strcmp(key, "ok") == 0)
        r->ok = kind == 't';
    else if (strcmp(key, "status") == 0 && kind == 's')
        r->status = strcmp(s, "current") == 0      ? OCRA_AGENT_CURRENT
                    : strcmp(s, "superseded") == 0 ? OCRA_AGENT_SUPERSEDED
                    : strcmp(s, "unknown") == 0    ? OCRA_AGENT_UNKNOWN
                                                   : OCRA_AGENT_NO_STATUS;
    else if (strcmp(key, "heartbeat_s") == 0 && kind == 'n')
        r->heartbeat_s = num;
    else if (strcmp(key, "current") == 0 && kind == 's')
        copy_if_fits(r->current, sizeof(r->current), s);
    else if (strcmp(key, "error") == 0 && kind == 's')
        copy_cut(r->error, sizeof(r->error), s);
}

int
ocra_agent_reply_parse(const char *text, size_t len, struct ocra_agent_reply *r)
{
    struct cursor c = {text, text + len};
    char key[32], s[256];

    memset(r, 0, sizeof(*r));
    r->status = OCRA_AGENT_NO_STATUS;
    ws(&c);
    if (c.p >= c.end || *c.p++ != '{')
        return -1;
    ws(&c);
    if (c.p < c.end && *c.p == '}')
        c.p++;
    else
        for (;;) {
            long num = 0;
            char kind = 0;

            ws(&c);
            if (jstring(&c, key, sizeof(key)) < 0)
                return -1;
            ws(&c);
            if (c.p >= c.end || *c.p++ != ':')
                return -1;
            ws(&c);
            if (jvalue(&c, s, sizeof(s), &num, &kind) < 0)
                return -1;
            reply_member(r, key, s, num, kind);
            ws(&c);
            if (c.p < c.end && *c.p == ',') {
                c.p++;
                continue;
            }
            if (c.p >= c.end || *c.p++ != '}')
                return -1;
            break;
        }
    ws(&c);
    return c.p == c.end ? 0 : -1;
}

/* ---- the load file ----------------------------------------------------------------- */

static bool
blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

int
ocra_agent_load_parse(const char *text, size_t len, long long *load)
{
    const char *p = text, *end = text + len;
    long long v = 0;

    while (p < end && blank(*p))
        p++;
    while (end > p && blank(end[-1]))
        end--;
    if (p == end || (*p == '0' && end - p > 1))
        return -1;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
        if (v > OCRA_AGENT_LOAD_MAX)
            return -1;
    }
    *load = v;
    return 0;
}
