/* SPDX-License-Identifier: Apache-2.0 */
/*
 * run: runs a built image by digest as a sandboxed workload. `struct ocra_runner` is the
 * pluggable interface (start, wait, log tail, stop, remove, times, reap, free); the docker runner
 * (run_docker.c) drives one machine's Docker engine through the Engine API, the slurm runner
 * (run_slurm.c) submits batch jobs through slurmrestd whose script runs the image with the
 * node's docker CLI under the same profile. Every workload gets the sandbox profile
 * (docs/RUNNING.md, "The profile"): read-only root file system, tmpfs /tmp, all capabilities
 * dropped, no-new-privileges, pids, memory and CPU limits, shm size from the plan, a non-root
 * user and no network. Each relaxation is an explicit, named option. A start
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
#include "sched/sched.h"

#define OCRA_RUN_DEFAULT_USER "65532:65532" /* "nonroot" of distroless images */
#define OCRA_RUN_DEFAULT_PIDS 256
#define OCRA_RUN_DEFAULT_MEMORY_MIB 1024
#define OCRA_RUN_DEFAULT_CPU_MILLI 1000
#define OCRA_RUN_DEFAULT_SHM_MIB 64
#define OCRA_RUN_DEFAULT_TMP_MIB 256
#define OCRA_RUN_MAX_GPUS 16      /* device indices per workload */
#define OCRA_RUN_MAX_ARGS 256     /* command words, environment entries */
#define OCRA_RUN_NAME_MAX 24      /* "ocra-" + 12 hex + "-r255" + NUL */
#define OCRA_RUN_MAX_REPLICAS 256 /* as OCRA_SCHED_MAX_REPLICAS */
#define OCRA_RUN_EVENT_MAX 512    /* an event id, in bytes */

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
    const char *event_id;   /* the key: container name ocra-<short id>, label io.ocra.event-id */
    const char *image;      /* "[host[:port]/]repo@sha256:<64 hex>"; a tag is refused (EINVAL) */
    const char *const *cmd; /* NULL-terminated; NULL: the image's own command */
    const char *const *env; /* "NAME=value", NULL-terminated; may be NULL */
    int port;               /* the port replica 0 serves, 0: none (1..65535); replica N serves
                               port + N, told by env OCRA_PORT (docs/RUNNING.md, Autoscaling) */
    int replica; /* 0..OCRA_RUN_MAX_REPLICAS-1: the daemon's autoscaled copies of one event's
                    workload; N >= 1 is container ocra-<short id>-r<N>, label io.ocra.replica */
    const uint8_t *gpu_devs; /* allocated device indices (ocra_sched_alloc.devs), or NULL */
    int n_gpu_devs;
    int gpu_count; /* for a runner that allocates devices itself (slurm: gres gpu:N); 0: n_gpu_devs
                    */
    const char *agent_dir; /* the daemon's agent socket directory, bound read-only at /run/ocra
                              (docs/AGENT.md); NULL or "": none (the agent runs unreported) */
    const char *node;      /* the placement node (the allocation's): a runner over several
                              engines starts it on that node's (ocra_run_host); NULL: the
                              runner's default */
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
typedef int ocra_run_times_fn(struct ocra_runner *r, const struct ocra_run_job *job,
                              int64_t *started_ms, int64_t *finished_ms, struct ocra_err *err);
struct ocra_run_container;
typedef int ocra_run_reap_fn(struct ocra_runner *r, const char *event_id,
                             const struct ocra_run_job *job, struct ocra_run_container **removed,
                             size_t *n_removed, struct ocra_err *err);
typedef void ocra_run_free_fn(struct ocra_runner *r);
/* What watch reports, once per workload it saw end: job_id its id (container id, Slurm job
 * id), event_id its event when the runner knows it (docker: the label io.ocra.event-id), else
 * NULL; replica its replica (-1: unknown). Borrowed for the call. */
typedef void ocra_run_ended_fn(void *arg, const char *job_id, const char *event_id, int replica);
typedef int ocra_run_watch_fn(struct ocra_runner *r, const struct ocra_run_job *jobs, size_t n,
                              long timeout_ms, ocra_run_ended_fn *ended, void *arg,
                              struct ocra_err *err);

/* A workload as the runner knows it now (inspect). */
struct ocra_run_state {
    bool found;    /* false: the runner knows no such workload */
    bool ended;    /* it ran and ended (docker: exited or dead) */
    int exit_code; /* when ended; -1 unknown */
    char id[72];   /* the runner's id of it (docker: the container id); "" when not found */
};
typedef int ocra_run_inspect_fn(struct ocra_runner *r, const char *ref, struct ocra_run_state *out,
                                struct ocra_err *err);
typedef int ocra_run_prepare_fn(struct ocra_runner *r, const char *image, int *pulled,
                                struct ocra_err *err);
typedef int ocra_run_containers_fn(struct ocra_runner *r, const char *event_id,
                                   struct ocra_run_container **out, size_t *n,
                                   struct ocra_err *err);
typedef int ocra_run_discard_fn(struct ocra_runner *r, const char *container_id,
                                struct ocra_err *err);
typedef int ocra_run_probe_fn(struct ocra_runner *r, char *what, size_t n, struct ocra_err *err);

/* What a runner can do besides the required ops (ocra_runner.supports). */
#define OCRA_RUN_WATCH_EVENTS                                                                      \
    0x1u /* watch follows the engine's own event stream for up to                                  \
            timeout_ms and reports every ocra workload that ended in                               \
            that time (jobs is not needed): call it again at once */
#define OCRA_RUN_WATCH_POLL                                                                        \
    0x2u /* watch asks once for the state of jobs (one request for                                 \
            all) and returns: the caller paces the polls */
/* runs a workload's autoscaled replicas (ocra_run_spec.replica >= 1), each its own workload
 * named ocra_run_replica_name(), inspected, stopped and removed by that name */
#define OCRA_RUN_REPLICAS 0x4u
/* the cluster picks the devices: the allocation asks a GPU count only (the cluster reports no
 * GPU memory or driver), the spec names no device indices, and the placement checks the
 * cluster's inventory, not this host's */
#define OCRA_RUN_PLACES_BY_COUNT 0x8u
/* workloads run on this host's engine (run.docker_host): the build may hand it the image it
 * made, and this host's GPUs are the inventory */
#define OCRA_RUN_LOCAL_ENGINE 0x10u
/* the runner can run on the placement nodes' own Docker engines (ocra_run_opts.hosts,
 * inventory.nodes docker_host), one per node, instead of one */
#define OCRA_RUN_ENGINE_HOSTS 0x40u
/* a start is a submission the daemon journals before it is made (a crash between the two
 * adopts, never submits twice), and a job the cluster purged after it ended answers ENOENT,
 * its exit status lost; ocra_run_slurm_job_get() applies */
#define OCRA_RUN_BATCH 0x20u

/*
 * A runner. start: creates or adopts, then starts (idempotent; job filled on success).
 * wait: until the workload ends or timeout_ms passes (ETIMEDOUT); *exit_code is its status.
 * logs: the last `tail` lines of stdout and stderr, interleaved as written; *out
 * (NUL-terminated) is the caller's to free(). stop: SIGTERM, SIGKILL after grace_s; 0 when it
 * was not running. remove: deletes it (forced); ENOENT when absent. times: when the workload
 * started and ended by the runner's own record (docker: the container's State.StartedAt and
 * FinishedAt; slurm: the job's start_time and end_time), ms since the epoch, 0 for what has not
 * happened (never started, still running); the times of a run survive the daemon that started
 * it, so a stage that took a run over reports the run's, not its own. reap: once a run has
 * ended, removes (forced) the containers it left on the runner's engine, found by ocra's labels
 * rather than by a name a script may not have reached: docker: every container of event_id but
 * replica 0 (the run itself, kept exited for its logs; remove deletes it), so the autoscaled
 * replicas whatever their number and state (job may be NULL); slurm: every container of job
 * (required: EINVAL without; label io.ocra.slurm-job = job->id, on the event of job->name), on
 * the jobs' engine as this host reaches it (run.slurm.docker_host), once slurmctld says the job
 * ended or no longer knows it, else EBUSY. *removed (may be NULL; caller frees with free())
 * lists what went, *n_removed counts it. NULL where a runner cannot (the capability).
 * watch (NULL unless
 * supports has OCRA_RUN_WATCH_EVENTS or OCRA_RUN_WATCH_POLL): the ends of workloads, for the
 * daemon's supervisor, which follows every running workload without a thread each: calls
 * ended for each workload of jobs (events: each ocra workload) that it saw end, returns within
 * about timeout_ms; an error (the stream or the poll failed) may have missed ends: the caller
 * checks its workloads again.
 * inspect: the workload ref (a name or the runner's id) now: out->found false when the runner
 * knows none (not an error). docker: GET /containers/{ref}/json; NULL where a runner cannot.
 * prepare (may be NULL: nothing to do): makes image runnable where the workload will run before
 * start; docker: pulls it by digest into the engine (layers the engine downloaded in *pulled,
 * -1 when not known). containers: every container with ocra's labels on the engine the
 * runner's workloads run on as this host reaches it (slurm: run.slurm.docker_host), of event_id
 * when given, as ocra_run_containers_list(); for the daemon's reconcile. discard: removes one
 * of those containers by id (forced), one gone already is fine. probe (may be NULL): one short
 * request that the runner's backend answers; what (n bytes) says what answered ("docker
 * engine API 1.43"). free: NULL-safe through ocra_runner_free().
 */
struct ocra_runner {
    const char *name; /* "docker", "slurm" */
    ocra_run_start_fn *start;
    ocra_run_wait_fn *wait;
    ocra_run_logs_fn *logs;
    ocra_run_stop_fn *stop;
    ocra_run_remove_fn *remove;
    ocra_run_times_fn *times;
    ocra_run_reap_fn *reap;
    ocra_run_watch_fn *watch;
    ocra_run_inspect_fn *inspect;
    ocra_run_prepare_fn *prepare;
    ocra_run_containers_fn *containers;
    ocra_run_discard_fn *discard;
    ocra_run_probe_fn *probe;
    unsigned supports; /* OCRA_RUN_* capabilities */
    ocra_run_free_fn *free;
    void *impl;
};

/* r may be NULL. */
void ocra_runner_free(struct ocra_runner *r);

/*
 * The runners by kind (config run.runner: 0 docker, 1 slurm), as curl's TLS backends: the
 * daemon and the CLI name a kind and ask the capabilities, never branch on which it is.
 */
#define OCRA_RUN_KIND_DOCKER 0
#define OCRA_RUN_KIND_SLURM 1
struct ocra_run_slurm_opts;
/* A placement node's own Docker engine (inventory.nodes docker_host): the docker runner
 * places a workload whose spec names the node there. */
struct ocra_run_host {
    const char *node;     /* the inventory node's name */
    const char *endpoint; /* unix:///path or tcp://host:port (ocra_image_docker_endpoint_parse) */
    const char *tls_ca, *tls_cert, *tls_key; /* tcp: PEM files, all three required */
};
struct ocra_run_opts {
    int kind;                  /* OCRA_RUN_KIND_* */
    const char *docker_socket; /* the docker runner's engine socket; NULL: the default */
    /* docker: the nodes' engines; with any, the runner is the many-hosts one (run_hosts.c) */
    const struct ocra_run_host *hosts;
    size_t n_hosts;
    long docker_timeout_ms; /* the docker runner's engine requests; 0: the default */
    const struct ocra_run_slurm_opts *slurm; /* the slurm runner's (required for it) */
};
/* A runner of o->kind (EINVAL naming run.runner for a kind not known). Caller frees with
 * ocra_runner_free(). */
struct ocra_runner *ocra_run_new(const struct ocra_run_opts *o, struct ocra_err *err);
/* The capabilities (OCRA_RUN_*) and the name ("docker", "slurm") of a kind without making a
 * runner; 0 and "" for a kind not known. */
unsigned ocra_run_kind_supports(int kind);
const char *ocra_run_kind_name(int kind);

/* ---- the sandbox profile --------------------------------------------------------------- */

/*
 * Checks spec (EINVAL naming the field): an event id (printable UTF-8, at most
 * OCRA_RUN_EVENT_MAX bytes), an image by digest, command and environment words (UTF-8,
 * NAME=value with a valid NAME, at most OCRA_RUN_MAX_ARGS), limits in bounds, a non-root user
 * unless run_as_root, GPU indices distinct and < OCRA_RUN_MAX_GPUS, a replica in
 * 0..OCRA_RUN_MAX_REPLICAS-1 (and port + replica <= 65535), and a served port only with
 * network_host (the error names run.sandbox.network_host).
 */
int ocra_run_spec_check(const struct ocra_run_spec *spec, struct ocra_err *err);
/* "ocra-" and the first 12 hex digits of sha256(event_id): the name of replica 0. */
void ocra_run_container_name(const char *event_id, char out[OCRA_RUN_NAME_MAX]);
/* The name of replica `replica` (0..OCRA_RUN_MAX_REPLICAS-1): ocra_run_container_name() for 0,
 * with "-r<N>" appended for N >= 1. */
void ocra_run_replica_name(const char *event_id, int replica, char out[OCRA_RUN_NAME_MAX]);
/*
 * The Engine API create body (POST /containers/create) for spec, after ocra_run_spec_check():
 * Image, Cmd, Env (spec's, and OCRA_PORT=port+replica when a port is served), User, Labels
 * (io.ocra.event-id, io.ocra.image, io.ocra.runner, io.ocra.replica) and
 * HostConfig with the profile and, for GPUs, DeviceRequests [{Driver "nvidia", DeviceIDs,
 * Capabilities [["gpu"]]}]. Caller json_decref()s.
 */
json_t *ocra_run_docker_create_body(const struct ocra_run_spec *spec, struct ocra_err *err);
/*
 * The profile applied to spec, one "setting: value" line each, relaxations marked
 * "(relaxed: run.sandbox.<key>)", appended to out; for `ocra run` to print.
 */
void ocra_run_profile_describe(const struct ocra_run_spec *spec, struct ocra_buf *out);

/* ---- containers by ocra's labels (run_reap.c) ------------------------------------------ */

/*
 * Every workload container carries io.ocra.event-id, io.ocra.image and io.ocra.runner; the
 * docker runner's also io.ocra.replica, the slurm runner's io.ocra.slurm-job (the Slurm job
 * id). Those labels, not the names, find what a run left behind: a container whose job or run
 * ended is removed by the runner's reap, the daemon's reconcile, or the Slurm epilog
 * (etc/slurm/ocra-epilog).
 */
#define OCRA_RUN_LABEL_EVENT "io.ocra.event-id"
#define OCRA_RUN_LABEL_RUNNER "io.ocra.runner"
#define OCRA_RUN_LABEL_REPLICA "io.ocra.replica"
#define OCRA_RUN_LABEL_SLURM_JOB "io.ocra.slurm-job"

/* A container that carries ocra's labels, as the engine lists it. */
struct ocra_run_container {
    char id[72];                           /* 64 hex */
    char name[128];                        /* without the engine's leading '/' */
    char event_id[OCRA_RUN_EVENT_MAX + 1]; /* io.ocra.event-id */
    char runner[16];                       /* io.ocra.runner: "docker", "slurm"; "" absent */
    int replica;        /* io.ocra.replica (0 when absent); -1 when out of range */
    uint32_t slurm_job; /* io.ocra.slurm-job, else the <job id> that ends a slurm container's
                           name ocra-<short id>-<job id> (made before the label); 0: none */
    char state[16];     /* the engine's: created, running, paused, restarting, exited, dead, ... */
    bool active;        /* not exited or dead: it may still hold devices */
};

/*
 * The containers of a GET /containers/json reply (outside input) that carry a valid
 * io.ocra.event-id; the others are skipped. *out (caller frees with free()) and *n on
 * success; EPROTO on a reply that is not an array of container objects with a 64-hex Id.
 */
int ocra_run_containers_parse(const char *body, size_t len, struct ocra_run_container **out,
                              size_t *n, struct ocra_err *err);
/* Every container on engine d with ocra's labels, in any state; with event_id (may be NULL)
 * only that event's. As ocra_run_containers_parse(). */
int ocra_run_containers_list(struct ocra_image_docker *d, const char *event_id,
                             struct ocra_run_container **out, size_t *n, struct ocra_err *err);
/* Removes container id (forced: killed when it runs); one that is gone already is fine. */
int ocra_run_container_remove(struct ocra_image_docker *d, const char *id, struct ocra_err *err);

/* ---- the docker runner ----------------------------------------------------------------- */

/*
 * A runner over one Docker engine (opts as for ocra_image_docker_new(); may be NULL).
 * Containers get the name ocra-<short id> (ocra_run_replica_name() for replica N >= 1); an
 * existing one with that name is adopted when its image (the digest reference), event id and
 * replica labels match (a "created" one is started, a
 * running or exited one left as it is), else the start fails with EEXIST. The image must be
 * in the engine (ENOENT otherwise: ocra does not pull). Caller frees with ocra_runner_free().
 */
struct ocra_runner *ocra_run_docker_new(const struct ocra_image_docker_opts *opts,
                                        struct ocra_err *err);

/* ---- many docker hosts ----------------------------------------------------------------- */

/*
 * The docker runner over several engines, one per placement node (run_hosts.c): start runs a
 * workload on the engine of spec->node (pulling its image by digest there first: prepare is
 * NULL), and every other op finds the workload's engine by asking each (a container's name is
 * unique across them: it comes from the event id). watch follows each engine's /events in
 * turn, a window of timeout_ms / n each (windows start where the last one of that engine
 * ended: no end is missed). A host that does not answer makes an op that needs it fail with
 * EHOSTDOWN naming the node; containers fails so (the reconcile waits) while any is down;
 * reap skips it (its containers are strays for the reconcile once it answers).
 * Every answer or silence is recorded in the process's host health (ocra_run_hosts_health()).
 */
struct ocra_runner *ocra_run_hosts_new(const struct ocra_run_opts *o, struct ocra_err *err);

/* What this process last saw of a node's engine. */
struct ocra_run_host_health {
    bool known;         /* contacted at least once */
    bool up;            /* it answered last time */
    int64_t changed_ms; /* when up last changed (wall clock) */
    int64_t seen_ms;    /* when it was last contacted */
    char error[256];    /* why it is down */
};
/* The health of node (zeroed when not known). Thread-safe. */
void ocra_run_hosts_health(const char *node, struct ocra_run_host_health *out);
/*
 * Asks each host not contacted in the last max_age_ms (GET /_ping, timeout_ms) and records the
 * answer; hosts seen since are left as they are. Returns how many are down.
 */
size_t ocra_run_hosts_refresh(const struct ocra_run_host *hosts, size_t n, int64_t max_age_ms,
                              long timeout_ms);
/* Records what a request to node's engine found: err NULL or code 0 when it answered. */
void ocra_run_hosts_note(const char *node, const struct ocra_err *err);
/* True for an error that says the engine did not answer (a transport failure, not a reply;
 * not a timeout, which a wait for a running workload ends with). */
bool ocra_run_hosts_silent(const struct ocra_err *err);

/* ---- slurm (begin) ---------------------------------------------------------------------- */

/*
 * The slurm runner (run_slurm.c): each workload is one batch job submitted through slurmrestd
 * (openapi/v0.0.38, Slurm 22.05 and later) with JWT auth. The job is named ocra-<short id>
 * (ocra_run_container_name()), asks for `gres: gpu:N`, and its script runs the image by
 * digest with the docker CLI of the node under the same sandbox profile as the docker runner
 * (ocra_run_slurm_script()). A start first looks for a job of that name and user and adopts
 * it (pending, running, completed, or failed with an exit code), so a retry never submits a
 * second one. job->id is the Slurm job id in decimal, job->name the job name.
 */
struct ocra_run_slurm_opts {
    const char *url;         /* slurmrestd, "http://host:port" (https too); required */
    const char *user;        /* X-SLURM-USER-NAME; the jobs run as this user; required */
    const char *token_file;  /* a file holding the JWT (`scontrol token`); read at each request,
                                never logged; required */
    const char *partition;   /* NULL or "": the cluster's default partition */
    const char *docker_host; /* the jobs' engine on the node, "unix:///path"; NULL or "": the
                                node's default */
    const char *workdir;     /* the jobs' working directory, where `<name>-<job id>.out` is
                                written; logs read it, so it must be shared with this host;
                                NULL or "": /tmp */
    long poll_interval_ms;   /* wait's first poll interval, doubled up to 8 times it; 0: 1000 */
    long request_timeout_ms; /* each request; 0: 30 s */
};

/* Checks opts and makes the runner (EINVAL naming the bad option). Caller frees with
 * ocra_runner_free(). */
struct ocra_runner *ocra_run_slurm_new(const struct ocra_run_slurm_opts *opts,
                                       struct ocra_err *err);

/* Where a job is, from Slurm's job_state. */
enum ocra_run_slurm_phase {
    OCRA_RUN_SLURM_PENDING,   /* PENDING, CONFIGURING, REQUEUED, RESIZING, SUSPENDED */
    OCRA_RUN_SLURM_RUNNING,   /* RUNNING, COMPLETING, STAGE_OUT, SIGNALING */
    OCRA_RUN_SLURM_EXITED,    /* COMPLETED or FAILED: the script ran and exited, exit_code */
    OCRA_RUN_SLURM_CANCELLED, /* CANCELLED: stopped (ocra's stop, scancel, an admin) */
    OCRA_RUN_SLURM_LOST,      /* ended without the script's exit: TIMEOUT, NODE_FAIL, BOOT_FAIL,
                                 DEADLINE, OUT_OF_MEMORY, PREEMPTED, or a state not known here */
};

/* One job as slurmrestd reports it (what the journal's `runs` row needs). */
struct ocra_run_slurm_job {
    uint32_t job_id;
    char name[OCRA_SCHED_NAME_MAX];
    char user[OCRA_SCHED_NAME_MAX];
    char state[32];  /* job_state as Slurm spells it, "COMPLETED" */
    char reason[64]; /* state_reason, "None", "Resources", "NonZeroExitCode" */
    char nodes[128]; /* the nodes it runs or ran on, a Slurm host list; "" while pending */
    char comment[OCRA_RUN_EVENT_MAX]; /* the image reference the runner put there */
    enum ocra_run_slurm_phase phase;
    int exit_code; /* EXITED: the script's exit status (a signal N: 128 + N); else 0 */
    int64_t start_time, end_time; /* Slurm's, s since the epoch; 0: not started, not ended */
};

/* The job of job->id now. r must be a slurm runner. ENOENT when slurmctld no longer knows it
 * (purged MinJobAge after it ended). */
int ocra_run_slurm_job_get(struct ocra_runner *r, const struct ocra_run_job *job,
                           struct ocra_run_slurm_job *out, struct ocra_err *err);

/* A Slurm node as a placement node, and what Slurm says of it besides. */
struct ocra_run_slurm_node {
    /* name; gpu_model: the gres type ("" when untyped); gpu_count; cpu_milli, ram_mib (real
     * memory); accounting: gpu_free_milli[i] 0 for an allocated device, 1000 for a free one
     * (by the IDX Slurm reports, else the lowest indices), gpu_mem_free 0 (unknown), cpu_free
     * and ram_free from the allocated CPUs and memory */
    struct ocra_sched_node node;
    int gpus, gpus_alloc; /* the node's gpu gres, total (node.gpu_count: at most 16) and used */
    char state[32];       /* "idle", "mixed", "allocated", "down", ... (flags after a "+") */
    char partitions[256]; /* the partitions it is in, comma-separated */
};

struct ocra_run_slurm_partition {
    char name[OCRA_SCHED_NAME_MAX];
    char state[16]; /* "UP", "DOWN", ... */
    int n_nodes;    /* of the nodes listed, those in it */
    int gpus_total, gpus_alloc;
    int max_node_gpus; /* the most GPUs of one node in it: a job asking more is refused */
};

struct ocra_run_slurm_inventory {
    struct ocra_run_slurm_node *nodes;
    size_t n_nodes;
    struct ocra_run_slurm_partition *parts;
    size_t n_parts;
};

/*
 * The cluster's nodes with their GPU gres, total and allocated, and its partitions with their
 * sums (GET /nodes and /partitions). Only the `gpu` gres counts. *out is filled on success;
 * caller frees with ocra_run_slurm_inventory_fini().
 */
int ocra_run_slurm_inventory_get(const struct ocra_run_slurm_opts *opts,
                                 struct ocra_run_slurm_inventory *out, struct ocra_err *err);
/* inv may be zeroed or NULL. */
void ocra_run_slurm_inventory_fini(struct ocra_run_slurm_inventory *inv);

/* ---- slurm (end) ------------------------------------------------------------------------ */

#endif
