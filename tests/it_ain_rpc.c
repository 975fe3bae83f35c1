/* SPDX-License-Identifier: Apache-2.0 */
/*
 * it_ain_rpc: the AIN JSON-RPC client (ocra_ain_rpc_call) against tests/lib/ain_node.py, the
 * recorded-traffic server that stands in for an AIN node (which cannot be installed here).
 * Covers recorded answers (head, a full block), node errors that must not be retried
 * (protocol version, unknown method, a send-level rejection), a read beyond the head, and
 * transport faults injected through the server's control endpoint (HTTP 500, truncated and
 * garbage bodies, a dropped connection, a refused connection) that must be retried, plus the
 * client's rate limit as seen in the server's request log. Run through tests/it_ain_rpc.sh,
 * which starts the server and sets AIN_RPC_URL and AIN_CTL_URL; without them it exits 77.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chain/ain/ain.h"
#include "http/http.h"
#include "ocra_test.h"

#define STEP_A_TX "0x4de6f4bda369ee024149d93da8aa511638a0cd1de15ff5138d2213db8a44c116"
#define TAMPERED_SEND "tests/data/ain/rpc/ain_sendSignedTransaction__rejected_tampered_body.json"

static const char *rpc_url, *ctl_url;

/* POSTs body to the control endpoint (or GETs `suffix` when body is NULL); returns the parsed
 * answer or NULL. Caller json_decref()s it. */
static json_t *
ctl(const char *suffix, const char *body)
{
    static const char *const headers[] = {"Content-Type: application/json", NULL};
    char url[512];
    struct ocra_http_req req = {.method = body ? "POST" : "GET",
                                .url = url,
                                .headers = headers,
                                .body = body,
                                .body_len = body ? strlen(body) : 0,
                                .timeout_ms = 5000};
    struct ocra_http_resp resp = {0};
    struct ocra_err err = {0};
    json_t *doc = NULL;

    if (snprintf(url, sizeof(url), "%s%s", ctl_url, suffix) >= (int)sizeof(url))
        return NULL;
    if (ocra_http_do(&req, &resp, &err) < 0) {
        fprintf(stderr, "  control %s: %s\n", url, err.msg);
        return NULL;
    }
    if (resp.status == 200)
        doc = ocra_json_parse(resp.body, resp.body_len, 0, &err);
    else
        fprintf(stderr, "  control %s: HTTP %ld: %s\n", url, resp.status, resp.body);
    ocra_http_resp_fini(&resp);
    return doc;
}

/* Sends a control command; true when the server took it. */
static bool
ctl_post(const char *body)
{
    json_t *doc = ctl("", body);
    bool ok = doc && json_is_true(json_object_get(doc, "ok"));

    json_decref(doc);
    return ok;
}

/* The server's log of JSON-RPC requests since the last reset. */
static json_t *
server_log(void)
{
    return ctl("/log", NULL);
}

static size_t
server_log_count(void)
{
    json_t *log = server_log();
    size_t n = json_is_array(log) ? json_array_size(log) : (size_t)-1;

    json_decref(log);
    return n;
}

/* Reads the environment and puts the server back in its initial state: head 67, no faults,
 * an empty request log. False when the test cannot run. */
static bool
setup(void)
{
    rpc_url = getenv("AIN_RPC_URL");
    ctl_url = getenv("AIN_CTL_URL");
    if (!rpc_url || !*rpc_url || !ctl_url || !*ctl_url)
        return false;
    CHECK(ctl_post("{\"reset_log\": true, \"clear_faults\": true, \"head\": 67}"));
    return true;
}

#define SETUP()                                                                                    \
    do {                                                                                           \
        if (!setup())                                                                              \
            OCRA_TEST_SKIP("AIN_RPC_URL and AIN_CTL_URL unset; run tests/it_ain_rpc.sh");          \
    } while (0)

static struct ocra_ain_rpc *
client(const char *url, const char *proto_ver, int retries, int rate_limit)
{
    struct ocra_ain_rpc_opts o = {.url = url,
                                  .proto_ver = proto_ver,
                                  .timeout_ms = 5000,
                                  .retries = retries,
                                  .backoff_ms = 10,
                                  .backoff_max_ms = 40,
                                  .rate_limit = rate_limit};

    return ocra_ain_rpc_new(&o);
}

static json_t *
block_params(json_int_t number, bool full)
{
    json_t *p = json_object();

    json_object_set_new(p, "number", json_integer(number));
    if (full)
        json_object_set_new(p, "getFullTransactions", json_true());
    return p;
}

static void
test_last_block_number_is_the_recorded_head(void)
{
    struct ocra_ain_rpc *rpc;
    struct ocra_err err = {0};
    json_t *v, *log;

    SETUP();
    rpc = client(rpc_url, NULL, 0, 0);
    v = ocra_ain_rpc_call(rpc, "ain_getLastBlockNumber", NULL, NULL, &err);
    CHECK(json_is_integer(v));
    CHECK_INT(json_integer_value(v), 67);
    CHECK_INT(ocra_ain_rpc_requests(rpc), 1);
    /* every call carries the client's protocol version */
    log = server_log();
    CHECK_INT(json_array_size(log), 1);
    CHECK_STR(ocra_json_str(json_object_get(json_array_get(log, 0), "params"), "protoVer"),
              OCRA_AIN_PROTO_VER);
    json_decref(log);
    json_decref(v);
    ocra_ain_rpc_free(rpc);
}

static void
test_block_49_full_holds_step_a_tx(void)
{
    struct ocra_ain_rpc *rpc;
    struct ocra_err err = {0};
    json_t *params = block_params(49, true), *v, *txs;
    bool found = false;

    SETUP();
    rpc = client(rpc_url, NULL, 0, 0);
    v = ocra_ain_rpc_call(rpc, "ain_getBlockByNumber", params, NULL, &err);
    CHECK(json_is_object(v));
    CHECK_INT(ocra_json_int(v, "number", -1), 49);
    txs = json_object_get(v, "transactions");
    CHECK(json_is_array(txs));
    for (size_t i = 0; i < json_array_size(txs); i++) {
        const json_t *tx = json_array_get(txs, i);
        const char *h = ocra_json_str(tx, "hash");

        found = found || (h && strcmp(h, STEP_A_TX) == 0 && json_object_get(tx, "tx_body"));
    }
    CHECK(found);
    json_decref(v);
    json_decref(params);
    ocra_ain_rpc_free(rpc);
}

static void
test_incompatible_proto_ver_is_eproto_and_not_retried(void)
{
    struct ocra_ain_rpc *rpc;
    struct ocra_err err = {0};
    int64_t code = 0;
    json_t *v;

    SETUP();
    rpc = client(rpc_url, "0.9.0", 3, 0);
    v = ocra_ain_rpc_call(rpc, "ain_getLastBlockNumber", NULL, &code, &err);
    CHECK(v == NULL);
    CHECK_INT(err.code, EPROTO);
    CHECK_INT(code, 30103);
    CHECK(strstr(err.msg, "Incompatible protocol version.") != NULL);
    CHECK_INT(ocra_ain_rpc_requests(rpc), 1);
    CHECK_INT(server_log_count(), 1);
    json_decref(v);
    ocra_ain_rpc_free(rpc);
}

static void
test_unknown_method_is_eproto_32601(void)
{
    struct ocra_ain_rpc *rpc;
    struct ocra_err err = {0};
    int64_t code = 0;
    json_t *v;

    SETUP();
    rpc = client(rpc_url, NULL, 3, 0);
    v = ocra_ain_rpc_call(rpc, "ain_noSuchMethod", NULL, &code, &err);
    CHECK(v == NULL);
    CHECK_INT(err.code, EPROTO);
    CHECK_INT(code, -32601);
    CHECK(strstr(err.msg, "Method not found") != NULL);
    CHECK_INT(ocra_ain_rpc_requests(rpc), 1);
    json_decref(v);
    ocra_ain_rpc_free(rpc);
}

static void
test_block_beyond_head_is_enoent(void)
{
    struct ocra_ain_rpc *rpc;
    struct ocra_err err = {0};
    json_t *far = block_params(1067, true), *next = block_params(61, false), *v;

    SETUP();
    rpc = client(rpc_url, NULL, 3, 0);
    v = ocra_ain_rpc_call(rpc, "ain_getBlockByNumber", far, NULL, &err);
    CHECK(v == NULL);
    CHECK_INT(err.code, ENOENT);
    CHECK_INT(ocra_ain_rpc_requests(rpc), 1);
    /* with the head moved back to 60, block 61 is not there yet; at 61 it is */
    CHECK(ctl_post("{\"head\": 60}"));
    memset(&err, 0, sizeof(err));
    v = ocra_ain_rpc_call(rpc, "ain_getBlockByNumber", next, NULL, &err);
    CHECK(v == NULL);
    CHECK_INT(err.code, ENOENT);
    CHECK(ctl_post("{\"head\": 61}"));
    v = ocra_ain_rpc_call(rpc, "ain_getBlockByNumber", next, NULL, &err);
    CHECK_INT(ocra_json_int(v, "number", -1), 61);
    CHECK(json_is_string(json_array_get(json_object_get(v, "transactions"), 0)));
    CHECK_INT(ocra_ain_rpc_requests(rpc), 3);
    json_decref(v);
    json_decref(far);
    json_decref(next);
    ocra_ain_rpc_free(rpc);
}

static void
test_http_500_twice_then_success_is_retried(void)
{
    struct ocra_ain_rpc *rpc;
    struct ocra_err err = {0};
    json_t *v;

    SETUP();
    CHECK(ctl_post("{\"faults\": [{\"kind\": \"http500\", \"count\": 2, "
                   "\"method\": \"ain_getLastBlockNumber\"}]}"));
    rpc = client(rpc_url, NULL, 3, 0);
    v = ocra_ain_rpc_call(rpc, "ain_getLastBlockNumber", NULL, NULL, &err);
    CHECK(json_is_integer(v));
    CHECK_INT(json_integer_value(v), 67);
    CHECK_INT(ocra_ain_rpc_requests(rpc), 3);
    CHECK_INT(server_log_count(), 3);
    json_decref(v);
    ocra_ain_rpc_free(rpc);
}

static void
test_http_500_forever_gives_up_with_eio(void)
{
    struct ocra_ain_rpc *rpc;
    struct ocra_err err = {0};
    json_t *v;

    SETUP();
    CHECK(ctl_post("{\"faults\": [{\"kind\": \"http500\", \"count\": 10}]}"));
    rpc = client(rpc_url, NULL, 2, 0);
    v = ocra_ain_rpc_call(rpc, "ain_getLastBlockNumber", NULL, NULL, &err);
    CHECK(v == NULL);
    CHECK_INT(err.code, EIO);
    CHECK(strstr(err.msg, "gave up after 3 attempts") != NULL);
    CHECK(strstr(err.msg, "HTTP 500") != NULL);
    CHECK_INT(ocra_ain_rpc_requests(rpc), 3);
    CHECK_INT(server_log_count(), 3);
    if (!v && err.code != EIO)
        fprintf(stderr, "  error: %s\n", err.msg);
    json_decref(v);
    ocra_ain_rpc_free(rpc);
}

/* One injected fault of `kind`, then a normal answer: the client retries once and succeeds. */
static void
check_fault_once_is_retried(const char *kind)
{
    char cmd[128];
    struct ocra_ain_rpc *rpc;
    struct ocra_err err = {0};
    json_t *v;

    snprintf(cmd, sizeof(cmd), "{\"faults\": [{\"kind\": \"%s\", \"count\": 1}]}", kind);
    CHECK(ctl_post(cmd));
    rpc = client(rpc_url, NULL, 2, 0);
    v = ocra_ain_rpc_call(rpc, "ain_getLastBlockNumber", NULL, NULL, &err);
    if (!v)
        fprintf(stderr, "  %s: %s\n", kind, err.msg);
    CHECK(json_is_integer(v));
    CHECK_INT(json_integer_value(v), 67);
    CHECK_INT(ocra_ain_rpc_requests(rpc), 2);
    CHECK_INT(server_log_count(), 2);
    json_decref(v);
    ocra_ain_rpc_free(rpc);
}

static void
test_truncated_reply_is_retried(void)
{
    SETUP();
    check_fault_once_is_retried("truncate");
}

static void
test_garbage_reply_is_retried(void)
{
    SETUP();
    check_fault_once_is_retried("garbage");
}

static void
test_connection_closed_without_reply_is_retried(void)
{
    SETUP();
    check_fault_once_is_retried("close");
}

/* A loopback port where nothing listens: bound by the kernel's choice, then closed. */
static int
dead_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    ocra_fd_close(fd);
    return port;
}

static void
test_connection_refused_after_retries(void)
{
    char url[64];
    struct ocra_ain_rpc *rpc;
    struct ocra_err err = {0};
    int port = dead_port();
    json_t *v;

    SETUP();
    CHECK(port > 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/json-rpc", port);
    rpc = client(url, NULL, 2, 0);
    v = ocra_ain_rpc_call(rpc, "ain_getLastBlockNumber", NULL, NULL, &err);
    CHECK(v == NULL);
    CHECK_INT(err.code, ECONNREFUSED);
    CHECK(strstr(err.msg, "gave up after 3 attempts") != NULL);
    CHECK_INT(ocra_ain_rpc_requests(rpc), 3);
    json_decref(v);
    ocra_ain_rpc_free(rpc);
}

static void
test_tampered_send_is_rejected_30304(void)
{
    struct ocra_ain_rpc *rpc;
    struct ocra_err err = {0};
    int64_t code = 0;
    json_t *rec, *params, *v;

    SETUP();
    rec = ocra_json_load_file(TAMPERED_SEND, 1u << 20, 0, &err);
    CHECK(rec != NULL);
    if (!rec)
        return;
    params = json_object_get(json_object_get(rec, "request"), "params");
    CHECK(json_is_object(params));
    rpc = client(rpc_url, NULL, 3, 0);
    v = ocra_ain_rpc_call(rpc, "ain_sendSignedTransaction", params, &code, &err);
    CHECK(v == NULL);
    CHECK_INT(err.code, EPROTO);
    CHECK_INT(code, 30304);
    CHECK(strstr(err.msg, "Invalid transaction signature.") != NULL);
    CHECK_INT(ocra_ain_rpc_requests(rpc), 1);
    json_decref(v);
    json_decref(rec);
    ocra_ain_rpc_free(rpc);
}

/*
 * At 20 requests/s the server must see the requests spread out, 50 ms apart. Checked on the
 * server's arrival times with generous slack (a late arrival of one request shortens the next
 * gap): every gap at least 25 ms, the five gaps together at least 225 ms. Without the limit
 * the gaps are about a millisecond.
 */
static void
test_rate_limit_spaces_requests(void)
{
    struct ocra_ain_rpc *rpc;
    struct ocra_err err = {0};
    json_t *log;
    double prev = 0, first = 0;

    SETUP();
    rpc = client(rpc_url, NULL, 0, 20);
    for (int i = 0; i < 6; i++) {
        json_t *v = ocra_ain_rpc_call(rpc, "ain_getLastBlockNumber", NULL, NULL, &err);

        CHECK(v != NULL);
        json_decref(v);
    }
    log = server_log();
    CHECK_INT(json_array_size(log), 6);
    for (size_t i = 0; i < json_array_size(log); i++) {
        double t = json_number_value(json_object_get(json_array_get(log, i), "t_ms"));

        if (i == 0)
            first = t;
        else if (t - prev < 25.0)
            CHECK(t - prev >= 25.0);
        prev = t;
    }
    CHECK(prev - first >= 225.0);
    json_decref(log);
    ocra_ain_rpc_free(rpc);
}

OCRA_TEST_MAIN(OCRA_TEST(test_last_block_number_is_the_recorded_head),
               OCRA_TEST(test_block_49_full_holds_step_a_tx),
               OCRA_TEST(test_incompatible_proto_ver_is_eproto_and_not_retried),
               OCRA_TEST(test_unknown_method_is_eproto_32601),
               OCRA_TEST(test_block_beyond_head_is_enoent),
               OCRA_TEST(test_http_500_twice_then_success_is_retried),
               OCRA_TEST(test_http_500_forever_gives_up_with_eio),
               OCRA_TEST(test_truncated_reply_is_retried), OCRA_TEST(test_garbage_reply_is_retried),
               OCRA_TEST(test_connection_closed_without_reply_is_retried),
               OCRA_TEST(test_connection_refused_after_retries),
               OCRA_TEST(test_tampered_send_is_rejected_30304),
               OCRA_TEST(test_rate_limit_spaces_requests))
