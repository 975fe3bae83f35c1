/* SPDX-License-Identifier: Apache-2.0 */
/*
 * plan_base.c: which base images a plan may build on (docs/PLANNING.md §Base image policy).
 * A spec's baseImage must lie in the operator's allowlist, plan.base_images (none given: the
 * repositories the planner resolves to itself), and no base, the spec's or the planner's, may
 * be in ocra's own repositories (build.registry: other models' images, with their weights)
 * before or after mirrors, unless plan.base_images names that repository exactly. References
 * are compared in Docker's normal form ("docker.io/library/ubuntu"), so every spelling Docker
 * pulls as the same repository meets the same rule.
 */
#include "plan/plan_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* A first component Docker takes for a registry host: it has a dot or a port, or is localhost. */
static bool
is_domain(const char *s, size_t n)
{
    return memchr(s, '.', n) || memchr(s, ':', n) || (n == 9 && memcmp(s, "localhost", 9) == 0);
}

/* "host[:port]" lowercased, Docker Hub's other names folded. Caller frees. */
static char *
domain_norm(const char *s, size_t n)
{
    char *d = ocra_xstrndup(s, n);

    for (char *p = d; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    if (strcmp(d, "index.docker.io") == 0 || strcmp(d, "registry-1.docker.io") == 0) {
        free(d);
        d = ocra_xstrdup("docker.io");
    }
    return d;
}

char *
ocra_plan_ref_repo(const char *ref)
{
    size_t n = strcspn(ref, "@"); /* without the digest */
    const char *slash = memrchr(ref, '/', n), *first = memchr(ref, '/', n), *colon, *path = ref;
    char *domain, *out;

    colon = memchr(slash ? slash : ref, ':', n - (size_t)((slash ? slash : ref) - ref));
    if (colon)
        n = (size_t)(colon - ref); /* without the tag */
    if (first && (size_t)(first - ref) < n && is_domain(ref, (size_t)(first - ref))) {
        domain = domain_norm(ref, (size_t)(first - ref));
        path = first + 1;
        n -= (size_t)(path - ref);
    } else {
        domain = ocra_xstrdup("docker.io");
    }
    out = ocra_xasprintf(
        "%s/%s%.*s", domain,
        strcmp(domain, "docker.io") == 0 && !memchr(path, '/', n) ? "library/" : "", (int)n, path);
    free(domain);
    return out;
}

/*
 * An entry of plan.base_images in normal form: a repository ("nvidia/cuda": that one), or with
 * a trailing slash a prefix ("registry.internal:5000/", "nvidia/": every repository under
 * it; *prefix set). Caller frees.
 */
static char *
entry_norm(const char *e, bool *prefix)
{
    size_t n = strlen(e), host;
    char *d, *out;

    *prefix = n > 1 && e[n - 1] == '/';
    if (!*prefix)
        return ocra_plan_ref_repo(e);
    /* a prefix: its first component is a registry when Docker would take it for one (or it is
     * all there is: "registry.internal:5000/"); no "library/" is implied */
    host = strcspn(e, "/");
    if (!is_domain(e, host))
        return ocra_xasprintf("docker.io/%s", e);
    d = domain_norm(e, host);
    out = ocra_xasprintf("%s%s", d, e + host);
    free(d);
    return out;
}

/* How list matches repo (normal form): 2 an entry names it exactly, 1 it is under a prefix
 * entry, 0 neither. */
static int
list_match(const char *const *list, size_t n, const char *repo)
{
    int best = 0;

    for (size_t i = 0; i < n && best < 2; i++) {
        bool prefix;
        char *e = entry_norm(list[i], &prefix);

        if (!prefix && strcmp(e, repo) == 0)
            best = 2;
        else if (prefix && strncmp(repo, e, strlen(e)) == 0)
            best = 1;
        free(e);
    }
    return best;
}

/*
 * The model registry of opts that holds repo, as "host[:port]/prefix/" (the first component of
 * build.registry is always its host, as ocra pushes there), or NULL. Caller frees.
 */
static char *
model_home(const struct ocra_plan_options *opts, const char *repo)
{
    for (size_t i = 0; i < opts->n_model_registries; i++) {
        const char *r = opts->model_registries[i], *s = strstr(r, "://");
        size_t host, n;
        char *d, *home;

        r = s ? s + 3 : r;
        host = strcspn(r, "/");
        for (n = strlen(r); n > host && r[n - 1] == '/';)
            n--; /* "host/ocra/" is "host/ocra" */
        d = domain_norm(r, host);
        home = n > host + 1 ? ocra_xasprintf("%s/%.*s/", d, (int)(n - host - 1), r + host + 1)
                            : ocra_xasprintf("%s/", d);
        free(d);
        if (strncmp(repo, home, strlen(home)) == 0)
            return home;
        free(home);
    }
    return NULL;
}

/* The default allowlist: the repositories the planner resolves to itself, named exactly. */
static bool
planner_own(const struct ocra_plan_data *d, const char *repo)
{
    bool own = false;
    char *r = ocra_plan_ref_repo(d->cuda_repo);

    own = strcmp(r, repo) == 0;
    free(r);
    for (size_t i = 0; i < d->n_cpu_images && !own; i++) {
        r = ocra_plan_ref_repo(d->cpu_images[i].a);
        own = strcmp(r, repo) == 0;
        free(r);
    }
    return own;
}

/* A problem when ref (the spec's, or the one pulled after mirrors) is in a model registry
 * that plan.base_images does not name exactly. */
static bool
model_problem(const struct ocra_plan_options *opts, const char *field, const char *spec_ref,
              const char *ref, struct ocra_spec_problems *probs)
{
    char *repo = ocra_plan_ref_repo(ref), *home = model_home(opts, repo);
    bool bad = home && list_match(opts->base_images, opts->n_base_images, repo) < 2;

    if (bad && spec_ref && strcmp(spec_ref, ref) == 0)
        ocra_plan_problem(probs, field, "plan.base_image_model",
                          "%.80s is in ocra's model registry %.56s: another model's image, a "
                          "base only when plan.base_images names it exactly",
                          repo, home);
    else if (bad)
        ocra_plan_problem(probs, field, "plan.base_image_model",
                          "%s%.64s%s is pulled as %.72s (plan.mirrors), in ocra's model registry "
                          "%.56s where a model may take that name: change plan.mirrors",
                          spec_ref ? "\"" : "the planner's base", spec_ref ? spec_ref : "",
                          spec_ref ? "\"" : "", repo, home);
    free(repo);
    free(home);
    return bad;
}

void
ocra_plan_base_check(const struct ocra_plan_data *d, const struct ocra_plan_options *opts,
                     const char *spec_ref, const char *pulled, bool *listed,
                     struct ocra_spec_problems *probs)
{
    const char *field = spec_ref ? "baseImage" : "";
    char *repo;
    int m;

    if (listed)
        *listed = false;
    if (spec_ref) {
        /* the more specific reason first: one problem per base */
        if (model_problem(opts, field, spec_ref, spec_ref, probs))
            return;
        repo = ocra_plan_ref_repo(spec_ref);
        m = list_match(opts->base_images, opts->n_base_images, repo);
        if (listed)
            *listed = m == 2;
        if (opts->n_base_images && m == 0)
            ocra_plan_problem(probs, field, "plan.base_image",
                              "%.80s is not allowed as a base: plan.base_images does not list it",
                              repo);
        else if (!opts->n_base_images && !planner_own(d, repo))
            ocra_plan_problem(probs, field, "plan.base_image",
                              "%.80s is not allowed as a base: plan.base_images is unset, which "
                              "allows only the planner's own repositories (%.40s%s%.*s)",
                              repo, d->cuda_repo, d->n_cpu_images ? ", " : "",
                              d->n_cpu_images ? (int)strcspn(d->cpu_images[0].a, ":@") : 0,
                              d->n_cpu_images ? d->cpu_images[0].a : "");
        free(repo);
    }
    if (pulled && (!spec_ref || strcmp(pulled, spec_ref) != 0))
        model_problem(opts, field, spec_ref, pulled, probs);
}
