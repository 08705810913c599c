package internal

import (
	"fmt"

	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/tools/cache"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

// WatchSessionResults calls fn with every BackupSession whose result (what
// apis/stow/v1beta1/sessionresult.go reads of it: phase, end, retention,
// hosts, snapshots) appears or changes. The BackupConfiguration and
// Repository controllers derive status from those results; a session's
// other changes (its Job starting, a hook running) do not concern them.
func WatchSessionResults(sessions cache.SharedIndexInformer, fn func(*v1beta1.BackupSession)) cache.InformerSynced {
	if _, err := sessions.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if s, ok := obj.(*v1beta1.BackupSession); ok && resultOf(s) != (sessionResult{}) {
				fn(s)
			}
		},
		UpdateFunc: func(old, cur any) {
			o, ok1 := old.(*v1beta1.BackupSession)
			n, ok2 := cur.(*v1beta1.BackupSession)
			if ok1 && ok2 && resultOf(o) != resultOf(n) {
				fn(n)
			}
		},
	}); err != nil {
		utilruntime.HandleError(fmt.Errorf("add event handler: %v", err))
	}
	return sessions.HasSynced
}

// sessionResult is what the status derived from a session depends on.
type sessionResult struct {
	phase           v1beta1.BackupSessionPhase
	end, resultTime string
	kept, removed   int64
	retained        bool
	backedUp        bool
	taken           int64
	integrity       v1beta1.ConditionStatus
}

func resultOf(s *v1beta1.BackupSession) sessionResult {
	r := sessionResult{phase: s.Status.Phase, backedUp: s.BackedUp(), taken: s.SnapshotsTaken()}
	if !r.phase.IsFinal() && !v1beta1.HasCondition(s.Status.Conditions, v1beta1.RetentionPolicyApplied) && !r.backedUp {
		return sessionResult{}
	}
	if t := s.EndTime(); t != nil {
		r.end = t.UTC().String()
	}
	if t := s.ResultTime(); t != nil {
		r.resultTime = t.UTC().String()
	}
	r.kept, r.removed, _, r.retained = s.Retention()
	if c := v1beta1.GetCondition(s.Status.Conditions, v1beta1.RepositoryIntegrityVerified); c != nil {
		r.integrity = c.Status
	}
	return r
}
