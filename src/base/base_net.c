/* SPDX-License-Identifier: Apache-2.0 */
/*
 * base_net.c: network addresses for the destination policy of hostile URLs. Literals are read
 * the way URL parsers and resolvers read them (IPv4 in its decimal, hex and octal forms), every
 * address is classified by the IANA special-purpose registries (loopback, private, link-local,
 * cloud metadata, reserved), and the operator's allow entries (host names, addresses, CIDRs)
 * are matched. Pure functions; src/spec judges literal hosts with them, src/http the address
 * a connection is about to be opened to.
 */
#include "base/base.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

/* ---- parsing --------------------------------------------------------------------------- */

static int
digit_value(char c, unsigned base)
{
    int d = -1;

    if (c >= '0' && c <= '9')
        d = c - '0';
    else if (c >= 'a' && c <= 'f')
        d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
        d = c - 'A' + 10;
    return d >= 0 && (unsigned)d < base ? d : -1;
}

/* One part of an IPv4 literal: decimal, 0x hex (0x alone is 0) or 0-led octal, <= 2^32 - 1. */
static int
v4_part(const char *s, size_t n, uint64_t *out)
{
    unsigned base = 10;
    uint64_t v = 0;

    if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
        n -= 2;
    } else if (n >= 2 && s[0] == '0') {
        base = 8;
        s++;
        n--;
    } else if (n == 0) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        int d = digit_value(s[i], base);

        if (d < 0)
            return -1;
        v = v * base + (unsigned)d;
        if (v > UINT32_MAX)
            return -1;
    }
    *out = v;
    return 0;
}

/* An IPv4 literal of 1 to 4 parts (the last fills the remaining bytes), one trailing dot. */
static int
parse_v4(const char *s, size_t n, struct ocra_net_addr *out)
{
    uint64_t part[4], v;
    size_t np = 0;
    const char *p = s, *end;

    if (n > 0 && s[n - 1] == '.')
        n--;
    if (n == 0)
        return -1;
    end = s + n;
    for (;;) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        size_t len = dot ? (size_t)(dot - p) : (size_t)(end - p);

        if (np == 4 || v4_part(p, len, &part[np++]) < 0)
            return -1;
        if (!dot)
            break;
        p = dot + 1;
    }
    for (size_t i = 0; i + 1 < np; i++)
        if (part[i] > 255)
            return -1;
    if (part[np - 1] >= (UINT64_C(1) << (8 * (5 - np))))
        return -1;
    v = part[np - 1];
    for (size_t i = 0; i + 1 < np; i++)
        v |= part[i] << (8 * (3 - i));
    memset(out->b, 0, 10);
    out->b[10] = out->b[11] = 0xff;
    out->b[12] = (uint8_t)(v >> 24);
    out->b[13] = (uint8_t)(v >> 16);
    out->b[14] = (uint8_t)(v >> 8);
    out->b[15] = (uint8_t)v;
    return 0;
}

/* An IPv6 literal, brackets and a %zone allowed. */
static int
parse_v6(const char *s, size_t n, struct ocra_net_addr *out)
{
    char buf[64];
    const char *pct;

    if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
        s++;
        n -= 2;
    }
    pct = memchr(s, '%', n);
    if (pct)
        n = (size_t)(pct - s);
    if (n == 0 || n >= sizeof(buf) || !memchr(s, ':', n))
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return inet_pton(AF_INET6, buf, out->b) == 1 ? 0 : -1;
}

int
ocra_net_addr_parse(const char *s, size_t n, struct ocra_net_addr *out)
{
    struct ocra_net_addr a;

    if (parse_v6(s, n, &a) < 0 && parse_v4(s, n, &a) < 0)
        return -1;
    *out = a;
    return 0;
}

/* True when the last label of s[0..n) (one trailing dot dropped) is numeric. */
static bool
host_numeric(const char *s, size_t n)
{
    const char *label;
    size_t len;

    if (n > 0 && s[n - 1] == '.')
        n--;
    label = memrchr(s, '.', n);
    label = label ? label + 1 : s;
    len = n - (size_t)(label - s);
    if (len >= 2 && label[0] == '0' && (label[1] == 'x' || label[1] == 'X')) {
        for (size_t i = 2; i < len; i++)
            if (digit_value(label[i], 16) < 0)
                return false;
        return true;
    }
    for (size_t i = 0; i < len; i++)
        if (label[i] < '0' || label[i] > '9')
            return false;
    return len > 0;
}

/* "localhost", "localhost." and names under it (RFC 6761: they resolve to loopback). */
static bool
is_localhost(const char *s, size_t n)
{
    static const char lh[] = "localhost";
    const size_t lhn = sizeof(lh) - 1;

    if (n > 0 && s[n - 1] == '.')
        n--;
    return n >= lhn && strncasecmp(s + n - lhn, lh, lhn) == 0 &&
           (n == lhn || s[n - lhn - 1] == '.');
}

int
ocra_net_host_addr(const char *s, size_t n, struct ocra_net_addr *out)
{
    if (n > 0 && s[0] == '[')
        return parse_v6(s, n, out) < 0 ? -1 : 1;
    if (is_localhost(s, n))
        return parse_v4("127.0.0.1", 9, out) < 0 ? -1 : 1;
    if (!host_numeric(s, n))
        return 0;
    return parse_v4(s, n, out) < 0 ? -1 : 1;
}

/* ---- classes --------------------------------------------------------------------------- */

struct range {
    uint8_t p[16];
    uint8_t bits;
    uint8_t kind; /* enum ocra_net_kind */
};

#define V4(a, b, c, d, n, k)                                                                       \
    {                                                                                              \
        {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d}, 96 + (n), OCRA_NET_##k             \
    }
#define V6(a, b, c, n, k)                                                                          \
    {                                                                                              \
        {(a) >> 8, (a)&0xff, (b) >> 8, (b)&0xff, (c) >> 8, (c)&0xff}, n, OCRA_NET_##k              \
    }

/* First match wins: the more specific ranges come first. */
static const struct range ranges[] = {
    V4(169, 254, 169, 254, 32, METADATA), /* AWS, GCP, Azure, OCI, OpenStack */
    V4(169, 254, 170, 2, 32, METADATA),   /* AWS ECS task metadata */
    V4(100, 100, 100, 200, 32, METADATA), /* Alibaba Cloud */
    V4(168, 63, 129, 16, 32, METADATA),   /* Azure wire server (a public address) */
    V4(0, 0, 0, 0, 8, RESERVED),          /* "this network": 0.0.0.0 reaches this host */
    V4(10, 0, 0, 0, 8, PRIVATE),
    V4(100, 64, 0, 0, 10, PRIVATE), /* shared address space (carrier-grade NAT) */
    V4(127, 0, 0, 0, 8, LOOPBACK),
    V4(169, 254, 0, 0, 16, LINK_LOCAL),
    V4(172, 16, 0, 0, 12, PRIVATE),
    V4(192, 0, 0, 0, 24, RESERVED), /* IETF protocol assignments */
    V4(192, 0, 2, 0, 24, RESERVED), /* documentation */
    V4(192, 168, 0, 0, 16, PRIVATE),
    V4(198, 18, 0, 0, 15, RESERVED),   /* benchmarking */
    V4(198, 51, 100, 0, 24, RESERVED), /* documentation */
    V4(203, 0, 113, 0, 24, RESERVED),  /* documentation */
    V4(224, 0, 0, 0, 4, RESERVED),     /* multicast */
    V4(240, 0, 0, 0, 4, RESERVED),     /* future use, broadcast */
    /* AWS instance metadata over IPv6: fd00:ec2::254 */
    {{0xfd, 0, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54}, 128, OCRA_NET_METADATA},
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, OCRA_NET_LOOPBACK}, /* ::1 */
    V6(0, 0, 0, 96, RESERVED),                                     /* ::, IPv4-compatible */
    {{0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, 96, OCRA_NET_RESERVED}, /* IPv4-translated */
    V6(0x0064, 0xff9b, 0x0001, 48, PRIVATE),                       /* local-use NAT64 */
    V6(0x0100, 0, 0, 64, RESERVED),                                /* discard */
    V6(0x2001, 0x0db8, 0, 32, RESERVED),                           /* documentation */
    V6(0xfc00, 0, 0, 7, PRIVATE),                                  /* unique local */
    V6(0xfe80, 0, 0, 10, LINK_LOCAL),
    V6(0xfec0, 0, 0, 10, PRIVATE), /* site-local (deprecated) */
    V6(0xff00, 0, 0, 8, RESERVED), /* multicast */
};

static bool
in_prefix(const struct ocra_net_addr *a, const uint8_t *p, unsigned bits)
{
    unsigned full = bits / 8, rem = bits % 8;
    uint8_t mask;

    if (memcmp(a->b, p, full) != 0)
        return false;
    if (rem == 0)
        return true;
    mask = (uint8_t)(0xffu << (8 - rem));
    return (a->b[full] & mask) == (p[full] & mask);
}

/* The IPv4 address that NAT64 (64:ff9b::/96) or 6to4 (2002::/16) carries, mapped. */
static bool
embedded_v4(const struct ocra_net_addr *a, struct ocra_net_addr *v4)
{
    static const uint8_t nat64[12] = {0x00, 0x64, 0xff, 0x9b};
    const uint8_t *src;

    if (memcmp(a->b, nat64, sizeof(nat64)) == 0)
        src = a->b + 12;
    else if (a->b[0] == 0x20 && a->b[1] == 0x02)
        src = a->b + 2;
    else
        return false;
    memset(v4->b, 0, 10);
    v4->b[10] = v4->b[11] = 0xff;
    memcpy(v4->b + 12, src, 4);
    return true;
}

enum ocra_net_kind
ocra_net_addr_kind(const struct ocra_net_addr *a)
{
    struct ocra_net_addr v4;

    for (size_t i = 0; i < OCRA_ARRAY_LEN(ranges); i++)
        if (in_prefix(a, ranges[i].p, ranges[i].bits))
            return (enum ocra_net_kind)ranges[i].kind;
    if (embedded_v4(a, &v4))
        return ocra_net_addr_kind(&v4);
    return OCRA_NET_PUBLIC;
}

const char *
ocra_net_kind_name(enum ocra_net_kind k)
{
    static const char *const names[] = {"public",     "loopback", "private",
                                        "link-local", "metadata", "reserved"};

    return (size_t)k < OCRA_ARRAY_LEN(names) ? names[k] : "?";
}

char *
ocra_net_addr_format(const struct ocra_net_addr *a, char out[OCRA_NET_ADDR_STRLEN])
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    if (memcmp(a->b, mapped, sizeof(mapped)) == 0)
        inet_ntop(AF_INET, a->b + 12, out, OCRA_NET_ADDR_STRLEN);
    else
        inet_ntop(AF_INET6, a->b, out, OCRA_NET_ADDR_STRLEN);
    return out;
}

/* ---- the operator's allow entries ------------------------------------------------------ */

/* "ADDR" or "ADDR/BITS" (an IPv4 prefix length counts in the mapped form). */
static int
parse_cidr(const char *s, struct ocra_net_addr *net, unsigned *bits)
{
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    bool v4 = parse_v6(s, n, net) < 0;
    int64_t len;

    if (v4 && parse_v4(s, n, net) < 0)
        return -1;
    if (v4 && (n == 0 || s[n - 1] == '.'))
        return -1; /* "1.2.3.4." is a host name here, not a CIDR */
    if (!slash) {
        *bits = 128;
        return 0;
    }
    if (slash[1] == '\0' || ocra_parse_i64(slash + 1, 0, v4 ? 32 : 128, &len, NULL) < 0)
        return -1;
    *bits = (unsigned)len + (v4 ? 96 : 0);
    return 0;
}

/* A DNS name: labels of letters, digits, '-' and '_' of 1..63 bytes, at most 253 in all. */
static bool
host_name_valid(const char *s)
{
    size_t n = strlen(s), label = 0;

    if (n > 0 && s[n - 1] == '.')
        n--;
    if (n == 0 || n > 253 || host_numeric(s, n))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else {
            char c = s[i];

            if (++label > 63 || !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                                  (c >= 'A' && c <= 'Z') || c == '-' || c == '_'))
                return false;
        }
    }
    return label > 0;
}

bool
ocra_net_allow_entry_valid(const char *s)
{
    struct ocra_net_addr net;
    unsigned bits;

    return parse_cidr(s, &net, &bits) == 0 || host_name_valid(s);
}

/* Host names equal, case-insensitive, one trailing dot on either side ignored. */
static bool
name_eq(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);

    if (na > 0 && a[na - 1] == '.')
        na--;
    if (nb > 0 && b[nb - 1] == '.')
        nb--;
    return na == nb && na > 0 && strncasecmp(a, b, na) == 0;
}

bool
ocra_net_allowed(const char *host, const struct ocra_net_addr *addr, const char *const *allow,
                 size_t n_allow, enum ocra_net_kind *kind)
{
    enum ocra_net_kind k = ocra_net_addr_kind(addr);
    struct ocra_net_addr net;
    unsigned bits;

    if (kind)
        *kind = k;
    if (k == OCRA_NET_PUBLIC)
        return true;
    for (size_t i = 0; allow && i < n_allow; i++) {
        if (!allow[i])
            continue;
        if (parse_cidr(allow[i], &net, &bits) == 0) {
            if (in_prefix(addr, net.b, bits))
                return true;
        } else if (host && name_eq(host, allow[i])) {
            return true;
        }
    }
    return false;
}
