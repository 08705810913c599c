package restic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Lock rules (docs/reliability.md, "Repository locks"): Stow removes a restic
// lock only when it can prove it stale, because a shared repository is the
// normal case (other PVCs, namespaces, clusters, or a person running restic),
// and removing a live lock, above all a prune's, can corrupt the repository.
// A lock is stale when
//   - restic itself considers it stale (older than ResticStaleAge, or taken on
//     this very host by a process that no longer exists): restic's `unlock`
//     removes those, by restic's own rule;
//   - its holder is a Stow Job pod of this cluster (its hostname starts with
//     the cluster's lock host prefix) that no longer runs, as the operator,
//     which knows which pods live, confirms: removed by ID (stow-locks).
// Any other lock is waited for, up to a deadline, after which the operation
// fails naming the holder (*LockedError).

// ResticStaleAge is restic's StaleLockTimeout: a live restic refreshes its
// lock every 5 minutes, so a lock older than this has no live holder.
const ResticStaleAge = 30 * time.Minute

// LockInfo is one restic lock with its holder.
type LockInfo struct {
	ID        string    `json:"id"`
	Time      time.Time `json:"time"`
	Exclusive bool      `json:"exclusive"`
	Hostname  string    `json:"hostname"`
	Username  string    `json:"username"`
	PID       int       `json:"pid"`
	// Error is set when the lock file could not be read.
	Error string `json:"error,omitempty"`
}

// Holder describes who took the lock, for messages.
func (l LockInfo) Holder() string {
	if l.Error != "" {
		return fmt.Sprintf("unreadable lock %s (%s)", short(l.ID), l.Error)
	}
	kind := "shared"
	if l.Exclusive {
		kind = "exclusive"
	}
	return fmt.Sprintf("%s lock of %s@%s pid %d", kind, l.Username, l.Hostname, l.PID)
}

// ErrNoLockRemoval: the restic binary lacks Stow's stow-locks command, so
// locks cannot be removed by ID (hack/restic/README.md).
var ErrNoLockRemoval = errors.New("this restic cannot remove locks by ID (it lacks Stow's stow-locks command)")

// Locks lists the repository's locks, oldest first. With Stow's restic it is
// one restic run; with a stock restic, one run per lock.
func (r *Restic) Locks(ctx context.Context) ([]LockInfo, error) {
	res, err := r.runOpen(ctx, []string{"stow-locks"})
	if err != nil {
		return nil, err
	}
	if res.code != 0 {
		if unknownCommand(res.stderr) {
			return r.locksStock(ctx)
		}
		return nil, res.err("stow-locks")
	}
	locks, _, err := parseStowLocks(res.stdout)
	return locks, err
}

// RemoveLocks removes exactly the locks with the given IDs that still exist
// and returns the IDs it removed.
func (r *Restic) RemoveLocks(ctx context.Context, ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	args := []string{"stow-locks"}
	for _, id := range ids {
		args = append(args, "--remove", id)
	}
	res, err := r.run(ctx, args)
	if err != nil {
		return nil, err
	}
	if res.code != 0 {
		if unknownCommand(res.stderr) {
			return nil, ErrNoLockRemoval
		}
		return nil, res.err("stow-locks")
	}
	_, removed, err := parseStowLocks(res.stdout)
	return removed, err
}

// UnlockStale runs restic unlock, which removes only the locks restic itself
// considers stale.
func (r *Restic) UnlockStale(ctx context.Context) error {
	_, err := r.Run(ctx, "unlock")
	return err
}

func unknownCommand(stderr []byte) bool {
	return strings.Contains(string(stderr), "unknown command")
}

func parseStowLocks(stdout []byte) (locks []LockInfo, removed []string, err error) {
	line := firstJSON(stdout, '{')
	if line == nil {
		return nil, nil, errors.New("restic stow-locks printed no JSON result")
	}
	var out struct {
		Locks   []LockInfo `json:"locks"`
		Removed []string   `json:"removed"`
	}
	if err := json.Unmarshal(line, &out); err != nil {
		return nil, nil, fmt.Errorf("parsing stow-locks output: %v", err)
	}
	return out.Locks, out.Removed, nil
}

// locksStock lists locks with a stock restic: list, then cat each.
func (r *Restic) locksStock(ctx context.Context) ([]LockInfo, error) {
	out, err := r.Run(ctx, "list", "locks", "--no-lock")
	if err != nil {
		return nil, err
	}
	var locks []LockInfo
	for _, id := range strings.Fields(string(out)) {
		raw, err := r.Run(ctx, "cat", "lock", id, "--no-lock")
		if err != nil {
			// Its holder may have removed it since it was listed.
			r.logf("reading lock %s: %v", short(id), err)
			continue
		}
		l := LockInfo{}
		if err := json.Unmarshal(raw, &l); err != nil {
			l = LockInfo{Error: "not JSON"}
		}
		l.ID = id
		locks = append(locks, l)
	}
	sort.Slice(locks, func(i, j int) bool { return locks[i].Time.Before(locks[j].Time) })
	return locks, nil
}

// LockPolicy decides which locks are provably stale.
type LockPolicy struct {
	// Self is this pod's hostname: restic's own rule (a dead process of this
	// host) decides about its locks.
	Self string
	// HostPrefix starts the hostname of every Stow Job pod of this cluster;
	// empty when the Job was not started by an operator that sets it.
	HostPrefix string
	// HolderRuns asks the operator whether the Stow pod with this hostname
	// still runs. An error counts as "runs": nothing unproven is removed.
	HolderRuns func(ctx context.Context, host string) (bool, error)
	// Now is the clock; nil uses time.Now.
	Now func() time.Time
}

// LockVerdict is what a LockPolicy concluded about one lock.
type LockVerdict int

const (
	// LockLive: the holder may still run; wait for it.
	LockLive LockVerdict = iota
	// LockStaleForRestic: restic's own rule decides (old, or of this host).
	LockStaleForRestic
	// LockHolderGone: a Stow Job pod of this cluster that no longer runs.
	LockHolderGone
)

// Judge classifies one lock.
func (p LockPolicy) Judge(ctx context.Context, l LockInfo) LockVerdict {
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	switch {
	case l.Error != "":
		return LockLive // unreadable: its holder cannot be proven gone
	case now().Sub(l.Time) > ResticStaleAge:
		return LockStaleForRestic
	case p.Self != "" && l.Hostname == p.Self:
		return LockStaleForRestic
	case p.HostPrefix != "" && strings.HasPrefix(l.Hostname, p.HostPrefix) && p.HolderRuns != nil:
		runs, err := p.HolderRuns(ctx, l.Hostname)
		if err == nil && !runs {
			return LockHolderGone
		}
	}
	return LockLive
}

// RemoveStaleLocks removes the locks of locks that p proves stale and returns
// those it removed; every other lock stays.
func (r *Restic) RemoveStaleLocks(ctx context.Context, locks []LockInfo, p LockPolicy) ([]LockInfo, error) {
	var forRestic bool
	var gone []string
	byID := map[string]LockInfo{}
	for _, l := range locks {
		byID[l.ID] = l
		switch p.Judge(ctx, l) {
		case LockStaleForRestic:
			forRestic = true
		case LockHolderGone:
			gone = append(gone, l.ID)
			r.logf("lock %s is stale: %s, and its pod no longer runs", short(l.ID), l.Holder())
		}
	}
	var removed []LockInfo
	defer func() { r.LocksRemoved += len(removed) }()
	if len(gone) > 0 {
		ids, err := r.RemoveLocks(ctx, gone)
		for _, id := range ids {
			removed = append(removed, byID[id])
		}
		if err != nil {
			return removed, fmt.Errorf("removing stale locks: %w", err)
		}
	}
	if forRestic {
		if err := r.UnlockStale(ctx); err != nil {
			return removed, fmt.Errorf("removing stale locks: %w", err)
		}
		left, err := r.Locks(ctx)
		if err != nil {
			return removed, fmt.Errorf("listing locks: %w", err)
		}
		still := map[string]bool{}
		for _, l := range left {
			still[l.ID] = true
		}
		for _, l := range locks {
			if !still[l.ID] && !contains(gone, l.ID) {
				removed = append(removed, l)
			}
		}
	}
	return removed, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// LockedError is an operation that could not get its lock before the
// deadline: someone else holds the repository.
type LockedError struct {
	Op      string
	Holders []LockInfo
}

func (e *LockedError) Error() string {
	if len(e.Holders) == 0 {
		return fmt.Sprintf("restic %s: repository locked (the holder was gone when looked at again)", e.Op)
	}
	l := e.Holders[0]
	msg := fmt.Sprintf("restic %s: repository locked by %s since %s", e.Op, l.Holder(), l.Time.UTC().Format(time.RFC3339))
	if n := len(e.Holders) - 1; n > 0 {
		msg += fmt.Sprintf(" (and %d more lock(s))", n)
	}
	return msg
}

// Unwrap makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Unwrap() error { return ErrLocked }

// lockRetryStep is the longest single wait restic does for a lock (its
// --retry-lock) before Stow looks at the locks again.
const lockRetryStep = time.Minute

// WaitForLock runs op, which runs one restic command that takes a lock,
// until it fails for another reason than a lock held by someone else.
// Between attempts it removes the locks p proves stale. restic itself waits
// up to a minute per attempt (--retry-lock). Once deadline has passed (zero:
// after one attempt), it starts no further attempt and returns a
// *LockedError naming the holders: every restic run costs a key derivation
// and backend round trips, seconds on a loaded node, and the session's own
// deadline follows this one by only a short margin
// (pkg/resolve/contract.go).
func (r *Restic) WaitForLock(ctx context.Context, op string, p LockPolicy, deadline time.Time, run func(context.Context) error) error {
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	defer func() { r.RetryLock = 0 }()
	// The first attempt does not wait: a lock in the way may be one that
	// can be proven stale and removed at once.
	r.RetryLock = 0
	for attempt := 0; ; attempt++ {
		err := run(ctx)
		if !errors.Is(err, ErrLocked) {
			return err
		}
		if ctx.Err() != nil || !now().Before(deadline) {
			locks, lerr := r.Locks(ctx)
			if lerr != nil {
				return &LockedError{Op: op}
			}
			return lockedError(ctx, op, p, locks)
		}
		locks, lerr := r.Locks(ctx)
		if lerr != nil {
			return fmt.Errorf("%w (and listing locks failed: %v)", err, lerr)
		}
		removed, rerr := r.RemoveStaleLocks(ctx, locks, p)
		if rerr != nil {
			r.logf("%v", rerr)
		}
		left := deadline.Sub(now())
		if len(removed) == 0 {
			if left <= 0 {
				return lockedError(ctx, op, p, locks)
			}
			if attempt > 0 {
				r.logf("restic %s: repository locked by %s; waiting until %s", op, describeLive(ctx, locks, p), deadline.UTC().Format(time.RFC3339))
			}
		}
		r.RetryLock = min(max(left, 0), lockRetryStep)
	}
}

// lockedError names the live holders among locks, the repository's locks
// as last listed (all of them when none is judged live).
func lockedError(ctx context.Context, op string, p LockPolicy, locks []LockInfo) error {
	var live []LockInfo
	for _, l := range locks {
		if p.Judge(ctx, l) == LockLive {
			live = append(live, l)
		}
	}
	if len(live) == 0 {
		live = locks
	}
	return &LockedError{Op: op, Holders: live}
}

func describeLive(ctx context.Context, locks []LockInfo, p LockPolicy) string {
	var parts []string
	for _, l := range locks {
		if p.Judge(ctx, l) == LockLive {
			parts = append(parts, l.Holder())
		}
	}
	if len(parts) == 0 {
		return "a lock that is gone now"
	}
	return strings.Join(parts, ", ")
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
