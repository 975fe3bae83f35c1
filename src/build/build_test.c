/* SPDX-License-Identifier: Apache-2.0 */
/*
 * build_test.c: the parts of the build that need no service: provenance annotations, the
 * model file name, which artifact URIs may be fetched, the local event, the artifact cache
 * (a hit without any network, a refused URI before any request), option checks, and the
 * image records of the journal (idempotent put, lookups, the events foreign key).
 */
#include "build/build.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ocra_test.h"

static const char spec_text[] =
    "{\"name\":\"bm\",\"modelVersion\":\"1.2.0\",\"toolsAndLibraries\":{\"PyTorch\":\"2.1.0\"},"
    "\"artifact\":{\"uri\":\"https://models.example/x/w.safetensors\",\"sha256\":"
    "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"size\":5}}";

static struct ocra_spec *
spec_new(const char *text)
{
    struct ocra_spec *s = NULL;
    struct ocra_err err = {0};

    if (ocra_spec_parse(text, strlen(text), NULL, &s, NULL, &err) < 0)
        fprintf(stderr, "  spec: %s\n", err.msg);
    return s;
}

static void
test_annotations_carry_the_event(void)
{
    struct ocra_spec *s = spec_new(spec_text);
    char id[] = "evm:31337:0xab:3", chain[] = "evm", tx[] = "0xcd", signer[] = "0x01",
         ref[] = "0xc0";
    struct ocra_spec_event ev = {.event_id = id,
                                 .chain = chain,
                                 .chain_id = 31337,
                                 .block_number = 42,
                                 .tx_hash = tx,
                                 .signer = signer,
                                 .ref = ref,
                                 .timestamp = 1700000000000};
    char hash[65];
    json_t *a;

    CHECK(s != NULL);
    if (!s)
        return;
    a = ocra_build_annotations_make(s, &ev, "ff", "bm-toolchain:ff", "sha256:00");
    ocra_spec_hash(s, hash);
    CHECK_STR(ocra_json_str(a, "io.ocra.event-id"), "evm:31337:0xab:3");
    CHECK_STR(ocra_json_str(a, "io.ocra.chain"), "evm:31337");
    CHECK_STR(ocra_json_str(a, "io.ocra.block"), "42");
    CHECK_STR(ocra_json_str(a, "io.ocra.tx"), "0xcd");
    CHECK_STR(ocra_json_str(a, "io.ocra.signer"), "0x01");
    CHECK_STR(ocra_json_str(a, "io.ocra.spec-hash"), hash);
    CHECK_STR(ocra_json_str(a, "io.ocra.toolchain-hash"), "ff");
    CHECK_STR(ocra_json_str(a, "org.opencontainers.image.version"), "1.2.0");
    CHECK_STR(ocra_json_str(a, "org.opencontainers.image.revision"), "0xcd");
    CHECK_STR(ocra_json_str(a, "org.opencontainers.image.source"), "evm:31337/0xc0");
    CHECK_STR(ocra_json_str(a, "org.opencontainers.image.base.name"), "bm-toolchain:ff");
    CHECK_STR(ocra_json_str(a, "org.opencontainers.image.base.digest"), "sha256:00");
    CHECK_STR(ocra_json_str(a, "org.opencontainers.image.created"), "2023-11-14T22:13:20.000Z");
    json_decref(a);
    /* unknown members are left out, not written empty */
    ev.tx_hash = NULL;
    ev.signer = NULL;
    a = ocra_build_annotations_make(s, &ev, "ff", "n", "d");
    CHECK(json_object_get(a, "io.ocra.tx") == NULL);
    CHECK(json_object_get(a, "io.ocra.signer") == NULL);
    CHECK_STR(ocra_json_str(a, "org.opencontainers.image.revision"), "evm:31337:0xab:3");
    json_decref(a);
    ocra_spec_free(s);
}

static void
test_model_file_name(void)
{
    static const struct {
        const char *uri, *want;
    } cases[] = {
        {"https://h/m/w.safetensors", "w.safetensors"},
        {"https://h/m/w.bin?sig=1#x", "w.bin"},
        {"https://h/m/", "model.bin"},
        {"https://h/m/.hidden", "model.bin"},
        {"https://h/m/a%2Fb", "model.bin"},
        {"https://h/m/sp ace", "model.bin"},
        {"x", "model.bin"},
    };
    char out[256];

    for (size_t i = 0; i < OCRA_ARRAY_LEN(cases); i++) {
        ocra_build_model_file_name(cases[i].uri, out);
        CHECK_STR(out, cases[i].want);
    }
}

static void
test_uri_allowed(void)
{
    static const char *const hosts[] = {"mirror.local", "127.0.0.1:8000"};
    struct ocra_err err = {0};

    CHECK_INT(ocra_build_uri_allowed("https://any.example/x", NULL, 0, &err), 0);
    CHECK_INT(ocra_build_uri_allowed("http://mirror.local/x", hosts, 2, &err), 0);
    CHECK_INT(ocra_build_uri_allowed("http://mirror.local:81/x", hosts, 2, &err), 0);
    CHECK_INT(ocra_build_uri_allowed("http://127.0.0.1:8000/x", hosts, 2, &err), 0);
    CHECK_INT(ocra_build_uri_allowed("http://127.0.0.1:8001/x", hosts, 2, &err), -1);
    CHECK_INT(err.code, EACCES);
    CHECK(strstr(err.msg, "spec.http_hosts") != NULL);
    CHECK_INT(ocra_build_uri_allowed("http://mirror.local.evil/x", hosts, 2, &err), -1);
    CHECK_INT(ocra_build_uri_allowed("ftp://mirror.local/x", hosts, 2, &err), -1);
    CHECK_INT(ocra_build_uri_allowed("file:///etc/passwd", hosts, 2, &err), -1);
    /* read as libcurl reads it: the host it would connect to */
    CHECK_INT(ocra_build_uri_allowed("http://127.1:8000/x", hosts, 2, &err), 0);
    CHECK_INT(ocra_build_uri_allowed("http://MIRROR.local/x", hosts, 2, &err), 0);
    CHECK_INT(ocra_build_uri_allowed("http://mirror.local@evil.example/x", hosts, 2, &err), -1);
    CHECK_INT(ocra_build_uri_allowed("not a url", hosts, 2, &err), -1);
}

static void
test_local_event_is_stable(void)
{
    struct ocra_spec *s = spec_new(spec_text);
    struct ocra_spec_event *a, *b;
    char hash[65];

    if (!s)
        return;
    unsetenv("SOURCE_DATE_EPOCH");
    a = ocra_build_local_event(s, NULL);
    ocra_spec_hash(s, hash);
    CHECK(strncmp(a->event_id, "local:", 6) == 0 && strncmp(a->event_id + 6, hash, 16) == 0);
    CHECK_INT(strlen(a->event_id), 22);
    CHECK_STR(a->chain, "local");
    CHECK_INT(a->timestamp, 0);
    setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
    b = ocra_build_local_event(s, "evm:1:0xab:0");
    CHECK_STR(b->event_id, "evm:1:0xab:0");
    CHECK_INT(b->timestamp, 1700000000000);
    unsetenv("SOURCE_DATE_EPOCH");
    ocra_spec_event_free(a);
    ocra_spec_event_free(b);
    ocra_spec_free(s);
}

/* A build whose registry is a closed port: what it does offline. */
static struct ocra_build *
offline_build_max(const struct ocra_spec *s, struct ocra_plan **plan, struct ocra_plan_data **data,
                  struct ocra_spec_event *ev, const char *cache, uint64_t max_size,
                  struct ocra_err *err)
{
    struct ocra_build_opts o = {.registry_url = "http://127.0.0.1:1",
                                .repo = "t/bm",
                                .cache_dir = cache,
                                .agent = "/bin/sh",
                                .artifact_max_size = max_size};
    struct ocra_plan_options po = {.event = ev};

    if (ocra_plan_data_load(NULL, data, err) < 0 ||
        ocra_plan_new(*data, s, &po, plan, NULL, err) < 0)
        return NULL;
    return ocra_build_new(&o, s, *plan, ev, err);
}

static struct ocra_build *
offline_build(const struct ocra_spec *s, struct ocra_plan **plan, struct ocra_plan_data **data,
              struct ocra_spec_event *ev, const char *cache, struct ocra_err *err)
{
    return offline_build_max(s, plan, data, ev, cache, 0, err);
}

static void
test_fetch_cache_hit_and_refusal(void)
{
    char dir[] = "/tmp/ocra-build-test.XXXXXX", *sub = NULL, *file = NULL;
    struct ocra_spec *s = spec_new(spec_text), *s2 = NULL;
    struct ocra_spec_event *ev = NULL;
    struct ocra_plan_data *data = NULL;
    struct ocra_plan *plan = NULL;
    struct ocra_build *b = NULL;
    struct ocra_err err = {0};
    char *t2, *stale = NULL, *other = NULL, *lock = NULL;

    if (!s || !mkdtemp(dir))
        goto out;
    ev = ocra_build_local_event(s, NULL);
    sub = ocra_xasprintf("%s/sha256", dir);
    file = ocra_xasprintf("%s/%s", sub, s->artifact.sha256);
    CHECK_INT(mkdir(sub, 0755), 0);
    CHECK_INT(ocra_file_write_atomic(file, "12345", 5, 0644, &err), 0);
    b = offline_build(s, &plan, &data, ev, dir, &err);
    CHECK(b != NULL);
    if (!b) {
        fprintf(stderr, "  %s\n", err.msg);
        goto out;
    }
    /* a verified file under its digest is reused: no request to models.example */
    CHECK_INT(ocra_build_fetch(b, &err), 0);
    CHECK_STR(ocra_build_artifact_path(b), file);
    ocra_build_free(b);
    ocra_plan_free(plan);
    plan = NULL;
    ocra_plan_data_free(data);
    data = NULL;
    /* a plain-http URI not in the allowed hosts is refused before any request */
    t2 = ocra_xstrdup(spec_text);
    memcpy(strstr(t2, "https://models"), "http://mmodels", 14);
    s2 = spec_new(t2);
    free(t2);
    CHECK(s2 == NULL); /* the spec parser already refuses it without a policy */
    unlink(file);
    b = offline_build(s, &plan, &data, ev, dir, &err);
    /* a size mismatch in the cache is not a hit: it goes to the network (closed here); the
     * temporaries earlier fetches left (no fetch holds their digest's lock) are removed first */
    CHECK_INT(ocra_file_write_atomic(file, "1234", 4, 0644, &err), 0);
    stale = ocra_xasprintf("%s/.tmp.%s.4242", sub, s->artifact.sha256);
    other = ocra_xasprintf("%s/.tmp.%.63sb.4242", sub, s->artifact.sha256);
    CHECK_INT(ocra_file_write_atomic(stale, "x", 1, 0644, &err), 0);
    CHECK_INT(ocra_file_write_atomic(other, "x", 1, 0644, &err), 0);
    CHECK_INT(ocra_build_fetch(b, &err), -1);
    CHECK(err.code != 0);
    CHECK(strncmp(err.msg, "fetch", 5) == 0);
    CHECK(ocra_build_rejection(b) == NULL); /* a network failure is no verdict on the artifact */
    CHECK(access(stale, F_OK) < 0);
    CHECK(access(other, F_OK) < 0);   /* another digest's, whose lock nobody holds, too */
    CHECK_INT(access(file, F_OK), 0); /* the old entry untouched, the lock file gone */
    lock = ocra_xasprintf("%s/.lock.%s", sub, s->artifact.sha256);
    CHECK(access(lock, F_OK) < 0);
    ocra_build_free(b);
    ocra_plan_free(plan);
    plan = NULL;
    ocra_plan_data_free(data);
    data = NULL;
    /* a declared size over the operator's maximum is rejected before any request, and the
     * verdict says so in fixed words */
    b = offline_build_max(s, &plan, &data, ev, dir, 4, &err);
    CHECK_INT(ocra_build_fetch(b, &err), -1);
    CHECK_INT(err.code, EFBIG);
    CHECK(strstr(err.msg, "artifact.max_size_mib") != NULL);
    CHECK(ocra_build_rejection(b) && strstr(ocra_build_rejection(b), "maximum"));
out:
    ocra_build_free(b);
    ocra_plan_free(plan);
    ocra_plan_data_free(data);
    ocra_spec_event_free(ev);
    ocra_spec_free(s);
    ocra_spec_free(s2);
    if (file)
        unlink(file);
    if (sub)
        rmdir(sub);
    rmdir(dir);
    free(sub);
    free(file);
    free(stale);
    free(other);
    free(lock);
}

static void
test_options_checked(void)
{
    struct ocra_spec *s = spec_new(spec_text);
    struct ocra_spec_event *ev = s ? ocra_build_local_event(s, NULL) : NULL;
    struct ocra_plan_data *data = NULL;
    struct ocra_plan *plan = NULL;
    struct ocra_plan_options po = {.event = ev};
    struct ocra_build_opts o = {.registry_url = "http://127.0.0.1:1",
                                .repo = "t/bm",
                                .cache_dir = "/tmp",
                                .agent = "/bin/sh"};
    struct ocra_err err = {0};

    if (!s || ocra_plan_data_load(NULL, &data, &err) < 0 ||
        ocra_plan_new(data, s, &po, &plan, NULL, &err) < 0) {
        CHECK(0);
        goto out;
    }
    o.repo = "Bad/Repo";
    CHECK(ocra_build_new(&o, s, plan, ev, &err) == NULL && err.code == EINVAL);
    o.repo = "t/bm";
    o.agent = "/nonexistent/ocra-agent";
    CHECK(ocra_build_new(&o, s, plan, ev, &err) == NULL && err.code == ENOENT);
    o.agent = "/tmp";
    CHECK(ocra_build_new(&o, s, plan, ev, &err) == NULL && err.code == EINVAL);
    o.agent = "/bin/sh";
    o.registry_url = "ftp://x";
    CHECK(ocra_build_new(&o, s, plan, ev, &err) == NULL && err.code == EINVAL);
    o.registry_url = "http://127.0.0.1:1";
    o.build_network = "bridge";
    CHECK(ocra_build_new(&o, s, plan, ev, &err) == NULL && err.code == EINVAL);
    o.build_network = NULL;
    o.toolchain_repo = "Bad Repo";
    CHECK(ocra_build_new(&o, s, plan, ev, &err) == NULL && err.code == EINVAL);
    o.toolchain_repo = NULL;
    o.repo = "t/toolchain"; /* a model named "toolchain" would land among the toolchains */
    CHECK(ocra_build_new(&o, s, plan, ev, &err) == NULL && err.code == EINVAL);
    CHECK(strstr(err.msg, "is the toolchain repository") != NULL);
    o.toolchain_repo = "shared/tc";
    o.repo = "shared/tc";
    CHECK(ocra_build_new(&o, s, plan, ev, &err) == NULL && err.code == EINVAL);
out:
    ocra_plan_free(plan);
    ocra_plan_data_free(data);
    ocra_spec_event_free(ev);
    ocra_spec_free(s);
}

static int
count_one(const struct ocra_store_image *im, void *arg)
{
    (void)im;
    (*(int *)arg)++;
    return 0;
}

/* One toolchain repository per registry prefix, whatever the model: <parent>/toolchain, or the
 * configured one; the tag is the toolchain hash. */
static void
test_toolchain_repo_is_shared_by_models(void)
{
    static const struct {
        const char *repo, *configured, *want;
    } cases[] = {
        {"ocra/pipe/model-a", NULL, "127.0.0.1:1/ocra/pipe/toolchain:"},
        {"ocra/pipe/model-b", "", "127.0.0.1:1/ocra/pipe/toolchain:"},
        {"bm", NULL, "127.0.0.1:1/toolchain:"},
        {"team/bm", "shared/toolchains", "127.0.0.1:1/shared/toolchains:"},
    };
    struct ocra_spec *s = spec_new(spec_text);
    struct ocra_spec_event *ev = s ? ocra_build_local_event(s, NULL) : NULL;
    struct ocra_plan_data *data = NULL;
    struct ocra_plan *plan = NULL;
    struct ocra_plan_options po = {.event = ev};
    struct ocra_err err = {0};

    if (!s || ocra_plan_data_load(NULL, &data, &err) < 0 ||
        ocra_plan_new(data, s, &po, &plan, NULL, &err) < 0) {
        CHECK(0);
        goto out;
    }
    for (size_t i = 0; i < OCRA_ARRAY_LEN(cases); i++) {
        struct ocra_build_opts o = {.registry_url = "http://127.0.0.1:1",
                                    .repo = cases[i].repo,
                                    .toolchain_repo = cases[i].configured,
                                    .cache_dir = "/tmp",
                                    .agent = "/bin/sh"};
        struct ocra_build *b = ocra_build_new(&o, s, plan, ev, &err);
        char *want = ocra_xasprintf("%s%s", cases[i].want, ocra_plan_toolchain_hash(plan));

        CHECK(b != NULL);
        if (b)
            CHECK_STR(ocra_build_toolchain_ref(b), want);
        free(want);
        ocra_build_free(b);
    }
out:
    ocra_plan_free(plan);
    ocra_plan_data_free(data);
    ocra_spec_event_free(ev);
    ocra_spec_free(s);
}

static void
test_store_images(void)
{
    char dir[] = "/tmp/ocra-build-store.XXXXXX", *path = NULL;
    const char *d = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    struct ocra_store_event ev = {.id = "evm:1:0xab:0", .chain = "evm:1", .tx_hash = "0xab"};
    struct ocra_store_image im = {.digest = d,
                                  .registry = "127.0.0.1:5000",
                                  .repo = "t/bm",
                                  .tags = "[\"1.0.0\"]",
                                  .event = "local:0123",
                                  .record = "{\"imageId\":\"x\"}",
                                  .build_log = "Step 1/1"};
    struct ocra_store_image *got = NULL;
    struct ocra_store *st = NULL;
    struct ocra_err err = {0};
    int n = 0;

    if (!mkdtemp(dir))
        return;
    path = ocra_xasprintf("%s/j.db", dir);
    CHECK_INT(ocra_store_open(path, &st, &err), 0);
    if (!st)
        goto out;
    /* an event the journal does not have is kept as text, without the foreign key */
    CHECK_INT(ocra_store_image_put(st, &im, &err), 0);
    CHECK_INT(ocra_store_image_put(st, &im, &err), 0);
    CHECK_INT(ocra_store_image_list(st, count_one, &n, &err), 0);
    CHECK_INT(n, 1);
    /* a second put adds the signature, keeps the log, and links a journaled event */
    CHECK_INT(ocra_store_append(st, "evm:1", &ev, 1, NULL, NULL, &err), 0);
    im.event = "evm:1:0xab:0";
    im.signature = "sha256:22";
    im.build_log = NULL;
    CHECK_INT(ocra_store_image_put(st, &im, &err), 0);
    CHECK_INT(ocra_store_image_get(st, d, &got, &err), 0);
    CHECK(got != NULL);
    if (got) {
        CHECK_STR(got->signature, "sha256:22");
        CHECK_STR(got->build_log, "Step 1/1");
        CHECK_STR(got->tags, "[\"1.0.0\"]");
        CHECK_STR(got->registry, "127.0.0.1:5000");
    }
    ocra_store_image_free(got);
    CHECK_INT(ocra_store_image_by_event(st, "evm:1:0xab:0", &got, &err), 0);
    CHECK(got && strcmp(got->digest, d) == 0);
    ocra_store_image_free(got);
    CHECK_INT(ocra_store_image_by_event(st, "local:0123", &got, &err), 0);
    CHECK(got == NULL);
    CHECK_INT(ocra_store_image_get(st, "sha256:00", &got, &err), 0);
    CHECK(got == NULL);
    im.digest = "md5:1";
    CHECK_INT(ocra_store_image_put(st, &im, &err), -1);
    CHECK_INT(err.code, EINVAL);
    im.digest = d;
    im.record = "{not json";
    CHECK_INT(ocra_store_image_put(st, &im, &err), -1);
    CHECK_INT(err.code, EINVAL);
out:
    ocra_store_close(st);
    unlink(path);
    free(path);
    path = ocra_xasprintf("%s/j.db-wal", dir);
    unlink(path);
    free(path);
    path = ocra_xasprintf("%s/j.db-shm", dir);
    unlink(path);
    free(path);
    rmdir(dir);
}

static void
test_log_tail(void)
{
    const char *log = "a\nb\nc\n";

    CHECK(ocra_build_log_tail(NULL, 2) == NULL);
    CHECK(ocra_build_log_tail("", 2) == NULL);
    CHECK_STR(ocra_build_log_tail(log, 1), "\nc\n");
    CHECK(ocra_build_log_tail(log, 20) == log);
}

OCRA_TEST_MAIN(OCRA_TEST(test_log_tail), OCRA_TEST(test_annotations_carry_the_event),
               OCRA_TEST(test_model_file_name), OCRA_TEST(test_uri_allowed),
               OCRA_TEST(test_local_event_is_stable), OCRA_TEST(test_fetch_cache_hit_and_refusal),
               OCRA_TEST(test_options_checked), OCRA_TEST(test_toolchain_repo_is_shared_by_models),
               OCRA_TEST(test_store_images))
