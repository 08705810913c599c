//go:build e2e

package e2e

import (
	"context"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/names"
)

// TestConfigurationDeletionCleansUp: a configuration without sessions has no
// finalizer (a write per configuration saved, docs/performance.md); deleting
// it takes its CronJob with it, and the last user of the namespace's trigger
// identity takes that too. A configuration whose session ran has the
// finalizer, and its deletion removes its Pushgateway metrics as well.
func TestConfigurationDeletionCleansUp(t *testing.T) {
	t.Parallel()
	e2eShared(t)
	ns := namespace(t)
	c := context.Background()
	pvc(t, ns, "data", corev1.ReadWriteMany)
	createRepository(t, ns, "s3")
	createBC(t, backupConfig(ns, "idle", "data", "0 0 1 1 *", 5))
	createBC(t, backupConfig(ns, "ran", "data", "0 0 1 1 *", 5))
	waitBCReady(t, ns, "idle")
	waitBCReady(t, ns, "ran")
	getBC := func(name string) (*v1beta1.BackupConfiguration, error) {
		return e.stow.StowV1beta1().BackupConfigurations(ns).Get(c, name, metav1.GetOptions{})
	}
	if bc, err := getBC("idle"); err != nil || len(bc.Finalizers) != 0 {
		t.Fatalf("configuration without sessions: finalizers %v (err %v), want none", bc.Finalizers, err)
	}

	s := triggerBackup(t, ns, "ran", 4*time.Minute)
	if s.Status.Phase != v1beta1.BackupSessionSucceeded {
		t.Fatalf("session %s ended %s: %s", s.Name, s.Status.Phase, s.Status.Reason)
	}
	ranMetric := map[string]string{"namespace": ns, "invoker_name": "ran"}
	waitGauge(t, "stash_backup_session_success", ranMetric, 1)
	waitFor(t, "the finalizer on ran", time.Minute, func(context.Context) (bool, error) {
		bc, err := getBC("ran")
		return err == nil && slices.Contains(bc.Finalizers, v1beta1.Finalizer), nil
	})

	gone := func(what string, get func(context.Context) error) {
		t.Helper()
		waitFor(t, what+" deleted", 2*time.Minute, func(c context.Context) (bool, error) {
			return apierrors.IsNotFound(get(c)), nil
		})
	}
	cronJob := func(bc string) func(context.Context) error {
		return func(c context.Context) error {
			_, err := e.kube.BatchV1().CronJobs(ns).Get(c, names.CronJob(bc), metav1.GetOptions{})
			return err
		}
	}
	trigger := func(c context.Context) error {
		_, err := e.kube.CoreV1().ServiceAccounts(ns).Get(c, names.NamespaceTrigger, metav1.GetOptions{})
		return err
	}

	if err := e.stow.StowV1beta1().BackupConfigurations(ns).Delete(c, "idle", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	gone("CronJob of idle", cronJob("idle"))
	if err := trigger(c); err != nil {
		t.Fatalf("the trigger ServiceAccount went while ran still uses it: %v", err)
	}

	if err := e.stow.StowV1beta1().BackupConfigurations(ns).Delete(c, "ran", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	gone("BackupConfiguration ran", func(c context.Context) error { _, err := getBC("ran"); return err })
	gone("CronJob of ran", cronJob("ran"))
	gone("trigger ServiceAccount", trigger)
	gone("trigger Role", func(c context.Context) error {
		_, err := e.kube.RbacV1().Roles(ns).Get(c, names.NamespaceTrigger, metav1.GetOptions{})
		return err
	})
	gone("trigger RoleBinding", func(c context.Context) error {
		_, err := e.kube.RbacV1().RoleBindings(ns).Get(c, names.NamespaceTrigger, metav1.GetOptions{})
		return err
	})
	mfs, err := operatorMetrics(c)
	if err != nil {
		t.Fatal(err)
	}
	if hasSample(mfs["stash_backup_session_success"], ranMetric, 1) {
		t.Error("the Pushgateway still has the deleted configuration's metrics")
	}
}
