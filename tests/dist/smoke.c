/* Smoke check of an installed hotplex C library (tests/run-dist.sh builds it
 * through pkg-config and through CMake's find_package): the header and the
 * library agree on versions, the library runs its embedded supervisor
 * program (mode "exec"), the Detector blocks `rm -rf /`, and the Engine runs
 * two turns on the reference agent, with a session limit.
 * Usage: smoke <expected version> <reference-agent> <tmpdir> */

#include <stdio.h>
#include <string.h>

#include "hotplex.h"

#define CHECK(cond)                                                   \
    do {                                                              \
        if (!(cond)) {                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,    \
                    __LINE__, #cond);                                 \
            return 1;                                                 \
        }                                                             \
    } while (0)

static hotplex_status turn(hotplex_engine *e, const char *prompt, char **out) {
    hotplex_turn_stream *s = NULL;
    hotplex_status st = hotplex_engine_submit(e, "smoke", 5, prompt, strlen(prompt), NULL, 0, &s);
    if (st != HOTPLEX_STATUS_OK) return st;
    for (;;) {
        char *ev = NULL;
        st = hotplex_turn_stream_next(s, -1, &ev);
        if (st != HOTPLEX_STATUS_OK || ev == NULL) break;
        hotplex_string_free(ev);
    }
    st = hotplex_turn_stream_finish(s, out);
    hotplex_turn_stream_free(s);
    return st;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s <version> <reference-agent> <tmpdir>\n", argv[0]);
        return 2;
    }
    CHECK(strcmp(HOTPLEX_VERSION, argv[1]) == 0);
    CHECK(strcmp(hotplex_version(), HOTPLEX_VERSION) == 0);
    CHECK(hotplex_abi_version() == HOTPLEX_ABI_VERSION);
    /* The library carries its supervisor program and can run it. */
    CHECK(hotplex_supervisor_mode() && strcmp(hotplex_supervisor_mode(), "exec") == 0);

    hotplex_detector *d = NULL;
    hotplex_verdict *v = NULL;
    const char *cmd = "rm -rf /";
    CHECK(hotplex_detector_new(&d) == HOTPLEX_STATUS_OK);
    CHECK(hotplex_detector_check_command(d, cmd, strlen(cmd), &v) == HOTPLEX_STATUS_OK);
    CHECK(hotplex_verdict_blocked(v) && hotplex_verdict_level(v) == HOTPLEX_LEVEL_CRITICAL);
    hotplex_verdict_free(v);
    hotplex_detector_free(d);

    char opts[4096];
    snprintf(opts, sizeof opts,
             "{\"binary\":\"%s\",\"env\":{\"HOTPLEX_REF_STATE\":\"%s\"},"
             "\"default_workdir\":\"%s/work\",\"limits\":{\"max_processes\":64}}",
             argv[2], argv[3], argv[3]);
    hotplex_engine *e = NULL;
    CHECK(hotplex_engine_new(opts, strlen(opts), &e) == HOTPLEX_STATUS_OK);
    char *t = NULL;
    CHECK(turn(e, "hello", &t) == HOTPLEX_STATUS_OK);
    CHECK(t && strstr(t, "\"text\":\"echo: hello\"") && strstr(t, "\"cold_start\":true"));
    hotplex_string_free(t);
    CHECK(turn(e, "again", &t) == HOTPLEX_STATUS_OK);
    CHECK(t && strstr(t, "\"cold_start\":false"));
    hotplex_string_free(t);
    hotplex_engine_free(e);

    printf("C smoke (hotplex %s, ABI %u): ok\n", hotplex_version(), hotplex_abi_version());
    return 0;
}
