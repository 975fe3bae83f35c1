/* SPDX-License-Identifier: Apache-2.0 */
/*
 * it_run_docker: the docker runner (src/run) against a real, private dockerd started by
 * it_run_docker.sh (DOCKER_HOST), with the local base image pushed to a docker-registry on
 * 127.0.0.1 so that it has a digest reference ($OCRA_IT_RUN_IMAGE, repo@sha256:...; its tag
 * reference in $OCRA_IT_RUN_TAG). Checks that the sandbox really holds, from the engine's
 * inspect document and from inside the container (writing to / fails, no capabilities, no
 * network interface but lo, the pids limit stops a fork bomb, the non-root user), that the exit
 * code and the log tail come back, that a start after a crash adopts the container instead of
 * making a second one, and that a tag, an unknown digest and a foreign image are refused.
 */
#include "ocra_test.h"
#include "run/run.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PIDS 48 /* the fork bomb's limit: small, so that it ends fast */

/* Inside the container: writes a line to stderr, probes the sandbox, prints noise and then
 * one result line to stdout (one stream: the engine keeps their order), and exits 7. The fork bomb
 * is bounded: it stops at the first failed fork or after 1000 children, then lets every child go.
 */
static const char probe_py[] =
    "import os, sys\n"
    "sys.stderr.write('from stderr\\n'); sys.stderr.flush()\n"
    "res = {}\n"
    "try:\n"
    "    open('/probe', 'w'); res['root_write'] = 'ok'\n"
    "except OSError as e:\n"
    "    res['root_write'] = 'errno%d' % e.errno\n"
    "open('/tmp/probe', 'w').write('x'); res['tmp_write'] = 'ok'\n"
    "for l in open('/proc/self/status'):\n"
    "    k, _, v = l.partition(':')\n"
    "    if k in ('CapEff', 'CapPrm', 'CapBnd', 'CapAmb', 'NoNewPrivs'): res[k] = v.strip()\n"
    "res['net'] = ','.join(sorted(os.listdir('/sys/class/net')))\n"
    "res['uid'] = '%d:%d' % (os.getuid(), os.getgid())\n"
    "r, w = os.pipe(); kids = []; res['fork_errno'] = 'none'\n"
    "for i in range(1000):\n"
    "    try:\n"
    "        pid = os.fork()\n"
    "    except OSError as e:\n"
    "        res['fork_errno'] = e.errno; break\n"
    "    if pid == 0:\n"
    "        os.close(w); os.read(r, 1); os._exit(0)\n"
    "    kids.append(pid)\n"
    "os.close(w)\n"
    "for p in kids: os.waitpid(p, 0)\n"
    "res['forks'] = len(kids)\n"
    "for i in range(1, 21): print('noise %d' % i)\n"
    "print('RESULT ' + ' '.join('%s=%s' % kv for kv in sorted(res.items())), flush=True)\n"
    "sys.exit(7)\n";

static struct ocra_runner *
runner(void)
{
    struct ocra_err err = {0};
    struct ocra_runner *r = ocra_run_docker_new(NULL, &err);

    if (!r)
        fprintf(stderr, "  runner: %s\n", err.msg);
    return r;
}

/* The engine's inspect document of a container (GET /containers/{id}/json), or NULL. */
static json_t *
inspect(const char *id)
{
    struct ocra_image_docker *d = ocra_image_docker_new(NULL, NULL);
    struct ocra_image_docker_reply rep = {0};
    char *path = ocra_xasprintf("/containers/%s/json", id);
    json_t *doc = NULL;

    if (d && ocra_image_docker_request(d, "GET", path, NULL, 0, 0, &rep, NULL) == 0 &&
        rep.status == 200)
        doc = json_loadb(rep.body, rep.len, 0, NULL);
    ocra_image_docker_reply_fini(&rep);
    ocra_image_docker_free(d);
    free(path);
    return doc;
}

/* How many containers (any state) carry exactly this name. */
static long
count_named(const char *name)
{
    struct ocra_image_docker *d = ocra_image_docker_new(NULL, NULL);
    struct ocra_image_docker_reply rep = {0};
    /* filters={"name":["^/NAME$"]}, percent-encoded; NAME is [a-z0-9-] */
    char *path = ocra_xasprintf("/containers/json?all=1&filters=%%7B%%22name%%22%%3A%%5B%%22%%5E%%"
                                "2F%s%%24%%22%%5D%%7D",
                                name);
    json_t *doc = NULL;
    long n = -1;

    if (d && ocra_image_docker_request(d, "GET", path, NULL, 0, 0, &rep, NULL) == 0 &&
        rep.status == 200)
        doc = json_loadb(rep.body, rep.len, 0, NULL);
    if (json_is_array(doc))
        n = (long)json_array_size(doc);
    json_decref(doc);
    ocra_image_docker_reply_fini(&rep);
    ocra_image_docker_free(d);
    free(path);
    return n;
}

/* The integer after "key=" in s, or -1. */
static long
field(const char *s, const char *key)
{
    char *k = ocra_xasprintf(" %s=", key);
    const char *p = s ? strstr(s, k) : NULL;
    long v = p ? strtol(p + strlen(k), NULL, 10) : -1;

    free(k);
    return v;
}

static void
check_inspect(const char *id)
{
    json_t *doc = inspect(id), *hc = json_object_get(doc, "HostConfig");
    char *caps = ocra_json_compact(json_object_get(hc, "CapDrop"));
    char *sec = ocra_json_compact(json_object_get(hc, "SecurityOpt"));

    CHECK(doc != NULL);
    CHECK(json_is_true(json_object_get(hc, "ReadonlyRootfs")));
    CHECK_STR(caps, "[\"ALL\"]");
    CHECK_STR(sec, "[\"no-new-privileges\"]");
    CHECK_INT(ocra_json_int(hc, "PidsLimit", 0), PIDS);
    CHECK_INT(ocra_json_int(hc, "Memory", 0), (int64_t)OCRA_RUN_DEFAULT_MEMORY_MIB << 20);
    CHECK_INT(ocra_json_int(hc, "NanoCpus", 0), 1000000000);
    CHECK_STR(ocra_json_str(hc, "NetworkMode"), "none");
    CHECK(json_is_false(json_object_get(hc, "Privileged")));
    CHECK_STR(ocra_json_str(json_object_get(doc, "Config"), "User"), OCRA_RUN_DEFAULT_USER);
    CHECK_STR(ocra_json_str(json_object_get(json_object_get(doc, "Config"), "Labels"),
                            "io.ocra.event-id"),
              "it:run:sandbox");
    free(caps);
    free(sec);
    json_decref(doc);
}

static void
check_probe(const char *line)
{
    CHECK(line != NULL);
    if (!line)
        return;
    CHECK(strstr(line, " root_write=errno30 ") != NULL); /* EROFS */
    CHECK(strstr(line, " tmp_write=ok ") != NULL);
    CHECK(strstr(line, " CapEff=0000000000000000 ") != NULL);
    CHECK(strstr(line, " CapPrm=0000000000000000 ") != NULL);
    CHECK(strstr(line, " CapBnd=0000000000000000 ") != NULL);
    CHECK(strstr(line, " NoNewPrivs=1 ") != NULL);
    CHECK(strstr(line, " net=lo ") != NULL);
    CHECK(strstr(line, " uid=65532:65532") != NULL);
    CHECK_INT(field(line, "fork_errno"), EAGAIN);
    CHECK(field(line, "forks") > 0 && field(line, "forks") < PIDS);
}

static void
test_sandbox_holds_and_exit_code_and_logs_return(void)
{
    const char *const cmd[] = {"python3", "-c", probe_py, NULL};
    struct ocra_run_spec s = {.event_id = "it:run:sandbox",
                              .image = getenv("OCRA_IT_RUN_IMAGE"),
                              .cmd = cmd,
                              .profile = {.pids_limit = PIDS}};
    struct ocra_runner *r = runner();
    struct ocra_run_job job = {0};
    struct ocra_err err = {0};
    char *tail = NULL, *all = NULL;
    size_t len = 0;
    int code = -1;

    if (!r)
        goto out;
    CHECK_INT(r->start(r, &s, &job, &err), 0);
    if (err.code)
        fprintf(stderr, "  start: %s\n", err.msg);
    CHECK(!job.adopted);
    CHECK_INT(r->wait(r, &job, 120000, &code, &err), 0);
    CHECK_INT(code, 7);
    check_inspect(job.id);
    CHECK_INT(r->logs(r, &job, 1, &tail, &len, &err), 0);
    CHECK(tail && strncmp(tail, "RESULT ", 7) == 0 && !strstr(tail, "noise"));
    check_probe(tail);
    CHECK_INT(r->logs(r, &job, 3, &all, &len, &err), 0);
    CHECK(all && strstr(all, "noise 19\nnoise 20\nRESULT ") && !strstr(all, "noise 18"));
    free(all);
    all = NULL;
    CHECK_INT(r->logs(r, &job, 0, &all, &len, &err), 0); /* everything, both streams */
    CHECK(all && strstr(all, "from stderr\n") && strstr(all, "noise 1\n"));
    CHECK(all && len == strlen(all));
    CHECK_INT(r->remove(r, &job, &err), 0);
    CHECK_INT(count_named(job.name), 0);
out:
    free(tail);
    free(all);
    ocra_runner_free(r);
}

/* Made by hand: the state a crash between create and start leaves behind. */
static int
create_only(const struct ocra_run_spec *s, char id[72])
{
    struct ocra_image_docker *d = ocra_image_docker_new(NULL, NULL);
    struct ocra_image_docker_reply rep = {0};
    json_t *body = ocra_run_docker_create_body(s, NULL), *doc = NULL;
    char name[OCRA_RUN_NAME_MAX], *text = body ? ocra_json_compact(body) : NULL, *path;
    int ret = -1;

    ocra_run_container_name(s->event_id, name);
    path = ocra_xasprintf("/containers/create?name=%s", name);
    if (d && text && ocra_image_docker_request(d, "POST", path, text, 0, 0, &rep, NULL) == 0 &&
        rep.status == 201)
        doc = json_loadb(rep.body, rep.len, 0, NULL);
    if (ocra_json_str(doc, "Id")) {
        snprintf(id, 72, "%s", ocra_json_str(doc, "Id"));
        ret = 0;
    }
    json_decref(doc);
    json_decref(body);
    ocra_image_docker_reply_fini(&rep);
    ocra_image_docker_free(d);
    free(text);
    free(path);
    return ret;
}

static void
test_start_after_crash_adopts_not_duplicates(void)
{
    const char *const cmd[] = {"sleep", "300", NULL};
    struct ocra_run_spec s = {
        .event_id = "it:run:adopt", .image = getenv("OCRA_IT_RUN_IMAGE"), .cmd = cmd};
    struct ocra_run_job a = {0}, b = {0};
    struct ocra_err err = {0};
    struct ocra_runner *r;
    char created[72] = "";
    json_t *doc;

    CHECK_INT(create_only(&s, created), 0);
    r = runner(); /* a fresh daemon finds the created, never started container */
    CHECK(r && r->start(r, &s, &a, &err) == 0);
    CHECK(a.adopted);
    CHECK_STR(a.id, created);
    doc = inspect(a.id);
    CHECK(json_is_true(json_object_get(json_object_get(doc, "State"), "Running")));
    json_decref(doc);
    ocra_runner_free(r); /* crash while it runs */
    r = runner();
    CHECK(r && r->start(r, &s, &b, &err) == 0);
    CHECK(b.adopted);
    CHECK_STR(b.id, created);
    CHECK_INT(count_named(b.name), 1);
    CHECK(r && r->stop(r, &b, 1, &err) == 0);
    CHECK(r && r->stop(r, &b, 1, &err) == 0); /* not running any more: still fine */
    CHECK(r && r->remove(r, &b, &err) == 0);
    CHECK(r && r->remove(r, &b, &err) == -1 && err.code == ENOENT);
    ocra_runner_free(r);
}

static void
test_refuses_tag_unknown_digest_and_foreign_image(void)
{
    const char *const cmd[] = {"sleep", "300", NULL};
    const char *image = getenv("OCRA_IT_RUN_IMAGE");
    struct ocra_run_spec s = {
        .event_id = "it:run:refuse", .image = getenv("OCRA_IT_RUN_TAG"), .cmd = cmd};
    struct ocra_runner *r;
    char *other;
    struct ocra_run_job job = {0};
    struct ocra_err err = {0};
    char name[OCRA_RUN_NAME_MAX];

    if (!image || !strchr(image, '@') || !s.image)
        OCRA_TEST_SKIP("no OCRA_IT_RUN_IMAGE/OCRA_IT_RUN_TAG (run it_run_docker.sh)");
    other = ocra_xasprintf("%.*s@sha256:%064d", (int)(strchr(image, '@') - image), image, 0);
    r = runner();
    ocra_run_container_name(s.event_id, name);
    CHECK(r && r->start(r, &s, &job, &err) == -1 && err.code == EINVAL);
    CHECK(strstr(err.msg, "not pinned by digest") != NULL);
    s.image = other; /* a well-formed digest the engine does not hold */
    CHECK(r && r->start(r, &s, &job, &err) == -1 && err.code == ENOENT);
    CHECK_INT(count_named(name), 0);
    s.image = image; /* the real one, then the other under the same event */
    CHECK(r && r->start(r, &s, &job, &err) == 0);
    s.image = other;
    memset(&err, 0, sizeof(err));
    CHECK(r && r->start(r, &s, &job, &err) == -1 && err.code == EEXIST);
    CHECK(strstr(err.msg, "another image") != NULL);
    CHECK_INT(count_named(name), 1);
    CHECK(r && r->remove(r, &job, &err) == 0);
    ocra_runner_free(r);
    free(other);
}

static void
test_served_port_without_relaxation_is_refused(void)
{
    struct ocra_run_spec s = {
        .event_id = "it:run:port", .image = getenv("OCRA_IT_RUN_IMAGE"), .port = 8080};
    struct ocra_runner *r = runner();
    struct ocra_run_job job = {0};
    struct ocra_err err = {0};
    char name[OCRA_RUN_NAME_MAX];

    ocra_run_container_name(s.event_id, name);
    CHECK(r && r->start(r, &s, &job, &err) == -1 && err.code == EINVAL);
    CHECK(strstr(err.msg, "run.sandbox.network_host") != NULL);
    CHECK_INT(count_named(name), 0);
    ocra_runner_free(r);
}

OCRA_TEST_MAIN(OCRA_TEST(test_sandbox_holds_and_exit_code_and_logs_return),
               OCRA_TEST(test_start_after_crash_adopts_not_duplicates),
               OCRA_TEST(test_refuses_tag_unknown_digest_and_foreign_image),
               OCRA_TEST(test_served_port_without_relaxation_is_refused))
