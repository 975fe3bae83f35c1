/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_publish.c: `ocra publish` validates a model spec, writes it at a path on the chain in
 * a signed transaction, waits until the transaction is final, and prints its hash.
 */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "chain/ain/ain.h"
#include "chain/evm/evm.h"
#include "spec/spec.h"

struct publish_opts {
    const char *chain, *rpc, *key_file, *path, *file, *contract, *name;
    const char *config_path; /* where the configuration came from, for messages */
    bool key_from_config;    /* no --key-file: the operator's key (ain|evm.key_file) signs */
    const char **http_hosts;
    size_t n_http_hosts;
    const char **allow_hosts;
    size_t n_allow_hosts;
    int64_t chain_id, nonce, timestamp_ms, gas_price, wait_ms;
    bool chain_id_set, gas_price_set, evm;
};

/* Validates the spec as ocra validates what it reads from a chain; returns its JSON tree. */
static json_t *
load_spec(const struct publish_opts *o, struct ocra_err *err)
{
    struct ocra_spec_problems probs = {0};
    struct ocra_spec_policy pol = {.http_hosts = o->http_hosts,
                                   .n_http_hosts = o->n_http_hosts,
                                   .allow_hosts = o->allow_hosts,
                                   .n_allow_hosts = o->n_allow_hosts};
    struct ocra_spec *spec = NULL;
    const char *slash = o->path ? strrchr(o->path, '/') : NULL;
    json_t *doc;

    pol.default_name = o->name ? o->name : slash ? slash + 1 : NULL;
    doc = ocra_json_load_file(o->file, 1u << 20, OCRA_JSON_STRICT, err);
    if (!doc)
        return NULL;
    if (ocra_spec_from_json(doc, &pol, &spec, &probs, err) < 0) {
        for (size_t i = 0; i < probs.n; i++)
            fprintf(stderr, "%s: %s%s%s [%s]\n", o->file, probs.items[i].field,
                    probs.items[i].field[0] ? ": " : "", probs.items[i].text, probs.items[i].rule);
        ocra_err_wrap(err, "%s", o->file);
        json_decref(doc);
        doc = NULL;
    }
    ocra_spec_problems_fini(&probs);
    ocra_spec_free(spec);
    return doc;
}

/* Says on stderr which key signs and where it came from: the operator's key is the daemon's
 * reporting account, which a publish uses only when no --key-file is given. */
static void
say_signer(const struct publish_opts *o, const struct ocra_chain_key *key)
{
    if (o->key_from_config)
        fprintf(stderr,
                "publish: signing as %s with the operator's key (%s.key_file = %s from %s; no "
                "--key-file given)\n",
                ocra_chain_key_address(key), o->chain, o->key_file,
                o->config_path ? o->config_path : "the configuration");
    else
        fprintf(stderr, "publish: signing as %s with the key in %s (--key-file)\n",
                ocra_chain_key_address(key), o->key_file);
}

/* A failed send: the error, and with the operator's key, that it was the one that signed. */
static int
fail_send(const struct publish_opts *o, const struct ocra_chain_key *key,
          const struct ocra_err *err)
{
    if (o->key_from_config)
        return ocra_cli_fail(OCRA_CLI_FAIL,
                             "publish: %s (signed by %s, the operator's key from %s.key_file: "
                             "--key-file FILE signs with the publisher's key)",
                             err->msg, ocra_chain_key_address(key), o->chain);
    return ocra_cli_fail(OCRA_CLI_FAIL, "publish: %s (signed by %s, the key in %s)", err->msg,
                         ocra_chain_key_address(key), o->key_file);
}

/* EVM: ModelRegistry.publish(name, spec) in a signed EIP-1559 transaction. */
static int
publish_evm(const struct publish_opts *o)
{
    struct ocra_evm_tx_result res = {0};
    struct ocra_chain_key *key = NULL;
    struct ocra_err err = {0};
    char *text = NULL;
    json_t *doc = NULL;
    int status = OCRA_CLI_USAGE;

    doc = load_spec(o, &err);
    if (!doc || !(key = ocra_chain_key_load(o->key_file, &err))) {
        ocra_cli_fail(status, "publish: %s", err.msg);
        goto out;
    }
    text = ocra_json_compact(doc);
    say_signer(o, key);
    ocra_log_info("publish: contract=%s signer=%s rpc=%s", o->contract, ocra_chain_key_address(key),
                  o->rpc);
    if (ocra_evm_publish(o->rpc, key, o->contract, o->name, text, o->wait_ms, &res, &err) < 0) {
        if (res.tx_hash[0])
            printf("%s\n", res.tx_hash);
        status = fail_send(o, key, &err);
        goto out;
    }
    printf("%s\n", res.tx_hash);
    ocra_log_info("publish: tx=%s block=%lld", res.tx_hash, (long long)res.block);
    status = OCRA_CLI_OK;
out:
    ocra_chain_key_free(key);
    free(text);
    json_decref(doc);
    return status;
}

static int
publish(const struct publish_opts *o)
{
    struct ocra_ain_rpc_opts ro = {.url = o->rpc, .retries = 3};
    struct ocra_ain_tx_result res;
    struct ocra_chain_key *key = NULL;
    struct ocra_ain_rpc *rpc = NULL;
    json_t *doc = NULL, *value = NULL;
    struct ocra_err err = {0};
    int status = OCRA_CLI_USAGE;

    doc = load_spec(o, &err);
    if (!doc || !(value = ocra_ain_encode_value(doc, &err))) {
        ocra_cli_fail(status, "publish: %s", err.msg);
        goto out;
    }
    key = ocra_chain_key_load(o->key_file, &err);
    if (!key) {
        ocra_cli_fail(status, "publish: %s", err.msg);
        goto out;
    }
    rpc = ocra_ain_rpc_new(&ro);
    say_signer(o, key);
    ocra_log_info("publish: path=%s signer=%s rpc=%s", o->path, ocra_chain_key_address(key),
                  o->rpc);
    if (ocra_ain_send_set_value(rpc, key, o->chain_id, o->path, value, o->nonce, o->timestamp_ms,
                                o->gas_price, o->wait_ms, &res, &err) < 0) {
        if (res.tx_hash[0])
            printf("%s\n", res.tx_hash);
        status = fail_send(o, key, &err);
        goto out;
    }
    printf("%s\n", res.tx_hash);
    if (res.state[0])
        ocra_log_info("publish: tx=%s state=%s block=%lld", res.tx_hash, res.state,
                      (long long)res.block);
    status = OCRA_CLI_OK;
out:
    ocra_ain_rpc_free(rpc);
    ocra_chain_key_free(key);
    json_decref(value);
    json_decref(doc);
    return status;
}

static int
parse_opts(int argc, char **argv, struct publish_opts *o)
{
    static const struct option longopts[] = {
        {"chain", required_argument, NULL, 'C'},      {"rpc", required_argument, NULL, 'r'},
        {"key-file", required_argument, NULL, 'k'},   {"path", required_argument, NULL, 'p'},
        {"chain-id", required_argument, NULL, 'i'},   {"nonce", required_argument, NULL, 'n'},
        {"timestamp", required_argument, NULL, 't'},  {"gas-price", required_argument, NULL, 'g'},
        {"wait", required_argument, NULL, 'w'},       {"http-host", required_argument, NULL, 'H'},
        {"allow-host", required_argument, NULL, 'A'}, {"contract", required_argument, NULL, 'K'},
        {"name", required_argument, NULL, 'N'},       {NULL, 0, NULL, 0},
    };
    int c, rc = OCRA_CLI_OK;

    while (rc == OCRA_CLI_OK && (c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'C':
            o->chain = optarg;
            break;
        case 'r':
            o->rpc = optarg;
            break;
        case 'k':
            o->key_file = optarg;
            break;
        case 'p':
            o->path = optarg;
            break;
        case 'H':
            o->http_hosts[o->n_http_hosts++] = optarg;
            break;
        case 'A':
            o->allow_hosts[o->n_allow_hosts++] = optarg;
            break;
        case 'K':
            o->contract = optarg;
            break;
        case 'N':
            o->name = optarg;
            break;
        case 'i':
            rc = ocra_cli_parse_int("chain-id", optarg, 0, INT64_MAX, &o->chain_id);
            o->chain_id_set = true;
            break;
        case 'n':
            rc = ocra_cli_parse_int("nonce", optarg, INT64_MIN, INT64_MAX, &o->nonce);
            break;
        case 't':
            rc = ocra_cli_parse_int("timestamp", optarg, 1, INT64_MAX, &o->timestamp_ms);
            break;
        case 'g':
            rc = ocra_cli_parse_int("gas-price", optarg, 0, INT64_MAX, &o->gas_price);
            o->gas_price_set = true;
            break;
        case 'w':
            rc = ocra_cli_parse_int("wait", optarg, 0, INT64_MAX, &o->wait_ms);
            o->wait_ms *= 1000;
            break;
        default:
            return ocra_cli_fail(OCRA_CLI_USAGE, "see `ocra help publish`");
        }
    }
    if (rc == OCRA_CLI_OK && argc - optind != 1)
        return ocra_cli_fail(OCRA_CLI_USAGE, "publish: want exactly one SPEC.json");
    o->file = argv[optind];
    return rc;
}

static int
complete_evm(struct publish_opts *o, const struct ocra_config *cfg)
{
    if (!o->rpc && cfg->evm.n_rpc)
        o->rpc = cfg->evm.rpc[0];
    if (!o->key_file && *cfg->evm.key_file) {
        o->key_file = cfg->evm.key_file;
        o->key_from_config = true;
    }
    if (!o->contract && *cfg->evm.contract)
        o->contract = cfg->evm.contract;
    if (!o->contract || !ocra_chain_address_valid(o->contract))
        return ocra_cli_fail(OCRA_CLI_USAGE, "publish: --chain evm needs --contract ADDR (or "
                                             "evm.contract)");
    return OCRA_CLI_OK;
}

static int
complete_ain(struct publish_opts *o, const struct ocra_config *cfg)
{
    if (!o->rpc && *cfg->ain.rpc)
        o->rpc = cfg->ain.rpc;
    if (!o->key_file && *cfg->ain.key_file) {
        o->key_file = cfg->ain.key_file;
        o->key_from_config = true;
    }
    if (!o->chain_id_set)
        o->chain_id = cfg->ain.chain_id;
    if (!o->gas_price_set)
        o->gas_price = cfg->ain.gas_price;
    if (!o->path || !ocra_ain_pattern_valid(o->path) || strchr(o->path, '$'))
        return ocra_cli_fail(OCRA_CLI_USAGE, "publish: --path: want an absolute path such as "
                                             "/apps/my_app/models/NAME");
    return OCRA_CLI_OK;
}

/* Fills the defaults from the configuration and checks what is required. */
static int
complete_opts(struct publish_opts *o, const struct ocra_config *cfg)
{
    int rc;

    if (!o->chain)
        o->chain = !*cfg->ain.rpc && cfg->evm.n_rpc ? "evm" : "ain";
    o->evm = strcmp(o->chain, "evm") == 0;
    if (!o->evm && strcmp(o->chain, "ain") != 0)
        return ocra_cli_fail(OCRA_CLI_USAGE, "publish: --chain %s: want ain or evm", o->chain);
    for (size_t i = 0; i < cfg->n_spec_http_hosts; i++)
        o->http_hosts[o->n_http_hosts++] = cfg->spec_http_hosts[i];
    for (size_t i = 0; i < cfg->artifact.n_allow_hosts; i++)
        o->allow_hosts[o->n_allow_hosts++] = cfg->artifact.allow_hosts[i];
    rc = o->evm ? complete_evm(o, cfg) : complete_ain(o, cfg);
    if (rc != OCRA_CLI_OK)
        return rc;
    if (!o->rpc)
        return ocra_cli_fail(OCRA_CLI_USAGE, "publish: no --rpc URL and no %s.rpc configured",
                             o->chain);
    if (!o->key_file)
        return ocra_cli_fail(OCRA_CLI_USAGE,
                             "publish: no key to sign with: give --key-file FILE (the publisher's "
                             "key) or set %s.key_file",
                             o->chain);
    return OCRA_CLI_OK;
}

static int
publish_run(struct ocra_cli_ctx *ctx, int argc, char **argv)
{
    struct publish_opts o = {.nonce = -1, .wait_ms = 60000, .config_path = ctx->config_path};
    int status = ocra_cli_config(ctx);

    if (status != OCRA_CLI_OK)
        return status;
    o.http_hosts = ocra_xcalloc((size_t)argc + ctx->cfg.n_spec_http_hosts, sizeof(char *));
    o.allow_hosts = ocra_xcalloc((size_t)argc + ctx->cfg.artifact.n_allow_hosts, sizeof(char *));
    status = parse_opts(argc, argv, &o);
    if (status == OCRA_CLI_OK)
        status = complete_opts(&o, &ctx->cfg);
    if (status == OCRA_CLI_OK)
        status = o.evm ? publish_evm(&o) : publish(&o);
    free(o.http_hosts);
    free(o.allow_hosts);
    return status;
}

const struct ocra_cli_cmd ocra_cli_publish_cmd = {
    "publish", "write a model spec on-chain in a signed transaction",
    "usage: ocra publish [--chain ain] [--rpc URL] [--key-file FILE] --path PATH\n"
    "                    [--chain-id N] [--nonce N] [--timestamp MS] [--gas-price N]\n"
    "                    [--wait SECONDS] [--http-host HOST]... [--allow-host HOST]...\n"
    "                    SPEC.json\n"
    "       ocra publish --chain evm [--rpc URL] [--key-file FILE] --contract ADDR\n"
    "                    [--name NAME] [--wait SECONDS] [--http-host HOST]...\n"
    "                    [--allow-host HOST]... SPEC.json\n"
    "\n"
    "Validates SPEC.json as ocra validates a spec read from a chain (a spec without \"name\"\n"
    "takes the last segment of PATH), converts lists to AIN's index-keyed objects, builds a\n"
    "SET_VALUE transaction of it at PATH, signs it (secp256k1, RFC 6979), sends it with\n"
    "ain_sendSignedTransaction, waits until it is FINALIZED, and prints its hash. A rejection\n"
    "or a REVERTED transaction is reported with the node's code.\n"
    "\n"
    "EVM: calls ModelRegistry.publish(name, spec) at --contract in an EIP-1559 transaction\n"
    "(legacy EIP-155 where the node has no base fee), signed with the key, waits for the\n"
    "receipt and prints the tx hash; the name is --name, else the spec's \"name\".\n"
    "\n"
    "The signing key: --key-file FILE, else the operator's key of the configuration\n"
    "(ain.key_file or evm.key_file, the account the daemon reports with). Either way the\n"
    "signer's address and where its key came from are printed on stderr first. A contract\n"
    "error is named from the ModelRegistry ABI (NotPublisher(): the signer is not a\n"
    "publisher; its owner calls setPublisher).\n"
    "\n"
    "examples:\n"
    "  ocra -c ocra.yaml publish --chain evm --key-file publisher.key spec.json\n"
    "  ocra -c ocra.yaml publish --path /apps/my_app/models/sentiment-bert spec.json\n"
    "\n"
    "options (defaults from the configuration's ain.* or evm.* keys):\n"
    "      --chain ain|evm   the chain kind (default: the one configured; ain)\n"
    "      --contract ADDR   EVM: the ModelRegistry contract\n"
    "      --name NAME       the model's name when the spec has none\n"
    "      --rpc URL         the node's JSON-RPC endpoint\n"
    "      --key-file FILE   the signer's private key, 64 hex digits; mode 0600 or stricter\n"
    "                        (default: the operator's key, ain.key_file or evm.key_file)\n"
    "      --path PATH       where to write, e.g. /apps/my_app/models/sentiment-bert\n"
    "      --chain-id N      the chain id the signature is for (default ain.chain_id)\n"
    "      --nonce N         -1 (default): unordered; N >= 0: the account's next nonce\n"
    "      --timestamp MS    the tx timestamp in ms since the epoch (default: now)\n"
    "      --gas-price N     default ain.gas_price\n"
    "      --wait SECONDS    how long to wait for finality (default 60; 0: do not wait)\n"
    "      --http-host HOST  allow plain-http artifact URIs on HOST[:PORT]\n"
    "      --allow-host HOST allow artifact URIs naming HOST, an internal address or a CIDR\n"
    "                        (adds to artifact.allow_hosts)\n"
    "\n"
    "exit status: 0 final, 1 the node rejected, reverted or did not finalize it, 2 invalid\n"
    "spec, key or usage.\n",
    publish_run, NULL};
