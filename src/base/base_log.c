/* SPDX-License-Identifier: Apache-2.0 */
/*
 * base_log.c: one log API, one line per event on stderr, as text for people or as JSON lines
 * for machines (--log-format json). `key=value` tokens in a message become JSON fields.
 */
#include "base/base.h"

#include <stdio.h>
#include <string.h>

static enum ocra_log_level log_level = OCRA_LOG_INFO;
static enum ocra_log_format log_format = OCRA_LOG_TEXT;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void
ocra_log_setup(enum ocra_log_level level, enum ocra_log_format format)
{
    log_level = level;
    log_format = format;
}

int
ocra_log_format_parse(const char *s, enum ocra_log_format *out)
{
    if (strcmp(s, "text") == 0)
        *out = OCRA_LOG_TEXT;
    else if (strcmp(s, "json") == 0)
        *out = OCRA_LOG_JSON;
    else
        return -1;
    return 0;
}

int
ocra_log_level_parse(const char *s, enum ocra_log_level *out)
{
    for (size_t i = 0; i < OCRA_ARRAY_LEN(level_names); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum ocra_log_level)i;
            return 0;
        }
    }
    return -1;
}

/* Adds each `key=value` token (key: [a-z0-9_.]+, value up to the next space) as a field. */
static void
add_fields(json_t *obj, const char *msg)
{
    const char *p = msg;

    while (*p) {
        const char *tok = p, *eq = NULL, *end;

        while (*p && *p != ' ') {
            if (*p == '=' && !eq)
                eq = p;
            p++;
        }
        end = p;
        while (*p == ' ')
            p++;
        if (!eq || eq == tok)
            continue;
        bool key_ok = true;
        for (const char *k = tok; k < eq; k++)
            if (!((*k >= 'a' && *k <= 'z') || (*k >= '0' && *k <= '9') || *k == '_' || *k == '.'))
                key_ok = false;
        if (!key_ok)
            continue;
        char *key = ocra_xstrndup(tok, (size_t)(eq - tok));
        if (strcmp(key, "ts") != 0 && strcmp(key, "level") != 0 && strcmp(key, "msg") != 0)
            json_object_set_new(obj, key, json_stringn(eq + 1, (size_t)(end - eq - 1)));
        free(key);
    }
}

/* msg as one line: control bytes (a build log's newlines, a tab) as \n, \r, \t or \xNN, so one
 * entry is one line of text; UTF-8 is kept as it is. Cut at out's size. */
static const char *
one_line(const char *msg, char *out, size_t size)
{
    size_t o = 0;

    for (const unsigned char *p = (const unsigned char *)msg; *p && o + 5 < size; p++) {
        if (*p >= 0x20 && *p != 0x7f) {
            out[o++] = (char)*p;
            continue;
        }
        out[o++] = '\\';
        switch (*p) {
        case '\n':
            out[o++] = 'n';
            break;
        case '\r':
            out[o++] = 'r';
            break;
        case '\t':
            out[o++] = 't';
            break;
        default:
            o += (size_t)snprintf(out + o, size - o, "x%02x", *p);
        }
    }
    out[o] = '\0';
    return out;
}

void
ocra_log(enum ocra_log_level level, const char *fmt, ...)
{
    char msg[OCRA_ERR_MAX * 2], ts[32];
    va_list ap;

    if (level > log_level)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap); /* a long line is cut, not lost */
    va_end(ap);
    ocra_time_iso8601(ocra_time_wall_ms(), ts, sizeof(ts));
    if (log_format == OCRA_LOG_JSON) {
        json_t *obj = json_object();
        char *line;

        json_object_set_new(obj, "ts", json_string(ts));
        json_object_set_new(obj, "level", json_string(level_names[level]));
        /* A message with invalid UTF-8 still logs, with the bad bytes escaped. */
        if (ocra_utf8_valid(msg, strlen(msg))) {
            json_object_set_new(obj, "msg", json_string(msg));
        } else {
            char esc[sizeof(msg) * 2];
            json_object_set_new(
                obj, "msg",
                json_string(ocra_str_escape(msg, strlen(msg), sizeof(msg), esc, sizeof(esc))));
        }
        add_fields(obj, msg);
        line = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (line)
            fprintf(stderr, "%s\n", line);
        free(line);
        json_decref(obj);
    } else {
        char line[sizeof(msg) * 2];

        fprintf(stderr, "%s %s %s\n", ts, level_names[level], one_line(msg, line, sizeof(line)));
    }
}
