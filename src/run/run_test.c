/* SPDX-License-Identifier: Apache-2.0 */
/*
 * run_test: the parts of the run module that need no engine: spec checks (a tag refused, a
 * root user refused, a served port without the network_host relaxation refused), the
 * container name, the create body of the default profile and of each relaxation, the GPU
 * DeviceRequests (not testable end to end without a GPU), the profile description and the
 * log stream demultiplexer; the slurm runner's job script (run by sh with a stand-in docker
 * that prints its arguments, so the quoting is checked by a real shell), its submit body, and
 * the parsers of slurmrestd replies, hostile ones included.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ocra_test.h"
#include "run/run_int.h"

#define DIGEST "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define IMAGE "127.0.0.1:5000/ocra/model@" DIGEST
#define EVENT "ain:0:0x3f00000000000000000000000000000000000000000000000000000000000001:0"

static struct ocra_run_spec
spec_default(void)
{
    static const char *const cmd[] = {"python3", "-c", "print(1)", NULL};
    static const char *const env[] = {"A=1", "HF_HOME=/tmp/hf", NULL};

    return (struct ocra_run_spec){.event_id = EVENT, .image = IMAGE, .cmd = cmd, .env = env};
}

static int
check_code(const struct ocra_run_spec *s)
{
    struct ocra_err err = {0};

    return ocra_run_spec_check(s, &err) == 0 ? 0 : err.code;
}

static void
test_spec_check_refuses_tags_and_bad_values(void)
{
    struct ocra_run_spec s = spec_default();
    static const char *const bad_env[] = {"1A=x", NULL};
    static const char *const empty_cmd[] = {NULL};
    struct ocra_err err = {0};
    const uint8_t twice[] = {1, 1};

    CHECK_INT(check_code(&s), 0);
    s.image = "127.0.0.1:5000/ocra/model:evt-0123456789ab";
    CHECK_INT(ocra_run_spec_check(&s, &err), -1);
    CHECK_INT(err.code, EINVAL);
    CHECK(strstr(err.msg, "not pinned by digest") != NULL);
    s.image = "ocra/model@sha256:0123";
    CHECK_INT(check_code(&s), EINVAL);
    s = spec_default();
    s.event_id = "ain:\n0";
    CHECK_INT(check_code(&s), EINVAL);
    s = spec_default();
    s.env = bad_env;
    CHECK_INT(check_code(&s), EINVAL);
    s = spec_default();
    s.cmd = empty_cmd;
    CHECK_INT(check_code(&s), EINVAL);
    s = spec_default();
    s.profile.memory_mib = 1;
    CHECK_INT(check_code(&s), EINVAL);
    s = spec_default();
    s.gpu_devs = twice;
    s.n_gpu_devs = 2;
    CHECK_INT(check_code(&s), EINVAL);
}

static void
test_root_user_needs_run_as_root(void)
{
    struct ocra_run_spec s = spec_default();
    struct ocra_err err = {0};
    const char *roots[] = {"0", "0:0", "root", "root:1000", "000:5"};

    for (size_t i = 0; i < OCRA_ARRAY_LEN(roots); i++) {
        s.profile.user = roots[i];
        s.profile.run_as_root = false;
        CHECK_INT(ocra_run_spec_check(&s, &err), -1);
        CHECK(strstr(err.msg, "run.sandbox.run_as_root") != NULL);
        s.profile.run_as_root = true;
        CHECK_INT(check_code(&s), 0);
    }
    s.profile = (struct ocra_run_profile){.user = "1000:1000"};
    CHECK_INT(check_code(&s), 0);
    s.profile.user = "nobody";
    CHECK_INT(check_code(&s), 0);
    s.profile.user = "a b";
    CHECK_INT(check_code(&s), EINVAL);
}

static void
test_served_port_needs_network_host(void)
{
    struct ocra_run_spec s = spec_default();
    struct ocra_err err = {0};
    json_t *body;

    s.port = 8080;
    CHECK_INT(ocra_run_spec_check(&s, &err), -1);
    CHECK_INT(err.code, EINVAL);
    CHECK(strstr(err.msg, "run.sandbox.network_host") != NULL);
    s.profile.network_host = true;
    body = ocra_run_docker_create_body(&s, &err);
    CHECK(body != NULL);
    CHECK_STR(
        json_string_value(json_object_get(json_object_get(body, "HostConfig"), "NetworkMode")),
        "host");
    json_decref(body);
}

static void
test_container_name_is_short_event_id(void)
{
    char name[OCRA_RUN_NAME_MAX];
    char hex[65];

    ocra_run_container_name(EVENT, name);
    ocra_sha256_hex(EVENT, strlen(EVENT), hex);
    CHECK_INT(strlen(name), 17);
    CHECK(strncmp(name, "ocra-", 5) == 0 && strncmp(name + 5, hex, 12) == 0);
}

static void
test_replicas_names_ports_labels(void)
{
    struct ocra_run_spec s = spec_default();
    struct ocra_err err = {0};
    char name[OCRA_RUN_NAME_MAX], base[OCRA_RUN_NAME_MAX];
    json_t *body, *env;
    char *text;

    ocra_run_container_name(EVENT, base);
    ocra_run_replica_name(EVENT, 0, name);
    CHECK_STR(name, base);
    ocra_run_replica_name(EVENT, 255, name);
    CHECK(strncmp(name, base, strlen(base)) == 0);
    CHECK_STR(name + strlen(base), "-r255");
    /* replica 2 of a workload serving 8000: port 8002, its own label */
    s.profile.network_host = true;
    s.port = 8000;
    s.replica = 2;
    body = ocra_run_docker_create_body(&s, &err);
    CHECK(body != NULL);
    CHECK_STR(ocra_json_str(json_object_get(body, "Labels"), "io.ocra.replica"), "2");
    env = json_object_get(body, "Env");
    text = ocra_json_compact(env);
    CHECK_STR(text, "[\"A=1\",\"HF_HOME=/tmp/hf\",\"OCRA_PORT=8002\"]");
    free(text);
    json_decref(body);
    /* no port: no OCRA_PORT; replica 0 labelled "0" */
    s = spec_default();
    body = ocra_run_docker_create_body(&s, &err);
    CHECK_STR(ocra_json_str(json_object_get(body, "Labels"), "io.ocra.replica"), "0");
    CHECK_INT(json_array_size(json_object_get(body, "Env")), 2);
    json_decref(body);
    s.replica = -1;
    CHECK_INT(check_code(&s), EINVAL);
    s.replica = OCRA_RUN_MAX_REPLICAS;
    CHECK_INT(check_code(&s), EINVAL);
    s.replica = 10;
    s.profile.network_host = true;
    s.port = 65530;
    CHECK_INT(check_code(&s), EINVAL); /* 65540 */
    s.port = 65525;
    CHECK_INT(check_code(&s), 0);
}

static void
test_default_profile_body(void)
{
    struct ocra_run_spec s = spec_default();
    struct ocra_err err = {0};
    json_t *body = ocra_run_docker_create_body(&s, &err), *hc;
    char *caps, *sec;

    CHECK(body != NULL);
    if (!body)
        return;
    hc = json_object_get(body, "HostConfig");
    CHECK_STR(ocra_json_str(body, "Image"), IMAGE);
    CHECK_STR(ocra_json_str(body, "User"), OCRA_RUN_DEFAULT_USER);
    CHECK_STR(ocra_json_str(json_object_get(body, "Labels"), "io.ocra.event-id"), EVENT);
    CHECK_STR(ocra_json_str(json_object_get(body, "Labels"), "io.ocra.image"), IMAGE);
    CHECK(json_is_true(json_object_get(hc, "ReadonlyRootfs")));
    caps = ocra_json_compact(json_object_get(hc, "CapDrop"));
    sec = ocra_json_compact(json_object_get(hc, "SecurityOpt"));
    CHECK_STR(caps, "[\"ALL\"]");
    CHECK_STR(sec, "[\"no-new-privileges\"]");
    CHECK_INT(ocra_json_int(hc, "PidsLimit", 0), OCRA_RUN_DEFAULT_PIDS);
    CHECK_INT(ocra_json_int(hc, "Memory", 0), (int64_t)OCRA_RUN_DEFAULT_MEMORY_MIB << 20);
    CHECK_INT(ocra_json_int(hc, "MemorySwap", 0), (int64_t)OCRA_RUN_DEFAULT_MEMORY_MIB << 20);
    CHECK_INT(ocra_json_int(hc, "NanoCpus", 0), 1000000000);
    CHECK_INT(ocra_json_int(hc, "ShmSize", 0), 64 << 20);
    CHECK_STR(ocra_json_str(hc, "NetworkMode"), "none");
    CHECK(strstr(ocra_json_str(json_object_get(hc, "Tmpfs"), "/tmp"), "size=256m") != NULL);
    CHECK(json_object_get(hc, "DeviceRequests") == NULL);
    CHECK(json_object_get(hc, "Privileged") == NULL);
    free(caps);
    free(sec);
    json_decref(body);
}

static void
test_relaxations_are_explicit(void)
{
    struct ocra_run_spec s = spec_default();
    json_t *body, *hc;

    s.profile.writable_rootfs = true;
    s.profile.no_pids_limit = true;
    s.profile.run_as_root = true;
    s.profile.memory_mib = 2048;
    s.profile.cpu_milli = 1500;
    s.profile.shm_mib = 1024;
    body = ocra_run_docker_create_body(&s, NULL);
    CHECK(body != NULL);
    if (!body)
        return;
    hc = json_object_get(body, "HostConfig");
    CHECK(json_is_false(json_object_get(hc, "ReadonlyRootfs")));
    CHECK_INT(ocra_json_int(hc, "PidsLimit", 0), -1);
    CHECK_STR(ocra_json_str(body, "User"), "0:0");
    CHECK_INT(ocra_json_int(hc, "Memory", 0), INT64_C(2048) << 20);
    CHECK_INT(ocra_json_int(hc, "NanoCpus", 0), 1500000000);
    CHECK_INT(ocra_json_int(hc, "ShmSize", 0), INT64_C(1024) << 20);
    /* capabilities and no-new-privileges have no relaxation */
    CHECK(json_array_size(json_object_get(hc, "CapDrop")) == 1);
    CHECK(json_array_size(json_object_get(hc, "SecurityOpt")) == 1);
    json_decref(body);
}

static void
test_gpu_device_requests_json(void)
{
    struct ocra_run_spec s = spec_default();
    const uint8_t devs[] = {1, 3};
    json_t *body;
    char *dr;

    s.gpu_devs = devs;
    s.n_gpu_devs = 2;
    body = ocra_run_docker_create_body(&s, NULL);
    CHECK(body != NULL);
    if (!body)
        return;
    dr =
        ocra_json_canonical(json_object_get(json_object_get(body, "HostConfig"), "DeviceRequests"));
    CHECK_STR(dr, "[{\"Capabilities\":[[\"gpu\"]],\"Count\":0,\"DeviceIDs\":[\"1\",\"3\"],"
                  "\"Driver\":\"nvidia\"}]");
    free(dr);
    json_decref(body);
}

static void
test_profile_description_names_relaxations(void)
{
    struct ocra_run_spec s = spec_default();
    const uint8_t devs[] = {0, 2};
    struct ocra_buf b;

    ocra_buf_init(&b);
    ocra_run_profile_describe(&s, &b);
    CHECK(strstr(b.data, "read-only") != NULL);
    CHECK(strstr(b.data, "network:           none\n") != NULL);
    CHECK(strstr(b.data, "relaxed") == NULL);
    ocra_buf_reset(&b);
    s.profile.network_host = true;
    s.profile.writable_rootfs = true;
    s.gpu_devs = devs;
    s.n_gpu_devs = 2;
    ocra_run_profile_describe(&s, &b);
    CHECK(strstr(b.data, "host (relaxed: run.sandbox.network_host)") != NULL);
    CHECK(strstr(b.data, "writable (relaxed: run.sandbox.writable_rootfs)") != NULL);
    CHECK(strstr(b.data, "gpus:              0,2\n") != NULL);
    ocra_buf_fini(&b);
}

static void
test_log_demux(void)
{
    static const unsigned char two[] = {1, 0, 0, 0, 0, 0, 0, 3,   'o', 'u', 't', 2,
                                        0, 0, 0, 0, 0, 0, 4, 'e', 'r', 'r', '\n'};
    static const unsigned char cut[] = {1, 0, 0, 0, 0, 0, 0, 9, 'x'};
    static const unsigned char bad[] = {7, 0, 0, 0, 0, 0, 0, 1, 'x'};
    struct ocra_err err = {0};
    struct ocra_buf b;

    ocra_buf_init(&b);
    CHECK_INT(ocra_run_docker_demux(two, sizeof(two), &b, &err), 0);
    CHECK_STR(b.data, "outerr\n");
    CHECK_INT(ocra_run_docker_demux("", 0, &b, &err), 0);
    CHECK_INT(ocra_run_docker_demux(cut, sizeof(cut), &b, &err), -1);
    CHECK_INT(err.code, EPROTO);
    CHECK_INT(ocra_run_docker_demux(bad, sizeof(bad), &b, &err), -1);
    CHECK_INT(ocra_run_docker_demux(two, 5, &b, &err), -1);
    ocra_buf_fini(&b);
}

#define CID(c)                                                                                     \
    c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c  \
        c c c c c c c c c c c c c c c c c
/* A GET /containers/json reply as the engine writes it, filtered on io.ocra.event-id. */
static void
test_containers_parse_labels_and_names(void)
{
    static const char reply[] = "[{\"Id\":\"" CID(
        "a") "\",\"Names\":[\"/ocra-0123456789ab-r2\"],\"State\":\"running\","
             "\"Labels\":{\"io.ocra.event-id\":\"" EVENT "\",\"io.ocra.runner\":\"docker\","
             "\"io.ocra.replica\":\"2\"}},"
             /* a slurm job's, labelled with its job id */
             "{\"Id\":\"" CID(
                 "b") "\",\"Names\":[\"/ocra-0123456789ab-77\"],\"State\":\"created\","
                      "\"Labels\":{\"io.ocra.event-id\":\"e2\",\"io.ocra.runner\":\"slurm\","
                      "\"io.ocra.slurm-job\":\"5\"}},"
                      /* one made before the job label: the id from the name */
                      "{\"Id\":\"" CID(
                          "c") "\",\"Names\":[\"/ocra-0123456789ab-4242\"],\"State\":\"exited\","
                               "\"Labels\":{\"io.ocra.event-id\":\"e3\",\"io.ocra.runner\":"
                               "\"slurm\"}},"
                               /* no valid event label: not ocra's to judge */
                               "{\"Id\":\"" CID(
                                   "d") "\",\"Names\":[\"/"
                                        "x\"],\"Labels\":{\"io.ocra.event-id\":\"a\\nb\"}},"
                                        "{\"Id\":\"" CID(
                                            "e") "\",\"Names\":[\"/y\"],\"Labels\":null},"
                                                 /* hostile values are bounded, not trusted */
                                                 "{\"Id\":\"" CID(
                                                     "f") "\",\"Names\":[7],\"State\":\"running\","
                                                          "\"Labels\":{\"io.ocra.event-id\":\"e4\","
                                                          "\"io.ocra.replica\":\"999\","
                                                          "\"io.ocra.slurm-job\":\"99999999999\","
                                                          "\"io.ocra.runner\":\"slurm\"}}]";
    struct ocra_run_container *v = NULL;
    struct ocra_err err = {0};
    size_t n = 0;

    CHECK_INT(ocra_run_containers_parse(reply, strlen(reply), &v, &n, &err), 0);
    CHECK_INT((int)n, 4);
    if (n == 4) {
        CHECK_STR(v[0].name, "ocra-0123456789ab-r2");
        CHECK_STR(v[0].event_id, EVENT);
        CHECK_STR(v[0].runner, "docker");
        CHECK_INT(v[0].replica, 2);
        CHECK(v[0].active && v[0].slurm_job == 0);
        CHECK(v[1].slurm_job == 5 && v[1].active && !strcmp(v[1].state, "created"));
        CHECK(v[2].slurm_job == 4242 && !v[2].active);
        CHECK(v[3].name[0] == '\0' && v[3].replica == -1 && v[3].slurm_job == 0);
    }
    free(v);
    /* malformed replies are refused whole */
    CHECK_INT(ocra_run_containers_parse("{}", 2, &v, &n, &err), -1);
    CHECK_INT(err.code, EPROTO);
    CHECK_INT(ocra_run_containers_parse("[{\"Id\":\"ab\"}]", 13, &v, &n, &err), -1);
    CHECK_INT(ocra_run_containers_parse("[1]", 3, &v, &n, &err), -1);
    CHECK_INT(
        ocra_run_containers_parse("[{\"Id\":\"" CID("a") "\",\"Labels\":[]}]", 87, &v, &n, &err),
        -1);
    CHECK_INT(ocra_run_containers_parse("[", 1, &v, &n, &err), -1);
    CHECK_INT(ocra_run_containers_parse("[]", 2, &v, &n, &err), 0);
    CHECK_INT((int)n, 0);
    free(v);
}

struct seen {
    int n;
    char ids[4][72], events[4][64];
    int replicas[4];
};

static void
seen_add(void *arg, const char *job_id, const char *event_id, int replica)
{
    struct seen *s = arg;

    if (s->n < 4) {
        snprintf(s->ids[s->n], sizeof(s->ids[0]), "%s", job_id);
        snprintf(s->events[s->n], sizeof(s->events[0]), "%s", event_id ? event_id : "(none)");
        s->replicas[s->n] = replica;
    }
    s->n++;
}

#define EVENTS_CID "3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a"

/* The engine's /events lines: the ends of ocra's containers, nothing else. */
static void
test_docker_events_parse(void)
{
    static const char body[] =
        "{\"Type\":\"container\",\"Action\":\"die\",\"Actor\":{\"ID\":\"" EVENTS_CID "\","
        "\"Attributes\":{\"exitCode\":\"0\",\"io.ocra.event-id\":\"evm:1:0xab:0\","
        "\"io.ocra.replica\":\"0\"}},\"time\":1}\n"
        "{\"Type\":\"network\",\"Action\":\"die\",\"Actor\":{\"ID\":\"" EVENTS_CID "\"}}\n"
        "{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\":\"" EVENTS_CID "\"}}\n"
        "{\"Type\":\"container\",\"Action\":\"die\",\"Actor\":{\"ID\":\"../x\"}}\n"
        "\n"
        "{\"Type\":\"container\",\"Action\":\"oom\",\"Actor\":{\"ID\":\"" EVENTS_CID "\","
        "\"Attributes\":{\"io.ocra.replica\":\"2\"}}}\n"
        "{\"Type\":\"container\",\"Action\":\"stop\",\"Actor\":{\"ID\":\"" EVENTS_CID "\","
        "\"Attributes\":{\"io.ocra.event-id\":\"\",\"io.ocra.replica\":\"-1\"}}}";
    static const char cut[] = "{\"Type\":\"container\",\"Action\":\"die\",\"Actor\":{\"I";
    struct ocra_err err = {0};
    struct seen s = {0};

    CHECK_INT(ocra_run_docker_events_parse(body, strlen(body), seen_add, &s, &err), 3);
    CHECK_INT(s.n, 3);
    CHECK_STR(s.ids[0], EVENTS_CID);
    CHECK_STR(s.events[0], "evm:1:0xab:0");
    CHECK_INT(s.replicas[0], 0);
    CHECK_STR(s.events[1], "(none)"); /* no label */
    CHECK_INT(s.replicas[1], 2);
    CHECK_STR(s.events[2], "(none)"); /* an empty label */
    CHECK_INT(s.replicas[2], -1);
    CHECK_INT(ocra_run_docker_events_parse("", 0, seen_add, &s, &err), 0);
    CHECK_INT(ocra_run_docker_events_parse(cut, strlen(cut), seen_add, &s, &err), -1);
    CHECK_INT(err.code, EPROTO);
}

/* ---- slurm (begin) ---------------------------------------------------------------------- */

/* Runs the script by sh with a docker on PATH that prints its arguments, one a line. */
static char *
run_script(const char *script, const char *cuda)
{
    char dir[] = "/tmp/ocra-run-test.XXXXXX", path[128], out[128];
    char *text = NULL;
    size_t len;
    int fd, status = -1;
    pid_t pid;

    if (!mkdtemp(dir))
        return NULL;
    snprintf(path, sizeof(path), "%s/docker", dir);
    CHECK(ocra_file_write_atomic(path, "#!/bin/sh\nprintf '%s\\n' \"$@\"\n", 29, 0755, NULL) == 0);
    snprintf(path, sizeof(path), "%s/job.sh", dir);
    CHECK(ocra_file_write_atomic(path, script, strlen(script), 0644, NULL) == 0);
    snprintf(out, sizeof(out), "%s/out", dir);
    pid = fork();
    if (pid == 0) {
        char pathenv[160], cudaenv[96], job[] = "SLURM_JOB_ID=42", home[] = "HOME=/nonexistent";
        char *envp[] = {pathenv, cudaenv, job, home, NULL};

        snprintf(pathenv, sizeof(pathenv), "PATH=%s:/usr/bin:/bin", dir);
        snprintf(cudaenv, sizeof(cudaenv), "CUDA_VISIBLE_DEVICES=%s", cuda);
        fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || dup2(fd, 1) < 0)
            _exit(126);
        execle("/bin/sh", "sh", path, (char *)NULL, envp);
        _exit(127);
    }
    if (pid > 0)
        waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (ocra_file_read(out, 1 << 20, &text, &len, NULL) < 0)
        text = NULL;
    unlink(out);
    unlink(path);
    snprintf(path, sizeof(path), "%s/docker", dir);
    unlink(path);
    rmdir(dir);
    return text;
}

static void
test_slurm_script_runs_the_profile_with_hostile_words_quoted(void)
{
    static const char *const cmd[] = {"sh", "-c", "echo '$(id)'; `reboot` \\\\ \"x\" $HOME", NULL};
    static const char *const env[] = {"A=it's $PATH", NULL};
    struct ocra_run_spec s = spec_default();
    struct ocra_buf b;
    struct ocra_err err = {0};
    char *args;
    const char *want = "--host\nunix:///run/ocra/d.sock\nrun\n--rm\n--name\nocra-";

    s.cmd = cmd;
    s.env = env;
    s.gpu_count = 2;
    ocra_buf_init(&b);
    CHECK_INT(ocra_run_slurm_script(&s, "unix:///run/ocra/d.sock", &b, &err), 0);
    args = run_script(b.data, "0,1");
    CHECK(args != NULL);
    if (args) {
        CHECK(strncmp(args, want, strlen(want)) == 0);
        CHECK(strstr(args, "-42\n--read-only\n--tmpfs\n/tmp:rw,nosuid,nodev,size=256m,mode=1777\n"
                           "--cap-drop\nALL\n--security-opt\nno-new-privileges\n--pids-limit\n256\n"
                           "--memory\n1024m\n--memory-swap\n1024m\n--cpus\n1.000\n--shm-size\n64m\n"
                           "--user\n65532:65532\n--network\nnone\n--restart\nno\n") != NULL);
        CHECK(strstr(args, "--label\nio.ocra.event-id=" EVENT "\n--label\nio.ocra.image=" IMAGE
                           "\n--label\nio.ocra.runner=slurm\n--label\nio.ocra.slurm-job=42\n"
                           "--env\nA=it's $PATH\n") != NULL);
        /* no NVIDIA GPUs here: the indices go into the environment only */
        CHECK(strstr(args, "--env\nCUDA_VISIBLE_DEVICES=0,1\n--\n" IMAGE "\nsh\n-c\n"
                           "echo '$(id)'; `reboot` \\\\ \"x\" $HOME\n") != NULL);
        CHECK(strstr(args, "--gpus") == NULL);
        CHECK(strstr(args, "--volume") == NULL);
    }
    free(args);
    /* a relaxed profile, no GPUs, the node's default engine; the run's own agent socket
     * directory bound read-only (none above: no --volume at all) */
    ocra_buf_reset(&b);
    s = spec_default();
    s.profile.writable_rootfs = s.profile.no_pids_limit = s.profile.network_host = true;
    s.agent_dir = "/run/ocra/agent/ocra-0123456789ab";
    CHECK_INT(ocra_run_slurm_script(&s, NULL, &b, &err), 0);
    args = run_script(b.data, "");
    CHECK(args && strncmp(args, "run\n", 4) == 0 && !strstr(args, "--read-only") &&
          strstr(args, "--pids-limit\n-1\n") && strstr(args, "--network\nhost\n") &&
          !strstr(args, "CUDA_VISIBLE_DEVICES") &&
          strstr(args, "\n--volume\n/run/ocra/agent/ocra-0123456789ab:/run/ocra:ro\n"));
    free(args);
    /* hostile allocation from the node's environment is refused, not pasted */
    ocra_buf_reset(&b);
    CHECK_INT(ocra_run_slurm_script(&s, "tcp://1.2.3.4:2375", &b, &err), -1);
    CHECK_INT(err.code, EINVAL);
    ocra_buf_fini(&b);
}

static void
test_slurm_submit_body(void)
{
    struct ocra_run_spec s = spec_default();
    struct ocra_run_slurm_opts o = {.partition = "gpu", .workdir = "/srv/jobs"};
    json_t *body, *job;

    s.gpu_count = 2;
    s.profile.cpu_milli = 1500;
    body = ocra_run_slurm_submit_body(&s, &o, "ocra-0123456789ab", "#!/bin/sh\n");
    job = json_object_get(body, "job");
    CHECK_STR(json_string_value(json_object_get(body, "script")), "#!/bin/sh\n");
    CHECK_STR(ocra_json_str(job, "name"), "ocra-0123456789ab");
    CHECK_STR(ocra_json_str(job, "partition"), "gpu");
    CHECK_STR(ocra_json_str(job, "gres"), "gpu:2");
    CHECK_INT(ocra_json_int(job, "cpus_per_task", 0), 2);
    CHECK_STR(ocra_json_str(job, "standard_output"), "/srv/jobs/ocra-0123456789ab-%j.out");
    CHECK_STR(ocra_json_str(job, "comment"), IMAGE);
    CHECK(json_is_object(json_object_get(job, "environment")));
    json_decref(body);
    s.gpu_count = 0;
    o = (struct ocra_run_slurm_opts){0};
    body = ocra_run_slurm_submit_body(&s, &o, "ocra-0123456789ab", "x");
    job = json_object_get(body, "job");
    CHECK(!json_object_get(job, "gres") && !json_object_get(job, "partition"));
    CHECK_STR(ocra_json_str(job, "current_working_directory"), "/tmp");
    json_decref(body);
}

static int
reply_code(long status, const char *text, char *msg, size_t n)
{
    struct ocra_err err = {0};
    json_t *doc = NULL;

    if (ocra_run_slurm_reply(status, text, strlen(text), &doc, &err) == 0) {
        json_decref(doc);
        return 0;
    }
    if (msg)
        snprintf(msg, n, "%s", err.msg);
    return err.code;
}

static void
test_slurm_replies_map_errors(void)
{
    char msg[OCRA_ERR_MAX];

    CHECK_INT(reply_code(200, "{\"errors\": [], \"job_id\": 3}", NULL, 0), 0);
    CHECK_INT(reply_code(500,
                         "{\"errors\": [{\"error_code\": 2014, \"error\": \"Requested node "
                         "configuration is not available\"}]}",
                         msg, sizeof(msg)),
              ENOSPC);
    CHECK(strstr(msg, "Requested node configuration is not available") != NULL);
    CHECK_INT(reply_code(500,
                         "{\"errors\": [{\"error_number\": 2017, \"error\": \"Invalid job id "
                         "specified\", \"description\": \"Unable to find JobId=9\"}]}",
                         msg, sizeof(msg)),
              ENOENT);
    CHECK(strstr(msg, "JobId=9") != NULL);
    CHECK_INT(reply_code(401, "Authentication failure", msg, sizeof(msg)), EACCES);
    CHECK(strstr(msg, "run.slurm.token_file") != NULL);
    /* hostile: not JSON, not an object, errors of the wrong type, control bytes in a message */
    CHECK_INT(reply_code(200, "<html>", NULL, 0), EPROTO);
    CHECK_INT(reply_code(200, "[1]", NULL, 0), EPROTO);
    CHECK_INT(reply_code(200, "{\"errors\": {}}", NULL, 0), EPROTO);
    CHECK_INT(reply_code(200, "{\"errors\": [7]}", NULL, 0), EPROTO);
    CHECK_INT(
        reply_code(500, "{\"errors\": [{\"error\": \"a\\nb\\u001b[31m\"}]}", msg, sizeof(msg)),
        EIO);
    CHECK(strchr(msg, '\n') == NULL && strchr(msg, 0x1b) == NULL);
    CHECK_INT(reply_code(502, "{}", NULL, 0), EIO);
}

static json_t *
jobs_doc(const char *text)
{
    json_t *doc = json_loads(text, 0, NULL);

    CHECK(doc != NULL);
    return doc;
}

static void
test_slurm_jobs_find_adopts_and_parses(void)
{
    struct ocra_run_slurm_job j = {0};
    struct ocra_err err = {0};
    json_t *doc = jobs_doc(
        "{\"jobs\": ["
        "{\"job_id\": 4, \"name\": \"ocra-a\", \"user_name\": \"u\", \"job_state\": \"COMPLETED\","
        " \"exit_code\": 0, \"comment\": \"img\", \"start_time\": 1714564800,"
        " \"end_time\": 1714564820},"
        "{\"job_id\": 5, \"name\": \"ocra-a\", \"user_name\": \"u\", \"job_state\": \"RUNNING\"},"
        "{\"job_id\": 6, \"name\": \"ocra-a\", \"user_name\": \"u\", \"job_state\": \"CANCELLED\"},"
        "{\"job_id\": 7, \"name\": \"ocra-a\", \"user_name\": \"other\", \"job_state\": "
        "\"PENDING\"},"
        "{\"job_id\": 8, \"name\": \"ocra-b\", \"user_name\": \"u\", \"job_state\": \"FAILED\","
        " \"exit_code\": 768, \"state_reason\": \"NonZeroExitCode\"},"
        "{\"job_id\": 9, \"name\": \"ocra-c\", \"user_name\": \"u\", \"job_state\": \"TIMEOUT\"},"
        "{\"job_id\": 10, \"name\": \"ocra-d\", \"user_name\": \"u\", \"job_state\": \"FAILED\","
        " \"exit_code\": 9}]}");

    CHECK_INT(ocra_run_slurm_jobs_find(doc, "ocra-a", "u", &j, &err), 1);
    CHECK_INT(j.job_id, 5); /* the active one, not the newer cancelled one */
    CHECK_INT(j.phase, OCRA_RUN_SLURM_RUNNING);
    CHECK_INT(ocra_run_slurm_jobs_find(doc, "ocra-b", "u", &j, &err), 1);
    CHECK_INT(j.phase, OCRA_RUN_SLURM_EXITED);
    CHECK_INT(j.exit_code, 3); /* a wait status: 3 << 8 */
    CHECK_STR(j.reason, "NonZeroExitCode");
    CHECK_INT(ocra_run_slurm_jobs_find(doc, "ocra-c", "u", &j, &err), 0); /* retried */
    CHECK_INT(ocra_run_slurm_jobs_find(doc, "ocra-d", "u", &j, &err), 1);
    CHECK_INT(j.exit_code, 137); /* killed by signal 9 */
    CHECK_INT(ocra_run_slurm_jobs_find(doc, "ocra-z", "u", &j, &err), 0);
    /* after a race, every starter keeps the first job: the lowest id, not the cancelled one */
    CHECK_INT(ocra_run_slurm_jobs_first(doc, "ocra-a", "u", &j, &err), 1);
    CHECK_INT(j.job_id, 4);
    CHECK(j.start_time == 1714564800 && j.end_time == 1714564820); /* Slurm's, for the run times */
    CHECK_INT(ocra_run_slurm_jobs_find(doc, "ocra-a", "u", &j, &err), 1);
    CHECK(j.start_time == 0 && j.end_time == 0); /* absent: not known */
    json_decref(doc);

    const char *hostile[] = {
        "{}",
        "{\"jobs\": {}}",
        "{\"jobs\": [1]}",
        "{\"jobs\": [{\"job_id\": \"5\", \"name\": \"ocra-a\", \"job_state\": \"RUNNING\"}]}",
        "{\"jobs\": [{\"job_id\": -1, \"name\": \"ocra-a\", \"job_state\": \"RUNNING\"}]}",
        "{\"jobs\": [{\"job_id\": 4294967296, \"job_state\": \"RUNNING\"}]}",
        "{\"jobs\": [{\"job_id\": 5, \"name\": \"ocra-a\"}]}",
        "{\"jobs\": [{\"job_id\": 5, \"name\": 7, \"job_state\": \"RUNNING\"}]}",
        "{\"jobs\": [{\"job_id\": 5, \"job_state\": \"FAILED\", \"exit_code\": 70000}]}",
        "{\"jobs\": [{\"job_id\": 5, \"job_state\": \"FAILED\", \"exit_code\": \"1\"}]}",
        "{\"jobs\": [{\"job_id\": 5, \"job_state\": "
        "\"RUNNINGRUNNINGRUNNINGRUNNINGRUNNINGRUNNING\"}]}",
    };
    for (size_t i = 0; i < OCRA_ARRAY_LEN(hostile); i++) {
        doc = jobs_doc(hostile[i]);
        err.code = 0;
        CHECK_INT(ocra_run_slurm_jobs_find(doc, "ocra-a", "u", &j, &err), -1);
        CHECK_INT(err.code, EPROTO);
        json_decref(doc);
    }
}

/* The engine's State.StartedAt and FinishedAt: what the complete stage reports as the run's
 * times (a stage that took the wait over after a restart has only its own clock otherwise). */
static void
test_rfc3339_times_of_the_engine(void)
{
    static const struct {
        const char *in;
        int64_t ms;
    } good[] = {
        {"2024-05-01T12:00:00Z", INT64_C(1714564800000)},
        {"2024-05-01T12:00:20.123456789Z", INT64_C(1714564820123)},
        {"2024-05-01T12:00:00.5Z", INT64_C(1714564800500)},
        {"2024-05-01T14:00:00+02:00", INT64_C(1714564800000)},
        {"2024-05-01T11:30:00.250-00:30", INT64_C(1714564800250)},
        {"0001-01-01T00:00:00Z", 0},      /* Go's zero time: never started or never ended */
        {"1970-01-01T00:30:00+01:00", 0}, /* before the epoch too */
    };
    static const char *const bad[] = {
        "",
        "2024-05-01",
        "2024-05-01 12:00:00Z",
        "2024-13-01T12:00:00Z",
        "2024-05-01T12:00:00",
        "2024-05-01T12:00:00.Z",
        "2024-05-01T12:00:00+2:00",
        "2024-05-01T12:00:00Zjunk",
        "2024-05-01T25:00:00Z",
        "2024-o5-01T12:00:00Z",
    };
    struct ocra_err err = {0};
    int64_t ms = -1;

    for (size_t i = 0; i < OCRA_ARRAY_LEN(good); i++) {
        CHECK_INT(ocra_run_time_parse(good[i].in, &ms, &err), 0);
        CHECK(ms == good[i].ms);
    }
    for (size_t i = 0; i < OCRA_ARRAY_LEN(bad); i++) {
        err.code = 0;
        CHECK_INT(ocra_run_time_parse(bad[i], &ms, &err), -1);
        CHECK_INT(err.code, EPROTO);
    }
}

static void
test_slurm_gres_strings(void)
{
    static const struct {
        const char *gres, *model;
        int count;
        uint32_t idx;
    } good[] = {
        {"gpu:4", "", 4, 0},
        {"gpu:0", "", 0, 0},
        {"(null)", "", 0, 0},
        {"", "", 0, 0},
        {"gpu:a100:2(S:0-1),gpu:t4:1", "a100", 3, 0},
        {"gpu:2(IDX:0,2)", "", 2, 5},
        {"gpu:tesla:3(IDX:1-3),mps:100", "tesla", 3, 14},
        {"mps:100,gpu:1(IDX:N/A)", "", 1, 0},
    };
    static const char *const bad[] = {"gpu:",         "gpu:x",         "gpu:2(IDX:0-99)",
                                      "gpu:2((S:0))", "gpu:2(S:0",     "gpu:9999999",
                                      "gpu:2)",       "gpu:1(IDX:3-1)"};
    char model[OCRA_SCHED_MODEL_MAX];
    struct ocra_err err = {0};
    uint32_t idx;
    int count;

    for (size_t i = 0; i < OCRA_ARRAY_LEN(good); i++) {
        CHECK_INT(ocra_run_slurm_gres_gpus(good[i].gres, model, &count, &idx, &err), 0);
        CHECK_INT(count, good[i].count);
        CHECK_STR(model, good[i].model);
        CHECK_INT(idx, good[i].idx);
    }
    for (size_t i = 0; i < OCRA_ARRAY_LEN(bad); i++) {
        err.code = 0;
        CHECK_INT(ocra_run_slurm_gres_gpus(bad[i], model, &count, &idx, &err), -1);
        CHECK_INT(err.code, EPROTO);
    }
}

static void
test_slurm_inventory_sums_gpus_per_partition(void)
{
    struct ocra_run_slurm_inventory inv = {0};
    struct ocra_err err = {0};
    json_t *nodes = jobs_doc(
        "{\"nodes\": ["
        "{\"name\": \"n1\", \"gres\": \"gpu:a100:4\", \"gres_used\": \"gpu:a100:2(IDX:1-2)\","
        " \"cpus\": 8, \"alloc_cpus\": 2, \"real_memory\": 4096, \"alloc_memory\": 1024,"
        " \"state\": \"mixed\", \"state_flags\": [\"DRAIN\"], \"partitions\": [\"gpu\", \"all\"]},"
        "{\"name\": \"n2\", \"gres\": \"\", \"gres_used\": \"gpu:0\", \"cpus\": 4,"
        " \"real_memory\": 1024, \"state\": \"idle\", \"partitions\": [\"all\"]}]}");
    json_t *parts = jobs_doc("{\"partitions\": [{\"name\": \"gpu\", \"state\": \"UP\"},"
                             "{\"name\": \"all\", \"state\": \"UP\"}, {\"name\": \"none\"}]}");

    CHECK_INT(ocra_run_slurm_inventory_parse(nodes, parts, &inv, &err), 0);
    CHECK_INT(inv.n_nodes, 2);
    CHECK_INT(inv.n_parts, 3);
    if (inv.n_nodes == 2 && inv.n_parts == 3) {
        const struct ocra_sched_node *n = &inv.nodes[0].node;

        CHECK_STR(n->name, "n1");
        CHECK_STR(n->gpu_model, "a100");
        CHECK_INT(n->gpu_count, 4);
        CHECK_INT(inv.nodes[0].gpus_alloc, 2);
        CHECK(n->gpu_free_milli[0] == 1000 && n->gpu_free_milli[1] == 0 &&
              n->gpu_free_milli[2] == 0 && n->gpu_free_milli[3] == 1000);
        CHECK_INT(n->cpu_free, 6000);
        CHECK_INT(n->ram_free, 3072);
        CHECK_STR(inv.nodes[0].state, "mixed+DRAIN");
        CHECK_STR(inv.nodes[0].partitions, "gpu,all");
        CHECK_INT(inv.nodes[1].node.gpu_count, 0);
        CHECK_INT(inv.parts[0].gpus_total, 4);
        CHECK_INT(inv.parts[0].gpus_alloc, 2);
        CHECK_INT(inv.parts[1].n_nodes, 2);
        CHECK_INT(inv.parts[1].max_node_gpus, 4);
        CHECK_INT(inv.parts[2].n_nodes, 0);
    }
    ocra_run_slurm_inventory_fini(&inv);
    json_decref(nodes);
    nodes = jobs_doc("{\"nodes\": [{\"name\": \"n1\", \"gres\": \"gpu:2(\"}]}");
    CHECK_INT(ocra_run_slurm_inventory_parse(nodes, NULL, &inv, &err), -1);
    CHECK_INT(err.code, EPROTO);
    json_decref(nodes);
    nodes = jobs_doc("{\"nodes\": [{\"gres\": \"gpu:2\"}]}");
    CHECK_INT(ocra_run_slurm_inventory_parse(nodes, NULL, &inv, &err), -1);
    json_decref(nodes);
    json_decref(parts);
}

/* ---- slurm (end) ------------------------------------------------------------------------ */

/* The runners by kind: each kind's capabilities are its runner's own, the ops the daemon
 * calls are there where the capabilities say, and a kind not known is refused by its key. */
static void
test_runners_by_kind_and_their_capabilities(void)
{
    const struct ocra_run_slurm_opts so = {
        .url = "http://127.0.0.1:1", .user = "ocra", .token_file = "/nonexistent/jwt"};
    struct ocra_run_opts o = {.kind = OCRA_RUN_KIND_SLURM, .slurm = &so};
    struct ocra_err err = {0};
    struct ocra_runner *r;

    CHECK_STR(ocra_run_kind_name(OCRA_RUN_KIND_DOCKER), "docker");
    CHECK_STR(ocra_run_kind_name(OCRA_RUN_KIND_SLURM), "slurm");
    CHECK_STR(ocra_run_kind_name(2), "");
    CHECK_INT(ocra_run_kind_supports(-1), 0);
    CHECK(ocra_run_kind_supports(OCRA_RUN_KIND_DOCKER) & OCRA_RUN_REPLICAS);
    CHECK(ocra_run_kind_supports(OCRA_RUN_KIND_DOCKER) & OCRA_RUN_LOCAL_ENGINE);
    CHECK(!(ocra_run_kind_supports(OCRA_RUN_KIND_DOCKER) & OCRA_RUN_PLACES_BY_COUNT));
    CHECK(ocra_run_kind_supports(OCRA_RUN_KIND_SLURM) & OCRA_RUN_PLACES_BY_COUNT);
    CHECK(ocra_run_kind_supports(OCRA_RUN_KIND_SLURM) & OCRA_RUN_BATCH);
    CHECK(!(ocra_run_kind_supports(OCRA_RUN_KIND_SLURM) & OCRA_RUN_REPLICAS));

    r = ocra_run_new(&o, &err); /* no request yet: the token is read at each */
    CHECK(r != NULL);
    if (r) {
        CHECK_STR(r->name, "slurm");
        CHECK_INT(r->supports, ocra_run_kind_supports(OCRA_RUN_KIND_SLURM));
        CHECK(r->containers && r->discard); /* the reconcile's, on the jobs' engine */
        CHECK(!r->inspect && !r->prepare);
    }
    ocra_runner_free(r);

    o.slurm = NULL;
    CHECK(ocra_run_new(&o, &err) == NULL);
    CHECK_INT(err.code, EINVAL);
    o.kind = 2;
    CHECK(ocra_run_new(&o, &err) == NULL);
    CHECK_INT(err.code, EINVAL);
    CHECK(strstr(err.msg, "run.runner") != NULL);
    /* the docker runner asks its engine when made: one that is not there is an error */
    o = (struct ocra_run_opts){.kind = OCRA_RUN_KIND_DOCKER,
                               .docker_socket = "/nonexistent/ocra-test/docker.sock"};
    CHECK(ocra_run_new(&o, &err) == NULL);
    CHECK(err.code != 0);
}

OCRA_TEST_MAIN(OCRA_TEST(test_replicas_names_ports_labels),
               OCRA_TEST(test_spec_check_refuses_tags_and_bad_values),
               OCRA_TEST(test_root_user_needs_run_as_root),
               OCRA_TEST(test_served_port_needs_network_host),
               OCRA_TEST(test_container_name_is_short_event_id),
               OCRA_TEST(test_default_profile_body), OCRA_TEST(test_relaxations_are_explicit),
               OCRA_TEST(test_gpu_device_requests_json),
               OCRA_TEST(test_profile_description_names_relaxations), OCRA_TEST(test_log_demux),
               OCRA_TEST(test_containers_parse_labels_and_names),
               OCRA_TEST(test_docker_events_parse),
               OCRA_TEST(test_slurm_script_runs_the_profile_with_hostile_words_quoted),
               OCRA_TEST(test_slurm_submit_body), OCRA_TEST(test_slurm_replies_map_errors),
               OCRA_TEST(test_slurm_jobs_find_adopts_and_parses),
               OCRA_TEST(test_slurm_gres_strings), OCRA_TEST(test_rfc3339_times_of_the_engine),
               OCRA_TEST(test_slurm_inventory_sums_gpus_per_partition),
               OCRA_TEST(test_runners_by_kind_and_their_capabilities))
