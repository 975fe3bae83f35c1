/* SPDX-License-Identifier: Apache-2.0 */
/*
 * evm_test.c: unit tests of the EVM module's pure parts: RLP against the Yellow Paper and
 * ethereum/tests vectors, the EIP-155 example transaction signed byte for byte, topic hashes,
 * ABI encoding, and hostile ModelPublished logs (wrong offsets, lengths past the end, non-UTF-8,
 * a forged name hash) turned into clean rejections. The node-facing parts are tested against
 * a real anvil by tests/it_evm.sh.
 */
#include "chain/evm/evm_int.h"

#include <errno.h>

#include "ocra_test.h"
#include "store/store.h"

static char *
rlp_hex(struct ocra_buf *b)
{
    static char out[1024];

    ocra_hex_encode((const uint8_t *)b->data, b->len, out);
    ocra_buf_reset(b);
    return out;
}

static void
test_rlp_encodes_yellow_paper_vectors(void)
{
    struct ocra_buf b;
    uint8_t long_s[56];

    ocra_buf_init(&b);
    ocra_evm_rlp_bytes(&b, (const uint8_t *)"dog", 3);
    CHECK_STR(rlp_hex(&b), "83646f67");
    ocra_evm_rlp_uint(&b, 0);
    CHECK_STR(rlp_hex(&b), "80");
    ocra_evm_rlp_uint(&b, 15);
    CHECK_STR(rlp_hex(&b), "0f");
    ocra_evm_rlp_uint(&b, 1024);
    CHECK_STR(rlp_hex(&b), "820400");
    ocra_evm_rlp_bytes(&b, NULL, 0);
    CHECK_STR(rlp_hex(&b), "80");
    ocra_evm_rlp_list_header(&b, 8);
    ocra_evm_rlp_bytes(&b, (const uint8_t *)"cat", 3);
    ocra_evm_rlp_bytes(&b, (const uint8_t *)"dog", 3);
    CHECK_STR(rlp_hex(&b), "c88363617483646f67");
    memset(long_s, 'a', sizeof(long_s));
    ocra_evm_rlp_bytes(&b, long_s, sizeof(long_s));
    CHECK(strncmp(rlp_hex(&b), "b838616161", 10) == 0);
    ocra_buf_fini(&b);
}

static void
test_rlp_decoder_rejects_non_canonical_and_truncated(void)
{
    static const struct {
        const char *hex;
        bool ok;
    } cases[] = {
        {"83646f67", true},
        {"c88363617483646f67", true},
        {"7f", true},
        {"8164", false},               /* single byte < 0x80 with a header */
        {"83646f", false},             /* truncated */
        {"b80161", false},             /* long form for a short length */
        {"b90000", false},             /* length with a leading zero */
        {"bfffffffffffffffff", false}, /* 8-byte length past the end */
        {"f8", false},                 /* length of length past the end */
        {"", false},
    };
    for (size_t i = 0; i < OCRA_ARRAY_LEN(cases); i++) {
        uint8_t buf[64];
        size_t n = strlen(cases[i].hex) / 2, used = 0;
        struct ocra_evm_rlp_item it;
        struct ocra_err err = {0};

        CHECK(ocra_hex_decode(cases[i].hex, buf, n, NULL) == 0 || n == 0);
        if ((ocra_evm_rlp_decode(buf, n, &it, &used, &err) == 0) != cases[i].ok)
            fprintf(stderr, "  case %s: %s\n", cases[i].hex, err.msg);
        CHECK((ocra_evm_rlp_decode(buf, n, &it, &used, NULL) == 0) == cases[i].ok);
    }
}

/* The example of EIP-155 itself. */
static void
test_legacy_tx_matches_eip155_example(void)
{
    struct ocra_chain_key *key = ocra_chain_key_from_hex(
        "4646464646464646464646464646464646464646464646464646464646464646", NULL);
    struct ocra_evm_tx tx = {.legacy = true,
                             .chain_id = 1,
                             .nonce = 9,
                             .max_fee = 20000000000ull,
                             .gas = 21000,
                             .value = 1000000000000000000ull};
    struct ocra_buf raw;
    char hash[67], hex[512];

    CHECK(key != NULL);
    memset(tx.to, 0x35, sizeof(tx.to));
    CHECK_INT(ocra_evm_tx_sign(&tx, key, &raw, hash, NULL), 0);
    ocra_hex_encode((const uint8_t *)raw.data, raw.len, hex);
    CHECK_STR(hex, "f86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a7"
                   "6400008025a028ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a0"
                   "67cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83");
    ocra_buf_fini(&raw);
    ocra_chain_key_free(key);
}

static void
test_type2_tx_is_rlp_list_after_type_byte(void)
{
    struct ocra_chain_key *key = ocra_chain_key_from_hex(
        "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80", NULL);
    struct ocra_evm_tx tx = {
        .chain_id = 31337, .nonce = 1, .max_priority_fee = 1, .max_fee = 2, .gas = 100000};
    struct ocra_evm_rlp_item it, field;
    struct ocra_buf raw;
    size_t used, off = 0, n = 0;
    char hash[67];

    CHECK_INT(ocra_evm_tx_sign(&tx, key, &raw, hash, NULL), 0);
    CHECK_INT((uint8_t)raw.data[0], 2);
    CHECK_INT(ocra_evm_rlp_decode((const uint8_t *)raw.data + 1, raw.len - 1, &it, &used, NULL), 0);
    CHECK(it.list);
    CHECK_INT(used, raw.len - 1);
    while (off < it.len &&
           ocra_evm_rlp_decode(it.p + off, it.len - off, &field, &used, NULL) == 0) {
        off += used;
        n++;
    }
    CHECK_INT(n, 12);
    CHECK_INT(strlen(hash), 66);
    ocra_buf_fini(&raw);
    ocra_chain_key_free(key);
}

static void
test_topics_are_keccak_of_signatures(void)
{
    char t[67];

    ocra_evm_topic("ModelPublished(bytes32,address,string,string)", t);
    CHECK_STR(t, OCRA_EVM_TOPIC_MODEL_PUBLISHED);
    ocra_evm_topic("StatusReported(bytes32,address,string)", t);
    CHECK_STR(t, OCRA_EVM_TOPIC_STATUS_REPORTED);
    ocra_evm_topic("Transfer(address,address,uint256)", t);
    CHECK_STR(t, "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef");
}

/* ABI data of (string a, string b) as a log carries it (the call without its selector). */
static uint8_t *
event_data(const char *a, size_t an, const char *b, size_t bn, size_t *len)
{
    size_t n;
    uint8_t *call = ocra_evm_abi_call_2str("x()", a, an, b, bn, &n);

    memmove(call, call + 4, n - 4);
    *len = n - 4;
    return call;
}

static void
test_abi_round_trips_two_strings(void)
{
    size_t len, lens[2];
    const uint8_t *vals[2];
    uint8_t *d = event_data("sentiment-bert", 14, "{\"modelVersion\":\"1\"}", 20, &len);

    CHECK_INT(len, 32 * 6);
    CHECK_INT(ocra_evm_abi_strings(d, len, 2, vals, lens, NULL), 0);
    CHECK_INT(lens[0], 14);
    CHECK(memcmp(vals[0], "sentiment-bert", 14) == 0);
    CHECK_INT(lens[1], 20);
    free(d);
}

static void
test_abi_rejects_hostile_offsets_and_lengths(void)
{
    size_t len, lens[2];
    const uint8_t *vals[2];
    uint8_t *d = event_data("ab", 2, "cd", 2, &len);
    struct ocra_err err = {0};

    d[31] = 0x41; /* offset not a multiple of 32 */
    CHECK_INT(ocra_evm_abi_strings(d, len, 2, vals, lens, &err), -1);
    CHECK_INT(err.code, EINVAL);
    d[31] = (uint8_t)len; /* offset at the end */
    CHECK_INT(ocra_evm_abi_strings(d, len, 2, vals, lens, NULL), -1);
    d[31] = 0x40;
    d[0] = 1; /* offset with high bytes set */
    CHECK_INT(ocra_evm_abi_strings(d, len, 2, vals, lens, NULL), -1);
    d[0] = 0;
    d[64 + 31] = 97; /* length past the end */
    CHECK_INT(ocra_evm_abi_strings(d, len, 2, vals, lens, NULL), -1);
    d[64 + 31] = 0xff;
    d[64 + 24] = 0xff; /* length near 2^64 */
    CHECK_INT(ocra_evm_abi_strings(d, len, 2, vals, lens, NULL), -1);
    d[64 + 24] = 0;
    d[64 + 31] = 2;
    CHECK_INT(ocra_evm_abi_strings(d, len, 2, vals, lens, NULL), 0);
    CHECK_INT(ocra_evm_abi_strings(d, 63, 2, vals, lens, NULL), -1); /* truncated */
    CHECK_INT(ocra_evm_abi_strings(d, 0, 2, vals, lens, NULL), -1);
    free(d);
}

/* A log as eth_getLogs returns it, for ocra_evm_log_event. */
static json_t *
make_log(const char *name, size_t nn, const char *spec, size_t sn, const char *name_hash)
{
    size_t len;
    uint8_t *d = event_data(name, nn, spec, sn, &len), h[32];
    char *hex = ocra_xmalloc(2 * len + 3), nh[67] = "0x";
    json_t *log;

    hex[0] = '0';
    hex[1] = 'x';
    ocra_hex_encode(d, len, hex + 2);
    ocra_keccak256(name, nn, h);
    ocra_hex_encode(h, 32, nh + 2);
    log = json_pack(
        "{s:s,s:s,s:s,s:s,s:s,s:[s,s,s],s:s,s:b}", "address",
        "0x5fbdb2315678afecb367f032d93f642f64180aa3", "blockNumber", "0x5", "logIndex", "0x0",
        "blockHash", "0x1111111111111111111111111111111111111111111111111111111111111111",
        "transactionHash", "0x2222222222222222222222222222222222222222222222222222222222222222",
        "topics", OCRA_EVM_TOPIC_MODEL_PUBLISHED, name_hash ? name_hash : nh,
        "0x000000000000000000000000f39fd6e51aad88f6f4ce6ab8827279cfffb92266", "data", hex,
        "removed", 0);
    free(hex);
    free(d);
    return log;
}

static const char *
judge_log(json_t *log, const char **reason, bool *trusted)
{
    static const char *const allow[] = {"0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"};
    static char status[16], why[OCRA_ERR_MAX];
    struct ocra_evm_scan_ctx c = {.source = "evm:31337",
                                  .contract = "0x5FbDB2315678afecb367f032d93F642f64180aa3",
                                  .allow = allow,
                                  .n_allow = 1,
                                  .from = 0,
                                  .to = 10};
    struct ocra_evm_range r = {0};
    struct ocra_err err = {0};

    status[0] = why[0] = '\0';
    if (ocra_evm_log_event(&c, &r, log, &err) == 0 && r.n == 1) {
        (void)snprintf(status, sizeof(status), "%s", r.evs[0].status);
        (void)snprintf(why, sizeof(why), "%s", r.evs[0].reason ? r.evs[0].reason : "");
        *trusted = r.evs[0].trusted;
    } else {
        (void)snprintf(status, sizeof(status), "error");
        (void)snprintf(why, sizeof(why), "%s", err.msg);
    }
    ocra_evm_range_fini(&r);
    json_decref(log);
    *reason = why;
    return status;
}

static void
test_hostile_logs_are_rejected_cleanly(void)
{
    const char *reason;
    bool trusted = false;
    json_t *log;

    CHECK_STR(judge_log(make_log("bert", 4, "{\"a\":1}", 7, NULL), &reason, &trusted), "accepted");
    CHECK(trusted);
    CHECK_STR(judge_log(make_log("bert", 4, "{\"a\":\xff}", 7, NULL), &reason, &trusted),
              "rejected");
    CHECK(strstr(reason, "UTF-8") != NULL);
    CHECK_STR(judge_log(make_log("bert", 4, "{\"a\":", 5, NULL), &reason, &trusted), "rejected");
    CHECK(strstr(reason, "not JSON") != NULL);
    CHECK_STR(judge_log(make_log("a/b", 3, "{}", 2, NULL), &reason, &trusted), "rejected");
    CHECK(strstr(reason, "model name") != NULL);
    CHECK_STR(
        judge_log(make_log("bert", 4, "{}", 2,
                           "0x1234567812345678123456781234567812345678123456781234567812345678"),
                  &reason, &trusted),
        "rejected");
    CHECK(strstr(reason, "nameHash") != NULL);
    log = make_log("bert", 4, "{}", 2, NULL);
    json_object_set_new(log, "data",
                        json_string("0x0000000000000000000000000000000000000000"
                                    "0000000000000000000000ff"));
    CHECK_STR(judge_log(log, &reason, &trusted), "rejected");
    CHECK(strstr(reason, "abi") != NULL);
    log = make_log("bert", 4, "{}", 2, NULL);
    json_object_set_new(log, "data", json_string("0xzz"));
    CHECK_STR(judge_log(log, &reason, &trusted), "rejected");
    log = make_log("bert", 4, "{}", 2, NULL);
    json_object_set_new(log, "blockNumber", json_string("0x99"));
    CHECK_STR(judge_log(log, &reason, &trusted), "error"); /* outside the range: retried */
    log = make_log("bert", 4, "{}", 2, NULL);
    json_array_set_new(
        json_object_get(log, "topics"), 2,
        json_string("0x100000000000000000000000f39fd6e51aad88f6f4ce6ab8827279cfffb92266"));
    CHECK_STR(judge_log(log, &reason, &trusted), "rejected");
    CHECK(strstr(reason, "not an address") != NULL);
}

static void
test_quantities(void)
{
    uint64_t v = 0;
    json_t *j = json_string("0x1f");

    CHECK_INT(ocra_evm_quantity(j, &v, NULL), 0);
    CHECK_INT(v, 31);
    json_decref(j);
    j = json_string("0x");
    CHECK_INT(ocra_evm_quantity(j, &v, NULL), -1);
    json_decref(j);
    j = json_string("0x10000000000000000");
    CHECK_INT(ocra_evm_quantity(j, &v, NULL), -1);
    json_decref(j);
    j = json_integer(5);
    CHECK_INT(ocra_evm_quantity(j, &v, NULL), -1);
    json_decref(j);
}

/* The ABI's custom errors by name: the selector anvil shows for an account that is not a
 * reporter (0xe5ce9c09), every error of the ABI in the tree, Error(string), and data that
 * must stay hex (unknown selector, arguments past the end). */
static void
test_revert_data_is_named_from_the_abi(void)
{
    static const uint8_t not_reporter[] = {0xe5, 0xce, 0x9c, 0x09};
    static const uint8_t unknown[] = {0xde, 0xad, 0xbe, 0xef};
    char out[256] = "untouched", sig[128];
    json_t *abi, *e;
    size_t i, n = 0;
    uint8_t h[32], buf[4 + 96] = {0x08, 0xc3, 0x79, 0xa0};

    CHECK(ocra_evm_revert_describe(not_reporter, 4, out, sizeof(out)));
    CHECK(strncmp(out, "NotReporter(): the sending account is not a reporter", 52) == 0);
    CHECK(strstr(out, "setReporter(ACCOUNT, true)") != NULL);
    CHECK(ocra_evm_revert_describe_hex("0xe5ce9c09", out, sizeof(out)));
    CHECK(!ocra_evm_revert_describe(unknown, 4, out, sizeof(out)));
    CHECK(!ocra_evm_revert_describe_hex("0xe5ce9c", out, sizeof(out)));
    CHECK(!ocra_evm_revert_describe_hex(NULL, out, sizeof(out)));

    abi = json_load_file(OCRA_SOURCE_DIR "/contracts/ModelRegistry.abi.json", 0, NULL);
    CHECK(json_is_array(abi));
    json_array_foreach(abi, i, e)
    {
        const char *name = ocra_json_str(e, "name");

        if (strcmp(ocra_json_str(e, "type") ? ocra_json_str(e, "type") : "", "error") != 0)
            continue;
        CHECK(json_array_size(json_object_get(e, "inputs")) == 0); /* this contract's are bare */
        (void)snprintf(sig, sizeof(sig), "%s()", name);
        ocra_keccak256(sig, strlen(sig), h);
        out[0] = '\0';
        CHECK(ocra_evm_revert_describe(h, 4, out, sizeof(out)));
        CHECK(strncmp(out, sig, strlen(sig)) == 0);
        n++;
    }
    CHECK(n >= 5); /* NotOwner NotPublisher NotReporter EmptyName ZeroAddress */
    json_decref(abi);

    /* Error(string): offset 32, length 5, "hello" */
    memset(buf + 4, 0, 96);
    buf[4 + 31] = 32;
    buf[4 + 63] = 5;
    memcpy(buf + 4 + 64, "hello", 5);
    CHECK(ocra_evm_revert_describe(buf, sizeof(buf), out, sizeof(out)));
    CHECK_STR(out, "Error(reason=\"hello\")");
    buf[4 + 63] = 200; /* a length past the end: malformed, stays hex */
    CHECK(!ocra_evm_revert_describe(buf, sizeof(buf), out, sizeof(out)));
    CHECK(!ocra_evm_revert_describe(buf, 4 + 16, out, sizeof(out)));
}

OCRA_TEST_MAIN(OCRA_TEST(test_rlp_encodes_yellow_paper_vectors),
               OCRA_TEST(test_rlp_decoder_rejects_non_canonical_and_truncated),
               OCRA_TEST(test_legacy_tx_matches_eip155_example),
               OCRA_TEST(test_type2_tx_is_rlp_list_after_type_byte),
               OCRA_TEST(test_topics_are_keccak_of_signatures),
               OCRA_TEST(test_abi_round_trips_two_strings),
               OCRA_TEST(test_abi_rejects_hostile_offsets_and_lengths),
               OCRA_TEST(test_hostile_logs_are_rejected_cleanly), OCRA_TEST(test_quantities),
               OCRA_TEST(test_revert_data_is_named_from_the_abi))
