//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/names"
)

const password = "e2e-not-a-real-secret-4711"

// backend builds a Repository backend for the test: "local" keeps the restic
// repository on a second PVC, "s3" uses the MinIO the suite was given.
func backend(t *testing.T, ns, kind string) (v1beta1.Backend, map[string]string) {
	t.Helper()
	secret := map[string]string{"RESTIC_PASSWORD": password}
	b := v1beta1.Backend{StorageSecretName: "repo-secret"}
	switch kind {
	case "local":
		pvc(t, ns, "repo", corev1.ReadWriteMany)
		b.Local = &v1beta1.LocalSpec{MountPath: "/repo", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "repo"}}}
	case "s3":
		if e.s3Endpoint == "" {
			t.Fatal("STOW_E2E_S3_ENDPOINT is not set: hack/e2e.sh starts MinIO and sets it")
		}
		b.S3 = &v1beta1.S3Spec{Endpoint: e.s3Endpoint, Bucket: "stow-e2e", Prefix: ns}
		secret["AWS_ACCESS_KEY_ID"] = e.s3Key
		secret["AWS_SECRET_ACCESS_KEY"] = e.s3Sec
	}
	return b, secret
}

func createRepository(t *testing.T, ns, kind string) {
	t.Helper()
	c := context.Background()
	b, data := backend(t, ns, kind)
	if _, err := e.kube.CoreV1().Secrets(ns).Create(c, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "repo-secret", Namespace: ns}, StringData: data}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.stow.StowV1beta1().Repositories(ns).Create(c, &v1beta1.Repository{
		ObjectMeta: metav1.ObjectMeta{Name: "repo", Namespace: ns}, Spec: v1beta1.RepositorySpec{Backend: b}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func backupConfig(ns, name, claim, schedule string, keepLast int64) *v1beta1.BackupConfiguration {
	return &v1beta1.BackupConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1beta1.BackupConfigurationSpec{
			Schedule:        schedule,
			Repository:      v1beta1.ObjectRef{Name: "repo"},
			Target:          &v1beta1.BackupTarget{Ref: v1beta1.TargetRef{APIVersion: "v1", Kind: "PersistentVolumeClaim", Name: claim}},
			RetentionPolicy: v1beta1.RetentionPolicy{Name: "keep", KeepLast: keepLast, Prune: true},
		},
	}
}

func waitBCReady(t *testing.T, ns, name string) {
	t.Helper()
	waitFor(t, "BackupConfiguration "+name+" Ready", 2*time.Minute, func(c context.Context) (bool, error) {
		bc, err := e.stow.StowV1beta1().BackupConfigurations(ns).Get(c, name, metav1.GetOptions{})
		return err == nil && bc.Status.Phase == v1beta1.BackupInvokerReady, nil
	})
}

func waitRestore(t *testing.T, ns, name string, timeout time.Duration) *v1beta1.RestoreSession {
	t.Helper()
	var rs *v1beta1.RestoreSession
	waitFor(t, "RestoreSession "+name+" final", timeout, func(c context.Context) (bool, error) {
		r, err := e.stow.StowV1beta1().RestoreSessions(ns).Get(c, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		rs = r
		return r.Status.Phase.IsFinal() || r.Status.Phase == v1beta1.RestoreInvalid, nil
	})
	return rs
}

// TestScheduledBackupAndRestore is the product's main path, on both backends:
// the CronJob creates a session, the Job backs up the PVC, files are changed
// and deleted, a RestoreSession with no rules brings every byte back.
func TestScheduledBackupAndRestore(t *testing.T) {
	for _, kind := range []string{"local", "s3"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			e2eShared(t)
			ns := namespace(t)
			c := context.Background()
			pvc(t, ns, "data", corev1.ReadWriteMany)
			runFixture(t, ns, "data", "write", "/data", "1", "40")
			before := runFixture(t, ns, "data", "manifest", "/data")
			createRepository(t, ns, kind)

			if _, err := e.stow.StowV1beta1().BackupConfigurations(ns).Create(c, backupConfig(ns, "data-backup", "data", "*/1 * * * *", 5), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			waitBCReady(t, ns, "data-backup")
			s := waitSession(t, ns, "data-backup", 4*time.Minute, nil)
			if s.Status.Phase != v1beta1.BackupSessionSucceeded {
				t.Fatalf("first scheduled session %s ended %s: %s", s.Name, s.Status.Phase, s.Status.Reason)
			}
			if len(s.Status.Targets) != 1 || len(s.Status.Targets[0].Stats) != 1 || len(s.Status.Targets[0].Stats[0].Snapshots) == 0 {
				t.Fatalf("session has no snapshot stats: %+v", s.Status.Targets)
			}
			// Stop scheduling before we break the data, so no backup of the
			// broken state can become "latest".
			pause(t, ns, "data-backup")

			runFixture(t, ns, "data", "mutate", "/data")
			if changed := runFixture(t, ns, "data", "manifest", "/data"); changed == before {
				t.Fatal("mutate did not change the data")
			}
			// Created from a minimal manifest, as kubectl apply would send it
			// (the typed client would add empty optional structs).
			manifest := `{"apiVersion":"stow.dev/v1beta1","kind":"RestoreSession","metadata":{"name":"restore"},
				"spec":{"repository":{"name":"repo"},"target":{"ref":{"apiVersion":"v1","kind":"PersistentVolumeClaim","name":"data"}}}}`
			if err := e.stow.StowV1beta1().RESTClient().Post().Namespace(ns).Resource("restoresessions").
				Body([]byte(manifest)).SetHeader("Content-Type", "application/json").Do(c).Error(); err != nil {
				t.Fatal(err)
			}
			if got := waitRestore(t, ns, "restore", 4*time.Minute); got.Status.Phase != v1beta1.RestoreSucceeded {
				t.Fatalf("restore ended %s: %s", got.Status.Phase, got.Status.Reason)
			}
			after := runFixture(t, ns, "data", "manifest", "/data")
			// A restore brings back what the snapshot holds; it does not delete
			// files created after it.
			after = dropLine(after, "added-after-backup.txt")
			if after != before {
				t.Fatalf("restored data differs from the backup\nbefore:\n%s\nafter:\n%s", before, after)
			}
			// Sessions no longer check or measure the repository: its first
			// check and refresh run right after its first backup.
			waitFor(t, "repository checked and measured after its first backup", 3*time.Minute, func(c context.Context) (bool, error) {
				repo, err := e.stow.StowV1beta1().Repositories(ns).Get(c, "repo", metav1.GetOptions{})
				if err != nil {
					return false, err
				}
				st := repo.Status
				return st.SnapshotCount >= 1 && st.Integrity != nil && *st.Integrity && st.LastBackupTime != nil && st.TotalSize != "", nil
			})
		})
	}
}

func pause(t *testing.T, ns, name string) {
	t.Helper()
	updateBC(t, ns, name, func(bc *v1beta1.BackupConfiguration) { bc.Spec.Paused = true })
	// A trigger Job already started may still create one session: wait until
	// the CronJob is suspended with no active Job, then for sessions to end.
	waitFor(t, "trigger CronJob of "+name+" suspended and idle", 2*time.Minute, func(c context.Context) (bool, error) {
		cj, err := e.kube.BatchV1().CronJobs(ns).Get(c, names.CronJob(name), metav1.GetOptions{})
		if err != nil || cj.Spec.Suspend == nil || !*cj.Spec.Suspend || len(cj.Status.Active) > 0 {
			return false, nil
		}
		jobs, err := e.kube.BatchV1().Jobs(ns).List(c, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		for _, j := range jobs.Items {
			if strings.HasPrefix(j.Name, names.CronJob(name)) && j.Status.CompletionTime == nil && j.Status.Failed == 0 {
				return false, nil
			}
		}
		return true, nil
	})
	waitFor(t, "no BackupSession of "+name+" running", 4*time.Minute, func(c context.Context) (bool, error) {
		l, err := e.stow.StowV1beta1().BackupSessions(ns).List(c, metav1.ListOptions{LabelSelector: v1beta1.LabelInvokerName + "=" + name})
		if err != nil {
			return false, nil
		}
		for _, s := range l.Items {
			if !s.Status.Phase.IsFinal() {
				return false, nil
			}
		}
		return true, nil
	})
}

func dropLine(s, contains string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.Contains(l, contains) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
