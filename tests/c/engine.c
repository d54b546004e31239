/* The session pool through the C ABI, driving the bundled reference agent:
 * hot turns, a tool call denied by the WAF, every error status, PENDING
 * polls, NULL arguments, close. Usage: engine <reference-agent> <tmpdir> */

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static hotplex_status submit(hotplex_engine *e, const char *id, const char *prompt,
                             const char *opts, hotplex_turn_stream **out) {
    return hotplex_engine_submit(e, id, strlen(id), prompt, strlen(prompt), opts,
                                 opts ? strlen(opts) : 0, out);
}

/* Runs a turn to its end; returns its status, the turn JSON in *turn (or
 * NULL) and whether any event's JSON contained `want_event`. */
static hotplex_status run(hotplex_engine *e, const char *id, const char *prompt,
                          const char *opts, char **turn, const char *want_event,
                          bool *saw) {
    hotplex_turn_stream *s = NULL;
    *turn = NULL;
    if (saw) *saw = false;
    hotplex_status st = submit(e, id, prompt, opts, &s);
    if (st != HOTPLEX_STATUS_OK) return st;
    for (;;) {
        char *ev = NULL;
        st = hotplex_turn_stream_next(s, -1, &ev);
        if (st != HOTPLEX_STATUS_OK || ev == NULL) break;
        if (want_event && saw && strstr(ev, want_event)) *saw = true;
        hotplex_string_free(ev);
    }
    st = hotplex_turn_stream_finish(s, turn);
    hotplex_turn_stream_free(s);
    return st;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s <reference-agent> <tmpdir>\n", argv[0]);
        return 2;
    }
    char opts[4096];
    snprintf(opts, sizeof opts,
             "{\"binary\":\"%s\",\"env\":{\"HOTPLEX_REF_STATE\":\"%s\"},"
             "\"default_workdir\":\"%s/work\",\"interrupt_grace\":2}",
             argv[1], argv[2], argv[2]);

    hotplex_engine *e = NULL;
    CHECK(hotplex_engine_new(opts, strlen(opts), &e) == HOTPLEX_STATUS_OK && e);

    /* Hot turns: one cold start, then the same process. */
    char *turn = NULL;
    bool saw = false;
    CHECK(run(e, "s", "hello", NULL, &turn, "\"answer\"", &saw) == HOTPLEX_STATUS_OK);
    CHECK(saw);
    CHECK(turn && strstr(turn, "\"text\":\"echo: hello\""));
    CHECK(turn && strstr(turn, "\"cold_start\":true"));
    hotplex_string_free(turn);
    CHECK(run(e, "s", "again", NULL, &turn, NULL, NULL) == HOTPLEX_STATUS_OK);
    CHECK(turn && strstr(turn, "\"cold_start\":false"));
    hotplex_string_free(turn);

    /* A dangerous tool call is denied by the WAF; the turn goes on. */
    CHECK(run(e, "s", "tool:rm -rf /", NULL, &turn, "\"danger_block\"", &saw) ==
          HOTPLEX_STATUS_OK);
    CHECK(saw);
    CHECK(turn && strstr(turn, "tool denied: rm -rf /"));
    hotplex_string_free(turn);

    /* A dangerous prompt never reaches the agent; the detail has the verdict. */
    hotplex_turn_stream *s = NULL;
    CHECK(submit(e, "s", "rm -rf /", NULL, &s) == HOTPLEX_STATUS_DANGER_BLOCKED);
    CHECK(s == NULL);
    const char *detail = hotplex_last_error_detail();
    CHECK(detail && strstr(detail, "\"verdict\"") && strstr(detail, "\"critical\""));

    /* PENDING while a turn stalls, then a timeout that interrupts it. */
    CHECK(submit(e, "s", "stall:5000", "{\"timeout\":0.3}", &s) == HOTPLEX_STATUS_OK);
    char *ev = (char *)1;
    char *first = NULL;
    CHECK(hotplex_turn_stream_next(s, -1, &first) == HOTPLEX_STATUS_OK && first);
    hotplex_string_free(first);
    CHECK(hotplex_turn_stream_next(s, 0, &ev) == HOTPLEX_STATUS_PENDING);
    CHECK(ev == (char *)1); /* out-param untouched on failure */
    CHECK(hotplex_turn_stream_finish(s, &turn) == HOTPLEX_STATUS_TURN_TIMEOUT);
    hotplex_turn_stream_free(s);
    CHECK(run(e, "s", "after", NULL, &turn, NULL, NULL) == HOTPLEX_STATUS_OK);
    CHECK(turn && strstr(turn, "\"cold_start\":false"));
    hotplex_string_free(turn);

    /* Error results and crashes. */
    CHECK(run(e, "s", "fail", NULL, &turn, NULL, NULL) == HOTPLEX_STATUS_TURN_FAILED);
    detail = hotplex_last_error_detail();
    CHECK(detail && strstr(detail, "error_during_execution"));
    CHECK(run(e, "s", "crash", NULL, &turn, NULL, NULL) == HOTPLEX_STATUS_SESSION_DEAD);
    CHECK(run(e, "s", "recall", NULL, &turn, NULL, NULL) == HOTPLEX_STATUS_OK);
    CHECK(turn && strstr(turn, "\"resumed\":true"));
    hotplex_string_free(turn);

    /* Snapshots and stats. */
    char *json = NULL;
    CHECK(hotplex_engine_sessions(e, &json) == HOTPLEX_STATUS_OK && json);
    CHECK(json && strstr(json, "\"id\":\"s\"") && strstr(json, "\"status\":\"ready\""));
    hotplex_string_free(json);
    CHECK(hotplex_engine_session_stats(e, "s", 1, &json) == HOTPLEX_STATUS_OK && json);
    CHECK(json && strstr(json, "\"tools_denied\":1"));
    hotplex_string_free(json);
    CHECK(hotplex_engine_session_stats(e, "nope", 4, &json) == HOTPLEX_STATUS_OK);
    CHECK(json && strcmp(json, "null") == 0);
    hotplex_string_free(json);

    /* Bad input. */
    hotplex_engine *bad = NULL;
    CHECK(hotplex_engine_new("{\"max_sessions\":0}", 18, &bad) ==
          HOTPLEX_STATUS_INVALID_CONFIG);
    CHECK(hotplex_engine_new("{\"bogus\":1}", 11, &bad) == HOTPLEX_STATUS_INVALID_CONFIG);
    CHECK(hotplex_engine_new("[1]", 3, &bad) == HOTPLEX_STATUS_INVALID_CONFIG);
    CHECK(bad == NULL);
    CHECK(hotplex_engine_new(NULL, 0, NULL) == HOTPLEX_STATUS_INVALID_ARGUMENT);
    CHECK(hotplex_engine_submit(NULL, "s", 1, "x", 1, NULL, 0, &s) ==
          HOTPLEX_STATUS_INVALID_ARGUMENT);
    CHECK(hotplex_engine_submit(e, "s", 1, "\xff", 1, NULL, 0, &s) == HOTPLEX_STATUS_UTF8);
    CHECK(hotplex_turn_stream_next(NULL, 0, &ev) == HOTPLEX_STATUS_INVALID_ARGUMENT);
    CHECK(hotplex_engine_close(NULL) == HOTPLEX_STATUS_INVALID_ARGUMENT);
    hotplex_turn_stream_free(NULL);
    hotplex_engine_free(NULL);

    /* Stop, close, then everything is CLOSED. */
    bool existed = false;
    CHECK(hotplex_engine_stop_session(e, "s", 1, &existed) == HOTPLEX_STATUS_OK && existed);
    CHECK(hotplex_engine_stop_session(e, "s", 1, &existed) == HOTPLEX_STATUS_OK && !existed);
    CHECK(hotplex_engine_close(e) == HOTPLEX_STATUS_OK);
    CHECK(hotplex_engine_close(e) == HOTPLEX_STATUS_OK);
    CHECK(submit(e, "s", "x", NULL, &s) == HOTPLEX_STATUS_CLOSED);
    hotplex_engine_free(e);

    printf("C engine: %d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
