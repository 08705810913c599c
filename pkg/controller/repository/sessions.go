package repository

import (
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/controller/internal"
	"github.com/stowhq/stow/pkg/controller/internal/index"
)

// onSessionResult re-queues the Repository of the configuration whose
// session's result appeared or changed: its backup status follows from it.
func (c *Controller) onSessionResult(s *v1beta1.BackupSession) {
	if s.Spec.Invoker.Kind != v1beta1.KindBackupConfiguration {
		return
	}
	bc, err := c.bcs.BackupConfigurations(s.Namespace).Get(s.Spec.Invoker.Name)
	if err == nil && bc.Spec.Repository.Name != "" {
		c.queue.Add(internal.RepositoryKey(bc.Namespace, bc.Spec.Repository))
	}
}

// backupSessions lists, from the cache, the BackupSessions of the live
// configurations (in any namespace) that use repo.
func (c *Controller) backupSessions(repo *v1beta1.Repository) []*v1beta1.BackupSession {
	var out []*v1beta1.BackupSession
	for _, bc := range index.Lookup[*v1beta1.BackupConfiguration](c.bcInformer, index.ByRepository, repo.Namespace+"/"+repo.Name) {
		out = append(out, index.SessionsOf(c.sessionInformer, bc.Namespace, bc.Name)...)
	}
	return out
}

// fromSessions applies to st what the backups through the repository
// learnt since its lastBackupTime, oldest first, and reports whether st
// changed. A session counts once a host of it succeeded and its result is
// recorded (v1beta1.BackupSession.ResultTime); lastBackupTime moves to that
// time, so each session counts once however often it is seen, and across
// restarts. Per session:
//   - snapshotCount moves by the snapshots it took and those its retention
//     removed (the refresh task sets it to what restic lists, others'
//     snapshots included);
//   - snapshotsRemovedOnLastCleanup is what its retention removed;
//   - integrity is its restic check's, when its Task asked for one;
//   - firstBackupTime is set by the first.
func fromSessions(st *v1beta1.RepositoryStatus, sessions []*v1beta1.BackupSession) bool {
	type done struct {
		s  *v1beta1.BackupSession
		at metav1.Time
	}
	var news []done
	for _, s := range sessions {
		at := s.ResultTime()
		if at == nil || !s.BackedUp() || (st.LastBackupTime != nil && !st.LastBackupTime.Before(at)) {
			continue
		}
		news = append(news, done{s, *at})
	}
	sort.Slice(news, func(i, j int) bool {
		if !news[i].at.Equal(&news[j].at) {
			return news[i].at.Before(&news[j].at)
		}
		return news[i].s.Namespace+"/"+news[i].s.Name < news[j].s.Namespace+"/"+news[j].s.Name
	})
	for _, d := range news {
		st.SnapshotCount += d.s.SnapshotsTaken()
		if _, removed, _, ok := d.s.Retention(); ok {
			st.SnapshotCount -= removed
			st.SnapshotsRemovedOnLastCleanup = removed
		}
		st.SnapshotCount = max(0, st.SnapshotCount)
		if c := v1beta1.GetCondition(d.s.Status.Conditions, v1beta1.RepositoryIntegrityVerified); c != nil {
			v := c.Status == v1beta1.ConditionTrue
			st.Integrity = &v
		}
		t := d.at
		st.LastBackupTime = &t
		if st.FirstBackupTime == nil {
			first := t
			st.FirstBackupTime = &first
		}
	}
	return len(news) > 0
}
