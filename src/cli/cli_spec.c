/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_spec.c: `ocra spec check FILE...` validates model specs as ocra would validate one
 * read from a chain, and prints each canonical form (stdout) or each problem (stderr).
 */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "spec/spec.h"

#define SPEC_FILE_MAX (16u << 20) /* the parser itself rejects anything over 64 KiB */

struct check_opts {
    const char *name;
    const char **http_hosts;
    size_t n_http_hosts;
    const char **allow_hosts;
    size_t n_allow_hosts;
    bool allow_file;
    bool quiet;
};

static char *
read_input(const char *path, size_t *len, struct ocra_err *err)
{
    struct ocra_buf b;
    char chunk[4096];
    size_t n;

    if (strcmp(path, "-") != 0) {
        char *data = NULL;

        return ocra_file_read(path, SPEC_FILE_MAX, &data, len, err) < 0 ? NULL : data;
    }
    ocra_buf_init(&b);
    while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0 && b.len <= SPEC_FILE_MAX)
        ocra_buf_append(&b, chunk, n);
    if (ferror(stdin)) {
        ocra_buf_fini(&b);
        ocra_err_sys(err, "read standard input");
        return NULL;
    }
    *len = b.len;
    return ocra_buf_take(&b);
}

char *
ocra_cli_default_name(const char *name, const char *path)
{
    char *copy, *base, *dot, *out;

    if (name)
        return ocra_xstrdup(name);
    if (strcmp(path, "-") == 0)
        return NULL;
    copy = ocra_xstrdup(path);
    base = basename(copy);
    dot = strrchr(base, '.');
    if (dot && strcmp(dot, ".json") == 0)
        *dot = '\0';
    out = ocra_xstrdup(base);
    free(copy);
    return out;
}

static int
check_one(const struct check_opts *o, const char *path)
{
    struct ocra_spec_problems probs = {0};
    struct ocra_spec_policy pol = {0};
    struct ocra_spec *spec = NULL;
    struct ocra_err err = {0};
    char *text = NULL, *name = NULL, *canon = NULL, hash[65];
    size_t len = 0;
    int status = OCRA_CLI_USAGE;

    text = read_input(path, &len, &err);
    if (!text) {
        fprintf(stderr, "%s: %s\n", path, err.msg);
        goto out;
    }
    name = ocra_cli_default_name(o->name, path);
    pol.http_hosts = o->http_hosts;
    pol.n_http_hosts = o->n_http_hosts;
    pol.allow_hosts = o->allow_hosts;
    pol.n_allow_hosts = o->n_allow_hosts;
    pol.allow_file = o->allow_file;
    pol.default_name = name;
    if (ocra_spec_parse(text, len, &pol, &spec, &probs, &err) < 0) {
        for (size_t i = 0; i < probs.n; i++)
            fprintf(stderr, "%s: %s%s%s [%s]\n", path, probs.items[i].field,
                    probs.items[i].field[0] ? ": " : "", probs.items[i].text, probs.items[i].rule);
        if (probs.n == 0)
            fprintf(stderr, "%s: %s\n", path, err.msg);
        fprintf(stderr, "%s: invalid (%zu problem%s)\n", path, probs.n, probs.n == 1 ? "" : "s");
        goto out;
    }
    canon = ocra_spec_canonical(spec);
    ocra_spec_hash(spec, hash);
    printf("%s\n", canon);
    if (!o->quiet)
        fprintf(stderr, "%s: valid, name %s, spec hash %s\n", path, spec->name, hash);
    status = OCRA_CLI_OK;
out:
    ocra_spec_problems_fini(&probs);
    ocra_spec_free(spec);
    free(canon);
    free(name);
    free(text);
    return status;
}

static int
check_run(struct ocra_cli_ctx *ctx, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"name", required_argument, NULL, 'n'},
        {"http-host", required_argument, NULL, 'H'},
        {"allow-host", required_argument, NULL, 'A'},
        {"allow-file", no_argument, NULL, 'f'},
        {"quiet", no_argument, NULL, 'q'},
        {NULL, 0, NULL, 0},
    };
    struct check_opts o = {0};
    int c, status;

    status = ocra_cli_config(ctx);
    if (status != OCRA_CLI_OK)
        return status;
    o.http_hosts = ocra_xcalloc((size_t)argc + ctx->cfg.n_spec_http_hosts, sizeof(char *));
    for (size_t i = 0; i < ctx->cfg.n_spec_http_hosts; i++)
        o.http_hosts[o.n_http_hosts++] = ctx->cfg.spec_http_hosts[i];
    o.allow_hosts = ocra_xcalloc((size_t)argc + ctx->cfg.artifact.n_allow_hosts, sizeof(char *));
    for (size_t i = 0; i < ctx->cfg.artifact.n_allow_hosts; i++)
        o.allow_hosts[o.n_allow_hosts++] = ctx->cfg.artifact.allow_hosts[i];
    while ((c = getopt_long(argc, argv, "n:H:A:fq", longopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            o.name = optarg;
            break;
        case 'H':
            o.http_hosts[o.n_http_hosts++] = optarg;
            break;
        case 'A':
            o.allow_hosts[o.n_allow_hosts++] = optarg;
            break;
        case 'f':
            o.allow_file = true;
            break;
        case 'q':
            o.quiet = true;
            break;
        default:
            free(o.http_hosts);
            free(o.allow_hosts);
            return ocra_cli_fail(OCRA_CLI_USAGE, "see `ocra help spec check`");
        }
    }
    if (optind >= argc) {
        free(o.http_hosts);
        free(o.allow_hosts);
        return ocra_cli_fail(OCRA_CLI_USAGE,
                             "spec check: no FILE given (see `ocra help spec check`)");
    }
    status = OCRA_CLI_OK;
    for (int i = optind; i < argc; i++)
        if (check_one(&o, argv[i]) != OCRA_CLI_OK)
            status = OCRA_CLI_USAGE;
    free(o.http_hosts);
    free(o.allow_hosts);
    return status;
}

static const struct ocra_cli_cmd spec_children[] = {
    {"check", "validate model specs and print their canonical form",
     "usage: ocra spec check [--name NAME] [--http-host HOST]... [--allow-host HOST]...\n"
     "                       [--allow-file] [--quiet] FILE...\n"
     "\n"
     "Validates each model spec FILE (- reads standard input) as ocra validates a spec read\n"
     "from a chain: strictly, as hostile input (docs/SPEC.md lists every rule). For a valid\n"
     "spec, prints its canonical form (sorted keys, compact, defaults filled in) as one line\n"
     "on standard output and a summary with its spec hash on standard error. For an invalid\n"
     "one, prints each problem on standard error as `FILE: FIELD: PROBLEM [RULE]`.\n"
     "\n"
     "options:\n"
     "  -n, --name NAME       name for a spec without \"name\" (default: FILE without .json;\n"
     "                        on a chain, the watched path gives it)\n"
     "  -H, --http-host HOST  also allow plain-http artifact URIs on HOST[:PORT] (adds to\n"
     "                        the configuration's spec.http_hosts)\n"
     "  -A, --allow-host HOST  also allow artifact URIs naming HOST, an internal address or\n"
     "                        a CIDR (adds to the configuration's artifact.allow_hosts);\n"
     "                        else a literal loopback, private, link-local, metadata or\n"
     "                        reserved address in a URI is refused (rule uri.address)\n"
     "  -f, --allow-file      allow file: artifact URIs (never allowed for chain specs)\n"
     "  -q, --quiet           no summary line on standard error\n"
     "\n"
     "examples:\n"
     "  ocra spec check examples/seed.json examples/sentiment-bert.json\n"
     "  ocra spec check --name my-model - < spec.json\n"
     "\n"
     "exit status: 0 all valid, 2 any invalid or unreadable FILE or a usage error.\n",
     check_run, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

const struct ocra_cli_cmd ocra_cli_spec_cmd = {
    "spec", "model spec tools",
    "usage: ocra spec SUBCOMMAND [ARGS...]\n"
    "\n"
    "Model spec tools. The model spec is the JSON document a model owner writes on-chain;\n"
    "docs/SPEC.md describes it.\n",
    NULL, spec_children};
