package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/internal/testenv"
	"github.com/stowhq/stow/pkg/identity"
	"github.com/stowhq/stow/pkg/jobenv"
	"github.com/stowhq/stow/pkg/jobresult"
	"github.com/stowhq/stow/pkg/restic"
)

// Several PVCs (and namespaces) share one repository: each configuration's
// retention touches only its own snapshots, and a restore with no rules
// restores its own PVC's latest snapshot, whoever backed up last. The
// identity comes from the operator's environment, not from the flags,
// which Task parameters can change.
func TestIntegrationSharedRepositoryJobSteps(t *testing.T) {
	m := testenv.StartMinIO(t)
	dir := t.TempDir()
	repoFlags := []string{"--provider=s3", "--bucket=shared", "--endpoint=" + m.Endpoint, "--path=team",
		"--scratch-dir=" + filepath.Join(dir, "scratch"), "--output-dir=" + filepath.Join(dir, "output"),
		// What a Task parameter could make these: ignored, the environment wins.
		"--namespace=victim", "--invoker-kind=BackupConfiguration", "--invoker-name=theirs",
		"--target-kind=PersistentVolumeClaim", "--target-name=theirs"}
	termLog := filepath.Join(dir, "termination-log")
	type config struct{ ns, bc, pvc string }
	env := func(c config, invokerKind, invokerName string) map[string]string {
		return stepEnv(m, "shared password", jobenv.Contract{Identity: identity.Identity{Namespace: c.ns, InvokerKind: invokerKind, InvokerName: invokerName,
			TargetKind: "PersistentVolumeClaim", TargetName: c.pvc}})
	}
	step := func(t *testing.T, env map[string]string, args ...string) jobresult.Result {
		t.Helper()
		res := runStow(t, env, append(append(args, repoFlags...), "--termination-log="+termLog)...)
		r := readResult(t, termLog)
		if res.code != 0 {
			t.Fatalf("%s: %s\nresult %+v", args[0], res, r)
		}
		return r
	}
	mounts := map[config]string{}
	backup := func(t *testing.T, c config, round int) {
		t.Helper()
		mount, ok := mounts[c]
		if !ok {
			mount = filepath.Join(dir, c.ns, c.pvc, "stow-data")
			mounts[c] = mount
		}
		testenv.WriteFile(t, filepath.Join(mount, "owner.txt"), []byte(c.ns+"/"+c.pvc+" round "+strconv.Itoa(round)), 0o644)
		e := env(c, "BackupConfiguration", c.bc)
		step(t, e, "backup-pvc", "--hostname=host-0", "--backupsession="+c.bc+"-"+strconv.Itoa(round),
			"--backup-paths="+mount, "--mount-path="+mount)
		r := step(t, e, "update-status", "--hostname=host-0", "--backupsession="+c.bc+"-"+strconv.Itoa(round),
			"--retention-keep-last=1", "--integrity-check=false", "--metrics-enabled=false")
		if r.Retention == nil || r.Retention.Error != "" || r.Retention.SnapshotsKept != 1 {
			t.Fatalf("retention of %+v round %d: %+v", c, round, r.Retention)
		}
	}
	a := config{"team-a", "nightly", "data"}
	b := config{"team-a", "nightly2", "data2"}
	other := config{"team-b", "nightly", "data"} // same names, another namespace
	for round := 1; round <= 3; round++ {
		backup(t, a, round)
		backup(t, b, round)
	}
	backup(t, other, 1)

	e := m.Env()
	e["RESTIC_PASSWORD"] = "shared password"
	loc, err := restic.NewLocation(mustBackend(t, m.Endpoint), e, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := &restic.Restic{Binary: testenv.Restic(t), Location: loc}
	snaps, err := r.Snapshots(context.Background(), restic.SnapshotFilter{})
	if err != nil {
		t.Fatal(err)
	}
	per := map[identity.Identity]int{}
	for _, s := range snaps {
		id, ok := identity.FromTags(s.Tags)
		if !ok {
			t.Fatalf("snapshot %s has no identity: %v", s.ShortID, s.Tags)
		}
		if id.Namespace == "victim" || id.InvokerName == "theirs" {
			t.Fatalf("snapshot %s tagged from the flags, not the operator's environment: %v", s.ShortID, s.Tags)
		}
		per[id]++
	}
	if len(snaps) != 3 || len(per) != 3 {
		t.Fatalf("snapshots = %d of %d identities (%v); want one per configuration", len(snaps), len(per), per)
	}

	// No rules: PVC data of team-a gets its own latest bytes, although
	// data2 and team-b/data were backed up after it.
	target := filepath.Join(dir, "restore", "stow-data")
	restoreEnv := env(a, "RestoreSession", "restore-data")
	step(t, restoreEnv, "restore-pvc", "--hostname=host-0", "--mount-path="+target, "--source-hostname=", "--snapshots=", "--restore-paths=")
	testenv.RequireSameTree(t, mounts[a], target)

	// The operator resolved the snapshot from the target's Snapshot
	// records: the runner restores it without listing the repository.
	var bSnap restic.Snapshot
	for _, s := range snaps {
		if id, _ := identity.FromTags(s.Tags); id.Namespace == b.ns && id.TargetName == b.pvc {
			bSnap = s
		}
	}
	resolvedEnv := env(b, "RestoreSession", "restore-data2")
	raw, err := json.Marshal([]jobenv.ResolvedSnapshot{{ID: bSnap.ID, Time: bSnap.Time, Paths: bSnap.Paths, MountPath: bSnap.MountPath()}})
	if err != nil {
		t.Fatal(err)
	}
	resolvedEnv[jobenv.Resolved] = string(raw)
	resolvedTarget := filepath.Join(dir, "restore2", "stow-data")
	run := runStow(t, resolvedEnv, append(append([]string{"restore-pvc", "--hostname=host-0", "--mount-path=" + resolvedTarget}, repoFlags...), "--termination-log="+termLog)...)
	if run.code != 0 || strings.Contains(run.stderr, "running restic snapshots") {
		t.Fatalf("restore of a resolved snapshot (must not list snapshots): %s", run)
	}
	testenv.RequireSameTree(t, mounts[b], resolvedTarget)

	// A PVC that has no snapshot: a clear failure, nothing restored.
	res := runStow(t, env(config{"team-a", "x", "empty"}, "RestoreSession", "r2"), append(append([]string{"restore-pvc", "--mount-path=" + filepath.Join(dir, "none")}, repoFlags...), "--termination-log="+termLog)...)
	if res.code != 1 || !strings.Contains(readResult(t, termLog).Error, "no snapshot of PersistentVolumeClaim team-a/empty") {
		t.Fatalf("restore of a PVC without snapshots: %s", res)
	}
}

func mustBackend(t *testing.T, endpoint string) v1beta1.Backend {
	t.Helper()
	b, err := restic.BackendFlags{Provider: "s3", Bucket: "shared", Endpoint: endpoint, Prefix: "team"}.Backend()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readResult(t *testing.T, path string) jobresult.Result {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := jobresult.Decode(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// stow maintain: prune frees what retention forgot, check verifies, refresh
// measures, unlock reports the locks it keeps; each in one run.
func TestIntegrationMaintain(t *testing.T) {
	m := testenv.StartMinIO(t)
	dir := t.TempDir()
	repoFlags := []string{"--provider=s3", "--bucket=maint", "--endpoint=" + m.Endpoint, "--path=r",
		"--scratch-dir=" + filepath.Join(dir, "scratch"), "--output-dir=" + filepath.Join(dir, "output"),
		"--namespace=ns", "--invoker-kind=BackupConfiguration", "--invoker-name=bc",
		"--target-kind=PersistentVolumeClaim", "--target-name=data", "--metrics-enabled=false"}
	env := m.Env()
	env["RESTIC_PASSWORD"] = "maintenance"
	termLog := filepath.Join(dir, "termination-log")
	run := func(t *testing.T, args ...string) (stowRun, jobresult.Result) {
		t.Helper()
		flags := repoFlags
		if args[0] != "update-status" && args[0] != "maintain" {
			flags = flags[:len(flags)-1] // --metrics-enabled is not a backup flag
		}
		res := runStow(t, env, append(append(args, flags...), "--termination-log="+termLog)...)
		return res, readResult(t, termLog)
	}
	mount := filepath.Join(dir, "stow-data")
	for i := 0; i < 2; i++ {
		testenv.WriteFile(t, filepath.Join(mount, "f.bin"), testenv.RandomBytes(uint64(i), 2<<20), 0o644)
		if r, res := run(t, "backup-pvc", "--backup-paths="+mount, "--mount-path="+mount); r.code != 0 {
			t.Fatalf("backup: %s %+v", r, res)
		}
		if r, res := run(t, "update-status", "--retention-keep-last=1", "--retention-prune=true"); r.code != 0 || res.Retention == nil || res.Integrity != nil || res.TotalSize != "" {
			t.Fatalf("update-status (forget only, no check, no size): %s %+v", r, res)
		}
	}
	r, before := run(t, "maintain", "--refresh")
	if r.code != 0 || before.RepositorySnapshots == nil || *before.RepositorySnapshots != 1 {
		t.Fatalf("refresh: %s %+v", r, before)
	}
	// What prune frees is storage (pack files); stats measure referenced data.
	loc, err := restic.NewLocation(v1beta1.Backend{S3: &v1beta1.S3Spec{Endpoint: m.Endpoint, Bucket: "maint", Prefix: "r"}}, env, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rr := &restic.Restic{Binary: testenv.Restic(t), Location: loc}
	packs := func() int {
		out, err := rr.Run(context.Background(), "list", "packs", "--no-lock")
		if err != nil {
			t.Fatal(err)
		}
		return len(strings.Fields(string(out)))
	}
	packsBefore := packs()
	r, res := run(t, "maintain", "--unlock", "--prune", "--check", "--read-data-subset=50%", "--refresh")
	if r.code != 0 || res.Error != "" || res.Pruned == nil || !*res.Pruned || res.Integrity == nil || !*res.Integrity || res.Maintenance == nil {
		t.Fatalf("maintain: %s %+v", r, res)
	}
	if after := packs(); after >= packsBefore {
		t.Errorf("prune freed nothing: %d pack files -> %d", packsBefore, after)
	}
	if res.TotalSize != before.TotalSize || *res.RepositorySnapshots != 1 {
		t.Errorf("refresh after prune: %s, %d snapshots; want %s, 1", res.TotalSize, *res.RepositorySnapshots, before.TotalSize)
	}
	if r, res := run(t, "maintain"); r.code == 0 || !strings.Contains(res.Error, "nothing to do") {
		t.Errorf("maintain without a task: %s %+v", r, res)
	}
}
