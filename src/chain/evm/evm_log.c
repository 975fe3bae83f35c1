/* SPDX-License-Identifier: Apache-2.0 */
/*
 * evm_log.c: one eth_getLogs entry into one journal event. The log's envelope (block, hashes,
 * index) comes from the node and must be well formed, or the whole range is retried later;
 * its content (topics, data) is the contract's and hostile: whatever is wrong with it makes a
 * rejected event with the reason, never a crash and never an accepted spec. A name must be a
 * plausible model name (UTF-8, 1..128 bytes, no '/', no control bytes); the spec must be
 * UTF-8 JSON of at most OCRA_SPEC_MAX_DOC bytes and is journaled in canonical form (the spec's
 * own rules are checked later, by planning). The publisher must be in the operator's
 * allowlist; the contract's own check is implicit, as only its publishers can emit the event.
 */
#include "chain/evm/evm_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "spec/spec.h"
#include "store/store.h"

static const char *
own(struct ocra_evm_range *r, char *s)
{
    r->owned = ocra_xrealloc(r->owned, (r->n_owned + 1) * sizeof(*r->owned));
    r->owned[r->n_owned++] = s;
    return s;
}

void
ocra_evm_range_fini(struct ocra_evm_range *r)
{
    for (size_t i = 0; i < r->n_owned; i++)
        free(r->owned[i]);
    free(r->owned);
    free(r->evs);
    memset(r, 0, sizeof(*r));
}

static bool
hash_ok(const char *s)
{
    return s && strlen(s) == 66 && s[0] == '0' && s[1] == 'x' && ocra_hex_is(s + 2, 64);
}

static char *
lower_dup(const char *s)
{
    char *d = ocra_xstrdup(s);

    for (char *p = d; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return d;
}

/* Checks the node's envelope of a log; fills number and index. */
static int
envelope(const struct ocra_evm_scan_ctx *c, const json_t *log, int64_t *number, int64_t *index,
         struct ocra_err *err)
{
    uint64_t n, i;

    if (!json_is_object(log))
        return ocra_err_set(err, EPROTO, "log is not an object");
    if (json_is_true(json_object_get(log, "removed")))
        return ocra_err_set(err, EAGAIN, "log marked removed in a final range (reorg?)");
    if (ocra_evm_quantity(json_object_get(log, "blockNumber"), &n, err) < 0 ||
        ocra_evm_quantity(json_object_get(log, "logIndex"), &i, err) < 0 || i > INT64_MAX)
        return ocra_err_wrap(err, "log");
    if ((int64_t)n < c->from || (int64_t)n > c->to)
        return ocra_err_set(err, EPROTO, "log of block %llu outside [%lld, %lld]",
                            (unsigned long long)n, (long long)c->from, (long long)c->to);
    if (!hash_ok(ocra_json_str(log, "blockHash")) ||
        !hash_ok(ocra_json_str(log, "transactionHash")))
        return ocra_err_set(err, EPROTO,
                            "log of block %llu: malformed blockHash or "
                            "transactionHash",
                            (unsigned long long)n);
    if (!ocra_chain_address_equal(ocra_json_str(log, "address"), c->contract))
        return ocra_err_set(err, EPROTO, "log of block %llu from %.42s, not the contract",
                            (unsigned long long)n, ocra_json_str(log, "address"));
    if ((int64_t)n == c->to && strcasecmp(ocra_json_str(log, "blockHash"), c->to_hash) != 0)
        return ocra_err_set(err, EAGAIN, "log of block %llu has hash %s, the block %s (reorg?)",
                            (unsigned long long)n, ocra_json_str(log, "blockHash"), c->to_hash);
    *number = (int64_t)n;
    *index = (int64_t)i;
    return 0;
}

/* Hex data of a log into a new buffer; NULL with a reason when it is not "0x" + even hex. */
static uint8_t *
log_data(const json_t *log, size_t *len, char *why, size_t why_sz)
{
    const char *hex = ocra_json_str(log, "data");
    size_t n;
    uint8_t *data;

    if (!hex || strncmp(hex, "0x", 2) != 0 || (n = strlen(hex + 2)) % 2 ||
        !ocra_hex_is(hex + 2, n)) {
        (void)snprintf(why, why_sz, "log data is not 0x-prefixed hex");
        return NULL;
    }
    data = ocra_xmalloc(n / 2 + 1);
    if (ocra_hex_decode(hex, data, n / 2, NULL) < 0) {
        free(data);
        (void)snprintf(why, why_sz, "log data is not hex");
        return NULL;
    }
    *len = n / 2;
    return data;
}

static bool
name_ok(const uint8_t *s, size_t n)
{
    if (n == 0 || n > OCRA_SPEC_MAX_NAME || !ocra_utf8_valid((const char *)s, n))
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] == 0x7f || s[i] == '/')
            return false;
    return true;
}

/* Fills path, spec, status and reason from the decoded log. */
static void
judge(const struct ocra_evm_scan_ctx *c, struct ocra_evm_range *r, struct ocra_store_event *ev,
      const struct ocra_evm_published *p)
{
    struct ocra_err e = {0};
    char *name = NULL, esc[160];
    json_t *spec = NULL;

    ev->signer = own(r, ocra_xstrdup(p->publisher));
    if (!name_ok(p->name, p->name_len)) {
        ev->path = own(r, ocra_xasprintf("%s/%s", c->contract, p->name_hash));
        ocra_str_escape((const char *)p->name, p->name_len, 64, esc, sizeof(esc));
        ev->reason = own(r, ocra_xasprintf("model name %s: want 1..%d bytes of UTF-8 without '/' "
                                           "or control characters",
                                           esc, OCRA_SPEC_MAX_NAME));
        return;
    }
    name = ocra_xstrndup((const char *)p->name, p->name_len);
    ev->path = own(r, ocra_xasprintf("%s/%s", c->contract, name));
    free(name);
    if (p->spec_len > OCRA_SPEC_MAX_DOC)
        ev->reason = own(r, ocra_xasprintf("spec of %zu bytes is over the %d-byte limit",
                                           p->spec_len, OCRA_SPEC_MAX_DOC));
    else if (!ocra_utf8_valid((const char *)p->spec, p->spec_len))
        ev->reason = own(r, ocra_xstrdup("spec is not valid UTF-8"));
    else if (!(spec = ocra_json_parse((const char *)p->spec, p->spec_len, OCRA_JSON_STRICT, &e))) {
        ev->reason = own(r, ocra_xasprintf("spec is not JSON: %s", e.msg));
        if (!memchr(p->spec, 0, p->spec_len))
            ev->spec = own(r, ocra_xstrndup((const char *)p->spec, p->spec_len));
    } else {
        ev->spec = own(r, ocra_json_canonical(spec));
        if (!c->n_allow)
            ev->reason = own(r, ocra_xstrdup("no publisher is trusted: the operator allowlist "
                                             "is empty"));
        else if (!ocra_evm_allowed(c, p->publisher))
            ev->reason = own(
                r, ocra_xasprintf("publisher %s is not in the operator allowlist", p->publisher));
        else
            ev->trusted = true;
    }
    json_decref(spec);
}

bool
ocra_evm_allowed(const struct ocra_evm_scan_ctx *c, const char *addr)
{
    for (size_t i = 0; i < c->n_allow; i++)
        if (ocra_chain_address_equal(c->allow[i], addr))
            return true;
    return false;
}

/* Decodes the hostile part; a failure only makes the event rejected. */
static void
content(const struct ocra_evm_scan_ctx *c, struct ocra_evm_range *r, struct ocra_store_event *ev,
        const json_t *log)
{
    const json_t *topics = json_object_get(log, "topics");
    const char *tp[8] = {0};
    struct ocra_evm_published p;
    struct ocra_err e = {0};
    char why[160] = "";
    size_t n_tp = json_array_size(topics), len = 0;
    uint8_t *data = log_data(log, &len, why, sizeof(why));

    for (size_t i = 0; i < n_tp && i < OCRA_ARRAY_LEN(tp); i++)
        tp[i] = json_string_value(json_array_get(topics, i));
    ev->signer = "";
    if (!data) {
        ev->reason = own(r, ocra_xstrdup(why));
    } else if (ocra_evm_decode_published(tp, n_tp > 8 ? 8 : n_tp, data, len, &p, &e) < 0) {
        ev->reason = own(r, ocra_xasprintf("malformed ModelPublished log: %s", e.msg));
    } else {
        judge(c, r, ev, &p);
    }
    if (!ev->path)
        ev->path = own(r, ocra_xasprintf("%s/", c->contract));
    ev->status = ev->trusted ? "accepted" : "rejected";
    if (ev->trusted)
        ev->reason = NULL;
    free(data);
}

int
ocra_evm_log_event(const struct ocra_evm_scan_ctx *c, struct ocra_evm_range *r, const json_t *log,
                   struct ocra_err *err)
{
    struct ocra_store_event *ev;
    int64_t number = 0, index = 0;

    if (envelope(c, log, &number, &index, err) < 0)
        return -1;
    r->evs = ocra_xrealloc(r->evs, (r->n + 1) * sizeof(*r->evs));
    ev = memset(&r->evs[r->n++], 0, sizeof(*ev));
    ev->block_hash = own(r, lower_dup(ocra_json_str(log, "blockHash")));
    ev->id = own(r, ocra_xasprintf("%s:%s:%lld", c->source, ev->block_hash, (long long)index));
    ev->source = ev->chain = c->source;
    ev->block_number = number;
    ev->tx_hash = own(r, lower_dup(ocra_json_str(log, "transactionHash")));
    ev->op_index = index;
    content(c, r, ev, log);
    return 0;
}
