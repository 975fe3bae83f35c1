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
#include "run/run.h"

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

/* The journal's model key of event_id ("<source> <path>": every version of the model has it),
 * into *key; caller frees. */
static int
model_key(struct ocra_store *st, const char *event_id, char **key, struct ocra_err *err)
{
    struct ocra_store_pipeline *p = NULL;

    if (ocra_store_pipeline_get(st, event_id, &p, err) < 0)
        return -1;
    if (!p || !p->model) {
        ocra_store_pipeline_free(p);
        return ocra_err_set(err, ENOENT, "no model key in the journal");
    }
    *key = ocra_xstrdup(p->model);
    ocra_store_pipeline_free(p);
    return 0;
}

void
ocra_daemon_lb_sync(struct ocra_daemon_ctx *ctx, const char *event_id, int wport, int replicas)
{
    struct ocra_lb *lb = ctx->d ? ctx->d->lb : NULL;
    const struct ocra_config *cfg = ctx->cfg;
    struct ocra_err err = {0};
    char *key = NULL;
    int fport = 0, had;

    if (!lb || wport <= 0)
        return;
    if (model_key(ctx->st, event_id, &key, &err) < 0)
        goto out;
    had = ocra_lb_frontend_find(lb, key);
    if (ocra_lb_frontend(lb, key, &fport, &err) < 0)
        goto out;
    if (!had)
        ocra_log_info("lb event=%s frontend=%s:%d model=%s", event_id, cfg->lb.bind, fport, key);
    for (int r = 0; r < replicas && wport + r <= 65535; r++) {
        char name[OCRA_RUN_NAME_MAX];
        bool enabled = false;

        /* new, or added earlier and not accepting yet: one probe, the next tick another */
        ocra_run_replica_name(event_id, r, name);
        if (ocra_lb_server_up(lb, fport, name, cfg->lb.replica_addr, wport + r, 0, &enabled, &err) <
            0) {
            if (err.code != ETIMEDOUT)
                goto out;
            ocra_log_debug("lb event=%s replica=%d: not accepting connections yet", event_id, r);
            memset(&err, 0, sizeof(err));
            continue;
        }
        if (enabled)
            ocra_log_info("lb event=%s frontend=%s:%d replica=%d server=%s:%d up", event_id,
                          cfg->lb.bind, fport, r, cfg->lb.replica_addr, wport + r);
    }
out:
    if (err.code)
        ocra_log_warn("lb event=%s: %s", event_id, err.msg);
    free(key);
}

void
ocra_daemon_lb_drain(struct ocra_daemon *d, const struct ocra_config *cfg, const char *event_id,
                     int replica)
{
    struct ocra_lb *lb = d ? d->lb : NULL;
    char name[OCRA_RUN_NAME_MAX];
    struct ocra_err err = {0};
    int fport = 0;

    if (!lb)
        return;
    ocra_run_replica_name(event_id, replica, name);
    if (ocra_lb_server_down(lb, name, (int)cfg->lb.drain_s * 1000, &fport, &err) < 0)
        ocra_log_warn("lb event=%s replica=%d: drain: %s", event_id, replica, err.msg);
    else if (fport)
        ocra_log_info("lb event=%s frontend port=%d replica=%d drained and removed", event_id,
                      fport, replica);
}

void
ocra_daemon_lb_forget(struct ocra_daemon *d, const char *event_id, int replica)
{
    char name[OCRA_RUN_NAME_MAX];

    if (!d || !d->lb)
        return;
    ocra_run_replica_name(event_id, replica, name);
    ocra_lb_server_forget(d->lb, name, true);
}

bool
ocra_daemon_lb_ready(struct ocra_daemon *d, struct ocra_store *st, const char *event_id)
{
    struct ocra_lb *lb = d ? d->lb : NULL;
    struct ocra_lb_stat *rows = NULL;
    char name[OCRA_RUN_NAME_MAX], *key = NULL;
    struct ocra_err err = {0};
    bool up = false, served;
    size_t n = 0;

    if (!lb || model_key(st, event_id, &key, &err) < 0)
        return true; /* no load balancer, or nothing to tell by: the runner's word stands */
    served = ocra_lb_frontend_find(lb, key) != 0;
    free(key);
    if (!served)
        return true; /* a model served without the load balancer (no port) */
    ocra_run_replica_name(event_id, 0, name);
    if (ocra_lb_stat(lb, 0, &rows, &n, &err) < 0) {
        ocra_log_warn("lb event=%s: %s", event_id, err.msg);
        return false;
    }
    for (size_t i = 0; i < n && !up; i++)
        up = !strcmp(rows[i].server, name) && !strncmp(rows[i].status, "UP", 2);
    free(rows);
    return up;
}

int64_t
ocra_daemon_lb_load(struct ocra_daemon *d, const char *event_id)
{
    struct ocra_lb *lb = d ? d->lb : NULL;
    struct ocra_lb_stat *rows = NULL;
    char prefix[OCRA_RUN_NAME_MAX];
    struct ocra_err err = {0};
    int64_t load;
    size_t n = 0;

    if (!lb)
        return 0;
    if (ocra_lb_stat(lb, 0, &rows, &n, &err) < 0) {
        ocra_log_warn("lb event=%s: load: %s", event_id, err.msg);
        return 0;
    }
    ocra_run_replica_name(event_id, 0, prefix);
    load = ocra_lb_load(rows, n, prefix);
    free(rows);
    return load;
}

void
ocra_daemon_lb_end(struct ocra_daemon_ctx *ctx, const char *event_id)
{
    struct ocra_lb *lb = ctx->d ? ctx->d->lb : NULL;
    struct ocra_lb_stat *rows = NULL;
    char prefix[OCRA_RUN_NAME_MAX], *key = NULL, *newer = NULL;
    struct ocra_err err = {0};
    bool current = true, others = false;
    size_t n = 0, plen;
    int fport;

    if (!lb || model_key(ctx->st, event_id, &key, &err) < 0 ||
        !(fport = ocra_lb_frontend_find(lb, key)))
        goto out;
    ocra_run_replica_name(event_id, 0, prefix); /* replica N >= 1: prefix "-r<N>" */
    plen = strlen(prefix);
    if (ocra_lb_stat(lb, fport, &rows, &n, &err) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const char *s = rows[i].server;

        if (!strcmp(s, "FRONTEND") || !strcmp(s, "BACKEND"))
            continue;
        if (strncmp(s, prefix, plen) || (s[plen] && strncmp(s + plen, "-r", 2))) {
            others = true; /* another version's */
            continue;
        }
        if (ocra_lb_server_down(lb, s, (int)ctx->cfg->lb.drain_s * 1000, NULL, &err) < 0)
            goto out;
        ocra_log_info("lb event=%s frontend port=%d server=%s drained and removed", event_id, fport,
                      s);
    }
    /* a newer version of the model takes the port over: it stays */
    ocra_lb_server_forget(lb, prefix, false); /* the event's names are done with */
    if (ocra_store_event_current(ctx->st, event_id, &current, &newer, &err) < 0)
        goto out;
    if (others || !current)
        goto out;
    if (ocra_lb_frontend_release(lb, key, &err) < 0)
        goto out;
    ocra_log_info("lb event=%s frontend port=%d released", event_id, fport);
out:
    if (err.code)
        ocra_log_warn("lb event=%s: end: %s", event_id, err.msg);
    free(rows);
    free(newer);
    free(key);
}

json_t *
ocra_daemon_lb_frontend_json(const struct ocra_config *cfg, const char *model)
{
    struct ocra_err err = {0};
    int port;

    if ((!cfg->lb.haproxy[0] && !cfg->lb.socket[0]) || !model)
        return json_null();
    if ((port = ocra_lb_frontend_lookup(cfg->lb.dir, model, &err)) < 0)
        ocra_log_warn("lb model=%s: %s", model, err.msg);
    if (port <= 0)
        return json_null();
    return json_sprintf("%s:%d", cfg->lb.bind, port);
}
