package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/internal/testenv"
	"github.com/stowhq/stow/pkg/restic"
)

// stow wipe deletes the repository under its own prefix and nothing else:
// the repositories at the sibling prefixes "ab" and "a2" (which a plain
// "starts with a" listing would match) and a repository below another
// prefix keep every file and still verify. A second run finds nothing.
// A live lock of someone else, or a location without a prefix, is refused.
func TestIntegrationWipe(t *testing.T) {
	m := testenv.StartMinIO(t)
	dir := t.TempDir()
	ctx := context.Background()
	env := m.Env()
	env["RESTIC_PASSWORD"] = "wipe me"
	repoAt := func(prefix string) *restic.Restic {
		loc, err := restic.NewLocation(v1beta1.Backend{S3: &v1beta1.S3Spec{Endpoint: m.Endpoint, Bucket: "wipe", Prefix: prefix}}, env, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return &restic.Restic{Binary: testenv.Restic(t), Location: loc}
	}
	data := filepath.Join(dir, "data")
	testenv.WriteFile(t, filepath.Join(data, "f.bin"), testenv.RandomBytes(7, 1<<20), 0o644)
	for _, p := range []string{"a", "ab", "a2", "other/a"} {
		r := repoAt(p)
		if _, err := r.EnsureRepository(ctx); err != nil {
			t.Fatalf("init %s: %v", p, err)
		}
		if _, err := r.Backup(ctx, data, restic.BackupOptions{Host: "host-0"}); err != nil {
			t.Fatalf("backup into %s: %v", p, err)
		}
	}
	objects := func(prefix string) int {
		// MinIO keeps an object as a directory holding xl.meta.
		n := 0
		err := filepath.WalkDir(filepath.Join(m.Dir, "wipe", prefix), func(p string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err == nil && d.Name() == "xl.meta" {
				n++
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := map[string]int{}
	for _, p := range []string{"a", "ab", "a2", "other/a"} {
		if before[p] = objects(p); before[p] < 5 {
			t.Fatalf("repository %s has %d objects before the wipe; want a whole repository", p, before[p])
		}
	}

	termLog := filepath.Join(dir, "termination-log")
	wipeAt := func(prefix string) (stowRun, string) {
		res := runStow(t, env, "wipe", "--provider=s3", "--bucket=wipe", "--endpoint="+m.Endpoint, "--path="+prefix,
			"--scratch-dir="+filepath.Join(dir, "scratch"), "--termination-log="+termLog)
		r := readResult(t, termLog)
		if r.Step != "wipe" {
			t.Fatalf("result step %q, want wipe", r.Step)
		}
		if r.Wipe != nil {
			return res, fmt.Sprintf("%s wipe=%+v", r.Error, *r.Wipe)
		}
		return res, r.Error
	}

	// Someone else holds a lock: refused, nothing deleted.
	testenv.BuildStow(t) // before the holder starts: a cold build takes minutes
	holder := repoAt("a")
	lockCtx, stopLock := context.WithCancel(ctx)
	lockDone := make(chan error, 1)
	locked := filepath.Join(dir, "locked")
	go func() {
		// restic holds its lock while the command it reads runs (until
		// the file it made is removed).
		_, err := holder.Run(lockCtx, "backup", "--host=someone", "--stdin-from-command", "--", "sh", "-c", "touch "+locked+"; while [ -e "+locked+" ]; do sleep 0.1; done")
		lockDone <- err
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		locks, err := holder.Locks(ctx)
		if err == nil && len(locks) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the lock of a running backup never appeared (err %v)", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	select {
	case err := <-lockDone:
		t.Fatalf("the lock holder ended before the wipe: %v", err)
	default:
	}
	if res, msg := wipeAt("a"); res.code == 0 || !strings.Contains(msg, "in use") {
		t.Fatalf("wipe under someone's live lock: %s\nresult: %s", res, msg)
	}
	if n := objects("a"); n < before["a"] {
		t.Fatalf("a refused wipe deleted objects: %d -> %d", before["a"], n)
	}
	stopLock()
	<-lockDone
	// The command restic ran outlives it: removing the file ends it.
	if err := os.Remove(locked); err != nil {
		t.Fatal(err)
	}
	// The interrupted backup left its lock behind: its process is gone, so
	// the wipe removes it as stale (restic's own rule) and goes on.

	res, msg := wipeAt("a")
	if res.code != 0 || !strings.Contains(msg, "wipe=") || strings.Contains(msg, "Absent:true") || strings.Contains(msg, "Files:0 ") {
		t.Fatalf("wipe a: %s\nresult: %s", res, msg)
	}
	if n := objects("a"); n != 0 {
		t.Errorf("%d objects are left under prefix a", n)
	}
	for _, p := range []string{"ab", "a2", "other/a"} {
		if n := objects(p); n != before[p] {
			t.Errorf("repository %s: %d objects before the wipe of a, %d after", p, before[p], n)
		}
		if err := repoAt(p).Check(ctx); err != nil {
			t.Errorf("repository %s after the wipe of a: %v", p, err)
		}
	}
	if _, err := repoAt("a").Snapshots(ctx, restic.SnapshotFilter{}); !errors.Is(err, restic.ErrNoRepository) {
		t.Errorf("repository a after the wipe: %v, want no repository", err)
	}

	// Again: nothing there, a success that says so.
	if res, msg := wipeAt("a"); res.code != 0 || !strings.Contains(msg, "Absent:true") {
		t.Errorf("second wipe of a: %s\nresult: %s", res, msg)
	}
	// No prefix: the whole bucket is refused.
	if res, msg := wipeAt(""); res.code == 0 || !strings.Contains(msg, "whole bucket") {
		t.Errorf("wipe without a prefix: %s\nresult: %s", res, msg)
	}
	if _, err := os.Stat(filepath.Join(m.Dir, "wipe", "ab")); err != nil {
		t.Errorf("after the refused bucket wipe: %v", err)
	}
}
