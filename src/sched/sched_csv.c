/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sched_csv.c: the node and pod lists of the Alibaba openb trace (cluster-trace-gpu-v2023) as
 * hostile input. Plain comma-separated lines (no quoting: a quote is an error), a header that
 * names the columns (any order; unknown ones are ignored), lines of at most 4096 bytes, fields
 * of at most 255, at most 32 columns and 1,000,000 rows; every number is checked against its
 * bounds. Errors read "name:line: column: problem", with the offending value escaped.
 */
#include "sched/sched_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CSV_MAX_COLS 32

struct csv {
    const char *name;
    const char *p, *end;
    size_t line;
    char buf[OCRA_SCHED_CSV_MAX_LINE + 1];
    const char *f[CSV_MAX_COLS];
    int n;
    const char *header[CSV_MAX_COLS]; /* the header row's fields, kept in hbuf */
    char hbuf[OCRA_SCHED_CSV_MAX_LINE + 1];
    int n_header;
};

static int
csv_fail(struct csv *cs, struct ocra_err *err, const char *col, const char *what)
{
    if (col)
        return ocra_err_set(err, EINVAL, "%s:%zu: %s: %s", cs->name, cs->line, col, what);
    return ocra_err_set(err, EINVAL, "%s:%zu: %s", cs->name, cs->line, what);
}

/* Splits buf (one line, NUL-terminated) into fields. */
static int
csv_split(struct csv *cs, struct ocra_err *err)
{
    char *s = cs->buf, msg[64];

    cs->n = 0;
    for (;;) {
        char *comma = strchr(s, ',');

        if (cs->n == CSV_MAX_COLS) {
            (void)snprintf(msg, sizeof(msg), "more than %d columns", CSV_MAX_COLS);
            return csv_fail(cs, err, NULL, msg);
        }
        if (comma)
            *comma = '\0';
        if (strlen(s) > OCRA_SCHED_CSV_MAX_FIELD) {
            (void)snprintf(msg, sizeof(msg), "field %d longer than %d bytes", cs->n + 1,
                           OCRA_SCHED_CSV_MAX_FIELD);
            return csv_fail(cs, err, NULL, msg);
        }
        cs->f[cs->n++] = s;
        if (!comma)
            return 0;
        s = comma + 1;
    }
}

/* Reads the next non-blank line into fields: 1 a row, 0 the end, -1 an error. */
static int
csv_next(struct csv *cs, struct ocra_err *err)
{
    for (;;) {
        const char *nl, *q;
        size_t len;

        if (cs->p >= cs->end)
            return 0;
        cs->line++;
        nl = memchr(cs->p, '\n', (size_t)(cs->end - cs->p));
        len = (size_t)((nl ? nl : cs->end) - cs->p);
        q = cs->p;
        cs->p += len + (nl != NULL);
        if (len > 0 && q[len - 1] == '\r')
            len--;
        if (len > OCRA_SCHED_CSV_MAX_LINE)
            return csv_fail(cs, err, NULL, "line longer than 4096 bytes");
        if (memchr(q, '\0', len))
            return csv_fail(cs, err, NULL, "NUL byte");
        if (memchr(q, '"', len))
            return csv_fail(cs, err, NULL, "quoted fields are not supported");
        if (len == 0)
            continue;
        memcpy(cs->buf, q, len);
        cs->buf[len] = '\0';
        return csv_split(cs, err) < 0 ? -1 : 1;
    }
}

static int
csv_header(struct csv *cs, struct ocra_err *err)
{
    int r = csv_next(cs, err);

    if (r <= 0)
        return r < 0 ? -1 : ocra_err_set(err, EINVAL, "%s: empty, no header line", cs->name);
    memcpy(cs->hbuf, cs->buf, sizeof(cs->hbuf));
    cs->n_header = cs->n;
    for (int i = 0; i < cs->n; i++) {
        cs->header[i] = cs->hbuf + (cs->f[i] - cs->buf);
        for (int j = 0; j < i; j++)
            if (strcmp(cs->header[i], cs->header[j]) == 0)
                return csv_fail(cs, err, cs->header[i], "duplicate column");
    }
    return 0;
}

/* The index of column name; -1 when absent (an error if required). */
static int
csv_col(struct csv *cs, const char *name, bool required, int *idx, struct ocra_err *err)
{
    *idx = -1;
    for (int i = 0; i < cs->n_header; i++)
        if (strcmp(cs->header[i], name) == 0)
            *idx = i;
    if (*idx < 0 && required)
        return csv_fail(cs, err, name, "missing column");
    return 0;
}

static int
csv_row(struct csv *cs, struct ocra_err *err)
{
    char msg[64];
    int r = csv_next(cs, err);

    if (r == 1 && cs->n != cs->n_header) {
        (void)snprintf(msg, sizeof(msg), "expected %d columns, found %d", cs->n_header, cs->n);
        return csv_fail(cs, err, NULL, msg);
    }
    return r;
}

static int
csv_int(struct csv *cs, int col, int64_t min, int64_t max, int64_t *out, struct ocra_err *err)
{
    const char *s = cs->f[col];
    char esc[64], msg[160];
    struct ocra_err e = {0};

    if (ocra_parse_i64(s, min, max, out, &e) == 0)
        return 0;
    ocra_str_escape(s, strlen(s), 40, esc, sizeof(esc));
    if (e.code == ERANGE) /* digits only: print them bare */
        (void)snprintf(msg, sizeof(msg), "%.40s is out of range [%lld, %lld]", s, (long long)min,
                       (long long)max);
    else
        (void)snprintf(msg, sizeof(msg), "not an integer: %s", esc);
    return csv_fail(cs, err, cs->header[col], msg);
}

/* Copies a name-like field: up to cap-1 bytes of printable ASCII without spaces. */
static int
csv_word(struct csv *cs, int col, char *out, size_t cap, bool may_be_empty, struct ocra_err *err)
{
    const char *s = cs->f[col];
    size_t len = strlen(s);
    char esc[64], msg[160];

    if (len == 0 && !may_be_empty)
        return csv_fail(cs, err, cs->header[col], "empty");
    if (len >= cap) {
        (void)snprintf(msg, sizeof(msg), "longer than %zu bytes", cap - 1);
        return csv_fail(cs, err, cs->header[col], msg);
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] > ' ' && s[i] < 0x7f)
            continue;
        ocra_str_escape(s, len, 40, esc, sizeof(esc));
        (void)snprintf(msg, sizeof(msg), "not printable ASCII without spaces: %s", esc);
        return csv_fail(cs, err, cs->header[col], msg);
    }
    memcpy(out, s, len + 1);
    return 0;
}

int64_t
sched_parse_micro(const char *s)
{
    int64_t v = 0, scale = 1000000;
    size_t digits = 0;

    for (; *s >= '0' && *s <= '9'; s++, digits++) {
        if (digits == 6)
            return -1;
        v = v * 10 + (*s - '0');
    }
    if (digits == 0)
        return -1;
    v *= scale;
    if (*s == '.') {
        if (!s[1])
            return -1;
        for (s++; *s >= '0' && *s <= '9'; s++) {
            if (scale == 1)
                return -1;
            scale /= 10;
            v += (*s - '0') * scale;
        }
    }
    return *s ? -1 : v;
}

int
sched_parse_cc(const char *s)
{
    int64_t v;

    if (strlen(s) < 3 || strlen(s) > 4 || (v = sched_parse_micro(s)) < 0 || v % 100000)
        return -1;
    return (int)(v / 100000);
}

static int
node_extras(struct csv *cs, const int *col, struct ocra_sched_node *n, struct ocra_err *err)
{
    const char *s;
    int64_t v;

    if (col[0] >= 0 && cs->f[col[0]][0] && csv_int(cs, col[0], 0, 1 << 30, &n->gpu_mem_mib, err))
        return -1;
    if (col[1] >= 0 && (s = cs->f[col[1]])[0] && ocra_sched_driver_parse(s, &n->driver, NULL))
        return csv_fail(cs, err, "driver", "not a driver version major[.minor[.patch]]");
    if (col[2] >= 0 && (s = cs->f[col[2]])[0]) {
        if ((v = sched_parse_cc(s)) < 0)
            return csv_fail(cs, err, "compute_cap", "not a compute capability X.Y");
        n->compute_cap = (int)v;
    }
    if (col[3] >= 0 && (s = cs->f[col[3]])[0] && (n->cost_micro = sched_parse_micro(s)) < 0)
        return csv_fail(cs, err, "cost", "not a decimal cost (up to 6 digits . 6 decimals)");
    if (col[4] >= 0)
        for (s = cs->f[col[4]]; *s;) {
            size_t len = strcspn(s, ";");
            const char *eq = memchr(s, '=', len);

            if (n->n_labels == OCRA_SCHED_LABELS_MAX || len >= OCRA_SCHED_LABEL_MAX || !eq ||
                eq == s)
                return csv_fail(cs, err, "labels", "not up to 8 key=value;... of 63 bytes");
            memcpy(n->labels[n->n_labels], s, len);
            n->labels[n->n_labels++][len] = '\0';
            s += len + (s[len] == ';');
        }
    return 0;
}

/* The GPU memory of the openb trace's models (its README); 0: unknown. */
static int64_t
openb_gpu_mem(const char *model)
{
    static const struct {
        const char *model;
        int64_t mib;
    } table[] = {
        {"P100", 16384}, {"T4", 16384}, {"V100M16", 16384}, {"V100M32", 32768}, {"A10", 24576}};

    for (size_t i = 0; i < OCRA_ARRAY_LEN(table); i++)
        if (strcmp(table[i].model, model) == 0)
            return table[i].mib;
    return 0;
}

static int
node_row(struct csv *cs, const int *col, struct ocra_sched_node *n, struct ocra_err *err)
{
    int64_t gpus;

    memset(n, 0, sizeof(*n));
    if (csv_word(cs, col[0], n->name, sizeof(n->name), false, err) ||
        csv_int(cs, col[1], 0, OCRA_SCHED_QTY_MAX, &n->cpu_milli, err) ||
        csv_int(cs, col[2], 0, OCRA_SCHED_QTY_MAX, &n->ram_mib, err) ||
        csv_int(cs, col[3], 0, OCRA_SCHED_MAX_GPUS, &gpus, err) ||
        csv_word(cs, col[4], n->gpu_model, sizeof(n->gpu_model), gpus == 0, err))
        return -1;
    n->gpu_count = (int)gpus;
    n->gpu_mem_mib = openb_gpu_mem(n->gpu_model);
    return node_extras(cs, col + 5, n, err);
}

static int
csv_cols(struct csv *cs, const char *const *names, int n, int n_required, int *col,
         struct ocra_err *err)
{
    if (csv_header(cs, err) < 0)
        return -1;
    for (int i = 0; i < n; i++)
        if (csv_col(cs, names[i], i < n_required, &col[i], err) < 0)
            return -1;
    return 0;
}

int
ocra_sched_nodes_parse(const char *name, const char *text, size_t len, struct ocra_sched_node **out,
                       size_t *n, struct ocra_err *err)
{
    static const char *const names[] = {"sn",    "cpu_milli",   "memory_mib", "gpu",
                                        "model", "gpu_mem_mib", "driver",     "compute_cap",
                                        "cost",  "labels"};
    struct ocra_sched_node *nodes = NULL;
    struct csv *cs = ocra_xcalloc(1, sizeof(*cs));
    size_t count = 0, cap = 0;
    int col[10], r, ret = -1;

    cs->name = name;
    cs->p = text;
    cs->end = text + len;
    if (csv_cols(cs, names, 10, 5, col, err) < 0)
        goto out;
    while ((r = csv_row(cs, err)) == 1) {
        if (count == OCRA_SCHED_MAX_NODES) {
            csv_fail(cs, err, NULL, "more than 65536 nodes");
            goto out;
        }
        if (count == cap) {
            cap = cap ? 2 * cap : 256;
            nodes = ocra_xrealloc(nodes, cap * sizeof(*nodes));
        }
        if (node_row(cs, col, &nodes[count], err) < 0)
            goto out;
        count++;
    }
    if (r < 0)
        goto out;
    *out = nodes;
    *n = count;
    nodes = NULL;
    ret = 0;
out:
    free(nodes);
    free(cs);
    return ret;
}

static int
pod_row(struct csv *cs, const int *col, struct ocra_sched_pod *p, struct ocra_err *err)
{
    int64_t gpus, milli;

    memset(p, 0, sizeof(*p));
    p->creation = p->deletion = -1;
    if (csv_word(cs, col[0], p->name, sizeof(p->name), false, err) ||
        csv_int(cs, col[1], 0, OCRA_SCHED_QTY_MAX, &p->cpu_milli, err) ||
        csv_int(cs, col[2], 0, OCRA_SCHED_QTY_MAX, &p->ram_mib, err) ||
        csv_int(cs, col[3], 0, OCRA_SCHED_MAX_GPUS, &gpus, err) ||
        csv_int(cs, col[4], 0, OCRA_SCHED_MILLI, &milli, err) ||
        (col[5] >= 0 && csv_word(cs, col[5], p->gpu_spec, sizeof(p->gpu_spec), true, err)) ||
        (col[6] >= 0 && csv_int(cs, col[6], 0, INT64_C(1) << 50, &p->creation, err)) ||
        (col[7] >= 0 && cs->f[col[7]][0] &&
         csv_int(cs, col[7], 0, INT64_C(1) << 50, &p->deletion, err)))
        return -1;
    if ((gpus == 0) != (milli == 0))
        return csv_fail(cs, err, "gpu_milli", "0 exactly when num_gpu is 0");
    if (gpus > 1 && milli != OCRA_SCHED_MILLI)
        return csv_fail(cs, err, "gpu_milli", "must be 1000 when num_gpu > 1");
    p->gpus = (int)gpus;
    p->gpu_milli = (int)milli;
    return 0;
}

int
ocra_sched_pods_parse(const char *name, const char *text, size_t len, struct ocra_sched_pod **out,
                      size_t *n, struct ocra_err *err)
{
    static const char *const names[] = {"name",      "cpu_milli", "memory_mib",    "num_gpu",
                                        "gpu_milli", "gpu_spec",  "creation_time", "deletion_time"};
    struct ocra_sched_pod *pods = NULL;
    struct csv *cs = ocra_xcalloc(1, sizeof(*cs));
    size_t count = 0, cap = 0;
    int col[8], r, ret = -1;

    cs->name = name;
    cs->p = text;
    cs->end = text + len;
    if (csv_cols(cs, names, 8, 5, col, err) < 0)
        goto out;
    while ((r = csv_row(cs, err)) == 1) {
        if (count == OCRA_SCHED_CSV_MAX_ROWS) {
            csv_fail(cs, err, NULL, "more than 1000000 rows");
            goto out;
        }
        if (count == cap) {
            cap = cap ? 2 * cap : 1024;
            pods = ocra_xrealloc(pods, cap * sizeof(*pods));
        }
        if (pod_row(cs, col, &pods[count], err) < 0)
            goto out;
        count++;
    }
    if (r < 0)
        goto out;
    *out = pods;
    *n = count;
    pods = NULL;
    ret = 0;
out:
    free(pods);
    free(cs);
    return ret;
}

/* ---- the Azure LLM inference trace ----------------------------------------------------- */

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; H. Hinnant's days_from_civil). */
static int64_t
days_from_civil(int64_t y, int64_t m, int64_t d)
{
    int64_t era, yoe, doy;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

/* Reads n digits at *p as a number in [lo, hi], then the separator sep (0: none). */
static bool
digits(const char **p, int n, int64_t lo, int64_t hi, char sep, int64_t *out)
{
    int64_t v = 0;

    for (int i = 0; i < n; i++, (*p)++) {
        if (**p < '0' || **p > '9')
            return false;
        v = v * 10 + (**p - '0');
    }
    if (v < lo || v > hi || (sep && **p != sep))
        return false;
    *p += sep != 0;
    *out = v;
    return true;
}

/* "2023-11-16 18:15:46.6805900" (fraction optional, up to 9 digits) into ms since the epoch. */
static bool
parse_timestamp(const char *s, int64_t *ms)
{
    int64_t y, mo, d, h, mi, sec, frac = 0, scale = 100;
    const char *p = s;

    if (!digits(&p, 4, 1970, 9999, '-', &y) || !digits(&p, 2, 1, 12, '-', &mo) ||
        !digits(&p, 2, 1, 31, ' ', &d) || !digits(&p, 2, 0, 23, ':', &h) ||
        !digits(&p, 2, 0, 59, ':', &mi) || !digits(&p, 2, 0, 60, 0, &sec))
        return false;
    if (*p == '.') {
        int n = 0;

        for (p++; *p >= '0' && *p <= '9' && n < 9; p++, n++) {
            frac += (*p - '0') * scale;
            scale /= 10;
        }
        if (n == 0)
            return false;
    }
    if (*p)
        return false;
    *ms = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000 + sec * 1000 + frac;
    return true;
}

static int
request_row(struct csv *cs, const int *col, int64_t *t, struct ocra_sched_request *r,
            struct ocra_err *err)
{
    memset(r, 0, sizeof(*r));
    if (!parse_timestamp(cs->f[col[0]], t))
        return csv_fail(cs, err, cs->header[col[0]], "not a time YYYY-MM-DD HH:MM:SS[.frac]");
    return csv_int(cs, col[1], 0, 1 << 30, &r->context_tokens, err) ||
                   csv_int(cs, col[2], 0, 1 << 30, &r->generated_tokens, err)
               ? -1
               : 0;
}

int
ocra_sched_requests_parse(const char *name, const char *text, size_t len,
                          struct ocra_sched_request **out, size_t *n, struct ocra_err *err)
{
    static const char *const names[] = {"TIMESTAMP", "ContextTokens", "GeneratedTokens"};
    struct ocra_sched_request *reqs = NULL;
    struct csv *cs = ocra_xcalloc(1, sizeof(*cs));
    size_t count = 0, cap = 0;
    int64_t t0 = 0, t = 0, prev = 0;
    int col[3], r, ret = -1;

    cs->name = name;
    cs->p = text;
    cs->end = text + len;
    if (csv_cols(cs, names, 3, 3, col, err) < 0)
        goto out;
    while ((r = csv_row(cs, err)) == 1) {
        if (count == OCRA_SCHED_CSV_MAX_ROWS) {
            csv_fail(cs, err, NULL, "more than 1000000 rows");
            goto out;
        }
        if (count == cap) {
            cap = cap ? 2 * cap : 1024;
            reqs = ocra_xrealloc(reqs, cap * sizeof(*reqs));
        }
        if (request_row(cs, col, &t, &reqs[count], err) < 0)
            goto out;
        if (count == 0)
            t0 = prev = t;
        if (t < prev) {
            csv_fail(cs, err, "TIMESTAMP", "earlier than the row before (rows in time order)");
            goto out;
        }
        prev = t;
        reqs[count++].arrival_ms = t - t0;
    }
    if (r < 0)
        goto out;
    *out = reqs;
    *n = count;
    reqs = NULL;
    ret = 0;
out:
    free(reqs);
    free(cs);
    return ret;
}

/* ---- job traces (ocra simulate --jobs) ------------------------------------------------- */

#define JOB_MAX_SECONDS INT64_C(1000000000) /* about 31 years: submit, duration, estimate */
#define JOB_MAX_GPUS (1 << 20)
#define JOB_MAX_PRIORITY 1000000

/* "2024-01-02T03:04:05Z" (or a space for the T; Z and a fraction optional) into seconds. */
static bool
parse_iso(const char *s, int64_t *sec)
{
    char buf[OCRA_SCHED_CSV_MAX_FIELD + 1];
    size_t len = strlen(s);
    int64_t ms;

    if (len < 19 || len >= sizeof(buf) || (s[10] != 'T' && s[10] != ' '))
        return false;
    memcpy(buf, s, len + 1);
    buf[10] = ' ';
    if (buf[len - 1] == 'Z')
        buf[len - 1] = '\0';
    if (!parse_timestamp(buf, &ms))
        return false;
    *sec = ms / 1000;
    return true;
}

/* submit: seconds, or an ISO-8601 time (*iso set). */
static int
job_submit(struct csv *cs, int col, int64_t *t, bool *iso, struct ocra_err *err)
{
    const char *s = cs->f[col];

    *iso = strchr(s, '-') != NULL && strlen(s) >= 10;
    if (!*iso)
        return csv_int(cs, col, 0, JOB_MAX_SECONDS, t, err);
    if (!parse_iso(s, t))
        return csv_fail(cs, err, cs->header[col],
                        "not seconds or an ISO-8601 time YYYY-MM-DDTHH:MM:SS[.frac][Z]");
    return 0;
}

static int
job_bool(struct csv *cs, int col, bool *out, struct ocra_err *err)
{
    static const char *const yes[] = {"true", "yes", "1"}, *const no[] = {"false", "no", "0", ""};
    const char *s = cs->f[col];

    for (size_t i = 0; i < OCRA_ARRAY_LEN(yes); i++)
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
    for (size_t i = 0; i < OCRA_ARRAY_LEN(no); i++)
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    return csv_fail(cs, err, cs->header[col], "not true or false");
}

/* The optional columns: owner, priority, preemptible, estimate (empty: the default). */
static int
job_extras(struct csv *cs, const int *col, struct ocra_sched_job *j, struct ocra_err *err)
{
    int64_t v;

    if (col[0] >= 0 && csv_word(cs, col[0], j->owner, sizeof(j->owner), true, err) < 0)
        return -1;
    if (col[1] >= 0 && cs->f[col[1]][0]) {
        if (csv_int(cs, col[1], -JOB_MAX_PRIORITY, JOB_MAX_PRIORITY, &v, err) < 0)
            return -1;
        j->priority = (int)v;
    }
    if (col[2] >= 0 && job_bool(cs, col[2], &j->preemptible, err) < 0)
        return -1;
    if (col[3] >= 0 && cs->f[col[3]][0] &&
        csv_int(cs, col[3], 1, JOB_MAX_SECONDS, &j->estimate, err) < 0)
        return -1;
    return 0;
}

static int
job_row(struct csv *cs, const int *col, struct ocra_sched_job *j, bool *iso, struct ocra_err *err)
{
    int64_t gpus;

    memset(j, 0, sizeof(*j));
    if (csv_word(cs, col[0], j->name, sizeof(j->name), false, err) < 0 ||
        job_submit(cs, col[1], &j->submit, iso, err) < 0 ||
        csv_int(cs, col[2], 1, JOB_MAX_SECONDS, &j->duration, err) < 0 ||
        csv_int(cs, col[3], 1, JOB_MAX_GPUS, &gpus, err) < 0 || job_extras(cs, col + 4, j, err) < 0)
        return -1;
    j->gpus = (int)gpus;
    if (!j->estimate)
        j->estimate = j->duration;
    return 0;
}

int
ocra_sched_jobs_parse(const char *name, const char *text, size_t len, struct ocra_sched_job **out,
                      size_t *n, struct ocra_err *err)
{
    static const char *const names[] = {"name",  "submit",   "duration",    "gpus",
                                        "owner", "priority", "preemptible", "estimate"};
    struct ocra_sched_job *jobs = NULL;
    struct csv *cs = ocra_xcalloc(1, sizeof(*cs));
    size_t count = 0, cap = 0;
    int64_t t0 = INT64_MAX;
    int col[8], r, ret = -1, mode = -1; /* mode: 0 seconds, 1 ISO times */
    bool iso = false;

    cs->name = name;
    cs->p = text;
    cs->end = text + len;
    if (csv_cols(cs, names, 8, 4, col, err) < 0)
        goto out;
    while ((r = csv_row(cs, err)) == 1) {
        if (count == OCRA_SCHED_CSV_MAX_ROWS) {
            csv_fail(cs, err, NULL, "more than 1000000 rows");
            goto out;
        }
        if (count == cap) {
            cap = cap ? 2 * cap : 1024;
            jobs = ocra_xrealloc(jobs, cap * sizeof(*jobs));
        }
        if (job_row(cs, col, &jobs[count], &iso, err) < 0)
            goto out;
        if (mode >= 0 && mode != iso) {
            csv_fail(cs, err, "submit", "mixes seconds and ISO-8601 times (use one form)");
            goto out;
        }
        mode = iso;
        if (jobs[count].submit < t0)
            t0 = jobs[count].submit;
        count++;
    }
    if (r < 0)
        goto out;
    for (size_t i = 0; mode == 1 && i < count; i++)
        jobs[i].submit -= t0; /* times: the earliest is second 0 */
    *out = jobs;
    *n = count;
    jobs = NULL;
    ret = 0;
out:
    free(jobs);
    free(cs);
    return ret;
}
