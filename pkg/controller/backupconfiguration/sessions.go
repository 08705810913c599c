package backupconfiguration

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/controller/internal"
	"github.com/stowhq/stow/pkg/controller/internal/index"
)

// sessionsOf lists bc's BackupSessions from the cache.
func (c *Controller) sessionsOf(bc *v1beta1.BackupConfiguration) []*v1beta1.BackupSession {
	return index.SessionsOf(c.sessionInformer, bc.Namespace, bc.Name)
}

// onSessionAdded re-queues the configuration of a new session when it has
// no finalizer yet: the session's metrics will need one (needsFinalizer),
// and the sooner it is there, the smaller the window in which a deletion
// leaves only gone to clean up.
func (c *Controller) onSessionAdded(obj any) {
	s, ok := obj.(*v1beta1.BackupSession)
	if !ok || s.Spec.Invoker.Kind != v1beta1.KindBackupConfiguration || s.Spec.Invoker.Name == "" {
		return
	}
	if bc, err := c.bcs.BackupConfigurations(s.Namespace).Get(s.Spec.Invoker.Name); err == nil && !internal.HasFinalizer(bc, v1beta1.Finalizer) {
		c.queue.Add(s.Namespace + "/" + s.Spec.Invoker.Name)
	}
}

// onSessionResult re-queues the configuration of a session whose result
// appeared or changed: its status follows from it.
func (c *Controller) onSessionResult(s *v1beta1.BackupSession) {
	if s.Spec.Invoker.Kind == v1beta1.KindBackupConfiguration && s.Spec.Invoker.Name != "" {
		c.queue.Add(s.Namespace + "/" + s.Spec.Invoker.Name)
	}
}

// fromSessions derives the part of a configuration's status its sessions
// decide, and reports whether st changed:
//   - lastSuccessTime: the end of its newest Succeeded session; it never
//     moves back (history cleanup may delete that session);
//   - snapshotCount: how many snapshots the newest applied retention kept.
//     Cleanup deletes the oldest sessions first, so the newest retention
//     of those left is the newest there was; with none left, the count
//     stays as it is.
func fromSessions(st *v1beta1.BackupConfigurationStatus, sessions []*v1beta1.BackupSession) bool {
	changed := false
	var newest *v1beta1.BackupSession // the session of the newest retention
	var newestAt metav1.Time
	var kept int64
	for _, s := range sessions {
		if s.Status.Phase == v1beta1.BackupSessionSucceeded {
			if end := s.EndTime(); end != nil && (st.LastSuccessTime == nil || st.LastSuccessTime.Before(end)) {
				st.LastSuccessTime, changed = end, true
			}
		}
		k, _, at, ok := s.Retention()
		// Newest by time, then by name (the names of one configuration's
		// sessions end in their creation time).
		if ok && (newest == nil || newestAt.Before(&at) || (at.Equal(&newestAt) && s.Name > newest.Name)) {
			newest, newestAt, kept = s, at, k
		}
	}
	if newest != nil && (st.SnapshotCount == nil || *st.SnapshotCount != kept) {
		st.SnapshotCount, changed = &kept, true
	}
	return changed
}
