/* SPDX-License-Identifier: Apache-2.0 */
/*
 * plan_test.c: the planner's tests. The golden cases of tests/data/plan/<case>/ (spec.json,
 * optional options.json, expected.txt) are planned and compared byte for byte, and each is
 * planned again twice more, as given and with every object's keys in reverse order, which must
 * give the same bytes. OCRA_REGEN=1 rewrites the expectations (review them before committing).
 * Unit tests cover versions, formatting, mirrors, sizing and strict table loading.
 */
#include "plan/plan_int.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ocra_test.h"

#define CASES OCRA_SOURCE_DIR "/tests/data/plan"
#define DATA OCRA_SOURCE_DIR "/data"
#define OCRA_TEST_HEX64 "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

static struct ocra_plan_data *
data(void)
{
    static struct ocra_plan_data *d;
    struct ocra_err err = {0};

    if (!d && ocra_plan_data_load(DATA, &d, &err) < 0) {
        fprintf(stderr, "  %s\n", err.msg);
        abort();
    }
    return d;
}

/* ---- options.json of a case ------------------------------------------------------------ */

struct case_opts {
    struct ocra_plan_options po;
    struct ocra_plan_mirror mirrors[8];
    const char *extra[8], *allowed[16], *bases[8], *models[4];
    struct ocra_spec_event *ev;
    json_t *j;
};

static void
strs(const json_t *a, const char **out, size_t cap, size_t *n)
{
    size_t i;
    json_t *e;

    json_array_foreach(a, i, e) if (*n < cap) out[(*n)++] = json_string_value(e);
}

static void
case_opts_load(const char *dir, struct case_opts *o)
{
    char *path = ocra_xasprintf("%s/options.json", dir);
    json_t *j = access(path, F_OK) == 0 ? ocra_json_load_file(path, 1 << 16, 0, NULL) : NULL;
    const json_t *m;
    size_t i;
    json_t *e;

    memset(o, 0, sizeof(*o));
    free(path);
    if (!j)
        return;
    o->j = j;
    o->po.pip_index_url = ocra_json_str(j, "pip_index_url");
    o->po.torch_index_url = ocra_json_str(j, "torch_index_url");
    o->po.python = ocra_json_str(j, "python");
    strs(json_object_get(j, "extra_index_urls"), o->extra, 8, &o->po.n_extra_index_urls);
    strs(json_object_get(j, "allowed_tools"), o->allowed, 16, &o->po.n_allowed_tools);
    strs(json_object_get(j, "base_images"), o->bases, 8, &o->po.n_base_images);
    strs(json_object_get(j, "model_registries"), o->models, 4, &o->po.n_model_registries);
    o->po.extra_index_urls = o->extra;
    o->po.allowed_tools = o->allowed;
    o->po.base_images = o->bases;
    o->po.model_registries = o->models;
    m = json_object_get(j, "mirrors");
    json_array_foreach(m, i, e) if (i < 8)
    {
        o->mirrors[i].from = ocra_json_str(e, "from");
        o->mirrors[i].to = ocra_json_str(e, "to");
        o->po.n_mirrors = i + 1;
    }
    o->po.mirrors = o->mirrors;
    o->po.context = (uint32_t)ocra_json_int(j, "context", 0);
    o->po.layers = (uint32_t)ocra_json_int(j, "layers", 0);
    o->po.kv_heads = (uint32_t)ocra_json_int(j, "kv_heads", 0);
    o->po.head_dim = (uint32_t)ocra_json_int(j, "head_dim", 0);
    o->po.batch = (uint32_t)ocra_json_int(j, "batch", 0);
    if (json_object_get(j, "event") &&
        ocra_spec_event_from_json(json_object_get(j, "event"), &o->ev, NULL) == 0)
        o->po.event = o->ev;
}

static void
case_opts_fini(struct case_opts *o)
{
    ocra_spec_event_free(o->ev);
    json_decref(o->j);
}

/* ---- planning one case ----------------------------------------------------------------- */

static void
put_problems(struct ocra_buf *b, const char *what, const struct ocra_spec_problems *p)
{
    ocra_buf_printf(b, "%s (%zu problem%s)\n", what, p->n, p->n == 1 ? "" : "s");
    for (size_t i = 0; i < p->n; i++)
        ocra_buf_printf(b, "%s: %s [%s]\n", p->items[i].field, p->items[i].msg, p->items[i].rule);
}

/* The text `ocra plan` would print for this spec text: the plan, or every problem. */
static char *
plan_text(const char *name, const char *text, size_t len, struct case_opts *o)
{
    struct ocra_spec_policy pol = {.default_name = name};
    struct ocra_spec_problems probs = {0};
    struct ocra_spec *spec = NULL;
    struct ocra_plan *plan = NULL;
    json_t *doc = ocra_json_parse(text, len, 0, NULL);
    struct ocra_buf b;

    ocra_buf_init(&b);
    o->po.gpus_given = doc && ocra_plan_doc_gives_gpus(doc);
    json_decref(doc);
    if (ocra_spec_parse(text, len, &pol, &spec, &probs, NULL) < 0)
        put_problems(&b, "invalid spec", &probs);
    else if (ocra_plan_new(data(), spec, &o->po, &plan, &probs, NULL) < 0)
        put_problems(&b, "cannot plan", &probs);
    else {
        char *t = ocra_plan_to_text(plan);

        ocra_buf_puts(&b, t);
        free(t);
    }
    ocra_plan_free(plan);
    ocra_spec_free(spec);
    ocra_spec_problems_fini(&probs);
    return ocra_buf_take(&b);
}

/* A copy of j with every object's keys in reverse order (arrays keep theirs). */
static json_t *
reversed(json_t *j)
{
    const char *keys[256];
    size_t n = 0, i;
    const char *k;
    json_t *v, *out;

    if (json_is_array(j)) {
        out = json_array();
        json_array_foreach(j, i, v) json_array_append_new(out, reversed(v));
        return out;
    }
    if (!json_is_object(j))
        return json_deep_copy(j);
    json_object_foreach(j, k, v) if (n < 256) keys[n++] = k;
    out = json_object();
    while (n-- > 0)
        json_object_set_new(out, keys[n], reversed(json_object_get(j, keys[n])));
    return out;
}

static void
first_difference(const char *name, const char *got, const char *want)
{
    size_t line = 1, i = 0;

    while (got[i] && got[i] == want[i])
        line += got[i++] == '\n';
    fprintf(stderr,
            "  %s: differs from expected.txt at line %zu (OCRA_REGEN=1 rewrites it;\n"
            "  then review `git diff tests/data/plan`)\n",
            name, line);
}

static void
run_case(const char *name)
{
    char *dir = ocra_xasprintf("%s/%s", CASES, name), *sp = ocra_xasprintf("%s/spec.json", dir);
    char *ex = ocra_xasprintf("%s/expected.txt", dir), *text = NULL, *want = NULL;
    char *got = NULL, *again = NULL, *swapped = NULL, *rtext = NULL;
    struct case_opts o;
    size_t len = 0;
    json_t *doc, *rev;

    case_opts_load(dir, &o);
    CHECK(ocra_file_read(sp, 1 << 20, &text, &len, NULL) == 0);
    if (!text)
        goto out;
    got = plan_text(name, text, len, &o);
    again = plan_text(name, text, len, &o);
    CHECK_STR(again, got);
    doc = ocra_json_parse(text, len, 0, NULL);
    if (doc) {
        rev = reversed(doc);
        rtext = json_dumps(rev, JSON_COMPACT | JSON_PRESERVE_ORDER);
        swapped = plan_text(name, rtext, strlen(rtext), &o);
        if (strcmp(swapped, got) != 0)
            fprintf(stderr, "  %s: keys in reverse order plan differently\n", name);
        CHECK(strcmp(swapped, got) == 0);
        json_decref(rev);
        json_decref(doc);
    }
    if (getenv("OCRA_REGEN") && *getenv("OCRA_REGEN") == '1')
        CHECK(ocra_file_write_atomic(ex, got, strlen(got), 0644, NULL) == 0);
    if (ocra_file_read(ex, 1 << 20, &want, NULL, NULL) < 0) {
        fprintf(stderr, "  %s: no expected.txt (OCRA_REGEN=1 writes it)\n", name);
        CHECK(want != NULL);
    } else if (strcmp(got, want) != 0) {
        first_difference(name, got, want);
        CHECK(strcmp(got, want) == 0);
    }
out:
    case_opts_fini(&o);
    free(dir), free(sp), free(ex), free(text), free(want);
    free(got), free(again), free(swapped), free(rtext);
}

static int
name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
test_golden_cases_plan_as_expected_and_deterministically(void)
{
    DIR *dh = opendir(CASES);
    char *names[256];
    size_t n = 0;
    struct dirent *de;

    CHECK(dh != NULL);
    if (!dh)
        return;
    while ((de = readdir(dh)) && n < 256)
        if (de->d_name[0] != '.')
            names[n++] = ocra_xstrdup(de->d_name);
    closedir(dh);
    qsort(names, n, sizeof(names[0]), name_cmp);
    CHECK(n >= 30);
    for (size_t i = 0; i < n; i++) {
        run_case(names[i]);
        free(names[i]);
    }
}

/* ---- unit tests ------------------------------------------------------------------------ */

static void
test_versions_compare_numerically(void)
{
    struct ocra_plan_ver a, b;
    const char *local = NULL;

    CHECK(ocra_plan_ver_parse("2.1.0+cu121", &a, &local));
    CHECK_STR(local, "cu121");
    CHECK(ocra_plan_ver_parse("2.1", &b, NULL));
    CHECK_INT(ocra_plan_ver_cmp(&a, &b), 0);
    CHECK(ocra_plan_ver_parse("2.10.0", &b, NULL));
    CHECK(ocra_plan_ver_cmp(&a, &b) < 0);
    CHECK(!ocra_plan_ver_parse("2.1.0rc1", &a, NULL));
    CHECK(!ocra_plan_ver_parse("1!2.0", &a, NULL));
    CHECK(!ocra_plan_ver_parse("1.2.3.4.5", &a, NULL));
    CHECK(!ocra_plan_ver_parse("", &a, NULL));
}

static void
test_numbers_format_for_reasons(void)
{
    char s[32];

    ocra_plan_fmt_count(7000000000ull, s, sizeof(s));
    CHECK_STR(s, "7.0e9");
    ocra_plan_fmt_count(110000000ull, s, sizeof(s));
    CHECK_STR(s, "1.1e8");
    ocra_plan_fmt_count(9960000000ull, s, sizeof(s));
    CHECK_STR(s, "1.0e10");
    ocra_plan_fmt_count(7, s, sizeof(s));
    CHECK_STR(s, "7.0e0");
    ocra_plan_fmt_gb(126000000000ull, s, sizeof(s));
    CHECK_STR(s, "126.0 GB");
    ocra_plan_fmt_gb(264000001ull, s, sizeof(s));
    CHECK_STR(s, "0.27 GB");
}

static void
test_mirrors_rewrite_repositories_and_keep_tags(void)
{
    struct ocra_plan_mirror m[] = {{"docker.io/nvidia/cuda", "reg:5000/nv/cuda"},
                                   {"pytorch/*", "reg:5000/pt"},
                                   {"*", "hub.internal"}};
    struct ocra_plan_options o = {.mirrors = m, .n_mirrors = 3};
    char *r;

    r = ocra_plan_mirror_apply(&o, "nvidia/cuda:12.1.1-runtime-ubuntu22.04");
    CHECK_STR(r, "reg:5000/nv/cuda:12.1.1-runtime-ubuntu22.04");
    free(r);
    r = ocra_plan_mirror_apply(&o, "pytorch/pytorch:2.1.0-cuda12.1-cudnn8-runtime");
    CHECK_STR(r, "reg:5000/pt/pytorch:2.1.0-cuda12.1-cudnn8-runtime");
    free(r);
    r = ocra_plan_mirror_apply(&o, "docker.io/library/ubuntu:22.04");
    CHECK_STR(r, "hub.internal/ubuntu:22.04");
    free(r);
    o.n_mirrors = 1;
    r = ocra_plan_mirror_apply(&o,
                               "localhost:5000/x@sha256:" /* digest kept */
                               "0000000000000000000000000000000000000000000000000000000000000000");
    CHECK_STR(r, "localhost:5000/x@sha256:"
                 "0000000000000000000000000000000000000000000000000000000000000000");
    free(r);
}

static struct ocra_spec *
spec_of(const char *text)
{
    struct ocra_spec_policy pol = {.default_name = "m"};
    struct ocra_spec *s = NULL;

    CHECK(ocra_spec_parse(text, strlen(text), &pol, &s, NULL, NULL) == 0);
    return s;
}

static void
test_seven_billion_bf16_training_needs_two_h100(void)
{
    struct ocra_spec *s = spec_of("{\"modelVersion\":\"1\",\"toolsAndLibraries\":{\"PyTorch\":"
                                  "\"2.1.0\"},\"workload\":{\"type\":\"training\",\"params\":"
                                  "7000000000,\"dtype\":\"bf16\"}}");
    struct ocra_plan_options o = {0};
    struct ocra_plan_resources r;
    struct ocra_err err = {0};

    if (!s)
        return;
    CHECK(ocra_plan_size(data(), s, &o, &r, &err) == 0);
    CHECK_INT(r.gpus, 2);
    CHECK_STR(r.gpu_model, "H100");
    CHECK(strstr(r.reason, "7.0e9 params × 18 B") != NULL);
    CHECK(strstr(r.reason, "= 126.0 GB") != NULL);
    o.gpus_given = true; /* the spec's default of 1 GPU, taken as given, does not fit */
    CHECK(ocra_plan_size(data(), s, &o, &r, &err) < 0);
    CHECK_INT(err.code, EINVAL);
    ocra_spec_free(s);
}

static void
test_kv_cache_adds_to_inference(void)
{
    struct ocra_spec *s = spec_of("{\"modelVersion\":\"1\",\"toolsAndLibraries\":{\"PyTorch\":"
                                  "\"2.1.0\"},\"workload\":{\"params\":8000000000,\"dtype\":"
                                  "\"bf16\"}}");
    struct ocra_plan_options o = {.context = 8192, .layers = 32, .kv_heads = 8, .head_dim = 128};
    struct ocra_plan_resources a, b;

    if (!s)
        return;
    CHECK(ocra_plan_size(data(), s, &(struct ocra_plan_options){0}, &a, NULL) == 0);
    CHECK(ocra_plan_size(data(), s, &o, &b, NULL) == 0);
    /* 2 x 32 x 8 x 128 x 8192 x 2 B = 1073741824 B */
    CHECK(b.need_bytes == a.need_bytes + 1073741824ull);
    CHECK(strstr(b.reason, "KV cache") != NULL);
    ocra_spec_free(s);
}

static void
test_plan_json_has_the_image_specification(void)
{
    struct ocra_spec *s = spec_of("{\"modelVersion\":\"1.0+local.1\",\"toolsAndLibraries\":"
                                  "{\"PyTorch\":\"2.1.0\"}}");
    struct ocra_plan_options o = {0};
    struct ocra_plan *p = NULL;
    json_t *j, *im;

    if (!s)
        return;
    CHECK(ocra_plan_new(data(), s, &o, &p, NULL, NULL) == 0);
    if (p) {
        j = ocra_plan_to_json(p);
        im = json_object_get(j, "image");
        CHECK_STR(ocra_json_str(im, "imageId"), "m:1.0-local.1");
        CHECK_STR(ocra_json_str(im, "baseImage"), "nvidia/cuda:12.1.1-runtime-ubuntu22.04");
        CHECK(json_is_null(json_object_get(im, "createdAt")));
        CHECK_STR(ocra_json_str(im, "toolchainHash"), ocra_plan_toolchain_hash(p));
        CHECK_STR(ocra_plan_driver_min(p), "530.30.02");
        json_decref(j);
    }
    ocra_plan_free(p);
    ocra_spec_free(s);
}

/* The toolchain hash covers the toolchain, not the model: a new version or artifact keeps it. */
static void
test_toolchain_hash_ignores_the_model(void)
{
    struct ocra_spec *a = spec_of("{\"modelVersion\":\"1\",\"toolsAndLibraries\":{\"PyTorch\":"
                                  "\"2.1.0\"},\"workload\":{\"port\":80}}");
    struct ocra_spec *b = spec_of("{\"name\":\"other\",\"modelVersion\":\"2\",\"toolsAndLibraries\""
                                  ":{\"PyTorch\":\"2.1.0\"},\"workload\":{\"command\":[\"x\"]}}");
    struct ocra_plan_options o = {0};
    struct ocra_plan *pa = NULL, *pb = NULL;

    if (a && b && ocra_plan_new(data(), a, &o, &pa, NULL, NULL) == 0 &&
        ocra_plan_new(data(), b, &o, &pb, NULL, NULL) == 0)
        CHECK_STR(ocra_plan_toolchain_hash(pa), ocra_plan_toolchain_hash(pb));
    CHECK(pa && pb);
    ocra_plan_free(pa);
    ocra_plan_free(pb);
    ocra_spec_free(a);
    ocra_spec_free(b);
}

static void
test_base_refs_in_docker_normal_form(void)
{
    static const char *const cases[][2] = {
        {"ubuntu:22.04", "docker.io/library/ubuntu"},
        {"docker.io/ubuntu", "docker.io/library/ubuntu"},
        {"index.docker.io/library/ubuntu@sha256:" OCRA_TEST_HEX64, "docker.io/library/ubuntu"},
        {"registry-1.docker.io/nvidia/cuda:12.1.1", "docker.io/nvidia/cuda"},
        {"nvidia/cuda:12.1.1-runtime-ubuntu22.04", "docker.io/nvidia/cuda"},
        {"Reg.Example:5000/a/b:1@sha256:" OCRA_TEST_HEX64, "reg.example:5000/a/b"},
        {"localhost/x", "localhost/x"},
        {"localhost:5000/x:1", "localhost:5000/x"},
        {"registry/ocra/m", "docker.io/registry/ocra/m"}, /* no dot or port: Docker Hub */
        {"127.0.0.1:5000/ocra/m@sha256:" OCRA_TEST_HEX64, "127.0.0.1:5000/ocra/m"},
    };

    for (size_t i = 0; i < OCRA_ARRAY_LEN(cases); i++) {
        char *r = ocra_plan_ref_repo(cases[i][0]);

        CHECK_STR(r, cases[i][1]);
        free(r);
    }
}

/* The base image policy: the allowlist (exact repositories, prefixes, the planner's own by
 * default), ocra's model registries (refused unless named exactly), before and after mirrors. */
#define R "127.0.0.1:5000"
#define BI "plan.base_image"
#define BIM "plan.base_image_model"
#define RI "reg.internal:5000"
static void
test_base_policy_allows_listed_and_refuses_models(void)
{
    static const struct {
        const char *allow[2], *models, *mirror, *ref, *rule;
        bool listed;
    } cases[] = {
        {{NULL}, NULL, NULL, "nvidia/cuda:12.1.1-runtime-ubuntu22.04", "", false},
        {{NULL}, NULL, NULL, "docker.io/library/ubuntu:22.04", "", false},
        {{NULL}, NULL, NULL, "pytorch/pytorch:2.1.0", BI, false},
        {{"docker.io/pytorch/"}, NULL, NULL, "pytorch/pytorch:2.1.0", "", false},
        {{"pytorch/pytorch"}, NULL, NULL, "pytorch/pytorch:2.1.0", "", true},
        {{"pytorch/pytorch"}, NULL, NULL, "pytorch/pytorch-nightly:1", BI, false},
        {{"pytorch/pytorch"}, NULL, NULL, "nvidia/cuda:12.1.1", BI, false},
        {{RI "/"}, NULL, NULL, "REG.internal:5000/mirror/x:1", "", false},
        {{RI "/"}, NULL, NULL, "reg.internal:5001/mirror/x:1", BI, false},
        {{R "/"}, R "/ocra", NULL, R "/ocra/victim:1", BIM, false},
        {{NULL}, "http://" R "/ocra", NULL, R "/ocra/victim@sha256:" OCRA_TEST_HEX64, BIM, false},
        {{R "/"}, R "/ocra/", NULL, R "/ocra/victim:1", BIM, false},
        {{R "/"}, R, NULL, R "/anything/x:1", BIM, false},
        {{R "/"}, R "/ocra", NULL, R "/ocra/toolchain:ab", BIM, false},
        {{R "/ocra/"}, R "/ocra", NULL, R "/ocra/victim:1", BIM, false},
        {{R "/ocra/shared"}, R "/ocra", NULL, R "/ocra/shared:2", "", true},
        {{R "/"}, R "/ocra", NULL, R "/ocra-base/x:1", "", false},
        {{"docker.io/"}, RI "/ocra", RI "/ocra", "victim:1", BIM, false},
        {{"docker.io/"}, RI "/ocra", RI "/mirror", "victim:1", "", false},
    };

    for (size_t i = 0; i < OCRA_ARRAY_LEN(cases); i++) {
        struct ocra_plan_mirror mirror = {"*", cases[i].mirror};
        struct ocra_plan_options o = {0};
        struct ocra_spec_problems probs = {0};
        char *pulled;
        bool listed = !cases[i].listed;

        o.base_images = cases[i].allow;
        o.n_base_images = cases[i].allow[0] ? (cases[i].allow[1] ? 2 : 1) : 0;
        o.model_registries = &cases[i].models;
        o.n_model_registries = cases[i].models ? 1 : 0;
        o.mirrors = &mirror;
        o.n_mirrors = cases[i].mirror ? 1 : 0;
        pulled = ocra_plan_mirror_apply(&o, cases[i].ref);
        ocra_plan_base_check(data(), &o, cases[i].ref, pulled, &listed, &probs);
        if (probs.n > 1 || strcmp(probs.n ? probs.items[0].rule : "", cases[i].rule) != 0)
            fprintf(stderr, "  case %zu (%s): %s\n", i, cases[i].ref,
                    probs.n ? probs.items[0].msg : "no problem");
        CHECK(probs.n <= 1);
        CHECK_STR(probs.n ? probs.items[0].rule : "", cases[i].rule);
        CHECK(!*cases[i].rule || strcmp(probs.items[0].field, "baseImage") == 0);
        CHECK(listed == cases[i].listed);
        ocra_spec_problems_fini(&probs);
        free(pulled);
    }
}

#undef R
#undef BI
#undef BIM
#undef RI

/* The toolchain image is shared by every model of its hash: its Dockerfile holds nothing of
 * one model (no CMD, EXPOSE, model labels), only the toolchain and its hash label. */
static void
test_toolchain_dockerfile_has_nothing_of_the_model(void)
{
    struct ocra_spec *s = spec_of("{\"modelVersion\":\"1\",\"toolsAndLibraries\":{\"PyTorch\":"
                                  "\"2.1.0\"},\"workload\":{\"port\":8080,\"command\":"
                                  "[\"secret-cmd\"]}}");
    char event_id[] = "evm:1:0xab:0";
    struct ocra_spec_event ev = {.event_id = event_id, .timestamp = 1000};
    struct ocra_plan_options o = {.event = &ev};
    struct ocra_plan *p = NULL;
    const char *df;

    if (!s)
        return;
    CHECK(ocra_plan_new(data(), s, &o, &p, NULL, NULL) == 0);
    if (p) {
        char *label = ocra_xasprintf("LABEL \"io.ocra.toolchain-hash\"=\"%s\"\n",
                                     ocra_plan_toolchain_hash(p));

        df = ocra_plan_toolchain_dockerfile(p);
        CHECK(strstr(ocra_plan_dockerfile(p), "secret-cmd") != NULL);
        CHECK(strstr(df, "FROM nvidia/cuda:12.1.1-runtime-ubuntu22.04\n") != NULL);
        CHECK(strstr(df, "secret-cmd") == NULL && strstr(df, "EXPOSE") == NULL);
        CHECK(strstr(df, "io.ocra.event-id") == NULL && strstr(df, "evm:1:0xab:0") == NULL);
        CHECK(strstr(df, "org.opencontainers") == NULL);
        CHECK(strstr(df, label) != NULL);
        free(label);
    }
    ocra_plan_free(p);
    ocra_spec_free(s);
}

/* Copies data/ to a temporary directory with one file replaced by text. */
static char *
data_with(const char *file, const char *text)
{
    static const char *const files[] = {"pytorch.json", "tensorflow.json", "cuda_images.json",
                                        "cuda_drivers.json", "gpus.json"};
    char tmpl[] = "/tmp/ocra-plan-test-XXXXXX", *dir = mkdtemp(tmpl);

    if (!dir)
        abort();
    for (size_t i = 0; i < OCRA_ARRAY_LEN(files); i++) {
        char *src = ocra_xasprintf("%s/%s", DATA, files[i]);
        char *dst = ocra_xasprintf("%s/%s", dir, files[i]), *body = NULL;
        size_t len = 0;

        if (strcmp(files[i], file) == 0)
            CHECK(ocra_file_write_atomic(dst, text, strlen(text), 0644, NULL) == 0);
        else if (ocra_file_read(src, 1 << 20, &body, &len, NULL) == 0)
            CHECK(ocra_file_write_atomic(dst, body, len, 0644, NULL) == 0);
        free(body);
        free(src);
        free(dst);
    }
    return ocra_xstrdup(dir);
}

static void
remove_dir(char *dir)
{
    static const char *const files[] = {"pytorch.json", "tensorflow.json", "cuda_images.json",
                                        "cuda_drivers.json", "gpus.json"};

    for (size_t i = 0; i < OCRA_ARRAY_LEN(files); i++) {
        char *p = ocra_xasprintf("%s/%s", dir, files[i]);

        unlink(p);
        free(p);
    }
    rmdir(dir);
    free(dir);
}

static void
test_broken_tables_name_file_and_entry(void)
{
    static const struct {
        const char *file, *text, *want;
    } cases[] = {
        {"tensorflow.json",
         "{\"table\":\"tensorflow\",\"format\":1,\"sources\":[\"x\"],\"versions\":[{\"version\":"
         "\"2.15.0\",\"cuda\":\"twelve\",\"cudnn\":\"8.9\",\"python\":[\"3.10\"],\"and_cuda\":"
         "true}]}",
         "tensorflow.json: versions[0] (\"2.15.0\").cuda: expected a release version"},
        {"gpus.json", "{\"table\":\"gpus\",\"format\":1,\"versions\":[]}",
         "gpus.json: \"sources\": every table cites its sources"},
        {"tensorflow.json",
         "{\"table\":\"tensorflow\",\"format\":1,\"sources\":[\"x\"],\"versions\":[{\"version\":"
         "\"2.15.0\",\"cuda\":\"12.2\",\"cudnn\":\"8.9\",\"python\":[\"3.10\"],\"and_cuda\":true},"
         "{\"version\":\"2.14.0\",\"cuda\":\"11.8\",\"cudnn\":\"8.7\",\"python\":[\"3.10\"],"
         "\"and_cuda\":false}]}",
         "tensorflow.json: versions[1] (\"2.14.0\"): out of order or duplicate"},
        {"pytorch.json", "{\"table\": \"pytorch\", \"format\": 1, [", "pytorch.json"},
    };

    for (size_t i = 0; i < OCRA_ARRAY_LEN(cases); i++) {
        char *dir = data_with(cases[i].file, cases[i].text);
        struct ocra_plan_data *d = NULL;
        struct ocra_err err = {0};

        CHECK(ocra_plan_data_load(dir, &d, &err) < 0);
        CHECK_INT(err.code, EINVAL);
        if (!strstr(err.msg, cases[i].want))
            fprintf(stderr, "  got: %s\n", err.msg);
        CHECK(strstr(err.msg, cases[i].want) != NULL);
        ocra_plan_data_free(d);
        remove_dir(dir);
    }
}

static void
test_tables_cover_the_issue_range(void)
{
    const struct ocra_plan_data *d = data();

    CHECK_STR(d->torch[0].version, "1.13.0");
    CHECK_STR(d->torch[d->n_torch - 1].version, "2.5.1");
    CHECK_STR(d->tf[0].version, "2.11.0");
    CHECK_STR(d->tf[d->n_tf - 1].version, "2.18.0");
}

OCRA_TEST_MAIN(OCRA_TEST(test_versions_compare_numerically),
               OCRA_TEST(test_numbers_format_for_reasons),
               OCRA_TEST(test_mirrors_rewrite_repositories_and_keep_tags),
               OCRA_TEST(test_seven_billion_bf16_training_needs_two_h100),
               OCRA_TEST(test_kv_cache_adds_to_inference),
               OCRA_TEST(test_plan_json_has_the_image_specification),
               OCRA_TEST(test_toolchain_hash_ignores_the_model),
               OCRA_TEST(test_base_refs_in_docker_normal_form),
               OCRA_TEST(test_base_policy_allows_listed_and_refuses_models),
               OCRA_TEST(test_toolchain_dockerfile_has_nothing_of_the_model),
               OCRA_TEST(test_broken_tables_name_file_and_entry),
               OCRA_TEST(test_tables_cover_the_issue_range),
               OCRA_TEST(test_golden_cases_plan_as_expected_and_deterministically))
