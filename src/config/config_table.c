/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_table.c: every configuration key, one row each (redis standardConfig): its dotted
 * name, type, default, bounds, where it lives in struct ocra_config, and its one-line doc.
 * Loading, `ocra config check`, etc/ocra.yaml and docs/CONFIG.md all derive from this table;
 * adding a key is adding a row (and its field). The checks of string values live here too.
 */
#include "config/config_int.h"

#include <arpa/inet.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(enum ocra_log_level) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(enum ocra_log_format) == sizeof(int), "enums are stored as int");
_Static_assert(OCRA_LOG_ERROR == 0 && OCRA_LOG_WARN == 1 && OCRA_LOG_INFO == 2 &&
                   OCRA_LOG_DEBUG == 3,
               "log_levels below is indexed by enum ocra_log_level");
_Static_assert(OCRA_LOG_TEXT == 0 && OCRA_LOG_JSON == 1,
               "log_formats below is indexed by enum ocra_log_format");

/* ---- checks ---------------------------------------------------------------------------- */

static bool
is_printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || *s == 0x7f)
            return false;
    return true;
}

/* A decimal port in [1, 65535]. */
static bool
is_port(const char *s)
{
    int64_t v;

    return ocra_parse_i64(s, 1, 65535, &v, NULL) == 0 && s[0] != '0';
}

/* "host", "host:port", "[v6]" or "[v6]:port"; with need_port, the port is required. */
static bool
is_host_port(const char *s, bool need_port)
{
    const char *end, *colon;

    if (s[0] == '[') {
        end = strchr(s, ']');
        if (!end || end == s + 1 ||
            strspn(s + 1, "0123456789abcdefABCDEF:.") != (size_t)(end - s - 1))
            return false;
        colon = end[1] == ':' ? end + 1 : NULL;
        if (end[1] && !colon)
            return false;
    } else {
        size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_");

        if (n == 0 || n > 253 || (s[n] && s[n] != ':'))
            return false;
        colon = s[n] ? s + n : NULL;
    }
    if (!colon)
        return !need_port;
    return is_port(colon + 1);
}

static bool
check_http_host(const char *s)
{
    return is_host_port(s, false);
}

/* ---- artifact (begin) */
static bool
check_allow_host(const char *s)
{
    return ocra_net_allow_entry_valid(s);
}
/* ---- artifact (end) */

/* ---- lb (begin) */
/* An IPv4 or IPv6 literal (HAProxy binds it, and ocra connects to replicas there). */
static bool
check_ip_literal(const char *s)
{
    unsigned char b[16];

    return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}
/* ---- lb (end) */

/* A DNS name without a port (the Host header names a client may use). */
static bool
check_host_name(const char *s)
{
    return !strchr(s, ':') && is_host_port(s, false);
}

static bool
check_listen(const char *s)
{
    return !*s || is_host_port(s, true); /* "": ocra daemon serves no API */
}

static bool
has_url_scheme(const char *s, const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);

    if (!strncmp(s, a, na))
        return s[na] && s[na] != '/' && is_printable(s);
    if (!strncmp(s, b, nb))
        return s[nb] && s[nb] != '/' && is_printable(s);
    return false;
}

static bool
check_http_url(const char *s)
{
    return !*s || has_url_scheme(s, "http://", "https://");
}

/* A link template of the dashboard: empty, or an http(s) URL with its placeholder. */
static bool
check_tx_link(const char *s)
{
    return !*s || (check_http_url(s) && strstr(s, "{tx}"));
}

static bool
check_address_link(const char *s)
{
    return !*s || (check_http_url(s) && strstr(s, "{address}"));
}

static bool
check_digest_link(const char *s)
{
    return !*s || (check_http_url(s) && strstr(s, "{digest}"));
}

static bool
check_ws_url(const char *s)
{
    return !*s || has_url_scheme(s, "ws://", "wss://");
}

static bool
check_chain_path(const char *s)
{
    return s[0] == '/' && is_printable(s);
}

static bool
check_address(const char *s)
{
    return s[0] == '0' && (s[1] == 'x' || s[1] == 'X') && ocra_hex_is(s + 2, 40);
}

/* "3.N": a Python major.minor. */
static bool
check_address_or_empty(const char *s)
{
    return s[0] == '\0' || check_address(s);
}

static bool
check_unix_url_or_empty(const char *s)
{
    return s[0] == '\0' || (strncmp(s, "unix:///", 8) == 0 && is_printable(s));
}

/* ---- slurm (begin) */
/* A Slurm user or partition name, or "". */
static bool
check_name_or_empty(const char *s)
{
    size_t n = strlen(s);

    return n == 0 ||
           (n < 64 && s[0] != '-' && s[0] != '.' &&
            strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n);
}

static bool
check_abs_path_or_empty(const char *s)
{
    return s[0] == '\0' || (s[0] == '/' && is_printable(s));
}
/* ---- slurm (end) */

static bool
check_python(const char *s)
{
    int64_t v;

    return !strncmp(s, "3.", 2) && ocra_parse_i64(s + 2, 0, 99, &v, NULL) == 0;
}

/* A PEP 503 normalised package name: lowercase alphanumerics in runs joined by single '-'. */
static bool
check_package(const char *s)
{
    size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-");

    return n > 0 && n <= 64 && !s[n] && s[0] != '-' && s[n - 1] != '-' && !strstr(s, "--");
}

static bool
is_repo_chars(const char *s)
{
    size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789._/:-");

    return n > 0 && n <= 255 && !s[n] && s[0] != '/' && s[n - 1] != '/' && !strstr(s, "//");
}

/* A repository ("nvidia/cuda"), a prefix with a trailing slash-asterisk, or an asterisk. */
static bool
check_mirror_from(const char *s)
{
    size_t n = strlen(s);
    char *copy;
    bool ok;

    if (strcmp(s, "*") == 0)
        return true;
    if (n < 3 || strcmp(s + n - 2, "/*") != 0)
        return is_repo_chars(s);
    copy = ocra_xstrndup(s, n - 2);
    ok = is_repo_chars(copy);
    free(copy);
    return ok;
}

static bool
check_mirror_to(const char *s)
{
    return is_repo_chars(s);
}

/* A repository ("nvidia/cuda", "registry.internal:5000/team/base") or, with a trailing slash,
 * every repository under a prefix ("registry.internal:5000/", "nvidia/"); no tag or digest: a
 * colon only in the registry's host:port. */
static bool
check_base_image(const char *s)
{
    size_t n = strlen(s);
    const char *slash = strchr(s, '/'), *colon = strchr(s, ':');
    char *copy;
    bool ok;

    if (colon && (!slash || colon > slash || strchr(slash, ':')))
        return false;
    if (n < 2 || s[n - 1] != '/')
        return is_repo_chars(s);
    copy = ocra_xstrndup(s, n - 1);
    ok = is_repo_chars(copy);
    free(copy);
    return ok;
}

/* "" or a repository path in the registry ("ocra/toolchain"). */
static bool
check_repo_or_empty(const char *s)
{
    return !*s || (is_repo_chars(s) && !strchr(s, ':'));
}

/* ---- inventory checks (begin) */

/* A node or GPU model name: printable ASCII without spaces, below max bytes. */
static bool
is_word(const char *s, size_t max)
{
    return s[0] && strlen(s) < max && is_printable(s);
}

/* "" or an engine endpoint URL by its scheme (the run module parses it: a runner that cannot
 * reach it, and `ocra daemon --check`, say what is wrong with it). */
static bool
check_endpoint_or_empty(const char *s)
{
    return s[0] == '\0' || ((strncmp(s, "unix:///", 8) == 0 || strncmp(s, "tcp://", 6) == 0 ||
                             strncmp(s, "ssh://", 6) == 0) &&
                            is_printable(s));
}

static bool
check_node_name(const char *s)
{
    return is_word(s, 64);
}

static bool
check_gpu_model(const char *s)
{
    return !*s || is_word(s, 32);
}

/* "" or "X.Y": a CUDA compute capability. */
static bool
check_compute_cap(const char *s)
{
    return !*s ||
           (s[0] >= '1' && s[0] <= '9' &&
            ((s[1] == '.' && s[2] >= '0' && s[2] <= '9' && !s[3]) ||
             (s[1] >= '0' && s[1] <= '9' && s[2] == '.' && s[3] >= '0' && s[3] <= '9' && !s[4])));
}

/* "" or up to three dot-separated runs of at most 4 digits: an NVIDIA driver version. */
static bool
check_driver(const char *s)
{
    int parts = 0;

    if (!*s)
        return true;
    for (;;) {
        size_t n = strspn(s, "0123456789");

        if (n == 0 || n > 4 || ++parts > 3)
            return false;
        s += n;
        if (!*s)
            return true;
        if (*s++ != '.')
            return false;
    }
}

/* "" or a decimal of up to 6 digits and 6 decimals. */
static bool
check_cost(const char *s)
{
    size_t a, b = 0;

    if (!*s)
        return true;
    a = strspn(s, "0123456789");
    if (s[a] == '.') {
        b = strspn(s + a + 1, "0123456789");
        if (b == 0)
            return false;
        b++;
    }
    return a >= 1 && a <= 6 && b <= 7 && !s[a + b];
}

/* "key=value", printable, at most 63 bytes. */
static bool
check_label(const char *s)
{
    return is_word(s, 64) && s[0] != '=' && strchr(s, '=');
}

/* "name=integer": a queue priority (-1000..1000) by publisher address or app. */
static bool
check_queue_priority(const char *s)
{
    const char *eq = strrchr(s, '=');
    int64_t v;

    return is_word(s, 128) && eq && eq != s && ocra_parse_i64(eq + 1, -1000, 1000, &v, NULL) == 0;
}

/* "owner=weight": a fair-share weight, 1..1000000. */
static bool
check_queue_weight(const char *s)
{
    const char *eq = strrchr(s, '=');
    int64_t v;

    return is_word(s, 128) && eq && eq != s && ocra_parse_i64(eq + 1, 1, 1000000, &v, NULL) == 0;
}

/* ---- inventory checks (end) */

/* ---- the table ------------------------------------------------------------------------- */

static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};
static const char *const log_formats[] = {"text", "json", NULL};
/* Indexed by enum ocra_evm_finality (src/chain/evm/evm.h); config does not depend on it. */
static const char *const evm_finalities[] = {"depth", "finalized", "safe", NULL};
static const char *const runners[] = {"docker", "slurm", NULL};
static const char *const on_newer[] = {"replace", "keep", NULL};
/* ---- build (begin) */
static const char *const build_networks[] = {"host", "none", NULL};
/* ---- build (end) */

#define CFG(field) offsetof(struct ocra_config, field)
#define WATCH(field) offsetof(struct ocra_config_watch, field)
#define MIRROR(field) offsetof(struct ocra_config_mirror, field)
#define NODE(field) offsetof(struct ocra_config_node, field)

static const struct ocra_config_row mirror_rows[] = {
    {.key = "from",
     .type = OCRA_CONFIG_STRING,
     .def = "",
     .check = check_mirror_from,
     .want = "a repository, a prefix ending in /*, or *",
     .type_name = "repository pattern",
     .off = MIRROR(from),
     .required = true,
     .doc = "Base image repositories to rewrite: nvidia/cuda, nvidia/* or *."},
    {.key = "to",
     .type = OCRA_CONFIG_STRING,
     .def = "",
     .check = check_mirror_to,
     .want = "a registry/repository without tag",
     .type_name = "repository",
     .off = MIRROR(to),
     .required = true,
     .doc = "What replaces the matched repository (or prefix); the tag is kept."},
};

static const struct ocra_config_row watch_rows[] = {
    {.key = "path",
     .type = OCRA_CONFIG_STRING,
     .def = "",
     .check = check_chain_path,
     .want = "an AIN path starting with /",
     .type_name = "AIN path",
     .off = WATCH(path),
     .required = true,
     .doc = "Path pattern to watch; $name segments match any key, e.g. /apps/my_app/models/$name."},
    {.key = "allow",
     .type = OCRA_CONFIG_LIST,
     .check = check_address,
     .want = "an address (0x and 40 hex digits)",
     .type_name = "list of addresses",
     .off = WATCH(allow),
     .count_off = WATCH(n_allow),
     .doc = "Signer addresses whose writes under path are accepted; empty: nobody is trusted "
            "(events are journaled as rejected)."},
};

/* ---- inventory rows (begin) */
/* Indexed by enum ocra_sched_policy (src/sched/sched.h); config does not depend on it. */
static const char *const sched_policies[] = {"first-fit", "best-fit", "cheapest", "fgd", NULL};
/* Indexed by enum ocra_sched_qpolicy (src/sched/sched.h). */
static const char *const queue_policies[] = {"fifo", "backfill", "fair", "sjf", NULL};

static const struct ocra_config_row node_rows[] = {
    {.key = "name",
     .type = OCRA_CONFIG_STRING,
     .def = "",
     .check = check_node_name,
     .want = "a name of printable ASCII without spaces, at most 63 bytes",
     .type_name = "node name",
     .off = NODE(name),
     .required = true,
     .doc = "The node's name (for this machine: its host name, to complete what is discovered)."},
    {.key = "gpu_model",
     .type = OCRA_CONFIG_STRING,
     .def = "",
     .check = check_gpu_model,
     .want = "a model name without spaces, at most 31 bytes",
     .type_name = "GPU model",
     .off = NODE(gpu_model),
     .doc = "GPU model as the planner names it (A100-40GB, T4, ...); empty: CPU only or unknown."},
    {.key = "gpus",
     .type = OCRA_CONFIG_INT,
     .def = "0",
     .min = 0,
     .max = 16,
     .off = NODE(gpus),
     .doc = "Number of GPUs (all of gpu_model)."},
    {.key = "gpu_memory_mib",
     .type = OCRA_CONFIG_INT,
     .def = "0",
     .min = 0,
     .max = 1 << 30,
     .off = NODE(gpu_memory_mib),
     .doc = "Memory per GPU in MiB; 0: unknown."},
    {.key = "compute_capability",
     .type = OCRA_CONFIG_STRING,
     .def = "",
     .check = check_compute_cap,
     .want = "a compute capability X.Y",
     .type_name = "X.Y",
     .off = NODE(compute_capability),
     .doc = "CUDA compute capability of the GPUs (8.0, 8.6, 9.0); empty: unknown."},
    {.key = "driver",
     .type = OCRA_CONFIG_STRING,
     .def = "",
     .check = check_driver,
     .want = "a driver version major[.minor[.patch]]",
     .type_name = "version",
     .off = NODE(driver),
     .doc = "NVIDIA driver version (535.104.05); empty: unknown (fails any minimum)."},
    {.key = "cpus",
     .type = OCRA_CONFIG_INT,
     .def = "0",
     .min = 0,
     .max = 1 << 20,
     .off = NODE(cpus),
     .doc = "CPUs (cores) workloads may use."},
    {.key = "memory_mib",
     .type = OCRA_CONFIG_INT,
     .def = "0",
     .min = 0,
     .max = INT64_C(1) << 40,
     .off = NODE(memory_mib),
     .doc = "RAM workloads may use, in MiB."},
    {.key = "labels",
     .type = OCRA_CONFIG_LIST,
     .check = check_label,
     .want = "key=value (at most 63 bytes)",
     .type_name = "list of key=value",
     .off = NODE(labels),
     .count_off = NODE(n_labels),
     .doc = "Labels a workload may require (at most 8)."},
    {.key = "cost",
     .type = OCRA_CONFIG_STRING,
     .def = "",
     .check = check_cost,
     .want = "a decimal cost (up to 6 digits . 6 decimals)",
     .type_name = "decimal",
     .off = NODE(cost),
     .doc = "Cost per GPU-hour (any currency; the cheapest policy compares it); empty: unknown."},
    {.key = "docker_host",
     .type = OCRA_CONFIG_STRING,
     .def = "",
     .check = check_endpoint_or_empty,
     .want = "unix:///absolute/path, tcp://host:port or ssh://user@host",
     .type_name = "engine URL",
     .off = NODE(docker_host),
     .doc = "The node's Docker engine (docker runner); tcp:// uses TLS client certificates; "
            "empty: run.docker_host."},
    {.key = "docker_tls_ca",
     .type = OCRA_CONFIG_PATH,
     .def = "",
     .off = NODE(docker_tls_ca),
     .doc =
         "CA certificate (PEM) that verifies the node's tcp:// engine; empty: run.docker_tls.ca."},
    {.key = "docker_tls_cert",
     .type = OCRA_CONFIG_PATH,
     .def = "",
     .off = NODE(docker_tls_cert),
     .doc = "Client certificate (PEM) for the node's tcp:// engine; empty: run.docker_tls.cert."},
    {.key = "docker_tls_key",
     .type = OCRA_CONFIG_SECRET,
     .def = "",
     .off = NODE(docker_tls_key),
     .doc = "Client key (PEM) for the node's tcp:// engine; empty: run.docker_tls.key."},
};
/* ---- inventory rows (end) */

const struct ocra_config_row ocra_config_rows[] = {
    {.key = "journal.path",
     .type = OCRA_CONFIG_PATH,
     .def = "journal.db",
     .off = CFG(journal_path),
     .doc = "SQLite journal: chain events, stages, images and runs."},
    {.key = "log.level",
     .type = OCRA_CONFIG_ENUM,
     .def = "info",
     .choices = log_levels,
     .off = CFG(log_level),
     .doc = "Least severe log messages written."},
    {.key = "log.format",
     .type = OCRA_CONFIG_ENUM,
     .def = "text",
     .choices = log_formats,
     .off = CFG(log_format),
     .doc = "text: one key=value line per event; json: one JSON object per line."},
    {.key = "spec.http_hosts",
     .type = OCRA_CONFIG_LIST,
     .check = check_http_host,
     .want = "a host or host:port",
     .type_name = "list of hosts",
     .off = CFG(spec_http_hosts),
     .count_off = CFG(n_spec_http_hosts),
     .doc = "Hosts (host or host:port) allowed in plain http:// artifact URIs, e.g. a mirror."},
    /* ---- artifact (begin) */
    {.key = "artifact.allow_hosts",
     .type = OCRA_CONFIG_LIST,
     .check = check_allow_host,
     .want = "a host name, an IP address or a CIDR",
     .type_name = "list of hosts and CIDRs",
     .off = CFG(artifact.allow_hosts),
     .count_off = CFG(artifact.n_allow_hosts),
     .doc = "Internal hosts, addresses and CIDRs artifacts may come from; others: public only."},
    {.key = "artifact.max_size_mib",
     .type = OCRA_CONFIG_INT,
     .def = "131072",
     .min = 1,
     .max = 16777216,
     .off = CFG(artifact.max_size_mib),
     .doc = "Largest artifact fetched, MiB (128 GiB); a bigger artifact.size is rejected."},
    {.key = "artifact.min_rate_kib",
     .type = OCRA_CONFIG_INT,
     .def = "64",
     .min = 0,
     .max = 1048576,
     .off = CFG(artifact.min_rate_kib),
     .doc = "A fetch slower than this (KiB/s) over artifact.min_rate_window_s fails; 0: only "
            "stalls do."},
    {.key = "artifact.min_rate_window_s",
     .type = OCRA_CONFIG_INT,
     .def = "60",
     .min = 1,
     .max = 3600,
     .off = CFG(artifact.min_rate_window_s),
     .doc = "Seconds over which artifact.min_rate_kib is averaged."},
    {.key = "artifact.deadline_s",
     .type = OCRA_CONFIG_INT,
     .def = "7200",
     .min = 1,
     .max = 604800,
     .off = CFG(artifact.deadline_s),
     .doc = "Longest one artifact fetch may take, in seconds; then it fails and is retried."},
    /* ---- artifact (end) */
    {.key = "plan.data_dir",
     .type = OCRA_CONFIG_PATH,
     .def = "",
     .off = CFG(plan.data_dir),
     .doc = "Planner tables (pytorch.json, ...); empty: $OCRA_DATA_DIR, else the built-in data/."},
    {.key = "plan.python",
     .type = OCRA_CONFIG_STRING,
     .def = "3.10",
     .check = check_python,
     .want = "a Python version 3.N",
     .type_name = "Python version",
     .off = CFG(plan.python),
     .doc = "Preferred Python when the frameworks allow it and the spec pins none."},
    {.key = "plan.pip_index_url",
     .type = OCRA_CONFIG_STRING,
     .def = "https://pypi.org/simple",
     .check = check_http_url,
     .want = "an http:// or https:// URL",
     .type_name = "URL",
     .off = CFG(plan.pip_index_url),
     .doc = "pip --index-url for every package but PyTorch's (a private mirror of PyPI)."},
    {.key = "plan.extra_index_urls",
     .type = OCRA_CONFIG_LIST,
     .check = check_http_url,
     .want = "an http:// or https:// URL",
     .type_name = "list of URLs",
     .off = CFG(plan.extra_index_urls),
     .count_off = CFG(plan.n_extra_index_urls),
     .doc = "pip --extra-index-url for the same installs (beware of dependency confusion)."},
    {.key = "plan.torch_index_url",
     .type = OCRA_CONFIG_STRING,
     .def = "",
     .check = check_http_url,
     .want = "an http:// or https:// URL",
     .type_name = "URL",
     .off = CFG(plan.torch_index_url),
     .doc = "Base of the PyTorch wheel indexes (+ /cu121, /cpu); empty: download.pytorch.org/whl."},
    {.key = "plan.allowed_tools",
     .type = OCRA_CONFIG_LIST,
     .check = check_package,
     .want = "a normalised package name (lowercase, - between words)",
     .type_name = "list of package names",
     .off = CFG(plan.allowed_tools),
     .count_off = CFG(plan.n_allowed_tools),
     .doc = "pip packages a spec may ask for; empty: any, whose install code runs in the build."},
    {.key = "plan.base_images",
     .type = OCRA_CONFIG_LIST,
     .check = check_base_image,
     .want = "a repository, or a registry or prefix ending in / (no tag)",
     .type_name = "list of repositories and prefixes",
     .off = CFG(plan.base_images),
     .count_off = CFG(plan.n_base_images),
     .doc = "What a spec's baseImage may name: a repository, or prefix/; empty: the planner's own "
            "bases.",
     .example = "base_images:\n"
                "  - \"nvidia/cuda\"                      # that repository\n"
                "  - \"registry.internal:5000/mirror/\"   # every repository under it"},
    {.key = "plan.max_gpus",
     .type = OCRA_CONFIG_INT,
     .def = "8",
     .min = 1,
     .max = 64,
     .off = CFG(plan.max_gpus),
     .doc = "Most GPUs per replica the planner picks when the spec gives no workload.gpus."},
    {.key = "plan.mirrors",
     .type = OCRA_CONFIG_SECTIONS,
     .off = CFG(plan.mirrors),
     .count_off = CFG(plan.n_mirrors),
     .sub = mirror_rows,
     .n_sub = OCRA_ARRAY_LEN(mirror_rows),
     .elem_size = sizeof(struct ocra_config_mirror),
     .doc = "Base image mirror map, first match wins: images are pulled from to instead.",
     .example = "mirrors:\n"
                "  - from: \"nvidia/cuda\"\n"
                "    to: \"registry.internal:5000/mirror/nvidia/cuda\""},
    {.key = "ain.rpc",
     .type = OCRA_CONFIG_STRING,
     .def = "",
     .check = check_http_url,
     .want = "an http:// or https:// URL",
     .type_name = "URL",
     .off = CFG(ain.rpc),
     .doc = "AIN JSON-RPC endpoint; empty turns the AIN source off."},
    {.key = "ain.ws",
     .type = OCRA_CONFIG_STRING,
     .def = "",
     .check = check_ws_url,
     .want = "a ws:// or wss:// URL",
     .type_name = "URL",
     .off = CFG(ain.ws),
     .doc = "AIN event WebSocket; empty: poll ain.rpc only."},
    {.key = "ain.chain_id",
     .type = OCRA_CONFIG_INT,
     .def = "0",
     .min = 0,
     .max = INT64_MAX,
     .off = CFG(ain.chain_id),
     .doc = "AIN chain id, part of every event id and signature."},
    {.key = "ain.poll_interval_ms",
     .type = OCRA_CONFIG_INT,
     .def = "2000",
     .min = 100,
     .max = 600000,
     .off = CFG(ain.poll_interval_ms),
     .doc = "Milliseconds between polls for new blocks."},
    {.key = "ain.rate_limit",
     .type = OCRA_CONFIG_INT,
     .def = "10",
     .min = 1,
     .max = 1000,
     .off = CFG(ain.rate_limit),
     .doc = "Most JSON-RPC reads per second."},
    {.key = "ain.from_block",
     .type = OCRA_CONFIG_INT,
     .def = "-1",
     .min = -1,
     .max = INT64_MAX,
     .off = CFG(ain.from_block),
     .doc = "Block to start at when the journal has no cursor; -1: the current head."},
    {.key = "ain.gas_price",
     .type = OCRA_CONFIG_INT,
     .def = "0",
     .min = 0,
     .max = INT64_MAX,
     .off = CFG(ain.gas_price),
     .doc = "Gas price of the status transactions ocra writes."},
    {.key = "ain.key_file",
     .type = OCRA_CONFIG_SECRET,
     .def = "",
     .off = CFG(ain.key_file),
     .doc = "File holding the hex private key that signs status writes; empty: read only."},
    {.key = "ain.watch",
     .type = OCRA_CONFIG_SECTIONS,
     .off = CFG(ain.watch),
     .count_off = CFG(ain.n_watch),
     .sub = watch_rows,
     .n_sub = OCRA_ARRAY_LEN(watch_rows),
     .elem_size = sizeof(struct ocra_config_watch),
     .doc = "Watched path patterns, each with the signers allowed to write under it.",
     .example = "watch:\n"
                "  - path: \"/apps/my_app/models/$name\"\n"
                "    allow: [\"0x00112233445566778899aabbccddeeff00112233\"]"},
    {.key = "evm.rpc",
     .type = OCRA_CONFIG_LIST,
     .check = check_http_url,
     .want = "an http:// or https:// URL",
     .type_name = "list of URLs",
     .off = CFG(evm.rpc),
     .count_off = CFG(evm.n_rpc),
     .doc = "EVM JSON-RPC endpoints in order of preference; empty turns the EVM source off."},
    {.key = "evm.contract",
     .type = OCRA_CONFIG_STRING,
     .def = "",
     .check = check_address_or_empty,
     .want = "an address (0x and 40 hex digits)",
     .type_name = "address",
     .off = CFG(evm.contract),
     .doc = "The ModelRegistry contract whose ModelPublished logs are read."},
    {.key = "evm.chain_id",
     .type = OCRA_CONFIG_INT,
     .def = "0",
     .min = 0,
     .max = INT64_MAX,
     .off = CFG(evm.chain_id),
     .doc = "Expected chain id; 0: take the node's eth_chainId."},
    {.key = "evm.finality",
     .type = OCRA_CONFIG_ENUM,
     .def = "depth",
     .choices = evm_finalities,
     .off = CFG(evm.finality),
     .doc = "depth: head - confirmations; finalized or safe: that block tag, else depth."},
    {.key = "evm.confirmations",
     .type = OCRA_CONFIG_INT,
     .def = "12",
     .min = 0,
     .max = 100000,
     .off = CFG(evm.confirmations),
     .doc = "Blocks on top of a block before its logs are acted on."},
    {.key = "evm.from_block",
     .type = OCRA_CONFIG_INT,
     .def = "-1",
     .min = -1,
     .max = INT64_MAX,
     .off = CFG(evm.from_block),
     .doc = "Block to start at when the journal has no cursor; -1: the current final block."},
    {.key = "evm.batch_blocks",
     .type = OCRA_CONFIG_INT,
     .def = "2000",
     .min = 1,
     .max = 1000000,
     .off = CFG(evm.batch_blocks),
     .doc = "Blocks per eth_getLogs range (halved when a provider refuses it)."},
    {.key = "evm.poll_interval_ms",
     .type = OCRA_CONFIG_INT,
     .def = "2000",
     .min = 100,
     .max = 600000,
     .off = CFG(evm.poll_interval_ms),
     .doc = "Milliseconds between polls for new blocks."},
    {.key = "evm.allow",
     .type = OCRA_CONFIG_LIST,
     .check = check_address,
     .want = "an address (0x and 40 hex digits)",
     .type_name = "list of addresses",
     .off = CFG(evm.allow),
     .count_off = CFG(evm.n_allow),
     .doc = "Publishers whose specs are accepted (besides the contract's list); empty: nobody."},
    {.key = "evm.key_file",
     .type = OCRA_CONFIG_SECRET,
     .def = "",
     .off = CFG(evm.key_file),
     .doc = "File holding the hex private key that signs EVM publishes and status reports."},
    {.key = "run.docker_host",
     .type = OCRA_CONFIG_STRING,
     .def = "",
     .check = check_unix_url_or_empty,
     .want = "unix:///absolute/path/to/docker.sock",
     .type_name = "unix URL",
     .off = CFG(run.docker_host),
     .doc = "The Docker engine the runner uses; empty: $DOCKER_HOST, else /var/run/docker.sock."},
    {.key = "run.docker_tls.ca",
     .type = OCRA_CONFIG_PATH,
     .def = "",
     .off = CFG(run.docker_tls_ca),
     .doc = "CA certificate (PEM) of nodes' tcp:// engines (inventory.nodes docker_host)."},
    {.key = "run.docker_tls.cert",
     .type = OCRA_CONFIG_PATH,
     .def = "",
     .off = CFG(run.docker_tls_cert),
     .doc = "Client certificate (PEM) for nodes' tcp:// engines."},
    {.key = "run.docker_tls.key",
     .type = OCRA_CONFIG_SECRET,
     .def = "",
     .off = CFG(run.docker_tls_key),
     .doc = "Client key (PEM) for nodes' tcp:// engines."},
    {.key = "run.runner",
     .type = OCRA_CONFIG_ENUM,
     .def = "docker",
     .choices = runners,
     .off = CFG(run.runner),
     .doc = "Where the daemon runs workloads: docker (this machine) or slurm (run.slurm.*)."},
    {.key = "run.reconcile_interval_s",
     .type = OCRA_CONFIG_INT,
     .def = "300",
     .min = 0,
     .max = 86400,
     .off = CFG(run.reconcile_interval_s),
     .doc = "Seconds between removals of stray containers (ocra's labels, no live run); 0: at "
            "start only."},
    {.key = "run.sandbox.writable_rootfs",
     .type = OCRA_CONFIG_BOOL,
     .def = "false",
     .off = CFG(run.writable_rootfs),
     .doc = "Relaxation: the container's root filesystem is writable (default read-only)."},
    {.key = "run.sandbox.network_host",
     .type = OCRA_CONFIG_BOOL,
     .def = "false",
     .off = CFG(run.network_host),
     .doc = "Relaxation: host networking, needed to serve a port (default: no network)."},
    {.key = "run.sandbox.no_pids_limit",
     .type = OCRA_CONFIG_BOOL,
     .def = "false",
     .off = CFG(run.no_pids_limit),
     .doc = "Relaxation: no limit on the number of processes (default 256)."},
    {.key = "run.sandbox.run_as_root",
     .type = OCRA_CONFIG_BOOL,
     .def = "false",
     .off = CFG(run.run_as_root),
     .doc = "Relaxation: the workload runs as root (default uid 65532)."},
    {.key = "run.max_duration_s.training",
     .type = OCRA_CONFIG_INT,
     .def = "86400",
     .min = 0,
     .max = 31536000,
     .off = CFG(run.max_duration_training_s),
     .doc = "Longest run of a training workload, seconds (spec maxDuration is capped); 0: none."},
    {.key = "run.max_duration_s.inference",
     .type = OCRA_CONFIG_INT,
     .def = "0",
     .min = 0,
     .max = 31536000,
     .off = CFG(run.max_duration_inference_s),
     .doc = "Longest run of an inference workload, seconds (spec maxDuration is capped); 0: none."},
    {.key = "run.newer_version.training",
     .type = OCRA_CONFIG_ENUM,
     .def = "replace",
     .choices = on_newer,
     .off = CFG(run.keep_training),
     .doc = "A newer version of a running training model: replace (stop the old) or keep it."},
    {.key = "run.stop_grace_s",
     .type = OCRA_CONFIG_INT,
     .def = "30",
     .min = 0,
     .max = 3600,
     .off = CFG(run.stop_grace_s),
     .doc = "Seconds between SIGTERM and SIGKILL when a workload is stopped (its time limit)."},
    /* ---- slurm (begin) */
    {.key = "run.slurm.url",
     .type = OCRA_CONFIG_STRING,
     .def = "",
     .check = check_http_url,
     .want = "http://host:port",
     .type_name = "URL",
     .off = CFG(run.slurm.url),
     .doc = "slurmrestd of the cluster the slurm runner submits to (v0.0.38); empty: none."},
    {.key = "run.slurm.user",
     .type = OCRA_CONFIG_STRING,
     .def = "",
     .check = check_name_or_empty,
     .want = "a user name",
     .type_name = "name",
     .off = CFG(run.slurm.user),
     .doc = "The token's user (X-SLURM-USER-NAME); jobs run as this user, who needs Docker."},
    {.key = "run.slurm.token_file",
     .type = OCRA_CONFIG_SECRET,
     .def = "",
     .off = CFG(run.slurm.token_file),
     .doc = "File holding the user's JWT (`scontrol token username=U`), read per request."},
    {.key = "run.slurm.partition",
     .type = OCRA_CONFIG_STRING,
     .def = "",
     .check = check_name_or_empty,
     .want = "a partition name",
     .type_name = "name",
     .off = CFG(run.slurm.partition),
     .doc = "The partition jobs go to; empty: the cluster's default."},
    {.key = "run.slurm.docker_host",
     .type = OCRA_CONFIG_STRING,
     .def = "",
     .check = check_unix_url_or_empty,
     .want = "unix:///absolute/path/to/docker.sock",
     .type_name = "unix URL",
     .off = CFG(run.slurm.docker_host),
     .doc = "The Docker engine on each node that jobs use; empty: the node's default."},
    {.key = "run.slurm.workdir",
     .type = OCRA_CONFIG_STRING,
     .def = "/tmp",
     .check = check_abs_path_or_empty,
     .want = "an absolute path",
     .type_name = "path",
     .off = CFG(run.slurm.workdir),
     .doc = "Jobs' directory for their output files; logs read it: share it with the nodes."},
    {.key = "run.slurm.poll_interval_ms",
     .type = OCRA_CONFIG_INT,
     .def = "1000",
     .min = 100,
     .max = 600000,
     .off = CFG(run.slurm.poll_interval_ms),
     .doc = "First interval between polls of a job's state; it doubles up to 8 times this."},
    /* ---- slurm (end) */

    /* ---- build (begin) */
    {.key = "build.registry",
     .type = OCRA_CONFIG_STRING,
     .def = "",
     .off = CFG(build.registry),
     .doc = "Images go to HOST[:PORT]/REPO (ocra build) or REPO/<model name> (the daemon)."},
    {.key = "build.toolchain_repo",
     .type = OCRA_CONFIG_STRING,
     .def = "",
     .check = check_repo_or_empty,
     .want = "a repository path such as ocra/toolchain",
     .type_name = "repository",
     .off = CFG(build.toolchain_repo),
     .doc = "Repository of toolchain images (tag: hash), one for all models; empty: toolchain "
            "beside them."},
    {.key = "build.cache_dir",
     .type = OCRA_CONFIG_PATH,
     .def = "",
     .off = CFG(build.cache_dir),
     .doc = "Verified artifacts, layer descriptors; empty: $XDG_CACHE_HOME/ocra, ~/.cache/ocra"},
    {.key = "build.agent",
     .type = OCRA_CONFIG_PATH,
     .def = "",
     .off = CFG(build.agent),
     .doc = "The ocra-agent binary put in images; empty: $OCRA_AGENT, else beside ocra."},
    {.key = "build.sign_key",
     .type = OCRA_CONFIG_SECRET,
     .def = "",
     .off = CFG(build.sign_key),
     .doc = "ECDSA P-256 private key (PEM, mode 0600) that signs built images; empty: unsigned."},
    {.key = "build.network",
     .type = OCRA_CONFIG_ENUM,
     .def = "host",
     .choices = build_networks,
     .off = CFG(build.network),
     .doc =
         "Toolchain builds' network: host (pip reaches the index, as can install code) or none."},
    {.key = "build.weight_gzip",
     .type = OCRA_CONFIG_BOOL,
     .def = "false",
     .off = CFG(build.weight_gzip),
     .doc = "Compress the weight layer with gzip (default: plain tar, faster for weights)."},
    {.key = "build.engine_load_min_mib",
     .type = OCRA_CONFIG_INT,
     .def = "128",
     .min = 0,
     .max = 16777216,
     .off = CFG(build.engine_load_min_mib),
     .doc = "Least weight layer, MiB, handed to the runner's engine as it uploads; 0: always."},
    /* ---- build (end) */
    {.key = "api.listen",
     .type = OCRA_CONFIG_STRING,
     .def = "127.0.0.1:8380",
     .check = check_listen,
     .want = "host:port",
     .type_name = "host:port",
     .off = CFG(api_listen),
     .doc = "Address of the HTTP API, metrics and dashboard; empty: ocra daemon serves none."},
    {.key = "api.token_file",
     .type = OCRA_CONFIG_SECRET,
     .def = "",
     .off = CFG(api_token_file),
     .doc = "Bearer token file (mode 0600) for mutating API calls and any non-loopback listen."},
    {.key = "api.allowed_hosts",
     .type = OCRA_CONFIG_LIST,
     .check = check_host_name,
     .want = "a host name without a port",
     .type_name = "list of host names",
     .off = CFG(api_allowed_hosts),
     .count_off = CFG(n_api_allowed_hosts),
     .doc = "Host names the API answers besides loopback and api.listen's address; others: 421."},
    {.key = "api.connections_per_client",
     .type = OCRA_CONFIG_INT,
     .def = "16",
     .min = 1,
     .max = 256,
     .off = CFG(api_connections_per_client),
     .doc = "API connections one client address may hold (256 in all); raise behind a proxy."},
    {.key = "api.explorer_tx_url",
     .type = OCRA_CONFIG_STRING,
     .def = "",
     .check = check_tx_link,
     .want = "an http(s) URL with {tx}, e.g. https://sepolia.etherscan.io/tx/{tx}",
     .type_name = "URL template",
     .off = CFG(api_explorer_tx_url),
     .doc = "Dashboard link of a transaction: {tx}, {chain} (ain:0, evm:ID); empty: none."},
    {.key = "api.explorer_address_url",
     .type = OCRA_CONFIG_STRING,
     .def = "",
     .check = check_address_link,
     .want = "an http(s) URL with {address}, e.g. https://sepolia.etherscan.io/address/{address}",
     .type_name = "URL template",
     .off = CFG(api_explorer_address_url),
     .doc = "Dashboard link of a signer: {address}, {chain} (ain:0, evm:ID); empty: none."},
    {.key = "api.registry_url",
     .type = OCRA_CONFIG_STRING,
     .def = "",
     .check = check_digest_link,
     .want = "an http(s) URL with {digest}, e.g. https://{registry}/v2/{repo}/manifests/{digest}",
     .type_name = "URL template",
     .off = CFG(api_registry_url),
     .doc = "Dashboard link of an image: {registry}, {repo}, {digest} replaced; empty: none."},
    {.key = "daemon.workers",
     .type = OCRA_CONFIG_INT,
     .def = "2",
     .min = 1,
     .max = 64,
     .off = CFG(daemon_workers),
     .doc = "Worker threads that run pipeline stages."},
    {.key = "daemon.max_attempts",
     .type = OCRA_CONFIG_INT,
     .def = "8",
     .min = 1,
     .max = 1000,
     .off = CFG(daemon.max_attempts),
     .doc = "Attempts at a stage with transient errors before the event is dead-lettered."},
    {.key = "daemon.max_crashes",
     .type = OCRA_CONFIG_INT,
     .def = "5",
     .min = 1,
     .max = 1000,
     .off = CFG(daemon.max_crashes),
     .doc =
         "Times a stage's worker process may die (taken over, not attempts) before dead letter."},
    {.key = "daemon.retry_base_ms",
     .type = OCRA_CONFIG_INT,
     .def = "1000",
     .min = 1,
     .max = 3600000,
     .off = CFG(daemon.retry_base_ms),
     .doc = "First retry delay of a failed stage, doubled per attempt with 50-100 % jitter."},
    {.key = "daemon.retry_max_ms",
     .type = OCRA_CONFIG_INT,
     .def = "300000",
     .min = 1,
     .max = 86400000,
     .off = CFG(daemon.retry_max_ms),
     .doc = "Longest retry delay."},
    {.key = "daemon.lease_ms",
     .type = OCRA_CONFIG_INT,
     .def = "60000",
     .min = 100,
     .max = 86400000,
     .off = CFG(daemon.lease_ms),
     .doc =
         "A claim's lease, renewed while its stage runs; a dead holder's (same machine: at once) "
         "is taken."},
    {.key = "daemon.poll_ms",
     .type = OCRA_CONFIG_INT,
     .def = "1000",
     .min = 10,
     .max = 600000,
     .off = CFG(daemon.poll_ms),
     .doc = "How often idle workers look for ready stages and the journal for new events."},
    {.key = "daemon.report",
     .type = OCRA_CONFIG_BOOL,
     .def = "true",
     .off = CFG(daemon.report),
     .doc = "Report each event's outcome on its chain (false: the report stage records it only)."},
    {.key = "daemon.report_ain_path",
     .type = OCRA_CONFIG_STRING,
     .def = "/apps/{app}/ocra/runs/{shortid}",
     .check = check_chain_path,
     .want = "an AIN path starting with /",
     .type_name = "AIN path template",
     .off = CFG(daemon.report_ain_path),
     .doc = "AIN report path; {app}: the event path's app, {shortid}: the event's short id."},
    {.key = "daemon.report_wait_ms",
     .type = OCRA_CONFIG_INT,
     .def = "60000",
     .min = 1000,
     .max = 3600000,
     .off = CFG(daemon.report_wait_ms),
     .doc = "How long a report waits for its transaction to be final before retrying."},
    {.key = "agent.socket_dir",
     .type = OCRA_CONFIG_PATH,
     .def = "/run/ocra",
     .off = CFG(agent.socket_dir),
     .doc = "Directory of each run's own agent socket directory, mounted at /run/ocra in it only."},
    {.key = "agent.heartbeat_s",
     .type = OCRA_CONFIG_INT,
     .def = "10",
     .min = 1,
     .max = 3600,
     .off = CFG(agent.heartbeat_s),
     .doc = "Seconds between the in-image agent's heartbeats."},
    /* ---- lb keys (begin) */
    {.key = "lb.haproxy",
     .type = OCRA_CONFIG_STRING,
     .def = "",
     .off = CFG(lb.haproxy),
     .doc = "HAProxy binary the daemon starts in front of served models; empty: none."},
    {.key = "lb.socket",
     .type = OCRA_CONFIG_PATH,
     .def = "",
     .off = CFG(lb.socket),
     .doc = "Admin socket of an operator's HAProxy to drive instead of starting one."},
    {.key = "lb.dir",
     .type = OCRA_CONFIG_PATH,
     .def = "lb",
     .off = CFG(lb.dir),
     .doc = "HAProxy's generated config, pid file, admin socket and the frontend ports taken."},
    {.key = "lb.bind",
     .type = OCRA_CONFIG_STRING,
     .def = "127.0.0.1",
     .off = CFG(lb.bind),
     .check = check_ip_literal,
     .want = "an IPv4 or IPv6 address",
     .doc = "Address the models' frontends listen on (0.0.0.0: every interface)."},
    {.key = "lb.port_min",
     .type = OCRA_CONFIG_INT,
     .def = "18000",
     .min = 1,
     .max = 65535,
     .off = CFG(lb.port_min),
     .doc = "First frontend port; each served model keeps one port of port_min..port_max."},
    {.key = "lb.port_max",
     .type = OCRA_CONFIG_INT,
     .def = "18015",
     .min = 1,
     .max = 65535,
     .off = CFG(lb.port_max),
     .doc = "Last frontend port (at most 1024 past port_min)."},
    {.key = "lb.replica_addr",
     .type = OCRA_CONFIG_STRING,
     .def = "127.0.0.1",
     .off = CFG(lb.replica_addr),
     .check = check_ip_literal,
     .want = "an IPv4 or IPv6 address",
     .doc = "Address at which HAProxy reaches the replicas' ports (host networking)."},
    {.key = "lb.check_inter_ms",
     .type = OCRA_CONFIG_INT,
     .def = "2000",
     .min = 100,
     .max = 3600000,
     .off = CFG(lb.check_inter_ms),
     .doc = "Interval of HAProxy's health checks of each replica."},
    {.key = "lb.drain_s",
     .type = OCRA_CONFIG_INT,
     .def = "30",
     .min = 0,
     .max = 86400,
     .off = CFG(lb.drain_s),
     .doc = "How long a replica's open requests may run after drain, before it is stopped."},
    /* ---- lb keys (end) */
    /* ---- inventory keys (begin) */
    {.key = "inventory.nodes",
     .type = OCRA_CONFIG_SECTIONS,
     .off = CFG(nodes),
     .count_off = CFG(n_nodes),
     .sub = node_rows,
     .n_sub = OCRA_ARRAY_LEN(node_rows),
     .elem_size = sizeof(struct ocra_config_node),
     .doc = "GPU nodes ocra may place workloads on (docs/RUNNING.md, `ocra nodes`).",
     .example = "nodes:\n"
                "  - name: \"gpu-a\"\n"
                "    gpu_model: \"A100-40GB\"\n"
                "    gpus: 4\n"
                "    gpu_memory_mib: 40960\n"
                "    compute_capability: \"8.0\"\n"
                "    driver: \"535.104.05\"\n"
                "    cpus: 32\n"
                "    memory_mib: 262144\n"
                "    labels: [\"zone=a\"]\n"
                "    cost: \"2.5\""},
    {.key = "inventory.local",
     .type = OCRA_CONFIG_BOOL,
     .def = "true",
     .off = CFG(inventory_local),
     .doc = "Discover this machine (CPUs and RAM from /proc, GPUs through NVML) as a node."},
    {.key = "sched.policy",
     .type = OCRA_CONFIG_ENUM,
     .def = "best-fit",
     .choices = sched_policies,
     .off = CFG(sched.policy),
     .doc = "Placement policy: first-fit, best-fit, cheapest or fgd (docs/RUNNING.md)."},
    {.key = "sched.gpu_memory_headroom_mib",
     .type = OCRA_CONFIG_INT,
     .def = "0",
     .min = 0,
     .max = 1 << 20,
     .off = CFG(sched.gpu_memory_headroom_mib),
     .doc = "GPU memory per device kept out of placement (CUDA context, other users), in MiB."},
    {.key = "sched.queue.policy",
     .type = OCRA_CONFIG_ENUM,
     .def = "backfill",
     .choices = queue_policies,
     .off = CFG(sched.queue.policy),
     .doc = "Order of events waiting for room: fifo, backfill, fair or sjf (docs/RUNNING.md)."},
    {.key = "sched.queue.priorities",
     .type = OCRA_CONFIG_LIST,
     .check = check_queue_priority,
     .want = "publisher-or-app=priority (an integer -1000..1000)",
     .type_name = "list of name=priority",
     .off = CFG(sched.queue.priorities),
     .count_off = CFG(sched.queue.n_priorities),
     .doc = "Queue priority by publisher address or app (higher first; unlisted: 0)."},
    {.key = "sched.queue.weights",
     .type = OCRA_CONFIG_LIST,
     .check = check_queue_weight,
     .want = "owner=weight (an integer 1..1000000)",
     .type_name = "list of owner=weight",
     .off = CFG(sched.queue.weights),
     .count_off = CFG(sched.queue.n_weights),
     .doc = "Fair-share weights by owner (the publisher address, else the app); unlisted: 1."},
    {.key = "sched.queue.aging_s",
     .type = OCRA_CONFIG_INT,
     .def = "600",
     .min = 0,
     .max = 31536000,
     .off = CFG(sched.queue.aging_s),
     .doc = "A queued event gains one priority per aging_s seconds waited; 0: no aging."},
    {.key = "sched.queue.interval_ms",
     .type = OCRA_CONFIG_INT,
     .def = "10000",
     .min = 100,
     .max = 3600000,
     .off = CFG(sched.queue.interval_ms),
     .doc = "How often the queue is looked at besides at every release of capacity."},
    {.key = "autoscale.target",
     .type = OCRA_CONFIG_INT,
     .def = "4",
     .min = 1,
     .max = 100000,
     .off = CFG(autoscale.target),
     .doc = "Requests in flight or queued per replica that the autoscaler aims at."},
    {.key = "autoscale.tolerance_percent",
     .type = OCRA_CONFIG_INT,
     .def = "10",
     .min = 0,
     .max = 99,
     .off = CFG(autoscale.tolerance_percent),
     .doc = "Dead band around the target within which the replica count stays."},
    {.key = "autoscale.up_cooldown_s",
     .type = OCRA_CONFIG_INT,
     .def = "30",
     .min = 0,
     .max = 86400,
     .off = CFG(autoscale.up_cooldown_s),
     .doc = "Seconds since the last change before the autoscaler adds replicas."},
    {.key = "autoscale.down_cooldown_s",
     .type = OCRA_CONFIG_INT,
     .def = "300",
     .min = 0,
     .max = 86400,
     .off = CFG(autoscale.down_cooldown_s),
     .doc = "Seconds since the last change before the autoscaler removes replicas."},
    {.key = "autoscale.interval_s",
     .type = OCRA_CONFIG_INT,
     .def = "15",
     .min = 1,
     .max = 3600,
     .off = CFG(autoscale.interval_s),
     .doc = "Seconds between two steps of the autoscaler's control loop."},
    {.key = "autoscale.lb_load",
     .type = OCRA_CONFIG_BOOL,
     .def = "false",
     .off = CFG(autoscale.lb_load),
     .doc =
         "Also take the load balancer's sessions and queue of a model as its load (the larger)."},
    /* ---- inventory keys (end) */

};

const size_t ocra_config_n_rows = OCRA_ARRAY_LEN(ocra_config_rows);
