/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_table.c: every configuration key, one row each (redis standardConfig): its dotted
 * name, type, default, bounds, where it lives in struct ocra_config, and its one-line doc.
 * Loading, `ocra config check`, etc/ocra.yaml and docs/CONFIG.md all derive from this table;
 * adding a key is adding a row (and its field). The checks of string values live here too.
 */
#include "config/config_int.h"

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

static bool
check_listen(const char *s)
{
    return is_host_port(s, true);
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

/* ---- the table ------------------------------------------------------------------------- */

static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};
static const char *const log_formats[] = {"text", "json", NULL};
/* Indexed by enum ocra_evm_finality (src/chain/evm/evm.h); config does not depend on it. */
static const char *const evm_finalities[] = {"depth", "finalized", "safe", NULL};

#define CFG(field) offsetof(struct ocra_config, field)
#define WATCH(field) offsetof(struct ocra_config_watch, field)
#define MIRROR(field) offsetof(struct ocra_config_mirror, field)

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
     .doc = "pip packages a spec may ask for; empty: any (CUDA, cuDNN, NCCL, Python are not pip)."},
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
    {.key = "api.listen",
     .type = OCRA_CONFIG_STRING,
     .def = "127.0.0.1:8380",
     .check = check_listen,
     .want = "host:port",
     .type_name = "host:port",
     .off = CFG(api_listen),
     .doc = "Address of the HTTP API, metrics and dashboard."},
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
     .doc = "A claim's lease, renewed while its stage runs; then a crashed worker's is taken."},
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
};

const size_t ocra_config_n_rows = OCRA_ARRAY_LEN(ocra_config_rows);
