package backupconfiguration

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

// session is a final session of bc that ended at end, with a retention
// that kept kept snapshots (none if kept < 0).
func session(name string, phase v1beta1.BackupSessionPhase, end time.Time, kept int64) *v1beta1.BackupSession {
	s := &v1beta1.BackupSession{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"},
		Spec:   v1beta1.BackupSessionSpec{Invoker: v1beta1.BackupInvokerRef{Kind: v1beta1.KindBackupConfiguration, Name: "bc"}},
		Status: v1beta1.BackupSessionStatus{Phase: phase}}
	if kept >= 0 {
		s.Status.Conditions = append(s.Status.Conditions, v1beta1.Condition{Type: v1beta1.RetentionPolicyApplied, Status: v1beta1.ConditionTrue,
			Message: v1beta1.RetentionAppliedMessage(kept, 1), LastTransitionTime: metav1.NewTime(end.Add(-time.Second))})
	}
	s.Status.Conditions = append(s.Status.Conditions, v1beta1.Condition{Type: v1beta1.MetricsPushed, Status: v1beta1.ConditionTrue, LastTransitionTime: metav1.NewTime(end)})
	return s
}

func TestStatusFromSessions(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	var st v1beta1.BackupConfigurationStatus
	if fromSessions(&st, nil) || st.LastSuccessTime != nil || st.SnapshotCount != nil {
		t.Fatalf("no sessions: %+v", st)
	}
	sessions := []*v1beta1.BackupSession{
		session("bc-3", v1beta1.BackupSessionFailed, t0.Add(3*time.Hour), -1), // failed before its retention
		session("bc-1", v1beta1.BackupSessionSucceeded, t0.Add(time.Hour), 4),
		session("bc-2", v1beta1.BackupSessionFailed, t0.Add(2*time.Hour), 5), // retention ran, metrics failed
	}
	if !fromSessions(&st, sessions) {
		t.Fatal("no change reported")
	}
	if st.LastSuccessTime == nil || !st.LastSuccessTime.Time.Equal(t0.Add(time.Hour)) {
		t.Errorf("lastSuccessTime = %v, want the end of the newest Succeeded session", st.LastSuccessTime)
	}
	if st.SnapshotCount == nil || *st.SnapshotCount != 5 {
		t.Errorf("snapshotCount = %v, want 5 (the newest retention's)", st.SnapshotCount)
	}
	if fromSessions(&st, sessions) {
		t.Error("the same sessions changed the status again")
	}
	// History cleanup deleted the sessions: the status stays.
	if fromSessions(&st, nil) || st.LastSuccessTime == nil || st.SnapshotCount == nil || *st.SnapshotCount != 5 {
		t.Errorf("without sessions: %+v", st)
	}
	// lastSuccessTime never moves back.
	later := metav1.NewTime(t0.Add(10 * time.Hour))
	st.LastSuccessTime = &later
	fromSessions(&st, sessions)
	if !st.LastSuccessTime.Equal(&later) {
		t.Errorf("lastSuccessTime moved back to %v", st.LastSuccessTime)
	}
	// Two retentions recorded in the same second: the later session's counts.
	a, b := session("bc-1700000001", v1beta1.BackupSessionSucceeded, t0, 7), session("bc-1700000002", v1beta1.BackupSessionSucceeded, t0, 8)
	fromSessions(&st, []*v1beta1.BackupSession{b, a})
	if *st.SnapshotCount != 8 {
		t.Errorf("snapshotCount = %d, want 8 (the later session's)", *st.SnapshotCount)
	}
}

// The configuration's controller writes what its sessions decide, and is
// re-queued by a session's result.
func TestSyncWritesSessionStatus(t *testing.T) {
	end := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	s := session("nightly-1", v1beta1.BackupSessionSucceeded, end, 2)
	s.Namespace, s.Spec.Invoker.Name = ns, "nightly"
	other := session("other-1", v1beta1.BackupSessionSucceeded, end.Add(time.Hour), 9) // another configuration's
	other.Namespace, other.Spec.Invoker.Name = ns, "other"
	f := newFixture(t, healthyKube(), []runtime.Object{backupConfig("nightly"), repository(ns), task(), s, other})
	f.mustSync("nightly")
	st := f.bc("nightly").Status
	if st.LastSuccessTime == nil || !st.LastSuccessTime.Time.Equal(end) || st.SnapshotCount == nil || *st.SnapshotCount != 2 {
		t.Fatalf("status = %+v; want lastSuccessTime %v and snapshotCount 2", st, end)
	}
	for f.c.queue.Len() > 0 { // what the sync queued for later
		k, _ := f.c.queue.Get()
		f.c.queue.Done(k)
		f.c.queue.Forget(k)
	}
	f.c.onSessionResult(s)
	if key, _ := f.c.queue.Get(); key != ns+"/nightly" {
		t.Fatalf("queued %q, want %s/nightly", key, ns)
	}
}
