/* SPDX-License-Identifier: Apache-2.0 */
/* api_int.h: what the server (api.c), its routes (api_routes.c) and the embedded assets
 * share. Not for use outside src/api. */
#ifndef OCRA_API_INT_H
#define OCRA_API_INT_H

#include <stddef.h>

#include "api/api.h"
#include "store/store.h"

/* One embedded file of the dashboard; the table ends with a zeroed entry. */
struct ocra_api_asset {
    const char *path; /* "/index.html" */
    const char *media_type;
    const unsigned char *data;
    size_t len;
};
extern const struct ocra_api_asset ocra_api_assets[];

/* One request as the routes see it. */
struct ocra_api_req {
    const char *method;                                /* "GET", "POST", ... */
    const char *path;                                  /* decoded, without the query */
    const char *(*query)(void *conn, const char *key); /* NULL when absent */
    void *conn;
    bool authorized;  /* a valid bearer token came with it (or none is configured) */
    const char *host; /* the Host header, NULL when absent */
    bool host_ok;     /* it names this server (else 421: DNS rebinding) */
};

/* What a route answers: a status, a media type and a body (owned, freed by the server). */
struct ocra_api_resp {
    unsigned status;
    const char *media_type; /* static */
    char *body;
    size_t len;
    const unsigned char *static_body; /* instead of body: embedded bytes */
    const char *allow;                /* 405: the Allow header */
    bool auth_challenge;              /* 401: WWW-Authenticate: Bearer */
};

struct ocra_api_ctx {
    struct ocra_store *st;
    struct ocra_metrics *metrics;
    struct ocra_api_hooks hooks;
    bool token_configured;
    bool token_for_all; /* bound beyond loopback: every call but /healthz needs the token */
};

/* Routes req; fills resp. */
void ocra_api_route(struct ocra_api_ctx *ctx, const struct ocra_api_req *req,
                    struct ocra_api_resp *resp);

#endif
