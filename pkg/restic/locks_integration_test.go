package restic

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stowhq/stow/internal/testenv"
)

// externalHolder is a restic backup --stdin run outside Stow's control: it
// holds a shared lock until its stdin is closed (or it is killed).
type externalHolder struct {
	stdin io.WriteCloser
	kill  func() error
	done  chan struct{} // closed when the process has exited
	err   error         // its exit error, once done is closed
	lock  LockInfo
}

// wait returns the holder's exit error once it has exited.
func (h *externalHolder) wait() error {
	<-h.done
	return h.err
}

// holdLock starts an external restic that holds a lock, and waits until the
// lock is in the repository.
func holdLock(t *testing.T, r *Restic) *externalHolder {
	t.Helper()
	ctx := context.Background()
	before, err := r.Locks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := r.command(ctx, []string{"backup", "--stdin", "--stdin-filename", "external.bin", "--host", "external", "--json"})
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &externalHolder{stdin: stdin, kill: func() error { return cmd.Process.Signal(syscall.SIGKILL) }, done: make(chan struct{})}
	go func() { h.err = cmd.Wait(); close(h.done) }()
	t.Cleanup(func() { _ = h.kill(); _ = h.wait() })
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		locks, err := r.Locks(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(locks) > len(before) {
			for _, l := range locks {
				if !containsLock(before, l.ID) {
					h.lock = l
					return h
				}
			}
		}
		time.Sleep(100 * time.Millisecond) // poll interval
	}
	t.Fatal("the external restic took no lock within a minute")
	return nil
}

func containsLock(locks []LockInfo, id string) bool {
	for _, l := range locks {
		if l.ID == id {
			return true
		}
	}
	return false
}

// A lock whose holder Stow cannot prove gone survives: an exclusive
// operation waits for it until the deadline, fails naming the holder, and
// the holder completes; once the holder is done, the operation runs.
func TestIntegrationLiveLockOfAnotherWriterSurvives(t *testing.T) {
	m := testenv.StartMinIO(t)
	ctx := context.Background()
	r := newS3(t, m, "shared", testPassword)
	if _, err := r.EnsureRepository(ctx); err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	testenv.WriteFile(t, src+"/f", []byte("data"), 0o644)
	if _, err := r.Backup(ctx, src, BackupOptions{Host: "host-0", Tags: []string{"config=a"}}); err != nil {
		t.Fatal(err)
	}
	ext := holdLock(t, r)
	host, _ := os.Hostname()
	// This is Stow pod "stow-cafe0000-me"; the external writer is not a Stow
	// pod of this cluster, so it is never removed.
	asked := 0
	p := LockPolicy{Self: "stow-cafe0000-me", HostPrefix: "stow-cafe0000-", HolderRuns: func(context.Context, string) (bool, error) { asked++; return false, nil }}
	forget := func(ctx context.Context) error {
		_, err := r.Forget(ctx, RetentionPolicy{KeepLast: 1}, "config=a")
		return err
	}
	err := r.WaitForLock(ctx, "forget", p, time.Now().Add(3*time.Second), forget)
	var locked *LockedError
	if !errors.As(err, &locked) {
		t.Fatalf("forget under a live foreign lock = %v, want a LockedError", err)
	}
	if !strings.Contains(err.Error(), "@"+host) || !strings.Contains(err.Error(), "since") {
		t.Errorf("error %q does not name the holder host %s and its time", err, host)
	}
	if asked != 0 {
		t.Errorf("asked the operator %d times about a host that is not a Stow pod", asked)
	}
	if locks, err := r.Locks(ctx); err != nil || !containsLock(locks, ext.lock.ID) {
		t.Fatalf("the external lock was removed: %+v, %v", locks, err)
	}
	// The holder finishes while a second attempt waits: the forget then runs.
	done := make(chan error, 1)
	go func() { done <- r.WaitForLock(ctx, "forget", p, time.Now().Add(2*time.Minute), forget) }()
	if _, err := ext.stdin.Write([]byte("external data")); err != nil {
		t.Fatal(err)
	}
	_ = ext.stdin.Close()
	if err := ext.wait(); err != nil {
		t.Fatalf("the external backup failed: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("forget after the holder finished = %v", err)
	}
	snaps, err := r.Snapshots(ctx, SnapshotFilter{})
	if err != nil || len(snaps) != 2 {
		t.Fatalf("snapshots = %d (%v): want the configuration's one and the external one", len(snaps), err)
	}
}

// No attempt starts once the deadline has passed: the attempt that ends
// past it is the last, and the error names the holder from one listing. On
// a loaded node each restic run takes seconds, and the session's deadline
// is only a short margin after the lock deadline. The clock here moves 2 s
// per attempt, so a loop that looked at the deadline only before an attempt
// would start a third.
func TestIntegrationNoAttemptAfterLockDeadline(t *testing.T) {
	m := testenv.StartMinIO(t)
	ctx := context.Background()
	r := newS3(t, m, "late", testPassword)
	if _, err := r.EnsureRepository(ctx); err != nil {
		t.Fatal(err)
	}
	ext := holdLock(t, r)
	start := time.Now()
	clock := start
	p := LockPolicy{Self: "stow-cafe0000-me", HostPrefix: "stow-cafe0000-", Now: func() time.Time { return clock }}
	attempts := 0
	forget := func(ctx context.Context) error {
		attempts++
		_, err := r.Forget(ctx, RetentionPolicy{KeepLast: 1}, "config=a")
		clock = clock.Add(2 * time.Second)
		return err
	}
	err := r.WaitForLock(ctx, "forget", p, start.Add(3*time.Second), forget)
	var locked *LockedError
	if !errors.As(err, &locked) || len(locked.Holders) == 0 || locked.Holders[0].ID != ext.lock.ID {
		t.Fatalf("forget under a live lock = %v, want a LockedError naming lock %s", err, ext.lock.ID)
	}
	if attempts != 2 {
		t.Errorf("%d attempts, want 2: the one without waiting, then one waiting until the deadline", attempts)
	}
}

// A lock left by a killed Stow pod of this cluster is removed by ID once the
// operator says the pod no longer runs; while it runs, the lock stays.
func TestIntegrationLockOfGoneStowPodIsRemoved(t *testing.T) {
	m := testenv.StartMinIO(t)
	ctx := context.Background()
	r := newS3(t, m, "gone", testPassword)
	if _, err := r.EnsureRepository(ctx); err != nil {
		t.Fatal(err)
	}
	// This machine plays a Stow Job pod of this cluster: its hostname is the prefix.
	host, _ := os.Hostname()
	other := holdLock(t, r) // a live holder that is not judged (kept alive)
	dead := holdLock(t, r)
	if err := dead.kill(); err != nil {
		t.Fatal(err)
	}
	_ = dead.wait()
	runs := true
	p := LockPolicy{Self: "stow-pod-self", HostPrefix: host, HolderRuns: func(_ context.Context, h string) (bool, error) {
		if h != host {
			t.Errorf("asked about %q", h)
		}
		return runs, nil
	}}
	locks, err := r.Locks(ctx)
	if err != nil || len(locks) != 2 {
		t.Fatalf("locks = %+v, %v", locks, err)
	}
	if removed, err := r.RemoveStaleLocks(ctx, locks, p); err != nil || len(removed) != 0 {
		t.Fatalf("removed %+v (%v) while the operator says the holder runs", removed, err)
	}
	// Only the dead holder's lock is proven stale: judge it alone.
	runs = false
	removed, err := r.RemoveStaleLocks(ctx, []LockInfo{dead.lock}, p)
	if err != nil || len(removed) != 1 || removed[0].ID != dead.lock.ID {
		t.Fatalf("RemoveStaleLocks = %+v, %v", removed, err)
	}
	left, err := r.Locks(ctx)
	if err != nil || len(left) != 1 || left[0].ID != other.lock.ID {
		t.Fatalf("locks left = %+v, %v; want only the live holder's", left, err)
	}
	if _, err := other.stdin.Write([]byte("live holder's data")); err != nil {
		t.Fatal(err)
	}
	_ = other.stdin.Close()
	if err := other.wait(); err != nil {
		t.Fatalf("the live holder failed: %v", err)
	}
	if err := r.Check(ctx); err != nil {
		t.Fatal(err)
	}
}
