//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

// operatorMetrics scrapes the operator's /metrics through the service proxy.
func operatorMetrics(c context.Context) (map[string]*dto.MetricFamily, error) {
	raw, err := e.kube.CoreV1().Services(e.operatorNS).ProxyGet("http", "stow-operator", "pushgateway", "/metrics", nil).DoRaw(c)
	if err != nil {
		return nil, err
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	return parser.TextToMetricFamilies(strings.NewReader(string(raw)))
}

// waitGauge waits until name has a sample with labels and value v.
func waitGauge(t *testing.T, name string, labels map[string]string, v float64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%s%v = %v", name, labels, v), 2*time.Minute, func(c context.Context) (bool, error) {
		mfs, err := operatorMetrics(c)
		if err != nil {
			return false, nil
		}
		return hasSample(mfs[name], labels, v), nil
	})
}

// TestMetricsHonest (issue 17): a backup that fails in its backup step (its
// excludes leave nothing, so update-status never runs) sets
// stash_backup_host_backup_success to 0, which is the StowBackupHostFailed
// expression (== 0); a configuration in another namespace whose Task
// parameters claim to be that one (NAMESPACE, INVOKER_NAME) is Invalid, and
// its sessions do not change the victim's metrics: the operator pushes under
// its own labels, Jobs push nothing.
func TestMetricsHonest(t *testing.T) {
	t.Parallel()
	e2eShared(t)
	c := context.Background()
	ns := namespace(t)
	pvc(t, ns, "data", corev1.ReadWriteMany)
	runFixture(t, ns, "data", "write", "/data", "3", "5")
	createRepository(t, ns, "local")
	createBC(t, backupConfig(ns, "victim", "data", "0 0 1 1 *", 2))
	waitBCReady(t, ns, "victim")
	if s := triggerBackup(t, ns, "victim", 3*time.Minute); s.Status.Phase != v1beta1.BackupSessionSucceeded {
		t.Fatalf("first session ended %s: %s", s.Status.Phase, s.Status.Reason)
	}
	host := map[string]string{"namespace": ns, "invoker_name": "victim", "hostname": "host-0", "name": "data"}
	waitGauge(t, "stash_backup_host_backup_success", host, 1)

	// Exclude everything: the backup step fails, update-status never runs.
	updateBC(t, ns, "victim", func(bc *v1beta1.BackupConfiguration) { bc.Spec.Target.Exclude = []string{"*"} })
	waitBCReady(t, ns, "victim")
	if s := triggerBackup(t, ns, "victim", 3*time.Minute); s.Status.Phase != v1beta1.BackupSessionFailed {
		t.Fatalf("session excluding everything ended %s: %s", s.Status.Phase, s.Status.Reason)
	}
	waitGauge(t, "stash_backup_host_backup_success", host, 0)
	waitGauge(t, "stash_backup_session_success", map[string]string{"namespace": ns, "invoker_name": "victim"}, 0)

	// A succeeding configuration elsewhere that claims to be the victim.
	ns2 := namespace(t)
	pvc(t, ns2, "data", corev1.ReadWriteMany)
	runFixture(t, ns2, "data", "write", "/data", "3", "5")
	createRepository(t, ns2, "local")
	spoof := backupConfig(ns2, "spoofer", "data", "0 0 1 1 *", 2)
	spoof.Spec.Task.Params = []v1beta1.Param{{Name: "NAMESPACE", Value: ns}, {Name: "INVOKER_NAME", Value: "victim"}}
	createBC(t, spoof)
	// Task parameters may not replace variables Stow computes: Invalid.
	cd := waitBCCondition(t, ns2, "spoofer", v1beta1.ValidationPassed, v1beta1.ConditionFalse, v1beta1.ResourceValidationFailed, v1beta1.BackupInvokerInvalid)
	if !strings.Contains(cd.Message, `spec.task.params[0].name: Invalid value: "NAMESPACE"`) {
		t.Fatalf("spoofing configuration: %s", cd.Message)
	}
	// Without them it backs up its own PVC, under its own labels.
	updateBC(t, ns2, "spoofer", func(bc *v1beta1.BackupConfiguration) { bc.Spec.Task.Params = nil })
	waitBCReady(t, ns2, "spoofer")
	s := triggerBackup(t, ns2, "spoofer", 3*time.Minute)
	t.Logf("spoofing session ended %s %s", s.Status.Phase, s.Status.Reason)
	if s.Status.Phase == v1beta1.BackupSessionSucceeded {
		waitGauge(t, "stash_backup_host_backup_success", map[string]string{"namespace": ns2, "invoker_name": "spoofer", "hostname": "host-0"}, 1)
	} else {
		waitGauge(t, "stash_backup_session_success", map[string]string{"namespace": ns2, "invoker_name": "spoofer"}, 0)
	}
	mfs, err := operatorMetrics(c)
	if err != nil {
		t.Fatal(err)
	}
	if !hasSample(mfs["stash_backup_host_backup_success"], host, 0) || hasSample(mfs["stash_backup_host_backup_success"], host, 1) {
		t.Fatalf("the victim's host success changed after the spoofing session")
	}
}
