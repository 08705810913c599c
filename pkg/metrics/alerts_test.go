package metrics

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"k8s.io/client-go/util/workqueue"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/jobresult"
)

// The shipped alerts are evaluated by the Prometheus query engine against
// what Prometheus would scrape from the operator: the real pusher pushes
// into the real embedded Pushgateway, /metrics is scraped every minute of a
// simulated half hour, and each alert's expression must hold for its whole
// `for` in a world where it should fire, and never in a healthy one. The
// labels its annotations use must be on the result.

// world is an embedded Pushgateway with a pusher on a simulated clock.
type world struct {
	t     *testing.T
	url   string
	p     *httpPusher
	store *scrapeStore
}

func newWorld(t *testing.T, now time.Time) *world {
	s, _ := startServer(t, ServerOptions{})
	p := NewPusher(s.URL()).(*httpPusher)
	p.now = func() time.Time { return now }
	return &world{t: t, url: s.URL(), p: p, store: newScrapeStore()}
}

func (w *world) at(now time.Time) *httpPusher {
	w.p.now = func() time.Time { return now }
	return w.p
}

// scrapeEvery stores a scrape per minute from from to to; between scrapes
// it calls between (nil: nothing), as time passing would.
func (w *world) scrapeEvery(from, to time.Time, between func()) {
	for ts := from; !ts.After(to); ts = ts.Add(time.Minute) {
		w.store.add(ts, scrape(w.t, w.url))
		if between != nil {
			between()
		}
	}
}

func bcNamed(ns, name string) *v1beta1.BackupConfiguration {
	bc := fixtureBC()
	bc.Namespace, bc.Name = ns, name
	return bc
}

func sessionOf(bc *v1beta1.BackupConfiguration, phase v1beta1.TargetPhase, created time.Time, hosts ...v1beta1.HostBackupStats) *v1beta1.BackupSession {
	s := fixtureSession(phase, created)
	s.Namespace, s.Spec.Invoker.Name = bc.Namespace, bc.Name
	s.Status.Targets[0].Stats = hosts
	return s
}

var labelRef = regexp.MustCompile(`\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)`)

// fires requires rule's expression to hold at every minute of its `for`
// ending at end, with every label its annotations use; it returns the last
// result.
func fires(t *testing.T, s *scrapeStore, r alertRule, end time.Time) string {
	t.Helper()
	hold := time.Duration(0)
	if r.For != "" {
		d, err := model.ParseDuration(r.For)
		if err != nil {
			t.Fatalf("%s: for %q: %v", r.Alert, r.For, err)
		}
		hold = time.Duration(d)
	}
	var last string
	for ts := end.Add(-hold); !ts.After(end); ts = ts.Add(time.Minute) {
		v := evalAt(t, s, r.Expr, ts)
		if len(v) == 0 {
			t.Errorf("%s: expression false at %s (%s before the end of its `for` %s)", r.Alert, ts.Format(time.TimeOnly), end.Sub(ts), r.For)
			return ""
		}
		last = v.String()
		for _, smp := range v {
			for _, ann := range r.Annotations {
				for _, m := range labelRef.FindAllStringSubmatch(ann, -1) {
					if !smp.Metric.Has(m[1]) {
						t.Errorf("%s: annotation uses $labels.%s, absent from %s", r.Alert, m[1], smp.Metric)
					}
				}
			}
		}
	}
	return last
}

func TestShippedAlertsFire(t *testing.T) {
	end := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	start := end.Add(-30 * time.Minute)
	ctx := context.Background()
	w := newWorld(t, start)

	// demo/nightly (every 30 minutes) last succeeded 3 hours ago; its last
	// session failed in the backup step (host-0 failed, update-status never
	// ran).
	nightly := bcNamed("demo", "nightly")
	ok := backupResult()
	must(t, w.at(end.Add(-3*time.Hour)).BackupSessionFinished(ctx, nightly, nil, sessionOf(nightly, v1beta1.TargetSucceeded, end.Add(-3*time.Hour), ok), true), "old success")
	must(t, w.at(start).BackupSessionFinished(ctx, nightly, nil, sessionOf(nightly, v1beta1.TargetFailed, start,
		v1beta1.HostBackupStats{Hostname: "host-0", Phase: v1beta1.HostFailed, Error: "restic backup: exit status 1"}), false), "failure")
	// demo/paused skipped its last session.
	paused := bcNamed("demo", "paused")
	must(t, w.at(start).BackupSessionSkipped(ctx, paused, nil, sessionOf(paused, "", start)), "skipped")
	// Repository repos/broken failed its check; repos/old was last checked 9 days ago.
	broken := gcsRepo()
	broken.Name = "broken"
	must(t, w.at(start).MaintenanceResult(ctx, broken, jobresult.Result{Integrity: ptr(false)}), "failed check")
	old := gcsRepo()
	old.Name = "old"
	must(t, w.at(end.Add(-9*24*time.Hour)).MaintenanceResult(ctx, old, jobresult.Result{Integrity: ptr(true)}), "old check")
	// A restore failed.
	must(t, w.at(start).RestoreSessionFinished(ctx, fixtureRestore(), nil, false), "failed restore")

	// The operator: a controller failing 60 reconciles a minute, and a
	// worker busy for 11 minutes on one item (the queue on a fake clock).
	clock := testingclock.NewFakeClock(start)
	q := workqueue.NewTypedWithConfig(workqueue.TypedQueueConfig[string]{Name: "alerttest-stuck", Clock: clock})
	defer q.ShutDown()
	q.Add("item")
	item, _ := q.Get()
	// The queue's metrics loop ticks on the fake clock once it has its ticker.
	waitFor(t, "the workqueue's metrics ticker", clock.HasWaiters)
	clock.Step(11 * time.Minute)
	longest := func() float64 {
		for _, m := range series(scrape(t, w.url), "workqueue_longest_running_processor_seconds", map[string]string{"name": "alerttest-stuck"}) {
			return value(m)
		}
		return 0
	}
	waitFor(t, "the workqueue gauge to show the stuck worker", func() bool { return longest() > 600 })

	w.scrapeEvery(start, end, func() {
		for i := 0; i < 60; i++ {
			ObserveReconcile("alerttest", time.Now(), errTest)
		}
	})

	want := map[string]string{
		"StowBackupSessionFailed":       `invoker_name="nightly"`,
		"StowBackupNoRecentSuccess":     `invoker_name="nightly"`,
		"StowBackupSessionSkipped":      `invoker_name="paused"`,
		"StowBackupHostFailed":          `hostname="host-0"`,
		"StowRepositoryIntegrityFailed": `name="broken"`,
		"StowRepositoryIntegrityStale":  `name="old"`,
		"StowRestoreSessionFailed":      `invoker_name="nfs-pvc-restore"`,
		"StowReconcileErrors":           `controller="alerttest"`,
		"StowWorkqueueStuck":            `name="alerttest-stuck"`,
	}
	rules := shippedAlerts(t)
	for _, r := range rules {
		t.Run(r.Alert, func(t *testing.T) {
			needle, ok := want[r.Alert]
			if !ok {
				t.Fatalf("alert %s has no scenario in this test: add one", r.Alert)
			}
			if got := fires(t, w.store, r, end); got != "" && !strings.Contains(got, needle) {
				t.Errorf("%s fired for %s, want the series with %s", r.Alert, got, needle)
			}
		})
	}
	if len(rules) != len(want) {
		t.Errorf("%d shipped alerts, %d scenarios", len(rules), len(want))
	}

	// Once the worker is done the gauge falls back, so later tests see a
	// healthy queue.
	q.Done(item)
	clock.Step(time.Second)
	waitFor(t, "the workqueue gauge to clear", func() bool { return longest() == 0 })
}

// In a healthy world (every session, check and restore succeeded, the
// operator not failing) no shipped alert's expression holds.
func TestShippedAlertsQuietWhenHealthy(t *testing.T) {
	end := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	start := end.Add(-30 * time.Minute)
	ctx := context.Background()
	w := newWorld(t, start)
	nightly := bcNamed("demo", "nightly")
	must(t, w.at(start).BackupSessionFinished(ctx, nightly, nil, sessionOf(nightly, v1beta1.TargetSucceeded, start, backupResult()), true), "success")
	must(t, w.at(start).BackupRepositoryResult(ctx, nightly, gcsRepo(), jobresult.Result{Integrity: ptr(true), Retention: &jobresult.RetentionResult{SnapshotsKept: 3}}), "repository")
	must(t, w.at(start).MaintenanceResult(ctx, gcsRepo(), jobresult.Result{Integrity: ptr(true)}), "check")
	rs := fixtureRestore()
	rs.Status.Stats = []v1beta1.HostRestoreStats{{Hostname: "host-0", Phase: v1beta1.HostSucceeded}}
	must(t, w.at(start).RestoreSessionFinished(ctx, rs, nil, true), "restore")
	w.scrapeEvery(start, end, nil)
	for _, r := range shippedAlerts(t) {
		if v := evalAt(t, w.store, r.Expr, end); len(v) > 0 {
			t.Errorf("%s holds in a healthy world: %s", r.Alert, v)
		}
	}
}

type testError string

func (e testError) Error() string { return string(e) }

const errTest = testError("reconcile failed")

// waitFor polls cond (a scrape) until it holds, for at most 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
