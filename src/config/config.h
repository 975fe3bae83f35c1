/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config: ocra's one YAML configuration file. libyaml reads it into a JSON tree (remembering
 * the line of every key), and one declarative table (config_table.c: key, type, default,
 * bounds, doc) turns that tree into struct ocra_config. The same table generates the
 * commented default file (etc/ocra.yaml) and the reference (docs/CONFIG.md). Every problem
 * is reported, each as "file:line: key: problem".
 */
#ifndef OCRA_CONFIG_H
#define OCRA_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

/* Largest configuration file accepted, in bytes. */
#define OCRA_CONFIG_MAX_BYTES (1u << 20)

/* One ain.watch entry: a watched path pattern and the signers allowed to write under it. */
struct ocra_config_watch {
    char *path;   /* "/apps/my_app/models/$name" */
    char **allow; /* "0x" + 40 hex digits each, as written */
    size_t n_allow;
};

/* One plan.mirrors entry: base image repositories matching from are pulled from to. */
struct ocra_config_mirror {
    char *from; /* "nvidia/cuda", a prefix + slash-asterisk, or an asterisk */
    char *to;   /* "registry.internal:5000/mirror/nvidia/cuda" */
};

/* One `inventory.nodes` entry: a GPU node ocra may place on (src/sched's inventory reads it). */
struct ocra_config_node {
    char *name, *gpu_model;
    int64_t gpus, gpu_memory_mib, cpus, memory_mib;
    char *compute_capability, *driver, *cost; /* "8.6", "535.104.05", "2.5"; "" unknown */
    char **labels;                            /* "key=value" */
    size_t n_labels;
    /* the node's Docker engine (docker runner): "unix:///path", "tcp://host:port" (TLS with
     * the files below, else run.docker_tls.*), "ssh://..." (refused); "": run.docker_host */
    char *docker_host;
    char *docker_tls_ca, *docker_tls_cert, *docker_tls_key; /* PEM files; "": the defaults */
};

/*
 * The typed configuration. Strings are never NULL ("" when unset); relative paths have been
 * resolved against the directory of the file they came from.
 */
struct ocra_config {
    char *path; /* the file it was loaded from, or NULL for defaults */
    char *journal_path;
    enum ocra_log_level log_level;
    enum ocra_log_format log_format;
    char **spec_http_hosts;
    size_t n_spec_http_hosts;
    /* ---- artifact (begin) */
    struct {
        char **allow_hosts; /* internal hosts, addresses, CIDRs artifacts may come from */
        size_t n_allow_hosts;
        int64_t max_size_mib, min_rate_kib, min_rate_window_s, deadline_s; /* fetch limits */
    } artifact;
    /* ---- artifact (end) */
    struct {
        char *rpc, *ws, *key_file; /* key_file names a secret: never log its contents */
        int64_t chain_id, poll_interval_ms, rate_limit, from_block, gas_price;
        struct ocra_config_watch *watch;
        size_t n_watch;
    } ain;
    struct {
        char **rpc; /* endpoints in order of preference */
        size_t n_rpc;
        char *contract, *key_file; /* key_file names a secret: never log its contents */
        int finality;              /* enum ocra_evm_finality: depth, finalized, safe */
        int64_t chain_id, confirmations, from_block, batch_blocks, poll_interval_ms;
        char **allow;
        size_t n_allow;
    } evm;
    struct {
        char *docker_host; /* unix://PATH of the engine; "": $DOCKER_HOST or the default */
        int runner;        /* 0 docker, 1 slurm */
        bool writable_rootfs, network_host, no_pids_limit, run_as_root; /* sandbox relaxations */
        int64_t reconcile_interval_s; /* stray containers removed every this often; 0: at start */
        /* run.max_duration_s.<type>: the operator's time limit of a workload type (the spec's
         * workload.maxDuration is bounded by it; a spec without one gets it), 0: none */
        int64_t max_duration_training_s, max_duration_inference_s;
        int64_t stop_grace_s; /* run.stop_grace_s: SIGTERM, then SIGKILL after this */
        int keep_training;    /* run.newer_version.training: 0 replace, 1 keep */
        /* run.docker_tls.*: the TLS files of nodes' tcp:// engines that name none */
        char *docker_tls_ca, *docker_tls_cert, *docker_tls_key;
        struct {
            char *url, *user, *partition, *docker_host, *workdir;
            char *token_file; /* names a secret: never log its contents */
            int64_t poll_interval_ms;
        } slurm; /* run.slurm.*: the slurm runner (slurmrestd) */
    } run;
    char *api_listen;
    char *api_token_file;     /* names a secret: never log its contents */
    char **api_allowed_hosts; /* Host header names besides loopback and the listen address */
    size_t n_api_allowed_hosts;
    int64_t api_connections_per_client;
    char *api_explorer_tx_url;      /* the dashboard's links: {tx} (and {chain}) replaced */
    char *api_explorer_address_url; /* {address} (and {chain}) replaced */
    char *api_registry_url;         /* {registry}, {repo}, {digest} replaced */
    int64_t daemon_workers;
    /* ---- inventory (begin) */
    struct ocra_config_node *nodes;
    size_t n_nodes;
    bool inventory_local; /* discover this machine (/proc, NVML) */
    struct {
        int policy; /* enum ocra_sched_policy: first-fit, best-fit, cheapest, fgd */
        int64_t gpu_memory_headroom_mib;
        struct {
            int policy;        /* enum ocra_sched_qpolicy: fifo, backfill, fair, sjf */
            char **priorities; /* "publisher-or-app=priority" */
            size_t n_priorities;
            char **weights; /* "owner=weight" (fair share) */
            size_t n_weights;
            int64_t aging_s, interval_ms;
        } queue;
    } sched;
    struct {
        int64_t target, tolerance_percent, up_cooldown_s, down_cooldown_s, interval_s;
        bool lb_load; /* HAProxy's sessions and queue count as load too */
    } autoscale;
    /* ---- inventory (end) */
    struct {
        int64_t max_attempts, retry_base_ms, retry_max_ms; /* transient failures of a stage */
        int64_t lease_ms, poll_ms;                         /* claims; idle workers' look-ups */
        bool report;            /* report outcomes on-chain (the report stage) */
        char *report_ain_path;  /* AIN report path template: {app}, {shortid} */
        int64_t report_wait_ms; /* how long a report waits for its transaction */
        int64_t max_crashes;    /* deaths of the worker's process one stage survives */
    } daemon;
    struct {
        char *data_dir, *python, *pip_index_url, *torch_index_url;
        char **extra_index_urls;
        size_t n_extra_index_urls;
        char **allowed_tools;
        size_t n_allowed_tools;
        char **base_images; /* what a spec's baseImage may name (docs/PLANNING.md) */
        size_t n_base_images;
        struct ocra_config_mirror *mirrors;
        size_t n_mirrors;
        int64_t max_gpus;
    } plan;
    struct {
        char *socket_dir; /* the runs' agent socket directories; each run's at /run/ocra in it */
        int64_t heartbeat_s;
    } agent;
    /* ---- lb (begin) */
    struct {
        char *haproxy, *socket, *dir, *bind, *replica_addr;
        int64_t port_min, port_max, check_inter_ms, drain_s;
    } lb;
    /* ---- lb (end) */
    /* ---- build (begin) */
    struct {
        char *registry, *cache_dir, *agent, *sign_key; /* sign_key names a secret */
        char *toolchain_repo; /* "": the toolchain goes to <registry's repo>/toolchain */
        int network;          /* 0 host, 1 none */
        bool weight_gzip;
        int64_t engine_load_min_mib; /* 0: always hand the image to the engine */
    } build;
    /* ---- build (end) */
};

/* The Docker engine's socket path of run.docker_host ("unix:///PATH" gives "/PATH"); NULL when
 * the key is empty ($DOCKER_HOST or the default then). Borrowed from cfg. */
const char *ocra_config_docker_socket(const struct ocra_config *cfg);

/* Problems found in a file, in line order; each line reads "file:line: key: problem". */
struct ocra_config_problems {
    char **lines;
    size_t n;
};

/* Fills cfg with the defaults of the key table; release with ocra_config_fini(). */
void ocra_config_init(struct ocra_config *cfg);
/* Frees what cfg owns and zeroes it; a zeroed cfg is a no-op. */
void ocra_config_fini(struct ocra_config *cfg);
/* Frees the problem lines and zeroes p. */
void ocra_config_problems_fini(struct ocra_config_problems *p);

/*
 * Loads the YAML file at path (at most OCRA_CONFIG_MAX_BYTES). cfg need not be initialised: it
 * is set to the defaults first and holds exactly the defaults on failure; release it with
 * ocra_config_fini() either way. Returns 0 when valid; -1 with err EINVAL ("N problems in
 * FILE") and every problem in probs (may be NULL) when invalid; -1 with ENOENT, EACCES,
 * EFBIG, ... when the file cannot be read. *probs is overwritten (empty on success); release
 * it with ocra_config_problems_fini().
 */
int ocra_config_load(const char *path, struct ocra_config *cfg, struct ocra_config_problems *probs,
                     struct ocra_err *err);
/*
 * Same from len bytes of text: name stands for the file in messages and cfg->path, and
 * relative paths resolve against base_dir (NULL, "" or "." leaves them relative).
 */
int ocra_config_load_text(const char *name, const char *base_dir, const char *text, size_t len,
                          struct ocra_config *cfg, struct ocra_config_problems *probs,
                          struct ocra_err *err);

/* The commented default ocra.yaml: every key with its default and doc. Caller frees. */
char *ocra_config_default_yaml(void);
/* The Markdown reference of every key (docs/CONFIG.md). Caller frees. */
char *ocra_config_doc_markdown(void);

#endif
