/* Turns without blocking reads, driving the bundled reference agent:
 *   - the pollable descriptor of a stream (hotplex_turn_stream_fd): wait in
 *     poll(), drain with a zero timeout, finish; level-triggered (readable
 *     exactly while something is queued, and from the end on);
 *   - hotplex_turn_stream_cancel() from another thread while the host waits,
 *     and the session is hot for the next turn;
 *   - the callback form (hotplex_engine_start_with_callback): events in
 *     order, one final call, destroy exactly once: after a turn, a cancelled
 *     turn, a failed start, and an engine freed first;
 *   - a stream that outlives its engine.
 * Built normally and under AddressSanitizer + UBSan by tests/run-c-go.sh.
 * Usage: poll <reference-agent> <tmpdir> */

#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hotplex.h"

#include "check.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Whether fd polls readable within timeout_ms. */
static bool readable(int fd, int timeout_ms) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int n;
    do {
        n = poll(&p, 1, timeout_ms);
    } while (n < 0 && errno == EINTR);
    return n == 1 && (p.revents & POLLIN);
}

static hotplex_status start(hotplex_engine *e, const char *id, const char *prompt,
                            hotplex_turn_stream **s) {
    return hotplex_engine_start(e, id, strlen(id), prompt, strlen(prompt), NULL, 0, s);
}

/* The way a poll()-based host runs a turn: wait for the descriptor, drain
 * with a zero timeout, repeat until the end, then finish. Counts the events
 * and the wake-ups; checks that readable always means "next(0) returns". */
struct polled {
    int events, wakeups, answers;
    char first_type[64];
};

static hotplex_status poll_turn(hotplex_turn_stream *s, struct polled *out, char **turn) {
    int fd = -1;
    CHECK(hotplex_turn_stream_fd(s, &fd) == HOTPLEX_STATUS_OK && fd >= 0);
    int again = -1;
    CHECK(hotplex_turn_stream_fd(s, &again) == HOTPLEX_STATUS_OK && again == fd);
    for (;;) {
        if (!readable(fd, 20000)) {
            CHECK(!"the descriptor did not become readable in 20 s");
            break;
        }
        out->wakeups++;
        bool over = false;
        int taken = 0;
        for (;;) {
            char *ev = NULL;
            hotplex_status st = hotplex_turn_stream_next(s, 0, &ev);
            if (st == HOTPLEX_STATUS_PENDING) break;
            CHECK(st == HOTPLEX_STATUS_OK);
            if (st != HOTPLEX_STATUS_OK || !ev) {
                over = true;
                break;
            }
            taken++;
            const char *type = strstr(ev, "\"type\":\"");
            if (out->events++ == 0 && type) sscanf(type, "\"type\":\"%63[^\"]", out->first_type);
            if (strstr(ev, "\"type\":\"answer\"")) out->answers++;
            hotplex_string_free(ev);
        }
        /* Readable promised something: an event or the end. */
        CHECK(taken > 0 || over);
        if (over) break;
    }
    /* At the end it stays readable (like a socket at end of file). */
    CHECK(readable(fd, 0));
    return hotplex_turn_stream_finish(s, turn);
}

struct canceller {
    hotplex_turn_stream *s;
    int delay_ms;
    hotplex_status status;
};

static void *cancel_later(void *arg) {
    struct canceller *c = arg;
    struct timespec d = {c->delay_ms / 1000, (long)(c->delay_ms % 1000) * 1000000L};
    nanosleep(&d, NULL);
    c->status = hotplex_turn_stream_cancel(c->s);
    return NULL;
}

/* A callback turn's host: what it saw, and a condition to wait for destroy. */
struct host {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int events;
    bool in_order; /* session_start first, nothing after the final call */
    int done_calls;
    int destroy_calls;
    int events_after_done;
    hotplex_status status;
    char text[8192];
    char detail[1024];
    hotplex_turn_stream *cancel_on_first_event; /* set: cancel from on_event */
};

static void host_init(struct host *h) {
    memset(h, 0, sizeof *h);
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    h->in_order = true;
    h->status = (hotplex_status)-1;
}

static void host_fini(struct host *h) {
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
}

static void on_event(void *user_data, const char *event_json, size_t len) {
    struct host *h = user_data;
    pthread_mutex_lock(&h->mu);
    if (h->done_calls) h->events_after_done++;
    if (h->events == 0 && !strstr(event_json, "\"type\":\"session_start\"")) h->in_order = false;
    if (strlen(event_json) != len) h->in_order = false;
    h->events++;
    hotplex_turn_stream *c = h->cancel_on_first_event;
    h->cancel_on_first_event = NULL;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    if (c) hotplex_turn_stream_cancel(c);
}

static void on_done(void *user_data, hotplex_status status, const char *text, size_t len) {
    struct host *h = user_data;
    pthread_mutex_lock(&h->mu);
    h->done_calls++;
    h->status = status;
    snprintf(h->text, sizeof h->text, "%.*s", (int)len, text);
    /* During a failed final call the thread's last error is the turn's. */
    const char *m = hotplex_last_error_message();
    if (status != HOTPLEX_STATUS_OK && (!m || strcmp(m, h->text) != 0)) h->in_order = false;
    const char *d = hotplex_last_error_detail();
    snprintf(h->detail, sizeof h->detail, "%s", d ? d : "");
    pthread_mutex_unlock(&h->mu);
}

static void on_destroy(void *user_data) {
    struct host *h = user_data;
    pthread_mutex_lock(&h->mu);
    if (!h->done_calls && h->status != (hotplex_status)-1) h->in_order = false;
    h->destroy_calls++;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

/* Waits (up to 20 s) until destroy ran, or the given number of events came. */
static bool host_wait(struct host *h, int events) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 20;
    pthread_mutex_lock(&h->mu);
    int rc = 0;
    while (rc == 0 && !h->destroy_calls && (events == 0 || h->events < events))
        rc = pthread_cond_timedwait(&h->cv, &h->mu, &deadline);
    bool ok = rc == 0;
    pthread_mutex_unlock(&h->mu);
    return ok;
}

static hotplex_status start_cb(hotplex_engine *e, const char *id, const char *prompt,
                               const char *topts, struct host *h, hotplex_turn_stream **out) {
    return hotplex_engine_start_with_callback(e, id, strlen(id), prompt, strlen(prompt), topts,
                                              topts ? strlen(topts) : 0, on_event, on_done, h,
                                              on_destroy, out);
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
    if (!e) return 1;

    /* 1. A whole turn through poll(): many events, drained in batches. */
    hotplex_turn_stream *s = NULL;
    CHECK(start(e, "p", "flood:50", &s) == HOTPLEX_STATUS_OK && s);
    struct polled got = {0};
    char *turn = NULL;
    CHECK(poll_turn(s, &got, &turn) == HOTPLEX_STATUS_OK && turn);
    CHECK(strcmp(got.first_type, "session_start") == 0);
    CHECK(got.answers >= 51 && got.events > got.answers);
    CHECK(got.wakeups >= 1 && got.wakeups <= got.events + 1);
    CHECK(turn && strstr(turn, "\"text\":\"echo: flood:50\""));
    hotplex_string_free(turn);
    /* Spent: reading again fails, the descriptor is still the stream's. */
    char *ev = (char *)1;
    CHECK(hotplex_turn_stream_next(s, 0, &ev) == HOTPLEX_STATUS_INVALID_ARGUMENT && ev == (char *)1);
    hotplex_turn_stream_free(s);
    hotplex_turn_stream_free(NULL);

    /* Argument checks. */
    int fd = -7;
    CHECK(hotplex_turn_stream_fd(NULL, &fd) == HOTPLEX_STATUS_INVALID_ARGUMENT && fd == -7);
    CHECK(hotplex_turn_stream_cancel(NULL) == HOTPLEX_STATUS_INVALID_ARGUMENT);

    /* 2. Level-triggered: not readable while the turn stalls with nothing
     * queued; a cancel from another thread wakes the waiting host at once. */
    CHECK(start(e, "p", "stall:8000", &s) == HOTPLEX_STATUS_OK && s);
    CHECK(hotplex_turn_stream_fd(s, &fd) == HOTPLEX_STATUS_OK && fd >= 0);
    CHECK(hotplex_turn_stream_fd(s, NULL) == HOTPLEX_STATUS_INVALID_ARGUMENT);
    CHECK(readable(fd, 20000)); /* session_start */
    int events = 0;
    while (hotplex_turn_stream_next(s, 0, &ev) == HOTPLEX_STATUS_OK && ev) {
        events++;
        hotplex_string_free(ev);
    }
    CHECK(events == 1);
    CHECK(!readable(fd, 0));
    CHECK(hotplex_turn_stream_next(s, 0, &ev) == HOTPLEX_STATUS_PENDING);
    CHECK(hotplex_turn_stream_next(s, 50, &ev) == HOTPLEX_STATUS_PENDING);
    struct canceller c = {s, 200, (hotplex_status)-1};
    pthread_t t;
    double t0 = now_s();
    CHECK(pthread_create(&t, NULL, cancel_later, &c) == 0);
    CHECK(readable(fd, 20000));
    double waited = now_s() - t0;
    pthread_join(t, NULL);
    CHECK(c.status == HOTPLEX_STATUS_OK);
    CHECK(waited < 4.0);
    ev = (char *)1;
    CHECK(hotplex_turn_stream_next(s, 0, &ev) == HOTPLEX_STATUS_OK && ev == NULL);
    CHECK(readable(fd, 0));
    CHECK(hotplex_turn_stream_finish(s, &turn) == HOTPLEX_STATUS_TURN_TIMEOUT);
    CHECK(hotplex_turn_stream_cancel(s) == HOTPLEX_STATUS_OK); /* idempotent */
    hotplex_turn_stream_free(s);
    /* The interrupt was clean: the next turn on the session is hot. */
    CHECK(start(e, "p", "hello", &s) == HOTPLEX_STATUS_OK && s);
    CHECK(hotplex_turn_stream_finish(s, &turn) == HOTPLEX_STATUS_OK && turn);
    CHECK(turn && strstr(turn, "\"cold_start\":false") && strstr(turn, "echo: hello"));
    hotplex_string_free(turn);
    hotplex_turn_stream_free(s);

    /* 3. A cancel while another thread is blocked in next(-1). */
    CHECK(start(e, "p", "stall:8000", &s) == HOTPLEX_STATUS_OK && s);
    CHECK(hotplex_turn_stream_next(s, -1, &ev) == HOTPLEX_STATUS_OK && ev);
    hotplex_string_free(ev);
    c = (struct canceller){s, 200, (hotplex_status)-1};
    t0 = now_s();
    CHECK(pthread_create(&t, NULL, cancel_later, &c) == 0);
    CHECK(hotplex_turn_stream_next(s, -1, &ev) == HOTPLEX_STATUS_OK && ev == NULL);
    CHECK(now_s() - t0 < 4.0);
    pthread_join(t, NULL);
    CHECK(hotplex_turn_stream_finish(s, &turn) == HOTPLEX_STATUS_TURN_TIMEOUT);
    hotplex_turn_stream_free(s);

    /* 4. The callback form: events in order, one final call, then destroy. */
    struct host h;
    host_init(&h);
    CHECK(start_cb(e, "cb", "hi", NULL, &h, NULL) == HOTPLEX_STATUS_OK);
    CHECK(host_wait(&h, 0));
    CHECK(h.destroy_calls == 1 && h.done_calls == 1 && h.in_order);
    CHECK(h.status == HOTPLEX_STATUS_OK && strstr(h.text, "\"text\":\"echo: hi\""));
    CHECK(h.events >= 2 && h.events_after_done == 0);
    host_fini(&h);

    /* A failed turn: the status, its message and detail in the final call. */
    host_init(&h);
    CHECK(start_cb(e, "cb", "fail", NULL, &h, NULL) == HOTPLEX_STATUS_OK);
    CHECK(host_wait(&h, 0));
    CHECK(h.destroy_calls == 1 && h.done_calls == 1 && h.in_order);
    CHECK(h.status == HOTPLEX_STATUS_TURN_FAILED && strstr(h.detail, "\"turn_failed\""));
    host_fini(&h);

    /* A start that fails calls destroy (and nothing else) before returning. */
    host_init(&h);
    CHECK(start_cb(e, "cb", "hi", "{\"nope\":1}", &h, NULL) == HOTPLEX_STATUS_INVALID_CONFIG);
    CHECK(h.destroy_calls == 1 && h.done_calls == 0 && h.events == 0);
    host_fini(&h);
    host_init(&h);
    CHECK(start_cb(NULL, "cb", "hi", NULL, &h, NULL) == HOTPLEX_STATUS_INVALID_ARGUMENT);
    CHECK(h.destroy_calls == 1 && h.done_calls == 0);
    host_fini(&h);

    /* Cancelled through its handle (from inside on_event, on a hotplex
     * thread): TURN_TIMEOUT in the final call, well before the stall ends. */
    host_init(&h);
    hotplex_turn_stream *cs = NULL;
    t0 = now_s();
    pthread_mutex_lock(&h.mu);
    CHECK(start_cb(e, "cb", "stall:8000", NULL, &h, &cs) == HOTPLEX_STATUS_OK && cs);
    h.cancel_on_first_event = cs;
    pthread_mutex_unlock(&h.mu);
    CHECK(host_wait(&h, 0));
    CHECK(now_s() - t0 < 5.0);
    CHECK(h.destroy_calls == 1 && h.done_calls == 1 && h.in_order);
    CHECK(h.status == HOTPLEX_STATUS_TURN_TIMEOUT);
    CHECK(hotplex_turn_stream_next(cs, 0, &ev) == HOTPLEX_STATUS_INVALID_ARGUMENT);
    CHECK(hotplex_turn_stream_fd(cs, &fd) == HOTPLEX_STATUS_INVALID_ARGUMENT);
    hotplex_turn_stream_free(cs);
    host_fini(&h);

    /* Freed through its handle before the end: the final call and destroy
     * still come, once. */
    host_init(&h);
    CHECK(start_cb(e, "cb", "stall:8000", NULL, &h, &cs) == HOTPLEX_STATUS_OK && cs);
    CHECK(host_wait(&h, 1));
    hotplex_turn_stream_free(cs);
    CHECK(host_wait(&h, 0));
    CHECK(h.destroy_calls == 1 && h.done_calls == 1 && h.status == HOTPLEX_STATUS_TURN_TIMEOUT);
    host_fini(&h);

    /* 5. Streams and callback turns outlive their engine: their turns end. */
    CHECK(start(e, "q", "stall:8000", &s) == HOTPLEX_STATUS_OK && s);
    CHECK(hotplex_turn_stream_fd(s, &fd) == HOTPLEX_STATUS_OK);
    CHECK(hotplex_turn_stream_next(s, 20000, &ev) == HOTPLEX_STATUS_OK && ev);
    hotplex_string_free(ev);
    host_init(&h);
    CHECK(start_cb(e, "cb", "stall:8000", NULL, &h, NULL) == HOTPLEX_STATUS_OK);
    CHECK(host_wait(&h, 1));
    t0 = now_s();
    hotplex_engine_free(e);
    CHECK(readable(fd, 20000));
    while (hotplex_turn_stream_next(s, 0, &ev) == HOTPLEX_STATUS_OK && ev) hotplex_string_free(ev);
    hotplex_status st = hotplex_turn_stream_finish(s, &turn);
    CHECK(st == HOTPLEX_STATUS_CLOSED || st == HOTPLEX_STATUS_SESSION_DEAD);
    hotplex_turn_stream_free(s);
    CHECK(host_wait(&h, 0));
    CHECK(now_s() - t0 < 8.0);
    CHECK(h.destroy_calls == 1 && h.done_calls == 1 && h.in_order);
    CHECK(h.status == HOTPLEX_STATUS_CLOSED || h.status == HOTPLEX_STATUS_SESSION_DEAD);
    host_fini(&h);

    printf("C poll: %d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
