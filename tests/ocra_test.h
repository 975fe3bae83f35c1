/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one test harness: each test is a `static void test_x(void)`; CHECK* record a failure
 * and go on, so one run reports every broken assertion. OCRA_TEST_MAIN runs the listed tests,
 * prints `ok|FAIL name` for each and ends with `N passed, N failed`; the exit status is 1 when
 * anything failed. A test that cannot run on this machine calls OCRA_TEST_SKIP(why).
 */
#ifndef OCRA_TEST_H
#define OCRA_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ocra_test {
    const char *name;
    void (*fn)(void);
};

static int ocra_test_failed;
static int ocra_test_skipped;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "  %s:%d: CHECK(%s)\n", __FILE__, __LINE__, #cond);                    \
            ocra_test_failed = 1;                                                                  \
        }                                                                                          \
    } while (0)

#define CHECK_INT(a, b)                                                                            \
    do {                                                                                           \
        long long ocra_a_ = (long long)(a), ocra_b_ = (long long)(b);                              \
        if (ocra_a_ != ocra_b_) {                                                                  \
            fprintf(stderr, "  %s:%d: %s == %lld, want %lld\n", __FILE__, __LINE__, #a, ocra_a_,   \
                    ocra_b_);                                                                      \
            ocra_test_failed = 1;                                                                  \
        }                                                                                          \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *ocra_a_ = (a), *ocra_b_ = (b);                                                 \
        if (!ocra_a_ || !ocra_b_ || strcmp(ocra_a_, ocra_b_) != 0) {                               \
            fprintf(stderr, "  %s:%d: %s == \"%s\", want \"%s\"\n", __FILE__, __LINE__, #a,        \
                    ocra_a_ ? ocra_a_ : "(null)", ocra_b_ ? ocra_b_ : "(null)");                   \
            ocra_test_failed = 1;                                                                  \
        }                                                                                          \
    } while (0)

#define OCRA_TEST_SKIP(why)                                                                        \
    do {                                                                                           \
        fprintf(stderr, "  skip: %s\n", (why));                                                    \
        ocra_test_skipped = 1;                                                                     \
        return;                                                                                    \
    } while (0)

#define OCRA_TEST(fn)                                                                              \
    {                                                                                              \
#fn, fn                                                                                    \
    }

#define OCRA_TEST_MAIN(...)                                                                        \
    int main(void)                                                                                 \
    {                                                                                              \
        static const struct ocra_test tests[] = {__VA_ARGS__};                                     \
        int passed = 0, failed = 0, skipped = 0;                                                   \
        for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {                            \
            ocra_test_failed = ocra_test_skipped = 0;                                              \
            tests[i].fn();                                                                         \
            if (ocra_test_failed)                                                                  \
                failed++;                                                                          \
            else if (ocra_test_skipped)                                                            \
                skipped++;                                                                         \
            else                                                                                   \
                passed++;                                                                          \
            printf("%s %s\n",                                                                      \
                   ocra_test_failed    ? "FAIL"                                                    \
                   : ocra_test_skipped ? "skip"                                                    \
                                       : "ok",                                                     \
                   tests[i].name);                                                                 \
            fflush(stdout);                                                                        \
        }                                                                                          \
        printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);                     \
        if (failed)                                                                                \
            return 1;                                                                              \
        return passed == 0 && skipped > 0 ? 77 : 0;                                                \
    }

#endif
