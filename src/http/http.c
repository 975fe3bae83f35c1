/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http.c: libcurl easy requests with bounded responses. A handle per request keeps it
 * thread-safe and simple; connection reuse is not worth the shared state at ocra's rates.
 * Bodies may also stream through caller callbacks both ways (registry blobs), and the final
 * response's headers may be kept (registry Location, Range, WWW-Authenticate).
 */
#include "http/http.h"

#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <curl/curl.h>

struct sink {
    struct ocra_buf buf;
    size_t max;
    int overflow;
    int aborted; /* the caller's write or read callback asked to stop */
    const struct ocra_http_req *req;
    struct ocra_buf headers;
    uint64_t streamed; /* bytes given to req->write */
    CURL *h;
    bool refused; /* public_only refused refused_addr, of class refused_kind */
    char refused_addr[OCRA_NET_ADDR_STRLEN];
    enum ocra_net_kind refused_kind;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void
curl_init(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        abort();
}

static size_t
on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct sink *s = userdata;
    size_t n = size * nmemb;

    if (s->req->write) {
        if (s->req->max_download && s->streamed + n > s->req->max_download) {
            s->overflow = 1;
            return 0;
        }
        s->streamed += n;
        if (s->req->write(s->req->write_ctx, ptr, n) < 0) {
            s->aborted = 1;
            return 0;
        }
        return n;
    }
    if (s->buf.len + n > s->max) {
        s->overflow = 1;
        return 0; /* aborts the transfer */
    }
    ocra_buf_append(&s->buf, ptr, n);
    return n;
}

static size_t
on_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct sink *s = userdata;
    size_t n = size * nmemb;

    /* a new status line starts the headers of the next response (redirect, 100, auth) */
    if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0)
        ocra_buf_reset(&s->headers);
    if (s->headers.len + n > (256u << 10))
        return 0; /* a header flood aborts the transfer */
    ocra_buf_append(&s->headers, ptr, n);
    return n;
}

static size_t
on_read(char *buf, size_t size, size_t nitems, void *userdata)
{
    struct sink *s = userdata;
    size_t n = s->req->read(s->req->read_ctx, buf, size * nitems);

    if (n == (size_t)-1) {
        s->aborted = 1;
        return CURL_READFUNC_ABORT;
    }
    return n;
}

static int
curl_errno(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
        return ECONNREFUSED;
    case CURLE_OPERATION_TIMEDOUT:
        return ETIMEDOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
        return EHOSTUNREACH;
    case CURLE_FILESIZE_EXCEEDED:
        return EFBIG;
    default:
        return EIO;
    }
}

/* The host of url as libcurl reads it, brackets stripped; NULL when it has none. */
static char *
url_host(const char *url)
{
    char *host = NULL;

    return ocra_http_url_parts(url, NULL, &host, NULL, NULL) == 0 ? host : NULL;
}

/* With public_only: opens the socket only when the address is allowed (the host judged is the
 * URL being connected for, redirects included). */
static curl_socket_t
on_open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *sa)
{
    struct sink *s = clientp;
    struct ocra_net_addr a = {{0}};
    char *url = NULL, *host = NULL;
    bool ok = false;

    if (purpose != CURLSOCKTYPE_IPCXN)
        return CURL_SOCKET_BAD;
    if (sa->family == AF_INET && sa->addrlen >= sizeof(struct sockaddr_in)) {
        a.b[10] = a.b[11] = 0xff;
        memcpy(a.b + 12, &((const struct sockaddr_in *)(const void *)&sa->addr)->sin_addr, 4);
        ok = true;
    } else if (sa->family == AF_INET6 && sa->addrlen >= sizeof(struct sockaddr_in6)) {
        memcpy(a.b, &((const struct sockaddr_in6 *)(const void *)&sa->addr)->sin6_addr, 16);
        ok = true;
    }
    if (ok && curl_easy_getinfo(s->h, CURLINFO_EFFECTIVE_URL, &url) == CURLE_OK && url)
        host = url_host(url);
    ok = ok && ocra_net_allowed(host, &a, s->req->allow, s->req->n_allow, &s->refused_kind);
    free(host);
    if (!ok) {
        s->refused = true;
        ocra_net_addr_format(&a, s->refused_addr);
        return CURL_SOCKET_BAD;
    }
    return socket(sa->family, sa->socktype | SOCK_CLOEXEC, sa->protocol);
}

static struct curl_slist *
header_list(const struct ocra_http_req *req)
{
    struct curl_slist *list = NULL;

    for (const char *const *h = req->headers; h && *h; h++)
        list = curl_slist_append(list, *h);
    return curl_slist_append(list, "Expect:"); /* no 100-continue round trip */
}

static void
set_streaming(CURL *h, const struct ocra_http_req *req, struct sink *sink)
{
    if (req->body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    } else if (req->read) {
        /* UPLOAD sends the body from the callback; CUSTOMREQUEST keeps the method */
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, sink);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE,
                         req->body_len == OCRA_HTTP_LEN_UNKNOWN ? (curl_off_t)-1
                                                                : (curl_off_t)req->body_len);
    }
    if (strcmp(req->method, "HEAD") == 0)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    if (req->keep_headers) {
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, sink);
    }
    if (req->follow_redirects) {
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
        curl_easy_setopt(h, CURLOPT_UNRESTRICTED_AUTH, 0L);
    }
    if ((req->read || req->write) && req->stall_ms >= 0) {
        /* long transfers: a stalled (or trickling) peer fails after stall_ms below min_rate */
        long secs = req->stall_ms > 0 ? (req->stall_ms + 999) / 1000 : 30L;

        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, req->min_rate > 0 ? req->min_rate : 1L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, secs);
    }
    if (req->write && req->max_download)
        curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)req->max_download);
    if (req->public_only) {
        assert(!req->unix_socket);
        curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
        curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, sink);
    }
}

int
ocra_http_do(const struct ocra_http_req *req, struct ocra_http_resp *resp, struct ocra_err *err)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *headers = NULL;
    struct sink sink = {.max = req->max_response ? req->max_response : 64u << 20, .req = req};
    /* errors name the URL without its query: shorter (the cause must fit the message), and
     * no query parameter (upload state, token scope) ends up in a log */
    int url_len = (int)strcspn(req->url, "?");
    CURL *h = NULL;
    CURLcode rc;
    int ret = -1;

    pthread_once(&curl_once, curl_init);
    ocra_buf_init(&sink.buf);
    ocra_buf_init(&sink.headers);
    h = sink.h = curl_easy_init();
    if (!h) {
        ocra_err_set(err, ENOMEM, "curl_easy_init failed");
        goto out;
    }
    headers = header_list(req);
    curl_easy_setopt(h, CURLOPT_URL, req->url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms : 30000L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (req->unix_socket)
        curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, req->unix_socket);
    if (req->tls_ca)
        curl_easy_setopt(h, CURLOPT_CAINFO, req->tls_ca);
    if (req->tls_cert)
        curl_easy_setopt(h, CURLOPT_SSLCERT, req->tls_cert);
    if (req->tls_key)
        curl_easy_setopt(h, CURLOPT_SSLKEY, req->tls_key);
    set_streaming(h, req, &sink);
    rc = curl_easy_perform(h);
    if (sink.refused && rc == CURLE_COULDNT_CONNECT) { /* another address may have worked */
        ocra_err_set(err, EACCES, "refused to connect to %s: a %s address", sink.refused_addr,
                     ocra_net_kind_name(sink.refused_kind));
        goto out;
    }
    if (sink.overflow || rc == CURLE_FILESIZE_EXCEEDED) {
        ocra_err_set(err, EFBIG, "response larger than %llu bytes",
                     (unsigned long long)(req->write ? req->max_download : (uint64_t)sink.max));
        goto out;
    }
    if (sink.aborted) {
        ocra_err_set(err, EIO, "aborted by the %s callback",
                     req->write && rc == CURLE_WRITE_ERROR ? "write" : "read");
        goto out;
    }
    if (rc != CURLE_OK) {
        ocra_err_set(err, curl_errno(rc), "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
    resp->body_len = sink.buf.len;
    resp->body = ocra_buf_take(&sink.buf);
    resp->headers = req->keep_headers ? ocra_buf_take(&sink.headers) : NULL;
    ret = 0;
out:
    if (ret < 0) /* the cause first, then which request */
        ocra_err_wrap(err, "%s %.*s", req->method, url_len, req->url);
    ocra_buf_fini(&sink.buf);
    ocra_buf_fini(&sink.headers);
    curl_slist_free_all(headers);
    if (h)
        curl_easy_cleanup(h);
    return ret;
}

int
ocra_http_url_parts(const char *url, char **scheme, char **host, long *port, struct ocra_err *err)
{
    CURLU *u = curl_url();
    char *sc = NULL, *ho = NULL, *po = NULL;
    int64_t pv = 0;
    size_t n;
    int ret = -1;

    if (!u)
        abort(); /* out of memory */
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &sc, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &ho, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &po, CURLU_DEFAULT_PORT) != CURLUE_OK ||
        ocra_parse_i64(po, 1, 65535, &pv, NULL) < 0) {
        ocra_err_set(err, EINVAL, "not an absolute URL with a host");
        goto out;
    }
    n = strlen(ho);
    if (scheme)
        *scheme = ocra_xstrdup(sc);
    if (host)
        *host = n >= 2 && ho[0] == '[' ? ocra_xstrndup(ho + 1, n - 2) : ocra_xstrdup(ho);
    if (port)
        *port = (long)pv;
    ret = 0;
out:
    curl_free(sc);
    curl_free(ho);
    curl_free(po);
    curl_url_cleanup(u);
    return ret;
}

void
ocra_http_resp_fini(struct ocra_http_resp *resp)
{
    free(resp->body);
    free(resp->headers);
    resp->body = NULL;
    resp->headers = NULL;
    resp->body_len = 0;
}

long
ocra_http_resp_header(const struct ocra_http_resp *resp, const char *name, char *out, size_t outsz)
{
    size_t nlen = strlen(name);
    const char *p = resp->headers, *found = NULL, *found_end = NULL;

    while (p && *p) {
        const char *eol = strpbrk(p, "\r\n");
        const char *end = eol ? eol : p + strlen(p);

        if ((size_t)(end - p) > nlen && p[nlen] == ':' && strncasecmp(p, name, nlen) == 0) {
            found = p + nlen + 1;
            found_end = end;
        }
        p = end + strspn(end, "\r\n");
    }
    if (!found)
        return -1;
    while (found < found_end && (*found == ' ' || *found == '\t'))
        found++;
    while (found_end > found && (found_end[-1] == ' ' || found_end[-1] == '\t'))
        found_end--;
    if ((size_t)(found_end - found) >= outsz)
        return -1;
    memcpy(out, found, (size_t)(found_end - found));
    out[found_end - found] = '\0';
    return (long)(found_end - found);
}

int
ocra_http_status_errno(long status)
{
    if (status >= 200 && status < 300)
        return 0;
    switch (status) {
    case 400:
        return EINVAL;
    case 401:
    case 403:
        return EACCES;
    case 404:
        return ENOENT;
    case 409:
        return EEXIST;
    case 429:
    case 503:
        return EAGAIN;
    default:
        return status >= 500 ? EIO : EPROTO;
    }
}
