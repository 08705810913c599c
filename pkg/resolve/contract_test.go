package resolve

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/jobenv"
)

// What a snapshot is tagged with, which operator to ask about lock holders
// and the lock deadline are the operator's: Function templates cannot
// change them, and every container gets them, every one set so that no
// envFrom source supplies one (Task params naming NAMESPACE or INVOKER_NAME
// and runtimeSettings env naming STOW_* are refused outright: params_test.go,
// env_test.go).
func TestJobContractCannotBeOverridden(t *testing.T) {
	tasks, fns := builtins()
	o := opts
	o.OperatorURL, o.LockHostPrefix = "http://stow-operator.stow-system.svc:56789", "stow-0123abcd-"
	bc := backupConfig()
	for _, fn := range fns {
		fn.Spec.RuntimeSettings = &v1beta1.ContainerRuntimeSettings{Env: []corev1.EnvVar{
			{Name: jobenv.Namespace, Value: "victim"}, {Name: jobenv.LockHostPrefix, Value: ""}, {Name: jobenv.OperatorURL, Value: "http://evil"},
			{Name: jobenv.Resolved, Value: `[{"id":"theirs"}]`}}}
	}
	timeOut := v1beta1.Duration{Duration: 10 * time.Minute}
	bc.Spec.TimeOut = &timeOut
	s := session()
	s.CreationTimestamp = metav1.NewTime(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	job, err := BackupJob(bc, s, s3Repo(), tasks[v1beta1.TaskPVCBackup], fns, o)
	if err != nil {
		t.Fatal(err)
	}
	pod := job.Spec.Template.Spec
	want := map[string]string{
		jobenv.Namespace: "demo", jobenv.InvokerKind: "BackupConfiguration", jobenv.InvokerName: "nfs-backup",
		jobenv.TargetKind: "PersistentVolumeClaim", jobenv.TargetName: "nfs-pvc",
		jobenv.OperatorURL: o.OperatorURL, jobenv.LockHostPrefix: o.LockHostPrefix,
		jobenv.LockDeadline: "2026-12-01T10:09:30Z", // timeOut minus the margin
		jobenv.Resolved:     "", jobenv.AsOf: "", jobenv.ExtraMounts: "",
	}
	for _, c := range append(append([]corev1.Container{}, pod.InitContainers...), pod.Containers...) {
		got := map[string]string{}
		for _, e := range c.Env {
			if _, dup := got[e.Name]; dup {
				t.Errorf("container %s sets %s twice", c.Name, e.Name)
			}
			got[e.Name] = e.Value
		}
		for k, v := range want {
			if got, ok := got[k]; !ok || got != v {
				t.Errorf("container %s: %s = %q (set: %v), want %q", c.Name, k, got, ok, v)
			}
		}
	}
	if len(pod.Hostname) < len(o.LockHostPrefix) || pod.Hostname[:len(o.LockHostPrefix)] != o.LockHostPrefix {
		t.Errorf("pod hostname %q lacks the lock host prefix", pod.Hostname)
	}
	if l := job.Spec.Template.Labels[v1beta1.LabelResticHost]; l != pod.Hostname {
		t.Errorf("restic-host label %q, hostname %q", l, pod.Hostname)
	}
	again, _ := BackupJob(bc, s, s3Repo(), tasks[v1beta1.TaskPVCBackup], fns, o)
	if again.Spec.Template.Spec.Hostname != pod.Hostname {
		t.Error("the lock hostname is not deterministic")
	}
	other := session()
	other.UID = "another-session"
	if j, _ := BackupJob(bc, other, s3Repo(), tasks[v1beta1.TaskPVCBackup], fns, o); j.Spec.Template.Spec.Hostname == pod.Hostname {
		t.Error("two sessions share a lock hostname")
	}
}

func TestLockDeadline(t *testing.T) {
	created := metav1.NewTime(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	for _, tc := range []struct {
		timeOut *v1beta1.Duration
		o       Options
		want    time.Duration
	}{
		{nil, Options{}, DefaultLockWait},
		{nil, Options{DefaultLockWait: time.Hour}, time.Hour},
		{&v1beta1.Duration{Duration: 2 * time.Hour}, Options{}, 2*time.Hour - 30*time.Second},
		{&v1beta1.Duration{Duration: 60 * time.Second}, Options{}, 45 * time.Second},
		{&v1beta1.Duration{Duration: 100 * time.Second}, Options{}, 75 * time.Second},
	} {
		if got := lockDeadline(created, tc.timeOut, tc.o).Sub(created.Time); got != tc.want {
			t.Errorf("lockDeadline(%v, %+v) = +%s, want +%s", tc.timeOut, tc.o, got, tc.want)
		}
	}
}
