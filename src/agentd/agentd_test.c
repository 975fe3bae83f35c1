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

static struct {
    pthread_mutex_t mu;
    int checks, reports;
    struct ocra_agentd_msg last;
    struct ocra_agentd_peer peer;
    int fail_check;
} rec = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int
cb_check(void *arg, const struct ocra_agentd_msg *m, const struct ocra_agentd_peer *peer,
         struct ocra_agentd_answer *a)
{
    (void)arg;
    pthread_mutex_lock(&rec.mu);
    rec.checks++;
    rec.last = *m;
    rec.peer = *peer;
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
    rec.last = *m;
    rec.peer = *peer;
    pthread_mutex_unlock(&rec.mu);
}

static const struct ocra_agentd_callbacks cbs = {.check = cb_check, .report = cb_report};

static char tmpdir[64];

static struct ocra_agentd *
server(int max_conns, int idle_ms)
{
    struct ocra_agentd_options opt = {.max_conns = max_conns, .idle_ms = idle_ms};
    struct ocra_err err = {0};
    struct ocra_agentd *d = NULL;
    char dir[96];

    snprintf(tmpdir, sizeof(tmpdir), "/tmp/ocra-agentd.XXXXXX");
    if (!mkdtemp(tmpdir))
        return NULL;
    snprintf(dir, sizeof(dir), "%s/run/ocra", tmpdir);
    opt.dir = dir;
    if (ocra_agentd_start(&opt, &cbs, &d, &err) < 0)
        fprintf(stderr, "  start: %s\n", err.msg);
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

static int
client(const struct ocra_agentd *d)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", ocra_agentd_socket_path(d));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
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
    struct ocra_agentd *d = server(0, 0);
    struct ocra_agentd_stats st;
    char reply[OCRA_AGENTD_REPLY_MAX];
    int fd;

    if (!d)
        OCRA_TEST_SKIP("cannot start a server in /tmp");
    fd = client(d);
    CHECK(fd >= 0);
    request(fd, "{\"type\":\"check\"," HEAD "}\n", reply, sizeof(reply));
    CHECK_STR(reply, "{\"v\":1,\"ok\":true,\"status\":\"current\",\"heartbeat_s\":10}\n");
    CHECK_INT(rec.checks, 1);
    CHECK_INT(rec.peer.uid, getuid());
    CHECK_INT(rec.peer.pid, getpid());
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
    fd = client(d);
    request(fd,
            "{\"type\":\"check\",\"v\":1,\"event\":\"e\",\"model\":\"bert\",\"version\":\"1.0.0\","
            "\"instance\":\"x\",\"time_ms\":1}\n",
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
    struct ocra_agentd *d = server(0, 0);
    char reply[OCRA_AGENTD_REPLY_MAX], big[OCRA_AGENTD_LINE_MAX + 10];
    struct ocra_agentd_stats st;
    int fd;

    if (!d)
        OCRA_TEST_SKIP("cannot start a server in /tmp");
    fd = client(d);
    request(fd, "\x01\x02{{{\n{\"type\":\"check\"," HEAD "}\n", reply, sizeof(reply));
    CHECK(strncmp(reply, "{\"v\":1,\"ok\":false,\"error\":\"not JSON: line 1", 41) == 0);
    CHECK_INT(read_line(fd, reply, sizeof(reply)), 0); /* closed: the check was not served */
    CHECK_INT(rec.checks, 0);
    close(fd);
    fd = client(d);
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

static void
test_server_bounds_connections(void)
{
    struct ocra_agentd *d = server(2, 300);
    char reply[OCRA_AGENTD_REPLY_MAX];
    struct ocra_agentd_stats st;
    int a, b, c;

    if (!d)
        OCRA_TEST_SKIP("cannot start a server in /tmp");
    a = client(d);
    b = client(d);
    /* a sends half a line and stalls; b is still served */
    CHECK_INT(ocra_write_all(a, "{\"type\":\"che", 12), 0);
    request(b, "{\"type\":\"check\"," HEAD "}\n", reply, sizeof(reply));
    CHECK(strstr(reply, "\"status\":\"current\"") != NULL);
    c = client(d); /* a third, over max_conns 2: closed at once */
    CHECK_INT(read_line(c, reply, sizeof(reply)), 0);
    /* a's idle deadline passes: closed without a reply */
    CHECK_INT(read_line(a, reply, sizeof(reply)), 0);
    ocra_agentd_stats_get(d, &st);
    CHECK_INT(st.refused, 1);
    CHECK(st.timeouts >= 1);
    close(a);
    close(b);
    close(c);
    server_done(d);
}

static void
test_socket_mode_replacement_and_stop(void)
{
    struct ocra_agentd_options opt = {0};
    struct ocra_agentd *d = server(0, 0), *d2 = NULL;
    struct ocra_err err = {0};
    char dir[96], path[100];
    struct stat st;

    if (!d)
        OCRA_TEST_SKIP("cannot start a server in /tmp");
    snprintf(dir, sizeof(dir), "%s/run/ocra", tmpdir);
    snprintf(path, sizeof(path), "%s", ocra_agentd_socket_path(d));
    CHECK_INT(stat(path, &st), 0);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK_INT(st.st_mode & 07777, 0660);
    CHECK_INT(stat(dir, &st), 0);
    CHECK_INT(st.st_mode & 07777, 0750);
    opt.dir = dir;
    CHECK_INT(ocra_agentd_start(&opt, &cbs, &d2, &err), -1); /* a live one is not replaced */
    CHECK_INT(err.code, EADDRINUSE);
    /* A stale socket: left by a server that died without stopping. */
    {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);

        ocra_agentd_stop(d);
        CHECK(stat(path, &st) < 0 && errno == ENOENT); /* stop removed it */
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        CHECK_INT(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        close(fd);
    }
    CHECK_INT(ocra_agentd_start(&opt, &cbs, &d2, &err), 0);
    ocra_agentd_stop(d2);
    CHECK_INT(ocra_file_write_atomic(path, "x", 1, 0644, &err), 0);
    CHECK_INT(ocra_agentd_start(&opt, &cbs, &d2, &err), -1); /* not a socket: left alone */
    CHECK_INT(err.code, EEXIST);
    opt.dir = "relative/dir";
    CHECK_INT(ocra_agentd_start(&opt, &cbs, &d2, &err), -1);
    CHECK_INT(err.code, EINVAL);
    opt.dir = "//";
    CHECK_INT(ocra_agentd_start(&opt, &cbs, &d2, &err), -1);
    CHECK_INT(err.code, EINVAL);
    /* An existing directory others can write is refused and left as it is. */
    snprintf(dir, sizeof(dir), "%s/shared", tmpdir);
    CHECK_INT(mkdir(dir, 0777), 0);
    CHECK_INT(chmod(dir, 01777), 0);
    opt.dir = dir;
    CHECK_INT(ocra_agentd_start(&opt, &cbs, &d2, &err), -1);
    CHECK_INT(err.code, EACCES);
    CHECK_INT(stat(dir, &st), 0);
    CHECK_INT(st.st_mode & 07777, 01777);
    snprintf(dir, sizeof(dir), "rm -rf %s", tmpdir);
    (void)!system(dir);
}

OCRA_TEST_MAIN(OCRA_TEST(test_parse_valid_messages), OCRA_TEST(test_parse_rejects_hostile_lines),
               OCRA_TEST(test_parse_bounds), OCRA_TEST(test_replies_stay_within_bounds),
               OCRA_TEST(test_server_answers_checks_and_reports),
               OCRA_TEST(test_server_closes_after_garbage_and_long_lines),
               OCRA_TEST(test_server_bounds_connections),
               OCRA_TEST(test_socket_mode_replacement_and_stop))
