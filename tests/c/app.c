/*
 * A C program that uses hotplex exactly as a user would: the committed header
 * and the shared library from `cargo build -p hotplex-ffi --release`.
 *
 *     cc -Wall -Wextra -Werror tests/c/app.c -Iinclude -Ltarget/release -lhotplex -o app
 *     LD_LIBRARY_PATH=target/release ./app
 *
 * Prints one line per check and "N passed, N failed" last; exits non-zero on
 * any failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hotplex.h"

static int passed = 0;
static int failed = 0;

#define CHECK(cond, what)                                                  \
    do {                                                                   \
        if (cond) {                                                        \
            passed++;                                                      \
            printf("ok   %s\n", what);                                     \
        } else {                                                           \
            failed++;                                                      \
            printf("FAIL %s (%s:%d: %s)\n", what, __FILE__, __LINE__, #cond); \
        }                                                                  \
    } while (0)

static const char *last_error(void) {
    const char *msg = hotplex_last_error_message();
    return msg ? msg : "(none)";
}

/* Checks `cmd` (a NUL-terminated string) with `d`; NULL on error. */
static hotplex_verdict *check(const hotplex_detector *d, const char *cmd) {
    hotplex_verdict *v = NULL;
    hotplex_status st = hotplex_detector_check_command(d, cmd, strlen(cmd), &v);
    if (st != HOTPLEX_STATUS_OK) {
        printf("     check_command(%s) failed: %d %s\n", cmd, (int)st, last_error());
        return NULL;
    }
    return v;
}

/* What the audit callback saw. */
struct audit_log {
    int calls;
    hotplex_check_kind last_kind;
    hotplex_level last_level;
    char last_input[64];
};

static void on_audit(void *user_data, hotplex_check_kind kind, const char *input,
                     size_t input_len, const hotplex_verdict *verdict) {
    struct audit_log *log = user_data;
    log->calls++;
    log->last_kind = kind;
    log->last_level = hotplex_verdict_level(verdict);
    size_t n = input_len < sizeof log->last_input - 1 ? input_len : sizeof log->last_input - 1;
    memcpy(log->last_input, input, n);
    log->last_input[n] = '\0';
}

static void test_versions(void) {
    CHECK(hotplex_abi_version() == HOTPLEX_ABI_VERSION, "library ABI matches the header");
    const char *version = hotplex_version();
    CHECK(version != NULL && strlen(version) > 0, "hotplex_version() is a string");
}

static void test_rm_rf_root_and_ls(void) {
    hotplex_detector *d = NULL;
    CHECK(hotplex_detector_new(&d) == HOTPLEX_STATUS_OK && d != NULL, "detector_new");
    CHECK(hotplex_last_error_message() == NULL, "no error message after success");

    hotplex_verdict *v = check(d, "rm -rf /");
    CHECK(v != NULL, "check rm -rf /");
    CHECK(hotplex_verdict_blocked(v), "rm -rf / is blocked");
    CHECK(hotplex_verdict_level(v) == HOTPLEX_LEVEL_CRITICAL, "rm -rf / is critical");
    CHECK(hotplex_verdict_category(v) == HOTPLEX_CATEGORY_FILE_DELETE, "rm -rf / is file_delete");
    CHECK(hotplex_verdict_rule_id(v) != NULL, "rm -rf / names a rule");
    CHECK(hotplex_verdict_reason(v) != NULL && strlen(hotplex_verdict_reason(v)) > 0,
          "rm -rf / has a reason");
    size_t start = 99, end = 99;
    CHECK(hotplex_verdict_span(v, &start, &end) == HOTPLEX_STATUS_OK && start < end && end <= 8,
          "rm -rf / has a span inside the input");
    CHECK(hotplex_verdict_suggestion_count(v) > 0 && hotplex_verdict_suggestion(v, 0) != NULL,
          "rm -rf / has suggestions");
    printf("     rule=%s reason=%s\n", hotplex_verdict_rule_id(v), hotplex_verdict_reason(v));

    char *json = NULL;
    CHECK(hotplex_verdict_to_json(v, &json) == HOTPLEX_STATUS_OK && json != NULL, "to_json");
    CHECK(json != NULL && strstr(json, "\"level\":\"critical\"") != NULL, "json has the level");
    CHECK(json != NULL && strstr(json, "\"blocked\":true") != NULL, "json has blocked");
    if (json) printf("     %s\n", json);
    hotplex_string_free(json);
    hotplex_verdict_free(v);

    v = check(d, "ls -la");
    CHECK(v != NULL, "check ls -la");
    CHECK(!hotplex_verdict_blocked(v), "ls -la is not blocked");
    CHECK(hotplex_verdict_level(v) == HOTPLEX_LEVEL_SAFE, "ls -la is safe");
    CHECK(hotplex_verdict_category(v) == HOTPLEX_CATEGORY_NONE, "ls -la has no category");
    CHECK(hotplex_verdict_rule_id(v) == NULL, "ls -la has no rule");
    start = end = 42;
    CHECK(hotplex_verdict_span(v, &start, &end) == HOTPLEX_STATUS_INVALID_ARGUMENT &&
              start == 42 && end == 42,
          "a safe verdict has no span; out-params untouched");
    hotplex_verdict_free(v);
    hotplex_detector_free(d);
}

static void test_errors(void) {
    hotplex_detector *d = NULL;
    if (hotplex_detector_new(&d) != HOTPLEX_STATUS_OK) {
        CHECK(0, "detector_new");
        return;
    }

    /* NULL handle: INVALID_ARGUMENT, out-param untouched, a message. */
    hotplex_verdict *sentinel = (hotplex_verdict *)&passed; /* any non-NULL address */
    hotplex_verdict *v = sentinel;
    hotplex_status st = hotplex_detector_check_command(NULL, "ls", 2, &v);
    CHECK(st == HOTPLEX_STATUS_INVALID_ARGUMENT, "NULL detector -> INVALID_ARGUMENT");
    CHECK(v == sentinel, "NULL detector leaves the out-param untouched");
    CHECK(hotplex_last_error_message() != NULL, "NULL detector sets an error message");
    printf("     message: %s\n", last_error());

    CHECK(hotplex_detector_check_command(d, "ls", 2, NULL) == HOTPLEX_STATUS_INVALID_ARGUMENT,
          "NULL out-param -> INVALID_ARGUMENT");
    CHECK(hotplex_detector_new(NULL) == HOTPLEX_STATUS_INVALID_ARGUMENT,
          "detector_new(NULL) -> INVALID_ARGUMENT");

    /* Invalid UTF-8: HOTPLEX_STATUS_UTF8. */
    const char bad[] = {'l', 's', ' ', (char)0xff, (char)0xfe};
    v = sentinel;
    st = hotplex_detector_check_command(d, bad, sizeof bad, &v);
    CHECK(st == HOTPLEX_STATUS_UTF8, "invalid UTF-8 -> HOTPLEX_STATUS_UTF8");
    CHECK(v == sentinel, "invalid UTF-8 leaves the out-param untouched");
    printf("     message: %s\n", last_error());

    /* Tool input must be a JSON object. */
    v = sentinel;
    st = hotplex_detector_check_tool(d, "Bash", 4, "[]", 2, &v);
    CHECK(st == HOTPLEX_STATUS_INVALID_ARGUMENT && v == sentinel,
          "tool input that is not an object -> INVALID_ARGUMENT");
    const char *tool_json = "{\"command\": \"rm -rf /\"}";
    v = NULL;
    st = hotplex_detector_check_tool(d, "Bash", 4, tool_json, strlen(tool_json), &v);
    CHECK(st == HOTPLEX_STATUS_OK && hotplex_verdict_blocked(v), "Bash tool rm -rf / is blocked");
    hotplex_verdict_free(v);

    /* Accessors on NULL fail closed. */
    CHECK(hotplex_verdict_blocked(NULL), "blocked(NULL) is true");
    CHECK(hotplex_verdict_level(NULL) == HOTPLEX_LEVEL_CRITICAL, "level(NULL) is critical");
    hotplex_detector_free(NULL);
    hotplex_verdict_free(NULL);
    hotplex_detector_builder_free(NULL);
    hotplex_string_free(NULL);
    CHECK(1, "every *_free accepts NULL");

    hotplex_detector_free(d);
}

static void test_builder_and_audit(void) {
    hotplex_detector_builder *b = NULL;
    CHECK(hotplex_detector_builder_new(&b) == HOTPLEX_STATUS_OK, "builder_new");
    if (b == NULL) return;

    /* A bad custom rule: INVALID_RULE, the message names the line. */
    const char *bad_rules = "# my rules\n"
                            "deploy\\s+--prod|Deploys to production|high|system\n"
                            "oops|an unknown level|severe|system\n";
    hotplex_status st = hotplex_detector_builder_add_rules(b, bad_rules, strlen(bad_rules));
    const char *msg = hotplex_last_error_message();
    CHECK(st == HOTPLEX_STATUS_INVALID_RULE, "bad rule -> INVALID_RULE");
    CHECK(msg != NULL && strstr(msg, "line 3") != NULL, "the message names line 3");
    printf("     message: %s\n", msg ? msg : "(none)");

    const char *rules = "deploy\\s+--prod|Deploys to production|high|system\n";
    CHECK(hotplex_detector_builder_add_rules(b, rules, strlen(rules)) == HOTPLEX_STATUS_OK,
          "a good rule is accepted");

    struct audit_log log = {0};
    CHECK(hotplex_detector_builder_set_audit_callback(b, on_audit, &log) == HOTPLEX_STATUS_OK,
          "set_audit_callback");
    hotplex_detector *d = NULL;
    CHECK(hotplex_detector_builder_build(b, &d) == HOTPLEX_STATUS_OK && d != NULL, "build");
    hotplex_detector_builder_free(b);
    if (d == NULL) return;

    hotplex_verdict *v = check(d, "ls -la");
    hotplex_verdict_free(v);
    CHECK(log.calls == 0, "a safe verdict is not audited");

    v = check(d, "deploy --prod");
    CHECK(hotplex_verdict_level(v) == HOTPLEX_LEVEL_HIGH, "the custom rule matches");
    hotplex_verdict_free(v);
    CHECK(log.calls == 1, "the audit callback ran once");
    CHECK(log.last_kind == HOTPLEX_CHECK_KIND_COMMAND, "audit kind is COMMAND");
    CHECK(log.last_level == HOTPLEX_LEVEL_HIGH, "audit saw the verdict");
    CHECK(strcmp(log.last_input, "deploy --prod") == 0, "audit saw the input");

    const char *prompt = "please run `rm -rf /` for me";
    v = NULL;
    CHECK(hotplex_detector_check_prompt(d, prompt, strlen(prompt), &v) == HOTPLEX_STATUS_OK &&
              hotplex_verdict_blocked(v),
          "a prompt with rm -rf / in code is blocked");
    hotplex_verdict_free(v);
    CHECK(log.calls == 2 && log.last_kind == HOTPLEX_CHECK_KIND_PROMPT, "audit kind is PROMPT");

    hotplex_detector_free(d);
}

static void test_explain(void) {
    hotplex_detector *d = NULL;
    if (hotplex_detector_new(&d) != HOTPLEX_STATUS_OK) {
        CHECK(0, "detector_new");
        return;
    }

    const char *cmd = "echo hi | sudo rm -rf /";
    char *json = NULL;
    hotplex_status st = hotplex_detector_explain(d, cmd, strlen(cmd), &json);
    CHECK(st == HOTPLEX_STATUS_OK && json != NULL, "explain");
    CHECK(json != NULL && strstr(json, "\"hits\":[{") != NULL, "explain lists hits");
    CHECK(json != NULL && strstr(json, "\"pipelines\":[\"") != NULL, "explain lists pipelines");
    CHECK(json != NULL && strstr(json, "\"verdict\":{\"level\":\"critical\"") != NULL,
          "explain has the verdict");
    if (json) printf("     %s\n", json);
    hotplex_string_free(json);

    /* Errors leave the out-param untouched. */
    char *sentinel = (char *)&passed; /* any non-NULL address */
    json = sentinel;
    st = hotplex_detector_explain(NULL, "ls", 2, &json);
    CHECK(st == HOTPLEX_STATUS_INVALID_ARGUMENT && json == sentinel,
          "explain with a NULL detector -> INVALID_ARGUMENT");
    const char bad[] = {'l', 's', ' ', (char)0xff};
    st = hotplex_detector_explain(d, bad, sizeof bad, &json);
    CHECK(st == HOTPLEX_STATUS_UTF8 && json == sentinel, "explain invalid UTF-8 -> UTF8");
    CHECK(hotplex_detector_explain(d, "ls", 2, NULL) == HOTPLEX_STATUS_INVALID_ARGUMENT,
          "explain with a NULL out-param -> INVALID_ARGUMENT");

    hotplex_detector_free(d);
}

int main(void) {
    printf("hotplex %s (ABI %u)\n", hotplex_version(), (unsigned)hotplex_abi_version());
    test_versions();
    test_rm_rf_root_and_ls();
    test_errors();
    test_builder_and_audit();
    test_explain();
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
