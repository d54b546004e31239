/* The session pool through the C ABI, driving the bundled reference agent:
 * hot turns, a tool call denied by the WAF, every error status, PENDING
 * polls, NULL arguments, close; the permission callback's answers, a
 * follow-up turn without workdir, session_stats costs, option errors naming
 * the option, a blocked prompt through hotplex_engine_start(); telemetry:
 * the metrics text and snapshot, the lifecycle observer, the log callback;
 * the control surface: host hooks and tools through their callbacks, the
 * permission context, live controls, reset and fork, session options;
 * per-session limits and the supervisor mode; the agent's questions and
 * plans, answered through the engine handle.
 * Usage: engine <reference-agent> <tmpdir> */

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hotplex.h"

#include "check.h"

/* The host's side of the permission callback: the answer JSON to set (NULL:
 * set nothing), whether to set it twice, and what it saw. */
struct permission_host {
    const char *answer;
    bool twice;
    int calls;
    hotplex_status set_status;
    char request[4096];
};

static void on_permission(void *user_data, const char *request_json, size_t request_len,
                          hotplex_permission_answer *answer) {
    struct permission_host *h = user_data;
    h->calls++;
    snprintf(h->request, sizeof h->request, "%.*s", (int)request_len, request_json);
    if (!h->answer) return;
    h->set_status = hotplex_permission_answer_set(answer, h->answer, strlen(h->answer));
    if (h->twice) h->set_status = hotplex_permission_answer_set(answer, "true", 4);
}

/* What the observer callback saw. It runs on the engine's observer thread;
 * main reads this only after hotplex_engine_free(), after which no call
 * runs (the library's promise). */
struct observed {
    int records;
    int turns_finished;
    char outcomes[512]; /* "ok,ok,..." */
    char exits[256];    /* "closed,..." */
};

/* The value of "key":"..." in a JSON text, copied into out (empty if absent). */
static void json_string(const char *json, const char *key, char *out, size_t n) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *p = strstr(json, pat);
    out[0] = '\0';
    if (!p) return;
    p += strlen(pat);
    const char *end = strchr(p, '"');
    if (end) snprintf(out, n, "%.*s", (int)(end - p), p);
}

static void append(char *list, size_t n, const char *item) {
    size_t used = strlen(list);
    snprintf(list + used, n - used, "%s%s", used ? "," : "", item);
}

static void on_record(void *user_data, const char *record_json, size_t len) {
    struct observed *o = user_data;
    char value[64];
    o->records++;
    if (strlen(record_json) != len) return; /* len is the text's length */
    if (strstr(record_json, "\"type\":\"turn_finished\"")) {
        o->turns_finished++;
        json_string(record_json, "outcome", value, sizeof value);
        append(o->outcomes, sizeof o->outcomes, value);
    } else if (strstr(record_json, "\"type\":\"session_exited\"")) {
        json_string(record_json, "reason", value, sizeof value);
        append(o->exits, sizeof o->exits, value);
    }
}

/* What the log callback saw (read after it was turned off). */
struct logged {
    int records;
    int info_with_session; /* info records naming session "m" */
    char first[1024];
};

static void on_log(void *user_data, const char *record_json, size_t len) {
    struct logged *l = user_data;
    if (!l->records++) snprintf(l->first, sizeof l->first, "%.*s", (int)len, record_json);
    if (strstr(record_json, "\"level\":\"info\"") &&
        strstr(record_json, "\"session_id\":\"m\""))
        l->info_with_session++;
}

/* The number after "key": in a JSON text (its first occurrence), or -1. */
static double json_number(const char *json, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = json ? strstr(json, pat) : NULL;
    return p ? strtod(p + strlen(pat), NULL) : -1;
}

static hotplex_status submit(hotplex_engine *e, const char *id, const char *prompt,
                             const char *opts, hotplex_turn_stream **out) {
    return hotplex_engine_submit(e, id, strlen(id), prompt, strlen(prompt), opts,
                                 opts ? strlen(opts) : 0, out);
}

/* Bad options fail hotplex_engine_new with INVALID_CONFIG naming `want`. */
static bool rejects_option(const char *opts, const char *want) {
    hotplex_engine *bad = NULL;
    hotplex_status st = hotplex_engine_new(opts, strlen(opts), &bad);
    const char *m = hotplex_last_error_message();
    bool ok = st == HOTPLEX_STATUS_INVALID_CONFIG && bad == NULL && m && strstr(m, want);
    if (!ok) fprintf(stderr, "options %s: status %d, message %s\n", opts, st, m ? m : "none");
    return ok;
}

/* The last session_stats event of run() and the first event's JSON. */
static char last_stats[4096];
static char first_event[4096];

/* Runs a turn to its end; returns its status, the turn JSON in *turn (or
 * NULL) and whether any event's JSON contained `want_event`. */
static hotplex_status run(hotplex_engine *e, const char *id, const char *prompt,
                          const char *opts, char **turn, const char *want_event,
                          bool *saw) {
    hotplex_turn_stream *s = NULL;
    *turn = NULL;
    if (saw) *saw = false;
    last_stats[0] = first_event[0] = '\0';
    hotplex_status st = submit(e, id, prompt, opts, &s);
    if (st != HOTPLEX_STATUS_OK) return st;
    for (;;) {
        char *ev = NULL;
        st = hotplex_turn_stream_next(s, -1, &ev);
        if (st != HOTPLEX_STATUS_OK || ev == NULL) break;
        if (want_event && saw && strstr(ev, want_event)) *saw = true;
        if (!first_event[0]) snprintf(first_event, sizeof first_event, "%s", ev);
        if (strstr(ev, "\"type\":\"session_stats\""))
            snprintf(last_stats, sizeof last_stats, "%s", ev);
        hotplex_string_free(ev);
    }
    st = hotplex_turn_stream_finish(s, turn);
    hotplex_turn_stream_free(s);
    return st;
}

/* Runs `tool:<cmd>` on an engine whose permission callback answers `answer`;
 * returns the turn JSON (free it) or NULL. */
static char *tool_turn(hotplex_engine *e, struct permission_host *h, const char *answer,
                       const char *cmd) {
    char prompt[256];
    char *turn = NULL;
    h->answer = answer;
    h->calls = 0;
    snprintf(prompt, sizeof prompt, "tool:%s", cmd);
    if (run(e, "p", prompt, NULL, &turn, NULL, NULL) != HOTPLEX_STATUS_OK) return NULL;
    return turn;
}

/* The host's side of the hook and tool callbacks: what each saw and how
 * the tool answers. The callbacks run on the engine's threads while main
 * waits for the turn; main reads this after the turn has ended. */
struct host_fns {
    int pre_calls, post_calls, tool_calls;
    char post_input[4096]; /* the PostToolUse hook's call */
    char tool_call[4096];  /* the last tool call */
    const char *pre_rewrite; /* the command a PreToolUse hook rewrites to, or NULL */
};

static void on_hook(void *user_data, const char *call_json, size_t call_len,
                    hotplex_callback_answer *answer) {
    struct host_fns *h = user_data;
    char out[512];
    if (strstr(call_json, "\"hook_id\":\"post\"")) {
        h->post_calls++;
        snprintf(h->post_input, sizeof h->post_input, "%.*s", (int)call_len, call_json);
        snprintf(out, sizeof out,
                 "{\"hookSpecificOutput\":{\"hookEventName\":\"PostToolUse\","
                 "\"additionalContext\":\"seen by C\"}}");
    } else if (strstr(call_json, "\"hook_id\":\"pre\"")) {
        h->pre_calls++;
        if (!h->pre_rewrite) {
            hotplex_callback_answer_set(answer, "{}", 2);
            return;
        }
        snprintf(out, sizeof out,
                 "{\"hookSpecificOutput\":{\"hookEventName\":\"PreToolUse\","
                 "\"updatedInput\":{\"command\":\"%s\"}}}",
                 h->pre_rewrite);
    } else {
        hotplex_callback_answer_fail(answer, "unknown hook", 12);
        return;
    }
    hotplex_callback_answer_set(answer, out, strlen(out));
}

static void on_tool(void *user_data, const char *call_json, size_t call_len,
                    hotplex_callback_answer *answer) {
    struct host_fns *h = user_data;
    h->tool_calls++;
    snprintf(h->tool_call, sizeof h->tool_call, "%.*s", (int)call_len, call_json);
    if (strstr(call_json, "\"tool\":\"get_weather\"") && strstr(call_json, "\"Paris\"")) {
        const char *sunny = "\"sunny in Paris\"";
        hotplex_callback_answer_set(answer, sunny, strlen(sunny));
    } else {
        hotplex_callback_answer_fail(answer, "no such city", 12);
    }
}

/* Runs a turn and returns its JSON (free it), or NULL; *status gets the
 * turn's status. */
static char *turn_of(hotplex_engine *e, const char *id, const char *prompt, const char *opts,
                     hotplex_status *status) {
    char *turn = NULL;
    hotplex_status st = run(e, id, prompt, opts, &turn, NULL, NULL);
    if (status) *status = st;
    return turn;
}

/* Whether turn `id`/`prompt` succeeds with a text containing `want`. */
static bool answers(hotplex_engine *e, const char *id, const char *prompt, const char *want) {
    hotplex_status st = HOTPLEX_STATUS_OK;
    char *t = turn_of(e, id, prompt, NULL, &st);
    bool ok = st == HOTPLEX_STATUS_OK && t && strstr(t, want);
    if (!ok) fprintf(stderr, "%s on %s: status %d, turn %s\n", prompt, id, st, t ? t : "none");
    hotplex_string_free(t);
    return ok;
}

/* The control surface: hooks and tools declared in the options and run by
 * the C callbacks, live controls, reset and fork, session options. */
/* The soft value of a row of /proc/<pid>/limits ("Max open files"), or -1. */
static long long proc_limit(long pid, const char *row) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/limits", pid);
    FILE *f = fopen(path, "r");
    long long v = -1;
    if (!f) return v;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, row, strlen(row)) == 0) {
            v = strtoll(line + strlen(row), NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

/* Per-session limits (the options' `limits` object) reach the agent, a bad
 * one is INVALID_CONFIG naming it; the process model is reported. */
static void session_limits(const char *agent, const char *tmp) {
    char opts[4096];
    snprintf(opts, sizeof opts,
             "{\"binary\":\"%s\",\"env\":{\"HOTPLEX_REF_STATE\":\"%s\"},"
             "\"default_workdir\":\"%s/work\",\"limits\":{\"max_processes\":64,"
             "\"memory_bytes\":536870912,\"cpu_seconds\":600,\"open_files\":200}}",
             agent, tmp, tmp);
    hotplex_engine *e = NULL;
    CHECK(hotplex_engine_new(opts, strlen(opts), &e) == HOTPLEX_STATUS_OK && e);
    char *turn = NULL;
    CHECK(run(e, "limited", "hello", NULL, &turn, NULL, NULL) == HOTPLEX_STATUS_OK);
    CHECK(turn && strstr(turn, "\"text\":\"echo: hello\""));
    long pid = (long)json_number(turn, "pid");
    hotplex_string_free(turn);
    /* Per process in every containment mode (memory: the cgroup's, or the
     * address space without one; Python and Node check that too). */
    CHECK(proc_limit(pid, "Max open files") == 200);
    CHECK(proc_limit(pid, "Max cpu time") == 600);
    CHECK(hotplex_engine_close(e) == HOTPLEX_STATUS_OK);
    hotplex_engine_free(e);

    CHECK(rejects_option("{\"limits\":{\"max_processes\":0}}", "limits.max_processes"));
    CHECK(rejects_option("{\"limits\":{\"memory_bytes\":-1}}", "limits.memory_bytes"));
    CHECK(rejects_option("{\"limits\":{\"memory\":1}}", "memory"));

    const char *mode = hotplex_supervisor_mode();
    const char *forced = getenv("HOTPLEX_SUPERVISOR");
    /* The embedded supervisor program runs unless fork is asked for. */
    CHECK(mode && strcmp(mode, forced && strcmp(forced, "fork") == 0 ? "fork" : "exec") == 0);
    CHECK(hotplex_session_ceiling() > 0);
}

static void control_surface(const char *agent, const char *tmp) {
    char opts[8192];
    snprintf(opts, sizeof opts,
             "{\"binary\":\"%s\",\"env\":{\"HOTPLEX_REF_STATE\":\"%s\"},"
             "\"default_workdir\":\"%s/work\",\"interrupt_grace\":2,\"control_timeout\":5,"
             "\"hooks\":[{\"event\":\"PreToolUse\",\"matcher\":\"Bash\",\"id\":\"pre\"},"
             "{\"event\":\"PostToolUse\",\"matcher\":\"Bash\",\"id\":\"post\",\"timeout\":5}],"
             "\"tools\":[{\"name\":\"host\",\"tools\":[{\"name\":\"get_weather\","
             "\"description\":\"The weather in a city\",\"input_schema\":{\"type\":\"object\","
             "\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}}]}]}",
             agent, tmp, tmp);

    /* Hooks or tools without their callback are a configuration error. */
    hotplex_engine *e = NULL;
    CHECK(hotplex_engine_new(opts, strlen(opts), &e) == HOTPLEX_STATUS_INVALID_CONFIG && !e);
    const char *m = hotplex_last_error_message();
    CHECK(m && strstr(m, "hooks"));

    struct host_fns host = {0};
    hotplex_engine_callbacks cb = {0};
    cb.size = sizeof cb;
    cb.hook = on_hook;
    cb.hook_data = &host;
    CHECK(hotplex_engine_new_with_callbacks(opts, strlen(opts), &cb, &e) ==
          HOTPLEX_STATUS_INVALID_CONFIG);
    m = hotplex_last_error_message();
    CHECK(m && strstr(m, "tools"));
    cb.tool = on_tool;
    cb.tool_data = &host;
    CHECK(hotplex_engine_new_with_callbacks(opts, strlen(opts), &cb, &e) == HOTPLEX_STATUS_OK &&
          e);
    if (!e) return;

    /* A PostToolUse hook sees the tool's output; its additionalContext
     * reaches the answer. */
    CHECK(answers(e, "h", "tool:ls", "tool ran: ls [context: seen by C]"));
    CHECK(host.pre_calls == 1 && host.post_calls == 1);
    CHECK(strstr(host.post_input, "\"event\":\"PostToolUse\"") &&
          strstr(host.post_input, "\"session_id\":\"h\"") &&
          strstr(host.post_input, "\"tool_response\"") && strstr(host.post_input, "ran: ls") &&
          strstr(host.post_input, "\"tool_use_id\":\""));

    /* A PreToolUse hook rewrites the command: the rewritten one runs. */
    host.pre_rewrite = "make check";
    CHECK(answers(e, "h", "tool:ls", "tool ran: make check"));
    /* A rewrite into a dangerous command is blocked by the WAF. */
    host.pre_rewrite = "rm -rf ~";
    bool saw = false;
    char *t = NULL;
    CHECK(run(e, "h", "tool:ls", NULL, &t, "\"danger_block\"", &saw) == HOTPLEX_STATUS_OK);
    CHECK(saw && t && strstr(t, "tool denied"));
    hotplex_string_free(t);
    host.pre_rewrite = NULL;
    /* A command the WAF blocks never reaches the PreToolUse hook. */
    int pre_before = host.pre_calls;
    CHECK(answers(e, "h", "tool:rm -rf /", "tool denied: rm -rf /"));
    CHECK(host.pre_calls == pre_before);

    /* A host tool: listed to the model, called with its arguments, and its
     * result reaches the answer; a failure is an error the model sees. */
    CHECK(answers(e, "h", "tools?", "mcp__host__get_weather"));
    CHECK(answers(e, "h", "mcp:host/get_weather {\"city\":\"Paris\"}",
                  "tool said: sunny in Paris"));
    CHECK(strstr(host.tool_call, "\"server\":\"host\"") &&
          strstr(host.tool_call, "\"arguments\":{\"city\":\"Paris\"}") &&
          strstr(host.tool_call, "\"session_id\":\"h\""));
    CHECK(answers(e, "h", "mcp:host/get_weather {\"city\":\"Atlantis\"}",
                  "tool said: no such city"));

    /* Live controls on a session between turns. */
    CHECK(hotplex_engine_set_model(e, "h", 1, "claude-test", 11) == HOTPLEX_STATUS_OK);
    CHECK(answers(e, "h", "model?", "model: claude-test"));
    CHECK(hotplex_engine_set_model(e, "h", 1, NULL, 0) == HOTPLEX_STATUS_OK);
    CHECK(answers(e, "h", "model?", "model: default"));
    CHECK(hotplex_engine_set_permission_mode(e, "h", 1, "plan", 4) == HOTPLEX_STATUS_OK);
    CHECK(answers(e, "h", "mode?", "mode: plan"));
    CHECK(hotplex_engine_set_permission_mode(e, "h", 1, "", 0) ==
          HOTPLEX_STATUS_INVALID_ARGUMENT);
    char *json = NULL;
    CHECK(hotplex_engine_context_usage(e, "h", 1, &json) == HOTPLEX_STATUS_OK && json);
    CHECK(json && json_number(json, "totalTokens") > 0 &&
          json_number(json, "maxTokens") == 200000);
    hotplex_string_free(json);
    json = NULL;
    CHECK(hotplex_engine_mcp_status(e, "h", 1, &json) == HOTPLEX_STATUS_OK && json);
    CHECK(json && strstr(json, "\"name\":\"host\"") && strstr(json, "connected"));
    hotplex_string_free(json);
    /* An unknown session, NULL out-params: nothing written. */
    json = (char *)1;
    CHECK(hotplex_engine_context_usage(e, "nope", 4, &json) ==
          HOTPLEX_STATUS_SESSION_NOT_FOUND);
    CHECK(json == (char *)1);
    CHECK(hotplex_engine_mcp_status(e, "h", 1, NULL) == HOTPLEX_STATUS_INVALID_ARGUMENT);
    CHECK(hotplex_engine_set_model(NULL, "h", 1, NULL, 0) == HOTPLEX_STATUS_INVALID_ARGUMENT);
    bool was = true;
    CHECK(hotplex_engine_interrupt(e, "nope", 4, &was) == HOTPLEX_STATUS_SESSION_NOT_FOUND);
    CHECK(was == true);
    CHECK(hotplex_engine_interrupt(e, "h", 1, &was) == HOTPLEX_STATUS_OK && !was);

    /* Interrupt during a turn: it ends, the session stays hot. */
    hotplex_turn_stream *s = NULL;
    CHECK(submit(e, "h", "stall:10000", NULL, &s) == HOTPLEX_STATUS_OK && s);
    char *first = NULL;
    CHECK(hotplex_turn_stream_next(s, -1, &first) == HOTPLEX_STATUS_OK && first);
    hotplex_string_free(first);
    CHECK(hotplex_engine_interrupt(e, "h", 1, &was) == HOTPLEX_STATUS_OK && was);
    CHECK(hotplex_turn_stream_finish(s, &t) == HOTPLEX_STATUS_TURN_TIMEOUT);
    hotplex_turn_stream_free(s);
    CHECK(answers(e, "h", "hello", "\"cold_start\":false"));

    /* A question waits for the host's answer, past the turn's timeout. */
    const char *red = "[\"Red\"]";
    CHECK(hotplex_engine_answer_question(e, "h", 1, "toolu_x", 7, red, strlen(red)) ==
          HOTPLEX_STATUS_QUESTION_NOT_FOUND);
    s = NULL;
    CHECK(submit(e, "h", "ask:Which color? Red | Blue", "{\"timeout\":0.3}", &s) ==
              HOTPLEX_STATUS_OK && s);
    char qid[128] = "";
    while (s && !qid[0]) {
        char *qev = NULL;
        if (hotplex_turn_stream_next(s, -1, &qev) != HOTPLEX_STATUS_OK || !qev) break;
        if (strstr(qev, "\"type\":\"ask_user_question\""))
            json_string(qev, "question_id", qid, sizeof qid);
        hotplex_string_free(qev);
    }
    CHECK(qid[0]);
    nanosleep(&(struct timespec){.tv_nsec = 600000000}, NULL); /* twice the timeout */
    const char *shape = "{\"Which shape?\":\"Round\"}";
    CHECK(hotplex_engine_answer_question(e, "h", 1, qid, strlen(qid), shape, strlen(shape)) ==
          HOTPLEX_STATUS_INVALID_ANSWER);
    CHECK(hotplex_engine_answer_question(e, "h", 1, qid, strlen(qid), "{", 1) ==
          HOTPLEX_STATUS_INVALID_ANSWER);
    const char *blue = "{\"Which color?\":\"Blue\"}";
    CHECK(hotplex_engine_answer_question(e, "h", 1, qid, strlen(qid), blue, strlen(blue)) ==
          HOTPLEX_STATUS_OK);
    t = NULL;
    CHECK(s && hotplex_turn_stream_finish(s, &t) == HOTPLEX_STATUS_OK);
    CHECK(t && strstr(t, "\\\"Which color?\\\"=\\\"Blue\\\""));
    hotplex_string_free(t);
    hotplex_turn_stream_free(s);

    /* A plan (the session is in plan mode): rejected with feedback, revised,
     * approved into acceptEdits. */
    CHECK(hotplex_engine_approve_plan(e, "h", 1, true, NULL, 0, NULL, 0) ==
          HOTPLEX_STATUS_QUESTION_NOT_FOUND);
    s = NULL;
    CHECK(submit(e, "h", "plan:# Plan C", NULL, &s) == HOTPLEX_STATUS_OK && s);
    int proposals = 0;
    for (;;) {
        char *pev = NULL;
        if (!s || hotplex_turn_stream_next(s, -1, &pev) != HOTPLEX_STATUS_OK || !pev) break;
        if (strstr(pev, "\"type\":\"exit_plan_mode\"")) {
            proposals++;
            if (proposals == 1) {
                CHECK(hotplex_engine_approve_plan(e, "h", 1, false, "add a test step", 15, NULL,
                                                  0) == HOTPLEX_STATUS_OK);
            } else {
                CHECK(strstr(pev, "Revised after: add a test step") != NULL);
                CHECK(hotplex_engine_approve_plan(e, "h", 1, false, NULL, 0, "acceptEdits", 11) ==
                      HOTPLEX_STATUS_INVALID_ANSWER);
                CHECK(hotplex_engine_approve_plan(e, "h", 1, true, NULL, 0, "acceptEdits", 11) ==
                      HOTPLEX_STATUS_OK);
            }
        }
        hotplex_string_free(pev);
    }
    CHECK(proposals == 2);
    t = NULL;
    CHECK(s && hotplex_turn_stream_finish(s, &t) == HOTPLEX_STATUS_OK);
    CHECK(t && strstr(t, "plan approved after 1 rejections; mode: acceptEdits"));
    hotplex_string_free(t);
    hotplex_turn_stream_free(s);
    CHECK(answers(e, "h", "mode?", "mode: acceptEdits"));

    /* Reset: the next turn starts a new conversation. */
    CHECK(answers(e, "r", "remember me", "echo: remember me"));
    CHECK(answers(e, "r", "recall", "history: remember me"));
    CHECK(hotplex_engine_reset_session(e, "r", 1, false) == HOTPLEX_STATUS_OK);
    hotplex_status st = HOTPLEX_STATUS_OK;
    t = turn_of(e, "r", "recall", NULL, &st);
    CHECK(st == HOTPLEX_STATUS_OK && t && !strstr(t, "remember me"));
    hotplex_string_free(t);
    /* A session never used can be reset too. */
    CHECK(hotplex_engine_reset_session(e, "never", 5, true) == HOTPLEX_STATUS_OK);

    /* Fork: the new id remembers, then both continue separately. */
    CHECK(answers(e, "f", "alpha", "echo: alpha"));
    CHECK(hotplex_engine_fork_session(e, "f", 1, "f2", 2, NULL, 0) == HOTPLEX_STATUS_OK);
    CHECK(answers(e, "f2", "beta", "echo: beta"));
    CHECK(answers(e, "f2", "recall", "history: alpha | beta"));
    t = turn_of(e, "f", "recall", NULL, &st);
    CHECK(st == HOTPLEX_STATUS_OK && t && strstr(t, "history: alpha") && !strstr(t, "beta"));
    hotplex_string_free(t);
    CHECK(hotplex_engine_fork_session(e, "nothing-yet", 11, "x2", 2, NULL, 0) ==
          HOTPLEX_STATUS_SESSION_NOT_FOUND);
    CHECK(hotplex_engine_fork_session(e, "f", 1, "f", 1, NULL, 0) == HOTPLEX_STATUS_INVALID_ARGUMENT);
    CHECK(hotplex_engine_fork_session(e, "f", 1, "f2", 2, NULL, 0) == HOTPLEX_STATUS_INVALID_ARGUMENT);
    /* A fork point that is not a message id. */
    CHECK(hotplex_engine_fork_session(e, "f", 1, "f4", 2, "not an id", 9) ==
          HOTPLEX_STATUS_INVALID_ARGUMENT);

    /* Session options: max_turns and a JSON schema, as the CLI does them;
     * per-turn instructions. */
    t = turn_of(e, "o", "tools:3", "{\"session\":{\"max_turns\":2}}", &st);
    CHECK(st == HOTPLEX_STATUS_TURN_FAILED && !t);
    const char *detail = hotplex_last_error_detail();
    CHECK(detail && strstr(detail, "error_max_turns"));
    t = turn_of(e, "o", "json:{\"n\":1}",
                "{\"session\":{\"max_turns\":2,\"json_schema\":{\"type\":\"object\"}}}", &st);
    CHECK(st == HOTPLEX_STATUS_OK && t && strstr(t, "\"structured_output\":{\"n\":1}"));
    hotplex_string_free(t);
    t = turn_of(e, "o", "args?", "{\"session\":{\"model\":\"m-2\",\"effort\":\"low\"}}", &st);
    CHECK(st == HOTPLEX_STATUS_OK && t && strstr(t, "--model m-2") && strstr(t, "--effort low"));
    hotplex_string_free(t);
    t = turn_of(e, "o", "images?",
                "{\"images\":[{\"media_type\":\"image/png\",\"data\":\"iVBORw0KGgo=\"}]}", &st);
    CHECK(st == HOTPLEX_STATUS_OK && t && strstr(t, "images: 1"));
    hotplex_string_free(t);
    t = turn_of(e, "o", "x", "{\"session\":{\"max_turns\":0}}", &st);
    CHECK(st == HOTPLEX_STATUS_INVALID_CONFIG && !t);

    /* Spares: once one is up, a new conversation with the profile's
     * options answers on it (no cold start); bad profiles are refused. */
    const char *profile = "{\"spares\":1,\"session\":{\"model\":\"spare-model\"}}";
    CHECK(hotplex_engine_prewarm(e, profile, strlen(profile)) == HOTPLEX_STATUS_OK);
    bool up = false;
    for (int i = 0; i < 500 && !up; i++) {
        char *metrics = NULL;
        if (hotplex_engine_metrics_text(e, &metrics) == HOTPLEX_STATUS_OK && metrics) {
            up = strstr(metrics, "\nhotplex_spares{status=\"ready\"} 1\n") != NULL;
            hotplex_string_free(metrics);
        }
        if (!up) nanosleep(&(struct timespec){.tv_nsec = 20000000}, NULL);
    }
    CHECK(up);
    t = turn_of(e, "p", "model?", "{\"session\":{\"model\":\"spare-model\"}}", &st);
    CHECK(st == HOTPLEX_STATUS_OK && t && strstr(t, "model: spare-model") &&
          strstr(t, "\"cold_start\":false"));
    hotplex_string_free(t);
    CHECK(hotplex_engine_prewarm(e, "{\"spares\":-1}", 13) == HOTPLEX_STATUS_INVALID_CONFIG);
    CHECK(hotplex_engine_prewarm(e, "{\"spares\":1,\"count\":1}", 22) ==
          HOTPLEX_STATUS_INVALID_CONFIG);

    CHECK(hotplex_engine_close(e) == HOTPLEX_STATUS_OK);
    /* After close: CLOSED, and no callback runs any more. */
    CHECK(hotplex_engine_set_model(e, "h", 1, NULL, 0) == HOTPLEX_STATUS_CLOSED);
    CHECK(hotplex_engine_reset_session(e, "h", 1, false) == HOTPLEX_STATUS_CLOSED);
    CHECK(hotplex_engine_fork_session(e, "f", 1, "f3", 2, NULL, 0) == HOTPLEX_STATUS_CLOSED);
    CHECK(hotplex_engine_prewarm(e, profile, strlen(profile)) == HOTPLEX_STATUS_CLOSED);
    hotplex_engine_free(e);

    /* An agent without the live controls (as an old CLI): UNSUPPORTED. */
    char old[4096];
    snprintf(old, sizeof old,
             "{\"binary\":\"%s\",\"args\":[\"--no-live-controls\"],"
             "\"env\":{\"HOTPLEX_REF_STATE\":\"%s\"},\"default_workdir\":\"%s/work\"}",
             agent, tmp, tmp);
    CHECK(hotplex_engine_new(old, strlen(old), &e) == HOTPLEX_STATUS_OK && e);
    if (!e) return;
    CHECK(answers(e, "u", "hello", "echo: hello"));
    CHECK(hotplex_engine_set_model(e, "u", 1, "m", 1) == HOTPLEX_STATUS_UNSUPPORTED);
    CHECK(hotplex_engine_context_usage(e, "u", 1, &json) == HOTPLEX_STATUS_UNSUPPORTED);
    CHECK(hotplex_engine_close(e) == HOTPLEX_STATUS_OK);
    hotplex_engine_free(e);
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

    /* A blocked prompt through hotplex_engine_start(): a danger_block event
     * first, then DANGER_BLOCKED with the verdict. */
    CHECK(hotplex_engine_start(e, "s", 1, "rm -rf /", 8, NULL, 0, &s) == HOTPLEX_STATUS_OK && s);
    char *blocked = NULL;
    CHECK(hotplex_turn_stream_next(s, -1, &blocked) == HOTPLEX_STATUS_OK && blocked);
    CHECK(blocked && strstr(blocked, "\"type\":\"danger_block\"") && strstr(blocked, "critical"));
    hotplex_string_free(blocked);
    CHECK(hotplex_turn_stream_next(s, -1, &blocked) == HOTPLEX_STATUS_OK && blocked == NULL);
    CHECK(hotplex_turn_stream_finish(s, &turn) == HOTPLEX_STATUS_DANGER_BLOCKED);
    detail = hotplex_last_error_detail();
    CHECK(detail && strstr(detail, "\"verdict\""));
    hotplex_turn_stream_free(s);
    /* start fails only for bad arguments. */
    s = NULL;
    CHECK(hotplex_engine_start(e, "s", 1, "x", 1, "{\"timeout\":-1}", 14, &s) ==
          HOTPLEX_STATUS_INVALID_CONFIG);
    CHECK(hotplex_engine_start(e, "s", 1, "\xff", 1, NULL, 0, &s) == HOTPLEX_STATUS_UTF8);
    CHECK(hotplex_engine_start(NULL, "s", 1, "x", 1, NULL, 0, &s) ==
          HOTPLEX_STATUS_INVALID_ARGUMENT);
    CHECK(s == NULL);

    /* Bad options name the option; a missing binary fails at once. */
    CHECK(rejects_option("{\"turn_timeout\":-1}", "turn_timeout"));
    CHECK(rejects_option("{\"max_sessions\":-1}", "max_sessions"));
    CHECK(rejects_option("{\"max_sessions\":0}", "max_sessions"));
    CHECK(rejects_option("{\"env\":{\"A\":1}}", "env.A"));
    CHECK(rejects_option("{\"bogus\":1}", "bogus"));
    CHECK(rejects_option("[1]", "object"));
    CHECK(rejects_option("{nope", "options_json"));
    CHECK(rejects_option("{\"binary\":\"/nonexistent/agent\"}", "/nonexistent/agent"));
    CHECK(hotplex_engine_new(NULL, 0, NULL) == HOTPLEX_STATUS_INVALID_ARGUMENT);
    CHECK(hotplex_engine_submit(NULL, "s", 1, "x", 1, NULL, 0, &s) ==
          HOTPLEX_STATUS_INVALID_ARGUMENT);
    CHECK(hotplex_engine_submit(e, "s", 1, "\xff", 1, NULL, 0, &s) == HOTPLEX_STATUS_UTF8);
    CHECK(hotplex_turn_stream_next(NULL, 0, &ev) == HOTPLEX_STATUS_INVALID_ARGUMENT);
    CHECK(hotplex_engine_close(NULL) == HOTPLEX_STATUS_INVALID_ARGUMENT);
    hotplex_turn_stream_free(NULL);
    hotplex_engine_free(NULL);

    /* A follow-up turn without workdir continues where the session is. */
    char workdir_opts[4200];
    snprintf(workdir_opts, sizeof workdir_opts, "{\"workdir\":\"%s/elsewhere\"}", argv[2]);
    CHECK(run(e, "w", "first", workdir_opts, &turn, NULL, NULL) == HOTPLEX_STATUS_OK);
    CHECK(turn && strstr(turn, "\"cold_start\":true"));
    hotplex_string_free(turn);
    CHECK(run(e, "w", "recall", NULL, &turn, NULL, NULL) == HOTPLEX_STATUS_OK);
    CHECK(turn && strstr(turn, "history: first") && strstr(turn, "\"cold_start\":false"));
    hotplex_string_free(turn);

    /* The session_stats event costs what the turn costs, every turn. */
    for (int i = 0; i < 3; i++) {
        CHECK(run(e, "c", "cost", NULL, &turn, NULL, NULL) == HOTPLEX_STATUS_OK);
        double cost = json_number(turn, "cost_usd");
        CHECK(cost > 0 && cost == json_number(last_stats, "cost_usd"));
        hotplex_string_free(turn);
    }

    /* Status names are the contract's. */
    CHECK(strcmp(hotplex_status_name(HOTPLEX_STATUS_OK), "ok") == 0);
    CHECK(strcmp(hotplex_status_name(HOTPLEX_STATUS_INVALID_CONFIG), "invalid_config") == 0);
    CHECK(strcmp(hotplex_status_name(HOTPLEX_STATUS_CONTAINMENT), "containment") == 0);
    CHECK(strcmp(hotplex_status_name(HOTPLEX_STATUS_SESSION_NOT_FOUND), "session_not_found") == 0);
    CHECK(strcmp(hotplex_status_name(HOTPLEX_STATUS_UNSUPPORTED), "unsupported") == 0);
    CHECK(strcmp(hotplex_status_name(HOTPLEX_STATUS_CONTROL_FAILED), "control_failed") == 0);
    CHECK(strcmp(hotplex_status_name(99), "unknown") == 0);

    /* Stop, close, then everything is CLOSED. */
    bool existed = false;
    CHECK(hotplex_engine_stop_session(e, "s", 1, &existed) == HOTPLEX_STATUS_OK && existed);
    CHECK(hotplex_engine_stop_session(e, "s", 1, &existed) == HOTPLEX_STATUS_OK && !existed);
    CHECK(hotplex_engine_close(e) == HOTPLEX_STATUS_OK);
    CHECK(hotplex_engine_close(e) == HOTPLEX_STATUS_OK);
    CHECK(submit(e, "s", "x", NULL, &s) == HOTPLEX_STATUS_CLOSED);
    hotplex_engine_free(e);

    /* The permission callback: the host's answer JSON, read by the core's
     * one rule; whatever is not an explicit allow denies. */
    struct permission_host host = {0};
    hotplex_engine *pe = NULL;
    CHECK(hotplex_engine_new_with_permission(opts, strlen(opts), on_permission, &host, &pe) ==
              HOTPLEX_STATUS_OK &&
          pe);
    char *t = tool_turn(pe, &host, "true", "ls");
    CHECK(t && strstr(t, "tool ran: ls") && host.calls == 1);
    CHECK(strstr(host.request, "\"session_id\":\"p\"") &&
          strstr(host.request, "\"tool_name\":\"Bash\"") &&
          strstr(host.request, "\"command\":\"ls\"") && strstr(host.request, "\"verdict\""));
    /* The agent's context of the call: its suggestions, the tool_use_id. */
    CHECK(strstr(host.request, "\"context\":{") &&
          strstr(host.request, "\"permission_suggestions\"") &&
          strstr(host.request, "\"tool_use_id\""));
    hotplex_string_free(t);
    t = tool_turn(pe, &host, "{\"behavior\":\"deny\",\"message\":\"not today\"}", "ls");
    CHECK(t && strstr(t, "tool denied: ls") && strstr(t, "not today"));
    hotplex_string_free(t);
    t = tool_turn(pe, &host, "\"ask a human\"", "ls");
    CHECK(t && strstr(t, "tool denied: ls") && strstr(t, "ask a human"));
    hotplex_string_free(t);
    t = tool_turn(pe, &host, "false", "ls");
    CHECK(t && strstr(t, "tool denied: ls"));
    hotplex_string_free(t);
    const char *unexpected[] = {"42", "[]", "{\"behavior\":\"maybe\"}", "null x"};
    for (size_t i = 0; i < sizeof unexpected / sizeof *unexpected; i++) {
        t = tool_turn(pe, &host, unexpected[i], "ls");
        CHECK(t && strstr(t, "tool denied: ls"));
        hotplex_string_free(t);
    }
    CHECK(host.set_status == HOTPLEX_STATUS_INVALID_ARGUMENT); /* "null x" */
    t = tool_turn(pe, &host, NULL, "ls"); /* sets nothing */
    CHECK(t && strstr(t, "tool denied: ls") && strstr(t, "set no answer"));
    hotplex_string_free(t);
    host.twice = true;
    t = tool_turn(pe, &host, "true", "ls");
    CHECK(t && strstr(t, "tool denied: ls") && host.set_status == HOTPLEX_STATUS_INVALID_ARGUMENT);
    hotplex_string_free(t);
    host.twice = false;
    t = tool_turn(pe, &host,
                  "{\"behavior\":\"allow\",\"updatedInput\":{\"command\":\"make check\"}}",
                  "ls");
    CHECK(t && strstr(t, "\"text\":\"tool ran: make check\""));
    hotplex_string_free(t);
    /* A rewritten input is screened by the WAF again. */
    t = tool_turn(pe, &host, "{\"behavior\":\"allow\",\"updatedInput\":{\"command\":\"rm -rf /\"}}",
                  "ls");
    CHECK(t && strstr(t, "tool denied") && strstr(t, "danger_block"));
    hotplex_string_free(t);
    /* The WAF decides before the host: a blocked call never reaches it. */
    t = tool_turn(pe, &host, "true", "rm -rf /");
    CHECK(t && strstr(t, "tool denied: rm -rf /") && host.calls == 0);
    hotplex_string_free(t);
    CHECK(hotplex_permission_answer_set(NULL, "true", 4) == HOTPLEX_STATUS_INVALID_ARGUMENT);
    CHECK(hotplex_engine_close(pe) == HOTPLEX_STATUS_OK);
    hotplex_engine_free(pe);

    /* Telemetry. Logs: process-wide, levels 0 (trace) .. 4 (error). */
    struct logged logs = {0};
    CHECK(hotplex_set_log_callback(5, on_log, &logs) == HOTPLEX_STATUS_INVALID_ARGUMENT);
    CHECK(hotplex_set_log_callback(-1, NULL, NULL) == HOTPLEX_STATUS_INVALID_ARGUMENT);
    CHECK(hotplex_set_log_callback(HOTPLEX_LOG_INFO, on_log, &logs) == HOTPLEX_STATUS_OK);

    /* The callbacks struct: size is required, unknown fields must be zero. */
    struct observed obs = {0};
    hotplex_engine *te = NULL;
    hotplex_engine_callbacks cb = {0};
    CHECK(hotplex_engine_new_with_callbacks(opts, strlen(opts), &cb, &te) ==
          HOTPLEX_STATUS_INVALID_ARGUMENT);
    struct {
        hotplex_engine_callbacks cb;
        void *newer_callback;
    } newer = {{sizeof newer, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL}, (void *)on_log};
    CHECK(hotplex_engine_new_with_callbacks(opts, strlen(opts), &newer.cb, &te) ==
          HOTPLEX_STATUS_INVALID_ARGUMENT);
    newer.newer_callback = NULL; /* a newer struct with nothing new set is fine */
    CHECK(hotplex_engine_new_with_callbacks(opts, strlen(opts), &newer.cb, &te) ==
              HOTPLEX_STATUS_OK &&
          te);
    hotplex_engine_free(te);
    te = NULL;
    CHECK(hotplex_engine_new_with_callbacks(opts, strlen(opts), &cb, NULL) ==
          HOTPLEX_STATUS_INVALID_ARGUMENT);
    cb.size = sizeof cb;
    cb.observer = on_record;
    cb.observer_data = &obs;
    CHECK(hotplex_engine_new_with_callbacks(opts, strlen(opts), &cb, &te) == HOTPLEX_STATUS_OK &&
          te);

    /* Three ok turns and a blocked prompt move the counters exactly. */
    for (int i = 0; i < 3; i++) {
        CHECK(run(te, "m", "hello", NULL, &turn, NULL, NULL) == HOTPLEX_STATUS_OK);
        hotplex_string_free(turn);
    }
    CHECK(submit(te, "m", "rm -rf /", NULL, &s) == HOTPLEX_STATUS_DANGER_BLOCKED);
    char *metrics = NULL;
    CHECK(hotplex_engine_metrics_text(te, &metrics) == HOTPLEX_STATUS_OK && metrics);
    CHECK(metrics && strstr(metrics, "hotplex_turns_total{outcome=\"ok\"} 3\n"));
    CHECK(metrics && strstr(metrics, "hotplex_turns_total{outcome=\"blocked\"} 1\n"));
    CHECK(metrics && strstr(metrics, "hotplex_session_starts_total{mode=\"fresh\"} 1\n"));
    CHECK(metrics && strstr(metrics, "hotplex_waf_checks_total{source=\"prompt\"} 4\n"));
    CHECK(metrics && strlen(metrics) > 6 &&
          strcmp(metrics + strlen(metrics) - 6, "# EOF\n") == 0);
    hotplex_string_free(metrics);
    CHECK(hotplex_engine_metrics_snapshot(te, &json) == HOTPLEX_STATUS_OK && json);
    CHECK(json && strstr(json, "\"name\":\"hotplex_turns_total\"") &&
          strstr(json, "\"type\":\"counter\"") &&
          strstr(json, "{\"outcome\":\"ok\"}"));
    hotplex_string_free(json);
    metrics = (char *)1;
    CHECK(hotplex_engine_metrics_text(NULL, &metrics) == HOTPLEX_STATUS_INVALID_ARGUMENT);
    CHECK(hotplex_engine_metrics_text(te, NULL) == HOTPLEX_STATUS_INVALID_ARGUMENT);
    CHECK(hotplex_engine_metrics_snapshot(NULL, &metrics) == HOTPLEX_STATUS_INVALID_ARGUMENT);
    CHECK(hotplex_engine_metrics_snapshot(te, NULL) == HOTPLEX_STATUS_INVALID_ARGUMENT);
    CHECK(metrics == (char *)1);

    /* Freeing a closed engine delivers what was queued, then no more calls. */
    CHECK(hotplex_engine_close(te) == HOTPLEX_STATUS_OK);
    hotplex_engine_free(te);
    CHECK(obs.turns_finished == 4);
    CHECK(strcmp(obs.outcomes, "ok,ok,ok,blocked") == 0);
    CHECK(strcmp(obs.exits, "closed") == 0);
    if (strcmp(obs.outcomes, "ok,ok,ok,blocked") != 0 || strcmp(obs.exits, "closed") != 0)
        fprintf(stderr, "observer saw outcomes [%s], exits [%s]\n", obs.outcomes, obs.exits);

    /* Turning logs off: when it returns, on_log runs no more. */
    CHECK(hotplex_set_log_callback(HOTPLEX_LOG_ERROR, NULL, NULL) == HOTPLEX_STATUS_OK);
    CHECK(logs.records > 0 && logs.info_with_session > 0);
    CHECK(strstr(logs.first, "\"target\":") && strstr(logs.first, "\"message\":"));
    if (!logs.info_with_session) fprintf(stderr, "logs: %d, first %s\n", logs.records, logs.first);

    session_limits(argv[1], argv[2]);
    control_surface(argv[1], argv[2]);

    printf("C engine: %d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
