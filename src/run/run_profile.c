/* SPDX-License-Identifier: Apache-2.0 */
/*
 * run_profile.c: the sandbox profile. Checks a workload spec (everything in it came from a
 * chain, so each value is validated before use), builds the Engine API create body from the
 * checked values only (with jansson, never by pasting text), and describes the profile that
 * applies, relaxations named by their config keys.
 */
#include "run/run_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIB (INT64_C(1) << 20)

struct limit {
    const char *name;
    int64_t value, min, max;
};

void
ocra_run_limits_get(const struct ocra_run_profile *p, struct ocra_run_limits *l)
{
    l->memory_mib = p->memory_mib ? p->memory_mib : OCRA_RUN_DEFAULT_MEMORY_MIB;
    l->cpu_milli = p->cpu_milli ? p->cpu_milli : OCRA_RUN_DEFAULT_CPU_MILLI;
    l->shm_mib = p->shm_mib ? p->shm_mib : OCRA_RUN_DEFAULT_SHM_MIB;
    l->tmp_mib = p->tmp_mib ? p->tmp_mib : OCRA_RUN_DEFAULT_TMP_MIB;
    l->pids = p->pids_limit ? p->pids_limit : OCRA_RUN_DEFAULT_PIDS;
}

static int
limits_check(const struct ocra_run_profile *p, struct ocra_err *err)
{
    struct ocra_run_limits l;

    ocra_run_limits_get(p, &l);
    const struct limit table[] = {
        {"memory_mib", l.memory_mib, 6, INT64_C(1) << 22}, /* the engine's minimum is 6 MiB */
        {"cpu_milli", l.cpu_milli, 10, 1024000},
        {"shm_mib", l.shm_mib, 1, INT64_C(1) << 20},
        {"tmp_mib", l.tmp_mib, 1, INT64_C(1) << 20},
        {"pids_limit", l.pids, 8, INT64_C(1) << 22},
    };

    for (size_t i = 0; i < OCRA_ARRAY_LEN(table); i++)
        if (table[i].value < table[i].min || table[i].value > table[i].max)
            return ocra_err_set(err, EINVAL, "%s %" PRId64 ": not in %" PRId64 "..%" PRId64,
                                table[i].name, table[i].value, table[i].min, table[i].max);
    return 0;
}

/* The user part of "user[:group]" names root: uid 0 (any spelling of zeros) or "root". */
static bool
user_is_root(const char *u)
{
    size_t n = strcspn(u, ":");

    return (n == 4 && strncmp(u, "root", 4) == 0) || (n > 0 && strspn(u, "0") == n);
}

/* One part of "user[:group]": digits, or a name [a-z_][a-z0-9_-]{0,31}. */
static bool
user_part_valid(const char *s, size_t n)
{
    if (n == 0 || n > 32)
        return false;
    if (strspn(s, "0123456789") >= n)
        return n <= 10;
    if (!((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
        return false;
    return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") >= n;
}

const char *
ocra_run_user_get(const struct ocra_run_profile *p)
{
    if (p->user)
        return p->user;
    return p->run_as_root ? "0:0" : OCRA_RUN_DEFAULT_USER;
}

static int
user_check(const struct ocra_run_profile *p, struct ocra_err *err)
{
    const char *u = ocra_run_user_get(p), *colon = strchr(u, ':');
    size_t n = colon ? (size_t)(colon - u) : strlen(u);

    if (!user_part_valid(u, n) || (colon && !user_part_valid(colon + 1, strlen(colon + 1))))
        return ocra_err_set(err, EINVAL, "user: need uid[:gid] or a user name");
    if (user_is_root(u) && !p->run_as_root)
        return ocra_err_set(err, EINVAL,
                            "user %s is root: the sandbox runs as a non-root user unless "
                            "run.sandbox.run_as_root is true",
                            u);
    return 0;
}

/* Printable UTF-8 without control bytes, 1..max bytes. */
static bool
text_valid(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;

    if (n == 0 || n > max || !ocra_utf8_valid(s, n))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

static bool
env_valid(const char *e)
{
    size_t n = strspn(e, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_");

    return n > 0 && !(e[0] >= '0' && e[0] <= '9') && e[n] == '=' && ocra_utf8_valid(e, strlen(e));
}

static int
words_check(const char *const *cmd, const char *const *env, struct ocra_err *err)
{
    size_t i;

    for (i = 0; cmd && cmd[i]; i++)
        if (i >= OCRA_RUN_MAX_ARGS || !ocra_utf8_valid(cmd[i], strlen(cmd[i])))
            return ocra_err_set(err, EINVAL, "cmd[%zu]: not UTF-8 or too many words", i);
    if (cmd && i == 0)
        return ocra_err_set(err, EINVAL, "cmd: empty (NULL keeps the image's command)");
    for (i = 0; env && env[i]; i++)
        if (i >= OCRA_RUN_MAX_ARGS || !env_valid(env[i]))
            return ocra_err_set(err, EINVAL, "env[%zu]: need NAME=value (or too many entries)", i);
    return 0;
}

static int
image_check(const char *image, struct ocra_err *err)
{
    const char *at = image ? strchr(image, '@') : NULL;
    char q[96];

    if (!image)
        return ocra_err_set(err, EINVAL, "image: missing");
    if (!at || !ocra_image_digest_valid(at + 1) || !ocra_image_docker_ref_valid(image))
        return ocra_err_set(err, EINVAL,
                            "image %s is not pinned by digest: a run needs "
                            "repo@sha256:<64 hex>, never a tag",
                            ocra_str_escape(image, strlen(image), 64, q, sizeof(q)));
    return 0;
}

static int
gpus_check(const struct ocra_run_spec *spec, struct ocra_err *err)
{
    unsigned seen = 0;

    if (spec->n_gpu_devs < 0 || spec->n_gpu_devs > OCRA_RUN_MAX_GPUS ||
        (spec->n_gpu_devs > 0 && !spec->gpu_devs))
        return ocra_err_set(err, EINVAL, "gpus: %d devices", spec->n_gpu_devs);
    for (int i = 0; i < spec->n_gpu_devs; i++) {
        if (spec->gpu_devs[i] >= OCRA_RUN_MAX_GPUS || (seen & (1u << spec->gpu_devs[i])))
            return ocra_err_set(err, EINVAL, "gpus: device index %u out of range or repeated",
                                spec->gpu_devs[i]);
        seen |= 1u << spec->gpu_devs[i];
    }
    if (spec->gpu_count < 0 || spec->gpu_count > OCRA_RUN_MAX_GPUS ||
        (spec->gpu_count && spec->n_gpu_devs && spec->gpu_count != spec->n_gpu_devs))
        return ocra_err_set(err, EINVAL, "gpus: a count of %d (0..%d, and equal to the %d devices)",
                            spec->gpu_count, OCRA_RUN_MAX_GPUS, spec->n_gpu_devs);
    return 0;
}

int
ocra_run_spec_check(const struct ocra_run_spec *spec, struct ocra_err *err)
{
    const struct ocra_run_profile *p = &spec->profile;

    if (!text_valid(spec->event_id, OCRA_RUN_EVENT_MAX))
        return ocra_err_set(err, EINVAL, "event id: need 1..%d bytes of printable UTF-8",
                            OCRA_RUN_EVENT_MAX);
    if (image_check(spec->image, err) < 0 || words_check(spec->cmd, spec->env, err) < 0 ||
        limits_check(p, err) < 0 || user_check(p, err) < 0 || gpus_check(spec, err) < 0)
        return -1;
    if (spec->agent_dir && *spec->agent_dir &&
        (spec->agent_dir[0] != '/' || strpbrk(spec->agent_dir, ":,") ||
         !text_valid(spec->agent_dir, 1024)))
        return ocra_err_set(err, EINVAL,
                            "agent socket directory: want an absolute path without ':' or ','");
    if (spec->port < 0 || spec->port > 65535)
        return ocra_err_set(err, EINVAL, "port %d: not in 1..65535", spec->port);
    if (spec->replica < 0 || spec->replica >= OCRA_RUN_MAX_REPLICAS)
        return ocra_err_set(err, EINVAL, "replica %d: not in 0..%d", spec->replica,
                            OCRA_RUN_MAX_REPLICAS - 1);
    if (spec->port && spec->port + spec->replica > 65535)
        return ocra_err_set(err, EINVAL, "replica %d serves port %d + %d: beyond 65535",
                            spec->replica, spec->port, spec->replica);
    if (spec->port && !p->network_host)
        return ocra_err_set(err, EINVAL,
                            "the workload serves port %d but the sandbox has no network; "
                            "Docker's default bridge is not used, so serving a port needs "
                            "host networking: set run.sandbox.network_host: true",
                            spec->port);
    return 0;
}

/* ---- the create body ------------------------------------------------------------------- */

int
ocra_run_port(const struct ocra_run_spec *spec)
{
    return spec->port ? spec->port + spec->replica : 0;
}

static json_t *
strings(const char *const *v)
{
    json_t *a = json_array();

    for (size_t i = 0; v && v[i]; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static json_t *
device_requests(const struct ocra_run_spec *spec)
{
    json_t *ids = json_array(), *req = json_object(), *caps = json_array();
    char idx[4];

    for (int i = 0; i < spec->n_gpu_devs; i++) {
        snprintf(idx, sizeof(idx), "%u", spec->gpu_devs[i]);
        json_array_append_new(ids, json_string(idx));
    }
    json_array_append_new(caps, strings((const char *const[]){"gpu", NULL}));
    json_object_set_new(req, "Driver", json_string("nvidia"));
    json_object_set_new(req, "Count", json_integer(0));
    json_object_set_new(req, "DeviceIDs", ids);
    json_object_set_new(req, "Capabilities", caps);
    return json_pack("[o]", req);
}

static json_t *
host_config(const struct ocra_run_spec *spec)
{
    const struct ocra_run_profile *p = &spec->profile;
    struct ocra_run_limits l;
    json_t *hc = json_object();
    char *tmp;

    ocra_run_limits_get(p, &l);
    tmp = ocra_xasprintf("rw,nosuid,nodev,size=%" PRId64 "m,mode=1777", l.tmp_mib);
    json_object_set_new(hc, "ReadonlyRootfs", json_boolean(!p->writable_rootfs));
    json_object_set_new(hc, "Tmpfs", json_pack("{s:s}", "/tmp", tmp));
    json_object_set_new(hc, "CapDrop", strings((const char *const[]){"ALL", NULL}));
    json_object_set_new(hc, "SecurityOpt",
                        strings((const char *const[]){"no-new-privileges", NULL}));
    json_object_set_new(hc, "PidsLimit", json_integer(p->no_pids_limit ? -1 : l.pids));
    json_object_set_new(hc, "Memory", json_integer(l.memory_mib * MIB));
    json_object_set_new(hc, "MemorySwap", json_integer(l.memory_mib * MIB));
    json_object_set_new(hc, "NanoCpus", json_integer(l.cpu_milli * INT64_C(1000000)));
    json_object_set_new(hc, "ShmSize", json_integer(l.shm_mib * MIB));
    json_object_set_new(hc, "NetworkMode", json_string(p->network_host ? "host" : "none"));
    json_object_set_new(hc, "RestartPolicy", json_pack("{s:s}", "Name", "no"));
    if (spec->agent_dir && *spec->agent_dir) {
        char *bind = ocra_xasprintf("%s:/run/ocra:ro", spec->agent_dir);

        json_object_set_new(hc, "Binds", strings((const char *const[]){bind, NULL}));
        free(bind);
    }
    if (spec->n_gpu_devs > 0)
        json_object_set_new(hc, "DeviceRequests", device_requests(spec));
    free(tmp);
    return hc;
}

json_t *
ocra_run_docker_create_body(const struct ocra_run_spec *spec, struct ocra_err *err)
{
    json_t *body, *labels, *env;
    char replica[16];

    if (ocra_run_spec_check(spec, err) < 0)
        return NULL;
    snprintf(replica, sizeof(replica), "%d", spec->replica);
    labels = json_pack("{s:s, s:s, s:s, s:s}", "io.ocra.event-id", spec->event_id, "io.ocra.image",
                       spec->image, "io.ocra.runner", "docker", "io.ocra.replica", replica);
    body = json_object();
    json_object_set_new(body, "Image", json_string(spec->image));
    if (spec->cmd)
        json_object_set_new(body, "Cmd", strings(spec->cmd));
    env = strings(spec->env);
    if (spec->port) {
        char port[24];

        snprintf(port, sizeof(port), "OCRA_PORT=%d", ocra_run_port(spec));
        json_array_append_new(env, json_string(port));
    }
    json_object_set_new(body, "Env", env);
    json_object_set_new(body, "User", json_string(ocra_run_user_get(&spec->profile)));
    json_object_set_new(body, "Labels", labels);
    json_object_set_new(body, "Tty", json_false());
    json_object_set_new(body, "OpenStdin", json_false());
    json_object_set_new(body, "HostConfig", host_config(spec));
    return body;
}

/* ---- description ----------------------------------------------------------------------- */

static void
line(struct ocra_buf *out, const char *setting, const char *value, const char *relaxed_key)
{
    ocra_buf_printf(out, "%-18s %s", setting, value);
    if (relaxed_key)
        ocra_buf_printf(out, " (relaxed: run.sandbox.%s)", relaxed_key);
    ocra_buf_putc(out, '\n');
}

static void
describe_limits(const struct ocra_run_spec *spec, struct ocra_buf *out)
{
    const struct ocra_run_profile *p = &spec->profile;
    struct ocra_run_limits l;
    char v[96];

    ocra_run_limits_get(p, &l);
    snprintf(v, sizeof(v), "%" PRId64, l.pids);
    line(out, "pids limit:", p->no_pids_limit ? "none" : v,
         p->no_pids_limit ? "no_pids_limit" : NULL);
    snprintf(v, sizeof(v), "%" PRId64 " MiB, no swap", l.memory_mib);
    line(out, "memory:", v, NULL);
    snprintf(v, sizeof(v), "%" PRId64 ".%03" PRId64 " CPUs", l.cpu_milli / 1000,
             l.cpu_milli % 1000);
    line(out, "cpu quota:", v, NULL);
    snprintf(v, sizeof(v), "%" PRId64 " MiB", l.shm_mib);
    line(out, "shm size:", v, NULL);
    snprintf(v, sizeof(v), "tmpfs on /tmp, %" PRId64 " MiB", l.tmp_mib);
    line(out, "scratch:", v, NULL);
}

void
ocra_run_profile_describe(const struct ocra_run_spec *spec, struct ocra_buf *out)
{
    const struct ocra_run_profile *p = &spec->profile;
    char v[96];
    size_t n = 0;

    line(out, "root filesystem:", p->writable_rootfs ? "writable" : "read-only",
         p->writable_rootfs ? "writable_rootfs" : NULL);
    line(out, "capabilities:", "all dropped", NULL);
    line(out, "privileges:", "no-new-privileges", NULL);
    line(out, "user:", ocra_run_user_get(p), p->run_as_root ? "run_as_root" : NULL);
    describe_limits(spec, out);
    line(out, "network:", p->network_host ? "host" : "none",
         p->network_host ? "network_host" : NULL);
    v[0] = '\0';
    for (int i = 0; i < spec->n_gpu_devs && spec->gpu_devs && n + 4 < sizeof(v); i++)
        n += (size_t)snprintf(v + n, sizeof(v) - n, "%s%u", i ? "," : "", spec->gpu_devs[i]);
    if (spec->n_gpu_devs == 0 && spec->gpu_count > 0)
        snprintf(v, sizeof(v), "%d, the devices the runner allocates", spec->gpu_count);
    line(out, "gpus:", spec->n_gpu_devs > 0 || spec->gpu_count > 0 ? v : "none", NULL);
    if (spec->agent_dir && *spec->agent_dir) {
        snprintf(v, sizeof(v), "%.60s at /run/ocra, read-only", spec->agent_dir);
        line(out, "agent socket:", v, NULL);
    }
}
