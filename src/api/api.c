/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api.c: the server. libmicrohttpd runs one internal polling thread; the journal connection
 * is opened on that thread at its first request and used by it alone (a store connection
 * belongs to one thread). Requests are small reads of the journal, so one thread serves a
 * dashboard and a Prometheus scraper without queueing that matters.
 */
#include "api/api_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#define MAX_BODY (64u << 10) /* request bodies are not used; anything larger is refused */
#define TOKEN_MAX 512

struct ocra_api {
    struct MHD_Daemon *mhd;
    struct ocra_api_ctx ctx;
    char *journal;
    char *token; /* wiped on free */
    unsigned port;
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } addr;
};

/* Per-connection state across the handler's calls for one request. */
struct conn_state {
    size_t body_len;
};

static int
parse_listen(const char *s, struct ocra_api *api, bool *loopback, struct ocra_err *err)
{
    char host[64];
    const char *colon;
    int64_t port;
    size_t n;

    if (!s || !*s)
        s = "127.0.0.1:8080";
    if (s[0] == '[') {
        const char *end = strchr(s, ']');

        if (!end || end[1] != ':')
            return ocra_err_set(err, EINVAL, "listen %s: want [IPv6]:PORT", s);
        n = (size_t)(end - s - 1);
        colon = end + 1;
        if (n >= sizeof(host))
            return ocra_err_set(err, EINVAL, "listen %s: address too long", s);
        memcpy(host, s + 1, n);
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return ocra_err_set(err, EINVAL, "listen %s: want HOST:PORT", s);
        n = (size_t)(colon - s);
        if (n >= sizeof(host))
            return ocra_err_set(err, EINVAL, "listen %s: address too long", s);
        memcpy(host, s, n);
    }
    host[n] = '\0';
    if (ocra_parse_i64(colon + 1, 0, 65535, &port, NULL) < 0)
        return ocra_err_set(err, EINVAL, "listen %s: port must be 0..65535", s);
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    memset(&api->addr, 0, sizeof(api->addr));
    if (inet_pton(AF_INET, host, &api->addr.in4.sin_addr) == 1) {
        api->addr.in4.sin_family = AF_INET;
        api->addr.in4.sin_port = htons((uint16_t)port);
        *loopback = (ntohl(api->addr.in4.sin_addr.s_addr) >> 24) == 127;
    } else if (inet_pton(AF_INET6, host, &api->addr.in6.sin6_addr) == 1) {
        api->addr.in6.sin6_family = AF_INET6;
        api->addr.in6.sin6_port = htons((uint16_t)port);
        *loopback = IN6_IS_ADDR_LOOPBACK(&api->addr.in6.sin6_addr);
    } else {
        return ocra_err_set(err, EINVAL, "listen %s: %s is not an IP address", s, host);
    }
    return 0;
}

static int
read_token(const char *path, char **out, struct ocra_err *err)
{
    struct stat sb;
    char *text = NULL;
    size_t len = 0;

    if (stat(path, &sb) < 0)
        return ocra_err_sys(err, "token file %s", path);
    if (sb.st_mode & 077)
        return ocra_err_set(err, EACCES, "token file %s: readable by group or others (chmod 600)",
                            path);
    if (ocra_file_read(path, TOKEN_MAX, &text, &len, err) < 0)
        return ocra_err_wrap(err, "token file %s", path);
    len = strcspn(text, "\r\n");
    text[len] = '\0';
    if (len < 16) {
        ocra_secure_free(text, len);
        return ocra_err_set(err, EINVAL, "token file %s: the token needs at least 16 characters",
                            path);
    }
    *out = text;
    return 0;
}

/* Constant-time comparison of the Authorization header with "Bearer <token>". */
static bool
token_ok(const char *token, const char *header)
{
    size_t n, m;
    unsigned char diff = 0;

    if (!token)
        return true;
    if (!header || strncmp(header, "Bearer ", 7) != 0)
        return false;
    header += 7;
    n = strlen(token);
    m = strlen(header);
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(token[i] ^ (i < m ? header[i] : 0));
    return diff == 0 && n == m;
}

static const char *
query_get(void *conn, const char *key)
{
    return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, key);
}

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];

    (void)cls;
    vsnprintf(line, sizeof(line), fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    ocra_log_warn("api: %s", line);
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
       const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    struct ocra_api *api = cls;
    struct conn_state *cs = *con_cls;
    struct ocra_api_req req = {0};
    struct ocra_api_resp resp = {0};
    struct MHD_Response *r;
    struct ocra_err err = {0};
    enum MHD_Result ret;

    (void)version;
    if (!cs) {
        *con_cls = ocra_xcalloc(1, sizeof(*cs));
        return MHD_YES;
    }
    if (*upload_data_size) {
        cs->body_len += *upload_data_size;
        *upload_data_size = 0;
        (void)upload_data;
        return MHD_YES;
    }
    if (!api->ctx.st && api->journal && ocra_store_open(api->journal, &api->ctx.st, &err) < 0) {
        ocra_log_error("api: journal %s: %s", api->journal, err.msg);
        api->ctx.st = NULL;
    }
    req.method = method;
    req.path = url;
    req.query = query_get;
    req.conn = conn;
    req.authorized =
        token_ok(api->token,
                 MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION));
    if (cs->body_len > MAX_BODY) {
        resp.status = 413;
        resp.media_type = "application/json";
        resp.body = ocra_xstrdup(
            "{\"error\":{\"code\":\"too_large\",\"message\":\"request body too large\"}}");
        resp.len = strlen(resp.body);
    } else {
        ocra_api_route(&api->ctx, &req, &resp);
    }
    if (resp.static_body) {
        /* MHD takes a non-const pointer but never writes through a PERSISTENT buffer */
        union {
            const unsigned char *c;
            void *m;
        } u = {.c = resp.static_body};

        r = MHD_create_response_from_buffer(resp.len, u.m, MHD_RESPMEM_PERSISTENT);
    } else {
        static char empty[1];

        r = MHD_create_response_from_buffer(resp.len, resp.body ? resp.body : empty,
                                            resp.body ? MHD_RESPMEM_MUST_FREE
                                                      : MHD_RESPMEM_PERSISTENT);
    }
    if (!r) {
        free(resp.body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, resp.media_type);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
    if (resp.allow)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, resp.allow);
    if (resp.auth_challenge)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"ocra\"");
    ret = MHD_queue_response(conn, resp.status, r);
    MHD_destroy_response(r);
    return ret;
}

static void
completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode t)
{
    (void)cls;
    (void)conn;
    (void)t;
    free(*con_cls);
    *con_cls = NULL;
}

struct ocra_api *
ocra_api_new(const struct ocra_api_opts *opts, struct ocra_err *err)
{
    struct ocra_api *api = ocra_xcalloc(1, sizeof(*api));
    const union MHD_DaemonInfo *info;
    bool loopback = false;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;

    if (parse_listen(opts->listen, api, &loopback, err) < 0)
        goto fail;
    if (opts->token_file && *opts->token_file && read_token(opts->token_file, &api->token, err) < 0)
        goto fail;
    if (!loopback && !api->token) {
        ocra_err_set(err, EINVAL,
                     "listen %s is not a loopback address: set api.token_file, or every call "
                     "would be open to the network",
                     opts->listen);
        goto fail;
    }
    if (api->addr.sa.sa_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    api->journal = opts->journal && *opts->journal ? ocra_xstrdup(opts->journal) : NULL;
    api->ctx.metrics = opts->metrics ? opts->metrics : ocra_metrics_default();
    if (opts->hooks)
        api->ctx.hooks = *opts->hooks;
    api->ctx.token_configured = api->token != NULL;
    api->ctx.token_for_all = !loopback;
    api->mhd =
        MHD_start_daemon(flags, 0, NULL, NULL, handle, api, MHD_OPTION_SOCK_ADDR, &api->addr.sa,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_CONNECTION_TIMEOUT,
                         (unsigned)30, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
                         MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_END);
    if (!api->mhd) {
        ocra_err_set(err, errno ? errno : EADDRINUSE, "listen %s: cannot start the server (%s)",
                     opts->listen ? opts->listen : "127.0.0.1:8080",
                     errno ? strerror(errno) : "address in use?");
        goto fail;
    }
    info = MHD_get_daemon_info(api->mhd, MHD_DAEMON_INFO_BIND_PORT);
    api->port = info ? info->port : 0;
    return api;
fail:
    ocra_api_free(api);
    return NULL;
}

void
ocra_api_free(struct ocra_api *api)
{
    if (!api)
        return;
    if (api->mhd)
        MHD_stop_daemon(api->mhd);
    ocra_store_close(api->ctx.st);
    if (api->token)
        ocra_secure_free(api->token, strlen(api->token));
    free(api->journal);
    free(api);
}

unsigned
ocra_api_port(const struct ocra_api *api)
{
    return api->port;
}
