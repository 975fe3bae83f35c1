/* SPDX-License-Identifier: Apache-2.0 */
/*
 * base_json.c: JSON helpers over jansson. jansson already rejects invalid UTF-8 and, with
 * JSON_REJECT_DUPLICATES, duplicate keys; these helpers add ocra's error shape and the
 * canonical serialisation (sorted keys, compact) that spec hashes are computed over.
 */
#include "base/base.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* True when the number token at p (len bytes) is an integer literal that int64 cannot hold. */
static bool
big_int_literal(const char *p, size_t len)
{
    size_t digits = 0;

    for (size_t i = 0; i < len; i++) {
        if (p[i] == '.' || p[i] == 'e' || p[i] == 'E')
            return false;
        if (p[i] >= '0' && p[i] <= '9')
            digits++;
    }
    return digits > 18;
}

/*
 * A copy of text where every integer literal outside strings that may overflow int64 ends in
 * ".0", so jansson reads it as a real; NULL when there is none. Strings are skipped with their
 * escapes; anything malformed is left for the parser to report.
 */
static char *
widen_big_ints(const char *text, size_t len, size_t *out_len)
{
    struct ocra_buf b;
    size_t i = 0, copied = 0;
    bool changed = false;

    ocra_buf_init(&b);
    while (i < len) {
        if (text[i] == '"') {
            for (i++; i < len && text[i] != '"'; i++)
                if (text[i] == '\\')
                    i++;
            i++;
        } else if (text[i] == '-' || (text[i] >= '0' && text[i] <= '9')) {
            size_t start = i;

            while (i < len && strchr("+-0123456789.eE", text[i]) && text[i] != '\0')
                i++;
            if (big_int_literal(text + start, i - start)) {
                ocra_buf_append(&b, text + copied, i - copied);
                ocra_buf_puts(&b, ".0");
                copied = i;
                changed = true;
            }
        } else {
            i++;
        }
    }
    if (!changed) {
        ocra_buf_fini(&b);
        return NULL;
    }
    ocra_buf_append(&b, text + copied, len - copied);
    *out_len = b.len;
    return ocra_buf_take(&b);
}

json_t *
ocra_json_parse(const char *text, size_t len, unsigned flags, struct ocra_err *err)
{
    size_t jflags = JSON_DECODE_ANY, wide_len = 0;
    char *wide = NULL;
    json_error_t jerr;
    json_t *j;

    if (flags & OCRA_JSON_STRICT)
        jflags |= JSON_REJECT_DUPLICATES;
    if (flags & OCRA_JSON_JS_NUMBERS)
        wide = widen_big_ints(text, len, &wide_len);
    j = wide ? json_loadb(wide, wide_len, jflags, &jerr) : json_loadb(text, len, jflags, &jerr);
    free(wide);
    if (!j) {
        ocra_err_set(err, EINVAL, "line %d column %d: %s", jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    return j;
}

json_t *
ocra_json_load_file(const char *path, size_t max, unsigned flags, struct ocra_err *err)
{
    char *text = NULL;
    size_t len = 0;
    json_t *j;

    if (ocra_file_read(path, max, &text, &len, err) < 0)
        return NULL;
    j = ocra_json_parse(text, len, flags, err);
    if (!j)
        ocra_err_wrap(err, "%s", path);
    free(text);
    return j;
}

char *
ocra_json_canonical(const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);

    if (!s)
        abort(); /* jansson fails here only when out of memory */
    return s;
}

char *
ocra_json_compact(const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);

    if (!s)
        abort();
    return s;
}

const char *
ocra_json_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

int64_t
ocra_json_int(const json_t *obj, const char *key, int64_t def)
{
    const json_t *v = json_object_get(obj, key);

    return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

const char *
ocra_json_type_name(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_NULL:
        return "null";
    }
    return "unknown";
}
