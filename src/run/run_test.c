/* SPDX-License-Identifier: Apache-2.0 */
/*
 * run_test: the parts of the run module that need no engine: spec checks (a tag refused, a
 * root user refused, a served port without the network_host relaxation refused), the
 * container name, the create body of the default profile and of each relaxation, the GPU
 * DeviceRequests (not testable end to end without a GPU), the profile description and the
 * log stream demultiplexer.
 */
#include <errno.h>
#include <string.h>

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

OCRA_TEST_MAIN(OCRA_TEST(test_spec_check_refuses_tags_and_bad_values),
               OCRA_TEST(test_root_user_needs_run_as_root),
               OCRA_TEST(test_served_port_needs_network_host),
               OCRA_TEST(test_container_name_is_short_event_id),
               OCRA_TEST(test_default_profile_body), OCRA_TEST(test_relaxations_are_explicit),
               OCRA_TEST(test_gpu_device_requests_json),
               OCRA_TEST(test_profile_description_names_relaxations), OCRA_TEST(test_log_demux))
