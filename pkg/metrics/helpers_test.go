package metrics

import (
	"context"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

// startServer runs an embedded Pushgateway on a loopback port until the test
// ends, and checks that it stops cleanly.
func startServer(t *testing.T, opts ServerOptions) (*Server, func()) {
	t.Helper()
	if opts.Address == "" {
		opts.Address = "127.0.0.1:0"
	}
	s, err := NewServer(opts)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("server did not stop within 20s")
		}
	}
	t.Cleanup(stop)
	waitReady(t, s.URL())
	return s, stop
}

func waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after 10s (last error %v)", url, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// scrape GETs /metrics, requires 200 and parses the text exposition.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: HTTP %d: %s", resp.StatusCode, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("scrape: parse: %v", err)
	}
	return mfs
}

// series returns the metrics of family name whose labels include want.
func series(mfs map[string]*dto.MetricFamily, name string, want map[string]string) []*dto.Metric {
	mf := mfs[name]
	if mf == nil {
		return nil
	}
	var out []*dto.Metric
next:
	for _, m := range mf.GetMetric() {
		have := labelMap(m)
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		out = append(out, m)
	}
	return out
}

func labelMap(m *dto.Metric) map[string]string {
	l := map[string]string{}
	for _, p := range m.GetLabel() {
		l[p.GetName()] = p.GetValue()
	}
	return l
}

func labelNames(m *dto.Metric) string {
	var n []string
	for _, p := range m.GetLabel() {
		n = append(n, p.GetName())
	}
	sort.Strings(n)
	return strings.Join(n, ",")
}

func value(m *dto.Metric) float64 {
	switch {
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetUntyped() != nil:
		return m.GetUntyped().GetValue()
	case m.GetHistogram() != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return 0
}

// one requires exactly one series of name matching want and returns it.
func one(t *testing.T, mfs map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	t.Helper()
	s := series(mfs, name, want)
	if len(s) != 1 {
		t.Fatalf("%s%v: want 1 series, got %d (family: %v)", name, want, len(s), mfs[name])
	}
	return s[0]
}

func expectValue(t *testing.T, mfs map[string]*dto.MetricFamily, name string, want map[string]string, v float64) {
	t.Helper()
	if got := value(one(t, mfs, name, want)); got != v {
		t.Errorf("%s%v = %v, want %v", name, want, got, v)
	}
}

func ptr[T any](v T) *T { return &v }

func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pick a port: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// pollReady waits until url/-/ready answers 200, the process exits, or timeout.
func pollReady(url string, exited <-chan struct{}, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		if resp, err := http.Get(url + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// pushHost pushes, as the operator does at the end of a successful session,
// the session of fixtureBC with host result h.
func pushHost(t *testing.T, url string, h v1beta1.HostBackupStats) {
	t.Helper()
	must(t, NewPusher(url).BackupSessionFinished(context.Background(), fixtureBC(), fixtureRepo(), withHost(fixtureSession(v1beta1.TargetSucceeded, time.Now()), h), true), "push host")
}
