/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agentd_proto.c: the messages of the agent protocol (docs/AGENT.md). Requests are parsed
 * with jansson in strict mode (duplicate members rejected) and every member is checked
 * against its grammar and bounds before the daemon sees it; replies are built here too, so
 * that a reply never exceeds the agent's line bound whatever the callbacks answered.
 */
#include "agentd/agentd_int.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const type_names[] = {
    [OCRA_AGENTD_CHECK] = "check",         [OCRA_AGENTD_STARTED] = "started",
    [OCRA_AGENTD_HEARTBEAT] = "heartbeat", [OCRA_AGENTD_COMPLETED] = "completed",
    [OCRA_AGENTD_REFUSED] = "refused",
};

const char *
ocra_agentd_type_name(enum ocra_agentd_type type)
{
    if ((unsigned)type >= OCRA_ARRAY_LEN(type_names))
        return NULL;
    return type_names[type];
}

/* The character classes of the string members. */
enum str_class { CLASS_TOKEN, CLASS_MODEL, CLASS_INSTANCE };

static bool
char_ok(enum str_class cls, unsigned char c, size_t i)
{
    switch (cls) {
    case CLASS_MODEL:
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
            return true;
        return i > 0 && (c == '.' || c == '_' || c == '-');
    case CLASS_INSTANCE:
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-';
    case CLASS_TOKEN:
        break;
    }
    return c > 0x20 && c < 0x7f; /* printable ASCII, no space */
}

bool
ocra_agentd_str_valid(const char *s, size_t len, size_t max, int cls)
{
    if (len == 0 || len > max)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!char_ok((enum str_class)cls, (unsigned char)s[i], i))
            return false;
    return true;
}

/* Copies string member key of obj into out (size max + 1). optional: absent gives "". */
static int
get_str(const json_t *obj, const char *key, enum str_class cls, size_t max, bool optional,
        char *out, struct ocra_err *err)
{
    const json_t *v = json_object_get(obj, key);
    char q[96];
    size_t len;

    if (!v && optional) {
        out[0] = '\0';
        return 0;
    }
    if (!v)
        return ocra_err_set(err, EPROTO, "member \"%s\" is missing", key);
    if (!json_is_string(v))
        return ocra_err_set(err, EPROTO, "member \"%s\" has type %s, not string", key,
                            ocra_json_type_name(v));
    len = json_string_length(v);
    if (!ocra_agentd_str_valid(json_string_value(v), len, max, cls))
        return ocra_err_set(err, EPROTO, "member \"%s\": invalid value %s (%zu bytes, at most %zu)",
                            key, ocra_str_escape(json_string_value(v), len, 40, q, sizeof(q)), len,
                            max);
    memcpy(out, json_string_value(v), len + 1);
    return 0;
}

/* Integer member key of obj, within [min, max]. */
static int
get_int(const json_t *obj, const char *key, int64_t min, int64_t max, int64_t *out,
        struct ocra_err *err)
{
    const json_t *v = json_object_get(obj, key);
    json_int_t n;

    if (!v)
        return ocra_err_set(err, EPROTO, "member \"%s\" is missing", key);
    if (!json_is_integer(v))
        return ocra_err_set(err, EPROTO, "member \"%s\" has type %s, not integer", key,
                            ocra_json_type_name(v));
    n = json_integer_value(v);
    if (n < min || n > max)
        return ocra_err_set(err, EPROTO, "member \"%s\": %lld is outside %lld..%lld", key,
                            (long long)n, (long long)min, (long long)max);
    *out = (int64_t)n;
    return 0;
}

#define TIME_MAX ((int64_t)1 << 47) /* year 6429: far beyond any honest clock */
#define DURATION_MAX ((int64_t)1 << 45)

static int
parse_type(const json_t *obj, enum ocra_agentd_type *type, struct ocra_err *err)
{
    const char *s = ocra_json_str(obj, "type");
    char q[64];

    if (!s)
        return ocra_err_set(err, EPROTO, "member \"type\" is missing or not a string");
    for (size_t i = 0; i < OCRA_ARRAY_LEN(type_names); i++) {
        if (strcmp(s, type_names[i]) == 0) {
            *type = (enum ocra_agentd_type)i;
            return 0;
        }
    }
    return ocra_err_set(err, EPROTO, "unknown type %s",
                        ocra_str_escape(s, strlen(s), 24, q, sizeof(q)));
}

/* The members of the completed report: exit_code (0..255) or signal (1..64), not both. */
static int
parse_completed(const json_t *obj, struct ocra_agentd_msg *m, struct ocra_err *err)
{
    const json_t *code = json_object_get(obj, "exit_code"), *sig = json_object_get(obj, "signal");
    int64_t n;

    if (get_int(obj, "duration_ms", 0, DURATION_MAX, &m->duration_ms, err) < 0)
        return -1;
    if (json_is_null(code))
        code = NULL;
    if (json_is_null(sig))
        sig = NULL;
    if ((code == NULL) == (sig == NULL))
        return ocra_err_set(err, EPROTO, "exactly one of \"exit_code\" and \"signal\" is needed");
    m->exit_code = -1;
    if (code) {
        if (get_int(obj, "exit_code", 0, 255, &n, err) < 0)
            return -1;
        m->exit_code = (int)n;
    } else {
        if (get_int(obj, "signal", 1, 64, &n, err) < 0)
            return -1;
        m->signal = (int)n;
    }
    return 0;
}

/* The members of the refused report: reason "superseded", current (optional) a version. */
static int
parse_refused(const json_t *obj, struct ocra_agentd_msg *m, struct ocra_err *err)
{
    const char *reason = ocra_json_str(obj, "reason");
    char q[64];

    if (!reason)
        return ocra_err_set(err, EPROTO, "member \"reason\" is missing or not a string");
    if (strcmp(reason, "superseded") != 0)
        return ocra_err_set(err, EPROTO, "member \"reason\": %s is not \"superseded\"",
                            ocra_str_escape(reason, strlen(reason), 24, q, sizeof(q)));
    snprintf(m->reason, sizeof(m->reason), "%s", reason);
    return get_str(obj, "current", CLASS_TOKEN, OCRA_AGENTD_VERSION_MAX, true, m->current, err);
}

static int
parse_members(const json_t *obj, struct ocra_agentd_msg *m, struct ocra_err *err)
{
    const json_t *forced;
    int64_t v;

    if (get_int(obj, "v", OCRA_AGENTD_PROTO, OCRA_AGENTD_PROTO, &v, err) < 0 ||
        parse_type(obj, &m->type, err) < 0 ||
        get_str(obj, "event", CLASS_TOKEN, OCRA_AGENTD_EVENT_MAX, false, m->event, err) < 0 ||
        get_str(obj, "model", CLASS_MODEL, OCRA_AGENTD_MODEL_MAX, false, m->model, err) < 0 ||
        get_str(obj, "version", CLASS_TOKEN, OCRA_AGENTD_VERSION_MAX, false, m->version, err) < 0 ||
        get_str(obj, "instance", CLASS_INSTANCE, OCRA_AGENTD_INSTANCE_MAX, false, m->instance,
                err) < 0 ||
        get_str(obj, "host", CLASS_TOKEN, OCRA_AGENTD_HOST_MAX, true, m->host, err) < 0 ||
        get_int(obj, "time_ms", 1, TIME_MAX, &m->time_ms, err) < 0)
        return -1;
    switch (m->type) {
    case OCRA_AGENTD_CHECK:
        return 0;
    case OCRA_AGENTD_STARTED:
        forced = json_object_get(obj, "forced");
        if (forced && !json_is_boolean(forced))
            return ocra_err_set(err, EPROTO, "member \"forced\" has type %s, not boolean",
                                ocra_json_type_name(forced));
        m->forced = json_is_true(forced);
        return get_int(obj, "pid", 1, INT32_MAX, &m->pid, err);
    case OCRA_AGENTD_HEARTBEAT:
        if (json_object_get(obj, "load") && !json_is_null(json_object_get(obj, "load"))) {
            if (get_int(obj, "load", 0, OCRA_AGENTD_LOAD_MAX, &m->load, err) < 0)
                return -1;
            m->has_load = true;
        }
        return get_int(obj, "uptime_ms", 0, DURATION_MAX, &m->uptime_ms, err);
    case OCRA_AGENTD_COMPLETED:
        return parse_completed(obj, m, err);
    case OCRA_AGENTD_REFUSED:
        return parse_refused(obj, m, err);
    }
    return ocra_err_set(err, EPROTO, "unknown type");
}

int
ocra_agentd_msg_parse(const char *line, size_t len, struct ocra_agentd_msg *out,
                      struct ocra_err *err)
{
    json_t *j;
    int ret;

    if (len >= OCRA_AGENTD_LINE_MAX)
        return ocra_err_set(err, EPROTO, "line of %zu bytes (at most %d)", len,
                            OCRA_AGENTD_LINE_MAX - 1);
    /* JSON allows any UTF-8 in strings; the protocol's strings are ASCII, checked below. */
    j = ocra_json_parse(line, len, OCRA_JSON_STRICT, err);
    if (!j) {
        if (err)
            err->code = EPROTO;
        return ocra_err_wrap(err, "not JSON");
    }
    if (!json_is_object(j)) {
        ret = ocra_err_set(err, EPROTO, "JSON of type %s, not an object", ocra_json_type_name(j));
    } else {
        memset(out, 0, sizeof(*out));
        ret = parse_members(j, out, err);
    }
    json_decref(j);
    return ret;
}

/* ---- replies ----------------------------------------------------------------------- */

/* Appends the reply's text and its newline to out; the line always fits
 * OCRA_AGENTD_REPLY_MAX (error text is cut to fit). */
static void
reply_finish(json_t *j, struct ocra_buf *out)
{
    char *s = ocra_json_compact(j);

    assert(strlen(s) < OCRA_AGENTD_REPLY_MAX);
    ocra_buf_puts(out, s);
    ocra_buf_putc(out, '\n');
    free(s);
    json_decref(j);
}

void
ocra_agentd_reply_ok(struct ocra_buf *out)
{
    reply_finish(json_pack("{s:i, s:b}", "v", OCRA_AGENTD_PROTO, "ok", 1), out);
}

void
ocra_agentd_reply_error(const char *msg, struct ocra_buf *out)
{
    char cut[161];
    size_t i;

    /* Printable ASCII only, and cut: jansson's escaping then at most doubles it, well
     * within the reply's bound. */
    for (i = 0; msg[i] && i < sizeof(cut) - 1; i++)
        cut[i] = msg[i] >= 0x20 && msg[i] < 0x7f ? msg[i] : '?';
    cut[i] = '\0';
    reply_finish(json_pack("{s:i, s:b, s:s}", "v", OCRA_AGENTD_PROTO, "ok", 0, "error", cut), out);
}

void
ocra_agentd_reply_verdict(const struct ocra_agentd_answer *a, int heartbeat_s, struct ocra_buf *out)
{
    static const char *const names[] = {"current", "superseded", "unknown"};
    const char *status = (unsigned)a->verdict < OCRA_ARRAY_LEN(names) ? names[a->verdict] : NULL;
    size_t n = strnlen(a->current, sizeof(a->current));
    json_t *j;

    if (!status) {
        ocra_agentd_reply_error("the daemon cannot answer now", out);
        return;
    }
    j = json_pack("{s:i, s:b, s:s, s:i}", "v", OCRA_AGENTD_PROTO, "ok", 1, "status", status,
                  "heartbeat_s", heartbeat_s);
    if (a->verdict == OCRA_AGENTD_SUPERSEDED) {
        bool valid = n < sizeof(a->current) &&
                     ocra_agentd_str_valid(a->current, n, OCRA_AGENTD_VERSION_MAX, CLASS_TOKEN);

        json_object_set_new(j, "current", json_string(valid ? a->current : ""));
    }
    reply_finish(j, out);
}
