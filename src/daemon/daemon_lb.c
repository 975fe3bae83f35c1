/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon_lb.c: HAProxy in front of each served model (docs/RUNNING.md, Load balancing). The
 * daemon opens the load balancer at its start (lb.haproxy: its own HAProxy, started, or
 * adopted again after a crash; lb.socket: an operator's) and closes it at its stop, stopping
 * the HAProxy it owns by pid. The autoscaling loop keeps each running event's servers in line
 * with its replicas at every tick (ocra_daemon_lb_sync: a frontend port taken on first sight,
 * a server per replica, enabled once the replica accepts connections); a replica the loop or
 * the event's end removes is drained first (ocra_daemon_lb_drain); the event's end gives its
 * port back (ocra_daemon_lb_end). Load balancer errors are logged, never fail a stage: the
 * replicas keep serving on their own ports.
 */
#include "daemon/daemon_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lb/lb.h"

int
ocra_daemon_lb_start(struct ocra_daemon *d, struct ocra_err *err)
{
    const struct ocra_config *cfg = ocra_daemon_cfg(d);
    struct ocra_lb_conf c = {
        .haproxy = cfg->lb.haproxy,
        .socket = cfg->lb.socket,
        .dir = cfg->lb.dir,
        .bind = cfg->lb.bind,
        .port_min = (int)cfg->lb.port_min,
        .port_max = (int)cfg->lb.port_max,
        .check_inter_ms = (int)cfg->lb.check_inter_ms,
    };

    if (!cfg->lb.haproxy[0] && !cfg->lb.socket[0])
        return 0;
    if (c.port_max < c.port_min || c.port_max - c.port_min > 1024)
        return ocra_err_set(err, EINVAL,
                            "lb.port_min %d .. lb.port_max %d: want port_min <= port_max, at "
                            "most 1024 apart",
                            c.port_min, c.port_max);
    if (!(d->lb = ocra_lb_open(&c, err)))
        return -1;
    return 0;
}

void
ocra_daemon_lb_stop(struct ocra_daemon *d)
{
    ocra_lb_close(d->lb, true);
    d->lb = NULL;
}

/* Server names r<N> of port's section, in rows: the replicas HAProxy knows. */
static bool
has_server(const struct ocra_lb_stat *rows, size_t n, int replica, const char **status)
{
    char name[OCRA_LB_NAME_MAX];

    snprintf(name, sizeof(name), "r%d", replica);
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(rows[i].server, name)) {
            *status = rows[i].status;
            return true;
        }
    }
    return false;
}

void
ocra_daemon_lb_sync(struct ocra_daemon_ctx *ctx, const char *event_id, int wport, int replicas)
{
    struct ocra_lb *lb = ctx->d ? ctx->d->lb : NULL;
    const struct ocra_config *cfg = ctx->cfg;
    struct ocra_lb_stat *rows = NULL;
    struct ocra_err err = {0};
    size_t n = 0;
    int fport = 0, had;

    if (!lb || wport <= 0)
        return;
    had = ocra_lb_frontend_find(lb, event_id);
    if (ocra_lb_frontend(lb, event_id, &fport, &err) < 0 ||
        ocra_lb_stat(lb, fport, &rows, &n, &err) < 0)
        goto out;
    if (!had)
        ocra_log_info("lb event=%s frontend=%s:%d", event_id, cfg->lb.bind, fport);
    for (int r = 0; r < replicas && wport + r <= 65535; r++) {
        const char *status = NULL;

        if (has_server(rows, n, r, &status) && strcmp(status, "MAINT") != 0)
            continue; /* enabled: HAProxy's checks say UP or DOWN from here */
        /* new, or added earlier and not accepting yet: one probe, the next tick another */
        if (ocra_lb_server_up(ctx->d->lb, fport, r, cfg->lb.replica_addr, wport + r, 0, &err) < 0) {
            if (err.code != ETIMEDOUT)
                goto out;
            ocra_log_debug("lb event=%s replica=%d: not accepting connections yet", event_id, r);
            memset(&err, 0, sizeof(err));
            continue;
        }
        ocra_log_info("lb event=%s frontend=%s:%d replica=%d server=%s:%d up", event_id,
                      cfg->lb.bind, fport, r, cfg->lb.replica_addr, wport + r);
    }
out:
    if (err.code)
        ocra_log_warn("lb event=%s: %s", event_id, err.msg);
    free(rows);
}

void
ocra_daemon_lb_drain(struct ocra_daemon_ctx *ctx, const char *event_id, int replica)
{
    struct ocra_lb *lb = ctx->d ? ctx->d->lb : NULL;
    struct ocra_err err = {0};
    int fport;

    if (!lb || !(fport = ocra_lb_frontend_find(lb, event_id)))
        return;
    if (ocra_lb_server_down(lb, fport, replica, (int)ctx->cfg->lb.drain_s * 1000, &err) < 0)
        ocra_log_warn("lb event=%s replica=%d: drain: %s", event_id, replica, err.msg);
    else
        ocra_log_info("lb event=%s frontend port=%d replica=%d drained and removed", event_id,
                      fport, replica);
}

void
ocra_daemon_lb_end(struct ocra_daemon_ctx *ctx, const char *event_id)
{
    struct ocra_lb *lb = ctx->d ? ctx->d->lb : NULL;
    struct ocra_lb_stat *rows = NULL;
    struct ocra_err err = {0};
    size_t n = 0;
    int fport;

    if (!lb || !(fport = ocra_lb_frontend_find(lb, event_id)))
        return;
    if (ocra_lb_stat(lb, fport, &rows, &n, &err) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        int64_t r;

        if (rows[i].server[0] != 'r' ||
            ocra_parse_i64(rows[i].server + 1, 0, OCRA_SCHED_MAX_REPLICAS, &r, NULL) < 0)
            continue;
        if (ocra_lb_server_down(lb, fport, (int)r, (int)ctx->cfg->lb.drain_s * 1000, &err) < 0)
            goto out;
    }
    if (ocra_lb_frontend_release(lb, event_id, &err) < 0)
        goto out;
    ocra_log_info("lb event=%s frontend port=%d released", event_id, fport);
out:
    if (err.code)
        ocra_log_warn("lb event=%s: end: %s", event_id, err.msg);
    free(rows);
}

json_t *
ocra_daemon_lb_frontend_json(const struct ocra_config *cfg, const char *event_id)
{
    struct ocra_err err = {0};
    int port;

    if (!cfg->lb.haproxy[0] && !cfg->lb.socket[0])
        return json_null();
    if ((port = ocra_lb_frontend_lookup(cfg->lb.dir, event_id, &err)) < 0)
        ocra_log_warn("lb event=%s: %s", event_id, err.msg);
    if (port <= 0)
        return json_null();
    return json_sprintf("%s:%d", cfg->lb.bind, port);
}

int
ocra_daemon_lb_frontend(struct ocra_daemon *d, const char *event_id, char *out, size_t cap)
{
    int fport = d && d->lb ? ocra_lb_frontend_find(d->lb, event_id) : 0;

    if (!fport)
        return 0;
    snprintf(out, cap, "%s:%d", ocra_daemon_cfg(d)->lb.bind, fport);
    return fport;
}
