/* SPDX-License-Identifier: Apache-2.0 */
/*
 * image_auth.c: registry authentication. Parses WWW-Authenticate challenges (hostile input:
 * bounded, strict), reads credentials from explicit options, a credentials file or Docker's
 * config.json `auths`, fetches bearer tokens from the challenge's realm and caches them per
 * scope until they expire. Credentials and tokens are secrets: wiped when freed, never logged,
 * never put in an error message.
 */
#include "image/image_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#define CHALLENGE_MAX (16u << 10)
#define PARAM_MAX (4u << 10)
#define TOKEN_MAX (64u << 10)

/* ---- WWW-Authenticate -------------------------------------------------------------------- */

struct lexer {
    const char *s;
    size_t len, pos;
};

static bool
is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static void
skip_ows(struct lexer *lx)
{
    while (lx->pos < lx->len && (lx->s[lx->pos] == ' ' || lx->s[lx->pos] == '\t'))
        lx->pos++;
}

/* A token into out (size PARAM_MAX); returns its length, 0 when none is there. */
static size_t
lex_token(struct lexer *lx, char *out)
{
    size_t n = 0;

    while (lx->pos < lx->len && is_tchar((unsigned char)lx->s[lx->pos]) && n < PARAM_MAX - 1)
        out[n++] = lx->s[lx->pos++];
    out[n] = '\0';
    return n;
}

static int
lex_quoted(struct lexer *lx, char *out, struct ocra_err *err)
{
    size_t n = 0;

    for (lx->pos++; lx->pos < lx->len; lx->pos++) {
        unsigned char c = (unsigned char)lx->s[lx->pos];

        if (c == '"') {
            lx->pos++;
            out[n] = '\0';
            return 0;
        }
        if (c == '\\' && ++lx->pos < lx->len)
            c = (unsigned char)lx->s[lx->pos];
        if ((c < 0x20 && c != '\t') || c >= 0x7f)
            return ocra_err_set(err, EPROTO, "control or non-ASCII byte in a quoted value");
        if (n >= PARAM_MAX - 1)
            return ocra_err_set(err, EPROTO, "value longer than %u bytes", PARAM_MAX - 1);
        out[n++] = (char)c;
    }
    return ocra_err_set(err, EPROTO, "unterminated quoted value");
}

static int
set_param(struct ocra_image_challenge *c, const char *name, const char *value, struct ocra_err *err)
{
    char **slot = NULL;

    if (strcasecmp(name, "realm") == 0)
        slot = &c->realm;
    else if (strcasecmp(name, "service") == 0)
        slot = &c->service;
    else if (strcasecmp(name, "scope") == 0)
        slot = &c->scope;
    if (!slot)
        return 0; /* error, error_description and the like are not ours to use */
    if (*slot)
        return ocra_err_set(err, EPROTO, "duplicate %s parameter", name);
    *slot = ocra_xstrdup(value);
    return 0;
}

/* Parses the auth-params after a scheme; stops before the next challenge's scheme. */
static int
lex_params(struct lexer *lx, struct ocra_image_challenge *c, char *name, char *value,
           struct ocra_err *err)
{
    for (;;) {
        size_t save;

        skip_ows(lx);
        while (lx->pos < lx->len && (lx->s[lx->pos] == ',' || lx->s[lx->pos] == ' '))
            lx->pos++;
        save = lx->pos;
        if (lx->pos >= lx->len || !lex_token(lx, name))
            break;
        skip_ows(lx);
        if (lx->pos >= lx->len || lx->s[lx->pos] != '=') {
            lx->pos = save; /* a token without '=': the next challenge's scheme */
            break;
        }
        lx->pos++;
        skip_ows(lx);
        if (lx->pos < lx->len && lx->s[lx->pos] == '"') {
            if (lex_quoted(lx, value, err) < 0)
                return -1;
        } else if (!lex_token(lx, value)) {
            return ocra_err_set(err, EPROTO, "parameter %s has no value", name);
        }
        if (c && set_param(c, name, value, err) < 0)
            return -1;
    }
    if (lx->pos < lx->len && !is_tchar((unsigned char)lx->s[lx->pos]))
        return ocra_err_set(err, EPROTO, "unexpected byte 0x%02x at %zu",
                            (unsigned char)lx->s[lx->pos], lx->pos);
    return 0;
}

static int
challenge_check(const struct ocra_image_challenge *c, struct ocra_err *err)
{
    if (c->scheme == OCRA_IMAGE_AUTH_NONE)
        return ocra_err_set(err, EPROTO, "no Basic or Bearer challenge");
    if (c->scheme != OCRA_IMAGE_AUTH_BEARER)
        return 0;
    if (!c->realm ||
        (strncmp(c->realm, "https://", 8) != 0 && strncmp(c->realm, "http://", 7) != 0))
        return ocra_err_set(err, EPROTO, "bearer challenge without an http(s) realm");
    if (strpbrk(c->realm, " \t\"\\<>"))
        return ocra_err_set(err, EPROTO, "bearer realm is not a URL");
    return 0;
}

static int
challenge_lex(struct lexer *lx, struct ocra_image_challenge *c, char *name, char *value,
              struct ocra_err *err)
{
    while (lx->pos < lx->len) {
        enum ocra_image_auth_scheme scheme = OCRA_IMAGE_AUTH_NONE;
        bool mine;

        skip_ows(lx);
        if (lx->pos < lx->len && lx->s[lx->pos] == ',') {
            lx->pos++;
            continue;
        }
        if (lx->pos >= lx->len)
            break;
        if (!lex_token(lx, name))
            return ocra_err_set(err, EPROTO, "expected an auth scheme at %zu", lx->pos);
        if (strcasecmp(name, "basic") == 0)
            scheme = OCRA_IMAGE_AUTH_BASIC;
        else if (strcasecmp(name, "bearer") == 0)
            scheme = OCRA_IMAGE_AUTH_BEARER;
        mine = c->scheme == OCRA_IMAGE_AUTH_NONE && scheme != OCRA_IMAGE_AUTH_NONE;
        if (mine)
            c->scheme = scheme;
        if (lex_params(lx, mine ? c : NULL, name, value, err) < 0)
            return -1;
    }
    return challenge_check(c, err);
}

int
ocra_image_challenge_parse(const char *s, size_t len, struct ocra_image_challenge *out,
                           struct ocra_err *err)
{
    struct ocra_image_challenge c = {0};
    struct lexer lx = {.s = s, .len = len};
    char *name = NULL, *value = NULL;
    int ret = -1;

    if (len > CHALLENGE_MAX) {
        ocra_err_set(err, EPROTO, "WWW-Authenticate longer than %u bytes", CHALLENGE_MAX);
        goto out;
    }
    name = ocra_xmalloc(PARAM_MAX);
    value = ocra_xmalloc(PARAM_MAX);
    if (challenge_lex(&lx, &c, name, value, err) < 0) {
        ocra_err_wrap(err, "WWW-Authenticate");
        goto out;
    }
    *out = c;
    memset(&c, 0, sizeof(c));
    ret = 0;
out:
    ocra_image_challenge_fini(&c);
    free(name);
    free(value);
    return ret;
}

void
ocra_image_challenge_fini(struct ocra_image_challenge *c)
{
    free(c->realm);
    free(c->service);
    free(c->scope);
    memset(c, 0, sizeof(*c));
}

/* ---- credentials ----------------------------------------------------------------------- */

static char *
basic_header(const char *userpass, size_t len)
{
    size_t cap = 4 * ((len + 2) / 3) + 1;
    char *b64 = ocra_xmalloc(cap), *hdr;

    EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)userpass, (int)len);
    hdr = ocra_xasprintf("Authorization: Basic %s", b64);
    ocra_secure_free(b64, cap);
    return hdr;
}

static bool
userpass_ok(const char *s, size_t len)
{
    const char *colon = memchr(s, ':', len);

    if (!colon || colon == s)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

/* Decodes a config.json "auth" value (base64 of user:password) into a Basic header. */
static int
basic_from_b64(const char *b64, char **out, struct ocra_err *err)
{
    size_t len = strlen(b64), cap = len / 4 * 3 + 1;
    unsigned char *raw = NULL;
    int n, ret = -1;

    if (len == 0 || len % 4 != 0 || len > 8192) {
        ocra_err_set(err, EINVAL, "auth is not base64 of user:password");
        goto out;
    }
    raw = ocra_xmalloc(cap);
    n = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)len);
    if (n < 0) {
        ocra_err_set(err, EINVAL, "auth is not base64 of user:password");
        goto out;
    }
    for (size_t i = len; i > 0 && b64[i - 1] == '='; i--)
        n--; /* EVP_DecodeBlock counts the padding as zero bytes */
    if (n <= 0 || !userpass_ok((const char *)raw, (size_t)n)) {
        ocra_err_set(err, EINVAL, "auth is not base64 of user:password");
        goto out;
    }
    *out = basic_header((const char *)raw, (size_t)n);
    ret = 0;
out:
    if (raw)
        ocra_secure_free(raw, cap);
    return ret;
}

/* "https://host:5000/v1/" and "host:5000" both name the origin host:5000. */
static bool
auths_key_matches(const char *key, const char *origin)
{
    const char *p = strstr(key, "://");
    size_t n;

    p = p ? p + 3 : key;
    n = strcspn(p, "/");
    return n == strlen(origin) && strncasecmp(p, origin, n) == 0;
}

/* A credential helper's name as Docker takes it: docker-credential-NAME, in PATH. */
static bool
helper_name_ok(const char *name)
{
    size_t n = strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-");

    return n > 0 && n < 64 && name[n] == '\0';
}

/*
 * Asks the credential helper docker-credential-NAME for origin's credentials, as the docker
 * CLI does (`get`, the server address on its input, {"Username","Secret"} on its output). A
 * helper that knows none (it exits non-zero) leaves the registry anonymous.
 */
static int
creds_helper(struct ocra_image_registry *r, const char *path, const char *name,
             struct ocra_err *err)
{
    char prog[96], get[] = "get", *out = NULL, *up = NULL;
    json_t *doc = NULL;
    const char *user, *secret;
    size_t len = 0;
    int status = 0, ret = -1;

    if (!helper_name_ok(name))
        return ocra_err_set(err, EINVAL,
                            "%s: credential helper \"%.64s\": want a name like \"pass\" (the "
                            "program docker-credential-NAME in PATH)",
                            path, name);
    (void)snprintf(prog, sizeof(prog), "docker-credential-%s", name);
    if (ocra_proc_run((char *const[]){prog, get, NULL}, r->origin, 64 * 1024, 30000, &out, &len,
                      &status, err) < 0) {
        if (err->code == ENOENT)
            ocra_err_set(err, ENOENT,
                         "%s names the credential helper %s, which is not in PATH: install it "
                         "or remove credsStore/credHelpers for %s",
                         path, prog, r->origin);
        else
            ocra_err_wrap(err, "%s: credentials for %s", path, r->origin);
        goto out;
    }
    if (status != 0) { /* "credentials not found in native keychain": anonymous */
        ret = 0;
        goto out;
    }
    doc = json_loadb(out, len, JSON_REJECT_DUPLICATES, NULL);
    user = ocra_json_str(doc, "Username");
    secret = ocra_json_str(doc, "Secret");
    if (!user || !secret) {
        ocra_err_set(err, EINVAL, "%s: %s get %s: want a JSON object with Username and Secret",
                     path, prog, r->origin);
        goto out;
    }
    if (strcmp(user, "<token>") == 0) {
        ocra_err_set(err, ENOTSUP,
                     "%s: %s gives an identity token for %s; ocra takes a user and password "
                     "(or a token as the password): log in with them",
                     path, prog, r->origin);
        goto out;
    }
    up = ocra_xasprintf("%s:%s", user, secret);
    if (!userpass_ok(up, strlen(up))) {
        ocra_err_set(err, EINVAL, "%s: %s get %s: empty user or control bytes", path, prog,
                     r->origin);
        goto out;
    }
    free(r->basic);
    r->basic = basic_header(up, strlen(up));
    ret = 0;
out:
    if (up)
        ocra_secure_free(up, strlen(up));
    if (out)
        ocra_secure_free(out, len);
    json_decref(doc); /* (jansson frees its copy of the secret without wiping it) */
    return ret;
}

static int
creds_docker_config(struct ocra_image_registry *r, const char *path, struct ocra_err *err)
{
    struct ocra_err e = {0};
    json_t *root = NULL, *auths, *helpers, *v;
    const char *key;
    int ret = -1;

    root = ocra_json_load_file(path, 1u << 20, 0, &e);
    if (!root) {
        ret = e.code == ENOENT ? 0 : ocra_err_copy(err, &e);
        goto out;
    }
    /* As docker: a registry's own helper first, then the store for all, then auths. */
    helpers = json_object_get(root, "credHelpers");
    json_object_foreach(json_is_object(helpers) ? helpers : NULL, key, v)
    {
        if (!auths_key_matches(key, r->origin))
            continue;
        if (!json_is_string(v)) {
            ocra_err_set(err, EINVAL, "%s: credHelpers.%s is not a string", path, key);
            goto out;
        }
        ret = creds_helper(r, path, json_string_value(v), err);
        goto out;
    }
    if (json_is_string(json_object_get(root, "credsStore")) &&
        *json_string_value(json_object_get(root, "credsStore"))) {
        ret = creds_helper(r, path, json_string_value(json_object_get(root, "credsStore")), err);
        if (ret < 0 || r->basic)
            goto out;
    }
    auths = json_object_get(root, "auths");
    if (auths && !json_is_object(auths)) {
        ocra_err_set(err, EINVAL, "%s: auths is not an object", path);
        goto out;
    }
    json_object_foreach(auths, key, v)
    {
        const char *b64 = ocra_json_str(v, "auth");

        if (!b64 || !auths_key_matches(key, r->origin))
            continue;
        if (basic_from_b64(b64, &r->basic, err) < 0) {
            ocra_err_wrap(err, "%s: auths.%s", path, r->origin);
            goto out;
        }
        break;
    }
    ret = 0;
out:
    json_decref(root);
    return ret;
}

static int
creds_file(struct ocra_image_registry *r, const char *path, struct ocra_err *err)
{
    struct stat st;
    char *data = NULL;
    size_t len = 0;
    int ret = -1;

    if (stat(path, &st) < 0) {
        ocra_err_sys(err, "credentials file %s", path);
        goto out;
    }
    if (st.st_mode & 077) {
        ocra_err_set(err, EACCES, "credentials file %s is readable by others (chmod 600)", path);
        goto out;
    }
    if (ocra_file_read(path, 8192, &data, &len, err) < 0)
        goto out;
    len = strcspn(data, "\r\n");
    if (!userpass_ok(data, len)) {
        ocra_err_set(err, EINVAL, "credentials file %s: want one line user:password", path);
        goto out;
    }
    r->basic = basic_header(data, len);
    ret = 0;
out:
    if (data)
        ocra_secure_free(data, strlen(data));
    return ret;
}

int
image_creds_load(struct ocra_image_registry *r, const struct ocra_image_registry_opts *opts,
                 struct ocra_err *err)
{
    const char *dir = getenv("DOCKER_CONFIG"), *home = getenv("HOME");
    char *path = NULL, *up;
    int ret;

    if (opts->username) {
        up = ocra_xasprintf("%s:%s", opts->username, opts->password ? opts->password : "");
        if (!userpass_ok(up, strlen(up)))
            ret = ocra_err_set(err, EINVAL, "username: empty or with control bytes");
        else
            r->basic = basic_header(up, strlen(up)), ret = 0;
        ocra_secure_free(up, strlen(up));
        return ret;
    }
    if (opts->credentials_file)
        return creds_file(r, opts->credentials_file, err);
    if (opts->docker_config)
        path = ocra_xstrdup(opts->docker_config);
    else if (dir)
        path = ocra_xasprintf("%s/config.json", dir);
    else if (home)
        path = ocra_xasprintf("%s/.docker/config.json", home);
    ret = path ? creds_docker_config(r, path, err) : 0;
    free(path);
    return ret;
}

/* ---- bearer tokens --------------------------------------------------------------------- */

void
image_url_escape(struct ocra_buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            strchr("-._~", c))
            ocra_buf_putc(b, (char)c);
        else
            ocra_buf_printf(b, "%%%02X", c);
    }
}

static void
token_clear(struct image_token *t)
{
    free(t->scope);
    if (t->value)
        ocra_secure_free(t->value, strlen(t->value));
    memset(t, 0, sizeof(*t));
}

void
image_tokens_free(struct ocra_image_registry *r)
{
    for (size_t i = 0; i < r->n_tokens; i++)
        token_clear(&r->tokens[i]);
    r->n_tokens = 0;
}

static char *
token_url(const struct ocra_image_registry *r, const char *scope)
{
    struct ocra_buf b;
    const char *p = scope;

    ocra_buf_init(&b);
    ocra_buf_puts(&b, r->realm);
    ocra_buf_putc(&b, strchr(r->realm, '?') ? '&' : '?');
    if (r->service) {
        ocra_buf_puts(&b, "service=");
        image_url_escape(&b, r->service);
    }
    while (*p) {
        size_t n = strcspn(p, " ");
        char *one = ocra_xstrndup(p, n);

        ocra_buf_puts(&b, b.data[b.len - 1] == '?' ? "scope=" : "&scope=");
        image_url_escape(&b, one);
        free(one);
        p += n + (p[n] == ' ');
    }
    return ocra_buf_take(&b);
}

/* The token from a token endpoint's JSON reply; it goes into a header, so visible ASCII only. */
static int
token_parse(const struct ocra_http_resp *resp, char **value, int64_t *expires_in,
            struct ocra_err *err)
{
    json_t *j = ocra_json_parse(resp->body, resp->body_len, 0, err);
    const char *t;
    int ret = -1;

    if (!j)
        return ocra_err_wrap(err, "token reply");
    t = ocra_json_str(j, "token");
    if (!t)
        t = ocra_json_str(j, "access_token");
    if (!t || !*t || strlen(t) > TOKEN_MAX) {
        ocra_err_set(err, EPROTO, "token reply without a token");
        goto out;
    }
    for (const char *p = t; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f) {
            ocra_err_set(err, EPROTO, "token reply: token is not visible ASCII");
            goto out;
        }
    *expires_in = ocra_json_int(j, "expires_in", 60);
    *value = ocra_xstrdup(t);
    ret = 0;
out:
    json_decref(j);
    return ret;
}

static int
token_fetch(struct ocra_image_registry *r, const char *scope, struct ocra_err *err)
{
    char *url = token_url(r, scope);
    const char *headers[] = {r->basic, NULL};
    struct ocra_http_req req = {.method = "GET",
                                .url = url,
                                .headers = headers,
                                .timeout_ms = r->timeout_ms,
                                .max_response = TOKEN_MAX * 2};
    struct ocra_http_resp resp = {0};
    struct image_token *t;
    int64_t expires_in = 60;
    char *value = NULL;
    int ret = -1;

    if (ocra_http_do(&req, &resp, err) < 0)
        goto out;
    if (resp.status != 200) {
        ocra_err_set(err,
                     resp.status == 401 || resp.status == 403 ? EACCES
                                                              : ocra_http_status_errno(resp.status),
                     "token endpoint: HTTP %ld", resp.status);
        goto out;
    }
    if (token_parse(&resp, &value, &expires_in, err) < 0)
        goto out;
    if (r->n_tokens == IMAGE_TOKENS_MAX)
        image_tokens_free(r); /* a small cache; refilling it costs one request per scope */
    t = &r->tokens[r->n_tokens++];
    t->scope = ocra_xstrdup(scope);
    t->value = value;
    /* renew 10 s early so a token does not expire in the middle of a request */
    expires_in = expires_in < 20 ? 10 : expires_in - 10;
    t->expires_ns = ocra_time_mono_ns() + (uint64_t)expires_in * 1000000000u;
    ret = 0;
out:
    if (ret < 0)
        ocra_err_wrap(err, "bearer token for %s", scope);
    ocra_http_resp_fini(&resp);
    free(url);
    return ret;
}

static void
token_drop(struct ocra_image_registry *r, const char *scope)
{
    for (size_t i = 0; i < r->n_tokens; i++)
        if (strcmp(r->tokens[i].scope, scope) == 0) {
            token_clear(&r->tokens[i]);
            r->tokens[i] = r->tokens[--r->n_tokens];
            memset(&r->tokens[r->n_tokens], 0, sizeof(r->tokens[0]));
            return;
        }
}

static struct image_token *
token_find(struct ocra_image_registry *r, const char *scope)
{
    uint64_t now = ocra_time_mono_ns();

    for (size_t i = 0; i < r->n_tokens; i++)
        if (strcmp(r->tokens[i].scope, scope) == 0) {
            if (r->tokens[i].expires_ns > now)
                return &r->tokens[i];
            token_drop(r, scope);
            return NULL;
        }
    return NULL;
}

int
image_auth_header(struct ocra_image_registry *r, const char *scope, char **out,
                  struct ocra_err *err)
{
    struct image_token *t;

    *out = NULL;
    if (r->scheme == OCRA_IMAGE_AUTH_BASIC && r->basic)
        *out = ocra_xstrdup(r->basic);
    if (r->scheme != OCRA_IMAGE_AUTH_BEARER || !scope)
        return 0;
    t = token_find(r, scope);
    if (!t) {
        if (token_fetch(r, scope, err) < 0)
            return -1;
        t = &r->tokens[r->n_tokens - 1];
    }
    *out = ocra_xasprintf("Authorization: Bearer %s", t->value);
    return 0;
}

int
image_auth_on_401(struct ocra_image_registry *r, const struct ocra_http_resp *resp,
                  const char *scope, struct ocra_err *err)
{
    struct ocra_image_challenge c = {0};
    char *value = ocra_xmalloc(CHALLENGE_MAX + 1);
    long n = ocra_http_resp_header(resp, "WWW-Authenticate", value, CHALLENGE_MAX + 1);
    int ret = -1;

    if (n < 0) {
        ocra_err_set(err, EACCES, "HTTP 401 without a usable WWW-Authenticate");
        goto out;
    }
    if (ocra_image_challenge_parse(value, (size_t)n, &c, err) < 0)
        goto out;
    if (c.scheme == OCRA_IMAGE_AUTH_BASIC && (!r->basic || r->scheme == OCRA_IMAGE_AUTH_BASIC)) {
        ocra_err_set(err, EACCES, r->basic ? "credentials rejected" : "registry wants credentials");
        goto out;
    }
    if (c.scheme == OCRA_IMAGE_AUTH_BEARER) {
        free(r->realm);
        free(r->service);
        r->realm = c.realm;
        r->service = c.service;
        c.realm = c.service = NULL;
        if (scope)
            token_drop(r, scope); /* refused or revoked: the retry fetches a new one */
    }
    r->scheme = c.scheme;
    ret = 0;
out:
    ocra_image_challenge_fini(&c);
    free(value);
    return ret;
}

int
ocra_image_registry_credentials(const struct ocra_image_registry *r, char **username,
                                char **password)
{
    static const char prefix[] = "Authorization: Basic ";
    const char *b64;
    size_t len, cap;
    unsigned char *raw;
    const char *colon;
    int n;

    if (!r->basic || strncmp(r->basic, prefix, sizeof(prefix) - 1) != 0)
        return 0;
    b64 = r->basic + sizeof(prefix) - 1;
    len = strlen(b64);
    cap = len / 4 * 3 + 1;
    raw = ocra_xcalloc(1, cap);
    n = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)len);
    for (size_t i = len; i > 0 && b64[i - 1] == '='; i--)
        n--; /* EVP_DecodeBlock counts the padding as zero bytes */
    colon = n > 0 ? memchr(raw, ':', (size_t)n) : NULL;
    if (!colon) { /* cannot happen: every r->basic was made from user:password */
        ocra_secure_free(raw, cap);
        return 0;
    }
    *username = ocra_xstrndup((const char *)raw, (size_t)(colon - (const char *)raw));
    *password = ocra_xstrndup(colon + 1, (size_t)n - (size_t)(colon - (const char *)raw) - 1);
    ocra_secure_free(raw, cap);
    return 1;
}
