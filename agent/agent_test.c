/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agent_test: the agent's reply parser against valid and hostile replies, and the request
 * line builder's escaping and bound (agent_proto.c, the code the static agent runs).
 */
#include "agent_proto.h"
#include "ocra_test.h"

static int
parse(const char *text, struct ocra_agent_reply *r)
{
    return ocra_agent_reply_parse(text, strlen(text), r);
}

static void
test_reply_valid(void)
{
    struct ocra_agent_reply r;

    CHECK_INT(parse("{\"v\":1,\"ok\":true,\"status\":\"current\",\"heartbeat_s\":10}", &r), 0);
    CHECK(r.ok);
    CHECK_INT(r.status, OCRA_AGENT_CURRENT);
    CHECK_INT(r.heartbeat_s, 10);
    CHECK_INT(parse(" { \"status\" : \"superseded\" , \"ok\" : true, \"current\":\"1.0.1\","
                    "\"x\":null,\"y\":false,\"z\":\"\\u0041\\n\"} ",
                    &r),
              0);
    CHECK_INT(r.status, OCRA_AGENT_SUPERSEDED);
    CHECK_STR(r.current, "1.0.1");
    CHECK_INT(parse("{\"v\":1,\"ok\":false,\"error\":\"bad \\\"x\\\" \\u00e9\xc3\xa9\"}", &r), 0);
    CHECK(!r.ok);
    CHECK_STR(r.error, "bad \"x\" ???"); /* non-ASCII never reaches the terminal */
    CHECK_INT(parse("{\"ok\":false,\"error\":\"a\\nb\\tc\\u001b[2Jd\"}", &r), 0);
    CHECK_STR(r.error, "a?b?c?[2Jd"); /* no line or escape sequence injected on stderr */
    CHECK_INT(parse("{\"status\":\"rebooting\",\"ok\":true}", &r), 0);
    CHECK_INT(r.status, OCRA_AGENT_NO_STATUS);
    CHECK_INT(parse("{}", &r), 0);
    CHECK(!r.ok);
}

static void
test_reply_hostile(void)
{
    static const char *const bad[] = {
        "",
        "[]",
        "{",
        "{\"ok\":true",
        "{\"ok\":true}x",
        "{\"ok\":true}{}",
        "{\"ok\":{\"a\":1}}",
        "{\"ok\":[true]}",
        "{\"heartbeat_s\":1.5}",
        "{\"heartbeat_s\":1e3}",
        "{\"heartbeat_s\":-1}",
        "{\"heartbeat_s\":99999999999999999999}",
        "{\"status\":\"cur\nrent\"}",
        "{\"status\":\"\\x41\"}",
        "{\"status\":\"\\u00g1\"}",
        "{\"status\":\"\\u00",
        "{\"status\":\"abc}",
        "{ok:true}",
        "{\"ok\" true}",
        "{\"ok\":tru}",
        "{\"ok\":true,}",
        "{,}",
    };
    struct ocra_agent_reply r;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(bad[i], &r) != -1) {
            fprintf(stderr, "  accepted: %s\n", bad[i]);
            CHECK(0);
        }
    }
    /* The length is the bound, not a NUL: bytes past it are never read. */
    CHECK_INT(ocra_agent_reply_parse("{\"ok\":true}garbage", 11, &r), 0);
    CHECK_INT(ocra_agent_reply_parse("{\"ok\":true}", 10, &r), -1);
}

static void
test_reply_cuts_long_strings(void)
{
    char text[900], longv[200];
    struct ocra_agent_reply r;

    memset(longv, '9', sizeof(longv) - 1);
    longv[sizeof(longv) - 1] = '\0';
    snprintf(text, sizeof(text),
             "{\"ok\":true,\"status\":\"superseded\",\"current\":\"%s\","
             "\"error\":\"%s%s%s\"}",
             longv, longv, longv, longv);
    CHECK_INT(parse(text, &r), 0);
    CHECK_STR(r.current, ""); /* a version that does not fit is no version */
    CHECK_INT(strlen(r.error), sizeof(r.error) - 1);
}

static void
test_line_escapes_and_bounds(void)
{
    struct ocra_agent_line l = {0};
    char big[3000];

    ocra_agent_line_printf(&l, "{\"v\":%d", 1);
    ocra_agent_line_str(&l, "event", "a\"b\\c\n\x01\xff");
    ocra_agent_line_printf(&l, "}\n");
    CHECK(!l.full);
    CHECK_STR(l.buf, "{\"v\":1,\"event\":\"a\\\"b\\\\c\\u000a\\u0001\\u00ff\"}\n");
    CHECK_INT(l.n, strlen(l.buf));
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ocra_agent_line_str(&l, "host", big);
    CHECK(l.full);
    CHECK(l.n < sizeof(l.buf));
    ocra_agent_line_printf(&l, "more");
    CHECK(l.full && l.n < sizeof(l.buf));
}

static void
test_load_parse(void)
{
    static const char *const bad[] = {
        "",
        " \n",
        "-1",
        "+1",
        "01",
        "1.5",
        "1e3",
        "0x10",
        "1 2",
        "abc",
        "1000000001",
        "99999999999999999999",
        "\x00"
        "1",
        "1\x00",
    };
    long long load = -7;

    CHECK_INT(ocra_agent_load_parse("6", 1, &load), 0);
    CHECK_INT(load, 6);
    CHECK_INT(ocra_agent_load_parse(" 0\n", 3, &load), 0);
    CHECK_INT(load, 0);
    CHECK_INT(ocra_agent_load_parse("\t1000000000\r\n", 13, &load), 0);
    CHECK_INT(load, 1000000000LL);
    /* The length is the bound: "12" read as 1 byte is 1. */
    CHECK_INT(ocra_agent_load_parse("12", 1, &load), 0);
    CHECK_INT(load, 1);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t len = strlen(bad[i]) + (i >= 12 ? 1 : 0); /* the last two hold a NUL */

        load = -7;
        if (ocra_agent_load_parse(bad[i], len, &load) != -1 || load != -7) {
            fprintf(stderr, "  accepted load: case %zu\n", i);
            CHECK(0);
        }
    }
}

OCRA_TEST_MAIN(OCRA_TEST(test_reply_valid), OCRA_TEST(test_load_parse),
               OCRA_TEST(test_reply_hostile), OCRA_TEST(test_reply_cuts_long_strings),
               OCRA_TEST(test_line_escapes_and_bounds))
