/* SPDX-License-Identifier: Apache-2.0 */
/*
 * spec_lex.c: the lexical rules of the model spec, written as small hand-made scanners rather
 * than regular expressions so that each accepts exactly the documented grammar and nothing
 * else (no locale, no backtracking). Names, PEP 440 versions, tool names (the known table and
 * PEP 508), docker image references, artifact URIs under the operator's policy, and sha256.
 */
#include "spec/spec_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool
is_lower_alnum(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z');
}

static bool
is_alnum(char c)
{
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static bool
is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Skips one or more digits; false when there is none. */
static bool
skip_digits(const char **p)
{
    if (!is_digit(**p))
        return false;
    while (is_digit(**p))
        (*p)++;
    return true;
}

/* ---- names ----------------------------------------------------------------------------- */

bool
spec_path_component(const char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        size_t run = 0;

        if (!is_lower_alnum(s[i]))
            return false;
        while (i < n && is_lower_alnum(s[i]))
            i++;
        if (i == n)
            return true;
        /* separator: "." | "_" | "__" | "-"+ , then alphanumerics again */
        if (s[i] == '.') {
            run = 1;
        } else if (s[i] == '_') {
            run = (i + 1 < n && s[i + 1] == '_') ? 2 : 1;
        } else {
            while (i + run < n && s[i + run] == '-')
                run++;
            if (run == 0)
                return false;
        }
        i += run;
        if (i == n)
            return false;
    }
    return n > 0;
}

bool
ocra_spec_name_valid(const char *s)
{
    size_t n = strlen(s);

    /* docs/SPEC.md's [a-z0-9][a-z0-9._-]{0,127}, tightened to what an image repository takes */
    return n >= 1 && n <= OCRA_SPEC_MAX_NAME && spec_path_component(s, n);
}

/* ---- PEP 440 --------------------------------------------------------------------------- */

/* [N!]N(.N)* */
static bool
pep440_release(const char **p)
{
    const char *q = *p;

    if (skip_digits(&q) && *q == '!')
        *p = q + 1;
    if (!skip_digits(p))
        return false;
    while ((*p)[0] == '.' && is_digit((*p)[1])) {
        (*p)++;
        skip_digits(p);
    }
    return true;
}

/* [{a|b|rc}N][.postN][.devN] */
static bool
pep440_suffixes(const char **p)
{
    if (**p == 'a' || **p == 'b' || strncmp(*p, "rc", 2) == 0) {
        *p += **p == 'r' ? 2 : 1;
        if (!skip_digits(p))
            return false;
    }
    if (strncmp(*p, ".post", 5) == 0) {
        *p += 5;
        if (!skip_digits(p))
            return false;
    }
    if (strncmp(*p, ".dev", 4) == 0) {
        *p += 4;
        if (!skip_digits(p))
            return false;
    }
    return true;
}

/* [+label(.label)*], label = [a-z0-9]+ */
static bool
pep440_local(const char **p)
{
    if (**p != '+')
        return true;
    do {
        (*p)++;
        if (!is_lower_alnum(**p))
            return false;
        while (is_lower_alnum(**p))
            (*p)++;
    } while (**p == '.');
    return true;
}

bool
ocra_spec_version_valid(const char *s)
{
    const char *p = s;
    size_t n = strlen(s);

    if (n == 0 || n > OCRA_SPEC_MAX_VERSION)
        return false;
    return pep440_release(&p) && pep440_suffixes(&p) && pep440_local(&p) && *p == '\0';
}

/* ---- tools ----------------------------------------------------------------------------- */

static const struct {
    const char *name, *package;
    bool system;
} known_tools[] = {
    {"PyTorch", "torch", false},
    {"TensorFlow", "tensorflow", false},
    {"JAX", "jax", false},
    {"Keras", "keras", false},
    {"transformers", "transformers", false},
    {"tokenizers", "tokenizers", false},
    {"safetensors", "safetensors", false},
    {"accelerate", "accelerate", false},
    {"diffusers", "diffusers", false},
    {"PEFT", "peft", false},
    {"DeepSpeed", "deepspeed", false},
    {"vLLM", "vllm", false},
    {"xFormers", "xformers", false},
    {"Triton", "triton", false},
    {"bitsandbytes", "bitsandbytes", false},
    {"ONNX", "onnx", false},
    {"ONNXRuntime", "onnxruntime", false},
    {"TensorRT", "tensorrt", false},
    {"scikit-learn", "scikit-learn", false},
    {"NumPy", "numpy", false},
    {"torchvision", "torchvision", false},
    {"torchaudio", "torchaudio", false},
    {"sentencepiece", "sentencepiece", false},
    {"flash-attn", "flash-attn", false},
    {"CUDA", "cuda", true},
    {"cuDNN", "cudnn", true},
    {"NCCL", "nccl", true},
    {"Python", "python", true},
};

/* PEP 508: ^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$ ignoring case */
static bool
pep508_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > OCRA_SPEC_MAX_TOOL_NAME || !is_alnum(s[0]) || !is_alnum(s[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return false;
    return true;
}

bool
spec_tool_lookup(const char *name, struct spec_tool_info *info)
{
    for (size_t i = 0; i < OCRA_ARRAY_LEN(known_tools); i++) {
        if (strcasecmp(name, known_tools[i].name) == 0) {
            info->package = known_tools[i].package;
            info->system = known_tools[i].system;
            return true;
        }
    }
    info->package = NULL;
    info->system = false;
    return pep508_name(name);
}

char *
spec_pep503_normalise(const char *name)
{
    char *out = ocra_xmalloc(strlen(name) + 1);
    size_t o = 0;

    for (const char *p = name; *p; p++) {
        if (*p == '.' || *p == '_' || *p == '-') {
            if (o == 0 || out[o - 1] != '-')
                out[o++] = '-';
        } else {
            out[o++] = (*p >= 'A' && *p <= 'Z') ? (char)(*p - 'A' + 'a') : *p;
        }
    }
    out[o] = '\0';
    return out;
}

/* ---- sha256 ---------------------------------------------------------------------------- */

bool
spec_sha256_valid(const char *s)
{
    size_t i;

    for (i = 0; i < 64; i++)
        if (!is_hex(s[i]))
            return false;
    return s[64] == '\0';
}

/* ---- image references ------------------------------------------------------------------ */

/* host(.host)*[:port], host = [A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])? */
static bool
image_domain(const char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        size_t start = i;

        while (i < n && (is_alnum(s[i]) || s[i] == '-'))
            i++;
        if (i == start || s[start] == '-' || s[i - 1] == '-')
            return false;
        if (i < n && s[i] == ':') {
            size_t digits = n - i - 1;

            for (size_t k = i + 1; k < n; k++)
                if (!is_digit(s[k]))
                    return false;
            return digits >= 1 && digits <= 5;
        }
        if (i == n)
            return true;
        if (s[i++] != '.' || i == n)
            return false;
    }
    return false;
}

/* [A-Za-z0-9_][A-Za-z0-9_.-]{0,127} */
static bool
image_tag(const char *s, size_t n)
{
    if (n == 0 || n > 128 || s[0] == '.' || s[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-')
            return false;
    return true;
}

static bool
image_name(const char *s, size_t n)
{
    const char *slash = memchr(s, '/', n);
    size_t first = slash ? (size_t)(slash - s) : n;
    size_t i = 0;

    if (n == 0 || n > 255)
        return false;
    if (slash && (memchr(s, '.', first) || memchr(s, ':', first) ||
                  (first == 9 && memcmp(s, "localhost", 9) == 0))) {
        if (!image_domain(s, first))
            return false;
        i = first + 1;
    }
    while (i <= n) {
        const char *end = memchr(s + i, '/', n - i);
        size_t len = end ? (size_t)(end - (s + i)) : n - i;

        if (!spec_path_component(s + i, len))
            return false;
        i += len + 1;
    }
    return true;
}

bool
ocra_spec_image_ref_valid(const char *s)
{
    size_t n = strlen(s), name_len;
    const char *at = strchr(s, '@'), *colon, *slash;

    if (n == 0 || n > OCRA_SPEC_MAX_IMAGE_REF)
        return false;
    if (at) {
        if (strncmp(at + 1, "sha256:", 7) != 0 || !spec_sha256_valid(at + 8))
            return false;
        for (const char *h = at + 8; *h; h++)
            if (*h >= 'A' && *h <= 'F')
                return false;
        n = (size_t)(at - s);
    }
    colon = memrchr(s, ':', n);
    slash = memrchr(s, '/', n);
    name_len = n;
    if (colon && (!slash || colon > slash)) {
        if (!image_tag(colon + 1, n - (size_t)(colon - s) - 1))
            return false;
        name_len = (size_t)(colon - s);
    }
    return image_name(s, name_len);
}

/* ---- URIs ------------------------------------------------------------------------------ */

/* RFC 3986 characters only, each '%' followed by two hex digits. */
static bool
uri_chars(const char *u)
{
    for (const char *p = u; *p; p++) {
        unsigned char c = (unsigned char)*p;

        if (c <= 0x20 || c >= 0x7f || strchr("<>\"{}|\\^`", c))
            return false;
        if (c == '%' && (!is_hex(p[1]) || !is_hex(p[2])))
            return false;
    }
    return true;
}

/* Length of the host part of an authority (without ":port"), or 0 when malformed. */
static size_t
uri_host_len(const char *a, size_t n)
{
    size_t h = 0;

    if (n > 0 && a[0] == '[') {
        while (h < n && a[h] != ']')
            h++;
        if (h == n || h == 1)
            return 0;
        h++;
    } else {
        while (h < n && (is_alnum(a[h]) || a[h] == '.' || a[h] == '-'))
            h++;
        if (h == 0)
            return 0;
    }
    if (h < n) {
        unsigned port = 0;

        if (a[h] != ':' || n - h < 2 || n - h > 6)
            return 0;
        for (size_t k = h + 1; k < n; k++) {
            if (!is_digit(a[k]))
                return 0;
            port = port * 10 + (unsigned)(a[k] - '0');
        }
        if (port < 1 || port > 65535)
            return 0;
    }
    return h;
}

static bool
uri_http_allowed(const char *a, size_t n, size_t host_len, const struct ocra_spec_policy *pol)
{
    for (size_t i = 0; pol && pol->http_hosts && i < pol->n_http_hosts; i++) {
        const char *e = pol->http_hosts[i];
        size_t en = e ? strlen(e) : 0;

        if (!e)
            continue;
        if ((en == n && strncasecmp(a, e, n) == 0) ||
            (en == host_len && strncasecmp(a, e, host_len) == 0))
            return true;
    }
    return false;
}

/* Why a literal address of each class (enum ocra_net_kind) is refused. */
static const char *const address_why[] = {
    "",
    "names a loopback address, which the operator's policy does not allow",
    "names a private address, which the operator's policy does not allow",
    "names a link-local address, which the operator's policy does not allow",
    "names a cloud metadata address, which the operator's policy does not allow",
    "names a reserved address (unspecified, multicast, broadcast, documentation), which the "
    "operator's policy does not allow",
};

/* The host a[0..n) when it is a literal address (or localhost): public, or one the policy
 * allows. A name is judged when the fetch connects. */
static const char *
uri_host_address(const char *a, size_t n, const struct ocra_spec_policy *pol, const char **why)
{
    struct ocra_net_addr addr;
    enum ocra_net_kind kind;
    char *host;
    int lit = ocra_net_host_addr(a, n, &addr);
    bool ok;

    if (lit < 0) {
        *why = "has a host that ends in a number but is not an IP address";
        return "uri.syntax";
    }
    if (lit == 0)
        return NULL;
    host = a[0] == '[' ? ocra_xstrndup(a + 1, n - 2) : ocra_xstrndup(a, n);
    ok = ocra_net_allowed(host, &addr, pol ? pol->allow_hosts : NULL, pol ? pol->n_allow_hosts : 0,
                          &kind);
    free(host);
    if (ok)
        return NULL;
    *why = (size_t)kind < OCRA_ARRAY_LEN(address_why) ? address_why[kind] : address_why[5];
    return "uri.address";
}

/* The "//authority/path" part of an http(s) URI. */
static const char *
uri_hier(const char *rest, bool http, const struct ocra_spec_policy *pol, const char **why)
{
    const char *a;
    size_t n, host_len;

    if (strncmp(rest, "//", 2) != 0) {
        *why = "has no //host";
        return "uri.syntax";
    }
    a = rest + 2;
    n = strcspn(a, "/?#");
    if (memchr(a, '@', n)) {
        *why = "carries userinfo (user@); credentials never go in a spec";
        return "uri.userinfo";
    }
    host_len = uri_host_len(a, n);
    if (host_len == 0 || a[n] != '/' || a[n + 1] == '\0') {
        *why = "is not scheme://host[:port]/path";
        return "uri.syntax";
    }
    if (http && !uri_http_allowed(a, n, host_len, pol)) {
        *why = "uses plain http with a host the operator's policy does not list";
        return "uri.http";
    }
    return uri_host_address(a, host_len, pol, why);
}

const char *
spec_uri_check(const char *uri, const struct ocra_spec_policy *pol, const char **why)
{
    size_t sn = 0;

    if (is_alnum(uri[0]) && !is_digit(uri[0]))
        while (is_alnum(uri[sn]) || uri[sn] == '+' || uri[sn] == '.' || uri[sn] == '-')
            sn++;
    if (sn == 0 || uri[sn] != ':') {
        *why = "has no scheme";
        return "uri.syntax";
    }
    if (!uri_chars(uri)) {
        *why = "contains whitespace, control or non-URI characters";
        return "uri.syntax";
    }
    if (sn == 5 && strncasecmp(uri, "https", 5) == 0)
        return uri_hier(uri + 6, false, pol, why);
    if (sn == 4 && strncasecmp(uri, "http", 4) == 0)
        return uri_hier(uri + 5, true, pol, why);
    if (sn == 4 && strncasecmp(uri, "file", 4) == 0 && pol && pol->allow_file) {
        /* file:///abs/path or file:/abs/path: no host */
        const char *p = uri + 5;

        if (strncmp(p, "///", 3) == 0)
            p += 2;
        if (p[0] != '/' || p[1] == '/' || p[1] == '\0') {
            *why = "is not file:///absolute/path";
            return "uri.syntax";
        }
        return NULL;
    }
    *why = sn == 4 && strncasecmp(uri, "file", 4) == 0
               ? "uses file:, allowed only for specs read from local disk"
               : "has a scheme other than https (or http for listed hosts)";
    return "uri.scheme";
}
