package main

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/client/clientset/versioned"
	stowfake "github.com/stowhq/stow/client/clientset/versioned/fake"
	"github.com/stowhq/stow/pkg/names"
	"k8s.io/client-go/kubernetes"
)

const ns = "apps"

var now = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

// harness runs the plugin against fake clientsets holding objs.
type harness struct {
	t    *testing.T
	stow *stowfake.Clientset
	kube *kubefake.Clientset
}

func newHarness(t *testing.T, stowObjs []runtime.Object, kubeObjs ...runtime.Object) *harness {
	return &harness{t: t, stow: stowfake.NewSimpleClientset(stowObjs...), kube: kubefake.NewClientset(kubeObjs...)}
}

// run runs one invocation; the fake "now" is fixed, and --wait polls fast.
func (h *harness) run(args ...string) (code int, stdout, stderr string) {
	var out, errb strings.Builder
	clients := func(kf kubeFlags) (versioned.Interface, kubernetes.Interface, string, error) {
		n := kf.namespace
		if n == "" {
			n = ns
		}
		return h.stow, h.kube, n, nil
	}
	code = runWith(context.Background(), args, &out, &errb, clients, func() time.Time { return now }, time.Millisecond)
	return code, out.String(), errb.String()
}

func bc(name string) *v1beta1.BackupConfiguration {
	return &v1beta1.BackupConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: types.UID("uid-" + name)},
		Spec: v1beta1.BackupConfigurationSpec{
			Repository: v1beta1.ObjectRef{Name: "repo"},
			Target:     &v1beta1.BackupTarget{Ref: v1beta1.TargetRef{Kind: v1beta1.KindPersistentVolumeClaim, Name: "data"}},
		},
	}
}

func snapshot(id string, bcName, pvc string, at time.Time, mountPath string) *v1beta1.Snapshot {
	b := bc(bcName)
	b.Spec.Target.Ref.Name = pvc
	l := names.SessionLabels(b)
	delete(l, v1beta1.LabelComponent)
	return &v1beta1.Snapshot{
		ObjectMeta: metav1.ObjectMeta{Name: names.SnapshotRecord(id), Namespace: ns, Labels: l},
		Spec: v1beta1.SnapshotSpec{
			ID: id, Time: metav1.NewTime(at), Hostname: "host-0", Paths: []string{mountPath}, MountPath: mountPath,
			Repository: v1beta1.ObjectRef{Name: "repo"},
			Invoker:    v1beta1.BackupInvokerRef{Kind: v1beta1.KindBackupConfiguration, Name: bcName},
			Target:     v1beta1.TargetRef{Kind: v1beta1.KindPersistentVolumeClaim, Name: pvc},
			TotalSize:  "1.5 MiB",
		},
	}
}

func id(c byte) string { return strings.Repeat(string(c), 64) }

func TestTriggerCreatesTheScheduledSession(t *testing.T) {
	h := newHarness(t, []runtime.Object{bc("nightly")})
	code, out, errs := h.run("trigger", "nightly")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	want := names.BackupSession("nightly", now.Unix())
	if !strings.Contains(out, "backupsession/"+want+" created") {
		t.Errorf("stdout %q", out)
	}
	bs, err := h.stow.StowV1beta1().BackupSessions(ns).Get(context.Background(), want, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if bs.Spec.Invoker.Name != "nightly" || bs.OwnerReferences[0].UID != "uid-nightly" || bs.Labels[v1beta1.LabelInvokerName] != "nightly" {
		t.Errorf("session %+v", bs)
	}
	// Again within the same second: a clear error, not a silent success.
	if code, _, errs := h.run("trigger", "nightly"); code != 1 || !strings.Contains(errs, "try again") {
		t.Errorf("second trigger: exit %d, %q", code, errs)
	}
	if code, _, errs := h.run("trigger", "missing"); code != 1 || !strings.Contains(errs, "missing") {
		t.Errorf("missing configuration: exit %d, %q", code, errs)
	}
	if code, _, _ := h.run("trigger"); code != 2 {
		t.Errorf("no argument: exit %d, want 2", code)
	}
}

func TestTriggerWaitReportsTheOutcome(t *testing.T) {
	for _, tt := range []struct {
		phase  v1beta1.BackupSessionPhase
		code   int
		expect string
	}{
		{v1beta1.BackupSessionSucceeded, 0, "Succeeded"},
		{v1beta1.BackupSessionFailed, 1, "Failed: repository unreachable"},
	} {
		h := newHarness(t, []runtime.Object{bc("nightly")})
		// The operator's part: the session ends as soon as it is read.
		h.stow.PrependReactor("get", "backupsessions", func(a k8stesting.Action) (bool, runtime.Object, error) {
			obj, err := h.stow.Tracker().Get(a.GetResource(), a.GetNamespace(), a.(k8stesting.GetAction).GetName())
			if err != nil {
				return true, nil, err
			}
			bs := obj.(*v1beta1.BackupSession).DeepCopy()
			bs.Status.Phase, bs.Status.SessionDuration = tt.phase, "3s"
			if tt.phase == v1beta1.BackupSessionFailed {
				bs.Status.Reason = "repository unreachable"
			}
			return true, bs, nil
		})
		code, out, errs := h.run("trigger", "nightly", "--wait", "--timeout=1m")
		if code != tt.code || !strings.Contains(out+errs, tt.expect) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", tt.phase, code, out, errs)
		}
	}
}

func TestPauseAndResume(t *testing.T) {
	h := newHarness(t, []runtime.Object{bc("a"), bc("b")})
	if code, out, errs := h.run("pause", "a", "b"); code != 0 || !strings.Contains(out, "backupconfiguration/b paused") {
		t.Fatalf("pause: exit %d %q %q", code, out, errs)
	}
	for _, n := range []string{"a", "b"} {
		got, _ := h.stow.StowV1beta1().BackupConfigurations(ns).Get(context.Background(), n, metav1.GetOptions{})
		if !got.Spec.Paused {
			t.Errorf("%s not paused", n)
		}
	}
	if code, out, _ := h.run("resume", "a"); code != 0 || out != "backupconfiguration/a resumed\n" {
		t.Fatalf("resume: exit %d %q", code, out)
	}
	got, _ := h.stow.StowV1beta1().BackupConfigurations(ns).Get(context.Background(), "a", metav1.GetOptions{})
	if got.Spec.Paused {
		t.Error("a still paused")
	}
	if code, _, errs := h.run("pause", "nope"); code != 1 || !strings.Contains(errs, "backupconfiguration/nope") {
		t.Errorf("unknown: exit %d %q", code, errs)
	}
}

func TestSnapshotsListsRecordsNewestFirst(t *testing.T) {
	h := newHarness(t, []runtime.Object{
		snapshot(id('a'), "nightly", "data", now.Add(-2*time.Hour), "/stow-data"),
		snapshot(id('b'), "nightly", "data", now.Add(-1*time.Hour), "/stow-data"),
		snapshot(id('c'), "other", "logs", now.Add(-3*time.Hour), "/stow-data"),
	})
	code, out, errs := h.run("snapshots")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "NAME") || !strings.HasPrefix(lines[1], "bbbbbbbbbbbbbbbb") ||
		!strings.HasPrefix(lines[2], "aaaaaaaaaaaaaaaa") || !strings.HasPrefix(lines[3], "cccccccccccccccc") {
		t.Errorf("output:\n%s", out)
	}
	if !strings.Contains(lines[1], "1.5 MiB") || !strings.Contains(lines[1], "host-0") || !strings.Contains(lines[1], "repo") {
		t.Errorf("columns missing in %q", lines[1])
	}
	_, out, _ = h.run("snapshots", "other")
	if strings.Count(out, "\n") != 2 || !strings.Contains(out, "cccc") {
		t.Errorf("by configuration:\n%s", out)
	}
	_, out, _ = h.run("snapshots", "--pvc=data", "--limit=1")
	if strings.Count(out, "\n") != 2 || !strings.Contains(out, "bbbb") {
		t.Errorf("by PVC, limit 1:\n%s", out)
	}
	_, out, _ = h.run("snapshots", "-n", "empty")
	if !strings.Contains(out, "No snapshots recorded in namespace empty") {
		t.Errorf("empty namespace: %q", out)
	}
}

func pvc(name, size string) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PersistentVolumeClaimSpec{Resources: corev1.VolumeResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)},
		}},
	}
}

func TestRestoreIntoTheSnapshotsPVC(t *testing.T) {
	h := newHarness(t, []runtime.Object{snapshot(id('a'), "nightly", "data", now, "/var/lib/app")}, pvc("data", "2Gi"))
	code, out, errs := h.run("restore", "aaaaaaaaaaaaaaaa", "--name=r1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "restoresession/r1 created: snapshot aaaaaaaa into PVC data") {
		t.Errorf("stdout %q", out)
	}
	rs, err := h.stow.StowV1beta1().RestoreSessions(ns).Get(context.Background(), "r1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tg := rs.Spec.Target
	if rs.Spec.Repository.Name != "repo" || tg.Ref.Name != "data" || len(tg.Rules) != 1 || tg.Rules[0].Snapshots[0] != id('a') {
		t.Errorf("spec %+v, target %+v", rs.Spec, tg)
	}
	if len(tg.VolumeMounts) != 1 || tg.VolumeMounts[0].MountPath != "/var/lib/app" {
		t.Errorf("mount path of the backup not kept: %+v", tg.VolumeMounts)
	}
	if errs := v1beta1.ValidateRestoreSession(rs); len(errs) > 0 {
		t.Errorf("invalid RestoreSession: %v", errs)
	}
}

func TestRestoreIntoANewPVC(t *testing.T) {
	h := newHarness(t, []runtime.Object{snapshot(id('a'), "nightly", "data", now, "/stow-data")}, pvc("data", "2Gi"))
	code, out, errs := h.run("restore", "aaaaaaaaaaaaaaaa", "--to-pvc=data-copy", "--storage-class=fast")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "into PVC data-copy (new)") {
		t.Errorf("stdout %q", out)
	}
	list, _ := h.stow.StowV1beta1().RestoreSessions(ns).List(context.Background(), metav1.ListOptions{})
	if len(list.Items) != 1 {
		t.Fatalf("%d sessions", len(list.Items))
	}
	rs := list.Items[0]
	tg := rs.Spec.Target
	if tg.Ref.Name != "" || len(tg.VolumeClaimTemplates) != 1 || len(tg.VolumeMounts) != 0 {
		t.Fatalf("target %+v", tg)
	}
	c := tg.VolumeClaimTemplates[0]
	if q := c.Spec.Resources.Requests[corev1.ResourceStorage]; c.Name != "data-copy" || q.String() != "2Gi" || *c.Spec.StorageClassName != "fast" {
		t.Errorf("claim %+v", c)
	}
	if errs := v1beta1.ValidateRestoreSession(&rs); len(errs) > 0 {
		t.Errorf("invalid RestoreSession: %v", errs)
	}

	// Existing target PVC: restored into as is; its size is not ours to set.
	h = newHarness(t, []runtime.Object{snapshot(id('a'), "nightly", "data", now, "/stow-data")}, pvc("data", "2Gi"), pvc("other", "1Gi"))
	if code, _, errs := h.run("restore", "aaaaaaaaaaaaaaaa", "--to-pvc=other", "--size=5Gi"); code != 2 || !strings.Contains(errs, "exists") {
		t.Errorf("--size with an existing PVC: exit %d %q", code, errs)
	}
	if code, _, errs := h.run("restore", "aaaaaaaaaaaaaaaa", "--to-pvc=other"); code != 0 {
		t.Errorf("existing --to-pvc: exit %d %q", code, errs)
	}
}

func TestRestoreErrorsAreOneLine(t *testing.T) {
	h := newHarness(t, []runtime.Object{snapshot(id('a'), "nightly", "gone", now, "/stow-data")})
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"restore", "nosuch"}, 1, "snapshot nosuch"},
		{[]string{"restore", "aaaaaaaaaaaaaaaa"}, 1, "--to-pvc"},
		{[]string{"restore", "aaaaaaaaaaaaaaaa", "--to-pvc=new"}, 2, "give --size"},
		{[]string{"restore", "aaaaaaaaaaaaaaaa", "--to-pvc=new", "--size=lots"}, 2, "--size"},
		{[]string{"restore", "aaaaaaaaaaaaaaaa", "--size=1Gi"}, 2, "only apply with --to-pvc"},
	} {
		code, _, errs := h.run(tt.args...)
		if code != tt.code || !strings.Contains(errs, tt.want) || strings.Count(errs, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want exit %d naming %q", tt.args, code, errs, tt.code, tt.want)
		}
	}
}

func repo(annotations map[string]string) *v1beta1.Repository {
	return &v1beta1.Repository{ObjectMeta: metav1.ObjectMeta{Name: "repo", Namespace: ns, Annotations: annotations}}
}

func TestUnlockAndCheckRequestMaintenance(t *testing.T) {
	for _, task := range []string{v1beta1.MaintenanceUnlock, v1beta1.MaintenanceCheck} {
		key := v1beta1.MaintenanceRequestAnnotation(task)
		// A request of this very second exists: the new one must differ.
		h := newHarness(t, []runtime.Object{repo(map[string]string{key: "1796205600"})})
		code, out, errs := h.run(task, "repo")
		if code != 0 {
			t.Fatalf("%s: exit %d %s", task, code, errs)
		}
		got, _ := h.stow.StowV1beta1().Repositories(ns).Get(context.Background(), "repo", metav1.GetOptions{})
		if v := got.Annotations[key]; v != "1796205601" || !strings.Contains(out, key+"=1796205601") {
			t.Errorf("%s: annotation %q, stdout %q", task, v, out)
		}
	}
	h := newHarness(t, nil)
	if code, _, errs := h.run("check", "nope"); code != 1 || !strings.Contains(errs, "repository nope") {
		t.Errorf("missing repository: exit %d %q", code, errs)
	}
}

func TestCheckWaitReportsTheAnswer(t *testing.T) {
	for _, ok := range []bool{true, false} {
		h := newHarness(t, []runtime.Object{repo(nil)})
		// The operator's part: answer the request in status.
		h.stow.PrependReactor("get", "repositories", func(a k8stesting.Action) (bool, runtime.Object, error) {
			obj, err := h.stow.Tracker().Get(a.GetResource(), a.GetNamespace(), "repo")
			if err != nil {
				return true, nil, err
			}
			r := obj.(*v1beta1.Repository).DeepCopy()
			if v := r.Annotations[v1beta1.MaintenanceRequestAnnotation("check")]; v != "" {
				msg := "no errors were found"
				if !ok {
					msg = "pack 1234 is damaged"
				}
				r.Status.Maintenance = &v1beta1.MaintenanceStatus{Check: &v1beta1.MaintenanceRun{Request: v, Succeeded: &ok, Message: msg}}
			}
			return true, r, nil
		})
		code, out, errs := h.run("check", "repo", "--wait")
		if ok && (code != 0 || !strings.Contains(out, "repository/repo check: no errors were found")) {
			t.Errorf("passing check: exit %d %q %q", code, out, errs)
		}
		if !ok && (code != 1 || !strings.Contains(errs, "check failed: pack 1234 is damaged")) {
			t.Errorf("failing check: exit %d %q %q", code, out, errs)
		}
	}
}

func TestDescribeShowsRecentSessionsWithReasons(t *testing.T) {
	b := bc("nightly")
	b.Spec.Paused = true
	b.Status.Phase = v1beta1.BackupInvokerPhase("Ready")
	b.Status.Schedule = "0 1 * * *"
	b.Status.Conditions = []v1beta1.Condition{{Type: "RepositoryFound", Status: v1beta1.ConditionTrue, Reason: "Found"}}
	objs := []runtime.Object{b}
	for i, st := range []struct {
		phase  v1beta1.BackupSessionPhase
		reason string
	}{{v1beta1.BackupSessionSucceeded, ""}, {v1beta1.BackupSessionFailed, "restic: repository is locked by pod x\nmore"}, {v1beta1.BackupSessionRunning, ""}} {
		s := &v1beta1.BackupSession{
			ObjectMeta: metav1.ObjectMeta{Name: names.BackupSession("nightly", now.Unix()-int64(3-i)*3600), Namespace: ns,
				Labels: names.SessionLabels(b), CreationTimestamp: metav1.NewTime(now.Add(-time.Duration(3-i) * time.Hour))},
			Spec:   v1beta1.BackupSessionSpec{Invoker: v1beta1.BackupInvokerRef{Kind: v1beta1.KindBackupConfiguration, Name: "nightly"}},
			Status: v1beta1.BackupSessionStatus{Phase: st.phase, Reason: st.reason},
		}
		objs = append(objs, s)
	}
	h := newHarness(t, objs)
	code, out, errs := h.run("describe", "nightly", "--sessions=2")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"apps/nightly", "Paused:", "true", "0 1 * * *", "RepositoryFound", "Recent sessions (2):", "restic: repository is locked by pod x", "Running"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "more") || strings.Contains(out, "Succeeded") {
		t.Errorf("output shows more than the 2 newest sessions' first lines:\n%s", out)
	}
}

func TestUsage(t *testing.T) {
	h := newHarness(t, nil)
	if code, out, _ := h.run("--help"); code != 0 || !strings.Contains(out, "snapshots") {
		t.Errorf("--help: %d %q", code, out)
	}
	if code, out, _ := h.run("--version"); code != 0 || !strings.HasPrefix(out, "kubectl-stow dev") {
		t.Errorf("--version: %d %q", code, out)
	}
	if code, _, errs := h.run("frobnicate"); code != 2 || !strings.Contains(errs, "unknown command") {
		t.Errorf("unknown command: %d %q", code, errs)
	}
}

// Numbers and durations out of range are usage errors (exit 2, one line),
// caught before anything is created; `describe --sessions=-1` panicked.
func TestFlagsOutOfRangeAreUsageErrors(t *testing.T) {
	h := newHarness(t, []runtime.Object{bc("nightly"), repo(nil), snapshot(id('a'), "nightly", "data", now, "/stow-data")})
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"describe", "nightly", "--sessions=-1"}, "--sessions"},
		{[]string{"snapshots", "--limit=-1"}, "--limit"},
		{[]string{"trigger", "nightly", "--wait", "--timeout=0s"}, "--timeout"},
		{[]string{"check", "repo", "--wait", "--timeout=-1m"}, "--timeout"},
		{[]string{"restore", "aaaaaaaaaaaaaaaa", "--wait", "--timeout=0s"}, "--timeout"},
	} {
		var code int
		var errs string
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("%v panicked: %v", tt.args, r)
				}
			}()
			code, _, errs = h.run(tt.args...)
		}()
		if code != 2 || !strings.Contains(errs, tt.want) || strings.Count(errs, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 naming %s", tt.args, code, errs, tt.want)
		}
	}
	if list, _ := h.stow.StowV1beta1().BackupSessions(ns).List(context.Background(), metav1.ListOptions{}); len(list.Items) != 0 {
		t.Errorf("a refused command created %d BackupSessions", len(list.Items))
	}
}
