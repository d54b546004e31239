package hotplex

/*
#include <stdint.h>
#include <stdlib.h>
#include "hotplex.h"
*/
import "C"

import (
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"runtime/cgo"
	"time"
	"unsafe"
)

// MetricsText returns the engine's metrics as OpenMetrics text: what a
// Prometheus scrape of /metrics returns (it ends with "# EOF"). Serve it
// from the host's own HTTP server, or use the promcollector module
// (github.com/hotplex/hotplex/bindings/go/promcollector) to add the
// families to a client_golang registry. The families are those of the
// schema's x-hotplex-metrics (hotplex_turns_total{outcome="ok"},
// hotplex_turn_duration_seconds, ...); each engine counts from zero.
//
// After Close it returns the metrics as they were when the engine closed
// (the counters of its sessions' last turns and exits included).
func (e *Engine) MetricsText() (string, error) {
	var text string
	err := e.metrics(func(h *C.hotplex_engine) error {
		var p *C.char
		err := call(func() C.hotplex_status { return C.hotplex_status(C.hotplex_engine_metrics_text(h, &p)) })
		if err == nil {
			text = string(jsonString(p))
		}
		return err
	}, func(f *finalMetrics) { text = f.text })
	return text, err
}

// finalMetrics are an engine's metrics when it closed.
type finalMetrics struct {
	text     string
	snapshot []byte
}

// readFinalMetrics reads the metrics of a closed engine, before it is
// freed (nil if that fails).
func readFinalMetrics(h *C.hotplex_engine) *finalMetrics {
	var text, snap *C.char
	if C.hotplex_engine_metrics_text(h, &text) != C.HOTPLEX_STATUS_OK {
		return nil
	}
	f := &finalMetrics{text: string(jsonString(text))}
	if C.hotplex_engine_metrics_snapshot(h, &snap) != C.HOTPLEX_STATUS_OK {
		return nil
	}
	f.snapshot = jsonString(snap)
	return f
}

// metrics runs live with the engine held open, or final with the metrics
// Close kept; ErrEngineClosed if there are none.
func (e *Engine) metrics(live func(*C.hotplex_engine) error, final func(*finalMetrics)) error {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.e != nil {
		return live(e.e)
	}
	if e.final == nil {
		return ErrEngineClosed
	}
	final(e.final)
	return nil
}

// MetricFamily is one metric family of Engine.MetricsSnapshot.
type MetricFamily struct {
	// Name is the family's name as its samples expose it
	// (hotplex_turns_total, hotplex_turn_duration_seconds,
	// hotplex_build_info).
	Name string `json:"name"`
	// Type is "counter", "gauge", "histogram" or "info".
	Type string `json:"type"`
	// Help is what it measures.
	Help string `json:"help"`
	// Samples are its samples: one per label set; a histogram's are its
	// _bucket samples (label "le", cumulative), _sum and _count.
	Samples []MetricSample `json:"samples"`
}

// MetricSample is one sample of a MetricFamily.
type MetricSample struct {
	// Name is the sample's name (hotplex_turns_total,
	// hotplex_turn_duration_seconds_bucket, ...).
	Name string `json:"name"`
	// Labels are its labels, without the family's name.
	Labels map[string]string `json:"labels"`
	// Value is its value (NaN for a value the snapshot could not carry).
	Value float64 `json:"value"`
}

// UnmarshalJSON reads a sample; a null value (not finite) reads as NaN
// rather than a misleading 0.
func (s *MetricSample) UnmarshalJSON(b []byte) error {
	var raw struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
		Value  *float64          `json:"value"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	s.Name, s.Labels, s.Value = raw.Name, raw.Labels, math.NaN()
	if raw.Value != nil {
		s.Value = *raw.Value
	}
	return nil
}

// MetricsSnapshot returns the engine's metrics as values: the families of
// MetricsText, in its order (after Close, as the engine closed).
func (e *Engine) MetricsSnapshot() ([]MetricFamily, error) {
	var raw []byte
	err := e.metrics(func(h *C.hotplex_engine) error {
		var p *C.char
		err := call(func() C.hotplex_status { return C.hotplex_status(C.hotplex_engine_metrics_snapshot(h, &p)) })
		if err == nil {
			raw = jsonString(p)
		}
		return err
	}, func(f *finalMetrics) { raw = f.snapshot })
	if err != nil {
		return nil, err
	}
	var out []MetricFamily
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// observerFeed carries lifecycle records from hotplex's observer thread
// to the goroutine that calls EngineOptions.Observer.
type observerFeed struct {
	records chan []byte
}

// startObserver starts the goroutine calling fn for each record; it ends
// when records is closed (Engine.Close, after the library's last call).
func startObserver(fn func(LifecycleRecord)) *observerFeed {
	f := &observerFeed{records: make(chan []byte, 64)}
	go func() {
		for raw := range f.records {
			deliver(fn, raw)
		}
	}()
	return f
}

// deliver calls the observer with one record; a panic loses that record.
func deliver(fn func(LifecycleRecord), raw []byte) {
	defer func() { _ = recover() }()
	var r LifecycleRecord
	if json.Unmarshal(raw, &r) == nil {
		fn(r)
	}
}

//export hotplexGoObserver
func hotplexGoObserver(handle C.uintptr_t, record *C.char, n C.size_t) {
	f, _ := cgo.Handle(handle).Value().(*observerFeed)
	if f == nil {
		return
	}
	// Waiting here holds up hotplex's observer thread only: its queue
	// fills and drops (counted), turns go on.
	f.records <- C.GoBytes(unsafe.Pointer(record), C.int(n))
}

// The slog levels of hotplex's log levels (debug, info, warn and error
// are slog's own).
const (
	// LogLevelTrace is hotplex's trace level as a slog.Level: below
	// slog.LevelDebug.
	LogLevelTrace = slog.LevelDebug - 4
)

// slogLevel is the slog level of a LogRecord's level.
func slogLevel(level string) slog.Level {
	switch level {
	case "trace":
		return LogLevelTrace
	case "debug":
		return slog.LevelDebug
	case "info":
		return slog.LevelInfo
	case "warn":
		return slog.LevelWarn
	}
	return slog.LevelError
}

//export hotplexGoLog
func hotplexGoLog(record *C.char, n C.size_t) {
	b := currentLog.Load()
	if b == nil {
		return
	}
	// A handler that panics loses that record; it must not unwind into
	// the library.
	defer func() { _ = recover() }()
	var r LogRecord
	if json.Unmarshal(C.GoBytes(unsafe.Pointer(record), C.int(n)), &r) != nil {
		return
	}
	ctx := context.Background()
	level := slogLevel(r.Level)
	if level < b.level || !b.h.Enabled(ctx, level) {
		return
	}
	rec := slog.NewRecord(time.Now(), level, r.Message, 0)
	rec.AddAttrs(slog.String("target", r.Target))
	if r.SessionID != "" {
		rec.AddAttrs(slog.String("session_id", r.SessionID))
	}
	_ = b.h.Handle(ctx, rec)
}
