package metrics

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/workqueue"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

// do sends one request and returns its status and body.
func do(t *testing.T, method, url, contentType, encoding string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func protoBody(t *testing.T, name string, typ dto.MetricType, v float64) []byte {
	t.Helper()
	m := &dto.Metric{}
	switch typ {
	case dto.MetricType_COUNTER:
		m.Counter = &dto.Counter{Value: ptr(v)}
	default:
		m.Gauge = &dto.Gauge{Value: ptr(v)}
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, protoDelimFormat)
	if err := enc.Encode(&dto.MetricFamily{Name: ptr(name), Help: ptr("h"), Type: typ.Enum(), Metric: []*dto.Metric{m}}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// TestPushPathsAndEncodings covers the URL forms and bodies the Pushgateway
// API accepts: text and protobuf, gzip or not, label paths, @base64 job and
// label values, PUT (replace group) and DELETE with labels.
func TestPushPathsAndEncodings(t *testing.T) {
	s, _ := startServer(t, ServerOptions{})
	u := s.URL()
	text := func(name string, v string) []byte {
		return []byte("# TYPE " + name + " gauge\n" + name + " " + v + "\n")
	}
	tests := []struct {
		name, method, path, ctype, enc string
		body                           []byte
		code                           int
		family                         string
		labels                         map[string]string
		value                          float64
	}{
		{"text POST", "POST", "/metrics/job/j1", "text/plain; version=0.0.4", "", text("t_text", "1"), 200, "t_text", map[string]string{"job": "j1"}, 1},
		{"text no content type", "POST", "/metrics/job/j1", "", "", text("t_plain", "2"), 200, "t_plain", map[string]string{"job": "j1"}, 2},
		{"gzip text", "POST", "/metrics/job/j2", "text/plain", "gzip", gz(t, text("t_gzip", "3")), 200, "t_gzip", map[string]string{"job": "j2"}, 3},
		{"protobuf", "POST", "/metrics/job/j3", string(protoDelimFormat), "", protoBody(t, "t_proto", dto.MetricType_GAUGE, 4), 200, "t_proto", map[string]string{"job": "j3"}, 4},
		{"gzip protobuf", "POST", "/metrics/job/j3", string(protoDelimFormat), "gzip", gz(t, protoBody(t, "t_proto_gz", dto.MetricType_GAUGE, 5)), 200, "t_proto_gz", map[string]string{"job": "j3"}, 5},
		{"label path", "PUT", "/metrics/job/j4/instance/i1/stage/s1", "", "", text("t_labels", "6"), 200, "t_labels", map[string]string{"job": "j4", "instance": "i1", "stage": "s1"}, 6},
		{"base64 job", "POST", "/metrics/job@base64/" + b64("a/b"), "", "", text("t_b64job", "7"), 200, "t_b64job", map[string]string{"job": "a/b"}, 7},
		{"base64 label", "POST", "/metrics/job/j5/path@base64/" + b64("/x/y"), "", "", text("t_b64label", "8"), 200, "t_b64label", map[string]string{"job": "j5", "path": "/x/y"}, 8},
		{"bad gzip", "POST", "/metrics/job/j6", "", "gzip", []byte("not gzip"), 400, "", nil, 0},
		{"bad text", "POST", "/metrics/job/j6", "", "", []byte("t_bad{ 1\n"), 400, "", nil, 0},
		{"unknown encoding", "POST", "/metrics/job/j6", "", "br", text("t_br", "1"), 415, "", nil, 0},
		{"odd label path", "POST", "/metrics/job/j6/onlyname", "", "", text("t_odd", "1"), 400, "", nil, 0},
		{"timestamps rejected", "POST", "/metrics/job/j6", "", "", []byte("t_ts 1 1700000000000\n"), 400, "", nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := do(t, tc.method, u+tc.path, tc.ctype, tc.enc, tc.body)
			if code/100 != tc.code/100 {
				t.Fatalf("HTTP %d (%s), want %d", code, body, tc.code)
			}
			if tc.family == "" {
				return
			}
			expectValue(t, scrape(t, u), tc.family, tc.labels, tc.value)
		})
	}

	// PUT replaces the whole group; DELETE with a label path removes it.
	code, body := do(t, "PUT", u+"/metrics/job/j4/instance/i1/stage/s1", "", "", text("t_other", "9"))
	if code != http.StatusOK && code != http.StatusAccepted {
		t.Fatalf("PUT: HTTP %d: %s", code, body)
	}
	mfs := scrape(t, u)
	if len(series(mfs, "t_labels", nil)) != 0 {
		t.Errorf("PUT kept t_labels in the replaced group")
	}
	expectValue(t, mfs, "t_other", map[string]string{"job": "j4", "stage": "s1"}, 9)
	if code, body := do(t, "DELETE", u+"/metrics/job/j4/instance/i1/stage/s1", "", "", nil); code != http.StatusAccepted {
		t.Fatalf("DELETE: HTTP %d: %s", code, body)
	}
	if len(series(scrape(t, u), "t_other", nil)) != 0 {
		t.Errorf("DELETE kept the group")
	}
	// Every push is reflected with the Pushgateway's push_time_seconds.
	one(t, scrape(t, u), "push_time_seconds", map[string]string{"job": "j1"})
}

func TestPushBodyLimit(t *testing.T) {
	s, _ := startServer(t, ServerOptions{MaxPushBytes: 1024})
	big := []byte("# TYPE t_big gauge\n" + strings.Repeat("t_big{l=\"x\"} 1\n", 200))
	for _, enc := range []string{"", "gzip"} {
		b := big
		if enc == "gzip" {
			b = gz(t, big) // small on the wire, large once decoded
		}
		if code, body := do(t, "POST", s.URL()+"/metrics/job/big", "", enc, b); code != http.StatusRequestEntityTooLarge {
			t.Errorf("encoding %q: HTTP %d (%s), want 413", enc, code, body)
		}
	}
}

func TestHealthAndReady(t *testing.T) {
	s, _ := startServer(t, ServerOptions{})
	for _, p := range []string{"/-/healthy", "/-/ready"} {
		if code, body := do(t, "GET", s.URL()+p, "", "", nil); code != http.StatusOK {
			t.Errorf("%s: HTTP %d: %s", p, code, body)
		}
	}
}

func TestPersistenceAcrossRestart(t *testing.T) {
	file := filepath.Join(t.TempDir(), "pushgateway.dat")
	// A long interval: only the flush on stop can have written the file.
	opts := ServerOptions{PersistenceFile: file, PersistenceInterval: time.Hour}
	s, stop := startServer(t, opts)
	pushHost(t, s.URL(), backupResult())
	expectValue(t, scrape(t, s.URL()), BackupHostFilesTotal, bcHost, 11)
	stop()
	if fi, err := os.Stat(file); err != nil || fi.Size() == 0 {
		t.Fatalf("persistence file after stop: %v (size %v)", err, fi)
	}

	s2, _ := startServer(t, opts)
	mfs := scrape(t, s2.URL())
	expectValue(t, mfs, BackupHostFilesTotal, bcHost, 11)
	expectValue(t, mfs, BackupHostSuccess, bcHost, 1)
	checkLabelSets(t, mfs)
}

func TestNewServerErrors(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	must(t, os.WriteFile(notDir, nil, 0o600), "write")
	tests := []struct {
		name string
		opts ServerOptions
		want string
	}{
		{"missing dir", ServerOptions{Address: "127.0.0.1:0", PersistenceFile: filepath.Join(dir, "nope", "p.dat")}, "no such file"},
		{"parent is a file", ServerOptions{Address: "127.0.0.1:0", PersistenceFile: filepath.Join(notDir, "p.dat")}, "not a directory"},
		{"bad address", ServerOptions{Address: "127.0.0.1:notaport"}, "listen"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewServer(tc.opts)
			if err == nil {
				s.Close()
				t.Fatalf("NewServer succeeded, want error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

// TestClashingPushNeverBreaksScrape: a push that clashes with another
// group's family or with an operator metric is rejected when the clash is
// visible, and when it is not (the operator metric appears later), the scrape
// still answers 200 with everything else.
func TestClashingPushNeverBreaksScrape(t *testing.T) {
	lazy := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "stow_test_lazy_metric", Help: "Operator metric that appears after a push."}, []string{"x"})
	s, _ := startServer(t, ServerOptions{Collectors: []prometheus.Collector{lazy}})
	u := s.URL()
	ctx := context.Background()
	pushHost(t, u, backupResult())

	rejected := []struct {
		name string
		path string
		body []byte
	}{
		{"same name other type in another group", "/metrics/job/other", protoBody(t, BackupHostFilesTotal, dto.MetricType_COUNTER, 1)},
		{"operator metric with other type", "/metrics/job/other", []byte("# TYPE go_goroutines counter\ngo_goroutines 1\n")},
	}
	for _, tc := range rejected {
		if code, body := do(t, "POST", u+tc.path, "", "", tc.body); code != http.StatusBadRequest {
			t.Errorf("%s: HTTP %d (%s), want 400", tc.name, code, body)
		}
		expectValue(t, scrape(t, u), BackupHostFilesTotal, bcHost, 11)
	}
	// The push client reports the rejection as an error.
	if err := add(ctx, httpClient, u, "other", batch{"go_goroutines": &dto.MetricFamily{Name: ptr("go_goroutines"), Help: ptr("x"), Type: dto.MetricType_COUNTER.Enum(),
		Metric: []*dto.Metric{{Counter: &dto.Counter{Value: ptr(1.0)}}}}}); err == nil {
		t.Errorf("clashing push via add: no error")
	}

	// Different help for a pushed family in another group is accepted (the
	// store unifies help) and must not break the scrape.
	if code, body := do(t, "POST", u+"/metrics/job/other", "", "", []byte("# HELP "+BackupHostFilesTotal+" other help\n# TYPE "+BackupHostFilesTotal+" gauge\n"+BackupHostFilesTotal+" 5\n")); code != http.StatusOK && code != http.StatusAccepted {
		t.Errorf("other help: HTTP %d: %s", code, body)
	}
	expectValue(t, scrape(t, u), BackupHostFilesTotal, map[string]string{"job": "other"}, 5)
	// Same for an operator metric's name: the store takes the operator's help.
	if code, body := do(t, "POST", u+"/metrics/job/other", "", "", []byte("# HELP go_goroutines Not the help.\n# TYPE go_goroutines gauge\ngo_goroutines 1\n")); code != http.StatusOK && code != http.StatusAccepted {
		t.Errorf("operator metric with other help: HTTP %d: %s", code, body)
	}
	mfs := scrape(t, u)
	expectValue(t, mfs, "go_goroutines", map[string]string{"job": "other"}, 1)
	if h := mfs["go_goroutines"].GetHelp(); h == "Not the help." {
		t.Errorf("pushed help replaced the operator's")
	}

	// The clash the check cannot see: a push of a name the operator only
	// exposes later, with another type.
	if code, body := do(t, "POST", u+"/metrics/job/later", "", "", []byte("# TYPE stow_test_lazy_metric counter\nstow_test_lazy_metric 1\n")); code != http.StatusOK && code != http.StatusAccepted {
		t.Fatalf("lazy push: HTTP %d: %s", code, body)
	}
	lazy.WithLabelValues("now").Set(3)
	strict := prometheus.Gatherers{prometheus.DefaultGatherer, prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return s.store.GetMetricFamilies(), nil })}
	if _, err := strict.Gather(); err == nil {
		t.Fatalf("test setup: a strict gather should fail on the clash")
	}
	mfs = scrape(t, u) // 200 required by scrape
	expectValue(t, mfs, BackupHostFilesTotal, bcHost, 11)
	if mfs["go_goroutines"] == nil {
		t.Errorf("operator's own metrics missing from the scrape")
	}
}

func TestOperatorMetricsOnScrape(t *testing.T) {
	now := metav1.Now()
	backups := []*v1beta1.BackupSession{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "ns1", Name: "a", CreationTimestamp: now}, Status: v1beta1.BackupSessionStatus{Phase: v1beta1.BackupSessionSucceeded}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "ns1", Name: "b"}, Status: v1beta1.BackupSessionStatus{Phase: v1beta1.BackupSessionSucceeded}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "ns1", Name: "c"}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "ns2", Name: "d"}, Status: v1beta1.BackupSessionStatus{Phase: v1beta1.BackupSessionSkipped}},
	}
	restores := []*v1beta1.RestoreSession{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "ns1", Name: "r"}, Status: v1beta1.RestoreSessionStatus{Phase: v1beta1.RestoreFailed}},
	}
	var listErr atomic.Bool
	c := NewSessionCollector(
		func() ([]*v1beta1.BackupSession, error) {
			if listErr.Load() {
				return nil, errors.New("cache not synced")
			}
			return backups, nil
		},
		func() ([]*v1beta1.RestoreSession, error) { return restores, nil },
	)
	s, _ := startServer(t, ServerOptions{Collectors: []prometheus.Collector{c}})

	q := workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "stow-test-queue"})
	defer q.ShutDown()
	q.Add("demo/a")
	q.Add("demo/b")
	item, _ := q.Get()
	q.AddRateLimited(item)
	q.Done(item)

	start := time.Now().Add(-2 * time.Second)
	ObserveReconcile("test-controller", start, nil)
	ObserveReconcile("test-controller", start, errors.New("boom"))
	ObserveReconcile("quiet-controller", time.Now(), nil)

	mfs := scrape(t, s.URL())
	expectValue(t, mfs, "workqueue_adds_total", map[string]string{"name": "stow-test-queue"}, 2)
	expectValue(t, mfs, "workqueue_retries_total", map[string]string{"name": "stow-test-queue"}, 1)
	expectValue(t, mfs, "workqueue_depth", map[string]string{"name": "stow-test-queue"}, 1)
	for _, n := range []string{"workqueue_queue_duration_seconds", "workqueue_work_duration_seconds", "workqueue_unfinished_work_seconds", "workqueue_longest_running_processor_seconds"} {
		one(t, mfs, n, map[string]string{"name": "stow-test-queue"})
	}
	expectValue(t, mfs, "stow_reconcile_duration_seconds", map[string]string{"controller": "test-controller"}, 2)
	if sum := one(t, mfs, "stow_reconcile_duration_seconds", map[string]string{"controller": "test-controller"}).GetHistogram().GetSampleSum(); sum < 4 {
		t.Errorf("reconcile duration sum %v, want >= 4s", sum)
	}
	expectValue(t, mfs, "stow_reconcile_errors_total", map[string]string{"controller": "test-controller"}, 1)
	expectValue(t, mfs, "stow_reconcile_errors_total", map[string]string{"controller": "quiet-controller"}, 0)

	for _, tc := range []struct {
		family, ns, phase string
		want              float64
	}{
		{"stow_backupsessions", "ns1", "Succeeded", 2},
		{"stow_backupsessions", "ns1", "Pending", 1},
		{"stow_backupsessions", "ns1", "Failed", 0},
		{"stow_backupsessions", "ns2", "Skipped", 1},
		{"stow_restoresessions", "ns1", "Failed", 1},
		{"stow_restoresessions", "ns1", "Succeeded", 0},
	} {
		expectValue(t, mfs, tc.family, map[string]string{"namespace": tc.ns, "phase": tc.phase}, tc.want)
	}

	// A failing list drops its series but neither the scrape nor pushes.
	listErr.Store(true)
	must(t, NewPusher(s.URL()).RestoreSessionFinished(context.Background(), fixtureRestore(), nil, true), "push while list fails")
	mfs = scrape(t, s.URL())
	if len(series(mfs, "stow_backupsessions", nil)) != 0 {
		t.Errorf("backup session series reported while listing fails")
	}
	expectValue(t, mfs, "stow_restoresessions", map[string]string{"namespace": "ns1", "phase": "Failed"}, 1)
}

// Only the operator pushes: a push or delete that does not come over
// loopback (a Job through the Service) is refused and changes nothing; a
// scrape from anywhere is served.
func TestPushesOnlyFromLoopback(t *testing.T) {
	s, _ := startServer(t, ServerOptions{})
	pushHost(t, s.URL(), backupResult())
	h := s.Handler()
	body := "# TYPE stash_backup_host_backup_success gauge\nstash_backup_host_backup_success{hostname=\"host-0\"} 1\n"
	for _, method := range []string{http.MethodPut, http.MethodPost, http.MethodDelete} {
		for _, from := range []string{"10.244.1.7:40000", "[fd00::7]:40000", "bogus"} {
			req := httptest.NewRequest(method, "/metrics/job/"+bcJob, strings.NewReader(body))
			req.RemoteAddr = from
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "only from the Stow operator") {
				t.Errorf("%s from %s: %d %q, want 403", method, from, rec.Code, rec.Body.String())
			}
		}
	}
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.RemoteAddr = "10.244.1.7:40000"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Errorf("scrape from a pod: %d", rec.Code)
	}
	expectValue(t, scrape(t, s.URL()), BackupHostFilesTotal, bcHost, 11)
}

// With a push token (as the operator runs it), a push or delete over
// loopback without the token is refused too: a service-mesh sidecar
// forwards any pod's request from a loopback address (Istio's 127.0.0.6),
// so loopback alone let every pod of the cluster delete or forge another
// tenant's metrics. The operator's own pusher sends the token.
func TestPushesNeedTheTokenEvenOverLoopback(t *testing.T) {
	s, _ := startServer(t, ServerOptions{PushToken: "s3cr3t-token"})
	if err := NewPusherWithToken(s.URL(), "s3cr3t-token").RestoreSessionFinished(context.Background(), fixtureRestore(), nil, true); err != nil {
		t.Fatalf("the operator's pusher, with the token: %v", err)
	}
	h := s.Handler()
	body := "# TYPE stash_backup_host_backup_success gauge\nstash_backup_host_backup_success{hostname=\"host-0\"} 1\n"
	for _, method := range []string{http.MethodPut, http.MethodPost, http.MethodDelete} {
		for _, token := range []string{"", "guess"} {
			req := httptest.NewRequest(method, "/metrics/job/"+bcJob, strings.NewReader(body))
			req.RemoteAddr = "127.0.0.6:40000"
			if token != "" {
				req.Header.Set(PushTokenHeader, token)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusForbidden {
				t.Errorf("%s through a mesh sidecar with token %q: %d, want 403", method, token, rec.Code)
			}
		}
	}
	if err := NewPusher(s.URL()).RestoreSessionFinished(context.Background(), fixtureRestore(), nil, true); err == nil {
		t.Error("a pusher without the token was accepted")
	}
}
