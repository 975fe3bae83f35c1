/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_spec.c: feeds arbitrary bytes to the model spec parser under the strict chain policy
 * and a permissive local one. Besides memory errors (ASan/UBSan), it checks the canonical
 * form's promise: a valid spec's canonical text parses again to the same canonical text and
 * hash, and the same text through ocra_spec_from_json agrees. Any mismatch aborts.
 */
#include "spec/spec.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_round_trip(const struct ocra_spec *s, const struct ocra_spec_policy *pol)
{
    struct ocra_spec *again = NULL;
    char *text = ocra_spec_canonical(s), *text2 = NULL;
    char h1[65], h2[65];

    if (ocra_spec_parse(text, strlen(text), pol, &again, NULL, NULL) < 0)
        abort(); /* the canonical form of a valid spec must be valid */
    text2 = ocra_spec_canonical(again);
    ocra_spec_hash(s, h1);
    ocra_spec_hash(again, h2);
    if (strcmp(text, text2) != 0 || strcmp(h1, h2) != 0)
        abort();
    free(text);
    free(text2);
    ocra_spec_free(again);
}

static void
one_policy(const uint8_t *data, size_t size, const struct ocra_spec_policy *pol)
{
    struct ocra_spec_problems probs = {0};
    struct ocra_err err = {0};
    struct ocra_spec *s = NULL;
    int r = ocra_spec_parse((const char *)data, size, pol, &s, &probs, &err);

    if (r == 0) {
        if (probs.n != 0)
            abort();
        check_round_trip(s, pol);
        ocra_spec_free(s);
    } else if (probs.n == 0 || err.msg[0] == '\0') {
        abort(); /* every rejection explains itself */
    }
    ocra_spec_problems_fini(&probs);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const hosts[] = {"127.0.0.1:8099", "mirror.internal"};
    static const char *const allow[] = {"127.0.0.0/8", "mirror.internal", "fd00::/8"};
    static const struct ocra_spec_policy strict = {0};
    static const struct ocra_spec_policy permissive = {.http_hosts = hosts,
                                                       .n_http_hosts = 2,
                                                       .allow_hosts = allow,
                                                       .n_allow_hosts = 3,
                                                       .allow_file = true,
                                                       .default_name = "model"};

    one_policy(data, size, &strict);
    one_policy(data, size, &permissive);
    return 0;
}
