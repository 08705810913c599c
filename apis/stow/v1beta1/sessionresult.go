package v1beta1

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// What a BackupSession's status tells the objects it concerns. The
// BackupSession controller writes only the session (and its Snapshot
// records); the BackupConfiguration controller derives lastSuccessTime and
// snapshotCount from the configuration's sessions, and the Repository
// controller its backup times, snapshot count and last cleanup from the
// sessions of the configurations that use it.

// retentionApplied is the message of a True RetentionPolicyApplied
// condition; Retention reads the counts back from it.
const retentionApplied = "kept %d snapshots, removed %d"

// RetentionAppliedMessage is the message of a True RetentionPolicyApplied
// condition: the configuration keeps kept snapshots, and removed were
// forgotten.
func RetentionAppliedMessage(kept, removed int64) string {
	return fmt.Sprintf(retentionApplied, kept, removed)
}

// Retention is what the retention of s did: how many of its configuration's
// snapshots it kept and removed, and when it was recorded. ok is false when
// s applied no retention (none ran yet, or it failed).
func (s *BackupSession) Retention() (kept, removed int64, at metav1.Time, ok bool) {
	c := GetCondition(s.Status.Conditions, RetentionPolicyApplied)
	if c == nil || c.Status != ConditionTrue {
		return 0, 0, metav1.Time{}, false
	}
	if _, err := fmt.Sscanf(c.Message, retentionApplied, &kept, &removed); err != nil {
		return 0, 0, metav1.Time{}, false
	}
	return kept, removed, c.LastTransitionTime, true
}

// EndTime is when s reached its final phase: the time of its newest
// condition (the finalization records one). It is nil while s runs.
func (s *BackupSession) EndTime() *metav1.Time {
	if !s.Status.Phase.IsFinal() {
		return nil
	}
	var end *metav1.Time
	for i := range s.Status.Conditions {
		if t := &s.Status.Conditions[i].LastTransitionTime; end == nil || end.Before(t) {
			end = t
		}
	}
	if end == nil {
		return nil
	}
	t := *end
	return &t
}

// ResultTime is when the results of s's backup Job were recorded: the time
// of its RetentionPolicyApplied condition (set with them), or, when its Job
// applied no retention, its end. It is nil until then.
func (s *BackupSession) ResultTime() *metav1.Time {
	if c := GetCondition(s.Status.Conditions, RetentionPolicyApplied); c != nil {
		t := c.LastTransitionTime
		return &t
	}
	return s.EndTime()
}

// BackedUp tells whether a host of s succeeded: its snapshots are in the
// repository.
func (s *BackupSession) BackedUp() bool {
	for _, t := range s.Status.Targets {
		for _, h := range t.Stats {
			if h.Phase == HostSucceeded {
				return true
			}
		}
	}
	return false
}

// SnapshotsTaken counts the distinct snapshots the succeeded hosts of s
// took (a snapshot of several paths is reported once per path).
func (s *BackupSession) SnapshotsTaken() int64 {
	seen := map[string]bool{}
	for _, t := range s.Status.Targets {
		for _, h := range t.Stats {
			if h.Phase != HostSucceeded {
				continue
			}
			for _, sn := range h.Snapshots {
				if sn.Name != "" {
					seen[sn.Name] = true
				}
			}
		}
	}
	return int64(len(seen))
}
