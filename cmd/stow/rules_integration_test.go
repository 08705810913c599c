package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stowhq/stow/internal/testenv"
	"github.com/stowhq/stow/pkg/identity"
	"github.com/stowhq/stow/pkg/jobenv"
)

// TestIntegrationRulesPreferTheTargetsOwnSnapshots: Stash's restore guide
// names `snapshots: [latest]` (or paths) in a rule. Every stand-alone PVC is
// host-0, mounted at the same path, so in a repository shared by PVCs of
// several namespaces "the latest of host-0" is whichever PVC was backed up
// last. A rule's latest is the newest snapshot of the restored PVC when it
// has any; only a PVC without snapshots of its own (a clone from another
// PVC) gets the newest of the host, and the log says whose.
func TestIntegrationRulesPreferTheTargetsOwnSnapshots(t *testing.T) {
	m := testenv.StartMinIO(t)
	dir := t.TempDir()
	repoFlags := []string{"--provider=s3", "--bucket=rules", "--endpoint=" + m.Endpoint, "--path=shared",
		"--scratch-dir=" + filepath.Join(dir, "scratch"), "--output-dir=" + filepath.Join(dir, "output")}
	termLog := filepath.Join(dir, "termination-log")
	env := func(ns, invokerKind, invokerName, pvc string) map[string]string {
		return stepEnv(m, "rules password", jobenv.Contract{Identity: identity.Identity{Namespace: ns, InvokerKind: invokerKind, InvokerName: invokerName,
			TargetKind: "PersistentVolumeClaim", TargetName: pvc}})
	}
	run := func(t *testing.T, env map[string]string, args ...string) stowRun {
		t.Helper()
		return runStow(t, env, append(append(args, repoFlags...), "--termination-log="+termLog)...)
	}
	// One mount path for both PVCs, as in their Jobs: team-a's backup,
	// then team-b's, newer.
	mount := filepath.Join(dir, "stow-data")
	for _, ns := range []string{"team-a", "team-b"} {
		testenv.WriteFile(t, filepath.Join(mount, "owner.txt"), []byte(ns), 0o644)
		if r := run(t, env(ns, "BackupConfiguration", "nightly", "data"), "backup-pvc", "--hostname=host-0",
			"--backupsession=nightly-1", "--backup-paths="+mount, "--mount-path="+mount); r.code != 0 {
			t.Fatalf("backup of %s: %s", ns, r)
		}
	}
	for _, tc := range []struct {
		name, ns, pvc, want string
		args                []string
	}{
		{"snapshots latest", "team-a", "data", "team-a", []string{"--snapshots=latest"}},
		{"rule paths", "team-a", "data", "team-a", []string{"--restore-paths=" + mount}},
		{"clone into a PVC without snapshots", "team-a", "copy", "team-b", []string{"--restore-paths=" + mount}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"), "stow-data")
			r := run(t, env(tc.ns, "RestoreSession", "rs", tc.pvc), append([]string{"restore-pvc", "--hostname=host-0", "--mount-path=" + target}, tc.args...)...)
			if r.code != 0 {
				t.Fatalf("restore: %s", r)
			}
			if got, err := os.ReadFile(filepath.Join(target, "owner.txt")); err != nil || string(got) != tc.want {
				t.Errorf("restored the data of %q (%v), want %s's", got, err, tc.want)
			}
			if tc.want != tc.ns && !strings.Contains(r.stderr, "PersistentVolumeClaim team-b/data, the newest of the host") {
				t.Errorf("the restore of another PVC's snapshot is not named in the log:\n%s", r.stderr)
			}
		})
	}
}
