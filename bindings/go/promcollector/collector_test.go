package promcollector_test

import (
	"context"
	"testing"

	"github.com/hotplex/hotplex/bindings/go/promcollector"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// gather collects the engine through a pedantic registry, by family name.
func gather(t *testing.T, c prometheus.Collector) map[string]*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range families {
		out[f.GetName()] = f
	}
	return out
}

// value finds the sample of family name whose labels include want.
func value(f *dto.MetricFamily, want map[string]string) (*dto.Metric, bool) {
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			match = match && got[k] == v
		}
		if match {
			return m, true
		}
	}
	return nil, false
}

func TestCollectorLintsCleanAndShowsTurnsAfterATurn(t *testing.T) {
	e := newEngine(t, options(t))
	ctx := context.Background()
	if _, err := e.Execute(ctx, "s", "hello", nil); err != nil {
		t.Fatal(err)
	}
	// The families that appear with their first sample.
	if _, err := e.Execute(ctx, "s", "tool:ls", nil); err != nil {
		t.Fatal(err)
	}
	_, _ = e.Execute(ctx, "s", "run this: rm -rf /", nil)
	c := promcollector.New(e)

	problems, err := testutil.CollectAndLint(c)
	if err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %+v", err, problems)
	}
	if n := testutil.CollectAndCount(c, "hotplex_turns_total"); n != 7 {
		t.Errorf("hotplex_turns_total has %d samples, want one per outcome (7)", n)
	}

	fams := gather(t, c)
	turns := fams["hotplex_turns_total"]
	if turns.GetType() != dto.MetricType_COUNTER {
		t.Fatalf("hotplex_turns_total: %v", turns)
	}
	if m, ok := value(turns, map[string]string{"outcome": "ok"}); !ok || m.GetCounter().GetValue() != 2 {
		t.Errorf("turns ok: %v", m)
	}
	if m, ok := value(turns, map[string]string{"outcome": "blocked"}); !ok || m.GetCounter().GetValue() != 1 {
		t.Errorf("turns blocked: %v", m)
	}
	d := fams["hotplex_turn_duration_seconds"]
	if d.GetType() != dto.MetricType_HISTOGRAM || len(d.GetMetric()) != 1 {
		t.Fatalf("hotplex_turn_duration_seconds: %v", d)
	}
	h := d.GetMetric()[0].GetHistogram()
	buckets := h.GetBucket()
	if h.GetSampleCount() != 2 || h.GetSampleSum() <= 0 || len(buckets) < 2 ||
		buckets[len(buckets)-1].GetCumulativeCount() != 2 {
		t.Errorf("histogram: %v", h)
	}
	if m, ok := value(fams["hotplex_build_info"], nil); !ok || m.GetGauge().GetValue() != 1 ||
		fams["hotplex_build_info"].GetType() != dto.MetricType_GAUGE {
		t.Errorf("build info: %v", fams["hotplex_build_info"])
	}
	if m, ok := value(fams["hotplex_sessions"], map[string]string{"status": "ready"}); !ok || m.GetGauge().GetValue() != 1 {
		t.Errorf("sessions ready: %v", m)
	}
	if m, ok := value(fams["hotplex_waf_blocks_total"], map[string]string{"category": "file_delete"}); !ok || m.GetCounter().GetValue() != 1 {
		t.Errorf("waf blocks: %v", fams["hotplex_waf_blocks_total"])
	}

	// A closed engine reports what it closed with.
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	fams = gather(t, c)
	if m, ok := value(fams["hotplex_session_exits_total"], map[string]string{"reason": "closed"}); !ok || m.GetCounter().GetValue() != 1 {
		t.Errorf("exits closed after Close: %v", fams["hotplex_session_exits_total"])
	}
}
