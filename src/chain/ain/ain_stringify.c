/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ain_stringify.c: fast-json-stable-stringify, the serialisation the AIN node hashes. Three
 * JavaScript details matter for the bytes: object keys sort by UTF-16 code units (an astral
 * character, a surrogate pair, sorts before U+E000..U+FFFF), numbers print as JavaScript's
 * Number.prototype.toString (shortest round-trip digits, exponent form below 1e-6 and from
 * 1e21, integers beyond 2^53 rounded to a double as the node's JSON.parse does), and strings
 * escape only what JSON.stringify escapes.
 */
#include "chain/ain/ain.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Decodes one UTF-8 sequence at *p (input already valid: jansson checks it). */
static uint32_t
next_codepoint(const unsigned char **p)
{
    const unsigned char *s = *p;
    uint32_t cp;

    if (s[0] < 0x80) {
        cp = s[0];
        *p = s + 1;
    } else if ((s[0] & 0xe0) == 0xc0) {
        cp = (uint32_t)(s[0] & 0x1f) << 6 | (s[1] & 0x3f);
        *p = s + 2;
    } else if ((s[0] & 0xf0) == 0xe0) {
        cp = (uint32_t)(s[0] & 0x0f) << 12 | (uint32_t)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
        *p = s + 3;
    } else {
        cp = (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3f) << 12 |
             (uint32_t)(s[2] & 0x3f) << 6 | (s[3] & 0x3f);
        *p = s + 4;
    }
    return cp;
}

/* The UTF-16 code units of cp: returns how many (1 or 2). */
static int
utf16_units(uint32_t cp, uint16_t u[2])
{
    if (cp < 0x10000) {
        u[0] = (uint16_t)cp;
        return 1;
    }
    cp -= 0x10000;
    u[0] = (uint16_t)(0xd800 | (cp >> 10));
    u[1] = (uint16_t)(0xdc00 | (cp & 0x3ff));
    return 2;
}

/* strcmp over UTF-16 code units, as JavaScript's default sort compares strings. */
static int
utf16_cmp(const char *a, const char *b)
{
    const unsigned char *pa = (const unsigned char *)a, *pb = (const unsigned char *)b;
    uint16_t ua[2], ub[2];
    int na = 0, nb = 0, ia = 0, ib = 0;

    for (;;) {
        if (ia == na) {
            if (!*pa)
                return *pb || ib < nb ? -1 : 0;
            na = utf16_units(next_codepoint(&pa), ua);
            ia = 0;
        }
        if (ib == nb) {
            if (!*pb)
                return 1;
            nb = utf16_units(next_codepoint(&pb), ub);
            ib = 0;
        }
        if (ua[ia] != ub[ib])
            return ua[ia] < ub[ib] ? -1 : 1;
        ia++;
        ib++;
    }
}

static int
key_cmp(const void *a, const void *b)
{
    return utf16_cmp(*(const char *const *)a, *(const char *const *)b);
}

static void
put_string(struct ocra_buf *b, const char *s, size_t len)
{
    ocra_buf_putc(b, '"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        switch (c) {
        case '"':
            ocra_buf_puts(b, "\\\"");
            break;
        case '\\':
            ocra_buf_puts(b, "\\\\");
            break;
        case '\b':
            ocra_buf_puts(b, "\\b");
            break;
        case '\f':
            ocra_buf_puts(b, "\\f");
            break;
        case '\n':
            ocra_buf_puts(b, "\\n");
            break;
        case '\r':
            ocra_buf_puts(b, "\\r");
            break;
        case '\t':
            ocra_buf_puts(b, "\\t");
            break;
        default:
            if (c < 0x20)
                ocra_buf_printf(b, "\\u%04x", c);
            else
                ocra_buf_putc(b, (char)c);
        }
    }
    ocra_buf_putc(b, '"');
}

/* JavaScript's Number.prototype.toString(10) for a finite double. */
static void
put_js_number(struct ocra_buf *b, double x)
{
    char tmp[40], digits[20];
    int prec, exp10, k = 0, n;

    if (x == 0) {
        ocra_buf_putc(b, '0'); /* -0 prints as 0 too */
        return;
    }
    if (!isfinite(x)) {
        ocra_buf_puts(b, "null");
        return;
    }
    if (x < 0) {
        ocra_buf_putc(b, '-');
        x = -x;
    }
    /* The fewest significant digits that read back as the same double. */
    for (prec = 1; prec <= 17; prec++) {
        (void)snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, x);
        if (strtod(tmp, NULL) == x)
            break;
    }
    for (const char *p = tmp; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9')
            digits[k++] = *p;
    while (k > 1 && digits[k - 1] == '0')
        k--;
    digits[k] = '\0';
    exp10 = (int)strtol(strchr(tmp, 'e') + 1, NULL, 10);
    n = exp10 + 1; /* x = 0.digits * 10^n */
    if (k <= n && n <= 21) {
        ocra_buf_append(b, digits, (size_t)k);
        for (int i = k; i < n; i++)
            ocra_buf_putc(b, '0');
    } else if (0 < n && n <= 21) {
        ocra_buf_append(b, digits, (size_t)n);
        ocra_buf_putc(b, '.');
        ocra_buf_puts(b, digits + n);
    } else if (-6 < n && n <= 0) {
        ocra_buf_puts(b, "0.");
        for (int i = n; i < 0; i++)
            ocra_buf_putc(b, '0');
        ocra_buf_puts(b, digits);
    } else {
        ocra_buf_putc(b, digits[0]);
        if (k > 1) {
            ocra_buf_putc(b, '.');
            ocra_buf_puts(b, digits + 1);
        }
        ocra_buf_printf(b, "e%c%d", n - 1 < 0 ? '-' : '+', abs(n - 1));
    }
}

static void put_value(struct ocra_buf *b, const json_t *j);

static void
put_object(struct ocra_buf *b, const json_t *j)
{
    size_t n = json_object_size(j), i = 0;
    const char **keys = ocra_xcalloc(n, sizeof(*keys));
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)(uintptr_t)j, key, v) keys[i++] = key;
    qsort(keys, n, sizeof(*keys), key_cmp);
    ocra_buf_putc(b, '{');
    for (i = 0; i < n; i++) {
        if (i)
            ocra_buf_putc(b, ',');
        put_string(b, keys[i], strlen(keys[i]));
        ocra_buf_putc(b, ':');
        put_value(b, json_object_get(j, keys[i]));
    }
    ocra_buf_putc(b, '}');
    free(keys);
}

static void
put_value(struct ocra_buf *b, const json_t *j)
{
    if (!j) {
        ocra_buf_puts(b, "null"); /* a missing member: hostile input, not a crash */
        return;
    }
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        put_object(b, j);
        break;
    case JSON_ARRAY:
        ocra_buf_putc(b, '[');
        for (size_t i = 0; i < json_array_size(j); i++) {
            if (i)
                ocra_buf_putc(b, ',');
            put_value(b, json_array_get(j, i));
        }
        ocra_buf_putc(b, ']');
        break;
    case JSON_STRING:
        put_string(b, json_string_value(j), json_string_length(j));
        break;
    case JSON_INTEGER: {
        json_int_t v = json_integer_value(j);

        /* Beyond 2^53 the node holds a rounded double; print what it prints. */
        if (v > (json_int_t)1 << 53 || v < -((json_int_t)1 << 53))
            put_js_number(b, (double)v);
        else
            ocra_buf_printf(b, "%" JSON_INTEGER_FORMAT, v);
        break;
    }
    case JSON_REAL:
        put_js_number(b, json_real_value(j));
        break;
    case JSON_TRUE:
        ocra_buf_puts(b, "true");
        break;
    case JSON_FALSE:
        ocra_buf_puts(b, "false");
        break;
    case JSON_NULL:
        ocra_buf_puts(b, "null");
        break;
    }
}

char *
ocra_ain_stringify(const json_t *j)
{
    struct ocra_buf b;

    ocra_buf_init(&b);
    put_value(&b, j);
    return ocra_buf_take(&b);
}
