/* SPDX-License-Identifier: Apache-2.0 */
/*
 * run.c: what every runner shares: freeing one through its interface, the container (or job)
 * name derived from the event id and replica, the key that makes a start idempotent, and the
 * RFC 3339 times that engines report a workload's start and end in.
 */
#include "run/run_int.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "spec/spec.h"

void
ocra_runner_free(struct ocra_runner *r)
{
    if (r && r->free)
        r->free(r);
}

void
ocra_run_container_name(const char *event_id, char out[OCRA_RUN_NAME_MAX])
{
    char short_id[13];

    ocra_spec_event_short_id(event_id, short_id);
    snprintf(out, OCRA_RUN_NAME_MAX, "ocra-%s", short_id);
}

void
ocra_run_replica_name(const char *event_id, int replica, char out[OCRA_RUN_NAME_MAX])
{
    char short_id[13];

    assert(replica >= 0 && replica < OCRA_RUN_MAX_REPLICAS);
    if (replica == 0) {
        ocra_run_container_name(event_id, out);
        return;
    }
    ocra_spec_event_short_id(event_id, short_id);
    snprintf(out, OCRA_RUN_NAME_MAX, "ocra-%s-r%d", short_id, replica);
}

/* n digits at s as a number, or -1 when one is not a digit. */
static int
digits(const char *s, int n)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int
ocra_run_time_parse(const char *s, int64_t *ms, struct ocra_err *err)
{
    struct tm tm = {0};
    int y, mo, d, h, mi, se, frac_ms = 0, off = 0;
    const char *p;
    time_t t;

    if (!s || strlen(s) < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
        s[13] != ':' || s[16] != ':' || (y = digits(s, 4)) < 0 || (mo = digits(s + 5, 2)) < 1 ||
        mo > 12 || (d = digits(s + 8, 2)) < 1 || d > 31 || (h = digits(s + 11, 2)) < 0 || h > 23 ||
        (mi = digits(s + 14, 2)) < 0 || mi > 59 || (se = digits(s + 17, 2)) < 0 || se > 60)
        return ocra_err_set(err, EPROTO, "not an RFC 3339 time");
    p = s + 19;
    if (*p == '.') {
        int n = 0;

        for (p++; *p >= '0' && *p <= '9'; p++, n++)
            if (n < 3)
                frac_ms = frac_ms * 10 + (*p - '0');
        if (n == 0)
            return ocra_err_set(err, EPROTO, "not an RFC 3339 time: no digits after '.'");
        for (; n < 3; n++)
            frac_ms *= 10;
    }
    if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
        off = 0;
    } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':' && digits(p + 1, 2) >= 0 &&
               digits(p + 1, 2) <= 23 && digits(p + 4, 2) >= 0 && digits(p + 4, 2) <= 59) {
        off = (digits(p + 1, 2) * 60 + digits(p + 4, 2)) * (*p == '-' ? -1 : 1);
    } else {
        return ocra_err_set(err, EPROTO, "not an RFC 3339 time: want Z or an offset +HH:MM");
    }
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    t = timegm(&tm);
    *ms = ((int64_t)t - (int64_t)off * 60) * 1000 + frac_ms;
    /* before the epoch (Go's zero time "0001-01-01T00:00:00Z", or 1970 at an offset east of
     * UTC): never happened */
    if (y < 1970 || *ms < 0)
        *ms = 0;
    return 0;
}

/* ---- the runners by kind ---------------------------------------------------------------- */

static struct ocra_runner *
new_docker(const struct ocra_run_opts *o, struct ocra_err *err)
{
    const struct ocra_image_docker_opts dopts = {.socket = o->docker_socket,
                                                 .timeout_ms = o->docker_timeout_ms};

    if (o->n_hosts)
        return ocra_run_hosts_new(o, err);
    return ocra_run_docker_new(&dopts, err);
}

static struct ocra_runner *
new_slurm(const struct ocra_run_opts *o, struct ocra_err *err)
{
    if (!o->slurm) {
        ocra_err_set(err, EINVAL, "the slurm runner needs run.slurm.* options");
        return NULL;
    }
    return ocra_run_slurm_new(o->slurm, err);
}

static const struct {
    const char *name;
    unsigned supports; /* as the runner's own .supports */
    struct ocra_runner *(*make)(const struct ocra_run_opts *o, struct ocra_err *err);
} kinds[] = {
    [OCRA_RUN_KIND_DOCKER] = {"docker", OCRA_RUN_DOCKER_SUPPORTS, new_docker},
    [OCRA_RUN_KIND_SLURM] = {"slurm", OCRA_RUN_SLURM_SUPPORTS, new_slurm},
};

static bool
kind_known(int kind)
{
    return kind >= 0 && (size_t)kind < sizeof(kinds) / sizeof(kinds[0]) && kinds[kind].make;
}

struct ocra_runner *
ocra_run_new(const struct ocra_run_opts *o, struct ocra_err *err)
{
    if (!kind_known(o->kind)) {
        ocra_err_set(err, EINVAL, "run.runner: runner kind %d is not known (docker or slurm)",
                     o->kind);
        return NULL;
    }
    return kinds[o->kind].make(o, err);
}

unsigned
ocra_run_kind_supports(int kind)
{
    return kind_known(kind) ? kinds[kind].supports : 0;
}

const char *
ocra_run_kind_name(int kind)
{
    return kind_known(kind) ? kinds[kind].name : "";
}
