/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli: the `ocra` command line. Subcommands are rows of a table (name, summary, usage, run
 * function or a nested table); each lives in its own cli_<name>.c. Exit statuses: 0 ok,
 * 1 runtime failure, 2 bad input or usage.
 */
#ifndef OCRA_CLI_H
#define OCRA_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"

enum { OCRA_CLI_OK = 0, OCRA_CLI_FAIL = 1, OCRA_CLI_USAGE = 2 };

/* What every subcommand gets: the global options and, once loaded, the configuration. */
struct ocra_cli_ctx {
    const char *config_path; /* -c/--config or $OCRA_CONFIG; NULL: built-in defaults */
    struct ocra_config cfg;  /* defaults until ocra_cli_config() loaded the file */
    bool cfg_loaded;
    /* --log-format / --log-level, which win over the configuration's log.* keys */
    enum ocra_log_format log_format;
    enum ocra_log_level log_level;
    bool log_format_set, log_level_set;
};

struct ocra_cli_cmd {
    const char *name;
    const char *summary; /* one line for the command list */
    const char *usage;   /* the full help text of `ocra help NAME` */
    int (*run)(struct ocra_cli_ctx *ctx, int argc, char **argv); /* argv[0] is the name */
    const struct ocra_cli_cmd *children; /* subcommands, NULL-name terminated; or NULL */
};

/* Runs `ocra` with argc/argv; returns the process exit status. */
int ocra_cli_main(int argc, char **argv);

/*
 * Loads the configuration named by the global options into ctx->cfg (once). Prints each
 * problem on stderr. Returns OCRA_CLI_OK or the exit status to return.
 */
int ocra_cli_config(struct ocra_cli_ctx *ctx);

/* Prints "ocra: " + message on stderr and returns status: for reporting at the top. */
int ocra_cli_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The name a spec without "name" gets: name when given, else the file's name without
 * ".json"; NULL for standard input ("-"). Caller frees. */
char *ocra_cli_default_name(const char *name, const char *path);

/* Parses option --name's integer argument in [min, max] into *out; OCRA_CLI_OK, or reports
 * and returns OCRA_CLI_USAGE. */
int ocra_cli_parse_int(const char *name, const char *arg, int64_t min, int64_t max, int64_t *out);

/* True when argv holds -h or --help before any "--". */
bool ocra_cli_wants_help(int argc, char **argv);

struct ocra_store_event;
struct ocra_store_pipeline;
/* Prints a journaled event as one JSON line on stdout (the format of watch and events). */
void ocra_cli_print_event(const struct ocra_store_event *ev);
/* The JSON of that line; caller json_decref()s (a pipeline row: ocra_store_pipeline_to_json). */
json_t *ocra_cli_event_json(const struct ocra_store_event *ev);

struct ocra_plan_options;
struct ocra_plan_mirror;
struct ocra_spec_problems;
/* Prints a spec's problems on stderr as `PATH: FIELD: PROBLEM [RULE]` and a closing line. */
void ocra_cli_print_problems(const char *path, const struct ocra_spec_problems *probs,
                             const char *summary);

extern const struct ocra_cli_cmd ocra_cli_init_cmd;
extern const struct ocra_cli_cmd ocra_cli_spec_cmd;
extern const struct ocra_cli_cmd ocra_cli_plan_cmd;
extern const struct ocra_cli_cmd ocra_cli_config_cmd;
extern const struct ocra_cli_cmd ocra_cli_watch_cmd;
extern const struct ocra_cli_cmd ocra_cli_publish_cmd;
extern const struct ocra_cli_cmd ocra_cli_events_cmd;
extern const struct ocra_cli_cmd ocra_cli_run_cmd;
extern const struct ocra_cli_cmd ocra_cli_simulate_cmd;
extern const struct ocra_cli_cmd ocra_cli_nodes_cmd;
extern const struct ocra_cli_cmd ocra_cli_queue_cmd;
/*
 * The inventory of cfg (ocra_daemon_inventory(), keeping what Slurm reported for `ocra nodes`); inv
 * is initialised here, release it with ocra_sched_inventory_fini() either way. EINVAL names the bad
 * node.
 */
struct ocra_sched_inventory;
int ocra_cli_inventory(const struct ocra_config *cfg, struct ocra_sched_inventory *inv,
                       struct ocra_err *err);
extern const struct ocra_cli_cmd ocra_cli_verify_cmd, ocra_cli_sign_cmd;
extern const struct ocra_cli_cmd ocra_cli_serve_cmd;

extern const struct ocra_cli_cmd ocra_cli_build_cmd, ocra_cli_images_cmd;
extern const struct ocra_cli_cmd ocra_cli_daemon_cmd, ocra_cli_lineage_cmd, ocra_cli_retry_cmd;

#endif
