package executor

import (
	"testing"

	batchv1 "k8s.io/api/batch/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/version"
)

// TestPrepareLabelsJobAndPodWithVersion: `kubectl get pods -L
// app.kubernetes.io/version` tells which operator build made a Job pod.
func TestPrepareLabelsJobAndPodWithVersion(t *testing.T) {
	defer func(v string) { version.Version = v }(version.Version)
	version.Version = "v1.2.3+meta"
	job := &batchv1.Job{}
	Prepare(job, "j", "ns", v1beta1.OwnerRef(v1beta1.KindBackupSession, "s", "uid"), v1beta1.ComponentBackup,
		v1beta1.AnnotationBackupSession, "s", "ns/repo", Request{Location: "loc", Mode: Shared})
	for what, l := range map[string]map[string]string{"Job": job.Labels, "pod template": job.Spec.Template.Labels} {
		if got := l[version.LabelKey]; got != "v1.2.3_meta" {
			t.Errorf("%s label %s = %q, want v1.2.3_meta", what, version.LabelKey, got)
		}
		if l[v1beta1.LabelManagedBy] != v1beta1.ManagedByStow {
			t.Errorf("%s lost the managed-by label: %v", what, l)
		}
	}
}
