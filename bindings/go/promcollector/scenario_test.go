package promcollector_test

import (
	"context"
	"errors"
	"io"
	"math"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	hotplex "github.com/hotplex/hotplex/bindings/go"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
)

// openMetrics parses text with Prometheus' own OpenMetrics parser (the one
// its scraper uses): every sample as name{k=v,...} (labels sorted) -> value,
// and every family's type.
func openMetrics(t *testing.T, text string) (map[string]float64, map[string]string) {
	t.Helper()
	p := textparse.NewOpenMetricsParser([]byte(text), labels.NewSymbolTable())
	samples, types := map[string]float64{}, map[string]string{}
	for {
		entry, err := p.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("parsing the metrics text: %v\n%s", err, text)
		}
		switch entry {
		case textparse.EntryType:
			name, kind := p.Type()
			types[string(name)] = string(kind)
		case textparse.EntrySeries:
			_, _, v := p.Series()
			var ls labels.Labels
			p.Labels(&ls)
			var pairs []string
			ls.Range(func(l labels.Label) {
				if l.Name != labels.MetricName {
					pairs = append(pairs, l.Name+"="+l.Value)
				}
			})
			sort.Strings(pairs)
			key := ls.Get(labels.MetricName)
			if len(pairs) > 0 {
				key += "{" + strings.Join(pairs, ",") + "}"
			}
			samples[key] = v
		}
	}
	return samples, types
}

// The brief's scripted scenario on the reference agent, as the core's own
// test runs it: the counters move exactly, and the observer sees the same
// story in order.
func TestScriptedScenarioMovesEveryCounterExactly(t *testing.T) {
	var mu sync.Mutex
	var records []hotplex.LifecycleRecord
	opts := options(t)
	opts.MaxSessions = 1
	opts.Observer = func(r hotplex.LifecycleRecord) {
		mu.Lock()
		records = append(records, r)
		mu.Unlock()
	}
	e := newEngine(t, opts)
	ctx := context.Background()
	ok := func(id string) {
		t.Helper()
		if _, err := e.Execute(ctx, id, "hello", nil); err != nil {
			t.Fatalf("turn on %s: %v", id, err)
		}
	}

	ok("a") // a starts fresh
	ok("a")
	ok("a")
	if _, err := e.Execute(ctx, "a", "run this: rm -rf /", nil); !errors.Is(err, hotplex.ErrDangerBlocked) {
		t.Fatalf("blocked prompt: %v", err)
	}
	if _, err := e.Execute(ctx, "a", "stall:5000", &hotplex.TurnOptions{Timeout: 300 * time.Millisecond}); !errors.Is(err, hotplex.ErrTurnTimeout) {
		t.Fatalf("stall: %v", err)
	}
	if _, err := e.Execute(ctx, "a", "crash", nil); !errors.Is(err, hotplex.ErrSessionDead) {
		t.Fatalf("crash: %v", err)
	}
	ok("a") // a resumes
	ok("b") // b starts fresh and evicts a (max_sessions 1)

	// The evicted process is stopped in the background while b runs; on a
	// loaded machine its exit may land after b's turn. Wait for it (so
	// that it also comes before close's), then every value is exact.
	var m map[string]float64
	var types map[string]string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		text, err := e.MetricsText()
		if err != nil {
			t.Fatal(err)
		}
		m, types = openMetrics(t, text)
		if m["hotplex_session_exits_total{reason=evicted}"] == 1 || time.Now().After(deadline) {
			break
		}
	}
	want := map[string]float64{
		"hotplex_turns_total{outcome=ok}":                                             5,
		"hotplex_turns_total{outcome=blocked}":                                        1,
		"hotplex_turns_total{outcome=timeout}":                                        1,
		"hotplex_turns_total{outcome=dead}":                                           1,
		"hotplex_turns_total{outcome=failed}":                                         0,
		"hotplex_session_starts_total{mode=fresh}":                                    2,
		"hotplex_session_starts_total{mode=resume}":                                   1,
		"hotplex_session_exits_total{reason=crashed}":                                 1,
		"hotplex_session_exits_total{reason=evicted}":                                 1,
		"hotplex_session_exits_total{reason=closed}":                                  0,
		"hotplex_capacity_rejections_total":                                           0,
		"hotplex_waf_checks_total{source=prompt}":                                     8,
		"hotplex_turn_duration_seconds_count":                                         7, // 5 ok + timeout + crash
		"hotplex_cold_start_seconds_count":                                            3,
		"hotplex_sessions{status=ready}":                                              1,
		"hotplex_sessions{status=busy}":                                               0,
		"hotplex_waf_blocks_total{category=file_delete,level=critical,source=prompt}": 1,
	}
	for k, v := range want {
		got, present := m[k]
		if !present || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, present, v)
		}
	}
	if got := m["hotplex_cost_usd_total"]; math.Abs(got-0.005) > 1e-9 {
		t.Errorf("hotplex_cost_usd_total = %v, want 0.005", got)
	}
	if m["hotplex_agent_memory_bytes"] <= 0 || m["hotplex_tokens_total{kind=input}"] <= 0 {
		t.Errorf("memory %v, input tokens %v", m["hotplex_agent_memory_bytes"], m["hotplex_tokens_total{kind=input}"])
	}
	if types["hotplex_turns"] != "counter" || types["hotplex_turn_duration_seconds"] != "histogram" {
		t.Errorf("types: %v", types)
	}

	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	text, err := e.MetricsText()
	if err != nil {
		t.Fatal(err)
	}
	m, _ = openMetrics(t, text)
	if m["hotplex_session_exits_total{reason=closed}"] != 1 || m["hotplex_sessions{status=ready}"] != 0 {
		t.Errorf("after close: closed %v, ready %v", m["hotplex_session_exits_total{reason=closed}"], m["hotplex_sessions{status=ready}"])
	}

	// The observer's story, delivered off the turns' path: wait for it.
	var outcomes, exits []string
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		outcomes, exits = nil, nil
		for _, r := range records {
			switch r.Type {
			case "turn_finished":
				outcomes = append(outcomes, r.Outcome)
			case "session_exited":
				exits = append(exits, r.Reason)
			}
		}
		mu.Unlock()
		if len(exits) >= 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := strings.Join(outcomes, ","); got != "ok,ok,ok,blocked,timeout,dead,ok,ok" {
		t.Errorf("turn outcomes: %s", got)
	}
	if got := strings.Join(exits, ","); got != "crashed,evicted,closed" {
		t.Errorf("exits: %s", got)
		mu.Lock()
		for _, r := range records {
			t.Logf("%+v", r)
		}
		mu.Unlock()
	}
	mu.Lock()
	defer mu.Unlock()
	if len(records) < 2 || records[0].Type != "waf_verdict" || records[0].Source != "prompt" || records[1].Type != "session_started" {
		t.Errorf("first records: %+v", records[:min(2, len(records))])
	}
}
