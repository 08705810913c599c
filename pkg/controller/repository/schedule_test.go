package repository

import (
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
