/* SPDX-License-Identifier: Apache-2.0 */
/*
 * spec: the model spec (docs/SPEC.md), the one document a model owner writes on-chain. Parses
 * and validates it as hostile input (every rejection names the field, the escaped value and a
 * stable rule id), turns AIN's index-keyed objects into lists, fills in the defaults and gives
 * the canonical JSON form (sorted keys, compact) whose sha256 is the spec hash. Also holds the
 * two records of docs/SPEC.md: the blockchain event and the container image
 * specification, each with a JSON round trip. docs/SPEC.md documents every field and rule.
 */
#ifndef OCRA_SPEC_H
#define OCRA_SPEC_H

#include "base/base.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- bounds (docs/SPEC.md §Bounds) ----------------------------------------------------- */

#define OCRA_SPEC_MAX_DOC 65536                  /* bytes of spec text */
#define OCRA_SPEC_MAX_NAME 128                   /* bytes of "name" */
#define OCRA_SPEC_MAX_VERSION 64                 /* bytes of a version string */
#define OCRA_SPEC_MAX_TOOL_NAME 64               /* bytes of a toolsAndLibraries key */
#define OCRA_SPEC_MAX_TOOLS 64                   /* entries in toolsAndLibraries */
#define OCRA_SPEC_MAX_IMAGE_REF 512              /* bytes of baseImage */
#define OCRA_SPEC_MAX_URI 2048                   /* bytes of artifact.uri */
#define OCRA_SPEC_MAX_ARTIFACT_SIZE (1ull << 44) /* artifact.size, 16 TiB */
#define OCRA_SPEC_MAX_PARAMS 10000000000000ull   /* workload.params, 10^13 */
#define OCRA_SPEC_MAX_GPUS 64                    /* workload.gpus */
#define OCRA_SPEC_MAX_REPLICAS 1024              /* workload.replicas.max */
#define OCRA_SPEC_MAX_ARGC 64                    /* entries in workload.command */
#define OCRA_SPEC_MAX_ARG 4096                   /* bytes of one workload.command entry */
#define OCRA_SPEC_MAX_DURATION_S 31536000        /* workload.maxDuration: 365 days */
#define OCRA_SPEC_MAX_PROBLEMS 64                /* problems recorded per document */

/* ---- policy and problems --------------------------------------------------------------- */

/* What the operator allows beyond the defaults; a zeroed policy is the strict default. */
struct ocra_spec_policy {
    const char *const
        *http_hosts; /* hosts allowed with plain http:// (host or host:port); may be NULL */
    size_t n_http_hosts;
    /* Internal hosts, addresses and CIDRs an artifact URI may name (artifact.allow_hosts); a
     * literal address (or localhost) not listed must be public. May be NULL. */
    const char *const *allow_hosts;
    size_t n_allow_hosts;
    bool allow_file; /* file: URIs; only for specs read from local disk, never from a chain */
    const char *default_name; /* used when the spec has no "name"; NULL: then name is required */
};

/* One reason a spec is rejected. */
struct ocra_spec_problem {
    char field[128]; /* JSON path like "workload.gpus" or "toolsAndLibraries.PyTorch"; "" for the
                        document */
    char rule[48];   /* stable rule id (docs/SPEC.md §Rules), e.g. "version.pep440" */
    char msg[320];   /* "field: escaped value and what is wrong (rule)", for journals */
    char text[320];  /* the escaped value and what is wrong alone: "FILE: FIELD: TEXT [RULE]" */
};

/* Zero-initialise before first use; problems are appended. */
struct ocra_spec_problems {
    struct ocra_spec_problem *items;
    size_t n;
};

/* Frees the items and zeroes p; p may be NULL. */
void ocra_spec_problems_fini(struct ocra_spec_problems *p);

/*
 * The spec JSON with its lists as the reader reads them: workload.command, when it is one of
 * AIN's index-keyed objects ({"0": a, "1": b, ..., "10": k}, keys exactly "0".."n-1"), becomes
 * the array [a, b, ..., k] in index order; everything else is kept as it is (a malformed list
 * too, so that what validation names can be seen). New reference; caller json_decref()s. NULL
 * spec: NULL.
 */
json_t *ocra_spec_lists_as_arrays(const json_t *spec);

/* ---- the model spec -------------------------------------------------------------------- */

enum ocra_spec_workload_type { OCRA_SPEC_INFERENCE, OCRA_SPEC_TRAINING };

enum ocra_spec_dtype {
    OCRA_SPEC_FP32,
    OCRA_SPEC_FP16,
    OCRA_SPEC_BF16,
    OCRA_SPEC_FP8,
    OCRA_SPEC_INT8,
    OCRA_SPEC_INT4
};

/* One toolsAndLibraries entry. */
struct ocra_spec_tool {
    char *name;    /* display name as written, e.g. "PyTorch" */
    char *package; /* pip name ("torch") or, for system tools, the component ("cuda") */
    char *version; /* PEP 440 version */
    bool system;   /* true for components of the base image (CUDA, cuDNN, Python), not pip */
};

struct ocra_spec_artifact {
    bool present;
    char *uri;
    char sha256[65]; /* lowercase hex */
    uint64_t size;   /* bytes; 0 when the spec does not say */
};

struct ocra_spec_workload {
    enum ocra_spec_workload_type type;   /* default inference */
    uint64_t params;                     /* 0 when the spec does not say */
    enum ocra_spec_dtype dtype;          /* default fp16 */
    unsigned gpus;                       /* default 1 */
    unsigned replicas_min, replicas_max; /* default 1, 1 */
    char **argv; /* exec-form argv, argc entries; NULL: the image's default */
    size_t argc;
    unsigned port;           /* 0 when the spec does not say */
    uint64_t max_duration_s; /* workload.maxDuration in seconds; 0 when the spec does not say */
    bool preemptible;        /* workload.preemptible: checkpoints on SIGTERM and may be preempted */
};

/* A validated spec with defaults filled in. Read-only for everyone but this module. */
struct ocra_spec {
    char *name;
    char *model_version;
    struct ocra_spec_tool *tools; /* sorted by name (byte order) */
    size_t n_tools;
    char *base_image; /* NULL: resolved from the frameworks by the planner */
    struct ocra_spec_artifact artifact;
    struct ocra_spec_workload workload;
};

/*
 * Parses and validates a JSON document. 0 and *out (caller frees with ocra_spec_free) when
 * valid; -1 with err->code EINVAL (err->msg summarises: "N problems; first: ...") and every
 * problem appended to probs (probs may be NULL) when invalid.
 */
int ocra_spec_parse(const char *text, size_t len, const struct ocra_spec_policy *pol,
                    struct ocra_spec **out, struct ocra_spec_problems *probs, struct ocra_err *err);
/* Same from an already-parsed tree (the chain watcher has one); doc is borrowed. */
int ocra_spec_from_json(const json_t *doc, const struct ocra_spec_policy *pol,
                        struct ocra_spec **out, struct ocra_spec_problems *probs,
                        struct ocra_err *err);
/* s may be NULL. */
void ocra_spec_free(struct ocra_spec *s);
/* Normalised, with defaults filled in; caller json_decref()s. */
json_t *ocra_spec_to_json(const struct ocra_spec *s);
/* Sorted keys, compact; caller frees with free(). */
char *ocra_spec_canonical(const struct ocra_spec *s);
/* sha256 hex of the canonical form. */
void ocra_spec_hash(const struct ocra_spec *s, char out[65]);

/* Borrowed tool whose package is `package` ("torch"), or NULL. */
const struct ocra_spec_tool *ocra_spec_tool_find(const struct ocra_spec *s, const char *package);
/* "inference", "training". */
const char *ocra_spec_workload_type_name(enum ocra_spec_workload_type t);
/* "fp32", "fp16", "bf16", "fp8", "int8", "int4". */
const char *ocra_spec_dtype_name(enum ocra_spec_dtype d);
/* Bits per parameter: 32, 16, 16, 8, 8, 4. */
unsigned ocra_spec_dtype_bits(enum ocra_spec_dtype d);

/* ---- the lexical rules, for other modules that take the same tokens -------------------- */

/* A model name: [a-z0-9][a-z0-9._-]{0,127} that is also an OCI repository path component. */
bool ocra_spec_name_valid(const char *s);
/* A PEP 440 public version in normalised spelling, plus an optional local label. */
bool ocra_spec_version_valid(const char *s);
/* A docker image reference: [domain[:port]/]path[:tag][@sha256:<64 hex>]. */
bool ocra_spec_image_ref_valid(const char *s);

/* ---- the blockchain event (docs/SPEC.md, "The blockchain event and the image record") --- */

/* One name -> version pair of a tool map. */
struct ocra_spec_kv {
    char *key;
    char *value;
};

struct ocra_spec_event {
    char *event_id; /* "eventId": ain:<chain_id>:<tx_hash>:<op_index> or evm:<...>:<log_index> */
    char *model_version;                /* "modelVersion" */
    struct ocra_spec_kv *updated_tools; /* "updatedTools": tool -> version, sorted by key */
    size_t n_updated_tools;
    int64_t timestamp;     /* "timestamp": ms since the Unix epoch */
    char *chain;           /* "chain": "ain" or "evm" */
    uint64_t chain_id;     /* "chainId" */
    uint64_t block_number; /* "blockNumber" */
    char *block_hash;      /* "blockHash"; NULL when unknown */
    char *tx_hash;         /* "txHash"; NULL when unknown */
    uint64_t index;        /* "opIndex" on ain, "logIndex" on evm */
    char *signer;          /* "signer": address; NULL when unknown */
    char *ref;             /* "ref": AIN state path or EVM contract address; NULL when unknown */
};

/* Caller json_decref()s. Optional members that are NULL are left out. */
json_t *ocra_spec_event_to_json(const struct ocra_spec_event *ev);
/* Checks types, bounds and keys (EINVAL naming the key); *out: caller frees with _free. */
int ocra_spec_event_from_json(const json_t *j, struct ocra_spec_event **out, struct ocra_err *err);
/* ev may be NULL. */
void ocra_spec_event_free(struct ocra_spec_event *ev);
/* First 12 hex digits of sha256(event_id), as used in image tags "evt-<short>". */
void ocra_spec_event_short_id(const char *event_id, char out[13]);

/* ---- the container image specification (docs/SPEC.md, as the blockchain event) -------- */

struct ocra_spec_image {
    char *image_id;             /* "imageId": repository:tag the image was built as */
    char *base_image;           /* "baseImage" */
    char *ai_model_version;     /* "aiModelVersion" */
    struct ocra_spec_kv *tools; /* "toolsAndLibraries": tool -> version, sorted by key */
    size_t n_tools;
    int64_t created_at; /* "createdAt": ms since the Unix epoch */
    char *digest;       /* "digest": sha256:<64 hex> once pushed; NULL before */
    char **tags;        /* "tags" */
    size_t n_tags;
    char spec_hash[65]; /* "specHash": ocra_spec_hash() of the spec it was built from */
};

/* Caller json_decref()s. */
json_t *ocra_spec_image_to_json(const struct ocra_spec_image *im);
/* Checks types, bounds and keys (EINVAL naming the key); *out: caller frees with _free. */
int ocra_spec_image_from_json(const json_t *j, struct ocra_spec_image **out, struct ocra_err *err);
/* im may be NULL. */
void ocra_spec_image_free(struct ocra_spec_image *im);

#endif
