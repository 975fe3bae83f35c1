/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_build.c: `ocra build SPEC.json --registry HOST[:PORT]/REPO` plans a model spec and
 * runs every build step (artifact, toolchain, model image, tags, signature, journal record),
 * printing the digest and tags; `ocra images` lists the images the journal has recorded.
 */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "build/build.h"
#include "daemon/daemon.h"
#include "plan/plan.h"
#include "spec/spec.h"
#include "store/store.h"

#define BUILD_FILE_MAX (16u << 20)

struct build_opts {
    const char *registry, *event_id, *event_path, *sign_key, *cache, *journal, *name;
    bool no_record;
};

/* What the build needs beyond the options, all owned here. */
struct build_job {
    struct ocra_spec *spec;
    struct ocra_spec_event *ev;
    struct ocra_plan_data *data;
    struct ocra_plan *plan;
    char *url, *repo, *cache, *agent;
    const char **hosts;
    /* progress display */
    bool tty, line_open;
    uint64_t last_ns, t0, start_done, start_ns;
};

static void
job_fini(struct build_job *j)
{
    ocra_plan_free(j->plan);
    ocra_plan_data_free(j->data);
    ocra_spec_event_free(j->ev);
    ocra_spec_free(j->spec);
    free(j->url);
    free(j->repo);
    free(j->cache);
    free(j->agent);
    free(j->hosts);
}

/* ---- progress ---------------------------------------------------------------------------- */

static void
human(uint64_t n, char *out, size_t outsz)
{
    if (n >= (1ull << 30))
        (void)snprintf(out, outsz, "%.2f GiB", (double)n / (double)(1ull << 30));
    else if (n >= (1ull << 20))
        (void)snprintf(out, outsz, "%.1f MiB", (double)n / (double)(1ull << 20));
    else
        (void)snprintf(out, outsz, "%llu B", (unsigned long long)n);
}

/* On a terminal: a line per step and a self-updating line per layer (bytes, rate); else
 * plain lines for the step results only. */
static void
show_progress(void *arg, const struct ocra_build_progress *p)
{
    struct build_job *j = arg;
    uint64_t now = ocra_time_mono_ns();
    char done[32], total[32], rate[32];
    double secs;

    if (!p->status) {
        if (!j->tty)
            return;
        if (!j->line_open) {
            j->t0 = now;
            j->start_done = p->done;
        }
        if (j->line_open && now - j->last_ns < 100000000ull && p->done != p->total)
            return;
        secs = (double)(now - j->t0) / 1e9;
        human(p->done, done, sizeof(done));
        human(p->total, total, sizeof(total));
        human(secs > 0 ? (uint64_t)((double)(p->done - j->start_done) / secs) : 0, rate,
              sizeof(rate));
        fprintf(stderr, "\r  %-10s %-14s %s / %s  %s/s\033[K", ocra_build_step_name(p->step),
                p->what, done, total, rate);
        j->line_open = true;
        j->last_ns = now;
        return;
    }
    if (j->line_open)
        fputc('\n', stderr);
    j->line_open = false;
    if (p->total)
        human(p->total, total, sizeof(total));
    fprintf(stderr, "%7.2fs %s: %s: %s%s%s%s\n", (double)(now - j->start_ns) / 1e9,
            ocra_build_step_name(p->step), p->what, p->status, p->total ? " (" : "",
            p->total ? total : "", p->total ? ")" : "");
}

/* ---- inputs ------------------------------------------------------------------------------ */

/* "[http(s)://]HOST[:PORT]/REPO" into the job's registry URL and repository. */
static int
parse_registry(const char *s, struct build_job *j)
{
    struct ocra_err err = {0};

    if (ocra_build_registry_parse(s, &j->url, &j->repo, &err) < 0)
        return ocra_cli_fail(OCRA_CLI_USAGE, "build: --registry %s", err.msg);
    return OCRA_CLI_OK;
}

/* The event: --event FILE, --event-id from the journal (else a local event with that id), or
 * a local event. */
static int
load_event(const struct build_opts *o, const char *journal, struct build_job *j)
{
    struct ocra_store_event *se = NULL;
    struct ocra_store *st = NULL;
    struct ocra_err err = {0};
    json_t *doc;

    if (o->event_path) {
        doc = ocra_json_load_file(o->event_path, 1u << 20, OCRA_JSON_STRICT, &err);
        if (!doc || ocra_spec_event_from_json(doc, &j->ev, &err) < 0) {
            json_decref(doc);
            return ocra_cli_fail(OCRA_CLI_USAGE, "build: event %s: %s", o->event_path, err.msg);
        }
        json_decref(doc);
        return OCRA_CLI_OK;
    }
    j->ev = ocra_build_local_event(j->spec, o->event_id);
    if (!o->event_id || access(journal, F_OK) != 0)
        return OCRA_CLI_OK;
    if (ocra_store_open(journal, &st, &err) < 0 ||
        ocra_store_event_get(st, o->event_id, &se, &err) < 0) {
        ocra_store_close(st);
        return ocra_cli_fail(OCRA_CLI_FAIL, "build: journal %s: %s", journal, err.msg);
    }
    if (se) { /* what the journal knows of the chain event */
        free(j->ev->chain);
        j->ev->chain = ocra_xstrndup(se->chain, strcspn(se->chain, ":"));
        if (strchr(se->chain, ':'))
            (void)ocra_parse_u64(strchr(se->chain, ':') + 1, UINT64_MAX, &j->ev->chain_id, NULL);
        j->ev->block_number = (uint64_t)se->block_number;
        j->ev->tx_hash = ocra_xstrdup(se->tx_hash);
        j->ev->signer = se->signer ? ocra_xstrdup(se->signer) : NULL;
        j->ev->ref = se->path ? ocra_xstrdup(se->path) : NULL;
        j->ev->timestamp = se->observed_ms;
    }
    ocra_store_event_free(se);
    ocra_store_close(st);
    return OCRA_CLI_OK;
}

/* Parses the spec, the event, and plans. */
static int
load_plan(struct ocra_cli_ctx *ctx, const struct build_opts *o, const char *path,
          struct build_job *j)
{
    const struct ocra_config *cfg = &ctx->cfg;
    struct ocra_spec_problems probs = {0};
    struct ocra_spec_policy pol = {0};
    struct ocra_plan_options po = {0};
    struct ocra_plan_mirror *mirrors = NULL;
    struct ocra_err err = {0};
    const char *models[2];
    const char *slash = strrchr(j->repo, '/');
    char *text = NULL, *name = NULL, *mine = NULL;
    json_t *doc = NULL;
    size_t len = 0;
    int status = OCRA_CLI_USAGE;

    if (ocra_file_read(path, BUILD_FILE_MAX, &text, &len, &err) < 0) {
        status = ocra_cli_fail(OCRA_CLI_USAGE, "build: %s: %s", path, err.msg);
        goto out;
    }
    name = ocra_cli_default_name(o->name, path);
    ocra_daemon_spec_policy(cfg, &pol);
    pol.default_name = name;
    if (ocra_spec_parse(text, len, &pol, &j->spec, &probs, &err) < 0) {
        ocra_cli_print_problems(path, &probs, err.msg);
        goto out;
    }
    if ((status = load_event(o, o->journal ? o->journal : cfg->journal_path, j)) != OCRA_CLI_OK)
        goto out;
    if (ocra_plan_data_load(cfg->plan.data_dir, &j->data, &err) < 0) {
        status = ocra_cli_fail(OCRA_CLI_FAIL, "build: %s", err.msg);
        goto out;
    }
    doc = ocra_json_parse(text, len, 0, NULL);
    mirrors = ocra_xcalloc(cfg->plan.n_mirrors + 1, sizeof(*mirrors));
    ocra_daemon_plan_options(cfg, &po, mirrors);
    /* the images beside REPO are ocra's too (its toolchain, other models): no base */
    mine = ocra_xasprintf("%s/%.*s", j->url, slash ? (int)(slash - j->repo) : 0, j->repo);
    models[0] = mine;
    models[1] = *cfg->build.registry ? cfg->build.registry : NULL;
    po.model_registries = models;
    po.n_model_registries = models[1] ? 2 : 1;
    po.gpus_given = doc && ocra_plan_doc_gives_gpus(doc);
    po.event = j->ev;
    status = OCRA_CLI_USAGE;
    if (ocra_plan_new(j->data, j->spec, &po, &j->plan, &probs, &err) < 0) {
        ocra_cli_print_problems(path, &probs, err.msg);
        goto out;
    }
    status = OCRA_CLI_OK;
out:
    ocra_spec_problems_fini(&probs);
    json_decref(doc);
    free(mirrors);
    free(mine);
    free(name);
    free(text);
    return status;
}

/* ---- ocra build -------------------------------------------------------------------------- */

static void
print_result(const struct ocra_build *b, const char *origin_repo)
{
    size_t n;
    const char *const *tags = ocra_build_tags(b, &n);

    printf("digest %s\n", ocra_build_digest(b));
    printf("image %s@%s\n", origin_repo, ocra_build_digest(b));
    for (size_t i = 0; i < n; i++)
        printf("tag %s:%s\n", origin_repo, tags[i]);
    printf("toolchain %s@%s (%s)\n", ocra_build_toolchain_ref(b), ocra_build_toolchain_digest(b),
           ocra_build_toolchain_cache_hit(b) ? "cache hit"
           : ocra_build_toolchain_built(b)   ? "built"
                                             : "pushed from the engine");
    if (ocra_build_signature(b)[0])
        printf("signature %s\n", ocra_build_signature(b));
    printf("uploaded %llu bytes\n", (unsigned long long)ocra_build_bytes_uploaded(b));
}

/* The last lines of a failed toolchain build's log, under the error. */
static void
print_log_tail(const char *log)
{
    const char *p = ocra_build_log_tail(log, 20);

    if (p)
        fprintf(stderr, "build: the end of the toolchain build's log:\n%s%s", p == log ? "" : "...",
                p);
}

static int
run_build(struct ocra_cli_ctx *ctx, const struct build_opts *o, struct build_job *j)
{
    const struct ocra_config *cfg = &ctx->cfg;
    struct ocra_build_opts bo = {0};
    struct ocra_build *b = NULL;
    struct ocra_store *st = NULL;
    struct ocra_err err = {0};
    const char *journal = o->journal ? o->journal : cfg->journal_path;
    char *origin_repo = NULL;
    int status = OCRA_CLI_FAIL;

    bo.registry_url = j->url;
    bo.repo = j->repo;
    bo.toolchain_repo = cfg->build.toolchain_repo;
    bo.cache_dir = j->cache;
    bo.agent = j->agent;
    bo.docker_socket = ocra_config_docker_socket(cfg);
    bo.build_network = cfg->build.network == 1 ? "none" : "host";
    bo.sign_key = o->sign_key ? o->sign_key : (*cfg->build.sign_key ? cfg->build.sign_key : NULL);
    ocra_daemon_fetch_options(cfg, &bo);
    bo.weight_gzip = cfg->build.weight_gzip;
    bo.progress = show_progress;
    bo.progress_arg = j;
    if (!(b = ocra_build_new(&bo, j->spec, j->plan, j->ev, &err))) {
        status = ocra_cli_fail(OCRA_CLI_USAGE, "build: %s", err.msg);
        goto out;
    }
    if (!o->no_record && ocra_store_open(journal, &st, &err) < 0) {
        status = ocra_cli_fail(OCRA_CLI_FAIL, "build: journal %s: %s", journal, err.msg);
        goto out;
    }
    j->start_ns = ocra_time_mono_ns();
    fprintf(stderr, "build: event %s, toolchain %s\n", j->ev->event_id,
            ocra_plan_toolchain_hash(j->plan));
    if (ocra_build_all(b, st, &err) < 0) {
        if (j->line_open)
            fputc('\n', stderr);
        print_log_tail(ocra_build_log(b));
        /* an artifact that is not what the chain says, or one not allowed, or a base that is
         * a model image, is bad input */
        status = ocra_cli_fail(
            ocra_build_rejection(b) || ocra_build_base_refused(b) ? OCRA_CLI_USAGE : OCRA_CLI_FAIL,
            "build: %s", err.msg);
        goto out;
    }
    origin_repo = ocra_xasprintf("%s/%s", strstr(j->url, "://") + 3, j->repo);
    print_result(b, origin_repo);
    status = OCRA_CLI_OK;
out:
    ocra_store_close(st);
    ocra_build_free(b);
    free(origin_repo);
    return status;
}

static int
parse_args(struct ocra_cli_ctx *ctx, int argc, char **argv, struct build_opts *o)
{
    static const struct option longopts[] = {
        {"registry", required_argument, NULL, 'r'}, {"event-id", required_argument, NULL, 'i'},
        {"event", required_argument, NULL, 'e'},    {"sign-key", required_argument, NULL, 'k'},
        {"cache", required_argument, NULL, 'C'},    {"journal", required_argument, NULL, 'j'},
        {"name", required_argument, NULL, 'n'},     {"config", required_argument, NULL, 'c'},
        {"no-record", no_argument, NULL, 'R'},      {NULL, 0, NULL, 0},
    };
    int c;

    while ((c = getopt_long(argc, argv, "r:c:", longopts, NULL)) != -1) {
        switch (c) {
        case 'r':
            o->registry = optarg;
            break;
        case 'i':
            o->event_id = optarg;
            break;
        case 'e':
            o->event_path = optarg;
            break;
        case 'k':
            o->sign_key = optarg;
            break;
        case 'C':
            o->cache = optarg;
            break;
        case 'j':
            o->journal = optarg;
            break;
        case 'n':
            o->name = optarg;
            break;
        case 'R':
            o->no_record = true;
            break;
        case 'c':
            if (!ctx->cfg_loaded)
                ctx->config_path = optarg;
            break;
        default:
            return ocra_cli_fail(OCRA_CLI_USAGE, "see `ocra help build`");
        }
    }
    if (optind + 1 != argc)
        return ocra_cli_fail(OCRA_CLI_USAGE,
                             "build: expected one SPEC file (see `ocra help build`)");
    if (o->event_id && o->event_path)
        return ocra_cli_fail(OCRA_CLI_USAGE, "build: --event-id and --event exclude each other");
    return OCRA_CLI_OK;
}

static int
build_run(struct ocra_cli_ctx *ctx, int argc, char **argv)
{
    struct build_opts o = {0};
    struct build_job j = {0};
    int status;

    status = parse_args(ctx, argc, argv, &o);
    if (status == OCRA_CLI_OK)
        status = ocra_cli_config(ctx);
    if (status != OCRA_CLI_OK)
        return status;
    if (!o.registry && *ctx->cfg.build.registry)
        o.registry = ctx->cfg.build.registry;
    if (!o.registry)
        return ocra_cli_fail(OCRA_CLI_USAGE, "build: no --registry (or build.registry)");
    j.tty = isatty(STDERR_FILENO) == 1;
    status = parse_registry(o.registry, &j);
    if (status == OCRA_CLI_OK)
        status = load_plan(ctx, &o, argv[argc - 1], &j);
    if (status == OCRA_CLI_OK) {
        j.cache = o.cache ? ocra_xstrdup(o.cache) : ocra_build_cache_dir(ctx->cfg.build.cache_dir);
        j.agent = ocra_build_agent_find(ctx->cfg.build.agent);
        if (!j.agent)
            status =
                ocra_cli_fail(OCRA_CLI_USAGE, "build: no ocra-agent (build.agent, $OCRA_AGENT)");
    }
    if (status == OCRA_CLI_OK)
        status = run_build(ctx, &o, &j);
    job_fini(&j);
    return status;
}

const struct ocra_cli_cmd ocra_cli_build_cmd = {
    "build", "build, push, tag and sign the model image of a spec",
    "usage: ocra build SPEC.json --registry HOST[:PORT]/REPO [--event-id ID | --event FILE]\n"
    "                  [--sign-key KEY.pem] [--cache DIR] [--journal FILE] [--name NAME]\n"
    "                  [--no-record]\n"
    "\n"
    "Plans SPEC.json (as `ocra plan`) and builds its image in two levels (docs/BUILD.md):\n"
    "  fetch      the artifact, its sha256 and size checked against the spec, into the cache\n"
    "  toolchain  <REPO's parent>/toolchain:<toolchain hash> (or build.toolchain_repo), one\n"
    "             repository for every model: found in the registry (cache hit), else pushed\n"
    "             from the engine, else built through the Docker Engine API and pushed\n"
    "  model      the model image on top of it: toolchain layers mounted into REPO, a weight\n"
    "             layer, an ocra-agent layer, a config and a manifest with the provenance\n"
    "             annotations\n"
    "  tag        REPO:<modelVersion> and REPO:evt-<short event id>\n"
    "  sign       a cosign-compatible signature of the digest (with --sign-key)\n"
    "  record     the image record in the journal (`ocra images`, `ocra verify`)\n"
    "Prints the digest, the image reference by digest, the tags and the toolchain. On a\n"
    "terminal, progress per step and per layer (bytes, rate) goes to standard error.\n"
    "\n"
    "Without --event or --event-id the build is for a synthetic local event, id\n"
    "local:<first 16 hex digits of the spec hash>, chain \"local\", block time\n"
    "$SOURCE_DATE_EPOCH or 0: the same spec and artifact give the same digest anywhere.\n"
    "--event-id takes the chain, block, tx and signer from the journal when it has the event.\n"
    "\n"
    "options:\n"
    "  -r, --registry HOST[:PORT]/REPO  where to push (default build.registry); http:// for\n"
    "                        a loopback host, else https:// (or give the scheme)\n"
    "      --event-id ID     the chain event this build is for\n"
    "      --event FILE      the chain event as JSON (the format of `ocra plan --event`)\n"
    "      --sign-key FILE   ECDSA P-256 private key (default build.sign_key)\n"
    "      --cache DIR       artifact and layer cache (default build.cache_dir)\n"
    "      --journal FILE    the journal (default journal.path)\n"
    "      --no-record       do not write the image record into the journal\n"
    "  -n, --name NAME       name for a spec without \"name\"\n"
    "  -c, --config FILE     configuration file (the same as the global -c)\n"
    "\n"
    "The ocra-agent binary comes from build.agent, else $OCRA_AGENT, else beside ocra; the\n"
    "engine from run.docker_host, else $DOCKER_HOST; plain-http artifact hosts from\n"
    "spec.http_hosts. The artifact comes from a public address, or from a host, address or\n"
    "CIDR in artifact.allow_hosts, within artifact.max_size_mib, artifact.min_rate_kib and\n"
    "artifact.deadline_s.\n"
    "\n"
    "A spec's baseImage must be allowed by plan.base_images and may not be an image of\n"
    "ocra's own repositories (another model's) unless plan.base_images names it exactly.\n"
    "\n"
    "examples:\n"
    "  ocra build examples/seed.json --registry localhost:5000/mine/seed\n"
    "  ocra build spec.json --registry reg.example:5000/models --sign-key cosign.key --event-id "
    "ain:0:0x12ab:0\n"
    "  ocra build spec.json --registry localhost:5000/mine --no-record   # nothing in the journal\n"
    "\n"
    "exit status: 0 built; 1 a registry, engine, journal or transfer failure; 2 an invalid\n"
    "spec, a base image that is not allowed, an artifact whose sha256 or size differs from the\n"
    "spec or that may not be fetched (nothing is pushed), or usage.\n",
    build_run, NULL};

/* ---- ocra images ------------------------------------------------------------------------- */

static int
print_image(const struct ocra_store_image *im, void *arg)
{
    json_t *arr = arg, *rec;
    char ts[40];

    if (arr) {
        rec = ocra_json_parse(im->record, strlen(im->record), 0, NULL);
        if (!rec)
            rec = json_object();
        json_object_set_new(rec, "signature",
                            im->signature ? json_string(im->signature) : json_null());
        json_object_set_new(rec, "builtAt", json_integer(im->created_ms));
        json_array_append_new(arr, rec);
        return 0;
    }
    ocra_time_iso8601(im->created_ms, ts, sizeof(ts));
    printf("%s  %s/%s  %s  %s  %s%s\n", im->digest, im->registry, im->repo, im->tags, im->event, ts,
           im->signature ? "  signed" : "");
    return 0;
}

static int
images_run(struct ocra_cli_ctx *ctx, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'J'},
        {"journal", required_argument, NULL, 'j'},
        {NULL, 0, NULL, 0},
    };
    const char *journal = NULL;
    struct ocra_store *st = NULL;
    struct ocra_err err = {0};
    json_t *arr = NULL;
    int c, status = ocra_cli_config(ctx);
    char *text;

    if (status != OCRA_CLI_OK)
        return status;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == 'J' && !arr)
            arr = json_array();
        else if (c == 'j')
            journal = optarg;
        else if (c != 'J')
            return ocra_cli_fail(OCRA_CLI_USAGE, "see `ocra help images`");
    }
    if (optind < argc) {
        json_decref(arr);
        return ocra_cli_fail(OCRA_CLI_USAGE, "images: unexpected argument '%s'", argv[optind]);
    }
    journal = journal ? journal : ctx->cfg.journal_path;
    if (ocra_store_open(journal, &st, &err) < 0 ||
        ocra_store_image_list(st, print_image, arr, &err) < 0) {
        status = ocra_cli_fail(OCRA_CLI_FAIL, "images: %s: %s", journal, err.msg);
    } else if (arr) {
        text = json_dumps(arr, JSON_INDENT(2) | JSON_SORT_KEYS);
        puts(text);
        free(text);
    }
    json_decref(arr);
    ocra_store_close(st);
    return status;
}

const struct ocra_cli_cmd ocra_cli_images_cmd = {
    "images", "list the images built, from the journal",
    "usage: ocra images [--json] [--journal FILE]\n"
    "\n"
    "Lists the images `ocra build` (or the daemon's build stage) recorded, oldest first:\n"
    "digest, registry/repository, tags, event id, build time, and whether it was signed.\n"
    "With --json, a JSON array of the image records (the container image specification:\n"
    "imageId = manifest digest, baseImage, aiModelVersion, toolsAndLibraries, createdAt,\n"
    "tags, specHash, plus annotations, layers, toolchain and signature).\n"
    "\n"
    "examples:\n"
    "  ocra images\n"
    "  ocra images --json | jq -r '.[].imageId'\n"
    "\n"
    "exit status: 0 ok, 1 the journal cannot be read, 2 usage error.\n",
    images_run, NULL};
