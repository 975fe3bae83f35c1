/* SPDX-License-Identifier: Apache-2.0 */
/*
 * spec_test.c: unit tests of src/spec. The core is one table of valid and hostile specs, each
 * row asserting the exact rule and field of the first problem; then the AIN list form, the
 * canonical form and hash, the examples/ directory, and the event and image records.
 */
#include "spec/spec.h"
#include "ocra_test.h"

#include <dirent.h>
#include <errno.h>

enum pol { P_DEF, P_NAMED, P_HTTP, P_FILE, P_ALLOW, P_HTTP_ONLY };

static const char *const test_hosts[] = {"127.0.0.1:8099", "mirror.internal"};
static const char *const test_loopback[] = {"127.0.0.1"};
static const char *const test_allow[] = {"10.0.0.0/8", "localhost", "fd00::/8"};

static struct ocra_spec_policy
policy(enum pol p)
{
    struct ocra_spec_policy pol = {0};

    if (p == P_NAMED)
        pol.default_name = "model";
    if (p == P_HTTP || p == P_HTTP_ONLY) {
        pol.http_hosts = test_hosts;
        pol.n_http_hosts = OCRA_ARRAY_LEN(test_hosts);
    }
    if (p == P_HTTP) {
        pol.allow_hosts = test_loopback;
        pol.n_allow_hosts = OCRA_ARRAY_LEN(test_loopback);
    }
    if (p == P_ALLOW) {
        pol.allow_hosts = test_allow;
        pol.n_allow_hosts = OCRA_ARRAY_LEN(test_allow);
    }
    if (p == P_FILE)
        pol.allow_file = true;
    return pol;
}

/* Parses text under p; checks ok (rule NULL) or the first problem's rule and field. */
static void
expect(const char *what, const char *text, size_t len, enum pol p, const char *rule,
       const char *field)
{
    struct ocra_spec_policy pol = policy(p);
    struct ocra_spec_problems probs = {0};
    struct ocra_err err = {0};
    struct ocra_spec *s = NULL;
    int r = ocra_spec_parse(text, len, &pol, &s, &probs, &err);

    if (!rule) {
        if (r != 0)
            fprintf(stderr, "  case %s: want ok, got %s\n", what, err.msg);
        CHECK_INT(r, 0);
        CHECK(s != NULL);
    } else {
        CHECK_INT(r, -1);
        CHECK_INT(err.code, EINVAL);
        CHECK(probs.n >= 1);
        if (r == 0 || probs.n == 0) {
            fprintf(stderr, "  case %s: want %s, got ok\n", what, rule);
        } else if (strcmp(probs.items[0].rule, rule) != 0 ||
                   strcmp(probs.items[0].field, field) != 0) {
            fprintf(stderr, "  case %s: got %s\n", what, probs.items[0].msg);
            CHECK_STR(probs.items[0].rule, rule);
            CHECK_STR(probs.items[0].field, field);
        }
        CHECK(strstr(err.msg, rule) != NULL);
    }
    ocra_spec_free(s);
    ocra_spec_problems_fini(&probs);
}

#define HEAD                                                                                       \
    "{\"name\":\"m\",\"modelVersion\":\"1.0\",\"toolsAndLibraries\":{\"PyTorch\":\"2.1.0\"}"
#define SHA "\"0b09377229b689595dd3616d6088396bdae7caa9a52e9f7b09cab623f4e1d029\""
#define ART(uri) HEAD ",\"artifact\":{\"uri\":\"" uri "\",\"sha256\":" SHA ",\"size\":1}}"
#define WL(body) HEAD ",\"workload\":{" body "}}"
#define TOOL(name, ver)                                                                            \
    "{\"name\":\"m\",\"modelVersion\":\"1.0\",\"toolsAndLibraries\":{\"" name "\":\"" ver "\"}}"
#define MV(ver)                                                                                    \
    "{\"name\":\"m\",\"modelVersion\":\"" ver "\",\"toolsAndLibraries\":{\"JAX\":\"0.4\"}}"
#define SEED                                                                                       \
    "{\"modelVersion\":\"2.0.0\",\"toolsAndLibraries\":{\"TensorFlow\":\"2.15.0\",\"PyTorch\":"    \
    "\"2.1.0\"}}"

static const struct vcase {
    const char *what, *json;
    enum pol pol;
    const char *rule, *field; /* rule NULL: valid */
} cases[] = {
    /* the seed's shape and full specs */
    {"seed with default name", SEED, P_NAMED, NULL, NULL},
    {"seed without default name", SEED, P_DEF, "key.required", "name"},
    {"full inference spec",
     "{\"name\":\"sentiment-bert\",\"modelVersion\":\"1.2.0\",\"toolsAndLibraries\":{\"PyTorch\":"
     "\"2.1.0\",\"transformers\":\"4.35.2\"},\"baseImage\":\"pytorch/pytorch:2.1.0-cuda12.1-"
     "cudnn8-runtime\",\"artifact\":{\"uri\":\"https://h.example/models/x.safetensors\","
     "\"sha256\":" SHA ",\"size\":440473133},\"workload\":{\"type\":\"inference\",\"params\":"
     "110000000,\"dtype\":\"fp16\",\"gpus\":1,\"replicas\":{\"min\":1,\"max\":4},\"command\":["
     "\"python3\",\"-m\",\"serve\"],\"port\":8080}}",
     P_DEF, NULL, NULL},
    {"ain command of 11",
     WL("\"command\":{\"0\":\"a\",\"1\":\"b\",\"2\":\"c\",\"3\":\"d\",\"4\":"
        "\"e\",\"5\":\"f\",\"6\":\"g\",\"7\":\"h\",\"8\":\"i\",\"9\":\"j\","
        "\"10\":\"k\"}"),
     P_DEF, NULL, NULL},
    {"ain gap", WL("\"command\":{\"0\":\"a\",\"2\":\"b\"}"), P_DEF, "list.index",
     "workload.command"},
    {"ain leading zero", WL("\"command\":{\"0\":\"a\",\"01\":\"b\"}"), P_DEF, "list.index",
     "workload.command"},
    {"ain non-numeric key", WL("\"command\":{\"0\":\"a\",\"x\":\"b\"}"), P_DEF, "list.index",
     "workload.command"},
    {"ain negative key", WL("\"command\":{\"-1\":\"a\"}"), P_DEF, "list.index", "workload.command"},
    /* versions */
    {"shell in modelVersion", MV("1.0; rm -rf /"), P_DEF, "version.pep440", "modelVersion"},
    {"shell in tool version", TOOL("PyTorch", "2.1.0 && curl x"), P_DEF, "version.pep440",
     "toolsAndLibraries.PyTorch"},
    {"trailing space in version", MV("1.0 "), P_DEF, "version.pep440", "modelVersion"},
    {"tab in version", MV("1.\\t0"), P_DEF, "version.pep440", "modelVersion"},
    {"pep440 epoch post dev", MV("1!2.0.post1.dev3"), P_DEF, NULL, NULL},
    {"pep440 local label", TOOL("PyTorch", "2.1.0+cu121"), P_DEF, NULL, NULL},
    {"pep440 rc", MV("1.0rc1"), P_DEF, NULL, NULL},
    {"pep440 alpha dev", MV("2.0a1.dev0"), P_DEF, NULL, NULL},
    {"pep440 double dot", MV("1..0"), P_DEF, "version.pep440", "modelVersion"},
    {"pep440 leading v", MV("v1.0"), P_DEF, "version.pep440", "modelVersion"},
    {"pep440 implicit post", MV("1.0-1"), P_DEF, "version.pep440", "modelVersion"},
    {"pep440 uppercase rc", MV("1.0RC1"), P_DEF, "version.pep440", "modelVersion"},
    {"pep440 empty local", MV("1.0+"), P_DEF, "version.pep440", "modelVersion"},
    {"empty version", MV(""), P_DEF, "version.pep440", "modelVersion"},
    /* names */
    {"path traversal name",
     "{\"name\":\"../../etc\",\"modelVersion\":\"1.0\",\"toolsAndLibraries\":{\"JAX\":\"0.4\"}}",
     P_DEF, "name.pattern", "name"},
    {"uppercase name",
     "{\"name\":\"Sentiment\",\"modelVersion\":\"1.0\",\"toolsAndLibraries\":{\"JAX\":\"0.4\"}}",
     P_DEF, "name.pattern", "name"},
    {"double dot name",
     "{\"name\":\"a..b\",\"modelVersion\":\"1.0\",\"toolsAndLibraries\":{\"JAX\":\"0.4\"}}", P_DEF,
     "name.pattern", "name"},
    {"number name", "{\"name\":7,\"modelVersion\":\"1.0\",\"toolsAndLibraries\":{\"JAX\":\"0.4\"}}",
     P_DEF, "type", "name"},
    /* keys */
    {"unknown key",
     "{\"name\":\"m\",\"modelversion\":\"1.0\",\"modelVersion\":\"1.0\",\"toolsAndLibraries\":{"
     "\"JAX\":\"0.4\"}}",
     P_DEF, "key.unknown", "modelversion"},
    {"unknown workload key", WL("\"gpu\":2"), P_DEF, "key.unknown", "workload.gpu"},
    {"duplicate key",
     "{\"name\":\"m\",\"name\":\"evil\",\"modelVersion\":\"1.0\",\"toolsAndLibraries\":{\"JAX\":"
     "\"0.4\"}}",
     P_DEF, "key.duplicate", ""},
    {"missing modelVersion", "{\"name\":\"m\",\"toolsAndLibraries\":{\"JAX\":\"0.4\"}}", P_DEF,
     "key.required", "modelVersion"},
    /* tools */
    {"array tools", "{\"name\":\"m\",\"modelVersion\":\"1.0\",\"toolsAndLibraries\":[\"torch\"]}",
     P_DEF, "type", "toolsAndLibraries"},
    {"empty tools", "{\"name\":\"m\",\"modelVersion\":\"1.0\",\"toolsAndLibraries\":{}}", P_DEF,
     "list.size", "toolsAndLibraries"},
    {"shell in tool name", TOOL("torch;rm", "2.1.0"), P_DEF, "tool.name",
     "toolsAndLibraries.torch;rm"},
    {"pep508 tool name", TOOL("Foo_Bar.baz", "1.0"), P_DEF, NULL, NULL},
    {"tool named twice",
     "{\"name\":\"m\",\"modelVersion\":\"1.0\",\"toolsAndLibraries\":{\"PyTorch\":\"2.1.0\","
     "\"torch\":\"2.2.0\"}}",
     P_DEF, "tool.duplicate", "toolsAndLibraries.torch"},
    {"number tool version",
     "{\"name\":\"m\",\"modelVersion\":\"1.0\",\"toolsAndLibraries\":{"
     "\"JAX\":4}}",
     P_DEF, "type", "toolsAndLibraries.JAX"},
    /* workload numbers */
    {"string params", WL("\"params\":\"110000000\""), P_DEF, "type", "workload.params"},
    {"float params", WL("\"params\":1.1e8"), P_DEF, "type", "workload.params"},
    {"negative params", WL("\"params\":-5"), P_DEF, "range", "workload.params"},
    {"params over 10^13", WL("\"params\":10000000000001"), P_DEF, "range", "workload.params"},
    {"gpus 64", WL("\"gpus\":64"), P_DEF, NULL, NULL},
    {"gpus 65", WL("\"gpus\":65"), P_DEF, "range", "workload.gpus"},
    {"port 0", WL("\"port\":0"), P_DEF, "range", "workload.port"},
    {"port 70000", WL("\"port\":70000"), P_DEF, "range", "workload.port"},
    {"maxDuration seconds", WL("\"maxDuration\":5400"), P_DEF, NULL, NULL},
    {"preemptible", WL("\"preemptible\":true"), P_DEF, NULL, NULL},
    {"preemptible string", WL("\"preemptible\":\"yes\""), P_DEF, "type", "workload.preemptible"},
    {"maxDuration 90m", WL("\"maxDuration\":\"90m\""), P_DEF, NULL, NULL},
    {"maxDuration 365d", WL("\"maxDuration\":\"365d\""), P_DEF, NULL, NULL},
    {"maxDuration 366d", WL("\"maxDuration\":\"366d\""), P_DEF, "duration", "workload.maxDuration"},
    {"maxDuration 0", WL("\"maxDuration\":0"), P_DEF, "range", "workload.maxDuration"},
    {"maxDuration 0s", WL("\"maxDuration\":\"0s\""), P_DEF, "duration", "workload.maxDuration"},
    {"maxDuration 1.5h", WL("\"maxDuration\":\"1.5h\""), P_DEF, "duration", "workload.maxDuration"},
    {"maxDuration no unit", WL("\"maxDuration\":\"90\""), P_DEF, "duration",
     "workload.maxDuration"},
    {"maxDuration two units", WL("\"maxDuration\":\"1h30m\""), P_DEF, "duration",
     "workload.maxDuration"},
    {"maxDuration huge count", WL("\"maxDuration\":\"99999999999999999999s\""), P_DEF, "duration",
     "workload.maxDuration"},
    {"maxDuration float", WL("\"maxDuration\":1.5"), P_DEF, "type", "workload.maxDuration"},
    {"replicas min > max", WL("\"replicas\":{\"min\":3,\"max\":2}"), P_DEF, "replicas.order",
     "workload.replicas"},
    {"replicas max 0", WL("\"replicas\":{\"min\":0,\"max\":0}"), P_DEF, "range",
     "workload.replicas.max"},
    {"replicas max 1025", WL("\"replicas\":{\"max\":1025}"), P_DEF, "range",
     "workload.replicas.max"},
    {"unknown dtype", WL("\"dtype\":\"fp64\""), P_DEF, "enum", "workload.dtype"},
    {"unknown workload type", WL("\"type\":\"serve\""), P_DEF, "enum", "workload.type"},
    {"training bf16", WL("\"type\":\"training\",\"dtype\":\"bf16\",\"gpus\":8"), P_DEF, NULL, NULL},
    /* command */
    {"empty command", WL("\"command\":[]"), P_DEF, "list.size", "workload.command"},
    {"number in command", WL("\"command\":[\"a\",1]"), P_DEF, "type", "workload.command[1]"},
    {"empty program", WL("\"command\":[\"\"]"), P_DEF, "string.empty", "workload.command[0]"},
    {"shell chars in argv are data", WL("\"command\":[\"sh\",\"-c\",\"echo $HOME; ls | wc\"]"),
     P_DEF, NULL, NULL},
    /* artifact */
    {"sha256 63 digits",
     HEAD ",\"artifact\":{\"uri\":\"https://h/x\",\"sha256\":"
          "\"0b09377229b689595dd3616d6088396bdae7caa9a52e9f7b09cab623f4e1d02\"}}",
     P_DEF, "sha256.hex", "artifact.sha256"},
    {"sha256 non-hex",
     HEAD ",\"artifact\":{\"uri\":\"https://h/x\",\"sha256\":"
          "\"0b09377229b689595dd3616d6088396bdae7caa9a52e9f7b09cab623f4e1d02g\"}}",
     P_DEF, "sha256.hex", "artifact.sha256"},
    {"sha256 uppercase",
     HEAD ",\"artifact\":{\"uri\":\"https://h/x\",\"sha256\":"
          "\"0B09377229B689595DD3616D6088396BDAE7CAA9A52E9F7B09CAB623F4E1D029\"}}",
     P_DEF, NULL, NULL},
    {"missing sha256", HEAD ",\"artifact\":{\"uri\":\"https://h/x\"}}", P_DEF, "key.required",
     "artifact.sha256"},
    {"size 0", HEAD ",\"artifact\":{\"uri\":\"https://h/x\",\"sha256\":" SHA ",\"size\":0}}", P_DEF,
     "range", "artifact.size"},
    {"size 2^44+1",
     HEAD ",\"artifact\":{\"uri\":\"https://h/x\",\"sha256\":" SHA ",\"size\":17592186044417}}",
     P_DEF, "range", "artifact.size"},
    {"https uri", ART("https://models.example.com/a/b.bin"), P_DEF, NULL, NULL},
    {"http uri, default policy", ART("http://127.0.0.1:8099/m.bin"), P_DEF, "uri.http",
     "artifact.uri"},
    {"http uri, listed host:port", ART("http://127.0.0.1:8099/m.bin"), P_HTTP, NULL, NULL},
    {"http uri, other port", ART("http://127.0.0.1:9000/m.bin"), P_HTTP, "uri.http",
     "artifact.uri"},
    {"http uri, listed host any port", ART("http://mirror.internal:8080/m.bin"), P_HTTP, NULL,
     NULL},
    {"file uri, chain policy", ART("file:///etc/shadow"), P_DEF, "uri.scheme", "artifact.uri"},
    {"file uri, local policy", ART("file:///srv/models/m.bin"), P_FILE, NULL, NULL},
    {"ftp uri", ART("ftp://h.example/m.bin"), P_DEF, "uri.scheme", "artifact.uri"},
    {"javascript uri", ART("javascript:alert(1)"), P_DEF, "uri.scheme", "artifact.uri"},
    {"userinfo uri", ART("https://good.example@evil.example/m.bin"), P_DEF, "uri.userinfo",
     "artifact.uri"},
    {"space in uri", ART("https://h.example/a b.bin"), P_DEF, "uri.syntax", "artifact.uri"},
    {"uri without path", ART("https://h.example"), P_DEF, "uri.syntax", "artifact.uri"},
    {"uri without authority", ART("https:"), P_DEF, "uri.syntax", "artifact.uri"},
    /* literal addresses: public, or allowed by the operator (artifact.allow_hosts) */
    {"public address", ART("https://8.8.8.8/m.bin"), P_DEF, NULL, NULL},
    {"public ipv6 address", ART("https://[2606:4700::1111]/m.bin"), P_DEF, NULL, NULL},
    {"loopback", ART("https://127.0.0.1/m.bin"), P_DEF, "uri.address", "artifact.uri"},
    {"loopback with port", ART("https://127.0.0.1:8443/m.bin"), P_DEF, "uri.address",
     "artifact.uri"},
    {"decimal loopback", ART("https://2130706433/m.bin"), P_DEF, "uri.address", "artifact.uri"},
    {"hex loopback", ART("https://0x7f.1/m.bin"), P_DEF, "uri.address", "artifact.uri"},
    {"octal loopback", ART("https://0177.0.0.1/m.bin"), P_DEF, "uri.address", "artifact.uri"},
    {"short loopback", ART("https://127.1/m.bin"), P_DEF, "uri.address", "artifact.uri"},
    {"mapped loopback", ART("https://[::ffff:127.0.0.1]/m.bin"), P_DEF, "uri.address",
     "artifact.uri"},
    {"ipv6 loopback", ART("https://[::1]:8443/m.bin"), P_DEF, "uri.address", "artifact.uri"},
    {"localhost", ART("https://localhost/m.bin"), P_DEF, "uri.address", "artifact.uri"},
    {"under localhost", ART("https://api.localhost./m.bin"), P_DEF, "uri.address", "artifact.uri"},
    {"unspecified", ART("https://0.0.0.0/m.bin"), P_DEF, "uri.address", "artifact.uri"},
    {"zero", ART("https://0/m.bin"), P_DEF, "uri.address", "artifact.uri"},
    {"rfc 1918 10/8", ART("https://10.1.2.3/m.bin"), P_DEF, "uri.address", "artifact.uri"},
    {"rfc 1918 172.16/12", ART("https://172.16.0.1/m.bin"), P_DEF, "uri.address", "artifact.uri"},
    {"rfc 1918 192.168/16", ART("https://192.168.0.1/m.bin"), P_DEF, "uri.address", "artifact.uri"},
    {"unique local", ART("https://[fd12::1]/m.bin"), P_DEF, "uri.address", "artifact.uri"},
    {"link-local", ART("https://169.254.1.1/m.bin"), P_DEF, "uri.address", "artifact.uri"},
    {"link-local ipv6 with zone", ART("https://[fe80::1%25eth0]/m.bin"), P_DEF, "uri.address",
     "artifact.uri"},
    {"metadata", ART("https://169.254.169.254/latest/meta-data/"), P_DEF, "uri.address",
     "artifact.uri"},
    {"ends in a number", ART("https://models.123/m.bin"), P_DEF, "uri.syntax", "artifact.uri"},
    {"ipv4 out of range", ART("https://256.0.0.1/m.bin"), P_DEF, "uri.syntax", "artifact.uri"},
    {"bad ipv6", ART("https://[fe80::zz]/m.bin"), P_DEF, "uri.syntax", "artifact.uri"},
    {"allowed cidr", ART("https://10.9.8.7/m.bin"), P_ALLOW, NULL, NULL},
    {"allowed ipv6 cidr", ART("https://[fd12::1]/m.bin"), P_ALLOW, NULL, NULL},
    {"allowed name", ART("https://localhost:8443/m.bin"), P_ALLOW, NULL, NULL},
    {"outside the allowed", ART("https://192.168.1.1/m.bin"), P_ALLOW, "uri.address",
     "artifact.uri"},
    {"metadata not in the allowed", ART("https://169.254.169.254/m.bin"), P_ALLOW, "uri.address",
     "artifact.uri"},
    {"http listed, address allowed", ART("http://127.0.0.1:8099/m.bin"), P_HTTP, NULL, NULL},
    {"http listed, address not allowed", ART("http://127.0.0.1:8099/m.bin"), P_HTTP_ONLY,
     "uri.address", "artifact.uri"},
    {"http listed name", ART("http://mirror.internal/m.bin"), P_HTTP_ONLY, NULL, NULL},
    /* baseImage */
    {"registry image with digest",
     HEAD ",\"baseImage\":\"localhost:5000/base/cuda:12.1-runtime@sha256:"
          "0b09377229b689595dd3616d6088396bdae7caa9a52e9f7b09cab623f4e1d029\"}",
     P_DEF, NULL, NULL},
    {"shell in baseImage", HEAD ",\"baseImage\":\"ubuntu:22.04; curl x\"}", P_DEF, "image.ref",
     "baseImage"},
    {"uppercase baseImage", HEAD ",\"baseImage\":\"Ubuntu\"}", P_DEF, "image.ref", "baseImage"},
    /* document */
    {"null document", "null", P_DEF, "type", ""},
    {"array document", "[{\"modelVersion\":\"1.0\"}]", P_DEF, "type", ""},
    {"not json", "{\"name\":", P_DEF, "doc.json", ""},
    {"trailing garbage", SEED "x", P_NAMED, "doc.json", ""},
    {"NUL escape", MV("1.0\\u0000"), P_DEF, "doc.json", ""},
    {"huge integer", WL("\"params\":99999999999999999999999"), P_DEF, "doc.json", ""},
};

static void
test_validation_table(void)
{
    CHECK(OCRA_ARRAY_LEN(cases) >= 40);
    for (size_t i = 0; i < OCRA_ARRAY_LEN(cases); i++)
        expect(cases[i].what, cases[i].json, strlen(cases[i].json), cases[i].pol, cases[i].rule,
               cases[i].field);
}

/* Cases whose input is easier to build than to write. */
static void
test_validation_generated(void)
{
    struct ocra_buf b;
    char *big = ocra_xmalloc(OCRA_SPEC_MAX_DOC + 2);
    static const char bad_utf8[] = "{\"name\":\"m\xff\",\"modelVersion\":\"1.0\"}";
    static const char overlong[] = "{\"name\":\"\xc0\xaf\",\"modelVersion\":\"1.0\"}";
    char arg[OCRA_SPEC_MAX_ARG + 2];

    /* a valid spec padded with whitespace past the limit, and exactly at it */
    memset(big, ' ', OCRA_SPEC_MAX_DOC + 1);
    memcpy(big, SEED, strlen(SEED));
    expect("doc 64 KiB + 1", big, OCRA_SPEC_MAX_DOC + 1, P_NAMED, "doc.size", "");
    expect("doc 64 KiB", big, OCRA_SPEC_MAX_DOC, P_NAMED, NULL, NULL);
    free(big);
    expect("non-utf8", bad_utf8, strlen(bad_utf8), P_DEF, "doc.utf8", "");
    expect("overlong utf8", overlong, strlen(overlong), P_DEF, "doc.utf8", "");
    expect("empty input", "", 0, P_DEF, "doc.json", "");

    ocra_buf_init(&b);
    ocra_buf_puts(&b,
                  "{\"name\":\"m\",\"toolsAndLibraries\":{\"JAX\":\"0.4\"},\"modelVersion\":\"1");
    for (int i = 0; i < 40; i++)
        ocra_buf_puts(&b, ".0");
    ocra_buf_puts(&b, "\"}");
    expect("oversized version", b.data, b.len, P_DEF, "string.size", "modelVersion");
    ocra_buf_reset(&b);
    memset(arg, 'x', sizeof(arg) - 1);
    arg[sizeof(arg) - 1] = '\0';
    ocra_buf_printf(&b, WL("\"command\":[\"a\",\"%s\"]"), arg);
    expect("oversized argv entry", b.data, b.len, P_DEF, "string.size", "workload.command[1]");
    ocra_buf_fini(&b);
}

static struct ocra_spec *
parse_ok(const char *text, enum pol p)
{
    struct ocra_spec_policy pol = policy(p);
    struct ocra_err err = {0};
    struct ocra_spec *s = NULL;

    if (ocra_spec_parse(text, strlen(text), &pol, &s, NULL, &err) < 0)
        fprintf(stderr, "  parse: %s\n", err.msg);
    return s;
}

static void
test_ain_index_object_is_numeric_order(void)
{
    static const char obj[] = WL("\"command\":{\"10\":\"k\",\"2\":\"c\",\"0\":\"a\",\"1\":\"b\","
                                 "\"3\":\"d\",\"4\":\"e\",\"5\":\"f\",\"6\":\"g\",\"7\":\"h\","
                                 "\"8\":\"i\",\"9\":\"j\"}");
    static const char arr[] =
        WL("\"command\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\",\"k\"]");
    struct ocra_spec *a = parse_ok(obj, P_DEF), *b = parse_ok(arr, P_DEF);
    char *ca, *cb;

    CHECK(a && b);
    if (!a || !b)
        goto out;
    CHECK_INT(a->workload.argc, 11);
    CHECK_STR(a->workload.argv[2], "c");
    CHECK_STR(a->workload.argv[10], "k");
    ca = ocra_spec_canonical(a);
    cb = ocra_spec_canonical(b);
    CHECK_STR(ca, cb);
    free(ca);
    free(cb);
out:
    ocra_spec_free(a);
    ocra_spec_free(b);
}

/* workload.maxDuration: "90m" and 5400 are the same spec (canonical form: seconds). */
static void
test_max_duration_in_seconds(void)
{
    struct ocra_spec *a = parse_ok(WL("\"maxDuration\":\"90m\""), P_DEF),
                     *b = parse_ok(WL("\"maxDuration\":5400"), P_DEF),
                     *d = parse_ok(WL("\"maxDuration\":\"2d\""), P_DEF);
    char *ca = NULL, *cb = NULL;

    CHECK(a && b && d);
    if (!a || !b || !d)
        goto out;
    CHECK_INT(a->workload.max_duration_s, 5400);
    CHECK_INT(d->workload.max_duration_s, 172800);
    ca = ocra_spec_canonical(a);
    cb = ocra_spec_canonical(b);
    CHECK_STR(ca, cb);
    CHECK(strstr(ca, "\"maxDuration\":5400") != NULL);
out:
    free(ca);
    free(cb);
    ocra_spec_free(a);
    ocra_spec_free(b);
    ocra_spec_free(d);
}

/* What watch and events print: AIN's index-keyed command as the array the reader makes. */
static void
test_lists_as_arrays_for_display(void)
{
    static const char obj[] = WL("\"command\":{\"10\":\"k\",\"2\":\"c\",\"0\":\"a\",\"1\":\"b\","
                                 "\"3\":\"d\",\"4\":\"e\",\"5\":\"f\",\"6\":\"g\",\"7\":\"h\","
                                 "\"8\":\"i\",\"9\":\"j\"}");
    static const char gap[] = "{\"workload\":{\"command\":{\"0\":\"a\",\"2\":\"b\"}}}";
    json_t *in = ocra_json_parse(obj, strlen(obj), 0, NULL), *out = ocra_spec_lists_as_arrays(in);
    json_t *bad = ocra_json_parse(gap, strlen(gap), 0, NULL),
           *kept = ocra_spec_lists_as_arrays(bad);
    char *s = ocra_json_canonical(json_object_get(json_object_get(out, "workload"), "command"));
    char *k = ocra_json_canonical(kept);

    CHECK_STR(s, "[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\",\"k\"]");
    CHECK(json_is_object(json_object_get(json_object_get(in, "workload"), "command")));
    CHECK_STR(k, gap); /* a malformed list stays as stored, for validation to name */
    CHECK(ocra_spec_lists_as_arrays(NULL) == NULL);
    free(s);
    free(k);
    json_decref(in);
    json_decref(out);
    json_decref(bad);
    json_decref(kept);
}

static void
test_canonical_form_and_hash_of_seed(void)
{
    struct ocra_spec_policy pol = {.default_name = "seed"};
    struct ocra_spec *s = NULL, *again = NULL;
    struct ocra_err err = {0};
    char *text = NULL, *text2 = NULL, hash[65];

    CHECK_INT(ocra_spec_parse(SEED, strlen(SEED), &pol, &s, NULL, &err), 0);
    if (!s)
        return;
    text = ocra_spec_canonical(s);
    CHECK_STR(text,
              "{\"modelVersion\":\"2.0.0\",\"name\":\"seed\",\"toolsAndLibraries\":{"
              "\"PyTorch\":\"2.1.0\",\"TensorFlow\":\"2.15.0\"},\"workload\":{\"dtype\":"
              "\"fp16\",\"gpus\":1,\"replicas\":{\"max\":1,\"min\":1},\"type\":\"inference\"}}");
    ocra_spec_hash(s, hash);
    /* python3: hashlib.sha256(<the text above>).hexdigest() */
    CHECK_STR(hash, "8ea2323e3502644c93c97d6b7ebcad90b05568efcd408d1caf9fba4ef2b17e04");
    /* parse(canonical(x)) == x, now with no default name needed */
    CHECK_INT(ocra_spec_parse(text, strlen(text), NULL, &again, NULL, &err), 0);
    if (again) {
        text2 = ocra_spec_canonical(again);
        CHECK_STR(text2, text);
    }
    free(text);
    free(text2);
    ocra_spec_free(s);
    ocra_spec_free(again);
}

static void
test_typed_fields_and_defaults(void)
{
    struct ocra_spec *s = parse_ok(
        "{\"name\":\"x\",\"modelVersion\":\"1.0\",\"toolsAndLibraries\":{\"PyTorch\":\"2.1.0\","
        "\"CUDA\":\"12.1\",\"Foo_Bar\":\"1.0\"},\"artifact\":{\"uri\":\"https://h/x\",\"sha256\":"
        "\"0B09377229B689595DD3616D6088396BDAE7CAA9A52E9F7B09CAB623F4E1D029\"},"
        "\"workload\":{\"replicas\":{\"min\":3}}}",
        P_DEF);

    CHECK(s != NULL);
    if (!s)
        return;
    CHECK_INT(s->n_tools, 3);
    CHECK_STR(s->tools[0].name, "CUDA"); /* sorted by display name */
    CHECK(s->tools[0].system);
    CHECK_STR(ocra_spec_tool_find(s, "torch")->version, "2.1.0");
    CHECK_STR(ocra_spec_tool_find(s, "foo-bar")->name, "Foo_Bar");
    CHECK(!ocra_spec_tool_find(s, "tensorflow"));
    CHECK(s->artifact.present);
    CHECK_STR(s->artifact.sha256,
              "0b09377229b689595dd3616d6088396bdae7caa9a52e9f7b09cab623f4e1d029");
    CHECK_INT(s->artifact.size, 0);
    CHECK_INT(s->workload.type, OCRA_SPEC_INFERENCE);
    CHECK_INT(s->workload.dtype, OCRA_SPEC_FP16);
    CHECK_INT(ocra_spec_dtype_bits(s->workload.dtype), 16);
    CHECK_INT(s->workload.gpus, 1);
    CHECK_INT(s->workload.replicas_min, 3);
    CHECK_INT(s->workload.replicas_max, 3);
    CHECK_INT(s->workload.argc, 0);
    CHECK_INT(s->workload.port, 0);
    CHECK_INT(s->workload.max_duration_s, 0);
    CHECK(s->base_image == NULL);
    ocra_spec_free(s);
}

static void
test_every_problem_is_reported_with_escaped_value(void)
{
    static const char text[] = "{\"name\":\"../../etc\",\"modelVersion\":\"1.0; rm -rf /\","
                               "\"toolsAndLibraries\":{\"PyTorch\":\"2.1.0\\n&& curl evil\"},"
                               "\"workload\":{\"gpus\":65}}";
    struct ocra_spec_policy pol = {0};
    struct ocra_spec_problems probs = {0};
    struct ocra_err err = {0};
    struct ocra_spec *s = NULL;

    CHECK_INT(ocra_spec_parse(text, strlen(text), &pol, &s, &probs, &err), -1);
    CHECK(s == NULL);
    CHECK_INT(probs.n, 4);
    CHECK(strncmp(err.msg, "4 problems; first: name: \"../../etc\"", 36) == 0);
    if (probs.n == 4) {
        CHECK_STR(probs.items[1].msg,
                  "modelVersion: \"1.0; rm -rf /\" is not a PEP 440 version (version.pep440)");
        CHECK(strstr(probs.items[2].msg, "\"2.1.0\\x0a&& curl evil\"") != NULL);
        CHECK_STR(probs.items[3].field, "workload.gpus");
    }
    ocra_spec_problems_fini(&probs);
    /* probs may be NULL: err still summarises */
    CHECK_INT(ocra_spec_parse(text, strlen(text), &pol, &s, NULL, &err), -1);
    CHECK(strncmp(err.msg, "4 problems", 10) == 0);
}

static void
test_did_you_mean_and_truncation(void)
{
    struct ocra_spec_policy pol = {.default_name = "m"};
    struct ocra_spec_problems probs = {0};
    struct ocra_spec *s = NULL;
    struct ocra_buf b;

    ocra_buf_init(&b);
    ocra_buf_puts(&b, "{\"modelversion\":\"1.0\",\"toolsAndLibraries\":{\"JAX\":\"0.4\"},"
                      "\"modelVersion\":\"");
    for (int i = 0; i < 30; i++)
        ocra_buf_puts(&b, "1;"); /* 60 bytes: under the size limit, over the quoted length */
    ocra_buf_puts(&b, "\"}");
    CHECK_INT(ocra_spec_parse(b.data, b.len, &pol, &s, &probs, NULL), -1);
    CHECK_INT(probs.n, 2);
    if (probs.n == 2) {
        CHECK(strstr(probs.items[0].msg, "did you mean \"modelVersion\"?") != NULL);
        CHECK(strstr(probs.items[1].msg, "1;1;...\" is not") != NULL);
    }
    ocra_spec_problems_fini(&probs);
    ocra_buf_fini(&b);
}

static void
test_from_json_rejects_nul_in_argv(void)
{
    json_t *doc =
        json_pack("{s:s, s:s, s:{s:s}, s:{s:[s, s%]}}", "name", "m", "modelVersion", "1.0",
                  "toolsAndLibraries", "JAX", "0.4", "workload", "command", "a", "b\0c", (size_t)3);
    struct ocra_spec_problems probs = {0};
    struct ocra_spec *s = NULL;

    CHECK(doc != NULL);
    CHECK_INT(ocra_spec_from_json(doc, NULL, &s, &probs, NULL), -1);
    CHECK(probs.n == 1 && strcmp(probs.items[0].rule, "string.nul") == 0);
    CHECK(probs.n == 1 && strcmp(probs.items[0].field, "workload.command[1]") == 0);
    ocra_spec_problems_fini(&probs);
    json_decref(doc);
}

static void
test_lexical_rules(void)
{
    CHECK(ocra_spec_name_valid("llama-7b"));
    CHECK(ocra_spec_name_valid("a.b_c__d---e"));
    CHECK(!ocra_spec_name_valid("a_"));
    CHECK(!ocra_spec_name_valid("-a"));
    CHECK(!ocra_spec_name_valid(""));
    CHECK(ocra_spec_version_valid("2023.09"));
    CHECK(ocra_spec_version_valid("1.0.post2"));
    CHECK(ocra_spec_version_valid("1.0+ubuntu.1"));
    CHECK(!ocra_spec_version_valid("1.0.post"));
    CHECK(!ocra_spec_version_valid("1.0+Ubuntu"));
    CHECK(!ocra_spec_version_valid("1.0.dev1.post1"));
    CHECK(ocra_spec_image_ref_valid("ubuntu"));
    CHECK(ocra_spec_image_ref_valid("nvcr.io/nvidia/pytorch:23.10-py3"));
    CHECK(ocra_spec_image_ref_valid("registry:5000/a/b"));
    CHECK(!ocra_spec_image_ref_valid("a:"));
    CHECK(!ocra_spec_image_ref_valid("a/"));
    CHECK(!ocra_spec_image_ref_valid("a@sha256:abc"));
    CHECK(!ocra_spec_image_ref_valid("$(id)"));
}

/* Every file in examples/ is valid under the default policy (name from the file stem), except
 * hostile.json, the block-58 spec, which breaks the name and version rules. */
static void
check_example(const char *file)
{
    char *path = ocra_xasprintf("examples/%s", file), *text = NULL, *stem = ocra_xstrdup(file);
    struct ocra_spec_problems probs = {0};
    struct ocra_err err = {0};
    struct ocra_spec *s = NULL;
    struct ocra_spec_policy pol = {0};
    size_t len = 0;
    int r;

    *strrchr(stem, '.') = '\0';
    pol.default_name = stem;
    CHECK_INT(ocra_file_read(path, OCRA_SPEC_MAX_DOC + 1, &text, &len, &err), 0);
    r = ocra_spec_parse(text, len, &pol, &s, &probs, &err);
    if (strcmp(file, "hostile.json") == 0) {
        bool name = false, version = false, tool = false;

        CHECK_INT(r, -1);
        for (size_t i = 0; i < probs.n; i++) {
            name |= !strcmp(probs.items[i].rule, "name.pattern");
            version |= !strcmp(probs.items[i].rule, "version.pep440") &&
                       !strcmp(probs.items[i].field, "modelVersion");
            tool |= !strcmp(probs.items[i].field, "toolsAndLibraries.PyTorch");
        }
        CHECK(name && version && tool);
    } else {
        if (r < 0)
            fprintf(stderr, "  %s: %s\n", path, err.msg);
        CHECK_INT(r, 0);
    }
    ocra_spec_free(s);
    ocra_spec_problems_fini(&probs);
    free(text);
    free(path);
    free(stem);
}

static void
test_examples_are_valid_and_hostile_is_not(void)
{
    DIR *d = opendir("examples");
    struct dirent *de;
    int n = 0;

    CHECK(d != NULL);
    if (!d)
        return;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);

        if (len > 5 && strcmp(de->d_name + len - 5, ".json") == 0) {
            check_example(de->d_name);
            n++;
        }
    }
    closedir(d);
    CHECK(n >= 4);
}

static void
test_event_round_trip_and_short_id(void)
{
    static const char text[] =
        "{\"eventId\":\"ain:0:0x5b3c0a4f0e7f2b1ad6c1e0f2a9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0:"
        "0\",\"modelVersion\":\"1.2.0\",\"updatedTools\":{\"transformers\":\"4.36.0\",\"PyTorch\":"
        "\"2.2.0\"},\"timestamp\":1795674000123,\"chain\":\"ain\",\"chainId\":0,\"blockNumber\":56,"
        "\"txHash\":\"0x5b3c\",\"opIndex\":0,\"signer\":"
        "\"0x22fF60c8E1bEdeED288BBA0c4b1344B1A6115aB2"
        "\",\"ref\":\"/apps/ocra_demo/models/sentiment-bert\"}";
    json_t *j = ocra_json_parse(text, strlen(text), OCRA_JSON_STRICT, NULL), *back;
    struct ocra_spec_event *ev = NULL;
    struct ocra_err err = {0};
    char *a, *b, short_id[13];

    CHECK_INT(ocra_spec_event_from_json(j, &ev, &err), 0);
    if (!ev) {
        json_decref(j);
        return;
    }
    CHECK_INT(ev->n_updated_tools, 2);
    CHECK_STR(ev->updated_tools[0].key, "PyTorch");
    CHECK_INT(ev->timestamp, 1795674000123);
    CHECK_INT(ev->block_number, 56);
    back = ocra_spec_event_to_json(ev);
    a = ocra_json_canonical(j);
    b = ocra_json_canonical(back);
    CHECK_STR(b, a);
    ocra_spec_event_short_id(ev->event_id, short_id);
    /* python3: hashlib.sha256(b'ain:0:0x5b3c...e1d0:0').hexdigest()[:12] */
    CHECK_STR(short_id, "5d99f008432e");
    free(a);
    free(b);
    json_decref(back);
    json_decref(j);
    ocra_spec_event_free(ev);
}

static void
test_event_from_json_rejects_bad_members(void)
{
    static const char *const bad[] = {
        "{\"eventId\":\"e\",\"modelVersion\":\"1.0\",\"timestamp\":1,\"chain\":\"ain\",\"x\":1}",
        "{\"eventId\":\"e\",\"modelVersion\":\"1.0\",\"timestamp\":\"1\",\"chain\":\"ain\"}",
        "{\"eventId\":\"e\",\"modelVersion\":\"1.0\",\"timestamp\":1,\"chain\":\"btc\"}",
        ("{\"eventId\":\"e\",\"modelVersion\":\"1.0\",\"timestamp\":1,\"chain\":\"evm\","
         "\"opIndex\":1}"),
        "{\"eventId\":\"e f\",\"modelVersion\":\"1.0\",\"timestamp\":1,\"chain\":\"ain\"}",
        "{\"eventId\":\"e\",\"modelVersion\":\"1; x\",\"timestamp\":1,\"chain\":\"ain\"}",
        "{\"eventId\":\"e\",\"modelVersion\":\"1.0\",\"timestamp\":-1,\"chain\":\"ain\"}",
        "[]",
    };

    for (size_t i = 0; i < OCRA_ARRAY_LEN(bad); i++) {
        json_t *j = ocra_json_parse(bad[i], strlen(bad[i]), 0, NULL);
        struct ocra_spec_event *ev = NULL;
        struct ocra_err err = {0};

        CHECK_INT(ocra_spec_event_from_json(j, &ev, &err), -1);
        CHECK_INT(err.code, EINVAL);
        CHECK(ev == NULL);
        json_decref(j);
    }
}

static void
test_image_round_trip(void)
{
    static const char text[] =
        "{\"imageId\":\"127.0.0.1:5000/ocra/sentiment-bert:evt-5d99f008432e\",\"baseImage\":"
        "\"pytorch/pytorch:2.1.0-cuda12.1-cudnn8-runtime\",\"aiModelVersion\":\"1.2.0\","
        "\"toolsAndLibraries\":{\"PyTorch\":\"2.2.0\",\"transformers\":\"4.36.0\"},\"createdAt\":"
        "1795674001000,\"digest\":\"sha256:0b09377229b689595dd3616d6088396bdae7caa9a52e9f7b09cab6"
        "23f4e1d029\",\"tags\":[\"evt-5d99f008432e\",\"1.2.0\"],\"specHash\":\"8ea2323e3502644c93"
        "c97d6b7ebcad90b05568efcd408d1caf9fba4ef2b17e04\"}";
    json_t *j = ocra_json_parse(text, strlen(text), OCRA_JSON_STRICT, NULL), *back, *bad;
    struct ocra_spec_image *im = NULL, *im2 = NULL;
    struct ocra_err err = {0};
    char *a, *b;

    CHECK_INT(ocra_spec_image_from_json(j, &im, &err), 0);
    if (!im) {
        json_decref(j);
        return;
    }
    CHECK_INT(im->n_tags, 2);
    CHECK_STR(im->tags[1], "1.2.0");
    back = ocra_spec_image_to_json(im);
    a = ocra_json_canonical(j);
    b = ocra_json_canonical(back);
    CHECK_STR(b, a);
    bad = json_deep_copy(j);
    json_object_set_new(bad, "tags", json_pack("[s]", "evt;rm"));
    CHECK_INT(ocra_spec_image_from_json(bad, &im2, &err), -1);
    json_object_set_new(bad, "tags", json_array());
    json_object_set_new(bad, "digest", json_string("sha256:00"));
    CHECK_INT(ocra_spec_image_from_json(bad, &im2, &err), -1);
    CHECK(im2 == NULL);
    free(a);
    free(b);
    json_decref(bad);
    json_decref(back);
    json_decref(j);
    ocra_spec_image_free(im);
}

OCRA_TEST_MAIN(OCRA_TEST(test_validation_table), OCRA_TEST(test_validation_generated),
               OCRA_TEST(test_ain_index_object_is_numeric_order),
               OCRA_TEST(test_max_duration_in_seconds), OCRA_TEST(test_lists_as_arrays_for_display),
               OCRA_TEST(test_canonical_form_and_hash_of_seed),
               OCRA_TEST(test_typed_fields_and_defaults),
               OCRA_TEST(test_every_problem_is_reported_with_escaped_value),
               OCRA_TEST(test_did_you_mean_and_truncation),
               OCRA_TEST(test_from_json_rejects_nul_in_argv), OCRA_TEST(test_lexical_rules),
               OCRA_TEST(test_examples_are_valid_and_hostile_is_not),
               OCRA_TEST(test_event_round_trip_and_short_id),
               OCRA_TEST(test_event_from_json_rejects_bad_members),
               OCRA_TEST(test_image_round_trip))
