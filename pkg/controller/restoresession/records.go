package restoresession

import (
	"context"
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/jobenv"
	"github.com/stowhq/stow/pkg/names"
)

// resolvedSnapshots picks what a restore without selecting rules restores
// from the target's Snapshot records: for each path, the newest record of
// the target PVC in the restore's Repository. The runner then restores them
// without listing the repository first. It returns nil, and the runner
// lists as before, when a rule selects snapshots, paths or a host, when the
// target is created from volumeClaimTemplates, or when there are no records
// (a repository written by another cluster, or records deleted by hand).
func (c *Controller) resolvedSnapshots(ctx context.Context, rs *v1beta1.RestoreSession, repo *v1beta1.Repository) ([]jobenv.ResolvedSnapshot, error) {
	t := rs.Spec.Target
	if t == nil || t.Ref.Name == "" || len(t.VolumeClaimTemplates) > 0 {
		return nil, nil
	}
	for _, r := range t.Rules {
		if len(r.Snapshots) > 0 || len(r.Paths) > 0 || r.SourceHost != "" {
			return nil, nil
		}
	}
	sel := labels.SelectorFromSet(labels.Set{
		v1beta1.LabelTargetKind:      v1beta1.KindPersistentVolumeClaim,
		v1beta1.LabelTargetName:      names.LabelValue(t.Ref.Name),
		v1beta1.LabelTargetNamespace: rs.Namespace,
	})
	list, err := c.Stow.StowV1beta1().Snapshots(rs.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, err
	}
	// The operator stamps records with its own clock when it writes them:
	// one dated in the future was written by someone else, and would pin
	// every later restore of the PVC to it. A minute covers a clock step
	// between operator replicas.
	asOf := c.Clock.Now().Add(time.Minute)
	if rs.Spec.RestoreAsOf != nil && rs.Spec.RestoreAsOf.Time.Before(asOf) {
		asOf = rs.Spec.RestoreAsOf.Time
	}
	return newestPerPath(list.Items, rs.Namespace, t.Ref.Name, repo, asOf), nil
}

// newestPerPath keeps the records of PVC ns/pvc in repo (taken at or before
// asOf, unless zero) and returns, for each path, the newest one, grouped by
// snapshot and ordered by id.
func newestPerPath(records []v1beta1.Snapshot, ns, pvc string, repo *v1beta1.Repository, asOf time.Time) []jobenv.ResolvedSnapshot {
	newest := map[string]*v1beta1.Snapshot{}
	for i := range records {
		s := &records[i]
		repoNS := s.Spec.Repository.Namespace
		if repoNS == "" {
			repoNS = s.Namespace
		}
		targetNS := s.Spec.Target.Namespace
		if targetNS == "" {
			targetNS = s.Namespace
		}
		if s.DeletionTimestamp != nil || s.Spec.Repository.Name != repo.Name || repoNS != repo.Namespace ||
			s.Spec.Target.Name != pvc || targetNS != ns || len(s.Spec.ID) != 64 ||
			(!asOf.IsZero() && s.Spec.Time.After(asOf)) {
			continue
		}
		for _, p := range s.Spec.Paths {
			if cur, ok := newest[p]; !ok || s.Spec.Time.After(cur.Spec.Time.Time) {
				newest[p] = s
			}
		}
	}
	byID := map[string]*jobenv.ResolvedSnapshot{}
	for p, s := range newest {
		r, ok := byID[s.Spec.ID]
		if !ok {
			r = &jobenv.ResolvedSnapshot{ID: s.Spec.ID, Time: s.Spec.Time.UTC(), MountPath: s.Spec.MountPath}
			byID[s.Spec.ID] = r
		}
		r.Paths = append(r.Paths, p)
	}
	out := make([]jobenv.ResolvedSnapshot, 0, len(byID))
	for _, r := range byID {
		sort.Strings(r.Paths)
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
