/* SPDX-License-Identifier: Apache-2.0 */
/*
 * run_reap.c: the containers that carry ocra's labels, found on an engine by label rather than
 * by name: listed (GET /containers/json?all=1 filtered on io.ocra.event-id), parsed (the reply
 * is outside input: every field is type-checked and bounded, an entry without a valid event
 * label is skipped) and removed by id, forced. The runners' reap, the daemon's reconcile and
 * `ocra nodes` work from this list.
 */
#include "run/run_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_MAX (32u << 20) /* the reply of an engine with many containers */
#define ENGINE_MS 60000L
/* {"label":["io.ocra.event-id"]}, URL-encoded */
#define LIST_PATH "/containers/json?all=1&filters=%7B%22label%22%3A%5B%22io.ocra.event-id%22%5D%7D"

/* v copied into out (size n) when it is printable UTF-8 that fits. */
static bool
text_copy(const char *v, char *out, size_t n)
{
    size_t len = v ? strlen(v) : 0;

    if (!v || len == 0 || len >= n || !ocra_utf8_valid(v, len))
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
            return false;
    memcpy(out, v, len + 1);
    return true;
}

static bool
label_get(const json_t *labels, const char *key, char *out, size_t n)
{
    return text_copy(ocra_json_str(labels, key), out, n);
}

/* A positive decimal u32 ("5"), else 0. */
static uint32_t
job_id_parse(const char *s)
{
    uint64_t v = 0;

    if (!s || !*s || strspn(s, "0123456789") != strlen(s) ||
        ocra_parse_u64(s, UINT32_MAX, &v, NULL) < 0)
        return 0;
    return (uint32_t)v;
}

/* The job id that ends a slurm container's name: ocra-<12 hex>-<digits>. */
static uint32_t
job_of_name(const char *name)
{
    if (strncmp(name, "ocra-", 5) != 0 || strlen(name) < 19 ||
        strspn(name + 5, "0123456789abcdef") != 12 || name[17] != '-')
        return 0;
    return job_id_parse(name + 18);
}

/* One element of the reply into c: 1 kept, 0 skipped (not a valid ocra container), -1 EPROTO. */
static int
container_parse(const json_t *j, struct ocra_run_container *c, struct ocra_err *err)
{
    const json_t *labels = json_object_get(j, "Labels"), *names = json_object_get(j, "Names");
    const char *id = ocra_json_str(j, "Id"), *name;
    char v[16];
    uint64_t r = 0;

    if (!json_is_object(j))
        return ocra_err_set(err, EPROTO, "the engine's container list has a non-object");
    if (!id || strlen(id) != 64 || !ocra_hex_is(id, 64))
        return ocra_err_set(err, EPROTO, "the engine's container list: an Id not of 64 hex");
    if ((labels && !json_is_object(labels) && !json_is_null(labels)) ||
        (names && !json_is_array(names)))
        return ocra_err_set(err, EPROTO, "the engine's container list: ill-typed Labels or Names");
    memset(c, 0, sizeof(*c));
    memcpy(c->id, id, 65);
    if (!label_get(labels, OCRA_RUN_LABEL_EVENT, c->event_id, sizeof(c->event_id)))
        return 0;
    name = json_string_value(json_array_get(names, 0));
    if (name && name[0] == '/')
        name++;
    if (!text_copy(name, c->name, sizeof(c->name)))
        c->name[0] = '\0';
    (void)label_get(labels, OCRA_RUN_LABEL_RUNNER, c->runner, sizeof(c->runner));
    if (label_get(labels, OCRA_RUN_LABEL_REPLICA, v, sizeof(v)))
        c->replica = strspn(v, "0123456789") == strlen(v) &&
                             ocra_parse_u64(v, OCRA_RUN_MAX_REPLICAS - 1, &r, NULL) == 0
                         ? (int)r
                         : -1;
    if (label_get(labels, OCRA_RUN_LABEL_SLURM_JOB, v, sizeof(v)))
        c->slurm_job = job_id_parse(v);
    if (!c->slurm_job && !strcmp(c->runner, "slurm"))
        c->slurm_job = job_of_name(c->name);
    if (!text_copy(ocra_json_str(j, "State"), c->state, sizeof(c->state)))
        snprintf(c->state, sizeof(c->state), "unknown");
    c->active = strcmp(c->state, "exited") != 0 && strcmp(c->state, "dead") != 0;
    return 1;
}

int
ocra_run_containers_parse(const char *body, size_t len, struct ocra_run_container **out, size_t *n,
                          struct ocra_err *err)
{
    json_t *doc = ocra_json_parse(body ? body : "", len, 0, err), *j;
    struct ocra_run_container *v = NULL;
    size_t i, k = 0;
    int rc;

    if (!doc)
        return ocra_err_wrap(err, "the engine's container list");
    if (!json_is_array(doc)) {
        json_decref(doc);
        return ocra_err_set(err, EPROTO, "the engine's container list is not an array");
    }
    v = ocra_xcalloc(json_array_size(doc) + 1, sizeof(*v));
    json_array_foreach(doc, i, j)
    {
        rc = container_parse(j, &v[k], err);
        if (rc < 0) {
            free(v);
            json_decref(doc);
            return -1;
        }
        k += (size_t)rc;
    }
    json_decref(doc);
    *out = v;
    *n = k;
    return 0;
}

int
ocra_run_containers_list(struct ocra_image_docker *d, const char *event_id,
                         struct ocra_run_container **out, size_t *n, struct ocra_err *err)
{
    struct ocra_image_docker_reply rep = {0};
    struct ocra_run_container *v = NULL;
    size_t k = 0, m = 0;
    int ret = -1;

    if (ocra_image_docker_request(d, "GET", LIST_PATH, NULL, ENGINE_MS, LIST_MAX, &rep, err) < 0)
        goto out;
    if (rep.status < 200 || rep.status >= 300) {
        ocra_image_docker_reply_err(&rep, err);
        goto out;
    }
    if (ocra_run_containers_parse(rep.body, rep.len, &v, &k, err) < 0)
        goto out;
    for (size_t i = 0; i < k; i++)
        if (!event_id || !strcmp(v[i].event_id, event_id))
            v[m++] = v[i];
    *out = v;
    *n = m;
    v = NULL;
    ret = 0;
out:
    if (ret < 0)
        ocra_err_wrap(err, "list ocra's containers");
    free(v);
    ocra_image_docker_reply_fini(&rep);
    return ret;
}

int
ocra_run_container_remove(struct ocra_image_docker *d, const char *id, struct ocra_err *err)
{
    struct ocra_image_docker_reply rep = {0};
    char *path = NULL;
    int ret = -1;

    if (strlen(id) != 64 || !ocra_hex_is(id, 64))
        return ocra_err_set(err, EINVAL, "remove container: not a container id");
    path = ocra_xasprintf("/containers/%s?force=1", id);
    if (ocra_image_docker_request(d, "DELETE", path, NULL, ENGINE_MS, 0, &rep, err) < 0)
        goto out;
    /* 404: gone already; 409: its removal is under way */
    if (rep.status != 404 && rep.status != 409 && (rep.status < 200 || rep.status >= 300)) {
        ocra_image_docker_reply_err(&rep, err);
        goto out;
    }
    ret = 0;
out:
    if (ret < 0)
        ocra_err_wrap(err, "remove container %.12s", id);
    ocra_image_docker_reply_fini(&rep);
    free(path);
    return ret;
}
