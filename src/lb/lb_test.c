/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lb_test: the Runtime API command builder (names that would smuggle a second command
 * refused), the success check of replies, the `show stat` parser on HAProxy 2.6's own reply
 * and on hostile ones, the frontends file, the generated configuration; then, against a real
 * HAProxy (skipped when /usr/sbin/haproxy is missing), a frontend port handed out and kept
 * across a reopen that adopts the running HAProxy, a server enabled only once its address
 * accepts connections (its health checks on), drained and deleted, the same HAProxy driven by
 * a handle attached to its admin socket (and not stopped by it), and HAProxy stopped by its
 * pid.
 */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "lb/lb.h"
#include "ocra_test.h"

#define HAPROXY "/usr/sbin/haproxy"

static void
test_cmd_builds_each_op(void)
{
    struct ocra_err err = {0};
    char buf[256];

    CHECK_INT(ocra_lb_cmd(buf, sizeof(buf), OCRA_LB_ADD, "ocra_18000", "r2", "127.0.0.1", 18402,
                          1000, &err),
              0);
    CHECK_STR(buf, "add server ocra_18000/r2 127.0.0.1:18402 check inter 1000");
    CHECK_INT(ocra_lb_cmd(buf, sizeof(buf), OCRA_LB_ADD, "ocra_1", "r0", "::1", 80, 500, &err), 0);
    CHECK_STR(buf, "add server ocra_1/r0 [::1]:80 check inter 500");
    CHECK_INT(ocra_lb_cmd(buf, sizeof(buf), OCRA_LB_HEALTH, "ocra_1", "r0", NULL, 0, 0, &err), 0);
    CHECK_STR(buf, "enable health ocra_1/r0");
    CHECK_INT(ocra_lb_cmd(buf, sizeof(buf), OCRA_LB_ENABLE, "ocra_1", "r0", NULL, 0, 0, &err), 0);
    CHECK_STR(buf, "enable server ocra_1/r0");
    CHECK_INT(ocra_lb_cmd(buf, sizeof(buf), OCRA_LB_DRAIN, "ocra_1", "r0", NULL, 0, 0, &err), 0);
    CHECK_STR(buf, "set server ocra_1/r0 state drain");
    CHECK_INT(ocra_lb_cmd(buf, sizeof(buf), OCRA_LB_MAINT, "ocra_1", "r0", NULL, 0, 0, &err), 0);
    CHECK_STR(buf, "set server ocra_1/r0 state maint");
    CHECK_INT(ocra_lb_cmd(buf, sizeof(buf), OCRA_LB_DEL, "ocra_1", "r0", NULL, 0, 0, &err), 0);
    CHECK_STR(buf, "del server ocra_1/r0");
}

static void
test_cmd_refuses_bad_parts(void)
{
    static const char *const bad_names[] = {"",
                                            "a b",
                                            "a;b",
                                            "a\nshutdown sessions",
                                            "a/b",
                                            "0123456789012345678901234567890123456789012345678901"
                                            "234567890123"};
    struct ocra_err err = {0};
    char buf[256];

    for (size_t i = 0; i < OCRA_ARRAY_LEN(bad_names); i++) {
        memset(&err, 0, sizeof(err));
        CHECK_INT(ocra_lb_cmd(buf, sizeof(buf), OCRA_LB_DEL, bad_names[i], "r1", NULL, 0, 0, &err),
                  -1);
        CHECK_INT(err.code, EINVAL);
        CHECK(strstr(err.msg, "section name") != NULL);
        CHECK_INT(
            ocra_lb_cmd(buf, sizeof(buf), OCRA_LB_DEL, "ocra_1", bad_names[i], NULL, 0, 0, &err),
            -1);
    }
    CHECK_INT(ocra_lb_cmd(buf, sizeof(buf), OCRA_LB_ADD, "s", "r1", "localhost", 80, 1000, &err),
              -1);
    CHECK(strstr(err.msg, "IP literal") != NULL);
    CHECK_INT(ocra_lb_cmd(buf, sizeof(buf), OCRA_LB_ADD, "s", "r1", "1.2.3.4", 0, 1000, &err), -1);
    CHECK_INT(ocra_lb_cmd(buf, sizeof(buf), OCRA_LB_ADD, "s", "r1", "1.2.3.4", 80, 10, &err), -1);
    CHECK_INT(ocra_lb_cmd(buf, 10, OCRA_LB_DEL, "ocra_1", "r1", NULL, 0, 0, &err), -1);
    CHECK_INT(err.code, ENOSPC);
}

static void
test_reply_failed(void)
{
    CHECK(!ocra_lb_reply_failed(""));
    CHECK(!ocra_lb_reply_failed("\n"));
    CHECK(!ocra_lb_reply_failed("New server registered.\n\n"));
    CHECK(!ocra_lb_reply_failed("Server deleted.\n"));
    CHECK(ocra_lb_reply_failed("No such server.\n"));
    CHECK(ocra_lb_reply_failed("Permission denied\n"));
}

static void
test_stat_parses_haproxy_26(void)
{
    char *text = NULL;
    size_t len = 0, n = 0;
    struct ocra_lb_stat *rows = NULL;
    struct ocra_err err = {0};

    /* the reply as HAProxy 2.6 wrote it (corpus file: the mode byte, then the reply) */
    if (ocra_file_read(OCRA_SOURCE_DIR "/tests/fuzz/corpus/lb_reply/stat_real_2.6", 1 << 20, &text,
                       &len, &err) < 0) {
        CHECK(!"read the recorded reply");
        return;
    }
    CHECK_INT(ocra_lb_stat_parse(text + 1, len - 1, &rows, &n, &err), 0);
    CHECK_INT(n, 3);
    if (n == 3) {
        CHECK_STR(rows[0].server, "FRONTEND");
        CHECK_INT(rows[0].qcur, -1); /* empty for a frontend */
        CHECK_STR(rows[1].section, "be_18901");
        CHECK_STR(rows[1].server, "r1");
        CHECK_STR(rows[1].status, "DRAIN");
        CHECK_INT(rows[1].stot, 3);
        CHECK_INT(rows[1].hrsp_2xx, 3);
        CHECK_INT(rows[1].scur, 0);
        CHECK_STR(rows[2].server, "BACKEND");
    }
    free(rows);
    free(text);
}

static void
test_stat_finds_columns_by_name(void)
{
    static const char reordered[] = "# svname,pxname,status,hrsp_5xx,hrsp_2xx,stot,scur,qcur,x\n"
                                    "r2,ocra_2,UP,1,7,8,3,2,y\r\n";
    struct ocra_lb_stat *rows = NULL;
    struct ocra_err err = {0};
    size_t n = 0;

    CHECK_INT(ocra_lb_stat_parse(reordered, strlen(reordered), &rows, &n, &err), 0);
    CHECK_INT(n, 1);
    if (n == 1) {
        CHECK_STR(rows[0].section, "ocra_2");
        CHECK_STR(rows[0].server, "r2");
        CHECK_INT(rows[0].qcur, 2);
        CHECK_INT(rows[0].scur, 3);
        CHECK_INT(rows[0].stot, 8);
        CHECK_INT(rows[0].hrsp_2xx, 7);
        CHECK_INT(rows[0].hrsp_5xx, 1);
    }
    free(rows);
}

static void
test_stat_refuses_hostile_replies(void)
{
    static const char *const bad[] = {
        "",
        "No such backend.\n",
        "# pxname,svname,qcur\nocra_1,r1,0\n",
        "# pxname,svname,qcur,scur,stot,status,hrsp_2xx,hrsp_5xx\nocra_1,r1,-1,0,0,UP,0,0\n",
        "# pxname,svname,qcur,scur,stot,status,hrsp_2xx,hrsp_5xx\nocra_1,r1\n",
        "# pxname,svname,qcur,scur,stot,status,hrsp_2xx,hrsp_5xx\n"
        "ocra_1,r1_0123456789012345678901234567890123456789012345678901234567890,0,0,0,UP,0,0\n",
        "# pxname,svname,qcur,scur,stot,status,hrsp_2xx,hrsp_5xx\nocra_1,r1,0,99999999999999999999,"
        "0,UP,0,0\n",
    };

    for (size_t i = 0; i < OCRA_ARRAY_LEN(bad); i++) {
        struct ocra_lb_stat *rows = NULL;
        struct ocra_err err = {0};
        size_t n = 0;

        CHECK_INT(ocra_lb_stat_parse(bad[i], strlen(bad[i]), &rows, &n, &err), -1);
        CHECK_INT(err.code, EPROTO);
        CHECK(strstr(err.msg, "show stat") != NULL);
    }
}

static void
test_load_sums_one_events_servers(void)
{
    static const char text[] = "# pxname,svname,qcur,scur,stot,status,hrsp_2xx,hrsp_5xx\n"
                               "ocra_1,FRONTEND,,9,0,OPEN,0,0\n"
                               "ocra_1,ocra-aaa,1,3,0,UP,0,0\n"
                               "ocra_1,ocra-aaa-r1,0,2,0,UP,0,0\n"
                               "ocra_1,ocra-aaab,5,5,0,UP,0,0\n"
                               "ocra_1,ocra-bbb,0,4,0,UP,0,0\n"
                               "ocra_1,BACKEND,1,14,0,UP,0,0\n";
    struct ocra_lb_stat *rows = NULL;
    struct ocra_err err = {0};
    size_t n = 0;

    CHECK_INT(ocra_lb_stat_parse(text, strlen(text), &rows, &n, &err), 0);
    CHECK_INT(ocra_lb_load(rows, n, "ocra-aaa"), 6); /* not ocra-aaab's, nor the totals */
    CHECK_INT(ocra_lb_load(rows, n, "ocra-ccc"), 0);
    free(rows);
}

static void
test_frontends_file(void)
{
    struct ocra_err err = {0};
    char **ids = NULL;
    int *ports = NULL;
    size_t n = 0;

    CHECK_INT(ocra_lb_frontends_parse("18000 evm:1:0xab:0\n\n18003 ain:0:0x3f:1\n", &ports, &ids,
                                      &n, &err),
              0);
    CHECK_INT(n, 2);
    if (n == 2) {
        CHECK_INT(ports[1], 18003);
        CHECK_STR(ids[0], "evm:1:0xab:0");
        free(ids[0]);
        free(ids[1]);
    }
    free(ids);
    free(ports);
    CHECK_INT(ocra_lb_frontends_parse("18000 a\nx b\n", &ports, &ids, &n, &err), -1);
    CHECK(strstr(err.msg, "frontends line 2") != NULL);
    CHECK_INT(ocra_lb_frontends_parse("70000 a\n", &ports, &ids, &n, &err), -1);
    CHECK_INT(ocra_lb_frontends_parse("18000 evm:1 0xab\n", &ports, &ids, &n, &err), 0);
    CHECK_INT(n, 1); /* a model key: "<source> <path>", its blank included */
    if (n == 1) {
        CHECK_STR(ids[0], "evm:1 0xab");
        free(ids[0]);
    }
    free(ids);
    free(ports);
    CHECK_INT(ocra_lb_frontends_parse("18000\n", &ports, &ids, &n, &err), -1);
}

static void
test_config_text_has_one_section_per_port(void)
{
    struct ocra_lb_conf c = {.bind = "127.0.0.1", .port_min = 18000, .port_max = 18002};
    char *t = ocra_lb_config_text(&c, "/tmp/x/admin.sock");

    CHECK(strstr(t, "stats socket /tmp/x/admin.sock mode 600 level admin\n") != NULL);
    CHECK(strstr(t, "listen ocra_18000\n    bind 127.0.0.1:18000\n") != NULL);
    CHECK(strstr(t, "listen ocra_18002\n    bind 127.0.0.1:18002\n") != NULL);
    CHECK(strstr(t, "listen ocra_18003") == NULL);
    free(t);
}

/* ---- against a real HAProxy ------------------------------------------------------------- */

/* A loopback TCP port free now; *fd listens on it when fd is given, else it is closed. */
static int
free_port(int *fd)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int s = socket(AF_INET, SOCK_STREAM, 0), port = 0;

    if (s >= 0 && bind(s, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(s, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    if (fd && port && listen(s, 16) == 0) {
        *fd = s;
        return port;
    }
    close(s);
    return port;
}

static const struct ocra_lb_stat *
row_of(const struct ocra_lb_stat *rows, size_t n, const char *server)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(rows[i].server, server))
            return &rows[i];
    return NULL;
}

static void
test_real_haproxy_lifecycle(void)
{
    char dir[] = "/tmp/ocra-lb-test-XXXXXX";
    struct ocra_lb_conf c = {
        .haproxy = HAPROXY, .socket = "", .bind = "127.0.0.1", .check_inter_ms = 200};
    struct ocra_lb *lb = NULL, *lb2 = NULL;
    struct ocra_lb_stat *rows = NULL;
    struct ocra_err err = {0};
    int port = 0, sport, lfd = -1, lfd2 = -1;
    bool enabled = false, up = false;
    int64_t pid;
    size_t n = 0;

    if (access(HAPROXY, X_OK) < 0)
        OCRA_TEST_SKIP(HAPROXY " is not installed (apt-get install haproxy)");
    if (!mkdtemp(dir)) {
        CHECK(!"mkdtemp");
        return;
    }
    c.dir = dir;
    c.port_min = c.port_max = free_port(NULL);
    lb = ocra_lb_open(&c, &err);
    CHECK(lb != NULL);
    if (!lb) {
        fprintf(stderr, "  %s\n", err.msg);
        return;
    }
    pid = ocra_lb_pid(lb);
    CHECK(pid > 0);
    CHECK_INT(ocra_lb_frontend(lb, "evm:1 0xab", &port, &err), 0);
    CHECK_INT(port, c.port_min);
    CHECK_INT(ocra_lb_frontend(lb, "evm:1 0xcd", &port, &err), -1);
    CHECK_INT(err.code, EAGAIN);

    /* a server whose address is closed is not enabled */
    sport = free_port(NULL);
    CHECK_INT(
        ocra_lb_server_up(lb, c.port_min, "ocra-0123-r1", "127.0.0.1", sport, 300, NULL, &err), -1);
    CHECK_INT(err.code, ETIMEDOUT);
    CHECK_INT(ocra_lb_stat(lb, c.port_min, &rows, &n, &err), 0);
    CHECK(row_of(rows, n, "ocra-0123-r1") &&
          !strcmp(row_of(rows, n, "ocra-0123-r1")->status, "MAINT"));
    free(rows);
    /* one that listens is */
    CHECK_INT(ocra_lb_server_up(lb, c.port_min, "ocra-0123-r2", "127.0.0.1", free_port(&lfd), 5000,
                                &enabled, &err),
              0);
    CHECK(enabled);
    CHECK_INT(ocra_lb_server_up(lb, c.port_min, "ocra-0123-r2", "127.0.0.1", 1, 0, &enabled, &err),
              0);
    CHECK(!enabled); /* enabled already: left as it is */
    CHECK_INT(ocra_lb_stat(lb, c.port_min, &rows, &n, &err), 0);
    CHECK(row_of(rows, n, "ocra-0123-r2") != NULL &&
          strcmp(row_of(rows, n, "ocra-0123-r2")->status, "MAINT") != 0);
    free(rows);
    /* HAProxy's own checks run on it (a dynamic server's start disabled): UP, not "no check" */
    for (int i = 0; i < 100 && !up; i++) {
        CHECK_INT(ocra_lb_stat(lb, c.port_min, &rows, &n, &err), 0);
        up = row_of(rows, n, "ocra-0123-r2") &&
             !strncmp(row_of(rows, n, "ocra-0123-r2")->status, "UP", 2);
        if (!up && i == 99)
            fprintf(stderr, "  status: %s\n",
                    row_of(rows, n, "ocra-0123-r2") ? row_of(rows, n, "ocra-0123-r2")->status
                                                    : "-");
        free(rows);
        if (!up)
            usleep(100000);
    }
    CHECK(up);

    /* a reopen adopts the running HAProxy and keeps the port */
    ocra_lb_close(lb, false);
    lb = NULL;
    lb2 = ocra_lb_open(&c, &err);
    CHECK(lb2 != NULL);
    if (!lb2)
        goto out;
    CHECK_INT(ocra_lb_pid(lb2), pid);
    CHECK_INT(ocra_lb_frontend_find(lb2, "evm:1 0xab"), c.port_min);

    CHECK_INT(ocra_lb_server_down(lb2, "ocra-0123-r2", 2000, &port, &err), 0);
    CHECK_INT(port, c.port_min);
    CHECK_INT(ocra_lb_server_down(lb2, "ocra-0123-r1", 2000, &port, &err), 0);
    CHECK_INT(ocra_lb_stat(lb2, c.port_min, &rows, &n, &err), 0);
    CHECK(row_of(rows, n, "ocra-0123-r1") == NULL && row_of(rows, n, "ocra-0123-r2") == NULL);
    free(rows);
    CHECK_INT(ocra_lb_server_down(lb2, "ocra-0123-r2", 2000, &port, &err), 0); /* gone: fine */
    CHECK_INT(port, 0);
    CHECK_INT(ocra_lb_frontend_release(lb2, "evm:1 0xab", &err), 0);
    CHECK_INT(ocra_lb_frontend_find(lb2, "evm:1 0xab"), 0);

    /* attached to the same HAProxy by its admin socket (an operator's): drives it, never stops
     * it */
    {
        char *sock = ocra_xasprintf("%s/admin.sock", dir), *adir = ocra_xasprintf("%s/a", dir);
        struct ocra_lb_conf ac = c;
        struct ocra_lb *lb3;

        ac.haproxy = "";
        ac.socket = sock;
        ac.dir = adir;
        lb3 = ocra_lb_open(&ac, &err);
        CHECK(lb3 != NULL);
        CHECK_INT(ocra_lb_pid(lb3), 0);
        if (lb3) {
            CHECK_INT(ocra_lb_frontend(lb3, "ain:0 /apps/x", &port, &err), 0);
            CHECK_INT(ocra_lb_server_up(lb3, port, "ocra-4567", "127.0.0.1", free_port(&lfd2), 5000,
                                        &enabled, &err),
                      0);
            CHECK(enabled);
            CHECK_INT(ocra_lb_server_down(lb3, "ocra-4567", 2000, &port, &err), 0);
            CHECK_INT(port, c.port_min);
        }
        ocra_lb_close(lb3, true);
        CHECK_INT(kill((pid_t)pid, 0), 0); /* still running: not ours to stop */
        {
            char *f = ocra_xasprintf("%s/frontends", adir);
            unlink(f);
            free(f);
        }
        rmdir(adir);
        free(adir);
        free(sock);
    }
out:
    ocra_lb_close(lb2, true);
    for (int i = 0; i < 50 && kill((pid_t)pid, 0) == 0; i++)
        usleep(100000);
    CHECK(kill((pid_t)pid, 0) < 0);
    if (lfd >= 0)
        close(lfd);
    if (lfd2 >= 0)
        close(lfd2);
    {
        static const char *const files[] = {"haproxy.cfg", "haproxy.pid", "admin.sock",
                                            "frontends"};
        for (size_t i = 0; i < OCRA_ARRAY_LEN(files); i++) {
            char *p = ocra_xasprintf("%s/%s", dir, files[i]);
            unlink(p);
            free(p);
        }
        rmdir(dir);
    }
}

OCRA_TEST_MAIN(OCRA_TEST(test_cmd_builds_each_op), OCRA_TEST(test_cmd_refuses_bad_parts),
               OCRA_TEST(test_reply_failed), OCRA_TEST(test_stat_parses_haproxy_26),
               OCRA_TEST(test_stat_finds_columns_by_name),
               OCRA_TEST(test_stat_refuses_hostile_replies),
               OCRA_TEST(test_load_sums_one_events_servers), OCRA_TEST(test_frontends_file),
               OCRA_TEST(test_config_text_has_one_section_per_port),
               OCRA_TEST(test_real_haproxy_lifecycle))
