/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon_hosts.c: many Docker hosts. A node of the inventory may name its own engine
 * (inventory.nodes docker_host); the docker runner then places each workload on its
 * allocation's node's engine (src/run/run_hosts.c). Here: the hosts of the configuration,
 * the nodes whose engine does not answer taken out of placement, and their state for
 * `ocra nodes`, /api/v1/nodes and the metric ocra_node_up{node}.
 */
#include "daemon/daemon_int.h"

#include <stdlib.h>
#include <string.h>

#include "metrics/metrics.h"

#define HOSTS_MAX_AGE_MS 5000 /* an engine heard from this recently is not asked again */
#define HOSTS_PING_MS 5000    /* how long a silent engine is waited for */

size_t
ocra_daemon_docker_hosts(const struct ocra_config *cfg, struct ocra_run_host **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!(ocra_run_kind_supports(cfg->run.runner) & OCRA_RUN_ENGINE_HOSTS))
        return 0;
    for (size_t i = 0; i < cfg->n_nodes; i++) {
        const struct ocra_config_node *c = &cfg->nodes[i];

        if (!*c->docker_host)
            continue;
        if (!*out)
            *out = ocra_xcalloc(cfg->n_nodes, sizeof(**out));
        (*out)[(*n)++] = (struct ocra_run_host){
            .node = c->name,
            .endpoint = c->docker_host,
            .tls_ca = *c->docker_tls_ca ? c->docker_tls_ca : cfg->run.docker_tls_ca,
            .tls_cert = *c->docker_tls_cert ? c->docker_tls_cert : cfg->run.docker_tls_cert,
            .tls_key = *c->docker_tls_key ? c->docker_tls_key : cfg->run.docker_tls_key};
    }
    return *n;
}

unsigned
ocra_daemon_runner_supports(const struct ocra_config *cfg)
{
    unsigned s = ocra_run_kind_supports(cfg->run.runner);
    struct ocra_run_host *hosts;
    size_t n;

    ocra_daemon_docker_hosts(cfg, &hosts, &n);
    free(hosts);
    return n ? s & ~(unsigned)OCRA_RUN_LOCAL_ENGINE : s;
}

static struct ocra_metrics_family *
node_up_family(void)
{
    static const char *const labels[] = {"node", NULL};

    return ocra_metrics_family(ocra_metrics_default(), "ocra_node_up",
                               "1 when the node's own Docker engine answered ocra last time, "
                               "else 0 (its node takes no new placements).",
                               OCRA_METRICS_GAUGE, labels, NULL, 0);
}

/* The health of each host (asked when not heard from lately) into the metric; *hosts and *n
 * as ocra_daemon_docker_hosts(). */
static void
hosts_refresh(const struct ocra_config *cfg, int64_t max_age_ms, struct ocra_run_host **hosts,
              size_t *n)
{
    ocra_daemon_docker_hosts(cfg, hosts, n);
    if (!*n)
        return;
    (void)ocra_run_hosts_refresh(*hosts, *n, max_age_ms, HOSTS_PING_MS);
    for (size_t i = 0; i < *n; i++) {
        struct ocra_run_host_health h;

        ocra_run_hosts_health((*hosts)[i].node, &h);
        ocra_metrics_set(node_up_family(), (const char *const[]){(*hosts)[i].node}, h.up);
    }
}

void
ocra_daemon_hosts_drop_down(const struct ocra_config *cfg, struct ocra_sched_inventory *inv)
{
    struct ocra_run_host *hosts;
    size_t n, k = 0;

    hosts_refresh(cfg, HOSTS_MAX_AGE_MS, &hosts, &n);
    for (size_t i = 0; i < inv->n; i++) {
        bool down = n > 0; /* a node without an engine of its own runs nothing then */

        for (size_t j = 0; j < n; j++) {
            struct ocra_run_host_health h;

            if (strcmp(hosts[j].node, inv->v[i].node.name) != 0)
                continue;
            ocra_run_hosts_health(hosts[j].node, &h);
            down = h.known && !h.up;
        }
        if (!down)
            inv->v[k++] = inv->v[i];
    }
    inv->n = k;
    free(hosts);
}

size_t
ocra_daemon_hosts_json(const struct ocra_config *cfg, json_t *nodes, int64_t max_age_ms)
{
    struct ocra_run_host *hosts;
    size_t n, down = 0, i;
    json_t *node;

    hosts_refresh(cfg, max_age_ms, &hosts, &n);
    json_array_foreach(nodes, i, node)
    {
        const char *name = json_string_value(json_object_get(node, "name"));

        for (size_t j = 0; name && j < n; j++) {
            struct ocra_run_host_health h;
            json_t *e;

            if (strcmp(hosts[j].node, name) != 0)
                continue;
            ocra_run_hosts_health(hosts[j].node, &h);
            e = json_pack("{s:s, s:b, s:I}", "endpoint", hosts[j].endpoint, "up", h.up, "since",
                          (json_int_t)h.changed_ms);
            if (!h.up)
                json_object_set_new(e, "error", json_string(h.error));
            json_object_set_new(node, "engine", e);
            down += !h.up;
        }
    }
    free(hosts);
    return down;
}
