/* SPDX-License-Identifier: Apache-2.0 */
/*
 * base.c: the error object, checked allocation, growable buffers, hex, checked integer
 * parsing and the small string helpers (escaping hostile values, UTF-8, edit distance).
 */
#include "base/base.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- errors ---------------------------------------------------------------------------- */

int
ocra_err_set(struct ocra_err *err, int code, const char *fmt, ...)
{
    va_list ap;

    if (!err)
        return -1;
    err->code = code;
    err->cause = 0;
    va_start(ap, fmt);
    (void)vsnprintf(err->msg, sizeof(err->msg), fmt, ap); /* bounded: OCRA_ERR_MAX */
    va_end(ap);
    return -1;
}

int
ocra_err_sys(struct ocra_err *err, const char *fmt, ...)
{
    int saved = errno;
    va_list ap;
    size_t n;

    if (!err)
        return -1;
    err->code = saved;
    err->cause = 0;
    va_start(ap, fmt);
    (void)vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    n = strlen(err->msg);
    (void)snprintf(err->msg + n, sizeof(err->msg) - n, ": %s", strerror(saved));
    errno = saved;
    return -1;
}

int
ocra_err_wrap(struct ocra_err *err, const char *fmt, ...)
{
    char prefix[OCRA_ERR_MAX / 2];
    size_t n, len, room;
    va_list ap;

    if (!err)
        return -1;
    va_start(ap, fmt);
    (void)vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    len = strlen(err->msg);
    n = strlen(prefix) + 2; /* "prefix: " */
    room = sizeof(err->msg) - 1 - len;
    if (n > room) { /* the context gives way, never the cause */
        size_t k;

        if (room < 5)
            return -1;
        k = room - 5; /* k bytes of context, "...", ": " */
        while (k > 0 && ((unsigned char)prefix[k] & 0xC0) == 0x80)
            k--;
        memcpy(prefix + k, "...", 4);
        n = k + 5;
    }
    memmove(err->msg + n, err->msg, len + 1);
    memcpy(err->msg, prefix, n - 2);
    memcpy(err->msg + n - 2, ": ", 2);
    err->cause += (unsigned)n;
    return -1;
}

int
ocra_err_copy(struct ocra_err *err, const struct ocra_err *src)
{
    if (err && err != src)
        memcpy(err, src, sizeof(*err));
    return -1;
}

const char *
ocra_err_cause(const struct ocra_err *err)
{
    size_t len = strnlen(err->msg, sizeof(err->msg));

    return err->msg + (err->cause <= len ? err->cause : 0);
}

/* Appends s[0..n) to out[*o..cap - 1), cut at a UTF-8 boundary with "..." when it does not fit. */
static void
put_cut(char *out, size_t cap, size_t *o, const char *s, size_t n)
{
    size_t room = cap - 1 - *o;

    if (n > room) {
        n = room >= 3 ? room - 3 : 0;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
        memmove(out + *o, s, n);
        *o += n;
        n = room - n < 3 ? room - n : 3;
        memcpy(out + *o, "...", n);
        *o += n;
        return;
    }
    memmove(out + *o, s, n);
    *o += n;
}

char *
ocra_str_cut(char *s, size_t max)
{
    size_t o = 0;

    put_cut(s, max + 1, &o, s, strlen(s));
    s[o] = '\0';
    return s;
}

char *
ocra_err_text(const struct ocra_err *err, char *out, size_t cap)
{
    const char *cause = ocra_err_cause(err);
    size_t ctx = (size_t)(cause - err->msg), o = 0;

    assert(cap > 0);
    put_cut(out, cap, &o, cause, strlen(cause));
    if (ctx >= 2) { /* the context without its trailing ": " */
        put_cut(out, cap, &o, " (", 2);
        put_cut(out, cap, &o, err->msg, ctx - 2);
        put_cut(out, cap, &o, ")", 1);
    }
    out[o] = '\0';
    return out;
}

/* ---- allocation ------------------------------------------------------------------------ */

static void
oom(size_t n)
{
    fprintf(stderr, "ocra: out of memory allocating %zu bytes\n", n);
    abort();
}

void *
ocra_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (!p)
        oom(n);
    return p;
}

void *
ocra_xcalloc(size_t nmemb, size_t size)
{
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);

    if (!p)
        oom(nmemb * size);
    return p;
}

void *
ocra_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);

    if (!q)
        oom(n);
    return q;
}

char *
ocra_xstrdup(const char *s)
{
    return ocra_xstrndup(s, strlen(s));
}

char *
ocra_xstrndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = ocra_xmalloc(len + 1);

    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *
ocra_xasprintf(const char *fmt, ...)
{
    struct ocra_buf b;
    va_list ap;
    int n;

    ocra_buf_init(&b);
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort(); /* only an invalid format does this: a programmer error */
    ocra_buf_reserve(&b, (size_t)n + 1);
    va_start(ap, fmt);
    (void)vsnprintf(b.data, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b.len = (size_t)n;
    return ocra_buf_take(&b);
}

void
ocra_secure_free(void *p, size_t n)
{
    if (!p)
        return;
    explicit_bzero(p, n);
    free(p);
}

/* ---- buffer ---------------------------------------------------------------------------- */

void
ocra_buf_init(struct ocra_buf *b)
{
    b->data = NULL;
    b->len = b->cap = 0;
}

void
ocra_buf_fini(struct ocra_buf *b)
{
    free(b->data);
    ocra_buf_init(b);
}

void
ocra_buf_reserve(struct ocra_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1, cap = b->cap ? b->cap : 64;

    if (need <= b->cap)
        return;
    if (need < b->len)
        oom(SIZE_MAX);
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    b->data = ocra_xrealloc(b->data, cap);
    b->cap = cap;
}

void
ocra_buf_append(struct ocra_buf *b, const void *data, size_t len)
{
    ocra_buf_reserve(b, len);
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void
ocra_buf_puts(struct ocra_buf *b, const char *s)
{
    ocra_buf_append(b, s, strlen(s));
}

void
ocra_buf_putc(struct ocra_buf *b, char c)
{
    ocra_buf_append(b, &c, 1);
}

void
ocra_buf_printf(struct ocra_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort(); /* invalid format: a programmer error */
    ocra_buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    (void)vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void
ocra_buf_reset(struct ocra_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

char *
ocra_buf_take(struct ocra_buf *b)
{
    char *p;

    ocra_buf_reserve(b, 0);
    p = b->data;
    p[b->len] = '\0';
    ocra_buf_init(b);
    return p;
}

/* ---- hex ------------------------------------------------------------------------------- */

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void
ocra_hex_encode(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0xf];
    }
    out[2 * n] = '\0';
}

int
ocra_hex_decode(const char *s, uint8_t *out, size_t cap, struct ocra_err *err)
{
    size_t len;

    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        s += 2;
    len = strlen(s);
    if (len != 2 * cap)
        return ocra_err_set(err, EINVAL, "hex: want %zu digits, got %zu", 2 * cap, len);
    for (size_t i = 0; i < cap; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

        if (hi < 0 || lo < 0)
            return ocra_err_set(err, EINVAL, "hex: not a hex digit at offset %zu",
                                hi < 0 ? 2 * i : 2 * i + 1);
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

bool
ocra_hex_is(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (hexval(s[i]) < 0)
            return false;
    return s[i] == '\0';
}

/* ---- numbers --------------------------------------------------------------------------- */

int
ocra_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out, struct ocra_err *err)
{
    char *end = NULL;
    long long v;

    if (!s || !*s || !(s[0] == '-' || (s[0] >= '0' && s[0] <= '9')))
        return ocra_err_set(err, EINVAL, "not an integer: \"%.40s\"", s ? s : "");
    errno = 0;
    v = strtoll(s, &end, 10);
    if (*end != '\0')
        return ocra_err_set(err, EINVAL, "not an integer: \"%.40s\"", s);
    if (errno == ERANGE || v < min || v > max)
        return ocra_err_set(err, ERANGE, "%.40s is out of range [%" PRId64 ", %" PRId64 "]", s, min,
                            max);
    *out = v;
    return 0;
}

int
ocra_parse_u64(const char *s, uint64_t max, uint64_t *out, struct ocra_err *err)
{
    char *end = NULL;
    unsigned long long v;

    if (!s || !(s[0] >= '0' && s[0] <= '9'))
        return ocra_err_set(err, EINVAL, "not an unsigned integer: \"%.40s\"", s ? s : "");
    errno = 0;
    v = strtoull(s, &end, 10);
    if (*end != '\0')
        return ocra_err_set(err, EINVAL, "not an unsigned integer: \"%.40s\"", s);
    if (errno == ERANGE || v > max)
        return ocra_err_set(err, ERANGE, "%.40s is out of range [0, %" PRIu64 "]", s, max);
    *out = v;
    return 0;
}

/* ---- strings --------------------------------------------------------------------------- */

char *
ocra_str_escape(const char *s, size_t len, size_t max_chars, char *out, size_t outsz)
{
    size_t o = 0, i;

    if (outsz < 8) {
        if (outsz)
            out[0] = '\0';
        return out;
    }
    out[o++] = '"';
    for (i = 0; i < len && i < max_chars; i++) {
        unsigned char c = (unsigned char)s[i];
        char tmp[5];
        size_t n;

        if (c == '"' || c == '\\')
            n = (size_t)snprintf(tmp, sizeof(tmp), "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            n = (size_t)snprintf(tmp, sizeof(tmp), "\\x%02x", c);
        else
            n = (size_t)snprintf(tmp, sizeof(tmp), "%c", c);
        if (o + n + 5 > outsz)
            break;
        memcpy(out + o, tmp, n);
        o += n;
    }
    if (i < len) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o++] = '"';
    out[o] = '\0';
    return out;
}

bool
ocra_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;

    while (i < len) {
        unsigned char c = s[i];
        uint32_t cp;
        size_t n;

        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 2, cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 3, cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 4, cp = c & 0x07;
        } else {
            return false;
        }
        if (i + n > len)
            return false;
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n;
    }
    return true;
}

unsigned
ocra_str_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned row[64];

    if (la >= OCRA_ARRAY_LEN(row) || lb >= OCRA_ARRAY_LEN(row))
        return 255;
    for (size_t j = 0; j <= lb; j++)
        row[j] = (unsigned)j;
    for (size_t i = 1; i <= la; i++) {
        unsigned diag = row[0];

        row[0] = (unsigned)i;
        for (size_t j = 1; j <= lb; j++) {
            unsigned up = row[j], best = diag + (a[i - 1] != b[j - 1]);

            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            diag = up;
            row[j] = best;
        }
    }
    return row[lb] > 255 ? 255 : row[lb];
}

const char *
ocra_str_closest(const char *s, const char *const *names, size_t n, unsigned max_d)
{
    const char *found = NULL;
    unsigned best = max_d + 1;

    for (size_t i = 0; i < n; i++) {
        unsigned d = ocra_str_distance(s, names[i]);

        if (d < best) {
            best = d;
            found = names[i];
        }
    }
    return found;
}
