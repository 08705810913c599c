//go:build e2e

// Package e2e runs Stow end to end against the cluster in $KUBECONFIG, with
// the operator deployed in-cluster from deploy/ (hack/e2e.sh sets this up), so
// the deploy bundle is what is tested.
package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/retry"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	stow "github.com/stowhq/stow/client/clientset/versioned"
)

// env is read once: what hack/e2e.sh (or a user running against kind) provides.
type env struct {
	cfg          *rest.Config
	kube         kubernetes.Interface
	stow         stow.Interface
	fixtureImage string // image with the fixture binary (e2e/fixture)
	hostPathDir  string // if set, PVs are hostPath dirs below it (local cluster); else dynamic provisioning
	storageClass string
	s3Endpoint   string // MinIO reachable from pods, e.g. http://10.88.0.1:9000
	s3Key, s3Sec string
	operatorNS   string
}

var e *env

func TestMain(m *testing.M) {
	kc := os.Getenv("KUBECONFIG")
	if kc == "" {
		fmt.Fprintln(os.Stderr, "e2e: KUBECONFIG is not set; run `make test-e2e` (hack/e2e.sh) or point it at a cluster with Stow deployed")
		os.Exit(1)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	cfg.QPS, cfg.Burst = 50, 100
	e = &env{
		cfg:          cfg,
		kube:         kubernetes.NewForConfigOrDie(cfg),
		stow:         stow.NewForConfigOrDie(cfg),
		fixtureImage: getenv("STOW_E2E_FIXTURE_IMAGE", "docker.io/stowhq/stow-e2e-fixture:dev"),
		hostPathDir:  os.Getenv("STOW_E2E_HOSTPATH_DIR"),
		storageClass: os.Getenv("STOW_E2E_STORAGE_CLASS"),
		s3Endpoint:   os.Getenv("STOW_E2E_S3_ENDPOINT"),
		s3Key:        os.Getenv("STOW_E2E_S3_ACCESS_KEY"),
		s3Sec:        os.Getenv("STOW_E2E_S3_SECRET_KEY"),
		operatorNS:   getenv("STOW_E2E_OPERATOR_NAMESPACE", "stow-system"),
	}
	os.Exit(m.Run())
}

// shared guards things every test relies on (the operator, the suite's
// MinIO): disruptive tests (killing the operator) take it exclusively, every
// other test shares it, so no test's outcome depends on another's timing.
var shared sync.RWMutex

// e2eShared marks a test as needing the shared environment undisturbed; call
// it first (after t.Parallel) in every test that is not disruptive.
func e2eShared(t *testing.T) {
	t.Helper()
	shared.RLock()
	t.Cleanup(shared.RUnlock)
}

// e2eExclusive marks a test that disturbs the shared environment: it runs
// while no other test does.
func e2eExclusive(t *testing.T) {
	t.Helper()
	shared.Lock()
	t.Cleanup(shared.Unlock)
}

func getenv(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	return c
}

// namespace creates a fresh namespace for one test and deletes it afterwards
// (unless the test failed and STOW_E2E_KEEP is set, for debugging).
func namespace(t *testing.T) string {
	t.Helper()
	name := "e2e-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	if len(name) > 50 {
		name = name[:50]
	}
	name = strings.TrimRight(name, "-") + "-" + rand.String(4)
	_, err := e.kube.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			dumpNamespace(t, name)
			if os.Getenv("STOW_E2E_KEEP") != "" {
				return
			}
		}
		_ = e.kube.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return name
}

// pvc creates a PVC (and, on the local cluster, a hostPath PV bound to it).
func pvc(t *testing.T, ns, name string, mode corev1.PersistentVolumeAccessMode) {
	t.Helper()
	c := context.Background()
	claim := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{mode},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	if e.storageClass != "" {
		claim.Spec.StorageClassName = &e.storageClass
	}
	if e.hostPathDir != "" {
		pvName := ns + "-" + name
		dir := e.hostPathDir + "/" + pvName
		if err := os.MkdirAll(dir, 0o777); err != nil {
			t.Fatal(err)
		}
		_ = os.Chmod(dir, 0o777) // non-root Jobs and fixture pods write here
		hp := corev1.HostPathDirectoryOrCreate
		pv := &corev1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: pvName},
			Spec: corev1.PersistentVolumeSpec{
				Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
				AccessModes:                   []corev1.PersistentVolumeAccessMode{mode},
				PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
				StorageClassName:              e.storageClass,
				ClaimRef:                      &corev1.ObjectReference{Namespace: ns, Name: name},
				PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir, Type: &hp}},
			},
		}
		if _, err := e.kube.CoreV1().PersistentVolumes().Create(c, pv, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create pv: %v", err)
		}
		t.Cleanup(func() {
			_ = e.kube.CoreV1().PersistentVolumes().Delete(context.Background(), pvName, metav1.DeleteOptions{})
			_ = os.RemoveAll(dir)
		})
		claim.Spec.VolumeName = pvName
	}
	if _, err := e.kube.CoreV1().PersistentVolumeClaims(ns).Create(c, claim, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pvc: %v", err)
	}
}

// fixturePod is a root pod running the fixture binary with claim at /data:
// it writes app data owned by the non-root user, as an app would.
func fixturePod(ns, name, claim string, args ...string) *corev1.Pod {
	uid := int64(0)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PodSpec{
			RestartPolicy:                corev1.RestartPolicyNever,
			AutomountServiceAccountToken: boolPtr(false),
			SecurityContext:              &corev1.PodSecurityContext{RunAsUser: &uid},
			Containers: []corev1.Container{{
				Name: "fixture", Image: e.fixtureImage, ImagePullPolicy: corev1.PullIfNotPresent,
				Command:      append([]string{"/usr/local/bin/fixture"}, args...),
				VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
			}},
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}}},
		},
	}
}

// runFixture runs the fixture binary in a pod with the PVC at /data and
// returns its termination message (the manifest for "manifest").
func runFixture(t *testing.T, ns, claim string, args ...string) string {
	t.Helper()
	c := ctx(t)
	name := "fixture-" + rand.String(5)
	pod := fixturePod(ns, name, claim, args...)
	if _, err := e.kube.CoreV1().Pods(ns).Create(c, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create fixture pod: %v", err)
	}
	var msg string
	err := wait.PollUntilContextTimeout(c, time.Second, 3*time.Minute, true, func(c context.Context) (bool, error) {
		p, err := e.kube.CoreV1().Pods(ns).Get(c, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		switch p.Status.Phase {
		case corev1.PodSucceeded:
			msg = p.Status.ContainerStatuses[0].State.Terminated.Message
			return true, nil
		case corev1.PodFailed:
			m := ""
			if len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].State.Terminated != nil {
				m = p.Status.ContainerStatuses[0].State.Terminated.Message
			}
			return false, fmt.Errorf("fixture %v failed: %s", args, m)
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("fixture %v: %v", args, err)
	}
	_ = e.kube.CoreV1().Pods(ns).Delete(context.Background(), name, metav1.DeleteOptions{})
	return msg
}

func boolPtr(b bool) *bool { return &b }

// waitFor polls cond every second until it returns true, an error, or timeout.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func(context.Context) (bool, error)) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(ctx(t), time.Second, timeout, true, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// settle polls get every second until it returns want, for at most 30 s,
// and returns what it last returned: status one controller derives from
// another's objects (a configuration's or Repository's from its sessions)
// follows them by a moment.
func settle[T comparable](t *testing.T, want T, get func() T) T {
	t.Helper()
	var got T
	_ = wait.PollUntilContextTimeout(ctx(t), time.Second, 30*time.Second, true, func(context.Context) (bool, error) {
		got = get()
		return got == want, nil
	})
	return got
}

// updateBC changes the spec of BackupConfiguration ns/name with mutate, as
// a user's client would: read, change, write, again on a conflict (the
// operator writes its status at any time).
func updateBC(t *testing.T, ns, name string, mutate func(*v1beta1.BackupConfiguration)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		bc, err := e.stow.StowV1beta1().BackupConfigurations(ns).Get(ctx(t), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		mutate(bc)
		_, err = e.stow.StowV1beta1().BackupConfigurations(ns).Update(ctx(t), bc, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("update BackupConfiguration %s/%s: %v", ns, name, err)
	}
}

// waitSession waits until a BackupSession of bc reaches a final phase and returns it.
func waitSession(t *testing.T, ns, bc string, timeout time.Duration, skip map[string]bool) *v1beta1.BackupSession {
	t.Helper()
	var found *v1beta1.BackupSession
	waitFor(t, "a final BackupSession of "+bc, timeout, func(c context.Context) (bool, error) {
		list, err := e.stow.StowV1beta1().BackupSessions(ns).List(c, metav1.ListOptions{LabelSelector: v1beta1.LabelInvokerName + "=" + bc})
		if err != nil {
			return false, nil
		}
		for i := range list.Items {
			s := &list.Items[i]
			if !skip[s.Name] && s.Status.Phase.IsFinal() {
				found = s
				return true, nil
			}
		}
		return false, nil
	})
	return found
}

// dumpNamespace logs what a failed test's namespace holds, the most telling
// last: CI shows only the end of a failed run's output, so Events and Pods
// come first and the sessions' phases and reasons close the dump.
func dumpNamespace(t *testing.T, ns string) {
	c := context.Background()
	if l, err := e.kube.CoreV1().Events(ns).List(c, metav1.ListOptions{}); err == nil {
		for _, ev := range l.Items {
			t.Logf("Event %s %s/%s: %s %s", ev.Type, ev.InvolvedObject.Kind, ev.InvolvedObject.Name, ev.Reason, ev.Message)
		}
	}
	if l, err := e.kube.CoreV1().Pods(ns).List(c, metav1.ListOptions{}); err == nil {
		for _, p := range l.Items {
			t.Logf("Pod %s: phase=%s conditions=%+v init=%+v containers=%+v", p.Name, p.Status.Phase, p.Status.Conditions, p.Status.InitContainerStatuses, p.Status.ContainerStatuses)
		}
	}
	if l, err := e.stow.StowV1beta1().BackupConfigurations(ns).List(c, metav1.ListOptions{}); err == nil {
		for _, b := range l.Items {
			t.Logf("BackupConfiguration %s: phase=%s conditions=%+v", b.Name, b.Status.Phase, b.Status.Conditions)
		}
	}
	if l, err := e.stow.StowV1beta1().RestoreSessions(ns).List(c, metav1.ListOptions{}); err == nil {
		for _, r := range l.Items {
			t.Logf("RestoreSession %s: phase=%s reason=%q conditions=%+v stats=%+v", r.Name, r.Status.Phase, r.Status.Reason, r.Status.Conditions, r.Status.Stats)
		}
	}
	if l, err := e.stow.StowV1beta1().BackupSessions(ns).List(c, metav1.ListOptions{}); err == nil {
		for _, s := range l.Items {
			t.Logf("BackupSession %s: phase=%s reason=%q conditions=%+v targets=%+v", s.Name, s.Status.Phase, s.Status.Reason, s.Status.Conditions, s.Status.Targets)
		}
	}
	t.Logf("%s failed: its first error is logged above the dump of namespace %s", t.Name(), ns)
}

var _ = apierrors.IsNotFound
