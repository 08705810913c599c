package metrics

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/jobresult"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"80 B", 80, true},
		{"11.254 MiB", 11.254 * (1 << 20), true},
		{"1.000 KiB", 1024, true},
		{"2 GiB", 2 << 30, true},
		{"1.5 GB", 1.5e9, true},
		{"1234", 1234, true},
		{"0 B", 0, true},
		{"", 0, false},
		{"lots", 0, false},
		{"1 parsec", 0, false},
		{"-1 B", 0, false},
	}
	for _, tc := range tests {
		got, err := ParseSize(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("ParseSize(%q) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestParseSeconds(t *testing.T) {
	tests := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"1m30s", 90, true},
		{"2.5s", 2.5, true},
		{"1:02", 62, true},
		{"1:00:05", 3605, true},
		{"42", 42, true},
		{"", 0, false},
		{"1:2:3:4", 0, false},
		{"a:b", 0, false},
		{"soon", 0, false},
	}
	for _, tc := range tests {
		got, err := parseSeconds(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("parseSeconds(%q) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// recorder is a fake Pushgateway that records requests and answers status.
type recorder struct {
	mu     sync.Mutex
	status int
	reqs   []string // "METHOD path"
	bodies []string
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.reqs = append(r.reqs, req.Method+" "+req.URL.EscapedPath())
	r.bodies = append(r.bodies, string(b))
	status := r.status
	r.mu.Unlock()
	w.WriteHeader(status)
}

func (r *recorder) setStatus(code int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status = code
}

func (r *recorder) last() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reqs[len(r.reqs)-1]
}

func TestPusherRequests(t *testing.T) {
	rec := &recorder{status: http.StatusOK}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	ctx := context.Background()
	p := NewPusher(srv.URL + "/")

	must(t, p.BackupSessionFinished(ctx, fixtureBC(), nil, fixtureSession(v1beta1.TargetSucceeded, time.Now()), true), "finished")
	must(t, p.RestoreSessionFinished(ctx, fixtureRestore(), nil, false), "restore")
	must(t, p.BackupRepositoryResult(ctx, fixtureBC(), nil, jobresult.Result{Integrity: ptr(true)}), "repository")
	want := []string{
		"POST /metrics/job/" + bcJob,
		"POST /metrics/job/" + restoreJob,
		"POST /metrics/job/" + bcJob,
	}
	rec.mu.Lock()
	got := strings.Join(rec.reqs, "\n")
	rec.mu.Unlock()
	if got != strings.Join(want, "\n") {
		t.Errorf("requests:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}

	for _, tc := range []struct {
		status int
		ok     bool
	}{{http.StatusAccepted, true}, {http.StatusNotFound, true}, {http.StatusInternalServerError, false}, {http.StatusForbidden, false}} {
		rec.setStatus(tc.status)
		err := p.DeleteInvokerGroup(ctx, "BackupConfiguration", "demo", "x")
		if (err == nil) != tc.ok {
			t.Errorf("delete answered %d: err=%v, want ok=%v", tc.status, err, tc.ok)
		}
	}
	if last := rec.last(); last != "DELETE /metrics/job/backupconfiguration-demo.x" {
		t.Errorf("delete request %q", last)
	}
	rec.setStatus(http.StatusBadRequest)
	if err := p.RestoreSessionFinished(ctx, fixtureRestore(), nil, false); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("push answered 400: err=%v", err)
	}
}

func TestPusherInputErrors(t *testing.T) {
	ctx := context.Background()
	if err := NewPusher("").BackupSessionSkipped(ctx, fixtureBC(), nil, fixtureSession("", time.Now())); err == nil {
		t.Errorf("empty URL: no error")
	}
	if err := NewPusher("http://127.0.0.1:1").BackupSessionFinished(ctx, nil, nil, nil, true); err == nil {
		t.Errorf("nil session: no error")
	}
	if err := NewPusher("http://127.0.0.1:1").MaintenanceResult(ctx, nil, jobresult.Result{}); err == nil {
		t.Errorf("no repository: no error")
	}
	if err := deleteGroup(ctx, httpClient, "http://user:secret@127.0.0.1:1", "j"); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("unreachable gateway: err=%v (must fail without the password)", err)
	}
}

// A session that failed before its target was recorded, whose
// BackupConfiguration is already gone, still gets correct labels.
func TestBackupSessionFallbacks(t *testing.T) {
	s, _ := startServer(t, ServerOptions{})
	ctx := context.Background()
	p := NewPusher(s.URL())
	sess := fixtureSession("", time.Now())
	sess.Status.Targets = nil
	must(t, p.BackupSessionFinished(ctx, fixtureBC(), nil, sess, false), "no targets")
	mfs := scrape(t, s.URL())
	checkLabelSets(t, mfs)
	expectValue(t, mfs, BackupTargetSuccess, bcTarget, 0)
	expectValue(t, mfs, BackupSessionSuccess, bcInvoker, 0)
	if len(series(mfs, BackupLastSuccessTime, nil)) != 0 {
		t.Errorf("failed session pushed a last success time")
	}

	must(t, p.BackupSessionFinished(ctx, nil, fixtureRepo(), fixtureSession(v1beta1.TargetSucceeded, time.Now()), true), "no bc")
	mfs = scrape(t, s.URL())
	expectValue(t, mfs, BackupSessionSuccess, bcInvoker, 1)
	one(t, mfs, BackupLastSuccessTime, bcInvoker)
}

func TestGroupURL(t *testing.T) {
	if got := groupURL("http://gw:56789/", "a b"); got != "http://gw:56789/metrics/job/a%20b" {
		t.Errorf("groupURL = %s", got)
	}
	if got := groupURL("http://gw", "a/b"); got != "http://gw/metrics/job@base64/YS9i" {
		t.Errorf("groupURL = %s", got)
	}
}

// The families a Job pushes are plain text-exposable gauges with help.
func TestBatchEncodes(t *testing.T) {
	b := batch{}
	bc := fixtureBC()
	b.gauge(BackupHostSuccess, merge(backupInvokerLabels(bc, nil, nil), targetLabels(bc.Spec.Target.Ref), hostLabels("")), 1)
	var sb strings.Builder
	enc := expfmt.NewEncoder(&sb, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range b.families() {
		must(t, enc.Encode(mf), "encode")
	}
	if !strings.Contains(sb.String(), `hostname="host-0"`) || !strings.Contains(sb.String(), "# HELP "+BackupHostSuccess) {
		t.Errorf("encoded:\n%s", sb.String())
	}
}
