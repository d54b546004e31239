package hotplex_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	hotplex "github.com/hotplex/hotplex/bindings/go"
)

// The exact counter values of the scripted scenario, parsed with a real
// OpenMetrics parser, are checked in the promcollector module (which may
// depend on Prometheus libraries); these tests cover the binding itself.

func TestMetricsTextAndSnapshotCountTurnsAndOutliveClose(t *testing.T) {
	e := newEngine(t, nil)
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if _, err := e.Execute(ctx, "m", "hello", nil); err != nil {
			t.Fatal(err)
		}
	}
	text, err := e.MetricsText()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "hotplex_turns_total{outcome=\"ok\"} 2\n") || !strings.HasSuffix(text, "# EOF\n") {
		t.Fatalf("metrics text:\n%s", text)
	}
	families, err := e.MetricsSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]string{}
	var ok float64
	for _, f := range families {
		kinds[f.Name] = f.Type
		for _, s := range f.Samples {
			if s.Name == "hotplex_turns_total" && s.Labels["outcome"] == "ok" {
				ok = s.Value
			}
		}
	}
	if ok != 2 || kinds["hotplex_turns_total"] != "counter" || kinds["hotplex_turn_duration_seconds"] != "histogram" ||
		kinds["hotplex_build_info"] == "" || kinds["hotplex_sessions"] != "gauge" {
		t.Fatalf("ok=%v kinds=%v", ok, kinds)
	}
	// After Close: the values the engine closed with, its exit counted.
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	text, err = e.MetricsText()
	if err != nil || !strings.Contains(text, "hotplex_session_exits_total{reason=\"closed\"} 1\n") ||
		!strings.Contains(text, "hotplex_turns_total{outcome=\"ok\"} 2\n") {
		t.Fatalf("after close (%v):\n%s", err, text)
	}
	if families, err := e.MetricsSnapshot(); err != nil || len(families) == 0 {
		t.Fatalf("snapshot after close: %v %v", families, err)
	}
}

// waitFor polls cond for up to 5 s: records arrive off the turn's path.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestObserverGetsTypedRecordsInOrder(t *testing.T) {
	var mu sync.Mutex
	var got []hotplex.LifecycleRecord
	e := newEngine(t, func(o *hotplex.EngineOptions) {
		o.Observer = func(r hotplex.LifecycleRecord) {
			mu.Lock()
			got = append(got, r)
			mu.Unlock()
		}
	})
	if _, err := e.Execute(context.Background(), "o", "hello", nil); err != nil {
		t.Fatal(err)
	}
	_, err := e.Execute(context.Background(), "o", "run this: rm -rf /", nil)
	if !errors.Is(err, hotplex.ErrDangerBlocked) {
		t.Fatalf("blocked prompt: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	snapshot := func() []hotplex.LifecycleRecord {
		mu.Lock()
		defer mu.Unlock()
		return append([]hotplex.LifecycleRecord(nil), got...)
	}
	waitFor(t, "the closed exit", func() bool {
		r := snapshot()
		return len(r) > 0 && r[len(r)-1].Type == "session_exited"
	})
	var types []string
	for _, r := range snapshot() {
		// How the process tree ended depends on the agent's timing.
		if r.Type != "process_signalled" {
			types = append(types, r.Type)
		}
	}
	want := "waf_verdict,session_started,turn_finished,waf_verdict,turn_finished,session_exited"
	if strings.Join(types, ",") != want {
		t.Fatalf("records %v, want %s", types, want)
	}
	var r []hotplex.LifecycleRecord
	for _, rec := range snapshot() {
		if rec.Type != "process_signalled" {
			r = append(r, rec)
		}
	}
	if r[1].SessionID != "o" || r[1].PID == 0 || r[1].Mode != "fresh" {
		t.Errorf("session_started: %+v", r[1])
	}
	if r[2].Outcome != "ok" || r[2].CostUSD <= 0 || r[2].DurationMs <= 0 {
		t.Errorf("turn_finished: %+v", r[2])
	}
	if !r[3].Blocked || r[3].Category != "file_delete" || r[3].Level != "critical" || r[3].Source != "prompt" {
		t.Errorf("waf_verdict: %+v", r[3])
	}
	if r[4].Outcome != "blocked" || r[5].Reason != "closed" {
		t.Errorf("blocked turn / exit: %+v %+v", r[4], r[5])
	}
}

func TestAPanickingObserverLosesOnlyItsRecordAndTurnsGoOn(t *testing.T) {
	var mu sync.Mutex
	seen := 0
	e := newEngine(t, func(o *hotplex.EngineOptions) {
		o.Observer = func(r hotplex.LifecycleRecord) {
			mu.Lock()
			seen++
			mu.Unlock()
			panic("observer bug")
		}
	})
	for i := 0; i < 3; i++ {
		turn, err := e.Execute(context.Background(), "p", "hello", nil)
		if err != nil || turn.Text != "echo: hello" {
			t.Fatalf("turn %d: %+v %v", i, turn, err)
		}
	}
	// Every record still reached it: 3 verdicts, a start, 3 turns.
	waitFor(t, "7 records", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return seen >= 7
	})
}

// recordingHandler is a slog.Handler that keeps what it handles.
type recordingHandler struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r.Clone())
	return nil
}
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }

// attrs returns a record's attributes by key.
func attrs(r slog.Record) map[string]string {
	m := map[string]string{}
	r.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value.String()
		return true
	})
	return m
}

func TestSetLogHandlerBridgesRecordsWithSessionIDAndLevel(t *testing.T) {
	h := &recordingHandler{}
	if err := hotplex.SetLogHandler(h, slog.LevelInfo); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hotplex.SetLogHandler(nil, 0) })
	e := newEngine(t, nil)
	if _, err := e.Execute(context.Background(), "logged", "hello", nil); err != nil {
		t.Fatal(err)
	}
	find := func() (slog.Record, bool) {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, r := range h.records {
			if r.Level == slog.LevelInfo && attrs(r)["session_id"] == "logged" {
				return r, true
			}
		}
		return slog.Record{}, false
	}
	waitFor(t, "an info record of session logged", func() bool { _, ok := find(); return ok })
	r, _ := find()
	if a := attrs(r); !strings.HasPrefix(a["target"], "hotplex") || r.Message == "" {
		t.Errorf("record %q %v", r.Message, a)
	}
	h.mu.Lock()
	for _, r := range h.records {
		if r.Level < slog.LevelInfo {
			t.Errorf("below the level: %v %q", r.Level, r.Message)
		}
	}
	h.mu.Unlock()
	// Off: nothing more arrives.
	if err := hotplex.SetLogHandler(nil, 0); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	n := len(h.records)
	h.mu.Unlock()
	if _, err := e.Execute(context.Background(), "logged", "hello", nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.records) != n {
		t.Errorf("%d records after turning logs off", len(h.records)-n)
	}
}
