/* SPDX-License-Identifier: Apache-2.0 */
/*
 * it_image_docker: the Docker Engine API client against a real, private dockerd started by
 * it_image_docker.sh (DOCKER_HOST), with the local base image ($OCRA_BASE_IMAGE), a Dockerfile
 * that `ocra plan` generated for a CPU-only spec ($OCRA_IT_PLAN_DOCKERFILE, pip from an offline
 * index on loopback), and two real docker-registry instances on 127.0.0.1: anonymous
 * ($OCRA_REG_PORT) and htpasswd basic auth ($OCRA_REG_BASIC_PORT, user ocra). Builds, the
 * error of a failing step, a bounded log, inspect, tag, push (the registry confirms the
 * digest) and remove, all through the client, never the docker CLI.
 */
#include "image/image.h"
#include "ocra_test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PLAN_TAG "ocra-test/it-docker-plan:1"

static char plan_id[OCRA_IMAGE_DIGEST_MAX]; /* set by the plan build, used by the push tests */

static struct ocra_image_docker *
engine(void)
{
    struct ocra_err err = {0};
    struct ocra_image_docker *d = ocra_image_docker_new(NULL, &err);

    if (!d)
        fprintf(stderr, "  engine: %s\n", err.msg);
    return d;
}

static char *
tmp_path(const char *name)
{
    const char *dir = getenv("OCRA_IT_TMP");

    return ocra_xasprintf("%s/%s", dir ? dir : "/tmp", name);
}

static void
test_version_negotiated_over_docker_host(void)
{
    struct ocra_image_docker *d = engine();
    const char *host = getenv("DOCKER_HOST");
    struct ocra_image_docker_opts o = {.socket = host ? host + 7 : NULL};
    struct ocra_image_docker *d2;
    struct ocra_err err = {0};

    CHECK(d != NULL);
    if (d) /* the engine (20.10) speaks 1.41; a newer one is met at ours, 1.41 */
        CHECK_STR(ocra_image_docker_api_version(d), "1.41");
    d2 = ocra_image_docker_new(&o, &err);
    CHECK(d2 != NULL);
    ocra_image_docker_free(d2);
    ocra_image_docker_free(d);
}

static void
test_unusable_engine_addresses_fail(void)
{
    struct ocra_image_docker_opts missing = {.socket = "/nonexistent/docker.sock"};
    struct ocra_image_docker_opts relative = {.socket = "docker.sock"};
    char *saved = ocra_xstrdup(getenv("DOCKER_HOST") ? getenv("DOCKER_HOST") : "");
    struct ocra_err err = {0};

    CHECK(ocra_image_docker_new(&missing, &err) == NULL);
    CHECK(err.code != 0 && strstr(err.msg, "/nonexistent/docker.sock") != NULL);
    memset(&err, 0, sizeof(err));
    CHECK(ocra_image_docker_new(&relative, &err) == NULL);
    CHECK_INT(err.code, EINVAL);
    setenv("DOCKER_HOST", "tcp://127.0.0.1:2375", 1);
    memset(&err, 0, sizeof(err));
    CHECK(ocra_image_docker_new(NULL, &err) == NULL);
    CHECK_INT(err.code, ENOTSUP);
    setenv("DOCKER_HOST", saved, 1);
    free(saved);
}

/* Offset of name in a tar (as a header's name field), or -1. */
static long
tar_find(const char *tar, size_t len, const char *name)
{
    for (size_t off = 0; off + 512 <= len; off += 512)
        if (strncmp(tar + off, name, 100) == 0)
            return (long)off;
    return -1;
}

static char *
context_bytes(const struct ocra_image_docker_file *files, size_t n, size_t *len, int *rc,
              struct ocra_err *err)
{
    char *path = tmp_path("ctx.tar"), *data = NULL;
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    *rc = ocra_image_docker_context_write("FROM scratch\n", files, n, fd, err);
    close(fd);
    if (*rc == 0)
        ocra_file_read(path, 1u << 20, &data, len, NULL);
    unlink(path);
    free(path);
    return data;
}

static void
test_context_sorted_and_deterministic(void)
{
    char *src = tmp_path("ctx-src.bin");
    struct ocra_image_docker_file a[] = {{.name = "sub/b.bin", .path = src},
                                         {.name = "a.txt", .data = "abc", .len = 3, .mode = 0600}};
    struct ocra_image_docker_file b[] = {a[1], a[0]};
    struct ocra_image_docker_file dup[] = {{.name = "Dockerfile", .data = "x", .len = 1}};
    struct ocra_image_docker_file dots[] = {{.name = "../x", .data = "x", .len = 1}};
    struct ocra_err err = {0};
    size_t la = 0, lb = 0;
    char *ta, *tb;
    int rc;

    ocra_file_write_atomic(src, "bytes from a file", 17, 0644, NULL);
    ta = context_bytes(a, 2, &la, &rc, &err);
    CHECK_INT(rc, 0);
    tb = context_bytes(b, 2, &lb, &rc, &err);
    CHECK(ta && tb && la == lb && memcmp(ta, tb, la) == 0);
    if (ta) {
        long df = tar_find(ta, la, "Dockerfile"), at = tar_find(ta, la, "a.txt"),
             sb = tar_find(ta, la, "sub/b.bin");

        CHECK(df >= 0 && at > df && sb > at);
        CHECK(sb >= 0 && memcmp(ta + sb + 512, "bytes from a file", 17) == 0);
    }
    CHECK(context_bytes(dup, 1, &la, &rc, &err) == NULL && rc < 0 && err.code == EINVAL);
    CHECK(context_bytes(dots, 1, &la, &rc, &err) == NULL && rc < 0 && err.code == EINVAL);
    free(ta);
    free(tb);
    unlink(src);
    free(src);
}

/* The LABEL lines of a generated Dockerfile (LABEL "k"="v", JSON strings) into an object. */
static json_t *
dockerfile_labels(const char *text)
{
    json_t *labels = json_object();

    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        size_t n = strcspn(l, "\n");
        json_error_t je;
        json_t *k, *v = NULL;

        if (strncmp(l, "LABEL ", 6) != 0)
            continue;
        k = json_loadb(l + 6, n - 6, JSON_DECODE_ANY | JSON_DISABLE_EOF_CHECK, &je);
        if (k && json_is_string(k) && l[6 + je.position] == '=')
            v = json_loadb(l + 7 + je.position, n - 7 - (size_t)je.position, JSON_DECODE_ANY, NULL);
        if (v && json_is_string(v))
            json_object_set(labels, json_string_value(k), v);
        json_decref(k);
        json_decref(v);
    }
    return labels;
}

static void
test_build_plan_dockerfile_and_inspect_labels(void)
{
    const char *path = getenv("OCRA_IT_PLAN_DOCKERFILE");
    struct ocra_image_docker_build_opts o = {.tag = PLAN_TAG, .network = "host"};
    struct ocra_image_docker_build b = {0};
    struct ocra_image_docker_image img = {0};
    struct ocra_image_docker *d = engine();
    struct ocra_err err = {0};
    json_t *want = NULL, *v;
    const char *k;
    char *text = NULL;

    if (!d || !path || ocra_file_read(path, 1u << 20, &text, NULL, &err) < 0)
        OCRA_TEST_SKIP("no engine or no plan Dockerfile");
    o.dockerfile = text;
    CHECK_INT(ocra_image_docker_build(d, &o, &b, &err), 0);
    if (err.code)
        fprintf(stderr, "  %s\n  log: %s\n", err.msg, b.log);
    CHECK(ocra_image_digest_valid(b.id));
    CHECK(b.log && strstr(b.log, "Step 1/") && strstr(b.log, "Successfully tagged " PLAN_TAG));
    CHECK_INT(ocra_image_docker_inspect(d, PLAN_TAG, &img, &err), 0);
    CHECK_STR(img.id, b.id);
    want = dockerfile_labels(text);
    CHECK(json_object_size(want) > 0 && ocra_json_str(want, "io.ocra.spec-hash"));
    json_object_foreach(want, k, v) CHECK_STR(ocra_json_str(img.labels, k), json_string_value(v));
    snprintf(plan_id, sizeof(plan_id), "%s", b.id);
    json_decref(want);
    ocra_image_docker_image_fini(&img);
    ocra_image_docker_build_fini(&b);
    ocra_image_docker_free(d);
    free(text);
}

static bool
env_has(const json_t *env, const char *entry)
{
    size_t i;
    json_t *v;

    json_array_foreach(env, i, v) if (strcmp(json_string_value(v), entry) == 0) return true;
    return false;
}

static void
test_build_with_context_files_and_buildargs(void)
{
    char *tool = tmp_path("tool.sh");
    char *df = ocra_xasprintf(
        "FROM %s\nARG GREETING\nCOPY hello.txt /opt/hello.txt\nCOPY bin/tool.sh /opt/tool.sh\n"
        "RUN [\"sh\", \"-c\", \"test \\\"$(cat /opt/hello.txt)\\\" = 'hello from memory' && "
        "/opt/tool.sh\"]\nLABEL io.ocra.test.greeting=\"$GREETING\"\nENV OCRA_TEST_ENV=1\n",
        getenv("OCRA_BASE_IMAGE"));
    struct ocra_image_docker_file files[] = {
        {.name = "hello.txt", .data = "hello from memory", .len = 17},
        {.name = "bin/tool.sh", .path = tool, .mode = 0755}};
    json_t *args = json_pack("{s:s}", "GREETING", "hi there");
    struct ocra_image_docker_build_opts o = {
        .dockerfile = df, .files = files, .n_files = 2, .buildargs = args, .network = "none"};
    struct ocra_image_docker_build b = {0};
    struct ocra_image_docker_image img = {0};
    struct ocra_image_docker *d = engine();
    struct ocra_err err = {0};

    ocra_file_write_atomic(tool, "#!/bin/sh\necho tool ran\n", 24, 0644, NULL);
    CHECK(d != NULL);
    if (d && ocra_image_docker_build(d, &o, &b, &err) < 0)
        fprintf(stderr, "  %s\n  log: %s\n", err.msg, b.log);
    CHECK(ocra_image_digest_valid(b.id));
    CHECK(b.log && strstr(b.log, "tool ran\n")); /* the context file ran, with mode 0755 */
    if (d && b.id[0]) {
        CHECK_INT(ocra_image_docker_inspect(d, b.id, &img, &err), 0);
        CHECK_STR(ocra_json_str(img.labels, "io.ocra.test.greeting"), "hi there");
        CHECK(env_has(img.env, "OCRA_TEST_ENV=1"));
        CHECK_INT(ocra_image_docker_remove(d, b.id, false, &err), 0);
    }
    ocra_image_docker_image_fini(&img);
    ocra_image_docker_build_fini(&b);
    ocra_image_docker_free(d);
    json_decref(args);
    unlink(tool);
    free(tool);
    free(df);
}

static void
test_failing_step_is_named(void)
{
    char *df =
        ocra_xasprintf("FROM %s\nRUN [\"true\"]\nRUN [\"false\"]\n", getenv("OCRA_BASE_IMAGE"));
    struct ocra_image_docker_build_opts o = {
        .dockerfile = df, .tag = "ocra-test/it-docker-fail:1", .network = "none"};
    struct ocra_image_docker_build b = {0};
    struct ocra_image_docker_image img = {0};
    struct ocra_image_docker *d = engine();
    struct ocra_err err = {0};

    CHECK(d != NULL);
    if (d)
        CHECK_INT(ocra_image_docker_build(d, &o, &b, &err), -1);
    CHECK_INT(err.code, EIO);
    CHECK(strstr(err.msg, "Step 3/3 : RUN [\"false\"]") != NULL);
    CHECK(strstr(err.msg, "returned a non-zero code: 1") != NULL);
    fprintf(stderr, "  (error: %s)\n", err.msg);
    CHECK(b.id[0] == '\0');
    CHECK(b.log && strstr(b.log, "Step 2/3 : RUN [\"true\"]")); /* the log is kept on failure */
    memset(&err, 0, sizeof(err));
    if (d)
        CHECK_INT(ocra_image_docker_inspect(d, "ocra-test/it-docker-fail:1", &img, &err), -1);
    CHECK_INT(err.code, ENOENT);
    ocra_image_docker_build_fini(&b);
    ocra_image_docker_free(d);
    free(df);
}

static void
test_malformed_dockerfile_is_refused(void)
{
    char *df = ocra_xasprintf("FROM %s\nFROBNICATE x\n", getenv("OCRA_BASE_IMAGE"));
    struct ocra_image_docker_build_opts o = {.dockerfile = df, .network = "none"};
    struct ocra_image_docker_build b = {0};
    struct ocra_image_docker *d = engine();
    struct ocra_err err = {0};

    CHECK(d != NULL);
    if (d)
        CHECK_INT(ocra_image_docker_build(d, &o, &b, &err), -1);
    CHECK_INT(err.code, EINVAL); /* the engine answers 400 before any stream */
    CHECK(strstr(err.msg, "unknown instruction: FROBNICATE") != NULL);
    fprintf(stderr, "  (error: %s)\n", err.msg);
    ocra_image_docker_build_fini(&b);
    ocra_image_docker_free(d);
    free(df);
}

static void
test_build_log_is_bounded_to_its_tail(void)
{
    char *df = ocra_xasprintf("FROM %s\nRUN [\"sh\", \"-c\", \"i=0; while [ $i -lt 3000 ]; do "
                              "echo line-$i-abcdefghijklmnopqrstuvwxyz; i=$((i+1)); done\"]\n",
                              getenv("OCRA_BASE_IMAGE"));
    struct ocra_image_docker_build_opts o = {
        .dockerfile = df, .network = "none", .log_max = 4096, .nocache = true};
    struct ocra_image_docker_build b = {0};
    struct ocra_image_docker *d = engine();
    struct ocra_err err = {0};

    CHECK(d != NULL);
    if (d)
        CHECK_INT(ocra_image_docker_build(d, &o, &b, &err), 0);
    CHECK(b.log_truncated && b.log_len <= 4096 && strlen(b.log) == b.log_len);
    CHECK(b.log && strstr(b.log, "line-2999-") && !strstr(b.log, "line-1-abc"));
    CHECK(b.log && strstr(b.log, "Successfully built "));
    CHECK(b.log && strncmp(b.log, "line-", 5) == 0); /* starts at a whole line */
    if (d && b.id[0])
        ocra_image_docker_remove(d, b.id, false, NULL);
    ocra_image_docker_build_fini(&b);
    ocra_image_docker_free(d);
    free(df);
}

static void
test_bad_arguments_refused_before_any_request(void)
{
    struct ocra_image_docker_build_opts bridge = {.dockerfile = "FROM scratch\n",
                                                  .network = "bridge"};
    struct ocra_image_docker_build_opts badtag = {.dockerfile = "FROM scratch\n",
                                                  .tag = "Bad Tag;rm"};
    struct ocra_image_docker_build b = {0};
    struct ocra_image_docker *d = engine();
    struct ocra_err err = {0};
    char digest[OCRA_IMAGE_DIGEST_MAX];

    if (!d)
        OCRA_TEST_SKIP("no engine");
    CHECK_INT(ocra_image_docker_build(d, &bridge, &b, &err), -1);
    CHECK_INT(err.code, EINVAL);
    ocra_image_docker_build_fini(&b);
    CHECK_INT(ocra_image_docker_build(d, &badtag, &b, &err), -1);
    CHECK_INT(err.code, EINVAL);
    ocra_image_docker_build_fini(&b);
    CHECK_INT(ocra_image_docker_inspect(d, "../../containers/json", NULL, &err), -1);
    CHECK_INT(err.code, EINVAL);
    CHECK_INT(ocra_image_docker_push(d, "demo/model:1", "1", NULL, digest, &err), -1);
    CHECK_INT(err.code, EINVAL);
    CHECK_INT(ocra_image_docker_tag(d, plan_id[0] ? plan_id : PLAN_TAG, "demo/model", &err), -1);
    CHECK_INT(err.code, EINVAL);
    CHECK(ocra_image_docker_ref_valid("127.0.0.1:5000/demo/model:1"));
    CHECK(ocra_image_docker_ref_valid(
        "demo/model@sha256:"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
    CHECK(!ocra_image_docker_ref_valid("demo/model?x=1"));
    ocra_image_docker_free(d);
}

/* The registry's own answer: HEAD /v2/demo/model/manifests/1 with the Docker manifest Accept. */
static void
registry_digest(const char *port, const char *user, const char *pass,
                char out[OCRA_IMAGE_DIGEST_MAX])
{
    char *url = ocra_xasprintf("http://127.0.0.1:%s", port);
    struct ocra_image_registry_opts o = {.url = url,
                                         .username = user,
                                         .password = pass,
                                         .docker_config = "/nonexistent/config.json"};
    struct ocra_err err = {0};
    struct ocra_image_registry *r = ocra_image_registry_new(&o, &err);

    out[0] = '\0';
    if (!r || ocra_image_manifest_head(r, "demo/model", "1", out, &err) != 1)
        fprintf(stderr, "  registry: %s\n", err.msg);
    ocra_image_registry_free(r);
    free(url);
}

static bool
json_array_has(const json_t *a, const char *s)
{
    return env_has(a, s);
}

static void
test_tag_push_to_registry_and_confirm_digest(void)
{
    const char *port = getenv("OCRA_REG_PORT");
    char *name = ocra_xasprintf("127.0.0.1:%s/demo/model", port ? port : "0");
    char *target = ocra_xasprintf("%s:1", name), *repo_digest = NULL;
    char digest[OCRA_IMAGE_DIGEST_MAX] = "", confirmed[OCRA_IMAGE_DIGEST_MAX];
    struct ocra_image_docker_image img = {0};
    struct ocra_image_docker *d = engine();
    struct ocra_err err = {0};

    if (!d || !port || !plan_id[0])
        OCRA_TEST_SKIP("no engine, registry or plan image");
    CHECK_INT(ocra_image_docker_tag(d, PLAN_TAG, target, &err), 0);
    if (ocra_image_docker_push(d, name, "1", NULL, digest, &err) < 0)
        fprintf(stderr, "  %s\n", err.msg);
    CHECK(ocra_image_digest_valid(digest));
    registry_digest(port, NULL, NULL, confirmed);
    CHECK_STR(confirmed, digest);
    CHECK_INT(ocra_image_docker_inspect(d, target, &img, &err), 0);
    CHECK_STR(img.id, plan_id);
    repo_digest = ocra_xasprintf("%s@%s", name, digest);
    CHECK(json_array_has(img.repo_digests, repo_digest));
    CHECK_INT(ocra_image_docker_remove(d, target, false, &err), 0);
    memset(&err, 0, sizeof(err));
    CHECK_INT(ocra_image_docker_inspect(d, target, NULL, &err), -1);
    CHECK_INT(err.code, ENOENT);
    ocra_image_docker_image_fini(&img);
    ocra_image_docker_free(d);
    free(repo_digest);
    free(target);
    free(name);
}

static void
test_push_with_credentials_through_registry_auth(void)
{
    const char *port = getenv("OCRA_REG_BASIC_PORT");
    char *name = ocra_xasprintf("127.0.0.1:%s/demo/model", port ? port : "0");
    char *target = ocra_xasprintf("%s:1", name);
    char digest[OCRA_IMAGE_DIGEST_MAX] = "", confirmed[OCRA_IMAGE_DIGEST_MAX];
    struct ocra_image_docker_auth good = {.username = "ocra", .password = "s3cret-pw"};
    struct ocra_image_docker_auth bad = {.username = "ocra", .password = "wrong-pw"};
    struct ocra_image_docker *d = engine();
    struct ocra_err err = {0};

    if (!d || !port || !plan_id[0])
        OCRA_TEST_SKIP("no engine, basic-auth registry or plan image");
    CHECK_INT(ocra_image_docker_tag(d, plan_id, target, &err), 0);
    CHECK_INT(ocra_image_docker_push(d, name, "1", NULL, digest, &err), -1);
    CHECK(err.code != 0 && strstr(err.msg, "s3cret") == NULL);
    fprintf(stderr, "  (anonymous: %s)\n", err.msg);
    memset(&err, 0, sizeof(err));
    CHECK_INT(ocra_image_docker_push(d, name, "1", &bad, digest, &err), -1);
    CHECK(err.code != 0 && strstr(err.msg, "wrong-pw") == NULL);
    memset(&err, 0, sizeof(err));
    if (ocra_image_docker_push(d, name, "1", &good, digest, &err) < 0)
        fprintf(stderr, "  %s\n", err.msg);
    CHECK(ocra_image_digest_valid(digest));
    registry_digest(port, "ocra", "s3cret-pw", confirmed);
    CHECK_STR(confirmed, digest);
    CHECK_INT(ocra_image_docker_remove(d, target, false, &err), 0);
    ocra_image_docker_free(d);
    free(target);
    free(name);
}

static void
test_push_to_unreachable_registry_fails(void)
{
    char digest[OCRA_IMAGE_DIGEST_MAX];
    struct ocra_image_docker *d = engine();
    struct ocra_err err = {0};

    if (!d || !plan_id[0])
        OCRA_TEST_SKIP("no engine or plan image");
    /* port 9 on loopback: nothing listens (discard is not served here) */
    CHECK_INT(ocra_image_docker_tag(d, plan_id, "127.0.0.1:9/demo/model:1", &err), 0);
    CHECK_INT(ocra_image_docker_push(d, "127.0.0.1:9/demo/model", "1", NULL, digest, &err), -1);
    CHECK_INT(err.code, EIO);
    CHECK(strstr(err.msg, "127.0.0.1:9") != NULL);
    fprintf(stderr, "  (error: %s)\n", err.msg);
    CHECK_INT(ocra_image_docker_remove(d, "127.0.0.1:9/demo/model:1", false, NULL), 0);
    ocra_image_docker_free(d);
}

static void
test_remove_plan_image(void)
{
    struct ocra_image_docker *d = engine();
    struct ocra_err err = {0};

    if (!d || !plan_id[0])
        OCRA_TEST_SKIP("no engine or plan image");
    CHECK_INT(ocra_image_docker_remove(d, PLAN_TAG, false, &err), 0);
    CHECK_INT(ocra_image_docker_inspect(d, plan_id, NULL, &err), -1);
    CHECK_INT(err.code, ENOENT);
    memset(&err, 0, sizeof(err));
    CHECK_INT(ocra_image_docker_remove(d, PLAN_TAG, false, &err), -1);
    CHECK_INT(err.code, ENOENT);
    ocra_image_docker_free(d);
}

OCRA_TEST_MAIN(OCRA_TEST(test_version_negotiated_over_docker_host),
               OCRA_TEST(test_unusable_engine_addresses_fail),
               OCRA_TEST(test_context_sorted_and_deterministic),
               OCRA_TEST(test_build_plan_dockerfile_and_inspect_labels),
               OCRA_TEST(test_build_with_context_files_and_buildargs),
               OCRA_TEST(test_failing_step_is_named),
               OCRA_TEST(test_malformed_dockerfile_is_refused),
               OCRA_TEST(test_build_log_is_bounded_to_its_tail),
               OCRA_TEST(test_bad_arguments_refused_before_any_request),
               OCRA_TEST(test_tag_push_to_registry_and_confirm_digest),
               OCRA_TEST(test_push_with_credentials_through_registry_auth),
               OCRA_TEST(test_push_to_unreachable_registry_fails),
               OCRA_TEST(test_remove_plan_image))
