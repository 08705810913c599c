package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/builtin"
	"github.com/stowhq/stow/pkg/jobenv"
	"github.com/stowhq/stow/pkg/jobresult"
	"github.com/stowhq/stow/pkg/resolve"
)

// The session tool runs the data step of a session's Job (`stow backup-pvc`,
// `stow restore-pvc`) with the arguments and environment the operator gives
// that step's container: pkg/resolve builds the Job from a
// BackupConfiguration or RestoreSession with the built-in Tasks, as the
// controllers do, and the harness runs its first container here. The pod's
// paths are the bench's: the target volume is mounted at the data set (or the
// restore directory), the local repository at the bench's repository, and the
// scratch emptyDir (restic's cache, temp files, the step's output) is a fresh
// directory per step, as a new pod's emptyDir is.

const (
	benchNamespace = "bench"
	benchPVC       = "data"
	benchSecret    = "bench-storage"
)

// jobStep is a step's command line (without the stow binary) and environment.
type jobStep struct {
	args []string
	env  []string
}

func benchRepository(repo string) *v1beta1.Repository {
	return &v1beta1.Repository{
		ObjectMeta: metav1.ObjectMeta{Name: "bench", Namespace: benchNamespace},
		Spec: v1beta1.RepositorySpec{Backend: v1beta1.Backend{
			StorageSecretName: benchSecret,
			Local: &v1beta1.LocalSpec{
				VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "bench-repo"}},
				MountPath:    repo,
			},
		}},
	}
}

func builtinTasks() (map[string]*v1beta1.Task, map[string]*v1beta1.Function) {
	tasks := map[string]*v1beta1.Task{}
	for _, t := range builtin.Tasks() {
		tasks[t.Name] = t
	}
	fns := map[string]*v1beta1.Function{}
	for _, f := range builtin.Functions("stow") {
		fns[f.Name] = f
	}
	return tasks, fns
}

// backupStep is the backup-pvc step of BackupSession session of a
// BackupConfiguration with the defaults, backing up the PVC mounted at data.
func backupStep(repo, data, scratch, session, password string) (jobStep, error) {
	bc := &v1beta1.BackupConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "bench", Namespace: benchNamespace, UID: "bench-bc"},
		Spec: v1beta1.BackupConfigurationSpec{
			Repository: v1beta1.ObjectRef{Name: "bench"},
			Target: &v1beta1.BackupTarget{
				Ref:          v1beta1.TargetRef{Name: benchPVC},
				VolumeMounts: []corev1.VolumeMount{{Name: v1beta1.TargetVolumeName, MountPath: data}},
			},
			RetentionPolicy: v1beta1.RetentionPolicy{Name: "keep-last-5", KeepLast: 5},
		},
	}
	s := &v1beta1.BackupSession{
		ObjectMeta: metav1.ObjectMeta{Name: session, Namespace: benchNamespace, UID: "bench-session", CreationTimestamp: metav1.Now()},
		Spec:       v1beta1.BackupSessionSpec{Invoker: v1beta1.BackupInvokerRef{Kind: v1beta1.KindBackupConfiguration, Name: bc.Name}},
	}
	tasks, fns := builtinTasks()
	job, err := resolve.BackupJob(bc, s, benchRepository(repo), tasks[v1beta1.TaskPVCBackup], fns, resolve.Options{Image: "stow"})
	if err != nil {
		return jobStep{}, err
	}
	return firstStep(job.Spec.Template.Spec, "backup-pvc", scratch, password)
}

// restoreStep is the restore-pvc step of a RestoreSession without rules
// into the PVC mounted at target, with the snapshots the operator resolved
// from the target's Snapshot records.
func restoreStep(repo, target, scratch, password string, resolved []jobenv.ResolvedSnapshot) (jobStep, error) {
	rs := &v1beta1.RestoreSession{
		ObjectMeta: metav1.ObjectMeta{Name: "bench-restore", Namespace: benchNamespace, UID: "bench-rs", CreationTimestamp: metav1.Now()},
		Spec: v1beta1.RestoreSessionSpec{
			Repository: v1beta1.ObjectRef{Name: "bench"},
			Target: &v1beta1.RestoreTarget{
				Ref:          v1beta1.TargetRef{Name: benchPVC},
				VolumeMounts: []corev1.VolumeMount{{Name: v1beta1.TargetVolumeName, MountPath: target}},
			},
		},
	}
	tasks, fns := builtinTasks()
	jobs, _, err := resolve.RestoreJobs(rs, benchRepository(repo), tasks[v1beta1.TaskPVCRestore], fns, resolved, resolve.Options{Image: "stow"})
	if err != nil {
		return jobStep{}, err
	}
	if len(jobs) != 1 {
		return jobStep{}, fmt.Errorf("restore: %d Jobs, want 1", len(jobs))
	}
	return firstStep(jobs[0].Spec.Template.Spec, "restore-pvc", scratch, password)
}

// firstStep is the pod's first container (the data step, cmd) as a local
// command: the scratch mount becomes scratch, the termination log a file in
// it, and the storage Secret (envFrom) the password.
func firstStep(pod corev1.PodSpec, cmd, scratch, password string) (jobStep, error) {
	containers := append(append([]corev1.Container(nil), pod.InitContainers...), pod.Containers...)
	if len(containers) == 0 {
		return jobStep{}, fmt.Errorf("the Job has no container")
	}
	c := containers[0]
	if len(c.Command) > 0 || len(c.Args) == 0 || c.Args[0] != cmd {
		return jobStep{}, fmt.Errorf("the Job's first step runs %q %q, want stow %s", c.Command, c.Args, cmd)
	}
	var st jobStep
	for _, a := range c.Args {
		st.args = append(st.args, remapScratch(a, scratch))
	}
	st.args = append(st.args, "--termination-log="+filepath.Join(scratch, "termination-log"))
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			return jobStep{}, fmt.Errorf("env %s of the Job comes from %v: not supported by the bench", e.Name, e.ValueFrom)
		}
		st.env = append(st.env, e.Name+"="+e.Value)
	}
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef == nil || c.EnvFrom[0].SecretRef.Name != benchSecret {
		return jobStep{}, fmt.Errorf("the Job's step reads %v, want the storage Secret only", c.EnvFrom)
	}
	st.env = append(st.env, "RESTIC_PASSWORD="+password)
	return st, nil
}

// remapScratch moves a flag value under the pod's scratch mount to scratch.
func remapScratch(arg, scratch string) string {
	name, v, ok := strings.Cut(arg, "=")
	if !ok {
		return arg
	}
	if rest, under := strings.CutPrefix(v, v1beta1.TmpDirMountPath); under && (rest == "" || strings.HasPrefix(rest, "/")) {
		return name + "=" + scratch + rest
	}
	return arg
}

// stepSnapshot reads the snapshot a backup step reports in its output for
// the next step (output.json under the scratch directory), as the operator
// records it in a Snapshot: what a restore session is resolved from.
func stepSnapshot(scratch, mount string) (jobenv.ResolvedSnapshot, error) {
	out := filepath.Join(scratch, strings.TrimPrefix(v1beta1.OutputDir, v1beta1.TmpDirMountPath), v1beta1.OutputFileName)
	b, err := os.ReadFile(out)
	if err != nil {
		return jobenv.ResolvedSnapshot{}, err
	}
	var res jobresult.Result
	if err := json.Unmarshal(b, &res); err != nil {
		return jobenv.ResolvedSnapshot{}, fmt.Errorf("%s: %v", out, err)
	}
	if len(res.Snapshots) != 1 || res.Snapshots[0].Name == "" {
		return jobenv.ResolvedSnapshot{}, fmt.Errorf("%s: want one snapshot, have %v", out, res.Snapshots)
	}
	s := res.Snapshots[0]
	return jobenv.ResolvedSnapshot{ID: s.Name, Time: time.Now().UTC(), Paths: []string{s.Path}, MountPath: mount}, nil
}
