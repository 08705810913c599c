package resolve

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/interim"
)

func interimTemplate() *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "stash-tmp-volume"},
		Spec: corev1.PersistentVolumeClaimSpec{Resources: corev1.VolumeResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}
}

// With interimVolumeTemplate, every container of the Job mounts the
// session's interim PVC at the directory INTERIM_DATA_DIR is in; without
// it, nothing is mounted and INTERIM_DATA_DIR is under the temp dir.
func TestInterimVolumeMount(t *testing.T) {
	check := func(t *testing.T, p corev1.PodSpec, claim string) {
		t.Helper()
		var vol *corev1.Volume
		for i := range p.Volumes {
			if p.Volumes[i].Name == interim.VolumeName {
				vol = &p.Volumes[i]
			}
		}
		if claim == "" {
			if vol != nil {
				t.Fatalf("interim volume %+v without a template", vol)
			}
			return
		}
		if vol == nil || vol.PersistentVolumeClaim == nil || vol.PersistentVolumeClaim.ClaimName != claim {
			t.Fatalf("interim volume = %+v, want PVC %s", vol, claim)
		}
		for _, c := range append(append([]corev1.Container{}, p.InitContainers...), p.Containers...) {
			if !hasMount(c, interim.VolumeName, interim.MountPath) {
				t.Errorf("container %s does not mount the interim volume: %+v", c.Name, c.VolumeMounts)
			}
		}
	}
	t.Run("backup", func(t *testing.T) {
		bc := backupConfig()
		check(t, mustBackupJob(t, bc, s3Repo()).Spec.Template.Spec, "")
		if v := BackupVars(bc, session(), s3Repo(), opts)[VarInterimDataDir]; v != interimDataDir {
			t.Errorf("INTERIM_DATA_DIR without a template = %q", v)
		}
		bc.Spec.InterimVolumeTemplate = interimTemplate()
		check(t, mustBackupJob(t, bc, s3Repo()).Spec.Template.Spec, "stash-tmp-volume-nfs-backup-1700000000")
		if v := BackupVars(bc, session(), s3Repo(), opts)[VarInterimDataDir]; v != interim.DataDir {
			t.Errorf("INTERIM_DATA_DIR = %q, want %q", v, interim.DataDir)
		}
	})
	t.Run("restore", func(t *testing.T) {
		tasks, fns := builtins()
		rs := restoreSession()
		rs.Spec.InterimVolumeTemplate = interimTemplate()
		rs.Spec.InterimVolumeTemplate.Name = ""
		jobs, _, err := RestoreJobs(rs, s3Repo(), tasks[v1beta1.TaskPVCRestore], fns, nil, opts)
		if err != nil || len(jobs) != 1 {
			t.Fatalf("RestoreJobs: %d jobs, %v", len(jobs), err)
		}
		check(t, jobs[0].Spec.Template.Spec, "stow-interim-"+rs.Name)
	})
}
