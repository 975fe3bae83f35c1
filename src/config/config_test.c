/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_test.c: unit tests of src/config: defaults, valid files, every kind of problem with
 * its exact "file:line: key: problem" text, relative paths, and that etc/ocra.yaml and
 * docs/CONFIG.md equal what the key table generates (OCRA_REGEN=1 rewrites them).
 */
#include "config/config.h"
#include "config/config_int.h"
#include "ocra_test.h"

#include <errno.h>
#include <stdbool.h>
#include <unistd.h>

#define ADDR1 "0x00112233445566778899aabbccddeeff00112233"
#define ADDR2 "0x22fFaAbBcCdDeEfF00112233445566778899AaBb"

/* Loads text as /etc/ocra/ocra.yaml; returns its problems joined by '\n' ("" when valid). */
static char *
problems_of(const char *text)
{
    struct ocra_config_problems probs = {0};
    struct ocra_config cfg;
    struct ocra_err err = {0};
    struct ocra_buf b;
    int rc;

    rc = ocra_config_load_text("ocra.yaml", "/etc/ocra", text, strlen(text), &cfg, &probs, &err);
    ocra_buf_init(&b);
    ocra_buf_puts(&b, "");
    for (size_t i = 0; i < probs.n; i++)
        ocra_buf_printf(&b, "%s%s", i ? "\n" : "", probs.lines[i]);
    CHECK_INT(rc, probs.n ? -1 : 0);
    if (rc < 0)
        CHECK_INT(err.code, EINVAL);
    ocra_config_problems_fini(&probs);
    ocra_config_fini(&cfg);
    return ocra_buf_take(&b);
}

#define CHECK_PROBLEMS(text, want)                                                                 \
    do {                                                                                           \
        char *got_ = problems_of(text);                                                            \
        CHECK_STR(got_, want);                                                                     \
        free(got_);                                                                                \
    } while (0)

static void
test_defaults_come_from_the_table(void)
{
    struct ocra_config cfg;

    ocra_config_init(&cfg);
    CHECK(cfg.path == NULL);
    CHECK_STR(cfg.journal_path, "journal.db");
    CHECK_INT(cfg.log_level, OCRA_LOG_INFO);
    CHECK_INT(cfg.log_format, OCRA_LOG_TEXT);
    CHECK_INT(cfg.n_spec_http_hosts, 0);
    CHECK_INT(cfg.artifact.n_allow_hosts, 0); /* public addresses only */
    CHECK_INT(cfg.artifact.max_size_mib, 131072);
    CHECK_INT(cfg.artifact.min_rate_kib, 64);
    CHECK_INT(cfg.artifact.min_rate_window_s, 60);
    CHECK_INT(cfg.artifact.deadline_s, 7200);
    CHECK_STR(cfg.ain.rpc, "");
    CHECK_STR(cfg.ain.ws, "");
    CHECK_STR(cfg.ain.key_file, "");
    CHECK_INT(cfg.ain.chain_id, 0);
    CHECK_INT(cfg.ain.poll_interval_ms, 2000);
    CHECK_INT(cfg.ain.rate_limit, 10);
    CHECK_INT(cfg.ain.from_block, -1);
    CHECK_INT(cfg.ain.gas_price, 0);
    CHECK_INT(cfg.ain.n_watch, 0);
    CHECK_STR(cfg.api_listen, "127.0.0.1:8380");
    CHECK_INT(cfg.daemon_workers, 2);
    ocra_config_fini(&cfg);
    ocra_config_fini(&cfg); /* fini of a zeroed config is a no-op */
}

static const char full_yaml[] =
    "# every key set\n"
    "journal:\n"
    "  path: /var/lib/ocra/journal.db\n"
    "log:\n"
    "  level: debug\n"
    "  format: json\n"
    "spec:\n"
    "  http_hosts: [mirror.internal, \"127.0.0.1:8099\", \"[::1]:80\"]\n"
    "artifact:\n"
    "  allow_hosts: [mirror.internal, 127.0.0.1, 10.0.0.0/8, \"fd00::/8\"]\n"
    "  max_size_mib: 1024\n"
    "  min_rate_kib: 8\n"
    "  min_rate_window_s: 5\n"
    "  deadline_s: 600\n"
    "ain:\n"
    "  rpc: http://127.0.0.1:8081/json-rpc\n"
    "  ws: wss://node.example/ws\n"
    "  chain_id: 1\n"
    "  poll_interval_ms: 500\n"
    "  rate_limit: 20\n"
    "  from_block: 123456\n"
    "  gas_price: 500\n"
    "  key_file: keys/ain.key\n"
    "  watch:\n"
    "    - path: /apps/my_app/models/$name\n"
    "      allow:\n"
    "        - " ADDR1 "\n"
    "        - \"" ADDR2 "\"\n"
    "    - {path: \"/apps/other/$name\", allow: []}\n"
    "api:\n"
    "  listen: 0.0.0.0:9000\n"
    "daemon:\n"
    "  workers: 8\n";

static void
test_full_file_sets_every_key(void)
{
    struct ocra_config_problems probs = {0};
    struct ocra_config cfg;
    struct ocra_err err = {0};

    CHECK_INT(ocra_config_load_text("ocra.yaml", "/etc/ocra", full_yaml, strlen(full_yaml), &cfg,
                                    &probs, &err),
              0);
    CHECK_INT(probs.n, 0);
    CHECK_STR(cfg.path, "ocra.yaml");
    CHECK_STR(cfg.journal_path, "/var/lib/ocra/journal.db");
    CHECK_INT(cfg.log_level, OCRA_LOG_DEBUG);
    CHECK_INT(cfg.log_format, OCRA_LOG_JSON);
    CHECK_INT(cfg.n_spec_http_hosts, 3);
    if (cfg.n_spec_http_hosts == 3) {
        CHECK_STR(cfg.spec_http_hosts[0], "mirror.internal");
        CHECK_STR(cfg.spec_http_hosts[1], "127.0.0.1:8099");
        CHECK_STR(cfg.spec_http_hosts[2], "[::1]:80");
    }
    CHECK_INT(cfg.artifact.n_allow_hosts, 4);
    if (cfg.artifact.n_allow_hosts == 4)
        CHECK_STR(cfg.artifact.allow_hosts[3], "fd00::/8");
    CHECK_INT(cfg.artifact.max_size_mib, 1024);
    CHECK_INT(cfg.artifact.min_rate_kib, 8);
    CHECK_INT(cfg.artifact.min_rate_window_s, 5);
    CHECK_INT(cfg.artifact.deadline_s, 600);
    CHECK_STR(cfg.ain.rpc, "http://127.0.0.1:8081/json-rpc");
    CHECK_STR(cfg.ain.ws, "wss://node.example/ws");
    CHECK_INT(cfg.ain.chain_id, 1);
    CHECK_INT(cfg.ain.poll_interval_ms, 500);
    CHECK_INT(cfg.ain.rate_limit, 20);
    CHECK_INT(cfg.ain.from_block, 123456);
    CHECK_INT(cfg.ain.gas_price, 500);
    CHECK_STR(cfg.ain.key_file, "/etc/ocra/keys/ain.key");
    CHECK_INT(cfg.ain.n_watch, 2);
    if (cfg.ain.n_watch == 2) {
        CHECK_STR(cfg.ain.watch[0].path, "/apps/my_app/models/$name");
        CHECK_INT(cfg.ain.watch[0].n_allow, 2);
        if (cfg.ain.watch[0].n_allow == 2) {
            CHECK_STR(cfg.ain.watch[0].allow[0], ADDR1);
            CHECK_STR(cfg.ain.watch[0].allow[1], ADDR2);
        }
        CHECK_STR(cfg.ain.watch[1].path, "/apps/other/$name");
        CHECK_INT(cfg.ain.watch[1].n_allow, 0);
    }
    CHECK_STR(cfg.api_listen, "0.0.0.0:9000");
    CHECK_INT(cfg.daemon_workers, 8);
    ocra_config_problems_fini(&probs);
    ocra_config_fini(&cfg);
}

static void
test_nested_and_dotted_keys_are_the_same_key(void)
{
    static const char text[] = "log:\n  level: warn\nlog.format: json\n"
                               "ain: {rate_limit: 5}\n";
    struct ocra_config cfg;

    CHECK_INT(ocra_config_load_text("x.yaml", NULL, text, strlen(text), &cfg, NULL, NULL), 0);
    CHECK_INT(cfg.log_level, OCRA_LOG_WARN);
    CHECK_INT(cfg.log_format, OCRA_LOG_JSON);
    CHECK_INT(cfg.ain.rate_limit, 5);
    ocra_config_fini(&cfg);
    CHECK_PROBLEMS("log.level: warn\nlog:\n  level: debug\n",
                   "ocra.yaml:3: log.level: duplicate key (first on line 1)");
}

static void
test_null_and_empty_keep_defaults(void)
{
    static const char text[] = "log:\n  level:\n  format: ~\nain: null\nspec:\n";
    struct ocra_config cfg;

    CHECK_INT(ocra_config_load_text("x.yaml", NULL, text, strlen(text), &cfg, NULL, NULL), 0);
    CHECK_INT(cfg.log_level, OCRA_LOG_INFO);
    CHECK_INT(cfg.log_format, OCRA_LOG_TEXT);
    ocra_config_fini(&cfg);
    CHECK_PROBLEMS("", "");
    CHECK_PROBLEMS("# only a comment\n", "");
    CHECK_PROBLEMS("---\n...\n", "");
}

/* One case per kind of problem, each with its exact text. */
static const struct {
    const char *text, *want;
} problem_cases[] = {
    {"log:\n  format: text\n  levl: debug\n",
     "ocra.yaml:3: log.levl: unknown key (did you mean log.level?)"},
    {"journl:\n  path: x\n", "ocra.yaml:1: journl: unknown key (did you mean journal?)"},
    {"colour: red\n", "ocra.yaml:1: colour: unknown key"},
    {"daemon:\n  workers: abc\n",
     "ocra.yaml:2: daemon.workers: want an integer in [1, 64], got \"abc\""},
    {"daemon:\n  workers: \"8\"\n",
     "ocra.yaml:2: daemon.workers: want an integer in [1, 64], got the quoted string \"8\""},
    {"daemon:\n  workers: [1]\n",
     "ocra.yaml:2: daemon.workers: want an integer in [1, 64], got a list"},
    {"ain:\n  poll_interval_ms: 50\n",
     "ocra.yaml:2: ain.poll_interval_ms: want an integer in [100, 600000], got \"50\""},
    {"ain:\n  from_block: -2\n", "ocra.yaml:2: ain.from_block: want an integer >= -1, got \"-2\""},
    {"ain:\n  chain_id: 99999999999999999999\n",
     "ocra.yaml:2: ain.chain_id: want an integer >= 0, got \"99999999999999999999\""},
    {"log:\n  level: loud\n",
     "ocra.yaml:2: log.level: want one of error, warn, info, debug, got \"loud\""},
    {"log:\n  level: info\n  level: debug\n",
     "ocra.yaml:3: log.level: duplicate key (first on line 2)"},
    {"log: &l\n  level: info\n", "ocra.yaml:1: log: anchors are not supported"},
    {"log:\n  level: *lvl\n", "ocra.yaml:2: log.level: aliases are not supported"},
    {"log:\n  level: !!str info\n", "ocra.yaml:2: log.level: tags are not supported"},
    {"log:\n  level: info\n---\nlog:\n  level: debug\n",
     "ocra.yaml:3: only one YAML document is allowed"},
    {"- a\n- b\n", "ocra.yaml:1: want a mapping at the top level, got a list"},
    {"just words\n", "ocra.yaml:1: want a mapping at the top level, got a scalar"},
    {"log: debug\n", "ocra.yaml:1: log: want a mapping, got a scalar"},
    {"? [a]\n: b\n", "ocra.yaml:1: mapping keys must be scalars"},
    {"ain:\n  watch:\n    - allow: [\"" ADDR1 "\"]\n",
     "ocra.yaml:3: ain.watch[0].path: required key is missing"},
    {"ain:\n  watch:\n    - path: /a/$name\n      allow:\n        - 0x12\n",
     "ocra.yaml:5: ain.watch[0].allow[0]: want an address (0x and 40 hex digits), got \"0x12\""},
    {"ain:\n  watch:\n    - path: apps/x\n",
     "ocra.yaml:3: ain.watch[0].path: want an AIN path starting with /, got \"apps/x\""},
    {"ain:\n  watch:\n    - path: /a\n      alow: []\n",
     "ocra.yaml:4: ain.watch[0].alow: unknown key (did you mean allow?)"},
    {"ain:\n  watch:\n    - /a\n", "ocra.yaml:3: ain.watch[0]: want a mapping, got \"/a\""},
    {"ain:\n  watch:\n    - path:\n", "ocra.yaml:3: ain.watch[0].path: required key is empty"},
    {"ain:\n  watch: {path: /a}\n",
     "ocra.yaml:2: ain.watch: want a list of mappings, got a mapping"},
    {"ain:\n  rpc: ftp://node\n",
     "ocra.yaml:2: ain.rpc: want an http:// or https:// URL, got \"ftp://node\""},
    {"ain:\n  ws: http://node\n",
     "ocra.yaml:2: ain.ws: want a ws:// or wss:// URL, got \"http://node\""},
    {"spec:\n  http_hosts: mirror\n",
     "ocra.yaml:2: spec.http_hosts: want a list of strings, got \"mirror\""},
    {"spec:\n  http_hosts:\n    - ok.host\n    - \"bad host\"\n    - h:0\n",
     "ocra.yaml:4: spec.http_hosts[1]: want a host or host:port, got \"bad host\"\n"
     "ocra.yaml:5: spec.http_hosts[2]: want a host or host:port, got \"h:0\""},
    {"artifact:\n  allow_hosts:\n    - 10.0.0.0/8\n    - 10.0.0.0/33\n    - \"h:80\"\n",
     "ocra.yaml:4: artifact.allow_hosts[1]: want a host name, an IP address or a CIDR, got "
     "\"10.0.0.0/33\"\n"
     "ocra.yaml:5: artifact.allow_hosts[2]: want a host name, an IP address or a CIDR, got "
     "\"h:80\""},
    {"artifact:\n  deadline_s: 0\n",
     "ocra.yaml:2: artifact.deadline_s: want an integer in [1, 604800], got \"0\""},
    {"plan:\n  base_images:\n    - nvidia/cuda\n    - \"registry.internal:5000/\"\n"
     "    - \"ubuntu:22.04\"\n    - \"registry.internal:5000\"\n    - \"a/b@sha256:00\"\n",
     "ocra.yaml:5: plan.base_images[2]: want a repository, or a registry or prefix ending in / (no "
     "tag), got \"ubuntu:22.04\"\n"
     "ocra.yaml:6: plan.base_images[3]: want a repository, or a registry or prefix ending in / (no "
     "tag), got \"registry.internal:5000\"\n"
     "ocra.yaml:7: plan.base_images[4]: want a repository, or a registry or prefix ending in / (no "
     "tag), got \"a/b@sha256:00\""},
    {"build:\n  toolchain_repo: \"reg:5000/tc\"\n",
     "ocra.yaml:2: build.toolchain_repo: want a repository path such as ocra/toolchain, got "
     "\"reg:5000/tc\""},
    {"api:\n  listen: localhost\n", "ocra.yaml:2: api.listen: want host:port, got \"localhost\""},
    {"x: [[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]\n", "ocra.yaml:1: nesting deeper than 16 levels"},
    {"log:\n  level: \xff\xfe\n", "ocra.yaml:2: not valid UTF-8"},
    {"log:\n  level: \"a\\0b\"\n", "ocra.yaml:2: log.level: contains a NUL character"},
    {"log:\n  level: [\n", "ocra.yaml:3: invalid YAML: did not find expected node content"},
    {"\"log\\tx\": 1\n", "ocra.yaml:1: \"log\\x09x\": unknown key (did you mean log?)"},
};

static void
test_every_problem_kind_is_named(void)
{
    for (size_t i = 0; i < OCRA_ARRAY_LEN(problem_cases); i++) {
        char *got = problems_of(problem_cases[i].text);

        if (strcmp(got, problem_cases[i].want) != 0) {
            fprintf(stderr, "  case %zu:\n    got  %s\n    want %s\n", i, got,
                    problem_cases[i].want);
            ocra_test_failed = 1;
        }
        free(got);
    }
}

static void
test_all_problems_are_reported_in_line_order(void)
{
    static const char text[] = "daemon:\n  workers: 0\n"
                               "log:\n  level: loud\n  levl: x\n"
                               "api: {listen: \"nope\"}\n";
    struct ocra_config_problems probs = {0};
    struct ocra_config cfg;
    struct ocra_err err = {0};

    CHECK_INT(ocra_config_load_text("f.yaml", NULL, text, strlen(text), &cfg, &probs, &err), -1);
    CHECK_INT(err.code, EINVAL);
    CHECK_STR(err.msg, "4 problems in f.yaml");
    CHECK_INT(probs.n, 4);
    if (probs.n == 4) {
        CHECK_STR(probs.lines[0],
                  "f.yaml:2: daemon.workers: want an integer in [1, 64], got \"0\"");
        CHECK_STR(probs.lines[1],
                  "f.yaml:4: log.level: want one of error, warn, info, debug, got \"loud\"");
        CHECK_STR(probs.lines[2], "f.yaml:5: log.levl: unknown key (did you mean log.level?)");
        CHECK_STR(probs.lines[3], "f.yaml:6: api.listen: want host:port, got \"nope\"");
    }
    /* a failed load leaves exactly the defaults */
    CHECK(cfg.path == NULL);
    CHECK_INT(cfg.daemon_workers, 2);
    CHECK_STR(cfg.api_listen, "127.0.0.1:8380");
    ocra_config_problems_fini(&probs);
    ocra_config_fini(&cfg);
}

static void
test_problems_stop_at_the_cap(void)
{
    struct ocra_config_problems probs = {0};
    struct ocra_config cfg;
    struct ocra_buf b;

    ocra_buf_init(&b);
    for (int i = 0; i < 300; i++)
        ocra_buf_printf(&b, "k%d: 1\n", i);
    CHECK_INT(ocra_config_load_text("f.yaml", NULL, b.data, b.len, &cfg, &probs, NULL), -1);
    CHECK_INT(probs.n, OCRA_CONFIG_MAX_PROBLEMS + 1);
    if (probs.n == OCRA_CONFIG_MAX_PROBLEMS + 1)
        CHECK_STR(probs.lines[probs.n - 1], "f.yaml:101: too many problems; stopped here");
    ocra_config_problems_fini(&probs);
    ocra_config_fini(&cfg);
    ocra_buf_fini(&b);
}

static void
test_oversized_text_is_refused(void)
{
    size_t len = OCRA_CONFIG_MAX_BYTES + 1;
    char *text = ocra_xmalloc(len);
    struct ocra_config cfg;
    struct ocra_err err = {0};

    memset(text, '#', len);
    CHECK_INT(ocra_config_load_text("big.yaml", NULL, text, len, &cfg, NULL, &err), -1);
    CHECK_INT(err.code, EFBIG);
    CHECK_INT(cfg.daemon_workers, 2);
    ocra_config_fini(&cfg);
    free(text);
}

static void
test_relative_paths_resolve_against_the_file_directory(void)
{
    static const char text[] = "journal:\n  path: db/j.db\nain:\n  key_file: /abs/key\n";
    struct ocra_config cfg;

    CHECK_INT(ocra_config_load_text("x.yaml", "/etc/ocra", text, strlen(text), &cfg, NULL, NULL),
              0);
    CHECK_STR(cfg.journal_path, "/etc/ocra/db/j.db");
    CHECK_STR(cfg.ain.key_file, "/abs/key");
    ocra_config_fini(&cfg);
    CHECK_INT(ocra_config_load_text("x.yaml", "/", "", 0, &cfg, NULL, NULL), 0);
    CHECK_STR(cfg.journal_path, "/journal.db"); /* defaults too */
    CHECK_STR(cfg.ain.key_file, "");            /* empty stays empty */
    ocra_config_fini(&cfg);
    CHECK_INT(ocra_config_load_text("x.yaml", ".", text, strlen(text), &cfg, NULL, NULL), 0);
    CHECK_STR(cfg.journal_path, "db/j.db");
    ocra_config_fini(&cfg);
}

/* `-c ocra.yaml` from the file's own directory: relative paths come out absolute (they were
 * left relative, and the daemon's agent sockets and mounts then failed). */
static void
test_relative_config_path_gives_absolute_paths(void)
{
    char dir[] = "/tmp/ocra-config-test-XXXXXX", *want, old[4096];
    struct ocra_config_problems probs = {0};
    struct ocra_config cfg;
    struct ocra_err err = {0};
    static const char text[] = "journal:\n  path: j.db\nagent:\n  socket_dir: run\n";

    if (!mkdtemp(dir) || !getcwd(old, sizeof(old)))
        OCRA_TEST_SKIP("mkdtemp or getcwd failed");
    want = ocra_xasprintf("%s/ocra.yaml", dir);
    CHECK_INT(ocra_file_write_atomic(want, text, strlen(text), 0644, &err), 0);
    free(want);
    CHECK_INT(chdir(dir), 0);
    CHECK_INT(ocra_config_load("ocra.yaml", &cfg, &probs, &err), 0);
    want = ocra_xasprintf("%s/j.db", dir);
    CHECK_STR(cfg.journal_path, want);
    free(want);
    want = ocra_xasprintf("%s/run", dir);
    CHECK_STR(cfg.agent.socket_dir, want);
    free(want);
    ocra_config_fini(&cfg);
    CHECK_INT(ocra_config_load("./ocra.yaml", &cfg, &probs, &err), 0);
    CHECK(cfg.journal_path[0] == '/');
    ocra_config_fini(&cfg);
    CHECK_INT(chdir(old), 0);
    want = ocra_xasprintf("%s/ocra.yaml", dir);
    unlink(want);
    free(want);
    rmdir(dir);
}

static void
test_load_reads_a_file(void)
{
    char dir[] = "/tmp/ocra-config-test-XXXXXX", *path;
    struct ocra_config_problems probs = {0};
    struct ocra_config cfg;
    struct ocra_err err = {0};

    if (!mkdtemp(dir))
        OCRA_TEST_SKIP("mkdtemp failed");
    path = ocra_xasprintf("%s/ocra.yaml", dir);
    CHECK_INT(ocra_file_write_atomic(path, "daemon:\n  workers: 3\n", 21, 0644, &err), 0);
    CHECK_INT(ocra_config_load(path, &cfg, &probs, &err), 0);
    CHECK_STR(cfg.path, path);
    CHECK_INT(cfg.daemon_workers, 3);
    CHECK(strncmp(cfg.journal_path, dir, strlen(dir)) == 0);
    ocra_config_fini(&cfg);
    unlink(path);
    CHECK_INT(ocra_config_load(path, &cfg, &probs, &err), -1);
    CHECK_INT(err.code, ENOENT);
    CHECK_INT(probs.n, 0);
    CHECK_INT(cfg.daemon_workers, 2);
    ocra_config_fini(&cfg);
    rmdir(dir);
    free(path);
}

static void
test_bool_type_takes_core_schema_booleans_only(void)
{
    struct flags {
        bool on;
    };
    static const struct ocra_config_row rows[] = {
        {.key = "x.on", .type = OCRA_CONFIG_BOOL, .def = "false", .off = 0, .doc = "test"},
    };
    static const struct {
        const char *text;
        int on, problems;
    } cases[] = {
        {"x: {on: true}", 1, 0}, {"x: {on: TRUE}", 1, 0},     {"x: {on: False}", 0, 0},
        {"x: {on: yes}", 0, 1},  {"x: {on: \"true\"}", 0, 1}, {"x: {on: 1}", 0, 1},
    };

    for (size_t i = 0; i < OCRA_ARRAY_LEN(cases); i++) {
        struct ocra_config_report rep = {.name = "t"};
        struct ocra_config_tree tree;
        struct flags f = {0};

        ocra_config_rows_init(rows, 1, &f);
        if (ocra_config_tree_read(&tree, cases[i].text, strlen(cases[i].text), &rep) == 0)
            ocra_config_rows_apply(rows, 1, &tree, NULL, &f, &rep);
        CHECK_INT(f.on, cases[i].on);
        CHECK_INT(rep.n, cases[i].problems);
        ocra_config_tree_fini(&tree);
        ocra_config_report_fini(&rep);
        ocra_config_rows_fini(rows, 1, &f);
    }
}

static void
test_default_yaml_loads_to_the_defaults(void)
{
    char *yaml = ocra_config_default_yaml();
    struct ocra_config_problems probs = {0};
    struct ocra_config cfg, def;

    CHECK_INT(ocra_config_load_text("default.yaml", NULL, yaml, strlen(yaml), &cfg, &probs, NULL),
              0);
    for (size_t i = 0; i < probs.n; i++)
        fprintf(stderr, "  %s\n", probs.lines[i]);
    ocra_config_init(&def);
    CHECK_STR(cfg.journal_path, def.journal_path);
    CHECK_INT(cfg.log_level, def.log_level);
    CHECK_INT(cfg.ain.poll_interval_ms, def.ain.poll_interval_ms);
    CHECK_INT(cfg.ain.from_block, def.ain.from_block);
    CHECK_STR(cfg.api_listen, def.api_listen);
    CHECK_INT(cfg.daemon_workers, def.daemon_workers);
    /* every key of the table appears in it */
    for (size_t i = 0; i < ocra_config_n_rows; i++) {
        const char *leaf = strrchr(ocra_config_rows[i].key, '.');
        char *line = ocra_xasprintf("  %s: ", leaf ? leaf + 1 : ocra_config_rows[i].key);

        CHECK(strstr(yaml, line) != NULL);
        free(line);
    }
    ocra_config_problems_fini(&probs);
    ocra_config_fini(&cfg);
    ocra_config_fini(&def);
    free(yaml);
}

static void
test_table_rows_are_well_formed(void)
{
    for (size_t i = 0; i < ocra_config_n_rows; i++) {
        const struct ocra_config_row *row = &ocra_config_rows[i];
        char section[64];
        const char *dot = strrchr(row->key, '.');

        CHECK(row->doc && *row->doc && strlen(row->doc) < 100);
        CHECK(dot != NULL);
        if (!dot)
            continue;
        /* rows sharing a section are adjacent, so the default file has one mapping each */
        snprintf(section, sizeof(section), "%.*s.", (int)(dot - row->key), row->key);
        for (size_t j = i + 2; j < ocra_config_n_rows; j++)
            if (!strncmp(ocra_config_rows[j].key, section, strlen(section)))
                CHECK(!strncmp(ocra_config_rows[j - 1].key, section, strlen(section)));
    }
}

/* Compares a committed file with generated text; OCRA_REGEN=1 rewrites the file instead. */
static void
check_generated(const char *rel, const char *text, const char *how)
{
    char *path = ocra_xasprintf("%s/%s", OCRA_SOURCE_DIR, rel), *disk = NULL;
    struct ocra_err err = {0};
    const char *regen = getenv("OCRA_REGEN");

    if (regen && !strcmp(regen, "1"))
        CHECK_INT(ocra_file_write_atomic(path, text, strlen(text), 0644, &err), 0);
    if (ocra_file_read(path, 1u << 20, &disk, NULL, &err) < 0 || strcmp(disk, text) != 0) {
        fprintf(stderr,
                "  %s is out of date with src/config/config_table.c: regenerate with %s "
                "(or OCRA_REGEN=1 config_test)\n",
                rel, how);
        ocra_test_failed = 1;
    }
    free(disk);
    free(path);
}

static void
test_docs_config_md_is_generated_from_the_table(void)
{
    char *md = ocra_config_doc_markdown();

    check_generated("docs/CONFIG.md", md, "`ocra config doc > docs/CONFIG.md`");
    for (size_t i = 0; i < ocra_config_n_rows; i++) {
        char *cell = ocra_xasprintf("| `%s` |", ocra_config_rows[i].key);

        CHECK(strstr(md, cell) != NULL);
        free(cell);
    }
    free(md);
}

static void
test_etc_ocra_yaml_is_generated_from_the_table(void)
{
    char *yaml = ocra_config_default_yaml();

    check_generated("etc/ocra.yaml", yaml, "`ocra config default > etc/ocra.yaml`");
    free(yaml);
}

OCRA_TEST_MAIN(
    OCRA_TEST(test_defaults_come_from_the_table), OCRA_TEST(test_full_file_sets_every_key),
    OCRA_TEST(test_nested_and_dotted_keys_are_the_same_key),
    OCRA_TEST(test_null_and_empty_keep_defaults), OCRA_TEST(test_every_problem_kind_is_named),
    OCRA_TEST(test_all_problems_are_reported_in_line_order),
    OCRA_TEST(test_problems_stop_at_the_cap), OCRA_TEST(test_oversized_text_is_refused),
    OCRA_TEST(test_relative_paths_resolve_against_the_file_directory),
    OCRA_TEST(test_relative_config_path_gives_absolute_paths), OCRA_TEST(test_load_reads_a_file),
    OCRA_TEST(test_bool_type_takes_core_schema_booleans_only),
    OCRA_TEST(test_default_yaml_loads_to_the_defaults), OCRA_TEST(test_table_rows_are_well_formed),
    OCRA_TEST(test_docs_config_md_is_generated_from_the_table),
    OCRA_TEST(test_etc_ocra_yaml_is_generated_from_the_table))
