package resolve

import (
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
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

// A target mounted where Stow mounts a volume of its own is refused by
// validation and, should such a spec reach the resolver (stored under an
// older schema, or a stale status), by the resolver: the target mount used
// to be replaced, so the backup read the new, empty interim volume (or
// Stow's scratch space, or the local repository) and succeeded, and its
// retention then forgot real snapshots; a restore wrote into a volume
// deleted when it ended.
func TestTargetMountedWhereStowMountsItsOwn(t *testing.T) {
	tasks, fns := builtins()
	cases := []struct {
		name, mountPath string
		repo            *v1beta1.Repository
		interim         bool
		want            string
	}{
		{"interim volume", interim.MountPath, s3Repo(), true, "target mount path /stow-interim-volume is at or under /stow-interim-volume, where Stow mounts its own volume"},
		{"interim data dir", interim.DataDir, s3Repo(), true, "target mount path /stow-interim-volume/data is at or under /stow-interim-volume"},
		{"scratch volume", v1beta1.TmpDirMountPath, s3Repo(), false, "target mount path /stow-tmp is at or under /stow-tmp"},
		{"local repository", "/repo", localRepo(), false, `mounts volume "stow-volume" at /repo, where Stow mounts volume "stow-local-backend"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mounts := []corev1.VolumeMount{{Name: "data", MountPath: tc.mountPath}}
			bc := backupConfig()
			bc.Spec.Target.VolumeMounts = mounts
			rs := restoreSession()
			rs.Spec.Target.VolumeMounts = mounts
			if tc.interim {
				bc.Spec.InterimVolumeTemplate = interimTemplate()
				rs.Spec.InterimVolumeTemplate = interimTemplate()
			}
			if tc.repo.Spec.Backend.Local != nil {
				if errs := v1beta1.ValidateMountsApart(tc.mountPath, tc.repo, nil); len(errs) == 0 {
					t.Error("ValidateMountsApart admits the target at the local repository's mountPath")
				}
			} else {
				if errs := v1beta1.ValidateBackupConfiguration(bc); len(errs) == 0 {
					t.Error("ValidateBackupConfiguration admits the target there")
				}
				if errs := v1beta1.ValidateRestoreSession(rs); len(errs) == 0 {
					t.Error("ValidateRestoreSession admits the target there")
				}
			}
			if job, err := BackupJob(bc, session(), tc.repo, tasks[v1beta1.TaskPVCBackup], fns, opts); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("BackupJob: %v; want %q (mounts %+v)", err, tc.want, mountsOf(job))
			}
			if jobs, _, err := RestoreJobs(rs, tc.repo, tasks[v1beta1.TaskPVCRestore], fns, nil, opts); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("RestoreJobs: %v; want %q (%d Jobs)", err, tc.want, len(jobs))
			}
		})
	}
}

// A Function that mounts a volume where Stow mounts its scratch or interim
// volume fails the build, naming both, instead of losing its mount.
func TestFunctionMountWhereStowMountsItsOwn(t *testing.T) {
	tasks, fns := builtins()
	for _, tc := range []struct{ path, want string }{
		{v1beta1.TmpDirMountPath, `container pvc-backup-0 mounts volume "cache" at /stow-tmp, where Stow mounts volume "stow-tmp-dir"`},
		{interim.MountPath, `container pvc-backup-0 mounts volume "cache" at /stow-interim-volume, where Stow mounts the interim volume`},
	} {
		fs := map[string]*v1beta1.Function{}
		for k, v := range fns {
			fs[k] = v
		}
		fn := fns[v1beta1.FunctionPVCBackup].DeepCopy()
		fn.Spec.VolumeMounts = append(fn.Spec.VolumeMounts, corev1.VolumeMount{Name: "cache", MountPath: tc.path})
		fs[fn.Name] = fn
		bc := backupConfig()
		bc.Spec.InterimVolumeTemplate = interimTemplate()
		if _, err := BackupJob(bc, session(), s3Repo(), tasks[v1beta1.TaskPVCBackup], fs, opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Function mounting at %s: %v; want %q", tc.path, err, tc.want)
		}
	}
}

// A PVC of a volumeClaimTemplate mounted where Stow mounts its own volume is
// refused, and one mounted at the local repository's mountPath is an error
// too, not a silent replacement of the repository's mount.
func TestTemplateMountedWhereStowMountsItsOwn(t *testing.T) {
	tasks, fns := builtins()
	rs := restoreSession()
	rs.Spec.Target.Ref.Name = ""
	rs.Spec.Target.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"}}, {ObjectMeta: metav1.ObjectMeta{Name: "config"}}}
	rs.Spec.Target.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}, {Name: "config", MountPath: v1beta1.TmpDirMountPath}}
	if errs := v1beta1.ValidateRestoreSession(rs); len(errs) == 0 {
		t.Error("validation admits a template mounted at /stow-tmp")
	}
	if _, _, err := RestoreJobs(rs, s3Repo(), tasks[v1beta1.TaskPVCRestore], fns, nil, opts); err == nil || !strings.Contains(err.Error(), "target mount path /stow-tmp is at or under /stow-tmp") {
		t.Errorf("RestoreJobs, a template at /stow-tmp: %v", err)
	}
	rs.Spec.Target.VolumeMounts[1].MountPath = "/repo"
	_, _, err := RestoreJobs(rs, localRepo(), tasks[v1beta1.TaskPVCRestore], fns, nil, opts)
	if err == nil || !strings.Contains(err.Error(), "volumeClaimTemplate 1 (PVC config)") || !strings.Contains(err.Error(), `mounts volume "stow-local-backend" at /repo, where Stow mounts volume "stow-volume-1"`) {
		t.Errorf("RestoreJobs, a template at the local repository: %v", err)
	}
}

func mountsOf(job *batchv1.Job) [][]corev1.VolumeMount {
	if job == nil {
		return nil
	}
	var out [][]corev1.VolumeMount
	for _, c := range allContainers(job) {
		out = append(out, c.VolumeMounts)
	}
	return out
}
