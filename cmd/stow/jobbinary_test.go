package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stowhq/stow/pkg/jobenv"
)

// A Job's environment is partly its user's (envFrom sources): a step the
// operator started (its contract is set) runs the restic next to the
// runner, never $STOW_RESTIC, which made it execute a file of the user's
// volume with the repository's credentials. Outside Jobs (the CLI, the
// benchmarks, tests) STOW_RESTIC still names restic.
func TestJobStepRunsTheResticNextToTheRunner(t *testing.T) {
	dir := t.TempDir()
	planted := filepath.Join(dir, "stow-data", "evil")
	if err := os.MkdirAll(filepath.Dir(planted), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(planted, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("STOW_RESTIC", planted)
	t.Setenv("RESTIC_PASSWORD", "pw")
	newJob := func() *jobFlags {
		j := &jobFlags{scratchDir: filepath.Join(dir, "scratch")}
		j.backend.Provider, j.backend.Bucket = "local", filepath.Join(dir, "repo")
		return j
	}

	r, _, err := newJob().newRestic()
	if err != nil || r.Binary != planted {
		t.Fatalf("outside a Job: restic %v (%v), want $STOW_RESTIC %s", r, err, planted)
	}

	t.Setenv(jobenv.Namespace, "apps")
	j := newJob()
	if err := j.load(); err != nil || !j.hasContract {
		t.Fatalf("contract: %v %v", j.hasContract, err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	sibling := filepath.Join(filepath.Dir(exe), "restic")
	if _, err := os.Stat(sibling); err == nil {
		t.Skipf("%s exists already", sibling)
	}
	if _, _, err := j.newRestic(); err == nil || !strings.Contains(err.Error(), "never $STOW_RESTIC") {
		t.Fatalf("in a Job without restic next to the runner: %v; want a refusal, not %s", err, planted)
	}
	if err := os.WriteFile(sibling, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Skipf("cannot put restic next to the test binary: %v", err)
	}
	t.Cleanup(func() { _ = os.Remove(sibling) })
	if r, _, err := j.newRestic(); err != nil || r.Binary != sibling {
		t.Fatalf("in a Job: restic %v (%v), want %s", r, err, sibling)
	}
}
