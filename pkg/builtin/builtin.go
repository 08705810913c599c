// Package builtin defines the Functions and Tasks the operator ensures at
// start-up: pvc-backup, pvc-restore and update-status. Their args are the
// contract between the resolver's variables and cmd/stow's flags.
package builtin

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

// Step parameter names used by the built-in Tasks.
const (
	ParamOutputDir    = "outputDir"
	ParamTargetVolume = "targetVolume"
)

// repositoryArgs are the flags that tell the runner where the repository is.
// Credentials are not flags: the resolver adds the storage Secret as envFrom.
var repositoryArgs = []string{
	"--provider=${REPOSITORY_PROVIDER:=}",
	"--bucket=${REPOSITORY_BUCKET:=}",
	"--endpoint=${REPOSITORY_ENDPOINT:=}",
	"--region=${REPOSITORY_REGION:=}",
	"--path=${REPOSITORY_PREFIX:=}",
	"--insecure-tls=${REPOSITORY_INSECURE_TLS:=false}",
	"--max-connections=${MAX_CONNECTIONS:=0}",
	"--enable-cache=${ENABLE_CACHE:=true}",
	"--scratch-dir=" + v1beta1.TmpDirMountPath,
}

var invokerArgs = []string{
	"--namespace=${NAMESPACE:=default}",
	"--invoker-kind=${INVOKER_KIND:=}",
	"--invoker-name=${INVOKER_NAME:=}",
	"--target-kind=${TARGET_KIND:=}",
	"--target-name=${TARGET_NAME:=}",
	"--target-namespace=${TARGET_NAMESPACE:=}",
	"--repository=${REPOSITORY_NAME:=}",
	"--hostname=${HOSTNAME:=}",
	"--output-dir=${outputDir:=" + v1beta1.OutputDir + "}",
}

// stowFunction is a Function running the stow command cmd in image, with
// the invoker's and the repository's flags, then flags; mounts are its
// volume mounts.
func stowFunction(name, image, cmd string, flags []string, mounts []corev1.VolumeMount) *v1beta1.Function {
	args := append([]string{cmd}, invokerArgs...)
	args = append(append(args, repositoryArgs...), flags...)
	return &v1beta1.Function{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1beta1.FunctionSpec{Image: image, Args: args, VolumeMounts: mounts}}
}

// Functions returns the built-in Functions for the given runner image.
func Functions(image string) []*v1beta1.Function {
	targetMount := []corev1.VolumeMount{{Name: "${targetVolume}", MountPath: "${TARGET_MOUNT_PATH}"}}
	return []*v1beta1.Function{
		stowFunction(v1beta1.FunctionPVCBackup, image, "backup-pvc", []string{
			"--backupsession=${BACKUP_SESSION:=}",
			"--mount-path=${TARGET_MOUNT_PATH}",
			"--backup-paths=${TARGET_PATHS}",
			"--exclude=${EXCLUDE_PATTERNS:=}",
			"--args=${DRIVER_ARGS:=}",
		}, targetMount),
		stowFunction(v1beta1.FunctionPVCRestore, image, "restore-pvc", []string{
			"--restoresession=${RESTORE_SESSION:=}",
			"--mount-path=${TARGET_MOUNT_PATH}",
			"--source-hostname=${SOURCE_HOSTNAME:=}",
			"--restore-paths=${RESTORE_PATHS:=}",
			"--snapshots=${RESTORE_SNAPSHOTS:=}",
			"--include=${INCLUDE_PATTERNS:=}",
			"--exclude=${EXCLUDE_PATTERNS:=}",
			"--args=${DRIVER_ARGS:=}",
		}, targetMount),
		stowFunction(v1beta1.FunctionUpdateStatus, image, "update-status", []string{
			"--backupsession=${BACKUP_SESSION:=}",
			"--restoresession=${RESTORE_SESSION:=}",
			"--retention-keep-last=${RETENTION_KEEP_LAST:=0}",
			"--retention-keep-hourly=${RETENTION_KEEP_HOURLY:=0}",
			"--retention-keep-daily=${RETENTION_KEEP_DAILY:=0}",
			"--retention-keep-weekly=${RETENTION_KEEP_WEEKLY:=0}",
			"--retention-keep-monthly=${RETENTION_KEEP_MONTHLY:=0}",
			"--retention-keep-yearly=${RETENTION_KEEP_YEARLY:=0}",
			"--retention-keep-tags=${RETENTION_KEEP_TAGS:=}",
			"--retention-prune=${RETENTION_PRUNE:=false}",
			"--retention-dry-run=${RETENTION_DRY_RUN:=false}",
			"--integrity-check=${INTEGRITY_CHECK:=false}",
			"--metrics-enabled=${METRICS_ENABLED:=true}",
			"--metrics-pushgateway-url=${PROMETHEUS_PUSHGATEWAY_URL:=}",
			"--repository-namespace=${REPOSITORY_NAMESPACE:=}",
		}, nil),
	}
}

// Step names of the in-memory Function and Task of maintenance Jobs. They are
// not installed in the cluster: maintenance is Stow's own work, not a Task a
// configuration can name.
const (
	FunctionMaintain = "maintain"
	TaskMaintain     = "repository-maintenance"
	FunctionWipe     = "wipe"
	TaskWipe         = "repository-wipe"
)

// MaintenanceTask returns the Function and Task of a repository maintenance
// Job. Its parameters (${MAINTAIN_*}) say which tasks run.
func MaintenanceTask(image string) (*v1beta1.Task, *v1beta1.Function) {
	fn := stowFunction(FunctionMaintain, image, "maintain", []string{
		"--unlock=${MAINTAIN_UNLOCK:=false}",
		"--prune=${MAINTAIN_PRUNE:=false}",
		"--check=${MAINTAIN_CHECK:=false}",
		"--read-data-subset=${MAINTAIN_READ_DATA_SUBSET:=}",
		"--refresh=${MAINTAIN_REFRESH:=false}",
		"--metrics-enabled=${METRICS_ENABLED:=true}",
		"--metrics-pushgateway-url=${PROMETHEUS_PUSHGATEWAY_URL:=}",
	}, nil)
	task := &v1beta1.Task{ObjectMeta: metav1.ObjectMeta{Name: TaskMaintain}, Spec: v1beta1.TaskSpec{
		Steps: []v1beta1.FunctionRef{{Name: FunctionMaintain}},
	}}
	return task, fn
}

// WipeTask returns the Function and Task of the Job that deletes a
// Repository's data when it is deleted with wipeOut (stow wipe).
func WipeTask(image string) (*v1beta1.Task, *v1beta1.Function) {
	fn := stowFunction(FunctionWipe, image, "wipe", nil, nil)
	task := &v1beta1.Task{ObjectMeta: metav1.ObjectMeta{Name: TaskWipe}, Spec: v1beta1.TaskSpec{
		Steps: []v1beta1.FunctionRef{{Name: FunctionWipe}},
	}}
	return task, fn
}

// Tasks returns the built-in Tasks. The backup's second step applies the
// retention policy. A restore has one step: restore-pvc reports its result
// itself, and a second container (Stash's update-status, which for a restore
// only carried that result forward) cost a container start and the
// kubelet's notice of its exit, about a second per restore
// (docs/performance.md). Tasks that list update-status after pvc-restore
// still work.
func Tasks() []*v1beta1.Task {
	first := func(fn string) v1beta1.FunctionRef {
		return v1beta1.FunctionRef{Name: fn, Params: []v1beta1.Param{
			{Name: ParamOutputDir, Value: v1beta1.OutputDir},
			{Name: ParamTargetVolume, Value: v1beta1.TargetVolumeName},
		}}
	}
	updateStatus := v1beta1.FunctionRef{Name: v1beta1.FunctionUpdateStatus, Params: []v1beta1.Param{
		{Name: ParamOutputDir, Value: v1beta1.OutputDir},
	}}
	volumes := []corev1.Volume{{
		Name: v1beta1.TargetVolumeName,
		VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{
			ClaimName: "${TARGET_NAME}",
		}},
	}}
	return []*v1beta1.Task{
		{ObjectMeta: metav1.ObjectMeta{Name: v1beta1.TaskPVCBackup}, Spec: v1beta1.TaskSpec{Steps: []v1beta1.FunctionRef{first(v1beta1.FunctionPVCBackup), updateStatus}, Volumes: volumes}},
		{ObjectMeta: metav1.ObjectMeta{Name: v1beta1.TaskPVCRestore}, Spec: v1beta1.TaskSpec{Steps: []v1beta1.FunctionRef{first(v1beta1.FunctionPVCRestore)}, Volumes: volumes}},
	}
}
