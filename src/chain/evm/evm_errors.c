/* SPDX-License-Identifier: Apache-2.0 */
/*
 * evm_errors.c: revert data by name. A contract that reverts with a custom error returns its
 * 4-byte selector (keccak256 of "Name(types)") and ABI-encoded arguments; a node shows only the
 * hex ("custom error 0xe5ce9c09"). The selectors here are computed once from the custom errors
 * of contracts/ModelRegistry.abi.json (compiled into the table ocra_evm_abi_errors at build
 * time), plus Solidity's Error(string) and Panic(uint256). Revert data is hostile input: every
 * argument is bounds-checked, strings are printed escaped and cut.
 */
#include "chain/evm/evm_int.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define MAX_ERRORS 64

struct known {
    uint8_t selector[4];
    const char *signature; /* "Name(type,...)" */
    const char *names;     /* input names, comma-separated ("" none) */
};

static const struct ocra_evm_abi_error builtin[] = {
    {"Error(string)", "reason"},
    {"Panic(uint256)", "code"},
};

static struct known known[MAX_ERRORS];
static size_t n_known;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void
add(const struct ocra_evm_abi_error *e)
{
    uint8_t h[OCRA_KECCAK256_LEN];

    if (n_known == MAX_ERRORS)
        return;
    ocra_keccak256(e->signature, strlen(e->signature), h);
    memcpy(known[n_known].selector, h, 4);
    known[n_known].signature = e->signature;
    known[n_known].names = e->names;
    n_known++;
}

static void
init(void)
{
    for (size_t i = 0; i < OCRA_ARRAY_LEN(builtin); i++)
        add(&builtin[i]);
    for (const struct ocra_evm_abi_error *e = ocra_evm_abi_errors; e->signature; e++)
        add(e);
}

/* What fixes the contract's access errors; the others are named only. */
static const char *
hint(const char *signature)
{
    static const struct {
        const char *signature, *hint;
    } hints[] = {
        {"NotReporter()", "the sending account is not a reporter on the contract: its owner "
                          "calls setReporter(ACCOUNT, true)"},
        {"NotPublisher()", "the sending account is not a publisher on the contract: its owner "
                           "calls setPublisher(ACCOUNT, true)"},
        {"NotOwner()", "only the contract's owner may call this"},
    };

    for (size_t i = 0; i < OCRA_ARRAY_LEN(hints); i++)
        if (!strcmp(hints[i].signature, signature))
            return hints[i].hint;
    return NULL;
}

/* True when the 32-byte word's first `zeros` bytes are zero. */
static bool
zero_prefix(const uint8_t *w, size_t zeros)
{
    for (size_t i = 0; i < zeros; i++)
        if (w[i])
            return false;
    return true;
}

/* A dynamic string or bytes argument at head offset word w of args[0..len): its bytes. */
static bool
dynamic_arg(const uint8_t *args, size_t len, const uint8_t *w, const uint8_t **p, size_t *n)
{
    uint64_t off = 0, l = 0;

    if (!zero_prefix(w, 24))
        return false;
    for (size_t i = 24; i < 32; i++)
        off = off << 8 | w[i];
    if (off > len || len - off < 32 || !zero_prefix(args + off, 24))
        return false;
    for (size_t i = 24; i < 32; i++)
        l = l << 8 | args[off + i];
    if (l > len - off - 32)
        return false;
    *p = args + off + 32;
    *n = (size_t)l;
    return true;
}

/* Appends a string argument, quoted, with anything outside printable ASCII escaped. */
static void
put_string(struct ocra_buf *b, const uint8_t *p, size_t n)
{
    ocra_buf_putc(b, '"');
    for (size_t i = 0; i < n && i < 200; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\')
            ocra_buf_putc(b, (char)p[i]);
        else
            ocra_buf_printf(b, "\\x%02x", p[i]);
    }
    ocra_buf_puts(b, n > 200 ? "...\"" : "\"");
}

/* Appends one argument of type `type` (head word w); false when malformed. */
static bool
put_arg(struct ocra_buf *b, const char *type, size_t type_len, const uint8_t *args, size_t len,
        const uint8_t *w)
{
    const uint8_t *p;
    size_t n;
    char hex[65];

    if ((type_len == 6 && !memcmp(type, "string", 6)) ||
        (type_len == 5 && !memcmp(type, "bytes", 5))) {
        if (!dynamic_arg(args, len, w, &p, &n))
            return false;
        if (type_len == 6) {
            put_string(b, p, n);
        } else {
            ocra_buf_puts(b, "0x");
            for (size_t i = 0; i < n && i < 64; i++)
                ocra_buf_printf(b, "%02x", p[i]);
        }
        return true;
    }
    if (type_len == 7 && !memcmp(type, "address", 7)) {
        char addr[OCRA_CHAIN_ADDR_LEN + 1];

        if (!zero_prefix(w, 12))
            return false;
        ocra_chain_address_format(w + 12, addr);
        ocra_buf_puts(b, addr);
        return true;
    }
    if (type_len == 4 && !memcmp(type, "bool", 4)) {
        if (!zero_prefix(w, 31) || w[31] > 1)
            return false;
        ocra_buf_puts(b, w[31] ? "true" : "false");
        return true;
    }
    if (type_len >= 4 && !memcmp(type, "uint", 4) && zero_prefix(w, 24)) {
        uint64_t v = 0;

        for (size_t i = 24; i < 32; i++)
            v = v << 8 | w[i];
        ocra_buf_printf(b, "%llu", (unsigned long long)v);
        return true;
    }
    ocra_hex_encode(w, 32, hex); /* bytes32, big or signed integers: the word as it is */
    ocra_buf_printf(b, "0x%s", hex);
    return true;
}

/* "Name(arg=value, ...)" of a known error; false when the arguments are malformed. */
static bool
describe(struct ocra_buf *b, const struct known *k, const uint8_t *args, size_t len)
{
    const char *open = strchr(k->signature, '('), *t = open + 1, *name = k->names;
    size_t i = 0;

    ocra_buf_printf(b, "%.*s(", (int)(open - k->signature), k->signature);
    while (*t && *t != ')') {
        size_t tl = strcspn(t, ",)"), nl = strcspn(name, ",");

        if (len < 32 * (i + 1))
            return false;
        if (i)
            ocra_buf_puts(b, ", ");
        if (nl)
            ocra_buf_printf(b, "%.*s=", (int)nl, name);
        if (!put_arg(b, t, tl, args, len, args + 32 * i))
            return false;
        t += tl + (t[tl] == ',');
        name += nl + (name[nl] == ',');
        i++;
    }
    ocra_buf_putc(b, ')');
    return true;
}

bool
ocra_evm_revert_describe(const uint8_t *data, size_t len, char *out, size_t size)
{
    struct ocra_buf b = {0};
    bool ok = false;

    (void)pthread_once(&once, init);
    if (len < 4 || size == 0)
        return false;
    for (size_t i = 0; i < n_known && !ok; i++) {
        const char *h;

        if (memcmp(known[i].selector, data, 4) != 0)
            continue;
        ocra_buf_fini(&b);
        if (!describe(&b, &known[i], data + 4, len - 4))
            continue;
        if ((h = hint(known[i].signature)))
            ocra_buf_printf(&b, ": %s", h);
        ok = true;
    }
    if (ok)
        (void)snprintf(out, size, "%.*s", (int)b.len, b.data);
    ocra_buf_fini(&b);
    return ok;
}

bool
ocra_evm_revert_describe_hex(const char *hex, char *out, size_t size)
{
    uint8_t data[1024];
    size_t n;

    if (!hex || strncmp(hex, "0x", 2) != 0)
        return false;
    n = strlen(hex + 2);
    if (n % 2 || n / 2 > sizeof(data) || ocra_hex_decode(hex + 2, data, n / 2, NULL) < 0)
        return false;
    return ocra_evm_revert_describe(data, n / 2, out, size);
}
