/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agentd_test: the request parser against valid and hostile lines, the reply builders'
 * bounds, and the server with clients in this process: checks and reports reach the
 * callbacks with the peer's credentials, garbage and overlong lines are answered with an
 * error and the connection closed, idle and surplus connections are closed, a slow client
 * does not hold up another, the socket's mode and its replacement rules, and a clean stop.
 */
#include "agentd/agentd_int.h"
#include "ocra_test.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define HEAD                                                                                       \
    "\"v\":1,\"event\":\"ain:0:0x3f:0\",\"model\":\"bert\",\"version\":\"1.0.1\","                 \
    "\"instance\":\"abc123\",\"time_ms\":1795000000000"

/* ---- parser ------------------------------------------------------------------------ */

static int
parse(const char *line, struct ocra_agentd_msg *m, struct ocra_err *err)
{
    return ocra_agentd_msg_parse(line, strlen(line), m, err);
}

static void
test_parse_valid_messages(void)
{
    struct ocra_err err = {0};
    struct ocra_agentd_msg m;

    CHECK_INT(parse("{\"type\":\"check\"," HEAD ",\"host\":\"3f2a1b\",\"extra\":[1]}", &m, &err),
              0);
    CHECK_INT(m.type, OCRA_AGENTD_CHECK);
    CHECK_STR(m.event, "ain:0:0x3f:0");
    CHECK_STR(m.model, "bert");
    CHECK_STR(m.version, "1.0.1");
    CHECK_STR(m.instance, "abc123");
    CHECK_STR(m.host, "3f2a1b");
    CHECK_INT(m.time_ms, 1795000000000LL);
    CHECK_INT(parse("{\"type\":\"started\"," HEAD ",\"pid\":7,\"forced\":true}", &m, &err), 0);
    CHECK_INT(m.type, OCRA_AGENTD_STARTED);
    CHECK_INT(m.pid, 7);
    CHECK(m.forced);
    CHECK_STR(m.host, "");
    CHECK_INT(parse("{\"type\":\"heartbeat\"," HEAD ",\"uptime_ms\":10000}", &m, &err), 0);
    CHECK_INT(m.uptime_ms, 10000);
    CHECK(!m.has_load);
    CHECK_INT(parse("{\"type\":\"heartbeat\"," HEAD ",\"uptime_ms\":1,\"load\":6}", &m, &err), 0);
    CHECK(m.has_load);
    CHECK_INT(m.load, 6);
    CHECK_INT(parse("{\"type\":\"heartbeat\"," HEAD ",\"uptime_ms\":1,\"load\":null}", &m, &err),
              0);
    CHECK(!m.has_load);
    CHECK_INT(
        parse("{\"type\":\"heartbeat\"," HEAD ",\"uptime_ms\":1,\"load\":1000000000}", &m, &err),
        0);
    CHECK_INT(m.load, 1000000000LL);
    CHECK_INT(
        parse("{\"type\":\"completed\"," HEAD ",\"duration_ms\":5,\"exit_code\":42}", &m, &err), 0);
    CHECK_INT(m.exit_code, 42);
    CHECK_INT(m.signal, 0);
    CHECK_INT(parse("{\"type\":\"completed\"," HEAD
                    ",\"duration_ms\":5,\"signal\":15,\"exit_code\":null}",
                    &m, &err),
              0);
    CHECK_INT(m.exit_code, -1);
    CHECK_INT(m.signal, 15);
    CHECK_INT(parse("{\"type\":\"refused\"," HEAD ",\"reason\":\"superseded\",\"current\":"
                    "\"1.0.2\"}",
                    &m, &err),
              0);
    CHECK_INT(m.type, OCRA_AGENTD_REFUSED);
    CHECK_STR(m.reason, "superseded");
    CHECK_STR(m.current, "1.0.2");
    CHECK_INT(parse("{\"type\":\"refused\"," HEAD ",\"reason\":\"superseded\"}", &m, &err), 0);
    CHECK_STR(m.current, "");
    CHECK_STR(ocra_agentd_type_name(OCRA_AGENTD_REFUSED), "refused");
    CHECK_STR(ocra_agentd_type_name(OCRA_AGENTD_COMPLETED), "completed");
    CHECK(ocra_agentd_type_name((enum ocra_agentd_type)9) == NULL);
}

static void
test_parse_rejects_hostile_lines(void)
{
    static const struct {
        const char *line, *want;
    } cases[] = {
        {"", "not JSON"},
        {"[1]", "JSON of type array, not an object"},
        {"{\"type\":\"check\"}", "\"v\" is missing"},
        {"{\"v\":2,\"type\":\"check\"}", "\"v\": 2 is outside 1..1"},
        {"{\"v\":\"1\",\"type\":\"check\"}", "\"v\" has type string, not integer"},
        {"{\"v\":1,\"type\":\"reboot\"}", "unknown type \"reboot\""},
        {"{\"type\":\"check\"," HEAD ",\"type\":\"started\"}", "not JSON"}, /* duplicate */
        {"{\"type\":\"check\",\"v\":1,\"event\":\"a b\"}", "member \"event\": invalid value"},
        {"{\"type\":\"check\",\"v\":1,\"event\":\"a\\u0000b\"}", "not JSON"},
        {"{\"type\":\"check\",\"v\":1,\"event\":\"caf\\u00e9\"}", "member \"event\": invalid"},
        {"{\"type\":\"check\",\"v\":1,\"event\":\"e\",\"model\":\"Bert\"}", "\"model\": invalid"},
        {"{\"type\":\"check\",\"v\":1,\"event\":\"e\",\"model\":\"-b\"}", "\"model\": invalid"},
        {"{\"type\":\"check\",\"v\":1,\"event\":\"e\",\"model\":\"b\",\"version\":\"\"}",
         "\"version\": invalid value \"\" (0 bytes"},
        {"{\"type\":\"check\",\"v\":1,\"event\":\"e\",\"model\":\"b\",\"version\":\"1\","
         "\"instance\":\"a/b\"}",
         "\"instance\": invalid"},
        {"{\"type\":\"check\",\"v\":1,\"event\":\"e\",\"model\":\"b\",\"version\":\"1\","
         "\"instance\":\"a\",\"time_ms\":0}",
         "\"time_ms\": 0 is outside"},
        {"{\"type\":\"check\",\"v\":1,\"event\":\"e\",\"model\":\"b\",\"version\":\"1\","
         "\"instance\":\"a\",\"time_ms\":1.5}",
         "\"time_ms\" has type number, not integer"},
        {"{\"type\":\"started\"," HEAD ",\"pid\":0}", "\"pid\": 0 is outside"},
        {"{\"type\":\"started\"," HEAD ",\"pid\":1,\"forced\":1}",
         "\"forced\" has type integer, not boolean"},
        {"{\"type\":\"heartbeat\"," HEAD "}", "\"uptime_ms\" is missing"},
        {"{\"type\":\"heartbeat\"," HEAD ",\"uptime_ms\":1,\"load\":-1}",
         "\"load\": -1 is outside"},
        {"{\"type\":\"heartbeat\"," HEAD ",\"uptime_ms\":1,\"load\":1000000001}",
         "\"load\": 1000000001 is outside 0..1000000000"},
        {"{\"type\":\"heartbeat\"," HEAD ",\"uptime_ms\":1,\"load\":\"6\"}",
         "\"load\" has type string, not integer"},
        {"{\"type\":\"heartbeat\"," HEAD ",\"uptime_ms\":1,\"load\":1.5}",
         "\"load\" has type number"},
        {"{\"type\":\"completed\"," HEAD ",\"duration_ms\":1}", "exactly one of"},
        {"{\"type\":\"completed\"," HEAD ",\"duration_ms\":1,\"exit_code\":0,\"signal\":9}",
         "exactly one of"},
        {"{\"type\":\"completed\"," HEAD ",\"duration_ms\":1,\"exit_code\":256}",
         "\"exit_code\": 256 is outside 0..255"},
        {"{\"type\":\"completed\"," HEAD ",\"duration_ms\":1,\"signal\":65}", "\"signal\": 65"},
        {"{\"type\":\"completed\"," HEAD ",\"duration_ms\":-1,\"signal\":9}",
         "\"duration_ms\": -1"},
        {"{\"type\":\"refused\"," HEAD "}", "\"reason\" is missing"},
        {"{\"type\":\"refused\"," HEAD ",\"reason\":\"bored\"}",
         "\"reason\": \"bored\" is not \"superseded\""},
        {"{\"type\":\"refused\"," HEAD ",\"reason\":1}", "\"reason\" is missing or not a string"},
        {"{\"type\":\"refused\"," HEAD ",\"reason\":\"superseded\",\"current\":\"1 0\"}",
         "\"current\": invalid value"},
        {"{\"type\":\"refused\"," HEAD ",\"reason\":\"superseded\",\"current\":\"\"}",
         "\"current\": invalid value"},
    };
    struct ocra_agentd_msg m;

    for (size_t i = 0; i < OCRA_ARRAY_LEN(cases); i++) {
        struct ocra_err err = {0};

        CHECK_INT(parse(cases[i].line, &m, &err), -1);
        CHECK_INT(err.code, EPROTO);
        if (!strstr(err.msg, cases[i].want)) {
            fprintf(stderr, "  case %zu: \"%s\" lacks \"%s\"\n", i, err.msg, cases[i].want);
            CHECK(0);
        }
    }
}

static void
test_parse_bounds(void)
{
    char line[OCRA_AGENTD_LINE_MAX + 64], ev[OCRA_AGENTD_EVENT_MAX + 2];
    struct ocra_err err = {0};
    struct ocra_agentd_msg m;

    memset(ev, 'e', sizeof(ev) - 1);
    ev[OCRA_AGENTD_EVENT_MAX] = '\0'; /* exactly the bound: accepted */
    snprintf(line, sizeof(line),
             "{\"type\":\"check\",\"v\":1,\"event\":\"%s\",\"model\":\"b\",\"version\":\"1\","
             "\"instance\":\"a\",\"time_ms\":1}",
             ev);
    CHECK_INT(parse(line, &m, &err), 0);
    CHECK_INT(strlen(m.event), OCRA_AGENTD_EVENT_MAX);
    ev[OCRA_AGENTD_EVENT_MAX] = 'e'; /* one past it */
    ev[OCRA_AGENTD_EVENT_MAX + 1] = '\0';
    snprintf(line, sizeof(line),
             "{\"type\":\"check\",\"v\":1,\"event\":\"%s\",\"model\":\"b\",\"version\":\"1\","
             "\"instance\":\"a\",\"time_ms\":1}",
             ev);
    CHECK_INT(parse(line, &m, &err), -1);
    CHECK(strstr(err.msg, "(513 bytes, at most 512)") != NULL);
    memset(line, ' ', sizeof(line));
    CHECK_INT(ocra_agentd_msg_parse(line, OCRA_AGENTD_LINE_MAX, &m, &err), -1);
    CHECK(strstr(err.msg, "line of 4096 bytes") != NULL);
}

static void
test_replies_stay_within_bounds(void)
{
    struct ocra_agentd_answer a = {.verdict = OCRA_AGENTD_SUPERSEDED};
    struct ocra_buf b;
    char big[2000];

    ocra_buf_init(&b);
    memcpy(a.current, "1.2.0", 6);
    ocra_agentd_reply_verdict(&a, 10, &b);
    CHECK_STR(b.data, "{\"v\":1,\"ok\":true,\"status\":\"superseded\",\"heartbeat_s\":10,"
                      "\"current\":\"1.2.0\"}\n");
    ocra_buf_reset(&b);
    memset(a.current, 'x', sizeof(a.current)); /* not terminated: sent as "" */
    ocra_agentd_reply_verdict(&a, 10, &b);
    CHECK(strstr(b.data, "\"current\":\"\"") != NULL);
    ocra_buf_reset(&b);
    memset(big, '"', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ocra_agentd_reply_error(big, &b);
    CHECK(b.len < OCRA_AGENTD_REPLY_MAX);
    CHECK(b.data[b.len - 1] == '\n' && strchr(b.data, '\n') == b.data + b.len - 1);
    ocra_buf_reset(&b);
    a.verdict = OCRA_AGENTD_CURRENT;
    ocra_agentd_reply_verdict(&a, 3, &b);
    CHECK_STR(b.data, "{\"v\":1,\"ok\":true,\"status\":\"current\",\"heartbeat_s\":3}\n");
    ocra_buf_fini(&b);
}

/* ---- the server -------------------------------------------------------------------- */

#define EVENT "ain:0:0x3f:0" /* HEAD's */

static struct {
    pthread_mutex_t mu;
    int checks, reports;
    struct ocra_agentd_msg last;
    struct ocra_agentd_peer peer;
    char run[OCRA_AGENTD_NAME_MAX + 1]; /* peer.run, copied */
    int fail_check;
} rec = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void
record(const struct ocra_agentd_msg *m, const struct ocra_agentd_peer *peer)
{
    rec.last = *m;
    rec.peer = *peer;
    snprintf(rec.run, sizeof(rec.run), "%s", peer->run);
    rec.peer.run = NULL; /* borrowed for the call only */
}

static int
cb_check(void *arg, const struct ocra_agentd_msg *m, const struct ocra_agentd_peer *peer,
         struct ocra_agentd_answer *a)
{
    (void)arg;
    pthread_mutex_lock(&rec.mu);
    rec.checks++;
    record(m, peer);
    pthread_mutex_unlock(&rec.mu);
    if (rec.fail_check)
        return -1;
    if (strcmp(m->version, "1.0.0") == 0) {
        a->verdict = OCRA_AGENTD_SUPERSEDED;
        memcpy(a->current, "1.0.1", 6);
    }
    return 0;
}

static void
cb_report(void *arg, const struct ocra_agentd_msg *m, const struct ocra_agentd_peer *peer)
{
    (void)arg;
    pthread_mutex_lock(&rec.mu);
    rec.reports++;
    record(m, peer);
    pthread_mutex_unlock(&rec.mu);
}

static int
reports(void)
{
    int n;

    pthread_mutex_lock(&rec.mu);
    n = rec.reports;
    pthread_mutex_unlock(&rec.mu);
    return n;
}

static const struct ocra_agentd_callbacks cbs = {.check = cb_check, .report = cb_report};

static char tmpdir[64], base[96];

/* A server in a fresh directory with run "r0" (EVENT, replica 0) added. */
static struct ocra_agentd *
server(int max_conns, int run_conns, int idle_ms)
{
    struct ocra_agentd_options opt = {
        .max_conns = max_conns, .run_conns = run_conns, .idle_ms = idle_ms};
    struct ocra_err err = {0};
    struct ocra_agentd *d = NULL;
    char *dir = NULL;

    snprintf(tmpdir, sizeof(tmpdir), "/tmp/ocra-agentd.XXXXXX");
    if (!mkdtemp(tmpdir))
        return NULL;
    snprintf(base, sizeof(base), "%s/run/ocra", tmpdir);
    opt.dir = base;
    if (ocra_agentd_start(&opt, &cbs, &d, &err) < 0) {
        fprintf(stderr, "  start: %s\n", err.msg);
        return NULL;
    }
    if (ocra_agentd_run_add(d, "r0", EVENT, 0, &dir, &err) < 0) {
        fprintf(stderr, "  run_add: %s\n", err.msg);
        ocra_agentd_stop(d);
        return NULL;
    }
    free(dir);
    memset(&rec.last, 0, sizeof(rec.last));
    rec.checks = rec.reports = rec.fail_check = 0;
    return d;
}

static void
server_done(struct ocra_agentd *d)
{
    char cmd[128];

    ocra_agentd_stop(d);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    (void)!system(cmd);
}

/* A connection to run `run`'s socket, or -1. */
static int
client_of(const char *run)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s/agent.sock", base, run);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int
client(void)
{
    return client_of("r0");
}

/* Reads one line (or up to EOF) within 10 s; returns its length, -1 on timeout/error. */
static int
read_line(int fd, char *out, size_t cap)
{
    size_t got = 0;

    while (got + 1 < cap) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t n;

        if (poll(&p, 1, 10000) <= 0)
            return -1;
        n = read(fd, out + got, 1);
        if (n <= 0)
            break;
        if (out[got++] == '\n')
            break;
    }
    out[got] = '\0';
    return (int)got;
}

static int
request(int fd, const char *line, char *reply, size_t cap)
{
    if (ocra_write_all(fd, line, strlen(line)) < 0)
        return -1;
    return read_line(fd, reply, cap);
}

static void
test_server_answers_checks_and_reports(void)
{
    static const char two[] = "{\"type\":\"started\"," HEAD ",\"pid\":9}\n"
                              "{\"type\":\"completed\"," HEAD ",\"duration_ms\":7,\"signal\":9}\n";
    struct ocra_agentd *d = server(0, 0, 0);
    struct ocra_agentd_stats st;
    char reply[OCRA_AGENTD_REPLY_MAX];
    int fd;

    if (!d)
        OCRA_TEST_SKIP("cannot start a server in /tmp");
    fd = client();
    CHECK(fd >= 0);
    request(fd, "{\"type\":\"check\"," HEAD "}\n", reply, sizeof(reply));
    CHECK_STR(reply, "{\"v\":1,\"ok\":true,\"status\":\"current\",\"heartbeat_s\":10}\n");
    CHECK_INT(rec.checks, 1);
    CHECK_INT(rec.peer.uid, getuid());
    CHECK_INT(rec.peer.pid, getpid());
    CHECK_STR(rec.run, "r0");
    CHECK_INT(rec.peer.replica, 0);
    /* Two requests in one write: each gets its reply, in order. */
    CHECK_INT(ocra_write_all(fd, two, strlen(two)), 0);
    read_line(fd, reply, sizeof(reply));
    CHECK_STR(reply, "{\"v\":1,\"ok\":true}\n");
    read_line(fd, reply, sizeof(reply));
    CHECK_STR(reply, "{\"v\":1,\"ok\":true}\n");
    pthread_mutex_lock(&rec.mu);
    CHECK_INT(rec.reports, 2);
    CHECK_INT(rec.last.type, OCRA_AGENTD_COMPLETED);
    CHECK_INT(rec.last.signal, 9);
    pthread_mutex_unlock(&rec.mu);
    close(fd);
    fd = client();
    request(fd,
            "{\"type\":\"check\",\"v\":1,\"event\":\"" EVENT "\",\"model\":\"bert\","
            "\"version\":\"1.0.0\",\"instance\":\"x\",\"time_ms\":1}\n",
            reply, sizeof(reply));
    CHECK_STR(reply, "{\"v\":1,\"ok\":true,\"status\":\"superseded\",\"heartbeat_s\":10,"
                     "\"current\":\"1.0.1\"}\n");
    rec.fail_check = 1;
    request(fd, "{\"type\":\"check\"," HEAD "}\n", reply, sizeof(reply));
    CHECK_STR(reply, "{\"v\":1,\"ok\":false,\"error\":\"the daemon cannot answer now\"}\n");
    close(fd);
    ocra_agentd_stats_get(d, &st);
    CHECK_INT(st.requests, 5);
    CHECK_INT(st.rejected, 0);
    server_done(d);
}

static void
test_server_closes_after_garbage_and_long_lines(void)
{
    struct ocra_agentd *d = server(0, 0, 0);
    char reply[OCRA_AGENTD_REPLY_MAX], big[OCRA_AGENTD_LINE_MAX + 10];
    struct ocra_agentd_stats st;
    int fd;

    if (!d)
        OCRA_TEST_SKIP("cannot start a server in /tmp");
    fd = client();
    request(fd, "\x01\x02{{{\n{\"type\":\"check\"," HEAD "}\n", reply, sizeof(reply));
    CHECK(strncmp(reply, "{\"v\":1,\"ok\":false,\"error\":\"not JSON: line 1", 41) == 0);
    CHECK_INT(read_line(fd, reply, sizeof(reply)), 0); /* closed: the check was not served */
    CHECK_INT(rec.checks, 0);
    close(fd);
    fd = client();
    memset(big, 'x', sizeof(big));
    CHECK_INT(ocra_write_all(fd, big, sizeof(big)), 0);
    read_line(fd, reply, sizeof(reply));
    CHECK(strstr(reply, "line too long") != NULL);
    CHECK_INT(read_line(fd, reply, sizeof(reply)), 0);
    close(fd);
    ocra_agentd_stats_get(d, &st);
    CHECK_INT(st.rejected, 2);
    server_done(d);
}

/* A workload speaks for its own run only: on run r0's socket (EVENT, replica 0), a valid
 * request naming another event (run "r1"'s, whose id is public) is refused and its connection
 * closed, the callbacks never see it; r1's own requests on r1's socket reach them as r1's. */
static void
test_run_socket_refuses_other_events(void)
{
#define OTHER                                                                                      \
    "\"v\":1,\"event\":\"ain:0:0x40:0\",\"model\":\"bert\",\"version\":\"1.0.1\","                 \
    "\"instance\":\"abc123\",\"time_ms\":1795000000000"
    static const char *const forged[] = {
        "{\"type\":\"heartbeat\"," OTHER ",\"uptime_ms\":1,\"load\":1000000}\n",
        "{\"type\":\"completed\"," OTHER ",\"duration_ms\":1,\"exit_code\":0}\n",
        "{\"type\":\"started\"," OTHER ",\"pid\":1}\n",
        "{\"type\":\"check\"," OTHER "}\n",
    };
    struct ocra_agentd *d = server(0, 0, 0);
    struct ocra_agentd_stats st;
    struct ocra_err err = {0};
    char reply[OCRA_AGENTD_REPLY_MAX], *dir = NULL;
    int fd;

    if (!d)
        OCRA_TEST_SKIP("cannot start a server in /tmp");
    CHECK_INT(ocra_agentd_run_add(d, "r1", "ain:0:0x40:0", 1, &dir, &err), 0);
    free(dir);
    for (size_t i = 0; i < OCRA_ARRAY_LEN(forged); i++) {
        fd = client();
        CHECK(fd >= 0);
        request(fd, forged[i], reply, sizeof(reply));
        CHECK_STR(reply, "{\"v\":1,\"ok\":false,\"error\":\"this socket speaks for its own run's "
                         "event only\"}\n");
        CHECK_INT(read_line(fd, reply, sizeof(reply)), 0); /* closed */
        close(fd);
    }
    CHECK_INT(reports(), 0);
    CHECK_INT(rec.checks, 0);
    /* the same requests on r1's own socket are r1's */
    fd = client_of("r1");
    request(fd, forged[0], reply, sizeof(reply));
    CHECK_STR(reply, "{\"v\":1,\"ok\":true}\n");
    close(fd);
    pthread_mutex_lock(&rec.mu);
    CHECK_INT(rec.reports, 1);
    CHECK_STR(rec.last.event, "ain:0:0x40:0");
    CHECK_INT(rec.last.load, 1000000);
    CHECK_STR(rec.run, "r1");
    CHECK_INT(rec.peer.replica, 1);
    pthread_mutex_unlock(&rec.mu);
    ocra_agentd_stats_get(d, &st);
    CHECK_INT(st.forged, OCRA_ARRAY_LEN(forged));
    CHECK_INT(st.requests, 1);
    server_done(d);
}

/* One run cannot take the others' connections: over run_conns its own are closed at once,
 * while another run is still served; max_conns bounds them all. */
static void
test_server_bounds_connections(void)
{
    static const char check1[] =
        "{\"type\":\"check\",\"v\":1,\"event\":\"ain:0:0x40:0\",\"model\":\"bert\","
        "\"version\":\"1.0.1\",\"instance\":\"x\",\"time_ms\":1}\n";
    struct ocra_agentd *d = server(5, 2, 300);
    char reply[OCRA_AGENTD_REPLY_MAX], *dir = NULL;
    struct ocra_agentd_stats st;
    struct ocra_err err = {0};
    int fds[8], n = 0;

    if (!d)
        OCRA_TEST_SKIP("cannot start a server in /tmp");
    CHECK_INT(ocra_agentd_run_add(d, "r1", "ain:0:0x40:0", 1, &dir, &err), 0);
    free(dir);
    CHECK_INT(ocra_agentd_run_add(d, "r2", "ain:0:0x41:0", 0, &dir, &err), 0);
    free(dir);
    fds[n++] = client(); /* r0's first, a */
    fds[n++] = client(); /* r0's second, b */
    /* a sends half a line and stalls; b is still served */
    CHECK_INT(ocra_write_all(fds[0], "{\"type\":\"che", 12), 0);
    request(fds[1], "{\"type\":\"check\"," HEAD "}\n", reply, sizeof(reply));
    CHECK(strstr(reply, "\"status\":\"current\"") != NULL);
    fds[n++] = client(); /* a third on r0, over run_conns 2: closed at once */
    CHECK_INT(read_line(fds[2], reply, sizeof(reply)), 0);
    /* r1 is still served while r0 holds its two */
    fds[n++] = client_of("r1");
    request(fds[3], check1, reply, sizeof(reply));
    CHECK(strstr(reply, "\"status\":\"current\"") != NULL);
    fds[n++] = client_of("r1"); /* 4 open in all */
    fds[n++] = client_of("r2"); /* 5: max_conns */
    fds[n++] = client_of("r2"); /* r2's second, but over max_conns 5: closed at once */
    CHECK_INT(read_line(fds[6], reply, sizeof(reply)), 0);
    /* a's idle deadline passes: closed without a reply */
    CHECK_INT(read_line(fds[0], reply, sizeof(reply)), 0);
    ocra_agentd_stats_get(d, &st);
    CHECK_INT(st.refused, 2);
    CHECK(st.timeouts >= 1);
    for (int i = 0; i < n; i++)
        close(fds[i]);
    server_done(d);
}

static ino_t
ino_of(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? st.st_ino : 0;
}

/* A run's directory and socket: modes, idempotent add, a name taken by another run, removal
 * (socket and directory gone, its connections closed); a stop keeps the directory, and the
 * next server listens in the same one (a container's bind mount reaches it again). */
static void
test_run_add_remove_and_restart(void)
{
    struct ocra_agentd_options opt = {0};
    struct ocra_agentd *d = server(0, 0, 0), *d2 = NULL;
    struct ocra_err err = {0};
    char path[256], dir0[128], *dir = NULL, reply[OCRA_AGENTD_REPLY_MAX];
    struct stat st;
    ino_t ino;
    int fd;

    if (!d)
        OCRA_TEST_SKIP("cannot start a server in /tmp");
    snprintf(dir0, sizeof(dir0), "%s/r0", base);
    snprintf(path, sizeof(path), "%s/agent.sock", dir0);
    CHECK_INT(stat(path, &st), 0);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK_INT(st.st_mode & 07777, 0660);
    CHECK_INT(stat(dir0, &st), 0);
    CHECK_INT(st.st_mode & 07777, 0750);
    CHECK_INT(stat(base, &st), 0);
    CHECK_INT(st.st_mode & 07777, 0700); /* the workloads see their run's directory only */
    ino = ino_of(dir0);
    CHECK_INT(ocra_agentd_run_add(d, "r0", EVENT, 0, &dir, &err), 0); /* again: the same */
    CHECK_STR(dir, dir0);
    free(dir);
    dir = NULL;
    CHECK_INT(ocra_agentd_run_add(d, "r0", EVENT, 1, &dir, &err), -1);
    CHECK_INT(err.code, EEXIST);
    CHECK_INT(ocra_agentd_run_add(d, "r0", "ain:0:0x40:0", 0, &dir, &err), -1);
    CHECK_INT(err.code, EEXIST);
    CHECK_INT(ocra_agentd_run_add(d, "../x", EVENT, 0, &dir, &err), -1);
    CHECK_INT(err.code, EINVAL);
    CHECK_INT(ocra_agentd_run_add(d, ".x", EVENT, 0, &dir, &err), -1);
    CHECK_INT(err.code, EINVAL);
    CHECK_INT(ocra_agentd_run_add(d, "x", "bad event", 0, &dir, &err), -1);
    CHECK_INT(err.code, EINVAL);
    /* stop: the socket goes, the directory stays; a new server serves it in the same one */
    ocra_agentd_stop(d);
    d = NULL;
    CHECK(stat(path, &st) < 0 && errno == ENOENT);
    CHECK_INT(ino_of(dir0), ino);
    opt.dir = base;
    CHECK_INT(ocra_agentd_start(&opt, &cbs, &d, &err), 0);
    CHECK_INT(ocra_agentd_run_add(d, "r0", EVENT, 0, &dir, &err), 0);
    free(dir);
    dir = NULL;
    CHECK_INT(ino_of(dir0), ino);
    fd = client();
    CHECK(fd >= 0);
    request(fd, "{\"type\":\"check\"," HEAD "}\n", reply, sizeof(reply));
    CHECK(strstr(reply, "\"status\":\"current\"") != NULL);
    /* a live socket of another server is not replaced */
    CHECK_INT(ocra_agentd_start(&opt, &cbs, &d2, &err), 0);
    CHECK_INT(ocra_agentd_run_add(d2, "r0", EVENT, 0, &dir, &err), -1);
    CHECK_INT(err.code, EADDRINUSE);
    /* removal: the socket and the directory go, the open connection is closed */
    ocra_agentd_run_remove(d, "r0");
    CHECK(stat(dir0, &st) < 0 && errno == ENOENT);
    CHECK_INT(read_line(fd, reply, sizeof(reply)), 0);
    close(fd);
    CHECK_INT(client(), -1);
    ocra_agentd_run_remove(d, "r0"); /* unknown now: nothing */
    /* a run that ended after a restart, before it was served again: its directory and stale
     * socket go; a live socket (another server's run) is left alone */
    CHECK_INT(ocra_agentd_run_add(d2, "r9", EVENT, 0, &dir, &err), 0);
    free(dir);
    dir = NULL;
    ocra_agentd_run_remove(d, "r9");
    snprintf(path, sizeof(path), "%s/r9/agent.sock", base);
    CHECK_INT(stat(path, &st), 0);
    ocra_agentd_stop(d2); /* r9's directory stays, its socket goes */
    {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int s = socket(AF_UNIX, SOCK_STREAM, 0);

        snprintf(sa.sun_path, sizeof(sa.sun_path), "%.100s", path);
        CHECK_INT(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0); /* as a killed server's */
        close(s);
    }
    snprintf(path, sizeof(path), "%s/r9", base);
    CHECK_INT(stat(path, &st), 0);
    ocra_agentd_run_remove(d, "r9");
    CHECK(stat(path, &st) < 0 && errno == ENOENT);
    CHECK_INT(ocra_agentd_start(&opt, &cbs, &d2, &err), 0);
    snprintf(path, sizeof(path), "%s/agent.sock", dir0);
    /* the name is free again, for another event */
    CHECK_INT(ocra_agentd_run_add(d, "r0", "ain:0:0x40:0", 0, &dir, &err), 0);
    free(dir);
    dir = NULL;
    ocra_agentd_stop(d);
    /* a stale socket (a server that died without stopping) is replaced; a file is not */
    {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int s = socket(AF_UNIX, SOCK_STREAM, 0);

        snprintf(sa.sun_path, sizeof(sa.sun_path), "%.100s", path);
        CHECK_INT(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
        close(s);
    }
    CHECK_INT(ocra_agentd_run_add(d2, "r0", EVENT, 0, &dir, &err), 0);
    free(dir);
    dir = NULL;
    ocra_agentd_stop(d2);
    CHECK_INT(ocra_file_write_atomic(path, "x", 1, 0644, &err), 0);
    CHECK_INT(ocra_agentd_start(&opt, &cbs, &d2, &err), 0);
    CHECK_INT(ocra_agentd_run_add(d2, "r0", EVENT, 0, &dir, &err), -1); /* left alone */
    CHECK_INT(err.code, EEXIST);
    ocra_agentd_stop(d2);
    snprintf(path, sizeof(path), "rm -rf %s", tmpdir);
    (void)!system(path);
}

/* Many runs, one poll set: 500 sockets served at once (the daemon has one per replica), each
 * speaking for its own event only; all removed again. */
static void
test_many_runs_are_served(void)
{
    struct ocra_agentd *d = server(0, 0, 0);
    struct ocra_agentd_stats st;
    struct ocra_err err = {0};
    char name[32], event[32], line[512], reply[OCRA_AGENTD_REPLY_MAX], *dir = NULL;
    int added = 0, served = 0;

    if (!d)
        OCRA_TEST_SKIP("cannot start a server in /tmp");
    for (int i = 1; i <= 500; i++) {
        snprintf(name, sizeof(name), "run%d", i);
        snprintf(event, sizeof(event), "ain:0:0x%x:0", i);
        if (ocra_agentd_run_add(d, name, event, i % 7, &dir, &err) == 0)
            added++;
        free(dir);
        dir = NULL;
    }
    CHECK_INT(added, 500);
    for (int i = 1; i <= 500; i += 37) {
        int fd;

        snprintf(name, sizeof(name), "run%d", i);
        snprintf(line, sizeof(line),
                 "{\"type\":\"heartbeat\",\"v\":1,\"event\":\"ain:0:0x%x:0\",\"model\":\"bert\","
                 "\"version\":\"1\",\"instance\":\"x\",\"time_ms\":1,\"uptime_ms\":1}\n",
                 i);
        fd = client_of(name);
        request(fd, line, reply, sizeof(reply));
        served += strcmp(reply, "{\"v\":1,\"ok\":true}\n") == 0;
        pthread_mutex_lock(&rec.mu);
        CHECK_INT(rec.peer.replica, i % 7);
        CHECK_STR(rec.run, name);
        pthread_mutex_unlock(&rec.mu);
        close(fd);
    }
    CHECK_INT(served, 14);
    for (int i = 1; i <= 500; i++) {
        snprintf(name, sizeof(name), "run%d", i);
        ocra_agentd_run_remove(d, name);
    }
    CHECK_INT(client_of("run1"), -1);
    ocra_agentd_stats_get(d, &st);
    CHECK_INT(st.forged, 0);
    server_done(d);
}

static void
test_start_checks_its_directory(void)
{
    struct ocra_agentd_options opt = {0};
    struct ocra_agentd *d = NULL;
    struct ocra_err err = {0};
    char dir[256];
    struct stat st;

    snprintf(tmpdir, sizeof(tmpdir), "/tmp/ocra-agentd.XXXXXX");
    if (!mkdtemp(tmpdir))
        OCRA_TEST_SKIP("cannot make a directory in /tmp");
    opt.dir = "relative/dir";
    CHECK_INT(ocra_agentd_start(&opt, &cbs, &d, &err), -1);
    CHECK_INT(err.code, EINVAL);
    opt.dir = "//";
    CHECK_INT(ocra_agentd_start(&opt, &cbs, &d, &err), -1);
    CHECK_INT(err.code, EINVAL);
    /* a run's socket would not fit a unix socket address */
    snprintf(dir, sizeof(dir), "%s/%s", tmpdir,
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    opt.dir = dir;
    CHECK_INT(ocra_agentd_start(&opt, &cbs, &d, &err), -1);
    CHECK_INT(err.code, ENAMETOOLONG);
    opt.name_max = 8;
    snprintf(dir, sizeof(dir), "%s/run", tmpdir);
    CHECK_INT(ocra_agentd_start(&opt, &cbs, &d, &err), 0);
    {
        char *rd = NULL;

        CHECK_INT(ocra_agentd_run_add(d, "ocra-123456789", EVENT, 0, &rd, &err), -1); /* > 8 */
        CHECK_INT(err.code, EINVAL);
        free(rd);
    }
    ocra_agentd_stop(d);
    d = NULL;
    opt.name_max = 0;
    /* An existing directory others can write is refused and left as it is. */
    snprintf(dir, sizeof(dir), "%s/shared", tmpdir);
    CHECK_INT(mkdir(dir, 0777), 0);
    CHECK_INT(chmod(dir, 01777), 0);
    opt.dir = dir;
    CHECK_INT(ocra_agentd_start(&opt, &cbs, &d, &err), -1);
    CHECK_INT(err.code, EACCES);
    CHECK_INT(stat(dir, &st), 0);
    CHECK_INT(st.st_mode & 07777, 01777);
    snprintf(dir, sizeof(dir), "rm -rf %s", tmpdir);
    (void)!system(dir);
}

/* ocra_agentd_dir_check says what ocra_agentd_start would refuse, and creates nothing. */
static void
test_dir_check_refuses_what_start_would(void)
{
    struct ocra_agentd_options opt = {0};
    struct ocra_err err = {0};
    char dir[256], top[64];
    struct stat st;
    int fd;

    snprintf(top, sizeof(top), "/tmp/ocra-agentd.XXXXXX");
    if (!mkdtemp(top))
        OCRA_TEST_SKIP("cannot make a directory in /tmp");
    opt.dir = "run"; /* relative: what a relative config path used to leave */
    CHECK_INT(ocra_agentd_dir_check(&opt, &err), -1);
    CHECK_INT(err.code, EINVAL);
    snprintf(dir, sizeof(dir), "%s/a/b/run", top); /* missing, creatable */
    opt.dir = dir;
    CHECK_INT(ocra_agentd_dir_check(&opt, &err), 0);
    snprintf(dir, sizeof(dir), "%s/a", top);
    CHECK(stat(dir, &st) < 0); /* nothing created */
    snprintf(dir, sizeof(dir), "%s/file", top);
    fd = open(dir, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    close(fd);
    snprintf(dir, sizeof(dir), "%s/file/run", top); /* under a file */
    CHECK_INT(ocra_agentd_dir_check(&opt, &err), -1);
    CHECK_INT(err.code, ENOTDIR);
    CHECK(strstr(err.msg, "is not a directory") != NULL);
    snprintf(dir, sizeof(dir), "%s/shared", top); /* shared with others */
    CHECK_INT(mkdir(dir, 0777), 0);
    CHECK_INT(chmod(dir, 01777), 0);
    CHECK_INT(ocra_agentd_dir_check(&opt, &err), -1);
    CHECK_INT(err.code, EACCES);
    CHECK_INT(chmod(dir, 0700), 0); /* owned, not shared: usable */
    CHECK_INT(ocra_agentd_dir_check(&opt, &err), 0);
    snprintf(dir, sizeof(dir), "rm -rf %s", top);
    (void)!system(dir);
}

OCRA_TEST_MAIN(OCRA_TEST(test_parse_valid_messages), OCRA_TEST(test_parse_rejects_hostile_lines),
               OCRA_TEST(test_parse_bounds), OCRA_TEST(test_replies_stay_within_bounds),
               OCRA_TEST(test_server_answers_checks_and_reports),
               OCRA_TEST(test_server_closes_after_garbage_and_long_lines),
               OCRA_TEST(test_run_socket_refuses_other_events),
               OCRA_TEST(test_server_bounds_connections),
               OCRA_TEST(test_run_add_remove_and_restart), OCRA_TEST(test_many_runs_are_served),
               OCRA_TEST(test_start_checks_its_directory),
               OCRA_TEST(test_dir_check_refuses_what_start_would))
