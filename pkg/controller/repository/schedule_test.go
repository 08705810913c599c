package repository

import (
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

func repoAt(created time.Time) *v1beta1.Repository {
	return &v1beta1.Repository{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "repo", CreationTimestamp: metav1.NewTime(created)},
		Spec: v1beta1.RepositorySpec{Backend: v1beta1.Backend{StorageSecretName: "s", S3: &v1beta1.S3Spec{Endpoint: "e", Bucket: "b"}}}}
}

func TestMaintenanceDue(t *testing.T) {
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := repoAt(created)
	r.Spec.Maintenance = &v1beta1.RepositoryMaintenance{
		Check:   &v1beta1.CheckSchedule{MaintenanceSchedule: v1beta1.MaintenanceSchedule{Schedule: "0 3 * * *"}},
		Prune:   &v1beta1.MaintenanceSchedule{Schedule: "0 4 * * 0"},
		Refresh: &v1beta1.MaintenanceSchedule{Suspend: true},
	}
	// Before the first check time: nothing due, next times known.
	p := due(r, r.Status.Maintenance, created.Add(2*time.Hour))
	if len(p.tasks) != 0 || !p.next[v1beta1.MaintenanceCheck].Equal(created.Add(3*time.Hour)) {
		t.Fatalf("plan at 02:00 = %+v", p)
	}
	if _, ok := p.next[v1beta1.MaintenanceRefresh]; ok {
		t.Error("a suspended task has a next run")
	}
	// At 03:30 the check is due (once), and its id is stable.
	now := created.Add(3*time.Hour + 30*time.Minute)
	p = due(r, r.Status.Maintenance, now)
	if len(p.tasks) != 1 || p.tasks[0] != v1beta1.MaintenanceCheck || !p.dueAt.Equal(created.Add(3*time.Hour)) || p.exclusive() != true {
		t.Fatalf("plan at 03:30 = %+v", p)
	}
	if p.runID() != due(r, r.Status.Maintenance, now.Add(time.Minute)).runID() {
		t.Error("the run id changes between reconciles")
	}
	// Once it ran, it is due again the next day only.
	last := metav1.NewTime(now)
	r.Status.Maintenance = &v1beta1.MaintenanceStatus{Check: &v1beta1.MaintenanceRun{LastTime: &last}}
	if p := due(r, r.Status.Maintenance, now.Add(time.Hour)); len(p.tasks) != 0 {
		t.Fatalf("check due again right after it ran: %+v", p)
	}
	// A request runs a task now, once per value; unlock has no schedule.
	r.Annotations = map[string]string{v1beta1.MaintenanceRequestAnnotation(v1beta1.MaintenanceUnlock): "t1"}
	p = due(r, r.Status.Maintenance, now.Add(time.Hour))
	if len(p.tasks) != 1 || p.tasks[0] != v1beta1.MaintenanceUnlock || p.requests[v1beta1.MaintenanceUnlock] != "t1" || p.exclusive() {
		t.Fatalf("plan with an unlock request = %+v", p)
	}
	r.Status.Maintenance.Unlock = &v1beta1.MaintenanceRun{Request: "t1"}
	if p := due(r, r.Status.Maintenance, now.Add(time.Hour)); len(p.tasks) != 0 {
		t.Fatalf("an answered request runs again: %+v", p)
	}
	// Defaults: weekly check and prune, daily refresh, at stable random times.
	d := repoAt(created)
	if spec, _ := taskSchedule(d, v1beta1.MaintenanceCheck); spec == "" || spec == v1beta1.ScheduleWeeklyRandom {
		t.Errorf("default check schedule %q", spec)
	}
	c, _ := taskSchedule(d, v1beta1.MaintenanceCheck)
	pr, _ := taskSchedule(d, v1beta1.MaintenancePrune)
	if c == pr {
		t.Errorf("check and prune of one repository share the minute %q", c)
	}
	if p := due(d, d.Status.Maintenance, created.Add(8*24*time.Hour)); len(p.tasks) != 3 {
		t.Errorf("after 8 days with defaults, due = %v; want check, prune and refresh", p.tasks)
	}
	// After the first backup, check and refresh run once (prune waits for
	// its schedule); a suspended task does not.
	first := repoAt(created)
	backedUp := metav1.NewTime(created.Add(10 * time.Minute))
	first.Status.FirstBackupTime = &backedUp
	if p := due(first, first.Status.Maintenance, created.Add(11*time.Minute)); strings.Join(p.tasks, ",") != "check,refresh" || !p.dueAt.Equal(backedUp.Time) {
		t.Errorf("right after the first backup, due = %v at %v; want check and refresh at the backup", p.tasks, p.dueAt)
	}
	// The controller records next times before anything ran: still never ran.
	next := metav1.NewTime(created.Add(48 * time.Hour))
	first.Status.Maintenance = &v1beta1.MaintenanceStatus{Check: &v1beta1.MaintenanceRun{NextTime: &next}, Refresh: &v1beta1.MaintenanceRun{NextTime: &next}}
	if p := due(first, first.Status.Maintenance, created.Add(11*time.Minute)); strings.Join(p.tasks, ",") != "check,refresh" {
		t.Errorf("with next times recorded, due = %v; want check and refresh", p.tasks)
	}
	first.Spec.Maintenance = &v1beta1.RepositoryMaintenance{Refresh: &v1beta1.MaintenanceSchedule{Suspend: true}}
	if p := due(first, first.Status.Maintenance, created.Add(11*time.Minute)); strings.Join(p.tasks, ",") != "check" {
		t.Errorf("with refresh suspended, due = %v; want check", p.tasks)
	}
	bad := repoAt(created)
	bad.Spec.Maintenance = &v1beta1.RepositoryMaintenance{Prune: &v1beta1.MaintenanceSchedule{Schedule: "61 * * * *"}}
	if p := due(bad, bad.Status.Maintenance, created.Add(time.Hour)); len(p.invalid) != 1 {
		t.Errorf("an invalid schedule was not reported: %+v", p)
	}
}

func TestRequestsRoundTrip(t *testing.T) {
	in := map[string]string{"check": "2026-01-02T03:04:05Z", "unlock": "a,b=c"}
	out := decodeRequests(encodeRequests(in))
	if len(out) != 2 || out["check"] != in["check"] || out["unlock"] != in["unlock"] {
		t.Fatalf("round trip: %v", out)
	}
}

// A maintenance schedule that names no existing date ("0 0 31 2 *") is
// reported as invalid, naming its field, and is never due: cron's Next
// returns the zero time for it, which due() took for "due long ago", so the
// prune ran on every reconcile, right after it had run.
func TestMaintenanceScheduleThatNeverFires(t *testing.T) {
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, s := range []string{"0 0 31 2 *", "0 0 30 2 *", "0 0 31 4,6,9,11 *"} {
		r := repoAt(created)
		r.Spec.Maintenance = &v1beta1.RepositoryMaintenance{Prune: &v1beta1.MaintenanceSchedule{Schedule: s}}
		now := created.Add(time.Minute)
		p := due(r, r.Status.Maintenance, now)
		if slices.Contains(p.tasks, v1beta1.MaintenancePrune) {
			t.Errorf("%q: prune is due at %s (dueAt %v)", s, now, p.dueAt)
		}
		if len(p.invalid) != 1 || !strings.Contains(p.invalid[0], "spec.maintenance.prune.schedule") || !strings.Contains(p.invalid[0], "never fires") {
			t.Errorf("%q: invalid = %q, want spec.maintenance.prune.schedule ... never fires", s, p.invalid)
		}
		if _, ok := p.next[v1beta1.MaintenancePrune]; ok {
			t.Errorf("%q: a next run at %v", s, p.next[v1beta1.MaintenancePrune])
		}
		last := metav1.NewTime(now)
		r.Status.Maintenance = &v1beta1.MaintenanceStatus{Prune: &v1beta1.MaintenanceRun{LastTime: &last}}
		if p := due(r, r.Status.Maintenance, now.Add(time.Second)); slices.Contains(p.tasks, v1beta1.MaintenancePrune) {
			t.Errorf("%q: prune due again 1s after it ran", s)
		}
	}
}

// due() takes cron's zero time for "not due" even for a schedule that
// passes ParseSchedule: February 29th, last run in 2097, has no match in
// the five years cron searches (2100 is no leap year).
func TestMaintenanceZeroNextTimeIsNotDue(t *testing.T) {
	created := time.Date(2097, 3, 1, 0, 0, 0, 0, time.UTC)
	r := repoAt(created)
	r.Spec.Maintenance = &v1beta1.RepositoryMaintenance{
		Prune:   &v1beta1.MaintenanceSchedule{Schedule: "0 0 29 2 *"},
		Check:   &v1beta1.CheckSchedule{MaintenanceSchedule: v1beta1.MaintenanceSchedule{Suspend: true}},
		Refresh: &v1beta1.MaintenanceSchedule{Suspend: true},
	}
	p := due(r, r.Status.Maintenance, created.Add(time.Hour))
	if len(p.tasks) != 0 || len(p.next) != 0 {
		t.Errorf("tasks %v, next %v; want none", p.tasks, p.next)
	}
	if len(p.invalid) != 1 || !strings.Contains(p.invalid[0], "spec.maintenance.prune.schedule") {
		t.Errorf("invalid = %q", p.invalid)
	}
}
