// Package promcollector adds a hotplex Engine's metrics to a Prometheus
// client_golang registry:
//
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(promcollector.New(engine))
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// It is a module of its own so that the hotplex binding itself depends on
// no Prometheus library; an application without client_golang serves
// Engine.MetricsText instead.
//
// The collector reads Engine.MetricsSnapshot at every collection and turns
// each family into constant metrics: counters, gauges, histograms (with
// the engine's buckets), and the info family (hotplex_build_info) as a
// gauge of value 1. Families appear as the engine exposes them (some only
// with their first sample), so the collector is unchecked: Describe sends
// nothing. Register each engine into its own registry, or wrap it with
// prometheus.WrapRegistererWith and a label to tell several apart.
package promcollector

import (
	"errors"
	"math"
	"sort"
	"strconv"
	"strings"

	hotplex "github.com/hotplex/hotplex/bindings/go"
	"github.com/prometheus/client_golang/prometheus"
)

// New returns a collector of the engine's metrics. After Engine.Close it
// reports the values the engine closed with.
func New(engine *hotplex.Engine) prometheus.Collector {
	return &collector{engine: engine}
}

type collector struct {
	engine *hotplex.Engine
}

// errorDesc names a failed read of the engine's metrics.
var errorDesc = prometheus.NewDesc("hotplex_collector_error",
	"The hotplex engine's metrics could not be read", nil, nil)

// Describe sends nothing: the families are known only when collected
// (an unchecked collector).
func (c *collector) Describe(chan<- *prometheus.Desc) {}

// Collect sends the engine's metrics as they are now.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	families, err := c.engine.MetricsSnapshot()
	if errors.Is(err, hotplex.ErrEngineClosed) {
		return
	}
	if err != nil {
		ch <- prometheus.NewInvalidMetric(errorDesc, err)
		return
	}
	for _, f := range families {
		collectFamily(ch, f)
	}
}

// collectFamily sends one family's constant metrics.
func collectFamily(ch chan<- prometheus.Metric, f hotplex.MetricFamily) {
	if f.Type == "histogram" {
		collectHistogram(ch, f)
		return
	}
	kind := prometheus.UntypedValue
	switch f.Type {
	case "counter":
		kind = prometheus.CounterValue
	case "gauge", "info":
		// client_golang has no info type; the convention is a gauge of 1.
		kind = prometheus.GaugeValue
	}
	for _, s := range f.Samples {
		names, values := split(s.Labels, "")
		m, err := prometheus.NewConstMetric(prometheus.NewDesc(s.Name, f.Help, names, nil), kind, s.Value, values...)
		send(ch, m, err)
	}
}

// histogram is one label set's samples of a histogram family.
type histogram struct {
	names, values []string
	buckets       map[float64]uint64
	count         uint64
	sum           float64
}

// collectHistogram folds the _bucket, _sum and _count samples of each
// label set into one constant histogram.
func collectHistogram(ch chan<- prometheus.Metric, f hotplex.MetricFamily) {
	byLabels := map[string]*histogram{}
	var order []string
	for _, s := range f.Samples {
		names, values := split(s.Labels, "le")
		key := strings.Join(names, ",") + "\x00" + strings.Join(values, "\x00")
		h := byLabels[key]
		if h == nil {
			h = &histogram{names: names, values: values, buckets: map[float64]uint64{}}
			byLabels[key] = h
			order = append(order, key)
		}
		switch strings.TrimPrefix(s.Name, f.Name) {
		case "_bucket":
			le, err := strconv.ParseFloat(s.Labels["le"], 64)
			// +Inf is the count itself; client_golang adds it.
			if err == nil && !math.IsInf(le, +1) {
				h.buckets[le] = uint64(s.Value)
			}
		case "_count":
			h.count = uint64(s.Value)
		case "_sum":
			h.sum = s.Value
		}
	}
	for _, key := range order {
		h := byLabels[key]
		m, err := prometheus.NewConstHistogram(prometheus.NewDesc(f.Name, f.Help, h.names, nil),
			h.count, h.sum, h.buckets, h.values...)
		send(ch, m, err)
	}
}

// split returns a sample's label names (sorted, without skip) and their
// values in the same order.
func split(labels map[string]string, skip string) (names, values []string) {
	for k := range labels {
		if k != skip {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		values = append(values, labels[k])
	}
	return names, values
}

// send sends a metric, or the error that kept it from being made.
func send(ch chan<- prometheus.Metric, m prometheus.Metric, err error) {
	if err != nil {
		ch <- prometheus.NewInvalidMetric(errorDesc, err)
		return
	}
	ch <- m
}
