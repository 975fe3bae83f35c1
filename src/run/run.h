/* SPDX-License-Identifier: Apache-2.0 */
/*
 * run: runs a built image by digest as a sandboxed workload. `struct ocra_runner` is the
 * pluggable interface (start, wait, log tail, stop, remove, free); the docker runner
 * (run_docker.c) drives one machine's Docker engine through the Engine API. Every workload
 * gets the sandbox profile (DESIGN.md §5): read-only root file system, tmpfs /tmp, all
 * capabilities dropped, no-new-privileges, pids, memory and CPU limits, shm size from the
 * plan, a non-root user and no network. Each relaxation is an explicit, named option. A start
 * is idempotent: the container is named after the event id, and one that exists already is
 * adopted (same image digest) or refused, never duplicated.
 */
#ifndef OCRA_RUN_H
#define OCRA_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "image/image.h"

#define OCRA_RUN_DEFAULT_USER "65532:65532" /* "nonroot" of distroless images */
#define OCRA_RUN_DEFAULT_PIDS 256
#define OCRA_RUN_DEFAULT_MEMORY_MIB 1024
#define OCRA_RUN_DEFAULT_CPU_MILLI 1000
#define OCRA_RUN_DEFAULT_SHM_MIB 64
#define OCRA_RUN_DEFAULT_TMP_MIB 256
#define OCRA_RUN_MAX_GPUS 16   /* device indices per workload */
#define OCRA_RUN_MAX_ARGS 256  /* command words, environment entries */
#define OCRA_RUN_NAME_MAX 24   /* "ocra-" + 12 hex + NUL, with room */
#define OCRA_RUN_EVENT_MAX 512 /* an event id, in bytes */

/*
 * The sandbox profile. A zeroed struct is the full profile with the defaults above; the
 * relaxations are the booleans (config keys run.sandbox.<name>), each off by default.
 */
struct ocra_run_profile {
    /* limits, from the plan; 0: the default */
    int64_t memory_mib; /* Memory, and MemorySwap equal to it: no swap */
    int64_t cpu_milli;  /* NanoCpus = cpu_milli * 1e6 */
    int64_t shm_mib;    /* ShmSize of /dev/shm */
    int64_t tmp_mib;    /* size of the tmpfs on /tmp */
    int64_t pids_limit; /* PidsLimit */
    const char *user;   /* "uid:gid" (digits) or a name; NULL: OCRA_RUN_DEFAULT_USER */
    /* relaxations */
    bool writable_rootfs; /* ReadonlyRootfs false */
    bool network_host;    /* NetworkMode "host": needed to serve a port (no bridge here) */
    bool no_pids_limit;   /* PidsLimit -1 */
    bool run_as_root;     /* User "0:0" (and a user of 0 or root is accepted) */
};

/* One workload to start. Strings and arrays are borrowed for the call only. */
struct ocra_run_spec {
    const char *event_id;    /* the key: container name ocra-<short id>, label io.ocra.event-id */
    const char *image;       /* "[host[:port]/]repo@sha256:<64 hex>"; a tag is refused (EINVAL) */
    const char *const *cmd;  /* NULL-terminated; NULL: the image's own command */
    const char *const *env;  /* "NAME=value", NULL-terminated; may be NULL */
    int port;                /* the port the workload serves, 0: none (1..65535) */
    const uint8_t *gpu_devs; /* allocated device indices (ocra_sched_alloc.devs), or NULL */
    int n_gpu_devs;
    struct ocra_run_profile profile;
};

/* A started workload, as the runner knows it. */
struct ocra_run_job {
    char id[72];                  /* docker: the container id (64 hex) */
    char name[OCRA_RUN_NAME_MAX]; /* "ocra-<short id>" */
    bool adopted;                 /* it existed before this start (a retry after a crash) */
};

struct ocra_runner;

/* Function types of the interface; every one takes the runner first and err last. */
typedef int ocra_run_start_fn(struct ocra_runner *r, const struct ocra_run_spec *spec,
                              struct ocra_run_job *job, struct ocra_err *err);
typedef int ocra_run_wait_fn(struct ocra_runner *r, const struct ocra_run_job *job, long timeout_ms,
                             int *exit_code, struct ocra_err *err);
typedef int ocra_run_logs_fn(struct ocra_runner *r, const struct ocra_run_job *job, unsigned tail,
                             char **out, size_t *len, struct ocra_err *err);
typedef int ocra_run_stop_fn(struct ocra_runner *r, const struct ocra_run_job *job, int grace_s,
                             struct ocra_err *err);
typedef int ocra_run_remove_fn(struct ocra_runner *r, const struct ocra_run_job *job,
                               struct ocra_err *err);
typedef void ocra_run_free_fn(struct ocra_runner *r);

/*
 * A runner. start: creates or adopts, then starts (idempotent; job filled on success).
 * wait: until the workload ends or timeout_ms passes (ETIMEDOUT); *exit_code is its status.
 * logs: the last `tail` lines of stdout and stderr, interleaved as written; *out
 * (NUL-terminated) is the caller's to free(). stop: SIGTERM, SIGKILL after grace_s; 0 when it
 * was not running. remove: deletes it (forced); ENOENT when absent. free: NULL-safe through
 * ocra_runner_free().
 */
struct ocra_runner {
    const char *name; /* "docker", "slurm" */
    ocra_run_start_fn *start;
    ocra_run_wait_fn *wait;
    ocra_run_logs_fn *logs;
    ocra_run_stop_fn *stop;
    ocra_run_remove_fn *remove;
    ocra_run_free_fn *free;
    void *impl;
};

/* r may be NULL. */
void ocra_runner_free(struct ocra_runner *r);

/* ---- the sandbox profile --------------------------------------------------------------- */

/*
 * Checks spec (EINVAL naming the field): an event id (printable UTF-8, at most
 * OCRA_RUN_EVENT_MAX bytes), an image by digest, command and environment words (UTF-8,
 * NAME=value with a valid NAME, at most OCRA_RUN_MAX_ARGS), limits in bounds, a non-root user
 * unless run_as_root, GPU indices distinct and < OCRA_RUN_MAX_GPUS, and a served port only
 * with network_host (the error names run.sandbox.network_host).
 */
int ocra_run_spec_check(const struct ocra_run_spec *spec, struct ocra_err *err);
/* "ocra-" and the first 12 hex digits of sha256(event_id). */
void ocra_run_container_name(const char *event_id, char out[OCRA_RUN_NAME_MAX]);
/*
 * The Engine API create body (POST /containers/create) for spec, after ocra_run_spec_check():
 * Image, Cmd, Env, User, Labels (io.ocra.event-id, io.ocra.image, io.ocra.runner) and
 * HostConfig with the profile and, for GPUs, DeviceRequests [{Driver "nvidia", DeviceIDs,
 * Capabilities [["gpu"]]}]. Caller json_decref()s.
 */
json_t *ocra_run_docker_create_body(const struct ocra_run_spec *spec, struct ocra_err *err);
/*
 * The profile applied to spec, one "setting: value" line each, relaxations marked
 * "(relaxed: run.sandbox.<key>)", appended to out; for `ocra run` to print.
 */
void ocra_run_profile_describe(const struct ocra_run_spec *spec, struct ocra_buf *out);

/* ---- the docker runner ----------------------------------------------------------------- */

/*
 * A runner over one Docker engine (opts as for ocra_image_docker_new(); may be NULL).
 * Containers get the name ocra-<short id>; an existing one with that name is adopted when
 * its image (the digest reference) and event id label match (a "created" one is started, a
 * running or exited one left as it is), else the start fails with EEXIST. The image must be
 * in the engine (ENOENT otherwise: ocra does not pull). Caller frees with ocra_runner_free().
 */
struct ocra_runner *ocra_run_docker_new(const struct ocra_image_docker_opts *opts,
                                        struct ocra_err *err);

#endif
