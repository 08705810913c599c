package v1beta1

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestSessionResult(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	t1 := metav1.NewTime(t0.Add(time.Minute))
	s := &BackupSession{Status: BackupSessionStatus{Phase: BackupSessionRunning,
		Conditions: []Condition{{Type: RetentionPolicyApplied, Status: ConditionTrue, Message: RetentionAppliedMessage(3, 12), LastTransitionTime: t0}},
		Targets: []BackupTargetStatus{{Stats: []HostBackupStats{
			{Hostname: "a", Phase: HostSucceeded, Snapshots: []SnapshotStats{{Name: "x", Path: "/1"}, {Name: "x", Path: "/2"}, {Name: "y"}}},
			{Hostname: "b", Phase: HostFailed, Snapshots: []SnapshotStats{{Name: "z"}}},
		}}}}}
	if kept, removed, at, ok := s.Retention(); !ok || kept != 3 || removed != 12 || !at.Equal(&t0) {
		t.Fatalf("Retention() = %d, %d, %v, %v; want 3, 12, %v, true", kept, removed, at, ok, t0)
	}
	if s.EndTime() != nil {
		t.Fatal("a running session has an end")
	}
	if at := s.ResultTime(); at == nil || !at.Equal(&t0) {
		t.Fatalf("ResultTime() = %v, want the retention's %v", at, t0)
	}
	if !s.BackedUp() || s.SnapshotsTaken() != 2 {
		t.Fatalf("BackedUp() %v SnapshotsTaken() %d; want true, 2 (a failed host's snapshot does not count)", s.BackedUp(), s.SnapshotsTaken())
	}
	s.Status.Phase = BackupSessionSucceeded
	s.Status.Conditions = append(s.Status.Conditions, Condition{Type: MetricsPushed, Status: ConditionTrue, LastTransitionTime: t1})
	if end := s.EndTime(); end == nil || !end.Equal(&t1) {
		t.Fatalf("EndTime() = %v, want its newest condition's %v", end, t1)
	}

	// A failed retention, or a message of another form, is no retention.
	s.Status.Conditions[0].Status = ConditionFalse
	if _, _, _, ok := s.Retention(); ok {
		t.Fatal("a failed retention was read as applied")
	}
	s.Status.Conditions[0] = Condition{Type: RetentionPolicyApplied, Status: ConditionTrue, Message: "kept some", LastTransitionTime: t0}
	if _, _, _, ok := s.Retention(); ok {
		t.Fatal("a message without counts was read")
	}
	// Without a retention, the result is recorded at the end.
	s.Status.Conditions = s.Status.Conditions[1:]
	if at := s.ResultTime(); at == nil || !at.Equal(&t1) {
		t.Fatalf("ResultTime() without retention = %v, want the end %v", at, t1)
	}
}
