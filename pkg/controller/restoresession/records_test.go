package restoresession

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

func TestNewestPerPath(t *testing.T) {
	id := func(c string) string { return strings.Repeat(c, 64) }
	at := func(min int) metav1.Time { return metav1.NewTime(time.Date(2026, 12, 1, 10, min, 0, 0, time.UTC)) }
	rec := func(name, c string, min int, repo, repoNS, pvc string, paths ...string) v1beta1.Snapshot {
		return v1beta1.Snapshot{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "apps"},
			Spec: v1beta1.SnapshotSpec{ID: id(c), Time: at(min), Paths: paths, MountPath: "/stow-data",
				Repository: v1beta1.ObjectRef{Name: repo, Namespace: repoNS}, Target: v1beta1.TargetRef{Kind: "PersistentVolumeClaim", Name: pvc}},
		}
	}
	repo := &v1beta1.Repository{ObjectMeta: metav1.ObjectMeta{Name: "minio", Namespace: "apps"}}
	records := []v1beta1.Snapshot{
		rec("old", "a", 1, "minio", "", "data", "/stow-data"),
		rec("new", "b", 5, "minio", "apps", "data", "/stow-data", "/stow-data/extra"),
		rec("newer-path", "c", 7, "minio", "", "data", "/stow-data/extra"),
		rec("other-pvc", "d", 9, "minio", "", "data2", "/stow-data"),
		rec("other-repo", "e", 9, "gcs", "", "data", "/stow-data"),
		rec("other-repo-ns", "f", 9, "minio", "team-b", "data", "/stow-data"),
		{ObjectMeta: metav1.ObjectMeta{Name: "short-id", Namespace: "apps"}, Spec: v1beta1.SnapshotSpec{ID: "abc", Time: at(9),
			Paths: []string{"/stow-data"}, Repository: v1beta1.ObjectRef{Name: "minio"}, Target: v1beta1.TargetRef{Name: "data"}}},
	}
	got := newestPerPath(records, "apps", "data", repo, time.Time{})
	if len(got) != 2 || got[0].ID != id("b") || strings.Join(got[0].Paths, ",") != "/stow-data" ||
		got[1].ID != id("c") || strings.Join(got[1].Paths, ",") != "/stow-data/extra" || got[0].MountPath != "/stow-data" {
		t.Fatalf("newestPerPath = %+v; want b for /stow-data and c for /stow-data/extra", got)
	}
	if got := newestPerPath(records, "apps", "nothing", repo, time.Time{}); len(got) != 0 {
		t.Fatalf("records of no PVC: %+v", got)
	}
	// restoreAsOf 10:05: b for both paths (c at 10:07 is later); at 10:04, a.
	got = newestPerPath(records, "apps", "data", repo, at(5).Time)
	if len(got) != 1 || got[0].ID != id("b") || strings.Join(got[0].Paths, ",") != "/stow-data,/stow-data/extra" {
		t.Fatalf("as of 10:05 = %+v; want b for both paths", got)
	}
	if got = newestPerPath(records, "apps", "data", repo, at(4).Time); len(got) != 1 || got[0].ID != id("a") {
		t.Fatalf("as of 10:04 = %+v; want a", got)
	}
}

// The snapshot the operator chose is named in the executor condition, which
// outlives the restore Job (deleted by the TTL controller once it is done).
func TestChosenSnapshotIsNamedInTheExecutorCondition(t *testing.T) {
	id := strings.Repeat("b", 64)
	record := &v1beta1.Snapshot{
		ObjectMeta: metav1.ObjectMeta{Name: id[:8], Namespace: ns, Labels: map[string]string{
			v1beta1.LabelTargetKind: v1beta1.KindPersistentVolumeClaim, v1beta1.LabelTargetName: "data", v1beta1.LabelTargetNamespace: ns}},
		Spec: v1beta1.SnapshotSpec{ID: id, Time: metav1.NewTime(time.Date(2026, 2, 28, 10, 5, 0, 0, time.UTC)), Paths: []string{"/stow-data"},
			MountPath: "/stow-data", Repository: v1beta1.ObjectRef{Name: "repo"}, Target: v1beta1.TargetRef{Kind: "PersistentVolumeClaim", Name: "data"}},
	}
	f := newFixture(t, repository("repo"), secret(), pvc("data"), newRestore("rs"), record)
	f.sync("rs")
	f.sync("rs")
	c := cond(t, f.restore("rs").Status.Conditions, v1beta1.RestoreExecutorEnsured, v1beta1.ConditionTrue)
	contains(t, "condition message", c.Message, "restores snapshot "+id+" (taken 2026-02-28T10:05:00Z)")

	// With a rule that selects snapshots the Job lists them: no claim.
	g := newFixture(t, repository("repo"), secret(), pvc("data"), record, newRestore("rs", func(rs *v1beta1.RestoreSession) {
		rs.Spec.Target.Rules = []v1beta1.Rule{{Snapshots: []string{"latest"}}}
	}))
	g.sync("rs")
	g.sync("rs")
	if c := cond(t, g.restore("rs").Status.Conditions, v1beta1.RestoreExecutorEnsured, v1beta1.ConditionTrue); strings.Contains(c.Message, "restores snapshot") {
		t.Fatalf("a restore with a snapshot rule claims a chosen snapshot: %s", c.Message)
	}
}

// A record dated after now was not written by the operator, which stamps
// records with its own clock: it is not chosen, so it cannot pin every later
// restore of the PVC to the snapshot it names.
func TestFutureRecordIsNotChosen(t *testing.T) {
	record := func(id string, taken time.Time) *v1beta1.Snapshot {
		return &v1beta1.Snapshot{
			ObjectMeta: metav1.ObjectMeta{Name: id[:8], Namespace: ns, Labels: map[string]string{
				v1beta1.LabelTargetKind: v1beta1.KindPersistentVolumeClaim, v1beta1.LabelTargetName: "data", v1beta1.LabelTargetNamespace: ns}},
			Spec: v1beta1.SnapshotSpec{ID: id, Time: metav1.NewTime(taken), Paths: []string{"/stow-data"},
				MountPath: "/stow-data", Repository: v1beta1.ObjectRef{Name: "repo"}, Target: v1beta1.TargetRef{Kind: "PersistentVolumeClaim", Name: "data"}},
		}
	}
	honest, forged := strings.Repeat("a", 64), strings.Repeat("f", 64)
	f := newFixture(t, repository("repo"), secret(), pvc("data"), newRestore("rs"),
		record(honest, t0.Add(-time.Hour)), record(forged, t0.Add(365*24*time.Hour)))
	f.sync("rs")
	f.sync("rs")
	c := cond(t, f.restore("rs").Status.Conditions, v1beta1.RestoreExecutorEnsured, v1beta1.ConditionTrue)
	contains(t, "condition message", c.Message, "restores snapshot "+honest)
}
