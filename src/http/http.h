/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http: the one wrapper of libcurl. Plain request/response over TCP or a unix socket, with
 * a timeout on every request, an error buffer in every message, and one function that maps
 * HTTP status to errno; streaming bodies both ways and response headers for the OCI registry
 * client. JSON-RPC, the Docker Engine API and the OCI registry client build on it.
 */
#ifndef OCRA_HTTP_H
#define OCRA_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

#define OCRA_HTTP_LEN_UNKNOWN SIZE_MAX /* a streamed body's length, known at its end */

struct ocra_http_req {
    const char *method;      /* "GET", "POST", ... */
    const char *url;         /* http://host:port/path; for a unix socket http://localhost/path */
    const char *unix_socket; /* NULL for TCP */
    /* TLS (https only; each may be NULL): the CA bundle that verifies the server instead of
     * the system's, and a client certificate with its key (PEM files) */
    const char *tls_ca, *tls_cert, *tls_key;
    const char *const *headers; /* "Name: value" strings, NULL-terminated; may be NULL */
    const void *body;
    size_t body_len;
    long timeout_ms;     /* whole request; 0: 30 s */
    size_t max_response; /* 0: 64 MiB */
    /*
     * Streaming upload (optional): when `read` is set and `body` is NULL, body_len bytes are
     * pulled through it (OCRA_HTTP_LEN_UNKNOWN: until it returns 0, sent chunked). It fills up
     * to n bytes of buf and returns how many (0 only at the end), or (size_t)-1 to abort the
     * request (EIO).
     */
    size_t (*read)(void *ctx, char *buf, size_t n);
    void *read_ctx;
    /*
     * Streaming download (optional): when `write` is set, the response body goes to it instead
     * of resp->body (max_response does not apply). It returns 0 to go on, -1 to abort (EIO).
     */
    int (*write)(void *ctx, const void *data, size_t n);
    void *write_ctx;
    /* Streaming transfers fail after this long without a byte either way; 0: 30 s; < 0: never
     * (a build step that compiles for minutes in silence; timeout_ms still bounds the whole). */
    long stall_ms;
    bool keep_headers;     /* keep the final response's headers in resp->headers */
    bool follow_redirects; /* GET/HEAD only; credentials headers are not sent to another host */
    /* Streaming downloads: the least average rate, in bytes/s, over stall_ms (0: 1 byte/s),
     * and the most bytes of body: more, or a Content-Length over it, fails with EFBIG (0: no
     * limit). */
    long min_rate;
    uint64_t max_download;
    /*
     * Destinations (TCP only): with public_only, a connection is opened only to an address that
     * ocra_net_allowed() accepts for the URL's host under allow (n_allow entries: host names,
     * addresses, CIDRs), so loopback, private, link-local, metadata and reserved addresses are
     * refused unless listed. Judged on each address a connection is about to be made to, after
     * name resolution: a name resolving to an internal address is refused as a literal one.
     * A refusal fails the request with EACCES naming the address and its class. With a proxy
     * from the environment, the proxy's address is the one judged.
     */
    bool public_only;
    const char *const *allow;
    size_t n_allow;
};

struct ocra_http_resp {
    long status;
    char *body; /* NUL-terminated; free with ocra_http_resp_fini() */
    size_t body_len;
    char *headers; /* with keep_headers: the final response's "Name: value\r\n" lines, else NULL */
};

/*
 * The parts of an absolute http(s) URL as libcurl reads it, the URL a request would go to:
 * lowercase scheme, the host (an IPv4 literal in dotted form whatever its form in the URL, an
 * IPv6 literal without brackets), the port (the scheme's default when the URL has none). Each
 * out-param may be NULL; *scheme and *host: caller frees. EINVAL for what libcurl refuses.
 */
int ocra_http_url_parts(const char *url, char **scheme, char **host, long *port,
                        struct ocra_err *err);

/*
 * Performs one request. 0 when a response arrived, whatever its status (resp filled; the
 * caller frees with ocra_http_resp_fini()); -1 on a transport failure: ECONNREFUSED,
 * ETIMEDOUT (the request's timeout, or a streaming transfer below min_rate for stall_ms), EFBIG
 * (response over max_response or max_download), EACCES (public_only refused the address), EIO
 * otherwise, with curl's message.
 */
int ocra_http_do(const struct ocra_http_req *req, struct ocra_http_resp *resp,
                 struct ocra_err *err);
void ocra_http_resp_fini(struct ocra_http_resp *resp);
/* errno for an HTTP status: 0 for 2xx, EINVAL 400, EACCES 401/403, ENOENT 404, EEXIST 409,
 * EAGAIN 429 and 503, EIO other 5xx, EPROTO anything else. */
int ocra_http_status_errno(long status);
/*
 * The value of the last response header `name` (case-insensitive; leading and trailing space
 * trimmed) copied into out (size outsz). Returns its length, or -1 when absent or longer than
 * outsz - 1. Needs keep_headers.
 */
long ocra_http_resp_header(const struct ocra_http_resp *resp, const char *name, char *out,
                           size_t outsz);

#endif
