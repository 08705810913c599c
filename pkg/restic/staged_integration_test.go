package restic

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stowhq/stow/internal/testenv"
)

// logRecorder keeps what a Restic logs, for telling which way a restore went.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (l *logRecorder) Logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logRecorder) said(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

// staged and restoredAgain tell whether RestoreStaged staged the restore,
// and whether it then restored again by the snapshot's paths.
func (l *logRecorder) staged() bool        { return l.said("looking up the snapshot's paths at once") }
func (l *logRecorder) restoredAgain() bool { return l.said("restoring it again") }

// requireSameTimes fails unless every entry of got has the modification time
// of the same entry in want (TreeDiff compares types, modes and bytes).
func requireSameTimes(t *testing.T, want, got string) {
	t.Helper()
	err := filepath.WalkDir(want, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		if rel == "." {
			return nil
		}
		a, err := os.Lstat(p)
		if err != nil {
			return err
		}
		b, err := os.Lstat(filepath.Join(got, rel))
		if err != nil {
			return err
		}
		if !a.ModTime().Equal(b.ModTime()) {
			t.Errorf("%s: modified %v, want %v", rel, b.ModTime(), a.ModTime())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestIntegrationRestoreStagedMatchesRestore: into an empty or new target,
// the staged restore (restore and lookup at once, then renames) leaves what
// Restore leaves, modification times included, and nothing of its stage.
func TestIntegrationRestoreStagedMatchesRestore(t *testing.T) {
	ctx := context.Background()
	r := newLocal(t, filepath.Join(t.TempDir(), "repo"))
	if _, err := r.EnsureRepository(ctx); err != nil {
		t.Fatal(err)
	}
	mount := filepath.Join(t.TempDir(), "stow-data")
	writeSample(t, mount)
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, p := range []string{"a.txt", "data/blob.bin", "data/deep/x", "data"} {
		if err := os.Chtimes(filepath.Join(mount, p), old, old); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := r.Backup(ctx, mount, BackupOptions{Host: "host-0", MountPath: mount})
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(t.TempDir(), "want")
	wantDone, err := r.Restore(ctx, RestoreOptions{Snapshot: sum.SnapshotID, MountPath: want})
	if err != nil || len(wantDone) != 1 {
		t.Fatalf("Restore = %+v, %v", wantDone, err)
	}
	testenv.RequireSameTree(t, mount, want)

	for _, tc := range []struct {
		name   string
		o      RestoreOptions
		target func(t *testing.T) string
	}{
		{"latest of a host into a new directory", RestoreOptions{Snapshot: "latest", Host: "host-0"},
			func(t *testing.T) string { return filepath.Join(t.TempDir(), "new", "target") }},
		{"an id into an empty directory", RestoreOptions{Snapshot: sum.SnapshotID[:8]},
			func(t *testing.T) string { return t.TempDir() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := &logRecorder{}
			r := *r
			r.Logf = log.Logf
			o := tc.o
			o.MountPath = tc.target(t)
			done, err := r.RestoreStaged(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			if !log.staged() || log.restoredAgain() {
				t.Fatalf("the staged restore was not used: %q", log.lines)
			}
			if len(done) != 1 || done[0].SnapshotID != sum.SnapshotID || done[0].Path != wantDone[0].Path ||
				done[0].Target != o.MountPath || done[0].Files != wantDone[0].Files {
				t.Errorf("RestoreStaged = %+v, want %+v into %s", done, wantDone, o.MountPath)
			}
			testenv.RequireSameTree(t, want, o.MountPath)
			requireSameTimes(t, want, o.MountPath)
		})
	}
}

// TestIntegrationRestoreStagedFallsBack: where renames cannot place the
// staged restore as Restore would, or the target holds files, the result is
// still Restore's.
func TestIntegrationRestoreStagedFallsBack(t *testing.T) {
	ctx := context.Background()
	r := newLocal(t, filepath.Join(t.TempDir(), "repo"))
	if _, err := r.EnsureRepository(ctx); err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	a, b := filepath.Join(src, "a"), filepath.Join(src, "b")
	testenv.WriteFile(t, filepath.Join(a, "one.txt"), []byte("1"), 0o644)
	testenv.WriteFile(t, filepath.Join(a, "same.txt"), []byte("a"), 0o644)
	testenv.WriteFile(t, filepath.Join(b, "two", "x.txt"), []byte("2"), 0o600)
	// Two paths and no mount tag, as Stash takes them: both restore into the
	// target itself, merged.
	if _, err := r.Run(ctx, "backup", "--host", "stash", a, b); err != nil {
		t.Fatal(err)
	}

	t.Run("paths that share a target", func(t *testing.T) {
		want := filepath.Join(t.TempDir(), "want")
		if _, err := r.Restore(ctx, RestoreOptions{Snapshot: "latest", Host: "stash", MountPath: want}); err != nil {
			t.Fatal(err)
		}
		log := &logRecorder{}
		r := *r
		r.Logf = log.Logf
		got := filepath.Join(t.TempDir(), "got")
		done, err := r.RestoreStaged(ctx, RestoreOptions{Snapshot: "latest", Host: "stash", MountPath: got})
		if err != nil || len(done) != 2 {
			t.Fatalf("RestoreStaged = %+v, %v", done, err)
		}
		if !log.staged() || !log.restoredAgain() {
			t.Errorf("the staged restore was not tried, or was placed by renames: %q", log.lines)
		}
		testenv.RequireSameTree(t, want, got)
	})

	t.Run("a target with files", func(t *testing.T) {
		got := t.TempDir()
		testenv.WriteFile(t, filepath.Join(got, "keep.txt"), []byte("mine"), 0o644)
		testenv.WriteFile(t, filepath.Join(got, "same.txt"), []byte("mine"), 0o644)
		if _, err := r.RestoreStaged(ctx, RestoreOptions{Snapshot: "latest", Host: "stash", MountPath: got}); err != nil {
			t.Fatal(err)
		}
		for name, content := range map[string]string{"keep.txt": "mine", "same.txt": "a", "one.txt": "1", "two/x.txt": "2"} {
			if b, err := os.ReadFile(filepath.Join(got, name)); err != nil || string(b) != content {
				t.Errorf("%s = %q, %v; want %q", name, b, err, content)
			}
		}
	})

	t.Run("no such snapshot", func(t *testing.T) {
		parent := t.TempDir()
		got := filepath.Join(parent, "new", "got")
		_, wantErr := r.Restore(ctx, RestoreOptions{Snapshot: "latest", Host: "nobody", MountPath: got})
		_, err := r.RestoreStaged(ctx, RestoreOptions{Snapshot: "latest", Host: "nobody", MountPath: got})
		if wantErr == nil || err == nil || err.Error() != wantErr.Error() {
			t.Errorf("RestoreStaged error = %v, want Restore's %v", err, wantErr)
		}
		if _, err := os.Lstat(filepath.Join(parent, "new")); err == nil {
			t.Errorf("the failed restore left %s behind", filepath.Join(parent, "new"))
		}
	})
}
