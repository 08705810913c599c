package v1beta1

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Defaulting is done in memory by the operator and the in-Job runner (there is
// no mutating webhook); these functions never touch the stored object's
// meaning, they only fill what Stash fills by default.

// DefaultBackupConfiguration fills unset fields of bc in place.
func DefaultBackupConfiguration(bc *BackupConfiguration) {
	s := &bc.Spec
	if s.Driver == "" {
		s.Driver = ResticDriver
	}
	if s.Task.Name == "" {
		s.Task.Name = TaskPVCBackup
	}
	if s.Repository.Namespace == "" {
		s.Repository.Namespace = bc.Namespace
	}
	if s.BackupHistoryLimit == nil {
		v := DefaultBackupHistory
		s.BackupHistoryLimit = &v
	}
	if s.Target != nil {
		defaultTargetRef(&s.Target.Ref)
		if len(s.Target.Paths) == 0 {
			// Stash defaulted to /stash-data even with a custom mount path,
			// which backed up an empty directory; follow the mount path.
			s.Target.Paths = []string{TargetMountPath(s.Target.VolumeMounts)}
		}
	}
}

// DefaultRestoreSession fills unset fields of rs in place, and moves the
// deprecated spec.rules into spec.target.rules.
func DefaultRestoreSession(rs *RestoreSession) {
	s := &rs.Spec
	if s.Driver == "" {
		s.Driver = ResticDriver
	}
	if s.Task.Name == "" {
		s.Task.Name = TaskPVCRestore
	}
	if s.Repository.Namespace == "" {
		s.Repository.Namespace = rs.Namespace
	}
	if s.Target != nil {
		defaultTargetRef(&s.Target.Ref)
		if len(s.Target.Rules) == 0 && len(s.Rules) > 0 {
			s.Target.Rules = s.Rules
		}
	}
}

func defaultTargetRef(r *TargetRef) {
	if r.APIVersion == "" {
		r.APIVersion = "v1"
	}
	if r.Kind == "" {
		r.Kind = KindPersistentVolumeClaim
	}
}

// TargetMountPath is where the target PVC is mounted in the Job pod.
func TargetMountPath(mounts []corev1.VolumeMount) string {
	if len(mounts) > 0 && mounts[0].MountPath != "" {
		return strings.TrimRight(mounts[0].MountPath, "/")
	}
	return DefaultMountPath
}

// Host is the restic --host of a target: its alias, else host-0.
func Host(alias string) string {
	if alias != "" {
		return alias
	}
	return DefaultHost
}

// HistoryLimit returns the configured limit or the default of 1.
func (bc *BackupConfiguration) HistoryLimit() int32 {
	if bc.Spec.BackupHistoryLimit == nil {
		return DefaultBackupHistory
	}
	return *bc.Spec.BackupHistoryLimit
}

// MaxRetry returns how many retries a failed session of bc may have.
func (bc *BackupConfiguration) MaxRetry() int32 {
	if bc.Spec.RetryConfig == nil {
		return 0
	}
	// Clamped also here: an object admitted by an older CRD may hold more.
	return max(0, min(bc.Spec.RetryConfig.MaxRetry, MaxRetryLimit))
}
