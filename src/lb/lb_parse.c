/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lb_parse.c: the pure parts of the load balancer: Runtime API command lines (names checked,
 * so nothing a spec or a journal holds can smuggle a second command into the admin socket),
 * HAProxy's replies (`show stat` CSV, found by column name), the frontends file, and the
 * configuration ocra starts HAProxy with.
 */
#include "lb/lb.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static bool
is_name(const char *s)
{
    size_t n = 0;

    for (; s[n]; n++) {
        char c = s[n];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return n > 0 && n < OCRA_LB_NAME_MAX;
}

static bool
is_addr(const char *s)
{
    unsigned char b[16];

    return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

int
ocra_lb_cmd(char *buf, size_t cap, enum ocra_lb_op op, const char *section, const char *server,
            const char *addr, int port, int inter_ms, struct ocra_err *err)
{
    int n;

    if (!is_name(section))
        return ocra_err_set(err, EINVAL, "section name '%.80s': want 1-63 of [A-Za-z0-9_.-]",
                            section);
    if (!is_name(server))
        return ocra_err_set(err, EINVAL, "server name '%.80s': want 1-63 of [A-Za-z0-9_.-]",
                            server);
    switch (op) {
    case OCRA_LB_ADD:
        if (!addr || !is_addr(addr))
            return ocra_err_set(err, EINVAL, "server address '%.80s': want an IP literal",
                                addr ? addr : "");
        if (port < 1 || port > 65535)
            return ocra_err_set(err, EINVAL, "server port %d: want 1-65535", port);
        if (inter_ms < 100 || inter_ms > 3600000)
            return ocra_err_set(err, EINVAL, "check interval %d ms: want 100-3600000", inter_ms);
        n = snprintf(buf, cap, "add server %s/%s %s%s%s:%d check inter %d", section, server,
                     strchr(addr, ':') ? "[" : "", addr, strchr(addr, ':') ? "]" : "", port,
                     inter_ms);
        break;
    case OCRA_LB_HEALTH:
        n = snprintf(buf, cap, "enable health %s/%s", section, server);
        break;
    case OCRA_LB_ENABLE:
        n = snprintf(buf, cap, "enable server %s/%s", section, server);
        break;
    case OCRA_LB_DRAIN:
        n = snprintf(buf, cap, "set server %s/%s state drain", section, server);
        break;
    case OCRA_LB_MAINT:
        n = snprintf(buf, cap, "set server %s/%s state maint", section, server);
        break;
    case OCRA_LB_DEL:
        n = snprintf(buf, cap, "del server %s/%s", section, server);
        break;
    default:
        return ocra_err_set(err, EINVAL, "unknown load balancer operation %d", (int)op);
    }
    if (n < 0 || (size_t)n >= cap)
        return ocra_err_set(err, ENOSPC, "command longer than %zu bytes", cap);
    return 0;
}

bool
ocra_lb_reply_failed(const char *reply)
{
    static const char *const fine[] = {"New server registered.", "Server deleted."};
    const char *s = reply;

    while (*s == '\n' || *s == ' ')
        s++;
    if (!*s)
        return false;
    for (size_t i = 0; i < OCRA_ARRAY_LEN(fine); i++)
        if (!strncmp(s, fine[i], strlen(fine[i])))
            return false;
    return true;
}

/* ---- show stat ------------------------------------------------------------------------------ */

enum col { C_PX, C_SV, C_QCUR, C_SCUR, C_STOT, C_STATUS, C_2XX, C_5XX, C_N };
static const char *const col_names[C_N] = {"pxname", "svname", "qcur",     "scur",
                                           "stot",   "status", "hrsp_2xx", "hrsp_5xx"};

/* The next field of a CSV line (HAProxy quotes nothing): [*p, end of field), *p moved on. */
static size_t
field(const char **p, const char *end)
{
    const char *s = *p, *c = memchr(s, ',', (size_t)(end - s));
    size_t n = c ? (size_t)(c - s) : (size_t)(end - s);

    *p = c ? c + 1 : end;
    return n;
}

static int
header(const char *s, const char *end, int idx[C_N], struct ocra_err *err)
{
    for (int c = 0; c < C_N; c++)
        idx[c] = -1;
    if (end - s < 2 || s[0] != '#' || s[1] != ' ')
        return ocra_err_set(err, EPROTO, "show stat: no '# pxname,...' header line");
    s += 2;
    for (int i = 0; s < end; i++) {
        const char *f = s;
        size_t n = field(&s, end);

        for (int c = 0; c < C_N; c++)
            if (strlen(col_names[c]) == n && !memcmp(f, col_names[c], n) && idx[c] < 0)
                idx[c] = i;
    }
    for (int c = 0; c < C_N; c++)
        if (idx[c] < 0)
            return ocra_err_set(err, EPROTO, "show stat: the header has no column %s",
                                col_names[c]);
    return 0;
}

static int
put_count(int64_t *out, const char *f, size_t n, int line, const char *col, struct ocra_err *err)
{
    char tmp[24];

    if (n == 0) {
        *out = -1;
        return 0;
    }
    if (n >= sizeof(tmp))
        return ocra_err_set(err, EPROTO, "show stat line %d: %s is not a count", line, col);
    memcpy(tmp, f, n);
    tmp[n] = '\0';
    if (ocra_parse_i64(tmp, 0, INT64_MAX, out, NULL) < 0)
        return ocra_err_set(err, EPROTO, "show stat line %d: %s '%s' is not a count", line, col,
                            tmp);
    return 0;
}

static int
put_text(char *out, size_t cap, const char *f, size_t n, int line, const char *col,
         struct ocra_err *err)
{
    if (n >= cap || memchr(f, '\0', n))
        return ocra_err_set(err, EPROTO, "show stat line %d: %s longer than %zu bytes", line, col,
                            cap - 1);
    memcpy(out, f, n);
    out[n] = '\0';
    return 0;
}

static int
row(const char *s, const char *end, const int idx[C_N], int line, struct ocra_lb_stat *r,
    struct ocra_err *err)
{
    int64_t *counts[C_N] = {[C_QCUR] = &r->qcur,
                            [C_SCUR] = &r->scur,
                            [C_STOT] = &r->stot,
                            [C_2XX] = &r->hrsp_2xx,
                            [C_5XX] = &r->hrsp_5xx};
    int seen = 0;

    memset(r, 0, sizeof(*r));
    for (int i = 0; s < end; i++) {
        const char *f = s;
        size_t n = field(&s, end);

        for (int c = 0; c < C_N; c++) {
            int rc = 0;

            if (idx[c] != i)
                continue;
            seen++;
            if (c == C_PX)
                rc = put_text(r->section, sizeof(r->section), f, n, line, "pxname", err);
            else if (c == C_SV)
                rc = put_text(r->server, sizeof(r->server), f, n, line, "svname", err);
            else if (c == C_STATUS)
                rc = put_text(r->status, sizeof(r->status), f, n, line, "status", err);
            else
                rc = put_count(counts[c], f, n, line, col_names[c], err);
            if (rc < 0)
                return -1;
        }
    }
    if (seen < C_N || !r->section[0] || !r->server[0])
        return ocra_err_set(err, EPROTO, "show stat line %d: fewer fields than the header", line);
    return 0;
}

int
ocra_lb_stat_parse(const char *text, size_t len, struct ocra_lb_stat **rows, size_t *n,
                   struct ocra_err *err)
{
    const char *p = text, *end = text + len;
    struct ocra_lb_stat *out = NULL;
    size_t cnt = 0, cap = 0;
    int idx[C_N], line = 0;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *le = nl ? nl : end;

        line++;
        if (le > p && le[-1] == '\r')
            le--;
        if (line == 1) {
            if (header(p, le, idx, err) < 0)
                goto fail;
        } else if (le > p) {
            if (cnt == cap) {
                cap = cap ? 2 * cap : 16;
                out = ocra_xrealloc(out, cap * sizeof(*out));
            }
            if (row(p, le, idx, line, &out[cnt], err) < 0)
                goto fail;
            cnt++;
        }
        p = nl ? nl + 1 : end;
    }
    if (line == 0 && ocra_err_set(err, EPROTO, "show stat: empty reply") < 0)
        goto fail;
    *rows = out;
    *n = cnt;
    return 0;
fail:
    free(out);
    return -1;
}

int64_t
ocra_lb_load(const struct ocra_lb_stat *rows, size_t n, const char *prefix)
{
    size_t plen = strlen(prefix);
    int64_t sum = 0;

    for (size_t i = 0; i < n; i++) {
        const char *s = rows[i].server;

        if (strncmp(s, prefix, plen) || (s[plen] && strncmp(s + plen, "-r", 2)))
            continue;
        sum += (rows[i].scur > 0 ? rows[i].scur : 0) + (rows[i].qcur > 0 ? rows[i].qcur : 0);
    }
    return sum;
}

/* ---- the frontends file --------------------------------------------------------------------- */

int
ocra_lb_frontends_parse(const char *text, int **ports, char ***ids, size_t *n, struct ocra_err *err)
{
    const char *p = text;
    int *pv = NULL;
    char **iv = NULL;
    size_t cnt = 0;
    int line = 0;

    while (*p) {
        const char *nl = strchr(p, '\n'), *le = nl ? nl : p + strlen(p), *sp;
        char num[8];
        int64_t port;

        line++;
        if (le == p) {
            p = nl ? nl + 1 : le;
            continue;
        }
        sp = memchr(p, ' ', (size_t)(le - p));
        if (!sp || sp == p || (size_t)(sp - p) >= sizeof(num) || sp + 1 >= le)
            goto bad;
        memcpy(num, p, (size_t)(sp - p));
        num[sp - p] = '\0';
        if (ocra_parse_i64(num, 1, 65535, &port, NULL) < 0)
            goto bad;
        pv = ocra_xrealloc(pv, (cnt + 1) * sizeof(*pv));
        iv = ocra_xrealloc(iv, (cnt + 1) * sizeof(*iv));
        pv[cnt] = (int)port;
        iv[cnt] = ocra_xstrndup(sp + 1, (size_t)(le - sp - 1));
        cnt++;
        p = nl ? nl + 1 : le;
    }
    *ports = pv;
    *ids = iv;
    *n = cnt;
    return 0;
bad:
    for (size_t i = 0; i < cnt; i++)
        free(iv[i]);
    free(iv);
    free(pv);
    return ocra_err_set(err, EPROTO, "frontends line %d: want '<port> <model key>'", line);
}

/* ---- HAProxy's configuration ---------------------------------------------------------------- */

char *
ocra_lb_config_text(const struct ocra_lb_conf *c, const char *socket)
{
    struct ocra_buf b;

    ocra_buf_init(&b);
    ocra_buf_printf(&b,
                    "# Generated by ocra (docs/RUNNING.md, Load balancing); rewritten at each "
                    "start.\n"
                    "global\n"
                    "    stats socket %s mode 600 level admin\n"
                    "defaults\n"
                    "    mode http\n"
                    "    option http-server-close\n"
                    "    retries 3\n"
                    "    option redispatch\n"
                    "    timeout connect 5s\n"
                    "    timeout client 300s\n"
                    "    timeout server 300s\n"
                    "    timeout queue 60s\n",
                    socket);
    for (int p = c->port_min; p <= c->port_max; p++)
        ocra_buf_printf(&b,
                        "listen ocra_%d\n"
                        "    bind %s:%d\n"
                        "    balance leastconn\n",
                        p, c->bind, p);
    return ocra_buf_take(&b);
}
