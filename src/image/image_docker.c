/* SPDX-License-Identifier: Apache-2.0 */
/*
 * image_docker.c: the Docker Engine API client, over the engine's unix socket. It negotiates
 * the API version once (GET /version: the lower of the engine's and ours), builds images from
 * a tar context that libarchive writes into an unlinked temporary file (sorted entries, fixed
 * times and owners), and reads the engine's JSON progress stream line by line as it arrives:
 * the output is kept bounded (its tail), the last "Step N/M : ..." line names a failing step,
 * and aux.ID / aux.Digest carry the image ID and the pushed manifest digest. The stream is
 * outside input: lines are bounded, strictly parsed, and whatever reaches an error message is
 * made printable. Inspect, tag, remove and push complete the image lifecycle.
 */
#include "image/image_int.h"

#include <archive.h>
#include <archive_entry.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#define API_OURS_MINOR 41  /* Docker 20.10 */
#define API_LEAST_MINOR 30 /* aux.ID in the build stream */
#define LINE_MAX_BYTES (1u << 20)
#define TEXT_MAX 512 /* one output line kept to spot "Step N/M : ..." */
#define ERROR_MAX 512
#define RAW_MAX 1024       /* the start of a response, for an error without JSON */
#define DOC_MAX (4u << 20) /* inspect and version documents */
#define LONG_TIMEOUT_MS 3600000L
#define DEFAULT_SOCKET "/var/run/docker.sock"

struct ocra_image_docker {
    char *socket; /* NULL over TCP */
    char *base;   /* "http://localhost", or "https://host:port" over TCP */
    char *tls_ca, *tls_cert, *tls_key;
    char *where;     /* the socket path or the tcp:// URL, for messages */
    char prefix[16]; /* "/v1.41" */
    char version[8]; /* "1.41" */
    long timeout_ms;
    long build_timeout_ms;
};

/* ---- progress stream ------------------------------------------------------------------- */

struct ocra_image_docker_progress {
    struct ocra_buf line; /* the line received so far */
    char *log;            /* holds up to 2 * log_max bytes; the last log_max are the log */
    size_t log_len, log_max;
    bool log_truncated;
    char text[TEXT_MAX]; /* the current output line (a prefix of it) */
    size_t text_len;
    char step[TEXT_MAX];
    char id[OCRA_IMAGE_DIGEST_MAX];
    char digest[OCRA_IMAGE_DIGEST_MAX];
    char error[ERROR_MAX];
    bool failed; /* the engine reported an error */
    bool broken; /* malformed input: nothing more is parsed */
    int pulled;  /* layers a pull downloaded ("Pull complete") */
    struct ocra_err broken_err;
    unsigned long lineno;
};

/* Copies s[0..n) into out (size outsz) with control and non-ASCII bytes as '?'. */
static void
printable_copy(char *out, size_t outsz, const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n && i + 1 < outsz; i++) {
        unsigned char c = (unsigned char)s[i];

        out[i] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
    }
    out[i] = '\0';
}

struct ocra_image_docker_progress *
ocra_image_docker_progress_new(size_t log_max)
{
    struct ocra_image_docker_progress *p = ocra_xcalloc(1, sizeof(*p));

    p->log_max = log_max ? log_max : OCRA_IMAGE_DOCKER_LOG_MAX;
    p->log = ocra_xmalloc(2 * p->log_max + 1);
    p->log[0] = '\0';
    ocra_buf_init(&p->line);
    return p;
}

void
ocra_image_docker_progress_free(struct ocra_image_docker_progress *p)
{
    if (!p)
        return;
    ocra_buf_fini(&p->line);
    free(p->log);
    free(p);
}

static int
broken(struct ocra_image_docker_progress *p, const char *why)
{
    if (!p->broken)
        ocra_err_set(&p->broken_err, EPROTO, "progress stream line %lu: %s", p->lineno, why);
    p->broken = true;
    return -1;
}

/* Appends to the log, keeping at least its last log_max bytes (amortised: one move per
 * log_max bytes appended). */
static void
log_add(struct ocra_image_docker_progress *p, const char *s, size_t n)
{
    if (n > p->log_max) {
        memcpy(p->log, s + n - p->log_max, p->log_max);
        p->log_len = p->log_max;
        p->log_truncated = true;
    } else {
        if (p->log_len + n > 2 * p->log_max) {
            memmove(p->log, p->log + p->log_len - p->log_max, p->log_max);
            p->log_len = p->log_max;
            p->log_truncated = true;
        }
        memcpy(p->log + p->log_len, s, n);
        p->log_len += n;
    }
    p->log[p->log_len] = '\0';
}

/* Follows the output line by line to remember the last "Step N/M : ..." line. */
static void
text_add(struct ocra_image_docker_progress *p, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n' || s[i] == '\r') {
            if (p->text_len > 5 && memcmp(p->text, "Step ", 5) == 0)
                printable_copy(p->step, sizeof(p->step), p->text, p->text_len);
            p->text_len = 0;
        } else if (p->text_len < sizeof(p->text)) {
            p->text[p->text_len++] = s[i];
        }
    }
}

static void
output_add(struct ocra_image_docker_progress *p, const char *s, size_t n)
{
    log_add(p, s, n);
    text_add(p, s, n);
}

static int
on_error(struct ocra_image_docker_progress *p, const json_t *msg)
{
    const json_t *detail = json_object_get(msg, "errorDetail");
    const char *text = ocra_json_str(detail, "message");

    if (detail && !json_is_object(detail))
        return broken(p, "errorDetail is not an object");
    if (!text)
        text = ocra_json_str(msg, "error");
    if (!text)
        text = ocra_json_str(msg, "message");
    if (!text)
        return broken(p, "an error without a message");
    if (!p->failed) /* the first error is the cause */
        printable_copy(p->error, sizeof(p->error), text, strlen(text));
    p->failed = true;
    output_add(p, text, strlen(text));
    output_add(p, "\n", 1);
    return 0;
}

static int
on_aux(struct ocra_image_docker_progress *p, const json_t *aux)
{
    const json_t *id = json_object_get(aux, "ID"), *digest = json_object_get(aux, "Digest");

    if (!json_is_object(aux))
        return 0; /* other builders' aux payloads are not ours to read */
    if (id && !(json_is_string(id) && ocra_image_digest_valid(json_string_value(id))))
        return broken(p, "aux.ID is not a sha256 digest");
    if (digest && !(json_is_string(digest) && ocra_image_digest_valid(json_string_value(digest))))
        return broken(p, "aux.Digest is not a sha256 digest");
    if (id)
        snprintf(p->id, sizeof(p->id), "%s", json_string_value(id));
    if (digest)
        snprintf(p->digest, sizeof(p->digest), "%s", json_string_value(digest));
    return 0;
}

/* "status" lines (pull and push): kept unless they are byte counts of a layer in flight. */
static int
on_status(struct ocra_image_docker_progress *p, const json_t *msg)
{
    const json_t *st = json_object_get(msg, "status"), *detail;
    const char *id = ocra_json_str(msg, "id");

    if (!json_is_string(st))
        return broken(p, "status is not a string");
    detail = json_object_get(msg, "progressDetail");
    if (json_is_object(detail) && json_object_size(detail) > 0)
        return 0;
    if (id && strcmp(json_string_value(st), "Pull complete") == 0)
        p->pulled++;
    if (id) {
        output_add(p, id, strlen(id));
        output_add(p, ": ", 2);
    }
    output_add(p, json_string_value(st), json_string_length(st));
    output_add(p, "\n", 1);
    return 0;
}

static int
on_message(struct ocra_image_docker_progress *p, const json_t *msg)
{
    const json_t *stream = json_object_get(msg, "stream");

    if (!json_is_object(msg))
        return broken(p, "not a JSON object");
    if (json_object_get(msg, "errorDetail") || json_object_get(msg, "error") ||
        json_object_get(msg, "message"))
        return on_error(p, msg);
    if (stream) {
        if (!json_is_string(stream))
            return broken(p, "stream is not a string");
        output_add(p, json_string_value(stream), json_string_length(stream));
    }
    if (json_object_get(msg, "status") && on_status(p, msg) < 0)
        return -1;
    if (json_object_get(msg, "aux"))
        return on_aux(p, json_object_get(msg, "aux"));
    return 0;
}

/* One line: one or more JSON objects (some engines write several without a newline). */
static int
on_line(struct ocra_image_docker_progress *p, const char *s, size_t n)
{
    size_t off = 0;

    p->lineno++;
    while (off < n) {
        json_error_t jerr;
        json_t *msg;
        int rc;

        while (off < n && (s[off] == ' ' || s[off] == '\t' || s[off] == '\r'))
            off++;
        if (off >= n)
            break;
        msg = json_loadb(s + off, n - off, JSON_DISABLE_EOF_CHECK | JSON_REJECT_DUPLICATES, &jerr);
        if (!msg)
            return broken(p, "malformed JSON");
        rc = on_message(p, msg);
        json_decref(msg);
        if (rc < 0)
            return -1;
        if (jerr.position <= 0)
            return broken(p, "malformed JSON");
        off += (size_t)jerr.position;
    }
    return 0;
}

static int
progress_broken_err(const struct ocra_image_docker_progress *p, struct ocra_err *err)
{
    return ocra_err_copy(err, &p->broken_err);
}

int
ocra_image_docker_progress_feed(struct ocra_image_docker_progress *p, const void *data, size_t n,
                                struct ocra_err *err)
{
    const char *s = data, *end = s + n;

    while (!p->broken && s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        size_t take = nl ? (size_t)(nl - s) : (size_t)(end - s);

        if (p->line.len + take > LINE_MAX_BYTES) {
            p->lineno++;
            broken(p, "line longer than 1 MiB");
            break;
        }
        if (!nl) {
            ocra_buf_append(&p->line, s, take);
            break;
        }
        if (p->line.len) {
            ocra_buf_append(&p->line, s, take);
            on_line(p, p->line.data, p->line.len);
            ocra_buf_reset(&p->line);
        } else {
            on_line(p, s, take);
        }
        s = nl + 1;
    }
    return p->broken ? progress_broken_err(p, err) : 0;
}

int
ocra_image_docker_progress_end(struct ocra_image_docker_progress *p, struct ocra_err *err)
{
    if (!p->broken && p->line.len) {
        on_line(p, p->line.data, p->line.len);
        ocra_buf_reset(&p->line);
    }
    text_add(p, "\n", 1); /* a last output line without a newline may be a step */
    if (p->broken)
        return progress_broken_err(p, err);
    /* the cause first: a long step line ("RUN [...]") is what a short message loses */
    if (p->failed && p->step[0])
        return ocra_err_set(err, EIO, "%s (%s)", p->error, p->step);
    if (p->failed)
        return ocra_err_set(err, EIO, "%s", p->error);
    return 0;
}

const char *
ocra_image_docker_progress_id(const struct ocra_image_docker_progress *p)
{
    return p->id[0] ? p->id : NULL;
}

const char *
ocra_image_docker_progress_digest(const struct ocra_image_docker_progress *p)
{
    return p->digest[0] ? p->digest : NULL;
}

int
ocra_image_docker_progress_pulled(const struct ocra_image_docker_progress *p)
{
    return p->pulled;
}

const char *
ocra_image_docker_progress_step(const struct ocra_image_docker_progress *p)
{
    return p->step[0] ? p->step : NULL;
}

const char *
ocra_image_docker_progress_log(const struct ocra_image_docker_progress *p, size_t *len,
                               bool *truncated)
{
    const char *s = p->log;
    size_t n = p->log_len;

    bool cut = p->log_truncated || n > p->log_max;

    if (n > p->log_max) {
        s += n - p->log_max;
        n = p->log_max;
    }
    if (cut) {
        /* start at a line, when one starts in the tail */
        const char *nl = memchr(s, '\n', n);

        if (nl && nl + 1 < s + n) {
            n -= (size_t)(nl + 1 - s);
            s = nl + 1;
        }
    }
    if (len)
        *len = n;
    if (truncated)
        *truncated = cut;
    return s;
}

/* ---- names ----------------------------------------------------------------------------- */

/* host[:port]: [A-Za-z0-9.-]+ and an optional port of 1-5 digits. */
static bool
host_valid(const char *s, size_t n)
{
    size_t h = 0;

    while (h < n && s[h] != ':') {
        if (!((s[h] >= 'a' && s[h] <= 'z') || (s[h] >= 'A' && s[h] <= 'Z') ||
              (s[h] >= '0' && s[h] <= '9') || s[h] == '.' || s[h] == '-'))
            return false;
        h++;
    }
    if (h == 0 || s[0] == '-' || s[0] == '.')
        return false;
    if (h == n)
        return true;
    return n - h - 1 >= 1 && n - h - 1 <= 5 && strspn(s + h + 1, "0123456789") >= n - h - 1;
}

/* Splits "[host[:port]/]repo[:tag]" into its name (host and repo) and tag; no digest. */
static bool
name_split(const char *ref, char *name, size_t namesz, const char **tag)
{
    const char *slash = strrchr(ref, '/'), *colon, *first_end = strchr(ref, '/');
    size_t n = strlen(ref);

    colon = strrchr(slash ? slash : ref, ':');
    *tag = NULL;
    if (colon) {
        *tag = colon + 1;
        n = (size_t)(colon - ref);
    }
    if (n == 0 || n >= namesz || (*tag && ocra_image_digest_valid(*tag)))
        return false;
    memcpy(name, ref, n);
    name[n] = '\0';
    if (*tag && !ocra_image_ref_valid(*tag))
        return false;
    if (first_end && (size_t)(first_end - ref) < n &&
        (memchr(ref, '.', (size_t)(first_end - ref)) ||
         memchr(ref, ':', (size_t)(first_end - ref)) || strncmp(ref, "localhost/", 10) == 0)) {
        if (!host_valid(ref, (size_t)(first_end - ref)))
            return false;
        return ocra_image_repo_valid(name + (first_end - ref) + 1);
    }
    return ocra_image_repo_valid(name);
}

bool
ocra_image_docker_ref_valid(const char *ref)
{
    char name[512], repo[512];
    const char *tag, *at = strchr(ref, '@');
    size_t len = strlen(ref);

    if (ocra_image_digest_valid(ref))
        return true;
    if (len >= 12 && len <= 64 && ocra_hex_is(ref, len))
        return true; /* an image ID or its prefix */
    if (at) {
        if (!ocra_image_digest_valid(at + 1) || (size_t)(at - ref) >= sizeof(name))
            return false;
        memcpy(name, ref, (size_t)(at - ref));
        name[at - ref] = '\0';
        return name_split(name, repo, sizeof(repo), &tag) && !tag;
    }
    return len < sizeof(name) && name_split(ref, name, sizeof(name), &tag);
}

static int
check_ref(const char *ref, struct ocra_err *err)
{
    char q[96];

    if (ref && ocra_image_docker_ref_valid(ref))
        return 0;
    return ocra_err_set(err, EINVAL, "invalid image reference %s",
                        ref ? ocra_str_escape(ref, strlen(ref), 64, q, sizeof(q)) : "(null)");
}

/* ---- requests -------------------------------------------------------------------------- */

/* The engine's {"message": "..."} or the start of its body, printable. */
static void
reply_message(const char *body, size_t len, char *out, size_t outsz)
{
    json_t *doc = body && len ? json_loadb(body, len, 0, NULL) : NULL;
    const char *m = ocra_json_str(doc, "message");

    if (m)
        printable_copy(out, outsz, m, strlen(m));
    else
        printable_copy(out, outsz, body ? body : "", body ? (len < 200 ? len : 200) : 0);
    json_decref(doc);
}

static int
status_err(long status, const char *body, size_t len, struct ocra_err *err)
{
    char msg[200];

    reply_message(body, len, msg, sizeof(msg));
    return ocra_err_set(err, ocra_http_status_errno(status), "engine answered %ld: %s", status,
                        msg);
}

/* One small request; a non-2xx status becomes an error with the engine's message. */
static int
call(struct ocra_image_docker *d, const char *method, const char *path, struct ocra_http_resp *resp,
     struct ocra_err *err)
{
    char *url = ocra_xasprintf("%s%s%s", d->base, d->prefix, path);
    struct ocra_http_req req = {.method = method,
                                .url = url,
                                .unix_socket = d->socket,
                                .tls_ca = d->tls_ca,
                                .tls_cert = d->tls_cert,
                                .tls_key = d->tls_key,
                                .timeout_ms = d->timeout_ms,
                                .max_response = DOC_MAX};
    int ret = -1;

    if (ocra_http_do(&req, resp, err) < 0)
        goto out;
    if (ocra_http_status_errno(resp->status) != 0) {
        status_err(resp->status, resp->body, resp->body_len, err);
        ocra_http_resp_fini(resp);
        goto out;
    }
    ret = 0;
out:
    free(url);
    return ret;
}

/* "1.41" into minor; only 1.x exists. */
static int
api_minor(const char *v, int64_t *minor)
{
    if (!v || strncmp(v, "1.", 2) != 0)
        return -1;
    return ocra_parse_i64(v + 2, 0, 999, minor, NULL);
}

static int
negotiate(struct ocra_image_docker *d, struct ocra_err *err)
{
    struct ocra_http_resp resp = {0};
    json_t *doc = NULL;
    int64_t engine, least = 12, use;
    int ret = -1;

    if (call(d, "GET", "/version", &resp, err) < 0)
        goto out;
    doc = json_loadb(resp.body, resp.body_len, 0, NULL);
    if (api_minor(ocra_json_str(doc, "ApiVersion"), &engine) < 0) {
        ocra_err_set(err, EPROTO, "GET /version: no ApiVersion 1.x");
        goto out;
    }
    if (ocra_json_str(doc, "MinAPIVersion") &&
        api_minor(ocra_json_str(doc, "MinAPIVersion"), &least) < 0)
        least = 12;
    use = engine < API_OURS_MINOR ? engine : API_OURS_MINOR;
    if (use < API_LEAST_MINOR || use < least) {
        ocra_err_set(err, ENOTSUP, "engine API 1.%" PRId64 " (min 1.%" PRId64 "), need 1.%d..1.%d",
                     engine, least, API_LEAST_MINOR, API_OURS_MINOR);
        goto out;
    }
    snprintf(d->version, sizeof(d->version), "1.%d", (int)use);
    snprintf(d->prefix, sizeof(d->prefix), "/v1.%d", (int)use);
    ret = 0;
out:
    json_decref(doc);
    ocra_http_resp_fini(&resp);
    return ret;
}

static int
socket_path(const char *opt, char **out, struct ocra_err *err)
{
    const char *host = getenv("DOCKER_HOST"), *path = opt;

    if (!path && host && *host) {
        if (strncmp(host, "unix://", 7) != 0)
            return ocra_err_set(err, ENOTSUP, "DOCKER_HOST: only unix:// sockets are supported");
        path = host + 7;
    }
    if (!path)
        path = DEFAULT_SOCKET;
    if (path[0] != '/' || strlen(path) > 107)
        return ocra_err_set(err, EINVAL,
                            "docker socket: need an absolute path of at most 107 "
                            "bytes");
    *out = ocra_xstrdup(path);
    return 0;
}

int
ocra_image_docker_endpoint_parse(const char *url, struct ocra_image_docker_endpoint *out,
                                 struct ocra_err *err)
{
    static const char form[] =
        "want unix:///absolute/path, tcp://host:port or ssh://user@host[:port]";
    CURLU *u = NULL;
    char *sc = NULL, *ho = NULL, *po = NULL, *us = NULL, *pw = NULL, *pa = NULL, *q = NULL,
         *fr = NULL;
    int64_t port = 0;
    int ret = -1;

    memset(out, 0, sizeof(*out));
    if (strncasecmp(url, "unix://", 7) == 0) {
        const char *path = url + 7;

        out->scheme = OCRA_IMAGE_DOCKER_UNIX;
        if (path[0] != '/' || strlen(path) >= sizeof(out->socket))
            return ocra_err_set(err, EINVAL,
                                "%.200s: a unix socket needs an absolute path of at most %zu "
                                "bytes (unix:///run/docker.sock)",
                                url, sizeof(out->socket) - 1);
        for (const char *c = path; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f)
                return ocra_err_set(err, EINVAL, "unix socket path has a control character");
        snprintf(out->socket, sizeof(out->socket), "%s", path);
        return 0;
    }
    if (!(u = curl_url()))
        abort(); /* out of memory */
    if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &sc, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &ho, 0) != CURLUE_OK || !*ho) {
        ocra_err_set(err, EINVAL, "%.200s: not an endpoint URL with a host (%s)", url, form);
        goto out;
    }
    if (strcmp(sc, "tcp") == 0)
        out->scheme = OCRA_IMAGE_DOCKER_TCP, port = 2376;
    else if (strcmp(sc, "ssh") == 0)
        out->scheme = OCRA_IMAGE_DOCKER_SSH, port = 22;
    else {
        ocra_err_set(err, EINVAL, "%.200s: scheme %.20s is not an engine endpoint (%s)", url, sc,
                     form);
        goto out;
    }
    (void)curl_url_get(u, CURLUPART_USER, &us, 0);
    (void)curl_url_get(u, CURLUPART_PASSWORD, &pw, 0);
    (void)curl_url_get(u, CURLUPART_PATH, &pa, 0);
    (void)curl_url_get(u, CURLUPART_QUERY, &q, 0);
    (void)curl_url_get(u, CURLUPART_FRAGMENT, &fr, 0);
    if (curl_url_get(u, CURLUPART_PORT, &po, 0) == CURLUE_OK &&
        ocra_parse_i64(po, 1, 65535, &port, NULL) < 0) {
        ocra_err_set(err, EINVAL, "%.200s: port must be 1..65535", url);
        goto out;
    }
    if ((pa && strcmp(pa, "/") != 0) || q || fr || pw ||
        (us && out->scheme == OCRA_IMAGE_DOCKER_TCP)) {
        ocra_err_set(err, EINVAL, "%.200s: an endpoint has no %s (%s)", url,
                     pw                                           ? "password"
                     : us && out->scheme == OCRA_IMAGE_DOCKER_TCP ? "user on tcp"
                                                                  : "path or query",
                     form);
        goto out;
    }
    if (strlen(ho) >= sizeof(out->host) || (us && strlen(us) >= sizeof(out->user))) {
        ocra_err_set(err, EINVAL, "%.200s: host or user too long", url);
        goto out;
    }
    /* an IPv6 literal without its brackets */
    snprintf(out->host, sizeof(out->host), "%.*s", (int)(strlen(ho) - (ho[0] == '[' ? 2 : 0)),
             ho + (ho[0] == '['));
    snprintf(out->user, sizeof(out->user), "%s", us ? us : "");
    out->port = (long)port;
    ret = 0;
out:
    curl_free(sc);
    curl_free(ho);
    curl_free(po);
    curl_free(us);
    curl_free(pw);
    curl_free(pa);
    curl_free(q);
    curl_free(fr);
    curl_url_cleanup(u);
    return ret;
}

/* The engine of opts->host: d->socket, or d->base and the TLS files over TCP. */
static int
endpoint_set(struct ocra_image_docker *d, const struct ocra_image_docker_opts *opts,
             struct ocra_err *err)
{
    struct ocra_image_docker_endpoint ep;
    bool v6;

    if (ocra_image_docker_endpoint_parse(opts->host, &ep, err) < 0)
        return -1;
    if (ep.scheme == OCRA_IMAGE_DOCKER_UNIX) {
        d->socket = ocra_xstrdup(ep.socket);
        return 0;
    }
    if (ep.scheme == OCRA_IMAGE_DOCKER_SSH)
        return ocra_err_set(err, ENOTSUP,
                            "%.200s: ssh:// endpoints are not supported; forward the engine's "
                            "socket (ssh -L /local.sock:/var/run/docker.sock) and name "
                            "unix:///local.sock, or use tcp:// with TLS",
                            opts->host);
    if (!opts->tls_ca || !*opts->tls_ca || !opts->tls_cert || !*opts->tls_cert || !opts->tls_key ||
        !*opts->tls_key)
        return ocra_err_set(err, EINVAL,
                            "%.200s: tcp:// needs TLS client certificates: a CA, a certificate "
                            "and its key (the engine runs with --tlsverify)",
                            opts->host);
    v6 = strchr(ep.host, ':') != NULL;
    free(d->base);
    d->base = ocra_xasprintf("https://%s%s%s:%ld", v6 ? "[" : "", ep.host, v6 ? "]" : "", ep.port);
    d->tls_ca = ocra_xstrdup(opts->tls_ca);
    d->tls_cert = ocra_xstrdup(opts->tls_cert);
    d->tls_key = ocra_xstrdup(opts->tls_key);
    return 0;
}

struct ocra_image_docker *
ocra_image_docker_new(const struct ocra_image_docker_opts *opts, struct ocra_err *err)
{
    struct ocra_image_docker *d = ocra_xcalloc(1, sizeof(*d));
    int ret;

    d->timeout_ms = opts && opts->timeout_ms > 0 ? opts->timeout_ms : 30000L;
    d->build_timeout_ms =
        opts && opts->build_timeout_ms > 0 ? opts->build_timeout_ms : LONG_TIMEOUT_MS;
    d->base = ocra_xstrdup("http://localhost");
    if (opts && opts->host && *opts->host)
        ret = endpoint_set(d, opts, err);
    else
        ret = socket_path(opts ? opts->socket : NULL, &d->socket, err);
    if (ret == 0)
        d->where = ocra_xstrdup(d->socket ? d->socket : opts->host);
    if (ret < 0 || negotiate(d, err) < 0) {
        ocra_err_wrap(err, "docker engine at %s",
                      d->where             ? d->where
                      : opts && opts->host ? opts->host
                                           : "?");
        ocra_image_docker_free(d);
        return NULL;
    }
    return d;
}

void
ocra_image_docker_free(struct ocra_image_docker *d)
{
    if (!d)
        return;
    free(d->socket);
    free(d->base);
    free(d->tls_ca);
    free(d->tls_cert);
    free(d->tls_key);
    free(d->where);
    free(d);
}

const char *
ocra_image_docker_api_version(const struct ocra_image_docker *d)
{
    return d->version;
}

/* ---- streamed requests: build and push -------------------------------------------------- */

struct stream {
    struct ocra_image_docker_progress *progress;
    struct ocra_buf raw; /* the first RAW_MAX bytes */
    int fd;              /* request body, read with pread (with read up to its end when size
                            is OCRA_HTTP_LEN_UNKNOWN) */
    uint64_t off, size;
};

static int
stream_write(void *ctx, const void *data, size_t n)
{
    struct stream *s = ctx;

    if (s->raw.len < RAW_MAX)
        ocra_buf_append(&s->raw, data, n < RAW_MAX - s->raw.len ? n : RAW_MAX - s->raw.len);
    return ocra_image_docker_progress_feed(s->progress, data, n, NULL) < 0 ? -1 : 0;
}

static size_t
stream_read(void *ctx, char *buf, size_t n)
{
    struct stream *s = ctx;
    ssize_t got;

    if (s->size == OCRA_HTTP_LEN_UNKNOWN) { /* a pipe or socket, up to its end */
        do
            got = read(s->fd, buf, n);
        while (got < 0 && errno == EINTR);
        return got < 0 ? (size_t)-1 : (size_t)got;
    }
    if (n > s->size - s->off)
        n = (size_t)(s->size - s->off);
    if (n == 0)
        return 0;
    got = pread(s->fd, buf, n, (off_t)s->off);
    if (got <= 0)
        return (size_t)-1;
    s->off += (uint64_t)got;
    return (size_t)got;
}

/* POSTs (the body from s->fd when s->size > 0) and parses the progress stream. */
static int
stream_call(struct ocra_image_docker *d, const char *path, const char *const *headers,
            struct stream *s, struct ocra_err *err)
{
    char *url = ocra_xasprintf("%s%s%s", d->base, d->prefix, path);
    struct ocra_http_req req = {.method = "POST",
                                .url = url,
                                .unix_socket = d->socket,
                                .tls_ca = d->tls_ca,
                                .tls_cert = d->tls_cert,
                                .tls_key = d->tls_key,
                                .headers = headers,
                                .timeout_ms = d->build_timeout_ms,
                                /* a build step may compile for minutes without a line */
                                .stall_ms = -1,
                                .write = stream_write,
                                .write_ctx = s};
    struct ocra_http_resp resp = {0};
    int ret = -1;

    if (s->size > 0) {
        req.read = stream_read;
        req.read_ctx = s;
        req.body_len = (size_t)s->size;
    }
    if (ocra_http_do(&req, &resp, err) < 0) {
        /* a stream found malformed aborted the transfer: that is the cause; a last line the
         * failure cut short is not parsed (it would read as malformed JSON). A transport
         * failure names the URL without its query (src/http): the cause fits the message. */
        if (s->progress->broken)
            progress_broken_err(s->progress, err);
        goto out;
    }
    if (ocra_http_status_errno(resp.status) != 0) {
        status_err(resp.status, s->raw.data, s->raw.len, err);
        goto out;
    }
    ret = ocra_image_docker_progress_end(s->progress, err);
out:
    ocra_http_resp_fini(&resp);
    free(url);
    return ret;
}

/* ---- build context --------------------------------------------------------------------- */

static bool
ctx_name_valid(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len > 1024 || name[0] == '/' || name[len - 1] == '/')
        return false;
    for (const char *p = name; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return false;
    for (const char *c = name;;) {
        size_t n = strcspn(c, "/");

        if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
            return false;
        if (!c[n])
            return true;
        c += n + 1;
    }
}

static int
file_cmp(const void *a, const void *b)
{
    const struct ocra_image_docker_file *const *x = a, *const *y = b;

    return strcmp((*x)->name, (*y)->name);
}

static int
ar_fail(struct archive *a, const char *name, struct ocra_err *err)
{
    return ocra_err_set(err, EIO, "context %s: %s", name,
                        archive_error_string(a) ? archive_error_string(a) : "libarchive failed");
}

static int
ar_header(struct archive *a, const struct ocra_image_docker_file *f, int64_t size,
          struct ocra_err *err)
{
    struct archive_entry *e = archive_entry_new();
    int rc;

    archive_entry_set_pathname(e, f->name);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, f->mode ? (f->mode & 07777) : 0644);
    archive_entry_set_size(e, size);
    archive_entry_set_mtime(e, 0, 0);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    rc = archive_write_header(a, e);
    archive_entry_free(e);
    return rc == ARCHIVE_OK ? 0 : ar_fail(a, f->name, err);
}

/* A file from disk, streamed; its size must not change while it is read. */
static int
ar_file(struct archive *a, const struct ocra_image_docker_file *f, struct ocra_err *err)
{
    char buf[65536];
    struct stat st;
    int64_t left;
    int fd = -1, ret = -1;

    fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0) {
        ocra_err_sys(err, "context %s: %s", f->name, f->path);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        ocra_err_set(err, EINVAL, "context %s: %s is not a regular file", f->name, f->path);
        goto out;
    }
    if (ar_header(a, f, st.st_size, err) < 0)
        goto out;
    for (left = st.st_size; left > 0;) {
        ssize_t n = read(fd, buf, left < (int64_t)sizeof(buf) ? (size_t)left : sizeof(buf));

        if (n <= 0) {
            ocra_err_set(err, EIO, "context %s: %s changed while it was read", f->name, f->path);
            goto out;
        }
        if (archive_write_data(a, buf, (size_t)n) != n) {
            ar_fail(a, f->name, err);
            goto out;
        }
        left -= n;
    }
    ret = 0;
out:
    ocra_fd_close(fd);
    return ret;
}

static int
ar_entry(struct archive *a, const struct ocra_image_docker_file *f, struct ocra_err *err)
{
    if (f->path)
        return ar_file(a, f, err);
    if (ar_header(a, f, (int64_t)f->len, err) < 0)
        return -1;
    if (f->len && archive_write_data(a, f->data, f->len) != (la_ssize_t)f->len)
        return ar_fail(a, f->name, err);
    return 0;
}

/* The entries to write, sorted by name; EINVAL on a bad or duplicate name. */
static const struct ocra_image_docker_file **
ctx_sorted(const struct ocra_image_docker_file *dockerfile,
           const struct ocra_image_docker_file *files, size_t n, size_t *count,
           struct ocra_err *err)
{
    const struct ocra_image_docker_file **v = ocra_xcalloc(n + 1, sizeof(*v));
    size_t k = 0;
    char q[96];

    if (dockerfile)
        v[k++] = dockerfile;
    for (size_t i = 0; i < n; i++)
        v[k++] = &files[i];
    qsort(v, k, sizeof(*v), file_cmp);
    for (size_t i = 0; i < k; i++) {
        const char *name = v[i]->name ? v[i]->name : "";

        if (!ctx_name_valid(name) || (i > 0 && strcmp(v[i - 1]->name, name) == 0) ||
            (!v[i]->path && v[i]->len && !v[i]->data)) {
            ocra_err_set(err, EINVAL, "context: bad or duplicate entry %s",
                         ocra_str_escape(name, strlen(name), 64, q, sizeof(q)));
            free(v);
            return NULL;
        }
    }
    *count = k;
    return v;
}

int
ocra_image_docker_context_write(const char *dockerfile, const struct ocra_image_docker_file *files,
                                size_t n, int fd, struct ocra_err *err)
{
    struct ocra_image_docker_file df = {.name = "Dockerfile", .data = dockerfile};
    const struct ocra_image_docker_file **v = NULL;
    struct archive *a = NULL;
    size_t count = 0;
    int ret = -1;

    for (size_t i = 0; i < n; i++)
        if (!files[i].name) /* qsort must not see a NULL name */
            return ocra_err_set(err, EINVAL, "context: an entry without a name");
    df.len = dockerfile ? strlen(dockerfile) : 0;
    v = ctx_sorted(dockerfile ? &df : NULL, files, n, &count, err);
    if (!v)
        goto out;
    a = archive_write_new();
    if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
        archive_write_open_fd(a, fd) != ARCHIVE_OK) {
        ar_fail(a, "(open)", err);
        goto out;
    }
    for (size_t i = 0; i < count; i++)
        if (ar_entry(a, v[i], err) < 0)
            goto out;
    if (archive_write_close(a) != ARCHIVE_OK) {
        ar_fail(a, "(close)", err);
        goto out;
    }
    ret = 0;
out:
    if (a)
        archive_write_free(a);
    free(v);
    return ret;
}

/* An unlinked temporary file under $TMPDIR (or /tmp). */
static int
tmpfile_open(struct ocra_err *err)
{
    const char *dir = getenv("TMPDIR");
    char *tmpl;
    int fd;

    if (!dir || !*dir)
        dir = "/tmp";
    fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0)
        return fd;
    tmpl = ocra_xasprintf("%s/ocra-context.XXXXXX", dir);
    fd = mkostemp(tmpl, O_CLOEXEC);
    if (fd >= 0)
        unlink(tmpl);
    else
        ocra_err_sys(err, "temporary file in %s", dir);
    free(tmpl);
    return fd;
}

/* ---- build ----------------------------------------------------------------------------- */

static int
build_check(const struct ocra_image_docker_build_opts *o, struct ocra_err *err)
{
    const char *key;
    json_t *v;

    if (o->tag && check_ref(o->tag, err) < 0)
        return -1;
    if (o->network && strcmp(o->network, "host") != 0 && strcmp(o->network, "none") != 0)
        return ocra_err_set(err, EINVAL, "build network must be host or none");
    if (o->buildargs && !json_is_object(o->buildargs))
        return ocra_err_set(err, EINVAL, "buildargs must be an object of strings");
    json_object_foreach((json_t *)(uintptr_t)o->buildargs, key,
                        v) if (!json_is_string(v) ||
                               !*key) return ocra_err_set(err, EINVAL,
                                                          "buildargs must be an object of strings");
    return 0;
}

static char *
build_path(const struct ocra_image_docker_build_opts *o)
{
    struct ocra_buf b;
    char *args = o->buildargs ? ocra_json_compact(o->buildargs) : NULL;

    ocra_buf_init(&b);
    ocra_buf_puts(&b, "/build?rm=1&forcerm=1&networkmode=");
    ocra_buf_puts(&b, o->network ? o->network : "none");
    ocra_buf_puts(&b, o->pull ? "&pull=1" : "&pull=0");
    if (o->nocache)
        ocra_buf_puts(&b, "&nocache=1");
    if (o->tag) {
        ocra_buf_puts(&b, "&t=");
        image_url_escape(&b, o->tag);
    }
    if (args) {
        ocra_buf_puts(&b, "&buildargs=");
        image_url_escape(&b, args);
    }
    free(args);
    return ocra_buf_take(&b);
}

static void
build_result(const struct ocra_image_docker_progress *p, struct ocra_image_docker_build *out)
{
    size_t len;
    bool truncated;
    const char *log = ocra_image_docker_progress_log(p, &len, &truncated);

    out->log = ocra_xstrndup(log, len);
    out->log_len = len;
    out->log_truncated = truncated;
}

int
ocra_image_docker_build(struct ocra_image_docker *d, const struct ocra_image_docker_build_opts *o,
                        struct ocra_image_docker_build *out, struct ocra_err *err)
{
    static const char *const headers[] = {"Content-Type: application/x-tar", NULL};
    struct stream s = {.fd = -1};
    struct stat st;
    char *path = NULL;
    int ret = -1;

    memset(out, 0, sizeof(*out));
    ocra_buf_init(&s.raw);
    s.progress = ocra_image_docker_progress_new(o->log_max);
    if (build_check(o, err) < 0 || (s.fd = tmpfile_open(err)) < 0 ||
        ocra_image_docker_context_write(o->dockerfile, o->files, o->n_files, s.fd, err) < 0)
        goto out;
    if (fstat(s.fd, &st) < 0) {
        ocra_err_sys(err, "context");
        goto out;
    }
    s.size = (uint64_t)st.st_size;
    path = build_path(o);
    if (stream_call(d, path, headers, &s, err) < 0)
        goto out;
    if (!ocra_image_docker_progress_id(s.progress)) {
        ocra_err_set(err, EPROTO, "the build output has no image ID (aux.ID)");
        goto out;
    }
    snprintf(out->id, sizeof(out->id), "%s", ocra_image_docker_progress_id(s.progress));
    ret = 0;
out:
    build_result(s.progress, out);
    if (ret < 0) /* without the tag: the caller names what it builds */
        ocra_err_wrap(err, "docker build");
    ocra_image_docker_progress_free(s.progress);
    ocra_buf_fini(&s.raw);
    ocra_fd_close(s.fd);
    free(path);
    return ret;
}

void
ocra_image_docker_build_fini(struct ocra_image_docker_build *b)
{
    free(b->log);
    memset(b, 0, sizeof(*b));
}

/* ---- inspect, tag, remove -------------------------------------------------------------- */

/* member of obj (an object or array of strings, or absent/null) as an owned reference. */
static int
strings_take(const json_t *obj, const char *key, bool object, json_t **out)
{
    json_t *v = json_object_get(obj, key), *e;
    const char *k;
    size_t i;

    if (!v || json_is_null(v)) {
        *out = object ? json_object() : json_array();
        return 0;
    }
    if (object ? !json_is_object(v) : !json_is_array(v))
        return -1;
    if (object) {
        json_object_foreach(v, k, e) if (!json_is_string(e)) return -1;
    } else {
        json_array_foreach(v, i, e) if (!json_is_string(e)) return -1;
    }
    *out = json_incref(v);
    return 0;
}

static int
inspect_parse(const char *body, size_t len, struct ocra_image_docker_image *out,
              struct ocra_err *err)
{
    struct ocra_image_docker_image img = {0};
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL), *cfg;
    const char *id = ocra_json_str(doc, "Id");
    int ret = -1;

    cfg = json_object_get(doc, "Config");
    if (!id || !ocra_image_digest_valid(id) ||
        (cfg && !json_is_object(cfg) && !json_is_null(cfg)) ||
        strings_take(doc, "RepoDigests", false, &img.repo_digests) < 0 ||
        strings_take(cfg, "Labels", true, &img.labels) < 0 ||
        strings_take(cfg, "Env", false, &img.env) < 0) {
        ocra_err_set(err, EPROTO, "malformed image inspect document");
        goto out;
    }
    snprintf(img.id, sizeof(img.id), "%s", id);
    *out = img;
    memset(&img, 0, sizeof(img));
    ret = 0;
out:
    ocra_image_docker_image_fini(&img);
    json_decref(doc);
    return ret;
}

int
ocra_image_docker_inspect(struct ocra_image_docker *d, const char *ref,
                          struct ocra_image_docker_image *out, struct ocra_err *err)
{
    struct ocra_image_docker_image tmp = {0};
    struct ocra_http_resp resp = {0};
    char *path = NULL;
    int ret = -1;

    if (check_ref(ref, err) < 0)
        goto out;
    path = ocra_xasprintf("/images/%s/json", ref);
    if (call(d, "GET", path, &resp, err) < 0 ||
        inspect_parse(resp.body, resp.body_len, out ? out : &tmp, err) < 0)
        goto out;
    ocra_image_docker_image_fini(&tmp);
    ret = 0;
out:
    if (ret < 0)
        ocra_err_wrap(err, "inspect %s", check_ref(ref, NULL) == 0 ? ref : "image");
    ocra_http_resp_fini(&resp);
    free(path);
    return ret;
}

void
ocra_image_docker_image_fini(struct ocra_image_docker_image *img)
{
    json_decref(img->repo_digests);
    json_decref(img->labels);
    json_decref(img->env);
    memset(img, 0, sizeof(*img));
}

int
ocra_image_docker_tag(struct ocra_image_docker *d, const char *ref, const char *target,
                      struct ocra_err *err)
{
    struct ocra_http_resp resp = {0};
    struct ocra_buf b;
    char name[512];
    const char *tag;
    int ret = -1;

    ocra_buf_init(&b);
    if (check_ref(ref, err) < 0 || check_ref(target, err) < 0)
        goto out;
    if (!name_split(target, name, sizeof(name), &tag) || !tag) {
        ocra_err_set(err, EINVAL, "tag target must be name:tag");
        goto out;
    }
    ocra_buf_printf(&b, "/images/%s/tag?repo=", ref);
    image_url_escape(&b, name);
    ocra_buf_puts(&b, "&tag=");
    image_url_escape(&b, tag);
    ret = call(d, "POST", b.data, &resp, err);
out:
    if (ret < 0)
        ocra_err_wrap(err, "tag image");
    ocra_http_resp_fini(&resp);
    ocra_buf_fini(&b);
    return ret;
}

int
ocra_image_docker_remove(struct ocra_image_docker *d, const char *ref, bool force,
                         struct ocra_err *err)
{
    struct ocra_http_resp resp = {0};
    char *path = NULL;
    int ret = -1;

    if (check_ref(ref, err) < 0)
        goto out;
    path = ocra_xasprintf("/images/%s?force=%d", ref, force ? 1 : 0);
    ret = call(d, "DELETE", path, &resp, err);
out:
    if (ret < 0)
        ocra_err_wrap(err, "remove image %s", check_ref(ref, NULL) == 0 ? ref : "");
    ocra_http_resp_fini(&resp);
    free(path);
    return ret;
}

/* ---- requests for other modules -------------------------------------------------------- */

int
ocra_image_docker_request(struct ocra_image_docker *d, const char *method, const char *path,
                          const char *json_body, long timeout_ms, size_t max_response,
                          struct ocra_image_docker_reply *out, struct ocra_err *err)
{
    static const char *const json_headers[] = {"Content-Type: application/json", NULL};
    char *url = ocra_xasprintf("%s%s%s", d->base, d->prefix, path);
    struct ocra_http_req req = {.method = method,
                                .url = url,
                                .unix_socket = d->socket,
                                .tls_ca = d->tls_ca,
                                .tls_cert = d->tls_cert,
                                .tls_key = d->tls_key,
                                .timeout_ms = timeout_ms > 0 ? timeout_ms : d->timeout_ms,
                                .max_response = max_response ? max_response : DOC_MAX};
    struct ocra_http_resp resp = {0};
    int ret = -1;

    assert(path[0] == '/');
    if (json_body) {
        req.headers = json_headers;
        req.body = json_body;
        req.body_len = strlen(json_body);
    }
    if (ocra_http_do(&req, &resp, err) < 0)
        goto out;
    out->status = resp.status;
    out->body = resp.body;
    out->len = resp.body_len;
    resp.body = NULL;
    ret = 0;
out:
    ocra_http_resp_fini(&resp);
    free(url);
    return ret;
}

void
ocra_image_docker_reply_fini(struct ocra_image_docker_reply *r)
{
    if (!r)
        return;
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

int
ocra_image_docker_reply_err(const struct ocra_image_docker_reply *r, struct ocra_err *err)
{
    return status_err(r->status, r->body, r->len, err);
}

/* ---- push ------------------------------------------------------------------------------ */

/* "X-Registry-Auth: <base64url of the JSON>"; a secret: caller frees with ocra_secure_free. */
static char *
auth_header(const struct ocra_image_docker_auth *auth, size_t *size)
{
    json_t *j = json_object();
    char *text, *b64, *hdr;
    size_t len, cap;

    if (auth && auth->username) {
        json_object_set_new(j, "username", json_string(auth->username));
        json_object_set_new(j, "password", json_string(auth->password ? auth->password : ""));
    }
    if (auth && auth->serveraddress)
        json_object_set_new(j, "serveraddress", json_string(auth->serveraddress));
    text = ocra_json_compact(j);
    if (json_object_get(j, "password")) /* jansson's copy of the secret, too */
        explicit_bzero((char *)(uintptr_t)json_string_value(json_object_get(j, "password")),
                       json_string_length(json_object_get(j, "password")));
    json_decref(j);
    len = strlen(text);
    cap = 4 * ((len + 2) / 3) + 1;
    b64 = ocra_xmalloc(cap);
    EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)text, (int)len);
    for (char *c = b64; *c; c++)
        *c = *c == '+' ? '-' : *c == '/' ? '_' : *c; /* URL-safe alphabet, padded */
    hdr = ocra_xasprintf("X-Registry-Auth: %s", b64);
    *size = strlen(hdr) + 1;
    ocra_secure_free(text, len + 1);
    ocra_secure_free(b64, cap);
    return hdr;
}

static int
push_check(const char *name, const char *tag, const struct ocra_image_docker_auth *auth,
           struct ocra_err *err)
{
    char buf[512];
    const char *t;

    if (!name || !tag || !name_split(name, buf, sizeof(buf), &t) || t ||
        !ocra_image_ref_valid(tag) || ocra_image_digest_valid(tag))
        return ocra_err_set(err, EINVAL, "push needs a name without a tag and a tag");
    if (auth && ((auth->username && !ocra_utf8_valid(auth->username, strlen(auth->username))) ||
                 (auth->password && !ocra_utf8_valid(auth->password, strlen(auth->password))) ||
                 (auth->serveraddress &&
                  !ocra_utf8_valid(auth->serveraddress, strlen(auth->serveraddress)))))
        return ocra_err_set(err, EINVAL, "push credentials must be UTF-8");
    return 0;
}

int
ocra_image_docker_push(struct ocra_image_docker *d, const char *name, const char *tag,
                       const struct ocra_image_docker_auth *auth,
                       char digest_out[OCRA_IMAGE_DIGEST_MAX], struct ocra_err *err)
{
    struct stream s = {.fd = -1};
    const char *headers[2] = {NULL, NULL};
    char *hdr = NULL, *path = NULL;
    size_t hdr_size = 0;
    int ret = -1;

    ocra_buf_init(&s.raw);
    s.progress = ocra_image_docker_progress_new(0);
    if (push_check(name, tag, auth, err) < 0)
        goto out;
    hdr = auth_header(auth, &hdr_size);
    headers[0] = hdr;
    path = ocra_xasprintf("/images/%s/push?tag=%s", name, tag);
    if (stream_call(d, path, headers, &s, err) < 0)
        goto out;
    if (!ocra_image_docker_progress_digest(s.progress)) {
        ocra_err_set(err, EPROTO, "the push output has no manifest digest (aux.Digest)");
        goto out;
    }
    snprintf(digest_out, OCRA_IMAGE_DIGEST_MAX, "%s",
             ocra_image_docker_progress_digest(s.progress));
    ret = 0;
out:
    if (ret < 0)
        ocra_err_wrap(err, "docker push %s:%s", push_check(name, tag, NULL, NULL) == 0 ? name : "",
                      push_check(name, tag, NULL, NULL) == 0 ? tag : "");
    if (hdr)
        ocra_secure_free(hdr, hdr_size);
    ocra_image_docker_progress_free(s.progress);
    ocra_buf_fini(&s.raw);
    free(path);
    return ret;
}

int
ocra_image_docker_pull(struct ocra_image_docker *d, const char *ref,
                       const struct ocra_image_docker_auth *auth, int *pulled, struct ocra_err *err)
{
    struct stream s = {.fd = -1};
    const char *headers[2] = {NULL, NULL};
    const char *at = strchr(ref, '@');
    char *hdr = NULL;
    size_t hdr_size = 0;
    struct ocra_buf path;
    int ret = -1;

    ocra_buf_init(&path);
    ocra_buf_init(&s.raw);
    s.progress = ocra_image_docker_progress_new(0);
    if (check_ref(ref, err) < 0)
        goto out;
    if (!at || !ocra_image_digest_valid(at + 1)) {
        ocra_err_set(err, EINVAL, "pull by digest only (name@sha256:...)");
        goto out;
    }
    hdr = auth_header(auth, &hdr_size);
    headers[0] = hdr;
    ocra_buf_puts(&path, "/images/create?fromImage=");
    image_url_escape(&path, ref);
    ret = stream_call(d, path.data, headers, &s, err);
    if (ret == 0 && pulled)
        *pulled = s.progress->pulled;
out:
    if (ret < 0)
        ocra_err_wrap(err, "docker pull %s", check_ref(ref, NULL) == 0 ? ref : "image");
    if (hdr)
        ocra_secure_free(hdr, hdr_size);
    ocra_image_docker_progress_free(s.progress);
    ocra_buf_fini(&s.raw);
    ocra_buf_fini(&path);
    return ret;
}

/* ---- load ------------------------------------------------------------------------------ */

int
ocra_image_docker_load(struct ocra_image_docker *d, int fd, struct ocra_err *err)
{
    static const char *const headers[] = {"Content-Type: application/x-tar", NULL};
    struct stream s = {.fd = fd, .size = OCRA_HTTP_LEN_UNKNOWN};
    int ret;

    ocra_buf_init(&s.raw);
    s.progress = ocra_image_docker_progress_new(0);
    ret = stream_call(d, "/images/load?quiet=1", headers, &s, err);
    if (ret < 0)
        ocra_err_wrap(err, "docker load");
    ocra_image_docker_progress_free(s.progress);
    ocra_buf_fini(&s.raw);
    return ret;
}

struct ocra_image_docker_archive {
    struct archive *a;
    int fd;
    size_t n_layers;
    bool cut; /* freed before its end: nothing more is written */
};

/* The archive's bytes into its fd: a socket without SIGPIPE (the reader may be gone), else
 * a file. */
static la_ssize_t
archive_out(struct archive *a, void *ctx, const void *buf, size_t n)
{
    const struct ocra_image_docker_archive *x = ctx;
    ssize_t w;

    if (x->cut) {
        archive_set_error(a, ECANCELED, "docker archive: cut short");
        return -1;
    }
    do
        w = send(x->fd, buf, n, MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    if (w < 0 && errno == ENOTSOCK)
        w = ocra_write_all(x->fd, buf, n) < 0 ? -1 : (ssize_t)n;
    if (w < 0)
        archive_set_error(a, errno, "docker archive: %s", strerror(errno));
    return w;
}

struct ocra_image_docker_archive *
ocra_image_docker_archive_new(int fd, struct ocra_err *err)
{
    struct ocra_image_docker_archive *x = ocra_xcalloc(1, sizeof(*x));

    x->fd = fd;
    x->a = archive_write_new();
    if (!x->a)
        abort();
    if (archive_write_set_format_pax_restricted(x->a) != ARCHIVE_OK ||
        archive_write_open(x->a, x, NULL, archive_out, NULL) != ARCHIVE_OK) {
        ar_fail(x->a, "(open)", err);
        ocra_image_docker_archive_free(x);
        return NULL;
    }
    return x;
}

void
ocra_image_docker_archive_free(struct ocra_image_docker_archive *x)
{
    if (!x)
        return;
    x->cut = true; /* an archive not ended stays cut short: no end blocks, no padding */
    archive_write_free(x->a);
    free(x);
}

int
ocra_image_docker_archive_layer(struct ocra_image_docker_archive *x,
                                const struct ocra_image_src *src, struct ocra_err *err)
{
    char name[48], *buf = ocra_xmalloc(1u << 16);
    const struct ocra_image_docker_file f = {.name = name};
    uint64_t off = 0;
    int ret = -1;

    (void)snprintf(name, sizeof(name), "layers/%zu/layer.tar", x->n_layers);
    if (ar_header(x->a, &f, (int64_t)src->size, err) < 0)
        goto out;
    while (off < src->size) {
        ssize_t n = image_src_read(src, buf, 1u << 16, off);

        if (n <= 0) {
            ocra_err_set(err, n < 0 ? errno : EIO, "%s: reading the layer", name);
            goto out;
        }
        if (archive_write_data(x->a, buf, (size_t)n) != n) {
            ar_fail(x->a, name, err);
            goto out;
        }
        off += (uint64_t)n;
    }
    x->n_layers++;
    ret = 0;
out:
    free(buf);
    return ret;
}

/* manifest.json: the config, and a name for each layer of its rootfs: the archive's for the
 * last n_new, names it does not hold for the base's before them. */
static char *
archive_manifest(const char *config, size_t len, size_t n_new, struct ocra_err *err)
{
    json_t *c = ocra_json_parse(config, len, 0, err), *layers, *m = NULL;
    size_t n = json_array_size(json_object_get(json_object_get(c, "rootfs"), "diff_ids"));
    char *out = NULL;

    if (!c)
        return NULL;
    if (n < n_new) {
        ocra_err_set(err, EINVAL, "docker archive: the config has %zu layers, the archive %zu", n,
                     n_new);
        goto out;
    }
    layers = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(layers, i < n - n_new
                                          ? json_sprintf("base/%zu/layer.tar", i)
                                          : json_sprintf("layers/%zu/layer.tar", i - (n - n_new)));
    m = json_pack("[{s:s, s:o, s:[]}]", "Config", "config.json", "Layers", layers, "RepoTags");
    out = ocra_json_compact(m);
out:
    json_decref(c);
    json_decref(m);
    return out;
}

int
ocra_image_docker_archive_end(struct ocra_image_docker_archive *x, const char *config, size_t len,
                              struct ocra_err *err)
{
    struct ocra_image_docker_file files[] = {
        {.name = "config.json", .data = config, .len = len},
        {.name = "manifest.json"},
    };
    char *manifest = archive_manifest(config, len, x->n_layers, err);
    int ret = -1;

    if (!manifest)
        return -1;
    files[1].data = manifest;
    files[1].len = strlen(manifest);
    if (ar_entry(x->a, &files[0], err) < 0 || ar_entry(x->a, &files[1], err) < 0)
        goto out;
    if (archive_write_close(x->a) != ARCHIVE_OK) {
        ar_fail(x->a, "(close)", err);
        goto out;
    }
    ret = 0;
out:
    free(manifest);
    return ret;
}
