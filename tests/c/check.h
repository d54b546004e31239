/* The check counter shared by the C test programs: CHECK(cond) counts a
 * check and reports a failed one with hotplex's last error message; each
 * program prints `checks` and `failures` at its end. One program is one
 * translation unit, so the counters are the program's own. */
#ifndef HOTPLEX_TEST_CHECK_H
#define HOTPLEX_TEST_CHECK_H

#include <stdio.h>

#include "hotplex.h"

static int failures = 0;
static int checks = 0;

#define CHECK(cond)                                                        \
    do {                                                                   \
        checks++;                                                          \
        if (!(cond)) {                                                     \
            failures++;                                                    \
            const char *m = hotplex_last_error_message();                  \
            fprintf(stderr, "%s:%d: check failed: %s (last error: %s)\n", \
                    __FILE__, __LINE__, #cond, m ? m : "none");            \
        }                                                                  \
    } while (0)

#endif
