/* SPDX-License-Identifier: Apache-2.0 */
/*
 * build.c: the build job (options, registry client), the provenance annotations of an image,
 * the local event of a build without a chain, the journal record and ocra_build_all(). The
 * steps themselves live in build_fetch.c and build_model.c.
 */
#include "build/build_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http/http.h"

const char *
ocra_build_step_name(enum ocra_build_step s)
{
    static const char *const names[] = {"fetch", "toolchain", "model", "tag", "sign", "record"};

    return (size_t)s < OCRA_ARRAY_LEN(names) ? names[s] : "?";
}

void
build_progress(const struct ocra_build *b, enum ocra_build_step step, const char *what,
               const char *status, uint64_t done, uint64_t total)
{
    struct ocra_build_progress p = {step, what, status, done, total};

    if (b->opts.progress)
        b->opts.progress(b->opts.progress_arg, &p);
}

int
build_mkdirs(const char *path, struct ocra_err *err)
{
    char *p = ocra_xstrdup(path);
    int ret = 0;

    for (char *s = p + 1; *s && ret == 0; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0755) < 0 && errno != EEXIST)
            ret = ocra_err_sys(err, "mkdir %s", p);
        *s = '/';
    }
    if (ret == 0 && mkdir(p, 0755) < 0 && errno != EEXIST)
        ret = ocra_err_sys(err, "mkdir %s", p);
    free(p);
    return ret;
}

/* "host[:port]" of an http(s) URL, or NULL. Caller frees. */
static char *
url_origin(const char *url)
{
    const char *h = strncmp(url, "https://", 8) == 0  ? url + 8
                    : strncmp(url, "http://", 7) == 0 ? url + 7
                                                      : NULL;

    return h && h[0] && h[0] != '/' ? ocra_xstrndup(h, strcspn(h, "/")) : NULL;
}

/* The tags of the plan's image record ("1.2.0", "evt-…"). */
static void
tags_from_plan(struct ocra_build *b)
{
    json_t *im = ocra_plan_image_json(b->plan), *tags = json_object_get(im, "tags"), *t;
    size_t i;

    b->tags = ocra_xcalloc(json_array_size(tags) + 1, sizeof(char *));
    json_array_foreach(tags, i, t)
    {
        if (json_is_string(t))
            b->tags[b->n_tags++] = ocra_xstrdup(json_string_value(t));
    }
    json_decref(im);
}

static int
opts_check(const struct ocra_build_opts *o, struct ocra_err *err)
{
    struct stat sb;

    if (!o->repo || !ocra_image_repo_valid(o->repo) || strlen(o->repo) > 200)
        return ocra_err_set(err, EINVAL, "repository %s: not a valid name",
                            o->repo ? o->repo : "(none)");
    if (!o->cache_dir || !o->cache_dir[0])
        return ocra_err_set(err, EINVAL, "no cache directory");
    if (!o->agent || !o->agent[0])
        return ocra_err_set(err, EINVAL, "no ocra-agent binary (build.agent, $OCRA_AGENT)");
    if (stat(o->agent, &sb) < 0)
        return ocra_err_sys(err, "ocra-agent %s", o->agent);
    if (!S_ISREG(sb.st_mode))
        return ocra_err_set(err, EINVAL, "ocra-agent %s: not a regular file", o->agent);
    if (o->toolchain_repo && *o->toolchain_repo &&
        (!ocra_image_repo_valid(o->toolchain_repo) || strlen(o->toolchain_repo) > 200))
        return ocra_err_set(err, EINVAL, "toolchain repository %s: not a valid name",
                            o->toolchain_repo);
    if (o->build_network && strcmp(o->build_network, "host") != 0 &&
        strcmp(o->build_network, "none") != 0)
        return ocra_err_set(err, EINVAL, "build network %s: want host or none", o->build_network);
    return 0;
}

/* The toolchain repository: configured, else "toolchain" beside repo (in its parent). */
static char *
toolchain_repo(const struct ocra_build_opts *o)
{
    const char *slash = strrchr(o->repo, '/');

    if (o->toolchain_repo && *o->toolchain_repo)
        return ocra_xstrdup(o->toolchain_repo);
    return slash ? ocra_xasprintf("%.*s/toolchain", (int)(slash - o->repo), o->repo)
                 : ocra_xstrdup("toolchain");
}

struct ocra_build *
ocra_build_new(const struct ocra_build_opts *opts, const struct ocra_spec *spec,
               const struct ocra_plan *plan, const struct ocra_spec_event *ev, struct ocra_err *err)
{
    struct ocra_image_registry_opts ro = {.url = opts->registry_url,
                                          .docker_config = opts->docker_config};
    struct ocra_build *b;

    if (opts_check(opts, err) < 0)
        return NULL;
    b = ocra_xcalloc(1, sizeof(*b));
    b->opts = *opts;
    b->spec = spec;
    b->plan = plan;
    b->ev = ev;
    b->origin = opts->registry_url ? url_origin(opts->registry_url) : NULL;
    if (!b->origin) {
        ocra_err_set(err, EINVAL, "registry url %s: want http(s)://host[:port]",
                     opts->registry_url ? opts->registry_url : "(none)");
        goto fail;
    }
    if (!(b->reg = ocra_image_registry_new(&ro, err)))
        goto fail;
    b->tc_repo = toolchain_repo(opts);
    if (strcmp(b->tc_repo, opts->repo) == 0) {
        /* a model's tags would land among the toolchains', or overwrite one */
        ocra_err_set(err, EINVAL,
                     "repository %s is the toolchain repository: rename the model or set "
                     "build.toolchain_repo",
                     opts->repo);
        goto fail;
    }
    b->tc_ref =
        ocra_xasprintf("%s/%s:%s", b->origin, b->tc_repo, ocra_plan_toolchain_hash(b->plan));
    tags_from_plan(b);
    return b;
fail:
    ocra_build_free(b);
    return NULL;
}

void
ocra_build_free(struct ocra_build *b)
{
    if (!b)
        return;
    build_load_end(b);
    ocra_image_registry_free(b->reg);
    free(b->origin);
    free(b->tc_repo);
    free(b->tc_ref);
    free(b->log);
    free(b->artifact_path);
    free(b->manifest);
    json_decref(b->annotations);
    json_decref(b->layers);
    for (size_t i = 0; i < b->n_tags; i++)
        free(b->tags[i]);
    free(b->tags);
    free(b);
}

/* ---- annotations ----------------------------------------------------------------------- */

static void
set_str(json_t *o, const char *key, const char *v)
{
    if (v && v[0])
        json_object_set_new(o, key, json_string(v));
}

json_t *
ocra_build_annotations_make(const struct ocra_spec *spec, const struct ocra_spec_event *ev,
                            const char *toolchain_hash, const char *base_name,
                            const char *base_digest)
{
    json_t *a = json_object();
    char ts[40], spec_hash[65], block[24], *chain = NULL, *source = NULL;

    ocra_time_iso8601(ev->timestamp, ts, sizeof(ts));
    ocra_spec_hash(spec, spec_hash);
    (void)snprintf(block, sizeof(block), "%llu", (unsigned long long)ev->block_number);
    chain = ocra_xasprintf("%s:%llu", ev->chain, (unsigned long long)ev->chain_id);
    source = ev->ref ? ocra_xasprintf("%s%s%s", chain, ev->ref[0] == '/' ? "" : "/", ev->ref)
                     : ocra_xstrdup(chain);
    set_str(a, "org.opencontainers.image.created", ts);
    set_str(a, "org.opencontainers.image.version", spec->model_version);
    set_str(a, "org.opencontainers.image.revision", ev->tx_hash ? ev->tx_hash : ev->event_id);
    set_str(a, "org.opencontainers.image.source", source);
    set_str(a, "org.opencontainers.image.title", spec->name);
    set_str(a, "org.opencontainers.image.base.name", base_name);
    set_str(a, "org.opencontainers.image.base.digest", base_digest);
    set_str(a, "io.ocra.event-id", ev->event_id);
    set_str(a, "io.ocra.chain", chain);
    set_str(a, "io.ocra.block", block);
    set_str(a, "io.ocra.tx", ev->tx_hash);
    set_str(a, "io.ocra.signer", ev->signer);
    set_str(a, "io.ocra.spec-hash", spec_hash);
    set_str(a, "io.ocra.toolchain-hash", toolchain_hash);
    free(chain);
    free(source);
    return a;
}

void
ocra_build_model_file_name(const char *uri, char out[256])
{
    const char *end = uri + strcspn(uri, "?#"), *p = end;
    size_t n;

    while (p > uri && p[-1] != '/')
        p--;
    n = (size_t)(end - p);
    if (n == 0 || n > 255 || p[0] == '.' || p == uri ||
        strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") < n) {
        memcpy(out, "model.bin", sizeof("model.bin"));
        return;
    }
    memcpy(out, p, n);
    out[n] = '\0';
}

/* True when "host:port" (or "[v6]:port") matches entry: host[:port], a portless entry
 * matching every port of its host. */
static bool
http_host_listed(const char *entry, const char *host, long port)
{
    bool v6 = strchr(host, ':') != NULL;
    char *with_port = ocra_xasprintf(v6 ? "[%s]:%ld" : "%s:%ld", host, port);
    char *bare = v6 ? ocra_xasprintf("[%s]", host) : ocra_xstrdup(host);
    bool ok = !strcasecmp(entry, with_port) || !strcasecmp(entry, bare);

    free(with_port);
    free(bare);
    return ok;
}

int
ocra_build_uri_allowed(const char *uri, const char *const *hosts, size_t n_hosts,
                       struct ocra_err *err)
{
    char *scheme = NULL, *host = NULL;
    long port = 0;
    int ret = -1;

    if (ocra_http_url_parts(uri, &scheme, &host, &port, NULL) < 0 ||
        (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0)) {
        ocra_err_set(err, EACCES,
                     "artifact: only https:// (or http:// from spec.http_hosts) can be fetched");
        goto out;
    }
    ret = 0;
    if (strcmp(scheme, "http") == 0) {
        ret = -1;
        for (size_t i = 0; i < n_hosts && ret < 0; i++)
            if (http_host_listed(hosts[i], host, port))
                ret = 0;
        if (ret < 0)
            ocra_err_set(err, EACCES,
                         "artifact: plain http from %.200s:%ld is not allowed (spec.http_hosts)",
                         host, port);
    }
out:
    free(scheme);
    free(host);
    return ret;
}

struct ocra_spec_event *
ocra_build_local_event(const struct ocra_spec *spec, const char *event_id)
{
    struct ocra_spec_event *ev = ocra_xcalloc(1, sizeof(*ev));
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    char hash[65];
    int64_t t = 0;

    ocra_spec_hash(spec, hash);
    ev->event_id = event_id ? ocra_xstrdup(event_id) : ocra_xasprintf("local:%.16s", hash);
    ev->model_version = ocra_xstrdup(spec->model_version);
    ev->chain = ocra_xstrdup("local");
    if (sde && ocra_parse_i64(sde, 0, INT64_MAX / 1000, &t, NULL) < 0)
        t = 0;
    ev->timestamp = t * 1000;
    return ev;
}

/* ---- the record ------------------------------------------------------------------------ */

json_t *
ocra_build_record_json(const struct ocra_build *b)
{
    json_t *r, *tags;

    if (!b->digest[0])
        return NULL;
    r = ocra_plan_image_json(b->plan);
    tags = json_array();
    for (size_t i = 0; i < b->n_tags; i++)
        json_array_append_new(tags, json_string(b->tags[i]));
    json_object_set_new(r, "imageId", json_string(b->digest));
    json_object_set_new(r, "digest", json_string(b->digest));
    json_object_set_new(r, "tags", tags);
    json_object_set_new(r, "registry", json_string(b->origin));
    json_object_set_new(r, "repository", json_string(b->opts.repo));
    json_object_set_new(r, "reference",
                        json_sprintf("%s/%s@%s", b->origin, b->opts.repo, b->digest));
    json_object_set(r, "annotations", b->annotations);
    json_object_set(r, "layers", b->layers);
    json_object_set_new(r, "toolchain",
                        json_pack("{s:s, s:s, s:b, s:b}", "ref", b->tc_ref, "digest", b->tc_digest,
                                  "cacheHit", b->tc_hit, "built", b->tc_built));
    json_object_set_new(r, "eventId", json_string(b->ev->event_id));
    json_object_set_new(r, "signature", b->sig[0] ? json_string(b->sig) : json_null());
    return r;
}

int
ocra_build_record(struct ocra_build *b, struct ocra_store *st, struct ocra_err *err)
{
    struct ocra_store_image im = {0};
    json_t *rec, *tags;
    char *rec_text = NULL, *tags_text = NULL, spec_hash[65];
    int ret;

    if (!b->digest[0] && ocra_build_model(b, err) < 0)
        return -1;
    rec = ocra_build_record_json(b);
    tags = json_object_get(rec, "tags");
    rec_text = ocra_json_canonical(rec);
    tags_text = ocra_json_canonical(tags);
    ocra_spec_hash(b->spec, spec_hash);
    im.digest = b->digest;
    im.registry = b->origin;
    im.repo = b->opts.repo;
    im.tags = tags_text;
    im.event = b->ev->event_id;
    im.spec_hash = spec_hash;
    im.toolchain_hash = ocra_plan_toolchain_hash(b->plan);
    im.signature = b->sig[0] ? b->sig : NULL;
    im.record = rec_text;
    im.build_log = b->log;
    ret = ocra_store_image_put(st, &im, err);
    if (ret == 0)
        build_progress(b, OCRA_BUILD_RECORD, "journal", "recorded", 0, 0);
    json_decref(rec);
    free(rec_text);
    free(tags_text);
    return ret;
}

int
ocra_build_all(struct ocra_build *b, struct ocra_store *st, struct ocra_err *err)
{
    if (ocra_build_fetch(b, err) < 0 || ocra_build_toolchain(b, err) < 0 ||
        ocra_build_model(b, err) < 0 || ocra_build_tag(b, err) < 0 || ocra_build_sign(b, err) < 0 ||
        (st && ocra_build_record(b, st, err) < 0))
        return -1;
    return 0;
}

/* ---- results --------------------------------------------------------------------------- */

const char *
ocra_build_digest(const struct ocra_build *b)
{
    return b->digest;
}

const char *
ocra_build_toolchain_ref(const struct ocra_build *b)
{
    return b->tc_ref;
}

const char *
ocra_build_toolchain_digest(const struct ocra_build *b)
{
    return b->tc_digest;
}

bool
ocra_build_toolchain_cache_hit(const struct ocra_build *b)
{
    return b->tc_hit;
}

uint64_t
ocra_build_bytes_uploaded(const struct ocra_build *b)
{
    return b->uploaded;
}

const char *
ocra_build_engine_load(const struct ocra_build *b)
{
    return b->load_note[0] ? b->load_note : NULL;
}

bool
ocra_build_toolchain_built(const struct ocra_build *b)
{
    return b->tc_built;
}

bool
ocra_build_base_refused(const struct ocra_build *b)
{
    return b->base_refused;
}

const char *
ocra_build_log(const struct ocra_build *b)
{
    return b->log;
}

const char *
ocra_build_signature(const struct ocra_build *b)
{
    return b->sig;
}

const char *
ocra_build_artifact_path(const struct ocra_build *b)
{
    return b->artifact_path;
}

const char *const *
ocra_build_tags(const struct ocra_build *b, size_t *n_tags)
{
    *n_tags = b->n_tags;
    return (const char *const *)b->tags;
}

const json_t *
ocra_build_annotations(const struct ocra_build *b)
{
    return b->annotations;
}

const char *
ocra_build_log_tail(const char *log, int lines)
{
    const char *p;
    int n = 0;

    if (!log || !*log)
        return NULL;
    p = log + strlen(log);
    while (p > log && n <= lines)
        if (*--p == '\n')
            n++;
    return p;
}

const char *
ocra_build_rejection(const struct ocra_build *b)
{
    return b->rejection;
}

/* ---- where things are -------------------------------------------------------------------- */

static bool
is_loopback(const char *host)
{
    return strncmp(host, "127.", 4) == 0 || strncmp(host, "localhost", 9) == 0 ||
           strncmp(host, "[::1]", 5) == 0;
}

int
ocra_build_registry_parse(const char *s, char **url, char **repo, struct ocra_err *err)
{
    const char *h = s, *slash;
    const char *scheme = NULL;

    if (strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0) {
        h = strstr(s, "://") + 3;
        scheme = s[4] == 's' ? "https" : "http";
    }
    slash = strchr(h, '/');
    if (!slash || slash == h || !ocra_image_repo_valid(slash + 1))
        return ocra_err_set(err, EINVAL, "registry %s: want HOST[:PORT]/REPO", s);
    if (!scheme)
        scheme = is_loopback(h) ? "http" : "https";
    *url = ocra_xasprintf("%s://%.*s", scheme, (int)(slash - h), h);
    *repo = ocra_xstrdup(slash + 1);
    return 0;
}

char *
ocra_build_agent_find(const char *configured)
{
    static const char *const rel[] = {"ocra-agent", "../libexec/ocra/ocra-agent",
                                      "../../agent/ocra-agent"};
    const char *env = getenv("OCRA_AGENT");
    char self[PATH_MAX];
    ssize_t n;

    if (configured && *configured)
        return ocra_xstrdup(configured);
    if (env && *env)
        return ocra_xstrdup(env);
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return NULL;
    self[n] = '\0';
    *strrchr(self, '/') = '\0';
    for (size_t i = 0; i < OCRA_ARRAY_LEN(rel); i++) {
        char *p = ocra_xasprintf("%s/%s", self, rel[i]);

        if (access(p, X_OK) == 0)
            return p;
        free(p);
    }
    return NULL;
}

char *
ocra_build_cache_dir(const char *configured)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");

    if (configured && *configured)
        return ocra_xstrdup(configured);
    if (xdg && *xdg)
        return ocra_xasprintf("%s/ocra", xdg);
    return ocra_xasprintf("%s/.cache/ocra", home && *home ? home : "/tmp");
}
