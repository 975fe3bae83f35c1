/* SPDX-License-Identifier: Apache-2.0 */
/*
 * run_int.h: what the files of the run module share with each other and with run_test.c:
 * the profile's limits with their defaults, the demultiplexer of the Engine API's log stream,
 * and the slurm runner's job script and reply parsers, which the unit tests feed directly.
 */
#ifndef OCRA_RUN_INT_H
#define OCRA_RUN_INT_H

#include "run/run.h"

/* Each runner's capabilities, for its .supports and ocra_run_kind_supports() alike. */
#define OCRA_RUN_DOCKER_SUPPORTS                                                                   \
    (OCRA_RUN_WATCH_EVENTS | OCRA_RUN_REPLICAS | OCRA_RUN_LOCAL_ENGINE | OCRA_RUN_ENGINE_HOSTS)
#define OCRA_RUN_SLURM_SUPPORTS (OCRA_RUN_WATCH_POLL | OCRA_RUN_PLACES_BY_COUNT | OCRA_RUN_BATCH)

/*
 * Appends the payloads of a multiplexed log stream (frames of an 8-byte header: stream type
 * 0, 1 or 2, three zero bytes, a big-endian 32-bit size; then that many bytes) to out, in
 * order. EPROTO on an unknown stream type, nonzero padding or a truncated frame; out then
 * holds the frames before the bad one.
 */
int ocra_run_docker_demux(const void *data, size_t len, struct ocra_buf *out, struct ocra_err *err);

/*
 * The body of GET /events (one JSON object per line): calls ended once per container event
 * "die", "stop" or "oom" whose actor is a 64-hex container id, with its io.ocra.event-id label
 * (a printable event id of at most OCRA_RUN_EVENT_MAX bytes, else NULL) and io.ocra.replica
 * (0..OCRA_RUN_MAX_REPLICAS-1, else -1). Lines that are not such an event are skipped; a line
 * that is not JSON, or a last line cut short, is EPROTO after the events before it. Returns
 * the number of events reported.
 */
int ocra_run_docker_events_parse(const char *body, size_t len, ocra_run_ended_fn *ended, void *arg,
                                 struct ocra_err *err);

/*
 * An RFC 3339 time as the Docker Engine writes it ("2024-05-01T12:00:03.123456789Z", or with an
 * offset "+02:00") into *ms since the epoch (fractions past milliseconds dropped); a time before
 * the epoch (Go's zero time "0001-01-01T00:00:00Z": not happened) is 0. EPROTO otherwise.
 */
int ocra_run_time_parse(const char *s, int64_t *ms, struct ocra_err *err);

/* The profile's limits with the defaults applied (0 in the profile: the default). */
struct ocra_run_limits {
    int64_t memory_mib, cpu_milli, shm_mib, tmp_mib, pids;
};
void ocra_run_limits_get(const struct ocra_run_profile *p, struct ocra_run_limits *l);
/* The user the workload runs as: the profile's, else root with run_as_root, else the default. */
const char *ocra_run_user_get(const struct ocra_run_profile *p);
/* The port spec's replica serves (port + replica), told to it as OCRA_PORT; 0: none. */
int ocra_run_port(const struct ocra_run_spec *spec);

/* ---- slurm (begin) ---------------------------------------------------------------------- */

/*
 * The job script for spec (after ocra_run_spec_check()), appended to out: a POSIX sh script
 * that runs `docker [--host docker_host] run` with the sandbox profile, the image by digest,
 * the GPUs Slurm allocated and spec's command, and removes the container when the job is
 * cancelled. Every word from spec is single-quoted; nothing is pasted unquoted. docker_host
 * may be NULL or "" (the node's default), else a unix:// URL (EINVAL otherwise).
 */
int ocra_run_slurm_script(const struct ocra_run_spec *spec, const char *docker_host,
                          struct ocra_buf *out, struct ocra_err *err);
/* The body of POST /slurm/v0.0.38/job/submit: {"script": ..., "job": {...}}. Caller decrefs. */
json_t *ocra_run_slurm_submit_body(const struct ocra_run_spec *spec,
                                   const struct ocra_run_slurm_opts *opts, const char *name,
                                   const char *script);
/*
 * A slurmrestd reply: parses body (a JSON object, EPROTO otherwise) and checks its "errors"
 * array and the HTTP status; an error entry becomes err (ENOENT for an unknown job, ENOSPC for
 * a request no node can satisfy, EACCES for 401/403, else EIO) with Slurm's words. *out is
 * the document on success; caller decrefs.
 */
int ocra_run_slurm_reply(long status, const char *body, size_t len, json_t **out,
                         struct ocra_err *err);
/* One element of "jobs" into out (EPROTO on a missing or ill-typed field). */
int ocra_run_slurm_job_parse(const json_t *j, struct ocra_run_slurm_job *out, struct ocra_err *err);
/*
 * The job to adopt among the "jobs" of a GET /jobs reply: named name, of user, not ended
 * without an exit (CANCELLED, TIMEOUT, ...: those are retried). An active one wins, else the
 * newest. 1 and *out when found, 0 when none, -1 on a malformed reply.
 */
int ocra_run_slurm_jobs_find(const json_t *reply, const char *name, const char *user,
                             struct ocra_run_slurm_job *out, struct ocra_err *err);
/*
 * Among the same jobs, the first submitted (the lowest id): after a submit, two starters that
 * raced both keep that one and cancel their own. Returns as ocra_run_slurm_jobs_find().
 */
int ocra_run_slurm_jobs_first(const json_t *reply, const char *name, const char *user,
                              struct ocra_run_slurm_job *out, struct ocra_err *err);
/*
 * The gpu entries of a gres string ("gpu:4", "gpu:a100:2(S:0-1),gpu:t4:1", "gpu:2(IDX:0,2)",
 * "(null)", "") summed: *count, the type of the first one into model (size OCRA_SCHED_MODEL_MAX,
 * "" when untyped), and the device indices named by IDX into *idx (bit i: index i; 0 when
 * none named). EPROTO on a malformed string.
 */
int ocra_run_slurm_gres_gpus(const char *gres, char *model, int *count, uint32_t *idx,
                             struct ocra_err *err);
/* The inventory from the replies of GET /nodes and GET /partitions (parts may be NULL). */
int ocra_run_slurm_inventory_parse(const json_t *nodes, const json_t *parts,
                                   struct ocra_run_slurm_inventory *out, struct ocra_err *err);

/* ---- slurm (end) ------------------------------------------------------------------------ */

#endif
