/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ain_test.c: AIN transactions against the vectors and the chain recorded from a real node
 * (tests/data/ain/, copied from the shared recording): stable stringify byte for byte, tx
 * hashes, RFC 6979 signatures byte for byte, signer recovery, tamper detection; the values AIN
 * stores against the node's own verdicts (storable.json); the node's codes, transient or not.
 */
#include "chain/ain/ain.h"
#include "ocra_test.h"

#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static json_t *
load_vectors(void)
{
    struct ocra_err err = {0};
    json_t *doc = ocra_json_load_file("tests/data/ain/vectors.json", 1 << 20, 0, &err);

    if (!doc)
        fprintf(stderr, "  %s\n", err.msg);
    return doc;
}

static void
test_stringify_matches_vectors(void)
{
    json_t *doc = load_vectors(), *v;
    size_t i;

    CHECK(doc != NULL);
    CHECK_INT(json_array_size(json_object_get(doc, "tx_vectors")), 12);
    json_array_foreach(json_object_get(doc, "tx_vectors"), i, v)
    {
        char *s = ocra_ain_stringify(json_object_get(v, "tx_body"));

        CHECK_STR(s, ocra_json_str(v, "stable_stringify"));
        CHECK_INT(strlen(s), ocra_json_int(v, "stable_stringify_utf8_len", -1));
        free(s);
    }
    json_decref(doc);
}

static void
test_tx_hash_and_signature_reproduced_byte_for_byte(void)
{
    json_t *doc = load_vectors(), *v;
    size_t i;

    json_array_foreach(json_object_get(doc, "tx_vectors"), i, v)
    {
        struct ocra_err err = {0};
        struct ocra_chain_key *key = ocra_chain_key_from_hex(ocra_json_str(v, "private_key"), &err);
        int64_t chain_id = ocra_json_int(v, "chain_id", -1);
        const json_t *body = json_object_get(v, "tx_body");
        char hash[67], *sig;

        CHECK(key != NULL);
        if (!key)
            continue;
        CHECK_STR(ocra_chain_key_address(key), ocra_json_str(v, "address"));
        ocra_ain_tx_hash_hex(body, hash);
        CHECK_STR(hash, ocra_json_str(v, "tx_hash"));
        sig = ocra_ain_sign(key, body, chain_id, &err);
        CHECK_STR(sig, ocra_json_str(v, "signature"));
        free(sig);
        ocra_chain_key_free(key);
    }
    json_decref(doc);
}

static void
test_verify_recovers_signer_of_every_vector(void)
{
    json_t *doc = load_vectors(), *v;
    size_t i;

    json_array_foreach(json_object_get(doc, "tx_vectors"), i, v)
    {
        struct ocra_err err = {0};
        char addr[OCRA_CHAIN_ADDR_LEN + 1] = "";

        CHECK_INT(ocra_ain_verify(json_object_get(v, "tx_body"), ocra_json_str(v, "signature"),
                                  ocra_json_int(v, "chain_id", -1), addr, &err),
                  0);
        CHECK_STR(addr, ocra_json_str(v, "address"));
    }
    json_decref(doc);
}

static void
test_tampered_body_or_signature_is_rejected(void)
{
    json_t *doc = load_vectors();
    json_t *v = json_array_get(json_object_get(doc, "tx_vectors"), 0);
    json_t *body = json_deep_copy(json_object_get(v, "tx_body"));
    char *sig = ocra_xstrdup(ocra_json_str(v, "signature"));
    char addr[OCRA_CHAIN_ADDR_LEN + 1] = "";
    struct ocra_err err = {0};

    /* A changed body no longer matches the hash inside the signature. */
    json_object_set_new(json_object_get(body, "operation"), "value", json_string("1.1.2"));
    CHECK_INT(ocra_ain_verify(body, sig, 0, addr, &err), -1);
    CHECK(strstr(err.msg, "hash differs") != NULL);
    /* A flipped bit of s recovers someone else, never the real signer. */
    sig[2 + 64 + 64 + 10] = sig[2 + 64 + 64 + 10] == '0' ? '1' : '0';
    if (ocra_ain_verify(json_object_get(v, "tx_body"), sig, 0, addr, &err) == 0)
        CHECK(!ocra_chain_address_equal(addr, ocra_json_str(v, "address")));
    /* A v that does not belong to the chain id. */
    CHECK_INT(ocra_ain_verify(json_object_get(v, "tx_body"), ocra_json_str(v, "signature"), 1, addr,
                              &err),
              -1);
    CHECK(strstr(err.msg, "v 28") != NULL);
    CHECK_INT(ocra_ain_verify(json_object_get(v, "tx_body"), "0x1234", 0, addr, &err), -1);
    free(sig);
    json_decref(body);
    json_decref(doc);
}

/* Every transaction of the recorded chain (genesis and votes too) hashes and verifies. */
/* Checks every transaction of the blocks in path; returns how many. */
static size_t
verify_chain_file(const char *path)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0, checked = 0;
    ssize_t n;

    CHECK(f != NULL);
    if (!f)
        return 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        json_t *block = ocra_json_parse(line, (size_t)n, 0, NULL), *tx;
        const char *lists[] = {"transactions", "last_votes"};

        CHECK(block != NULL);
        for (size_t l = 0; block && l < 2; l++) {
            size_t i;

            json_array_foreach(json_object_get(block, lists[l]), i, tx)
            {
                char hash[67], addr[OCRA_CHAIN_ADDR_LEN + 1] = "";
                struct ocra_err err = {0};

                ocra_ain_tx_hash_hex(json_object_get(tx, "tx_body"), hash);
                CHECK_STR(hash, ocra_json_str(tx, "hash"));
                CHECK_INT(ocra_ain_verify(json_object_get(tx, "tx_body"),
                                          ocra_json_str(tx, "signature"), 0, addr, &err),
                          0);
                CHECK(ocra_chain_address_equal(addr, ocra_json_str(tx, "address")));
                checked++;
            }
        }
        json_decref(block);
    }
    free(line);
    fclose(f);
    return checked;
}

static void
test_every_recorded_transaction_verifies(void)
{
    CHECK_INT(verify_chain_file("tests/data/ain/chain.jsonl"), 149);
    /* the synthesized blocks after the recording are signed with key A by ain-util */
    CHECK_INT(verify_chain_file("tests/data/ain/synth.jsonl"), 11);
}

static void
test_js_number_formatting(void)
{
    static const struct {
        const char *in, *out;
    } v[] = {
        {"1e21", "1e+21"},
        {"1.5e-7", "1.5e-7"},
        {"0.1", "0.1"},
        {"5.0", "5"},
        {"123.456", "123.456"},
        {"1e-6", "0.000001"},
        {"-0.0", "0"},
        {"1e20", "100000000000000000000"},
        {"9007199254740993", "9007199254740992"},
        {"-42", "-42"},
        {"2.5e+300", "2.5e+300"},
        {"0.30000000000000004", "0.30000000000000004"},
    };

    for (size_t i = 0; i < OCRA_ARRAY_LEN(v); i++) {
        json_t *j = ocra_json_parse(v[i].in, strlen(v[i].in), 0, NULL);
        char *s = ocra_ain_stringify(j);

        CHECK_STR(s, v[i].out);
        free(s);
        json_decref(j);
    }
}

/* JavaScript prints numbers below 1e21 in full; such a literal in a block must still parse
 * and hash as the node hashes it (a real), or one write of 1e20 would stall the scanner. */
static void
test_big_integer_literals_read_as_javascript_does(void)
{
    const char *text = "{\"a\":100000000000000000000,\"b\":-99999999999999999999,"
                       "\"c\":\"123456789012345678901\",\"d\":9007199254740993}";
    json_t *j = ocra_json_parse(text, strlen(text), OCRA_JSON_JS_NUMBERS, NULL);
    char *s;

    CHECK(j != NULL);
    CHECK(ocra_json_parse(text, strlen(text), 0, NULL) == NULL); /* what plain jansson does */
    s = ocra_ain_stringify(j);
    CHECK_STR(s, "{\"a\":100000000000000000000,\"b\":-100000000000000000000,"
                 "\"c\":\"123456789012345678901\",\"d\":9007199254740992}");
    free(s);
    json_decref(j);
}

/* AIN stores no arrays and no empty objects: lists become index-keyed objects, in order. */
static void
test_encode_value_for_ain(void)
{
    const char *in = "{\"w\":{\"command\":[\"a\",\"b\",[1,2]],\"n\":3}}";
    const char *empty = "{\"w\":{\"env\":{}}}";
    json_t *j = ocra_json_parse(in, strlen(in), 0, NULL), *e, *bad;
    struct ocra_err err = {0};
    char *s;

    e = ocra_ain_encode_value(j, &err);
    s = ocra_json_canonical(e);
    CHECK_STR(s, "{\"w\":{\"command\":{\"0\":\"a\",\"1\":\"b\",\"2\":{\"0\":1,\"1\":2}},\"n\":3}}");
    free(s);
    bad = ocra_json_parse(empty, strlen(empty), 0, NULL);
    CHECK(ocra_ain_encode_value(bad, &err) == NULL);
    CHECK_STR(err.msg, "/w/env: AIN cannot store an empty object");
    json_decref(bad);
    json_decref(e);
    json_decref(j);
}

/*
 * The node's own verdicts (tests/data/ain/storable.json: ain-blockchain 1.6.0's
 * isValidJsObjectForStates run on each value): the encoder stores exactly what the node
 * stores and names the path the node names. Values with lists are left to the test above.
 */
static void
test_encode_value_agrees_with_the_node(void)
{
    struct ocra_err err = {0};
    json_t *doc = ocra_json_load_file("tests/data/ain/storable.json", 1 << 20, 0, &err), *c;
    size_t i, n = 0;

    CHECK(doc != NULL);
    CHECK_INT(ocra_json_int(doc, "state_label_length_limit", -1), OCRA_AIN_LABEL_MAX);
    json_array_foreach(json_object_get(doc, "cases"), i, c)
    {
        bool valid = json_is_true(json_object_get(c, "valid"));
        const char *path = ocra_json_str(c, "invalid_path");
        char want[sizeof(err.msg)]; /* a long path is cut in the message as it is here */
        json_t *enc;

        if (strstr(ocra_json_str(c, "what"), "array"))
            continue;
        enc = ocra_ain_encode_value(json_object_get(c, "value"), &err);
        n++;
        if ((enc != NULL) != valid)
            fprintf(stderr, "  %s: node %s, encoder %s\n", ocra_json_str(c, "what"),
                    valid ? "stores it" : "refuses it", enc ? "stores it" : err.msg);
        CHECK((enc != NULL) == valid);
        (void)snprintf(want, sizeof(want), "%s: ", path);
        if (!enc && !valid && strncmp(err.msg, want, strlen(want)) != 0)
            fprintf(stderr, "  %s: node names %s, encoder says %s\n", ocra_json_str(c, "what"),
                    path, err.msg);
        if (!enc && !valid)
            CHECK(strncmp(err.msg, want, strlen(want)) == 0);
        json_decref(enc);
    }
    CHECK(n >= 30);
    json_decref(doc);
}

/* Node codes: only what may change by waiting is retried (common/result-code.js). */
static void
test_node_codes_transient_or_permanent(void)
{
    static const int64_t transient[] = {10701, 10704, 10705,  10715,  10716,
                                        16001, 18001, -32603, -32000, -32099};
    static const int64_t permanent[] = {10101, 10102, 10104, 10712, 10713, 10801, 10805,
                                        10901, 10902, 10905, 10907, 11001, 11103, 12101,
                                        12103, 12201, 30101, 30103, 30302, 30304, -32601};

    for (size_t i = 0; i < OCRA_ARRAY_LEN(transient); i++)
        CHECK(ocra_ain_code_transient(transient[i]));
    for (size_t i = 0; i < OCRA_ARRAY_LEN(permanent); i++)
        CHECK(!ocra_ain_code_transient(permanent[i]));
}

/* A missing member (a hostile block's transaction without tx_body) is null, not a crash. */
static void
test_stringify_of_missing_value_is_null(void)
{
    char *s = ocra_ain_stringify(NULL), hash[67];

    CHECK_STR(s, "null");
    free(s);
    ocra_ain_tx_hash_hex(NULL, hash);
    CHECK_INT(strlen(hash), 66);
}

static void
test_key_file_must_be_private(void)
{
    char path[] = "/tmp/ocra_key_XXXXXX";
    const char *hex = "2d3486a07efc1cee2c3e554cba6c25a81f7406b73bf4bf7f0166a7b8966d7aa1\n";
    struct ocra_err err = {0};
    struct ocra_chain_key *key;
    int fd = mkstemp(path);

    CHECK(fd >= 0 && write(fd, hex, strlen(hex)) == (ssize_t)strlen(hex));
    ocra_fd_close(fd);
    chmod(path, 0644);
    CHECK(ocra_chain_key_load(path, &err) == NULL);
    CHECK_INT(err.code, EACCES);
    chmod(path, 0600);
    key = ocra_chain_key_load(path, &err);
    CHECK(key != NULL);
    if (key)
        CHECK_STR(ocra_chain_key_address(key), "0x22fF60c8E1bEdeED288BBA0c4b1344B1A6115aB2");
    ocra_chain_key_free(key);
    unlink(path);
    CHECK(ocra_chain_key_from_hex("00", &err) == NULL);
    CHECK(ocra_chain_key_from_hex(
              "0000000000000000000000000000000000000000000000000000000000000000", &err) == NULL);
}

OCRA_TEST_MAIN(OCRA_TEST(test_stringify_matches_vectors),
               OCRA_TEST(test_tx_hash_and_signature_reproduced_byte_for_byte),
               OCRA_TEST(test_verify_recovers_signer_of_every_vector),
               OCRA_TEST(test_tampered_body_or_signature_is_rejected),
               OCRA_TEST(test_every_recorded_transaction_verifies),
               OCRA_TEST(test_js_number_formatting),
               OCRA_TEST(test_stringify_of_missing_value_is_null),
               OCRA_TEST(test_encode_value_for_ain),
               OCRA_TEST(test_encode_value_agrees_with_the_node),
               OCRA_TEST(test_node_codes_transient_or_permanent),
               OCRA_TEST(test_big_integer_literals_read_as_javascript_does),
               OCRA_TEST(test_key_file_must_be_private))
