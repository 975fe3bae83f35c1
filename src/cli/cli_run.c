/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_run.c: `ocra run REF@DIGEST` runs an image, pinned by digest, through the Docker runner
 * (one engine) or the Slurm runner (a batch job through slurmrestd, run.slurm.*) with the
 * sandbox profile (docs/RUNNING.md), prints the profile it applied, and by default waits for
 * the workload and prints its exit code and the tail of its log.
 */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "daemon/daemon.h"
#include "run/run.h"

struct run_opts {
    const char *docker_host, *event_id, *name, *runner, *partition;
    const char *node; /* --node: that inventory node's own engine (docker_host) */
    const char **env, **relax;
    size_t n_env, n_relax;
    uint8_t gpus[OCRA_RUN_MAX_GPUS];
    int n_gpus;
    int64_t gpu_count; /* --gpus N */
    int64_t port, memory, cpus, shm, pids, timeout_s;
    const char *user;
    bool no_wait, rm;
};

/* Sets the relaxation named key (run.sandbox.<key>, or the bare key) in p. */
static int
relax(struct ocra_run_profile *p, const char *key)
{
    static const struct {
        const char *name;
        size_t off;
    } keys[] = {
        {"writable_rootfs", offsetof(struct ocra_run_profile, writable_rootfs)},
        {"network_host", offsetof(struct ocra_run_profile, network_host)},
        {"no_pids_limit", offsetof(struct ocra_run_profile, no_pids_limit)},
        {"run_as_root", offsetof(struct ocra_run_profile, run_as_root)},
    };

    if (strncmp(key, "run.sandbox.", 12) == 0)
        key += 12;
    for (size_t i = 0; i < OCRA_ARRAY_LEN(keys); i++) {
        if (strcmp(key, keys[i].name) == 0) {
            *(bool *)((char *)p + keys[i].off) = true;
            return OCRA_CLI_OK;
        }
    }
    return ocra_cli_fail(OCRA_CLI_USAGE,
                         "--relax %s: want writable_rootfs, network_host, no_pids_limit or "
                         "run_as_root",
                         key);
}

/* The profile: the configuration's run.sandbox.* keys, then the command line. */
static int
make_profile(const struct run_opts *o, const struct ocra_config *cfg, struct ocra_run_profile *p)
{
    *p = (struct ocra_run_profile){.memory_mib = o->memory,
                                   .cpu_milli = o->cpus,
                                   .shm_mib = o->shm,
                                   .pids_limit = o->pids,
                                   .user = o->user,
                                   .writable_rootfs = cfg->run.writable_rootfs,
                                   .network_host = cfg->run.network_host,
                                   .no_pids_limit = cfg->run.no_pids_limit,
                                   .run_as_root = cfg->run.run_as_root};
    for (size_t i = 0; i < o->n_relax; i++)
        if (relax(p, o->relax[i]) != OCRA_CLI_OK)
            return OCRA_CLI_USAGE;
    return OCRA_CLI_OK;
}

/* Waits for the job, then prints its exit code and log tail; the workload's failure is 1. */
static int
wait_and_report(struct ocra_runner *r, const struct ocra_run_job *job, const struct run_opts *o)
{
    struct ocra_err err = {0};
    char *log = NULL;
    size_t len = 0;
    int code = -1;

    if (r->wait(r, job, (long)o->timeout_s * 1000, &code, &err) < 0) {
        if (err.code == ECANCELED)
            printf("stopped: %s\n", err.msg);
        return ocra_cli_fail(OCRA_CLI_FAIL, "run: %s", err.msg);
    }
    if (r->logs(r, job, 50, &log, &len, &err) == 0 && len) {
        printf("--- log tail of %s\n", job->name);
        fwrite(log, 1, len, stdout);
        if (log[len - 1] != '\n')
            putchar('\n');
    }
    free(log);
    printf("exit code %d\n", code);
    if (o->rm && r->remove(r, job, &err) < 0)
        ocra_log_warn("run: remove %s: %s", job->name, err.msg);
    return code == 0 ? OCRA_CLI_OK : OCRA_CLI_FAIL;
}

/* The runner --runner names, its settings printed under the profile. */
static struct ocra_runner *
runner_new(const struct run_opts *o, const struct ocra_config *cfg, struct ocra_err *err)
{
    const struct ocra_run_slurm_opts sopts = {
        .url = cfg->run.slurm.url,
        .user = cfg->run.slurm.user,
        .token_file = cfg->run.slurm.token_file,
        .partition = o->partition ? o->partition : cfg->run.slurm.partition,
        .docker_host = cfg->run.slurm.docker_host,
        .workdir = cfg->run.slurm.workdir,
        .poll_interval_ms = (long)cfg->run.slurm.poll_interval_ms};
    struct ocra_image_docker_opts dopts = {.socket = o->docker_host};

    if (o->node && strcmp(o->runner, "slurm") != 0) {
        struct ocra_run_host *hosts;
        struct ocra_run_opts ro = {.kind = OCRA_RUN_KIND_DOCKER};
        struct ocra_runner *r;

        ocra_daemon_docker_hosts(cfg, &hosts, &ro.n_hosts);
        ro.hosts = hosts;
        if (!ro.n_hosts) {
            free(hosts);
            ocra_err_set(err, EINVAL,
                         "--node %s: no inventory node names its docker_host in the "
                         "configuration",
                         o->node);
            return NULL;
        }
        printf("%-18s docker (node %s)\n", "runner:", o->node);
        r = ocra_run_new(&ro, err);
        free(hosts);
        return r;
    }
    if (strcmp(o->runner, "slurm") != 0) {
        printf("%-18s docker (%s)\n",
               "runner:", o->docker_host ? o->docker_host : "default engine");
        return ocra_run_docker_new(&dopts, err);
    }
    if (!*sopts.url || !*sopts.user || !sopts.token_file || !*sopts.token_file) {
        ocra_err_set(err, EINVAL,
                     "--runner slurm needs run.slurm.url, run.slurm.user and run.slurm.token_file "
                     "in the configuration");
        return NULL;
    }
    printf("%-18s slurm (%s, partition %s, user %s)\n", "runner:", sopts.url,
           *sopts.partition ? sopts.partition : "default", sopts.user);
    return ocra_run_slurm_new(&sopts, err);
}

static int
run_image(const struct run_opts *o, const struct ocra_config *cfg, const char *image,
          const char *const *cmd)
{
    struct ocra_run_spec spec = {.image = image, .cmd = cmd};
    struct ocra_runner *r = NULL;
    struct ocra_run_job job = {0};
    struct ocra_err err = {0};
    struct ocra_buf profile;
    char *event = NULL;
    int status;

    ocra_buf_init(&profile);
    if (o->event_id)
        event = ocra_xstrdup(o->event_id);
    else
        event = ocra_xasprintf("manual:%s", o->name ? o->name : image);
    spec.event_id = event;
    spec.node = o->node;
    spec.env = o->n_env ? o->env : NULL;
    spec.port = (int)o->port;
    spec.gpu_devs = o->n_gpus ? o->gpus : NULL;
    spec.n_gpu_devs = o->n_gpus;
    spec.gpu_count = (int)o->gpu_count;
    status = make_profile(o, cfg, &spec.profile);
    if (status != OCRA_CLI_OK)
        goto out;
    if (ocra_run_spec_check(&spec, &err) < 0) {
        status = ocra_cli_fail(OCRA_CLI_USAGE, "run: %s", err.msg);
        goto out;
    }
    ocra_run_profile_describe(&spec, &profile);
    printf("%s", profile.data ? profile.data : "");
    r = runner_new(o, cfg, &err);
    if (!r || r->start(r, &spec, &job, &err) < 0) {
        status =
            ocra_cli_fail(err.code == EINVAL ? OCRA_CLI_USAGE : OCRA_CLI_FAIL, "run: %s", err.msg);
        goto out;
    }
    printf("%s %s (%s %s)\n", job.adopted ? "adopted" : "started", job.name,
           strcmp(r->name, "slurm") == 0 ? "Slurm job" : "container", job.id);
    fflush(stdout);
    status = o->no_wait ? OCRA_CLI_OK : wait_and_report(r, &job, o);
out:
    ocra_runner_free(r);
    ocra_buf_fini(&profile);
    free(event);
    return status;
}

static int
parse_gpu(struct run_opts *o, const char *arg)
{
    int64_t v = 0;

    if (o->n_gpus >= OCRA_RUN_MAX_GPUS)
        return ocra_cli_fail(OCRA_CLI_USAGE, "--gpu: at most %d devices", OCRA_RUN_MAX_GPUS);
    if (ocra_cli_parse_int("gpu", arg, 0, 255, &v) != OCRA_CLI_OK)
        return OCRA_CLI_USAGE;
    o->gpus[o->n_gpus++] = (uint8_t)v;
    return OCRA_CLI_OK;
}

static int
parse_opts(int argc, char **argv, struct run_opts *o)
{
    static const struct option longopts[] = {
        {"docker-host", required_argument, NULL, 'D'},
        {"node", required_argument, NULL, 'o'},
        {"event-id", required_argument, NULL, 'e'},
        {"env", required_argument, NULL, 'E'},
        {"port", required_argument, NULL, 'p'},
        {"gpu", required_argument, NULL, 'g'},
        {"gpus", required_argument, NULL, 'G'},
        {"runner", required_argument, NULL, 'k'},
        {"name", required_argument, NULL, 'N'},
        {"partition", required_argument, NULL, 'T'},
        {"memory", required_argument, NULL, 'm'},
        {"cpus", required_argument, NULL, 'c'},
        {"shm", required_argument, NULL, 's'},
        {"pids", required_argument, NULL, 'P'},
        {"user", required_argument, NULL, 'u'},
        {"relax", required_argument, NULL, 'R'},
        {"no-wait", no_argument, NULL, 'n'},
        {"timeout", required_argument, NULL, 't'},
        {"rm", no_argument, NULL, 'r'},
        {NULL, 0, NULL, 0},
    };
    int c, rc = OCRA_CLI_OK;

    while (rc == OCRA_CLI_OK && (c = getopt_long(argc, argv, "+", longopts, NULL)) != -1) {
        switch (c) {
        case 'o':
            o->node = optarg;
            break;
        case 'D':
            o->docker_host = optarg;
            break;
        case 'e':
            o->event_id = optarg;
            break;
        case 'E':
            o->env[o->n_env++] = optarg;
            break;
        case 'R':
            o->relax[o->n_relax++] = optarg;
            break;
        case 'u':
            o->user = optarg;
            break;
        case 'g':
            rc = parse_gpu(o, optarg);
            break;
        case 'G':
            rc = ocra_cli_parse_int("gpus", optarg, 0, OCRA_RUN_MAX_GPUS, &o->gpu_count);
            break;
        case 'k':
            o->runner = optarg;
            if (strcmp(optarg, "docker") != 0 && strcmp(optarg, "slurm") != 0)
                rc = ocra_cli_fail(OCRA_CLI_USAGE, "--runner %s: want docker or slurm", optarg);
            break;
        case 'N':
            o->name = optarg;
            break;
        case 'T':
            o->partition = optarg;
            break;
        case 'p':
            rc = ocra_cli_parse_int("port", optarg, 1, 65535, &o->port);
            break;
        case 'm':
            rc = ocra_cli_parse_int("memory", optarg, 4, 1 << 22, &o->memory);
            break;
        case 'c':
            rc = ocra_cli_parse_int("cpus", optarg, 1, 1024000, &o->cpus);
            break;
        case 's':
            rc = ocra_cli_parse_int("shm", optarg, 1, 1 << 20, &o->shm);
            break;
        case 'P':
            rc = ocra_cli_parse_int("pids", optarg, 8, 1 << 22, &o->pids);
            break;
        case 't':
            rc = ocra_cli_parse_int("timeout", optarg, 1, 604800, &o->timeout_s);
            break;
        case 'n':
            o->no_wait = true;
            break;
        case 'r':
            o->rm = true;
            break;
        default:
            return ocra_cli_fail(OCRA_CLI_USAGE, "see `ocra help run`");
        }
    }
    if (rc == OCRA_CLI_OK && o->name && o->event_id)
        rc = ocra_cli_fail(OCRA_CLI_USAGE, "--name and --event-id: give one of them");
    if (rc == OCRA_CLI_OK && o->gpu_count && o->n_gpus && o->gpu_count != o->n_gpus)
        rc = ocra_cli_fail(OCRA_CLI_USAGE, "--gpus %lld and %d --gpu indices disagree",
                           (long long)o->gpu_count, o->n_gpus);
    /* the docker runner places nothing: --gpus N alone means the engine's first N devices */
    if (rc == OCRA_CLI_OK && strcmp(o->runner, "docker") == 0 && o->gpu_count && !o->n_gpus)
        for (; o->n_gpus < o->gpu_count; o->n_gpus++)
            o->gpus[o->n_gpus] = (uint8_t)o->n_gpus;
    if (rc == OCRA_CLI_OK && strcmp(o->runner, "slurm") == 0 && o->n_gpus)
        rc = ocra_cli_fail(
            OCRA_CLI_USAGE,
            "--gpu INDEX: Slurm allocates the devices; ask for a count with --gpus N");
    return rc;
}

static int
run_run(struct ocra_cli_ctx *ctx, int argc, char **argv)
{
    struct run_opts o = {.timeout_s = 3600, .runner = "docker"};
    const char *image;
    int status = ocra_cli_config(ctx);

    if (status != OCRA_CLI_OK)
        return status;
    o.env = ocra_xcalloc((size_t)argc + 1, sizeof(char *));
    o.relax = ocra_xcalloc((size_t)argc + 1, sizeof(char *));
    status = parse_opts(argc, argv, &o);
    if (status == OCRA_CLI_OK && optind >= argc)
        status = ocra_cli_fail(OCRA_CLI_USAGE, "run: no image (REPO@sha256:DIGEST) given");
    if (status == OCRA_CLI_OK) {
        image = argv[optind++];
        if (optind < argc && strcmp(argv[optind], "--") == 0)
            optind++;
        if (!o.docker_host)
            o.docker_host = ocra_config_docker_socket(&ctx->cfg);
        if (o.docker_host && strncmp(o.docker_host, "unix://", 7) == 0)
            o.docker_host += strlen("unix://");
        status = run_image(&o, &ctx->cfg, image,
                           optind < argc ? (const char *const *)argv + optind : NULL);
    }
    free(o.env);
    free(o.relax);
    return status;
}

const struct ocra_cli_cmd ocra_cli_run_cmd = {
    "run", "run an image by digest in the sandbox (Docker or Slurm)",
    "usage: ocra run [--runner docker|slurm] [--event-id ID | --name NAME]\n"
    "                [--docker-host unix://PATH | --node NODE] [--partition P]\n"
    "                [--env NAME=VALUE]...\n"
    "                [--port P] [--gpus N] [--gpu INDEX]... [--memory MIB] [--cpus MILLI]\n"
    "                [--shm MIB] [--pids N] [--user UID:GID] [--relax KEY]... [--no-wait]\n"
    "                [--timeout S] [--rm] REPO@sha256:DIGEST [-- COMMAND...]\n"
    "\n"
    "Runs the image, pinned by digest (a tag is refused), with the sandbox profile of\n"
    "docs/RUNNING.md: read-only root, tmpfs /tmp, no capabilities, no-new-privileges, pids,\n"
    "memory and CPU limits, a non-root user, no network. It prints the profile it applied and\n"
    "starts `ocra-<short event id>`: with the docker runner a container on one engine, with\n"
    "the slurm runner a batch job through slurmrestd (run.slurm.* in the configuration) whose\n"
    "script runs the image with the node's docker CLI. A container or job that already exists\n"
    "for the same event and image is adopted, never duplicated. It waits for the workload and\n"
    "prints the tail of its log and its exit code (a cancelled Slurm job: \"stopped\").\n"
    "\n"
    "options:\n"
    "      --runner R         docker (default) or slurm\n"
    "      --event-id ID      the chain event the run belongs to (default: manual:IMAGE)\n"
    "      --name NAME        a manual run's name: the event id becomes manual:NAME\n"
    "      --partition P      slurm: the partition (default run.slurm.partition)\n"
    "      --docker-host URL  the engine (default: run.docker_host, $DOCKER_HOST, else\n"
    "                         /var/run/docker.sock)\n"
    "      --node NODE        docker: on the engine of inventory node NODE (its docker_host,\n"
    "                         unix:// or tcp:// with TLS client certificates); the image is\n"
    "                         pulled there by digest first\n"
    "      --env NAME=VALUE   an environment variable; repeatable\n"
    "      --port P           the port the workload serves (needs the network_host relaxation)\n"
    "      --gpus N           GPUs: slurm asks for gres gpu:N; docker takes devices 0..N-1\n"
    "      --gpu INDEX        docker: an allocated GPU device index; repeatable\n"
    "      --memory MIB, --cpus MILLI, --shm MIB, --pids N   limits (defaults in RUNNING.md)\n"
    "      --user UID:GID     the user (default 65532:65532)\n"
    "      --relax KEY        writable_rootfs, network_host, no_pids_limit or run_as_root;\n"
    "                         adds to the configuration's run.sandbox.* keys\n"
    "      --no-wait          start it and return\n"
    "      --timeout S        how long to wait (default 3600)\n"
    "      --rm               remove the container (slurm: the job's output file) after it\n"
    "                         exited\n"
    "\n"
    "examples:\n"
    "  ocra run localhost:5000/mine/seed@sha256:...\n"
    "  ocra run --gpus 1 --port 8080 --no-wait localhost:5000/mine/bert@sha256:...\n"
    "  ocra run --runner slurm --partition gpu localhost:5000/mine/llama@sha256:...\n"
    "  ocra run --node gpu-b --rm reg:5000/m@sha256:... -- python3 -c 'print(1)'\n"
    "\n"
    "exit status: 0 the workload exited 0 (or started, with --no-wait), 1 it failed, was\n"
    "stopped, or the engine or Slurm failed (a job asking more GPUs than a node has), 2 usage\n"
    "error or a refused image or profile.\n",
    run_run, NULL};
