/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_config.c: the configuration loader on arbitrary bytes. Whatever the input, loading
 * must end in a valid config (the defaults on failure), must not crash or leak, and every
 * problem line must name the file.
 */
#include "config/config.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ocra_config_problems probs = {0};
    struct ocra_config cfg;
    struct ocra_err err = {0};
    int rc;

    rc = ocra_config_load_text("fuzz.yaml", "/base", (const char *)data, size, &cfg, &probs, &err);
    if (rc == 0 && probs.n != 0)
        abort();
    for (size_t i = 0; i < probs.n; i++)
        if (strncmp(probs.lines[i], "fuzz.yaml", 9) != 0)
            abort();
    if (!cfg.journal_path || !cfg.api_listen || !cfg.ain.rpc)
        abort();
    ocra_config_problems_fini(&probs);
    ocra_config_fini(&cfg);
    return 0;
}
