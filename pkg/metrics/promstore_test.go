package metrics

import (
	"context"
	"math"
	"sort"
	"strconv"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/model/histogram"
	plabels "github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"
)

// scrapeStore holds what a Prometheus server would have stored from
// scraping the operator's /metrics: each scrape's samples at the time the
// test says it happened. The Prometheus query engine evaluates alert
// expressions against it (promql from github.com/prometheus/prometheus,
// without its TSDB and service discovery).
type scrapeStore struct {
	series map[string]*scrapedSeries
}

type scrapedSeries struct {
	lset    plabels.Labels
	samples chunks.SampleSlice
}

func newScrapeStore() *scrapeStore { return &scrapeStore{series: map[string]*scrapedSeries{}} }

// add stores one scrape taken at ts. As with honorLabels: true, a pushed
// series keeps its job label; the operator's own series get job="stow".
func (s *scrapeStore) add(ts time.Time, mfs map[string]*dto.MetricFamily) {
	for name, mf := range mfs {
		for _, m := range mf.GetMetric() {
			base := map[string]string{"job": "stow"}
			for _, lp := range m.GetLabel() {
				base[lp.GetName()] = lp.GetValue()
			}
			put := func(name string, v float64, extra ...string) {
				l := map[string]string{}
				for k, v := range base {
					l[k] = v
				}
				for i := 0; i+1 < len(extra); i += 2 {
					l[extra[i]] = extra[i+1]
				}
				l[plabels.MetricName] = name
				s.append(plabels.FromMap(l), ts, v)
			}
			switch {
			case m.Gauge != nil:
				put(name, m.GetGauge().GetValue())
			case m.Counter != nil:
				put(name, m.GetCounter().GetValue())
			case m.Untyped != nil:
				put(name, m.GetUntyped().GetValue())
			case m.Histogram != nil:
				h := m.GetHistogram()
				for _, b := range h.GetBucket() {
					put(name+"_bucket", float64(b.GetCumulativeCount()), "le", formatLe(b.GetUpperBound()))
				}
				put(name+"_bucket", float64(h.GetSampleCount()), "le", "+Inf")
				put(name+"_sum", h.GetSampleSum())
				put(name+"_count", float64(h.GetSampleCount()))
			}
		}
	}
}

func formatLe(v float64) string {
	if math.IsInf(v, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func (s *scrapeStore) append(l plabels.Labels, ts time.Time, v float64) {
	key := l.String()
	ser, ok := s.series[key]
	if !ok {
		ser = &scrapedSeries{lset: l}
		s.series[key] = ser
	}
	ser.samples = append(ser.samples, fSample{t: ts.UnixMilli(), f: v})
}

// Querier implements storage.Queryable.
func (s *scrapeStore) Querier(mint, maxt int64) (storage.Querier, error) {
	return &scrapeQuerier{s: s, mint: mint, maxt: maxt}, nil
}

type scrapeQuerier struct {
	s          *scrapeStore
	mint, maxt int64
}

func (q *scrapeQuerier) Select(_ context.Context, _ bool, _ *storage.SelectHints, ms ...*plabels.Matcher) storage.SeriesSet {
	var out []storage.Series
	for _, ser := range q.s.series {
		match := true
		for _, m := range ms {
			if !m.Matches(ser.lset.Get(m.Name)) {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		var in chunks.SampleSlice
		for _, smp := range ser.samples {
			if smp.T() >= q.mint && smp.T() <= q.maxt {
				in = append(in, smp)
			}
		}
		if len(in) > 0 {
			out = append(out, storage.NewListSeries(ser.lset, in))
		}
	}
	sort.Slice(out, func(i, j int) bool { return plabels.Compare(out[i].Labels(), out[j].Labels()) < 0 })
	return &sliceSeriesSet{series: out, i: -1}
}

func (q *scrapeQuerier) LabelValues(context.Context, string, *storage.LabelHints, ...*plabels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, nil
}

func (q *scrapeQuerier) LabelNames(context.Context, *storage.LabelHints, ...*plabels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, nil
}

func (q *scrapeQuerier) Close() error { return nil }

type sliceSeriesSet struct {
	series []storage.Series
	i      int
}

func (s *sliceSeriesSet) Next() bool                        { s.i++; return s.i < len(s.series) }
func (s *sliceSeriesSet) At() storage.Series                { return s.series[s.i] }
func (s *sliceSeriesSet) Err() error                        { return nil }
func (s *sliceSeriesSet) Warnings() annotations.Annotations { return nil }

// fSample is one float sample (chunks.Sample).
type fSample struct {
	t int64
	f float64
}

func (s fSample) T() int64                      { return s.t }
func (s fSample) ST() int64                     { return 0 } // no start time
func (s fSample) F() float64                    { return s.f }
func (s fSample) H() *histogram.Histogram       { return nil }
func (s fSample) FH() *histogram.FloatHistogram { return nil }
func (s fSample) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (s fSample) Copy() chunks.Sample           { return s }

// evalAt evaluates expr at ts as a Prometheus rule evaluation does (an
// instant query, 5 minutes lookback).
func evalAt(t *testing.T, s *scrapeStore, expr string, ts time.Time) promql.Vector {
	t.Helper()
	eng := promql.NewEngine(promql.EngineOpts{MaxSamples: 1 << 20, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	q, err := eng.NewInstantQuery(context.Background(), s, nil, expr, ts)
	if err != nil {
		t.Fatalf("parse %q: %v", expr, err)
	}
	defer q.Close()
	res := q.Exec(context.Background())
	if res.Err != nil {
		t.Fatalf("evaluate %q at %s: %v", expr, ts, res.Err)
	}
	v, err := res.Vector()
	if err != nil {
		t.Fatalf("evaluate %q: %v", expr, err)
	}
	return v
}
