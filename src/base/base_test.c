/* SPDX-License-Identifier: Apache-2.0 */
/* base_test.c: unit tests of src/base against published vectors and edge cases. */
#include "base/base.h"
#include "ocra_test.h"

#include <errno.h>
#include <pthread.h>
#include <unistd.h>

static void
test_sha256_matches_fips_vectors(void)
{
    static const struct {
        const char *msg, *hex;
    } v[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    char hex[65];

    for (size_t i = 0; i < OCRA_ARRAY_LEN(v); i++) {
        ocra_sha256_hex(v[i].msg, strlen(v[i].msg), hex);
        CHECK_STR(hex, v[i].hex);
    }
}

static void
test_keccak256_empty_string(void)
{
    uint8_t md[32];
    char hex[65];

    ocra_keccak256("", 0, md);
    ocra_hex_encode(md, sizeof(md), hex);
    CHECK_STR(hex, "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");
}

static void
test_keccak256_matches_ain_vectors(void)
{
    struct ocra_err err = {0};
    json_t *doc = ocra_json_load_file("tests/data/ain/vectors.json", 1 << 20, 0, &err);
    json_t *vecs, *v;
    size_t i;

    CHECK(doc != NULL);
    if (!doc)
        return;
    vecs = json_object_get(doc, "keccak256_vectors");
    CHECK(json_array_size(vecs) >= 3);
    json_array_foreach(vecs, i, v)
    {
        const char *msg = ocra_json_str(v, "message"), *want = ocra_json_str(v, "keccak256");
        uint8_t md[32];
        char hex[67] = "0x";

        ocra_keccak256(msg, strlen(msg), md);
        ocra_hex_encode(md, sizeof(md), hex + 2);
        CHECK_STR(hex, want);
    }
    json_decref(doc);
}

static void
test_keccak256_block_boundaries(void)
{
    /* Lengths around the 136-byte rate exercise the padding in the last and an extra block. */
    static const struct {
        size_t len;
        const char *hex;
    } v[] = {
        {135, "34367dc248bbd832f4e3e69dfaac2f92638bd0bbd18f2912ba4ef454919cf446"},
        {136, "a6c4d403279fe3e0af03729caada8374b5ca54d8065329a3ebcaeb4b60aa386e"},
        {137, "d869f639c7046b4929fc92a4d988a8b22c55fbadb802c0c66ebcd484f1915f39"},
    };
    char buf[200], hex[65];
    uint8_t md[32];

    memset(buf, 'a', sizeof(buf));
    for (size_t i = 0; i < OCRA_ARRAY_LEN(v); i++) {
        ocra_keccak256(buf, v[i].len, md);
        ocra_hex_encode(md, sizeof(md), hex);
        CHECK_STR(hex, v[i].hex);
    }
}

static void
test_hex_round_trip_and_errors(void)
{
    struct ocra_err err = {0};
    uint8_t in[4] = {0x00, 0xab, 0xCD, 0xff}, out[4];
    char hex[9];

    ocra_hex_encode(in, 4, hex);
    CHECK_STR(hex, "00abcdff");
    CHECK_INT(ocra_hex_decode("0x00ABcdff", out, 4, &err), 0);
    CHECK(memcmp(in, out, 4) == 0);
    CHECK_INT(ocra_hex_decode("00abcd", out, 4, &err), -1);
    CHECK_INT(err.code, EINVAL);
    CHECK_INT(ocra_hex_decode("00abcdfg", out, 4, &err), -1);
    CHECK(ocra_hex_is("00abcdff", 8));
    CHECK(!ocra_hex_is("00abcdff0", 8));
    CHECK(!ocra_hex_is("00abcdfz", 8));
}

static void
test_parse_i64_is_checked(void)
{
    struct ocra_err err = {0};
    int64_t v = 0;

    CHECK_INT(ocra_parse_i64("42", 0, 100, &v, &err), 0);
    CHECK_INT(v, 42);
    CHECK_INT(ocra_parse_i64("-5", -10, 10, &v, &err), 0);
    CHECK_INT(v, -5);
    CHECK_INT(ocra_parse_i64("101", 0, 100, &v, &err), -1);
    CHECK_INT(err.code, ERANGE);
    CHECK_INT(ocra_parse_i64("12x", 0, 100, &v, &err), -1);
    CHECK_INT(err.code, EINVAL);
    CHECK_INT(ocra_parse_i64(" 1", 0, 100, &v, &err), -1);
    CHECK_INT(ocra_parse_i64("", 0, 100, &v, &err), -1);
    CHECK_INT(ocra_parse_i64("99999999999999999999", INT64_MIN, INT64_MAX, &v, &err), -1);
    CHECK_INT(err.code, ERANGE);
    CHECK_INT(v, -5); /* untouched on failure */
}

static void
test_parse_u64_rejects_sign(void)
{
    struct ocra_err err = {0};
    uint64_t v = 7;

    CHECK_INT(ocra_parse_u64("-1", UINT64_MAX, &v, &err), -1);
    CHECK_INT(ocra_parse_u64("+1", UINT64_MAX, &v, &err), -1);
    CHECK_INT(ocra_parse_u64("18446744073709551615", UINT64_MAX, &v, &err), 0);
    CHECK(v == UINT64_MAX);
}

static void
test_err_wrap_prefixes_context(void)
{
    struct ocra_err err = {0};

    CHECK_INT(ocra_err_set(&err, EINVAL, "bad %s", "thing"), -1);
    CHECK_INT(ocra_err_wrap(&err, "load %s", "x.yaml"), -1);
    CHECK_STR(err.msg, "load x.yaml: bad thing");
    CHECK_INT(err.code, EINVAL);
    errno = ENOENT;
    ocra_err_sys(&err, "open %s", "/nope");
    CHECK_INT(err.code, ENOENT);
    CHECK_STR(err.msg, "open /nope: No such file or directory");
    CHECK_INT(ocra_err_set(NULL, EINVAL, "ignored"), -1);
}

/* The example a red team quoted: a 256-byte message lost the cause at its tail. */
static void
test_err_keeps_the_cause_of_a_long_message(void)
{
    static const char cause[] =
        "Failed to connect to localhost port 5999 after 0 ms: Couldn't connect to server";
    struct ocra_err err = {0}, copy = {0};
    char url[300], text[OCRA_ERR_MAX + 8];

    memset(url, 'a', sizeof(url) - 1);
    url[sizeof(url) - 1] = '\0';
    ocra_err_set(&err, ECONNREFUSED, "%s", cause);
    ocra_err_wrap(&err, "HEAD http://localhost:5999/v2/x-toolchain/manifests/%s", url);
    ocra_err_wrap(&err, "toolchain");
    CHECK(strlen(err.msg) > 380);
    CHECK(strstr(err.msg, cause) != NULL); /* whole: nothing cut */
    CHECK_STR(ocra_err_cause(&err), cause);
    CHECK(!strncmp(err.msg, "toolchain: HEAD http://localhost:5999/", 38));
    /* cause first for the journal and reasons: "cause (context)" */
    ocra_err_text(&err, text, sizeof(text));
    CHECK(!strncmp(text, cause, strlen(cause)));
    CHECK(!strncmp(text + strlen(cause), " (toolchain: HEAD http://", 25));
    CHECK_INT(text[strlen(text) - 1], ')');
    /* a short form still starts with the cause */
    ocra_err_text(&err, text, 40);
    CHECK_INT((int)strlen(text), 39);
    CHECK(!strncmp(text, cause, 36) && !strcmp(text + 36, "..."));
    ocra_err_copy(&copy, &err);
    CHECK_STR(ocra_err_cause(&copy), cause);
    CHECK_INT(copy.code, ECONNREFUSED);
    /* no context: the message alone */
    ocra_err_set(&err, EINVAL, "bad thing");
    CHECK_STR(ocra_err_text(&err, text, sizeof(text)), "bad thing");
}

/* Context that would not fit gives way; the cause stays whole. */
static void
test_err_wrap_cuts_context_not_cause(void)
{
    struct ocra_err err = {0};
    char big[OCRA_ERR_MAX];

    memset(big, 'c', 3000);
    strcpy(big + 3000, "END");
    ocra_err_set(&err, EIO, "%s", big);
    memset(big, 'x', 1500);
    big[1500] = '\0';
    for (int i = 0; i < 3; i++)
        ocra_err_wrap(&err, "%s", big);
    CHECK_INT((int)strlen(err.msg), OCRA_ERR_MAX - 1);
    CHECK(!strcmp(err.msg + strlen(err.msg) - 3, "END"));
    CHECK_INT((int)strlen(ocra_err_cause(&err)), 3003);
    CHECK(strstr(err.msg, "...: ") != NULL);
}

static void
test_str_cut_keeps_utf8_whole(void)
{
    char s[32] = "ab\xc3\xa9\xc3\xa9xyz"; /* "abééxyz": 9 bytes */

    CHECK_STR(ocra_str_cut(s, 20), "ab\xc3\xa9\xc3\xa9xyz");
    CHECK_STR(ocra_str_cut(s, 7), "ab\xc3\xa9..."); /* not "ab\xc3\xa9\xc3..." */
    CHECK(ocra_utf8_valid(s, strlen(s)));
}

static void
test_buf_grows_and_takes(void)
{
    struct ocra_buf b;
    char *s;

    ocra_buf_init(&b);
    for (int i = 0; i < 1000; i++)
        ocra_buf_printf(&b, "%d,", i % 10);
    CHECK_INT(b.len, 2000);
    ocra_buf_putc(&b, '!');
    CHECK(b.data[2000] == '!' && b.data[2001] == '\0');
    s = ocra_buf_take(&b);
    CHECK(b.data == NULL && b.len == 0);
    CHECK_INT(strlen(s), 2001);
    free(s);
    ocra_buf_init(&b);
    s = ocra_buf_take(&b);
    CHECK_STR(s, "");
    free(s);
}

static void
test_str_escape_quotes_hostile_bytes(void)
{
    char out[64];
    const char hostile[] = "a\"b\\c\n\xff";

    CHECK_STR(ocra_str_escape(hostile, sizeof(hostile) - 1, 64, out, sizeof(out)),
              "\"a\\\"b\\\\c\\x0a\\xff\"");
    CHECK_STR(ocra_str_escape("abcdefghij", 10, 4, out, sizeof(out)), "\"abcd...\"");
}

static void
test_utf8_validation(void)
{
    CHECK(ocra_utf8_valid("h\xc3\xa9llo", 6));
    CHECK(ocra_utf8_valid("\xf0\x9f\x98\x80", 4));
    CHECK(!ocra_utf8_valid("\xc0\xaf", 2));         /* overlong '/' */
    CHECK(!ocra_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
    CHECK(!ocra_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    CHECK(!ocra_utf8_valid("\xe2\x82", 2));         /* truncated */
    CHECK(!ocra_utf8_valid("\xff", 1));
}

static void
test_json_canonical_sorts_and_compacts(void)
{
    struct ocra_err err = {0};
    const char *text = "{ \"b\": [1, 2], \"a\": {\"y\": \"\xc3\xa9\", \"x\": null} }";
    json_t *j = ocra_json_parse(text, strlen(text), 0, &err);
    char *s;

    CHECK(j != NULL);
    s = ocra_json_canonical(j);
    CHECK_STR(s, "{\"a\":{\"x\":null,\"y\":\"\xc3\xa9\"},\"b\":[1,2]}");
    free(s);
    json_decref(j);
}

static void
test_json_strict_rejects_duplicates_and_bad_utf8(void)
{
    struct ocra_err err = {0};
    const char *dup = "{\"a\":1,\"a\":2}", *bad = "{\"a\":\"\xff\"}", *trunc = "{\"a\":";

    CHECK(ocra_json_parse(dup, strlen(dup), OCRA_JSON_STRICT, &err) == NULL);
    CHECK(strstr(err.msg, "duplicate") != NULL);
    CHECK(ocra_json_parse(bad, strlen(bad), 0, &err) == NULL);
    CHECK(ocra_json_parse(trunc, strlen(trunc), 0, &err) == NULL);
    CHECK(strstr(err.msg, "line 1") != NULL);
}

static void
test_file_read_bounds_and_atomic_write(void)
{
    struct ocra_err err = {0};
    char path[] = "/tmp/ocra_base_test_XXXXXX";
    char *data = NULL;
    size_t len = 0;
    int fd = mkstemp(path);

    CHECK(fd >= 0);
    ocra_fd_close(fd);
    CHECK_INT(ocra_file_write_atomic(path, "hello", 5, 0600, &err), 0);
    CHECK_INT(ocra_file_read(path, 5, &data, &len, &err), 0);
    CHECK_STR(data, "hello");
    CHECK_INT(len, 5);
    free(data);
    CHECK_INT(ocra_file_read(path, 4, &data, &len, &err), -1);
    CHECK_INT(err.code, EFBIG);
    unlink(path);
    CHECK_INT(ocra_file_read(path, 4, &data, &len, &err), -1);
    CHECK_INT(err.code, ENOENT);
}

struct atomic_writer {
    const char *path;
    char data[2000];
    int failed;
};

static void *
atomic_writer_run(void *arg)
{
    struct atomic_writer *w = arg;
    struct ocra_err err = {0};

    for (int i = 0; i < 300; i++)
        if (ocra_file_write_atomic(w->path, w->data, sizeof(w->data), 0644, &err) < 0)
            w->failed++;
    return NULL;
}

/* Two threads of one process writing the same file (two daemon workers recording one cache
 * entry): every write succeeds, and the file is one of them whole. */
static void
test_file_write_atomic_from_two_threads(void)
{
    char path[] = "/tmp/ocra_atomic_XXXXXX";
    struct atomic_writer w[2] = {{path, {0}, 0}, {path, {0}, 0}};
    pthread_t t[2];
    struct ocra_err err = {0};
    char *data = NULL;
    size_t len = 0;
    int fd = mkstemp(path);

    CHECK(fd >= 0);
    ocra_fd_close(fd);
    memset(w[0].data, 'a', sizeof(w[0].data));
    memset(w[1].data, 'b', sizeof(w[1].data));
    for (int i = 0; i < 2; i++)
        CHECK_INT(pthread_create(&t[i], NULL, atomic_writer_run, &w[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    CHECK_INT(w[0].failed + w[1].failed, 0);
    CHECK_INT(ocra_file_read(path, 4096, &data, &len, &err), 0);
    CHECK(len == sizeof(w[0].data) &&
          (memcmp(data, w[0].data, len) == 0 || memcmp(data, w[1].data, len) == 0));
    free(data);
    unlink(path);
}

static void
test_write_all_writes_everything(void)
{
    char path[] = "/tmp/ocra_write_all_XXXXXX", *back = NULL;
    static char big[1 << 20];
    size_t len = 0;
    int fd = mkstemp(path);

    memset(big, 'x', sizeof(big));
    CHECK(fd >= 0);
    CHECK_INT(ocra_write_all(fd, big, sizeof(big)), 0);
    ocra_fd_close(fd);
    CHECK_INT(ocra_file_read(path, sizeof(big), &back, &len, NULL), 0);
    CHECK_INT(len, sizeof(big));
    free(back);
    unlink(path);
    CHECK_INT(ocra_write_all(-1, "x", 1), -1);
    CHECK_INT(errno, EBADF);
}

static void
test_time_formats_iso8601(void)
{
    char ts[32];
    uint64_t a = ocra_time_mono_ns(), b = ocra_time_mono_ns();

    CHECK_STR(ocra_time_iso8601(1795674800123, ts, sizeof(ts)), "2026-11-26T06:33:20.123Z");
    CHECK(b >= a);
    CHECK(ocra_time_wall_ms() > 1700000000000);
}

static void
test_pacer_backoff_doubles_caps_and_jitters(void)
{
    struct ocra_pacer p;

    ocra_pacer_init(&p, 0, 100, 1000);
    for (int round = 0; round < 50; round++) {
        long a1 = ocra_pacer_backoff_ms(&p, 1), a3 = ocra_pacer_backoff_ms(&p, 3);
        long a9 = ocra_pacer_backoff_ms(&p, 9);

        CHECK(a1 >= 50 && a1 <= 100);
        CHECK(a3 >= 200 && a3 <= 400);
        CHECK(a9 >= 500 && a9 <= 1000); /* capped */
    }
    ocra_pacer_init(&p, -3, 0, 0);
    CHECK_INT(p.rate_limit, 0);
    CHECK_INT(p.backoff_ms, 250);
    CHECK_INT(p.backoff_max_ms, 8000);
    ocra_pacer_wait(&p); /* unlimited: returns at once, takes no slot */
    CHECK(p.next_slot_ns == 0);
    ocra_pacer_init(&p, 10, 0, 0);
    ocra_pacer_wait(&p);
    CHECK(p.next_slot_ns > ocra_time_mono_ns()); /* the next slot is 100 ms away */
}

static void
test_str_distance(void)
{
    CHECK_INT(ocra_str_distance("journal", "jurnal"), 1);
    CHECK_INT(ocra_str_distance("kitten", "sitting"), 3);
    CHECK_INT(ocra_str_distance("", "abc"), 3);
}

/* kind of the literal s, or -1 when it does not parse */
static int
kind_of(const char *s)
{
    struct ocra_net_addr a;

    if (ocra_net_addr_parse(s, strlen(s), &a) < 0)
        return -1;
    return (int)ocra_net_addr_kind(&a);
}

static const char *
fmt_of(const char *s, char out[OCRA_NET_ADDR_STRLEN])
{
    struct ocra_net_addr a;

    if (ocra_net_addr_parse(s, strlen(s), &a) < 0)
        return "(none)";
    return ocra_net_addr_format(&a, out);
}

static void
test_net_literals_read_as_resolvers_read_them(void)
{
    char buf[OCRA_NET_ADDR_STRLEN];

    CHECK_STR(fmt_of("127.0.0.1", buf), "127.0.0.1");
    CHECK_STR(fmt_of("2130706433", buf), "127.0.0.1");
    CHECK_STR(fmt_of("0x7f000001", buf), "127.0.0.1");
    CHECK_STR(fmt_of("0x7f.1", buf), "127.0.0.1");
    CHECK_STR(fmt_of("0177.0.0.1", buf), "127.0.0.1");
    CHECK_STR(fmt_of("127.1", buf), "127.0.0.1");
    CHECK_STR(fmt_of("10.0.513", buf), "10.0.2.1");
    CHECK_STR(fmt_of("127.0.0.1.", buf), "127.0.0.1");
    CHECK_STR(fmt_of("[::ffff:127.0.0.1]", buf), "127.0.0.1");
    CHECK_STR(fmt_of("::1", buf), "::1");
    CHECK_STR(fmt_of("[fe80::1%25eth0]", buf), "fe80::1");
    CHECK_STR(fmt_of("256.0.0.1", buf), "(none)");
    CHECK_STR(fmt_of("1.2.3.4.5", buf), "(none)");
    CHECK_STR(fmt_of("4294967296", buf), "(none)");
    CHECK_STR(fmt_of("08.0.0.1", buf), "(none)");
    CHECK_STR(fmt_of("1..2", buf), "(none)");
    CHECK_STR(fmt_of("example.com", buf), "(none)");
    CHECK_STR(fmt_of("", buf), "(none)");
}

static void
test_net_kinds_follow_the_special_purpose_registries(void)
{
    CHECK_INT(kind_of("8.8.8.8"), OCRA_NET_PUBLIC);
    CHECK_INT(kind_of("2606:4700::1111"), OCRA_NET_PUBLIC);
    CHECK_INT(kind_of("::ffff:8.8.8.8"), OCRA_NET_PUBLIC);
    CHECK_INT(kind_of("127.0.0.1"), OCRA_NET_LOOPBACK);
    CHECK_INT(kind_of("2130706433"), OCRA_NET_LOOPBACK);
    CHECK_INT(kind_of("::1"), OCRA_NET_LOOPBACK);
    CHECK_INT(kind_of("::ffff:127.0.0.1"), OCRA_NET_LOOPBACK);
    CHECK_INT(kind_of("64:ff9b::127.0.0.1"), OCRA_NET_LOOPBACK); /* NAT64 */
    CHECK_INT(kind_of("2002:7f00:1::"), OCRA_NET_LOOPBACK);      /* 6to4 */
    CHECK_INT(kind_of("10.1.2.3"), OCRA_NET_PRIVATE);
    CHECK_INT(kind_of("172.31.255.255"), OCRA_NET_PRIVATE);
    CHECK_INT(kind_of("172.32.0.1"), OCRA_NET_PUBLIC);
    CHECK_INT(kind_of("192.168.1.1"), OCRA_NET_PRIVATE);
    CHECK_INT(kind_of("100.64.0.1"), OCRA_NET_PRIVATE);
    CHECK_INT(kind_of("fd12::1"), OCRA_NET_PRIVATE);
    CHECK_INT(kind_of("169.254.1.1"), OCRA_NET_LINK_LOCAL);
    CHECK_INT(kind_of("fe80::1"), OCRA_NET_LINK_LOCAL);
    CHECK_INT(kind_of("169.254.169.254"), OCRA_NET_METADATA);
    CHECK_INT(kind_of("fd00:ec2::254"), OCRA_NET_METADATA);
    CHECK_INT(kind_of("100.100.100.200"), OCRA_NET_METADATA);
    CHECK_INT(kind_of("168.63.129.16"), OCRA_NET_METADATA);
    CHECK_INT(kind_of("0.0.0.0"), OCRA_NET_RESERVED);
    CHECK_INT(kind_of("::"), OCRA_NET_RESERVED);
    CHECK_INT(kind_of("::127.0.0.1"), OCRA_NET_RESERVED);
    CHECK_INT(kind_of("224.0.0.1"), OCRA_NET_RESERVED);
    CHECK_INT(kind_of("255.255.255.255"), OCRA_NET_RESERVED);
    CHECK_INT(kind_of("ff02::1"), OCRA_NET_RESERVED);
    CHECK_STR(ocra_net_kind_name(OCRA_NET_LINK_LOCAL), "link-local");
}

static void
test_net_url_hosts_name_their_address(void)
{
    struct ocra_net_addr a;
    char buf[OCRA_NET_ADDR_STRLEN];

#define HOST(s) ocra_net_host_addr(s, strlen(s), &a)
    CHECK_INT(HOST("example.com"), 0);
    CHECK_INT(HOST("1e100.net"), 0);
    CHECK_INT(HOST("mirror.internal"), 0);
    CHECK_INT(HOST("2130706433"), 1);
    CHECK_STR(ocra_net_addr_format(&a, buf), "127.0.0.1");
    CHECK_INT(HOST("[::ffff:10.0.0.1]"), 1);
    CHECK_STR(ocra_net_addr_format(&a, buf), "10.0.0.1");
    CHECK_INT(HOST("LocalHost"), 1);
    CHECK_STR(ocra_net_addr_format(&a, buf), "127.0.0.1");
    CHECK_INT(HOST("api.localhost."), 1);
    CHECK_INT(HOST("notlocalhost"), 0);
    CHECK_INT(HOST("example.123"), -1); /* ends in a number, not an address */
    CHECK_INT(HOST("0x"), 1);
    CHECK_INT(HOST("[not-v6]"), -1);
#undef HOST
}

static void
test_net_allow_entries_match_names_addresses_and_cidrs(void)
{
    static const char *const allow[] = {"mirror.internal", "10.0.0.0/8", "::1", "fd00::/8"};
    struct ocra_net_addr a;
    enum ocra_net_kind k = OCRA_NET_PUBLIC;

#define ALLOWED(host, lit)                                                                         \
    (ocra_net_addr_parse(lit, strlen(lit), &a) == 0 &&                                             \
     ocra_net_allowed(host, &a, allow, OCRA_ARRAY_LEN(allow), &k))
    CHECK(ALLOWED("example.com", "8.8.8.8"));
    CHECK_INT(k, OCRA_NET_PUBLIC);
    CHECK(ALLOWED("mirror.internal", "192.168.0.7"));
    CHECK(ALLOWED("MIRROR.internal.", "192.168.0.7"));
    CHECK(ALLOWED(NULL, "10.9.8.7"));
    CHECK(ALLOWED(NULL, "::1"));
    CHECK(ALLOWED(NULL, "fd12::1"));
    CHECK(!ALLOWED("evil.example", "192.168.0.7"));
    CHECK_INT(k, OCRA_NET_PRIVATE);
    CHECK(!ALLOWED("mirror.internal.evil", "127.0.0.1"));
    CHECK(!ALLOWED(NULL, "127.0.0.1"));
    CHECK_INT(k, OCRA_NET_LOOPBACK);
    CHECK(!ALLOWED(NULL, "169.254.169.254"));
    CHECK(!ocra_net_allowed("x", &a, NULL, 0, NULL));
#undef ALLOWED
    CHECK(ocra_net_allow_entry_valid("127.0.0.1"));
    CHECK(ocra_net_allow_entry_valid("127.0.0.0/8"));
    CHECK(ocra_net_allow_entry_valid("::1"));
    CHECK(ocra_net_allow_entry_valid("[::1]"));
    CHECK(ocra_net_allow_entry_valid("fd00::/8"));
    CHECK(ocra_net_allow_entry_valid("mirror.internal"));
    CHECK(ocra_net_allow_entry_valid("my_host"));
    CHECK(!ocra_net_allow_entry_valid("10.0.0.0/33"));
    CHECK(!ocra_net_allow_entry_valid("10.0.0.0/"));
    CHECK(!ocra_net_allow_entry_valid("::/129"));
    CHECK(!ocra_net_allow_entry_valid("mirror:80"));
    CHECK(!ocra_net_allow_entry_valid("bad host"));
    CHECK(!ocra_net_allow_entry_valid("example.123"));
    CHECK(!ocra_net_allow_entry_valid(""));
    CHECK(!ocra_net_allow_entry_valid("a..b"));
}

/* A text log entry is one line, whatever its message holds (a build's multi-line log tail). */
static void
test_text_log_entry_is_one_line(void)
{
    char buf[512] = {0};
    FILE *f = tmpfile();
    int saved = dup(STDERR_FILENO);
    size_t n;

    CHECK(f != NULL && saved >= 0);
    if (!f || saved < 0)
        return;
    fflush(stderr);
    CHECK(dup2(fileno(f), STDERR_FILENO) >= 0);
    ocra_log_setup(OCRA_LOG_INFO, OCRA_LOG_TEXT);
    ocra_log(OCRA_LOG_WARN, "build failed: step 3/5\nRUN pip install\r\n\terror: \x1b[31mno\x7f");
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    rewind(f);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    CHECK(n > 0 && memchr(buf, '\n', n) == buf + n - 1);
    CHECK(
        strstr(buf,
               "warn build failed: step 3/5\\nRUN pip install\\r\\n\\terror: \\x1b[31mno\\x7f\n") !=
        NULL);
    if (!strstr(buf, "step 3/5\\nRUN"))
        fprintf(stderr, "  logged: %s", buf);
}

/* ocra_proc_run: input in, output out, exit status, a missing program, a hung one, and one
 * that does not read its input (no SIGPIPE reaches the process). */
static void
test_proc_run(void)
{
    char cat[] = "cat", sh[] = "sh", c[] = "-c", exit3[] = "exit 3", sleep_[] = "sleep 5",
         nope[] = "ocra-no-such-program", t[] = "true", *out = NULL, *big;
    struct ocra_err err = {0};
    size_t len = 0;
    int status = -1;

    CHECK(ocra_proc_run((char *const[]){cat, NULL}, "127.0.0.1:5000", 1024, 10000, &out, &len,
                        &status, &err) == 0);
    CHECK(status == 0 && len == 14 && out && strcmp(out, "127.0.0.1:5000") == 0);
    free(out), out = NULL;
    CHECK(ocra_proc_run((char *const[]){sh, c, exit3, NULL}, NULL, 1024, 10000, &out, &len, &status,
                        &err) == 0);
    CHECK(status == 3 && len == 0);
    free(out), out = NULL;
    CHECK(ocra_proc_run((char *const[]){nope, NULL}, NULL, 1024, 10000, &out, &len, &status, &err) <
          0);
    CHECK(err.code == ENOENT && strstr(err.msg, "ocra-no-such-program") != NULL);
    CHECK(ocra_proc_run((char *const[]){sh, c, sleep_, NULL}, NULL, 1024, 100, &out, &len, &status,
                        &err) < 0);
    CHECK(err.code == ETIMEDOUT);
    big = ocra_xcalloc(1, 1u << 20);
    memset(big, 'x', (1u << 20) - 1);
    CHECK(ocra_proc_run((char *const[]){t, NULL}, big, 1024, 10000, &out, &len, &status, &err) ==
          0);
    CHECK(status == 0);
    free(out), out = NULL;
    free(big);
}

OCRA_TEST_MAIN(OCRA_TEST(test_sha256_matches_fips_vectors),
               OCRA_TEST(test_text_log_entry_is_one_line), OCRA_TEST(test_proc_run),
               OCRA_TEST(test_keccak256_empty_string),
               OCRA_TEST(test_file_write_atomic_from_two_threads),
               OCRA_TEST(test_keccak256_matches_ain_vectors),
               OCRA_TEST(test_keccak256_block_boundaries),
               OCRA_TEST(test_hex_round_trip_and_errors), OCRA_TEST(test_parse_i64_is_checked),
               OCRA_TEST(test_parse_u64_rejects_sign), OCRA_TEST(test_err_wrap_prefixes_context),
               OCRA_TEST(test_err_keeps_the_cause_of_a_long_message),
               OCRA_TEST(test_err_wrap_cuts_context_not_cause),
               OCRA_TEST(test_str_cut_keeps_utf8_whole), OCRA_TEST(test_buf_grows_and_takes),
               OCRA_TEST(test_str_escape_quotes_hostile_bytes), OCRA_TEST(test_utf8_validation),
               OCRA_TEST(test_json_canonical_sorts_and_compacts),
               OCRA_TEST(test_json_strict_rejects_duplicates_and_bad_utf8),
               OCRA_TEST(test_file_read_bounds_and_atomic_write),
               OCRA_TEST(test_write_all_writes_everything), OCRA_TEST(test_time_formats_iso8601),
               OCRA_TEST(test_str_distance), OCRA_TEST(test_pacer_backoff_doubles_caps_and_jitters),
               OCRA_TEST(test_net_literals_read_as_resolvers_read_them),
               OCRA_TEST(test_net_kinds_follow_the_special_purpose_registries),
               OCRA_TEST(test_net_url_hosts_name_their_address),
               OCRA_TEST(test_net_allow_entries_match_names_addresses_and_cidrs))
