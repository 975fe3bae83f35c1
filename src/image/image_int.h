/* SPDX-License-Identifier: Apache-2.0 */
/*
 * image_int.h: what the files of the image module share. The registry client's state (its
 * URL, the credentials and the bearer tokens it holds, retry settings) and the request and
 * authentication helpers that image_registry.c and image_auth.c call across.
 */
#ifndef OCRA_IMAGE_INT_H
#define OCRA_IMAGE_INT_H

#include "http/http.h"
#include "image/image.h"

#define IMAGE_TOKENS_MAX 16

struct image_token {
    char *scope; /* space-separated scopes the token was issued for */
    char *value; /* secret: wiped on free */
    uint64_t expires_ns;
};

struct ocra_image_registry {
    char *url;                          /* scheme://host[:port], no trailing slash */
    char *origin;                       /* host[:port] */
    char *basic;                        /* "Basic <base64>" or NULL; secret */
    enum ocra_image_auth_scheme scheme; /* what the registry asked for, once it has */
    char *realm;                        /* bearer token endpoint */
    char *service;                      /* bearer service, or NULL */
    struct image_token tokens[IMAGE_TOKENS_MAX];
    size_t n_tokens;
    uint64_t chunk_size;
    int max_attempts;
    long timeout_ms;
    struct ocra_pacer pacer;
};

/* image_registry.c: up to n bytes of src at off (mem, fd or read): how many, 0 at or past
 * src->size, -1 on a read error. */
ssize_t image_src_read(const struct ocra_image_src *src, void *buf, size_t n, uint64_t off);

/* image_auth.c */
int image_creds_load(struct ocra_image_registry *r, const struct ocra_image_registry_opts *opts,
                     struct ocra_err *err);
/* The Authorization header for scope (or NULL when none applies yet): caller frees it with
 * ocra_secure_free(). May fetch a bearer token. */
int image_auth_header(struct ocra_image_registry *r, const char *scope, char **out,
                      struct ocra_err *err);
/* Learns from a 401's WWW-Authenticate. 0 when a retry may succeed, -1 (EACCES) when not. */
int image_auth_on_401(struct ocra_image_registry *r, const struct ocra_http_resp *resp,
                      const char *scope, struct ocra_err *err);
void image_tokens_free(struct ocra_image_registry *r);
/* Percent-encodes s (RFC 3986 unreserved kept) onto b. */
void image_url_escape(struct ocra_buf *b, const char *s);

#endif
