/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http: the one wrapper of libcurl. Plain request/response over TCP or a unix socket, with
 * a timeout on every request, an error buffer in every message, and one function that maps
 * HTTP status to errno. JSON-RPC, the Docker Engine API and the OCI registry client build
 * on it.
 */
#ifndef OCRA_HTTP_H
#define OCRA_HTTP_H

#include <stddef.h>

#include "base/base.h"

struct ocra_http_req {
    const char *method;         /* "GET", "POST", ... */
    const char *url;            /* http://host:port/path; for a unix socket http://localhost/path */
    const char *unix_socket;    /* NULL for TCP */
    const char *const *headers; /* "Name: value" strings, NULL-terminated; may be NULL */
    const void *body;
    size_t body_len;
    long timeout_ms;     /* whole request; 0: 30 s */
    size_t max_response; /* 0: 64 MiB */
};

struct ocra_http_resp {
    long status;
    char *body; /* NUL-terminated; free with ocra_http_resp_fini() */
    size_t body_len;
};

/*
 * Performs one request. 0 when a response arrived, whatever its status (resp filled; the
 * caller frees with ocra_http_resp_fini()); -1 on a transport failure: ECONNREFUSED,
 * ETIMEDOUT, EFBIG (response over max_response), EIO otherwise, with curl's message.
 */
int ocra_http_do(const struct ocra_http_req *req, struct ocra_http_resp *resp,
                 struct ocra_err *err);
void ocra_http_resp_fini(struct ocra_http_resp *resp);
/* errno for an HTTP status: 0 for 2xx, EINVAL 400, EACCES 401/403, ENOENT 404, EEXIST 409,
 * EAGAIN 429 and 503, EIO other 5xx, EPROTO anything else. */
int ocra_http_status_errno(long status);

#endif
