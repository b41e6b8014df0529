/* SPDX-License-Identifier: MIT */
/*
 * Tests left out of a run by name: $ZMP_TEST_SKIP holds test names, one a
 * line, exactly as the suite prints them.  The valgrind runner
 * (tests/valgrind.sh) uses it for the tests that cannot work under
 * valgrind and for the ones too slow there whose code others cover.  A
 * skipped test is reported as such, never as a pass; a name that matches
 * no test is an error, so a renamed test cannot slip back in unnoticed.
 *
 * Also the skips decided by a test itself (test_skip): a kernel feature or
 * a limit the machine does not have.
 */
#define _GNU_SOURCE
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

int skip_tests(void)
{
    const char *list = getenv("ZMP_TEST_SKIP");
    CU_pSuite s;
    CU_pTest t;
    const char *p, *end;
    size_t len;
    int found, bad = 0;

    if (!list || !*list)
        return 0;
    /* Inactive tests are failures by default in CUnit. */
    CU_set_fail_on_inactive(CU_FALSE);
    for (p = list; *p; p = *end ? end + 1 : end) {
        end = strchr(p, '\n');
        if (!end)
            end = p + strlen(p);
        len = (size_t)(end - p);
        if (!len)
            continue;
        found = 0;
        for (s = CU_get_registry()->pSuite; s; s = s->pNext)
            for (t = s->pTest; t; t = t->pNext)
                if (strlen(t->pName) == len && !strncmp(t->pName, p, len)) {
                    CU_set_test_active(t, CU_FALSE);
                    printf("SKIP ($ZMP_TEST_SKIP): %s: %s\n", s->pName, t->pName);
                    found++;
                }
        if (!found) {
            fprintf(stderr, "$ZMP_TEST_SKIP: no test named '%.*s'\n", (int)len, p);
            bad = 1;
        }
    }
    return bad ? -1 : 0;
}

static unsigned nskipped;

void test_skip(const char *why)
{
    printf("\n  SKIP: %s\n", why);
    nskipped++;
}

unsigned tests_skipped(void)
{
    return nskipped;
}
