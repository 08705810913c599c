//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/names"
)

// triggerBackup creates a BackupSession by hand, as `kubectl create` or the
// trigger CronJob would ("instant backup"), and waits for its final phase.
func triggerBackup(t *testing.T, ns, bcName string, timeout time.Duration) *v1beta1.BackupSession {
	t.Helper()
	c := context.Background()
	bc, err := e.stow.StowV1beta1().BackupConfigurations(ns).Get(c, bcName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := &v1beta1.BackupSession{
		ObjectMeta: metav1.ObjectMeta{GenerateName: bcName + "-manual-", Namespace: ns, Labels: names.SessionLabels(bc)},
		Spec:       v1beta1.BackupSessionSpec{Invoker: v1beta1.BackupInvokerRef{Kind: v1beta1.KindBackupConfiguration, Name: bcName}},
	}
	s, err = e.stow.StowV1beta1().BackupSessions(ns).Create(c, s, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return waitSessionFinal(t, ns, s.Name, timeout)
}

func createBC(t *testing.T, bc *v1beta1.BackupConfiguration) {
	t.Helper()
	if _, err := e.stow.StowV1beta1().BackupConfigurations(bc.Namespace).Create(context.Background(), bc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// A paused configuration creates no session. To know a schedule tick has
// passed without sleeping, a second, unpaused configuration with the same
// schedule must first produce its session.
func TestPausedConfigurationCreatesNoSession(t *testing.T) {
	t.Parallel()
	e2eShared(t)
	ns := namespace(t)
	pvc(t, ns, "data", corev1.ReadWriteMany)
	createRepository(t, ns, "local")
	paused := backupConfig(ns, "paused", "data", "*/1 * * * *", 3)
	paused.Spec.Paused = true
	createBC(t, paused)
	createBC(t, backupConfig(ns, "control", "data", "*/1 * * * *", 3))
	waitBCReady(t, ns, "control")
	waitFor(t, "paused CronJob suspended", time.Minute, func(c context.Context) (bool, error) {
		cj, err := e.kube.BatchV1().CronJobs(ns).Get(c, names.CronJob("paused"), metav1.GetOptions{})
		return err == nil && cj.Spec.Suspend != nil && *cj.Spec.Suspend, nil
	})
	if s := waitSession(t, ns, "control", 4*time.Minute, nil); s.Status.Phase != v1beta1.BackupSessionSucceeded {
		t.Fatalf("control session %s: %s (%s)", s.Name, s.Status.Phase, s.Status.Reason)
	}
	l, err := e.stow.StowV1beta1().BackupSessions(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range l.Items {
		if s.Spec.Invoker.Name == "paused" {
			t.Fatalf("paused configuration produced session %s", s.Name)
		}
	}
}

// Retention keeps N snapshots: three backups with keepLast 2 leave 2.
func TestRetentionKeepsLastN(t *testing.T) {
	t.Parallel()
	e2eShared(t)
	ns := namespace(t)
	pvc(t, ns, "data", corev1.ReadWriteMany)
	runFixture(t, ns, "data", "write", "/data", "7", "10")
	createRepository(t, ns, "local")
	createBC(t, backupConfig(ns, "keep2", "data", "0 0 1 1 *", 2))
	waitBCReady(t, ns, "keep2")
	for i := 1; i <= 3; i++ {
		s := triggerBackup(t, ns, "keep2", 3*time.Minute)
		if s.Status.Phase != v1beta1.BackupSessionSucceeded {
			t.Fatalf("backup %d (%s) ended %s: %s", i, s.Name, s.Status.Phase, s.Status.Reason)
		}
	}
	type counts struct{ snapshots, removed int64 }
	got := settle(t, counts{2, 1}, func() counts {
		repo, err := e.stow.StowV1beta1().Repositories(ns).Get(context.Background(), "repo", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return counts{repo.Status.SnapshotCount, repo.Status.SnapshotsRemovedOnLastCleanup}
	})
	if got != (counts{2, 1}) {
		t.Fatalf("after 3 backups with keepLast 2: snapshotCount=%d removed=%d", got.snapshots, got.removed)
	}
}

// A pod that can never start (its PVC never binds) fails its session within
// the Pending threshold (40s in e2e/deploy) with a reason, and once the PVC
// can bind, the next session of the same configuration runs and succeeds.
func TestPendingPodFailsSessionAndNextRuns(t *testing.T) {
	t.Parallel()
	e2eShared(t)
	ns := namespace(t)
	c := context.Background()
	class := "e2e-late-" + ns
	claim := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "stuck", Namespace: ns},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: &class,
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	if _, err := e.kube.CoreV1().PersistentVolumeClaims(ns).Create(c, claim, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	createRepository(t, ns, "local")
	createBC(t, backupConfig(ns, "stuck", "stuck", "0 0 1 1 *", 2))
	waitBCReady(t, ns, "stuck")

	start := time.Now()
	s := triggerBackup(t, ns, "stuck", 3*time.Minute)
	if s.Status.Phase != v1beta1.BackupSessionFailed {
		t.Fatalf("session with a pod that cannot start ended %s", s.Status.Phase)
	}
	if took := time.Since(start); took > 2*time.Minute {
		t.Errorf("failing took %s; threshold is 40s", took)
	}
	if !strings.Contains(s.Status.Reason+fmt.Sprint(s.Status.Targets), v1beta1.PodHasBeenInPendingStateForLongerThanExpected) {
		t.Errorf("reason does not say the pod stayed Pending: %q %+v", s.Status.Reason, s.Status.Targets)
	}

	// Make the claim bindable: a PV of its class (the kubelet creates the dir).
	hp := corev1.HostPathDirectoryOrCreate
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-late-" + ns},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName:              class,
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{
				Path: "/tmp/stow-e2e-late-" + ns, Type: &hp}},
		},
	}
	if _, err := e.kube.CoreV1().PersistentVolumes().Create(c, pv, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.kube.CoreV1().PersistentVolumes().Delete(context.Background(), pv.Name, metav1.DeleteOptions{})
		_ = os.RemoveAll(pv.Spec.HostPath.Path) // on the local cluster the node is this host
	})
	if next := triggerBackup(t, ns, "stuck", 4*time.Minute); next.Status.Phase != v1beta1.BackupSessionSucceeded {
		t.Fatalf("next session after the PVC became bindable ended %s: %s", next.Status.Phase, next.Status.Reason)
	}
}

// Metrics scraped from the operator (through the apiserver's service proxy,
// so it works on any cluster) show the session with its target labels.
func TestMetricsShowSession(t *testing.T) {
	t.Parallel()
	e2eShared(t)
	ns := namespace(t)
	pvc(t, ns, "data", corev1.ReadWriteMany)
	runFixture(t, ns, "data", "write", "/data", "3", "5")
	createRepository(t, ns, "local")
	createBC(t, backupConfig(ns, "metered", "data", "0 0 1 1 *", 2))
	waitBCReady(t, ns, "metered")
	if s := triggerBackup(t, ns, "metered", 3*time.Minute); s.Status.Phase != v1beta1.BackupSessionSucceeded {
		t.Fatalf("session ended %s: %s", s.Status.Phase, s.Status.Reason)
	}
	want := map[string]float64{
		"stash_backup_session_success":     1,
		"stash_backup_target_success":      1,
		"stash_backup_host_backup_success": 1,
		// From the check that runs right after the repository's first backup.
		"stash_repository_integrity": 1,
	}
	var last string
	waitFor(t, "session metrics on the operator's /metrics", 3*time.Minute, func(c context.Context) (bool, error) {
		raw, err := e.kube.CoreV1().Services(e.operatorNS).ProxyGet("http", "stow-operator", "pushgateway", "/metrics", nil).DoRaw(c)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(strings.NewReader(string(raw)))
		if err != nil {
			return false, fmt.Errorf("parse /metrics: %v", err)
		}
		missing := []string{}
		for name, v := range want {
			labels := map[string]string{"namespace": ns, "invoker_name": "metered"}
			if name == "stash_repository_integrity" { // pushed by the Repository's maintenance Job
				labels = map[string]string{"namespace": ns, "name": "repo"}
			}
			if !hasSample(families[name], labels, v) {
				missing = append(missing, name)
			}
		}
		last = "missing " + strings.Join(missing, ", ")
		if len(missing) > 0 {
			return false, nil
		}
		// Target labels on the target family (Stash #869).
		return hasSample(families["stash_backup_target_success"], map[string]string{"kind": "PersistentVolumeClaim", "name": "data"}, 1), nil
	})
	t.Logf("metrics: %s", last)
}

func hasSample(mf *dto.MetricFamily, labels map[string]string, value float64) bool {
	if mf == nil {
		return false
	}
	for _, m := range mf.GetMetric() {
		ok := true
		for k, v := range labels {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			ok = ok && found
		}
		if ok && m.GetGauge() != nil && m.GetGauge().GetValue() == value {
			return true
		}
	}
	return false
}
