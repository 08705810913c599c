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
