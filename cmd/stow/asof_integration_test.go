package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stowhq/stow/internal/testenv"
	"github.com/stowhq/stow/pkg/identity"
	"github.com/stowhq/stow/pkg/jobenv"
	"github.com/stowhq/stow/pkg/restic"
)

// TestIntegrationRestoreAsOf: with the RestoreSession's restoreAsOf in the
// contract, every "latest" choice of the restore step (no rules, rule paths,
// snapshots: latest) restores the newest snapshot taken at or before it;
// before the first snapshot there is nothing, and that is a failure.
func TestIntegrationRestoreAsOf(t *testing.T) {
	m := testenv.StartMinIO(t)
	dir := t.TempDir()
	repoFlags := []string{"--provider=s3", "--bucket=asof", "--endpoint=" + m.Endpoint, "--path=team",
		"--scratch-dir=" + filepath.Join(dir, "scratch"), "--output-dir=" + filepath.Join(dir, "output")}
	termLog := filepath.Join(dir, "termination-log")
	env := func(invokerKind, invokerName string, asOf time.Time) map[string]string {
		return stepEnv(m, "asof password", jobenv.Contract{Identity: identity.Identity{Namespace: "apps", InvokerKind: invokerKind, InvokerName: invokerName,
			TargetKind: "PersistentVolumeClaim", TargetName: "data"}, AsOf: asOf})
	}
	run := func(t *testing.T, env map[string]string, args ...string) stowRun {
		t.Helper()
		return runStow(t, env, append(append(args, repoFlags...), "--termination-log="+termLog)...)
	}
	mount := filepath.Join(dir, "stow-data")
	for round := 1; round <= 3; round++ {
		testenv.WriteFile(t, filepath.Join(mount, "round.txt"), []byte("round "+strconv.Itoa(round)), 0o644)
		if r := run(t, env("BackupConfiguration", "nightly", time.Time{}), "backup-pvc", "--hostname=host-0",
			"--backupsession=nightly-"+strconv.Itoa(round), "--backup-paths="+mount, "--mount-path="+mount); r.code != 0 {
			t.Fatalf("backup %d: %s", round, r)
		}
	}
	e := m.Env()
	e["RESTIC_PASSWORD"] = "asof password"
	b, err := restic.BackendFlags{Provider: "s3", Bucket: "asof", Endpoint: m.Endpoint, Prefix: "team"}.Backend()
	if err != nil {
		t.Fatal(err)
	}
	loc, err := restic.NewLocation(b, e, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := (&restic.Restic{Binary: testenv.Restic(t), Location: loc}).Snapshots(context.Background(), restic.SnapshotFilter{})
	if err != nil || len(snaps) != 3 {
		t.Fatalf("snapshots: %d, %v", len(snaps), err)
	}
	// Between the second and the third snapshot: the second one.
	asOf := snaps[1].Time.Add(snaps[2].Time.Sub(snaps[1].Time) / 2)
	for name, args := range map[string][]string{
		"no rules":         {"--source-hostname=", "--snapshots=", "--restore-paths="},
		"rule paths":       {"--restore-paths=" + mount},
		"snapshots latest": {"--snapshots=latest"},
	} {
		t.Run(name, func(t *testing.T) {
			target := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"), "stow-data")
			if r := run(t, env("RestoreSession", "rs", asOf), append([]string{"restore-pvc", "--hostname=host-0", "--mount-path=" + target}, args...)...); r.code != 0 {
				t.Fatalf("restore: %s", r)
			}
			if got, err := os.ReadFile(filepath.Join(target, "round.txt")); err != nil || string(got) != "round 2" {
				t.Errorf("restored %q (%v), want the snapshot of round 2", got, err)
			}
		})
	}
	before := snaps[0].Time.Add(-time.Hour)
	r := run(t, env("RestoreSession", "rs", before), "restore-pvc", "--hostname=host-0", "--mount-path="+filepath.Join(dir, "none"))
	if r.code == 0 || !strings.Contains(r.stderr, "taken at or before "+before.UTC().Format(time.RFC3339)) {
		t.Errorf("restore as of before the first snapshot: %s", r)
	}
}
