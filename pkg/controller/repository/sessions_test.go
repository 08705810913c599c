package repository

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

// backedUp is a session whose host took snaps and whose retention removed
// removed snapshots (none ran if removed < 0), recorded at at.
func backedUp(name string, at time.Time, removed int64, snaps ...string) *v1beta1.BackupSession {
	s := &v1beta1.BackupSession{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"},
		Spec:   v1beta1.BackupSessionSpec{Invoker: v1beta1.BackupInvokerRef{Kind: v1beta1.KindBackupConfiguration, Name: "bc"}},
		Status: v1beta1.BackupSessionStatus{Phase: v1beta1.BackupSessionRunning}}
	h := v1beta1.HostBackupStats{Hostname: "host-0", Phase: v1beta1.HostSucceeded}
	for _, id := range snaps {
		h.Snapshots = append(h.Snapshots, v1beta1.SnapshotStats{Name: id, Path: "/a"}, v1beta1.SnapshotStats{Name: id, Path: "/b"})
	}
	s.Status.Targets = []v1beta1.BackupTargetStatus{{Stats: []v1beta1.HostBackupStats{h}}}
	if removed >= 0 {
		s.Status.Conditions = []v1beta1.Condition{{Type: v1beta1.RetentionPolicyApplied, Status: v1beta1.ConditionTrue,
			Message: v1beta1.RetentionAppliedMessage(9, removed), LastTransitionTime: metav1.NewTime(at)}}
	} else {
		s.Status.Phase = v1beta1.BackupSessionSucceeded
		s.Status.Conditions = []v1beta1.Condition{{Type: v1beta1.MetricsPushed, Status: v1beta1.ConditionTrue, LastTransitionTime: metav1.NewTime(at)}}
	}
	return s
}

func TestBackupStatusFromSessions(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	st := v1beta1.RepositoryStatus{SnapshotCount: 7}
	running := backedUp("bc-0", t0, 0, "s0")
	running.Status.Conditions = nil // no result recorded yet
	failed := backedUp("bc-f", t0.Add(time.Minute), 3, "sf")
	failed.Status.Targets[0].Stats[0].Phase = v1beta1.HostFailed
	one := backedUp("bc-1", t0.Add(2*time.Minute), 2, "s1")
	one.Status.Conditions = append(one.Status.Conditions, v1beta1.Condition{Type: v1beta1.RepositoryIntegrityVerified, Status: v1beta1.ConditionTrue})
	two := backedUp("bc-2", t0.Add(3*time.Minute), -1, "s2", "s3") // no retention: recorded at its end
	sessions := []*v1beta1.BackupSession{two, running, failed, one}

	if !fromSessions(&st, sessions) {
		t.Fatal("no change reported")
	}
	// 7 + 1 (s1) - 2 + 2 (s2, s3); the failed host's and the running session's count nothing.
	if st.SnapshotCount != 8 || st.SnapshotsRemovedOnLastCleanup != 2 || st.Integrity == nil || !*st.Integrity {
		t.Fatalf("status = %+v; want 8 snapshots, 2 removed, integrity true", st)
	}
	if st.LastBackupTime == nil || !st.LastBackupTime.Time.Equal(t0.Add(3*time.Minute)) ||
		st.FirstBackupTime == nil || !st.FirstBackupTime.Time.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("first %v last %v; want the first and the last backup's", st.FirstBackupTime, st.LastBackupTime)
	}
	// Seen again (a resync, a restart): counted once.
	if fromSessions(&st, sessions) || st.SnapshotCount != 8 {
		t.Fatalf("the same sessions counted again: %+v", st)
	}
	// A later session moves it on; the count never goes below zero.
	three := backedUp("bc-3", t0.Add(4*time.Minute), 20)
	if !fromSessions(&st, append(sessions, three)) || st.SnapshotCount != 0 || st.SnapshotsRemovedOnLastCleanup != 20 {
		t.Fatalf("after a retention removing 20: %+v", st)
	}
	if !st.FirstBackupTime.Time.Equal(t0.Add(2 * time.Minute)) {
		t.Fatalf("firstBackupTime moved to %v", st.FirstBackupTime)
	}
}

// The Repository controller writes what a backup through it learnt, for
// a configuration in another namespace too, and is re-queued by the
// session's result.
func TestSyncWritesBackupStatus(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	s := backedUp("bc-1", t0, 1, "s1", "s2")
	s.Namespace, s.Spec.Invoker.Name = "other", "a"
	repo := repository("demo")
	repo.Status.SnapshotCount = 4
	f := newFixture(t, repo, bc("other", "a", "demo"), s)
	f.sync("demo", "repo")
	st := f.repo("demo", "repo").Status
	if st.SnapshotCount != 5 || st.SnapshotsRemovedOnLastCleanup != 1 || st.LastBackupTime == nil || !st.LastBackupTime.Time.Equal(t0) || st.FirstBackupTime == nil {
		t.Fatalf("status = %+v; want 5 snapshots, 1 removed, last and first backup at %v", st, t0)
	}
	f.c.onSessionResult(s)
	if key, _ := f.c.queue.Get(); key != "demo/repo" {
		t.Fatalf("queued %q, want demo/repo", key)
	}
}
