package restic

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/internal/testenv"
)

const testPassword = "correct horse battery staple"

// newS3 returns a Restic for a fresh bucket on a fresh MinIO.
func newS3(t *testing.T, m *testenv.MinIO, bucket, password string) *Restic {
	t.Helper()
	secrets := m.Env()
	secrets[KeyResticPassword] = password
	loc, err := NewLocation(v1beta1.Backend{S3: &v1beta1.S3Spec{Endpoint: m.Endpoint, Bucket: bucket, Prefix: "stow/test"}}, secrets, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &Restic{Binary: testenv.Restic(t), Location: loc, CacheDir: filepath.Join(t.TempDir(), "cache"), Logf: t.Logf}
}

func newLocal(t *testing.T, repo string) *Restic {
	t.Helper()
	loc, err := NewLocation(v1beta1.Backend{Local: &v1beta1.LocalSpec{MountPath: repo}}, map[string]string{KeyResticPassword: testPassword}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &Restic{Binary: testenv.Restic(t), Location: loc, Logf: t.Logf}
}

// writeSample fills dir with files of several modes, a nested dir and a symlink.
func writeSample(t *testing.T, dir string) {
	t.Helper()
	testenv.WriteFile(t, filepath.Join(dir, "a.txt"), []byte("hello\n"), 0o644)
	testenv.WriteFile(t, filepath.Join(dir, "secret.key"), []byte("k"), 0o600)
	testenv.WriteFile(t, filepath.Join(dir, "bin", "run.sh"), []byte("#!/bin/sh\necho hi\n"), 0o755)
	testenv.WriteFile(t, filepath.Join(dir, "data", "blob.bin"), testenv.RandomBytes(1, 3<<20), 0o640)
	testenv.WriteFile(t, filepath.Join(dir, "data", "deep", "x", "y.txt"), []byte("deep"), 0o444)
	if err := os.Chmod(filepath.Join(dir, "data", "deep"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a.txt", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
}

// copyTree copies src to dst with cp -a semantics, for keeping a reference state.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			return os.Chmod(target, fi.Mode().Perm())
		case fi.Mode()&os.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, target)
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if err := os.WriteFile(target, b, fi.Mode().Perm()); err != nil {
				return err
			}
			return os.Chmod(target, fi.Mode().Perm())
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestIntegrationS3BackupIncrementalRestore(t *testing.T) {
	m := testenv.StartMinIO(t)
	r := newS3(t, m, "backups", testPassword)
	ctx := context.Background()

	created, err := r.EnsureRepository(ctx)
	if err != nil || !created {
		t.Fatalf("EnsureRepository = %v, %v; want a new repository", created, err)
	}
	if created, err = r.EnsureRepository(ctx); err != nil || created {
		t.Fatalf("second EnsureRepository = %v, %v; want existing", created, err)
	}

	// The volume is mounted at <tmp>/mnt/stow-data during backup.
	mount := filepath.Join(t.TempDir(), "stow-data")
	writeSample(t, mount)
	v1 := filepath.Join(t.TempDir(), "v1")
	copyTree(t, mount, v1)

	s1, err := r.Backup(ctx, mount, BackupOptions{Host: "host-0", MountPath: mount})
	if err != nil {
		t.Fatal(err)
	}
	if s1.FilesNew != 5 || s1.FilesChanged != 0 {
		t.Errorf("first backup: new %d changed %d, want 5 0", s1.FilesNew, s1.FilesChanged)
	}

	// Modify: change one file, add one, remove one, change a mode.
	testenv.WriteFile(t, filepath.Join(mount, "a.txt"), []byte("hello again\n"), 0o644)
	testenv.WriteFile(t, filepath.Join(mount, "new.txt"), []byte("new"), 0o600)
	if err := os.Remove(filepath.Join(mount, "secret.key")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(mount, "bin", "run.sh"), 0o700); err != nil {
		t.Fatal(err)
	}
	s2, err := r.Backup(ctx, mount, BackupOptions{Host: "host-0", MountPath: mount})
	if err != nil {
		t.Fatal(err)
	}
	if s2.FilesNew != 1 || s2.FilesChanged < 1 || s2.FilesUnmodified < 2 {
		t.Errorf("incremental: new %d changed %d unmodified %d", s2.FilesNew, s2.FilesChanged, s2.FilesUnmodified)
	}
	if s2.DataAdded >= s1.DataAdded {
		t.Errorf("incremental added %d bytes, first %d: not incremental", s2.DataAdded, s1.DataAdded)
	}
	st := s2.SnapshotStats(mount)
	if st.Name != s2.SnapshotID || !strings.HasSuffix(st.TotalSize, "MiB") {
		t.Errorf("stats = %+v", st)
	}

	// Latest of host-0, restored into a different mount path.
	restoreMount := filepath.Join(t.TempDir(), "restore-here")
	done, err := r.Restore(ctx, RestoreOptions{Snapshot: "latest", Host: "host-0", MountPath: restoreMount})
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != 1 || done[0].Target != restoreMount || done[0].SnapshotID != s2.SnapshotID {
		t.Fatalf("restored %+v", done)
	}
	testenv.RequireSameTree(t, mount, restoreMount)

	// The first snapshot by id gives back the first state.
	old := filepath.Join(t.TempDir(), "old")
	if _, err := r.Restore(ctx, RestoreOptions{Snapshot: s1.SnapshotID, MountPath: old}); err != nil {
		t.Fatal(err)
	}
	testenv.RequireSameTree(t, v1, old)

	// Include, written against the original absolute path, selects one file.
	inc := filepath.Join(t.TempDir(), "inc")
	if _, err := r.Restore(ctx, RestoreOptions{Snapshot: "latest", Host: "host-0", MountPath: inc,
		Includes: []string{filepath.Join(mount, "data", "deep")}}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(inc, "data", "deep", "x", "y.txt")); err != nil || string(b) != "deep" {
		t.Errorf("included file: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(inc, "a.txt")); !os.IsNotExist(err) {
		t.Errorf("a.txt restored although not included (err %v)", err)
	}

	// A sub path of the mount lands at the same place under another mount.
	sub := filepath.Join(mount, "data")
	if _, err := r.Backup(ctx, sub, BackupOptions{Host: "host-1", MountPath: mount}); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "other")
	done, err = r.Restore(ctx, RestoreOptions{Snapshot: "latest", Host: "host-1", Path: sub, MountPath: other})
	if err != nil {
		t.Fatal(err)
	}
	if done[0].Target != filepath.Join(other, "data") {
		t.Errorf("sub path restored into %s, want %s", done[0].Target, filepath.Join(other, "data"))
	}
	testenv.RequireSameTree(t, sub, filepath.Join(other, "data"))

	// Refusals and absent snapshots.
	if _, err := r.Restore(ctx, RestoreOptions{Snapshot: "latest", Host: "host-0", MountPath: other, Includes: []string{"../../etc"}}); err == nil || !strings.Contains(err.Error(), "..") {
		t.Errorf("include with .. = %v, want a refusal", err)
	}
	if _, err := r.Restore(ctx, RestoreOptions{Snapshot: "latest", Host: "nobody", MountPath: other}); err == nil || !strings.Contains(err.Error(), "no snapshot found for host nobody") {
		t.Errorf("restore of unknown host = %v", err)
	}
}

func TestIntegrationRetention(t *testing.T) {
	m := testenv.StartMinIO(t)
	r := newS3(t, m, "retention", testPassword)
	ctx := context.Background()
	if _, err := r.EnsureRepository(ctx); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for i := 0; i < 4; i++ {
		testenv.WriteFile(t, filepath.Join(dir, "f"), testenv.RandomBytes(uint64(i), 64<<10), 0o644)
		if _, err := r.Backup(ctx, dir, BackupOptions{Host: "host-0", Tags: []string{"config=a"}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Forget(ctx, RetentionPolicy{KeepLast: 2}, ""); err == nil {
		t.Fatal("forget without a tag filter was accepted")
	}
	dry, err := r.Forget(ctx, RetentionPolicy{KeepLast: 2, DryRun: true}, "config=a")
	if err != nil || dry.Kept != 2 || dry.Removed != 2 {
		t.Fatalf("dry run = %+v, %v", dry, err)
	}
	if snaps, _ := r.Snapshots(ctx, SnapshotFilter{}); len(snaps) != 4 {
		t.Fatalf("dry run removed snapshots: %d left", len(snaps))
	}
	before, err := r.Stats(ctx)
	if err != nil || before.SnapshotsCount != 4 {
		t.Fatalf("stats = %+v, %v", before, err)
	}
	res, err := r.Forget(ctx, RetentionPolicy{KeepLast: 2, Prune: true}, "config=a")
	if err != nil || res.Kept != 2 || res.Removed != 2 {
		t.Fatalf("forget = %+v, %v", res, err)
	}
	snaps, err := r.Snapshots(ctx, SnapshotFilter{})
	if err != nil || len(snaps) != 2 {
		t.Fatalf("snapshots after forget: %d, %v", len(snaps), err)
	}
	after, err := r.Stats(ctx)
	if err != nil || after.TotalSize >= before.TotalSize || after.SnapshotsCount != 2 {
		t.Errorf("stats %+v -> %+v (%v): prune freed nothing or count wrong", before, after, err)
	}
	if err := r.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Forget(ctx, RetentionPolicy{}, "config=a"); !errors.Is(err, ErrEmptyPolicy) {
		t.Errorf("empty policy = %v", err)
	}
}

func TestIntegrationWrongPassword(t *testing.T) {
	m := testenv.StartMinIO(t)
	ctx := context.Background()
	good := newS3(t, m, "password", testPassword)
	if _, err := good.EnsureRepository(ctx); err != nil {
		t.Fatal(err)
	}
	bad := newS3(t, m, "password", "not the password")
	created, err := bad.EnsureRepository(ctx)
	if created || !errors.Is(err, ErrWrongPassword) || !strings.Contains(err.Error(), "wrong password") {
		t.Fatalf("wrong password: created=%v err=%v", created, err)
	}
	if strings.Contains(err.Error(), "not the password") {
		t.Errorf("error leaks the password: %v", err)
	}
	if _, err := bad.Backup(ctx, t.TempDir(), BackupOptions{}); !errors.Is(err, ErrWrongPassword) {
		t.Errorf("backup with wrong password = %v", err)
	}
	// Still exactly one key: nothing was initialized over it.
	out, err := good.Run(ctx, "list", "keys", "--no-lock")
	if err != nil || len(strings.Fields(string(out))) != 1 {
		t.Fatalf("keys after wrong password: %q, %v", out, err)
	}
}

func TestIntegrationUnreadableFileFails(t *testing.T) {
	m := testenv.StartMinIO(t)
	ctx := context.Background()
	r := newS3(t, m, "unreadable", testPassword)
	if _, err := r.EnsureRepository(ctx); err != nil {
		t.Fatal(err)
	}
	// Tests run as root, who reads anything: run restic as nobody.
	const nobody = 65534
	base, err := os.MkdirTemp("", "stow-unreadable-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	src := filepath.Join(base, "src")
	testenv.WriteFile(t, filepath.Join(src, "ok.txt"), []byte("ok"), 0o644)
	locked := filepath.Join(src, "locked.txt")
	testenv.WriteFile(t, locked, []byte("no"), 0o000)
	tmp := filepath.Join(base, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{base, src, filepath.Join(src, "ok.txt"), locked, tmp} {
		if err := os.Chown(p, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	r.Binary = testenv.SharedCopy(t, r.Binary)
	r.Credential = &syscall.Credential{Uid: nobody, Gid: nobody}
	r.CacheDir = ""
	r.TempDir = tmp
	// Files restic needs (none for plain S3) must be readable by nobody too.
	_, err = r.Backup(ctx, src, BackupOptions{Host: "host-0"})
	var unreadable *UnreadableFilesError
	if !errors.As(err, &unreadable) {
		t.Fatalf("backup with an unreadable file = %v, want an UnreadableFilesError", err)
	}
	if len(unreadable.Files) != 1 || unreadable.Files[0].Item != locked {
		t.Errorf("unreadable files = %+v, want %s", unreadable.Files, locked)
	}
	if !strings.Contains(err.Error(), locked) || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("error %q does not name %s and its cause", err, locked)
	}
}

func TestIntegrationStaleLockAfterKill(t *testing.T) {
	m := testenv.StartMinIO(t)
	ctx := context.Background()
	r := newS3(t, m, "locks", testPassword)
	if _, err := r.EnsureRepository(ctx); err != nil {
		t.Fatal(err)
	}
	// Enough incompressible data that the backup is still running when killed.
	src := t.TempDir()
	for i := 0; i < 40; i++ {
		testenv.WriteFile(t, filepath.Join(src, "d", strings.Repeat("f", 1+i%5)+string(rune('a'+i%26))+".bin"), testenv.RandomBytes(uint64(100+i), 4<<20), 0o644)
	}
	cmd, err := r.command(ctx, []string{"backup", src, "--json", "--host", "host-0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// Kill restic as soon as its lock is in the repository.
	deadline := time.Now().Add(60 * time.Second)
	for {
		locks, err := r.Locks(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(locks) > 0 {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("backup finished (%v) before its lock was seen: make the data set larger", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("no lock appeared within 60s")
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := <-exited; err == nil {
		t.Fatal("killed restic exited 0")
	}
	locks, err := r.Locks(ctx)
	if err != nil || len(locks) != 1 {
		t.Fatalf("locks after kill: %+v, %v", locks, err)
	}
	host, _ := os.Hostname()
	if locks[0].Hostname != host || locks[0].PID == 0 || locks[0].Time.IsZero() {
		t.Errorf("lock holder = %+v", locks[0])
	}

	// A lock of this host whose process is gone is stale by restic's own rule.
	p := LockPolicy{Self: host}
	if v := p.Judge(ctx, locks[0]); v != LockStaleForRestic {
		t.Fatalf("verdict on a killed restic's lock of this host = %v", v)
	}
	removed, err := r.RemoveStaleLocks(ctx, locks, p)
	if err != nil || len(removed) != 1 || removed[0].ID != locks[0].ID {
		t.Fatalf("RemoveStaleLocks = %+v, %v", removed, err)
	}
	left, err := r.Locks(ctx)
	if err != nil || len(left) != 0 {
		t.Fatalf("locks left: %+v, %v", left, err)
	}
	if removed, err := r.RemoveStaleLocks(ctx, left, p); err != nil || len(removed) != 0 {
		t.Errorf("second RemoveStaleLocks = %+v, %v", removed, err)
	}

	if _, err := r.Backup(ctx, src, BackupOptions{Host: "host-0"}); err != nil {
		t.Fatal(err)
	}
	if err := r.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestIntegrationLocalBackend(t *testing.T) {
	ctx := context.Background()
	repo := filepath.Join(t.TempDir(), "volume", "repo")
	r := newLocal(t, repo)
	created, err := r.EnsureRepository(ctx)
	if err != nil || !created {
		t.Fatalf("EnsureRepository = %v, %v", created, err)
	}
	if _, err := os.Stat(filepath.Join(repo, "config")); err != nil {
		t.Fatalf("no repository config: %v", err)
	}
	mount := filepath.Join(t.TempDir(), "stow-data")
	writeSample(t, mount)
	sum, err := r.Backup(ctx, mount, BackupOptions{Host: "host-0", MountPath: mount, Excludes: []string{"*.key"}})
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := r.Snapshots(ctx, SnapshotFilter{Host: "host-0", Latest: true})
	if err != nil || len(snaps) != 1 || snaps[0].ID != sum.SnapshotID || snaps[0].MountPath() != mount {
		t.Fatalf("snapshots = %+v, %v", snaps, err)
	}
	out := filepath.Join(t.TempDir(), "out")
	if _, err := r.Restore(ctx, RestoreOptions{Snapshot: sum.SnapshotID, MountPath: out}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(mount, "secret.key")); err != nil { // excluded
		t.Fatal(err)
	}
	testenv.RequireSameTree(t, mount, out)
	if res, err := r.Forget(ctx, RetentionPolicy{KeepLast: 1, Prune: true}, MountTagKey+"="+mount); err != nil || res.Kept != 1 {
		t.Fatalf("forget = %+v, %v", res, err)
	}
	if err := r.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := r.Stats(ctx); err != nil || st.TotalSize == 0 || st.SnapshotsCount != 1 {
		t.Errorf("stats = %+v, %v", st, err)
	}
}
