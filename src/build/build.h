/* SPDX-License-Identifier: Apache-2.0 */
/*
 * build: turns a planned model spec and its chain event into a pushed, tagged, signed and
 * journaled model image (docs/BUILD.md, "The two-level build"). Two levels: the toolchain image,
 * built through the Docker Engine API once per toolchain hash and kept in the registry as
 * "<toolchain repo>:<hash>", one repository that every model shares ("<prefix>/toolchain" by
 * default); the model image, assembled natively on top of it (a weight layer with the
 * verified artifact, a layer with ocra-agent, a config with labels) and pushed with the OCI
 * distribution API into the model's own repository, the toolchain's layers mounted across
 * repositories, not uploaded. The same inputs give the same manifest digest on any machine.
 *
 * The work is split into steps that the daemon runs one by one as durable stages; each first
 * checks whether its effect already exists (artifact in the cache, toolchain tag in the
 * registry, blobs, manifest), so a step run again after a crash does nothing twice.
 */
#ifndef OCRA_BUILD_H
#define OCRA_BUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "image/image.h"
#include "plan/plan.h"
#include "spec/spec.h"
#include "store/store.h"

/* The steps, in the order ocra_build_all() runs them. */
enum ocra_build_step {
    OCRA_BUILD_FETCH,     /* the artifact, verified, in the cache */
    OCRA_BUILD_TOOLCHAIN, /* <toolchain repo>:<hash> in the registry */
    OCRA_BUILD_MODEL,     /* the model image's blobs and manifest (by digest) */
    OCRA_BUILD_TAG,       /* <repo>:<modelVersion> and <repo>:evt-<shortid> */
    OCRA_BUILD_SIGN,      /* the cosign-style signature, when a key is given */
    OCRA_BUILD_RECORD,    /* the image record in the journal */
};

/* "fetch", "toolchain", "model", "tag", "sign", "record". */
const char *ocra_build_step_name(enum ocra_build_step s);

/* What the progress callback is told. Strings borrowed for the call only. */
struct ocra_build_progress {
    enum ocra_build_step step;
    const char *what;   /* "artifact", "weight layer", "agent layer", "config", a digest... */
    const char *status; /* a line for people ("cache hit", "mounted", "built", ...), or NULL
                           while bytes are moving */
    uint64_t done;      /* bytes so far */
    uint64_t total;     /* bytes in all; 0 when unknown */
};

typedef void ocra_build_progress_fn(void *arg, const struct ocra_build_progress *p);

/* Everything borrowed; must outlive the ocra_build. */
struct ocra_build_opts {
    const char *registry_url;      /* "http://127.0.0.1:5000" or "https://registry.example" */
    const char *repo;              /* "team/model": the model image's repository */
    const char *toolchain_repo;    /* "team/toolchain"; NULL or "": <repo's parent>/toolchain */
    const char *cache_dir;         /* artifacts, layer descriptors (created if missing) */
    const char *agent;             /* the ocra-agent binary (a static executable) */
    const char *docker_socket;     /* the engine's unix socket; NULL: $DOCKER_HOST or default */
    const char *build_network;     /* toolchain builds: "host" or "none" (NULL: "host") */
    const char *sign_key;          /* private key (PEM) or NULL: not signed */
    const char *const *http_hosts; /* hosts allowed in plain http:// artifact URIs */
    size_t n_http_hosts;
    const char *docker_config; /* registry credentials (NULL: Docker's default config.json) */
    bool weight_gzip;          /* gzip the weight layer (default: plain tar, docs/BUILD.md) */
    /* The unix socket of a Docker engine to hand the model image to as it is pushed (the one
     * that will run it: its pull then downloads nothing), or NULL. Only a plain tar weight
     * layer uploaded by this build, on an engine that has the toolchain image. */
    const char *load_socket;
    /* The least weight artifact, in bytes, handed to load_socket's engine (0: any): below
     * it the engine's load costs the push stage more than the run stage's pull saves. */
    uint64_t load_min_size;
    /* The artifact fetch (artifact.* in the configuration): internal hosts, addresses and
     * CIDRs it may reach (others: public addresses only), the most bytes (0: the spec's bound,
     * 16 TiB), the least rate in bytes/s over rate_window_s (0: 1 byte/s over 30 s), and the
     * longest the transfer may take (0: 6 h). */
    const char *const *artifact_allow;
    size_t n_artifact_allow;
    uint64_t artifact_max_size;
    long artifact_min_rate, artifact_rate_window_s, artifact_deadline_s;
    ocra_build_progress_fn *progress; /* may be NULL */
    void *progress_arg;
};

struct ocra_build; /* one model image build; one thread at a time */

/*
 * A build of spec (planned as plan with ocra_plan_options.event = ev, which gives the
 * evt-<id> tag; ev: the chain event, or ocra_build_local_event(); all borrowed, must outlive
 * the build).
 * Checks the options (EINVAL: bad repository or registry URL, no cache directory, an agent
 * that is not a regular file) and opens the registry client; contacts nothing yet. Caller
 * frees with ocra_build_free().
 */
struct ocra_build *ocra_build_new(const struct ocra_build_opts *opts, const struct ocra_spec *spec,
                                  const struct ocra_plan *plan, const struct ocra_spec_event *ev,
                                  struct ocra_err *err);
void ocra_build_free(struct ocra_build *b);

/*
 * The artifact of the spec (none: nothing to do) into <cache>/sha256/<hex>: reused when
 * present with the right size, else fetched (https, or http from opts.http_hosts only; from
 * a public address, or one opts.artifact_allow lists) into a temporary file of its own with a
 * streaming sha256 and size check, then renamed. One fetch of a digest at a time (a lock file
 * beside the cache entry, across threads and processes); temporaries a crashed fetch of the
 * digest left are removed first. EACCES for a URI or address not allowed; EPROTO "artifact
 * sha256 mismatch: want … got …" or "artifact size mismatch: …", EFBIG over the operator's
 * maximum; ETIMEDOUT below the least rate or past the deadline (transient).
 * ocra_build_rejection() then says whether the artifact itself is rejected.
 */
int ocra_build_fetch(struct ocra_build *b, struct ocra_err *err);

/*
 * Ensures <toolchain repo>:<toolchain hash> is in the registry: a manifest HEAD hit is a
 * cache hit; else an engine image of that name is pushed; else it is built from the plan's
 * toolchain Dockerfile (ocra_plan_toolchain_dockerfile: nothing of the model in it) through
 * the Engine API (the log kept, ocra_build_log()) and pushed. Threads of one process that
 * miss the same hash build it once: the others wait, then find it in the registry. An image
 * whose labels say it was built on an ocra model image (io.ocra.event-id, inherited from the
 * base) is not pushed unless the plan's base is listed exactly (ocra_plan_base_listed):
 * EINVAL, and ocra_build_base_refused() is true.
 */
int ocra_build_toolchain(struct ocra_build *b, struct ocra_err *err);

/*
 * Assembles and pushes the model image by digest: the toolchain's layers mounted from the
 * toolchain repository (its labels checked as above), the weight and agent layers (written
 * once into the cache by content key, uploaded unless the registry has them), the config, the
 * manifest with annotations. The artifact is needed (and the fetch step run, a no-op when it
 * was) only when the weight layer must be written: a retry whose layers the cache describes
 * and the registry holds reads no artifact. ENOENT when the toolchain is not in the registry.
 */
int ocra_build_model(struct ocra_build *b, struct ocra_err *err);

/* PUTs the manifest under each tag (runs the model step if it was not run). */
int ocra_build_tag(struct ocra_build *b, struct ocra_err *err);

/* Signs the manifest digest with opts.sign_key (no key: nothing to do). */
int ocra_build_sign(struct ocra_build *b, struct ocra_err *err);

/* Puts the image record into the journal (ocra_store_image_put: idempotent by digest). */
int ocra_build_record(struct ocra_build *b, struct ocra_store *st, struct ocra_err *err);

/* Runs every step in order; st may be NULL (no record). The first failure stops it. */
int ocra_build_all(struct ocra_build *b, struct ocra_store *st, struct ocra_err *err);

/* ---- results (borrowed, valid until ocra_build_free; NULL or "" before their step) ------ */

const char *ocra_build_digest(const struct ocra_build *b);           /* model manifest */
const char *ocra_build_toolchain_ref(const struct ocra_build *b);    /* host/tc-repo:hash */
const char *ocra_build_toolchain_digest(const struct ocra_build *b); /* its manifest digest */
bool ocra_build_toolchain_cache_hit(const struct ocra_build *b);     /* found in the registry */
bool ocra_build_toolchain_built(const struct ocra_build *b);         /* the engine built it */
/* True after a step refused the toolchain because its base is an ocra model image that the
 * plan does not list: the spec's fault, retrying cannot help. */
bool ocra_build_base_refused(const struct ocra_build *b);
const char *ocra_build_log(const struct ocra_build *b);           /* toolchain build log */
const char *ocra_build_signature(const struct ocra_build *b);     /* .sig manifest digest */
const char *ocra_build_artifact_path(const struct ocra_build *b); /* the cached artifact */
uint64_t ocra_build_bytes_uploaded(const struct ocra_build *b);   /* bytes sent so far */
/* With opts.load_socket, after the model step: "loaded" (the engine has the image by its
 * config digest) or "not loaded: <why>"; NULL when not asked. */
const char *ocra_build_engine_load(const struct ocra_build *b);
/* The tags ("1.2.0", "evt-0123456789ab"), n_tags of them. */
const char *const *ocra_build_tags(const struct ocra_build *b, size_t *n_tags);
/* The manifest annotations (object of strings); borrowed. */
const json_t *ocra_build_annotations(const struct ocra_build *b);
/* The image record (ocra_plan_image_json with imageId = digest, plus registry, repository,
 * annotations, layers, toolchain, signature); caller json_decref()s. NULL before the model
 * step. */
json_t *ocra_build_record_json(const struct ocra_build *b);

/* ---- pure helpers (unit-tested) -------------------------------------------------------- */

/*
 * The manifest annotations (also the config's labels) for an image of spec built for ev on
 * the toolchain base_name@base_digest: org.opencontainers.image.{created, version, revision,
 * source, base.name, base.digest} and io.ocra.{event-id, chain, block, tx, signer, spec-hash,
 * toolchain-hash}; members without a value are left out. Caller json_decref()s.
 */
json_t *ocra_build_annotations_make(const struct ocra_spec *spec, const struct ocra_spec_event *ev,
                                    const char *toolchain_hash, const char *base_name,
                                    const char *base_digest);
/* The file name of the artifact in the image: the URI's last path component when it is a
 * plain name ([A-Za-z0-9._-], not starting with '.'), else "model.bin". Into out (256). */
void ocra_build_model_file_name(const char *uri, char out[256]);
/* 0 when uri may be fetched: https, or http with a host[:port] in hosts; EACCES else. */
int ocra_build_uri_allowed(const char *uri, const char *const *hosts, size_t n_hosts,
                           struct ocra_err *err);
/* A local event for a build without a chain event: id "local:<first 16 hex of the spec
 * hash>", chain "local", timestamp $SOURCE_DATE_EPOCH (s) or 0, so the digest is stable.
 * Caller frees with ocra_spec_event_free(). */
struct ocra_spec_event *ocra_build_local_event(const struct ocra_spec *spec, const char *event_id);

/* The end of log (a toolchain build's): from the start of its last `lines` lines (a partial
 * last line included); borrowed, a pointer into log. NULL when log is NULL or empty. */
const char *ocra_build_log_tail(const char *log, int lines);
/*
 * NULL, or why the artifact itself was rejected by ocra_build_fetch (or a later step that ran
 * it): its URI or address may not be fetched, its declared size is over the operator's
 * maximum, or what its server sent is not what the spec's sha256 and size name. Nothing was
 * pushed, and retrying cannot help. A fixed sentence per class, safe to publish (the chain's
 * report): never what the server answered (status, size, digest); the error has the details.
 * Borrowed, static.
 */
const char *ocra_build_rejection(const struct ocra_build *b);

/* ---- where things are (the CLI and the daemon agree) ---------------------------------- */

/*
 * "[http(s)://]HOST[:PORT]/REPO" (build.registry, --registry) into a registry URL and a
 * repository; without a scheme, http for a loopback host, else https. *url and *repo: caller
 * frees. EINVAL naming what is wrong.
 */
int ocra_build_registry_parse(const char *s, char **url, char **repo, struct ocra_err *err);
/* The ocra-agent binary: configured (build.agent) when not empty, else $OCRA_AGENT, else beside
 * this executable, in the installed libexec/ocra/ or in the build tree; NULL when none is
 * found. Caller frees. */
char *ocra_build_agent_find(const char *configured);
/* The artifact and layer cache: configured (build.cache_dir) when not empty, else
 * $XDG_CACHE_HOME/ocra, else ~/.cache/ocra. Caller frees. */
char *ocra_build_cache_dir(const char *configured);

#endif
