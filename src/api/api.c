/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api.c: the server. libmicrohttpd runs one internal polling thread (epoll); the journal
 * connection is opened on that thread at its first request and used by it alone (a store
 * connection belongs to one thread). Requests are small reads of the journal, so one thread
 * serves a dashboard and a Prometheus scraper without queueing that matters.
 *
 * What keeps a hostile web page or client from reading or starving it: the Host header must
 * name this server (a loopback name, the listen address, or api.allowed_hosts), else 421, so
 * that a page whose DNS name was rebound to 127.0.0.1 cannot read the API from a browser;
 * each client address may hold api.connections_per_client connections and all together
 * CONNECTIONS_MAX; and a guard thread closes every connection that has not sent a whole
 * request REQUEST_TIMEOUT_MS after it connected or after its previous answer, however slowly
 * it trickles bytes (libmicrohttpd's own timeout only counts silence).
 */
#include "api/api_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#define MAX_BODY (64u << 10) /* request bodies are not used; anything larger is refused */
#define TOKEN_MAX 512
#define CONNECTIONS_MAX 256u     /* all clients together */
#define PER_CLIENT_DEFAULT 16u   /* connections from one address (api.connections_per_client) */
#define REQUEST_TIMEOUT_MS 10000 /* to send a whole request: headers and body */
#define IDLE_TIMEOUT_S 30u       /* libmicrohttpd's: a connection silent that long is closed */
#define SLOW_LOG_EVERY_MS 60000  /* at most one log line a minute about slow clients */
#define MHD_LOG_BURST 10u        /* libmicrohttpd messages logged a minute */

/* One open connection, watched by the guard thread (all members under ocra_api.mu). */
struct conn_watch {
    struct conn_watch *prev, *next;
    int fd;
    int64_t since_ms; /* reading a request since then (monotonic); 0 while one is answered */
    bool answered;    /* it has had an answer: now an idle kept-alive connection */
    bool cut;
};

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
    bool any_ip;  /* a wildcard bind: every IP literal is an address of this server */
    char **hosts; /* api.allowed_hosts, lowercase */
    size_t n_hosts;
    /* the guard thread and the connections it watches */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t guard;
    bool guard_started, stopping;
    struct conn_watch *conns;
    unsigned long slow, slow_logged; /* connections cut before their first answer */
    int64_t slow_log_ms;
    unsigned long log_lines, log_dropped; /* libmicrohttpd's messages in this minute */
    int64_t log_window_ms;
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
        api->any_ip = api->addr.in4.sin_addr.s_addr == htonl(INADDR_ANY);
    } else if (inet_pton(AF_INET6, host, &api->addr.in6.sin6_addr) == 1) {
        api->addr.in6.sin6_family = AF_INET6;
        api->addr.in6.sin6_port = htons((uint16_t)port);
        *loopback = IN6_IS_ADDR_LOOPBACK(&api->addr.in6.sin6_addr);
        api->any_ip = IN6_IS_ADDR_UNSPECIFIED(&api->addr.in6.sin6_addr);
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

/* ---- the Host header ---------------------------------------------------------------------- */

bool
ocra_api_host_name(const char *h, char *out, size_t size)
{
    const char *end;
    size_t n;

    if (h[0] == '[') {
        h++;
        end = strchr(h, ']');
        if (!end || strspn(h, "0123456789abcdefABCDEF:.") != (size_t)(end - h))
            return false;
        n = (size_t)(end - h);
        end++;
    } else {
        n = strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_");
        end = h + n;
    }
    if (*end == ':' && end[1] && strspn(end + 1, "0123456789") == strlen(end + 1) &&
        strlen(end + 1) <= 5)
        end += strlen(end);
    if (*end || n == 0 || n >= size)
        return false;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)h[i]);
    if (n > 1 && out[n - 1] == '.')
        n--;
    out[n] = '\0';
    return true;
}

static bool
ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), m = strlen(tail);

    return n > m && strcmp(s + n - m, tail) == 0;
}

/* A request's Host names this server: a loopback name (localhost, *.localhost, 127.0.0.0/8,
 * ::1), the listen address (any IP literal on a wildcard bind: an address cannot be rebound,
 * only a DNS name can), or a name of api.allowed_hosts. No Host (HTTP/1.0) is no browser's. */
static bool
host_allowed(const struct ocra_api *api, const char *header)
{
    struct in6_addr a6;
    struct in_addr a4;
    char name[256];

    if (!header)
        return true;
    if (!ocra_api_host_name(header, name, sizeof(name)))
        return false;
    if (!strcmp(name, "localhost") || ends_with(name, ".localhost"))
        return true;
    if (inet_pton(AF_INET, name, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127 || api->any_ip ||
               (api->addr.sa.sa_family == AF_INET && a4.s_addr == api->addr.in4.sin_addr.s_addr);
    if (inet_pton(AF_INET6, name, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6) || api->any_ip ||
               (api->addr.sa.sa_family == AF_INET6 &&
                !memcmp(&a6, &api->addr.in6.sin6_addr, sizeof(a6)));
    for (size_t i = 0; i < api->n_hosts; i++)
        if (!strcmp(name, api->hosts[i]))
            return true;
    return false;
}

/* ---- the guard: slow requests -------------------------------------------------------------- */

static int64_t
mono_ms(void)
{
    return (int64_t)(ocra_time_mono_ns() / 1000000u);
}

static void
on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
              enum MHD_ConnectionNotificationCode code)
{
    struct ocra_api *api = cls;
    struct conn_watch *w = *socket_context;

    pthread_mutex_lock(&api->mu);
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);

        w = ocra_xcalloc(1, sizeof(*w));
        w->fd = ci ? ci->connect_fd : -1;
        w->since_ms = mono_ms();
        w->next = api->conns;
        if (api->conns)
            api->conns->prev = w;
        api->conns = w;
        *socket_context = w;
    } else if (w) { /* closed: before libmicrohttpd closes the descriptor */
        if (w->prev)
            w->prev->next = w->next;
        else
            api->conns = w->next;
        if (w->next)
            w->next->prev = w->prev;
        free(w);
        *socket_context = NULL;
    }
    pthread_mutex_unlock(&api->mu);
}

/* The connection has its whole request (reading false), or has had its answer and waits for
 * the next one (reading true). */
static void
watch_mark(struct ocra_api *api, struct MHD_Connection *conn, bool reading)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct conn_watch *w = ci ? ci->socket_context : NULL;

    if (!w)
        return;
    pthread_mutex_lock(&api->mu);
    w->since_ms = reading ? mono_ms() : 0;
    w->answered = w->answered || reading;
    pthread_mutex_unlock(&api->mu);
}

/* Once a second: shuts down the connections past their deadline (libmicrohttpd then sees the
 * end of the stream and closes them on its thread). */
static void *
guard_main(void *arg)
{
    struct ocra_api *api = arg;

    pthread_mutex_lock(&api->mu);
    while (!api->stopping) {
        struct timespec ts;
        int64_t now;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        (void)pthread_cond_timedwait(&api->cv, &api->mu, &ts);
        now = mono_ms();
        for (struct conn_watch *w = api->conns; w; w = w->next) {
            if (!w->since_ms || w->cut || now - w->since_ms < REQUEST_TIMEOUT_MS || w->fd < 0)
                continue;
            (void)shutdown(w->fd, SHUT_RDWR);
            w->cut = true;
            api->slow += !w->answered;
        }
        if (api->slow > api->slow_logged && now - api->slow_log_ms >= SLOW_LOG_EVERY_MS) {
            ocra_log_warn("api: closed %lu connections that sent no whole request within %d s "
                          "(slow or stalled clients; %lu since start)",
                          api->slow - api->slow_logged, REQUEST_TIMEOUT_MS / 1000, api->slow);
            api->slow_logged = api->slow;
            api->slow_log_ms = now;
        }
    }
    pthread_mutex_unlock(&api->mu);
    return NULL;
}

/* libmicrohttpd's messages, at most MHD_LOG_BURST a minute: a client refused or cut again and
 * again (each refusal is a message) must not flood the log. */
static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct ocra_api *api = cls;
    unsigned long dropped = 0;
    bool show;
    char line[512];
    int64_t now = mono_ms();

    vsnprintf(line, sizeof(line), fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    pthread_mutex_lock(&api->mu);
    if (now - api->log_window_ms >= SLOW_LOG_EVERY_MS) {
        dropped = api->log_dropped;
        api->log_window_ms = now;
        api->log_lines = api->log_dropped = 0;
    }
    show = api->log_lines++ < MHD_LOG_BURST;
    api->log_dropped += !show;
    pthread_mutex_unlock(&api->mu);
    if (dropped)
        ocra_log_warn("api: %lu more messages of libmicrohttpd in the last minute, not logged",
                      dropped);
    if (show)
        ocra_log_warn("api: %s", line);
}

/* ---- requests ------------------------------------------------------------------------------ */

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
    watch_mark(api, conn, false); /* the whole request is in */
    req.method = method;
    req.path = url;
    req.query = query_get;
    req.conn = conn;
    req.host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    req.host_ok = host_allowed(api, req.host);
    req.authorized =
        token_ok(api->token,
                 MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION));
    if (req.host_ok && !api->ctx.st && api->journal &&
        ocra_store_open(api->journal, &api->ctx.st, &err) < 0) {
        ocra_log_error("api: journal %s: %s", api->journal, err.msg);
        api->ctx.st = NULL;
    }
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
    (void)t;
    watch_mark(cls, conn, true); /* the next request's time starts */
    free(*con_cls);
    *con_cls = NULL;
}

/* Copies api.allowed_hosts, lowercase; EINVAL for one that is not a host name. */
static int
api_hosts(struct ocra_api *api, const struct ocra_api_opts *opts, struct ocra_err *err)
{
    api->hosts = ocra_xcalloc(opts->n_allowed_hosts + 1, sizeof(*api->hosts));
    for (size_t i = 0; i < opts->n_allowed_hosts; i++) {
        char name[256];

        if (!ocra_api_host_name(opts->allowed_hosts[i], name, sizeof(name)) ||
            strchr(opts->allowed_hosts[i], ':'))
            return ocra_err_set(err, EINVAL,
                                "api.allowed_hosts: \"%.100s\" is not a host name (a DNS name, "
                                "without a port)",
                                opts->allowed_hosts[i]);
        api->hosts[api->n_hosts++] = ocra_xstrdup(name);
    }
    return 0;
}

struct ocra_api *
ocra_api_new(const struct ocra_api_opts *opts, struct ocra_err *err)
{
    struct ocra_api *api = ocra_xcalloc(1, sizeof(*api));
    const union MHD_DaemonInfo *info;
    bool loopback = false;
    unsigned flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    unsigned per_client =
        opts->connections_per_client ? opts->connections_per_client : PER_CLIENT_DEFAULT;

    pthread_mutex_init(&api->mu, NULL);
    pthread_cond_init(&api->cv, NULL);
    if (parse_listen(opts->listen, api, &loopback, err) < 0)
        goto fail;
    if (api_hosts(api, opts, err) < 0)
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
    if (pthread_create(&api->guard, NULL, guard_main, api) != 0) {
        ocra_err_set(err, EAGAIN, "api: cannot start the guard thread");
        goto fail;
    }
    api->guard_started = true;
    api->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, handle, api, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, api,
        MHD_OPTION_SOCK_ADDR, &api->addr.sa, MHD_OPTION_CONNECTION_LIMIT, CONNECTIONS_MAX,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        per_client < CONNECTIONS_MAX ? per_client : CONNECTIONS_MAX, MHD_OPTION_CONNECTION_TIMEOUT,
        IDLE_TIMEOUT_S, MHD_OPTION_NOTIFY_COMPLETED, completed, api, MHD_OPTION_NOTIFY_CONNECTION,
        on_connection, api, MHD_OPTION_END);
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
    if (api->guard_started) {
        pthread_mutex_lock(&api->mu);
        api->stopping = true;
        pthread_cond_broadcast(&api->cv);
        pthread_mutex_unlock(&api->mu);
        pthread_join(api->guard, NULL);
    }
    if (api->mhd)
        MHD_stop_daemon(api->mhd); /* closes the connections: every watch is freed */
    pthread_cond_destroy(&api->cv);
    pthread_mutex_destroy(&api->mu);
    for (size_t i = 0; i < api->n_hosts; i++)
        free(api->hosts[i]);
    free(api->hosts);
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
