//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

// TestKubectlPlugin drives a backup and a restore with the built plugin only,
// as a user with a kubeconfig and no repository credentials would: pause the
// schedule, trigger a backup, list its snapshot, unlock and check the
// repository, restore the snapshot over changed data and into a new PVC,
// describe the configuration, resume.
func TestKubectlPlugin(t *testing.T) {
	t.Parallel()
	e2eShared(t)
	ns := namespace(t)
	c := context.Background()
	plugin := buildPlugin(t)
	stow := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(plugin, append(args, "-n", ns)...)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+os.Getenv("KUBECONFIG"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl stow %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		t.Logf("kubectl stow %s:\n%s", strings.Join(args, " "), out)
		return string(out)
	}

	pvc(t, ns, "data", corev1.ReadWriteOnce)
	runFixture(t, ns, "data", "write", "/data", "1", "20")
	before := runFixture(t, ns, "data", "manifest", "/data")
	createRepository(t, ns, "s3")
	// A schedule that does not fire during the test: backups come from trigger.
	if _, err := e.stow.StowV1beta1().BackupConfigurations(ns).Create(c, backupConfig(ns, "data-backup", "data", "0 0 1 1 *", 5), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitBCReady(t, ns, "data-backup")

	stow("pause", "data-backup")
	if bc, err := e.stow.StowV1beta1().BackupConfigurations(ns).Get(c, "data-backup", metav1.GetOptions{}); err != nil || !bc.Spec.Paused {
		t.Fatalf("pause did not pause: %v", err)
	}
	out := stow("trigger", "data-backup", "--wait", "--timeout=5m")
	if !strings.Contains(out, "Succeeded") {
		t.Fatalf("trigger --wait: %s", out)
	}

	// The session records its snapshot; the plugin lists it.
	var snap string
	waitFor(t, "snapshot listed", time.Minute, func(context.Context) (bool, error) {
		lines := strings.Split(strings.TrimSpace(stow("snapshots", "data-backup")), "\n")
		if len(lines) < 2 || !strings.HasPrefix(lines[0], "NAME") {
			return false, nil
		}
		snap = strings.Fields(lines[1])[0]
		return true, nil
	})

	if out := stow("unlock", "repo", "--wait", "--timeout=5m"); !strings.Contains(out, "stale lock") {
		t.Errorf("unlock --wait: %s", out)
	}
	if out := stow("check", "repo", "--wait", "--timeout=5m"); !strings.Contains(out, "no errors were found") {
		t.Errorf("check --wait: %s", out)
	}

	// Into the snapshot's own PVC, over changed data.
	runFixture(t, ns, "data", "mutate", "/data")
	stow("restore", snap, "--name=back", "--wait", "--timeout=5m")
	if after := dropLine(runFixture(t, ns, "data", "manifest", "/data"), "added-after-backup.txt"); after != before {
		t.Fatalf("restored data differs from the backup\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// Into a new PVC the restore creates.
	args := []string{"restore", snap, "--name=copy", "--to-pvc=data-copy", "--wait", "--timeout=5m"}
	if e.storageClass != "" {
		args = append(args, "--storage-class="+e.storageClass)
	}
	stow(args...)
	if got := runFixture(t, ns, "data-copy", "manifest", "/data"); got != before {
		t.Fatalf("new PVC holds other data\nwant:\n%s\ngot:\n%s", before, got)
	}

	out = stow("describe", "data-backup")
	for _, want := range []string{"Paused:", "true", "Recent sessions (1):", string(v1beta1.BackupSessionSucceeded)} {
		if !strings.Contains(out, want) {
			t.Errorf("describe lacks %q:\n%s", want, out)
		}
	}
	stow("resume", "data-backup")
	if bc, err := e.stow.StowV1beta1().BackupConfigurations(ns).Get(c, "data-backup", metav1.GetOptions{}); err != nil || bc.Spec.Paused {
		t.Fatalf("resume did not resume: %v", err)
	}
}

// buildPlugin builds cmd/kubectl-stow from this checkout.
func buildPlugin(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kubectl-stow")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/kubectl-stow")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build kubectl-stow: %v\n%s", err, out)
	}
	return bin
}
